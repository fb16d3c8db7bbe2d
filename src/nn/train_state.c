/* TrainState: create and apply_gradients (reference C1). */
#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "graph/graph_internal.h"
#include "grove/eval_shape.h"
#include "grove/train_state.h"
#include "grove/distributed.h"
#include "optim/optim_internal.h"
#include "tree/tree_internal.h"

gv_tree *gv_train_state_create(gv_transform *tx, const gv_tree *params) {
    if (!tx || !params) {
        gv_error(GV_ERR_ARG, "gv_train_state_create: %s is NULL", tx ? "params" : "tx");
        return NULL;
    }
    gv_tree *opt = gv_transform_init_eager(tx, params);
    if (!opt) {
        gv_error_prefix("gv_train_state_create: tx.init: ");
        return NULL;
    }
    gv_tree *state = gv_tree_new_dict();
    gv_tensor *step = state ? gv_tensor_scalar(GV_I32, 0) : NULL;
    gv_tree *params_copy = step ? gv_tree_clone(params) : NULL;
    /* each insert consumes its subtree, failed or not */
    gv_status st = params_copy ? gv_tree_insert_tensor(state, "step", step) : gv_last_status();
    if (st == GV_OK) st = gv_tree_insert(state, "params", params_copy);
    else gv_tree_free(params_copy);
    if (st == GV_OK) st = gv_tree_insert(state, "opt_state", opt);
    else gv_tree_free(opt);
    gv_tensor_free(step);
    if (st != GV_OK) {
        gv_tree_free(state);
        gv_error_prefix("gv_train_state_create: ");
        return NULL;
    }
    return state;
}

/* ---- ZeRO-1 ---- */

typedef struct leaf_sizes {
    int64_t *size;
    size_t n, cap;
} leaf_sizes;

static gv_status size_of_leaf(const char *path, const gv_tree *leaf, void *ud) {
    leaf_sizes *l = ud;
    gv_tensor *t = gv_tree_leaf_tensor(leaf);
    int64_t n = t ? gv_tensor_size(t) : gv_value_size(gv_tree_leaf_value(leaf));
    if (l->n == l->cap) return gv_error(GV_ERR_INTERNAL, "more leaves than counted");
    l->size[l->n++] = n;
    return GV_OK;
}

/* owner[i] for each leaf of params (flatten order): largest leaf first, to
 * the process with the fewest elements so far (the lowest index on ties).
 * A new array of *n entries, NULL with the error set. */
static int *zero1_owners(const gv_tree *params, int procs, size_t *n) {
    size_t cap = gv_tree_num_leaves(params);
    leaf_sizes l = {calloc(cap ? cap : 1, sizeof *l.size), 0, cap};
    int *owner = calloc(cap ? cap : 1, sizeof *owner);
    size_t *order = calloc(cap ? cap : 1, sizeof *order);
    int64_t *load = calloc((size_t)procs, sizeof *load);
    if (!l.size || !owner || !order || !load) {
        gv_error(GV_ERR_NOMEM, "out of memory");
        goto fail;
    }
    if (gv_tree_foreach_leaf(params, size_of_leaf, &l) != GV_OK) goto fail;
    for (size_t i = 0; i < cap; i++) order[i] = i;
    for (size_t i = 1; i < cap; i++) /* stable insertion sort, largest first */
        for (size_t j = i; j > 0 && l.size[order[j]] > l.size[order[j - 1]]; j--) {
            size_t t = order[j];
            order[j] = order[j - 1], order[j - 1] = t;
        }
    for (size_t k = 0; k < cap; k++) {
        int best = 0;
        for (int r = 1; r < procs; r++)
            if (load[r] < load[best]) best = r;
        owner[order[k]] = best;
        load[best] += l.size[order[k]];
    }
    free(l.size), free(order), free(load);
    *n = cap;
    return owner;
fail:
    free(l.size), free(owner), free(order), free(load);
    return NULL;
}

typedef struct subtree_ctx {
    const int *owner;
    int rank;
    size_t i;
    gv_tree *out;
} subtree_ctx;

static gv_status take_owned(const char *path, const gv_tree *leaf, void *ud) {
    subtree_ctx *c = ud;
    if (c->owner[c->i++] != c->rank) return GV_OK;
    gv_tree *copy = gv_tree_clone(leaf);
    if (!copy) return gv_error(GV_ERR_NOMEM, "out of memory");
    gv_status st = gv_tree_insert(c->out, path, copy);
    if (st) gv_tree_free(copy);
    return st;
}

/* The dict of the leaves of tree that process rank owns, at their paths. */
static gv_tree *owned_subtree(const gv_tree *tree, const int *owner, int rank) {
    subtree_ctx c = {owner, rank, 0, gv_tree_new_dict()};
    if (!c.out || gv_tree_foreach_leaf(tree, take_owned, &c) != GV_OK) {
        gv_tree_free(c.out);
        return NULL;
    }
    return c.out;
}

/* A transformation that looks at all the grads at once cannot run on a shard. */
static const char *couples_leaves(const gv_transform *tx) {
    static const char *names[] = {"clip_by_global_norm", "apply_if_finite", "MultiSteps"};
    for (size_t k = 0; k < sizeof names / sizeof *names; k++)
        if (!strcmp(tx->name, names[k])) return names[k];
    for (size_t k = 0; k < tx->nkids; k++) {
        const char *bad = couples_leaves(tx->kids[k]);
        if (bad) return bad;
    }
    return NULL;
}

static bool is_dict_of_dicts(const gv_tree *t) {
    if (gv_tree_kind_of(t) == GV_TREE_LEAF) return true;
    if (gv_tree_kind_of(t) != GV_TREE_DICT) return false;
    for (size_t i = 0; i < gv_tree_num_children(t); i++)
        if (!is_dict_of_dicts(gv_tree_child(t, i))) return false;
    return true;
}

gv_tree *gv_train_state_create_zero1(gv_transform *tx, const gv_tree *params) {
    if (!tx || !params) {
        gv_error(GV_ERR_ARG, "gv_train_state_create_zero1: %s is NULL", !tx ? "tx" : "params");
        return NULL;
    }
    const char *bad = couples_leaves(tx);
    if (bad) {
        gv_error(GV_ERR_UNSUPPORTED, "gv_train_state_create_zero1: %s looks at all the grads at "
                 "once, which a process holding a shard of them cannot do", bad);
        return NULL;
    }
    if (gv_tree_kind_of(params) != GV_TREE_DICT || !is_dict_of_dicts(params)) {
        gv_error(GV_ERR_STRUCTURE, "gv_train_state_create_zero1: params must be a dict of dicts");
        return NULL;
    }
    int procs = gv_process_count(), rank = gv_process_index();
    size_t n = 0;
    int *owner = zero1_owners(params, procs, &n);
    if (!owner) {
        gv_error_prefix("gv_train_state_create_zero1: ");
        return NULL;
    }
    if (n < (size_t)procs) {
        free(owner);
        gv_error(GV_ERR_ARG, "gv_train_state_create_zero1: %zu leaves of params for %d processes: "
                 "every process needs one", n, procs);
        return NULL;
    }
    int32_t counts[procs];
    memset(counts, 0, sizeof counts);
    for (size_t i = 0; i < n; i++) counts[owner[i]]++;
    gv_tree *mine = owned_subtree(params, owner, rank);
    free(owner);
    gv_tree *state = NULL;
    if (mine) {
        gv_tree *part = gv_train_state_create(tx, mine);
        gv_tensor *z = part ? gv_tensor_from_data(GV_I32, GV_DIMS(procs), counts, sizeof counts) : NULL;
        /* the state's params are all of them, shared with the caller's tree */
        gv_tree *full = z ? gv_tree_clone(params) : NULL;
        bool set = full && gv_tree_set(part, "params", full) == GV_OK;
        if (set) full = NULL;
        if (set && gv_tree_insert_tensor(part, "zero1", z) == GV_OK) state = part, part = NULL;
        gv_tree_free(full), gv_tree_free(part), gv_tensor_free(z);
    }
    gv_tree_free(mine);
    if (!state) gv_error_prefix("gv_train_state_create_zero1: ");
    return state;
}

/* The ZeRO-1 update: tx on this process's leaves, then every process gets
 * every new leaf from its owner. *new_params and *new_opt are new trees. */
static gv_status zero1_update(gv_graph *g, const gv_transform *tx, const gv_tree *params,
                              const gv_tree *grads, const gv_tree *opt, gv_value zero1,
                              gv_tree **new_params, gv_tree **new_opt) {
    int procs = gv_process_count(), rank = gv_process_index();
    if (gv_value_rank(zero1) != 1 || gv_value_shape(zero1)[0] != procs)
        return gv_error(GV_ERR_STRUCTURE, "the state was sharded for %lld processes (ZeRO-1), this "
                        "job has %d", gv_value_rank(zero1) == 1 ? (long long)gv_value_shape(zero1)[0]
                        : -1LL, procs);
    size_t n = 0;
    int *owner = zero1_owners(params, procs, &n);
    if (!owner) return gv_last_status();
    gv_tree *my_p = owned_subtree(params, owner, rank), *my_g = owned_subtree(grads, owner, rank);
    gv_tree *updates = NULL, *my_new = NULL, *gathered = NULL;
    gv_value *vals = NULL;
    char **paths = NULL;
    size_t nv = 0;
    gv_status st = my_p && my_g ? GV_OK : gv_error(GV_ERR_NOMEM, "out of memory");
    if (!st) st = gv_transform_update(tx, g, my_g, opt, my_p, &updates, new_opt);
    if (!st && !(my_new = gv_apply_updates(g, my_p, updates))) st = gv_last_status();
    if (!st) st = gv_tx_leaves(params, &vals, &nv, &paths);
    /* this process's new value of each leaf it owns, -0.0 for the others:
     * -0.0 + x == x for every x (-0.0 and NaN included), so the psum over
     * the processes is exactly the owner's value */
    for (size_t i = 0; !st && i < nv; i++)
        vals[i] = owner[i] == rank ? gv_tree_get_value(my_new, paths[i]) : gv_full_like(vals[i], -0.0);
    if (!st && !(gathered = gv_tx_rebuild(params, vals))) st = gv_last_status();
    if (!st && !(*new_params = gv_psum_tree(g, gathered, 0))) st = gv_graph_status(g);
    if (st && *new_opt) gv_tree_free(*new_opt), *new_opt = NULL;
    gv_tree_free(my_p), gv_tree_free(my_g), gv_tree_free(updates), gv_tree_free(my_new);
    gv_tree_free(gathered), free(vals), free(owner), gv_tree_paths_free(paths, nv);
    return st;
}

gv_tree *gv_train_state_apply_gradients(gv_graph *g, const gv_transform *tx,
                                        const gv_tree *state, const gv_tree *grads) {
    if (!g || gv_graph_status(g) != GV_OK) return NULL;
    const gv_tree *params = gv_tree_get(state, "params");
    const gv_tree *opt = gv_tree_get(state, "opt_state");
    gv_value step = gv_tree_get_value(state, "step");
    if (!params || !opt || !gv_value_ok(step)) {
        gv_graph_fail(g, GV_ERR_STRUCTURE, "apply_gradients: the state needs 'step', 'params' "
                      "and 'opt_state' (made by gv_train_state_create)");
        return NULL;
    }
    /* data-parallel (distributed.h): the mean of every process's grads, so
     * N processes step as one would on the whole batch */
    gv_tree *mean = NULL;
    if (gv_process_count() > 1 && !(grads = mean = gv_pmean_tree(g, grads, 0))) return NULL;
    gv_tree *updates = NULL, *new_opt = NULL, *new_params = NULL;
    bool zero1 = gv_tree_contains(state, "zero1");
    gv_status st = zero1 ? zero1_update(g, tx, params, grads, opt, gv_tree_get_value(state, "zero1"),
                                        &new_params, &new_opt)
                         : gv_transform_update(tx, g, grads, opt, params, &updates, &new_opt);
    gv_tree_free(mean);
    if (st != GV_OK) {
        gv_graph_fail(g, gv_last_status(), "apply_gradients: %s", gv_last_error());
        return NULL;
    }
    if (!zero1) new_params = gv_apply_updates(g, params, updates);
    gv_tree_free(updates);
    if (!new_params) {
        gv_tree_free(new_opt);
        gv_graph_fail(g, gv_last_status(), "apply_gradients: %s", gv_last_error());
        return NULL;
    }
    /* step + 1, saturating at INT32_MAX like optax's safe_increment */
    gv_value max = gv_scalar(g, GV_I32, 2147483647.0);
    gv_value next = gv_select(gv_lt(step, max), gv_add(step, gv_scalar(g, GV_I32, 1.0)), max);
    gv_tree *out = gv_tree_new_dict();
    for (size_t i = 0; out && i < gv_tree_num_children(state); i++) {
        const char *k = gv_tree_key(state, i);
        gv_tree *v = !strcmp(k, "step") ? gv_tree_new_value_leaf(next)
                   : !strcmp(k, "params") ? new_params
                   : !strcmp(k, "opt_state") ? new_opt
                   : gv_tree_clone(gv_tree_child(state, i));
        if (!strcmp(k, "params")) new_params = NULL;
        if (!strcmp(k, "opt_state")) new_opt = NULL;
        if (gv_tree_insert(out, k, v) != GV_OK) {
            gv_tree_free(out);
            out = NULL;
        }
    }
    gv_tree_free(new_params);
    gv_tree_free(new_opt);
    if (!out) gv_graph_fail(g, gv_last_status(), "apply_gradients: %s", gv_last_error());
    return gv_graph_own(g, out);
}

int32_t gv_train_state_step(const gv_tree *state) {
    gv_tensor *t = gv_tree_get_tensor(state, "step");
    if (!t) {
        gv_error_prefix("gv_train_state_step: ");
        return -1;
    }
    if (gv_tensor_dtype(t) != GV_I32 || gv_tensor_rank(t) != 0) {
        gv_error(GV_ERR_STRUCTURE, "gv_train_state_step: 'step' is not an int32 scalar");
        return -1;
    }
    const int32_t *step = gv_tensor_data_const(t);
    return step ? *step : -1; /* NULL: shape-only, the error is set */
}

gv_tree *gv_train_state_params(const gv_tree *state) {
    gv_tree *p = gv_tree_get(state, "params");
    if (!p) gv_error_prefix("gv_train_state_params: ");
    return p;
}

/* ---- batch_stats ---- */

/* state plus "batch_stats" (consumed, failed or not); frees state on failure */
static gv_tree *with_field(gv_tree *state, gv_tree *stats, const char *fn) {
    if (!state) {
        gv_tree_free(stats);
        return NULL;
    }
    if (!stats || gv_tree_insert(state, "batch_stats", stats) != GV_OK) {
        gv_tree_free(state);
        gv_error_prefix("%s: batch_stats: ", fn);
        return NULL;
    }
    return state;
}

gv_tree *gv_train_state_create_with_batch_stats(gv_transform *tx, const gv_tree *params,
                                                const gv_tree *batch_stats) {
    static const char *fn = "gv_train_state_create_with_batch_stats";
    if (!batch_stats) {
        gv_error(GV_ERR_ARG, "%s: batch_stats is NULL", fn);
        return NULL;
    }
    return with_field(gv_train_state_create(tx, params), gv_tree_clone(batch_stats), fn);
}

gv_tree *gv_eval_shape_train_state_with_batch_stats(const gv_transform *tx, const gv_tree *params,
                                                    const gv_tree *batch_stats) {
    static const char *fn = "gv_eval_shape_train_state_with_batch_stats";
    if (!batch_stats) {
        gv_error(GV_ERR_ARG, "%s: batch_stats is NULL", fn);
        return NULL;
    }
    gv_tree *state = gv_eval_shape_train_state(tx, params);
    return with_field(state, state ? gv_tree_to_shape_dtype_struct(batch_stats) : NULL, fn);
}

gv_tree *gv_train_state_batch_stats(const gv_tree *state) {
    gv_tree *b = gv_tree_get(state, "batch_stats");
    if (!b) gv_error_prefix("gv_train_state_batch_stats (made by "
                            "gv_train_state_create_with_batch_stats?): ");
    return b;
}

gv_tree *gv_train_state_replace(gv_graph *g, const gv_tree *state, const char *field,
                                const gv_tree *value) {
    if (!g || gv_graph_status(g) != GV_OK) return NULL;
    if (!state || !field || !value) {
        gv_graph_fail(g, GV_ERR_ARG, "state.replace: %s is NULL",
                      !state ? "state" : !field ? "field" : "value");
        return NULL;
    }
    if (!gv_tree_find(state, field) || strchr(field, '/')) {
        gv_graph_fail(g, GV_ERR_NOT_FOUND, "state.replace: the state has no field '%s'", field);
        return NULL;
    }
    gv_tree *out = gv_tree_new_dict();
    for (size_t i = 0; out && i < gv_tree_num_children(state); i++) {
        const char *k = gv_tree_key(state, i);
        gv_tree *v = gv_tree_clone(strcmp(k, field) ? gv_tree_child(state, i) : value);
        if (!v || gv_tree_insert(out, k, v) != GV_OK) {
            gv_tree_free(out);
            out = NULL;
        }
    }
    if (!out) gv_graph_fail(g, gv_last_status(), "state.replace: %s", gv_last_error());
    return gv_graph_own(g, out);
}
