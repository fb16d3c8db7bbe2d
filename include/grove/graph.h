/* grove: traced functions. A C function is called ONCE with symbolic values
 * (gv_value) in place of arrays; every op it applies is recorded into a
 * graph, which grove can then evaluate, differentiate (autodiff.h) and
 * compile into a plan (compile.h). This is JAX's tracing, in C.
 *
 *   static gv_tree *loss_fn(gv_graph *g, const gv_tree *in, void *ud) {
 *       gv_value w, x;
 *       gv_unpack(in, "{params: {w}, x}", &w, &x);                 // pack.h
 *       gv_value y = gv_matmul(x, w);
 *       return gv_pack(g, "loss", gv_mean(gv_square(y), NULL, 0, false));
 *   }
 *   gv_fn *f = gv_trace(loss_fn, NULL, example_inputs);   // example: shapes/dtypes only
 *
 * Errors while tracing are sticky: an op given a bad shape records the first
 * error in the graph (op, shapes, scope path) and returns an invalid value;
 * every later op on an invalid value is a no-op returning an invalid value;
 * gv_trace then fails with that first message. Ops never abort. */
#ifndef GROVE_GRAPH_H
#define GROVE_GRAPH_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "grove/status.h"
#include "grove/tensor.h"
#include "grove/tree.h"

#ifdef __cplusplus
extern "C" {
#endif

#pragma GCC visibility push(default) /* the public API: exported from libgrove.so */

typedef struct gv_graph gv_graph;

/* A symbolic array: a node of a graph under construction. Plain value, no
 * ownership: it is valid as long as its graph. id < 0 means invalid (an op
 * failed; see the graph's error). */
typedef struct gv_value {
    gv_graph *graph;
    int32_t id;
} gv_value;

/* A traced function: its graph, the structure of its inputs and outputs. */
typedef struct gv_fn gv_fn;

/* The function to trace: gets the graph and a tree of input values (same
 * structure as the example inputs) and returns a NEW tree whose leaves are
 * values of this graph (gv_tree_new_value_leaf, gv_tree_insert_value), or
 * NULL after setting an error. */
typedef gv_tree *(*gv_trace_fn)(gv_graph *g, const gv_tree *inputs, void *userdata);

/* Trace fn once with placeholders shaped like example_inputs (a tree of
 * tensors; only their shapes and dtypes are used). Returns a new gv_fn
 * (gv_fn_free), or NULL with the first trace error. */
gv_fn *gv_trace(gv_trace_fn fn, void *userdata, const gv_tree *example_inputs);
void gv_fn_free(gv_fn *fn);

/* Run the traced graph node by node with the reference kernels (no
 * optimisation): the "eager" mode tests use to check compiled plans.
 * inputs must match the example inputs' structure, shapes and dtypes.
 * *outputs gets a new tree of tensors (caller frees). */
gv_status gv_fn_eval(const gv_fn *fn, const gv_tree *inputs, gv_tree **outputs);

/* Call a traced function inside another trace: its graph is inlined into
 * g with args (a tree of values of g with fn's input structure, shapes and
 * dtypes) in place of its inputs. Returns a tree of values of g with fn's
 * output structure, owned by g (pack.h: freeing it is allowed and does
 * nothing), or NULL with a sticky error in g. This is how a train step uses
 * a value_and_grad function. */
gv_tree *gv_fn_call(gv_graph *g, const gv_fn *fn, const gv_tree *args);

/* The input and output structures (borrowed): trees whose leaves are
 * tensors (inputs: the examples) and values (outputs). */
const gv_tree *gv_fn_inputs(const gv_fn *fn);
const gv_tree *gv_fn_outputs(const gv_fn *fn);
gv_graph *gv_fn_graph(const gv_fn *fn);

/* Number of nodes reachable from the outputs. */
int32_t gv_fn_num_nodes(const gv_fn *fn);

/* Debug dumps (malloc'd, caller frees): one line per node, and Graphviz DOT. */
char *gv_fn_dump(const gv_fn *fn);
char *gv_fn_dump_dot(const gv_fn *fn);

/* ---- values ------------------------------------------------------------- */

/* Queries. On an invalid value (gv_invalid, the result of a failed op, a
 * value of no graph) they return GV_DTYPE_INVALID, rank -1, shape NULL,
 * size -1 and dim -1, and record GV_ERR_ARG: as the graph's sticky error
 * (a no-op if the graph has already failed, the usual reason for an invalid
 * value), or with gv_error if the value has no graph. gv_value_ok never
 * records an error. */
bool gv_value_ok(gv_value v);
gv_dtype gv_value_dtype(gv_value v);
int gv_value_rank(gv_value v);
/* The dims (rank entries), borrowed from the graph. */
const int64_t *gv_value_shape(gv_value v);
/* Dim of an axis (negative counts from the end); -1 and a sticky error if
 * the axis is out of range. */
int64_t gv_dim(gv_value v, int axis);
int64_t gv_value_size(gv_value v);

/* ---- the graph ---------------------------------------------------------- */

/* The first trace error (GV_OK if none) and its message (borrowed). */
gv_status gv_graph_status(const gv_graph *g);
const char *gv_graph_error(const gv_graph *g);

/* Scopes name where an op was traced (a module path) in error messages:
 * "params/encoder/Dense_1: matmul [16,256] x [128,64]". */
void gv_graph_push_scope(gv_graph *g, const char *name);
void gv_graph_pop_scope(gv_graph *g);

/* Record a trace error by hand (e.g. from a module); the first one sticks. */
void gv_graph_fail(gv_graph *g, gv_status status, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* A failing value: records the error as gv_graph_fail does and returns an
 * invalid value, for a user's traced helper that refuses its input:
 *   if (gv_value_rank(x) != 2) return gv_value_fail(g, GV_ERR_SHAPE, "need a matrix"); */
gv_value gv_value_fail(gv_graph *g, gv_status status, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* ---- trees of values ---------------------------------------------------- */

/* Hand a tree to the graph: it is freed with the graph (the traced
 * function), gv_tree_free on it does nothing from now on, and inserting it
 * into another tree inserts a clone. Returns tree (NULL stays NULL). Trees
 * made by gv_pack(g, ...), gv_fn_call, gv_apply and apply_gradients are
 * owned this way, so traced code frees nothing (pack.h). */
gv_tree *gv_graph_own(gv_graph *g, gv_tree *tree);

/* A tree that is one value leaf. */
gv_tree *gv_tree_new_value_leaf(gv_value v);
/* Insert/set a value leaf at path (errors as gv_tree_insert). */
gv_status gv_tree_insert_value(gv_tree *tree, const char *path, gv_value v);
gv_status gv_tree_set_value(gv_tree *tree, const char *path, gv_value v);
/* The value at path; an invalid value (and a sticky error in the value's
 * graph when one is known) if the path is missing or not a value. */
gv_value gv_tree_get_value(const gv_tree *tree, const char *path);
/* The value of a value leaf (invalid otherwise). */
gv_value gv_tree_leaf_value(const gv_tree *leaf);

#pragma GCC visibility pop

#ifdef __cplusplus
}
#endif
#endif
