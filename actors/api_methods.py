"""What an API method is, and the checks its parameters share.

The api-gateway (`actors.api_gateway`) owns the websocket and the JSON-RPC framing; the
methods it serves are `ApiMethod` tables: its own (node, audit, peers, envelopes) and one
per role, each beside the actor it talks to (`actors.share_dealer.api`,
`actors.authenticator.api`). A handler gets the gateway's context (to ask actors), the
connection's `Session` and the params object, and returns a JSON-able result or raises
`jsonrpc.RpcError` (an `ActorError` from an actor becomes a node error with its code).
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Awaitable, Callable
from typing import Any

import attrs

from milagro_node.core import jsonrpc
from milagro_node.core.mpin_wire import MAX_USER_ID_BYTES
from milagro_node.core.ratelimit import TokenBucket

from .context import ActorContext
from .messages import SetUserRevoked

__all__ = ["ApiMethod", "Method", "Session", "b64", "bool_param", "bytes_param", "day_param", "int_param",
           "revoke_method", "str_param", "user_id_param"]

MAX_DAY = 2**32  # far beyond any real day; the actors take only today and its neighbours


@attrs.define
class Session:
    """One websocket connection's state."""

    remote: str
    bucket: TokenBucket
    admin: bool = False
    console: str | None = None  # the console session this connection logged in with, if any
    send: Callable[[str], Awaitable[None]] | None = None  # for notifications
    spawn: Callable[..., None] | None = None  # starts a task that ends with the connection
    subscriptions: set[str] = attrs.Factory(set)


Method = Callable[[ActorContext, Session, dict[str, Any]], Awaitable[Any]]


@attrs.frozen
class ApiMethod:
    handler: Method
    admin: bool = True
    audited: bool = False  # an admin action: the gateway audits who called it and the outcome


def _invalid(message: str) -> jsonrpc.RpcError:
    return jsonrpc.RpcError(jsonrpc.INVALID_PARAMS, message)


def int_param(params: dict[str, Any], name: str, default: int | None, low: int, high: int) -> int:
    """An integer in [low, high]; `default` when absent (None: required)."""
    value = params.get(name, default)
    if not isinstance(value, int) or isinstance(value, bool) or not low <= value <= high:
        raise _invalid(f"{name} must be an integer from {low} to {high}")
    return value


def str_param(params: dict[str, Any], name: str, *, max_len: int = 1024) -> str:
    """A required non-empty string of at most `max_len` characters."""
    value = params.get(name)
    if not isinstance(value, str) or not value or len(value) > max_len:
        raise _invalid(f"{name} must be a non-empty string of at most {max_len} characters")
    return value


def bytes_param(params: dict[str, Any], name: str, *, size: int | None = None, optional: bool = False,
                max_size: int = 1 << 22) -> bytes | None:
    """Base64 bytes (standard alphabet, padded); exactly `size` bytes when given."""
    value = params.get(name)
    if value is None and optional:
        return None
    try:
        if not isinstance(value, str):
            raise TypeError
        data = base64.b64decode(value, validate=True)
    except (binascii.Error, TypeError, ValueError):
        raise _invalid(f"{name} must be base64") from None
    if (size is not None and len(data) != size) or len(data) > max_size:
        raise _invalid(f"{name} must be {size} bytes" if size is not None else f"{name} is too large")
    return data


def bool_param(params: dict[str, Any], name: str, default: bool) -> bool:
    value = params.get(name, default)
    if not isinstance(value, bool):
        raise _invalid(f"{name} must be true or false")
    return value


def user_id_param(params: dict[str, Any]) -> str:
    """``id``: an M-Pin user ID (the actor checks its form: `mpin_wire.check_user_id`)."""
    return str_param(params, "id", max_len=MAX_USER_ID_BYTES)


def day_param(params: dict[str, Any], *, optional: bool = False) -> int | None:
    """``day``: a permit day (Unix time / 86400); None when `optional` and absent or null."""
    if optional and params.get("day") is None:
        return None
    return int_param(params, "day", None, 0, MAX_DAY)


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def revoke_method(actor: str) -> Method:
    """Admin {id, revoked=true} -> {}: `SetUserRevoked` at `actor` (the D-TA's and the MFA
    node's revocation lists are separate: each refuses in its own way)."""

    async def revoke(ctx: ActorContext, session: Session, params: dict[str, Any]) -> Any:
        await ctx.ask(actor, SetUserRevoked(user_id_param(params), bool_param(params, "revoked", True)))
        return {}

    return revoke
