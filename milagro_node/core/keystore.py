"""The keystore's record format and rules — a sans-IO protocol core.

Layer 1 (protocol cores): pure functions and small frozen values, no trio, no
PKCS#11, no SQLite. The "keystore" actor (`actors.keystore`) and the sync
`bootstrap_kek` that ``milagro-node init`` runs call it; they do the I/O.

What is stored
--------------
Every secret a node keeps rests in the store (kv namespace ``keystore``, key =
key id) as one DAG-CBOR *record*::

    {"v": 1, "kind": "dta-master-share", "kek": 3, "wrapped": <nonce||ct||tag>}

``wrapped`` is AES-256-GCM under the token key ``milagro-kek-3`` (the KEK;
sensitive, non-extractable, it never leaves the HSM) with associated data
`aad(key_id, kind, kek)`: a record copied to another key id, relabelled as
another kind or pointed at another KEK version no longer authenticates. The
KEK version the records are wrapped under is kept beside them (namespace
``keystore-meta``, key ``kek``) and changes only in the same transaction that
rewrites every record (see `RotationPlan`).

Which KEK labels may be destroyed is decided here (`plan_kek`), from facts the
caller gathers: the store's current version, which of the neighbouring labels
the token holds, and which versions the stored records name. The actor's
module docstring tells the crash states of a rotation this rule covers.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable
from typing import Any

import attrs
import dag_cbor

__all__ = [
    "DOMAIN", "KINDS", "META_KEY", "META_NS", "RECORDS_NS", "KekFacts", "KekPlan", "KeystoreError", "Record",
    "RotationPlan", "SecretKind", "aad", "check_key_id", "decode_kek_version", "decode_record",
    "encode_kek_version", "encode_record", "kek_label", "kek_versions_in_use", "plan_kek", "probe_versions",
    "secret_kind",
]

DOMAIN = "milagro-keystore-v1"
RECORD_VERSION = 1
RECORDS_NS = "keystore"
META_NS = "keystore-meta"
META_KEY = "kek"
MAX_KEY_ID = 128


class KeystoreError(Exception):
    """`code`: keystore-no-key, keystore-bad-kind, keystore-bad-size, keystore-corrupt,
    keystore-exists, keystore-no-kek, keystore-bad-key-id. Messages name key ids and
    kinds, never secret values."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message


# --- kinds of secret ----------------------------------------------------------------


@attrs.frozen
class SecretKind:
    """A purpose a secret is kept for, and the sizes a value of it may have.

    `random_ok`: any uniformly random byte string of an allowed size is a valid
    value, so the keystore may generate it from the HSM's generator. Scalars of
    a group and curve points are not (a random 32-byte string may exceed the
    group order): their owners compute them and put them.
    """

    name: str
    sizes: Collection[int]
    description: str
    random_ok: bool = False
    default_size: int = attrs.field(default=attrs.Factory(lambda kind: min(kind.sizes), takes_self=True))

    def check_size(self, size: int) -> None:
        if size not in self.sizes:
            raise KeystoreError("keystore-bad-size", f"a {self.name} is {_describe_sizes(self.sizes)}, not {size}")


KINDS: dict[str, SecretKind] = {k.name: k for k in (
    SecretKind("identity-signing", (32,), "Ed25519 seed of the node's identity key", random_ok=True),
    SecretKind("identity-encryption", (32,), "X25519 private key of the node's identity", random_ok=True),
    SecretKind("dta-master-share", (32,), "BLS12-381 scalar: this D-TA's share of the master secret"),
    SecretKind("mpin-server-secret", (96, 192), "M-Pin server secret, a G2 point (compressed or not)"),
    SecretKind("custody-share", (32,), "secp256k1 or ed25519 scalar: a custody key share"),
    SecretKind("backup-key", (32,), "symmetric key of encrypted share backups", random_ok=True),
    SecretKind("generic", range(1, 4097), "any other secret of 1..4096 bytes", random_ok=True, default_size=32),
)}


def secret_kind(name: str) -> SecretKind:
    try:
        return KINDS[name]
    except (KeyError, TypeError):
        raise KeystoreError("keystore-bad-kind", f"unknown secret kind {name!r} (one of {', '.join(KINDS)})") from None


def _describe_sizes(sizes: Collection[int]) -> str:
    if isinstance(sizes, range):
        return f"{sizes.start}..{sizes.stop - 1} bytes"
    return " or ".join(str(s) for s in sorted(sizes)) + " bytes"


def check_key_id(key_id: Any) -> str:
    """Key ids are printable text of 1..128 characters (they appear in logs and audit)."""
    if not isinstance(key_id, str) or not 0 < len(key_id) <= MAX_KEY_ID or not key_id.isprintable():
        shown = key_id[:40] if isinstance(key_id, str) else type(key_id).__name__
        raise KeystoreError("keystore-bad-key-id",
                            f"key id {shown!r} is not printable text of 1..{MAX_KEY_ID} characters")
    return key_id


# --- KEK labels, associated data, records -------------------------------------------


def kek_label(version: int) -> str:
    """The token label of KEK `version` (versions start at 1)."""
    if not isinstance(version, int) or version < 1:
        raise ValueError(f"KEK versions start at 1, not {version!r}")
    return f"milagro-kek-{version}"


def aad(key_id: str, kind: str, kek_version: int) -> bytes:
    """Associated data of a wrapped secret: binds its key id, its purpose and its KEK."""
    return dag_cbor.encode({"domain": DOMAIN, "key_id": key_id, "kind": kind, "kek": kek_version})


@attrs.frozen
class Record:
    kind: str
    kek: int
    wrapped: bytes = attrs.field(repr=lambda w: f"<{len(w)} bytes>")

    def aad(self, key_id: str) -> bytes:
        return aad(key_id, self.kind, self.kek)

    def check_kek(self, key_id: str, current: int) -> None:
        """Every record is under the current KEK; one that is not was planted or restored."""
        if self.kek != current:
            raise KeystoreError("keystore-corrupt",
                                f"key {key_id!r} names KEK {self.kek}, but the keystore is at KEK {current}")


def encode_record(kind: str, kek_version: int, wrapped: bytes) -> bytes:
    return dag_cbor.encode({"v": RECORD_VERSION, "kind": kind, "kek": kek_version, "wrapped": bytes(wrapped)})


def decode_record(key_id: str, data: bytes) -> Record:
    """Parse a stored record; ``keystore-corrupt`` (naming `key_id`) if it is not one."""
    try:
        fields = dag_cbor.decode(bytes(data))
    except Exception:  # dag_cbor raises several error types for bad input
        fields = None
    if (not isinstance(fields, dict) or set(fields) != {"v", "kind", "kek", "wrapped"}
            or fields["v"] != RECORD_VERSION or fields["kind"] not in KINDS
            or type(fields["kek"]) is not int or fields["kek"] < 1 or not isinstance(fields["wrapped"], bytes)):
        raise KeystoreError("keystore-corrupt", f"the stored record of key {key_id!r} is not a keystore record")
    return Record(fields["kind"], fields["kek"], fields["wrapped"])


def encode_kek_version(version: int) -> bytes:
    return dag_cbor.encode({"current": version})


def decode_kek_version(data: bytes | None) -> int | None:
    if data is None:
        return None
    try:
        version = dag_cbor.decode(bytes(data))["current"]
    except Exception:
        version = None
    if type(version) is not int or version < 1:
        raise KeystoreError("keystore-corrupt", f"the stored current KEK version ({META_NS}/{META_KEY}) is unreadable")
    return version


# --- which KEKs to create and destroy -----------------------------------------------


def kek_versions_in_use(items: Iterable[tuple[str, bytes]]) -> frozenset[int]:
    """The KEK versions that stored records (key id, record bytes) name.

    An unreadable record names nothing anyone could use: it is skipped here
    (and reported as corrupt when read).
    """
    versions = set()
    for key_id, value in items:
        try:
            versions.add(decode_record(key_id, value).kek)
        except KeystoreError:
            pass
    return frozenset(versions)


def probe_versions(current: int | None) -> tuple[int, ...]:
    """The KEK versions whose presence in the token `plan_kek` needs to know."""
    if current is None:
        return (1,)
    return tuple(v for v in (current - 1, current, current + 1) if v >= 1)


@attrs.frozen
class KekFacts:
    current: int | None  # the version the store names, None on a fresh store
    in_token: frozenset[int]  # which of `probe_versions(current)` the token holds
    in_use: frozenset[int]  # versions named by stored records


@attrs.frozen
class KekPlan:
    create: int | None = None  # generate this KEK in the token
    record: int | None = None  # then store this as the current version
    destroy: tuple[int, ...] = ()  # leftovers of an interrupted rotation


def plan_kek(facts: KekFacts) -> KekPlan:
    """Decide how to bring the token and the store back to "exactly KEK `current`".

    A neighbour of the current version is destroyed only when the current KEK is
    present (so this token and this store belong together) and no record names
    it: a rotation that died before its commit left ``current + 1`` holding
    nothing; one that died after its commit left ``current - 1`` holding nothing.
    """
    v = facts.current
    if v is None:
        if facts.in_use:
            raise KeystoreError("keystore-corrupt", "the store holds wrapped keys but names no current KEK")
        # A KEK 1 without a recorded version: init died between creating and recording it. Reuse it.
        return KekPlan(create=None if 1 in facts.in_token else 1, record=1)
    if v not in facts.in_token:
        raise KeystoreError(
            "keystore-no-kek",
            f"the token has no {kek_label(v)}, which this data dir's keys are wrapped under "
            "(another token, or a data dir copied without its token?)")
    leftovers = tuple(u for u in (v - 1, v + 1) if u in facts.in_token and u not in facts.in_use)
    return KekPlan(destroy=leftovers)


@attrs.frozen
class RotationPlan:
    """Re-wrap every record from its KEK to KEK `new`, then commit in one store batch."""

    old: int
    records: tuple[tuple[str, Record], ...]

    @classmethod
    def from_store(cls, current: int, items: Iterable[tuple[str, bytes]]) -> RotationPlan:
        """Refuses (``keystore-corrupt``) a record it could not re-wrap: a rotation never drops one."""
        records = tuple((key_id, decode_record(key_id, value)) for key_id, value in items)
        for key_id, record in records:
            record.check_kek(key_id, current)
        return cls(current, records)

    @property
    def new(self) -> int:
        return self.old + 1

    def new_aad(self, key_id: str, record: Record) -> bytes:
        return aad(key_id, record.kind, self.new)

    def commit(self, rewrapped: dict[str, bytes]) -> tuple[tuple[str, str, bytes], ...]:
        """The puts of the one transaction that switches the keystore to KEK `new`."""
        missing = {key_id for key_id, _ in self.records} - set(rewrapped)
        if missing:
            raise ValueError(f"rotation would drop {len(missing)} records")
        puts = tuple((RECORDS_NS, key_id, encode_record(record.kind, self.new, rewrapped[key_id]))
                     for key_id, record in self.records)
        return (*puts, (META_NS, META_KEY, encode_kek_version(self.new)))
