/* grove: flax.training.train_state.TrainState.
 *
 * A train state is a tree {"step": int32 scalar, "params": ..., "opt_state":
 * ...}, so it is saved, restored and passed through compiled steps like any
 * other tree. Like a TrainState subclass, more fields can be added to the
 * dict (e.g. "batch_stats", or the last "loss"); apply_gradients carries
 * them through unchanged and gv_train_state_replace sets one (the
 * tutorial's BatchNorm TrainState: gv_train_state_create_with_batch_stats
 * below). The apply function (a module) and the optimiser are static: they
 * are not in the tree. */
#ifndef GROVE_TRAIN_STATE_H
#define GROVE_TRAIN_STATE_H

#include "grove/nn.h"
#include "grove/optim.h"

#ifdef __cplusplus
extern "C" {
#endif

#pragma GCC visibility push(default) /* the public API: exported from libgrove.so */

/* TrainState.create(apply_fn, params, tx): step 0, params (tensors shared
 * with the given tree), opt_state = tx.init(params). A new tree the caller
 * frees, NULL with the error set. */
gv_tree *gv_train_state_create(gv_transform *tx, const gv_tree *params);

/* state.apply_gradients(grads=grads), traced: updates, opt_state' =
 * tx.update(grads, opt_state, params); params' = apply_updates(params,
 * updates); step' = step + 1 (int32, saturating as optax counters do).
 * In a data-parallel job (distributed.h, more than one process) the grads
 * are first averaged over the processes (gv_pmean_tree, in the plan), so
 * every process applies the same update: do not pmean them yourself.
 * state is a tree of values of g; returns the new state (a tree of values
 * owned by the graph, pack.h; extra fields copied through), NULL after a
 * trace error. */
gv_tree *gv_train_state_apply_gradients(gv_graph *g, const gv_transform *tx,
                                        const gv_tree *state, const gv_tree *grads);

/* ---- ZeRO-1: the optimiser state sharded across processes ---- */

/* TrainState.create for a data-parallel job whose processes each keep the
 * optimiser state of only some of the params (ZeRO stage 1): the params'
 * leaves are dealt out to the gv_process_count() processes, largest first,
 * each to the process with the fewest elements so far, and this process's
 * "opt_state" is tx.init of its leaves only. The state also holds "zero1",
 * int32 [P]: the leaves each process owns (its shape records P, so a
 * checkpoint restores only into a job of the same size).
 * gv_train_state_apply_gradients then averages the grads over the
 * processes, updates this process's leaves, and gives every process all
 * the new params (a psum in which the other processes add -0.0, so the
 * values are exactly the owners'): the params are bit for bit those of the
 * unsharded state, the optimiser state and its update cost are 1/P each.
 * Every process saves its own state (its own checkpoint directory).
 * params must be a dict of dicts with at least P leaves; tx must treat the
 * leaves one by one: clip_by_global_norm, apply_if_finite and MultiSteps,
 * which look at all the grads at once, are GV_ERR_UNSUPPORTED. A new tree,
 * NULL with the error set; for one process, gv_train_state_create's state
 * plus "zero1". */
gv_tree *gv_train_state_create_zero1(gv_transform *tx, const gv_tree *params);

/* state.step of a concrete state: the int32 count, or -1 with the error set
 * (no "step", or not an int32 scalar). */
int32_t gv_train_state_step(const gv_tree *state);
/* state.params (borrowed from the state), NULL with the error set. */
gv_tree *gv_train_state_params(const gv_tree *state);

/* ---- batch_stats (the tutorial's TrainState subclass, reference C8) ---- */

/* TrainState.create(..., batch_stats=variables['batch_stats']): the state
 * of gv_train_state_create plus a "batch_stats" field (tensors shared with
 * the given tree), so it is passed to the step, donated with the state and
 * saved with it by the checkpoint manager. A new tree the caller frees,
 * NULL with the error set. */
gv_tree *gv_train_state_create_with_batch_stats(gv_transform *tx, const gv_tree *params,
                                                const gv_tree *batch_stats);
/* state.batch_stats (borrowed; a concrete or a traced state), NULL with
 * the error set when the state has none. */
gv_tree *gv_train_state_batch_stats(const gv_tree *state);
/* state.replace(field=value), traced: a new state (a tree of values owned
 * by g, pack.h) with field (e.g. "batch_stats") replaced by a copy of value
 * and every other field copied; the field must exist (GV_ERR_NOT_FOUND, a
 * trace error). The step writes back the mutated collection with
 *   next = gv_train_state_replace(g, gv_train_state_apply_gradients(g, tx,
 *              state, grads), "batch_stats", gv_tree_get(mutated, "batch_stats"));
 * NULL after a trace error. */
gv_tree *gv_train_state_replace(gv_graph *g, const gv_tree *state, const char *field,
                                const gv_tree *value);
/* jax.eval_shape of the state with batch_stats: gv_eval_shape_train_state
 * plus "batch_stats" as shape-only tensors, the restore target of a
 * gv_train_state_create_with_batch_stats state. */
gv_tree *gv_eval_shape_train_state_with_batch_stats(const gv_transform *tx, const gv_tree *params,
                                                    const gv_tree *batch_stats);

/* ---- shapes without data (eval_shape.h) ---- */

/* jax.eval_shape(lambda p: TrainState.create(apply_fn, p, tx), params): the
 * tree gv_train_state_create(tx, params) would make, {"step": int32 (),
 * "params": ..., "opt_state": tx.init(params)}, in the same key order, as
 * shape-only tensors (tx.init is traced, nothing runs). params may be
 * shape-only (gv_eval_shape_init(...)'s "params") or real. A new tree the
 * caller frees, the target of a restore that needs no initialised state;
 * NULL with the error set. */
gv_tree *gv_eval_shape_train_state(const gv_transform *tx, const gv_tree *params);

#pragma GCC visibility pop

#ifdef __cplusplus
}
#endif
#endif
