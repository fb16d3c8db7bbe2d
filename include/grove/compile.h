/* grove: compiling a traced function into a plan (JAX's jit).
 *
 * gv_plan_compile optimises the graph of a gv_fn (constant folding, CSE,
 * dead-code elimination, algebraic simplification with transposes folded
 * into GEMM flags, fusion of elementwise chains into single passes) and
 * lays every intermediate out in one arena with buffers reused after their
 * last use. gv_plan_run then executes the flat list of kernels: no
 * allocation, no string handling, no name lookups.
 *
 * gv_jit wraps this with a cache keyed by the input structure, shapes and
 * dtypes, as jax.jit does: a call with new shapes traces and compiles once
 * more (gv_jit_num_compiles counts it).
 *
 * Donation (jax's donate_argnums): inputs under a donated path may be
 * overwritten, and an output of the same shape and dtype is then written
 * into the donated input's buffer: a train step updates params in place.
 * A donated input leaf that has an output at its OWN path (and the same
 * shape and dtype) is carried: after every run it holds that output, written
 * in place where the plan could, copied back where it could not. So
 * `state, metrics = step(state, batch)` with state donated leaves the
 * caller's state tensors current, and the loop needs no reassignment.
 * Other donated leaves hold undefined contents after a run (JAX deletes
 * donated arrays). */
#ifndef GROVE_COMPILE_H
#define GROVE_COMPILE_H

#include "grove/graph.h"

#ifdef __cplusplus
extern "C" {
#endif

#pragma GCC visibility push(default) /* the public API: exported from libgrove.so */

typedef struct gv_plan gv_plan;

/* Argument numbers / names: GV_ARGNUMS(0, 2), GV_ARGNAMES("state"). */
typedef struct gv_argnums {
    const int *v;
    int n;
} gv_argnums;
typedef struct gv_argnames {
    const char *const *v;
    int n;
} gv_argnames;
#define GV_ARGNUMS(...)                                                              \
    ((gv_argnums){(const int[]){__VA_ARGS__},                                        \
                  (int)(sizeof((const int[]){__VA_ARGS__}) / sizeof(int))})
#define GV_ARGNAMES(...)                                                             \
    ((gv_argnames){(const char *const[]){__VA_ARGS__},                               \
                   (int)(sizeof((const char *const[]){__VA_ARGS__}) / sizeof(char *))})

typedef struct gv_plan_options {
    int threads;                   /* grove's OpenMP threads (docs/engine.md, Threads); 0 = 1 */
    bool no_optimize;              /* skip the passes: one kernel per node */
    /* Donation (jax.jit's donate_argnums / donate_argnames): the inputs'
     * top-level arguments by number (inputs a tuple) or by name (inputs a
     * dict), or any input paths; a number or name that is no argument is an
     * error. */
    gv_argnums donate_argnums;
    gv_argnames donate_argnames;
    const char *const *donate;     /* input paths whose buffers may be reused */
    int ndonate;
} gv_plan_options;

/* Compile fn for its example input shapes. Returns a new plan (gv_plan_free)
 * or NULL with the error set. fn may be freed afterwards. */
gv_plan *gv_plan_compile(const gv_fn *fn, const gv_plan_options *opts);
void gv_plan_free(gv_plan *plan);

/* A new output tree for this plan (gv_tree_free): tensors the plan writes
 * into on every run. Outputs aliased to donated inputs are filled in by
 * gv_plan_run with the input tensors themselves. */
gv_tree *gv_plan_new_outputs(const gv_plan *plan);

/* Run the plan. inputs: a tree with the structure, shapes and dtypes the
 * plan was compiled for; outputs: a tree from gv_plan_new_outputs. The
 * input tree is walked by structure (no lookups, no allocation). Donated
 * inputs are carried or undefined afterwards (Donation, above). */
gv_status gv_plan_run(gv_plan *plan, const gv_tree *inputs, gv_tree *outputs);

/* The same with flat arrays in flatten order. outputs[j] must have output
 * j's shape and dtype; for an output aliased to a donated input, outputs[j]
 * is set to that input tensor (borrowed). */
gv_status gv_plan_run_flat(gv_plan *plan, gv_tensor *const *inputs, gv_tensor **outputs);

typedef struct gv_plan_stats {
    int32_t nodes_traced;     /* graph nodes reachable from the outputs */
    int32_t nodes_optimized;  /* after constant folding, CSE, DCE, simplification */
    int32_t kernels;          /* kernel calls per run */
    int32_t fused_kernels;    /* of which fused elementwise passes */
    int32_t gemms;            /* of which BLAS GEMMs */
    size_t arena_bytes;       /* the arena (peak of live intermediates) */
    size_t intermediate_bytes;/* sum of all intermediates without reuse */
    int32_t donated_outputs;  /* outputs written in place into donated inputs */
    int32_t precompiled_kernels; /* fused passes with a pre-compiled shape (one C loop,
                              * e.g. an Adam/AdamW update) instead of the interpreter */
    int32_t overlapped_collectives; /* psums sent while later kernels run (distributed.h) */
} gv_plan_stats;

gv_plan_stats gv_plan_get_stats(const gv_plan *plan);
/* One line per kernel: what runs, on which buffers. Caller frees. */
char *gv_plan_dump(const gv_plan *plan);
/* Per-kernel timing (what jax.profiler shows per XLA op): once enabled,
 * every run adds each kernel's wall time to its total (two clock reads per
 * kernel, nothing allocated). The report lists the kernels by total time,
 * with their share, calls and what they are (as gv_plan_dump names them),
 * then the time per kind of kernel. Enabling clears the totals. */
gv_status gv_plan_profile_enable(gv_plan *plan, bool on);
char *gv_plan_profile_report(const gv_plan *plan);

/* ---- jit: a cache of plans keyed by input shapes ---- */

typedef struct gv_jit gv_jit;

/* jax.jit(fn, donate_argnums=...): fn traces the function for given
 * example inputs (graph.h). The options are copied (compound literals are
 * fine):
 *   gv_jit *step = gv_jit_new(train_step, &ctx, &(gv_plan_options){
 *       .donate_argnums = GV_ARGNUMS(0)});
 *   for (...) gv_jit_call(step, args, &out);   // args = (state, x, y, key)
 * With the state donated and the step returning the new state first, the
 * state's tensors hold the new state after each call (see Donation above). */
gv_jit *gv_jit_new(gv_trace_fn fn, void *userdata, const gv_plan_options *opts);
void gv_jit_free(gv_jit *jit);
/* Run with inputs; traces and compiles on the first call with these input
 * structure, shapes and dtypes. *outputs (outputs may be NULL) is a tree
 * owned by the jit, the same tree on every call with this signature, so
 * handles into it (gv_unpack) taken once stay valid. A call whose signature
 * was seen before checks it without allocating and runs the plan without
 * allocating. */
gv_status gv_jit_call(gv_jit *jit, const gv_tree *inputs, gv_tree **outputs);
/* The outputs tree for inputs' signature, compiling now if needed (to take
 * handles before the first call). Owned by the jit; NULL on error. */
gv_tree *gv_jit_outputs(gv_jit *jit, const gv_tree *inputs);
/* The plan for inputs' signature, compiling now if needed (stats, dump). */
const gv_plan *gv_jit_plan(gv_jit *jit, const gv_tree *inputs);
/* How many times a new input signature was traced and compiled. */
int gv_jit_num_compiles(const gv_jit *jit);

#pragma GCC visibility pop

#ifdef __cplusplus
}
#endif
#endif
