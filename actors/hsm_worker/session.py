"""The PKCS#11 adapter: one logged-in session on one token, and what we do with it.

Synchronous and not thread-safe by design: the hsm-worker actor calls it from
its one dedicated thread only (two threads in SoftHSM at once crashed the
process). `milagro-node init` and `milagro-node hsm check` use it directly in
their own short-lived processes.

Keys live in the token, found by label (also their CKA_ID). Secrets outside
the token are *wrapped*: AES-256-GCM under a token-resident key-encryption
key with associated data chosen by the caller (not AES-KW-PAD, which corrupts
lengths that are not a multiple of 8 in SoftHSM). ECDSA signatures come back
as r||s with s normalised to the low half (SoftHSM returns high-S about half
the time). Every failure is an `HsmError` with a stable code; its message
names the token, the key label or the module, never a secret or the PIN.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import attrs
import pkcs11
from asn1crypto.core import OctetString
from pkcs11 import KDF, Attribute, KeyType, Mechanism, ObjectClass
from pkcs11.util.ec import encode_named_curve_parameters

from milagro_node.secret_memory import SecretBytes

GCM_NONCE = 12
GCM_TAG_BITS = 128

# kind -> (curve OID or None for AES, group order for low-S normalisation or None)
KEY_KINDS: dict[str, tuple[str | None, int | None]] = {
    "aes-256": (None, None),
    "ed25519": ("1.3.101.112", None),
    "secp256k1": ("1.3.132.0.10", 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141),
    "p256": ("1.2.840.10045.3.1.7", 0xFFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551),
}
REQUIRED_MECHANISMS = ("AES_KEY_GEN", "AES_GCM")
OPTIONAL_MECHANISMS = ("EC_EDWARDS_KEY_PAIR_GEN", "EDDSA", "EC_KEY_PAIR_GEN", "ECDSA", "ECDH1_DERIVE")

# Errors that mean the token or the session is gone: reconnect before the next call.
_LOST = (
    pkcs11.DeviceRemoved, pkcs11.TokenNotPresent, pkcs11.TokenNotRecognised, pkcs11.SessionHandleInvalid,
    pkcs11.SessionClosed, pkcs11.DeviceError, pkcs11.ObjectHandleInvalid, pkcs11.KeyHandleInvalid,
    pkcs11.DeviceMemory, pkcs11.UserNotLoggedIn,
)
_PIN = (pkcs11.PinIncorrect, pkcs11.PinInvalid, pkcs11.PinLenRange, pkcs11.PinExpired)


class HsmError(Exception):
    """`code`: hsm-unavailable, hsm-pin, hsm-pin-locked, hsm-no-key, hsm-key-exists,
    hsm-unwrap-failed, hsm-unsupported, hsm-refused, hsm-bad-request (see docs/hsm.md)."""

    def __init__(self, code: str, message: str, *, lost: bool = False) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message
        self.lost = lost  # the session must be reopened


@attrs.frozen(repr=False)
class HsmTarget:
    """Where the token is and how to log in. The PIN never appears in a repr."""

    module: Path
    token_label: str | None
    token_serial: str | None
    pin: SecretBytes
    env: tuple[tuple[str, str], ...] = ()  # e.g. SOFTHSM2_CONF for a data-dir token

    def describe(self) -> str:
        token = self.token_label or f"serial {self.token_serial}"
        return f"token {token!r} in {self.module}"

    def __repr__(self) -> str:
        return f"HsmTarget({self.describe()})"


_libraries: dict[str, tuple[Any, tuple[tuple[str, str], ...]]] = {}


def _library(target: HsmTarget, *, rescan: bool = False) -> Any:
    """One loaded module per path per process (C_Initialize may run only once).

    The module reads its environment (SoftHSM: SOFTHSM2_CONF) at C_Initialize,
    so a target with another environment, or a rescan after a token went away,
    re-initialises it; sessions opened before are invalid after that.
    """
    path = str(target.module)
    if not target.module.exists():
        raise HsmError("hsm-unavailable", f"PKCS#11 module {path} does not exist")
    for name, value in target.env:
        os.environ[name] = value
    try:
        if path not in _libraries:
            _libraries[path] = (pkcs11.lib(path), target.env)
        lib, env = _libraries[path]
        if rescan or env != target.env:
            lib.reinitialize()
            _libraries[path] = (lib, target.env)
    except (OSError, pkcs11.PKCS11Error, RuntimeError) as exc:
        raise HsmError("hsm-unavailable", f"cannot load PKCS#11 module {path} ({type(exc).__name__})") from None
    return lib


class Pkcs11Session:
    def __init__(self, target: HsmTarget, token: Any, session: Any) -> None:
        self.target = target
        self._token = token
        self._session = session
        self._keys: dict[tuple[str, Any], Any] = {}

    # -- opening and closing ---------------------------------------------------

    @classmethod
    def open(cls, target: HsmTarget, *, rescan: bool = False) -> Pkcs11Session:
        lib = _library(target, rescan=rescan)  # a rescan forgets a token that went away
        try:
            token = lib.get_token(token_label=target.token_label, token_serial=_serial(target))
        except (pkcs11.NoSuchToken, pkcs11.MultipleTokensReturned, pkcs11.PKCS11Error) as exc:
            raise HsmError("hsm-unavailable", f"no usable {target.describe()} ({type(exc).__name__})") from None
        with target.pin.view() as pin:
            try:
                session = token.open(user_pin=bytes(pin).decode(), rw=True)
            except pkcs11.PinLocked:
                raise HsmError("hsm-pin-locked", f"the PIN of {target.describe()} is locked") from None
            except _PIN:
                raise HsmError("hsm-pin", f"{target.describe()} refused the PIN") from None
            except pkcs11.UserAlreadyLoggedIn:
                session = token.open(rw=True)  # another session of this process is logged in
            except pkcs11.PKCS11Error as exc:
                raise HsmError("hsm-unavailable", f"cannot open {target.describe()} ({type(exc).__name__})") from None
        return cls(target, token, session)

    def close(self) -> None:
        self._keys.clear()
        try:
            self._session.close()
        except pkcs11.PKCS11Error:
            pass  # the token may be gone already

    # -- information ---------------------------------------------------------------

    def info(self) -> dict[str, Any]:
        mechanisms = {m.name for m in self._token.slot.get_mechanisms()}
        return {
            "token": self._token.label,
            "serial": _text(self._token.serial),
            "manufacturer": _text(self._token.manufacturer_id),
            "model": _text(self._token.model),
            "missing_required": [m for m in REQUIRED_MECHANISMS if m not in mechanisms],
            "missing_optional": [m for m in OPTIONAL_MECHANISMS if m not in mechanisms],
        }

    def probe(self) -> None:
        """A cheap round trip to the token (raises HsmError if it is gone)."""
        self._call(self._session.generate_random, 64)
        self._call(lambda: self._token.slot.get_token())

    # -- keys ----------------------------------------------------------------------

    def _objects(self, label: str) -> list[Any]:
        return self._call(lambda: list(self._session.get_objects({Attribute.LABEL: label})))

    def has_key(self, label: str) -> bool:
        if self._objects(label):
            return True
        self.probe()  # a vanished token also finds nothing
        return False

    def generate_key(self, label: str, kind: str, *, extractable: bool = False) -> bytes | None:
        """Create a token key; return its public key for key pairs (raw bytes), else None."""
        if kind not in KEY_KINDS:
            raise HsmError("hsm-bad-request", f"unknown key kind {kind!r} (one of {', '.join(KEY_KINDS)})")
        if self._objects(label):
            raise HsmError("hsm-key-exists", f"{self.target.describe()} already has a key labelled {label!r}")
        curve, _ = KEY_KINDS[kind]
        private = {Attribute.SENSITIVE: True, Attribute.EXTRACTABLE: extractable, Attribute.TOKEN: True}
        key_id = label.encode()
        if curve is None:
            self._call(lambda: self._session.generate_key(
                KeyType.AES, 256, id=key_id, label=label, store=True,
                capabilities=pkcs11.MechanismFlag.ENCRYPT | pkcs11.MechanismFlag.DECRYPT, template=private))
            return None
        params = {Attribute.EC_PARAMS: encode_named_curve_parameters(curve), Attribute.TOKEN: True}
        edwards = kind == "ed25519"
        public, _ = self._call(lambda: self._session.generate_keypair(
            KeyType.EC_EDWARDS if edwards else KeyType.EC, id=key_id, label=label, store=True,
            mechanism=Mechanism.EC_EDWARDS_KEY_PAIR_GEN if edwards else Mechanism.EC_KEY_PAIR_GEN,
            public_template=params, private_template=private))
        return _point(public)

    def destroy_key(self, label: str) -> None:
        for obj in self._objects(label):
            self._call(obj.destroy)
        self._keys = {k: v for k, v in self._keys.items() if k[0] != label}

    def public_key(self, label: str) -> bytes:
        return _point(self._find(label, ObjectClass.PUBLIC_KEY))

    # -- handles, for the batch fast path (batch.py) ------------------------------------

    @property
    def handle(self) -> int:
        """The PKCS#11 session handle."""
        return self._session.handle

    def known_fast_key(self, label: str, purpose: str) -> int | None:
        """`fast_key`, if it was looked up before (no PKCS#11 call: any thread may ask)."""
        return self._keys.get((label, purpose))

    def fast_key(self, label: str, purpose: str) -> int | None:
        """The object handle of key `label` for a fast-path `purpose` ("wrap": an AES
        key; "sign": an Ed25519 private key), or None (no such key, another kind): the
        ordinary method then serves the request and gives the error."""
        cached = self._keys.get((label, purpose))  # cleared with the other cached keys
        if cached is not None:
            return cached
        object_class = ObjectClass.SECRET_KEY if purpose == "wrap" else ObjectClass.PRIVATE_KEY
        try:
            key = self._find(label, object_class)
            if purpose == "sign" and key.key_type != KeyType.EC_EDWARDS:
                return None  # ECDSA: its signatures are normalised to low-S by `sign`
        except (HsmError, pkcs11.PKCS11Error):
            return None
        self._keys[(label, purpose)] = key.handle
        return key.handle

    # -- operations --------------------------------------------------------------------

    def random(self, size: int) -> SecretBytes:
        if not 0 < size <= 4096:
            raise HsmError("hsm-bad-request", "random size must be 1..4096 bytes")
        return _secret(self._call(self._session.generate_random, size * 8))

    def wrap(self, kek: str, secret: SecretBytes, aad: bytes) -> bytes:
        """AES-GCM under token key `kek`: returns nonce || ciphertext || tag."""
        key = self._find(kek, ObjectClass.SECRET_KEY)
        nonce = os.urandom(GCM_NONCE)
        params = pkcs11.GCMParams(nonce, aad, GCM_TAG_BITS)
        sealed = self._call(lambda: key.encrypt(secret.reveal(), mechanism=Mechanism.AES_GCM, mechanism_param=params))
        return nonce + sealed

    def unwrap(self, kek: str, wrapped: bytes, aad: bytes) -> SecretBytes:
        key = self._find(kek, ObjectClass.SECRET_KEY)
        if len(wrapped) < GCM_NONCE + GCM_TAG_BITS // 8:
            raise HsmError("hsm-unwrap-failed", f"wrapped secret under {kek!r} is truncated")
        params = pkcs11.GCMParams(wrapped[:GCM_NONCE], aad, GCM_TAG_BITS)
        try:
            plain = key.decrypt(wrapped[GCM_NONCE:], mechanism=Mechanism.AES_GCM, mechanism_param=params)
        except (pkcs11.EncryptedDataInvalid, pkcs11.EncryptedDataLenRange, pkcs11.GeneralError,
                pkcs11.FunctionFailed):
            # SoftHSM reports a failed GCM tag check as CKR_GENERAL_ERROR. Tell a lost token apart.
            self.probe()
            raise HsmError("hsm-unwrap-failed",
                           f"wrapped secret does not authenticate under {kek!r} with this associated data") from None
        except _LOST as exc:
            raise HsmError("hsm-unavailable", f"{self.target.describe()} went away ({type(exc).__name__})",
                           lost=True) from None
        return _secret(plain)

    def sign(self, label: str, data: bytes) -> bytes:
        """Ed25519 over `data`, or ECDSA over the 32-byte digest `data` (r||s, low-S)."""
        key = self._find(label, ObjectClass.PRIVATE_KEY)
        if key.key_type == KeyType.EC_EDWARDS:
            return self._call(lambda: key.sign(data, mechanism=Mechanism.EDDSA))
        if len(data) != 32:
            raise HsmError("hsm-bad-request", "ECDSA signs a 32-byte digest")
        signature = self._call(lambda: key.sign(data, mechanism=Mechanism.ECDSA))
        return _low_s(signature, self._order(key))

    def derive(self, label: str, peer_public: bytes) -> SecretBytes:
        """ECDH: the x-coordinate shared with `peer_public` (an uncompressed point)."""
        key = self._find(label, ObjectClass.PRIVATE_KEY)
        template = {Attribute.SENSITIVE: False, Attribute.EXTRACTABLE: True, Attribute.TOKEN: False}
        try:
            shared = key.derive_key(KeyType.GENERIC_SECRET, 256, store=False, template=template,
                                    mechanism=Mechanism.ECDH1_DERIVE, mechanism_param=(KDF.NULL, None, peer_public))
        except (pkcs11.ArgumentsBad, pkcs11.MechanismParamInvalid, pkcs11.DomainParamsInvalid,
                pkcs11.GeneralError, pkcs11.FunctionFailed):
            raise HsmError("hsm-bad-request", f"{label!r} cannot derive with that peer public key") from None
        try:
            return _secret(shared[Attribute.VALUE])
        finally:
            self._call(shared.destroy)

    # -- internals ---------------------------------------------------------------------

    def _order(self, key: Any) -> int:
        params = key[Attribute.EC_PARAMS]
        for curve, order in KEY_KINDS.values():
            if curve and order and params == encode_named_curve_parameters(curve):
                return order
        raise HsmError("hsm-unsupported", "ECDSA key on a curve this node does not use")

    def _find(self, label: str, object_class: Any) -> Any:
        cache_key = (label, object_class)
        if cache_key not in self._keys:
            try:
                self._keys[cache_key] = self._call(lambda: self._session.get_key(object_class=object_class, label=label))
            except HsmError as exc:
                if exc.code != "hsm-no-key":
                    raise
                self.probe()  # a vanished token also looks like "no such key"
                raise
        return self._keys[cache_key]

    def _call(self, fn: Any, *args: Any) -> Any:
        """Run one PKCS#11 call and translate its errors."""
        try:
            return fn(*args)
        except pkcs11.NoSuchKey:
            raise HsmError("hsm-no-key", f"{self.target.describe()} has no such key") from None
        except _LOST as exc:
            raise HsmError("hsm-unavailable", f"{self.target.describe()} went away ({type(exc).__name__})",
                           lost=True) from None
        except (pkcs11.MechanismInvalid, pkcs11.FunctionNotSupported, pkcs11.KeyTypeInconsistent) as exc:
            raise HsmError("hsm-unsupported", f"{self.target.describe()} cannot do that ({type(exc).__name__})") from None
        except pkcs11.GeneralError:
            raise HsmError("hsm-unavailable", f"{self.target.describe()} failed (CKR_GENERAL_ERROR)", lost=True) from None
        except pkcs11.PKCS11Error as exc:
            # Anything else (a template or curve the token refuses...) fails this request only.
            raise HsmError("hsm-refused", f"{self.target.describe()} refused the operation ({type(exc).__name__})") from None


def _serial(target: HsmTarget) -> bytes | None:
    return target.token_serial.encode() if target.token_serial else None


def _text(value: Any) -> str:
    return value.decode(errors="replace").strip() if isinstance(value, bytes) else str(value).strip()


def _point(public_key: Any) -> bytes:
    """EC_POINT is a DER OCTET STRING around the raw point (SoftHSM and most HSMs)."""
    value = public_key[Attribute.EC_POINT]
    return OctetString.load(value).native


def _secret(plain: bytes) -> SecretBytes:
    # The library hands us an immutable bytes object we cannot wipe; copy it into
    # locked memory at once and drop our reference.
    return SecretBytes.copy_from(plain)


def _low_s(signature: bytes, order: int) -> bytes:
    half = len(signature) // 2
    r, s = signature[:half], int.from_bytes(signature[half:], "big")
    if s > order // 2:
        s = order - s
    return r + s.to_bytes(half, "big")
