"""Identity events: their fields, their one byte form, and `parse_event`.

An event is a DAG-CBOR map (docs/identity.md gives the CDDL). This module checks everything
that can be checked from the event alone — encoding, schema, limits, keys, and the signature
by the key the event itself carries — and builds the `Event` value the chain rules
(`_chain.py`) then judge against the log. Drafts (`_drafts.py`) run the same `check_fields`
on what a caller asks to sign, so a node can never sign an event a verifier would refuse for
its form.

What is signed: ``EVENT_DOMAIN || DAG-CBOR(event map without "sig")``. The domain prefix keeps
an event signature from ever being valid as a signature of an envelope or a receipt made with
the same key, and vice versa.
"""

from __future__ import annotations

from typing import Any

import attrs

from milagro_node.core.multiaddr import MultiaddrError, is_peer_id, parse_multiaddr

from ._codec import block_cid, decode_block, encode_block, link_text
from ._errors import IdentityError
from ._keys import (
    ED25519_KEY_SIZE,
    ED25519_SIG_SIZE,
    MLKEM768_KEY_SIZE,
    X25519_KEY_SIZE,
    ed25519_key_problem,
    hex_repr,
    mlkem768_key_problem,
    signature_valid,
)

__all__ = [
    "EVENT_DOMAIN",
    "MAX_ADDRS",
    "MAX_ADDR_CHARS",
    "MAX_EVENT_BYTES",
    "MAX_ROLES",
    "ROLES",
    "VERSION",
    "Event",
    "check_fields",
    "parse_event",
]

VERSION = 1
EVENT_DOMAIN = b"milagro-identity/v1/event\x00"
ROLES = frozenset({"dta", "mfa", "custody"})

# Limits. An event with an ML-KEM key and MAX_ADDRS addresses of MAX_ADDR_CHARS is under 5.7 KiB.
MAX_EVENT_BYTES = 8192
MAX_ADDRS = 16
MAX_ADDR_CHARS = 256
MAX_ROLES = len(ROLES)
_DIGEST_SIZE = 32

# The fields of each event type, besides "sig". Establishment content (keys, roles, where to
# reach the node) is restated in full by every rotation, so the head event alone describes
# the identity; a revocation carries only what is needed to chain and verify it.
_PROFILE = frozenset({"sign_key", "enc", "next", "roles", "peer_id", "addrs", "created"})
_FIELDS: dict[str, frozenset[str]] = {
    "inception": frozenset({"v", "type", "seq"}) | _PROFILE,
    "rotation": frozenset({"v", "type", "seq", "prev", "identity"}) | _PROFILE,
    "revocation": frozenset({"v", "type", "seq", "prev", "identity", "sign_key", "created"}),
}


@attrs.frozen
class Event:
    """One verified-in-itself identity event (a DAG-CBOR block).

    ``identity`` is the CID of the inception event (for an inception: its own ``cid``).
    Revocations carry no profile: their ``x25519``, ``next_digest`` and ``peer_id`` are None
    and ``roles``/``addrs`` empty. Being an `Event` says the bytes are well formed and signed
    by ``sign_key``; whether ``sign_key`` was allowed to sign is the chain's question.
    """

    cid: str
    bytes: bytes = attrs.field(repr=False)
    type: str
    seq: int
    identity: str
    prev: str | None
    sign_key: bytes = attrs.field(repr=hex_repr)
    x25519: bytes | None = attrs.field(repr=hex_repr)
    mlkem768: bytes | None = attrs.field(repr=False)
    next_digest: bytes | None = attrs.field(repr=hex_repr)
    roles: tuple[str, ...]
    peer_id: str | None
    addrs: tuple[str, ...]
    created: int
    sig: bytes = attrs.field(repr=False)


def parse_event(data: bytes, *, max_size: int = MAX_EVENT_BYTES) -> Event:
    """Decode and check one event; raise IdentityError (see docs/identity.md, step 1-3)."""
    fields = decode_block(data, max_size, "event")
    checked = check_fields(fields, signed=True)
    unsigned = {key: value for key, value in fields.items() if key != "sig"}
    if not signature_valid(checked["sign_key"], checked["sig"], EVENT_DOMAIN + encode_block(unsigned)):
        raise IdentityError("bad-signature", f"{checked['type']} event is not signed by its sign_key")
    cid = block_cid(bytes(data))
    enc = checked.get("enc", {})
    return Event(
        cid=cid,
        bytes=bytes(data),
        type=checked["type"],
        seq=checked["seq"],
        identity=checked.get("identity", cid),
        prev=checked.get("prev"),
        sign_key=checked["sign_key"],
        x25519=enc.get("x25519"),
        mlkem768=enc.get("mlkem768"),
        next_digest=checked.get("next"),
        roles=checked.get("roles", ()),
        peer_id=checked.get("peer_id"),
        addrs=checked.get("addrs", ()),
        created=checked["created"],
        sig=checked["sig"],
    )


def check_fields(fields: Any, *, signed: bool) -> dict[str, Any]:
    """Check an event map (with "sig" iff ``signed``); return its values in Python form.

    Links come back as base32 CID strings, lists as tuples. The order of checks fixes which
    code a doubly-broken event gets: version first, then the field set, then each field.
    """
    if not isinstance(fields, dict):
        raise IdentityError("malformed", f"an event is a map, not {type(fields).__name__}")
    if "v" not in fields:
        raise IdentityError("malformed", "event has no v field")
    if _uint(fields["v"]) is None:
        raise IdentityError("malformed", "v must be an unsigned integer")
    if fields["v"] != VERSION:
        raise IdentityError("unsupported-version", f"event version {fields['v']} (this node knows {VERSION})")
    kind = fields.get("type")
    if not isinstance(kind, str) or kind not in _FIELDS:
        raise IdentityError("malformed", f"unknown event type {str(kind)[:40]!r}")
    expected = _FIELDS[kind] | ({"sig"} if signed else set())
    if fields.keys() != expected:
        missing = sorted(expected - fields.keys())
        unknown = sorted(str(key)[:40] for key in fields.keys() - expected)
        raise IdentityError("malformed", f"{kind} fields: missing {missing}, unknown {unknown}")

    out: dict[str, Any] = {"v": VERSION, "type": kind}
    seq = _uint(fields["seq"])
    if seq is None or (seq == 0) != (kind == "inception"):
        raise IdentityError("malformed", f"{kind} seq must be {'0' if kind == 'inception' else '>= 1'}")
    out["seq"] = seq
    if kind != "inception":
        out["prev"] = link_text(fields["prev"], "prev")
        out["identity"] = link_text(fields["identity"], "identity")
    out["sign_key"] = _ed25519_key(fields["sign_key"], "sign_key")
    created = _uint(fields["created"])
    if created is None:
        raise IdentityError("malformed", "created must be an unsigned integer (seconds)")
    out["created"] = created
    if kind != "revocation":
        out["enc"] = _enc_keys(fields["enc"])
        out["next"] = _bytes_of(fields["next"], _DIGEST_SIZE, "next")
        out["roles"] = _roles(fields["roles"])
        out["peer_id"] = _peer_id(fields["peer_id"])
        out["addrs"] = _addrs(fields["addrs"], out["peer_id"])
    if signed:
        out["sig"] = _bytes_of(fields["sig"], ED25519_SIG_SIZE, "sig")
    return out


def _uint(value: Any) -> int | None:
    # bool is an int in Python, but CBOR true is not a number; CBOR integers stop at 2**64.
    return value if type(value) is int and 0 <= value < 2**64 else None


def _bytes_of(value: Any, size: int, what: str) -> bytes:
    if not isinstance(value, bytes) or len(value) != size:
        raise IdentityError("malformed", f"{what} must be {size} bytes")
    return value


def _ed25519_key(value: Any, what: str) -> bytes:
    key = _bytes_of(value, ED25519_KEY_SIZE, what)
    problem = ed25519_key_problem(key)
    if problem is not None:
        raise IdentityError("weak-key", f"{what} is not a usable Ed25519 key: {problem}")
    return key


def _enc_keys(value: Any) -> dict[str, bytes]:
    if not isinstance(value, dict) or "x25519" not in value or not value.keys() <= {"x25519", "mlkem768"}:
        raise IdentityError("malformed", "enc must be a map with x25519 and optionally mlkem768")
    keys = {"x25519": _bytes_of(value["x25519"], X25519_KEY_SIZE, "enc.x25519")}
    if "mlkem768" in value:
        keys["mlkem768"] = _bytes_of(value["mlkem768"], MLKEM768_KEY_SIZE, "enc.mlkem768")
        problem = mlkem768_key_problem(keys["mlkem768"])
        if problem is not None:
            raise IdentityError("malformed", f"enc.mlkem768: {problem}")
    return keys


def _roles(value: Any) -> tuple[str, ...]:
    if not isinstance(value, list):
        raise IdentityError("malformed", "roles must be a list")
    if len(value) > MAX_ROLES:
        raise IdentityError("too-large", f"{len(value)} roles; at most {MAX_ROLES}")
    if not all(isinstance(role, str) and role in ROLES for role in value):
        raise IdentityError("malformed", f"roles must be among {sorted(ROLES)}")
    # One set of roles has one encoding: sorted, no repeats.
    if value != sorted(set(value)):
        raise IdentityError("malformed", "roles must be sorted and without repeats")
    return tuple(value)


def _peer_id(value: Any) -> str:
    if not is_peer_id(value):
        raise IdentityError("malformed", "peer_id is not a base58btc libp2p peer id")
    return value


def _addrs(value: Any, peer_id: str) -> tuple[str, ...]:
    if not isinstance(value, list):
        raise IdentityError("malformed", "addrs must be a list")
    if len(value) > MAX_ADDRS:
        raise IdentityError("too-large", f"{len(value)} addrs; at most {MAX_ADDRS}")
    for addr in value:
        if not isinstance(addr, str) or len(addr) > MAX_ADDR_CHARS:
            raise IdentityError("malformed", f"each addr is a multiaddr string of <= {MAX_ADDR_CHARS} chars")
        try:
            components = parse_multiaddr(addr)
        except MultiaddrError as exc:
            raise IdentityError("malformed", f"addrs: {exc}") from None
        # An address that names a peer must name this node's peer; otherwise the identity
        # would vouch for a route to somebody else.
        if any(name == "p2p" and part != peer_id for name, part in components):
            raise IdentityError("malformed", f"addr {addr!r} names another peer than peer_id")
    if len(set(value)) != len(value):
        raise IdentityError("malformed", "addrs repeat an address")
    return tuple(value)
