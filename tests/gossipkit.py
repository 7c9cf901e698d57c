"""Start a gossipsub peer in its own process and read its JSON events, from a trio test.

Two kinds, with the same flags and events (documented at the top of each script):
  "js": tests/interop/gossip_peer.mjs (js-libp2p 3 + @libp2p/gossipsub, from package-lock.json)
  "py": tests/p2p/bare_gossip_peer.py (a bare py-libp2p host, no milagro_node code)

    async with gossip_peer("py", tmp_path, topic="t") as py:
        async with gossip_peer("js", tmp_path, topic="t", dial=[py.addr],
                               publish=[b"hello"]) as js:
            [msg] = await py.messages(1, timeout=30)
            assert msg["from"] == js.peer_id and msg["data"] == b"hello"

Without node or the npm packages a "js" peer skips the test (fails it under CI=true), like
npmkit; call require_js_peer() from a sync fixture first to keep the skip's reason.
Leaving the block closes the peer's stdin (it exits), then kills it after 5 s.
"""

import base64
import json
import shutil
import subprocess
import sys
from contextlib import asynccontextmanager
from pathlib import Path

import trio

from npmkit import INTEROP, INSTALLED, unavailable
from testkit import clean_env

JS_SCRIPT = INTEROP / "gossip_peer.mjs"
PY_SCRIPT = Path(__file__).resolve().parent / "p2p" / "bare_gossip_peer.py"


def require_js_peer() -> str:
    """The path of node, if it and the npm packages are installed; else skip (fail under CI).
    Call it from a sync fixture or test too: a skip raised inside a trio test reaches pytest
    wrapped in an exception group and loses its reason."""
    node = shutil.which("node")
    if node is None:
        unavailable("node is not installed (scripts/test.sh installs Debian's nodejs and npm as root)")
    if not INSTALLED.exists() or not (INTEROP / "node_modules" / "libp2p").exists():
        unavailable(f"npm packages not installed: run `npm ci --prefix {INTEROP}` (scripts/test.sh does)")
    return node


class GossipPeer:
    """A running peer: its `ready` event's peer id and addresses, and every event so far."""

    def __init__(self, name: str, process: trio.Process, stderr_path: Path):
        self.name, self.process, self.stderr_path = name, process, stderr_path
        self.events: list[dict] = []
        self._buffer = b""
        self.peer_id = ""
        self.addrs: list[str] = []
        self.ready: dict = {}

    @property
    def addr(self) -> str:
        """Its first listen address, with /p2p/<peer id>: what another peer --dial's."""
        return self.addrs[0]

    async def _read_event(self) -> dict | None:
        while b"\n" not in self._buffer:
            chunk = await self.process.stdout.receive_some(65536)
            if not chunk:
                return None
            self._buffer += chunk
        line, self._buffer = self._buffer.split(b"\n", 1)
        event = json.loads(line)
        if "data_b64" in event:
            event["data"] = base64.b64decode(event["data_b64"])
        self.events.append(event)
        return event

    def _failure(self, why: str) -> AssertionError:
        stderr = self.stderr_path.read_text(errors="replace")[-3000:]
        events = "\n".join(json.dumps(e) for e in self.events[-30:])
        return AssertionError(f"{self.name} peer: {why}\nevents:\n{events}\nstderr:\n{stderr}")

    async def wait_for(self, event: str, timeout: float = 30, count: int = 1, **match) -> list[dict]:
        """Read events until `count` of kind `event` (with fields equal to `match`) have been seen
        (counting those already read); return them. Fails after `timeout` s or if the peer exits."""
        def seen():
            return [e for e in self.events
                    if e["event"] == event and all(e.get(k) == v for k, v in match.items())]

        with trio.move_on_after(timeout):
            while len(seen()) < count:
                if await self._read_event() is None:
                    raise self._failure(f"exited (code {await self.process.wait()}) while waiting "
                                        f"for {count} {event!r} events {match or ''}")
            return seen()[:count]
        raise self._failure(f"no {count} {event!r} events {match or ''} within {timeout} s")

    async def messages(self, count: int, timeout: float = 30, **match) -> list[dict]:
        """The first `count` "message" events; each also has "data" (the decoded bytes)."""
        return await self.wait_for("message", timeout, count, **match)


@asynccontextmanager
async def gossip_peer(kind: str, workdir: Path, topic: str, dial: list[str] = (),
                      publish: list[bytes] = (), listen: str | None = None,
                      ready_timeout: float = 30):
    """Start a "js" or "py" peer on `topic` (files it publishes go to `workdir`), wait for its
    ready event and yield a GossipPeer; stop it on the way out."""
    if kind == "js":
        argv = [require_js_peer(), str(JS_SCRIPT)]
    elif kind == "py":
        argv = [sys.executable, str(PY_SCRIPT)]
    else:
        raise ValueError(f"kind must be 'js' or 'py', not {kind!r}")

    workdir = Path(workdir)
    index = len(list(workdir.glob(f"{kind}-peer-*.stderr")))
    name = f"{kind}-peer-{index}"
    argv += ["--topic", topic]
    for addr in dial:
        argv += ["--dial", addr]
    for n, data in enumerate(publish):
        path = workdir / f"{name}-publish-{n}.bin"
        path.write_bytes(data)
        argv += ["--publish-file", str(path)]
    if listen is not None:
        argv += ["--listen", listen]

    async with peer_process(argv, workdir, name, ready_timeout=ready_timeout,
                            cwd=INTEROP if kind == "js" else None) as peer:
        peer.addrs = peer.ready["addrs"]
        yield peer


@asynccontextmanager
async def peer_process(argv: list[str], workdir: Path, name: str, *, ready_timeout: float = 30,
                       cwd: Path | None = None):
    """Run a peer script that prints JSON events; yield its GossipPeer once it is ready.
    On the way out close its stdin (it exits), and kill it if it is still there after 5 s."""
    stderr_path = Path(workdir) / f"{name}.stderr"
    with stderr_path.open("wb") as stderr:
        process = await trio.lowlevel.open_process(
            argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=stderr, cwd=cwd, env=clean_env())
    peer = GossipPeer(name, process, stderr_path)
    try:
        [peer.ready] = await peer.wait_for("ready", ready_timeout)
        peer.peer_id = peer.ready["peerId"]
        yield peer
    finally:
        with trio.CancelScope(shield=True):
            await process.stdin.aclose()
            with trio.move_on_after(5):
                await process.wait()
            if process.returncode is None:
                process.kill()
                await process.wait()
            await process.stdout.aclose()
