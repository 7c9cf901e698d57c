"""The statement signer (a group commit of HSM signatures) inside a whole node in this process.

Real parts: a data dir made by `milagro-node init` (SoftHSM token, SQLite store, identity in
the HSM) and every actor of `actor_specs`; the signer under test is one more, run here.
"""

from __future__ import annotations

import time

import pytest
import trio
import trio.testing

from actors.mailbox import ActorError
from actors.messages import OwnLog
from actors.mpin_grants import draft_statement
from actors.node_identity import sign_key_id
from actors.statement_signer import StatementSigner
from milagro_node.core import ipld, mpin_wire
from milagro_node.runtime.node import Node
from testkit import in_process_config, init_data_dir


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
    return init_data_dir(tmp_path_factory.mktemp("signer") / "node")


@pytest.fixture
async def node(nursery, data_dir):
    return await nursery.start(Node(in_process_config(data_dir)).run)


@pytest.fixture
async def me(node):
    _, state = await node.supervisor.ask("pki-resolver", OwnLog())
    return state


def draft(me, n):
    return draft_statement(me, mpin_wire.ASSERTION, f"user-{n}", 60, {"n": n})


def verified(me, statement):
    return mpin_wire.verify_statement(statement.data, kind=mpin_wire.ASSERTION, sign_key=me.sign_key,
                                      now=int(time.time()))


async def test_statements_that_queue_share_a_signature_and_each_verifies_alone(node, me, nursery):
    signer = StatementSigner(node.supervisor, sign_key_id(me.seq))
    nursery.start_soon(signer.run)
    signed = {}

    async def sign(n):
        signed[n] = await signer.sign(draft(me, n))

    async with trio.open_nursery() as callers:
        for n in range(40):
            callers.start_soon(sign, n)
    assert sorted(signed) == list(range(40))
    for n, statement in signed.items():
        assert verified(me, statement).extra == {"n": n}
    assert signer.signed == 40 and signer.batches < 40
    assert any("batch" in ipld.decode(s.data) for s in signed.values())
    # Nothing queued: one alone, at once, in the plain form.
    alone = await signer.sign(draft(me, 99))
    assert "batch" not in ipld.decode(alone.data) and verified(me, alone).subject == "user-99"


async def test_a_caller_that_gives_up_leaves_the_others_signed(node, me, nursery):
    signer = StatementSigner(node.supervisor, sign_key_id(me.seq))
    signed = []

    async def sign(n):
        signed.append(await signer.sign(draft(me, n)))

    # Queued before the signer runs, so all three are in its first batch: the one whose
    # caller gave up (its cancellation delivered) is left out of it.
    with trio.move_on_after(0):
        await signer.sign(draft(me, -1))
    async with trio.open_nursery() as callers:
        callers.start_soon(sign, 1)
        callers.start_soon(sign, 2)
        await trio.testing.wait_all_tasks_blocked()
        nursery.start_soon(signer.run)
    assert sorted(verified(me, s).extra["n"] for s in signed) == [1, 2]
    assert (signer.signed, signer.batches) == (2, 1)


async def test_a_refused_signature_fails_each_caller_of_that_batch_and_the_signer_goes_on(node, me, nursery):
    broken = StatementSigner(node.supervisor, "no-such-key")
    nursery.start_soon(broken.run)
    codes = []

    async def sign(n):
        with pytest.raises(ActorError) as refused:
            await broken.sign(draft(me, n))
        codes.append(refused.value.code)

    async with trio.open_nursery() as callers:
        for n in range(5):
            callers.start_soon(sign, n)
    assert len(codes) == 5 and len(set(codes)) == 1 and broken.signed == 0
    with pytest.raises(ActorError):  # still serving
        await broken.sign(draft(me, 6))
