"""The console's API: one-time tickets, page sessions and pushed views, over a real websocket."""

import json

import pytest
import trio
from trio_websocket import open_websocket_url

from gatewaykit import TOKEN, raw, start_node
from milagro_node.api_client import ApiCallError, connect


async def ticket_url(url: str) -> dict:
    async with connect(url, token=TOKEN) as api:
        return await api.call("console.ticket")


async def notifications(ws, count: int) -> list[dict]:
    got = []
    with trio.fail_after(10):
        while len(got) < count:
            message = json.loads(await ws.get_message())
            if message.get("method") == "console.update":
                got.append(message["params"])
    return got


async def test_a_ticket_logs_a_page_in_once(nursery, tmp_path):
    _, url = await start_node(nursery, tmp_path)
    ticket = await ticket_url(url)
    assert ticket["url"].startswith("http://127.0.0.1:") and ticket["url"].endswith(f"#ticket={ticket['ticket']}")
    async with connect(url) as page:
        with pytest.raises(ApiCallError):
            await page.call("node.status")
        session = (await page.call("auth.ticket", ticket=ticket["ticket"]))["session"]
        assert (await page.call("node.status"))["actors"]
    async with connect(url) as again:
        with pytest.raises(ApiCallError, match="already used"):
            await again.call("auth.ticket", ticket=ticket["ticket"])
        await again.call("auth.session", session=session)  # a reconnecting page resumes
        assert (await again.call("node.status"))["actors"]
        await again.call("auth.logout")
        with pytest.raises(ApiCallError):
            await again.call("node.status")
    async with connect(url, token=TOKEN) as api:
        tail = json.dumps(await api.call("audit.tail", count=20))
    assert '"api.console-login"' in tail and '"method": "console.ticket"' in tail
    assert ticket["ticket"] not in tail and session not in tail and TOKEN not in tail


async def test_forged_and_expired_sessions_are_refused(nursery, tmp_path):
    _, url = await start_node(nursery, tmp_path, console_idle_seconds=0.5)
    async with connect(url) as page:
        with pytest.raises(ApiCallError, match="unknown session") as forged:
            await page.call("auth.session", session="mcs_forged")
        assert forged.value.code == -32001
        await page.call("auth.ticket", ticket=(await ticket_url(url))["ticket"])
        await page.call("node.status")
        await trio.sleep(0.7)
        with pytest.raises(ApiCallError, match="admin authentication required"):
            await page.call("node.status")


async def test_subscribed_views_are_pushed_until_the_session_ends(nursery, tmp_path):
    _, url = await start_node(nursery, tmp_path, console_idle_seconds=1.5)
    ticket = (await ticket_url(url))["ticket"]
    async with open_websocket_url(url) as ws:
        await raw(ws, json.dumps({"jsonrpc": "2.0", "id": 1, "method": "auth.ticket", "params": {"ticket": ticket}}))
        bad = await raw(ws, json.dumps({"jsonrpc": "2.0", "id": 2, "method": "subscribe", "params": {"topics": ["nope"]}}))
        assert bad["error"]["code"] == -32602 and "nope" in bad["error"]["message"]
        reply = await raw(ws, json.dumps({"jsonrpc": "2.0", "id": 3, "method": "subscribe",
                                          "params": {"topics": ["node", "audit", "mfa"]}}))
        assert reply["result"] == {"topics": ["audit", "node"], "unavailable": ["mfa"]}
        first = await notifications(ws, 2)  # each view at once; later only when it changes
        assert {u["topic"] for u in first} == {"node", "audit"}
        assert any(u["topic"] == "audit" and u["data"][-1]["action"] == "api.console-login" for u in first)
        later = await notifications(ws, 2)  # nothing changes here, until the idle session ends
        assert sorted((u["topic"], u.get("ended")) for u in later) == [("audit", "session expired"),
                                                                        ("node", "session expired")]


async def test_subscribe_needs_admin(nursery, tmp_path):
    _, url = await start_node(nursery, tmp_path)
    async with connect(url) as page:
        with pytest.raises(ApiCallError, match="admin authentication required"):
            await page.call("subscribe", topics=["node"])
