"""The "pki-resolver" actor: who is who in the federation, with no certificate authority.

It keeps the verified identity logs of other nodes (through `KnownLogs`, in the store),
answers "what are the keys of identity X?" for the envelope router, fetches logs it lacks
from peers (through the router), and announces this node's own log on gossip at start and
every `announce_every` seconds, so a node that joins late learns every identity.

Membership: only identities pinned in peers.toml are members, and only while the peer id
their verified log names is the one pinned beside them; everything else resolves with
``not-a-member`` (an imported log of a non-member still serves `envelope seal --to`, which
asks with ``members_only=False``).

Rotations replace the cached state when a longer log arrives; a revoked identity stops
resolving (``revoked``); a fork is duplicity: recorded once, audited, never trusted again.

Error handling: a bad log from the network is refused with its IdentityError code and
counted; the actor goes on.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from typing import Any

import trio

from milagro_node.core.federation_wire import ANNOUNCE_KIND
from milagro_node.core.identity import IdentityError, IdentityState, export_log, verify_log

from .context import ActorContext
from .known_logs import KnownLogs
from .mailbox import ActorError
from .messages import (
    FetchLog, ImportLog, ListIdentities, LogOf, OwnLog, PublishPublic, ResolveIdentity, ResolveMembers,
)
from .node_identity import NodeIdentity

NAME = "pki-resolver"


class PkiResolver:
    name = NAME

    def __init__(self, members: Sequence[Any], *, announce_every: float = 10.0) -> None:
        self._members = {m.identity: m for m in members}
        self._announce_every = announce_every
        self._states: dict[str, IdentityState] = {}
        self._refused: Counter[str] = Counter()
        self._importing = trio.Lock()  # one log merge at a time: read, merge, write must not interleave

    async def run(self, ctx: ActorContext, *, task_status: trio.TaskStatus[None]) -> None:
        self._ctx = ctx
        self._known = KnownLogs(ctx)
        self._own = NodeIdentity(ctx)
        self._own_events = tuple(await self._own.events())
        if not self._own_events:
            raise ActorError("identity-missing", "this node has no identity yet: run milagro-node init")
        self._own_state = verify_log(self._own_events)
        ctx.report(identity=self._own_state.identity, members=len(self._members))
        async with trio.open_nursery() as nursery:
            nursery.start_soon(self._announce_forever)
            task_status.started()
            # Concurrent: a resolve that fetches a log over the network must not hold up the
            # router's validators asking for identities already known.
            await ctx.serve(self._handle, concurrency=16)

    async def _handle(self, request: Any) -> Any:
        try:
            match request:
                case ResolveIdentity(identity, fetch_from, members_only):
                    return await self._resolve(identity, fetch_from, members_only)
                case ResolveMembers(identities):
                    return tuple([await self._resolve(identity, None, True) for identity in identities])
                case ImportLog(events, source):
                    return await self._import(events, source)
                case OwnLog():
                    return self._own_events, self._own_state
                case LogOf(identity):
                    if identity == self._own_state.identity:
                        return self._own_events
                    return tuple(await self._known.events(identity))
                case ListIdentities():
                    return await self._list()
        except IdentityError as exc:
            raise ActorError(exc.code, exc.message) from None
        raise ActorError("bad-request", f"{NAME} does not handle {type(request).__name__}")

    # -- resolving -------------------------------------------------------------------

    async def _resolve(self, identity: str, fetch_from: str | None, members_only: bool) -> IdentityState:
        if identity == self._own_state.identity:
            return self._own_state
        if members_only:
            self._check_pinned(identity)
        state = self._states.get(identity)
        if state is None:
            try:
                state = await self._known.resolve(identity)
            except IdentityError as exc:
                # Unknown yet (its announcement has not come): ask the peer that brought its
                # name, else the member itself at its pinned peer id.
                sources = [p for p in (fetch_from, getattr(self._members.get(identity), "peer_id", None)) if p]
                if exc.code != "unknown-identity" or not sources:
                    raise
                state = await self._fetch_first(identity, sources, exc)
            self._states[identity] = state
        if state.revoked:
            raise ActorError("revoked", f"{identity} was revoked at seq {state.seq}")
        if members_only:
            self._check_member(state)
        return state

    async def _fetch_first(self, identity: str, peers: list[str], unknown: IdentityError) -> IdentityState:
        for peer_id in dict.fromkeys(peers):
            try:
                return await self._fetch(identity, peer_id)
            except ActorError as exc:
                self._ctx.log.debug("log fetch failed", extra={"identity": identity, "peer": peer_id,
                                                               "code": exc.code})
        raise unknown

    async def _fetch(self, identity: str, peer_id: str) -> IdentityState:
        events = await self._ctx.ask("envelope-router", FetchLog(peer_id, identity))
        state = await self._import(events, f"fetched from {peer_id}")
        if state.identity != identity:
            raise IdentityError("identity-mismatch", f"{peer_id} answered with the log of {state.identity}")
        return state

    def _check_pinned(self, identity: str) -> None:
        if identity not in self._members:
            raise ActorError("not-a-member", f"{identity} is not pinned in the federation file")

    def _check_member(self, state: IdentityState) -> None:
        member = self._members[state.identity]
        if state.peer_id != member.peer_id:
            raise ActorError("not-a-member", f"{member.name}'s log names peer {state.peer_id}, "
                             f"the federation file pins {member.peer_id}")

    # -- logs from the network -------------------------------------------------------

    async def _import(self, events: Sequence[bytes], source: str) -> IdentityState:
        events = list(events)
        identity = None
        try:
            identity = verify_log(events).identity
            if identity == self._own_state.identity:
                return self._own_state  # our own announcement, echoed back
            self._check_pinned(identity)
            async with self._importing:
                imported = await self._known.add(events)
        except (IdentityError, ActorError) as exc:
            if exc.code == "duplicity":
                self._states.pop(identity, None)  # a forked identity never resolves again
            self._refused[exc.code] += 1
            self._ctx.report(refused=dict(self._refused))
            self._ctx.log.warning("identity log refused", extra={"source": source, "code": exc.code})
            raise
        old = self._states.get(identity)
        self._states[identity] = imported.state
        if imported.after > imported.before:
            what = "rotated" if old is not None and not imported.state.revoked else (
                "revoked" if imported.state.revoked else "learned")
            self._ctx.log.info(f"identity {what}", extra={"identity": identity, "seq": imported.state.seq,
                                                          "source": source})
        return imported.state

    async def _announce_forever(self) -> None:
        body = export_log(list(self._own_events))
        delay = 0.5  # the router may still be dialing: announce early, then at the set pace
        while True:
            await trio.sleep(delay)
            try:
                await self._ctx.ask("envelope-router", PublishPublic(ANNOUNCE_KIND, body,
                                                                     ttl=int(self._announce_every * 6) + 60))
                delay = self._announce_every
            except ActorError as exc:
                self._ctx.log.debug("announce not sent", extra={"code": exc.code})
                delay = min(max(delay * 2, 1.0), self._announce_every)

    # -- listing ---------------------------------------------------------------------

    async def _list(self) -> list[dict[str, Any]]:
        rows = [_row(self._own_state, name="(this node)", member=self._own_state.identity in self._members)]
        for identity, member in self._members.items():
            if identity == self._own_state.identity:
                continue
            fork = await self._known.fork(identity)
            try:
                state = self._states.get(identity) or await self._known.resolve(identity)
            except IdentityError:
                state = None
            row = _row(state, name=member.name, member=True) if state else {
                "identity": identity, "name": member.name, "member": True, "known": False,
                "peer_id": member.peer_id, "roles": list(member.roles), "addrs": list(member.addrs)}
            row["duplicity"] = fork
            rows.append(row)
        return rows


def _row(state: IdentityState, *, name: str, member: bool) -> dict[str, Any]:
    return {"identity": state.identity, "name": name, "member": member, "known": True, "seq": state.seq,
            "revoked": state.revoked, "duplicity": None, "peer_id": state.peer_id,
            "roles": list(state.roles), "addrs": list(state.addrs)}
