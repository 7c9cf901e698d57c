"""The two v1 suites and how each wraps a content key to one recipient.

    suite  KEM                                   KDF          AEAD (wrap and payload)  signature
    mx1    DHKEM(X25519, HKDF-SHA256) 0x0020     HKDF-SHA256  AES-256-GCM              Ed25519
    mx2    X25519 + ML-KEM-768 hybrid 0xFF02     HKDF-SHA256  AES-256-GCM              Ed25519

A wrap is one HPKE base-mode message: ``enc, wck = HPKE.Seal(pkR, info, aad="", cek)`` with
``info`` from `_format.wrap_info` (suite, envelope id, sender, kid). The suites differ only in
the KEM; the signature is Ed25519 in both (a post-quantum signature is a later suite).

mx1 is a registered HPKE ciphersuite: OpenSSL's HPKE (`cryptography`) opens our wraps and
we open its (tests/core/test_hpke.py). Both paths below make the same bytes from the same
ephemeral key (the test vectors inject one).

Where this machine has the AES instructions libsodium needs (`NATIVE_WRAP`), everything but
mx2's ML-KEM half runs in one C call per recipient (native/envcrypt.c, libsodium): the
X25519 operations (a sender's ephemeral key by libsodium's fixed-base multiplication, about
half the cost of OpenSSL's key generation; a reader's DH when its key is in this process),
mx2's combiner, HPKE's key schedule, the wrap's AES-256-GCM, the content keys and, for a
payload up to `NATIVE_PAYLOAD_MAX`, the payload's AES-256-GCM. Else, and as the reference
the tests compare it with, in `hpke`, `_hybrid_kem` and `_format.content_keys`. Same bytes
either way.
"""

from __future__ import annotations

import contextlib
from typing import TYPE_CHECKING, Any

import attrs
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from milagro_node.core import hpke
from milagro_node.secret_memory import SecretBytes, constant_time_equal

from ._errors import EnvelopeError, ErrorCode
from ._format import COMMIT_SIZE, CONTENT_NONCE, CT_OVERHEAD, TAG_SIZE, WCK_SIZE, content_keys
from ._hybrid_kem import X25519MlKem768
from ._keys import MLKEM768_CIPHERTEXT_SIZE, MLKEM768_PUBLIC_SIZE, X25519_PUBLIC_SIZE

try:
    from milagro_node._envcrypt import ffi as _ffi
    from milagro_node._envcrypt import lib as _lib
except ImportError as exc:
    raise ImportError(
        "milagro_node._envcrypt (the envelope key wrap's extension) is not built: run "
        f"scripts/install.sh, or `python native/build.py` from the repository root ({exc})"
    ) from exc

if TYPE_CHECKING:
    from ._keys import Entropy, ReaderKeys, RecipientKey

__all__ = ["NATIVE_PAYLOAD_MAX", "NATIVE_WRAP", "SUITES", "EnvelopeSuite", "derive_content_keys", "encrypt_payload"]

#: True where native/envcrypt.c can run (AES-NI and PCLMUL); tests turn it off to check
#: the reference path.
NATIVE_WRAP = bool(_lib.envc_available())
#: Payloads up to this size are encrypted and decrypted in C with the key wrap (libsodium's
#: AES-GCM, about 1 GB/s here); larger ones by OpenSSL (about 6 GB/s), whose set-up costs
#: more below it.
NATIVE_PAYLOAD_MAX = 4096


@attrs.frozen
class EnvelopeSuite:
    name: str
    hpke_suite: hpke.Suite
    post_quantum: bool

    @property
    def n_enc(self) -> int:
        return self.hpke_suite.kem.n_enc

    def public_key(self, recipient: RecipientKey) -> bytes:
        """The KEM public key (RFC 9180 SerializePublicKey) of ``recipient`` for this suite."""
        if not self.post_quantum:
            return recipient.x25519
        if recipient.mlkem768 is None:
            raise ValueError(f"recipient {recipient.kid} has no ML-KEM-768 key for suite {self.name}")
        return recipient.mlkem768 + recipient.x25519

    def wrap(self, recipient: RecipientKey, cek: SecretBytes, info: bytes,
             entropy: Entropy) -> tuple[bytes, bytes]:
        """``(enc, wck)``: the content key sealed to ``recipient``."""
        public_key = self.public_key(recipient)
        # DHKEM takes its ephemeral private key (None: made where it is used), the hybrid
        # KEM the whole entropy source.
        ephemeral = entropy if self.post_quantum else entropy.x25519_ephemeral()
        try:
            if not NATIVE_WRAP:
                return hpke.seal_secret(self.hpke_suite, public_key, info, cek, ephemeral=ephemeral)
            wck = _ffi.new(f"unsigned char[{WCK_SIZE}]")
            if self.post_quantum:
                return _wrap_mx2(public_key, ephemeral, info, cek, wck)
            return _wrap_x25519(public_key, ephemeral, info, cek, wck)
        except (hpke.HpkeError, ValueError) as exc:
            raise ValueError(f"unusable public key for recipient {recipient.kid}: {exc}") from None
        finally:
            if ephemeral is not None and not self.post_quantum:
                ephemeral.close()

    def open_payload(self, enc: bytes, wck: bytes, reader: ReaderKeys, info: bytes, ct: memoryview,
                     aad: bytes) -> bytes:
        """The payload of ``ct`` (its key commitment, then AES-256-GCM output with ``aad``),
        from the content key wrapped in ``enc, wck``. `EnvelopeError` as `unwrap_payload_key`
        says, or ``decrypt-failed`` if the payload does not decrypt."""
        body = ct[COMMIT_SIZE:]
        if NATIVE_WRAP and TAG_SIZE <= len(body) <= NATIVE_PAYLOAD_MAX + TAG_SIZE:
            # Decrypted in the unwrap's own call: the payload key never leaves C.
            out = _ffi.new("unsigned char[]", max(1, len(body) - TAG_SIZE))
            with _ffi.from_buffer(aad) as aad_in, _ffi.from_buffer(body) as body_in:
                payload = _ffi.new("envc_payload *", (aad_in, len(aad), body_in, len(body), out))
                self._native_unwrap(enc, wck, reader, info, ct[:COMMIT_SIZE], _ffi.NULL, payload)
            return _ffi.buffer(out, len(body) - TAG_SIZE)[:]
        with self.unwrap_payload_key(enc, wck, reader, info, ct[:COMMIT_SIZE]) as payload_key:
            aead = AESGCM(payload_key.reveal())
        try:
            return aead.decrypt(CONTENT_NONCE, body, aad)
        except InvalidTag:
            raise _undecryptable() from None

    def unwrap_payload_key(self, enc: bytes, wck: bytes, reader: ReaderKeys, info: bytes,
                           commitment: bytes | memoryview) -> SecretBytes:
        """The payload key of the content key wrapped in ``enc, wck``, once that key is
        checked against ``commitment`` (in constant time). `EnvelopeError` ``unwrap-failed``
        if it does not unwrap with ``reader``, ``decrypt-failed`` if it is not the committed key.
        """
        if not NATIVE_WRAP:
            with self._unwrap(enc, wck, reader, info) as cek:
                payload_key, expected = content_keys(cek)
            if not constant_time_equal(expected, commitment):
                payload_key.close()
                raise _not_committed()
            return payload_key
        payload_key = SecretBytes(32)
        try:
            self._native_unwrap(enc, wck, reader, info, commitment, _secret_pointer(payload_key), _ffi.NULL)
        except BaseException:
            payload_key.close()  # zeros: the C call wipes it on a failure
            raise
        return payload_key

    def _native_unwrap(self, enc: bytes, wck: bytes, reader: ReaderKeys, info: bytes,
                       commitment: bytes | memoryview, payload_key: Any, payload: Any) -> None:
        # The C calls read exactly these sizes: check them here (parse already has).
        if len(wck) != WCK_SIZE or len(enc) != self.n_enc:
            raise _unwrap_failed()
        if len(commitment) != COMMIT_SIZE:
            raise _not_committed()
        unwrap = _unwrap_mx2 if self.post_quantum else _unwrap_mx1
        # Released at once: a buffer export left to a traceback's frames crashed the garbage
        # collector when it cleared them (a memoryview released before its export).
        with _ffi.from_buffer(commitment) as commitment_in:
            rc = unwrap(enc, reader, info, (wck, commitment_in, payload_key, payload))
        if rc != _lib.ENVC_OK:
            raise _FAILURES[rc]()

    def _unwrap(self, enc: bytes, wck: bytes, reader: ReaderKeys, info: bytes) -> SecretBytes:
        """The content key, by the reference path (`hpke.open_secret`)."""
        try:
            return hpke.open_secret(self.hpke_suite, enc, reader, info, wck)
        except hpke.HpkeError:
            raise _unwrap_failed() from None


def encrypt_payload(cek: SecretBytes, payload: bytes, aad: bytes) -> bytearray:
    """ct: the key commitment of ``cek``, then the payload's AES-256-GCM output with ``aad``
    under its payload key — in one C call for a payload up to `NATIVE_PAYLOAD_MAX` (the
    payload key never leaves C), else with OpenSSL's AES-GCM."""
    ct = bytearray(len(payload) + CT_OVERHEAD)
    if NATIVE_WRAP and len(payload) <= NATIVE_PAYLOAD_MAX:
        with _ffi.from_buffer(ct, require_writable=True) as out:
            _lib.envc_seal_payload(_secret_pointer(cek), aad, len(aad), payload, len(payload), out)
        return ct
    payload_key, commitment = derive_content_keys(cek)
    ct[:COMMIT_SIZE] = commitment
    with payload_key:  # written in place: no second copy of a large payload
        AESGCM(payload_key.reveal()).encrypt_into(CONTENT_NONCE, payload, aad, memoryview(ct)[COMMIT_SIZE:])
    return ct


def derive_content_keys(cek: SecretBytes) -> tuple[SecretBytes, bytes]:
    """`_format.content_keys` (payload key, key commitment), in C where `NATIVE_WRAP`."""
    if not NATIVE_WRAP:
        return content_keys(cek)
    payload_key, commitment = SecretBytes(32), _ffi.new(f"unsigned char[{COMMIT_SIZE}]")
    _lib.envc_content_keys(_secret_pointer(cek), _secret_pointer(payload_key), commitment)
    return payload_key, _ffi.buffer(commitment)[:]


def _wrap_x25519(public_key: bytes, ephemeral: SecretBytes | None, info: bytes, cek: SecretBytes,
                 wck: Any) -> tuple[bytes, bytes]:
    """mx1's wrap in one C call, the ephemeral key drawn there unless given."""
    if len(public_key) != X25519_PUBLIC_SIZE:
        raise ValueError(f"an X25519 public key is {X25519_PUBLIC_SIZE} bytes")
    enc = _ffi.new(f"unsigned char[{X25519_PUBLIC_SIZE}]")
    rc = _lib.envc_wrap_x25519(public_key, _secret_pointer(ephemeral), info, len(info), _secret_pointer(cek),
                               enc, wck)
    if rc != _lib.ENVC_OK:
        raise ValueError("the X25519 public key is a low-order point")
    return _ffi.buffer(enc)[:], _ffi.buffer(wck)[:]


def _wrap_mx2(public_key: bytes, entropy: Entropy, info: bytes, cek: SecretBytes,
              wck: Any) -> tuple[bytes, bytes]:
    """mx2's wrap: the ML-KEM half by `cryptography`, the rest in one C call. ``entropy`` is
    drawn from in `X25519MlKem768.encap`'s order, so seeded vectors give its bytes."""
    pk_m, pk_x = public_key[:MLKEM768_PUBLIC_SIZE], public_key[MLKEM768_PUBLIC_SIZE:]
    if len(pk_x) != X25519_PUBLIC_SIZE:
        raise ValueError(f"a hybrid public key is {MLKEM768_PUBLIC_SIZE + X25519_PUBLIC_SIZE} bytes")
    ss_m, ct_m = entropy.mlkem768_encapsulate(pk_m)  # ValueError for an unusable ML-KEM key
    ct_x = _ffi.new(f"unsigned char[{X25519_PUBLIC_SIZE}]")
    with ss_m:
        ephemeral = entropy.x25519_ephemeral()
        try:
            rc = _lib.envc_wrap_mx2(pk_m, pk_x, _secret_pointer(ss_m), ct_m, _secret_pointer(ephemeral),
                                    info, len(info), _secret_pointer(cek), ct_x, wck)
        finally:
            if ephemeral is not None:
                ephemeral.close()
    if rc != _lib.ENVC_OK:
        raise ValueError("the X25519 public key is a low-order point")
    return ct_m + _ffi.buffer(ct_x)[:], _ffi.buffer(wck)[:]


def _unwrap_mx1(enc: bytes, reader: ReaderKeys, info: bytes, outputs: tuple[Any, ...]) -> int:
    """mx1's unwrap in C: from the reader's key where it is in this process's secret memory
    (the DH runs in the same call), else from the DH output the reader computes. ``outputs``:
    the C calls' last four arguments (wck, commitment, payload key, payload)."""
    scalar = getattr(reader, "x25519_secret", None)
    if scalar is not None:
        return _lib.envc_unwrap_x25519(_secret_pointer(scalar), enc, reader.x25519_public, info, len(info),
                                       *outputs)
    try:
        dh = reader.x25519(enc)
    except ValueError:  # a low-order enc
        raise _unwrap_failed() from None
    with dh:
        kem_context = enc + reader.x25519_public
        return _lib.envc_unwrap(hpke.DHKEM_X25519.kem_id, _secret_pointer(dh), kem_context, len(kem_context),
                                info, len(info), *outputs)


def _unwrap_mx2(enc: bytes, reader: ReaderKeys, info: bytes, outputs: tuple[Any, ...]) -> int:
    """mx2's unwrap: the ML-KEM half by the reader, the rest in one C call (the X25519 DH
    too, where the reader's key is in this process's secret memory)."""
    pk_m = reader.mlkem768_public
    if pk_m is None:
        raise _unwrap_failed()
    ct_m, ct_x = enc[:MLKEM768_CIPHERTEXT_SIZE], enc[MLKEM768_CIPHERTEXT_SIZE:]
    try:
        ss_m = reader.mlkem768_decapsulate(ct_m)
    except ValueError:
        raise _unwrap_failed() from None
    with ss_m:
        scalar, ss_x = getattr(reader, "x25519_secret", None), None
        if scalar is None:
            try:
                ss_x = reader.x25519(ct_x)
            except ValueError:  # a low-order ct_x
                raise _unwrap_failed() from None
        with ss_x if ss_x is not None else contextlib.nullcontext():
            return _lib.envc_unwrap_mx2(_secret_pointer(scalar), _secret_pointer(ss_x), _secret_pointer(ss_m), enc,
                                        pk_m, reader.x25519_public, info, len(info), *outputs)


def _secret_pointer(secret: SecretBytes | None) -> Any:
    """The secret as the C calls take it; NULL for None (a key they draw or compute)."""
    return _ffi.NULL if secret is None else secret.pointer(_ffi)


def _unwrap_failed() -> EnvelopeError:
    return EnvelopeError(ErrorCode.UNWRAP_FAILED, "the content key does not unwrap with this reader's keys")


def _not_committed() -> EnvelopeError:
    return EnvelopeError(ErrorCode.DECRYPT_FAILED, "the content key does not match its commitment")


def _undecryptable() -> EnvelopeError:
    return EnvelopeError(ErrorCode.DECRYPT_FAILED, "the payload does not decrypt")


_FAILURES = {_lib.ENVC_UNWRAP_FAILED: _unwrap_failed, _lib.ENVC_COMMIT_MISMATCH: _not_committed,
             _lib.ENVC_DECRYPT_FAILED: _undecryptable}

SUITES: dict[str, EnvelopeSuite] = {
    "mx1": EnvelopeSuite("mx1", hpke.Suite(hpke.DHKEM_X25519, hpke.AES_256_GCM), post_quantum=False),
    "mx2": EnvelopeSuite("mx2", hpke.Suite(X25519MlKem768(), hpke.AES_256_GCM), post_quantum=True),
}
