/* The other Optax optimisers and their primitives: scale_by_rms,
 * scale_by_stddev, scale_by_rss, scale_by_factored_rms, clip_by_block_rms,
 * scale_by_param_block_rms, scale_by_lion, scale_by_trust_ratio,
 * scale_by_belief, scale_by_adamax and lookahead; the aliases rmsprop,
 * adagrad, adafactor, lion, lamb, adabelief, adamax built from them as in
 * optax/_src/alias.py (reference A15). Optax: _src/transform.py,
 * _src/factorized.py, _src/lookahead.py, transforms/_clipping.py.
 *
 * Every formula is optax's, one float32 operation at a time in optax's
 * order, with Python-float arithmetic on hyper-parameters (1 - b1, -lr)
 * done in double and rounded once (reference 0.2, gv_tx_hp*). Hyper-
 * parameter slots are named after the optax factory argument they come
 * from (the alias renames its parts' slots to its own names, or clears the
 * ones it does not expose), so inject_hyperparams can bind them; static
 * options (flags, modes, integer sizes) are in flag and hp_int. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "optim_internal.h"

/* ---- small helpers ---- */

static gv_value one(gv_graph *g, gv_dtype dt) { return gv_scalar(g, dt, 1.0); }

static gv_value hpv(const gv_transform *tx, gv_graph *g, int k, gv_value like) {
    return gv_tx_hp(tx, g, k, gv_value_dtype(like));
}

/* optax.tree.update_moment: (1 - decay) * x + decay * t, 1 - decay on the
 * Python float; x is g or g**2 (an exact square, lax.integer_pow). */
static gv_value ema(const gv_transform *tx, gv_graph *g, int k, gv_value x, gv_value t) {
    gv_dtype dt = gv_value_dtype(x);
    return gv_add(gv_mul(gv_tx_hp_1m(tx, g, k, dt), x), gv_mul(gv_tx_hp(tx, g, k, dt), t));
}

/* optax.tree.bias_correction: t / cast(1 - decay**count), the power a
 * float32 pow of the decay and the float32 count (A6.2). */
static gv_value bias_corr(const gv_transform *tx, gv_graph *g, int k, gv_value t, gv_value countf) {
    gv_value bc = gv_sub(one(g, GV_F32), gv_pow(gv_tx_hp(tx, g, k, GV_F32), countf));
    return gv_div(t, gv_cast(bc, gv_value_dtype(t)));
}

static const char NO_PARAMS[] =
    "this transformation requires the current value of the parameters, but params is NULL: "
    "pass params to gv_transform_update";

/* ---- moment transformations: a state dict of an optional count and trees
 * like the params, updated leaf by leaf ---- */

enum { MAXM = 3 };

typedef struct mspec {
    bool count;             /* a "count" field, first */
    int n;                  /* moment fields, in optax's field order */
    const char *name[MAXM];
    int fill[MAXM];         /* init: -1 zeros, else the hp slot to fill with */
    bool needs_params;
} mspec;

/* What a leaf function sees: the incremented count (int32 and float32),
 * the update and the param (invalid without params). */
typedef struct mleaf {
    const gv_transform *tx;
    gv_graph *g;
    gv_value count, countf;
    gv_value u, p;
} mleaf;

/* Returns the new update; m[] holds the old moments and gets the new. */
typedef gv_value (*mleaf_fn)(const mleaf *a, gv_value *m);

static gv_tree *fill_like(const gv_transform *tx, gv_graph *g, const gv_tree *params, int k) {
    gv_value *p;
    size_t n;
    if (gv_tx_leaves(params, &p, &n, NULL) != GV_OK) {
        gv_tx_fail(tx, g, gv_last_status(), "params: %s", gv_last_error());
        return NULL;
    }
    /* optax.tree.zeros_like / full_like(params, value): value in the leaf's dtype */
    for (size_t i = 0; i < n; i++)
        p[i] = k < 0 ? gv_zeros_like(p[i])
                     : gv_broadcast_to(gv_tx_hp(tx, g, k, gv_value_dtype(p[i])),
                                       gv_value_rank(p[i]), gv_value_shape(p[i]));
    gv_tree *t = gv_tx_rebuild(params, p);
    free(p);
    return t;
}

static gv_tree *m_init(const mspec *sp, const gv_transform *tx, gv_graph *g,
                       const gv_tree *params) {
    if (!sp->count && !sp->n) return gv_tree_new_tuple(); /* EmptyState */
    gv_tree *s = gv_tree_new_dict();
    if (!s || (sp->count && gv_tree_insert_value(s, "count", gv_tx_zero_count(g)) != GV_OK)) {
        gv_tree_free(s);
        return NULL;
    }
    for (int k = 0; k < sp->n; k++) {
        gv_tree *t = fill_like(tx, g, params, sp->fill[k]);
        if (!t || gv_tree_insert(s, sp->name[k], t) != GV_OK) {
            gv_tree_free(s);
            return NULL;
        }
    }
    return s;
}

static gv_status m_update(const mspec *sp, mleaf_fn fn, const gv_transform *tx, gv_graph *g,
                          const gv_tree *updates, const gv_tree *state, const gv_tree *params,
                          gv_tree **nu, gv_tree **ns) {
    gv_value count = {g, -1};
    const gv_tree *mt[MAXM];
    if (!sp->count && !sp->n && gv_tx_check_empty(tx, g, state) != GV_OK) return gv_last_status();
    if (sp->count && gv_tx_count(tx, g, state, &count) != GV_OK) return gv_last_status();
    for (int k = 0; k < sp->n; k++) {
        char what[64];
        snprintf(what, sizeof what, "state.%s", sp->name[k]);
        if (!(mt[k] = gv_tx_field(tx, g, state, sp->name[k])) ||
            gv_tx_check_like(tx, g, "updates", updates, what, mt[k], true) != GV_OK)
            return gv_last_status();
    }
    if (sp->needs_params && !params) return gv_tx_fail(tx, g, GV_ERR_ARG, "%s", NO_PARAMS);
    if (sp->needs_params &&
        gv_tx_check_like(tx, g, "updates", updates, "params", params, false) != GV_OK)
        return gv_last_status();
    gv_value *u = NULL, *p = NULL, *m[MAXM] = {NULL};
    size_t n, nn;
    gv_status st = gv_tx_leaves(updates, &u, &n, NULL);
    if (st == GV_OK && sp->needs_params) st = gv_tx_leaves(params, &p, &nn, NULL);
    for (int k = 0; st == GV_OK && k < sp->n; k++) st = gv_tx_leaves(mt[k], &m[k], &nn, NULL);
    mleaf a = {tx, g, count, count, {g, -1}, {g, -1}};
    if (sp->count) a.count = gv_tx_safe_increment(count), a.countf = gv_cast(a.count, GV_F32);
    for (size_t i = 0; st == GV_OK && i < n; i++) {
        gv_value mi[MAXM];
        for (int k = 0; k < sp->n; k++) mi[k] = m[k][i];
        a.u = u[i];
        if (p) a.p = p[i];
        u[i] = fn(&a, mi);
        for (int k = 0; k < sp->n; k++) m[k][i] = mi[k];
    }
    gv_tree *out = NULL, *s = NULL;
    if (st == GV_OK) {
        out = gv_tx_rebuild(updates, u);
        s = !sp->count && !sp->n ? gv_tree_new_tuple() : gv_tree_new_dict();
        if (!out || !s) st = GV_ERR_NOMEM;
    }
    if (st == GV_OK && sp->count) st = gv_tree_insert_value(s, "count", a.count);
    for (int k = 0; st == GV_OK && k < sp->n; k++)
        st = gv_tree_insert(s, sp->name[k], gv_tx_rebuild(mt[k], m[k]));
    free(u), free(p);
    for (int k = 0; k < sp->n; k++) free(m[k]);
    if (st != GV_OK) {
        gv_tree_free(out), gv_tree_free(s);
        return gv_last_status() != GV_OK ? gv_last_status()
                                         : gv_error(st, "%s: out of memory", tx->name);
    }
    return gv_tx_finish(out, s, nu, ns);
}

/* The init and update functions of a moment transformation whose spec
 * (an expression of tx) and leaf function are given. */
#define MOMENT_TX(name, spec, leaf_fn)                                                         \
    static gv_tree *name##_init(const gv_transform *tx, gv_graph *g, const gv_tree *params) {  \
        return m_init((spec), tx, g, params);                                                  \
    }                                                                                          \
    static gv_status name##_update(const gv_transform *tx, gv_graph *g, const gv_tree *updates, \
                                   const gv_tree *state, const gv_tree *params, gv_tree **nu,  \
                                   gv_tree **ns) {                                             \
        return m_update((spec), leaf_fn, tx, g, updates, state, params, nu, ns);               \
    }

/* ---- argument checks: GV_ERR_ARG naming the option ---- */

static bool arg_fail(const char *fn, const char *arg, double v, const char *must) {
    gv_error(GV_ERR_ARG, "%s: .%s is %g; it must be %s", fn, arg, v, must);
    return false;
}
static bool check_unit(const char *fn, const char *arg, double v) { /* a decay */
    return (v >= 0 && v <= 1) || arg_fail(fn, arg, v, "in [0, 1]");
}
static bool check_nonneg(const char *fn, const char *arg, double v) { /* an eps, a decay rate */
    return (isfinite(v) && v >= 0) || arg_fail(fn, arg, v, "finite and >= 0");
}
static bool check_pos(const char *fn, const char *arg, double v) {
    return (isfinite(v) && v > 0) || arg_fail(fn, arg, v, "finite and > 0");
}
static bool check_finite(const char *fn, const char *arg, double v) {
    return isfinite(v) || arg_fail(fn, arg, v, "finite");
}
/* optax's None (GV_NONE), or a value the check accepts */
static bool none_or(bool (*check)(const char *, const char *, double), const char *fn,
                    const char *arg, double v) {
    return isnan(v) || check(fn, arg, v);
}

static gv_transform *opts_null(const char *fn) {
    gv_error(GV_ERR_ARG, "%s: opts is NULL", fn);
    return NULL;
}

/* ---- scale_by_rms, scale_by_stddev (_src/transform.py) ----
 * hp: 0 decay, 1 eps, 2 initial_scale; hp_int eps_in_sqrt; flag
 * bias_correction. */

static const mspec RMS = {false, 1, {"nu"}, {2}, false};
static const mspec RMS_COUNT = {true, 1, {"nu"}, {2}, false};
static const mspec STDDEV = {false, 2, {"mu", "nu"}, {-1, 2}, false};
static const mspec STDDEV_COUNT = {true, 2, {"mu", "nu"}, {-1, 2}, false};

/* rsqrt(n + eps), eps inside the root (the default, A15), or
 * 1 / (sqrt(n) + eps) */
static gv_value rms_scaling(const mleaf *a, gv_value n) {
    gv_value eps = hpv(a->tx, a->g, 1, n);
    if (a->tx->hp_int) return gv_rsqrt(gv_add(n, eps));
    return gv_div(one(a->g, gv_value_dtype(n)), gv_add(gv_sqrt(n), eps));
}

static gv_value rms_leaf(const mleaf *a, gv_value *m) {
    m[0] = ema(a->tx, a->g, 0, gv_mul(a->u, a->u), m[0]);
    gv_value nu_hat = a->tx->flag ? bias_corr(a->tx, a->g, 0, m[0], a->countf) : m[0];
    return gv_mul(rms_scaling(a, nu_hat), a->u);
}

static gv_value stddev_leaf(const mleaf *a, gv_value *m) {
    m[0] = ema(a->tx, a->g, 0, a->u, m[0]);
    m[1] = ema(a->tx, a->g, 0, gv_mul(a->u, a->u), m[1]);
    gv_value mu_hat = m[0], nu_hat = m[1];
    if (a->tx->flag)
        mu_hat = bias_corr(a->tx, a->g, 0, m[0], a->countf),
        nu_hat = bias_corr(a->tx, a->g, 0, m[1], a->countf);
    /* centred: nu - abs_sq(mu) */
    return gv_mul(rms_scaling(a, gv_sub(nu_hat, gv_mul(mu_hat, mu_hat))), a->u);
}

MOMENT_TX(rms, tx->flag ? &RMS_COUNT : &RMS, rms_leaf)
MOMENT_TX(stddev, tx->flag ? &STDDEV_COUNT : &STDDEV, stddev_leaf)

static gv_transform *rms_like(const char *name, gv_tx_init_fn init, gv_tx_update_fn update,
                              double decay, double eps, double initial_scale, bool eps_in_sqrt,
                              bool bias_correction) {
    if (!check_unit(name, "decay", decay) || !check_nonneg(name, "eps", eps) ||
        !check_nonneg(name, "initial_scale", initial_scale))
        return NULL;
    gv_transform *tx = gv_tx_new(name, init, update);
    if (!tx) return NULL;
    gv_tx_hp_set(tx, 0, "decay", decay), gv_tx_hp_set(tx, 1, "eps", eps);
    gv_tx_hp_set(tx, 2, "initial_scale", initial_scale);
    tx->hp_int = eps_in_sqrt;
    tx->flag = bias_correction;
    return tx;
}

gv_scale_by_rms_opts gv_scale_by_rms_defaults(void) {
    return (gv_scale_by_rms_opts){GV_SCALE_BY_RMS_DEFAULTS};
}

gv_transform *gv_scale_by_rms_with(const gv_scale_by_rms_opts *o) {
    if (!o) return opts_null("scale_by_rms");
    return rms_like("scale_by_rms", rms_init, rms_update, o->decay, o->eps, o->initial_scale,
                    o->eps_in_sqrt, o->bias_correction);
}

gv_scale_by_stddev_opts gv_scale_by_stddev_defaults(void) {
    return (gv_scale_by_stddev_opts){GV_SCALE_BY_STDDEV_DEFAULTS};
}

gv_transform *gv_scale_by_stddev_with(const gv_scale_by_stddev_opts *o) {
    if (!o) return opts_null("scale_by_stddev");
    return rms_like("scale_by_stddev", stddev_init, stddev_update, o->decay, o->eps,
                    o->initial_scale, o->eps_in_sqrt, o->bias_correction);
}

/* ---- scale_by_rss (adagrad) ----
 * hp: 0 initial_accumulator_value, 1 eps. */

static const mspec RSS = {false, 1, {"sum_of_squares"}, {0}, false};

static gv_value rss_leaf(const mleaf *a, gv_value *m) {
    m[0] = gv_add(gv_mul(a->u, a->u), m[0]); /* abs_sq(g) + t */
    gv_value zero = gv_scalar(a->g, gv_value_dtype(m[0]), 0.0);
    /* where(t > 0, rsqrt(t + eps), 0.0) * g */
    gv_value inv = gv_select(gv_gt(m[0], zero), gv_rsqrt(gv_add(m[0], hpv(a->tx, a->g, 1, m[0]))),
                             zero);
    return gv_mul(inv, a->u);
}

MOMENT_TX(rss, &RSS, rss_leaf)

gv_scale_by_rss_opts gv_scale_by_rss_defaults(void) {
    return (gv_scale_by_rss_opts){GV_SCALE_BY_RSS_DEFAULTS};
}

static gv_transform *rss_new(const char *name, double init, double eps) {
    if (!check_nonneg(name, "initial_accumulator_value", init) || !check_nonneg(name, "eps", eps))
        return NULL;
    gv_transform *tx = gv_tx_new("scale_by_rss", rss_init, rss_update);
    if (tx) {
        gv_tx_hp_set(tx, 0, "initial_accumulator_value", init);
        gv_tx_hp_set(tx, 1, "eps", eps);
    }
    return tx;
}

gv_transform *gv_scale_by_rss_with(const gv_scale_by_rss_opts *o) {
    if (!o) return opts_null("scale_by_rss");
    return rss_new("scale_by_rss", o->initial_accumulator_value, o->eps);
}

/* ---- clip_by_block_rms, scale_by_param_block_rms (transforms/_clipping.py,
 * _src/transform.py) and scale_by_trust_ratio: stateless, per leaf ---- */

static const mspec STATELESS = {false, 0, {NULL}, {0}, false};
static const mspec STATELESS_P = {false, 0, {NULL}, {0}, true};

static gv_value mean_sq(gv_value x) { return gv_mean(gv_mul(x, x), NULL, 0, false); }
static gv_value sum_sq(gv_value x) { return gv_sum(gv_mul(x, x), NULL, 0, false); }

/* hp 0 threshold: u / max(1, sqrt(mean(u^2)) / threshold) */
static gv_value block_clip_leaf(const mleaf *a, gv_value *m) {
    gv_value rms = gv_sqrt(mean_sq(a->u));
    gv_value denom = gv_maximum(one(a->g, gv_value_dtype(rms)),
                                gv_div(rms, hpv(a->tx, a->g, 0, rms)));
    return gv_div(a->u, denom);
}

/* optax.numerics.safe_norm / safe_root_mean_squares: f(x), or min where
 * f(x) <= min, with f evaluated again on ones there (so the gradient at 0
 * is 0, not NaN) */
static gv_value safe_min(gv_value (*f)(gv_value), gv_value x, gv_value min) {
    gv_value r = gv_sqrt(f(x));
    gv_value small = gv_le(r, min);
    gv_value masked = gv_sqrt(f(gv_select(small, gv_ones_like(x), x)));
    return gv_select(small, min, masked);
}

static gv_value as_dtype(gv_value v, gv_dtype dt) {
    return gv_value_dtype(v) == dt ? v : gv_cast(v, dt);
}

/* hp 0 min_scale: u * safe_root_mean_squares(p, min_scale) */
static gv_value param_rms_leaf(const mleaf *a, gv_value *m) {
    gv_value s = safe_min(mean_sq, a->p, hpv(a->tx, a->g, 0, a->p));
    return gv_mul(a->u, as_dtype(s, gv_value_dtype(a->u)));
}

/* hp 0 min_norm, 1 trust_coefficient, 2 eps:
 * u * where(|p| == 0 or |u| == 0, 1, tc |p| / (|u| + eps)) */
static gv_value trust_leaf(const mleaf *a, gv_value *m) {
    gv_dtype dt = gv_value_dtype(a->u);
    gv_value pn = as_dtype(safe_min(sum_sq, a->p, hpv(a->tx, a->g, 0, a->p)), dt);
    gv_value un = safe_min(sum_sq, a->u, hpv(a->tx, a->g, 0, a->u));
    gv_value ratio = gv_div(gv_mul(hpv(a->tx, a->g, 1, pn), pn), gv_add(un, hpv(a->tx, a->g, 2, un)));
    gv_value zero = gv_scalar(a->g, dt, 0.0), unit = one(a->g, dt);
    gv_value safe = gv_select(gv_eq(pn, zero), unit, gv_select(gv_eq(un, zero), unit, ratio));
    return gv_mul(a->u, safe);
}

MOMENT_TX(block_clip, &STATELESS, block_clip_leaf)
MOMENT_TX(param_rms, &STATELESS_P, param_rms_leaf)
MOMENT_TX(trust, &STATELESS_P, trust_leaf)

gv_transform *gv_clip_by_block_rms(double threshold) {
    if (!check_pos("clip_by_block_rms", "threshold", threshold)) return NULL;
    gv_transform *tx = gv_tx_new("clip_by_block_rms", block_clip_init, block_clip_update);
    if (tx) gv_tx_hp_set(tx, 0, "threshold", threshold);
    return tx;
}

gv_transform *gv_scale_by_param_block_rms(double min_scale) {
    if (!check_nonneg("scale_by_param_block_rms", "min_scale", min_scale)) return NULL;
    gv_transform *tx = gv_tx_new("scale_by_param_block_rms", param_rms_init, param_rms_update);
    if (tx) gv_tx_hp_set(tx, 0, "min_scale", min_scale);
    return tx;
}

gv_scale_by_trust_ratio_opts gv_scale_by_trust_ratio_defaults(void) {
    return (gv_scale_by_trust_ratio_opts){GV_SCALE_BY_TRUST_RATIO_DEFAULTS};
}

gv_transform *gv_scale_by_trust_ratio_with(const gv_scale_by_trust_ratio_opts *o) {
    const char *nm = "scale_by_trust_ratio";
    if (!o) return opts_null(nm);
    if (!check_nonneg(nm, "min_norm", o->min_norm) ||
        !check_finite(nm, "trust_coefficient", o->trust_coefficient) ||
        !check_nonneg(nm, "eps", o->eps))
        return NULL;
    gv_transform *tx = gv_tx_new(nm, trust_init, trust_update);
    if (tx) {
        gv_tx_hp_set(tx, 0, "min_norm", o->min_norm);
        gv_tx_hp_set(tx, 1, "trust_coefficient", o->trust_coefficient);
        gv_tx_hp_set(tx, 2, "eps", o->eps);
    }
    return tx;
}

/* ---- scale_by_lion, scale_by_belief, scale_by_adamax ---- */

/* hp: 0 b1, 1 b2, 2 smooth_beta; hp_int the mode */
static const mspec LION = {true, 1, {"mu"}, {-1}, false};

static gv_value lion_leaf(const mleaf *a, gv_value *m) {
    gv_value x = ema(a->tx, a->g, 0, a->u, m[0]); /* (1 - b1) g + b1 mu */
    m[0] = ema(a->tx, a->g, 1, a->u, m[0]);
    switch ((gv_lion_mode)a->tx->hp_int) {
    case GV_LION_SMOOTH: return gv_tanh(gv_mul(hpv(a->tx, a->g, 2, x), x));
    case GV_LION_REFINED: /* linear around 0, the sign beyond 1 */
        return gv_select(gv_lt(gv_abs(x), one(a->g, gv_value_dtype(x))), x, gv_sign(x));
    default: return gv_sign(x);
    }
}

MOMENT_TX(lion, &LION, lion_leaf)

gv_scale_by_lion_opts gv_scale_by_lion_defaults(void) {
    return (gv_scale_by_lion_opts){GV_SCALE_BY_LION_DEFAULTS};
}

static bool lion_args(const char *nm, double b1, double b2) {
    return check_unit(nm, "b1", b1) && check_unit(nm, "b2", b2);
}

gv_transform *gv_scale_by_lion_with(const gv_scale_by_lion_opts *o) {
    const char *nm = "scale_by_lion";
    if (!o) return opts_null(nm);
    if (!lion_args(nm, o->b1, o->b2) || !check_finite(nm, "smooth_beta", o->smooth_beta))
        return NULL;
    if (o->mode != GV_LION_HARD && o->mode != GV_LION_SMOOTH && o->mode != GV_LION_REFINED) {
        gv_error(GV_ERR_ARG,
                 "scale_by_lion: .mode is %d; it must be GV_LION_HARD, GV_LION_SMOOTH or "
                 "GV_LION_REFINED",
                 (int)o->mode);
        return NULL;
    }
    gv_transform *tx = gv_tx_new(nm, lion_init, lion_update);
    if (tx) {
        gv_tx_hp_set(tx, 0, "b1", o->b1), gv_tx_hp_set(tx, 1, "b2", o->b2);
        gv_tx_hp_set(tx, 2, "smooth_beta", o->smooth_beta);
        tx->hp_int = o->mode;
    }
    return tx;
}

/* hp: 0 b1, 1 b2, 2 eps, 3 eps_root; flag nesterov */
static const mspec BELIEF = {true, 2, {"mu", "nu"}, {-1, -1}, false};

static gv_value belief_leaf(const mleaf *a, gv_value *m) {
    const gv_transform *tx = a->tx;
    gv_graph *g = a->g;
    m[0] = ema(tx, g, 0, a->u, m[0]);
    gv_value err = gv_sub(a->u, m[0]); /* the prediction error g - mu */
    m[1] = gv_add(ema(tx, g, 1, gv_mul(err, err), m[1]), hpv(tx, g, 3, m[1]));
    gv_value mu_hat;
    if (tx->flag) { /* b1 * bc(mu, c + 1) + (1 - b1) * bc(g, c) */
        gv_value cf1 = gv_cast(gv_tx_safe_increment(a->count), GV_F32);
        mu_hat = gv_add(gv_mul(hpv(tx, g, 0, m[0]), bias_corr(tx, g, 0, m[0], cf1)),
                        gv_mul(gv_tx_hp_1m(tx, g, 0, gv_value_dtype(a->u)),
                               bias_corr(tx, g, 0, a->u, a->countf)));
    } else
        mu_hat = bias_corr(tx, g, 0, m[0], a->countf);
    gv_value nu_hat = bias_corr(tx, g, 1, m[1], a->countf);
    return gv_div(mu_hat, gv_add(gv_sqrt(nu_hat), hpv(tx, g, 2, nu_hat)));
}

MOMENT_TX(belief, &BELIEF, belief_leaf)

gv_scale_by_belief_opts gv_scale_by_belief_defaults(void) {
    return (gv_scale_by_belief_opts){GV_SCALE_BY_BELIEF_DEFAULTS};
}

static bool adam_like_args(const char *nm, double b1, double b2, double eps, double eps_root) {
    return check_unit(nm, "b1", b1) && check_unit(nm, "b2", b2) && check_nonneg(nm, "eps", eps) &&
           (isnan(eps_root) || check_nonneg(nm, "eps_root", eps_root));
}

gv_transform *gv_scale_by_belief_with(const gv_scale_by_belief_opts *o) {
    const char *nm = "scale_by_belief";
    if (!o) return opts_null(nm);
    if (!adam_like_args(nm, o->b1, o->b2, o->eps, o->eps_root)) return NULL;
    gv_transform *tx = gv_tx_new(nm, belief_init, belief_update);
    if (tx) {
        gv_tx_hp_set(tx, 0, "b1", o->b1), gv_tx_hp_set(tx, 1, "b2", o->b2);
        gv_tx_hp_set(tx, 2, "eps", o->eps), gv_tx_hp_set(tx, 3, "eps_root", o->eps_root);
        tx->flag = o->nesterov;
    }
    return tx;
}

/* hp: 0 b1, 1 b2, 2 eps. State ScaleByAdamState. */
static const mspec ADAMAX = {true, 2, {"mu", "nu"}, {-1, -1}, false};

static gv_value adamax_leaf(const mleaf *a, gv_value *m) {
    m[0] = ema(a->tx, a->g, 0, a->u, m[0]);
    /* optax.tree.update_infinity_moment: max(|g| + eps, b2 * nu) */
    m[1] = gv_maximum(gv_add(gv_abs(a->u), hpv(a->tx, a->g, 2, a->u)),
                      gv_mul(hpv(a->tx, a->g, 1, m[1]), m[1]));
    return gv_div(bias_corr(a->tx, a->g, 0, m[0], a->countf), m[1]);
}

MOMENT_TX(adamax, &ADAMAX, adamax_leaf)

gv_scale_by_adamax_opts gv_scale_by_adamax_defaults(void) {
    return (gv_scale_by_adamax_opts){GV_SCALE_BY_ADAMAX_DEFAULTS};
}

gv_transform *gv_scale_by_adamax_with(const gv_scale_by_adamax_opts *o) {
    const char *nm = "scale_by_adamax";
    if (!o) return opts_null(nm);
    if (!adam_like_args(nm, o->b1, o->b2, o->eps, GV_NONE)) return NULL;
    gv_transform *tx = gv_tx_new(nm, adamax_init, adamax_update);
    if (tx) {
        gv_tx_hp_set(tx, 0, "b1", o->b1), gv_tx_hp_set(tx, 1, "b2", o->b2);
        gv_tx_hp_set(tx, 2, "eps", o->eps);
    }
    return tx;
}

/* ---- scale_by_factored_rms (_src/factorized.py) ----
 * hp: 0 decay_rate, 2 epsilon; static: hp[1] step_offset (an integer, as
 * optax's; unnamed, so never injected), hp_int min_dim_size_to_factor, flag
 * factored. */

enum { FR_DECAY, FR_OFFSET, FR_EPS };

/* optax's _factored_dims: the two largest axes (d1 the second, d0 the
 * largest, as np.argsort orders them: ties by index), if the second is at
 * least min_dim_size_to_factor. */
static bool factored_dims(const gv_transform *tx, gv_value p, int *d1, int *d0) {
    int r = gv_value_rank(p);
    const int64_t *s = gv_value_shape(p);
    if (!tx->flag || r < 2) return false;
    int a = -1, b = -1; /* largest, second largest by (size, index) */
    for (int i = 0; i < r; i++) {
        if (a < 0 || s[i] >= s[a]) b = a, a = i;
        else if (b < 0 || s[i] >= s[b]) b = i;
    }
    if (s[b] < tx->hp_int) return false;
    *d1 = b, *d0 = a;
    return true;
}

/* The shape (returned: its rank) of state leaf k (0 v_row, 1 v_col, 2 v)
 * that optax's init gives param p: p's shape without d0 / without d1 / [1]
 * when factored, else [1] / [1] / p's shape. shape has room for p's rank. */
static int factored_shape(const gv_transform *tx, gv_value p, int k, int64_t *shape) {
    int d1, d0, r = gv_value_rank(p), drop = -1, n = 0;
    if (factored_dims(tx, p, &d1, &d0) ? k == 2 : k != 2) {
        shape[0] = 1; /* jnp.zeros((1,), dtype) */
        return 1;
    }
    if (k < 2) drop = k == 0 ? d0 : d1;
    for (int i = 0; i < r; i++)
        if (i != drop) shape[n++] = gv_value_shape(p)[i];
    return n;
}

static gv_value factored_zeros(const gv_transform *tx, gv_value p, int k) {
    int64_t shape[gv_value_rank(p) + 1];
    int r = factored_shape(tx, p, k, shape);
    return gv_full(p.graph, gv_value_dtype(p), r, shape, 0.0);
}

static const char *const FR_FIELDS[3] = {"v_row", "v_col", "v"};

/* FactoredState {count, v_row, v_col, v} from per-leaf values, each tree
 * with like's structure */
static gv_tree *factored_state(gv_value count, const gv_tree *like, gv_value *v[3]) {
    gv_tree *s = gv_tree_new_dict();
    gv_status st = s ? gv_tree_insert_value(s, "count", count) : GV_ERR_NOMEM;
    for (int k = 0; st == GV_OK && k < 3; k++)
        st = gv_tree_insert(s, FR_FIELDS[k], gv_tx_rebuild(like, v[k]));
    if (st != GV_OK) gv_tree_free(s), s = NULL;
    return s;
}

static gv_tree *factored_init(const gv_transform *tx, gv_graph *g, const gv_tree *params) {
    gv_value *p, *v[3] = {NULL};
    size_t n;
    if (gv_tx_leaves(params, &p, &n, NULL) != GV_OK) {
        gv_tx_fail(tx, g, gv_last_status(), "params: %s", gv_last_error());
        return NULL;
    }
    gv_tree *s = NULL;
    for (int k = 0; k < 3; k++) v[k] = malloc((n ? n : 1) * sizeof(gv_value));
    if (v[0] && v[1] && v[2]) {
        for (size_t i = 0; i < n; i++)
            for (int k = 0; k < 3; k++) v[k][i] = factored_zeros(tx, p[i], k);
        s = factored_state(gv_tx_zero_count(g), params, v);
    } else
        gv_error(GV_ERR_NOMEM, "%s: out of memory", tx->name);
    free(p);
    for (int k = 0; k < 3; k++) free(v[k]);
    return s;
}

static gv_value mean_axis(gv_value x, int axis, bool keepdims) {
    return gv_mean(x, &axis, 1, keepdims);
}

/* One param's update; v[] holds its old (v_row, v_col, v) and gets the new. */
static gv_value factored_leaf(const gv_transform *tx, gv_graph *g, gv_value step, gv_value grad,
                              gv_value param, gv_value v[3]) {
    gv_dtype dt = gv_value_dtype(param);
    /* optax's _decay_rate_pow(step - step_offset, decay_rate):
     * 1 - float32(i + 1) ** -decay_rate, with the step before incrementing */
    gv_value i = gv_sub(step, gv_scalar(g, GV_I32, tx->hp[FR_OFFSET]));
    gv_value t = gv_cast(gv_add_scalar(i, 1.0), GV_F32);
    gv_value decay = as_dtype(
        gv_sub(one(g, GV_F32), gv_pow(t, gv_tx_hp_neg(tx, g, FR_DECAY, GV_F32))), dt);
    gv_value keep = gv_sub(one(g, dt), decay); /* 1.0 - decay_rate_t */
    gv_value grad_sqr = gv_add(gv_mul(grad, grad), gv_tx_hp(tx, g, FR_EPS, dt));
    gv_value minus_half = gv_scalar(g, dt, -0.5);
    int d1, d0;
    if (factored_dims(tx, param, &d1, &d0)) {
        v[0] = gv_add(gv_mul(decay, v[0]), gv_mul(keep, mean_axis(grad_sqr, d0, false)));
        v[1] = gv_add(gv_mul(decay, v[1]), gv_mul(keep, mean_axis(grad_sqr, d1, false)));
        v[2] = factored_zeros(tx, param, 2);
        int reduced_d1 = d1 > d0 ? d1 - 1 : d1;
        gv_value row_col_mean = mean_axis(v[0], reduced_d1, true);
        gv_value row_factor = gv_pow(gv_div(v[0], row_col_mean), minus_half);
        gv_value col_factor = gv_pow(v[1], minus_half);
        return gv_mul(gv_mul(grad, gv_expand_dims(row_factor, d0)),
                      gv_expand_dims(col_factor, d1));
    }
    v[0] = factored_zeros(tx, param, 0), v[1] = factored_zeros(tx, param, 1);
    v[2] = gv_add(gv_mul(decay, v[2]), gv_mul(keep, grad_sqr));
    return gv_mul(grad, gv_pow(v[2], minus_half));
}

/* The state's trees have the params' structure and, per leaf, the shapes
 * init gives it (a state made with other options would not). */
static gv_status factored_check(const gv_transform *tx, gv_graph *g, const gv_tree *params,
                                const gv_tree *field, const char *name, const gv_value *p,
                                const gv_value *v, size_t n, int k) {
    if (!gv_tree_structure_equal(params, field))
        return gv_tx_fail(tx, g, GV_ERR_STRUCTURE,
                          "params and state.%s differ in structure; make sure you have called "
                          "init first",
                          name);
    for (size_t i = 0; i < n; i++) {
        int64_t shape[gv_value_rank(p[i]) + 1];
        int r = factored_shape(tx, p[i], k, shape);
        bool same = r == gv_value_rank(v[i]) && gv_value_dtype(p[i]) == gv_value_dtype(v[i]);
        for (int d = 0; same && d < r; d++) same = shape[d] == gv_value_shape(v[i])[d];
        if (!same)
            return gv_tx_fail(tx, g, GV_ERR_SHAPE,
                              "state.%s leaf %zu does not have the shape init gives that param "
                              "(a state of another min_dim_size_to_factor or factored?)",
                              name, i);
    }
    return GV_OK;
}

static gv_status factored_update(const gv_transform *tx, gv_graph *g, const gv_tree *updates,
                                 const gv_tree *state, const gv_tree *params, gv_tree **nu,
                                 gv_tree **ns) {
    if (!params) return gv_tx_fail(tx, g, GV_ERR_ARG, "%s", NO_PARAMS);
    gv_value count;
    if (gv_tx_count(tx, g, state, &count) != GV_OK ||
        gv_tx_check_like(tx, g, "updates", updates, "params", params, false) != GV_OK)
        return gv_last_status();
    const gv_tree *f[3];
    for (int k = 0; k < 3; k++)
        if (!(f[k] = gv_tx_field(tx, g, state, FR_FIELDS[k]))) return gv_last_status();
    gv_value *u = NULL, *p = NULL, *v[3] = {NULL};
    size_t n, nn;
    gv_status st = gv_tx_leaves(updates, &u, &n, NULL);
    if (st == GV_OK) st = gv_tx_leaves(params, &p, &nn, NULL);
    for (int k = 0; st == GV_OK && k < 3; k++) {
        st = gv_tx_leaves(f[k], &v[k], &nn, NULL);
        if (st == GV_OK) st = factored_check(tx, g, params, f[k], FR_FIELDS[k], p, v[k], n, k);
    }
    for (size_t i = 0; st == GV_OK && i < n; i++) {
        gv_value vi[3] = {v[0][i], v[1][i], v[2][i]};
        u[i] = factored_leaf(tx, g, count, u[i], p[i], vi);
        for (int k = 0; k < 3; k++) v[k][i] = vi[k];
    }
    gv_tree *out = NULL, *s = NULL;
    if (st == GV_OK) {
        out = gv_tx_rebuild(updates, u);
        s = factored_state(gv_tx_safe_increment(count), params, v);
    }
    free(u), free(p);
    for (int k = 0; k < 3; k++) free(v[k]);
    if (st != GV_OK) return st;
    return gv_tx_finish(out, s, nu, ns);
}

gv_scale_by_factored_rms_opts gv_scale_by_factored_rms_defaults(void) {
    return (gv_scale_by_factored_rms_opts){GV_SCALE_BY_FACTORED_RMS_DEFAULTS};
}

/* names: the factory's own (scale_by_factored_rms) or adafactor's */
static gv_transform *factored_new(const char *nm, bool factored, double decay_rate,
                                  int step_offset, int min_dim, double epsilon, bool alias) {
    if (!check_nonneg(nm, "decay_rate", decay_rate) ||
        !check_nonneg(nm, alias ? "eps" : "epsilon", epsilon))
        return NULL;
    if (min_dim < 0) {
        arg_fail(nm, "min_dim_size_to_factor", min_dim, ">= 0");
        return NULL;
    }
    gv_transform *tx = gv_tx_new("scale_by_factored_rms", factored_init, factored_update);
    if (!tx) return NULL;
    gv_tx_hp_set(tx, FR_DECAY, "decay_rate", decay_rate);
    gv_tx_hp_set(tx, FR_OFFSET, NULL, step_offset);
    gv_tx_hp_set(tx, FR_EPS, alias ? "eps" : "epsilon", epsilon);
    tx->hp_int = min_dim;
    tx->flag = factored;
    return tx;
}

gv_transform *gv_scale_by_factored_rms_with(const gv_scale_by_factored_rms_opts *o) {
    if (!o) return opts_null("scale_by_factored_rms");
    return factored_new("scale_by_factored_rms", o->factored, o->decay_rate, o->step_offset,
                        o->min_dim_size_to_factor, o->epsilon, false);
}

/* ---- lookahead (_src/lookahead.py) ----
 * hp: 0 slow_step_size; hp_int sync_period; flag reset_state; kids[0] the
 * fast optimiser. */

static bool is_pair(const gv_tree *t) {
    return gv_tree_kind_of(t) == GV_TREE_DICT && gv_tree_num_children(t) == 2 &&
           gv_tree_contains(t, "fast") && gv_tree_contains(t, "slow");
}

static gv_tree *lookahead_init(const gv_transform *tx, gv_graph *g, const gv_tree *params) {
    /* optax accepts plain params too, as the fast ones (with a warning) */
    const gv_tree *fast = is_pair(params) ? gv_tree_child_by_key(params, "fast") : params;
    gv_tree *fs = gv_tx_init_inner(tx->kids[0], g, fast), *s = gv_tree_new_dict();
    gv_status st = fs && s ? gv_tree_insert(s, "fast_state", fs) : GV_ERR_NOMEM;
    if (st != GV_OK && !s) gv_tree_free(fs);
    if (st == GV_OK) st = gv_tree_insert_value(s, "steps_since_sync", gv_tx_zero_count(g));
    if (st != GV_OK) gv_tree_free(s), s = NULL;
    return s;
}

/* jittable reset: (1 - sync) * current + sync * init, leaf by leaf */
static gv_tree *reset_where(gv_value sync, const gv_tree *cur, const gv_tree *init) {
    gv_value *c = NULL, *i = NULL;
    size_t n, m;
    if (gv_tx_leaves(cur, &c, &n, NULL) != GV_OK || gv_tx_leaves(init, &i, &m, NULL) != GV_OK) {
        free(c);
        return NULL;
    }
    for (size_t k = 0; k < n && k < m; k++) {
        gv_dtype dt = gv_value_dtype(c[k]);
        gv_value s = gv_cast(sync, dt);
        c[k] = gv_add(gv_mul(gv_sub(one(s.graph, dt), s), c[k]), gv_mul(s, i[k]));
    }
    gv_tree *t = gv_tx_rebuild(cur, c);
    free(c), free(i);
    return t;
}

/* the pair {"fast": f, "slow": s} of the leaves of like */
static gv_tree *pair_of(const gv_tree *like, const gv_value *f, const gv_value *s) {
    gv_tree *t = gv_tree_new_dict();
    gv_status st = t ? gv_tree_insert(t, "fast", gv_tx_rebuild(like, f)) : GV_ERR_NOMEM;
    if (st == GV_OK) st = gv_tree_insert(t, "slow", gv_tx_rebuild(like, s));
    if (st != GV_OK) gv_tree_free(t), t = NULL;
    return t;
}

static gv_status lookahead_update(const gv_transform *tx, gv_graph *g, const gv_tree *updates,
                                  const gv_tree *state, const gv_tree *params, gv_tree **nu,
                                  gv_tree **ns) {
    if (!params || !is_pair(params))
        return gv_tx_fail(tx, g, GV_ERR_ARG,
                          "params must be the lookahead pair {\"fast\": ..., \"slow\": ...} "
                          "(optax's LookaheadParams; gv_lookahead_params_init_synced makes one)%s",
                          params ? "" : ", got NULL");
    const gv_tree *fast = gv_tree_child_by_key(params, "fast");
    const gv_tree *slow = gv_tree_child_by_key(params, "slow");
    const gv_tree *fs = gv_tx_field(tx, g, state, "fast_state");
    const gv_tree *sc = fs ? gv_tx_field(tx, g, state, "steps_since_sync") : NULL;
    if (!sc) return gv_last_status();
    gv_value steps = gv_tree_leaf_value(sc);
    if (!gv_value_ok(steps) || gv_value_dtype(steps) != GV_I32 || gv_value_rank(steps) != 0)
        return gv_tx_fail(tx, g, GV_ERR_DTYPE, "state.steps_since_sync must be an int32 scalar");
    if (gv_tx_check_like(tx, g, "updates", updates, "params.fast", fast, false) != GV_OK ||
        gv_tx_check_like(tx, g, "params.fast", fast, "params.slow", slow, true) != GV_OK)
        return gv_last_status();
    gv_tree *u = NULL, *nfs = NULL;
    if (gv_tx_update_inner(tx->kids[0], g, updates, fs, fast, &u, &nfs) != GV_OK)
        return gv_last_status();
    int64_t period = tx->hp_int;
    gv_value sync = gv_eq(steps, gv_scalar(g, GV_I32, (double)(period - 1)));
    gv_value *uv = NULL, *fv = NULL, *sv = NULL;
    size_t n, m;
    gv_status st = gv_tx_leaves(u, &uv, &n, NULL);
    if (st == GV_OK) st = gv_tx_leaves(fast, &fv, &m, NULL);
    if (st == GV_OK) st = gv_tx_leaves(slow, &sv, &m, NULL);
    for (size_t i = 0; st == GV_OK && i < n; i++) {
        gv_dtype dt = gv_value_dtype(uv[i]);
        gv_value s = gv_cast(sync, dt);
        /* last_difference = fast + updates - slow */
        gv_value diff = gv_sub(gv_add(as_dtype(fv[i], dt), uv[i]), as_dtype(sv[i], dt));
        /* slow: slow_step_size * sync * diff; fast: u - sync * (1 - slow_step_size) * diff */
        gv_value su = gv_mul(gv_mul(gv_tx_hp(tx, g, 0, dt), s), diff);
        uv[i] = gv_sub(uv[i], gv_mul(gv_mul(s, gv_tx_hp_1m(tx, g, 0, dt)), diff));
        sv[i] = su;
    }
    gv_tree *out = st == GV_OK ? pair_of(fast, uv, sv) : NULL;
    free(uv), free(fv), free(sv);
    gv_tree_free(u);
    if (st == GV_OK && tx->flag) {
        gv_tree *init = gv_tx_init_inner(tx->kids[0], g, fast);
        gv_tree *r = init ? reset_where(sync, nfs, init) : NULL;
        gv_tree_free(init), gv_tree_free(nfs);
        nfs = r;
    }
    /* steps_since_sync = (steps + 1) % sync_period, jnp's floor remainder */
    gv_value a = gv_add_scalar(steps, 1.0), p = gv_scalar(g, GV_I32, (double)period);
    gv_value r = gv_sub(a, gv_mul(gv_div(a, p), p));
    r = gv_select(gv_lt(r, gv_scalar(g, GV_I32, 0.0)), gv_add(r, p), r);
    gv_tree *s = st == GV_OK && nfs ? gv_tree_new_dict() : NULL;
    if (s && gv_tree_insert(s, "fast_state", nfs) == GV_OK) {
        nfs = NULL;
        if (gv_tree_insert_value(s, "steps_since_sync", r) != GV_OK) gv_tree_free(s), s = NULL;
    } else
        gv_tree_free(s), s = NULL;
    gv_tree_free(nfs);
    if (st != GV_OK) {
        gv_tree_free(out);
        return st;
    }
    return gv_tx_finish(out, s, nu, ns);
}

gv_transform *gv_lookahead(gv_transform *fast_optimizer, int sync_period,
                           double slow_step_size, bool reset_state) {
    const char *nm = "lookahead";
    bool ok = true;
    if (!fast_optimizer) {
        gv_tx_null_arg("lookahead", "fast_optimizer");
        ok = false;
    } else if (sync_period < 1) {
        gv_error(GV_ERR_ARG, "lookahead: sync_period is %d; it must be >= 1", sync_period);
        ok = false;
    } else if (!(slow_step_size >= 0 && slow_step_size <= 1)) {
        gv_error(GV_ERR_ARG, "lookahead: slow_step_size is %g; it must be in [0, 1]",
                 slow_step_size);
        ok = false;
    }
    gv_transform *tx = ok ? gv_tx_new(nm, lookahead_init, lookahead_update) : NULL;
    if (tx) tx->kids = malloc(sizeof *tx->kids);
    if (tx && !tx->kids) {
        free(tx), tx = NULL;
        gv_error(GV_ERR_NOMEM, "lookahead: out of memory");
    }
    if (!tx) {
        gv_transform_free(fast_optimizer);
        return NULL;
    }
    tx->kids[0] = fast_optimizer, tx->nkids = 1;
    gv_tx_hp_set(tx, 0, "slow_step_size", slow_step_size);
    tx->hp_int = sync_period;
    tx->flag = reset_state;
    return tx;
}

gv_tree *gv_lookahead_params_init_synced(const gv_tree *params) {
    if (!params) {
        gv_error(GV_ERR_ARG, "lookahead_params_init_synced: params is NULL");
        return NULL;
    }
    gv_tree *t = gv_tree_new_dict();
    if (t && gv_tree_insert(t, "fast", gv_tree_clone(params)) == GV_OK &&
        gv_tree_insert(t, "slow", gv_tree_clone(params)) == GV_OK)
        return t;
    gv_tree_free(t);
    return NULL;
}

/* ---- aliases (_src/alias.py) ---- */

static gv_transform *named_chain(const char *name, gv_transform **txs, size_t n) {
    gv_transform *c = gv_chain(txs, n);
    if (c) c->name = name;
    else gv_error_prefix("%s: ", name);
    return c;
}

/* The learning rate, a constant or a schedule (taken over). Refuses both,
 * neither (unless optional, then *none is set) and a constant that is not
 * finite or is negative; on failure frees the schedule. */
static bool lr_check(const char *name, double lr, gv_schedule *sched, bool optional, bool *none) {
    *none = false;
    const char *why = NULL;
    if (sched && lr != 0.0 && !isnan(lr))
        why = "both .learning_rate and .schedule are given; the learning rate is one of them";
    else if (!sched && isnan(lr)) {
        if (optional) *none = true;
        else return gv_tx_no_learning_rate(name), false;
    } else if (!sched && !(isfinite(lr) && lr >= 0)) {
        gv_error(GV_ERR_ARG, "%s: .learning_rate is %g; it must be finite and >= 0", name, lr);
        return false;
    }
    if (why) {
        gv_schedule_free(sched);
        gv_error(GV_ERR_ARG, "%s: %s", name, why);
        return false;
    }
    return true;
}

/* optax.scale_by_learning_rate(learning_rate, flip_sign) for a checked rate */
static gv_transform *lr_part(double lr, gv_schedule *sched, bool flip) {
    if (sched) return flip ? gv_scale_by_learning_rate_schedule(sched) : gv_scale_by_schedule(sched);
    if (flip) return gv_scale_by_learning_rate(lr);
    gv_transform *tx = gv_scale(lr); /* scale(1 * learning_rate) */
    if (tx) tx->hpname[0] = "learning_rate";
    return tx;
}

/* Rename hp slot k of tx (name NULL: not exposed by the alias). */
static gv_transform *renamed(gv_transform *tx, int k, const char *name) {
    if (tx) tx->hpname[k] = name;
    return tx;
}

/* add_decayed_weights(weight_decay, mask) with its slot named as the alias does */
static gv_transform *decay_part(double wd, const gv_tree *mask, const char *name) {
    gv_transform *tx = gv_add_decayed_weights(wd, mask);
    if (tx && mask) renamed(tx->kids[0], 0, name);
    else renamed(tx, 0, name);
    return tx;
}

/* the checks every alias fails with, after the learning rate's */
#define ALIAS_CHECK(cond)           \
    do {                            \
        if (!(cond)) {              \
            gv_schedule_free(sched); \
            return NULL;            \
        }                           \
    } while (0)

gv_rmsprop_opts gv_rmsprop_defaults(void) { return (gv_rmsprop_opts){GV_RMSPROP_DEFAULTS}; }

gv_transform *gv_rmsprop_with(const gv_rmsprop_opts *o) {
    const char *nm = "rmsprop";
    if (!o) return opts_null(nm);
    gv_schedule *sched = o->schedule;
    bool none;
    if (!lr_check(nm, o->learning_rate, sched, false, &none)) return NULL;
    ALIAS_CHECK(check_unit(nm, "decay", o->decay) && check_nonneg(nm, "eps", o->eps) &&
                check_nonneg(nm, "initial_scale", o->initial_scale) &&
                none_or(check_unit, nm, "momentum", o->momentum));
    gv_transform *parts[3];
    if (o->centered) {
        gv_scale_by_stddev_opts s = {o->decay, o->eps, o->initial_scale, o->eps_in_sqrt,
                                     o->bias_correction};
        parts[0] = gv_scale_by_stddev_with(&s);
    } else {
        gv_scale_by_rms_opts s = {o->decay, o->eps, o->initial_scale, o->eps_in_sqrt,
                                  o->bias_correction};
        parts[0] = gv_scale_by_rms_with(&s);
    }
    parts[1] = lr_part(o->learning_rate, sched, true);
    /* the momentum comes AFTER the learning rate (TF's rmsprop, A5) */
    parts[2] = isnan(o->momentum) ? gv_identity()
                                  : renamed(gv_trace_momentum(o->momentum, o->nesterov), 0,
                                            "momentum");
    return named_chain(nm, parts, 3);
}

gv_adagrad_opts gv_adagrad_defaults(void) { return (gv_adagrad_opts){GV_ADAGRAD_DEFAULTS}; }

gv_transform *gv_adagrad_with(const gv_adagrad_opts *o) {
    const char *nm = "adagrad";
    if (!o) return opts_null(nm);
    gv_schedule *sched = o->schedule;
    bool none;
    if (!lr_check(nm, o->learning_rate, sched, false, &none)) return NULL;
    ALIAS_CHECK(check_nonneg(nm, "initial_accumulator_value", o->initial_accumulator_value) &&
                check_nonneg(nm, "eps", o->eps));
    gv_transform *parts[2] = {rss_new(nm, o->initial_accumulator_value, o->eps),
                              lr_part(o->learning_rate, sched, true)};
    return named_chain(nm, parts, 2);
}

gv_adafactor_opts gv_adafactor_defaults(void) {
    return (gv_adafactor_opts){GV_ADAFACTOR_DEFAULTS};
}

gv_transform *gv_adafactor_with(const gv_adafactor_opts *o) {
    const char *nm = "adafactor";
    if (!o) return opts_null(nm);
    gv_schedule *sched = o->schedule;
    bool no_lr;
    if (!lr_check(nm, o->learning_rate, sched, true, &no_lr)) return NULL;
    ALIAS_CHECK(check_nonneg(nm, "decay_rate", o->decay_rate) && check_nonneg(nm, "eps", o->eps) &&
                none_or(check_pos, nm, "clipping_threshold", o->clipping_threshold) &&
                none_or(check_unit, nm, "momentum", o->momentum) &&
                none_or(check_nonneg, nm, "weight_decay_rate", o->weight_decay_rate));
    if (o->min_dim_size_to_factor < 0) {
        gv_schedule_free(sched);
        arg_fail(nm, "min_dim_size_to_factor", o->min_dim_size_to_factor, ">= 0");
        return NULL;
    }
    gv_transform *parts[7];
    size_t n = 0;
    parts[n++] = factored_new(nm, o->factored, o->decay_rate, o->decay_offset,
                              o->min_dim_size_to_factor, o->eps, true);
    if (!isnan(o->clipping_threshold))
        parts[n++] = renamed(gv_clip_by_block_rms(o->clipping_threshold), 0, "clipping_threshold");
    if (!no_lr) parts[n++] = lr_part(o->learning_rate, sched, false); /* +lr: flip_sign=False */
    if (o->multiply_by_parameter_scale) /* adafactor does not expose min_scale */
        parts[n++] = renamed(gv_scale_by_param_block_rms(1e-3), 0, NULL);
    if (!isnan(o->momentum)) /* ema(momentum, debias=False), kept in float32 */
        parts[n++] = renamed(gv_ema(o->momentum, false), 0, "momentum");
    if (!isnan(o->weight_decay_rate))
        parts[n++] = decay_part(o->weight_decay_rate, o->weight_decay_mask, "weight_decay_rate");
    parts[n++] = renamed(gv_scale(-1.0), 0, NULL); /* gradient descent: follow -g */
    return named_chain(nm, parts, n);
}

gv_lion_opts gv_lion_defaults(void) { return (gv_lion_opts){GV_LION_DEFAULTS}; }

gv_transform *gv_lion_with(const gv_lion_opts *o) {
    const char *nm = "lion";
    if (!o) return opts_null(nm);
    gv_schedule *sched = o->schedule;
    bool none;
    if (!lr_check(nm, o->learning_rate, sched, false, &none)) return NULL;
    ALIAS_CHECK(lion_args(nm, o->b1, o->b2) && check_nonneg(nm, "weight_decay", o->weight_decay));
    gv_scale_by_lion_opts l = {o->b1, o->b2, GV_LION_HARD, 1.0};
    gv_transform *parts[3] = {renamed(gv_scale_by_lion_with(&l), 2, NULL),
                              decay_part(o->weight_decay, o->mask, "weight_decay"),
                              lr_part(o->learning_rate, sched, true)};
    return named_chain(nm, parts, 3);
}

gv_lamb_opts gv_lamb_defaults(void) { return (gv_lamb_opts){GV_LAMB_DEFAULTS}; }

gv_transform *gv_lamb_with(const gv_lamb_opts *o) {
    const char *nm = "lamb";
    if (!o) return opts_null(nm);
    gv_schedule *sched = o->schedule;
    bool none;
    if (!lr_check(nm, o->learning_rate, sched, false, &none)) return NULL;
    ALIAS_CHECK(adam_like_args(nm, o->b1, o->b2, o->eps, o->eps_root) &&
                check_nonneg(nm, "weight_decay", o->weight_decay));
    gv_scale_by_adam_opts a = {o->b1, o->b2, o->eps, o->eps_root, false};
    gv_scale_by_trust_ratio_opts t = {GV_SCALE_BY_TRUST_RATIO_DEFAULTS};
    gv_transform *trust = gv_scale_by_trust_ratio_with(&t);
    for (int k = 0; trust && k < 3; k++) trust->hpname[k] = NULL; /* lamb does not expose them */
    gv_transform *parts[4] = {gv_scale_by_adam_with(&a),
                              decay_part(o->weight_decay, o->mask, "weight_decay"), trust,
                              lr_part(o->learning_rate, sched, true)};
    return named_chain(nm, parts, 4);
}

gv_adabelief_opts gv_adabelief_defaults(void) {
    return (gv_adabelief_opts){GV_ADABELIEF_DEFAULTS};
}

gv_transform *gv_adabelief_with(const gv_adabelief_opts *o) {
    const char *nm = "adabelief";
    if (!o) return opts_null(nm);
    gv_schedule *sched = o->schedule;
    bool none;
    if (!lr_check(nm, o->learning_rate, sched, false, &none)) return NULL;
    ALIAS_CHECK(adam_like_args(nm, o->b1, o->b2, o->eps, o->eps_root));
    gv_scale_by_belief_opts b = {o->b1, o->b2, o->eps, o->eps_root, o->nesterov};
    gv_transform *parts[2] = {gv_scale_by_belief_with(&b), lr_part(o->learning_rate, sched, true)};
    return named_chain(nm, parts, 2);
}

gv_adamax_opts gv_adamax_defaults(void) { return (gv_adamax_opts){GV_ADAMAX_DEFAULTS}; }

gv_transform *gv_adamax_with(const gv_adamax_opts *o) {
    const char *nm = "adamax";
    if (!o) return opts_null(nm);
    gv_schedule *sched = o->schedule;
    bool none;
    if (!lr_check(nm, o->learning_rate, sched, false, &none)) return NULL;
    ALIAS_CHECK(adam_like_args(nm, o->b1, o->b2, o->eps, GV_NONE));
    gv_scale_by_adamax_opts a = {o->b1, o->b2, o->eps};
    gv_transform *parts[2] = {gv_scale_by_adamax_with(&a), lr_part(o->learning_rate, sched, true)};
    return named_chain(nm, parts, 2);
}
