"""What the share dealer keeps in the store, and the two small rules it keeps in memory.

Part of the share-dealer actor (`actors.share_dealer`). Records are JSON (readable with
``sqlite3`` by an operator) and public: user IDs, grant CIDs, times and counts, never a
share. Keys are the SHA-256 of the user ID, so any 1..256-byte ID makes a key of one size.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable
from typing import Any

import attrs
import trio

# sha256(user ID) -> {user_id, grant, at[, device_key]}: one client share per ID
ENROLLED_NS = "dta-enrolled"
REVOKED_NS = "dta-revoked"  # sha256(user ID) -> {user_id, at}: no permits, no enrolment
STATS_NS, STATS_KEY = "dta-stats", "counters"  # {issued: {...}, mfa_served: [...]}
ISSUED_KINDS = ("client-share", "time-permit", "server-share")


def user_key(user_id: str) -> str:
    return hashlib.sha256(user_id.encode("utf-8")).hexdigest()


def user_record(user_id: str, **fields: Any) -> bytes:
    return json.dumps({"user_id": user_id, "at": int(time.time()), **fields}, sort_keys=True).encode()


def user_of(value: bytes) -> str:
    return json.loads(value)["user_id"]


def device_field(device_key: bytes | None) -> dict[str, str]:
    """An enrolment record's ``device_key`` (hex of a DVS device's Pa), absent for a plain one."""
    return {} if device_key is None else {"device_key": device_key.hex()}


def device_key_of(record: bytes) -> bytes | None:
    """The DVS device key an enrolment record names (its permits are for ID ‖ Pa), or None."""
    key = json.loads(record).get("device_key")
    return None if key is None else bytes.fromhex(key)


@attrs.frozen
class Stats:
    """Shares issued since the data dir was made, and the MFA nodes served.

    Kept in memory and written (the whole small document) with every issuance, under the
    actor's write lock, so the store always holds the count of what was handed out.
    """

    issued: dict[str, int] = attrs.field(factory=lambda: dict.fromkeys(ISSUED_KINDS, 0))
    mfa_served: frozenset[str] = frozenset()

    @classmethod
    def decode(cls, value: bytes | None) -> Stats:
        if value is None:
            return cls()
        doc = json.loads(value)
        issued = doc.get("issued", {})
        return cls({k: int(issued.get(k, 0)) for k in ISSUED_KINDS}, frozenset(doc.get("mfa_served", ())))

    def encode(self) -> bytes:
        return json.dumps({"issued": self.issued, "mfa_served": sorted(self.mfa_served)}, sort_keys=True).encode()

    def counted(self, kind: str, to: str | None = None) -> Stats:
        served = self.mfa_served | {to} if to is not None else self.mfa_served
        return Stats({**self.issued, kind: self.issued[kind] + 1}, served)


class Throttle:
    """At most one answer per requester per `every` seconds.

    MFA nodes re-send their share requests until they hold every share (gossip is best
    effort); answering each copy would let one requester keep this node signing envelopes.
    """

    MAX_TRACKED = 1024

    def __init__(self, every: float, clock: Callable[[], float] = trio.current_time) -> None:
        self._every = every
        self._clock = clock
        self._last: dict[str, float] = {}

    def allow(self, requester: str) -> bool:
        now = self._clock()
        last = self._last.get(requester)
        if last is not None and now - last < self._every:
            return False
        if len(self._last) >= self.MAX_TRACKED:
            self._last = {k: t for k, t in self._last.items() if now - t < self._every}
        self._last[requester] = now
        return True
