"""The ``dta.*`` API of a real node process, as a client and an admin see it.

One node per module (`milagro-node init`, then `milagro-node run` with its log in a file);
the tests share it, so each uses its own user IDs. The last test looks for every share
dealt here in the store file, its WAL, the log and the audit log.
"""

from __future__ import annotations

import base64
import json
import subprocess
import time

import pytest

from milagro_node.api_client import ApiCallError, connect
from milagro_node.core import hpke, ipld, mpin, mpin_wire
from testkit import BIN, clean_env, init_data_dir, stop

pytestmark = pytest.mark.slow

DEALT: list[bytes] = []  # every share opened by this module, for the last test


class DtaNode:
    def __init__(self, data_dir, proc, log):
        self.data_dir, self.proc, self.log = data_dir, proc, log
        self.url = json.loads((data_dir / "run.json").read_text())["api"]
        self.token = (data_dir / "admin.token").read_text().strip()


@pytest.fixture(scope="module")
def node(tmp_path_factory):
    root = tmp_path_factory.mktemp("dta-api")
    data_dir = init_data_dir(root / "node")
    log = root / "node.log"
    with open(log, "w") as stderr:  # a file, not a pipe: nobody reads it while the tests run
        proc = subprocess.Popen(
            [str(BIN / "milagro-node"), "run", "--data-dir", str(data_dir)], stdout=subprocess.PIPE, stderr=stderr,
            text=True, env=clean_env(MILAGRO_API_LISTEN="127.0.0.1:0", MILAGRO_P2P_LISTEN="/ip4/127.0.0.1/tcp/0",
                                     MILAGRO_API_REQUESTS_PER_SECOND="10000", MILAGRO_API_BURST="10000"))
    line = proc.stdout.readline()
    if "ready" not in line:
        proc.kill()
        raise AssertionError(f"node did not start: {line!r} {log.read_text()}")
    try:
        yield DtaNode(data_dir, proc, log)
    finally:
        assert stop(proc)[0] == 0


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


async def admin(node, method, **params):
    async with connect(node.url, token=node.token) as api:
        return await api.call(method, **params)


async def public(node, method, **params):
    async with connect(node.url) as api:
        return await api.call(method, **params)


async def refused(call) -> ApiCallError:
    with pytest.raises(ApiCallError) as caught:
        await call
    return caught.value


def code_of(error: ApiCallError) -> str:
    assert error.code == -32010, error  # a node error: the actor's code is in data
    return error.data["code"]


async def grant(node, user_id: str) -> str:
    return (await admin(node, "mpin.grant", id=user_id))["grant"]


async def sealed(node, method: str, purpose: str, user_id: str, permit_day: int | None = None, **params):
    """Call `method` with a fresh reply key; open the answer; return the share's point."""
    key = hpke.X25519SecretKey.generate()
    try:
        answer = await public(node, method, id=user_id, reply_key=b64(key.x25519_public), **params)
        if permit_day is not None:
            assert answer["day"] == permit_day
        info = mpin_wire.share_info(purpose, user_id, answer["dta"], permit_day)
        with mpin_wire.open_share(base64.b64decode(answer["sealed"]), key, info) as share:
            DEALT.append(share.reveal())
            return mpin.decode_g1(share.reveal())
    finally:
        key.close()


def enroll(node, user_id: str, grant_b64: str):
    return sealed(node, "dta.enroll", "client-share", user_id, grant=grant_b64)


def permit(node, user_id: str, day: int):
    return sealed(node, "dta.permit", "time-permit", user_id, day, day=day)


async def test_info_is_public_and_tells_the_dealers_clock(node):
    info = await public(node, "dta.info")
    assert info["identity"].startswith("bafy")
    assert abs(info["time"] - time.time()) < 5 and info["day"] == mpin.day_of(info["time"])


async def test_enrol_once_then_again_after_an_admin_reset(node):
    first = await enroll(node, "alice@example.org", await grant(node, "alice@example.org"))
    again = await refused(enroll(node, "alice@example.org", await grant(node, "alice@example.org")))
    assert code_of(again) == "dta-enrolled"
    unauthorised = await refused(public(node, "dta.reset", id="alice@example.org"))
    assert unauthorised.code == -32001
    assert await admin(node, "dta.reset", id="alice@example.org") == {}
    # The same share again: s_i·H(ID) depends only on the master share and the ID.
    assert await enroll(node, "alice@example.org", await grant(node, "alice@example.org")) == first


async def test_bad_grants_are_refused_with_their_own_codes_and_enrol_nobody(node):
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    good = base64.b64decode(await grant(node, "bob@example.org"))
    nonce = mpin_wire.parse_statement(good, kind=mpin_wire.GRANT).nonce
    tampered = good.replace(nonce, bytes([nonce[0] ^ 1]) + nonce[1:])
    assert tampered != good
    stranger = Ed25519PrivateKey.generate()
    draft = mpin_wire.prepare_statement(mpin_wire.GRANT, issuer=ipld.cid_for(b"stranger", "dag-cbor"),
                                        subject="bob@example.org", created=int(time.time()), ttl=600)
    forged = draft.finish(stranger.sign(draft.to_be_signed)).data
    cases = {
        "dta-grant-subject": await grant(node, "not-bob@example.org"),
        "mpin-wire-bad-signature": b64(tampered),
        "mpin-wire-malformed": b64(b"not a grant at all"),
        "dta-not-member": b64(forged),
    }
    for code, bad in cases.items():
        assert code_of(await refused(enroll(node, "bob@example.org", bad))) == code
    assert await enroll(node, "bob@example.org", b64(good))
    tail = await admin(node, "audit.tail", count=50)
    refusals = [e["detail"]["code"] for e in tail
                if e["action"] == "dta.enrol-refused" and e["detail"].get("subject") == "bob@example.org"]
    assert refusals == list(cases)


async def test_reply_keys_are_checked_before_anything_is_recorded(node):
    g = await grant(node, "carol@example.org")
    for bad in (b64(bytes(16)), "not base64!", None):
        error = await refused(public(node, "dta.enroll", id="carol@example.org", grant=g, reply_key=bad))
        assert error.code == -32602
    low_order = await refused(public(node, "dta.enroll", id="carol@example.org", grant=g, reply_key=b64(bytes(32))))
    assert code_of(low_order) == "mpin-wire-malformed"
    assert await enroll(node, "carol@example.org", g)


async def test_permits_for_today_and_tomorrow_only_and_not_when_revoked(node):
    user = "dave@example.org"
    today = (await public(node, "dta.info"))["day"]
    assert code_of(await refused(permit(node, user, today))) == "dta-not-enrolled"
    await enroll(node, user, await grant(node, user))
    assert await permit(node, user, today) != await permit(node, user, today + 1)
    for day in (today + 5, today - 1):
        assert code_of(await refused(permit(node, user, day))) == "dta-bad-day"
    assert (await refused(public(node, "dta.revoke", id=user))).code == -32001
    assert (await refused(admin(node, "dta.revoke", id=user, revoked="yes"))).code == -32602
    assert await admin(node, "dta.revoke", id=user) == {}
    assert code_of(await refused(permit(node, user, today))) == "dta-revoked"
    assert user in (await admin(node, "dta.status"))["revoked"]
    await admin(node, "dta.revoke", id=user, revoked=False)
    assert await permit(node, user, today)


async def test_status_is_for_admins_and_counts_what_was_dealt(node):
    assert (await refused(public(node, "dta.status"))).code == -32001
    before = await admin(node, "dta.status")
    assert set(before) == {"identity", "enrolled", "revoked", "issued", "mfa_served"}
    assert before["identity"] == (await public(node, "dta.info"))["identity"]
    await enroll(node, "erin@example.org", await grant(node, "erin@example.org"))
    await permit(node, "erin@example.org", (await public(node, "dta.info"))["day"])
    after = await admin(node, "dta.status")
    assert after["enrolled"] == before["enrolled"] + 1
    assert after["issued"] == {**before["issued"], "client-share": before["issued"]["client-share"] + 1,
                               "time-permit": before["issued"]["time-permit"] + 1}


async def test_issuances_are_audited_and_no_share_is_anywhere(node):
    user = "frank@example.org"  # everything the dealer audits, once more (the test may run alone)
    await enroll(node, user, await grant(node, user))
    code_of(await refused(enroll(node, user, await grant(node, user))))
    today = (await public(node, "dta.info"))["day"]
    await permit(node, user, today)
    code_of(await refused(permit(node, user, today + 5)))
    await admin(node, "dta.reset", id=user)
    await admin(node, "dta.revoke", id=user)
    tail = await admin(node, "audit.tail", count=1000)
    actions = {e["action"] for e in tail}
    assert {"dta.master-share-created", "dta.client-share", "dta.time-permit", "dta.enrol-reset",
            "dta.user-revoked", "dta.enrol-refused", "dta.permit-refused"} <= actions
    audited = json.dumps(tail)
    on_disk = b"".join(p.read_bytes() for p in node.data_dir.rglob("*") if p.is_file()) + node.log.read_bytes()
    assert DEALT
    for share in DEALT:
        assert share not in on_disk and share.hex().encode() not in on_disk and b64(share).encode() not in on_disk
        assert share.hex() not in audited and b64(share) not in audited
