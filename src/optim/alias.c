/* Stateful transformations (trace, scale_by_adam, scale_by_schedule,
 * add_decayed_weights) and the optimiser aliases built from them (sgd,
 * adam, nadam, adamw). Optax: _src/transform.py, _src/alias.py,
 * transforms/_accumulation.py, transforms/_adding.py (reference A4-A7). */
#include <math.h>
#include <stdlib.h>

#include "core/error.h"
#include "optim_internal.h"

static gv_status finish(gv_tree *u, gv_tree *s, gv_tree **nu, gv_tree **ns) {
    if (!u || !s) { /* the constructor that failed set the error */
        gv_tree_free(u), gv_tree_free(s);
        return gv_last_status() != GV_OK ? gv_last_status()
               : gv_error(GV_ERR_INTERNAL, "an update was not built and no error was set");
    }
    *nu = u, *ns = s;
    return GV_OK;
}

static gv_tree *empty_init(const gv_transform *tx, gv_graph *g, const gv_tree *params) {
    return gv_tree_new_tuple();
}

/* zeros_like(params) as a tree of values */
static gv_tree *zeros_like_tree(const gv_transform *tx, gv_graph *g, const gv_tree *params) {
    gv_value *p;
    size_t n;
    if (gv_tx_leaves(params, &p, &n, NULL) != GV_OK) {
        gv_tx_fail(tx, g, gv_last_status(), "params: %s", gv_last_error());
        return NULL;
    }
    for (size_t i = 0; i < n; i++) p[i] = gv_zeros_like(p[i]);
    gv_tree *z = gv_tx_rebuild(params, p);
    free(p);
    return z;
}

/* ---- trace (transforms/_accumulation.py, A5) ---- */

static gv_tree *trace_init(const gv_transform *tx, gv_graph *g, const gv_tree *params) {
    gv_tree *z = zeros_like_tree(tx, g, params), *s = gv_tree_new_dict();
    if (!z || !s || gv_tree_insert(s, "trace", z) != GV_OK) {
        gv_tree_free(s);
        return NULL;
    }
    return s;
}

static gv_status trace_update(const gv_transform *tx, gv_graph *g, const gv_tree *updates,
                              const gv_tree *state, const gv_tree *params, gv_tree **nu,
                              gv_tree **ns) {
    const gv_tree *tr = gv_tx_field(tx, g, state, "trace");
    if (!tr || gv_tx_check_like(tx, g, "updates", updates, "state.trace", tr, true) != GV_OK)
        return gv_last_status();
    gv_value *u, *t;
    size_t n, m;
    if (gv_tx_leaves(updates, &u, &n, NULL) != GV_OK) return gv_last_status();
    if (gv_tx_leaves(tr, &t, &m, NULL) != GV_OK) {
        free(u);
        return gv_last_status();
    }
    for (size_t i = 0; i < n; i++) {
        /* f(g, t) = g + decay * t; nesterov: f(g, f(g, t)) */
        gv_value decay = gv_tx_hp(tx, g, 0, gv_value_dtype(t[i]));
        t[i] = gv_add(u[i], gv_mul(decay, t[i]));
        u[i] = tx->flag ? gv_add(u[i], gv_mul(decay, t[i])) : t[i];
    }
    gv_tree *out = gv_tx_rebuild(updates, u), *trace = gv_tx_rebuild(tr, t);
    free(u), free(t);
    gv_tree *s = gv_tree_new_dict();
    if (trace && s && gv_tree_insert(s, "trace", trace) == GV_OK) trace = NULL;
    else gv_tree_free(s), s = NULL;
    gv_tree_free(trace);
    return finish(out, s, nu, ns);
}

gv_transform *gv_trace_momentum(double decay, bool nesterov) {
    gv_transform *tx = gv_tx_new("trace", trace_init, trace_update);
    if (tx) gv_tx_hp_set(tx, 0, "decay", decay), tx->flag = nesterov;
    return tx;
}

/* ---- scale_by_adam (_src/transform.py, A6) ---- */

static gv_tree *adam_init(const gv_transform *tx, gv_graph *g, const gv_tree *params) {
    gv_tree *s = gv_tree_new_dict();
    gv_tree *mu = zeros_like_tree(tx, g, params), *nu = mu ? zeros_like_tree(tx, g, params) : NULL;
    if (!s || !mu || !nu || gv_tree_insert_value(s, "count", gv_tx_zero_count(g)) != GV_OK) {
        gv_tree_free(s), gv_tree_free(mu), gv_tree_free(nu);
        return NULL;
    }
    gv_status st = gv_tree_insert(s, "mu", mu);
    if (st != GV_OK) gv_tree_free(nu);
    else st = gv_tree_insert(s, "nu", nu);
    if (st != GV_OK) {
        gv_tree_free(s);
        return NULL;
    }
    return s;
}

/* optax's tree_bias_correction: t / cast(1 - decay**count, t.dtype), with
 * decay**count a float32 pow (weak Python float ** int32 array, A6.2). */
static gv_value bias_correction(gv_value t, gv_value decay, gv_value countf) {
    gv_value p = gv_pow(decay, countf);
    gv_value bc = gv_sub(gv_scalar(t.graph, GV_F32, 1.0), p);
    return gv_div(t, gv_cast(bc, gv_value_dtype(t)));
}

static gv_status adam_update(const gv_transform *tx, gv_graph *g, const gv_tree *updates,
                             const gv_tree *state, const gv_tree *params, gv_tree **nu_out,
                             gv_tree **ns) {
    gv_value count;
    if (gv_tx_count(tx, g, state, &count) != GV_OK) return gv_last_status();
    const gv_tree *mut = gv_tx_field(tx, g, state, "mu");
    const gv_tree *nut = mut ? gv_tx_field(tx, g, state, "nu") : NULL;
    if (!nut || gv_tx_check_like(tx, g, "updates", updates, "state.mu", mut, true) != GV_OK ||
        gv_tx_check_like(tx, g, "updates", updates, "state.nu", nut, true) != GV_OK)
        return gv_last_status();
    gv_value *u = NULL, *m = NULL, *v = NULL;
    size_t n, n2, n3;
    gv_status st = gv_tx_leaves(updates, &u, &n, NULL);
    if (st == GV_OK) st = gv_tx_leaves(mut, &m, &n2, NULL);
    if (st == GV_OK) st = gv_tx_leaves(nut, &v, &n3, NULL);
    if (st != GV_OK) {
        free(u), free(m), free(v);
        return st;
    }
    gv_value c = gv_tx_safe_increment(count);
    gv_value cf = gv_cast(c, GV_F32);
    gv_value cf1 = tx->flag ? gv_cast(gv_tx_safe_increment(c), GV_F32) : cf;
    /* the decays as float32 scalars for the bias correction's pow */
    gv_value b1p = gv_tx_hp(tx, g, 0, GV_F32), b2p = gv_tx_hp(tx, g, 1, GV_F32);
    for (size_t i = 0; i < n; i++) {
        gv_value gr = u[i];
        gv_dtype dt = gv_value_dtype(gr);
        gv_value b1 = gv_tx_hp(tx, g, 0, dt), b2 = gv_tx_hp(tx, g, 1, dt);
        gv_value omb1 = gv_tx_hp_1m(tx, g, 0, dt), omb2 = gv_tx_hp_1m(tx, g, 1, dt);
        /* (1 - decay) * g**order + decay * t, with 1 - decay on the Python
         * float (rounded once) and g**2 an exact square (lax.integer_pow) */
        m[i] = gv_add(gv_mul(omb1, gr), gv_mul(b1, m[i]));
        v[i] = gv_add(gv_mul(omb2, gv_mul(gr, gr)), gv_mul(b2, v[i]));
        gv_value mu_hat;
        if (tx->flag) /* b1 * bc(mu, c+1) + (1 - b1) * bc(g, c) */
            mu_hat = gv_add(gv_mul(b1, bias_correction(m[i], b1p, cf1)),
                            gv_mul(omb1, bias_correction(gr, b1p, cf)));
        else
            mu_hat = bias_correction(m[i], b1p, cf);
        gv_value nu_hat = bias_correction(v[i], b2p, cf);
        /* eps outside the sqrt, eps_root inside (A6.1) */
        u[i] = gv_div(mu_hat, gv_add(gv_sqrt(gv_add(nu_hat, gv_tx_hp(tx, g, 3, dt))),
                                     gv_tx_hp(tx, g, 2, dt)));
    }
    gv_tree *out = gv_tx_rebuild(updates, u);
    gv_tree *s = gv_tree_new_dict(), *mt = gv_tx_rebuild(mut, m), *vt = gv_tx_rebuild(nut, v);
    free(u), free(m), free(v);
    st = s && mt && vt ? gv_tree_insert_value(s, "count", c) : GV_ERR_NOMEM;
    if (st == GV_OK) st = gv_tree_insert(s, "mu", mt), mt = NULL;
    if (st == GV_OK) st = gv_tree_insert(s, "nu", vt), vt = NULL;
    gv_tree_free(mt), gv_tree_free(vt);
    if (st != GV_OK) gv_tree_free(s), s = NULL;
    return finish(out, s, nu_out, ns);
}

gv_scale_by_adam_opts gv_scale_by_adam_defaults(void) {
    return (gv_scale_by_adam_opts){GV_SCALE_BY_ADAM_DEFAULTS};
}

gv_transform *gv_scale_by_adam_with(const gv_scale_by_adam_opts *o) {
    if (!o) {
        gv_error(GV_ERR_ARG, "scale_by_adam: opts is NULL");
        return NULL;
    }
    gv_transform *tx = gv_tx_new("scale_by_adam", adam_init, adam_update);
    if (tx) {
        gv_tx_hp_set(tx, 0, "b1", o->b1), gv_tx_hp_set(tx, 1, "b2", o->b2);
        gv_tx_hp_set(tx, 2, "eps", o->eps), gv_tx_hp_set(tx, 3, "eps_root", o->eps_root);
        tx->flag = o->nesterov;
    }
    return tx;
}

/* ---- scale_by_schedule (_src/transform.py, A4) ---- */

static gv_tree *sched_init(const gv_transform *tx, gv_graph *g, const gv_tree *params) {
    gv_tree *s = gv_tree_new_dict();
    if (s && gv_tree_insert_value(s, "count", gv_tx_zero_count(g)) != GV_OK) {
        gv_tree_free(s);
        return NULL;
    }
    return s;
}

static gv_status sched_update(const gv_transform *tx, gv_graph *g, const gv_tree *updates,
                              const gv_tree *state, const gv_tree *params, gv_tree **nu,
                              gv_tree **ns) {
    gv_value count;
    if (gv_tx_count(tx, g, state, &count) != GV_OK) return gv_last_status();
    /* the step size at the count BEFORE incrementing: the first update uses fn(0) */
    gv_value step = gv_schedule_value(tx->sched, count);
    if (tx->flag) step = gv_neg(step); /* scale_by_learning_rate: -lr(count) */
    gv_value *u;
    size_t n;
    if (gv_tx_leaves(updates, &u, &n, NULL) != GV_OK)
        return gv_tx_fail(tx, g, gv_last_status(), "updates: %s", gv_last_error());
    for (size_t i = 0; i < n; i++) u[i] = gv_mul(gv_cast(step, gv_value_dtype(u[i])), u[i]);
    gv_tree *out = gv_tx_rebuild(updates, u);
    free(u);
    gv_tree *s = gv_tree_new_dict();
    if (s && gv_tree_insert_value(s, "count", gv_tx_safe_increment(count)) != GV_OK)
        gv_tree_free(s), s = NULL;
    return finish(out, s, nu, ns);
}

static gv_transform *sched_tx(const char *name, gv_schedule *sched, bool flip) {
    if (!sched) {
        gv_tx_null_arg(name, "the schedule");
        return NULL;
    }
    gv_transform *tx = gv_tx_new(name, sched_init, sched_update);
    if (!tx) {
        gv_schedule_free(sched);
        return NULL;
    }
    tx->sched = sched, tx->flag = flip;
    return tx;
}

gv_transform *gv_scale_by_schedule(gv_schedule *step_size_fn) {
    return sched_tx("scale_by_schedule", step_size_fn, false);
}

gv_transform *gv_scale_by_learning_rate_schedule(gv_schedule *learning_rate) {
    return sched_tx("scale_by_learning_rate", learning_rate, true);
}

/* ---- add_decayed_weights (transforms/_adding.py, A7) ---- */

static gv_status decay_update(const gv_transform *tx, gv_graph *g, const gv_tree *updates,
                              const gv_tree *state, const gv_tree *params, gv_tree **nu,
                              gv_tree **ns) {
    if (gv_tx_check_empty(tx, g, state) != GV_OK) return gv_last_status();
    if (!params)
        return gv_tx_fail(tx, g, GV_ERR_ARG,
                          "this transformation requires the current value of the parameters, "
                          "but params is NULL: pass params to gv_transform_update");
    if (gv_tx_check_like(tx, g, "updates", updates, "params", params, false) != GV_OK)
        return gv_last_status();
    /* optax skips the computation for a Python 0.0 (not for an injected one) */
    if (tx->hp[0] == 0.0 && !gv_tx_hp_injected(tx, 0))
        return finish(gv_tree_clone(updates), gv_tree_new_tuple(), nu, ns);
    gv_value *u = NULL, *p = NULL;
    size_t n, m;
    gv_status st = gv_tx_leaves(updates, &u, &n, NULL);
    if (st == GV_OK) st = gv_tx_leaves(params, &p, &m, NULL);
    if (st != GV_OK) {
        free(u), free(p);
        return st;
    }
    for (size_t i = 0; i < n; i++) {
        gv_value pi = gv_value_dtype(p[i]) == gv_value_dtype(u[i]) ? p[i]
                                                                   : gv_cast(p[i], gv_value_dtype(u[i]));
        u[i] = gv_add(u[i], gv_mul(gv_tx_hp(tx, g, 0, gv_value_dtype(pi)), pi)); /* g + wd * p */
    }
    gv_tree *out = gv_tx_rebuild(updates, u);
    free(u), free(p);
    return finish(out, gv_tree_new_tuple(), nu, ns);
}

gv_transform *gv_add_decayed_weights(double weight_decay, const gv_tree *mask) {
    gv_transform *tx = gv_tx_new("add_decayed_weights", empty_init, decay_update);
    if (tx) gv_tx_hp_set(tx, 0, "weight_decay", weight_decay);
    return tx && mask ? gv_masked(tx, mask) : tx;
}

/* ---- aliases (_src/alias.py) ---- */

static gv_transform *named_chain(const char *name, gv_transform **txs, size_t n) {
    gv_transform *c = gv_chain(txs, n);
    if (c) c->name = name;
    else gv_error_prefix("%s: ", name);
    return c;
}

/* optax's scale_by_learning_rate(learning_rate) for the one learning-rate
 * argument, a float or a schedule: the schedule if given (taken over),
 * else the constant, which must then have been given and be finite. */
static gv_transform *learning_rate_part(const char *name, double lr, gv_schedule *sched) {
    if (sched) {
        if (lr != 0.0 && !isnan(lr)) {
            gv_schedule_free(sched);
            gv_error(GV_ERR_ARG,
                     "%s: both .learning_rate (%g) and .schedule are given; the learning rate "
                     "is one of them",
                     name, lr);
            return NULL;
        }
        return gv_scale_by_learning_rate_schedule(sched);
    }
    if (isnan(lr)) {
        gv_tx_no_learning_rate(name);
        return NULL;
    }
    if (isinf(lr) || lr < 0) {
        /* optax accepts a negative rate (which ascends the loss); here it
         * is refused as the sign mistake it almost always is */
        gv_error(GV_ERR_ARG, "%s: .learning_rate is %g; it must be finite and >= 0", name, lr);
        return NULL;
    }
    return gv_scale_by_learning_rate(lr);
}

gv_sgd_opts gv_sgd_defaults(void) { return (gv_sgd_opts){GV_SGD_DEFAULTS}; }

gv_transform *gv_sgd_with(const gv_sgd_opts *o) {
    if (!o) {
        gv_error(GV_ERR_ARG, "sgd: opts is NULL");
        return NULL;
    }
    gv_transform *lr = learning_rate_part("sgd", o->learning_rate, o->schedule);
    if (!lr) return NULL;
    /* momentum None is the identity; 0.0 is a trace (of zeros), as in optax */
    gv_transform *parts[2] = {isnan(o->momentum) ? gv_identity()
                                                 : gv_trace_momentum(o->momentum, o->nesterov),
                              lr};
    if (parts[0] && !isnan(o->momentum)) parts[0]->hpname[0] = "momentum"; /* sgd's name for it */
    return named_chain("sgd", parts, 2);
}

gv_adam_opts gv_adam_defaults(void) { return (gv_adam_opts){GV_ADAM_DEFAULTS}; }

gv_transform *gv_adam_with(const gv_adam_opts *o) {
    if (!o) {
        gv_error(GV_ERR_ARG, "adam: opts is NULL");
        return NULL;
    }
    gv_transform *lr = learning_rate_part("adam", o->learning_rate, o->schedule);
    if (!lr) return NULL;
    gv_scale_by_adam_opts a = {o->b1, o->b2, o->eps, o->eps_root, o->nesterov};
    gv_transform *parts[2] = {gv_scale_by_adam_with(&a), lr};
    return named_chain("adam", parts, 2);
}

gv_nadam_opts gv_nadam_defaults(void) { return (gv_nadam_opts){GV_NADAM_DEFAULTS}; }

gv_transform *gv_nadam_with(const gv_nadam_opts *o) {
    if (!o) {
        gv_error(GV_ERR_ARG, "nadam: opts is NULL");
        return NULL;
    }
    gv_transform *lr = learning_rate_part("nadam", o->learning_rate, o->schedule);
    if (!lr) return NULL;
    gv_scale_by_adam_opts a = {o->b1, o->b2, o->eps, o->eps_root, .nesterov = true};
    gv_transform *parts[2] = {gv_scale_by_adam_with(&a), lr};
    return named_chain("nadam", parts, 2);
}

gv_adamw_opts gv_adamw_defaults(void) { return (gv_adamw_opts){GV_ADAMW_DEFAULTS}; }

gv_transform *gv_adamw_with(const gv_adamw_opts *o) {
    if (!o) {
        gv_error(GV_ERR_ARG, "adamw: opts is NULL");
        return NULL;
    }
    gv_transform *lr = learning_rate_part("adamw", o->learning_rate, o->schedule);
    if (!lr) return NULL;
    gv_transform *decay = gv_add_decayed_weights(o->weight_decay, o->mask);
    if (!decay) {
        gv_transform_free(lr);
        gv_error_prefix("adamw: ");
        return NULL;
    }
    gv_scale_by_adam_opts a = {o->b1, o->b2, o->eps, o->eps_root, o->nesterov};
    gv_transform *parts[3] = {gv_scale_by_adam_with(&a), decay, lr};
    return named_chain("adamw", parts, 3);
}
