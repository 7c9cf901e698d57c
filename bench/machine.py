"""How busy the machine was while a bench phase ran: its share of CPU time by kind.

This machine type is a VM: bare pyblst ran at 834 logins/s in one hour and 354 in another.
Part of that is the hypervisor lending our vCPUs to others ("steal" time in /proc/stat,
up to 29% of a phase); the rest does not show here (the vCPUs simply ran slower, with 1%
steal). So each bench records, next to its numbers, the steal and idle shares of every
phase it times, and compares only against a baseline timed in the same run.

    with CpuShares() as shares:
        ...  # the timed phase
    shares.result  # {"steal": 0.29, "idle": 0.13, "busy": 0.58}

Two more facts of such a VM bear on latency at moderate load, where a node waits between
requests; `responsiveness()` measures them, and the benches print them with their numbers:

- work that follows 5 ms of idleness runs 2-4x slower than the same work back to back
  (also when the process spins instead of sleeping, so the cause is outside the VM): a
  node's lone request pays that, a burst does not;
- waking a process on the other vCPU (a pipe round trip) costs ~10x a wake-up on the same
  one: every hop between the trio loop and a worker process or thread may pay it.

`gc_paused` keeps the bench process's own garbage collector out of a timed phase.
"""

from __future__ import annotations

import contextlib
import gc
import hashlib
import json
import os
import statistics
import time
import zlib
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

_FIELDS = ("user", "nice", "system", "idle", "iowait", "irq", "softirq", "steal")


def _ticks() -> list[int] | None:
    try:
        line = Path("/proc/stat").read_text().split("\n", 1)[0].split()
    except OSError:
        return None  # not Linux: nothing to report
    return [int(value) for value in line[1:1 + len(_FIELDS)]]


class CpuShares:
    """Context manager: `result` holds the phase's steal, idle and busy shares (0..1)."""

    def __init__(self) -> None:
        self.result: dict[str, float] | None = None

    def __enter__(self) -> CpuShares:
        self._start = _ticks()
        return self

    def __exit__(self, *exc_info: Any) -> None:
        end = _ticks()
        if self._start is None or end is None:
            return
        spent = dict(zip(_FIELDS, (b - a for a, b in zip(self._start, end, strict=True)), strict=True))
        total = sum(spent.values()) or 1
        idle = spent["idle"] + spent["iowait"]
        self.result = {"steal": spent["steal"] / total, "idle": idle / total,
                       "busy": (total - idle - spent["steal"]) / total}


def describe(shares: dict[str, float] | None) -> str:
    """``steal 29%, idle 13%`` for a table footnote ("n/a" off Linux)."""
    if shares is None:
        return "n/a"
    return f"steal {shares['steal']:.0%}, idle {shares['idle']:.0%}"


@contextlib.contextmanager
def gc_paused() -> Iterator[None]:
    """The bench process's cyclic GC off for a timed phase (collected just before).

    A full collection in the load generator stalled it for 24 ms in the middle of a
    paced round of bench/mpin.py: every login in flight read 24 ms slower, and the ones
    due meanwhile then went out at once and queued at the node. That is the bench
    measuring itself, not the node.
    """
    gc.collect()
    gc.disable()
    try:
        yield
    finally:
        gc.enable()


_BLOB = bytes(range(256)) * 32
_DOC = {f"k{i}": [i, str(i), {"x": i * 1.5}] for i in range(40)}
IDLE_GAP_S = 0.005


def _work() -> None:
    """~0.2 ms of what a node does with a request: JSON, compression, hashing."""
    json.loads(json.dumps(_DOC))
    zlib.compress(_BLOB, 1)
    hashlib.sha256(_BLOB).digest()


def _median_us(fn: Callable[[], None], samples: int, gap_s: float = 0.0) -> float:
    times = []
    for _ in range(samples):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
        if gap_s:
            time.sleep(gap_s)
    return statistics.median(times) * 1e6


def _pipe_round_trip_us(same_cpu: bool, samples: int) -> float | None:
    """p50 of a one-byte pipe round trip to a forked child, both on one vCPU or on two."""
    cpus = sorted(os.sched_getaffinity(0))
    if not same_cpu and len(cpus) < 2:
        return None
    from_parent, to_child = os.pipe()
    from_child, to_parent = os.pipe()
    mine = os.sched_getaffinity(0)
    pid = os.fork()
    if pid == 0:  # the child echoes until the parent closes its end
        try:
            os.close(to_child)
            os.close(from_child)
            os.sched_setaffinity(0, {cpus[0] if same_cpu else cpus[1]})
            while os.read(from_parent, 1):
                os.write(to_parent, b"x")
        finally:
            os._exit(0)
    os.close(from_parent)
    os.close(to_parent)

    def round_trip() -> None:
        os.write(to_child, b"x")
        os.read(from_child, 1)

    try:
        os.sched_setaffinity(0, {cpus[0]})
        round_trip()  # the child is up and pinned
        return _median_us(round_trip, samples)
    finally:
        os.sched_setaffinity(0, mine)
        os.close(to_child)
        os.close(from_child)
        os.waitpid(pid, 0)


def responsiveness(samples: int = 200) -> dict[str, float | None]:
    """The two latency facts of the module docstring, measured now (~2 s)."""
    warm = _median_us(_work, samples)
    after_idle = _median_us(_work, samples, IDLE_GAP_S)
    return {"work_us": warm, "work_after_idle_us": after_idle, "idle_penalty": after_idle / warm,
            "wake_same_cpu_us": _pipe_round_trip_us(True, 2000),
            "wake_cross_cpu_us": _pipe_round_trip_us(False, 2000)}


def describe_responsiveness(facts: dict[str, float | None]) -> str:
    """``work after 5 ms idle 2.1x slower; pipe round trip 6.8 us on one vCPU, 63 us across``."""
    cross = facts["wake_cross_cpu_us"]
    return (f"work after {IDLE_GAP_S * 1000:g} ms idle {facts['idle_penalty']:.1f}x slower; pipe round trip "
            f"{facts['wake_same_cpu_us']:.1f} us on one vCPU, " + ("n/a" if cross is None else f"{cross:.0f} us")
            + " across two")
