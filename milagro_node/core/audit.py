"""Hash-chained audit log — a sans-IO protocol core.

Layer 1 (protocol cores): pure functions, no I/O. The SQLite store adapter
(`milagro_node.adapters.sqlite_store`) calls `chain_entry` to append and `verify_chain` to
check what it reads back; actors reach the log only through the store.

Each entry commits to the previous one: ``hash = sha256(DAG-CBOR({seq, time, actor, action,
detail, prev_hash}))`` as lowercase hex. DAG-CBOR (``dag_cbor.encode``) is the canonical
encoding: map keys are sorted by the DAG-CBOR rule, integers are minimal and floats are always
64-bit, so one entry has exactly one encoding and the hash is reproducible in any language
with a DAG-CBOR library. It also keeps bytes values as bytes (canonical JSON could not).
The first entry has ``seq == 1`` and ``prev_hash == GENESIS``.

The chain detects accidental corruption and naive edits (an altered field, a removed or
reordered row, a cut-off tail when the caller keeps the head hash apart from the rows). It is
not signed: someone able to rewrite every row *and* the head can forge a consistent chain.

**Details must never contain secrets** (keys, shares, PINs, tokens, plaintexts): the log is
kept unencrypted, shown to operators and may be exported. Record identifiers and CIDs instead.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from typing import Any

import attrs
import dag_cbor
from dag_cbor.encoding import DAGCBOREncodingError

__all__ = ["GENESIS", "AuditEntry", "AuditVerdict", "chain_entry", "entry_hash", "verify_chain"]

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
class AuditVerdict:
    ok: bool
    checked: int  # entries whose hash and link were checked and found good
    first_bad_seq: int | None = None
    reason: str | None = None


def entry_hash(
    seq: int, time: float, actor: str, action: str, detail: dict[str, Any], prev_hash: str
) -> str:
    """sha256 hex of the canonical DAG-CBOR encoding of an entry's fields."""
    payload = {
        "seq": seq,
        "time": time,
        "actor": actor,
        "action": action,
        "detail": detail,
        "prev_hash": prev_hash,
    }
    return hashlib.sha256(dag_cbor.encode(payload)).hexdigest()


def chain_entry(
    prev: AuditEntry | None, time: float, actor: str, action: str, detail: dict[str, Any]
) -> AuditEntry:
    """Make the entry that follows ``prev`` (or the first entry if ``prev`` is None).

    ``detail`` must be a DAG-CBOR-encodable dict with str keys (no NaN/infinity, no sets,
    no secrets); otherwise ValueError. The entry keeps its own copy of ``detail``.
    """
    if not isinstance(actor, str) or not isinstance(action, str):
        raise ValueError("actor and action must be str")
    if not isinstance(detail, dict):
        raise ValueError(f"detail must be a dict, not {type(detail).__name__}")
    try:
        # Round-trip through DAG-CBOR: this validates the dict and gives the entry a private
        # copy holding exactly what a reader will decode later, so hashes always reproduce.
        detail = dag_cbor.decode(dag_cbor.encode(detail))
    except DAGCBOREncodingError as exc:
        raise ValueError(f"detail is not DAG-CBOR encodable: {exc}") from exc
    # int and float encode differently in CBOR; store and hash time as a float always.
    time = float(time)
    seq = 1 if prev is None else prev.seq + 1
    prev_hash = GENESIS if prev is None else prev.hash
    digest = entry_hash(seq, time, actor, action, detail, prev_hash)
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
        except (TypeError, ValueError, DAGCBOREncodingError):
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
