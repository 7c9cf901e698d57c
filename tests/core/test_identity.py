"""Identity-log core: making events, pre-rotation, revocation, and every refusal by its code.

Keys come from fixed seeds (tests/vectors/make_identity_vectors.py), so a failure reproduces.
Events the public API would refuse to make are assembled by hand (`raw_event`) and signed with
the key a forger would have, to show the *verifier* refuses them, not just the drafting code.
"""

from pathlib import Path

import dag_cbor
import pytest
from multiformats import CID

from milagro_node.core import identity as ident
from milagro_node.core.identity import IdentityError, key_digest, verify_log
from milagro_node.core.ipld import verify_cid
from vectors.make_identity_vectors import (
    fields_of,
    mlkem768_public,
    peer_id,
    public,
    raw_event,
    signing_key,
    x25519_public,
)

KEYS = [signing_key(f"test-{i}") for i in range(8)]
PUB = [public(key) for key in KEYS]
PEER = peer_id("test-libp2p")
OTHER_PEER = peer_id("test-other-libp2p")
X25519 = x25519_public("test-x25519")
T0 = 1_767_225_600


def incept(key=0, nxt=1, **changes):
    fields = dict(
        sign_key=PUB[key], next_key=PUB[nxt], x25519=X25519, peer_id=PEER, created=T0,
        roles=["mfa", "dta"], addrs=["/ip4/192.0.2.1/tcp/4001"],
    )
    fields.update(changes)
    return ident.make_inception(KEYS[key].sign, **fields)


def rotate(state, new, nxt, **changes):
    return ident.make_rotation(state, KEYS[new].sign, new_key=PUB[new], next_key=PUB[nxt],
                               created=state.created + 60, **changes)


def chain(n_rotations=2, revoke=False):
    """A valid log: inception with key 0, rotations to keys 1..n, optional revocation."""
    events = [incept()]
    state = verify_log([events[0].bytes])
    for i in range(1, n_rotations + 1):
        events.append(rotate(state, i, i + 1))
        state = verify_log([e.bytes for e in events])
    if revoke:
        nxt = n_rotations + 1
        events.append(
            ident.make_revocation(state, KEYS[nxt].sign, next_key=PUB[nxt], created=state.created + 60)
        )
        state = verify_log([e.bytes for e in events])
    return events, state


def code_of(fn, *args, **kwargs):
    with pytest.raises(IdentityError) as info:
        fn(*args, **kwargs)
    assert info.value.code in ident.CODES
    return info.value.code


def forged(base_event, key_index, **changes):
    """A hand-made successor of ``base_event`` with the given changes, signed by KEYS[key_index]."""
    template = fields_of(rotation_template().bytes)
    template.update(seq=base_event.seq + 1, prev=base_event.cid, identity=base_event.identity,
                    sign_key=PUB[key_index], next=key_digest(PUB[7]), created=base_event.created + 60)
    template.update(changes)
    return raw_event(template, KEYS[key_index])


def rotation_template():
    events, _ = chain(1)
    return events[1]


# --- identity and the happy path -------------------------------------------------------------


def test_identity_is_the_cid_of_the_inception():
    event = incept()
    assert event.identity == event.cid and event.cid.startswith("bafyrei")
    assert verify_cid(event.cid, event.bytes)
    assert CID.decode(event.cid).codec.name == "dag-cbor"
    state = verify_log([event.bytes])
    assert (state.identity, state.head, state.seq, state.revoked) == (event.cid, event.cid, 0, False)
    assert state.sign_key == PUB[0] and state.next_digest == key_digest(PUB[1])
    assert state.roles == ("dta", "mfa")  # stored sorted
    assert state.peer_id == PEER and state.addrs == ("/ip4/192.0.2.1/tcp/4001",)
    assert state.x25519 == X25519 and state.mlkem768 is None


def test_the_next_key_itself_is_not_published():
    event = incept()
    assert PUB[1] not in event.bytes and key_digest(PUB[1]) in event.bytes


def test_rotation_to_the_pre_committed_key_is_accepted():
    events, state = chain(2)
    assert state.seq == 2 and state.head == events[2].cid and state.identity == events[0].cid
    assert state.sign_key == PUB[2] and state.next_digest == key_digest(PUB[3])
    assert [e.prev for e in events] == [None, events[0].cid, events[1].cid]
    assert {e.identity for e in events} == {events[0].cid}


def test_rotation_to_any_other_key_is_rejected():
    events, state = chain(1)
    # The drafting API refuses before anything is signed ...
    code = code_of(ident.prepare_rotation, state, new_key=PUB[5], next_key=PUB[6], created=T0)
    assert code == "not-pre-committed"
    # ... and a verifier refuses the event a thief of any other key could make.
    for key in (5, 1, 0):  # a stranger's key, the current key, the inception key
        rogue = forged(events[1], key)
        assert code_of(verify_log, [e.bytes for e in events] + [rogue]) == "not-pre-committed"


def test_rotation_can_change_the_profile_or_keep_it():
    events, state = chain(0)
    kept = rotate(state, 1, 2)
    assert (kept.roles, kept.addrs, kept.peer_id) == (state.roles, state.addrs, state.peer_id)
    assert kept.x25519 == state.x25519
    mlkem = mlkem768_public("test-mlkem")
    changed = rotate(
        state, 1, 2, roles=["custody"], addrs=[f"/dns/n.example/tcp/1/p2p/{OTHER_PEER}"], peer_id=OTHER_PEER,
        x25519=x25519_public("test-x25519-2"), mlkem768=mlkem,
    )
    after = verify_log([events[0].bytes, changed.bytes])
    assert after.roles == ("custody",) and after.peer_id == OTHER_PEER and after.mlkem768 == mlkem
    dropped = rotate(after, 2, 3, mlkem768=None)
    assert verify_log([events[0].bytes, changed.bytes, dropped.bytes]).mlkem768 is None


def test_two_step_signing_for_keys_in_an_hsm():
    draft = ident.prepare_inception(sign_key=PUB[0], next_key=PUB[1], x25519=X25519, peer_id=PEER, created=T0)
    assert draft.signer == PUB[0] and draft.to_be_signed.startswith(ident.EVENT_DOMAIN)
    event = draft.finish(KEYS[0].sign(draft.to_be_signed))
    assert event == draft.finish(KEYS[0].sign(draft.to_be_signed))  # Ed25519 is deterministic
    # The HSM signed with the wrong key, or returned garbage: caught before the event leaves.
    assert code_of(draft.finish, KEYS[3].sign(draft.to_be_signed)) == "bad-signature"
    assert code_of(draft.finish, b"\x00" * 63) == "bad-signature"
    assert code_of(draft.finish, "sig") == "bad-signature"
    rotation = ident.prepare_rotation(verify_log([event.bytes]), new_key=PUB[1], next_key=PUB[2], created=T0)
    assert rotation.signer == PUB[1]
    assert code_of(rotation.finish, KEYS[0].sign(rotation.to_be_signed)) == "bad-signature"


def test_drafts_refuse_what_a_verifier_would_refuse():
    base = dict(sign_key=PUB[0], next_key=PUB[1], x25519=X25519, peer_id=PEER, created=T0)
    cases = [
        (dict(roles=["admin"]), "malformed"),
        (dict(roles="dta"), "malformed"),
        (dict(addrs=["/ip4/999.0.0.1/tcp/1"]), "malformed"),
        (dict(addrs=[f"/ip4/192.0.2.1/tcp/1/p2p/{OTHER_PEER}"]), "malformed"),
        (dict(addrs=[f"/ip4/192.0.2.{i}/tcp/1" for i in range(ident.MAX_ADDRS + 1)]), "too-large"),
        (dict(peer_id="not-a-peer"), "malformed"),
        (dict(created=-1), "malformed"),
        (dict(created=2**64), "malformed"),
        (dict(created=1.5), "malformed"),
        (dict(x25519=b"\x01" * 31), "malformed"),
        (dict(mlkem768=b"\xff" * 1184), "malformed"),
        (dict(sign_key=bytes(32)), "weak-key"),
        (dict(sign_key="key"), "malformed"),
        (dict(next_key=PUB[0]), "key-reuse"),
        (dict(next_key=bytes(32)), "weak-key"),
        (dict(next_key=PUB[1][:31]), "weak-key"),
    ]
    for change, code in cases:
        assert code_of(ident.prepare_inception, **{**base, **change}) == code, change


def test_revocation_is_signed_by_the_pre_committed_key():
    events, state = chain(1, revoke=True)
    assert state.revoked and state.seq == 2 and state.head == events[2].cid and state.next_digest is None
    assert events[2].sign_key == PUB[2] and events[2].x25519 is None and events[2].roles == ()
    # The current key (the one in daily use, so the one a thief would hold) cannot revoke.
    _, live = chain(1)
    assert code_of(ident.prepare_revocation, live, next_key=PUB[1], created=T0) == "not-pre-committed"
    revoke_fields = {"v": 1, "type": "revocation", "seq": 2, "prev": events[1].cid, "identity": events[0].cid,
                     "sign_key": PUB[1], "created": T0}
    by_current_key = raw_event(revoke_fields, KEYS[1])
    assert code_of(verify_log, [e.bytes for e in events[:2]] + [by_current_key]) == "not-pre-committed"


def test_nothing_is_valid_after_a_revocation():
    events, state = chain(1, revoke=True)
    code = code_of(ident.prepare_rotation, state, new_key=PUB[2], next_key=PUB[3], created=T0)
    assert code == "after-revocation"
    assert code_of(ident.prepare_revocation, state, next_key=PUB[2], created=T0) == "after-revocation"
    # Whatever key signs it and however well it links, an event after a revocation is refused.
    for key in (2, 3, 6):
        late = forged(events[2], key)
        assert code_of(verify_log, [e.bytes for e in events] + [late]) == "after-revocation"


def test_a_key_is_never_used_twice():
    events, state = chain(2)
    # Committing to an old key (or to the key signing the event) is refused when drafting ...
    assert code_of(ident.prepare_rotation, state, new_key=PUB[3], next_key=PUB[0], created=T0) == "key-reuse"
    assert code_of(ident.prepare_rotation, state, new_key=PUB[3], next_key=PUB[3], created=T0) == "key-reuse"
    # ... and when verifying.
    rogue = forged(events[2], 3, next=key_digest(PUB[1]))
    assert code_of(verify_log, [e.bytes for e in events] + [rogue]) == "key-reuse"


# --- whole logs -----------------------------------------------------------------------------------


def test_verify_log_checks_the_chain():
    events, _ = chain(2)
    data = [e.bytes for e in events]
    assert code_of(verify_log, []) == "no-inception"
    assert code_of(verify_log, data[1:]) == "no-inception"
    assert code_of(verify_log, [data[0], data[2]]) == "bad-sequence"
    assert code_of(verify_log, [data[0], data[2], data[1]]) == "bad-sequence"
    assert code_of(verify_log, [data[0], data[1], data[1]]) == "bad-sequence"
    assert code_of(verify_log, data, max_events=2) == "too-large"
    other = incept(4, 5)
    assert code_of(verify_log, [data[0], other.bytes]) == "identity-mismatch"
    # Pinning: the log must be of the identity we expected (say, from peers.toml).
    assert verify_log(data, identity=events[0].cid).seq == 2
    assert code_of(verify_log, data, identity=other.cid) == "identity-mismatch"


def test_a_forked_log_is_duplicity():
    events, state1 = chain(1)
    fork = rotate(verify_log([events[0].bytes]), 1, 2, addrs=["/ip4/198.51.100.7/tcp/4001"])
    assert fork.cid != events[1].cid and fork.seq == 1
    assert code_of(verify_log, [events[0].bytes, events[1].bytes, fork.bytes]) == "duplicity"
    # A revocation and a rotation at one seq (a thief of the next key racing the owner) too.
    revocation = ident.make_revocation(state1, KEYS[2].sign, next_key=PUB[2], created=T0 + 600)
    rotation = rotate(state1, 2, 3)
    assert code_of(verify_log, [e.bytes for e in events] + [rotation.bytes, revocation.bytes]) == "duplicity"
    assert code_of(verify_log, [e.bytes for e in events] + [revocation.bytes, rotation.bytes]) == "duplicity"


# --- tampering ---------------------------------------------------------------------------------------


def _resigned(data, key_index, **changes):
    fields = fields_of(data)
    fields.update(changes)
    return raw_event(fields, KEYS[key_index])


def _unsigned_edit(data, edit):
    value = dag_cbor.decode(data)
    edit(value)
    return dag_cbor.encode(value)


@pytest.mark.parametrize("field", [
    "seq", "prev", "identity", "sign_key", "next", "created", "roles", "peer_id", "addrs", "enc", "sig",
])
def test_any_field_changed_without_the_key_fails_the_signature(field):
    events, _ = chain(2)
    other = incept(4, 5)
    replacement = {
        "seq": 2 + 1,
        "prev": CID.decode(events[0].cid),
        "identity": CID.decode(other.cid),
        "sign_key": PUB[5],
        "next": b"\x07" * 32,
        "created": T0 + 1,
        "roles": ["custody"],
        "peer_id": OTHER_PEER,
        "addrs": ["/ip4/192.0.2.99/tcp/1"],
        "enc": {"x25519": b"\x09" * 32},
        "sig": b"\x01" * 64,
    }[field]

    def edit(fields):
        fields[field] = replacement

    tampered = _unsigned_edit(events[2].bytes, edit)
    assert code_of(ident.parse_event, tampered) == "bad-signature"
    assert code_of(verify_log, [events[0].bytes, events[1].bytes, tampered]) == "bad-signature"


def test_fields_changed_and_re_signed_fail_with_the_rule_they_break():
    events, _ = chain(2)
    prefix = [events[0].bytes, events[1].bytes]
    rot2 = events[2].bytes
    other = incept(4, 5)
    cases = [
        (dict(seq=3), "bad-sequence"),
        (dict(prev=events[0].cid), "broken-chain"),
        (dict(identity=other.cid), "identity-mismatch"),
        (dict(next=key_digest(PUB[2])), "key-reuse"),
        (dict(v=2), "unsupported-version"),
        (dict(v=True), "malformed"),
        (dict(type="inception"), "malformed"),
        (dict(type="audit"), "malformed"),
        (dict(seq=0), "malformed"),
        (dict(seq=-1), "malformed"),
        (dict(prev="bafkreifzjut3te2nhyekklss27nh3k72ysco7y32koao5eei66wof36n5e"), "malformed"),  # a raw CID
        (dict(created=True), "malformed"),
        (dict(roles=["mfa", "dta"]), "malformed"),  # not sorted
        (dict(roles=["dta", "dta"]), "malformed"),
        (dict(roles=["dta", "mfa", "custody", "dta"]), "too-large"),
        (dict(roles=["root"]), "malformed"),
        (dict(addrs=["/ip4/1.2.3.4/tcp/1", "/ip4/1.2.3.4/tcp/1"]), "malformed"),
        (dict(addrs="/ip4/1.2.3.4/tcp/1"), "malformed"),
        (dict(addrs=["/tcp/1"]), "malformed"),
        (dict(addrs=["/ip4/1.2.3.4/tcp/1" + "/ws" * 80]), "malformed"),
        (dict(peer_id="QmNotAPeerId"), "malformed"),
        (dict(enc={"x25519": b"\x09" * 32, "rsa": b"x"}), "malformed"),
        (dict(enc={"mlkem768": b"\x09" * 1184}), "malformed"),
        (dict(next=b"\x01" * 31), "malformed"),
        (dict(sign_key=bytes(31) + b"\x80"), "weak-key"),
        (dict(extra=1), "malformed"),
    ]
    for change, code in cases:
        tampered = _resigned(rot2, 2, **change)
        assert code_of(verify_log, [*prefix, tampered]) == code, change
    missing = fields_of(rot2)
    del missing["created"]
    assert code_of(verify_log, [*prefix, raw_event(missing, KEYS[2])]) == "malformed"


def test_decoding_is_strict_and_bounded():
    event = incept()
    assert code_of(ident.parse_event, b"") == "malformed"
    assert code_of(ident.parse_event, "text") == "malformed"
    assert code_of(ident.parse_event, event.bytes + b"\x00") == "malformed"
    assert code_of(ident.parse_event, event.bytes[:-1]) == "malformed"
    assert code_of(ident.parse_event, dag_cbor.encode([1, 2])) == "malformed"
    assert code_of(ident.parse_event, b"\xa0" * (ident.MAX_EVENT_BYTES + 1)) == "too-large"
    assert code_of(ident.parse_event, event.bytes, max_size=len(event.bytes) - 1) == "too-large"
    # A non-minimal integer (created as a 64-bit integer) is another encoding of the same map.
    long_form = event.bytes.replace(dag_cbor.encode(T0), b"\x1b" + T0.to_bytes(8, "big"))
    assert long_form != event.bytes
    assert code_of(ident.parse_event, long_form) == "malformed"
    assert ident.parse_event(bytearray(event.bytes)) == event


def test_the_largest_allowed_event_fits_the_size_limit():
    suffix = f".example.org/tcp/4001/ws/p2p/{PEER}"
    label = "a" * (ident.MAX_ADDR_CHARS - len("/dns/") - len(suffix) - 3 * 41 - 3)  # 4 labels + ".NN"
    addrs = [f"/dns/{'b' * 40}.{'c' * 40}.{'d' * 40}.{label}.{i:02d}{suffix}" for i in range(ident.MAX_ADDRS)]
    assert all(len(a) == ident.MAX_ADDR_CHARS for a in addrs)
    event = incept(addrs=addrs, roles=sorted(ident.ROLES), mlkem768=mlkem768_public("test-mlkem"))
    assert len(event.bytes) <= ident.MAX_EVENT_BYTES
    assert verify_log([event.bytes]).addrs == tuple(addrs)


def test_small_order_and_non_canonical_signing_keys_are_refused():
    p = 2**255 - 19
    weak = [
        bytes(32),  # y = 0: a point of order 4
        bytes(31) + b"\x80",  # its negative
        b"\x01" + bytes(31),  # the identity point
        (p - 1).to_bytes(32, "little"),  # (0, -1), order 2
        p.to_bytes(32, "little"),  # non-canonical y
        (p + 1).to_bytes(32, "little"),  # non-canonical encoding of the identity
        b"\x01" + bytes(30) + b"\x80",  # x = 0 with the sign bit set ("-0")
        b"\x02" + bytes(31),  # y = 2 is not on the curve
    ]
    for key in weak:
        assert code_of(ident.prepare_inception, sign_key=key, next_key=PUB[1], x25519=X25519,
                       peer_id=PEER, created=T0) == "weak-key", key.hex()
    for key in PUB:
        assert ident.prepare_inception(sign_key=key, next_key=PUB[(PUB.index(key) + 1) % 8], x25519=X25519,
                                       peer_id=PEER, created=T0)


def test_error_codes_are_documented():
    text = (Path(__file__).parents[2] / "docs" / "identity.md").read_text(encoding="utf-8")
    for code in ident.CODES:
        assert f"`{code}`" in text, code
    with pytest.raises(AssertionError):
        IdentityError("no-such-code", "x")
    assert isinstance(IdentityError("malformed", "x"), ValueError)
