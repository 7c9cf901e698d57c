#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* explicit_bzero, MADV_* */
#endif

#include "secmem.h"

#include <errno.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/random.h>
#include <unistd.h>

void (*secmem_test_unmap_hook)(const void *p, size_t n) = NULL;

size_t secmem_region_size(size_t n)
{
    size_t page = (size_t)sysconf(_SC_PAGESIZE);
    size_t pages = n / page + (n % page != 0);
    /* Zero-length secrets still get a page so every secret has a real,
     * distinct mapping and the same code path. */
    return (pages ? pages : 1) * page;
}

void *secmem_alloc(size_t n, int *locked)
{
    size_t size = secmem_region_size(n);
    void *p;

    *locked = 0;
    if (size < n) { /* rounding overflowed */
        errno = ENOMEM;
        return NULL;
    }
    p = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS,
             -1, 0);
    if (p == MAP_FAILED)
        return NULL;

    /* Best effort: these only fail on kernels too old to run this node, and a
     * secret that might reach a core dump is still better than no secret. */
    (void)madvise(p, size, MADV_DONTDUMP);
#ifdef MADV_WIPEONFORK
    /* A forked child (e.g. a worker process) sees zeros, not our keys. */
    (void)madvise(p, size, MADV_WIPEONFORK);
#endif

    /* mlock keeps the pages out of swap. It is refused when RLIMIT_MEMLOCK is
     * exhausted (EPERM/ENOMEM/EAGAIN); the caller degrades, we never fail. */
    if (mlock(p, size) == 0)
        *locked = 1;
    return p;
}

void secmem_wipe(void *p, size_t n)
{
    if (n)
        explicit_bzero(p, n);
}

void secmem_free(void *p, size_t n, int locked)
{
    size_t size = secmem_region_size(n);

    if (p == NULL)
        return;
    /* Wipe before munlock: once unlocked the pages may be swapped out. */
    explicit_bzero(p, size);
    if (locked)
        (void)munlock(p, size);
    if (secmem_test_unmap_hook)
        secmem_test_unmap_hook(p, size);
    (void)munmap(p, size);
}

int secmem_ct_equal(const void *a, const void *b, size_t n)
{
    const volatile unsigned char *x = a;
    const volatile unsigned char *y = b;
    unsigned char diff = 0;
    size_t i;

    /* No early exit: every byte is read whatever the earlier ones were, and
     * volatile reads stop the compiler from adding a shortcut. */
    for (i = 0; i < n; i++)
        diff |= x[i] ^ y[i];
    /* diff - 1 underflows (bit 8 set) only when diff == 0; no branch. */
    return (int)(1 & (((unsigned int)diff - 1) >> 8));
}

int secmem_random(void *p, size_t n)
{
    unsigned char *out = p;

    while (n > 0) {
        ssize_t got = getrandom(out, n, 0);
        if (got < 0) {
            if (errno == EINTR)
                continue;
            return -1;
        }
        /* Large requests can return short; keep going. */
        out += got;
        n -= (size_t)got;
    }
    return 0;
}
