/* Flax's LayerNorm, RMSNorm and GroupNorm (flax/linen/normalization.py):
 * _compute_stats and _normalize written with the same traced ops in the same
 * order, so the forward pass and its VJP do the arithmetic Flax's does; only
 * the order of the terms inside a reduction is grove's own. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "graph/graph_internal.h"
#include "grove/nn.h"

static gv_tree *one(gv_value v) { return gv_value_ok(v) ? gv_tree_new_value_leaf(v) : NULL; }

/* Errors name the layer; the graph puts the module path in front of them
 * ("encoder/GroupNorm_0: GroupNorm: ..."), as for every op in a scope. */
static gv_value fail(gv_scope *s, const char *layer, gv_status st, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static gv_value fail(gv_scope *s, const char *layer, gv_status st, const char *fmt, ...) {
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    gv_graph *g = gv_scope_graph(s);
    gv_graph_fail(g, st, "%s: %s", layer, msg);
    return gv_invalid(g);
}

static gv_value fail_shape(gv_scope *s, const char *layer, gv_value x, const char *what) {
    char *sh = gv_shape_str(gv_value_rank(x), gv_value_shape(x));
    gv_value v = fail(s, layer, GV_ERR_SHAPE, "%s (input shape %s)", what, sh ? sh : "?");
    free(sh);
    return v;
}

/* Flax's _canonicalize_axes: positive, deduplicated, sorted. axes NULL or
 * n = 0: the default {dflt}. out has room for rank entries; returns the count
 * or -1 after a trace error. */
static int canon_axes(gv_scope *s, const char *layer, const char *what, gv_value x,
                      const int *axes, int n, int dflt, int *out) {
    int rank = gv_value_rank(x);
    if (!axes || n <= 0) axes = &dflt, n = 1;
    bool seen[rank > 0 ? rank : 1];
    memset(seen, 0, sizeof seen);
    for (int i = 0; i < n; i++) {
        int a = axes[i] < 0 ? axes[i] + rank : axes[i];
        if (a < 0 || a >= rank) {
            char buf[128];
            snprintf(buf, sizeof buf, "%s axis %d is out of range for an input of rank %d", what,
                     axes[i], rank);
            fail_shape(s, layer, x, buf);
            return -1;
        }
        seen[a] = true;
    }
    int k = 0;
    for (int a = 0; a < rank; a++)
        if (seen[a]) out[k++] = a;
    return k;
}

/* Statistics are at least float32 (force_float32_reductions); grove's float
 * types are float32 and float64, so x keeps its dtype. */
static bool check_input(gv_scope *s, const char *layer, gv_value x) {
    if (!gv_value_ok(x)) return false;
    gv_dtype dt = gv_value_dtype(x);
    if (dt != GV_F32 && dt != GV_F64) {
        fail(s, layer, GV_ERR_DTYPE, "expects a float32 or float64 input, got %s",
             gv_dtype_name(dt));
        return false;
    }
    return true;
}

/* _compute_stats with keepdims (Flax takes the mean without and expands it
 * back in _normalize: the same numbers). use_mean false: mean 0, var E[x^2]. */
static void compute_stats(gv_value x, const int *axes, int naxes, bool use_mean, bool fast,
                          gv_value *mean, gv_value *var) {
    if (!use_mean) {
        *var = gv_mean(gv_square(x), axes, naxes, true);
        *mean = gv_invalid(x.graph);
        return;
    }
    if (fast) {
        /* var = jnp.maximum(0.0, mu2 - _abs_sq(mu)): round-off can make it negative */
        /* maybe_distributed_mean(x, _abs_sq(x)): the square is traced
         * first, which sets the order JAX's VJP adds x's cotangents in */
        gv_value sq = gv_square(x);
        gv_value mu = gv_mean(x, axes, naxes, true);
        gv_value mu2 = gv_mean(sq, axes, naxes, true);
        gv_value d = gv_sub(mu2, gv_square(mu));
        *mean = mu;
        *var = gv_maximum(gv_zeros_like(d), d);
    } else {
        gv_value mu = gv_mean(x, axes, naxes, true);
        *mean = mu;
        *var = gv_mean(gv_square(gv_sub(x, mu)), axes, naxes, true);
    }
}

/* _normalize: y = x - mean; mul = rsqrt(var + eps); mul *= scale; y *= mul;
 * y += bias. scale and bias are declared (in that order) with the sizes of
 * the feature axes and reshaped to broadcast; mean may be invalid (RMSNorm). */
static gv_value normalize(gv_scope *s, gv_value x, gv_value mean, gv_value var,
                          const int *feat, int nfeat, double epsilon, bool use_bias,
                          bool use_scale, gv_initializer bias_init, gv_initializer scale_init) {
    int rank = gv_value_rank(x);
    int64_t feature_shape[rank > 0 ? rank : 1], reduced[rank > 0 ? rank : 1];
    for (int i = 0; i < rank; i++) feature_shape[i] = 1;
    for (int i = 0; i < nfeat; i++) {
        feature_shape[feat[i]] = gv_value_shape(x)[feat[i]];
        reduced[i] = gv_value_shape(x)[feat[i]];
    }
    gv_dtype dt = gv_value_dtype(x);
    gv_value y = gv_value_ok(mean) ? gv_sub(x, mean) : x;
    /* epsilon is a weakly typed Python float: it takes var's dtype */
    gv_value mul = gv_rsqrt(gv_add_scalar(var, epsilon));
    if (use_scale) {
        gv_value scale = gv_param(s, "scale", scale_init, nfeat, reduced);
        if (!gv_value_ok(scale)) return scale;
        if (dt != GV_F32) scale = gv_cast(scale, dt);
        mul = gv_mul(mul, gv_reshape(scale, rank, feature_shape));
    }
    y = gv_mul(y, mul);
    if (use_bias) {
        gv_value bias = gv_param(s, "bias", bias_init, nfeat, reduced);
        if (!gv_value_ok(bias)) return bias;
        if (dt != GV_F32) bias = gv_cast(bias, dt);
        y = gv_add(y, gv_reshape(bias, rank, feature_shape));
    }
    return y;
}

/* ---- LayerNorm ---- */

gv_layer_norm_cfg gv_layer_norm_defaults(void) {
    return (gv_layer_norm_cfg){.epsilon = 1e-6, .use_bias = true, .use_scale = true,
                               .bias_init = gv_init_zeros(), .scale_init = gv_init_ones(),
                               .use_fast_variance = true};
}

static gv_tree *layer_norm_call(gv_scope *s, const void *cfgp, const gv_tree *args) {
    const gv_layer_norm_cfg *cfg = cfgp;
    gv_value x = gv_args_get(args, 0);
    if (!check_input(s, "LayerNorm", x)) return NULL;
    int rank = gv_value_rank(x);
    int red[rank > 0 ? rank : 1], feat[rank > 0 ? rank : 1];
    int nred = canon_axes(s, "LayerNorm", "reduction", x, cfg->reduction_axes,
                          cfg->nreduction_axes, -1, red);
    if (nred < 0) return NULL;
    int nfeat = canon_axes(s, "LayerNorm", "feature", x, cfg->feature_axes, cfg->nfeature_axes,
                           -1, feat);
    if (nfeat < 0) return NULL;
    gv_value mean, var;
    compute_stats(x, red, nred, true, cfg->use_fast_variance, &mean, &var);
    return one(normalize(s, x, mean, var, feat, nfeat, cfg->epsilon, cfg->use_bias,
                         cfg->use_scale, cfg->bias_init, cfg->scale_init));
}
const gv_module_type gv_LayerNorm = {"LayerNorm", layer_norm_call, NULL, 0};

/* ---- RMSNorm: _compute_stats(use_mean=False), _normalize(use_bias=False) ---- */

gv_rms_norm_cfg gv_rms_norm_defaults(void) {
    return (gv_rms_norm_cfg){.epsilon = 1e-6, .use_scale = true, .scale_init = gv_init_ones(),
                             .use_fast_variance = true};
}

static gv_tree *rms_norm_call(gv_scope *s, const void *cfgp, const gv_tree *args) {
    const gv_rms_norm_cfg *cfg = cfgp;
    gv_value x = gv_args_get(args, 0);
    if (!check_input(s, "RMSNorm", x)) return NULL;
    int rank = gv_value_rank(x);
    int red[rank > 0 ? rank : 1], feat[rank > 0 ? rank : 1];
    int nred = canon_axes(s, "RMSNorm", "reduction", x, cfg->reduction_axes,
                          cfg->nreduction_axes, -1, red);
    if (nred < 0) return NULL;
    int nfeat = canon_axes(s, "RMSNorm", "feature", x, cfg->feature_axes, cfg->nfeature_axes,
                           -1, feat);
    if (nfeat < 0) return NULL;
    gv_value mean, var;
    compute_stats(x, red, nred, false, cfg->use_fast_variance, &mean, &var);
    return one(normalize(s, x, mean, var, feat, nfeat, cfg->epsilon, false, cfg->use_scale,
                         gv_init_zeros(), cfg->scale_init));
}
const gv_module_type gv_RMSNorm = {"RMSNorm", rms_norm_call, NULL, 0};

/* ---- GroupNorm ---- */

gv_group_norm_cfg gv_group_norm_defaults(void) {
    return (gv_group_norm_cfg){.num_groups = 32, .epsilon = 1e-6, .use_bias = true,
                               .use_scale = true, .bias_init = gv_init_zeros(),
                               .scale_init = gv_init_ones(), .use_fast_variance = true};
}

static gv_tree *group_norm_call(gv_scope *s, const void *cfgp, const gv_tree *args) {
    const gv_group_norm_cfg *cfg = cfgp;
    const char *L = "GroupNorm";
    gv_value x = gv_args_get(args, 0);
    if (!check_input(s, L, x)) return NULL;
    int rank = gv_value_rank(x);
    if (rank < 1) {
        fail_shape(s, L, x, "needs an input with a channels axis (the last)");
        return NULL;
    }
    int red[rank];
    int nred;
    if (cfg->reduction_axes && cfg->nreduction_axes > 0) {
        nred = canon_axes(s, L, "reduction", x, cfg->reduction_axes, cfg->nreduction_axes, -1, red);
        if (nred < 0) return NULL;
    } else { /* list(range(1, x.ndim - 1)) + [-1] */
        nred = 0;
        for (int a = 1; a < rank - 1; a++) red[nred++] = a;
        red[nred++] = rank - 1;
    }
    if (red[nred - 1] != rank - 1) {
        fail_shape(s, L, x, "the reduction axes must include the final dimension, the feature "
                            "axis");
        return NULL;
    }
    if ((cfg->num_groups == 0) == (cfg->group_size == 0)) {
        fail(s, L, GV_ERR_ARG, "give exactly one of .num_groups (%lld) and .group_size (%lld); "
             "for a group size set .num_groups = 0 (Flax's num_groups=None)",
             (long long)cfg->num_groups, (long long)cfg->group_size);
        return NULL;
    }
    int64_t channels = gv_value_shape(x)[rank - 1], groups = cfg->num_groups;
    char buf[160];
    if (cfg->group_size != 0) {
        if (cfg->group_size < 0 || channels % cfg->group_size != 0) {
            snprintf(buf, sizeof buf, "the number of channels (%lld) is not a multiple of the "
                     "group size (%lld)", (long long)channels, (long long)cfg->group_size);
            fail_shape(s, L, x, buf);
            return NULL;
        }
        groups = channels / cfg->group_size;
    }
    if (groups <= 0 || channels % groups != 0) {
        snprintf(buf, sizeof buf, "the number of groups (%lld) does not divide the number of "
                 "channels (%lld)", (long long)groups, (long long)channels);
        fail_shape(s, L, x, buf);
        return NULL;
    }
    int64_t gsize = channels / groups;
    /* stats over x.reshape(x.shape[:-1] + (groups, group_size)) on
     * reduction_axes[:-1] + [-1], then repeated group_size times along the
     * channels: broadcast over the group_size axis and merged back */
    int64_t gshape[rank + 1], bshape[rank + 1], mshape[rank];
    for (int i = 0; i < rank - 1; i++) gshape[i] = gv_value_shape(x)[i];
    gshape[rank - 1] = groups, gshape[rank] = gsize;
    int gaxes[rank];
    for (int i = 0; i < nred - 1; i++) gaxes[i] = red[i];
    gaxes[nred - 1] = rank;
    gv_value xg = gv_reshape(x, rank + 1, gshape);
    gv_value mean, var;
    compute_stats(xg, gaxes, nred, true, cfg->use_fast_variance, &mean, &var);
    if (!gv_value_ok(var)) return NULL;
    memcpy(bshape, gv_value_shape(var), sizeof(int64_t) * (size_t)(rank + 1));
    bshape[rank] = gsize;
    memcpy(mshape, bshape, sizeof(int64_t) * (size_t)rank);
    mshape[rank - 1] = channels;
    mean = gv_reshape(gv_broadcast_to(mean, rank + 1, bshape), rank, mshape);
    var = gv_reshape(gv_broadcast_to(var, rank + 1, bshape), rank, mshape);
    int feat[1] = {rank - 1};
    return one(normalize(s, x, mean, var, feat, 1, cfg->epsilon, cfg->use_bias, cfg->use_scale,
                         cfg->bias_init, cfg->scale_init));
}
const gv_module_type gv_GroupNorm = {"GroupNorm", group_norm_call, NULL, 0};
