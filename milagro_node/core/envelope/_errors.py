"""The envelope's one exception type and its codes (documented in docs/envelope.md).

Every failure of `open_envelope` and `inspect_envelope` is an `EnvelopeError` whose ``code``
names the rule that failed; the codes are listed here once, in processing order, and the
spec's error table is written from this list. Messages are built from fixed text and
public numbers (sizes, limits, field names): never from plaintext, keys or shared secrets.
"""

from __future__ import annotations

import enum

__all__ = ["EnvelopeError", "ErrorCode"]


class ErrorCode(enum.StrEnum):
    """Why an envelope was refused. A `str`, so ``err.code == "bad-signature"`` works."""

    TOO_LARGE = "too-large"  # the envelope, its payload or a field exceeds a `Limits` bound
    MALFORMED = "malformed"  # not a well-formed v1 envelope (truncated, wrong types, ...)
    NON_CANONICAL = "non-canonical"  # well-formed, but not the one canonical DAG-CBOR encoding
    TOO_MANY_RECIPIENTS = "too-many-recipients"
    UNKNOWN_VERSION = "unknown-version"
    UNKNOWN_SUITE = "unknown-suite"
    BAD_TIME_WINDOW = "bad-time-window"  # expires <= created, or a lifetime over the limit
    UNKNOWN_SENDER = "unknown-sender"  # the resolver does not know the sender's identity
    BAD_SIGNATURE = "bad-signature"
    NOT_YET_VALID = "not-yet-valid"
    EXPIRED = "expired"
    REPLAYED = "replayed"
    NOT_A_RECIPIENT = "not-a-recipient"
    UNWRAP_FAILED = "unwrap-failed"  # the content key does not unwrap for this reader
    DECRYPT_FAILED = "decrypt-failed"  # the payload does not decrypt under the content key


class EnvelopeError(Exception):
    """An envelope was refused (or cannot be made); ``code`` says why, ``message`` details it."""

    def __init__(self, code: ErrorCode | str, message: str) -> None:
        self.code = ErrorCode(code)
        self.message = message
        super().__init__(self.code, message)

    def __str__(self) -> str:
        return f"{self.code}: {self.message}"

    def __repr__(self) -> str:
        return f"EnvelopeError({str(self.code)!r}, {self.message!r})"
