"""Routing received envelopes by kind to the local actors that subscribed (real mailboxes)."""

import trio

from actors.envelope_router.dispatch import Routes
from actors.messages import EnvelopeArrived
from milagro_node.runtime.supervisor import ActorSpec, Supervisor


class Collector:
    """A consumer actor that keeps what it is told (or never reads, when `stuck`)."""

    def __init__(self, name: str, seen: list, stuck: bool = False) -> None:
        self.name, self._seen, self._stuck = name, seen, stuck

    async def run(self, ctx, *, task_status):
        task_status.started()
        if self._stuck:
            await trio.sleep_forever()
        async for call in ctx.mailbox.inbox:
            self._seen.append((self.name, call.request))


def arrived(kind: str) -> EnvelopeArrived:
    return EnvelopeArrived("bafycid", "bafysender", kind, 3, b"payload")


def test_targets_by_prefix():
    routes = Routes()
    routes.subscribe(("dta.",), "share-dealer")
    routes.subscribe(("mfa.", "dta.permit"), "authenticator")
    assert routes.targets("dta.share") == ["share-dealer"]
    assert routes.targets("dta.permit.day") == ["authenticator", "share-dealer"]
    assert routes.targets("custody.x") == []


async def test_dispatch_tells_each_subscriber_once(autojump_clock):
    seen: list = []
    sup = Supervisor([ActorSpec("a", lambda: Collector("a", seen)), ActorSpec("b", lambda: Collector("b", seen))])
    routes = Routes()
    routes.subscribe(("dta.", "dta.share"), "a")
    routes.subscribe(("mfa.",), "b")
    async with trio.open_nursery() as nursery:
        await nursery.start(sup.run)
        await routes.dispatch(lambda actor, msg: sup.mailboxes[actor].tell(msg), arrived("dta.share"))
        await routes.dispatch(lambda actor, msg: sup.mailboxes[actor].tell(msg), arrived("other"))
        await trio.sleep(0.1)
        nursery.cancel_scope.cancel()
    assert seen == [("a", arrived("dta.share"))]


async def test_a_stuck_consumer_does_not_stall_the_router(autojump_clock):
    sup = Supervisor([ActorSpec("stuck", lambda: Collector("stuck", [], stuck=True))], mailbox_size=1)
    routes = Routes()
    routes.subscribe(("dta.",), "stuck")
    async with trio.open_nursery() as nursery:
        await nursery.start(sup.run)
        tell = lambda actor, msg: sup.mailboxes[actor].tell(msg)  # noqa: E731
        with trio.fail_after(60):
            for _ in range(3):  # the first fills the mailbox, the others give up after 5 s
                await routes.dispatch(tell, arrived("dta.share"))
        nursery.cancel_scope.cancel()
    assert routes.dropped == 2
