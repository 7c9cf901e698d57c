"""The hsm-worker actor: serves PKCS#11 operations from one dedicated thread.

Resource handling: every PKCS#11 call runs in one `DedicatedThread`, so the
trio loop never blocks on the HSM and the module never sees two calls at once
(the one exception, `INLINE_MAX`: a software token's small batch runs on the
loop while that thread is idle, as a trip there costs more than the batch). A
request is abandoned at its deadline; while an abandoned call still runs in
the thread for more than `HUNG_S`, new requests are refused at once
(``hsm-unavailable``) instead of queueing behind a hung device. Queued requests
go to the thread in batches, two batches in flight, so the thread never waits
for the trio side; a batch of wraps, unwraps and Ed25519 signatures is one C
call without the GIL (batch.py), so the two run at once.

Error handling: the actor always starts, even when the token is missing, so
the rest of the node serves on. A lost token or session is reopened on a
later request (at most one attempt per `RETRY_S`), which is how the node
recovers when the token comes back. A refused PIN is never retried (a real
HSM locks a PIN after a few tries): the state stays ``pin-refused`` until the
node restarts with a fixed PIN. node.status shows the state under this actor.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import trio

from ..context import ActorContext
from ..dedicated_thread import DedicatedThread
from ..mailbox import ActorError
from ..messages import (
    HsmDerive, HsmDestroyKey, HsmGenerateKey, HsmHasKey, HsmHealth, HsmPublicKey, HsmRandom, HsmSign,
    HsmUnwrap, HsmWrap,
)
from .batch import FastPath
from .session import HsmError, HsmTarget, Pkcs11Session

NAME = "hsm-worker"
RETRY_S = 1.0
MAX_BATCH = 32  # queued requests served by one trip to the HSM thread
PIPELINE = 2  # batches in flight: the next is queued in the thread while one runs
HUNG_S = 5.0  # a PKCS#11 call running this long means the device hangs
# A fast-path batch this small, for a token that is software in this process, runs on the
# trio thread when the HSM thread is idle: the trip there and back was most of what the
# actor adds to a lone signature (bench/hsm.py, one at a time: p50 0.48-0.52 ms over raw
# python-pkcs11 with it, 0.29-0.37 ms without). A device, which may hang, never runs here.
INLINE_MAX = 2
SOFTWARE_TOKEN_MODEL = "SoftHSM"
PIN_CODES = ("hsm-pin", "hsm-pin-locked")


def operation(request: Any) -> Callable[[Pkcs11Session], Any]:
    """The session call that serves `request` (run in the HSM thread)."""
    match request:
        case HsmGenerateKey(label, kind, extractable):
            return lambda s: s.generate_key(label, kind, extractable=extractable)
        case HsmDestroyKey(label):
            return lambda s: s.destroy_key(label)
        case HsmHasKey(label):
            return lambda s: s.has_key(label)
        case HsmPublicKey(label):
            return lambda s: s.public_key(label)
        case HsmWrap(kek, secret, aad):
            return lambda s: s.wrap(kek, secret, aad)
        case HsmUnwrap(kek, wrapped, aad):
            return lambda s: s.unwrap(kek, wrapped, aad)
        case HsmSign(label, data):
            return lambda s: s.sign(label, data)
        case HsmDerive(label, peer_public):
            return lambda s: s.derive(label, peer_public)
        case HsmRandom(size):
            return lambda s: s.random(size)
        case HsmHealth():
            return lambda s: (s.probe(), s.info())[1]
    raise ActorError("bad-request", f"the hsm-worker does not handle {type(request).__name__}")


def _apply(op: Any, session: Pkcs11Session) -> Any:
    """Run one operation in the HSM thread; its HsmError is its outcome."""
    if isinstance(op, ActorError):
        return op
    try:
        return op(session)
    except HsmError as exc:
        return exc


class HsmWorker:
    name = NAME

    def __init__(self, target: Callable[[], HsmTarget]) -> None:
        self._target = target  # read at each (re)connect: the PIN source may change
        self._session: Pkcs11Session | None = None
        self._refused: HsmError | None = None
        self._last_error: HsmError | None = None
        self._next_attempt = -float("inf")
        self._reconnecting = False
        self._fast: FastPath | None = None  # set once the module is loaded
        self._in_process = False  # the token is software in this process (SoftHSM2): see INLINE_MAX
        self._on_loop = 0  # batches served on the trio thread
        self._key_changes = 0  # key creations and destructions sent to the thread, not yet run

    async def run(self, ctx: ActorContext, *, task_status: trio.TaskStatus[None]) -> None:
        self._ctx = ctx
        self._thread = DedicatedThread(NAME)
        self._connecting = trio.Lock()  # pipelined batches must not open two sessions
        try:
            try:
                await self._connect()
            except HsmError:
                pass  # logged and reported; the node starts anyway
            task_status.started()
            await ctx.serve_batches(self._handle_batch, max_batch=MAX_BATCH, pipeline=PIPELINE)
        finally:
            with trio.CancelScope(shield=True), trio.move_on_after(2):
                await self._drop_session()
            self._thread.stop()

    async def _handle_batch(self, requests: list[Any]) -> list[Any]:
        """Serve queued requests in one trip to the HSM thread (the hop costs more
        than a wrap), each with its own outcome."""
        ops = []
        for request in requests:
            try:
                ops.append(operation(request))
            except ActorError as exc:
                ops.append(exc)
        if self._thread.running_for() > HUNG_S:
            return [ActorError("hsm-unavailable", f"the HSM has not answered for {HUNG_S:g}s")] * len(ops)
        async with self._connecting:
            if self._session is None:
                try:
                    await self._connect()
                except HsmError as exc:
                    return [ActorError(exc.code, exc.message)] * len(ops)
            session = self._session
        fast = self._fast
        # Key handles are looked up before a batch runs: not while keys may change ahead of it.
        batch = fast.plan(session, requests) if fast is not None and not self._key_changes else None
        if batch is None:
            changes = sum(isinstance(r, (HsmGenerateKey, HsmDestroyKey)) for r in requests)
            self._key_changes += changes
            outcomes = await self._thread.run(lambda: [_apply(op, session) for op in ops],
                                              finished=lambda: self._key_changes_done(changes))
        elif self._in_process and len(batch.requests) <= INLINE_MAX and self._thread.idle():
            outcomes = fast.run(session, batch, lambda i: _apply(ops[i], session))
            self._on_loop += 1
            self._ctx.report(on_loop=self._on_loop)
        else:
            outcomes = await self._thread.run(fast.run, session, batch, lambda i: _apply(ops[i], session))
        lost = next((o for o in outcomes if isinstance(o, HsmError) and o.lost), None)
        if lost is not None and self._session is session:
            await self._lost(lost)
        return [ActorError(o.code, o.message) if isinstance(o, HsmError) else o for o in outcomes]

    def _key_changes_done(self, count: int) -> None:
        self._key_changes -= count

    async def _connect(self) -> None:
        if self._refused is not None:
            raise self._refused
        now = trio.current_time()
        if now < self._next_attempt and self._last_error is not None:
            raise HsmError(self._last_error.code, f"{self._last_error.message} (retrying in {RETRY_S:g}s)")
        self._next_attempt = now + RETRY_S
        try:
            target = self._target()
            self._session = await self._thread.run(
                lambda: Pkcs11Session.open(target, rescan=self._reconnecting))
        except HsmError as exc:
            self._last_error = exc
            if exc.code in PIN_CODES:
                self._refused = exc
            self._report("pin-refused" if exc.code in PIN_CODES else "unavailable", exc)
            self._ctx.log.error("hsm unavailable", extra={"code": exc.code, "reason": exc.message})
            raise
        self._last_error = None
        if self._fast is None or self._fast.module != target.module:
            self._fast = await self._thread.run(FastPath, target.module)
            if self._fast.unavailable:
                self._ctx.log.warning("hsm fast path off: operations go one by one",
                                      extra={"reason": self._fast.unavailable})
        info = await self._thread.run(self._session.info)
        self._in_process = info["model"].startswith(SOFTWARE_TOKEN_MODEL)
        self._report("ok", None, token=info["token"], serial=info["serial"], model=info["model"],
                     in_process=self._in_process)
        self._ctx.log.info("hsm session open", extra={"token": info["token"], "model": info["model"]})

    async def _lost(self, exc: HsmError) -> None:
        self._ctx.log.error("hsm session lost", extra={"code": exc.code, "reason": exc.message})
        self._last_error = exc
        self._report("unavailable", exc)
        await self._drop_session()
        self._reconnecting = True

    async def _drop_session(self) -> None:
        session, self._session = self._session, None
        if session is not None and self._thread.running_for() <= HUNG_S:
            await self._thread.run(session.close)

    def _report(self, state: str, error: HsmError | None, **info: Any) -> None:
        self._ctx.report(hsm=state, hsm_error=None if error is None else error.message, **info)
