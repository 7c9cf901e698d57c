"""The "authenticator" actor (role ``mfa``): M-Pin logins, checked off the event loop.

Theory of operation
-------------------

Server secret. Logins are checked against SS = s·Q, the sum of one share s_i·Q per D-TA
of the federation (members whose peers.toml roles include ``dta``; a node with no D-TA
member but the ``dta`` role itself is its own only D-TA — `server_secret`). Each share is
kept in the keystore as ``mfa/server-share/<D-TA identity>`` (kind ``mpin-server-secret``,
wrapped under the node KEK). At start, and every 10 s while one is missing, the actor asks
for the missing ones: its own D-TA's from the local "share-dealer" (`ServerShare`), another
D-TA's with an envelope of kind ``dta.server-share-request``; the answer arrives as an
``mfa.server-share`` envelope (it subscribes to ``mfa.*``), is checked (sender in the D-TA
set, a G2 subgroup point) and kept, and is audited (``mfa.server-share``, or
``mfa.server-share-refused`` with why). Until every share is here, logins are refused with
``mfa-not-ready`` ("have k of n"); node.status shows ``ready`` and ``shares=k/n``.

Two-pass login::

    client                          api-gateway / authenticator               worker process
    mfa.pass1 {id, U, UT} ───────▶  ready? ID valid? revoked? locked?
                                    decode U, UT (subgroup checks)
                                    LoginSession (core), day = today, y
                         ◀───────── {session, y, expires}
    mfa.pass2 {session, V} ──────▶  take the session (single use: a second
                                    pass 2 is mpin-used), not expired,
                                    revoked/locked again, attempt gate ─────▶ decode V, U, UT;
                                                                              e(V,Q)·e(P,SS) = 1?
                                    ok: reset failures, sign an assertion ◀── ok / bad proof
                                    (HSM, node identity key), audit
                                    bad: count (persisted before the reply),
                                    typo search (typo worker), audit
                         ◀───────── {assertion, mfa, expires} | mfa-refused / mfa-locked

One-pass (``mfa.one_pass``) is the same checks with y = H(t ‖ ID ‖ U ‖ UT ‖ message): the
time window (``[mfa] one_pass_skew``) and the replay window come before the pairing check,
and a proof is remembered even if it then fails. The replay window lives as long as the
actor: after a restart a proof from just before it could be replayed within its time
window (at most twice the skew), which bounds the risk.

Assertions are `mpin_wire` statements of kind ``mpin.assertion`` about the user ID,
signed with the node's identity key, valid ``assertion_seconds``, with ``method``
("mpin-2pass" | "mpin-1pass") and the session id (two-pass) or ``t`` (one-pass; with
``message_sha256`` when a message was signed). A relying party checks one with
`mpin_wire.verify_statement` and this node's identity log. The assertions that queue while
one HSM signature is made share the next (`actors.statement_signer`: a Merkle batch, each
assertion with its own inclusion proof); node.status counts ``assertion_signatures``.

Lockout (`lockout`): each failed pairing check counts; at ``max_failures`` the user ID is
locked for ``lockout_seconds`` (0: until ``mfa.unlock``); a success resets the count. The
attempt gate keeps a user's attempts in flight within the failures it has left, so
parallel pass 2s cannot buy extra guesses. Revocation (``mfa.revoke``): kv
``mfa-revoked``, checked at both passes. Both tables are loaded at start and kept in
memory (this actor is their only writer), so a login reads nothing from the store.

Key-escrow-less (DVS) logins (`devices`): a login that carries its enrolment grant is
checked under the identity ID ‖ Pa with the device key Pa in place of Q. Pa is taken from
the grant (checked like a D-TA checks it) at the user's first such login and registered in
kv ``mfa-devices`` when that login passes; after that it is the only key accepted for the
ID, and a plain token is refused, until ``mfa.reset_device``. These refusals are not PIN
failures.

Audit: one ``mfa.login`` entry per attempt that reached a check — {subject, result ("ok",
"refused", "locked", "revoked", "bad-point", "expired", "used", "no-session", ...), method,
remote, typo (true/false, null when the typo worker was busy), failures, session}. Never U,
V, y, a share or anything else secret. The verdict waits for the entry to be written, not
synced: the store syncs it within 50 ms (``[mfa] sync_login_audit`` makes each one wait for
its fsync); a failure count is always synced before the verdict, so not even a power cut
buys extra guesses.

Performance (`pairing_pool`): pyblst holds the GIL, so pairings run in ``[mfa] workers``
trio_parallel processes, started (warm) with the actor and stopped with it; jobs get only
bytes and ints, and each worker decodes SS once (`jobs`). The actor serves requests
concurrently, so one check per worker runs while the loop does the rest. Per login the loop
does: two G1 decodings (pass 1), a dict lookup, a share of one HSM signature and one
audit write (plus one kv write per failure).

Modules: `actor` (the actor), `api` (the ``mfa.*`` methods), `lockout`, `devices`, `sessions`
(open/finished sessions, the one-pass replay window), `server_secret`, `pairing_pool` and
`jobs` (what the workers run; imports only the M-Pin core).
"""

from __future__ import annotations

from typing import Any

__all__ = ["Authenticator"]


def __getattr__(name: str) -> Any:
    # Lazy, so that a worker process unpickling `jobs` does not import the actor and its
    # dependencies.
    if name == "Authenticator":
        from .actor import Authenticator

        return Authenticator
    raise AttributeError(name)
