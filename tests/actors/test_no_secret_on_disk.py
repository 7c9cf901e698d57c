"""No secret value reaches the disk or the logs, in any common encoding.

A node-like setup: the store, the hsm-worker and the keystore on a data dir
that also holds the SoftHSM2 token, with every logger at debug level written
through the node's own formatters (key=value and JSON) to files. Known secrets
go through put, generate, get, rotate, replace and delete; then every file of
the data dir (SQLite file, WAL and shared memory, token files) and the logs
are scanned while the node runs and again after it stopped.
"""

import base64
import json
import logging

import pytest

from actors.messages import KvGet
from hsmkit import activate, keystore_node, make_token
from milagro_node.core.keystore import KINDS, RECORDS_NS, decode_record
from milagro_node.runtime.logs import JsonFormatter, KeyValueFormatter
from milagro_node.secret_memory import SecretBytes

PATTERN = b"MILAGRO-KNOWN-SECRET-PATTERN-\x00\x01\x02" * 3
WINDOW = 12  # a leak of any 12 consecutive bytes of a secret counts


def forms(secret: bytes) -> set[bytes]:
    """The ways a secret could be written out: raw (also any WINDOW-byte slice), hex,
    base64 (standard, url-safe, unpadded), Python repr, JSON list of ints."""
    found = {secret[i:i + WINDOW] for i in range(len(secret) - WINDOW + 1)}
    found |= {secret.hex().encode(), secret.hex().upper().encode(), repr(secret).encode(),
              json.dumps(list(secret)).encode()}
    for encode in (base64.b64encode, base64.urlsafe_b64encode):
        found.add(encode(secret).rstrip(b"="))
    return found


def leaks(paths, secrets: dict[str, bytes]) -> list[str]:
    found = []
    for path in paths:
        content = path.read_bytes()
        for name, secret in secrets.items():
            if any(form in content for form in forms(secret)):
                found.append(f"{name} in {path}")
    return found


@pytest.fixture
def debug_logs(tmp_path):
    """Every logger at debug level, through the node's formatters, into two files."""
    root = logging.getLogger()
    handlers = []
    for name, formatter in (("node.log", KeyValueFormatter()), ("node.jsonl", JsonFormatter())):
        handler = logging.FileHandler(tmp_path / name)
        handler.setFormatter(formatter)
        handler.setLevel(logging.DEBUG)
        handlers.append(handler)
        root.addHandler(handler)
    level = root.level
    root.setLevel(logging.DEBUG)
    yield [tmp_path / "node.log", tmp_path / "node.jsonl"]
    root.setLevel(level)
    for handler in handlers:
        root.removeHandler(handler)
        handler.close()


async def test_no_secret_bytes_in_the_data_dir_or_the_logs(tmp_path, debug_logs, monkeypatch):
    data = tmp_path / "data"
    token = make_token(data / "hsm")
    monkeypatch.setenv("SOFTHSM2_CONF", str(token.conf))
    activate(token)
    db = data / "node.db"
    values = {f"random-{kind}": (kind, SecretBytes.random(KINDS[kind].default_size)) for kind in KINDS}
    values["pattern"] = ("generic", SecretBytes.copy_from(PATTERN))
    values["mpin-long"] = ("mpin-server-secret", SecretBytes.copy_from(PATTERN[:64] + bytes(range(128))))
    known: dict[str, bytes] = {}  # plain copies for the scan only: this test is the one place they may exist
    async with keystore_node(db, token) as (keys, sup):
        for key_id, (kind, secret) in values.items():
            await keys.put(key_id, kind, secret)
            known[key_id] = secret.reveal()
        for kind in (k for k in KINDS if KINDS[k].random_ok):
            await keys.generate(f"generated-{kind}", kind)
            with await keys.get(f"generated-{kind}", kind) as secret:
                known[f"generated-{kind}"] = secret.reveal()
        await keys.rotate()
        for key_id, (kind, secret) in values.items():
            with await keys.get(key_id, kind) as back:
                assert back == secret
        replaced = SecretBytes.random(32)
        known["replaced-old"] = known["random-backup-key"]
        await keys.put("random-backup-key", "backup-key", replaced, replace=True)
        known["replaced-new"] = replaced.reveal()
        await keys.delete("pattern")
        share = "random-custody-share"
        stored = decode_record(share, await sup.ask("store", KvGet(RECORDS_NS, share)))

        assert min(map(len, known.values())) >= WINDOW  # shorter values would match by chance
        files = [p for p in data.rglob("*") if p.is_file()]
        assert (data / "node.db-wal").stat().st_size > 0 and any(p.suffix == ".object" for p in files)
        # The scan reads what the store wrote: the ciphertext of a record is there, its plaintext is not.
        assert any(stored.wrapped in p.read_bytes() for p in files)
        assert leaks(files + debug_logs, known) == []

    files = [p for p in data.rglob("*") if p.is_file()]
    assert leaks(files + debug_logs, known) == []
    assert "key stored" in debug_logs[0].read_text()  # the logs were captured at all


def test_the_scan_finds_a_planted_secret(tmp_path):
    secret = SecretBytes.random(32).reveal()
    for i, form in enumerate(sorted(forms(secret))):
        planted = tmp_path / f"planted-{i}"
        planted.write_bytes(b"prefix " + form + b" suffix")
        assert leaks([planted], {"s": secret}) == [f"s in {planted}"]
    clean = tmp_path / "clean"
    clean.write_bytes(SecretBytes.random(64).reveal())
    assert leaks([clean], {"s": secret}) == []
