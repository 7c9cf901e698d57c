"""The share-dealer actor itself (see the package docstring for the theory of operation)."""

from __future__ import annotations

import contextlib

import time
from collections.abc import Callable, Iterator
from typing import Any

import trio

from milagro_node.adapters.pairing import G1, G2, R
from milagro_node.core import mpin
from milagro_node.core.mpin import MpinError
from milagro_node.core.mpin_wire import (
    KIND_SERVER_SHARE, KIND_SERVER_SHARE_REQUEST, WireError, check_user_id, grant_device_key, seal_share,
    server_share_body, share_info,
)
from milagro_node.secret_memory import SecretBytes, wipe_buffer

from ..context import ActorContext
from ..keystore import KeystoreClient
from ..mailbox import ActorError
from ..mpin_grants import GrantChecker
from ..messages import (
    DealerStatus, EnrolClient, EnvelopeArrived, IssuePermit, OwnLog, ResetEnrolment, ResolveIdentity, SendEnvelope,
    ServerShare, SetUserRevoked, SubscribeKinds,
)
from ..store import StoreClient
from .records import (
    ENROLLED_NS, REVOKED_NS, STATS_KEY, STATS_NS, Stats, Throttle, device_field, device_key_of, user_key, user_of,
    user_record,
)

NAME = "share-dealer"
MASTER_KEY_ID, MASTER_KIND = "dta/master-share", "dta-master-share"
SERVER_SHARE_EVERY_S = 5.0
CONCURRENCY = 8

Refusal = ActorError | WireError | MpinError


class ShareDealer:
    name = NAME

    def __init__(self, federation: Any, *, server_share_every: float = SERVER_SHARE_EVERY_S) -> None:
        self._federation = federation
        self._throttle = Throttle(server_share_every)
        # Every write (enrolment records, revocations, counters) and its audit entry happen
        # under this lock: check-then-write stays atomic, and counters are never lost.
        self._writing = trio.Lock()

    async def run(self, ctx: ActorContext, *, task_status: trio.TaskStatus[None]) -> None:
        self._ctx, self._store, self._keys = ctx, StoreClient(ctx), KeystoreClient(ctx)
        _, own = await ctx.ask("pki-resolver", OwnLog())
        self._me: str = own.identity
        self._grants = GrantChecker(ctx, self._federation, self._me, "dta")
        await self._ensure_master_share()
        self._stats = Stats.decode(await self._store.kv_get(STATS_NS, STATS_KEY))
        await ctx.tell("envelope-router", SubscribeKinds(("dta.",), NAME))
        ctx.report(identity=self._me, grant_issuers=self._grants.describe())
        task_status.started()
        await ctx.serve(self._handle, concurrency=CONCURRENCY)

    async def _handle(self, request: Any) -> Any:
        try:
            match request:
                case EnrolClient(user_id, grant, reply_key, remote):
                    return await self._enrol(user_id, grant, reply_key, remote)
                case IssuePermit(user_id, day, reply_key, remote):
                    return await self._permit(user_id, day, reply_key, remote)
                case ResetEnrolment(user_id):
                    return await self._reset(user_id)
                case SetUserRevoked(user_id, revoked):
                    return await self._set_revoked(user_id, revoked)
                case DealerStatus():
                    return await self._status()
                case ServerShare():
                    return await self._local_server_share()
                case EnvelopeArrived() as arrived:
                    return await self._envelope(arrived)
        except (WireError, MpinError) as exc:
            raise ActorError(str(exc.code), exc.message) from None
        raise ActorError("bad-request", f"{NAME} does not handle {type(request).__name__}")

    # -- the master share ------------------------------------------------------------

    async def _ensure_master_share(self) -> None:
        try:
            (await self._keys.get(MASTER_KEY_ID, MASTER_KIND)).close()
            return
        except ActorError as exc:
            if exc.code != "keystore-no-key":  # an HSM or store fault must never mint a new share
                raise
        raw = bytearray(mpin.new_master_share().to_bytes(32, "big"))
        try:
            with SecretBytes.copy_from(raw) as secret:
                await self._keys.put(MASTER_KEY_ID, MASTER_KIND, secret)
        finally:
            wipe_buffer(raw)
        self._ctx.log.info("master share created", extra={"key_id": MASTER_KEY_ID})
        await self._store.audit("dta.master-share-created", key_id=MASTER_KEY_ID)

    async def _dealt(self, share_of: Callable[[int], G1 | G2]) -> bytes:
        """``share_of(s_i)`` compressed; s_i lives as an int only for this call."""
        with await self._keys.get(MASTER_KEY_ID, MASTER_KIND) as master:
            with master.view() as view:
                return share_of(_scalar(view)).to_bytes()

    async def _sealed(self, purpose: str, user_id: str, reply_key: bytes, day: int | None = None,
                      device_key: bytes | None = None) -> bytes:
        """This D-TA's share for `user_id`'s M-Pin identity: ID, or ID ‖ Pa for a DVS device."""
        identity = user_id.encode() if device_key is None else mpin.dvs_identity(user_id.encode(), device_key)
        if purpose == "client-share":
            share = await self._dealt(lambda s: mpin.client_secret_share(s, identity))
        else:
            share = await self._dealt(lambda s: mpin.time_permit_share(s, identity, day))
        with SecretBytes.copy_from(share) as secret:
            del share  # the immutable copy cannot be wiped; drop it at once
            return seal_share(reply_key, share_info(purpose, user_id, self._me, day), secret)

    # -- enrolment -------------------------------------------------------------------

    async def _enrol(self, user_id: Any, grant: Any, reply_key: Any, remote: str) -> dict[str, Any]:
        subject = None
        try:
            subject = check_user_id(user_id)
            _check_reply_key(reply_key)
            statement = await self._grants.check(grant, subject, int(time.time()))
            device_key = grant_device_key(statement)
            if device_key is not None:
                mpin.decode_g2(device_key, "the grant's device_key")
            await self._refuse_barred(subject)  # before the HSM and pairing work, and again below
            sealed = await self._sealed("client-share", subject, reply_key, device_key=device_key)
            async with self._writing:
                await self._refuse_barred(subject)
                record = user_record(subject, grant=statement.cid, **device_field(device_key))
                await self._issued("client-share", [(ENROLLED_NS, user_key(subject), record)],
                                   "dta.client-share", subject=subject, grant=statement.cid,
                                   dvs=device_key is not None, remote=remote)
        except (ActorError, WireError, MpinError) as exc:
            await self._audit_refusal("dta.enrol-refused", exc, subject=subject, remote=remote)
            raise
        self._ctx.log.info("client share issued", extra={"subject": subject, "grant": statement.cid})
        return {"sealed": sealed, "dta": self._me}

    async def _refuse_barred(self, subject: str) -> None:
        key = user_key(subject)
        if await self._store.kv_get(REVOKED_NS, key) is not None:
            raise ActorError("dta-revoked", f"user {subject!r} is revoked at this D-TA")
        if await self._store.kv_get(ENROLLED_NS, key) is not None:
            raise ActorError("dta-enrolled", f"user {subject!r} has enrolled at this D-TA already "
                             "(an admin can reset the enrolment with dta.reset)")

    async def _reset(self, user_id: Any) -> None:
        subject = check_user_id(user_id)
        async with self._writing:
            enrolled = await self._store.kv_get(ENROLLED_NS, user_key(subject)) is not None
            with _finishing():
                if enrolled:
                    await self._store.kv_delete(ENROLLED_NS, user_key(subject))
                await self._store.audit("dta.enrol-reset", subject=subject, enrolled=enrolled)
        self._ctx.log.info("enrolment reset", extra={"subject": subject, "enrolled": enrolled})

    async def _set_revoked(self, user_id: Any, revoked: Any) -> None:
        subject = check_user_id(user_id)
        if not isinstance(revoked, bool):
            raise ActorError("bad-request", "revoked is true or false")
        async with self._writing:
            with _finishing():
                if revoked:
                    await self._store.kv_put(REVOKED_NS, user_key(subject), user_record(subject))
                else:
                    await self._store.kv_delete(REVOKED_NS, user_key(subject))
                await self._store.audit("dta.user-revoked", subject=subject, revoked=revoked)
        self._ctx.log.info("user revoked" if revoked else "user reinstated", extra={"subject": subject})

    # -- time permits ----------------------------------------------------------------

    async def _permit(self, user_id: Any, day: Any, reply_key: Any, remote: str) -> dict[str, Any]:
        subject = None
        try:
            subject = check_user_id(user_id)
            _check_reply_key(reply_key)
            today = mpin.day_of(time.time())
            if not isinstance(day, int) or isinstance(day, bool) or day not in (today, today + 1):
                raise ActorError("dta-bad-day", f"permits are issued for today ({today}) or tomorrow "
                                 f"({today + 1}) by this D-TA's clock, not for day {day!r}")
            key = user_key(subject)
            if await self._store.kv_get(REVOKED_NS, key) is not None:
                raise ActorError("dta-revoked", f"user {subject!r} is revoked at this D-TA")
            enrolled = await self._store.kv_get(ENROLLED_NS, key)
            if enrolled is None:
                raise ActorError("dta-not-enrolled", f"user {subject!r} has not enrolled at this D-TA")
            sealed = await self._sealed("time-permit", subject, reply_key, day, device_key_of(enrolled))
            async with self._writing:
                await self._issued("time-permit", [], "dta.time-permit", subject=subject, day=day, remote=remote)
        except (ActorError, WireError, MpinError) as exc:
            await self._audit_refusal("dta.permit-refused", exc, subject=subject,
                                      day=day if isinstance(day, int) else None, remote=remote)
            raise
        return {"sealed": sealed, "dta": self._me, "day": day}

    # -- server shares ---------------------------------------------------------------

    async def _envelope(self, arrived: EnvelopeArrived) -> None:
        if arrived.kind != KIND_SERVER_SHARE_REQUEST:
            self._ctx.log.debug("envelope kind not handled", extra={"kind": arrived.kind, "cid": arrived.cid})
            return
        sender = arrived.sender
        if not self._throttle.allow(sender):
            self._ctx.log.debug("server share request throttled", extra={"sender": sender})
            return
        try:
            await self._check_mfa_member(sender)
            share = await self._dealt(mpin.server_secret_share)
            sent = await self._ctx.ask("envelope-router",
                                       SendEnvelope((sender,), KIND_SERVER_SHARE, server_share_body(share)))
            del share
            async with self._writing:
                await self._issued("server-share", [], "dta.server-share", to_mfa=sender, to=sender,
                                   envelope=sent["cid"])
        except (ActorError, WireError, MpinError) as exc:  # a tell: nobody to raise to
            self._ctx.log.warning("server share request refused",
                                  extra={"sender": sender, "code": str(exc.code), "reason": exc.message})
            await self._audit_refusal("dta.server-share-refused", exc, requester=sender, envelope=arrived.cid)
            return
        self._ctx.log.info("server share sent", extra={"to": sender, "envelope": sent["cid"]})

    async def _check_mfa_member(self, sender: str) -> None:
        member = self._federation.by_identity(sender)
        if member is None or not member.has_role("mfa"):
            raise ActorError("dta-not-member", f"{sender} is not a federation member with role mfa in peers.toml")
        await self._ctx.ask("pki-resolver", ResolveIdentity(sender))  # pinned peer id, not revoked

    async def _local_server_share(self) -> SecretBytes:
        share = await self._dealt(mpin.server_secret_share)
        async with self._writing:
            await self._issued("server-share", [], "dta.server-share", to_mfa=self._me, to=self._me, local=True)
        secret = SecretBytes.copy_from(share)
        del share
        return secret

    # -- status, records, audit ------------------------------------------------------

    async def _status(self) -> dict[str, Any]:
        enrolled = await self._store.kv_items(ENROLLED_NS)
        revoked = sorted(user_of(value) for _, value in await self._store.kv_items(REVOKED_NS))
        return {"identity": self._me, "enrolled": len(enrolled), "revoked": revoked,
                "issued": dict(self._stats.issued), "mfa_served": sorted(self._stats.mfa_served)}

    async def _issued(self, kind: str, puts: list[tuple[str, str, bytes]], action: str, *,
                      to_mfa: str | None = None, **detail: Any) -> None:
        """Record one issuance: `puts` and the counters in one transaction, then the audit
        entry. Called under the write lock; not cut off half-way by a caller's deadline."""
        stats = self._stats.counted(kind, to_mfa)
        with _finishing():
            await self._store.kv_batch([*puts, (STATS_NS, STATS_KEY, stats.encode())])
            self._stats = stats
            await self._store.audit(action, **detail)

    async def _audit_refusal(self, action: str, exc: Refusal, **detail: Any) -> None:
        try:
            with _finishing():
                await self._store.audit(action, code=str(exc.code), **detail)
        except ActorError as failed:  # the refusal itself is what the caller must see
            self._ctx.log.warning("refusal not audited", extra={"action": action, "code": failed.code})



SHIELD_S = 3.0  # a write shielded from the caller's deadline still ends: at shutdown the store is gone


@contextlib.contextmanager
def _finishing() -> Iterator[None]:
    """Finish a write whatever the caller's deadline, but give up after `SHIELD_S`: on a
    shutdown the store stops answering, and waiting out its deadline stalls the exit."""
    with trio.CancelScope(shield=True, deadline=trio.current_time() + SHIELD_S) as scope:
        yield
    if scope.cancelled_caught:
        raise ActorError("store-timeout", f"the store did not answer within {SHIELD_S:g} s")

def _scalar(view: memoryview) -> int:
    s = int.from_bytes(view, "big")
    if not 0 < s < R:
        raise ActorError("keystore-corrupt", f"key {MASTER_KEY_ID!r} is not a scalar in [1, r)")
    return s


def _check_reply_key(reply_key: Any) -> None:
    if not isinstance(reply_key, (bytes, bytearray)) or len(reply_key) != 32:
        raise WireError("malformed", "reply_key must be a 32-byte X25519 public key")
