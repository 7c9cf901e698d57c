"""M-Pin on BLS12-381 — the sans-IO protocol core for the ``dta`` and ``mfa`` roles.

Layer 1 (protocol cores): no I/O, no clock (the caller passes ``now``, Unix seconds), no
trio. Group operations go through the pairing adapter (`milagro_node.adapters.pairing`);
all protocol logic — what is hashed, what is summed, what is checked — lives here. The
share-dealer actor (D-TA) calls the share functions, the authenticator actor runs
`LoginSession`/`verify_one_pass`, the client library runs `ClientAttempt`. The protocol is
restated in ../shared/MPIN.md; wire encodings are ours (RFC 9380 map to G1, BLS12-381), so
values are not byte-compatible with Apache Milagro's C library, by design.

Theory of operation
-------------------

Notation: Q the G2 generator, r the group order, ``A = H(ID)`` the identity hashed to G1
(`identity_point`), ``H_T(d) = H(d ‖ SHA-256(ID))`` the identity's point for day ``d``
(`day_point`, its own DST), ``d = ⌊t / 86400⌋``.

Shares. D-TA *i* holds ``s_i`` (`new_master_share`); ``s = Σ s_i`` exists nowhere. It issues
``s_i·A`` to the client (`client_secret_share`), ``s_i·Q`` to each MFA server
(`server_secret_share`) and ``s_i·H_T(d)`` per day (`time_permit_share`). The client sums
its n shares into ``CS = s·A`` and its permits into ``TP_d = s·H_T(d)``; the server sums
into ``SS = s·Q`` (`combine`). Missing any one share leaves a random-looking point: a token
built from n−1 shares, or from one, fails verification like a wrong PIN.

Token. ``token = CS − PIN·A`` (`extract_pin`); the device stores only the token. PINs are
``int`` in [0, 2·10**8); `pin_from_digits` maps a 4–8 digit string to one injectively (so
"01234" and "1234" differ).

Two-pass login::

    client (token, PIN[, TP_d])                        server (SS)
    SEC = token + PIN·A [+ TP_d]
    x random;  U = x·A  [UT = x·(A + H_T(d))]
                    ── Pass1(ID, U[, UT, d]) ──▶     session: CREATED
                    ◀── y ──────────────────────     y random;  session: CHALLENGED
    V = −(x·SEC + y·SEC)
                    ── V ───────────────────────▶    P = y·A + U   [y·(A + H_T(d)) + UT]
                                                     accept iff e(V, Q)·e(P, SS) = 1

With the right PIN, SEC = s·A (or s·(A + H_T(d))), V = −(x+y)·SEC, P = (x+y)·A (or the
permit form), and the two pairings cancel. A PIN off by δ leaves e(A, Q)^{−(x+y)δ} ≠ 1.
With permits the server uses UT and the day it knows (from ``now``), never a day chosen
by the client alone: a permit for another day hashes to another H_T(d) and fails.

One-pass: ``y = H(t ‖ ID ‖ U ‖ UT ‖ message) mod r`` (`one_pass_challenge`); the client sends
U, V and t at once; the server checks ``|now − t|`` against a skew bound and refuses a
(ID, U) seen before (`ReplayCache`, fed ``now`` by the caller).

Key-escrow-less (DVS) variant. The device picks ``z`` and publishes ``Pa = z⁻¹·Q``
(`DvsKey`); its identity becomes ``ID ‖ Pa`` (`dvs_identity`) and ``token = z·CS − PIN·A``,
so SEC = z·s·A and the server checks ``e(V, Pa)·e(P, SS) = 1``. All D-TAs together know only
s·A, never z·s·A. With permits the device also multiplies TP_d by z. The server must take
``Pa`` from its enrolment record, not from the wire: with a Pa of their own choosing the
D-TAs could log in. `verify_pass2` refuses an identity that does not end in that Pa.

Typo or guess (optional, after a failure). If the PIN entered was off by δ, the check
passes with V replaced by V + δ·(y·A + U); `find_typo` tries the δ that one changed digit
or one swap of neighbours can produce (pyblst has no GT values for MPIN.md's kangaroo
method), so a lockout policy can count near-misses differently.

Server session (single use, expiring)::

    CREATED ──challenge()──▶ CHALLENGED ──finish(V) ok──▶ VERIFIED
       │                        ├── finish(V) bad ─────▶ FAILED   (mpin-bad-proof)
       └── now > deadline ──────┴── now > deadline ────▶ EXPIRED  (mpin-expired)
    any finish() after a terminal state ─▶ mpin-used (the state does not change)

Constant time: secret scalars (s_i, PIN, x, z) reach points only through the adapter's
scalar multiplication (blst); the core never adds secret scalars in Python, which is why V
is ``−(x·SEC + y·SEC)``. Verification works only on public values.

Errors: `MpinError` with a `MpinErrorCode`; messages never carry secrets.

Where things are: `_points` (decoding, H(ID), H_T(d)), `_shares` (D-TA shares, sums, PIN
extraction, the DVS key), `_login` (messages, the client's attempt, the pairing check,
one-pass), `_session` (the two-pass state machine, all of it), `_typo` (telling a typo from
a guess after a failure), `_errors`.
"""

from ._errors import MpinError, MpinErrorCode
from ._login import (
    ClientAttempt,
    OnePassProof,
    Pass1,
    ReplayCache,
    one_pass_challenge,
    one_pass_challenge_of,
    verify_one_pass,
    verify_pass2,
)
from ._points import (
    DAY_SECONDS,
    DST_IDENTITY,
    DST_TIME_PERMIT,
    day_of,
    day_point,
    decode_g1,
    decode_g2,
    dvs_identity,
    identity_point,
)
from ._session import LoginSession, SessionState
from ._shares import (
    DvsKey,
    client_secret_share,
    combine,
    extract_pin,
    new_master_share,
    pin_from_digits,
    server_secret_share,
    time_permit_share,
)
from ._typo import find_typo, typo_deltas

__all__ = [
    "DAY_SECONDS",
    "DST_IDENTITY",
    "DST_TIME_PERMIT",
    "ClientAttempt",
    "DvsKey",
    "LoginSession",
    "MpinError",
    "MpinErrorCode",
    "OnePassProof",
    "Pass1",
    "ReplayCache",
    "SessionState",
    "client_secret_share",
    "combine",
    "day_of",
    "day_point",
    "decode_g1",
    "decode_g2",
    "dvs_identity",
    "extract_pin",
    "find_typo",
    "identity_point",
    "new_master_share",
    "one_pass_challenge",
    "one_pass_challenge_of",
    "pin_from_digits",
    "server_secret_share",
    "time_permit_share",
    "typo_deltas",
    "verify_one_pass",
    "verify_pass2",
]
