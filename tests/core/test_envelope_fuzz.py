"""Fuzzing the opener and its codec with hypothesis.

- 10,000 byte-level mutations of real envelopes (flips, truncations, insertions, deletions,
  duplicated spans): `open_envelope` raises nothing but `EnvelopeError`, never leaks the
  plaintext, and opens only the untouched bytes.
- Mutations that a signer re-signs, so they reach the checks after the signature: random
  field values, and type-preserving changes (a flipped ciphertext, enc or wck byte, another
  kid, shifted times, another sender): same rule.
- The codec against the reference `dag_cbor` (and `ipld.encode`/`decode`): the writer gives
  their bytes; whatever the reader accepts, they accept with the same value; the C reader
  of the common shape, the recipients fast paths and the general path agree on every
  mutated input; so do the schema check on the C reader's words (`_format._parse_common`)
  and the reference one (`_check_schema`), including envread.c's name rules.

The envelopes are small so that the 10,000 opens take seconds.
"""

import hashlib

import dag_cbor
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from milagro_node.core.envelope import (
    DEFAULT_LIMITS, EnvelopeError, ReplayCache, open_envelope, seal, seal_public,
)
from milagro_node.core import ipld
from milagro_node.core.envelope import _cbor, _format
from milagro_node.core.envelope._suites import SUITES
from vectors.make_envelope_vectors import CREATED as NOW
from vectors.make_envelope_vectors import Party

MARKER = b"fuzz-plaintext-marker"
ALICE, BOB, CAROL = Party("alice"), Party("bob"), Party("carol")
OTHERS = [Party(f"fuzz reader {n}") for n in range(4)]  # for the reader's bulk recipient path
RESOLVE = {ALICE.cid: ALICE.signer.public_key, CAROL.cid: CAROL.signer.public_key}.get


def _seal(suite: str, payload: bytes, to: list[Party]) -> bytes:
    return seal(payload, sign=ALICE.signer, suite=suite, sender=ALICE.cid, kind="fuzz/x",
                recipients=[p.key for p in to], created=NOW, expires=NOW + 600, seq=1)


BASES = [
    _seal("mx1", MARKER, [BOB]),
    _seal("mx1", MARKER + b"!", [CAROL, BOB]),
    _seal("mx2", MARKER, [BOB]),
    seal_public(MARKER, sign=ALICE.signer, sender=ALICE.cid, kind="fuzz/public", created=NOW,
                expires=NOW + 600),
    _seal("mx1", MARKER, [CAROL, *OTHERS, BOB]),
]


def _open(data: bytes):
    return open_envelope(data, resolve_sender=RESOLVE, reader_kid=BOB.cid, reader_keys=BOB.reader,
                         now=NOW + 1, replay=ReplayCache())


@st.composite
def mutated(draw):
    base = draw(st.sampled_from(BASES))
    data = bytearray(base)
    for _ in range(draw(st.integers(1, 3))):
        n = len(data)
        kind = draw(st.sampled_from(["flip", "set", "truncate", "insert", "delete", "duplicate"]))
        at = draw(st.integers(0, max(n - 1, 0)))
        if kind == "flip" and n:
            data[at] ^= 1 << draw(st.integers(0, 7))
        elif kind == "set" and n:
            data[at] = draw(st.sampled_from([0x00, 0x17, 0x18, 0x19, 0x1B, 0x1F, 0x40, 0x5F, 0x60,
                                             0x80, 0x9F, 0xA0, 0xBF, 0xC0, 0xF4, 0xF6, 0xFB, 0xFF,
                                             draw(st.integers(0, 255))]))
        elif kind == "truncate":
            del data[at:]
        elif kind == "insert":
            data[at:at] = draw(st.binary(min_size=1, max_size=8))
        elif kind == "delete":
            del data[at:at + draw(st.integers(1, 16))]
        elif kind == "duplicate":
            data[at:at] = data[at:at + draw(st.integers(1, 64))]
    return base, bytes(data)


def _check(base: bytes, data: bytes) -> None:
    try:
        opened = _open(data)
    except EnvelopeError as err:
        assert MARKER not in (str(err) + repr(err.args)).encode("utf-8", "replace")
        return
    # Only the genuine envelope opens: any real change breaks the signature or the format.
    assert data == base and opened.payload.startswith(MARKER)


@settings(max_examples=10_000, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(mutated())
def test_mutated_envelopes_raise_only_envelope_error(case):
    _check(*case)


# --- re-signed structural mutations ---------------------------------------------------------

_VALUES = st.recursive(
    st.one_of(st.integers(-(2**64), 2**64 - 1), st.binary(max_size=40), st.text(max_size=20),
              st.sampled_from([ALICE.cid, BOB.cid, "mx1", "mx2", "", "fuzz/x"]), st.booleans(),
              st.none()),
    lambda inner: st.one_of(st.lists(inner, max_size=3),
                            st.dictionaries(st.sampled_from(["kid", "enc", "wck", "x"]), inner, max_size=4)),
    max_leaves=6,
)
_FIELDS = ["v", "suite", "sender", "created", "expires", "id", "kind", "seq", "recipients", "ct",
           "body", "sig", "extra"]


def _resign(value: dict, signer=ALICE.signer) -> bytes:
    payload = value.get("ct", value.get("body", b""))
    header = {k: v for k, v in value.items() if k not in ("ct", "body", "sig")}
    header_bytes = dag_cbor.encode(header)
    if not isinstance(payload, bytes):
        payload = b""
    value = dict(value)
    value["sig"] = signer(b"milagro-envelope/v1/sig\x00" + len(header_bytes).to_bytes(8, "big")
                                + header_bytes + hashlib.sha256(payload).digest())
    return dag_cbor.encode(value)


@settings(max_examples=1000, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.sampled_from(BASES[:3]), st.dictionaries(st.sampled_from(_FIELDS), _VALUES, max_size=3),
       st.sets(st.sampled_from(_FIELDS), max_size=2))
def test_resigned_field_mutations_raise_only_envelope_error(base, changes, removed):
    value = dag_cbor.decode(base)
    value.update(changes)
    for key in removed:
        value.pop(key, None)
    data = _resign(value)
    _opens_or_refuses_without_plaintext(data)


def _opens_or_refuses_without_plaintext(data: bytes) -> None:
    try:
        opened = _open(data)
    except EnvelopeError as err:
        assert MARKER not in (str(err) + repr(err.args)).encode("utf-8", "replace")
    else:
        assert opened.payload.startswith(MARKER)


def _flip_bytes(draw, raw: bytes) -> bytes:
    if not raw:
        return raw
    at = draw(st.integers(0, len(raw) - 1))
    return raw[:at] + bytes([raw[at] ^ (1 << draw(st.integers(0, 7)))]) + raw[at + 1:]


@st.composite
def typed_change(draw):
    """A re-signed envelope with one field changed but kept well-typed and well-sized."""
    base = draw(st.sampled_from(BASES[:3]))
    value = dag_cbor.decode(base)
    field = draw(st.sampled_from(["ct", "enc", "wck", "kid", "id", "created", "expires", "seq",
                                  "kind", "sender", "order"]))
    recipients = [dict(r) for r in value["recipients"]]
    i = draw(st.integers(0, len(recipients) - 1))
    if field == "ct":
        value["ct"] = draw(st.sampled_from([_flip_bytes(draw, value["ct"]), value["ct"][:-1],
                                            value["ct"] + b"\x00", b"\x00" * 16]))
    elif field in ("enc", "wck"):
        recipients[i][field] = _flip_bytes(draw, recipients[i][field])
    elif field == "kid":
        recipients[i]["kid"] = draw(st.sampled_from([ALICE.cid, CAROL.cid, Party("dave").cid]))
    elif field == "id":
        value["id"] = _flip_bytes(draw, value["id"])
    elif field in ("created", "expires"):
        value[field] = max(0, value[field] + draw(st.integers(-10**6, 10**6)))
    elif field == "seq":
        value["seq"] = draw(st.integers(0, 2**64 - 1))
    elif field == "kind":
        value["kind"] = draw(st.sampled_from(["fuzz/y", "a", "x" * 64, "x" * 65]))
    elif field == "sender":
        value["sender"] = CAROL.cid  # known to the reader; signed below by alice or by carol
    else:
        recipients.reverse()
    value["recipients"] = recipients
    signer = draw(st.sampled_from([ALICE.signer, CAROL.signer]))
    return _resign(value, signer)


@settings(max_examples=1500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(typed_change())
def test_resigned_typed_mutations_raise_only_envelope_error(data):
    _opens_or_refuses_without_plaintext(data)
    _schema_paths_agree(data)


@settings(max_examples=500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.sampled_from(BASES[:3]), st.dictionaries(st.sampled_from(_FIELDS), _VALUES, max_size=3))
def test_schema_on_the_c_words_agrees_with_the_reference(base, changes):
    value = dag_cbor.decode(base)
    value.update(changes)
    _schema_paths_agree(_resign(value))


_B32 = "abcdefghijklmnopqrstuvwxyz234567"


@settings(max_examples=1000, deadline=None)
@given(st.sampled_from([BOB.cid, CAROL.cid, ipld.cid_for(b"raw", "raw")]), st.integers(0, 58),
       st.sampled_from(list(_B32) + ["", "A", "1", "8", "=", "bb"]))
def test_c_name_rule_is_is_canonical_cid(cid, at, char):
    kid = cid[:at] + char + cid[at + 1:]
    value = dag_cbor.decode(BASES[1])
    value["recipients"][0]["kid"] = kid
    words = _cbor.read_common(dag_cbor.encode(value), DEFAULT_LIMITS)
    if words is not None:  # another length is another layout: the C reader leaves it
        assert bool(words[_cbor.NAMES_OK]) == (
            _format.is_canonical_cid(kid) and kid != value["recipients"][1]["kid"])


# --- the codec against dag_cbor -------------------------------------------------------------------

_SUBSET = st.recursive(
    st.one_of(st.integers(-(2**64), 2**64 - 1), st.binary(max_size=30), st.text(max_size=10)),
    lambda inner: st.one_of(st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=6), inner, max_size=4)),
    max_leaves=12,
)


# The project's strict codec, where it exists (it is being written alongside this core).
_IPLD_ENCODE = getattr(ipld, "encode", None)
_IPLD_DECODE = getattr(ipld, "decode", None)


@settings(max_examples=1000, deadline=None)
@given(_SUBSET)
def test_writer_matches_dag_cbor(value):
    data = _cbor.encode(value)
    assert data == dag_cbor.encode(value)
    if _IPLD_ENCODE is not None:
        assert data == _IPLD_ENCODE(value)


_HEADERS = st.builds(
    _format.EnvelopeHeader, version=st.just(1), suite=st.sampled_from(["mx1", "mx2"]),
    sender=st.sampled_from([ALICE.cid, BOB.cid]), created=st.integers(0, 2**64 - 1),
    expires=st.integers(0, 2**64 - 1), id=st.binary(min_size=16, max_size=16),
    kind=st.text("abz/._:-09", min_size=1, max_size=64), seq=st.none() | st.integers(0, 2**64 - 1),
    recipients=st.lists(st.builds(_format.Recipient, st.sampled_from([p.cid for p in OTHERS]),
                                  st.binary(max_size=1200), st.binary(max_size=60)),
                        max_size=4).map(tuple),
    payload_size=st.just(0),
)


@settings(max_examples=500, deadline=None)
@given(_HEADERS, st.binary(max_size=300), st.binary(min_size=64, max_size=64))
def test_envelope_writer_matches_dag_cbor(header, payload, sig):
    value = _format.header_dict(header)
    assert _format.encode_header(header) == dag_cbor.encode(value)
    value["body" if header.public else "ct"] = payload
    value["sig"] = sig
    assert _format.encode_envelope(header, payload, sig) == dag_cbor.encode(value)


def _depth(value) -> int:
    if isinstance(value, dict):
        return 1 + max(map(_depth, value.values()), default=0)
    if isinstance(value, list):
        return 1 + max(map(_depth, value), default=0)
    return 0


def _views_as_bytes(value: dict) -> dict:
    return {k: bytes(v) if isinstance(v, memoryview) else v for k, v in value.items()}


def _read(data: bytes, fast: bool = True):
    """(value with views as bytes, None) or (None, error code).

    ``fast``: as an opener reads (C reader first, then the Python reader with its recipient
    fast paths); otherwise the Python reader alone with both of those paths off, so every
    recipient entry goes through the generic `item`."""
    try:
        if fast:
            value, _ = _cbor.read_envelope(data, DEFAULT_LIMITS)
        else:
            originals = _cbor._Reader.recipient, _cbor._Reader.recipient_list
            _cbor._Reader.recipient = lambda self, depth: self.item(depth, "recipients")
            _cbor._Reader.recipient_list = lambda self, depth, count: [
                self.item(depth, "recipients") for _ in range(count)]
            try:
                value, _ = _cbor.read_envelope_python(data, DEFAULT_LIMITS)
            finally:
                _cbor._Reader.recipient, _cbor._Reader.recipient_list = originals
    except EnvelopeError as err:
        return None, (err.code, err.message)
    return _views_as_bytes(value), None


def _c_reader_agrees(data: bytes) -> bool:
    """Whatever the C reader accepts, the Python reader reads to the same map and entries.
    Returns whether the C reader accepted."""
    common = _cbor._read_common(data, DEFAULT_LIMITS)
    if common is None:
        return False
    value, entries = _cbor.read_envelope_python(data, DEFAULT_LIMITS)
    assert (_views_as_bytes(common[0]), common[1]) == (_views_as_bytes(value), entries)
    return True


def _reference_parse(data: bytes):
    """`parse` by the general reader and `_check_schema`: a Parsed's parts, or the error code."""
    try:
        value, entries = _cbor.read_envelope_python(data, DEFAULT_LIMITS)
        header = _format._check_schema(value, DEFAULT_LIMITS, SUITES)
    except EnvelopeError as err:
        return err.code
    payload = value["ct"] if "ct" in value else value["body"]
    return header, _cbor.cut_header(data, entries, _format.HEADER_KEYS), bytes(payload), value["sig"]


def _schema_paths_agree(data: bytes) -> bool:
    """Whatever `_parse_common` accepts, the reference parses to the same header, header
    bytes, payload and signature; an envelope whose names envread.c refuses, the reference
    refuses too (with the code of its first fault). Returns whether the words path parsed it."""
    words = _cbor.read_common(data, DEFAULT_LIMITS)
    if words is None:
        return False
    reference = _reference_parse(data)
    if not words[_cbor.NAMES_OK]:
        assert not isinstance(reference, tuple)
        return False
    parsed = _format._parse_common(data, words, DEFAULT_LIMITS, SUITES)
    if parsed is None:
        assert not isinstance(reference, tuple)
        return False
    header, header_bytes, payload, sig = reference
    assert parsed.header == header and header == parsed.header
    assert list(parsed.header.recipients) == list(header.recipients)
    assert (parsed.header_bytes, bytes(parsed.payload), parsed.sig) == (header_bytes, payload, sig)
    for entry in header.recipients:
        assert _format.find_recipient(parsed.header.recipients, entry.kid) == entry
    assert _format.find_recipient(parsed.header.recipients, ALICE.cid) is None or ALICE.cid in [
        r.kid for r in header.recipients]
    return True


@settings(max_examples=500, deadline=None)
@given(st.dictionaries(st.text(max_size=6), _SUBSET, max_size=5))
def test_reader_reads_what_dag_cbor_writes(value):
    data = dag_cbor.encode(value)
    got, error = _read(data)
    if _depth(value) <= 3:  # within v1's nesting (and, by the sizes drawn, its limits)
        assert error is None and got == value
    else:
        assert error[0] == "malformed"


@settings(max_examples=2000, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(mutated())
def test_reader_accepts_nothing_dag_cbor_refuses_and_fast_path_agrees(case):
    _, data = case
    got, error = _read(data)
    assert _read(data, fast=False) == (got, error)
    _c_reader_agrees(data)
    _schema_paths_agree(data)
    if error is None:
        assert dag_cbor.decode(data) == got
        if _IPLD_DECODE is not None:
            assert _IPLD_DECODE(data) == got


@pytest.mark.parametrize("base", BASES, ids=["mx1", "mx1-2", "mx2", "public", "mx1-6"])
def test_bases_open(base):
    assert _open(base).payload.startswith(MARKER)


@pytest.mark.parametrize("base", BASES, ids=["mx1", "mx1-2", "mx2", "public", "mx1-6"])
def test_c_reader_reads_every_envelope_a_node_makes(base):
    assert _c_reader_agrees(base)
    assert _schema_paths_agree(base)


@pytest.mark.parametrize("data", [
    b"\xa1\x62ct\x5b\xff\xff\xff\xff\xff\xff\xff\xff",  # a length of 2**64 - 1
    b"\xa1\x62ct\x5b\x00\x00\x00\x00\x00\x00\x00",  # a truncated 8-byte head
    b"\xa1\x62ct\x5a\x00\x20\x00\x00" + bytes(64),  # over the payload limit
    b"\xa1\x61v\x18\x01",  # an integer not in its shortest form
    b"\xa2\x61v\x01\x61v\x01",  # a repeated key
    b"\xa2\x62ct\x40\x61v\x01",  # keys out of order
    b"\xa1\x61x\x01",  # not a v1 key
    b"\xa1\x64kind\x62\xc3\xa9",  # valid UTF-8, not ASCII: the Python reader's to read
    b"\xa1\x6arecipients\x98\x41" + b"\xa0" * 65,  # over the recipients limit
    b"\xa1\x6arecipients\x81\xa3\x63enc\x40\x63kid\x60\x63wck\x40\x00",  # trailing byte
    b"\xa1\x6arecipients\x82\xa3\x63enc\x40\x63kid\x60\x63wck\x40"
    b"\xa3\x63enc\x41\x00\x63kid\x60\x63wck\x40",  # two layouts
    b"\xa1\x61v\x01",  # well formed (the schema refuses it): accepted
], ids=["huge-length", "truncated-head", "too-large", "long-head", "repeated-key", "key-order",
        "unknown-key", "utf8-text", "too-many-recipients", "trailing", "mixed-layouts", "accepted"])
def test_c_reader_leaves_the_rest_to_the_python_reader(data):
    accepted = _c_reader_agrees(data)
    assert accepted == (data == b"\xa1\x61v\x01")
    if not accepted:
        assert _read(data) == _read(data, fast=False)


@pytest.mark.parametrize("change", [
    lambda r: r.update(kid=r["kid"][:-1] + "b"),  # not a canonical CID (trailing bits)
    lambda r: r.update(kid="é" * 30),  # not ASCII: the bulk pattern does not apply
    lambda r: r.update(enc=r["enc"][:-1]),  # another layout
    lambda r: r.update(wck=1),
    lambda r: r.update(x=b""),
    lambda r: r.pop("wck"),
    lambda r: r.clear(),
], ids=["kid", "utf8-kid", "enc-size", "wck-type", "extra-key", "missing-key", "empty"])
def test_bulk_recipient_path_agrees_with_one_by_one(change):
    value = dag_cbor.decode(BASES[-1])
    change(value["recipients"][3])
    data = dag_cbor.encode(value)
    got, error = _read(data)
    assert _read(data, fast=False) == (got, error)
    if error is None:
        assert got == _views_as_bytes(value)
    with pytest.raises(EnvelopeError) as err:
        _open(data)
    assert err.value.code in ("malformed", "bad-signature")


def test_empty_recipient_list_is_read_as_empty():
    value = dag_cbor.decode(BASES[-1])
    value["recipients"] = []
    data = dag_cbor.encode(value)
    assert _read(data)[0]["recipients"] == [] and _read(data, fast=False) == _read(data)


def test_bulk_recipient_path_duplicate_kid():
    value = dag_cbor.decode(BASES[-1])
    value["recipients"][4]["kid"] = value["recipients"][1]["kid"]
    data = dag_cbor.encode(value)
    with pytest.raises(EnvelopeError) as err:
        _open(data)
    assert (err.value.code, err.value.message) == ("malformed", "a kid appears twice in recipients")
