/* Attention: flax.linen.attention (dot_product_attention, the masks,
 * MultiHeadDotProductAttention, SelfAttention) and flax.linen.linear's
 * DenseGeneral, with Flax's parameter names, shapes, initial numbers and
 * order of float32 operations. */
#include <float.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "graph/graph_internal.h"
#include "grove/nn.h"

static gv_tree *one(gv_value v) { return gv_value_ok(v) ? gv_tree_new_value_leaf(v) : NULL; }

static int64_t prod(const int64_t *d, int n) {
    int64_t p = 1;
    for (int i = 0; i < n; i++) p *= d[i];
    return p;
}

/* ---- DenseGeneral ---- */

gv_dense_general_cfg gv_dense_general_defaults(const int64_t *features, int nfeatures) {
    return (gv_dense_general_cfg){features, nfeatures, NULL, 0, true, gv_init_lecun_normal(),
                                  gv_init_zeros()};
}

/* Flax's kernel_init_wrap draws the init on the 2-D shape `flat` and reshapes
 * it. The random bits depend only on the element count, so only a variance
 * scaling init (whose fans depend on the shape) needs care: it becomes a
 * fan_in variance scaling of the full shape whose scale gives the same
 * float32 variance, (float)(variance * fan / fan) == variance. */
static bool flat_init(gv_graph *g, const char *what, gv_initializer in, int frank,
                      const int64_t *flat, int rank, const int64_t *shape,
                      gv_initializer *out) {
    *out = in;
    if (in.kind != GV_INIT_VARIANCE_SCALING) return true;
    double fan_in, fan_out, den = 0, full_in, full_out;
    if (gv_compute_fans(frank, flat, in.in_axis, in.out_axis, &fan_in, &fan_out) != GV_OK ||
        gv_compute_fans(rank, shape, 0, rank - 1, &full_in, &full_out) != GV_OK) {
        gv_graph_fail(g, gv_last_status(), "DenseGeneral: %s init: %s", what, gv_last_error());
        return false;
    }
    switch (in.mode) {
    case GV_FAN_IN: den = fan_in; break;
    case GV_FAN_OUT: den = fan_out; break;
    case GV_FAN_AVG: den = (fan_in + fan_out) / 2.0; break;
    case GV_FAN_GEO_AVG: den = sqrt(fan_in * fan_out); break;
    }
    if (!(den > 0) || !(full_in > 0)) return true; /* the sampler reports it */
    float variance = (float)(in.scale / den);
    *out = gv_init_variance_scaling((double)variance * full_in, GV_FAN_IN, in.distribution, 0,
                                    rank - 1);
    return true;
}

gv_value gv_dense_general_apply(gv_scope *s, const gv_dense_general_cfg *cfg, gv_value x) {
    gv_graph *g = gv_scope_graph(s);
    if (!gv_value_ok(x)) return x;
    static const int last[1] = {-1};
    const int *axis = cfg->axis ? cfg->axis : last;
    int naxis = cfg->axis ? cfg->naxis : 1, r = gv_value_rank(x), nf = cfg->nfeatures;
    const int64_t *xs = gv_value_shape(x);
    if (nf < 1 || !cfg->features)
        return gv_value_fail(g, GV_ERR_ARG, "DenseGeneral: no features");
    for (int i = 0; i < nf; i++)
        if (cfg->features[i] < 1)
            return gv_value_fail(g, GV_ERR_ARG, "DenseGeneral: feature %d is %lld", i,
                                 (long long)cfg->features[i]);
    if (naxis < 1 || naxis > r)
        return gv_value_fail(g, GV_ERR_ARG, "DenseGeneral: %d axes for an input of rank %d",
                             naxis, r);
    int perm[r], used[r];
    memset(used, 0, sizeof used);
    for (int i = 0; i < naxis; i++) {
        int a = axis[i] < 0 ? axis[i] + r : axis[i];
        if (a < 0 || a >= r || used[a])
            return gv_value_fail(g, GV_ERR_ARG, "DenseGeneral: axis %d %s for rank %d", axis[i],
                                 a >= 0 && a < r ? "repeated" : "out of range", r);
        used[a] = 1;
        perm[r - naxis + i] = a;
    }
    int nb = 0;
    for (int a = 0; a < r; a++)
        if (!used[a]) perm[nb++] = a;
    /* kernel: contracted dims + features; bias: features (Flax's order) */
    int64_t kshape[naxis + nf], bshape[nb + nf], xin[naxis], batch[nb > 0 ? nb : 1];
    for (int i = 0; i < naxis; i++) xin[i] = kshape[i] = xs[perm[nb + i]];
    for (int i = 0; i < nb; i++) batch[i] = bshape[i] = xs[perm[i]];
    for (int i = 0; i < nf; i++) kshape[naxis + i] = bshape[nb + i] = cfg->features[i];
    int64_t K = prod(xin, naxis), F = prod(cfg->features, nf), M = prod(batch, nb);
    gv_initializer kinit, binit;
    if (!flat_init(g, "kernel", cfg->kernel_init, 2, (int64_t[]){K, F}, naxis + nf, kshape,
                   &kinit))
        return gv_invalid(g);
    gv_value w = gv_param(s, "kernel", kinit, naxis + nf, kshape);
    bool identity = true;
    for (int i = 0; i < r; i++) identity &= perm[i] == i;
    gv_value xt = identity ? x : gv_transpose(x, perm);
    gv_value y = gv_matmul(gv_reshape(xt, GV_DIMS(M, K)), gv_reshape(w, GV_DIMS(K, F)));
    if (cfg->use_bias) {
        if (!flat_init(g, "bias", cfg->bias_init, 1, &F, nf, cfg->features, &binit))
            return gv_invalid(g);
        gv_value b = gv_param(s, "bias", binit, nf, cfg->features);
        y = gv_add(y, gv_reshape(b, GV_DIMS(F)));
    }
    return gv_reshape(y, nb + nf, bshape);
}

static gv_tree *dense_general_call(gv_scope *s, const void *cfg, const gv_tree *args) {
    return one(gv_dense_general_apply(s, cfg, gv_args_get(args, 0)));
}
const gv_module_type gv_DenseGeneral = {"DenseGeneral", dense_general_call, NULL, 0};

/* ---- dot_product_attention ---- */

gv_attention_options gv_attention_options_defaults(void) {
    return (gv_attention_options){.broadcast_dropout = true, .dropout_rng = {NULL, -1},
                                  .impl = GV_PRNG_PARTITIONABLE};
}

static bool has_mask(gv_value m) { return m.graph != NULL; }

/* Does a (mask) broadcast to shape[0..rank)? numpy's rule, right-aligned. */
static bool broadcasts(gv_value m, int rank, const int64_t *shape) {
    int mr = gv_value_rank(m);
    if (mr > rank) return false;
    const int64_t *ms = gv_value_shape(m);
    for (int i = 0; i < mr; i++) {
        int64_t d = ms[mr - 1 - i], t = shape[rank - 1 - i];
        if (d != 1 && d != t) return false;
    }
    return true;
}

/* jax.nn.softmax over the last axis as XLA:CPU runs it: exp(x - max) times
 * the reciprocal of the sum (its algebraic simplifier turns the division by
 * a broadcast sum into that product), which gives Flax's bits. */
static gv_value softmax_last(gv_value x) {
    int ax = -1;
    gv_value e = gv_exp(gv_sub(x, gv_stop_gradient(gv_max(x, &ax, 1, true))));
    gv_value s = gv_sum(e, &ax, 1, true);
    return gv_mul(e, gv_div(gv_scalar(x.graph, GV_F32, 1.0), s));
}

static char *shape_of(gv_value v) { return gv_shape_str(gv_value_rank(v), gv_value_shape(v)); }

gv_value gv_dot_product_attention_weights(gv_value q, gv_value k, gv_value mask,
                                          const gv_attention_options *opt) {
    gv_attention_options o = opt ? *opt : gv_attention_options_defaults();
    if (!gv_value_ok(q)) return q;
    if (!gv_value_ok(k)) return k;
    gv_graph *g = q.graph;
    int r = gv_value_rank(q);
    const int64_t *qs = gv_value_shape(q), *ks = gv_value_shape(k);
    bool ok = r >= 3 && gv_value_rank(k) == r;
    for (int i = 0; ok && i < r - 3; i++) ok = qs[i] == ks[i];
    ok = ok && qs[r - 2] == ks[r - 2] && qs[r - 1] == ks[r - 1];
    if (!ok) {
        char *a = shape_of(q), *b = shape_of(k);
        gv_graph_fail(g, GV_ERR_SHAPE, "dot_product_attention: query %s and key %s are not "
                      "[batch..., length, heads, depth] with the same batch, heads and depth",
                      a, b);
        free(a), free(b);
        return gv_invalid(g);
    }
    int nb = r - 3;
    int64_t wshape[r];
    for (int i = 0; i < nb; i++) wshape[i] = qs[i];
    wshape[nb] = qs[r - 2], wshape[nb + 1] = qs[r - 3], wshape[nb + 2] = ks[r - 3];
    if (has_mask(mask)) {
        if (!gv_value_ok(mask)) return mask;
        if (!broadcasts(mask, r, wshape)) {
            char *a = shape_of(mask), *b = gv_shape_str(r, wshape);
            gv_graph_fail(g, GV_ERR_SHAPE, "dot_product_attention: mask %s does not broadcast "
                          "to the attention weights [batch..., heads, q_length, kv_length] = %s",
                          a, b);
            free(a), free(b);
            return gv_invalid(g);
        }
    }
    if (o.dropout_rate < 0.0 || o.dropout_rate >= 1.0)
        return gv_value_fail(g, GV_ERR_ARG, "dot_product_attention: dropout rate %g is not in "
                             "[0, 1)", o.dropout_rate);
    /* query / sqrt(depth) before the einsum, as Flax does (jnp.sqrt in float32) */
    float depth = sqrtf((float)qs[r - 1]);
    q = gv_div(q, gv_scalar(g, GV_F32, (double)depth));
    /* einsum('...qhd,...khd->...hqk') = (..., h, q, d) @ (..., h, d, k) */
    int pq[r], pk[r];
    for (int i = 0; i < nb; i++) pq[i] = pk[i] = i;
    pq[nb] = nb + 1, pq[nb + 1] = nb, pq[nb + 2] = nb + 2;
    pk[nb] = nb + 1, pk[nb + 1] = nb + 2, pk[nb + 2] = nb;
    gv_value w = gv_matmul(gv_transpose(q, pq), gv_transpose(k, pk));
    if (has_mask(mask)) {
        gv_value cond = gv_value_dtype(mask) == GV_BOOL
                            ? mask : gv_ne(mask, gv_scalar(g, gv_value_dtype(mask), 0.0));
        w = gv_select(cond, w, gv_scalar(g, GV_F32, -FLT_MAX)); /* jnp.finfo(float32).min */
    }
    w = softmax_last(w);
    if (o.deterministic || o.dropout_rate == 0.0) return w;
    if (!gv_value_ok(o.dropout_rng))
        return gv_value_fail(g, GV_ERR_ARG, "dot_product_attention: dropout needs a "
                             "dropout_rng");
    float keep = (float)(1.0 - o.dropout_rate);
    int64_t dshape[r];
    for (int i = 0; i < r; i++) dshape[i] = o.broadcast_dropout && i < r - 2 ? 1 : wshape[i];
    gv_value kept = gv_random_bernoulli(o.impl, o.dropout_rng, keep, r, dshape);
    /* keep.astype(f32) / keep_prob: 1/keep or 0, then a product */
    gv_value mult = gv_select(kept, gv_scalar(g, GV_F32, (double)(1.0f / keep)),
                              gv_scalar(g, GV_F32, 0.0));
    return gv_mul(w, mult);
}

gv_value gv_dot_product_attention(gv_value q, gv_value k, gv_value v, gv_value mask,
                                  const gv_attention_options *o) {
    if (!gv_value_ok(v)) return v;
    gv_value w = gv_dot_product_attention_weights(q, k, mask, o);
    if (!gv_value_ok(w)) return w;
    gv_graph *g = q.graph;
    int r = gv_value_rank(q), nb = r - 3;
    const int64_t *ks = gv_value_shape(k), *vs = gv_value_shape(v);
    bool ok = gv_value_rank(v) == r;
    for (int i = 0; ok && i < r - 1; i++) ok = vs[i] == ks[i];
    if (!ok) {
        char *a = shape_of(k), *b = shape_of(v);
        gv_graph_fail(g, GV_ERR_SHAPE, "dot_product_attention: value %s does not match key %s "
                      "in batch, length and heads", b, a);
        free(a), free(b);
        return gv_invalid(g);
    }
    /* einsum('...hqk,...khd->...qhd') = ((..., h, q, k) @ (..., h, k, d)) -> (..., q, h, d) */
    int pv[r];
    for (int i = 0; i < nb; i++) pv[i] = i;
    pv[nb] = nb + 1, pv[nb + 1] = nb, pv[nb + 2] = nb + 2;
    return gv_transpose(gv_matmul(w, gv_transpose(v, pv)), pv);
}

/* ---- masks ---- */

static gv_value lift_mask(gv_value m, int extra_batch_dims) {
    m = gv_expand_dims(m, -3);
    for (int i = 0; i < extra_batch_dims; i++) m = gv_expand_dims(m, 0);
    return gv_value_ok(m) && gv_value_dtype(m) != GV_F32 ? gv_cast(m, GV_F32) : m;
}

gv_value gv_make_attention_mask(gv_value qi, gv_value ki, gv_pairwise_fn pairwise,
                                int extra_batch_dims) {
    if (!gv_value_ok(qi)) return qi;
    if (!gv_value_ok(ki)) return ki;
    if (extra_batch_dims < 0)
        return gv_value_fail(qi.graph, GV_ERR_ARG, "make_attention_mask: extra_batch_dims %d",
                             extra_batch_dims);
    gv_value a = gv_expand_dims(qi, -1), b = gv_expand_dims(ki, -2);
    gv_value m;
    if (pairwise) m = pairwise(a, b);
    else {
        if (gv_value_ok(a) && gv_value_dtype(a) != GV_F32) a = gv_cast(a, GV_F32);
        if (gv_value_ok(b) && gv_value_dtype(b) != GV_F32) b = gv_cast(b, GV_F32);
        m = gv_mul(a, b);
    }
    return lift_mask(m, extra_batch_dims);
}

gv_value gv_make_causal_mask(gv_value x, int extra_batch_dims) {
    if (!gv_value_ok(x)) return x;
    gv_graph *g = x.graph;
    int r = gv_value_rank(x);
    if (r < 1 || extra_batch_dims < 0)
        return gv_value_fail(g, GV_ERR_ARG, "make_causal_mask: input of rank %d (needs "
                             "[batch..., len]), extra_batch_dims %d", r, extra_batch_dims);
    int64_t shape[r + 1];
    memcpy(shape, gv_value_shape(x), (size_t)r * sizeof *shape);
    shape[r] = shape[r - 1];
    /* greater_equal(idx[..., :, None], idx[..., None, :]) */
    gv_value m = gv_ge(gv_iota(g, GV_I32, r + 1, shape, r - 1), gv_iota(g, GV_I32, r + 1, shape, r));
    return lift_mask(m, extra_batch_dims);
}

/* ---- MultiHeadDotProductAttention ---- */

gv_mha_cfg gv_mha_defaults(int64_t num_heads) {
    return (gv_mha_cfg){.num_heads = num_heads, .broadcast_dropout = true, .use_bias = true,
                        .kernel_init = gv_init_lecun_normal(), .bias_init = gv_init_zeros()};
}

static gv_tree *mha(gv_scope *s, const gv_mha_cfg *c, const char *name, gv_value xq,
                    gv_value xkv, gv_value mask) {
    gv_graph *g = gv_scope_graph(s);
    const char *where = name; /* the graph's scope puts the module path in front */
    if (!gv_value_ok(xq) || (has_mask(xkv) && !gv_value_ok(xkv)) ||
        (has_mask(mask) && !gv_value_ok(mask))) {
        if (gv_graph_status(g) == GV_OK)
            gv_graph_fail(g, GV_ERR_ARG, "%s: missing or invalid inputs", where);
        return NULL;
    }
    if (!has_mask(xkv)) xkv = xq;
    int rq = gv_value_rank(xq), rk = gv_value_rank(xkv);
    const int64_t *qs = gv_value_shape(xq), *ks = gv_value_shape(xkv);
    bool same = rq >= 2 && rq == rk;
    for (int i = 0; same && i < rq - 2; i++) same = qs[i] == ks[i];
    if (!same) {
        char *a = shape_of(xq), *b = shape_of(xkv);
        gv_graph_fail(g, GV_ERR_SHAPE, "%s: inputs_q %s and inputs_kv %s are not [batch..., "
                      "length, features] with the same batch dims", where, a, b);
        free(a), free(b);
        return NULL;
    }
    int64_t features = c->out_features ? c->out_features : qs[rq - 1];
    int64_t qkv = c->qkv_features ? c->qkv_features : qs[rq - 1];
    if (c->num_heads < 1 || qkv % c->num_heads != 0 || features < 1 || qkv < 1) {
        gv_graph_fail(g, GV_ERR_ARG, "%s: qkv_features %lld must be divisible by num_heads "
                      "%lld (out_features %lld)", where, (long long)qkv,
                      (long long)c->num_heads, (long long)features);
        return NULL;
    }
    if (c->dropout_rate < 0.0 || c->dropout_rate >= 1.0) {
        gv_graph_fail(g, GV_ERR_ARG, "%s: dropout_rate %g is not in [0, 1)", where,
                      c->dropout_rate);
        return NULL;
    }
    int64_t heads[2] = {c->num_heads, qkv / c->num_heads};
    gv_dense_general_cfg d = {heads, 2, NULL, 0, c->use_bias, c->kernel_init, c->bias_init};
    gv_module dense = {&gv_DenseGeneral, &d};
    gv_value q = gv_scope_call1(s, "query", &dense, xq);
    gv_value k = gv_scope_call1(s, "key", &dense, xkv);
    gv_value v = gv_scope_call1(s, "value", &dense, xkv);
    if (!gv_value_ok(q) || !gv_value_ok(k) || !gv_value_ok(v)) return NULL;
    gv_attention_options o = gv_attention_options_defaults();
    o.broadcast_dropout = c->broadcast_dropout;
    o.impl = gv_scope_prng_impl(s);
    o.deterministic = true;
    if (c->dropout_rate > 0.0 && !c->deterministic && gv_scope_train(s)) {
        o.deterministic = false;
        o.dropout_rate = c->dropout_rate;
        o.dropout_rng = gv_make_rng(s, "dropout");
    }
    if (has_mask(mask)) {
        /* the weights' shape, checked here to name the module */
        int64_t wshape[rq + 1];
        for (int i = 0; i < rq - 2; i++) wshape[i] = qs[i];
        wshape[rq - 2] = c->num_heads, wshape[rq - 1] = qs[rq - 2], wshape[rq] = ks[rk - 2];
        if (!broadcasts(mask, rq + 1, wshape)) {
            char *a = shape_of(mask), *b = gv_shape_str(rq + 1, wshape);
            gv_graph_fail(g, GV_ERR_SHAPE, "%s: mask %s does not broadcast to the attention "
                          "weights [batch..., heads, q_length, kv_length] = %s", where, a, b);
            free(a), free(b);
            return NULL;
        }
    }
    gv_value x = gv_dot_product_attention(q, k, v, mask, &o);
    gv_dense_general_cfg od = {&features, 1, (const int[]){-2, -1}, 2, c->use_bias,
                               c->out_kernel_init ? *c->out_kernel_init : c->kernel_init,
                               c->out_bias_init ? *c->out_bias_init : c->bias_init};
    gv_module out = {&gv_DenseGeneral, &od};
    return one(gv_scope_call1(s, "out", &out, x));
}

static int nargs(const gv_tree *args) {
    if (!args) return 0;
    return gv_tree_is_leaf(args) ? 1 : (int)gv_tree_num_children(args);
}

static gv_tree *mha_call_named(gv_scope *s, const void *cfg, const gv_tree *args,
                               const char *name) {
    int n = nargs(args);
    if (n < 1 || n > 3) {
        gv_graph_fail(gv_scope_graph(s), GV_ERR_ARG, "%s: %d args; expected (inputs_q), "
                      "(inputs_q, inputs_kv) or (inputs_q, inputs_kv, mask)", name, n);
        return NULL;
    }
    return mha(s, cfg, name, gv_args_get(args, 0), n > 1 ? gv_args_get(args, 1) : GV_NO_MASK,
               n > 2 ? gv_args_get(args, 2) : GV_NO_MASK);
}

static gv_tree *mhdpa_call(gv_scope *s, const void *cfg, const gv_tree *args) {
    return mha_call_named(s, cfg, args, "MultiHeadDotProductAttention");
}
static gv_tree *mha_alias_call(gv_scope *s, const void *cfg, const gv_tree *args) {
    return mha_call_named(s, cfg, args, "MultiHeadAttention");
}
static gv_tree *self_call(gv_scope *s, const void *cfg, const gv_tree *args) {
    int n = nargs(args);
    if (n < 1 || n > 2) {
        gv_graph_fail(gv_scope_graph(s), GV_ERR_ARG, "SelfAttention: %d args; expected (x) or "
                      "(x, mask)", n);
        return NULL;
    }
    gv_value x = gv_args_get(args, 0);
    return mha(s, cfg, "SelfAttention", x, x, n > 1 ? gv_args_get(args, 1) : GV_NO_MASK);
}

const gv_module_type gv_MultiHeadDotProductAttention = {"MultiHeadDotProductAttention",
                                                        mhdpa_call, NULL, 0};
const gv_module_type gv_MultiHeadAttention = {"MultiHeadAttention", mha_alias_call, NULL, 0};
const gv_module_type gv_SelfAttention = {"SelfAttention", self_call, NULL, 0};
