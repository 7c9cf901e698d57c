"""One-time login tickets and expiring sessions for the admin console (sans-IO).

    sessions = ConsoleSessions()
    ticket = sessions.issue_ticket(now)            # printed by `milagro-node console`
    session = sessions.redeem(ticket, now)         # the page trades it once for a session
    sessions.check(session, now)                   # on every admin call; SessionRefused when not

A ticket is good for one redemption within `ticket_seconds`; a session ends after
`idle_seconds` without use or `max_seconds` after it began, whichever is first. Only
SHA-256 digests of tickets and sessions are kept (a memory dump gives nothing to replay),
and they live in memory: a node restart ends every console session. `now` is any
monotonic clock in seconds (the gateway passes trio's).
"""

from __future__ import annotations

import hashlib
import secrets

import attrs

__all__ = ["ConsoleSessions", "SessionRefused"]

TICKET_PREFIX, SESSION_PREFIX = "mct_", "mcs_"


class SessionRefused(Exception):
    """A ticket or session that is unknown, used up or expired (`reason` says which)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@attrs.define
class _Live:
    started: float
    last_used: float


def _digest(token: str) -> bytes:
    return hashlib.sha256(token.encode("utf-8", "replace")).digest()


@attrs.define
class ConsoleSessions:
    ticket_seconds: float = 300.0
    idle_seconds: float = 1800.0
    max_seconds: float = 12 * 3600.0
    max_live: int = 256  # tickets + sessions; the oldest go first beyond this
    _tickets: dict[bytes, float] = attrs.field(factory=dict, init=False)  # digest -> expiry
    _sessions: dict[bytes, _Live] = attrs.field(factory=dict, init=False)

    def issue_ticket(self, now: float) -> str:
        self._forget_expired(now)
        ticket = TICKET_PREFIX + secrets.token_urlsafe(32)
        self._tickets[_digest(ticket)] = now + self.ticket_seconds
        self._bound(self._tickets)
        return ticket

    def redeem(self, ticket: object, now: float) -> str:
        """A new session for a ticket issued within `ticket_seconds` and not yet redeemed."""
        if not isinstance(ticket, str) or not ticket.startswith(TICKET_PREFIX):
            raise SessionRefused("not a console ticket")
        expiry = self._tickets.pop(_digest(ticket), None)  # popped: a ticket works once
        if expiry is None:
            raise SessionRefused("unknown or already used ticket")
        if now >= expiry:
            raise SessionRefused("expired ticket")
        session = SESSION_PREFIX + secrets.token_urlsafe(32)
        self._sessions[_digest(session)] = _Live(now, now)
        self._bound(self._sessions)
        return session

    def check(self, session: object, now: float, *, touch: bool = True) -> None:
        """Pass for a live session; raise SessionRefused if not. `touch`: count this as a use
        (resets the idle clock; pushing a view to an open page is not a use)."""
        if not isinstance(session, str) or not session.startswith(SESSION_PREFIX):
            raise SessionRefused("not a console session")
        key = _digest(session)
        live = self._sessions.get(key)
        if live is None:
            raise SessionRefused("unknown session")
        if self._expired(live, now):
            del self._sessions[key]
            raise SessionRefused("expired session")
        if touch:
            live.last_used = now

    def end(self, session: object) -> None:
        if isinstance(session, str):
            self._sessions.pop(_digest(session), None)

    def expires_in(self, session: str, now: float) -> float:
        live = self._sessions[_digest(session)]
        return max(0.0, min(live.last_used + self.idle_seconds, live.started + self.max_seconds) - now)

    @property
    def live_sessions(self) -> int:
        return len(self._sessions)

    def _expired(self, live: _Live, now: float) -> bool:
        return now >= live.last_used + self.idle_seconds or now >= live.started + self.max_seconds

    def _forget_expired(self, now: float) -> None:
        self._tickets = {k: v for k, v in self._tickets.items() if now < v}
        self._sessions = {k: v for k, v in self._sessions.items() if not self._expired(v, now)}

    def _bound(self, table: dict) -> None:
        while len(table) > self.max_live:
            del table[next(iter(table))]  # dicts keep insertion order: the oldest
