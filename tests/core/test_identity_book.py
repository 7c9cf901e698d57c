"""LogBook: events from gossip in any order, twice, forked; receipts from witnesses."""

import itertools

import dag_cbor
import pytest
from multiformats import CID

from milagro_node.core import identity as ident
from milagro_node.core.identity import (
    Accepted,
    AlreadyKnown,
    Duplicity,
    IdentityError,
    LogBook,
    Pending,
    Rejected,
    verify_log,
)
from vectors.make_identity_vectors import fields_of, peer_id, public, raw_event, signing_key, x25519_public

KEYS = [signing_key(f"book-{i}") for i in range(8)]
PUB = [public(key) for key in KEYS]
WITNESS_KEYS = [signing_key(f"book-witness-{i}") for i in range(3)]
T0 = 1_767_225_600


def make_log(keys=KEYS, n_rotations=2, revoke=False, peer="book-libp2p"):
    pubs = [public(k) for k in keys]
    events = [ident.make_inception(
        keys[0].sign, sign_key=pubs[0], next_key=pubs[1], x25519=x25519_public(peer), peer_id=peer_id(peer),
        roles=["dta"], created=T0,
    )]
    for i in range(1, n_rotations + 1):
        state = verify_log([e.bytes for e in events])
        events.append(ident.make_rotation(state, keys[i].sign, new_key=pubs[i], next_key=pubs[i + 1],
                                          created=T0 + i))
    if revoke:
        state = verify_log([e.bytes for e in events])
        k = n_rotations + 1
        events.append(ident.make_revocation(state, keys[k].sign, next_key=pubs[k], created=T0 + k))
    return events


def witness():
    return make_log(WITNESS_KEYS, n_rotations=0, peer="book-witness-libp2p")[0]


def code_of(fn, *args, **kwargs):
    with pytest.raises(IdentityError) as info:
        fn(*args, **kwargs)
    return info.value.code


def test_in_order_delivery():
    events = make_log(revoke=True)
    book = LogBook()
    for event in events:
        (outcome,) = book.add_event(event.bytes)
        assert isinstance(outcome, Accepted) and outcome.event == event
    identity = events[0].cid
    assert book.state(identity) == verify_log([e.bytes for e in events])
    assert book.log(identity) == tuple(events)
    assert book.identities() == {identity}
    assert code_of(book.resolve, identity) == "revoked"
    assert code_of(book.resolve, witness().cid) == "unknown-identity"
    assert book.state(witness().cid) is None and book.log(witness().cid) == ()


@pytest.mark.parametrize("order", list(itertools.permutations(range(4))))
def test_any_delivery_order_gives_the_same_log(order):
    events = make_log(n_rotations=3)
    book = LogBook()
    accepted = []
    for index in order:
        for outcome in book.add_event(events[index].bytes):
            assert isinstance(outcome, (Accepted, Pending)), outcome
            if isinstance(outcome, Accepted):
                accepted.append(outcome.event.seq)
            else:
                assert outcome.missing == outcome.event.prev and outcome.missing in book.missing()
    assert accepted == [0, 1, 2, 3]  # placed strictly in chain order, whatever the arrival order
    assert book.resolve(events[0].cid) == verify_log([e.bytes for e in events])
    assert book.missing() == frozenset()


def test_duplicate_delivery_changes_nothing():
    events = make_log()
    book = LogBook()
    assert isinstance(book.add_event(events[2].bytes)[0], Pending)
    assert book.add_event(events[2].bytes) == [AlreadyKnown(events[2].cid)]  # while pending
    book.add_event(events[0].bytes)
    book.add_event(events[1].bytes)
    for event in events:
        assert book.add_event(event.bytes) == [AlreadyKnown(event.cid)]  # once accepted
    assert book.resolve(events[0].cid).seq == 2


def test_a_released_event_is_reported_after_its_predecessor():
    events = make_log()
    book = LogBook()
    book.add_event(events[2].bytes)
    book.add_event(events[1].bytes)
    outcomes = book.add_event(events[0].bytes)
    assert [type(o) for o in outcomes] == [Accepted, Accepted, Accepted]
    assert [o.event.seq for o in outcomes] == [0, 1, 2]
    assert outcomes[-1].state.head == events[2].cid


def test_a_forked_identity_is_reported_and_never_trusted_again():
    events = make_log(n_rotations=1)
    base = verify_log([events[0].bytes])
    fork = ident.make_rotation(base, KEYS[1].sign, new_key=PUB[1], next_key=PUB[2], created=T0 + 99)
    book = LogBook()
    book.add_event(events[0].bytes)
    book.add_event(events[1].bytes)
    (report,) = book.add_event(fork.bytes)
    assert isinstance(report, Duplicity)
    assert (report.identity, report.seq) == (events[0].cid, 1)
    assert (report.first, report.second) == (events[1].cid, fork.cid)
    assert report.evidence == (events[1].bytes, fork.bytes)
    assert book.duplicity(events[0].cid) == report
    assert code_of(book.resolve, events[0].cid) == "duplicity"
    # Later events of the identity only repeat the report; nothing is picked.
    later = ident.make_rotation(book.state(events[0].cid), KEYS[2].sign, new_key=PUB[2], next_key=PUB[3],
                                created=T0 + 100)
    assert book.add_event(later.bytes) == [report]
    assert book.state(events[0].cid).seq == 1
    # The evidence convinces anyone holding the log before the fork.
    assert code_of(verify_log, [events[0].bytes, *report.evidence]) == "duplicity"


def test_siblings_waiting_together_are_a_fork_when_their_parent_arrives():
    events = make_log(n_rotations=1)
    base = verify_log([events[0].bytes])
    fork = ident.make_rotation(base, KEYS[1].sign, new_key=PUB[1], next_key=PUB[2], created=T0 + 99)
    book = LogBook()
    assert isinstance(book.add_event(events[1].bytes)[0], Pending)
    assert isinstance(book.add_event(fork.bytes)[0], Pending)
    outcomes = book.add_event(events[0].bytes)
    assert [type(o) for o in outcomes] == [Accepted, Accepted, Duplicity]
    assert {outcomes[2].first, outcomes[2].second} == {events[1].cid, fork.cid}
    assert code_of(book.resolve, events[0].cid) == "duplicity"


def test_invalid_events_are_refused_and_released_ones_reported():
    events = make_log(n_rotations=1)
    book = LogBook()
    book.add_event(events[0].bytes)
    # Handed in directly: the error is raised, so the caller can act on the sender.
    stranger = signing_key("book-stranger")
    fields = fields_of(events[1].bytes)
    fields["sign_key"] = public(stranger)
    rogue = raw_event(fields, stranger)
    assert code_of(book.add_event, rogue) == "not-pre-committed"
    assert code_of(book.add_event, b"\xa0") == "malformed"
    # Waiting for its predecessor, then found invalid: reported as a value.
    fields = fields_of(make_log(n_rotations=2)[2].bytes)
    fields["sign_key"] = public(stranger)
    fields["prev"] = events[1].cid
    waiting = raw_event(fields, stranger)
    assert isinstance(book.add_event(waiting)[0], Pending)
    outcomes = book.add_event(events[1].bytes)
    assert isinstance(outcomes[0], Accepted)
    assert isinstance(outcomes[1], Rejected) and outcomes[1].code == "not-pre-committed"
    assert book.resolve(events[0].cid).head == events[1].cid


def test_an_event_linking_to_another_identity_is_a_broken_chain():
    events = make_log(n_rotations=1)
    other = witness()
    book = LogBook()
    book.add_event(events[0].bytes)
    book.add_event(other.bytes)
    fields = fields_of(events[1].bytes)
    fields["prev"] = other.cid
    assert code_of(book.add_event, raw_event(fields, KEYS[1])) == "broken-chain"


def test_waiting_events_are_bounded():
    book = LogBook(max_pending=3)
    logs = [make_log(keys=[signing_key(f"bound-{n}-{i}") for i in range(3)], n_rotations=1, peer=f"p{n}")
            for n in range(5)]
    for log in logs:
        assert isinstance(book.add_event(log[1].bytes)[0], Pending)
    assert len(book.missing()) == 3
    # The two oldest were dropped: their inceptions now release nothing.
    assert book.add_event(logs[0][0].bytes) == [Accepted(logs[0][0], verify_log([logs[0][0].bytes]))]
    assert len(book.add_event(logs[4][0].bytes)) == 2


def test_log_length_is_bounded():
    events = make_log(n_rotations=2)
    book = LogBook(max_log_events=2)
    book.add_event(events[0].bytes)
    book.add_event(events[1].bytes)
    assert code_of(book.add_event, events[2].bytes) == "too-large"
    # A full log still reports a fork.
    fork = ident.make_rotation(verify_log([events[0].bytes]), KEYS[1].sign, new_key=PUB[1], next_key=PUB[2],
                               created=T0 + 99)
    assert isinstance(book.add_event(fork.bytes)[0], Duplicity)


def test_the_exported_log_verifies():
    events = make_log(n_rotations=3)
    book = LogBook()
    for event in reversed(events):
        book.add_event(event.bytes)
    exported = [event.bytes for event in book.log(events[0].cid)]
    assert verify_log(exported, identity=events[0].cid) == book.resolve(events[0].cid)


# --- receipts ---------------------------------------------------------------------------------------


def test_receipts_verify_and_forged_ones_fail():
    events = make_log(n_rotations=1)
    w = witness()
    wkey = public(WITNESS_KEYS[0])
    receipt = ident.make_receipt(WITNESS_KEYS[0].sign, events[1].cid, signer=w.cid, signer_key=wkey)
    assert (receipt.event, receipt.signer) == (events[1].cid, w.cid)
    assert ident.verify_receipt(receipt.bytes, wkey) == receipt
    assert ident.verify_receipt(receipt, wkey) == receipt
    # Signed by someone else, claimed for the witness.
    draft = ident.prepare_receipt(events[1].cid, signer=w.cid, signer_key=wkey)
    forged = ident.make_receipt(KEYS[0].sign, events[1].cid, signer=w.cid, signer_key=PUB[0])
    assert code_of(ident.verify_receipt, forged.bytes, wkey) == "bad-signature"
    assert code_of(draft.finish, KEYS[0].sign(draft.to_be_signed)) == "bad-signature"
    assert code_of(draft.finish, b"short") == "bad-signature"
    # A valid receipt moved to another event or another witness.
    assert ident.parse_receipt(receipt.bytes) == receipt
    value = dag_cbor.decode(receipt.bytes)
    value["event"] = CID.decode(events[0].cid)
    assert code_of(ident.verify_receipt, dag_cbor.encode(value), wkey) == "bad-signature"
    value = dag_cbor.decode(receipt.bytes)
    value["v"] = 2
    assert code_of(ident.parse_receipt, dag_cbor.encode(value)) == "unsupported-version"
    del value["v"]
    assert code_of(ident.parse_receipt, dag_cbor.encode(value)) == "malformed"
    assert code_of(ident.parse_receipt, b"\xa0" * 600) == "too-large"
    assert code_of(ident.verify_receipt, receipt.bytes, b"short") == "malformed"
    assert code_of(ident.prepare_receipt, "not a cid", signer=w.cid, signer_key=wkey) == "malformed"


def test_the_book_keeps_receipts_from_identities_it_trusts():
    events = make_log(n_rotations=1)
    w = witness()
    wkey = public(WITNESS_KEYS[0])
    receipt = ident.make_receipt(WITNESS_KEYS[0].sign, events[1].cid, signer=w.cid, signer_key=wkey)
    book = LogBook()
    # The witness is unknown, so the book has no key to check it with ...
    assert code_of(book.add_receipt, receipt.bytes) == "unknown-identity"
    # ... unless the caller passes the key it trusts.
    assert book.add_receipt(receipt.bytes, signer_key=wkey) == receipt
    assert book.receipts(events[1].cid) == (receipt,)
    assert code_of(book.add_receipt, receipt.bytes, signer_key=PUB[0]) == "bad-signature"
    # With the witness's log in the book, its current key is used.
    book2 = LogBook()
    book2.add_event(w.bytes)
    for event in events:
        book2.add_event(event.bytes)
    assert book2.add_receipt(receipt.bytes) == receipt
    assert book2.add_receipt(receipt.bytes) == receipt  # one per witness and event
    assert book2.receipts(events[1].cid) == (receipt,) and book2.receipts(events[0].cid) == ()
    # A revoked witness receipts nothing any more.
    revocation = ident.make_revocation(
        book2.resolve(w.cid), WITNESS_KEYS[1].sign, next_key=public(WITNESS_KEYS[1]), created=T0 + 5
    )
    book2.add_event(revocation.bytes)
    late = ident.make_receipt(WITNESS_KEYS[0].sign, events[0].cid, signer=w.cid, signer_key=wkey)
    assert code_of(book2.add_receipt, late.bytes) == "revoked"


def test_receipts_of_unknown_events_are_bounded():
    book = LogBook(max_unmatched_receipts=2, max_receipts_per_event=2)
    w = witness()
    wkey = public(WITNESS_KEYS[0])
    logs = [make_log(keys=[signing_key(f"rc-{n}-{i}") for i in range(2)], n_rotations=0, peer=f"rc{n}")
            for n in range(3)]
    receipts = [
        ident.make_receipt(WITNESS_KEYS[0].sign, log[0].cid, signer=w.cid, signer_key=wkey) for log in logs
    ]
    book.add_event(logs[2][0].bytes)  # this event is known: its receipt does not count as unmatched
    for receipt in receipts:
        book.add_receipt(receipt.bytes, signer_key=wkey)
    assert book.receipts(logs[2][0].cid) == (receipts[2],)
    assert book.receipts(logs[0][0].cid) == (receipts[0],)
    extra = make_log(keys=[signing_key(f"rc-x-{i}") for i in range(2)], n_rotations=0, peer="rcx")[0]
    book.add_receipt(ident.make_receipt(WITNESS_KEYS[0].sign, extra.cid, signer=w.cid, signer_key=wkey).bytes,
                     signer_key=wkey)
    assert book.receipts(logs[0][0].cid) == ()  # the oldest unmatched receipt made room
    assert book.receipts(logs[2][0].cid) == (receipts[2],)
    # Per event: at most two witnesses here.
    more = []
    for n in range(2):
        k = signing_key(f"rc-w-{n}")
        signer = make_log(keys=[k, signing_key(f"rc-w-{n}-next")], n_rotations=0, peer=f"rcw{n}")[0].cid
        receipt = ident.make_receipt(k.sign, logs[2][0].cid, signer=signer, signer_key=public(k))
        more.append((receipt, public(k)))
    book.add_receipt(more[0][0].bytes, signer_key=more[0][1])
    assert code_of(book.add_receipt, more[1][0].bytes, signer_key=more[1][1]) == "too-large"
    assert book.add_receipt(receipts[2].bytes, signer_key=wkey) == receipts[2]  # already kept
    assert len(book.receipts(logs[2][0].cid)) == 2
