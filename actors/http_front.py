"""The API port's front door: static files for the admin console, websocket upgrades for the API.

Part of the api-gateway actor. trio-websocket answers every plain (non-upgrade) HTTP request
with 400 before a handler sees it, so it cannot serve the console page itself. Here each
connection's request head is read first (at most `MAX_HEAD_BYTES`, within `HEAD_TIMEOUT_S`)
and parsed with h11:

- ``Upgrade: websocket`` → the bytes already read are replayed into trio-websocket
  (`ReplayStream`, `trio_websocket.wrap_server_stream`), which does the handshake;
- ``GET``/``HEAD`` of a file of the console (`STATIC_DIR`, a fixed list read at start: no
  path from the request ever reaches the file system) → the file, with headers that keep the
  page to itself (no framing, no inline or remote script: a strict CSP);
- anything else → 404 or 405, and the connection is closed.

The page holds no data: everything it shows comes over the websocket after ``auth.login``.
"""

from __future__ import annotations

import mimetypes
from collections.abc import Awaitable, Callable
from pathlib import Path

import attrs
import h11
import trio
from trio_websocket import WebSocketRequest, wrap_server_stream

import milagro_node

__all__ = ["HEAD_TIMEOUT_S", "MAX_HEAD_BYTES", "STATIC_DIR", "FrontDoor", "StaticFiles"]

STATIC_DIR = Path(milagro_node.__file__).resolve().parent / "console"
MAX_HEAD_BYTES = 16 * 1024
HEAD_TIMEOUT_S = 10.0
SECURITY_HEADERS = (
    (b"content-security-policy",
     b"default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; "
     b"frame-ancestors 'none'; base-uri 'none'; form-action 'none'"),
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"no-referrer"),
    (b"cache-control", b"no-store"),
)


@attrs.frozen
class StaticFiles:
    """The console's files, read once: URL path -> (content type, bytes)."""

    files: dict[str, tuple[str, bytes]]

    @classmethod
    def load(cls, root: Path = STATIC_DIR) -> StaticFiles:
        files: dict[str, tuple[str, bytes]] = {}
        if root.is_dir():
            for path in sorted(p for p in root.iterdir() if p.is_file() and not p.name.startswith(".")):
                kind = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
                if kind.startswith("text/") or kind in ("application/javascript", "image/svg+xml"):
                    kind += "; charset=utf-8"
                files[f"/{path.name}"] = (kind, path.read_bytes())
        if "/index.html" in files:
            files["/"] = files["/index.html"]
        return cls(files)


class ReplayStream(trio.abc.Stream):
    """A stream that first gives back bytes already read from it (the request head)."""

    def __init__(self, stream: trio.SocketStream, already_read: bytes) -> None:
        self._stream, self._pending = stream, already_read

    async def receive_some(self, max_bytes: int | None = None) -> bytes:
        if self._pending:
            size = len(self._pending) if max_bytes is None else max_bytes
            data, self._pending = self._pending[:size], self._pending[size:]
            return data
        return await self._stream.receive_some(max_bytes)

    async def send_all(self, data: bytes | bytearray | memoryview) -> None:
        await self._stream.send_all(data)

    async def wait_send_all_might_not_block(self) -> None:
        await self._stream.wait_send_all_might_not_block()

    async def aclose(self) -> None:
        await self._stream.aclose()


WebsocketHandler = Callable[[WebSocketRequest, str], Awaitable[None]]


class FrontDoor:
    """One TCP connection on the API port: a websocket for `on_websocket`, or one HTTP answer."""

    def __init__(self, static: StaticFiles, on_websocket: WebsocketHandler, *, max_message_bytes: int,
                 max_open: int = 128) -> None:
        self._static, self._on_websocket = static, on_websocket
        self._max_message_bytes, self._max_open = max_message_bytes, max_open
        self._open = 0

    async def serve(self, stream: trio.SocketStream) -> None:
        if self._open >= self._max_open:  # beyond every limit: not even a head is read
            await stream.aclose()
            return
        self._open += 1
        try:
            await self._serve(stream)
        finally:
            self._open -= 1

    async def _serve(self, stream: trio.SocketStream) -> None:
        remote = _peer(stream)
        try:
            head, request, conn = await self._read_head(stream)
        except (h11.RemoteProtocolError, trio.BrokenResourceError, trio.ClosedResourceError, OSError):
            await stream.aclose()
            return
        if request is None:  # closed, too slow or too large: nothing worth answering
            await stream.aclose()
            return
        if _is_upgrade(request):
            async with trio.open_nursery() as nursery:
                ws_request = await wrap_server_stream(nursery, ReplayStream(stream, head),
                                                      max_message_size=self._max_message_bytes)
                await self._on_websocket(ws_request, remote)
                nursery.cancel_scope.cancel()
            return
        try:
            await self._answer_http(stream, conn, request)
        finally:
            await stream.aclose()

    async def _read_head(self, stream: trio.SocketStream) -> tuple[bytes, h11.Request | None, h11.Connection]:
        """Every byte read so far, the request (None: closed, too slow, too large) and its parser."""
        conn = h11.Connection(h11.SERVER, max_incomplete_event_size=MAX_HEAD_BYTES)
        received = b""
        with trio.move_on_after(HEAD_TIMEOUT_S):
            while len(received) <= MAX_HEAD_BYTES:
                event = conn.next_event()
                if isinstance(event, h11.Request):
                    return received, event, conn
                if event is not h11.NEED_DATA:
                    break
                data = await stream.receive_some(4096)
                if not data:
                    break
                received += data
                conn.receive_data(data)
        return received, None, conn

    async def _answer_http(self, stream: trio.SocketStream, conn: h11.Connection, request: h11.Request) -> None:
        method = request.method.decode("ascii", "replace")
        path = request.target.decode("ascii", "replace").split("?", 1)[0]
        found = self._static.files.get(path)
        if method not in ("GET", "HEAD"):
            status, kind, body = 405, "text/plain; charset=utf-8", b"method not allowed\n"
        elif found is None:
            status, kind, body = 404, "text/plain; charset=utf-8", b"not found\n"
        else:
            status, (kind, body) = 200, found
        headers = [(b"content-type", kind.encode()), (b"content-length", str(len(body)).encode()),
                   (b"connection", b"close"), *SECURITY_HEADERS]
        if status == 405:
            headers.append((b"allow", b"GET, HEAD"))
        out = conn.send(h11.Response(status_code=status, headers=headers))
        if method != "HEAD":
            out += conn.send(h11.Data(data=body))
        out += conn.send(h11.EndOfMessage())
        await stream.send_all(out)


def _is_upgrade(request: h11.Request) -> bool:
    headers = {name.lower(): value.lower() for name, value in request.headers}
    return b"websocket" in headers.get(b"upgrade", b"") and b"upgrade" in headers.get(b"connection", b"")


def _peer(stream: trio.SocketStream) -> str:
    try:
        host, port, *_ = stream.socket.getpeername()
    except (OSError, ValueError):
        return "unknown"
    return f"{host}:{port}"
