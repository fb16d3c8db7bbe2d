/* Dead code and constants in the compiler's passes (src/compile/optimize.c):
 * what only feeds a zeros_like is never computed, a constant costs no
 * kernel and no memory when fused passes read it, and the algebraic
 * identities the passes apply are the exact ones only (IEEE float32 and
 * float64, checked on -0, NaN, +-Inf, subnormals and the largest finite
 * value against gv_fn_eval). */
#include <float.h>
#include <math.h>
#include <string.h>

#include "testutil.h"

/* ---- helpers ---- */

static gv_tree *input_dict(int n, const char *const *names, gv_tensor *const *ts) {
    gv_tree *in = GVT_NN(gv_tree_new_dict());
    for (int i = 0; i < n; i++) {
        GVT_OK(gv_tree_insert_tensor(in, names[i], ts[i]));
        gv_tensor_free(ts[i]);
    }
    return in;
}

/* Equal bit for bit, except that any NaN matches any NaN (the rule every
 * compiled-against-reference test uses: x*1 may quiet a signalling NaN);
 * with rtol > 0, within rtol relative (what a BLAS GEMM is held to). */
static void expect_close(const gv_tensor *got, const gv_tensor *want, double rtol,
                         const char *what) {
    cr_assert_eq(gv_tensor_dtype(got), gv_tensor_dtype(want), "%s: dtype", what);
    cr_assert(gv_tensor_same_shape(got, want), "%s: shape", what);
    size_t es = gv_dtype_size(gv_tensor_dtype(got));
    const unsigned char *a = gv_tensor_data_const(got), *b = gv_tensor_data_const(want);
    for (int64_t i = 0; i < gv_tensor_size(got); i++) {
        double x, y;
        GVT_OK(gv_tensor_get_flat(got, i, &x));
        GVT_OK(gv_tensor_get_flat(want, i, &y));
        bool same = memcmp(a + (size_t)i * es, b + (size_t)i * es, es) == 0 || (isnan(x) && isnan(y)) ||
                    (rtol > 0 && fabs(x - y) <= rtol * fmax(fabs(y), 1e-3));
        cr_expect(same, "%s[%lld]: got %a, want %a", what, (long long)i, x, y);
    }
}

static void expect_same(const gv_tensor *got, const gv_tensor *want, const char *what) {
    expect_close(got, want, 0, what);
}

/* Compile (optimised), run and compare every output with gv_fn_eval (rtol
 * as expect_close); returns the plan's statistics. */
static gv_plan_stats check_plan(gv_trace_fn fn, void *ud, const gv_tree *in, double rtol) {
    gv_fn *f = GVT_NN(gv_trace(fn, ud, in));
    gv_tree *ref = NULL;
    GVT_OK(gv_fn_eval(f, in, &ref));
    gv_plan *p = GVT_NN(gv_plan_compile(f, NULL));
    gv_tree *out = GVT_NN(gv_plan_new_outputs(p));
    GVT_OK(gv_plan_run(p, in, out));
    char **paths = NULL;
    size_t n = 0;
    GVT_OK(gv_tree_leaf_paths(ref, &paths, &n));
    for (size_t i = 0; i < n; i++)
        expect_close(GVT_NN(gv_tree_get_tensor(out, paths[i])), gv_tree_get_tensor(ref, paths[i]),
                     rtol, paths[i]);
    gv_tree_paths_free(paths, n);
    gv_plan_stats s = gv_plan_get_stats(p);
    gv_tree_free(out), gv_plan_free(p), gv_tree_free(ref), gv_fn_free(f);
    return s;
}

/* ---- dead code ---- */

/* p + zeros_like(x @ p): the GEMM is dead, the constant keeps nothing alive */
static gv_tree *plus_zeros_of_product(gv_graph *g, const gv_tree *in, void *ud) {
    gv_value p = gv_tree_get_value(in, "p"), x = gv_tree_get_value(in, "x");
    return gv_pack(g, "{p}", gv_add(p, gv_zeros_like(gv_matmul(x, p))));
}

Test(dce, zeros_like_keeps_its_operand_dead) {
    float pv[6] = {1.5f, -0.0f, NAN, -INFINITY, 0.0f, -2.0f};
    gv_tensor *p = GVT_NN(gv_tensor_from_data(GV_F32, GV_DIMS(1, 6), pv, sizeof pv));
    gv_tensor *x = GVT_NN(gv_tensor_ones(GV_F32, GV_DIMS(4, 1)));
    gv_tree *in = input_dict(2, (const char *[]){"p", "x"}, (gv_tensor *[]){p, x});
    /* zeros_like(x @ p) takes the product's shape [4, 6] only... */
    gv_plan_stats s = check_plan(plus_zeros_of_product, NULL, in, 0);
    cr_expect_eq(s.gemms, 0, "the GEMM under zeros_like was compiled (%d)", s.gemms);
    /* ...and the sum (p broadcast to [4, 6]) is one pass with the zero in a register */
    cr_expect_eq(s.kernels, 1, "kernels %d", s.kernels);
    cr_expect_eq(s.arena_bytes, 0, "arena %zu B", s.arena_bytes);
    gv_tree_free(in);
}

/* A two-layer regression whose first layer is frozen the way optax does
 * it (its update zeroed), or never differentiated (stop_gradient). */
typedef struct two_layer {
    bool stop_first;
} two_layer;

static gv_tree *two_layer_loss(gv_graph *g, const gv_tree *in, void *ud) {
    const two_layer *c = ud;
    gv_value w1, w2, x;
    gv_unpack(in, "({w1, w2}, x)", &w1, &w2, &x);
    if (c->stop_first) w1 = gv_stop_gradient(w1);
    gv_value y = gv_matmul(gv_tanh(gv_matmul(x, w1)), w2);
    return gv_pack(g, "loss", gv_mean(gv_square(y), NULL, 0, false));
}

/* (params, x) -> {w1 + zeros_like(g1), w2 - 0.1 g2} */
static gv_tree *two_layer_step(gv_graph *g, const gv_tree *in, void *ud) {
    const gv_tree *params, *grads;
    gv_value x, loss, w1, w2, g1, g2;
    gv_unpack(in, "(params, x)", &params, &x);
    gv_tree *args = gv_pack(g, "(params, x)", params, x);
    gv_unpack(gv_value_and_grad_call(g, two_layer_loss, ud, args, 0, false), "(loss, grads)", &loss,
              &grads);
    gv_unpack(params, "{w1, w2}", &w1, &w2);
    gv_unpack(grads, "{w1, w2}", &g1, &g2);
    return gv_pack(g, "({w1, w2}, loss)", gv_add(w1, gv_zeros_like(g1)),
                   gv_sub(w2, gv_mul(gv_scalar(g, GV_F32, 0.1), g2)), loss);
}

static gv_tree *two_layer_inputs(void) {
    gv_tensor *w1 = GVT_NN(gv_random_normal_eager(GV_PRNG_DEFAULT, gv_prng_key(1), GV_DIMS(16, 32)));
    gv_tensor *w2 = GVT_NN(gv_random_normal_eager(GV_PRNG_DEFAULT, gv_prng_key(2), GV_DIMS(32, 4)));
    gv_tensor *x = GVT_NN(gv_random_normal_eager(GV_PRNG_DEFAULT, gv_prng_key(3), GV_DIMS(8, 16)));
    gv_tree *in = GVT_NN(gv_pack(NULL, "({w1, w2}, x)", w1, w2, x));
    gv_tensor_free(w1), gv_tensor_free(w2), gv_tensor_free(x);
    return in;
}

Test(dce, gradients_that_feed_only_zeroed_updates_are_not_computed) {
    gv_tree *in = two_layer_inputs();
    gv_plan_stats frozen = check_plan(two_layer_step, &(two_layer){false}, in, 1e-5);
    gv_plan_stats stopped = check_plan(two_layer_step, &(two_layer){true}, in, 1e-5);
    /* forward x @ w1 and h @ w2, and w2's gradient h^T @ dy: no dW1, no dh */
    cr_expect_eq(frozen.gemms, 3, "gemms %d", frozen.gemms);
    cr_expect_eq(frozen.kernels, stopped.kernels, "kernels %d, with stop_gradient %d",
                 frozen.kernels, stopped.kernels);
    cr_expect_eq(frozen.arena_bytes, stopped.arena_bytes, "arena %zu B, with stop_gradient %zu B",
                 frozen.arena_bytes, stopped.arena_bytes);
    gv_tree_free(in);
}

/* ---- constants ---- */

/* One zero shared (after CSE) by passes of two shapes, and a one that a
 * GEMM reads too. */
static gv_tree *shared_constants(gv_graph *g, const gv_tree *in, void *ud) {
    gv_value a, b, c, d;
    gv_unpack(in, "{a, b, c, d}", &a, &b, &c, &d);
    gv_value ones = gv_ones_like(a);
    return gv_pack(g, "{a, b, c, d, e}", gv_add(a, gv_zeros_like(a)), gv_add(b, gv_zeros_like(b)),
                   gv_add(c, gv_zeros_like(a)), /* [64] + [64, 64]: the pass is [64, 64] */
                   gv_add(gv_matmul(d, ones), ones), gv_sub(d, ones));
}

/* rows x 64 float32: the special values first, then small integers */
static gv_tensor *specials(int64_t rows, int seed) {
    const float sp[8] = {-0.0f, 0.0f, NAN, INFINITY, -INFINITY, FLT_MIN / 4, FLT_MAX, -1.0f};
    gv_tensor *t = rows > 1 ? GVT_NN(gv_tensor_zeros(GV_F32, GV_DIMS(rows, 64)))
                            : GVT_NN(gv_tensor_zeros(GV_F32, GV_DIMS(64)));
    float *v = gv_tensor_data(t);
    for (int64_t i = 0; i < rows * 64; i++) v[i] = i < 8 ? sp[i] : (float)((i * 37 + seed) % 11) - 5;
    return t;
}

Test(dce, a_shared_constant_costs_no_kernel_and_no_memory) {
    gv_tree *in = input_dict(4, (const char *[]){"a", "b", "c", "d"},
                             (gv_tensor *[]){specials(64, 0), specials(64, 1), specials(1, 2),
                                             specials(64, 3)});
    gv_plan_stats s = check_plan(shared_constants, NULL, in, 1e-5);
    /* a, b, c: one pass each with the zero in its registers (it was stored
     * once and loaded by all three); the ones: stored once for the GEMM,
     * and not loaded by the two passes that read them too */
    cr_expect_eq(s.gemms, 1);
    cr_expect_eq(s.kernels, 7, "kernels %d: 3 sums with zero, the stored ones, the GEMM, the "
                 "pass after it, d - ones", s.kernels);
    cr_expect_eq(s.arena_bytes, (size_t)2 * 64 * 64 * 4,
                 "arena %zu B: the stored ones and the GEMM's product only", s.arena_bytes);
    gv_tree_free(in);
}

/* A constant that is an output is stored where the output goes; its
 * readers read it there. */
static gv_tree *constant_output(gv_graph *g, const gv_tree *in, void *ud) {
    gv_value x = gv_tree_get_value(in, "x"), z = gv_zeros_like(x);
    return gv_pack(g, "{y, z}", gv_add(x, z), z);
}

Test(dce, a_constant_output_and_its_readers) {
    float xv[4] = {-0.0f, 1.0f, NAN, -INFINITY};
    gv_tensor *x = GVT_NN(gv_tensor_from_data(GV_F32, GV_DIMS(4), xv, sizeof xv));
    gv_tree *in = input_dict(1, (const char *[]){"x"}, &x);
    gv_plan_stats s = check_plan(constant_output, NULL, in, 0);
    cr_expect_eq(s.kernels, 1, "one pass stores z and y (%d kernels)", s.kernels);
    gv_tree_free(in);
}

/* ---- exact identities ---- */

typedef gv_value (*binop)(gv_value, gv_value);
typedef struct ident {
    const char *name;
    binop op;
    double k;       /* the constant operand */
    bool k_first;   /* k op x instead of x op k */
    bool identity;  /* the result is x for every x (IEEE), so the passes drop the op */
} ident;

static gv_value neg_neg(gv_value x, gv_value k) { return gv_neg(gv_neg(x)); }

static const ident idents[] = {
    {"x*1", gv_mul, 1.0, false, true},       {"1*x", gv_mul, 1.0, true, true},
    {"x/1", gv_div, 1.0, false, true},       {"x-(+0)", gv_sub, 0.0, false, true},
    {"x+(-0)", gv_add, -0.0, false, true},   {"(-0)+x", gv_add, -0.0, true, true},
    {"-(-x)", neg_neg, 0.0, false, true},
    /* not identities: -0 + +0 = +0, -0 - -0 = +0, Inf * 0 = NaN, -x * 0 = -0 */
    {"x+(+0)", gv_add, 0.0, false, false},   {"(+0)+x", gv_add, 0.0, true, false},
    {"x-(-0)", gv_sub, -0.0, false, false},  {"x*0", gv_mul, 0.0, false, false},
    {"0*x", gv_mul, 0.0, true, false},       {"x*(-1)", gv_mul, -1.0, false, false},
    {"x/(-1)", gv_div, -1.0, false, false},  {"(+0)-x", gv_sub, 0.0, true, false},
};

typedef struct ident_case {
    const ident *id;
    bool scalar; /* the constant as a scalar (broadcast) or as full_like(x) */
} ident_case;

static gv_tree *apply_ident(gv_graph *g, const gv_tree *in, void *ud) {
    const ident_case *c = ud;
    gv_value x = gv_tree_get_value(in, "x");
    gv_value k = c->scalar ? gv_scalar(g, gv_value_dtype(x), c->id->k) : gv_full_like(x, c->id->k);
    return gv_pack(g, "{y}", c->id->k_first ? c->id->op(k, x) : c->id->op(x, k));
}

Test(dce, identities_are_exact_and_the_rest_is_computed) {
    const double sp[] = {-0.0, 0.0, NAN, -NAN, INFINITY, -INFINITY, 1.0, -1.0, 2.5,
                         FLT_MIN / 8, -FLT_MIN / 8, FLT_MAX, -FLT_MAX, DBL_MIN / 8};
    const int n = (int)(sizeof sp / sizeof *sp);
    const gv_dtype dts[] = {GV_F32, GV_F64};
    int checked = 0;
    for (int d = 0; d < 2; d++)
        for (size_t i = 0; i < sizeof idents / sizeof *idents; i++)
            for (int scalar = 0; scalar <= 1; scalar++) {
                gv_tensor *x = GVT_NN(gv_tensor_zeros(dts[d], GV_DIMS(n)));
                for (int e = 0; e < n; e++) {
                    if (dts[d] == GV_F32) ((float *)gv_tensor_data(x))[e] = (float)sp[e];
                    else ((double *)gv_tensor_data(x))[e] = sp[e];
                }
                gv_tree *in = input_dict(1, (const char *[]){"x"}, (gv_tensor *[]){gv_tensor_retain(x)});
                ident_case c = {&idents[i], scalar};
                gv_plan_stats s = check_plan(apply_ident, &c, in, 0);
                /* an identity leaves the input itself as the output: the
                 * plan is one copy into the output tensor; anything else
                 * computes (a fused pass, or reference kernels for float64) */
                gv_fn *f = GVT_NN(gv_trace(apply_ident, &c, in));
                gv_plan *p = GVT_NN(gv_plan_compile(f, NULL));
                char *dump = GVT_NN(gv_plan_dump(p));
                bool copy_only = s.kernels == 1 && strstr(dump, " copy ") != NULL;
                cr_expect_eq(copy_only, idents[i].identity, "%s (%s, %s constant): %s",
                             idents[i].name, gv_dtype_name(dts[d]), scalar ? "scalar" : "full",
                             dump);
                free(dump), gv_plan_free(p), gv_fn_free(f);
                if (idents[i].identity) { /* and the output is x, -0 and NaNs included */
                    gv_tree *out = NULL;
                    gv_fn *f2 = GVT_NN(gv_trace(apply_ident, &c, in));
                    GVT_OK(gv_fn_eval(f2, in, &out));
                    expect_same(gv_tree_get_tensor(out, "y"), x, idents[i].name);
                    gv_tree_free(out), gv_fn_free(f2);
                }
                checked++;
                gv_tensor_free(x), gv_tree_free(in);
            }
    cr_log_info("%d identity cases over %d special values", checked, n);
}

/* ---- a donated input passed through unchanged ---- */

/* in {"a": x, "b": y} -> {"a": x (unchanged), "b": 2 y, "c": x again} */
static gv_tree *pass_a(gv_graph *g, const gv_tree *in, void *ud) {
    gv_value a = gv_tree_get_value(in, "a"), b = gv_tree_get_value(in, "b");
    gv_tree *out = gv_tree_new_dict();
    gv_tree_insert_value(out, "a", a);
    gv_tree_insert_value(out, "b", gv_mul_scalar(b, 2.0));
    if (ud) gv_tree_insert_value(out, "c", a);
    return out;
}

/* A frozen param is its donated input returned at its own path: the
 * output is that input's tensor, with no copy step; the same input at
 * another path is still copied, and an undonated one is always copied. */
Test(dce, donated_input_passed_through_costs_no_copy) {
    for (int variant = 0; variant < 3; variant++) {
        bool donate = variant != 1, twice = variant == 2;
        gv_tensor *x = GVT_NN(gv_tensor_from_data(GV_F32, GV_DIMS(3), ((float[]){-0.0f, NAN, 1.5f}), 12));
        gv_tensor *y = GVT_NN(gv_tensor_from_data(GV_F32, GV_DIMS(3), ((float[]){1, 2, 3}), 12));
        gv_tree *in = input_dict(2, (const char *[]){"a", "b"}, (gv_tensor *[]){gv_tensor_retain(x), y});
        gv_jit *jit = GVT_NN(gv_jit_new(pass_a, twice ? (void *)1 : NULL,
                                        donate ? &(gv_plan_options){.donate = (const char *[]){"a", "b"},
                                                                     .ndonate = 2}
                                               : NULL));
        gv_tree *out;
        GVT_OK(gv_jit_call(jit, in, &out));
        const gv_plan *p = GVT_NN(gv_jit_plan(jit, in));
        char *dump = GVT_NN(gv_plan_dump(p));
        int copies = 0;
        for (const char *s = dump; (s = strstr(s, " copy ")); s++) copies++;
        cr_expect_eq(copies, donate ? (twice ? 1 : 0) : (twice ? 2 : 1),
                     "variant %d: %d copy steps in\n%s", variant, copies, dump);
        if (donate) cr_expect_eq(gv_tree_get_tensor(out, "a"), x, "the output is the input tensor");
        const float *a = gv_tensor_data_const(gv_tree_get_tensor(out, "a"));
        uint32_t bits;
        memcpy(&bits, &a[0], 4);
        cr_expect(bits == 0x80000000u && isnan(a[1]) && a[2] == 1.5f, "a passes through bit for bit");
        cr_expect_eq(((const float *)gv_tensor_data_const(gv_tree_get_tensor(out, "b")))[2], 6.0f);
        if (twice) cr_expect_eq(((const float *)gv_tensor_data_const(gv_tree_get_tensor(out, "c")))[2], 1.5f);
        free(dump);
        gv_jit_free(jit), gv_tree_free(in), gv_tensor_free(x);
    }
}
