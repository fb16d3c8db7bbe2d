/* Gradient transformations: the object, the traced and eager entry points,
 * the value-tree helpers, and the combinators (chain, masked) with the
 * stateless basics (identity, set_to_zero, scale) and apply_updates.
 * Optax: optax/_src/base.py, transforms/_combining.py, transforms/_masking.py,
 * _src/update.py (reference A1-A3, A11). */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "graph/graph_internal.h"
#include "optim_internal.h"
#include "tree/tree_internal.h"

/* ---- the object ---- */

/* A user-defined transformation's functions, userdata and copied name. */
typedef struct gv_tx_user {
    char *name;
    gv_transform_init_fn init;
    gv_transform_update_fn update;
    void *ud;
    void (*free_ud)(void *);
} gv_tx_user;

static void user_free(gv_tx_user *u) {
    if (!u) return;
    if (u->free_ud) u->free_ud(u->ud);
    free(u->name);
    free(u);
}

gv_transform *gv_tx_new(const char *name, gv_tx_init_fn init, gv_tx_update_fn update) {
    gv_transform *tx = calloc(1, sizeof *tx);
    if (!tx) {
        gv_error(GV_ERR_NOMEM, "%s: out of memory", name);
        return NULL;
    }
    tx->name = name;
    tx->init = init;
    tx->update = update;
    for (int k = 0; k < GV_TX_NHP; k++) tx->hp_slot[k] = -1;
    return tx;
}

gv_status gv_tx_null_arg(const char *who, const char *what) {
    if (gv_last_status() == GV_OK)
        return gv_error(GV_ERR_ARG, "%s: %s is NULL", who, what);
    const char *prev = gv_last_error();
    size_t n = strlen(prev) + 1;
    char *copy = malloc(n);
    if (copy) memcpy(copy, prev, n);
    gv_status st = gv_error(GV_ERR_ARG, "%s: %s is NULL (a failed constructor? the last error: %s)",
                            who, what, copy ? copy : "(out of memory)");
    free(copy);
    return st;
}

gv_status gv_tx_no_learning_rate(const char *name) {
    static const char msg[] =
        "no learning rate (.learning_rate is NaN and .schedule NULL): optax has no default; give "
        "a finite .learning_rate or a .schedule";
    if (gv_last_status() == GV_OK) return gv_error(GV_ERR_ARG, "%s: %s", name, msg);
    const char *prev = gv_last_error();
    size_t n = strlen(prev) + 1;
    char *copy = malloc(n);
    if (copy) memcpy(copy, prev, n);
    gv_status st = gv_error(GV_ERR_ARG, "%s: %s (if a schedule constructor failed, the last "
                            "error: %s)", name, msg, copy ? copy : "(out of memory)");
    free(copy);
    return st;
}

/* A dict state from (key, subtree) pairs, taking the subtrees (NULL-safe:
 * a NULL subtree fails the whole and frees the rest). */
gv_tree *gv_tx_dict_take(size_t n, const char *const *keys, gv_tree *const *kids) {
    gv_tree *d = gv_tree_new_dict();
    bool ok = d != NULL;
    for (size_t i = 0; i < n; i++) {
        if (ok && kids[i] && gv_tree_insert(d, keys[i], kids[i]) == GV_OK) continue;
        ok = false;
        gv_tree_free(kids[i]);
    }
    if (!ok) gv_tree_free(d);
    return ok ? d : NULL;
}

gv_tree *gv_tx_value_leaf(gv_value v) { return gv_value_ok(v) ? gv_tree_new_value_leaf(v) : NULL; }

/* ---- hyper-parameters ---- */

static _Thread_local gv_tx_hp_frame *hp_top;

void gv_tx_hp_push(gv_tx_hp_frame *f) {
    f->prev = hp_top;
    hp_top = f;
}

void gv_tx_hp_pop(gv_tx_hp_frame *f) { hp_top = f->prev; }

void gv_tx_hp_set(gv_transform *tx, int k, const char *name, double value) {
    tx->hpname[k] = name;
    tx->hp[k] = value;
}

/* The injected float32 value of slot k, or false. */
static bool hp_lookup(const gv_transform *tx, int k, gv_value *v) {
    if (!tx->hp_owner || tx->hp_slot[k] < 0) return false;
    for (const gv_tx_hp_frame *f = hp_top; f; f = f->prev)
        if (f->owner == tx->hp_owner) {
            *v = f->vals[tx->hp_slot[k]];
            return true;
        }
    return false;
}

bool gv_tx_hp_injected(const gv_transform *tx, int k) {
    gv_value v;
    return hp_lookup(tx, k, &v);
}

static gv_value as_dtype(gv_value v, gv_dtype dt) {
    return gv_value_dtype(v) == dt ? v : gv_cast(v, dt);
}

gv_value gv_tx_hp(const gv_transform *tx, gv_graph *g, int k, gv_dtype dt) {
    gv_value v;
    return hp_lookup(tx, k, &v) ? as_dtype(v, dt) : gv_scalar(g, dt, tx->hp[k]);
}

gv_value gv_tx_hp_1m(const gv_transform *tx, gv_graph *g, int k, gv_dtype dt) {
    gv_value v;
    if (hp_lookup(tx, k, &v)) return as_dtype(gv_sub(gv_full_like(v, 1.0), v), dt);
    return gv_scalar(g, dt, 1.0 - tx->hp[k]);
}

gv_value gv_tx_hp_neg(const gv_transform *tx, gv_graph *g, int k, gv_dtype dt) {
    gv_value v;
    if (hp_lookup(tx, k, &v)) return as_dtype(gv_neg(v), dt);
    return gv_scalar(g, dt, -tx->hp[k]);
}

void gv_transform_free(gv_transform *tx) {
    if (!tx) return;
    for (size_t i = 0; i < tx->nkids; i++) gv_transform_free(tx->kids[i]);
    free(tx->kids);
    gv_schedule_free(tx->sched);
    gv_tree_free(tx->mask);
    gv_jit_free(tx->init_jit);
    gv_jit_free(tx->update_jit);
    user_free(tx->user);
    if (tx->free_cfg) tx->free_cfg(tx->cfg);
    free(tx);
}

const char *gv_transform_name(const gv_transform *tx) { return tx ? tx->name : "(null)"; }

gv_status gv_tx_fail(const gv_transform *tx, gv_graph *g, gv_status status, const char *fmt, ...) {
    va_list ap, ap2;
    va_start(ap, fmt);
    va_copy(ap2, ap);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    char *buf = malloc(n > 0 ? (size_t)n + 1 : 1);
    if (buf) vsnprintf(buf, (size_t)n + 1, fmt, ap2);
    va_end(ap2);
    /* the graph's message gets the transformation's name from its scope */
    const char *msg = buf ? buf : "(out of memory formatting the message)";
    gv_graph_fail(g, status, "%s", msg);
    gv_error(status, "%s: %s", tx ? tx->name : "optim", msg);
    free(buf);
    return status;
}

/* ---- value trees ---- */

typedef struct leaves_ctx {
    gv_value *vals;
    size_t n;
} leaves_ctx;

static gv_status collect_value(const char *path, const gv_tree *leaf, void *ud) {
    leaves_ctx *c = ud;
    gv_value v = gv_tree_leaf_value(leaf);
    if (gv_tree_leaf_kind(leaf) != GV_LEAF_VALUE)
        return gv_error(GV_ERR_ARG, "the leaf at %s is a %s, not a traced value",
                        gv_tree_show_path(path), gv_leaf_kind_name(gv_tree_leaf_kind(leaf)));
    c->vals[c->n++] = v;
    return GV_OK;
}

gv_status gv_tx_leaves(const gv_tree *t, gv_value **vals, size_t *n, char ***paths) {
    *vals = NULL, *n = 0;
    if (paths) *paths = NULL;
    size_t m = gv_tree_num_leaves(t);
    leaves_ctx c = {malloc((m ? m : 1) * sizeof(gv_value)), 0};
    if (!c.vals) return gv_error(GV_ERR_NOMEM, "out of memory");
    gv_status st = gv_tree_foreach_leaf(t, collect_value, &c);
    if (st == GV_OK && paths) {
        size_t np;
        st = gv_tree_leaf_paths(t, paths, &np);
    }
    if (st != GV_OK) {
        free(c.vals);
        return st;
    }
    *vals = c.vals, *n = c.n;
    return GV_OK;
}

static gv_tree *place_value(const gv_tree *leaf, size_t index, void *ud) {
    const gv_value *vals = ud;
    return gv_tree_new_value_leaf(vals[index]);
}

gv_tree *gv_tx_rebuild(const gv_tree *like, const gv_value *vals) {
    return gv_tree_rebuild_indexed(like, place_value, (void *)vals);
}

static gv_graph *graph_of_node(const gv_tree *t) {
    if (!t) return NULL;
    if (gv_tree_is_leaf(t)) {
        gv_value v = gv_tree_leaf_value(t);
        return gv_tree_leaf_kind(t) == GV_LEAF_VALUE ? v.graph : NULL;
    }
    for (size_t i = 0; i < gv_tree_num_children(t); i++) {
        gv_graph *g = graph_of_node(gv_tree_child(t, i));
        if (g) return g;
    }
    return NULL;
}

gv_graph *gv_tx_graph_of(const gv_tree *t) { return graph_of_node(t); }

gv_status gv_tx_check_like(const gv_transform *tx, gv_graph *g, const char *what_a,
                           const gv_tree *a, const char *what_b, const gv_tree *b,
                           bool check_dtype) {
    if (!gv_tree_structure_equal(a, b)) {
        /* gv_tree_check_same names the first difference */
        const char *why = gv_tree_check_same(a, b, NULL) != GV_OK ? gv_last_error() : "structure";
        return gv_tx_fail(tx, g, GV_ERR_STRUCTURE, "%s and %s differ: %s", what_a, what_b, why);
    }
    gv_value *va = NULL, *vb = NULL;
    char **paths = NULL;
    size_t na = 0, nb = 0;
    gv_status st = gv_tx_leaves(a, &va, &na, &paths);
    if (st == GV_OK) st = gv_tx_leaves(b, &vb, &nb, NULL);
    if (st != GV_OK) {
        st = gv_tx_fail(tx, g, st, "%s/%s: %s", what_a, what_b, gv_last_error());
        goto done;
    }
    for (size_t i = 0; i < na; i++) {
        bool same = gv_value_rank(va[i]) == gv_value_rank(vb[i]) &&
                    (!check_dtype || gv_value_dtype(va[i]) == gv_value_dtype(vb[i]));
        for (int k = 0; same && k < gv_value_rank(va[i]); k++)
            same = gv_value_shape(va[i])[k] == gv_value_shape(vb[i])[k];
        if (!same) {
            char *sa = gv_shape_str(gv_value_rank(va[i]), gv_value_shape(va[i]));
            char *sb = gv_shape_str(gv_value_rank(vb[i]), gv_value_shape(vb[i]));
            st = gv_tx_fail(tx, g, GV_ERR_SHAPE, "%s and %s differ: %s: %s%s vs %s%s", what_a,
                            what_b, gv_tree_show_path(paths[i]),
                            gv_dtype_name(gv_value_dtype(va[i])), sa ? sa : "?",
                            gv_dtype_name(gv_value_dtype(vb[i])), sb ? sb : "?");
            free(sa), free(sb);
            break;
        }
    }
done:
    free(va), free(vb);
    if (paths) gv_tree_paths_free(paths, na);
    return st;
}

const gv_tree *gv_tx_field(const gv_transform *tx, gv_graph *g, const gv_tree *state,
                           const char *field) {
    if (gv_tree_kind_of(state) != GV_TREE_DICT || !gv_tree_contains(state, field)) {
        gv_tx_fail(tx, g, GV_ERR_STRUCTURE,
                   "the state is not this transformation's (expected a dict with '%s', got a "
                   "%s); make sure you have called init first",
                   field, gv_tree_kind_name(gv_tree_kind_of(state)));
        return NULL;
    }
    return gv_tree_child_by_key(state, field);
}

gv_status gv_tx_check_empty(const gv_transform *tx, gv_graph *g, const gv_tree *state) {
    if (gv_tree_kind_of(state) == GV_TREE_TUPLE && gv_tree_num_children(state) == 0) return GV_OK;
    return gv_tx_fail(tx, g, GV_ERR_STRUCTURE,
                      "the state is not this transformation's (expected EmptyState (), got a %s "
                      "with %zu children); make sure you have called init first",
                      gv_tree_kind_name(gv_tree_kind_of(state)), gv_tree_num_children(state));
}

gv_value gv_tx_safe_increment(gv_value count) {
    /* optax.numerics.safe_increment: where(count < max, count + 1, max) */
    gv_value mx = gv_full_like(count, 2147483647.0);
    return gv_select(gv_lt(count, mx), gv_add_scalar(count, 1.0), mx);
}

gv_value gv_tx_zero_count(gv_graph *g) { return gv_scalar(g, GV_I32, 0.0); }

gv_status gv_tx_count(const gv_transform *tx, gv_graph *g, const gv_tree *state, gv_value *count) {
    const gv_tree *cnt = gv_tx_field(tx, g, state, "count");
    if (!cnt) return gv_last_status();
    *count = gv_tree_leaf_value(cnt);
    if (!gv_value_ok(*count) || gv_value_dtype(*count) != GV_I32 || gv_value_rank(*count) != 0)
        return gv_tx_fail(tx, g, GV_ERR_DTYPE, "state.count must be an int32 scalar");
    return GV_OK;
}

/* ---- traced entry points ---- */

gv_tree *gv_tx_init_inner(const gv_transform *tx, gv_graph *g, const gv_tree *params) {
    gv_graph_push_scope(g, tx->name);
    gv_tree *s = tx->init(tx, g, params);
    gv_graph_pop_scope(g);
    if (s && gv_graph_status(g) != GV_OK) {
        gv_tree_free(s);
        s = NULL;
        gv_error(gv_graph_status(g), "%s", gv_graph_error(g));
    }
    if (!s && gv_last_status() == GV_OK) gv_error(GV_ERR_INTERNAL, "%s: init failed", tx->name);
    return s;
}

gv_status gv_tx_update_inner(const gv_transform *tx, gv_graph *g, const gv_tree *updates,
                             const gv_tree *state, const gv_tree *params, gv_tree **new_updates,
                             gv_tree **new_state) {
    *new_updates = *new_state = NULL;
    gv_graph_push_scope(g, tx->name);
    gv_status st = tx->update(tx, g, updates, state, params, new_updates, new_state);
    gv_graph_pop_scope(g);
    if (st == GV_OK && gv_graph_status(g) != GV_OK)
        st = gv_error(gv_graph_status(g), "%s", gv_graph_error(g));
    if (st != GV_OK) {
        gv_tree_free(*new_updates), gv_tree_free(*new_state);
        *new_updates = *new_state = NULL;
        if (gv_last_status() == GV_OK) gv_error(st, "%s: update failed", tx->name);
    }
    return st;
}

gv_tree *gv_transform_init(const gv_transform *tx, gv_graph *g, const gv_tree *params) {
    if (!tx || !g || !params) {
        gv_error(GV_ERR_ARG, "gv_transform_init: %s is NULL", !tx ? "tx" : !g ? "g" : "params");
        return NULL;
    }
    if (gv_graph_status(g) != GV_OK) {
        gv_error(gv_graph_status(g), "gv_transform_init: %s: the graph has an earlier error: %s",
                 tx->name, gv_graph_error(g));
        return NULL;
    }
    gv_tree *s = gv_tx_init_inner(tx, g, params);
    if (!s) gv_error_prefix("gv_transform_init: ");
    return gv_graph_own(g, s);
}

gv_status gv_transform_update(const gv_transform *tx, gv_graph *g, const gv_tree *updates,
                              const gv_tree *state, const gv_tree *params,
                              gv_tree **new_updates, gv_tree **new_state) {
    if (new_updates) *new_updates = NULL;
    if (new_state) *new_state = NULL;
    if (!tx || !g || !updates || !state || !new_updates || !new_state)
        return gv_error(GV_ERR_ARG, "gv_transform_update: %s is NULL",
                        !tx ? "tx" : !g ? "g" : !updates ? "updates" : !state ? "state"
                                   : !new_updates ? "new_updates" : "new_state");
    if (gv_graph_status(g) != GV_OK)
        return gv_error(gv_graph_status(g),
                        "gv_transform_update: %s: the graph has an earlier error: %s", tx->name,
                        gv_graph_error(g));
    gv_status st = gv_tx_update_inner(tx, g, updates, state, params, new_updates, new_state);
    if (st != GV_OK) return gv_error_prefix("gv_transform_update: ");
    *new_updates = gv_graph_own(g, *new_updates);
    *new_state = gv_graph_own(g, *new_state);
    return *new_updates && *new_state ? GV_OK : gv_graph_status(g);
}

/* ---- eager entry points: traced once per input signature, cached ---- */

static gv_tree *init_trace(gv_graph *g, const gv_tree *in, void *ud) {
    return gv_transform_init(ud, g, in);
}

/* in = (updates, state) or (updates, state, params); out = (updates, state) */
static gv_tree *update_trace(gv_graph *g, const gv_tree *in, void *ud) {
    const gv_tree *p = gv_tree_num_children(in) > 2 ? gv_tree_child(in, 2) : NULL;
    gv_tree *u, *s;
    if (gv_transform_update(ud, g, gv_tree_child(in, 0), gv_tree_child(in, 1), p, &u, &s) != GV_OK)
        return NULL;
    gv_tree *out = gv_tree_new_tuple();
    if (!out || gv_tree_append(out, u) != GV_OK) {
        gv_tree_free(out), gv_tree_free(s);
        return NULL;
    }
    if (gv_tree_append(out, s) != GV_OK) {
        gv_tree_free(out);
        return NULL;
    }
    return out;
}

gv_tree *gv_transform_init_eager(gv_transform *tx, const gv_tree *params) {
    if (!tx || !params) {
        gv_error(GV_ERR_ARG, "gv_transform_init_eager: %s is NULL", tx ? "params" : "tx");
        return NULL;
    }
    if (!tx->init_jit && !(tx->init_jit = gv_jit_new(init_trace, tx, NULL))) return NULL;
    gv_tree *out;
    if (gv_jit_call(tx->init_jit, params, &out) != GV_OK) {
        gv_error_prefix("gv_transform_init_eager: %s: ", tx->name);
        return NULL;
    }
    return gv_tree_copy(out); /* the jit's outputs are rewritten by its next call */
}

gv_status gv_transform_update_eager(gv_transform *tx, const gv_tree *updates,
                                    const gv_tree *state, const gv_tree *params,
                                    gv_tree **new_updates, gv_tree **new_state) {
    if (new_updates) *new_updates = NULL;
    if (new_state) *new_state = NULL;
    if (!tx || !updates || !state || !new_updates || !new_state)
        return gv_error(GV_ERR_ARG, "gv_transform_update_eager: %s is NULL",
                        !tx ? "tx" : !updates ? "updates" : !state ? "state"
                                   : !new_updates ? "new_updates" : "new_state");
    if (!tx->update_jit && !(tx->update_jit = gv_jit_new(update_trace, tx, NULL)))
        return gv_last_status();
    /* the input tuple borrows the caller's tensors (clone retains them) */
    gv_tree *in = gv_tree_tuple_take(params ? 3 : 2, (gv_tree *[]){gv_tree_clone(updates),
        gv_tree_clone(state), params ? gv_tree_clone(params) : NULL});
    gv_status st = in ? GV_OK : gv_last_status();
    gv_tree *out = NULL;
    if (st == GV_OK) st = gv_jit_call(tx->update_jit, in, &out);
    gv_tree_free(in);
    if (st != GV_OK) return gv_error_prefix("gv_transform_update_eager: %s: ", tx->name);
    *new_updates = gv_tree_copy(gv_tree_child(out, 0));
    *new_state = gv_tree_copy(gv_tree_child(out, 1));
    if (!*new_updates || !*new_state) {
        gv_tree_free(*new_updates), gv_tree_free(*new_state);
        *new_updates = *new_state = NULL;
        return gv_error(GV_ERR_NOMEM, "gv_transform_update_eager: out of memory");
    }
    return GV_OK;
}

/* ---- apply_updates (optax/_src/update.py, A2) ---- */

static int float_rank(gv_dtype d) { return d == GV_F64 ? 2 : d == GV_F32 ? 1 : 0; }

gv_tree *gv_apply_updates(gv_graph *g, const gv_tree *params, const gv_tree *updates) {
    static const gv_transform who = {.name = "apply_updates"};
    if (!g || !params || !updates) {
        gv_error(GV_ERR_ARG, "apply_updates: %s is NULL", !g ? "g" : params ? "updates" : "params");
        return NULL;
    }
    gv_graph_push_scope(g, who.name);
    gv_value *p = NULL, *u = NULL;
    size_t n, m;
    if (gv_tx_check_like(&who, g, "params", params, "updates", updates, false) != GV_OK ||
        gv_tx_leaves(params, &p, &n, NULL) != GV_OK || gv_tx_leaves(updates, &u, &m, NULL) != GV_OK) {
        gv_graph_pop_scope(g);
        free(p), free(u);
        return NULL;
    }
    for (size_t i = 0; i < n; i++) {
        gv_dtype dp = gv_value_dtype(p[i]), du = gv_value_dtype(u[i]);
        gv_value a = p[i], b = u[i];
        /* An update that is a constant zero (set_to_zero: a frozen param)
         * leaves the param as it is, as XLA does (its simplifier drops
         * A + 0): the param keeps its bits, -0.0 included, where IEEE
         * p + (+0) would turn a -0.0 into +0.0, and the step spends no
         * kernel on it. */
        const gv_node *un = &g->nodes[b.id];
        if (b.graph == g && un->op == GV_OP_FULL && un->fattr[0] == 0.0 && du == dp) continue;
        if (dp != du) { /* numpy promotion between float dtypes (or int with float) */
            gv_dtype wide = float_rank(du) > float_rank(dp) ? du : dp;
            a = gv_cast(a, wide), b = gv_cast(b, wide);
        }
        p[i] = gv_cast(gv_add(a, b), dp);
    }
    gv_graph_pop_scope(g);
    gv_tree *out = gv_graph_status(g) == GV_OK ? gv_tx_rebuild(params, p) : NULL;
    if (!out && gv_graph_status(g) != GV_OK)
        gv_error(gv_graph_status(g), "apply_updates: %s", gv_graph_error(g));
    free(p), free(u);
    return gv_graph_own(g, out);
}

static gv_tree *apply_trace(gv_graph *g, const gv_tree *in, void *ud) {
    return gv_apply_updates(g, gv_tree_child(in, 0), gv_tree_child(in, 1));
}

gv_tree *gv_apply_updates_eager(const gv_tree *params, const gv_tree *updates) {
    if (!params || !updates) {
        gv_error(GV_ERR_ARG, "apply_updates: %s is NULL", params ? "updates" : "params");
        return NULL;
    }
    gv_tree *in = gv_tree_tuple_take(2, (gv_tree *[]){gv_tree_clone(params),
                                                      gv_tree_clone(updates)});
    gv_fn *f = in ? gv_trace(apply_trace, NULL, in) : NULL;
    gv_tree *out = NULL;
    if (f && gv_fn_eval(f, in, &out) != GV_OK) out = NULL;
    if (!out) gv_error_prefix("apply_updates: ");
    gv_fn_free(f);
    gv_tree_free(in);
    return out;
}

/* ---- identity, set_to_zero, scale: stateless, state () ---- */


static gv_tree *empty_init(const gv_transform *tx, gv_graph *g, const gv_tree *params) {
    return gv_tree_new_tuple();
}

gv_status gv_tx_finish(gv_tree *u, gv_tree *s, gv_tree **nu, gv_tree **ns) {
    if (!u || !s) { /* the constructor that failed set the error */
        gv_tree_free(u), gv_tree_free(s);
        return gv_last_status() != GV_OK ? gv_last_status()
               : gv_error(GV_ERR_INTERNAL, "an update was not built and no error was set");
    }
    *nu = u, *ns = s;
    return GV_OK;
}

static gv_status identity_update(const gv_transform *tx, gv_graph *g, const gv_tree *updates,
                                 const gv_tree *state, const gv_tree *params, gv_tree **nu,
                                 gv_tree **ns) {
    if (gv_tx_check_empty(tx, g, state) != GV_OK) return gv_last_status();
    return gv_tx_finish(gv_tree_clone(updates), gv_tree_new_tuple(), nu, ns);
}

gv_transform *gv_identity(void) { return gv_tx_new("identity", empty_init, identity_update); }

/* Map the updates' leaves with one function of (tx, leaf). */
typedef gv_value (*leaf_fn)(const gv_transform *tx, gv_value u);

static gv_status map_updates(const gv_transform *tx, gv_graph *g, const gv_tree *updates,
                             leaf_fn fn, gv_tree **out) {
    gv_value *u;
    size_t n;
    if (gv_tx_leaves(updates, &u, &n, NULL) != GV_OK)
        return gv_tx_fail(tx, g, gv_last_status(), "updates: %s", gv_last_error());
    for (size_t i = 0; i < n; i++) u[i] = fn(tx, u[i]);
    *out = gv_graph_status(g) == GV_OK ? gv_tx_rebuild(updates, u) : NULL;
    free(u);
    return *out ? GV_OK : gv_last_status();
}

static gv_value zero_leaf(const gv_transform *tx, gv_value u) { return gv_zeros_like(u); }

static gv_status zero_update(const gv_transform *tx, gv_graph *g, const gv_tree *updates,
                             const gv_tree *state, const gv_tree *params, gv_tree **nu,
                             gv_tree **ns) {
    if (gv_tx_check_empty(tx, g, state) != GV_OK) return gv_last_status();
    gv_tree *u = NULL;
    if (map_updates(tx, g, updates, zero_leaf, &u) != GV_OK) return gv_last_status();
    return gv_tx_finish(u, gv_tree_new_tuple(), nu, ns);
}

gv_transform *gv_set_to_zero(void) { return gv_tx_new("set_to_zero", empty_init, zero_update); }

/* optax.scale: step_size * g, the Python float rounded to g's dtype;
 * scale_by_learning_rate (flag): -learning_rate * g */
static gv_value scale_leaf(const gv_transform *tx, gv_value u) {
    gv_dtype dt = gv_value_dtype(u);
    return gv_mul(tx->flag ? gv_tx_hp_neg(tx, u.graph, 0, dt) : gv_tx_hp(tx, u.graph, 0, dt), u);
}

static gv_status scale_update(const gv_transform *tx, gv_graph *g, const gv_tree *updates,
                              const gv_tree *state, const gv_tree *params, gv_tree **nu,
                              gv_tree **ns) {
    if (gv_tx_check_empty(tx, g, state) != GV_OK) return gv_last_status();
    gv_tree *u = NULL;
    if (map_updates(tx, g, updates, scale_leaf, &u) != GV_OK) return gv_last_status();
    return gv_tx_finish(u, gv_tree_new_tuple(), nu, ns);
}

gv_transform *gv_scale(double step_size) {
    gv_transform *tx = gv_tx_new("scale", empty_init, scale_update);
    if (tx) gv_tx_hp_set(tx, 0, "step_size", step_size);
    return tx;
}

gv_transform *gv_scale_by_learning_rate(double learning_rate) {
    /* optax: scale(-learning_rate), the negation on the Python float */
    gv_transform *tx = gv_tx_new("scale_by_learning_rate", empty_init, scale_update);
    if (tx) gv_tx_hp_set(tx, 0, "learning_rate", learning_rate), tx->flag = true;
    return tx;
}

/* ---- chain (transforms/_combining.py, A3) ---- */

static gv_tree *chain_init(const gv_transform *tx, gv_graph *g, const gv_tree *params) {
    gv_tree *s = gv_tree_new_tuple();
    for (size_t i = 0; s && i < tx->nkids; i++) {
        gv_tree *si = gv_tx_init_inner(tx->kids[i], g, params);
        if (!si || gv_tree_append(s, si) != GV_OK) {
            gv_tree_free(s);
            return NULL;
        }
    }
    return s;
}

static gv_status chain_update(const gv_transform *tx, gv_graph *g, const gv_tree *updates,
                              const gv_tree *state, const gv_tree *params, gv_tree **nu,
                              gv_tree **ns) {
    if (gv_tree_kind_of(state) != GV_TREE_TUPLE || gv_tree_num_children(state) != tx->nkids)
        return gv_tx_fail(tx, g, GV_ERR_STRUCTURE,
                          "expected a state tuple of %zu elements, got a %s of %zu; make sure "
                          "you have called init first",
                          tx->nkids, gv_tree_kind_name(gv_tree_kind_of(state)),
                          gv_tree_num_children(state));
    gv_tree *u = gv_tree_clone(updates), *s = gv_tree_new_tuple();
    for (size_t i = 0; u && s && i < tx->nkids; i++) {
        gv_tree *ui, *si;
        if (gv_tx_update_inner(tx->kids[i], g, u, gv_tree_child(state, i), params, &ui, &si) !=
            GV_OK) {
            gv_tree_free(u), gv_tree_free(s);
            return gv_last_status();
        }
        gv_tree_free(u);
        u = ui;
        if (gv_tree_append(s, si) != GV_OK) {
            gv_tree_free(u), gv_tree_free(s);
            return gv_last_status();
        }
    }
    return gv_tx_finish(u, s, nu, ns);
}

gv_transform *gv_chain(gv_transform *const *txs, size_t n) {
    bool bad = n > 0 && !txs;
    size_t bad_at = 0;
    for (size_t i = 0; !bad && i < n; i++) bad = !txs[i], bad_at = i;
    gv_transform *tx = bad ? NULL : gv_tx_new("chain", chain_init, chain_update);
    if (tx && n) {
        tx->kids = malloc(n * sizeof *tx->kids);
        if (!tx->kids) {
            free(tx);
            tx = NULL;
            gv_error(GV_ERR_NOMEM, "chain: out of memory");
        }
    }
    if (!tx) {
        for (size_t i = 0; txs && i < n; i++) gv_transform_free(txs[i]);
        if (bad && !txs) gv_error(GV_ERR_ARG, "chain: txs is NULL with n = %zu", n);
        else if (bad) {
            char what[48];
            snprintf(what, sizeof what, "transformation %zu of %zu", bad_at, n);
            gv_tx_null_arg("chain", what);
        }
        return NULL;
    }
    for (size_t i = 0; i < n; i++) tx->kids[i] = txs[i];
    tx->nkids = n;
    return tx;
}

/* ---- masked (transforms/_masking.py, A11) ---- */

/* The mask's truth at each leaf of full, in flatten order (malloc'd). */
static bool *mask_flags(const gv_transform *tx, gv_graph *g, const gv_tree *mask,
                        const gv_tree *full, size_t *n) {
    gv_tree *m = gv_tree_broadcast_prefix(mask, full);
    if (!m) {
        gv_tx_fail(tx, g, gv_last_status(), "the mask does not fit the tree: %s", gv_last_error());
        return NULL;
    }
    char **paths = NULL;
    size_t np = 0;
    *n = gv_tree_num_leaves(m);
    bool *f = malloc((*n ? *n : 1) * sizeof *f);
    if (!f || gv_tree_leaf_paths(m, &paths, &np) != GV_OK) {
        free(f), gv_tree_free(m);
        gv_tx_fail(tx, g, GV_ERR_NOMEM, "out of memory");
        return NULL;
    }
    for (size_t i = 0; i < np; i++) {
        const gv_tree *leaf = gv_tree_get(m, paths[i]);
        const char *lab = gv_tree_leaf_kind(leaf) == GV_LEAF_LABEL ? gv_tree_leaf_label(leaf) : NULL;
        gv_tensor *t = gv_tree_leaf_kind(leaf) == GV_LEAF_TENSOR ? gv_tree_leaf_tensor(leaf) : NULL;
        double v = 0;
        if (lab && (!strcmp(lab, "true") || !strcmp(lab, "True"))) f[i] = true;
        else if (lab && (!strcmp(lab, "false") || !strcmp(lab, "False"))) f[i] = false;
        else if (t && gv_tensor_size(t) == 1 && gv_tensor_get_flat(t, 0, &v) == GV_OK) f[i] = v != 0;
        else {
            gv_tx_fail(tx, g, GV_ERR_ARG,
                       "mask leaf at %s must be a one-element tensor or a label 'true'/'false'",
                       gv_tree_show_path(paths[i]));
            gv_tree_paths_free(paths, np), free(f), gv_tree_free(m);
            return NULL;
        }
    }
    gv_tree_paths_free(paths, np);
    gv_tree_free(m);
    return f;
}

typedef struct mask_ctx {
    const bool *flags;
} mask_ctx;

static gv_tree *mask_leaf(const gv_tree *leaf, size_t index, void *ud) {
    const mask_ctx *c = ud;
    return c->flags[index] ? gv_tree_clone(leaf) : gv_tree_new_tuple(); /* MaskedNode() */
}

/* The tree with masked-out leaves replaced by () (optax's MaskedNode). */
static gv_tree *mask_tree(const gv_transform *tx, gv_graph *g, const gv_tree *mask,
                          const gv_tree *t) {
    size_t n;
    bool *f = mask_flags(tx, g, mask, t, &n);
    if (!f) return NULL;
    mask_ctx c = {f};
    gv_tree *m = gv_tree_rebuild_indexed(t, mask_leaf, &c);
    free(f);
    return m;
}

gv_tree *gv_tx_masked_init(const gv_transform *who, const gv_transform *inner,
                           const gv_tree *mask, gv_graph *g, const gv_tree *params) {
    gv_tree *mp = mask_tree(who, g, mask, params);
    gv_tree *is = mp ? gv_tx_init_inner(inner, g, mp) : NULL;
    gv_tree_free(mp);
    if (!is) return NULL;
    gv_tree *s = gv_tree_new_dict();
    if (!s || gv_tree_insert(s, "inner_state", is) != GV_OK) {
        gv_tree_free(s);
        return NULL;
    }
    return s;
}

gv_status gv_tx_masked_update(const gv_transform *who, const gv_transform *inner,
                              const gv_tree *mask, gv_graph *g, const gv_tree *updates,
                              const gv_tree *state, const gv_tree *params, gv_tree **nu,
                              gv_tree **ns) {
    const gv_tree *inner_state = gv_tx_field(who, g, state, "inner_state");
    if (!inner_state) return gv_last_status();
    size_t n;
    bool *f = mask_flags(who, g, mask, updates, &n);
    if (!f) return gv_last_status();
    mask_ctx c = {f};
    gv_tree *mu = gv_tree_rebuild_indexed(updates, mask_leaf, &c);
    gv_tree *mp = params ? mask_tree(who, g, mask, params) : NULL;
    gv_tree *iu = NULL, *is = NULL;
    gv_status st = mu && (!params || mp) ? GV_OK : gv_last_status();
    if (st == GV_OK) st = gv_tx_update_inner(inner, g, mu, inner_state, mp, &iu, &is);
    gv_tree_free(mu), gv_tree_free(mp);
    gv_value *u = NULL, *v = NULL;
    size_t nu_ = 0, nv = 0;
    if (st == GV_OK) st = gv_tx_leaves(updates, &u, &nu_, NULL);
    if (st == GV_OK) st = gv_tx_leaves(iu, &v, &nv, NULL);
    gv_tree *out = NULL, *s = NULL;
    if (st == GV_OK) {
        /* masked-in leaves come back from inner in the same flatten order */
        size_t k = 0;
        for (size_t i = 0; i < nu_ && k < nv; i++)
            if (f[i]) u[i] = v[k++];
        out = gv_tx_rebuild(updates, u);
        s = gv_tree_new_dict();
        if (s && gv_tree_insert(s, "inner_state", is) == GV_OK) is = NULL;
        else gv_tree_free(s), s = NULL;
    }
    free(f), free(u), free(v);
    gv_tree_free(iu), gv_tree_free(is);
    if (st != GV_OK) return st;
    return gv_tx_finish(out, s, nu, ns);
}

static gv_tree *masked_init(const gv_transform *tx, gv_graph *g, const gv_tree *params) {
    return gv_tx_masked_init(tx, tx->kids[0], tx->mask, g, params);
}

static gv_status masked_update(const gv_transform *tx, gv_graph *g, const gv_tree *updates,
                               const gv_tree *state, const gv_tree *params, gv_tree **nu,
                               gv_tree **ns) {
    return gv_tx_masked_update(tx, tx->kids[0], tx->mask, g, updates, state, params, nu, ns);
}

gv_transform *gv_masked(gv_transform *inner, const gv_tree *mask) {
    if (!inner || !mask) {
        if (inner) gv_error(GV_ERR_ARG, "masked: mask is NULL");
        else gv_tx_null_arg("masked", "inner");
        gv_transform_free(inner);
        return NULL;
    }
    gv_transform *tx = gv_tx_new("masked", masked_init, masked_update);
    if (tx) tx->kids = malloc(sizeof *tx->kids);
    if (tx && tx->kids) tx->mask = gv_tree_copy(mask);
    if (!tx || !tx->kids || !tx->mask) {
        if (tx) free(tx->kids), gv_tree_free(tx->mask), free(tx);
        gv_transform_free(inner);
        gv_error(GV_ERR_NOMEM, "masked: out of memory");
        return NULL;
    }
    tx->kids[0] = inner;
    tx->nkids = 1;
    return tx;
}

/* ---- user-defined transformations (optax.GradientTransformation) ---- */

/* After a user function failed: make sure its error is the thread's and the
 * graph's, whichever of the two it set (or neither). */
static gv_status user_failed(const gv_transform *tx, gv_graph *g, gv_status st,
                             unsigned long long errors_before, const char *what) {
    if (gv_graph_status(g) != GV_OK)
        return gv_error(st != GV_OK ? st : gv_graph_status(g), "%s", gv_graph_error(g));
    if (st == GV_OK) st = GV_ERR_ARG; /* an init that returned NULL */
    if (gv_error_count() != errors_before) return gv_tx_fail(tx, g, st, "%s", gv_last_error());
    return gv_tx_fail(tx, g, st, "%s failed (%s) and set no message", what, gv_status_name(st));
}

/* The state's leaves must be traced values (a tensor there could not be
 * compiled as a carried state). */
static gv_status check_state_leaves(const gv_transform *tx, gv_graph *g, const gv_tree *state,
                                    const char *what) {
    gv_value *v;
    size_t n;
    if (gv_tx_leaves(state, &v, &n, NULL) != GV_OK)
        return gv_tx_fail(tx, g, gv_last_status(), "%s: %s", what, gv_last_error());
    free(v);
    return GV_OK;
}

static gv_tree *user_init(const gv_transform *tx, gv_graph *g, const gv_tree *params) {
    unsigned long long before = gv_error_count();
    gv_tree *s = tx->user->init(g, params, tx->user->ud);
    if (!s || gv_graph_status(g) != GV_OK) {
        gv_tree_free(s);
        user_failed(tx, g, GV_OK, before, "init");
        return NULL;
    }
    if (check_state_leaves(tx, g, s, "init returned a state") != GV_OK) {
        gv_tree_free(s);
        return NULL;
    }
    return s;
}

static gv_status user_update(const gv_transform *tx, gv_graph *g, const gv_tree *updates,
                             const gv_tree *state, const gv_tree *params, gv_tree **nu,
                             gv_tree **ns) {
    unsigned long long before = gv_error_count();
    gv_status st = tx->user->update(g, updates, state, params, nu, ns, tx->user->ud);
    if (st != GV_OK || gv_graph_status(g) != GV_OK) st = user_failed(tx, g, st, before, "update");
    else if (!*nu || !*ns)
        st = gv_tx_fail(tx, g, GV_ERR_ARG, "update returned GV_OK without %s",
                        !*nu ? "new_updates" : "new_state");
    else if (gv_tx_check_like(tx, g, "updates", updates, "the new updates", *nu, false) != GV_OK ||
             check_state_leaves(tx, g, *ns, "update returned a state") != GV_OK)
        st = gv_last_status();
    if (st != GV_OK) {
        gv_tree_free(*nu), gv_tree_free(*ns);
        *nu = *ns = NULL;
    }
    return st;
}

gv_transform *gv_transform_new(const char *name, gv_transform_init_fn init,
                               gv_transform_update_fn update, void *userdata,
                               void (*free_userdata)(void *)) {
    if (!init || !update) {
        if (free_userdata) free_userdata(userdata);
        gv_error(GV_ERR_ARG, "gv_transform_new: %s is NULL", init ? "update" : "init");
        return NULL;
    }
    const char *nm = name ? name : "transform";
    gv_tx_user *u = calloc(1, sizeof *u);
    char *copy = malloc(strlen(nm) + 1);
    gv_transform *tx = u && copy ? gv_tx_new(nm, user_init, user_update) : NULL;
    if (!tx) {
        free(u), free(copy);
        if (free_userdata) free_userdata(userdata);
        gv_error(GV_ERR_NOMEM, "gv_transform_new: out of memory");
        return NULL;
    }
    strcpy(copy, nm);
    *u = (gv_tx_user){copy, init, update, userdata, free_userdata};
    tx->user = u;
    tx->name = copy;
    return tx;
}
