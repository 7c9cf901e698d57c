"""What the peer scripts of this directory share: JSON events out, and when to stop.

A peer script prints one JSON object per line on stdout (``{"event": ..., ...}``) and exits
when its stdin closes (the test closed it) or on SIGTERM / SIGINT.
"""

import json
import os
import signal
import sys
from contextlib import contextmanager

import trio


def emit(event: str, **fields) -> None:
    sys.stdout.write(json.dumps({"event": event, **fields}) + "\n")
    sys.stdout.flush()


@contextmanager
def exit_signals():
    """Install the signal receiver early (before "ready"), so an early SIGTERM is not fatal."""
    with trio.open_signal_receiver(signal.SIGTERM, signal.SIGINT) as signals:
        yield signals


async def wait_for_exit(signals=None) -> None:
    """Return on a signal from ``signals`` (default: a receiver opened now) or at stdin's end."""
    if signals is None:
        with exit_signals() as signals:
            return await wait_for_exit(signals)

    async def stdin_closed():
        stdin = trio.lowlevel.FdStream(os.dup(0))
        while await stdin.receive_some(4096):
            pass
        done.cancel()

    async with trio.open_nursery() as nursery:
        done = nursery.cancel_scope
        nursery.start_soon(stdin_closed)
        async for _ in signals:
            done.cancel()


def run_peer(main, args) -> None:
    """``trio.run(main, args)``, then exit at once: py-libp2p raises exception groups of
    cancellations at shutdown and leaves threads behind that would hold the process."""
    try:
        trio.run(main, args)
    except BaseExceptionGroup as group:
        if group.split(trio.Cancelled)[1] is not None:
            raise
    sys.stdout.flush()
    os._exit(0)
