"""The node's store: one SQLite file per node — an adapter.

Layer 2 (adapters): the only module that touches `sqlite3`. The runtime's "store" actor owns
one `Store` and runs every call in a single worker thread, so the class is synchronous and not
thread-safe (calls must be serialized by the caller); the connection is opened with
``check_same_thread=False`` because that worker thread need not be the one that opened it.

What it keeps: content-addressed blocks (keyed by canonical CIDv1 base32, re-verified on every
read), a namespaced key/value table (wrapped keys, protocol state), and the hash-chained audit
log of `milagro_node.core.audit`, whose head hash is written in the same transaction as each
entry (kv namespace "audit", key "head") so a cut-off tail is detected.

Durability: WAL journal with ``synchronous=FULL``, so a committed write survives a crash or
power cut; every public write is one transaction. A group may instead commit *written, not yet
synced* (``run_group(..., sync=False)``): it is in the WAL file, so it survives the process
being killed, but a power cut before the next `flush_wal` (or the next synced commit, which
syncs the whole WAL) may lose it; never half of it, and never an earlier synced commit. Errors:
wrong argument types or malformed CIDs raise TypeError/ValueError (`IpldError`); anything about
the file or its contents — corruption, a CID that does not match its bytes, a schema newer than
this code, SQLite failures — raises `StoreError`.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
import time
import urllib.parse
from collections.abc import Callable, Iterable, Iterator
from typing import Any

from milagro_node.core.audit import (
    GENESIS, AuditEntry, AuditVerdict, ChainTip, chain_entry, decode_detail, encode_detail, verify_chain,
)
from milagro_node.core.ipld import cid_for, normalize_cid, verify_cid

__all__ = ["MIGRATIONS", "Store", "StoreError", "flush_wal"]

AUDIT_NS = "audit"  # kv namespace reserved for the audit head; not writable through kv_put
_HEAD_KEY = "head"
_AUDIT_COLUMNS = "seq, time, actor, action, detail, prev_hash, hash"
_BUSY_TIMEOUT_MS = 5000

# Schema migrations: MIGRATIONS[i] takes the file from user_version i to i + 1 in one
# transaction. Append new scripts; never edit a released one. One statement per ";" line end
# (see _statements).
MIGRATIONS: list[str] = [
    """
    CREATE TABLE blocks (
        cid  TEXT PRIMARY KEY,
        data BLOB NOT NULL
    ) STRICT;
    CREATE TABLE kv (
        namespace TEXT NOT NULL,
        key       TEXT NOT NULL,
        value     BLOB NOT NULL,
        PRIMARY KEY (namespace, key)
    ) STRICT;
    CREATE TABLE audit (
        seq       INTEGER PRIMARY KEY,
        time      REAL NOT NULL,
        actor     TEXT NOT NULL,
        action    TEXT NOT NULL,
        detail    BLOB NOT NULL,  -- DAG-CBOR of the detail dict
        prev_hash TEXT NOT NULL,
        hash      TEXT NOT NULL
    ) STRICT;
    """,
]


class StoreError(Exception):
    """The store file is unusable, corrupted, too new, or an integrity check failed."""


def _statements(script: str) -> Iterator[str]:
    # sqlite3's executescript() commits any open transaction first, which would let a
    # migration escape its transaction; so split the script and execute() each statement.
    buf = ""
    for line in script.splitlines(keepends=True):
        buf += line
        if sqlite3.complete_statement(buf):
            yield buf
            buf = ""
    if buf.strip():
        raise StoreError(f"migration script ends with an incomplete statement: {buf.strip()!r}")


def _check_bytes(name: str, value: Any) -> bytes:
    if not isinstance(value, (bytes, bytearray, memoryview)):
        raise TypeError(f"{name} must be bytes, not {type(value).__name__}")
    return bytes(value)


def _check_str(name: str, value: Any) -> str:
    if not isinstance(value, str):
        raise TypeError(f"{name} must be str, not {type(value).__name__}")
    return value


def flush_wal(path: str | os.PathLike[str]) -> bool:
    """fsync the store's WAL file, making every commit written so far survive a power cut.

    Safe beside a connection writing to it (it touches no SQLite state). False if there is
    no WAL file (the last connection closed it, checkpointing everything).
    """
    try:
        fd = os.open(os.fspath(path) + "-wal", os.O_RDONLY)
    except FileNotFoundError:
        return False
    except OSError as exc:
        raise StoreError(f"store {os.fspath(path)!r}: cannot open its WAL to sync it: {exc}") from exc
    try:
        os.fsync(fd)
    except OSError as exc:
        raise StoreError(f"store {os.fspath(path)!r}: syncing its WAL failed: {exc}") from exc
    finally:
        os.close(fd)
    return True


class Store:
    """A node's SQLite store. Create with `Store.open(path)`; call `close()` when done."""

    def __init__(self, conn: sqlite3.Connection, path: str) -> None:
        self._conn: sqlite3.Connection | None = conn
        self.path = path
        self._grouped = False  # inside run_group: each call's transaction is a savepoint

    # ---- opening, migrations, transactions -------------------------------------------

    @classmethod
    def open_reader(cls, path: str | os.PathLike[str]) -> Store:
        """A second, read-only connection to a store that `open` has opened and migrated.

        In WAL mode it reads the last committed state while the writer commits, so reads
        need not wait for an fsync. Any write through it fails with StoreError.
        """
        path = os.fspath(path)
        try:
            conn = sqlite3.connect(f"file:{urllib.parse.quote(path)}?mode=ro", uri=True, check_same_thread=False, isolation_level=None)
            conn.execute(f"PRAGMA busy_timeout = {_BUSY_TIMEOUT_MS}")
        except sqlite3.Error as exc:
            raise StoreError(f"cannot open store {path!r} for reading: {exc}") from exc
        return cls(conn, path)

    @classmethod
    def open(cls, path: str | os.PathLike[str]) -> Store:
        """Open (creating if needed) the store at ``path``, check it and migrate it."""
        path = os.fspath(path)
        try:
            # isolation_level=None: no implicit transactions; we BEGIN/COMMIT ourselves.
            conn = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        except sqlite3.Error as exc:
            raise StoreError(f"cannot open store {path!r}: {exc}") from exc
        store = cls(conn, path)
        try:
            try:
                conn.execute(f"PRAGMA busy_timeout = {_BUSY_TIMEOUT_MS}")
                mode = conn.execute("PRAGMA journal_mode = WAL").fetchone()[0]
                conn.execute("PRAGMA synchronous = FULL")
                conn.execute("PRAGMA foreign_keys = ON")
                result = [row[0] for row in conn.execute("PRAGMA quick_check")]
            except sqlite3.Error as exc:
                raise StoreError(f"store {path!r} is not a usable database: {exc}") from exc
            if mode.lower() != "wal":
                raise StoreError(f"store {path!r} refused WAL journal mode (got {mode!r})")
            if result != ["ok"]:
                raise StoreError(f"store {path!r} failed quick_check: {'; '.join(result[:5])}")
            store._migrate()
        except BaseException:
            conn.close()
            raise
        return store

    def _migrate(self) -> None:
        # One transaction per migration; user_version is read inside it (BEGIN IMMEDIATE
        # holds the write lock), so two processes opening a new file cannot both migrate.
        while True:
            with self._transaction() as conn:
                version = conn.execute("PRAGMA user_version").fetchone()[0]
                if version > len(MIGRATIONS):
                    raise StoreError(
                        f"store {self.path!r} has schema version {version}, newer than this "
                        f"code's {len(MIGRATIONS)}; upgrade milagro-node to open it"
                    )
                if version == len(MIGRATIONS):
                    return
                for statement in _statements(MIGRATIONS[version]):
                    conn.execute(statement)
                conn.execute(f"PRAGMA user_version = {version + 1}")

    def schema_version(self) -> int:
        with self._transaction(write=False) as conn:
            return conn.execute("PRAGMA user_version").fetchone()[0]

    def run_group(self, calls: list[Callable[[], Any]], *, sync: bool = True) -> list[Any]:
        """Run `calls` in one transaction, so they share one commit (one fsync).

        Each call runs inside its own savepoint: one that fails (its exception is returned
        in its place) changes nothing, and the others still land. Nothing is durable, and
        no result should be acted on, until this returns; a failed commit raises StoreError
        for the whole group. The store actor uses it to commit concurrent requests together.
        ``sync=False`` commits without the fsync (see the module's Durability; `flush_wal`).
        """
        if sync:
            return self._run_group(calls)
        self._set_synchronous("NORMAL")
        try:
            return self._run_group(calls)
        finally:
            self._set_synchronous("FULL")

    def _set_synchronous(self, level: str) -> None:
        # Outside any transaction: SQLite reads the setting at each commit.
        if self._conn is None:
            raise StoreError("store is closed")
        try:
            self._conn.execute(f"PRAGMA synchronous = {level}")
        except sqlite3.Error as exc:
            raise StoreError(f"store {self.path!r}: {exc}") from exc

    def _run_group(self, calls: list[Callable[[], Any]]) -> list[Any]:
        results: list[Any] = []
        with self._transaction() as conn:
            self._grouped = True
            try:
                for call in calls:
                    conn.execute("SAVEPOINT call")
                    try:
                        results.append(call())
                    except Exception as exc:  # noqa: BLE001 - handed back as that call's outcome
                        conn.execute("ROLLBACK TO call")
                        results.append(exc)
                    conn.execute("RELEASE call")
            finally:
                self._grouped = False
        return results

    @contextlib.contextmanager
    def _transaction(self, write: bool = True) -> Iterator[sqlite3.Connection]:
        if self._conn is None:
            raise StoreError("store is closed")
        conn = self._conn
        if self._grouped:  # run_group holds the transaction; its savepoint undoes a failure
            try:
                yield conn
            except sqlite3.Error as exc:
                raise StoreError(f"store {self.path!r}: {exc}") from exc
            return
        try:
            # IMMEDIATE takes the write lock up front, so a write never fails half-way on
            # lock upgrade; reads use a deferred transaction for a consistent snapshot.
            conn.execute("BEGIN IMMEDIATE" if write else "BEGIN")
            yield conn
            conn.execute("COMMIT")
        except BaseException as exc:
            if conn.in_transaction:
                with contextlib.suppress(sqlite3.Error):
                    conn.execute("ROLLBACK")
            if isinstance(exc, sqlite3.Error):
                raise StoreError(f"store {self.path!r}: {exc}") from exc
            raise

    def close(self) -> None:
        """Close the file. Safe to call twice; any later call raises StoreError."""
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # ---- blocks ----------------------------------------------------------------------

    def put_block(self, data: bytes, codec: str = "raw") -> str:
        """Store ``data`` and return its CIDv1 (sha2-256, base32) under ``codec``."""
        data = _check_bytes("data", data)
        cid = cid_for(data, codec)
        self._write_block(cid, data)
        return cid

    def put_block_with_cid(self, cid: str, data: bytes) -> str:
        """Store ``data`` under a CID received from elsewhere; StoreError if they differ.

        Returns the canonical spelling of the CID (the key the block is stored under).
        """
        data = _check_bytes("data", data)
        key = normalize_cid(cid)
        if not verify_cid(key, data):
            raise StoreError(f"block data does not match CID {cid}")
        self._write_block(key, data)
        return key

    def _write_block(self, cid: str, data: bytes) -> None:
        with self._transaction() as conn:
            _insert_blocks(conn, [(cid, data)])

    def get_block(self, cid: str) -> bytes | None:
        """The block's bytes, or None if absent. StoreError if the stored bytes are corrupted."""
        key = normalize_cid(cid)
        with self._transaction(write=False) as conn:
            row = conn.execute("SELECT data FROM blocks WHERE cid = ?", (key,)).fetchone()
        if row is None:
            return None
        if not verify_cid(key, row[0]):
            raise StoreError(f"block {key} is corrupted: its bytes no longer match its CID")
        return row[0]

    def has_block(self, cid: str) -> bool:
        """Whether a block is stored under ``cid`` (presence only; get_block verifies)."""
        key = normalize_cid(cid)
        with self._transaction(write=False) as conn:
            row = conn.execute("SELECT 1 FROM blocks WHERE cid = ?", (key,)).fetchone()
        return row is not None

    # ---- key/value -------------------------------------------------------------------

    def kv_get(self, namespace: str, key: str) -> bytes | None:
        _check_str("namespace", namespace)
        _check_str("key", key)
        with self._transaction(write=False) as conn:
            row = conn.execute(
                "SELECT value FROM kv WHERE namespace = ? AND key = ?", (namespace, key)
            ).fetchone()
        return None if row is None else row[0]

    def kv_put(self, namespace: str, key: str, value: bytes) -> None:
        self._check_writable(namespace, key)
        value = _check_bytes("value", value)
        with self._transaction() as conn:
            conn.execute(
                "INSERT INTO kv (namespace, key, value) VALUES (?, ?, ?) "
                "ON CONFLICT (namespace, key) DO UPDATE SET value = excluded.value",
                (namespace, key, value),
            )

    def kv_batch(
        self,
        puts: Iterable[tuple[str, str, bytes]],
        deletes: Iterable[tuple[str, str]] = (),
        blocks: Iterable[tuple[bytes, str]] = (),
    ) -> None:
        """Put and delete many keys, and store ``blocks`` ((data, codec) pairs), in one
        transaction: all of it lands, or none (a key never names a block that is missing)."""
        puts = [(ns, key, _check_bytes("value", value)) for ns, key, value in puts]
        deletes = list(deletes)
        for ns, key, *_ in (*puts, *deletes):
            self._check_writable(ns, key)
        rows = [(cid_for(data, codec), data) for data, codec in
                ((_check_bytes("data", data), codec) for data, codec in blocks)]
        with self._transaction() as conn:
            _insert_blocks(conn, rows)
            conn.executemany(
                "INSERT INTO kv (namespace, key, value) VALUES (?, ?, ?) "
                "ON CONFLICT (namespace, key) DO UPDATE SET value = excluded.value",
                puts,
            )
            conn.executemany("DELETE FROM kv WHERE namespace = ? AND key = ?", deletes)

    def kv_delete(self, namespace: str, key: str) -> bool:
        """Delete one key; True if it existed."""
        self._check_writable(namespace, key)
        with self._transaction() as conn:
            cur = conn.execute(
                "DELETE FROM kv WHERE namespace = ? AND key = ?", (namespace, key)
            )
            return cur.rowcount > 0

    def kv_items(self, namespace: str) -> list[tuple[str, bytes]]:
        """All (key, value) pairs of a namespace, sorted by key."""
        _check_str("namespace", namespace)
        with self._transaction(write=False) as conn:
            return conn.execute(
                "SELECT key, value FROM kv WHERE namespace = ? ORDER BY key", (namespace,)
            ).fetchall()

    @staticmethod
    def _check_writable(namespace: str, key: str) -> None:
        _check_str("namespace", namespace)
        _check_str("key", key)
        if namespace == AUDIT_NS:
            # Writing the audit head by hand would hide a truncated log.
            raise StoreError(f"kv namespace {AUDIT_NS!r} is reserved for the audit log")

    # ---- audit log -------------------------------------------------------------------

    def audit_append(
        self, actor: str, action: str, detail: dict[str, Any], *, now: float | None = None
    ) -> AuditEntry:
        """Append one entry (time = ``now`` or the wall clock). Never put secrets in detail.

        Refuses (StoreError) to extend a log whose last row is not the recorded head, so a
        truncated or tampered tail cannot be papered over by new entries.
        """
        with self._transaction() as conn:
            row = conn.execute("SELECT seq, hash FROM audit ORDER BY seq DESC LIMIT 1").fetchone()
            last = None if row is None else ChainTip(*row)
            head = _read_head(conn)
            if (last.hash if last else GENESIS) != head:
                raise StoreError(
                    "audit log tail does not match its recorded head; see audit_verify"
                )
            entry = chain_entry(last, time.time() if now is None else now, actor, action, detail)
            conn.execute(
                f"INSERT INTO audit ({_AUDIT_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?)",
                (entry.seq, entry.time, entry.actor, entry.action,
                 encode_detail(entry.detail), entry.prev_hash, entry.hash),
            )
            conn.execute(
                "INSERT INTO kv (namespace, key, value) VALUES (?, ?, ?) "
                "ON CONFLICT (namespace, key) DO UPDATE SET value = excluded.value",
                (AUDIT_NS, _HEAD_KEY, entry.hash.encode("ascii")),
            )
        return entry

    def audit_tail(self, n: int) -> list[AuditEntry]:
        """The last ``n`` entries, oldest first."""
        if n <= 0:
            return []
        with self._transaction(write=False) as conn:
            rows = conn.execute(
                f"SELECT {_AUDIT_COLUMNS} FROM audit ORDER BY seq DESC LIMIT ?", (n,)
            ).fetchall()
        return [_entry_from_row(row) for row in reversed(rows)]

    def audit_verify(self) -> AuditVerdict:
        """Re-check the whole log against its hashes and the recorded head."""
        undecodable: list[int] = []
        with self._transaction(write=False) as conn:
            head = _read_head(conn)

            def entries() -> Iterator[AuditEntry]:
                for row in conn.execute(f"SELECT {_AUDIT_COLUMNS} FROM audit ORDER BY seq"):
                    try:
                        yield _entry_from_row(row)
                    except StoreError:
                        undecodable.append(row[0])
                        return

            verdict = verify_chain(entries(), head)
        if undecodable:
            # The chain was good up to this row; the row itself cannot be what was hashed.
            seq = undecodable[0]
            reason = f"altered: entry {seq} detail is not DAG-CBOR"
            return AuditVerdict(False, verdict.checked, seq, reason)
        return verdict


def _entry_from_row(row: tuple[Any, ...]) -> AuditEntry:
    seq, when, actor, action, detail, prev_hash, digest = row
    try:
        decoded = decode_detail(detail)
    except ValueError as exc:
        raise StoreError(f"audit entry {seq} has an undecodable detail: {exc}") from exc
    return AuditEntry(seq, when, actor, action, decoded, prev_hash, digest)


def _read_head(conn: sqlite3.Connection) -> str:
    row = conn.execute(
        "SELECT value FROM kv WHERE namespace = ? AND key = ?", (AUDIT_NS, _HEAD_KEY)
    ).fetchone()
    # No head yet means an empty log; a damaged head simply fails to match.
    return GENESIS if row is None else bytes(row[0]).decode("ascii", errors="replace")


def _insert_blocks(conn: sqlite3.Connection, rows: list[tuple[str, bytes]]) -> None:
    # Content addressed: an existing row already holds these bytes — unless it was
    # corrupted, in which case rewriting it heals the row.
    conn.executemany(
        "INSERT INTO blocks (cid, data) VALUES (?, ?) ON CONFLICT (cid) "
        "DO UPDATE SET data = excluded.data WHERE data IS NOT excluded.data",
        rows,
    )
