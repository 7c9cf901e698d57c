"""Strict, bounded DAG-CBOR for envelopes: the reader (step 2 of opening) and the writer.

Why a codec of our own rather than the generic DAG-CBOR one (`dag_cbor`, `ipld`):

- limits are enforced *while* decoding, from each item's head, before its content is
  touched: a head that declares more recipients, a longer string or deeper nesting than v1
  allows is refused at once, so a hostile length is never allocated, waited for or iterated;
- the reader records where each top-level entry starts, so the header can be cut out of the
  input as the exact bytes that were sent;
- it knows why bytes are refused, which the spec needs as distinct error codes;
- speed: the generic codec checks types at run time and costs 50-250 us per envelope each
  way (more than an X25519 operation); this one costs a few microseconds.

It handles only what an envelope contains — unsigned and negative integers, byte and text
strings, lists, string-keyed maps, three levels deep — and only in DAG-CBOR's one canonical
form; recursion is bounded by that depth. `dag_cbor` stays the reference: the tests check
that the writer gives `dag_cbor.encode`'s bytes and that the reader accepts exactly what
`dag_cbor.decode` accepts (within the subset), with the same values.

Two ways bytes can fail to be an envelope, told apart here; the first violation in byte
order decides the code:

- ``malformed``: not well-formed for v1 — truncated, trailing bytes, reserved heads, tags,
  floats or simple values, non-string map keys, invalid UTF-8, nesting deeper than v1;
- ``non-canonical``: well-formed CBOR but not the canonical DAG-CBOR encoding — an integer or
  length not in its shortest form, an indefinite length, map keys repeated or out of order
  (DAG-CBOR sorts keys shorter first, then bytewise).

Over a limit: ``too-large`` (a string) or ``too-many-recipients`` (the recipients list).
"""

from __future__ import annotations

import functools
import re
from collections.abc import Sequence
from typing import Any

from milagro_node.core.ipld import canonical_keys, cbor_head

from ._errors import EnvelopeError, ErrorCode

try:
    from milagro_node._envread import ffi as envread_ffi
    from milagro_node._envread import lib as envread_lib
except ImportError as exc:
    raise ImportError(
        "milagro_node._envread (the envelope reader's extension) is not built: run "
        f"scripts/install.sh, or `python native/build.py` from the repository root ({exc})"
    ) from exc

__all__ = ["RecipientRecords", "cut_header", "encode", "read_envelope",
           "read_envelope_python"]

MAX_TEXT = 256  # any text string (kind, suite, CIDs); kind has its own, smaller limit
MAX_NESTED_BYTES = 4096  # any byte string below the top level (enc is 1,120 bytes in mx2)
MAX_MAP_PAIRS = 16  # v1 has 11 keys at most, a recipient 3
MAX_DEPTH = 3  # containers: envelope map > recipients list > recipient map
_CT_OVERHEAD = 48  # key commitment and AES-GCM tag (see _format)
# Top-level byte strings returned as zero-copy views of the input: the payload can be 1 MiB,
# and a copy of it costs more than the AES-GCM pass over it (fresh pages, page faults).
_VIEWED = frozenset({"ct", "body"})
_RECIPIENT_FIELDS = {"enc": None, "kid": None, "wck": None}.keys()
# The v1 keys, decoded once.
_KEY_TEXT = {key.encode(): key for key in (
    "v", "ct", "id", "seq", "sig", "body", "kind", "suite", "sender", "created", "expires",
    "recipients", "enc", "kid", "wck")}


def read_envelope(data: bytes, limits: Any) -> tuple[dict[str, Any], list[tuple[str, int]]]:
    """Decode ``data`` (a canonical DAG-CBOR map) within ``limits``.

    Returns the map and its entries as (key, offset of the key's head), in order. The values
    of ``ct`` and ``body`` are memoryviews of ``data``; every other byte string is ``bytes``.

    The common shape is read in C (`_read_common`); anything else, and every error, by the
    Python reader, which gives the same values and names the fault.
    """
    common = _read_common(data, limits)
    if common is not None:
        return common
    return read_envelope_python(data, limits)


def read_envelope_python(data: bytes, limits: Any) -> tuple[dict[str, Any], list[tuple[str, int]]]:
    """`read_envelope` by the Python reader alone: the reference for the C one."""
    if not data or data[0] >> 5 != 5:
        raise EnvelopeError(ErrorCode.MALFORMED, "not a DAG-CBOR map")
    reader = _Reader(data, limits.max_payload_bytes + _CT_OVERHEAD, limits.max_recipients)
    value = reader.item(0, None)
    if reader.pos != len(data):
        raise EnvelopeError(ErrorCode.MALFORMED, f"trailing bytes after byte {reader.pos}")
    return value, reader.entries


# --- the common shape, read in C (native/envread.c) ---------------------------------------------

# The v1 keys in the order of envread.h's enum, with what each value becomes: a copy, an int,
# text, a memoryview of the input, or the recipients.
_BYTES, _INT, _TEXT, _VIEW, _RECIPIENTS = "bytes", "int", "text", "view", "recipients"
_COMMON_FIELDS = tuple((k, key, kind) for k, (key, kind) in enumerate((
    ("v", _INT), ("ct", _VIEW), ("id", _BYTES), ("seq", _INT), ("sig", _BYTES), ("body", _VIEW),
    ("kind", _TEXT), ("suite", _TEXT), ("sender", _TEXT), ("created", _INT), ("expires", _INT),
    ("recipients", _RECIPIENTS),
)))
_WORD = envread_ffi.sizeof("envr_word")
_WORD_FORMAT = {4: "I", 8: "Q"}[_WORD]


def _word_index(field: str) -> int:
    return envread_ffi.offsetof("envr_fields", field) // _WORD


# Where each envr_fields member is in the list of words `read_common` returns.
ENTRY, NUMBER, AT, LEN = map(_word_index, ("entry", "number", "at", "len"))
COUNT, RECORD, NAMES_OK = _word_index("count"), _word_index("record"), _word_index("names_ok")
ENC_AT, ENC_LEN, KID_AT, KID_LEN, WCK_AT, WCK_LEN = map(
    _word_index, ("enc_at", "enc_len", "kid_at", "kid_len", "wck_at", "wck_len"))
#: The v1 keys' numbers in envread.h's enum: bit k of words[0] is set if key k is present.
KEY_NUMBERS = {key: k for k, key, _ in _COMMON_FIELDS}
assert len(_COMMON_FIELDS) == envread_lib.ENVR_KEYS


def read_common(data: bytes, limits: Any) -> list[int] | None:
    """envread.c's `envr_fields` as a list of words, if ``data`` has the common shape; else None."""
    fields = envread_ffi.new("envr_fields *")
    if not envread_lib.envr_read(envread_ffi.from_buffer(data), len(data),
                                 limits.max_payload_bytes + _CT_OVERHEAD, limits.max_recipients, fields):
        return None
    return memoryview(envread_ffi.buffer(fields)).cast(_WORD_FORMAT).tolist()


def _read_common(data: bytes, limits: Any) -> tuple[dict[str, Any], list[tuple[str, int]]] | None:
    """`read_envelope`'s result if ``data`` has the common shape (see envread.c), else None."""
    words = read_common(data, limits)
    if words is None:
        return None
    present = words[0]
    value: dict[str, Any] = {}
    view = memoryview(data)
    for k, key, kind in _COMMON_FIELDS:
        if present >> k & 1:
            at = words[AT + k]
            if kind is _BYTES:
                value[key] = data[at:at + words[LEN + k]]
            elif kind is _INT:
                value[key] = words[NUMBER + k]
            elif kind is _TEXT:
                value[key] = data[at:at + words[LEN + k]].decode("ascii")  # envread.c: ASCII only
            elif kind is _VIEW:
                value[key] = view[at:at + words[LEN + k]]
            else:
                value[key] = _common_records(data, at, words)
    entries = [(key, words[ENTRY + k]) for k, key, _ in _COMMON_FIELDS if present >> k & 1]
    return value, entries


def _common_records(data: bytes, at: int, words: list[int]) -> RecipientRecords:
    record = words[RECORD]
    starts = range(at, at + words[COUNT] * record, record)

    def column(offset: int, length: int) -> list[bytes]:
        return [data[s + offset:s + offset + length] for s in starts]

    kids = column(words[KID_AT], words[KID_LEN])
    return RecipientRecords(list(map(bytes.decode, kids)), column(words[ENC_AT], words[ENC_LEN]),
                            column(words[WCK_AT], words[WCK_LEN]))


def cut_header(data: bytes, entries: list[tuple[str, int]], header_keys: frozenset[str]) -> bytes:
    """The map of the entries named in ``header_keys``, as the very bytes they had in ``data``.

    An entry runs from its key's head to the next entry's (or the end). Cutting entries out of
    a canonical map keeps their order, so the result is the canonical encoding of the header.
    """
    parts = []
    for i, (key, start) in enumerate(entries):
        if key in header_keys:
            end = entries[i + 1][1] if i + 1 < len(entries) else len(data)
            parts.append(data[start:end])
    return bytes([0xA0 | len(parts)]) + b"".join(parts)  # < 24 entries: a one-byte map head


class RecipientRecords(Sequence):
    """A recipients list read by a bulk path (`_Reader.recipient_list`, `_read_common`):
    a sequence of maps like any other (equal to the list of them), plus the promise the
    schema check may rely on — every entry is exactly ``{enc: bytes, kid: str, wck: bytes}``
    and all have the same sizes — and the fields as columns (``kids``, ``encs``, ``wcks``)
    so they can be checked without a loop per entry. The maps themselves are made only if
    asked for: the schema check needs the columns alone."""

    __slots__ = ("kids", "encs", "wcks", "_maps")

    def __init__(self, kids: list[str], encs: list[bytes], wcks: list[bytes]) -> None:
        self.kids, self.encs, self.wcks = kids, encs, wcks
        self._maps: list[dict[str, Any]] | None = None

    def _entries(self) -> list[dict[str, Any]]:
        if self._maps is None:
            self._maps = [{"enc": e, "kid": k, "wck": w} for e, k, w in zip(self.encs, self.kids, self.wcks)]
        return self._maps

    def __getitem__(self, index):
        return self._entries()[index]

    def __len__(self) -> int:
        return len(self.kids)

    def __eq__(self, other: object) -> bool:
        if isinstance(other, RecipientRecords):
            other = other._entries()
        return isinstance(other, list) and self._entries() == other

    def __repr__(self) -> str:
        return repr(self._entries())


class _Reader:
    __slots__ = ("data", "view", "pos", "entries", "max_payload", "max_list")

    def __init__(self, data: bytes, max_payload: int, max_list: int) -> None:
        self.data = data
        self.view = memoryview(data)
        self.pos = 0
        self.entries: list[tuple[str, int]] = []
        self.max_payload = max_payload
        self.max_list = max_list

    def _fail(self, code: ErrorCode, what: str, at: int) -> EnvelopeError:
        return EnvelopeError(code, f"{what} at byte {at}")

    def head(self) -> tuple[int, int, int]:
        """(major type, argument, offset) of the next head; checks its form."""
        data, start = self.data, self.pos
        if start >= len(data):
            raise self._fail(ErrorCode.MALFORMED, "truncated: an item is missing", start)
        major, info = data[start] >> 5, data[start] & 0x1F
        pos = start + 1
        if info < 24 and major < 6:  # the common case: the argument is in the first byte
            self.pos = pos
            return major, info, start
        if info == 31:
            raise self._fail(ErrorCode.NON_CANONICAL, "indefinite length", start)
        if info > 27:
            raise self._fail(ErrorCode.MALFORMED, "reserved head", start)
        if major in (6, 7):
            raise self._fail(ErrorCode.MALFORMED, "tag, float or simple value", start)
        arg = info
        if info >= 24:
            size = 1 << (info - 24)
            if pos + size > len(data):
                raise self._fail(ErrorCode.MALFORMED, "truncated head", start)
            arg = int.from_bytes(data[pos:pos + size], "big")
            pos += size
            if arg < (24 if size == 1 else 1 << (4 * size)):
                raise self._fail(ErrorCode.NON_CANONICAL, "head not in its shortest form", start)
        self.pos = pos
        return major, arg, start

    def string(self, major: int, length: int, start: int, cap: int, view: bool = False) -> bytes:
        # The limit first: a declared length over it is refused whether or not the bytes
        # follow, so a hostile length is never waited for or read.
        if length > cap:
            raise self._fail(ErrorCode.TOO_LARGE, f"a string over {cap} bytes", start)
        if length > len(self.data) - self.pos:
            raise self._fail(ErrorCode.MALFORMED, "truncated string", start)
        raw = (self.view if view else self.data)[self.pos:self.pos + length]
        self.pos += length
        return raw

    def text(self, raw: bytes, start: int) -> str:
        try:
            return raw.decode("utf-8")
        except UnicodeDecodeError:
            raise self._fail(ErrorCode.MALFORMED, "invalid UTF-8", start) from None

    def recipient(self, depth: int) -> Any:
        """One recipient entry: the fast path for its one canonical layout, else `item`.

        ``{enc: bytes, kid: text, wck: bytes}`` has exactly one canonical encoding, so it is
        matched here head by head with the same conditions `item` applies (shortest heads,
        string limits, bytes present, valid UTF-8). Anything else — an error or merely
        another shape — goes back to `item` from the entry's first byte, which then gives
        the exact error. A 50-recipient envelope decodes several times faster this way.
        """
        data, start = self.data, self.pos
        if data[start:start + 5] == b"\xa3cenc":
            enc, pos = _fast_string(data, start + 5, 0x40, MAX_NESTED_BYTES)
            if enc is not None and data[pos:pos + 4] == b"ckid":
                kid, pos = _fast_string(data, pos + 4, 0x60, MAX_TEXT)
                if kid is not None and data[pos:pos + 4] == b"cwck":
                    wck, pos = _fast_string(data, pos + 4, 0x40, MAX_NESTED_BYTES)
                    if wck is not None:
                        try:
                            text = kid.decode("utf-8")
                        except UnicodeDecodeError:
                            pass
                        else:
                            self.pos = pos
                            return {"enc": enc, "kid": text, "wck": wck}
        return self.item(depth, "recipients")

    def recipient_list(self, depth: int, count: int) -> list[Any]:
        """``count`` recipient entries: after the first, the rest in one regex pass if they
        share its layout, else one by one (`recipient`).

        A sender's entries normally all have the same layout (the same head bytes, enc, kid
        and wck lengths), so once the first has been checked by `recipient`, the others are
        fixed-size records of that layout: a pattern made from the first one's heads, with
        the contents left free (kid restricted to ASCII, so valid UTF-8), matches only
        entries `recipient` would accept, with the same values. ``count - 1`` matches of one
        length in ``count - 1`` times that length can only tile the span, so every byte is
        accounted for. Any other shape, or a short span, goes one by one, which gives the
        exact error. At 50 recipients it halves the decoding time (68 -> 30 us).
        """
        if count == 0:
            return []
        start = self.pos
        first = self.recipient(depth)
        if count == 1 or not _is_record(first):
            return [first] + [self.recipient(depth) for _ in range(count - 1)]
        size = self.pos - start
        pattern = _record_pattern(len(first["enc"]), len(first["kid"].encode()), len(first["wck"]))
        found = pattern.findall(self.data, self.pos, self.pos + (count - 1) * size)
        if len(found) != count - 1:
            return [first] + [self.recipient(depth) for _ in range(count - 1)]
        self.pos += (count - 1) * size
        encs, kids, wcks = zip(*found)
        kids = [first["kid"], *map(bytes.decode, kids)]  # ASCII: UTF-8 decoding cannot fail
        return RecipientRecords(kids, [first["enc"], *encs], [first["wck"], *wcks])

    def item(self, depth: int, under: str | None) -> Any:
        """One item at ``depth`` (0: the envelope); ``under``: the top-level key it sits in."""
        major, arg, start = self.head()
        if major == 0:
            return arg
        if major == 1:
            return -1 - arg
        if major == 2:
            if depth == 1:
                return self.string(major, arg, start, self.max_payload, view=under in _VIEWED)
            return self.string(major, arg, start, MAX_NESTED_BYTES)
        if major == 3:
            return self.text(self.string(major, arg, start, MAX_TEXT), start)
        if depth >= MAX_DEPTH:
            raise self._fail(ErrorCode.MALFORMED, "nesting deeper than v1", start)
        if major == 4:
            if arg > self.max_list:
                code = ErrorCode.TOO_MANY_RECIPIENTS if under == "recipients" else ErrorCode.MALFORMED
                raise self._fail(code, f"a list of {arg} items (limit {self.max_list})", start)
            if depth == 1 and under == "recipients":  # the list itself, not one nested in it
                return self.recipient_list(depth + 1, arg)
            return [self.item(depth + 1, under) for _ in range(arg)]
        # major == 5: a map
        if arg > MAX_MAP_PAIRS:
            raise self._fail(ErrorCode.MALFORMED, f"a map of {arg} entries", start)
        out: dict[str, Any] = {}
        previous = b""
        data = self.data
        for i in range(arg):
            key_start = self.pos
            end = key_start + 1 + (data[key_start] - 0x60) if key_start < len(data) else 0
            if key_start < end <= len(data) and end - key_start <= 24:
                # The common case, as `head` + `string` would take it: a text of at most
                # 23 bytes, its length in the head byte, present in full.
                raw = data[key_start + 1:end]
                self.pos = end
            else:
                key_major, key_length, key_start = self.head()
                if key_major != 3:
                    raise self._fail(ErrorCode.MALFORMED, "a map key that is not a string", key_start)
                raw = self.string(3, key_length, key_start, MAX_TEXT)
            if i and (len(raw), raw) <= (len(previous), previous):
                raise self._fail(ErrorCode.NON_CANONICAL, "a map key repeated or out of order", key_start)
            previous = raw
            key = _KEY_TEXT.get(raw) or self.text(raw, key_start)
            if depth == 0:
                self.entries.append((key, key_start))
            out[key] = self.item(depth + 1, key if depth == 0 else under)
        return out


def _is_record(entry: Any) -> bool:
    return (type(entry) is dict and entry.keys() == _RECIPIENT_FIELDS and type(entry["enc"]) is bytes
            and type(entry["kid"]) is str and type(entry["wck"]) is bytes)


@functools.lru_cache(maxsize=16)
def _record_pattern(enc_size: int, kid_size: int, wck_size: int) -> re.Pattern:
    """Canonical recipient entries with contents of these sizes: heads in their one
    (shortest) form, any contents, kid in ASCII. Cached: a sender uses one layout."""
    return re.compile(
        re.escape(b"\xa3cenc" + cbor_head(2, enc_size)) + b"(.{%d})" % enc_size
        + re.escape(b"ckid" + cbor_head(3, kid_size)) + b"([\x00-\x7f]{%d})" % kid_size
        + re.escape(b"cwck" + cbor_head(2, wck_size)) + b"(.{%d})" % wck_size,
        re.DOTALL,
    )


def _fast_string(data: bytes, pos: int, base: int, cap: int) -> tuple[bytes | None, int]:
    """A byte (``base`` 0x40) or text (0x60) string at ``pos`` whose head is in its shortest
    form (one byte, or 0x18/0x19 with 1/2 length bytes), within ``cap`` and present in full;
    else ``(None, pos)``. Only `_Reader.recipient` uses it."""
    if pos >= len(data):
        return None, pos
    head = data[pos] - base
    if 0 <= head < 24:
        length, pos = head, pos + 1
    elif head == 24 and pos + 1 < len(data) and data[pos + 1] >= 24:
        length, pos = data[pos + 1], pos + 2
    elif head == 25 and pos + 2 < len(data):
        length = int.from_bytes(data[pos + 1:pos + 3], "big")
        if length < 256:
            return None, pos
        pos += 3
    else:
        return None, pos
    if length > cap or pos + length > len(data):
        return None, pos
    return data[pos:pos + length], pos + length


# --- writing ------------------------------------------------------------------------------------


def encode(value: Any) -> bytes:
    """Canonical DAG-CBOR of ``value`` (int, bytes, str, list, dict with str keys; no bool)."""
    parts: list[bytes] = []
    _write(parts, value)
    return b"".join(parts)


def _canonical_order(mapping: dict) -> tuple[tuple[bytes, str], ...]:
    keys = tuple(mapping)
    if not set(map(type, keys)) <= {str}:
        raise TypeError("map keys must be str")
    return canonical_keys(keys)


def _write(parts: list[bytes], value: Any) -> None:
    kind = type(value)
    if kind is int:
        # Cached heads: an envelope's integers are its public header fields.
        parts.append(cbor_head(0, value) if value >= 0 else cbor_head(1, -1 - value))
    elif kind is bytes or kind is memoryview or kind is bytearray:
        parts.append(cbor_head(2, len(value)))
        parts.append(value)
    elif kind is str:
        raw = value.encode("utf-8")
        parts.append(cbor_head(3, len(raw)))
        parts.append(raw)
    elif kind is list or kind is tuple:
        parts.append(cbor_head(4, len(value)))
        for item in value:
            _write(parts, item)
    elif kind is dict:
        keys = _canonical_order(value)
        parts.append(cbor_head(5, len(keys)))
        for raw, key in keys:
            parts.append(cbor_head(3, len(raw)))
            parts.append(raw)
            _write(parts, value[key])
    else:
        raise TypeError(f"cannot encode {kind.__name__} in an envelope")
