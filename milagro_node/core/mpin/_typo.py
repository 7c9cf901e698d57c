"""Telling a typo from a guess: which one-digit slip explains a failed login, if any.

Part of `milagro_node.core.mpin`. Runs only after `verify_pass2` has failed, on public
values only (V, U, y, SS), so constant time does not matter here — cost does: one pairing
check per candidate, 120 candidates for a 4-digit PIN (0.1 to 0.5 s here, by load), 256 for 8
digits. Callers run it off the event loop, and only if their lockout policy wants it.

Why it works. If the user entered PIN + δ, then SEC = s·A + δ·A and V = −(x+y)·SEC, so
``V + δ·(y·A + U) = −(x+y)·s·A`` (U = x·A) and the login's pairing check passes with V
replaced by ``V + δ·(y·A + U)``. That holds with permits too (the permit part of SEC is not
touched by δ) and in DVS (with Pa in place of Q).

How it differs from Milagro. MPIN.md's method recovers any |δ| < 10,000 with Pollard's
kangaroo in GT; pyblst exposes no GT values, so instead we test only the δ a one-digit slip
can produce: a digit changed (δ = ±k·10^j) or two neighbours swapped (δ = ±k·9·10^j),
k = 1..9. A random guess at a 4-digit PIN falls in that set about 1.2% of the time
(120 / 10,000), so "looks like a typo" is evidence, not proof, and a policy should still
count it, just differently.
"""

from __future__ import annotations

import functools

from milagro_node.adapters.pairing import G1, G2, pairing_product_is_one

from ._errors import MpinError, MpinErrorCode
from ._login import Pass1
from ._points import Q, _require_not_identity, day_point, identity_point

__all__ = ["find_typo", "typo_deltas"]


@functools.cache
def typo_deltas(digits: int) -> tuple[int, ...]:
    """Every δ = entered − enrolled that one changed digit or one swap of neighbours yields."""
    if not 4 <= digits <= 8:
        raise MpinError(MpinErrorCode.BAD_INPUT, "a PIN is 4 to 8 digits")
    deltas = set()
    for j in range(digits):
        for k in range(1, 10):
            deltas.update((k * 10**j, -k * 10**j))
            if j + 1 < digits:
                deltas.update((9 * k * 10**j, -9 * k * 10**j))
    return tuple(sorted(deltas, key=lambda d: (abs(d), d)))


def find_typo(
    server_secret: G2,
    pass1: Pass1,
    y: int,
    v: G1,
    *,
    digits: int,
    day: int | None = None,
    pa: G2 | None = None,
) -> int | None:
    """The δ (entered − enrolled PIN) of a one-digit slip that explains this failed proof, or None.

    ``digits`` is the PIN length the identity enrolled with (a policy setting; the server
    never learns the PIN); ``day`` and ``pa`` as for `verify_pass2`.
    """
    _require_not_identity(v, "V")
    _require_not_identity(pass1.u, "U")
    a = identity_point(pass1.identity)
    base = a * y + pass1.u  # (x + y)·A: what δ multiplies
    if day is None:
        p = base
    else:
        if pass1.ut is None:
            raise MpinError(MpinErrorCode.BAD_INPUT, "a time permit is required (no UT)")
        p = (a + day_point(pass1.identity, day)) * y + pass1.ut
    verifier_key = Q if pa is None else pa
    for delta in typo_deltas(digits):
        if pairing_product_is_one(v + base * delta, verifier_key, p, server_secret):
            return delta
    return None
