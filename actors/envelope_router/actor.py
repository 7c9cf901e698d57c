"""The "envelope-router" actor: this node's edge to the federation.

It owns the libp2p host (`milagro_node.adapters.libp2p_host`) and so every byte to and from
peers:

- **dialing**: every pinned member, at the addresses peers.toml and its identity log give,
  re-dialed with back-off (1 s doubling to 30 s) while it is away; on each (re)connection it
  asks that member which envelopes it sent us that we lack (``since``), and fetches them;
- **inbound**: one gossip topic per federation, validated by `Inbound` before anything is
  delivered or forwarded; envelopes for this node are opened, kept in the inbox (as the
  ciphertext they arrived in: nothing secret is written unwrapped), acknowledged to their
  sender, deduplicated by CID whichever way they came (gossip, direct, fetched), and told
  to the local actors that subscribed to their kind (`dispatch`);
- **outbound**: `SendEnvelope` seals to identities the pki-resolver resolves, signs in the
  HSM, numbers it (per-sender ``seq``), gossips it while the store commits it (large ones
  go direct only), and keeps re-sending it directly (`Outbox`) until each recipient
  acknowledges or it expires;
- **request/response**: fetch (logs, envelope blocks, what was sent to the asker),
  direct delivery, acknowledgements — `milagro_node.core.federation_wire`.

Store layout: blocks (envelopes by CID); kv ``router/seq`` (next seq), ``outbox/<seq>``,
``inbox/<n>`` ({cid, sender, kind, seq, received_ms}), ``router/replay`` (the replay cache, saved
every few seconds so a restart does not reopen the replay window).

Error handling: a peer's bad message is rejected and counted (`Inbound`), a failed delivery
is retried (and warned about, once a period, while it keeps failing: `FailingDeliveries`), a
peer's failed request gets an error response; none of it stops the actor.
"""

from __future__ import annotations

import time
from typing import Any

import trio

from milagro_node.adapters.libp2p_host import GossipSettings, P2pError, P2pHost, open_p2p_host
from milagro_node.core import federation_wire as wire
from milagro_node.core import ipld
from milagro_node.core.envelope import (
    EnvelopeError, LocalReaderKeys, RecipientKey, ReplayCache, VerifiedEnvelope, envelope_cid,
    find_recipient, open_verified, prepare_public, prepare_seal, verify_envelope,
)

from ..context import ActorContext
from ..keystore import KeystoreClient
from ..mailbox import ActorError
from ..messages import (
    EnvelopeArrived, FetchLog, ListPeers, LogOf, PublishPublic, ReadInbox, ResolveIdentity, ResolveMembers,
    RouterCounters, SendEnvelope, SubscribeKinds,
)
from ..node_identity import NodeIdentity, sign_key_id
from ..store import StoreClient
from .dispatch import Routes
from .inbound import Inbound, Rejected
from .outbox import FailingDeliveries, Outbox, Sent, outbox_key

NAME = "envelope-router"
DIAL_FIRST_S, DIAL_MOST_S = 1.0, 30.0
REPLAY_SAVE_S = 5.0
DELIVERY_CONCURRENCY = 16
PAGE_PAYLOAD_BYTES = 8 << 20  # an envelope.inbox page with payloads ends once it holds this much
REQUEST_CONCURRENCY = 32


class EnvelopeRouter:
    name = NAME

    def __init__(self, federation: Any, listen: tuple[str, ...], *,
                 gossip: GossipSettings = GossipSettings(), routes: Routes | None = None) -> None:
        self._federation = federation
        self._listen = listen
        self._gossip = gossip
        self._topic = wire.envelope_topic(federation.name or "solo")
        self._members_by_peer = {m.peer_id: m for m in federation.members}
        self._inbox_cids: set[str] = set()
        self._inbox_count = 0
        self._sent_count = self._delivered = self._expired = 0
        self._last_seq: dict[str, int] = {}  # highest seq received per sender
        self._synced: dict[str, int] = {}  # per member: its seqs up to here were checked
        self._acks: dict[str, list[str]] = {}  # sender identity -> CIDs to acknowledge
        self._failing = FailingDeliveries()
        # Given by the node, the routes outlive a restart of this actor: consumers subscribe
        # once, when they start, and would otherwise miss everything after a router crash.
        self._routes = Routes() if routes is None else routes

    # -- life ------------------------------------------------------------------------

    async def run(self, ctx: ActorContext, *, task_status: trio.TaskStatus[None]) -> None:
        self._ctx, self._store, self._keys = ctx, StoreClient(ctx), KeystoreClient(ctx)
        state = await NodeIdentity(ctx).state()
        if state is None:
            raise ActorError("identity-missing", "this node has no identity yet: run milagro-node init")
        self._me = state
        await self._load()
        x25519, mlkem = await NodeIdentity(ctx).reader_keys()
        self._reader = LocalReaderKeys(x25519, mlkem)
        seed = await self._keys.get("identity/libp2p", "identity-signing")
        try:
            async with open_p2p_host(seed, self._listen, self._gossip) as host:
                seed.close()
                self._host = host
                await self._start_serving(host)
                ctx.report(peer_id=host.peer_id, listen=host.listen_addrs(), topic=self._topic)
                ctx.log.info("p2p listening", extra={"peer_id": host.peer_id, "addrs": host.listen_addrs()})
                async with trio.open_nursery() as nursery:
                    self._nursery = nursery
                    self._deliveries = trio.Semaphore(DELIVERY_CONCURRENCY)
                    for member in self._federation.members:
                        if member.identity != self._me.identity:
                            nursery.start_soon(self._keep_connected, member)
                    nursery.start_soon(self._read_gossip_forever)
                    nursery.start_soon(self._retry_forever)
                    nursery.start_soon(self._save_replay_forever)
                    task_status.started()
                    await ctx.serve(self._handle, concurrency=REQUEST_CONCURRENCY)
        finally:
            seed.close()
            self._reader.close()

    async def _load(self) -> None:
        seq = await self._store.kv_get("router", "seq")
        self._next_seq = ipld.decode(seq) if seq is not None else 0
        replay = await self._store.kv_get("router", "replay")
        cache = ReplayCache.restore(ipld.decode(replay), int(time.time())) if replay else ReplayCache()
        self._inbound = Inbound(self._ctx.ask, self._ctx.log, replay=cache)
        self._outbox = Outbox()
        for _, value in await self._store.kv_items("outbox"):
            self._outbox.add(Sent.from_doc(ipld.decode(value)))
        for key, value in await self._store.kv_items("inbox"):
            entry = ipld.decode(value)
            self._inbox_cids.add(entry["cid"])
            self._inbox_count = max(self._inbox_count, int(key) + 1)  # a failed write leaves a gap
            self._last_seq[entry["sender"]] = max(self._last_seq.get(entry["sender"], -1), entry.get("seq", -1))

    async def _start_serving(self, host: P2pHost) -> None:
        host.set_validator(self._topic, self._inbound.gossip_validator)
        host.serve(wire.FETCH, self._answer_fetch, max_request=wire.MAX_REQUEST_BYTES,
                   max_response=wire.MAX_FETCH_RESPONSE_BYTES)
        host.serve(wire.DELIVER, self._answer_delivery, max_request=self._gossip.max_message_bytes * 2,
                   max_response=wire.MAX_REQUEST_BYTES)
        host.serve(wire.ACK, self._answer_ack, max_request=wire.MAX_REQUEST_BYTES,
                   max_response=wire.MAX_REQUEST_BYTES)
        self._gossip_in = await host.subscribe(self._topic)

    # -- requests from the node ------------------------------------------------------

    async def _handle(self, request: Any) -> Any:
        match request:
            case SendEnvelope(to, kind, payload, suite, ttl):
                return await self._send(to, kind, payload, suite, ttl)
            case PublishPublic(kind, body, ttl):
                return await self._publish_public(kind, body, ttl)
            case FetchLog(peer_id, identity):
                return await self._fetch_log(peer_id, identity)
            case ListPeers():
                return self._peers()
            case ReadInbox(after, count, payloads):
                return await self._read_inbox(after, count, payloads)
            case RouterCounters():
                return self.counters()
            case SubscribeKinds(prefixes, actor):
                self._routes.subscribe(prefixes, actor)
                return None
        raise ActorError("bad-request", f"{NAME} does not handle {type(request).__name__}")

    def counters(self) -> dict[str, Any]:
        return {"accepted": dict(self._inbound.accepted), "rejected": dict(self._inbound.rejected),
                "sent": self._sent_count, "delivered": self._delivered, "received": len(self._inbox_cids),
                "pending": self._outbox.pending(), "expired": self._expired,
                "undispatched": self._routes.dropped}

    async def _send(self, to: tuple[str, ...], kind: str, payload: bytes, suite: str, ttl: int) -> dict[str, Any]:
        if not to:
            raise ActorError("bad-request", "an envelope needs at least one recipient")
        states = await self._ctx.ask("pki-resolver", ResolveMembers(tuple(dict.fromkeys(to))))
        recipients = [RecipientKey(s.identity, s.x25519, s.mlkem768) for s in states]
        now = int(time.time())
        seq, self._next_seq = self._next_seq, self._next_seq + 1  # before any await: sends run concurrently
        try:
            draft = prepare_seal(payload, suite=suite, sender=self._me.identity, kind=kind, recipients=recipients,
                                 created=now, expires=now + ttl, seq=seq)
            data = draft.finish(await self._sign(draft.to_be_signed))
        except (EnvelopeError, ValueError) as exc:
            raise ActorError(str(getattr(exc, "code", "bad-request")), str(exc)) from None
        cid = envelope_cid(data)
        entry = Sent(seq, cid, tuple(s.identity for s in states), now + ttl,
                     {s.identity for s in states}, next_try=trio.current_time() + 2.0)
        self._outbox.add(entry)
        self._inbound.replay.remember(self._me.identity, draft.header.id, now + ttl + 300, now)
        self._sent_count += 1
        # Gossip while the store commits (an fsync, as long as the publish): the reply still
        # waits for both, so a send that returned is kept for re-sending.
        failed: list[ActorError] = []

        async def keep() -> None:
            try:
                await self._store.kv_batch((("router", "seq", ipld.encode(self._next_seq)),
                                            ("outbox", outbox_key(seq), ipld.encode(entry.to_doc()))),
                                           blocks=((data, "dag-cbor"),))
            except ActorError as exc:
                failed.append(exc)

        async with trio.open_nursery() as nursery:
            nursery.start_soon(keep)
            # Too large for gossip, or dropped for a stalled recipient: deliver directly at once.
            direct = len(data) > self._gossip.max_message_bytes or bool(
                await self._host.publish(self._topic, data) & {s.peer_id for s in states})
        if failed:
            self._outbox.discard(entry)  # its block is not stored: nothing to re-send
            raise ActorError(failed[0].code, f"envelope {cid} went out by gossip once, but the store failed, so "
                                             f"it is not re-sent to recipients that missed it: {failed[0].message}")
        if direct:
            entry.next_try = 0.0
        return {"cid": cid, "seq": seq, "bytes": len(data), "recipients": list(entry.to)}

    async def _publish_public(self, kind: str, body: bytes, ttl: int) -> str:
        now = int(time.time())
        draft = prepare_public(body, sender=self._me.identity, kind=kind, created=now, expires=now + ttl)
        data = draft.finish(await self._sign(draft.to_be_signed))
        await self._host.publish(self._topic, data)
        return envelope_cid(data)

    async def _sign(self, data: bytes) -> bytes:
        return await self._keys.sign(sign_key_id(self._me.seq), data)

    # -- inbound ---------------------------------------------------------------------

    async def _read_gossip_forever(self) -> None:
        async for message in self._gossip_in:
            verified = self._inbound.take(message.data)
            if verified is not None:
                await self._keep(verified, ack=True)

    async def _keep(self, verified: VerifiedEnvelope, *, ack: bool) -> bool:
        """Store an accepted envelope addressed to this node (once), ack it if it came by
        gossip (a direct delivery's response is its ack), and watch for gaps. False if it
        could not be stored: not acknowledged, so its sender delivers it again."""
        header = verified.header
        if header.public or find_recipient(header.recipients, self._me.identity) is None:
            return True
        if verified.cid in self._inbox_cids:
            return True
        try:
            payload = open_verified(verified, reader_kid=self._me.identity, reader_keys=self._reader).payload
        except EnvelopeError as exc:
            self._inbound.rejected[str(exc.code)] += 1
            return True
        # Kept whole or not at all, even if the caller is cancelled (a direct delivery's
        # handler is, at the libp2p request timeout): a CID marked held but never stored
        # would be acknowledged and lost, and an inbox number taken twice overwrites a row.
        with trio.CancelScope(shield=True):
            self._inbox_cids.add(verified.cid)
            number, self._inbox_count = self._inbox_count, self._inbox_count + 1
            entry = {"cid": verified.cid, "sender": header.sender, "kind": header.kind,
                     "seq": -1 if header.seq is None else header.seq, "received_ms": int(time.time() * 1000)}
            try:
                await self._store.kv_batch((("inbox", f"{number:016d}", ipld.encode(entry)),),
                                           blocks=((verified.data, "dag-cbor"),))
            except ActorError as exc:
                self._inbox_cids.discard(verified.cid)
                self._ctx.log.warning("envelope not kept: the store failed", extra={
                    "cid": verified.cid, "sender": header.sender, "code": exc.code})
                return False
            self._ctx.log.debug("envelope received", extra={"cid": verified.cid, "sender": header.sender,
                                                           "kind": header.kind})
            last = self._last_seq.get(header.sender, -1)
            if header.seq is not None:
                self._last_seq[header.sender] = max(last, header.seq)
                if header.seq > last + 1:  # a gap, or someone else's envelopes: ask the sender
                    self._nursery.start_soon(self._sync_from_identity, header.sender)
            if ack:
                self._queue_ack(header.sender, verified.cid)
            await self._routes.dispatch(self._ctx.tell, EnvelopeArrived(verified.cid, header.sender, header.kind,
                                                                        header.seq, payload))
        return True

    def _queue_ack(self, sender: str, cid: str) -> None:
        """Acknowledge gossip-received envelopes in batches: one stream per sender per 50 ms."""
        queued = self._acks.setdefault(sender, [])
        queued.append(cid)
        if len(queued) == 1:
            self._nursery.start_soon(self._send_acks, sender)

    async def _send_acks(self, sender: str) -> None:
        await trio.sleep(0.05)
        peer_id = await self._peer_of(sender)
        while self._acks.get(sender):
            cids, self._acks[sender] = self._acks[sender][:wire.MAX_ACKS], self._acks[sender][wire.MAX_ACKS:]
            if peer_id is None:
                continue
            try:
                await self._host.request(peer_id, wire.ACK, wire.encode({"cids": cids}),
                                         max_response=wire.MAX_REQUEST_BYTES, timeout=5.0)
            except P2pError:
                pass  # the sender will deliver again directly, and that delivery is the ack
        self._acks.pop(sender, None)

    async def _peer_of(self, identity: str) -> str | None:
        try:
            return (await self._ctx.ask("pki-resolver", ResolveIdentity(identity))).peer_id
        except ActorError:
            return None

    # -- answering peers -------------------------------------------------------------

    async def _answer_delivery(self, peer_id: str, data: bytes) -> bytes:
        if envelope_cid(data) in self._inbox_cids:
            return wire.OK
        try:
            verified = await self._inbound.check(data, forwarder=peer_id, via="direct")
        except Rejected as exc:
            return wire.error_response(exc.code, exc.message)
        self._inbound.take(data)
        if not await self._keep(verified, ack=False):
            return wire.error_response("store-failed", "the envelope could not be stored: deliver it again")
        return wire.OK

    async def _answer_ack(self, peer_id: str, data: bytes) -> bytes:
        member = self._members_by_peer.get(peer_id)
        try:
            cids = wire.ack_request(data)
        except wire.WireError as exc:
            return wire.error_response(exc.code, exc.message)
        if member is not None:
            for cid in cids:
                await self._acknowledged(cid, member.identity)
        return wire.OK

    async def _acknowledged(self, cid: str, identity: str) -> None:
        entry = self._outbox.acknowledge(cid, identity)
        if entry is not None:
            self._delivered += 1
            await self._store.kv_put("outbox", outbox_key(entry.seq), ipld.encode(entry.to_doc()))

    async def _answer_fetch(self, peer_id: str, data: bytes) -> bytes:
        try:
            key, value = wire.fetch_request(data)
        except wire.WireError as exc:
            return wire.error_response(exc.code, exc.message)
        member = self._members_by_peer.get(peer_id)
        if key == "log":
            events = await self._ctx.ask("pki-resolver", LogOf(value))
            if not events:
                return wire.error_response("unknown-identity", f"no log of {value} here")
            return wire.encode({"log": list(events)})
        if member is None:
            return wire.error_response("not-a-member", "only federation members may fetch envelopes")
        if key == "since":
            sent = self._outbox.sent_to(member.identity, value, wire.MAX_SENT_LISTED)
            return wire.encode({"sent": [list(item) for item in sent], "head": self._next_seq - 1})
        entry = self._outbox.get(value)
        if entry is None or member.identity not in entry.to:
            return wire.error_response("not-found", "no envelope with that CID was sent to you")
        block = await self._store.get_block(value)
        return wire.encode({"block": block}) if block else wire.error_response("not-found", "gone")

    # -- asking peers ----------------------------------------------------------------

    async def _fetch_log(self, peer_id: str, identity: str) -> tuple[bytes, ...]:
        answer = await self._fetch(peer_id, {"log": identity})
        events = wire.read_response(answer, "log", list)
        if not all(isinstance(e, bytes) for e in events):
            raise ActorError("malformed", f"{peer_id} answered with a log that is not event blocks")
        return tuple(events)

    async def _fetch(self, peer_id: str, request: dict[str, Any]) -> bytes:
        try:
            return await self._host.request(peer_id, wire.FETCH, wire.encode(request),
                                            max_response=wire.MAX_FETCH_RESPONSE_BYTES, timeout=5.0)
        except P2pError as exc:
            raise ActorError(exc.code, exc.message) from None

    async def _sync_from_identity(self, identity: str) -> None:
        member = self._federation.by_identity(identity)
        if member is not None:
            await self._sync(member)

    async def _sync(self, member: Any) -> None:
        """Fetch what ``member`` sent us that we lack (after a gap or a reconnection)."""
        since = self._synced.get(member.identity, -1)
        try:
            answer = await self._fetch(member.peer_id, {"since": since})
            sent = wire.read_response(answer, "sent", list)
            for seq, cid in sent:
                if cid not in self._inbox_cids:
                    block = wire.read_response(await self._fetch(member.peer_id, {"block": cid}), "block", bytes)
                    await self._answer_delivery(member.peer_id, block)
            head = ipld.decode(answer).get("head", since)
            self._synced[member.identity] = max(since, head if isinstance(head, int) else since)
        except (ActorError, wire.WireError, ValueError, TypeError) as exc:
            self._ctx.log.debug("sync failed", extra={"member": member.name, "error": str(exc)})

    async def _keep_connected(self, member: Any) -> None:
        delay = DIAL_FIRST_S
        was_connected = False
        while True:
            connected = member.peer_id in self._host.connected()
            if not connected:
                addrs = list(member.addrs)
                try:
                    state = await self._ctx.ask("pki-resolver", ResolveIdentity(member.identity))
                    addrs += [a for a in state.addrs if a not in addrs]
                except ActorError:
                    pass
                try:
                    await self._host.connect(member.peer_id, addrs)
                    connected, delay = True, DIAL_FIRST_S
                except P2pError as exc:
                    self._ctx.log.debug("dial failed", extra={"member": member.name, "code": exc.code})
            if connected and not was_connected:
                self._nursery.start_soon(self._sync, member)
            was_connected = connected
            await trio.sleep(DIAL_FIRST_S if connected else delay)
            if not connected:
                delay = min(delay * 2, DIAL_MOST_S)

    async def _retry_forever(self) -> None:
        while True:
            await trio.sleep(0.5)
            for entry in self._outbox.expire(int(time.time())):
                self._expired += len(entry.pending)
                await self._store.kv_delete("outbox", outbox_key(entry.seq))
            for entry, recipient in self._outbox.due(trio.current_time()):
                await self._deliveries.acquire()
                self._nursery.start_soon(self._deliver, entry, recipient)

    async def _deliver(self, entry: Sent, recipient: str) -> None:
        try:
            peer_id = await self._peer_of(recipient)
            data = await self._store.get_block(entry.cid)
            if peer_id is None or data is None:
                return
            answer = await self._host.request(peer_id, wire.DELIVER, data,
                                              max_response=wire.MAX_REQUEST_BYTES, timeout=10.0)
            if wire.read_response(answer, "ok", bool):
                self._failing.delivered(recipient)
                await self._acknowledged(entry.cid, recipient)
        except (P2pError, wire.WireError) as exc:
            self._ctx.log.debug("delivery failed", extra={"cid": entry.cid, "to": recipient, "code": exc.code})
            failing = self._failing.failed(recipient, trio.current_time())
            if failing is not None:
                failures, seconds = failing
                self._ctx.log.warning("direct deliveries keep failing", extra={
                    "to": recipient, "failures": failures, "seconds": round(seconds), "code": exc.code,
                    "pending": self._outbox.pending_for(recipient)})
        finally:
            self._deliveries.release()

    async def _save_replay_forever(self) -> None:
        while True:
            await trio.sleep(REPLAY_SAVE_S)
            if self._inbound.replay_dirty:
                self._inbound.replay_dirty = False
                await self._store.kv_put("router", "replay", ipld.encode(self._inbound.replay.snapshot()))

    # -- views -----------------------------------------------------------------------

    def _peers(self) -> list[dict[str, Any]]:
        connected = self._host.connected()
        rows = []
        for peer_id in sorted(connected | set(self._members_by_peer) | set(self._inbound.peers)):
            member = self._members_by_peer.get(peer_id)
            if member is not None and member.identity == self._me.identity:
                continue
            counters = self._inbound.peer(peer_id)
            rows.append({"peer_id": peer_id, "identity": member.identity if member else None,
                         "name": member.name if member else None, "member": member is not None,
                         "connected": peer_id in connected, "score": self._host.score(peer_id),
                         "last_seen": counters.last_seen, "addrs": list(member.addrs) if member else [],
                         "accepted": counters.accepted, "rejected": counters.rejected})
        return rows

    async def _read_inbox(self, after: int, count: int, payloads: bool) -> list[dict[str, Any]]:
        # Only the page is decoded and opened: a poll of a long inbox must not cost its whole length.
        page = [(int(key), value) for key, value in await self._store.kv_items("inbox") if int(key) >= after][:count]
        rows = [{"n": n, **ipld.decode(value)} for n, value in page]
        if not payloads:
            return rows
        senders: dict[str, Any] = {}
        size = 0
        for i, row in enumerate(rows):
            if size >= PAGE_PAYLOAD_BYTES:  # the reply must stay readable: the caller reads on
                return rows[:i]
            data = await self._store.get_block(row["cid"])
            size += len(data)
            try:
                if row["sender"] not in senders:
                    senders[row["sender"]] = await self._ctx.ask(
                        "pki-resolver", ResolveIdentity(row["sender"], members_only=False))
                state = senders[row["sender"]]
                verified = verify_envelope(data, resolve_sender=lambda _: state.sign_key,
                                           now=row["received_ms"] // 1000)
                row["payload"] = open_verified(verified, reader_kid=self._me.identity,
                                               reader_keys=self._reader).payload
            except (ActorError, EnvelopeError) as exc:
                row["error"] = str(getattr(exc, "code", "error"))
        return rows
