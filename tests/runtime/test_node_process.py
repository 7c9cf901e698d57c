"""A whole node as a separate process: init, run, status, signals, restart on the same data dir."""

import json
import signal
import sqlite3

import pytest

from milagro_node.secret_memory import may_lock_process
from testkit import start_node, stop

pytestmark = pytest.mark.slow


@pytest.fixture
def data_dir(tmp_path, cli):
    d = tmp_path / "node"
    assert cli("init", "--data-dir", d).returncode == 0
    return d


def test_run_status_and_clean_stop(data_dir, cli):
    proc = start_node(data_dir)
    try:
        result = cli("status", "--data-dir", data_dir, "--json")
        assert result.returncode == 0, result.stderr
        status = json.loads(result.stdout)
        assert {a["name"]: a["state"] for a in status["actors"]} == {
            "store": "running", "hsm-worker": "running", "keystore": "running", "pki-resolver": "running",
            "envelope-router": "running", "share-dealer": "running", "authenticator": "running",
            "api-gateway": "running"}
        assert {a["name"]: a for a in status["actors"]}["hsm-worker"]["hsm"] == "ok"
        assert status["roles"] == ["dta", "mfa", "custody"]
        table = cli("status", "--data-dir", data_dir)
        assert "api-gateway" in table.stdout and "hsm=ok" in table.stdout
    finally:
        code, took = stop(proc)
    assert code == 0
    assert took < 5
    assert not (data_dir / "run.json").exists()
    stderr = proc.stderr.read()
    assert "level=info logger=node msg=stopped" in stderr
    assert (data_dir / "admin.token").read_text().strip() not in stderr


def test_sigterm_and_rerun_reuses_the_data_dir(data_dir, cli):
    token = (data_dir / "admin.token").read_text()
    code, took = stop(start_node(data_dir), signal.SIGTERM)
    assert code == 0 and took < 5
    again = cli("init", "--data-dir", data_dir)
    assert "already initialised" in again.stdout
    proc = start_node(data_dir)
    try:
        assert cli("status", "--data-dir", data_dir).returncode == 0
    finally:
        assert stop(proc)[0] == 0
    assert (data_dir / "admin.token").read_text() == token
    verified = cli("audit", "verify", "--data-dir", data_dir)
    assert verified.returncode == 0 and "audit chain ok" in verified.stdout


def test_status_of_a_stopped_node_says_so(data_dir, cli):
    result = cli("status", "--data-dir", data_dir)
    assert result.returncode == 1
    assert "is the node running?" in result.stderr


def test_run_without_init_exits_2(tmp_path, cli):
    result = cli("run", "--data-dir", tmp_path / "empty")
    assert result.returncode == 2
    assert "not initialised" in result.stderr and "milagro-node init" in result.stderr


def test_tampered_audit_row_is_detected(data_dir, cli):
    with sqlite3.connect(data_dir / "node.db") as db:
        db.execute("UPDATE audit SET actor = 'mallory' WHERE seq = 1")
    result = cli("audit", "verify", "--data-dir", data_dir)
    assert result.returncode == 1
    assert "BROKEN at entry 1" in result.stderr


def test_token_unplugged_while_the_node_runs(data_dir, cli):
    """HSM requests fail with a clear error, the rest of the node serves on, and it recovers."""
    import time

    import trio

    from milagro_node.api_client import ApiCallError, connect

    token = (data_dir / "admin.token").read_text().strip()
    proc = start_node(data_dir)
    url = json.loads((data_dir / "run.json").read_text())["api"]

    async def call(method):
        async with connect(url, token=token) as api:
            return await api.call(method)

    try:
        assert trio.run(call, "hsm.health")["state"] == "ok"
        tokens = data_dir / "softhsm" / "tokens"
        [token_dir] = tokens.iterdir()
        token_dir.rename(tokens / "unplugged")
        try:
            with pytest.raises(ApiCallError) as failed:
                trio.run(call, "hsm.health")
            assert failed.value.data == {"code": "hsm-unavailable"}
            assert "milagro-node" in failed.value.message  # names the token
            status = trio.run(call, "node.status")
            hsm = {a["name"]: a for a in status["actors"]}["hsm-worker"]
            assert hsm["state"] == "running" and hsm["hsm"] == "unavailable"
            assert trio.run(call, "audit.tail")  # the store still serves
            # [node] lock_memory (default on) locks the node where it may lock without limit.
            assert status["secret_memory"]["process"] == ("locked" if may_lock_process() else "not locked")
        finally:
            (tokens / "unplugged").rename(token_dir)
        deadline = time.monotonic() + 10
        while True:
            try:
                assert trio.run(call, "hsm.health")["state"] == "ok"
                break
            except ApiCallError:
                assert time.monotonic() < deadline, "the node did not recover the token"
                time.sleep(0.3)
    finally:
        assert stop(proc)[0] == 0
