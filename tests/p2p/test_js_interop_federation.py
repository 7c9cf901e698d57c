"""A js-libp2p node on a devnet's federation topic: it receives a node's envelope with the
CID the node named, and what it publishes goes through the node's gossip validator.

Real parts: two `milagro-node run` processes (tests/devnetkit.py) and js-libp2p peers in
their own processes (tests/interop/gossip_peer.mjs: libp2p + @libp2p/gossipsub, TCP, Noise,
yamux; CIDs by npm multiformats). None of the js peers is a federation member.

- a js "watcher" dials node-1 and gets node-1's envelope to node-2 (it is not a recipient:
  gossip carries envelopes to every subscriber, only recipients can open them); its CID,
  computed in js, is the one envelope.send returned and milagro_node's for the same bytes;
- a second watcher dials node-2, to see what node-2 forwards;
- a js "rogue" publishes garbage and the announcement (``pki.announce``, body: the exported
  log) of a member that the test plays; a js "relay" then publishes a public envelope
  signed by that member. The member is real: pinned in every node's peers.toml, its identity
  log made by the identity core with Ed25519 keys the test holds (an HSM-held node key could
  not sign for us, and replaying a node's own announcement would be rejected as a replay).

Node-1 rejects the garbage (``malformed``) and forwards nothing of it, so node-2 never sees
it; both nodes accept the member's announcement and envelope, and both watchers receive them.
Skipped without node or tests/interop/node_modules, except under CI=true, where it fails.
"""

import base64
import time

import pytest
import trio
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey
from devnetkit import Devnet, eventually, inbox_cids
from gossipkit import gossip_peer, require_js_peer
from libp2p.crypto.ed25519 import Ed25519PublicKey as Libp2pEd25519PublicKey
from libp2p.peer.id import ID

from milagro_node.core.envelope import envelope_cid, inspect_envelope, seal_public
from milagro_node.core.federation_wire import ANNOUNCE_KIND, envelope_topic
from milagro_node.core.identity import export_log, make_inception, verify_log
from milagro_node.core.ipld import cid_for
from milagro_node.runtime.devnet import FEDERATION_NAME

pytestmark = pytest.mark.slow

TOPIC = envelope_topic(FEDERATION_NAME)  # /milagro/devnet/envelopes/1
GARBAGE = b"garbage from js-libp2p: not an envelope \x00\xff"
PUBLIC_BODY = b"a public notice from the test member, relayed by js-libp2p"


def raw(key) -> bytes:
    return key.public_key().public_bytes_raw()


class PlayedMember:
    """A federation member the test plays: its keys, its one-event identity log, and
    envelopes it signs. Its libp2p key only names its peer id (no host runs with it)."""

    def __init__(self) -> None:
        self.sign_key = Ed25519PrivateKey.generate()
        next_key, libp2p_key = Ed25519PrivateKey.generate(), Ed25519PrivateKey.generate()
        self.peer_id = ID.from_pubkey(Libp2pEd25519PublicKey.from_bytes(raw(libp2p_key))).to_base58()
        inception = make_inception(
            self.sign_key.sign, sign_key=raw(self.sign_key), next_key=raw(next_key),
            x25519=raw(X25519PrivateKey.generate()), peer_id=self.peer_id, created=int(time.time()),
            roles=["mfa"], addrs=[])
        self.events = [inception.bytes]
        self.identity = verify_log(self.events).identity

    def peers_toml(self) -> str:
        return "\n".join(["[[member]]", 'name = "js-test-member"', f'identity = "{self.identity}"',
                          f'peer_id = "{self.peer_id}"', "addrs = []", 'roles = ["mfa"]', ""])

    def public(self, kind: str, body: bytes, ttl: int = 600) -> bytes:
        now = int(time.time())
        return seal_public(body, sign=self.sign_key.sign, sender=self.identity, kind=kind,
                           created=now, expires=now + ttl)

    def announcement(self) -> bytes:
        return self.public(ANNOUNCE_KIND, export_log(self.events))


@pytest.fixture
def js_peer_available():
    require_js_peer()  # outside trio, so a skip keeps its reason


@pytest.fixture
def member():
    return PlayedMember()


@pytest.fixture
def net(js_peer_available, tmp_path, member):
    net = Devnet(tmp_path / "devnet", 2, extra_peers=member.peers_toml())
    try:
        net.start_all()
        yield net
    finally:
        net.stop_all()


async def knows(api, identity: str) -> bool:
    rows = await api.call("identities.list")
    return any(row["identity"] == identity and row["known"] for row in rows)


def peer_row(rows: list[dict], peer_id: str) -> dict:
    [row] = [r for r in rows if r["peer_id"] == peer_id]
    return row


async def test_js_peer_receives_envelopes_and_is_validated(net, member, tmp_path):
    n1, n2 = net.node(1), net.node(2)
    at_node = {1: [f"{n1.p2p_addr}/p2p/{n1.peer_id}"], 2: [f"{n2.p2p_addr}/p2p/{n2.peer_id}"]}
    announcement, notice = member.announcement(), member.public("test.public", PUBLIC_BODY)
    with trio.fail_after(150):
        async with net.api(1) as api1, net.api(2) as api2, \
                gossip_peer("js", tmp_path, TOPIC, dial=at_node[1]) as watcher1, \
                gossip_peer("js", tmp_path, TOPIC, dial=at_node[2]) as watcher2:
            await eventually(lambda: knows(api1, n2.identity), timeout=30, what="node-1 learns node-2")
            await watcher1.wait_for("mesh-peer", peerId=n1.peer_id)
            await watcher2.wait_for("mesh-peer", peerId=n2.peer_id)

            # 1. node-1 -> node-2; the js watcher, neither member nor recipient, gets it too
            sent = await api1.call("envelope.send", to=[n2.identity], kind="test.interop",
                                   payload=base64.b64encode(b"for node-2 only").decode())
            [seen] = await watcher1.messages(1, timeout=30, cid=sent["cid"])
            assert seen["from"] == n1.peer_id and seen["topic"] == TOPIC
            assert seen["cid"] == cid_for(seen["data"], "dag-cbor") == envelope_cid(seen["data"])
            header = inspect_envelope(seen["data"])
            assert (header.sender, header.kind, header.public) == (n1.identity, "test.interop", False)
            assert [r.kid for r in header.recipients] == [n2.identity]
            await eventually(lambda: _has(api2, sent["cid"]), timeout=30, what="node-2 receives it")

            before1 = await api1.call("envelope.counters")

            # 2. garbage and the member's announcement, from a js peer on node-1
            async with gossip_peer("js", tmp_path, TOPIC, dial=at_node[1],
                                   publish=[GARBAGE, announcement]) as rogue:
                published = await rogue.wait_for("published", count=2)
                assert [p["cid"] for p in published] == [cid_for(GARBAGE, "dag-cbor"), envelope_cid(announcement)]
                await eventually(lambda: knows(api1, member.identity), timeout=30, what="node-1 learns the member")
                await eventually(lambda: knows(api2, member.identity), timeout=30, what="node-2 learns the member")
                await eventually(lambda: _counted(api1, "malformed", before1), timeout=30,
                                 what="node-1 rejects the garbage")
                rogue_at_1 = peer_row(await api1.call("peers.list"), rogue.peer_id)

            # 3. a public envelope the member signed, from another js peer on node-1
            async with gossip_peer("js", tmp_path, TOPIC, dial=at_node[1], publish=[notice]) as relay:
                await relay.wait_for("published")
                for watcher in (watcher1, watcher2):
                    [got] = await watcher.messages(1, timeout=30, cid=envelope_cid(notice))
                    assert got["data"] == notice and got["from"] == relay.peer_id
                    [got] = await watcher.messages(1, timeout=30, cid=envelope_cid(announcement))
                    assert got["data"] == announcement and got["from"] == rogue.peer_id
                relay_at_1 = peer_row(await api1.call("peers.list"), relay.peer_id)

            after1 = await api1.call("envelope.counters")
            after2 = await api2.call("envelope.counters")
            peers2 = await api2.call("peers.list")

    # node-1 judged each js message once, by the peer that handed it over
    assert (rogue_at_1["accepted"], rogue_at_1["rejected"], rogue_at_1["member"]) == (1, 1, False)
    assert (relay_at_1["accepted"], relay_at_1["rejected"], relay_at_1["member"]) == (1, 0, False)
    assert after1["rejected"].get("malformed", 0) == before1["rejected"].get("malformed", 0) + 1
    assert after1["accepted"]["gossip"] >= before1["accepted"].get("gossip", 0) + 2
    # the garbage went no further: node-2 rejected nothing, and no js peer ever got it
    assert after2["rejected"] == {}, after2
    assert peer_row(peers2, n1.peer_id)["rejected"] == 0
    assert not {p["peer_id"] for p in peers2} & {rogue.peer_id, relay.peer_id, watcher1.peer_id}
    for watcher in (watcher1, watcher2):
        assert GARBAGE not in [m["data"] for m in watcher.events if m["event"] == "message"]
    assert b"for node-2 only" not in seen["data"]  # sealed: a non-recipient sees ciphertext


async def _has(api, cid: str) -> bool:
    return cid in await inbox_cids(api)


async def _counted(api, reason: str, before: dict) -> bool:
    counters = await api.call("envelope.counters")
    return counters["rejected"].get(reason, 0) > before["rejected"].get(reason, 0)
