"""Random mutations of valid events and receipts: nothing but IdentityError escapes.

Two kinds of mutation: raw byte edits (flips, insertions, deletions, truncation), which mostly
exercise the decoder, and structural edits of the decoded map (a field replaced by any
DAG-CBOR value, removed, or added), optionally *re-signed with the right key*, which get past
the signature and exercise the schema and chain rules. Every mutant goes through the three
entry points a peer's bytes reach: `parse_event`, `verify_log` and `LogBook.add_event`.
"""

import json
from pathlib import Path

import dag_cbor
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from multiformats import CID

from milagro_node.core import identity as ident
from milagro_node.core.identity import IdentityError, LogBook, verify_log
from vectors.make_identity_vectors import signing_key

DATA = json.loads((Path(__file__).parents[1] / "vectors" / "identity-v1.json").read_text())
LOG = [bytes.fromhex(event["bytes"]) for event in DATA["controller"]["events"]]
SIGNERS = [signing_key(event["signer"]) for event in DATA["controller"]["events"]]
RECEIPT = bytes.fromhex(DATA["receipts"][0]["bytes"])
WITNESS_KEY = bytes.fromhex(DATA["receipts"][0]["signer_key"])

FIELD_NAMES = ["v", "type", "seq", "prev", "identity", "sign_key", "enc", "next", "roles", "peer_id", "addrs",
               "created", "x25519", "mlkem768"]
LINKS = [
    DATA["controller"]["identity"],
    DATA["witness"]["identity"],
    "bafkreifzjut3te2nhyekklss27nh3k72ysco7y32koao5eei66wof36n5e",  # raw codec
    "QmT78zSuBmuS4z925WZfrqQ1qHaJ56DQaTfyMUF7F8ff5o",  # CIDv0, dag-pb
]

FUZZ = settings(max_examples=1500, deadline=None, suppress_health_check=[HealthCheck.too_slow])

# Byte edits: (kind, position, payload)
edit = st.tuples(
    st.sampled_from(["flip", "set", "insert", "delete", "truncate"]),
    st.integers(min_value=0, max_value=10_000),
    st.binary(min_size=1, max_size=8),
)

ipld_leaf = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**64), max_value=2**64 - 1),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=60),
    st.binary(max_size=80),
    st.sampled_from([CID.decode(cid) for cid in LINKS]),
)
ipld_value = st.recursive(
    ipld_leaf,
    lambda children: st.lists(children, max_size=5)
    | st.dictionaries(st.text(max_size=10), children, max_size=5),
    max_leaves=20,
)


def apply(data: bytes, edits) -> bytes:
    out = bytearray(data)
    for kind, position, payload in edits:
        at = position % (len(out) + 1)
        if kind == "flip" and out:
            out[at % len(out)] ^= 1 << (payload[0] % 8)
        elif kind == "set" and out:
            out[at % len(out)] = payload[0]
        elif kind == "insert":
            out[at:at] = payload
        elif kind == "delete":
            del out[at:at + len(payload)]
        elif kind == "truncate":
            del out[at:]
    return bytes(out)


def feed_everywhere(index: int, mutant: bytes) -> None:
    """Hand ``mutant`` (in place of LOG[index]) to every entry point; only IdentityError may escape."""
    try:
        ident.parse_event(mutant)
    except IdentityError:
        pass
    try:
        verify_log([*LOG[:index], mutant])
    except IdentityError:
        pass
    book = LogBook()
    for data in LOG[:index]:
        book.add_event(data)
    try:
        book.add_event(mutant)
    except IdentityError:
        pass


@FUZZ
@given(st.integers(min_value=0, max_value=len(LOG) - 1), st.lists(edit, min_size=1, max_size=4))
def test_byte_mutations_of_events(index, edits):
    mutant = apply(LOG[index], edits)
    try:
        event = ident.parse_event(mutant)
    except IdentityError:
        event = None
    # Without the signing key no edit makes another acceptable event (one byte form, one CID).
    assert event is None or mutant == LOG[index]
    feed_everywhere(index, mutant)


@FUZZ
@given(
    st.integers(min_value=0, max_value=len(LOG) - 1),
    st.sampled_from(["replace", "delete", "add", "replace-nested"]),
    st.text(min_size=1, max_size=12) | st.sampled_from(FIELD_NAMES),
    ipld_value,
    st.booleans(),
)
def test_structural_mutations_of_events(index, kind, field, value, resign):
    fields = dag_cbor.decode(LOG[index])
    del fields["sig"]
    if kind == "replace" or kind == "add":
        fields[field] = value
    elif kind == "delete":
        fields.pop(field, None)
    elif kind == "replace-nested" and isinstance(fields.get("enc"), dict):
        fields["enc"][field] = value
    body = dag_cbor.encode(fields)
    signature = SIGNERS[index].sign(ident.EVENT_DOMAIN + body) if resign else bytes(64)
    fields["sig"] = signature
    feed_everywhere(index, dag_cbor.encode(fields))


@FUZZ
@given(st.lists(edit, min_size=1, max_size=4))
def test_byte_mutations_of_receipts(edits):
    mutant = apply(RECEIPT, edits)
    try:
        receipt = ident.verify_receipt(mutant, WITNESS_KEY)
    except IdentityError:
        receipt = None
    assert receipt is None or mutant == RECEIPT
    book = LogBook()
    try:
        book.add_receipt(mutant)
    except IdentityError:
        pass


@settings(max_examples=300, deadline=None)
@given(st.permutations(range(len(LOG))), st.lists(st.integers(min_value=0, max_value=len(LOG) - 1), max_size=6))
def test_any_order_with_repeats_gives_the_verified_log(order, repeats):
    book = LogBook()
    for index in [*order, *repeats]:
        book.add_event(LOG[index])
    assert book.state(DATA["controller"]["identity"]) == verify_log(LOG)
    assert book.missing() == frozenset()


@settings(max_examples=1000, deadline=None)
@given(st.binary(min_size=32, max_size=32))
def test_any_32_bytes_as_a_signing_key_is_accepted_or_refused_cleanly(key):
    peer = ident.parse_event(LOG[0]).peer_id
    try:
        draft = ident.prepare_inception(sign_key=key, next_key=WITNESS_KEY, x25519=bytes(32),
                                        peer_id=peer, created=0)
    except IdentityError as exc:
        assert exc.code in ("weak-key", "key-reuse")
    else:
        assert draft.signer == key
