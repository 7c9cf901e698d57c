"""The M-Pin core's protocol rules: who can log in, and every way a login is refused.

Plain functions, no clock: times are numbers passed in. Three D-TAs deal shares unless a
test says otherwise. Each refusal is checked by its `MpinError` code.
"""

import py_arkworks_bls12381 as ark
import pytest

from milagro_node.adapters.pairing import G1, G2, R
from milagro_node.core import mpin
from milagro_node.core.mpin import ClientAttempt, LoginSession, MpinError, SessionState

ID = b"alice@example.org"
PIN = mpin.pin_from_digits("4921")
DAY = mpin.day_of(1_764_633_600)  # 2025-12-02
MASTER = [mpin.new_master_share() for _ in range(3)]
SS = mpin.combine([mpin.server_secret_share(s) for s in MASTER])
CS = mpin.combine([mpin.client_secret_share(s, ID) for s in MASTER])
TOKEN = mpin.extract_pin(CS, ID, PIN)


def permit(identity: bytes, day: int, shares=MASTER) -> G1:
    return mpin.combine([mpin.time_permit_share(s, identity, day) for s in shares])


def two_pass(token, pin, *, identity=ID, ss=SS, permit=None, client_day=None, server_day=None, pa=None, dvs_z=None):
    """Run one two-pass login; return the finished session (raises MpinError on refusal)."""
    attempt = ClientAttempt(token, identity, pin, permit=permit, day=client_day, dvs_z=dvs_z)
    session = LoginSession(ss, attempt.pass1, now=1000, ttl=30, day=server_day, pa=pa)
    y = session.challenge(now=1001)
    session.finish(attempt.respond(y), now=1002)
    return session


def refused(code: str, fn, *args, **kwargs) -> MpinError:
    with pytest.raises(MpinError) as info:
        fn(*args, **kwargs)
    assert info.value.code == code, info.value
    return info.value


# --- who can log in -------------------------------------------------------------------------


def test_right_pin_is_accepted():
    assert two_pass(TOKEN, PIN).state is SessionState.VERIFIED


@pytest.mark.parametrize("wrong", [PIN + 1, PIN - 1, 0, mpin.pin_from_digits("1294")])
def test_wrong_pin_is_rejected(wrong):
    refused("mpin-bad-proof", two_pass, TOKEN, wrong)


def test_token_from_all_but_one_dta_is_rejected():
    for missing in range(3):
        partial = mpin.combine([mpin.client_secret_share(s, ID) for i, s in enumerate(MASTER) if i != missing])
        refused("mpin-bad-proof", two_pass, mpin.extract_pin(partial, ID, PIN), PIN)


def test_a_single_dtas_share_is_rejected():
    for s in MASTER:
        alone = mpin.extract_pin(mpin.client_secret_share(s, ID), ID, PIN)
        refused("mpin-bad-proof", two_pass, alone, PIN)


def test_another_identitys_token_is_rejected():
    bob_cs = mpin.combine([mpin.client_secret_share(s, b"bob") for s in MASTER])
    bob_token = mpin.extract_pin(bob_cs, b"bob", PIN)
    refused("mpin-bad-proof", two_pass, bob_token, PIN)  # presented as alice


def test_a_server_secret_missing_a_share_rejects_everyone():
    partial_ss = mpin.combine([mpin.server_secret_share(s) for s in MASTER[:2]])
    refused("mpin-bad-proof", two_pass, TOKEN, PIN, ss=partial_ss)


def test_share_order_does_not_matter():
    reordered = mpin.combine([mpin.client_secret_share(s, ID) for s in reversed(MASTER)])
    assert reordered == CS


# --- time permits ----------------------------------------------------------------------------


def test_todays_permit_is_accepted():
    session = two_pass(TOKEN, PIN, permit=permit(ID, DAY), client_day=DAY, server_day=DAY)
    assert session.state is SessionState.VERIFIED


@pytest.mark.parametrize("other_day", [DAY - 1, DAY + 1])
def test_a_permit_for_another_day_is_rejected(other_day):
    # The client claims the permit is for today, but it is another day's.
    refused("mpin-bad-proof", two_pass, TOKEN, PIN, permit=permit(ID, other_day), client_day=DAY, server_day=DAY)
    # ... or tells the truth about the day; the server uses its own day either way.
    refused("mpin-bad-proof", two_pass, TOKEN, PIN, permit=permit(ID, other_day), client_day=other_day,
            server_day=DAY)


def test_a_permit_missing_a_dtas_share_is_rejected():
    refused("mpin-bad-proof", two_pass, TOKEN, PIN, permit=permit(ID, DAY, MASTER[1:]), client_day=DAY,
            server_day=DAY)


def test_a_server_requiring_permits_refuses_a_login_without_one():
    attempt = ClientAttempt(TOKEN, ID, PIN)
    refused("mpin-bad-input", LoginSession, SS, attempt.pass1, now=0, ttl=30, day=DAY)


def test_wrong_pin_with_a_good_permit_is_rejected():
    refused("mpin-bad-proof", two_pass, TOKEN, PIN + 1, permit=permit(ID, DAY), client_day=DAY, server_day=DAY)


def test_day_of():
    assert mpin.day_of(0) == 0
    assert mpin.day_of(86399.9) == 0
    assert mpin.day_of(86400) == 1


# --- the session machine ----------------------------------------------------------------------


def fresh_session(now=1000, ttl=30):
    attempt = ClientAttempt(TOKEN, ID, PIN)
    return attempt, LoginSession(SS, attempt.pass1, now=now, ttl=ttl)


def test_a_replayed_pass2_is_rejected():
    attempt, session = fresh_session()
    v = attempt.respond(session.challenge(now=1001))
    session.finish(v, now=1002)
    refused("mpin-used", session.finish, v, now=1003)
    assert session.state is SessionState.VERIFIED


def test_a_pass2_replayed_into_a_new_session_is_rejected():
    attempt, session = fresh_session()
    v = attempt.respond(session.challenge(now=1001))
    session.finish(v, now=1002)
    # Same Pass1 replayed: the new session draws a fresh y, so the old V does not fit.
    again = LoginSession(SS, attempt.pass1, now=1003, ttl=30)
    again.challenge(now=1003)
    refused("mpin-bad-proof", again.finish, v, now=1004)


def test_a_failed_session_cannot_be_retried():
    attempt, session = fresh_session()
    session.challenge(now=1001)
    refused("mpin-bad-proof", session.finish, G1.generator(), now=1002)
    assert session.state is SessionState.FAILED
    refused("mpin-used", session.finish, G1.generator(), now=1002)


def test_a_session_expires():
    attempt, session = fresh_session(now=1000, ttl=30)
    y = session.challenge(now=1030)  # exactly at the deadline: still open
    refused("mpin-expired", session.finish, attempt.respond(y), now=1031)
    assert session.state is SessionState.EXPIRED
    refused("mpin-used", session.finish, G1.generator(), now=1031)


def test_a_challenge_after_the_deadline_expires_the_session():
    _, session = fresh_session(now=1000, ttl=30)
    refused("mpin-expired", session.challenge, now=1031)
    assert session.state is SessionState.EXPIRED


def test_steps_out_of_order_are_refused():
    _, session = fresh_session()
    refused("mpin-bad-state", session.finish, G1.generator(), now=1001)
    session.challenge(now=1001)
    refused("mpin-bad-state", session.challenge, now=1001)


def test_a_client_attempt_answers_once():
    attempt, session = fresh_session()
    attempt.respond(session.challenge(now=1001))
    refused("mpin-used", attempt.respond, 5)


# --- one-pass -----------------------------------------------------------------------------------


def test_one_pass_is_accepted_once():
    cache = mpin.ReplayCache(max_skew=60)
    proof = ClientAttempt(TOKEN, ID, PIN).one_pass(t=5000, message=b"login to example.org")
    mpin.verify_one_pass(SS, proof, now=5010, replay=cache, message=b"login to example.org")
    refused("mpin-used", mpin.verify_one_pass, SS, proof, now=5011, replay=cache, message=b"login to example.org")


def test_one_pass_with_a_wrong_pin_or_message_is_rejected():
    cache = mpin.ReplayCache(max_skew=60)
    refused("mpin-bad-proof", mpin.verify_one_pass, SS, ClientAttempt(TOKEN, ID, PIN + 1).one_pass(t=5000),
            now=5000, replay=cache)
    proof = ClientAttempt(TOKEN, ID, PIN).one_pass(t=5000, message=b"pay 10")
    refused("mpin-bad-proof", mpin.verify_one_pass, SS, proof, now=5000, replay=cache, message=b"pay 1000")


def test_one_pass_with_a_moved_timestamp_is_rejected():
    cache = mpin.ReplayCache(max_skew=60)
    proof = ClientAttempt(TOKEN, ID, PIN).one_pass(t=5000)
    moved = mpin.OnePassProof(pass1=proof.pass1, v=proof.v, t=5001)
    refused("mpin-bad-proof", mpin.verify_one_pass, SS, moved, now=5001, replay=cache)


def test_one_pass_outside_the_skew_is_expired():
    cache = mpin.ReplayCache(max_skew=60)
    proof = ClientAttempt(TOKEN, ID, PIN).one_pass(t=5000)
    refused("mpin-expired", mpin.verify_one_pass, SS, proof, now=5061, replay=cache)
    refused("mpin-expired", mpin.verify_one_pass, SS, proof, now=4939, replay=cache)


def test_one_pass_with_a_permit():
    cache = mpin.ReplayCache(max_skew=60)
    proof = ClientAttempt(TOKEN, ID, PIN, permit=permit(ID, DAY), day=DAY).one_pass(t=5000)
    mpin.verify_one_pass(SS, proof, now=5000, replay=cache, day=DAY)
    proof = ClientAttempt(TOKEN, ID, PIN, permit=permit(ID, DAY - 1), day=DAY).one_pass(t=5000)
    refused("mpin-bad-proof", mpin.verify_one_pass, SS, proof, now=5000, replay=cache, day=DAY)


def test_the_replay_cache_forgets_old_entries():
    cache = mpin.ReplayCache(max_skew=10)
    cache.check_and_add(b"k", now=0)
    refused("mpin-used", cache.check_and_add, b"k", now=20)
    cache.check_and_add(b"k", now=21)  # too old to pass the time check by now


# --- key-escrow-less (DVS) variant ----------------------------------------------------------------


def dvs_enrol(pin=PIN):
    key = mpin.DvsKey.generate()
    identity = mpin.dvs_identity(ID, key.pa)
    cs = mpin.combine([mpin.client_secret_share(s, identity) for s in MASTER])
    return key, identity, cs, mpin.extract_pin(cs, identity, pin, dvs_z=key.z)


def test_dvs_right_pin_is_accepted():
    key, identity, _, token = dvs_enrol()
    session = two_pass(token, PIN, identity=identity, pa=key.pa, dvs_z=key.z)
    assert session.state is SessionState.VERIFIED


def test_dvs_with_a_permit():
    key, identity, _, token = dvs_enrol()
    session = two_pass(token, PIN, identity=identity, pa=key.pa, dvs_z=key.z, permit=permit(identity, DAY),
                       client_day=DAY, server_day=DAY)
    assert session.state is SessionState.VERIFIED


def test_dvs_all_dtas_together_cannot_log_in():
    key, identity, cs, _ = dvs_enrol()
    # Every D-TA colluding knows CS = s·A, and can pick any PIN: without z it does not verify.
    colluders_token = mpin.extract_pin(cs, identity, PIN)
    refused("mpin-bad-proof", two_pass, colluders_token, PIN, identity=identity, pa=key.pa)
    # Why the server must take Pa from the enrolment record, never from the wire: a Pa of the
    # colluders' choosing (here z = 1, Pa = Q) is refused because ID ‖ Pa binds it ...
    refused("mpin-bad-input", two_pass, colluders_token, PIN, identity=identity, pa=G2.generator())
    # ... but enrolled under their own Pa, the identity would be theirs and would verify.
    own_identity = mpin.dvs_identity(ID, G2.generator())
    own_cs = mpin.combine([mpin.client_secret_share(s, own_identity) for s in MASTER])
    own_token = mpin.extract_pin(own_cs, own_identity, PIN)
    session = two_pass(own_token, PIN, identity=own_identity, pa=G2.generator())
    assert session.state is SessionState.VERIFIED


def test_dvs_identity_without_its_pa_is_refused():
    key, identity, _, token = dvs_enrol()
    other = mpin.DvsKey.generate()
    refused("mpin-bad-input", two_pass, token, PIN, identity=identity, pa=other.pa, dvs_z=key.z)
    refused("mpin-bad-point", two_pass, token, PIN, identity=identity, pa=G2.identity(), dvs_z=key.z)


def test_dvs_wrong_pin_is_rejected():
    key, identity, _, token = dvs_enrol()
    refused("mpin-bad-proof", two_pass, token, PIN + 1, identity=identity, pa=key.pa, dvs_z=key.z)


def test_dvs_one_pass_binds_the_message():
    key, identity, _, token = dvs_enrol()
    cache = mpin.ReplayCache(max_skew=60)
    proof = ClientAttempt(token, identity, PIN, dvs_z=key.z).one_pass(t=7, message=b"signed text")
    mpin.verify_one_pass(SS, proof, now=7, replay=cache, message=b"signed text", pa=key.pa)


# --- malformed input ------------------------------------------------------------------------------


def off_subgroup_g1() -> bytes:
    """A compressed point on the curve but outside G1 (found with arkworks's unchecked decoder)."""
    for x in range(1, 100):
        data = bytes([0x80]) + x.to_bytes(47, "big")
        try:
            point = ark.G1Point.from_compressed_bytes_unchecked(data)
        except Exception:
            continue
        if not point.is_in_subgroup():
            return data
    raise AssertionError("no off-subgroup point found")


def off_subgroup_g2() -> bytes:
    for x in range(1, 100):
        data = bytes([0x80]) + bytes(47) + bytes([0]) + x.to_bytes(47, "big")
        try:
            point = ark.G2Point.from_compressed_bytes_unchecked(data)
        except Exception:
            continue
        if not point.is_in_subgroup():
            return data
    raise AssertionError("no off-subgroup point found")


@pytest.mark.parametrize(
    "data, reason",
    [
        (b"", "length"),
        (bytes(47), "length"),
        (bytes(48), "encoding"),  # the compression flag is missing
        (b"\xff" * 48, "encoding"),  # x is not a field element
        (off_subgroup_g1(), "subgroup"),
    ],
)
def test_malformed_g1_is_a_bad_point(data, reason):
    err = refused("mpin-bad-point", mpin.decode_g1, data, "U")
    assert reason in err.message


def test_malformed_g2_is_a_bad_point():
    err = refused("mpin-bad-point", mpin.decode_g2, off_subgroup_g2(), "share")
    assert "subgroup" in err.message
    refused("mpin-bad-point", mpin.decode_g2, bytes(96), "share")


def test_the_identity_point_is_refused_where_a_point_is_needed():
    infinity = G1.identity().to_bytes()
    assert infinity == bytes([0xC0]) + bytes(47)
    refused("mpin-bad-point", mpin.decode_g1, infinity, "V")
    refused("mpin-bad-point", mpin.decode_g2, G2.identity().to_bytes(), "SS")
    attempt, session = fresh_session()
    session.challenge(now=1001)
    refused("mpin-bad-point", session.finish, G1.identity(), now=1002)
    assert session.state is SessionState.FAILED
    refused("mpin-bad-point", LoginSession, SS, mpin.Pass1(identity=ID, u=G1.identity()), now=0, ttl=1)


def test_decoded_points_round_trip():
    assert mpin.decode_g1(TOKEN.to_bytes()) == TOKEN
    assert mpin.decode_g2(SS.to_bytes()) == SS


def test_combining_nothing_or_to_the_identity_is_refused():
    refused("mpin-bad-input", mpin.combine, [])
    share = mpin.client_secret_share(MASTER[0], ID)
    refused("mpin-bad-point", mpin.combine, [share, -share])


# --- PINs -----------------------------------------------------------------------------------------


def test_pin_digits_map_injectively():
    pins = ["0000", "1234", "01234", "001234", "99999999", "00000000", "9999"]
    values = [mpin.pin_from_digits(p) for p in pins]
    assert len(set(values)) == len(values)
    assert mpin.pin_from_digits("1234") == 1234
    assert max(values) < 2 * 10**8


@pytest.mark.parametrize("bad", ["123", "123456789", "12a4", "１２３４", ""])
def test_bad_pin_strings_are_refused(bad):
    refused("mpin-bad-input", mpin.pin_from_digits, bad)


@pytest.mark.parametrize("bad", [-1, 2 * 10**8, R])
def test_out_of_range_pins_are_refused(bad):
    refused("mpin-bad-input", mpin.extract_pin, CS, ID, bad)
    refused("mpin-bad-input", ClientAttempt, TOKEN, ID, bad)


# --- typo or guess ----------------------------------------------------------------------------------


def failed_login(entered, *, token=TOKEN, identity=ID, permit=None, day=None, pa=None, dvs_z=None):
    attempt = ClientAttempt(token, identity, entered, permit=permit, day=day, dvs_z=dvs_z)
    session = LoginSession(SS, attempt.pass1, now=0, ttl=30, day=day, pa=pa)
    y = session.challenge(now=0)
    v = attempt.respond(y)
    refused("mpin-bad-proof", session.finish, v, now=1)
    return attempt.pass1, y, v


@pytest.mark.parametrize(
    "entered, delta",
    [("4931", 10), ("4901", -20), ("9921", 5000), ("4920", -1), ("9421", 4500), ("4912", -9)],
    ids=["digit+1", "digit-2", "first-digit", "last-digit", "swap-first", "swap-last"],
)
def test_a_one_digit_slip_is_recognised(entered, delta):
    pass1, y, v = failed_login(mpin.pin_from_digits(entered))
    assert mpin.find_typo(SS, pass1, y, v, digits=4) == delta


def test_a_guess_is_not_a_typo():
    pass1, y, v = failed_login(mpin.pin_from_digits("1357"))
    assert mpin.find_typo(SS, pass1, y, v, digits=4) is None


def test_typos_with_a_permit_and_in_dvs():
    pass1, y, v = failed_login(PIN + 300, permit=permit(ID, DAY), day=DAY)
    assert mpin.find_typo(SS, pass1, y, v, digits=4, day=DAY) == 300
    key, identity, _, token = dvs_enrol()
    pass1, y, v = failed_login(PIN - 90, token=token, identity=identity, pa=key.pa, dvs_z=key.z)
    assert mpin.find_typo(SS, pass1, y, v, digits=4, pa=key.pa) == -90


def test_typo_deltas():
    assert len(mpin.typo_deltas(4)) == 120  # 72 digit changes + 54 swaps − 6 alike (±9·10^j)
    assert len(mpin.typo_deltas(8)) == 256
    assert 0 not in mpin.typo_deltas(6)
    refused("mpin-bad-input", mpin.typo_deltas, 3)
