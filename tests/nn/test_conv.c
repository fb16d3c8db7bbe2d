/* nn.Conv, nn.max_pool and nn.avg_pool against the real Flax
 * (tests/golden/flax_conv_golden.json, made by
 * tests/golden/make_flax_conv_golden.py): Conv's init (paths, shapes and
 * bits), outputs and the gradients of sum(out * w) w.r.t. the input, kernel
 * and bias for SAME, VALID, strided, explicit, dilated, grouped, depthwise
 * and causal configurations; the pools' outputs and input gradients. Each
 * through the reference evaluator (the conv primitive's direct loops) and a
 * compiled plan (im2col + the BLAS GEMM), measured separately. Then
 * Flax's compact names, batch dims, and the module's and the primitive's
 * argument errors.
 *
 * Tolerances (measured; MAX_ULPS below) are in units of the last place of
 * the largest magnitude in the compared array (a sum that cancels has no
 * meaningful ulp of its own). A conv output is a sum of kernel * input
 * terms, and the order of the sum is each implementation's own, so each
 * may round differently in the last bits; MAX_ULPS says what was measured
 * and why. */
#include <math.h>
#include <string.h>

#include "grove/nn_conv.h"
#include "testutil.h"

/* ---- golden file ---- */

static json_object *golden(void) {
    static json_object *root;
    if (!root) {
        char *path = gvt_golden_path("flax_conv_golden.json");
        root = gvt_load_json(path);
        cr_assert_not_null(root, "cannot read %s", path);
        free(path);
    }
    return root;
}

static json_object *get(json_object *o, const char *key) {
    json_object *v = NULL;
    cr_assert(json_object_object_get_ex(o, key, &v), "golden: no '%s'", key);
    return v;
}

static json_object *find_case(const char *name) {
    json_object *cases = get(golden(), "cases");
    for (size_t i = 0; i < json_object_array_length(cases); i++) {
        json_object *c = json_object_array_get_idx(cases, i);
        if (!strcmp(json_object_get_string(get(c, "name")), name)) return c;
    }
    cr_assert_fail("golden: no case '%s'", name);
    return NULL;
}

/* {shape, bits} as a float32 tensor. */
static gv_tensor *tensor_of(json_object *spec) {
    json_object *shape = get(spec, "shape"), *words = get(spec, "bits");
    int rank = (int)json_object_array_length(shape);
    int64_t dims[8];
    for (int d = 0; d < rank; d++) dims[d] = json_object_get_int64(json_object_array_get_idx(shape, d));
    gv_tensor *t = GVT_NN(gv_tensor_zeros(GV_F32, rank, dims));
    uint32_t *w = gv_tensor_data(t);
    size_t n = json_object_array_length(words);
    cr_assert_eq((int64_t)n, gv_tensor_size(t));
    for (size_t i = 0; i < n; i++)
        w[i] = (uint32_t)strtoul(json_object_get_string(json_object_array_get_idx(words, i)), NULL, 16);
    return t;
}

static gv_tree *tree_of(json_object *tensors) {
    gv_tree *t = gv_tree_new_dict();
    json_object_object_foreach(tensors, path, spec) {
        gv_tensor *x = tensor_of(spec);
        GVT_OK(gv_tree_insert_tensor(t, path, x));
        gv_tensor_free(x);
    }
    return t;
}

/* ---- the modules of the cases (tests/golden/make_flax_conv_golden.py) ---- */

static const int64_t K33[2] = {3, 3}, K32[2] = {3, 2}, K23[2] = {2, 3}, K22[2] = {2, 2}, K3[1] = {3};
static const int64_t S22[2] = {2, 2}, S12[2] = {1, 2}, D21[2] = {2, 1};
static const int64_t PAD_EXPLICIT[4] = {1, 0, 2, 1}, PAD_INPUT_DIL[4] = {0, 0, 1, 1};

static gv_module conv_transpose_of(const char *name) {
    static const int64_t s21[2] = {2, 1}, k4[1] = {4}, s3[1] = {3}, d12[2] = {1, 2};
    static const int64_t pad[4] = {1, 2, 0, 1};
    static gv_conv_transpose_cfg c;
    if (!strcmp(name, "conv_transpose_same")) c = gv_conv_transpose_defaults(4, 2, K33), c.strides = S22;
    else if (!strcmp(name, "conv_transpose_valid")) {
        c = gv_conv_transpose_defaults(3, 2, K23);
        c.strides = s21, c.padding = "VALID";
    } else if (!strcmp(name, "conv_transpose_explicit_dilated")) {
        c = gv_conv_transpose_defaults(3, 2, K32);
        c.explicit_padding = pad, c.kernel_dilation = d12;
    } else if (!strcmp(name, "conv_transpose_transpose_kernel")) {
        c = gv_conv_transpose_defaults(5, 2, K33);
        c.strides = S22, c.transpose_kernel = true;
    } else if (!strcmp(name, "conv_transpose_1d")) c = gv_conv_transpose_defaults(2, 1, k4), c.strides = s3;
    else cr_assert_fail("no module for case %s", name);
    return (gv_module){&gv_ConvTranspose, &c};
}

static gv_module conv_of(const char *name) {
    static gv_conv_cfg c;
    if (!strncmp(name, "conv_transpose", 14)) return conv_transpose_of(name);
    if (!strcmp(name, "conv_same")) c = gv_conv_defaults(5, 2, K33);
    else if (!strcmp(name, "conv_valid")) c = gv_conv_defaults(5, 2, K32), c.padding = "VALID";
    else if (!strcmp(name, "conv_strided")) c = gv_conv_defaults(6, 2, K33), c.strides = S22;
    else if (!strcmp(name, "conv_explicit")) {
        c = gv_conv_defaults(3, 2, K23);
        c.strides = S12, c.explicit_padding = PAD_EXPLICIT;
    } else if (!strcmp(name, "conv_kernel_dilated"))
        c = gv_conv_defaults(4, 2, K33), c.kernel_dilation = D21;
    else if (!strcmp(name, "conv_input_dilated")) {
        c = gv_conv_defaults(4, 2, K22);
        c.input_dilation = S22, c.explicit_padding = PAD_INPUT_DIL;
    } else if (!strcmp(name, "conv_grouped")) c = gv_conv_defaults(6, 2, K33), c.feature_group_count = 2;
    else if (!strcmp(name, "conv_depthwise")) {
        c = gv_conv_defaults(4, 2, K33);
        c.feature_group_count = 4, c.use_bias = false;
    } else if (!strcmp(name, "conv_circular")) {
        static const int64_t k34[2] = {3, 4};
        c = gv_conv_defaults(3, 2, k34), c.padding = "CIRCULAR";
    } else if (!strcmp(name, "conv1d_causal")) c = gv_conv_defaults(3, 1, K3), c.padding = "CAUSAL";
    else cr_assert_fail("no module for case %s", name);
    return (gv_module){&gv_Conv, &c};
}

static gv_value pool_of(const char *name, gv_value x) {
    static const int64_t pad_max[4] = {1, 0, 0, 1};
    if (!strcmp(name, "max_pool_valid")) return gv_max_pool(x, 2, K22, S22, NULL, NULL);
    if (!strcmp(name, "max_pool_same")) return gv_max_pool(x, 2, K33, S22, "SAME", NULL);
    if (!strcmp(name, "max_pool_explicit")) return gv_max_pool(x, 2, K22, NULL, NULL, pad_max);
    if (!strcmp(name, "avg_pool_valid")) return gv_avg_pool(x, 2, K23, S12, NULL, NULL, true);
    if (!strcmp(name, "avg_pool_same")) return gv_avg_pool(x, 2, K33, NULL, "SAME", NULL, true);
    if (!strcmp(name, "avg_pool_same_exclude_pad"))
        return gv_avg_pool(x, 2, K33, NULL, "SAME", NULL, false);
    cr_assert_fail("no pool for case %s", name);
    return x;
}

/* ---- ulp distances ---- */

/* Units of the last place of want's largest magnitude between have and want. */
static double units_from_golden(const char *what, const gv_tensor *have, const gv_tensor *want) {
    cr_assert(gv_tensor_same_shape(have, want), "%s: shape differs from Flax's", what);
    const float *a = gv_tensor_data_const(want), *b = gv_tensor_data_const(have);
    int64_t n = gv_tensor_size(want);
    float big = 0;
    for (int64_t i = 0; i < n; i++) big = fmaxf(big, fabsf(a[i]));
    double ulp = (double)nextafterf(big, INFINITY) - big, worst = 0;
    for (int64_t i = 0; i < n; i++) {
        if (isnan(a[i]) != isnan(b[i])) return INFINITY;
        worst = fmax(worst, fabs((double)a[i] - b[i]) / ulp);
    }
    return worst;
}

/* ---- loss = sum(f(params, x) * w), with the output as aux ---- */

typedef struct loss_ctx {
    const char *name;
    bool is_conv;
    gv_module m;
    const gv_tensor *w;
} loss_ctx;

static gv_tree *loss_fn(gv_graph *g, const gv_tree *in, void *ud) {
    const loss_ctx *c = ud;
    gv_value y;
    if (c->is_conv) {
        gv_tree *args = gv_args1(gv_tree_get_value(in, "1"));
        gv_tree *out = gv_apply(g, &c->m, gv_tree_get(in, "0"), args, NULL, NULL);
        gv_tree_free(args);
        if (!out) return NULL;
        y = gv_tree_leaf_value(out);
        gv_tree_free(out);
    } else {
        y = pool_of(c->name, gv_tree_get_value(in, "1"));
    }
    gv_value loss = gv_sum(gv_mul(y, gv_constant(g, c->w)), NULL, 0, false);
    gv_tree *r = gv_tree_new_tuple();
    gv_tree_append(r, gv_tree_new_value_leaf(loss));
    gv_tree_append(r, gv_tree_new_value_leaf(y));
    return r;
}

/* Largest distances of one case: output, grad x, grad kernel, grad bias. */
typedef struct dist {
    double out, gx, gkernel, gbias;
} dist;

static dist run_case(const char *name, bool compiled) {
    json_object *c = find_case(name);
    bool is_conv = !strncmp(name, "conv", 4);
    loss_ctx lc = {name, is_conv, is_conv ? conv_of(name) : (gv_module){0}, tensor_of(get(c, "w"))};
    gv_tensor *x = tensor_of(get(c, "x"));
    gv_tree *in = gv_tree_new_tuple();
    gv_tree *params = gv_tree_new_dict();
    if (is_conv) {
        GVT_OK(gv_tree_insert(params, "params", tree_of(get(c, "init"))));
    }
    GVT_OK(gv_tree_append(in, params));
    GVT_OK(gv_tree_append_tensor(in, x));
    gv_fn *f = GVT_NN(gv_trace(loss_fn, &lc, in));
    gv_fn *vg = GVT_NN(gv_value_and_grad_path(f, "", true));
    gv_tree *out = NULL;
    if (compiled) {
        gv_plan *p = GVT_NN(gv_plan_compile(vg, NULL));
        out = GVT_NN(gv_plan_new_outputs(p));
        GVT_OK(gv_plan_run(p, in, out));
        gv_plan_free(p);
    } else {
        GVT_OK(gv_fn_eval(vg, in, &out));
    }
    dist d = {0};
    gv_tensor *want = tensor_of(get(c, "out"));
    d.out = units_from_golden(name, GVT_NN(gv_tree_get_tensor(out, "0/1")), want);
    gv_tensor_free(want);
    want = tensor_of(get(c, "grad_x"));
    d.gx = units_from_golden(name, GVT_NN(gv_tree_get_tensor(out, "1/1")), want);
    gv_tensor_free(want);
    if (is_conv) {
        json_object_object_foreach(get(c, "grad_params"), path, spec) {
            char p[128];
            snprintf(p, sizeof p, "1/0/params/%s", path);
            want = tensor_of(spec);
            double u = units_from_golden(p, GVT_NN(gv_tree_get_tensor(out, p)), want);
            if (!strcmp(path, "kernel")) d.gkernel = u;
            else d.gbias = u;
            gv_tensor_free(want);
        }
    }
    gv_tree_free(out), gv_fn_free(vg), gv_fn_free(f), gv_tree_free(in);
    gv_tensor_free(x), gv_tensor_free((gv_tensor *)lc.w);
    return d;
}

/* Measured: {reference evaluator}, {compiled plan}, in units as above.
 * The reference kernel sums each window in row-major order, then the
 * group's channels, one multiply-add per term: that is the order of XLA's
 * CPU convolution under the pinned flags, and its outputs match Flax bit for
 * bit (the depthwise case, 9 terms of one channel each: 1 unit). The
 * gradients are convs too; where their operands are a transposed or
 * dilated view (strided, explicit and input-dilated input gradients, the
 * input-dilated kernel gradient) XLA's own transpose rule sums in another
 * order: up to 3 units. The plan's convs are im2col + the BLAS GEMM, whose
 * blocked FMA order is its own: up to 3.5 units, 5 for the depthwise kernel
 * gradient (84 terms, one channel each). The bias gradient sums the
 * cotangent over batch and positions in grove's order, up to 1.25. The
 * pools are bit for bit except avg_pool_valid (1 unit): its window is 2x3,
 * and XLA's reduce_window then adds the six terms in an order of its own.
 * ConvTranspose is a conv of the stride-dilated input, which XLA sums in an
 * order of its own (not the holes' zeros in window order): up to 3 units for
 * the outputs and 4 for the kernel gradients through the reference kernel
 * (0 with stride 1), the same through the plan (5 for the kernel-dilated
 * kernel gradient); their bias gradients sum 2 * 12 * 14 cotangents, in
 * grove's order: up to 5 units. Each GEMM kernel set of OpenBLAS sums in
 * an order of its own, so the plan's bounds are the largest measured over
 * its default kernels on this machine and OPENBLAS_CORETYPE=SkylakeX,
 * Haswell, Zen, Sandybridge, Nehalem and Prescott (up to 5 units, for the
 * kernel gradients of the transposed and depthwise convs). */
static const struct {
    const char *name;
    dist eval, plan;
} MAX_ULPS[] = {
    {"conv_same", {0, 0, 0, 0}, {2.5, 3, 3, 0}},
    {"conv_valid", {0, 0, 0, 1.25}, {1.5, 1.5, 1.5, 1.25}},
    {"conv_strided", {0, 2, 0, 0}, {2, 2, 1.5, 0}},
    {"conv_explicit", {0, 2, 0, 0}, {2, 2, 2, 0}},
    {"conv_kernel_dilated", {0, 0, 0, 0}, {2, 2, 2.5, 0}},
    {"conv_input_dilated", {0, 0, 3, 0}, {1.5, 1, 4, 0}},
    {"conv_grouped", {0, 0, 0, 0}, {2, 1, 2, 0}},
    {"conv_depthwise", {1, 1, 0, 0}, {1, 1, 5, 0}},
    {"conv1d_causal", {0, 0, 0, 0.25}, {1, 2, 1.5, 0.25}},
    {"max_pool_valid", {0, 0, 0, 0}, {0, 0, 0, 0}},
    {"max_pool_same", {0, 0, 0, 0}, {0, 0, 0, 0}},
    {"max_pool_explicit", {0, 0, 0, 0}, {0, 0, 0, 0}},
    {"avg_pool_valid", {1, 1, 0, 0}, {1, 1, 0, 0}},
    {"avg_pool_same", {0, 0, 0, 0}, {0, 0, 0, 0}},
    {"avg_pool_same_exclude_pad", {0, 0, 0, 0}, {0, 0, 0, 0}},
    {"conv_transpose_same", {3, 0, 3, 5}, {3, 2, 3.5, 5}},
    {"conv_transpose_valid", {1, 0, 4, 4}, {1, 1, 5, 4}},
    {"conv_transpose_explicit_dilated", {0, 0, 0, 0}, {1.5, 1, 5, 0}},
    {"conv_transpose_transpose_kernel", {2, 0, 4, 2}, {2, 4, 4, 2}},
    {"conv_transpose_1d", {1, 1, 1, 1}, {2, 1, 2, 1}},
    {"conv_circular", {0, 0, 0, 0}, {3, 3, 3.5, 0}},
};
enum { NCASES = sizeof MAX_ULPS / sizeof *MAX_ULPS };

static void check_cases(bool compiled) {
    cr_assert_eq(json_object_array_length(get(golden(), "cases")), NCASES);
    for (int i = 0; i < NCASES; i++) {
        dist d = run_case(MAX_ULPS[i].name, compiled), t = compiled ? MAX_ULPS[i].plan : MAX_ULPS[i].eval;
        cr_log_info("%s %s: out %g, grad x %g, grad kernel %g, grad bias %g units",
                    compiled ? "plan" : "eval", MAX_ULPS[i].name, d.out, d.gx, d.gkernel, d.gbias);
        cr_expect(d.out <= t.out, "%s: output %g units from Flax (allowed %g)", MAX_ULPS[i].name,
                  d.out, t.out);
        cr_expect(d.gx <= t.gx, "%s: grad x %g units from Flax (allowed %g)", MAX_ULPS[i].name,
                  d.gx, t.gx);
        cr_expect(d.gkernel <= t.gkernel, "%s: grad kernel %g units from Flax (allowed %g)",
                  MAX_ULPS[i].name, d.gkernel, t.gkernel);
        cr_expect(d.gbias <= t.gbias, "%s: grad bias %g units from Flax (allowed %g)",
                  MAX_ULPS[i].name, d.gbias, t.gbias);
    }
}

Test(flax_golden, outputs_and_gradients_reference_evaluator) { check_cases(false); }
Test(flax_golden, outputs_and_gradients_compiled_plan) { check_cases(true); }

Test(flax_golden, conv_init_paths_shapes_and_bits) {
    for (int i = 0; i < NCASES; i++) {
        const char *name = MAX_ULPS[i].name;
        if (strncmp(name, "conv", 4)) continue;
        json_object *c = find_case(name);
        gv_module m = conv_of(name);
        gv_tensor *x = tensor_of(get(c, "x"));
        gv_tree *args = gv_args_tensors(&x, 1);
        gv_tree *vars = gv_init(&m, gv_prng_key(0), args, NULL);
        cr_assert_not_null(vars, "%s: init: %s", name, gv_last_error());
        gv_tree *want = tree_of(get(c, "init"));
        const gv_tree *have = GVT_NN(gv_tree_get(vars, "params"));
        char first[256] = "";
        cr_expect_eq(gv_tree_num_leaves(have), gv_tree_num_leaves(want), "%s: %zu params, Flax %zu",
                     name, gv_tree_num_leaves(have), gv_tree_num_leaves(want));
        int nd = gvt_tree_diff(want, have, first, sizeof first);
        cr_expect_eq(nd, 0, "%s: %d params differ from Flax's init, first %s", name, nd, first);
        gv_tree_free(want), gv_tree_free(vars), gv_tree_free(args), gv_tensor_free(x);
    }
}

/* ---- Flax's paths, batch dims and errors ---- */

static gv_tree *net_call(gv_scope *s, const void *cfg, const gv_tree *args) {
    (void)cfg;
    gv_conv_cfg a = gv_conv_defaults(4, 2, K33), b = gv_conv_defaults(2, 2, K22);
    gv_conv_transpose_cfg t = gv_conv_transpose_defaults(3, 2, K22);
    b.use_bias = false, t.strides = S22;
    gv_module ma = {&gv_Conv, &a}, mb = {&gv_Conv, &b}, mt = {&gv_ConvTranspose, &t};
    gv_value x = gv_relu(gv_scope_call1(s, NULL, &ma, gv_args_get(args, 0)));
    x = gv_max_pool(x, 2, K22, S22, NULL, NULL);
    x = gv_scope_call1(s, NULL, &mb, x);
    return gv_tree_new_value_leaf(gv_scope_call1(s, NULL, &mt, x));
}
static const gv_module_type Net = {"Net", net_call, NULL, 0};

Test(conv_module, compact_names_and_shapes) {
    gv_module m = {&Net, NULL};
    gv_tensor *x = gv_tensor_ones(GV_F32, GV_DIMS(2, 8, 6, 3));
    gv_tree *args = gv_args_tensors(&x, 1);
    gv_tree *vars = GVT_NN(gv_init(&m, gv_prng_key(0), args, NULL));
    static const struct { const char *path; int rank; int64_t shape[4]; } want[] = {
        {"params/Conv_0/kernel", 4, {3, 3, 3, 4}}, {"params/Conv_0/bias", 1, {4}},
        {"params/Conv_1/kernel", 4, {2, 2, 4, 2}}, {"params/ConvTranspose_0/kernel", 4, {2, 2, 2, 3}},
        {"params/ConvTranspose_0/bias", 1, {3}}};
    cr_expect_eq(gv_tree_num_leaves(vars), 5);
    for (size_t i = 0; i < sizeof want / sizeof *want; i++) {
        const gv_tensor *t = gv_tree_get_tensor(vars, want[i].path);
        cr_assert_not_null(t, "no %s", want[i].path);
        cr_expect_eq(gv_tensor_rank(t), want[i].rank, "%s", want[i].path);
        for (int d = 0; d < want[i].rank; d++)
            cr_expect_eq(gv_tensor_shape(t)[d], want[i].shape[d], "%s dim %d", want[i].path, d);
    }
    gv_tree *out = NULL;
    GVT_OK(gv_apply_eager(&m, vars, args, NULL, NULL, &out));
    const gv_tensor *y = gv_tree_leaf_tensor(out);
    /* 8x6 -> Conv SAME 8x6 -> pool 4x3 -> Conv 4x3 -> ConvTranspose x2: 8x6 */
    cr_expect(gv_tensor_rank(y) == 4 && gv_tensor_shape(y)[1] == 8 && gv_tensor_shape(y)[2] == 6 &&
              gv_tensor_shape(y)[3] == 3);
    gv_tree_free(out), gv_tree_free(vars), gv_tree_free(args), gv_tensor_free(x);
}

/* Equal within 1e-6 of the largest magnitude (eager apply runs a compiled
 * plan, whose convs sum in the BLAS's order). */
static bool close_to(const gv_tensor *a, const gv_tensor *b) {
    if (gv_tensor_size(a) != gv_tensor_size(b)) return false;
    const float *p = gv_tensor_data_const(a), *q = gv_tensor_data_const(b);
    float big = 0;
    for (int64_t i = 0; i < gv_tensor_size(a); i++) big = fmaxf(big, fabsf(q[i]));
    for (int64_t i = 0; i < gv_tensor_size(a); i++)
        if (!(fabsf(p[i] - q[i]) <= 1e-6f * big)) return false;
    return big > 0;
}

/* Flax adds a batch axis to an unbatched input and flattens several. */
static gv_tree *batch_dims_fn(gv_graph *g, const gv_tree *in, void *ud) {
    (void)g, (void)ud;
    static const int64_t pad[4] = {1, 1, 0, 2};
    gv_value w = gv_tree_get_value(in, "w"), x = gv_tree_get_value(in, "x");
    gv_value ref = gv_conv_general_dilated(gv_reshape(x, GV_DIMS(6, 5, 4, 2)), w, S12, pad, NULL,
                                           NULL, 1);
    gv_tree *out = gv_tree_new_dict();
    gv_tree_insert_value(out, "ref", ref);
    gv_tree_insert_value(out, "one", gv_slice_axis(ref, 0, 0, 1));
    return out;
}

Test(conv_module, batch_dims_like_flax) {
    static const int64_t pad[4] = {1, 1, 0, 2};
    gv_conv_cfg c = gv_conv_defaults(3, 2, K23);
    c.strides = S12, c.explicit_padding = pad, c.use_bias = false;
    gv_module m = {&gv_Conv, &c};
    gv_tensor *x = GVT_NN(gv_tensor_zeros(GV_F32, GV_DIMS(2, 3, 5, 4, 2)));
    for (int64_t i = 0; i < gv_tensor_size(x); i++) gv_tensor_set_flat(x, i, sin(0.3 * (double)i));
    gv_tree *args = gv_args_tensors(&x, 1);
    gv_tree *vars = GVT_NN(gv_init(&m, gv_prng_key(3), args, NULL));
    gv_tree *out = NULL;
    GVT_OK(gv_apply_eager(&m, vars, args, NULL, NULL, &out));
    const gv_tensor *y = gv_tree_leaf_tensor(out);
    cr_assert(gv_tensor_rank(y) == 5 && gv_tensor_shape(y)[0] == 2 && gv_tensor_shape(y)[1] == 3 &&
              gv_tensor_shape(y)[2] == 6 && gv_tensor_shape(y)[3] == 2 && gv_tensor_shape(y)[4] == 3);
    /* the same numbers as the primitive on the flattened batch */
    gv_tree *in = gv_tree_new_dict();
    GVT_OK(gv_tree_insert_tensor(in, "w", gv_tree_get_tensor(vars, "params/kernel")));
    GVT_OK(gv_tree_insert_tensor(in, "x", x));
    gv_fn *f = GVT_NN(gv_trace(batch_dims_fn, NULL, in));
    gv_tree *ref = NULL;
    GVT_OK(gv_fn_eval(f, in, &ref));
    const gv_tensor *r = gv_tree_get_tensor(ref, "ref");
    cr_expect(close_to(y, r));
    /* unbatched: [5, 4, 2] gives the first batch element's output */
    gv_tensor *x1 = GVT_NN(gv_tensor_zeros(GV_F32, GV_DIMS(5, 4, 2)));
    memcpy(gv_tensor_data(x1), gv_tensor_data_const(x), gv_tensor_nbytes(x1));
    gv_tree *args1 = gv_args_tensors(&x1, 1), *out1 = NULL;
    GVT_OK(gv_apply_eager(&m, vars, args1, NULL, NULL, &out1));
    const gv_tensor *y1 = gv_tree_leaf_tensor(out1), *r1 = gv_tree_get_tensor(ref, "one");
    cr_expect(gv_tensor_rank(y1) == 3 && gv_tensor_size(y1) == gv_tensor_size(r1));
    cr_expect(close_to(y1, r1));
    gv_tree_free(out1), gv_tree_free(args1), gv_tensor_free(x1);
    gv_tree_free(ref), gv_fn_free(f), gv_tree_free(in);
    gv_tree_free(out), gv_tree_free(vars), gv_tree_free(args), gv_tensor_free(x);
}

static void expect_init_error(gv_module m, int rank, const int64_t *shape, const char *needle) {
    gv_tensor *x = GVT_NN(gv_tensor_zeros(GV_F32, rank, shape));
    gv_tree *args = gv_args_tensors(&x, 1);
    gv_clear_error();
    gv_tree *vars = gv_init(&m, gv_prng_key(0), args, NULL);
    cr_expect_null(vars, "init succeeded, expected '%s'", needle);
    cr_expect(strstr(gv_last_error(), needle), "error '%s' lacks '%s'", gv_last_error(), needle);
    gv_tree_free(vars), gv_tree_free(args), gv_tensor_free(x);
}

Test(conv_module, argument_errors) {
    gv_conv_cfg c = gv_conv_defaults(6, 2, K33);
    c.feature_group_count = 4;
    expect_init_error((gv_module){&gv_Conv, &c}, GV_DIMS(1, 5, 5, 6), "feature_group_count");
    c = gv_conv_defaults(6, 2, K33);
    c.input_dilation = S22;
    expect_init_error((gv_module){&gv_Conv, &c}, GV_DIMS(1, 5, 5, 6), "explicit_padding");
    c = gv_conv_defaults(6, 2, K33);
    c.padding = "REFLECT";
    expect_init_error((gv_module){&gv_Conv, &c}, GV_DIMS(1, 5, 5, 6), "CIRCULAR");
    c = gv_conv_defaults(6, 2, K33);
    c.padding = "VALID";
    expect_init_error((gv_module){&gv_Conv, &c}, GV_DIMS(1, 2, 5, 6), "larger than the padded input");
    expect_init_error((gv_module){&gv_Conv, &c}, GV_DIMS(5, 6), "spatial dims");
}

/* The primitive's shape and dtype rule. */
typedef struct prim_case {
    gv_dtype dt;
    int rx, rw;
    int64_t x[4], w[4];
    int groups;
    const char *needle;
} prim_case;

static gv_tree *prim_fn(gv_graph *g, const gv_tree *in, void *ud) {
    const prim_case *c = ud;
    (void)g;
    return gv_tree_new_value_leaf(gv_conv_general_dilated(gv_tree_get_value(in, "x"),
                                                          gv_tree_get_value(in, "w"), NULL, NULL,
                                                          NULL, NULL, c->groups));
}

Test(conv_primitive, shape_and_dtype_errors) {
    static const prim_case cases[] = {
        {GV_F32, 4, 4, {1, 5, 5, 4}, {3, 3, 3, 2}, 1, "differ from lhs features"},
        {GV_F32, 4, 4, {1, 5, 5, 4}, {3, 3, 2, 3}, 2, "divide the input and output features"},
        {GV_F32, 4, 3, {1, 5, 5, 4}, {3, 4, 2}, 1, "same rank"},
        {GV_F32, 2, 2, {5, 4}, {4, 2}, 1, "lhs must be [N, spatial..., C]"},
        {GV_F32, 4, 4, {1, 2, 5, 4}, {3, 3, 4, 2}, 1, "larger than the padded input"},
        {GV_I32, 4, 4, {1, 5, 5, 4}, {3, 3, 4, 2}, 1, "float32 or two float64"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        const prim_case *c = &cases[i];
        gv_tensor *x = GVT_NN(gv_tensor_zeros(c->dt, c->rx, c->x)), *w = GVT_NN(gv_tensor_zeros(c->dt, c->rw, c->w));
        gv_tree *in = gv_tree_new_dict();
        GVT_OK(gv_tree_insert_tensor(in, "x", x));
        GVT_OK(gv_tree_insert_tensor(in, "w", w));
        gv_clear_error();
        gv_fn *f = gv_trace(prim_fn, (void *)c, in);
        cr_expect_null(f, "case %zu traced", i);
        cr_expect(strstr(gv_last_error(), c->needle), "case %zu: '%s' lacks '%s'", i, gv_last_error(),
                  c->needle);
        cr_expect(strstr(gv_last_error(), "conv_general_dilated"), "case %zu: '%s'", i, gv_last_error());
        gv_fn_free(f), gv_tree_free(in), gv_tensor_free(x), gv_tensor_free(w);
    }
}
