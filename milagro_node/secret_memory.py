"""Secret memory: the one type that holds keys, key shares and PINs.

Where it sits: below the protocol cores. It depends only on the compiled
``milagro_node._secmem`` extension (native/), so cores, adapters and actors
may all import it.

Why: a Python ``bytes`` object cannot be wiped (it is immutable, and copies of
it end up all over the heap), cannot be kept out of swap or core dumps, and is
compared with an early-exit ``==``. ``SecretBytes`` keeps its content in
mmap'd memory that is locked in RAM when the kernel allows it (``mlock``),
excluded from core dumps, zeroed in forked children, compared in constant
time, and zeroed when closed or collected.

Memory layout (native/secmem.c): a secret of up to 512 bytes takes a slot of
32, 64, 128, 256 or 512 bytes in a one-page slab of its size class; slabs are
carved from arenas of 16 pages (64 KiB) and each slab is mlock'd when carved, so
locking and mapping cost one system call per slab instead of several per
secret, and 128 32-byte keys share one locked page. Closing a secret zeroes its
whole slot before the slot can be reused. Arenas and slabs stay mapped (and
locked) for the life of the process: the pool holds the high-water mark of
live small secrets, all free slots zero, and ``locked_bytes`` in
``memory_status()`` counts it. Larger secrets get pages of their own, unmapped
when closed. The allocator is thread-safe (a mutex in C: cffi releases the GIL
around calls), so secrets may be created and closed from any thread.

If ``mlock`` is refused (RLIMIT_MEMLOCK is small for non-root users and in
many containers) the node keeps running with unlocked-but-wiped memory, logs
one warning per process and reports it in ``memory_status()``.

``lock_process_memory()`` goes further where the limits allow: every page of the
process locked and no core dumps, so the copies that libraries make of keys (which
SecretBytes cannot reach) stay out of swap too. Code may then keep a library's key
object for a long-lived key (`process_memory_locked`), instead of rebuilding it from
secret memory at each use.

A secret has one owner; the type is not meant to be shared across threads.
"""

from __future__ import annotations

import contextlib
import logging
import os
import resource
import threading
from typing import Iterator

try:
    from milagro_node._secmem import ffi, lib
except ImportError as exc:
    raise ImportError(
        "milagro_node._secmem (the secret-memory extension) is not built: "
        "run scripts/install.sh, or `python native/build.py` from the "
        f"repository root ({exc})"
    ) from exc

__all__ = [
    "SecretBytes",
    "constant_time_equal",
    "lock_process_memory",
    "may_lock_process",
    "memory_status",
    "process_memory_locked",
    "wipe_buffer",
]

log = logging.getLogger(__name__)

# The warn-once state. An RLock, because __del__ can run from the garbage
# collector while this thread already holds the lock. The counts in
# memory_status() are kept by the C allocator, under its own mutex.
_lock = threading.RLock()
_mlock_refused = False
_warned_pid: int | None = None  # warn once per process, also after fork
_process_locked = False  # lock_process_memory() succeeded in this process (not a fork of it)
_CAP_IPC_LOCK = 14

_MEMLOCK_WARNING = (
    "secret memory is NOT locked in RAM: mlock was refused, so keys may be "
    "swapped to disk (they are still wiped after use). Raise RLIMIT_MEMLOCK "
    "for the node: `ulimit -l unlimited` (or a size in KiB) before starting "
    "it, LimitMEMLOCK=infinity in its systemd unit, `--ulimit memlock=-1` for "
    "docker/podman, or a memlock line in /etc/security/limits.conf"
)


def _note_refused() -> None:
    global _mlock_refused, _warned_pid
    with _lock:
        _mlock_refused = True
        if _warned_pid == os.getpid():
            return
        _warned_pid = os.getpid()
    log.warning(_MEMLOCK_WARNING)


def _pointer_to(data) -> tuple[object, int]:
    """A C pointer to a contiguous bytes-like, without copying it."""
    view = memoryview(data)  # TypeError for non-buffers (str, int, ...)
    if not view.c_contiguous:
        raise TypeError("secret memory needs a contiguous buffer")
    return ffi.from_buffer(view), view.nbytes


def wipe_buffer(buffer) -> None:
    """Zero a writable bytes-like (bytearray, writable memoryview) in place.

    Use it on the source after ``SecretBytes.copy_from(bytearray)``; an
    immutable ``bytes`` cannot be wiped and raises TypeError.
    """
    view = memoryview(buffer)
    if view.readonly or not view.c_contiguous:
        raise TypeError("can only wipe a writable, contiguous buffer")
    lib.secmem_wipe(ffi.from_buffer(view, require_writable=True), view.nbytes)


def constant_time_equal(a, b) -> bool:
    """Compare two secrets (bytes-likes or SecretBytes) in constant time.

    Different lengths give False at once: only the lengths leak.
    """
    pa, na = a._pointer() if isinstance(a, SecretBytes) else _pointer_to(a)
    pb, nb = b._pointer() if isinstance(b, SecretBytes) else _pointer_to(b)
    if na != nb:
        return False
    return bool(lib.secmem_ct_equal(pa, pb, na))


def lock_process_memory() -> str | None:
    """Lock the whole process in RAM, now and from now on, and out of core dumps.

    None once locked; else why not, for the caller to log (the process runs on as
    before). Only tried where it cannot fail a later allocation: with RLIMIT_MEMLOCK
    unlimited or CAP_IPC_LOCK (root, outside most containers). Under a finite limit, a
    process locked "from now on" gets allocation failures once it outgrows the limit.
    """
    global _process_locked
    if _process_locked:
        return None
    if not may_lock_process():
        soft, _ = resource.getrlimit(resource.RLIMIT_MEMLOCK)
        return (f"RLIMIT_MEMLOCK is {soft} bytes and the process lacks CAP_IPC_LOCK: raise it to unlimited "
                "(`ulimit -l unlimited`, LimitMEMLOCK=infinity, `--ulimit memlock=-1`) to lock the process")
    error = lib.secmem_lock_process()
    if error:
        return f"mlockall refused: {os.strerror(error)}"
    _process_locked = True
    return None


def process_memory_locked() -> bool:
    """True once `lock_process_memory` succeeded in this process: no page of it can be
    swapped to disk or dumped, library key objects included."""
    return _process_locked


def may_lock_process() -> bool:
    """Whether `lock_process_memory` will try: RLIMIT_MEMLOCK unlimited, or CAP_IPC_LOCK."""
    soft, _ = resource.getrlimit(resource.RLIMIT_MEMLOCK)
    return soft == resource.RLIM_INFINITY or _has_ipc_lock()


def _has_ipc_lock() -> bool:
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("CapEff:"):
                    return bool(int(line.split()[1], 16) >> _CAP_IPC_LOCK & 1)
    except (OSError, ValueError, IndexError):
        pass
    return False


def _forget_process_lock() -> None:
    global _process_locked
    _process_locked = False  # mlockall is not inherited by a forked child


os.register_at_fork(after_in_child=_forget_process_lock)


def memory_status() -> dict:
    """Secret-memory state for ``node.status``; never includes content.

    ``mlock``: "unlocked" once any mlock was refused in this process;
    ``process``: "locked" after `lock_process_memory`, else "not locked";
    ``locked_bytes``: secret memory locked in RAM now (the slab pool, which is
    kept, plus large secrets); ``secrets``: live secrets; ``arenas``: arenas
    (16 pages each) mapped for small secrets.
    """
    stats = ffi.new("struct secmem_stats *")
    lib.secmem_stats(stats)
    with _lock:
        refused = _mlock_refused
    return {
        "mlock": "unlocked" if refused else "locked",
        "process": "locked" if _process_locked else "not locked",
        "locked_bytes": stats.locked_bytes,
        "secrets": stats.secrets,
        "arenas": stats.arenas,
    }


_INT_P = ffi.typeof("int *")


class SecretBytes:
    """A fixed-size secret in locked, wiped-on-close memory.

    ``SecretBytes(n)`` is n zero bytes to fill through ``view()``;
    ``random(n)`` and ``copy_from(buffer)`` are the usual constructors.
    Use it as a context manager so it is closed (wiped, and its slot freed or
    its pages unlocked and unmapped) as soon as it is no longer needed;
    garbage collection closes it too.
    """

    __slots__ = ("_ptr", "_size", "_locked", "_views", "__weakref__")
    __hash__ = None  # mutable and secret: hashing would leak and break

    def __init__(self, size: int) -> None:
        self._ptr = None  # set first, so __del__ works if allocation fails
        if size < 0:
            raise ValueError("secret size must be >= 0")
        locked = ffi.new(_INT_P)
        ptr = lib.secmem_alloc(size, locked)
        if not ptr:
            raise MemoryError(f"secret memory: mmap failed: {os.strerror(ffi.errno)}")
        self._ptr = ptr
        self._size = size
        self._locked = locked = bool(locked[0])
        self._views = 0
        if not locked:
            _note_refused()

    @classmethod
    def random(cls, size: int) -> SecretBytes:
        """size bytes from getrandom(2), written straight into secret memory."""
        secret = cls(size)
        if lib.secmem_random(secret._ptr, size) != 0:
            err = ffi.errno
            secret.close()
            raise OSError(err, f"getrandom failed: {os.strerror(err)}")
        return secret

    @classmethod
    def copy_from(cls, buffer) -> SecretBytes:
        """Copy a bytes-like into secret memory.

        The source is left as it was: if it is a bytearray or writable
        memoryview, wipe it with ``wipe_buffer()`` once copied. A ``bytes``
        source cannot be wiped; avoid creating one for a secret at all.
        """
        src, size = _pointer_to(buffer)
        secret = cls(size)
        ffi.memmove(secret._ptr, src, size)
        return secret

    @classmethod
    def gather(cls, parts: list[SecretBytes | int]) -> SecretBytes:
        """One secret holding ``parts`` one after another: each secret copied in, each
        int that many zero bytes of room. For native code that works on many at once."""
        whole = cls(sum(p if type(p) is int else len(p) for p in parts))
        at = 0
        for part in parts:
            if type(part) is int:
                at += part
            else:
                ptr, size = part._pointer()
                ffi.memmove(whole._ptr + at, ptr, size)
                at += size
        return whole

    def copy_out(self, offset: int, size: int) -> SecretBytes:
        """A new secret holding ``size`` bytes of this one from ``offset``."""
        ptr, total = self._pointer()
        if offset < 0 or size < 0 or offset + size > total:
            raise ValueError("range outside the secret")
        part = SecretBytes(size)
        ffi.memmove(part._ptr, ptr + offset, size)
        return part

    def pointer(self, native_ffi) -> object:
        """The secret as ``native_ffi``'s ``unsigned char *``: for native code (its own
        cffi module) that reads or writes it while this object stays open; no view is held."""
        ptr, _ = self._pointer()
        return native_ffi.cast("unsigned char *", ptr)

    # -- state -------------------------------------------------------------

    def __len__(self) -> int:
        return self._size

    @property
    def locked(self) -> bool:
        """True if the secret's memory is locked in RAM (mlock succeeded)."""
        return self._locked

    @property
    def closed(self) -> bool:
        return self._ptr is None

    def _pointer(self) -> tuple[object, int]:
        if self._ptr is None:
            raise ValueError("secret is closed")
        return self._ptr, self._size

    # -- access ------------------------------------------------------------

    @contextlib.contextmanager
    def view(self) -> Iterator[memoryview]:
        """A writable memoryview of the secret, valid only inside the block.

        The view is released at exit. Do not keep slices of it, or objects
        built on it, past the block: they would point at freed memory.
        """
        ptr, size = self._pointer()
        mv = memoryview(ffi.buffer(ptr, size))
        self._views += 1
        try:
            yield mv
        finally:
            self._views -= 1
            mv.release()  # BufferError if someone still holds an export

    def reveal(self) -> bytes:
        """Return the secret as an ordinary ``bytes`` object.

        The escape hatch for libraries that only accept bytes. The copy it
        makes cannot be wiped, locked or kept out of swap and lives until
        the garbage collector reuses its memory: call it as late as possible,
        on as little as possible, and never for logging.
        """
        ptr, size = self._pointer()
        return ffi.buffer(ptr, size)[:]

    def wipe(self) -> None:
        """Zero the secret in place; it stays open and usable."""
        if self._ptr is not None:
            lib.secmem_wipe(self._ptr, self._size)

    def close(self) -> None:
        """Wipe the whole slot or region and release it. Idempotent."""
        if self._ptr is None:
            return
        if self._views:
            raise BufferError("cannot close a secret while a view() is open")
        ptr, self._ptr = self._ptr, None
        lib.secmem_free(ptr, self._size, self._locked)
        self._locked = False

    def __enter__(self) -> SecretBytes:
        self._pointer()  # refuse to enter a closed secret
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()

    def __del__(self) -> None:
        # At interpreter exit the module globals may already be gone; the
        # kernel reclaims the memory then anyway.
        try:
            self.close()
        except Exception:
            pass

    # -- comparison and representation ---------------------------------------

    def __eq__(self, other) -> bool:
        if not isinstance(other, SecretBytes):
            try:
                memoryview(other)
            except TypeError:
                return NotImplemented
        return constant_time_equal(self, other)

    def __repr__(self) -> str:
        if self._ptr is None:
            return f"<SecretBytes {self._size} bytes, closed>"
        state = "locked" if self._locked else "unlocked"
        return f"<SecretBytes {self._size} bytes, {state}>"

    __str__ = __repr__

    # -- refuse silent copies ------------------------------------------------

    def __bytes__(self) -> bytes:
        raise TypeError("bytes(secret) would make an unwipeable copy; "
                        "use secret.reveal() if you really need bytes")

    def __reduce__(self):
        raise TypeError("SecretBytes cannot be pickled")

    def __reduce_ex__(self, protocol):
        raise TypeError("SecretBytes cannot be pickled")

    def __copy__(self):
        raise TypeError("SecretBytes cannot be copied; "
                        "use SecretBytes.copy_from() inside view() if meant")

    def __deepcopy__(self, memo):
        raise TypeError("SecretBytes cannot be copied")
