"""Opening: the receiver's checks, in the one order docs/envelope.md specifies.

Theory of operation. `open_envelope` is a straight pipeline; each step either passes or
raises `EnvelopeError` with its own code, and no step runs before the ones it relies on:

    1  size            len(data) <= max_envelope_bytes                    too-large
    2  decode          canonical DAG-CBOR, limits checked at each head    malformed,
                                                                          non-canonical, too-large,
                                                                          too-many-recipients
    3  version, suite  v == 1; suite is mx1 or mx2                        unknown-version,
                                                                          unknown-suite
    4  schema, limits  field set, types, exact sizes, kind, lifetime      malformed, too-large,
                                                                          too-many-recipients,
                                                                          bad-time-window
    5  sender          resolve_sender(sender) -> Ed25519 public key       unknown-sender
    6  signature       Ed25519 over tbs (header + SHA-256(ct or body))    bad-signature
    7  time window     created - skew <= now < expires + skew             not-yet-valid, expired
    8  replay          (sender, id) not in the replay cache               replayed
    9  recipient       reader_kid among the recipients                    not-a-recipient
    10 unwrap          HPKE-open the wrapped content key                  unwrap-failed
    11 decrypt         key commitment, then AES-256-GCM with the header   decrypt-failed
                       as associated data
    12 remember        (sender, id) into the replay cache until expires + skew

Public envelopes stop after step 8 (their body is in clear) and then remember the id.

Why this order: nothing the sender did not sign is trusted, so the signature (6) is checked
before any private key is used (10) or any ciphertext is decrypted (11) — an attacker cannot
make us run our keys on bytes of their choosing, and a decryption error can never act as an
oracle. Steps 1-4 come first because they are cheap, bounded and need no key. The time and
replay checks (7, 8) run on signed values only, so an attacker cannot push entries into the
replay cache. The id is remembered only after the whole open succeeded, so an open that
failed for a passing reason (a key holder that was away) can be retried.
"""

from __future__ import annotations

import functools
from collections.abc import Callable

import attrs
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from milagro_node.core import ed25519
from milagro_node.core.ipld import cid_for

from ._errors import EnvelopeError, ErrorCode
from ._format import (
    DEFAULT_LIMITS, EnvelopeHeader, Limits, find_recipient, parse,
    to_be_signed, wrap_info,
)
from ._keys import ReaderKeys
from ._replay import ReplayCache
from ._suites import SUITES

__all__ = ["OpenedEnvelope", "VerifiedEnvelope", "envelope_cid", "inspect_envelope", "open_envelope",
           "open_verified", "public_body", "verify_envelope"]

SenderResolver = Callable[[str], "bytes | Ed25519PublicKey | None"]


def envelope_cid(data: bytes) -> str:
    """The envelope's name: CIDv1(dag-cbor, sha2-256) of its bytes, in base32."""
    return cid_for(data, "dag-cbor")


@attrs.define(frozen=True, slots=False)
class OpenedEnvelope:
    """A verified (and, unless public, decrypted) envelope."""

    header: EnvelopeHeader
    payload: bytes = attrs.field(repr=False)  # the plaintext, or the public body
    data: bytes = attrs.field(repr=False)  # the envelope's bytes as received

    @functools.cached_property
    def cid(self) -> str:
        """`envelope_cid` of the received bytes (computed on first use: it hashes them all)."""
        return envelope_cid(self.data)


def inspect_envelope(data: bytes, *, limits: Limits = DEFAULT_LIMITS) -> EnvelopeHeader:
    """The header, after steps 1-4 only: nothing is verified or decrypted.

    For routing and display (`milagro-node envelope inspect`); never act on it.
    """
    return parse(bytes(data), limits, SUITES).header


@attrs.frozen
class VerifiedEnvelope:
    """An envelope after steps 1-7: well formed, signed by its sender, within its time window.

    Not yet checked against a replay cache and not decrypted: a router validates with
    `verify_envelope`, keeps its own replay cache, and opens later with `open_verified`.
    """

    header: EnvelopeHeader
    data: bytes = attrs.field(repr=False)
    until: int  # expires + clock skew: how long a replay cache must remember the id
    _header_bytes: bytes = attrs.field(repr=False, alias="header_bytes")
    _payload: memoryview = attrs.field(repr=False, alias="payload")

    @functools.cached_property
    def cid(self) -> str:
        return envelope_cid(self.data)


def verify_envelope(
    data: bytes,
    *,
    resolve_sender: SenderResolver,
    now: int,
    limits: Limits = DEFAULT_LIMITS,
) -> VerifiedEnvelope:
    """Steps 1-7: decode within ``limits``, check the sender's signature, then the time window.

    No private key is used. Raises `EnvelopeError` only (exceptions from ``resolve_sender``
    propagate).
    """
    data = bytes(data)
    parsed = parse(data, limits, SUITES)
    header = parsed.header

    public_key = resolve_sender(header.sender)
    if public_key is None:
        raise EnvelopeError(ErrorCode.UNKNOWN_SENDER, "the sender's identity is not known")
    if isinstance(public_key, Ed25519PublicKey):
        public_key = public_key.public_bytes_raw()
    if not ed25519.verify(public_key, parsed.sig, to_be_signed(parsed.header_bytes, parsed.payload)):
        raise EnvelopeError(ErrorCode.BAD_SIGNATURE, "the sender's signature does not verify")

    if now < header.created - limits.clock_skew:
        raise EnvelopeError(ErrorCode.NOT_YET_VALID, f"created {header.created - now} s in the future")
    until = header.expires + limits.clock_skew
    if now >= until:
        raise EnvelopeError(ErrorCode.EXPIRED, f"expired {now - header.expires} s ago")
    return VerifiedEnvelope(header, data, until, parsed.header_bytes, parsed.payload)


def open_verified(verified: VerifiedEnvelope, *, reader_kid: str | None,
                  reader_keys: ReaderKeys | None) -> OpenedEnvelope:
    """Steps 9-11 on a verified envelope (the caller has done its replay check)."""
    if verified.header.public:
        payload = bytes(verified._payload)
    else:
        payload = _decrypt(verified._header_bytes, verified.header, verified._payload, reader_kid, reader_keys)
    return OpenedEnvelope(verified.header, payload, verified.data)


def public_body(data: bytes, *, limits: Limits = DEFAULT_LIMITS) -> bytes:
    """The clear body of a public envelope after steps 1-4 only (nothing verified): for an
    announcement that carries the sender's own identity log, which must be read to find
    the key that `verify_envelope` then checks. ``malformed`` if the envelope is not public."""
    parsed = parse(bytes(data), limits, SUITES)
    if not parsed.header.public:
        raise EnvelopeError(ErrorCode.MALFORMED, "not a public envelope")
    return bytes(parsed.payload)


def open_envelope(
    data: bytes,
    *,
    resolve_sender: SenderResolver,
    reader_kid: str | None,
    reader_keys: ReaderKeys | None,
    now: int,
    replay: ReplayCache,
    limits: Limits = DEFAULT_LIMITS,
) -> OpenedEnvelope:
    """Verify and decrypt an envelope (see the module docstring for the steps and codes).

    ``resolve_sender(cid)`` returns the sender's Ed25519 public key (32 raw bytes or a
    key object) or None if the identity is unknown; ``reader_kid`` / ``reader_keys`` are this
    node's identity CID and key holder (None to open public envelopes only); ``now`` is the
    caller's time in seconds since the epoch. Only `EnvelopeError` is raised for anything
    wrong with ``data``; exceptions from the callbacks propagate.
    """
    verified = verify_envelope(data, resolve_sender=resolve_sender, now=now, limits=limits)
    header = verified.header
    if replay.is_replay(header.sender, header.id, verified.until, now):
        raise EnvelopeError(ErrorCode.REPLAYED, "this envelope id was already opened")
    opened = open_verified(verified, reader_kid=reader_kid, reader_keys=reader_keys)
    replay.remember(header.sender, header.id, verified.until, now)
    return opened


def _decrypt(header_bytes: bytes, header: EnvelopeHeader, ct: memoryview,
             reader_kid: str | None, reader_keys: ReaderKeys | None) -> bytes:
    entry = find_recipient(header.recipients, reader_kid) if reader_kid is not None else None
    if entry is None or reader_keys is None:
        raise EnvelopeError(ErrorCode.NOT_A_RECIPIENT, "the reader is not among the recipients")
    suite = SUITES[header.suite]
    info = wrap_info(header.suite, header.id, header.sender, entry.kid)
    return suite.open_payload(entry.enc, entry.wck, reader_keys, info, ct, header_bytes)
