/* The malloc family of the tests that include alloc_count.h: referencing
 * gvt_allocs pulls this object out of the testutil archive, and its
 * definitions then take the place of glibc's in that executable. */
#define _GNU_SOURCE /* dl_iterate_phdr */
#include <link.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "alloc_count.h"

#if !defined(__SANITIZE_ADDRESS__)
extern void *__libc_malloc(size_t), *__libc_calloc(size_t, size_t), *__libc_realloc(void *, size_t);
extern void *__libc_memalign(size_t, size_t);

volatile long gvt_allocs;

/* Allocations made by the BLAS itself are not grove's: OpenBLAS 0.3.21's
 * small-matrix GEMM path on Skylake-X takes a buffer from malloc on every
 * call (on Zen 4 it does not). Calls from libopenblas's code do not count. */
static uintptr_t blas_lo[8], blas_hi[8];
static int blas_n = -1;

static int find_blas(struct dl_phdr_info *info, size_t size, void *ud) {
    (void)size, (void)ud;
    if (!info->dlpi_name || !strstr(info->dlpi_name, "libopenblas")) return 0;
    for (int k = 0; k < info->dlpi_phnum && blas_n < 8; k++) {
        const ElfW(Phdr) *ph = &info->dlpi_phdr[k];
        if (ph->p_type != PT_LOAD || !(ph->p_flags & PF_X)) continue;
        blas_lo[blas_n] = info->dlpi_addr + ph->p_vaddr;
        blas_hi[blas_n++] = info->dlpi_addr + ph->p_vaddr + ph->p_memsz;
    }
    return 0;
}

static void count(void *caller) {
    if (blas_n < 0) { /* the BLAS is mapped before main: look it up once */
        blas_n = 0;
        dl_iterate_phdr(find_blas, NULL);
    }
    for (int k = 0; k < blas_n; k++)
        if ((uintptr_t)caller >= blas_lo[k] && (uintptr_t)caller < blas_hi[k]) return;
    gvt_allocs++;
}

void *malloc(size_t n) {
    count(__builtin_return_address(0));
    return __libc_malloc(n);
}
void *calloc(size_t a, size_t b) {
    count(__builtin_return_address(0));
    return __libc_calloc(a, b);
}
void *realloc(void *p, size_t n) {
    count(__builtin_return_address(0));
    return __libc_realloc(p, n);
}
void *aligned_alloc(size_t a, size_t n) {
    count(__builtin_return_address(0));
    return __libc_memalign(a, n);
}
#endif
