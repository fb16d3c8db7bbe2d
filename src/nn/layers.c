/* Layers: Dense, Embed, Dropout, Sequential and the tutorial's FeedForward,
 * with Flax's parameter names, shapes, initialisers and creation order. */
#include <string.h>

#include "graph/graph_internal.h"
#include "grove/nn.h"

static gv_tree *one(gv_value v) { return gv_value_ok(v) ? gv_tree_new_value_leaf(v) : NULL; }

/* ---- Dense: y = x @ kernel + bias, kernel (in, features) ---- */

gv_dense_cfg gv_dense_defaults(int64_t features) {
    return (gv_dense_cfg){features, true, gv_init_lecun_normal(), gv_init_zeros()};
}

gv_value gv_dense_apply(gv_scope *s, const gv_dense_cfg *cfg, gv_value x) {
    gv_graph *g = gv_scope_graph(s);
    if (!gv_value_ok(x)) return x;
    if (gv_value_rank(x) < 1) {
        gv_graph_fail(g, GV_ERR_SHAPE, "Dense: input must have at least one axis");
        return gv_invalid(g);
    }
    int64_t in = gv_value_shape(x)[gv_value_rank(x) - 1];
    /* kernel first, then bias: their keys are make_rng('params') #1 and #2 */
    gv_value w = gv_param(s, "kernel", cfg->kernel_init, GV_DIMS(in, cfg->features));
    gv_value y = gv_matmul(x, w);
    if (cfg->use_bias) y = gv_add(y, gv_param(s, "bias", cfg->bias_init, GV_DIMS(cfg->features)));
    return y;
}

static gv_tree *dense_call(gv_scope *s, const void *cfg, const gv_tree *args) {
    return one(gv_dense_apply(s, cfg, gv_args_get(args, 0)));
}
const gv_module_type gv_Dense = {"Dense", dense_call, NULL, 0};

/* ---- Embed: table (num_embeddings, features), call = take(table, ids) ---- */

gv_embed_cfg gv_embed_defaults(int64_t num_embeddings, int64_t features) {
    return (gv_embed_cfg){num_embeddings, features,
                          gv_init_variance_scaling(1.0, GV_FAN_IN, GV_DIST_NORMAL, -2, 0)};
}

static gv_tree *embed_call(gv_scope *s, const void *cfgp, const gv_tree *args) {
    const gv_embed_cfg *cfg = cfgp;
    gv_value table = gv_param(s, "embedding", cfg->embedding_init,
                              GV_DIMS(cfg->num_embeddings, cfg->features));
    return one(gv_take(table, gv_args_get(args, 0), 0));
}
const gv_module_type gv_Embed = {"Embed", embed_call, NULL, 0};

/* ---- Dropout (reference C6): keep = bernoulli(make_rng('dropout'), 1 - rate)
 * over x's shape with broadcast_dims set to 1; out = keep ? x / (1 - rate) : 0 */

static gv_tree *dropout_call(gv_scope *s, const void *cfgp, const gv_tree *args) {
    const gv_dropout_cfg *cfg = cfgp;
    gv_value x = gv_args_get(args, 0);
    gv_graph *g = gv_scope_graph(s);
    if (!gv_value_ok(x)) return NULL;
    if (cfg->deterministic || !gv_scope_train(s) || cfg->rate == 0.0) return one(x);
    if (cfg->rate == 1.0) return one(gv_zeros_like(x));
    if (!(cfg->rate > 0.0 && cfg->rate < 1.0)) {
        gv_graph_fail(g, GV_ERR_ARG, "Dropout: rate %g is not in [0, 1]", cfg->rate);
        return NULL;
    }
    int r = gv_value_rank(x);
    int64_t shape[r > 0 ? r : 1];
    for (int i = 0; i < r; i++) shape[i] = gv_value_shape(x)[i];
    for (int i = 0; i < cfg->nbroadcast; i++) {
        int a = cfg->broadcast_dims[i] < 0 ? cfg->broadcast_dims[i] + r : cfg->broadcast_dims[i];
        if (a < 0 || a >= r) {
            gv_graph_fail(g, GV_ERR_ARG, "Dropout: broadcast dim %d out of range for rank %d",
                          cfg->broadcast_dims[i], r);
            return NULL;
        }
        shape[a] = 1;
    }
    double keep = 1.0 - cfg->rate; /* Python double, then float32 as jnp does */
    gv_value key = gv_make_rng(s, "dropout");
    gv_value mask = gv_random_bernoulli(gv_scope_prng_impl(s), key, (float)keep, r, shape);
    /* eager Flax: x / keep (a true division, reference 7.2) */
    gv_value scaled = gv_div(x, gv_scalar(g, gv_value_dtype(x), (double)(float)keep));
    return one(gv_select(mask, scaled, gv_zeros_like(x)));
}
const gv_module_type gv_Dropout = {"Dropout", dropout_call, NULL, 0};

/* ---- Sequential: layers_0, layers_1, ... each fed the previous output ---- */

static gv_tree *sequential_call(gv_scope *s, const void *cfgp, const gv_tree *args) {
    const gv_sequential_cfg *cfg = cfgp;
    gv_graph *g = gv_scope_graph(s);
    if (cfg->nlayers < 1) {
        gv_graph_fail(g, GV_ERR_ARG, "Sequential: no layers");
        return NULL;
    }
    gv_tree *cur = gv_tree_clone(args);
    for (int i = 0; cur && i < cfg->nlayers; i++) {
        char name[32];
        snprintf(name, sizeof name, "layers_%d", i);
        gv_tree *next = gv_scope_call(s, name, &cfg->layers[i], NULL, cur);
        gv_tree_free(cur);
        cur = next;
        /* a single array is passed on as one argument */
        if (cur && gv_tree_is_leaf(cur)) {
            gv_tree *wrapped = gv_args1(gv_tree_leaf_value(cur));
            gv_tree_free(cur);
            cur = wrapped;
        }
    }
    if (!cur) return NULL;
    if (gv_tree_num_children(cur) == 1) {
        gv_tree *v = gv_tree_pop(cur, "0");
        gv_tree_free(cur);
        return v;
    }
    return cur;
}
const gv_module_type gv_Sequential = {"Sequential", sequential_call, NULL, 0};

/* ---- FeedForward (the tutorial's): compact Dense_i with an activation ---- */

static gv_tree *feedforward_call(gv_scope *s, const void *cfgp, const gv_tree *args) {
    const gv_feedforward_cfg *cfg = cfgp;
    gv_value x = gv_args_get(args, 0);
    for (int i = 0; i < cfg->ndims; i++) {
        gv_dense_cfg d = gv_dense_defaults(cfg->dims[i]);
        gv_module dense = {&gv_Dense, &d};
        x = gv_scope_call1(s, NULL, &dense, x);
        if (i != cfg->ndims - 1 || !cfg->drop_last_activation)
            x = cfg->activation ? cfg->activation(x) : gv_relu(x);
    }
    return one(x);
}
const gv_module_type gv_FeedForward = {"FeedForward", feedforward_call, NULL, 0};
