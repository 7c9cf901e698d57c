"""What the authenticator's worker processes run: the pairing check and the typo search.

Part of the authenticator actor; `pairing_pool` sends these functions to trio_parallel
worker processes, because pyblst holds the GIL for every call (about 0.85 ms for a login
check with a time permit) and the trio loop must not stall. This module imports only the
M-Pin core, so a worker starts quickly and stays small.

Everything crosses the process boundary as bytes and ints (compressed points, scalars):
no pyblst object is pickled. The combined server secret SS arrives as its 96 bytes with each
job; each worker decodes it once and keeps the point in `_SERVER_SECRETS`, keyed by those
bytes, so a login costs no G2 decoding (a new SS after a D-TA re-keys simply adds an entry).
A DVS login's device key Pa comes the same way, and its points are kept in `_DEVICE_KEYS`.
"""

from __future__ import annotations

import os
import time

from milagro_node.adapters.pairing import G2
from milagro_node.core import mpin

__all__ = ["CHECK_NICENESS", "TYPO_DIGITS", "TYPO_NICENESS", "check_proof", "check_proofs", "lower_priority",
           "proof_is_typo", "warm"]

#: The PIN length the typo search assumes (the server never learns a user's PIN length):
#: 4 digits → 120 candidates, at most ~0.1 s of one worker. A longer PIN's slip in its last
#: four digits is still found.
TYPO_DIGITS = 4

_SERVER_SECRETS: dict[bytes, G2] = {}
_DEVICE_KEYS: dict[bytes, G2] = {}


def _cached_g2(cache: dict[bytes, G2], encoded: bytes, what: str, limit: int) -> G2:
    point = cache.get(encoded)
    if point is None:
        if len(cache) >= limit:
            cache.clear()
        point = cache[encoded] = mpin.decode_g2(encoded, what)
    return point


def _server_secret(ss: bytes) -> G2:
    return _cached_g2(_SERVER_SECRETS, ss, "server secret", 4)


def _device_key(pa: bytes | None) -> G2 | None:
    return None if pa is None else _cached_g2(_DEVICE_KEYS, pa, "device key", 1024)


def _pass1(identity: bytes, u: bytes, ut: bytes | None) -> mpin.Pass1:
    return mpin.Pass1(identity, mpin.decode_g1(u, "U"), None if ut is None else mpin.decode_g1(ut, "UT"))


def check_proof(ss: bytes, identity: bytes, u: bytes, ut: bytes | None, y: int, v: bytes,
                day: int | None, pa: bytes | None = None) -> tuple[str, str] | None:
    """The login's pairing check (`pa`: a DVS login's device key). None: accepted; else
    (error code, message) — ``mpin-bad-proof`` for a wrong PIN, token or permit,
    ``mpin-bad-point`` for a bad V (or Pa)."""
    try:
        ok = mpin.verify_pass2(_server_secret(ss), _pass1(identity, u, ut), y, mpin.decode_g1(v, "V"), day=day,
                               pa=_device_key(pa))
    except mpin.MpinError as exc:
        return str(exc.code), exc.message
    return None if ok else (str(mpin.MpinErrorCode.BAD_PROOF), "the proof does not verify")


def check_proofs(checks: list[tuple[bytes, bytes, bytes, bytes | None, int, bytes, int | None, bytes | None]]
                 ) -> list[tuple[str, str] | None]:
    """`check_proof` of each ``(ss, identity, u, ut, y, v, day, pa)``: the pool's batches."""
    return [check_proof(*check) for check in checks]


def proof_is_typo(ss: bytes, identity: bytes, u: bytes, ut: bytes | None, y: int, v: bytes,
                  day: int | None, pa: bytes | None = None, digits: int = TYPO_DIGITS) -> bool:
    """After a failed check: whether a one-digit slip of the PIN explains it (`mpin.find_typo`)."""
    try:
        pass1 = _pass1(identity, u, ut)
        return mpin.find_typo(_server_secret(ss), pass1, y, mpin.decode_g1(v, "V"), digits=digits,
                              day=day, pa=_device_key(pa)) is not None
    except mpin.MpinError:
        return False


def warm(ss: bytes | None = None) -> int:
    """Start-up job: imports are done by now; decode SS if known. Returns the worker's pid.
    Sleeps a moment so that warm jobs run at once land on distinct workers."""
    if ss is not None:
        _server_secret(ss)
    time.sleep(0.02)
    return os.getpid()


#: How far below the node's own priority the workers run. Checks: below the trio loop, so
#: the loop's short steps of every login preempt a check when they wake instead of waiting
#: out its time slice on two cores. Typo searches: below the checks as well.
CHECK_NICENESS = 5
TYPO_NICENESS = 10


def lower_priority(increment: int) -> None:
    """Worker init: run `increment` nice levels below the node."""
    try:
        os.nice(increment)
    except OSError:
        pass
