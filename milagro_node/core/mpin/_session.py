"""The server's two-pass login session: every rule of its state machine is in this file.

Part of `milagro_node.core.mpin`; the diagram is in that package's docstring. The caller
passes ``now`` to every step; the session never reads a clock.
"""

from __future__ import annotations

import enum
import os

from milagro_node.adapters.pairing import G1, G2, random_scalar

from ._errors import MpinError, MpinErrorCode
from ._login import Pass1, verify_pass2
from ._points import RandBytes, _require_not_identity

__all__ = ["LoginSession", "SessionState"]


class SessionState(enum.StrEnum):
    CREATED = "created"
    CHALLENGED = "challenged"
    VERIFIED = "verified"
    FAILED = "failed"
    EXPIRED = "expired"


_TERMINAL = {SessionState.VERIFIED, SessionState.FAILED, SessionState.EXPIRED}


class LoginSession:
    """A server-side two-pass login: created by Pass1, challenged once, finished once.

    ``now`` and ``ttl`` are Unix seconds; ``day`` (permits required) and ``pa`` (DVS) are
    the server's own knowledge — the day from its clock, Pa from the enrolment record.
    """

    def __init__(
        self,
        server_secret: G2,
        pass1: Pass1,
        *,
        now: int | float,
        ttl: int | float,
        day: int | None = None,
        pa: G2 | None = None,
        randbytes: RandBytes = os.urandom,
    ) -> None:
        _require_not_identity(pass1.u, "U")
        if day is not None and pass1.ut is None:
            raise MpinError(MpinErrorCode.BAD_INPUT, "a time permit is required (no UT)")
        self._ss = server_secret
        self.pass1 = pass1
        self.deadline = now + ttl
        self.day = day
        self.pa = pa
        self._randbytes = randbytes
        self.y: int | None = None
        self.state = SessionState.CREATED

    def _expire_if_due(self, now: int | float) -> None:
        if self.state not in _TERMINAL and now > self.deadline:
            self.state = SessionState.EXPIRED
            raise MpinError(MpinErrorCode.EXPIRED, "the login session expired")

    def challenge(self, now: int | float) -> int:
        """Draw and return the challenge y (once)."""
        self._expire_if_due(now)
        if self.state is not SessionState.CREATED:
            raise MpinError(MpinErrorCode.BAD_STATE, f"cannot challenge a {self.state} session")
        self.y = random_scalar(self._randbytes)
        self.state = SessionState.CHALLENGED
        return self.y

    def finish(self, v: G1, now: int | float) -> None:
        """Check pass 2; returns None on success (VERIFIED), else raises `MpinError`."""
        if self.state in _TERMINAL:
            raise MpinError(MpinErrorCode.USED, f"the session is already {self.state}")
        self._expire_if_due(now)
        if self.state is not SessionState.CHALLENGED:
            raise MpinError(MpinErrorCode.BAD_STATE, "pass 2 before the challenge")
        assert self.y is not None
        try:
            ok = verify_pass2(self._ss, self.pass1, self.y, v, day=self.day, pa=self.pa)
        except MpinError:
            self.state = SessionState.FAILED
            raise
        if not ok:
            self.state = SessionState.FAILED
            raise MpinError(MpinErrorCode.BAD_PROOF, "the proof does not verify")
        self.state = SessionState.VERIFIED
