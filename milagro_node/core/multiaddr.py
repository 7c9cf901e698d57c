"""Strict parser for the text form of the multiaddrs Milagro Node uses.

Sans-IO core (layer 1 of the design): pure functions, no dependencies beyond the
standard library.  The runtime config loader (``milagro_node.runtime.config``) and the
federation loader (``milagro_node.runtime.federation``) call it to validate
``[p2p] listen`` and the members' ``addrs``/``peer_id`` before anything is handed to
the libp2p adapter, so a typo is reported with the file and key instead of
surfacing as an obscure error deep inside libp2p.

Only this subset is accepted::

    /ip4/<a.b.c.d>  /ip6/<addr>  /dns/<name>  /dns4/<name>  /dns6/<name>
    /tcp/<port>  /udp/<port>  /quic-v1  /ws  /p2p/<peer id>

in the order host, transport, (ws | quic-v1), p2p; every part is optional, but a
transport needs a host, ``/ws`` needs ``/tcp``, ``/quic-v1`` needs ``/udp`` and
``/p2p`` comes last.  Peer ids are accepted in their base58btc forms only: the
sha2-256 multihash form (``Qm...``) and the identity-multihash form that inlines an
ed25519 (``12D3KooW...``) or secp256k1 (``16Uiu2...``) public key.
"""

from __future__ import annotations

import ipaddress
import re

__all__ = [
    "MultiaddrError",
    "parse_multiaddr",
    "format_multiaddr",
    "is_peer_id",
    "is_dns_name",
]

# Longer inputs are refused before any work is done: a multiaddr is a short string,
# and base58 decoding is quadratic in the input length.
_MAX_MULTIADDR_CHARS = 1024

_HOST_PROTOCOLS = frozenset({"ip4", "ip6", "dns", "dns4", "dns6"})
_PORT_PROTOCOLS = frozenset({"tcp", "udp"})
# Protocols that take a value, and those that stand alone.
_VALUE_PROTOCOLS = _HOST_PROTOCOLS | _PORT_PROTOCOLS | {"p2p"}
_FLAG_PROTOCOLS = frozenset({"quic-v1", "ws"})

# Which protocol may follow which; None stands for "start of the address".
_MAY_FOLLOW: dict[str | None, frozenset[str]] = {
    None: _HOST_PROTOCOLS | {"p2p"},
    **{host: _PORT_PROTOCOLS | {"p2p"} for host in _HOST_PROTOCOLS},
    "tcp": frozenset({"ws", "p2p"}),
    "udp": frozenset({"quic-v1", "p2p"}),
    "ws": frozenset({"p2p"}),
    "quic-v1": frozenset({"p2p"}),
    "p2p": frozenset(),
}

_BASE58_ALPHABET = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz"
_BASE58_INDEX = {ch: i for i, ch in enumerate(_BASE58_ALPHABET)}

# Multihash codes and libp2p key types (libp2p peer-ids spec).
_MH_IDENTITY = 0x00
_MH_SHA2_256 = 0x12
_KEY_ED25519 = 1
_KEY_SECP256K1 = 2
# A sha2-256 peer id is 46 base58 characters; the identity-inlined ed25519 and
# secp256k1 forms are 52 and 53.  Anything far outside this range is not a peer id.
_PEER_ID_MIN_CHARS = 44
_PEER_ID_MAX_CHARS = 60

_DNS_LABEL = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?\Z")
_DECIMAL = re.compile(r"(?:0|[1-9][0-9]{0,4})\Z")


class MultiaddrError(ValueError):
    """A multiaddr (or peer id) that this node refuses; the message names the part."""


Component = tuple[str, str | None]


def parse_multiaddr(text: str) -> tuple[Component, ...]:
    """Split and validate ``text``; return ``((protocol, value or None), ...)``.

    Values are returned as written (already validated).  Raises MultiaddrError
    whose message names the offending component.
    """
    if not isinstance(text, str):
        raise MultiaddrError(f"a multiaddr must be a string, got {type(text).__name__}")
    if len(text) > _MAX_MULTIADDR_CHARS:
        raise MultiaddrError(f"multiaddr longer than {_MAX_MULTIADDR_CHARS} characters")
    if not text.startswith("/"):
        raise MultiaddrError(f'multiaddr {text!r} must start with "/"')
    parts = text[1:].split("/")
    components: list[Component] = []
    previous: str | None = None
    i = 0
    while i < len(parts):
        name = parts[i]
        if name == "":
            raise MultiaddrError(f'multiaddr {text!r} has an empty component ("//" or a trailing "/")')
        if name not in _VALUE_PROTOCOLS and name not in _FLAG_PROTOCOLS:
            raise MultiaddrError(f'unknown protocol "/{name}" in {text!r}')
        if name not in _MAY_FOLLOW[previous]:
            where = "at the start" if previous is None else f'after "/{previous}"'
            raise MultiaddrError(f'"/{name}" is not allowed {where} in {text!r}')
        value: str | None = None
        if name in _VALUE_PROTOCOLS:
            if i + 1 >= len(parts) or parts[i + 1] == "":
                raise MultiaddrError(f'"/{name}" needs a value in {text!r}')
            value = parts[i + 1]
            problem = _value_problem(name, value)
            if problem is not None:
                raise MultiaddrError(f'bad "/{name}/{value}" in {text!r}: {problem}')
            i += 1
        components.append((name, value))
        previous = name
        i += 1
    if not components:
        raise MultiaddrError("empty multiaddr")
    return tuple(components)


def format_multiaddr(components: tuple[Component, ...]) -> str:
    """Inverse of parse_multiaddr (does not re-validate)."""
    return "".join(f"/{name}" if value is None else f"/{name}/{value}" for name, value in components)


def is_peer_id(text: object) -> bool:
    """True if ``text`` is a base58btc libp2p peer id of a form described above."""
    return isinstance(text, str) and _peer_id_problem(text) is None


def ed25519_peer_id(public_key: bytes) -> str:
    """The libp2p peer id of an Ed25519 public key: the key inlined in an identity multihash.

    The key is protobuf ``PublicKey{Type: Ed25519 (1), Data: key}`` (bytes 08 01 12 20),
    wrapped as multihash identity (00, length 36), in base58btc: ``12D3KooW...``.
    """
    if len(public_key) != 32:
        raise ValueError("an Ed25519 public key is 32 bytes")
    raw = bytes([0x00, 36, 0x08, 0x01, 0x12, 0x20]) + public_key
    number, digits = int.from_bytes(raw, "big"), []
    while number:
        number, digit = divmod(number, 58)
        digits.append(_BASE58_ALPHABET[digit])
    leading_zeros = len(raw) - len(raw.lstrip(b"\0"))
    return "1" * leading_zeros + "".join(reversed(digits))


def is_dns_name(text: str) -> bool:
    """True for a plausible host name: LDH labels of 1..63 chars, 253 chars in all,
    not all-numeric (a dotted number is an IPv4 address, not a name)."""
    if not text or len(text) > 253:
        return False
    labels = text.split(".")
    if not all(_DNS_LABEL.match(label) for label in labels):
        return False
    return not labels[-1].isdigit()


def _value_problem(protocol: str, value: str) -> str | None:
    """Return why ``value`` is not acceptable for ``protocol``, or None."""
    if protocol == "ip4":
        try:
            ipaddress.IPv4Address(value)
        except ValueError:
            return "not an IPv4 address"
        return None
    if protocol == "ip6":
        if "%" in value:
            return "IPv6 zone ids are not supported"
        try:
            ipaddress.IPv6Address(value)
        except ValueError:
            return "not an IPv6 address"
        return None
    if protocol in ("dns", "dns4", "dns6"):
        return None if is_dns_name(value) else "not a valid DNS name"
    if protocol in _PORT_PROTOCOLS:
        # Strict decimal: no sign, no spaces, no leading zeros, at most 65535.
        if not _DECIMAL.match(value) or int(value) > 65535:
            return "port must be a decimal number 0..65535"
        return None
    if protocol == "p2p":
        return _peer_id_problem(value)
    raise AssertionError(f"no value check for {protocol}")  # _VALUE_PROTOCOLS changed


def _peer_id_problem(text: str) -> str | None:
    """Return why ``text`` is not a peer id, or None."""
    if not _PEER_ID_MIN_CHARS <= len(text) <= _PEER_ID_MAX_CHARS:
        return f"a peer id is {_PEER_ID_MIN_CHARS}..{_PEER_ID_MAX_CHARS} characters, got {len(text)}"
    raw = _base58_decode(text)
    if raw is None:
        return "peer id is not base58btc (allowed: 1-9, A-Z, a-z without 0, O, I, l)"
    if len(raw) == 34 and raw[0] == _MH_SHA2_256 and raw[1] == 32:
        return None
    if len(raw) >= 2 and raw[0] == _MH_IDENTITY and raw[1] == len(raw) - 2:
        return _inlined_key_problem(raw[2:])
    return "peer id is neither a sha2-256 nor an identity multihash of a public key"


def _inlined_key_problem(key: bytes) -> str | None:
    """Check the protobuf PublicKey{Type, Data} that an identity peer id inlines.

    libp2p inlines only keys of at most 42 bytes, i.e. ed25519 and secp256k1; the
    deterministic encoding is 0x08 <type> 0x12 <len> <key bytes>.
    """
    if len(key) < 4 or key[0] != 0x08 or key[2] != 0x12 or key[3] != len(key) - 4:
        return "identity peer id does not contain a libp2p public key"
    key_type, data = key[1], key[4:]
    if key_type == _KEY_ED25519 and len(data) == 32:
        return None
    if key_type == _KEY_SECP256K1 and len(data) == 33 and data[0] in (2, 3):
        return None
    return "identity peer id holds neither an ed25519 nor a compressed secp256k1 key"


def _base58_decode(text: str) -> bytes | None:
    """Bitcoin-alphabet base58 to bytes; None if a character is outside the alphabet."""
    number = 0
    for ch in text:
        digit = _BASE58_INDEX.get(ch)
        if digit is None:
            return None
        number = number * 58 + digit
    # Each leading "1" encodes one leading zero byte.
    zeros = len(text) - len(text.lstrip("1"))
    body = number.to_bytes((number.bit_length() + 7) // 8, "big") if number else b""
    return b"\x00" * zeros + body
