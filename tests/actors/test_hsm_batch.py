"""The hsm-worker's fast path (batch.py, native/p11batch.c) against a real SoftHSM2 token:
the same results as the session's own methods, errors per operation, and when it steps aside."""

import pytest
import trio
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from hsmkit import MODULE, keystore_node, soft_token  # noqa: F401  (soft_token is a fixture)

from actors.hsm_worker.actor import _apply, operation
from actors.hsm_worker.batch import FastPath
from actors.hsm_worker.session import HsmError, Pkcs11Session
from actors.messages import HsmGenerateKey, HsmHasKey, HsmSign, HsmUnwrap, HsmWrap
from milagro_node.secret_memory import SecretBytes


def run(fast, session, requests):
    """Serve `requests` as the actor does: fast when planned, else the ordinary way."""
    ordinary = lambda i: _apply(operation(requests[i]), session)  # noqa: E731
    batch = fast.plan(session, requests)
    if batch is None:
        return None, [ordinary(i) for i in range(len(requests))]
    return batch, fast.run(session, batch, ordinary)


@pytest.fixture
def hsm(soft_token):
    """(session with an AES key "kek" and an Ed25519 key "signer", signer's public key, fast path)."""
    session = Pkcs11Session.open(soft_token.target())
    try:
        session.generate_key("kek", "aes-256")
        yield session, session.generate_key("signer", "ed25519"), FastPath(MODULE)
    finally:
        session.close()


def test_fast_results_are_the_ordinary_ones(hsm):
    session, public, fast = hsm
    assert fast.unavailable is None
    secrets = [SecretBytes.random(n) for n in (0, 1, 32, 100)]
    wraps = [HsmWrap("kek", s, f"aad-{len(s)}".encode()) for s in secrets] + [HsmSign("signer", b"message")]
    batch, _ = run(fast, session, wraps)  # teaches the key handles
    assert batch.slots == [None] * 5
    batch, outcomes = run(fast, session, wraps)
    assert batch.slots == [0, 1, 2, 3, 4]
    *wrapped, signature = outcomes
    Ed25519PublicKey.from_public_bytes(public).verify(signature, b"message")
    assert len({w[:12] for w in wrapped}) == 4  # a fresh nonce each
    for secret, blob in zip(secrets, wrapped):
        assert session.unwrap("kek", blob, f"aad-{len(secret)}".encode()).reveal() == secret.reveal()
    # And the other way round: what the ordinary way wrapped, the fast path unwraps.
    ordinary = [session.wrap("kek", s, f"aad-{len(s)}".encode()) for s in secrets]
    batch, plains = run(fast, session, [HsmUnwrap("kek", w, f"aad-{len(s)}".encode())
                                        for s, w in zip(secrets, ordinary)])
    assert batch.slots == [0, 1, 2, 3]
    assert [p.reveal() for p in plains] == [s.reveal() for s in secrets]
    assert all(isinstance(p, SecretBytes) for p in plains)


def test_each_failure_is_its_own_and_the_rest_of_the_batch_succeeds(hsm):
    session, _, fast = hsm
    secret = SecretBytes.random(32)
    good = session.wrap("kek", secret, b"aad")
    run(fast, session, [HsmUnwrap("kek", good, b"aad"), HsmSign("signer", b"m")])  # handles known
    tampered = good[:-1] + bytes([good[-1] ^ 1])
    batch, outcomes = run(fast, session, [
        HsmUnwrap("kek", good, b"other aad"), HsmUnwrap("kek", good, b"aad"), HsmUnwrap("kek", tampered, b"aad"),
        HsmUnwrap("kek", good[:20], b"aad"), HsmUnwrap("missing", good, b"aad"), HsmSign("signer", b"m"),
        HsmSign("kek", b"m"),  # an AES key cannot sign
    ])
    assert batch.slots[:3] == [0, 1, 2] and batch.slots[4] is None
    codes = [o.code if isinstance(o, HsmError) else type(o).__name__ for o in outcomes]
    assert codes == ["hsm-unwrap-failed", "SecretBytes", "hsm-unwrap-failed", "hsm-unwrap-failed",
                     "hsm-no-key", "bytes", "hsm-no-key"]
    assert outcomes[1].reveal() == secret.reveal()


def test_it_steps_aside_for_key_changes_ecdsa_and_unexpected_fields(hsm):
    session, _, fast = hsm
    session.generate_key("p256", "p256")
    secret = SecretBytes.random(32)
    run(fast, session, [HsmWrap("kek", secret, b"a")])
    # A batch that also makes a key: handles looked up before it could go stale.
    batch, outcomes = run(fast, session, [HsmWrap("kek", secret, b"a"), HsmGenerateKey("new", "aes-256")])
    assert batch is None and outcomes[1] is None
    for _ in range(2):  # ECDSA signs the ordinary way (low-S), every time
        batch, outcomes = run(fast, session, [HsmSign("p256", bytes(32))])
        assert batch.slots == [None] and len(outcomes[0]) == 64
    batch = fast.plan(session, [HsmWrap("kek", secret, "text aad"), HsmUnwrap("kek", bytearray(40), b"")])
    assert batch.slots == [None, None]  # left to the ordinary way, which refuses them
    batch.secret.close()


def test_the_batch_owns_its_copy_of_a_secret(hsm):
    session, _, fast = hsm
    secret = SecretBytes.copy_from(b"s" * 32)
    run(fast, session, [HsmWrap("kek", secret, b"a")])
    batch = fast.plan(session, [HsmWrap("kek", secret, b"a")])
    secret.close()  # its caller gave up and cleaned up before the batch ran
    [wrapped] = fast.run(session, batch, None)
    assert session.unwrap("kek", wrapped, b"a").reveal() == b"s" * 32
    assert batch.secret.closed  # the batch's plaintexts are wiped once it ran


def test_without_the_module_loaded_it_says_why(tmp_path):
    fast = FastPath(tmp_path / "libnothing.so")
    assert "not loaded" in fast.unavailable
    assert fast.plan(None, [HsmSign("k", b"m")]) is None


async def test_through_the_actor_many_callers_get_their_own_secrets_back(soft_token, tmp_path):
    async with keystore_node(tmp_path / "node.db", soft_token) as (_, sup):
        await sup.ask("hsm-worker", HsmGenerateKey("bench-kek", "aes-256"))
        mismatches = []

        async def caller(n):
            for round_no in range(20):
                secret = SecretBytes.copy_from(f"{n}:{round_no}".encode())
                aad = f"caller {n}".encode()
                wrapped = await sup.ask("hsm-worker", HsmWrap("bench-kek", secret, aad))
                back = await sup.ask("hsm-worker", HsmUnwrap("bench-kek", wrapped, aad))
                if back.reveal() != secret.reveal():
                    mismatches.append((n, round_no))

        async with trio.open_nursery() as callers:
            for n in range(64):
                callers.start_soon(caller, n)
        assert mismatches == []
        assert await sup.ask("hsm-worker", HsmHasKey("bench-kek"))
