"""The admin console in headless Chromium, against a devnet of separate node processes.

Each test logs in through the link `milagro-node console` prints, checks what the page shows
as the federation changes (no reloads: views are pushed), and saves a screenshot under its
temporary directory. No test may leave an error in the browser's console.
"""

from __future__ import annotations

import base64
import re
import subprocess

import pytest
import trio

from browserkit import browser_or_skip
from devnetkit import Devnet, eventually
from milagro_node.mpin_client import ClientRefused, enroll, login
from milagro_node.runtime.devnet import milagro_command
from testkit import clean_env

pytestmark = pytest.mark.slow

MAX_FAILURES = 3


@pytest.fixture(scope="module")
def net(tmp_path_factory):
    """Three nodes with every role; node-3 starts later, in the first test."""
    net = Devnet(tmp_path_factory.mktemp("console-devnet"), 3,
                 settings={("mfa", "max_failures"): MAX_FAILURES, ("mfa", "lockout_seconds"): 0})
    try:
        net.start(1)
        net.start(2)
        yield net
    finally:
        net.stop_all()


@pytest.fixture
def browser(tmp_path):
    with browser_or_skip(tmp_path) as browser:
        yield browser
        assert browser.console_errors() == []


def login_link(data_dir) -> str:
    done = subprocess.run(milagro_command("console", "--data-dir", str(data_dir)), capture_output=True,
                          text=True, timeout=60, env=clean_env())
    assert done.returncode == 0, done.stderr
    links = re.findall(r"http://\S+#ticket=mct_\S+", done.stdout)
    assert len(links) == 1, done.stdout
    return links[0]


def open_console(browser, net, i: int) -> None:
    browser.get(login_link(net.node(i).data_dir))
    browser.wait_text("#node-name", f"node-{i}", timeout=20)
    assert "ticket" not in browser.current_url()  # out of the address bar (and history)


def peer_rows(browser) -> dict[str, str]:
    """name -> connected ("yes"/"no") in the page's peers table."""
    return browser.execute("""return Object.fromEntries([...document.querySelectorAll('#peers tr')]
        .map(tr => [tr.cells[0].textContent, tr.cells[3].textContent]));""")


def fact(browser, list_id: str, name: str) -> str:
    return browser.execute("""const dts = [...document.querySelectorAll('#' + arguments[0] + ' dt')];
        const dt = dts.find(d => d.textContent === arguments[1]);
        return dt ? dt.nextElementSibling.textContent : null;""", list_id, name)


def show(browser, section: str) -> None:
    """Scroll `section` into the screenshot's view."""
    browser.execute("document.getElementById(arguments[0]).scrollIntoView()", section)


async def wait_page(browser, check, *, timeout: float, what: str):
    async def poll():
        return check()
    return await eventually(poll, timeout=timeout, what=what, step=0.2)


async def test_login_link_and_peers_appear_live(net, browser, tmp_path):
    open_console(browser, net, 1)
    await wait_page(browser, lambda: peer_rows(browser).get("node-2") == "yes", timeout=30, what="node-2 connected")
    assert peer_rows(browser).get("node-3") == "no"
    net.start(3)  # the page is not reloaded: node-3's row turns connected by itself
    await wait_page(browser, lambda: peer_rows(browser).get("node-3") == "yes", timeout=45,
                    what="node-3 appeared connected on node-1's page")
    browser.screenshot(tmp_path / "node-1-peers.png")
    for i in (2, 3):
        open_console(browser, net, i)
        others = {f"node-{j}" for j in (1, 2, 3) if j != i}
        await wait_page(browser, lambda: {n for n, c in peer_rows(browser).items() if c == "yes"} == others,
                        timeout=45, what=f"node-{i}'s peers")
        browser.screenshot(tmp_path / f"node-{i}-peers.png")


async def test_envelope_counter_moves_without_reload(net, browser, tmp_path):
    net.start_all()
    open_console(browser, net, 2)
    await wait_page(browser, lambda: fact(browser, "envelope-totals", "accepted") is not None, timeout=20,
                    what="envelope counters shown")
    before = int(fact(browser, "envelope-totals", "accepted"))
    async with net.api(1) as api:
        for n in range(3):
            await api.call("envelope.send", to=[net.node(2).identity], kind="test.console",
                           payload=base64.b64encode(f"hello {n}".encode()).decode())
    await wait_page(browser, lambda: int(fact(browser, "envelope-totals", "accepted")) >= before + 3, timeout=30,
                    what="the accepted counter moved by 3")
    assert browser.execute("return document.querySelector('#traffic-chart polyline') !== null")
    show(browser, "envelopes-view")
    browser.screenshot(tmp_path / "envelopes.png")


async def test_lock_an_identity_and_unlock_it_from_the_page(net, browser, tmp_path):
    net.start_all()
    async with net.api(1) as api:
        async def ready():
            return (await api.call("mfa.info"))["ready"]
        await eventually(ready, timeout=90, what="node-1 holds a server share from every D-TA")
        grant = base64.b64decode((await api.call("mpin.grant", id="carol@example.com"))["grant"])
    token = await enroll("carol@example.com", grant, [net.node(i).api_url for i in (1, 2, 3)], "2468")
    for _ in range(MAX_FAILURES):
        with pytest.raises(ClientRefused):
            await login(token, net.node(1).api_url, "1111")
    open_console(browser, net, 1)
    await wait_page(browser, lambda: browser.execute(
        "return !!document.querySelector('#locked button[data-user=\"carol@example.com\"]')"),
        timeout=20, what="carol shown as locked with an Unlock button")
    show(browser, "mfa-view")
    assert "device keys registered" in browser.text("#mfa")
    browser.screenshot(tmp_path / "locked.png")
    browser.click('#locked button[data-user="carol@example.com"]')
    assert "Unlock carol@example.com?" in browser.alert_text()
    browser.accept_alert()
    await wait_page(browser, lambda: browser.execute("return document.querySelectorAll('#locked tr').length") == 0,
                    timeout=20, what="carol no longer locked")
    result = await login(token, net.node(1).api_url, "2468")
    assert result.mfa == net.node(1).identity
    await wait_page(browser, lambda: "mfa.unlock" in browser.text("#audit"), timeout=20,
                    what="the unlock in the page's audit tail")
    browser.click("#verify")
    browser.wait_text("#verdict", "intact", timeout=20)
    show(browser, "audit-view")
    browser.screenshot(tmp_path / "unlocked.png")


async def test_a_page_without_login_shows_nothing_and_forged_sessions_are_refused(net, browser, tmp_path):
    page = net.node(1).api_url.replace("ws://", "http://") + "/"
    browser.get(page)
    browser.wait_for(lambda: browser.execute("return !document.getElementById('login').hidden"), what="login form")
    assert browser.execute("return document.getElementById('dashboard').hidden") is True
    assert browser.execute("return document.querySelectorAll('#dashboard td, #dashboard dd').length") == 0
    browser.screenshot(tmp_path / "login.png")
    browser.execute("sessionStorage.setItem('milagro-console-session', 'mcs_forged')")
    browser.get(page)
    browser.wait_text("#login-error", "unknown session")
    assert browser.execute("return document.querySelectorAll('#dashboard td, #dashboard dd').length") == 0
    used = login_link(net.node(1).data_dir)
    browser.get("about:blank")  # else only the fragment changes, and the page is not loaded again
    browser.get(used)
    browser.wait_text("#node-name", "node-1", timeout=20)
    browser.get("about:blank")
    browser.get(used)  # the same link again: a ticket logs in once
    browser.wait_text("#login-error", "already used")


async def test_an_expired_session_ends_the_page(tmp_path, browser):
    net = Devnet(tmp_path / "short", 1, settings={("api", "console_idle_seconds"): 4})
    try:
        net.start(1)
        open_console(browser, net, 1)
        browser.set_window_size(390, 844)  # a phone: the page must not scroll sideways
        assert browser.execute("return document.documentElement.scrollWidth <= window.innerWidth")
        browser.screenshot(tmp_path / "narrow.png")
        await trio.sleep(5)
        browser.wait_text("#login-error", "session has ended", timeout=10)
        assert browser.execute("return document.getElementById('dashboard').hidden") is True
        browser.get(net.node(1).api_url.replace("ws://", "http://") + "/")
        browser.wait_for(lambda: browser.execute("return !document.getElementById('login').hidden"), what="login")
        assert browser.execute("return document.querySelectorAll('#dashboard td').length") == 0
    finally:
        net.stop_all()
