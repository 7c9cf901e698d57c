"""Child process of tests/actors/test_keystore_crash.py: a keystore on a data dir, killed at will.

    python keystore_rotator.py rotate DB CONF LABEL PIN COUNT
        start store + hsm-worker + keystore on DB and the token, put whichever of
        the COUNT known secrets are missing, print "ready", then rotate the KEK
        forever, printing "rotated V" after each rotation (until SIGKILLed).

    python keystore_rotator.py check DB CONF LABEL PIN COUNT
        first look at what a kill left (the store's KEK version, the versions its
        records name, which KEKs the token holds), then start the actors (their
        start-up clean-up runs), read every known secret back and print one JSON line.
"""

from __future__ import annotations

import hashlib
import json
import sys
from pathlib import Path

import trio

from actors.hsm_worker.session import Pkcs11Session
from actors.messages import HsmHasKey
from hsmkit import SoftToken, keystore_node
from milagro_node.adapters.sqlite_store import Store
from milagro_node.core.keystore import (
    KINDS, META_KEY, META_NS, RECORDS_NS, decode_kek_version, decode_record, kek_label,
)
from milagro_node.secret_memory import SecretBytes


def known(i: int) -> tuple[str, str, SecretBytes]:
    """The i-th known secret: key id, kind, and a value the checker can recompute."""
    kind = list(KINDS)[i % len(KINDS)]
    size = max(KINDS[kind].sizes) if kind != "generic" else 40 + i
    stream = b"".join(hashlib.sha256(f"known-secret-{i}-{block}".encode()).digest() for block in range(7))
    return f"known-{i:03d}", kind, SecretBytes.copy_from(stream[:size])


async def rotate_forever(db: Path, token: SoftToken, count: int) -> None:
    async with keystore_node(db, token) as (keys, _):
        present = {key_id for key_id, _, _ in await keys.list()}
        for i in range(count):
            key_id, kind, secret = known(i)
            if key_id not in present:
                await keys.put(key_id, kind, secret)
        print("ready", flush=True)
        while True:
            print(f"rotated {await keys.rotate()}", flush=True)


def around(version: int) -> range:
    """KEK versions a kill could have left in the token, with a margin either side."""
    return range(max(1, version - 3), version + 4)


def left_by_the_kill(db: Path, token: SoftToken) -> dict:
    with Store.open(db) as store:
        current = decode_kek_version(store.kv_get(META_NS, META_KEY))
        named = sorted({decode_record(k, v).kek for k, v in store.kv_items(RECORDS_NS)})
    session = Pkcs11Session.open(token.target())
    try:
        in_token = [v for v in around(current) if session.has_key(kek_label(v))]
    finally:
        session.close()
    return {"store_kek": current, "record_keks": named, "token_keks": in_token}


async def check(db: Path, token: SoftToken, count: int) -> dict:
    report = {"before": left_by_the_kill(db, token), "read": 0, "bad": []}
    async with keystore_node(db, token) as (keys, sup):
        for i in range(count):
            key_id, kind, expected = known(i)
            try:
                with await keys.get(key_id, kind) as secret:
                    ok = secret == expected
            except Exception as exc:  # reported, not raised: the parent shows every failure at once
                ok, report["error"] = False, repr(exc)
            report["read"] += ok
            if not ok:
                report["bad"].append(key_id)
        listed = await keys.list()
        report["kek"] = listed[0][2] if listed else None
        report["token_keks"] = [v for v in around(report["before"]["store_kek"])
                                if await sup.ask("hsm-worker", HsmHasKey(kek_label(v)))]
    return report


def main(mode: str, db: str, conf: str, label: str, pin: str, count: str) -> None:
    token = SoftToken.from_argv(conf, label, pin)
    if mode == "rotate":
        trio.run(rotate_forever, Path(db), token, int(count))
    else:
        print(json.dumps(trio.run(check, Path(db), token, int(count))), flush=True)


if __name__ == "__main__":
    main(*sys.argv[1:])
