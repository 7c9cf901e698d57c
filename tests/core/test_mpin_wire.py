"""The M-Pin wire core: signed statements (grants, assertions) and sealed shares."""

import pytest
from cryptography.hazmat.primitives.asymmetric import ed25519

from milagro_node.core import hpke, ipld, mpin_wire
from milagro_node.core.mpin_wire import ASSERTION, GRANT, WireError
from milagro_node.secret_memory import SecretBytes

ISSUER = ipld.cid_for(b"an inception event", "dag-cbor")
KEY = ed25519.Ed25519PrivateKey.from_private_bytes(bytes(range(32)))
PUBLIC = KEY.public_key().public_bytes_raw()


def grant(subject="alice@example.com", created=1_000_000, ttl=600, **extra):
    draft = mpin_wire.prepare_statement(GRANT, issuer=ISSUER, subject=subject, created=created, ttl=ttl,
                                        extra=extra or None)
    return draft.finish(KEY.sign(draft.to_be_signed))


def code_of(fn, *args, **kwargs) -> str:
    with pytest.raises(WireError) as refused:
        fn(*args, **kwargs)
    return refused.value.code


def test_a_grant_verifies_with_its_issuers_key_inside_its_window():
    statement = grant(purpose="enrol")
    checked = mpin_wire.verify_statement(statement.data, kind=GRANT, sign_key=PUBLIC, now=1_000_100)
    assert (checked.subject, checked.issuer, checked.extra) == ("alice@example.com", ISSUER, {"purpose": "enrol"})
    assert checked.cid == statement.cid and checked.cid.startswith("bafyrei")


@pytest.mark.parametrize(("now", "code"), [(1_000_600, "mpin-wire-expired"), (999_000, "mpin-wire-not-yet-valid")])
def test_outside_its_window_a_statement_is_refused(now, code):
    assert code_of(mpin_wire.verify_statement, grant().data, kind=GRANT, sign_key=PUBLIC, now=now) == code


def test_a_grant_is_not_an_assertion():
    assert code_of(mpin_wire.verify_statement, grant().data, kind=ASSERTION, sign_key=PUBLIC,
                   now=1_000_100) == "mpin-wire-bad-kind"


def test_another_key_or_any_changed_byte_is_refused():
    data = grant().data
    other = ed25519.Ed25519PrivateKey.generate().public_key().public_bytes_raw()
    assert code_of(mpin_wire.verify_statement, data, kind=GRANT, sign_key=other, now=1_000_100) == \
        "mpin-wire-bad-signature"
    codes = set()
    for i in range(len(data)):
        tampered = bytearray(data)
        tampered[i] ^= 0x01
        codes.add(code_of(mpin_wire.verify_statement, bytes(tampered), kind=GRANT, sign_key=PUBLIC, now=1_000_100))
    assert codes <= {"mpin-wire-malformed", "mpin-wire-bad-signature", "mpin-wire-bad-kind", "mpin-wire-bad-user-id",
                     "mpin-wire-expired", "mpin-wire-not-yet-valid"}


@pytest.mark.parametrize("data", [b"", b"\xa0", b"x" * 5000, "text", None, ipld.encode({"v": 2})])
def test_garbage_is_malformed(data):
    assert code_of(mpin_wire.parse_statement, data, kind=GRANT) == "mpin-wire-malformed"


@pytest.mark.parametrize("user_id", ["", "a\x00b", "x" * 257, "e\u0301", 7])
def test_bad_user_ids(user_id):
    assert code_of(mpin_wire.check_user_id, user_id) == "mpin-wire-bad-user-id"


def test_statements_refuse_bad_ttls_and_reserved_fields():
    for ttl in (0, mpin_wire.MAX_TTL + 1):
        assert code_of(mpin_wire.prepare_statement, GRANT, issuer=ISSUER, subject="a", created=1, ttl=ttl) == \
            "mpin-wire-malformed"
    assert code_of(mpin_wire.prepare_statement, GRANT, issuer=ISSUER, subject="a", created=1, ttl=60,
                   extra={"subject": "b"}) == "mpin-wire-malformed"
    assert code_of(mpin_wire.prepare_statement, GRANT, issuer="not a cid", subject="a", created=1, ttl=60) == \
        "mpin-wire-malformed"


def test_a_sealed_share_opens_only_for_its_purpose_user_dta_and_day():
    client = hpke.X25519SecretKey.generate()
    share = bytes(range(48))
    info = mpin_wire.share_info("time-permit", "alice", ISSUER, 20000)
    sealed = mpin_wire.seal_share(client.x25519_public, info, SecretBytes.copy_from(share))
    with mpin_wire.open_share(sealed, client, info) as opened:
        assert opened.reveal() == share
    for other in (mpin_wire.share_info("time-permit", "alice", ISSUER, 20001),
                  mpin_wire.share_info("time-permit", "bob", ISSUER, 20000),
                  mpin_wire.share_info("client-share", "alice", ISSUER)):
        assert code_of(mpin_wire.open_share, sealed, client, other) == "mpin-wire-sealed"
    assert code_of(mpin_wire.open_share, sealed, hpke.X25519SecretKey.generate(), info) == "mpin-wire-sealed"
    assert code_of(mpin_wire.open_share, sealed[:40], client, info) == "mpin-wire-sealed"
    assert code_of(mpin_wire.seal_share, b"short", info, SecretBytes.copy_from(share)) == "mpin-wire-malformed"


def test_server_share_bodies():
    share = bytes(96)
    assert mpin_wire.parse_server_share(mpin_wire.server_share_body(share)) == share
    for body in (b"", ipld.encode({"v": 1, "share": b"x"}), ipld.encode([1])):
        assert code_of(mpin_wire.parse_server_share, body) == "mpin-wire-malformed"


def test_a_finished_statement_is_what_parsing_its_bytes_gives():
    statement = grant(purpose="enrol", n=3)
    assert mpin_wire.parse_statement(statement.data, kind=GRANT) == statement


def batch(n, signer=KEY, subject="user"):
    drafts = [mpin_wire.prepare_statement(ASSERTION, issuer=ISSUER, subject=f"{subject}-{i}", created=1_000_000,
                                          ttl=60) for i in range(n)]
    message, proofs = mpin_wire.batch_signing_input(drafts)
    signature = signer.sign(message)
    return [d.finish(signature, proof) for d, proof in zip(drafts, proofs)]


def verify_assertion(data):
    return mpin_wire.verify_statement(data, kind=ASSERTION, sign_key=PUBLIC, now=1_000_001)


@pytest.mark.parametrize("n", [1, 2, 3, 7, mpin_wire.MAX_BATCH])
def test_every_statement_of_a_batch_verifies_on_its_own(n):
    statements = batch(n)
    for i, statement in enumerate(statements):
        checked = verify_assertion(statement.data)
        assert checked.subject == f"user-{i}" and checked == statement
        assert ("batch" in ipld.decode(statement.data)) == (n > 1)  # one alone: the plain form
        assert mpin_wire.parse_statement(statement.data, kind=ASSERTION) == statement


def test_a_batch_member_with_its_proof_changed_moved_or_dropped_is_refused():
    statements = batch(5)
    fields = ipld.decode(statements[1].data)
    index, size, path = fields["batch"]
    forgeries = [
        {**fields, "batch": [index + 1, size, path]},  # another place
        {**fields, "batch": [index, size + 1, path]},  # another tree
        {**fields, "batch": [index, size, path[:-1]]},  # a short path
        {**fields, "batch": [index, size, [bytes(32)] + path[1:]]},  # another sibling
        {k: v for k, v in fields.items() if k != "batch"},  # the root's signature, as the statement's
        {**fields, "subject": "user-2"},  # another member's subject under this one's proof
        {**ipld.decode(statements[2].data), "sig": fields["sig"], "batch": fields["batch"]},
    ]
    for forged in forgeries:
        assert code_of(verify_assertion, ipld.encode(forged)) in {"mpin-wire-bad-signature", "mpin-wire-malformed"}


@pytest.mark.parametrize("field", [[0, 1, []], [0, mpin_wire.MAX_BATCH + 1, []], [2, 2, []], [0, 2, [b"x"]],
                                   [0, 2, [bytes(32)] * 7], [True, 2, []], [0, 2], "batch"])
def test_a_malformed_batch_field_is_refused(field):
    fields = {**ipld.decode(batch(2)[0].data), "batch": field}
    assert code_of(mpin_wire.parse_statement, ipld.encode(fields), kind=ASSERTION) == "mpin-wire-malformed"


def test_batches_hold_one_to_max_batch_and_the_largest_member_fits_the_size_limit():
    for n in (0, mpin_wire.MAX_BATCH + 1):
        draft = mpin_wire.prepare_statement(ASSERTION, issuer=ISSUER, subject="a", created=1, ttl=60)
        assert code_of(mpin_wire.batch_signing_input, [draft] * n) == "mpin-wire-malformed"
    statements = batch(mpin_wire.MAX_BATCH, subject="u" * (mpin_wire.MAX_USER_ID_BYTES - 3))
    assert max(len(s.data) for s in statements) <= mpin_wire.MAX_STATEMENT_BYTES
    assert verify_assertion(statements[-1].data).subject.endswith("-63")


def test_a_grants_device_key_is_96_bytes_or_absent():
    assert mpin_wire.grant_device_key(grant()) is None
    assert mpin_wire.grant_device_key(grant(device_key=b"\x02" * 96)) == b"\x02" * 96
    for bad in (b"\x02" * 95, "a string", 7):
        assert code_of(mpin_wire.grant_device_key, grant(device_key=bad)) == "mpin-wire-malformed"
