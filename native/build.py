"""Build the native extensions (cffi API mode), each next to the code that uses it:

- ``milagro_node._secmem``: secret memory (secmem.c), for milagro_node/secret_memory.py;
- ``milagro_node._p11batch``: batches of PKCS#11 operations in one C call (p11batch.c),
  for the hsm-worker's fast path (actors/hsm_worker/batch.py);
- ``milagro_node._envread``: the common shape of an envelope read in one C call
  (envread.c), for the envelope reader (milagro_node/core/envelope/_cbor.py);
- ``milagro_node._envcrypt``: a recipient's key wrap and unwrap in one C call each
  (envcrypt.c, over the system's libsodium), for milagro_node/core/envelope/_suites.py.

Run ``python native/build.py`` (scripts/install.sh does) to compile in build/native.
Each is rebuilt only when its C sources, this file or the Python ABI changed.
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

SECMEM_CDEF = """
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
int secmem_lock_process(void);
extern void (*secmem_test_free_hook)(const void *p, size_t n);
"""


def _declarations(header: str) -> str:
    """A header's declarations for cffi's cdef: the file minus its preprocessor lines."""
    text = (NATIVE / header).read_text()
    return "\n".join(line for line in text.splitlines() if not line.lstrip().startswith("#"))


# name -> (cdef, C sources, extra link arguments)
EXTENSIONS = {
    "_secmem": (SECMEM_CDEF, ["secmem.c", "secmem.h"], ["-pthread"]),
    "_p11batch": (_declarations("p11batch.h"), ["p11batch.c", "p11batch.h"], ["-ldl"]),
    "_envread": (_declarations("envread.h"), ["envread.c", "envread.h"], []),
    "_envcrypt": (_declarations("envcrypt.h"), ["envcrypt.c", "envcrypt.h"], ["-lsodium"]),
}


def builder(name: str) -> FFI:
    cdef, sources, link = EXTENSIONS[name]
    ffibuilder = FFI()
    ffibuilder.cdef(cdef)
    ffibuilder.set_source(
        f"milagro_node.{name}",
        f'#include "{sources[1]}"',
        sources=[str(NATIVE / sources[0])],
        include_dirs=[str(NATIVE)],
        extra_compile_args=["-O2", "-Wall", "-Werror", "-D_GNU_SOURCE", "-pthread"],
        extra_link_args=link,
    )
    return ffibuilder


def _fingerprint(name: str) -> str:
    """Hash of everything the .so depends on, to skip needless rebuilds."""
    h = hashlib.sha256()
    for source in (*EXTENSIONS[name][1], "build.py"):
        h.update((NATIVE / source).read_bytes())
    h.update(sys.version.encode())
    return h.hexdigest()


def build(name: str) -> None:
    target = PACKAGE / (name + sysconfig.get_config_var("EXT_SUFFIX"))
    stamp = BUILD_DIR / (target.name + ".stamp")
    fingerprint = _fingerprint(name)
    if target.exists() and stamp.exists() and stamp.read_text() == fingerprint:
        print(f"native: {target.relative_to(ROOT)} is up to date")
        return
    out = BUILD_DIR / name
    out.mkdir(parents=True, exist_ok=True)
    built = Path(builder(name).compile(tmpdir=str(out), verbose=False))
    # Copy then rename: a running node may have the old .so mapped, and
    # overwriting it in place would corrupt that process.
    tmp = target.with_name(target.name + ".tmp")
    shutil.copy2(built, tmp)
    os.replace(tmp, target)
    stamp.write_text(fingerprint)
    print(f"native: built {target.relative_to(ROOT)}")


def main() -> None:
    for name in EXTENSIONS:
        build(name)


if __name__ == "__main__":
    main()
