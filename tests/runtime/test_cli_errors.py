"""Every configuration error stops the CLI with status 2 and a message naming the file and key."""

import pytest

from testkit import clean_env

GOOD_PEER = "12D3KooWDpJ7As7BWAwRMfu1VU2WCqNjvq387JEYKDBj4kx6nXTN"


def write(path, text):
    path.write_text(text)
    return path


@pytest.mark.parametrize(
    "toml, expected",
    [
        ("[api\nlisten = 1", ["node.toml", "line 1"]),
        ("[api]\nlisten_on = '127.0.0.1:1'\n", ["node.toml", "api.listen_on", "listen"]),
        ("[nodes]\nname = 'x'\n", ["node.toml", "nodes"]),
        ("[api]\nmax_connections = 'many'\n", ["node.toml", "api.max_connections", "int"]),
        ("[p2p]\nlisten = ['/ip4/1.2.3/tcp/1']\n", ["node.toml", "p2p.listen", "1.2.3"]),
        ("[api]\nlisten = 'localhost'\n", ["node.toml", "api.listen"]),
    ],
    ids=["bad-toml", "unknown-key", "unknown-section", "wrong-type", "bad-multiaddr", "bad-listen"],
)
@pytest.mark.parametrize("command", ["init", "run", "status"])
def test_config_errors_exit_2(tmp_path, cli, command, toml, expected):
    config = write(tmp_path / "node.toml", toml)
    result = cli(command, "--config", config)
    assert result.returncode == 2, result
    assert result.stderr.startswith("milagro-node: configuration error: ")
    for fragment in expected:
        assert fragment in result.stderr
    assert "Traceback" not in result.stderr


def test_missing_config_file(tmp_path, cli):
    result = cli("run", "--config", tmp_path / "nope.toml")
    assert result.returncode == 2
    assert "nope.toml" in result.stderr


def test_environment_override_error_names_the_variable(tmp_path, cli):
    result = cli("init", "--data-dir", tmp_path, env=clean_env(MILAGRO_API_MAX_CONNECTIONS="lots"))
    assert result.returncode == 2
    assert "MILAGRO_API_MAX_CONNECTIONS" in result.stderr


def test_bad_multiaddr_in_peers_file_stops_run(tmp_path, cli):
    data = tmp_path / "node"
    assert cli("init", "--data-dir", data).returncode == 0
    write(data / "node.toml", (data / "node.toml").read_text() + "\n")
    peers = write(tmp_path / "peers.toml", f"""
[federation]
name = "test"

[[member]]
name = "alpha"
identity = "bafyreigbtj4x7ip5legnfznufuopl4sg4knzc2cof6duas4b3q2fy6swua"
peer_id = "{GOOD_PEER}"
addrs = ["/ip4/127.0.0.1/tcpx/4001"]
roles = ["dta"]
""")
    result = cli("run", "--data-dir", data, env=clean_env(MILAGRO_P2P_PEERS_FILE=str(peers)))
    assert result.returncode == 2, result
    assert "peers.toml" in result.stderr and "tcpx" in result.stderr
