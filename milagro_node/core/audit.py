"""Hash-chained audit log — a sans-IO protocol core.

Layer 1 (protocol cores): pure functions, no I/O. The SQLite store adapter
(`milagro_node.adapters.sqlite_store`) calls `chain_entry` to append and `verify_chain` to
check what it reads back; actors reach the log only through the store.

Each entry commits to the previous one: ``hash = sha256(DAG-CBOR({seq, time, actor, action,
detail, prev_hash}))`` as lowercase hex. DAG-CBOR (``dag_cbor.encode``) is the canonical
encoding: map keys are sorted by the DAG-CBOR rule, integers are minimal and floats are always
64-bit, so one entry has exactly one encoding and the hash is reproducible in any language
with a DAG-CBOR library. It also keeps bytes values as bytes (canonical JSON could not).
Details without floats are written and read by `ipld`'s plain codec, which gives the same
bytes at a tenth of `dag_cbor`'s cost (a login writes one entry); `dag_cbor` takes the rest.
The first entry has ``seq == 1`` and ``prev_hash == GENESIS``.

The chain detects accidental corruption and naive edits (an altered field, a removed or
reordered row, a cut-off tail when the caller keeps the head hash apart from the rows). It is
not signed: someone able to rewrite every row *and* the head can forge a consistent chain.

**Details must never contain secrets** (keys, shares, PINs, tokens, plaintexts): the log is
kept unencrypted, shown to operators and may be exported. Record identifiers and CIDs instead.
"""

from __future__ import annotations

import hashlib
import math
import struct
from collections.abc import Iterable
from typing import Any

import attrs
import dag_cbor

from milagro_node.core import ipld

__all__ = [
    "GENESIS", "AuditEntry", "AuditVerdict", "ChainTip", "chain_entry", "decode_detail", "encode_detail",
    "entry_hash", "verify_chain",
]

GENESIS = "0" * 64  # prev_hash of the first entry


@attrs.frozen
class AuditEntry:
    seq: int
    time: float
    actor: str
    action: str
    detail: dict[str, Any]
    prev_hash: str
    hash: str


@attrs.frozen
class ChainTip:
    """What the next entry links to: the last entry's seq and hash (its detail unread)."""

    seq: int
    hash: str


@attrs.frozen
class AuditVerdict:
    ok: bool
    checked: int  # entries whose hash and link were checked and found good
    first_bad_seq: int | None = None
    reason: str | None = None


def encode_detail(detail: dict[str, Any]) -> bytes:
    """The canonical DAG-CBOR of ``detail``; ValueError if it has none."""
    try:
        return ipld.encode(detail)
    except ipld.IpldError:
        pass  # a float, which ipld refuses and the log allows; or not encodable at all
    try:
        return dag_cbor.encode(detail)
    except Exception as exc:  # dag_cbor's errors, UnicodeEncodeError (a lone surrogate)
        raise ValueError(f"detail is not DAG-CBOR encodable: {exc}") from exc


def decode_detail(data: bytes) -> Any:
    """The value of a stored detail; ValueError (from dag_cbor) if it is not canonical DAG-CBOR."""
    try:
        return ipld.decode(data)
    except ipld.IpldError:
        pass  # a float, or invalid: dag_cbor decides, and names the fault
    try:
        return dag_cbor.decode(data)
    except Exception as exc:  # dag_cbor raises several error types for bad input
        raise ValueError(str(exc)) from exc


def entry_hash(
    seq: int, time: float, actor: str, action: str, detail: dict[str, Any], prev_hash: str
) -> str:
    """sha256 hex of the canonical DAG-CBOR encoding of an entry's fields."""
    return _digest(seq, time, actor, action, encode_detail(detail), prev_hash)


def _digest(seq: int, time: float, actor: str, action: str, detail: bytes, prev_hash: str) -> str:
    # The map {seq, time, actor, action, detail, prev_hash}, written out in DAG-CBOR key order
    # (shorter keys first, then bytewise) so the detail is encoded once; `time` is the one
    # float, always 64-bit in DAG-CBOR. The tests check this against dag_cbor.encode.
    if type(time) is not float or not math.isfinite(time):
        raise ValueError(f"time must be a finite float, not {time!r}")
    payload = b"".join((
        b"\xa6",
        b"\x63seq", ipld.encode(seq),
        b"\x64time\xfb", struct.pack(">d", time),
        b"\x65actor", ipld.encode(actor),
        b"\x66action", ipld.encode(action),
        b"\x66detail", detail,
        b"\x69prev_hash", ipld.encode(prev_hash),
    ))
    return hashlib.sha256(payload).hexdigest()


def chain_entry(
    prev: AuditEntry | ChainTip | None, time: float, actor: str, action: str, detail: dict[str, Any]
) -> AuditEntry:
    """Make the entry that follows ``prev`` (or the first entry if ``prev`` is None).

    ``detail`` must be a DAG-CBOR-encodable dict with str keys (no NaN/infinity, no sets,
    no secrets); otherwise ValueError. The entry keeps its own copy of ``detail``.
    """
    if not isinstance(actor, str) or not isinstance(action, str):
        raise ValueError("actor and action must be str")
    if not isinstance(detail, dict):
        raise ValueError(f"detail must be a dict, not {type(detail).__name__}")
    # Round-trip through DAG-CBOR: this validates the dict and gives the entry a private
    # copy holding exactly what a reader will decode later, so hashes always reproduce.
    encoded = encode_detail(detail)
    detail = decode_detail(encoded)
    # int and float encode differently in CBOR; store and hash time as a float always.
    time = float(time)
    seq = 1 if prev is None else prev.seq + 1
    prev_hash = GENESIS if prev is None else prev.hash
    digest = _digest(seq, time, actor, action, encoded, prev_hash)
    return AuditEntry(seq, time, actor, action, detail, prev_hash, digest)


def verify_chain(entries: Iterable[AuditEntry], expected_head: str | None) -> AuditVerdict:
    """Check a whole chain, from seq 1, in order; stop at the first fault.

    Faults: an entry whose fields no longer match its hash ("altered"), a prev_hash that is
    not the previous entry's hash ("broken link"), a missing or repeated seq ("gap"), and —
    when ``expected_head`` is given — a last hash other than the head kept elsewhere
    ("head mismatch", i.e. the tail was cut off or rewritten; for an empty chain the head
    must be GENESIS). ``entries`` is consumed lazily, so a long log need not fit in memory.
    """
    prev_hash = GENESIS
    expected_seq = 1
    checked = 0
    for entry in entries:
        if entry.seq != expected_seq:
            reason = f"gap: expected seq {expected_seq}, found {entry.seq}"
            return AuditVerdict(False, checked, expected_seq, reason)
        try:
            recomputed = entry_hash(
                entry.seq, entry.time, entry.actor, entry.action, entry.detail, entry.prev_hash
            )
        except (TypeError, ValueError):
            recomputed = None  # a field of the wrong type cannot be what was hashed
        if recomputed != entry.hash:
            reason = f"altered: entry {entry.seq} does not match its hash"
            return AuditVerdict(False, checked, entry.seq, reason)
        if entry.prev_hash != prev_hash:
            reason = f"broken link: entry {entry.seq} does not follow entry {entry.seq - 1}"
            return AuditVerdict(False, checked, entry.seq, reason)
        prev_hash = entry.hash
        expected_seq += 1
        checked += 1
    if expected_head is not None and prev_hash != expected_head:
        reason = (
            f"head mismatch: log ends at seq {expected_seq - 1} but the recorded head "
            "differs (tail truncated or rewritten)"
        )
        return AuditVerdict(False, checked, expected_seq, reason)
    return AuditVerdict(True, checked)
