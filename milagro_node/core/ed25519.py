"""Ed25519 signature verification (RFC 8032): the one rule every core checks signatures by.

libsodium's (PyNaCl), not OpenSSL's: on this machine type it verifies in about half the time
(133 vs 253 us for an envelope's signed bytes), and it is the stricter of the two. Besides
refusing S >= L, as OpenSSL does, it refuses public keys and R values that are not canonical
encodings or are of small order. No honest signer makes those (identity logs refuse such keys
in the first place: `identity._keys.ed25519_key_problem`), and RFC 8032 signatures are
deterministic and checked by the same equation, so what OpenSSL, libsodium or an HSM signs
verifies here.
"""

from __future__ import annotations

from nacl import bindings as sodium
from nacl.exceptions import BadSignatureError

__all__ = ["PUBLIC_KEY_SIZE", "SIGNATURE_SIZE", "verify"]

PUBLIC_KEY_SIZE = 32
SIGNATURE_SIZE = 64


def verify(public_key: bytes, signature: bytes, message: bytes) -> bool:
    """True iff ``signature`` is ``public_key``'s Ed25519 signature of ``message``."""
    if len(public_key) != PUBLIC_KEY_SIZE or len(signature) != SIGNATURE_SIZE:
        return False
    try:
        sodium.crypto_sign_open(bytes(signature) + bytes(message), bytes(public_key))
    except BadSignatureError:
        return False
    return True
