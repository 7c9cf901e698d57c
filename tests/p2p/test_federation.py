"""Five nodes as separate processes over libp2p on 127.0.0.1 (issue 5's federation test).

The tests share one devnet and run in file order: nodes 1-4 start first; node-5 starts late
(`test_late_node_learns_every_identity`); node-3 is killed and restarted; a burst follows, then
sends while node-4 is stopped, while node-2's store fails, while node-1's own store fails,
and of large envelopes.
"""

import base64
import signal
import sqlite3

import pytest
import trio

from devnetkit import Devnet, eventually, inbox, inbox_cids
from milagro_node.api_client import ApiCallError

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def net(tmp_path_factory):
    net = Devnet(tmp_path_factory.mktemp("federation"), 5)
    try:
        for i in (1, 2, 3, 4):
            net.start(i)
        yield net
    finally:
        net.stop_all()


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


async def send(net: Devnet, sender: int, recipients: list[int], payload: bytes, kind: str = "test.note") -> str:
    async with net.api(sender) as api:
        sent = await api.call("envelope.send", to=[net.node(r).identity for r in recipients],
                              kind=kind, payload=b64(payload))
    return sent["cid"]


async def received(net: Devnet, i: int, kind: str | None = None) -> dict[str, bytes]:
    """Node i's inbox as {cid: payload}; only envelopes of `kind` if given (the nodes' own
    roles exchange envelopes too: M-Pin server-secret shares)."""
    async with net.api(i) as api:
        return {row["cid"]: base64.b64decode(row["payload"]) for row in await inbox(api)
                if kind is None or row["kind"] == kind}


async def wait_for_mesh(net: Devnet, nodes: list[int]) -> None:
    for i in nodes:
        async with net.api(i) as api:
            async def all_connected():
                rows = await api.call("peers.list")
                return all(row["connected"] for row in rows if row["name"] in {f"node-{j}" for j in nodes})
            await eventually(all_connected, timeout=30, what=f"node-{i} connected to {nodes}")


async def test_each_sends_to_a_subset_and_only_recipients_read(net):
    with trio.fail_after(90):
        await wait_for_mesh(net, [1, 2, 3, 4])
        subsets = {1: [2, 3], 2: [3], 3: [1, 4], 4: [1, 2, 3]}
        sent = {}
        for sender, recipients in subsets.items():
            payload = f"from node-{sender} to {recipients}".encode()
            sent[await send(net, sender, recipients, payload)] = (payload, recipients)
        for i in (1, 2, 3, 4):
            wanted = {cid for cid, (_, recipients) in sent.items() if i in recipients}

            async def arrived():
                return wanted <= set(await received(net, i))
            await eventually(arrived, timeout=30, what=f"node-{i}'s envelopes")
            inbox_now = await received(net, i)
            for cid, (payload, recipients) in sent.items():
                if i in recipients:
                    assert inbox_now[cid] == payload
                else:
                    assert cid not in inbox_now, f"node-{i} is not a recipient of {cid}"


async def test_late_node_learns_every_identity(net):
    with trio.fail_after(90):
        net.start(5)
        everyone = {net.node(i).identity for i in range(1, 6)}
        async with net.api(5) as api:
            async def knows_all():
                rows = await api.call("identities.list")
                return {row["identity"] for row in rows if row["known"]} == everyone
            await eventually(knows_all, timeout=45, what="node-5 learned every identity")
        for i in (1, 2, 3, 4):
            async with net.api(i) as api:
                async def knows_node5():
                    rows = await api.call("identities.list")
                    return any(row["identity"] == net.node(5).identity and row["known"] for row in rows)
                await eventually(knows_node5, timeout=45, what=f"node-{i} learned node-5")
        cid = await send(net, 1, [5], b"welcome")

        async def arrived():
            return (await received(net, 5)).get(cid) == b"welcome"
        await eventually(arrived, timeout=30, what="node-5 got its first envelope")


async def test_node_killed_and_restarted_rejoins_and_receives(net):
    with trio.fail_after(120):
        net.kill(3)
        while_down = await send(net, 1, [3], b"sent while node-3 was down")
        net.start(3)
        after = await send(net, 2, [3], b"sent after the restart")

        async def both():
            got = await received(net, 3)
            return got.get(while_down) == b"sent while node-3 was down" and got.get(after) == b"sent after the restart"
        await eventually(both, timeout=60, what="node-3 received what was sent while it was down, and after")


async def test_burst_of_500_is_delivered_whole(net):
    with trio.fail_after(240):
        before = await received(net, 2, "test.burst")
        cids = set()
        async with net.api(1) as api:
            for n in range(500):
                sent = await api.call("envelope.send", to=[net.node(2).identity], kind="test.burst",
                                      payload=b64(b"burst %d" % n))
                cids.add(sent["cid"])
        async with net.api(2) as api:
            async def all_there():
                return cids <= await inbox_cids(api)
            await eventually(all_there, timeout=120, what="node-2 has all 500", step=1.0)
            fields_only = await api.call("envelope.inbox", count=3, payload=False)
            assert len(fields_only) == 3 and not any("payload" in row or "error" in row for row in fields_only)
        got = await received(net, 2, "test.burst")
        assert sorted(got[cid] for cid in cids) == sorted(b"burst %d" % n for n in range(500))
        assert len(got) - len(before) == 500  # each exactly once
        async with net.api(1) as api:
            async def acknowledged():
                return (await api.call("envelope.counters"))["pending"] == 0
            await eventually(acknowledged, timeout=60, what="every burst envelope acknowledged")


async def test_a_stopped_member_does_not_hold_up_sends_to_the_others(net):
    # node-4 stops reading (SIGSTOP): node-1's gossip queue to it fills after a few dozen
    # envelopes. Publishing waits for a full queue, but not past 1 s for a stalled peer, so
    # every envelope.send still answers well within the API's 10 s deadline.
    stopped = net.processes[4]
    stopped.send_signal(signal.SIGSTOP)
    try:
        with trio.fail_after(180):
            cids = set()
            async with net.api(1) as api:
                for n in range(100):
                    with trio.fail_after(8):
                        sent = await api.call("envelope.send", to=[net.node(2).identity], kind="test.stall",
                                              payload=b64(bytes([n]) * 32768))
                    cids.add(sent["cid"])
            for_node4 = await send(net, 1, [4], b"sent while node-4 was stopped")
            async with net.api(2) as api:
                async def all_there():
                    return cids <= await inbox_cids(api)
                await eventually(all_there, timeout=90, what="node-2 has all 100", step=1.0)
    finally:
        stopped.send_signal(signal.SIGCONT)
    with trio.fail_after(120):
        async def arrived():
            return (await received(net, 4)).get(for_node4) == b"sent while node-4 was stopped"
        await eventually(arrived, timeout=110, what="node-4 got its envelope once it went on", step=1.0)


async def test_an_envelope_is_not_lost_when_the_recipients_store_fails(net):
    # node-2's database is write-locked by another process for longer than its busy timeout
    # (5 s): the store refuses node-2's writes while two envelopes arrive, one by gossip and
    # one too large for gossip (1 MiB: delivered directly). Neither may be acknowledged as
    # kept, nor leave a hole: once the lock goes, node-1's re-deliveries store them, and an
    # envelope sent after them lands as well.
    big = b"D" * (1 << 20)
    locker = sqlite3.connect(net.node(2).data_dir / "node.db", isolation_level=None, timeout=30)
    try:
        locker.execute("BEGIN IMMEDIATE")
        by_gossip = await send(net, 1, [2], b"gossiped while node-2's store failed", kind="test.store")
        direct = await send(net, 1, [2], big, kind="test.store")
        await trio.sleep(8)
    finally:
        locker.execute("ROLLBACK")
        locker.close()
    after = await send(net, 1, [2], b"sent after", kind="test.store")
    expected = {by_gossip: b"gossiped while node-2's store failed", direct: big, after: b"sent after"}
    with trio.fail_after(120):
        async def all_kept():
            return await received(net, 2, kind="test.store") == expected
        await eventually(all_kept, timeout=110, what="node-2 kept all three envelopes", step=1.0)


async def test_a_send_whose_own_store_fails_is_refused_and_says_it_went_out(net):
    # The sender's store commits while the envelope is gossiped. node-1's database is
    # write-locked past its busy timeout, so the commit fails after the gossip went out:
    # the send is refused with the store's error, and its message says so. The envelope is not
    # kept for re-sending, and node-1 sends again once the lock goes.
    locker = sqlite3.connect(net.node(1).data_dir / "node.db", isolation_level=None, timeout=30)
    try:
        locker.execute("BEGIN IMMEDIATE")
        async with net.api(1) as api:
            with pytest.raises(ApiCallError) as refused:
                await api.call("envelope.send", to=[net.node(2).identity], kind="test.own-store",
                               payload=b64(b"while node-1's store failed"))
    finally:
        locker.execute("ROLLBACK")
        locker.close()
    # Queued behind another of node-1's writes that waited out the lock first, the send
    # reaches the API's 10 s deadline before its own commit fails.
    assert refused.value.data["code"] in ("store-error", "deadline-exceeded")
    if refused.value.data["code"] == "store-error":
        assert "went out by gossip once" in refused.value.message
    after = await send(net, 1, [2], b"sent after", kind="test.own-store")
    with trio.fail_after(60):
        async def arrived():
            return after in await received(net, 2, kind="test.own-store")
        await eventually(arrived, timeout=50, what="node-2 got the envelope sent after the lock", step=1.0)


async def test_an_inbox_page_of_large_envelopes_stays_readable(net):
    # Ten 1 MiB envelopes are 14 MiB of base64: a page with payloads ends at 8 MiB of them,
    # and reading on from its last row gets the rest.
    cids = [await send(net, 1, [2], bytes([n]) * (1 << 20), kind="test.large") for n in range(10)]
    async with net.api(2) as api:
        async def all_there():
            return set(cids) <= await inbox_cids(api)
        await eventually(all_there, timeout=110, what="node-2 has the ten", step=1.0)
        first = min(r["n"] for r in await inbox(api, payloads=False) if r["cid"] in cids)
        page = await api.call("envelope.inbox", after=first, count=50)
        assert 1 <= len(page) < 10 and sum(len(r["payload"]) for r in page) < 16 << 20
    got = await received(net, 2, kind="test.large")
    assert [got[cid] for cid in cids] == [bytes([n]) * (1 << 20) for n in range(10)]
