"""The authenticator's worker processes (trio_parallel), seen from the trio loop.

Part of the authenticator actor. Two pools:

- **checks**: ``workers`` processes (``[mfa] workers``) for the login's pairing check.
  Logins queue their checks; one dispatcher task per process takes what is queued (up to
  `MAX_BATCH`) and runs it as one job. An idle worker gets a lone check at once, so a login
  waits for nothing; under load, checks that queued while the workers were busy share one
  pickle, one pipe round trip and one wake-up of a process, which on two cores cost the
  trio loop as much as the rest of a login's handling. They run 5 nice levels below the
  node (`jobs.CHECK_NICENESS`): at equal priority the loop, woken for a login's next step,
  waited out a check's time slice on a busy core; below it, it preempts the check at once
  (at half load p90 9.3-9.7 -> 5.3-6.8 ms, and 4-13% more logins/s);
- **typo**: one process at a lower priority still (``nice 10``) for `jobs.proof_is_typo`
  after a failure. It is best effort: when it is busy the search is skipped (``typo`` is
  null in the audit), so a flood of wrong PINs cannot take checks away from real logins.

Both start with the actor (`PairingPool.warm`) so the first login pays no process start,
never retire while idle, and stop when the actor stops: closing the context closes their
pipes, they exit, and what is left after `GRACE_S` is killed. Jobs are not killed on
cancellation (a check takes about a millisecond, a typo search at most ~0.1 s), so a
cancelled request does not cost a process respawn.

A worker that dies (killed, out of memory) fails only the job it was running: its checks
answer ``mfa-worker-failed`` (the logins may be retried; nothing was counted), the typo
search counts as skipped, and trio_parallel starts a fresh process for the next job. A
login cancelled before its check was taken is skipped; once taken, its result is dropped.
"""

from __future__ import annotations

import functools
import math
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import attrs
import trio
import trio_parallel

from ..mailbox import ActorError
from . import jobs

__all__ = ["GRACE_S", "MAX_BATCH", "PairingPool"]

GRACE_S = 2.0
MAX_BATCH = 8  # checks per job: ~8 ms of one worker, the most one login may wait behind others


@attrs.define(eq=False)
class _Check:
    """One login's check, queued for a dispatcher."""

    args: tuple[Any, ...] = attrs.field(repr=False)  # starts with the server secret SS
    done: trio.Event = attrs.Factory(trio.Event)
    outcome: Any = None  # jobs.check_proof's result, or the exception to raise
    abandoned: bool = False  # its login was cancelled before a dispatcher took it


class PairingPool:
    def __init__(self, checks: trio_parallel.WorkerContext, typo: trio_parallel.WorkerContext, workers: int) -> None:
        self._checks, self._typo = checks, typo
        self.workers = workers
        self._check_slots = trio.CapacityLimiter(workers)
        self._queue_in, self._queue = trio.open_memory_channel[_Check](math.inf)
        self._typo_busy = trio.CapacityLimiter(1)
        self._typo_slot = trio.CapacityLimiter(1)
        self.checked = 0
        self.check_jobs = 0  # jobs the checks took: fewer than checks when they were batched
        self.typo_skipped = 0
        self.broken = 0
        self.pids: set[int] = set()  # every worker a warm-up job has run in

    @classmethod
    @asynccontextmanager
    async def open(cls, workers: int) -> AsyncIterator[PairingPool]:
        async with (
            trio_parallel.open_worker_context(idle_timeout=math.inf, grace_period=GRACE_S, init=functools.partial(
                jobs.lower_priority, jobs.CHECK_NICENESS)) as checks,
            trio_parallel.open_worker_context(idle_timeout=math.inf, grace_period=GRACE_S, init=functools.partial(
                jobs.lower_priority, jobs.TYPO_NICENESS)) as typo,
            trio.open_nursery() as nursery,
        ):
            pool = cls(checks, typo, workers)
            for _ in range(workers):
                nursery.start_soon(pool._dispatch)
            try:
                yield pool
            finally:
                nursery.cancel_scope.cancel()

    async def warm(self, ss: bytes | None = None) -> list[int]:
        """Start every worker (or make each decode a new SS); return the pids seen so far."""
        pids: list[int] = []

        async def one(context: trio_parallel.WorkerContext, limiter: trio.CapacityLimiter) -> None:
            pids.append(await context.run_sync(jobs.warm, ss, limiter=limiter))

        async with trio.open_nursery() as nursery:
            for _ in range(self.workers):
                nursery.start_soon(one, self._checks, self._check_slots)
            nursery.start_soon(one, self._typo, self._typo_slot)
        self.pids.update(pids)
        return sorted(self.pids)

    async def check(self, ss: bytes, identity: bytes, u: bytes, ut: bytes | None, y: int, v: bytes,
                    day: int | None, pa: bytes | None = None) -> tuple[str, str] | None:
        """`jobs.check_proof` in a worker: None if accepted, else (code, message)."""
        check = _Check((ss, identity, u, ut, y, v, day, pa))
        self._queue_in.send_nowait(check)
        try:
            await check.done.wait()
        except BaseException:
            check.abandoned = True
            raise
        if isinstance(check.outcome, BaseException):
            raise check.outcome
        return check.outcome

    async def _dispatch(self) -> None:
        """Run what is queued, up to MAX_BATCH checks a job, in one worker at a time."""
        async for first in self._queue:
            batch = [first]
            while len(batch) < MAX_BATCH:
                try:
                    batch.append(self._queue.receive_nowait())
                except trio.WouldBlock:
                    break
            batch = [check for check in batch if not check.abandoned]
            if not batch:
                continue
            try:
                outcomes = await self._checks.run_sync(jobs.check_proofs, [c.args for c in batch],
                                                       limiter=self._check_slots)
            except trio_parallel.BrokenWorkerError:
                self.broken += 1
                failed = ActorError("mfa-worker-failed", "the worker process checking this login died; try again")
                outcomes = [failed] * len(batch)
            except Exception as exc:  # a bug in the job: each of its logins fails with it
                outcomes = [exc] * len(batch)
            else:
                self.checked += len(batch)
                self.check_jobs += 1
            for check, outcome in zip(batch, outcomes):
                check.outcome = outcome
                check.done.set()

    async def is_typo(self, ss: bytes, identity: bytes, u: bytes, ut: bytes | None, y: int, v: bytes,
                      day: int | None, pa: bytes | None = None) -> bool | None:
        """`jobs.proof_is_typo` in the typo worker, or None at once if it is busy."""
        try:
            self._typo_busy.acquire_nowait()
        except trio.WouldBlock:
            self.typo_skipped += 1
            return None
        try:
            return await self._typo.run_sync(jobs.proof_is_typo, ss, identity, u, ut, y, v, day, pa,
                                             limiter=self._typo_slot)
        except trio_parallel.BrokenWorkerError:
            self.broken += 1
            return None
        finally:
            self._typo_busy.release()
