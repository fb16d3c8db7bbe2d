/* grove: learning-rate schedules (optax.schedules), traced functions of the
 * int32 step count that live in an optimiser's state (reference A14).
 * Included by grove/optim.h, whose options machinery (GV_WITH_DEFAULTS_,
 * GV_NONE) the constructors with many optional arguments use:
 *
 *   gv_schedule *s = gv_exponential_decay(.init_value = 1, .transition_steps = 2,
 *                                         .decay_rate = 0.5, .staircase = true);
 *   gv_schedule *w = gv_warmup_cosine_decay_schedule(.init_value = 0, .peak_value = 1e-3,
 *                                                    .warmup_steps = 500, .decay_steps = 10000);
 *   gv_transform *tx = gv_adamw(.schedule = w);          // taken over
 *
 * A field left out is Optax's default; the fields Optax requires default to
 * GV_NONE (a double) or GV_STEPS_NONE (a step count), which the constructor
 * refuses as missing. gv_<name>_defaults() gives the filled struct and
 * gv_<name>_with(&opts) is the function the macro calls.
 *
 * Numerics. A schedule is evaluated as the optimiser evaluates it, inside
 * a jitted function of the int32 count, so its value is what XLA's CPU
 * code computes for optax's expression (reference 0.1-0.3), which is not
 * the expression as written:
 *  - Python-float arithmetic (init - end, 1 - alpha, end / peak) is done in
 *    double and rounded once to float32; everything touching the count is
 *    float32, op by op.
 *  - XLA's algebraic simplifier turns x / c into x * (1/c) and folds
 *    constant factors together ((pi * c) / d is c * (pi * (1/d)),
 *    0.5 * (1 + cos) * (1 - alpha) one multiply by 0.5 * (1 - alpha)).
 *  - a multiply feeding an add is one fused multiply-add (LLVM contracts
 *    them on an FMA machine, which every x86-64 since 2013 and every
 *    AArch64 is), so 1 - c / T is fma(-c, 1/T, 1).
 *  - cos is glibc's cosf and decay_rate ** p glibc's powf (exp2f for a
 *    power-of-two rate), the libm calls XLA's code makes.
 * grove's schedules build that same arithmetic out of its ops, so they
 * match optax 0.2.8 under jax.jit bit for bit (tests/optim/test_schedules.c
 * against tests/golden/optax_schedules_golden.json, made by the real
 * optax). Step counts (transition_steps, boundaries, ...) that optax turns
 * into int32 constants must fit an int32, as jax.jit requires (optax raises
 * OverflowError; here GV_ERR_ARG).
 *
 * Ownership: every constructor returns a new schedule (one reference, freed
 * with gv_schedule_free) or NULL with the error set (GV_ERR_ARG naming the
 * argument). gv_join_schedules takes over the schedules it is given, also on
 * failure. A schedule is immutable and may be evaluated from several
 * threads at once. */
#ifndef GROVE_SCHEDULES_H
#define GROVE_SCHEDULES_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "grove/graph.h"
#include "grove/ops.h"

#ifdef __cplusplus
extern "C" {
#endif

#pragma GCC visibility push(default) /* the public API: exported from libgrove.so */

/* ---- schedules (optax.schedules) ---------------------------------------- */

/* A schedule maps the int32 step count (a traced scalar) to a float32 scalar
 * (traced): the learning rate at that step. Reference counted. */
typedef struct gv_schedule gv_schedule;

/* A required step count left out of an options struct. */
#define GV_STEPS_NONE INT64_MIN

/* User-defined schedule: fn(count, userdata) returns a float32 scalar value
 * of count's graph (or an invalid value after gv_graph_fail).
 * free_userdata (may be NULL) is called on userdata when the schedule goes. */
typedef gv_value (*gv_schedule_fn)(gv_value count, void *userdata);
gv_schedule *gv_schedule_new(const char *name, gv_schedule_fn fn, void *userdata,
                             void (*free_userdata)(void *));

/* optax.constant_schedule(value): (float)value at every count. */
gv_schedule *gv_constant_schedule(double value);

/* optax.polynomial_schedule(init_value, end_value, power, transition_steps,
 * transition_begin=0):
 *   c = clip(count - begin, 0, T)                       (int32)
 *   frac = 1 - (float)c / (float)T                      (fma(-c, 1/T, 1))
 *   value = (init - end) * frac**power + end            (fma; init - end a Python float)
 * An integral power is a Python int: lax.integer_pow, repeated
 * multiplication (1 / that for a negative one); any other is a Python
 * float: sqrt for 0.5 (as LLVM simplifies powf(x, 0.5)), else powf.
 * transition_steps <= 0 gives the constant init (optax logs it); a negative
 * transition_begin counts as 0. */
gv_schedule *gv_polynomial_schedule(double init_value, double end_value, double power,
                                    int64_t transition_steps, int64_t transition_begin);
/* optax.linear_schedule(init_value, end_value, transition_steps,
 * transition_begin=0): the polynomial schedule with power 1 (values: init
 * for count <= begin, end from begin + T on). */
gv_schedule *gv_linear_schedule(double init_value, double end_value, int64_t transition_steps,
                                int64_t transition_begin);
/* optax.warmup_constant_schedule(init_value, peak_value, warmup_steps): the
 * linear schedule from init to peak over warmup_steps, then peak. */
gv_schedule *gv_warmup_constant_schedule(double init_value, double peak_value,
                                         int64_t warmup_steps);

/* optax.cosine_decay_schedule(init_value, decay_steps, alpha=0.0,
 * exponent=1.0):
 *   c = min((float)count, (float)decay_steps)
 *   value = init * ((1 - alpha) * (0.5 * (1 + cos(pi * c / decay_steps)))**exponent + alpha)
 * decay_steps must be > 0 (optax: ValueError); it is a Python float there
 * (no int32 limit). The exponent is a Python float: 0, 1, 2, 3 and -1 are
 * the multiplications XLA makes of them, 0.5 a square root, anything else
 * powf. */
typedef struct gv_cosine_decay_schedule_opts {
    double init_value;   /* required */
    int64_t decay_steps; /* required, > 0 */
    double alpha;        /* 0.0 */
    double exponent;     /* 1.0 */
} gv_cosine_decay_schedule_opts;
#define GV_COSINE_DECAY_SCHEDULE_DEFAULTS .init_value = GV_NONE, \
    .decay_steps = GV_STEPS_NONE, .alpha = 0.0, .exponent = 1.0
gv_cosine_decay_schedule_opts gv_cosine_decay_schedule_defaults(void);
gv_schedule *gv_cosine_decay_schedule_with(const gv_cosine_decay_schedule_opts *opts);
#define gv_cosine_decay_schedule(...)                                                    \
    GV_WITH_DEFAULTS_(gv_cosine_decay_schedule_with, gv_cosine_decay_schedule_opts,       \
                      GV_COSINE_DECAY_SCHEDULE_DEFAULTS, __VA_ARGS__)

/* optax.warmup_cosine_decay_schedule(init_value, peak_value, warmup_steps,
 * decay_steps, end_value=0.0, exponent=1.0) =
 *   join_schedules([linear_schedule(init, peak, warmup_steps),
 *                   cosine_decay_schedule(peak, decay_steps - warmup_steps,
 *                                         alpha = end / peak (0 if peak == 0), exponent)],
 *                  [warmup_steps])
 * decay_steps INCLUDES the warmup and must exceed warmup_steps (optax's
 * cosine raises ValueError otherwise, equal steps included). Exactly peak
 * at warmup_steps, end_value from decay_steps on (peak * alpha in float32). */
typedef struct gv_warmup_cosine_decay_schedule_opts {
    double init_value;    /* required */
    double peak_value;    /* required */
    int64_t warmup_steps; /* required */
    int64_t decay_steps;  /* required, > warmup_steps */
    double end_value;     /* 0.0 */
    double exponent;      /* 1.0 */
} gv_warmup_cosine_decay_schedule_opts;
#define GV_WARMUP_COSINE_DECAY_SCHEDULE_DEFAULTS .init_value = GV_NONE, .peak_value = GV_NONE, \
    .warmup_steps = GV_STEPS_NONE, .decay_steps = GV_STEPS_NONE, .end_value = 0.0, .exponent = 1.0
gv_warmup_cosine_decay_schedule_opts gv_warmup_cosine_decay_schedule_defaults(void);
gv_schedule *gv_warmup_cosine_decay_schedule_with(const gv_warmup_cosine_decay_schedule_opts *opts);
#define gv_warmup_cosine_decay_schedule(...)                                             \
    GV_WITH_DEFAULTS_(gv_warmup_cosine_decay_schedule_with,                               \
                      gv_warmup_cosine_decay_schedule_opts,                               \
                      GV_WARMUP_COSINE_DECAY_SCHEDULE_DEFAULTS, __VA_ARGS__)

/* optax.sgdr_schedule(cosine_kwargs): SGD with warm restarts, the
 * warmup-cosine cycles cycles[0..n-1] joined one after the other (cycle i
 * starts where cycle i-1's decay_steps end; each sees its own step from
 * 0). Each cycle is checked as gv_warmup_cosine_decay_schedule checks it;
 * n must be > 0. */
gv_schedule *gv_sgdr_schedule(const gv_warmup_cosine_decay_schedule_opts *cycles, size_t n);

/* optax.exponential_decay(init_value, transition_steps, decay_rate,
 * transition_begin=0, staircase=False, end_value=None):
 *   d = count - begin;  p = (float)d / (float)T  (floor(p) if staircase)
 *   value = d <= 0 ? init : init * decay_rate**p
 * then clipped at end_value: a lower bound (max) when decay_rate < 1, else
 * an upper bound (min); GV_NONE (None) for no clipping.
 * transition_steps <= 0 or decay_rate == 0 give the constant init (optax
 * logs it); a negative transition_begin counts as 0. */
typedef struct gv_exponential_decay_opts {
    double init_value;         /* required */
    int64_t transition_steps;  /* required */
    double decay_rate;         /* required */
    int64_t transition_begin;  /* 0 */
    bool staircase;            /* false */
    double end_value;          /* GV_NONE: None */
} gv_exponential_decay_opts;
#define GV_EXPONENTIAL_DECAY_DEFAULTS .init_value = GV_NONE, \
    .transition_steps = GV_STEPS_NONE, .decay_rate = GV_NONE, .transition_begin = 0, \
    .staircase = false, .end_value = GV_NONE
gv_exponential_decay_opts gv_exponential_decay_defaults(void);
gv_schedule *gv_exponential_decay_with(const gv_exponential_decay_opts *opts);
#define gv_exponential_decay(...)                                                        \
    GV_WITH_DEFAULTS_(gv_exponential_decay_with, gv_exponential_decay_opts,               \
                      GV_EXPONENTIAL_DECAY_DEFAULTS, __VA_ARGS__)

/* optax.warmup_exponential_decay_schedule(init_value, peak_value,
 * warmup_steps, transition_steps, decay_rate, transition_begin=0,
 * staircase=False, end_value=None) =
 *   join_schedules([linear_schedule(init, peak, warmup_steps),
 *                   exponential_decay(peak, transition_steps, decay_rate,
 *                                     transition_begin, staircase, end_value)],
 *                  [warmup_steps])
 * (the decay's own step counts from the end of the warmup). */
typedef struct gv_warmup_exponential_decay_schedule_opts {
    double init_value;         /* required */
    double peak_value;         /* required */
    int64_t warmup_steps;      /* required */
    int64_t transition_steps;  /* required */
    double decay_rate;         /* required */
    int64_t transition_begin;  /* 0 */
    bool staircase;            /* false */
    double end_value;          /* GV_NONE: None */
} gv_warmup_exponential_decay_schedule_opts;
#define GV_WARMUP_EXPONENTIAL_DECAY_SCHEDULE_DEFAULTS .init_value = GV_NONE, \
    .peak_value = GV_NONE, .warmup_steps = GV_STEPS_NONE, .transition_steps = GV_STEPS_NONE, \
    .decay_rate = GV_NONE, .transition_begin = 0, .staircase = false, .end_value = GV_NONE
gv_warmup_exponential_decay_schedule_opts gv_warmup_exponential_decay_schedule_defaults(void);
gv_schedule *gv_warmup_exponential_decay_schedule_with(
    const gv_warmup_exponential_decay_schedule_opts *opts);
#define gv_warmup_exponential_decay_schedule(...)                                        \
    GV_WITH_DEFAULTS_(gv_warmup_exponential_decay_schedule_with,                          \
                      gv_warmup_exponential_decay_schedule_opts,                          \
                      GV_WARMUP_EXPONENTIAL_DECAY_SCHEDULE_DEFAULTS, __VA_ARGS__)

/* optax.piecewise_constant_schedule(init_value, boundaries_and_scales): the
 * dict {boundaries[i]: scales[i]} (n entries, any order: taken in sorted
 * order as optax sorts the dict; no boundary twice). At count, init times
 * every scale whose boundary is <= count (so a boundary's scale already
 * applies AT it), computed as optax does, per boundary b in order:
 *   ind = max(0, sign(b - count));  v = v * ind + (1 - ind) * scale * v
 * Scales must be >= 0 (optax: ValueError; NaN too). n = 0 (arrays may be
 * NULL) is the constant init. */
gv_schedule *gv_piecewise_constant_schedule(double init_value, const int64_t *boundaries,
                                            const double *scales, size_t n);

/* optax.piecewise_interpolate_schedule(interpolate_type, init_value,
 * boundaries_and_scales): "linear" or "cosine" interpolation between the
 * cumulative products values = [init, init*s0, init*s0*s1, ...] (float32,
 * left to right) at the sorted boundaries [0, b0, b1, ...]; the last value
 * from the last boundary on, 0 before count 0. Per interval [lo, hi):
 *   pct = (count - lo) / max(hi - lo, 1)
 *   linear: (end - start) * pct + start
 *   cosine: end + (start - end) / 2 * (cos(pi * pct) + 1)
 * Boundaries and scales as for gv_piecewise_constant_schedule. */
gv_schedule *gv_piecewise_interpolate_schedule(const char *interpolate_type, double init_value,
                                               const int64_t *boundaries, const double *scales,
                                               size_t n);

/* optax.linear_onecycle_schedule(transition_steps, peak_value,
 * pct_start=0.3, pct_final=0.85, div_factor=25.0, final_div_factor=1e4):
 * piecewise_interpolate_schedule('linear', peak / div_factor,
 *   {int(pct_start * T): div_factor, int(pct_final * T): 1 / div_factor,
 *    T: 1 / final_div_factor})
 * (a later key equal to an earlier one replaces it, as in the dict).
 * transition_steps must be > 0 (optax: ValueError); the factors' scales
 * must be >= 0. */
typedef struct gv_linear_onecycle_schedule_opts {
    int64_t transition_steps; /* required, > 0 */
    double peak_value;        /* required */
    double pct_start;         /* 0.3 */
    double pct_final;         /* 0.85 */
    double div_factor;        /* 25.0 */
    double final_div_factor;  /* 1e4 */
} gv_linear_onecycle_schedule_opts;
#define GV_LINEAR_ONECYCLE_SCHEDULE_DEFAULTS .transition_steps = GV_STEPS_NONE, \
    .peak_value = GV_NONE, .pct_start = 0.3, .pct_final = 0.85, .div_factor = 25.0, \
    .final_div_factor = 1e4
gv_linear_onecycle_schedule_opts gv_linear_onecycle_schedule_defaults(void);
gv_schedule *gv_linear_onecycle_schedule_with(const gv_linear_onecycle_schedule_opts *opts);
#define gv_linear_onecycle_schedule(...)                                                 \
    GV_WITH_DEFAULTS_(gv_linear_onecycle_schedule_with, gv_linear_onecycle_schedule_opts, \
                      GV_LINEAR_ONECYCLE_SCHEDULE_DEFAULTS, __VA_ARGS__)

/* optax.cosine_onecycle_schedule(transition_steps, peak_value,
 * pct_start=0.3, div_factor=25.0, final_div_factor=1e4):
 * piecewise_interpolate_schedule('cosine', peak / div_factor,
 *   {int(pct_start * T): div_factor, T: 1 / (div_factor * final_div_factor)})
 * transition_steps must be > 0. */
typedef struct gv_cosine_onecycle_schedule_opts {
    int64_t transition_steps; /* required, > 0 */
    double peak_value;        /* required */
    double pct_start;         /* 0.3 */
    double div_factor;        /* 25.0 */
    double final_div_factor;  /* 1e4 */
} gv_cosine_onecycle_schedule_opts;
#define GV_COSINE_ONECYCLE_SCHEDULE_DEFAULTS .transition_steps = GV_STEPS_NONE, \
    .peak_value = GV_NONE, .pct_start = 0.3, .div_factor = 25.0, .final_div_factor = 1e4
gv_cosine_onecycle_schedule_opts gv_cosine_onecycle_schedule_defaults(void);
gv_schedule *gv_cosine_onecycle_schedule_with(const gv_cosine_onecycle_schedule_opts *opts);
#define gv_cosine_onecycle_schedule(...)                                                 \
    GV_WITH_DEFAULTS_(gv_cosine_onecycle_schedule_with, gv_cosine_onecycle_schedule_opts, \
                      GV_COSINE_ONECYCLE_SCHEDULE_DEFAULTS, __VA_ARGS__)

/* optax.join_schedules(schedules, boundaries): schedules[0] before
 * boundaries[0], schedules[i+1] from boundaries[i] on, fed the step minus
 * ITS OWN boundary (absolute, not the previous one):
 *   out = s0(step);  out = step < b_i ? out : s_{i+1}(step - b_i)   (i = 0, 1, ...)
 * so at step == b_i the next schedule is active and sees step 0. Every part
 * is evaluated (jnp.where), so each must be safe at any step. Takes over
 * schedules[0..n-1], also on failure (the array stays the caller's).
 * nboundaries must be n - 1 (n > 0) and the boundaries strictly increasing
 * int32s (optax zips the two lists and does not check the order). */
gv_schedule *gv_join_schedules(gv_schedule *const *schedules, size_t n,
                               const int64_t *boundaries, size_t nboundaries);

gv_schedule *gv_schedule_retain(gv_schedule *s);
void gv_schedule_free(gv_schedule *s);
/* "constant_schedule", "cosine_decay_schedule", ... or the user's name. Borrowed. */
const char *gv_schedule_name(const gv_schedule *s);

/* Traced: the schedule at count (an int32 scalar value). Float32 scalar. */
gv_value gv_schedule_value(const gv_schedule *s, gv_value count);
/* Eager: the schedule at a concrete count (traced and evaluated once). */
gv_status gv_schedule_value_eager(const gv_schedule *s, int32_t count, float *out);

#pragma GCC visibility pop

#ifdef __cplusplus
}
#endif

/* The options machinery the macros above expand to (GV_WITH_DEFAULTS_,
 * GV_NONE), when this header is included on its own. */
#include "grove/optim.h"

#endif
