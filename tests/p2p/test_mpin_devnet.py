"""M-Pin end to end: three D-TA nodes and one MFA node as separate processes (a devnet).

The client is the real one: `milagro-node client ...` in a child process where a command
exists for it, else `milagro_node.mpin_client`. Server secrets reach the MFA node from the
three D-TAs in envelopes over libp2p; shares and permits reach the client sealed.
"""

from __future__ import annotations

import base64
import json
import subprocess

import pytest
import trio

from devnetkit import Devnet, eventually
from milagro_node.api_client import ApiCallError, connect
from milagro_node.core import mpin
from milagro_node.mpin_client import ClientRefused, TokenFile, enroll, fetch_permit, login, new_device
from milagro_node.mpin_client import device_key as device_key_of
from milagro_node.runtime import devnet
from milagro_node.runtime.devnet import milagro_command
from testkit import clean_env, clear_of_midnight

pytestmark = pytest.mark.slow

MAX_FAILURES = 3
DTA = [1, 2, 3]
MFA = 4


@pytest.fixture(scope="module")
def net(tmp_path_factory):
    root = tmp_path_factory.mktemp("mpin-devnet")
    net = Devnet(root, 4, node_roles=[("dta",), ("dta",), ("dta",), ("mfa",)],
                 settings={("mfa", "max_failures"): MAX_FAILURES, ("mfa", "lockout_seconds"): 0})
    net.root = root
    try:
        # Only node-1 may name the device key of a user's first DVS login at the MFA node.
        only_node_1 = clean_env(MILAGRO_MFA_GRANT_ISSUERS=net.node(1).identity)
        net.processes[MFA] = devnet.start(net.node(MFA), env=only_node_1)
        net.start_all()
        trio.run(_wait_mfa_ready, net)
        yield net
    finally:
        net.stop_all()


async def _wait_mfa_ready(net) -> None:
    async def ready():
        async with net.api(MFA) as api:
            return (await api.call("mfa.info"))["ready"]

    await eventually(ready, timeout=90, what="the MFA node holds a server-secret share from every D-TA")


def client(*args, pin: str | None = None, tmp_path=None) -> subprocess.CompletedProcess:
    argv = list(map(str, args))
    if pin is not None:
        pin_file = tmp_path / f"pin-{pin}"
        pin_file.write_text(pin + "\n")
        argv += ["--pin-file", str(pin_file)]
    return subprocess.run(milagro_command("client", *argv), capture_output=True, text=True, timeout=120,
                          env=clean_env())


def dta_urls(net, which=DTA) -> list[str]:
    return [net.node(i).api_url for i in which]


async def admin(net, i: int, method: str, **params):
    async with net.api(i) as api:
        return await api.call(method, **params)


async def grant_for(net, user_id: str, by: int = 1) -> bytes:
    return base64.b64decode((await admin(net, by, "mpin.grant", id=user_id))["grant"])


async def refused_code(call) -> str:
    with pytest.raises(ClientRefused) as refused:
        await call
    return refused.value.code


def test_enrol_and_log_in_with_the_cli_then_verify_the_assertion(net, tmp_path):
    grant = tmp_path / "alice.grant"
    token = tmp_path / "alice.token"
    done = client("grant", "--data-dir", net.node(1).data_dir, "--id", "alice@example.com", "--out", grant)
    assert done.returncode == 0, done.stderr
    assert grant.stat().st_mode & 0o777 == 0o600
    done = client("enroll", "--id", "alice@example.com", "--grant", grant, "--token", token,
                  *[a for url in dta_urls(net) for a in ("--dta", url)], pin="2468", tmp_path=tmp_path)
    assert done.returncode == 0, done.stderr
    assert "3 D-TA" in done.stdout and token.stat().st_mode & 0o777 == 0o600
    assert "2468" not in token.read_text()

    assertion = tmp_path / "login.assertion"
    done = client("login", "--id", "alice@example.com", "--mfa", net.node(MFA).api_url, "--token", token,
                  "--out", assertion, pin="2468", tmp_path=tmp_path)
    assert done.returncode == 0, done.stderr
    assert net.node(MFA).identity in done.stdout

    log = tmp_path / "mfa.log"
    exported = subprocess.run(milagro_command("identity", "export", "--data-dir", str(net.node(MFA).data_dir),
                                              "--out", str(log)), capture_output=True, text=True, env=clean_env())
    assert exported.returncode == 0, exported.stderr
    done = client("verify", "--assertion", assertion, "--log", log, "--id", "alice@example.com")
    assert done.returncode == 0, done.stderr
    verified = json.loads(done.stdout)
    assert verified["subject"] == "alice@example.com" and verified["issuer"] == net.node(MFA).identity
    # The assertion is the MFA node's, not a D-TA's: another node's log refuses it.
    other = tmp_path / "dta.log"
    subprocess.run(milagro_command("identity", "export", "--data-dir", str(net.node(1).data_dir), "--out",
                                   str(other)), check=True, capture_output=True, env=clean_env())
    assert client("verify", "--assertion", assertion, "--log", other).returncode == 1

    # A wrong PIN: refused with a clear message and exit status 1, and counted.
    done = client("login", "--id", "alice@example.com", "--mfa", net.node(MFA).api_url, "--token", token,
                  pin="1357", tmp_path=tmp_path)
    assert done.returncode == 1
    assert "mfa-refused" in done.stderr and "1357" not in done.stderr + done.stdout
    status = trio.run(admin, net, MFA, "mfa.status")
    assert status["logins"]["failed"] >= 1 and status["logins"]["ok"] >= 1


async def test_lockout_after_n_wrong_pins_and_admin_unlock(net):
    token = await enroll("bob", await grant_for(net, "bob"), dta_urls(net), "1111")
    for _ in range(MAX_FAILURES - 1):
        assert await refused_code(login(token, net.node(MFA).api_url, "9999")) == "mfa-refused"
    assert await refused_code(login(token, net.node(MFA).api_url, "9999")) == "mfa-locked"
    # Locked: even the right PIN is refused now, before any pairing work.
    assert await refused_code(login(token, net.node(MFA).api_url, "1111")) == "mfa-locked"
    locked = (await admin(net, MFA, "mfa.status"))["locked"]
    assert [entry["user_id"] for entry in locked] == ["bob"]
    await admin(net, MFA, "mfa.unlock", id="bob")
    result = await login(token, net.node(MFA).api_url, "1111")
    assert result.mfa == net.node(MFA).identity


async def test_a_token_short_of_one_share_or_from_one_dta_cannot_log_in(net):
    for user_id, dtas in (("carol", DTA[:2]), ("dave", DTA[:1])):
        token = await enroll(user_id, await grant_for(net, user_id), dta_urls(net, dtas), "4321")
        assert len(token.dtas) == len(dtas)
        assert await refused_code(login(token, net.node(MFA).api_url, "4321")) == "mfa-refused"


async def test_a_permit_for_another_day_is_refused(net):
    await clear_of_midnight()
    token = await enroll("erin", await grant_for(net, "erin"), dta_urls(net), "5555")
    async with connect(net.node(MFA).api_url) as api:
        today = (await api.call("mfa.info"))["day"]
    # The client says which day its permit is for: refused as such, not as a wrong PIN.
    assert await refused_code(login(token, net.node(MFA).api_url, "5555", permit_day=today + 1)) == "mfa-wrong-day"
    assert (await login(token, net.node(MFA).api_url, "5555")).mfa == net.node(MFA).identity


async def test_a_revoked_identity_is_refused(net):
    token = await enroll("frank", await grant_for(net, "frank"), dta_urls(net), "6666")
    await admin(net, MFA, "mfa.revoke", id="frank")
    assert await refused_code(login(token, net.node(MFA).api_url, "6666")) == "mfa-revoked"
    # Revoked at the D-TAs too: no more time permits, whatever the MFA node thinks.
    await admin(net, MFA, "mfa.revoke", id="frank", revoked=False)
    for i in DTA:
        await admin(net, i, "dta.revoke", id="frank")
    assert await refused_code(login(token, net.node(MFA).api_url, "6666")) == "dta-revoked"


async def test_a_replayed_pass_2_is_refused(net):
    token = await enroll("grace", await grant_for(net, "grace"), dta_urls(net), "7777")
    async with connect(net.node(MFA).api_url) as api:
        info = await api.call("mfa.info")
        permit = await fetch_permit(token, info["day"])
        attempt = mpin.ClientAttempt(mpin.decode_g1(token.token), b"grace", mpin.pin_from_digits("7777"),
                                     permit=permit, day=info["day"])
        b64 = lambda data: base64.b64encode(data).decode()  # noqa: E731
        challenge = await api.call("mfa.pass1", id="grace", u=b64(attempt.pass1.u.to_bytes()),
                                   ut=b64(attempt.pass1.ut.to_bytes()))
        v = b64(attempt.respond(int.from_bytes(base64.b64decode(challenge["y"]), "big")).to_bytes())
        accepted = await api.call("mfa.pass2", session=challenge["session"], v=v)
        assert base64.b64decode(accepted["assertion"])
        with pytest.raises(ApiCallError) as replayed:
            await api.call("mfa.pass2", session=challenge["session"], v=v)
        assert replayed.value.data["code"] in ("mfa-no-session", "mpin-used")


async def test_enrolment_without_a_valid_grant_is_refused(net):
    alice_grant = await grant_for(net, "heidi-not")
    codes = set()
    for grant in (alice_grant, b"not a grant", alice_grant[:-1] + bytes([alice_grant[-1] ^ 1])):
        codes.add(await refused_code(enroll("heidi", grant, dta_urls(net), "8888")))
    assert codes == {"dta-grant-subject", "mpin-wire-malformed", "mpin-wire-bad-signature"}
    # None of that enrolled heidi: with a real grant she still can.
    token = await enroll("heidi", await grant_for(net, "heidi"), dta_urls(net), "8888")
    assert isinstance(token, TokenFile)
    # ... once: a second enrolment with the same grant is refused.
    assert await refused_code(enroll("heidi", await grant_for(net, "heidi"), dta_urls(net), "8888")) == \
        "dta-enrolled"


async def test_a_dvs_token_from_the_cli_logs_in_and_all_dtas_together_cannot(net, tmp_path):
    """Key-escrow-less: the device makes its key, the grant names it; the three D-TAs, even
    together and with a grant of their own, cannot make a token that logs in as the user."""
    token = tmp_path / "ivan.token"
    done = await trio.to_thread.run_sync(lambda: client("keygen", "--id", "ivan", "--token", token))
    assert done.returncode == 0, done.stderr
    device_key = done.stdout.strip().splitlines()[-1]
    assert token.stat().st_mode & 0o777 == 0o600
    assert (await trio.to_thread.run_sync(lambda: client("keygen", "--id", "ivan", "--token", token))).returncode == 2
    grant = tmp_path / "ivan.grant"
    done = await trio.to_thread.run_sync(lambda: client(
        "grant", "--data-dir", net.node(1).data_dir, "--id", "ivan", "--device-key", device_key, "--out", grant))
    assert done.returncode == 0 and "DVS grant" in done.stdout, done.stderr
    done = await trio.to_thread.run_sync(lambda: client(
        "enroll", "--id", "ivan", "--grant", grant, "--token", token,
        *[a for url in dta_urls(net) for a in ("--dta", url)], pin="2468", tmp_path=tmp_path))
    assert done.returncode == 0 and "device key (DVS)" in done.stdout, done.stderr
    enrolled = TokenFile.load(token)
    for one_pass in (False, True):
        assert (await login(enrolled, net.node(MFA).api_url, "2468", one_pass=one_pass)).mfa == net.node(MFA).identity

    # Every D-TA resets ivan, and a member grants a device key of the D-TAs' own.
    for i in DTA:
        await admin(net, i, "dta.reset", id="ivan")
    rogue = new_device("ivan")
    rogue_grant = base64.b64decode((await admin(net, 2, "mpin.grant", id="ivan",
                                                device_key=base64.b64encode(device_key_of(rogue)).decode()))["grant"])
    forged = await enroll("ivan", rogue_grant, dta_urls(net), "0000", device=rogue)
    assert await refused_code(login(forged, net.node(MFA).api_url, "0000")) == "mfa-device-key"
    assert await refused_code(login(await enroll_again(net, "ivan"), net.node(MFA).api_url, "0000")) == \
        "mfa-device-required"

    # [mfa] grant_issuers: a member that the D-TAs take grants from, but the MFA node does
    # not take device keys from, cannot register one (and that is no wrong PIN).
    judy = new_device("judy")
    grant = base64.b64decode((await admin(net, 2, "mpin.grant", id="judy",
                                          device_key=base64.b64encode(device_key_of(judy)).decode()))["grant"])
    judy_token = await enroll("judy", grant, dta_urls(net), "1212", device=judy)
    for _ in range(MAX_FAILURES + 1):
        assert await refused_code(login(judy_token, net.node(MFA).api_url, "1212")) == "mfa-not-member"
    assert "judy" not in [entry["user_id"] for entry in (await admin(net, MFA, "mfa.status"))["locked"]]


async def enroll_again(net, user_id: str) -> TokenFile:
    """A plain token for `user_id` after every D-TA reset its enrolment."""
    for i in DTA:
        await admin(net, i, "dta.reset", id=user_id)
    return await enroll(user_id, await grant_for(net, user_id), dta_urls(net), "0000")
