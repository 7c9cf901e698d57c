"""The hsm-worker actor against a real SoftHSM2 token made in tmp_path.

Real time, not an autojump clock: the actor waits on an OS thread, and an
autojump clock would leap past every deadline while it waits.
"""

import hashlib
import os
import subprocess
from pathlib import Path

import pytest
import trio
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, ed25519
from cryptography.hazmat.primitives.asymmetric.utils import Prehashed, encode_dss_signature
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from actors.hsm_worker import HsmTarget, HsmWorker
from actors.mailbox import ActorError
from actors.messages import (
    HsmDerive, HsmDestroyKey, HsmGenerateKey, HsmHasKey, HsmHealth, HsmPublicKey, HsmRandom, HsmSign,
    HsmUnwrap, HsmWrap, KvGet, KvPut,
)
from actors.store import StoreActor
from milagro_node.runtime.supervisor import ActorSpec, Supervisor
from milagro_node.secret_memory import SecretBytes

MODULE = Path("/usr/lib/softhsm/libsofthsm2.so")
SECP256K1_N = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141
pytestmark = pytest.mark.skipif(not MODULE.exists(), reason="softhsm2 is installed by scripts/install.sh")


def make_token(root: Path, label: str = "worker-test", pin: str = "1234-user") -> HsmTarget:
    """A fresh SoftHSM token under `root` (softhsm2-util with PINs as arguments: tests only)."""
    (root / "tokens").mkdir(parents=True)
    conf = root / "softhsm2.conf"
    conf.write_text(f"directories.tokendir = {root / 'tokens'}\nobjectstore.backend = file\nlog.level = ERROR\n")
    subprocess.run(
        ["softhsm2-util", "--init-token", "--free", "--label", label, "--so-pin", "so-pin-1", "--pin", pin],
        check=True, capture_output=True, env={**os.environ, "SOFTHSM2_CONF": str(conf)},
    )
    return HsmTarget(MODULE, label, None, SecretBytes.copy_from(pin.encode()), (("SOFTHSM2_CONF", str(conf)),))


async def start(nursery, tmp_path, target):
    specs = [ActorSpec("store", lambda: StoreActor(tmp_path / "node.db")), ActorSpec("hsm-worker", lambda: HsmWorker(lambda: target))]
    sup = Supervisor(specs, request_timeout=10)
    await nursery.start(sup.run)
    return sup


def hsm_state(sup):
    return {a["name"]: a for a in sup.snapshot()}["hsm-worker"]


async def test_every_operation(nursery, tmp_path):
    sup = await start(nursery, tmp_path, make_token(tmp_path / "hsm"))
    assert hsm_state(sup)["hsm"] == "ok" and hsm_state(sup)["token"] == "worker-test"

    assert await sup.ask("hsm-worker", HsmGenerateKey("kek-1", "aes-256")) is None
    secret = SecretBytes.copy_from(b"an odd length secret: 37 bytes long!")
    wrapped = await sup.ask("hsm-worker", HsmWrap("kek-1", secret, b"id=a;purpose=b"))
    assert secret.reveal() not in wrapped
    assert await sup.ask("hsm-worker", HsmUnwrap("kek-1", wrapped, b"id=a;purpose=b")) == secret
    with pytest.raises(ActorError) as moved:
        await sup.ask("hsm-worker", HsmUnwrap("kek-1", wrapped, b"id=a;purpose=c"))
    assert moved.value.code == "hsm-unwrap-failed"

    ed_pub = await sup.ask("hsm-worker", HsmGenerateKey("identity", "ed25519"))
    assert await sup.ask("hsm-worker", HsmPublicKey("identity")) == ed_pub
    signature = await sup.ask("hsm-worker", HsmSign("identity", b"hello"))
    ed25519.Ed25519PublicKey.from_public_bytes(ed_pub).verify(signature, b"hello")

    k1_pub = ec.EllipticCurvePublicKey.from_encoded_point(
        ec.SECP256K1(), await sup.ask("hsm-worker", HsmGenerateKey("custody", "secp256k1")))
    digest = hashlib.sha256(b"spend").digest()
    for _ in range(16):  # SoftHSM returns high-S about half the time
        sig = await sup.ask("hsm-worker", HsmSign("custody", digest))
        r, s = int.from_bytes(sig[:32], "big"), int.from_bytes(sig[32:], "big")
        assert s <= SECP256K1_N // 2
        k1_pub.verify(encode_dss_signature(r, s), digest, ec.ECDSA(Prehashed(hashes.SHA256())))

    p256_pub = await sup.ask("hsm-worker", HsmGenerateKey("agreement", "p256"))
    peer = ec.generate_private_key(ec.SECP256R1())
    peer_pub = peer.public_key().public_bytes(Encoding.X962, PublicFormat.UncompressedPoint)
    shared = await sup.ask("hsm-worker", HsmDerive("agreement", peer_pub))
    assert shared == peer.exchange(ec.ECDH(), ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), p256_pub))

    random = await sup.ask("hsm-worker", HsmRandom(32))
    assert isinstance(random, SecretBytes) and len(random) == 32
    assert (await sup.ask("hsm-worker", HsmHealth()))["model"] == "SoftHSM v2"

    with pytest.raises(ActorError) as exists:
        await sup.ask("hsm-worker", HsmGenerateKey("kek-1", "aes-256"))
    assert exists.value.code == "hsm-key-exists"
    await sup.ask("hsm-worker", HsmDestroyKey("kek-1"))
    assert await sup.ask("hsm-worker", HsmHasKey("kek-1")) is False
    with pytest.raises(ActorError) as gone:
        await sup.ask("hsm-worker", HsmUnwrap("kek-1", wrapped, b"id=a;purpose=b"))
    assert gone.value.code == "hsm-no-key"
    assert hsm_state(sup)["restarts"] == 0


async def test_token_removed_then_back(nursery, tmp_path):
    sup = await start(nursery, tmp_path, make_token(tmp_path / "hsm"))
    await sup.ask("hsm-worker", HsmGenerateKey("kek-1", "aes-256"))
    secret = SecretBytes.random(32)
    wrapped = await sup.ask("hsm-worker", HsmWrap("kek-1", secret, b"aad"))

    [token_dir] = (tmp_path / "hsm" / "tokens").iterdir()
    token_dir.rename(token_dir.with_name("unplugged"))
    for request in (HsmUnwrap("kek-1", wrapped, b"aad"), HsmHealth(), HsmSign("kek-1", b"x" * 32)):
        with pytest.raises(ActorError) as failed:
            await sup.ask("hsm-worker", request)
        assert failed.value.code == "hsm-unavailable"
        assert "worker-test" in failed.value.message
    assert hsm_state(sup)["hsm"] == "unavailable"
    # The rest of the node serves on.
    await sup.ask("store", KvPut("ns", "k", b"v"))
    assert await sup.ask("store", KvGet("ns", "k")) == b"v"

    token_dir.with_name("unplugged").rename(token_dir)
    with trio.fail_after(10):
        while True:
            try:
                assert await sup.ask("hsm-worker", HsmUnwrap("kek-1", wrapped, b"aad")) == secret
                break
            except ActorError as exc:
                assert exc.code == "hsm-unavailable"
                await trio.sleep(0.2)
    assert hsm_state(sup)["hsm"] == "ok"
    assert hsm_state(sup)["restarts"] == 0


async def test_missing_token_and_refused_pin(nursery, tmp_path):
    good = make_token(tmp_path / "hsm")
    missing = HsmTarget(MODULE, "no-such-token", None, good.pin, good.env)
    sup = await start(nursery, tmp_path, missing)
    with pytest.raises(ActorError) as absent:
        await sup.ask("hsm-worker", HsmRandom(8))
    assert absent.value.code == "hsm-unavailable" and "no-such-token" in absent.value.message


async def test_wrong_pin_is_not_retried(nursery, tmp_path):
    good = make_token(tmp_path / "hsm")
    wrong = HsmTarget(MODULE, good.token_label, None, SecretBytes.copy_from(b"not-the-pin"), good.env)
    attempts = []

    def target():
        attempts.append(1)
        return wrong

    specs = [ActorSpec("hsm-worker", lambda: HsmWorker(target))]
    sup = Supervisor(specs)
    await nursery.start(sup.run)
    for _ in range(3):
        with pytest.raises(ActorError) as refused:
            await sup.ask("hsm-worker", HsmRandom(8))
        assert refused.value.code == "hsm-pin"
        assert "not-the-pin" not in refused.value.message
        await trio.sleep(1.1)  # past the retry interval
    assert len(attempts) == 1
    assert hsm_state(sup)["hsm"] == "pin-refused"


async def test_many_concurrent_callers_share_one_thread(nursery, tmp_path):
    sup = await start(nursery, tmp_path, make_token(tmp_path / "hsm"))
    await sup.ask("hsm-worker", HsmGenerateKey("identity", "ed25519"))
    signatures = []

    async def sign(i):
        signatures.append(await sup.ask("hsm-worker", HsmSign("identity", i.to_bytes(4, "big"))))

    async with trio.open_nursery() as callers:
        for i in range(200):
            callers.start_soon(sign, i)
    assert len(signatures) == 200 and len(set(signatures)) == 200


async def test_a_software_tokens_lone_requests_skip_the_thread(nursery, tmp_path):
    sup = await start(nursery, tmp_path, make_token(tmp_path / "hsm"))
    assert hsm_state(sup)["in_process"] is True  # SoftHSM2: in this process, cannot hang on a device
    await sup.ask("hsm-worker", HsmGenerateKey("identity", "ed25519"))
    await sup.ask("hsm-worker", HsmSign("identity", b"first"))  # looks the key handle up, in the thread
    before = hsm_state(sup).get("on_loop", 0)
    public = ed25519.Ed25519PublicKey.from_public_bytes(await sup.ask("hsm-worker", HsmPublicKey("identity")))
    for i in range(5):
        message = i.to_bytes(4, "big")
        public.verify(await sup.ask("hsm-worker", HsmSign("identity", message)), message)
    assert hsm_state(sup)["on_loop"] == before + 5


async def test_a_device_is_only_called_from_the_thread(nursery, tmp_path, monkeypatch):
    monkeypatch.setattr("actors.hsm_worker.actor.SOFTWARE_TOKEN_MODEL", "no such model")
    sup = await start(nursery, tmp_path, make_token(tmp_path / "hsm"))
    assert hsm_state(sup)["in_process"] is False
    await sup.ask("hsm-worker", HsmGenerateKey("identity", "ed25519"))
    for i in range(3):
        await sup.ask("hsm-worker", HsmSign("identity", i.to_bytes(4, "big")))
    assert hsm_state(sup).get("on_loop", 0) == 0
