"""Keys as the envelope core sees them: public recipient keys, reader and signer holders, entropy.

The core never owns a private key. A reader is any object with the `ReaderKeys` methods (a
raw X25519 and an ML-KEM-768 decapsulation that return `SecretBytes`), so the keys can sit in
`SecretBytes` (`LocalReaderKeys`, here) or behind an HSM worker. A signer is any callable
``sign(to_be_signed) -> 64-byte Ed25519 signature`` (`Ed25519SecretKey` here, an HSM in
production through `prepare_seal` / `SealDraft.finish`). Randomness comes from an `Entropy`
object so the vector generator can make byte-exact envelopes; production uses the system's.
"""

from __future__ import annotations

import os
from typing import Protocol

import attrs
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.asymmetric.mlkem import MLKEM768PrivateKey, MLKEM768PublicKey
from nacl import bindings as sodium

from milagro_node.core.hpke import X25519SecretKey
from milagro_node.secret_memory import SecretBytes, process_memory_locked

__all__ = [
    "Ed25519SecretKey",
    "Entropy",
    "LocalReaderKeys",
    "ReaderKeys",
    "RecipientKey",
    "SystemEntropy",
]

X25519_PUBLIC_SIZE = 32
MLKEM768_PUBLIC_SIZE = 1184
MLKEM768_CIPHERTEXT_SIZE = 1088
MLKEM768_SEED_SIZE = 64  # FIPS 203 (d || z): the private key's compact form


@attrs.frozen
class RecipientKey:
    """A recipient's public encryption keys, as its identity log publishes them.

    ``mlkem768`` is needed for the hybrid suite ``mx2`` only.
    """

    kid: str  # the recipient's identity CID
    x25519: bytes = attrs.field(repr=lambda b: b.hex()[:16] + "...")
    mlkem768: bytes | None = attrs.field(default=None, repr=lambda b: "..." if b else "None")


class ReaderKeys(Protocol):
    """The private side of a recipient: key operations, never the keys themselves.

    Both methods raise ValueError for inputs the primitive rejects (a low-order X25519 point);
    the opener reports that as ``unwrap-failed``. Other exceptions (an HSM that is gone)
    propagate to the caller.
    """

    x25519_public: bytes
    mlkem768_public: bytes | None

    def x25519(self, peer_public: bytes) -> SecretBytes: ...

    def mlkem768_decapsulate(self, ciphertext: bytes) -> SecretBytes: ...


class LocalReaderKeys:
    """`ReaderKeys` over private keys held in `SecretBytes` in this process."""

    __slots__ = ("_x25519", "_mlkem_seed", "_mlkem_object", "mlkem768_public")

    def __init__(self, x25519: SecretBytes, mlkem768_seed: SecretBytes | None = None) -> None:
        self._x25519 = X25519SecretKey(x25519)
        self._mlkem_seed = mlkem768_seed
        self._mlkem_object: MLKEM768PrivateKey | None = None
        self.mlkem768_public = None
        if mlkem768_seed is not None:
            if len(mlkem768_seed) != MLKEM768_SEED_SIZE:
                raise ValueError("an ML-KEM-768 seed is 64 bytes")
            key = self._mlkem_key()
            self.mlkem768_public = key.public_key().public_bytes_raw()
            # OpenSSL's copy of the key is out of SecretBytes' reach; it may live as long
            # as the seed only where no page of this process can be swapped or dumped.
            # Elsewhere it is rebuilt at each use (about 3x a decapsulation's cost).
            if process_memory_locked():
                self._mlkem_object = key

    @classmethod
    def generate(cls, *, post_quantum: bool = True) -> LocalReaderKeys:
        seed = SecretBytes.random(MLKEM768_SEED_SIZE) if post_quantum else None
        return cls(SecretBytes.random(32), seed)

    @property
    def x25519_public(self) -> bytes:
        return self._x25519.x25519_public

    @property
    def x25519_secret(self) -> SecretBytes:
        """The X25519 private key itself, for native code in this process (the envelope's
        key unwrap, native/envcrypt.c) to run the DH where the key is. Treat with care."""
        return self._x25519.secret

    def recipient_key(self, kid: str) -> RecipientKey:
        """The public half, to give to senders."""
        return RecipientKey(kid, self.x25519_public, self.mlkem768_public)

    def x25519(self, peer_public: bytes) -> SecretBytes:
        return self._x25519.x25519(peer_public)

    def mlkem768_decapsulate(self, ciphertext: bytes) -> SecretBytes:
        if self._mlkem_seed is None:
            raise ValueError("this reader has no ML-KEM-768 key")
        return SecretBytes.copy_from(self._mlkem_key().decapsulate(ciphertext))

    def _mlkem_key(self) -> MLKEM768PrivateKey:
        if self._mlkem_object is not None:
            return self._mlkem_object
        return MLKEM768PrivateKey.from_seed_bytes(self._mlkem_seed.reveal())

    def close(self) -> None:
        self._mlkem_object = None  # released with the seed
        self._x25519.close()
        if self._mlkem_seed is not None:
            self._mlkem_seed.close()


class Ed25519SecretKey:
    """An Ed25519 signing key in `SecretBytes`; call it to sign (a `seal` ``sign=``).

    Signs with libsodium, from its 64-byte secret key ``seed || public key`` kept in
    `SecretBytes`: OpenSSL would import the seed as a key first, which recomputes the public
    key (a scalar multiplication as dear as the signature) at every call. The public half is
    derived once here, by OpenSSL, so libsodium never signs with a mismatched one (that
    would leak the key). RFC 8032 signatures are deterministic: the bytes are the same.
    """

    __slots__ = ("_seed", "_signing_key", "public_key")

    def __init__(self, seed: SecretBytes) -> None:
        if len(seed) != 32:
            raise ValueError("an Ed25519 private key is 32 bytes")
        self._seed = seed
        self.public_key = Ed25519PrivateKey.from_private_bytes(seed.reveal()).public_key().public_bytes_raw()
        self._signing_key = SecretBytes(64)
        with self._signing_key.view() as key, seed.view() as raw:
            key[:32] = raw
            key[32:] = self.public_key

    @classmethod
    def generate(cls) -> Ed25519SecretKey:
        return cls(SecretBytes.random(32))

    def __call__(self, message: bytes) -> bytes:
        if self._seed.closed:  # the caller's seed closed: the key is gone, as it was before
            self._signing_key.close()
            raise ValueError("secret is closed")
        return sodium.crypto_sign(bytes(message), self._signing_key.reveal())[:64]

    def close(self) -> None:
        self._seed.close()
        self._signing_key.close()


class Entropy(Protocol):
    """Where a seal gets its randomness. Production: `SystemEntropy`; vectors: a seeded one."""

    def random_bytes(self, n: int) -> bytes:
        """Public randomness (the envelope id)."""
        ...

    def secret_bytes(self, n: int) -> SecretBytes:
        """Secret randomness (the content key)."""
        ...

    def x25519_ephemeral(self) -> SecretBytes | None:
        """An ephemeral X25519 private key, or None: let the crypto library generate it.

        None is the better choice outside test vectors: a key generated inside OpenSSL never
        exists as a Python object, not even as a short-lived copy.
        """
        ...

    def mlkem768_encapsulate(self, public_key: bytes) -> tuple[SecretBytes, bytes]:
        """ML-KEM-768 encapsulation: ``(shared secret, 1,088-byte ciphertext)``."""
        ...


class SystemEntropy:
    """The operating system's randomness; ML-KEM through OpenSSL."""

    def random_bytes(self, n: int) -> bytes:
        return os.urandom(n)

    def secret_bytes(self, n: int) -> SecretBytes:
        return SecretBytes.random(n)

    def x25519_ephemeral(self) -> None:
        return None

    def mlkem768_encapsulate(self, public_key: bytes) -> tuple[SecretBytes, bytes]:
        shared, ciphertext = MLKEM768PublicKey.from_public_bytes(public_key).encapsulate()
        return SecretBytes.copy_from(shared), ciphertext
