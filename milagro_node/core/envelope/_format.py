"""Envelope v1 wire format: limits, fields, the schema and the bytes that are signed.

Rule 1: everything that decides which bytes are an envelope, and which bytes are signed,
wrapped or authenticated, lives here and in `_cbor` (the strict codec this module calls).
`_seal` and `_open` only call these functions, so both sides cannot drift apart.

`parse` is steps 1-4 of opening: size, strict decode within the limits (`_cbor`), then
version, suite, and each field's type, size and range (`_check_schema`).

The signed and authenticated bytes (docs/envelope.md, "What is signed"):

    header     = DAG-CBOR map of every entry except ct, body and sig (canonical, as sent)
    ct         = commitment || AES-256-GCM(payload key, nonce 0, aad = header, payload)
    tbs        = SIG_DOMAIN || u64be(len(header)) || header || SHA-256(ct or body)
    wrap info  = WRAP_DOMAIN || lp(suite) || lp(id) || lp(sender) || lp(kid)   (HPKE info)

with ``lp(x) = u16be(len(x)) || x`` (text as UTF-8), and the payload key and commitment
derived from the wrapped content key by `content_keys`.
"""

from __future__ import annotations

import base64
import binascii
import functools
import hashlib
import hmac
import re
from collections.abc import Iterator, Sequence
from typing import Any, NamedTuple

import attrs

from milagro_node.core.ipld import canonical_keys, cbor_head
from milagro_node.secret_memory import SecretBytes

from . import _cbor
from ._cbor import RecipientRecords, cut_header, read_envelope
from ._errors import EnvelopeError, ErrorCode

__all__ = ["DEFAULT_LIMITS", "EnvelopeHeader", "Limits", "Recipient"]

VERSION = 1
ID_SIZE = 16
SIG_SIZE = 64
CEK_SIZE = 32  # the content key, wrapped to each recipient
TAG_SIZE = 16  # AES-GCM tag, on the payload and on each wrapped content key
WCK_SIZE = CEK_SIZE + TAG_SIZE
COMMIT_SIZE = 32  # the key commitment that starts ct
CT_OVERHEAD = COMMIT_SIZE + TAG_SIZE  # len(ct) - len(payload)
CONTENT_NONCE = bytes(12)  # each payload key encrypts exactly one payload: a fixed nonce is safe
SIG_DOMAIN = b"milagro-envelope/v1/sig\x00"
WRAP_DOMAIN = b"milagro-envelope/v1/wrap\x00"
PAYLOAD_KEY_LABEL = b"milagro-envelope/v1/payload-key\x01"
COMMIT_LABEL = b"milagro-envelope/v1/key-commitment\x01"

_KIND = re.compile(r"[A-Za-z0-9._:/-]+")
_CID_TEXT = re.compile(r"b[a-z2-7]+")  # CIDv1 in base32 multibase, the form we make
_CID_TEXT_SIZE = 59  # "b" + base32 of 36 bytes: version, codec, hash code, length, digest
_CID_CODECS = frozenset({0x55, 0x71})  # raw, dag-cbor: ipld.SUPPORTED_CODECS
HEADER_KEYS = frozenset({"v", "suite", "sender", "created", "expires", "id", "kind", "seq", "recipients"})
_RECIPIENT_KEYS = frozenset({"kid", "enc", "wck"})


def _short(value: bytes) -> str:
    return f"<{len(value)} bytes>"


@attrs.frozen
class Limits:
    """Bounds an opener enforces (all sizes in bytes, times in seconds).

    The defaults fit 64 hybrid-suite recipients and a 1 MiB payload in ``max_envelope_bytes``.
    """

    max_envelope_bytes: int = (1 << 20) + (128 << 10)
    max_payload_bytes: int = 1 << 20
    max_recipients: int = 64
    max_kind_bytes: int = 64
    max_lifetime: int = 7 * 24 * 3600  # expires - created; also bounds replay-cache memory
    clock_skew: int = 300  # allowance on both edges of [created, expires)


DEFAULT_LIMITS = Limits()


class Recipient(NamedTuple):
    """One entry of ``recipients``: who (``kid``) and the content key wrapped to them.

    A named tuple rather than an attrs class: an opener makes one per recipient, and a
    tuple is made at a third of the cost (50 per envelope add up).
    """

    kid: str  # the recipient's identity CID
    enc: bytes  # the KEM's encapsulation (mx1: 32 bytes; mx2: 1,088 + 32)
    wck: bytes  # the wrapped content key (HPKE ciphertext), 48 bytes

    def __repr__(self) -> str:
        return f"Recipient(kid={self.kid!r}, enc={_short(self.enc)}, wck={_short(self.wck)})"


class Recipients(Sequence):
    """The recipients of an envelope the C reader read: a sequence of `Recipient`, equal to
    the tuple of them, whose entries are cut out of the envelope's bytes only when asked
    for. `find` gets one by kid without making the others: an opener needs its own only,
    and making 50 entries cost more than the rest of reading the envelope.

    Made only for an envelope whose names passed envread.c's checks (canonical kids, none
    twice), so every entry is one `_check_recipients` would have accepted.
    """

    __slots__ = ("_data", "_starts", "_kid", "_enc", "_wck", "_items")

    def __init__(self, data: bytes, words: list[int]) -> None:
        record = words[_cbor.RECORD]
        at = words[_cbor.AT + _cbor.KEY_NUMBERS["recipients"]]
        self._data = data
        self._starts = range(at, at + words[_cbor.COUNT] * record, record)
        self._kid = (words[_cbor.KID_AT], words[_cbor.KID_LEN])
        self._enc = (words[_cbor.ENC_AT], words[_cbor.ENC_LEN])
        self._wck = (words[_cbor.WCK_AT], words[_cbor.WCK_LEN])
        self._items: tuple[Recipient, ...] | None = None

    def _entry(self, start: int) -> Recipient:
        data, (kid, kid_len), (enc, enc_len), (wck, wck_len) = self._data, self._kid, self._enc, self._wck
        return Recipient(data[start + kid:start + kid + kid_len].decode("ascii"),
                         data[start + enc:start + enc + enc_len], data[start + wck:start + wck + wck_len])

    def _all(self) -> tuple[Recipient, ...]:
        if self._items is None:
            self._items = tuple(map(self._entry, self._starts))
        return self._items

    def find(self, kid: str) -> Recipient | None:
        """The entry of ``kid``, or None."""
        raw = kid.encode("utf-8")
        starts, (kid_at, kid_len) = self._starts, self._kid
        if len(raw) != kid_len or not starts:
            return None
        first, end = starts[0], starts[-1] + starts.step
        pos = self._data.find(raw, first, end)
        while pos >= 0:  # a match must sit at a kid's offset in some record
            offset = pos - first - kid_at
            if offset >= 0 and offset % starts.step == 0:
                return self._entry(first + offset)
            pos = self._data.find(raw, pos + 1, end)
        return None

    def __len__(self) -> int:
        return len(self._starts)

    def __getitem__(self, index):
        return self._all()[index]

    def __iter__(self) -> Iterator[Recipient]:
        return iter(self._all())

    def __eq__(self, other: object) -> bool:
        if isinstance(other, Recipients):
            other = other._all()
        return isinstance(other, tuple) and self._all() == other

    def __hash__(self) -> int:
        return hash(self._all())

    def __repr__(self) -> str:
        return repr(self._all())


def find_recipient(recipients: Sequence[Recipient], kid: str) -> Recipient | None:
    """The entry of ``kid`` among an envelope's recipients, or None."""
    if type(recipients) is Recipients:
        return recipients.find(kid)
    return next((r for r in recipients if r.kid == kid), None)


@attrs.frozen
class EnvelopeHeader:
    """Everything in an envelope but its payload and signature (see docs/envelope.md)."""

    version: int
    suite: str
    sender: str  # the sender's identity CID
    created: int  # seconds since the Unix epoch
    expires: int  # seconds since the Unix epoch; the envelope is valid in [created, expires)
    id: bytes  # 16 random bytes, unique per sender: the replay-cache key
    kind: str  # what the payload is, for routing
    seq: int | None  # optional per-sender sequence number
    recipients: Sequence[Recipient]  # a tuple, or `Recipients`; empty for a public envelope
    payload_size: int  # bytes of ct (encrypted) or body (public)

    @property
    def public(self) -> bool:
        """True for a signed-only envelope whose payload is in clear (``body``)."""
        return not self.recipients


@attrs.frozen
class Parsed:
    """A decoded, schema-checked envelope; nothing verified yet."""

    header: EnvelopeHeader
    header_bytes: bytes
    payload: memoryview  # ct or body: a view of the envelope's bytes
    sig: bytes


# --- the pieces every side computes the same way ----------------------------------------------


def header_dict(header: EnvelopeHeader) -> dict[str, Any]:
    value: dict[str, Any] = {
        "v": header.version,
        "suite": header.suite,
        "sender": header.sender,
        "created": header.created,
        "expires": header.expires,
        "id": header.id,
        "kind": header.kind,
    }
    if header.seq is not None:
        value["seq"] = header.seq
    if header.recipients:
        value["recipients"] = [{"kid": r.kid, "enc": r.enc, "wck": r.wck} for r in header.recipients]
    return value


# The v1 keys in DAG-CBOR order (shorter first, then bytewise), and each one's encoding.
_KEY_ORDER = tuple(key for _, key in canonical_keys(tuple(HEADER_KEYS | {"ct", "body", "sig"})))
_KEY = {key: cbor_head(3, len(key)) + key.encode() for key in _KEY_ORDER}
_ID_HEAD = cbor_head(2, ID_SIZE)
_SIG_HEAD = cbor_head(2, SIG_SIZE)


def _text(value: str) -> bytes:
    raw = value.encode("utf-8")
    return cbor_head(3, len(raw)) + raw


def _recipients_value(recipients: Sequence[Recipient]) -> bytes:
    # Each entry is {enc, kid, wck}: already in DAG-CBOR order (three letters, then bytewise).
    parts = [cbor_head(4, len(recipients))]
    for kid, enc, wck in recipients:
        parts += (b"\xa3\x63enc", cbor_head(2, len(enc)), enc, b"\x63kid", _text(kid),
                  b"\x63wck", cbor_head(2, len(wck)), wck)
    return b"".join(parts)


def header_entries(header: EnvelopeHeader) -> dict[str, bytes]:
    """Each header entry — its key and value — encoded once, for `encode_header` and
    `encode_envelope` (the canonical DAG-CBOR of `header_dict`, written for its one shape:
    the tests check it against `dag_cbor`)."""
    entries = {
        "v": _KEY["v"] + cbor_head(0, header.version),
        "id": _KEY["id"] + _ID_HEAD + header.id,
        "kind": _KEY["kind"] + _text(header.kind),
        "suite": _KEY["suite"] + _text(header.suite),
        "sender": _KEY["sender"] + _text(header.sender),
        "created": _KEY["created"] + cbor_head(0, header.created),
        "expires": _KEY["expires"] + cbor_head(0, header.expires),
    }
    if header.seq is not None:
        entries["seq"] = _KEY["seq"] + cbor_head(0, header.seq)
    if header.recipients:
        entries["recipients"] = _KEY["recipients"] + _recipients_value(header.recipients)
    return entries


def encode_header(header: EnvelopeHeader, entries: dict[str, bytes] | None = None) -> bytes:
    """The header's bytes: the AEAD associated data and the signed header."""
    entries = entries if entries is not None else header_entries(header)
    return cbor_head(5, len(entries)) + b"".join([entries[key] for key in _KEY_ORDER if key in entries])


def encode_envelope(header: EnvelopeHeader, payload: bytes, sig: bytes,
                    entries: dict[str, bytes] | None = None) -> bytes:
    """The envelope's bytes: the header entries plus ct (or body) and sig; the payload is
    copied once, by the join."""
    entries = entries if entries is not None else header_entries(header)
    payload_key = "body" if header.public else "ct"
    parts = [cbor_head(5, len(entries) + 2)]
    for key in _KEY_ORDER:
        if key == payload_key:
            parts += (_KEY[key], cbor_head(2, len(payload)), payload)
        elif key == "sig":
            parts += (_KEY["sig"], _SIG_HEAD, sig)
        elif key in entries:
            parts.append(entries[key])
    return b"".join(parts)


def to_be_signed(header_bytes: bytes, payload: bytes) -> bytes:
    return (SIG_DOMAIN + len(header_bytes).to_bytes(8, "big") + header_bytes
            + hashlib.sha256(payload).digest())


def content_keys(cek: SecretBytes) -> tuple[SecretBytes, bytes]:
    """(payload key, key commitment) from the content key: two HKDF-Expand blocks.

    AES-GCM is not key-committing: a ciphertext can be made to decrypt under two keys. The
    commitment, carried at the start of ct and so signed, pins the one content key every
    recipient must unwrap; without it a sender could wrap different keys to different
    recipients and show each a different plaintext under one envelope CID.
    """
    raw = cek.reveal()
    return (SecretBytes.copy_from(hmac.digest(raw, PAYLOAD_KEY_LABEL, "sha256")),
            hmac.digest(raw, COMMIT_LABEL, "sha256"))


def wrap_info(suite: str, envelope_id: bytes, sender: str, kid: str) -> bytes:
    parts = (suite.encode(), envelope_id, sender.encode(), kid.encode())
    return WRAP_DOMAIN + b"".join(len(p).to_bytes(2, "big") + p for p in parts)


def check_kind(kind: Any, limits: Limits) -> None:
    if not isinstance(kind, str) or not _KIND.fullmatch(kind):
        raise EnvelopeError(ErrorCode.MALFORMED, "kind must be a non-empty string of [A-Za-z0-9._:/-]")
    if len(kind) > limits.max_kind_bytes:
        raise EnvelopeError(ErrorCode.TOO_LARGE, f"kind is longer than {limits.max_kind_bytes} bytes")


def check_identity(name: str, cid: Any) -> None:
    """Sender and kids are identity CIDs spelled canonically (CIDv1, base32, sha2-256)."""
    if not isinstance(cid, str) or not is_canonical_cid(cid):
        raise EnvelopeError(ErrorCode.MALFORMED, f"{name} must be a canonical sha2-256 CIDv1 in base32")


@functools.lru_cache(maxsize=4096)
def is_canonical_cid(text: str) -> bool:
    """True iff ``text`` is a CIDv1 of a codec this node makes (dag-cbor or raw) with a
    sha2-256 multihash, spelled as `ipld.normalize_cid` spells it (``b`` + lowercase unpadded
    base32, no stray trailing bits).

    The same answer as ``ipld.normalize_cid(text) == text`` plus the codec check (the tests
    compare them), in microseconds rather than half a millisecond (multiformats checks types
    at run time).
    """
    if len(text) != _CID_TEXT_SIZE or not _CID_TEXT.fullmatch(text):
        return False
    body = text[1:].upper()
    try:
        raw = base64.b32decode(body + "=" * (-len(body) % 8))
    except binascii.Error:
        return False
    if base64.b32encode(raw).decode().rstrip("=") != body:
        return False  # non-zero trailing bits: another spelling of the same bytes
    # version 1, codec (one-byte varint), sha2-256 (0x12), digest length 32, the digest
    return raw[0] == 0x01 and raw[1] in _CID_CODECS and raw[2:4] == b"\x12\x20"


def check_time_window(created: Any, expires: Any, limits: Limits) -> None:
    for name, value in (("created", created), ("expires", expires)):
        if type(value) is not int or value < 0:
            raise EnvelopeError(ErrorCode.MALFORMED, f"{name} must be an unsigned integer")
    if expires <= created:
        raise EnvelopeError(ErrorCode.BAD_TIME_WINDOW, "expires is not after created")
    if expires - created > limits.max_lifetime:
        raise EnvelopeError(ErrorCode.BAD_TIME_WINDOW,
                            f"lifetime {expires - created} s exceeds {limits.max_lifetime} s")


# --- decoding -------------------------------------------------------------------------------


def parse(data: bytes, limits: Limits, suites: dict[str, Any]) -> Parsed:
    """Steps 1-4 of opening: size, strict decode within limits, version and suite, schema.

    Verifies nothing.
    """
    if len(data) > limits.max_envelope_bytes:
        raise EnvelopeError(ErrorCode.TOO_LARGE,
                            f"envelope of {len(data)} bytes exceeds {limits.max_envelope_bytes}")
    words = _cbor.read_common(data, limits)
    if words is not None and words[_cbor.NAMES_OK]:
        parsed = _parse_common(data, words, limits, suites)
        if parsed is not None:
            return parsed
    value, entries = read_envelope(data, limits)
    header = _check_schema(value, limits, suites)
    payload = value["ct"] if "ct" in value else value["body"]
    return Parsed(header, cut_header(data, entries, HEADER_KEYS), payload, value["sig"])


_K = _cbor.KEY_NUMBERS
_SEQ = 1 << _K["seq"]
_ENCRYPTED_KEYS = sum(1 << _K[key] for key in HEADER_KEYS - {"seq"} | {"ct", "sig"})
_PUBLIC_KEYS = sum(1 << _K[key] for key in HEADER_KEYS - {"seq", "recipients"} | {"body", "sig"})
# Word indices of what `_parse_common` reads: (a key's number, offset, length, entry start).
_NUMBER = {key: _cbor.NUMBER + k for key, k in _K.items()}
_AT = {key: _cbor.AT + k for key, k in _K.items()}
_LEN = {key: _cbor.LEN + k for key, k in _K.items()}
_ENTRY = {key: _cbor.ENTRY + k for key, k in _K.items()}
# In DAG-CBOR key order an envelope's entries run v, ct, id, seq, sig, body, kind, ... so the
# header is three runs of the envelope's bytes without ct and sig (two without body and sig).
assert _KEY_ORDER[:7] == ("v", "ct", "id", "seq", "sig", "body", "kind")


def _parse_common(data: bytes, words: list[int], limits: Limits, suites: dict[str, Any]) -> Parsed | None:
    """`parse` from envread.c's words, for an envelope of the common shape whose names it
    found valid: the rest of `_check_schema`'s rules, on the numbers and sizes, and only
    the values a header needs are cut out. None if a rule fails: `_check_schema` then
    names the fault."""
    present = words[0]
    keys = present & ~_SEQ  # seq is optional in both forms
    encrypted = keys == _ENCRYPTED_KEYS
    if not (encrypted or keys == _PUBLIC_KEYS) or words[_NUMBER["v"]] != VERSION:
        return None
    at, size = words[_AT["suite"]], words[_LEN["suite"]]
    suite_name = data[at:at + size].decode("ascii")
    suite = suites.get(suite_name)
    created, expires = words[_NUMBER["created"]], words[_NUMBER["expires"]]
    if (suite is None or words[_LEN["id"]] != ID_SIZE or words[_LEN["sig"]] != SIG_SIZE
            or words[_LEN["kind"]] > limits.max_kind_bytes
            or not created < expires <= created + limits.max_lifetime):
        return None
    payload = "ct" if encrypted else "body"
    payload_at, payload_size = words[_AT[payload]], words[_LEN[payload]]
    recipients: Sequence[Recipient] = ()
    if encrypted:
        if (words[_cbor.ENC_LEN] != suite.n_enc or words[_cbor.WCK_LEN] != WCK_SIZE
                or not CT_OVERHEAD <= payload_size <= limits.max_payload_bytes + CT_OVERHEAD):
            return None
        recipients = Recipients(data, words)
    elif payload_size > limits.max_payload_bytes:
        return None
    sender_at, id_at, kind_at = words[_AT["sender"]], words[_AT["id"]], words[_AT["kind"]]
    sig_at = words[_AT["sig"]]
    header = EnvelopeHeader(
        version=VERSION, suite=suite_name,
        sender=data[sender_at:sender_at + words[_LEN["sender"]]].decode("ascii"),
        created=created, expires=expires, id=data[id_at:id_at + ID_SIZE],
        kind=data[kind_at:kind_at + words[_LEN["kind"]]].decode("ascii"),
        seq=words[_NUMBER["seq"]] if present & _SEQ else None, recipients=recipients, payload_size=payload_size,
    )
    view, first = memoryview(data), words[_ENTRY["v"]]
    sig_entry, kind_entry = words[_ENTRY["sig"]], words[_ENTRY["kind"]]
    count = (8 if encrypted else 7) + (present & _SEQ > 0)
    if encrypted:
        runs = (bytes((0xA0 | count,)), view[first:words[_ENTRY["ct"]]], view[words[_ENTRY["id"]]:sig_entry],
                view[kind_entry:])
    else:
        runs = (bytes((0xA0 | count,)), view[first:sig_entry], view[kind_entry:])
    return Parsed(header, b"".join(runs), view[payload_at:payload_at + payload_size], data[sig_at:sig_at + SIG_SIZE])


def _check_schema(value: dict[str, Any], limits: Limits, suites: dict[str, Any]) -> EnvelopeHeader:
    """Version, suite, then each field (docs/envelope.md, "Fields")."""
    version = value.get("v")
    if type(version) is not int:
        raise EnvelopeError(ErrorCode.MALFORMED, "v must be an integer")
    if version != VERSION:
        raise EnvelopeError(ErrorCode.UNKNOWN_VERSION, f"version {version} is not supported")
    suite_name = value.get("suite")
    if not isinstance(suite_name, str):
        raise EnvelopeError(ErrorCode.MALFORMED, "suite must be a string")
    suite = suites.get(suite_name)
    if suite is None:
        raise EnvelopeError(ErrorCode.UNKNOWN_SUITE, f"suite {suite_name[:16]!r} is not supported")

    keys = set(value)
    encrypted = "recipients" in keys or "ct" in keys
    allowed = HEADER_KEYS | {"sig", "ct" if encrypted else "body"}
    required = allowed - {"seq"} - ({"recipients"} if not encrypted else set())
    if not keys <= allowed or not required <= keys:
        raise EnvelopeError(ErrorCode.MALFORMED,
                            "fields must be the v1 set: ct with recipients, or body without them")
    check_identity("sender", value["sender"])
    check_time_window(value["created"], value["expires"], limits)
    envelope_id = value["id"]
    if not isinstance(envelope_id, bytes) or len(envelope_id) != ID_SIZE:
        raise EnvelopeError(ErrorCode.MALFORMED, f"id must be {ID_SIZE} bytes")
    check_kind(value["kind"], limits)
    seq = value.get("seq")
    if seq is not None and (type(seq) is not int or seq < 0):
        raise EnvelopeError(ErrorCode.MALFORMED, "seq must be an unsigned integer")
    sig = value["sig"]
    if not isinstance(sig, bytes) or len(sig) != SIG_SIZE:
        raise EnvelopeError(ErrorCode.MALFORMED, f"sig must be {SIG_SIZE} bytes")

    recipients: tuple[Recipient, ...] = ()
    if encrypted:
        recipients = _check_recipients(value["recipients"], suite.n_enc, limits)
        payload = value["ct"]
        if not isinstance(payload, memoryview) or len(payload) < CT_OVERHEAD:
            raise EnvelopeError(ErrorCode.MALFORMED, "ct must hold at least the commitment and tag")
        if len(payload) - CT_OVERHEAD > limits.max_payload_bytes:
            raise EnvelopeError(ErrorCode.TOO_LARGE, f"payload exceeds {limits.max_payload_bytes} bytes")
    else:
        payload = value["body"]
        if not isinstance(payload, memoryview):
            raise EnvelopeError(ErrorCode.MALFORMED, "body must be bytes")
        if len(payload) > limits.max_payload_bytes:
            raise EnvelopeError(ErrorCode.TOO_LARGE, f"payload exceeds {limits.max_payload_bytes} bytes")
    return EnvelopeHeader(
        version=version, suite=suite_name, sender=value["sender"], created=value["created"],
        expires=value["expires"], id=envelope_id, kind=value["kind"], seq=seq,
        recipients=recipients, payload_size=len(payload),
    )


def _check_recipients(items: Any, n_enc: int, limits: Limits) -> tuple[Recipient, ...]:
    if not isinstance(items, (list, RecipientRecords)) or not items:
        raise EnvelopeError(ErrorCode.MALFORMED, "recipients must be a non-empty list")
    if len(items) > limits.max_recipients:
        raise EnvelopeError(ErrorCode.TOO_MANY_RECIPIENTS,
                            f"{len(items)} recipients exceed {limits.max_recipients}")
    if type(items) is RecipientRecords:
        checked = _checked_records(items, n_enc)
        if checked is not None:
            return checked
    out = []  # one by one: the general case, and the one that names the first fault
    seen = set()
    for item in items:
        if type(item) is not dict or item.keys() != _RECIPIENT_KEYS:
            raise EnvelopeError(ErrorCode.MALFORMED, "a recipient must be {kid, enc, wck}")
        kid, enc, wck = item["kid"], item["enc"], item["wck"]
        check_identity("kid", kid)
        if kid in seen:
            raise EnvelopeError(ErrorCode.MALFORMED, "a kid appears twice in recipients")
        seen.add(kid)
        if not isinstance(enc, bytes) or len(enc) != n_enc:
            raise EnvelopeError(ErrorCode.MALFORMED, f"enc must be {n_enc} bytes for this suite")
        if not isinstance(wck, bytes) or len(wck) != WCK_SIZE:
            raise EnvelopeError(ErrorCode.MALFORMED, f"wck must be {WCK_SIZE} bytes")
        out.append(Recipient(kid, enc, wck))
    return tuple(out)


def _checked_records(records: RecipientRecords, n_enc: int) -> tuple[Recipient, ...] | None:
    """The recipients if the loop in `_check_recipients` would accept them all, else None.

    The reader already guarantees each entry's keys and types and that all sizes are
    equal, so what is left is checked on whole columns, in calls that iterate in C (a
    Python loop per entry cost more than the rest of opening, at 50 recipients). A fault
    is left to the loop, which names the first one.
    """
    kids = records.kids
    if (len(records.encs[0]) != n_enc or len(records.wcks[0]) != WCK_SIZE
            or not all(map(is_canonical_cid, kids)) or len(set(kids)) != len(kids)):
        return None
    return tuple(map(Recipient, kids, records.encs, records.wcks))
