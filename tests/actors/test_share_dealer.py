"""The share dealer inside a whole node in this process, asked by message.

Real parts: a data dir made by `milagro-node init` (SoftHSM token, SQLite store, identity
in the HSM) and every actor of `actor_specs`. Asking by message reaches what the API does
not: `ServerShare`, an `EnvelopeArrived` from the router, and grants signed here with
times the API would not sign (expired, future). The API itself: test_share_dealer_api.py.
"""

from __future__ import annotations

import base64
import time

import pytest
import trio
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from actors.keystore import KeystoreClient
from actors.messages import (
    AuditTail, DealerStatus, EnrolClient, EnvelopeArrived, IssuePermit, OwnLog, ResetEnrolment, ServerShare,
    SetUserRevoked,
)
from actors.mpin_grants import issue_statement
from actors.node_identity import sign_key_id
from actors.share_dealer.records import Stats, Throttle
from milagro_node.core import hpke, ipld, mpin, mpin_wire
from milagro_node.core.mpin import ClientAttempt, LoginSession, SessionState
from milagro_node.runtime.node import Node
from testkit import in_process_config, init_data_dir, refused

PIN = mpin.pin_from_digits("2580")


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
    return init_data_dir(tmp_path_factory.mktemp("dealer") / "node")


@pytest.fixture
async def node(nursery, data_dir):
    return await nursery.start(Node(in_process_config(data_dir)).run)


async def grant(node, user_id: str, *, created: int | None = None, ttl: int = 600) -> bytes:
    """A grant by this node; `created` backdates (or postdates) it, which mpin.grant never does."""
    if created is None:
        return (await issue_statement(node.supervisor, mpin_wire.GRANT, user_id, ttl)).data
    _, me = await node.supervisor.ask("pki-resolver", OwnLog())
    draft = mpin_wire.prepare_statement(mpin_wire.GRANT, issuer=me.identity, subject=user_id, created=created,
                                        ttl=ttl)
    return draft.finish(await KeystoreClient(node.supervisor).sign(sign_key_id(me.seq), draft.to_be_signed)).data


async def enrol(node, user_id: str, grant_data: bytes):
    key = hpke.X25519SecretKey.generate()
    try:
        answer = await node.supervisor.ask("share-dealer", EnrolClient(user_id, grant_data, key.x25519_public))
        info = mpin_wire.share_info("client-share", user_id, answer["dta"])
        with mpin_wire.open_share(answer["sealed"], key, info) as share:
            return mpin.decode_g1(share.reveal())
    finally:
        key.close()


async def permit(node, user_id: str, day: int):
    key = hpke.X25519SecretKey.generate()
    try:
        answer = await node.supervisor.ask("share-dealer", IssuePermit(user_id, day, key.x25519_public))
        assert answer["day"] == day
        with mpin_wire.open_share(answer["sealed"], key,
                                  mpin_wire.share_info("time-permit", user_id, answer["dta"], day)) as share:
            return mpin.decode_g1(share.reveal())
    finally:
        key.close()


async def server_secret(node):
    with await node.supervisor.ask("share-dealer", ServerShare()) as share:
        return mpin.decode_g2(share.reveal())


def logs_in(token, user_id: str, server_secret, *, permit=None, day=None) -> bool:
    attempt = ClientAttempt(token, user_id.encode(), PIN, permit=permit, day=day)
    session = LoginSession(server_secret, attempt.pass1, now=100, ttl=30, day=day)
    try:
        session.finish(attempt.respond(session.challenge(now=101)), now=102)
    except mpin.MpinError:
        return False
    return session.state is SessionState.VERIFIED


async def actions(node, count=50):
    return [(e.action, e.detail) for e in await node.supervisor.ask("store", AuditTail(count))]


async def test_one_dtas_share_logs_in_against_its_server_share(node):
    # A federation of one D-TA: this node's share is the whole client secret.
    share = await enrol(node, "alice@example.org", await grant(node, "alice@example.org"))
    token = mpin.extract_pin(share, b"alice@example.org", PIN)
    ss = await server_secret(node)
    assert logs_in(token, "alice@example.org", ss)
    assert not logs_in(mpin.extract_pin(share, b"alice@example.org", PIN + 1), "alice@example.org", ss)
    # The same with today's permit, the way an MFA node with time permits checks it.
    today = mpin.day_of(time.time())
    tp = await permit(node, "alice@example.org", today)
    assert logs_in(token, "alice@example.org", ss, permit=tp, day=today)
    tomorrow = await permit(node, "alice@example.org", today + 1)
    assert not logs_in(token, "alice@example.org", ss, permit=tomorrow, day=today)


async def test_master_share_and_counters_survive_a_restart(nursery, data_dir):
    async with trio.open_nursery() as first:
        node = await first.start(Node(in_process_config(data_dir)).run)
        ss = await server_secret(node)
        await enrol(node, "restart@example.org", await grant(node, "restart@example.org"))
        before = await node.supervisor.ask("share-dealer", DealerStatus())
        first.cancel_scope.cancel()
    node = await nursery.start(Node(in_process_config(data_dir)).run)
    assert await server_secret(node) == ss  # the share was kept, not made again
    after = await node.supervisor.ask("share-dealer", DealerStatus())
    assert after["enrolled"] == before["enrolled"]
    assert after["issued"]["client-share"] == before["issued"]["client-share"]
    assert after["issued"]["server-share"] == before["issued"]["server-share"] + 1
    await refused(enrol(node, "restart@example.org", await grant(node, "restart@example.org")), "dta-enrolled")
    created = [a for a, _ in await actions(node, 500) if a == "dta.master-share-created"]
    assert len(created) == 1


async def test_grants_outside_their_time_window_are_refused(node):
    now = int(time.time())
    await refused(enrol(node, "late@example.org", await grant(node, "late@example.org", created=now - 7200, ttl=60)),
                  "mpin-wire-expired")
    await refused(enrol(node, "late@example.org", await grant(node, "late@example.org", created=now + 3600)),
                  "mpin-wire-not-yet-valid")
    # Nothing was recorded: a grant that is valid now enrols.
    assert await enrol(node, "late@example.org", await grant(node, "late@example.org"))
    refusals = [d for a, d in await actions(node) if a == "dta.enrol-refused" and d["subject"] == "late@example.org"]
    assert [d["code"] for d in refusals] == ["mpin-wire-expired", "mpin-wire-not-yet-valid"]


def forged_grant(user_id: str, issuer: str) -> bytes:
    """A well-formed grant by `issuer`, signed with a key nobody's log names."""
    draft = mpin_wire.prepare_statement(mpin_wire.GRANT, issuer=issuer, subject=user_id, created=int(time.time()),
                                        ttl=600)
    return draft.finish(Ed25519PrivateKey.generate().sign(draft.to_be_signed)).data


async def test_a_grant_by_an_identity_nobody_pinned_is_refused(node):
    issuer = ipld.cid_for(b"an identity this federation never heard of", "dag-cbor")
    error = await refused(enrol(node, "mallory", forged_grant("mallory", issuer)), "dta-not-member")
    assert issuer in error.message and "members" in error.message


async def test_configured_grant_issuers_still_accept_this_node(nursery, data_dir):
    other = ipld.cid_for(b"some other member", "dag-cbor")
    node = await nursery.start(Node(in_process_config(data_dir, MILAGRO_DTA_GRANT_ISSUERS=other)).run)
    assert await enrol(node, "issuers@example.org", await grant(node, "issuers@example.org"))
    stranger = ipld.cid_for(b"not among the configured issuers", "dag-cbor")
    error = await refused(enrol(node, "oscar", forged_grant("oscar", stranger)), "dta-not-member")
    assert "dta.grant_issuers" in error.message
    # A configured issuer must still resolve (pinned, not revoked): this one is pinned nowhere.
    error = await refused(enrol(node, "oscar", forged_grant("oscar", other)), "dta-not-member")
    assert "not-a-member" in error.message


async def test_revocation_and_reset(node):
    user = "revoke@example.org"
    today = mpin.day_of(time.time())
    await refused(permit(node, user, today), "dta-not-enrolled")
    await enrol(node, user, await grant(node, user))
    await node.supervisor.ask("share-dealer", SetUserRevoked(user, True))
    await refused(permit(node, user, today), "dta-revoked")
    await node.supervisor.ask("share-dealer", ResetEnrolment(user))
    await refused(enrol(node, user, await grant(node, user)), "dta-revoked")  # revoked bars enrolment too
    status = await node.supervisor.ask("share-dealer", DealerStatus())
    assert user in status["revoked"]
    await node.supervisor.ask("share-dealer", SetUserRevoked(user, False))
    await enrol(node, user, await grant(node, user))
    assert await permit(node, user, today)
    assert user not in (await node.supervisor.ask("share-dealer", DealerStatus()))["revoked"]
    for day in (today - 1, today + 2, -1, True):
        await refused(permit(node, user, day), "dta-bad-day")


async def test_server_share_requests_from_non_members_are_refused_and_audited(node):
    stranger = ipld.cid_for(b"not an mfa member", "dag-cbor")
    request = EnvelopeArrived("bafy-test", stranger, mpin_wire.KIND_SERVER_SHARE_REQUEST, 0, b"")
    dealer = node.supervisor.mailboxes["share-dealer"]
    for _ in range(3):  # repeats inside the window are dropped before any work
        await dealer.tell(request)
    await dealer.tell(EnvelopeArrived("bafy-other", stranger, "dta.something-else", 1, b""))

    async def refusals():
        return [d["code"] for a, d in await actions(node)
                if a == "dta.server-share-refused" and d["requester"] == stranger]

    with trio.fail_after(5):
        while not await refusals():  # a tell has no reply to wait for
            await trio.sleep(0.01)
    await trio.sleep(0.2)
    assert await refusals() == ["dta-not-member"]
    assert stranger not in (await node.supervisor.ask("share-dealer", DealerStatus()))["mfa_served"]


async def test_status_counts_and_audit_hold_no_share(node):
    user = "count@example.org"
    before = await node.supervisor.ask("share-dealer", DealerStatus())
    share = await enrol(node, user, await grant(node, user))
    tp = await permit(node, user, mpin.day_of(time.time()))
    after = await node.supervisor.ask("share-dealer", DealerStatus())
    assert after["issued"]["client-share"] == before["issued"]["client-share"] + 1
    assert after["issued"]["time-permit"] == before["issued"]["time-permit"] + 1
    assert after["enrolled"] == before["enrolled"] + 1
    _, me = await node.supervisor.ask("pki-resolver", OwnLog())
    assert after["identity"] == me.identity
    audited = repr(await actions(node, 200))
    for point in (share, tp):
        raw = point.to_bytes()
        assert raw.hex() not in audited and base64.b64encode(raw).decode() not in audited


def test_throttle_answers_once_per_window():
    now = [0.0]
    throttle = Throttle(5.0, clock=lambda: now[0])
    assert throttle.allow("a") and throttle.allow("b")
    now[0] = 4.9
    assert not throttle.allow("a")
    now[0] = 5.0
    assert throttle.allow("a")


def test_stats_round_trip():
    stats = Stats().counted("server-share", "bafy-mfa").counted("client-share")
    again = Stats.decode(stats.encode())
    assert again == stats and again.issued == {"client-share": 1, "time-permit": 0, "server-share": 1}
    assert Stats.decode(None) == Stats()
