"""What an actor gets from the supervisor: its mailbox, its peers, its config.

An actor is any object with a ``name`` and an ``async def run(ctx, *,
task_status)`` method. It calls ``task_status.started()`` once it is ready to
serve, then usually hands its mailbox to `ActorContext.serve`, which handles
one request at a time and remembers which one is in flight, so that the
supervisor can answer it if the actor crashes.

Actors never share mutable state: they reach each other only through
`ActorContext.ask` / `ActorContext.tell`, by actor name.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Mapping
from typing import Any, Protocol

import trio

from .mailbox import ActorError, Call, Mailbox


class Actor(Protocol):
    name: str

    async def run(
        self, ctx: ActorContext, *, task_status: trio.TaskStatus[None]
    ) -> None: ...


Handler = Callable[[Any], Awaitable[Any]]
BatchHandler = Callable[[list[Any]], Awaitable[list[Any]]]


class ActorContext:
    """One life of one actor: created by the supervisor at each (re)start."""

    def __init__(
        self,
        name: str,
        *,
        mailboxes: Mapping[str, Mailbox],
        request_timeout: float,
        node_status: Callable[[], dict[str, Any]],
        settings: Any = None,
    ) -> None:
        self.name = name
        self.mailbox = mailboxes[name]
        self.log = logging.getLogger(f"milagro_node.actor.{name}")
        self.request_timeout = request_timeout
        self.settings = settings
        self.info: dict[str, Any] = {}
        self.in_flight: list[Call] = []
        self._mailboxes = mailboxes
        self._node_status = node_status

    def report(self, **info: Any) -> None:
        """Publish facts about this actor (an address, a mode) in node.status."""
        self.info.update(info)

    def node_status(self) -> dict[str, Any]:
        return self._node_status()

    def _mailbox_of(self, actor: str) -> Mailbox:
        try:
            return self._mailboxes[actor]
        except KeyError:
            raise ActorError("no-such-actor", f"this node runs no actor named {actor!r}") from None

    async def ask(self, actor: str, request: Any, *, timeout: float | None = None) -> Any:
        """Request/reply with another actor of this node."""
        return await self._mailbox_of(actor).ask(
            request, timeout=self.request_timeout if timeout is None else timeout
        )

    async def tell(self, actor: str, message: Any) -> None:
        await self._mailbox_of(actor).tell(message)

    async def serve(self, handle: Handler, *, concurrency: int = 1) -> None:
        """Handle this actor's mailbox, one message at a time, forever.

        With ``concurrency`` > 1, up to that many requests are handled at once (each in its
        own task), for an actor whose requests wait on the network or on other actors that
        may ask it back (the envelope router: a send waits on the pki-resolver, which may
        ask the router to fetch a log).

        A handler's return value is the reply; an `ActorError` it raises is
        replied as a failure and the loop goes on; anything else propagates
        (the actor crashes) with `in_flight` still set for the supervisor.
        A request is abandoned at its deadline (the handler is cancelled), and
        one whose deadline passed while it was queued is not started at all.
        """

        async def one(requests: list[Any]) -> list[Any]:
            try:
                return [await handle(requests[0])]
            except ActorError as exc:
                return [exc]

        await self.serve_batches(one, max_batch=1, pipeline=concurrency)

    async def serve_batches(self, handle_batch: BatchHandler, *, max_batch: int, pipeline: int = 1) -> None:
        """Like `serve`, but hand the handler every queued request at once (up to
        `max_batch`), for actors whose per-call cost is a thread hop worth sharing.

        `handle_batch` returns one outcome per request: a reply value, or an
        `ActorError` instance to reply as a failure. The batch is abandoned at
        the latest deadline among its requests. With `pipeline` > 1, up to that
        many batches are handled at once (the handler keeps them in order, e.g.
        in one thread), so the next batch is ready when the previous one ends.
        """
        slots = trio.Semaphore(pipeline)
        async with trio.open_nursery() as nursery:
            while True:
                await slots.acquire()  # before taking requests out: back-pressure stays in the mailbox
                try:
                    live = await self._next_batch(max_batch)
                except trio.EndOfChannel:
                    return
                if pipeline == 1:  # no task per batch for the many actors that serve one at a time
                    await self._handle_batch(handle_batch, live, slots)
                else:
                    nursery.start_soon(self._handle_batch, handle_batch, live, slots)

    async def _next_batch(self, max_batch: int) -> list[Call]:
        """Wait for requests; return those queued (up to `max_batch`) still within their deadline."""
        while True:
            try:  # queued requests are taken without a trip through the scheduler
                calls = [self.mailbox.inbox.receive_nowait()]
            except trio.WouldBlock:
                calls = [await self.mailbox.inbox.receive()]
            while len(calls) < max_batch:
                try:
                    calls.append(self.mailbox.inbox.receive_nowait())
                except trio.WouldBlock:
                    break
            live = []
            for call in calls:
                if call.expired():
                    call.fail("deadline-exceeded", f"{self.name} got the request after its deadline")
                else:
                    live.append(call)
            if live:
                return live

    async def _handle_batch(self, handle_batch: BatchHandler, live: list[Call], slots: trio.Semaphore) -> None:
        self.in_flight.extend(live)
        try:
            with trio.move_on_at(max(call.deadline for call in live)):
                outcomes = await handle_batch([call.request for call in live])
                for call, outcome in zip(live, outcomes, strict=True):
                    if isinstance(outcome, ActorError):
                        call.fail(outcome.code, outcome.message)
                    else:
                        call.reply(outcome)
            for call in live:  # replied calls ignore this; abandoned ones learn why
                call.fail("deadline-exceeded", "the actor gave up at the request's deadline")
        finally:
            slots.release()
        # Not reached after a crash: the supervisor answers what is left in in_flight.
        done = set(map(id, live))
        self.in_flight = [call for call in self.in_flight if id(call) not in done]
