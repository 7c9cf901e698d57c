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

A key generated inside the HSM (*resident*: its private half never leaves the
token, so nothing is wrapped) has a record of its own in the same namespace,
so that one key id names one key of either sort::

    {"v": 1, "resident": "ed25519", "label": "milagro-key-node-identity", "public": <32 bytes>}

``label`` is the token label of the key pair, always `resident_label(key_id)`
(a record naming another label is corrupt); ``public`` is its raw public key,
or None while the key is being created or deleted (the record is written
before the token key is made and dropped after it is destroyed, so the
keystore knows every token key it made: see the actor's theory of operation).
KEK rotation passes resident records by.

Which KEK labels may be destroyed is decided here (`plan_kek`), from facts the
caller gathers: the store's current version, which of the neighbouring labels
the token holds, and which versions the stored records name. The actor's
module docstring tells the crash states of a rotation this rule covers.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Iterable
from typing import Any

import attrs
import dag_cbor

__all__ = [
    "DOMAIN", "KINDS", "MAX_LABEL", "META_KEY", "META_NS", "RECORDS_NS", "RESIDENT_ALGORITHMS", "RESIDENT_PREFIX",
    "KekFacts", "KekPlan", "KeystoreError", "Record", "ResidentAlgorithm", "ResidentRecord", "RotationPlan",
    "SecretKind", "aad", "check_key_id", "decode_entry", "decode_kek_version", "decode_record",
    "encode_kek_version", "encode_record", "encode_resident", "kek_label", "kek_versions_in_use", "plan_kek",
    "probe_versions", "resident_algorithm", "resident_label", "secret_kind",
]

DOMAIN = "milagro-keystore-v1"
RECORD_VERSION = 1
RECORDS_NS = "keystore"
META_NS = "keystore-meta"
META_KEY = "kek"
MAX_KEY_ID = 128
RESIDENT_PREFIX = "milagro-key-"
# Token labels of resident keys stay within 40 bytes: the shortest object label among the
# HSMs docs/hsm.md shows (YubiHSM 2); PKCS#11 itself sets no limit, its tokens do.
MAX_LABEL = 40
_RESIDENT_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._/-]*")


class KeystoreError(Exception):
    """`code`: keystore-no-key, keystore-bad-kind, keystore-bad-size, keystore-corrupt,
    keystore-exists, keystore-no-kek, keystore-bad-key-id. Messages name key ids,
    kinds, algorithms and token labels, never secret values."""

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
    """Parse a stored record of a wrapped secret; ``keystore-corrupt`` (naming `key_id`)
    if it is not a keystore record, ``keystore-bad-kind`` if it is a resident key's."""
    entry = decode_entry(key_id, data)
    if isinstance(entry, ResidentRecord):
        raise KeystoreError("keystore-bad-kind",
                            f"key {key_id!r} is an HSM-resident {entry.algorithm} key: its private key "
                            "never leaves the token (sign with it, or ask for its public key)")
    return entry


def decode_entry(key_id: str, data: bytes) -> Record | ResidentRecord:
    """Parse any stored record: a wrapped secret's or a resident key's.

    ``keystore-corrupt`` (naming `key_id`) if it is neither, including a resident
    record that names another token label than its key id's or a public key of
    the wrong size.
    """
    try:
        fields = dag_cbor.decode(bytes(data))
    except Exception:  # dag_cbor raises several error types for bad input
        fields = None
    if isinstance(fields, dict) and set(fields) == {"v", "kind", "kek", "wrapped"}:
        if (fields["v"] == RECORD_VERSION and fields["kind"] in KINDS and type(fields["kek"]) is int
                and fields["kek"] >= 1 and isinstance(fields["wrapped"], bytes)):
            return Record(fields["kind"], fields["kek"], fields["wrapped"])
    elif isinstance(fields, dict) and set(fields) == {"v", "resident", "label", "public"}:
        algorithm, public = fields["resident"], fields["public"]
        if (fields["v"] == RECORD_VERSION and algorithm in RESIDENT_ALGORITHMS
                and fields["label"] == _label_or_none(key_id)
                and (public is None or (isinstance(public, bytes)
                                        and len(public) == RESIDENT_ALGORITHMS[algorithm].public_size))):
            return ResidentRecord(algorithm, fields["label"], public)
    raise KeystoreError("keystore-corrupt", f"the stored record of key {key_id!r} is not a keystore record")


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
            entry = decode_entry(key_id, value)
        except KeystoreError:
            continue
        if isinstance(entry, Record):  # a resident key is under no KEK
            versions.add(entry.kek)
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
    """Re-wrap every record from its KEK to KEK `new`, then commit in one store batch.

    Resident keys' records are not part of it: nothing of theirs is wrapped, and the
    batch leaves them as they are.
    """

    old: int
    records: tuple[tuple[str, Record], ...]

    @classmethod
    def from_store(cls, current: int, items: Iterable[tuple[str, bytes]]) -> RotationPlan:
        """Refuses (``keystore-corrupt``) a record it could not re-wrap: a rotation never drops one."""
        entries = ((key_id, decode_entry(key_id, value)) for key_id, value in items)
        records = tuple((key_id, entry) for key_id, entry in entries if isinstance(entry, Record))
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


# --- keys that live in the HSM ------------------------------------------------------


@attrs.frozen
class ResidentAlgorithm:
    """A key pair the keystore can have the token generate and keep.

    `mechanisms`: PKCS#11 mechanisms (python-pkcs11 names) the token must list to
    generate the key and sign with it. `digest_size`: ECDSA signs a digest of this
    many bytes; None for Ed25519, which signs the data itself.
    """

    name: str
    mechanisms: tuple[str, ...]
    public_size: int
    digest_size: int | None

    @property
    def kind(self) -> str:
        """How `KeyList` shows a key of this algorithm."""
        return f"hsm:{self.name}"

    def lacking(self, missing: Iterable[str]) -> list[str]:
        """Which of this algorithm's mechanisms are among a token's `missing` ones."""
        missing = set(missing)
        return [m for m in self.mechanisms if m in missing]

    def check_public(self, public: Any) -> bytes:
        if not isinstance(public, bytes) or len(public) != self.public_size:
            size = len(public) if isinstance(public, bytes) else type(public).__name__
            raise KeystoreError("keystore-corrupt",
                                f"the token returned a public key of {size} bytes for an {self.name} key, "
                                f"not {self.public_size}")
        return public

    def check_sign_input(self, data: bytes) -> None:
        if self.digest_size is not None and len(data) != self.digest_size:
            raise KeystoreError("keystore-bad-size",
                                f"an {self.name} key signs a {self.digest_size}-byte digest, not {len(data)} bytes")


RESIDENT_ALGORITHMS: dict[str, ResidentAlgorithm] = {a.name: a for a in (
    ResidentAlgorithm("ed25519", ("EC_EDWARDS_KEY_PAIR_GEN", "EDDSA"), 32, None),
    ResidentAlgorithm("secp256k1", ("EC_KEY_PAIR_GEN", "ECDSA"), 65, 32),  # uncompressed point
    ResidentAlgorithm("p256", ("EC_KEY_PAIR_GEN", "ECDSA"), 65, 32),
)}


def resident_algorithm(name: Any) -> ResidentAlgorithm:
    try:
        return RESIDENT_ALGORITHMS[name]
    except (KeyError, TypeError):
        raise KeystoreError("keystore-bad-kind",
                            f"unknown HSM key algorithm {name!r} (one of {', '.join(RESIDENT_ALGORITHMS)})") from None


def resident_label(key_id: Any) -> str:
    """The token label of the resident key `key_id`: ``milagro-key-<key_id>``.

    The label must suit every token, so a resident key's id is stricter than a
    wrapped secret's: ASCII letters, digits and ``. _ / -``, starting with a
    letter or digit, at most ``MAX_LABEL - len(RESIDENT_PREFIX)`` (28) characters.
    """
    label = _label_or_none(check_key_id(key_id))
    if label is None:
        raise KeystoreError(
            "keystore-bad-key-id",
            f"key id {key_id[:40]!r} cannot name a key in the HSM: its token label {RESIDENT_PREFIX}<key id> takes "
            f"ASCII letters, digits and . _ / - (starting with a letter or digit), at most "
            f"{MAX_LABEL - len(RESIDENT_PREFIX)} characters")
    return label


def _label_or_none(key_id: str) -> str | None:
    if not isinstance(key_id, str) or not key_id.isascii() or not _RESIDENT_ID.fullmatch(key_id):
        return None
    label = RESIDENT_PREFIX + key_id
    return label if len(label) <= MAX_LABEL else None


@attrs.frozen
class ResidentRecord:
    """A key pair generated in the token: its algorithm, token label and raw public key.

    `public` is None while the key is being created or deleted ("unfinished"): a
    start-up finding such a record destroys whatever the token holds under
    `label` and drops the record.
    """

    algorithm: str
    label: str
    public: bytes | None

    @property
    def kind(self) -> str:
        return RESIDENT_ALGORITHMS[self.algorithm].kind

    @property
    def pending(self) -> bool:
        return self.public is None


def encode_resident(algorithm: str, label: str, public: bytes | None) -> bytes:
    return dag_cbor.encode({"v": RECORD_VERSION, "resident": algorithm, "label": label,
                            "public": None if public is None else bytes(public)})
