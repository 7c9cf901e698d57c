"""LogBook: identity logs assembled from events that arrive one by one, in any order.

Theory of operation
-------------------
Gossip delivers events late, twice, out of order, or not at all, and a hostile peer may send
anything. The book holds three kinds of things:

- **logs**: per identity, the verified chain from its inception, plus the state after each
  event (so a late second event at an old sequence number can be judged against its own
  predecessor);
- **pending events**: events already checked on their own (form and signature) whose `prev`
  is not here yet, filed under that missing CID. When the event with that CID is accepted,
  the events waiting for it are placed in turn, and so on down the chain. The caller learns
  the missing CID from the `Pending` outcome (and `missing()`), so it can fetch it by CID;
- **receipts**, filed under the event they witness, verified before they are kept.

`add_event(bytes)` returns a list of outcomes: first the one for the event given, then one for
each pending event it released, in the order they were placed. An outcome is a value:

- `Accepted(event, state)`: the event extends its log; ``state`` is the new head state;
- `Pending(event, missing)`: kept until the event with CID ``missing`` arrives;
- `AlreadyKnown(cid)`: delivered before (accepted or pending); nothing changed;
- `Duplicity(identity, seq, first, second)`: a second *valid* event at a sequence number
  already taken. Both are signed by the key that was entitled to sign: the controller (or a
  thief of its pre-committed key) signed two histories. The book does not pick one: the
  identity is marked forked and never resolves again (`resolve` raises "duplicity"), and
  every later event of it is answered with the same report;
- `Rejected(cid, code, message)`: a released pending event broke a chain rule.

An invalid event given to `add_event` raises IdentityError (the caller may penalise the peer
that sent it); a pending event that turns out invalid when its predecessor arrives is reported
as `Rejected`, because it was not part of what the caller just handed in.

A book cannot tell an event whose `prev` is missing from one whose `prev` is wrong until the
`prev` arrives, so both wait. Anyone can make such events, so waiting is bounded: beyond
``max_pending`` events the oldest pending one is dropped (gossip is best effort anyway; the
caller re-fetches what is still missing). Receipts of events the book does not hold are
bounded the same way.

Which identities to track is the caller's policy (the pki resolver keeps federation members
from peers.toml and identities it was asked to resolve); the book keeps what it is given.
"""

from __future__ import annotations

from collections import OrderedDict

import attrs

from ._chain import MAX_LOG_EVENTS, IdentityState, extend, start
from ._errors import IdentityError
from ._events import Event, parse_event
from ._receipts import Receipt, parse_receipt, verify_receipt

__all__ = ["Accepted", "AlreadyKnown", "Duplicity", "LogBook", "Outcome", "Pending", "Rejected"]


@attrs.frozen
class Accepted:
    event: Event
    state: IdentityState


@attrs.frozen
class Pending:
    event: Event
    missing: str  # CID of the event this one follows; fetch it


@attrs.frozen
class AlreadyKnown:
    cid: str


@attrs.frozen
class Duplicity:
    """Proof that ``identity`` forked: two valid events at ``seq``.

    ``first`` is the event the book accepted first. ``evidence`` holds both events' bytes, so
    the report can be passed on and checked by anyone holding the log up to ``seq - 1``.
    """

    identity: str
    seq: int
    first: str
    second: str
    evidence: tuple[bytes, bytes] = attrs.field(repr=False)


@attrs.frozen
class Rejected:
    cid: str
    code: str
    message: str


Outcome = Accepted | Pending | AlreadyKnown | Duplicity | Rejected


@attrs.define
class _Log:
    events: list[Event]  # events[n] has seq n
    states: list[IdentityState]  # states[n]: the state after events[n]
    seq_of: dict[str, int]  # event CID -> seq
    duplicity: Duplicity | None = None


class LogBook:
    """Verified identity logs of many identities, fed one event (or receipt) at a time."""

    def __init__(
        self,
        *,
        max_pending: int = 256,
        max_unmatched_receipts: int = 1024,
        max_receipts_per_event: int = 64,
        max_log_events: int = MAX_LOG_EVENTS,
    ) -> None:
        self.max_pending = max_pending
        self.max_unmatched_receipts = max_unmatched_receipts
        self.max_receipts_per_event = max_receipts_per_event
        self.max_log_events = max_log_events
        self._logs: dict[str, _Log] = {}
        self._owner: dict[str, str] = {}  # accepted event CID -> its identity
        self._waiting: dict[str, dict[str, Event]] = {}  # missing CID -> {cid: pending event}
        self._pending_order: OrderedDict[str, str] = OrderedDict()  # pending cid -> missing, oldest first
        self._receipts: dict[str, dict[str, Receipt]] = {}  # event CID -> signer -> receipt
        self._unmatched: OrderedDict[tuple[str, str], None] = OrderedDict()  # (event, signer)

    # --- events ------------------------------------------------------------------------------

    def add_event(self, data: bytes) -> list[Outcome]:
        """Take one event from anywhere; see the module docstring for the outcomes."""
        outcomes: list[Outcome] = [self._place(parse_event(data))]
        for outcome in outcomes:  # grows while we iterate: each acceptance may release more
            if isinstance(outcome, Accepted):
                for event in self._release(outcome.event.cid):
                    try:
                        outcomes.append(self._place(event))
                    except IdentityError as exc:
                        outcomes.append(Rejected(event.cid, exc.code, exc.message))
        return outcomes

    def _place(self, event: Event) -> Outcome:
        if event.cid in self._owner or event.cid in self._pending_order:
            return AlreadyKnown(event.cid)
        if event.type == "inception":
            state = start(event)
            self._logs[event.cid] = _Log([event], [state], {event.cid: 0})
            self._accepted(event)
            return Accepted(event, state)
        log = self._logs.get(event.identity)
        if log is not None and log.duplicity is not None:
            return log.duplicity
        base_seq = None if log is None else log.seq_of.get(event.prev)
        if log is None or base_seq is None:
            if event.prev in self._owner:  # an accepted event, but of another identity
                raise IdentityError("broken-chain", f"{event.cid} links to an event of another identity")
            self._park(event)
            return Pending(event, event.prev)
        state = extend(log.states[base_seq], event)
        if base_seq < len(log.events) - 1:
            # Valid against an event that already has a successor: a fork.
            first = log.events[event.seq]
            log.duplicity = Duplicity(
                event.identity, event.seq, first.cid, event.cid, (first.bytes, event.bytes)
            )
            return log.duplicity
        if len(log.events) >= self.max_log_events:
            raise IdentityError("too-large", f"log of {event.identity} reached {self.max_log_events} events")
        log.events.append(event)
        log.states.append(state)
        log.seq_of[event.cid] = event.seq
        self._accepted(event)
        return Accepted(event, state)

    def _accepted(self, event: Event) -> None:
        self._owner[event.cid] = event.identity
        for signer in self._receipts.get(event.cid, {}):
            self._unmatched.pop((event.cid, signer), None)

    def _park(self, event: Event) -> None:
        assert event.prev is not None
        while len(self._pending_order) >= self.max_pending:
            cid, missing = self._pending_order.popitem(last=False)
            self._drop_waiting(missing, cid)
        self._waiting.setdefault(event.prev, {})[event.cid] = event
        self._pending_order[event.cid] = event.prev

    def _release(self, cid: str) -> list[Event]:
        waiting = self._waiting.pop(cid, {})
        for pending_cid in waiting:
            del self._pending_order[pending_cid]
        return [waiting[key] for key in sorted(waiting)]  # a fixed order: results reproduce

    def _drop_waiting(self, missing: str, cid: str) -> None:
        bucket = self._waiting[missing]
        del bucket[cid]
        if not bucket:
            del self._waiting[missing]

    # --- receipts ------------------------------------------------------------------------------

    def add_receipt(self, data: bytes, signer_key: bytes | None = None) -> Receipt:
        """Verify and keep a receipt; return it (or the one kept earlier from the same signer).

        ``signer_key`` is the witness's current signing key; if None, the book's own verified
        log of the signer supplies it (so the signer must resolve: known, not forked, not
        revoked).
        """
        receipt = parse_receipt(data)
        if signer_key is None:
            signer_key = self.resolve(receipt.signer).sign_key
        verify_receipt(receipt, signer_key)
        kept = self._receipts.setdefault(receipt.event, {})
        if receipt.signer in kept:
            return kept[receipt.signer]
        if len(kept) >= self.max_receipts_per_event:
            raise IdentityError("too-large", f"{receipt.event} already has {len(kept)} receipts")
        if receipt.event not in self._owner:
            # Receipts of events we do not hold are bounded: anyone can receipt any CID.
            while len(self._unmatched) >= self.max_unmatched_receipts:
                (event_cid, signer), _ = self._unmatched.popitem(last=False)
                del self._receipts[event_cid][signer]
                if not self._receipts[event_cid]:
                    del self._receipts[event_cid]
            kept = self._receipts.setdefault(receipt.event, {})
            self._unmatched[(receipt.event, receipt.signer)] = None
        kept[receipt.signer] = receipt
        return receipt

    def receipts(self, event_cid: str) -> tuple[Receipt, ...]:
        """Verified receipts of an event, one per witness, ordered by witness identity."""
        kept = self._receipts.get(event_cid, {})
        return tuple(kept[signer] for signer in sorted(kept))

    # --- queries -------------------------------------------------------------------------------

    def resolve(self, identity: str) -> IdentityState:
        """The state to *use* (encrypt to, verify signatures of); refuses what must not be used."""
        log = self._logs.get(identity)
        if log is None:
            raise IdentityError("unknown-identity", f"no verified log of {identity}")
        if log.duplicity is not None:
            raise IdentityError("duplicity", f"{identity} forked at seq {log.duplicity.seq}")
        state = log.states[-1]
        if state.revoked:
            raise IdentityError("revoked", f"{identity} was revoked at seq {state.seq}")
        return state

    def state(self, identity: str) -> IdentityState | None:
        """The head state of a known log, revoked or forked included (for display)."""
        log = self._logs.get(identity)
        return None if log is None else log.states[-1]

    def duplicity(self, identity: str) -> Duplicity | None:
        log = self._logs.get(identity)
        return None if log is None else log.duplicity

    def log(self, identity: str) -> tuple[Event, ...]:
        """The verified chain, inception first: ``[e.bytes for e in ...]`` passes `verify_log`."""
        log = self._logs.get(identity)
        return () if log is None else tuple(log.events)

    def missing(self) -> frozenset[str]:
        """CIDs that pending events wait for: worth fetching over request/response."""
        return frozenset(self._waiting)

    def identities(self) -> frozenset[str]:
        return frozenset(self._logs)
