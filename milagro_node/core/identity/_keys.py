"""Public keys in identity events: checks, commitments and signature verification.

Signing keys are Ed25519 (RFC 8032) raw 32-byte public keys; encryption keys are X25519 (32 B)
and, for the hybrid envelope suite, ML-KEM-768 (FIPS 203, 1184 B). The `next` commitment of an
event is ``SHA-256(next Ed25519 public key)``: the key itself stays unpublished until it signs.

Why the small-order check: an Ed25519 public key that is a point of small order (or a
non-canonical encoding) has no secret key behind it, and signatures "by" it can be produced by
anyone with a few guesses. An honest key is always a multiple of the base point, so refusing
such keys costs nothing and means a signature in an identity log always proves possession of a
secret key. `cryptography` does not make this check when it loads a key, so it is done here with
plain modular arithmetic on public data (no secrets, so no constant-time concerns).
"""

from __future__ import annotations

import hashlib

from cryptography.hazmat.primitives.asymmetric import mlkem

from milagro_node.core import ed25519

__all__ = [
    "ED25519_KEY_SIZE",
    "ED25519_SIG_SIZE",
    "MLKEM768_KEY_SIZE",
    "X25519_KEY_SIZE",
    "ed25519_key_problem",
    "hex_repr",
    "key_digest",
    "mlkem768_key_problem",
    "signature_valid",
]

ED25519_KEY_SIZE = ed25519.PUBLIC_KEY_SIZE
ED25519_SIG_SIZE = ed25519.SIGNATURE_SIZE
X25519_KEY_SIZE = 32
MLKEM768_KEY_SIZE = 1184

# Edwards25519: -x^2 + y^2 = 1 + d x^2 y^2 over GF(p) (RFC 8032, section 5.1).
_P = 2**255 - 19
_D = (-121665 * pow(121666, -1, _P)) % _P
_SQRT_M1 = pow(2, (_P - 1) // 4, _P)


def key_digest(public_key: bytes) -> bytes:
    """The pre-rotation commitment to a signing key: SHA-256 of its 32 raw bytes."""
    return hashlib.sha256(bytes(public_key)).digest()


def hex_repr(value: bytes | None) -> str:
    """How keys and digests show in reprs and logs: hex, which is how the docs print them."""
    return "None" if value is None else value.hex()


def signature_valid(public_key: bytes, signature: bytes, message: bytes) -> bool:
    """Ed25519 verification, by the node's one rule (`milagro_node.core.ed25519`)."""
    return ed25519.verify(public_key, signature, message)


def ed25519_key_problem(key: bytes) -> str | None:
    """Why ``key`` is not an acceptable Ed25519 public key, or None."""
    y = int.from_bytes(key, "little") & ((1 << 255) - 1)
    x_is_odd = key[31] >> 7
    if y >= _P:
        return "non-canonical encoding"
    x = _recover_x(y, x_is_odd)
    if x is None:
        return "not a point on the curve"
    point = (x, y)
    for _ in range(3):  # multiply by the cofactor 8: only small-order points reach the identity
        point = _double(point)
    if point == (0, 1):
        return "a point of small order"
    return None


def mlkem768_key_problem(key: bytes) -> str | None:
    """Why ``key`` is not an ML-KEM-768 encapsulation key (FIPS 203 input check), or None."""
    try:
        mlkem.MLKEM768PublicKey.from_public_bytes(key)
    except ValueError:
        return "not a valid ML-KEM-768 public key"
    return None


def _recover_x(y: int, x_is_odd: int) -> int | None:
    # x^2 = (y^2 - 1) / (d y^2 + 1); square root as in RFC 8032 section 5.1.3.
    u = (y * y - 1) % _P
    v = (_D * y * y + 1) % _P
    x = u * pow(v, 3, _P) * pow(u * pow(v, 7, _P), (_P - 5) // 8, _P) % _P
    if (v * x * x - u) % _P != 0:
        x = x * _SQRT_M1 % _P
        if (v * x * x - u) % _P != 0:
            return None
    if x == 0 and x_is_odd:
        return None  # -0 is a second encoding of x = 0
    if x & 1 != x_is_odd:
        x = _P - x
    return x


def _double(point: tuple[int, int]) -> tuple[int, int]:
    # The Edwards addition law is complete on this curve (d is not a square), so the
    # denominators never vanish for points on it.
    x, y = point
    dxy = _D * x * x * y * y % _P
    x2 = 2 * x * y * pow(1 + dxy, -1, _P) % _P
    y2 = (y * y + x * x) * pow(1 - dxy, -1, _P) % _P
    return x2, y2
