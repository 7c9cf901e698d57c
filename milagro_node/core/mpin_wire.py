"""What D-TAs, MFA servers and clients send each other for M-Pin — a sans-IO core.

Layer 1 (protocol cores): no I/O, no clock (callers pass ``now``, Unix seconds). The group
maths is `milagro_node.core.mpin`; this module is the wire around it.

Signed statements (grants and login assertions). A *grant* authorises the enrolment of one
user ID: an admin of a federation member signs it with the node's identity key and the user
presents it to every D-TA. An *assertion* is an MFA node's word that a user just logged in;
a relying party checks it with that node's public identity log. Both are one DAG-CBOR map::

    {v: 1, kind: "mpin.grant" | "mpin.assertion", issuer: <identity CID>, subject: <user ID>,
     created: <s>, expires: <s>, nonce: <16 bytes>, [extra fields], sig: <Ed25519, 64 bytes>}

A grant for a key-escrow-less (DVS) enrolment also carries ``device_key``: the device's
public key Pa (96-byte compressed G2, `grant_device_key`). The D-TAs then deal shares for
the identity ID ‖ Pa, and an MFA node takes Pa from the grant, never from the D-TAs.

``sig`` signs ``STATEMENT_DOMAIN ‖ DAG-CBOR(the map without sig)``. Verification order:
size, canonical decode, fields, kind, signature, then the time window — so nothing about
an unsigned statement is believed.

Batch-signed statements: an MFA node under load signs the assertions that queued meanwhile
with one signature (one HSM operation instead of one per login). Such a statement also
carries ``batch: [index, size, [path...]]``, its place in a Merkle tree of `size` statements
(`merkle`, RFC 9162; a leaf is the statement's own ``STATEMENT_DOMAIN ‖ DAG-CBOR(map
without sig and batch)``), and ``sig`` signs ``BATCH_DOMAIN ‖ size (2 bytes, big-endian) ‖
root``, so a member cannot claim another tree. The other leaves are hashes of statements
that hold a 16-byte random nonce: a path reveals nothing of other users' logins. A relying
party checks both forms with `verify_statement`.

Sealed shares. A D-TA answers an enrolment or a permit request with the share HPKE-sealed
(RFC 9180 base mode, DHKEM(X25519, HKDF-SHA256), ChaCha20-Poly1305) to a one-time X25519
key the client sent with the request; ``info`` binds the purpose, the user ID, the D-TA's
identity and the day, so a sealed share cannot be replayed as another. Shares are secret
(the sum of all n is the user's client secret): they travel only sealed.

Server-secret shares go from D-TA to MFA node inside encrypted envelopes: the MFA node
sends kind `KIND_SERVER_SHARE_REQUEST` (empty body) to each D-TA, which answers with kind
`KIND_SERVER_SHARE` carrying ``{v: 1, share: <96-byte G2>}``.

Errors: `WireError` with a code per failure (below); messages never carry secrets.
"""

from __future__ import annotations

import os
import unicodedata
from collections.abc import Callable
from typing import Any

import attrs

from milagro_node.secret_memory import SecretBytes

from . import hpke, ipld, merkle
from .identity._keys import signature_valid

__all__ = [
    "ASSERTION",
    "BatchProof",
    "GRANT",
    "KIND_SERVER_SHARE",
    "KIND_SERVER_SHARE_REQUEST",
    "MAX_STATEMENT_BYTES",
    "MAX_USER_ID_BYTES",
    "Statement",
    "StatementDraft",
    "WireError",
    "batch_signing_input",
    "check_user_id",
    "grant_device_key",
    "open_share",
    "parse_server_share",
    "parse_statement",
    "prepare_statement",
    "seal_share",
    "server_share_body",
    "share_info",
    "verify_statement",
]

GRANT = "mpin.grant"
DEVICE_KEY = "device_key"  # a grant's field: the DVS device's public key Pa
DEVICE_KEY_BYTES = 96
ASSERTION = "mpin.assertion"
STATEMENT_DOMAIN = b"milagro-mpin-statement-v1\x00"
BATCH_DOMAIN = b"milagro-mpin-statement-batch-v1\x00"
MAX_STATEMENT_BYTES = 2048
MAX_BATCH = 64  # statements under one signature: a path of at most 6 hashes
_MAX_PATH = (MAX_BATCH - 1).bit_length()
_SIGNATURE_ROOM = 80 + 16 + _MAX_PATH * 34  # sig, and the largest batch field, once encoded
MAX_USER_ID_BYTES = 256
MAX_TTL = 30 * 86400
CLOCK_SKEW = 60  # seconds a statement may claim to be from the future
NONCE_BYTES = 16
_CORE = ("v", "kind", "issuer", "subject", "created", "expires", "nonce", "sig", "batch")

KIND_SERVER_SHARE_REQUEST = "dta.server-share-request"
KIND_SERVER_SHARE = "mfa.server-share"

SHARE_SUITE = hpke.Suite(hpke.DHKEM_X25519, hpke.CHACHA20_POLY1305)
SHARE_PURPOSES = ("client-share", "time-permit")
_ENC_BYTES = 32


class WireError(Exception):
    """One type for every refusal; ``code`` says which (``mpin-wire-*``, see `CODES`)."""

    CODES = ("malformed", "bad-kind", "bad-signature", "expired", "not-yet-valid", "bad-user-id", "sealed")

    def __init__(self, code: str, message: str) -> None:
        assert code in self.CODES, code
        super().__init__(message)
        self.code = f"mpin-wire-{code}"
        self.message = message


def check_user_id(user_id: object) -> str:
    """A user ID: 1..256 bytes of UTF-8, NFC, no control characters. Returns it unchanged."""
    if not isinstance(user_id, str) or not user_id:
        raise WireError("bad-user-id", "a user ID is a non-empty string")
    if len(user_id.encode("utf-8", "surrogatepass")) > MAX_USER_ID_BYTES:
        raise WireError("bad-user-id", f"a user ID is at most {MAX_USER_ID_BYTES} bytes of UTF-8")
    if user_id.isascii() and user_id.isprintable():  # the common case, checked once per login
        return user_id  # ASCII is NFC, and its only category-C characters are the controls
    if any(unicodedata.category(c).startswith("C") for c in user_id):
        raise WireError("bad-user-id", "a user ID has no control, format or unassigned characters")
    if unicodedata.normalize("NFC", user_id) != user_id:
        raise WireError("bad-user-id", "a user ID must be in Unicode NFC form")
    return user_id


# --------------------------------------------------------------------------- statements


@attrs.frozen
class Statement:
    """A decoded statement; `verify_statement` returns one only once it is checked."""

    kind: str
    issuer: str
    subject: str
    created: int
    expires: int
    nonce: bytes = attrs.field(repr=False)
    extra: dict[str, Any]
    data: bytes = attrs.field(repr=False)  # the exact signed bytes, as sent

    @property
    def cid(self) -> str:
        return ipld.cid_for(self.data, "dag-cbor")


@attrs.frozen
class StatementDraft:
    """A statement complete but for its signature (which an HSM makes)."""

    fields: dict[str, Any] = attrs.field(repr=False)
    to_be_signed: bytes = attrs.field(repr=False)

    def finish(self, signature: bytes, batch: BatchProof | None = None) -> Statement:
        """The signed statement. Its fields were checked by `prepare_statement`, so they are
        not parsed again (an assertion is made per login); the signature is the signer's
        word, checked by whoever verifies it. `batch`: this draft's proof from
        `batch_signing_input`, when `signature` signs a batch."""
        if not isinstance(signature, (bytes, bytearray)) or len(signature) != 64:
            raise WireError("bad-signature", "an Ed25519 signature is 64 bytes")
        f = self.fields
        extra = {k: v for k, v in f.items() if k not in _CORE}
        signed = {**f, "sig": bytes(signature)}
        if batch is not None:
            signed["batch"] = [batch.index, batch.size, batch.path]
        return Statement(f["kind"], f["issuer"], f["subject"], f["created"], f["expires"], f["nonce"], extra,
                         ipld.encode(signed))


@attrs.frozen
class BatchProof:
    """Where one statement sits in a batch: its leaf's index, the batch size, the path."""

    index: int
    size: int
    path: list[bytes]


def batch_signing_input(drafts: list[StatementDraft]) -> tuple[bytes, list[BatchProof | None]]:
    """What to sign for `drafts` at once, and each one's proof for `StatementDraft.finish`.

    One draft: its own ``to_be_signed`` and no proof (the plain form). More (at most
    `MAX_BATCH`): `_batch_message` of the Merkle tree over them.
    """
    if not 1 <= len(drafts) <= MAX_BATCH:
        raise WireError("malformed", f"a batch holds 1..{MAX_BATCH} statements")
    if len(drafts) == 1:
        return drafts[0].to_be_signed, [None]
    root, paths = merkle.root_and_paths([merkle.leaf_hash(d.to_be_signed) for d in drafts])
    return _batch_message(len(drafts), root), [BatchProof(i, len(drafts), path) for i, path in enumerate(paths)]


def _batch_message(size: int, root: bytes) -> bytes:
    return BATCH_DOMAIN + size.to_bytes(2, "big") + root


def prepare_statement(
    kind: str,
    *,
    issuer: str,
    subject: str,
    created: int,
    ttl: int,
    extra: dict[str, Any] | None = None,
    randbytes: Callable[[int], bytes] = os.urandom,
) -> StatementDraft:
    """A grant or an assertion by `issuer` about `subject`, valid `ttl` seconds from `created`."""
    if kind not in (GRANT, ASSERTION):
        raise WireError("bad-kind", f"unknown statement kind {kind!r}")
    if not isinstance(ttl, int) or not 1 <= ttl <= MAX_TTL:
        raise WireError("malformed", f"ttl must be 1..{MAX_TTL} seconds")
    extra = dict(extra or {})
    if set(extra) & set(_CORE):
        raise WireError("malformed", "extra fields may not replace the statement's own")
    try:
        issuer = ipld.normalize_cid(issuer)
    except Exception:  # multiformats raises its own error types for a bad CID string
        raise WireError("malformed", "issuer is not an identity CID") from None
    fields = {"v": 1, "kind": kind, "issuer": issuer, "subject": check_user_id(subject),
              "created": int(created), "expires": int(created) + ttl, "nonce": randbytes(NONCE_BYTES), **extra}
    body = ipld.encode(fields)
    if len(body) + _SIGNATURE_ROOM > MAX_STATEMENT_BYTES:
        raise WireError("malformed", f"a statement is at most {MAX_STATEMENT_BYTES} bytes")
    return StatementDraft(fields, STATEMENT_DOMAIN + body)


def parse_statement(data: object, *, kind: str) -> Statement:
    """Decode and check the structure of a statement of `kind` (not its signature or time)."""
    return _parse(data, kind)[0]


def _parse(data: object, kind: str) -> tuple[Statement, dict[str, Any], BatchProof | None]:
    """`parse_statement`, and what `verify_statement` needs of it: the decoded fields and
    the batch proof (None for a statement signed alone)."""
    if not isinstance(data, (bytes, bytearray)):
        raise WireError("malformed", "a statement is bytes")
    try:
        fields = ipld.decode(bytes(data), max_size=MAX_STATEMENT_BYTES)
    except ipld.IpldError as exc:
        raise WireError("malformed", f"not a statement: {exc}") from None
    if not isinstance(fields, dict) or fields.get("v") != 1:
        raise WireError("malformed", "a statement is a map with v = 1")
    if fields.get("kind") != kind:
        raise WireError("bad-kind", f"expected a {kind!r} statement, got {str(fields.get('kind'))[:40]!r}")
    try:
        issuer = ipld.normalize_cid(fields.get("issuer"))
    except Exception:  # multiformats raises its own error types for a bad CID string
        raise WireError("malformed", "issuer is not an identity CID") from None
    created, expires, nonce, sig = (fields.get(k) for k in ("created", "expires", "nonce", "sig"))
    if not all(isinstance(t, int) and not isinstance(t, bool) for t in (created, expires)) or not (
        0 <= created < expires <= created + MAX_TTL
    ):
        raise WireError("malformed", "created/expires are not a valid window")
    if not isinstance(nonce, bytes) or len(nonce) != NONCE_BYTES or not isinstance(sig, bytes) or len(sig) != 64:
        raise WireError("malformed", "nonce or signature has the wrong type or size")
    proof = _batch_proof(fields["batch"]) if "batch" in fields else None
    extra = {k: v for k, v in fields.items() if k not in _CORE}
    statement = Statement(kind, issuer, check_user_id(fields.get("subject")), created, expires, nonce, extra,
                          bytes(data))
    return statement, fields, proof


def _batch_proof(field: object) -> BatchProof:
    """The ``batch`` field's shape: [index, size 2..MAX_BATCH, [up to 6 hashes of 32 bytes]]."""
    if isinstance(field, list) and len(field) == 3:
        index, size, path = field
        if (all(isinstance(n, int) and not isinstance(n, bool) for n in (index, size))
                and 2 <= size <= MAX_BATCH and 0 <= index < size and isinstance(path, list)
                and len(path) <= _MAX_PATH and all(isinstance(h, bytes) and len(h) == 32 for h in path)):
            return BatchProof(index, size, path)
    raise WireError("malformed", f"batch is [index, size 2..{MAX_BATCH}, [32-byte hashes]]")


def verify_statement(data: object, *, kind: str, sign_key: bytes, now: int) -> Statement:
    """Check a statement of `kind` signed by `sign_key` (the issuer's current Ed25519 key),
    alone or in a batch."""
    statement, fields, proof = _parse(data, kind)
    sig = fields.pop("sig")
    fields.pop("batch", None)
    signed = STATEMENT_DOMAIN + ipld.encode(fields)
    if proof is not None:
        try:
            root = merkle.root_from_path(merkle.leaf_hash(signed), proof.index, proof.size, proof.path)
            signed = _batch_message(proof.size, root)
        except merkle.ProofError as exc:
            raise WireError("bad-signature", f"the statement's batch proof does not fit: {exc}") from None
    if not signature_valid(sign_key, sig, signed):
        raise WireError("bad-signature", "the statement's signature does not verify with the issuer's key") from None
    if now < statement.created - CLOCK_SKEW:
        raise WireError("not-yet-valid", "the statement is dated in the future")
    if now >= statement.expires:
        raise WireError("expired", "the statement has expired")
    return statement


def grant_device_key(grant: Statement) -> bytes | None:
    """The grant's DVS device key Pa (96 bytes, not yet decoded: `mpin.decode_g2`), or None
    for a plain enrolment."""
    key = grant.extra.get(DEVICE_KEY)
    if key is None:
        return None
    if not isinstance(key, bytes) or len(key) != DEVICE_KEY_BYTES:
        raise WireError("malformed", f"a grant's {DEVICE_KEY} is {DEVICE_KEY_BYTES} bytes (a compressed G2 point)")
    return key


# --------------------------------------------------------------------------- sealed shares


def share_info(purpose: str, user_id: str, dta: str, day: int | None = None) -> bytes:
    """HPKE ``info`` for one share: what it is, whose, from which D-TA, for which day."""
    if purpose not in SHARE_PURPOSES:
        raise WireError("malformed", f"unknown share purpose {purpose!r}")
    return ipld.encode({"purpose": purpose, "user": user_id, "dta": dta, "day": -1 if day is None else day})


def seal_share(reply_key: object, info: bytes, share: SecretBytes) -> bytes:
    """``enc ‖ ciphertext`` of `share` for the client's one-time X25519 public key."""
    if not isinstance(reply_key, (bytes, bytearray)) or len(reply_key) != 32:
        raise WireError("malformed", "reply_key must be a 32-byte X25519 public key")
    try:
        enc, ct = hpke.seal_secret(SHARE_SUITE, bytes(reply_key), info, share)
    except hpke.HpkeError as exc:
        raise WireError("malformed", f"reply_key is not usable: {exc}") from None
    return enc + ct


def open_share(sealed: object, reply_secret: hpke.X25519SecretKey, info: bytes) -> SecretBytes:
    """The share a D-TA sealed for us; ``mpin-wire-sealed`` if it does not open."""
    if not isinstance(sealed, (bytes, bytearray)) or len(sealed) <= _ENC_BYTES + 16:
        raise WireError("sealed", "a sealed share is enc (32 bytes) then a ciphertext")
    try:
        return hpke.open_secret(SHARE_SUITE, bytes(sealed[:_ENC_BYTES]), reply_secret, info, bytes(sealed[_ENC_BYTES:]))
    except hpke.HpkeError:
        raise WireError("sealed", "the sealed share does not open (wrong key, D-TA, user or day)") from None


# --------------------------------------------------------------------------- server shares


def server_share_body(share: bytes) -> bytes:
    return ipld.encode({"v": 1, "share": bytes(share)})


def parse_server_share(body: object) -> bytes:
    """The 96-byte compressed G2 share from a `KIND_SERVER_SHARE` body (decode it with mpin.decode_g2)."""
    try:
        fields = ipld.decode(bytes(body), max_size=256)  # type: ignore[arg-type]
    except (ipld.IpldError, TypeError):
        raise WireError("malformed", "a server share body is DAG-CBOR") from None
    share = fields.get("share") if isinstance(fields, dict) and fields.get("v") == 1 else None
    if not isinstance(share, bytes) or len(share) != 96:
        raise WireError("malformed", "a server share body is {v: 1, share: 96 bytes}")
    return share
