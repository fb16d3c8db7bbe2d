/* grove: gradient transformations (Optax), learning-rate schedules and
 * losses.
 *
 * A gv_transform is Optax's GradientTransformation: a pair
 *   init(params) -> state          update(updates, state, params) -> (updates, state)
 * of pure functions over trees. Both run on TRACED values (graph.h), so an
 * optimiser becomes part of the one compiled train step:
 *
 *   gv_transform *tx = gv_adamw(.learning_rate = 1e-3);    // optax.adamw(1e-3)
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
 * order for the states below except two, noted after the table), a
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
 *   clip, clip_by_global_norm   ()
 *   ema                         {"count", "ema": E}             EmaState
 *   apply_if_finite             {"inner_state", "last_finite",  ApplyIfFiniteState
 *                                "notfinite_count", "total_notfinite"}
 *   MultiSteps                  {"acc_grads": A, "gradient_step", "inner_opt_state",
 *                                "mini_step", "skip_state"}     MultiStepsState
 *   multi_transform             {"inner_states": {label: {"inner_state": S}}}
 *                                                               PartitionState
 *   inject_hyperparams          {"count", "hyperparams", "hyperparams_states",
 *                                "inner_state"}                 InjectStatefulHyperparamsState
 *
 * Paths are optax's, so a checkpoint reads back by name in Python. Two of
 * these NamedTuples declare their fields in another order than sorted
 * (MultiStepsState: mini_step, gradient_step, inner_opt_state, acc_grads,
 * skip_state; ApplyIfFiniteState: notfinite_count, last_finite,
 * total_notfinite, inner_state): there jax.tree.leaves lists the leaves in
 * that order and grove in sorted order; by path they are the same.
 *
 * so, as in optax:
 *   sgd(.learning_rate)                 ((), ())
 *   sgd(.learning_rate, .momentum = m)  ({"trace": T}, ())
 *   adam(.learning_rate)                ({"count", "mu", "nu"}, ())
 *   adam(.schedule = s)                 ({"count", "mu", "nu"}, {"count"})
 *   adamw(.learning_rate)               ({"count", "mu", "nu"}, (), ())
 *   adamw(.learning_rate, .mask = m)    ({"count", "mu", "nu"}, {"inner_state": ()}, ())
 *   adamw(.schedule = s)                ({"count", "mu", "nu"}, (), {"count"})
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
 * transforms or schedules (gv_chain, gv_masked, gv_scale_by_schedule, an
 * optimiser's .schedule) TAKE OVER the caller's reference, also on failure;
 * a mask tree is copied. A transform is immutable except for the plan cache
 * of the eager calls (below), so the traced calls may be used from several
 * threads at once; the eager ones may not use the same transform
 * concurrently.
 *
 * Errors: the traced calls return a status (or NULL) with gv_last_error()
 * naming the transformation ("scale_by_adam: updates and state.mu differ:
 * ..."), and record the same message as the graph's sticky error, so a
 * gv_trace of a step that ignores the status still fails with it. */
#ifndef GROVE_OPTIM_H
#define GROVE_OPTIM_H

#include <math.h> /* NAN, for GV_NONE */
#include <stdbool.h>
#include <stdint.h>

#include "grove/graph.h"
#include "grove/ops.h"
#include "grove/tree.h"
#include "grove/schedules.h"

#ifdef __cplusplus
extern "C" {
#endif

#pragma GCC visibility push(default) /* the public API: exported from libgrove.so */

/* Schedules (optax.schedules): grove/schedules.h, included above. */

/* ---- the transformation object ------------------------------------------- */

typedef struct gv_transform gv_transform;

void gv_transform_free(gv_transform *tx);
/* The optax name: "chain", "scale_by_adam", "sgd", "adamw", ... Borrowed. */
const char *gv_transform_name(const gv_transform *tx);

/* Traced init: params is a tree of values of g (only shapes and dtypes are
 * used). Returns the new state tree of values, owned by g (pack.h: freeing
 * it is allowed and does nothing), or NULL with the error set. */
gv_tree *gv_transform_init(const gv_transform *tx, gv_graph *g, const gv_tree *params);

/* Traced update. updates must have the params' structure; params may be
 * NULL unless a part of tx needs them (add_decayed_weights: GV_ERR_ARG
 * naming it). On success *new_updates and *new_state are new trees owned by
 * g (pack.h); on failure both are NULL. */
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
 * the wider of the two float dtypes. Traced, a leaf whose update is a
 * constant zero of the param's dtype (set_to_zero's: a frozen param) is
 * the param itself, as under jax.jit (XLA drops A + 0): no kernel, and a
 * -0.0 stays -0.0. Traced: a new tree of values owned by
 * g (pack.h); eager: a new tree of new tensors the caller frees. */
gv_tree *gv_apply_updates(gv_graph *g, const gv_tree *params, const gv_tree *updates);
gv_tree *gv_apply_updates_eager(const gv_tree *params, const gv_tree *updates);

/* ---- combinators and basic transformations ------------------------------- */

/* optax.chain(t1..tn): state (s1..sn); updates threaded through t1..tn
 * with the same params. Takes over txs[0..n-1] (the array itself stays the
 * caller's). n = 0 is the identity with state (). */
gv_transform *gv_chain(gv_transform *const *txs, size_t n);
/* optax.chain(a, b, c) without counting: GV_CHAIN(a, b, c) is
 * gv_chain((gv_transform *[]){a, b, c}, 3) (sizeof does not evaluate the
 * calls a second time). */
#define GV_CHAIN(...)                                                  \
    gv_chain((gv_transform *[]){__VA_ARGS__},                          \
             sizeof((gv_transform *[]){__VA_ARGS__}) / sizeof(gv_transform *))
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
/* optax.add_decayed_weights(weight_decay, mask): u <- u + wd * p. Needs
 * params. weight_decay == 0 returns the updates untouched (as optax does
 * for a Python 0.0). mask NULL: state (); otherwise masked(..., mask) with
 * state {"inner_state": ()}. */
gv_transform *gv_add_decayed_weights(double weight_decay, const gv_tree *mask);

/* ---- clipping (transforms/_clipping.py, A8) -------------------------------- */

/* optax.clip(max_delta): each element clamped to [-max_delta, max_delta]
 * (jnp.clip: NaN stays NaN). max_delta must be >= 0 and not NaN. State (). */
gv_transform *gv_clip(double max_delta);
/* optax.clip_by_global_norm(max_norm): g = sqrt(sum over leaves, in flatten
 * order, of sum(x*x)); if g < max_norm (strict) the updates are unchanged,
 * else u <- (u / g) * max_norm (divide, then multiply). A zero norm with
 * max_norm > 0 is left alone (no NaN); a NaN norm gives NaN updates, as in
 * optax. max_norm must be >= 0 and not NaN. State (). */
gv_transform *gv_clip_by_global_norm(double max_norm);

/* ---- moving averages (transforms/_accumulation.py, A9) ------------------ */

/* optax.ema(decay, debias=True): e = (1 - decay) * u + decay * e_old;
 * out = debias ? e / (1 - decay**count) : e, count incremented first; the
 * stored EMA is not debiased. State {"count", "ema"} (EmaState; the EMA has
 * the params' dtypes). decay must be finite. */
gv_transform *gv_ema(double decay, bool debias);

/* ---- conditional updates (transforms/_conditionality.py, A12) ----------- */

/* optax.apply_if_finite(inner, max_consecutive_errors): if every element of
 * every update is finite, or this is more than max_consecutive_errors
 * non-finite updates in a row, inner runs (the (max+1)-th bad update is
 * applied, NaN included); otherwise the updates are zeros and inner's
 * state is kept. State {"inner_state", "last_finite" (bool),
 * "notfinite_count", "total_notfinite"} (ApplyIfFiniteState; int32
 * counters). Takes over inner; max_consecutive_errors >= 0. */
gv_transform *gv_apply_if_finite(gv_transform *inner, int32_t max_consecutive_errors);

/* ---- gradient accumulation (optax.MultiSteps, A10) ------------------------ */

/* A MultiSteps skip test (optax's should_skip_update_fn), run on each
 * mini-step's raw updates before anything else: GV_SKIP_NONE never skips
 * (skip_state ()); GV_SKIP_NOT_FINITE skips an update with any NaN or Inf
 * (skip_state {"num_not_finite": int32, "should_skip": bool});
 * GV_SKIP_LARGE_UPDATES skips unless sum(u*u) < max_squared_norm (so NaN
 * skips too; skip_state {"norm_squared": float32, "should_skip": bool}).
 * A skipped mini-step returns zeros and leaves every counter, the
 * accumulator and the inner state as they were. */
typedef enum gv_skip_kind {
    GV_SKIP_NONE = 0,
    GV_SKIP_NOT_FINITE,
    GV_SKIP_LARGE_UPDATES,
} gv_skip_kind;

/* every_k as a function of gradient_step (the number of updates emitted so
 * far): the number of mini-steps to accumulate, an int32 scalar value >= 1
 * of gradient_step's graph (optax's every_k_schedule callable). */
typedef gv_value (*gv_every_k_fn)(gv_value gradient_step, void *userdata);

typedef struct gv_multi_steps_opts {
    int32_t every_k;               /* no default: this (>= 1) or .every_k_fn */
    gv_every_k_fn every_k_fn;      /* NULL */
    void *every_k_userdata;        /* NULL (not freed) */
    bool use_grad_mean;            /* true: the running mean; false: the sum */
    gv_skip_kind skip;             /* GV_SKIP_NONE */
    double max_squared_norm;       /* for GV_SKIP_LARGE_UPDATES */
} gv_multi_steps_opts;
#define GV_MULTI_STEPS_DEFAULTS .every_k = 0, .every_k_fn = NULL, .every_k_userdata = NULL, \
    .use_grad_mean = true, .skip = GV_SKIP_NONE, .max_squared_norm = GV_NONE
gv_multi_steps_opts gv_multi_steps_defaults(void);
/* optax.MultiSteps(opt, every_k_schedule, use_grad_mean=True,
 * should_skip_update_fn=None).gradient_transformation(), exactly:
 *   acc   = use_grad_mean ? acc + (u - acc) / (mini_step + 1) : acc + u
 *   (iu, is') = inner.update(acc, inner_state, params)   (every mini-step)
 *   emit  = mini_step == k - 1,  k = every_k(gradient_step)
 *   returned updates = emit * iu    (zeros between emits, NaN-propagating)
 *   mini_step' = (mini_step + 1) % k; gradient_step' += emit
 *   inner_state' = emit ? is' : inner_state;  acc' = (1 - emit) * acc
 * The accumulator is float32. State {"acc_grads", "gradient_step",
 * "inner_opt_state", "mini_step", "skip_state"} (MultiStepsState; the
 * names are optax's, the flatten order is sorted, see the top). Takes over
 * inner (also on failure). */
gv_transform *gv_multi_steps_with(gv_transform *inner, const gv_multi_steps_opts *opts);
#define gv_multi_steps(inner, ...)                                                     \
    GV_WITH_DEFAULTS_MS_(inner, __VA_ARGS__)
/* MultiSteps.has_updated(state): mini_step == 0 and gradient_step > 0, on a
 * concrete state tree (the MultiSteps state itself, not a TrainState).
 * Sets *out; GV_ERR_STRUCTURE naming the field if the state is not one. */
gv_status gv_multi_steps_has_updated(const gv_tree *state, bool *out);

/* ---- partitions (optax.multi_transform / optax.partition, A11) ----------- */

/* One label's transformation, for gv_multi_transform. */
typedef struct gv_labelled_transform {
    const char *label;
    gv_transform *tx;
} gv_labelled_transform;
/* The array and its length, for gv_multi_transform's first two arguments:
 *   GV_TRANSFORMS({"train", gv_adam(.learning_rate = 1e-3)}, {"freeze", gv_set_to_zero()}) */
#define GV_TRANSFORMS(...)                                      \
    (gv_labelled_transform[]){__VA_ARGS__},                     \
        sizeof((gv_labelled_transform[]){__VA_ARGS__}) / sizeof(gv_labelled_transform)

/* optax.multi_transform(transforms, param_labels) (= optax.partition): each
 * leaf of the params is updated by the transformation of its label, and
 * keeps optimiser state only in that one (masked, MaskedNode () elsewhere);
 * a label with set_to_zero freezes its params, and the compiled step then
 * computes no gradient for them. param_labels is a tree with the params'
 * structure or a PREFIX of it (a label on an inner node covers its whole
 * subtree), whose leaves are label strings (gv_tree_new_label, or
 * gv_labels below). Every label used must name a transform (checked here);
 * transforms no leaf uses get fully masked states. The updates pass through
 * the transforms in the order given (the masks are disjoint, so the order
 * does not matter). State {"inner_states": {label: {"inner_state": S}}}
 * (PartitionState). Takes over every txs[i].tx and param_labels, also on
 * failure; labels must be distinct and non-empty. */
gv_transform *gv_multi_transform(const gv_labelled_transform *txs, size_t n,
                                 gv_tree *param_labels);
/* The same with labels computed from the tree: fn(params_or_updates, ud)
 * returns a new label tree (taken), called with the params at init and
 * with the updates at update, as optax calls a callable param_labels. The
 * tree it gets holds TRACED values (gv_tree_leaf_value, gv_value_rank,
 * gv_value_shape), not tensors; gv_label_tree below writes the usual
 * labelling function in one line. Labels naming no transform, or a tree
 * that does not fit, are an error at init. ud is not freed. */
typedef gv_tree *(*gv_param_labels_fn)(const gv_tree *tree, void *userdata);
gv_transform *gv_multi_transform_fn(const gv_labelled_transform *txs, size_t n,
                                    gv_param_labels_fn fn, void *userdata);
/* jax.tree_util.tree_map_with_path(fn, tree) for labels: a new tree with
 * tree's structure whose leaf at each path is the label fn(path, leaf, ud)
 * returns (copied; a static string is fine). NULL from fn is an error
 * naming the path. For gv_multi_transform_fn:
 *   static const char *label(const char *path, const gv_tree *leaf, void *ud) {
 *       return gv_value_rank(gv_tree_leaf_value(leaf)) == 1 ? "zero" : "adam";
 *   }
 *   static gv_tree *labels(const gv_tree *params, void *ud) {
 *       return gv_label_tree(params, label, ud);
 *   } */
typedef const char *(*gv_label_fn)(const char *path, const gv_tree *leaf, void *userdata);
gv_tree *gv_label_tree(const gv_tree *tree, gv_label_fn fn, void *userdata);
/* A label tree from a Python literal of dicts, lists, tuples and quoted
 * strings, as written for optax:
 *   gv_labels("{'backbone': 'freeze', 'head': 'train'}")
 * A new tree, or NULL with GV_ERR_ARG naming the position of a syntax
 * error. */
gv_tree *gv_labels(const char *literal);

/* ---- inject_hyperparams (optax.inject_hyperparams, A13) ------------------ */

/* optax.inject_hyperparams(factory)(**args) for a transformation built the
 * usual way:
 *   gv_transform *tx = gv_inject_hyperparams(gv_adam(.learning_rate = 1e-2));
 * is optax.inject_hyperparams(optax.adam)(learning_rate=1e-2). Every named
 * float hyper-parameter of inner (the factory's arguments: learning_rate,
 * b1, b2, eps, eps_root, weight_decay, momentum, ...) lives in the state as
 * a scalar of the params' highest float dtype, and a learning-rate schedule
 * is evaluated into it at each step (the count before incrementing). The
 * inner transformation then computes with those arrays, as optax does: 1 -
 * b1 in float32 (reference 0.2), so results differ from the plain
 * optimiser in the last bits, exactly as optax's do. Set a value between
 * steps with gv_hyperparam_set; the compiled step is not recompiled.
 * State {"count", "hyperparams": {name: scalar}, "hyperparams_states":
 * {name: {"count"}} (scheduled ones), "inner_state": S}
 * (InjectStatefulHyperparamsState); S is inner's state without the
 * schedule's count (its rate is a hyper-parameter now). Integer and bool
 * arguments stay static. A name used twice in inner with different values
 * is an error. Takes over inner, also on failure. */
gv_transform *gv_inject_hyperparams(gv_transform *inner);
/* Overwrite hyper-parameter name of the inject_hyperparams state inside
 * tree: the train state, the optimiser state, or any tree holding exactly
 * one such state (found by its fields; with several, the error lists their
 * paths: pass the subtree). The tensor is changed in place, so a compiled
 * step keeps its plan. GV_ERR_ARG if there is no such hyper-parameter,
 * naming the ones there are, or if it is scheduled (optax ignores such a
 * write; here it is an error, since it would have no effect);
 * GV_ERR_NOT_FOUND if tree holds no inject_hyperparams state. */
gv_status gv_hyperparam_set(gv_tree *tree, const char *name, double value);
/* Read it: the value the last update of the injected optimiser used, or
 * the initial one (under MultiSteps, the inner optimiser updates, and so
 * its state changes, only on the mini-steps that emit). */
gv_status gv_hyperparam_get(const gv_tree *tree, const char *name, double *value);

/* ---- options with Optax's defaults ---------------------------------------
 *
 * Each optimiser below takes an options struct, called the way optax is:
 *
 *   gv_transform *tx = gv_adamw(.learning_rate = 1e-4);             // optax.adamw(1e-4)
 *   gv_adamw(.learning_rate = 1e-3, .weight_decay = 0);             // no decay
 *   gv_sgd(.learning_rate = 0.1, .momentum = 0.9, .nesterov = true);
 *   gv_adam(.schedule = gv_linear_schedule(1e-3, 0, 1000, 0));       // a schedule as the rate
 *
 * The macro fills Optax's defaults first and the caller's designators after
 * them, which override them: a field named is exactly the value given (0 is
 * 0: b1 = 0, weight_decay = 0 and momentum = 0 mean what they say), a field
 * left out is Optax's default. GV_<NAME>_DEFAULTS is that list of defaults
 * (`gv_adamw_opts o = {GV_ADAMW_DEFAULTS};`), gv_<name>_defaults() returns
 * it, and gv_<name>_with(&opts) is the function the macro calls, for a
 * struct filled in code (or from C++, which has no compound literals).
 *
 * Overriding an initialiser is what -Wextra's -Woverride-init warns about,
 * and GCC 12 does not accept a _Pragma inside an expression; so with GCC
 * and Clang the macro is a statement expression (a GNU C extension both
 * support, marked __extension__ for -Wpedantic) that turns that one
 * warning off around the options' initialiser only. The macros compile
 * warning-free under -Wall -Wextra -Wpedantic -Werror
 * (tests/optim/opts_warning_free.cmake checks it). A positional argument
 * (the call shape these constructors had before) does not compile: it
 * lands on .schedule, a pointer (gv_scale_by_adam has none: there it is an
 * excess initialiser, which GCC and Clang warn about by default).
 *
 * Learning rate. Optax has no default learning rate and C cannot require a
 * designator, so grove requires it when the optimiser is made: give exactly
 * one of .learning_rate (a finite constant) and .schedule (a schedule, taken
 * over, also on failure). With neither (.learning_rate is GV_NONE unless
 * given), a NaN, infinite or negative rate (optax takes a negative one;
 * here it is refused as a sign mistake), or a non-zero rate together with a
 * schedule, the constructor fails with GV_ERR_ARG and a message saying
 * which. A constant scales by -learning_rate (state ()); a schedule adds
 * optax's ScaleByScheduleState {"count"} as the optimiser's last state
 * element, read before it is incremented (the first update uses schedule(0)).
 *
 * Every constructor returns a new transform (gv_transform_free), or NULL
 * with the error set. */

/* optax's None for an optional float field (sgd's momentum), and the
 * "not given" of a learning rate: a quiet NaN. */
#define GV_NONE ((double)NAN)

#if defined(__GNUC__) && !defined(__cplusplus)
/* The options variable gets a name of its own per use (__COUNTER__), so
 * calls nest, gv_adamw(.schedule = gv_cosine_decay_schedule(...)), without
 * one shadowing the other (-Wshadow). */
#define GV_CAT2_(a, b) a##b
#define GV_CAT_(a, b) GV_CAT2_(a, b)
#define GV_WITH_DEFAULTS_(fn, type, defaults, ...) \
    GV_WITH_DEFAULTS_N_(GV_CAT_(gv_opts_, __COUNTER__), fn, type, defaults, __VA_ARGS__)
#define GV_WITH_DEFAULTS_N_(name, fn, type, defaults, ...)                          \
    (__extension__({                                                                \
        _Pragma("GCC diagnostic push")                                              \
        _Pragma("GCC diagnostic ignored \"-Woverride-init\"")                       \
        type name = {defaults, __VA_ARGS__};                                        \
        _Pragma("GCC diagnostic pop")                                               \
        fn(&name);                                                                  \
    }))
#else /* ISO C: the same call, which -Woverride-init (if the compiler has it) flags */
#define GV_WITH_DEFAULTS_(fn, type, defaults, ...) fn(&(type){defaults, __VA_ARGS__})
#endif

/* gv_multi_steps(inner, .every_k = 4): the options macro with inner first. */
#if defined(__GNUC__) && !defined(__cplusplus)
#define GV_WITH_DEFAULTS_MS_(inner, ...) \
    GV_WITH_DEFAULTS_MS_N_(GV_CAT_(gv_ms_opts_, __COUNTER__), inner, __VA_ARGS__)
#define GV_WITH_DEFAULTS_MS_N_(name, inner, ...)                                    \
    (__extension__({                                                                \
        gv_transform *GV_CAT_(name, _inner) = (inner);                              \
        _Pragma("GCC diagnostic push")                                              \
        _Pragma("GCC diagnostic ignored \"-Woverride-init\"")                       \
        gv_multi_steps_opts name = {GV_MULTI_STEPS_DEFAULTS, __VA_ARGS__};           \
        _Pragma("GCC diagnostic pop")                                               \
        gv_multi_steps_with(GV_CAT_(name, _inner), &name);                          \
    }))
#else
#define GV_WITH_DEFAULTS_MS_(inner, ...) \
    gv_multi_steps_with((inner), &(gv_multi_steps_opts){GV_MULTI_STEPS_DEFAULTS, __VA_ARGS__})
#endif

/* optax.scale_by_adam(b1, b2, eps, eps_root, nesterov): reference A6.
 * nesterov is NAdam's update. State {"count", "mu", "nu"}. */
typedef struct gv_scale_by_adam_opts {
    double b1, b2, eps, eps_root; /* 0.9, 0.999, 1e-8, 0 */
    bool nesterov;                /* false */
} gv_scale_by_adam_opts;
#define GV_SCALE_BY_ADAM_DEFAULTS .b1 = 0.9, .b2 = 0.999, .eps = 1e-8, .eps_root = 0.0, \
    .nesterov = false
gv_scale_by_adam_opts gv_scale_by_adam_defaults(void);
gv_transform *gv_scale_by_adam_with(const gv_scale_by_adam_opts *opts);
#define gv_scale_by_adam(...) \
    GV_WITH_DEFAULTS_(gv_scale_by_adam_with, gv_scale_by_adam_opts, GV_SCALE_BY_ADAM_DEFAULTS, \
                      __VA_ARGS__)

/* ---- optimisers (optax aliases) ------------------------------------------ */

/* In each GV_*_DEFAULTS the learning rate comes last, so that a positional
 * argument after it initialises .schedule and fails to compile. */

/* optax.sgd(learning_rate, momentum=None, nesterov=False) =
 * chain(trace(momentum, nesterov) or identity, scale_by_learning_rate).
 * momentum GV_NONE (the default, optax's None): identity, state ((), ());
 * any other value, 0 included, keeps a trace: ({"trace": T}, ()). */
typedef struct gv_sgd_opts {
    double learning_rate;  /* no default: this or .schedule */
    gv_schedule *schedule; /* NULL; taken over */
    double momentum;       /* GV_NONE */
    bool nesterov;         /* false */
} gv_sgd_opts;
#define GV_SGD_DEFAULTS .schedule = NULL, .momentum = GV_NONE, .nesterov = false, \
    .learning_rate = GV_NONE
gv_sgd_opts gv_sgd_defaults(void);
gv_transform *gv_sgd_with(const gv_sgd_opts *opts);
#define gv_sgd(...) GV_WITH_DEFAULTS_(gv_sgd_with, gv_sgd_opts, GV_SGD_DEFAULTS, __VA_ARGS__)

/* optax.adam(learning_rate, b1=0.9, b2=0.999, eps=1e-8, eps_root=0.0,
 * nesterov=False) = chain(scale_by_adam, scale_by_learning_rate). */
typedef struct gv_adam_opts {
    double learning_rate;         /* no default: this or .schedule */
    gv_schedule *schedule;        /* NULL; taken over */
    double b1, b2, eps, eps_root; /* 0.9, 0.999, 1e-8, 0 */
    bool nesterov;                /* false */
} gv_adam_opts;
#define GV_ADAM_DEFAULTS .schedule = NULL, .b1 = 0.9, .b2 = 0.999, .eps = 1e-8, .eps_root = 0.0, \
    .nesterov = false, .learning_rate = GV_NONE
gv_adam_opts gv_adam_defaults(void);
gv_transform *gv_adam_with(const gv_adam_opts *opts);
#define gv_adam(...) GV_WITH_DEFAULTS_(gv_adam_with, gv_adam_opts, GV_ADAM_DEFAULTS, __VA_ARGS__)

/* optax.nadam(learning_rate, b1=0.9, b2=0.999, eps=1e-8, eps_root=0.0) =
 * adam(..., nesterov=True), named "nadam". */
typedef struct gv_nadam_opts {
    double learning_rate;         /* no default: this or .schedule */
    gv_schedule *schedule;        /* NULL; taken over */
    double b1, b2, eps, eps_root; /* 0.9, 0.999, 1e-8, 0 */
} gv_nadam_opts;
#define GV_NADAM_DEFAULTS .schedule = NULL, .b1 = 0.9, .b2 = 0.999, .eps = 1e-8, \
    .eps_root = 0.0, .learning_rate = GV_NONE
gv_nadam_opts gv_nadam_defaults(void);
gv_transform *gv_nadam_with(const gv_nadam_opts *opts);
#define gv_nadam(...) \
    GV_WITH_DEFAULTS_(gv_nadam_with, gv_nadam_opts, GV_NADAM_DEFAULTS, __VA_ARGS__)

/* optax.adamw(learning_rate, b1=0.9, b2=0.999, eps=1e-8, eps_root=0.0,
 * weight_decay=1e-4, mask=None, nesterov=False) = chain(scale_by_adam,
 * add_decayed_weights(weight_decay, mask), scale_by_learning_rate): the
 * decay is added to the Adam-normalised update and multiplied by the
 * learning rate (A7). Optax's default decay is 1e-4 (PyTorch's 1e-2).
 * mask: NULL, or copied (see gv_masked). */
typedef struct gv_adamw_opts {
    double learning_rate;         /* no default: this or .schedule */
    gv_schedule *schedule;        /* NULL; taken over */
    double b1, b2, eps, eps_root; /* 0.9, 0.999, 1e-8, 0 */
    double weight_decay;          /* 1e-4 */
    const gv_tree *mask;          /* NULL */
    bool nesterov;                /* false */
} gv_adamw_opts;
#define GV_ADAMW_DEFAULTS .schedule = NULL, .b1 = 0.9, .b2 = 0.999, .eps = 1e-8, \
    .eps_root = 0.0, .weight_decay = 1e-4, .mask = NULL, .nesterov = false,  \
    .learning_rate = GV_NONE
gv_adamw_opts gv_adamw_defaults(void);
gv_transform *gv_adamw_with(const gv_adamw_opts *opts);
#define gv_adamw(...) \
    GV_WITH_DEFAULTS_(gv_adamw_with, gv_adamw_opts, GV_ADAMW_DEFAULTS, __VA_ARGS__)

/* ---- user-defined transformations ----------------------------------------- */

/* A gradient transformation written by the user, as gv_schedule_new is for
 * schedules: Optax's GradientTransformation(init_fn, update_fn). Both run
 * on traced values of g, like gv_transform_init / gv_transform_update,
 * with userdata passed last:
 *   init(g, params, ud) returns the new state tree (grove takes it), or
 *     NULL on failure;
 *   update(g, updates, state, params, &new_updates, &new_state, ud) sets
 *     two new trees (grove takes them) and returns GV_OK; params may be NULL
 *     (the caller gave none). On failure it returns the status, after
 *     gv_graph_fail(g, ...) for the message; trees it set are freed.
 * Every leaf of a state must be a traced value; new_updates must have the
 * updates' structure and shapes (an error naming the transform otherwise).
 * The result composes like any transform (gv_chain, gv_masked, the eager
 * forms); init and update may be called from several threads at once when
 * the traced calls are. name (may be NULL: "transform") is copied;
 * free_userdata (may be NULL) is called on userdata when the transform is
 * freed, and also when this constructor fails. */
typedef gv_tree *(*gv_transform_init_fn)(gv_graph *g, const gv_tree *params, void *userdata);
typedef gv_status (*gv_transform_update_fn)(gv_graph *g, const gv_tree *updates,
                                            const gv_tree *state, const gv_tree *params,
                                            gv_tree **new_updates, gv_tree **new_state,
                                            void *userdata);
gv_transform *gv_transform_new(const char *name, gv_transform_init_fn init,
                               gv_transform_update_fn update, void *userdata,
                               void (*free_userdata)(void *));

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

/* ---- metrics ---------------------------------------------------------------- */

/* Classification accuracy, as the Flax tutorial computes it:
 * jnp.mean(jnp.argmax(logits, -1) == labels), a float32 scalar in [0, 1].
 * logits: float, rank >= 1, classes on the last axis (of size >= 1);
 * labels: integer, logits' shape without the last axis. Ties go to the
 * FIRST maximum, as jnp.argmax (and a NaN counts as the maximum), so a row
 * of equal logits predicts class 0. A label outside [0, C) never matches.
 * A bad dtype or shape is a sticky GV_ERR_DTYPE / GV_ERR_SHAPE naming both
 * shapes. No gradient (argmax has none). */
gv_value gv_accuracy(gv_value logits, gv_value labels);

#pragma GCC visibility pop

#ifdef __cplusplus
}
#endif

/* The other optimisers (rmsprop, adagrad, adafactor, lion, lamb, ...). */
#include "grove/optimizers.h"
#endif
