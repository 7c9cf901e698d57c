"""One long-lived OS thread that runs blocking calls for a trio task, in order.

Some libraries must only ever be called from one thread (two threads calling
SoftHSM at once crashed the process), and their calls block: `DedicatedThread`
runs each call there and wakes the awaiting task when it returns, so the trio
loop keeps running meanwhile.

Cancellation: the awaiting task may give up (its deadline passed); the call
still finishes in the thread and its result is dropped. `running_for` tells
how long the current call has run, so an owner can refuse new work while a
device hangs instead of queueing behind it.
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Callable
from typing import Any

import outcome
import trio


class DedicatedThread:
    def __init__(self, name: str) -> None:
        self.name = name
        self._jobs: queue.SimpleQueue[Callable[[], None] | None] = queue.SimpleQueue()
        self._started_at: float | None = None  # monotonic start of the running call
        # Each written by one thread only: equal when nothing is queued or running.
        self._submitted = 0
        self._finished = 0
        self._thread = threading.Thread(target=self._loop, name=name, daemon=True)
        self._thread.start()

    def running_for(self) -> float:
        """Seconds the current call has been running (0 when idle)."""
        started = self._started_at
        return 0.0 if started is None else time.monotonic() - started

    def idle(self) -> bool:
        """Nothing queued or running: a call made now from the trio thread instead
        overlaps no call in this one (both are only ever started from the trio thread)."""
        return self._submitted == self._finished

    def _loop(self) -> None:
        while (job := self._jobs.get()) is not None:
            self._started_at = time.monotonic()
            job()
            self._started_at = None

    async def run(self, fn: Callable[..., Any], *args: Any, finished: Callable[[], None] | None = None) -> Any:
        """Run ``fn(*args)`` in the thread; return its result or raise its error.

        ``finished()`` is called in the trio thread once the call has returned, also
        when the awaiting task gave up before that.
        """
        token = trio.lowlevel.current_trio_token()
        done = trio.Event()
        result: list[outcome.Outcome[Any]] = []

        def job() -> None:
            result.append(outcome.capture(fn, *args))
            self._finished += 1  # before the caller wakes: it may call the library itself next
            try:
                token.run_sync_soon(done.set)
                if finished is not None:
                    token.run_sync_soon(finished)
            except trio.RunFinishedError:
                pass  # trio has exited; nobody is waiting

        self._submitted += 1
        self._jobs.put(job)
        await done.wait()
        return result[0].unwrap()

    def stop(self) -> None:
        """Let the thread exit once its queued calls are done (does not wait)."""
        self._jobs.put(None)
