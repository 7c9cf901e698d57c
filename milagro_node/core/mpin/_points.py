"""Points on the wire and identities hashed to G1: decoding, H(ID), H_T(d), ID ‖ Pa.

Part of `milagro_node.core.mpin` (see its docstring for the protocol).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable

from milagro_node.adapters.pairing import G1, G2, BadPointError, hash_to_g1

from ._errors import MpinError, MpinErrorCode

DST_IDENTITY = b"MILAGRO-MPIN-V1-BLS12381G1_XMD:SHA-256_SSWU_RO_"
DST_TIME_PERMIT = b"MILAGRO-MPIN-V1-TP-BLS12381G1_XMD:SHA-256_SSWU_RO_"
DAY_SECONDS = 86400
Q = G2.generator()

RandBytes = Callable[[int], bytes]


def decode_g1(data: bytes, what: str = "point") -> G1:
    """Decode a compressed G1 point from a peer; refuse non-subgroup points and the identity."""
    try:
        point = G1.from_bytes(data)
    except BadPointError as exc:
        raise MpinError(MpinErrorCode.BAD_POINT, f"{what}: {exc}") from None
    _require_not_identity(point, what)
    return point


def decode_g2(data: bytes, what: str = "point") -> G2:
    """Decode a compressed G2 point from a peer; refuse non-subgroup points and the identity."""
    try:
        point = G2.from_bytes(data)
    except BadPointError as exc:
        raise MpinError(MpinErrorCode.BAD_POINT, f"{what}: {exc}") from None
    _require_not_identity(point, what)
    return point


def _require_not_identity(point: G1 | G2, what: str) -> None:
    if point.is_identity():
        raise MpinError(MpinErrorCode.BAD_POINT, f"{what}: the identity point")


def identity_point(identity: bytes) -> G1:
    """A = H(ID), RFC 9380 hash to G1 under `DST_IDENTITY`."""
    return hash_to_g1(identity, DST_IDENTITY)


def day_of(now: int | float) -> int:
    """The permit day of a Unix time: ⌊now / 86400⌋."""
    return int(now // DAY_SECONDS)


def day_point(identity: bytes, day: int) -> G1:
    """H_T(d) = H(d ‖ SHA-256(ID)) under `DST_TIME_PERMIT`, d as 8 bytes big-endian."""
    if not 0 <= day < 2**64:
        raise MpinError(MpinErrorCode.BAD_INPUT, "day out of range")
    return hash_to_g1(day.to_bytes(8, "big") + hashlib.sha256(identity).digest(), DST_TIME_PERMIT)


def dvs_identity(identity: bytes, pa: G2 | bytes) -> bytes:
    """The identity a DVS device enrols under: ID ‖ Pa (Pa's 96-byte encoding, fixed length).

    `pa` may be that encoding itself, for a caller that has checked it decodes."""
    encoded = pa.to_bytes() if isinstance(pa, G2) else bytes(pa)
    if len(encoded) != 96:
        raise MpinError(MpinErrorCode.BAD_INPUT, "Pa is a 96-byte compressed G2 point")
    return bytes(identity) + encoded
