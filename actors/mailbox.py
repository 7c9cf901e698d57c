"""Mailboxes: how actors talk to each other inside one node process.

Every actor owns one bounded mailbox (a trio memory channel, so a busy actor
pushes back on its callers instead of queueing without end). A *request* is a
frozen attrs message wrapped in a `Call` that carries its own reply channel and
an absolute deadline; the caller waits for exactly one reply or the deadline.

Replies are either a value or a `Failure`; callers see a `Failure` as an
`ActorError`, whose `code` is one of the codes listed in docs/errors.md. An
actor that cannot serve a request for a reason its caller should know raises
`ActorError` from its handler: the caller gets the error and the actor goes
on. Any other exception is a crash: the supervisor answers the request that
was in flight with ``actor-crashed`` and restarts the actor.

Who calls this: actors (through `ActorContext`), the supervisor, and tests.
"""

from __future__ import annotations

import math
from typing import Any

import attrs
import trio


class ActorError(Exception):
    """A request could not be served. `code` is stable; `message` is for humans.

    Messages never contain secret values: they name what was wrong, not the data.
    """

    def __init__(self, code: str, message: str) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message


@attrs.frozen
class Failure:
    """The error reply to a request (carried back over its reply channel)."""

    code: str
    message: str


@attrs.frozen(eq=False)
class Call:
    """A request in a mailbox: the message, where to reply, and until when.

    The reply channel has room for one value, so replying never blocks the
    actor; a caller that gave up has closed its end and the reply is dropped.
    """

    request: Any
    reply_to: trio.MemorySendChannel[Any] | None
    deadline: float

    def expired(self) -> bool:
        return trio.current_time() >= self.deadline

    def reply(self, value: Any) -> None:
        if self.reply_to is None:
            return
        try:
            self.reply_to.send_nowait(value)
        except (trio.WouldBlock, trio.BrokenResourceError, trio.ClosedResourceError):
            pass  # the caller gave up (deadline or cancellation); nobody to tell
        finally:
            self.reply_to.close()

    def fail(self, code: str, message: str) -> None:
        self.reply(Failure(code, message))


class Mailbox:
    """The bounded inbox of one named actor.

    The supervisor creates it once and keeps it across restarts of the actor,
    so requests queued while an actor restarts are served by its next life.
    """

    def __init__(self, owner: str, size: int) -> None:
        self.owner = owner
        self._send, self._receive = trio.open_memory_channel[Call](size)

    @property
    def inbox(self) -> trio.MemoryReceiveChannel[Call]:
        return self._receive

    def pending(self) -> int:
        return self._send.statistics().current_buffer_used

    async def ask(self, request: Any, *, timeout: float) -> Any:
        """Send `request` and wait for its reply; raise `ActorError` on failure.

        Waiting for room in a full mailbox counts against the same deadline.
        """
        reply_send, reply_receive = trio.open_memory_channel[Any](1)
        deadline = trio.current_time() + timeout
        with reply_receive, trio.move_on_at(deadline):
            await self._send.send(Call(request, reply_send, deadline))
            result = await reply_receive.receive()
            if isinstance(result, Failure):
                raise ActorError(result.code, result.message)
            return result
        raise ActorError(
            "deadline-exceeded",
            f"{self.owner} did not answer {type(request).__name__} within {timeout:g}s",
        )

    async def tell(self, message: Any) -> None:
        """Send a message that wants no reply (waits for room, never forever)."""
        await self._send.send(Call(message, None, math.inf))
