"""``mpin.grant``: an admin of this node authorises the enrolment of one user ID.

Any node can grant (a relying party's node need not be a D-TA): the grant is a
`milagro_node.core.mpin_wire` statement signed in the HSM with this node's identity key,
which every D-TA of the federation checks against this node's identity log. The admin
hands the grant to the user, who presents it to each D-TA (``milagro-node client enroll``).

A grant for a key-escrow-less (DVS) enrolment names the device's public key Pa
(``device_key``, `mpin_wire.grant_device_key`); the MFA node checks such a grant too, at
the user's first login there, and from then on takes the user's Pa from it alone.

`GrantChecker` is the one rule both roles apply to a grant they are shown: issued by this
node or an accepted issuer that resolves (pinned, not revoked), signed with its current
key, in its time window, for this very user ID.
"""

from __future__ import annotations

import time
from typing import Any

from milagro_node.core import ipld, jsonrpc, mpin, mpin_wire
from milagro_node.core.identity import IdentityState

from .api_methods import ApiMethod, Session, b64, bytes_param, int_param, str_param
from .context import ActorContext
from .keystore import KeystoreClient
from .mailbox import ActorError
from .messages import OwnLog, ResolveIdentity
from .node_identity import sign_key_id
from .store import StoreClient

DEFAULT_GRANT_TTL = 7 * 86400
# What the pki-resolver says about an identity that must not issue grants here.
_ISSUER_REFUSALS = ("not-a-member", "unknown-identity", "revoked", "duplicity")


class GrantChecker:
    """Checks the grants shown to one role (`prefix`: "dta" or "mfa", which names its
    config section and its error codes: ``<prefix>-not-member``, ``<prefix>-grant-subject``).

    Accepted issuers: this node, and ``[<prefix>] grant_issuers`` when that is set, else
    every member pinned in peers.toml.
    """

    def __init__(self, ctx: ActorContext, federation: Any, me: str, prefix: str) -> None:
        self._ctx, self._federation, self._me, self._prefix = ctx, federation, me, prefix
        section = getattr(ctx.settings, prefix, None)
        self.issuers = frozenset(ipld.normalize_cid(i) for i in getattr(section, "grant_issuers", ()) or ())

    def describe(self) -> list[str] | str:
        return sorted(self.issuers) or "this node and every member"

    async def check(self, grant: Any, subject: str, now: int) -> mpin_wire.Statement:
        """The verified grant for `subject`; `ActorError` or `mpin_wire.WireError` if not."""
        issuer = mpin_wire.parse_statement(grant, kind=mpin_wire.GRANT).issuer
        sign_key = await self._issuer_key(issuer)
        statement = mpin_wire.verify_statement(grant, kind=mpin_wire.GRANT, sign_key=sign_key, now=now)
        if statement.subject != subject:
            raise ActorError(f"{self._prefix}-grant-subject", "the grant authorises another user ID")
        return statement

    async def _issuer_key(self, issuer: str) -> bytes:
        refused = f"{self._prefix}-not-member"
        if issuer != self._me:
            allowed = issuer in self.issuers if self.issuers else self._federation.by_identity(issuer) is not None
            if not allowed:
                which = f"{self._prefix}.grant_issuers" if self.issuers else "the federation's members"
                raise ActorError(refused, f"the grant's issuer {issuer} is not this node nor one of {which}")
        try:
            state = await self._ctx.ask("pki-resolver", ResolveIdentity(issuer))
        except ActorError as exc:
            if exc.code in _ISSUER_REFUSALS:
                raise ActorError(refused, f"the grant's issuer {issuer} does not resolve "
                                 f"({exc.code}: {exc.message})") from None
            raise
        return state.sign_key


async def issue_statement(ctx: ActorContext, kind: str, subject: str, ttl: int,
                          extra: dict[str, Any] | None = None) -> mpin_wire.Statement:
    """A statement by this node, signed alone with its current identity key (a grant; the
    authenticator batches its assertions: `actors.statement_signer`)."""
    _, me = await ctx.ask("pki-resolver", OwnLog())
    draft = draft_statement(me, kind, subject, ttl, extra)
    return draft.finish(await KeystoreClient(ctx).sign(sign_key_id(me.seq), draft.to_be_signed))


def draft_statement(me: IdentityState, kind: str, subject: str, ttl: int,
                    extra: dict[str, Any] | None = None) -> mpin_wire.StatementDraft:
    """A statement by this node (`me`), made now, for its current identity key to sign."""
    return mpin_wire.prepare_statement(kind, issuer=me.identity, subject=subject, created=int(time.time()),
                                       ttl=ttl, extra=extra)


async def _grant(ctx: ActorContext, session: Session, params: dict[str, Any]) -> Any:
    user_id = str_param(params, "id", max_len=mpin_wire.MAX_USER_ID_BYTES)
    ttl = int_param(params, "ttl", DEFAULT_GRANT_TTL, 60, mpin_wire.MAX_TTL)
    device_key = bytes_param(params, "device_key", size=mpin_wire.DEVICE_KEY_BYTES, optional=True)
    try:
        if device_key is not None:
            mpin.decode_g2(device_key, "device_key")
        extra = None if device_key is None else {mpin_wire.DEVICE_KEY: device_key}
        grant = await issue_statement(ctx, mpin_wire.GRANT, user_id, ttl, extra)
    except (mpin_wire.WireError, mpin.MpinError) as exc:
        raise jsonrpc.RpcError(jsonrpc.INVALID_PARAMS, exc.message, data={"code": str(exc.code)}) from None
    await StoreClient(ctx).audit("mpin.grant", subject=user_id, grant=grant.cid, expires=grant.expires,
                                 device_key=device_key is not None, remote=session.remote)
    return {"grant": b64(grant.data), "cid": grant.cid, "issuer": grant.issuer,
            "expires": grant.expires, "device_key": device_key is not None}


METHODS = {"mpin.grant": ApiMethod(_grant, audited=True)}
