"""The ``dta.*`` API methods: what clients and admins ask this node's share dealer.

Served by the api-gateway when the node has role ``dta``. Params and results are JSON;
bytes are standard base64 strings. Enrolment, permits and info are public (a user has no
admin token: the grant is what authorises an enrolment); reset, revoke and status need
the admin token. Shares never appear here in clear: they are sealed to the client's
one-time ``reply_key`` (`milagro_node.core.mpin_wire.seal_share`).
"""

from __future__ import annotations

import time
from typing import Any

from milagro_node.core import mpin
from milagro_node.core.mpin_wire import MAX_STATEMENT_BYTES

from ..api_methods import ApiMethod, Session, b64, bytes_param, day_param, revoke_method, user_id_param
from ..context import ActorContext
from ..messages import DealerStatus, EnrolClient, IssuePermit, OwnLog, ResetEnrolment
from .actor import NAME

async def _enroll(ctx: ActorContext, session: Session, params: dict[str, Any]) -> Any:
    """{id, grant, reply_key} -> {sealed, dta}: this D-TA's client-secret share, once per ID."""
    request = EnrolClient(user_id_param(params), bytes_param(params, "grant", max_size=MAX_STATEMENT_BYTES),
                          bytes_param(params, "reply_key", size=32), session.remote)
    answer = await ctx.ask(NAME, request)
    return {"sealed": b64(answer["sealed"]), "dta": answer["dta"]}


async def _permit(ctx: ActorContext, session: Session, params: dict[str, Any]) -> Any:
    """{id, day, reply_key} -> {sealed, dta, day}: the time-permit share for `day`."""
    request = IssuePermit(user_id_param(params), day_param(params),
                          bytes_param(params, "reply_key", size=32), session.remote)
    answer = await ctx.ask(NAME, request)
    return {"sealed": b64(answer["sealed"]), "dta": answer["dta"], "day": answer["day"]}


async def _info(ctx: ActorContext, session: Session, params: dict[str, Any]) -> Any:
    """{} -> {identity, day, time}: who this D-TA is and its clock (permits follow its day)."""
    _, own = await ctx.ask("pki-resolver", OwnLog())
    now = time.time()
    return {"identity": own.identity, "day": mpin.day_of(now), "time": int(now)}


async def _reset(ctx: ActorContext, session: Session, params: dict[str, Any]) -> Any:
    """Admin {id} -> {}: let the user enrol again (a lost device, a failed enrolment)."""
    await ctx.ask(NAME, ResetEnrolment(user_id_param(params)))
    return {}


async def _status(ctx: ActorContext, session: Session, params: dict[str, Any]) -> Any:
    """Admin {} -> the `DealerStatus` reply."""
    return await ctx.ask(NAME, DealerStatus())


METHODS: dict[str, ApiMethod] = {
    "dta.enroll": ApiMethod(_enroll, admin=False),
    "dta.permit": ApiMethod(_permit, admin=False),
    "dta.info": ApiMethod(_info, admin=False),
    "dta.reset": ApiMethod(_reset, audited=True),
    "dta.revoke": ApiMethod(revoke_method(NAME), audited=True),
    "dta.status": ApiMethod(_status),
}
