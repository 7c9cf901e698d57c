"""Receipts: another identity co-signs an event's CID.

A receipt ``{v: 1, event: <link>, signer: <link to the signer's identity>, sig}`` says "the
identity `signer` has seen the event `event`". Federation members witness each other's events
this way: a node that holds receipts from several members for an event knows those members
saw that event at that sequence number, which makes a later fork visible to all of them.

The signature covers ``RECEIPT_DOMAIN || DAG-CBOR(receipt without "sig")`` and is checked
against the signer's *current* signing key, which the caller supplies (from its `LogBook`
or a verified log): this core never fetches anything. A receipt says nothing about whether
the event itself is valid; verify the event on its own.
"""

from __future__ import annotations

from collections.abc import Callable

import attrs

from ._codec import block_cid, decode_block, encode_block, link, link_text
from ._errors import IdentityError
from ._events import VERSION
from ._keys import ED25519_KEY_SIZE, ED25519_SIG_SIZE, signature_valid

__all__ = [
    "MAX_RECEIPT_BYTES",
    "RECEIPT_DOMAIN",
    "Receipt",
    "ReceiptDraft",
    "make_receipt",
    "parse_receipt",
    "prepare_receipt",
    "verify_receipt",
]

RECEIPT_DOMAIN = b"milagro-identity/v1/receipt\x00"
MAX_RECEIPT_BYTES = 512  # a receipt is about 160 bytes
_FIELDS = frozenset({"v", "event", "signer", "sig"})


@attrs.frozen
class Receipt:
    """A decoded receipt. Only `verify_receipt` (or `LogBook.add_receipt`) checks ``sig``."""

    cid: str
    bytes: bytes = attrs.field(repr=False)
    event: str  # CID of the event witnessed
    signer: str  # identity (inception CID) of the witness
    sig: bytes = attrs.field(repr=False)


@attrs.frozen
class ReceiptDraft:
    """A receipt complete but for its signature; ``finish`` checks it with ``signer_key``."""

    fields: dict[str, object] = attrs.field(repr=False)
    signer_key: bytes
    to_be_signed: bytes = attrs.field(repr=False)

    def finish(self, signature: bytes) -> Receipt:
        if not isinstance(signature, (bytes, bytearray)) or len(signature) != ED25519_SIG_SIZE:
            raise IdentityError("bad-signature", f"an Ed25519 signature is {ED25519_SIG_SIZE} bytes")
        return verify_receipt(encode_block({**self.fields, "sig": bytes(signature)}), self.signer_key)


def prepare_receipt(event: str, *, signer: str, signer_key: bytes) -> ReceiptDraft:
    """Draft a receipt of ``event`` by identity ``signer``, whose current key is ``signer_key``."""
    if not isinstance(signer_key, (bytes, bytearray)) or len(signer_key) != ED25519_KEY_SIZE:
        raise IdentityError("malformed", f"signer_key must be {ED25519_KEY_SIZE} bytes")
    fields = {"v": VERSION, "event": link(event, "event"), "signer": link(signer, "signer")}
    return ReceiptDraft(fields, bytes(signer_key), RECEIPT_DOMAIN + encode_block(fields))


def make_receipt(
    sign: Callable[[bytes], bytes], event: str, *, signer: str, signer_key: bytes
) -> Receipt:
    """`prepare_receipt` and finish it with ``sign(to_be_signed) -> signature``."""
    draft = prepare_receipt(event, signer=signer, signer_key=signer_key)
    return draft.finish(sign(draft.to_be_signed))


def parse_receipt(data: bytes, *, max_size: int = MAX_RECEIPT_BYTES) -> Receipt:
    """Decode a receipt and check its form (not its signature)."""
    fields = decode_block(data, max_size, "receipt")
    if not isinstance(fields, dict) or fields.keys() != _FIELDS:
        raise IdentityError("malformed", f"a receipt is a map with exactly {sorted(_FIELDS)}")
    if type(fields["v"]) is not int or fields["v"] < 0:
        raise IdentityError("malformed", "v must be an unsigned integer")
    if fields["v"] != VERSION:
        raise IdentityError("unsupported-version", f"receipt version {fields['v']}")
    sig = fields["sig"]
    if not isinstance(sig, bytes) or len(sig) != ED25519_SIG_SIZE:
        raise IdentityError("malformed", f"sig must be {ED25519_SIG_SIZE} bytes")
    return Receipt(
        cid=block_cid(bytes(data)),
        bytes=bytes(data),
        event=link_text(fields["event"], "event"),
        signer=link_text(fields["signer"], "signer"),
        sig=sig,
    )


def verify_receipt(receipt: bytes | Receipt, signer_key: bytes) -> Receipt:
    """Check a receipt's signature under ``signer_key`` (the signer's current key)."""
    # A Receipt value is re-read from its bytes: what is verified is what would be forwarded.
    receipt = parse_receipt(receipt.bytes if isinstance(receipt, Receipt) else receipt)
    if not isinstance(signer_key, (bytes, bytearray)) or len(signer_key) != ED25519_KEY_SIZE:
        raise IdentityError("malformed", f"signer_key must be {ED25519_KEY_SIZE} bytes")
    unsigned = {
        "v": VERSION,
        "event": link(receipt.event, "event"),
        "signer": link(receipt.signer, "signer"),
    }
    if not signature_valid(bytes(signer_key), receipt.sig, RECEIPT_DOMAIN + encode_block(unsigned)):
        raise IdentityError("bad-signature", f"receipt of {receipt.event} is not signed by {receipt.signer}")
    return receipt
