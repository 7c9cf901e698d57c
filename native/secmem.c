#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* explicit_bzero, MADV_* */
#endif

#include "secmem.h"

#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/random.h>
#include <unistd.h>

void (*secmem_test_free_hook)(const void *p, size_t n) = NULL;

/* -- layout ---------------------------------------------------------------
 *
 * arena: SECMEM_ARENA_PAGES pages from one mmap, madvised once. Its pages are
 *        handed out in order, each to become one slab. Never unmapped.
 * slab:  one page of one size class, mlock'd when carved. A bitmap (outside
 *        the secret memory: it must survive MADV_WIPEONFORK, and a free slot
 *        must be all zeros) says which slots are in use. Bits past the last
 *        slot are set, so they always look used.
 * class: slabs with at least one free slot are on their class's list.
 *
 * Everything below is guarded by `mu`, except the page size (set once at
 * load) and the wipe of a slot being freed, which its owner does before
 * handing the slot back. */

#define NCLASSES 5 /* 32, 64, 128, 256, 512 */

struct slab {
    unsigned char *page;
    struct slab *next; /* on its class's list of slabs with free slots */
    size_t slot_size;
    unsigned int slots;
    unsigned int nfree;
    unsigned char cls;
    unsigned char locked;
    unsigned char listed;
    uint64_t used[]; /* one bit per slot, 1 = in use */
};

struct arena {
    unsigned char *base;
    unsigned int carved; /* pages turned into slabs so far */
    struct slab *slab[SECMEM_ARENA_PAGES];
};

static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static size_t page_size;
static struct slab *partial[NCLASSES];
static struct arena **arenas; /* sorted by base address, for secmem_free */
static size_t narenas, arenas_cap;
static struct arena *carving; /* the arena new slabs come from */
static int relock_pending;    /* set in a forked child: mlock is not inherited */
static struct secmem_stats stats;

/* -- fork -------------------------------------------------------------------
 * Hold the lock across fork so the child never inherits it mid-update; the
 * child has only the forking thread, which holds it and can release it. */

static void before_fork(void) { pthread_mutex_lock(&mu); }
static void after_fork_parent(void) { pthread_mutex_unlock(&mu); }

static void after_fork_child(void)
{
    /* The child's copies of our pages are zero (MADV_WIPEONFORK) and not
     * locked (locks are not inherited): re-lock the slabs on the child's
     * first allocation or stats call, if it makes one (not here: a child
     * that only execs should not pay for it). Large regions inherited from
     * the parent stay unlocked in the child, as they always did. */
    relock_pending = 1;
    pthread_mutex_unlock(&mu);
}

__attribute__((constructor)) static void secmem_init(void)
{
    page_size = (size_t)sysconf(_SC_PAGESIZE);
    (void)pthread_atfork(before_fork, after_fork_parent, after_fork_child);
}

static void relock_slabs(void)
{
    size_t a;
    unsigned int i;

    relock_pending = 0;
    for (a = 0; a < narenas; a++) {
        for (i = 0; i < arenas[a]->carved; i++) {
            struct slab *s = arenas[a]->slab[i];
            if (s && s->locked && mlock(s->page, page_size) != 0) {
                s->locked = 0;
                stats.locked_bytes -= page_size;
            }
        }
    }
}

/* -- mapping ------------------------------------------------------------- */

/* mmap n bytes (a multiple of the page size) with the secret-memory advice. */
static void *map_secret(size_t n)
{
    void *p = mmap(NULL, n, PROT_READ | PROT_WRITE,
                   MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED)
        return NULL;
    /* Best effort: these only fail on kernels too old to run this node, and a
     * secret that might reach a core dump is still better than no secret. */
    (void)madvise(p, n, MADV_DONTDUMP);
#ifdef MADV_WIPEONFORK
    /* A forked child (e.g. a worker process) sees zeros, not our keys. */
    (void)madvise(p, n, MADV_WIPEONFORK);
#endif
    return p;
}

/* mlock keeps pages out of swap. It is refused when RLIMIT_MEMLOCK is
 * exhausted (EPERM/ENOMEM/EAGAIN); callers degrade, they never fail. */
static int try_lock(void *p, size_t n) { return mlock(p, n) == 0; }

int secmem_lock_process(void)
{
    (void)prctl(PR_SET_DUMPABLE, 0, 0, 0, 0);
#ifdef MCL_ONFAULT
    if (mlockall(MCL_CURRENT | MCL_FUTURE | MCL_ONFAULT) == 0)
        return 0;
    if (errno != EINVAL) /* EINVAL: a kernel older than 4.4, without MCL_ONFAULT */
        return errno;
#endif
    return mlockall(MCL_CURRENT | MCL_FUTURE) == 0 ? 0 : errno;
}

/* -- slots ------------------------------------------------------------- */

static unsigned int class_of(size_t n, size_t *slot_size)
{
    unsigned int cls = 0;
    size_t size = SECMEM_SLOT_MIN;

    while (size < n) {
        size <<= 1;
        cls++;
    }
    *slot_size = size;
    return cls;
}

static struct arena *new_arena(void)
{
    size_t bytes = SECMEM_ARENA_PAGES * page_size;
    struct arena *a;

    if (narenas == arenas_cap) {
        size_t cap = arenas_cap ? 2 * arenas_cap : 16;
        struct arena **grown = realloc(arenas, cap * sizeof *grown);
        if (!grown)
            return NULL;
        arenas = grown;
        arenas_cap = cap;
    }
    a = calloc(1, sizeof *a);
    if (!a)
        return NULL;
    a->base = map_secret(bytes);
    if (!a->base) {
        free(a);
        return NULL;
    }
    /* Insert in address order. */
    size_t i = narenas;
    while (i > 0 && arenas[i - 1]->base > a->base) {
        arenas[i] = arenas[i - 1];
        i--;
    }
    arenas[i] = a;
    narenas++;
    stats.arenas++;
    return a;
}

static struct slab *new_slab(unsigned int cls, size_t slot_size)
{
    unsigned int slots = (unsigned int)(page_size / slot_size);
    unsigned int words = (slots + 63) / 64;
    struct slab *s;
    unsigned int w;

    if (!carving || carving->carved == SECMEM_ARENA_PAGES) {
        struct arena *a = new_arena();
        if (!a)
            return NULL;
        carving = a;
    }
    s = calloc(1, sizeof *s + words * sizeof(uint64_t));
    if (!s)
        return NULL;
    s->page = carving->base + (size_t)carving->carved * page_size;
    s->slot_size = slot_size;
    s->slots = slots;
    s->nfree = slots;
    s->cls = (unsigned char)cls;
    for (w = 0; w < words; w++) {
        unsigned int first = w * 64; /* bits >= slots stay set: never free */
        if (slots - first < 64)
            s->used[w] = ~(uint64_t)0 << (slots - first);
    }
    s->locked = (unsigned char)try_lock(s->page, page_size);
    if (s->locked)
        stats.locked_bytes += page_size;
    carving->slab[carving->carved++] = s;
    stats.slabs++;
    stats.slots += slots;
    stats.free_slots += slots;
    s->next = partial[cls];
    s->listed = 1;
    partial[cls] = s;
    return s;
}

static void *slot_alloc(size_t n, int *locked)
{
    size_t slot_size;
    unsigned int cls = class_of(n, &slot_size);
    struct slab *s;
    unsigned int w, bit;
    void *p;

    pthread_mutex_lock(&mu);
    if (relock_pending)
        relock_slabs();
    s = partial[cls];
    if (!s && !(s = new_slab(cls, slot_size))) {
        pthread_mutex_unlock(&mu); /* errno from mmap or calloc */
        return NULL;
    }
    for (w = 0; s->used[w] == ~(uint64_t)0; w++)
        ; /* a listed slab has a free slot, so this stops */
    bit = (unsigned int)__builtin_ctzll(~s->used[w]);
    s->used[w] |= (uint64_t)1 << bit;
    if (--s->nfree == 0) {
        partial[cls] = s->next;
        s->next = NULL;
        s->listed = 0;
    }
    stats.free_slots--;
    stats.secrets++;
    *locked = s->locked;
    p = s->page + (size_t)(w * 64 + bit) * slot_size;
    pthread_mutex_unlock(&mu);
    return p;
}

/* The slab holding p, or NULL if p is not in any arena. Caller holds mu. */
static struct slab *slab_of(const unsigned char *p)
{
    size_t lo = 0, hi = narenas;

    while (lo < hi) { /* last arena whose base <= p */
        size_t mid = lo + (hi - lo) / 2;
        if (arenas[mid]->base <= p)
            lo = mid + 1;
        else
            hi = mid;
    }
    if (lo == 0)
        return NULL;
    struct arena *a = arenas[lo - 1];
    size_t index = (size_t)(p - a->base) / page_size;
    return index < a->carved ? a->slab[index] : NULL;
}

static void slot_free(void *p, size_t n)
{
    size_t slot_size, offset, index;
    unsigned int cls = class_of(n, &slot_size);
    struct slab *s;
    uint64_t mask;

    /* The slot is still ours: wipe it all (not just n bytes) before anyone
     * else can have it, and without holding the lock. */
    explicit_bzero(p, slot_size);
    if (secmem_test_free_hook)
        secmem_test_free_hook(p, slot_size);

    pthread_mutex_lock(&mu);
    s = slab_of(p);
    if (!s || s->cls != cls)
        goto out;
    offset = (size_t)((unsigned char *)p - s->page);
    index = offset / slot_size;
    if (offset % slot_size != 0 || index >= s->slots)
        goto out;
    mask = (uint64_t)1 << (index % 64);
    if (!(s->used[index / 64] & mask))
        goto out; /* already free: never list a slot twice */
    s->used[index / 64] &= ~mask;
    s->nfree++;
    stats.free_slots++;
    stats.secrets--;
    if (!s->listed) {
        s->next = partial[cls];
        s->listed = 1;
        partial[cls] = s;
    }
out:
    pthread_mutex_unlock(&mu);
}

/* -- public ------------------------------------------------------------ */

size_t secmem_region_size(size_t n)
{
    size_t pages, slot_size;

    if (n <= SECMEM_SLOT_MAX) {
        (void)class_of(n, &slot_size);
        return slot_size;
    }
    pages = n / page_size + (n % page_size != 0);
    return pages * page_size;
}

void *secmem_alloc(size_t n, int *locked)
{
    size_t size;
    void *p;

    *locked = 0;
    if (n <= SECMEM_SLOT_MAX)
        return slot_alloc(n, locked);

    size = secmem_region_size(n);
    if (size < n) { /* rounding overflowed */
        errno = ENOMEM;
        return NULL;
    }
    p = map_secret(size);
    if (!p)
        return NULL;
    *locked = try_lock(p, size);
    pthread_mutex_lock(&mu);
    stats.secrets++;
    if (*locked)
        stats.locked_bytes += size;
    pthread_mutex_unlock(&mu);
    return p;
}

void secmem_wipe(void *p, size_t n)
{
    if (n)
        explicit_bzero(p, n);
}

void secmem_free(void *p, size_t n, int locked)
{
    size_t size;

    if (p == NULL)
        return;
    if (n <= SECMEM_SLOT_MAX) {
        slot_free(p, n);
        return;
    }
    size = secmem_region_size(n);
    /* Wipe before munlock: once unlocked the pages may be swapped out. */
    explicit_bzero(p, size);
    if (secmem_test_free_hook)
        secmem_test_free_hook(p, size);
    if (locked)
        (void)munlock(p, size);
    (void)munmap(p, size);
    pthread_mutex_lock(&mu);
    stats.secrets--;
    if (locked)
        stats.locked_bytes -= size;
    pthread_mutex_unlock(&mu);
}

void secmem_stats(struct secmem_stats *out)
{
    pthread_mutex_lock(&mu);
    if (relock_pending) /* so a forked child reports what it really locks */
        relock_slabs();
    *out = stats;
    pthread_mutex_unlock(&mu);
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
