"""The admin console's side of the API: one-time login tickets, page sessions, live views.

Part of the api-gateway actor. Methods:

- ``console.ticket`` (admin) {} → {ticket, url, expires_in}: what `milagro-node console`
  prints; the URL carries the ticket in its fragment, which browsers never send to a server.
- ``auth.ticket`` {ticket} → {session, expires_in}: a ticket traded, once, for a page session.
- ``auth.session`` {session} → {expires_in}: a reconnecting page resumes its session.
- ``auth.logout`` {} → {}: ends this connection's console session.
- ``subscribe`` (admin) {topics: [...]} → {topics, unavailable}: from then on the node pushes
  ``console.update`` notifications {topic, data} (or {topic, error}) whenever a view changes,
  and {topic, ended} when the session ends. Views are the admin methods in `TOPICS`, sampled
  by the node at each topic's interval and pushed only when different: the page never polls.
- ``audit.verify`` (admin) {} → {ok, checked, first_bad_seq, reason}.

Failed ticket and session logins go to the audit log with the client's address.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import attrs
import trio
from trio_websocket import ConnectionClosed

from milagro_node.core import jsonrpc
from milagro_node.core.console_sessions import ConsoleSessions, SessionRefused

from .api_methods import ApiMethod, Session
from .context import ActorContext
from .mailbox import ActorError
from .store import StoreClient

__all__ = ["TOPICS", "Console"]

# topic -> (method, params, seconds between samples)
TOPICS: dict[str, tuple[str, dict[str, Any], float]] = {
    "node": ("node.status", {}, 1.0),
    "peers": ("peers.list", {}, 1.0),
    "identities": ("identities.list", {}, 2.0),
    "envelopes": ("envelope.counters", {}, 1.0),
    "hsm": ("hsm.health", {}, 5.0),
    "audit": ("audit.tail", {"count": 25}, 1.0),
    "dta": ("dta.status", {}, 2.0),
    "mfa": ("mfa.status", {}, 1.0),
}
UPDATE = "console.update"


@attrs.define
class Console:
    sessions: ConsoleSessions
    methods: dict[str, ApiMethod]  # the gateway's whole table (views are its methods)
    store: StoreClient
    page_url: Callable[[], str]

    def api(self) -> dict[str, ApiMethod]:
        return {
            "console.ticket": ApiMethod(self._ticket, audited=True),
            "auth.ticket": ApiMethod(self._redeem, admin=False),
            "auth.session": ApiMethod(self._resume, admin=False),
            "auth.logout": ApiMethod(self._logout, admin=False),
            "subscribe": ApiMethod(self._subscribe),
            "audit.verify": ApiMethod(_audit_verify),
        }

    def admin_now(self, session: Session, *, touch: bool = True) -> bool:
        """Whether `session` may call admin methods now; an expired console session ends here."""
        if not session.admin:
            return False
        if session.console is None:
            return True  # the admin token itself (handshake or auth.login): valid while connected
        try:
            self.sessions.check(session.console, trio.current_time(), touch=touch)
        except SessionRefused:
            session.admin, session.console = False, None
            return False
        return True

    async def _ticket(self, ctx: ActorContext, session: Session, params: dict[str, Any]) -> Any:
        ticket = self.sessions.issue_ticket(trio.current_time())
        return {"ticket": ticket, "url": f"{self.page_url()}#ticket={ticket}",
                "expires_in": self.sessions.ticket_seconds}

    async def _redeem(self, ctx: ActorContext, session: Session, params: dict[str, Any]) -> Any:
        now = trio.current_time()
        try:
            token = self.sessions.redeem(params.get("ticket"), now)
        except SessionRefused as exc:
            await self._refused(session, "ticket", exc)
        session.admin, session.console = True, token
        await self.store.audit("api.console-login", remote=session.remote)
        return {"session": token, "expires_in": self.sessions.expires_in(token, now)}

    async def _resume(self, ctx: ActorContext, session: Session, params: dict[str, Any]) -> Any:
        now = trio.current_time()
        token = params.get("session")
        try:
            self.sessions.check(token, now)
        except SessionRefused as exc:
            await self._refused(session, "session", exc)
        session.admin, session.console = True, token
        return {"expires_in": self.sessions.expires_in(token, now)}

    async def _refused(self, session: Session, what: str, exc: SessionRefused) -> None:
        await self.store.audit("api.login-failed", remote=session.remote, via=what, reason=exc.reason)
        raise jsonrpc.RpcError(jsonrpc.UNAUTHORIZED, f"console login refused: {exc.reason}")

    async def _logout(self, ctx: ActorContext, session: Session, params: dict[str, Any]) -> Any:
        self.sessions.end(session.console)
        session.admin, session.console = False, None
        return {}

    async def _subscribe(self, ctx: ActorContext, session: Session, params: dict[str, Any]) -> Any:
        topics = params.get("topics")
        if not isinstance(topics, list) or not all(isinstance(t, str) for t in topics):
            raise jsonrpc.RpcError(jsonrpc.INVALID_PARAMS, "topics must be a list of strings")
        unknown = sorted(set(topics) - set(TOPICS))
        if unknown:
            raise jsonrpc.RpcError(jsonrpc.INVALID_PARAMS, f"unknown topics {unknown}; known: {sorted(TOPICS)}")
        if session.spawn is None:
            raise jsonrpc.RpcError(jsonrpc.INVALID_REQUEST, "this connection cannot take notifications")
        started, unavailable = [], []
        for topic in dict.fromkeys(topics):
            if TOPICS[topic][0] not in self.methods:
                unavailable.append(topic)  # a role this node does not run
            elif topic not in session.subscriptions:
                session.subscriptions.add(topic)
                session.spawn(self._feed, ctx, session, topic)
                started.append(topic)
        return {"topics": sorted(session.subscriptions), "unavailable": unavailable}

    async def _feed(self, ctx: ActorContext, session: Session, topic: str) -> None:
        name, params, interval = TOPICS[topic]
        method, last = self.methods[name], None
        try:
            # touch=False: a page left open does not keep its session alive; only actions do.
            while self.admin_now(session, touch=False):
                try:
                    update: dict[str, Any] = {"topic": topic, "data": await method.handler(ctx, session, dict(params))}
                except (ActorError, jsonrpc.RpcError) as exc:
                    update = {"topic": topic, "error": exc.message}
                text = jsonrpc.notification(UPDATE, update)
                if text != last:
                    await session.send(text)
                    last = text
                await trio.sleep(interval)
            await session.send(jsonrpc.notification(UPDATE, {"topic": topic, "ended": "session expired"}))
        except (ConnectionClosed, trio.BrokenResourceError, trio.ClosedResourceError):
            return
        finally:
            session.subscriptions.discard(topic)


async def _audit_verify(ctx: ActorContext, session: Session, params: dict[str, Any]) -> Any:
    verdict = await StoreClient(ctx).audit_verify()
    return attrs.asdict(verdict)
