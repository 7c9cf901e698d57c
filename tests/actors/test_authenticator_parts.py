"""The authenticator's parts without a node: lockout policy and its gate, sessions, the
replay window, the D-TA set, and the worker jobs (in this process and in real workers)."""

import hashlib
import json
import time

import attrs
import pytest
import trio
from cryptography.hazmat.primitives.asymmetric import ed25519

from actors.authenticator import jobs
from actors.authenticator.devices import Device, DeviceRegistry
from actors.authenticator.lockout import UNTIL_ADMIN, AttemptGate, FailureRecord, Lockout, user_key
from actors.authenticator.pairing_pool import PairingPool, _Check
from actors.authenticator.server_secret import ServerSecret, dta_set
from actors.authenticator.sessions import PERMIT_GRACE_S, Pending, ReplayWindow, SessionTable, claim, permit_day
from actors.mailbox import ActorError
from milagro_node.adapters.pairing import random_scalar
from milagro_node.core import ipld, mpin, mpin_wire

ID = b"alice@example.com"
PIN = 1234


# --------------------------------------------------------------------------- lockout


def test_lockout_counts_locks_and_a_run_out_lockout_clears_the_count():
    lockout = Lockout(max_failures=3, lockout_seconds=60)
    assert lockout.left("alice") == 3
    assert lockout.fail("alice", 1000).locked_until is None
    assert lockout.fail("alice", 1001).failures == 2 and lockout.left("alice") == 1
    record = lockout.fail("alice", 1002)
    assert record == FailureRecord("alice", 3, 1062) and lockout.left("alice") == 0
    assert lockout.check("alice", 1061) == (record, False)
    assert lockout.fail("alice", 1003) is not lockout.fail("alice", 1003)  # snapshots
    assert [r.user_id for r in lockout.locked(1061)] == ["alice"]
    assert lockout.check("alice", 1062) == (None, True)  # run out: cleared, caller deletes the record
    assert lockout.left("alice") == 3 and lockout.locked(1062) == []


def test_lockout_until_admin_and_success_resets():
    lockout = Lockout(max_failures=1, lockout_seconds=0)
    record = lockout.fail("bob", 5)
    assert record.locked_until == UNTIL_ADMIN and record.until is None
    assert lockout.check("bob", 10**12)[0] == record  # never runs out
    assert lockout.unlock("bob") == record and lockout.check("bob", 6) == (None, False)
    lockout = Lockout(max_failures=3, lockout_seconds=60)
    lockout.fail("carol", 1)
    assert lockout.succeed("carol") is True and lockout.succeed("carol") is False
    assert lockout.left("carol") == 3


def test_failure_records_round_trip_and_bad_ones_are_reported():
    record = FailureRecord("dave", 2, None)
    assert json.loads(record.to_json()) == {"user_id": "dave", "failures": 2, "locked_until": None}
    lockout = Lockout(3, 60)
    bad = lockout.load([(user_key("dave"), record.to_json()), ("junk", b"not json"), ("x", b'{"failures": 1}')])
    assert bad == ["junk", "x"]
    assert lockout.left("dave") == 1
    assert user_key("dave") == hashlib.sha256(b"dave").hexdigest()


async def test_gate_keeps_attempts_in_flight_within_the_failures_left():
    lockout = Lockout(max_failures=2, lockout_seconds=60)
    gate = AttemptGate(lockout.left)
    peak = 0
    done = []

    async def attempt(fail: bool) -> None:
        nonlocal peak
        async with gate.attempt("eve"):
            peak = max(peak, gate.in_flight("eve"))
            await trio.sleep(0.01)
            if fail:
                lockout.fail("eve", time.time())
            done.append(lockout.left("eve"))

    async with trio.open_nursery() as nursery:
        for _ in range(6):
            nursery.start_soon(attempt, True)
    # Two failures left: two at once at most; once locked, one at a time (each sees the lock).
    assert peak == 2
    assert gate.in_flight("eve") == 0
    assert lockout.check("eve", time.time())[0] is not None


# --------------------------------------------------------------------------- sessions


def _pass1(ut: bool = False) -> mpin.Pass1:
    u = mpin.identity_point(ID) * random_scalar()
    return mpin.Pass1(ID, u, u if ut else None)


def _session(now: float, ttl: float = 60) -> mpin.LoginSession:
    secret = mpin.server_secret_share(mpin.new_master_share())
    login = mpin.LoginSession(secret, _pass1(), now=now, ttl=ttl)
    login.challenge(now)
    return login


def test_sessions_are_single_use_and_expire():
    table = SessionTable(ttl=60)
    login = _session(1000)
    sid = table.add(Pending(login, "alice", "here"), 1000)
    assert len(sid) >= 22 and len(table) == 1
    pending = table.take(sid, 1001)
    assert pending.user_id == "alice" and len(table) == 0
    assert claim(pending.login, 1001) == login.y
    with pytest.raises(mpin.MpinError) as used:
        table.take(sid, 1002)
    assert used.value.code == "mpin-used" and used.value.user_id == "alice"
    with pytest.raises(mpin.MpinError) as again:
        claim(pending.login, 1002)  # the session itself is finished too
    assert again.value.code == "mpin-used"
    with pytest.raises(ActorError) as unknown:
        table.take("no-such-session", 1002)
    assert unknown.value.code == "mfa-no-session"

    late = _session(1000, ttl=1)
    sid = table.add(Pending(late, "bob", "here"), 1000)
    with pytest.raises(mpin.MpinError) as expired:
        claim(table.take(sid, 1002).login, 1002)
    assert expired.value.code == "mpin-expired" and late.state is mpin.SessionState.EXPIRED


def test_session_table_is_bounded_and_prunes_from_the_oldest_end():
    table = SessionTable(ttl=10, max_open=3)
    ids = [table.add(Pending(_session(100, ttl=10), f"u{i}", ""), 100) for i in range(3)]
    with pytest.raises(ActorError) as busy:
        table.add(Pending(_session(100, ttl=10), "u3", ""), 105)
    assert busy.value.code == "mfa-busy"
    # Past their deadline the expired ones make room; past deadline + ttl they are forgotten.
    table.add(Pending(_session(111, ttl=10), "u4", ""), 111)
    assert len(table) == 1
    with pytest.raises(ActorError):
        table.take(ids[0], 111)
    table.prune(200)
    assert len(table) == 0


def test_replay_window_refuses_a_key_twice_within_twice_the_skew():
    window = ReplayWindow(max_skew=30)
    window.check_and_add(b"a", 1000)
    with pytest.raises(mpin.MpinError) as used:
        window.check_and_add(b"a", 1059)
    assert used.value.code == "mpin-used"
    window.check_and_add(b"b", 1061)  # prunes "a" (kept until 1060)
    assert len(window) == 1
    window.check_and_add(b"a", 1061)
    assert isinstance(window, mpin.ReplayCache)


def test_permit_day_is_today_or_a_neighbour_within_the_grace_around_midnight():
    midnight = 20_000 * mpin.DAY_SECONDS  # day 20000 begins
    noon = midnight + mpin.DAY_SECONDS // 2
    assert permit_day(None, noon) == permit_day(20_000, noon) == 20_000  # none stated: today
    assert permit_day(19_999, midnight + PERMIT_GRACE_S - 1) == 19_999  # begun just before midnight
    assert permit_day(20_000, midnight - PERMIT_GRACE_S) == 20_000  # a client a minute ahead
    for stated, now in ((19_999, midnight + PERMIT_GRACE_S), (20_001, noon), (19_999, noon),
                        (20_002, midnight + mpin.DAY_SECONDS - 1), (0, noon)):
        with pytest.raises(ActorError) as wrong:
            permit_day(stated, now)
        assert wrong.value.code == "mfa-wrong-day"
        assert f"day {stated};" in wrong.value.message


# --------------------------------------------------------------------------- server secret


@attrs.frozen
class _Member:
    identity: str
    roles: tuple[str, ...]


def test_dta_set():
    members = [_Member("b", ("dta", "mfa")), _Member("a", ("dta",)), _Member("c", ("mfa",))]
    assert dta_set(members, "c", ("mfa",)) == ("a", "b")
    assert dta_set([], "me", ("dta", "mfa", "custody")) == ("me",)  # a single node: its own D-TA
    assert dta_set([], "me", ("mfa",)) == ()
    assert dta_set([_Member("c", ("mfa",))], "me", ("dta", "mfa")) == ("me",)


def test_server_secret_is_ready_with_every_share():
    s1, s2 = mpin.new_master_share(), mpin.new_master_share()
    secret = ServerSecret(("a", "b"))
    assert not secret.add("a", mpin.server_secret_share(s1)) and secret.counts() == "1/2"
    assert secret.missing() == ["b"] and secret.encoded is None
    assert secret.add("b", mpin.server_secret_share(s2))
    assert secret.point == mpin.server_secret_share(s1) + mpin.server_secret_share(s2)
    assert len(secret.encoded) == 96 and secret.have() == ["a", "b"]
    with pytest.raises(ValueError):
        secret.add("z", mpin.server_secret_share(s1))
    with pytest.raises(mpin.MpinError):  # shares that cancel out never make SS
        secret.add("b", -mpin.server_secret_share(s1))
    assert not secret.ready


# --------------------------------------------------------------------------- worker jobs


@pytest.fixture(scope="module")
def enrolled():
    s = mpin.new_master_share()
    token = mpin.extract_pin(mpin.client_secret_share(s, ID), ID, PIN)
    return s, token, mpin.server_secret_share(s).to_bytes()


def _attempt(s, token, pin, day=None, permit_day=None):
    permit = None if day is None else mpin.time_permit_share(s, ID, day if permit_day is None else permit_day)
    attempt = mpin.ClientAttempt(token, ID, pin, permit=permit, day=day)
    y = random_scalar()
    v = attempt.respond(y)
    ut = attempt.pass1.ut.to_bytes() if attempt.pass1.ut else None
    return attempt.pass1.u.to_bytes(), ut, y, v.to_bytes()


def test_check_proof_accepts_the_right_pin_and_tells_why_not(enrolled):
    s, token, ss = enrolled
    u, ut, y, v = _attempt(s, token, PIN)
    assert jobs.check_proof(ss, ID, u, ut, y, v, None) is None
    day = mpin.day_of(time.time())
    assert jobs.check_proof(ss, ID, *_attempt(s, token, PIN, day), day) is None
    assert jobs.check_proof(ss, ID, *_attempt(s, token, PIN, day, permit_day=day + 1), day)[0] == "mpin-bad-proof"
    assert jobs.check_proof(ss, ID, u, ut, y + 1, v, None)[0] == "mpin-bad-proof"
    assert jobs.check_proof(ss, ID, u, ut, y, b"\xc0" + bytes(47), None)[0] == "mpin-bad-point"
    assert jobs.check_proof(ss, ID, u, ut, y, b"\x01" * 48, None)[0] == "mpin-bad-point"
    assert jobs.check_proof(ss, ID, u, None, y, v, day)[0] == "mpin-bad-input"  # a permit is needed
    assert ss in jobs._SERVER_SECRETS


def test_check_proof_of_a_dvs_login_uses_the_device_key_it_is_given(enrolled):
    s, _, ss = enrolled
    device, other = mpin.DvsKey.generate(), mpin.DvsKey.generate()
    identity = mpin.dvs_identity(ID, device.pa)
    token = mpin.extract_pin(mpin.client_secret_share(s, identity), identity, PIN, dvs_z=device.z)
    attempt = mpin.ClientAttempt(token, identity, PIN, dvs_z=device.z)
    y = random_scalar()
    u, v = attempt.pass1.u.to_bytes(), attempt.respond(y).to_bytes()
    pa = device.pa.to_bytes()
    assert jobs.check_proof(ss, identity, u, None, y, v, None, pa) is None
    assert jobs.check_proof(ss, identity, u, None, y, v, None)[0] == "mpin-bad-proof"  # Q in place of Pa
    assert jobs.check_proof(ss, identity, u, None, y, v, None, other.pa.to_bytes())[0] == "mpin-bad-input"
    assert jobs.check_proof(ss, identity, u, None, y, v, None, b"\x01" * 96)[0] == "mpin-bad-point"
    assert pa in jobs._DEVICE_KEYS


async def test_checks_queued_while_workers_are_busy_share_jobs(enrolled):
    s, token, ss = enrolled
    pins = [PIN, 1235, PIN, 9876] * 5
    attempts = [_attempt(s, token, pin) for pin in pins]
    async with PairingPool.open(2) as pool:
        await pool.warm(ss)
        results: dict[int, object] = {}

        async def login(i):
            results[i] = await pool.check(ss, ID, *attempts[i], None)

        async with trio.open_nursery() as nursery:
            for i in range(len(pins)):
                nursery.start_soon(login, i)
        assert [results[i] is None for i in range(len(pins))] == [pin == PIN for pin in pins]
        assert pool.checked == len(pins) and pool.check_jobs < len(pins)

        # A check whose login was cancelled before a dispatcher took it is skipped (whether a
        # cancellation beats the dispatcher is up to trio's scheduler, so it is set up here).
        abandoned = _Check((ss, ID, *attempts[0], None), abandoned=True)
        pool._queue_in.send_nowait(abandoned)
        assert await pool.check(ss, ID, *attempts[0], None) is None
        assert pool.checked == len(pins) + 1 and not abandoned.done.is_set()


def test_typo_search_tells_a_slip_from_a_guess(enrolled):
    s, token, ss = enrolled
    u, ut, y, v = _attempt(s, token, 1243)  # two neighbours swapped
    assert jobs.proof_is_typo(ss, ID, u, ut, y, v, None) is True
    u, ut, y, v = _attempt(s, token, 9876)
    assert jobs.proof_is_typo(ss, ID, u, ut, y, v, None) is False


async def test_pool_runs_jobs_in_warm_worker_processes(enrolled):
    import os

    s, token, ss = enrolled
    async with PairingPool.open(2) as pool:
        pids = await pool.warm(ss)
        assert len(pids) == 3 and os.getpid() not in pids  # two checkers, one typo worker
        results = []

        async def login(pin):
            results.append(await pool.check(ss, ID, *_attempt(s, token, pin), None))

        async with trio.open_nursery() as nursery:
            for pin in (PIN, PIN, 1235, PIN):
                nursery.start_soon(login, pin)
        assert sorted(r is None for r in results) == [False, True, True, True]
        assert pool.checked == 4
        u, ut, y, v = _attempt(s, token, 9876)  # a guess: the search tries all 120 candidates
        async with trio.open_nursery() as nursery:
            first = []

            async def typo():
                first.append(await pool.is_typo(ss, ID, u, ut, y, v, None))

            nursery.start_soon(typo)
            while pool._typo_busy.borrowed_tokens == 0:
                await trio.sleep(0)
            # The typo worker is busy with the first search: the second is skipped at once.
            assert await pool.is_typo(ss, ID, u, ut, y, v, None) is None
        assert first == [False] and pool.typo_skipped == 1

        # A worker killed in the middle of a job fails that job only; the next gets a new one.
        typo_pid = await pool._typo.run_sync(jobs.warm, None, limiter=pool._typo_slot)
        async with trio.open_nursery() as nursery:
            nursery.start_soon(typo)
            while pool._typo_busy.borrowed_tokens == 0:
                await trio.sleep(0)
            await trio.sleep(0.02)
            os.kill(typo_pid, 9)
        assert first[-1] is None and pool.broken == 1
        assert await pool.is_typo(ss, ID, *_attempt(s, token, 1235), None) is True


# --------------------------------------------------------------------------- device keys


def _grant(user_id, device_key=None):
    """A grant as a node makes one (the registry reads only its device key when the ID has
    a key registered already: these tests never reach the GrantChecker)."""
    extra = None if device_key is None else {mpin_wire.DEVICE_KEY: device_key}
    draft = mpin_wire.prepare_statement(mpin_wire.GRANT, issuer=ipld.cid_for(b"x", "dag-cbor"), subject=user_id,
                                        created=int(time.time()), ttl=60, extra=extra)
    return draft.finish(ed25519.Ed25519PrivateKey.generate().sign(draft.to_be_signed)).data


async def _code(call):
    with pytest.raises(ActorError) as refused:
        await call
    return refused.value.code


async def test_a_registered_device_key_is_the_only_one_taken_and_plain_tokens_are_refused():
    registry = DeviceRegistry(None, require=False)
    mine, other = b"\x01" * 96, b"\x02" * 96
    assert await registry.device_for("ann", None, time.time()) is None  # plain, nothing registered
    record = registry.register("ann", Device(mine, "bafygrant"))
    assert json.loads(record) | {"at": 0} == {"user_id": "ann", "device_key": mine.hex(), "grant": "bafygrant", "at": 0}
    assert registry.register("ann", Device(mine, "bafyagain")) is None  # the same key: nothing new
    with pytest.raises(ActorError, match="mfa.reset_device"):
        registry.register("ann", Device(other, "bafyrace"))  # lost a race with `mine`
    assert await registry.device_for("ann", _grant("ann", mine), time.time()) == Device(mine)
    assert await _code(registry.device_for("ann", _grant("ann", other), time.time())) == "mfa-device-key"
    assert await _code(registry.device_for("ann", _grant("ann"), time.time())) == "mfa-device-key"
    assert await _code(registry.device_for("ann", None, time.time())) == "mfa-device-required"
    assert registry.forget("ann") and not registry.forget("ann") and len(registry) == 0


async def test_an_unreadable_device_record_bars_its_id_and_require_refuses_plain_tokens():
    registry = DeviceRegistry(None, require=True)
    good = json.dumps({"user_id": "bo", "device_key": "01" * 96}).encode()
    assert registry.load([(user_key("bo"), good), (user_key("cy"), b"{not json")]) == [user_key("cy")]
    assert await registry.device_for("bo", _grant("bo", b"\x01" * 96), time.time()) == Device(b"\x01" * 96)
    with pytest.raises(ActorError, match="does not read"):
        await registry.device_for("cy", _grant("cy", b"\x01" * 96), time.time())
    assert await _code(registry.device_for("cy", None, time.time())) == "mfa-device-required"
    assert await _code(registry.device_for("dee", None, time.time())) == "mfa-device-required"  # require
