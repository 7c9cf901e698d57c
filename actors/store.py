"""The "store" actor: owns the node's SQLite file and serves it to other actors.

It runs every SQLite call in a worker thread (never on the trio loop), one at
a time. Bad input (a CID that does not match its bytes, a corrupt block) is
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
            await ctx.serve(lambda request: self._handle(store, request))
        finally:
            # Close even while the node is being cancelled, so the WAL is checkpointed.
            with trio.CancelScope(shield=True), trio.move_on_after(3):
                await self._call(store.close)

    async def _handle(self, store: Store, request: Any) -> Any:
        match request:
            case PutBlock(data, codec):
                return await self._call(store.put_block, data, codec)
            case GetBlock(cid):
                return await self._call(store.get_block, cid)
            case KvGet(namespace, key):
                return await self._call(store.kv_get, namespace, key)
            case KvPut(namespace, key, value):
                return await self._call(store.kv_put, namespace, key, value)
            case KvDelete(namespace, key):
                return await self._call(store.kv_delete, namespace, key)
            case KvItems(namespace):
                return await self._call(store.kv_items, namespace)
            case KvBatch(puts, deletes, blocks):
                return await self._call(store.kv_batch, puts, deletes, blocks)
            case AuditAppend(actor, action, detail):
                return await self._call(store.audit_append, actor, action, detail)
            case AuditTail(count):
                return await self._call(store.audit_tail, count)
            case AuditVerify():
                return await self._call(store.audit_verify)
        raise ActorError("bad-request", f"the store does not handle {type(request).__name__}")


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
