"""The "keystore" actor: every secret of the node at rest, wrapped under the node KEK.

Layer 3 (actors). Other actors keep and fetch secrets through `KeystoreClient`;
the record format and the rules are in `milagro_node.core.keystore`; the
store actor keeps the records and the hsm-worker does every cryptographic
operation (the KEK never leaves the token). ``milagro-node init`` creates the
first KEK with the synchronous `bootstrap_kek`.

Secrets come in and go out as `SecretBytes`; the keystore keeps none in
memory between requests, logs and audits only key ids, kinds and versions.
It serves one request at a time, so a put never interleaves with a rotation.

Theory of operation: KEK rotation
---------------------------------
The store names the current KEK version ``v`` (``keystore-meta/kek``) and every
record names the version it is wrapped under. A rotation from ``v``:

    1. check the token (`_reconcile`): KEK v present, no leftover v-1 or v+1
    2. create KEK v+1 in the token
    3. unwrap each record under v, wrap it under v+1 with its new associated
       data (in memory only)
    4. ONE store transaction: every re-wrapped record + "current = v+1"
    5. destroy KEK v in the token

Killed at any point, SQLite's transaction leaves the store either all at v
(before 4 committed) or all at v+1 (after), and the KEK it names is in the
token: it is created in 2 before the commit and the old one destroyed in 5
after it. So every secret stays readable. What a kill leaves behind, and how
the next start (or the next request after a failed rotation) cleans it:

    killed in / after | store | token      | clean-up
    ------------------+-------+------------+---------------------------------------
    2 or 3            | v     | v, v+1     | destroy v+1: no record names it
    4 (before commit) | v     | v, v+1     | same
    4 (after) or 5    | v+1   | v, v+1     | destroy v: no record names it
    after 5           | v+1   | v+1        | nothing

A leftover v+1 is destroyed and a fresh one generated, never reused: while the
store names v, nothing is wrapped under v+1 yet, so recreating it costs
nothing and the new key's attributes are the ones we asked for. A neighbour
is destroyed only if the KEK the store names is present (a store restored
from an old backup next to a newer token must not destroy the KEK the newer
records need) and no record names it (`plan_kek`). Bootstrap follows the same
rule: a store naming no KEK creates KEK 1, or adopts one left by a start that
died between creating and recording it.

KEK labels (``milagro-kek-<v>``) are not qualified by node: two nodes must not
share one token (or token label), or one node's rotation would destroy the
KEK the other's records need.

Error handling: the actor starts even when the HSM is unavailable, and
re-checks the token before the next request. Errors of the HSM (``hsm-*``)
and of the store (``store-error``) reach the caller with their codes; a record
that does not authenticate is ``keystore-corrupt`` naming its key id.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import trio

from milagro_node.core.keystore import (
    META_KEY, META_NS, RECORDS_NS, KekFacts, KeystoreError, Record, RotationPlan, aad, check_key_id,
    decode_kek_version, decode_record, encode_kek_version, encode_record, kek_label, kek_versions_in_use,
    plan_kek, probe_versions, secret_kind,
)
from milagro_node.secret_memory import SecretBytes

from .context import ActorContext
from .mailbox import ActorError
from .messages import (
    HsmDestroyKey, HsmGenerateKey, HsmHasKey, HsmRandom, HsmUnwrap, HsmWrap, KekRotate, KeyDelete, KeyGenerate,
    KeyGet, KeyList, KeyPut,
)
from .store import StoreClient

if TYPE_CHECKING:  # only the hsm-worker imports pkcs11 at run time
    from actors.hsm_worker.session import Pkcs11Session
    from milagro_node.adapters.sqlite_store import Store

NAME = "keystore"
HSM = "hsm-worker"
KEK_KIND = "aes-256"
ROTATE_TIMEOUT_S = 300.0  # a rotation re-wraps every record: give it more than one request's time


class Keystore:
    name = NAME

    def __init__(self) -> None:
        self._version: int | None = None  # the current KEK version, once the token was checked

    async def run(self, ctx: ActorContext, *, task_status: trio.TaskStatus[None]) -> None:
        self._ctx = ctx
        self._store = StoreClient(ctx)
        try:
            await self._reconcile()
        except (ActorError, KeystoreError) as exc:
            # Start anyway (the node serves on); every request re-checks until it works.
            ctx.report(keystore="unavailable", keystore_error=exc.message)
            ctx.log.error("keystore not ready", extra={"code": exc.code, "reason": exc.message})
        task_status.started()
        await ctx.serve(self._handle)

    async def _handle(self, request: Any) -> Any:
        try:
            if self._version is None:
                await self._reconcile()
            match request:
                case KeyPut(key_id, kind, secret, replace):
                    return await self._put(key_id, kind, secret, replace)
                case KeyGenerate(key_id, kind, size):
                    return await self._generate(key_id, kind, size)
                case KeyGet(key_id, kind):
                    return await self._get(key_id, kind)
                case KeyDelete(key_id):
                    return await self._delete(key_id)
                case KeyList():
                    return await self._list()
                case KekRotate():
                    return await self._rotate()
        except KeystoreError as exc:
            raise ActorError(exc.code, exc.message) from None
        raise ActorError("bad-request", f"the keystore does not handle {type(request).__name__}")

    # -- the token and the store agree on one KEK ----------------------------------------

    async def _reconcile(self) -> None:
        current = decode_kek_version(await self._store.kv_get(META_NS, META_KEY))
        in_token = frozenset([v for v in probe_versions(current) if await self._hsm(HsmHasKey(kek_label(v)))])
        in_use = kek_versions_in_use(await self._store.kv_items(RECORDS_NS))
        plan = plan_kek(KekFacts(current, in_token, in_use))
        if plan.create is not None:
            await self._hsm(HsmGenerateKey(kek_label(plan.create), KEK_KIND))
            await self._store.audit("keystore.kek-created", kek=plan.create)
        if plan.record is not None:
            await self._store.kv_put(META_NS, META_KEY, encode_kek_version(plan.record))
        for version in plan.destroy:
            await self._hsm(HsmDestroyKey(kek_label(version)))
            self._ctx.log.warning("destroyed a KEK left by an interrupted rotation", extra={"kek": version})
            await self._store.audit("keystore.kek-leftover-destroyed", kek=version)
        self._version = plan.record or current
        self._ctx.report(keystore="ok", keystore_error=None, kek=self._version)

    # -- requests ------------------------------------------------------------------------

    async def _put(self, key_id: str, kind: str, secret: Any, replace: bool, action: str = "keystore.put") -> None:
        check_key_id(key_id)
        spec = secret_kind(kind)
        if not isinstance(secret, SecretBytes) or secret.closed:
            raise ActorError("bad-request", "a secret is put as an open SecretBytes")
        spec.check_size(len(secret))
        if not replace:
            await self._refuse_existing(key_id)
        version = self._current()
        wrapped = await self._hsm(HsmWrap(kek_label(version), secret, aad(key_id, kind, version)))
        await self._store.kv_put(RECORDS_NS, key_id, encode_record(kind, version, wrapped))
        self._ctx.log.info("key stored", extra={"key_id": key_id, "kind": kind, "kek": version})
        await self._store.audit(action, key_id=key_id, kind=kind)

    async def _generate(self, key_id: str, kind: str, size: int | None) -> None:
        check_key_id(key_id)
        spec = secret_kind(kind)
        if not spec.random_ok:
            raise KeystoreError("keystore-bad-kind", f"a {kind} is not any random byte string: compute it and put it")
        size = spec.default_size if size is None else size
        spec.check_size(size)
        await self._refuse_existing(key_id)  # before drawing: an error must not waste the HSM's entropy
        with await self._hsm(HsmRandom(size)) as secret:
            await self._put(key_id, kind, secret, replace=False, action="keystore.generate")

    async def _get(self, key_id: str, kind: str) -> SecretBytes:
        check_key_id(key_id)
        spec = secret_kind(kind)
        record = await self._record(key_id)
        if record.kind != kind:
            raise KeystoreError("keystore-bad-kind", f"key {key_id!r} holds a {record.kind}, not a {kind}")
        secret = await self._unwrap(key_id, record)
        if len(secret) not in spec.sizes:
            secret.close()
            raise KeystoreError("keystore-corrupt", f"key {key_id!r} unwrapped to a size a {kind} cannot have")
        return secret

    async def _delete(self, key_id: str) -> None:
        check_key_id(key_id)
        value = await self._store.kv_get(RECORDS_NS, key_id)
        if value is None:
            raise KeystoreError("keystore-no-key", f"no key {key_id!r} in the keystore")
        # A corrupt record can be deleted too: that is how an operator clears it.
        [(_, kind, _)] = _described([(key_id, value)])
        await self._store.kv_delete(RECORDS_NS, key_id)
        self._ctx.log.info("key deleted", extra={"key_id": key_id, "kind": kind})
        await self._store.audit("keystore.delete", key_id=key_id, kind=kind)

    async def _list(self) -> list[tuple[str, str | None, int | None]]:
        return _described(await self._store.kv_items(RECORDS_NS))

    async def _rotate(self) -> int:
        old = self._current()
        plan = RotationPlan.from_store(old, await self._store.kv_items(RECORDS_NS))
        # Until this rotation has finished, the next request re-checks the token first.
        self._version = None
        await self._hsm(HsmGenerateKey(kek_label(plan.new), KEK_KIND))
        rewrapped: dict[str, bytes] = {}
        for key_id, record in plan.records:
            with await self._unwrap(key_id, record) as secret:
                rewrapped[key_id] = await self._hsm(
                    HsmWrap(kek_label(plan.new), secret, plan.new_aad(key_id, record)))
        # Once the commit is sent, finish (a caller's deadline must not cut off the destroy or the audit).
        with trio.CancelScope(shield=True):
            await self._store.kv_batch(list(plan.commit(rewrapped)))
            try:
                await self._hsm(HsmDestroyKey(kek_label(old)))
            except ActorError as exc:
                # Committed: the rotation stands; the next request's check destroys KEK `old`.
                self._ctx.log.warning("old KEK not destroyed yet", extra={"kek": old, "code": exc.code})
            else:
                self._version = plan.new
            self._ctx.report(kek=plan.new)
            detail = {"from": old, "to": plan.new, "keys": len(rewrapped)}
            self._ctx.log.info("KEK rotated", extra=detail)
            await self._store.audit("keystore.kek-rotated", **detail)
        return plan.new

    # -- helpers -------------------------------------------------------------------------

    def _current(self) -> int:
        assert self._version is not None, "_handle reconciles before serving"
        return self._version

    async def _refuse_existing(self, key_id: str) -> None:
        if await self._store.kv_get(RECORDS_NS, key_id) is not None:
            raise KeystoreError("keystore-exists", f"key {key_id!r} already exists (put with replace to overwrite)")

    async def _record(self, key_id: str) -> Record:
        value = await self._store.kv_get(RECORDS_NS, key_id)
        if value is None:
            raise KeystoreError("keystore-no-key", f"no key {key_id!r} in the keystore")
        record = decode_record(key_id, value)
        record.check_kek(key_id, self._current())
        return record

    async def _unwrap(self, key_id: str, record: Record) -> SecretBytes:
        try:
            return await self._hsm(HsmUnwrap(kek_label(record.kek), record.wrapped, record.aad(key_id)))
        except ActorError as exc:
            if exc.code == "hsm-unwrap-failed":
                raise KeystoreError("keystore-corrupt",
                                    f"key {key_id!r} does not authenticate: altered, or moved from another key id "
                                    "or kind") from None
            raise

    async def _hsm(self, request: Any) -> Any:
        return await self._ctx.ask(HSM, request)


def _described(items: list[tuple[str, bytes]]) -> list[tuple[str, str | None, int | None]]:
    """(key id, kind, KEK version) of stored records; None, None for a corrupt one, which is
    still shown so that an operator can find and delete it."""
    described = []
    for key_id, value in items:
        try:
            record = decode_record(key_id, value)
        except KeystoreError:
            described.append((key_id, None, None))
        else:
            described.append((key_id, record.kind, record.kek))
    return described


class KeystoreClient:
    """The keystore as other actors see it. `ctx` is an `ActorContext` (or anything
    with the same ``ask``, such as the `Supervisor` in tests)."""

    def __init__(self, ctx: Any) -> None:
        self._ctx = ctx

    async def put(self, key_id: str, kind: str, secret: SecretBytes, *, replace: bool = False) -> None:
        """Keep `secret` (still owned by the caller: close it when done)."""
        await self._ctx.ask(NAME, KeyPut(key_id, kind, secret, replace))

    async def generate(self, key_id: str, kind: str, size: int | None = None) -> None:
        """Keep a new random secret from the HSM; fetch it with `get` when needed."""
        await self._ctx.ask(NAME, KeyGenerate(key_id, kind, size))

    async def get(self, key_id: str, kind: str) -> SecretBytes:
        """The secret, which the caller owns: use it as a context manager."""
        return await self._ctx.ask(NAME, KeyGet(key_id, kind))

    async def delete(self, key_id: str) -> None:
        await self._ctx.ask(NAME, KeyDelete(key_id))

    async def list(self) -> list[tuple[str, str | None, int | None]]:
        """(key id, kind, KEK version) of every key; kind and version are None for a corrupt record."""
        return await self._ctx.ask(NAME, KeyList())

    async def rotate(self, *, timeout: float = ROTATE_TIMEOUT_S) -> int:
        """Re-wrap every key under a new KEK; return the new KEK version."""
        return await self._ctx.ask(NAME, KekRotate(), timeout=timeout)


def bootstrap_kek(session: Pkcs11Session, store: Store) -> list[str]:
    """Make sure the token holds the KEK the store names: create KEK 1 on a new data
    dir, clean leftovers of an interrupted rotation. Return what it did, for init's
    list of what was created (empty when everything was in place already).

    For ``milagro-node init``, synchronous: `session` is an open
    `actors.hsm_worker.session.Pkcs11Session`, `store` an open
    `milagro_node.adapters.sqlite_store.Store`. Idempotent. Raises `KeystoreError`
    (e.g. ``keystore-no-kek``: the token lacks the KEK the store names) or `HsmError`.
    """
    current = decode_kek_version(store.kv_get(META_NS, META_KEY))
    in_token = frozenset(v for v in probe_versions(current) if session.has_key(kek_label(v)))
    plan = plan_kek(KekFacts(current, in_token, kek_versions_in_use(store.kv_items(RECORDS_NS))))
    done = []
    if plan.create is not None:
        session.generate_key(kek_label(plan.create), KEK_KIND)
        store.audit_append("cli", "keystore.kek-created", {"kek": plan.create})
        done.append(f"node KEK {kek_label(plan.create)!r} in the token")
    if plan.record is not None:
        store.kv_put(META_NS, META_KEY, encode_kek_version(plan.record))
    for version in plan.destroy:
        session.destroy_key(kek_label(version))
        store.audit_append("cli", "keystore.kek-leftover-destroyed", {"kek": version})
        done.append(f"destroyed {kek_label(version)!r}, left in the token by an interrupted KEK rotation")
    return done
