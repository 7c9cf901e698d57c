"""The keystore actor on a real SoftHSM2 token and a real SQLite store.

Each test gets its own token (hsmkit.soft_token) and data dir in tmp_path.
"""

import pytest

from actors.hsm_worker.session import Pkcs11Session
from actors.keystore import bootstrap_kek
from actors.messages import AuditTail, HsmGenerateKey, HsmHasKey, KvGet, KvPut
from hsmkit import SoftToken, keystore_node, make_token, soft_token  # noqa: F401  (soft_token is a fixture)
from testkit import refused
from milagro_node.adapters.sqlite_store import Store
from milagro_node.core.keystore import (
    KINDS, META_KEY, META_NS, RECORDS_NS, KekFacts, KekPlan, KeystoreError, decode_record, encode_record,
    kek_label, plan_kek,
)
from milagro_node.secret_memory import SecretBytes


def sizes_to_try(kind):
    sizes = KINDS[kind].sizes
    return (1, 33, 4096) if isinstance(sizes, range) else tuple(sizes)



async def test_round_trip_for_every_kind(soft_token, tmp_path):
    kept = {}
    async with keystore_node(tmp_path / "node.db", soft_token) as (keys, _):
        for kind in KINDS:
            for size in sizes_to_try(kind):
                key_id = f"{kind}/{size}"
                kept[key_id] = (kind, SecretBytes.random(size))
                await keys.put(key_id, kind, kept[key_id][1])
            if KINDS[kind].random_ok:
                await keys.generate(f"{kind}/generated", kind)
        for key_id, (kind, secret) in kept.items():
            with await keys.get(key_id, kind) as back:
                assert back == secret and isinstance(back, SecretBytes)
        for kind in (k for k in KINDS if KINDS[k].random_ok):
            with await keys.get(f"{kind}/generated", kind) as generated:
                assert len(generated) == KINDS[kind].default_size
        await keys.generate("big", "generic", 4096)
        with await keys.get("big", "generic") as big:
            assert len(big) == 4096
    # And after a restart, from the store alone.
    async with keystore_node(tmp_path / "node.db", soft_token) as (keys, _):
        for key_id, (kind, secret) in kept.items():
            with await keys.get(key_id, kind) as back:
                assert back == secret


async def test_wrong_kind_size_and_key_id_are_refused(soft_token, tmp_path):
    async with keystore_node(tmp_path / "node.db", soft_token) as (keys, _):
        await refused(keys.put("k", "identity-signing", SecretBytes.random(31)), "keystore-bad-size")
        await refused(keys.put("k", "mpin-server-secret", SecretBytes.random(97)), "keystore-bad-size")
        await refused(keys.put("k", "generic", SecretBytes.random(4097)), "keystore-bad-size")
        await refused(keys.put("k", "no-such-kind", SecretBytes.random(32)), "keystore-bad-kind")
        await refused(keys.put("k", "generic", b"plain bytes are refused"), "bad-request")
        await refused(keys.generate("k", "dta-master-share"), "keystore-bad-kind")  # a scalar: not any bytes
        await refused(keys.generate("k", "backup-key", 16), "keystore-bad-size")
        for bad_id in ("", "x" * 129, "line\nbreak"):
            await refused(keys.put(bad_id, "generic", SecretBytes.random(8)), "keystore-bad-key-id")
        await refused(keys.get("k", "generic"), "keystore-no-key")
        await refused(keys.delete("k"), "keystore-no-key")
        assert await keys.list() == []

        await keys.put("share", "custody-share", SecretBytes.random(32))
        await refused(keys.get("share", "dta-master-share"), "keystore-bad-kind")
        await refused(keys.put("share", "custody-share", SecretBytes.random(32)), "keystore-exists")
        await refused(keys.generate("share", "generic"), "keystore-exists")
        replacement = SecretBytes.random(32)
        await keys.put("share", "custody-share", replacement, replace=True)
        with await keys.get("share", "custody-share") as back:
            assert back == replacement
        await keys.delete("share")
        await refused(keys.get("share", "custody-share"), "keystore-no-key")


async def test_a_record_moved_relabelled_or_altered_does_not_unwrap(soft_token, tmp_path):
    async with keystore_node(tmp_path / "node.db", soft_token) as (keys, sup):
        await keys.put("alice", "custody-share", SecretBytes.random(32))
        original = await sup.ask("store", KvGet(RECORDS_NS, "alice"))
        record = decode_record("alice", original)

        async def planted(key_id, value):
            await sup.ask("store", KvPut(RECORDS_NS, key_id, value))

        await planted("mallory", original)  # another key id
        error = await refused(keys.get("mallory", "custody-share"), "keystore-corrupt")
        assert "mallory" in error.message
        await planted("alice", encode_record("dta-master-share", record.kek, record.wrapped))  # another kind
        await refused(keys.get("alice", "dta-master-share"), "keystore-corrupt")
        flipped = bytes([record.wrapped[0]]) + record.wrapped[1:-1] + bytes([record.wrapped[-1] ^ 1])
        await planted("alice", encode_record("custody-share", record.kek, flipped))
        await refused(keys.get("alice", "custody-share"), "keystore-corrupt")
        await planted("alice", encode_record("custody-share", record.kek + 1, record.wrapped))
        await refused(keys.get("alice", "custody-share"), "keystore-corrupt")
        await planted("alice", b"\xa1not a record")
        await refused(keys.get("alice", "custody-share"), "keystore-corrupt")
        assert ("alice", None, None) in await keys.list()
        await refused(keys.rotate(), "keystore-corrupt")  # a rotation never drops a record
        await keys.delete("alice")
        await keys.delete("mallory")
        assert await keys.rotate() == 2


async def test_rotation_keeps_every_secret_and_destroys_the_old_kek(soft_token, tmp_path):
    secrets = {f"key-{i}": SecretBytes.random(32) for i in range(10)}
    async with keystore_node(tmp_path / "node.db", soft_token) as (keys, sup):
        for key_id, secret in secrets.items():
            await keys.put(key_id, "custody-share", secret)
        before = {k: await sup.ask("store", KvGet(RECORDS_NS, k)) for k in secrets}
        assert await keys.rotate() == 2
        assert await keys.rotate() == 3
        assert not await sup.ask("hsm-worker", HsmHasKey(kek_label(1)))
        assert not await sup.ask("hsm-worker", HsmHasKey(kek_label(2)))
        assert await sup.ask("hsm-worker", HsmHasKey(kek_label(3)))
        assert sorted(await keys.list()) == sorted((k, "custody-share", 3) for k in secrets)
        for key_id, secret in secrets.items():
            assert await sup.ask("store", KvGet(RECORDS_NS, key_id)) != before[key_id]
            with await keys.get(key_id, "custody-share") as back:
                assert back == secret
        await keys.put("after-rotation", "generic", SecretBytes.random(5))
        assert ("after-rotation", "generic", 3) in await keys.list()


async def test_list_and_audit_show_no_secret_values(soft_token, tmp_path):
    secret = SecretBytes.copy_from(b"\x5a" * 16 + b"audit-must-not-see-this")
    async with keystore_node(tmp_path / "node.db", soft_token) as (keys, sup):
        await keys.put("visible-id", "generic", secret)
        await keys.generate("generated-id", "backup-key")
        with await keys.get("generated-id", "backup-key") as generated:
            generated_bytes = generated.reveal()
        await keys.rotate()
        await keys.delete("visible-id")
        listed = await keys.list()
        tail = await sup.ask("store", AuditTail(20))
    assert listed == [("generated-id", "backup-key", 2)]
    actions = [(e.actor, e.action, e.detail) for e in tail]
    assert actions == [
        ("keystore", "keystore.kek-created", {"kek": 1}),
        ("keystore", "keystore.put", {"key_id": "visible-id", "kind": "generic"}),
        ("keystore", "keystore.generate", {"key_id": "generated-id", "kind": "backup-key"}),
        ("keystore", "keystore.kek-rotated", {"from": 1, "to": 2, "keys": 2}),
        ("keystore", "keystore.delete", {"key_id": "visible-id", "kind": "generic"}),
    ]
    shown = repr(listed) + repr(tail)
    for value in (secret.reveal(), generated_bytes):
        assert value.hex() not in shown and repr(value) not in shown


async def test_start_up_destroys_a_kek_left_by_a_rotation_that_died_before_commit(soft_token, tmp_path):
    secret = SecretBytes.random(32)
    async with keystore_node(tmp_path / "node.db", soft_token) as (keys, sup):
        await keys.put("k", "identity-signing", secret)
        await sup.ask("hsm-worker", HsmGenerateKey(kek_label(2), "aes-256"))  # step 2, then "killed"
    async with keystore_node(tmp_path / "node.db", soft_token) as (keys, sup):
        assert not await sup.ask("hsm-worker", HsmHasKey(kek_label(2)))
        with await keys.get("k", "identity-signing") as back:
            assert back == secret
        assert await keys.rotate() == 2


async def test_start_up_destroys_the_old_kek_of_a_rotation_that_died_after_commit(soft_token, tmp_path):
    secret = SecretBytes.random(32)
    async with keystore_node(tmp_path / "node.db", soft_token) as (keys, sup):
        await keys.put("k", "identity-signing", secret)
        assert await keys.rotate() == 2
        # The state of a kill between step 4 and 5: store at 2, token holds 1 and 2.
        await sup.ask("hsm-worker", HsmGenerateKey(kek_label(1), "aes-256"))
    async with keystore_node(tmp_path / "node.db", soft_token) as (keys, sup):
        assert not await sup.ask("hsm-worker", HsmHasKey(kek_label(1)))
        with await keys.get("k", "identity-signing") as back:
            assert back == secret
        tail = await sup.ask("store", AuditTail(1))
        assert (tail[0].action, tail[0].detail) == ("keystore.kek-leftover-destroyed", {"kek": 1})


def test_plan_destroys_only_unused_neighbours_of_a_present_kek():
    assert plan_kek(KekFacts(None, frozenset(), frozenset())) == KekPlan(create=1, record=1)
    assert plan_kek(KekFacts(None, frozenset({1}), frozenset())) == KekPlan(record=1)  # adopt
    assert plan_kek(KekFacts(3, frozenset({2, 3, 4}), frozenset({3}))) == KekPlan(destroy=(2, 4))
    assert plan_kek(KekFacts(3, frozenset({2, 3}), frozenset({2, 3}))) == KekPlan()  # still named: keep
    assert plan_kek(KekFacts(3, frozenset({3}), frozenset({3}))) == KekPlan()
    for facts in (KekFacts(3, frozenset({2, 4}), frozenset({3})), KekFacts(None, frozenset(), frozenset({1}))):
        with pytest.raises(KeystoreError):  # a stale store beside a newer token: touch nothing
            plan_kek(facts)


async def test_a_data_dir_beside_another_token_gives_a_clear_error(soft_token, tmp_path):
    async with keystore_node(tmp_path / "node.db", soft_token) as (keys, _):
        await keys.put("k", "backup-key", SecretBytes.random(32))
    other = make_token(tmp_path / "other-hsm")
    async with keystore_node(tmp_path / "node.db", other) as (keys, sup):
        error = await refused(keys.get("k", "backup-key"), "keystore-no-kek")
        assert kek_label(1) in error.message
        assert not await sup.ask("hsm-worker", HsmHasKey(kek_label(1)))  # created nothing


async def test_hsm_unavailable_reaches_the_caller_with_its_code(soft_token, tmp_path):
    gone = SoftToken(soft_token.conf, "no-such-token", soft_token.pin)
    async with keystore_node(tmp_path / "node.db", gone) as (keys, sup):
        await refused(keys.put("k", "generic", SecretBytes.random(4)), "hsm-unavailable")
        assert sup.states["keystore"].state == "running"
        assert sup.states["keystore"].ctx.info["keystore"] == "unavailable"


def test_bootstrap_kek_for_init_is_idempotent(soft_token, tmp_path):
    db = tmp_path / "node.db"
    session = Pkcs11Session.open(soft_token.target())
    try:
        with Store.open(db) as store:
            assert bootstrap_kek(session, store) == [f"node KEK {kek_label(1)!r} in the token"]
            assert bootstrap_kek(session, store) == []
            assert store.kv_get(META_NS, META_KEY) is not None
            assert [e.action for e in store.audit_tail(10)] == ["keystore.kek-created"]
        assert session.has_key(kek_label(1)) and not session.has_key(kek_label(2))
    finally:
        session.close()


async def test_the_keystore_uses_the_kek_init_created(soft_token, tmp_path):
    db = tmp_path / "node.db"
    session = Pkcs11Session.open(soft_token.target())
    with Store.open(db) as store:
        bootstrap_kek(session, store)
    session.close()
    async with keystore_node(db, soft_token) as (keys, sup):
        await keys.put("k", "generic", SecretBytes.random(3))
        assert await keys.list() == [("k", "generic", 1)]
        assert [e.action for e in await sup.ask("store", AuditTail(5))] == ["keystore.kek-created", "keystore.put"]
