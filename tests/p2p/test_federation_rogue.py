"""Hostile peers against a 3-node devnet (separate processes, libp2p on 127.0.0.1): issue 5's
"a rogue process ... has them rejected at validation and never forwarded, while honest
envelopes still arrive; a plaintext-only libp2p peer cannot connect".

The rogue (tests/p2p/rogue_peer.py) is a pinned member gone bad: its identity is made here
from fixed seeds and appended to every node's peers.toml; it dials node-1 only, announces
itself (valid), captures an honest envelope node-2 sends node-3, then publishes rounds of
garbage, forged (node-1's identity as sender, the rogue's signature), expired and replayed
envelopes. Node-1 must reject each at validation with its reason, forward none of them
(nodes 2 and 3 count none of those reasons), and dock the rogue's peer score; envelopes the
nodes send during and after the attack arrive.

The insecure peers (tests/p2p/insecure_peer.py) offer plaintext only or SECIO only and must
fail to connect to node-1; a Noise peer built on our adapter connects (the control).
"""

import base64
import sys
from pathlib import Path

import pytest
import trio

from devnetkit import Devnet, eventually, inbox, inbox_cids
from gossipkit import peer_process
from milagro_node.core.federation_wire import envelope_topic

sys.path.insert(0, str(Path(__file__).resolve().parent))
from rogue_peer import member_toml, rogue_identity, seeds_for  # noqa: E402

pytestmark = pytest.mark.slow

HERE = Path(__file__).resolve().parent
ROGUE_SCRIPT = HERE / "rogue_peer.py"
INSECURE_SCRIPT = HERE / "insecure_peer.py"
ROGUE = rogue_identity(**seeds_for("test_federation_rogue"))
TOPIC = envelope_topic("devnet")
# What each of the rogue's messages must be rejected with (the garbage: envelope step 2).
ATTACK_REASONS = {"garbage": "malformed", "forged": "bad-signature", "expired": "expired",
                  "replay": "replayed"}


@pytest.fixture(scope="module")
def net(tmp_path_factory):
    net = Devnet(tmp_path_factory.mktemp("rogue"), 3, extra_peers=member_toml(ROGUE))
    try:
        net.start_all()
        yield net
    finally:
        net.stop_all()


def peer_script(script: Path, args: list[str], workdir: Path, name: str):
    """Run one of this directory's peer scripts in its own process (gossipkit.peer_process)."""
    return peer_process([sys.executable, str(script), *args], workdir, name)


def dial_addr(net: Devnet, i: int) -> str:
    return f"{net.node(i).p2p_addr}/p2p/{net.node(i).peer_id}"


async def call(net: Devnet, i: int, method: str, **params):
    async with net.api(i) as api:
        return await api.call(method, **params)


async def send(net: Devnet, sender: int, recipients: list[int], payload: bytes, kind: str = "test.note") -> str:
    sent = await call(net, sender, "envelope.send", to=[net.node(r).identity for r in recipients],
                      kind=kind, payload=base64.b64encode(payload).decode())
    return sent["cid"]


async def peer_row(net: Devnet, i: int, peer_id: str) -> dict | None:
    return next((row for row in await call(net, i, "peers.list") if row["peer_id"] == peer_id), None)


async def wait_for_mesh(net: Devnet, nodes: list[int]) -> None:
    names = {f"node-{j}" for j in nodes}
    for i in nodes:
        async def all_connected():
            rows = await call(net, i, "peers.list")
            return all(row["connected"] for row in rows if row["name"] in names - {f"node-{i}"})
        await eventually(all_connected, timeout=30, what=f"node-{i} connected to {sorted(names)}")


def attack_counts(counters: dict) -> dict[str, int]:
    return {reason: counters["rejected"].get(reason, 0) for reason in ATTACK_REASONS.values()}


async def test_rogue_member_rejected_at_validation_and_never_forwarded(net, tmp_path):
    with trio.fail_after(180):
        await wait_for_mesh(net, [1, 2, 3])
        before = attack_counts(await call(net, 1, "envelope.counters"))
        args = ["--dial", dial_addr(net, 1), "--topic", TOPIC, *ROGUE.argv(),
                "--forge-as", net.node(1).identity, "--replay-kind", "test.honest", "--rounds", "3", "--round-gap", "1"]
        async with peer_script(ROGUE_SCRIPT, args, tmp_path, "rogue") as rogue:
            assert rogue.peer_id == ROGUE.peer_id
            await rogue.wait_for("dialed", timeout=15)
            await rogue.wait_for("mesh-peer", timeout=30)
            await rogue.wait_for("published", timeout=15, what="announce")

            async def node1_knows_rogue():
                rows = await call(net, 1, "identities.list")
                return any(row["identity"] == ROGUE.identity and row["known"] for row in rows)
            await eventually(node1_knows_rogue, timeout=30, what="node-1 took the rogue's announcement")

            # An honest envelope for the rogue to capture (node-1 forwards it to its mesh).
            honest = await send(net, 2, [3], b"honest, before the attack", kind="test.honest")
            [captured] = await rogue.wait_for("captured", timeout=30)
            assert captured["cid"] == honest
            expected = {honest: [3]}
            # While the rogue's rounds go out ...
            expected[await send(net, 1, [2, 3], b"during the attack, from node-1")] = [2, 3]
            expected[await send(net, 3, [1], b"during the attack, from node-3")] = [1]
            await rogue.wait_for("done", timeout=30)
            # ... and after.
            expected[await send(net, 2, [1], b"after the attack, from node-2")] = [1]
            expected[await send(net, 1, [3], b"after the attack, from node-1")] = [3]
            sent_by_rogue = [e for e in rogue.events if e["event"] == "published" and e["what"] in ATTACK_REASONS]
            assert {e["what"] for e in sent_by_rogue} == set(ATTACK_REASONS)

            # Node-1 rejected every kind of attack at validation, with its reason ...
            async def node1_rejected_all():
                now = attack_counts(await call(net, 1, "envelope.counters"))
                return all(now[r] > before[r] for r in now) and now
            rejected_at_1 = await eventually(node1_rejected_all, timeout=20,
                                             what="node-1 rejected garbage, forged, expired and replayed")

            # ... and docked the rogue's peer score.
            async def rogue_score_negative():
                row = await peer_row(net, 1, ROGUE.peer_id)
                return row is not None and row["connected"] and row["score"] < 0 and row
            rogue_at_1 = await eventually(rogue_score_negative, timeout=15, what="the rogue's score on node-1 < 0")

            # Honest envelopes sent before, during and after the attack arrived.
            for cid, recipients in expected.items():
                for r in recipients:
                    async def arrived():
                        async with net.api(r) as api:
                            return cid in await inbox_cids(api)
                    await eventually(arrived, timeout=30, what=f"node-{r} received {cid}")
            async with net.api(3) as api:
                rows = await inbox(api)
            assert [row["cid"] for row in rows].count(honest) == 1, "the replay reached node-3's inbox"

            # Nothing node-1 rejected was forwarded: nodes 2 and 3 never saw any of it.
            await trio.sleep(2)  # two heartbeats: any forwarded message would have been counted
            for i in (2, 3):
                counts = attack_counts(await call(net, i, "envelope.counters"))
                assert counts == dict.fromkeys(ATTACK_REASONS.values(), 0), f"node-{i} rejected {counts}"
                row = await peer_row(net, i, ROGUE.peer_id)
                assert row is None or not row["connected"], f"the rogue reached node-{i} directly"
            assert not [e for e in rogue.events if e["event"] == "dropped-peer"]
            # The honest forwarders kept their standing at node-1: all of it was the rogue's.
            for i in (2, 3):
                row = await peer_row(net, 1, net.node(i).peer_id)
                assert row["rejected"] == 0 and row["score"] >= 0, f"node-1 penalised node-{i}: {row}"

    assert sum(1 for e in sent_by_rogue if e["what"] == "garbage") == 3  # three rounds went out
    assert rogue_at_1["member"] and rogue_at_1["name"] == "rogue"
    print(f"node-1 rejected {rejected_at_1}; the rogue's score there {rogue_at_1['score']}")


@pytest.mark.parametrize("security", ["noise", "plaintext", "secio"])
async def test_only_noise_peers_connect(net, tmp_path, security):
    with trio.fail_after(60):
        await wait_for_mesh(net, [1, 2, 3])
        async with peer_script(INSECURE_SCRIPT, ["--security", security, "--dial", dial_addr(net, 1)],
                               tmp_path, f"{security}-peer") as peer:
            peer_id = peer.peer_id
            with trio.move_on_after(15):
                while not [e for e in peer.events if e["event"] in ("dialed", "dial-failed")]:
                    if await peer._read_event() is None:  # it exited: the assertion below says so
                        break
            [result] = [e for e in peer.events if e["event"] in ("dialed", "dial-failed")]
            if security == "noise":  # the control: the same check sees a Noise peer connected
                assert result["event"] == "dialed", result
                assert net.node(1).peer_id in result["connected"]

                async def shown_connected():
                    row = await peer_row(net, 1, peer_id)
                    return row is not None and row["connected"]
                await eventually(shown_connected, timeout=10, what="node-1 lists the Noise peer connected")
                return
            assert result["event"] == "dial-failed", result
            # refused at security negotiation (TCP itself connected), not for some other reason
            assert any("failed to negotiate the secure protocol" in c for c in result["causes"]), result
            for _ in range(8):  # never, while the peer is up
                row = await peer_row(net, 1, peer_id)
                assert row is None or not row["connected"], f"node-1 lists the {security} peer connected: {row}"
                await trio.sleep(0.25)
        await wait_for_mesh(net, [1, 2, 3])  # and node-1 is none the worse
