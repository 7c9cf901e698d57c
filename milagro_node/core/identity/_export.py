"""The exported form of a log: one DAG-CBOR file an operator can hand to another.

``{"v": 1, "identity": "<cid>", "events": [<event bytes>, ...]}`` — what
``milagro-node identity export`` writes and ``envelope seal --to FILE`` reads.
Reading verifies the whole log and that it is the identity it claims to be.
"""

from __future__ import annotations

from ._chain import IdentityState, verify_log
from ._codec import decode_block, encode_block
from ._errors import IdentityError

EXPORT_VERSION = 1
MAX_EXPORT_BYTES = 4 * 1024 * 1024


def export_log(events: list[bytes]) -> bytes:
    state = verify_log(events)
    return encode_block({"v": EXPORT_VERSION, "identity": state.identity, "events": list(events)})


def import_log(data: bytes) -> tuple[list[bytes], IdentityState]:
    doc = decode_block(data, MAX_EXPORT_BYTES, "identity log file")
    if not isinstance(doc, dict) or doc.get("v") != EXPORT_VERSION or set(doc) != {"v", "identity", "events"}:
        raise IdentityError("malformed", "not an exported identity log (version 1)")
    events, identity = doc["events"], doc["identity"]
    if not isinstance(events, list) or not all(isinstance(e, bytes) for e in events):
        raise IdentityError("malformed", "events must be a list of event blocks")
    if not isinstance(identity, str):
        raise IdentityError("malformed", "identity must be a CID string")
    return events, verify_log(events, identity=identity)
