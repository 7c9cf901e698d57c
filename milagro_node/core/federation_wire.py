"""What federation members say to each other besides envelopes: topics and request/response.

Sans-IO core: names and DAG-CBOR documents, no network. The envelope router speaks it
through the libp2p adapter; docs/federation.md specifies it.

Gossip: one topic per federation, ``/milagro/<federation>/envelopes/1``; every message on it
is one envelope v1 (docs/envelope.md). Identity logs travel as public envelopes of kind
``pki.announce`` whose body is an exported log (docs/identity.md, "Export").

Request/response protocols (one request, one response, each a DAG-CBOR map):

    /milagro/fetch/1.0.0     {"log": identity}      -> {"log": [event, ...]}
                             {"block": cid}         -> {"block": bytes}
                             {"since": seq}         -> {"sent": [[seq, cid], ...]}   envelopes the
                                                       asker is a recipient of, seq > since
    /milagro/deliver/1.0.0   envelope bytes         -> {"ok": true}                  the ack
    /milagro/ack/1.0.0       {"cids": [cid, ...]}   -> {"ok": true}                  gossip received
    any                                             -> {"error": code, "message": text}

A response never carries a secret: logs and envelopes are public or encrypted.
"""

from __future__ import annotations

from typing import Any

from . import ipld

FETCH = "/milagro/fetch/1.0.0"
DELIVER = "/milagro/deliver/1.0.0"
ACK = "/milagro/ack/1.0.0"
ANNOUNCE_KIND = "pki.announce"

MAX_REQUEST_BYTES = 4096
MAX_FETCH_RESPONSE_BYTES = 4 << 20
MAX_SENT_LISTED = 1000
MAX_ACKS = 64  # CIDs per ack request (64 base32 CIDs stay under MAX_REQUEST_BYTES)


class WireError(ValueError):
    """A request or response that is not one of the documents above."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message


def envelope_topic(federation: str) -> str:
    return f"/milagro/{federation}/envelopes/1"


def encode(doc: dict[str, Any]) -> bytes:
    return ipld.encode(doc)


def decode_map(data: bytes, allowed: dict[str, type]) -> tuple[str, Any]:
    """The one entry of a one-entry map whose key is in ``allowed`` with a value of its type."""
    try:
        doc = ipld.decode(bytes(data))
    except Exception:
        raise WireError("malformed", "not a canonical DAG-CBOR document") from None
    if not isinstance(doc, dict) or len(doc) != 1:
        raise WireError("malformed", "expected a map with one entry")
    (key, value), = doc.items()
    expected = allowed.get(key)
    if expected is None or not isinstance(value, expected) or (isinstance(value, bool) and expected is not bool):
        raise WireError("malformed", f"unexpected entry {key!r}")
    return key, value


def fetch_request(data: bytes) -> tuple[str, Any]:
    key, value = decode_map(data, {"log": str, "block": str, "since": int})
    if key == "since" and value < -1:
        raise WireError("malformed", "since must be -1 or more")
    return key, value


def ack_request(data: bytes) -> list[str]:
    _, cids = decode_map(data, {"cids": list})
    if len(cids) > MAX_ACKS or not all(isinstance(cid, str) for cid in cids):
        raise WireError("malformed", f"cids must be a list of at most {MAX_ACKS} CID strings")
    return cids


def error_response(code: str, message: str) -> bytes:
    return encode({"error": code, "message": message[:200]})


OK = encode({"ok": True})


def read_response(data: bytes, key: str, kind: type) -> Any:
    """The ``key`` entry of a response, or WireError with the peer's error code."""
    try:
        doc = ipld.decode(bytes(data))
    except Exception:
        raise WireError("malformed", "the response is not canonical DAG-CBOR") from None
    if isinstance(doc, dict) and "error" in doc:
        raise WireError(str(doc.get("error"))[:64], str(doc.get("message", ""))[:200])
    if not isinstance(doc, dict) or not isinstance(doc.get(key), kind):
        raise WireError("malformed", f"the response has no {key!r}")
    return doc[key]
