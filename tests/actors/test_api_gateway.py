"""The API gateway over a real websocket on 127.0.0.1 (port 0) and a real SQLite store."""

import json

import pytest
import trio
from trio_websocket import ConnectionClosed, ConnectionRejected, open_websocket_url

from gatewaykit import TOKEN, raw, start_node
from milagro_node.api_client import ApiCallError, connect


@pytest.fixture
async def node(nursery, tmp_path):
    return await start_node(nursery, tmp_path)


async def test_admin_methods_need_the_token(node):
    sup, url = node
    async with connect(url) as api:
        assert (await api.call("node.health"))["ok"] is True
        with pytest.raises(ApiCallError) as refused:
            await api.call("node.status")
        assert refused.value.code == -32001
        with pytest.raises(ApiCallError):
            await api.call("auth.login", token="mn_wrong")
        assert (await api.call("auth.login", token=TOKEN)) == {"admin": True}
        status = await api.call("node.status")
        assert [a["name"] for a in status["actors"]] == ["store", "api-gateway"]
        tail = await api.call("audit.tail", count=10)
    actions = [entry["action"] for entry in tail]
    assert actions == ["api.login-failed", "api.login"]
    assert TOKEN not in json.dumps(tail) and "mn_wrong" not in json.dumps(tail)


async def test_bearer_token_in_the_handshake(node):
    _, url = node
    async with connect(url, token=TOKEN) as api:
        assert (await api.call("node.status"))["actors"]
    async with connect(url, token="mn_forged") as api:
        with pytest.raises(ApiCallError) as refused:
            await api.call("node.status")
        assert refused.value.code == -32001


async def test_malformed_requests_get_errors_and_the_connection_goes_on(node):
    _, url = node
    async with open_websocket_url(url) as ws:
        assert (await raw(ws, "{not json"))["error"]["code"] == -32700
        assert (await raw(ws, "[1, 2]"))["error"]["code"] == -32600
        assert (await raw(ws, '{"jsonrpc": "1.0", "id": 1, "method": "x"}'))["error"]["code"] == -32600
        assert (await raw(ws, '{"jsonrpc": "2.0", "id": 2, "method": "no.such"}'))["error"]["code"] == -32601
        reply = await raw(ws, '{"jsonrpc": "2.0", "id": 3, "method": "auth.login", "params": [1]}')
        assert reply["error"]["code"] == -32602 and reply["id"] == 3
        await ws.send_message(b"\xff\xfe binary garbage")
        assert json.loads(await ws.get_message())["error"]["code"] == -32700
        reply = await raw(ws, '{"jsonrpc": "2.0", "id": 4, "method": "node.health"}')
        assert reply["result"]["ok"] is True and reply["id"] == 4


async def test_bad_params_for_admin_method(node):
    _, url = node
    async with connect(url, token=TOKEN) as api:
        for count in (0, 5000, "ten", True):
            with pytest.raises(ApiCallError) as bad:
                await api.call("audit.tail", count=count)
            assert bad.value.code == -32602


async def test_oversized_message_closes_only_that_connection(nursery, tmp_path):
    _, url = await start_node(nursery, tmp_path, max_message_bytes=1024)
    async with connect(url) as other:
        async with open_websocket_url(url) as ws:
            await ws.send_message("x" * 5000)
            with pytest.raises(ConnectionClosed) as closed:
                await ws.get_message()
            assert closed.value.reason.code == 1009
        assert (await other.call("node.health"))["ok"] is True


async def test_connection_limit(nursery, tmp_path):
    _, url = await start_node(nursery, tmp_path, max_connections=2)
    async with connect(url) as one, connect(url) as two:
        with pytest.raises(ConnectionRejected) as refused:
            async with open_websocket_url(url):
                pass
        assert refused.value.status_code == 503
        assert (await one.call("node.health"))["ok"] and (await two.call("node.health"))["ok"]
    await trio.sleep(0.05)
    async with connect(url) as three:
        assert (await three.call("node.health"))["ok"]


async def test_rate_limit_per_connection(nursery, tmp_path):
    _, url = await start_node(nursery, tmp_path, requests_per_second=1, burst=5)
    async with connect(url) as greedy, connect(url) as polite:
        for _ in range(5):
            await greedy.call("node.health")
        with pytest.raises(ApiCallError) as limited:
            await greedy.call("node.health")
        assert limited.value.code == -32002
        assert (await polite.call("node.health"))["ok"]


# ---- the same port serves the console's static files over plain HTTP -----------------


async def http(url: str, head: bytes) -> bytes:
    host, port = url.removeprefix("ws://").rsplit(":", 1)
    stream = await trio.open_tcp_stream(host, int(port))
    await stream.send_all(head)
    answer = b""
    with trio.fail_after(10):
        while chunk := await stream.receive_some(65536):
            answer += chunk
    await stream.aclose()
    return answer


def status_of(answer: bytes) -> int:
    return int(answer.split(b" ", 2)[1])


async def test_the_console_page_is_served_with_a_strict_policy(nursery, tmp_path):
    _, url = await start_node(nursery, tmp_path)
    page = await http(url, b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
    assert status_of(page) == 200
    head, body = page.split(b"\r\n\r\n", 1)
    assert b"content-type: text/html; charset=utf-8" in head.lower()
    assert b"content-security-policy: default-src 'none'; script-src 'self'" in head.lower()
    assert b"frame-ancestors 'none'" in head and b"<script src=\"/console.js\"" in body
    assert b"<script>" not in body  # nothing inline: the policy would block it
    script = await http(url, b"GET /console.js HTTP/1.1\r\nHost: x\r\n\r\n")
    assert status_of(script) == 200 and b"auth.login" in script
    head_only = await http(url, b"HEAD /console.css HTTP/1.1\r\nHost: x\r\n\r\n")
    assert status_of(head_only) == 200 and head_only.endswith(b"\r\n\r\n")


async def test_anything_else_is_refused_and_the_websocket_still_works(nursery, tmp_path):
    _, url = await start_node(nursery, tmp_path)
    for head, status in ((b"GET /../node.db HTTP/1.1\r\nHost: x\r\n\r\n", 404),
                         (b"GET /admin.token HTTP/1.1\r\nHost: x\r\n\r\n", 404),
                         (b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\nhi", 405)):
        assert status_of(await http(url, head)) == status
    assert await http(url, b"NOT HTTP AT ALL\r\n\r\n") == b""  # closed without an answer
    assert await http(url, b"GET / HTTP/1.1\r\nX: " + b"a" * 20000) == b""  # a head too large
    async with connect(url, token=TOKEN) as api:
        assert (await api.call("node.health"))["ok"] is True
