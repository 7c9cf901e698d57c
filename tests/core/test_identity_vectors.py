"""tests/vectors/identity-v1.json: regenerated identically, and re-verified from its bytes.

The checks here read only the JSON (hex bytes, CIDs, public keys), as an implementation in
another language would; the one exception is the first test, which reruns the generator to
prove the file still matches the code.
"""

import json
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from milagro_node.core import identity as ident
from milagro_node.core.identity import IdentityError, LogBook, verify_log
from milagro_node.core.ipld import verify_cid
from vectors import make_identity_vectors

VECTORS = Path(__file__).parents[1] / "vectors" / "identity-v1.json"
DATA = json.loads(VECTORS.read_text())


def events_of(section):
    return [bytes.fromhex(event["bytes"]) for event in section["events"]]


def test_the_file_is_what_the_generator_makes():
    assert VECTORS.read_text() == make_identity_vectors.render()


def test_keys_come_from_their_seeds():
    for label, key in DATA["keys"].items():
        private = Ed25519PrivateKey.from_private_bytes(bytes.fromhex(key["seed"]))
        assert private.public_key().public_bytes_raw().hex() == key["public"], label


def test_each_event_is_signed_by_its_key_over_the_stated_bytes():
    assert bytes.fromhex(DATA["event_domain"]) == ident.EVENT_DOMAIN
    for vector in DATA["controller"]["events"]:
        data = bytes.fromhex(vector["bytes"])
        event = ident.parse_event(data)
        assert event.cid == vector["cid"] and verify_cid(vector["cid"], data)
        assert event.sign_key.hex() == DATA["keys"][vector["signer"]]["public"]
        signed = bytes.fromhex(vector["to_be_signed"])
        assert signed.startswith(ident.EVENT_DOMAIN)
        private = Ed25519PrivateKey.from_private_bytes(bytes.fromhex(DATA["keys"][vector["signer"]]["seed"]))
        assert private.sign(signed) == event.sig


def test_the_log_and_every_prefix_verify_to_the_stated_states():
    log = events_of(DATA["controller"])
    names = [e["name"] for e in DATA["controller"]["events"]]
    assert names == ["inception", "rotation-1", "rotation-2", "revocation"]
    for n, expected in enumerate(DATA["controller"]["states"], start=1):
        state = verify_log(log[:n], identity=DATA["controller"]["identity"])
        assert make_identity_vectors.state_vector(state) == expected
    assert DATA["controller"]["states"][-1]["revoked"] is True
    assert DATA["controller"]["states"][2]["mlkem768"] is not None


def test_the_log_assembles_from_reverse_order():
    book = LogBook()
    for data in reversed(events_of(DATA["controller"])):
        book.add_event(data)
    assert book.state(DATA["controller"]["identity"]) == verify_log(events_of(DATA["controller"]))


def test_the_receipt_verifies_with_the_witness_key_only():
    (witness_inception,) = events_of(DATA["witness"])
    witness = verify_log([witness_inception], identity=DATA["witness"]["identity"])
    for vector in DATA["receipts"]:
        data = bytes.fromhex(vector["bytes"])
        assert vector["signer_key"] == witness.sign_key.hex()
        receipt = ident.verify_receipt(data, bytes.fromhex(vector["signer_key"]))
        assert (receipt.cid, receipt.event) == (vector["cid"], vector["event"])
        assert receipt.signer == vector["signer"]
        assert receipt.event == DATA["controller"]["events"][1]["cid"]
        with pytest.raises(IdentityError) as info:
            ident.verify_receipt(data, bytes.fromhex(DATA["keys"]["controller-0"]["public"]))
        assert info.value.code == "bad-signature"


@pytest.mark.parametrize("case", DATA["invalid"], ids=[case["code"] for case in DATA["invalid"]])
def test_invalid_logs_fail_with_their_code(case):
    with pytest.raises(IdentityError) as info:
        verify_log([bytes.fromhex(data) for data in case["log"]])
    assert info.value.code == case["code"]


def test_the_invalid_cases_cover_the_chain_codes():
    codes = {case["code"] for case in DATA["invalid"]}
    assert codes >= {"not-pre-committed", "duplicity", "after-revocation", "broken-chain", "bad-sequence",
                     "identity-mismatch", "no-inception", "bad-signature", "key-reuse", "weak-key"}
