"""The "share-dealer" actor (role ``dta``): this node's share of the M-Pin master secret.

A Distributed Trust Authority holds one share s_i of a master secret s = Σ s_i that exists
nowhere, and deals the s_i-multiples the M-Pin protocol needs (../shared/MPIN.md, the maths
in `milagro_node.core.mpin`, the wire in `milagro_node.core.mpin_wire`). `actor` is the
actor, `records` what it keeps in the store, `api` the ``dta.*`` methods.

Theory of operation
-------------------

Master share. Keystore key ``dta/master-share`` (kind ``dta-master-share``: 32 bytes,
a big-endian scalar in [1, r)), wrapped under the node KEK. Made on the actor's first
start when the keystore says it has no such key — never after any other keystore error,
since a new share silently breaks every token dealt so far. It is fetched from the
keystore for each share and closed at once; it becomes a Python int only inside the call
into the core. It is never logged, audited or sent.

What it deals, and to whom::

    client   ── dta.enroll {id, grant, reply_key} ──▶  check grant, once per ID
             ◀── seal(reply_key, "client-share", s_i·H(ID)) ──
    client   ── dta.permit {id, day, reply_key} ───▶  enrolled, not revoked, day ∈ {today, tomorrow}
             ◀── seal(reply_key, "time-permit", s_i·H_T(day)) ──
    MFA node ── envelope dta.server-share-request ─▶  member of peers.toml with role mfa
             ◀── envelope mfa.server-share {v: 1, share: s_i·Q} ──
    the authenticator of this node ── ServerShare ─▶  s_i·Q as SecretBytes (no envelope to oneself)

Grants. An enrolment needs a `mpin_wire` grant naming the user ID, signed with the current
identity key of its issuer: this node, or one of ``dta.grant_issuers`` when that is set,
else any member pinned in peers.toml (issuers must resolve through the pki-resolver:
pinned, not revoked). Order of checks: user ID, reply key, grant structure, issuer, grant
signature and time window, subject, revocation, earlier enrolment. A grant stays usable
until it expires; what makes an enrolment happen once is the record, not the grant.
A grant that names a device key (key-escrow-less, `mpin_wire.grant_device_key`) makes
this enrolment one of ID ‖ Pa: the client share is s_i·H(ID ‖ Pa), the record keeps Pa,
and the permits are for ID ‖ Pa too.

Enrolment state (`records`): ``dta-enrolled`` holds one record per user ID (keyed by the
SHA-256 of the ID) with the grant's CID; ``dta-revoked`` the revoked IDs (no permits, no
enrolment). ``dta.reset`` deletes the record so the user can enrol again; ``dta.revoke``
sets or clears the revocation. Counters of what was issued, and the MFA nodes served, are
kept in memory and written to ``dta-stats`` with each issuance, so ``dta.status`` survives
restarts.

Writes. Every write and its audit entry run under one lock (the store is one SQLite
thread anyway), shielded from the caller's deadline: the check for an earlier enrolment
and the record that follows cannot interleave with another enrolment of the same ID, and
a share is sealed *before* its record is written, so an unusable reply key leaves nothing
behind. The record and the counters land in one transaction; the audit entry
(``dta.client-share``, ``dta.time-permit``, ``dta.server-share``) follows it.

Refusals. Every refused enrolment, permit or server-share request is audited
(``dta.enrol-refused``, ``dta.permit-refused``, ``dta.server-share-refused``, with the
code) and refused with an `ActorError` whose code is a ``mpin-wire-*`` code of the grant or
reply key, ``mpin-*`` from the core, or ``dta-not-member`` (an issuer or requester that is
not accepted), ``dta-grant-subject``, ``dta-enrolled``, ``dta-not-enrolled``,
``dta-revoked``, ``dta-bad-day``. Messages name IDs and rules, never a share.

Server-share requests arrive as `EnvelopeArrived` tells (the actor subscribes to ``dta.*``
kinds with the envelope router when it starts): nobody waits for an answer, so refusals
are logged and audited, never raised. MFA nodes re-send requests until they hold every
share, so a requester is answered at most once per `SERVER_SHARE_EVERY_S` (5 s); repeats
inside that window are dropped before any work.

Concurrency. Up to 8 requests at once (`CONCURRENCY`): the work is waiting on the
keystore (an HSM unwrap per share), the resolver and the store. The group work — one
scalar multiplication and at most one hash to G1, 0.12–0.14 ms per share with pyblst on
this machine type, compression included — runs inline on the trio loop: cheaper than the
hop to a worker process it would need.
"""

from .actor import NAME, ShareDealer

__all__ = ["NAME", "ShareDealer"]
