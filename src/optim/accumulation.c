/* Accumulation: ema and MultiSteps (gradient accumulation).
 * Optax: transforms/_accumulation.py, tree_utils/_tree_math.py (reference
 * A9, A10). */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "optim_internal.h"

gv_value gv_tx_isfinite(gv_value x) {
    /* |x| < inf is false exactly for NaN and +-Inf */
    return gv_lt(gv_abs(x), gv_full_like(x, INFINITY));
}

gv_tree *gv_tx_zeros_tree(const gv_transform *tx, gv_graph *g, const gv_tree *t, int dtype) {
    gv_value *v;
    size_t n;
    if (gv_tx_leaves(t, &v, &n, NULL) != GV_OK) {
        gv_tx_fail(tx, g, gv_last_status(), "%s", gv_last_error());
        return NULL;
    }
    for (size_t i = 0; i < n; i++)
        v[i] = dtype < 0 ? gv_zeros_like(v[i])
                         : gv_full(g, (gv_dtype)dtype, gv_value_rank(v[i]), gv_value_shape(v[i]), 0.0);
    gv_tree *z = gv_tx_rebuild(t, v);
    free(v);
    return z;
}

/* ---- ema ---- */

static gv_tree *ema_init(const gv_transform *tx, gv_graph *g, const gv_tree *params) {
    return gv_tx_dict_take(2, (const char *[]){"count", "ema"},
                     (gv_tree *[]){gv_tx_value_leaf(gv_tx_zero_count(g)),
                                   gv_tx_zeros_tree(tx, g, params, -1)});
}

static gv_status ema_update(const gv_transform *tx, gv_graph *g, const gv_tree *updates,
                            const gv_tree *state, const gv_tree *params, gv_tree **nu,
                            gv_tree **ns) {
    gv_value count;
    if (gv_tx_count(tx, g, state, &count) != GV_OK) return gv_last_status();
    const gv_tree *et = gv_tx_field(tx, g, state, "ema");
    if (!et || gv_tx_check_like(tx, g, "updates", updates, "state.ema", et, false) != GV_OK)
        return gv_last_status();
    gv_value *u = NULL, *e = NULL;
    size_t n, m;
    gv_status st = gv_tx_leaves(updates, &u, &n, NULL);
    if (st == GV_OK) st = gv_tx_leaves(et, &e, &m, NULL);
    if (st != GV_OK) {
        free(u), free(e);
        return gv_tx_fail(tx, g, st, "%s", gv_last_error());
    }
    gv_value c = gv_tx_safe_increment(count);
    /* decay**count: a float32 pow of the weak decay by the int32 count */
    gv_value bc = gv_sub(gv_scalar(g, GV_F32, 1.0), gv_pow(gv_tx_hp(tx, g, 0, GV_F32), gv_cast(c, GV_F32)));
    for (size_t i = 0; i < n; i++) {
        gv_dtype dt = gv_value_dtype(u[i]);
        /* update_moment(order=1): (1 - decay) * u + decay * e (u**1 is u) */
        gv_value ne = gv_add(gv_mul(gv_tx_hp_1m(tx, g, 0, dt), u[i]),
                             gv_mul(gv_tx_hp(tx, g, 0, dt), gv_cast(e[i], dt)));
        u[i] = tx->flag ? gv_div(ne, gv_cast(bc, dt)) : ne;
        e[i] = gv_cast(ne, gv_value_dtype(e[i]));
    }
    gv_tree *out = gv_tx_rebuild(updates, u), *ema = gv_tx_rebuild(et, e);
    free(u), free(e);
    gv_tree *s = gv_tx_dict_take(2, (const char *[]){"count", "ema"}, (gv_tree *[]){gv_tx_value_leaf(c), ema});
    return gv_tx_finish(out, s, nu, ns);
}

gv_transform *gv_ema(double decay, bool debias) {
    if (!isfinite(decay)) {
        gv_error(GV_ERR_ARG, "ema: decay is %g; it must be finite", decay);
        return NULL;
    }
    gv_transform *tx = gv_tx_new("ema", ema_init, ema_update);
    if (tx) gv_tx_hp_set(tx, 0, "decay", decay), tx->flag = debias;
    return tx;
}

/* ---- MultiSteps ---- */

typedef struct ms_cfg {
    gv_multi_steps_opts o;
} ms_cfg;

/* k = every_k(gradient_step), an int32 scalar */
static gv_value every_k(const gv_transform *tx, gv_graph *g, gv_value gradient_step) {
    const ms_cfg *c = (const ms_cfg *)tx->cfg;
    if (!c->o.every_k_fn) return gv_scalar(g, GV_I32, (double)c->o.every_k);
    gv_value k = c->o.every_k_fn(gradient_step, c->o.every_k_userdata);
    if (gv_value_ok(k) && (gv_value_dtype(k) != GV_I32 || gv_value_rank(k) != 0)) {
        gv_tx_fail(tx, g, GV_ERR_DTYPE, "every_k_fn must return an int32 scalar, got %s[rank %d]",
                   gv_dtype_name(gv_value_dtype(k)), gv_value_rank(k));
        return (gv_value){g, -1};
    }
    return k;
}

/* The skip test on the raw updates: *skip (bool scalar) and skip_state. */
static gv_tree *skip_test(const gv_transform *tx, gv_graph *g, const gv_value *u, size_t n,
                          gv_value *skip) {
    const ms_cfg *c = (const ms_cfg *)tx->cfg;
    switch (c->o.skip) {
    case GV_SKIP_NOT_FINITE: {
        /* sum over leaves of sum(!isfinite(u)), int32 */
        gv_value cnt = gv_scalar(g, GV_I32, 0.0);
        for (size_t i = 0; i < n; i++) {
            gv_value bad = gv_select(gv_tx_isfinite(u[i]), gv_zeros_like(gv_cast(u[i], GV_I32)),
                                     gv_ones_like(gv_cast(u[i], GV_I32)));
            gv_value s = gv_sum(bad, NULL, 0, false);
            cnt = i ? gv_add(cnt, s) : s;
        }
        *skip = gv_gt(cnt, gv_scalar(g, GV_I32, 0.0));
        return gv_tx_dict_take(2, (const char *[]){"num_not_finite", "should_skip"},
                         (gv_tree *[]){gv_tx_value_leaf(cnt), gv_tx_value_leaf(*skip)});
    }
    case GV_SKIP_LARGE_UPDATES: {
        gv_value nsq = gv_tx_global_norm_sq(u, n, g);
        /* logical_not(norm_sq < max): NaN skips */
        gv_value ok = gv_lt(nsq, gv_scalar(g, gv_value_dtype(nsq), c->o.max_squared_norm));
        *skip = gv_eq(ok, gv_full_like(ok, 0.0));
        return gv_tx_dict_take(2, (const char *[]){"norm_squared", "should_skip"},
                         (gv_tree *[]){gv_tx_value_leaf(nsq), gv_tx_value_leaf(*skip)});
    }
    default:
        *skip = gv_scalar(g, GV_BOOL, 0.0);
        return gv_tree_new_tuple();
    }
}

static const char *const MS_KEYS[5] = {"acc_grads", "gradient_step", "inner_opt_state",
                                       "mini_step", "skip_state"};

static gv_tree *ms_init(const gv_transform *tx, gv_graph *g, const gv_tree *params) {
    gv_value *p;
    size_t n;
    if (gv_tx_leaves(params, &p, &n, NULL) != GV_OK) {
        gv_tx_fail(tx, g, gv_last_status(), "params: %s", gv_last_error());
        return NULL;
    }
    /* skip_state's shape comes from the skip test on zero updates */
    for (size_t i = 0; i < n; i++) p[i] = gv_zeros_like(p[i]);
    gv_value skip;
    gv_tree *skip_state = skip_test(tx, g, p, n, &skip);
    free(p);
    gv_tree *inner = gv_tx_init_inner(tx->kids[0], g, params);
    return gv_tx_dict_take(5, MS_KEYS,
                     (gv_tree *[]){gv_tx_zeros_tree(tx, g, params, GV_F32),
                                   gv_tx_value_leaf(gv_tx_zero_count(g)), inner,
                                   gv_tx_value_leaf(gv_tx_zero_count(g)), skip_state});
}

/* An int32 scalar field of the state. */
static gv_status int_field(const gv_transform *tx, gv_graph *g, const gv_tree *state,
                           const char *name, gv_value *v) {
    const gv_tree *f = gv_tx_field(tx, g, state, name);
    if (!f) return gv_last_status();
    *v = gv_tree_leaf_value(f);
    if (!gv_value_ok(*v) || gv_value_dtype(*v) != GV_I32 || gv_value_rank(*v) != 0)
        return gv_tx_fail(tx, g, GV_ERR_DTYPE, "state.%s must be an int32 scalar", name);
    return GV_OK;
}

static gv_status ms_update(const gv_transform *tx, gv_graph *g, const gv_tree *updates,
                           const gv_tree *state, const gv_tree *params, gv_tree **nu,
                           gv_tree **ns) {
    const ms_cfg *c = (const ms_cfg *)tx->cfg;
    gv_value mini, gstep;
    if (int_field(tx, g, state, "mini_step", &mini) != GV_OK ||
        int_field(tx, g, state, "gradient_step", &gstep) != GV_OK)
        return gv_last_status();
    const gv_tree *acc_t = gv_tx_field(tx, g, state, "acc_grads");
    const gv_tree *inner_s = acc_t ? gv_tx_field(tx, g, state, "inner_opt_state") : NULL;
    if (!inner_s || !gv_tx_field(tx, g, state, "skip_state") ||
        gv_tx_check_like(tx, g, "updates", updates, "state.acc_grads", acc_t, false) != GV_OK)
        return gv_last_status();
    gv_value *u = NULL, *acc = NULL, *is_old = NULL, *is_new = NULL, *iu = NULL;
    size_t n, m, ns_old, ns_new, niu;
    gv_tree *inner_u = NULL, *inner_state = NULL, *acc_in = NULL, *skip_state = NULL;
    gv_tree *out = NULL, *s = NULL;
    gv_status st = gv_tx_leaves(updates, &u, &n, NULL);
    if (st == GV_OK) st = gv_tx_leaves(acc_t, &acc, &m, NULL);
    if (st != GV_OK) goto done;

    gv_value k = every_k(tx, g, gstep);
    gv_value skip;
    skip_state = skip_test(tx, g, u, n, &skip);
    /* the accumulation (float32), and the inner update on it (every mini-step) */
    gv_value *nacc = malloc((n ? n : 1) * sizeof *nacc);
    if (!nacc) {
        st = gv_tx_fail(tx, g, GV_ERR_NOMEM, "out of memory");
        goto done;
    }
    gv_value n1 = gv_cast(gv_add_scalar(mini, 1.0), GV_F32);
    for (size_t i = 0; i < n; i++) {
        gv_value gi = gv_cast(u[i], gv_value_dtype(acc[i]));
        nacc[i] = c->o.use_grad_mean
                      ? gv_add(acc[i], gv_div(gv_sub(gi, acc[i]), gv_cast(n1, gv_value_dtype(acc[i]))))
                      : gv_add(gi, acc[i]);
        acc[i] = nacc[i];
        nacc[i] = gv_cast(nacc[i], gv_value_dtype(u[i])); /* cast_like(acc, updates) */
    }
    acc_in = gv_tx_rebuild(updates, nacc);
    free(nacc);
    if (!acc_in) {
        st = gv_last_status();
        goto done;
    }
    st = gv_tx_update_inner(tx->kids[0], g, acc_in, inner_s, params, &inner_u, &inner_state);
    if (st == GV_OK) st = gv_tx_leaves(inner_s, &is_old, &ns_old, NULL);
    if (st == GV_OK) st = gv_tx_leaves(inner_state, &is_new, &ns_new, NULL);
    if (st == GV_OK) st = gv_tx_leaves(inner_u, &iu, &niu, NULL);
    if (st == GV_OK && (ns_old != ns_new || !gv_tree_structure_equal(inner_s, inner_state)))
        st = gv_tx_fail(tx, g, GV_ERR_STRUCTURE,
                        "the inner transformation's state changed structure in an update");
    if (st != GV_OK) goto done;

    gv_value emit = gv_eq(mini, gv_sub(k, gv_scalar(g, GV_I32, 1.0)));
    gv_value emit_i = gv_cast(emit, GV_I32);
    gv_value keep_i = gv_sub(gv_scalar(g, GV_I32, 1.0), emit_i); /* 1 - emit */
    /* safe_increment(mini) % k for 0 <= mini + 1, k >= 1: a - (a / k) * k */
    gv_value a = gv_tx_safe_increment(mini);
    gv_value mini2 = gv_sub(a, gv_mul(gv_div(a, k), k));
    gv_value gstep2 = gv_add(gv_mul(emit_i, gv_tx_safe_increment(gstep)), gv_mul(keep_i, gstep));
    for (size_t i = 0; i < ns_old; i++) /* where(emit, new, old), old dtype */
        is_new[i] = gv_cast(gv_select(emit, is_new[i], is_old[i]), gv_value_dtype(is_old[i]));
    for (size_t i = 0; i < m; i++) /* (1 - emit) * acc, a multiplication (NaN stays) */
        acc[i] = gv_cast(gv_mul(gv_cast(keep_i, gv_value_dtype(acc[i])), acc[i]), GV_F32);
    for (size_t i = 0; i < niu; i++) /* emit * inner update: zeros in between */
        iu[i] = gv_mul(gv_cast(emit, gv_value_dtype(iu[i])), iu[i]);

    /* a skipped mini-step: zeros, and everything but skip_state unchanged */
    gv_value *acc_old = NULL;
    size_t m2;
    if (gv_tx_leaves(acc_t, &acc_old, &m2, NULL) != GV_OK) {
        st = gv_tx_fail(tx, g, gv_last_status(), "%s", gv_last_error());
        goto done;
    }
    for (size_t i = 0; i < niu; i++) iu[i] = gv_select(skip, gv_zeros_like(iu[i]), iu[i]);
    for (size_t i = 0; i < ns_old; i++) is_new[i] = gv_select(skip, is_old[i], is_new[i]);
    for (size_t i = 0; i < m; i++) acc[i] = gv_select(skip, acc_old[i], acc[i]);
    mini2 = gv_select(skip, mini, mini2);
    gstep2 = gv_select(skip, gstep, gstep2);
    free(acc_old);

    out = gv_tx_rebuild(inner_u, iu);
    s = gv_tx_dict_take(5, MS_KEYS,
                  (gv_tree *[]){gv_tx_rebuild(acc_t, acc), gv_tx_value_leaf(gstep2),
                                gv_tx_rebuild(inner_s, is_new), gv_tx_value_leaf(mini2), skip_state});
    skip_state = NULL;
    if (gv_graph_status(g) != GV_OK) st = gv_error(gv_graph_status(g), "%s", gv_graph_error(g));
done:
    free(u), free(acc), free(is_old), free(is_new), free(iu);
    gv_tree_free(inner_u), gv_tree_free(inner_state), gv_tree_free(acc_in), gv_tree_free(skip_state);
    if (st != GV_OK) {
        gv_tree_free(out), gv_tree_free(s);
        return st;
    }
    return gv_tx_finish(out, s, nu, ns);
}

gv_multi_steps_opts gv_multi_steps_defaults(void) {
    return (gv_multi_steps_opts){GV_MULTI_STEPS_DEFAULTS};
}

gv_transform *gv_multi_steps_with(gv_transform *inner, const gv_multi_steps_opts *o) {
    const char *why = !inner ? "inner is NULL (a failed constructor?)" : !o ? "opts is NULL" : NULL;
    if (!why && !o->every_k_fn && o->every_k < 1) why = "every_k must be >= 1 (or give .every_k_fn)";
    if (!why && o->every_k_fn && o->every_k != 0) why = "give one of .every_k and .every_k_fn";
    if (!why && o->skip != GV_SKIP_NONE && o->skip != GV_SKIP_NOT_FINITE &&
        o->skip != GV_SKIP_LARGE_UPDATES)
        why = ".skip is not a gv_skip_kind";
    if (!why && o->skip == GV_SKIP_LARGE_UPDATES && isnan(o->max_squared_norm))
        why = ".skip = GV_SKIP_LARGE_UPDATES needs .max_squared_norm";
    if (why) {
        if (!inner) gv_tx_null_arg("MultiSteps", "inner");
        else if (!o->every_k_fn && o->every_k == 0)
            gv_error(GV_ERR_ARG, "MultiSteps: no .every_k: give .every_k (>= 1) or .every_k_fn");
        else if (!o->every_k_fn && o->every_k < 1)
            gv_error(GV_ERR_ARG, "MultiSteps: .every_k is %d; it must be >= 1", (int)o->every_k);
        else gv_error(GV_ERR_ARG, "MultiSteps: %s", why);
        gv_transform_free(inner);
        return NULL;
    }
    gv_transform *tx = gv_tx_new("MultiSteps", ms_init, ms_update);
    ms_cfg *c = tx ? malloc(sizeof *c) : NULL;
    if (tx) tx->kids = malloc(sizeof *tx->kids);
    if (!c || !tx->kids) {
        if (tx) free(tx->kids), free(tx);
        free(c);
        gv_transform_free(inner);
        gv_error(GV_ERR_NOMEM, "MultiSteps: out of memory");
        return NULL;
    }
    c->o = *o;
    tx->cfg = c;
    tx->free_cfg = free;
    tx->kids[0] = inner;
    tx->nkids = 1;
    return tx;
}

gv_status gv_multi_steps_has_updated(const gv_tree *state, bool *out) {
    if (!state || !out) return gv_error(GV_ERR_ARG, "MultiSteps.has_updated: %s is NULL",
                                        state ? "out" : "state");
    double v[2];
    const char *names[2] = {"mini_step", "gradient_step"};
    for (int i = 0; i < 2; i++) {
        const gv_tree *f = gv_tree_kind_of(state) == GV_TREE_DICT && gv_tree_contains(state, names[i])
                               ? gv_tree_child_by_key(state, names[i]) : NULL;
        gv_tensor *t = f && gv_tree_is_leaf(f) && gv_tree_leaf_kind(f) == GV_LEAF_TENSOR
                           ? gv_tree_leaf_tensor(f) : NULL;
        if (!t || gv_tensor_size(t) != 1 || gv_tensor_get_flat(t, 0, &v[i]) != GV_OK)
            return gv_error(GV_ERR_STRUCTURE,
                            "MultiSteps.has_updated: the state has no scalar '%s' (pass the "
                            "MultiSteps state itself, e.g. the train state's opt_state)",
                            names[i]);
    }
    *out = v[0] == 0 && v[1] > 0;
    return GV_OK;
}
