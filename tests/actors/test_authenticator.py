"""The authenticator in a real node process (SoftHSM, SQLite, worker processes), over the API.

A default node (no peers.toml) has every role, so it is its own single D-TA: its
authenticator gets s·Q from its own share-dealer. Users enrol with ``dta.enroll`` and fetch
permits with ``dta.permit`` like the client library does; logins are built here from the
M-Pin core, so a test can bend any value (a wrong day, a replay, a bad point).
"""

import base64
import json
import os
import signal
import subprocess
import time

import pytest
import trio

from milagro_node.api_client import ApiCallError, connect
from milagro_node.core import hpke, ipld, jsonrpc, mpin, mpin_wire
from testkit import BIN, clean_env, clear_of_midnight, start_node, stop

pytestmark = pytest.mark.slow

MAX_FAILURES = 3
LOCKOUT_SECONDS = 2
SESSION_SECONDS = 2
PIN = 1234


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def unb64(text: str) -> bytes:
    return base64.b64decode(text, validate=True)


def init(path, extra_env=None):
    result = subprocess.run([str(BIN / "milagro-node"), "init", "--data-dir", str(path)], capture_output=True,
                            text=True, timeout=60, env=clean_env(**(extra_env or {})))
    assert result.returncode == 0, result.stderr
    shown = subprocess.run([str(BIN / "milagro-node"), "identity", "show", "--json", "--data-dir", str(path)],
                           capture_output=True, text=True, timeout=60, env=clean_env())
    assert shown.returncode == 0, shown.stderr
    return json.loads(shown.stdout)


class Node:
    def __init__(self, path, proc, identity):
        self.path, self.proc, self.identity = path, proc, identity
        self.url = json.loads((path / "run.json").read_text())["api"]
        self.token = (path / "admin.token").read_text().strip()
        self.sign_key = bytes.fromhex(identity["sign_key"])


@pytest.fixture(scope="module")
def node(tmp_path_factory):
    path = tmp_path_factory.mktemp("mfa") / "node"
    identity = init(path)
    proc = start_node(path, MILAGRO_MFA_MAX_FAILURES=str(MAX_FAILURES),
                      MILAGRO_MFA_LOCKOUT_SECONDS=str(LOCKOUT_SECONDS),
                      MILAGRO_MFA_SESSION_SECONDS=str(SESSION_SECONDS),
                      MILAGRO_API_REQUESTS_PER_SECOND="10000", MILAGRO_API_BURST="10000")
    workers = []
    try:
        the_node = Node(path, proc, identity)
        trio.run(_wait_ready, the_node)
        yield the_node
        workers = trio.run(_worker_pids, the_node)
    finally:
        code, took = stop(proc)
    assert code == 0 and took < 5
    assert len(workers) == 3  # two checkers ([mfa] workers = 2) and the typo worker
    for pid in workers:  # the worker processes stopped with the node
        with pytest.raises(ProcessLookupError):
            os.kill(pid, 0)
    stderr = proc.stderr.read()
    assert "Traceback" not in stderr, stderr[-3000:]


async def _worker_pids(node):
    async with connect(node.url, token=node.token) as api:
        status = await api.call("node.status")
    return next(a for a in status["actors"] if a["name"] == "authenticator")["workers"]


async def _wait_ready(node):
    deadline = time.monotonic() + 20
    async with connect(node.url) as api:
        while not (await api.call("mfa.info"))["ready"]:
            assert time.monotonic() < deadline, "the authenticator never got its server secret"
            await trio.sleep(0.1)


# --------------------------------------------------------------------------- a client, from the core


class User:
    """An enrolled user: the token (CS − PIN·A) and the D-TA that dealt its one share; for a
    DVS user also its device key and the grant that names it."""

    def __init__(self, user_id, token, dta, device=None, grant=None):
        self.user_id, self.token, self.dta = user_id, token, dta
        self.device, self.grant = device, grant
        self.identity = user_id.encode() if device is None else mpin.dvs_identity(user_id.encode(), device.pa)
        self.login_params = {} if grant is None else {"grant": b64(grant)}

    async def permit(self, api, day):
        return await _sealed(api, "dta.permit", "time-permit", self.user_id, day, {"id": self.user_id, "day": day})

    async def attempt(self, api, pin=PIN, *, day=None, permit_day=None):
        info = await api.call("mfa.info")
        day = info["day"] if day is None else day
        permit = await self.permit(api, day if permit_day is None else permit_day)
        return mpin.ClientAttempt(self.token, self.identity, pin, permit=permit, day=day,
                                  dvs_z=None if self.device is None else self.device.z)


async def _sealed(api, method, purpose, user_id, day, params):
    key = hpke.X25519SecretKey.generate()
    try:
        reply = await api.call(method, reply_key=b64(key.x25519_public), **params)
        info = mpin_wire.share_info(purpose, user_id, reply["dta"], day)
        with mpin_wire.open_share(unb64(reply["sealed"]), key, info) as share:
            return mpin.decode_g1(share.reveal())
    finally:
        key.close()


async def enrol(node, api, user_id, pin=PIN, device=None):
    """Enrol `user_id` (with a `mpin.DvsKey` `device`: key-escrow-less) at the node's D-TA."""
    extra = {} if device is None else {"device_key": b64(device.pa.to_bytes())}
    grant = await api.call("mpin.grant", id=user_id, **extra)
    key = hpke.X25519SecretKey.generate()
    reply = await api.call("dta.enroll", id=user_id, grant=grant["grant"], reply_key=b64(key.x25519_public))
    assert reply["dta"] == node.identity["identity"]
    with mpin_wire.open_share(unb64(reply["sealed"]), key,
                              mpin_wire.share_info("client-share", user_id, reply["dta"])) as share:
        cs = mpin.decode_g1(share.reveal())
    key.close()
    user = User(user_id, None, reply["dta"], device, None if device is None else unb64(grant["grant"]))
    user.token = mpin.extract_pin(cs, user.identity, pin, dvs_z=None if device is None else device.z)
    return user


async def pass1(api, attempt, user_id, **params):
    p1 = attempt.pass1
    return await api.call("mfa.pass1", id=user_id, u=b64(p1.u.to_bytes()), ut=b64(p1.ut.to_bytes()), **params)


async def login(api, user, pin=PIN, stated_day=None, **kw):
    attempt = await user.attempt(api, pin, **kw)
    challenge = await pass1(api, attempt, user.user_id, **user.login_params,
                            **({} if stated_day is None else {"day": stated_day}))
    v = attempt.respond(int.from_bytes(unb64(challenge["y"]), "big"))
    return await api.call("mfa.pass2", session=challenge["session"], v=b64(v.to_bytes()))


async def refused(call, code):
    with pytest.raises(ApiCallError) as caught:
        await call
    assert (caught.value.data or {}).get("code") == code, (caught.value.message, caught.value.data)
    return caught.value


async def audit(api, count=10):
    return [e["detail"] | {"action": e["action"]} for e in await api.call("audit.tail", count=count)
            if e["action"].startswith("mfa.")]


# --------------------------------------------------------------------------- tests


async def test_info_and_a_right_pin_gives_a_verifiable_assertion(node):
    async with connect(node.url, token=node.token) as api:
        info = await api.call("mfa.info")
        me = node.identity["identity"]
        assert info["identity"] == me and info["ready"] is True
        assert info["dtas"] == info["have"] == [me]
        assert info["time_permits"] is True and info["day"] == mpin.day_of(info["time"])
        assert abs(info["time"] - time.time()) < 5

        user = await enrol(node, api, "alice@example.com")
        reply = await login(api, user)
        assert reply["mfa"] == me
        statement = mpin_wire.verify_statement(unb64(reply["assertion"]), kind=mpin_wire.ASSERTION,
                                               sign_key=node.sign_key, now=int(time.time()))
        assert statement.subject == "alice@example.com" and statement.issuer == me
        assert statement.expires == reply["expires"] and statement.extra["method"] == "mpin-2pass"
        assert len(statement.extra["session"]) >= 22
        [entry] = (await audit(api, 3))[-1:]
        assert entry["action"] == "mfa.login" and entry["result"] == "ok" and entry["subject"] == "alice@example.com"
        assert entry["assertion"] == statement.cid and entry["session"] == statement.extra["session"]


async def test_wrong_pin_is_refused_counted_and_told_apart_from_a_typo(node):
    async with connect(node.url, token=node.token) as api:
        user = await enrol(node, api, "bob@example.com")
        error = await refused(login(api, user, 1243), "mfa-refused")  # two digits swapped
        assert f"{MAX_FAILURES - 1} attempts left" in error.message
        error = await refused(login(api, user, 9876), "mfa-refused")  # a guess
        assert "1 attempt left" in error.message
        entries = [e for e in await audit(api) if e["action"] == "mfa.login"][-2:]
        assert [(e["result"], e["typo"], e["failures"]) for e in entries] == [("refused", True, 1),
                                                                               ("refused", False, 2)]
        assert not any("assertion" in e for e in entries)  # the one signed meanwhile was dropped
        await login(api, user)  # a success resets the count
        error = await refused(login(api, user, 1111), "mfa-refused")
        assert f"{MAX_FAILURES - 1} attempts left" in error.message
        await login(api, user)


async def test_lockout_after_max_failures_admin_unlock_and_time_unlock(node):
    async with connect(node.url, token=node.token) as api:
        carol = await enrol(node, api, "carol@example.com")
        for _ in range(MAX_FAILURES - 1):
            await refused(login(api, carol, 1111), "mfa-refused")
        error = await refused(login(api, carol, 1111), "mfa-locked")  # this failure locked it
        assert "until 20" in error.message
        await refused(login(api, carol), "mfa-locked")  # the right PIN too, at pass 1
        status = await api.call("mfa.status")
        assert {"user_id": "carol@example.com", "failures": MAX_FAILURES}.items() <= \
            next(r for r in status["locked"] if r["user_id"] == "carol@example.com").items()
        assert await api.call("mfa.unlock", id="carol@example.com") == {}
        await login(api, carol)
        assert "carol@example.com" not in [r["user_id"] for r in (await api.call("mfa.status"))["locked"]]

        dave = await enrol(node, api, "dave@example.com")
        for _ in range(MAX_FAILURES):
            await refused(login(api, dave, 2222), "mfa-refused" if _ < MAX_FAILURES - 1 else "mfa-locked")
        await trio.sleep(LOCKOUT_SECONDS + 0.5)
        await login(api, dave)  # the lockout ran out
        error = await refused(login(api, dave, 2222), "mfa-refused")
        assert f"{MAX_FAILURES - 1} attempts left" in error.message  # and the count started again
        actions = [e["action"] for e in await audit(api, 40)]
        assert "mfa.unlock" in actions


async def test_parallel_pass2s_cannot_buy_more_guesses_than_max_failures(node):
    async with connect(node.url, token=node.token) as api:
        erin = await enrol(node, api, "erin@example.com")
        attempts, challenges = [], []
        for _ in range(MAX_FAILURES + 3):
            attempt = await erin.attempt(api, 5555)
            attempts.append(attempt)
            challenges.append(await pass1(api, attempt, erin.user_id))
    codes = []

    async def finish(attempt, challenge):
        async with connect(node.url) as api:
            v = attempt.respond(int.from_bytes(unb64(challenge["y"]), "big"))
            try:
                await api.call("mfa.pass2", session=challenge["session"], v=b64(v.to_bytes()))
            except ApiCallError as exc:
                codes.append(exc.data["code"])

    async with trio.open_nursery() as nursery:
        for attempt, challenge in zip(attempts, challenges):
            nursery.start_soon(finish, attempt, challenge)
    assert codes.count("mfa-refused") == MAX_FAILURES - 1
    assert codes.count("mfa-locked") == len(attempts) - (MAX_FAILURES - 1)
    async with connect(node.url, token=node.token) as api:
        status = await api.call("mfa.status")
        [record] = [r for r in status["locked"] if r["user_id"] == "erin@example.com"]
        assert record["failures"] == MAX_FAILURES  # checked guesses, no more


async def test_replayed_pass2_unknown_and_expired_sessions(node):
    async with connect(node.url, token=node.token) as api:
        user = await enrol(node, api, "frank@example.com")
        attempt = await user.attempt(api)
        challenge = await pass1(api, attempt, user.user_id)
        assert challenge["expires"] >= time.time() + SESSION_SECONDS - 1
        v = b64(attempt.respond(int.from_bytes(unb64(challenge["y"]), "big")).to_bytes())
        await api.call("mfa.pass2", session=challenge["session"], v=v)
        await refused(api.call("mfa.pass2", session=challenge["session"], v=v), "mpin-used")
        await refused(api.call("mfa.pass2", session="no-such-session", v=v), "mfa-no-session")

        attempt = await user.attempt(api)
        challenge = await pass1(api, attempt, user.user_id)
        await trio.sleep(SESSION_SECONDS + 0.3)
        v = b64(attempt.respond(int.from_bytes(unb64(challenge["y"]), "big")).to_bytes())
        await refused(api.call("mfa.pass2", session=challenge["session"], v=v), "mpin-expired")
        results = [e["result"] for e in await audit(api, 4) if e["action"] == "mfa.login"]
        assert results[-3:] == ["used", "no-session", "expired"]
        await login(api, user)  # neither counted as a wrong PIN


async def test_permit_for_another_day_is_refused(node):
    async with connect(node.url, token=node.token) as api:
        user = await enrol(node, api, "grace@example.com")
        today = (await api.call("mfa.info"))["day"]
        # The client claims tomorrow and holds tomorrow's permit: the server uses its own day.
        await refused(login(api, user, day=today + 1), "mfa-refused")
        await refused(login(api, user, permit_day=today + 1), "mfa-refused")
        await login(api, user)


async def test_a_stated_permit_day_is_taken_if_it_is_today_and_refused_uncounted_if_not(node):
    await clear_of_midnight()
    async with connect(node.url, token=node.token) as api:
        user = await enrol(node, api, "midnight@example.com")
        today = (await api.call("mfa.info"))["day"]
        await login(api, user, stated_day=today)
        # Tomorrow's permit, said to be tomorrow's: refused before any check (outside the
        # minute around midnight, sessions.PERMIT_GRACE_S), and not a wrong PIN.
        for _ in range(MAX_FAILURES + 1):
            error = await refused(login(api, user, day=today + 1, stated_day=today + 1), "mfa-wrong-day")
            assert f"takes day {today}" in error.message
        one_pass = (await user.attempt(api, day=today + 1)).one_pass(int(time.time()))
        await refused(api.call("mfa.one_pass", id=user.user_id, u=b64(one_pass.pass1.u.to_bytes()),
                               ut=b64(one_pass.pass1.ut.to_bytes()), v=b64(one_pass.v.to_bytes()),
                               t=one_pass.t, day=today + 1), "mfa-wrong-day")
        entry = (await audit(api, 1))[-1]
        assert (entry["result"], entry["method"], entry["subject"]) == ("wrong-day", "mpin-1pass", user.user_id)
        bad = await refused(login(api, user, stated_day="today"), None)  # no node code: a bad param
        assert bad.code == jsonrpc.INVALID_PARAMS and "day" in bad.message
        await login(api, user)  # none of them counted


async def test_a_dvs_token_registers_its_device_key_and_no_key_the_dtas_choose_logs_in(node):
    """Key-escrow-less: the D-TAs together (here the node's own, its admin granting at will)
    can re-deal shares for another device key or for a plain token, yet neither logs in once
    the user's device key is registered."""
    async with connect(node.url, token=node.token) as api:
        device = mpin.DvsKey.generate()
        user = await enrol(node, api, "dvs@example.com", device=device)
        reply = await login(api, user)
        statement = mpin_wire.verify_statement(unb64(reply["assertion"]), kind=mpin_wire.ASSERTION,
                                               sign_key=node.sign_key, now=int(time.time()))
        assert statement.subject == user.user_id and statement.extra["device_key"] is True
        assert [e["action"] for e in await audit(api, 3)][-2:] == ["mfa.device-registered", "mfa.login"]
        assert (await api.call("mfa.status"))["devices"] >= 1
        attempt = await user.attempt(api)  # one-pass too
        proof = attempt.one_pass(int(time.time()))
        await api.call("mfa.one_pass", id=user.user_id, u=b64(attempt.pass1.u.to_bytes()),
                       ut=b64(attempt.pass1.ut.to_bytes()), v=b64(proof.v.to_bytes()), t=proof.t, grant=b64(user.grant))
        error = await refused(login(api, user, 1243), "mfa-refused")  # a wrong PIN is counted as ever
        assert f"{MAX_FAILURES - 1} attempts left" in error.message
        assert (await audit(api, 1))[-1]["typo"] is True

        # The D-TA re-deals for a device key of its admin's choosing, with a grant of its own.
        assert await api.call("dta.reset", id=user.user_id) == {}
        forged = await enrol(node, api, user.user_id, device=mpin.DvsKey.generate())
        for _ in range(MAX_FAILURES + 1):
            error = await refused(login(api, forged), "mfa-device-key")
            assert "mfa.reset_device" in error.message
        # ... or for a plain token.
        await api.call("dta.reset", id=user.user_id)
        plain = await enrol(node, api, user.user_id)
        await refused(login(api, plain), "mfa-device-required")
        assert [e["result"] for e in await audit(api, 2)][-1] == "device-required"

        # The user's own device still logs in: none of those refusals counted.
        await api.call("dta.reset", id=user.user_id)
        again = await enrol(node, api, user.user_id, device=device)
        await login(api, again)
        # A lost device: the admin forgets its key, and the next DVS login registers its own.
        assert await api.call("mfa.reset_device", id=user.user_id) == {"registered": True}
        assert await api.call("mfa.reset_device", id=user.user_id) == {"registered": False}
        await login(api, again)
        assert "mfa.device-reset" in [e["action"] for e in await audit(api, 10)]


async def test_a_grant_with_a_bad_device_key_is_not_issued(node):
    async with connect(node.url, token=node.token) as api:
        for key, why in ((b"\x01" * 96, "device_key"), (b"\xc0" + bytes(95), "identity")):
            error = await refused(api.call("mpin.grant", id="k@example.com", device_key=b64(key)), "mpin-bad-point")
            assert why in error.message and error.code == jsonrpc.INVALID_PARAMS
        await refused(api.call("mpin.grant", id="k@example.com", device_key=b64(bytes(95))), None)


async def test_revoked_user_is_refused_until_reinstated(node):
    async with connect(node.url, token=node.token) as api:
        user = await enrol(node, api, "heidi@example.com")
        attempt = await user.attempt(api)
        challenge = await pass1(api, attempt, user.user_id)  # a session opened before the revocation
        assert await api.call("mfa.revoke", id=user.user_id) == {}
        v = attempt.respond(int.from_bytes(unb64(challenge["y"]), "big"))
        await refused(api.call("mfa.pass2", session=challenge["session"], v=b64(v.to_bytes())), "mfa-revoked")
        await refused(login(api, user), "mfa-revoked")
        assert user.user_id in (await api.call("mfa.status"))["revoked"]
        await api.call("mfa.revoke", id=user.user_id, revoked=False)
        await login(api, user)
        assert [e["revoked"] for e in await audit(api, 30) if e["action"] == "mfa.revoke"][-2:] == [True, False]


async def test_one_pass_ok_replay_and_stale_time_refused(node):
    async with connect(node.url, token=node.token) as api:
        user = await enrol(node, api, "ivan@example.com")
        attempt = await user.attempt(api)
        now = int(time.time())
        proof = attempt.one_pass(now, b"pay 10 EUR to bob")
        params = {"id": user.user_id, "u": b64(attempt.pass1.u.to_bytes()), "ut": b64(attempt.pass1.ut.to_bytes()),
                  "v": b64(proof.v.to_bytes()), "t": now, "message": b64(b"pay 10 EUR to bob")}
        reply = await api.call("mfa.one_pass", **params)
        statement = mpin_wire.verify_statement(unb64(reply["assertion"]), kind=mpin_wire.ASSERTION,
                                               sign_key=node.sign_key, now=int(time.time()))
        assert statement.extra["method"] == "mpin-1pass" and statement.extra["t"] == now
        assert statement.extra["message_sha256"] == __import__("hashlib").sha256(b"pay 10 EUR to bob").digest()
        await refused(api.call("mfa.one_pass", **params), "mpin-used")
        # Another message under the same proof does not verify (and U is spent anyway).
        fresh = await user.attempt(api)
        proof = fresh.one_pass(now)
        other = {**params, "u": b64(fresh.pass1.u.to_bytes()), "ut": b64(fresh.pass1.ut.to_bytes()),
                 "v": b64(proof.v.to_bytes())}
        await refused(api.call("mfa.one_pass", **other), "mfa-refused")  # signed b"", sent a message
        stale = await user.attempt(api)
        old = now - 300
        proof = stale.one_pass(old)
        await refused(api.call("mfa.one_pass", id=user.user_id, u=b64(stale.pass1.u.to_bytes()),
                               ut=b64(stale.pass1.ut.to_bytes()), v=b64(proof.v.to_bytes()), t=old), "mpin-expired")
        await api.call("mfa.unlock", id=user.user_id)


async def test_parallel_logins_share_hsm_signatures_and_every_assertion_verifies_alone(node):
    async with connect(node.url, token=node.token) as admin:
        users = [await enrol(node, admin, f"batch-{i}@example.com") for i in range(12)]
        before = (await admin.call("mfa.status"))["assertion_signatures"]
        requests = []
        for user in users:
            attempt = await user.attempt(admin)
            proof = attempt.one_pass(int(time.time()))
            requests.append({"id": user.user_id, "u": b64(attempt.pass1.u.to_bytes()),
                             "ut": b64(attempt.pass1.ut.to_bytes()), "v": b64(proof.v.to_bytes()), "t": proof.t})
    replies, connected, go = {}, [], trio.Event()

    async def one(request):
        async with connect(node.url) as api:
            connected.append(api)
            if len(connected) == len(requests):
                go.set()
            await go.wait()  # every connection open first, so the logins arrive together
            replies[request["id"]] = await api.call("mfa.one_pass", **request)

    async with trio.open_nursery() as nursery:
        for request in requests:
            nursery.start_soon(one, request)
    batched = 0
    for user_id, reply in replies.items():
        data = unb64(reply["assertion"])
        statement = mpin_wire.verify_statement(data, kind=mpin_wire.ASSERTION, sign_key=node.sign_key,
                                               now=int(time.time()))
        assert statement.subject == user_id
        batched += "batch" in ipld.decode(data)
    async with connect(node.url, token=node.token) as admin:
        after = (await admin.call("mfa.status"))["assertion_signatures"]
    assert after["assertions"] - before["assertions"] == 12
    signatures = after["signatures"] - before["signatures"]
    assert batched and signatures < 12  # the logins that queued shared a signature


async def test_bad_points_and_bad_params_are_refused_with_clear_codes(node):
    async with connect(node.url, token=node.token) as api:
        user = await enrol(node, api, "judy@example.com")
        attempt = await user.attempt(api)
        u, ut = b64(attempt.pass1.u.to_bytes()), b64(attempt.pass1.ut.to_bytes())
        identity_point = b64(b"\xc0" + bytes(47))
        not_a_point = b64(b"\x9f" + b"\xff" * 47)
        for bad in (identity_point, not_a_point):
            await refused(api.call("mfa.pass1", id=user.user_id, u=bad, ut=ut), "mpin-bad-point")
            await refused(api.call("mfa.pass1", id=user.user_id, u=u, ut=bad), "mpin-bad-point")
        await refused(api.call("mfa.pass1", id=user.user_id, u=u), "mpin-bad-input")  # permits are required
        await refused(api.call("mfa.pass1", id="bad\x00id", u=u, ut=ut), "mpin-wire-bad-user-id")
        challenge = await api.call("mfa.pass1", id=user.user_id, u=u, ut=ut)
        await refused(api.call("mfa.pass2", session=challenge["session"], v=identity_point), "mpin-bad-point")
        for params in ({"id": user.user_id, "u": b64(b"short"), "ut": ut}, {"id": user.user_id, "u": "*", "ut": ut},
                       {"u": u, "ut": ut}):
            with pytest.raises(ApiCallError) as caught:
                await api.call("mfa.pass1", **params)
            assert caught.value.code == -32602
        with pytest.raises(ApiCallError) as caught:
            await api.call("mfa.revoke", id=user.user_id, revoked="yes")
        assert caught.value.code == -32602
        await login(api, user)  # bad points are not PIN guesses: nothing was counted
        status = await api.call("mfa.status")
        assert user.user_id not in [r["user_id"] for r in status["locked"]]
        text = json.dumps(await api.call("audit.tail", count=50))
        assert u not in text and ut not in text and challenge["y"] not in text


async def test_pairing_workers_run_below_the_node_and_the_typo_worker_below_them(node):
    node_nice = os.getpriority(os.PRIO_PROCESS, node.proc.pid)
    below = [os.getpriority(os.PRIO_PROCESS, pid) - node_nice for pid in await _worker_pids(node)]
    assert sorted(below) == [5, 5, 10]


async def test_admin_methods_need_the_token(node):
    async with connect(node.url) as api:
        for method, params in (("mfa.status", {}), ("mfa.unlock", {"id": "x"}), ("mfa.revoke", {"id": "x"})):
            with pytest.raises(ApiCallError) as caught:
                await api.call(method, **params)
            assert caught.value.code == -32001
        assert (await api.call("mfa.info"))["ready"] is True


def test_node_without_a_dta_is_not_ready_and_stops_cleanly(tmp_path):
    """An mfa-only node with no federation has no D-TA: logins say so; SIGINT still exits at once."""
    path = tmp_path / "mfa-only"
    init(path)
    proc = start_node(path, MILAGRO_NODE_ROLES="mfa")

    async def check():
        url = json.loads((path / "run.json").read_text())["api"]
        async with connect(url) as api:
            info = await api.call("mfa.info")
            assert info["ready"] is False and info["dtas"] == [] and info["have"] == []
            u = b64(mpin.identity_point(b"x").to_bytes())
            error = await refused(api.call("mfa.pass1", id="x", u=u, ut=u), "mfa-not-ready")
            assert "0 of 0" in error.message
            await refused(api.call("mfa.pass2", session="s", v=u), "mfa-not-ready")

    try:
        trio.run(check)
    finally:
        code, took = stop(proc, signal.SIGINT)
    assert code == 0 and took < 5


async def _enrol_log_in_then(node, user_id, kill):
    async with connect(node.url, token=node.token) as api:
        await _wait_ready(node)
        user = await enrol(node, api, user_id)
        reply = await login(api, user)
    kill()  # at once: the entry was committed, not yet synced ([mfa] sync_login_audit = false)
    return reply


def test_a_login_entry_outlives_a_sigkill_of_the_node_right_after_its_verdict(tmp_path):
    path = tmp_path / "node"
    identity = init(path)
    proc = start_node(path)
    try:
        reply = trio.run(_enrol_log_in_then, Node(path, proc, identity), "carol@example.com", proc.kill)
        proc.wait(timeout=10)
        assert proc.returncode == -signal.SIGKILL
        proc = start_node(path)
        again = Node(path, proc, identity)
        statement = mpin_wire.verify_statement(unb64(reply["assertion"]), kind=mpin_wire.ASSERTION,
                                               sign_key=again.sign_key, now=int(time.time()))

        async def entries():
            async with connect(again.url, token=again.token) as api:
                return await audit(api, 20), await api.call("audit.verify")

        logged, verdict = trio.run(entries)
        assert verdict["ok"]
        assert [(e["result"], e["subject"], e["assertion"]) for e in logged if e["action"] == "mfa.login"] == [
            ("ok", "carol@example.com", statement.cid)]
    finally:
        proc.kill()
        proc.wait(timeout=10)
