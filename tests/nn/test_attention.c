/* Attention against tests/golden/flax_attention_golden.json (the real Flax,
 * tests/golden/make_flax_attention_golden.py), in both threefry schemes:
 * DenseGeneral, SelfAttention (no mask, causal, padding) and
 * MultiHeadDotProductAttention with different query and key/value lengths.
 *
 * - init: every param's path, shape and bits equal Flax's.
 * - outputs (tolerances in ulps of each output's largest element, measured
 *   values beside the constants): through the reference evaluator
 *   (gv_fn_eval) within REF_ULPS, through a compiled plan (cblas_sgemm
 *   matmuls, the BLAS's order, see tests/nn/test_modules.c) within
 *   BLAS_ULPS. Not bit for bit, for two reasons: grove's exp is glibc's
 *   expf, XLA's is its own polynomial (1-2 ulps on some elements); and
 *   XLA hands the projections' dots (K = 6, 7, 15) to Eigen, whose sum
 *   order is not the sequential one of grove's reference dots (the
 *   attention einsums, K = 2..5, do sum sequentially).
 * - gradients of sum(out * w): within GRAD_ULPS, reference evaluator. JAX
 *   differentiates softmax with its custom JVP y * (dx - sum(y * dx)),
 *   grove the exp / sum / product it is written with: the same value,
 *   rounded differently.
 * - attention dropout: Flax's keep mask (a wrong mask is off by whole
 *   values, not ulps), broadcast or not, and reproducible for a key. */
#include <math.h>
#include <stdarg.h>
#include <string.h>

#include "testutil.h"

static json_object *golden(void) {
    static json_object *root;
    if (!root) {
        char *p = gvt_golden_path("flax_attention_golden.json");
        root = gvt_load_json(p);
        free(p);
    }
    return root;
}

static json_object *get(json_object *o, const char *path) {
    char buf[256];
    snprintf(buf, sizeof buf, "%s", path);
    for (char *tok = strtok(buf, "."); tok; tok = strtok(NULL, ".")) {
        json_object *next;
        cr_assert(json_object_object_get_ex(o, tok, &next), "golden has no %s (in %s)", tok, path);
        o = next;
    }
    return o;
}

static gv_tensor *tensor_of(json_object *e) {
    json_object *js = get(e, "shape"), *jb = get(e, "bits");
    int r = (int)json_object_array_length(js);
    int64_t shape[8];
    for (int i = 0; i < r; i++) shape[i] = json_object_get_int64(json_object_array_get_idx(js, i));
    size_t n = json_object_array_length(jb);
    uint32_t *bits = malloc((n ? n : 1) * sizeof *bits);
    for (size_t i = 0; i < n; i++)
        bits[i] = (uint32_t)strtoul(json_object_get_string(json_object_array_get_idx(jb, i)), NULL, 16);
    gv_tensor *t = GVT_NN(gv_tensor_from_data(GV_F32, r, shape, bits, n * sizeof *bits));
    free(bits);
    return t;
}

static gv_tensor *input(const char *name) {
    char p[64];
    snprintf(p, sizeof p, "inputs.%s", name);
    return tensor_of(get(golden(), p));
}

/* Largest difference of got from want in units of the last place of want's
 * largest magnitude (0 = bit for bit); fails on a shape mismatch. */
static double ulps_apart(const char *id, const gv_tensor *got, json_object *want_e) {
    gv_tensor *want = tensor_of(want_e);
    cr_assert(gv_tensor_same_shape(got, want), "%s: shapes differ", id);
    const float *a = gv_tensor_data_const(got), *b = gv_tensor_data_const(want);
    float big = 0.0f;
    int64_t n = gv_tensor_size(want);
    for (int64_t i = 0; i < n; i++) big = fmaxf(big, fabsf(b[i]));
    double ulp = (double)nextafterf(big, INFINITY) - big, worst = 0;
    for (int64_t i = 0; i < n; i++) {
        if (memcmp(&a[i], &b[i], 4) == 0) continue;
        double d = fabs((double)a[i] - b[i]) / ulp;
        worst = d > worst ? d : worst;
        if (!(d == d)) worst = INFINITY;
    }
    gv_tensor_free(want);
    return worst;
}

static void expect_bits(const char *id, const gv_tensor *got, json_object *want) {
    double u = ulps_apart(id, got, want);
    cr_expect_eq(u, 0.0, "%s: %.3g ulps from Flax, expected its bits", id, u);
}

static void expect_ulps(const char *id, const gv_tensor *got, json_object *want, double tol) {
    double u = ulps_apart(id, got, want);
    cr_expect_leq(u, tol, "%s: %.3g ulps of the largest element from Flax (tolerance %g)", id, u,
                  tol);
}

/* Every param of the golden case, and no other, with Flax's bits. */
static void expect_params(const char *id, const gv_tree *vars, json_object *params) {
    int n = 0;
    json_object_object_foreach(params, path, e) {
        char full[128], label[192];
        snprintf(full, sizeof full, "params/%s", path);
        snprintf(label, sizeof label, "%s %s", id, full);
        gv_tensor *t = gv_tree_get_tensor(vars, full);
        cr_assert_not_null(t, "%s: missing", label);
        expect_bits(label, t, e);
        n++;
    }
    cr_expect_eq((int)gv_tree_num_leaves(vars), n, "%s: %zu leaves, Flax has %d", id,
                 gv_tree_num_leaves(vars), n);
}

/* ---- apply through the reference evaluator and a compiled plan ---- */

typedef struct apply_ctx {
    const gv_module *m;
    const gv_module_options *o;
} apply_ctx;

static gv_tree *apply_trace(gv_graph *g, const gv_tree *in, void *ud) {
    const apply_ctx *c = ud;
    return gv_apply(g, c->m, gv_tree_get(in, "0"), gv_tree_get(in, "1"), gv_tree_get(in, "2"),
                    c->o);
}

static gv_tree *inputs3(const gv_tree *vars, const gv_tree *args, const gv_tree *rngs) {
    gv_tree *in = gv_tree_new_tuple();
    GVT_OK(gv_tree_append(in, gv_tree_clone(vars)));
    GVT_OK(gv_tree_append(in, gv_tree_clone(args)));
    GVT_OK(gv_tree_append(in, rngs ? gv_tree_clone(rngs) : gv_tree_new_dict()));
    return in;
}

static gv_tree *apply_reference(const gv_module *m, const gv_tree *vars, const gv_tree *args,
                                const gv_tree *rngs, const gv_module_options *o) {
    apply_ctx c = {m, o};
    gv_tree *in = inputs3(vars, args, rngs), *out = NULL;
    gv_fn *f = GVT_NN(gv_trace(apply_trace, &c, in));
    GVT_OK(gv_fn_eval(f, in, &out));
    gv_fn_free(f), gv_tree_free(in);
    return out;
}

/* Measured on this golden file: outputs within 3 ulps of their largest
 * element, reference evaluator and compiled plan alike; the function alone
 * within 0.75; the gradients within 25 (query/kernel: softmax's backward
 * subtracts nearly equal terms). See the top comment for why. */
enum { REF_ULPS = 4, BLAS_ULPS = 4, FN_ULPS = 2, GRAD_ULPS = 32 };

static void expect_apply(const char *id, const gv_module *m, const gv_tree *vars,
                         const gv_tree *args, const gv_tree *rngs, const gv_module_options *o,
                         json_object *want) {
    gv_tree *ref = apply_reference(m, vars, args, rngs, o), *plan = NULL;
    char label[128];
    snprintf(label, sizeof label, "%s (reference evaluator)", id);
    expect_ulps(label, gv_tree_leaf_tensor(ref), want, REF_ULPS);
    GVT_OK(gv_apply_eager(m, vars, args, rngs, o, &plan));
    snprintf(label, sizeof label, "%s (compiled plan)", id);
    expect_ulps(label, gv_tree_leaf_tensor(plan), want, BLAS_ULPS);
    gv_tree_free(ref), gv_tree_free(plan);
}

/* loss(variables, args, w) = sum(apply(variables, *args) * w) */
typedef struct loss_ctx {
    const gv_module *m;
    const gv_module_options *o;
} loss_ctx;

static gv_tree *weighted_loss(gv_graph *g, const gv_tree *in, void *ud) {
    const loss_ctx *c = ud;
    gv_tree *out = gv_apply(g, c->m, gv_tree_get(in, "0"), gv_tree_get(in, "1"), NULL, c->o);
    if (!out) return NULL;
    gv_value y = gv_tree_leaf_value(out);
    gv_tree_free(out);
    gv_value w = gv_tree_leaf_value(gv_tree_get(in, "2"));
    return gv_tree_new_value_leaf(gv_sum(gv_mul(y, w), NULL, 0, false));
}

static void expect_grad(const char *id, const gv_module *m, const gv_tree *vars,
                        const gv_tree *args, const gv_tensor *w, const gv_module_options *o,
                        json_object *want) {
    loss_ctx c = {m, o};
    gv_tree *in = gv_tree_new_tuple(), *out = NULL;
    GVT_OK(gv_tree_append(in, gv_tree_clone(vars)));
    GVT_OK(gv_tree_append(in, gv_tree_clone(args)));
    GVT_OK(gv_tree_append_tensor(in, (gv_tensor *)w));
    gv_fn *f = GVT_NN(gv_trace(weighted_loss, &c, in));
    gv_fn *gf = GVT_NN(gv_grad(f, 0, false));
    GVT_OK(gv_fn_eval(gf, in, &out));
    float global = 0.0f;
    json_object_object_foreach(want, p0, e0) {
        (void)p0;
        gv_tensor *t = tensor_of(e0);
        for (int64_t i = 0; i < gv_tensor_size(t); i++)
            global = fmaxf(global, fabsf(((const float *)gv_tensor_data_const(t))[i]));
        gv_tensor_free(t);
    }
    json_object_object_foreach(want, path, e) {
        char full[128], label[192];
        snprintf(full, sizeof full, "params/%s", path);
        snprintf(label, sizeof label, "%s d/d %s", id, full);
        gv_tensor *got = GVT_NN(gv_tree_get_tensor(out, full)), *wt = tensor_of(e);
        float big = 0.0f, gbig = 0.0f;
        for (int64_t i = 0; i < gv_tensor_size(wt); i++) {
            big = fmaxf(big, fabsf(((const float *)gv_tensor_data_const(wt))[i]));
            gbig = fmaxf(gbig, fabsf(((const float *)gv_tensor_data_const(got))[i]));
        }
        /* key/bias: softmax ignores a shift of a row of logits, so its
         * gradient is zero but for rounding, in Flax and here: compare on the
         * scale of the whole gradient */
        if (big < 1e-5f * global)
            cr_expect_lt(gbig, 1e-5f * global, "%s: %g, expected ~0 (largest gradient %g)", label,
                         (double)gbig, (double)global);
        else
            expect_ulps(label, got, e, GRAD_ULPS);
        gv_tensor_free(wt);
    }
    gv_tree_free(out), gv_fn_free(gf), gv_fn_free(f), gv_tree_free(in);
}

static gv_tree *args_of(int n, ...) {
    gv_tensor *ts[3];
    va_list ap;
    va_start(ap, n);
    for (int i = 0; i < n; i++) ts[i] = input(va_arg(ap, const char *));
    va_end(ap);
    gv_tree *a = GVT_NN(gv_args_tensors(ts, n));
    for (int i = 0; i < n; i++) gv_tensor_free(ts[i]);
    return a;
}

static gv_tree *key_tree(const char *stream, gv_key k) {
    gv_tensor *t = gv_tensor_from_data(GV_U32, GV_DIMS(2), k.k, sizeof k.k);
    gv_tree *r = gv_tree_new_dict();
    gv_tree_insert_tensor(r, stream, t);
    gv_tensor_free(t);
    return r;
}

static const char *SCHEMES[2] = {"legacy", "partitionable"};
static gv_module_options scheme_opts(int sc) {
    return (gv_module_options){.impl = sc ? GV_PRNG_PARTITIONABLE : GV_PRNG_LEGACY};
}
static json_object *case_of(int sc, const char *name) {
    char p[96];
    snprintf(p, sizeof p, "schemes.%s.%s", SCHEMES[sc], name);
    return get(golden(), p);
}

Test(flax_attention, dense_general_two_axes_two_features) {
    static const int64_t F[2] = {3, 2};
    static const int AX[2] = {1, -1};
    for (int sc = 0; sc < 2; sc++) {
        gv_module_options o = scheme_opts(sc);
        gv_dense_general_cfg cfg = gv_dense_general_defaults(F, 2);
        cfg.axis = AX, cfg.naxis = 2;
        gv_module m = {&gv_DenseGeneral, &cfg};
        gv_tree *args = args_of(1, "xd");
        gv_tree *vars = GVT_NN(gv_init(&m, gv_prng_key(0), args, &o));
        json_object *c = case_of(sc, "dense_general");
        expect_params(SCHEMES[sc], vars, get(c, "params"));
        expect_apply("dense_general", &m, vars, args, NULL, &o, get(c, "out"));
        gv_tree_free(vars), gv_tree_free(args);
    }
}

Test(flax_attention, self_attention_no_mask_causal_padding_and_grad) {
    for (int sc = 0; sc < 2; sc++) {
        gv_module_options o = scheme_opts(sc);
        gv_mha_cfg cfg = gv_mha_defaults(2);
        cfg.qkv_features = 8;
        gv_module m = {&gv_SelfAttention, &cfg};
        gv_tree *args = args_of(1, "x");
        gv_tree *vars = GVT_NN(gv_init(&m, gv_prng_key(0), args, &o));
        json_object *c = case_of(sc, "self");
        expect_params(SCHEMES[sc], vars, get(c, "params"));
        expect_apply("self no mask", &m, vars, args, NULL, &o, get(c, "out_none"));
        gv_tree *causal = args_of(2, "x", "causal_mask"), *pad = args_of(2, "x", "padding_mask");
        expect_apply("self causal", &m, vars, causal, NULL, &o, get(c, "out_causal"));
        expect_apply("self padding", &m, vars, pad, NULL, &o, get(c, "out_padding"));
        gv_tensor *w = input("w_self");
        expect_grad("self causal", &m, vars, causal, w, &o, get(c, "grad_causal"));
        gv_tensor_free(w);
        gv_tree_free(causal), gv_tree_free(pad), gv_tree_free(vars), gv_tree_free(args);
    }
}

Test(flax_attention, mha_cross_lengths_bias_init_and_grad) {
    gv_initializer normal1 = gv_init_normal(1.0);
    for (int sc = 0; sc < 2; sc++) {
        gv_module_options o = scheme_opts(sc);
        gv_mha_cfg cfg = gv_mha_defaults(3);
        cfg.qkv_features = 6, cfg.out_features = 5, cfg.bias_init = normal1;
        gv_module m = {&gv_MultiHeadDotProductAttention, &cfg};
        gv_tree *args = args_of(2, "xq", "xkv");
        gv_tree *vars = GVT_NN(gv_init(&m, gv_prng_key(0), args, &o));
        json_object *c = case_of(sc, "cross");
        expect_params(SCHEMES[sc], vars, get(c, "params"));
        expect_apply("cross", &m, vars, args, NULL, &o, get(c, "out"));
        gv_tensor *w = input("w_cross");
        expect_grad("cross", &m, vars, args, w, &o, get(c, "grad"));
        gv_tensor_free(w), gv_tree_free(vars), gv_tree_free(args);
    }
}

Test(flax_attention, dropout_on_the_weights_is_flax_and_reproducible) {
    for (int sc = 0; sc < 2; sc++) {
        for (int bd = 0; bd < 2; bd++) {
            gv_module_options o = scheme_opts(sc);
            gv_mha_cfg cfg = gv_mha_defaults(2);
            cfg.qkv_features = 8, cfg.dropout_rate = 0.5, cfg.broadcast_dropout = bd;
            gv_module m = {&gv_SelfAttention, &cfg};
            gv_tree *args = args_of(1, "x");
            gv_tree *vars = GVT_NN(gv_init(&m, gv_prng_key(0), args, &o));
            json_object *c = case_of(sc, bd ? "dropout_broadcast" : "dropout");
            expect_params(SCHEMES[sc], vars, get(c, "params"));
            gv_tree *rngs = key_tree("dropout", gv_prng_key(1));
            gv_tree *eval = NULL, *a = NULL, *b = NULL;
            GVT_OK(gv_apply_eager(&m, vars, args, rngs, &o, &eval)); /* not training: no dropout */
            o.train = true;
            expect_apply(bd ? "dropout broadcast" : "dropout", &m, vars, args, rngs, &o,
                         get(c, "out"));
            GVT_OK(gv_apply_eager(&m, vars, args, rngs, &o, &a));
            GVT_OK(gv_apply_eager(&m, vars, args, rngs, &o, &b));
            char first[128];
            cr_expect_eq(gvt_tree_diff(a, b, first, sizeof first), 0, "same key, same output");
            cr_expect_gt(gvt_tree_diff(a, eval, first, sizeof first), 0, "dropout changed nothing");
            gv_tree_free(eval), gv_tree_free(a), gv_tree_free(b), gv_tree_free(rngs);
            gv_tree_free(vars), gv_tree_free(args);
        }
    }
}

/* ---- the functions ---- */

static gv_tree *mask_fns(gv_graph *g, const gv_tree *in, void *ud) {
    (void)ud;
    gv_value len = gv_tree_leaf_value(gv_tree_get(in, "0"));
    gv_value causal = gv_make_causal_mask(len, 1);
    gv_value pad = gv_make_attention_mask(gv_gt(len, gv_scalar(g, GV_F32, 0)),
                                          gv_gt(len, gv_scalar(g, GV_F32, 0)), NULL, 0);
    gv_tree *t = gv_tree_new_tuple();
    gv_tree_append(t, gv_tree_new_value_leaf(causal));
    gv_tree_append(t, gv_tree_new_value_leaf(pad));
    return t;
}

Test(flax_attention, masks_match_flax) {
    /* make_causal_mask(ones((2, 4))) and make_attention_mask(valid, valid) */
    float lens[8] = {1, 1, 1, 1, 1, 1, 0, 0};
    gv_tensor *x = gv_tensor_from_data(GV_F32, GV_DIMS(2, 4), lens, sizeof lens);
    gv_tree *in = gv_tree_new_tuple(), *out = NULL;
    gv_tree_append_tensor(in, x);
    gv_fn *f = GVT_NN(gv_trace(mask_fns, NULL, in));
    GVT_OK(gv_fn_eval(f, in, &out));
    gv_tensor *causal = gv_tree_get_tensor(out, "0"), *pad = gv_tree_get_tensor(out, "1");
    cr_assert_eq(gv_tensor_rank(causal), 5, "extra_batch_dims=1 adds a leading 1");
    gv_tensor *c4 = GVT_NN(gv_tensor_reshape(causal, GV_DIMS(2, 1, 4, 4)));
    expect_bits("causal mask", c4, get(golden(), "inputs.causal_mask"));
    expect_bits("padding mask", pad, get(golden(), "inputs.padding_mask"));
    gv_tensor_free(c4), gv_tensor_free(x), gv_tree_free(out), gv_tree_free(in), gv_fn_free(f);
}

static gv_tree *attention_fns(gv_graph *g, const gv_tree *in, void *ud) {
    (void)g, (void)ud;
    gv_value q = gv_tree_leaf_value(gv_tree_get(in, "0")), k = gv_tree_leaf_value(gv_tree_get(in, "1"));
    gv_value v = gv_tree_leaf_value(gv_tree_get(in, "2")), m = gv_tree_leaf_value(gv_tree_get(in, "3"));
    gv_tree *t = gv_tree_new_tuple();
    gv_tree_append(t, gv_tree_new_value_leaf(gv_dot_product_attention_weights(q, k, GV_NO_MASK, NULL)));
    gv_tree_append(t, gv_tree_new_value_leaf(gv_dot_product_attention_weights(q, k, m, NULL)));
    gv_tree_append(t, gv_tree_new_value_leaf(gv_dot_product_attention(q, k, v, m, NULL)));
    return t;
}

/* The function alone (no projections): its einsums are dots over 3 and 5
 * terms, summed in XLA's order (one FMA per term); what is left is
 * glibc's expf against XLA's own exp, an ulp here and there. */
Test(flax_attention, dot_product_attention_function) {
    gv_tensor *ts[4] = {input("fq"), input("fk"), input("fv"), input("fmask")};
    gv_tree *in = GVT_NN(gv_args_tensors(ts, 4)), *out = NULL;
    gv_fn *f = GVT_NN(gv_trace(attention_fns, NULL, in));
    GVT_OK(gv_fn_eval(f, in, &out));
    expect_ulps("weights", gv_tree_get_tensor(out, "0"), get(golden(), "functions.weights"),
                FN_ULPS);
    expect_ulps("weights masked", gv_tree_get_tensor(out, "1"),
                get(golden(), "functions.weights_masked"), FN_ULPS);
    expect_ulps("attention masked", gv_tree_get_tensor(out, "2"),
                get(golden(), "functions.attention_masked"), FN_ULPS);
    gv_tree_free(out), gv_fn_free(f), gv_tree_free(in);
    for (int i = 0; i < 4; i++) gv_tensor_free(ts[i]);
}

static gv_tree *weights_fn(gv_graph *g, const gv_tree *in, void *ud) {
    (void)g, (void)ud;
    return gv_tree_new_value_leaf(gv_dot_product_attention_weights(
        gv_tree_leaf_value(gv_tree_get(in, "0")), gv_tree_leaf_value(gv_tree_get(in, "1")),
        GV_NO_MASK, NULL));
}

/* Flax scales the query before the einsum: q . k = 4e38 overflows, (q /
 * sqrt(3)) . k does not, and the weights are Flax's [1, 0, 0] bit for bit
 * (scaling the logits after would give inf - inf = NaN). */
Test(flax_attention, query_scaled_before_the_einsum) {
    gv_tensor *ts[2] = {input("lq"), input("lk")};
    gv_tree *in = GVT_NN(gv_args_tensors(ts, 2)), *out = NULL;
    gv_fn *f = GVT_NN(gv_trace(weights_fn, NULL, in));
    GVT_OK(gv_fn_eval(f, in, &out));
    expect_bits("weights of large logits", gv_tree_leaf_tensor(out),
                get(golden(), "functions.weights_large"));
    gv_tree_free(out), gv_fn_free(f), gv_tree_free(in);
    gv_tensor_free(ts[0]), gv_tensor_free(ts[1]);
}

/* docs/modules.md's example: a compact module holding SelfAttention with a
 * causal mask made inside the trace */
static int64_t HEADS = 2;
static gv_tree *decoder_block(gv_scope *s, const void *cfg, const gv_tree *args) {
    (void)cfg;
    gv_value x = gv_args_get(args, 0);
    int64_t b = gv_value_shape(x)[0], len = gv_value_shape(x)[1];
    gv_value mask = gv_make_causal_mask(gv_full(gv_scope_graph(s), GV_F32, GV_DIMS(b, len), 1.0), 0);
    gv_mha_cfg c = gv_mha_defaults(HEADS);
    c.qkv_features = 8;
    gv_module attn = {&gv_SelfAttention, &c};
    gv_tree *in = gv_args2(x, mask);
    gv_tree *out = gv_scope_call(s, NULL, &attn, NULL, in);
    gv_tree_free(in);
    return out;
}
static const gv_module_type Block = {"Block", decoder_block, NULL, 0};

Test(flax_attention, nested_with_a_traced_causal_mask) {
    gv_module_options o = scheme_opts(1);
    gv_module m = {&Block, NULL};
    gv_tree *args = args_of(1, "x");
    gv_tree *vars = GVT_NN(gv_init(&m, gv_prng_key(0), args, &o));
    cr_expect_eq(gv_tree_num_leaves(vars), 8);
    cr_expect(gv_tree_contains(vars, "params/SelfAttention_0/query/kernel"));
    /* Flax's top-level params under the nested path give Flax's causal output */
    gv_mha_cfg top = gv_mha_defaults(2);
    top.qkv_features = 8;
    gv_module sa = {&gv_SelfAttention, &top};
    gv_tree *tv = GVT_NN(gv_init(&sa, gv_prng_key(0), args, &o));
    gv_tree *nested = gv_tree_new_dict();
    GVT_OK(gv_tree_insert(nested, "params/SelfAttention_0", gv_tree_clone(gv_tree_get(tv, "params"))));
    expect_apply("nested causal", &m, nested, args, NULL, &o, get(case_of(1, "self"), "out_causal"));
    HEADS = 3; /* 8 % 3: the error names the nested module */
    gv_tree_free(gv_init(&m, gv_prng_key(0), args, &o));
    cr_expect(strstr(gv_last_error(), "SelfAttention_0") != NULL, "%s", gv_last_error());
    HEADS = 2;
    gv_tree_free(nested), gv_tree_free(tv), gv_tree_free(vars), gv_tree_free(args);
}

/* ---- errors: trace errors naming the module ---- */

static gv_status init_status(const gv_module *m, gv_tree *args) {
    gv_tree *v = gv_init(m, gv_prng_key(0), args, NULL);
    gv_tree_free(v), gv_tree_free(args);
    return v ? GV_OK : gv_last_status();
}

Test(flax_attention, argument_errors_name_the_module) {
    gv_mha_cfg cfg = gv_mha_defaults(3);
    cfg.qkv_features = 8;
    gv_module m = {&gv_SelfAttention, &cfg};
    GVT_FAILS(init_status(&m, args_of(1, "x")), GV_ERR_ARG, "divisible by num_heads");
    GVT_FAILS(init_status(&m, args_of(1, "x")), GV_ERR_ARG, "SelfAttention");

    cfg = gv_mha_defaults(2);
    GVT_FAILS(init_status(&m, args_of(2, "x", "xq")), GV_ERR_SHAPE, "does not broadcast");
    GVT_FAILS(init_status(&m, args_of(3, "x", "x", "x")), GV_ERR_ARG, "expected (x) or (x, mask)");
    cfg.dropout_rate = 1.0;
    GVT_FAILS(init_status(&m, args_of(1, "x")), GV_ERR_ARG, "dropout_rate");

    gv_mha_cfg mc = gv_mha_defaults(2);
    gv_module mha = {&gv_MultiHeadDotProductAttention, &mc};
    GVT_FAILS(init_status(&mha, args_of(2, "x", "xd")), GV_ERR_SHAPE, "same batch dims");
    cr_expect_eq(init_status(&mha, args_of(2, "x", "xkv")), GV_OK, "%s", gv_last_error());

    static const int64_t F[1] = {3};
    static const int BAD[2] = {1, -2};
    gv_dense_general_cfg d = gv_dense_general_defaults(F, 1);
    d.axis = BAD, d.naxis = 2;
    gv_module dg = {&gv_DenseGeneral, &d};
    GVT_FAILS(init_status(&dg, args_of(1, "x")), GV_ERR_ARG, "repeated");
}

static gv_tree *bad_attention(gv_graph *g, const gv_tree *in, void *ud) {
    int which = *(const int *)ud;
    gv_value q = gv_tree_leaf_value(gv_tree_get(in, "0")), k = gv_tree_leaf_value(gv_tree_get(in, "1"));
    gv_value v = gv_tree_leaf_value(gv_tree_get(in, "2")), m = gv_tree_leaf_value(gv_tree_get(in, "3"));
    gv_attention_options o = gv_attention_options_defaults();
    o.dropout_rate = 0.5;
    gv_value r = which == 0   ? gv_dot_product_attention(q, v, v, GV_NO_MASK, NULL)
                 : which == 1 ? gv_dot_product_attention(q, k, v, gv_transpose(m, NULL), NULL)
                 : which == 2 ? gv_dot_product_attention(q, k, q, GV_NO_MASK, NULL)
                              : gv_dot_product_attention(q, k, v, m, &o);
    (void)g;
    return gv_value_ok(r) ? gv_tree_new_value_leaf(r) : NULL;
}

Test(flax_attention, function_argument_errors) {
    gv_tensor *ts[4] = {input("fq"), input("fk"), input("fv"), input("fmask")};
    gv_tree *in = GVT_NN(gv_args_tensors(ts, 4));
    static const char *needle[4] = {"query [2,3,2,3] and key [2,5,2,4] are not",
                                    "does not broadcast",
                                    "value [2,3,2,3] does not match key [2,5,2,3]",
                                    "dropout needs a dropout_rng"};
    for (int which = 0; which < 4; which++) {
        gv_clear_error();
        gv_fn *f = gv_trace(bad_attention, &which, in);
        cr_expect_null(f, "case %d traced", which);
        cr_expect(strstr(gv_last_error(), needle[which]) != NULL, "case %d: %s", which,
                  gv_last_error());
        gv_fn_free(f);
    }
    gv_tree_free(in);
    for (int i = 0; i < 4; i++) gv_tensor_free(ts[i]);
}
