"""The node config file (node.toml): schema, loader, environment overrides, template.

Node layer (runtime).  The CLI calls ``load_node_config`` once at start-up and hands
the frozen ``NodeConfig`` to the supervisor, which passes each actor its section;
``milagro-node init`` writes ``render_default_config``.  The federation file
(peers.toml) has its own loader in ``milagro_node.runtime.federation``, which
shares ``ConfigError`` and the TOML helpers below.

Every problem is a ``ConfigError`` naming the file (or the environment variable),
the dotted key and what is wrong, because an operator reading a start-up failure
should not need a stack trace to find the typo.

Precedence for each setting: environment override ``MILAGRO_<SECTION>_<KEY>`` >
config file > built-in default.  For the data directory: ``data_dir`` argument >
``MILAGRO_DATA_DIR`` > ``[node] data_dir`` > the config file's directory >
``default_data_dir()``.  Relative paths in the file (and in overrides) resolve
against the config file's directory, or the data directory when there is no file;
``hsm.pin_file`` always resolves against the data directory, where the node keeps
its secrets.
"""

from __future__ import annotations

import difflib
import ipaddress
import json
import math
import os
import re
import tomllib
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any

import attrs

from milagro_node.core.multiaddr import MultiaddrError, is_dns_name, parse_multiaddr

__all__ = [
    "ROLES",
    "CONFIG_FILE_NAME",
    "RESERVED_ENV",
    "ConfigError",
    "NodeConfig",
    "NodeSection",
    "ApiSection",
    "P2pSection",
    "HsmSection",
    "LimitsSection",
    "default_data_dir",
    "load_node_config",
    "parse_host_port",
    "render_default_config",
]

ROLES = ("dta", "mfa", "custody")
CONFIG_FILE_NAME = "node.toml"
ENV_PREFIX = "MILAGRO_"
# Variables that share the prefix but are not MILAGRO_<SECTION>_<KEY> overrides.
RESERVED_ENV = frozenset({"MILAGRO_DATA_DIR", "MILAGRO_HSM_PIN", "MILAGRO_ADMIN_TOKEN"})
MiB = 1024 * 1024


class ConfigError(Exception):
    """A config problem: ``file`` (path as given, or env variable), ``key`` (dotted,
    or None for whole-file problems such as bad TOML) and ``problem``."""

    def __init__(self, file: str | os.PathLike[str], key: str | None, problem: str) -> None:
        super().__init__(str(file), key, problem)
        self.file = str(file)
        self.key = key
        self.problem = problem

    def __str__(self) -> str:
        if self.key is None:
            return f"{self.file}: {self.problem}"
        return f"{self.file}: {self.key}: {self.problem}"


# --------------------------------------------------------------------------- classes


@attrs.frozen(kw_only=True)
class NodeSection:
    name: str = "milagro-node"
    roles: tuple[str, ...] = ROLES
    log_format: str = "kv"  # "kv" | "json"
    log_level: str = "info"  # "debug" | "info" | "warning" | "error"


@attrs.frozen(kw_only=True)
class ApiSection:
    listen: str = "127.0.0.1:7400"  # "host:port"; "[::1]:7400" for IPv6
    max_message_bytes: int = 65536
    max_connections: int = 64
    requests_per_second: float = 50.0
    burst: int = 100

    @property
    def host(self) -> str:
        """Listen host without IPv6 brackets."""
        return parse_host_port(self.listen)[0]

    @property
    def port(self) -> int:
        return parse_host_port(self.listen)[1]


@attrs.frozen(kw_only=True)
class P2pSection:
    listen: tuple[str, ...] = ("/ip4/0.0.0.0/tcp/4001",)
    peers_file: Path
    # False when peers_file is the built-in default: then a missing file means "no
    # federation yet" rather than an error (see federation.load_configured_federation).
    peers_file_explicit: bool = False


@attrs.frozen(kw_only=True)
class HsmSection:
    module: Path = Path("/usr/lib/softhsm/libsofthsm2.so")
    token_label: str = "milagro-node"
    token_serial: str | None = None
    pin_file: Path | None = None
    pin_env: str | None = None
    pin: str | None = attrs.field(default=None, repr=False)  # keep it out of logs
    allow_pin_in_config: bool = False


@attrs.frozen(kw_only=True)
class LimitsSection:
    mailbox_size: int = 64
    request_timeout: float = 10.0  # seconds
    shutdown_grace: float = 4.0  # seconds, at most 5


@attrs.frozen(kw_only=True)
class NodeConfig:
    node: NodeSection
    api: ApiSection
    p2p: P2pSection
    hsm: HsmSection
    limits: LimitsSection
    source: Path | None  # absolute path of the file loaded, None when all defaults
    data_dir: Path  # absolute


# --------------------------------------------------------------------------- checks
# Each check takes the already type-converted value and returns the value to keep,
# or raises _Invalid with the problem text.


class _Invalid(ValueError):
    pass


def parse_host_port(text: str) -> tuple[str, int]:
    """Split "host:port" (IPv6 as "[addr]:port"); raise ValueError naming the problem."""
    expected = f'expected "host:port", got {json.dumps(text)}'
    if text.startswith("["):
        host, sep, port = text[1:].partition("]:")
        if not sep:
            raise _Invalid(expected)
        try:
            if "%" in host:
                raise ValueError("zone ids are not supported")
            ipaddress.IPv6Address(host)
        except ValueError:
            raise _Invalid(f"{json.dumps(host)} in {json.dumps(text)} is not an IPv6 address") from None
    else:
        host, sep, port = text.rpartition(":")
        if not sep or not host:
            raise _Invalid(expected)
        if ":" in host:
            raise _Invalid(f'IPv6 addresses go in brackets, e.g. "[::1]:7400"; got {json.dumps(text)}')
        if re.fullmatch(r"[0-9.]+", host):
            try:
                ipaddress.IPv4Address(host)
            except ValueError:
                raise _Invalid(f"{json.dumps(host)} in {json.dumps(text)} is not an IPv4 address") from None
        elif not is_dns_name(host):
            raise _Invalid(f"{json.dumps(host)} in {json.dumps(text)} is not a host name or IP address")
    if not re.fullmatch(r"[0-9]{1,5}", port) or int(port) > 65535:
        raise _Invalid(f"port {json.dumps(port)} in {json.dumps(text)} is not a number 0..65535")
    return host, int(port)


def _check_listen(text: str) -> str:
    parse_host_port(text)
    return text


def _one_of(*choices: str) -> Callable[[str], str]:
    def check(value: str) -> str:
        if value not in choices:
            hint = _did_you_mean(value, choices)
            raise _Invalid(f"{json.dumps(value)} is not one of {', '.join(choices)}{hint}")
        return value

    return check


def _in_range(low: float, high: float, *, above: bool = False) -> Callable[[Any], Any]:
    """low <= value <= high (low < value when ``above``)."""

    def check(value: Any) -> Any:
        if value < low or (above and value == low) or value > high:
            bound = "above" if above else "at least"
            raise _Invalid(f"{value!r} is out of range: must be {bound} {low!r} and at most {high!r}")
        return value

    return check


def _text(max_len: int) -> Callable[[str], str]:
    def check(value: str) -> str:
        if not value.strip():
            raise _Invalid("must not be empty")
        if len(value.encode()) > max_len:
            raise _Invalid(f"longer than {max_len} bytes")
        if any(ord(ch) < 32 or ord(ch) == 127 for ch in value):
            raise _Invalid("contains control characters")
        return value

    return check


def check_roles(roles: tuple[str, ...]) -> tuple[str, ...]:
    """Non-empty, known, no duplicates (shared with the federation loader)."""
    if not roles:
        raise _Invalid(f"at least one role is needed ({', '.join(ROLES)})")
    for role in roles:
        _one_of(*ROLES)(role)
    duplicates = sorted({role for role in roles if roles.count(role) > 1})
    if duplicates:
        raise _Invalid(f"duplicate role {', '.join(map(json.dumps, duplicates))}")
    return roles


def _check_p2p_listen(addrs: tuple[str, ...]) -> tuple[str, ...]:
    if not addrs:
        raise _Invalid("at least one listen multiaddr is needed")
    for addr in addrs:
        try:
            protocols = [name for name, _ in parse_multiaddr(addr)]
        except MultiaddrError as exc:
            raise _Invalid(str(exc)) from None
        if "tcp" not in protocols and "udp" not in protocols:
            raise _Invalid(f"listen multiaddr {json.dumps(addr)} needs an address and /tcp/<port> or /udp/<port>")
        if "p2p" in protocols:
            raise _Invalid(f"listen multiaddr {json.dumps(addr)} must not contain /p2p (the peer id comes from the node key)")
    return addrs


def _check_path(value: str) -> str:
    if not value.strip():
        raise _Invalid("must not be empty")
    if "\0" in value:
        raise _Invalid("contains a NUL character")
    return value


def _check_env_name(value: str | None) -> str | None:
    if value is not None and not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", value):
        raise _Invalid(f"{json.dumps(value)} is not an environment variable name")
    return value


# --------------------------------------------------------------------------- schema


@attrs.frozen
class _Key:
    kind: str  # str | opt_str | bool | int | float | list | path | opt_path
    default: Any  # as it would be written in TOML; None = unset
    doc: str
    check: Callable[[Any], Any] | None = None
    env: bool = True  # may be set by MILAGRO_<SECTION>_<KEY>
    active: bool = True  # written uncommented by render_default_config
    example: Any = None  # shown for keys rendered commented out
    secret: bool = False  # never echo the value in an error


_SECTION_DOCS = {
    "node": "Who this node is and what it does.",
    "api": "Websocket API (admin console and client JSON-RPC).",
    "p2p": "libp2p: where to listen, and the federation file that pins the other members.",
    "hsm": "PKCS#11 module that wraps every secret at rest (SoftHSM2 by default).",
    "limits": "Back-pressure and timing limits for the actors.",
}

_SCHEMA: dict[str, dict[str, _Key]] = {
    "node": {
        "name": _Key("str", "milagro-node", "Name shown in logs and node.status.", _text(64)),
        "roles": _Key("list", list(ROLES), 'Roles this node serves: any of "dta", "mfa", "custody".', check_roles),
        "log_format": _Key("str", "kv", 'Log line format: "kv" (key=value) or "json".', _one_of("kv", "json")),
        "log_level": _Key("str", "info", '"debug", "info", "warning" or "error".',
                          _one_of("debug", "info", "warning", "error")),
        "data_dir": _Key("path", None, "Where the node keeps its store, keys and PIN file.\n"
                         "Default: this file's directory (MILAGRO_DATA_DIR wins over this key).",
                         _check_path, env=False, active=False),
    },
    "api": {
        "listen": _Key("str", "127.0.0.1:7400", 'Listen address "host:port"; IPv6 as "[::1]:7400"; port 0 picks one.',
                       _check_listen),
        "max_message_bytes": _Key("int", 65536, "Largest websocket message accepted (1024 .. 16 MiB).",
                                  _in_range(1024, 16 * MiB)),
        "max_connections": _Key("int", 64, "Concurrent websocket connections.", _in_range(1, 100_000)),
        "requests_per_second": _Key("float", 50.0, "Sustained request rate per connection.",
                                    _in_range(0.0, 1e6, above=True)),
        "burst": _Key("int", 100, "Requests a connection may send at once above that rate.", _in_range(1, 1_000_000)),
    },
    "p2p": {
        "listen": _Key("list", ["/ip4/0.0.0.0/tcp/4001"], "Multiaddrs to listen on.", _check_p2p_listen),
        "peers_file": _Key("path", "peers.toml", "The federation file (relative to this file's directory).\n"
                           "Left unset, a missing peers.toml means no federation yet; set, it must exist.",
                           _check_path, active=False),
    },
    "hsm": {
        "module": _Key("path", "/usr/lib/softhsm/libsofthsm2.so", "PKCS#11 module (shared library).", _check_path),
        "token_label": _Key("str", "milagro-node", "Label of the token holding the node's keys.", _text(32)),
        "token_serial": _Key("opt_str", None, "Token serial number, when several tokens share the label.",
                             _text(16), active=False, example="0123456789abcdef"),
        "pin_file": _Key("opt_path", "hsm.pin", "File holding the user PIN, relative to the data directory\n"
                         '(MILAGRO_HSM_PIN, when set, holds the PIN itself). "" for none.'),
        "pin_env": _Key("opt_str", None, "Name of an environment variable holding the PIN.", _check_env_name,
                        active=False, example="HSM_USER_PIN"),
        "pin": _Key("opt_str", None, "The PIN itself: refused unless allow_pin_in_config = true (tests only).",
                    env=False, active=False, example="1234", secret=True),
        "allow_pin_in_config": _Key("bool", False, "Accept hsm.pin in this file."),
    },
    "limits": {
        "mailbox_size": _Key("int", 64, "Messages an actor's mailbox holds before senders wait (1..10000).",
                             _in_range(1, 10_000)),
        "request_timeout": _Key("float", 10.0, "Seconds before a request to an actor or peer fails.",
                                _in_range(0.0, 3600.0, above=True)),
        "shutdown_grace": _Key("float", 4.0, "Seconds actors get to finish on shutdown (at most 5).",
                               _in_range(0.0, 5.0)),
    },
}

# --------------------------------------------------------------------------- TOML helpers
# Shared with runtime/federation.py.


def read_toml(path: Path) -> dict[str, Any]:
    """Read and parse a TOML file; every failure is a ConfigError naming ``path``."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise ConfigError(path, None, "file not found") from None
    except IsADirectoryError:
        raise ConfigError(path, None, "is a directory, not a file") from None
    except OSError as exc:
        raise ConfigError(path, None, f"cannot read: {exc.strerror or exc}") from None
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ConfigError(path, None, f"not UTF-8 text (bad byte at offset {exc.start})") from None
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(path, None, f"invalid TOML: {exc}") from None


def toml_type(value: object) -> str:
    """TOML's name for the type of a parsed value."""
    names = {bool: "boolean", int: "integer", float: "float", str: "string", list: "array", dict: "table"}
    return names.get(type(value), type(value).__name__)  # datetime, date, time


def _did_you_mean(word: str, options: Iterable[str], fmt: str = '"{}"') -> str:
    close = difflib.get_close_matches(word, list(options), n=1, cutoff=0.6)
    return f"; did you mean {fmt.format(close[0])}?" if close else ""


def reject_unknown(table: Mapping[str, Any], known: Iterable[str], file: object, prefix: str) -> None:
    """ConfigError for the first key of ``table`` not in ``known``, with a suggestion."""
    known = list(known)
    for key in table:
        if key not in known:
            dotted = f"{prefix}.{key}" if prefix else key
            raise ConfigError(file, dotted, f"unknown key{_did_you_mean(key, known)} (known: {', '.join(known)})")


_EXPECTED = {
    "str": "a string", "opt_str": "a string", "path": "a path string", "opt_path": "a path string",
    "bool": "a boolean", "int": "an integer", "float": "a number", "list": "an array of strings",
}


def _from_toml(spec: _Key, value: Any) -> Any:
    """Type-convert a TOML value for ``spec``; raise _Invalid naming expected/found."""

    def wrong(found: Any) -> _Invalid:
        shown = json.dumps(found) if isinstance(found, str) else repr(found)
        shown = "" if spec.secret else f" {shown}"
        return _Invalid(f"expected {_EXPECTED[spec.kind]}, found {toml_type(found)}{shown}")

    kind = spec.kind
    if kind in ("str", "path", "opt_str", "opt_path"):
        if not isinstance(value, str):
            raise wrong(value)
        return None if kind.startswith("opt_") and value == "" else value
    if kind == "bool":
        if not isinstance(value, bool):
            raise wrong(value)
        return value
    if kind == "int":
        if not isinstance(value, int) or isinstance(value, bool):
            raise wrong(value)
        return value
    if kind == "float":
        if not isinstance(value, (int, float)) or isinstance(value, bool):
            raise wrong(value)
        if not math.isfinite(value):
            raise _Invalid(f"expected a finite number, found {value!r}")
        return float(value)
    if kind == "list":
        if not isinstance(value, list):
            raise wrong(value)
        for index, item in enumerate(value):
            if not isinstance(item, str):
                raise _Invalid(f"expected an array of strings, found {toml_type(item)} {item!r} at index {index}")
        return tuple(value)
    raise AssertionError(kind)


def _from_env(spec: _Key, text: str) -> Any:
    """Parse an environment override's text for ``spec``."""
    kind = spec.kind
    if kind in ("str", "path"):
        return text
    if kind in ("opt_str", "opt_path"):
        return text or None
    if kind == "bool":
        word = text.strip().lower()
        if word in ("true", "1", "yes", "on"):
            return True
        if word in ("false", "0", "no", "off"):
            return False
        raise _Invalid(f"expected a boolean (true/false), got {json.dumps(text)}")
    if kind == "int":
        if not re.fullmatch(r"\s*[+-]?[0-9]+\s*", text):
            raise _Invalid(f"expected an integer, got {json.dumps(text)}")
        return int(text)
    if kind == "float":
        try:
            number = float(text)
        except ValueError:
            raise _Invalid(f"expected a number, got {json.dumps(text)}") from None
        if not math.isfinite(number):
            raise _Invalid(f"expected a finite number, got {json.dumps(text)}")
        return number
    if kind == "list":  # comma-separated; multiaddrs and roles contain no commas
        return tuple(item.strip() for item in text.split(",") if item.strip())
    raise AssertionError(kind)


def _checked(spec: _Key, value: Any) -> Any:
    if spec.check is None or value is None:
        return value
    return spec.check(value)


# --------------------------------------------------------------------------- loading


def default_data_dir(environ: Mapping[str, str] = os.environ) -> Path:
    """MILAGRO_DATA_DIR, else $XDG_DATA_HOME/milagro-node, else ~/.local/share/milagro-node."""
    if environ.get("MILAGRO_DATA_DIR"):
        return Path(_expand_user(environ["MILAGRO_DATA_DIR"], environ)).absolute()
    xdg = environ.get("XDG_DATA_HOME", "")
    if xdg and Path(xdg).is_absolute():  # the XDG spec says to ignore relative values
        return Path(xdg) / "milagro-node"
    return _home(environ) / ".local" / "share" / "milagro-node"


def _home(environ: Mapping[str, str]) -> Path:
    return Path(environ["HOME"]) if environ.get("HOME") else Path.home()


def _expand_user(text: str, environ: Mapping[str, str]) -> str:
    if text == "~" or text.startswith("~/"):
        return str(_home(environ)) + text[1:]
    return os.path.expanduser(text)


def _resolve(text: str, base: Path, environ: Mapping[str, str]) -> Path:
    path = Path(_expand_user(text, environ))
    return path if path.is_absolute() else base / path


def load_node_config(
    path: Path | None,
    *,
    data_dir: Path | None = None,
    environ: Mapping[str, str] = os.environ,
) -> NodeConfig:
    """Load node.toml (see module docstring for precedence); raise ConfigError.

    ``path`` None means "<data dir>/node.toml if it exists, else all defaults".
    """
    explicit_dir = Path(data_dir).expanduser().absolute() if data_dir is not None else None
    env_dir = default_data_dir(environ) if environ.get("MILAGRO_DATA_DIR") else None
    if path is None:
        candidate = (explicit_dir or default_data_dir(environ)) / CONFIG_FILE_NAME
        path = candidate if candidate.exists() else None

    values: dict[tuple[str, str], Any] = {}  # (section, key) -> typed, checked value
    if path is not None:
        values.update(_file_values(read_toml(Path(path)), path))
    values.update(_env_values(environ))

    def get(section: str, key: str) -> Any:
        spec = _SCHEMA[section][key]
        if (section, key) in values:
            return values[(section, key)]
        return _checked(spec, tuple(spec.default) if isinstance(spec.default, list) else spec.default)

    if get("hsm", "pin") is not None and not get("hsm", "allow_pin_in_config"):
        # hsm.pin has no environment override, so it came from the file
        raise ConfigError(path, "hsm.pin",
                          "a PIN in the config file is refused unless hsm.allow_pin_in_config = true; "
                          "use hsm.pin_file or hsm.pin_env")

    file_dir = Path(path).absolute().parent if path is not None else None
    if explicit_dir is not None:
        final_dir = explicit_dir
    elif env_dir is not None:
        final_dir = env_dir
    elif ("node", "data_dir") in values:
        assert file_dir is not None  # node.data_dir can only come from a file
        final_dir = _resolve(values[("node", "data_dir")], file_dir, environ)
    elif file_dir is not None:
        final_dir = file_dir
    else:
        final_dir = default_data_dir(environ)
    base = file_dir or final_dir

    pin_file = get("hsm", "pin_file")
    return NodeConfig(
        node=NodeSection(name=get("node", "name"), roles=get("node", "roles"),
                         log_format=get("node", "log_format"), log_level=get("node", "log_level")),
        api=ApiSection(listen=get("api", "listen"), max_message_bytes=get("api", "max_message_bytes"),
                       max_connections=get("api", "max_connections"),
                       requests_per_second=get("api", "requests_per_second"), burst=get("api", "burst")),
        p2p=P2pSection(listen=get("p2p", "listen"), peers_file=_resolve(get("p2p", "peers_file"), base, environ),
                       peers_file_explicit=("p2p", "peers_file") in values),
        hsm=HsmSection(module=_resolve(get("hsm", "module"), base, environ),
                       token_label=get("hsm", "token_label"), token_serial=get("hsm", "token_serial"),
                       pin_file=None if pin_file is None else _resolve(pin_file, final_dir, environ),
                       pin_env=get("hsm", "pin_env"), pin=get("hsm", "pin"),
                       allow_pin_in_config=get("hsm", "allow_pin_in_config")),
        limits=LimitsSection(mailbox_size=get("limits", "mailbox_size"),
                             request_timeout=get("limits", "request_timeout"),
                             shutdown_grace=get("limits", "shutdown_grace")),
        source=Path(path).absolute() if path is not None else None,
        data_dir=final_dir,
    )


def _file_values(raw: Mapping[str, Any], file: object) -> dict[tuple[str, str], Any]:
    values: dict[tuple[str, str], Any] = {}
    for section, table in raw.items():
        if section not in _SCHEMA:
            owners = [s for s, keys in _SCHEMA.items() if section in keys]
            if owners and not isinstance(table, dict):  # e.g. a key above every [section]
                raise ConfigError(file, section, f"belongs in a section: [{owners[0]}] {section} = ...")
            hint = _did_you_mean(section, _SCHEMA, "[{}]")
            raise ConfigError(file, section, f"unknown section [{section}]{hint} (known: {', '.join(_SCHEMA)})")
        if not isinstance(table, dict):
            raise ConfigError(file, section, f"expected a table [{section}], found {toml_type(table)}")
        reject_unknown(table, _SCHEMA[section], file, section)
        for key, value in table.items():
            spec = _SCHEMA[section][key]
            try:
                values[(section, key)] = _checked(spec, _from_toml(spec, value))
            except _Invalid as exc:
                raise ConfigError(file, f"{section}.{key}", str(exc)) from None
    return values


def _env_values(environ: Mapping[str, str]) -> dict[tuple[str, str], Any]:
    """MILAGRO_<SECTION>_<KEY> overrides.  Only names whose <SECTION> is one of ours
    count as overrides, so unrelated MILAGRO_* variables (test switches, other tools)
    do not stop the node; within a known section an unknown key is an error."""
    values: dict[tuple[str, str], Any] = {}
    for name in sorted(environ):
        if not name.startswith(ENV_PREFIX) or name in RESERVED_ENV:
            continue
        section, _, key = name[len(ENV_PREFIX):].lower().partition("_")
        if section not in _SCHEMA:
            continue
        spec = _SCHEMA[section].get(key)
        if spec is not None and not spec.env:
            instead = "; use MILAGRO_DATA_DIR" if key == "data_dir" else ""
            raise ConfigError(name, f"{section}.{key}", f"cannot be set from the environment{instead}")
        if spec is None:
            allowed = [k.upper() for k, s in _SCHEMA[section].items() if s.env]
            hint = _did_you_mean(key.upper(), allowed, f"{ENV_PREFIX}{section.upper()}_{{}}")
            raise ConfigError(name, f"{section}.{key}", f"unknown setting{hint}")
        try:
            values[(section, key)] = _checked(spec, _from_env(spec, environ[name]))
        except _Invalid as exc:
            raise ConfigError(name, f"{section}.{key}", str(exc)) from None
    return values


# --------------------------------------------------------------------------- template


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)  # a JSON string is a TOML basic string
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_toml_value(item) for item in value) + "]"
    raise TypeError(type(value))


def render_default_config(data_dir: Path) -> str:
    """The commented node.toml that ``milagro-node init`` writes into ``data_dir``.

    Active lines carry the defaults; optional keys are shown commented out.  Loading
    the result gives the same NodeConfig as no file at all (tests check this).
    """
    lines = [
        "# Milagro Node configuration, written by `milagro-node init`.",
        f"# Data directory: {json.dumps(str(data_dir), ensure_ascii=False)}",
        "#",
        "# Every key below is shown with its default.  Any key can be overridden by an",
        "# environment variable MILAGRO_<SECTION>_<KEY>, e.g. MILAGRO_API_LISTEN=127.0.0.1:0",
        "# or MILAGRO_NODE_ROLES=dta,mfa (lists are comma-separated).  MILAGRO_DATA_DIR sets",
        "# the data directory; MILAGRO_HSM_PIN and MILAGRO_ADMIN_TOKEN are secrets, not",
        "# overrides.  Relative paths resolve against this file's directory, except",
        "# hsm.pin_file, which resolves against the data directory.",
    ]
    for section, keys in _SCHEMA.items():
        lines += ["", f"# {_SECTION_DOCS[section]}", f"[{section}]"]
        for key, spec in keys.items():
            lines += [f"# {line}" for line in spec.doc.splitlines()]
            if spec.active:
                lines.append(f"{key} = {_toml_value(spec.default)}")
            else:
                shown = str(data_dir) if key == "data_dir" else spec.example if spec.example is not None else spec.default
                lines.append(f"# {key} = {_toml_value(shown)}")
    return "\n".join(lines) + "\n"


def __getattr__(name: str) -> Any:
    # The federation loader lives in its own module (it imports this one); keep
    # ``from milagro_node.runtime.config import load_federation`` working too.
    if name in ("Federation", "Member", "Thresholds", "load_federation", "load_configured_federation"):
        from milagro_node.runtime import federation

        return getattr(federation, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
