"""Typed messages between the actors of one node.

Every message is a small frozen attrs class; the receiving actor matches on
its type (``match request: case KvGet(namespace, key): ...``). A request's
reply type is named in its docstring. Messages never carry secrets as plain
``bytes``: a secret travels as `milagro_node.secret_memory.SecretBytes`.
"""

from __future__ import annotations

from typing import Any

import attrs


# --- store (actor "store"): blocks by CID, key-value state, audit log ---------


@attrs.frozen
class PutBlock:
    """Store bytes under their CID. Reply: the CID string."""

    data: bytes
    codec: str = "raw"


@attrs.frozen
class GetBlock:
    """Reply: the block's bytes (re-verified against its CID), or None."""

    cid: str


@attrs.frozen
class KvGet:
    """Reply: the value's bytes, or None."""

    namespace: str
    key: str


@attrs.frozen
class KvPut:
    """Reply: None once the value is durable."""

    namespace: str
    key: str
    value: bytes


@attrs.frozen
class KvItems:
    """Reply: every (key, value) of a namespace, sorted by key."""

    namespace: str


@attrs.frozen
class KvBatch:
    """Put `puts` (namespace, key, value), delete `deletes` (namespace, key) and store
    `blocks` ((data, codec)) in one transaction: all of it lands or none. Reply: None."""

    puts: tuple[tuple[str, str, bytes], ...]
    deletes: tuple[tuple[str, str], ...] = ()
    blocks: tuple[tuple[bytes, str], ...] = attrs.field(default=(), repr=False)


@attrs.frozen
class KvDelete:
    """Reply: None."""

    namespace: str
    key: str


@attrs.frozen
class AuditAppend:
    """Append to the hash-chained audit log. Reply: the new `AuditEntry`.

    `detail` is public: it must never hold a secret, a PIN or a token. ``sync=False``: the
    reply comes once the entry is committed but not yet synced to disk (a crash of the node
    keeps it; the store syncs it within `actors.store.SYNC_DELAY_S`, and a power cut before
    that may lose it).
    """

    actor: str
    action: str
    detail: dict[str, Any] = attrs.field(factory=dict)
    sync: bool = True


@attrs.frozen
class AuditTail:
    """Reply: the last `count` audit entries, oldest first."""

    count: int = 20


@attrs.frozen
class AuditVerify:
    """Re-check the whole audit chain. Reply: an `AuditVerdict`."""


# --- hsm worker (actor "hsm-worker"): the only user of PKCS#11 ---------------
# Keys are named by their token label. Errors: ActorError with the codes of
# actors.hsm_worker.session.HsmError (hsm-unavailable, hsm-pin, hsm-no-key, ...).


@attrs.frozen
class HsmGenerateKey:
    """Create a key in the token. Reply: its public key (raw bytes) for key pairs, else None.

    `kind`: "aes-256" (a KEK), "ed25519", "secp256k1" or "p256". Private and
    secret keys are sensitive; non-extractable unless `extractable`.
    """

    label: str
    kind: str
    extractable: bool = False


@attrs.frozen
class HsmDestroyKey:
    """Reply: None (also when there was no such key)."""

    label: str


@attrs.frozen
class HsmHasKey:
    """Reply: bool."""

    label: str


@attrs.frozen
class HsmPublicKey:
    """Reply: the raw public key of a key pair (32 bytes Ed25519, 65 bytes uncompressed EC)."""

    label: str


@attrs.frozen
class HsmWrap:
    """AES-256-GCM under the token key `kek`. Reply: nonce || ciphertext || tag."""

    kek: str
    secret: Any  # SecretBytes
    aad: bytes


@attrs.frozen
class HsmUnwrap:
    """Reply: the secret as SecretBytes; ``hsm-unwrap-failed`` if it does not authenticate."""

    kek: str
    wrapped: bytes
    aad: bytes


@attrs.frozen
class HsmSign:
    """Reply: an Ed25519 signature of `data`, or ECDSA r||s (low-S) of the 32-byte digest `data`."""

    label: str
    data: bytes


@attrs.frozen
class HsmDerive:
    """ECDH with the token key `label`. Reply: the shared secret as SecretBytes."""

    label: str
    peer_public: bytes


@attrs.frozen
class HsmRandom:
    """Reply: `size` random bytes from the token's generator, as SecretBytes."""

    size: int


@attrs.frozen
class HsmHealth:
    """Check the token now. Reply: a dict (state, token, serial, manufacturer, model, ...)."""


# --- keystore (actor "keystore"): every secret at rest, wrapped under the node KEK ---
# Kinds and sizes: milagro_node.core.keystore.KINDS. Errors: ActorError with the codes of
# milagro_node.core.keystore.KeystoreError (keystore-no-key, keystore-bad-kind, ...), or the
# hsm-* / store-error code when the HSM or the store cannot serve.


@attrs.frozen
class KeyPut:
    """Keep `secret` (an open SecretBytes, still the caller's) under `key_id`. Reply: None.

    ``keystore-exists`` if the key id is taken, unless `replace`.
    """

    key_id: str
    kind: str
    secret: Any  # SecretBytes
    replace: bool = False


@attrs.frozen
class KeyGenerate:
    """Keep a random secret drawn from the HSM (`size` defaults to the kind's). Reply: None."""

    key_id: str
    kind: str
    size: int | None = None


@attrs.frozen
class KeyGet:
    """Reply: the secret as SecretBytes, owned by the caller (close it when done).

    ``keystore-bad-kind`` if the key holds another kind of secret.
    """

    key_id: str
    kind: str


@attrs.frozen
class KeyDelete:
    """Forget a key for good (an HSM-resident key is destroyed in the token). Reply: None."""

    key_id: str


@attrs.frozen
class KeyList:
    """Reply: [(key_id, kind, kek_version)] sorted by key id; no secret values.

    An HSM-resident key shows as (key_id, "hsm:<algorithm>", None).
    """


@attrs.frozen
class KekRotate:
    """Re-wrap every key under a new KEK in one transaction. Reply: the new KEK version."""


# Keys generated inside the HSM ("resident"): the private key never leaves the token; callers
# use it by key id. Algorithms: milagro_node.core.keystore.RESIDENT_ALGORITHMS.


@attrs.frozen
class KeyCreateInHsm:
    """Generate a key pair inside the token, sensitive and non-extractable, kept under
    `key_id`. Reply: its raw public key (32 bytes Ed25519, 65 bytes uncompressed EC).

    `algorithm`: "ed25519", "secp256k1" or "p256". ``hsm-unsupported`` (nothing
    written) if the token lacks the mechanisms; ``keystore-exists`` if the key id is taken.
    """

    key_id: str
    algorithm: str


@attrs.frozen
class KeySign:
    """Sign with an HSM-resident key. Reply: the signature (bytes).

    Ed25519 signs `data` itself; ECDSA (secp256k1, p256) signs the 32-byte digest
    `data` and replies r||s with low S. ``keystore-bad-kind`` for a wrapped secret.
    """

    key_id: str
    data: bytes


@attrs.frozen
class KeyPublic:
    """Reply: the raw public key of an HSM-resident key, as the token holds it."""

    key_id: str


# --- pki resolver (actor "pki-resolver"): identity logs of the federation -----------------
# Errors: ActorError with the codes of milagro_node.core.identity.IdentityError
# (unknown-identity, revoked, duplicity, ...) plus not-a-member.


@attrs.frozen
class ResolveIdentity:
    """Reply: the `IdentityState` of a member (cache, then the store, then ``fetch_from``,
    a peer id to ask over the network). ``not-a-member`` unless peers.toml pins it with the
    peer id its log names, and `members_only`."""

    identity: str
    fetch_from: str | None = None
    members_only: bool = True


@attrs.frozen
class ResolveMembers:
    """Reply: the `IdentityState` of each member in ``identities``, in order (one trip for
    an envelope's recipients); fails as `ResolveIdentity` for the first that does not resolve."""

    identities: tuple[str, ...]


@attrs.frozen
class ImportLog:
    """A log (event blocks, inception first) seen on the network. Reply: the new
    `IdentityState`; ``duplicity`` if it forks from what is known (recorded, audited)."""

    events: tuple[bytes, ...] = attrs.field(repr=False)
    source: str  # "announce from <peer>", "fetched from <peer>", ...


@attrs.frozen
class OwnLog:
    """Reply: this node's own log (tuple of event blocks) and its `IdentityState`."""


@attrs.frozen
class LogOf:
    """Reply: the stored log of `identity` (tuple of event blocks; empty if unknown)."""

    identity: str


@attrs.frozen
class ListIdentities:
    """Reply: a list of dicts, one per pinned member and known identity: identity, name,
    member, seq, revoked, duplicity, peer_id, roles, addrs."""


# --- envelope router (actor "envelope-router"): libp2p host, gossip, delivery ------------
# Errors: ActorError with codes p2p-*, envelope error codes, unknown-identity, not-a-member.


@attrs.frozen
class SendEnvelope:
    """Seal `payload` to `to` (identity CIDs), sign it in the HSM, gossip it, and re-send it
    directly to each recipient until it acknowledges or the envelope expires.
    Reply: {"cid", "seq", "bytes", "recipients"}."""

    to: tuple[str, ...]
    kind: str
    payload: bytes = attrs.field(repr=False)
    suite: str = "mx1"
    ttl: int = 3600


@attrs.frozen
class PublishPublic:
    """Sign `body` (in clear) as a public envelope of `kind` and gossip it. Reply: its CID."""

    kind: str
    body: bytes = attrs.field(repr=False)
    ttl: int = 600


@attrs.frozen
class FetchLog:
    """Ask peer `peer_id` for the log of `identity`. Reply: tuple of event blocks."""

    peer_id: str
    identity: str


@attrs.frozen
class ListPeers:
    """Reply: a list of dicts: peer_id, identity, name, member, connected, score, last_seen,
    addrs, accepted, rejected."""


@attrs.frozen
class ReadInbox:
    """Reply: up to `count` envelopes received for this node, newest last, after `after`
    (a receive counter): dicts with n, cid, sender, kind, seq, received_ms and, with
    `payloads`, payload (bytes, opened again from the stored ciphertext) or error."""

    after: int = 0
    count: int = 50
    payloads: bool = True


@attrs.frozen
class SubscribeKinds:
    """Tell: send `actor` an `EnvelopeArrived` for each kept envelope whose kind starts with
    one of `prefixes` (e.g. ("dta.",)). Sent by consumers when they start."""

    prefixes: tuple[str, ...]
    actor: str


@attrs.frozen
class EnvelopeArrived:
    """Told to a subscribed actor: an envelope for this node, verified and opened. `payload`
    may be secret: consumers keep it only through the keystore."""

    cid: str
    sender: str
    kind: str
    seq: int | None
    payload: bytes = attrs.field(repr=False)


@attrs.frozen
class RouterCounters:
    """Reply: {"accepted": {via: n}, "rejected": {reason: n}, "sent": n, "delivered": n,
    "pending": n, "expired": n}."""


# --- share dealer (actor "share-dealer", role dta): M-Pin shares of this D-TA ------------
# Errors: ActorError with codes mpin-wire-* (milagro_node.core.mpin_wire), mpin-* and
# dta-* (dta-not-member, dta-grant-subject, dta-enrolled, dta-not-enrolled, dta-revoked,
# dta-bad-day). Theory of operation: actors/share_dealer/__init__.py.


@attrs.frozen
class EnrolClient:
    """Check `grant` for `user_id`, then issue this D-TA's client-secret share s_i·H(ID),
    sealed to the client's one-time X25519 key `reply_key` (mpin_wire.seal_share, purpose
    "client-share"). Once per user ID unless an admin resets it. Reply: {"sealed": bytes,
    "dta": this node's identity}."""

    user_id: str
    grant: bytes = attrs.field(repr=False)
    reply_key: bytes
    remote: str = ""


@attrs.frozen
class IssuePermit:
    """This D-TA's time-permit share s_i·H_T(day) for an enrolled, unrevoked user, sealed to
    `reply_key` (purpose "time-permit"); `day` is today or tomorrow by our clock.
    Reply: {"sealed": bytes, "dta": identity, "day": int}."""

    user_id: str
    day: int
    reply_key: bytes
    remote: str = ""


@attrs.frozen
class ResetEnrolment:
    """Admin: let `user_id` enrol again. Reply: None."""

    user_id: str


@attrs.frozen
class SetUserRevoked:
    """Admin: stop (revoked=True) or resume issuing time permits (and enrolments) for
    `user_id`; the authenticator keeps its own revocation list with the same message.
    Reply: None."""

    user_id: str
    revoked: bool = True


@attrs.frozen
class DealerStatus:
    """Reply: {"identity", "enrolled": n, "revoked": [ids], "issued": {"client-share": n,
    "time-permit": n, "server-share": n}, "mfa_served": [identities]}. Counts are since the
    data dir was made (kept in the store with each issuance)."""


# --- authenticator (actor "authenticator", role mfa): M-Pin logins ------------------------
# Errors: ActorError with codes mpin-* (bad-point, bad-input, expired, used), mpin-wire-bad-user-id
# and mfa-* (mfa-not-ready, mfa-locked, mfa-revoked, mfa-no-session, mfa-refused, mfa-busy: too
# many open sessions, mfa-worker-failed: the worker process died, retry). A wrong PIN, token or
# permit is mfa-refused (counted), never mpin-bad-proof.


@attrs.frozen
class StartLogin:
    """Pass 1: `user_id`, U (48 bytes) and, with time permits, UT and the `day` of its permit
    (None: the node's today); for a key-escrow-less (DVS) token, the enrolment `grant` that
    names its device key (`actors.authenticator.devices`). Reply: {"session": str, "y":
    32-byte big-endian challenge, "expires": unix seconds}."""

    user_id: str
    u: bytes
    ut: bytes | None = None
    remote: str = ""
    day: int | None = None
    grant: bytes | None = attrs.field(default=None, repr=False)


@attrs.frozen
class FinishLogin:
    """Pass 2: V (48 bytes) for `session`. Reply on success: {"assertion": bytes (a signed
    mpin_wire statement), "mfa": this node's identity, "expires"}; on failure ActorError
    mfa-refused (with the failures left before lockout in the message), mfa-locked, ..."""

    session: str
    v: bytes
    remote: str = ""


@attrs.frozen
class OnePassLogin:
    """One-pass: U, UT, V and the client's time `t`; y = mpin.one_pass_challenge(...,
    `message`); `day` and `grant` as in `StartLogin`. Reply as `FinishLogin`."""

    user_id: str
    u: bytes
    ut: bytes | None
    v: bytes
    t: int
    message: bytes = b""
    remote: str = ""
    day: int | None = None
    grant: bytes | None = attrs.field(default=None, repr=False)


@attrs.frozen
class UnlockUser:
    """Admin: clear the failure count and lockout of `user_id`. Reply: None."""

    user_id: str


@attrs.frozen
class ResetDevice:
    """Admin: forget the DVS device key registered for `user_id` (a lost device); its next
    DVS login registers the key its grant names. Reply: {"registered": whether one was}."""

    user_id: str


@attrs.frozen
class AuthStatus:
    """Reply: {"identity", "ready": bool, "dtas": [identities], "have": [identities],
    "time_permits": bool, "logins": {"ok": n, "failed": n}, "locked": [{"user_id", "failures",
    "until": unix seconds, or None until an admin unlocks}], "revoked": [ids], "sessions": open
    sessions, "workers": n, "refused_shares": {code: n}, "assertion_signatures": {"signatures": n,
    "assertions": n} (HSM signatures made for assertions, and the assertions they covered)}.
    Counts are since the actor started."""


@attrs.frozen
class ServerShare:
    """To "share-dealer" from the authenticator of the same node (no envelope to oneself):
    Reply: this D-TA's server-secret share s_i·Q, 96 bytes compressed G2, as SecretBytes."""
