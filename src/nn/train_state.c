/* TrainState: create and apply_gradients (reference C1). */
#include <string.h>

#include "core/error.h"
#include "graph/graph_internal.h"
#include "grove/eval_shape.h"
#include "grove/train_state.h"
#include "grove/distributed.h"
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
    gv_tree *updates = NULL, *new_opt = NULL;
    gv_status st = gv_transform_update(tx, g, grads, opt, params, &updates, &new_opt);
    gv_tree_free(mean);
    if (st != GV_OK) {
        gv_graph_fail(g, gv_last_status(), "apply_gradients: %s", gv_last_error());
        return NULL;
    }
    gv_tree *new_params = gv_apply_updates(g, params, updates);
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
