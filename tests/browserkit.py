"""Headless Debian Chromium for browser tests, driven over W3C WebDriver by chromedriver.

    with browser_or_skip(tmp_path) as browser:
        browser.get("http://127.0.0.1:7400/")
        browser.wait_text("#node-name", "node-1"); browser.screenshot(tmp_path / "page.png")

Only the standard library talks to chromedriver (HTTP + JSON), so nothing is downloaded: the
browser and driver are Debian's `chromium` and `chromium-driver`, which scripts/test.sh
installs. Without them the tests skip, except under CI (CI=true), where they must run.
"""

from __future__ import annotations

import base64
import json
import os
import shutil
import socket
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

CHROMIUM, CHROMEDRIVER = "/usr/bin/chromium", "/usr/bin/chromedriver"
ELEMENT = "element-6066-11e4-a52e-4f735466cecf"  # the W3C key of an element reference
# Quiet and offline: without the background-networking flags Chromium keeps dialling
# Google's hosts, which this kind of machine refuses (and reports as errors).
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--window-size=1280,800"]


class WebDriverError(Exception):
    def __init__(self, error: str, message: str) -> None:
        super().__init__(f"{error}: {message}")
        self.error = error


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Browser:
    """One chromedriver process and one browser session in a new, empty profile."""

    def __init__(self, profile_dir: Path) -> None:
        port = _free_port()
        self._driver = subprocess.Popen([CHROMEDRIVER, f"--port={port}"], stdout=subprocess.DEVNULL,
                                        stderr=subprocess.DEVNULL)
        self._base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 20
        while True:
            try:
                if self._request("GET", "/status").get("ready"):
                    break
            except (OSError, WebDriverError):
                pass
            if time.monotonic() > deadline:
                self._driver.kill()
                raise RuntimeError("chromedriver did not answer within 20 s")
            time.sleep(0.1)
        profile_dir.mkdir(parents=True, exist_ok=True)
        capabilities = {"browserName": "chrome", "goog:loggingPrefs": {"browser": "ALL"},
                        "goog:chromeOptions": {"binary": CHROMIUM, "args": [*FLAGS, f"--user-data-dir={profile_dir}"]}}
        try:
            session = self._request("POST", "/session", {"capabilities": {"alwaysMatch": capabilities}})
        except BaseException:
            self._driver.kill()
            raise
        self._session = f"/session/{session['sessionId']}"

    # ---- protocol ----------------------------------------------------------------------------

    def _request(self, method: str, path: str, body: Any = None) -> Any:
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(self._base + path, data=data, method=method,
                                         headers={"content-type": "application/json"})
        try:
            with urllib.request.urlopen(request, timeout=60) as reply:
                answer = json.loads(reply.read() or b"{}")
        except urllib.error.HTTPError as exc:
            answer = json.loads(exc.read() or b"{}")
        value = answer.get("value")
        if isinstance(value, dict) and "error" in value:
            raise WebDriverError(value["error"], value.get("message", ""))
        return value

    def _call(self, method: str, path: str, body: Any = None) -> Any:
        return self._request(method, self._session + path, body)

    # ---- pages and elements ------------------------------------------------------------------

    def get(self, url: str) -> None:
        self._call("POST", "/url", {"url": url})

    def current_url(self) -> str:
        return self._call("GET", "/url")

    def find_all(self, css: str) -> list[str]:
        return [ref[ELEMENT] for ref in self._call("POST", "/elements", {"using": "css selector", "value": css})]

    def find(self, css: str) -> str:
        found = self.find_all(css)
        if not found:
            raise AssertionError(f"no element matches {css!r} on {self.current_url()}")
        return found[0]

    def click(self, css: str) -> None:
        self._call("POST", f"/element/{self.find(css)}/click", {})

    def type(self, css: str, text: str) -> None:
        element = self.find(css)
        self._call("POST", f"/element/{element}/clear", {})
        self._call("POST", f"/element/{element}/value", {"text": text})

    def text(self, css: str) -> str:
        return self._call("GET", f"/element/{self.find(css)}/text")

    def execute(self, script: str, *args: Any) -> Any:
        return self._call("POST", "/execute/sync", {"script": script, "args": list(args)})

    def set_window_size(self, width: int, height: int) -> None:
        self._call("POST", "/window/rect", {"width": width, "height": height})

    # ---- dialogs (window.confirm, alert) ---------------------------------------------------

    def alert_text(self, timeout: float = 10) -> str:
        deadline = time.monotonic() + timeout
        while True:
            try:
                return self._call("GET", "/alert/text")
            except WebDriverError as exc:
                if exc.error != "no such alert" or time.monotonic() > deadline:
                    raise
            time.sleep(0.1)

    def accept_alert(self) -> None:
        self._call("POST", "/alert/accept", {})

    def dismiss_alert(self) -> None:
        self._call("POST", "/alert/dismiss", {})

    # ---- waiting, evidence --------------------------------------------------------------------

    def wait_for(self, predicate: Callable[[], Any], *, timeout: float = 10, what: str = "condition") -> Any:
        deadline = time.monotonic() + timeout
        while True:
            value = predicate()
            if value:
                return value
            if time.monotonic() > deadline:
                raise AssertionError(f"{what}: not within {timeout:g}s")
            time.sleep(0.1)

    def wait_text(self, css: str, contains: str, *, timeout: float = 10) -> str:
        def seen() -> str:
            found = self.find_all(css)
            text = self._call("GET", f"/element/{found[0]}/text") if found else ""
            return text if contains in text else ""
        return self.wait_for(seen, timeout=timeout, what=f"{css!r} showing {contains!r}")

    def screenshot(self, path: Path) -> Path:
        path.write_bytes(base64.b64decode(self._call("GET", "/screenshot")))
        return path

    def console_errors(self) -> list[dict[str, Any]]:
        """The browser console's SEVERE entries since the last call (chromedriver's log API)."""
        try:
            entries = self._call("POST", "/se/log", {"type": "browser"})
        except WebDriverError:
            entries = self._call("POST", "/log", {"type": "browser"})
        return [entry for entry in entries or [] if entry.get("level") == "SEVERE"]

    def close(self) -> None:
        try:
            self._call("DELETE", "")
        except (OSError, WebDriverError):
            pass
        finally:
            self._driver.terminate()
            try:
                self._driver.wait(5)
            except subprocess.TimeoutExpired:
                self._driver.kill()

    def __enter__(self) -> Browser:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def browser_or_skip(tmp_path: Path) -> Browser:
    """A Browser with its profile under `tmp_path`; skip (fail under CI) without Chromium."""
    missing = [path for path in (CHROMIUM, CHROMEDRIVER) if not shutil.which(path)]
    if missing:
        reason = f"{', '.join(missing)} not installed (scripts/test.sh installs Debian chromium and chromium-driver as root)"
        if os.environ.get("CI", "").lower() in ("true", "1"):
            pytest.fail(f"{reason}; CI is set, so the browser tests must run")
        pytest.skip(reason)
    return Browser(tmp_path / "chromium-profile")
