"""Mailboxes: how actors talk to each other inside one node process.

Every actor owns one bounded mailbox (a trio memory channel, so a busy actor
pushes back on its callers instead of queueing without end). A *request* is a
frozen attrs message wrapped in a `Call` that carries its absolute deadline and
the task awaiting the reply; the caller waits for exactly one reply or the deadline.

Replies are either a value or a `Failure`; callers see a `Failure` as an
`ActorError`, whose `code` is one of the codes listed in docs/errors.md. An
actor that cannot serve a request for a reason its caller should know raises
`ActorError` from its handler: the caller gets the error and the actor goes
on. Any other exception is a crash: the supervisor answers the request that
was in flight with ``actor-crashed`` and restarts the actor.

Who calls this: actors (through `ActorContext`), the supervisor, and tests.
"""

from __future__ import annotations

import heapq
import itertools
import math
from typing import Any

import attrs
import outcome
import trio


class ActorError(Exception):
    """A request could not be served. `code` is stable; `message` is for humans.

    Messages never contain secret values: they name what was wrong, not the data.
    """

    def __init__(self, code: str, message: str) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message


@attrs.frozen
class Failure:
    """The error reply to a request (carried back over its reply channel)."""

    code: str
    message: str


class Call:
    """A request in a mailbox: the message, its deadline, and where its reply goes.

    Replying wakes the waiting caller directly (no channel per request: a round
    trip is most of an actor's overhead on fast operations). Only the first
    reply counts. A reply that comes before the caller is parked is kept for
    it; a caller that gave up has abandoned the call and later replies are dropped.
    """

    __slots__ = ("request", "deadline", "_waiter", "_result", "_done")

    def __init__(self, request: Any, deadline: float) -> None:
        self.request = request
        self.deadline = deadline
        self._waiter: trio.lowlevel.Task | None = None
        self._result: Any = None
        self._done = False

    def expired(self) -> bool:
        return trio.current_time() >= self.deadline

    def reply(self, value: Any) -> None:
        if self._done:
            return
        self._done = True
        if self._waiter is None:
            self._result = value
        else:
            waiter, self._waiter = self._waiter, None
            trio.lowlevel.reschedule(waiter, outcome.Value(value))

    def fail(self, code: str, message: str) -> None:
        if not self._done:  # called for every call of a finished batch: stay cheap
            self.reply(Failure(code, message))

    def time_out(self) -> None:
        """The deadline passed: wake the caller with `TIMED_OUT` (unless already replied)."""
        self.reply(TIMED_OUT)

    async def wait(self) -> Any:
        if self._done:
            return self._result

        def abort(_: Any) -> trio.lowlevel.Abort:
            self._waiter, self._done = None, True  # cancelled: drop any later reply
            return trio.lowlevel.Abort.SUCCEEDED

        self._waiter = trio.lowlevel.current_task()
        return await trio.lowlevel.wait_task_rescheduled(abort)


class Mailbox:
    """The bounded inbox of one named actor.

    The supervisor creates it once and keeps it across restarts of the actor,
    so requests queued while an actor restarts are served by its next life.
    """

    def __init__(self, owner: str, size: int) -> None:
        self.owner = owner
        self._send, self._receive = trio.open_memory_channel[Call](size)

    @property
    def inbox(self) -> trio.MemoryReceiveChannel[Call]:
        return self._receive

    def pending(self) -> int:
        return self._send.statistics().current_buffer_used

    async def ask(self, request: Any, *, timeout: float) -> Any:
        """Send `request` and wait for its reply; raise `ActorError` on failure.

        Waiting for room in a full mailbox counts against the same deadline.
        """
        deadline = trio.current_time() + timeout
        call = Call(request, deadline)
        try:
            # The fast path skips send()'s extra trip through the scheduler;
            # waiting for the reply below is this call's checkpoint.
            self._send.send_nowait(call)
        except trio.WouldBlock:
            with trio.move_on_at(deadline) as waiting:
                await self._send.send(call)
            if waiting.cancelled_caught:
                raise self._timed_out(request, timeout) from None
        _Deadlines.of_this_run().watch(call)
        result = await call.wait()
        if type(result) is Failure:
            if result is TIMED_OUT:
                raise self._timed_out(request, timeout)
            raise ActorError(result.code, result.message)
        return result

    def _timed_out(self, request: Any, timeout: float) -> ActorError:
        return ActorError(
            "deadline-exceeded",
            f"{self.owner} did not answer {type(request).__name__} within {timeout:g}s",
        )

    async def tell(self, message: Any) -> None:
        """Send a message that wants no reply (waits for room, never forever)."""
        await self._send.send(Call(message, math.inf))


TIMED_OUT = Failure("deadline-exceeded", "the caller's deadline passed")


class _Deadlines:
    """Wakes callers whose deadline passed, from one system task per trio run.

    An ask could bound its wait with a cancel scope of its own, but entering and
    leaving one (trio re-registers its deadline each time) cost more than the whole
    rest of a round trip; one watcher with a heap of calls costs a push per ask.
    Replied calls are not removed: they are skipped when they reach the top, and the
    heap is compacted whenever it has doubled, so it holds about the calls in flight.
    """

    def __init__(self) -> None:
        self._heap: list[tuple[float, int, Call]] = []
        self._order = itertools.count()  # ties broken by arrival, never by comparing calls
        self._compact_at = 1024
        self._sleep = trio.CancelScope()  # the watcher's wait for the earliest deadline

    @classmethod
    def of_this_run(cls) -> _Deadlines:
        try:
            return _DEADLINES.get()
        except LookupError:
            watcher = cls()
            _DEADLINES.set(watcher)
            trio.lowlevel.spawn_system_task(watcher._watch, name="mailbox-deadlines")
            return watcher

    def watch(self, call: Call) -> None:
        heap = self._heap
        heapq.heappush(heap, (call.deadline, next(self._order), call))
        while heap[0][2]._done:  # replied calls at the top: drop them now
            heapq.heappop(heap)
            if not heap:
                return
        if len(heap) > self._compact_at:
            self._heap = heap = [entry for entry in heap if not entry[2]._done]
            heapq.heapify(heap)
            self._compact_at = max(1024, 2 * len(heap))
        if heap[0][0] < self._sleep.deadline:
            self._sleep.deadline = heap[0][0]  # rare: calls share a timeout, so mostly in order

    async def _watch(self) -> None:
        while True:
            heap, now = self._heap, trio.current_time()
            while heap and (heap[0][2]._done or heap[0][0] <= now):
                heapq.heappop(heap)[2].time_out()
            self._sleep = trio.CancelScope(deadline=heap[0][0] if heap else math.inf)
            with self._sleep:
                await trio.sleep_forever()


_DEADLINES: trio.lowlevel.RunVar[_Deadlines] = trio.lowlevel.RunVar("mailbox_deadlines")
