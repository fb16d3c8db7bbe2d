/* inject_hyperparams: the inner transformation's named float
 * hyper-parameters become float scalars of the state, so they can be
 * scheduled or changed between steps without recompiling.
 * Optax: schedules/_inject.py (reference A13). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "optim_internal.h"

typedef struct inj_hp {
    const char *name;    /* static, from the transform's hpname */
    double value;        /* the initial value (unused when scheduled) */
    gv_schedule *sched;  /* owned, or NULL */
} inj_hp;

typedef struct inj_cfg {
    inj_hp *hps;
    size_t n, cap;
    /* the constant-rate parts made from schedules, and their entries */
    const gv_transform *conv[8];
    int conv_idx[8];
    size_t nconv;
} inj_cfg;

static void inj_cfg_free(void *p) {
    inj_cfg *c = p;
    if (!c) return;
    for (size_t i = 0; i < c->n; i++) gv_schedule_free(c->hps[i].sched);
    free(c->hps);
    free(c);
}

static bool is_inject(const gv_transform *t) { return !strcmp(t->name, "inject_hyperparams"); }

/* The index of name in c, adding it (value, sched) if new; -1 on a
 * conflict or out of memory (the error set). */
static int hp_index(inj_cfg *c, const char *name, double value, gv_schedule *sched) {
    for (size_t i = 0; i < c->n; i++) {
        if (strcmp(c->hps[i].name, name)) continue;
        if (sched || c->hps[i].sched) {
            gv_error(GV_ERR_ARG, "inject_hyperparams: '%s' is both scheduled and a constant, or "
                     "scheduled twice, in the inner transformation; inject the parts separately",
                     name);
            return -1;
        }
        if (c->hps[i].value != value && !(c->hps[i].value != c->hps[i].value && value != value)) {
            gv_error(GV_ERR_ARG, "inject_hyperparams: '%s' has two values (%g and %g) in the inner "
                     "transformation; inject the parts separately", name, c->hps[i].value, value);
            return -1;
        }
        return (int)i;
    }
    if (c->n == c->cap) {
        size_t cap = c->cap ? 2 * c->cap : 8;
        inj_hp *h = realloc(c->hps, cap * sizeof *h);
        if (!h) return gv_error(GV_ERR_NOMEM, "inject_hyperparams: out of memory"), -1;
        c->hps = h, c->cap = cap;
    }
    c->hps[c->n] = (inj_hp){name, value, sched};
    return (int)c->n++;
}

/* Turn each learning-rate schedule part (scale_by_learning_rate with a
 * schedule) into the constant form whose rate is the scheduled
 * hyper-parameter, as optax rebuilds the inner optimiser from a number. */
static gv_status unschedule(gv_transform *t, const gv_transform *owner, inj_cfg *c) {
    if (t != owner && is_inject(t)) return GV_OK;
    for (size_t i = 0; i < t->nkids; i++) {
        gv_transform *k = t->kids[i];
        if (k->sched && k->flag && !strcmp(k->name, "scale_by_learning_rate")) {
            gv_transform *lr = gv_scale_by_learning_rate(0.0);
            if (!lr) return gv_last_status();
            if (c->nconv == sizeof c->conv / sizeof c->conv[0]) {
                gv_transform_free(lr);
                return gv_error(GV_ERR_ARG, "inject_hyperparams: more than %zu learning-rate "
                                "schedules in the inner transformation", c->nconv);
            }
            gv_schedule *sc = gv_schedule_retain(k->sched);
            int idx = hp_index(c, "learning_rate", 0.0, sc);
            if (idx < 0) {
                gv_schedule_free(sc);
                gv_transform_free(lr);
                return gv_last_status();
            }
            c->conv[c->nconv] = lr, c->conv_idx[c->nconv++] = idx;
            gv_transform_free(k);
            t->kids[i] = lr;
            continue;
        }
        gv_status st = unschedule(k, owner, c);
        if (st != GV_OK) return st;
    }
    return GV_OK;
}

/* Bind every named slot below t (not inside a nested inject) to owner. */
static gv_status bind(gv_transform *t, const gv_transform *owner, inj_cfg *c) {
    if (t != owner && is_inject(t)) return GV_OK;
    for (int k = 0; k < GV_TX_NHP; k++) {
        if (!t->hpname[k]) continue;
        int idx = -2;
        for (size_t j = 0; j < c->nconv; j++)
            if (c->conv[j] == t) idx = c->conv_idx[j]; /* reads its schedule's value */
        if (idx == -2) idx = hp_index(c, t->hpname[k], t->hp[k], NULL);
        if (idx < 0) return gv_last_status();
        t->hp_owner = owner;
        t->hp_slot[k] = idx;
    }
    for (size_t i = 0; i < t->nkids; i++) {
        gv_status st = bind(t->kids[i], owner, c);
        if (st != GV_OK) return st;
    }
    return GV_OK;
}

/* optax.tree.dtype(params, 'highest') among the float leaves; float32 if none */
static gv_dtype highest_float(const gv_tree *params) {
    gv_value *v;
    size_t n;
    gv_dtype best = GV_F32;
    int rank = -1;
    if (gv_tx_leaves(params, &v, &n, NULL) != GV_OK) return GV_F32;
    for (size_t i = 0; i < n; i++) {
        gv_dtype d = gv_value_dtype(v[i]);
        int r = d == GV_F64 ? 2 : d == GV_F32 ? 1 : -1;
        if (r > rank) rank = r, best = d;
    }
    free(v);
    return rank < 0 ? GV_F32 : best;
}

/* {"count", "hyperparams", "hyperparams_states", "inner_state"}, taking the parts */
static const char *const INJ_KEYS[4] = {"count", "hyperparams", "hyperparams_states", "inner_state"};
#define inj_state(a, b, c, d) gv_tx_dict_take(4, INJ_KEYS, (gv_tree *[]){a, b, c, d})

/* The hyper-parameter values at count (schedules) or from hps (a state's
 * "hyperparams", NULL at init: the constructor's values); also the two
 * state dicts for them. */
static gv_status hp_values(const gv_transform *tx, gv_graph *g, const gv_tree *hps_in,
                           const gv_tree *hst_in, gv_dtype dt, gv_value *vals, gv_tree **hps,
                           gv_tree **hst) {
    const inj_cfg *c = tx->cfg;
    *hps = gv_tree_new_dict(), *hst = gv_tree_new_dict();
    if (!*hps || !*hst) return gv_tx_fail(tx, g, GV_ERR_NOMEM, "out of memory");
    for (size_t i = 0; i < c->n; i++) {
        const inj_hp *h = &c->hps[i];
        gv_value count = gv_tx_zero_count(g);
        if (h->sched && hst_in) {
            const gv_tree *si = gv_tx_field(tx, g, hst_in, h->name);
            if (!si || gv_tx_count(tx, g, si, &count) != GV_OK) return gv_last_status();
        }
        if (h->sched) {
            vals[i] = gv_cast(gv_schedule_value(h->sched, count), dt);
            gv_tree *cs = gv_tree_new_dict();
            gv_status st = cs ? gv_tree_insert_value(cs, "count", hst_in ? gv_tx_safe_increment(count) : count)
                              : GV_ERR_NOMEM;
            if (st == GV_OK) st = gv_tree_insert(*hst, h->name, cs);
            else gv_tree_free(cs);
            if (st != GV_OK) return gv_tx_fail(tx, g, st, "out of memory");
        } else if (hps_in) {
            const gv_tree *v = gv_tx_field(tx, g, hps_in, h->name);
            if (!v) return gv_last_status();
            vals[i] = gv_tree_leaf_value(v);
            if (!gv_value_ok(vals[i]) || gv_value_rank(vals[i]) != 0)
                return gv_tx_fail(tx, g, GV_ERR_SHAPE, "state.hyperparams.%s must be a scalar",
                                  h->name);
        } else {
            vals[i] = gv_scalar(g, dt, h->value);
        }
        if (gv_tree_insert_value(*hps, h->name, vals[i]) != GV_OK)
            return gv_tx_fail(tx, g, GV_ERR_NOMEM, "out of memory");
    }
    return gv_graph_status(g);
}

static gv_tree *inj_init(const gv_transform *tx, gv_graph *g, const gv_tree *params) {
    const inj_cfg *c = tx->cfg;
    gv_value *vals = malloc((c->n ? c->n : 1) * sizeof *vals);
    gv_tree *hps = NULL, *hst = NULL;
    if (!vals || hp_values(tx, g, NULL, NULL, highest_float(params), vals, &hps, &hst) != GV_OK) {
        free(vals), gv_tree_free(hps), gv_tree_free(hst);
        if (!vals) gv_tx_fail(tx, g, GV_ERR_NOMEM, "out of memory");
        return NULL;
    }
    gv_tx_hp_frame f = {tx, vals, NULL};
    gv_tx_hp_push(&f);
    gv_tree *inner = gv_tx_init_inner(tx->kids[0], g, params);
    gv_tx_hp_pop(&f);
    free(vals);
    return inj_state(gv_tx_value_leaf(gv_tx_zero_count(g)), hps, hst, inner);
}

static gv_status inj_update(const gv_transform *tx, gv_graph *g, const gv_tree *updates,
                            const gv_tree *state, const gv_tree *params, gv_tree **nu,
                            gv_tree **ns) {
    const inj_cfg *c = tx->cfg;
    gv_value count;
    if (gv_tx_count(tx, g, state, &count) != GV_OK) return gv_last_status();
    const gv_tree *hps_in = gv_tx_field(tx, g, state, "hyperparams");
    const gv_tree *hst_in = hps_in ? gv_tx_field(tx, g, state, "hyperparams_states") : NULL;
    const gv_tree *inner_s = hst_in ? gv_tx_field(tx, g, state, "inner_state") : NULL;
    if (!inner_s) return gv_last_status();
    gv_value *vals = malloc((c->n ? c->n : 1) * sizeof *vals);
    gv_tree *hps = NULL, *hst = NULL, *iu = NULL, *is = NULL;
    /* hyperparam_dtype None: the params' highest float dtype, else the updates' */
    gv_dtype dt = highest_float(params ? params : updates);
    gv_status st = vals ? hp_values(tx, g, hps_in, hst_in, dt, vals, &hps, &hst)
                        : gv_tx_fail(tx, g, GV_ERR_NOMEM, "out of memory");
    if (st == GV_OK) {
        gv_tx_hp_frame f = {tx, vals, NULL};
        gv_tx_hp_push(&f);
        st = gv_tx_update_inner(tx->kids[0], g, updates, inner_s, params, &iu, &is);
        gv_tx_hp_pop(&f);
    }
    free(vals);
    if (st != GV_OK) {
        gv_tree_free(hps), gv_tree_free(hst);
        return st;
    }
    gv_tree *s = inj_state(gv_tx_value_leaf(gv_tx_safe_increment(count)), hps, hst, is);
    return gv_tx_finish(iu, s, nu, ns);
}

gv_transform *gv_inject_hyperparams(gv_transform *inner) {
    if (!inner) {
        gv_tx_null_arg("inject_hyperparams", "inner");
        return NULL;
    }
    gv_transform *tx = gv_tx_new("inject_hyperparams", inj_init, inj_update);
    inj_cfg *c = tx ? calloc(1, sizeof *c) : NULL;
    if (tx) tx->kids = malloc(sizeof *tx->kids);
    if (!c || !tx->kids) {
        if (tx) free(tx->kids), free(tx);
        free(c);
        gv_transform_free(inner);
        gv_error(GV_ERR_NOMEM, "inject_hyperparams: out of memory");
        return NULL;
    }
    tx->kids[0] = inner, tx->nkids = 1;
    tx->cfg = c, tx->free_cfg = inj_cfg_free;
    /* the inner transformation itself may be a learning-rate schedule part */
    gv_status st = unschedule(tx, tx, c);
    if (st == GV_OK) st = bind(tx->kids[0], tx, c);
    if (st != GV_OK) {
        gv_transform_free(tx);
        return NULL;
    }
    return tx;
}

/* ---- reading and writing a state's hyper-parameters ---- */

static bool is_inject_state(const gv_tree *t) {
    return gv_tree_kind_of(t) == GV_TREE_DICT && gv_tree_num_children(t) == 4 &&
           gv_tree_contains(t, "count") && gv_tree_contains(t, "hyperparams") &&
           gv_tree_contains(t, "hyperparams_states") && gv_tree_contains(t, "inner_state");
}

/* Every inject_hyperparams state in t (not inside another): up to max
 * found, their paths appended to *paths (a growing "a, b" list). */
static void find_states(const gv_tree *t, const char *path, const gv_tree **found, int *n,
                        char *paths, size_t cap) {
    if (is_inject_state(t)) {
        if (*n == 0) *found = t;
        size_t len = strlen(paths);
        if (len + strlen(path) + 8 < cap)
            snprintf(paths + len, cap - len, "%s%s", len ? ", " : "", path[0] ? path : "<root>");
        (*n)++;
        return;
    }
    if (gv_tree_is_leaf(t)) return;
    for (size_t i = 0; i < gv_tree_num_children(t); i++) {
        char sub[512];
        const char *k = gv_tree_kind_of(t) == GV_TREE_DICT ? gv_tree_key(t, i) : NULL;
        char idx[24];
        if (!k) snprintf(idx, sizeof idx, "%zu", i), k = idx;
        snprintf(sub, sizeof sub, "%s%s%s", path, path[0] ? "/" : "", k);
        find_states(gv_tree_child(t, i), sub, found, n, paths, cap);
    }
}

static const gv_tree *inject_state_in(const gv_tree *tree, const char *who) {
    const gv_tree *found = NULL;
    int n = 0;
    char paths[512] = "";
    find_states(tree, "", &found, &n, paths, sizeof paths);
    if (n == 1) return found;
    if (n == 0)
        gv_error(GV_ERR_NOT_FOUND, "%s: the tree holds no inject_hyperparams state (a dict of "
                 "count, hyperparams, hyperparams_states and inner_state); is the optimiser "
                 "wrapped in gv_inject_hyperparams?", who);
    else
        gv_error(GV_ERR_ARG, "%s: the tree holds %d inject_hyperparams states (at %s); pass the "
                 "one you mean", who, n, paths);
    return NULL;
}

static gv_tensor *hp_tensor(const gv_tree *state, const char *name, const char *who) {
    const gv_tree *hps = gv_tree_child_by_key(state, "hyperparams");
    if (gv_tree_kind_of(hps) != GV_TREE_DICT) {
        gv_error(GV_ERR_STRUCTURE, "%s: the state's 'hyperparams' is not a dict", who);
        return NULL;
    }
    const gv_tree *leaf = gv_tree_contains(hps, name) ? gv_tree_child_by_key(hps, name) : NULL;
    gv_tensor *t = leaf && gv_tree_is_leaf(leaf) && gv_tree_leaf_kind(leaf) == GV_LEAF_TENSOR
                       ? gv_tree_leaf_tensor(leaf) : NULL;
    if (!t || gv_tensor_size(t) != 1) {
        char names[256] = "";
        size_t len = 0;
        for (size_t i = 0; i < gv_tree_num_children(hps) && len < sizeof names - 40; i++)
            len += (size_t)snprintf(names + len, sizeof names - len, "%s'%s'", i ? ", " : "",
                                    gv_tree_key(hps, i));
        gv_error(GV_ERR_ARG, "%s: no hyper-parameter '%s' (the state has %s)", who, name,
                 len ? names : "none");
        return NULL;
    }
    return t;
}

gv_status gv_hyperparam_set(gv_tree *tree, const char *name, double value) {
    if (!tree || !name)
        return gv_error(GV_ERR_ARG, "gv_hyperparam_set: %s is NULL", name ? "tree" : "name");
    const gv_tree *state = inject_state_in(tree, "gv_hyperparam_set");
    gv_tensor *t = state ? hp_tensor(state, name, "gv_hyperparam_set") : NULL;
    if (!t) return gv_last_status();
    const gv_tree *hst = gv_tree_child_by_key(state, "hyperparams_states");
    if (gv_tree_kind_of(hst) == GV_TREE_DICT && gv_tree_contains(hst, name))
        return gv_error(GV_ERR_ARG, "gv_hyperparam_set: '%s' is scheduled; its value is computed "
                        "at every step, so setting it would have no effect", name);
    return gv_tensor_set_flat(t, 0, value);
}

gv_status gv_hyperparam_get(const gv_tree *tree, const char *name, double *value) {
    if (!tree || !name || !value)
        return gv_error(GV_ERR_ARG, "gv_hyperparam_get: %s is NULL",
                        !tree ? "tree" : !name ? "name" : "value");
    const gv_tree *state = inject_state_in(tree, "gv_hyperparam_get");
    gv_tensor *t = state ? hp_tensor(state, name, "gv_hyperparam_get") : NULL;
    return t ? gv_tensor_get_flat(t, 0, value) : gv_last_status();
}
