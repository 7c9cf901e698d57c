"""`milagro-node envelope seal|open|inspect` and `identity import` between real data dirs.

Three nodes, each made by `milagro-node init` with its own SoftHSM token: A and B exchange
envelopes, C is an outsider (and, in the identity-log test, the node that imports logs). The
nodes are made once for the module; each test seals its own envelopes, so the replay caches
and imported logs of one test do not decide another's outcome.
"""

import json
import os
import subprocess
import time
from pathlib import Path

import pytest

from actors.messages import KvBatch, KvItems
from milagro_node.cli.envelope import REPLAY_NAMESPACE, PersistentReplay
from milagro_node.core import ipld
from milagro_node.core.identity import export_log
from milagro_node.core.ipld import cid_for
from milagro_node.runtime.config import load_node_config
from milagro_node.runtime.offline import offline_node
from testkit import BIN, clean_env

pytestmark = pytest.mark.slow

VECTORS = json.loads((Path(__file__).resolve().parents[1] / "vectors" / "identity-v1.json").read_text())


def run(*args, stdin: bytes = b"") -> subprocess.CompletedProcess:
    """`milagro-node ARGS...` with binary standard input and output."""
    return subprocess.run([str(BIN / "milagro-node"), *map(str, args)], input=stdin,
                          capture_output=True, timeout=60, env=clean_env())


def ok(*args, stdin: bytes = b"") -> subprocess.CompletedProcess:
    result = run(*args, stdin=stdin)
    assert result.returncode == 0, result.stderr.decode()
    return result


def refused(code: str, *args, stdin: bytes = b"", kind: str = "envelope") -> subprocess.CompletedProcess:
    """The command fails with ``milagro-node: <kind> <code>: ...`` and exit status 1."""
    result = run(*args, stdin=stdin)
    assert result.returncode == 1, (result.returncode, result.stderr.decode())
    assert result.stderr.decode().startswith(f"milagro-node: {kind} {code}: "), result.stderr.decode()
    assert result.stdout == b""
    return result


class Node:
    def __init__(self, path, log_file):
        self.path, self.log = path, log_file
        self.identity = json.loads(ok("identity", "show", "--json", "--data-dir", path).stdout)["identity"]

    def __call__(self, *args, **kwargs):
        return ok(*args, "--data-dir", self.path, **kwargs)


@pytest.fixture(scope="module")
def nodes(tmp_path_factory):
    root = tmp_path_factory.mktemp("envelope-cli")
    made = {}
    for name in "abc":
        ok("init", "--data-dir", root / name)
        ok("identity", "export", "--data-dir", root / name, "--out", root / f"{name}.log")
        made[name] = Node(root / name, root / f"{name}.log")
    return made["a"], made["b"], made["c"]


def inspect(path) -> dict:
    return json.loads(ok("envelope", "inspect", "--json", "--in", path).stdout)


def test_seal_to_a_log_file_and_to_self_then_open_once(nodes, tmp_path):
    a, b, c = nodes
    payload = b"TOP-SECRET\x00\n" + os.urandom(20_000)
    sealed = b("envelope", "seal", "--to", a.log, "--to", b.identity, stdin=payload).stdout  # stdin -> stdout
    envelope = tmp_path / "to-a-and-b.env"
    envelope.write_bytes(sealed)

    header = inspect(envelope)
    assert header["suite"] == "mx2"  # every node identity has an ML-KEM-768 key
    assert header["sender"] == b.identity and header["kind"] == "file"
    assert header["recipients"] == [a.identity, b.identity]
    assert header["payload_size"] == len(payload)
    assert header["expires_unix"] - header["created_unix"] == 24 * 3600
    assert header["cid"] == cid_for(sealed, "dag-cbor")
    text = ok("envelope", "inspect", "--in", envelope).stdout.decode()
    assert a.identity in text and b.identity in text and header["cid"] in text

    # A knows B only from the file it is given; B knows itself.
    assert a("envelope", "open", "--from", b.log, "--in", envelope).stdout == payload
    out = tmp_path / "opened-by-b"
    b("envelope", "open", "--out", out, stdin=sealed)
    assert out.read_bytes() == payload and out.stat().st_mode & 0o077 == 0

    # Each reader opens an envelope once: the replay cache lives in the node's store.
    refused("replayed", "envelope", "open", "--from", b.log, "--in", envelope, "--data-dir", a.path)
    refused("replayed", "envelope", "open", "--in", envelope, "--data-dir", b.path)

    # C verifies the signature, then finds it is not a recipient; no plaintext anywhere.
    result = refused("not-a-recipient", "envelope", "open", "--from", b.log, "--in", envelope,
                     "--data-dir", c.path)
    assert b"TOP-SECRET" not in result.stderr
    # Without B's log, C cannot even check the signature.
    refused("unknown-sender", "envelope", "open", "--in", envelope, "--data-dir", c.path)


def test_import_then_seal_by_cid_with_mx1(nodes, tmp_path):
    a, b, c = nodes
    imported = b("identity", "import", a.log).stdout.decode()
    assert f"imported {a.identity}: 1 event" in imported or "already known" in imported
    assert "already known" in b("identity", "import", a.log).stdout.decode()
    a("identity", "import", b.log)

    envelope = tmp_path / "mx1.env"
    b("envelope", "seal", "--to", a.identity, "--suite", "mx1", "--kind", "test/note", "--ttl", "600",
      "--in", __file__, "--out", envelope)
    header = inspect(envelope)
    assert header["suite"] == "mx1" and header["kind"] == "test/note" and header["recipients"] == [a.identity]
    assert header["expires_unix"] - header["created_unix"] == 600
    assert header["cid"] == cid_for(envelope.read_bytes(), "dag-cbor")
    out = tmp_path / "opened"
    a("envelope", "open", "--in", envelope, "--out", out)  # B's log was imported: no --from
    assert out.read_bytes() == open(__file__, "rb").read()
    refused("replayed", "envelope", "open", "--in", envelope, "--data-dir", a.path)
    assert not (tmp_path / "opened-again").exists()


def test_tampered_envelopes_are_refused_with_their_code(nodes, tmp_path):
    a, b, c = nodes
    sealed = b("envelope", "seal", "--to", a.log, stdin=b"TOP-SECRET payload").stdout
    opening = ("envelope", "open", "--from", b.log, "--data-dir", a.path)

    flipped = bytearray(sealed)
    flipped[len(sealed) // 2] ^= 0x01  # inside ct or a recipient entry: both are signed
    refused("bad-signature", *opening, stdin=bytes(flipped))
    refused("malformed", *opening, stdin=sealed[:-1])
    refused("malformed", "envelope", "inspect", stdin=sealed[:-1])
    refused("too-large", *opening, stdin=sealed + bytes(1 << 21))
    # C knows neither A's nor B's log, and A's log does not name the sender.
    refused("unknown-sender", "envelope", "open", "--from", a.log, "--data-dir", c.path, stdin=sealed)
    # None of these used up the envelope's id: the genuine one still opens, once.
    assert a("envelope", "open", "--from", b.log, stdin=sealed).stdout == b"TOP-SECRET payload"
    refused("replayed", *opening, stdin=sealed)


def test_bad_usage_exits_2(nodes, tmp_path):
    a, b, _ = nodes
    for args in (("--to", tmp_path / "no-such-file"), ("--to", a.log, "--ttl", "0"),
                 ("--to", a.log, "--ttl", str(8 * 24 * 3600)), ("--to", a.log, "--in", tmp_path / "none")):
        result = run("envelope", "seal", *args, "--data-dir", b.path)
        assert result.returncode == 2, (args, result.stderr.decode())
    result = run("envelope", "seal", "--to", a.log, "--data-dir", tmp_path / "not-a-node")
    assert result.returncode == 2 and b"not initialised" in result.stderr
    refused("malformed", "envelope", "seal", "--to", a.log, "--kind", "bad kind!", "--data-dir", b.path, stdin=b"x")
    not_a_log = tmp_path / "not-a-log"
    not_a_log.write_bytes(b"hello")
    refused("malformed", "envelope", "seal", "--to", not_a_log, "--data-dir", b.path, kind="identity")
    refused("malformed", "identity", "import", not_a_log, "--data-dir", b.path, kind="identity")


def test_identity_import_extends_refuses_forks_and_honours_revocation(nodes, tmp_path):
    """On node C, with the controller log of tests/vectors/identity-v1.json (no ML-KEM key)."""
    _, _, c = nodes
    events = [bytes.fromhex(e["bytes"]) for e in VECTORS["controller"]["events"]]
    identity = VECTORS["controller"]["identity"]
    fork = next(case for case in VECTORS["invalid"] if case["code"] == "duplicity")
    files = {}
    forked = [bytes.fromhex(x) for x in fork["log"]][::2]  # the inception, then the other seq 1
    for name, log in {"first": events[:2], "full": events, "fork": forked}.items():
        files[name] = tmp_path / f"{name}.log"
        files[name].write_bytes(export_log(log))

    assert c("identity", "import", files["first"]).stdout.decode().startswith(f"imported {identity}: 2 events")
    # No ML-KEM-768 key: mx1 by default, and mx2 refused naming the recipient.
    sealed = tmp_path / "to-controller.env"
    c("envelope", "seal", "--to", identity, "--in", __file__, "--out", sealed)
    assert inspect(sealed)["suite"] == "mx1"
    result = run("envelope", "seal", "--to", identity, "--suite", "mx2", "--data-dir", c.path, stdin=b"x")
    assert result.returncode == 1 and identity.encode() in result.stderr and b"ML-KEM" in result.stderr

    # The rest of the log extends the stored one, and ends it: revoked identities are not used.
    assert "extended" in c("identity", "import", files["full"]).stdout.decode()
    refused("revoked", "envelope", "seal", "--to", identity, "--data-dir", c.path, stdin=b"x", kind="identity")
    # A stale copy of the log is no way around it.
    refused("revoked", "envelope", "seal", "--to", files["first"], "--data-dir", c.path, stdin=b"x", kind="identity")

    # A second history from seq 1 on is duplicity: refused, recorded, and never resolved again.
    refused("duplicity", "identity", "import", files["fork"], "--data-dir", c.path, kind="identity")
    refused("duplicity", "identity", "import", files["full"], "--data-dir", c.path, kind="identity")
    refused("duplicity", "envelope", "seal", "--to", identity, "--data-dir", c.path, stdin=b"x", kind="identity")


def test_rotation_reaches_senders_through_import(nodes, tmp_path):
    """C rotates its keys; B imports the longer log and seals to the new keys."""
    _, b, c = nodes
    b("identity", "import", c.log)
    c("identity", "rotate")
    rotated = tmp_path / "c-rotated.log"
    c("identity", "export", "--out", rotated)
    assert "extended" in b("identity", "import", rotated).stdout.decode()
    sealed = b("envelope", "seal", "--to", c.identity, stdin=b"after rotation").stdout
    assert c("envelope", "open", "--from", b.log, stdin=sealed).stdout == b"after rotation"
    # Sealed to the stale file, B still uses the newest log it holds.
    sealed = b("envelope", "seal", "--to", c.log, stdin=b"stale file").stdout
    assert c("envelope", "open", "--from", b.log, stdin=sealed).stdout == b"stale file"


async def test_the_persisted_replay_cache_drops_expired_ids(nodes):
    """In process, on A's store: expired ids and stray keys go at the next save; live ones stay."""
    a = nodes[0]
    now = int(time.time())
    sender = a.identity
    live, expired = f"{sender}/{'11' * 16}", f"{sender}/{'22' * 16}"
    async with offline_node(load_node_config(None, data_dir=a.path, environ={})) as node:
        await node.ask("store", KvBatch(((REPLAY_NAMESPACE, live, ipld.encode(now + 600)),
                                         (REPLAY_NAMESPACE, expired, ipld.encode(now - 1)),
                                         (REPLAY_NAMESPACE, "stray", b"\x00"))))
        replay = await PersistentReplay.load(node)
        assert replay.cache.is_replay(sender, bytes.fromhex("11" * 16), now + 600, now)
        assert not replay.cache.is_replay(sender, bytes.fromhex("22" * 16), now + 600, now)
        replay.cache.remember(sender, bytes.fromhex("33" * 16), now + 900, now)
        await replay.save(node)
        keys = dict(await node.ask("store", KvItems(REPLAY_NAMESPACE)))
    assert live in keys and f"{sender}/{'33' * 16}" in keys
    assert expired not in keys and "stray" not in keys
