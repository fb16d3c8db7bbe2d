/* The VJP rule of every differentiable primitive against central finite
 * differences, in float64 (every kernel has a float64 path): for each case,
 * loss(x) = sum(op(x) * R) with a fixed R, and d loss / d x from gv_grad is
 * compared with (loss(x + h e_j) - loss(x - h e_j)) / 2h for every element j
 * of every float input. Inputs stay away from kinks (relu/abs at 0, max/min
 * ties) and outside domain edges (log, sqrt, pow bases positive). The VJPs
 * are themselves differentiated (grad of grad, as a Hessian-vector product)
 * for a set of ops, and a last test checks that the cases reach every
 * differentiable primitive of the registry. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "graph/graph_internal.h"
#include "grove/distributed.h"
#include "grove/nn_conv.h"
#include "testutil.h"

#define MAX_IN 4

enum { UNI, AWAY, INTS };

typedef struct fd_in {
    int kind;       /* UNI: uniform in [lo, hi]; AWAY: |x| in [lo, hi], random sign; INTS */
    double lo, hi;
    int rank;
    int64_t shape[4];
    const int32_t *ints; /* INTS: the values (int32) */
} fd_in;

typedef gv_value (*fd_fn)(gv_graph *g, const gv_value *x, const gv_fn *inner);

typedef struct fd_case {
    const char *name;
    fd_fn fn;
    int nin;
    fd_in in[MAX_IN];
    bool hvp;                  /* also check grad of grad */
    gv_fn *(*make_inner)(void); /* a traced function fn may call (gv_fn_call) */
} fd_case;

/* an input: U(lo, hi, dims...) uniform; A(lo, hi, dims...) away from 0; U0 a
 * scalar; I(values, dims...) int32 indices */
#define NDIMS(...) (int)(sizeof((int64_t[]){__VA_ARGS__}) / sizeof(int64_t))
#define U(lo, hi, ...) {UNI, lo, hi, NDIMS(__VA_ARGS__), {__VA_ARGS__}, NULL}
#define A(lo, hi, ...) {AWAY, lo, hi, NDIMS(__VA_ARGS__), {__VA_ARGS__}, NULL}
#define U0(lo, hi) {UNI, lo, hi, 0, {0}, NULL}
#define I(vals, ...) {INTS, 0, 0, NDIMS(__VA_ARGS__), {__VA_ARGS__}, vals}
#define FN(name, ...)                                                                     \
    static gv_value name(gv_graph *g, const gv_value *x, const gv_fn *inner) {            \
        (void)g, (void)inner;                                                             \
        return __VA_ARGS__;                                                               \
    }

/* ---- the ops under test ---- */

FN(f_neg, gv_neg(x[0]))
FN(f_abs, gv_abs(x[0]))
FN(f_exp, gv_exp(x[0]))
FN(f_log, gv_log(x[0]))
FN(f_log1p, gv_log1p(x[0]))
FN(f_expm1, gv_expm1(x[0]))
FN(f_sqrt, gv_sqrt(x[0]))
FN(f_rsqrt, gv_rsqrt(x[0]))
FN(f_square, gv_square(x[0]))
FN(f_tanh, gv_tanh(x[0]))
FN(f_sigmoid, gv_sigmoid(x[0]))
FN(f_erf, gv_erf(x[0]))
FN(f_relu, gv_relu(x[0]))
FN(f_gelu_tanh, gv_gelu(x[0], true))
FN(f_gelu_erf, gv_gelu(x[0], false))
FN(f_silu, gv_silu(x[0]))
FN(f_softplus, gv_softplus(x[0]))
FN(f_psum, gv_mul(gv_psum(x[0]), x[0])) /* one process: x * x through psum's VJP */
FN(f_add, gv_add(x[0], x[1]))
FN(f_sub, gv_sub(x[0], x[1]))
FN(f_mul, gv_mul(x[0], x[1]))
FN(f_div, gv_div(x[0], x[1]))
FN(f_pow, gv_pow(x[0], x[1]))
FN(f_pow_scalar, gv_pow_scalar(x[0], 2.5))
FN(f_maximum, gv_maximum(x[0], x[1]))
FN(f_minimum, gv_minimum(x[0], x[1]))
FN(f_select, gv_select(gv_gt(x[2], gv_zeros_like(x[2])), x[0], x[1]))
FN(f_matmul, gv_matmul(x[0], x[1]))
FN(f_sum_all, gv_sum(x[0], NULL, 0, false))
FN(f_sum_02_keep, gv_sum(x[0], (int[]){0, 2}, 2, true))
FN(f_max_1, gv_max(x[0], (int[]){1}, 1, false))
FN(f_max_all_keep, gv_max(x[0], NULL, 0, true))
FN(f_min_last, gv_min(x[0], (int[]){-1}, 1, false))
FN(f_mean_0, gv_mean(x[0], (int[]){0}, 1, false))
FN(f_logsumexp, gv_logsumexp(x[0], (int[]){1, 2}, 2, false))
FN(f_softmax_last, gv_softmax(x[0], -1))
FN(f_softmax_0, gv_softmax(x[0], 0))
FN(f_log_softmax, gv_log_softmax(x[0], 1))
FN(f_reshape, gv_reshape(x[0], GV_DIMS(3, -1)))
FN(f_transpose, gv_transpose(x[0], (int[]){2, 0, 1}))
FN(f_broadcast_row, gv_broadcast_to(x[0], GV_DIMS(2, 3)))
FN(f_broadcast_col, gv_broadcast_to(x[0], GV_DIMS(2, 2, 4)))
FN(f_expand_squeeze, gv_squeeze(gv_expand_dims(x[0], 1), NULL, 0))
FN(f_slice, gv_slice(x[0], (int64_t[]){1, 2}, (int64_t[]){3, 5}, NULL))
FN(f_slice_strided, gv_slice(x[0], (int64_t[]){1, 0}, (int64_t[]){5, 6}, (int64_t[]){2, 3}))
FN(f_slice_axis, gv_slice_axis(x[0], -1, 1, -1))
FN(f_concat, gv_concatenate(x, 3, 1))
FN(f_pad, gv_pad(x[0], (int64_t[]){1, -1}, (int64_t[]){2, 1}, 0.5))
FN(f_take, gv_take(x[0], x[1], 0))
FN(f_take_rank2_idx, gv_take(x[0], x[1], 1))
FN(f_take_along, gv_take_along_axis(x[0], x[1], 1))

/* The matmul primitive's transpose flags (iattr; only the compiler sets them
 * when it folds a transpose into the product): op(A) op(B). */
static gv_value matmul_flags(gv_value a, gv_value b, int ta, int tb) {
    gv_value xs[2] = {a, b};
    gv_node_spec s = {.op = GV_OP_MATMUL, .nin = 2, .in = xs, .iattr = {ta, tb}};
    return gv_emit(a.graph, &s);
}
FN(f_matmul_ta, matmul_flags(x[0], x[1], 1, 0))
FN(f_matmul_tb, matmul_flags(x[0], x[1], 0, 1))
FN(f_matmul_ta_tb, matmul_flags(x[0], x[1], 1, 1))

/* conv_general_dilated (NHWC / HWIO), lax's argument order */
static const int64_t ONE2[2] = {1, 1}, TWO2[2] = {2, 2}, ST21[2] = {2, 1}, RD12[2] = {1, 2};
static const int64_t PAD1[4] = {1, 1, 1, 1}, PADX[4] = {1, 0, -1, 2}, PAD_1D[2] = {2, 1};
static const int64_t ST1D[1] = {2}, LD1D[1] = {2}, RD1D[1] = {2};
FN(f_conv1d, gv_conv_general_dilated(x[0], x[1], ST1D, PAD_1D, NULL, RD1D, 1))
FN(f_conv1d_lhs_dil, gv_conv_general_dilated(x[0], x[1], NULL, PAD_1D, LD1D, NULL, 1))
FN(f_conv2d_same, gv_conv_general_dilated(x[0], x[1], ONE2, PAD1, NULL, NULL, 1))
FN(f_conv2d_strided, gv_conv_general_dilated(x[0], x[1], ST21, PADX, NULL, RD12, 1))
FN(f_conv2d_dilated, gv_conv_general_dilated(x[0], x[1], TWO2, PAD1, TWO2, RD12, 1))
FN(f_conv2d_grouped, gv_conv_general_dilated(x[0], x[1], ST21, PAD1, NULL, NULL, 2))

static gv_value f_split(gv_graph *g, const gv_value *x, const gv_fn *inner) {
    gv_value p[3];
    gv_split_equal(x[0], 3, 1, p);
    /* recombined out of order, scaled differently: each part's VJP is seen */
    return gv_concatenate((gv_value[]){gv_mul_scalar(p[2], 3.0), p[0], gv_square(p[1])}, 3, 1);
}

/* The VJPs of take / take_along_axis are scatter-adds; their own VJP (with
 * respect to the scattered values u) is checked through a gradient function
 * called inside the trace: out = d/dx sum(take(x, idx) * u) = scatter(idx, u). */
static gv_tree *inner_take_loss(gv_graph *g, const gv_tree *in, void *ud) {
    bool along = ud != NULL;
    gv_value x = gv_tree_get_value(in, "0/x"), idx = gv_tree_get_value(in, "1/idx"),
             u = gv_tree_get_value(in, "1/u");
    gv_value t = along ? gv_take_along_axis(x, idx, 1) : gv_take(x, idx, 0);
    return gv_tree_new_value_leaf(gv_sum(gv_mul(t, u), NULL, 0, false));
}

static gv_fn *make_scatter_inner(bool along) {
    /* x: [4,3] (take along axis 0 with idx [5]) or [3,4] (along axis 1, idx [3,2]) */
    gv_tree *in = gv_tree_new_tuple(), *d0 = gv_tree_new_dict(), *d1 = gv_tree_new_dict();
    gv_tensor *x = along ? gv_tensor_zeros(GV_F64, GV_DIMS(3, 4))
                         : gv_tensor_zeros(GV_F64, GV_DIMS(4, 3));
    gv_tensor *idx = along ? gv_tensor_zeros(GV_I32, GV_DIMS(3, 2))
                           : gv_tensor_zeros(GV_I32, GV_DIMS(5));
    gv_tensor *u = along ? gv_tensor_zeros(GV_F64, GV_DIMS(3, 2))
                         : gv_tensor_zeros(GV_F64, GV_DIMS(5, 3));
    GVT_OK(gv_tree_insert_tensor(d0, "x", x));
    GVT_OK(gv_tree_insert_tensor(d1, "idx", idx));
    GVT_OK(gv_tree_insert_tensor(d1, "u", u));
    GVT_OK(gv_tree_append(in, d0));
    GVT_OK(gv_tree_append(in, d1));
    gv_fn *f = GVT_NN(gv_trace(inner_take_loss, along ? (void *)1 : NULL, in));
    gv_fn *gf = GVT_NN(gv_grad(f, 0, false));
    gv_fn_free(f);
    gv_tree_free(in);
    gv_tensor_free(x), gv_tensor_free(idx), gv_tensor_free(u);
    return gf;
}
static gv_fn *make_take_inner(void) { return make_scatter_inner(false); }
static gv_fn *make_take_along_inner(void) { return make_scatter_inner(true); }

static gv_value call_scatter(gv_graph *g, gv_value u, gv_value idx, const gv_fn *inner,
                             int rank, const int64_t *xshape) {
    gv_tree *args = gv_tree_new_tuple(), *d0 = gv_tree_new_dict(), *d1 = gv_tree_new_dict();
    gv_tree_insert_value(d0, "x", gv_full(g, GV_F64, rank, xshape, 0.0));
    gv_tree_insert_value(d1, "idx", idx);
    gv_tree_insert_value(d1, "u", u);
    gv_tree_append(args, d0);
    gv_tree_append(args, d1);
    gv_tree *out = gv_fn_call(g, inner, args);
    gv_value v = out ? gv_tree_get_value(out, "x") : gv_invalid(g);
    gv_tree_free(out);
    gv_tree_free(args);
    return v;
}
FN(f_scatter_take, call_scatter(g, x[0], x[1], inner, GV_DIMS(4, 3)))
FN(f_scatter_along, call_scatter(g, x[0], x[1], inner, GV_DIMS(3, 4)))

#define CASE(name_, fn_, n_, ...) {.name = name_, .fn = fn_, .nin = n_, .in = {__VA_ARGS__}}
#define CASE_HVP(name_, fn_, n_, ...) \
    {.name = name_, .fn = fn_, .nin = n_, .in = {__VA_ARGS__}, .hvp = true}
#define WITH_INNER(name_, fn_, n_, inner_, ...) \
    {.name = name_, .fn = fn_, .nin = n_, .in = {__VA_ARGS__}, .make_inner = inner_}

static const int32_t IDX_TAKE[] = {2, 0, 2, 9, -1};  /* repeated, clipped, negative */
static const int32_t IDX_RANK2[] = {0, 3, 3, 1};
static const int32_t IDX_ALONG[] = {1, 3, 0, 0, 2, 1}; /* [3,2] along axis 1 of [3,4] */
static const int32_t SIGNS[] = {1, -1, 0, 2, -3, 1};

static const fd_case CASES[] = {
    CASE("neg", f_neg, 1, U(-2, 2, 2, 3)),
    CASE("abs", f_abs, 1, A(0.2, 2, 2, 3)),
    CASE("exp", f_exp, 1, U(-2, 2, 2, 3)),
    CASE("log", f_log, 1, U(0.2, 4, 2, 3)),
    CASE_HVP("log1p", f_log1p, 1, U(-0.8, 3, 2, 3)),
    CASE("expm1", f_expm1, 1, U(-2, 2, 2, 3)),
    CASE_HVP("sqrt", f_sqrt, 1, U(0.2, 4, 2, 3)),
    CASE_HVP("rsqrt", f_rsqrt, 1, U(0.3, 4, 2, 3)),
    CASE("square", f_square, 1, U(-2, 2, 2, 3)),
    CASE_HVP("tanh", f_tanh, 1, U(-3, 3, 2, 3)),
    CASE_HVP("sigmoid", f_sigmoid, 1, U(-5, 5, 2, 3)),
    CASE_HVP("erf", f_erf, 1, U(-2, 2, 2, 3)),
    CASE("relu", f_relu, 1, A(0.2, 2, 2, 3)),
    CASE_HVP("gelu_tanh", f_gelu_tanh, 1, U(-4, 4, 2, 3)),
    CASE_HVP("gelu_erf", f_gelu_erf, 1, U(-4, 4, 2, 3)),
    CASE_HVP("silu", f_silu, 1, U(-5, 5, 2, 3)),
    CASE_HVP("softplus", f_softplus, 1, U(-6, 6, 2, 3)),
    CASE_HVP("psum", f_psum, 1, U(-2, 2, 2, 3)),
    CASE("add_broadcast", f_add, 2, U(-2, 2, 2, 3), U(-2, 2, 3)),
    CASE("sub_outer", f_sub, 2, U(-2, 2, 2, 1), U(-2, 2, 1, 3)),
    CASE_HVP("mul", f_mul, 2, U(-2, 2, 2, 3), U(-2, 2, 2, 3)),
    CASE_HVP("mul_scalar_operand", f_mul, 2, U0(-2, 2), U(-2, 2, 2, 3)),
    CASE_HVP("div", f_div, 2, U(-2, 2, 2, 3), A(0.3, 2, 3)),
    CASE_HVP("pow", f_pow, 2, U(0.3, 3, 2, 3), U(-2, 2.5, 2, 3)),
    CASE("pow_broadcast", f_pow, 2, U(0.3, 3, 2, 1), U(-2, 2.5, 3)),
    CASE("pow_scalar", f_pow_scalar, 1, U(0.3, 3, 2, 3)),
    CASE("maximum", f_maximum, 2, U(-2, 2, 2, 3), U(-2, 2, 2, 3)),
    CASE("minimum_broadcast", f_minimum, 2, U(-2, 2, 2, 3), U(-2, 2, 3)),
    CASE("select", f_select, 3, U(-2, 2, 2, 3), U(-2, 2, 3), I(SIGNS, 2, 3)),
    CASE_HVP("matmul", f_matmul, 2, U(-2, 2, 2, 3), U(-2, 2, 3, 4)),
    CASE_HVP("matmul_batch_broadcast", f_matmul, 2, U(-2, 2, 2, 1, 2, 3), U(-2, 2, 3, 3, 2)),
    CASE("matmul_vec_mat", f_matmul, 2, U(-2, 2, 3), U(-2, 2, 3, 4)),
    CASE("matmul_mat_vec", f_matmul, 2, U(-2, 2, 2, 3), U(-2, 2, 3)),
    CASE_HVP("matmul_vec_vec", f_matmul, 2, U(-2, 2, 4), U(-2, 2, 4)),
    CASE("matmul_vec_batched", f_matmul, 2, U(-2, 2, 3), U(-2, 2, 2, 3, 2)),
    CASE_HVP("matmul_flag_ta", f_matmul_ta, 2, U(-2, 2, 3, 2), U(-2, 2, 3, 4)),
    CASE("matmul_flag_tb", f_matmul_tb, 2, U(-2, 2, 2, 3), U(-2, 2, 4, 3)),
    CASE_HVP("matmul_flags_batched", f_matmul_ta_tb, 2, U(-2, 2, 2, 1, 3, 2), U(-2, 2, 3, 4, 3)),
    CASE_HVP("conv1d_strided_rhs_dilated", f_conv1d, 2, U(-2, 2, 2, 7, 3), U(-2, 2, 3, 3, 2)),
    CASE("conv1d_lhs_dilated", f_conv1d_lhs_dil, 2, U(-2, 2, 1, 4, 2), U(-2, 2, 2, 2, 3)),
    CASE_HVP("conv2d_same", f_conv2d_same, 2, U(-2, 2, 2, 4, 3, 2), U(-2, 2, 3, 3, 2, 3)),
    CASE("conv2d_strided_cropped", f_conv2d_strided, 2, U(-2, 2, 1, 5, 6, 2), U(-2, 2, 2, 2, 2, 3)),
    CASE("conv2d_both_dilations", f_conv2d_dilated, 2, U(-2, 2, 1, 3, 4, 2), U(-2, 2, 2, 2, 2, 2)),
    CASE_HVP("conv2d_grouped", f_conv2d_grouped, 2, U(-2, 2, 2, 5, 4, 4), U(-2, 2, 3, 2, 2, 6)),
    CASE("sum_all", f_sum_all, 1, U(-2, 2, 2, 3, 4)),
    CASE("sum_axes_keep", f_sum_02_keep, 1, U(-2, 2, 2, 3, 4)),
    CASE_HVP("max_axis", f_max_1, 1, U(-2, 2, 2, 3, 4)),
    CASE("max_all_keep", f_max_all_keep, 1, U(-2, 2, 3, 4)),
    CASE("min_last", f_min_last, 1, U(-2, 2, 3, 4)),
    CASE("mean", f_mean_0, 1, U(-2, 2, 3, 4)),
    CASE_HVP("logsumexp", f_logsumexp, 1, U(-3, 3, 2, 3, 4)),
    CASE_HVP("softmax_last", f_softmax_last, 1, U(-3, 3, 2, 5)),
    CASE_HVP("softmax_axis0", f_softmax_0, 1, U(-3, 3, 4, 2)),
    CASE_HVP("log_softmax", f_log_softmax, 1, U(-3, 3, 2, 4, 3)),
    CASE("reshape", f_reshape, 1, U(-2, 2, 2, 3, 2)),
    CASE("transpose", f_transpose, 1, U(-2, 2, 2, 3, 4)),
    CASE("broadcast_row", f_broadcast_row, 1, U(-2, 2, 3)),
    CASE("broadcast_new_and_stretch", f_broadcast_col, 1, U(-2, 2, 2, 1)),
    CASE("expand_squeeze", f_expand_squeeze, 1, U(-2, 2, 2, 3)),
    CASE("slice", f_slice, 1, U(-2, 2, 4, 5)),
    CASE("slice_strided", f_slice_strided, 1, U(-2, 2, 5, 6)),
    CASE("slice_axis", f_slice_axis, 1, U(-2, 2, 2, 5)),
    CASE("concatenate", f_concat, 3, U(-2, 2, 2, 1), U(-2, 2, 2, 3), U(-2, 2, 2, 2)),
    CASE("split_equal", f_split, 1, U(-2, 2, 2, 6)),
    CASE("pad", f_pad, 1, U(-2, 2, 3, 4)),
    CASE_HVP("take", f_take, 2, U(-2, 2, 4, 3), I(IDX_TAKE, 5)),
    CASE("take_idx_rank2", f_take_rank2_idx, 2, U(-2, 2, 2, 4), I(IDX_RANK2, 2, 2)),
    CASE_HVP("take_along_axis", f_take_along, 2, U(-2, 2, 3, 4), I(IDX_ALONG, 3, 2)),
    WITH_INNER("scatter_add_take", f_scatter_take, 2, make_take_inner, U(-2, 2, 5, 3),
               I(IDX_TAKE, 5)),
    WITH_INNER("scatter_add_along", f_scatter_along, 2, make_take_along_inner, U(-2, 2, 3, 2),
               I(IDX_ALONG, 3, 2)),
};
#define NCASES (int)(sizeof CASES / sizeof CASES[0])

/* ---- inputs: (dict of float inputs "x<i>", dict of int inputs "x<i>") ---- */

static uint64_t rng_state;
static double rnd(void) { /* xorshift64*, uniform in [0, 1) */
    rng_state ^= rng_state >> 12, rng_state ^= rng_state << 25, rng_state ^= rng_state >> 27;
    return (double)((rng_state * 2685821657736338717ULL) >> 11) * 0x1p-53;
}

static gv_tree *make_inputs(const fd_case *c, uint64_t seed) {
    rng_state = seed * 0x9E3779B97F4A7C15ULL + 1;
    gv_tree *in = gv_tree_new_tuple(), *fl = gv_tree_new_dict(), *ints = gv_tree_new_dict();
    for (int i = 0; i < c->nin; i++) {
        const fd_in *d = &c->in[i];
        gv_tensor *t = GVT_NN(gv_tensor_zeros(d->kind == INTS ? GV_I32 : GV_F64, d->rank, d->shape));
        for (int64_t j = 0; j < gv_tensor_size(t); j++) {
            double v = d->kind == INTS ? d->ints[j] : d->lo + (d->hi - d->lo) * rnd();
            if (d->kind == AWAY && rnd() < 0.5) v = -v;
            GVT_OK(gv_tensor_set_flat(t, j, v));
        }
        char key[16];
        snprintf(key, sizeof key, "x%d", i);
        GVT_OK(gv_tree_insert_tensor(d->kind == INTS ? ints : fl, key, t));
        gv_tensor_free(t);
    }
    GVT_OK(gv_tree_append(in, fl));
    GVT_OK(gv_tree_append(in, ints));
    return in;
}

/* R: a fixed cotangent, R_i = sin(0.37 i + 0.5) */
static gv_value cotangent_like(gv_graph *g, gv_value out) {
    gv_tensor *r = gv_tensor_zeros(gv_value_dtype(out), gv_value_rank(out), gv_value_shape(out));
    if (!r) return gv_invalid(g);
    for (int64_t i = 0; i < gv_tensor_size(r); i++) gv_tensor_set_flat(r, i, sin(0.37 * i + 0.5));
    gv_value v = gv_constant(g, r);
    gv_tensor_free(r);
    return v;
}

typedef struct trace_ud {
    const fd_case *c;
    const gv_fn *inner;
} trace_ud;

/* loss(x) = sum(op(x) * R) */
static gv_tree *loss_fn(gv_graph *g, const gv_tree *in, void *ud) {
    const trace_ud *t = ud;
    gv_value x[MAX_IN];
    for (int i = 0; i < t->c->nin; i++) {
        char path[16];
        snprintf(path, sizeof path, "%d/x%d", t->c->in[i].kind == INTS ? 1 : 0, i);
        x[i] = gv_tree_get_value(in, path);
    }
    gv_value out = t->c->fn(g, x, t->inner);
    if (!gv_value_ok(out)) return gv_tree_new_value_leaf(out);
    return gv_tree_new_value_leaf(gv_sum(gv_mul(out, cotangent_like(g, out)), NULL, 0, false));
}

static double eval_scalar(const gv_fn *f, const gv_tree *in) {
    gv_tree *out = NULL;
    GVT_OK(gv_fn_eval(f, in, &out));
    double v;
    GVT_OK(gv_tensor_get(gv_tree_leaf_tensor(out), NULL, &v));
    gv_tree_free(out);
    return v;
}

/* ---- VJP vs central differences ---- */

static int check_case(const fd_case *c) {
    gv_fn *inner = c->make_inner ? c->make_inner() : NULL;
    trace_ud ud = {c, inner};
    gv_tree *in = make_inputs(c, 7);
    gv_fn *f = gv_trace(loss_fn, &ud, in);
    gv_fn *gf = f ? gv_grad(f, 0, false) : NULL;
    gv_tree *grads = NULL;
    if (!gf || gv_fn_eval(gf, in, &grads) != GV_OK) {
        fprintf(stderr, "%s: %s\n", c->name, gv_last_error());
        gv_fn_free(gf), gv_fn_free(f), gv_fn_free(inner), gv_tree_free(in);
        return 1;
    }
    const double h = 1e-6;
    int bad = 0;
    for (int i = 0; i < c->nin; i++) {
        if (c->in[i].kind == INTS) continue;
        char path[16], key[16];
        snprintf(path, sizeof path, "0/x%d", i);
        snprintf(key, sizeof key, "x%d", i);
        gv_tensor *x = gv_tree_get_tensor(in, path), *gx = GVT_NN(gv_tree_get_tensor(grads, key));
        double *p = gv_tensor_data(x);
        for (int64_t j = 0; j < gv_tensor_size(x); j++) {
            double orig = p[j], got;
            p[j] = orig + h;
            double up = eval_scalar(f, in);
            p[j] = orig - h;
            double down = eval_scalar(f, in);
            p[j] = orig;
            double fd = (up - down) / (2 * h);
            GVT_OK(gv_tensor_get_flat(gx, j, &got));
            /* FD error: h^2 f'''/6 ~ 1e-12 plus rounding eps |loss| / h ~ 1e-10 */
            if (!(fabs(got - fd) <= 1e-7 + 1e-6 * fabs(fd)) && bad++ < 4)
                fprintf(stderr, "%s: d/d%s[%lld]: vjp %.12g, finite differences %.12g\n", c->name,
                        key, (long long)j, got, fd);
        }
    }
    gv_tree_free(grads);
    gv_fn_free(gf), gv_fn_free(f), gv_fn_free(inner);
    gv_tree_free(in);
    return bad;
}

Test(vjp_fd, every_case_matches_finite_differences) {
    int nfail = 0;
    const char *first = NULL;
    for (int k = 0; k < NCASES; k++)
        if (check_case(&CASES[k]) && nfail++ == 0) first = CASES[k].name;
    cr_assert_eq(nfail, 0, "%d of %d cases differ from finite differences (first: %s; see stderr)",
                 nfail, NCASES, first ? first : "-");
}

/* The flagged product equals the product of explicit transposes, bit for bit
 * (same accumulation order), in both dtypes. */
static gv_tree *flags_vs_explicit(gv_graph *g, const gv_tree *in, void *ud) {
    gv_value a = gv_tree_get_value(in, "0/x0"), b = gv_tree_get_value(in, "0/x1");
    gv_value at = gv_transpose(a, (int[]){0, 1, 3, 2}), bt = gv_transpose(b, (int[]){0, 2, 1});
    gv_tree *out = gv_tree_new_tuple();
    gv_tree_append(out, gv_tree_new_value_leaf(matmul_flags(a, b, 1, 1)));
    gv_tree_append(out, gv_tree_new_value_leaf(gv_matmul(at, bt)));
    return out;
}

Test(vjp_fd, matmul_transpose_flags_forward) {
    static const fd_case shapes = {.nin = 2, .in = {U(-2, 2, 2, 1, 3, 2), U(-2, 2, 3, 4, 3)}};
    for (int f32 = 0; f32 < 2; f32++) {
        gv_tree *in = make_inputs(&shapes, 5);
        if (f32) { /* the same inputs in float32 */
            for (int i = 0; i < 2; i++) {
                char path[16];
                snprintf(path, sizeof path, "0/x%d", i);
                gv_tensor *t = GVT_NN(gv_tensor_cast(gv_tree_get_tensor(in, path), GV_F32));
                GVT_OK(gv_tree_set_tensor(in, path, t));
                gv_tensor_free(t);
            }
        }
        gv_fn *f = GVT_NN(gv_trace(flags_vs_explicit, NULL, in));
        gv_tree *out = NULL;
        GVT_OK(gv_fn_eval(f, in, &out));
        gv_tensor *a = GVT_NN(gv_tree_get_tensor(out, "0")), *b = GVT_NN(gv_tree_get_tensor(out, "1"));
        cr_expect_eq(gv_tensor_rank(a), 4);
        cr_expect(gv_tensor_equal(a, b), "flagged matmul differs from explicit transposes (%s)",
                  f32 ? "float32" : "float64");
        gv_tree_free(out);
        gv_fn_free(f);
        gv_tree_free(in);
    }
}

/* cast's VJP casts the cotangent back: the gradient of
 * sum(cast(cast(x, f32), f64) * R) is R rounded to float32, exactly (finite
 * differences cannot see through the float32 rounding). */
static gv_tree *cast_loss(gv_graph *g, const gv_tree *in, void *ud) {
    gv_value x = gv_tree_get_value(in, "0/x0");
    gv_value y = gv_cast(gv_cast(x, GV_F32), GV_F64);
    return gv_tree_new_value_leaf(gv_sum(gv_mul(y, cotangent_like(g, y)), NULL, 0, false));
}

static const fd_case CAST_CASE = {.name = "cast", .nin = 1, .in = {U(-2, 2, 2, 3)}};

Test(vjp_fd, cast_casts_the_cotangent_back) {
    gv_tree *in = make_inputs(&CAST_CASE, 3);
    gv_fn *f = GVT_NN(gv_trace(cast_loss, NULL, in));
    gv_fn *gf = GVT_NN(gv_grad(f, 0, false));
    gv_tree *out = NULL;
    GVT_OK(gv_fn_eval(gf, in, &out));
    gv_tensor *g = GVT_NN(gv_tree_get_tensor(out, "x0"));
    cr_assert_eq(gv_tensor_dtype(g), GV_F64);
    for (int64_t i = 0; i < gv_tensor_size(g); i++) {
        double got;
        gv_tensor_get_flat(g, i, &got);
        cr_expect_eq(got, (double)(float)sin(0.37 * i + 0.5), "[%lld]: %.17g", (long long)i, got);
    }
    gv_tree_free(out);
    gv_fn_free(gf), gv_fn_free(f);
    gv_tree_free(in);
}

/* ---- grad of grad: hvp(x, v) = grad_x <grad_x loss(x), v>, against
 * (grad(x + e v) - grad(x - e v)) / 2e. The VJPs are graphs of public ops,
 * so they differentiate like any other function. ---- */

static gv_tree *grad_dot_v(gv_graph *g, const gv_tree *in, void *ud) {
    const gv_fn *gf = ud;
    gv_tree *args = gv_tree_new_tuple();
    gv_tree_append(args, gv_tree_clone(gv_tree_get(in, "0")));
    gv_tree_append(args, gv_tree_clone(gv_tree_get(in, "1")));
    gv_tree *gr = gv_fn_call(g, gf, args);
    gv_tree_free(args);
    if (!gr) return NULL;
    gv_value total = gv_scalar(g, GV_F64, 0.0);
    const gv_tree *fl = gv_tree_get(in, "0");
    for (size_t i = 0; i < gv_tree_num_children(fl); i++) {
        const char *key = gv_tree_key(fl, i);
        char vp[24];
        snprintf(vp, sizeof vp, "2/%s", key);
        gv_value prod = gv_mul(gv_tree_get_value(gr, key), gv_tree_get_value(in, vp));
        total = gv_add(total, gv_sum(prod, NULL, 0, false));
    }
    gv_tree_free(gr);
    return gv_tree_new_value_leaf(total);
}

static int check_hvp(const fd_case *c) {
    gv_fn *inner = c->make_inner ? c->make_inner() : NULL;
    trace_ud ud = {c, inner};
    gv_tree *in = make_inputs(c, 11);
    gv_fn *f = GVT_NN(gv_trace(loss_fn, &ud, in));
    gv_fn *gf = GVT_NN(gv_grad(f, 0, false));
    /* (floats, ints, v): v a fixed direction shaped like the floats */
    gv_tree *in3 = GVT_NN(gv_tree_clone(in));
    gv_tree *v = GVT_NN(gv_tree_copy(gv_tree_get(in, "0")));
    gv_tensor **vl;
    size_t nv;
    GVT_OK(gv_tree_flatten(v, &vl, &nv));
    for (size_t i = 0; i < nv; i++) {
        double *p = gv_tensor_data(vl[i]);
        for (int64_t j = 0; j < gv_tensor_size(vl[i]); j++) p[j] = cos(1.0 + (double)(5 * i + j));
    }
    free(vl);
    GVT_OK(gv_tree_append(in3, v));
    gv_fn *h = gv_trace(grad_dot_v, gf, in3);
    gv_fn *hvp = h ? gv_grad(h, 0, false) : NULL;
    gv_tree *out = NULL;
    int bad = 0;
    if (!hvp || gv_fn_eval(hvp, in3, &out) != GV_OK) {
        fprintf(stderr, "%s: grad of grad: %s\n", c->name, gv_last_error());
        bad = 1;
    } else {
        const double e = 1e-5;
        gv_tree *plus = GVT_NN(gv_tree_copy(in)), *minus = GVT_NN(gv_tree_copy(in));
        const gv_tree *fl = gv_tree_get(in, "0");
        for (size_t i = 0; i < gv_tree_num_children(fl); i++) {
            char path[24];
            snprintf(path, sizeof path, "0/%s", gv_tree_key(fl, i));
            gv_tensor *vt = gv_tree_get_tensor(v, gv_tree_key(fl, i));
            double *pp = gv_tensor_data(gv_tree_get_tensor(plus, path));
            double *pm = gv_tensor_data(gv_tree_get_tensor(minus, path));
            const double *pv = gv_tensor_data_const(vt);
            for (int64_t j = 0; j < gv_tensor_size(vt); j++) pp[j] += e * pv[j], pm[j] -= e * pv[j];
        }
        gv_tree *gp = NULL, *gm = NULL;
        GVT_OK(gv_fn_eval(gf, plus, &gp));
        GVT_OK(gv_fn_eval(gf, minus, &gm));
        for (size_t i = 0; i < gv_tree_num_children(fl); i++) {
            const char *key = gv_tree_key(fl, i);
            gv_tensor *a = gv_tree_get_tensor(gp, key), *b = gv_tree_get_tensor(gm, key);
            gv_tensor *got = GVT_NN(gv_tree_get_tensor(out, key));
            for (int64_t j = 0; j < gv_tensor_size(a); j++) {
                double x, y, z;
                gv_tensor_get_flat(a, j, &x), gv_tensor_get_flat(b, j, &y);
                gv_tensor_get_flat(got, j, &z);
                double fd = (x - y) / (2 * e);
                if (!(fabs(z - fd) <= 1e-6 + 1e-5 * fabs(fd)) && bad++ < 4)
                    fprintf(stderr, "%s: hvp %s[%lld]: %.10g vs finite differences %.10g\n",
                            c->name, key, (long long)j, z, fd);
            }
        }
        gv_tree_free(gp), gv_tree_free(gm), gv_tree_free(plus), gv_tree_free(minus);
    }
    gv_tree_free(out);
    gv_fn_free(hvp), gv_fn_free(h), gv_fn_free(gf), gv_fn_free(f), gv_fn_free(inner);
    gv_tree_free(in3), gv_tree_free(in);
    return bad;
}

Test(vjp_fd, grad_of_grad_matches_finite_differences) {
    int nfail = 0, n = 0;
    const char *first = NULL;
    for (int k = 0; k < NCASES; k++) {
        if (!CASES[k].hvp) continue;
        n++;
        if (check_hvp(&CASES[k]) && nfail++ == 0) first = CASES[k].name;
    }
    cr_expect_geq(n, 4);
    cr_assert_eq(nfail, 0, "%d of %d second-order cases differ (first: %s; see stderr)", nfail, n,
                 first ? first : "-");
}

/* Every registry row that passes a gradient appears in some case's graph,
 * so a new primitive cannot go without a finite-difference check. */
Test(vjp_fd, covers_every_differentiable_primitive) {
    bool seen[GV_OP_COUNT] = {false};
    for (int k = 0; k < NCASES; k++) {
        const fd_case *c = &CASES[k];
        gv_fn *inner = c->make_inner ? c->make_inner() : NULL;
        trace_ud ud = {c, inner};
        gv_tree *in = make_inputs(c, 7);
        gv_fn *f = GVT_NN(gv_trace(loss_fn, &ud, in));
        const gv_graph *g = gv_fn_graph(f);
        for (int32_t i = 0; i < g->n; i++) seen[g->nodes[i].op] = true;
        gv_fn_free(f), gv_fn_free(inner);
        gv_tree_free(in);
    }
    seen[GV_OP_CAST] = true; /* cast_casts_the_cotangent_back */
    for (int op = 0; op < GV_OP_COUNT; op++) {
        if (op == GV_OP_INPUT || (gv_opdefs[op].flags & GV_OPF_NONDIFF)) continue;
        cr_expect(seen[op], "no finite-difference case reaches primitive %s", gv_opdefs[op].name);
    }
}
