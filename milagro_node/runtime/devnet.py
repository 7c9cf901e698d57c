"""A local federation: N nodes on 127.0.0.1, each its own data dir and its own process.

Node layer (runtime). ``milagro-node devnet --nodes N [--dir D]`` calls `prepare` then
`start`; the test suite uses the same functions, so what tests run is what an operator runs.

`prepare` is idempotent: a node dir that already has a node.toml keeps it (and its ports,
identity and token); a new one gets free ports, ``milagro-node init`` (in a child process:
each node has its own SoftHSM token and PKCS#11 environment), and then every node gets the
same peers.toml, listing all of them. `start` launches ``milagro-node run`` for each and waits
until its API answers.
"""

from __future__ import annotations

import json
import os
import random
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import attrs

from .config_template import render_default_config
from .datadir import DataDir

FEDERATION_NAME = "devnet"
READY_TIMEOUT_S = 60.0


@attrs.frozen
class DevnetNode:
    name: str
    data_dir: Path
    api_port: int
    p2p_port: int
    identity: str
    peer_id: str
    roles: tuple[str, ...] = ("dta", "mfa", "custody")

    @property
    def api_url(self) -> str:
        return f"ws://127.0.0.1:{self.api_port}"

    @property
    def p2p_addr(self) -> str:
        return f"/ip4/127.0.0.1/tcp/{self.p2p_port}"

    @property
    def admin_token_file(self) -> Path:
        return DataDir(self.data_dir).admin_token


_handed_out: set[int] = set()


def free_port() -> int:
    """A port on 127.0.0.1 that is free now, below the kernel's ephemeral range.

    Not from ``bind(0)``: that range is where outgoing connections take their local
    ports, so a stopped node's port could be taken by a peer dialling it, and two calls
    can return the same port. Never the same port twice in one process.
    """
    low = _ephemeral_low()
    for _ in range(1000):
        port = random.randrange(max(1024, low - 20000), low)
        if port in _handed_out:
            continue
        with socket.socket() as sock:
            try:
                sock.bind(("127.0.0.1", port))
            except OSError:
                continue
        _handed_out.add(port)
        return port
    raise RuntimeError("no free port below the ephemeral range on 127.0.0.1")


def _ephemeral_low() -> int:
    try:
        return int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return 32768


def milagro_command(*args: str) -> list[str]:
    return [sys.executable, "-m", "milagro_node.cli.main", *args]


def prepare(root: Path, count: int, *, roles: Sequence[str] = ("dta", "mfa", "custody"),
            node_roles: Sequence[Sequence[str]] | None = None,
            settings: dict[tuple[str, str], Any] | None = None) -> list[DevnetNode]:
    """Initialise ``count`` nodes under ``root`` (node-1 ... node-N) and their peers.toml.

    Every node has `roles`, unless `node_roles` gives each node its own (one entry per node).
    """
    root = Path(root).absolute()
    root.mkdir(parents=True, exist_ok=True)
    if node_roles is not None and len(node_roles) != count:
        raise ValueError(f"node_roles has {len(node_roles)} entries for {count} nodes")
    per_node = [tuple(r) for r in node_roles] if node_roles is not None else [tuple(roles)] * count
    nodes = [_prepare_node(root / f"node-{i}", f"node-{i}", per_node[i - 1], settings or {})
             for i in range(1, count + 1)]
    peers = render_peers(nodes)
    for node in nodes:
        (node.data_dir / "peers.toml").write_text(peers)
    return nodes


def _prepare_node(data_dir: Path, name: str, roles: Sequence[str], settings: dict) -> DevnetNode:
    config = DataDir(data_dir).config
    if not config.exists():
        data_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        values = {("node", "name"): name, ("node", "roles"): list(roles),
                  ("api", "listen"): f"127.0.0.1:{free_port()}",
                  ("p2p", "listen"): [f"/ip4/127.0.0.1/tcp/{free_port()}"], **settings}
        config.write_text(render_default_config(data_dir, values))
        config.chmod(0o600)
    _run_cli("init", "--data-dir", str(data_dir))
    shown = json.loads(_run_cli("identity", "show", "--json", "--data-dir", str(data_dir)))
    api_port = _read_port(config, "api")
    p2p_port = int(shown["addrs"][0].rsplit("/", 1)[1])
    return DevnetNode(name, data_dir, api_port, p2p_port, shown["identity"], shown["peer_id"], tuple(roles))


def _read_port(config: Path, section: str) -> int:
    import tomllib

    listen = tomllib.loads(config.read_text())[section]["listen"]
    return int(listen.rsplit(":", 1)[1])


def _run_cli(*args: str) -> str:
    done = subprocess.run(milagro_command(*args), capture_output=True, text=True, timeout=120)
    if done.returncode != 0:
        raise RuntimeError(f"milagro-node {' '.join(args)} failed: {done.stderr.strip()[-500:]}")
    return done.stdout


def render_peers(nodes: Sequence[DevnetNode]) -> str:
    lines = ["# Written by `milagro-node devnet`: every node of this local federation.", "",
             "[federation]", f'name = "{FEDERATION_NAME}"', ""]
    for node in nodes:
        lines += ["[[member]]", f'name = "{node.name}"', f'identity = "{node.identity}"',
                  f'peer_id = "{node.peer_id}"', f'addrs = ["{node.p2p_addr}"]',
                  f"roles = {json.dumps(list(node.roles))}", ""]
    return "\n".join(lines)


def start(node: DevnetNode, *, log_file: Path | None = None, env: dict[str, str] | None = None) -> subprocess.Popen:
    """``milagro-node run`` for ``node`` in its own process group; returns once its API is up."""
    log = open(log_file or node.data_dir / "node.log", "ab")
    process = subprocess.Popen(milagro_command("run", "--data-dir", str(node.data_dir)),
                               stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                               env={**os.environ, **(env or {})}, start_new_session=True)
    log.close()
    wait_ready(node, process)
    return process


def wait_ready(node: DevnetNode, process: subprocess.Popen, timeout: float = READY_TIMEOUT_S) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{node.name} exited with status {process.returncode} (see {node.data_dir}/node.log)")
        run = DataDir(node.data_dir).read_run_file()
        # The run file names the URL this node's gateway listens on: a port someone else
        # holds (so the gateway could not listen) never counts as this node being ready.
        if run and run.get("pid") == process.pid and run.get("api") == node.api_url:
            with socket.socket() as sock:
                if sock.connect_ex(("127.0.0.1", node.api_port)) == 0:
                    return
        time.sleep(0.1)
    raise RuntimeError(f"{node.name} was not ready within {timeout:g}s")


def stop(processes: Sequence[subprocess.Popen], *, grace: float = 8.0) -> None:
    """SIGTERM every node, then SIGKILL what is still running after ``grace`` seconds."""
    for process in processes:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + grace
    for process in processes:
        try:
            process.wait(max(0.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
