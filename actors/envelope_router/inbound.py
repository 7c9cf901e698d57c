"""Inbound envelopes: the checks every message passes before this node keeps or forwards it.

Part of the envelope-router actor. `Inbound.check` is the gossipsub topic validator (and the
first step of a direct delivery): a message that fails it is neither delivered nor forwarded,
and costs its forwarder peer score. In order:

    rate        the forwarder's token bucket                         rate-limited
    decode      envelope steps 1-4 (sizes, strict CBOR, schema)      the envelope error code
    sender      a pinned member, resolved through the pki-resolver    unknown-identity, not-a-member,
                (fetching its log from the forwarder if unknown);     revoked, duplicity
                for ``pki.announce`` the log in the body itself
    signature   and time window (envelope steps 5-7)                 bad-signature, expired, ...
    replay      (sender, id) not seen before; remembered now         replayed
                (a direct delivery is checked but not remembered: it is the
                sender's re-send of its own gossip, whose copy may still be on
                its way and must not count against the peer that forwards it;
                and a direct delivery of the very envelope, by CID, that passed
                gossip validation here is taken: its gossip copy was lost before
                it was kept, and refusing it would lose the envelope for good)

Passing messages are kept briefly (by CID) for the subscription reader, so nothing is
verified twice. Counters by reason and by peer feed ``peers.list`` and the console.
"""

from __future__ import annotations

import hashlib
import time
from collections import Counter, OrderedDict
from collections.abc import Awaitable, Callable
from typing import Any

import attrs
import trio

from milagro_node.core.envelope import (
    EnvelopeError, ReplayCache, VerifiedEnvelope, envelope_cid, inspect_envelope,
    public_body, verify_envelope,
)
from milagro_node.core.federation_wire import ANNOUNCE_KIND
from milagro_node.core.identity import IdentityError, import_log
from milagro_node.core.ratelimit import TokenBucket

from ..mailbox import ActorError
from ..messages import ImportLog, ResolveIdentity

STASH_SIZE = 4096
PEER_RATE, PEER_BURST = 500.0, 2000.0  # envelopes per second a peer may forward to us


class Rejected(Exception):
    def __init__(self, code: str, message: str) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message


@attrs.define
class PeerCounters:
    accepted: int = 0
    rejected: int = 0
    last_seen: float | None = None
    bucket: TokenBucket = attrs.field(factory=lambda: TokenBucket(PEER_RATE, PEER_BURST))


class Inbound:
    def __init__(self, ask: Callable[..., Awaitable[Any]], log: Any, *, replay: ReplayCache) -> None:
        self._ask = ask
        self._log = log
        self.replay = replay
        self.replay_dirty = False
        self.accepted: Counter[str] = Counter()
        self.rejected: Counter[str] = Counter()
        self.peers: dict[str, PeerCounters] = {}
        self._stash: OrderedDict[str, VerifiedEnvelope] = OrderedDict()
        self._announced: dict[str, bytes] = {}  # sender -> SHA-256 of the log it last announced

    def peer(self, peer_id: str) -> PeerCounters:
        counters = self.peers.get(peer_id)
        if counters is None:
            counters = self.peers[peer_id] = PeerCounters()
        return counters

    async def gossip_validator(self, origin: str, forwarder: str, data: bytes) -> bool:
        try:
            await self.check(data, forwarder=forwarder, via="gossip")
        except Rejected:
            return False
        return True

    async def check(self, data: bytes, *, forwarder: str, via: str) -> VerifiedEnvelope:
        """Run the checks; on success the envelope is stashed and its id remembered."""
        peer = self.peer(forwarder)
        peer.last_seen = time.time()
        try:
            verified = await self._verify(data, forwarder, peer, remember=via != "direct")
        except Rejected as exc:
            peer.rejected += 1
            self.rejected[exc.code] += 1
            self._log.debug("envelope rejected", extra={"peer": forwarder, "code": exc.code, "via": via})
            raise
        peer.accepted += 1
        self.accepted[via] += 1
        self._stash[verified.cid] = verified
        if len(self._stash) > STASH_SIZE:
            self._stash.popitem(last=False)
        return verified

    def take(self, data: bytes) -> VerifiedEnvelope | None:
        """The stashed result of `check` for these bytes (once)."""
        return self._stash.pop(envelope_cid(data), None)

    async def _verify(self, data: bytes, forwarder: str, peer: PeerCounters, *, remember: bool) -> VerifiedEnvelope:
        if not peer.bucket.take(trio.current_time()):
            raise Rejected("rate-limited", f"{forwarder} sends more than {PEER_RATE:g} envelopes/s")
        now = int(time.time())
        try:
            header = inspect_envelope(data)
            if header.kind == ANNOUNCE_KIND and header.public:
                sign_key = await self._announced_key(data, header.sender, forwarder)
            else:
                sign_key = (await self._resolve(header.sender, forwarder)).sign_key
            verified = verify_envelope(data, resolve_sender=lambda _: sign_key, now=now)
        except EnvelopeError as exc:
            raise Rejected(str(exc.code), exc.message) from None
        seen = self.replay.is_replay(header.sender, header.id, verified.until, now)
        # A direct re-delivery of the very envelope that passed gossip validation but was lost
        # before the router kept it (a library queue overflowed); the router has already
        # checked that its inbox does not hold it.
        redelivered = not remember and self.replay.cid_of(header.sender, header.id) == verified.cid
        if seen and not redelivered:
            raise Rejected("replayed", "this envelope id was already seen")
        if remember:
            self.replay.remember(header.sender, header.id, verified.until, now, verified.cid)
            self.replay_dirty = True
        return verified

    async def _resolve(self, identity: str, forwarder: str) -> Any:
        try:
            return await self._ask("pki-resolver", ResolveIdentity(identity, fetch_from=forwarder), timeout=3.0)
        except ActorError as exc:
            raise Rejected(exc.code, exc.message) from None

    async def _announced_key(self, data: bytes, sender: str, forwarder: str) -> bytes:
        """The signing key of an announcement's sender, from the log it carries, once the
        pki-resolver has taken that log (pinned member, no fork).

        Members announce every few seconds, mostly the log they announced last time: a log
        whose bytes equal the last one this sender's announcement carried and the
        pki-resolver took is not verified and imported again. The key then comes from the
        pki-resolver's current state, as for any other envelope (so a revocation learnt
        since still counts)."""
        body = public_body(data)
        digest = hashlib.sha256(body).digest()
        if self._announced.get(sender) == digest:
            return (await self._resolve(sender, forwarder)).sign_key
        try:
            events, state = import_log(body)
        except IdentityError as exc:
            raise Rejected(f"bad-log:{exc.code}", exc.message) from None
        if state.identity != sender:
            raise Rejected("bad-log:identity-mismatch", f"the announced log is {state.identity}'s, not the sender's")
        try:
            state = await self._ask("pki-resolver", ImportLog(tuple(events), f"announce via {forwarder}"))
        except ActorError as exc:
            raise Rejected(exc.code, exc.message) from None
        self._announced[sender] = digest
        return state.sign_key
