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
from .supervisor import Supervisor

OFFLINE_ACTORS = ("store", "hsm-worker", "keystore")


@asynccontextmanager
async def offline_node(config: NodeConfig) -> AsyncIterator[Supervisor]:
    specs = [spec for spec in actor_specs(config) if spec.name in OFFLINE_ACTORS]
    supervisor = Supervisor(specs, request_timeout=config.limits.request_timeout)
    async with trio.open_nursery() as nursery:
        await nursery.start(supervisor.run)
        yield supervisor
        nursery.cancel_scope.cancel()
