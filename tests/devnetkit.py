"""A devnet for tests: `milagro_node.runtime.devnet` nodes as separate processes, plus API access.

    net = Devnet(tmp_path, 3)            # initialises node-1..node-3 and their peers.toml
    net.start_all()                      # or net.start(i) one by one; net.kill(i) sends SIGKILL
    async with net.api(1) as api: ...    # an admin NodeApi session on node-1
    net.stop_all()

Nodes get generous API rate limits (tests send bursts through one connection). Each node
logs to <data dir>/node.log; `Devnet.logs(i)` returns it for assertion messages, and a
failed test's report ends with each node's warnings (`Devnet.warnings`, tests/conftest.py).
"""

from __future__ import annotations

import signal
import subprocess
from collections.abc import Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import trio

from milagro_node.api_client import NodeApi, connect
from milagro_node.runtime import devnet
from testkit import clean_env

TEST_SETTINGS = {("api", "requests_per_second"): 100000.0, ("api", "burst"): 100000}


class Devnet:
    def __init__(self, root: Path, count: int, *, extra_peers: str = "",
                 node_roles: list[tuple[str, ...]] | None = None, settings: dict | None = None) -> None:
        self.nodes = devnet.prepare(root, count, node_roles=node_roles, settings={**TEST_SETTINGS, **(settings or {})})
        if extra_peers:  # more [[member]] tables (e.g. a rogue member the test plays)
            for node in self.nodes:
                with open(node.data_dir / "peers.toml", "a") as peers:
                    peers.write("\n" + extra_peers)
        self.processes: dict[int, subprocess.Popen] = {}

    def node(self, i: int) -> devnet.DevnetNode:
        return self.nodes[i - 1]

    def start(self, i: int) -> None:
        self.processes[i] = devnet.start(self.node(i), env=clean_env())

    def start_all(self) -> None:
        for i in range(1, len(self.nodes) + 1):
            if i not in self.processes or self.processes[i].poll() is not None:
                self.start(i)

    def kill(self, i: int) -> None:
        process = self.processes.pop(i)
        process.send_signal(signal.SIGKILL)
        process.wait(10)

    def stop_all(self) -> None:
        devnet.stop(list(self.processes.values()))
        self.processes.clear()

    def logs(self, i: int) -> str:
        return (self.node(i).data_dir / "node.log").read_text(errors="replace")[-4000:]

    def warnings(self, i: int, lines: int = 40) -> str:
        """The last `lines` warnings and errors in node i's log ("" if it has none yet)."""
        try:
            text = (self.node(i).data_dir / "node.log").read_text(errors="replace")
        except FileNotFoundError:
            return ""
        bad = [line for line in text.splitlines() if line.split(" ", 2)[1:2] in (["level=warning"], ["level=error"],
                                                                                 ["level=critical"])]
        return "\n".join(bad[-lines:])

    @asynccontextmanager
    async def api(self, i: int):
        node = self.node(i)
        async with connect(node.api_url, token=node.admin_token_file.read_text().strip()) as api:
            yield api


async def eventually(check: Callable[[], Awaitable[Any]], *, timeout: float, what: str, step: float = 0.25) -> Any:
    """Await ``check()`` until it returns something truthy; fail after ``timeout`` seconds."""
    last: Any = None
    with trio.move_on_after(timeout):
        while True:
            last = await check()
            if last:
                return last
            await trio.sleep(step)
    raise AssertionError(f"{what}: not within {timeout:g}s (last: {last!r})")


async def inbox(api: NodeApi, *, payloads: bool = True) -> list[dict[str, Any]]:
    """Every envelope in a node's inbox (paged through envelope.inbox; pages of up to 100,
    each opened by the node while a burst may still be arriving; a page with payloads may
    end early, so only an empty one is the end)."""
    rows: list[dict[str, Any]] = []
    while True:
        page = await api.call("envelope.inbox", after=rows[-1]["n"] + 1 if rows else 0, count=100,
                              payload=payloads)
        if not page:
            return rows
        rows += page


async def inbox_cids(api: NodeApi) -> set[str]:
    return {row["cid"] for row in await inbox(api, payloads=False)}
