"""The hybrid KEM of suite mx2: X25519 + ML-KEM-768 (FIPS 203), one 32-byte shared secret.

An `hpke.Kem`, so HPKE's key schedule runs on top of it exactly as on DHKEM(X25519).

    encap(pk = pk_M || pk_X):
        (ss_M, ct_M) = ML-KEM-768.Encaps(pk_M)
        ct_X = X25519(e, G);  ss_X = X25519(e, pk_X)       for a fresh ephemeral e
        ss = SHA3-256(LABEL || ss_M || ss_X || ct_M || ct_X || pk_M || pk_X)
        enc = ct_M || ct_X                                   (1,088 + 32 bytes)

Why this combiner (X-Wing's shape, made more conservative): the output is a hash of both
shared secrets, so it stays secret while *either* ss_M or ss_X does — a quantum computer
breaking X25519, or a flaw found in ML-KEM, alone does not reveal it. Both ciphertexts and
both public keys are hashed in as well, so ``ss`` is bound to this exact ``enc`` and this
recipient even if one component KEM is weak in that respect (X25519 is malleable: several
encodings of a point give the same ss_X; X-Wing omits ct_M and pk_M by leaning on ML-KEM's
own binding, which we choose not to rely on). Every input has a fixed length, so the
concatenation is unambiguous. LABEL separates this hash from every other use of SHA3-256.

ML-KEM's implicit rejection means a tampered ct_M decapsulates to a pseudo-random ss_M rather
than an error; the HPKE AEAD then fails to open the wrapped key. Either way the opener sees
one outcome for any altered half of ``enc``: ``unwrap-failed``.

This class is the reference, and the path where native/envcrypt.c cannot run; there
(`_suites.NATIVE_WRAP`) the X25519 half, this combiner (its own SHA3-256, checked against
hashlib's) and the wrap run in one C call, and only the ML-KEM half here in `cryptography`.

kem_id 0xFF02 is local to Milagro envelopes (not IANA-registered); it only enters HPKE's
suite_id, so the mx2 key schedule is separated from every registered suite.
"""

from __future__ import annotations

import hashlib
from typing import TYPE_CHECKING

from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey

from milagro_node.core.hpke import HpkeError
from milagro_node.secret_memory import SecretBytes

from ._keys import MLKEM768_CIPHERTEXT_SIZE, MLKEM768_PUBLIC_SIZE, X25519_PUBLIC_SIZE, SystemEntropy

if TYPE_CHECKING:
    from ._keys import Entropy, ReaderKeys

__all__ = ["COMBINER_LABEL", "X25519MlKem768", "combine"]

COMBINER_LABEL = b"milagro/mx2/X25519+ML-KEM-768"
_SYSTEM = SystemEntropy()


def combine(ss_m: SecretBytes, ss_x: SecretBytes, ct_m: bytes, ct_x: bytes,
            pk_m: bytes, pk_x: bytes) -> SecretBytes:
    """The combiner above; the inputs stay owned by the caller."""
    h = hashlib.sha3_256(COMBINER_LABEL)
    h.update(ss_m.reveal())
    h.update(ss_x.reveal())
    for public in (ct_m, ct_x, pk_m, pk_x):
        h.update(public)
    return SecretBytes.copy_from(h.digest())


class X25519MlKem768:
    """The mx2 KEM. ``ephemeral`` for `encap` is an `Entropy` (None: the system's)."""

    kem_id = 0xFF02
    n_secret = 32
    n_enc = MLKEM768_CIPHERTEXT_SIZE + X25519_PUBLIC_SIZE
    n_pk = MLKEM768_PUBLIC_SIZE + X25519_PUBLIC_SIZE

    def encap(self, pk: bytes, ephemeral: Entropy | None = None) -> tuple[SecretBytes, bytes]:
        if len(pk) != self.n_pk:
            raise HpkeError(f"hybrid public key must be {self.n_pk} bytes")
        entropy = ephemeral if ephemeral is not None else _SYSTEM
        pk_m, pk_x = pk[:MLKEM768_PUBLIC_SIZE], pk[MLKEM768_PUBLIC_SIZE:]
        try:
            ss_m, ct_m = entropy.mlkem768_encapsulate(pk_m)
        except ValueError:
            raise HpkeError("invalid ML-KEM-768 public key") from None
        with ss_m:
            eph = entropy.x25519_ephemeral()
            if eph is None:
                sk_e = X25519PrivateKey.generate()
            else:
                with eph:
                    sk_e = X25519PrivateKey.from_private_bytes(eph.reveal())
            ct_x = sk_e.public_key().public_bytes_raw()
            try:
                ss_x = SecretBytes.copy_from(sk_e.exchange(X25519PublicKey.from_public_bytes(pk_x)))
            except ValueError:
                raise HpkeError("X25519 public key is a low-order point") from None
            with ss_x:
                return combine(ss_m, ss_x, ct_m, ct_x, pk_m, pk_x), ct_m + ct_x

    def decap(self, enc: bytes, recipient: ReaderKeys) -> SecretBytes:
        if len(enc) != self.n_enc:
            raise HpkeError(f"hybrid enc must be {self.n_enc} bytes")
        pk_m = recipient.mlkem768_public
        if pk_m is None:
            raise HpkeError("the reader has no ML-KEM-768 key")
        ct_m, ct_x = enc[:MLKEM768_CIPHERTEXT_SIZE], enc[MLKEM768_CIPHERTEXT_SIZE:]
        try:
            ss_m = recipient.mlkem768_decapsulate(ct_m)
            with ss_m:
                ss_x = recipient.x25519(ct_x)
                with ss_x:
                    return combine(ss_m, ss_x, ct_m, ct_x, pk_m, recipient.x25519_public)
        except ValueError:
            raise HpkeError("a half of the hybrid enc was rejected") from None
