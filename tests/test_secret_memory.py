"""Secret memory: locking, wiping, constant-time compare, no accidental copies.

Everything runs against the real extension and the real kernel: VmLck is read
from /proc, wipes are checked by reading the region back through cffi.
"""

import copy
import json
import mmap
import pickle
import resource
import subprocess
import sys
import textwrap

import pytest

from milagro_node import secret_memory as sm
from milagro_node._secmem import ffi, lib
from milagro_node.secret_memory import (
    SecretBytes,
    constant_time_equal,
    memory_status,
    wipe_buffer,
)

PAGE = mmap.PAGESIZE


def vm_locked_kib() -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmLck:"):
                return int(line.split()[1])
    raise AssertionError("no VmLck in /proc/self/status")


def region_bytes(secret: SecretBytes, n: int) -> bytes:
    """Read the secret's region straight from memory, bypassing the API."""
    return ffi.buffer(ffi.cast("char *", secret._ptr), n)[:]


def test_random_fills_and_has_length():
    with SecretBytes.random(32) as a, SecretBytes.random(32) as b:
        assert len(a) == 32
        assert a != b  # 2**-256 chance of a false failure
        assert any(a.reveal())


def test_zero_length_secret():
    with SecretBytes.random(0) as s, SecretBytes.copy_from(b"") as t:
        assert len(s) == 0 and s == t and s == b""
        with s.view() as v:
            assert v.nbytes == 0


def test_copy_from_and_view_write():
    src = bytearray(b"correct horse battery staple")
    with SecretBytes.copy_from(src) as s:
        wipe_buffer(src)
        assert src == bytearray(len(src))
        assert s == b"correct horse battery staple"
        with s.view() as v:
            assert not v.readonly
            v[0:7] = b"CORRECT"
        assert s.reveal().startswith(b"CORRECT horse")


def test_wipe_buffer_refuses_bytes():
    with pytest.raises(TypeError):
        wipe_buffer(b"immutable")


def test_locked_secret_shows_in_vmlck():
    soft, _ = resource.getrlimit(resource.RLIMIT_MEMLOCK)
    before = vm_locked_kib()
    with SecretBytes.random(32) as s:
        if soft == 0:
            pytest.skip("RLIMIT_MEMLOCK is 0 for this process")
        assert s.locked
        assert vm_locked_kib() >= before + PAGE // 1024
        assert "locked" in repr(s)
    assert vm_locked_kib() == before


def test_wipe_zeroes_the_region_in_place():
    with SecretBytes.random(64) as s:
        assert any(region_bytes(s, 64))
        s.wipe()
        assert region_bytes(s, 64) == bytes(64)
        assert s == bytes(64)  # still usable after wipe
        with s.view() as v:
            v[:] = b"\x01" * 64
        assert s == b"\x01" * 64


def test_close_wipes_whole_region_before_unmap():
    seen = []

    @ffi.callback("void(*)(const void *, size_t)")
    def before_unmap(p, n):
        seen.append(ffi.buffer(ffi.cast("char *", p), n)[:])

    s = SecretBytes.random(100)
    assert any(region_bytes(s, 100))
    lib.secmem_test_unmap_hook = before_unmap
    try:
        s.close()
        s.close()  # idempotent: no second unmap
    finally:
        lib.secmem_test_unmap_hook = ffi.NULL
    assert seen == [bytes(PAGE)]
    assert s.closed


def test_del_closes():
    before = memory_status()["secrets"]
    s = SecretBytes.random(16)
    assert memory_status()["secrets"] == before + 1
    del s
    assert memory_status()["secrets"] == before


@pytest.mark.parametrize(
    "a, b, equal",
    [
        (b"abc", b"abc", True),
        (b"abc", b"abd", False),
        (b"\x00abc", b"\x01abc", False),
        (b"abc", b"abcd", False),
        (b"abcd", b"abc", False),
        (b"", b"", True),
        (b"", b"\x00", False),
        (bytearray(b"xy"), memoryview(b"xy"), True),
    ],
)
def test_constant_time_equal(a, b, equal):
    assert constant_time_equal(a, b) is equal
    with SecretBytes.copy_from(a) as sa, SecretBytes.copy_from(b) as sb:
        assert (sa == sb) is equal
        assert (sa == b) is equal
        assert (sa != b) is (not equal)
        assert constant_time_equal(sa, b) is equal


def test_equal_to_non_buffer_is_false():
    with SecretBytes.random(4) as s:
        assert s != "text"
        assert s != 1234
        with pytest.raises(TypeError):
            constant_time_equal(s, "text")


def test_repr_and_str_hide_content():
    with SecretBytes.copy_from(b"hunter2-hunter2") as s:
        for text in (repr(s), str(s), f"{s}"):
            assert "hunter2" not in text
            assert "68756e746572" not in text  # nor in hex
            assert text.startswith("<SecretBytes 15 bytes, ")
    assert repr(s) == "<SecretBytes 15 bytes, closed>"


def test_unhashable():
    with SecretBytes.random(8) as s, pytest.raises(TypeError):
        hash(s)


@pytest.mark.parametrize(
    "leak",
    [pickle.dumps, copy.copy, copy.deepcopy, bytes],
    ids=["pickle", "copy", "deepcopy", "bytes"],
)
def test_silent_copies_refused(leak):
    with SecretBytes.random(8) as s, pytest.raises(TypeError):
        leak(s)


def test_use_after_close_raises():
    s = SecretBytes.random(8)
    s.close()
    with pytest.raises(ValueError):
        with s.view():
            pass
    with pytest.raises(ValueError):
        s.reveal()
    with pytest.raises(ValueError):
        with s:
            pass
    s.wipe()  # harmless no-op


def test_view_is_released_and_close_waits_for_it():
    with SecretBytes.random(8) as s:
        with s.view() as v:
            with pytest.raises(BufferError):
                s.close()
        with pytest.raises(ValueError):
            v[0]  # released at exit


def test_memory_status_counts():
    base = memory_status()
    a = SecretBytes.random(10)
    b = SecretBytes.random(PAGE + 1)  # two pages
    st = memory_status()
    assert st["secrets"] == base["secrets"] + 2
    if a.locked and b.locked:
        assert st["mlock"] == "locked"
        assert st["locked_bytes"] == base["locked_bytes"] + 3 * PAGE
    a.close()
    b.close()
    assert memory_status() == base


# Runs in a fresh interpreter: drop CAP_IPC_LOCK (root ignores the rlimit
# otherwise), set RLIMIT_MEMLOCK to 0, then allocate several secrets.
NO_MEMLOCK_SCRIPT = textwrap.dedent(
    """
    import ctypes, json, logging, resource

    class Header(ctypes.Structure):
        _fields_ = [("version", ctypes.c_uint32), ("pid", ctypes.c_int)]

    class Data(ctypes.Structure):
        _fields_ = [("effective", ctypes.c_uint32),
                    ("permitted", ctypes.c_uint32),
                    ("inheritable", ctypes.c_uint32)]

    libc = ctypes.CDLL(None, use_errno=True)
    header, data = Header(0x20080522, 0), (Data * 2)()  # capability v3
    assert libc.capget(ctypes.byref(header), data) == 0
    data[0].effective &= ~(1 << 14)  # CAP_IPC_LOCK
    data[0].permitted &= ~(1 << 14)
    assert libc.capset(ctypes.byref(header), data) == 0
    resource.setrlimit(resource.RLIMIT_MEMLOCK, (0, 0))

    records = []
    class Keep(logging.Handler):
        def emit(self, record):
            records.append(record)
    logging.getLogger("milagro_node.secret_memory").addHandler(Keep())

    from milagro_node.secret_memory import SecretBytes, memory_status
    secrets = [SecretBytes.random(32) for _ in range(5)]
    secrets.append(SecretBytes.copy_from(b"pin-1234"))
    ok = secrets[-1] == b"pin-1234"
    secrets[-1].wipe()
    ok = ok and secrets[-1] == bytes(8)
    status = memory_status()
    print(json.dumps({
        "locked": [s.locked for s in secrets],
        "ok": ok,
        "status": status,
        "warnings": [(r.levelname, r.getMessage()) for r in records],
    }))
    """
)


def test_refused_mlock_degrades_with_one_warning():
    out = subprocess.run(
        [sys.executable, "-c", NO_MEMLOCK_SCRIPT],
        capture_output=True, text=True, timeout=60,
    )
    assert out.returncode == 0, out.stderr
    result = json.loads(out.stdout)
    assert result["locked"] == [False] * 6
    assert result["ok"]
    assert result["status"] == {"mlock": "unlocked", "locked_bytes": 0, "secrets": 6}
    assert len(result["warnings"]) == 1
    level, message = result["warnings"][0]
    assert level == "WARNING"
    assert "not locked" in message.lower() and "RLIMIT_MEMLOCK" in message


def test_missing_extension_message():
    # The import error must tell the operator how to build the extension.
    script = textwrap.dedent(
        """
        import sys
        class Block:
            def find_spec(self, name, path=None, target=None):
                if name == "milagro_node._secmem":
                    raise ModuleNotFoundError("No module named " + name)
        sys.meta_path.insert(0, Block())
        try:
            import milagro_node.secret_memory
        except ImportError as exc:
            print(exc)
        """
    )
    out = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=60
    )
    assert "scripts/install.sh" in out.stdout
    assert "native/build.py" in out.stdout


def test_module_logger_name():
    assert sm.log.name == "milagro_node.secret_memory"
