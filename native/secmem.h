/* Secret memory for Milagro Node: page-aligned regions that are kept out of
 * core dumps, dropped in forked children, locked in RAM when the kernel lets
 * us, and zeroed with a store the compiler cannot optimise away.
 * Python bytes objects give none of these guarantees; see
 * milagro_node/secret_memory.py for the type built on top. Linux only. */
#ifndef MILAGRO_SECMEM_H
#define MILAGRO_SECMEM_H

#include <stddef.h>

/* Map at least n bytes (whole pages, at least one). *locked is 1 if mlock
 * succeeded, 0 if it was refused; refusal is not an error. Returns NULL (errno
 * set) only if mmap fails. The region starts zeroed. */
void *secmem_alloc(size_t n, int *locked);

/* Bytes actually mapped for a request of n bytes. */
size_t secmem_region_size(size_t n);

/* Zero n bytes at p (explicit_bzero: not removed as a dead store). */
void secmem_wipe(void *p, size_t n);

/* Zero the whole region, unlock it if it was locked, unmap it.
 * n and locked are the values given to / returned by secmem_alloc. */
void secmem_free(void *p, size_t n, int locked);

/* 1 if the n bytes at a and b are equal, else 0; time depends only on n. */
int secmem_ct_equal(const void *a, const void *b, size_t n);

/* Fill n bytes from getrandom(2). 0 on success, -1 with errno set. */
int secmem_random(void *p, size_t n);

/* Test hook: if set, secmem_free calls it after zeroing and before munmap, so
 * tests can check that the region really was wiped. It only ever sees zeros. */
extern void (*secmem_test_unmap_hook)(const void *p, size_t n);

#endif
