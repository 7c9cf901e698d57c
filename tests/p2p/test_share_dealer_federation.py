"""The share dealer in a federation: three node processes over libp2p on 127.0.0.1.

node-1 is the only D-TA, node-2 an MFA node, node-3 a custody node. The MFA node's
server-secret share travels in an envelope; the test checks it against a client share
of the same D-TA with the core's own login check. Grants by other members are accepted;
a server-share request from a member without role mfa is refused and audited.
"""

from __future__ import annotations

import base64

import pytest
import trio

from devnetkit import Devnet, eventually, inbox
from milagro_node.core import hpke, mpin, mpin_wire
from milagro_node.core.mpin import ClientAttempt, LoginSession, SessionState

pytestmark = pytest.mark.slow

DTA, MFA, CUSTODY = 1, 2, 3
PIN = mpin.pin_from_digits("1357")


@pytest.fixture(scope="module")
def net(tmp_path_factory):
    net = Devnet(tmp_path_factory.mktemp("dealer-federation"), 3, node_roles=[("dta",), ("mfa",), ("custody",)])
    try:
        net.start_all()
        yield net
    finally:
        net.stop_all()


async def call(net, i: int, method: str, **params):
    async with net.api(i) as api:
        return await api.call(method, **params)


async def client_share(net, user_id: str, grant: str):
    key = hpke.X25519SecretKey.generate()
    try:
        async with net.api(DTA) as api:
            answer = await api.call("dta.enroll", id=user_id, grant=grant,
                                    reply_key=base64.b64encode(key.x25519_public).decode())
        info = mpin_wire.share_info("client-share", user_id, net.node(DTA).identity)
        with mpin_wire.open_share(base64.b64decode(answer["sealed"]), key, info) as share:
            return mpin.decode_g1(share.reveal())
    finally:
        key.close()


async def test_the_mfa_node_gets_the_server_share_that_matches_the_client_shares(net):
    with trio.fail_after(90):
        async def share_in_inbox():
            async with net.api(MFA) as api:
                return [row for row in await inbox(api)
                        if row["kind"] == mpin_wire.KIND_SERVER_SHARE and row["sender"] == net.node(DTA).identity]

        [row, *_] = await eventually(share_in_inbox, timeout=60, what="node-2 received node-1's server share")
        ss = mpin.decode_g2(mpin_wire.parse_server_share(base64.b64decode(row["payload"])))
        # The grant is node-2's: any member may grant an enrolment (dta.grant_issuers unset).
        grant = (await call(net, MFA, "mpin.grant", id="ivan@example.org"))["grant"]
        token = mpin.extract_pin(await client_share(net, "ivan@example.org", grant), b"ivan@example.org", PIN)
    attempt = ClientAttempt(token, b"ivan@example.org", PIN)
    session = LoginSession(ss, attempt.pass1, now=10, ttl=30)
    session.finish(attempt.respond(session.challenge(now=11)), now=12)
    assert session.state is SessionState.VERIFIED
    status = await call(net, DTA, "dta.status")
    assert status["mfa_served"] == [net.node(MFA).identity] and status["issued"]["server-share"] >= 1
    served = [e["detail"] for e in await call(net, DTA, "audit.tail", count=200) if e["action"] == "dta.server-share"]
    assert served and all(d["to"] == net.node(MFA).identity for d in served)


async def test_a_member_without_role_mfa_gets_no_server_share(net):
    with trio.fail_after(60):
        async def sent():  # until node-3 knows node-1's identity log
            try:
                return await call(net, CUSTODY, "envelope.send", to=[net.node(DTA).identity],
                                  kind=mpin_wire.KIND_SERVER_SHARE_REQUEST, payload="")
            except Exception:
                return None

        await eventually(sent, timeout=30, what="node-3 sent a server-share request")

        async def refused():
            tail = await call(net, DTA, "audit.tail", count=200)
            return [e["detail"] for e in tail if e["action"] == "dta.server-share-refused"
                    and e["detail"]["requester"] == net.node(CUSTODY).identity]

        [refusal, *_] = await eventually(refused, timeout=30, what="node-1 refused node-3's request")
    assert refusal["code"] == "dta-not-member"
    assert net.node(CUSTODY).identity not in (await call(net, DTA, "dta.status"))["mfa_served"]
    async with net.api(CUSTODY) as api:
        assert not [row for row in await inbox(api) if row["kind"] == mpin_wire.KIND_SERVER_SHARE]


async def test_a_custody_members_grant_enrols_at_the_dta(net):
    grant = (await call(net, CUSTODY, "mpin.grant", id="judy@example.org"))["grant"]
    assert await client_share(net, "judy@example.org", grant)
