"""Making events in two steps, so that signing keys can stay inside an HSM.

``draft = prepare_rotation(state, ...)`` builds and checks every field, then
``draft.to_be_signed`` goes to whoever holds the key (an HSM, through the hsm-worker actor)
and ``draft.finish(signature)`` assembles the event and runs it through exactly the checks a
verifier runs (`parse_event`, then the chain rules against the state it was prepared from).
So a finished `Event` is one every verifier accepts, and a wrong key in the HSM is caught as
"bad-signature" before the event leaves the node.

Sign each draft once and store the finished event before publishing it. Ed25519 signatures
are deterministic, so signing the same draft again gives the same event; but an event that is
*changed* and signed again at the same seq (say, after a crash, with a new ``created``) is a
second event at one sequence number — duplicity — and the identity is ruined. After a crash,
publish the stored event; never re-prepare it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

import attrs

from ._chain import IdentityState, check_authority, check_commitment, extend, start
from ._codec import encode_block, link
from ._errors import IdentityError
from ._events import EVENT_DOMAIN, MAX_EVENT_BYTES, VERSION, Event, check_fields, parse_event
from ._keys import ED25519_KEY_SIZE, ED25519_SIG_SIZE, ed25519_key_problem, key_digest

__all__ = [
    "EventDraft",
    "make_inception",
    "make_revocation",
    "make_rotation",
    "prepare_inception",
    "prepare_revocation",
    "prepare_rotation",
]

Signer = Callable[[bytes], bytes]


class _Unchanged:
    """Default of prepare_rotation's profile arguments: keep what the state says."""

    def __repr__(self) -> str:
        return "UNCHANGED"


UNCHANGED: Any = _Unchanged()


@attrs.frozen
class EventDraft:
    """An event complete but for its signature.

    ``signer`` is the public key that must sign ``to_be_signed``: the new key for an
    inception, the pre-committed next key for a rotation or a revocation.
    """

    fields: dict[str, Any] = attrs.field(repr=False)
    signer: bytes
    to_be_signed: bytes = attrs.field(repr=False)
    base: IdentityState | None = attrs.field(repr=False)  # the state it extends; None: inception

    def finish(self, signature: bytes) -> Event:
        """The signed event, verified as any receiver would verify it."""
        if not isinstance(signature, (bytes, bytearray)) or len(signature) != ED25519_SIG_SIZE:
            raise IdentityError("bad-signature", f"an Ed25519 signature is {ED25519_SIG_SIZE} bytes")
        event = parse_event(encode_block({**self.fields, "sig": bytes(signature)}))
        if self.base is None:
            start(event)
        else:
            extend(self.base, event)
        return event


def prepare_inception(
    *,
    sign_key: bytes,
    next_key: bytes,
    x25519: bytes,
    peer_id: str,
    created: int,
    mlkem768: bytes | None = None,
    roles: Iterable[str] = (),
    addrs: Iterable[str] = (),
) -> EventDraft:
    """Draft the first event of a new identity (signed by ``sign_key`` itself).

    ``next_key`` is the public key of the *next* signing key; only its SHA-256 is published.
    Roles may be given in any order; they are stored sorted.
    """
    fields = {
        "v": VERSION,
        "type": "inception",
        "seq": 0,
        **_profile(sign_key, next_key, x25519, mlkem768, roles, peer_id, addrs, created),
    }
    return _draft(fields, None)


def prepare_rotation(
    state: IdentityState,
    *,
    new_key: bytes,
    next_key: bytes,
    created: int,
    x25519: bytes = UNCHANGED,
    mlkem768: bytes | None = UNCHANGED,
    roles: Iterable[str] = UNCHANGED,
    peer_id: str = UNCHANGED,
    addrs: Iterable[str] = UNCHANGED,
) -> EventDraft:
    """Draft a rotation to ``new_key``, the key ``state`` committed to; it signs the draft.

    Profile fields left out keep their current values (``mlkem768=None`` drops the ML-KEM key).
    Raises "not-pre-committed" at once if ``new_key`` is not the committed key.
    """
    check_authority(state, _key_bytes(new_key))

    def keep(value: Any, current: Any) -> Any:
        return current if value is UNCHANGED else value

    fields = {
        "v": VERSION,
        "type": "rotation",
        "seq": state.seq + 1,
        "prev": link(state.head, "prev"),
        "identity": link(state.identity, "identity"),
        **_profile(
            new_key,
            next_key,
            keep(x25519, state.x25519),
            keep(mlkem768, state.mlkem768),
            keep(roles, state.roles),
            keep(peer_id, state.peer_id),
            keep(addrs, state.addrs),
            created,
        ),
    }
    return _draft(fields, state)


def prepare_revocation(state: IdentityState, *, next_key: bytes, created: int) -> EventDraft:
    """Draft the end of an identity, signed by the pre-committed ``next_key`` (see docs)."""
    check_authority(state, _key_bytes(next_key))
    fields = {
        "v": VERSION,
        "type": "revocation",
        "seq": state.seq + 1,
        "prev": link(state.head, "prev"),
        "identity": link(state.identity, "identity"),
        "sign_key": _key_bytes(next_key),
        "created": created,
    }
    return _draft(fields, state)


def make_inception(sign: Signer, **fields: Any) -> Event:
    """`prepare_inception` and finish it with ``sign(to_be_signed) -> signature``."""
    draft = prepare_inception(**fields)
    return draft.finish(sign(draft.to_be_signed))


def make_rotation(state: IdentityState, sign: Signer, **fields: Any) -> Event:
    """`prepare_rotation`, signed by ``sign`` (which must hold the new key)."""
    draft = prepare_rotation(state, **fields)
    return draft.finish(sign(draft.to_be_signed))


def make_revocation(state: IdentityState, sign: Signer, *, next_key: bytes, created: int) -> Event:
    """`prepare_revocation`, signed by ``sign`` (which must hold the pre-committed key)."""
    draft = prepare_revocation(state, next_key=next_key, created=created)
    return draft.finish(sign(draft.to_be_signed))


def _profile(
    sign_key: Any, next_key: Any, x25519: Any, mlkem768: Any, roles: Any, peer_id: Any, addrs: Any, created: Any
) -> dict[str, Any]:
    enc = {"x25519": _plain(x25519)}
    if mlkem768 is not None:
        enc["mlkem768"] = _plain(mlkem768)
    role_list = _listed(roles, "roles")
    if all(isinstance(role, str) for role in role_list):  # else check_fields says what is wrong
        role_list = sorted(set(role_list))
    return {
        "sign_key": _key_bytes(sign_key),
        "enc": enc,
        "next": key_digest(_next_key(next_key)),
        "roles": role_list,
        "peer_id": peer_id,
        "addrs": _listed(addrs, "addrs"),
        "created": created,
    }


def _draft(fields: dict[str, Any], base: IdentityState | None) -> EventDraft:
    # The same checks a receiver makes, on the fields we are about to sign ...
    check_fields(fields, signed=False)
    if "next" in fields:  # and the chain rule that depends only on the keys, before signing
        check_commitment(fields["next"], fields["sign_key"], () if base is None else base.used_keys)
    # ... and the size the signed event will have (a signature is always 64 bytes).
    size = len(encode_block({**fields, "sig": bytes(ED25519_SIG_SIZE)}))
    if size > MAX_EVENT_BYTES:
        raise IdentityError("too-large", f"the event would be {size} bytes; the limit is {MAX_EVENT_BYTES}")
    return EventDraft(
        fields=fields,
        signer=fields["sign_key"],
        to_be_signed=EVENT_DOMAIN + encode_block(fields),
        base=base,
    )


def _key_bytes(key: Any) -> bytes:
    if not isinstance(key, (bytes, bytearray, memoryview)):
        raise IdentityError("malformed", f"a public key is bytes, not {type(key).__name__}")
    return bytes(key)


def _next_key(key: Any) -> bytes:
    # Verifiers see only the digest, so this is the one chance to notice a committed key that
    # could never sign the rotation it is meant for.
    key = _key_bytes(key)
    problem = ed25519_key_problem(key) if len(key) == ED25519_KEY_SIZE else "not 32 bytes"
    if problem is not None:
        raise IdentityError("weak-key", f"next_key is not a usable Ed25519 key: {problem}")
    return key


def _plain(value: Any) -> Any:
    # Callers may hold keys in bytearrays; the encoder and the checks want bytes.
    return bytes(value) if isinstance(value, (bytearray, memoryview)) else value


def _listed(values: Any, what: str) -> list[Any]:
    if isinstance(values, (str, bytes)):  # a lone string would otherwise become its characters
        raise IdentityError("malformed", f"{what} must be a list of strings, not one string")
    try:
        return list(values)
    except TypeError:
        raise IdentityError("malformed", f"{what} must be a list of strings") from None
