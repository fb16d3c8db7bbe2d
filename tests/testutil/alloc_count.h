/* Counting allocations for "no allocation per run" tests: including this
 * header makes the test executable use testutil's malloc family
 * (alloc_count.c), which counts calls in gvt_allocs and forwards to glibc's.
 * Not under AddressSanitizer, whose allocator must stay in place: there
 * GVT_COUNTING_ALLOCS is left undefined and tests skip the check. */
#ifndef GROVE_TEST_ALLOC_COUNT_H
#define GROVE_TEST_ALLOC_COUNT_H

#if !defined(__SANITIZE_ADDRESS__)
extern volatile long gvt_allocs;
#define GVT_COUNTING_ALLOCS 1
#endif

#endif
