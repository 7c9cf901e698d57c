"""The two v1 suites and how each wraps a content key to one recipient.

    suite  KEM                                   KDF          AEAD (wrap and payload)  signature
    mx1    DHKEM(X25519, HKDF-SHA256) 0x0020     HKDF-SHA256  AES-256-GCM              Ed25519
    mx2    X25519 + ML-KEM-768 hybrid 0xFF02     HKDF-SHA256  AES-256-GCM              Ed25519

A wrap is one HPKE base-mode message: ``enc, wck = HPKE.Seal(pkR, info, aad="", cek)`` with
``info`` from `_format.wrap_info` (suite, envelope id, sender, kid). The suites differ only in
the KEM; the signature is Ed25519 in both (a post-quantum signature is a later suite).

mx1 is a registered HPKE ciphersuite, so its wraps are made by OpenSSL's HPKE (through
`cryptography`) unless the caller injects the ephemeral key (test vectors): the same bytes
on the wire, at C speed for a sender with many recipients. Unwrapping always uses our
`hpke` module, because the reader's private key is reachable only through a DH call
(`ReaderKeys`), never as a key object. tests/core/test_hpke.py checks both directions.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import attrs
from cryptography.hazmat.primitives import hpke as native_hpke
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PublicKey

from milagro_node.core import hpke
from milagro_node.secret_memory import SecretBytes

from ._errors import EnvelopeError, ErrorCode
from ._hybrid_kem import X25519MlKem768

if TYPE_CHECKING:
    from ._keys import Entropy, ReaderKeys, RecipientKey

__all__ = ["SUITES", "EnvelopeSuite"]


@attrs.frozen
class EnvelopeSuite:
    name: str
    hpke_suite: hpke.Suite
    post_quantum: bool
    native: Any = None  # the same ciphersuite in OpenSSL's HPKE, if it has it

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
        # DHKEM takes its ephemeral private key, the hybrid KEM the whole entropy source.
        ephemeral = entropy if self.post_quantum else entropy.x25519_ephemeral()
        try:
            if ephemeral is None and self.native is not None:
                blob = self.native.encrypt(cek.reveal(), X25519PublicKey.from_public_bytes(public_key),
                                           info=info)
                n_enc = self.n_enc
                return blob[:n_enc], blob[n_enc:]
            return hpke.seal_secret(self.hpke_suite, public_key, info, cek, ephemeral=ephemeral)
        except (hpke.HpkeError, ValueError) as exc:
            raise ValueError(f"unusable public key for recipient {recipient.kid}: {exc}") from None
        finally:
            if ephemeral is not None and not self.post_quantum:
                ephemeral.close()

    def unwrap(self, enc: bytes, wck: bytes, reader: ReaderKeys, info: bytes) -> SecretBytes:
        """The content key, or `EnvelopeError` ``unwrap-failed``."""
        try:
            return hpke.open_secret(self.hpke_suite, enc, reader, info, wck)
        except hpke.HpkeError:
            raise EnvelopeError(ErrorCode.UNWRAP_FAILED,
                                "the content key does not unwrap with this reader's keys") from None


SUITES: dict[str, EnvelopeSuite] = {
    "mx1": EnvelopeSuite(
        "mx1", hpke.Suite(hpke.DHKEM_X25519, hpke.AES_256_GCM), post_quantum=False,
        native=native_hpke.Suite(native_hpke.KEM.X25519, native_hpke.KDF.HKDF_SHA256,
                                 native_hpke.AEAD.AES_256_GCM),
    ),
    "mx2": EnvelopeSuite("mx2", hpke.Suite(X25519MlKem768(), hpke.AES_256_GCM), post_quantum=True),
}
