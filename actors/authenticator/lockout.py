"""Wrong-PIN counting and lockout per user ID, and the gate that keeps guesses within it.

Part of the authenticator actor (see its package docstring). Sans-IO apart from the gate:
the caller passes ``now`` (Unix seconds) and persists what `Lockout` tells it to.

Policy (``[mfa]`` in node.toml): each failed pairing check counts one failure; at
``max_failures`` the user is locked for ``lockout_seconds`` (0: until an admin unlocks,
`UNTIL_ADMIN`). A lockout that has run out clears the count; a successful login resets it.
The count is kept per user ID in store kv ``mfa-failures`` under `user_key` (the SHA-256 of
the ID, so any ID makes a valid key) as JSON ``{user_id, failures, locked_until}``:
``locked_until`` is null while not locked, else the Unix time it ends, or 0 for "until an
admin unlocks". The actor is the only writer, so the in-memory table is the truth and the
store is its durable copy, loaded at start.

The gate. The pairing check runs in worker processes, so several attempts of one user can
be in flight at once; without a gate, an attacker with k open sessions could have k guesses
checked before the first failure is counted. `AttemptGate` lets at most as many attempts
of a user in flight as it has failures left (always at least one, which then sees the lock),
so no more than ``max_failures`` guesses are ever checked before a lockout.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import AsyncIterator, Callable, Iterable
from contextlib import asynccontextmanager

import attrs
import trio

__all__ = ["NAMESPACE", "UNTIL_ADMIN", "AttemptGate", "FailureRecord", "Lockout", "user_key"]

NAMESPACE = "mfa-failures"
UNTIL_ADMIN = 0


def user_key(user_id: str) -> str:
    """The store key of a user ID: SHA-256 of its UTF-8, in hex."""
    return hashlib.sha256(user_id.encode("utf-8", "surrogatepass")).hexdigest()


@attrs.define
class FailureRecord:
    user_id: str
    failures: int = 0
    locked_until: int | None = None  # None: not locked; UNTIL_ADMIN; else Unix seconds

    def to_json(self) -> bytes:
        return json.dumps({"user_id": self.user_id, "failures": self.failures,
                           "locked_until": self.locked_until}).encode()

    @classmethod
    def from_json(cls, data: bytes) -> FailureRecord:
        doc = json.loads(data)
        until = doc.get("locked_until")
        return cls(str(doc["user_id"]), int(doc["failures"]), None if until is None else int(until))

    def locked_at(self, now: float) -> bool:
        """Locked at `now` (a run-out lockout is not: `Lockout.check` clears it)."""
        return self.locked_until is not None and (self.locked_until == UNTIL_ADMIN or now < self.locked_until)

    @property
    def until(self) -> int | None:
        """When the lockout ends, for humans: None means until an admin unlocks."""
        return None if self.locked_until == UNTIL_ADMIN else self.locked_until


class Lockout:
    """The failure table: who failed how often, who is locked until when."""

    def __init__(self, max_failures: int, lockout_seconds: int) -> None:
        if max_failures < 1 or lockout_seconds < 0:
            raise ValueError("max_failures >= 1 and lockout_seconds >= 0")
        self.max_failures = max_failures
        self.lockout_seconds = lockout_seconds
        self._records: dict[str, FailureRecord] = {}

    def load(self, items: Iterable[tuple[str, bytes]]) -> list[str]:
        """Fill the table from the store's (key, value) pairs; return the keys of records
        that do not parse (the caller deletes them)."""
        bad = []
        for key, value in items:
            try:
                record = FailureRecord.from_json(value)
            except (ValueError, KeyError, TypeError):
                bad.append(key)
                continue
            self._records[key] = record
        return bad

    def check(self, user_id: str, now: float) -> tuple[FailureRecord | None, bool]:
        """(the record if the user is locked now, else None; whether a run-out lockout was
        just cleared — the caller then deletes the stored record)."""
        key = user_key(user_id)
        record = self._records.get(key)
        if record is None or record.locked_until is None:
            return None, False
        if record.locked_at(now):
            return record, False
        del self._records[key]  # the lockout has run out: the count starts again
        return None, True

    def left(self, user_id: str) -> int:
        """Failures left before a lockout (0 when locked)."""
        record = self._records.get(user_key(user_id))
        if record is None:
            return self.max_failures
        if record.locked_until is not None:
            return 0
        return max(self.max_failures - record.failures, 0)

    def fail(self, user_id: str, now: float) -> FailureRecord:
        """Count one failure; lock at max_failures. Returns a copy of the record as it is
        now, to persist and to answer with (the table's own may change meanwhile)."""
        key = user_key(user_id)
        record = self._records.setdefault(key, FailureRecord(user_id))
        record.failures += 1
        if record.failures >= self.max_failures and record.locked_until is None:
            record.locked_until = UNTIL_ADMIN if self.lockout_seconds == 0 else int(now) + self.lockout_seconds
        return attrs.evolve(record)

    def succeed(self, user_id: str) -> bool:
        """Reset the count after a success; True if there was a record to delete."""
        return self._records.pop(user_key(user_id), None) is not None

    def unlock(self, user_id: str) -> FailureRecord | None:
        """Forget the user's failures and lockout (admin); the record it had, if any."""
        return self._records.pop(user_key(user_id), None)

    def locked(self, now: float) -> list[FailureRecord]:
        """Every record locked at `now`, by user ID."""
        return sorted((r for r in self._records.values() if r.locked_at(now)), key=lambda r: r.user_id)


class AttemptGate:
    """At most ``allowed(user_id)`` attempts of one user in flight (at least one)."""

    def __init__(self, allowed: Callable[[str], int]) -> None:
        self._allowed = allowed
        self._in_flight: dict[str, int] = {}
        self._wakeups: dict[str, trio.Event] = {}

    def in_flight(self, user_id: str) -> int:
        return self._in_flight.get(user_id, 0)

    @asynccontextmanager
    async def attempt(self, user_id: str) -> AsyncIterator[None]:
        while True:
            n = self._in_flight.get(user_id, 0)
            if n == 0 or n < self._allowed(user_id):
                break
            wakeup = self._wakeups.get(user_id)
            if wakeup is None:
                wakeup = self._wakeups[user_id] = trio.Event()
            await wakeup.wait()
        self._in_flight[user_id] = n + 1
        try:
            yield
        finally:
            n = self._in_flight.pop(user_id) - 1
            if n:
                self._in_flight[user_id] = n
            wakeup = self._wakeups.pop(user_id, None)
            if wakeup is not None:
                wakeup.set()
