"""Tests for milagro_node.core.ipld: CIDs against published values, strict DAG-CBOR, base32.

Rejection cases use hand-built CBOR bytes, so they do not depend on our encoder.
Byte-for-byte agreement with npm `@ipld/dag-cbor` + `multiformats` is in test_ipld_npm_interop.py.
"""

import dag_cbor
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from multiformats import CID, multihash

from milagro_node.core import ipld
from milagro_node.core.ipld import (
    MAX_DEPTH,
    IpldError,
    block_cid,
    cid_for,
    decode,
    encode,
    from_base32,
    normalize_cid,
    parse_cid,
    to_base32,
    verify_cid,
)

# Known values, as printed by `ipfs add --cid-version 1 --raw-leaves` / js `multiformats`.
HELLO_RAW = "bafkreifzjut3te2nhyekklss27nh3k72ysco7y32koao5eei66wof36n5e"
EMPTY_RAW = "bafkreihdwdcefgh4dqkjv67uzcmw7ojee6xedzdetojuzjevtenxquvyku"
EMPTY_MAP_DAG_CBOR = "bafyreigbtj4x7ip5legnfznufuopl4sg4knzc2cof6duas4b3q2fy6swua"
HELLO_V0 = "QmT78zSuBmuS4z925WZfrqQ1qHaJ56DQaTfyMUF7F8ff5o"  # the dag-pb file "hello world"
HELLO_V0_AS_V1 = "bafybeicg2rebjoofv4kbyovkw7af3rpiitvnl6i7ckcywaq6xjcxnc2mby"


def test_known_cids():
    assert cid_for(b"hello world") == HELLO_RAW
    assert cid_for(b"") == EMPTY_RAW
    assert cid_for(b"\xa0", codec="dag-cbor") == EMPTY_MAP_DAG_CBOR
    assert cid_for(bytearray(b"hello world")) == HELLO_RAW


def test_unsupported_codec_and_type():
    with pytest.raises(IpldError):
        cid_for(b"x", codec="dag-pb")
    with pytest.raises(IpldError):
        cid_for("hello")  # type: ignore[arg-type]


def test_parse_cid():
    cid = parse_cid(HELLO_RAW)
    assert cid.version == 1 and cid.codec.name == "raw" and cid.hashfun.name == "sha2-256"
    for bad in ["", "xyz", "bafy", "Qm123", HELLO_RAW[:-3], b"bafk"]:
        with pytest.raises(IpldError):
            parse_cid(bad)  # type: ignore[arg-type]
    assert issubclass(IpldError, ValueError)


def test_verify_cid():
    assert verify_cid(HELLO_RAW, b"hello world")
    assert not verify_cid(HELLO_RAW, b"hello world!")
    assert verify_cid(EMPTY_MAP_DAG_CBOR, b"\xa0")
    # The codec only labels the bytes; the same digest under another codec still verifies.
    assert verify_cid(str(parse_cid(HELLO_RAW).set(codec="dag-cbor")), b"hello world")
    with pytest.raises(IpldError):
        verify_cid("not a cid", b"")


def test_only_sha2_256_is_accepted():
    sha512 = str(CID("base32", 1, "raw", multihash.digest(b"hello world", "sha2-512")))
    with pytest.raises(IpldError, match="sha2-256"):
        verify_cid(sha512, b"hello world")
    with pytest.raises(IpldError):
        normalize_cid(sha512)


def test_normalize_cid():
    assert normalize_cid(HELLO_RAW) == HELLO_RAW
    base58 = str(parse_cid(HELLO_RAW).set(base="base58btc"))
    assert base58.startswith("z") and normalize_cid(base58) == HELLO_RAW
    assert normalize_cid(HELLO_V0) == HELLO_V0_AS_V1


# --- DAG-CBOR ---------------------------------------------------------------------------

LINK = parse_cid(HELLO_RAW)


@pytest.mark.parametrize(
    "value, hex_bytes",
    [
        (0, "00"),
        (23, "17"),
        (24, "1818"),
        (-1, "20"),
        (-25, "3818"),
        (2**64 - 1, "1bffffffffffffffff"),
        (-(2**64), "3bffffffffffffffff"),
        ("", "60"),
        ("é", "62c3a9"),
        (b"\x01\x02", "420102"),
        (False, "f4"),
        (True, "f5"),
        (None, "f6"),
        ([], "80"),
        ([1, [2]], "82018102"),
        ({}, "a0"),
        ({"a": 12, "b": "hello!"}, "a261610c61626668656c6c6f21"),
        # Canonical order: shorter keys first, then bytewise; insertion order does not matter.
        ({"aa": 1, "b": 2, "a": 3}, "a361610361620262616101"),
        ({"é": 1, "z": 2}, "a2617a0262c3a901"),
        (LINK, "d82a58250001551220" + LINK.raw_digest.hex()),
    ],
)
def test_encode_known_bytes_and_round_trip(value, hex_bytes):
    data = encode(value)
    assert data.hex() == hex_bytes
    assert decode(data) == value
    assert type(decode(data)) is type(value)


def test_block_cid():
    assert block_cid({}) == EMPTY_MAP_DAG_CBOR
    doc = {"kind": "test", "links": [LINK], "n": -5, "blob": b"\x00" * 40}
    assert block_cid(doc) == cid_for(encode(doc), "dag-cbor")
    assert verify_cid(block_cid(doc), encode(doc))


def test_cidv0_link_round_trips():
    v0 = parse_cid(HELLO_V0)
    data = encode({"link": v0})
    assert decode(data) == {"link": v0} and decode(data)["link"].version == 0


def test_max_size_is_checked_first():
    data = encode({"blob": b"x" * 100})
    assert decode(data, max_size=len(data)) == {"blob": b"x" * 100}
    with pytest.raises(IpldError, match="exceeds the limit"):
        decode(data, max_size=len(data) - 1)
    # Refused on size alone: the bytes are not even looked at.
    with pytest.raises(IpldError, match="exceeds the limit"):
        decode(b"\xff" * 11, max_size=10)


def test_decode_accepts_bytes_like_only():
    assert decode(bytearray(b"\xa0")) == {} and decode(memoryview(b"\x80")) == []
    with pytest.raises(IpldError, match="must be bytes"):
        decode("a0")  # type: ignore[arg-type]


# Each case: hand-built CBOR bytes and a fragment of the expected error message.
REJECTED = {
    # map keys out of canonical order
    "unsorted keys": ("a2616201616102", "out of canonical order"),
    "bytewise but not length-first": ("a262616101616202", "out of canonical order"),
    "duplicate keys": ("a2616101616102", "duplicate map key"),
    "integer key": ("a10102", "not a string"),
    "bytes key": ("a1416101", "not a string"),
    # integers and lengths not in their shortest form
    "int 1 in 1 byte": ("1801", "non-minimal"),
    "int 255 in 2 bytes": ("1900ff", "non-minimal"),
    "int 65535 in 4 bytes": ("1a0000ffff", "non-minimal"),
    "int 2**32-1 in 8 bytes": ("1b00000000ffffffff", "non-minimal"),
    "negative int -1 in 1 byte": ("3800", "non-minimal"),
    "string length in 1 byte": ("780161", "non-minimal"),
    "array length in 2 bytes": ("990000", "non-minimal"),
    # indefinite lengths
    "indefinite array": ("9f0102ff", "indefinite"),
    "indefinite map": ("bf616101ff", "indefinite"),
    "indefinite string": ("7f6161ff", "indefinite"),
    "indefinite bytes": ("5f4101ff", "indefinite"),
    "stray break": ("ff", "indefinite"),
    "reserved additional info": ("1c", "reserved"),
    # trailing and missing bytes
    "trailing byte": ("0100", "trailing"),
    "two items": ("a0a0", "trailing"),
    "empty input": ("", "truncated"),
    "short string": ("6261", "truncated"),
    "short array": ("8201", "truncated"),
    "cut-off head": ("1901", "truncated"),
    "huge declared array": ("9bffffffffffffffff", "truncated"),
    "huge declared bytes": ("5bffffffffffffffff00", "truncated"),
    # floats: every width, also nested
    "float64": ("fb3ff0000000000000", "float"),
    "float32": ("fa3f800000", "float"),
    "float16": ("f93c00", "float"),
    "float in a map": ("a16161fb0000000000000000", "float"),
    # simple values other than false/true/null
    "undefined": ("f7", "simple value"),
    "simple 0": ("e0", "simple value"),
    "simple in 1 byte": ("f820", "simple value"),
    # tags other than 42
    "tag 0 (date)": ("c06161", "tag 0"),
    "tag 43": ("d82b4100", "tag 43"),
    "bignum tag 2": ("c2420100", "tag 2"),
    # bad content
    "invalid utf-8": ("62fffe", "invalid DAG-CBOR"),
    "CID tag on an int": ("d82a01", "invalid DAG-CBOR"),
    "CID empty bytes": ("d82a40", "invalid DAG-CBOR"),
    "CID without 0x00 prefix": ("d82a4101", "invalid DAG-CBOR"),
    "CID with bad multihash": ("d82a450001551220", "invalid DAG-CBOR"),
}


@pytest.mark.parametrize("hex_bytes, message", REJECTED.values(), ids=REJECTED.keys())
def test_decode_rejects(hex_bytes, message):
    with pytest.raises(IpldError, match=message):
        decode(bytes.fromhex(hex_bytes))


def test_decode_rejects_non_canonical_cid_inside_link():
    # A CIDv1 whose version varint is written in two bytes (0x81 0x00 instead of 0x01):
    # the CBOR is well formed, but the link has another canonical spelling.
    cid_bytes = b"\x00\x81\x00" + bytes(LINK)[1:]
    data = b"\xd8\x2a\x58" + bytes([len(cid_bytes)]) + cid_bytes
    with pytest.raises(IpldError):
        decode(data)


def test_nesting_limit():
    def nested(levels: int) -> bytes:  # `levels` lists, one inside the other
        return b"\x81" * (levels - 1) + b"\x80"

    assert decode(nested(MAX_DEPTH)) == encode_roundtrip_nested(MAX_DEPTH)
    with pytest.raises(IpldError, match="nesting deeper"):
        decode(nested(MAX_DEPTH + 1))
    with pytest.raises(IpldError, match="nesting deeper"):
        decode(b"\x81" * 100_000 + b"\x00")  # no RecursionError
    with pytest.raises(IpldError, match="nesting deeper"):
        encode(encode_roundtrip_nested(MAX_DEPTH + 1))
    maps = b"\xa1\x61a" * (MAX_DEPTH + 1) + b"\x00"
    with pytest.raises(IpldError, match="nesting deeper"):
        decode(maps)


def encode_roundtrip_nested(levels: int) -> list:
    value: list = []
    for _ in range(levels - 1):
        value = [value]
    assert encode(value) == b"\x81" * (levels - 1) + b"\x80"
    return value


@pytest.mark.parametrize(
    "value, message",
    [
        (1.0, "float"),
        ({"a": [1, 2.5]}, r"float at /a/1"),
        (float("nan"), "float"),
        ((1, 2), "not of IPLD kind"),
        (bytearray(b"x"), "not of IPLD kind"),
        ({1, 2}, "not of IPLD kind"),
        (2**64, "out of range"),
        (-(2**64) - 1, "out of range"),
        ({1: "x"}, "not a string"),
        ("\ud800", "surrogate"),
    ],
)
def test_encode_rejects(value, message):
    with pytest.raises(IpldError, match=message):
        encode(value)


def test_encode_rejects_cycles():
    loop: list = []
    loop.append(loop)
    with pytest.raises(IpldError, match="nesting deeper"):
        encode(loop)


cids = st.binary(min_size=32, max_size=32).flatmap(
    lambda digest: st.sampled_from(
        [
            CID("base32", 1, "dag-cbor", multihash.wrap(digest, "sha2-256")),
            CID("base32", 1, "raw", multihash.wrap(digest, "sha2-256")),
            CID("base58btc", 0, "dag-pb", multihash.wrap(digest, "sha2-256")),
        ]
    )
)
leaves = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**64), max_value=2**64 - 1)
    | st.text()
    | st.binary()
    | cids
)
ipld_values = st.recursive(
    leaves,
    lambda children: st.lists(children, max_size=8) | st.dictionaries(st.text(), children, max_size=8),
    max_leaves=40,
)


@settings(max_examples=500, deadline=None)
@given(ipld_values)
def test_round_trip_property(value):
    data = encode(value)
    assert decode(data) == value
    assert encode(decode(data)) == data


plain_values = st.recursive(
    leaves.filter(lambda leaf: not isinstance(leaf, CID)),
    lambda children: st.lists(children, max_size=8) | st.dictionaries(st.text(), children, max_size=8),
    max_leaves=40,
)


@settings(max_examples=500, deadline=None)
@given(plain_values, st.data())
def test_plain_codec_agrees_with_dag_cbor(value, data):
    """Values without links take the plain codec: the same bytes as `dag_cbor` and, for the
    blocks they make and mutations of them, the same value or the same refusal."""
    block = encode(value)
    assert block == dag_cbor.encode(value)
    assert decode(block) == dag_cbor.decode(block) == value
    mutated = bytearray(block)
    i = data.draw(st.integers(0, max(len(mutated) - 1, 0)))
    if mutated:
        mutated[i] ^= data.draw(st.integers(1, 255))
    try:
        ipld._check_canonical(bytes(mutated))
    except IpldError:
        return
    try:
        reference = ipld._decode_by_dag_cbor(bytes(mutated))
    except IpldError:
        reference = None
    try:
        plain = ipld._decode_plain(bytes(mutated))
    except ipld._NotPlain:
        return  # dag_cbor's to read: a tag, or invalid UTF-8
    assert plain == reference


@settings(max_examples=500, deadline=None)
@given(ipld_values, st.data())
def test_mutated_blocks_are_rejected_or_canonical(value, data):
    """Changing, dropping or adding bytes: `decode` raises IpldError or returns a value whose
    encoding is exactly the bytes it was given — never another exception, never non-canonical."""
    block = bytearray(encode(value))
    for _ in range(data.draw(st.integers(1, 3))):
        action = data.draw(st.sampled_from(["flip", "drop", "insert"]))
        i = data.draw(st.integers(0, len(block)))
        if action == "flip" and i < len(block):
            block[i] ^= data.draw(st.integers(1, 255))
        elif action == "drop" and i < len(block):
            del block[i]
        else:
            block.insert(i, data.draw(st.integers(0, 255)))
    try:
        decoded = decode(bytes(block))
    except IpldError:
        return
    assert encode(decoded) == bytes(block)


# --- base32 multibase -------------------------------------------------------------------


def test_base32():
    assert to_base32(b"") == "b"
    assert to_base32(b"hello") == "bnbswy3dp"
    assert from_base32("bnbswy3dp") == b"hello"
    assert to_base32(bytearray(b"\x00\xff")) == "bad7q"
    # A CID's binary form in base32 is its usual string.
    assert to_base32(bytes(LINK)) == HELLO_RAW


@pytest.mark.parametrize(
    "text", ["", "nbswy3dp", "Bnbswy3dp", "bNBSWY3DP", "zCn8eVZg", "bnbswy3dp=", "bab", "b1"]
)
def test_from_base32_rejects(text):
    with pytest.raises(IpldError):
        from_base32(text)


def test_base32_types():
    with pytest.raises(IpldError):
        from_base32(b"bnbswy3dp")  # type: ignore[arg-type]
    with pytest.raises(IpldError):
        to_base32("hello")  # type: ignore[arg-type]


@given(st.binary())
def test_base32_round_trip(data):
    assert from_base32(to_base32(data)) == data
