"""IPLD helpers: CIDs, strict DAG-CBOR and base32 multibase — a sans-IO protocol core.

Layer 1 (protocol cores): pure functions, no I/O. Called by the SQLite store adapter
(`milagro_node.adapters.sqlite_store`) to address and re-verify blocks, and by the envelope
and identity-log cores to encode and name documents.

Every CID this node makes is CIDv1, sha2-256, written in base32 multibase (``b...``), the form
that IPFS and js `multiformats` print, so a CID string is also a stable database key.
Only sha2-256 is accepted when verifying: a CID naming another hash is refused, never trusted.
`cid_for(data, "dag-cbor")` hashes the bytes it is given and does not validate them; use
`block_cid(value)` to encode a value and name it in one step.

DAG-CBOR values (the IPLD data model as Python objects):

    None, bool, int (-2**64 <= n < 2**64), str, bytes, list, dict with str keys,
    and links as `multiformats.CID` (CBOR tag 42).

**No floats.** DAG-CBOR allows only 64-bit floats, but none of our protocols uses them and
float canonical form is a known source of disagreement between implementations, so `encode`
refuses them and `decode` rejects every float encoding (16, 32 and 64 bit). Tuples, bytearray
and other look-alikes are refused too: `decode(encode(x)) == x` holds for every accepted ``x``.

`decode` is strict: it accepts only the one canonical encoding of a value. Before building
any object it walks the CBOR item heads and rejects, with a message naming the byte offset:
trailing or missing bytes, indefinite lengths, integers or lengths not in their shortest form,
floats, simple values other than false/true/null, tags other than 42, map keys that are not
strings, duplicate keys, keys out of order (shorter first, then bytewise), nesting deeper than
`MAX_DEPTH`. Then the value is built (checking UTF-8, and the CIDs), and finally it is
re-encoded and must give back exactly the input bytes.

`dag_cbor` is the reference codec; values without links are written and read by a plain
codec at the end of this module, ten times faster, with the same bytes and values.
"""

from __future__ import annotations

import functools

import base64
import hashlib
import io
from typing import Any

import dag_cbor
from multiformats import CID, multibase

__all__ = [
    "IpldError",
    "MAX_DEPTH",
    "SUPPORTED_CODECS",
    "block_cid",
    "canonical_keys",
    "cbor_head",
    "cid_for",
    "decode",
    "encode",
    "from_base32",
    "normalize_cid",
    "parse_cid",
    "to_base32",
    "verify_cid",
]

# The codecs this node produces. Verification accepts any codec (the codec only labels the
# bytes; the hash is what binds them), but we only *make* CIDs for these two.
SUPPORTED_CODECS = ("raw", "dag-cbor")

# Deepest nesting of lists and maps that `encode` and `decode` accept (a top-level list is
# level 1). Our documents nest a few levels; the bound keeps decoding from recursing without end.
MAX_DEPTH = 64

_HASH = "sha2-256"
# CIDv1 bytes before the digest: version 1, the codec (raw 0x55, dag-cbor 0x71), sha2-256 (0x12), 32 bytes.
_CID_PREFIX = {"raw": bytes([0x01, 0x55, 0x12, 0x20]), "dag-cbor": bytes([0x01, 0x71, 0x12, 0x20])}
_DIGEST_SIZE = 32
_CID_TAG = 42
_INT_LIMIT = 1 << 64  # DAG-CBOR integers: -2**64 <= n < 2**64


class IpldError(ValueError):
    """A CID, multibase string or DAG-CBOR block is malformed, non-canonical or unsupported."""


def cid_for(data: bytes, codec: str = "raw") -> str:
    """Return the CIDv1 (sha2-256, base32) of ``data`` labelled with ``codec``."""
    if codec not in SUPPORTED_CODECS:
        raise IpldError(f"unsupported codec {codec!r}; expected one of {SUPPORTED_CODECS}")
    if not isinstance(data, (bytes, bytearray, memoryview)):
        raise IpldError(f"block data must be bytes, not {type(data).__name__}")
    # Built by hand (varint version 1, codec, sha2-256 multihash header, digest; multibase
    # "b" base32): the same string as multiformats' CID, without its per-call type checks,
    # which cost a receiving node 8.5% of its CPU (bench/gossip.py).
    raw = _CID_PREFIX[codec] + hashlib.sha256(data).digest()
    return "b" + base64.b32encode(raw).decode("ascii").lower().rstrip("=")


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
    if isinstance(text, str):
        return _normalized(text)
    return str(_sha256_cid(text).set(version=1, base="base32"))


@functools.lru_cache(maxsize=8192)
def _normalized(text: str) -> str:
    # multiformats parses a CID in ~0.35 ms (its runtime type checks); the same few
    # identity CIDs are normalised on every statement, envelope and store key.
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


# --- base32 multibase -------------------------------------------------------------------


def to_base32(data: bytes) -> str:
    """``data`` as a base32 multibase string: ``"b"`` + lowercase RFC 4648 base32, no padding."""
    if not isinstance(data, (bytes, bytearray, memoryview)):
        raise IpldError(f"base32 input must be bytes, not {type(data).__name__}")
    return multibase.encode(bytes(data), "base32")


def from_base32(text: str) -> bytes:
    """Decode a ``"b..."`` string made by `to_base32`; anything else raises `IpldError`.

    Only the one spelling `to_base32` makes is accepted (no other multibase, no uppercase,
    no padding, no non-zero trailing bits), so equal bytes always have equal strings.
    """
    if not isinstance(text, str):
        raise IpldError(f"a base32 string must be a str, not {type(text).__name__}")
    if not text.startswith("b"):
        raise IpldError(f"not a base32 multibase string (must start with 'b'): {text[:40]!r}")
    try:
        data = multibase.decode(text)
    except Exception as exc:  # multiformats raises ValueError, binascii.Error, ...
        raise IpldError(f"malformed base32 string {text[:40]!r}: {exc}") from exc
    if multibase.encode(data, "base32") != text:
        raise IpldError(f"non-canonical base32 string {text[:40]!r}")
    return data


# --- DAG-CBOR ---------------------------------------------------------------------------


def encode(value: Any) -> bytes:
    """Encode ``value`` (see the module docstring for the allowed types) as canonical DAG-CBOR."""
    try:
        return _encode_plain(value)
    except _NotPlain:
        pass
    _check_encodable(value)
    try:
        return dag_cbor.encode(value)
    except Exception as exc:  # dag_cbor's encoding errors, UnicodeEncodeError (lone surrogates)
        raise IpldError(f"cannot encode as DAG-CBOR: {exc}") from exc


def decode(data: bytes, *, max_size: int | None = None) -> Any:
    """Decode one canonical DAG-CBOR block; raise `IpldError` for anything else.

    ``max_size`` (bytes) is checked before any decoding work. Links come back as
    `multiformats.CID`, byte strings as `bytes`.
    """
    if not isinstance(data, (bytes, bytearray, memoryview)):
        raise IpldError(f"DAG-CBOR input must be bytes, not {type(data).__name__}")
    if max_size is not None and len(data) > max_size:
        raise IpldError(f"DAG-CBOR block of {len(data)} bytes exceeds the limit of {max_size}")
    data = bytes(data)
    _check_canonical(data)
    try:
        value, again = _decode_plain(data)
    except _NotPlain:
        value, again = _decode_by_dag_cbor(data)
    if again != data:
        # Everything the walk above misses (e.g. a CID with a non-minimal varint inside).
        raise IpldError("non-canonical DAG-CBOR: re-encoding the value gives different bytes")
    return value


def _decode_by_dag_cbor(data: bytes) -> tuple[Any, bytes]:
    """The value of ``data`` (checked by `_check_canonical`) and its re-encoding, by `dag_cbor`."""
    try:
        # Given as an in-memory stream: for plain bytes, dag_cbor's argument check first tries
        # the stream type and builds a failure message holding repr(data), 8 ms for 1 MiB.
        value = dag_cbor.decode(io.BytesIO(data))
    except Exception as exc:  # bad UTF-8, malformed CID bytes, ...
        raise IpldError(f"invalid DAG-CBOR: {exc}") from exc
    try:
        return value, dag_cbor.encode(value)
    except Exception as exc:
        raise IpldError(f"invalid DAG-CBOR: decoded value does not re-encode: {exc}") from exc


def block_cid(value: Any) -> str:
    """The CIDv1 (dag-cbor, sha2-256, base32) of ``encode(value)``."""
    return cid_for(encode(value), "dag-cbor")


def _check_encodable(value: Any) -> None:
    """Refuse floats and over-deep nesting, which `dag_cbor.encode` would accept or recurse on.

    Other type errors (unknown types, non-str keys, integers out of range) are left to
    `dag_cbor.encode`, whose messages name the path.
    """
    stack: list[tuple[Any, int, tuple]] = [(value, 0, ())]
    while stack:
        item, depth, path = stack.pop()
        if isinstance(item, float):
            raise IpldError(
                f"cannot encode as DAG-CBOR: float at {_path(path)} (floats are not allowed)"
            )
        if isinstance(item, (list, dict)):
            if depth >= MAX_DEPTH:
                raise IpldError(
                    f"cannot encode as DAG-CBOR: nesting deeper than {MAX_DEPTH} at {_path(path)}"
                )
            pairs = enumerate(item) if isinstance(item, list) else item.items()
            stack.extend((v, depth + 1, path + (k,)) for k, v in pairs)


def _path(path: tuple) -> str:
    return "/" + "/".join(map(str, path))


def _check_canonical(data: bytes) -> None:
    """Walk the item heads of ``data`` (no values built) and reject non-canonical forms.

    Each open list or map is a frame ``[items left, is map, previous key bytes]``; a map
    counts keys and values as items, so a map item is a key when the count left is even.
    """
    end = len(data)
    pos = 0
    stack: list[list[Any]] = [[1, False, None]]  # the single top-level item
    while stack:
        frame = stack[-1]
        if frame[0] == 0:
            stack.pop()
            continue
        is_key = frame[1] and frame[0] % 2 == 0
        frame[0] -= 1
        start = pos
        if pos >= end:
            raise IpldError(f"truncated DAG-CBOR: input ends at byte {pos} before an expected item")
        major, info = data[pos] >> 5, data[pos] & 0x1F
        pos += 1
        if info == 31:
            raise IpldError(f"indefinite-length item or break code at byte {start} (not allowed)")
        if info > 27:
            raise IpldError(f"reserved additional information {info} at byte {start}")
        arg = info
        if info >= 24:
            size = 1 << (info - 24)
            if pos + size > end:
                raise IpldError(f"truncated DAG-CBOR: item head at byte {start} is cut off")
            arg = int.from_bytes(data[pos : pos + size], "big")
            pos += size
            if major != 7 and arg < (24 if size == 1 else 1 << (4 * size)):
                raise IpldError(f"non-minimal integer or length encoding at byte {start}")
        if is_key and major != 3:
            raise IpldError(f"map key at byte {start} is not a string (major type {major})")
        if major == 7:
            if info in (25, 26, 27):
                raise IpldError(f"float at byte {start} (floats are not allowed)")
            if info not in (20, 21, 22):
                raise IpldError(f"simple value at byte {start} is not false, true or null")
        elif major in (2, 3):
            if arg > end - pos:
                raise IpldError(f"truncated DAG-CBOR: string at byte {start} runs past the end")
            if is_key:
                key = data[pos : pos + arg]
                previous = frame[2]
                if previous is not None:
                    if key == previous:
                        raise IpldError(f"duplicate map key {key!r} at byte {start}")
                    if (len(key), key) < (len(previous), previous):
                        raise IpldError(
                            f"map key {key!r} at byte {start} is out of canonical order "
                            "(keys sort shorter first, then bytewise)"
                        )
                frame[2] = key
            pos += arg
        elif major in (4, 5):
            if len(stack) > MAX_DEPTH:
                raise IpldError(f"nesting deeper than {MAX_DEPTH} at byte {start}")
            stack.append([arg * 2 if major == 5 else arg, major == 5, None])
        elif major == 6:
            if arg != _CID_TAG:
                raise IpldError(f"tag {arg} at byte {start} (only tag 42, a CID link, is allowed)")
            frame[0] += 1  # the tagged item takes the tag's place
    if pos != end:
        raise IpldError(f"{end - pos} trailing byte(s) after the DAG-CBOR item at byte {pos}")


# --- plain values, without dag_cbor -------------------------------------------------------
#
# `dag_cbor` checks types at run time: ~150 us to encode a login assertion and ~250 us to
# decode one, more than the rest of issuing it. Values without links (every document this
# node makes) are written and read here instead, in the same canonical form; anything else
# (a link, a type or value the data model refuses, invalid UTF-8) goes to `dag_cbor` and
# the checks above, which give the error. The tests check both give the same bytes and values.


class _NotPlain(Exception):
    """The value or block is not for the plain writer or reader."""


def _head(major: int, arg: int) -> bytes:
    """The shortest CBOR head of ``major`` with argument ``arg`` (< 2**64)."""
    if arg < 24:
        return bytes([major << 5 | arg])
    for info, size in ((24, 1), (25, 2), (26, 4), (27, 8)):
        if arg < 1 << (8 * size):
            return bytes([major << 5 | info]) + arg.to_bytes(size, "big")
    raise ValueError("integer too large for CBOR")


# Cached: documents repeat the same few heads (key and field lengths), and a cache hit is a
# C call where `_head` is a Python loop. Only for lengths and public integers: an integer
# *value* may be secret, and the cache would keep it for the life of the process.
cbor_head = functools.lru_cache(maxsize=1024)(_head)


@functools.lru_cache(maxsize=256)
def canonical_keys(keys: tuple[str, ...]) -> tuple[tuple[bytes, str], ...]:
    """``(UTF-8 bytes, key)`` of a map's str keys in DAG-CBOR order: shorter first, then bytewise.

    Cached by the keys as given: documents come with a handful of key sets, and sorting them
    cost more than writing them.
    """
    ordered = sorted((key.encode("utf-8"), key) for key in keys)
    ordered.sort(key=lambda pair: len(pair[0]))  # stable: shorter first, then bytewise
    return tuple(ordered)


_SIMPLE = {None: b"\xf6", True: b"\xf5", False: b"\xf4"}


def _encode_plain(value: Any) -> bytes:
    parts: list[bytes] = []
    try:
        _write_plain(parts, value, 0)
    except (UnicodeEncodeError, RecursionError):  # a lone surrogate; a cycle
        raise _NotPlain from None
    return b"".join(parts)


def _write_plain(parts: list[bytes], value: Any, depth: int) -> None:
    kind = type(value)
    if kind is str:
        raw = value.encode("utf-8")
        parts.append(cbor_head(3, len(raw)))
        parts.append(raw)
    elif kind is int:
        if not -_INT_LIMIT <= value < _INT_LIMIT:
            raise _NotPlain
        parts.append(_head(0, value) if value >= 0 else _head(1, -1 - value))  # not cached
    elif kind is bytes:
        parts.append(cbor_head(2, len(value)))
        parts.append(value)
    elif kind is dict:
        if depth >= MAX_DEPTH or not all(type(key) is str for key in value):
            raise _NotPlain
        parts.append(cbor_head(5, len(value)))
        for raw, key in canonical_keys(tuple(value)):
            parts.append(cbor_head(3, len(raw)))
            parts.append(raw)
            _write_plain(parts, value[key], depth + 1)
    elif kind is list:
        if depth >= MAX_DEPTH:
            raise _NotPlain
        parts.append(cbor_head(4, len(value)))
        for item in value:
            _write_plain(parts, item, depth + 1)
    elif kind is bool or value is None:
        parts.append(_SIMPLE[value])
    else:
        raise _NotPlain


def _decode_plain(data: bytes) -> tuple[Any, bytes]:
    """The value of ``data`` (already checked by `_check_canonical`) and its re-encoding."""
    try:
        value, _ = _read_plain(data, 0)
    except UnicodeDecodeError:
        raise _NotPlain from None
    return value, _encode_plain(value)


_SIMPLE_VALUES = {20: False, 21: True, 22: None}


def _read_plain(data: bytes, pos: int) -> tuple[Any, int]:
    """The item at ``pos`` and the offset after it; ``data`` is known well-formed and canonical."""
    major, info = data[pos] >> 5, data[pos] & 0x1F
    pos += 1
    arg = info
    if info >= 24:
        size = 1 << (info - 24)
        arg = int.from_bytes(data[pos:pos + size], "big")
        pos += size
    if major == 0:
        return arg, pos
    if major == 1:
        return -1 - arg, pos
    if major == 2:
        return data[pos:pos + arg], pos + arg
    if major == 3:
        return data[pos:pos + arg].decode("utf-8"), pos + arg
    if major == 4:
        items = []
        for _ in range(arg):
            item, pos = _read_plain(data, pos)
            items.append(item)
        return items, pos
    if major == 5:
        mapping = {}
        for _ in range(arg):
            key, pos = _read_plain(data, pos)
            mapping[key], pos = _read_plain(data, pos)
        return mapping, pos
    if major == 7:
        return _SIMPLE_VALUES[info], pos
    raise _NotPlain  # a tag: a link, for dag_cbor to build
