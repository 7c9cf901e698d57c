"""The CIDs of the test vectors equal those npm `multiformats` + `@ipld/dag-cbor` compute.

Every block in tests/vectors/envelope-v1.json (each envelope and its header) and in
tests/vectors/identity-v1.json (each event of the controller and the witness, each receipt,
and each distinct block of the invalid logs) goes to `node tests/interop/cid.mjs` as raw
block bytes; npm names it as a dag-cbor block, and that CID must equal ours (`ipld.cid_for`)
and the one recorded in the vector file. npm also decodes each block and encodes it again:
the bytes must come back identical, i.e. every vector is canonical DAG-CBOR for npm too.

Same rules as test_ipld_npm_interop.py: the packages are pinned by
tests/interop/package-lock.json and installed by scripts/test.sh (`npm ci`); without node or
tests/interop/node_modules the tests are skipped, except under CI (CI=true), where they fail.
"""

import base64
import json
from pathlib import Path

import pytest
from npmkit import run_cid_script

from milagro_node.core.envelope import envelope_cid
from milagro_node.core.ipld import cid_for, decode

TESTS = Path(__file__).resolve().parents[1]
ENVELOPES = json.loads((TESTS / "vectors" / "envelope-v1.json").read_text())
IDENTITIES = json.loads((TESTS / "vectors" / "identity-v1.json").read_text())


def vector_blocks() -> dict[str, tuple[bytes, str | None]]:
    """name -> (block bytes, the CID the vector file records for it, or None)."""
    blocks: dict[str, tuple[bytes, str | None]] = {}
    for vector in ENVELOPES["vectors"]:
        blocks[f"envelope {vector['name']}"] = (bytes.fromhex(vector["envelope"]), vector["cid"])
        blocks[f"envelope header {vector['name']}"] = (bytes.fromhex(vector["header"]), None)
    for log in ("controller", "witness"):
        for event in IDENTITIES[log]["events"]:
            blocks[f"{log} event {event['name']}"] = (bytes.fromhex(event["bytes"]), event["cid"])
    for n, receipt in enumerate(IDENTITIES["receipts"]):
        blocks[f"receipt {n}"] = (bytes.fromhex(receipt["bytes"]), receipt["cid"])
    seen = {data for data, _ in blocks.values()}
    for case in IDENTITIES["invalid"]:
        for n, text in enumerate(case["log"]):
            data = bytes.fromhex(text)
            if data not in seen:
                seen.add(data)
                blocks[f"invalid log '{case['name']}' [{n}]"] = (data, None)
    return blocks


BLOCKS = vector_blocks()



@pytest.fixture(scope="module")
def npm():
    """Run cid.mjs once over every vector block; return its results keyed like BLOCKS."""
    request = {
        "values": [],
        "raw": [],
        "blocks": [base64.b64encode(data).decode() for data, _ in BLOCKS.values()],
    }
    out = run_cid_script(request)
    assert len(out["blocks"]) == len(BLOCKS)
    return dict(zip(BLOCKS, out["blocks"]))


def test_every_vector_is_covered():
    envelopes = [name for name in BLOCKS if name.startswith("envelope ") and "header" not in name]
    assert len(envelopes) == len(ENVELOPES["vectors"]) >= 6
    recorded = sum(1 for _, cid in BLOCKS.values() if cid is not None)
    assert recorded == (len(ENVELOPES["vectors"]) + len(IDENTITIES["controller"]["events"])
                        + len(IDENTITIES["witness"]["events"]) + len(IDENTITIES["receipts"]))


@pytest.mark.parametrize("name", BLOCKS)
def test_vector_cid_matches_npm(npm, name):
    data, recorded = BLOCKS[name]
    ours = cid_for(data, "dag-cbor")
    assert npm[name]["cid"] == ours
    if recorded is not None:
        assert recorded == ours
    if name.startswith("envelope ") and "header" not in name:
        assert envelope_cid(data) == ours


@pytest.mark.parametrize("name", BLOCKS)
def test_vector_block_is_canonical_for_npm(npm, name):
    data, _ = BLOCKS[name]
    theirs = npm[name]
    assert theirs["error"] is None, f"@ipld/dag-cbor cannot decode it: {theirs['error']}"
    assert theirs["roundtrip"], "@ipld/dag-cbor re-encodes the block to other bytes"
    decode(data)  # and our strict decoder takes it too (it refuses non-canonical input)
