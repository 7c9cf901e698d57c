"""ReplayCache: which (sender, id) pairs were already opened, until they cannot be replayed.

Sans-IO: the caller passes ``now``, and persists `snapshot()` if replays across restarts
matter to it (`ReplayCache.restore` reads it back).

An entry is kept until ``until`` = the envelope's ``expires`` plus the clock-skew allowance:
after that the opener refuses the envelope as expired anyway, so forgetting it is safe.
Entries are keyed by sender *and* id, so no sender can burn another sender's ids.

An entry may also name the envelope (its CID) that was remembered. A node that remembers an
id when gossip validation passes, and then loses the envelope before keeping it (a library
queue that overflowed), can tell a re-delivery of those very bytes (`cid_of` matches: keep
it) from a replay or a second envelope under the same id (refuse it).

Bounded: at ``max_entries`` the cache first drops expired entries; if it is still full it
drops the entry that expires soonest and raises a *floor* to that entry's ``until``. From
then on any envelope whose ``until`` is at or below the floor is reported as a replay:
the cache can no longer prove it has not seen it, so it fails closed. Under normal load
(max_entries above the envelopes received per lifetime) the floor never rises above now
and costs nothing.
"""

from __future__ import annotations

import heapq

__all__ = ["ReplayCache"]


class ReplayCache:
    def __init__(self, max_entries: int = 100_000) -> None:
        if max_entries < 1:
            raise ValueError("max_entries must be >= 1")
        self.max_entries = max_entries
        self._until: dict[tuple[str, bytes], int] = {}
        self._cids: dict[tuple[str, bytes], str] = {}  # the envelope remembered, when given
        self._heap: list[tuple[int, str, bytes]] = []  # (until, sender, id): soonest first
        self._floor = -1

    def __len__(self) -> int:
        return len(self._until)

    @property
    def floor(self) -> int:
        """Envelopes valid only up to this time are refused as possible replays (-1: none)."""
        return self._floor

    def is_replay(self, sender: str, envelope_id: bytes, until: int, now: int) -> bool:
        """True if (sender, id) was remembered and has not expired, or is below the floor."""
        if until <= self._floor:
            return True
        seen = self._until.get((sender, envelope_id))
        return seen is not None and seen > now

    def cid_of(self, sender: str, envelope_id: bytes) -> str | None:
        """The CID remembered with (sender, id), if one was given and the entry is kept."""
        return self._cids.get((sender, envelope_id))

    def remember(self, sender: str, envelope_id: bytes, until: int, now: int, cid: str | None = None) -> None:
        """Record an opened envelope (and, if given, its CID) until ``until``."""
        key = (sender, envelope_id)
        if cid is not None and key not in self._cids:
            self._cids[key] = cid
        known = self._until.get(key)
        if known is not None and known >= until:
            return
        if known is None and len(self._until) >= self.max_entries:
            self._evict(now)
        self._until[key] = until
        heapq.heappush(self._heap, (until, sender, envelope_id))  # any older item goes stale

    def _evict(self, now: int) -> None:
        """Drop expired entries; if none expired, drop the soonest one and raise the floor."""
        while self._heap and self._heap[0][0] <= now:
            until, sender, envelope_id = heapq.heappop(self._heap)
            self._drop(sender, envelope_id, until)
        while len(self._until) >= self.max_entries and self._heap:
            until, sender, envelope_id = heapq.heappop(self._heap)
            if self._drop(sender, envelope_id, until):
                self._floor = max(self._floor, until)

    def _drop(self, sender: str, envelope_id: bytes, until: int) -> bool:
        # A heap item is stale if `remember` later extended the entry's time.
        key = (sender, envelope_id)
        if self._until.get(key) != until:
            return False
        del self._until[key]
        self._cids.pop(key, None)
        return True

    def snapshot(self) -> dict:
        """Plain data (str, bytes, int) to persist; `restore` reads it back."""
        return {
            "max_entries": self.max_entries,
            "floor": self._floor,
            "entries": [[*key, until] + ([self._cids[key]] if key in self._cids else [])
                        for key, until in self._until.items()],
        }

    @classmethod
    def restore(cls, state: dict, now: int) -> ReplayCache:
        """The cache `snapshot` saved (entries without a CID, as older snapshots have, too)."""
        cache = cls(state["max_entries"])
        cache._floor = state["floor"]
        for sender, envelope_id, until, *cid in state["entries"]:
            if until > now:
                cache.remember(sender, bytes(envelope_id), until, now, cid[0] if cid else None)
        return cache
