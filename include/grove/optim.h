/* grove: gradient transformations (Optax), learning-rate schedules and
 * losses.
 *
 * A gv_transform is Optax's GradientTransformation: a pair
 *   init(params) -> state          update(updates, state, params) -> (updates, state)
 * of pure functions over trees. Both run on TRACED values (graph.h), so an
 * optimiser becomes part of the one compiled train step:
 *
 *   static gv_tree *step(gv_graph *g, const gv_tree *in, void *ud) {  // (params, opt_state, batch)
 *       gv_tree *lg = gv_fn_call(g, vg, args);                         // (loss, grads)
 *       gv_tree *u, *s;
 *       gv_transform_update(tx, g, gv_tree_get(lg, "1"), gv_tree_child(in, 1),
 *                           gv_tree_child(in, 0), &u, &s);
 *       gv_tree *p = gv_apply_updates(g, gv_tree_child(in, 0), u);   // optax.apply_updates
 *       ...return (p, s, loss)
 *   }
 *
 * and the same transform also runs on concrete tensors
 * (gv_transform_init_eager / gv_transform_update_eager), which trace,
 * compile and run it, caching one plan per input signature.
 *
 * State trees (reference A17). Optax's states are NamedTuples; here a
 * NamedTuple is a DICT keyed by its field names (which flattens in field
 * order for every state below, as the names happen to sort that way), a
 * tuple is a gv tuple, and EmptyState() / MaskedNode() are EMPTY TUPLES
 * (no leaves). Counters are int32 scalars starting at 0 that saturate at
 * INT32_MAX (optax's safe_increment).
 *
 *   transformation              state
 *   identity, set_to_zero,      ()
 *   scale, add_decayed_weights,
 *   scale_by_learning_rate(lr)
 *   trace_momentum (optax.trace) {"trace": T}                   TraceState
 *   scale_by_adam               {"count": c, "mu": M, "nu": N}  ScaleByAdamState
 *   scale_by_schedule,          {"count": c}                    ScaleByScheduleState
 *   scale_by_learning_rate_schedule
 *   masked                      {"inner_state": S}              MaskedState
 *   chain(t1..tn)               (S1, ..., Sn)
 *
 * so, as in optax:
 *   sgd(lr)                     ((), ())
 *   sgd(lr, momentum m > 0)     ({"trace": T}, ())
 *   adam(lr)                    ({"count", "mu", "nu"}, ())
 *   adam_schedule(s)            ({"count", "mu", "nu"}, {"count"})
 *   adamw(lr)                   ({"count", "mu", "nu"}, (), ())
 *   adamw(lr, mask)             ({"count", "mu", "nu"}, {"inner_state": ()}, ())
 * T, M and N have the structure of the params; under a mask, masked-out
 * leaves are () in the inner state (optax's MaskedNode: no memory for them).
 *
 * Numerics (reference section 0). Hyper-parameters are doubles standing for
 * Python floats: arithmetic optax does on them in Python (1 - b1, -lr,
 * init - end) is done in double and rounded ONCE to float32 (JAX's weak
 * typing), while everything that touches an array is float32 op by op:
 * Adam's bias correction is 1 - powf(b1f, (float)count) in float32, so the
 * EMA weight (1 - b2 = 0.001f) and the correction (1 - 0.999f =
 * 0.00099998713f) differ, exactly as in JAX (A6.4).
 *
 * Ownership: every constructor returns a new object freed with
 * gv_transform_free (gv_schedule_free for schedules). Constructors that take
 * transforms or schedules (gv_chain, gv_masked, gv_*_schedule) TAKE OVER the
 * caller's reference, also on failure; a mask tree is copied. A transform is
 * immutable except for the plan cache of the eager calls (below), so the
 * traced calls may be used from several threads at once; the eager ones may
 * not use the same transform concurrently.
 *
 * Errors: the traced calls return a status (or NULL) with gv_last_error()
 * naming the transformation ("scale_by_adam: updates and state.mu differ:
 * ..."), and record the same message as the graph's sticky error, so a
 * gv_trace of a step that ignores the status still fails with it. */
#ifndef GROVE_OPTIM_H
#define GROVE_OPTIM_H

#include <stdbool.h>
#include <stdint.h>

#include "grove/graph.h"
#include "grove/ops.h"
#include "grove/tree.h"

#ifdef __cplusplus
extern "C" {
#endif

#pragma GCC visibility push(default) /* the public API: exported from libgrove.so */

/* ---- schedules (optax.schedules) ---------------------------------------- */

/* A schedule maps the int32 step count (a traced scalar) to a float32 scalar
 * (traced): the learning rate at that step. Reference counted. */
typedef struct gv_schedule gv_schedule;

/* User-defined schedule: fn(count, userdata) returns a float32 scalar value
 * of count's graph (or an invalid value after gv_graph_fail).
 * free_userdata (may be NULL) is called on userdata when the schedule goes. */
typedef gv_value (*gv_schedule_fn)(gv_value count, void *userdata);
gv_schedule *gv_schedule_new(const char *name, gv_schedule_fn fn, void *userdata,
                             void (*free_userdata)(void *));

/* optax.constant_schedule(value): (float)value at every count. */
gv_schedule *gv_constant_schedule(double value);
/* optax.polynomial_schedule: c = clip(count - begin, 0, T) (int32),
 * frac = 1 - (float)c / (float)T, value = (init - end) * frac**power + end,
 * where init - end is a Python-float difference (rounded once) and an
 * integral power is lax.integer_pow (repeated multiplication), any other a
 * powf. transition_steps <= 0 gives the constant init (optax warns);
 * a negative transition_begin counts as 0. */
gv_schedule *gv_polynomial_schedule(double init_value, double end_value, double power,
                                    int64_t transition_steps, int64_t transition_begin);
/* optax.linear_schedule: the polynomial schedule with power 1. */
gv_schedule *gv_linear_schedule(double init_value, double end_value, int64_t transition_steps,
                                int64_t transition_begin);

gv_schedule *gv_schedule_retain(gv_schedule *s);
void gv_schedule_free(gv_schedule *s);
/* "constant_schedule", "linear_schedule", ... or the user's name. Borrowed. */
const char *gv_schedule_name(const gv_schedule *s);

/* Traced: the schedule at count (an int32 scalar value). Float32 scalar. */
gv_value gv_schedule_value(const gv_schedule *s, gv_value count);
/* Eager: the schedule at a concrete count. */
gv_status gv_schedule_value_eager(const gv_schedule *s, int32_t count, float *out);

/* ---- the transformation object ------------------------------------------- */

typedef struct gv_transform gv_transform;

void gv_transform_free(gv_transform *tx);
/* The optax name: "chain", "scale_by_adam", "sgd", "adamw", ... Borrowed. */
const char *gv_transform_name(const gv_transform *tx);

/* Traced init: params is a tree of values of g (only shapes and dtypes are
 * used). Returns the new state tree of values (caller frees the tree), or
 * NULL with the error set. */
gv_tree *gv_transform_init(const gv_transform *tx, gv_graph *g, const gv_tree *params);

/* Traced update. updates must have the params' structure; params may be
 * NULL unless a part of tx needs them (add_decayed_weights: GV_ERR_ARG
 * naming it). On success *new_updates and *new_state are new trees the
 * caller frees; on failure both are NULL. */
gv_status gv_transform_update(const gv_transform *tx, gv_graph *g, const gv_tree *updates,
                              const gv_tree *state, const gv_tree *params,
                              gv_tree **new_updates, gv_tree **new_state);

/* Eager forms on trees of tensors: trace, compile (cached in tx per input
 * structure, shapes and dtypes) and run. Results are new trees of new
 * tensors the caller frees (they share nothing with the inputs or tx). */
gv_tree *gv_transform_init_eager(gv_transform *tx, const gv_tree *params);
gv_status gv_transform_update_eager(gv_transform *tx, const gv_tree *updates,
                                    const gv_tree *state, const gv_tree *params,
                                    gv_tree **new_updates, gv_tree **new_state);

/* optax.apply_updates: new_p = cast(p + u, dtype(p)) per leaf, the sum in
 * the wider of the two float dtypes. Traced: a new tree of values (caller
 * frees); eager: a new tree of new tensors. */
gv_tree *gv_apply_updates(gv_graph *g, const gv_tree *params, const gv_tree *updates);
gv_tree *gv_apply_updates_eager(const gv_tree *params, const gv_tree *updates);

/* ---- combinators and basic transformations ------------------------------- */

/* optax.chain(t1..tn): state (s1..sn); updates threaded through t1..tn
 * with the same params. Takes over txs[0..n-1] (the array itself stays the
 * caller's). n = 0 is the identity with state (). */
gv_transform *gv_chain(gv_transform *const *txs, size_t n);
/* optax.identity(): updates unchanged. State (). */
gv_transform *gv_identity(void);
/* optax.set_to_zero(): zeros_like(updates). State (). */
gv_transform *gv_set_to_zero(void);
/* optax.scale(step_size): u <- (float)step_size * u. State (). */
gv_transform *gv_scale(double step_size);
/* optax.masked(inner, mask): inner sees only the leaves whose mask is true
 * (others are () for it); masked-out updates pass through UNCHANGED (A11).
 * mask: a tree with the params' structure or a prefix of it, whose leaves
 * are scalar tensors (non-zero = true) or labels "true"/"True" and
 * "false"/"False". Static: it is resolved while tracing. Copied. Takes over
 * inner. State {"inner_state": ...}. */
gv_transform *gv_masked(gv_transform *inner, const gv_tree *mask);

/* ---- scaling by a learning rate ----------------------------------------- */

/* optax.scale_by_learning_rate(lr) for a constant: scale(-lr). State (). */
gv_transform *gv_scale_by_learning_rate(double learning_rate);
/* optax.scale_by_learning_rate(schedule): u <- -schedule(count) * u, count
 * read BEFORE it is incremented (the first update uses schedule(0)).
 * State {"count"}. Takes over the schedule. */
gv_transform *gv_scale_by_learning_rate_schedule(gv_schedule *learning_rate);
/* optax.scale_by_schedule(fn): u <- fn(count) * u (no sign flip). State
 * {"count"}. Takes over the schedule. */
gv_transform *gv_scale_by_schedule(gv_schedule *step_size_fn);

/* ---- momentum, Adam, weight decay ----------------------------------------- */

/* optax.trace(decay, nesterov) (renamed: gv_trace is tracing, graph.h):
 * t' = g + decay*t; u = nesterov ? g + decay*t' : t'. State {"trace"}
 * (zeros like the params). */
gv_transform *gv_trace_momentum(double decay, bool nesterov);
/* optax.scale_by_adam(b1, b2, eps, eps_root): reference A6. State
 * {"count", "mu", "nu"}. */
gv_transform *gv_scale_by_adam(double b1, double b2, double eps, double eps_root);
/* optax.scale_by_adam(..., nesterov=True) (NAdam's update, A6). */
gv_transform *gv_scale_by_adam_nesterov(double b1, double b2, double eps, double eps_root);
/* optax.add_decayed_weights(weight_decay, mask): u <- u + wd * p. Needs
 * params. weight_decay == 0 returns the updates untouched (as optax does
 * for a Python 0.0). mask NULL: state (); otherwise masked(..., mask) with
 * state {"inner_state": ()}. */
gv_transform *gv_add_decayed_weights(double weight_decay, const gv_tree *mask);

/* ---- optimisers (optax aliases) ------------------------------------------ */

/* optax.sgd(lr, momentum, nesterov) = chain(trace(momentum, nesterov) or
 * identity, scale_by_learning_rate(lr)). momentum == 0 means optax's
 * momentum=None (identity, state ()); optax's explicit momentum=0.0 (a
 * trace of zeros) is chain(gv_trace_momentum(0, nesterov), scale_by_learning_rate). */
gv_transform *gv_sgd(double learning_rate, double momentum, bool nesterov);
gv_transform *gv_sgd_schedule(gv_schedule *learning_rate, double momentum, bool nesterov);
/* optax.adam = chain(scale_by_adam, scale_by_learning_rate).
 * Optax defaults: b1 0.9, b2 0.999, eps 1e-8, eps_root 0. */
gv_transform *gv_adam(double learning_rate, double b1, double b2, double eps, double eps_root);
gv_transform *gv_adam_schedule(gv_schedule *learning_rate, double b1, double b2, double eps,
                               double eps_root);
/* optax.nadam = adam(..., nesterov=True). */
gv_transform *gv_nadam(double learning_rate, double b1, double b2, double eps, double eps_root);
/* optax.adamw = chain(scale_by_adam, add_decayed_weights(wd, mask),
 * scale_by_learning_rate): the decay is added to the Adam-normalised update
 * and multiplied by the learning rate (A7). Optax's default wd is 1e-4.
 * mask may be NULL (copied otherwise). */
gv_transform *gv_adamw(double learning_rate, double b1, double b2, double eps, double eps_root,
                       double weight_decay, const gv_tree *mask);
gv_transform *gv_adamw_schedule(gv_schedule *learning_rate, double b1, double b2, double eps,
                                double eps_root, double weight_decay, const gv_tree *mask);

/* ---- losses (optax.losses): per example, no reduction (take the mean) ---- */

/* "No target" (optax's targets=None: zeros). */
#define GV_VALUE_NONE ((gv_value){NULL, -1})

/* (pred - target)**2 elementwise (an exact square). Shapes must be EQUAL (no
 * broadcasting; a sticky GV_ERR_SHAPE otherwise); pred must be float. */
gv_value gv_squared_error(gv_value predictions, gv_value targets);
/* 0.5 * squared_error: note the 0.5 (this is not the MSE). */
gv_value gv_l2_loss(gv_value predictions, gv_value targets);
/* 0.5*q**2 + delta*(|e| - q) with q = min(|e|, delta); broadcasting. */
gv_value gv_huber_loss(gv_value predictions, gv_value targets, double delta);
/* -sum(labels * log_softmax(logits, axis), axis); labels are cast to the
 * logits' float dtype. */
gv_value gv_softmax_cross_entropy(gv_value logits, gv_value labels, int axis);
/* logsumexp(logits, axis) - logits[label], the max subtracted first as
 * optax does. labels: integer, logits' shape without axis. Labels outside
 * [-C, C) give NaN (JAX's "fill" gather); negative ones wrap. */
gv_value gv_softmax_cross_entropy_with_integer_labels(gv_value logits, gv_value labels, int axis);
/* The same over several axes (optax's tuple axis): those axes are
 * flattened (row-major) and the label is a flat index into them. */
gv_value gv_softmax_cross_entropy_with_integer_labels_axes(gv_value logits, gv_value labels,
                                                           const int *axes, int naxes);
/* -y*log_sigmoid(x) - (1-y)*log_sigmoid(-x), log_sigmoid(x) = -softplus(-x)
 * (stable for |x| large); labels cast to the logits' dtype (soft labels
 * allowed). */
gv_value gv_sigmoid_binary_cross_entropy(gv_value logits, gv_value labels);

#pragma GCC visibility pop

#ifdef __cplusplus
}
#endif
#endif
