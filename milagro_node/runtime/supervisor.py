"""The supervisor: starts a node's actors in dependency order and keeps them alive.

Theory of operation
-------------------
Each actor is described by an `ActorSpec`: a name, the names of the actors it
needs, and a factory that builds a fresh actor object (a restarted actor starts
from what is in the store, never from the memory of its previous life).

`Supervisor.run` opens one nursery and, for each spec in dependency order,
``await nursery.start(self._keep_alive, spec)``: the next actor starts only
once the previous one called ``task_status.started()``. `_keep_alive` then
loops for the life of the node:

    start actor -> running -> (crash) -> answer its in-flight request with
    ``actor-crashed`` -> count a restart -> back off -> start again

The back-off doubles from `Backoff.first` up to `Backoff.most` and resets once
an actor has stayed up `Backoff.stable` seconds. An actor that fails while
starting does not hold the node hostage: its start counts as done (state
``restarting``), the actors after it start, and callers get errors until it
comes back. That is how a node with a dead HSM still serves its API.

Mailboxes belong to the supervisor and outlive restarts: requests queued
during a restart wait for the next life (or their deadline).

Error handling: a crash is logged with the exception type and message only.
Cancellation (node shutdown) is never treated as a crash.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable, Sequence
from typing import Any

import attrs
import trio

from actors.context import Actor, ActorContext
from actors.mailbox import Mailbox

log = logging.getLogger("milagro_node.supervisor")


@attrs.frozen
class ActorSpec:
    name: str
    factory: Callable[[], Actor]
    needs: tuple[str, ...] = ()


@attrs.frozen
class Backoff:
    first: float = 0.1
    most: float = 5.0
    stable: float = 30.0


@attrs.define
class ActorState:
    """What node.status reports for one actor."""

    name: str
    state: str = "starting"  # starting | running | restarting | stopped
    restarts: int = 0
    last_error: str | None = None
    since: float = attrs.field(factory=time.time)
    ctx: ActorContext | None = None

    def snapshot(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "state": self.state,
            "restarts": self.restarts,
            "last_error": self.last_error,
            "since": self.since,
            "pending": self.ctx.mailbox.pending() if self.ctx else 0,
            **(self.ctx.info if self.ctx else {}),
        }


class SupervisorError(Exception):
    pass


def start_order(specs: Iterable[ActorSpec]) -> list[ActorSpec]:
    """Topological order of `specs` by `needs`; reject unknown names and cycles."""
    by_name = {spec.name: spec for spec in specs}
    ordered: list[ActorSpec] = []
    visiting: set[str] = set()

    def visit(name: str, wanted_by: str) -> None:
        if name not in by_name:
            raise SupervisorError(f"actor {wanted_by!r} needs unknown actor {name!r}")
        spec = by_name[name]
        if spec in ordered:
            return
        if name in visiting:
            raise SupervisorError(f"actors depend on each other in a cycle through {name!r}")
        visiting.add(name)
        for need in spec.needs:
            visit(need, name)
        visiting.discard(name)
        ordered.append(spec)

    for name in by_name:
        visit(name, name)
    return ordered


class Supervisor:
    def __init__(
        self,
        specs: Sequence[ActorSpec],
        *,
        mailbox_size: int = 64,
        request_timeout: float = 10.0,
        backoff: Backoff = Backoff(),
        node_status: Callable[[], dict[str, Any]] = dict,
        settings: Any = None,
    ) -> None:
        self._order = start_order(specs)
        self._backoff = backoff
        self._request_timeout = request_timeout
        self._node_status = node_status
        self._settings = settings
        self.mailboxes = {s.name: Mailbox(s.name, mailbox_size) for s in self._order}
        self.states = {s.name: ActorState(s.name) for s in self._order}

    def snapshot(self) -> list[dict[str, Any]]:
        return [self.states[s.name].snapshot() for s in self._order]

    async def ask(self, actor: str, request: Any, *, timeout: float | None = None) -> Any:
        """Ask an actor from outside the actor system (the node, tests)."""
        return await self.mailboxes[actor].ask(
            request, timeout=self._request_timeout if timeout is None else timeout
        )

    async def run(self, *, task_status: trio.TaskStatus[Supervisor] = trio.TASK_STATUS_IGNORED) -> None:
        async with trio.open_nursery() as nursery:
            for spec in self._order:
                await nursery.start(self._keep_alive, spec)
            log.info("all actors started", extra={"actors": len(self._order)})
            task_status.started(self)

    async def _keep_alive(self, spec: ActorSpec, *, task_status: trio.TaskStatus[None]) -> None:
        state = self.states[spec.name]
        delay = self._backoff.first
        while True:
            ctx = ActorContext(
                spec.name,
                mailboxes=self.mailboxes,
                request_timeout=self._request_timeout,
                node_status=self._node_status,
                settings=self._settings,
            )
            state.ctx = ctx
            up_since = trio.current_time()
            try:
                async with trio.open_nursery() as nursery:
                    await nursery.start(spec.factory().run, ctx)
                    state.state, state.since = "running", time.time()
                    task_status.started()
                    task_status = trio.TASK_STATUS_IGNORED
            except Exception as exc:  # a crash; cancellation is a BaseException and passes
                reason = _describe(exc)
                for call in ctx.in_flight:
                    call.fail("actor-crashed", f"{spec.name} crashed while serving the request")
                ctx.in_flight = []
                state.restarts += 1
                state.state, state.since, state.last_error = "restarting", time.time(), reason
                log.error(
                    "actor crashed",
                    extra={"actor": spec.name, "error": reason, "restarts": state.restarts, "backoff_s": delay},
                )
                task_status.started()  # a failed first start must not block the others
                task_status = trio.TASK_STATUS_IGNORED
                if trio.current_time() - up_since >= self._backoff.stable:
                    delay = self._backoff.first
                await trio.sleep(delay)
                delay = min(delay * 2, self._backoff.most)
            else:
                state.state, state.since = "stopped", time.time()
                log.info("actor stopped", extra={"actor": spec.name})
                return


def sole_error(exc: BaseException) -> BaseException:
    """The one error inside nested single-error groups (`exc` itself otherwise)."""
    while isinstance(exc, BaseExceptionGroup) and len(exc.exceptions) == 1:
        exc = exc.exceptions[0]
    return exc


def _describe(exc: BaseException) -> str:
    """Type and message of the innermost error of a (possibly grouped) crash."""
    exc = sole_error(exc)
    return f"{type(exc).__name__}: {exc}"
