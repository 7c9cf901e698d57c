"""`milagro-node init` creating the data dir's SoftHSM token, and `milagro-node hsm check`,
run as the installed command against the real SoftHSM2 module."""

import hashlib
import os
import shutil
import stat
import threading
from pathlib import Path

import pytest

from actors.hsm_worker.provision import SOFTHSM_MODULE
from testkit import clean_env

pytestmark = pytest.mark.skipif(not SOFTHSM_MODULE.exists(), reason="softhsm2 is installed by scripts/install.sh")


def tree(root: Path) -> dict[str, str]:
    """Every file under `root` with a hash of its content, except SoftHSM's token.object,
    which the module rewrites (a generation counter) at every login."""
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file() and p.name != "token.object"}


def token_objects(data: Path) -> list[str]:
    return sorted(p.name for p in (data / "softhsm" / "tokens").rglob("*.object") if p.name != "token.object")


def watch_cmdlines(stop: threading.Event, seen: set[bytes]) -> None:
    while not stop.is_set():
        for pid in os.listdir("/proc"):
            if pid.isdigit():
                try:
                    with open(f"/proc/{pid}/cmdline", "rb") as f:
                        seen.add(f.read())
                except OSError:
                    pass


@pytest.fixture
def node(tmp_path, cli) -> Path:
    data = tmp_path / "node"
    result = cli("init", "--data-dir", data)
    assert result.returncode == 0, result.stderr
    return data


def test_init_creates_the_token_and_a_private_pin_file(tmp_path, cli):
    data = tmp_path / "node"
    seen: set[bytes] = set()
    stop = threading.Event()
    watcher = threading.Thread(target=watch_cmdlines, args=(stop, seen), daemon=True)
    watcher.start()
    try:
        result = cli("init", "--data-dir", data)
    finally:
        stop.set()
        watcher.join(10)
    assert result.returncode == 0, result.stderr
    pin_file = data / "hsm.pin"
    assert (f"created SoftHSM token 'milagro-node' in {data / 'softhsm' / 'tokens'} "
            f"(PIN in {pin_file}, 0600)") in result.stdout
    assert stat.S_IMODE(pin_file.stat().st_mode) == 0o600
    pin = pin_file.read_bytes().strip()
    assert len(pin) == 32
    assert pin.decode() not in result.stdout + result.stderr

    # No PIN on any command line while init ran (the child that initialised the token was seen).
    assert any(b"C_InitToken" in cmdline for cmdline in seen)
    for cmdline in seen:
        assert pin not in cmdline and b"--pin" not in cmdline and b"--so-pin" not in cmdline


def test_second_init_changes_nothing(node, cli):
    pin, before = (node / "hsm.pin").read_bytes(), tree(node)
    again = cli("init", "--data-dir", node)
    assert again.returncode == 0, again.stderr
    assert "already initialised; nothing changed" in again.stdout
    assert (node / "hsm.pin").read_bytes() == pin
    assert tree(node) == before


def test_hsm_check_passes_on_the_default_token_and_leaves_it_as_it_was(node, cli):
    objects = token_objects(node)
    result = cli("hsm", "check", "--data-dir", node)
    assert result.returncode == 0, result.stdout + result.stderr
    out = result.stdout
    for line in ("module        /usr/lib/softhsm/libsofthsm2.so", "token         milagro-node",
                 f"pin           from file {node / 'hsm.pin'}", "manufacturer  SoftHSM project",
                 "model         SoftHSM v2"):
        assert line in out
    rows = {line.split("  ")[0]: line for line in out.splitlines() if "  yes  " in line or "  no  " in line}
    for name in ("open session and log in", "mechanism AES_GCM", "aes-gcm wrap/unwrap round trip",
                 "aes-gcm rejects other associated data", "ed25519 keypair + sign, verified",
                 "secp256k1 keypair + sign (low-S), verified", "secp256k1 ECDH derive, matches",
                 "cleanup of temporary keys"):
        assert "PASS" in rows[name], out
    assert "FAIL" not in out
    assert out.rstrip().endswith("hsm check: PASS (every required check passed)")
    assert token_objects(node) == objects  # every temporary key destroyed
    assert (node / "hsm.pin").read_text().strip() not in out + result.stderr


def test_hsm_check_with_a_wrong_pin_fails(node, cli):
    (node / "hsm.pin").write_text("not-the-pin\n")
    result = cli("hsm", "check", "--data-dir", node)
    assert result.returncode == 1
    assert "hsm-pin" in result.stdout and "refused the PIN" in result.stdout
    assert "hsm check: FAIL" in result.stdout
    assert "not-the-pin" not in result.stdout + result.stderr


def test_hsm_check_config_error_exits_2(tmp_path, cli):
    config = tmp_path / "node.toml"
    config.write_text("[hsm]\nmodul = '/usr/lib/softhsm/libsofthsm2.so'\n")
    result = cli("hsm", "check", "--config", config)
    assert result.returncode == 2
    assert "configuration error" in result.stderr and "hsm.modul" in result.stderr
    assert "Traceback" not in result.stderr


def test_copied_data_dir_without_its_token(node, tmp_path, cli):
    copy = tmp_path / "copy"
    shutil.copytree(node, copy, ignore=shutil.ignore_patterns("softhsm"))
    # Even with the process pointed at the original's token (same label, same PIN).
    env = clean_env(SOFTHSM2_CONF=str(node / "softhsm" / "softhsm2.conf"))

    check = cli("hsm", "check", "--data-dir", copy, env=env)
    assert check.returncode == 1
    assert "hsm-unavailable" in check.stdout and "no usable token" in check.stdout

    init = cli("init", "--data-dir", copy, env=env)  # does not paper over it with a new, empty token
    assert init.returncode == 1
    assert "hsm-unavailable" in init.stderr and "restore that directory" in init.stderr
    assert not (copy / "softhsm").exists()


def test_init_uses_the_operators_pin_from_the_environment(tmp_path, cli):
    data = tmp_path / "node"
    env = clean_env(MILAGRO_HSM_PIN_ENV="NODE_PIN", NODE_PIN="operator-pin-1234")
    result = cli("init", "--data-dir", data, env=env)
    assert result.returncode == 0, result.stderr
    assert "(PIN from environment variable NODE_PIN)" in result.stdout
    assert not (data / "hsm.pin").exists()
    assert "operator-pin-1234" not in result.stdout + result.stderr

    assert cli("hsm", "check", "--data-dir", data, env=env).returncode == 0
    unset = cli("hsm", "check", "--data-dir", data, env=clean_env(MILAGRO_HSM_PIN_ENV="NODE_PIN"))
    assert unset.returncode == 1 and "NODE_PIN" in unset.stdout and "hsm-pin" in unset.stdout


def test_init_with_another_module_creates_no_token_and_checks_it_opens(tmp_path, cli):
    data = tmp_path / "node"
    env = clean_env(MILAGRO_HSM_MODULE=str(tmp_path / "libvendor_pkcs11.so"), MILAGRO_HSM_PIN="0001password")
    result = cli("init", "--data-dir", data, env=env)
    assert result.returncode == 1
    assert "hsm-unavailable" in result.stderr and "libvendor_pkcs11.so" in result.stderr
    assert not (data / "softhsm").exists() and not (data / "hsm.pin").exists()
    assert (data / "node.db").exists()  # the rest of init is done; a re-run continues
