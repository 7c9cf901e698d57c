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

What follows the KEM — HPKE's key schedule, the wrap's AES-256-GCM and the content keys —
runs in one C call (native/envcrypt.c, libsodium) where this machine has the AES
instructions libsodium needs (`NATIVE_WRAP`). For mx1 the X25519 operations run there too:
a sender's ephemeral key (libsodium's fixed-base multiplication, about half the cost of
OpenSSL's key generation), and a reader's DH when its key is in this process. Else, and as
the reference the tests compare it with, in `hpke` and `_format.content_keys`. Same bytes
either way.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import attrs

from milagro_node.core import hpke
from milagro_node.secret_memory import SecretBytes, constant_time_equal

from ._errors import EnvelopeError, ErrorCode
from ._format import COMMIT_SIZE, WCK_SIZE, content_keys
from ._hybrid_kem import X25519MlKem768
from ._keys import X25519_PUBLIC_SIZE

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

__all__ = ["NATIVE_WRAP", "SUITES", "EnvelopeSuite", "derive_content_keys"]

#: True where native/envcrypt.c can run (AES-NI and PCLMUL); tests turn it off to check
#: the reference path.
NATIVE_WRAP = bool(_lib.envc_available())


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
            if not self.post_quantum:
                return _wrap_x25519(public_key, ephemeral, info, cek, wck)
            shared, enc = self.hpke_suite.kem.encap(public_key, ephemeral)
            with shared:
                _lib.envc_wrap(self.kem_id, _secret_pointer(shared), _ffi.NULL, 0, info, len(info),
                               _secret_pointer(cek), wck)
            return enc, _ffi.buffer(wck)[:]
        except (hpke.HpkeError, ValueError) as exc:
            raise ValueError(f"unusable public key for recipient {recipient.kid}: {exc}") from None
        finally:
            if ephemeral is not None and not self.post_quantum:
                ephemeral.close()

    @property
    def kem_id(self) -> int:
        return self.hpke_suite.kem.kem_id

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
        # A key in this process's secret memory lets the DH run in the same C call.
        scalar = None if self.post_quantum else getattr(reader, "x25519_secret", None)
        # The C calls read exactly these sizes: check them here (parse already has).
        if len(wck) != WCK_SIZE or (scalar is not None and len(enc) != self.n_enc):
            raise _unwrap_failed()
        if len(commitment) != COMMIT_SIZE:
            raise _not_committed()
        payload_key = SecretBytes(32)
        if scalar is not None:
            rc = _lib.envc_unwrap_x25519(_secret_pointer(scalar), enc, reader.x25519_public, info, len(info),
                                         wck, _ffi.from_buffer(commitment), _secret_pointer(payload_key))
        else:
            secret, kem_context = self._kem_secret(enc, reader)
            with secret:
                rc = _lib.envc_unwrap(
                    self.kem_id, _secret_pointer(secret), kem_context or _ffi.NULL, len(kem_context),
                    info, len(info), wck, _ffi.from_buffer(commitment), _secret_pointer(payload_key))
        if rc != _lib.ENVC_OK:
            payload_key.close()
            raise _unwrap_failed() if rc == _lib.ENVC_UNWRAP_FAILED else _not_committed()
        return payload_key

    def _kem_secret(self, enc: bytes, reader: ReaderKeys) -> tuple[SecretBytes, bytes]:
        """What `envc_unwrap` starts from: mx1, the raw X25519 output and DHKEM's kem_context
        (enc || pkR); mx2, the hybrid KEM's shared secret and no context."""
        try:
            if self.post_quantum:
                return self.hpke_suite.kem.decap(enc, reader), b""
            if len(enc) != self.n_enc:
                raise ValueError("X25519 enc must be 32 bytes")
            return reader.x25519(enc), enc + reader.x25519_public
        except (hpke.HpkeError, ValueError):
            raise _unwrap_failed() from None

    def _unwrap(self, enc: bytes, wck: bytes, reader: ReaderKeys, info: bytes) -> SecretBytes:
        """The content key, by the reference path (`hpke.open_secret`)."""
        try:
            return hpke.open_secret(self.hpke_suite, enc, reader, info, wck)
        except hpke.HpkeError:
            raise _unwrap_failed() from None


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
    rc = _lib.envc_wrap_x25519(public_key, _ffi.NULL if ephemeral is None else _secret_pointer(ephemeral),
                               info, len(info), _secret_pointer(cek), enc, wck)
    if rc != _lib.ENVC_OK:
        raise ValueError("the X25519 public key is a low-order point")
    return _ffi.buffer(enc)[:], _ffi.buffer(wck)[:]


def _secret_pointer(secret: SecretBytes) -> Any:
    return _ffi.cast("unsigned char *", secret.address())


def _unwrap_failed() -> EnvelopeError:
    return EnvelopeError(ErrorCode.UNWRAP_FAILED, "the content key does not unwrap with this reader's keys")


def _not_committed() -> EnvelopeError:
    return EnvelopeError(ErrorCode.DECRYPT_FAILED, "the content key does not match its commitment")

SUITES: dict[str, EnvelopeSuite] = {
    "mx1": EnvelopeSuite("mx1", hpke.Suite(hpke.DHKEM_X25519, hpke.AES_256_GCM), post_quantum=False),
    "mx2": EnvelopeSuite("mx2", hpke.Suite(X25519MlKem768(), hpke.AES_256_GCM), post_quantum=True),
}
