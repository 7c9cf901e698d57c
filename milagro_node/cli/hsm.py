"""``milagro-node hsm check``: does the configured PKCS#11 module do what the node needs?

Opens the configured token with the configured PIN, lists the mechanisms the
node requires (AES key generation and AES-GCM: the KEK and every wrapped
secret) and those it uses when present (Ed25519, ECDSA, ECDH), then runs each
operation once with temporary keys labelled ``milagro-check-<random>`` and
verifies the results with `cryptography`. The adapter makes token objects, so
every key created here is destroyed in a ``finally`` block (and the cleanup
is itself a required check). Nothing else in the token is read or changed.

Exit status: 0 every required check passed (optional ones may fail: the node
then keeps those keys outside the HSM, wrapped), 1 a required check failed,
2 the configuration is invalid (raised as ConfigError to the caller).
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable
from typing import Any

import attrs
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519
from cryptography.hazmat.primitives.asymmetric.utils import Prehashed, encode_dss_signature

from actors.hsm_worker.session import OPTIONAL_MECHANISMS, REQUIRED_MECHANISMS, HsmError, Pkcs11Session
from milagro_node.runtime.config import NodeConfig
from milagro_node.runtime.hsm_setup import hsm_target, read_pin
from milagro_node.secret_memory import SecretBytes

SECP256K1_ORDER = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141
SECP256K1_SIGNATURES = 8  # SoftHSM returns high-S about half the time: check normalisation on several


@attrs.frozen
class Check:
    name: str
    required: bool
    ok: bool | None  # None: skipped
    detail: str = ""


class CheckFailed(Exception):
    """A check's own failure (not an HsmError): its message is the detail."""


def run_check(config: NodeConfig, out: Callable[[str], None] = print) -> int:
    """Run every check against the configured token, print the report, return the exit status."""
    section = config.hsm
    out(f"module        {section.module}")
    token = section.token_label or "-"
    out(f"token         {token}" + (f" (serial {section.token_serial})" if section.token_serial else ""))
    checks: list[Check] = []
    try:
        target = hsm_target(config)
    except HsmError as exc:
        checks.append(Check("configuration (token, PIN)", True, False, f"{exc.code}: {exc.message}"))
        return _report(checks, out)
    pin_where = _pin_source(config)
    out(f"pin           from {pin_where}")
    try:
        session = Pkcs11Session.open(target)
    except HsmError as exc:
        checks.append(Check("open session and log in", True, False, f"{exc.code}: {exc.message}"))
        return _report(checks, out)
    finally:
        target.pin.close()
    checks.append(Check("open session and log in", True, True))
    try:
        try:
            info = session.info()
        except HsmError as exc:
            checks.append(Check("token information and mechanisms", True, False, f"{exc.code}: {exc.message}"))
            return _report(checks, out)
        out(f"serial        {info['serial']}")
        out(f"manufacturer  {info['manufacturer']}")
        out(f"model         {info['model']}")
        for required, names, missing in ((True, REQUIRED_MECHANISMS, info["missing_required"]),
                                         (False, OPTIONAL_MECHANISMS, info["missing_optional"])):
            for name in names:
                checks.append(Check(f"mechanism {name}", required, name not in missing,
                                    "missing" if name in missing else "present"))
        checks += _key_operations(session)
    finally:
        session.close()
    return _report(checks, out)


def _pin_source(config: NodeConfig) -> str:
    try:
        pin, where = read_pin(config)
    except HsmError:
        return "?"  # changed since hsm_target read it; the login below tells
    pin.close()
    return where


def _key_operations(session: Pkcs11Session) -> list[Check]:
    suffix = os.urandom(6).hex()
    created: list[str] = []
    checks: list[Check] = []

    def attempt(name: str, required: bool, fn: Callable[[], str | None]) -> bool:
        try:
            detail = fn() or ""
        except HsmError as exc:
            checks.append(Check(name, required, False, f"{exc.code}: {exc.message}"))
            return False
        except (CheckFailed, InvalidSignature, ValueError) as exc:
            checks.append(Check(name, required, False, str(exc) or type(exc).__name__))
            return False
        checks.append(Check(name, required, True, detail))
        return True

    def generate(kind: str) -> tuple[str, bytes | None]:
        label = f"milagro-check-{suffix}-{len(created) + 1}-{kind}"
        created.append(label)  # before the call: a half-made key pair is destroyed too
        return label, session.generate_key(label, kind)

    try:
        attempt("random (64 bytes)", True, lambda: _random(session))

        kek: list[str] = []
        if attempt("aes-256 key generate", True, lambda: kek.append(generate("aes-256")[0])):
            attempt("aes-gcm wrap/unwrap round trip", True, lambda: _wrap_round_trip(session, kek[0]))
            attempt("aes-gcm rejects other associated data", True, lambda: _wrap_binds_aad(session, kek[0]))
        else:
            checks.append(Check("aes-gcm wrap/unwrap round trip", True, None, "no key"))

        attempt("ed25519 keypair + sign, verified", False, lambda: _ed25519(session, generate))
        attempt("secp256k1 keypair + sign (low-S), verified", False, lambda: _secp256k1(session, generate))
        attempt("secp256k1 ECDH derive, matches", False, lambda: _ecdh(session, generate))
    finally:
        def cleanup() -> str:
            for label in created:
                session.destroy_key(label)
            left = [label for label in created if session.has_key(label)]
            if left:
                raise CheckFailed(f"still in the token: {', '.join(left)}")
            return f"{len(created)} temporary key(s) destroyed"

        attempt("cleanup of temporary keys", True, cleanup)
    return checks


def _random(session: Pkcs11Session) -> None:
    with session.random(64) as noise:
        if len(noise) != 64:
            raise CheckFailed(f"asked for 64 bytes, got {len(noise)}")


def _wrap_round_trip(session: Pkcs11Session, kek: str) -> str:
    aad = b"milagro-check;purpose=wrap"
    with SecretBytes.random(37) as secret:  # 37: not a multiple of the AES block (the AES-KW-PAD pitfall)
        wrapped = session.wrap(kek, secret, aad)
        with secret.view() as plain:
            if bytes(plain) in wrapped:
                raise CheckFailed("the wrapped form contains the secret")
        with session.unwrap(kek, wrapped, aad) as back:
            if back != secret:
                raise CheckFailed("unwrap returned other bytes than were wrapped")
    return f"{len(wrapped)} bytes wrapped"


def _wrap_binds_aad(session: Pkcs11Session, kek: str) -> None:
    with SecretBytes.random(32) as secret:
        wrapped = session.wrap(kek, secret, b"milagro-check;purpose=a")
    try:
        session.unwrap(kek, wrapped, b"milagro-check;purpose=b").close()
    except HsmError as exc:
        if exc.code == "hsm-unwrap-failed":
            return
        raise
    raise CheckFailed("unwrapped under the wrong associated data")


def _ed25519(session: Pkcs11Session, generate: Callable[[str], tuple[str, Any]]) -> str:
    label, public = generate("ed25519")
    message = b"milagro-node hsm check"
    signature = session.sign(label, message)
    ed25519.Ed25519PublicKey.from_public_bytes(public).verify(signature, message)
    return "signature verified with cryptography"


def _secp256k1(session: Pkcs11Session, generate: Callable[[str], tuple[str, Any]]) -> str:
    label, public = generate("secp256k1")
    key = ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256K1(), public)
    for i in range(SECP256K1_SIGNATURES):
        digest = hashlib.sha256(b"milagro-node hsm check %d" % i).digest()
        signature = session.sign(label, digest)
        r, s = int.from_bytes(signature[:32], "big"), int.from_bytes(signature[32:], "big")
        if s > SECP256K1_ORDER // 2:
            raise CheckFailed("signature is not low-S")
        key.verify(encode_dss_signature(r, s), digest, ec.ECDSA(Prehashed(hashes.SHA256())))
    return f"{SECP256K1_SIGNATURES} signatures verified with cryptography"


def _ecdh(session: Pkcs11Session, generate: Callable[[str], tuple[str, Any]]) -> str:
    label, public = generate("secp256k1")
    peer = ec.generate_private_key(ec.SECP256K1())
    peer_public = peer.public_key().public_bytes(serialization.Encoding.X962,
                                                 serialization.PublicFormat.UncompressedPoint)
    expected = peer.exchange(ec.ECDH(), ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256K1(), public))
    with session.derive(label, peer_public) as shared:
        if shared != expected:
            raise CheckFailed("the shared secret differs from cryptography's")
    return "shared secret matches cryptography's"


def _report(checks: list[Check], out: Callable[[str], None]) -> int:
    rows = [("CHECK", "REQUIRED", "RESULT", "DETAIL")]
    for check in checks:
        result = "SKIP" if check.ok is None else "PASS" if check.ok else "FAIL"
        rows.append((check.name, "yes" if check.required else "no", result, check.detail or "-"))
    widths = [max(len(row[i]) for row in rows) for i in range(3)]
    out("")
    for row in rows:
        out("  ".join(cell.ljust(width) for cell, width in zip(row, widths)) + "  " + row[3])
    failed_required = [c for c in checks if c.required and not c.ok]
    failed_optional = [c for c in checks if not c.required and c.ok is False]
    out("")
    if failed_required:
        out(f"hsm check: FAIL ({len(failed_required)} required check(s) failed)")
        return 1
    note = f"; {len(failed_optional)} optional check(s) failed" if failed_optional else ""
    out(f"hsm check: PASS (every required check passed{note})")
    return 0
