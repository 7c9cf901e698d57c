"""A federation member gone bad, in its own process: it joins through node-1 and attacks the topic.

Run by tests/p2p/test_federation_rogue.py; importable for `rogue_identity` / `member_toml`,
which the test uses first to make the rogue's identity and pin it in every node's peers.toml
(so the rogue is a *member*: its announcement is valid and its own envelopes resolve).

    python rogue_peer.py --dial ADDR --topic T --sign-seed HEX --next-seed HEX
                         --x25519-seed HEX --libp2p-seed HEX --created N
                         --forge-as IDENTITY [--replay-kind KIND] [--rounds N] [--round-gap S]

It is a real libp2p host (milagro_node.adapters.libp2p_host: Noise, yamux, gossipsub) that
listens nowhere, dials ADDR only and drops any other connection. Once ADDR's node is in its
mesh it announces its identity log (a valid `pki.announce`), and re-announces every 5 s
until it has captured an honest envelope of kind KIND (default test.honest) from the topic.
Then it publishes --rounds rounds (default 3, --round-gap s apart) of:

  garbage   GARBAGE, bytes that are no envelope                          -> malformed
  forged    an envelope whose sender is --forge-as, signed with the
            rogue's own key                                              -> bad-signature
  expired   its own envelope, created 2 h and expiring 1 h ago (well
            past the 300 s clock skew), correctly signed                 -> expired
  replay    the captured envelope's exact bytes                          -> replayed

Before the first round it makes ADDR's peer a gossipsub *direct* peer, so its messages still
reach that node after the node prunes it from its mesh (which the first invalid message makes
it do at the next heartbeat); a rogue does not care for the mesh.

stdout, one JSON object per line:
  {"event":"ready","peerId":...,"identity":...}
  {"event":"dialed","addr":...}                  or {"event":"error","where":"dial",...}
  {"event":"mesh-peer","peerId":...}
  {"event":"published","what":"announce"|"garbage"|"forged"|"expired"|"replay","round":r,"cid":...}
  {"event":"captured","cid":...,"kind":...,"sender":...}
  {"event":"message","from":...,"cid":...,"kind":...,"sender":...}   everything it receives
  {"event":"dropped-peer","peerId":...}          a connection it did not make, closed
  {"event":"done","rounds":N}
It exits (code 0) on SIGTERM / SIGINT or when stdin closes.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
import time
from pathlib import Path

import attrs
import trio
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # milagro_node, run as a script

from milagro_node.core import federation_wire as wire  # noqa: E402
from milagro_node.core import identity as ident  # noqa: E402
from milagro_node.core.envelope import (  # noqa: E402
    EnvelopeError, RecipientKey, envelope_cid, inspect_envelope, seal, seal_public,
)
from milagro_node.core.multiaddr import ed25519_peer_id  # noqa: E402
from peer_io import emit, run_peer, wait_for_exit  # noqa: E402

GARBAGE = b"\x00\xffthis is not an envelope \x13\x37" * 4
CREATED = 1_767_225_600  # 2026-01-01: the rogue's inception `created` (informational)
ROLES = ("mfa",)


@attrs.frozen
class RogueIdentity:
    """The rogue's keys (seeds), its one-event identity log and what that log names."""

    sign_seed: bytes = attrs.field(repr=False)
    next_seed: bytes = attrs.field(repr=False)
    x25519_seed: bytes = attrs.field(repr=False)
    libp2p_seed: bytes = attrs.field(repr=False)
    created: int
    events: tuple[bytes, ...] = attrs.field(repr=False)
    identity: str
    peer_id: str
    x25519: bytes = attrs.field(repr=False)

    def sign(self, message: bytes) -> bytes:
        return Ed25519PrivateKey.from_private_bytes(self.sign_seed).sign(message)

    def argv(self) -> list[str]:
        """The flags that hand these seeds to the script."""
        return ["--sign-seed", self.sign_seed.hex(), "--next-seed", self.next_seed.hex(),
                "--x25519-seed", self.x25519_seed.hex(), "--libp2p-seed", self.libp2p_seed.hex(),
                "--created", str(self.created)]


def seeds_for(label: str) -> dict[str, bytes]:
    """Four fixed 32-byte seeds for ``label``."""
    return {what: hashlib.sha256(f"milagro rogue peer {label}/{what}".encode()).digest()
            for what in ("sign_seed", "next_seed", "x25519_seed", "libp2p_seed")}


def _public(seed: bytes) -> bytes:
    return Ed25519PrivateKey.from_private_bytes(seed).public_key().public_bytes_raw()


def rogue_identity(sign_seed: bytes, next_seed: bytes, x25519_seed: bytes, libp2p_seed: bytes,
                   created: int = CREATED) -> RogueIdentity:
    """Deterministic: the same seeds and ``created`` give the same inception, so the same identity."""
    peer_id = ed25519_peer_id(_public(libp2p_seed))
    x25519 = X25519PrivateKey.from_private_bytes(x25519_seed).public_key().public_bytes_raw()
    inception = ident.make_inception(
        Ed25519PrivateKey.from_private_bytes(sign_seed).sign, sign_key=_public(sign_seed),
        next_key=_public(next_seed), x25519=x25519, peer_id=peer_id, created=created, roles=list(ROLES))
    state = ident.verify_log([inception.bytes])
    return RogueIdentity(sign_seed, next_seed, x25519_seed, libp2p_seed, created, (inception.bytes,),
                         state.identity, peer_id, x25519)


def member_toml(rogue: RogueIdentity, name: str = "rogue") -> str:
    """A [[member]] table pinning the rogue (no addresses: nobody can dial it)."""
    return "\n".join(["[[member]]", f'name = "{name}"', f'identity = "{rogue.identity}"',
                      f'peer_id = "{rogue.peer_id}"', "addrs = []", f"roles = {json.dumps(list(ROLES))}", ""])


# -- the process ---------------------------------------------------------------------




def describe(data: bytes) -> dict:
    try:
        header = inspect_envelope(data)
    except EnvelopeError as exc:
        return {"cid": envelope_cid(data), "kind": None, "sender": None, "error": str(exc.code)}
    return {"cid": envelope_cid(data), "kind": header.kind, "sender": header.sender}



async def run(args: argparse.Namespace) -> None:
    from libp2p.peer.peerinfo import info_from_p2p_addr
    import multiaddr

    from milagro_node.adapters.libp2p_host import open_p2p_host
    from milagro_node.secret_memory import SecretBytes

    rogue = rogue_identity(bytes.fromhex(args.sign_seed), bytes.fromhex(args.next_seed),
                           bytes.fromhex(args.x25519_seed), bytes.fromhex(args.libp2p_seed), args.created)
    target = info_from_p2p_addr(multiaddr.Multiaddr(args.dial))
    target_id = target.peer_id.to_base58()
    async with open_p2p_host(SecretBytes.copy_from(rogue.libp2p_seed), []) as host:
        assert host.peer_id == rogue.peer_id, (host.peer_id, rogue.peer_id)

        async def answer_fetch(peer_id: str, request: bytes) -> bytes:  # as any member would
            try:
                key, value = wire.fetch_request(request)
            except wire.WireError as exc:
                return wire.error_response(exc.code, exc.message)
            if key == "log" and value == rogue.identity:
                return wire.encode({"log": list(rogue.events)})
            return wire.error_response("not-found", "the rogue serves only its own log")

        host.serve(wire.FETCH, answer_fetch, max_request=wire.MAX_REQUEST_BYTES,
                   max_response=wire.MAX_FETCH_RESPONSE_BYTES)
        inbound = await host.subscribe(args.topic)
        emit("ready", peerId=host.peer_id, identity=rogue.identity)
        captured: list[bytes] = []
        got_capture = trio.Event()
        in_mesh = trio.Event()

        async def publish(what: str, data: bytes, round_: int = 0) -> None:
            await host.publish(args.topic, data)
            emit("published", what=what, round=round_, cid=envelope_cid(data))

        async def receive() -> None:
            async for message in inbound:
                info = describe(message.data)
                emit("message", **{"from": message.origin}, **info)
                if not captured and info["kind"] == args.replay_kind:
                    captured.append(message.data)
                    emit("captured", **info)
                    got_capture.set()

        async def guard() -> None:
            """Keep to node-1: close anything else, note when node-1 is in our mesh."""
            mesh = host._gossipsub.mesh  # noqa: SLF001 - a test peer may look inside
            while True:
                for peer in host.connected() - {target_id}:
                    emit("dropped-peer", peerId=peer)
                    await host.disconnect(peer)
                if not in_mesh.is_set() and target.peer_id in mesh.get(args.topic, ()):
                    emit("mesh-peer", peerId=target_id)
                    in_mesh.set()
                await trio.sleep(0.05)

        async def announce_until_captured() -> None:
            body = ident.export_log(list(rogue.events))
            while not got_capture.is_set():
                now = int(time.time())
                await publish("announce", seal_public(body, sign=rogue.sign, sender=rogue.identity,
                                                      kind=wire.ANNOUNCE_KIND, created=now, expires=now + 600))
                with trio.move_on_after(5):
                    await got_capture.wait()

        async def attack() -> None:
            await in_mesh.wait()
            async with trio.open_nursery() as announcing:
                announcing.start_soon(announce_until_captured)
                await got_capture.wait()
            host._gossipsub.direct_peers[target.peer_id] = target  # noqa: SLF001
            to_self = [RecipientKey(rogue.identity, rogue.x25519)]
            for round_ in range(1, args.rounds + 1):
                now = int(time.time())
                await publish("garbage", GARBAGE, round_)
                await publish("forged", seal(
                    b"I am not who I say", sign=rogue.sign, suite="mx1", sender=args.forge_as,
                    kind="test.forged", recipients=to_self, created=now, expires=now + 600), round_)
                await publish("expired", seal(
                    b"long gone", sign=rogue.sign, suite="mx1", sender=rogue.identity,
                    kind="test.expired", recipients=to_self, created=now - 7200, expires=now - 3600), round_)
                await publish("replay", captured[0], round_)
                if round_ < args.rounds:
                    await trio.sleep(args.round_gap)
            emit("done", rounds=args.rounds)

        async with trio.open_nursery() as nursery:
            nursery.start_soon(receive)
            nursery.start_soon(guard)
            try:
                await host.connect(target_id, [str(a) for a in target.addrs])
                emit("dialed", addr=args.dial)
                nursery.start_soon(attack)
            except Exception as exc:  # P2pError: reported, the test decides
                emit("error", where="dial", message=str(exc))
            await wait_for_exit()
            nursery.cancel_scope.cancel()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--dial", required=True)
    parser.add_argument("--topic", required=True)
    for flag in ("--sign-seed", "--next-seed", "--x25519-seed", "--libp2p-seed", "--forge-as"):
        parser.add_argument(flag, required=True)
    parser.add_argument("--created", type=int, default=CREATED)
    parser.add_argument("--replay-kind", default="test.honest")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--round-gap", type=float, default=0.5)
    args = parser.parse_args()
    run_peer(run, args)


if __name__ == "__main__":
    main()
