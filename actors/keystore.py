"""The "keystore" actor: every secret of the node at rest, wrapped under the node KEK.

Layer 3 (actors). Other actors keep and fetch secrets through `KeystoreClient`;
the record format and the rules are in `milagro_node.core.keystore`; the
store actor keeps the records and the hsm-worker does every cryptographic
operation (the KEK never leaves the token). ``milagro-node init`` creates the
first KEK with the synchronous `bootstrap_kek`.

Secrets come in and go out as `SecretBytes`; the keystore keeps none in
memory between requests, logs and audits only key ids, kinds and versions.
It serves one request at a time, so a put never interleaves with a rotation —
except signatures with an HSM-resident key already looked up once: those run
concurrently, from a cache of the key's (public) record, because every login
assertion and envelope is signed and none of them changes the keystore. Any
request that may change records empties that cache first.

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

Theory of operation: keys that live in the HSM
----------------------------------------------
`KeyCreateInHsm` has the token generate a key pair (Ed25519, secp256k1 or
P-256; sensitive, non-extractable) labelled ``milagro-key-<key id>``
(`resident_label`); callers sign with it and read its public key by key id and
never see its private key. Its store record (`ResidentRecord`) holds the
algorithm, the label and the public key, nothing secret, and is what makes the
keystore know the token key. A create:

    1. check: the key id is free, the token lists the algorithm's mechanisms
       (else ``hsm-unsupported``, nothing written), no key has the label yet
    2. write the record with no public key ("unfinished")
    3. generate the key pair in the token
    4. write the record with its public key ("ready"); audit

and a delete:

    5. rewrite the record as unfinished (from here on, the key cannot be used)
    6. destroy the token key (public and private halves)
    7. drop the record; audit

An unfinished record means "the token must hold nothing under this label": it
exists from before the token key is made until after it is destroyed, so every
token key the keystore made is named by a record, and a ready record always
has its whole key pair. What a kill (or a failed step) leaves, and the clean-up:

    killed in / after | store             | token          | clean-up
    ------------------+-------------------+----------------+-----------------------------------
    2 (before commit) | nothing           | -              | nothing
    2 or 3            | unfinished record | -, or one half | destroy what is there, drop record
    3 (key made)      | unfinished record | key pair       | destroy the key pair, drop record
    4                 | ready record      | key pair       | nothing
    5 (before commit) | ready record      | key pair       | nothing (the key stays)
    5 or 6            | unfinished record | pair, half, -  | destroy what is there, drop record
    7                 | nothing           | -              | nothing

The clean-up runs in the token check (`_reconcile`) at start-up and before the
next request after a create or delete that did not finish or undo itself (cut
off at its deadline, the HSM or the store failing), so the caller's retry never
trips on a half-made key. A leftover key is destroyed, not adopted: nobody has
seen its public key (a create), or its owner asked for it to go (a delete).

"Key missing": a ready record whose token key is gone (removed with the HSM's
own tools, a data dir beside a token re-initialised with the same label) is
logged and reported at start-up (``keystore_missing_keys`` in the node
status), and using it is ``keystore-corrupt`` naming the key id; `KeyDelete`
drops the record.
The other way round, a ``milagro-key-`` key in the token that no record names
cannot come from the keystore's own crashes; it comes from outside (a store
restored from an older backup next to the token, a data dir re-created next to
it, another node on the same token). It may be a node identity that peers know,
so the keystore never destroys it: creating a key with that id fails with
``keystore-exists`` naming the label, for the operator to investigate.

KEK rotation ignores resident records (nothing is wrapped); its transaction
rewrites only wrapped records and the KEK version, so its crash states above
hold unchanged. Signing is not audited: an identity key signs at the rate of
the protocol, and the audit log records who can sign (create and delete, with
key id and algorithm), not each use.

Error handling: the actor starts even when the HSM is unavailable, and
re-checks the token before the next request. Errors of the HSM (``hsm-*``)
and of the store (``store-error``) reach the caller with their codes; a record
that does not authenticate is ``keystore-corrupt`` naming its key id.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import trio

from milagro_node.core.keystore import (
    META_KEY, META_NS, RECORDS_NS, KekFacts, KeystoreError, Record, ResidentRecord, RotationPlan, aad,
    check_key_id, decode_entry, decode_kek_version, decode_record, encode_kek_version, encode_record,
    encode_resident, kek_label, kek_versions_in_use, plan_kek, probe_versions, resident_algorithm, resident_label,
    secret_kind,
)
from milagro_node.secret_memory import SecretBytes

from .context import ActorContext
from .mailbox import ActorError
from .messages import (
    HsmDestroyKey, HsmGenerateKey, HsmHasKey, HsmHealth, HsmPublicKey, HsmRandom, HsmSign, HsmUnwrap, HsmWrap,
    KekRotate, KeyCreateInHsm, KeyDelete, KeyGenerate, KeyGet, KeyList, KeyPublic, KeyPut, KeySign,
)
from .store import StoreClient

if TYPE_CHECKING:  # only the hsm-worker imports pkcs11 at run time
    from actors.hsm_worker.session import Pkcs11Session
    from milagro_node.adapters.sqlite_store import Store

NAME = "keystore"
SIGN_CONCURRENCY = 16  # cached signatures in flight at once (the hsm-worker batches them)
HSM = "hsm-worker"
KEK_KIND = "aes-256"
ROTATE_TIMEOUT_S = 300.0  # a rotation re-wraps every record: give it more than one request's time


class Keystore:
    name = NAME

    def __init__(self) -> None:
        self._version: int | None = None  # the current KEK version, once the token was checked
        self._serial = trio.Lock()  # every request but a cached signature, one at a time
        self._signers: dict[str, ResidentRecord] = {}  # ready resident keys already looked up

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
        await ctx.serve(self._dispatch, concurrency=SIGN_CONCURRENCY)

    async def _dispatch(self, request: Any) -> Any:
        if isinstance(request, KeySign) and self._version is not None:
            entry = self._signers.get(request.key_id)
            if entry is not None:
                try:
                    return await self._sign_with(request.key_id, entry, request.data)
                except KeystoreError as exc:
                    raise ActorError(exc.code, exc.message) from None
        # A delete, once taken, runs to its end even when its caller gives up (while it waits
        # for the lock, too): the caller's next request must not find the key still there.
        with trio.CancelScope(shield=isinstance(request, KeyDelete)):
            async with self._serial:
                if not isinstance(request, (KeySign, KeyPublic, KeyGet, KeyList)):
                    self._signers.clear()
                return await self._handle(request)

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
                case KeyCreateInHsm(key_id, algorithm):
                    return await self._create_in_hsm(key_id, algorithm)
                case KeySign(key_id, data):
                    return await self._sign(key_id, data)
                case KeyPublic(key_id):
                    return await self._public(key_id)
        except KeystoreError as exc:
            raise ActorError(exc.code, exc.message) from None
        raise ActorError("bad-request", f"the keystore does not handle {type(request).__name__}")

    # -- the token and the store agree on one KEK ----------------------------------------

    async def _reconcile(self) -> None:
        current = decode_kek_version(await self._store.kv_get(META_NS, META_KEY))
        in_token = frozenset([v for v in probe_versions(current) if await self._hsm(HsmHasKey(kek_label(v)))])
        items = await self._store.kv_items(RECORDS_NS)
        plan = plan_kek(KekFacts(current, in_token, kek_versions_in_use(items)))
        if plan.create is not None:
            await self._hsm(HsmGenerateKey(kek_label(plan.create), KEK_KIND))
            await self._store.audit("keystore.kek-created", kek=plan.create)
        if plan.record is not None:
            await self._store.kv_put(META_NS, META_KEY, encode_kek_version(plan.record))
        for version in plan.destroy:
            await self._hsm(HsmDestroyKey(kek_label(version)))
            self._ctx.log.warning("destroyed a KEK left by an interrupted rotation", extra={"kek": version})
            await self._store.audit("keystore.kek-leftover-destroyed", kek=version)
        # Only once the KEK check passed (this token belongs to this store) may a key be destroyed.
        missing = await self._reconcile_resident(items)
        self._version = plan.record or current
        self._ctx.report(keystore="ok", keystore_error=None, kek=self._version, keystore_missing_keys=missing or None)

    async def _reconcile_resident(self, items: list[tuple[str, bytes]]) -> list[str]:
        """Finish what interrupted creates and deletes left (see the table above); return
        the key ids of ready resident keys whose token key is missing."""
        missing = []
        for key_id, value in items:
            try:
                entry = decode_entry(key_id, value)
            except KeystoreError:
                continue  # reported when read; an operator deletes it
            if not isinstance(entry, ResidentRecord):
                continue
            if entry.pending:
                await self._abandon(key_id, entry, leftover=True)
            elif not await self._hsm(HsmHasKey(entry.label)):
                missing.append(key_id)
                self._ctx.log.error("HSM-resident key missing from the token",
                                    extra={"key_id": key_id, "algorithm": entry.algorithm, "label": entry.label})
        return missing

    async def _abandon(self, key_id: str, entry: ResidentRecord, *, leftover: bool) -> None:
        """Destroy whatever the token holds under an unfinished record's label, then drop
        the record. Only a label some record names is ever destroyed."""
        existed = await self._hsm(HsmHasKey(entry.label))
        if existed:
            await self._hsm(HsmDestroyKey(entry.label))
        await self._store.kv_delete(RECORDS_NS, key_id)
        detail = {"key_id": key_id, "algorithm": entry.algorithm}
        if existed and leftover:
            self._ctx.log.warning("destroyed an HSM key left by an interrupted create or delete", extra=detail)
            await self._store.audit("keystore.hsm-key-leftover-destroyed", **detail)
        elif leftover:
            self._ctx.log.info("dropped the record of an interrupted create or delete", extra=detail)

    # -- requests ------------------------------------------------------------------------

    async def _put(self, key_id: str, kind: str, secret: Any, replace: bool, action: str = "keystore.put") -> None:
        check_key_id(key_id)
        spec = secret_kind(kind)
        if not isinstance(secret, SecretBytes) or secret.closed:
            raise ActorError("bad-request", "a secret is put as an open SecretBytes")
        spec.check_size(len(secret))
        if not replace:
            await self._refuse_existing(key_id)
        else:
            await self._refuse_resident(key_id)
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
        entry = _entry_or_none(key_id, value)
        if isinstance(entry, ResidentRecord):
            return await self._delete_resident(key_id, entry)
        await self._store.kv_delete(RECORDS_NS, key_id)
        self._ctx.log.info("key deleted", extra={"key_id": key_id, "kind": kind})
        await self._store.audit("keystore.delete", key_id=key_id, kind=kind)

    async def _delete_resident(self, key_id: str, entry: ResidentRecord) -> None:
        # Unfinished first, then the token key (both halves), then the record: a kill or a
        # failure anywhere leaves an unfinished record for the token check to finish, never
        # a ready record beside half a key pair, nor a token key that no record names.
        unfinished = ResidentRecord(entry.algorithm, entry.label, None)
        with trio.CancelScope(shield=True):  # a caller's deadline must not stop it half-way
            await self._store.kv_put(RECORDS_NS, key_id, encode_resident(entry.algorithm, entry.label, None))
            try:
                await self._abandon(key_id, unfinished, leftover=False)
            except (ActorError, KeystoreError):
                self._version = None  # the next request's token check finishes the delete
                raise
            detail = {"key_id": key_id, "algorithm": entry.algorithm}
            self._ctx.log.info("HSM-resident key destroyed", extra=detail)
            await self._store.audit("keystore.hsm-key-deleted", **detail)

    async def _create_in_hsm(self, key_id: str, algorithm: str) -> bytes:
        spec = resident_algorithm(algorithm)
        label = resident_label(key_id)
        await self._refuse_existing(key_id)
        health = await self._hsm(HsmHealth())
        # Ask the mechanism list: some tokens (SoftHSM among them) generate a key pair
        # of a mechanism they do not offer, then refuse to sign with it.
        lacking = spec.lacking([*health.get("missing_required", ()), *health.get("missing_optional", ())])
        if lacking:
            raise ActorError("hsm-unsupported",
                             f"the token lacks {', '.join(lacking)}, so it cannot keep an {algorithm} key "
                             f"(key {key_id!r} not created)")
        if await self._hsm(HsmHasKey(label)):
            raise KeystoreError(
                "keystore-exists",
                f"the token already holds a key labelled {label!r} that no keystore record names (a store "
                "restored from an older backup, or another node on this token?); the keystore never destroys "
                "a key it did not record: check it, remove it with the HSM's tools or pick another key id")
        entry = ResidentRecord(algorithm, label, None)
        done = False
        try:
            # Shielded: a put cut off at its deadline could land in the store after the next
            # request's token check had looked, leaving a pending record nobody cleans.
            with trio.CancelScope(shield=True):
                await self._store.kv_put(RECORDS_NS, key_id, encode_resident(algorithm, label, None))
            try:
                public = spec.check_public(await self._hsm(HsmGenerateKey(label, algorithm, extractable=False)))
            except (ActorError, KeystoreError) as exc:
                with trio.CancelScope(shield=True):  # undo now: the caller sees the failure, not a half key
                    try:
                        if isinstance(exc, ActorError) and exc.code == "hsm-key-exists":
                            await self._store.kv_delete(RECORDS_NS, key_id)  # not ours: leave the key alone
                        else:
                            await self._abandon(key_id, entry, leftover=False)
                        done = True
                    except (ActorError, KeystoreError) as undo:
                        self._ctx.log.warning("a failed create is cleaned up later",
                                              extra={"key_id": key_id, "code": undo.code})
                raise exc from None
            with trio.CancelScope(shield=True):  # the key exists: record it whatever the caller's deadline
                await self._store.kv_put(RECORDS_NS, key_id, encode_resident(algorithm, label, public))
                done = True
                detail = {"key_id": key_id, "algorithm": algorithm}
                self._ctx.log.info("HSM-resident key created", extra=detail)
                await self._store.audit("keystore.hsm-key-created", **detail)
            return public
        finally:
            if not done:
                # Cancelled, or the clean-up itself failed: the next request's token check
                # destroys the key (if it was made) and drops the record.
                self._version = None

    async def _sign(self, key_id: str, data: Any) -> bytes:
        entry = await self._resident(key_id)
        signature = await self._sign_with(key_id, entry, data)
        self._signers[key_id] = entry
        return signature

    async def _sign_with(self, key_id: str, entry: ResidentRecord, data: Any) -> bytes:
        if not isinstance(data, (bytes, bytearray, memoryview)):
            raise ActorError("bad-request", f"KeySign signs bytes, not {type(data).__name__}")
        data = bytes(data)
        resident_algorithm(entry.algorithm).check_sign_input(data)
        return await self._with_token_key(key_id, entry, HsmSign(entry.label, data))

    async def _public(self, key_id: str) -> bytes:
        entry = await self._resident(key_id)
        public = await self._with_token_key(key_id, entry, HsmPublicKey(entry.label))
        if public != entry.public:
            raise KeystoreError("keystore-corrupt",
                                f"the token's key {entry.label!r} is not the one key {key_id!r} was created as "
                                "(its public key differs)")
        return public

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

    async def _refuse_resident(self, key_id: str) -> None:
        value = await self._store.kv_get(RECORDS_NS, key_id)
        if value is not None and isinstance(_entry_or_none(key_id, value), ResidentRecord):
            raise KeystoreError("keystore-exists",
                                f"key {key_id!r} is a key in the HSM: delete it before putting a secret there")

    async def _resident(self, key_id: str) -> ResidentRecord:
        check_key_id(key_id)
        value = await self._store.kv_get(RECORDS_NS, key_id)
        if value is None:
            raise KeystoreError("keystore-no-key", f"no key {key_id!r} in the keystore")
        entry = decode_entry(key_id, value)
        if isinstance(entry, Record):
            raise KeystoreError("keystore-bad-kind",
                                f"key {key_id!r} is a wrapped {entry.kind}, not a key in the HSM")
        if entry.pending:  # the token check removes these before serving; not reached in practice
            raise KeystoreError("keystore-no-key", f"key {key_id!r} is being created or deleted")
        return entry

    async def _with_token_key(self, key_id: str, entry: ResidentRecord, request: Any) -> Any:
        try:
            return await self._hsm(request)
        except ActorError as exc:
            if exc.code == "hsm-no-key":  # the worker tells a vanished token apart (hsm-unavailable)
                raise KeystoreError("keystore-corrupt",
                                    f"key {key_id!r} is recorded but the token has no {entry.label!r} "
                                    "(removed outside the node, or another token)") from None
            raise

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


def _entry_or_none(key_id: str, value: bytes) -> Record | ResidentRecord | None:
    try:
        return decode_entry(key_id, value)
    except KeystoreError:
        return None


def _described(items: list[tuple[str, bytes]]) -> list[tuple[str, str | None, int | None]]:
    """(key id, kind, KEK version) of stored records: ``hsm:<algorithm>`` and None for a
    key in the HSM; None, None for a corrupt one, which is still shown so that an operator
    can find and delete it."""
    described: list[tuple[str, str | None, int | None]] = []
    for key_id, value in items:
        match _entry_or_none(key_id, value):
            case Record(kind, kek, _):
                described.append((key_id, kind, kek))
            case ResidentRecord() as entry:
                described.append((key_id, entry.kind, None))
            case _:
                described.append((key_id, None, None))
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
        """(key id, kind, KEK version) of every key; kind and version are None for a corrupt
        record; a key in the HSM is (key id, "hsm:<algorithm>", None)."""
        return await self._ctx.ask(NAME, KeyList())

    async def create_in_hsm(self, key_id: str, algorithm: str) -> bytes:
        """Have the token generate a key pair ("ed25519", "secp256k1" or "p256") that never
        leaves it, kept under `key_id`; return its raw public key."""
        return await self._ctx.ask(NAME, KeyCreateInHsm(key_id, algorithm))

    async def sign(self, key_id: str, data: bytes) -> bytes:
        """Sign with a key in the HSM: Ed25519 over `data`; ECDSA over the 32-byte digest
        `data` (r||s, low S)."""
        return await self._ctx.ask(NAME, KeySign(key_id, data))

    async def public_key(self, key_id: str) -> bytes:
        """The raw public key of a key in the HSM."""
        return await self._ctx.ask(NAME, KeyPublic(key_id))

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
