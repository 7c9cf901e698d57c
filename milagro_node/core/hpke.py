"""HPKE (RFC 9180) base mode — a sans-IO protocol core.

Layer 1 (protocol cores): pure functions and two small context objects, no I/O, no clock.
The envelope core (`milagro_node.core.envelope`) wraps each recipient's content key with it;
anything else that needs "encrypt to a public key" should use it the same way.

Why our own: `cryptography` ships HPKE, but its public API has no associated data, no
exporter, no way to inject the ephemeral key (needed to check the RFC's test vectors and to
make our own deterministic vectors) and no way to plug in another KEM (the envelope's
post-quantum hybrid). The primitives underneath are still `cryptography`'s (X25519, AES-GCM,
ChaCha20-Poly1305) and the standard library's HMAC-SHA256 (OpenSSL's, one call per HMAC),
except the DH of a key held in `SecretBytes` (`X25519SecretKey`), which is libsodium's
(PyNaCl): it takes the raw scalar, where OpenSSL would first import it as a key.

Theory of operation (RFC 9180, mode_base only; no PSK, no auth modes):

    sender                                          recipient
    (shared_secret, enc) = KEM.Encap(pkR)           shared_secret = KEM.Decap(enc, skR)
          └───────── key_schedule(shared_secret, info) ──────────┘
                 key, base_nonce, exporter_secret
    ct_i = AEAD.Seal(key, base_nonce XOR i, aad, pt)    pt = AEAD.Open(... same ...)

``enc`` travels with the ciphertext; ``info`` binds the context both sides agree on (never
sent); ``aad`` is per message. The sequence number ``i`` counts messages in one context, so
the n-th `open` must see the n-th `seal`. A context encrypts at most 2**96 - 1 messages.

KEMs are objects with ``kem_id``, ``n_enc``, ``n_pk``, ``encap(pk, ephemeral)`` and
``decap(enc, recipient)`` (see `Kem`), so a KEM outside RFC 9180 (the envelope's X25519 +
ML-KEM-768 hybrid) drives the same key schedule. `DHKEM_X25519` is RFC 9180's
DHKEM(X25519, HKDF-SHA256); the KDF is always HKDF-SHA256.

Secrets: shared secrets, the AEAD key and the exporter secret are returned or held as
`SecretBytes`. HMAC and the AEAD constructors take ``bytes``, so a secret is revealed at the
call that needs it; the intermediate HKDF values are ``bytes`` local to one function call.
The recipient side of DHKEM never sees a private key: it calls ``recipient.x25519(peer)``,
so the key can live in `SecretBytes` (`X25519SecretKey`) or behind any other holder.

Errors: `HpkeError` — one type for "this does not open" (wrong key, tampered ``enc`` or
ciphertext, different ``info`` or ``aad``) and for invalid KEM inputs (wrong length, a
low-order X25519 point). It never carries plaintext or key material.
"""

from __future__ import annotations

import functools
import hmac
from typing import Any, Protocol

import attrs
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey
from cryptography.hazmat.primitives.ciphers.aead import AESGCM, ChaCha20Poly1305
from nacl import bindings as sodium
from nacl import exceptions as sodium_errors

from milagro_node.secret_memory import SecretBytes

__all__ = [
    "AES_128_GCM",
    "AES_256_GCM",
    "CHACHA20_POLY1305",
    "DHKEM_X25519",
    "KDF_HKDF_SHA256",
    "Aead",
    "DhkemX25519",
    "HpkeError",
    "Kem",
    "KeySchedule",
    "RecipientContext",
    "SenderContext",
    "Suite",
    "X25519Recipient",
    "X25519SecretKey",
    "key_schedule",
    "key_schedule_context",
    "labeled_expand",
    "labeled_extract",
    "open_base",
    "open_secret",
    "seal_base",
    "seal_secret",
    "setup_base_recipient",
    "setup_base_sender",
]

KDF_HKDF_SHA256 = 0x0001
_NH = 32  # HKDF-SHA256 output size
_MODE_BASE = b"\x00"
_VERSION_LABEL = b"HPKE-v1"


class HpkeError(Exception):
    """Opening failed or a KEM input was invalid. Carries no plaintext or key material."""


# --- HKDF-SHA256 with RFC 9180's labels (section 4) --------------------------------------


def _hmac(key: bytes, msg: bytes) -> bytes:
    return hmac.digest(key, msg, "sha256")


def labeled_extract(suite_id: bytes, salt: bytes, label: bytes, ikm: bytes) -> bytes:
    """LabeledExtract: HKDF-Extract(salt, "HPKE-v1" || suite_id || label || ikm).

    An empty salt is HashLen zero bytes (RFC 5869); HMAC pads keys with zeros, so the empty
    key is the same key.
    """
    return _hmac(salt, _VERSION_LABEL + suite_id + label + ikm)


def labeled_expand(suite_id: bytes, prk: bytes, label: bytes, info: bytes, length: int) -> bytes:
    """LabeledExpand: HKDF-Expand(prk, I2OSP(L, 2) || "HPKE-v1" || suite_id || label || info, L)."""
    if not 0 < length <= 255 * _NH:
        raise ValueError(f"HKDF-Expand length {length} out of range")
    labeled_info = length.to_bytes(2, "big") + _VERSION_LABEL + suite_id + label + info
    if length <= _NH:  # every key, nonce and shared secret here: one block, no loop
        return _hmac(prk, labeled_info + b"\x01")[:length]
    out, block, counter = b"", b"", 1
    while len(out) < length:
        block = _hmac(prk, block + labeled_info + bytes([counter]))
        out += block
        counter += 1
    return out[:length]


# --- AEADs ------------------------------------------------------------------------------


@attrs.frozen
class Aead:
    """An RFC 9180 AEAD: its id, key size Nk and the `cryptography` class that implements it."""

    aead_id: int
    name: str
    key_size: int
    factory: Any = attrs.field(repr=False)  # AESGCM or ChaCha20Poly1305
    nonce_size: int = 12
    tag_size: int = 16


AES_128_GCM = Aead(0x0001, "AES-128-GCM", 16, AESGCM)
AES_256_GCM = Aead(0x0002, "AES-256-GCM", 32, AESGCM)
CHACHA20_POLY1305 = Aead(0x0003, "ChaCha20Poly1305", 32, ChaCha20Poly1305)


# --- KEMs -------------------------------------------------------------------------------


class Kem(Protocol):
    """What the key schedule needs from a KEM.

    ``encap(pk, ephemeral)`` returns ``(shared_secret, enc)``; ``ephemeral`` is KEM-specific
    injected randomness (None: the KEM draws its own). ``decap(enc, recipient)`` returns the
    shared secret or raises `HpkeError`; ``recipient`` is a KEM-specific private-key holder.
    """

    kem_id: int
    n_secret: int
    n_enc: int
    n_pk: int

    def encap(self, pk: bytes, ephemeral: Any = None) -> tuple[SecretBytes, bytes]: ...

    def decap(self, enc: bytes, recipient: Any) -> SecretBytes: ...


class X25519Recipient(Protocol):
    """A holder of an X25519 private key that never hands the key out."""

    x25519_public: bytes

    def x25519(self, peer_public: bytes) -> SecretBytes:
        """X25519(sk, peer_public); ValueError if the result is all zero (low-order point)."""
        ...


class X25519SecretKey:
    """An X25519 private key kept in `SecretBytes`; implements `X25519Recipient`."""

    __slots__ = ("_secret", "x25519_public")

    def __init__(self, secret: SecretBytes) -> None:
        if len(secret) != 32:
            raise ValueError("an X25519 private key is 32 bytes")
        self._secret = secret
        self.x25519_public = _x25519_private(secret).public_key().public_bytes_raw()

    @classmethod
    def generate(cls) -> X25519SecretKey:
        return cls(SecretBytes.random(32))

    @property
    def secret(self) -> SecretBytes:
        """The private key itself (for storing it wrapped); treat with care."""
        return self._secret

    def x25519(self, peer_public: bytes) -> SecretBytes:
        # libsodium rather than OpenSSL: OpenSSL's key import computes the public key (a
        # second scalar multiplication, 22 us) before it can do the one DH we asked for.
        if len(peer_public) != 32:
            raise ValueError("an X25519 public key is 32 bytes")
        try:
            shared = sodium.crypto_scalarmult(self._secret.reveal(), bytes(peer_public))
        except sodium_errors.RuntimeError:  # libsodium refuses an all-zero result
            raise ValueError("the peer's X25519 public key is a low-order point") from None
        return SecretBytes.copy_from(shared)

    def close(self) -> None:
        self._secret.close()

    def __repr__(self) -> str:
        return f"<X25519SecretKey public={self.x25519_public.hex()[:16]}...>"


def _x25519_private(secret: SecretBytes) -> X25519PrivateKey:
    # reveal() at the call: the bytes copy dies with this expression.
    return X25519PrivateKey.from_private_bytes(secret.reveal())


class DhkemX25519:
    """DHKEM(X25519, HKDF-SHA256), kem_id 0x0020 (RFC 9180 section 4.1)."""

    kem_id = 0x0020
    n_secret = 32
    n_enc = 32
    n_pk = 32
    n_sk = 32
    suite_id = b"KEM" + kem_id.to_bytes(2, "big")

    def derive_key_pair(self, ikm: bytes) -> tuple[SecretBytes, bytes]:
        """DeriveKeyPair (section 7.1.3): ``(sk, pk)`` from input keying material."""
        dkp_prk = labeled_extract(self.suite_id, b"", b"dkp_prk", ikm)
        sk = SecretBytes.copy_from(labeled_expand(self.suite_id, dkp_prk, b"sk", b"", self.n_sk))
        return sk, _x25519_private(sk).public_key().public_bytes_raw()

    def encap(self, pk: bytes, ephemeral: SecretBytes | None = None) -> tuple[SecretBytes, bytes]:
        """``ephemeral``: the 32-byte ephemeral private key skE (for test vectors); None: random."""
        if len(pk) != self.n_pk:
            raise HpkeError("X25519 public key must be 32 bytes")
        # Without an injected key, OpenSSL generates it: it never exists as Python bytes.
        sk_e = X25519PrivateKey.generate() if ephemeral is None else _x25519_private(ephemeral)
        enc = sk_e.public_key().public_bytes_raw()
        try:
            dh = sk_e.exchange(X25519PublicKey.from_public_bytes(pk))
        except ValueError:
            raise HpkeError("X25519 public key is a low-order point") from None
        return self._extract_and_expand(dh, enc + pk), enc

    def decap(self, enc: bytes, recipient: X25519Recipient) -> SecretBytes:
        if len(enc) != self.n_enc:
            raise HpkeError("X25519 enc must be 32 bytes")
        try:
            dh = recipient.x25519(enc)
        except ValueError:
            raise HpkeError("enc is a low-order X25519 point") from None
        with dh:
            return self._extract_and_expand(dh.reveal(), enc + recipient.x25519_public)

    def _extract_and_expand(self, dh: bytes, kem_context: bytes) -> SecretBytes:
        eae_prk = labeled_extract(self.suite_id, b"", b"eae_prk", dh)
        return SecretBytes.copy_from(
            labeled_expand(self.suite_id, eae_prk, b"shared_secret", kem_context, self.n_secret)
        )


DHKEM_X25519 = DhkemX25519()


# --- suites and the key schedule (section 5.1) ---------------------------------------------


@attrs.frozen
class Suite:
    """A ciphersuite: a KEM, HKDF-SHA256 and an AEAD."""

    kem: Kem
    aead: Aead

    @property
    def suite_id(self) -> bytes:
        return _suite_id(self.kem.kem_id, self.aead.aead_id)


@functools.lru_cache(maxsize=None)
def _suite_id(kem_id: int, aead_id: int) -> bytes:
    return (b"HPKE" + kem_id.to_bytes(2, "big") + KDF_HKDF_SHA256.to_bytes(2, "big")
            + aead_id.to_bytes(2, "big"))


@functools.lru_cache(maxsize=None)
def _psk_id_hash(suite_id: bytes) -> bytes:
    # Base mode has an empty psk_id, so this is a per-suite constant.
    return labeled_extract(suite_id, b"", b"psk_id_hash", b"")


def key_schedule_context(suite: Suite, info: bytes) -> bytes:
    """mode || psk_id_hash || info_hash for mode_base (public; in the RFC's vectors)."""
    sid = suite.suite_id
    return _MODE_BASE + _psk_id_hash(sid) + labeled_extract(sid, b"", b"info_hash", info)


@attrs.frozen
class KeySchedule:
    """The key schedule's outputs. The caller owns (and closes) the secrets."""

    key: SecretBytes
    base_nonce: bytes
    exporter_secret: SecretBytes | None  # None when the caller said it will not export


def key_schedule(suite: Suite, shared_secret: SecretBytes, info: bytes, *,
                 exporter: bool = True) -> KeySchedule:
    """KeySchedule for mode_base: psk and psk_id empty."""
    sid = suite.suite_id
    context = key_schedule_context(suite, info)
    secret = labeled_extract(sid, shared_secret.reveal(), b"secret", b"")
    exporter_secret = None
    if exporter:
        exporter_secret = SecretBytes.copy_from(labeled_expand(sid, secret, b"exp", context, _NH))
    return KeySchedule(
        key=SecretBytes.copy_from(labeled_expand(sid, secret, b"key", context, suite.aead.key_size)),
        base_nonce=labeled_expand(sid, secret, b"base_nonce", context, suite.aead.nonce_size),
        exporter_secret=exporter_secret,
    )


# --- encryption contexts (section 5.2) ------------------------------------------------------


class _Context:
    __slots__ = ("_suite", "_aead", "_base_nonce", "_exporter_secret", "_seq")

    def __init__(self, suite: Suite, schedule: KeySchedule) -> None:
        self._suite = suite
        with schedule.key as key:  # the AEAD object keeps its own copy; ours is wiped now
            self._aead = suite.aead.factory(key.reveal())
        self._base_nonce = int.from_bytes(schedule.base_nonce, "big")
        self._exporter_secret = schedule.exporter_secret
        self._seq = 0

    @property
    def seq(self) -> int:
        """The sequence number of the next message."""
        return self._seq

    def _nonce(self) -> bytes:
        size = self._suite.aead.nonce_size
        if self._seq >= (1 << (8 * size)) - 1:
            raise HpkeError("message limit reached for this context")
        return (self._base_nonce ^ self._seq).to_bytes(size, "big")

    def export(self, exporter_context: bytes, length: int) -> SecretBytes:
        """Secret export (section 5.3): ``length`` bytes bound to ``exporter_context``."""
        if self._exporter_secret is None:
            raise HpkeError("this context was set up without an exporter secret")
        return SecretBytes.copy_from(labeled_expand(
            self._suite.suite_id, self._exporter_secret.reveal(), b"sec", exporter_context, length
        ))

    def close(self) -> None:
        if self._exporter_secret is not None:
            self._exporter_secret.close()


class SenderContext(_Context):
    __slots__ = ()

    def seal(self, aad: bytes, plaintext: bytes) -> bytes:
        ct = self._aead.encrypt(self._nonce(), plaintext, aad)
        self._seq += 1
        return ct


class RecipientContext(_Context):
    __slots__ = ()

    def open(self, aad: bytes, ciphertext: bytes) -> bytes:
        """Decrypt and authenticate; `HpkeError` if it does not open (seq is not advanced)."""
        try:
            pt = self._aead.decrypt(self._nonce(), ciphertext, aad)
        except InvalidTag:
            raise HpkeError("ciphertext does not open") from None
        self._seq += 1
        return pt


def setup_base_sender(
    suite: Suite, pk: bytes, info: bytes, *, ephemeral: Any = None, exporter: bool = True
) -> tuple[bytes, SenderContext]:
    """SetupBaseS: ``(enc, context)`` for the holder of public key ``pk``.

    ``ephemeral`` is passed to the KEM (for DHKEM(X25519): the ephemeral private key, so the
    RFC's vectors can be checked); leave it None in production. ``exporter=False`` skips the
    exporter secret for a context that will only seal.
    """
    shared_secret, enc = suite.kem.encap(pk, ephemeral)
    with shared_secret:
        return enc, SenderContext(suite, key_schedule(suite, shared_secret, info, exporter=exporter))


def setup_base_recipient(suite: Suite, enc: bytes, recipient: Any, info: bytes, *,
                         exporter: bool = True) -> RecipientContext:
    """SetupBaseR: the recipient's context from ``enc`` and its private-key holder."""
    with suite.kem.decap(enc, recipient) as shared_secret:
        return RecipientContext(suite, key_schedule(suite, shared_secret, info, exporter=exporter))


def seal_base(
    suite: Suite, pk: bytes, info: bytes, aad: bytes, plaintext: bytes, *, ephemeral: Any = None
) -> tuple[bytes, bytes]:
    """Single-shot encryption: ``(enc, ciphertext)``."""
    enc, ctx = setup_base_sender(suite, pk, info, ephemeral=ephemeral)
    try:
        return enc, ctx.seal(aad, plaintext)
    finally:
        ctx.close()


def open_base(suite: Suite, enc: bytes, recipient: Any, info: bytes, aad: bytes, ciphertext: bytes) -> bytes:
    """Single-shot decryption; `HpkeError` if it does not open."""
    ctx = setup_base_recipient(suite, enc, recipient, info)
    try:
        return ctx.open(aad, ciphertext)
    finally:
        ctx.close()


# --- single-shot for a secret (a wrapped key): no context, no exporter ----------------------


def _first_message_aead(suite: Suite, shared_secret: SecretBytes, info: bytes) -> tuple[Any, bytes]:
    """The AEAD and nonce of message 0 of the context `key_schedule` would set up.

    For one message the key goes straight from HKDF into the AEAD object: holding it in
    `SecretBytes` first (as `key_schedule` must, for a context) would only add one more
    unwipeable copy when it is revealed for the AEAD a line later.
    """
    sid = suite.suite_id
    context = key_schedule_context(suite, info)
    secret = labeled_extract(sid, shared_secret.reveal(), b"secret", b"")
    aead = suite.aead.factory(labeled_expand(sid, secret, b"key", context, suite.aead.key_size))
    return aead, labeled_expand(sid, secret, b"base_nonce", context, suite.aead.nonce_size)


def seal_secret(suite: Suite, pk: bytes, info: bytes, secret: SecretBytes, *,
                ephemeral: Any = None) -> tuple[bytes, bytes]:
    """`seal_base` of ``secret`` with empty aad: ``(enc, ciphertext)``; the same bytes."""
    shared_secret, enc = suite.kem.encap(pk, ephemeral)
    with shared_secret:
        aead, nonce = _first_message_aead(suite, shared_secret, info)
    return enc, aead.encrypt(nonce, secret.reveal(), b"")


def open_secret(suite: Suite, enc: bytes, recipient: Any, info: bytes, ciphertext: bytes) -> SecretBytes:
    """`open_base` with empty aad, for a secret plaintext; `HpkeError` if it does not open."""
    with suite.kem.decap(enc, recipient) as shared_secret:
        aead, nonce = _first_message_aead(suite, shared_secret, info)
    try:
        plaintext = aead.decrypt(nonce, ciphertext, b"")
    except InvalidTag:
        raise HpkeError("ciphertext does not open") from None
    secret = SecretBytes.copy_from(plaintext)
    del plaintext  # the immutable copy cannot be wiped; drop it at once
    return secret
