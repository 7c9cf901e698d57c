"""The container image: built by scripts/build-image.sh, run, asked for its status from inside.

Runs the image with `buildah run --isolation=chroot`, which works where `podman run` does not
(here crun may not set rlimits inside the sandbox). The container shares the host's network,
so each one gets its own API and libp2p ports.

The volume: `buildah run` puts its own volume over an image's VOLUME path whatever ``-v``
says, so the host directory is mounted at /volume and MILAGRO_DATA_DIR points there — the
image's entrypoint and `milagro-node status` (its HEALTHCHECK) follow that variable.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from pathlib import Path

import pytest

from testkit import clean_env

pytestmark = pytest.mark.slow
REPO = Path(__file__).resolve().parents[2]
TAG = "localhost/milagro-node:test"
STORAGE = ["--storage-driver", "vfs"]
UID = 10001  # the image's milagro user
VOLUME = "/volume"


def free_port() -> int:
    from milagro_node.runtime.devnet import free_port as pick

    return pick()


@pytest.fixture(scope="module")
def image() -> str:
    if os.geteuid() != 0 and not os.environ.get("CI"):
        pytest.skip("building the image needs root (podman with vfs storage, debootstrap)")
    started = time.monotonic()
    done = subprocess.run([str(REPO / "scripts" / "build-image.sh"), "--tag", TAG], capture_output=True,
                          text=True, timeout=1800, env=clean_env())
    assert done.returncode == 0, (done.stdout + done.stderr)[-3000:]
    summary = done.stdout.strip().splitlines()[-1]
    assert "MiB in" in summary, summary  # the build script prints size and build time
    print(f"\n{summary} (test saw {time.monotonic() - started:.0f} s)")
    return TAG


class Container:
    """One working container of the image with its own /data volume (a host directory)."""

    def __init__(self, image: str, data: Path) -> None:
        data.mkdir(mode=0o700)
        os.chown(data, UID, UID)
        self.data = data
        self.api_port, self.p2p_port = free_port(), free_port()
        self.name = subprocess.run(["buildah", *STORAGE, "from", image], capture_output=True, text=True,
                                   check=True).stdout.strip()
        self.process: subprocess.Popen | None = None

    def _run_argv(self, *command: str) -> list[str]:
        env = [f"MILAGRO_API_LISTEN=127.0.0.1:{self.api_port}",
               f"MILAGRO_P2P_LISTEN=/ip4/127.0.0.1/tcp/{self.p2p_port}", f"MILAGRO_DATA_DIR={VOLUME}"]
        return ["buildah", *STORAGE, "run", "--isolation", "chroot", "-v", f"{self.data}:{VOLUME}",
                *[a for e in env for a in ("--env", e)], self.name, "--", *command]

    def start(self) -> None:
        self.process = subprocess.Popen(self._run_argv("milagro-entrypoint", "run"), stdout=subprocess.PIPE,
                                        stderr=subprocess.STDOUT, text=True, start_new_session=True)
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise AssertionError(f"the container exited: {self.process.stdout.read()[-2000:]}")
            if self.exec("milagro-node", "status", check=False).returncode == 0:
                return
            time.sleep(1)
        raise AssertionError("the node in the container did not answer milagro-node status within 120 s")

    def exec(self, *command: str, check: bool = True) -> subprocess.CompletedProcess:
        done = subprocess.run(self._run_argv(*command), capture_output=True, text=True, timeout=120)
        if check:
            assert done.returncode == 0, done.stderr[-2000:]
        return done

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(20)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait()
        self.process = None

    def remove(self) -> None:
        self.stop()
        subprocess.run(["buildah", *STORAGE, "rm", self.name], capture_output=True)

    def identity(self) -> str:
        return json.loads(self.exec("milagro-node", "identity", "show", "--json").stdout)["identity"]


def test_two_containers_have_their_own_identities_and_keep_them_across_restarts(image, tmp_path):
    first, second = Container(image, tmp_path / "one"), Container(image, tmp_path / "two")
    try:
        for container in (first, second):
            container.start()
        status = json.loads(first.exec("milagro-node", "status", "--json").stdout)
        assert {a["name"]: a["state"] for a in status["actors"]}["hsm-worker"] == "running"
        assert status["data_dir"] == VOLUME and status["roles"] == ["dta", "mfa", "custody"]
        identities = first.identity(), second.identity()
        assert identities[0] != identities[1]
        # Each volume has its own SoftHSM token and PIN file, made at first start, owned by the
        # image's unprivileged user.
        for container in (first, second):
            assert (container.data / "hsm.pin").stat().st_uid == UID
            assert (container.data / "hsm.pin").stat().st_mode & 0o077 == 0

        first.stop()
        first.start()  # a restart: no second init, same identity, same secrets
        assert first.identity() == identities[0]
        audit = first.exec("milagro-node", "audit", "verify")
        assert "audit chain ok" in audit.stdout
    finally:
        first.remove()
        second.remove()
