"""The supervisor and mailboxes, in process, on trio's autojump clock."""

import attrs
import pytest
import trio

from actors.mailbox import ActorError
from milagro_node.runtime.supervisor import ActorSpec, Backoff, Supervisor, SupervisorError, start_order


@attrs.frozen
class Echo:
    text: str


@attrs.frozen
class Boom:
    pass


@attrs.frozen
class Refuse:
    pass


@attrs.frozen
class Sleep:
    seconds: float


class Crashy:
    """Echoes; crashes on Boom; refuses Refuse with an ActorError."""

    name = "crashy"
    lives = 0

    async def run(self, ctx, *, task_status):
        Crashy.lives += 1
        task_status.started()
        await ctx.serve(self.handle)

    async def handle(self, request):
        match request:
            case Echo(text):
                return text
            case Boom():
                raise RuntimeError("kaboom")
            case Refuse():
                raise ActorError("refused", "not today")
            case Sleep(seconds):
                await trio.sleep(seconds)
                return "slept"


class FailsToStart:
    name = "fragile"
    failures_left = 2

    async def run(self, ctx, *, task_status):
        if FailsToStart.failures_left:
            FailsToStart.failures_left -= 1
            raise OSError("device not ready")
        task_status.started()
        await ctx.serve(lambda request: trio.sleep(0))


def spec(name, factory, needs=()):
    return ActorSpec(name, factory, needs)


def test_start_order_follows_needs():
    specs = [spec("api", Crashy, ("store",)), spec("store", Crashy), spec("hsm", Crashy)]
    assert [s.name for s in start_order(specs)] == ["store", "api", "hsm"]


def test_unknown_need_and_cycle_are_refused():
    with pytest.raises(SupervisorError, match="unknown actor 'nope'"):
        start_order([spec("a", Crashy, ("nope",))])
    with pytest.raises(SupervisorError, match="cycle"):
        start_order([spec("a", Crashy, ("b",)), spec("b", Crashy, ("a",))])


async def test_crash_answers_in_flight_request_and_restarts(nursery, autojump_clock):
    sup = Supervisor([spec("crashy", Crashy)], backoff=Backoff(first=1, most=8))
    await nursery.start(sup.run)
    assert await sup.ask("crashy", Echo("hi")) == "hi"

    with pytest.raises(ActorError) as crashed:
        await sup.ask("crashy", Boom())
    assert crashed.value.code == "actor-crashed"
    state = sup.snapshot()[0]
    assert state["restarts"] == 1
    assert state["state"] == "restarting"
    assert "kaboom" in state["last_error"]

    # A request sent during the back-off waits in the mailbox for the next life.
    assert await sup.ask("crashy", Echo("again")) == "again"
    assert sup.snapshot()[0]["state"] == "running"


async def test_actor_error_is_a_reply_not_a_crash(nursery, autojump_clock):
    sup = Supervisor([spec("crashy", Crashy)])
    await nursery.start(sup.run)
    with pytest.raises(ActorError) as refused:
        await sup.ask("crashy", Refuse())
    assert (refused.value.code, refused.value.message) == ("refused", "not today")
    assert sup.snapshot()[0]["restarts"] == 0


async def test_backoff_doubles_between_crashes(nursery, autojump_clock):
    sup = Supervisor([spec("crashy", Crashy)], backoff=Backoff(first=1, most=3, stable=100))
    await nursery.start(sup.run)
    times = []
    for _ in range(4):
        with pytest.raises(ActorError):
            await sup.ask("crashy", Boom(), timeout=60)
        times.append(trio.current_time())
    gaps = [round(b - a) for a, b in zip(times, times[1:])]
    assert gaps == [1, 2, 3]  # capped at Backoff.most
    assert sup.snapshot()[0]["restarts"] == 4


async def test_deadline_exceeded(nursery, autojump_clock):
    sup = Supervisor([spec("crashy", Crashy)])
    await nursery.start(sup.run)
    with pytest.raises(ActorError) as late:
        await sup.ask("crashy", Sleep(5), timeout=1)
    assert late.value.code == "deadline-exceeded"
    # The handler was abandoned at the deadline: the actor is free at once.
    started = trio.current_time()
    assert await sup.ask("crashy", Echo("next"), timeout=1) == "next"
    assert trio.current_time() - started < 1


async def test_request_expired_in_the_queue_is_not_started(nursery, autojump_clock):
    sup = Supervisor([spec("crashy", Crashy)])
    await nursery.start(sup.run)
    nursery.start_soon(lambda: sup.ask("crashy", Sleep(5), timeout=60))
    await trio.sleep(0.1)
    with pytest.raises(ActorError) as late:
        await sup.ask("crashy", Echo("queued"), timeout=1)
    assert late.value.code == "deadline-exceeded"
    assert await sup.ask("crashy", Echo("later"), timeout=60) == "later"


async def test_full_mailbox_pushes_back(nursery, autojump_clock):
    sup = Supervisor([spec("crashy", Crashy)], mailbox_size=1)
    await nursery.start(sup.run)
    nursery.start_soon(sup.ask, "crashy", Sleep(100))
    await trio.sleep(0.1)
    nursery.start_soon(sup.ask, "crashy", Echo("fills the one slot"))
    await trio.sleep(0.1)
    with pytest.raises(ActorError) as full:
        await sup.ask("crashy", Echo("no room"), timeout=2)
    assert full.value.code == "deadline-exceeded"


async def test_failed_first_start_does_not_block_the_others(nursery, autojump_clock):
    FailsToStart.failures_left = 2
    sup = Supervisor(
        [spec("fragile", FailsToStart), spec("crashy", Crashy)], backoff=Backoff(first=1)
    )
    await nursery.start(sup.run)
    states = {s["name"]: s for s in sup.snapshot()}
    assert states["fragile"]["state"] == "restarting"
    assert "device not ready" in states["fragile"]["last_error"]
    assert states["crashy"]["state"] == "running"
    await trio.sleep(5)
    states = {s["name"]: s for s in sup.snapshot()}
    assert states["fragile"]["state"] == "running"
    assert states["fragile"]["restarts"] == 2


async def test_tell_delivers_without_a_reply(nursery, autojump_clock):
    seen = []

    class Listener:
        name = "listener"

        async def run(self, ctx, *, task_status):
            task_status.started()
            await ctx.serve(self.record)

        async def record(self, message):
            seen.append(message)

    sup = Supervisor([spec("listener", Listener)])
    await nursery.start(sup.run)
    await sup.mailboxes["listener"].tell(Echo("one-way"))
    await trio.sleep(1)
    assert seen == [Echo("one-way")]


async def test_each_ask_times_out_at_its_own_deadline(nursery, autojump_clock):
    """Deadlines come in any order (a short ask after long ones): each caller is woken
    at its own deadline, not at the earliest or the latest."""
    sup = Supervisor([spec("crashy", Crashy)])
    await nursery.start(sup.run)
    nursery.start_soon(lambda: sup.ask("crashy", Sleep(1000), timeout=1000))  # keeps the actor busy
    await trio.sleep(0)
    woken = {}

    async def ask(timeout):
        started = trio.current_time()
        with pytest.raises(ActorError) as late:
            await sup.ask("crashy", Echo("queued"), timeout=timeout)
        assert late.value.code == "deadline-exceeded"
        woken[timeout] = trio.current_time() - started

    async with trio.open_nursery() as asks:
        for timeout in (30, 10, 20, 5):
            asks.start_soon(ask, timeout)
            await trio.sleep(0)
    assert woken == pytest.approx({30: 30, 10: 10, 20: 20, 5: 5}, abs=0.01)


async def test_an_ask_cancelled_from_outside_drops_its_late_reply(nursery, autojump_clock):
    sup = Supervisor([spec("crashy", Crashy)])
    await nursery.start(sup.run)
    with trio.move_on_after(1) as outer:
        await sup.ask("crashy", Sleep(2), timeout=60)
    assert outer.cancelled_caught
    await trio.sleep(5)  # the reply to the abandoned call comes and goes
    assert await sup.ask("crashy", Echo("next"), timeout=1) == "next"


async def test_answered_asks_do_not_pile_up_in_the_deadline_watcher(nursery, autojump_clock):
    from actors.mailbox import _Deadlines

    class Deaf:
        name = "deaf"

        async def run(self, ctx, *, task_status):
            task_status.started()
            await trio.sleep_forever()

    sup = Supervisor([spec("crashy", Crashy), spec("deaf", Deaf)])
    await nursery.start(sup.run)
    # An unanswered ask with the earliest deadline stays at the top of the heap throughout.
    nursery.start_soon(lambda: sup.ask("deaf", Echo("unheard"), timeout=60))
    await trio.sleep(0)
    for i in range(5000):
        assert await sup.ask("crashy", Echo(str(i)), timeout=3600) == str(i)
    assert len(_Deadlines.of_this_run()._heap) <= 2048
