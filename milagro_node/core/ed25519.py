"""Ed25519 signature verification (RFC 8032): the one rule every core checks signatures by.

libsodium's, not OpenSSL's: on this machine type it verifies in about half the time
(133 vs 253 us for an envelope's signed bytes), and it is the stricter of the two. Besides
refusing S >= L, as OpenSSL does, it refuses public keys and R values that are not canonical
encodings or are of small order. No honest signer makes those (identity logs refuse such keys
in the first place: `identity._keys.ed25519_key_problem`), and RFC 8032 signatures are
deterministic and checked by the same equation, so what OpenSSL, libsodium or an HSM signs
verifies here.

It calls libsodium's `crypto_sign_verify_detached` through native/envcrypt.c, which reads
the message in place: PyNaCl offers only `crypto_sign_open`, which takes signature and
message joined and returns a copy (two copies of an 8 KB envelope header per check).
"""

from __future__ import annotations

try:
    from milagro_node._envcrypt import lib as _lib
except ImportError as exc:
    raise ImportError(
        "milagro_node._envcrypt (libsodium's Ed25519 verification, among others) is not built: "
        f"run scripts/install.sh, or `python native/build.py` from the repository root ({exc})"
    ) from exc

__all__ = ["PUBLIC_KEY_SIZE", "SIGNATURE_SIZE", "verify"]

PUBLIC_KEY_SIZE = 32
SIGNATURE_SIZE = 64


def verify(public_key: bytes, signature: bytes, message: bytes) -> bool:
    """True iff ``signature`` is ``public_key``'s Ed25519 signature of ``message``."""
    if len(public_key) != PUBLIC_KEY_SIZE or len(signature) != SIGNATURE_SIZE:
        return False
    message = message if type(message) is bytes else bytes(message)  # cffi reads bytes in place
    return bool(_lib.envc_ed25519_verify(bytes(signature), message, len(message), bytes(public_key)))
