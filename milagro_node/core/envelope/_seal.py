"""Sealing: build the header, encrypt once, wrap per recipient, then sign — in two steps.

The signing key may live in an HSM, so sealing is split where the signature is needed
(h11 style: the core hands out bytes and takes bytes back, it never calls the HSM):

    draft = prepare_seal(payload, ...)        # everything but the signature
    signature = <sign draft.to_be_signed with Ed25519, anywhere>
    envelope = draft.finish(signature)         # the envelope's bytes

`seal(..., sign=callable)` does both for a signer that is a plain function.

Order inside `prepare_seal`: check the inputs against the same rules `open_envelope` applies
(so we never make an envelope a reader must refuse, and with the same error codes), draw the
id and a fresh content key, wrap the key to each recipient, encode the header, derive the
payload key and the key commitment from the content key, encrypt the payload with the
header as associated data, and wipe the keys. The draft holds no secret: only the header,
ciphertext and bytes to sign.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import attrs

from milagro_node.core import ed25519

from ._errors import EnvelopeError, ErrorCode
from ._format import (
    CEK_SIZE, CT_OVERHEAD, DEFAULT_LIMITS, ID_SIZE, SIG_SIZE, VERSION,
    EnvelopeHeader, Limits,
    Recipient, check_identity, check_kind, check_time_window, encode_envelope,
    encode_header, header_entries, to_be_signed, wrap_info,
)
from ._keys import Entropy, RecipientKey, SystemEntropy
from ._suites import SUITES, encrypt_payload

__all__ = ["SealDraft", "prepare_public", "prepare_seal", "seal", "seal_public"]

_SYSTEM = SystemEntropy()


@attrs.frozen
class SealDraft:
    """An envelope waiting for its signature. Holds no secret."""

    header: EnvelopeHeader
    header_bytes: bytes = attrs.field(repr=False)  # the AEAD associated data
    payload: bytes | bytearray = attrs.field(repr=False)  # ct, or body for a public envelope
    to_be_signed: bytes = attrs.field(repr=False)  # what the sender's Ed25519 key must sign
    limits: Limits = attrs.field(repr=False)
    _entries: dict[str, bytes] = attrs.field(repr=False, alias="entries")  # the header, encoded entry by entry

    def finish(self, signature: bytes, *, verify_with: bytes | None = None) -> bytes:
        """The envelope's bytes, given the Ed25519 signature of `to_be_signed`.

        ``verify_with``: the sender's public key, to check a signature that came from
        elsewhere (an HSM) before it goes out; `EnvelopeError` ``bad-signature`` if it fails.
        """
        signature = bytes(signature)
        if len(signature) != SIG_SIZE:
            raise EnvelopeError(ErrorCode.MALFORMED, f"an Ed25519 signature is {SIG_SIZE} bytes")
        if verify_with is not None and not ed25519.verify(verify_with, signature, self.to_be_signed):
            raise EnvelopeError(ErrorCode.BAD_SIGNATURE, "the signature does not verify")
        data = encode_envelope(self.header, self.payload, signature, self._entries)
        if len(data) > self.limits.max_envelope_bytes:
            raise EnvelopeError(ErrorCode.TOO_LARGE,
                                f"envelope of {len(data)} bytes exceeds {self.limits.max_envelope_bytes}")
        return data


def _check_common(payload: bytes, sender: str, kind: str, created: int, expires: int,
                  seq: int | None, limits: Limits) -> None:
    check_identity("sender", sender)
    check_kind(kind, limits)
    check_time_window(created, expires, limits)
    if seq is not None and (type(seq) is not int or seq < 0):
        raise EnvelopeError(ErrorCode.MALFORMED, "seq must be an unsigned integer")
    if len(payload) > limits.max_payload_bytes:
        raise EnvelopeError(ErrorCode.TOO_LARGE, f"payload exceeds {limits.max_payload_bytes} bytes")


def prepare_seal(
    payload: bytes,
    *,
    suite: str,
    sender: str,
    kind: str,
    recipients: Sequence[RecipientKey],
    created: int,
    expires: int,
    seq: int | None = None,
    entropy: Entropy | None = None,
    limits: Limits = DEFAULT_LIMITS,
) -> SealDraft:
    """Encrypt ``payload`` to ``recipients`` (at least one; see `prepare_public` otherwise).

    ``created``/``expires``: seconds since the epoch (the caller's clock; the core has none).
    ``entropy``: leave None (the system's); the vector generator injects a seeded one.
    Raises `EnvelopeError` with the code `open_envelope` would give, or ValueError for a
    recipient key that cannot be used (wrong size, missing ML-KEM key for mx2, low-order).
    """
    envelope_suite = SUITES.get(suite)
    if envelope_suite is None:
        raise EnvelopeError(ErrorCode.UNKNOWN_SUITE, f"suite {suite!r} is not supported")
    _check_common(payload, sender, kind, created, expires, seq, limits)
    if not recipients:
        raise EnvelopeError(ErrorCode.MALFORMED, "no recipients: use prepare_public for a public envelope")
    if len(recipients) > limits.max_recipients:
        raise EnvelopeError(ErrorCode.TOO_MANY_RECIPIENTS,
                            f"{len(recipients)} recipients exceed {limits.max_recipients}")
    kids = [r.kid for r in recipients]
    if len(set(kids)) != len(kids):
        raise EnvelopeError(ErrorCode.MALFORMED, "a kid appears twice in recipients")
    for kid in kids:
        check_identity("kid", kid)

    entropy = entropy if entropy is not None else _SYSTEM
    envelope_id = entropy.random_bytes(ID_SIZE)
    with entropy.secret_bytes(CEK_SIZE) as cek:
        wrapped = []
        for recipient in recipients:
            info = wrap_info(suite, envelope_id, sender, recipient.kid)
            enc, wck = envelope_suite.wrap(recipient, cek, info, entropy)
            wrapped.append(Recipient(recipient.kid, enc, wck))
        header = EnvelopeHeader(
            version=VERSION, suite=suite, sender=sender, created=created, expires=expires,
            id=envelope_id, kind=kind, seq=seq, recipients=tuple(wrapped),
            payload_size=len(payload) + CT_OVERHEAD,
        )
        entries = header_entries(header)
        header_bytes = encode_header(header, entries)
        ct = encrypt_payload(cek, payload, header_bytes)
    return SealDraft(header, header_bytes, ct, to_be_signed(header_bytes, ct), limits, entries)


def prepare_public(
    body: bytes,
    *,
    sender: str,
    kind: str,
    created: int,
    expires: int,
    seq: int | None = None,
    suite: str = "mx1",
    entropy: Entropy | None = None,
    limits: Limits = DEFAULT_LIMITS,
) -> SealDraft:
    """A signed-only envelope: ``body`` travels in clear (announcements, identity logs)."""
    if suite not in SUITES:
        raise EnvelopeError(ErrorCode.UNKNOWN_SUITE, f"suite {suite!r} is not supported")
    _check_common(body, sender, kind, created, expires, seq, limits)
    entropy = entropy if entropy is not None else _SYSTEM
    body = bytes(body)
    header = EnvelopeHeader(
        version=VERSION, suite=suite, sender=sender, created=created, expires=expires,
        id=entropy.random_bytes(ID_SIZE), kind=kind, seq=seq, recipients=(),
        payload_size=len(body),
    )
    entries = header_entries(header)
    header_bytes = encode_header(header, entries)
    return SealDraft(header, header_bytes, body, to_be_signed(header_bytes, body), limits, entries)


def seal(payload: bytes, *, sign: Callable[[bytes], bytes], **kwargs) -> bytes:
    """`prepare_seal` then `SealDraft.finish` with ``sign(draft.to_be_signed)``."""
    draft = prepare_seal(payload, **kwargs)
    return draft.finish(sign(draft.to_be_signed))


def seal_public(body: bytes, *, sign: Callable[[bytes], bytes], **kwargs) -> bytes:
    """`prepare_public` then `SealDraft.finish` with ``sign(draft.to_be_signed)``."""
    draft = prepare_public(body, **kwargs)
    return draft.finish(sign(draft.to_be_signed))
