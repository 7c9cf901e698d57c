"""The "authenticator" actor (role ``mfa``): M-Pin logins. See the package docstring."""

from __future__ import annotations

import hashlib
import time
from collections import Counter
from typing import Any

import attrs
import outcome
import trio

from milagro_node.core import mpin, mpin_wire
from milagro_node.runtime.config import MfaSection
from milagro_node.secret_memory import SecretBytes

from ..context import ActorContext
from ..keystore import KeystoreClient
from ..mailbox import ActorError
from ..messages import (
    AuthStatus, EnvelopeArrived, FinishLogin, OnePassLogin, OwnLog, ResetDevice, SendEnvelope, ServerShare,
    SetUserRevoked, StartLogin, SubscribeKinds, UnlockUser,
)
from ..mpin_grants import GrantChecker, draft_statement
from ..node_identity import sign_key_id
from ..statement_signer import StatementSigner
from ..store import StoreClient
from .devices import NAMESPACE as DEVICES_NS
from .devices import Device, DeviceRegistry
from .lockout import NAMESPACE as FAILURES_NS
from .lockout import AttemptGate, FailureRecord, Lockout, user_key
from .pairing_pool import PairingPool
from .server_secret import KEY_KIND, ServerSecret, dta_set, share_key_id
from .sessions import Pending, ReplayWindow, SessionTable, claim, permit_day

__all__ = ["NAME", "Authenticator", "MfaInfo"]

NAME = "authenticator"
REVOKED_NS = "mfa-revoked"
REQUEST_EVERY_S = 10.0  # while a share is missing, ask its D-TA again this often
REQUEST_TTL_S = 20  # a share request envelope is re-delivered by the router until then
PRUNE_EVERY_S = 5.0
METHOD_2PASS, METHOD_1PASS = "mpin-2pass", "mpin-1pass"


@attrs.frozen
class MfaInfo:
    """What a client needs before a login (the public ``mfa.info``). Reply: {"identity",
    "ready", "dtas", "have", "time_permits", "day", "time"}. Local to this actor and its API."""


@attrs.define
class _Signed:
    """A login's assertion, signed while its proof is checked."""

    statement: outcome.Outcome[mpin_wire.Statement] | None = None


def _refusal(exc: mpin.MpinError | mpin_wire.WireError | ActorError) -> ActorError:
    return exc if isinstance(exc, ActorError) else ActorError(str(exc.code), exc.message)


def _checked_user_id(user_id: str) -> None:
    """An admin request's user ID, or the refusal that names what is wrong with it."""
    try:
        mpin_wire.check_user_id(user_id)
    except mpin_wire.WireError as exc:
        raise _refusal(exc) from None


def _identity(user_id: str, device: Device | None) -> bytes:
    """The M-Pin identity a login is checked under: ID, or ID ‖ Pa for a DVS device."""
    return user_id.encode() if device is None else mpin.dvs_identity(user_id.encode(), device.key)


def _result(code: str) -> str:
    """An error code as an audit result: "mpin-bad-point" → "bad-point", "mfa-busy" → "busy"."""
    return code.split("-", 1)[1] if code.startswith(("mpin-", "mfa-")) else code


class Authenticator:
    name = NAME

    def __init__(self, federation: Any) -> None:
        self._federation = federation
        self._logins: Counter[str] = Counter()
        self._refused_shares: Counter[str] = Counter()

    # -- life --------------------------------------------------------------------------

    async def run(self, ctx: ActorContext, *, task_status: trio.TaskStatus[None]) -> None:
        self._ctx, self._store, self._keys = ctx, StoreClient(ctx), KeystoreClient(ctx)
        settings = getattr(ctx.settings, "mfa", None) or MfaSection()
        self._settings = settings
        roles = getattr(getattr(ctx.settings, "node", None), "roles", ("dta", "mfa", "custody"))
        _, self._me = await ctx.ask("pki-resolver", OwnLog())  # kept: fixed while the node runs
        self._secret = ServerSecret(dta_set(self._federation.members, self._me.identity, roles))
        self._lockout = Lockout(settings.max_failures, settings.lockout_seconds)
        self._gate = AttemptGate(self._lockout.left)
        self._sessions = SessionTable(settings.session_seconds)
        self._replay = ReplayWindow(settings.one_pass_skew)
        self._devices = DeviceRegistry(GrantChecker(ctx, self._federation, self._me.identity, "mfa"),
                                       require=settings.require_device_key)
        await self._load_state()
        await self._load_shares()
        await ctx.tell("envelope-router", SubscribeKinds(("mfa.",), NAME))
        self._report()
        self._signer = StatementSigner(ctx, sign_key_id(self._me.seq))
        async with PairingPool.open(settings.workers) as pool, trio.open_nursery() as nursery:
            self._pool, self._nursery = pool, nursery
            nursery.start_soon(self._signer.run)
            nursery.start_soon(self._warm, None)
            nursery.start_soon(self._gather_shares_forever)
            nursery.start_soon(self._prune_forever)
            task_status.started()
            # Concurrent: logins wait on workers, the store and the HSM; the pool's limiter
            # keeps one pairing check per worker process.
            await ctx.serve(self._handle, concurrency=max(32, 8 * settings.workers))

    async def _load_state(self) -> None:
        bad = self._lockout.load(await self._store.kv_items(FAILURES_NS))
        for key in bad:
            self._ctx.log.warning("unreadable failure record dropped", extra={"key": key})
            await self._store.kv_delete(FAILURES_NS, key)
        for key in self._devices.load(await self._store.kv_items(DEVICES_NS)):
            self._ctx.log.warning("unreadable device record: its user ID is barred until mfa.reset_device",
                                  extra={"key": key})
        self._revoked: dict[str, str] = {}
        for key, value in await self._store.kv_items(REVOKED_NS):
            try:
                self._revoked[key] = mpin_wire.check_user_id(value.decode())
            except (UnicodeDecodeError, mpin_wire.WireError):
                self._ctx.log.warning("unreadable revocation record kept as is", extra={"key": key})
                self._revoked[key] = f"?{key}"

    async def _load_shares(self) -> None:
        for dta in self._secret.dtas:
            try:
                secret = await self._keys.get(share_key_id(dta), KEY_KIND)
            except ActorError as exc:
                if exc.code != "keystore-no-key":
                    self._ctx.log.warning("server-secret share unreadable", extra={"dta": dta, "code": exc.code})
                continue
            with secret:
                try:
                    self._add_share(dta, mpin.decode_g2(secret.reveal(), "server-secret share"))
                except mpin.MpinError as exc:
                    self._ctx.log.warning("stored server-secret share refused", extra={"dta": dta, "code": exc.code})

    def _add_share(self, dta: str, share: Any) -> None:
        try:
            self._secret.add(dta, share)
        except mpin.MpinError as exc:  # the shares sum to the identity: never ready with these
            self._ctx.log.warning("server-secret shares sum to nothing usable", extra={"code": exc.code})
        self._report()

    def _report(self) -> None:
        self._ctx.report(identity=self._me.identity, ready=self._secret.ready, shares=self._secret.counts(),
                         sessions=len(getattr(self, "_sessions", ())))

    async def _warm(self, ss: bytes | None) -> None:
        pids = await self._pool.warm(ss)
        self._ctx.report(workers=pids)
        if ss is None and self._secret.encoded is not None:
            await self._pool.warm(self._secret.encoded)

    async def _prune_forever(self) -> None:
        while True:
            await trio.sleep(PRUNE_EVERY_S)
            self._sessions.prune(time.time())
            self._report()

    # -- the server secret ---------------------------------------------------------------

    async def _gather_shares_forever(self) -> None:
        if not self._secret.dtas:
            self._ctx.log.warning("no D-TA in the federation: logins are refused (mfa-not-ready)")
            return
        while True:
            for dta in self._secret.missing():
                try:
                    await self._request_share(dta)
                except ActorError as exc:
                    self._ctx.log.info("server-secret share not had yet", extra={"dta": dta, "code": exc.code})
            await trio.sleep(REQUEST_EVERY_S)

    async def _request_share(self, dta: str) -> None:
        if dta == self._me.identity:
            secret = await self._ctx.ask("share-dealer", ServerShare())
            with secret:
                await self._accept_share(dta, secret.reveal())
        else:
            await self._ctx.ask("envelope-router",
                                SendEnvelope((dta,), mpin_wire.KIND_SERVER_SHARE_REQUEST, b"", ttl=REQUEST_TTL_S))
            self._ctx.log.debug("server-secret share requested", extra={"dta": dta})

    async def _share_arrived(self, arrived: EnvelopeArrived) -> None:
        if arrived.kind != mpin_wire.KIND_SERVER_SHARE:
            self._ctx.log.info("envelope of an unknown kind ignored", extra={"kind": arrived.kind,
                                                                             "sender": arrived.sender})
            return
        if arrived.sender not in self._secret.dtas:
            await self._refuse_share(arrived.sender, "not-a-dta")
            return
        try:
            share = mpin_wire.parse_server_share(arrived.payload)
        except mpin_wire.WireError as exc:
            await self._refuse_share(arrived.sender, exc.code)
            return
        await self._accept_share(arrived.sender, share)

    async def _accept_share(self, dta: str, share: bytes) -> None:
        try:
            point = mpin.decode_g2(share, "server-secret share")
        except mpin.MpinError as exc:
            await self._refuse_share(dta, str(exc.code))
            return
        if self._secret.same(dta, point):
            return  # an answer to a repeated request
        with SecretBytes.copy_from(share) as secret:
            await self._keys.put(share_key_id(dta), KEY_KIND, secret, replace=True)
        self._add_share(dta, point)
        await self._store.audit("mfa.server-share", **{"from": dta, "ready": self._secret.ready,
                                                       "shares": self._secret.counts()})
        self._ctx.log.info("server-secret share received", extra={"dta": dta, "shares": self._secret.counts()})
        if self._secret.encoded is not None:
            self._nursery.start_soon(self._warm, self._secret.encoded)

    async def _refuse_share(self, sender: str, code: str) -> None:
        self._refused_shares[code] += 1
        self._ctx.log.warning("server-secret share refused", extra={"sender": sender, "code": code})
        await self._store.audit("mfa.server-share-refused", **{"from": sender, "code": code})

    # -- requests ------------------------------------------------------------------------

    async def _handle(self, request: Any) -> Any:
        match request:
            case StartLogin(user_id, u, ut, remote, day, grant):
                return await self._start(user_id, u, ut, remote, day, grant)
            case FinishLogin(session_id, v, remote):
                return await self._finish(session_id, v, remote)
            case OnePassLogin(user_id, u, ut, v, t, message, remote, day, grant):
                return await self._one_pass(user_id, u, ut, v, t, message, remote, day, grant)
            case MfaInfo():
                return self._info()
            case AuthStatus():
                return self._status()
            case UnlockUser(user_id):
                return await self._unlock(user_id)
            case ResetDevice(user_id):
                return await self._reset_device(user_id)
            case SetUserRevoked(user_id, revoked):
                return await self._set_revoked(user_id, revoked)
            case EnvelopeArrived():
                await self._share_arrived(request)
                return None
        raise ActorError("bad-request", f"{NAME} does not handle {type(request).__name__}")

    async def _audit(self, result: str, subject: str | None, remote: str, method: str, **more: Any) -> None:
        # Not synced before the verdict by default (`[mfa] sync_login_audit`): on this disk an
        # fsync's p99 alone is 6-17 ms, most of a login's tail at half load.
        audit = self._store.audit if self._settings.sync_login_audit else self._store.audit_soon
        await audit("mfa.login", subject=subject, result=result, method=method, remote=remote, **more)

    async def _refuse(self, error: ActorError, subject: str | None, remote: str, method: str,
                      **more: Any) -> ActorError:
        """Count and audit a refused attempt; return the error for the caller to raise."""
        self._logins["failed"] += 1
        await self._audit(_result(error.code), subject, remote, method, **more)
        return error

    async def _admit(self, user_id: Any, remote: str, method: str) -> str:
        """The checks before any M-Pin work: ready, a valid ID, not revoked, not locked."""
        if not self._secret.ready:
            raise ActorError("mfa-not-ready", f"this MFA node does not have its server secret yet: "
                             f"have {len(self._secret.have())} of {len(self._secret.dtas)} server-secret shares")
        try:
            mpin_wire.check_user_id(user_id)
        except mpin_wire.WireError as exc:
            raise await self._refuse(_refusal(exc), None, remote, method) from None
        barred = await self._barred(user_id, time.time())
        if barred is not None:
            raise await self._refuse(barred, user_id, remote, method)
        return user_id

    async def _barred(self, user_id: str, now: float) -> ActorError | None:
        if user_key(user_id) in self._revoked:
            return ActorError("mfa-revoked", "this user ID is revoked at this MFA node")
        record, cleared = self._lockout.check(user_id, now)
        if cleared:
            await self._store.kv_delete(FAILURES_NS, user_key(user_id))
        if record is not None:
            return self._locked_error(record)
        return None

    @staticmethod
    def _locked_error(record: FailureRecord) -> ActorError:
        if record.until is None:
            when = "until an admin unlocks it"
        else:
            when = "until " + time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(record.until))
        return ActorError("mfa-locked", f"this user ID is locked after {record.failures} wrong logins, {when}")

    def _permit(self, ut: bytes | None, stated_day: int | None, now: float) -> tuple[bytes | None, int | None]:
        """UT and the day of its permit (`sessions.permit_day`), or (None, None) without permits."""
        if not self._settings.time_permits:
            return None, None  # UT is not needed, and ignored
        if ut is None:
            raise mpin.MpinError(mpin.MpinErrorCode.BAD_INPUT, "a time permit is required (no UT)")
        return ut, permit_day(stated_day, now)

    async def _start(self, user_id: str, u: bytes, ut: bytes | None, remote: str,
                     stated_day: int | None, grant: bytes | None) -> dict[str, Any]:
        await self._admit(user_id, remote, METHOD_2PASS)
        now = time.time()
        try:
            ut, day = self._permit(ut, stated_day, now)
            device = await self._devices.device_for(user_id, grant, now)
            ut_point = None if ut is None else mpin.decode_g1(ut, "UT")
            pass1 = mpin.Pass1(_identity(user_id, device), mpin.decode_g1(u, "U"), ut_point)
            login = mpin.LoginSession(self._secret.point, pass1, now=now, ttl=self._settings.session_seconds, day=day)
            y = login.challenge(now)
        except (mpin.MpinError, mpin_wire.WireError, ActorError) as exc:
            raise await self._refuse(_refusal(exc), user_id, remote, METHOD_2PASS, stage=1) from None
        try:
            session_id = self._sessions.add(Pending(login, user_id, remote, device=device), now)
        except ActorError as exc:
            raise await self._refuse(exc, user_id, remote, METHOD_2PASS, stage=1) from None
        return {"session": session_id, "y": y.to_bytes(32, "big"), "expires": int(login.deadline)}

    async def _finish(self, session_id: str, v: bytes, remote: str) -> dict[str, Any]:
        if not self._secret.ready:
            raise ActorError("mfa-not-ready", "this MFA node does not have its server secret yet")
        now = time.time()
        try:
            pending = self._sessions.take(session_id, now)
        except mpin.MpinError as exc:
            raise await self._refuse(_refusal(exc), getattr(exc, "user_id", None), remote, METHOD_2PASS,
                                     session=session_id) from None
        except ActorError as exc:
            raise await self._refuse(exc, None, remote, METHOD_2PASS) from None
        try:
            y = claim(pending.login, now)
        except mpin.MpinError as exc:
            raise await self._refuse(_refusal(exc), pending.user_id, remote, METHOD_2PASS,
                                     session=session_id) from None
        pass1 = pending.login.pass1
        return await self._check(
            pending.user_id, pass1.u.to_bytes(), None if pass1.ut is None else pass1.ut.to_bytes(), y, v,
            pending.login.day, pending.device, remote, METHOD_2PASS, {"session": session_id},
            on_success=lambda: setattr(pending.login, "state", mpin.SessionState.VERIFIED))

    async def _one_pass(self, user_id: str, u: bytes, ut: bytes | None, v: bytes, t: int, message: bytes,
                        remote: str, stated_day: int | None, grant: bytes | None) -> dict[str, Any]:
        await self._admit(user_id, remote, METHOD_1PASS)
        now = time.time()
        try:
            # The core's verify_one_pass order: time window, replay (recorded even if the
            # proof is then refused), then the pairing check (here in a worker). U and UT
            # are decoded (and a bad one refused) by that worker: off this loop.
            if abs(now - t) > self._replay.max_skew:
                raise mpin.MpinError(mpin.MpinErrorCode.EXPIRED, "one-pass timestamp outside the allowed skew")
            self._replay.check_and_add(user_id.encode() + b"\x00" + u, now)
            ut, day = self._permit(ut, stated_day, now)
            device = await self._devices.device_for(user_id, grant, now)
            y = mpin.one_pass_challenge_of(_identity(user_id, device), u, ut or b"", t, message)
        except (mpin.MpinError, mpin_wire.WireError, ActorError) as exc:
            raise await self._refuse(_refusal(exc), user_id, remote, METHOD_1PASS) from None
        extra: dict[str, Any] = {"t": t}
        if message:
            extra["message_sha256"] = hashlib.sha256(message).digest()
        return await self._check(user_id, u, ut, y, v, day, device, remote, METHOD_1PASS, extra)

    async def _check(self, user_id: str, u: bytes, ut: bytes | None, y: int, v: bytes, day: int | None,
                     device: Device | None, remote: str, method: str, extra: dict[str, Any],
                     on_success: Any = None) -> dict[str, Any]:
        """The pairing check in a worker, the failure count, the assertion, the audit.

        The assertion is signed in the HSM while the worker checks the proof (the two
        hops took turns, and the signature is half a login's latency at low load); it is
        dropped unless the check passes, so a refused login never gets one.
        """
        session = extra.get("session")
        more = {"session": session} if session else {}
        async with self._gate.attempt(user_id):
            barred = await self._barred(user_id, time.time())  # again: attempts in flight may have locked it
            if barred is not None:
                raise await self._refuse(barred, user_id, remote, method, **more)
            ss = self._secret.encoded
            if ss is None:
                raise ActorError("mfa-not-ready", "this MFA node lost its server secret")
            identity, pa = _identity(user_id, device), None if device is None else device.key
            if device is not None:
                extra = {**extra, "device_key": True}
            assertion = _Signed()
            async with trio.open_nursery() as nursery:
                nursery.start_soon(self._sign_assertion, assertion, user_id, {**extra, "method": method})
                # Captured, so that its error leaves the nursery as itself, not in a group.
                checked = await outcome.acapture(self._pool.check, ss, identity, u, ut, y, v, day, pa)
                if not isinstance(checked, outcome.Value) or checked.value is not None:
                    nursery.cancel_scope.cancel()
            refusal = checked.unwrap()
            if refusal is not None:
                code, message = refusal
                if code != mpin.MpinErrorCode.BAD_PROOF:  # a bad V: refused, but not a PIN guess
                    raise await self._refuse(ActorError(code, message), user_id, remote, method, **more)
                record = self._lockout.fail(user_id, time.time())
                await self._store.kv_put(FAILURES_NS, user_key(user_id), record.to_json())  # before replying
        if refusal is not None:
            typo = await self._pool.is_typo(ss, identity, u, ut, y, v, day, pa)
            if record.locked_until is not None:
                error = self._locked_error(record)
            else:
                left = self._lockout.max_failures - record.failures
                error = ActorError("mfa-refused", f"wrong PIN or token; {left} attempt{'s' * (left != 1)} left "
                                   "before lockout")
            raise await self._refuse(error, user_id, remote, method, typo=typo, failures=record.failures, **more)
        if device is not None:
            await self._register(user_id, device, remote, method, more)
        if on_success is not None:
            on_success()
        if self._lockout.succeed(user_id):
            await self._store.kv_delete(FAILURES_NS, user_key(user_id))
        statement = assertion.statement.unwrap()  # an HSM or keystore error fails the login here
        self._logins["ok"] += 1
        await self._audit("ok", user_id, remote, method, assertion=statement.cid, **more)
        return {"assertion": statement.data, "mfa": self._me.identity, "expires": statement.expires}

    async def _sign_assertion(self, into: _Signed, user_id: str, extra: dict[str, Any]) -> None:
        try:
            draft = draft_statement(self._me, mpin_wire.ASSERTION, user_id, self._settings.assertion_seconds, extra)
            into.statement = outcome.Value(await self._signer.sign(draft))
        except Exception as exc:  # kept for the login to raise, only if its check passes
            into.statement = outcome.Error(exc)

    async def _register(self, user_id: str, device: Device, remote: str, method: str, more: dict[str, Any]) -> None:
        """After a passed first DVS login: the device key becomes the user's (stored before
        the verdict). A login that lost a race with another device for the ID is refused."""
        try:
            record = self._devices.register(user_id, device)
        except ActorError as exc:
            raise await self._refuse(exc, user_id, remote, method, **more) from None
        if record is None:
            return
        try:
            await self._store.kv_put(DEVICES_NS, user_key(user_id), record)
        except BaseException:
            self._devices.unregister(user_id, device)
            raise
        await self._store.audit("mfa.device-registered", subject=user_id, grant=device.grant)
        self._ctx.log.info("device key registered", extra={"subject": user_id, "grant": device.grant})

    # -- admin and status ----------------------------------------------------------------

    async def _reset_device(self, user_id: str) -> dict[str, bool]:
        _checked_user_id(user_id)
        registered = self._devices.forget(user_id)
        await self._store.kv_delete(DEVICES_NS, user_key(user_id))
        await self._store.audit("mfa.device-reset", subject=user_id, registered=registered)
        return {"registered": registered}

    async def _unlock(self, user_id: str) -> None:
        _checked_user_id(user_id)
        record = self._lockout.unlock(user_id)
        await self._store.kv_delete(FAILURES_NS, user_key(user_id))
        await self._store.audit("mfa.unlock", subject=user_id, failures=record.failures if record else 0,
                                was_locked=bool(record and record.locked_at(time.time())))

    async def _set_revoked(self, user_id: str, revoked: bool) -> None:
        _checked_user_id(user_id)
        key = user_key(user_id)
        if revoked:
            await self._store.kv_put(REVOKED_NS, key, user_id.encode())
            self._revoked[key] = user_id
        else:
            await self._store.kv_delete(REVOKED_NS, key)
            self._revoked.pop(key, None)
        await self._store.audit("mfa.revoke", subject=user_id, revoked=bool(revoked))

    def _info(self) -> dict[str, Any]:
        now = time.time()
        return {"identity": self._me.identity, "ready": self._secret.ready, "dtas": list(self._secret.dtas),
                "have": self._secret.have(), "time_permits": self._settings.time_permits,
                "day": mpin.day_of(now), "time": int(now)}

    def _status(self) -> dict[str, Any]:
        now = time.time()
        return {"identity": self._me.identity, "ready": self._secret.ready, "dtas": list(self._secret.dtas),
                "have": self._secret.have(), "time_permits": self._settings.time_permits,
                "logins": {"ok": self._logins["ok"], "failed": self._logins["failed"]},
                "locked": [{"user_id": r.user_id, "failures": r.failures, "until": r.until}
                           for r in self._lockout.locked(now)],
                "revoked": sorted(self._revoked.values()),
                "sessions": len(self._sessions), "workers": self._pool.workers, "devices": len(self._devices),
                "assertion_signatures": {"signatures": self._signer.batches, "assertions": self._signer.signed},
                "refused_shares": dict(self._refused_shares)}
