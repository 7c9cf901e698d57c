"""Tests for milagro_node.core.audit (sans-IO hash-chained audit log)."""

import hashlib
import struct

import attrs
import dag_cbor
import pytest
from hypothesis import given
from hypothesis import strategies as st

from milagro_node.core.audit import (
    GENESIS, AuditEntry, chain_entry, decode_detail, encode_detail, entry_hash, verify_chain,
)


def make_chain(n: int) -> list[AuditEntry]:
    entries: list[AuditEntry] = []
    for i in range(n):
        prev = entries[-1] if entries else None
        entries.append(chain_entry(prev, 1000.0 + i, "tester", "act", {"i": i, "b": b"\x00"}))
    return entries


def _text(s: str) -> bytes:
    assert len(s) < 256
    return (bytes([0x60 + len(s)]) if len(s) < 24 else bytes([0x78, len(s)])) + s.encode()


def test_hash_is_sha256_of_canonical_dag_cbor():
    # Independent encoding by hand: a 6-entry map, keys ordered by length then bytes
    # (DAG-CBOR), time as a 64-bit float.
    expected_cbor = (
        b"\xa6"
        + _text("seq") + b"\x01"
        + _text("time") + b"\xfb" + struct.pack(">d", 1.5)
        + _text("actor") + _text("a")
        + _text("action") + _text("b")
        + _text("detail") + b"\xa0"
        + _text("prev_hash") + _text(GENESIS)
    )
    expected = hashlib.sha256(expected_cbor).hexdigest()
    assert entry_hash(1, 1.5, "a", "b", {}, GENESIS) == expected
    entry = chain_entry(None, 1.5, "a", "b", {})
    assert (entry.seq, entry.prev_hash, entry.hash) == (1, GENESIS, expected)


_leaves = (st.none() | st.booleans() | st.integers(-(2**64), 2**64 - 1) | st.text(max_size=30)
           | st.binary(max_size=30) | st.floats(allow_nan=False, allow_infinity=False))
_details = st.dictionaries(st.text(max_size=12), st.recursive(
    _leaves, lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=12), max_size=6)


@given(detail=_details, seq=st.integers(1, 2**40), time=st.floats(allow_nan=False, allow_infinity=False),
       actor=st.text(max_size=20))
def test_fast_codec_gives_dag_cbor_bytes_and_hashes(detail, seq, time, actor):
    # The detail and the hashed map are written without dag_cbor when they hold no float;
    # dag_cbor stays the definition of both.
    assert encode_detail(detail) == dag_cbor.encode(detail)
    assert decode_detail(dag_cbor.encode(detail)) == dag_cbor.decode(dag_cbor.encode(detail))
    payload = {"seq": seq, "time": time, "actor": actor, "action": "act", "detail": detail,
               "prev_hash": GENESIS}
    reference = hashlib.sha256(dag_cbor.encode(payload)).hexdigest()
    assert entry_hash(seq, time, actor, "act", detail, GENESIS) == reference


@pytest.mark.parametrize("stored", [b"\xa1\x61x\xf9\x3c\x00", b"\xa1\x61x", b"\xa2\x61b\x01\x61a\x02", "text"])
def test_undecodable_stored_detail_is_a_value_error(stored):
    # A half-precision float, a truncated map, unordered keys, not bytes at all.
    with pytest.raises(ValueError):
        decode_detail(stored)


def test_chain_links_and_verifies():
    entries = make_chain(4)
    assert [e.seq for e in entries] == [1, 2, 3, 4]
    assert entries[0].prev_hash == GENESIS
    assert all(b.prev_hash == a.hash for a, b in zip(entries, entries[1:]))
    verdict = verify_chain(entries, entries[-1].hash)
    assert verdict.ok and verdict.checked == 4 and verdict.first_bad_seq is None
    assert verify_chain(iter(entries), None).ok  # any iterable; head optional


def test_time_is_always_a_float_and_detail_is_copied():
    detail = {"k": [1, 2]}
    entry = chain_entry(None, 7, "a", "b", detail)
    detail["k"].append(3)
    assert entry.time == 7.0 and isinstance(entry.time, float)
    assert entry.detail == {"k": [1, 2]}
    assert verify_chain([entry], entry.hash).ok


@pytest.mark.parametrize("detail", [{"x": float("nan")}, {1: "int key"}, {"s": {1, 2}}, ["list"]])
def test_unencodable_detail_rejected(detail):
    with pytest.raises(ValueError):
        chain_entry(None, 1.0, "a", "b", detail)


@pytest.mark.parametrize(
    "change",
    [{"time": 1001.5}, {"actor": "mallory"}, {"action": "other"}, {"detail": {"i": 99}},
     {"hash": "f" * 64}, {"time": "not a float"}],
)
def test_altered_field_detected(change):
    entries = make_chain(4)
    entries[2] = attrs.evolve(entries[2], **change)
    verdict = verify_chain(entries, entries[-1].hash)
    assert not verdict.ok and verdict.first_bad_seq == 3 and verdict.checked == 2
    assert verdict.reason.startswith("altered")


def test_broken_link_detected():
    entries = make_chain(4)
    # A well-formed entry 3 that chains onto something other than entry 2.
    forged = chain_entry(attrs.evolve(entries[1], hash="a" * 64), 5.0, "m", "x", {})
    entries[2] = forged
    verdict = verify_chain(entries, None)
    assert not verdict.ok and verdict.first_bad_seq == 3
    assert verdict.reason.startswith("broken link")


def test_gap_detected():
    entries = make_chain(4)
    del entries[1]
    verdict = verify_chain(entries, entries[-1].hash)
    assert not verdict.ok and verdict.first_bad_seq == 2 and verdict.checked == 1
    assert verdict.reason.startswith("gap")
    # A chain that does not start at seq 1 has a gap at the start.
    assert verify_chain(make_chain(3)[1:], None).first_bad_seq == 1


def test_truncation_detected_by_head():
    entries = make_chain(4)
    head = entries[-1].hash
    verdict = verify_chain(entries[:3], head)
    assert not verdict.ok and verdict.first_bad_seq == 4 and verdict.checked == 3
    assert verdict.reason.startswith("head mismatch")
    assert not verify_chain([], head).ok


def test_empty_chain():
    assert verify_chain([], None).ok
    assert verify_chain([], GENESIS).ok
    assert verify_chain([], GENESIS).checked == 0
