"""The one exception type of the identity-log core, and its codes.

Every failure carries a short stable ``code`` that docs/identity.md lists ("Error codes"), so a
caller can branch on it, an operator can look it up, and a test can assert the exact reason an
event was refused. Messages name public data only (CIDs, sequence numbers, field names): there
is nothing secret in an identity log, but messages stay short because they may end up in logs
of nodes that received hostile input.
"""

from __future__ import annotations

__all__ = ["CODES", "IdentityError"]

# code -> one-line meaning. Ordered roughly as the checks run (docs/identity.md, "Verification").
CODES: dict[str, str] = {
    "too-large": "an event, receipt or log exceeds a size or count limit",
    "malformed": "not strict DAG-CBOR, or a field is missing, unknown, of the wrong type or out of range",
    "unsupported-version": "the v field names a version this node does not implement",
    "weak-key": "an Ed25519 public key is not a canonical encoding of a point of large order",
    "bad-signature": "the signature does not verify under the key that must have made it",
    "no-inception": "a log is empty or does not start with an inception event",
    "identity-mismatch": "an event (or a log) belongs to another identity than the one expected",
    "after-revocation": "an event follows a revocation; a revoked identity never changes again",
    "bad-sequence": "seq is not the sequence number that follows the previous event",
    "broken-chain": "prev is not the CID of the previous event",
    "not-pre-committed": "the signing key does not hash to the previous event's next commitment",
    "key-reuse": "a signing key or next commitment repeats a key this identity already used",
    "duplicity": "two different valid events share one sequence number of one identity",
    "unknown-identity": "no verified log of this identity is known",
    "revoked": "the identity is revoked and must not be used",
}


class IdentityError(ValueError):
    """An identity event, receipt or log was refused; ``code`` says why (see `CODES`)."""

    def __init__(self, code: str, message: str) -> None:
        if code not in CODES:  # a typo here would hand callers a code the docs do not list
            raise AssertionError(f"unknown identity error code {code!r}")
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message
