"""The node identity through the CLI: made at init with keys in the HSM, rotated, exported."""

import json

import pytest

from milagro_node.core.identity import import_log, key_digest
from testkit import start_node, stop

pytestmark = pytest.mark.slow


@pytest.fixture
def data_dir(tmp_path, cli):
    d = tmp_path / "node"
    result = cli("init", "--data-dir", d)
    assert result.returncode == 0, result.stderr
    assert "created node identity bafy" in result.stdout
    return d


def show(cli, data_dir):
    result = cli("identity", "show", "--data-dir", data_dir, "--json")
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def test_init_makes_one_identity_and_rotation_follows_the_commitment(data_dir, cli, tmp_path):
    first = show(cli, data_dir)
    assert first["seq"] == 0 and first["peer_id"].startswith("12D3KooW")
    assert sorted(first["roles"]) == ["custody", "dta", "mfa"]
    assert first["addrs"] == []  # the default listen address is a wildcard: nothing to dial
    assert "node identity" not in cli("init", "--data-dir", data_dir).stdout  # idempotent
    assert show(cli, data_dir)["identity"] == first["identity"]

    exported = tmp_path / "before.log"
    assert cli("identity", "export", "--data-dir", data_dir, "--out", exported).returncode == 0
    events, state = import_log(exported.read_bytes())
    assert state.identity == first["identity"] and len(events) == 1

    rotated = cli("identity", "rotate", "--data-dir", data_dir)
    assert rotated.returncode == 0, rotated.stderr
    second = show(cli, data_dir)
    assert second["identity"] == first["identity"] and second["seq"] == 1
    assert key_digest(bytes.fromhex(second["sign_key"])) == state.next_digest
    assert second["x25519"] != first["x25519"]

    assert cli("identity", "export", "--data-dir", data_dir, "--out", tmp_path / "after.log").returncode == 0
    events, state = import_log((tmp_path / "after.log").read_bytes())
    assert len(events) == 2 and state.seq == 1


def test_rotate_refused_while_the_node_runs(data_dir, cli):
    proc = start_node(data_dir)
    try:
        result = cli("identity", "rotate", "--data-dir", data_dir)
        assert result.returncode == 1 and "stop it" in result.stderr
    finally:
        assert stop(proc)[0] == 0
    assert show(cli, data_dir)["seq"] == 0


def test_only_dialable_listen_addresses_are_announced():
    from milagro_node.cli.identity import dialable

    listen = ("/ip4/0.0.0.0/tcp/4001", "/ip6/::/tcp/4001", "/ip4/127.0.0.1/tcp/4002", "/dns4/node.example/tcp/4003")
    assert dialable(listen) == ("/ip4/127.0.0.1/tcp/4002", "/dns4/node.example/tcp/4003")
