"""The "store" actor: owns the node's SQLite file and serves it to other actors.

It runs every SQLite call in a worker thread (never on the trio loop), one at
a time. Requests that queue up while one is in the thread are then run together in one
transaction (`Store.run_group`), each in its own savepoint: with ``synchronous=FULL`` a
commit costs an fsync (about 4 ms on this machine type), so concurrent writers — audit
entries of parallel logins, envelopes arriving together — share one instead of queueing
for one each. Every request still gets its own reply, only after the commit. Bad input (a CID that does not match its bytes, a corrupt block) is
answered with an ``ActorError("store-error", ...)`` and the store goes on;
anything else crashes the actor and the supervisor reopens the file.

Other actors use it through `StoreClient`, which reads like a plain API.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import trio

from milagro_node.adapters.sqlite_store import Store, StoreError

from .context import ActorContext
from .mailbox import ActorError
from .messages import (
    AuditAppend, AuditTail, AuditVerify, GetBlock, KvBatch, KvDelete, KvGet, KvItems, KvPut, PutBlock,
)

NAME = "store"
MAX_GROUP = 64  # requests per transaction


class StoreActor:
    name = NAME

    def __init__(self, path: Path) -> None:
        self._path = path
        self._thread = trio.CapacityLimiter(1)

    async def _call(self, fn: Any, *args: Any) -> Any:
        try:
            return await trio.to_thread.run_sync(fn, *args, limiter=self._thread)
        except StoreError as exc:
            raise ActorError("store-error", str(exc)) from None

    async def run(self, ctx: ActorContext, *, task_status: trio.TaskStatus[None]) -> None:
        store: Store = await self._call(Store.open, self._path)
        try:
            ctx.report(path=str(self._path))
            task_status.started()
            await ctx.serve_batches(lambda requests: self._handle_group(store, requests), max_batch=MAX_GROUP)
        finally:
            # Close even while the node is being cancelled, so the WAL is checkpointed.
            with trio.CancelScope(shield=True), trio.move_on_after(3):
                await self._call(store.close)

    async def _handle_group(self, store: Store, requests: list[Any]) -> list[Any]:
        calls = [_operation(store, request) for request in requests]
        runnable = [call for call in calls if not isinstance(call, ActorError)]
        if len(runnable) == 1:
            try:
                done = [await self._call(runnable[0])]
            except ActorError as exc:
                done = [exc]
        elif runnable:
            try:
                done = await self._call(store.run_group, runnable)
            except ActorError as exc:  # the commit failed: nothing of the group landed
                done = [exc] * len(runnable)
        else:
            done = []
        outcomes = iter(done)
        return [call if isinstance(call, ActorError) else _outcome(next(outcomes)) for call in calls]


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


def _outcome(result: Any) -> Any:
    """A grouped call's result as a reply: a StoreError becomes its store-error; any other
    exception is a bug and crashes the actor (the supervisor reopens the file)."""
    if isinstance(result, StoreError):
        return ActorError("store-error", str(result))
    if isinstance(result, Exception) and not isinstance(result, ActorError):
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

    async def audit_tail(self, count: int) -> list[Any]:
        return await self._ctx.ask(NAME, AuditTail(count))
