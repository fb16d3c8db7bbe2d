/* The shapes of model.init's variables and of a TrainState, without their
 * data (jax.eval_shape of init and of TrainState.create; nn.h,
 * train_state.h): what a restore needs as its target. */
#include "core/error.h"
#include "grove/eval_shape.h"
#include "grove/train_state.h"

gv_tree *gv_eval_shape_init(const gv_module *m, gv_key key, const gv_tree *args,
                            const gv_module_options *o) {
    /* gv_init draws the params while it traces; keeping only their shapes
     * frees them at once (a scope mode that skips the draw would save the
     * work too) */
    gv_tree *vars = gv_init(m, key, args, o);
    if (!vars) {
        gv_error_prefix("gv_eval_shape_init: ");
        return NULL;
    }
    gv_tree *out = gv_tree_to_shape_dtype_struct(vars);
    gv_tree_free(vars);
    if (!out) gv_error_prefix("gv_eval_shape_init: ");
    return out;
}

static gv_tree *opt_init_trace(gv_graph *g, const gv_tree *params, void *tx) {
    return gv_transform_init(tx, g, params);
}

/* {"step", "params", "opt_state"} in gv_train_state_create's order. Each
 * insert consumes its subtree, failed or not. */
static gv_tree *state_dict(gv_tree *params, gv_tree *opt) {
    gv_tree *state = gv_tree_new_dict();
    gv_tensor *step = state ? gv_shape_dtype_struct(GV_I32, 0, NULL) : NULL;
    gv_status st = step ? gv_tree_insert_tensor(state, "step", step) : GV_ERR_NOMEM;
    gv_tensor_free(step);
    if (st == GV_OK) st = gv_tree_insert(state, "params", params);
    else gv_tree_free(params);
    if (st == GV_OK) st = gv_tree_insert(state, "opt_state", opt);
    else gv_tree_free(opt);
    if (st != GV_OK) {
        gv_tree_free(state);
        return NULL;
    }
    return state;
}

gv_tree *gv_eval_shape_train_state(const gv_transform *tx, const gv_tree *params) {
    static const char *fn = "gv_eval_shape_train_state";
    if (!tx || !params) {
        gv_error(GV_ERR_ARG, "%s: %s is NULL", fn, tx ? "params" : "tx");
        return NULL;
    }
    gv_tree *opt = gv_eval_shape(opt_init_trace, (void *)tx, params);
    if (!opt) {
        gv_error_prefix("%s: tx.init: ", fn);
        return NULL;
    }
    gv_tree *p = gv_tree_to_shape_dtype_struct(params);
    if (!p) {
        gv_tree_free(opt);
        gv_error_prefix("%s: params: ", fn);
        return NULL;
    }
    gv_tree *state = state_dict(p, opt);
    if (!state) gv_error_prefix("%s: ", fn);
    return state;
}
