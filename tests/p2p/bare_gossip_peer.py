"""A bare py-libp2p gossipsub peer for the interop tests: the Python twin of
tests/interop/gossip_peer.mjs, with the same flags and JSON events. Helper: tests/gossipkit.py.

    python bare_gossip_peer.py --topic T [--dial ADDR]... [--publish-file F]... [--listen ADDR]

--topic T         topic to subscribe to (and publish on); required
--dial ADDR       multiaddr ending in /p2p/<peer id> to dial at start-up; repeatable
--publish-file F  publish the bytes of F once some peer is in our mesh for T (py-libp2p sends
                  only to mesh peers, so a subscribed-but-not-grafted peer would get nothing);
                  repeatable, published in order
--listen ADDR     listen address; default /ip4/127.0.0.1/tcp/0

stdout, one JSON object per line:
  {"event":"ready","peerId":...,"addrs":[".../p2p/<id>"]}
  {"event":"dialed","addr":...}
  {"event":"subscribed-peer","peerId":...,"topic":T}   a peer announced a subscription to T
  {"event":"mesh-peer","peerId":...,"topic":T}         a peer joined our mesh for T
  {"event":"published","n":i,"file":F,"cid":...}        i counts from 1
  {"event":"message","from":<peer id>,"topic":T,"seqno":"<decimal>","data_b64":...,"cid":...}
  {"event":"error","where":...,"message":...}
cid: CIDv1 dag-cbor (0x71), sha2-256 of the data, base32. Our own messages are not reported.
It exits (code 0) on SIGTERM / SIGINT or when stdin closes, so keep stdin open (a pipe).

Settings that interoperate with js-libp2p 3.x + @libp2p/gossipsub 17: Noise only (new_host
would also offer TLS, SECIO and plaintext), yamux, GossipSub /meshsub/1.2.0, 1.1.0, 1.0.0 with
a 1 s heartbeat, strict signing, and a sequence-number counter whose high byte is non-zero.
"""

import argparse
import base64
import hashlib
import os
import random
import sys

import multiaddr
import trio
from libp2p import new_host
from libp2p.crypto.ed25519 import create_new_key_pair
from libp2p.crypto.x25519 import create_new_key_pair as create_x25519_key_pair
from libp2p.custom_types import TProtocol
from libp2p.peer.id import ID
from libp2p.peer.peerinfo import info_from_p2p_addr
from libp2p.pubsub.gossipsub import GossipSub
from libp2p.pubsub.pubsub import Pubsub
from libp2p.security.noise.transport import PROTOCOL_ID as NOISE_PROTOCOL_ID
from libp2p.security.noise.transport import Transport as NoiseTransport
from libp2p.stream_muxer.yamux.yamux import PROTOCOL_ID as YAMUX_PROTOCOL_ID
from libp2p.stream_muxer.yamux.yamux import Yamux
from libp2p.tools.anyio_service import background_trio_service

from peer_io import emit, exit_signals, wait_for_exit

PROTOCOLS = [TProtocol(p) for p in ("/meshsub/1.2.0", "/meshsub/1.1.0", "/meshsub/1.0.0")]




def cid_of(data: bytes) -> str:
    """CIDv1, dag-cbor, sha2-256, base32 (multibase 'b'): what gossip_peer.mjs reports."""
    raw = bytes([0x01, 0x71, 0x12, 0x20]) + hashlib.sha256(data).digest()
    return "b" + base64.b32encode(raw).decode().lower().rstrip("=")



async def run(args) -> None:
    with exit_signals() as signals:
        await serve(args, signals)


async def serve(args, signals) -> None:
    key_pair = create_new_key_pair()
    host = new_host(
        key_pair=key_pair,
        sec_opt={NOISE_PROTOCOL_ID: NoiseTransport(
            key_pair, noise_privkey=create_x25519_key_pair().private_key)},
        muxer_opt={YAMUX_PROTOCOL_ID: Yamux},
    )
    gossipsub = GossipSub(protocols=PROTOCOLS, degree=6, degree_low=4, degree_high=12,
                          heartbeat_interval=1)
    pubsub = Pubsub(host, gossipsub, strict_signing=True)
    # py-libp2p starts the counter at time.time(): js-libp2p then rejects our signatures
    pubsub.counter = (1 << 63) | random.getrandbits(62)
    me, topic = host.get_id(), args.topic

    async with host.run(listen_addrs=[multiaddr.Multiaddr(a) for a in args.listen]), \
            background_trio_service(pubsub), background_trio_service(gossipsub), \
            trio.open_nursery() as nursery:
        await pubsub.wait_until_ready()
        subscription = await pubsub.subscribe(topic)
        emit("ready", peerId=str(me), addrs=[f"{a}" for a in host.get_addrs()])

        async def receive():
            while True:
                msg = await subscription.get()
                if msg.from_id == me.to_bytes():
                    continue
                emit("message", **{"from": str(ID(msg.from_id)), "topic": topic,
                                   "seqno": str(int.from_bytes(msg.seqno, "big")),
                                   "data_b64": base64.b64encode(msg.data).decode(),
                                   "cid": cid_of(msg.data)})

        async def watch_peers():
            subscribed, meshed, published = set(), set(), False
            while True:
                for peer in pubsub.peer_topics.get(topic, set()) - subscribed:
                    subscribed.add(peer)
                    emit("subscribed-peer", peerId=str(peer), topic=topic)
                for peer in gossipsub.mesh.get(topic, set()) - meshed:
                    meshed.add(peer)
                    emit("mesh-peer", peerId=str(peer), topic=topic)
                if meshed and not published:
                    published = True
                    for n, file in enumerate(args.publish_file, 1):
                        data = open(file, "rb").read()
                        await pubsub.publish(topic, data)
                        emit("published", n=n, file=file, cid=cid_of(data))
                await trio.sleep(0.05)

        nursery.start_soon(receive)
        nursery.start_soon(watch_peers)
        for addr in args.dial:
            try:
                await host.connect(info_from_p2p_addr(multiaddr.Multiaddr(addr)))
                emit("dialed", addr=addr)
            except Exception as exc:
                emit("error", where=f"dial {addr}", message=str(exc))
        await wait_for_exit(signals)
        nursery.cancel_scope.cancel()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--topic", required=True)
    parser.add_argument("--dial", action="append", default=[])
    parser.add_argument("--publish-file", action="append", default=[])
    parser.add_argument("--listen", action="append", default=None)
    args = parser.parse_args()
    args.listen = args.listen or ["/ip4/127.0.0.1/tcp/0"]
    try:
        trio.run(run, args)
    except BaseExceptionGroup:  # py-libp2p's services raise exception groups at shutdown
        pass
    sys.stdout.flush()
    os._exit(0)  # do not wait on py-libp2p's leftover threads


if __name__ == "__main__":
    main()
