"""``mpin.grant``: an admin of this node authorises the enrolment of one user ID.

Any node can grant (a relying party's node need not be a D-TA): the grant is a
`milagro_node.core.mpin_wire` statement signed in the HSM with this node's identity key,
which every D-TA of the federation checks against this node's identity log. The admin
hands the grant to the user, who presents it to each D-TA (``milagro-node client enroll``).
"""

from __future__ import annotations

import time
from typing import Any

from milagro_node.core import jsonrpc, mpin_wire
from milagro_node.core.identity import IdentityState

from .api_methods import ApiMethod, Session, b64, int_param, str_param
from .context import ActorContext
from .keystore import KeystoreClient
from .messages import OwnLog
from .node_identity import sign_key_id
from .store import StoreClient

DEFAULT_GRANT_TTL = 7 * 86400


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
    try:
        grant = await issue_statement(ctx, mpin_wire.GRANT, user_id, ttl)
    except mpin_wire.WireError as exc:
        raise jsonrpc.RpcError(jsonrpc.INVALID_PARAMS, exc.message, data={"code": exc.code}) from None
    await StoreClient(ctx).audit("mpin.grant", subject=user_id, grant=grant.cid, expires=grant.expires,
                                 remote=session.remote)
    return {"grant": b64(grant.data), "cid": grant.cid, "issuer": grant.issuer,
            "expires": grant.expires}


METHODS = {"mpin.grant": ApiMethod(_grant, audited=True)}
