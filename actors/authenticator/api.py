"""The ``mfa.*`` API methods: M-Pin logins at this node, and their administration.

Bytes travel as standard base64 strings (padded). Public (no admin token):

- ``mfa.pass1`` {id, u: 48 bytes, ut: 48 bytes or null/absent, day: the permit's, optional;
  grant: a DVS token's enrolment grant, optional} → {session, y: 32 bytes, expires}
- ``mfa.pass2`` {session, v: 48 bytes} → {assertion, mfa: this node's identity, expires}
- ``mfa.one_pass`` {id, u, ut, v, t: Unix seconds, message: bytes, optional; day; grant}
  → as pass2
- ``mfa.info`` {} → {identity, ready, dtas, have, time_permits, day, time}

Admin: ``mfa.unlock`` {id} → {}; ``mfa.revoke`` {id, revoked: bool, default true} → {};
``mfa.reset_device`` {id} → {registered: bool}; ``mfa.status`` {} → the
`actors.messages.AuthStatus` reply.

Refusals are node errors whose ``data.code`` is the actor's code (mfa-refused, mfa-locked,
mpin-expired, ...); malformed params are INVALID_PARAMS.
"""

from __future__ import annotations

from typing import Any

from milagro_node.core.mpin_wire import MAX_STATEMENT_BYTES

from ..api_methods import (
    ApiMethod, Session, b64, bytes_param, day_param, int_param, revoke_method, str_param, user_id_param,
)
from ..context import ActorContext
from ..messages import AuthStatus, FinishLogin, OnePassLogin, ResetDevice, StartLogin, UnlockUser
from .actor import NAME, MfaInfo

__all__ = ["METHODS"]

POINT = 48
MAX_MESSAGE = 4096
MAX_SESSION_ID = 64


def _grant_param(params: dict[str, Any]) -> bytes | None:
    return bytes_param(params, "grant", optional=True, max_size=MAX_STATEMENT_BYTES)


def _login_reply(reply: dict[str, Any]) -> dict[str, Any]:
    return {"assertion": b64(reply["assertion"]), "mfa": reply["mfa"], "expires": reply["expires"]}


async def _pass1(ctx: ActorContext, session: Session, params: dict[str, Any]) -> Any:
    request = StartLogin(user_id_param(params), bytes_param(params, "u", size=POINT),
                         bytes_param(params, "ut", size=POINT, optional=True), session.remote,
                         day_param(params, optional=True), _grant_param(params))
    reply = await ctx.ask(NAME, request)
    return {"session": reply["session"], "y": b64(reply["y"]), "expires": reply["expires"]}


async def _pass2(ctx: ActorContext, session: Session, params: dict[str, Any]) -> Any:
    request = FinishLogin(str_param(params, "session", max_len=MAX_SESSION_ID), bytes_param(params, "v", size=POINT),
                          session.remote)
    return _login_reply(await ctx.ask(NAME, request))


async def _one_pass(ctx: ActorContext, session: Session, params: dict[str, Any]) -> Any:
    message = bytes_param(params, "message", optional=True, max_size=MAX_MESSAGE)
    request = OnePassLogin(user_id_param(params), bytes_param(params, "u", size=POINT),
                           bytes_param(params, "ut", size=POINT, optional=True), bytes_param(params, "v", size=POINT),
                           int_param(params, "t", None, 0, 2**62), message or b"", session.remote,
                           day_param(params, optional=True), _grant_param(params))
    return _login_reply(await ctx.ask(NAME, request))


async def _info(ctx: ActorContext, session: Session, params: dict[str, Any]) -> Any:
    return await ctx.ask(NAME, MfaInfo())


async def _unlock(ctx: ActorContext, session: Session, params: dict[str, Any]) -> Any:
    await ctx.ask(NAME, UnlockUser(user_id_param(params)))
    return {}


async def _reset_device(ctx: ActorContext, session: Session, params: dict[str, Any]) -> Any:
    return await ctx.ask(NAME, ResetDevice(user_id_param(params)))


async def _status(ctx: ActorContext, session: Session, params: dict[str, Any]) -> Any:
    return await ctx.ask(NAME, AuthStatus())


METHODS: dict[str, ApiMethod] = {
    "mfa.pass1": ApiMethod(_pass1, admin=False),
    "mfa.pass2": ApiMethod(_pass2, admin=False),
    "mfa.one_pass": ApiMethod(_one_pass, admin=False),
    "mfa.info": ApiMethod(_info, admin=False),
    "mfa.unlock": ApiMethod(_unlock, audited=True),
    "mfa.revoke": ApiMethod(revoke_method(NAME), audited=True),
    "mfa.reset_device": ApiMethod(_reset_device, audited=True),
    "mfa.status": ApiMethod(_status),
}
