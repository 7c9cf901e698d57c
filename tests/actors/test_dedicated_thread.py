"""DedicatedThread: calls run in order in one OS thread; `idle` says when none is pending."""

import threading

import trio

from actors.dedicated_thread import DedicatedThread


async def test_calls_run_in_its_thread_and_idle_is_true_once_each_returned():
    thread = DedicatedThread("test")
    try:
        assert thread.idle()
        release = threading.Event()
        seen = []

        async def blocked():
            seen.append(await thread.run(lambda: release.wait(5) and threading.current_thread().name))

        async with trio.open_nursery() as nursery:
            nursery.start_soon(blocked)
            await trio.sleep(0.05)
            assert not thread.idle() and thread.running_for() > 0  # running
            nursery.start_soon(thread.run, lambda: None)
            await trio.sleep(0.01)
            release.set()
        assert seen == ["test"]
        assert thread.idle()  # as soon as the last caller woke: it may call the library itself
    finally:
        thread.stop()
