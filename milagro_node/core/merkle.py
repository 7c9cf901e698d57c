"""Merkle tree hashes and inclusion proofs of RFC 9162 §2.1 (Certificate Transparency).

Layer 1 (protocol cores): no I/O. Used to sign many statements with one signature: the
signer signs the root of a tree over the statements, and each statement carries its
leaf's inclusion proof (a "batch signature"), so one HSM operation serves every login
that queued behind the previous one.

Leaves and interior nodes are hashed under different prefixes (``0x00`` and ``0x01``),
so no leaf can pass for a subtree. A tree of n > 1 leaves splits at the largest power of
two below n (RFC 9162's MTH), which fixes the tree's shape by its size alone: a proof is
checked against (index, size), and a path of the wrong length for them fails.

Nothing here is secret; none of it needs constant time.
"""

from __future__ import annotations

import hashlib

__all__ = ["ProofError", "leaf_hash", "root_and_paths", "root_from_path"]


class ProofError(ValueError):
    """An inclusion proof that cannot belong to a tree of that size at that index."""


def leaf_hash(data: bytes) -> bytes:
    """MTH of one entry: SHA-256(0x00 ‖ data)."""
    return hashlib.sha256(b"\x00" + data).digest()


def _node(left: bytes, right: bytes) -> bytes:
    return hashlib.sha256(b"\x01" + left + right).digest()


def _split(n: int) -> int:
    """The largest power of two smaller than n (n > 1)."""
    return 1 << ((n - 1).bit_length() - 1)


def root_and_paths(leaves: list[bytes]) -> tuple[bytes, list[list[bytes]]]:
    """The root over `leaves` (leaf hashes) and every leaf's inclusion path, leaf first.

    Each subtree is hashed once, so n leaves cost n - 1 node hashes (not n per path).
    """
    if not leaves:
        raise ValueError("a tree needs at least one leaf")
    if len(leaves) == 1:
        return leaves[0], [[]]
    k = _split(len(leaves))
    left, left_paths = root_and_paths(leaves[:k])
    right, right_paths = root_and_paths(leaves[k:])
    return _node(left, right), [p + [right] for p in left_paths] + [p + [left] for p in right_paths]


def root_from_path(leaf: bytes, index: int, size: int, path: list[bytes]) -> bytes:
    """The root that `path` proves `leaf` (a leaf hash) is entry `index` of, in a tree of
    `size` leaves (RFC 9162 §2.1.3.2); the caller compares it with the signed root.

    Raises `ProofError` when the path cannot be one for that index and size.
    """
    if not 0 <= index < size:
        raise ProofError(f"leaf index {index} is outside a tree of {size}")
    fn, sn, r = index, size - 1, leaf
    for p in path:
        if sn == 0:
            raise ProofError("the inclusion path is longer than the tree is deep")
        if fn & 1 or fn == sn:
            r = _node(p, r)
            while not fn & 1 and fn != 0:
                fn >>= 1
                sn >>= 1
        else:
            r = _node(r, p)
        fn >>= 1
        sn >>= 1
    if sn != 0:
        raise ProofError("the inclusion path is shorter than the tree is deep")
    return r
