"""Content identifiers (CIDs) for blocks — a sans-IO protocol core.

Layer 1 (protocol cores): pure functions, no I/O. Called by the SQLite store adapter
(`milagro_node.adapters.sqlite_store`) to address and re-verify blocks, and by the envelope
and identity-log cores to name documents.

Every CID this node makes is CIDv1, sha2-256, written in base32 multibase (``b...``), the form
that IPFS and js `multiformats` print, so a CID string is also a stable database key.
Only sha2-256 is accepted when verifying: a CID naming another hash is refused, never trusted.

Strict DAG-CBOR checking (canonical form, allowed kinds) is a later extension of this module;
`cid_for(data, "dag-cbor")` hashes the bytes it is given and does not validate them.
"""

from __future__ import annotations

import hashlib

from multiformats import CID, multihash

__all__ = ["IpldError", "SUPPORTED_CODECS", "cid_for", "parse_cid", "normalize_cid", "verify_cid"]

# The codecs this node produces. Verification accepts any codec (the codec only labels the
# bytes; the hash is what binds them), but we only *make* CIDs for these two.
SUPPORTED_CODECS = ("raw", "dag-cbor")

_HASH = "sha2-256"
_DIGEST_SIZE = 32


class IpldError(ValueError):
    """A CID is malformed, uses an unsupported hash or codec, or is not a string."""


def cid_for(data: bytes, codec: str = "raw") -> str:
    """Return the CIDv1 (sha2-256, base32) of ``data`` labelled with ``codec``."""
    if codec not in SUPPORTED_CODECS:
        raise IpldError(f"unsupported codec {codec!r}; expected one of {SUPPORTED_CODECS}")
    if not isinstance(data, (bytes, bytearray, memoryview)):
        raise IpldError(f"block data must be bytes, not {type(data).__name__}")
    digest = multihash.digest(bytes(data), _HASH)
    return str(CID("base32", 1, codec, digest))


def parse_cid(text: str) -> CID:
    """Decode a CID string (any version and multibase) or raise `IpldError`."""
    if not isinstance(text, str):
        raise IpldError(f"a CID must be a str, not {type(text).__name__}")
    try:
        return CID.decode(text)
    except Exception as exc:  # multiformats raises ValueError, KeyError, binascii.Error, ...
        raise IpldError(f"malformed CID {text[:80]!r}: {exc}") from exc


def _sha256_cid(text: str) -> CID:
    cid = parse_cid(text)
    if cid.hashfun.name != _HASH or len(cid.raw_digest) != _DIGEST_SIZE:
        raise IpldError(
            f"CID {text[:80]!r} uses {cid.hashfun.name}; only full sha2-256 is accepted"
        )
    return cid


def normalize_cid(text: str) -> str:
    """Return the canonical (CIDv1, base32) spelling of a sha2-256 CID.

    The same block can be written as CIDv0 (``Qm...``) or in another base; the store keys
    blocks by this one spelling so a block is never stored twice under different names.
    """
    return str(_sha256_cid(text).set(version=1, base="base32"))


def verify_cid(cid: str, data: bytes) -> bool:
    """True iff ``data`` hashes to the digest inside ``cid``.

    Raises `IpldError` if ``cid`` is malformed or not sha2-256 (a caller error, not a
    mismatch); returns False only when the bytes do not match.
    """
    parsed = _sha256_cid(cid)
    if not isinstance(data, (bytes, bytearray, memoryview)):
        raise IpldError(f"block data must be bytes, not {type(data).__name__}")
    return hashlib.sha256(data).digest() == parsed.raw_digest
