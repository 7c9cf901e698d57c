"""Blocks: the only place this package turns values into bytes and bytes into CIDs.

`_encode` and `_decode` use the strict DAG-CBOR helpers of `milagro_node.core.ipld`;
`decode_block` keeps two guarantees this package's security rests on (the second is also
the strict decoder's own, checked here again because everything rests on it):

- the size limit is checked before any parsing (a hostile peer cannot make us allocate);
- the bytes are the one canonical DAG-CBOR encoding of the value they decode to, so an event
  has exactly one byte form, hence one CID, and two different CIDs mean two different events.

CIDs inside events are IPLD links (tag 42), so IPFS tooling can walk a log from its head
(``<head>/prev/prev``); this package only ever accepts links that are CIDv1, dag-cbor,
sha2-256 with a full 32-byte digest, and hands them to callers as base32 strings.
"""

from __future__ import annotations

from typing import Any

from multiformats import CID

from milagro_node.core import ipld
from milagro_node.core.ipld import IpldError, cid_for, parse_cid

from ._errors import IdentityError

__all__ = ["block_cid", "decode_block", "encode_block", "link", "link_text"]


def _encode(value: Any) -> bytes:
    return ipld.encode(value)


def _decode(data: bytes, max_size: int) -> Any:
    return ipld.decode(data, max_size=max_size)


def encode_block(value: Any) -> bytes:
    """DAG-CBOR bytes of ``value``; a value we built ourselves that does not encode is a bug."""
    return _encode(value)


def decode_block(data: object, max_size: int, what: str) -> Any:
    """Decode ``data`` (at most ``max_size`` bytes of canonical DAG-CBOR) or raise IdentityError."""
    if not isinstance(data, (bytes, bytearray, memoryview)):
        raise IdentityError("malformed", f"{what} must be bytes, not {type(data).__name__}")
    data = bytes(data)
    if len(data) > max_size:
        raise IdentityError("too-large", f"{what} is {len(data)} bytes; the limit is {max_size}")
    try:
        value = _decode(data, max_size)
    # The decoder is a third-party parser fed hostile bytes: whatever it raises (its own
    # errors, RecursionError on deep nesting, UnicodeError, ...) means "not a valid block".
    except Exception as exc:
        raise IdentityError("malformed", f"{what} is not valid DAG-CBOR: {_first_line(exc)}") from None
    try:
        canonical = _encode(value) == data
    except Exception:
        canonical = False
    if not canonical:
        raise IdentityError("malformed", f"{what} is not in canonical DAG-CBOR form")
    return value


def block_cid(data: bytes) -> str:
    """CIDv1 (dag-cbor, sha2-256, base32) of an encoded block."""
    return cid_for(data, "dag-cbor")


def link(cid_text: str, what: str) -> CID:
    """The IPLD link for a CID string given by a caller; only event CIDs are accepted."""
    try:
        cid = parse_cid(cid_text)
    except IpldError:
        raise IdentityError("malformed", f"{what} is not a CID: {str(cid_text)[:80]!r}") from None
    _check_event_cid(cid, what)
    return cid


def link_text(value: object, what: str) -> str:
    """The base32 string of a decoded link, after checking it names a dag-cbor sha2-256 block."""
    if not isinstance(value, CID):
        raise IdentityError("malformed", f"{what} must be a CID link, not {type(value).__name__}")
    _check_event_cid(value, what)
    return str(value.set(base="base32"))


def _check_event_cid(cid: CID, what: str) -> None:
    # Events and receipts are dag-cbor blocks hashed with sha2-256 (ipld.cid_for); a link in
    # any other form cannot name one of them, and accepting it would give one event two names.
    if (
        cid.version != 1
        or cid.codec.name != "dag-cbor"
        or cid.hashfun.name != "sha2-256"
        or len(cid.raw_digest) != 32
    ):
        raise IdentityError("malformed", f"{what} must be a CIDv1 dag-cbor sha2-256 link")


def _first_line(exc: Exception) -> str:
    text = str(exc).strip().splitlines()
    return text[0][:200] if text else type(exc).__name__
