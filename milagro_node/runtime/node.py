"""A running node: its actors, its status, and a clean shutdown on a signal.

`Node` wires the actors for a config into a `Supervisor`; `serve` runs it
until SIGINT or SIGTERM, then cancels everything (actors close their
resources in shielded, time-bounded cleanups) so the process exits with
status 0 within the configured grace.
"""

from __future__ import annotations

import gc
import logging
import os
import signal
import sys
import time
from typing import Any

import trio

import milagro_node
from actors import mpin_grants
from actors.api_gateway import ApiGateway, ApiLimits
from actors.envelope_router import EnvelopeRouter
from actors.envelope_router.dispatch import Routes
from actors.hsm_worker import HsmWorker
from actors.keystore import Keystore
from actors.pki_resolver import PkiResolver
from actors.store import StoreActor
from milagro_node import secret_memory

from .config import NodeConfig
from .datadir import DataDir
from .federation import load_configured_federation
from .hsm_setup import hsm_target
from .supervisor import ActorSpec, Supervisor

log = logging.getLogger("milagro_node.node")

# PKCS#11 glue and SQLite run in threads that take the GIL back after each C call,
# and the trio loop waits for it when they hold it. The switch interval (CPython's
# default is 5 ms) bounds each wait on either side: 1 ms took bench/hsm.py's worst loop
# stall from 5.5 to 4.4 ms; 0.2 ms, since one audit commit takes it back about eight
# times, gave 8-50% more logins/s in bench/mpin.py and halved half-load latency (paired runs).
GIL_SWITCH_INTERVAL_S = 0.0002


def tune_interpreter() -> None:
    sys.setswitchinterval(GIL_SWITCH_INTERVAL_S)


def lock_memory(config: NodeConfig) -> None:
    """``[node] lock_memory``: the whole process out of swap and core dumps, if allowed."""
    if not config.node.lock_memory:
        log.info("process memory not locked (node.lock_memory = false): only secret memory is")
        return
    refused = secret_memory.lock_process_memory()
    if refused is None:
        log.info("process memory locked in RAM, no core dumps")
    else:
        log.warning("process memory NOT locked, only secret memory is", extra={"reason": refused})


def settle_heap() -> None:
    """Once started, move every object made so far out of the cyclic GC's sight.

    Imports and start-up leave ~hundreds of thousands of long-lived objects
    (cryptography, pkcs11, trio, ...); a full collection scanning them stalled
    the trio loop for 18 ms (bench/hsm.py). Frozen, they are never scanned again.
    """
    gc.collect()
    gc.freeze()


def actor_specs(config: NodeConfig) -> list[ActorSpec]:
    data = DataDir(config.data_dir)
    federation = load_configured_federation(config)
    limits = ApiLimits(
        max_message_bytes=config.api.max_message_bytes,
        max_connections=config.api.max_connections,
        requests_per_second=config.api.requests_per_second,
        burst=config.api.burst,
        console_idle_seconds=config.api.console_idle_seconds,
        console_max_seconds=config.api.console_max_seconds,
    )
    roles = config.node.roles
    routes = Routes()  # kept across router restarts (see actors/envelope_router/dispatch.py)
    methods = {**mpin_grants.METHODS}
    role_specs = []
    # Role actors are imported only for the roles configured: their packages are optional
    # (runtime/roles.py; `milagro-node run` checks them before it gets here).
    if "dta" in roles:
        from actors.share_dealer import ShareDealer
        from actors.share_dealer import api as dta_api

        methods.update(dta_api.METHODS)
        role_specs.append(ActorSpec("share-dealer", lambda: ShareDealer(federation),
                                    needs=("store", "keystore", "pki-resolver", "envelope-router")))
    if "mfa" in roles:
        from actors.authenticator import Authenticator
        from actors.authenticator import api as mfa_api

        methods.update(mfa_api.METHODS)
        role_specs.append(ActorSpec("authenticator", lambda: Authenticator(federation),
                                    needs=("store", "keystore", "pki-resolver", "envelope-router")))
    return [
        ActorSpec("store", lambda: StoreActor(data.db)),
        ActorSpec("hsm-worker", lambda: HsmWorker(lambda: hsm_target(config))),
        ActorSpec("keystore", Keystore, needs=("store", "hsm-worker")),
        ActorSpec("pki-resolver", lambda: PkiResolver(federation.members), needs=("store", "keystore")),
        ActorSpec("envelope-router", lambda: EnvelopeRouter(federation, config.p2p.listen, routes=routes),
                  needs=("keystore", "pki-resolver")),
        *role_specs,
        ActorSpec("api-gateway", lambda: ApiGateway(config.api.host, config.api.port, limits, methods),
                  needs=("store",)),
    ]


class Node:
    def __init__(self, config: NodeConfig, specs: list[ActorSpec] | None = None) -> None:
        self.config = config
        self.data = DataDir(config.data_dir)
        self.started_at = time.time()
        self.supervisor = Supervisor(
            actor_specs(config) if specs is None else specs,
            mailbox_size=config.limits.mailbox_size,
            request_timeout=config.limits.request_timeout,
            node_status=self.status,
            settings=config,
        )

    def status(self) -> dict[str, Any]:
        return {
            "version": milagro_node.__version__,
            "name": self.config.node.name,
            "roles": list(self.config.node.roles),
            "pid": os.getpid(),
            "data_dir": str(self.config.data_dir),
            "uptime_s": round(time.time() - self.started_at, 3),
            "actors": self.supervisor.snapshot(),
            "secret_memory": secret_memory.memory_status(),
        }

    def api_url(self) -> str | None:
        ctx = self.supervisor.states["api-gateway"].ctx
        return ctx.info.get("url") if ctx else None

    async def run(self, *, task_status: trio.TaskStatus[Node] = trio.TASK_STATUS_IGNORED) -> None:
        async with trio.open_nursery() as nursery:
            await nursery.start(self.supervisor.run)
            self.data.write_run_file({"pid": os.getpid(), "api": self.api_url(), "started": self.started_at})
            task_status.started(self)


async def serve(config: NodeConfig) -> None:
    """Run a node until SIGINT/SIGTERM; return after a clean shutdown."""
    tune_interpreter()
    node = Node(config)
    try:
        with trio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
            async with trio.open_nursery() as nursery:
                await nursery.start(node.run)
                settle_heap()
                _announce(node)
                async for signum in signals:
                    log.info("stopping", extra={"signal": signal.Signals(signum).name})
                    nursery.cancel_scope.cancel()
                    break
    finally:
        node.data.run_file.unlink(missing_ok=True)
    log.info("stopped")


def _announce(node: Node) -> None:
    url = node.api_url()
    log.info("node ready", extra={"api": url, "data_dir": str(node.config.data_dir)})
    print(
        f"milagro-node {milagro_node.__version__} ready: API {url} "
        f"(admin token in {node.data.admin_token}); "
        f"status: milagro-node status --data-dir {node.config.data_dir}",
        flush=True,
    )
