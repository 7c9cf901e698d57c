"""From the ``[hsm]`` config section to an `HsmTarget`: which module, which token, which PIN.

Node layer (runtime). The node hands ``lambda: hsm_target(config)`` to the
hsm-worker actor, which calls it at each (re)connect, so a fixed PIN file or
a restored token directory is picked up without a restart; ``milagro-node
init`` and ``milagro-node hsm check`` call it once.

PIN sources, first match wins (docs/hsm.md):

1. ``hsm.pin_env``: the *name* of an environment variable; when it is
   configured the variable must be set (an error otherwise, no fallback);
2. ``MILAGRO_HSM_PIN``, when set;
3. ``hsm.pin_file`` (default ``hsm.pin`` in the data dir), when the file exists;
4. ``hsm.pin`` from node.toml (the loader refuses it unless
   ``hsm.allow_pin_in_config = true``);
5. else an ``hsm-pin`` error naming the missing file.

The PIN goes straight into `SecretBytes`: a file is read into a bytearray
that is wiped after the copy; a PIN from the environment or the config is a
Python ``str`` already (unwipeable; that is why a file is the default).
Errors name the file or the variable, never the PIN. A PIN file readable by
group or others is used but logged as a warning (once per file per process).

The SoftHSM2 module always gets the data dir's ``SOFTHSM2_CONF``, even when
that file is missing, and a missing or foreign configuration is reported as
``hsm-unavailable`` ("no usable token") before the module is loaded: a data
dir copied without its token must never fall back to the system's
/etc/softhsm tokens. Any other module gets no extra environment.
"""

from __future__ import annotations

import logging
import os
import stat
from collections.abc import Mapping
from pathlib import Path

from actors.hsm_worker.provision import SOFTHSM_MODULE, softhsm_env, softhsm_problem
from actors.hsm_worker.session import HsmError, HsmTarget
from milagro_node.secret_memory import SecretBytes, wipe_buffer

from .config import NodeConfig

__all__ = ["PIN_ENV", "MAX_PIN_BYTES", "hsm_target", "is_default_softhsm", "new_pin_file", "read_pin"]

log = logging.getLogger("milagro_node.hsm")

PIN_ENV = "MILAGRO_HSM_PIN"
MAX_PIN_BYTES = 1024  # a CloudHSM "user:password" fits many times over
_warned_files: set[str] = set()


def is_default_softhsm(config: NodeConfig) -> bool:
    """True if ``hsm.module`` is a SoftHSM2 module (the default one, or another copy of it)."""
    module = config.hsm.module
    if module.name == SOFTHSM_MODULE.name:
        return True
    try:
        return os.path.samefile(module, SOFTHSM_MODULE)
    except OSError:
        return False


def hsm_target(config: NodeConfig, environ: Mapping[str, str] = os.environ) -> HsmTarget:
    """The token the node uses and how to log in to it; raise HsmError (hsm-pin, hsm-unavailable)."""
    section = config.hsm
    env: tuple[tuple[str, str], ...] = ()
    if is_default_softhsm(config):
        env = softhsm_env(config.data_dir)
        problem = softhsm_problem(config.data_dir)
        if problem is not None:
            token = section.token_label or f"serial {section.token_serial}"
            raise HsmError("hsm-unavailable", f"no usable token {token!r}: {problem}")
    pin, _ = read_pin(config, environ)
    return HsmTarget(section.module, section.token_label, section.token_serial, pin, env)


def read_pin(config: NodeConfig, environ: Mapping[str, str] = os.environ) -> tuple[SecretBytes, str]:
    """The user PIN and where it came from ("environment variable X", "file F", "hsm.pin in F")."""
    section = config.hsm
    if section.pin_env:
        return _from_text(environ.get(section.pin_env), f"environment variable {section.pin_env}",
                          f"hsm.pin_env names the environment variable {section.pin_env}, which is not set")
    if environ.get(PIN_ENV):
        return _from_text(environ[PIN_ENV], f"environment variable {PIN_ENV}", "")
    config_pin = section.pin if section.allow_pin_in_config else None
    if section.pin_file is not None and (config_pin is None or os.path.lexists(section.pin_file)):
        return _from_file(section.pin_file), f"file {section.pin_file}"
    if config_pin is not None:
        return _from_text(config_pin, f"hsm.pin in {config.source or 'the config'}", "")
    raise HsmError("hsm-pin", f"no PIN configured: set hsm.pin_file, hsm.pin_env or {PIN_ENV}")


def new_pin_file(config: NodeConfig, environ: Mapping[str, str] = os.environ) -> Path | None:
    """Where a new token's random PIN goes: ``hsm.pin_file`` when that file would be the
    PIN source and does not exist yet; None when a PIN is already available (`read_pin`)."""
    section = config.hsm
    if section.pin_env or environ.get(PIN_ENV) or section.pin_file is None:
        return None
    if os.path.lexists(section.pin_file):
        return None
    return None if section.pin is not None and section.allow_pin_in_config else section.pin_file


def _from_text(value: str | None, where: str, missing: str) -> tuple[SecretBytes, str]:
    if value is None:
        raise HsmError("hsm-pin", missing)
    buffer = bytearray(value.encode())
    try:
        if not buffer:
            raise HsmError("hsm-pin", f"the PIN in {where} is empty")
        return SecretBytes.copy_from(buffer), where
    finally:
        wipe_buffer(buffer)


def _from_file(path: Path) -> SecretBytes:
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOCTTY)
    except FileNotFoundError:
        raise HsmError("hsm-pin", f"the PIN file {path} does not exist (set hsm.pin_file, hsm.pin_env "
                                  f"or {PIN_ENV}; milagro-node init writes it for a new SoftHSM token)") from None
    except OSError as exc:
        raise HsmError("hsm-pin", f"cannot read the PIN file {path} ({exc.strerror})") from None
    buffer = bytearray(MAX_PIN_BYTES + 2)
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise HsmError("hsm-pin", f"the PIN file {path} is not a regular file")
        if info.st_mode & 0o077 and str(path) not in _warned_files:
            _warned_files.add(str(path))
            log.warning("PIN file is readable by others", extra={
                "file": str(path), "mode": oct(stat.S_IMODE(info.st_mode)), "fix": f"chmod 600 {path}"})
        size = 0
        view = memoryview(buffer)
        try:
            while size < len(buffer):
                got = os.readv(fd, [view[size:]])
                if not got:
                    break
                size += got
        except OSError as exc:
            raise HsmError("hsm-pin", f"cannot read the PIN file {path} ({exc.strerror})") from None
        finally:
            view.release()
        if size > MAX_PIN_BYTES + 1:
            raise HsmError("hsm-pin", f"the PIN file {path} is longer than {MAX_PIN_BYTES} bytes")
        end = size
        if end and buffer[end - 1] == 0x0A:  # one trailing newline, as editors and `echo` write it
            end -= 1
            if end and buffer[end - 1] == 0x0D:
                end -= 1
        if end == 0:
            raise HsmError("hsm-pin", f"the PIN file {path} is empty")
        if end > MAX_PIN_BYTES:
            raise HsmError("hsm-pin", f"the PIN file {path} is longer than {MAX_PIN_BYTES} bytes")
        with memoryview(buffer)[:end] as pin:
            return SecretBytes.copy_from(pin)
    finally:
        os.close(fd)
        wipe_buffer(buffer)
