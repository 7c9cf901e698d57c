"""BLS12-381 groups and the pairing, over pyblst (supranational blst) — the pairing adapter.

Layer 2 (adapters): the only module that imports ``pyblst``. The M-Pin core
(`milagro_node.core.mpin`) does all its group work through the small API here, so the
backend can be swapped (or faked for fuzzing) without touching protocol code.

What it offers:

- `G1` and `G2`: immutable points of the prime-order subgroups. ``+``, unary ``-``, ``-``,
  ``point * k`` (scalar multiplication), ``==``; `to_bytes` is the standard compressed
  encoding (ZCash/IETF: 48 bytes for G1, 96 for G2); `from_bytes` decodes it, checks that the
  point is on the curve *and in the subgroup*, and raises `BadPointError` otherwise.
- `hash_to_g1(msg, dst)`: RFC 9380 ``BLS12381G1_XMD:SHA-256_SSWU_RO_`` with the caller's
  domain-separation tag (checked against RFC 9380 Appendix J.9.1 in the tests).
- `pairing_product_is_one(a, b, c, d)`: whether e(a, b) · e(c, d) = 1 in GT. pyblst exports
  no GT value, so this is two Miller loops and one final exponentiation inside blst
  (``blst_fp12_finalverify(ml(a, b), ml(−c, d))``, which tests FE(x) == FE(y)).
- `random_scalar()`: a uniform scalar in [1, r) from ``os.urandom``.

Scalars are Python ``int``s, reduced mod `R` (the group order) by the backend; negative
values mean their residue. Constant time: every multiplication by a scalar runs in blst
(``blst_p1_mult``/``blst_p2_mult`` over the full 256-bit scalar, GLV with fixed windows), so
secret scalars — master-secret shares, PINs, the login nonce ``x``, the DVS key ``z`` —
must reach a point only through ``point * k``. Python-side arithmetic on a secret scalar
(``x + y``) runs in CPython's bignum code, which is not constant time; the core avoids it
(it computes ``x·P + y·P`` instead of ``(x + y)·P``). The one exception is `scalar_inverse`
(Fermat, fixed public exponent), used once per device at DVS enrolment.

The identity (point at infinity) decodes without error — it *is* in the subgroup — so
protocol code that must refuse it checks `is_identity` itself; `pairing_product_is_one`
handles it exactly (a term with an identity input is 1), rather than passing the point at
infinity to blst's Miller loop.

pyblst holds the GIL for every call (about 0.2 ms per G1 multiplication, about 1.5 ms per
product check): callers on the trio loop run this in a worker process.
"""

from __future__ import annotations

import os
from collections.abc import Callable

import pyblst

__all__ = [
    "G1",
    "G1_BYTES",
    "G2",
    "G2_BYTES",
    "R",
    "BadPointError",
    "hash_to_g1",
    "pairing_product_is_one",
    "random_scalar",
    "scalar_inverse",
]

#: The prime order r of G1, G2 and GT.
R = 0x73EDA753299D7D483339D80809A1D80553BDA402FFFE5BFEFFFFFFFF00000001
G1_BYTES = 48
G2_BYTES = 96


class BadPointError(ValueError):
    """Bytes that are not the compressed encoding of a point in the right subgroup.

    ``reason`` is one of ``"length"``, ``"encoding"`` (not a field element, no such x, bad
    flag bits) or ``"subgroup"`` (on the curve but outside the prime-order subgroup).
    """

    def __init__(self, group: str, reason: str) -> None:
        self.group = group
        self.reason = reason
        super().__init__(f"not a {group} point: {reason}")


def _decode_reason(exc: ValueError) -> str:
    return "subgroup" if "NOT_IN_GROUP" in str(exc) else "encoding"


class G1:
    """A point of G1 (the 48-byte group). Immutable; hashable by its encoding."""

    __slots__ = ("_p",)

    def __init__(self, _p: pyblst.BlstP1Element) -> None:
        self._p = _p

    @classmethod
    def generator(cls) -> G1:
        return _G1_GEN

    @classmethod
    def identity(cls) -> G1:
        return _G1_ID

    @classmethod
    def from_bytes(cls, data: bytes) -> G1:
        """Decode a compressed point; `BadPointError` unless it is in G1."""
        data = bytes(data)
        if len(data) != G1_BYTES:
            raise BadPointError("G1", "length")
        try:
            return cls(pyblst.BlstP1Element.uncompress(data))
        except ValueError as exc:
            raise BadPointError("G1", _decode_reason(exc)) from None

    def to_bytes(self) -> bytes:
        return bytes(self._p.compress())

    def is_identity(self) -> bool:
        return self._p == _G1_ID._p

    def __add__(self, other: G1) -> G1:
        if not isinstance(other, G1):
            return NotImplemented
        return G1(self._p + other._p)

    def __neg__(self) -> G1:
        return G1(-self._p)

    def __sub__(self, other: G1) -> G1:
        if not isinstance(other, G1):
            return NotImplemented
        return G1(self._p + (-other._p))

    def __mul__(self, k: int) -> G1:
        if not isinstance(k, int):
            return NotImplemented
        return G1(self._p.scalar_mul(k))

    __rmul__ = __mul__

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, G1):
            return NotImplemented
        return self._p == other._p

    def __hash__(self) -> int:
        return hash((G1, self.to_bytes()))

    def __repr__(self) -> str:
        return f"G1({self.to_bytes().hex()[:16]}…)"


class G2:
    """A point of G2 (the 96-byte group). Immutable; hashable by its encoding."""

    __slots__ = ("_p",)

    def __init__(self, _p: pyblst.BlstP2Element) -> None:
        self._p = _p

    @classmethod
    def generator(cls) -> G2:
        return _G2_GEN

    @classmethod
    def identity(cls) -> G2:
        return _G2_ID

    @classmethod
    def from_bytes(cls, data: bytes) -> G2:
        """Decode a compressed point; `BadPointError` unless it is in G2."""
        data = bytes(data)
        if len(data) != G2_BYTES:
            raise BadPointError("G2", "length")
        try:
            return cls(pyblst.BlstP2Element.uncompress(data))
        except ValueError as exc:
            raise BadPointError("G2", _decode_reason(exc)) from None

    def to_bytes(self) -> bytes:
        return bytes(self._p.compress())

    def is_identity(self) -> bool:
        return self._p == _G2_ID._p

    def __add__(self, other: G2) -> G2:
        if not isinstance(other, G2):
            return NotImplemented
        return G2(self._p + other._p)

    def __neg__(self) -> G2:
        return G2(-self._p)

    def __sub__(self, other: G2) -> G2:
        if not isinstance(other, G2):
            return NotImplemented
        return G2(self._p + (-other._p))

    def __mul__(self, k: int) -> G2:
        if not isinstance(k, int):
            return NotImplemented
        return G2(self._p.scalar_mul(k))

    __rmul__ = __mul__

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, G2):
            return NotImplemented
        return self._p == other._p

    def __hash__(self) -> int:
        return hash((G2, self.to_bytes()))

    def __repr__(self) -> str:
        return f"G2({self.to_bytes().hex()[:16]}…)"


# The standard generators (the compressed encodings every BLS12-381 library uses).
_G1_GEN = G1(
    pyblst.BlstP1Element.uncompress(
        bytes.fromhex(
            "97f1d3a73197d7942695638c4fa9ac0fc3688c4f9774b905a14e3a3f171bac58"
            "6c55e83ff97a1aeffb3af00adb22c6bb"
        )
    )
)
_G2_GEN = G2(
    pyblst.BlstP2Element.uncompress(
        bytes.fromhex(
            "93e02b6052719f607dacd3a088274f65596bd0d09920b61ab5da61bbdc7f5049"
            "334cf11213945d57e5ac7d055d042b7e024aa2b2f08f0a91260805272dc51051"
            "c6e47ad4fa403b02b4510b647ae3d1770bac0326a805bbefd48056c8c121bdb8"
        )
    )
)
_G1_ID = G1(pyblst.BlstP1Element())
_G2_ID = G2(pyblst.BlstP2Element())


def hash_to_g1(msg: bytes, dst: bytes) -> G1:
    """RFC 9380 hash_to_curve, suite BLS12381G1_XMD:SHA-256_SSWU_RO_, with tag ``dst``."""
    if not 0 < len(dst) <= 255:
        raise ValueError("a hash-to-curve DST is 1 to 255 bytes")
    # pyblst's argument names are swapped; the order is (message, DST) — see the vectors test.
    return G1(pyblst.BlstP1Element.hash_to_group(bytes(msg), bytes(dst)))


def pairing_product_is_one(a: G1, b: G2, c: G1, d: G2) -> bool:
    """Whether e(a, b) · e(c, d) = 1, with a single final exponentiation."""
    first_is_one = a.is_identity() or b.is_identity()
    second_is_one = c.is_identity() or d.is_identity()
    if first_is_one or second_is_one:
        # e is non-degenerate on the prime-order subgroups: e(P, Q) = 1 iff P or Q is 0.
        return first_is_one and second_is_one
    return bool(
        pyblst.final_verify(pyblst.miller_loop(a._p, b._p), pyblst.miller_loop((-c)._p, d._p))
    )


def random_scalar(randbytes: Callable[[int], bytes] = os.urandom) -> int:
    """A uniform scalar in [1, r): 64 random bytes reduced mod r (bias below 2**-250)."""
    while True:
        k = int.from_bytes(randbytes(64), "big") % R
        if k:
            return k


def scalar_inverse(k: int) -> int:
    """k⁻¹ mod r by Fermat's little theorem (k ≠ 0 mod r)."""
    if k % R == 0:
        raise ZeroDivisionError("0 has no inverse mod r")
    return pow(k, R - 2, R)
