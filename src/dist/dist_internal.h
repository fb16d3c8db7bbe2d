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

#endif
