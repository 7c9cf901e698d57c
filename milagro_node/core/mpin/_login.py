"""The login messages, the client's side of a login, and the server's pairing check.

Part of `milagro_node.core.mpin` (see its docstring for the protocol). The server's
two-pass state machine is in `_session`; one-pass verification, being a single step, is here.
"""

from __future__ import annotations

import hashlib
import os

import attrs

from milagro_node.adapters.pairing import G1, G2, R, pairing_product_is_one, random_scalar

from ._errors import MpinError, MpinErrorCode
from ._points import Q, RandBytes, _require_not_identity, day_point, identity_point
from ._shares import _check_pin

_ONE_PASS_TAG = b"MILAGRO-MPIN-V1-ONE-PASS"


@attrs.frozen
class Pass1:
    """The client's first message: ID, U = x·A, and with a permit UT = x·(A + H_T(d))."""

    identity: bytes
    u: G1
    ut: G1 | None = None


@attrs.frozen
class OnePassProof:
    """A one-pass login: Pass1, V and the client's timestamp t (Unix seconds)."""

    pass1: Pass1
    v: G1
    t: int


class ClientAttempt:
    """One login attempt on the device: holds x and SEC; `respond` may be called once."""

    __slots__ = ("_x", "_sec", "_used", "pass1")

    def __init__(
        self,
        token: G1,
        identity: bytes,
        pin: int,
        *,
        permit: G1 | None = None,
        day: int | None = None,
        dvs_z: int | None = None,
        randbytes: RandBytes = os.urandom,
    ) -> None:
        _check_pin(pin)
        a = identity_point(identity)
        sec = token + a * pin
        x = random_scalar(randbytes)
        u = a * x
        ut = None
        if permit is not None:
            if day is None:
                raise MpinError(MpinErrorCode.BAD_INPUT, "a permit needs its day")
            sec = sec + (permit if dvs_z is None else permit * dvs_z)
            ut = (a + day_point(identity, day)) * x
        self._x = x
        self._sec = sec
        self._used = False
        self.pass1 = Pass1(identity=bytes(identity), u=u, ut=ut)

    def respond(self, y: int) -> G1:
        """V = −(x·SEC + y·SEC) for the server's challenge y."""
        if self._used:
            raise MpinError(MpinErrorCode.USED, "this attempt already answered a challenge")
        self._used = True
        v = -(self._sec * self._x + self._sec * y)
        self._x = 0
        return v

    def one_pass(self, t: int, message: bytes = b"") -> OnePassProof:
        """Answer a self-made challenge y = H(t ‖ ID ‖ U ‖ UT ‖ message) mod r."""
        y = one_pass_challenge(self.pass1, t, message)
        return OnePassProof(pass1=self.pass1, v=self.respond(y), t=t)


def one_pass_challenge(pass1: Pass1, t: int, message: bytes = b"") -> int:
    """y for one-pass: SHA-512 over tag, t, ID, U, UT and message (length-prefixed), mod r."""
    return one_pass_challenge_of(pass1.identity, pass1.u.to_bytes(), pass1.ut.to_bytes() if pass1.ut else b"",
                                 t, message)


def one_pass_challenge_of(identity: bytes, u: bytes, ut: bytes, t: int, message: bytes = b"") -> int:
    """`one_pass_challenge` from the encoded U and UT (b"" for none) as they came, for a
    server that leaves decoding them to the worker that checks the proof (a point that
    does not decode fails there, as mpin-bad-point)."""
    h = hashlib.sha512(_ONE_PASS_TAG)
    h.update(int(t).to_bytes(8, "big", signed=True))
    for part in (identity, u, ut, message):
        h.update(len(part).to_bytes(4, "big") + part)
    return int.from_bytes(h.digest(), "big") % R


def verify_pass2(
    server_secret: G2,
    pass1: Pass1,
    y: int,
    v: G1,
    *,
    day: int | None = None,
    pa: G2 | None = None,
) -> bool:
    """The pairing check: e(V, Q or Pa)·e(P, SS) = 1, with P = y·A + U or the permit form.

    ``day`` given: permits are required (UT must be present). ``pa`` given: DVS, and
    ``pass1.identity`` must be the DVS identity ID ‖ Pa for that very Pa (mpin-bad-input
    otherwise). Raises `MpinError` with mpin-bad-point for an identity V, U or UT; returns
    False for a failed check.
    """
    _require_not_identity(v, "V")
    _require_not_identity(pass1.u, "U")
    if pa is not None:
        _require_not_identity(pa, "Pa")
        if not pass1.identity.endswith(pa.to_bytes()):
            raise MpinError(MpinErrorCode.BAD_INPUT, "the identity is not bound to the enrolled Pa")
    a = identity_point(pass1.identity)
    if day is None:
        p = a * y + pass1.u
    else:
        if pass1.ut is None:
            raise MpinError(MpinErrorCode.BAD_INPUT, "a time permit is required (no UT)")
        _require_not_identity(pass1.ut, "UT")
        p = (a + day_point(pass1.identity, day)) * y + pass1.ut
    return pairing_product_is_one(v, Q if pa is None else pa, p, server_secret)


class ReplayCache:
    """Seen one-pass proofs, forgotten once they are too old to pass the time check."""

    def __init__(self, max_skew: int) -> None:
        self.max_skew = max_skew
        self._seen: dict[bytes, int] = {}

    def check_and_add(self, key: bytes, now: int) -> None:
        for k in [k for k, until in self._seen.items() if until < now]:
            del self._seen[k]
        if key in self._seen:
            raise MpinError(MpinErrorCode.USED, "this one-pass proof was already presented")
        self._seen[key] = now + 2 * self.max_skew


def verify_one_pass(
    server_secret: G2,
    proof: OnePassProof,
    now: int,
    replay: ReplayCache,
    *,
    message: bytes = b"",
    day: int | None = None,
    pa: G2 | None = None,
) -> None:
    """Check a one-pass login; returns None if accepted, else raises `MpinError`.

    Order: time window (mpin-expired), replay (mpin-used, recorded even if the proof then
    fails, so a bad proof cannot be retried under the same U), then the pairing check.
    """
    if abs(now - proof.t) > replay.max_skew:
        raise MpinError(MpinErrorCode.EXPIRED, "one-pass timestamp outside the allowed skew")
    replay.check_and_add(proof.pass1.identity + b"\x00" + proof.pass1.u.to_bytes(), now)
    y = one_pass_challenge(proof.pass1, proof.t, message)
    if not verify_pass2(server_secret, proof.pass1, y, proof.v, day=day, pa=pa):
        raise MpinError(MpinErrorCode.BAD_PROOF, "the proof does not verify")
