"""Install by role: `scripts/install.sh --roles mfa` into a fresh venv gives a node that runs
the mfa role and refuses any other role with the command that adds it."""

import json
import subprocess
from pathlib import Path

import pytest

from testkit import clean_env, start_node, stop

pytestmark = pytest.mark.slow
REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def mfa_venv(tmp_path_factory) -> Path:
    venv = tmp_path_factory.mktemp("venv-mfa") / "venv"
    done = subprocess.run([str(REPO / "scripts" / "install.sh"), "--roles", "mfa", "--venv", str(venv)],
                          capture_output=True, text=True, timeout=600, env=clean_env())
    assert done.returncode == 0, done.stderr[-2000:]
    assert "[mfa]" in done.stdout
    return venv


def node_with_roles(venv: Path, data_dir: Path, roles: str) -> None:
    cli = str(venv / "bin" / "milagro-node")
    done = subprocess.run([cli, "init", "--data-dir", str(data_dir)], capture_output=True, text=True,
                          env=clean_env(MILAGRO_NODE_ROLES=roles))
    assert done.returncode == 0, done.stderr


def test_the_mfa_role_runs(mfa_venv, tmp_path):
    data_dir = tmp_path / "node"
    node_with_roles(mfa_venv, data_dir, "mfa")
    proc = start_node(data_dir, bin_dir=mfa_venv / "bin", MILAGRO_NODE_ROLES="mfa")
    try:
        done = subprocess.run([str(mfa_venv / "bin" / "milagro-node"), "status", "--json", "--data-dir",
                               str(data_dir)], capture_output=True, text=True, env=clean_env())
        assert done.returncode == 0, done.stderr
        actors = {a["name"]: a["state"] for a in json.loads(done.stdout)["actors"]}
        assert actors["authenticator"] == "running" and "share-dealer" not in actors
    finally:
        stop(proc)


def test_custody_is_refused_with_the_install_command(mfa_venv, tmp_path):
    data_dir = tmp_path / "node"
    node_with_roles(mfa_venv, data_dir, "mfa,custody")
    done = subprocess.run([str(mfa_venv / "bin" / "milagro-node"), "run", "--data-dir", str(data_dir)],
                          capture_output=True, text=True, timeout=60,
                          env=clean_env(MILAGRO_NODE_ROLES="mfa,custody"))
    assert done.returncode == 2
    assert "the custody role is not installed" in done.stderr
    assert "scripts/install.sh --roles mfa,custody" in done.stderr
