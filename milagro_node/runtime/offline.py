"""A node's store, HSM worker and keystore in this process, for CLI commands.

``milagro-node init`` and ``identity ...`` need the keystore (secrets wrapped
under the KEK, keys inside the HSM) without running the whole node: they
start just those actors, use them by messages like any actor would, and stop.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import trio

from .config import NodeConfig
from .node import actor_specs
from .supervisor import Supervisor, sole_error

OFFLINE_ACTORS = ("store", "hsm-worker", "keystore")


@asynccontextmanager
async def offline_node(config: NodeConfig) -> AsyncIterator[Supervisor]:
    """The actors, running while the body runs. An error the body raises comes out as
    itself, not wrapped in the nursery's ExceptionGroup, so callers can catch it by type."""
    specs = [spec for spec in actor_specs(config) if spec.name in OFFLINE_ACTORS]
    supervisor = Supervisor(specs, request_timeout=config.limits.request_timeout)
    try:
        async with trio.open_nursery() as nursery:
            await nursery.start(supervisor.run)
            yield supervisor
            nursery.cancel_scope.cancel()
    except BaseExceptionGroup as group:
        raise sole_error(group) from None
