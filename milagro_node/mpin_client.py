"""The M-Pin client: enrol with every D-TA, keep the token, log in at an MFA node.

    token = await enroll("alice@example.com", grant, ["ws://dta1:7400", ...], pin)
    token.save(path)                                   # 0600; the PIN is not in it
    result = await login(TokenFile.load(path), "ws://mfa:7400", pin)
    result.assertion                                   # signed by the MFA node's identity

Everything goes over the nodes' websocket APIs (`milagro_node.api_client`), with no admin
token: ``dta.enroll``, ``dta.permit``, ``mfa.info``, ``mfa.pass1``/``mfa.pass2`` and
``mfa.one_pass`` are public methods. The PIN never leaves this process, and neither does
the client secret: each D-TA seals its share to a one-time X25519 key made here for that
request (`milagro_node.core.mpin_wire.seal_share`), the shares are summed here, the PIN is
extracted (token = CS − PIN·H(ID)), and only the token is kept.

Time permits: when the MFA node requires them (``mfa.info`` says so), `login` asks every
D-TA of the token for its share of today's permit (the day by the MFA node's clock) and
sums them, and tells the MFA node which day it holds (so a login begun just before
midnight still passes just after it). A revoked user gets no permit from an honest D-TA,
so a revocation at the D-TAs takes effect at the next day even at an MFA node that has not
heard of it.

Errors: `ClientRefused` (a node said no: its ``code`` is the node's, e.g. ``dta-enrolled``,
``mfa-refused``, ``mfa-locked``) and `ClientError` (anything else: unreachable node, bad
token file). Messages never hold the PIN, the token or a share.
"""

from __future__ import annotations

import base64
import json
import time
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import attrs

from milagro_node.adapters.pairing import G1
from milagro_node.api_client import ApiCallError, ApiUnavailable, NodeApi, connect
from milagro_node.core import hpke, mpin, mpin_wire
from milagro_node.private_files import write_private

__all__ = ["ClientError", "ClientRefused", "LoginResult", "TokenFile", "enroll", "fetch_permit", "login"]

TOKEN_FILE_VERSION = 1


class ClientError(Exception):
    """The client could not do what was asked (not a refusal by a node)."""


class ClientRefused(ClientError):
    """A node refused: `code` is its error code, `url` the node."""

    def __init__(self, url: str, code: str, message: str) -> None:
        super().__init__(f"{url} refused: {message} ({code})")
        self.url, self.code, self.message = url, code, message


@attrs.frozen
class TokenFile:
    """What the device keeps: the user ID, the token, and the D-TAs that dealt it."""

    user_id: str
    token: bytes = attrs.field(repr=False)  # 48-byte G1 point: CS − PIN·H(ID)
    dtas: tuple[tuple[str, str], ...]  # (api url, identity) of each D-TA whose share is in it
    created: int

    def save(self, path: Path) -> None:
        """Write it readable by the owner only (0600), atomically."""
        body = {"v": TOKEN_FILE_VERSION, "user_id": self.user_id, "token": _b64(self.token),
                "dtas": [{"url": url, "identity": identity} for url, identity in self.dtas],
                "created": self.created}
        write_private(Path(path), (json.dumps(body, indent=2) + "\n").encode())

    @classmethod
    def load(cls, path: Path) -> TokenFile:
        try:
            body = json.loads(Path(path).read_text())
            if body.get("v") != TOKEN_FILE_VERSION:
                raise ValueError(f"version {body.get('v')!r}, expected {TOKEN_FILE_VERSION}")
            token = base64.b64decode(body["token"], validate=True)
            mpin.decode_g1(token, "token")
            dtas = tuple((str(d["url"]), str(d["identity"])) for d in body["dtas"])
            return cls(mpin_wire.check_user_id(body["user_id"]), token, dtas, int(body["created"]))
        except OSError as exc:
            raise ClientError(f"cannot read the token file {path}: {exc.strerror}") from None
        except (ValueError, KeyError, TypeError, mpin.MpinError, mpin_wire.WireError) as exc:
            raise ClientError(f"{path} is not a usable token file: {exc}") from None


@attrs.frozen
class LoginResult:
    assertion: bytes = attrs.field(repr=False)  # mpin_wire statement, kind "mpin.assertion"
    mfa: str  # identity of the node that signed it
    expires: int


async def enroll(user_id: str, grant: bytes, dta_urls: Sequence[str], pin: int) -> TokenFile:
    """Collect a client-secret share from every D-TA, sum them, extract the PIN.

    All or nothing: if any D-TA refuses or is unreachable, no token is made (the D-TAs
    that did deal a share have recorded the enrolment; an admin resets them to retry).
    """
    mpin_wire.check_user_id(user_id)
    pin = mpin.pin_from_digits(pin) if isinstance(pin, str) else pin
    if not dta_urls:
        raise ClientError("enrolment needs at least one D-TA")
    if len(set(dta_urls)) != len(dta_urls):
        raise ClientError("the same D-TA is named twice")
    shares, dtas = [], []
    for url in dta_urls:
        share, identity = await _sealed_share(url, "dta.enroll", "client-share", user_id, None,
                                              {"id": user_id, "grant": _b64(grant)})
        if identity in (i for _, i in dtas):
            raise ClientError(f"{url} is the same D-TA ({identity}) as another URL")
        shares.append(share)
        dtas.append((url, identity))
    token = mpin.extract_pin(mpin.combine(shares), user_id.encode(), pin)
    return TokenFile(user_id, token.to_bytes(), tuple(dtas), int(time.time()))


async def fetch_permit(token: TokenFile, day: int) -> G1:
    """Today's (or `day`'s) time permit: the sum of every D-TA's permit share."""
    shares = []
    for url, identity in token.dtas:
        share, _ = await _sealed_share(url, "dta.permit", "time-permit", token.user_id, day,
                                                 {"id": token.user_id, "day": day}, identity)
        shares.append(share)
    return mpin.combine(shares)


async def login(token: TokenFile, mfa_url: str, pin: int | str, *, one_pass: bool = False,
                permit_day: int | None = None) -> LoginResult:
    """Log in at `mfa_url` with the token and the PIN (two-pass, or one-pass).

    `permit_day` overrides the day of the time permit (tests use it to show that a permit
    for another day is refused); by default it is the MFA node's day.
    """
    pin = mpin.pin_from_digits(pin) if isinstance(pin, str) else pin
    async with _api(mfa_url) as api:
        info = await _call(api, mfa_url, "mfa.info")
        permit = day = None
        if info.get("time_permits"):
            day = info["day"] if permit_day is None else permit_day
            permit = await fetch_permit(token, day)
        attempt = mpin.ClientAttempt(mpin.decode_g1(token.token, "token"), token.user_id.encode(), pin,
                                     permit=permit, day=day)
        u = attempt.pass1.u.to_bytes()
        ut = None if attempt.pass1.ut is None else _b64(attempt.pass1.ut.to_bytes())
        if one_pass:
            now = int(time.time())
            proof = attempt.one_pass(now)
            reply = await _call(api, mfa_url, "mfa.one_pass", id=token.user_id, u=_b64(u), ut=ut,
                                v=_b64(proof.v.to_bytes()), t=now, day=day)
        else:
            challenge = await _call(api, mfa_url, "mfa.pass1", id=token.user_id, u=_b64(u), ut=ut, day=day)
            y = int.from_bytes(base64.b64decode(challenge["y"]), "big")
            v = attempt.respond(y)
            reply = await _call(api, mfa_url, "mfa.pass2", session=challenge["session"], v=_b64(v.to_bytes()))
    return LoginResult(base64.b64decode(reply["assertion"]), reply["mfa"], int(reply["expires"]))


# --------------------------------------------------------------------------- internals


async def _sealed_share(url: str, method: str, purpose: str, user_id: str, day: int | None,
                        params: dict[str, Any], expect_dta: str | None = None) -> tuple[G1, str]:
    """Ask one D-TA for a share sealed to a fresh key; open and decode it. -> (share, D-TA identity)."""
    reply_key = hpke.X25519SecretKey.generate()
    try:
        async with _api(url) as api:
            answer = await _call(api, url, method, reply_key=_b64(reply_key.x25519_public), **params)
        dta = answer.get("dta")
        if expect_dta is not None and dta != expect_dta:
            raise ClientError(f"{url} answered as {dta}, but the token's share there came from {expect_dta}")
        try:
            sealed = base64.b64decode(answer["sealed"], validate=True)
            with mpin_wire.open_share(sealed, reply_key, mpin_wire.share_info(purpose, user_id, dta, day)) as share:
                return mpin.decode_g1(share.reveal(), f"{purpose} from {url}"), dta
        except (KeyError, TypeError, ValueError, mpin_wire.WireError, mpin.MpinError) as exc:
            raise ClientError(f"{url} sent an unusable {purpose}: {exc}") from None
    finally:
        reply_key.close()


@asynccontextmanager
async def _api(url: str) -> AsyncIterator[NodeApi]:
    try:
        async with connect(url) as api:
            yield api
    except ApiUnavailable as exc:
        raise ClientError(f"{url}: {exc}") from None


async def _call(api: NodeApi, url: str, method: str, **params: Any) -> Any:
    try:
        return await api.call(method, **params)
    except ApiCallError as exc:
        code = (exc.data or {}).get("code") if isinstance(exc.data, dict) else None
        raise ClientRefused(url, code or f"rpc-{exc.code}", exc.message) from None
    except ApiUnavailable as exc:
        raise ClientError(f"{url}: {exc}") from None


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()
