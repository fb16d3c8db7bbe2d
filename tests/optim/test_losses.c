/* The reference's loss vectors (L1-L4, L6-L10): each loss is traced and run
 * with gv_fn_eval, tolerances as the reference states them. */
#include "optim_testutil.h"

typedef enum { SQ, L2, HUBER, SCE, SCE_INT, SCE_INT_AXES, BCE, ACC } loss_kind;

typedef struct loss_case {
    loss_kind kind;
    double delta;
    int axis;
    bool no_target;
} loss_case;

static gv_tree *loss_fn(gv_graph *g, const gv_tree *in, void *ud) {
    const loss_case *c = ud;
    gv_value a = gv_tree_get_value(in, "0");
    gv_value b = c->no_target ? GV_VALUE_NONE : gv_tree_get_value(in, "1");
    gv_value r;
    switch (c->kind) {
    case SQ: r = gv_squared_error(a, b); break;
    case L2: r = gv_l2_loss(a, b); break;
    case HUBER: r = gv_huber_loss(a, b, c->delta); break;
    case SCE: r = gv_softmax_cross_entropy(a, b, c->axis); break;
    case SCE_INT: r = gv_softmax_cross_entropy_with_integer_labels(a, b, c->axis); break;
    case SCE_INT_AXES: r = gv_softmax_cross_entropy_with_integer_labels_axes(a, b, (int[]){2, 3}, 2); break;
    case ACC: r = gv_accuracy(a, b); break;
    default: r = gv_sigmoid_binary_cross_entropy(a, b); break;
    }
    return gv_tree_new_value_leaf(r);
}

/* Evaluate the loss on (a, b); returns the output tree (caller frees). */
static gv_tree *run(loss_case c, gv_tensor *a, gv_tensor *b) {
    gv_tree *in = gv_tree_new_tuple();
    gv_tree_append_tensor(in, a);
    if (b) gv_tree_append_tensor(in, b);
    gv_fn *f = GVT_NN(gv_trace(loss_fn, &c, in));
    gv_tree *out;
    GVT_OK(gv_fn_eval(f, in, &out));
    gv_fn_free(f), gv_tree_free(in);
    return out;
}

static gv_tensor *mat(const float *x, int64_t r, int64_t c) {
    return GVT_NN(gv_tensor_from_data(GV_F32, GV_DIMS(r, c), x, (size_t)(r * c) * sizeof(float)));
}

static gv_tensor *ivec(const int32_t *x, int64_t n) {
    return GVT_NN(gv_tensor_from_data(GV_I32, GV_DIMS(n), x, (size_t)n * sizeof(int32_t)));
}

static void check_abs(const gv_tree *out, const double *want, int64_t n, double atol, const char *what) {
    gv_tensor *x = GVT_NN(gv_tree_get_tensor(out, ""));
    cr_assert_eq(gv_tensor_size(x), n, "%s: size", what);
    for (int64_t i = 0; i < n; i++) {
        double v;
        gv_tensor_get_flat(x, i, &v);
        cr_assert(fabs(v - want[i]) <= atol, "%s[%lld] = %.9g, want %.9g (atol %g)", what,
                  (long long)i, v, want[i], atol);
    }
}

static const float L1_LOGITS[6] = {10, 1, -2, 1, 4, 0.2f};

/* L1: softmax_cross_entropy, optax test: [9.00013, 3.0696733] at atol 1e-4;
 * the exact values 9.0001295, 3.0696733 are also met to rtol 1e-6. */
Test(losses, L1_softmax_cross_entropy) {
    const float lab[6] = {0, 1, 0, 1, 0, 0};
    gv_tensor *a = mat(L1_LOGITS, 2, 3), *b = mat(lab, 2, 3);
    gv_tree *out = run((loss_case){SCE, 0, -1, false}, a, b);
    check_abs(out, (double[]){9.00013, 3.0696733}, 2, 1e-4, "L1");
    ot_expect_close(out, "", (double[]){9.0001295, 3.0696733}, 2, 1e-6, "L1 exact");
    gv_tree_free(out), gv_tensor_free(a), gv_tensor_free(b);
}

/* L2: the integer-label form gives L1's numbers (rtol 1e-6). */
Test(losses, L2_integer_labels) {
    gv_tensor *a = mat(L1_LOGITS, 2, 3), *b = ivec((int32_t[]){1, 0}, 2);
    gv_tree *out = run((loss_case){SCE_INT, 0, -1, false}, a, b);
    ot_expect_close(out, "", (double[]){9.0001295, 3.0696733}, 2, 1e-6, "L2");
    gv_tree_free(out), gv_tensor_free(a), gv_tensor_free(b);
}

/* L3: the docstring example, both forms: [0.2761, 2.9518] to 4 decimals. */
Test(losses, L3_docstring) {
    const float lg[6] = {1.2f, -0.8f, -0.5f, 0.9f, -1.2f, 1.1f}, oh[6] = {1, 0, 0, 0, 1, 0};
    gv_tensor *a = mat(lg, 2, 3), *b = mat(oh, 2, 3), *c = ivec((int32_t[]){0, 1}, 2);
    gv_tree *o1 = run((loss_case){SCE, 0, -1, false}, a, b);
    gv_tree *o2 = run((loss_case){SCE_INT, 0, -1, false}, a, c);
    check_abs(o1, (double[]){0.2761, 2.9518}, 2, 5e-5, "L3 one-hot");
    check_abs(o2, (double[]){0.2761, 2.9518}, 2, 5e-5, "L3 integer");
    gv_tree_free(o1), gv_tree_free(o2);
    gv_tensor_free(a), gv_tensor_free(b), gv_tensor_free(c);
}

/* L4: integer labels over a tuple axis: logits arange(24) as (1,2,3,4),
 * axis (2,3), labels the flat indices of (1,1) and (2,3): [[6.4587, 0.4587]]. */
Test(losses, L4_tuple_axis) {
    gv_tensor *r = GVT_NN(gv_tensor_arange(GV_F32, 0, 24, 1));
    gv_tensor *a = GVT_NN(gv_tensor_reshape(r, GV_DIMS(1, 2, 3, 4)));
    const int32_t lab[2] = {1 * 4 + 1, 2 * 4 + 3};
    gv_tensor *b = GVT_NN(gv_tensor_from_data(GV_I32, GV_DIMS(1, 2), lab, sizeof lab));
    gv_tree *out = run((loss_case){SCE_INT_AXES, 0, 0, false}, a, b);
    check_abs(out, (double[]){6.4587, 0.4587}, 2, 5e-5, "L4");
    cr_assert_eq(gv_tensor_rank(gv_tree_get_tensor(out, "")), 2);
    gv_tree_free(out), gv_tensor_free(a), gv_tensor_free(b), gv_tensor_free(r);
}

/* Labels outside [-C, C) give NaN (JAX's fill mode); -1 wraps to C-1. */
Test(losses, integer_labels_out_of_range) {
    gv_tensor *a = mat(L1_LOGITS, 2, 3), *b = ivec((int32_t[]){3, -2}, 2), *c = ivec((int32_t[]){1, -3}, 2);
    gv_tree *o1 = run((loss_case){SCE_INT, 0, -1, false}, a, b);
    gv_tree *o2 = run((loss_case){SCE_INT, 0, -1, false}, a, c);
    const float *x = ot_f32(o1, ""), *y = ot_f32(o2, "");
    cr_assert(isnan(x[0]), "label 3 of 3 classes: %g", (double)x[0]);
    cr_assert(!isnan(x[1]), "label -2 wraps to 1");
    cr_assert(fabs(x[1] - 0.0696733) < 1e-5, "row 2, class 1: %g", (double)x[1]);
    cr_assert(fabs(y[0] - 9.0001295) < 1e-5 && fabs(y[1] - 3.0696733) < 1e-5, "-3 wraps to 0");
    gv_tree_free(o1), gv_tree_free(o2), gv_tensor_free(a), gv_tensor_free(b), gv_tensor_free(c);
}

/* L6: mean(sigmoid_binary_cross_entropy) on extreme logits (rtol/atol 1e-6). */
Test(losses, L6_sigmoid_bce_extremes) {
    const float cases[5][4] = {{-1e9f, -1e-9f, 1, 0}, {-1e9f, -1e-9f, 0, 1}, {1e9f, 1e-9f, 1, 0},
                               {1e9f, 1e-9f, 0, 1}, {0, 0, 1, 0}};
    const double want[5] = {5e8, 0.3465736, 0.3465736, 5e8, 0.6931472};
    for (int k = 0; k < 5; k++) {
        gv_tensor *a = ot_vec(cases[k], 2), *b = ot_vec(cases[k] + 2, 2);
        gv_tree *out = run((loss_case){BCE, 0, 0, false}, a, b);
        const float *x = ot_f32(out, "");
        double m = ((double)x[0] + x[1]) / 2;
        cr_assert(fabs(m - want[k]) <= 1e-6 + 1e-6 * want[k], "L6 case %d: mean %.9g, want %.9g", k, m, want[k]);
        gv_tree_free(out), gv_tensor_free(a), gv_tensor_free(b);
    }
}

/* L7: elementwise sigmoid BCE (derived; 1-2 ulp of libm allowed). */
Test(losses, L7_sigmoid_bce) {
    const float x[4] = {0, 2, 2, 0.5f}, y[4] = {1, 1, 0, 0.3f};
    gv_tensor *a = ot_vec(x, 4), *b = ot_vec(y, 4);
    gv_tree *out = run((loss_case){BCE, 0, 0, false}, a, b);
    ot_expect_close(out, "", (double[]){0.69314718, 0.12692801, 2.12692801, 0.82407698}, 4, 1e-6, "L7");
    gv_tree_free(out), gv_tensor_free(a), gv_tensor_free(b);
}

/* L8: huber_loss, delta 1 (optax test). */
Test(losses, L8_huber) {
    const float p[7] = {-2, .5f, 0, .5f, 2, 4, 132}, t[7] = {0, -.5f, 0, 1, 1, 2, .3f};
    gv_tensor *a = ot_vec(p, 7), *b = ot_vec(t, 7);
    gv_tree *out = run((loss_case){HUBER, 1.0, 0, false}, a, b);
    ot_expect_close(out, "", (double[]){1.5, 0.5, 0.0, 0.125, 0.5, 1.5, 131.2}, 7, 1e-6, "L8");
    gv_tree_free(out), gv_tensor_free(a), gv_tensor_free(b);
}

/* L9: squared_error and l2_loss (exact: every value is a float32). */
Test(losses, L9_squared_error_l2) {
    const float y[4] = {-2, -1, .5f, 1}, t[4] = {-1.5f, 0, -1, 1};
    gv_tensor *a = ot_vec(y, 4), *b = ot_vec(t, 4);
    gv_tree *o1 = run((loss_case){SQ, 0, 0, false}, a, b);
    gv_tree *o2 = run((loss_case){L2, 0, 0, false}, a, b);
    gv_tree *o3 = run((loss_case){SQ, 0, 0, true}, a, NULL);
    ot_expect_exact(o1, "", (double[]){0.25, 1, 2.25, 0}, 4, "L9 squared_error");
    ot_expect_exact(o2, "", (double[]){0.125, 0.5, 1.125, 0}, 4, "L9 l2_loss");
    ot_expect_exact(o3, "", (double[]){4, 1, 0.25, 1}, 4, "squared_error(targets=None)");
    gv_tree_free(o1), gv_tree_free(o2), gv_tree_free(o3), gv_tensor_free(a), gv_tensor_free(b);
}

/* L10: squared_error does not broadcast: [4] vs [4,1] is an error. */
Test(losses, L10_shape_mismatch) {
    const float y[4] = {-2, -1, .5f, 1};
    gv_tensor *a = ot_vec(y, 4), *b = mat(y, 4, 1);
    gv_tree *in = gv_tree_new_tuple();
    gv_tree_append_tensor(in, a), gv_tree_append_tensor(in, b);
    loss_case c = {SQ, 0, 0, false};
    GVT_NULL(gv_trace(loss_fn, &c, in), GV_ERR_SHAPE, "equal shapes");
    gv_tree_free(in), gv_tensor_free(a), gv_tensor_free(b);
}

/* The losses are differentiable: d/dx mean(l2_loss(x, t)) = (x - t) / n. */
static gv_tree *mean_l2(gv_graph *g, const gv_tree *in, void *ud) {
    gv_value l = gv_l2_loss(gv_tree_get_value(in, "0"), gv_tree_get_value(in, "1"));
    return gv_tree_new_value_leaf(gv_mean(l, NULL, 0, false));
}

Test(losses, l2_loss_gradient) {
    const float y[4] = {-2, -1, .5f, 1}, t[4] = {-1.5f, 0, -1, 1};
    gv_tensor *a = ot_vec(y, 4), *b = ot_vec(t, 4);
    gv_tree *in = gv_tree_new_tuple();
    gv_tree_append_tensor(in, a), gv_tree_append_tensor(in, b);
    gv_fn *f = GVT_NN(gv_trace(mean_l2, NULL, in));
    gv_fn *gf = GVT_NN(gv_grad(f, 0, false));
    gv_tree *out;
    GVT_OK(gv_fn_eval(gf, in, &out));
    ot_expect_close(out, "", (double[]){-0.125, -0.25, 0.375, 0}, 4, 1e-7, "grad");
    gv_tree_free(out), gv_fn_free(gf), gv_fn_free(f), gv_tree_free(in);
    gv_tensor_free(a), gv_tensor_free(b);
}

/* ---- accuracy: mean(argmax(logits, -1) == labels) ---- */

/* Nine rows, five hits: a clear maximum; a tie, which goes to the FIRST
 * maximum (so label 0 hits and label 1 misses); a row of equal logits
 * (class 0); a NaN, which jnp.argmax takes as the maximum; labels -1 and 3
 * outside [0, 3), which never match. */
static const float ACC_LOGITS[27] = {0.1f, 2, -1, 3, 3, 1, 3, 3, 1, 1, 1, 1, 0, NAN, 5,
                                     5, 0, 0, 0, 0, 5, 0, 5, 0, -4, -2, -3};
static const int32_t ACC_LABELS[9] = {1, 0, 1, 0, 1, -1, 3, 2, 1};

static void expect_accuracy(gv_tensor *logits, gv_tensor *labels, float want, const char *what) {
    gv_tree *out = run((loss_case){ACC, 0, -1, false}, logits, labels);
    gv_tensor *acc = GVT_NN(gv_tree_get_tensor(out, ""));
    cr_assert_eq(gv_tensor_dtype(acc), GV_F32, "%s: dtype", what);
    cr_assert_eq(gv_tensor_rank(acc), 0, "%s: a scalar", what);
    float got = *(const float *)gv_tensor_data_const(acc);
    cr_assert_eq(got, want, "%s: %.9g, want %.9g", what, (double)got, (double)want);
    gv_tree_free(out);
}

Test(accuracy, ties_nan_and_out_of_range_labels) {
    gv_tensor *a = mat(ACC_LOGITS, 9, 3), *b = ivec(ACC_LABELS, 9);
    expect_accuracy(a, b, 5.0f / 9.0f, "int32 labels");
    /* other integer label dtypes compare by value (uint8: -1 is 255, still no class) */
    gv_tensor *b64 = GVT_NN(gv_tensor_cast(b, GV_I64)), *b8 = GVT_NN(gv_tensor_cast(b, GV_U8));
    expect_accuracy(a, b64, 5.0f / 9.0f, "int64 labels");
    expect_accuracy(a, b8, 5.0f / 9.0f, "uint8 labels");
    gv_tensor_free(a), gv_tensor_free(b), gv_tensor_free(b64), gv_tensor_free(b8);
}

/* Leading axes are batch axes: logits (2, 2, 3), labels (2, 2); compiled,
 * as a jitted eval step runs it, with the reference evaluator's result. */
static gv_tree *acc_fn(gv_graph *g, const gv_tree *in, void *ud) {
    gv_value acc = gv_accuracy(gv_tree_get_value(in, "0"), gv_tree_get_value(in, "1"));
    return gv_tree_new_value_leaf(acc);
}

Test(accuracy, batch_axes_compiled) {
    gv_tensor *a = GVT_NN(gv_tensor_from_data(GV_F32, GV_DIMS(2, 2, 3), ACC_LOGITS, 12 * 4));
    gv_tensor *b = GVT_NN(gv_tensor_from_data(GV_I32, GV_DIMS(2, 2), ACC_LABELS, 4 * 4));
    gv_tree *in = gv_tree_new_tuple();
    gv_tree_append_tensor(in, a), gv_tree_append_tensor(in, b);
    gv_jit *jit = GVT_NN(gv_jit_new(acc_fn, NULL, NULL));
    gv_tree *out;
    GVT_OK(gv_jit_call(jit, in, &out));
    cr_assert_eq(*(const float *)gv_tensor_data_const(gv_tree_get_tensor(out, "")), 0.75f);
    expect_accuracy(a, b, 0.75f, "reference evaluator");
    gv_jit_free(jit), gv_tree_free(in), gv_tensor_free(a), gv_tensor_free(b);
}

Test(accuracy, shape_and_dtype_errors) {
    struct { gv_tensor *a, *b; gv_status st; const char *needle; } cases[] = {
        {mat(ACC_LOGITS, 9, 3), ivec(ACC_LABELS, 8), GV_ERR_SHAPE,
         "accuracy: labels must have the logits' shape without the last (class) axis: "
         "float32[9,3] and int32[8]"},
        {mat(ACC_LOGITS, 3, 9), ivec(ACC_LABELS, 9), GV_ERR_SHAPE, "float32[3,9] and int32[9]"},
        {mat(ACC_LOGITS, 9, 3), GVT_NN(gv_tensor_zeros(GV_I32, GV_DIMS(9, 3))), GV_ERR_SHAPE,
         "float32[9,3] and int32[9,3]"},
        {ot_vec(ACC_LOGITS, 9), ot_vec(ACC_LOGITS, 9), GV_ERR_DTYPE, "labels integers"},
        {ivec(ACC_LABELS, 9), ivec(ACC_LABELS, 9), GV_ERR_DTYPE, "logits must be float"},
    };
    for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
        gv_tree *in = gv_tree_new_tuple();
        gv_tree_append_tensor(in, cases[k].a), gv_tree_append_tensor(in, cases[k].b);
        loss_case c = {ACC, 0, -1, false};
        GVT_NULL(gv_trace(loss_fn, &c, in), cases[k].st, cases[k].needle);
        gv_tree_free(in), gv_tensor_free(cases[k].a), gv_tensor_free(cases[k].b);
    }
}
