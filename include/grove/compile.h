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
 * into the donated input's buffer: a train step updates params in place. */
#ifndef GROVE_COMPILE_H
#define GROVE_COMPILE_H

#include "grove/graph.h"

#ifdef __cplusplus
extern "C" {
#endif

#pragma GCC visibility push(default) /* the public API: exported from libgrove.so */

typedef struct gv_plan gv_plan;

typedef struct gv_plan_options {
    int threads;                   /* grove's OpenMP threads (docs/engine.md, Threads); 0 = 1 */
    bool no_optimize;              /* skip the passes: one kernel per node */
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
 * inputs' contents are undefined afterwards unless an output aliases them. */
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
} gv_plan_stats;

gv_plan_stats gv_plan_get_stats(const gv_plan *plan);
/* One line per kernel: what runs, on which buffers. Caller frees. */
char *gv_plan_dump(const gv_plan *plan);

/* ---- jit: a cache of plans keyed by input shapes ---- */

typedef struct gv_jit gv_jit;

/* fn traces the function for given example inputs (graph.h). */
gv_jit *gv_jit_new(gv_trace_fn fn, void *userdata, const gv_plan_options *opts);
void gv_jit_free(gv_jit *jit);
/* Run with inputs; traces and compiles on the first call with these input
 * shapes/dtypes. *outputs is a tree owned by the jit, valid until the next
 * call with the same shapes. */
gv_status gv_jit_call(gv_jit *jit, const gv_tree *inputs, gv_tree **outputs);
/* How many times a new input signature was traced and compiled. */
int gv_jit_num_compiles(const gv_jit *jit);

#pragma GCC visibility pop

#ifdef __cplusplus
}
#endif
#endif
