"""Creating a data dir's SoftHSM2 token (actors.hsm_worker.provision), with the real module.

Each test makes its own data dir in tmp_path. Provisioning re-initialises the
module in this process, so no test here keeps a session open across it.
"""

import hashlib
import os
import stat
import threading
from pathlib import Path

import pytest

from actors.hsm_worker.provision import (
    SOFTHSM_MODULE, create_softhsm_token, softhsm_conf, softhsm_env, softhsm_problem, softhsm_token_present,
    softhsm_tokens_dir,
)
from actors.hsm_worker.session import HsmError, HsmTarget, Pkcs11Session
from milagro_node.secret_memory import SecretBytes

pytestmark = pytest.mark.skipif(not SOFTHSM_MODULE.exists(), reason="softhsm2 is installed by scripts/install.sh")
LABEL = "milagro-node"
PIN_ALPHABET = set(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_")


def tree(root: Path) -> dict[str, str]:
    """Every file under `root` with a hash of its content."""
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file()}


def open_session(data_dir: Path, pin: bytes, label: str = LABEL) -> Pkcs11Session:
    target = HsmTarget(SOFTHSM_MODULE, label, None, SecretBytes.copy_from(pin), softhsm_env(data_dir))
    return Pkcs11Session.open(target, rescan=True)


class CmdlineWatcher:
    """Collect the command line of every process that exists while it runs."""

    def __init__(self) -> None:
        self.seen: set[bytes] = set()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            for pid in os.listdir("/proc"):
                if pid.isdigit():
                    try:
                        with open(f"/proc/{pid}/cmdline", "rb") as f:
                            self.seen.add(f.read())
                    except OSError:
                        pass  # gone already

    def __enter__(self) -> "CmdlineWatcher":
        self._thread.start()
        return self

    def __exit__(self, *exc_info) -> None:
        self._stop.set()
        self._thread.join(timeout=10)


def test_creates_a_token_a_0600_pin_file_and_its_conf(tmp_path):
    data = tmp_path / "node"
    pin_file = data / "hsm.pin"
    assert create_softhsm_token(data, LABEL, pin_file) is True

    assert stat.S_IMODE(pin_file.stat().st_mode) == 0o600
    content = pin_file.read_bytes()
    assert content.endswith(b"\n")
    pin = content[:-1]
    assert len(pin) == 32 and set(pin) <= PIN_ALPHABET
    for path in (data / "softhsm", softhsm_tokens_dir(data)):
        assert stat.S_IMODE(path.stat().st_mode) == 0o700
    assert stat.S_IMODE(softhsm_conf(data).stat().st_mode) == 0o600
    conf = softhsm_conf(data).read_text()
    assert f"directories.tokendir = {softhsm_tokens_dir(data)}\n" in conf
    assert "objectstore.backend = file\n" in conf and "log.level = ERROR\n" in conf
    assert softhsm_env(data) == (("SOFTHSM2_CONF", str(softhsm_conf(data))),)
    assert sorted(p.name for p in (data / "softhsm").iterdir()) == ["softhsm2.conf", "tokens"]  # no staging left
    assert softhsm_problem(data) is None

    session = open_session(data, pin)
    try:
        info = session.info()
        assert info["token"] == LABEL and info["model"] == "SoftHSM v2" and not info["missing_required"]
    finally:
        session.close()


def test_second_run_changes_nothing(tmp_path):
    data = tmp_path / "node"
    assert create_softhsm_token(data, LABEL, data / "hsm.pin")
    before = tree(data)
    assert create_softhsm_token(data, LABEL, data / "hsm.pin") is False
    assert tree(data) == before


def test_every_data_dir_gets_its_own_token_and_pin(tmp_path):
    a, b = tmp_path / "a", tmp_path / "b"
    create_softhsm_token(a, LABEL, a / "hsm.pin")
    create_softhsm_token(b, LABEL, b / "hsm.pin")
    pin_a, pin_b = (d.joinpath("hsm.pin").read_bytes().strip() for d in (a, b))
    assert pin_a != pin_b
    serials = []
    for data, pin in ((a, pin_a), (b, pin_b)):
        session = open_session(data, pin)
        serials.append(session.info()["serial"])
        session.close()
    assert serials[0] != serials[1]
    with pytest.raises(HsmError) as wrong:
        open_session(a, pin_b)
    assert wrong.value.code == "hsm-pin"


def test_no_pin_on_any_command_line(tmp_path):
    data = tmp_path / "node"
    with CmdlineWatcher() as watcher:
        create_softhsm_token(data, LABEL, data / "hsm.pin")
    pin = (data / "hsm.pin").read_bytes().strip()

    children = [c for c in watcher.seen if b"C_InitToken" in c]
    assert children, "the watcher did not see the token-initialising child"
    for cmdline in children:  # python -I -c <code> <module> <label>: nothing else
        assert cmdline.rstrip(b"\0").split(b"\0")[-2:] == [str(SOFTHSM_MODULE).encode(), LABEL.encode()]
    for cmdline in watcher.seen:
        assert pin not in cmdline
        assert b"--pin" not in cmdline and b"--so-pin" not in cmdline and b"softhsm2-util" not in cmdline


def test_operator_pin_is_used_and_no_pin_file_written(tmp_path):
    data = tmp_path / "node"
    with SecretBytes.copy_from(b"operator-chosen-pin") as pin:
        assert create_softhsm_token(data, "custom", None, user_pin=pin)
    assert not (data / "hsm.pin").exists()
    open_session(data, b"operator-chosen-pin", label="custom").close()


def test_interrupted_run_leftovers_are_cleared(tmp_path):
    data = tmp_path / "node"
    staging = data / "softhsm" / "tokens.partial"
    (staging / "half-made").mkdir(parents=True)
    (staging / "half-made" / "token.object").write_bytes(b"junk")
    softhsm_tokens_dir(data).mkdir()  # an empty tokens/ is not a token
    assert not softhsm_token_present(data)

    assert create_softhsm_token(data, LABEL, data / "hsm.pin")
    assert not staging.exists()
    assert [p.name for p in softhsm_tokens_dir(data).iterdir()] != ["half-made"]
    open_session(data, (data / "hsm.pin").read_bytes().strip()).close()


def test_missing_conf_beside_an_existing_token_is_rewritten(tmp_path):
    data = tmp_path / "node"
    create_softhsm_token(data, LABEL, data / "hsm.pin")
    pin = (data / "hsm.pin").read_bytes()
    softhsm_conf(data).unlink()
    assert "does not exist" in softhsm_problem(data)

    assert create_softhsm_token(data, LABEL, data / "hsm.pin") is False
    assert (data / "hsm.pin").read_bytes() == pin
    assert softhsm_problem(data) is None
    open_session(data, pin.strip()).close()


def test_problems_are_named_without_loading_the_module(tmp_path):
    data = tmp_path / "node"
    assert "does not exist" in softhsm_problem(data)
    create_softhsm_token(data, LABEL, data / "hsm.pin")

    moved = tmp_path / "moved"
    os.rename(data, moved)
    problem = softhsm_problem(moved)
    assert "points at the tokens in" in problem and str(softhsm_tokens_dir(data)) in problem

    softhsm_conf(moved).unlink()
    create_softhsm_token(moved, LABEL, moved / "hsm.pin")  # the documented fix
    assert softhsm_problem(moved) is None

    for child in softhsm_tokens_dir(moved).iterdir():
        for f in child.iterdir():
            f.unlink()
        child.rmdir()
    assert "missing or empty" in softhsm_problem(moved)


def test_bad_arguments(tmp_path):
    with pytest.raises(HsmError) as long_label:
        create_softhsm_token(tmp_path, "x" * 33, tmp_path / "hsm.pin")
    assert long_label.value.code == "hsm-bad-request"
    with pytest.raises(HsmError) as no_pin:
        create_softhsm_token(tmp_path, LABEL, None)
    assert no_pin.value.code == "hsm-bad-request"
    with pytest.raises(HsmError) as no_module:
        create_softhsm_token(tmp_path, LABEL, tmp_path / "hsm.pin", module=tmp_path / "libnothing.so")
    assert no_module.value.code == "hsm-unavailable" and "libnothing.so" in no_module.value.message
    assert not (tmp_path / "softhsm").exists()


def test_too_short_operator_pin_creates_nothing(tmp_path):
    data = tmp_path / "node"
    with SecretBytes.copy_from(b"123") as pin, pytest.raises(HsmError) as short:
        create_softhsm_token(data, LABEL, None, user_pin=pin)
    assert short.value.code == "hsm-pin" and "123" not in short.value.message
    assert not softhsm_token_present(data)
    assert sorted(p.name for p in (data / "softhsm").iterdir()) == ["softhsm2.conf"]
