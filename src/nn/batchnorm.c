/* BatchNorm (flax.linen.BatchNorm, reference C8): normalise over every axis
 * but cfg->axis with the batch statistics while training, updating the
 * running averages in the mutable "batch_stats" collection, or with the
 * running averages in eval. */
#include "graph/graph_internal.h"
#include "grove/nn.h"

gv_batchnorm_cfg gv_batchnorm_defaults(void) {
    return (gv_batchnorm_cfg){.use_running_average = false, .axis = -1, .momentum = 0.99,
                              .epsilon = 1e-5, .use_bias = true, .use_scale = true,
                              .bias_init = gv_init_zeros(), .scale_init = gv_init_ones(),
                              .use_fast_variance = true};
}

/* flax _compute_stats (float32 input): mean and the biased variance over
 * axes; fast: max(0, E[x^2] - E[x]^2), else E[(x - E[x])^2]. */
static void batch_stats(gv_value x, const int *axes, int naxes, int axis, bool fast,
                        gv_value *mean, gv_value *var) {
    gv_graph *g = x.graph;
    *mean = gv_mean(x, axes, naxes, false);
    if (fast) {
        gv_value mean2 = gv_mean(gv_square(x), axes, naxes, false);
        *var = gv_maximum(gv_scalar(g, GV_F32, 0.0), gv_sub(mean2, gv_square(*mean)));
    } else {
        int r = gv_value_rank(x);
        int64_t fshape[r];
        for (int i = 0; i < r; i++) fshape[i] = i == axis ? gv_value_shape(x)[i] : 1;
        gv_value centred = gv_sub(x, gv_reshape(*mean, r, fshape));
        *var = gv_mean(gv_square(centred), axes, naxes, false);
    }
}

gv_value gv_batchnorm_apply(gv_scope *s, const gv_batchnorm_cfg *cfg, gv_value x) {
    gv_graph *g = gv_scope_graph(s);
    if (!gv_value_ok(x)) return x;
    int r = gv_value_rank(x);
    int axis = cfg->axis < 0 ? cfg->axis + r : cfg->axis;
    if (r < 1 || axis < 0 || axis >= r || gv_value_dtype(x) != GV_F32) {
        gv_graph_fail(g, r < 1 || axis < 0 || axis >= r ? GV_ERR_SHAPE : GV_ERR_ARG,
                      "BatchNorm in %s: %s", gv_scope_path(s)[0] ? gv_scope_path(s) : "<root>",
                      gv_value_dtype(x) != GV_F32 ? "input must be float32"
                                                  : "axis out of range for the input's rank");
        return gv_invalid(g);
    }
    int64_t features = gv_value_shape(x)[axis];
    int axes[r > 1 ? r - 1 : 1], naxes = 0;
    int64_t fshape[r];
    for (int i = 0; i < r; i++) {
        if (i != axis) axes[naxes++] = i;
        fshape[i] = i == axis ? features : 1;
    }
    /* Flax's order: batch_stats mean and var first, then params scale, bias */
    gv_var *ra_mean = gv_variable(s, "batch_stats", "mean", gv_init_zeros(), GV_DIMS(features));
    gv_var *ra_var = gv_variable(s, "batch_stats", "var", gv_init_ones(), GV_DIMS(features));
    if (!ra_mean || !ra_var) return gv_invalid(g);
    /* use_running_average is given once in Flax; here the cfg or an eval
     * scope (gv_module_options.train false, as for Dropout) says it */
    bool use_ra = cfg->use_running_average || !gv_scope_train(s);
    gv_value mean, var;
    if (use_ra) {
        mean = gv_variable_value(ra_mean);
        var = gv_variable_value(ra_var);
    } else {
        batch_stats(x, axes, naxes, axis, cfg->use_fast_variance, &mean, &var);
        if (!gv_scope_is_init(s)) {
            /* momentum weighs the old value; (1 - momentum) is a Python
             * double rounded to float32, as jnp's weak typing does */
            gv_value m = gv_scalar(g, GV_F32, cfg->momentum);
            gv_value m1 = gv_scalar(g, GV_F32, 1.0 - cfg->momentum);
            if (!gv_variable_set(ra_mean, gv_add(gv_mul(m, gv_variable_value(ra_mean)),
                                                 gv_mul(m1, mean))) ||
                !gv_variable_set(ra_var, gv_add(gv_mul(m, gv_variable_value(ra_var)),
                                                gv_mul(m1, var))))
                return gv_invalid(g);
        }
    }
    /* flax _normalize: y = (x - mean) * (rsqrt(var + eps) * scale) + bias */
    gv_value y = gv_sub(x, gv_reshape(mean, r, fshape));
    gv_value mul = gv_rsqrt(gv_add(gv_reshape(var, r, fshape), gv_scalar(g, GV_F32, cfg->epsilon)));
    if (cfg->use_scale)
        mul = gv_mul(mul, gv_reshape(gv_param(s, "scale", cfg->scale_init, GV_DIMS(features)),
                                     r, fshape));
    y = gv_mul(y, mul);
    if (cfg->use_bias)
        y = gv_add(y, gv_reshape(gv_param(s, "bias", cfg->bias_init, GV_DIMS(features)),
                                 r, fshape));
    return y;
}

static gv_tree *batchnorm_call(gv_scope *s, const void *cfg, const gv_tree *args) {
    gv_value y = gv_batchnorm_apply(s, cfg, gv_args_get(args, 0));
    return gv_value_ok(y) ? gv_tree_new_value_leaf(y) : NULL;
}
const gv_module_type gv_BatchNorm = {"BatchNorm", batchnorm_call, NULL, 0};
