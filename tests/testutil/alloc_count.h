/* Counting allocations for "no allocation per run" tests. Include it in ONE
 * source file of a test executable: it defines that executable's malloc
 * family, which counts calls in gvt_allocs and forwards to glibc's. Not
 * under AddressSanitizer, whose allocator must stay in place: there
 * GVT_COUNTING_ALLOCS is left undefined and tests skip the check. */
#ifndef GROVE_TEST_ALLOC_COUNT_H
#define GROVE_TEST_ALLOC_COUNT_H

#include <stddef.h>

#if !defined(__SANITIZE_ADDRESS__)
extern void *__libc_malloc(size_t), *__libc_calloc(size_t, size_t), *__libc_realloc(void *, size_t);
extern void *__libc_memalign(size_t, size_t);
static volatile long gvt_allocs;
void *malloc(size_t n) { gvt_allocs++; return __libc_malloc(n); }
void *calloc(size_t a, size_t b) { gvt_allocs++; return __libc_calloc(a, b); }
void *realloc(void *p, size_t n) { gvt_allocs++; return __libc_realloc(p, n); }
void *aligned_alloc(size_t a, size_t n) { gvt_allocs++; return __libc_memalign(a, n); }
#define GVT_COUNTING_ALLOCS 1
#endif

#endif
