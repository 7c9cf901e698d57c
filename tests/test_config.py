"""Tests for the node config (runtime/config.py) and federation file (runtime/federation.py).

Every test writes real files under tmp_path and passes an explicit ``environ`` so
the machine's own MILAGRO_* variables cannot leak in.  Error tests check that
str(ConfigError) names the file, the key and the problem.
"""

from pathlib import Path

import attrs
import pytest
from multiformats import CID

from milagro_node.runtime.config import (
    ROLES,
    ConfigError,
    NodeConfig,
    default_data_dir,
    load_node_config,
    parse_host_port,
    render_default_config,
)
from milagro_node.runtime.federation import (
    Federation,
    load_configured_federation,
    load_federation,
)

REPO = Path(__file__).resolve().parents[1]

FULL = """
[node]
name = "alpha"
roles = ["custody", "dta"]
log_format = "json"
log_level = "debug"
data_dir = "state"

[api]
listen = "[::1]:7411"
max_message_bytes = 1024
max_connections = 8
requests_per_second = 2
burst = 5

[p2p]
listen = ["/ip4/127.0.0.1/tcp/0", "/ip6/::1/udp/4001/quic-v1"]
peers_file = "fed/peers.toml"

[hsm]
module = "lib/libfakehsm.so"
token_label = "alpha-token"
token_serial = "0001"
pin_file = "secrets/pin"
pin_env = "ALPHA_PIN"
pin = "123456"
allow_pin_in_config = true

[limits]
mailbox_size = 8
request_timeout = 2.5
shutdown_grace = 5
"""


def write(directory: Path, text: str, name: str = "node.toml") -> Path:
    path = directory / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def load(path, environ=None, **kwargs) -> NodeConfig:
    return load_node_config(path, environ={} if environ is None else environ, **kwargs)


def expect_error(path, environ=None, **kwargs) -> ConfigError:
    with pytest.raises(ConfigError) as info:
        load(path, environ, **kwargs)
    return info.value


def check(error: ConfigError, file, key, *fragments: str) -> None:
    """The error names file, key and problem, both as attributes and in str()."""
    assert error.file == str(file)
    assert error.key == key
    text = str(error)
    assert text.startswith(f"{file}: {key}: " if key else f"{file}: ")
    for fragment in fragments:
        assert fragment in error.problem, (fragment, text)


# --------------------------------------------------------------------------- defaults


def test_defaults_without_a_file(tmp_path):
    config = load(None, data_dir=tmp_path)
    assert config.source is None
    assert config.data_dir == tmp_path
    assert config.node.name == "milagro-node"
    assert config.node.roles == ROLES == ("dta", "mfa", "custody")
    assert (config.node.log_format, config.node.log_level) == ("kv", "info")
    assert config.api.listen == "127.0.0.1:7400"
    assert (config.api.host, config.api.port) == ("127.0.0.1", 7400)
    assert (config.api.max_message_bytes, config.api.max_connections) == (2 << 20, 64)
    assert (config.api.requests_per_second, config.api.burst) == (50.0, 100)
    assert config.p2p.listen == ("/ip4/0.0.0.0/tcp/4001",)
    assert config.p2p.peers_file == tmp_path / "peers.toml"
    assert config.p2p.peers_file_explicit is False
    assert config.hsm.module == Path("/usr/lib/softhsm/libsofthsm2.so")
    assert config.hsm.token_label == "milagro-node"
    assert config.hsm.token_serial is None
    assert config.hsm.pin_file == tmp_path / "hsm.pin"
    assert (config.hsm.pin_env, config.hsm.pin, config.hsm.allow_pin_in_config) == (None, None, False)
    assert (config.limits.mailbox_size, config.limits.request_timeout, config.limits.shutdown_grace) == (64, 10.0, 4.0)


def test_config_classes_are_frozen(tmp_path):
    config = load(None, data_dir=tmp_path)
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        config.api.listen = "0.0.0.0:1"  # type: ignore[misc]


def test_default_data_dir(tmp_path):
    assert default_data_dir({"MILAGRO_DATA_DIR": str(tmp_path / "d")}) == tmp_path / "d"
    assert default_data_dir({"XDG_DATA_HOME": str(tmp_path / "x"), "HOME": "/h"}) == tmp_path / "x" / "milagro-node"
    assert default_data_dir({"HOME": "/h"}) == Path("/h/.local/share/milagro-node")
    # The XDG spec says to ignore a relative XDG_DATA_HOME.
    assert default_data_dir({"XDG_DATA_HOME": "rel", "HOME": "/h"}) == Path("/h/.local/share/milagro-node")


def test_no_path_finds_node_toml_in_the_data_dir(tmp_path):
    write(tmp_path, '[node]\nname = "found"\n')
    config = load(None, data_dir=tmp_path)
    assert config.node.name == "found"
    assert config.source == tmp_path / "node.toml"
    # ... and in MILAGRO_DATA_DIR when no data_dir argument is given.
    config = load(None, {"MILAGRO_DATA_DIR": str(tmp_path)})
    assert config.node.name == "found" and config.data_dir == tmp_path


def test_data_dir_precedence(tmp_path):
    path = write(tmp_path / "etc", '[node]\ndata_dir = "from-config"\n')
    env = {"MILAGRO_DATA_DIR": str(tmp_path / "from-env")}
    assert load(path, env, data_dir=tmp_path / "arg").data_dir == tmp_path / "arg"
    assert load(path, env).data_dir == tmp_path / "from-env"
    assert load(path).data_dir == tmp_path / "etc" / "from-config"  # relative to the file
    assert load(write(tmp_path / "etc2", "")).data_dir == tmp_path / "etc2"  # the file's directory
    assert load(None, {"HOME": str(tmp_path / "home")}).data_dir == tmp_path / "home/.local/share/milagro-node"


# --------------------------------------------------------------------------- full file


def test_full_file_round_trip(tmp_path):
    path = write(tmp_path, FULL)
    config = load(path)
    assert config.source == path
    assert config.data_dir == tmp_path / "state"
    assert config.node == attrs.evolve(config.node, name="alpha", roles=("custody", "dta"),
                                       log_format="json", log_level="debug")
    assert (config.node.name, config.node.roles) == ("alpha", ("custody", "dta"))
    assert (config.node.log_format, config.node.log_level) == ("json", "debug")
    assert config.api.listen == "[::1]:7411"
    assert (config.api.host, config.api.port) == ("::1", 7411)
    assert (config.api.max_message_bytes, config.api.max_connections, config.api.burst) == (1024, 8, 5)
    assert config.api.requests_per_second == 2.0 and isinstance(config.api.requests_per_second, float)
    assert config.p2p.listen == ("/ip4/127.0.0.1/tcp/0", "/ip6/::1/udp/4001/quic-v1")
    assert config.p2p.peers_file == tmp_path / "fed" / "peers.toml"  # relative to the file
    assert config.p2p.peers_file_explicit is True
    assert config.hsm.module == tmp_path / "lib" / "libfakehsm.so"
    assert (config.hsm.token_label, config.hsm.token_serial) == ("alpha-token", "0001")
    assert config.hsm.pin_file == tmp_path / "state" / "secrets" / "pin"  # relative to the data dir
    assert (config.hsm.pin_env, config.hsm.pin, config.hsm.allow_pin_in_config) == ("ALPHA_PIN", "123456", True)
    assert "123456" not in repr(config)  # the PIN stays out of logs
    assert (config.limits.mailbox_size, config.limits.request_timeout, config.limits.shutdown_grace) == (8, 2.5, 5.0)


def test_empty_sections_and_empty_optional_values(tmp_path):
    path = write(tmp_path, '[node]\n[api]\n[p2p]\n[hsm]\npin_file = ""\ntoken_serial = ""\n[limits]\n')
    config = load(path)
    assert config.hsm.pin_file is None and config.hsm.token_serial is None
    assert config.api == load(None, data_dir=tmp_path).api


def test_render_default_config_loads_back_to_the_defaults(tmp_path):
    defaults = load(None, data_dir=tmp_path)  # before the file exists
    path = write(tmp_path, render_default_config(tmp_path))
    from_file = load(path)
    assert from_file.source == path
    assert attrs.evolve(from_file, source=None) == defaults
    # and through the "no path" lookup, as `milagro-node run` would find it
    assert load(None, data_dir=tmp_path) == from_file


def test_render_default_config_documents_every_key(tmp_path):
    text = render_default_config(tmp_path)
    for key in ["name", "roles", "log_format", "log_level", "data_dir", "listen", "max_message_bytes",
                "max_connections", "requests_per_second", "burst", "peers_file", "module", "token_label",
                "token_serial", "pin_file", "pin_env", "pin", "allow_pin_in_config", "mailbox_size",
                "request_timeout", "shutdown_grace"]:
        assert f"\n{key} = " in text or f"\n# {key} = " in text, key
    for section in ["node", "api", "p2p", "hsm", "limits"]:
        assert f"\n[{section}]\n" in text


# --------------------------------------------------------------------------- environment


def test_env_overrides(tmp_path):
    path = write(tmp_path, '[api]\nlisten = "127.0.0.1:7500"\n[limits]\nmailbox_size = 16\n')
    env = {
        "MILAGRO_API_LISTEN": "127.0.0.1:0",
        "MILAGRO_NODE_ROLES": "dta, mfa",
        "MILAGRO_LIMITS_MAILBOX_SIZE": "8",
        "MILAGRO_NODE_LOG_FORMAT": "json",
        "MILAGRO_API_REQUESTS_PER_SECOND": "2.5",
        "MILAGRO_HSM_ALLOW_PIN_IN_CONFIG": "yes",
        "MILAGRO_HSM_PIN_FILE": "",
        "MILAGRO_P2P_LISTEN": "/ip4/127.0.0.1/tcp/1,/ip4/127.0.0.1/tcp/2",
        "MILAGRO_P2P_PEERS_FILE": "other.toml",
        # reserved variables are not overrides
        "MILAGRO_HSM_PIN": "0000",
        "MILAGRO_ADMIN_TOKEN": "secret",
        # unrelated MILAGRO_* variables are left alone
        "MILAGRO_TEST_SLOW": "1",
    }
    config = load(path, env)
    assert config.api.listen == "127.0.0.1:0" and config.api.port == 0
    assert config.node.roles == ("dta", "mfa")
    assert config.limits.mailbox_size == 8
    assert config.node.log_format == "json"
    assert config.api.requests_per_second == 2.5
    assert config.hsm.allow_pin_in_config is True
    assert config.hsm.pin_file is None
    assert config.hsm.pin is None
    assert config.p2p.listen == ("/ip4/127.0.0.1/tcp/1", "/ip4/127.0.0.1/tcp/2")
    assert config.p2p.peers_file == tmp_path / "other.toml" and config.p2p.peers_file_explicit


@pytest.mark.parametrize(
    "name, value, key, fragments",
    [
        ("MILAGRO_LIMITS_MAILBOX_SIZE", "eight", "limits.mailbox_size", ['expected an integer, got "eight"']),
        ("MILAGRO_LIMITS_MAILBOX_SIZE", "1.5", "limits.mailbox_size", ["expected an integer"]),
        ("MILAGRO_LIMITS_MAILBOX_SIZE", "0", "limits.mailbox_size", ["out of range"]),
        ("MILAGRO_LIMITS_REQUEST_TIMEOUT", "soon", "limits.request_timeout", ["expected a number"]),
        ("MILAGRO_LIMITS_REQUEST_TIMEOUT", "nan", "limits.request_timeout", ["finite"]),
        ("MILAGRO_LIMITS_SHUTDOWN_GRACE", "9", "limits.shutdown_grace", ["out of range", "at most 5.0"]),
        ("MILAGRO_HSM_ALLOW_PIN_IN_CONFIG", "maybe", "hsm.allow_pin_in_config", ["expected a boolean"]),
        ("MILAGRO_NODE_ROLES", "dta,mfx", "node.roles", ['"mfx"', 'did you mean "mfa"']),
        ("MILAGRO_NODE_ROLES", "", "node.roles", ["at least one role"]),
        ("MILAGRO_NODE_LOG_FORMAT", "xml", "node.log_format", ['"xml" is not one of kv, json']),
        ("MILAGRO_API_LISTEN", "localhost", "api.listen", ['expected "host:port", got "localhost"']),
        ("MILAGRO_P2P_LISTEN", "/ip4/1.2.3.4/tcp/99999", "p2p.listen", ['"/tcp/99999"']),
        ("MILAGRO_API_FOO", "1", "api.foo", ["unknown setting"]),
        ("MILAGRO_API_LISTN", "1", "api.listn", ["did you mean MILAGRO_API_LISTEN"]),
        ("MILAGRO_NODE_DATA_DIR", "/x", "node.data_dir", ["use MILAGRO_DATA_DIR"]),
    ],
)
def test_env_errors_name_the_variable(tmp_path, name, value, key, fragments):
    error = expect_error(None, {name: value}, data_dir=tmp_path)
    check(error, name, key, *fragments)


# --------------------------------------------------------------------------- file errors


def test_missing_file_is_an_error(tmp_path):
    error = expect_error(tmp_path / "nope.toml")
    check(error, tmp_path / "nope.toml", None, "file not found")


def test_bad_toml_gives_the_line(tmp_path):
    path = write(tmp_path, '[api]\nlisten = "127.0.0.1:1"\nburst = \n')
    error = expect_error(path)
    check(error, path, None, "invalid TOML", "line 3")


def test_not_utf8(tmp_path):
    path = tmp_path / "node.toml"
    path.write_bytes(b'[node]\nname = "\xff"\n')
    check(expect_error(path), path, None, "not UTF-8")


def test_error_uses_the_path_as_given(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    write(tmp_path, '[api]\nlisten = "localhost"\n')
    error = expect_error(Path("node.toml"))
    assert str(error) == 'node.toml: api.listen: expected "host:port", got "localhost"'


@pytest.mark.parametrize(
    "text, key, fragments",
    [
        ("[apii]\n", "apii", ["unknown section [apii]", "did you mean [api]"]),
        ("[metrics]\nport = 1\n", "metrics", ["unknown section [metrics]", "known: node, api"]),
        ('name = "x"\n', "name", ["belongs in a section: [node] name"]),
        ("api = 1\n", "api", ["expected a table [api], found integer"]),
        ('[api]\nlistn = "127.0.0.1:1"\n', "api.listn", ["unknown key", 'did you mean "listen"']),
        ("[limits]\nmailbox = 3\n", "limits.mailbox", ["unknown key", 'did you mean "mailbox_size"']),
        ('[api]\nmax_connections = "64"\n', "api.max_connections", ['expected an integer, found string "64"']),
        ("[api]\nmax_connections = 6.4\n", "api.max_connections", ["expected an integer, found float 6.4"]),
        ("[api]\nmax_connections = true\n", "api.max_connections", ["expected an integer, found boolean"]),
        ('[limits]\nrequest_timeout = "10s"\n', "limits.request_timeout", ["expected a number, found string"]),
        ("[limits]\nrequest_timeout = nan\n", "limits.request_timeout", ["finite"]),
        ("[limits]\nrequest_timeout = 0\n", "limits.request_timeout", ["out of range", "above 0.0"]),
        ('[node]\nroles = "dta"\n', "node.roles", ["expected an array of strings, found string"]),
        ('[node]\nroles = ["dta", 1]\n', "node.roles", ["found integer 1 at index 1"]),
        ("[node]\nname = 7\n", "node.name", ["expected a string, found integer 7"]),
        ('[node]\nname = ""\n', "node.name", ["must not be empty"]),
        ("[hsm]\nallow_pin_in_config = 1\n", "hsm.allow_pin_in_config", ["expected a boolean, found integer"]),
        ("[hsm]\nmodule = 2001-01-01\n", "hsm.module", ["expected a path string, found date"]),
        ('[hsm]\nmodule = ""\n', "hsm.module", ["must not be empty"]),
        ('[hsm]\ntoken_label = "' + "x" * 33 + '"\n', "hsm.token_label", ["longer than 32 bytes"]),
        ('[hsm]\npin_env = "NOT A NAME"\n', "hsm.pin_env", ["not an environment variable name"]),
        ('[p2p]\nlisten = ["/ip4/1.2.3/tcp/1"]\n', "p2p.listen", ['bad "/ip4/1.2.3"']),
        ('[p2p]\nlisten = ["/ip4/1.2.3.4/tcp/1/wss"]\n', "p2p.listen", ['unknown protocol "/wss"']),
        ('[p2p]\nlisten = ["/ip4/1.2.3.4"]\n', "p2p.listen", ["needs an address and /tcp/<port>"]),
        ("[p2p]\nlisten = []\n", "p2p.listen", ["at least one listen multiaddr"]),
        ('[p2p]\nlisten = ["/ip4/1.2.3.4/tcp/1/p2p/QmYwAPJzv5CZsnA625s3Xf2nemtYgPpHdWEz79ojWnPbdG"]\n',
         "p2p.listen", ["must not contain /p2p"]),
        ('[api]\nlisten = "localhost"\n', "api.listen", ['expected "host:port", got "localhost"']),
        ('[api]\nlisten = ":7400"\n', "api.listen", ['expected "host:port"']),
        ('[api]\nlisten = "::1:7400"\n', "api.listen", ['IPv6 addresses go in brackets, e.g. "[::1]:7400"']),
        ('[api]\nlisten = "[::1]7400"\n', "api.listen", ['expected "host:port"']),
        ('[api]\nlisten = "[1.2.3.4]:7400"\n', "api.listen", ["not an IPv6 address"]),
        ('[api]\nlisten = "300.1.1.1:7400"\n', "api.listen", ['"300.1.1.1"', "not an IPv4 address"]),
        ('[api]\nlisten = "bad_host:7400"\n', "api.listen", ["not a host name or IP address"]),
        ('[api]\nlisten = "127.0.0.1:70000"\n', "api.listen", ['port "70000"', "0..65535"]),
        ('[api]\nlisten = "127.0.0.1:-1"\n', "api.listen", ['port "-1"']),
        ('[api]\nlisten = "127.0.0.1:http"\n', "api.listen", ['port "http"']),
        ("[api]\nmax_message_bytes = 100\n", "api.max_message_bytes", ["out of range", "at least 1024"]),
        ("[api]\nmax_message_bytes = 16777217\n", "api.max_message_bytes", ["at most 16777216"]),
        ('[node]\nroles = ["dta", "dtb"]\n', "node.roles", ['"dtb" is not one of dta, mfa, custody',
                                                          'did you mean "dta"']),
        ('[node]\nroles = ["mfa", "mfa"]\n', "node.roles", ['duplicate role "mfa"']),
        ("[node]\nroles = []\n", "node.roles", ["at least one role"]),
        ('[node]\nlog_level = "verbose"\n', "node.log_level", ['"verbose" is not one of debug, info']),
        ("[limits]\nshutdown_grace = 6\n", "limits.shutdown_grace", ["6.0 is out of range", "at most 5.0"]),
        ("[limits]\nshutdown_grace = -1\n", "limits.shutdown_grace", ["out of range"]),
        ("[limits]\nmailbox_size = 0\n", "limits.mailbox_size", ["out of range"]),
        ("[limits]\nmailbox_size = 10001\n", "limits.mailbox_size", ["at most 10000"]),
    ],
)
def test_file_errors_name_file_key_and_problem(tmp_path, text, key, fragments):
    path = write(tmp_path, text)
    check(expect_error(path), path, key, *fragments)


def test_pin_in_config_is_refused_without_opt_in(tmp_path):
    path = write(tmp_path, '[hsm]\npin = "987654"\n')
    error = expect_error(path)
    check(error, path, "hsm.pin", "refused unless hsm.allow_pin_in_config = true")
    assert "987654" not in str(error)
    # the opt-in may also come from the environment
    assert load(path, {"MILAGRO_HSM_ALLOW_PIN_IN_CONFIG": "true"}).hsm.pin == "987654"


def test_wrong_type_of_pin_does_not_echo_it(tmp_path):
    path = write(tmp_path, "[hsm]\npin = 987654\nallow_pin_in_config = true\n")
    error = expect_error(path)
    check(error, path, "hsm.pin", "expected a string, found integer")
    assert "987654" not in str(error)


def test_parse_host_port():
    assert parse_host_port("example.com:80") == ("example.com", 80)
    assert parse_host_port("[::]:0") == ("::", 0)
    with pytest.raises(ValueError):
        parse_host_port("example.com")


# --------------------------------------------------------------------------- federation

ALPHA = ("alpha", "bafyreich7wsjl4rnbf2cvz45agmdbcktoxzsw5lpk2butwy63bomaoxbo4",
         "12D3KooWQbi2JfsCxjnF5E9a7LetSEPreRErWzS4zSakLAmdPRuK")
BETA = ("beta", "bafyreihb4ko55u2uryzklbze5j5swf4qvcrcvfusxfrqvxalvbehyrth7i",
        "12D3KooWGGX67nPyBExgVLbTt2CjizYhizS23MaiGCHaXQrhSoUC")
GAMMA = ("gamma", "bafyreiarq2iywmm22imjxp4z7bi33le3kb3l2b25uonca7pogocgjqfdmm",
         "12D3KooWS9zDSZEBMkf7srz2K5k5hoMWniWdTuxNNVBCoeTCDUAY")


def member(name, identity, peer_id, roles='["dta", "mfa", "custody"]', addrs=None, extra=""):
    addrs = addrs if addrs is not None else '["/ip4/127.0.0.1/tcp/4001"]'
    return (f'[[member]]\nname = "{name}"\nidentity = "{identity}"\npeer_id = "{peer_id}"\n'
            f"addrs = {addrs}\nroles = {roles}\n{extra}\n")


def federation(*members: str, thresholds: str = "") -> str:
    head = '[federation]\nname = "test"\n'
    if thresholds:
        head += f"[federation.thresholds]\n{thresholds}\n"
    return head + "".join(members)


def expect_federation_error(path) -> ConfigError:
    with pytest.raises(ConfigError) as info:
        load_federation(path)
    return info.value


def test_example_peers_toml_loads():
    fed = load_federation(REPO / "peers.toml")
    assert [m.name for m in fed.members] == ["alpha", "beta", "gamma"]
    assert fed.source == REPO / "peers.toml"
    assert fed.thresholds.custody_t == 2 and fed.thresholds.custody_n == 3
    assert fed.thresholds.dta_t == 3 and fed.thresholds.dta_n == 3
    assert [m.name for m in fed.with_role("mfa")] == ["alpha", "beta"]
    gamma = fed.by_peer_id(GAMMA[2])
    assert gamma is not None and gamma == fed.member("gamma") == fed.by_identity(GAMMA[1])
    assert gamma.addrs == ("/ip4/127.0.0.1/tcp/4003",)
    for m in fed.members:
        cid = CID.decode(m.identity)
        assert (cid.version, cid.codec.name) == (1, "dag-cbor")


def test_threshold_defaults(tmp_path):
    path = write(tmp_path, federation(member(*ALPHA), member(*BETA), member(*GAMMA, roles='["mfa"]')), "peers.toml")
    fed = load_federation(path)
    assert (fed.thresholds.custody_t, fed.thresholds.custody_n) == (2, 2)  # majority of 2
    assert (fed.thresholds.dta_t, fed.thresholds.dta_n) == (2, 2)  # all D-TAs


def test_member_addrs_may_name_their_own_peer_id_and_default_to_empty(tmp_path):
    own = f'["/dns4/alpha.example/tcp/4001/p2p/{ALPHA[2]}"]'
    path = write(tmp_path, federation(member(*ALPHA, addrs=own), member(*BETA, addrs="[]")), "peers.toml")
    fed = load_federation(path)
    assert fed.members[0].addrs == (f"/dns4/alpha.example/tcp/4001/p2p/{ALPHA[2]}",)
    assert fed.members[1].addrs == ()


def test_configured_federation_missing_default_is_empty(tmp_path):
    config = load(None, data_dir=tmp_path)
    fed = load_configured_federation(config)
    assert fed == Federation.empty(source=tmp_path / "peers.toml")
    assert fed.members == () and fed.thresholds.custody_t == 0
    # once the default file exists it is loaded
    write(tmp_path, (REPO / "peers.toml").read_text(), "peers.toml")
    assert len(load_configured_federation(config).members) == 3


def test_configured_federation_missing_explicit_file_is_an_error(tmp_path):
    config = load(write(tmp_path, '[p2p]\npeers_file = "fed.toml"\n'))
    with pytest.raises(ConfigError) as info:
        load_configured_federation(config)
    check(info.value, tmp_path / "fed.toml", None, "file not found")


@pytest.mark.parametrize("field, index", [("name", 0), ("identity", 1), ("peer_id", 2)])
def test_duplicates_name_both_entries(tmp_path, field, index):
    third = list(GAMMA)
    third[index] = ALPHA[index]
    path = write(tmp_path, federation(member(*ALPHA), member(*BETA), member(*third)), "peers.toml")
    error = expect_federation_error(path)
    check(error, path, f"member[2].{field}", "duplicate", "member[2]", "member[0]", '"alpha"', ALPHA[index])


def test_duplicate_identity_in_another_base_is_still_a_duplicate(tmp_path):
    same = CID.decode(ALPHA[1]).encode("base58btc")
    path = write(tmp_path, federation(member(*ALPHA), member(BETA[0], same, BETA[2])), "peers.toml")
    check(expect_federation_error(path), path, "member[1].identity", "duplicate identity", "member[0]")


@pytest.mark.parametrize(
    "identity, fragments",
    [
        ("not-a-cid", ['"not-a-cid" is not a CID']),
        ("bafyreich7wsjl4rnbf2cvz45agmdbcktoxzsw5lpk2butwy63bomaoxbo", ["is not a CID"]),  # truncated
        ("QmYwAPJzv5CZsnA625s3Xf2nemtYgPpHdWEz79ojWnPbdG", ["CIDv0", "an identity is a CIDv1 dag-cbor"]),
        ("bafybeigdyrzt5sfp7udm7hu76uh7y26nf3efuylqabf3oclgtqy55fbzdi", ["dag-pb"]),
    ],
)
def test_bad_identity_cid(tmp_path, identity, fragments):
    path = write(tmp_path, federation(member(ALPHA[0], identity, ALPHA[2])), "peers.toml")
    check(expect_federation_error(path), path, "member[0].identity", *fragments)


@pytest.mark.parametrize("peer_id", ["12D3KooWnope", ALPHA[2][:-1], ALPHA[2].replace("Q", "0"), ALPHA[1]])
def test_bad_peer_id(tmp_path, peer_id):
    path = write(tmp_path, federation(member(ALPHA[0], ALPHA[1], peer_id)), "peers.toml")
    check(expect_federation_error(path), path, "member[0].peer_id", "is not a libp2p peer id")


@pytest.mark.parametrize(
    "thresholds, key, fragments",
    [
        ("custody = 3", "federation.thresholds.custody", ["threshold 3 is larger than the 2 member(s)", '"custody"']),
        ("dta = 4", "federation.thresholds.dta", ["threshold 4 is larger than the 3 member(s)"]),
        ("custody = 0", "federation.thresholds.custody", ["at least 1"]),
        ('custody = "2"', "federation.thresholds.custody", ["expected an integer, found string"]),
        ("custdy = 2", "federation.thresholds.custdy", ['did you mean "custody"']),
    ],
)
def test_bad_thresholds(tmp_path, thresholds, key, fragments):
    text = federation(member(*ALPHA), member(*BETA), member(*GAMMA, roles='["dta", "mfa"]'), thresholds=thresholds)
    path = write(tmp_path, text, "peers.toml")
    check(expect_federation_error(path), path, key, *fragments)


@pytest.mark.parametrize(
    "text, key, fragments",
    [
        (member(*ALPHA), "federation", ["missing [federation] table"]),
        ('[federation]\nname = "x"\n', "member", ["no members"]),
        ("[federation]\n" + member(*ALPHA), "federation.name", ["missing"]),
        ('[federation]\nname = "x"\nmember = 1\n', "federation.member", ["unknown key"]),
        ('[federation]\nname = "x"\n[peers]\n', "peers", ["unknown key", "known: federation, member"]),
        (federation(member(*ALPHA, extra='role = ["dta"]')), "member[0].role", ['did you mean "roles"']),
        (federation(member(*ALPHA, roles='["dta", "ca"]')), "member[0].roles", ['"ca" is not one of']),
        (federation(member(*ALPHA, roles="[]")), "member[0].roles", ["at least one role"]),
        (federation(member(*ALPHA, addrs='["/ip4/127.0.0.1/tcp/99999"]')), "member[0].addrs", ['"/tcp/99999"']),
        (federation(member(*ALPHA, addrs='"/ip4/127.0.0.1/tcp/1"')), "member[0].addrs", ["expected an array"]),
        (federation(member(*ALPHA, addrs='["/ip4/127.0.0.1"]')), "member[0].addrs", ["not dialable"]),
        (federation(member(*ALPHA, addrs=f'["/ip4/127.0.0.1/tcp/1/p2p/{BETA[2]}"]')), "member[0].addrs",
         ["names peer", "not this member's peer_id"]),
    ],
)
def test_federation_structure_errors(tmp_path, text, key, fragments):
    path = write(tmp_path, text, "peers.toml")
    check(expect_federation_error(path), path, key, *fragments)


def test_federation_bad_toml_and_missing_file(tmp_path):
    path = write(tmp_path, "[federation\n", "peers.toml")
    check(expect_federation_error(path), path, None, "invalid TOML", "line 1")
    check(expect_federation_error(tmp_path / "none.toml"), tmp_path / "none.toml", None, "file not found")
    assert load_federation(tmp_path / "none.toml", missing_ok=True).members == ()


def test_federation_names_are_importable_from_config():
    from milagro_node.runtime import config

    assert config.load_federation is load_federation
