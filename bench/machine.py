"""How busy the machine was while a bench phase ran: its share of CPU time by kind.

This machine type is a VM: bare pyblst ran at 834 logins/s in one hour and 354 in another.
Part of that is the hypervisor lending our vCPUs to others ("steal" time in /proc/stat,
up to 29% of a phase); the rest does not show here (the vCPUs simply ran slower, with 1%
steal). So each bench records, next to its numbers, the steal and idle shares of every
phase it times, and compares only against a baseline timed in the same run.

    with CpuShares() as shares:
        ...  # the timed phase
    shares.result  # {"steal": 0.29, "idle": 0.13, "busy": 0.58}

`gc_paused` keeps the bench process's own garbage collector out of a timed phase.
"""

from __future__ import annotations

import contextlib
import gc
from collections.abc import Iterator
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
