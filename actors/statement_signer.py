"""Signs this node's statements in the HSM, many under one signature when they queue.

An MFA node signs an assertion per login, and that HSM signature was a quarter of what a
login cost the node (bench/mpin.py: ~530 logins/s, ~700 with the signature left out).
`StatementSigner` is a group commit:
one signature is in flight at a time; the statements that arrive meanwhile wait, and the
next signature covers all of them at once (`mpin_wire.batch_signing_input`, a Merkle tree
of at most `mpin_wire.MAX_BATCH`). A statement that arrives while nothing is being signed
is signed alone and at once, in the plain form: at low load nothing waits for a batch.

Resource handling: `run` is a task of its owner's nursery, so a caller that gives up
(a login whose proof failed cancels its assertion) never cancels a signature other
callers wait for; a statement given up before its batch is sent is left out of it.
Error handling: a refused signature (HSM down, keystore error) fails every statement of
that batch with the same error code; the next batch tries again.
"""

from __future__ import annotations

import math
from typing import Any

import attrs
import outcome
import trio

from milagro_node.core import mpin_wire

from .keystore import KeystoreClient
from .mailbox import ActorError

__all__ = ["StatementSigner"]


@attrs.define(eq=False)
class _Job:
    draft: mpin_wire.StatementDraft
    done: trio.Event = attrs.Factory(trio.Event)
    result: outcome.Outcome[mpin_wire.Statement] | None = None
    wanted: bool = True


class StatementSigner:
    """Statements signed with the identity key `key_id` of the node behind `ctx`."""

    def __init__(self, ctx: Any, key_id: str, *, max_batch: int = mpin_wire.MAX_BATCH) -> None:
        self._keys = KeystoreClient(ctx)
        self._key_id = key_id
        self._max_batch = max_batch
        self._send, self._receive = trio.open_memory_channel[_Job](math.inf)
        self.batches = 0  # signatures made; with `signed`, the mean batch size (node.status)
        self.signed = 0

    async def sign(self, draft: mpin_wire.StatementDraft) -> mpin_wire.Statement:
        """`draft`, signed (alone or in a batch); raises `ActorError` if the HSM refused."""
        job = _Job(draft)
        self._send.send_nowait(job)
        try:
            await job.done.wait()
        finally:
            job.wanted = False
        assert job.result is not None
        return job.result.unwrap()

    async def run(self) -> None:
        """Sign what queues, batch after batch, until cancelled."""
        async for job in self._receive:
            jobs = [job]
            while len(jobs) < self._max_batch:
                try:
                    jobs.append(self._receive.receive_nowait())
                except trio.WouldBlock:
                    break
            jobs = [j for j in jobs if j.wanted]
            if jobs:
                await self._sign_batch(jobs)

    async def _sign_batch(self, jobs: list[_Job]) -> None:
        drafts = [j.draft for j in jobs]
        message, proofs = mpin_wire.batch_signing_input(drafts)
        try:
            signature = await self._keys.sign(self._key_id, message)
        except ActorError as exc:
            for job in jobs:  # each caller raises its own copy
                job.result = outcome.Error(ActorError(exc.code, exc.message))
        else:
            self.batches += 1
            self.signed += len(jobs)
            for job, proof in zip(jobs, proofs):
                job.result = outcome.capture(job.draft.finish, signature, proof)
        for job in jobs:
            job.done.set()
