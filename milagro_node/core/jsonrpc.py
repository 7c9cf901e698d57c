"""JSON-RPC 2.0 framing for the node's websocket API (sans-IO).

`parse_request(text)` turns one websocket text message into a `RpcRequest`
or raises `RpcError` carrying the JSON-RPC error to send back; `result()`,
`error()` and `notification()` build the outgoing texts. Batches are not
supported (one request per message keeps rate limiting honest).

Error codes (also in docs/api.md): the JSON-RPC standard ones, plus
-32001 unauthorized, -32002 rate limited, -32010 the node could not serve the
request (``data.code`` tells why, e.g. ``store-error``, ``actor-crashed``).
"""

from __future__ import annotations

import json
from typing import Any

import attrs

PARSE_ERROR = -32700
INVALID_REQUEST = -32600
METHOD_NOT_FOUND = -32601
INVALID_PARAMS = -32602
INTERNAL_ERROR = -32603
UNAUTHORIZED = -32001
RATE_LIMITED = -32002
NODE_ERROR = -32010

RequestId = str | int | None


class RpcError(Exception):
    def __init__(self, code: int, message: str, *, id: RequestId = None, data: Any = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.id = id
        self.data = data

    def to_text(self) -> str:
        return error(self.id, self.code, self.message, self.data)


@attrs.frozen
class RpcRequest:
    method: str
    params: dict[str, Any]
    id: RequestId  # None for a notification (no reply expected)


def parse_request(text: str | bytes) -> RpcRequest:
    try:
        doc = json.loads(text)
    except (ValueError, UnicodeDecodeError):
        raise RpcError(PARSE_ERROR, "message is not valid JSON") from None
    if not isinstance(doc, dict):
        raise RpcError(INVALID_REQUEST, "expected a JSON object (batches are not supported)")
    id = doc.get("id")
    if not (id is None or isinstance(id, str) or (isinstance(id, int) and not isinstance(id, bool))):
        raise RpcError(INVALID_REQUEST, "id must be a string, an integer or null")
    if doc.get("jsonrpc") != "2.0":
        raise RpcError(INVALID_REQUEST, 'jsonrpc must be "2.0"', id=id)
    method = doc.get("method")
    if not isinstance(method, str) or not method:
        raise RpcError(INVALID_REQUEST, "method must be a non-empty string", id=id)
    params = doc.get("params", {})
    if not isinstance(params, dict):
        raise RpcError(INVALID_PARAMS, "params must be an object (by-name parameters)", id=id)
    return RpcRequest(method, params, id)


def result(id: RequestId, value: Any) -> str:
    return json.dumps({"jsonrpc": "2.0", "id": id, "result": value})


def error(id: RequestId, code: int, message: str, data: Any = None) -> str:
    err: dict[str, Any] = {"code": code, "message": message}
    if data is not None:
        err["data"] = data
    return json.dumps({"jsonrpc": "2.0", "id": id, "error": err})


def notification(method: str, params: dict[str, Any]) -> str:
    return json.dumps({"jsonrpc": "2.0", "method": method, "params": params})
