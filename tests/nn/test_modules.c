/* Modules: Flax's parameter paths and initial numbers, apply, the Flax
 * docstring vectors of tests/data/jax-prng-vectors.json through the module
 * API (Dense -> Dropout MLP, Embed init, two Dense layers with a perturbation
 * gradient) in the scheme each was made with, and the error paths. Applied
 * outputs are Flax's bit for bit through the reference evaluator and within
 * a few ulps through a compiled plan, whose matmuls the BLAS sums in its own
 * order (expect_apply). */
#include <math.h>
#include <string.h>

#include "testutil.h"

static json_object *vector(const char *id) {
    char *path = gvt_data_path("jax-prng-vectors.json");
    json_object *root = gvt_load_json(path), *vs, *found = NULL;
    free(path);
    json_object_object_get_ex(root, "vectors", &vs);
    for (size_t i = 0; i < json_object_array_length(vs); i++) {
        json_object *v = json_object_array_get_idx(vs, i), *jid;
        json_object_object_get_ex(v, "id", &jid);
        if (!strcmp(json_object_get_string(jid), id)) found = json_object_get(v);
    }
    json_object_put(root);
    cr_assert_not_null(found, "vector %s", id);
    return found;
}

/* Compare a float32 tensor with a vector's expected (nested) list. */
static void expect_vector(const char *id, const gv_tensor *t) {
    json_object *v = vector(id), *exp;
    json_object_object_get_ex(v, "expected", &exp);
    double want[64];
    int n = 0;
    json_object *stack[4] = {exp};
    (void)stack;
    for (size_t i = 0; i < json_object_array_length(exp); i++) {
        json_object *row = json_object_array_get_idx(exp, i);
        if (json_object_is_type(row, json_type_array))
            for (size_t j = 0; j < json_object_array_length(row); j++)
                want[n++] = json_object_get_double(json_object_array_get_idx(row, j));
        else
            want[n++] = json_object_get_double(row);
    }
    cr_assert_eq(gv_tensor_size(t), n, "%s: %lld values, expected %d", id,
                 (long long)gv_tensor_size(t), n);
    const float *p = gv_tensor_data_const(t);
    for (int i = 0; i < n; i++)
        cr_expect_eq(gvt_numpy_printed(p[i]), want[i], "%s[%d]: %.9g prints as %.9g, expected %.9g", id, i,
                     (double)p[i], gvt_numpy_printed(p[i]), want[i]);
    json_object_put(v);
}

/* model.apply(variables, *args, rngs=rngs) through the reference evaluator
 * (gv_fn_eval) instead of a compiled plan. Its dot products accumulate in
 * order from 0 with one FMA per term, as XLA:CPU's small dots do
 * (docs/random.md 7.3), and every other op is grove's own arithmetic, so
 * its output is Flax's bit for bit. */
typedef struct apply_ctx {
    const gv_module *m;
    const gv_module_options *o;
} apply_ctx;

static gv_tree *apply_trace(gv_graph *g, const gv_tree *in, void *ud) {
    const apply_ctx *c = ud;
    return gv_apply(g, c->m, gv_tree_get(in, "0"), gv_tree_get(in, "1"), gv_tree_get(in, "2"),
                    c->o);
}

static gv_tree *apply_reference(const gv_module *m, const gv_tree *vars, const gv_tree *args,
                                const gv_tree *rngs, const gv_module_options *o) {
    apply_ctx c = {m, o};
    gv_tree *in = gv_tree_new_tuple();
    GVT_OK(gv_tree_append(in, gv_tree_clone(vars)));
    GVT_OK(gv_tree_append(in, gv_tree_clone(args)));
    GVT_OK(gv_tree_append(in, rngs ? gv_tree_clone(rngs) : gv_tree_new_dict()));
    gv_fn *f = GVT_NN(gv_trace(apply_trace, &c, in));
    gv_tree *out = NULL;
    GVT_OK(gv_fn_eval(f, in, &out));
    gv_fn_free(f), gv_tree_free(in);
    return out;
}

/* gv_apply_eager runs a compiled plan, whose matmuls are cblas_sgemm calls:
 * the BLAS sums in its own order, which depends on the kernel set it picks
 * for the CPU. OpenBLAS's Haswell and SkylakeX kernels happen to give XLA's
 * bits on these shapes; its generic Prescott kernels (no FMA; what
 * OpenBLAS 0.3.21 falls back to on CPUs it does not know) are 1-2 ulps off.
 * A dot product's rounding error is bounded relative to the sum of the
 * magnitudes of its terms, not to its result, so the tolerance is in ulps of
 * the output's largest element: a bound for every element, tight enough
 * that a wrong bias or a wrong weight fails. */
enum { BLAS_ULPS = 4 };

static void expect_near_reference(const char *id, const gv_tensor *plan, const gv_tensor *ref) {
    cr_assert(gv_tensor_same_shape(plan, ref), "%s: shapes differ", id);
    const float *p = gv_tensor_data_const(plan), *r = gv_tensor_data_const(ref);
    int64_t n = gv_tensor_size(ref);
    float big = 0.0f;
    for (int64_t i = 0; i < n; i++) big = fmaxf(big, fabsf(r[i]));
    double tol = BLAS_ULPS * ((double)nextafterf(big, INFINITY) - big);
    for (int64_t i = 0; i < n; i++)
        cr_expect_leq(fabs((double)p[i] - r[i]), tol,
                      "%s[%lld]: plan %.9g, reference %.9g: more than %d ulps of the largest "
                      "(%.9g) apart", id, (long long)i, (double)p[i], (double)r[i], BLAS_ULPS,
                      (double)big);
}

/* model.apply both ways: the reference's output is Flax's printed vector
 * bit for bit, the plan's within BLAS_ULPS of it. */
static void expect_apply(const char *id, const gv_module *m, const gv_tree *vars,
                         const gv_tree *args, const gv_tree *rngs, const gv_module_options *o) {
    gv_tree *out = NULL, *ref = apply_reference(m, vars, args, rngs, o);
    GVT_OK(gv_apply_eager(m, vars, args, rngs, o, &out));
    expect_vector(id, gv_tree_leaf_tensor(ref));
    expect_near_reference(id, gv_tree_leaf_tensor(out), gv_tree_leaf_tensor(ref));
    gv_tree_free(ref), gv_tree_free(out);
}

/* MLP: @compact Dense(4) -> Dropout(0.5, deterministic=not train) */
static gv_tree *mlp_call(gv_scope *s, const void *cfg, const gv_tree *args) {
    gv_dense_cfg d = gv_dense_defaults(4);
    gv_module dense = {&gv_Dense, &d};
    gv_dropout_cfg dc = {.rate = 0.5};
    gv_module drop = {&gv_Dropout, &dc};
    gv_value x = gv_scope_call1(s, NULL, &dense, gv_args_get(args, 0));
    return gv_tree_new_value_leaf(gv_scope_call1(s, NULL, &drop, x));
}
static const gv_module_type MLP = {"MLP", mlp_call, NULL, 0};

static gv_tree *ones_args(int64_t r, int64_t c) {
    gv_tensor *x = gv_tensor_ones(GV_F32, GV_DIMS(r, c));
    gv_tree *a = gv_args_tensors(&x, 1);
    gv_tensor_free(x);
    return a;
}

static gv_tree *key_tree(const char *stream, gv_key k) {
    gv_tensor *t = gv_tensor_from_data(GV_U32, GV_DIMS(2), k.k, sizeof k.k);
    gv_tree *r = gv_tree_new_dict();
    gv_tree_insert_tensor(r, stream, t);
    gv_tensor_free(t);
    return r;
}

Test(flax_vectors, dense_dropout_mlp_both_schemes) {
    const char *schemes[2] = {"legacy", "partitionable"};
    for (int sc = 0; sc < 2; sc++) {
        gv_module_options o = {.impl = sc ? GV_PRNG_PARTITIONABLE : GV_PRNG_LEGACY};
        gv_module m = {&MLP, NULL};
        gv_tree *args = ones_args(1, 3);
        gv_tree *vars = GVT_NN(gv_init(&m, gv_prng_key(0), args, &o));
        cr_assert(gv_tree_contains(vars, "params/Dense_0/kernel"));
        cr_assert(gv_tree_contains(vars, "params/Dense_0/bias"));
        cr_assert_eq(gv_tree_num_leaves(vars), 2, "Dropout has no params");
        char id[64];
        snprintf(id, sizeof id, "flax_dense_mlp_%s", schemes[sc]);
        expect_apply(id, &m, vars, args, NULL, &o);
        o.train = true;
        gv_tree *rngs = key_tree("dropout", gv_prng_key(1));
        snprintf(id, sizeof id, "flax_dropout_%s", schemes[sc]);
        expect_apply(id, &m, vars, args, rngs, &o);
        gv_tree_free(rngs), gv_tree_free(vars), gv_tree_free(args);
    }
}

Test(flax_vectors, embed_init_both_schemes) {
    for (int sc = 0; sc < 2; sc++) {
        gv_module_options o = {.impl = sc ? GV_PRNG_PARTITIONABLE : GV_PRNG_LEGACY};
        gv_embed_cfg cfg = gv_embed_defaults(5, 3);
        gv_module m = {&gv_Embed, &cfg};
        gv_tensor *ids = gv_tensor_zeros(GV_I32, GV_DIMS(2));
        gv_tree *args = gv_args_tensors(&ids, 1);
        gv_tree *vars = GVT_NN(gv_init(&m, gv_prng_key(0), args, &o));
        expect_vector(sc ? "flax_embed_partitionable" : "flax_embed_legacy",
                      GVT_NN(gv_tree_get_tensor(vars, "params/embedding")));
        gv_tree_free(vars), gv_tree_free(args), gv_tensor_free(ids);
    }
}

/* @compact Dense(3) -> perturb('dense3') -> Dense(2) */
static gv_tree *two_dense_call(gv_scope *s, const void *cfg, const gv_tree *args) {
    gv_dense_cfg d3 = gv_dense_defaults(3), d2 = gv_dense_defaults(2);
    gv_module a = {&gv_Dense, &d3}, b = {&gv_Dense, &d2};
    gv_value x = gv_scope_call1(s, NULL, &a, gv_args_get(args, 0));
    x = gv_perturb(s, "dense3", x);
    return gv_tree_new_value_leaf(gv_scope_call1(s, NULL, &b, x));
}
static const gv_module_type TwoDense = {"Model", two_dense_call, NULL, 0};

typedef struct loss_ctx {
    gv_module m;
    gv_module_options o;
} loss_ctx;

/* loss(variables, x) = mean((apply(variables, x) - 1)^2) */
static gv_tree *perturb_loss(gv_graph *g, const gv_tree *in, void *ud) {
    loss_ctx *c = ud;
    gv_tree *out = gv_apply(g, &c->m, gv_tree_get(in, "0"), gv_tree_get(in, "1"), NULL, &c->o);
    if (!out) return NULL;
    gv_value y = gv_tree_leaf_value(out);
    gv_tree_free(out);
    return gv_tree_new_value_leaf(gv_mean(gv_square(gv_add_scalar(y, -1.0)), NULL, 0, false));
}

Test(flax_vectors, two_dense_and_perturbation_gradient) {
    for (int sc = 0; sc < 2; sc++) {
        loss_ctx c = {{&TwoDense, NULL}, {.impl = sc ? GV_PRNG_PARTITIONABLE : GV_PRNG_LEGACY}};
        gv_tree *args = ones_args(2, 9);
        gv_tree *vars = GVT_NN(gv_init(&c.m, gv_prng_key(0), args, &c.o));
        cr_assert(gv_tree_contains(vars, "perturbations/dense3"));
        expect_apply(sc ? "flax_two_dense_partitionable" : "flax_two_dense_legacy", &c.m, vars,
                     args, NULL, &c.o);
        gv_tree *out = NULL, *in = gv_tree_new_tuple();
        GVT_OK(gv_tree_append(in, gv_tree_clone(vars)));
        GVT_OK(gv_tree_append(in, gv_tree_clone(args)));
        gv_fn *f = GVT_NN(gv_trace(perturb_loss, &c, in));
        gv_fn *gf = GVT_NN(gv_grad(f, 0, false));
        GVT_OK(gv_fn_eval(gf, in, &out));
        expect_vector(sc ? "flax_two_dense_grad_partitionable" : "flax_two_dense_grad_legacy",
                      GVT_NN(gv_tree_get_tensor(out, "perturbations/dense3")));
        gv_tree_free(out), gv_fn_free(gf), gv_fn_free(f), gv_tree_free(in);
        gv_tree_free(vars), gv_tree_free(args);
    }
}

/* setup-style: named children "encoder"/"decoder", each a FeedForward */
static const int64_t ENC[3] = {8, 4, 2}, DEC[2] = {4, 6};
static gv_tree *ae_call(gv_scope *s, const void *cfg, const gv_tree *args) {
    gv_feedforward_cfg e = {ENC, 3, NULL, true}, d = {DEC, 2, NULL, false};
    gv_module enc = {&gv_FeedForward, &e}, dec = {&gv_FeedForward, &d};
    gv_value z = gv_scope_call1(s, "encoder", &enc, gv_args_get(args, 0));
    return gv_tree_new_value_leaf(gv_scope_call1(s, "decoder", &dec, z));
}
static gv_tree *ae_encode(gv_scope *s, const void *cfg, const gv_tree *args) {
    gv_feedforward_cfg e = {ENC, 3, NULL, true};
    gv_module enc = {&gv_FeedForward, &e};
    return gv_tree_new_value_leaf(gv_scope_call1(s, "encoder", &enc, gv_args_get(args, 0)));
}
static const gv_method AE_METHODS[] = {{"encode", ae_encode}};
static const gv_module_type AE = {"AutoEncoder", ae_call, AE_METHODS, 1};

Test(modules, paths_shapes_and_methods) {
    gv_module m = {&AE, NULL};
    gv_tree *args = ones_args(5, 6);
    gv_tree *vars = GVT_NN(gv_init(&m, gv_prng_key(7), args, NULL));
    char *shapes = GVT_NN(gv_tree_repr_shapes(vars));
    cr_assert_str_eq(shapes,
        "{'params': {'encoder': {'Dense_0': {'kernel': (6, 8), 'bias': (8,)}, "
        "'Dense_1': {'kernel': (8, 4), 'bias': (4,)}, 'Dense_2': {'kernel': (4, 2), 'bias': (2,)}}, "
        "'decoder': {'Dense_0': {'kernel': (2, 4), 'bias': (4,)}, "
        "'Dense_1': {'kernel': (4, 6), 'bias': (6,)}}}}");
    free(shapes);
    /* the keys are Flax's: fold_in_static(key, ('encoder', 'Dense_1', 1)) */
    gv_fold_part parts[3] = {{"encoder", 0}, {"Dense_1", 0}, {NULL, 1}};
    gv_initializer lecun = gv_init_lecun_normal();
    gv_tensor *want = GVT_NN(gv_initializer_sample(&lecun, GV_PRNG_DEFAULT,
                                                   gv_fold_in_static(gv_prng_key(7), parts, 3, false),
                                                   GV_DIMS(8, 4)));
    cr_assert(gv_tensor_equal(gv_tree_get_tensor(vars, "params/encoder/Dense_1/kernel"), want));
    gv_tensor_free(want);
    gv_tree *out = NULL;
    GVT_OK(gv_apply_eager(&m, vars, args, NULL, NULL, &out));
    cr_assert_eq(gv_tensor_dim(gv_tree_leaf_tensor(out), 1), 6);
    gv_tree_free(out);
    gv_module_options enc = {.method = "encode"};
    GVT_OK(gv_apply_eager(&m, vars, args, NULL, &enc, &out));
    cr_assert_eq(gv_tensor_dim(gv_tree_leaf_tensor(out), 1), 2, "method=encode runs the encoder only");
    gv_tree_free(out);
    /* init with method=encode creates only the encoder's params */
    gv_tree *evars = GVT_NN(gv_init(&m, gv_prng_key(7), args, &enc));
    cr_assert(!gv_tree_contains(evars, "params/decoder"));
    cr_assert(gv_tree_contains(evars, "params/encoder/Dense_2/bias"));
    gv_tree_free(evars), gv_tree_free(vars), gv_tree_free(args);
}

Test(modules, sequential_names_layers) {
    gv_dense_cfg a = gv_dense_defaults(3), b = gv_dense_defaults(1);
    gv_module layers[2] = {{&gv_Dense, &a}, {&gv_Dense, &b}};
    gv_sequential_cfg cfg = {layers, 2};
    gv_module m = {&gv_Sequential, &cfg};
    gv_tree *args = ones_args(2, 5);
    gv_tree *vars = GVT_NN(gv_init(&m, gv_prng_key(0), args, NULL));
    cr_assert(gv_tree_contains(vars, "params/layers_0/kernel"));
    cr_assert(gv_tree_contains(vars, "params/layers_1/bias"));
    gv_tree_free(vars), gv_tree_free(args);
}

Test(modules, errors) {
    gv_module m = {&AE, NULL};
    gv_tree *args = ones_args(5, 6);
    gv_tree *out = NULL;
    GVT_FAILS(gv_apply_eager(&m, NULL, args, NULL, NULL, &out), GV_ERR_ARG, "a module holds no params");
    gv_tree *vars = GVT_NN(gv_init(&m, gv_prng_key(0), args, NULL));
    gv_tree_free(gv_tree_pop(vars, "params/decoder/Dense_1/bias"));
    GVT_FAILS(gv_apply_eager(&m, vars, args, NULL, NULL, &out), GV_ERR_NOT_FOUND,
              "param params/decoder/Dense_1/bias not found");
    gv_tree *bad = ones_args(5, 7);
    gv_tree_free(vars);
    vars = GVT_NN(gv_init(&m, gv_prng_key(0), args, NULL));
    GVT_FAILS(gv_apply_eager(&m, vars, bad, NULL, NULL, &out), GV_ERR_SHAPE,
              "param params/encoder/Dense_0/kernel has shape [6,8], the module expects [7,8]");
    gv_module_options nope = {.method = "nope"};
    GVT_FAILS(gv_apply_eager(&m, vars, args, NULL, &nope, &out), GV_ERR_ARG, "has no method 'nope'");
    /* dropout in training without a dropout key falls back to no stream */
    gv_module mlp = {&MLP, NULL};
    gv_tree *a3 = ones_args(1, 3);
    gv_tree *v3 = GVT_NN(gv_init(&mlp, gv_prng_key(0), a3, NULL));
    gv_module_options train = {.train = true};
    GVT_FAILS(gv_apply_eager(&mlp, v3, a3, NULL, &train, &out), GV_ERR_NOT_FOUND,
              "make_rng('params') in Dropout_0: no such rng stream was given");
    gv_tree_free(v3), gv_tree_free(a3), gv_tree_free(bad), gv_tree_free(vars), gv_tree_free(args);
}

Test(modules, bind_unbind_and_tabulate) {
    gv_module m = {&AE, NULL};
    gv_tree *args = ones_args(5, 6);
    gv_tree *vars = GVT_NN(gv_init(&m, gv_prng_key(3), args, NULL));
    gv_bound *b = GVT_NN(gv_bind(&m, vars, NULL));
    gv_tree *full = NULL, *z = NULL, *z2 = NULL;
    GVT_OK(gv_bound_call(b, NULL, args, NULL, &full));
    GVT_OK(gv_bound_call(b, "encode", args, NULL, &z));
    /* bound.encoder(x) equals encode */
    gv_feedforward_cfg e = {ENC, 3, NULL, true};
    gv_module enc = {&gv_FeedForward, &e};
    gv_bound *be = GVT_NN(gv_bound_child(b, "encoder", &enc));
    cr_assert(gv_tree_contains(gv_bound_variables(be), "params/Dense_2/kernel"));
    GVT_OK(gv_bound_call(be, NULL, args, NULL, &z2));
    cr_assert(gv_tensor_equal(gv_tree_leaf_tensor(z), gv_tree_leaf_tensor(z2)));
    GVT_NULL(gv_bound_child(b, "nope", &enc), GV_ERR_NOT_FOUND, "no child 'nope'");
    /* repeated calls with the same shapes reuse the compiled plan */
    for (int k = 0; k < 3; k++) {
        gv_tree *again = NULL;
        GVT_OK(gv_bound_call(b, NULL, args, NULL, &again));
        cr_assert(gv_tensor_equal(gv_tree_leaf_tensor(again), gv_tree_leaf_tensor(full)));
        gv_tree_free(again);
    }
    cr_assert_eq(gv_bound_num_compiles(b), 2, "__call__ and encode, once each");
    gv_tree *bad_out = NULL;
    GVT_FAILS(gv_bound_call(b, "nope", args, NULL, &bad_out), GV_ERR_ARG, "no method 'nope'");
    gv_module um;
    gv_tree *uv = NULL;
    GVT_OK(gv_unbind(be, &um, &uv));
    cr_assert_eq(um.type, &gv_FeedForward);
    cr_assert(gv_tree_contains(uv, "params/Dense_0/bias"));
    GVT_FAILS(gv_unbind(NULL, &um, &uv), GV_ERR_ARG, "not bound");
    char *table = GVT_NN(gv_tabulate(&m, gv_prng_key(3), args, NULL));
    cr_assert(strstr(table, "Total Parameters: 144 (576 B)"), "%s", table);
    free(table);
    gv_tree_free(uv), gv_tree_free(full), gv_tree_free(z), gv_tree_free(z2);
    gv_bound_free(b), gv_tree_free(vars), gv_tree_free(args);
}
