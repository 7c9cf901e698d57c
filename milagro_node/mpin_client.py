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

Key-escrow-less (DVS) tokens, so that even all D-TAs together cannot log in as the user:

    device = new_device("alice@example.com"); device.save(path)   # z stays on the device
    device_key(device)                  # Pa, for the admin's grant (mpin.grant device_key)
    token = await enroll("alice@example.com", grant, dtas, pin, device=device)

The D-TAs deal shares for ID ‖ Pa, the token is z·CS − PIN·H(ID ‖ Pa), and `login` shows the
MFA node the grant, which names Pa, so that it registers Pa at the first login.

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

from milagro_node.adapters.pairing import G1, R
from milagro_node.api_client import ApiCallError, ApiUnavailable, NodeApi, connect
from milagro_node.core import hpke, mpin, mpin_wire
from milagro_node.private_files import write_private

__all__ = ["ClientError", "ClientRefused", "LoginResult", "TokenFile", "device_key", "enroll", "fetch_permit",
           "grant_device_key", "login", "new_device"]

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
    """What the device keeps: the user ID, the token, and the D-TAs that dealt it; for a DVS
    token also the device's secret z and the grant naming its key. A file made by
    `new_device` holds z alone (``token`` None) until `enroll` completes it."""

    user_id: str
    token: bytes | None = attrs.field(repr=False)  # 48-byte G1 point: CS − PIN·H(ID), or z·CS − PIN·H(ID ‖ Pa)
    dtas: tuple[tuple[str, str], ...]  # (api url, identity) of each D-TA whose share is in it
    created: int
    dvs_z: int | None = attrs.field(default=None, repr=False)  # the DVS device secret z
    grant: bytes | None = attrs.field(default=None, repr=False)  # the DVS grant, shown at logins

    @property
    def identity(self) -> bytes:
        """The M-Pin identity: ID, or ID ‖ Pa for a DVS token."""
        pa = None if self.grant is None else grant_device_key(self.grant)
        return self.user_id.encode() if pa is None else mpin.dvs_identity(self.user_id.encode(), pa)

    def save(self, path: Path) -> None:
        """Write it readable by the owner only (0600), atomically."""
        body: dict[str, Any] = {"v": TOKEN_FILE_VERSION, "user_id": self.user_id,
                                "token": None if self.token is None else _b64(self.token),
                                "dtas": [{"url": url, "identity": identity} for url, identity in self.dtas],
                                "created": self.created}
        if self.dvs_z is not None:
            body["device_secret"] = _b64(self.dvs_z.to_bytes(32, "big"))
        if self.grant is not None:
            body["grant"] = _b64(self.grant)
        write_private(Path(path), (json.dumps(body, indent=2) + "\n").encode())

    @classmethod
    def load(cls, path: Path) -> TokenFile:
        try:
            body = json.loads(Path(path).read_text())
            if body.get("v") != TOKEN_FILE_VERSION:
                raise ValueError(f"version {body.get('v')!r}, expected {TOKEN_FILE_VERSION}")
            z = body.get("device_secret")
            z = None if z is None else _device_secret(z)
            grant = None if body.get("grant") is None else base64.b64decode(body["grant"], validate=True)
            token = None if body["token"] is None else base64.b64decode(body["token"], validate=True)
            if token is not None:
                mpin.decode_g1(token, "token")
            elif z is None:
                raise ValueError("it holds neither a token nor a device secret")
            if (grant is not None and grant_device_key(grant) is not None) != (token is not None and z is not None):
                raise ValueError("a DVS token holds both its device secret and the grant naming its key")
            dtas = tuple((str(d["url"]), str(d["identity"])) for d in body["dtas"])
            return cls(mpin_wire.check_user_id(body["user_id"]), token, dtas, int(body["created"]), z, grant)
        except OSError as exc:
            raise ClientError(f"cannot read the token file {path}: {exc.strerror}") from None
        except (ValueError, KeyError, TypeError, mpin.MpinError, mpin_wire.WireError) as exc:
            raise ClientError(f"{path} is not a usable token file: {exc}") from None


@attrs.frozen
class LoginResult:
    assertion: bytes = attrs.field(repr=False)  # mpin_wire statement, kind "mpin.assertion"
    mfa: str  # identity of the node that signed it
    expires: int


def new_device(user_id: str) -> TokenFile:
    """A new DVS device key for `user_id`: a token file holding z only, to `save` now and
    complete with `enroll` once an admin granted its key (`device_key`)."""
    mpin_wire.check_user_id(user_id)
    return TokenFile(user_id, None, (), int(time.time()), dvs_z=mpin.DvsKey.generate().z)


def device_key(device: TokenFile) -> bytes:
    """The device's public key Pa (96 bytes) for a grant's ``device_key``."""
    if device.dvs_z is None:
        raise ClientError(f"the token file for {device.user_id!r} holds no device key")
    return mpin.DvsKey.from_secret(device.dvs_z).pa.to_bytes()


def grant_device_key(grant: bytes) -> bytes | None:
    """The device key a grant names (None: a plain grant, or one that does not parse, which
    the D-TAs refuse with their reason); the D-TAs check the rest of it."""
    try:
        return mpin_wire.grant_device_key(mpin_wire.parse_statement(grant, kind=mpin_wire.GRANT))
    except mpin_wire.WireError:
        return None


async def enroll(user_id: str, grant: bytes, dta_urls: Sequence[str], pin: int,
                 device: TokenFile | None = None) -> TokenFile:
    """Collect a client-secret share from every D-TA, sum them, extract the PIN.

    A grant that names a device key needs that `device` (from `new_device`); the token is
    then z·CS − PIN·H(ID ‖ Pa). All or nothing: if any D-TA refuses or is unreachable, no
    token is made (the D-TAs that did deal a share have recorded the enrolment; an admin
    resets them to retry).
    """
    mpin_wire.check_user_id(user_id)
    pin = mpin.pin_from_digits(pin) if isinstance(pin, str) else pin
    pa = grant_device_key(grant)
    if pa is not None:
        if device is None or device.dvs_z is None:
            raise ClientError("the grant names a device key: enrol on the device that made it "
                              "(milagro-node client keygen)")
        if device.user_id != user_id or device_key(device) != pa:
            raise ClientError("the grant names another device key than this device's")
    elif device is not None:
        raise ClientError("the grant names no device key: it is for a plain token")
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
    z = None if pa is None else device.dvs_z  # type: ignore[union-attr]
    identity = user_id.encode() if pa is None else mpin.dvs_identity(user_id.encode(), pa)
    token = mpin.extract_pin(mpin.combine(shares), identity, pin, dvs_z=z)
    return TokenFile(user_id, token.to_bytes(), tuple(dtas), int(time.time()), z, None if pa is None else grant)


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
    if token.token is None:
        raise ClientError(f"the token file for {token.user_id!r} holds a device key only: enrol first")
    grant = None if token.grant is None else _b64(token.grant)
    async with _api(mfa_url) as api:
        info = await _call(api, mfa_url, "mfa.info")
        permit = day = None
        if info.get("time_permits"):
            day = info["day"] if permit_day is None else permit_day
            permit = await fetch_permit(token, day)
        attempt = mpin.ClientAttempt(mpin.decode_g1(token.token, "token"), token.identity, pin,
                                     permit=permit, day=day, dvs_z=token.dvs_z)
        u = attempt.pass1.u.to_bytes()
        ut = None if attempt.pass1.ut is None else _b64(attempt.pass1.ut.to_bytes())
        if one_pass:
            now = int(time.time())
            proof = attempt.one_pass(now)
            reply = await _call(api, mfa_url, "mfa.one_pass", id=token.user_id, u=_b64(u), ut=ut,
                                v=_b64(proof.v.to_bytes()), t=now, day=day, grant=grant)
        else:
            challenge = await _call(api, mfa_url, "mfa.pass1", id=token.user_id, u=_b64(u), ut=ut, day=day,
                                    grant=grant)
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


def _device_secret(text: str) -> int:
    """z from its base64 (checked as a scalar only: its Pa is computed when needed, not at
    every load of the token file)."""
    data = base64.b64decode(text, validate=True)
    z = int.from_bytes(data, "big")
    if len(data) != 32 or not 0 < z < R:
        raise ValueError("a device secret is a 32-byte scalar in [1, r)")
    return z
