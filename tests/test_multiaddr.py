"""Tests for milagro_node.core.multiaddr: the strict multiaddr subset and peer ids.

Peer ids are built here from raw bytes with a small independent base58 encoder, so
the validator is checked against the libp2p layouts rather than against itself.
"""

import hashlib

import pytest

from milagro_node.core.multiaddr import (
    MultiaddrError,
    format_multiaddr,
    is_dns_name,
    is_peer_id,
    parse_multiaddr,
)

ALPHABET = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz"


def b58encode(data: bytes) -> str:
    number = int.from_bytes(data, "big")
    out = ""
    while number:
        number, digit = divmod(number, 58)
        out = ALPHABET[digit] + out
    return "1" * (len(data) - len(data.lstrip(b"\0"))) + out


def ed25519_peer_id(key: bytes) -> str:
    # identity multihash (0x00, len) of protobuf PublicKey{Type: Ed25519=1, Data: key}
    proto = bytes([0x08, 0x01, 0x12, len(key)]) + key
    return b58encode(bytes([0x00, len(proto)]) + proto)


def secp256k1_peer_id(key: bytes) -> str:
    proto = bytes([0x08, 0x02, 0x12, len(key)]) + key
    return b58encode(bytes([0x00, len(proto)]) + proto)


def sha256_peer_id(data: bytes) -> str:
    return b58encode(bytes([0x12, 0x20]) + hashlib.sha256(data).digest())


ED = ed25519_peer_id(hashlib.sha256(b"ed").digest())
SECP = secp256k1_peer_id(b"\x02" + hashlib.sha256(b"secp").digest())
QM = sha256_peer_id(b"rsa public key")


def test_generated_peer_ids_have_the_libp2p_prefixes():
    assert ED.startswith("12D3KooW") and len(ED) == 52
    assert SECP.startswith("16Uiu2") and len(SECP) == 53
    assert QM.startswith("Qm") and len(QM) == 46


@pytest.mark.parametrize(
    "peer_id",
    [
        ED,
        SECP,
        QM,
        # made by py-libp2p 0.8.1 (ID.from_pubkey(...).to_base58()): ed25519, secp256k1, RSA
        "12D3KooWDQeKjWUeitmTPRhQ8564yZdZqhnS1fjyvzU2kHL5aug5",
        "16Uiu2HAky7f1xsPgg8H6kcGE6KnjYRLnpttn63fA8zq5mRZjKdee",
        "QmURx5CB1DdAUMWP5GFsRtsaPKMP54gothgPyB8tiJoVq9",
        "QmYwAPJzv5CZsnA625s3Xf2nemtYgPpHdWEz79ojWnPbdG",
    ],
)
def test_valid_peer_ids(peer_id):
    assert is_peer_id(peer_id)


@pytest.mark.parametrize(
    "text",
    [
        "",
        "12D3KooW",  # far too short
        ED[:-1],  # truncated: the multihash length no longer matches
        ED + "1",  # one byte too many
        ED[:10] + "0" + ED[11:],  # 0 is not base58
        ED[:10] + "l" + ED[11:],  # nor is l
        QM[:5] + "O" + QM[6:],  # nor O
        QM[:5] + "I" + QM[6:],  # nor I
        b58encode(bytes([0x13, 0x20]) + bytes(32)),  # sha2-512 code with a 32-byte digest
        b58encode(bytes([0x00, 0x24, 0x08, 0x00, 0x12, 0x20]) + bytes(32)),  # RSA key type inlined
        secp256k1_peer_id(b"\x04" + bytes(32)),  # not a compressed point
        "bafyreich7wsjl4rnbf2cvz45agmdbcktoxzsw5lpk2butwy63bomaoxbo4",  # a CID, not a peer id
        "x" * 10_000,
        None,
        b"12D3KooWDQeKjWUeitmTPRhQ8564yZdZqhnS1fjyvzU2kHL5aug5",
    ],
)
def test_invalid_peer_ids(text):
    assert not is_peer_id(text)


@pytest.mark.parametrize(
    "text, expected",
    [
        ("/ip4/127.0.0.1/tcp/4001", (("ip4", "127.0.0.1"), ("tcp", "4001"))),
        ("/ip4/0.0.0.0/tcp/0", (("ip4", "0.0.0.0"), ("tcp", "0"))),
        ("/ip6/::1/tcp/65535", (("ip6", "::1"), ("tcp", "65535"))),
        ("/ip6/2001:db8::8:800:200c:417a/udp/4001/quic-v1",
         (("ip6", "2001:db8::8:800:200c:417a"), ("udp", "4001"), ("quic-v1", None))),
        ("/dns/example.com/tcp/443/ws", (("dns", "example.com"), ("tcp", "443"), ("ws", None))),
        ("/dns4/localhost/tcp/4001", (("dns4", "localhost"), ("tcp", "4001"))),
        ("/dns6/node-1.example.org/udp/9/quic-v1/p2p/" + ED,
         (("dns6", "node-1.example.org"), ("udp", "9"), ("quic-v1", None), ("p2p", ED))),
        ("/ip4/10.0.0.1/tcp/4001/p2p/" + QM, (("ip4", "10.0.0.1"), ("tcp", "4001"), ("p2p", QM))),
        ("/ip4/10.0.0.1", (("ip4", "10.0.0.1"),)),
        ("/p2p/" + SECP, (("p2p", SECP),)),
    ],
)
def test_parse_valid(text, expected):
    assert parse_multiaddr(text) == expected
    assert format_multiaddr(expected) == text


@pytest.mark.parametrize(
    "text, fragment",
    [
        ("", "must start with"),
        ("ip4/1.2.3.4/tcp/1", "must start with"),
        ("/", "empty component"),
        ("/ip4/1.2.3.4//tcp/1", "empty component"),
        ("/ip4/1.2.3.4/tcp/1/", "empty component"),
        ("/ip4/256.0.0.1/tcp/1", '"/ip4/256.0.0.1"'),
        ("/ip4/1.2.3/tcp/1", '"/ip4/1.2.3"'),
        ("/ip4/01.2.3.4/tcp/1", '"/ip4/01.2.3.4"'),
        ("/ip4/::1/tcp/1", "not an IPv4 address"),
        ("/ip6/1.2.3.4/tcp/1", "not an IPv6 address"),
        ("/ip6/fe80::1%eth0/tcp/1", "zone"),
        ("/dns/-bad.example/tcp/1", '"/dns/-bad.example"'),
        ("/dns4/under_score.example/tcp/1", "not a valid DNS name"),
        ("/dns/1.2.3.4/tcp/1", "not a valid DNS name"),
        ("/dns6/" + "a" * 64 + ".com/tcp/1", "not a valid DNS name"),
        ("/ip4/1.2.3.4/tcp/65536", '"/tcp/65536"'),
        ("/ip4/1.2.3.4/udp/-1", '"/udp/-1"'),
        ("/ip4/1.2.3.4/tcp/080", '"/tcp/080"'),
        ("/ip4/1.2.3.4/tcp/+80", '"/tcp/+80"'),
        ("/ip4/1.2.3.4/tcp/ 80", '"/tcp/ 80"'),
        ("/ip4/1.2.3.4/tcp/http", '"/tcp/http"'),
        ("/ip4/1.2.3.4/tcp", '"/tcp" needs a value'),
        ("/ip4", '"/ip4" needs a value'),
        ("/tcp/4001", '"/tcp" is not allowed at the start'),
        ("/ip4/1.2.3.4/ws", '"/ws" is not allowed after "/ip4"'),
        ("/ip4/1.2.3.4/udp/1/ws", '"/ws" is not allowed after "/udp"'),
        ("/ip4/1.2.3.4/tcp/1/quic-v1", '"/quic-v1" is not allowed after "/tcp"'),
        ("/ip4/1.2.3.4/ip4/1.2.3.4", '"/ip4" is not allowed after "/ip4"'),
        ("/ip4/1.2.3.4/tcp/1/tcp/2", '"/tcp" is not allowed after "/tcp"'),
        ("/ip4/1.2.3.4/tcp/1/p2p/" + ED + "/ws", '"/ws" is not allowed after "/p2p"'),
        ("/ip4/1.2.3.4/sctp/1", 'unknown protocol "/sctp"'),
        ("/IP4/1.2.3.4/tcp/1", 'unknown protocol "/IP4"'),
        ("/ip4/1.2.3.4/quic", 'unknown protocol "/quic"'),
        ("/ip4/1.2.3.4/tcp/1/p2p/xyz", '"/p2p/xyz"'),
        ("/ip4/1.2.3.4/tcp/1/p2p/" + ED[:-1], "/p2p/"),
        ("/ip4/1.2.3.4/tcp/1/p2p/" + "0" * 52, "not base58btc"),
        ("/" + "a/" * 600, "longer than"),
    ],
)
def test_parse_invalid_names_the_component(text, fragment):
    with pytest.raises(MultiaddrError) as info:
        parse_multiaddr(text)
    assert fragment in str(info.value)


def test_error_is_a_value_error_and_non_strings_are_refused():
    assert issubclass(MultiaddrError, ValueError)
    with pytest.raises(MultiaddrError, match="must be a string"):
        parse_multiaddr(b"/ip4/1.2.3.4/tcp/1")  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "name, ok",
    [
        ("localhost", True),
        ("a.b-c.example", True),
        ("xn--bcher-kva.example", True),
        ("", False),
        ("a..b", False),
        ("-a.example", False),
        ("a-.example", False),
        ("a" * 63 + ".example", True),
        ("a" * 64 + ".example", False),
        (".".join(["a" * 60] * 5), False),  # longer than 253
        ("1.2.3.4", False),
        ("example.com.", False),
    ],
)
def test_is_dns_name(name, ok):
    assert is_dns_name(name) is ok
