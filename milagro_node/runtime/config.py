"""The node config file (node.toml): the NodeConfig the node runs with, and its loader.

Node layer (runtime).  The CLI calls ``load_node_config`` once at start-up and hands
the frozen ``NodeConfig`` to the supervisor, which passes each actor its section;
``milagro-node init`` writes ``render_default_config``.  This module is the public
face of the config: the keys, defaults and checks live in ``runtime.config_schema``,
the generic value parsing and ``ConfigError`` in ``runtime.config_fields``, the
template in ``runtime.config_template``; the names other modules import are
re-exported here.  The federation file (peers.toml) has its own loader in
``runtime.federation``, which shares ``ConfigError`` and the TOML helpers.

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

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import attrs

from .config_fields import (
    ConfigError,
    _Invalid,
    checked,
    did_you_mean,
    from_env,
    from_toml,
    read_toml,
    reject_unknown,
    toml_type,
)
from .config_schema import ROLES, SCHEMA, parse_host_port
from .config_template import render_default_config

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

CONFIG_FILE_NAME = "node.toml"
ENV_PREFIX = "MILAGRO_"
# Variables that share the prefix but are not MILAGRO_<SECTION>_<KEY> overrides.
RESERVED_ENV = frozenset({"MILAGRO_DATA_DIR", "MILAGRO_HSM_PIN", "MILAGRO_ADMIN_TOKEN"})


# --------------------------------------------------------------------------- classes


@attrs.frozen(kw_only=True)
class NodeSection:
    name: str = "milagro-node"
    roles: tuple[str, ...] = ROLES
    log_format: str = "kv"  # "kv" | "json"
    log_level: str = "info"  # "debug" | "info" | "warning" | "error"
    lock_memory: bool = True


@attrs.frozen(kw_only=True)
class ApiSection:
    listen: str = "127.0.0.1:7400"  # "host:port"; "[::1]:7400" for IPv6
    max_message_bytes: int = 2 * 1024 * 1024
    max_connections: int = 64
    requests_per_second: float = 50.0
    burst: int = 100
    console_idle_seconds: int = 1800
    console_max_seconds: int = 43200

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
class DtaSection:
    grant_issuers: tuple[str, ...] = ()  # empty: this node and every pinned member


@attrs.frozen(kw_only=True)
class MfaSection:
    max_failures: int = 5
    lockout_seconds: int = 900  # 0: until an admin unlocks
    session_seconds: int = 60
    assertion_seconds: int = 300
    time_permits: bool = True
    one_pass_skew: int = 30
    workers: int = 2
    sync_login_audit: bool = False  # False: synced within actors.store.SYNC_DELAY_S
    grant_issuers: tuple[str, ...] = ()  # whose grants may register a DVS device key; empty: this node and members
    require_device_key: bool = False  # True: key-escrow-less (DVS) logins only


@attrs.frozen(kw_only=True)
class NodeConfig:
    node: NodeSection
    api: ApiSection
    p2p: P2pSection
    hsm: HsmSection
    limits: LimitsSection
    dta: DtaSection = DtaSection()
    mfa: MfaSection = MfaSection()
    source: Path | None  # absolute path of the file loaded, None when all defaults
    data_dir: Path  # absolute


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
        spec = SCHEMA[section][key]
        if (section, key) in values:
            return values[(section, key)]
        return checked(spec, tuple(spec.default) if isinstance(spec.default, list) else spec.default)

    if get("hsm", "pin") is not None and not get("hsm", "allow_pin_in_config"):
        # hsm.pin has no environment override, so it came from the file
        raise ConfigError(path, "hsm.pin",
                          "a PIN in the config file is refused unless hsm.allow_pin_in_config = true; "
                          "use hsm.pin_file or hsm.pin_env")

    source = Path(path).absolute() if path is not None else None
    file_dir = source.parent if source is not None else None
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
                         log_format=get("node", "log_format"), log_level=get("node", "log_level"),
                         lock_memory=get("node", "lock_memory")),
        api=ApiSection(listen=get("api", "listen"), max_message_bytes=get("api", "max_message_bytes"),
                       max_connections=get("api", "max_connections"),
                       requests_per_second=get("api", "requests_per_second"), burst=get("api", "burst"),
                       console_idle_seconds=get("api", "console_idle_seconds"),
                       console_max_seconds=get("api", "console_max_seconds")),
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
        dta=DtaSection(grant_issuers=get("dta", "grant_issuers")),
        mfa=MfaSection(**{key: get("mfa", key) for key in SCHEMA["mfa"]}),
        source=source,
        data_dir=final_dir,
    )


def _file_values(raw: Mapping[str, Any], file: object) -> dict[tuple[str, str], Any]:
    values: dict[tuple[str, str], Any] = {}
    for section, table in raw.items():
        if section not in SCHEMA:
            owners = [s for s, keys in SCHEMA.items() if section in keys]
            if owners and not isinstance(table, dict):  # e.g. a key above every [section]
                raise ConfigError(file, section, f"belongs in a section: [{owners[0]}] {section} = ...")
            hint = did_you_mean(section, SCHEMA, "[{}]")
            raise ConfigError(file, section, f"unknown section [{section}]{hint} (known: {', '.join(SCHEMA)})")
        if not isinstance(table, dict):
            raise ConfigError(file, section, f"expected a table [{section}], found {toml_type(table)}")
        reject_unknown(table, SCHEMA[section], file, section)
        for key, value in table.items():
            spec = SCHEMA[section][key]
            try:
                values[(section, key)] = checked(spec, from_toml(spec, value))
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
        if section not in SCHEMA:
            continue
        spec = SCHEMA[section].get(key)
        if spec is not None and not spec.env:
            instead = "; use MILAGRO_DATA_DIR" if key == "data_dir" else ""
            raise ConfigError(name, f"{section}.{key}", f"cannot be set from the environment{instead}")
        if spec is None:
            allowed = [k.upper() for k, s in SCHEMA[section].items() if s.env]
            hint = did_you_mean(key.upper(), allowed, f"{ENV_PREFIX}{section.upper()}_{{}}")
            raise ConfigError(name, f"{section}.{key}", f"unknown setting{hint}")
        try:
            values[(section, key)] = checked(spec, from_env(spec, environ[name]))
        except _Invalid as exc:
            raise ConfigError(name, f"{section}.{key}", str(exc)) from None
    return values


def __getattr__(name: str) -> Any:
    # The federation loader lives in its own module (it imports this one, so this
    # import is lazy); ``from milagro_node.runtime.config import load_federation``
    # keeps working because callers (and tests/test_config.py) rely on it.
    if name in ("Federation", "Member", "Thresholds", "load_federation", "load_configured_federation"):
        from milagro_node.runtime import federation

        return getattr(federation, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
