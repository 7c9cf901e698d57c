"""A small client for a node's websocket JSON-RPC API (used by the CLI and tests).

    async with connect(url, token=token) as api:
        status = await api.call("node.status")

A JSON-RPC error reply raises `ApiCallError` with its code, message and data.
"""

from __future__ import annotations

import itertools
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from trio_websocket import ConnectionClosed, HandshakeError, WebSocketConnection, open_websocket_url


class ApiCallError(Exception):
    def __init__(self, code: int, message: str, data: Any = None) -> None:
        super().__init__(f"{message} (JSON-RPC error {code})")
        self.code = code
        self.message = message
        self.data = data


class ApiUnavailable(Exception):
    """Nobody answered at the URL, or the connection broke."""


class NodeApi:
    def __init__(self, ws: WebSocketConnection) -> None:
        self._ws = ws
        self._ids = itertools.count(1)

    async def call(self, method: str, **params: Any) -> Any:
        request_id = next(self._ids)
        await self._ws.send_message(
            json.dumps({"jsonrpc": "2.0", "id": request_id, "method": method, "params": params})
        )
        while True:
            reply = json.loads(await self._ws.get_message())
            if reply.get("id") in (request_id, None) and ("result" in reply or "error" in reply):
                break  # skip notifications; a null id is an error about this message
        if "error" in reply:
            err = reply["error"]
            raise ApiCallError(err.get("code", 0), err.get("message", ""), err.get("data"))
        return reply["result"]


#: The largest reply this client takes. A node's replies are not bounded by its own
#: ``api.max_message_bytes`` (that bounds requests): an inbox page with 1 MiB envelopes in it
#: is several MiB of base64, above trio-websocket's default of 1 MiB.
MAX_REPLY_BYTES = 64 * 1024 * 1024


@asynccontextmanager
async def connect(url: str, *, token: str | None = None, timeout: float = 10,
                  max_reply_bytes: int = MAX_REPLY_BYTES) -> AsyncIterator[NodeApi]:
    headers = [(b"authorization", f"Bearer {token}".encode())] if token else None
    try:
        async with open_websocket_url(url, extra_headers=headers, connect_timeout=timeout,
                                      max_message_size=max_reply_bytes) as ws:
            yield NodeApi(ws)
    except (OSError, HandshakeError) as exc:
        raise ApiUnavailable(f"no node answers at {url} ({type(exc).__name__}: {exc})") from None
    except ConnectionClosed as exc:
        raise ApiUnavailable(f"the node at {url} closed the connection ({exc.reason})") from None
