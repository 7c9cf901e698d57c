"""The "api-gateway" actor: the node's websocket API (JSON-RPC 2.0), and the console's page.

The API port answers plain HTTP GETs with the admin console's static files and hands
websocket upgrades to the API (`actors.http_front`).

Resource handling: at most `max_connections` websockets at once (more are
refused at the handshake with HTTP 503); messages above `max_message_bytes`
close that connection (code 1009); each connection has a token bucket of
`requests_per_second` with `burst`. None of this affects other connections.

Authentication: admin methods need the admin token made by ``milagro-node
init``. The node keeps only its SHA-256 (store kv ``api/admin_token_sha256``)
and compares in constant time. A client presents the token either in the
handshake (``Authorization: Bearer <token>``) or with the ``auth.login``
method (browsers cannot set headers), or holds an expiring console session
(`actors.console_api`). Failed logins go to the audit log, with the client's
address and never the token; so do admin actions (`ApiMethod.audited`): who,
how (token or console), the subject ID and the outcome.

Error handling: malformed JSON, unknown methods, bad params, actor failures
all become JSON-RPC errors on that connection; the gateway goes on.
"""

from __future__ import annotations

import base64
import functools
import binascii
import hashlib
import hmac
from typing import Any

import attrs
import trio
from trio_websocket import ConnectionClosed, WebSocketConnection, WebSocketRequest

from milagro_node.core import jsonrpc
from milagro_node.core.console_sessions import ConsoleSessions
from milagro_node.core.ratelimit import TokenBucket

from .api_methods import ApiMethod, Session, bool_param, int_param
from .console_api import Console
from .context import ActorContext
from .http_front import FrontDoor, StaticFiles
from .mailbox import ActorError
from .messages import HsmHealth, ListIdentities, ListPeers, ReadInbox, RouterCounters, SendEnvelope
from .store import StoreClient

NAME = "api-gateway"
HTTP_HEADROOM = 32  # TCP connections beyond max_connections, for page loads and refusals
TOKEN_NAMESPACE, TOKEN_KEY = "api", "admin_token_sha256"


@attrs.frozen
class ApiLimits:
    max_message_bytes: int = 2 * 1024 * 1024
    max_connections: int = 64
    requests_per_second: float = 50.0
    burst: int = 100
    console_idle_seconds: float = 1800.0
    console_max_seconds: float = 43200.0


def token_digest(token: str) -> bytes:
    return hashlib.sha256(token.encode()).digest()


class ApiGateway:
    name = NAME

    def __init__(self, host: str, port: int, limits: ApiLimits, methods: dict[str, ApiMethod] | None = None) -> None:
        self._host, self._port, self._limits = host, port, limits
        self._connections = 0
        self._token_digest: bytes | None = None
        self._methods: dict[str, ApiMethod] = {
            "auth.login": ApiMethod(self._login, admin=False),
            "node.health": ApiMethod(_node_health, admin=False),
            "node.status": ApiMethod(_node_status),
            "audit.tail": ApiMethod(_audit_tail),
            "hsm.health": ApiMethod(_hsm_health),
            "peers.list": ApiMethod(_peers_list),
            "identities.list": ApiMethod(_identities_list),
            "envelope.send": ApiMethod(_envelope_send),
            "envelope.inbox": ApiMethod(_envelope_inbox),
            "envelope.counters": ApiMethod(_envelope_counters),
            **(methods or {}),
        }

    async def run(self, ctx: ActorContext, *, task_status: trio.TaskStatus[None]) -> None:
        self._ctx, self._store = ctx, StoreClient(ctx)
        self._page_url = ""
        # A restart of this actor ends every console session (they live in memory only).
        sessions = ConsoleSessions(idle_seconds=self._limits.console_idle_seconds,
                                   max_seconds=self._limits.console_max_seconds)
        self._console = Console(sessions, self._methods, self._store, lambda: self._page_url)
        self._methods.update(self._console.api())
        self._token_digest = await self._store.kv_get(TOKEN_NAMESPACE, TOKEN_KEY)
        if self._token_digest is None:
            ctx.log.warning("no admin token in the store: admin methods refused (run milagro-node init)")
        front = FrontDoor(StaticFiles.load(), self._serve_connection,
                          max_message_bytes=self._limits.max_message_bytes,
                          max_open=self._limits.max_connections + HTTP_HEADROOM)
        async with trio.open_nursery() as nursery:
            listeners = await nursery.start(functools.partial(trio.serve_tcp, front.serve, self._port, host=self._host))
            port = listeners[0].socket.getsockname()[1]
            host = f"[{self._host}]" if ":" in self._host else self._host
            url = f"ws://{host}:{port}"
            self._page_url = f"http://{host}:{port}/"
            ctx.report(url=url, connections=0)
            ctx.log.info("api listening", extra={"url": url})
            task_status.started()

    async def _serve_connection(self, request: WebSocketRequest, remote: str) -> None:
        if self._connections >= self._limits.max_connections:
            self._ctx.log.warning("api connection refused: too many", extra={"remote": remote})
            await request.reject(503, body=b"too many connections")
            return
        session = Session(remote, TokenBucket(self._limits.requests_per_second, self._limits.burst))
        session.admin = self._bearer_ok(request.headers)
        ws = await request.accept()
        self._connections += 1
        self._ctx.report(connections=self._connections)
        try:
            async with trio.open_nursery() as nursery:  # the connection's subscription feeds
                session.send, session.spawn = ws.send_message, nursery.start_soon
                await self._converse(ws, session)
                nursery.cancel_scope.cancel()
        finally:
            self._connections -= 1
            self._ctx.report(connections=self._connections)

    async def _converse(self, ws: WebSocketConnection, session: Session) -> None:
        while True:
            try:
                message = await ws.get_message()
                reply = await self._answer(session, message)
                if reply is not None:
                    await ws.send_message(reply)
            except ConnectionClosed:
                return

    async def _answer(self, session: Session, message: str | bytes) -> str | None:
        try:
            if not session.bucket.take(trio.current_time()):
                raise jsonrpc.RpcError(jsonrpc.RATE_LIMITED, "too many requests on this connection")
            request = jsonrpc.parse_request(message)
            method = self._methods.get(request.method)
            if method is None:
                raise jsonrpc.RpcError(jsonrpc.METHOD_NOT_FOUND, f"no method {request.method!r}", id=request.id)
            if method.admin and not self._console.admin_now(session):
                raise jsonrpc.RpcError(jsonrpc.UNAUTHORIZED, "admin authentication required", id=request.id)
            try:
                value = await method.handler(self._ctx, session, request.params)
            except ActorError as exc:
                await self._audit_action(method, request, session, exc.code)
                raise jsonrpc.RpcError(jsonrpc.NODE_ERROR, exc.message, id=request.id, data={"code": exc.code})
            except jsonrpc.RpcError as exc:
                await self._audit_action(method, request, session, "bad-request")
                exc.id = request.id
                raise
            await self._audit_action(method, request, session, "ok")
        except jsonrpc.RpcError as exc:
            return exc.to_text()
        return None if request.id is None else jsonrpc.result(request.id, value)

    async def _audit_action(self, method: ApiMethod, request: jsonrpc.RpcRequest, session: Session,
                            result: str) -> None:
        """Who did an admin action and how it ended (its subject ID, never other params)."""
        if not method.audited:
            return
        subject = request.params.get("id")
        await self._store.audit("api.action", method=request.method, result=result, remote=session.remote,
                                via="console" if session.console else "token",
                                **({"subject": subject} if isinstance(subject, str) else {}))

    def _token_ok(self, token: Any) -> bool:
        if self._token_digest is None or not isinstance(token, str):
            return False
        return hmac.compare_digest(token_digest(token), self._token_digest)

    def _bearer_ok(self, headers: list[tuple[bytes, bytes]]) -> bool:
        for name, value in headers:
            if name.lower() == b"authorization" and value.startswith(b"Bearer "):
                return self._token_ok(value[7:].decode("latin-1"))
        return False

    async def _login(self, ctx: ActorContext, session: Session, params: dict[str, Any]) -> Any:
        if not self._token_ok(params.get("token")):
            await self._store.audit("api.login-failed", remote=session.remote)
            raise jsonrpc.RpcError(jsonrpc.UNAUTHORIZED, "wrong admin token")
        session.admin, session.console = True, None
        await self._store.audit("api.login", remote=session.remote)
        return {"admin": True}


async def _node_health(ctx: ActorContext, session: Session, params: dict[str, Any]) -> Any:
    actors = ctx.node_status()["actors"]
    down = [a["name"] for a in actors if a["state"] != "running"]
    return {"ok": not down, "down": down}


async def _node_status(ctx: ActorContext, session: Session, params: dict[str, Any]) -> Any:
    return ctx.node_status()


async def _audit_tail(ctx: ActorContext, session: Session, params: dict[str, Any]) -> Any:
    count = params.get("count", 20)
    if not isinstance(count, int) or isinstance(count, bool) or not 1 <= count <= 1000:
        raise jsonrpc.RpcError(jsonrpc.INVALID_PARAMS, "count must be an integer from 1 to 1000")
    entries = await StoreClient(ctx).audit_tail(count)
    return [attrs.asdict(entry) for entry in entries]


async def _hsm_health(ctx: ActorContext, session: Session, params: dict[str, Any]) -> Any:
    """Ask the token now (not the cached state in node.status)."""
    return {"state": "ok", **await ctx.ask("hsm-worker", HsmHealth())}


async def _peers_list(ctx: ActorContext, session: Session, params: dict[str, Any]) -> Any:
    return await ctx.ask("envelope-router", ListPeers())


async def _identities_list(ctx: ActorContext, session: Session, params: dict[str, Any]) -> Any:
    return await ctx.ask("pki-resolver", ListIdentities())


async def _envelope_send(ctx: ActorContext, session: Session, params: dict[str, Any]) -> Any:
    to, kind = params.get("to"), params.get("kind")
    if not isinstance(to, list) or not to or not all(isinstance(i, str) for i in to):
        raise jsonrpc.RpcError(jsonrpc.INVALID_PARAMS, "to must be a non-empty list of identity CIDs")
    if not isinstance(kind, str):
        raise jsonrpc.RpcError(jsonrpc.INVALID_PARAMS, "kind must be a string")
    try:
        payload = base64.b64decode(params.get("payload", ""), validate=True)
    except (binascii.Error, TypeError, ValueError):
        raise jsonrpc.RpcError(jsonrpc.INVALID_PARAMS, "payload must be base64") from None
    suite = params.get("suite", "mx1")
    if suite not in ("mx1", "mx2"):
        raise jsonrpc.RpcError(jsonrpc.INVALID_PARAMS, 'suite must be "mx1" or "mx2"')
    ttl = int_param(params, "ttl", 3600, 10, 7 * 24 * 3600)
    return await ctx.ask("envelope-router", SendEnvelope(tuple(to), kind, payload, suite, ttl))


async def _envelope_inbox(ctx: ActorContext, session: Session, params: dict[str, Any]) -> Any:
    request = ReadInbox(int_param(params, "after", 0, 0, 1 << 62), int_param(params, "count", 50, 1, 500),
                        bool_param(params, "payload", True))
    rows = await ctx.ask("envelope-router", request)
    for row in rows:
        if "payload" in row:
            row["payload"] = base64.b64encode(row["payload"]).decode()
    return rows


async def _envelope_counters(ctx: ActorContext, session: Session, params: dict[str, Any]) -> Any:
    return await ctx.ask("envelope-router", RouterCounters())
