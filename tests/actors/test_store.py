"""The store actor's commits that skip their fsync: answered at once, synced soon after.

Real time, not an autojump clock: the actor waits on OS threads, and an autojump clock
would leap past the sync delay while a commit runs.
"""

import time

import trio

from actors import store as store_actor
from actors.mailbox import ActorError
from actors.messages import AuditAppend, AuditVerify, KvPut
from actors.store import StoreActor
from milagro_node.adapters.sqlite_store import StoreError
from milagro_node.runtime.supervisor import ActorSpec, Supervisor

DELAY = 0.5  # long enough that "not synced yet" cannot race on a slow machine


async def start(nursery, actor):
    sup = Supervisor([ActorSpec("store", lambda: actor)], request_timeout=10)
    await nursery.start(sup.run)
    return sup


async def syncs_after(actor, count, seconds=5.0):
    with trio.fail_after(seconds):
        while actor.wal_syncs < count:
            await trio.sleep(0.01)


async def test_unsynced_entries_are_answered_at_once_and_synced_together_within_the_delay(
        nursery, tmp_path, monkeypatch):
    monkeypatch.setattr(store_actor, "SYNC_DELAY_S", DELAY)
    actor = StoreActor(tmp_path / "node.db")
    sup = await start(nursery, actor)
    await sup.ask("store", KvPut("ns", "k", b"synced as ever"))
    await trio.sleep(DELAY * 1.5)
    assert actor.wal_syncs == 0  # a synced write needs no WAL sync after it

    answered = time.monotonic()
    async with trio.open_nursery() as logins:
        for i in range(8):
            logins.start_soon(sup.ask, "store", AuditAppend("authenticator", "mfa.login", {"i": i}, sync=False))
    assert actor.wal_syncs == 0 and time.monotonic() - answered < DELAY
    await syncs_after(actor, 1)
    assert time.monotonic() - answered >= DELAY
    await trio.sleep(DELAY * 1.5)
    assert actor.wal_syncs == 1  # one sync for every commit in the delay
    verdict = await sup.ask("store", AuditVerify())
    assert verdict.ok and verdict.checked == 8


async def test_a_failed_wal_sync_restarts_the_store_and_later_writes_land(nursery, tmp_path, monkeypatch):
    monkeypatch.setattr(store_actor, "SYNC_DELAY_S", 0.01)

    def broken_disk(path):
        raise StoreError(f"store {str(path)!r}: syncing its WAL failed: [Errno 5] Input/output error")

    monkeypatch.setattr(store_actor, "flush_wal", broken_disk)
    sup = await start(nursery, StoreActor(tmp_path / "node.db"))
    await sup.ask("store", AuditAppend("authenticator", "mfa.login", {}, sync=False))
    with trio.fail_after(10):
        while (state := sup.snapshot()[0])["restarts"] == 0:
            await trio.sleep(0.01)
    assert "syncing its WAL failed" in state["last_error"]
    monkeypatch.undo()
    with trio.fail_after(10):
        while True:
            try:
                await sup.ask("store", KvPut("ns", "after", b"1"))
                break
            except ActorError:  # not restarted yet
                await trio.sleep(0.05)
    assert (await sup.ask("store", AuditVerify())).ok

