/* grove: data-parallel training across processes (and machines) with MPI.
 *
 * The JAX multi-process model: every process runs the same program on its
 * own shard of each global batch, and the gradients are averaged across
 * processes inside the compiled train step. grove's pieces:
 *
 *   gv_distributed_init(&argc, &argv);     // jax.distributed.initialize()
 *   gv_process_index(), gv_process_count() // jax.process_index(), process_count()
 *   gv_loader_options.shard = gv_shard_by_process()  // this process's rows of each batch
 *   gv_train_state_apply_gradients(...)    // averages the grads across processes
 *   gv_pmean(x)                            // jax.lax.pmean: e.g. a loss for the log
 *
 * so a train step written for one process runs unchanged on N: launched
 * with `mpirun -np N prog ...`, N processes with global batch B take the
 * steps one process with batch B takes (up to float summation order).
 *
 * The communication is MPI (Open MPI in Debian) when grove was built with
 * GROVE_MPI; otherwise there is one process and gv_psum is the identity.
 * A process started by an MPI launcher (mpirun/mpiexec/srun sets its
 * environment) initialises MPI; one started alone is process 0 of 1.
 *
 * Faults: the collectives run with MPI's fatal error handler, so a process
 * that dies ends the whole job (the launcher names the rank) instead of
 * leaving the others waiting; gv_distributed_abort ends the job from a
 * process that hit an error the others cannot know about. */
#ifndef GROVE_DISTRIBUTED_H
#define GROVE_DISTRIBUTED_H

#include <stdbool.h>
#include <stdint.h>

#include "grove/graph.h"
#include "grove/status.h"

#ifdef __cplusplus
extern "C" {
#endif

#pragma GCC visibility push(default) /* the public API: exported from libgrove.so */

/* Whether this grove was built with MPI (GROVE_MPI). */
bool gv_distributed_available(void);

/* jax.distributed.initialize(): join the job this process was launched
 * in. Under an MPI launcher it initialises MPI (unless the program did
 * already; argc/argv may be NULL) and reads the rank and size; alone it
 * makes this process 0 of 1. Idempotent. GV_ERR_UNSUPPORTED when launched
 * as one of several processes by a grove built without MPI. */
gv_status gv_distributed_init(int *argc, char ***argv);

/* Whether this process was started by an MPI launcher (its environment
 * says so), whether or not gv_distributed_init ran yet. */
bool gv_distributed_launched(void);

/* jax.process_index() and jax.process_count(): 0 and 1 before
 * gv_distributed_init or without a launcher. */
int gv_process_index(void);
int gv_process_count(void);

/* Leave the job (MPI_Finalize if grove initialised MPI). Call it once, at
 * the end, on every process; a no-op for a single process. */
void gv_distributed_shutdown(void);

/* End the whole job now with exit code `code`, every process (MPI_Abort):
 * for an error one process meets that the others would otherwise wait
 * on forever at their next collective. Does not return. For a single
 * process it is exit(code). */
_Noreturn void gv_distributed_abort(int code);

/* Wait until every process reached this point. */
gv_status gv_distributed_barrier(void);

/* Whether `bytes` are the same on every process (a hash compared across
 * them): for settings that must agree (config, batch size, data size)
 * before the first step. GV_ERR_ARG naming `what` and the first rank that
 * differs from rank 0 when they do not. */
gv_status gv_distributed_check_same(const void *bytes, size_t n, const char *what);

/* Host-side reductions for a training loop's bookkeeping, outside any
 * plan; every process must call them at the same point. */
/* Whether flag is true on any process (e.g. a Ctrl-C that reached one of
 * them): so that all stop at the same step. flag itself for one process. */
bool gv_distributed_any(bool flag);
/* values[0..n) := their sums over the processes (e.g. metric sums and
 * counts). Unchanged for one process. */
gv_status gv_distributed_sum(double *values, size_t n);
/* values[0..n) := their minimums over the processes (e.g. the latest
 * checkpoint step every process has). Unchanged for one process. */
gv_status gv_distributed_min(int64_t *values, size_t n);

/* What the plans' collectives cost this process so far: calls, bytes
 * reduced, and seconds inside MPI (the transfer plus any wait for a slower
 * process). Zeros for one process. */
typedef struct gv_distributed_stats {
    int64_t calls, bytes;
    double seconds;
} gv_distributed_stats;
gv_distributed_stats gv_distributed_get_stats(void);

/* ---- traced collectives (jax.lax) ---- */

/* jax.lax.psum(x): the elementwise sum of x over all processes (every
 * process gets it). Float or integer x of any shape. Its gradient is the
 * psum of the cotangent. */
gv_value gv_psum(gv_value x);

/* jax.lax.pmean(x) = psum(x) / process_count. x itself for one process. */
gv_value gv_pmean(gv_value x);

/* This process's rows of x, a value computed for the whole global batch:
 * rows [i*n/P, (i+1)*n/P) of axis 0 (i the process index, P the count, n
 * x's first dim, which P must divide). x itself for one process. For
 * values that must match what one process computes for the whole batch,
 * e.g. noise drawn for every example with jax.random.normal(key, (B, ...)):
 * draw it at the global shape, then take this process's rows. */
gv_value gv_process_rows(gv_value x);

/* pmean of every leaf of a tree of values (e.g. the grads): the float32
 * leaves are reduced together in buckets of about bucket_bytes (0 = the
 * default, 1 MiB), the last leaves first, the order a backward pass makes
 * them in. In a job across hosts, a compiled plan starts each bucket as
 * soon as backward has made its grads and sends it from a communication
 * thread while the rest of the step runs, until the first step that reads
 * it (GROVE_OVERLAP_COLLECTIVES=1 or 0 forces this on or off). A new tree of values of g (pack.h);
 * the tree itself (copied) for one process; NULL after a trace error. */
gv_tree *gv_pmean_tree(gv_graph *g, const gv_tree *tree, size_t bucket_bytes);
/* psum of every leaf of a tree of values, bucketed as gv_pmean_tree. */
gv_tree *gv_psum_tree(gv_graph *g, const gv_tree *tree, size_t bucket_bytes);

#pragma GCC visibility pop

#ifdef __cplusplus
}
#endif
#endif
