"""The libp2p adapter: the only module that imports py-libp2p.

Adapters layer. The envelope-router actor opens one `P2pHost` and is its only user; the
rest of the node sees libp2p through the router's messages. Swap the library by rewriting
this file.

What it fixes in py-libp2p's defaults (measured, see the design notes):

- security: Noise only. ``new_host()`` would also offer TLS, SECIO and *plaintext*; a peer
  that speaks only plaintext (or SECIO) fails protocol negotiation and is never connected;
- muxer: yamux;
- gossipsub: a 1 s heartbeat (the default is 120 s), spam limits sized for a federation
  (the default drops a peer above 10 msg/s per topic), peer scoring on: an invalid message
  costs its forwarder score, and a peer below the graylist threshold is ignored;
- the message sequence counter starts with its high bit set, or js-libp2p rejects our
  signatures;
- ``publish`` never blocks in the library and drops RPCs when a peer's 32-slot queue is
  full: `P2pHost.publish` waits for room first (back-pressure, not loss);
- a subscription's channel holds 32 messages and drops the rest: we read it in a task that
  only moves messages into our own bounded channel;
- a message that passed validation reaches the subscription only after the library has
  forwarded it to its mesh peers (0.7-1.8 ms per message here): our validator's acceptance
  puts it in our channel at once and lets its reader run before the forwarding, and the
  library's copy is skipped (bench/gossip.py p50 at 1 KiB / 64 KiB: 3 nodes 10.7 -> 9.2 and
  16.1 -> 13.2 ms; 10 nodes, where a node forwards to up to 6 peers, 44.6 -> 26.2-26.4 and
  57.6 -> 34.0-34.5 ms);
- yamux credits the sender's window after every read (``PY_YAMUX_RELEASE_ON_READ``): a
  gossip RPC is read as 2-3 reads (its varint prefix byte by byte, then its body), so each
  RPC cost its receiver 2-3 encrypted window-update frames and its sender as many to read.
  Off, the window is credited once half of it is consumed, as go-yamux does: one hop of a
  1 KiB message between two peers went from 7.8-8.9 to 4.7-6.1 ms (p50).

Request/response (`serve`, `request`) carries our own protocols (fetch by CID, direct
delivery); both sides bound sizes and time.

Resource handling: `open_p2p_host` is an async context manager; leaving it closes the
host. py-libp2p raises exception groups at shutdown; they are swallowed there, only there.
"""

from __future__ import annotations

import logging
import os
import random
from collections import OrderedDict
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager
from typing import Any

import attrs
import multiaddr
import trio
from libp2p import new_host
from libp2p.crypto.ed25519 import Ed25519PrivateKey
from libp2p.crypto.keys import KeyPair
from libp2p.crypto.x25519 import create_new_key_pair as create_x25519_key_pair
from libp2p.custom_types import TProtocol
from libp2p.peer.id import ID
from libp2p.peer.peerinfo import PeerInfo
from libp2p.pubsub.gossipsub import GossipSub
from libp2p.pubsub.pubsub import Pubsub
from libp2p.pubsub.rpc_queue import OutBoundQueueSize
from libp2p.pubsub.score import ScoreParams, TopicScoreParams
from libp2p.request_response.api import RequestResponse, RequestResponseConfig
from libp2p.request_response.codec import BytesCodec
from libp2p.security.noise.transport import PROTOCOL_ID as NOISE_PROTOCOL_ID
from libp2p.security.noise.transport import Transport as NoiseTransport
from libp2p.stream_muxer.yamux.yamux import PROTOCOL_ID as YAMUX_PROTOCOL_ID
from libp2p.stream_muxer.yamux.yamux import Yamux
from libp2p.tools.anyio_service import background_trio_service

from milagro_node.secret_memory import SecretBytes

# Read by py-libp2p's yamux at every read, not at import (see above); an operator's own wins.
os.environ.setdefault("PY_YAMUX_RELEASE_ON_READ", "0")

log = logging.getLogger("milagro_node.libp2p")
# py-libp2p detaches its loggers from the root at import (they fall through to Python's
# bare last-resort printer); hand them back so the node's log format and levels apply.
logging.getLogger("libp2p").propagate = True

GOSSIP_PROTOCOLS = [TProtocol("/meshsub/1.2.0"), TProtocol("/meshsub/1.1.0"), TProtocol("/meshsub/1.0.0")]
# Publish waits while any peer's outbound queue is fuller than this (the library drops at 32)...
QUEUE_HIGH_WATER = OutBoundQueueSize - 4
# ...but not for a peer whose queue has stayed that full this long: it has stalled (a stopped
# or starved process), and waiting for it would stall every publish to everyone else.
STALLED_AFTER_S = 1.0
# Gossip message ids whose validation verdict is kept (copies of one message share it).
VERDICTS_KEPT = 4096


class P2pError(Exception):
    """A network operation failed. ``code``: p2p-unreachable, p2p-refused, p2p-timeout, p2p-too-large."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message


@attrs.frozen
class GossipSettings:
    heartbeat_s: int = 1
    degree: int = 6
    degree_low: int = 4
    degree_high: int = 12
    # Per peer per topic; a burst of envelopes from one member must not trip it.
    max_messages_per_second: float = 1000.0
    max_message_bytes: int = 1 << 20
    # Each invalid message costs its forwarder `invalid_weight` (decaying by `invalid_decay`
    # per heartbeat); below `graylist` a peer's RPCs are ignored.
    invalid_weight: float = 10.0
    invalid_decay: float = 0.9
    graylist: float = -400.0


@attrs.frozen
class InboundMessage:
    """A gossip message that passed validation: who made it, who handed it to us, the bytes."""

    origin: str  # peer id of the publisher (signed by it)
    forwarder: str  # peer id of the neighbour that sent it
    topic: str
    data: bytes = attrs.field(repr=False)


class _Subscription:
    """Our side of one topic's subscription: which accepted messages went out early."""

    def __init__(self, topic: str, send: trio.MemorySendChannel[InboundMessage], message_id: Any, me: bytes) -> None:
        self._topic, self._send, self._message_id, self._me = topic, send, message_id, me
        self._early: OrderedDict[bytes, None] = OrderedDict()  # ids the library will deliver again

    def inbound(self, msg: Any, forwarder: Any) -> InboundMessage:
        origin = ID(msg.from_id).to_base58()
        return InboundMessage(origin, origin if forwarder is None else forwarder.to_base58(), self._topic,
                              bytes(msg.data))

    def deliver_early(self, key: bytes, msg: Any, forwarder: Any) -> bool:
        """Just accepted: into our channel now, if it has room (else the library's copy goes)."""
        if msg.from_id == self._me or key in self._early:  # the library drops our own, echoed
            return False
        try:
            self._send.send_nowait(self.inbound(msg, forwarder))
        except (trio.WouldBlock, trio.ClosedResourceError, trio.BrokenResourceError):
            return False
        self._early[key] = None
        while len(self._early) > VERDICTS_KEPT:
            self._early.popitem(last=False)
        return True

    def delivered_early(self, msg: Any) -> bool:
        """The library's copy of a message: True if it went out early (then skip it)."""
        try:
            del self._early[self._message_id(msg)]
        except KeyError:
            return False
        return True


# validator(origin peer id, forwarder peer id, data) -> accept?
Validator = Callable[[str, str, bytes], Awaitable[bool]]
# handler(peer id, request bytes) -> response bytes
RequestHandler = Callable[[str, bytes], Awaitable[bytes]]


def host_key_pair(seed: SecretBytes) -> KeyPair:
    """The libp2p Ed25519 key pair from the node's 32-byte seed (py-libp2p keeps it in
    process memory: a libp2p host key cannot live in the HSM)."""
    private = Ed25519PrivateKey.new(seed.reveal())
    return KeyPair(private, private.get_public_key())


def score_params(settings: GossipSettings) -> ScoreParams:
    return ScoreParams(
        p4_invalid_messages=TopicScoreParams(weight=settings.invalid_weight, cap=1000.0,
                                             decay=settings.invalid_decay),
        publish_threshold=settings.graylist / 2,
        gossip_threshold=settings.graylist / 4,
        graylist_threshold=settings.graylist,
        accept_px_threshold=0.0,
    )


class P2pHost:
    """One running libp2p host: gossip topics, peers, request/response."""

    def __init__(self, host: Any, pubsub: Pubsub, gossipsub: GossipSub, nursery: trio.Nursery,
                 settings: GossipSettings) -> None:
        self._host, self._pubsub, self._gossipsub = host, pubsub, gossipsub
        self._nursery = nursery
        self._settings = settings
        self._rr = RequestResponse(host)
        self.peer_id = host.get_id().to_base58()
        self._full_since: dict[Any, float] = {}  # peer -> trio time its queue was first seen full
        self._stalled: set[Any] = set()  # peers published without (logged once per stall)
        self._subscribed: dict[str, _Subscription] = {}

    # -- addresses and peers ---------------------------------------------------------

    def listen_addrs(self) -> list[str]:
        return [str(addr) for addr in self._host.get_addrs()]

    def connected(self) -> set[str]:
        return {peer.to_base58() for peer in self._host.get_connected_peers()}

    def score(self, peer_id: str) -> float:
        topics = list(self._pubsub.topic_ids)
        try:
            return round(self._gossipsub.scorer.score(ID.from_base58(peer_id), topics), 3)
        except Exception:  # a peer the scorer never saw
            return 0.0

    def gossip_peers(self, topic: str) -> set[str]:
        return {peer.to_base58() for peer in self._pubsub.peer_topics.get(topic, ())}

    async def connect(self, peer_id: str, addrs: Sequence[str], *, timeout: float = 5.0) -> None:
        """Dial ``peer_id`` at ``addrs``; raise P2pError if no address works."""
        info = PeerInfo(ID.from_base58(peer_id), [multiaddr.Multiaddr(a) for a in addrs])
        try:
            with trio.fail_after(timeout):
                await self._host.connect(info)
        except trio.TooSlowError:
            raise P2pError("p2p-timeout", f"dialing {peer_id} took more than {timeout:g}s") from None
        except Exception as exc:  # the library raises many types for "could not connect"
            raise P2pError("p2p-unreachable", f"could not connect to {peer_id}: {type(exc).__name__}") from None

    async def disconnect(self, peer_id: str) -> None:
        try:
            await self._host.disconnect(ID.from_base58(peer_id))
        except Exception:
            pass

    # -- gossip ----------------------------------------------------------------------

    def set_validator(self, topic: str, validator: Validator) -> None:
        """Check every message on ``topic`` from a peer; the library also runs validators on
        what this host publishes itself, which are accepted as they are.

        One gossip message (one message id) gets one verdict: the library marks a message
        seen only after validating it, so the same message arriving from two peers at once
        is validated twice, and the second copy would fail the replay check and cost an
        honest forwarder score. A copy that arrives while its twin is being checked waits
        for that verdict instead.

        An accepted message goes to the topic's subscription (`subscribe`) at once."""
        me = self._host.get_id()
        message_id = self._pubsub._msg_id_constructor  # the library's own (from, seqno)
        verdicts: OrderedDict[bytes, trio.Event | bool] = OrderedDict()

        async def check(forwarder: ID, msg: Any) -> bool:
            if forwarder == me:
                return True
            key = message_id(msg)
            while isinstance(verdict := verdicts.get(key), trio.Event):
                await verdict.wait()
            if verdict is not None:
                return verdict
            done, verdict, early = trio.Event(), None, False
            verdicts[key] = done
            try:
                verdict = await validator(ID(msg.from_id).to_base58(), forwarder.to_base58(), bytes(msg.data))
                subscription = self._subscribed.get(topic)
                early = bool(verdict) and subscription is not None and subscription.deliver_early(key, msg, forwarder)
            finally:
                if verdicts.get(key) is done:
                    if verdict is None:
                        del verdicts[key]
                    else:
                        verdicts[key] = verdict
                done.set()
            while len(verdicts) > VERDICTS_KEPT:
                verdicts.popitem(last=False)
            if early:  # one scheduler round: its reader, just woken, runs before the library forwards it
                await trio.lowlevel.cancel_shielded_checkpoint()
            return verdict

        self._pubsub.set_topic_validator(topic, check, is_async_validator=True)

    async def subscribe(self, topic: str, *, buffer: int = 1024) -> trio.MemoryReceiveChannel[InboundMessage]:
        """Messages on ``topic`` that passed its validator, not our own, in a bounded channel.

        Each arrives once: from the validator as soon as it accepts it (`set_validator`), or,
        for any the validator did not hand over, from the library's subscription. That holds
        only 32 messages, so a trivial task drains it at once. When ours is full, a message
        is left to the library's copy, the drain waits and the library drops the overflow: a
        reader that falls that far behind relies on re-sends (gossip is best effort).
        """
        library = await self._pubsub.subscribe(topic)
        send, receive = trio.open_memory_channel[InboundMessage](buffer)
        me = self._host.get_id().to_bytes()
        subscription = self._subscribed[topic] = _Subscription(topic, send, self._pubsub._msg_id_constructor, me)

        async def drain() -> None:
            async with send:
                while True:
                    msg = await library.get()
                    if msg.from_id != me and not subscription.delivered_early(msg):
                        await send.send(subscription.inbound(msg, None))

        self._nursery.start_soon(drain)
        return receive

    async def publish(self, topic: str, data: bytes) -> set[str]:
        """Publish once every gossip peer's send queue has room (the library would drop).

        A peer whose queue stays full for `STALLED_AFTER_S` is not waited for: the message is
        published anyway, and the library may drop it for that peer. Returns the ids of the
        peers it may have been dropped for (empty when everyone had room), for the caller to
        deliver to directly.
        """
        if len(data) > self._settings.max_message_bytes:
            raise P2pError("p2p-too-large", f"{len(data)} bytes is more than gossip carries "
                           f"({self._settings.max_message_bytes}); deliver it directly")
        while True:
            now = trio.current_time()
            full = {peer for peer, queue in self._pubsub.peer_queues.items() if len(queue) >= QUEUE_HIGH_WATER}
            self._full_since = {peer: self._full_since.get(peer, now) for peer in full}
            if all(now - since >= STALLED_AFTER_S for since in self._full_since.values()):
                break
            await trio.sleep(0.002)
        await self._pubsub.publish(topic, data)
        for peer in full - self._stalled:
            log.warning("gossip peer stalled: publishing without it", extra={"peer": peer.to_base58()})
        self._stalled = full
        return {peer.to_base58() for peer in full}

    # -- request/response ------------------------------------------------------------

    def serve(self, protocol: str, handler: RequestHandler, *, max_request: int, max_response: int,
              timeout: float = 10.0) -> None:
        async def answer(request: bytes, context: Any) -> bytes:
            return await handler(context.peer_id.to_base58(), request)

        config = RequestResponseConfig(timeout=timeout, max_request_size=max_request,
                                       max_response_size=max_response, max_concurrent_inbound=64)
        self._rr.set_handler(TProtocol(protocol), answer, BytesCodec(), config)

    async def request(self, peer_id: str, protocol: str, data: bytes, *, max_response: int,
                      timeout: float = 10.0) -> bytes:
        config = RequestResponseConfig(timeout=timeout, max_request_size=max(len(data), 1),
                                       max_response_size=max_response)
        try:
            return await self._rr.send_request(ID.from_base58(peer_id), [TProtocol(protocol)], data,
                                               BytesCodec(), config)
        except Exception as exc:
            name = type(exc).__name__
            code = "p2p-timeout" if "Timeout" in name else "p2p-unreachable"
            raise P2pError(code, f"{protocol} request to {peer_id} failed: {name}") from None


@asynccontextmanager
async def open_p2p_host(seed: SecretBytes, listen: Sequence[str],
                        settings: GossipSettings = GossipSettings()) -> AsyncIterator[P2pHost]:
    """A running host with the node's peer key, listening on ``listen`` (multiaddr strings)."""
    key_pair = host_key_pair(seed)
    noise = NoiseTransport(key_pair, noise_privkey=create_x25519_key_pair().private_key)
    host = new_host(
        key_pair=key_pair,
        sec_opt={NOISE_PROTOCOL_ID: noise},
        muxer_opt={TProtocol(YAMUX_PROTOCOL_ID): Yamux},
        listen_addrs=[multiaddr.Multiaddr(a) for a in listen],
    )
    gossipsub = GossipSub(
        protocols=GOSSIP_PROTOCOLS,
        degree=settings.degree,
        degree_low=settings.degree_low,
        degree_high=settings.degree_high,
        heartbeat_interval=settings.heartbeat_s,
        heartbeat_initial_delay=0.1,
        score_params=score_params(settings),
        max_messages_per_topic_per_second=settings.max_messages_per_second,
    )
    pubsub = Pubsub(host, gossipsub, max_inbound_rpc_size=settings.max_message_bytes + (64 << 10))
    pubsub.counter = (1 << 63) | random.getrandbits(62)  # js-libp2p needs the high byte set
    try:
        async with host.run(listen_addrs=[multiaddr.Multiaddr(a) for a in listen]):
            async with trio.open_nursery() as nursery:
                async with background_trio_service(pubsub), background_trio_service(gossipsub):
                    await pubsub.wait_until_ready()
                    yield P2pHost(host, pubsub, gossipsub, nursery, settings)
                    nursery.cancel_scope.cancel()
    except BaseExceptionGroup as group:
        # py-libp2p's services raise groups when cancelled; re-raise anything that is not that.
        rest = group.split(trio.Cancelled)[1]
        if rest is not None:
            raise rest from None
