"""Secret memory: locking, wiping, constant-time compare, no accidental copies.

Everything runs against the real extension and the real kernel: VmLck is read
from /proc, wipes are checked by reading the slot or region back through cffi
(slots stay mapped after close, so a pointer kept from before still reads).
"""

import copy
import gc
import json
import mmap
import pickle
import random
import resource
import subprocess
import sys
import textwrap
import threading

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


def allocator_stats() -> dict:
    st = ffi.new("struct secmem_stats *")
    lib.secmem_stats(st)
    return {name: getattr(st, name)
            for name in ("secrets", "locked_bytes", "arenas", "slabs", "slots", "free_slots")}


def address(secret: SecretBytes) -> int:
    return int(ffi.cast("uintptr_t", secret._ptr))


def live_slots(st: dict) -> int:
    return st["slots"] - st["free_slots"]


def test_random_fills_and_has_length():
    with SecretBytes.random(32) as a, SecretBytes.random(32) as b:
        assert len(a) == 32
        assert a != b  # 2**-256 chance of a false failure
        assert any(a.reveal())


def test_zero_length_secret():
    with SecretBytes.random(0) as s, SecretBytes.copy_from(b"") as t:
        assert len(s) == 0 and s == t and s == b""
        assert address(s) != address(t)  # each gets a slot of its own
        with s.view() as v:
            assert v.nbytes == 0


def test_size_classes():
    assert lib.SECMEM_SLOT_MAX == 512
    expected = {0: 32, 1: 32, 32: 32, 33: 64, 64: 64, 100: 128, 256: 256, 257: 512,
                512: 512, 513: 1 * PAGE, PAGE: PAGE, PAGE + 1: 2 * PAGE}
    for n, size in expected.items():
        assert lib.secmem_region_size(n) == size, n


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


def test_locked_slab_shows_in_vmlck_and_is_kept():
    soft, _ = resource.getrlimit(resource.RLIMIT_MEMLOCK)
    base = allocator_stats()
    before = vm_locked_kib()
    held = []
    try:
        # Allocate until the 512-byte class needs a new slab (page) carved.
        for _ in range(base["free_slots"] + PAGE // 512 + 1):
            held.append(SecretBytes.random(512))
            if allocator_stats()["slabs"] > base["slabs"]:
                break
        assert allocator_stats()["slabs"] == base["slabs"] + 1
        if soft == 0:
            pytest.skip("RLIMIT_MEMLOCK is 0 for this process")
        s = held[-1]
        assert s.locked
        assert "locked" in repr(s)
        grown = vm_locked_kib()
        assert grown >= before + PAGE // 1024
        assert allocator_stats()["locked_bytes"] == base["locked_bytes"] + PAGE
    finally:
        for s in held:
            s.close()
    # Slabs are kept (locked, zeroed) for reuse: closing unlocks nothing.
    assert vm_locked_kib() == grown
    assert allocator_stats()["locked_bytes"] == base["locked_bytes"] + PAGE


def test_large_secret_has_its_own_locked_pages():
    soft, _ = resource.getrlimit(resource.RLIMIT_MEMLOCK)
    before = vm_locked_kib()
    base = allocator_stats()
    with SecretBytes.random(PAGE + 1) as s:
        if soft == 0:
            pytest.skip("RLIMIT_MEMLOCK is 0 for this process")
        assert s.locked
        assert vm_locked_kib() >= before + 2 * PAGE // 1024
        assert allocator_stats()["locked_bytes"] == base["locked_bytes"] + 2 * PAGE
        assert allocator_stats()["slabs"] == base["slabs"]
    assert vm_locked_kib() == before
    assert allocator_stats() == base


def test_wipe_zeroes_the_region_in_place():
    with SecretBytes.random(64) as s:
        assert any(region_bytes(s, 64))
        s.wipe()
        assert region_bytes(s, 64) == bytes(64)
        assert s == bytes(64)  # still usable after wipe
        with s.view() as v:
            v[:] = b"\x01" * 64
        assert s == b"\x01" * 64


def _close_with_free_hook(secret: SecretBytes) -> list[bytes]:
    """Close twice; return what the C side saw in the memory after wiping it."""
    seen = []

    @ffi.callback("void(*)(const void *, size_t)")
    def on_free(p, n):
        seen.append(ffi.buffer(ffi.cast("char *", p), n)[:])

    lib.secmem_test_free_hook = on_free
    try:
        secret.close()
        secret.close()  # idempotent: no second free
    finally:
        lib.secmem_test_free_hook = ffi.NULL
    assert secret.closed
    return seen


def test_close_wipes_whole_slot_before_it_is_freed():
    s = SecretBytes.random(100)  # a 128-byte slot
    slot = ffi.cast("char *", s._ptr)
    ffi.buffer(slot + 100, 28)[:] = b"\xa5" * 28  # dirty the slack past the secret too
    assert any(region_bytes(s, 100))
    assert _close_with_free_hook(s) == [bytes(128)]
    # The slot stays mapped: the pointer kept from before close reads zeros.
    assert ffi.buffer(slot, 128)[:] == bytes(128)


def test_close_wipes_whole_large_region_before_unmap():
    s = SecretBytes.random(PAGE + 1)  # two pages of its own
    assert any(region_bytes(s, PAGE + 1))
    assert _close_with_free_hook(s) == [bytes(2 * PAGE)]


def test_freed_slot_is_zero_before_reuse():
    s = SecretBytes.copy_from(b"\xff" * 64)
    freed = address(s)
    s.close()
    fresh = []
    try:
        # The freed slot comes back before any new slab is carved; every slot
        # handed out on the way, and that one, must be all zeros.
        for _ in range(allocator_stats()["free_slots"] + 1):
            t = SecretBytes(50)  # same 64-byte class, shorter secret
            fresh.append(t)
            assert region_bytes(t, 64) == bytes(64)
            if address(t) == freed:
                break
        else:
            pytest.fail("the freed slot was never reused")
    finally:
        for t in fresh:
            t.close()


def test_many_small_secrets_share_a_few_arenas():
    # Secrets that earlier tests left in reference cycles are freed by whichever garbage
    # collection runs next: collect them now, and let none run while counting.
    gc.collect()
    gc.disable()
    base = allocator_stats()
    count = 10_000
    per_slab = PAGE // 32
    per_arena = lib.SECMEM_ARENA_PAGES * per_slab
    values = [i.to_bytes(32, "big") for i in range(count)]
    secrets = [SecretBytes.copy_from(v) for v in values]
    try:
        st = allocator_stats()
        assert st["secrets"] == base["secrets"] + count
        assert st["slabs"] - base["slabs"] <= -(-count // per_slab)  # 79 pages
        assert st["arenas"] - base["arenas"] <= count // per_arena + 1  # 5 arenas
        assert memory_status()["arenas"] == st["arenas"]
        assert len({address(s) for s in secrets}) == count
        assert all(s == v for s, v in zip(secrets, values))
        if all(s.locked for s in secrets):
            new_pages = st["slabs"] - base["slabs"]
            assert st["locked_bytes"] == base["locked_bytes"] + new_pages * PAGE
    finally:
        gc.enable()
        for s in secrets:
            s.close()
    st = allocator_stats()
    assert st["secrets"] == base["secrets"]
    assert live_slots(st) == live_slots(base)


def test_concurrent_alloc_and_free_from_four_threads():
    base = allocator_stats()
    sizes = (0, 8, 32, 33, 100, 256, 300, 512)
    errors = []
    start = threading.Barrier(4)

    def work(tid: int) -> None:
        try:
            rng = random.Random(tid)
            live = []
            start.wait()
            for i in range(10_000):
                n = PAGE + 1 if i % 500 == 0 else rng.choice(sizes)
                value = (bytes([tid]) + i.to_bytes(4, "big")) * (n // 5 + 1)
                live.append((SecretBytes.copy_from(value[:n]), value[:n]))
                if len(live) > 64 or rng.random() < 0.5:
                    s, v = live.pop(rng.randrange(len(live)))
                    assert s == v  # nobody else was handed this slot
                    s.close()
            for s, v in live:
                assert s == v
                s.close()
        except BaseException as exc:  # reported below, with the thread's traceback
            errors.append(exc)

    interval = sys.getswitchinterval()
    sys.setswitchinterval(1e-5)
    try:
        threads = [threading.Thread(target=work, args=(t,)) for t in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=120)
        assert not any(t.is_alive() for t in threads)
    finally:
        sys.setswitchinterval(interval)
    assert not errors, errors[0]
    st = allocator_stats()
    assert st["secrets"] == base["secrets"]
    assert live_slots(st) == live_slots(base)
    assert st["free_slots"] <= st["slots"]
    if st["slabs"] == base["slabs"] and st["arenas"] == base["arenas"]:
        assert st["locked_bytes"] == base["locked_bytes"]


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
    assert set(base) == {"mlock", "process", "locked_bytes", "secrets", "arenas"}
    slabs = allocator_stats()["slabs"]
    a = SecretBytes.random(10)  # a slot, maybe in a newly carved (locked) slab
    b = SecretBytes.random(PAGE + 1)  # two pages
    new_slab_bytes = (allocator_stats()["slabs"] - slabs) * PAGE
    st = memory_status()
    assert st["secrets"] == base["secrets"] + 2
    if a.locked and b.locked:
        assert st["mlock"] == "locked"
        assert st["locked_bytes"] == base["locked_bytes"] + new_slab_bytes + 2 * PAGE
    a.close()
    b.close()
    after = memory_status()
    assert after["secrets"] == base["secrets"]
    assert after["mlock"] == base["mlock"]
    if a.locked and b.locked:
        assert after["locked_bytes"] == base["locked_bytes"] + new_slab_bytes  # slab kept


# Runs in a fresh interpreter: drop CAP_IPC_LOCK (root ignores the rlimit
# otherwise), set RLIMIT_MEMLOCK to LIMIT bytes, then allocate secrets.
MEMLOCK_LIMIT_PRELUDE = textwrap.dedent(
    """
    import ctypes, json, logging, resource, sys

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
    limit = int(sys.argv[1])
    resource.setrlimit(resource.RLIMIT_MEMLOCK, (limit, limit))

    records = []
    class Keep(logging.Handler):
        def emit(self, record):
            records.append(record)
    logging.getLogger("milagro_node.secret_memory").addHandler(Keep())
    """
)

NO_MEMLOCK_SCRIPT = MEMLOCK_LIMIT_PRELUDE + textwrap.dedent(
    """
    from milagro_node.secret_memory import SecretBytes, memory_status
    secrets = [SecretBytes.random(32) for _ in range(5)]
    secrets.append(SecretBytes.random(5000))  # large: pages of its own
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
        [sys.executable, "-c", NO_MEMLOCK_SCRIPT, "0"],
        capture_output=True, text=True, timeout=60,
    )
    assert out.returncode == 0, out.stderr
    result = json.loads(out.stdout)
    assert result["locked"] == [False] * 7
    assert result["ok"]
    assert result["status"] == {"mlock": "unlocked", "process": "not locked", "locked_bytes": 0, "secrets": 7,
                                "arenas": 1}
    assert len(result["warnings"]) == 1
    level, message = result["warnings"][0]
    assert level == "WARNING"
    assert "not locked" in message.lower() and "RLIMIT_MEMLOCK" in message


SMALL_MEMLOCK_SCRIPT = MEMLOCK_LIMIT_PRELUDE + textwrap.dedent(
    """
    from milagro_node.secret_memory import SecretBytes, memory_status
    secrets = [SecretBytes.random(32) for _ in range(1000)]
    secrets += [SecretBytes.random(n) for n in (64, 128, 256, 512) for _ in range(10)]
    print(json.dumps({
        "locked": sum(s.locked for s in secrets),
        "status": memory_status(),
        "warnings": len(records),
    }))
    """
)


def test_small_memlock_limit_holds_many_secrets():
    # 64 KiB (a common container default) used to lock only 16 secrets.
    out = subprocess.run(
        [sys.executable, "-c", SMALL_MEMLOCK_SCRIPT, str(64 * 1024)],
        capture_output=True, text=True, timeout=60,
    )
    assert out.returncode == 0, out.stderr
    result = json.loads(out.stdout)
    assert result["locked"] == 1040
    assert result["warnings"] == 0
    status = result["status"]
    assert status["mlock"] == "locked" and status["secrets"] == 1040
    assert status["locked_bytes"] <= 64 * 1024


FORK_SCRIPT = textwrap.dedent(
    """
    import json, os, threading
    from milagro_node.secret_memory import SecretBytes, memory_status

    def vmlck_kib():
        with open("/proc/self/status") as f:
            return next(int(l.split()[1]) for l in f if l.startswith("VmLck:"))

    kept = SecretBytes.copy_from(b"\\x5a" * 32)
    stop = threading.Event()

    def churn():  # keep the allocator lock busy while the main thread forks
        while not stop.is_set():
            SecretBytes.random(32).close()

    worker = threading.Thread(target=churn)
    worker.start()
    results = []
    for _ in range(20):
        r, w = os.pipe()
        pid = os.fork()
        if pid == 0:
            try:
                fresh = SecretBytes.copy_from(b"child")
                os.write(w, json.dumps({
                    "inherited": kept.reveal().hex(),
                    "fresh_ok": fresh == b"child",
                    "fresh_locked": fresh.locked,
                    "vmlck_kib": vmlck_kib(),
                    "secrets": memory_status()["secrets"],
                }).encode())
                fresh.close()
                kept.close()
            finally:
                os._exit(0)
        os.close(w)
        with os.fdopen(r, "rb") as f:
            results.append(json.loads(f.read()))
        os.waitpid(pid, 0)
    stop.set()
    worker.join()
    print(json.dumps({"children": results, "parent": kept.reveal().hex()}))
    """
)


def test_forked_child_sees_zeros_and_allocates_locked():
    out = subprocess.run(
        [sys.executable, "-c", FORK_SCRIPT], capture_output=True, text=True, timeout=60,
    )
    assert out.returncode == 0, out.stderr
    result = json.loads(out.stdout)
    assert result["parent"] == "5a" * 32
    soft, _ = resource.getrlimit(resource.RLIMIT_MEMLOCK)
    for child in result["children"]:
        assert child["inherited"] == "00" * 32  # MADV_WIPEONFORK
        assert child["fresh_ok"]
        # mlock is not inherited: the child re-locks the slabs before using them.
        if soft >= 64 * 1024:
            assert child["fresh_locked"]
        if child["fresh_locked"]:
            assert child["vmlck_kib"] >= PAGE // 1024
        assert child["secrets"] in (2, 3)  # kept, fresh, maybe the churner's


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


def test_gather_copy_out_and_pointer():
    a, b = SecretBytes.copy_from(b"alpha"), SecretBytes.copy_from(b"beta")
    whole = SecretBytes.gather([a, 3, b])
    assert whole.reveal() == b"alpha\0\0\0beta"
    assert whole.copy_out(8, 4).reveal() == b"beta" and whole.copy_out(5, 0).reveal() == b""
    with pytest.raises(ValueError):
        whole.copy_out(10, 3)
    with pytest.raises(ValueError):
        whole.copy_out(-1, 2)
    pointer = whole.pointer(ffi)
    assert ffi.typeof(pointer) is ffi.typeof("unsigned char *") and pointer != a.pointer(ffi)
    assert ffi.buffer(pointer, 5)[:] == b"alpha"
    b.close()
    with pytest.raises(ValueError):
        SecretBytes.gather([b])  # a closed secret is refused, not read
    whole.close()
    with pytest.raises(ValueError):
        whole.pointer(ffi)


# lock_process_memory() in a fresh interpreter (it cannot be undone in this one).
PROCESS_LOCK_CHECKS = textwrap.dedent(
    """
    import ctypes, json, os
    from milagro_node.core.envelope import LocalReaderKeys
    from milagro_node.secret_memory import lock_process_memory, memory_status, process_memory_locked

    refused = lock_process_memory()
    keys = LocalReaderKeys.generate()
    from cryptography.hazmat.primitives.asymmetric.mlkem import MLKEM768PublicKey
    shared, ciphertext = MLKEM768PublicKey.from_public_bytes(keys.mlkem768_public).encapsulate()
    with keys.mlkem768_decapsulate(ciphertext) as got:
        decapsulates = got == shared
    status = open("/proc/self/status").read()
    vmlck_kib = int(status.split("VmLck:")[1].split()[0])
    read, write = os.pipe()
    child = os.fork()
    if child == 0:
        os.write(write, b"1" if process_memory_locked() else b"0")
        os._exit(0)
    os.waitpid(child, 0)
    print(json.dumps({
        "refused": refused, "process": memory_status()["process"],
        "keeps_object": keys._mlkem_object is not None, "decapsulates": decapsulates,
        "vmlck_kib": vmlck_kib, "dumpable": ctypes.CDLL(None).prctl(3, 0, 0, 0, 0),  # PR_GET_DUMPABLE
        "child_locked": os.read(read, 1) == b"1",
    }))
    """
)


def _process_lock_run(script: str, *args: str) -> dict:
    out = subprocess.run([sys.executable, "-c", script, *args], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout)


def test_a_locked_process_keeps_its_ml_kem_key_object():
    result = _process_lock_run(PROCESS_LOCK_CHECKS)
    assert result["refused"] is None
    assert result["process"] == "locked"
    assert result["vmlck_kib"] > 1024  # the interpreter's pages, not only secret memory
    assert result["dumpable"] == 0
    assert result["keeps_object"] and result["decapsulates"]
    assert not result["child_locked"]  # mlockall is not inherited: a fork says so


def test_process_lock_is_refused_under_a_finite_limit_and_the_key_stays_a_seed():
    # Without CAP_IPC_LOCK and with a finite RLIMIT_MEMLOCK, MCL_FUTURE could fail a later
    # allocation: the lock is not tried, and the reader rebuilds its key at each use.
    result = _process_lock_run(MEMLOCK_LIMIT_PRELUDE + PROCESS_LOCK_CHECKS, str(64 * 1024))
    assert "RLIMIT_MEMLOCK" in result["refused"]
    assert result["process"] == "not locked"
    assert not result["keeps_object"] and result["decapsulates"]
    assert result["vmlck_kib"] <= 64
