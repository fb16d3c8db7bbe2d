/* grove internal: what the plan's collectives call (src/dist/distributed.c). */
#ifndef GROVE_DIST_INTERNAL_H
#define GROVE_DIST_INTERNAL_H

#include <stdbool.h>
#include <stdint.h>

#include "grove/tensor.h"

/* Whether gv_dist_allreduce_sum takes this dtype. */
bool gv_dist_sum_supports(gv_dtype d);
/* buf (count elements of d) := its elementwise sum over all processes, in
 * place. Nothing for one process. Errors are MPI's fatal ones: the job ends. */
void gv_dist_allreduce_sum(void *buf, int64_t count, gv_dtype d);

/* The same sum on the communication thread, so that a plan computes on
 * while it travels: returns a ticket; gv_dist_async_wait(ticket) returns
 * once buf holds the sum (and every sum queued before it is done). buf
 * must not be touched in between. */
uint64_t gv_dist_async_sum(void *buf, int64_t count, gv_dtype d);
void gv_dist_async_wait(uint64_t ticket);
/* Whether plans overlap their psums with the steps after them: a job of
 * more than one host, or GROVE_OVERLAP_COLLECTIVES=1 (0: never). */
bool gv_dist_async_enabled(void);

#endif
