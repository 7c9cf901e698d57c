"""The MFA node's registered DVS device keys: one Pa per user ID, taken from a checked grant.

Part of the authenticator actor. In a key-escrow-less (DVS) login (`milagro_node.core.mpin`)
the user's M-Pin identity is ID ‖ Pa and the pairing check uses Pa in place of Q. This node
must not take Pa from the D-TAs: all of them together could deal shares for ID ‖ Pa' with
a Pa' of their own. It takes Pa from the user's enrolment grant, which its issuer signed
(`actors.mpin_grants`), at the user's first DVS login here; once that login passes, that Pa
is the only one accepted for the ID, until an admin resets it (``mfa.reset_device``, for a
lost device). From then on neither a new grant nor the D-TAs can change it.

The rules at each login (`DeviceRegistry.device_for`), all before any pairing work:

- no grant, nothing registered: a plain login, or ``mfa-device-required`` when
  ``[mfa] require_device_key`` is set;
- no grant, a Pa registered: ``mfa-device-required``;
- a grant, a Pa registered: the grant's device key must be that Pa (``mfa-device-key``);
  the grant is not checked again (only its Pa is used, and it may have expired since);
- a grant, nothing registered: the grant is checked (issuer, signature, time window,
  subject), and its Pa is registered when the login passes.

None of these refusals counts towards lockout: no PIN was tried. Records are public JSON
(user ID, Pa in hex, the grant's CID, when), keyed like the failure records. A record that
does not read bars its user ID (``mfa-device-key``) until an admin resets it: it must not
turn the ID back into one that any grant can register.
"""

from __future__ import annotations

import hmac
import json
import time
from collections.abc import Iterable

import attrs

from milagro_node.core import mpin_wire

from ..mailbox import ActorError
from ..mpin_grants import GrantChecker
from .lockout import user_key

__all__ = ["NAMESPACE", "Device", "DeviceRegistry"]

NAMESPACE = "mfa-devices"
_UNREADABLE = b""  # stands for a registered key whose record does not read


@attrs.frozen
class Device:
    """The device key a login is checked with."""

    key: bytes  # Pa: 96 bytes, compressed G2
    grant: str | None = None  # the CID of the grant to register it under; None: registered already


class DeviceRegistry:
    def __init__(self, grants: GrantChecker, *, require: bool) -> None:
        self._grants = grants
        self._require = require
        self._keys: dict[str, bytes] = {}

    def __len__(self) -> int:
        return len(self._keys)

    def load(self, items: Iterable[tuple[str, bytes]]) -> list[str]:
        """Take the stored records; return the keys of those that do not read (their IDs
        are barred until ``mfa.reset_device``)."""
        bad = []
        for key, value in items:
            try:
                device_key = bytes.fromhex(json.loads(value)["device_key"])
                if len(device_key) != mpin_wire.DEVICE_KEY_BYTES:
                    raise ValueError
            except (ValueError, KeyError, TypeError):
                bad.append(key)
                device_key = _UNREADABLE
            self._keys[key] = device_key
        return bad

    async def device_for(self, user_id: str, grant: bytes | None, now: float) -> Device | None:
        """The device key to check this login with (None: a plain login); see the rules above.
        Raises `ActorError` or `mpin_wire.WireError`."""
        registered = self._keys.get(user_key(user_id))
        if grant is None:
            if registered is not None:
                raise ActorError("mfa-device-required", "this user ID has a device key registered at this MFA "
                                 "node: log in with the token enrolled under it (its grant names the key)")
            if self._require:
                raise ActorError("mfa-device-required", "this MFA node takes key-escrow-less logins only: enrol "
                                 "with a grant that names a device key")
            return None
        key = mpin_wire.grant_device_key(mpin_wire.parse_statement(grant, kind=mpin_wire.GRANT))
        if key is None:
            raise ActorError("mfa-device-key", "the grant names no device key; a plain token logs in without it")
        if registered is not None:
            _require_same(registered, key)
            return Device(registered)
        statement = await self._grants.check(grant, user_id, int(now))
        return Device(key, statement.cid)

    def register(self, user_id: str, device: Device) -> bytes | None:
        """After a passed login: the record to store for a new device (None: nothing new).
        Refuses a device that lost a race with another one for the same ID."""
        if device.grant is None:
            return None
        key = user_key(user_id)
        registered = self._keys.get(key)
        if registered is not None:
            _require_same(registered, device.key)
            return None
        self._keys[key] = device.key
        return json.dumps({"user_id": user_id, "device_key": device.key.hex(), "grant": device.grant,
                           "at": int(time.time())}, sort_keys=True).encode()

    def forget(self, user_id: str) -> bool:
        """Drop the user's device key (the caller deletes its record); whether there was one."""
        return self._keys.pop(user_key(user_id), None) is not None

    def unregister(self, user_id: str, device: Device) -> None:
        """Undo `register` when its record could not be stored."""
        if self._keys.get(user_key(user_id)) == device.key:
            del self._keys[user_key(user_id)]


def _require_same(registered: bytes, key: bytes) -> None:
    if registered == _UNREADABLE:
        raise ActorError("mfa-device-key", "the device record of this user ID at this MFA node does not read "
                         "(an admin resets it with mfa.reset_device)")
    if not hmac.compare_digest(registered, key):
        raise ActorError("mfa-device-key", "the grant's device key is not the one registered for this user ID at "
                         "this MFA node (an admin resets a lost device with mfa.reset_device)")
