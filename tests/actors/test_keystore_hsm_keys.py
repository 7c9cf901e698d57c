"""Keys generated inside the HSM and kept there (keystore `create_in_hsm`, `sign`, `public_key`).

Real SoftHSM2 tokens and real SQLite stores in tmp_path (hsmkit). The proof that
a private key cannot be exported runs python-pkcs11 directly in a child process
(one PKCS#11 client per process). The SIGKILL test runs this file as its child:

    python test_keystore_hsm_keys.py churn DB CONF LABEL PIN
        create and delete keys in the slots `SLOTS` forever, printing "op" after each
    python test_keystore_hsm_keys.py check DB CONF LABEL PIN
        report what a kill left (store and token, before any clean-up), then start
        the keystore (its start-up clean-up runs) and report again, as one JSON line
"""

from __future__ import annotations

import hashlib
import itertools
import json
import os
import random
import select
import subprocess
import sys
from collections import Counter
from pathlib import Path

import dag_cbor
import pytest
import trio
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, ed25519
from cryptography.hazmat.primitives.asymmetric.utils import Prehashed, encode_dss_signature

from actors.hsm_worker.session import Pkcs11Session
from actors.mailbox import ActorError
from actors.messages import (
    AuditTail, HsmDestroyKey, HsmGenerateKey, HsmHasKey, KeyCreateInHsm, KeyDelete, KvGet, KvItems, KvPut,
)
from hsmkit import MODULE, SoftToken, activate, keystore_node, make_token, soft_token  # noqa: F401  (soft_token is a fixture)
from testkit import refused
from milagro_node.adapters.sqlite_store import Store
from milagro_node.core.keystore import (
    RECORDS_NS, KeystoreError, ResidentRecord, decode_entry, encode_resident, resident_label,
)
from milagro_node.secret_memory import SecretBytes

ALGORITHMS = ("ed25519", "secp256k1", "p256")
CURVES = {"secp256k1": ec.SECP256K1(), "p256": ec.SECP256R1()}
ORDERS = {
    "secp256k1": 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141,
    "p256": 0xFFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551,
}
SLOTS = tuple(f"churn-{i}" for i in range(5))
KILLS = 8
pytestmark = pytest.mark.skipif(not MODULE.exists(), reason="softhsm2 is installed by scripts/install.sh")


def message_for(algorithm: str, text: bytes = b"a message") -> bytes:
    """What `sign` takes: Ed25519 signs the message, ECDSA its SHA-256 digest."""
    return text if algorithm == "ed25519" else hashlib.sha256(text).digest()


def verify(algorithm: str, public: bytes, signature: bytes, data: bytes) -> None:
    """Raise InvalidSignature unless `signature` is `public`'s over `data` (ECDSA: low S too)."""
    if algorithm == "ed25519":
        ed25519.Ed25519PublicKey.from_public_bytes(public).verify(signature, data)
        return
    r, s = int.from_bytes(signature[:32], "big"), int.from_bytes(signature[32:], "big")
    if len(signature) != 64 or s > ORDERS[algorithm] // 2:
        raise InvalidSignature(f"not a 64-byte low-S signature: {len(signature)} bytes")
    key = ec.EllipticCurvePublicKey.from_encoded_point(CURVES[algorithm], public)
    key.verify(encode_dss_signature(r, s), data, ec.ECDSA(Prehashed(hashes.SHA256())))



async def stored(sup, key_id):
    return await sup.ask("store", KvGet(RECORDS_NS, key_id))


def use_token(token: SoftToken, monkeypatch) -> SoftToken:
    monkeypatch.setenv("SOFTHSM2_CONF", str(token.conf))
    activate(token)
    return token


# --- creating, signing, reading the public key ------------------------------------------


async def test_create_sign_and_verify_for_every_algorithm(soft_token, tmp_path):
    async with keystore_node(tmp_path / "node.db", soft_token) as (keys, sup):
        public = {alg: await keys.create_in_hsm(f"id-{alg}", alg) for alg in ALGORITHMS}
        assert [len(public[alg]) for alg in ALGORITHMS] == [32, 65, 65]
        for alg in ALGORITHMS:
            key_id = f"id-{alg}"
            assert await keys.public_key(key_id) == public[alg]
            assert await sup.ask("hsm-worker", HsmHasKey(f"milagro-key-{key_id}"))
            for i in range(12):  # SoftHSM returns high-S about half the time: the low-S form is checked
                data = message_for(alg, f"message {i}".encode())
                verify(alg, public[alg], await keys.sign(key_id, data), data)
            with pytest.raises(InvalidSignature):
                verify(alg, public[alg], await keys.sign(key_id, message_for(alg, b"one")), message_for(alg, b"two"))
            record = dag_cbor.decode(await stored(sup, key_id))
            assert record == {"v": 1, "resident": alg, "label": f"milagro-key-{key_id}", "public": public[alg]}
        long_message = bytes(range(256)) * 16  # Ed25519 signs the message itself, of any length
        verify("ed25519", public["ed25519"], await keys.sign("id-ed25519", long_message), long_message)
        assert sorted(await keys.list()) == [(f"id-{alg}", f"hsm:{alg}", None) for alg in sorted(ALGORITHMS)]
        tail = await sup.ask("store", AuditTail(10))
    # Create is audited with key id and algorithm only; signing is not audited.
    assert [(e.action, e.detail) for e in tail[1:]] == [
        ("keystore.hsm-key-created", {"key_id": f"id-{alg}", "algorithm": alg}) for alg in ALGORITHMS]


async def test_bad_requests_are_refused_and_keys_do_not_mix(soft_token, tmp_path):
    async with keystore_node(tmp_path / "node.db", soft_token) as (keys, sup):
        await keys.create_in_hsm("resident", "p256")
        await keys.put("wrapped", "identity-signing", SecretBytes.random(32))

        await refused(keys.create_in_hsm("k", "rsa-2048"), "keystore-bad-kind")
        await refused(keys.create_in_hsm("k", "aes-256"), "keystore-bad-kind")  # a KEK kind, not a key pair
        for bad_id in ("", "x" * 29, "with space", "ünïcode", "-leading-dash", "line\nbreak", 7):
            await refused(keys.create_in_hsm(bad_id, "ed25519"), "keystore-bad-key-id")
        await keys.create_in_hsm("a" * 28, "ed25519")  # the longest: its label is 40 bytes
        await keys.create_in_hsm("node/identity.v2_x", "ed25519")

        # One key id names one key of either sort.
        await refused(keys.create_in_hsm("resident", "ed25519"), "keystore-exists")
        await refused(keys.create_in_hsm("wrapped", "ed25519"), "keystore-exists")
        await refused(keys.put("resident", "generic", SecretBytes.random(8)), "keystore-exists")
        await refused(keys.put("resident", "generic", SecretBytes.random(8), replace=True), "keystore-exists")
        await refused(keys.generate("resident", "generic"), "keystore-exists")
        error = await refused(keys.get("resident", "custody-share"), "keystore-bad-kind")
        assert "never leaves the token" in error.message
        await refused(keys.sign("wrapped", b"x"), "keystore-bad-kind")
        await refused(keys.public_key("wrapped"), "keystore-bad-kind")
        await refused(keys.sign("nobody", b"x"), "keystore-no-key")
        await refused(keys.public_key("nobody"), "keystore-no-key")

        await refused(keys.sign("resident", b"not a 32-byte digest"), "keystore-bad-size")
        await refused(keys.sign("resident", "text"), "bad-request")
        public = await keys.public_key("resident")
        digest = bytearray(hashlib.sha256(b"bytes-like").digest())
        verify("p256", public, await keys.sign("resident", digest), bytes(digest))
        assert await stored(sup, "wrapped") is not None and await keys.list() == [
            ("a" * 28, "hsm:ed25519", None), ("node/identity.v2_x", "hsm:ed25519", None),
            ("resident", "hsm:p256", None), ("wrapped", "identity-signing", 1)]


async def test_delete_destroys_the_token_key(soft_token, tmp_path):
    async with keystore_node(tmp_path / "node.db", soft_token) as (keys, sup):
        await keys.create_in_hsm("short-lived", "secp256k1")
        await keys.delete("short-lived")
        assert not await sup.ask("hsm-worker", HsmHasKey(resident_label("short-lived")))
        assert await stored(sup, "short-lived") is None
        assert await keys.list() == []
        await refused(keys.sign("short-lived", bytes(32)), "keystore-no-key")
        await refused(keys.delete("short-lived"), "keystore-no-key")
        again = await keys.create_in_hsm("short-lived", "ed25519")  # the id is free again, for any algorithm
        assert await keys.public_key("short-lived") == again
        tail = await sup.ask("store", AuditTail(3))
    assert [(e.action, e.detail) for e in tail] == [
        ("keystore.hsm-key-created", {"key_id": "short-lived", "algorithm": "secp256k1"}),
        ("keystore.hsm-key-deleted", {"key_id": "short-lived", "algorithm": "secp256k1"}),
        ("keystore.hsm-key-created", {"key_id": "short-lived", "algorithm": "ed25519"}),
    ]


async def test_keys_survive_a_restart(soft_token, tmp_path):
    db = tmp_path / "node.db"
    async with keystore_node(db, soft_token) as (keys, _):
        public = {alg: await keys.create_in_hsm(alg, alg) for alg in ALGORITHMS}
        listed = await keys.list()
    async with keystore_node(db, soft_token) as (keys, sup):
        assert await keys.list() == listed
        for alg in ALGORITHMS:
            assert await keys.public_key(alg) == public[alg]
            verify(alg, public[alg], await keys.sign(alg, message_for(alg)), message_for(alg))
        assert sup.states["keystore"].ctx.info["keystore_missing_keys"] is None


async def test_kek_rotation_leaves_resident_keys_as_they_are(soft_token, tmp_path):
    async with keystore_node(tmp_path / "node.db", soft_token) as (keys, sup):
        secret = SecretBytes.random(32)
        await keys.put("wrapped", "backup-key", secret)
        public = {alg: await keys.create_in_hsm(alg, alg) for alg in ALGORITHMS}
        records = {alg: await stored(sup, alg) for alg in ALGORITHMS}
        assert await keys.rotate() == 2
        assert await keys.rotate() == 3
        assert {alg: await stored(sup, alg) for alg in ALGORITHMS} == records  # untouched, byte for byte
        for alg in ALGORITHMS:
            verify(alg, public[alg], await keys.sign(alg, message_for(alg)), message_for(alg))
        with await keys.get("wrapped", "backup-key") as back:
            assert back == secret
        assert sorted(await keys.list()) == sorted(
            [("wrapped", "backup-key", 3)] + [(alg, f"hsm:{alg}", None) for alg in ALGORITHMS])
        rotated = [e.detail for e in await sup.ask("store", AuditTail(10)) if e.action == "keystore.kek-rotated"]
    assert rotated == [{"from": 1, "to": 2, "keys": 1}, {"from": 2, "to": 3, "keys": 1}]
    async with keystore_node(tmp_path / "node.db", soft_token) as (keys, _):
        for alg in ALGORITHMS:
            verify(alg, public[alg], await keys.sign(alg, message_for(alg)), message_for(alg))


# --- a token that lacks the mechanism ----------------------------------------------------


async def test_a_token_without_the_mechanism_refuses_clearly_and_nothing_is_written(tmp_path, monkeypatch):
    aes_only = use_token(make_token(tmp_path / "aes-only", mechanisms=("CKM_AES_KEY_GEN", "CKM_AES_GCM")),
                         monkeypatch)
    async with keystore_node(tmp_path / "a.db", aes_only) as (keys, sup):
        for alg in ALGORITHMS:
            error = await refused(keys.create_in_hsm(f"id-{alg}", alg), "hsm-unsupported")
            assert alg in error.message and f"id-{alg}" in error.message
            assert not await sup.ask("hsm-worker", HsmHasKey(resident_label(f"id-{alg}")))
        assert await sup.ask("store", KvItems(RECORDS_NS)) == []
        assert [e.action for e in await sup.ask("store", AuditTail(10))] == ["keystore.kek-created"]
        await keys.put("wrapped", "generic", SecretBytes.random(8))  # the rest of the keystore works

    ec_only = use_token(make_token(tmp_path / "ec-only", mechanisms=(
        "CKM_AES_KEY_GEN", "CKM_AES_GCM", "CKM_EC_KEY_PAIR_GEN", "CKM_ECDSA")), monkeypatch)
    async with keystore_node(tmp_path / "b.db", ec_only) as (keys, sup):
        error = await refused(keys.create_in_hsm("identity", "ed25519"), "hsm-unsupported")
        assert "EC_EDWARDS_KEY_PAIR_GEN" in error.message and "EDDSA" in error.message
        assert await stored(sup, "identity") is None
        for alg in ("secp256k1", "p256"):
            public = await keys.create_in_hsm(alg, alg)
            verify(alg, public, await keys.sign(alg, message_for(alg)), message_for(alg))


# --- the private key cannot leave the token ----------------------------------------------

PROOF_CHILD = r"""
import json, sys
import pkcs11
from pkcs11 import Attribute, KeyType, Mechanism, MechanismFlag, ObjectClass
from pkcs11.util.ec import encode_named_curve_parameters

module, token_label, pin, *labels = sys.argv[1:]
token = pkcs11.lib(module).get_token(token_label=token_label)

def attempt(action):
    try:
        action()
    except pkcs11.PKCS11Error as exc:
        return type(exc).__name__
    return "allowed"

report = {}
with token.open(user_pin=pin, rw=True) as session:
    wrapping = session.generate_key(KeyType.AES, 256, store=False, capabilities=(
        MechanismFlag.WRAP | MechanismFlag.UNWRAP | MechanismFlag.ENCRYPT | MechanismFlag.DECRYPT))
    for label in labels:
        key = session.get_key(object_class=ObjectClass.PRIVATE_KEY, label=label)
        report[label] = {
            "flags": [key[a] for a in (Attribute.SENSITIVE, Attribute.EXTRACTABLE, Attribute.ALWAYS_SENSITIVE,
                                       Attribute.NEVER_EXTRACTABLE)],
            "read value": attempt(lambda: key[Attribute.VALUE]),
            "wrap": attempt(lambda: wrapping.wrap_key(key, mechanism=Mechanism.AES_KEY_WRAP_PAD)),
            "make extractable": attempt(lambda: key.__setitem__(Attribute.EXTRACTABLE, True)),
            "make not sensitive": attempt(lambda: key.__setitem__(Attribute.SENSITIVE, False)),
        }
    # Control: this token does wrap an extractable private key, so the refusals above are the key's.
    _, control = session.generate_keypair(
        KeyType.EC, store=False, public_template={Attribute.EC_PARAMS: encode_named_curve_parameters(
            "1.2.840.10045.3.1.7")}, private_template={Attribute.SENSITIVE: True, Attribute.EXTRACTABLE: True})
    report["control"] = attempt(lambda: wrapping.wrap_key(control, mechanism=Mechanism.AES_KEY_WRAP_PAD))
print(json.dumps(report))
"""


async def test_the_token_refuses_to_export_a_private_key(soft_token, tmp_path):
    async with keystore_node(tmp_path / "node.db", soft_token) as (keys, _):
        for alg in ALGORITHMS:
            await keys.create_in_hsm(alg, alg)
    # The node stopped (its session closed); a separate PKCS#11 client, logged in with the user PIN, tries.
    labels = [resident_label(alg) for alg in ALGORITHMS]
    out = subprocess.run([sys.executable, "-c", PROOF_CHILD, str(MODULE), soft_token.label, soft_token.pin, *labels],
                         capture_output=True, text=True, timeout=60, env={**os.environ, **soft_token.env})
    assert out.returncode == 0, out.stderr
    report = json.loads(out.stdout)
    assert report.pop("control") == "allowed"
    for label in labels:
        assert report[label] == {
            "flags": [True, False, True, True],  # sensitive, not extractable, always sensitive, never extractable
            "read value": "AttributeSensitive",
            "wrap": "KeyUnextractable",
            "make extractable": "AttributeReadOnly",
            "make not sensitive": "AttributeReadOnly",
        }, label


# --- crash states and what start-up does with them ---------------------------------------


async def test_start_up_destroys_the_key_of_an_unfinished_create_or_delete(soft_token, tmp_path):
    db, label = tmp_path / "node.db", resident_label("half-made")
    async with keystore_node(db, soft_token) as (_, sup):
        # Steps 2 and 3 of a create (or 5 of a delete), then "killed": an unfinished record, and the key.
        await sup.ask("store", KvPut(RECORDS_NS, "half-made", encode_resident("ed25519", label, None)))
        await sup.ask("hsm-worker", HsmGenerateKey(label, "ed25519"))
        # And one killed after step 2 only: a record, no key.
        await sup.ask("store", KvPut(RECORDS_NS, "not-made", encode_resident("p256", resident_label("not-made"), None)))
    async with keystore_node(db, soft_token) as (keys, sup):
        assert not await sup.ask("hsm-worker", HsmHasKey(label))
        assert await sup.ask("store", KvItems(RECORDS_NS)) == []
        tail = await sup.ask("store", AuditTail(1))
        assert (tail[0].action, tail[0].detail) == (
            "keystore.hsm-key-leftover-destroyed", {"key_id": "half-made", "algorithm": "ed25519"})
        public = await keys.create_in_hsm("half-made", "ed25519")  # a retry makes a fresh key
        verify("ed25519", public, await keys.sign("half-made", b"m"), b"m")


async def test_a_recorded_key_missing_from_the_token_is_reported_and_corrupt_on_use(soft_token, tmp_path):
    db = tmp_path / "node.db"
    async with keystore_node(db, soft_token) as (keys, sup):
        await keys.create_in_hsm("kept", "ed25519")
        await keys.create_in_hsm("lost", "secp256k1")
        await sup.ask("hsm-worker", HsmDestroyKey(resident_label("lost")))  # as the HSM's own tools could
    async with keystore_node(db, soft_token) as (keys, sup):
        assert sup.states["keystore"].ctx.info["keystore_missing_keys"] == ["lost"]
        for call in (keys.sign("lost", bytes(32)), keys.public_key("lost")):
            error = await refused(call, "keystore-corrupt")
            assert "'lost'" in error.message and resident_label("lost") in error.message
        assert ("lost", "hsm:secp256k1", None) in await keys.list()
        await keys.delete("lost")  # how an operator clears it
        assert await keys.list() == [("kept", "hsm:ed25519", None)]
        await keys.sign("kept", b"still fine")


async def test_a_token_key_no_record_names_is_never_destroyed(soft_token, tmp_path):
    db, label = tmp_path / "node.db", resident_label("identity")
    async with keystore_node(db, soft_token) as (_, sup):
        # E.g. a store restored from a backup older than the key: the key may be an identity peers know.
        foreign = await sup.ask("hsm-worker", HsmGenerateKey(label, "ed25519"))
    async with keystore_node(db, soft_token) as (keys, sup):
        assert await sup.ask("hsm-worker", HsmHasKey(label))
        error = await refused(keys.create_in_hsm("identity", "ed25519"), "keystore-exists")
        assert label in error.message
        assert await stored(sup, "identity") is None and await keys.list() == []
        assert await sup.ask("hsm-worker", HsmHasKey(label))
        await refused(keys.sign("identity", b"m"), "keystore-no-key")
    session = Pkcs11Session.open(soft_token.target())
    try:
        assert session.public_key(label) == foreign
    finally:
        session.close()


async def test_a_tampered_record_is_corrupt(soft_token, tmp_path):
    async with keystore_node(tmp_path / "node.db", soft_token) as (keys, sup):
        alice = await keys.create_in_hsm("alice", "ed25519")
        await keys.create_in_hsm("bob", "ed25519")
        # Alice's record now carries Bob's public key: the token tells.
        bob_record = dag_cbor.decode(await stored(sup, "bob"))
        await sup.ask("store", KvPut(RECORDS_NS, "alice", encode_resident("ed25519", resident_label("alice"),
                                                                          bob_record["public"])))
        await refused(keys.public_key("alice"), "keystore-corrupt")
        # Mallory's record points at Bob's token key: not a record of hers.
        await sup.ask("store", KvPut(RECORDS_NS, "mallory", encode_resident("ed25519", resident_label("bob"), alice)))
        await refused(keys.sign("mallory", b"m"), "keystore-corrupt")
        assert ("mallory", None, None) in await keys.list()
        await refused(keys.rotate(), "keystore-corrupt")  # as for any unreadable record
        await keys.delete("mallory")  # drops the record only: Bob's key is Bob's
        assert await sup.ask("hsm-worker", HsmHasKey(resident_label("bob")))
        assert await keys.rotate() == 2
    with pytest.raises(KeystoreError):
        decode_entry("mallory", encode_resident("ed25519", resident_label("bob"), alice))


async def test_a_create_cut_off_at_its_deadline_leaves_no_half_key(soft_token, tmp_path):
    outcomes = Counter()
    async with keystore_node(tmp_path / "node.db", soft_token) as (keys, sup):
        for i in range(60):  # a create takes about 20 ms here: cut it off anywhere from 1 to 30 ms (or not)
            key_id = f"rushed-{i % 4}"
            timeout = 0.001 * (i % 30 + 1) if i % 5 else 10.0
            try:
                await sup.ask("keystore", KeyCreateInHsm(key_id, ALGORITHMS[i % 3]), timeout=timeout)
                outcomes["created"] += 1
            except ActorError as exc:
                assert exc.code in ("deadline-exceeded", "keystore-exists"), exc
                outcomes[exc.code] += 1
            await keys.list()  # the next request: its token check cleans what a cut-off create left
            for slot in (f"rushed-{j}" for j in range(4)):
                value = await stored(sup, slot)
                in_token = await sup.ask("hsm-worker", HsmHasKey(resident_label(slot)))
                if value is None:
                    assert not in_token, slot
                else:
                    entry = decode_entry(slot, value)
                    assert isinstance(entry, ResidentRecord) and not entry.pending and in_token, slot
                    if i % 2:
                        try:  # a delete runs to its end even when its caller gave up
                            await sup.ask("keystore", KeyDelete(slot), timeout=0.001 * (i % 10 + 1))
                        except ActorError as exc:
                            assert exc.code == "deadline-exceeded", exc
                        assert slot not in [k for k, _, _ in await keys.list()]  # served after the delete
                        assert await stored(sup, slot) is None
                        assert not await sup.ask("hsm-worker", HsmHasKey(resident_label(slot)))
        leftovers = sum(e.action == "keystore.hsm-key-leftover-destroyed" for e in await sup.ask("store", AuditTail(500)))
    print(f"cut-off creates: {dict(outcomes)}, leftover keys destroyed: {leftovers}")
    assert outcomes["created"] and outcomes["deadline-exceeded"], outcomes


# --- SIGKILL at random points ------------------------------------------------------------


def spawn(mode: str, db: Path, token: SoftToken, stderr) -> subprocess.Popen:
    tests = str(Path(__file__).resolve().parent.parent)
    env = {k: v for k, v in os.environ.items() if not k.startswith("MILAGRO_")}
    env.update(token.env, PYTHONPATH=os.pathsep.join(filter(None, [tests, env.get("PYTHONPATH")])))
    return subprocess.Popen([sys.executable, __file__, mode, str(db), *token.argv()],
                            stdout=subprocess.PIPE, stderr=stderr, text=True, env=env)


@pytest.mark.slow
def test_create_and_delete_killed_at_random_points_leave_no_unnamed_key(tmp_path):
    seed = int.from_bytes(os.urandom(4), "big")
    delays = random.Random(seed).sample([i / 200 for i in range(2, 80)], KILLS)
    token = make_token(tmp_path / "hsm")
    db = tmp_path / "node.db"
    states, ops = Counter(), 0
    with open(tmp_path / "children.log", "w") as log:
        for delay in delays:
            churn = spawn("churn", db, token, log)
            ready, _, _ = select.select([churn.stdout], [], [], 30)
            if not ready or churn.stdout.readline().strip() != "ready":
                churn.kill()
                pytest.fail(f"churn child did not start (stderr in {log.name})")
            select.select([], [], [], delay)
            churn.kill()
            churn.wait(timeout=10)
            ops += sum(line.startswith("op") for line in churn.stdout)
            churn.stdout.close()

            out, _ = spawn("check", db, token, log).communicate(timeout=60)
            report = json.loads(out.strip().splitlines()[-1])
            context = f"seed {seed}, delay {delay}: {report} (stderr in {log.name})"
            for slot, (record, in_token) in report["before"].items():
                # At every instant: every token key the keystore made is named by a record,
                # and a ready record has its key.
                assert record is not None or not in_token, context
                assert record != "ready" or in_token, context
                states[f"{record} record, {'key' if in_token else 'no key'}"] += 1
            for slot, (record, in_token, signs) in report["after"].items():
                assert record in (None, "ready"), context  # no unfinished record is left
                assert in_token == (record == "ready") == signs, context  # and a ready key pair is whole
            assert report["missing"] == [], context
    print(f"{KILLS} kills over {ops} creates and deletes (seed {seed}): {dict(states)}")
    assert ops > KILLS


async def churn_forever(db: Path, token: SoftToken) -> None:
    async with keystore_node(db, token) as (keys, _):
        print("ready", flush=True)
        for i in itertools.count():
            slot = SLOTS[i % len(SLOTS)]
            if slot in {key_id for key_id, _, _ in await keys.list()}:
                await keys.delete(slot)
            else:
                await keys.create_in_hsm(slot, ALGORITHMS[i % len(ALGORITHMS)])
            print("op", flush=True)


def left_by_the_kill(db: Path, token: SoftToken) -> dict[str, tuple[str | None, bool]]:
    """Per slot: its record ("unfinished", "ready" or None) and whether the token holds its key."""
    with Store.open(db) as store:
        entries = {key_id: decode_entry(key_id, value) for key_id, value in store.kv_items(RECORDS_NS)}
    session = Pkcs11Session.open(token.target())
    try:
        in_token = {slot: session.has_key(resident_label(slot)) for slot in SLOTS}
    finally:
        session.close()
    return {slot: (_state(entries.get(slot)), in_token[slot]) for slot in SLOTS}


def _state(entry: ResidentRecord | None) -> str | None:
    return None if entry is None else "unfinished" if entry.pending else "ready"


async def check_after_start(db: Path, token: SoftToken) -> dict:
    report: dict = {"before": left_by_the_kill(db, token), "after": {}}
    async with keystore_node(db, token) as (keys, sup):
        report["missing"] = sorted(sup.states["keystore"].ctx.info.get("keystore_missing_keys") or [])
        for slot in SLOTS:
            value = await stored(sup, slot)
            entry = None if value is None else decode_entry(slot, value)
            in_token = await sup.ask("hsm-worker", HsmHasKey(resident_label(slot)))
            signs = False
            if entry is not None and not entry.pending and in_token:
                data = message_for(entry.algorithm)
                verify(entry.algorithm, await keys.public_key(slot), await keys.sign(slot, data), data)
                signs = True
            report["after"][slot] = (_state(entry), in_token, signs)
    return report


if __name__ == "__main__":
    mode, db_path, *token_args = sys.argv[1:]
    child_token = SoftToken.from_argv(*token_args)
    if mode == "churn":
        trio.run(churn_forever, Path(db_path), child_token)
    else:
        print(json.dumps(trio.run(check_after_start, Path(db_path), child_token)), flush=True)
