"""Envelopes this node sent, until every recipient has acknowledged them or they expire.

Part of the envelope-router actor; plain data, no I/O (the actor persists entries in the
store, kv ``outbox/<seq>``, and does the network work). Gossip is best effort, so each
sent envelope stays here with the recipients that have not acknowledged it; `due` says
which deliveries to retry now (directly, over request/response: the response is the ack),
with a back-off per entry from `FIRST_RETRY_S` doubling to `MOST_RETRY_S`.

Entries stay after every ack until expiry, so a recipient that missed envelopes (a gap in
our sequence numbers, or a restart) can ask which ones we sent it (`sent_to`).
`FailingDeliveries` says when deliveries to a recipient have kept failing long enough to
warn about.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import attrs

FIRST_RETRY_S = 2.0
MOST_RETRY_S = 30.0
FAILING_REPORT_S = 30.0


@attrs.define
class Sent:
    seq: int
    cid: str
    to: tuple[str, ...]
    expires: int
    pending: set[str]
    next_try: float = 0.0  # trio time, not persisted: after a restart retries start at once
    backoff: float = FIRST_RETRY_S

    def to_doc(self) -> dict[str, Any]:
        return {"seq": self.seq, "cid": self.cid, "to": list(self.to), "expires": self.expires,
                "pending": sorted(self.pending)}

    @classmethod
    def from_doc(cls, doc: dict[str, Any]) -> Sent:
        return cls(doc["seq"], doc["cid"], tuple(doc["to"]), doc["expires"], set(doc["pending"]))


def outbox_key(seq: int) -> str:
    return f"{seq:016d}"  # sorted as text = sorted by seq


class Outbox:
    def __init__(self) -> None:
        self._by_seq: dict[int, Sent] = {}
        self._by_cid: dict[str, Sent] = {}

    def __len__(self) -> int:
        return len(self._by_seq)

    def pending(self) -> int:
        return sum(len(entry.pending) for entry in self._by_seq.values())

    def pending_for(self, recipient: str) -> int:
        return sum(recipient in entry.pending for entry in self._by_seq.values())

    def add(self, entry: Sent) -> None:
        self._by_seq[entry.seq] = entry
        self._by_cid[entry.cid] = entry

    def discard(self, entry: Sent) -> None:
        self._by_seq.pop(entry.seq, None)
        self._by_cid.pop(entry.cid, None)

    def get(self, cid: str) -> Sent | None:
        return self._by_cid.get(cid)

    def acknowledge(self, cid: str, recipient: str) -> Sent | None:
        """Mark ``recipient`` done for ``cid``; the entry if that changed it."""
        entry = self._by_cid.get(cid)
        if entry is None or recipient not in entry.pending:
            return None
        entry.pending.discard(recipient)
        return entry

    def due(self, now: float) -> Iterator[tuple[Sent, str]]:
        """(entry, recipient) pairs to try delivering now; each entry backs off once."""
        for entry in list(self._by_seq.values()):
            if entry.pending and entry.next_try <= now:
                entry.next_try = now + entry.backoff
                entry.backoff = min(entry.backoff * 2, MOST_RETRY_S)
                for recipient in sorted(entry.pending):
                    yield entry, recipient

    def expire(self, now_epoch: int) -> list[Sent]:
        """Drop and return the entries that expired (their unacknowledged recipients never got them)."""
        gone = [entry for entry in self._by_seq.values() if entry.expires <= now_epoch]
        for entry in gone:
            del self._by_seq[entry.seq]
            del self._by_cid[entry.cid]
        return gone

    def sent_to(self, recipient: str, since: int, limit: int) -> list[tuple[int, str]]:
        """(seq, cid) of the live envelopes to ``recipient`` with seq > ``since``, oldest first."""
        found = [(seq, entry.cid) for seq, entry in sorted(self._by_seq.items())
                 if seq > since and recipient in entry.to]
        return found[:limit]


class FailingDeliveries:
    """Failed direct deliveries per recipient, for one warning per `FAILING_REPORT_S` of
    failures. Every retry of every envelope to a member that is away fails, so a line per
    failure would flood the log; a failure now and then (a timeout under load) says nothing."""

    def __init__(self) -> None:
        self._failing: dict[str, tuple[float, int]] = {}  # recipient -> (first failure, failures)

    def failed(self, recipient: str, now: float) -> tuple[int, float] | None:
        """Count a failure; (failures, seconds) to report once they have lasted the period."""
        first, count = self._failing.get(recipient, (now, 0))
        if now - first >= FAILING_REPORT_S:
            del self._failing[recipient]
            return count + 1, now - first
        self._failing[recipient] = (first, count + 1)
        return None

    def delivered(self, recipient: str) -> None:
        self._failing.pop(recipient, None)
