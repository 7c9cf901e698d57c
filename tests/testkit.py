"""Helpers shared by tests that run real node processes (imported by name: tests/ is on sys.path)."""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import trio

from actors.authenticator.sessions import PERMIT_GRACE_S
from actors.mailbox import ActorError
from milagro_node.core import mpin

BIN = Path(sys.executable).parent


def clean_env(**extra: str) -> dict[str, str]:
    """This environment without MILAGRO_* variables, plus `extra`."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("MILAGRO_")}
    env.update(extra)
    return env


def init_data_dir(data_dir: Path) -> Path:
    """`milagro-node init` of `data_dir` (SoftHSM token, store, identity); returns it."""
    done = subprocess.run([str(BIN / "milagro-node"), "init", "--data-dir", str(data_dir)], capture_output=True,
                          text=True, timeout=60, env=clean_env())
    assert done.returncode == 0, done.stderr
    return data_dir


def in_process_config(data_dir: Path, **env: str):
    """The config of a node run in the test's own process, on ports chosen by the OS."""
    from milagro_node.runtime.config import load_node_config

    return load_node_config(None, data_dir=data_dir, environ={
        "MILAGRO_API_LISTEN": "127.0.0.1:0", "MILAGRO_P2P_LISTEN": "/ip4/127.0.0.1/tcp/0", **env})


def start_node(data_dir: Path, *, bin_dir: Path = BIN, **env: str) -> subprocess.Popen:
    """Start `milagro-node run` (from `bin_dir`) on API and libp2p ports chosen by the OS;
    return once it is ready."""
    proc = subprocess.Popen(
        [str(bin_dir / "milagro-node"), "run", "--data-dir", str(data_dir)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        env=clean_env(**{"MILAGRO_API_LISTEN": "127.0.0.1:0", "MILAGRO_P2P_LISTEN": "/ip4/127.0.0.1/tcp/0", **env}),
    )
    line = proc.stdout.readline()  # the "ready" banner, or "" if it died first
    if "ready" not in line:
        proc.kill()
        raise AssertionError(f"node did not start: {line!r} {proc.stderr.read()}")
    return proc


def stop(proc: subprocess.Popen, sig: int = signal.SIGINT) -> tuple[int, float]:
    """Signal the node; return its exit status and how long it took to exit."""
    started = time.monotonic()
    proc.send_signal(sig)
    code = proc.wait(timeout=10)
    return code, time.monotonic() - started


async def refused(call, code: str) -> ActorError:
    """Await `call`; it must fail with an ActorError of `code`. Return the error."""
    with pytest.raises(ActorError) as caught:
        await call
    assert caught.value.code == code, caught.value
    return caught.value


async def clear_of_midnight() -> None:
    """Sleep into the next day (UTC) if it is less than two minutes away: around midnight a
    node takes the neighbouring day's time permit (actors.authenticator.sessions.PERMIT_GRACE_S),
    so a test showing that another day's permit is refused must not run then."""
    to_midnight = mpin.DAY_SECONDS - time.time() % mpin.DAY_SECONDS
    if to_midnight < 2 * PERMIT_GRACE_S:
        await trio.sleep(to_midnight + 1)
