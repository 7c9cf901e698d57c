"""The Merkle core against the Certificate Transparency reference vectors (RFC 6962/9162).

The eight entries and the tree heads of sizes 1..8 are those of the CT reference
implementation's tests; so are the inclusion proofs (its leaf indices are 1-based there,
0-based here).
"""

import random

import pytest

from milagro_node.core import merkle

ENTRIES = [bytes.fromhex(h) for h in ("", "00", "10", "2021", "3031", "40414243", "5051525354555657",
                                      "606162636465666768696a6b6c6d6e6f")]
LEAVES = [merkle.leaf_hash(e) for e in ENTRIES]
ROOTS = [bytes.fromhex(h) for h in (
    "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
    "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
    "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
    "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
    "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
    "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
    "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
    "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
)]
INCLUSION = [  # (index, size, path)
    (0, 8, ["96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4"]),
    (5, 8, ["bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
            "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
            "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7"]),
    (2, 3, ["fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125"]),
    (1, 5, ["6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b"]),
]


@pytest.mark.parametrize("size", range(1, 9))
def test_tree_heads_match_the_reference(size):
    root, _ = merkle.root_and_paths(LEAVES[:size])
    assert root == ROOTS[size - 1]


@pytest.mark.parametrize(("index", "size", "path"), INCLUSION)
def test_inclusion_proofs_match_the_reference_and_verify(index, size, path):
    _, paths = merkle.root_and_paths(LEAVES[:size])
    assert [p.hex() for p in paths[index]] == path
    assert merkle.root_from_path(LEAVES[index], index, size, paths[index]) == ROOTS[size - 1]


def test_every_path_of_every_shape_leads_to_the_root_and_only_for_its_own_leaf_and_place():
    rng = random.Random(9162)
    for size in range(1, 70):
        leaves = [merkle.leaf_hash(rng.randbytes(8)) for _ in range(size)]
        root, paths = merkle.root_and_paths(leaves)
        for i, path in enumerate(paths):
            assert merkle.root_from_path(leaves[i], i, size, path) == root
            assert merkle.root_from_path(merkle.leaf_hash(b"other"), i, size, path) != root
            if size > 1:
                j = (i + 1) % size
                try:
                    assert merkle.root_from_path(leaves[i], j, size, path) != root
                except merkle.ProofError:
                    pass  # a place whose path has another length


@pytest.mark.parametrize(("index", "size", "cut"), [(0, 8, 1), (5, 8, -1), (0, 1, -1), (8, 8, 0), (-1, 8, 0)])
def test_a_path_too_long_too_short_or_out_of_the_tree_is_refused(index, size, cut):
    _, paths = merkle.root_and_paths(LEAVES[:size])
    path = paths[min(max(index, 0), size - 1)]
    path = path[cut:] if cut > 0 else path + [LEAVES[0]] if cut < 0 else path
    with pytest.raises(merkle.ProofError):
        merkle.root_from_path(LEAVES[0], index, size, path)


def test_a_leaf_is_not_a_node():
    # The prefixes keep a two-leaf subtree's inputs from passing as one leaf's data.
    assert merkle.leaf_hash(LEAVES[0] + LEAVES[1]) != merkle.root_and_paths(LEAVES[:2])[0]
