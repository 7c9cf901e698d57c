"""The chain rules: when an event may follow a log, and what the log then says.

Rule 1 (after h11): every rule that decides whether an event extends a log lives in this file.
`parse_event` has already checked the event alone (form, limits, its own signature); what is
left is the event's place in the log. `extend` applies the rules in this order, and the first
one that fails names the error (docs/identity.md, "Verification", step 4):

1. identity-mismatch  the event names another identity (an inception always does: it is its own)
2. after-revocation   the log already ends in a revocation
3. bad-sequence       seq is not the head's seq + 1
4. broken-chain       prev is not the head's CID
5. not-pre-committed  SHA-256(sign_key) is not the head's `next` commitment
6. key-reuse          sign_key was used before, or `next` commits to a key already used

Because rule 5 binds the signer of every rotation and revocation to the digest published one
event earlier, and `parse_event` checked that signer's signature, a log is a chain of
authorisations back to the inception, whose key is the identity's own (identity = its CID).

`verify_log` walks a whole log with these rules. A second valid event at a sequence number
already taken is not "bad-sequence" but "duplicity": the controller signed two histories.
"""

from __future__ import annotations

from collections.abc import Iterable

import attrs

from ._errors import IdentityError
from ._events import Event, parse_event
from ._keys import hex_repr, key_digest

__all__ = [
    "MAX_LOG_EVENTS",
    "IdentityState",
    "check_authority",
    "check_commitment",
    "extend",
    "start",
    "verify_log",
]

# A node rotating every day for 25 years stays under this; a longer "log" is an attack.
MAX_LOG_EVENTS = 10_000


@attrs.frozen
class IdentityState:
    """What a verified log says about an identity, as of its head event.

    Keys, roles, peer id and addresses are those of the last inception or rotation. After a
    revocation ``revoked`` is True, ``next_digest`` is None, and head/seq name the revocation:
    the other fields remain only so that tools can show what was revoked.
    """

    identity: str
    seq: int
    head: str
    sign_key: bytes = attrs.field(repr=hex_repr)
    next_digest: bytes | None = attrs.field(repr=hex_repr)
    x25519: bytes = attrs.field(repr=hex_repr)
    mlkem768: bytes | None = attrs.field(repr=False)
    roles: tuple[str, ...]
    peer_id: str
    addrs: tuple[str, ...]
    created: int
    revoked: bool
    # Every signing key this identity has used, oldest first (for the key-reuse rule).
    used_keys: tuple[bytes, ...] = attrs.field(repr=False)


def start(event: Event) -> IdentityState:
    """The state a log has after its inception event."""
    if event.type != "inception":
        raise IdentityError("no-inception", f"a log starts with an inception, not a {event.type}")
    check_commitment(event.next_digest, event.sign_key, ())
    return _after(event, (event.sign_key,))


def extend(state: IdentityState, event: Event) -> IdentityState:
    """The state after ``event`` follows ``state``; raise IdentityError naming the first broken rule."""
    if event.identity != state.identity:
        raise IdentityError("identity-mismatch", f"{event.type} {event.cid} belongs to {event.identity}")
    if state.revoked:
        raise IdentityError("after-revocation", f"{state.identity} was revoked at seq {state.seq}")
    if event.seq != state.seq + 1:
        raise IdentityError("bad-sequence", f"seq {event.seq} cannot follow seq {state.seq}")
    if event.prev != state.head:
        raise IdentityError("broken-chain", f"seq {event.seq} links to {event.prev}, not to {state.head}")
    check_authority(state, event.sign_key)
    used = (*state.used_keys, event.sign_key)
    if event.type == "revocation":
        return attrs.evolve(
            state, seq=event.seq, head=event.cid, created=event.created, revoked=True,
            next_digest=None, used_keys=used,
        )
    check_commitment(event.next_digest, event.sign_key, state.used_keys)
    return _after(event, used)


def check_authority(state: IdentityState, sign_key: bytes) -> None:
    """Rules 2, 5 and the first half of 6 for a key that would sign the next event.

    Drafts call this before anything is signed, so a node finds out it holds the wrong key
    before it asks its HSM to sign, not after.
    """
    if state.revoked:
        raise IdentityError("after-revocation", f"{state.identity} was revoked at seq {state.seq}")
    if state.next_digest is None or key_digest(sign_key) != state.next_digest:
        raise IdentityError(
            "not-pre-committed", f"the key does not match the commitment made at seq {state.seq}"
        )
    if sign_key in state.used_keys:
        # Only reachable if an earlier event committed to an old key, which rule 6 refuses;
        # kept so that the rule does not depend on every earlier verifier having had it.
        raise IdentityError("key-reuse", "the pre-committed key was already used by this identity")


def check_commitment(next_digest: bytes | None, sign_key: bytes, used: tuple[bytes, ...]) -> None:
    """The second half of rule 6, for an event signed by ``sign_key`` committing to ``next_digest``.

    A commitment to a key already exposed (the event's own, or one used earlier) would let
    whoever stole that key rotate: pre-rotation only protects a key that was never used.
    """
    assert next_digest is not None
    if next_digest in {key_digest(key) for key in (*used, sign_key)}:
        raise IdentityError("key-reuse", "next commits to a key that is already in use")


def _after(event: Event, used: tuple[bytes, ...]) -> IdentityState:
    assert event.x25519 is not None and event.peer_id is not None
    return IdentityState(
        identity=event.identity,
        seq=event.seq,
        head=event.cid,
        sign_key=event.sign_key,
        next_digest=event.next_digest,
        x25519=event.x25519,
        mlkem768=event.mlkem768,
        roles=event.roles,
        peer_id=event.peer_id,
        addrs=event.addrs,
        created=event.created,
        revoked=False,
        used_keys=used,
    )


def verify_log(
    events: Iterable[bytes], *, identity: str | None = None, max_events: int = MAX_LOG_EVENTS
) -> IdentityState:
    """Verify a whole log, inception first, and return the state at its head.

    ``identity``, when given (e.g. pinned in peers.toml), must be the log's inception CID.
    The log must be exactly one chain in order; a second valid event at a sequence number is
    reported as "duplicity" (a fork signed by the controller), anything else out of place as
    the chain rule it breaks. For logs arriving event by event, in any order, use `LogBook`.
    """
    history: list[IdentityState] = []  # history[n] = state after the event with seq n
    for count, data in enumerate(events, start=1):
        if count > max_events:
            raise IdentityError("too-large", f"log longer than {max_events} events")
        event = parse_event(data)
        if not history:
            history.append(start(event))
            if identity is not None and event.cid != identity:
                raise IdentityError("identity-mismatch", f"log is of {event.cid}, not of {identity}")
            continue
        head = history[-1]
        if event.identity == head.identity and 1 <= event.seq <= head.seq:
            # A sequence number already taken: valid against its predecessor means a fork.
            extend(history[event.seq - 1], event)
            if event.cid == history[event.seq].head:
                raise IdentityError("bad-sequence", f"seq {event.seq} appears twice in the log")
            raise IdentityError(
                "duplicity", f"seq {event.seq} has two events: {history[event.seq].head} and {event.cid}"
            )
        history.append(extend(head, event))
    if not history:
        raise IdentityError("no-inception", "the log is empty")
    return history[-1]
