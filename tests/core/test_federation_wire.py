"""The federation's request/response documents: strict one-entry maps, bounded ack lists."""

import pytest

from milagro_node.core import federation_wire as wire
from milagro_node.core import ipld


def test_topic_names_the_federation():
    assert wire.envelope_topic("devnet") == "/milagro/devnet/envelopes/1"


@pytest.mark.parametrize("doc", [{"log": "bafyx"}, {"block": "bafyx"}, {"since": -1}, {"since": 12}])
def test_fetch_requests(doc):
    (key, value), = doc.items()
    assert wire.fetch_request(wire.encode(doc)) == (key, value)


@pytest.mark.parametrize("data", [
    b"", b"\xff", ipld.encode([1]), ipld.encode({"log": 1}), ipld.encode({"since": True}),
    ipld.encode({"since": -2}), ipld.encode({"log": "a", "block": "b"}), ipld.encode({"other": "x"}),
])
def test_bad_fetch_requests_are_malformed(data):
    with pytest.raises(wire.WireError) as err:
        wire.fetch_request(data)
    assert err.value.code == "malformed"


def test_ack_requests_are_bounded():
    assert wire.ack_request(wire.encode({"cids": ["a", "b"]})) == ["a", "b"]
    for bad in ({"cids": ["a"] * (wire.MAX_ACKS + 1)}, {"cids": [1]}, {"cid": "a"}):
        with pytest.raises(wire.WireError):
            wire.ack_request(wire.encode(bad))


def test_responses_carry_the_peers_error_code():
    assert wire.read_response(wire.OK, "ok", bool) is True
    with pytest.raises(wire.WireError) as err:
        wire.read_response(wire.error_response("not-a-member", "no"), "sent", list)
    assert err.value.code == "not-a-member"
    with pytest.raises(wire.WireError) as err:
        wire.read_response(b"junk", "ok", bool)
    assert err.value.code == "malformed"
