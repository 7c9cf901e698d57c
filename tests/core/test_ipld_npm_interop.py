"""Our DAG-CBOR bytes and CIDs equal those of npm `@ipld/dag-cbor` + `multiformats`.

Runs `node tests/interop/cid.mjs` once with every case and compares, value by value, the
encoded bytes and the CID, and checks that we decode the npm bytes back to the same value.
The npm packages are pinned by tests/interop/package-lock.json and installed by
scripts/test.sh (`npm ci`). Without node or tests/interop/node_modules the test is skipped,
except under CI (CI=true), where it fails: there the comparison must run.
"""

import base64
import hashlib
import random

import pytest
from npmkit import run_cid_script
from multiformats import CID

from milagro_node.core.ipld import block_cid, cid_for, decode, encode, parse_cid


LINK_RAW = parse_cid("bafkreifzjut3te2nhyekklss27nh3k72ysco7y32koao5eei66wof36n5e")
LINK_DAG_CBOR = parse_cid("bafyreigbtj4x7ip5legnfznufuopl4sg4knzc2cof6duas4b3q2fy6swua")
LINK_V0 = parse_cid("QmT78zSuBmuS4z925WZfrqQ1qHaJ56DQaTfyMUF7F8ff5o")

VALUES = {
    # integers at every head-size boundary, both signs, up to the 64-bit limits
    **{
        f"int {n}": n
        for n in [0, 1, 23, 24, 255, 256, 65535, 65536, 2**32 - 1, 2**32, 2**53 - 1, 2**53,
                  2**53 + 1, 2**63, 2**64 - 1, -1, -24, -25, -256, -257, -65537, -(2**32) - 1,
                  -(2**53), -(2**53) - 1, -(2**63), -(2**64)]
    },
    "empty str": "",
    "ascii": "hello world",
    "latin": "héllo wörld",
    "cjk": "日本語のテキスト",
    "emoji (4-byte UTF-8)": "🎉 party 🦀",
    "nul and controls": "a\x00b\x01\n\t",
    "NFC é": "\u00e9",
    "NFD é (not normalised)": "e\u0301",
    "long str (2-byte length)": "x" * 300,
    "longer str (4-byte length)": "y" * 70_000,
    "empty bytes": b"",
    "bytes": b"\x00\xff\x10",
    "all byte values": bytes(range(256)),
    "true": True,
    "false": False,
    "null": None,
    "empty list": [],
    "nested lists": [1, [2, [3, [4, []]]], "x", None, True],
    "list of 300": list(range(300)),
    "empty map": {},
    "keys needing length-first sort": {
        "bb": 1, "a": 2, "ccc": 3, "b": 4, "": 5, "aa": 6, "z": 7, "é": 8, "ab": 9, "🎉": 10,
        "10": 11, "9": 12, "100": 13, "A": 14, "Z": 15, "zz": 16,
    },
    "nested maps": {"outer": {"b": {"y": 1, "x": 2}, "a": {"long key": [], "k": {}}}, "o": 0},
    "map of 300": {f"key{i}": i for i in range(300)},
    "links": {"raw": LINK_RAW, "dag-cbor": LINK_DAG_CBOR, "v0": LINK_V0, "list": [LINK_RAW, None]},
    "envelope-like": {
        "v": 1,
        "kind": "dkg/round1",
        "suite": "x25519-hkdf-sha256-chacha20poly1305",
        "created": 1_735_000_000,
        "expires": 1_735_000_600,
        "id": bytes(range(16)),
        "sender": LINK_DAG_CBOR,
        "recipients": [{"kid": bytes([i]) * 32, "enc": bytes([i]) * 32, "wrapped": bytes(48)}
                       for i in range(3)],
        "ct": bytes(1000),
        "sig": bytes(64),
    },
}


def random_value(rng: random.Random, depth: int = 0):
    """A pseudo-random JSON-like value with bytes and links, from a seeded generator."""
    kind = rng.choice(["int", "bigint", "str", "bytes", "bool", "null", "link"]
                      + (["list", "map"] * 2 if depth < 4 else []))
    if kind == "int":
        return rng.randint(-1000, 1000)
    if kind == "bigint":
        return rng.randint(-(2**64), 2**64 - 1)
    if kind == "str":
        return "".join(rng.choice("aé字🎉\x00Z") for _ in range(rng.randint(0, 8)))
    if kind == "bytes":
        return rng.randbytes(rng.randint(0, 40))
    if kind == "bool":
        return rng.random() < 0.5
    if kind == "null":
        return None
    if kind == "link":
        return parse_cid(cid_for(rng.randbytes(8), rng.choice(["raw", "dag-cbor"])))
    if kind == "list":
        return [random_value(rng, depth + 1) for _ in range(rng.randint(0, 5))]
    def key() -> str:
        return "".join(rng.choice("ab字é") for _ in range(rng.randint(0, 4)))

    return {key(): random_value(rng, depth + 1) for _ in range(rng.randint(0, 5))}


_rng = random.Random(20240604)
VALUES.update({f"random {i}": random_value(_rng) for i in range(200)})

RAW_BLOCKS = {
    "empty": b"",
    "hello world": b"hello world",
    "all byte values": bytes(range(256)),
    "100 KiB": b"".join(hashlib.sha256(i.to_bytes(4, "big")).digest() for i in range(3200)),
}


def tagged(value):
    """`value` in cid.mjs's input convention (see the comment at the top of that script)."""
    if value is None:
        return ["null"]
    if isinstance(value, bool):
        return ["bool", value]
    if isinstance(value, int):
        return ["int", str(value)]
    if isinstance(value, str):
        return ["str", value]
    if isinstance(value, bytes):
        return ["bytes", base64.b64encode(value).decode()]
    if isinstance(value, list):
        return ["list", [tagged(item) for item in value]]
    if isinstance(value, dict):
        return ["map", [[key, tagged(item)] for key, item in value.items()]]
    if isinstance(value, CID):
        return ["link", str(value)]
    raise TypeError(type(value))



@pytest.fixture(scope="module")
def npm():
    """Run cid.mjs once over every case; return its results keyed like VALUES / RAW_BLOCKS."""
    request = {
        "values": [tagged(value) for value in VALUES.values()],
        "raw": [base64.b64encode(block).decode() for block in RAW_BLOCKS.values()],
    }
    out = run_cid_script(request)
    assert len(out["values"]) == len(VALUES) and len(out["raw"]) == len(RAW_BLOCKS)
    return dict(zip(VALUES, out["values"])), dict(zip(RAW_BLOCKS, out["raw"]))


@pytest.mark.parametrize("name", VALUES)
def test_dag_cbor_bytes_and_cid_match_npm(npm, name):
    value, theirs = VALUES[name], npm[0][name]
    ours = encode(value)
    assert ours.hex() == theirs["hex"]
    assert block_cid(value) == theirs["cid"]
    assert theirs["roundtrip"], "npm did not re-encode its own bytes identically"
    assert decode(bytes.fromhex(theirs["hex"])) == value


@pytest.mark.parametrize("name", RAW_BLOCKS)
def test_raw_cid_matches_npm(npm, name):
    assert cid_for(RAW_BLOCKS[name]) == npm[1][name]["cid"]
