/* grove: the other Optax optimisers, each a chain of gradient
 * transformations as in optax/_src/alias.py (reference A15): rmsprop,
 * adagrad, adafactor, lion, lamb, adabelief, adamax, lookahead, and the
 * scale_by_* primitives they are made of. Included by grove/optim.h (it
 * uses its options machinery: GV_WITH_DEFAULTS_, GV_NONE).
 *
 * Each is called as optax is, with Optax's defaults for what is left out:
 *
 *   gv_transform *tx = gv_rmsprop(.learning_rate = 1e-3, .centered = true);
 *   gv_lion(.learning_rate = 1e-4, .weight_decay = 1.0, .mask = m);
 *   gv_adafactor();                                   // optax.adafactor()
 *   gv_scale_by_rms(.decay = 0.99, .eps_in_sqrt = false);
 *
 * (see "options with Optax's defaults" in grove/optim.h: the learning rate
 * is exactly one of .learning_rate and .schedule, the schedule taken over
 * also on failure; adafactor's is optional as in optax). On top of what
 * optax checks, every constructor refuses a hyper-parameter that cannot be
 * meant: a NaN or infinite one, a negative learning rate, eps or weight
 * decay, a decay or momentum outside [0, 1]; GV_ERR_ARG with a message
 * naming the option ("rmsprop: .decay is 1.5; it must be in [0, 1]").
 *
 * States, as optax's (a NamedTuple is a dict of its fields, inserted in
 * field order, see grove/optim.h; P is a tree with the params' structure):
 *
 *   scale_by_rms                 {"nu": P}                         ScaleByRmsState
 *     bias_correction            {"count", "nu": P}                ScaleByRmsWithCountState
 *   scale_by_stddev              {"mu": P, "nu": P}                ScaleByRStdDevState
 *     bias_correction            {"count", "mu": P, "nu": P}       ScaleByRStdDevWithCountState
 *   scale_by_rss                 {"sum_of_squares": P}             ScaleByRssState
 *   scale_by_factored_rms        {"count", "v_row", "v_col", "v"}  FactoredState
 *   scale_by_lion                {"count", "mu": P}                ScaleByLionState
 *   scale_by_belief              {"count", "mu": P, "nu": P}       ScaleByBeliefState
 *   scale_by_adamax              {"count", "mu": P, "nu": P}       ScaleByAdamState
 *   clip_by_block_rms,           ()
 *   scale_by_param_block_rms,
 *   scale_by_trust_ratio
 *   lookahead                    {"fast_state": S, "steps_since_sync"}  LookaheadState
 *
 * FactoredState holds, per parameter, either the factored statistics
 * (v_row, v_col: the param's shape without one of its two largest axes;
 * v: a float zeros[1]) or the full one (v: the param's shape; v_row, v_col:
 * zeros[1]). Its fields flatten in sorted key order (count, v, v_col,
 * v_row), not in optax's field order; every path ("0/v_row/w") is the
 * same as optax's, which is what a checkpoint is keyed by.
 *
 * The aliases' states are their chains' tuples, as in optax:
 *   rmsprop(.learning_rate)          ({"nu"}, (), ())
 *   rmsprop(.., .momentum = m)       ({"nu"}, (), {"trace"})      momentum AFTER the rate
 *   rmsprop(.., .centered = true)    ({"mu", "nu"}, (), ...)
 *   adagrad                          ({"sum_of_squares"}, ())
 *   adafactor()                      (factored, (), (), ())       clip, param scale, scale(-1)
 *   lion                             ({"count", "mu"}, (), ())
 *   lamb                             ({"count", "mu", "nu"}, (), (), ())
 *   adabelief, adamax                ({"count", "mu", "nu"}, ())
 * with a schedule as the rate, its {"count"} in place of the rate's ();
 * with a mask, add_decayed_weights' () is {"inner_state": ()}. */
#ifndef GROVE_OPTIMIZERS_H
#define GROVE_OPTIMIZERS_H

#include "grove/optim.h"

#ifdef __cplusplus
extern "C" {
#endif

#pragma GCC visibility push(default) /* the public API: exported from libgrove.so */

/* ---- primitives (optax/_src/transform.py, factorized.py, transforms/) ---- */

/* optax.scale_by_rms: nu = (1 - decay) g^2 + decay nu, nu starting at
 * initial_scale; bias_correction divides nu by 1 - decay^count. Update
 * g * rsqrt(nu + eps) (eps_in_sqrt, the default: inside the root, unlike
 * PyTorch) or g / (sqrt(nu) + eps). */
typedef struct gv_scale_by_rms_opts {
    double decay, eps, initial_scale; /* 0.9, 1e-8, 0 */
    bool eps_in_sqrt;                 /* true */
    bool bias_correction;             /* false */
} gv_scale_by_rms_opts;
#define GV_SCALE_BY_RMS_DEFAULTS .decay = 0.9, .eps = 1e-8, .initial_scale = 0.0, \
    .eps_in_sqrt = true, .bias_correction = false
gv_scale_by_rms_opts gv_scale_by_rms_defaults(void);
gv_transform *gv_scale_by_rms_with(const gv_scale_by_rms_opts *opts);
#define gv_scale_by_rms(...) \
    GV_WITH_DEFAULTS_(gv_scale_by_rms_with, gv_scale_by_rms_opts, GV_SCALE_BY_RMS_DEFAULTS, \
                      __VA_ARGS__)

/* optax.scale_by_stddev (centered rmsprop): as scale_by_rms with also
 * mu = (1 - decay) g + decay mu, and nu - mu^2 in place of nu. */
typedef struct gv_scale_by_stddev_opts {
    double decay, eps, initial_scale; /* 0.9, 1e-8, 0 */
    bool eps_in_sqrt;                 /* true */
    bool bias_correction;             /* false */
} gv_scale_by_stddev_opts;
#define GV_SCALE_BY_STDDEV_DEFAULTS .decay = 0.9, .eps = 1e-8, .initial_scale = 0.0, \
    .eps_in_sqrt = true, .bias_correction = false
gv_scale_by_stddev_opts gv_scale_by_stddev_defaults(void);
gv_transform *gv_scale_by_stddev_with(const gv_scale_by_stddev_opts *opts);
#define gv_scale_by_stddev(...)                                                \
    GV_WITH_DEFAULTS_(gv_scale_by_stddev_with, gv_scale_by_stddev_opts,        \
                      GV_SCALE_BY_STDDEV_DEFAULTS, __VA_ARGS__)

/* optax.scale_by_rss (adagrad): s = s + g^2 from initial_accumulator_value;
 * update g * rsqrt(s + eps) where s > 0, else 0. */
typedef struct gv_scale_by_rss_opts {
    double initial_accumulator_value, eps; /* 0.1, 1e-7 */
} gv_scale_by_rss_opts;
#define GV_SCALE_BY_RSS_DEFAULTS .initial_accumulator_value = 0.1, .eps = 1e-7
gv_scale_by_rss_opts gv_scale_by_rss_defaults(void);
gv_transform *gv_scale_by_rss_with(const gv_scale_by_rss_opts *opts);
#define gv_scale_by_rss(...) \
    GV_WITH_DEFAULTS_(gv_scale_by_rss_with, gv_scale_by_rss_opts, GV_SCALE_BY_RSS_DEFAULTS, \
                      __VA_ARGS__)

/* optax.scale_by_factored_rms (adafactor, optax/_src/factorized.py). A
 * param is factored when factored is set, its rank is >= 2 and the smaller
 * of its two largest dims is >= min_dim_size_to_factor (a stable argsort
 * picks the two axes); then the second moment of g^2 + epsilon is kept as
 * its means over each of the two axes, otherwise in full. The decay at
 * step count is 1 - (count - step_offset + 1)^-decay_rate (count before
 * incrementing: the first step keeps the new statistics only; an offset
 * above the count gives a non-positive base, NaN or inf, as in optax).
 * Needs params (for the shapes). optax's decay_rate_fn argument is not
 * offered (the default schedule above is the one used). step_offset is an
 * integer, static like min_dim_size_to_factor. */
typedef struct gv_scale_by_factored_rms_opts {
    bool factored;              /* true */
    double decay_rate;          /* 0.8 */
    int step_offset;            /* 0 */
    int min_dim_size_to_factor; /* 128 */
    double epsilon;             /* 1e-30 */
} gv_scale_by_factored_rms_opts;
#define GV_SCALE_BY_FACTORED_RMS_DEFAULTS .factored = true, .decay_rate = 0.8, \
    .step_offset = 0, .min_dim_size_to_factor = 128, .epsilon = 1e-30
gv_scale_by_factored_rms_opts gv_scale_by_factored_rms_defaults(void);
gv_transform *gv_scale_by_factored_rms_with(const gv_scale_by_factored_rms_opts *opts);
#define gv_scale_by_factored_rms(...)                                               \
    GV_WITH_DEFAULTS_(gv_scale_by_factored_rms_with, gv_scale_by_factored_rms_opts, \
                      GV_SCALE_BY_FACTORED_RMS_DEFAULTS, __VA_ARGS__)

/* optax.clip_by_block_rms(threshold): u / max(1, rms(u) / threshold) per
 * leaf (rms = sqrt(mean(u^2))). threshold > 0. State (). */
gv_transform *gv_clip_by_block_rms(double threshold);
/* optax.scale_by_param_block_rms(min_scale) (optax's default 1e-3, which
 * adafactor uses): u * rms(p) per leaf, or u * min_scale where rms(p) <=
 * min_scale (optax's safe_root_mean_squares). Needs params. State (). */
gv_transform *gv_scale_by_param_block_rms(double min_scale);

/* optax.scale_by_lion's sign variants: sign(x), tanh(smooth_beta x), or x
 * where |x| < 1 and sign(x) elsewhere. */
typedef enum gv_lion_mode { GV_LION_HARD, GV_LION_SMOOTH, GV_LION_REFINED } gv_lion_mode;

/* optax.scale_by_lion: u = mode((1 - b1) g + b1 mu), then
 * mu = (1 - b2) g + b2 mu. (optax.lion itself has no mode: it is the hard
 * sign.) */
typedef struct gv_scale_by_lion_opts {
    double b1, b2;      /* 0.9, 0.99 */
    gv_lion_mode mode;  /* GV_LION_HARD */
    double smooth_beta; /* 1.0 */
} gv_scale_by_lion_opts;
#define GV_SCALE_BY_LION_DEFAULTS .b1 = 0.9, .b2 = 0.99, .mode = GV_LION_HARD, .smooth_beta = 1.0
gv_scale_by_lion_opts gv_scale_by_lion_defaults(void);
gv_transform *gv_scale_by_lion_with(const gv_scale_by_lion_opts *opts);
#define gv_scale_by_lion(...) \
    GV_WITH_DEFAULTS_(gv_scale_by_lion_with, gv_scale_by_lion_opts, GV_SCALE_BY_LION_DEFAULTS, \
                      __VA_ARGS__)

/* optax.scale_by_trust_ratio (lamb, lars): u * tc |p| / (|u| + eps) per
 * leaf, each norm at least min_norm (optax's safe_norm), and u unchanged
 * where either norm is 0. Needs params. State (). */
typedef struct gv_scale_by_trust_ratio_opts {
    double min_norm, trust_coefficient, eps; /* 0, 1, 0 */
} gv_scale_by_trust_ratio_opts;
#define GV_SCALE_BY_TRUST_RATIO_DEFAULTS .min_norm = 0.0, .trust_coefficient = 1.0, .eps = 0.0
gv_scale_by_trust_ratio_opts gv_scale_by_trust_ratio_defaults(void);
gv_transform *gv_scale_by_trust_ratio_with(const gv_scale_by_trust_ratio_opts *opts);
#define gv_scale_by_trust_ratio(...)                                              \
    GV_WITH_DEFAULTS_(gv_scale_by_trust_ratio_with, gv_scale_by_trust_ratio_opts, \
                      GV_SCALE_BY_TRUST_RATIO_DEFAULTS, __VA_ARGS__)

/* optax.scale_by_belief (adabelief): mu as Adam's, nu = EMA of (g - mu)^2
 * plus eps_root, both bias-corrected; u = mu^ / (sqrt(nu^) + eps).
 * nesterov as in scale_by_adam. */
typedef struct gv_scale_by_belief_opts {
    double b1, b2, eps, eps_root; /* 0.9, 0.999, 1e-16, 1e-16 */
    bool nesterov;                /* false */
} gv_scale_by_belief_opts;
#define GV_SCALE_BY_BELIEF_DEFAULTS .b1 = 0.9, .b2 = 0.999, .eps = 1e-16, .eps_root = 1e-16, \
    .nesterov = false
gv_scale_by_belief_opts gv_scale_by_belief_defaults(void);
gv_transform *gv_scale_by_belief_with(const gv_scale_by_belief_opts *opts);
#define gv_scale_by_belief(...)                                                             \
    GV_WITH_DEFAULTS_(gv_scale_by_belief_with, gv_scale_by_belief_opts,                     \
                      GV_SCALE_BY_BELIEF_DEFAULTS, __VA_ARGS__)

/* optax.scale_by_adamax: mu as Adam's, nu = max(|g| + eps, b2 nu);
 * u = mu / (1 - b1^count) / nu. */
typedef struct gv_scale_by_adamax_opts {
    double b1, b2, eps; /* 0.9, 0.999, 1e-8 */
} gv_scale_by_adamax_opts;
#define GV_SCALE_BY_ADAMAX_DEFAULTS .b1 = 0.9, .b2 = 0.999, .eps = 1e-8
gv_scale_by_adamax_opts gv_scale_by_adamax_defaults(void);
gv_transform *gv_scale_by_adamax_with(const gv_scale_by_adamax_opts *opts);
#define gv_scale_by_adamax(...)                                                             \
    GV_WITH_DEFAULTS_(gv_scale_by_adamax_with, gv_scale_by_adamax_opts,                     \
                      GV_SCALE_BY_ADAMAX_DEFAULTS, __VA_ARGS__)

/* ---- optimisers (optax aliases) ------------------------------------------ */

/* optax.rmsprop = chain(scale_by_rms or, centered, scale_by_stddev,
 * scale_by_learning_rate, trace(momentum, nesterov) or identity): the
 * momentum accumulates lr-scaled steps (TF's rmsprop, unlike sgd's). */
typedef struct gv_rmsprop_opts {
    double learning_rate;             /* no default: this or .schedule */
    gv_schedule *schedule;            /* NULL; taken over */
    double decay, eps, initial_scale; /* 0.9, 1e-8, 0 */
    bool eps_in_sqrt;                 /* true */
    bool centered;                    /* false */
    double momentum;                  /* GV_NONE (optax's None: no trace) */
    bool nesterov;                    /* false */
    bool bias_correction;             /* false */
} gv_rmsprop_opts;
#define GV_RMSPROP_DEFAULTS .schedule = NULL, .decay = 0.9, .eps = 1e-8, .initial_scale = 0.0, \
    .eps_in_sqrt = true, .centered = false, .momentum = GV_NONE, .nesterov = false,          \
    .bias_correction = false, .learning_rate = GV_NONE
gv_rmsprop_opts gv_rmsprop_defaults(void);
gv_transform *gv_rmsprop_with(const gv_rmsprop_opts *opts);
#define gv_rmsprop(...) \
    GV_WITH_DEFAULTS_(gv_rmsprop_with, gv_rmsprop_opts, GV_RMSPROP_DEFAULTS, __VA_ARGS__)

/* optax.adagrad = chain(scale_by_rss, scale_by_learning_rate). */
typedef struct gv_adagrad_opts {
    double learning_rate;             /* no default: this or .schedule */
    gv_schedule *schedule;            /* NULL; taken over */
    double initial_accumulator_value; /* 0.1 */
    double eps;                       /* 1e-7 */
} gv_adagrad_opts;
#define GV_ADAGRAD_DEFAULTS .schedule = NULL, .initial_accumulator_value = 0.1, .eps = 1e-7, \
    .learning_rate = GV_NONE
gv_adagrad_opts gv_adagrad_defaults(void);
gv_transform *gv_adagrad_with(const gv_adagrad_opts *opts);
#define gv_adagrad(...) \
    GV_WITH_DEFAULTS_(gv_adagrad_with, gv_adagrad_opts, GV_ADAGRAD_DEFAULTS, __VA_ARGS__)

/* optax.adafactor = chain(scale_by_factored_rms(factored, decay_rate,
 * decay_offset, min_dim_size_to_factor, eps), clip_by_block_rms(
 * clipping_threshold) unless it is GV_NONE, scale by +learning_rate (or
 * scale_by_schedule) unless neither is given, scale_by_param_block_rms(1e-3)
 * if multiply_by_parameter_scale, ema(momentum, debias=false) unless it is
 * GV_NONE, add_decayed_weights(weight_decay_rate, weight_decay_mask) unless
 * it is GV_NONE, scale(-1)). The learning rate is optional, as in optax
 * (without one the param scale acts as a relative step size); give at most
 * one of .learning_rate and .schedule. The momentum is kept in float32
 * (optax's dtype_momentum, not an option here). weight_decay_mask: NULL or
 * copied (see gv_masked). */
typedef struct gv_adafactor_opts {
    double learning_rate;             /* GV_NONE: none (optax's None) */
    gv_schedule *schedule;            /* NULL; taken over */
    int min_dim_size_to_factor;       /* 128 */
    double decay_rate;                /* 0.8 */
    int decay_offset;                 /* 0 */
    bool multiply_by_parameter_scale; /* true */
    double clipping_threshold;        /* 1.0; GV_NONE: no clipping */
    double momentum;                  /* GV_NONE: none */
    double weight_decay_rate;         /* GV_NONE: none */
    double eps;                       /* 1e-30 */
    bool factored;                    /* true */
    const gv_tree *weight_decay_mask; /* NULL */
} gv_adafactor_opts;
#define GV_ADAFACTOR_DEFAULTS .schedule = NULL, .min_dim_size_to_factor = 128,            \
    .decay_rate = 0.8, .decay_offset = 0, .multiply_by_parameter_scale = true,            \
    .clipping_threshold = 1.0, .momentum = GV_NONE, .weight_decay_rate = GV_NONE,         \
    .eps = 1e-30, .factored = true, .weight_decay_mask = NULL, .learning_rate = GV_NONE
gv_adafactor_opts gv_adafactor_defaults(void);
gv_transform *gv_adafactor_with(const gv_adafactor_opts *opts);
/* gv_adafactor() is optax.adafactor() */
#define gv_adafactor(...) \
    GV_WITH_DEFAULTS_(gv_adafactor_with, gv_adafactor_opts, GV_ADAFACTOR_DEFAULTS, __VA_ARGS__)

/* optax.lion = chain(scale_by_lion(b1, b2), add_decayed_weights(
 * weight_decay, mask), scale_by_learning_rate). Optax's default decay is
 * 1e-3. mask: NULL or copied. */
typedef struct gv_lion_opts {
    double learning_rate;  /* no default: this or .schedule */
    gv_schedule *schedule; /* NULL; taken over */
    double b1, b2;         /* 0.9, 0.99 */
    double weight_decay;   /* 1e-3 */
    const gv_tree *mask;   /* NULL */
} gv_lion_opts;
#define GV_LION_DEFAULTS .schedule = NULL, .b1 = 0.9, .b2 = 0.99, .weight_decay = 1e-3, \
    .mask = NULL, .learning_rate = GV_NONE
gv_lion_opts gv_lion_defaults(void);
gv_transform *gv_lion_with(const gv_lion_opts *opts);
#define gv_lion(...) GV_WITH_DEFAULTS_(gv_lion_with, gv_lion_opts, GV_LION_DEFAULTS, __VA_ARGS__)

/* optax.lamb = chain(scale_by_adam(b1, b2, eps, eps_root),
 * add_decayed_weights(weight_decay, mask), scale_by_trust_ratio(),
 * scale_by_learning_rate). mask: NULL or copied. */
typedef struct gv_lamb_opts {
    double learning_rate;         /* no default: this or .schedule */
    gv_schedule *schedule;        /* NULL; taken over */
    double b1, b2, eps, eps_root; /* 0.9, 0.999, 1e-6, 0 */
    double weight_decay;          /* 0 */
    const gv_tree *mask;          /* NULL */
} gv_lamb_opts;
#define GV_LAMB_DEFAULTS .schedule = NULL, .b1 = 0.9, .b2 = 0.999, .eps = 1e-6, .eps_root = 0.0, \
    .weight_decay = 0.0, .mask = NULL, .learning_rate = GV_NONE
gv_lamb_opts gv_lamb_defaults(void);
gv_transform *gv_lamb_with(const gv_lamb_opts *opts);
#define gv_lamb(...) GV_WITH_DEFAULTS_(gv_lamb_with, gv_lamb_opts, GV_LAMB_DEFAULTS, __VA_ARGS__)

/* optax.adabelief = chain(scale_by_belief, scale_by_learning_rate). */
typedef struct gv_adabelief_opts {
    double learning_rate;         /* no default: this or .schedule */
    gv_schedule *schedule;        /* NULL; taken over */
    double b1, b2, eps, eps_root; /* 0.9, 0.999, 1e-16, 1e-16 */
    bool nesterov;                /* false */
} gv_adabelief_opts;
#define GV_ADABELIEF_DEFAULTS .schedule = NULL, .b1 = 0.9, .b2 = 0.999, .eps = 1e-16, \
    .eps_root = 1e-16, .nesterov = false, .learning_rate = GV_NONE
gv_adabelief_opts gv_adabelief_defaults(void);
gv_transform *gv_adabelief_with(const gv_adabelief_opts *opts);
#define gv_adabelief(...) \
    GV_WITH_DEFAULTS_(gv_adabelief_with, gv_adabelief_opts, GV_ADABELIEF_DEFAULTS, __VA_ARGS__)

/* optax.adamax = chain(scale_by_adamax, scale_by_learning_rate). */
typedef struct gv_adamax_opts {
    double learning_rate;  /* no default: this or .schedule */
    gv_schedule *schedule; /* NULL; taken over */
    double b1, b2, eps;    /* 0.9, 0.999, 1e-8 */
} gv_adamax_opts;
#define GV_ADAMAX_DEFAULTS .schedule = NULL, .b1 = 0.9, .b2 = 0.999, .eps = 1e-8, \
    .learning_rate = GV_NONE
gv_adamax_opts gv_adamax_defaults(void);
gv_transform *gv_adamax_with(const gv_adamax_opts *opts);
#define gv_adamax(...) \
    GV_WITH_DEFAULTS_(gv_adamax_with, gv_adamax_opts, GV_ADAMAX_DEFAULTS, __VA_ARGS__)

/* ---- lookahead (optax/_src/lookahead.py) ---------------------------------- */

/* optax.lookahead(fast_optimizer, sync_period, slow_step_size, reset_state).
 * Its params are optax's LookaheadParams, here the dict {"fast": P,
 * "slow": P} (gv_lookahead_params_init_synced makes one); the gradients
 * given to update are those of the FAST params, and the updates it returns
 * are again a {"fast", "slow"} dict, for gv_apply_updates on the pair.
 * Every sync_period-th step moves slow by slow_step_size towards the fast
 * params after their step and sets fast to the result; reset_state then
 * also restarts the fast optimiser's state from its init. init accepts the
 * pair or plain params (optax warns and takes them as the fast ones).
 * sync_period >= 1, slow_step_size in [0, 1]. Takes over fast_optimizer,
 * also on failure. State {"fast_state": S, "steps_since_sync": int32}. */
gv_transform *gv_lookahead(gv_transform *fast_optimizer, int sync_period,
                           double slow_step_size, bool reset_state);
/* optax.LookaheadParams.init_synced(params): {"fast": params, "slow":
 * params}, a new tree sharing params' tensors (clones; the caller frees it
 * and still owns params). NULL with the error set if params is NULL. */
gv_tree *gv_lookahead_params_init_synced(const gv_tree *params);

#pragma GCC visibility pop

#ifdef __cplusplus
}
#endif
#endif
