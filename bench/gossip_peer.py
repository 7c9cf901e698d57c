"""The bare baseline of bench/gossip.py: one py-libp2p gossipsub peer, as a node's host is.

It is `milagro_node.adapters.libp2p_host.open_p2p_host` itself with the node's
`GossipSettings` (Noise, yamux, 1 s heartbeat, degree 6/4/12, scoring, the same spam limits
and back-pressured publish), a random peer key, and nothing of the node on top: no topic
validator, no envelope, no API, no store. Driven by bench/gossip.py over stdin/stdout, one
JSON object per line:

    -> {"cmd": "dial", "peers": [[peer_id, addr], ...]}      <- {"event": "dialed", "failed": n}
    -> {"cmd": "status"}                                      <- {"event": "status", "connected": n,
                                                                   "topic_peers": n, "mesh": n}
    -> {"cmd": "publish", "tag": t, "count": c, "size": s, "interval": i}
                                                              <- {"event": "published", "tag": t,
                                                                   "first_ms": .., "last_ms": ..}
    -> {"cmd": "report", "tag": t}                            <- {"event": "report", "tag": t,
                                                                   "recv": [[seq, sent_ms, recv_ms]]}

A message is 16 bytes (tag u32, seq u32, send time as float64 ms since the epoch, taken just
before `publish`) padded with random bytes to ``size``. The receive time is taken when the
message leaves the subscription, as ``int(time.time() * 1000)``: the same clock and the same
truncation as a node's ``received_ms``. ``interval`` 0 publishes back to back (throughput);
otherwise the sends keep a fixed schedule with +-20% jitter.

    python bench/gossip_peer.py        (prints {"event": "ready", "peer_id": .., "addr": ..})
"""

from __future__ import annotations

import json
import os
import random
import struct
import sys
import time
from collections import defaultdict

import trio

from milagro_node.adapters.libp2p_host import GossipSettings, open_p2p_host
from milagro_node.secret_memory import SecretBytes

TOPIC = "bench/bare/1"
HEAD = struct.Struct(">IId")


def emit(event: str, **fields) -> None:
    sys.stdout.write(json.dumps({"event": event, **fields}) + "\n")
    sys.stdout.flush()


async def main() -> None:
    seed = SecretBytes.copy_from(os.urandom(32))
    async with open_p2p_host(seed, ["/ip4/127.0.0.1/tcp/0"], GossipSettings()) as host:
        received: dict[int, list[list[float]]] = defaultdict(list)
        messages = await host.subscribe(TOPIC)

        async def receive() -> None:
            async for message in messages:
                now_ms = int(time.time() * 1000)
                tag, seq, sent_ms = HEAD.unpack_from(message.data)
                received[tag].append([seq, sent_ms, now_ms])

        async def publish(tag: int, count: int, size: int, interval: float) -> None:
            pad = os.urandom(max(0, size - HEAD.size))
            first = last = 0.0
            start = trio.current_time()
            for seq in range(count):
                if interval:
                    await trio.sleep_until(start + seq * interval + random.uniform(-0.2, 0.2) * interval)
                last = time.time() * 1000
                first = first or last
                await host.publish(TOPIC, HEAD.pack(tag, seq, last) + pad)
            emit("published", tag=tag, first_ms=first, last_ms=last)

        async with trio.open_nursery() as nursery:
            nursery.start_soon(receive)
            emit("ready", peer_id=host.peer_id, addr=host.listen_addrs()[0])
            stdin = trio.wrap_file(sys.stdin)
            async for line in stdin:
                cmd = json.loads(line)
                match cmd["cmd"]:
                    case "dial":
                        failed = 0
                        for peer_id, addr in cmd["peers"]:
                            try:
                                await host.connect(peer_id, [addr])
                            except Exception:
                                failed += 1
                        emit("dialed", failed=failed)
                    case "status":
                        emit("status", connected=len(host.connected()),
                             topic_peers=len(host.gossip_peers(TOPIC)),
                             mesh=len(host._gossipsub.mesh.get(TOPIC, ())))
                    case "publish":
                        await publish(cmd["tag"], cmd["count"], cmd["size"], cmd["interval"])
                    case "report":
                        emit("report", tag=cmd["tag"], recv=received.pop(cmd["tag"], []))
            nursery.cancel_scope.cancel()  # stdin closed: the bench is done with us


if __name__ == "__main__":
    try:
        trio.run(main)
    except KeyboardInterrupt:
        pass
    sys.stdout.flush()
    os._exit(0)  # py-libp2p leaves threads behind
