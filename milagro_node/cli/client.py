"""``milagro-node client``: the M-Pin user's side, and the admin's grants.

    milagro-node client grant  --id alice@example.com --out alice.grant     # an admin, on a node
    milagro-node client enroll --id alice@example.com --grant alice.grant --dta ws://a:7400 --dta ws://b:7400
    milagro-node client login  --id alice@example.com --mfa ws://m:7400
    milagro-node client verify --assertion login.assertion --log mfa-node.log   # a relying party

Key-escrow-less (DVS), so that even all D-TAs together cannot log in as the user: the user
makes a device key first and the admin's grant names it::

    milagro-node client keygen --id alice@example.com          # prints the device key
    milagro-node client grant  --id alice@example.com --device-key <it> --out alice.grant
    milagro-node client enroll --id alice@example.com --grant alice.grant --dta ...   # as above

``enroll`` and ``login`` ask for the PIN (4 to 8 digits) on the terminal, or read it from
``--pin-file``; the PIN is never written anywhere. The token file is written 0600.
Exit status: 0 done, 1 refused or failed (the message says which node said what), 2 bad usage.
"""

from __future__ import annotations

import argparse
import base64
import getpass
import hashlib
import json
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import trio

from milagro_node.api_client import ApiCallError, ApiUnavailable, connect
from milagro_node.core import mpin, mpin_wire
from milagro_node.core.identity import IdentityError, import_log
from milagro_node.mpin_client import (
    ClientError, ClientRefused, TokenFile, device_key, enroll, grant_device_key, login, new_device,
)
from milagro_node.private_files import write_private


class ClientUsage(Exception):
    """Bad usage: exit status 2."""


def default_token_path(user_id: str) -> Path:
    """~/.milagro/tokens/<first 16 hex digits of SHA-256(ID)>.token (the ID may hold any character)."""
    return Path.home() / ".milagro" / "tokens" / f"{hashlib.sha256(user_id.encode()).hexdigest()[:16]}.token"


def add_client_parser(commands: Any, common: argparse.ArgumentParser) -> None:
    client = commands.add_parser("client", help="M-Pin client: grant, keygen, enroll, login, verify an assertion")
    actions = client.add_subparsers(dest="client_command", required=True, metavar="ACTION")
    grant = actions.add_parser("grant", parents=[common],
                               help="(admin of a node) sign an enrolment grant for a user ID with the node's identity")
    grant.add_argument("--id", required=True, help="the user ID")
    grant.add_argument("--out", type=Path, required=True, help="where to write the grant (0600)")
    grant.add_argument("--ttl", type=int, default=7 * 86400, metavar="SECONDS", help="lifetime (default 7 days)")
    grant.add_argument("--device-key", metavar="BASE64",
                       help="the user's device key from `client keygen`: a key-escrow-less (DVS) enrolment")
    keygen = actions.add_parser("keygen", help="make a device key for a key-escrow-less (DVS) enrolment")
    keygen.add_argument("--id", required=True, help="the user ID")
    keygen.add_argument("--token", type=Path,
                        help="the token file to start (default: ~/.milagro/tokens/<hash of ID>.token)")
    keygen.add_argument("--force", action="store_true", help="replace an existing token file")
    for name, helptext in (("enroll", "collect a share from every D-TA, choose a PIN, write the token file"),
                           ("login", "log in at an MFA node with the token and the PIN")):
        action = actions.add_parser(name, help=helptext)
        action.add_argument("--id", required=True, help="the user ID")
        action.add_argument("--token", type=Path, help="the token file (default: ~/.milagro/tokens/<hash of ID>.token)")
        action.add_argument("--pin-file", type=Path, help="read the PIN from this file instead of the terminal")
    enroll_ = actions.choices["enroll"]
    enroll_.add_argument("--grant", type=Path, required=True, help="the grant file from `client grant`")
    enroll_.add_argument("--dta", action="append", required=True, metavar="API_URL",
                         help="a D-TA's websocket API, e.g. ws://127.0.0.1:7400 (repeat: one per D-TA)")
    login_ = actions.choices["login"]
    login_.add_argument("--mfa", required=True, metavar="API_URL", help="the MFA node's websocket API")
    login_.add_argument("--one-pass", action="store_true", help="one round trip (timestamped proof)")
    login_.add_argument("--out", type=Path, help="write the signed assertion here (default: print it in base64)")
    verify = actions.add_parser("verify", help="(relying party) check a login assertion against the MFA node's log")
    verify.add_argument("--assertion", type=Path, required=True, help="the assertion (raw or base64)")
    verify.add_argument("--log", type=Path, required=True, help="the MFA node's log, from `identity export`")
    verify.add_argument("--id", help="the user ID the assertion must name")


def run(args: argparse.Namespace, *, node_admin_target: Callable[[], tuple[str, str]]) -> int:
    try:
        match args.client_command:
            case "grant":
                url, token = node_admin_target()
                return trio.run(_grant, url, token, args)
            case "keygen":
                return _keygen(args)
            case "enroll":
                return _enroll(args)
            case "login":
                return _login(args)
            case "verify":
                return _verify(args)
    except ClientUsage as exc:
        print(f"milagro-node client: {exc}", file=sys.stderr)
        return 2
    except ClientRefused as exc:
        print(f"milagro-node client: refused by {exc.url}: {exc.message} ({exc.code})", file=sys.stderr)
        return 1
    except ClientError as exc:
        print(f"milagro-node client: {exc}", file=sys.stderr)
        return 1
    raise AssertionError(args.client_command)


async def _grant(url: str, token: str, args: argparse.Namespace) -> int:
    try:
        async with connect(url, token=token) as api:
            extra = {} if args.device_key is None else {"device_key": args.device_key}
            answer = await api.call("mpin.grant", id=args.id, ttl=args.ttl, **extra)
    except ApiCallError as exc:
        raise ClientError(f"the node at {url} refused: {exc.message}") from None
    except ApiUnavailable as exc:
        raise ClientError(f"{exc}; is the node running?") from None
    write_private(args.out, base64.b64decode(answer["grant"]))
    kind = "DVS grant" if answer.get("device_key") else "grant"
    print(f"{kind} for {args.id!r} by {answer['issuer']} written to {args.out} (expires "
          f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime(answer['expires']))})")
    return 0


def _keygen(args: argparse.Namespace) -> int:
    path = args.token or default_token_path(args.id)
    if path.exists() and not args.force:
        raise ClientUsage(f"{path} exists already (--force replaces it, and the token in it is lost)")
    try:
        device = new_device(args.id)
    except mpin_wire.WireError as exc:
        raise ClientUsage(f"bad user ID: {exc.message}") from None
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    device.save(path)
    print(f"device key for {args.id!r} kept in {path}; give your admin this device key for the grant:\n"
          f"{base64.b64encode(device_key(device)).decode()}")
    return 0


def _enroll(args: argparse.Namespace) -> int:
    try:
        grant = _read_maybe_b64(args.grant)
    except OSError as exc:
        raise ClientUsage(f"cannot read the grant {args.grant}: {exc.strerror}") from None
    path = args.token or default_token_path(args.id)
    device = None
    if grant_device_key(grant) is not None:
        if not path.exists():
            raise ClientUsage(f"the grant names a device key, and {path} holds none: enrol on the device where "
                              "`client keygen` made it (or give --token)")
        device = TokenFile.load(path)
        if device.token is not None:
            raise ClientUsage(f"{path} holds an enrolled token already")
    pin = _pin(args, confirm=True)
    token = trio.run(enroll, args.id, grant, args.dta, pin, device)
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    token.save(path)
    kind = " with its device key (DVS)" if token.dvs_z is not None else ""
    print(f"enrolled {args.id!r}{kind} with {len(token.dtas)} D-TA(s); token written to {path}")
    return 0


def _login(args: argparse.Namespace) -> int:
    token = TokenFile.load(args.token or default_token_path(args.id))
    if token.user_id != args.id:
        raise ClientUsage(f"the token file is for {token.user_id!r}, not {args.id!r}")
    pin = _pin(args, confirm=False)
    result = trio.run(lambda: login(token, args.mfa, pin, one_pass=args.one_pass))
    if args.out:
        write_private(args.out, result.assertion)
        where = f"assertion written to {args.out}"
    else:
        where = f"assertion: {base64.b64encode(result.assertion).decode()}"
    print(f"login accepted by {result.mfa}; valid until "
          f"{time.strftime('%H:%M:%S UTC', time.gmtime(result.expires))}\n{where}")
    return 0


def _verify(args: argparse.Namespace) -> int:
    try:
        assertion = _read_maybe_b64(args.assertion)
        _, state = import_log(args.log.read_bytes())
    except OSError as exc:
        raise ClientUsage(f"cannot read {exc.filename}: {exc.strerror}") from None
    except IdentityError as exc:
        raise ClientError(f"{args.log} is not a valid identity log: {exc.message} ({exc.code})") from None
    try:
        statement = mpin_wire.verify_statement(assertion, kind=mpin_wire.ASSERTION, sign_key=state.sign_key,
                                               now=int(time.time()))
    except mpin_wire.WireError as exc:
        raise ClientError(f"the assertion does not verify: {exc.message} ({exc.code})") from None
    if statement.issuer != state.identity:
        raise ClientError(f"the assertion names issuer {statement.issuer}, the log is {state.identity}")
    if args.id is not None and statement.subject != args.id:
        raise ClientError(f"the assertion is for {statement.subject!r}, not {args.id!r}")
    print(json.dumps({"subject": statement.subject, "issuer": statement.issuer, "created": statement.created,
                      "expires": statement.expires, **statement.extra}))
    return 0


def _read_maybe_b64(path: Path) -> bytes:
    data = path.read_bytes()
    try:
        return base64.b64decode(data.strip(), validate=True)
    except ValueError:
        return data


def _pin(args: argparse.Namespace, *, confirm: bool) -> int:
    if args.pin_file is not None:
        try:
            text = args.pin_file.read_text().strip()
        except OSError as exc:
            raise ClientUsage(f"cannot read the PIN file {args.pin_file}: {exc.strerror}") from None
    else:
        text = getpass.getpass("PIN: ")
        if confirm and getpass.getpass("PIN again: ") != text:
            raise ClientUsage("the two PINs differ")
    try:
        return mpin.pin_from_digits(text)
    except mpin.MpinError as exc:
        raise ClientUsage(f"bad PIN: {exc}") from None
