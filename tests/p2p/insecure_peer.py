"""A libp2p peer that offers one security protocol only, and dials a node: run by
tests/p2p/test_federation_rogue.py to show a node refuses plaintext and SECIO.

    python insecure_peer.py --security plaintext|secio|noise --dial ADDR

plaintext  a bare py-libp2p host whose only security transport is InsecureTransport
           (/plaintext/2.0.0): what `new_host()` falls back to when nothing better is agreed
secio      likewise with SECIO (/secio/1.0.0) only
noise      the control: our own adapter (milagro_node.adapters.libp2p_host, Noise only)

Each has a fresh random key and yamux, listens nowhere and dials ADDR (a multiaddr ending in
/p2p/<peer id>) once, within 10 s. stdout, one JSON object per line:
  {"event":"ready","peerId":...,"security":...}
  {"event":"dialed","addr":...,"connected":[peer ids]}
  {"event":"dial-failed","addr":...,"error":<exception type>,"message":...,
   "causes":["Type: message", ...]}    the exception and the chain it was raised from
It then stays up (so the test can look at the node's peers) and exits (code 0) on SIGTERM /
SIGINT or when stdin closes.
"""

from __future__ import annotations

import argparse
import sys
from contextlib import asynccontextmanager
from pathlib import Path

import multiaddr
import trio

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # milagro_node, run as a script

from peer_io import emit, run_peer, wait_for_exit  # noqa: E402





@asynccontextmanager
async def bare_host(security: str):
    """A py-libp2p host offering only ``security``; yields (peer id, connect(PeerInfo), connected())."""
    from libp2p import new_host
    from libp2p.crypto.ed25519 import create_new_key_pair
    from libp2p.custom_types import TProtocol
    from libp2p.security.insecure.transport import PLAINTEXT_PROTOCOL_ID, InsecureTransport
    from libp2p.security.secio.transport import ID as SECIO_PROTOCOL_ID
    from libp2p.security.secio.transport import Transport as SecioTransport
    from libp2p.stream_muxer.yamux.yamux import PROTOCOL_ID as YAMUX_PROTOCOL_ID
    from libp2p.stream_muxer.yamux.yamux import Yamux

    key_pair = create_new_key_pair()
    if security == "plaintext":
        sec_opt = {PLAINTEXT_PROTOCOL_ID: InsecureTransport(key_pair)}
    else:
        sec_opt = {SECIO_PROTOCOL_ID: SecioTransport(key_pair)}
    host = new_host(key_pair=key_pair, sec_opt=sec_opt, muxer_opt={TProtocol(YAMUX_PROTOCOL_ID): Yamux})
    async with host.run(listen_addrs=[]):
        yield (host.get_id().to_base58(), host.connect,
               lambda: [p.to_base58() for p in host.get_connected_peers()])


@asynccontextmanager
async def noise_host():
    from milagro_node.adapters.libp2p_host import open_p2p_host
    from milagro_node.secret_memory import SecretBytes

    async with open_p2p_host(SecretBytes.random(32), []) as host:
        async def connect(info):
            await host.connect(info.peer_id.to_base58(), [str(a) for a in info.addrs], timeout=10)
        yield host.peer_id, connect, lambda: sorted(host.connected())


def causes(exc: BaseException) -> list[str]:
    """"Type: message" of the exception and what it was raised from, outermost first."""
    chain, seen = [], set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        chain.append(f"{type(exc).__name__}: {str(exc)[:200]}")
        exc = exc.__cause__ or exc.__context__
    return chain


async def run(args: argparse.Namespace) -> None:
    from libp2p.peer.peerinfo import info_from_p2p_addr

    opened = noise_host() if args.security == "noise" else bare_host(args.security)
    async with opened as (peer_id, connect, connected):
        emit("ready", peerId=peer_id, security=args.security)
        try:
            with trio.fail_after(10):
                await connect(info_from_p2p_addr(multiaddr.Multiaddr(args.dial)))
            emit("dialed", addr=args.dial, connected=connected())
        except Exception as exc:  # every way of not connecting is the result we report
            emit("dial-failed", addr=args.dial, error=type(exc).__name__, message=str(exc)[:300],
                 causes=causes(exc))
        await wait_for_exit()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--security", required=True, choices=["plaintext", "secio", "noise"])
    parser.add_argument("--dial", required=True)
    args = parser.parse_args()
    run_peer(run, args)


if __name__ == "__main__":
    main()
