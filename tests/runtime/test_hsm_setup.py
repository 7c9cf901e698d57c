"""From [hsm] config to an HsmTarget: PIN sources and their precedence, the data dir's SoftHSM
token (never the system's), wrong PINs and copied data dirs, against the real SoftHSM2 module."""

import hashlib
import logging
import os
import shutil
from pathlib import Path

import pytest

from actors.hsm_worker.provision import SOFTHSM_MODULE, softhsm_conf, softhsm_env, softhsm_tokens_dir
from actors.hsm_worker.session import HsmError, HsmTarget, Pkcs11Session
from milagro_node.runtime.config import ConfigError, load_node_config
from milagro_node.runtime.datadir import initialise
from milagro_node.runtime.hsm_setup import hsm_target, is_default_softhsm, new_pin_file, read_pin
from milagro_node.secret_memory import SecretBytes

pytestmark = pytest.mark.skipif(not SOFTHSM_MODULE.exists(), reason="softhsm2 is installed by scripts/install.sh")


def config_for(data: Path, toml: str = "", environ: dict[str, str] | None = None):
    data.mkdir(parents=True, exist_ok=True)
    if toml:
        (data / "node.toml").write_text(toml)
    return load_node_config(None, data_dir=data, environ=environ or {})


def pin_of(pin: SecretBytes) -> bytes:
    with pin:
        return pin.reveal()


def tree(root: Path) -> dict[str, str]:
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file()}


def token_objects(data: Path) -> list[str]:
    """The key objects in the data dir's token (SoftHSM's file store: one <uuid>.object each)."""
    return sorted(p.name for p in softhsm_tokens_dir(data).rglob("*.object") if p.name != "token.object")


@pytest.fixture
def node(tmp_path) -> Path:
    """An initialised data dir: its own SoftHSM token, PIN in hsm.pin."""
    data = tmp_path / "node"
    initialise(data, environ={})
    return data


# -- PIN sources ---------------------------------------------------------------------


def test_pin_env_beats_everything(tmp_path):
    data = tmp_path / "d"
    (tmp_path / "d").mkdir()
    (data / "hsm.pin").write_text("from-file\n")
    config = config_for(data, '[hsm]\npin_env = "NODE_PIN"\npin = "from-config"\nallow_pin_in_config = true\n')
    pin, where = read_pin(config, {"NODE_PIN": "from-named-env", "MILAGRO_HSM_PIN": "from-milagro-env"})
    assert pin_of(pin) == b"from-named-env" and where == "environment variable NODE_PIN"


def test_unset_pin_env_is_an_error_not_a_fallback(tmp_path):
    data = tmp_path / "d"
    data.mkdir()
    (data / "hsm.pin").write_text("from-file\n")
    config = config_for(data, '[hsm]\npin_env = "NODE_PIN"\n')
    with pytest.raises(HsmError) as unset:
        read_pin(config, {"MILAGRO_HSM_PIN": "from-milagro-env"})
    assert unset.value.code == "hsm-pin" and "NODE_PIN" in unset.value.message


def test_milagro_hsm_pin_beats_the_file_and_the_config(tmp_path):
    data = tmp_path / "d"
    data.mkdir()
    (data / "hsm.pin").write_text("from-file\n")
    config = config_for(data, '[hsm]\npin = "from-config"\nallow_pin_in_config = true\n')
    pin, where = read_pin(config, {"MILAGRO_HSM_PIN": "from-milagro-env"})
    assert pin_of(pin) == b"from-milagro-env" and where == "environment variable MILAGRO_HSM_PIN"


def test_pin_file_beats_the_config_pin(tmp_path):
    data = tmp_path / "d"
    data.mkdir()
    (data / "hsm.pin").write_text("from-file\n")
    config = config_for(data, '[hsm]\npin = "from-config"\nallow_pin_in_config = true\n')
    pin, where = read_pin(config, {})
    assert pin_of(pin) == b"from-file" and where == f"file {data / 'hsm.pin'}"


def test_config_pin_only_when_allowed_and_no_pin_file(tmp_path):
    data = tmp_path / "d"
    config = config_for(data, '[hsm]\npin = "from-config"\nallow_pin_in_config = true\n')
    pin, where = read_pin(config, {})
    assert pin_of(pin) == b"from-config" and where.startswith("hsm.pin in ")
    assert new_pin_file(config, {}) is None  # init would use it rather than make a PIN file

    (data / "node.toml").write_text('[hsm]\npin = "from-config"\n')
    with pytest.raises(ConfigError) as refused:
        load_node_config(None, data_dir=data, environ={})
    assert "allow_pin_in_config" in str(refused.value) and "from-config" not in str(refused.value)


def test_missing_pin_file_names_the_file(tmp_path):
    config = config_for(tmp_path / "d", '[hsm]\npin_file = "secrets/user.pin"\n')
    assert new_pin_file(config, {}) == tmp_path / "d" / "secrets" / "user.pin"
    with pytest.raises(HsmError) as missing:
        read_pin(config, {})
    assert missing.value.code == "hsm-pin"
    assert str(tmp_path / "d" / "secrets" / "user.pin") in missing.value.message


def test_no_pin_source_at_all(tmp_path):
    config = config_for(tmp_path / "d", '[hsm]\npin_file = ""\n')
    with pytest.raises(HsmError) as none:
        read_pin(config, {})
    assert none.value.code == "hsm-pin" and "no PIN configured" in none.value.message


@pytest.mark.parametrize("content, expected", [
    (b"1234\n", b"1234"), (b"1234\r\n", b"1234"), (b"1234", b"1234"), (b"12 34\n\n", b"12 34\n"),
    (b"CryptoUser:CUPassword123!\n", b"CryptoUser:CUPassword123!"),
])
def test_pin_file_content(tmp_path, content, expected):
    data = tmp_path / "d"
    data.mkdir()
    (data / "hsm.pin").write_bytes(content)
    pin, _ = read_pin(config_for(data), {})
    assert pin_of(pin) == expected


@pytest.mark.parametrize("make, fragment", [
    (lambda p: p.write_bytes(b"\n"), "is empty"),
    (lambda p: p.write_bytes(b"x" * 5000), "longer than"),
    (lambda p: p.mkdir(), "not a regular file"),
])
def test_unusable_pin_file(tmp_path, make, fragment):
    data = tmp_path / "d"
    data.mkdir()
    make(data / "hsm.pin")
    with pytest.raises(HsmError) as bad:
        read_pin(config_for(data), {})
    assert bad.value.code == "hsm-pin" and fragment in bad.value.message
    assert str(data / "hsm.pin") in bad.value.message


def test_pin_file_readable_by_others_warns_but_works(tmp_path, caplog):
    data = tmp_path / "d"
    data.mkdir()
    pin_file = data / "hsm.pin"
    pin_file.write_text("an-open-secret\n")
    pin_file.chmod(0o644)
    with caplog.at_level(logging.WARNING, logger="milagro_node.hsm"):
        pin, _ = read_pin(config_for(data), {})
    assert pin_of(pin) == b"an-open-secret"
    [record] = [r for r in caplog.records if r.name == "milagro_node.hsm"]
    assert record.levelno == logging.WARNING and record.file == str(pin_file) and record.mode == "0o644"
    assert "an-open-secret" not in caplog.text


# -- targets -------------------------------------------------------------------------


def test_softhsm_target_uses_the_data_dir_token(node):
    config = config_for(node)
    assert is_default_softhsm(config)
    target = hsm_target(config, {})
    assert target.module == SOFTHSM_MODULE and target.token_label == "milagro-node"
    assert target.env == softhsm_env(node) == (("SOFTHSM2_CONF", str(softhsm_conf(node))),)
    assert target.pin == (node / "hsm.pin").read_bytes().strip()
    assert "hsm.pin" not in repr(target) and (node / "hsm.pin").read_text().strip() not in repr(target)
    session = Pkcs11Session.open(target, rescan=True)
    try:
        assert session.info()["token"] == "milagro-node"
    finally:
        session.close()


def test_other_modules_get_no_environment(tmp_path):
    data = tmp_path / "d"
    data.mkdir()
    (data / "hsm.pin").write_text("0001password\n")
    config = config_for(data, '[hsm]\nmodule = "/opt/vendor/lib/libvendor_pkcs11.so"\ntoken_label = "prod"\n')
    assert not is_default_softhsm(config)
    target = hsm_target(config, {"SOFTHSM2_CONF": "/elsewhere.conf"})
    assert target.env == () and target.token_label == "prod"
    with pytest.raises(HsmError) as absent:
        Pkcs11Session.open(target)
    assert absent.value.code == "hsm-unavailable" and "libvendor_pkcs11.so" in absent.value.message


def test_wrong_pin_is_refused_and_nothing_is_written(node):
    session = Pkcs11Session.open(hsm_target(config_for(node), {}), rescan=True)
    try:
        session.generate_key("kept", "aes-256")
    finally:
        session.close()
    objects, before = token_objects(node), tree(node / "softhsm")
    assert len(objects) == 2  # the node KEK made by init, and "kept"

    (node / "hsm.pin").write_text("not-the-pin\n")
    target = hsm_target(config_for(node), {})
    with pytest.raises(HsmError) as refused:
        Pkcs11Session.open(target, rescan=True)
    assert refused.value.code == "hsm-pin"
    assert "refused the PIN" in refused.value.message and "milagro-node" in refused.value.message
    assert "not-the-pin" not in str(refused.value)
    # No object created, changed or removed; SoftHSM rewrites its token.object (a generation
    # counter) at every login attempt, which is the module's bookkeeping, not a write of ours.
    after = tree(node / "softhsm")
    assert token_objects(node) == objects
    assert {k: v for k, v in after.items() if not k.endswith("/token.object")} == \
           {k: v for k, v in before.items() if not k.endswith("/token.object")}


def test_data_dir_copied_without_its_token_never_uses_another(node, tmp_path, monkeypatch):
    copy = tmp_path / "copy"
    shutil.copytree(node, copy, ignore=shutil.ignore_patterns("softhsm"))
    # The process environment points at the original's token, which has the same label
    # and accepts the copied PIN: a node that honoured it would open the wrong token.
    monkeypatch.setenv("SOFTHSM2_CONF", str(softhsm_conf(node)))
    config = config_for(copy)

    with pytest.raises(HsmError) as missing:
        hsm_target(config, dict(os.environ))
    assert missing.value.code == "hsm-unavailable"
    assert "no usable token" in missing.value.message and str(softhsm_conf(copy)) in missing.value.message

    # Even a target built by hand for the copy (its env names the missing conf) opens nothing.
    pin = SecretBytes.copy_from((copy / "hsm.pin").read_bytes().strip())
    with pytest.raises(HsmError) as unopened:
        Pkcs11Session.open(HsmTarget(SOFTHSM_MODULE, "milagro-node", None, pin, softhsm_env(copy)), rescan=True)
    assert unopened.value.code == "hsm-unavailable"
    assert os.environ["SOFTHSM2_CONF"] == str(softhsm_conf(copy))

    # A copy with the configuration but an empty token directory: the module starts, finds no token.
    (copy / "softhsm" / "tokens").mkdir(parents=True)
    softhsm_conf(copy).write_text(softhsm_conf(node).read_text().replace(str(node), str(copy)))
    with pytest.raises(HsmError) as empty:
        hsm_target(config, {})
    assert empty.value.code == "hsm-unavailable" and "no usable token" in empty.value.message


def test_moved_data_dir_is_reported(node, tmp_path):
    moved = tmp_path / "moved"
    shutil.copytree(node, moved)
    with pytest.raises(HsmError) as foreign:
        hsm_target(config_for(moved), {})
    assert foreign.value.code == "hsm-unavailable" and "points at the tokens in" in foreign.value.message
