/* grove: shape-only trees (jax.eval_shape, jax.ShapeDtypeStruct).
 *
 * A shape-only tree has the structure of a real one and, at every leaf, a
 * shape-only tensor (gv_shape_dtype_struct, tensor.h): a dtype and a shape,
 * no data. It is what a function WOULD return, computed by tracing alone,
 * and it is all a checkpoint restore needs as its target, so resuming a
 * training run needs no dummy initialisation:
 *
 *   gv_tree *vars = gv_eval_shape_init(&model, key, example_args, NULL);  // nn.h
 *   gv_tree *target = gv_eval_shape_train_state(tx, gv_tree_get(vars, "params"));
 *   gv_tree *state = gv_checkpoint_manager_restore(m, -1, "state", target);   // real tensors
 *
 * Shape-only leaves are accepted wherever only shapes matter (tree
 * structure and printing, gv_tree_check_same, gv_trace's example inputs,
 * restore targets) and refused with a message naming the leaf's path
 * wherever data is needed (saving, running a plan, eager evaluation). */
#ifndef GROVE_EVAL_SHAPE_H
#define GROVE_EVAL_SHAPE_H

#include "grove/graph.h"

#ifdef __cplusplus
extern "C" {
#endif

#pragma GCC visibility push(default) /* the public API: exported from libgrove.so */

/* jax.tree.map(lambda x: jax.ShapeDtypeStruct(x.shape, x.dtype), tree)
 * (Orbax's to_shape_dtype_struct): a new tree with tree's structure, keys
 * and key order whose tensor leaves (with data or shape-only) and value
 * leaves (traced values: their shapes and dtypes) are shape-only tensors;
 * label leaves are copied. The caller owns the result. NULL with the error
 * set: GV_ERR_ARG for a NULL tree or an invalid value (naming its path). */
gv_tree *gv_tree_to_shape_dtype_struct(const gv_tree *tree);

/* GV_OK if no tensor leaf of tree is shape-only; else GV_ERR_ARG with
 * "what: <path>: the leaf is shape-only (ShapeDtypeStruct float32[2,3])
 * and has no data". For anything that needs the values of a tree (what may
 * be NULL). Allocates nothing unless it fails. */
gv_status gv_tree_check_concrete(const gv_tree *tree, const char *what);

/* jax.eval_shape(fn, *args): trace fn once with placeholders shaped like
 * example_inputs (tensors with data or shape-only; only shapes and dtypes
 * are used) and return the shapes of its outputs, without compiling or
 * running anything: a new shape-only tree with the output structure (the
 * caller frees it), or NULL with the first trace error. */
gv_tree *gv_eval_shape(gv_trace_fn fn, void *userdata, const gv_tree *example_inputs);

#pragma GCC visibility pop

#ifdef __cplusplus
}
#endif
#endif
