"""The federation file (peers.toml): the members this node trusts, and the quorums.

Node layer (runtime).  The CLI loads it after the node config with
``load_configured_federation(config)``; the PKI resolver pins the members'
identities, the libp2p adapter dials their addresses, and the share dealer reads the
thresholds.  Problems are ``ConfigError``s (from ``runtime.config``) naming the file,
the key and what is wrong.

Layout (see the example peers.toml at the top of the repository)::

    [federation]
    name = "example"            # required

    [federation.thresholds]     # optional table
    custody = 2                 # t: custody members that must take part to sign,
                                #    approve an escrow release or reshare;
                                #    1..(members with role "custody");
                                #    default: a majority, n // 2 + 1
    dta = 3                     # D-TA shares a client combines into an M-Pin
                                #    secret; 1..(members with role "dta");
                                #    default: all of them

    [[member]]                  # one per operator, at least one
    name = "alpha"              # unique
    identity = "bafyrei..."     # identity CID (CIDv1, dag-cbor), unique
    peer_id = "12D3KooW..."     # libp2p peer id, unique
    addrs = ["/ip4/.../tcp/4001"]   # dialable multiaddrs (optional, default [])
    roles = ["dta", "mfa", "custody"]
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import attrs
from multiformats import CID

from milagro_node.core.multiaddr import MultiaddrError, is_peer_id, parse_multiaddr
from milagro_node.runtime.config import NodeConfig
from milagro_node.runtime.config_fields import (
    ConfigError,
    _Invalid,  # check_roles raises it; package-internal
    read_toml,
    reject_unknown,
    toml_type,
)
from milagro_node.runtime.config_schema import check_roles

__all__ = [
    "Federation",
    "Member",
    "Thresholds",
    "load_federation",
    "load_configured_federation",
]

_TOP_KEYS = ("federation", "member")
_FEDERATION_KEYS = ("name", "thresholds")
_THRESHOLD_KEYS = ("custody", "dta")
_MEMBER_KEYS = ("name", "identity", "peer_id", "addrs", "roles")


@attrs.frozen(kw_only=True)
class Member:
    name: str
    identity: str  # CIDv1 of the member's identity-log inception event, base32
    peer_id: str  # libp2p peer id, base58btc
    addrs: tuple[str, ...] = ()
    roles: tuple[str, ...]

    def has_role(self, role: str) -> bool:
        return role in self.roles


@attrs.frozen(kw_only=True)
class Thresholds:
    """``*_t`` as configured (or defaulted); ``*_n`` = members holding the role."""

    custody_t: int
    custody_n: int
    dta_t: int
    dta_n: int


@attrs.frozen(kw_only=True)
class Federation:
    name: str
    members: tuple[Member, ...]
    thresholds: Thresholds
    source: Path | None  # None only for an empty federation made in code

    @classmethod
    def empty(cls, source: Path | None = None) -> Federation:
        """No federation yet (the default peers file does not exist)."""
        return cls(name="", members=(), thresholds=Thresholds(custody_t=0, custody_n=0, dta_t=0, dta_n=0),
                   source=source)

    def member(self, name: str) -> Member | None:
        return next((m for m in self.members if m.name == name), None)

    def by_identity(self, identity: str) -> Member | None:
        return next((m for m in self.members if m.identity == identity), None)

    def by_peer_id(self, peer_id: str) -> Member | None:
        return next((m for m in self.members if m.peer_id == peer_id), None)

    def with_role(self, role: str) -> tuple[Member, ...]:
        return tuple(m for m in self.members if role in m.roles)


def load_configured_federation(config: NodeConfig) -> Federation:
    """The federation named by ``config.p2p.peers_file``.  A missing file is fine
    only when peers_file was left at its default (a node before it joins one)."""
    return load_federation(config.p2p.peers_file, missing_ok=not config.p2p.peers_file_explicit)


def load_federation(path: Path, *, missing_ok: bool = False) -> Federation:
    """Load and validate a peers file; raise ConfigError naming file, key, problem."""
    path = Path(path)
    if missing_ok and not path.exists():
        return Federation.empty(source=path)
    raw = read_toml(path)
    reject_unknown(raw, _TOP_KEYS, path, "")

    fed = _table(raw.get("federation"), path, "federation", required=True)
    reject_unknown(fed, _FEDERATION_KEYS, path, "federation")
    name = _string(fed, "name", path, "federation")

    entries = raw.get("member")
    if entries is None:
        raise ConfigError(path, "member", "no members: add one [[member]] table per operator")
    if not isinstance(entries, list) or not all(isinstance(e, dict) for e in entries):
        raise ConfigError(path, "member", f"expected [[member]] tables, found {toml_type(entries)}")
    members = tuple(_member(entry, path, f"member[{i}]") for i, entry in enumerate(entries))
    _reject_duplicates(members, path)

    limits = _table(fed.get("thresholds"), path, "federation.thresholds", required=False)
    reject_unknown(limits, _THRESHOLD_KEYS, path, "federation.thresholds")
    custody_n = sum(m.has_role("custody") for m in members)
    dta_n = sum(m.has_role("dta") for m in members)
    thresholds = Thresholds(
        custody_t=_threshold(limits, "custody", custody_n, custody_n // 2 + 1 if custody_n else 0, path),
        custody_n=custody_n,
        dta_t=_threshold(limits, "dta", dta_n, dta_n, path),
        dta_n=dta_n,
    )
    return Federation(name=name, members=members, thresholds=thresholds, source=path.absolute())


def _table(value: Any, path: Path, key: str, *, required: bool) -> Mapping[str, Any]:
    if value is None:
        if required:
            raise ConfigError(path, key, f"missing [{key}] table")
        return {}
    if not isinstance(value, dict):
        raise ConfigError(path, key, f"expected a table [{key}], found {toml_type(value)}")
    return value


def _string(table: Mapping[str, Any], key: str, path: Path, prefix: str) -> str:
    value = table.get(key)
    if value is None:
        raise ConfigError(path, f"{prefix}.{key}", "missing (required)")
    if not isinstance(value, str):
        raise ConfigError(path, f"{prefix}.{key}", f"expected a string, found {toml_type(value)} {value!r}")
    if not value.strip():
        raise ConfigError(path, f"{prefix}.{key}", "must not be empty")
    return value


def _strings(table: Mapping[str, Any], key: str, path: Path, prefix: str, default: Any) -> tuple[str, ...]:
    value = table.get(key, default)
    if value is None:
        raise ConfigError(path, f"{prefix}.{key}", "missing (required)")
    if not isinstance(value, list):
        raise ConfigError(path, f"{prefix}.{key}", f"expected an array of strings, found {toml_type(value)}")
    for index, item in enumerate(value):
        if not isinstance(item, str):
            raise ConfigError(path, f"{prefix}.{key}",
                              f"expected an array of strings, found {toml_type(item)} {item!r} at index {index}")
    return tuple(value)


def _member(entry: Mapping[str, Any], path: Path, prefix: str) -> Member:
    reject_unknown(entry, _MEMBER_KEYS, path, prefix)
    name = _string(entry, "name", path, prefix)
    if len(name) > 64 or any(ord(ch) < 32 for ch in name):
        raise ConfigError(path, f"{prefix}.name", "must be at most 64 printable characters")

    identity_text = _string(entry, "identity", path, prefix)
    try:
        cid = CID.decode(identity_text)
    except Exception as exc:  # multiformats raises several unrelated error types
        raise ConfigError(path, f"{prefix}.identity", f"{json.dumps(identity_text)} is not a CID: {exc}") from None
    if cid.version != 1 or cid.codec.name != "dag-cbor":
        raise ConfigError(path, f"{prefix}.identity", f"{json.dumps(identity_text)} is a CIDv{cid.version} "
                          f"{cid.codec.name}; an identity is a CIDv1 dag-cbor")

    peer_id = _string(entry, "peer_id", path, prefix)
    if not is_peer_id(peer_id):
        raise ConfigError(path, f"{prefix}.peer_id", f"{json.dumps(peer_id)} is not a libp2p peer id "
                          "(base58btc, Qm... or 12D3KooW... or 16Uiu2...)")

    addrs = _strings(entry, "addrs", path, prefix, default=[])
    for addr in addrs:
        try:
            components = dict(parse_multiaddr(addr))
        except MultiaddrError as exc:
            raise ConfigError(path, f"{prefix}.addrs", str(exc)) from None
        if "tcp" not in components and "udp" not in components:
            raise ConfigError(path, f"{prefix}.addrs", f"{json.dumps(addr)} is not dialable: it needs an address "
                              "and /tcp/<port> or /udp/<port>")
        if components.get("p2p", peer_id) != peer_id:
            raise ConfigError(path, f"{prefix}.addrs", f"{json.dumps(addr)} names peer {components['p2p']}, "
                              f"not this member's peer_id {peer_id}")

    try:
        roles = check_roles(_strings(entry, "roles", path, prefix, default=None))
    except _Invalid as exc:
        raise ConfigError(path, f"{prefix}.roles", str(exc)) from None

    # Stored in canonical base32 so that lookups and duplicate checks compare like with like.
    return Member(name=name, identity=cid.encode("base32"), peer_id=peer_id, addrs=addrs, roles=roles)


def _reject_duplicates(members: tuple[Member, ...], path: Path) -> None:
    for field, label in (("name", "name"), ("identity", "identity"), ("peer_id", "peer id")):
        seen: dict[str, int] = {}
        for index, member in enumerate(members):
            value = getattr(member, field)
            if value in seen:
                first = seen[value]
                raise ConfigError(path, f"member[{index}].{field}",
                                  f"duplicate {label} {json.dumps(value)}: member[{index}] "
                                  f"({json.dumps(member.name)}) and member[{first}] "
                                  f"({json.dumps(members[first].name)}) both use it")
            seen[value] = index


def _threshold(table: Mapping[str, Any], role: str, eligible: int, default: int, path: Path) -> int:
    key = f"federation.thresholds.{role}"
    if role not in table:
        return default
    value = table[role]
    if not isinstance(value, int) or isinstance(value, bool):
        raise ConfigError(path, key, f"expected an integer, found {toml_type(value)} {value!r}")
    if value < 1:
        raise ConfigError(path, key, f"must be at least 1, got {value}")
    if value > eligible:
        raise ConfigError(path, key, f"threshold {value} is larger than the {eligible} member(s) "
                          f'with role "{role}"')
    return value

