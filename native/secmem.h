/* Secret memory for Milagro Node: regions that are kept out of core dumps,
 * dropped in forked children, locked in RAM when the kernel lets us, and
 * zeroed with a store the compiler cannot optimise away.
 * Python bytes objects give none of these guarantees; see
 * milagro_node/secret_memory.py for the type built on top. Linux only.
 *
 * Small secrets (up to SECMEM_SLOT_MAX bytes) live in fixed-size slots of
 * 32, 64, 128, 256 or 512 bytes. Slots are carved from slabs (one page, one
 * size class) and slabs from arenas (SECMEM_ARENA_PAGES pages mapped at once
 * with MADV_DONTDUMP and MADV_WIPEONFORK). Each slab is mlock'd when it is
 * carved. Arenas and slabs are never unmapped: the pool keeps the high-water
 * mark of live small secrets for the life of the process, and every free
 * slot in it is zero. Larger secrets get a mapping of their own, unmapped
 * when freed.
 *
 * All functions are thread-safe: the allocator state is guarded by one
 * mutex (cffi drops the GIL around calls), never held while calling out. */
#ifndef MILAGRO_SECMEM_H
#define MILAGRO_SECMEM_H

#include <stddef.h>

#define SECMEM_SLOT_MIN 32
#define SECMEM_SLOT_MAX 512
#define SECMEM_ARENA_PAGES 16

/* Allocate n bytes of secret memory (n may be 0; every secret still gets a
 * distinct address). *locked is 1 if its memory is mlock'd, 0 if the kernel
 * refused; refusal is not an error. Returns NULL (errno set) only if the
 * memory cannot be mapped. The memory starts zeroed. */
void *secmem_alloc(size_t n, int *locked);

/* Bytes reserved for a request of n bytes: the slot size for small secrets,
 * whole pages for large ones. secmem_free wipes all of them. */
size_t secmem_region_size(size_t n);

/* Zero n bytes at p (explicit_bzero: not removed as a dead store). */
void secmem_wipe(void *p, size_t n);

/* Zero the whole slot or region, then return the slot to its free list, or
 * unlock and unmap a large region. n and locked are the values given to /
 * returned by secmem_alloc. Unknown or already free slots are ignored. */
void secmem_free(void *p, size_t n, int locked);

/* 1 if the n bytes at a and b are equal, else 0; time depends only on n. */
int secmem_ct_equal(const void *a, const void *b, size_t n);

/* Fill n bytes from getrandom(2). 0 on success, -1 with errno set. */
int secmem_random(void *p, size_t n);

struct secmem_stats {
    size_t secrets;      /* live secrets, small and large */
    size_t locked_bytes; /* locked slabs + locked large regions */
    size_t arenas;       /* arenas mapped (kept for the process lifetime) */
    size_t slabs;        /* pages carved into slots */
    size_t slots;        /* slots in those slabs */
    size_t free_slots;   /* zeroed slots ready for reuse */
};

/* Lock every page of the process in RAM, now and from now on (mlockall; pages are
 * locked as they are first touched where the kernel has MCL_ONFAULT, so thread stacks
 * are not filled up front), and mark it not dumpable (no core dump, no ptrace by other
 * users). The second always holds once called; the first is undone by nothing but exec.
 * 0 on success, else the errno of mlockall (memory stays as it was: each secret's own
 * lock is untouched). Not inherited by forked children. */
int secmem_lock_process(void);

/* A consistent snapshot of the allocator's counters. */
void secmem_stats(struct secmem_stats *out);

/* Test hook: if set, secmem_free calls it with the whole slot or region after
 * zeroing it, before the slot is reusable or the region unmapped, so tests
 * can check that it really was wiped. It only ever sees zeros. It is called
 * without the allocator lock held. */
extern void (*secmem_test_free_hook)(const void *p, size_t n);

#endif
