"""The D-TA's shares, their sums, the PIN extraction into a token, and the DVS key.

Part of `milagro_node.core.mpin` (see its docstring for the protocol).
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from typing import TypeVar

import attrs

from milagro_node.adapters.pairing import G1, G2, R, random_scalar, scalar_inverse

from ._errors import MpinError, MpinErrorCode
from ._points import Q, RandBytes, _require_not_identity, day_point, identity_point

PIN_LIMIT = 10**8


def new_master_share(randbytes: RandBytes = os.urandom) -> int:
    """A D-TA's master-secret share s_i, uniform in [1, r)."""
    return random_scalar(randbytes)


def client_secret_share(master_share: int, identity: bytes) -> G1:
    """s_i·H(ID), issued to the enrolled client."""
    return identity_point(identity) * master_share


def server_secret_share(master_share: int) -> G2:
    """s_i·Q, issued to an MFA server of the federation."""
    return Q * master_share


def time_permit_share(master_share: int, identity: bytes, day: int) -> G1:
    """s_i·H_T(d), the client's permit share for day d."""
    return day_point(identity, day) * master_share


_P = TypeVar("_P", G1, G2)


def combine(shares: Iterable[_P]) -> _P:
    """The sum of shares (CS, SS or TP_d); refuses an empty list and an identity result."""
    shares = list(shares)
    if not shares:
        raise MpinError(MpinErrorCode.BAD_INPUT, "no shares to combine")
    total = shares[0]
    for share in shares[1:]:
        total = total + share
    _require_not_identity(total, "combined secret")
    return total


def pin_from_digits(digits: str) -> int:
    """A 4–8 digit PIN string → the PIN scalar, injectively, so "01234" and "1234" differ.

    Each length gets its own range: 4 digits → [0, 10**4), 5 → [10**4, 10**4 + 10**5), and so
    on; the largest value (8 digits) is below 1.2·10**8.
    """
    if not (4 <= len(digits) <= 8 and digits.isascii() and digits.isdigit()):
        raise MpinError(MpinErrorCode.BAD_INPUT, "a PIN is 4 to 8 decimal digits")
    # Offset each length into its own range: 4 digits → [0, 10**4), 5 → [10**4, 10**4 + 10**5), …
    offset = sum(10**n for n in range(4, len(digits)))
    return offset + int(digits)


def _check_pin(pin: int) -> int:
    if not isinstance(pin, int) or not 0 <= pin < 2 * PIN_LIMIT:
        raise MpinError(MpinErrorCode.BAD_INPUT, "PIN out of range")
    return pin


def extract_pin(client_secret: G1, identity: bytes, pin: int, dvs_z: int | None = None) -> G1:
    """token = CS − PIN·A (DVS: z·CS − PIN·A, with ``identity`` the DVS identity)."""
    _check_pin(pin)
    secret = client_secret if dvs_z is None else client_secret * dvs_z
    return secret - identity_point(identity) * pin


@attrs.frozen
class DvsKey:
    """A device's DVS key: secret z and public Pa = z⁻¹·Q."""

    z: int = attrs.field(repr=False)
    pa: G2

    @classmethod
    def generate(cls, randbytes: RandBytes = os.urandom) -> DvsKey:
        return cls.from_secret(random_scalar(randbytes))

    @classmethod
    def from_secret(cls, z: int) -> DvsKey:
        """The key of a stored z (in [1, r))."""
        if not isinstance(z, int) or not 0 < z < R:
            raise MpinError(MpinErrorCode.BAD_INPUT, "a DVS secret is a scalar in [1, r)")
        return cls(z=z, pa=Q * scalar_inverse(z))
