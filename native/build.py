"""Build the secret-memory extension, ``milagro_node._secmem`` (cffi API mode).

Run ``python native/build.py`` (scripts/install.sh does) to compile in
build/native and put ``_secmem*.so`` next to milagro_node/secret_memory.py.
It rebuilds only when the C sources, this file or the Python ABI changed.
"""

import hashlib
import os
import shutil
import sys
import sysconfig
from pathlib import Path

from cffi import FFI

NATIVE = Path(__file__).resolve().parent
ROOT = NATIVE.parent
PACKAGE = ROOT / "milagro_node"
BUILD_DIR = ROOT / "build" / "native"

CDEF = """
#define SECMEM_SLOT_MIN ...
#define SECMEM_SLOT_MAX ...
#define SECMEM_ARENA_PAGES ...
void *secmem_alloc(size_t n, int *locked);
size_t secmem_region_size(size_t n);
void secmem_wipe(void *p, size_t n);
void secmem_free(void *p, size_t n, int locked);
int secmem_ct_equal(const void *a, const void *b, size_t n);
int secmem_random(void *p, size_t n);
struct secmem_stats {
    size_t secrets;
    size_t locked_bytes;
    size_t arenas;
    size_t slabs;
    size_t slots;
    size_t free_slots;
};
void secmem_stats(struct secmem_stats *out);
extern void (*secmem_test_free_hook)(const void *p, size_t n);
"""

ffibuilder = FFI()
ffibuilder.cdef(CDEF)
ffibuilder.set_source(
    "milagro_node._secmem",
    '#include "secmem.h"',
    sources=[str(NATIVE / "secmem.c")],
    include_dirs=[str(NATIVE)],
    extra_compile_args=["-O2", "-Wall", "-Werror", "-D_GNU_SOURCE", "-pthread"],
    extra_link_args=["-pthread"],
)


def _fingerprint() -> str:
    """Hash of everything the .so depends on, to skip needless rebuilds."""
    h = hashlib.sha256()
    for name in ("secmem.c", "secmem.h", "build.py"):
        h.update((NATIVE / name).read_bytes())
    h.update(sys.version.encode())
    return h.hexdigest()


def main() -> None:
    target = PACKAGE / ("_secmem" + sysconfig.get_config_var("EXT_SUFFIX"))
    stamp = BUILD_DIR / (target.name + ".stamp")
    fingerprint = _fingerprint()
    if target.exists() and stamp.exists() and stamp.read_text() == fingerprint:
        print(f"secmem: {target.relative_to(ROOT)} is up to date")
        return

    BUILD_DIR.mkdir(parents=True, exist_ok=True)
    built = Path(ffibuilder.compile(tmpdir=str(BUILD_DIR), verbose=False))
    # Copy then rename: a running node may have the old .so mapped, and
    # overwriting it in place would corrupt that process.
    tmp = target.with_name(target.name + ".tmp")
    shutil.copy2(built, tmp)
    os.replace(tmp, target)
    stamp.write_text(fingerprint)
    print(f"secmem: built {target.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
