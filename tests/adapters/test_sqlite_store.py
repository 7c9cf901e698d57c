"""Tests for milagro_node.adapters.sqlite_store: real SQLite files in tmp_path, no mocks."""

import os
import random
import signal
import sqlite3
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import dag_cbor
import pytest
from multiformats import CID, multihash

from milagro_node.adapters.sqlite_store import AUDIT_NS, MIGRATIONS, Store, StoreError, flush_wal
from milagro_node.core.audit import GENESIS
from milagro_node.core.ipld import IpldError, cid_for, normalize_cid

HELLO_RAW = "bafkreifzjut3te2nhyekklss27nh3k72ysco7y32koao5eei66wof36n5e"
HELLO_V0 = "QmT78zSuBmuS4z925WZfrqQ1qHaJ56DQaTfyMUF7F8ff5o"


@pytest.fixture
def db(tmp_path: Path) -> Path:
    return tmp_path / "node.sqlite"


@pytest.fixture
def store(db: Path):
    with Store.open(db) as s:
        yield s


def raw_sql(db: Path, sql: str, params: tuple = ()) -> list[tuple]:
    """Edit or read the file behind the store's back, as an attacker or a bad disk would."""
    conn = sqlite3.connect(db, isolation_level=None)
    try:
        return conn.execute(sql, params).fetchall()
    finally:
        conn.close()


# ---- opening and migrations ------------------------------------------------------------


def test_open_sets_wal_and_schema(store: Store, db: Path):
    assert raw_sql(db, "PRAGMA journal_mode") == [("wal",)]
    assert store.schema_version() == len(MIGRATIONS)
    tables = {r[0] for r in raw_sql(db, "SELECT name FROM sqlite_schema WHERE type='table'")}
    assert {"blocks", "kv", "audit"} <= tables


def test_migrations_idempotent_on_reopen(db: Path):
    with Store.open(db) as s:
        cid = s.put_block(b"kept")
        s.kv_put("ns", "k", b"v")
        s.audit_append("t", "a", {})
    schema = raw_sql(db, "SELECT type, name, sql FROM sqlite_schema ORDER BY name")
    for _ in range(2):
        with Store.open(db) as s:
            assert s.schema_version() == len(MIGRATIONS)
            assert s.get_block(cid) == b"kept" and s.kv_get("ns", "k") == b"v"
            assert s.audit_verify().ok
    assert raw_sql(db, "SELECT type, name, sql FROM sqlite_schema ORDER BY name") == schema


def test_failed_migration_rolls_back(db: Path, monkeypatch: pytest.MonkeyPatch):
    Store.open(db).close()
    import milagro_node.adapters.sqlite_store as sqlite_store

    broken = "CREATE TABLE extra (x INTEGER);\nINSERT INTO no_such_table VALUES (1);\n"
    monkeypatch.setattr(sqlite_store, "MIGRATIONS", [*MIGRATIONS, broken])
    with pytest.raises(StoreError, match="no_such_table"):
        Store.open(db)
    assert raw_sql(db, "PRAGMA user_version") == [(len(MIGRATIONS),)]
    assert raw_sql(db, "SELECT name FROM sqlite_schema WHERE name = 'extra'") == []


def test_newer_schema_refused(db: Path):
    Store.open(db).close()
    raw_sql(db, f"PRAGMA user_version = {len(MIGRATIONS) + 1}")
    with pytest.raises(StoreError, match="newer"):
        Store.open(db)


def test_not_a_database_refused(db: Path):
    db.write_bytes(b"this is not sqlite" * 1000)
    with pytest.raises(StoreError):
        Store.open(db)


def test_damaged_pages_refused(db: Path):
    with Store.open(db) as s:
        for i in range(200):
            s.put_block(os.urandom(3000))
    size = db.stat().st_size  # close() checkpointed the WAL into the main file
    with open(db, "r+b") as f:
        f.seek(size // 2)
        f.write(b"\xff" * 8192)
    with pytest.raises(StoreError):
        Store.open(db)


def test_closed_store_raises(db: Path):
    s = Store.open(db)
    s.close()
    s.close()  # idempotent
    with pytest.raises(StoreError, match="closed"):
        s.kv_get("a", "b")


# ---- blocks ------------------------------------------------------------------------------


def test_block_round_trip(store: Store):
    assert store.put_block(b"hello world") == HELLO_RAW
    assert store.put_block(b"hello world") == HELLO_RAW  # idempotent
    assert store.get_block(HELLO_RAW) == b"hello world"
    assert store.has_block(HELLO_RAW)
    node = dag_cbor.encode({"a": [1, 2]})
    cid = store.put_block(node, codec="dag-cbor")
    assert cid == cid_for(node, "dag-cbor") and cid.startswith("bafyrei")
    assert store.get_block(cid) == node
    missing = cid_for(b"never stored")
    assert store.get_block(missing) is None and not store.has_block(missing)


def test_put_block_with_cid(store: Store):
    assert store.put_block_with_cid(HELLO_RAW, b"hello world") == HELLO_RAW
    with pytest.raises(StoreError, match="does not match"):
        store.put_block_with_cid(HELLO_RAW, b"hello world?")
    # Other spellings of a CID (here CIDv0) are stored and found under the canonical one.
    v0 = str(CID("base58btc", 0, "dag-pb", multihash.digest(b"pb node", "sha2-256")))
    canonical = store.put_block_with_cid(v0, b"pb node")
    assert canonical.startswith("bafybei") and canonical == normalize_cid(v0)
    assert store.get_block(v0) == store.get_block(canonical) == b"pb node"
    with pytest.raises(StoreError):
        store.put_block_with_cid(HELLO_V0, b"not the dag-pb node")
    with pytest.raises(IpldError):
        store.put_block_with_cid("garbage", b"x")
    with pytest.raises(TypeError):
        store.put_block("text")  # type: ignore[arg-type]


def test_corrupted_block_detected_on_read(store: Store, db: Path):
    cid = store.put_block(b"precious bytes")
    raw_sql(db, "UPDATE blocks SET data = ? WHERE cid = ?", (b"precious bytez", cid))
    with pytest.raises(StoreError, match=cid):
        store.get_block(cid)
    assert store.has_block(cid)  # presence only
    store.put_block(b"precious bytes")  # writing the true bytes again heals the row
    assert store.get_block(cid) == b"precious bytes"


# ---- key/value --------------------------------------------------------------------------


def test_kv_round_trip(store: Store):
    assert store.kv_get("ns", "a") is None
    store.kv_put("ns", "b", b"2")
    store.kv_put("ns", "a", b"1")
    store.kv_put("other", "a", b"x")
    store.kv_put("ns", "a", b"one")  # overwrite
    assert store.kv_get("ns", "a") == b"one"
    assert store.kv_items("ns") == [("a", b"one"), ("b", b"2")]
    assert store.kv_delete("ns", "a") is True
    assert store.kv_delete("ns", "a") is False
    assert store.kv_items("ns") == [("b", b"2")]
    assert store.kv_items("other") == [("a", b"x")]
    with pytest.raises(TypeError):
        store.kv_put("ns", "a", "not bytes")  # type: ignore[arg-type]


def test_audit_namespace_reserved(store: Store):
    with pytest.raises(StoreError, match="reserved"):
        store.kv_put("audit", "head", GENESIS.encode())
    with pytest.raises(StoreError, match="reserved"):
        store.kv_delete("audit", "head")


# ---- audit log -------------------------------------------------------------------------


def fill_audit(store: Store, n: int) -> None:
    for i in range(n):
        store.audit_append("tester", "step", {"i": i, "cid": HELLO_RAW}, now=1000.0 + i)


def test_audit_round_trip(store: Store):
    assert store.audit_verify().ok and store.audit_tail(3) == []
    fill_audit(store, 5)
    tail = store.audit_tail(2)
    assert [e.seq for e in tail] == [4, 5] and tail[1].detail == {"i": 4, "cid": HELLO_RAW}
    assert store.kv_get("audit", "head") == tail[1].hash.encode()
    assert len(store.audit_tail(100)) == 5 and store.audit_tail(0) == []
    verdict = store.audit_verify()
    assert verdict.ok and verdict.checked == 5


def test_audit_append_is_atomic(store: Store):
    fill_audit(store, 2)
    with pytest.raises(ValueError):
        store.audit_append("t", "bad", {"x": float("nan")})
    assert [e.seq for e in store.audit_tail(10)] == [1, 2] and store.audit_verify().ok


@pytest.mark.parametrize(
    "sql, params",
    [
        ("UPDATE audit SET detail = ? WHERE seq = 3", (dag_cbor.encode({"i": 666}),)),
        ("UPDATE audit SET time = time + 0.001 WHERE seq = 3", ()),
        ("UPDATE audit SET actor = 'mallory' WHERE seq = 3", ()),
        ("UPDATE audit SET detail = x'ff00' WHERE seq = 3", ()),
    ],
)
def test_tampered_audit_row_detected(store: Store, db: Path, sql: str, params: tuple):
    fill_audit(store, 5)
    raw_sql(db, sql, params)
    verdict = store.audit_verify()
    assert not verdict.ok and verdict.first_bad_seq == 3 and verdict.checked == 2, verdict
    assert verdict.reason.startswith("altered")


def test_deleted_tail_row_detected(store: Store, db: Path):
    fill_audit(store, 5)
    raw_sql(db, "DELETE FROM audit WHERE seq = 5")
    verdict = store.audit_verify()
    assert not verdict.ok and verdict.first_bad_seq == 5 and verdict.checked == 4, verdict
    assert verdict.reason.startswith("head mismatch")
    with pytest.raises(StoreError, match="head"):
        store.audit_append("t", "after truncation", {})  # would hide the truncation
    assert store.audit_tail(1)[0].seq == 4


def test_deleted_middle_row_detected(store: Store, db: Path):
    fill_audit(store, 5)
    raw_sql(db, "DELETE FROM audit WHERE seq = 2")
    verdict = store.audit_verify()
    assert not verdict.ok and verdict.first_bad_seq == 2 and verdict.reason.startswith("gap")


# ---- crash safety ------------------------------------------------------------------------

CHILD = textwrap.dedent(
    """
    import os, sys
    import dag_cbor
    from milagro_node.adapters.sqlite_store import Store

    store = Store.open(sys.argv[1])
    print("started", flush=True)
    i = 0
    while True:
        i += 1
        data = os.urandom(1 + (i * 7919) % 20000)
        cid = store.put_block(data)
        node = store.put_block(dag_cbor.encode({"i": i, "cid": cid}), codec="dag-cbor")
        store.kv_put("crash", "k%d" % (i % 64), cid.encode())
        store.audit_append("crash-test", "write", {"i": i, "block": cid, "node": node})
    """
)


def test_sigkill_during_writes_leaves_a_consistent_store(db: Path):
    repo = Path(__file__).resolve().parents[2]
    entries_seen = 0
    for round_no in range(5):
        child = subprocess.Popen(
            [sys.executable, "-c", CHILD, str(db)],
            cwd=repo, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )
        try:
            line = child.stdout.readline()
            assert line.strip() == "started", f"child failed: {line!r} {child.stderr.read()}"
            delay = random.uniform(0.05, 0.3)
            time.sleep(delay)
            os.kill(child.pid, signal.SIGKILL)
        finally:
            if child.poll() is None:
                child.kill()
            child.wait()
            child.stdout.close()
            child.stderr.close()
        assert child.returncode == -signal.SIGKILL, f"round {round_no}: child exited on its own"

        with Store.open(db) as store:  # open runs quick_check and recovers the WAL
            where = f"round {round_no}, killed after {delay * 1000:.0f} ms"
            verdict = store.audit_verify()
            assert verdict.ok, f"{where}: {verdict}"
            assert verdict.checked > entries_seen, f"{where}: child wrote nothing"
            entries_seen = verdict.checked
            print(f"{where}: {entries_seen} audit entries, all verified")
            cids = [r[0] for r in raw_sql(db, "SELECT cid FROM blocks")]
            for cid in cids:
                assert store.get_block(cid) is not None  # raises StoreError if corrupted
            # Commits are ordered: everything an audit entry names was committed before it.
            for entry in store.audit_tail(verdict.checked):
                assert store.has_block(entry.detail["block"])
                assert store.has_block(entry.detail["node"])
            for _, value in store.kv_items("crash"):
                assert store.has_block(value.decode())
        assert raw_sql(db, "PRAGMA integrity_check") == [("ok",)]


def test_kv_batch_is_all_or_nothing(tmp_path):
    with Store.open(tmp_path / "b.db") as store:
        store.kv_put("ns", "gone", b"x")
        store.kv_batch([("ns", "a", b"1"), ("ns", "b", b"2")], [("ns", "gone")])
        assert store.kv_items("ns") == [("a", b"1"), ("b", b"2")]
        with pytest.raises(StoreError):
            store.kv_batch([("ns", "c", b"3"), ("audit", "head", b"forged")])
        assert store.kv_items("ns") == [("a", b"1"), ("b", b"2")]


def test_kv_batch_stores_blocks_in_the_same_transaction(store):
    block = b"\xa1aka"  # {"k": "a"}: canonical DAG-CBOR
    store.kv_batch([("inbox", "1", b"names the block")], blocks=[(block, "dag-cbor")])
    assert store.get_block(cid_for(block, "dag-cbor")) == block
    with pytest.raises(StoreError):  # a bad key aborts the whole batch: the block is not stored either
        store.kv_batch([(AUDIT_NS, "head", b"v")], blocks=[(b"other", "raw")])
    assert store.get_block(cid_for(b"other", "raw")) is None


# ---- group commit -------------------------------------------------------------------


def test_a_group_commits_together_and_a_failing_call_changes_nothing(store: Store, db: Path):
    results = store.run_group([
        lambda: store.kv_put("ns", "a", b"1"),
        lambda: store.audit_append("test", "first", {}),
        lambda: store.put_block_with_cid(HELLO_RAW, b"not hello"),  # refused: CID mismatch
        lambda: store.kv_batch([("ns", "b", b"2"), (AUDIT_NS, "head", b"forged")]),  # refused
        lambda: store.kv_get("ns", "a"),  # a read sees the group's earlier writes
        lambda: store.audit_append("test", "second", {}),
    ])
    assert results[0] is None and results[4] == b"1"
    assert isinstance(results[2], StoreError) and isinstance(results[3], StoreError)
    assert [e.action for e in (results[1], results[5])] == ["first", "second"]
    store.close()
    again = Store.open(db)
    assert again.kv_get("ns", "a") == b"1" and again.kv_get("ns", "b") is None
    assert again.audit_verify().ok and [e.action for e in again.audit_tail(5)] == ["first", "second"]
    again.close()


def test_outside_a_group_each_call_is_its_own_transaction_again(store: Store):
    store.run_group([lambda: store.kv_put("ns", "a", b"1")])
    with pytest.raises(StoreError):
        store.kv_batch([("ns", "b", b"2"), (AUDIT_NS, "head", b"x")])
    assert store.kv_get("ns", "b") is None
    assert not store._conn.in_transaction


# ---- commits not synced at once ----------------------------------------------------------

UNSYNCED_CHILD = textwrap.dedent(
    """
    import os, signal, sys
    from milagro_node.adapters.sqlite_store import Store
    store = Store.open(sys.argv[1])
    store.run_group([lambda: store.audit_append("test", "synced", {})])
    store.run_group([lambda: store.audit_append("test", "unsynced", {"n": 1}),
                     lambda: store.audit_append("test", "unsynced", {"n": 2})], sync=False)
    os.kill(os.getpid(), signal.SIGKILL)  # no close, no checkpoint, no fsync of that group
    """
)


def test_an_unsynced_group_survives_the_process_being_killed(db: Path):
    repo = Path(__file__).resolve().parents[2]
    child = subprocess.run([sys.executable, "-c", UNSYNCED_CHILD, str(db)], cwd=repo, capture_output=True, text=True)
    assert child.returncode == -signal.SIGKILL, child.stderr
    with Store.open(db) as store:
        assert store.audit_verify().ok
        assert [(e.action, e.detail) for e in store.audit_tail(5)] == [
            ("synced", {}), ("unsynced", {"n": 1}), ("unsynced", {"n": 2})]


def test_an_unsynced_group_leaves_the_next_commit_synced(store: Store):
    full = 2  # PRAGMA synchronous: 1 NORMAL, 2 FULL
    store.run_group([lambda: store.kv_put("ns", "a", b"1")], sync=False)
    assert store._conn.execute("PRAGMA synchronous").fetchone()[0] == full
    with pytest.raises(StoreError):  # a failing commit restores it too
        store.run_group([lambda: store._conn.execute("COMMIT")], sync=False)
    assert store._conn.execute("PRAGMA synchronous").fetchone()[0] == full
    assert store.kv_get("ns", "a") == b"1"


def test_flush_wal_syncs_the_wal_and_says_when_there_is_none(tmp_path: Path):
    db = tmp_path / "w.db"
    store = Store.open(db)
    store.run_group([lambda: store.kv_put("ns", "a", b"1")], sync=False)
    assert flush_wal(db) is True
    store.close()  # the last connection checkpoints and removes the WAL
    assert flush_wal(db) is False
    (tmp_path / "w.db-wal").symlink_to("w.db-wal")  # a loop: a StoreError naming it, not an OSError
    with pytest.raises(StoreError, match="WAL"):
        flush_wal(db)
