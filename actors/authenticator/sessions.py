"""Open two-pass login sessions, finished ones, and the one-pass replay window.

Part of the authenticator actor. Sans-IO: the caller passes ``now`` (Unix seconds).

A session is the core's `mpin.LoginSession` (created at pass 1 and challenged at once),
kept under a random id (`secrets.token_urlsafe(16)`, 128 bits) with the user ID and
client address. Pass 2 *takes* it out of the open table before its pairing check runs in a
worker (`take`), marking it finished at once, so two concurrent pass 2s with the same id
cannot both be checked: the second one gets ``mpin-used``. The core's rules apply in the
order the core checks them (`claim`): a finished session is ``mpin-used`` — even after its
deadline — then a late one ``mpin-expired``.

Bounds: at most `MAX_OPEN` open sessions (``mfa-busy`` beyond, after dropping the expired
ones). Expired open sessions stay a grace period (one ``session_seconds``) so a late pass 2
hears ``mpin-expired``; finished ids are remembered as long, so a replayed pass 2 hears
``mpin-used``; after that both are ``mfa-no-session``. Both tables are insertion-ordered
and their forget times grow with insertion, so pruning only looks at their oldest entries.

The one-pass `ReplayWindow` has the core `mpin.ReplayCache`'s contract and key (ID ‖ 0 ‖ U,
kept for twice the allowed skew) with pruning in O(1) per login instead of a scan of the
whole cache. It lives as long as the actor: a restart forgets it, and then a proof seen
just before the restart could be presented once more within its time window (at most
``2 · one_pass_skew`` seconds); the window bounds that risk.

`permit_day` decides which day's time permit a login is checked against: the day the
client states (the one it fetched its permit for), if it is ours give or take
`PERMIT_GRACE_S`, so that a login begun just before midnight (UTC) is not refused — and
counted as a wrong PIN — for finishing just after it.
"""

from __future__ import annotations

import collections
import secrets
from typing import TYPE_CHECKING

import attrs

from milagro_node.core import mpin

from ..mailbox import ActorError

if TYPE_CHECKING:
    from .devices import Device

__all__ = ["MAX_OPEN", "PERMIT_GRACE_S", "Pending", "ReplayWindow", "SessionTable", "claim", "permit_day"]

MAX_OPEN = 10_000
PERMIT_GRACE_S = 60  # around midnight, the day before (or after) is also taken


def permit_day(stated: int | None, now: float) -> int:
    """The day to check a login's time permit against (``mfa-wrong-day`` if `stated` is not
    today, or a neighbour within `PERMIT_GRACE_S`); today when the client states none."""
    today = mpin.day_of(now)
    if stated is None or stated == today:
        return today
    if stated in (mpin.day_of(now - PERMIT_GRACE_S), mpin.day_of(now + PERMIT_GRACE_S)):
        return stated
    raise ActorError("mfa-wrong-day", f"the time permit is for day {stated}; this MFA node takes day {today} "
                     f"(and around midnight the day before or after, for {PERMIT_GRACE_S} s)")


@attrs.define
class Pending:
    login: mpin.LoginSession
    user_id: str
    remote: str
    session_id: str = ""
    device: Device | None = None  # a DVS login's device key


def claim(login: mpin.LoginSession, now: float) -> int:
    """The core session's pass-2 rules without its pairing check (that runs in a worker):
    raise `mpin.MpinError` (used, expired, bad-state), else mark it finished (FAILED until
    the caller knows better) and return its challenge y."""
    if login.state in (mpin.SessionState.VERIFIED, mpin.SessionState.FAILED, mpin.SessionState.EXPIRED):
        raise mpin.MpinError(mpin.MpinErrorCode.USED, f"the session is already {login.state}")
    if now > login.deadline:
        login.state = mpin.SessionState.EXPIRED
        raise mpin.MpinError(mpin.MpinErrorCode.EXPIRED, "the login session expired")
    if login.state is not mpin.SessionState.CHALLENGED or login.y is None:
        raise mpin.MpinError(mpin.MpinErrorCode.BAD_STATE, "pass 2 before the challenge")
    login.state = mpin.SessionState.FAILED
    return login.y


class SessionTable:
    def __init__(self, ttl: float, *, max_open: int = MAX_OPEN) -> None:
        self.ttl = ttl
        self.max_open = max_open
        self._open: dict[str, Pending] = {}
        self._finished: dict[str, tuple[float, str]] = {}  # id -> (forget at, user ID)

    def __len__(self) -> int:
        return len(self._open)

    def add(self, pending: Pending, now: float) -> str:
        """Keep an open session; return its new id. ``mfa-busy`` when the table is full."""
        self.prune(now)
        if len(self._open) >= self.max_open:
            self.prune(now, grace=0)
            if len(self._open) >= self.max_open:
                raise ActorError("mfa-busy", f"too many open login sessions ({self.max_open}); try again shortly")
        session_id = secrets.token_urlsafe(16)
        pending.session_id = session_id
        self._open[session_id] = pending
        return session_id

    def take(self, session_id: str, now: float) -> Pending:
        """Remove an open session for its pass 2 and remember its id as finished.

        Raises `mpin.MpinError` ``mpin-used`` for a finished id (its ``.user_id`` attribute
        names the user), ``ActorError("mfa-no-session")`` for an unknown or forgotten one."""
        self.prune(now)
        finished = self._finished.get(session_id)
        if finished is not None:
            error = mpin.MpinError(mpin.MpinErrorCode.USED, "this login session is already finished")
            error.user_id = finished[1]  # type: ignore[attr-defined]
            raise error
        pending = self._open.pop(session_id, None)
        if pending is None:
            raise ActorError("mfa-no-session", "no such login session (unknown, or expired long ago): start again")
        self._finished[session_id] = (now + 2 * self.ttl, pending.user_id)
        return pending

    def prune(self, now: float, *, grace: float | None = None) -> None:
        """Forget open sessions past their deadline plus `grace` (default: one ttl), and
        finished ids past their time."""
        grace = self.ttl if grace is None else grace
        while self._open:
            session_id, pending = next(iter(self._open.items()))
            if now <= pending.login.deadline + grace:
                break
            del self._open[session_id]
        while self._finished:
            session_id, (forget_at, _) = next(iter(self._finished.items()))
            if now <= forget_at:
                break
            del self._finished[session_id]


class ReplayWindow(mpin.ReplayCache):
    """`mpin.ReplayCache` with pruning from the oldest end (entries expire in insertion order)."""

    def __init__(self, max_skew: int) -> None:
        super().__init__(max_skew)
        self._order: collections.deque[tuple[float, bytes]] = collections.deque()

    def __len__(self) -> int:
        return len(self._seen)

    def check_and_add(self, key: bytes, now: int | float) -> None:
        while self._order and self._order[0][0] < now:
            until, old = self._order.popleft()
            if self._seen.get(old) == until:
                del self._seen[old]
        if key in self._seen:
            raise mpin.MpinError(mpin.MpinErrorCode.USED, "this one-pass proof was already presented")
        until = now + 2 * self.max_skew
        self._seen[key] = until
        self._order.append((until, key))
