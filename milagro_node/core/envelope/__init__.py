"""Milagro encrypted envelope v1 — a sans-IO protocol core (spec: docs/envelope.md).

Layer 1 (protocol cores): bytes in, bytes out; no I/O, no clock, no key storage. The envelope
router actor seals and opens with it, the CLI (`milagro-node envelope ...`) too. It knows
nothing of identity logs: the caller resolves identities and passes keys or callbacks.

An envelope is one DAG-CBOR map, named by its CID:

    {v: 1, suite, sender, created, expires, id, kind, seq?, recipients: [{kid, enc, wck}],
     ct, sig}                                        -- or body instead of recipients + ct

- the payload is encrypted once (AES-256-GCM) under a key derived from a fresh 32-byte
  content key, with the header (every entry but ct, body and sig, exactly as sent) as
  associated data; ct starts with a commitment to the content key, so all recipients
  provably read the same plaintext;
- the content key is wrapped to each recipient with HPKE (RFC 9180), whose ``info`` binds
  suite, envelope id, sender and recipient;
- the sender signs (Ed25519) the header and SHA-256 of the ciphertext; a reader checks the
  signature before it touches any key or ciphertext, then the time window and its replay
  cache, then unwraps and decrypts.

Suites: ``mx1`` (X25519) and ``mx2`` (X25519 + ML-KEM-768 hybrid). Public envelopes (signed
only, ``body`` in clear) carry announcements.

The public face, in the order a newcomer needs it:

    seal(payload, sign=..., suite=, sender=, kind=, recipients=, created=, expires=, seq=)
    prepare_seal(...) -> SealDraft; draft.to_be_signed; draft.finish(signature)  (HSM signing)
    seal_public / prepare_public                    signed-only envelopes
    open_envelope(data, resolve_sender=, reader_kid=, reader_keys=, now=, replay=, limits=)
    verify_envelope(data, resolve_sender=, now=) -> VerifiedEnvelope   steps 1-7 (routers)
    open_verified(verified, reader_kid=, reader_keys=)                  steps 9-11
    inspect_envelope(data) -> EnvelopeHeader        decode only, verify nothing
    envelope_cid(data)
    EnvelopeError(code, message), ErrorCode        the only exception open/inspect raise
    Limits, ReplayCache, RecipientKey, ReaderKeys, LocalReaderKeys, Ed25519SecretKey

Module map: `_format` (fields, limits, schema, the signed bytes) and `_cbor` (the strict,
bounded codec) — together Rule 1: all of the wire format; `_seal`; `_open` (the processing
order); `_suites` + `_hybrid_kem` (key wrapping, on `milagro_node.core.hpke`); `_replay`;
`_keys`; `_errors`.
"""

from ._errors import EnvelopeError, ErrorCode
from ._format import CT_OVERHEAD, DEFAULT_LIMITS, EnvelopeHeader, Limits, Recipient, find_recipient
from ._hybrid_kem import X25519MlKem768
from ._keys import Ed25519SecretKey, Entropy, LocalReaderKeys, ReaderKeys, RecipientKey, SystemEntropy
from ._open import (
    OpenedEnvelope, VerifiedEnvelope, envelope_cid, inspect_envelope, open_envelope, open_verified,
    public_body, verify_envelope,
)
from ._replay import ReplayCache
from ._seal import SealDraft, prepare_public, prepare_seal, seal, seal_public
from ._suites import SUITES, EnvelopeSuite

__all__ = [
    "CT_OVERHEAD",
    "DEFAULT_LIMITS",
    "SUITES",
    "Ed25519SecretKey",
    "Entropy",
    "EnvelopeError",
    "EnvelopeHeader",
    "EnvelopeSuite",
    "ErrorCode",
    "Limits",
    "LocalReaderKeys",
    "OpenedEnvelope",
    "VerifiedEnvelope",
    "ReaderKeys",
    "Recipient",
    "RecipientKey",
    "ReplayCache",
    "SealDraft",
    "SystemEntropy",
    "X25519MlKem768",
    "envelope_cid",
    "find_recipient",
    "inspect_envelope",
    "open_envelope",
    "open_verified",
    "prepare_public",
    "prepare_seal",
    "public_body",
    "seal",
    "seal_public",
    "verify_envelope",
]
