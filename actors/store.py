"""The "store" actor: owns the node's SQLite file and serves it to other actors.

It runs every SQLite call in a worker thread (never on the trio loop): writes in one
thread on the writing connection, reads in another on a read-only connection. With
``synchronous=FULL`` a commit costs an fsync (about 4 ms on this machine type), so:

- writes that queue up while a commit is in progress are then run together in one
  transaction (`Store.run_group`), each in its own savepoint (a failing one changes
  nothing): concurrent writers — audit entries of parallel logins, envelopes arriving
  together — share one fsync instead of queueing for one each; every write still gets its
  own reply, only after its commit;
- reads never wait for a commit: WAL lets the reader see the last committed state while
  the writer syncs. A read sent after a write's reply sees that write;
- an audit entry sent with ``sync=False`` (the authenticator's login entries) is answered
  once committed without the fsync: it is in the WAL, so a crash of the node keeps it, and
  the actor syncs the WAL at most `SYNC_DELAY_S` later (one fsync for every such commit in
  that time), so only a power cut within that window can lose it. A group holding any
  other write is synced as usual, and so covers the unsynced commits before it.

Bad input (a CID that does not match its bytes, a corrupt block) is
answered with an ``ActorError("store-error", ...)`` and the store goes on;
anything else crashes the actor and the supervisor reopens the file.

Other actors use it through `StoreClient`, which reads like a plain API.
"""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Any

import attrs
import trio

from milagro_node.adapters.sqlite_store import Store, StoreError, flush_wal

from .context import ActorContext
from .mailbox import ActorError
from .messages import (
    AuditAppend, AuditTail, AuditVerify, GetBlock, KvBatch, KvDelete, KvGet, KvItems, KvPut, PutBlock,
)

NAME = "store"
MAX_GROUP = 64  # writes per transaction
CONCURRENCY = 128  # requests in progress at once (reads in the reader, writes waiting for a group)
READS = (GetBlock, KvGet, KvItems, AuditTail, AuditVerify)
SYNC_DELAY_S = 0.05  # an unsynced commit reaches the disk within this (PostgreSQL's is 0.2 s)


class StoreActor:
    name = NAME

    def __init__(self, path: Path) -> None:
        self._path = path
        self._writer_thread = trio.CapacityLimiter(1)
        self._reader_thread = trio.CapacityLimiter(1)
        self._sync_thread = trio.CapacityLimiter(1)  # so a WAL sync never holds up a commit
        self._pending: list[tuple[Any, _Outcome, bool]] = []  # writes waiting for the next group, sync?
        self._wake = trio.Event()
        self._unsynced = trio.Event()  # set by a commit that skipped its fsync
        self.wal_syncs = 0

    async def _in(self, limiter: trio.CapacityLimiter, fn: Any, *args: Any) -> Any:
        try:
            return await trio.to_thread.run_sync(fn, *args, limiter=limiter)
        except StoreError as exc:
            raise ActorError("store-error", str(exc)) from None

    async def run(self, ctx: ActorContext, *, task_status: trio.TaskStatus[None]) -> None:
        store: Store = await self._in(self._writer_thread, Store.open, self._path)
        reader: Store | None = None
        try:
            reader = await self._in(self._reader_thread, Store.open_reader, self._path)
            ctx.report(path=str(self._path))
            async with trio.open_nursery() as nursery:
                nursery.start_soon(self._commit_groups, store)
                nursery.start_soon(self._sync_soon)
                task_status.started()
                await ctx.serve(lambda request: self._handle(store, reader, request), concurrency=CONCURRENCY)
        finally:
            # Close even while the node is being cancelled, so the WAL is checkpointed.
            with trio.CancelScope(shield=True), trio.move_on_after(3):
                if reader is not None:
                    await self._in(self._reader_thread, reader.close)
                await self._in(self._writer_thread, store.close)

    async def _handle(self, store: Store, reader: Store, request: Any) -> Any:
        if isinstance(request, READS):
            call = _operation(reader, request)
            return _outcome_or_raise(await self._in(self._reader_thread, call))
        call = _operation(store, request)  # an ActorError for a request we do not know
        if isinstance(call, ActorError):
            raise call
        outcome = _Outcome()
        self._pending.append((call, outcome, request.sync if isinstance(request, AuditAppend) else True))
        self._wake.set()
        await outcome.done.wait()
        return _outcome_or_raise(outcome.value)

    async def _commit_groups(self, store: Store) -> None:
        """Run queued writes in groups: one transaction, one fsync, a savepoint each."""
        while True:
            await self._wake.wait()
            self._wake = trio.Event()
            while self._pending:
                group, self._pending = self._pending[:MAX_GROUP], self._pending[MAX_GROUP:]
                sync = any(sync for _, _, sync in group)
                try:
                    results = await self._in(self._writer_thread, functools.partial(
                        store.run_group, [call for call, _, _ in group], sync=sync))
                except ActorError as exc:  # the commit failed: nothing of the group landed
                    results = [exc] * len(group)
                else:
                    if not sync:
                        self._unsynced.set()
                for (_, outcome, _), result in zip(group, results, strict=True):
                    outcome.value = result
                    outcome.done.set()

    async def _sync_soon(self) -> None:
        """fsync the WAL at most SYNC_DELAY_S after a commit that skipped it. A failed sync
        crashes the actor (the supervisor reopens the file): after a failed fsync the
        kernel may have dropped the pages, so nothing written since can be trusted."""
        while True:
            await self._unsynced.wait()
            await trio.sleep(SYNC_DELAY_S)
            self._unsynced = trio.Event()  # a commit from now on needs the next sync
            await self._in(self._sync_thread, flush_wal, self._path)
            self.wal_syncs += 1


@attrs.define
class _Outcome:
    value: Any = None
    done: trio.Event = attrs.Factory(trio.Event)


def _operation(store: Store, request: Any) -> Any:
    """The store call that serves `request` (a zero-argument callable), or an ActorError."""
    match request:
        case PutBlock(data, codec):
            return lambda: store.put_block(data, codec)
        case GetBlock(cid):
            return lambda: store.get_block(cid)
        case KvGet(namespace, key):
            return lambda: store.kv_get(namespace, key)
        case KvPut(namespace, key, value):
            return lambda: store.kv_put(namespace, key, value)
        case KvDelete(namespace, key):
            return lambda: store.kv_delete(namespace, key)
        case KvItems(namespace):
            return lambda: store.kv_items(namespace)
        case KvBatch(puts, deletes, blocks):
            return lambda: store.kv_batch(puts, deletes, blocks)
        case AuditAppend(actor, action, detail):
            return lambda: store.audit_append(actor, action, detail)
        case AuditTail(count):
            return lambda: store.audit_tail(count)
        case AuditVerify():
            return store.audit_verify
    return ActorError("bad-request", f"the store does not handle {type(request).__name__}")


def _outcome_or_raise(result: Any) -> Any:
    """A call's result as a reply: a StoreError becomes its store-error; any other exception
    is a bug and crashes the actor (the supervisor reopens the file)."""
    if isinstance(result, StoreError):
        raise ActorError("store-error", str(result))
    if isinstance(result, Exception):
        raise result
    return result


class StoreClient:
    """The store as other actors see it: awaitable methods over messages."""

    def __init__(self, ctx: ActorContext) -> None:
        self._ctx = ctx

    async def put_block(self, data: bytes, codec: str = "raw") -> str:
        return await self._ctx.ask(NAME, PutBlock(data, codec))

    async def get_block(self, cid: str) -> bytes | None:
        return await self._ctx.ask(NAME, GetBlock(cid))

    async def kv_get(self, namespace: str, key: str) -> bytes | None:
        return await self._ctx.ask(NAME, KvGet(namespace, key))

    async def kv_put(self, namespace: str, key: str, value: bytes) -> None:
        await self._ctx.ask(NAME, KvPut(namespace, key, value))

    async def kv_delete(self, namespace: str, key: str) -> None:
        await self._ctx.ask(NAME, KvDelete(namespace, key))

    async def kv_items(self, namespace: str) -> list[tuple[str, bytes]]:
        return await self._ctx.ask(NAME, KvItems(namespace))

    async def kv_batch(
        self, puts: list[tuple[str, str, bytes]], deletes: list[tuple[str, str]] = (),
        blocks: list[tuple[bytes, str]] = (),
    ) -> None:
        await self._ctx.ask(NAME, KvBatch(tuple(puts), tuple(deletes), tuple(blocks)))

    async def audit(self, action: str, **detail: Any) -> None:
        """Record `action` by the calling actor. Never pass secrets in `detail`."""
        await self._ctx.ask(NAME, AuditAppend(self._ctx.name, action, detail))

    async def audit_soon(self, action: str, **detail: Any) -> None:
        """`audit`, answered before the fsync: on disk within SYNC_DELAY_S (`AuditAppend`)."""
        await self._ctx.ask(NAME, AuditAppend(self._ctx.name, action, detail, sync=False))

    async def audit_tail(self, count: int) -> list[Any]:
        return await self._ctx.ask(NAME, AuditTail(count))

    async def audit_verify(self) -> Any:
        return await self._ctx.ask(NAME, AuditVerify())
