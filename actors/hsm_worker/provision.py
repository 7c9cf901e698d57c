"""The default SoftHSM2 token of a data dir: where it lives and how it is created.

Layout (everything 0700/0600)::

    <data dir>/softhsm/softhsm2.conf   tokendir = <data dir>/softhsm/tokens
    <data dir>/softhsm/tokens/         the token (SoftHSM's file object store)
    <data dir>/hsm.pin                 the user PIN (or wherever hsm.pin_file says)

A SoftHSM module reads ``SOFTHSM2_CONF`` when it is initialised, so a node
that uses the data dir's token sets it to ``softhsm_env(data_dir)`` (always,
also when the file is missing: a data dir copied without its token must fail
clearly, never fall back to the system's /etc/softhsm tokens).

`create_softhsm_token` puts no PIN on a command line (``/proc/*/cmdline`` is
world-readable, so ``softhsm2-util --pin`` is out):

1. the token is initialised (C_InitToken, which python-pkcs11 lacks) in a
   short-lived child interpreter that calls the module through cffi (ABI
   mode) and reads the SO PIN from its stdin, so this process's python-pkcs11,
   which may have initialised the module already, is not disturbed by a second
   C_Initialize / C_Finalize;
2. this process logs in as SO with python-pkcs11 and sets the user PIN;
3. the user PIN is written 0600 (atomically) to the PIN file.

All of it happens in a staging directory (``softhsm/tokens.partial``) that is
renamed to ``softhsm/tokens`` only once the token is complete and its PIN
written: an interrupted run leaves no half-made token (no user PIN, and an SO
PIN nobody knows), and the next run starts over.

The SO PIN is random and is not stored anywhere: nothing in the node needs
it (the node logs in as the user; SoftHSM has no PIN retry counter for an SO
to reset), and the only thing an SO could do with it, re-initialising the
token, destroys every key in it, which is the same as making a new token.

Resource use: provisioning re-initialises the module in this process (the new
token is not visible otherwise), which invalidates every session this process
had open on it. Call it only where no HSM session is in use (``milagro-node
init``, tests), never in a running node. Afterwards the module is initialised
on the data dir's final configuration, ready for `Pkcs11Session.open`.

PINs are generated straight into `SecretBytes`; python-pkcs11 takes PINs as
``str`` only, so one immutable copy of each exists briefly in this process
(unavoidable with that library). Buffers we own are wiped.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pkcs11

from milagro_node.private_files import fsync_dir, write_private
from milagro_node.secret_memory import SecretBytes, wipe_buffer

from .session import HsmError, HsmTarget, _library

__all__ = [
    "SOFTHSM_MODULE",
    "create_softhsm_token",
    "softhsm_conf",
    "softhsm_dir",
    "softhsm_env",
    "softhsm_problem",
    "softhsm_token_present",
    "softhsm_tokens_dir",
]

SOFTHSM_MODULE = Path("/usr/lib/softhsm/libsofthsm2.so")
PIN_LENGTH = 32  # characters of the URL-safe base64 alphabet: 192 bits
_ALPHABET = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"  # 64: no modulo bias
_CHILD_TIMEOUT_S = 60

# The child interpreter (run with `python -I -c`): C_InitToken on the one slot of
# an empty token directory, SO PIN from stdin. Exit 0 on success, 3 with a
# message on stderr otherwise. Only the four functions it calls are declared.
_INIT_TOKEN_CHILD = r'''
import sys
import cffi

ffi = cffi.FFI()
ffi.cdef("""
typedef unsigned long CK_ULONG;
CK_ULONG C_Initialize(void *init_args);
CK_ULONG C_Finalize(void *reserved);
CK_ULONG C_GetSlotList(unsigned char token_present, CK_ULONG *slot_list, CK_ULONG *count);
CK_ULONG C_InitToken(CK_ULONG slot_id, unsigned char *so_pin, CK_ULONG so_pin_len, unsigned char *label);
""")

def fail(message):
    sys.stderr.write(message + "\n")
    sys.exit(3)

def check(step, rv):
    if rv != 0:
        fail("%s returned CKR 0x%08X" % (step, rv))

module, label = sys.argv[1], sys.argv[2].encode("utf-8")
pin = bytearray(256)
size = 0
while size < len(pin):
    got = sys.stdin.buffer.raw.readinto(memoryview(pin)[size:])
    if not got:
        break
    size += got
if not 4 <= size < len(pin):
    fail("the SO PIN must be 4..255 bytes")
try:
    lib = ffi.dlopen(module)
except OSError as exc:
    fail("cannot load %s: %s" % (module, exc))
check("C_Initialize", lib.C_Initialize(ffi.NULL))
try:
    count = ffi.new("CK_ULONG *")
    check("C_GetSlotList", lib.C_GetSlotList(0, ffi.NULL, count))
    slots = ffi.new("CK_ULONG[]", max(count[0], 1))
    check("C_GetSlotList", lib.C_GetSlotList(0, slots, count))
    if count[0] != 1:
        fail("expected the one free slot of an empty token directory, found %d slots" % count[0])
    padded = ffi.new("unsigned char[32]", label.ljust(32, b" "))
    buffer = ffi.from_buffer(pin)
    try:
        check("C_InitToken", lib.C_InitToken(slots[0], ffi.cast("unsigned char *", buffer), size, padded))
    finally:
        ffi.memmove(buffer, bytes(len(pin)), len(pin))
finally:
    lib.C_Finalize(ffi.NULL)
'''


# --------------------------------------------------------------------------- layout


def softhsm_dir(data_dir: Path) -> Path:
    return Path(data_dir) / "softhsm"


def softhsm_conf(data_dir: Path) -> Path:
    return softhsm_dir(data_dir) / "softhsm2.conf"


def softhsm_tokens_dir(data_dir: Path) -> Path:
    return softhsm_dir(data_dir) / "tokens"


def softhsm_env(data_dir: Path) -> tuple[tuple[str, str], ...]:
    """The environment a SoftHSM module needs to use the data dir's token."""
    return (("SOFTHSM2_CONF", str(softhsm_conf(data_dir))),)


def _conf_text(tokens_dir: Path) -> str:
    return (
        "# SoftHSM2 configuration of this Milagro node's data dir (written by milagro-node init).\n"
        f"directories.tokendir = {tokens_dir}\n"
        "objectstore.backend = file\n"
        "log.level = ERROR\n"
    )


def softhsm_token_present(data_dir: Path) -> bool:
    """True if the data dir has a token directory with something in it.

    This is the commit point of `create_softhsm_token`: the directory appears
    (by rename) only once its token is complete.
    """
    try:
        return any(softhsm_tokens_dir(data_dir).iterdir())
    except (FileNotFoundError, NotADirectoryError):
        return False


def softhsm_problem(data_dir: Path) -> str | None:
    """Why the data dir's SoftHSM configuration cannot be used, or None.

    Checked without loading the module, so that the operator reads what is
    wrong (missing file, moved data dir) rather than the module's
    CKR_GENERAL_ERROR.
    """
    conf = softhsm_conf(data_dir)
    expected = softhsm_tokens_dir(data_dir)
    try:
        text = conf.read_text()
    except FileNotFoundError:
        return (f"{conf} does not exist: this data dir has no SoftHSM token (copied or restored without "
                "its softhsm/ directory? restore that directory; on a new data dir run milagro-node init)")
    except (OSError, UnicodeDecodeError) as exc:
        return f"cannot read {conf} ({getattr(exc, 'strerror', None) or type(exc).__name__})"
    tokendir = None
    for line in text.splitlines():
        key, sep, value = line.partition("=")
        if sep and key.strip() == "directories.tokendir":
            tokendir = value.strip()
    if tokendir is None:
        return f"{conf} sets no directories.tokendir"
    if os.path.realpath(tokendir) != os.path.realpath(expected):
        return (f"{conf} points at the tokens in {tokendir}, not at {expected} (the data dir was moved or "
                "copied?): delete that file and run milagro-node init, which rewrites it")
    if not softhsm_token_present(data_dir):
        return (f"{expected} is missing or empty: this data dir has no SoftHSM token (copied or restored "
                "without its softhsm/ directory?)")
    return None


# --------------------------------------------------------------------------- creation


def create_softhsm_token(
    data_dir: Path,
    label: str,
    pin_file: Path | None,
    *,
    user_pin: SecretBytes | None = None,
    module: Path = SOFTHSM_MODULE,
) -> bool:
    """Create the data dir's SoftHSM token labelled `label`, unless it has one.

    With `user_pin` None a random user PIN is generated and written 0600 to
    `pin_file`; with a `user_pin` (the operator's, from an environment
    variable) that PIN is used and no file is written. Returns True if a
    token was created, False if the data dir already had one (then nothing
    changes, except that a missing softhsm2.conf is rewritten). Raises
    HsmError (hsm-unavailable when the module fails, hsm-bad-request for a
    bad label or a missing PIN file argument).
    """
    data_dir = Path(data_dir).absolute()
    if not 0 < len(label.encode()) <= 32:
        raise HsmError("hsm-bad-request", "a token label is 1..32 bytes of UTF-8")
    if user_pin is None and pin_file is None:
        raise HsmError("hsm-bad-request", "a new SoftHSM token needs a PIN file or a PIN")
    if not module.exists():
        raise HsmError("hsm-unavailable", f"PKCS#11 module {module} does not exist (install softhsm2)")
    base, conf, tokens = softhsm_dir(data_dir), softhsm_conf(data_dir), softhsm_tokens_dir(data_dir)
    final_env = softhsm_env(data_dir)
    if softhsm_token_present(data_dir):
        if not conf.exists():  # interrupted after the rename, or removed to fix a moved data dir
            write_private(conf, _conf_text(tokens).encode())
        return False

    base.mkdir(mode=0o700, parents=True, exist_ok=True)
    base.chmod(0o700)
    write_private(conf, _conf_text(tokens).encode())
    staging = base / "tokens.partial"
    staging_conf = base / "softhsm2.partial.conf"
    shutil.rmtree(staging, ignore_errors=True)  # left by an interrupted run: never a usable token
    staging.mkdir(mode=0o700)
    write_private(staging_conf, _conf_text(staging).encode())
    staging_env = (("SOFTHSM2_CONF", str(staging_conf)),)

    so_pin = _random_pin()
    own_pin = user_pin is None
    pin = _random_pin() if own_pin else user_pin
    assert pin is not None
    touched_module = False
    try:
        _init_token_in_child(module, label, so_pin, dict(os.environ, SOFTHSM2_CONF=str(staging_conf)))
        touched_module = True
        _set_user_pin(module, label, so_pin, pin, staging_env)
        if own_pin:
            assert pin_file is not None
            _write_pin_file(Path(pin_file), pin)
        # Commit: the token appears under its final name, complete, PIN written.
        os.rename(staging, tokens)  # also replaces an empty tokens/ directory
        fsync_dir(base)
    finally:
        so_pin.close()
        if own_pin:
            pin.close()
        staging_conf.unlink(missing_ok=True)
        shutil.rmtree(staging, ignore_errors=True)
        if touched_module:
            _point_module_at(module, label, final_env)
    return True


def _random_pin() -> SecretBytes:
    """PIN_LENGTH URL-safe characters from the OS RNG, built in secret memory."""
    pin = SecretBytes(PIN_LENGTH)
    with SecretBytes.random(PIN_LENGTH) as noise, noise.view() as source, pin.view() as out:
        for i in range(PIN_LENGTH):
            out[i] = _ALPHABET[source[i] & 63]
    return pin


def _init_token_in_child(module: Path, label: str, so_pin: SecretBytes, env: dict[str, str]) -> None:
    read_end, write_end = os.pipe()
    try:
        proc = subprocess.Popen(
            [sys.executable, "-I", "-c", _INIT_TOKEN_CHILD, str(module), label],
            stdin=read_end, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env,
        )
    except OSError:
        os.close(write_end)
        raise
    finally:
        os.close(read_end)
    try:
        with so_pin.view() as view:
            written = 0
            while written < len(view):  # straight from secret memory: no copy in a Python buffer
                written += os.write(write_end, view[written:])
    except BrokenPipeError:
        pass  # the child died early; its stderr says why
    finally:
        os.close(write_end)
    try:
        _, err = proc.communicate(timeout=_CHILD_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
        raise HsmError("hsm-unavailable", f"initialising a SoftHSM token with {module} timed out") from None
    if proc.returncode != 0:
        reason = err.decode(errors="replace").strip().splitlines()[-1:] or [f"exit status {proc.returncode}"]
        raise HsmError("hsm-unavailable", f"cannot initialise a SoftHSM token with {module}: {reason[0]}")


def _set_user_pin(module: Path, label: str, so_pin: SecretBytes, user_pin: SecretBytes,
                  env: tuple[tuple[str, str], ...]) -> None:
    """Log in as SO on the new token and set the user PIN (python-pkcs11, this process)."""
    target = HsmTarget(module, label, None, user_pin, env)
    lib = _library(target, rescan=True)  # the module must rescan to see the child's token
    try:
        token = lib.get_token(token_label=label)
        with so_pin.view() as so_view, user_pin.view() as user_view:
            session = token.open(rw=True, so_pin=bytes(so_view).decode())
            try:
                session.init_pin(bytes(user_view).decode())
            finally:
                session.close()
        # Prove the user PIN works before anything relies on it.
        with user_pin.view() as user_view:
            token.open(user_pin=bytes(user_view).decode()).close()
    except (pkcs11.PinLenRange, pkcs11.PinInvalid):
        raise HsmError("hsm-pin", f"SoftHSM refused the user PIN for {label!r} (it takes 4..255 bytes)") from None
    except pkcs11.PKCS11Error as exc:
        raise HsmError("hsm-unavailable",
                       f"cannot set the user PIN of the new SoftHSM token {label!r} ({type(exc).__name__})") from None


def _point_module_at(module: Path, label: str, env: tuple[tuple[str, str], ...]) -> None:
    """Leave the module initialised on the data dir's final configuration."""
    with SecretBytes(0) as no_pin:
        try:
            _library(HsmTarget(module, label, None, no_pin, env), rescan=True)
        except HsmError:
            pass  # the next Pkcs11Session.open reports it


def _write_pin_file(path: Path, pin: SecretBytes) -> None:
    """Write the PIN and a newline to `path` atomically, 0600, wiping our copy."""
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    with pin.view() as view:
        line = bytearray(len(view) + 1)  # one buffer, so the only copy is the one we wipe
        line[:-1] = view
        line[-1] = ord("\n")
    try:
        write_private(path, line)
    finally:
        wipe_buffer(line)
