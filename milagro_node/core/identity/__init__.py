"""Identity logs: the federation's decentralized PKI — a sans-IO protocol core.

Layer 1 (protocol cores): pure functions and one small state machine (`LogBook`); no clocks,
no I/O. The pki-resolver actor feeds it events and receipts from gossip and request/response,
the envelope core asks it for a sender's or recipient's keys (`IdentityState`), and
`milagro-node identity` makes events with keys that live in the HSM (two-step signing).
The specification, with field tables and error codes, is docs/identity.md.

Theory of operation
-------------------
There is no certificate authority. An identity *is* the CID of its first event, so it is
self-certifying: whoever holds an identity string can check that a log belongs to it, and only
the holder of the inception's signing key could have made that log.

A log is a hash-linked chain of events (DAG-CBOR blocks): one **inception**, any number of
**rotations**, and at most one **revocation**, which ends it. Every inception and rotation
carries the identity's current Ed25519 signing key, its encryption keys (X25519, optionally
ML-KEM-768), roles, libp2p peer id and addresses, and ``next``: the SHA-256 of the *next*
signing key, which stays secret and unused until then (KERI-style **pre-rotation**).

Who signs what — the rules this package enforces:

- an **inception** is signed by its own signing key;
- a **rotation** is signed by the new key alone, and that key must hash to the previous
  event's ``next``. The old key does not sign: it is the key in daily use, the one a thief is
  most likely to hold, so its signature would add nothing against theft, and requiring it
  would make recovery impossible when it is lost;
- a **revocation** is signed by the pre-committed next key, not by the current key: a stolen
  current key can then neither take the identity over nor kill it, while the owner can still
  do either. (The current key's jobs are envelopes and receipts, not control of the log.)
- after a revocation nothing is valid; a key is never used twice in one log.

Two *different* valid events at one sequence number are **duplicity**: only the key entitled to
sign could have made both, so the controller (or a thief of its next key) forked the log. It is
reported as a value (`Duplicity`, with both events as evidence) and the identity is never
trusted again. Other identities **receipt** events (co-sign their CIDs), so federation members
witness each other's histories.

Processing layers: `parse_event` checks one event by itself (bytes, schema, limits, its own
signature); `_chain.extend` checks its place in a log (Rule 1: all chain rules in one file);
`verify_log` walks a whole log; `LogBook` assembles logs from events arriving in any order.
"""

from ._book import Accepted, AlreadyKnown, Duplicity, LogBook, Outcome, Pending, Rejected
from ._chain import MAX_LOG_EVENTS, IdentityState, verify_log
from ._drafts import (
    EventDraft,
    make_inception,
    make_revocation,
    make_rotation,
    prepare_inception,
    prepare_revocation,
    prepare_rotation,
)
from ._errors import CODES, IdentityError
from ._export import MAX_EXPORT_BYTES, export_log, import_log
from ._events import (
    EVENT_DOMAIN,
    MAX_ADDR_CHARS,
    MAX_ADDRS,
    MAX_EVENT_BYTES,
    MAX_ROLES,
    ROLES,
    Event,
    parse_event,
)
from ._keys import key_digest
from ._receipts import (
    MAX_RECEIPT_BYTES,
    RECEIPT_DOMAIN,
    Receipt,
    ReceiptDraft,
    make_receipt,
    parse_receipt,
    prepare_receipt,
    verify_receipt,
)

__all__ = [
    "MAX_EXPORT_BYTES",
    "export_log",
    "import_log",
    "CODES",
    "EVENT_DOMAIN",
    "MAX_ADDRS",
    "MAX_ADDR_CHARS",
    "MAX_EVENT_BYTES",
    "MAX_LOG_EVENTS",
    "MAX_RECEIPT_BYTES",
    "MAX_ROLES",
    "RECEIPT_DOMAIN",
    "ROLES",
    "Accepted",
    "AlreadyKnown",
    "Duplicity",
    "Event",
    "EventDraft",
    "IdentityError",
    "IdentityState",
    "LogBook",
    "Outcome",
    "Pending",
    "Receipt",
    "ReceiptDraft",
    "Rejected",
    "key_digest",
    "make_inception",
    "make_receipt",
    "make_revocation",
    "make_rotation",
    "parse_event",
    "parse_receipt",
    "prepare_inception",
    "prepare_receipt",
    "prepare_revocation",
    "prepare_rotation",
    "verify_log",
    "verify_receipt",
]
