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
        self.in_flight: Call | None = None
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

    async def serve(self, handle: Handler) -> None:
        """Handle this actor's mailbox, one message at a time, forever.

        A handler's return value is the reply; an `ActorError` it raises is
        replied as a failure and the loop goes on; anything else propagates
        (the actor crashes) with `in_flight` still set for the supervisor.
        A request is abandoned at its deadline (the handler is cancelled), and
        one whose deadline passed while it was queued is not started at all.
        """
        async for call in self.mailbox.inbox:
            if call.expired():
                call.fail("deadline-exceeded", f"{self.name} got the request after its deadline")
                continue
            self.in_flight = call
            try:
                with trio.move_on_at(call.deadline) as scope:
                    result = await handle(call.request)
            except ActorError as exc:
                call.fail(exc.code, exc.message)
            else:
                if scope.cancelled_caught:
                    call.fail("deadline-exceeded", f"{self.name} gave up at the request's deadline")
                else:
                    call.reply(result)
            self.in_flight = None
