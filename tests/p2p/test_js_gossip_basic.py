"""A js-libp2p gossipsub peer and a bare py-libp2p one, in separate processes on 127.0.0.1,
exchange signed messages both ways, whichever side dials.

This checks the interop harness itself (tests/interop/gossip_peer.mjs, tests/p2p/
bare_gossip_peer.py, tests/gossipkit.py) before the node's own federation tests rely on it:
each side gets the other's bytes, in order, from the other's peer id, and the js side's
CID (npm multiformats, CIDv1 dag-cbor sha2-256) equals milagro_node's for the same bytes.
Skipped without node or tests/interop/node_modules, except under CI=true, where it fails.
"""

import pytest
import trio
from gossipkit import gossip_peer, require_js_peer

from milagro_node.core.ipld import cid_for

pytestmark = pytest.mark.slow

TOPIC = "milagro/interop-test"
FROM_JS = [b"hello from js", bytes(range(256)), b""]
FROM_PY = [b"hello from py", b"\x00" * 5000]


@pytest.fixture
def js_peer_available():
    require_js_peer()  # outside trio, so a skip keeps its reason


@pytest.mark.parametrize("dialer", ["js", "py"])
async def test_messages_flow_both_ways_with_matching_cids(js_peer_available, tmp_path, dialer):
    with trio.fail_after(60):
        first, second = ("py", "js") if dialer == "js" else ("js", "py")
        payloads = {"js": FROM_JS, "py": FROM_PY}
        async with gossip_peer(first, tmp_path, TOPIC, publish=payloads[first]) as a:
            async with gossip_peer(second, tmp_path, TOPIC, dial=[a.addr],
                                   publish=payloads[second]) as b:
                peers = {a.name[:2]: a, b.name[:2]: b}
                js, py = peers["js"], peers["py"]
                at_py = await py.messages(len(FROM_JS), timeout=30)
                at_js = await js.messages(len(FROM_PY), timeout=30)
                published = (await js.wait_for("published", count=len(FROM_JS))
                             + await py.wait_for("published", count=len(FROM_PY)))

    assert [m["data"] for m in at_py] == FROM_JS
    assert [m["data"] for m in at_js] == FROM_PY
    assert {m["from"] for m in at_py} == {js.peer_id}
    assert {m["from"] for m in at_js} == {py.peer_id}
    for message in at_py + at_js:
        assert message["topic"] == TOPIC
        assert message["cid"] == cid_for(message["data"], "dag-cbor")
    assert [e["cid"] for e in published] == [cid_for(d, "dag-cbor") for d in FROM_JS + FROM_PY]
