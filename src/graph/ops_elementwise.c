/* Elementwise primitives: unary maths, binary arithmetic with numpy
 * broadcasting, comparisons, select and cast. Kernels compute float32 in
 * float (expf, ...) and float64 in double, so a plan's fused f32 kernels and
 * these reference kernels round the same way. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "ew_math.h"
#include "graph_internal.h"
#include "ops_internal.h"

/* ---- broadcasting ---- */

bool gv_broadcast_shapes(int ra, const int64_t *a, int rb, const int64_t *b, int *rank,
                         int64_t *out) {
    int r = ra > rb ? ra : rb;
    for (int i = 0; i < r; i++) {
        int64_t da = i < r - ra ? 1 : a[i - (r - ra)];
        int64_t db = i < r - rb ? 1 : b[i - (r - rb)];
        if (da != db && da != 1 && db != 1) return false;
        out[i] = da == 1 ? db : da;
    }
    *rank = r;
    return true;
}

/* Offsets of each operand for every output element, operand broadcast to the
 * output shape: a multi-index walk. Reference kernels only. */
typedef struct bcast_iter {
    int rank;
    const int64_t *shape;
    int64_t *idx;        /* rank */
    int64_t *strides[3]; /* rank each */
    int64_t off[3];
    int nops;
    int64_t *mem;
} bcast_iter;

/* Returns false when out of memory (the kernel then leaves its output). */
/* mem: 4 * (out->rank + 1) int64 of the caller's (a stack array): the
 * kernels run inside plans, which must not allocate. */
static bool iter_init(bcast_iter *it, const gv_node *out, const gv_node *const *ins, int nops,
                      int64_t *mem) {
    it->rank = out->rank;
    it->shape = out->shape;
    it->nops = nops;
    it->mem = mem;
    it->idx = it->mem;
    for (int k = 0; k < 3; k++) it->strides[k] = it->mem + (size_t)(out->rank + 1) * (k + 1);
    for (int k = 0; k < nops; k++) {
        int64_t s = 1;
        const gv_node *x = ins[k];
        for (int i = out->rank - 1; i >= 0; i--) {
            int xi = i - (out->rank - x->rank);
            int64_t d = xi >= 0 ? x->shape[xi] : 1;
            it->strides[k][i] = d == 1 ? 0 : s;
            s *= d;
        }
        it->off[k] = 0;
    }
    for (int i = 0; i < out->rank; i++) it->idx[i] = 0;
    return true;
}

static void iter_next(bcast_iter *it) {
    for (int i = it->rank - 1; i >= 0; i--) {
        for (int k = 0; k < it->nops; k++) it->off[k] += it->strides[k][i];
        if (++it->idx[i] < it->shape[i]) return;
        for (int k = 0; k < it->nops; k++) it->off[k] -= it->strides[k][i] * it->shape[i];
        it->idx[i] = 0;
    }
}

int64_t gv_node_size(const gv_node *n) {
    int64_t s = 1;
    for (int i = 0; i < n->rank; i++) s *= n->shape[i];
    return s;
}

/* ---- unary ---- */

/* the maths of each op: ew_math.h, shared with the fused kernels */
static float unary_f32(gv_opcode op, float x) {
    switch (op) {
#define X(OP, EXPR) \
    case OP: return (EXPR);
        GV_UNARY_F32_OPS(X)
#undef X
    default: return x;
    }
}

static double unary_f64(gv_opcode op, double x) {
    switch (op) {
#define X(OP, EXPR) \
    case OP: return (EXPR);
        GV_UNARY_F64_OPS(X)
#undef X
    default: return x;
    }
}

void gv_unary_kernel(const gv_node *n, const gv_node *const *ins, const void *const *in,
                         void *out) {
    int64_t size = gv_node_size(n);
    if (n->dtype == GV_F32) {
        const float *x = in[0];
        float *y = out;
        for (int64_t i = 0; i < size; i++) y[i] = unary_f32(n->op, x[i]);
    } else if (n->dtype == GV_F64) {
        const double *x = in[0];
        double *y = out;
        for (int64_t i = 0; i < size; i++) y[i] = unary_f64(n->op, x[i]);
    } else { /* integers: neg, abs, sign, square, relu; wrapping (abs(INT_MIN) = INT_MIN) */
        gv_dtype dt = n->dtype;
        bool uns = gv_dtype_is_unsigned(dt);
        for (int64_t i = 0; i < size; i++) {
            uint64_t v = gv_load_bits(dt, in[0], i);
            bool neg = !uns && (int64_t)v < 0;
            switch (n->op) {
            case GV_OP_NEG: v = 0 - v; break;
            case GV_OP_ABS: v = neg ? 0 - v : v; break;
            case GV_OP_SIGN: v = neg ? (uint64_t)-1 : v != 0; break;
            case GV_OP_SQUARE: v = v * v; break;
            case GV_OP_RELU: v = neg ? 0 : v; break;
            default: break;
            }
            gv_store_bits(dt, out, i, v);
        }
    }
}

static bool int_ok_unary(gv_opcode op) {
    return op == GV_OP_NEG || op == GV_OP_ABS || op == GV_OP_SIGN || op == GV_OP_SQUARE ||
           op == GV_OP_RELU || op == GV_OP_STOP_GRADIENT;
}

gv_status gv_unary_infer(gv_graph *g, gv_node *n, const gv_node *const *ins) {
    const gv_node *x = ins[0];
    bool bad = (!gv_dtype_is_float(x->dtype) && !int_ok_unary(n->op)) ||
               (x->dtype == GV_BOOL && n->op != GV_OP_STOP_GRADIENT);
    if (bad) {
        char *sx = gv_shape_str(x->rank, x->shape);
        gv_graph_fail(g, GV_ERR_DTYPE, "%s: needs a %s operand, got %s%s", gv_opdefs[n->op].name,
                      int_ok_unary(n->op) ? "numeric" : "float", gv_dtype_name(x->dtype),
                      sx ? sx : "");
        free(sx);
        return GV_ERR_DTYPE;
    }
    n->dtype = x->dtype;
    gv_node_set_shape(g, n, x->rank, x->shape);
    return GV_OK;
}

static gv_value unary(gv_opcode op, gv_value x) {
    gv_graph *g = gv_graph_of(gv_opdefs[op].name, &x, 1);
    if (!g) return gv_invalid(x.graph);
    gv_node_spec s = {.op = op, .nin = 1, .in = &x};
    return gv_emit(g, &s);
}

gv_value gv_neg(gv_value x) { return unary(GV_OP_NEG, x); }
gv_value gv_abs(gv_value x) { return unary(GV_OP_ABS, x); }
gv_value gv_sign(gv_value x) { return unary(GV_OP_SIGN, x); }
gv_value gv_exp(gv_value x) { return unary(GV_OP_EXP, x); }
gv_value gv_log(gv_value x) { return unary(GV_OP_LOG, x); }
gv_value gv_log1p(gv_value x) { return unary(GV_OP_LOG1P, x); }
gv_value gv_expm1(gv_value x) { return unary(GV_OP_EXPM1, x); }
gv_value gv_sqrt(gv_value x) { return unary(GV_OP_SQRT, x); }
gv_value gv_rsqrt(gv_value x) { return unary(GV_OP_RSQRT, x); }
gv_value gv_square(gv_value x) { return unary(GV_OP_SQUARE, x); }
gv_value gv_tanh(gv_value x) { return unary(GV_OP_TANH, x); }
gv_value gv_sigmoid(gv_value x) { return unary(GV_OP_SIGMOID, x); }
gv_value gv_erf(gv_value x) { return unary(GV_OP_ERF, x); }
gv_value gv_relu(gv_value x) { return unary(GV_OP_RELU, x); }
gv_value gv_gelu(gv_value x, bool approximate) {
    return unary(approximate ? GV_OP_GELU_TANH : GV_OP_GELU_ERF, x);
}
gv_value gv_silu(gv_value x) { return unary(GV_OP_SILU, x); }
gv_value gv_softplus(gv_value x) { return unary(GV_OP_SOFTPLUS, x); }
gv_value gv_stop_gradient(gv_value x) { return unary(GV_OP_STOP_GRADIENT, x); }

/* VJPs of unary ops (d out / d x times ct), written with public ops. */
void gv_unary_vjp(const gv_node *n, const gv_value *ins, gv_value out, gv_value ct,
                      gv_value *cts) {
    gv_value x = ins[0];
    switch (n->op) {
    case GV_OP_NEG: cts[0] = gv_neg(ct); break;
    case GV_OP_ABS: /* jax: select(x >= 0, ct, -ct), so +1 at 0 (not sign(0) = 0) */
        cts[0] = gv_select(gv_ge(x, gv_zeros_like(x)), ct, gv_neg(ct));
        break;
    case GV_OP_EXP: cts[0] = gv_mul(ct, out); break;
    case GV_OP_LOG: cts[0] = gv_div(ct, x); break;
    case GV_OP_LOG1P: cts[0] = gv_div(ct, gv_add_scalar(x, 1.0)); break;
    case GV_OP_EXPM1: cts[0] = gv_mul(ct, gv_add_scalar(out, 1.0)); break;
    case GV_OP_SQRT: cts[0] = gv_div(ct, gv_mul_scalar(out, 2.0)); break;
    case GV_OP_RSQRT: /* d x^-1/2 = -1/2 x^-3/2 = -0.5 out / x */
        cts[0] = gv_mul(ct, gv_div(gv_mul_scalar(out, -0.5), x));
        break;
    case GV_OP_SQUARE: cts[0] = gv_mul(ct, gv_mul_scalar(x, 2.0)); break;
    case GV_OP_TANH: /* 1 - tanh^2 */
        cts[0] = gv_mul(ct, gv_sub(gv_ones_like(out), gv_square(out)));
        break;
    case GV_OP_SIGMOID: cts[0] = gv_mul(ct, gv_mul(out, gv_sub(gv_ones_like(out), out))); break;
    case GV_OP_ERF: /* 2/sqrt(pi) exp(-x^2) */
        cts[0] = gv_mul(ct, gv_mul_scalar(gv_exp(gv_neg(gv_square(x))), 1.1283791670955126));
        break;
    case GV_OP_RELU: /* jax: gradient 0 at x == 0 */
        cts[0] = gv_select(gv_gt(x, gv_zeros_like(x)), ct, gv_zeros_like(ct));
        break;
    case GV_OP_GELU_TANH: {
        /* t = tanh(c (x + a x^3)); d = 0.5 (1 + t) + 0.5 x (1 - t^2) c (1 + 3 a x^2) */
        const double c = 0.7978845608028654, a = 0.044715;
        gv_value x2 = gv_square(x);
        gv_value t = gv_tanh(gv_mul_scalar(gv_add(x, gv_mul_scalar(gv_mul(x2, x), a)), c));
        gv_value left = gv_mul_scalar(gv_add_scalar(t, 1.0), 0.5);
        gv_value dt = gv_sub(gv_ones_like(t), gv_square(t));
        gv_value inner = gv_mul_scalar(gv_add_scalar(gv_mul_scalar(x2, 3 * a), 1.0), c);
        gv_value right = gv_mul(gv_mul_scalar(x, 0.5), gv_mul(dt, inner));
        cts[0] = gv_mul(ct, gv_add(left, right));
        break;
    }
    case GV_OP_GELU_ERF: {
        /* 0.5 (1 + erf(x / sqrt2)) + x exp(-x^2 / 2) / sqrt(2 pi) */
        gv_value cdf = gv_mul_scalar(gv_add_scalar(gv_erf(gv_mul_scalar(x, 0.7071067811865476)), 1.0), 0.5);
        gv_value pdf = gv_mul_scalar(gv_exp(gv_mul_scalar(gv_square(x), -0.5)), 0.3989422804014327);
        cts[0] = gv_mul(ct, gv_add(cdf, gv_mul(x, pdf)));
        break;
    }
    case GV_OP_SILU: { /* s (1 + x (1 - s)) */
        gv_value s = gv_sigmoid(x);
        cts[0] = gv_mul(ct, gv_mul(s, gv_add_scalar(gv_mul(x, gv_sub(gv_ones_like(s), s)), 1.0)));
        break;
    }
    case GV_OP_SOFTPLUS: cts[0] = gv_mul(ct, gv_sigmoid(x)); break;
    default: break; /* SIGN, STOP_GRADIENT: no gradient */
    }
}

/* ---- cast ---- */

gv_status gv_cast_infer(gv_graph *g, gv_node *n, const gv_node *const *ins) {
    n->dtype = (gv_dtype)n->iattr[0];
    if (!gv_dtype_is_valid(n->dtype))
        return gv_graph_fail(g, GV_ERR_DTYPE, "cast: invalid dtype %d", (int)n->dtype),
               GV_ERR_DTYPE;
    gv_node_set_shape(g, n, ins[0]->rank, ins[0]->shape);
    return GV_OK;
}

/* As numpy's astype and XLA's convert: float -> float rounds once; float ->
 * int truncates toward zero, saturating, NaN -> 0 (gv_store_f64); int -> int
 * keeps the low bits (int32 -1 -> uint8 255); int -> float rounds once (not
 * through double, which would round int64 twice); anything -> bool is != 0. */
void gv_cast_kernel(const gv_node *n, const gv_node *const *ins, const void *const *in,
                        void *out) {
    int64_t size = gv_node_size(n);
    gv_dtype from = ins[0]->dtype, to = n->dtype;
    bool ffrom = gv_dtype_is_float(from), fto = gv_dtype_is_float(to);
    if (from == to) {
        memcpy(out, in[0], (size_t)size * gv_dtype_size(to));
    } else if (ffrom || (fto && from != GV_I64 && from != GV_U64)) {
        /* exact through double: every float, and integers of <= 32 bits */
        for (int64_t i = 0; i < size; i++) gv_store_f64(to, out, i, gv_load_f64(from, in[0], i));
    } else if (fto) { /* 64-bit integers to float */
        for (int64_t i = 0; i < size; i++) {
            uint64_t v = gv_load_bits(from, in[0], i);
            if (to == GV_F32)
                ((float *)out)[i] = from == GV_U64 ? (float)v : (float)(int64_t)v;
            else
                ((double *)out)[i] = from == GV_U64 ? (double)v : (double)(int64_t)v;
        }
    } else {
        for (int64_t i = 0; i < size; i++) gv_store_bits(to, out, i, gv_load_bits(from, in[0], i));
    }
}

void gv_cast_vjp(const gv_node *n, const gv_value *ins, gv_value out, gv_value ct,
                     gv_value *cts) {
    if (gv_dtype_is_float(n->dtype) && gv_dtype_is_float(gv_value_dtype(ins[0])))
        cts[0] = gv_cast(ct, gv_value_dtype(ins[0]));
}

gv_value gv_cast(gv_value x, gv_dtype dtype) {
    gv_graph *g = gv_graph_of("cast", &x, 1);
    if (!g) return gv_invalid(x.graph);
    if (gv_value_dtype(x) == dtype) return x;
    gv_node_spec s = {.op = GV_OP_CAST, .nin = 1, .in = &x, .iattr = {dtype, 0}};
    return gv_emit(g, &s);
}

/* ---- binary ---- */

static bool is_compare(gv_opcode op) { return op >= GV_OP_EQ && op <= GV_OP_GE; }

gv_status gv_binary_infer(gv_graph *g, gv_node *n, const gv_node *const *ins) {
    const gv_node *a = ins[0], *b = ins[1];
    const char *name = gv_opdefs[n->op].name;
    const char *why = a->dtype != b->dtype ? "dtypes differ (cast one operand first)"
                    : n->op == GV_OP_POW && !gv_dtype_is_float(a->dtype) ? "needs float operands"
                    : a->dtype == GV_BOOL && !is_compare(n->op) ? "bool operands" : NULL;
    if (why) {
        char *sa = gv_shape_str(a->rank, a->shape), *sb = gv_shape_str(b->rank, b->shape);
        gv_graph_fail(g, GV_ERR_DTYPE, "%s: dtype %s vs %s (shapes %s and %s): %s", name,
                      gv_dtype_name(a->dtype), gv_dtype_name(b->dtype), sa ? sa : "?",
                      sb ? sb : "?", why);
        free(sa), free(sb);
        return GV_ERR_DTYPE;
    }
    int r = a->rank > b->rank ? a->rank : b->rank;
    int64_t *shape = gv_node_set_shape(g, n, r, NULL);
    if (!shape) return gv_graph_fail(g, GV_ERR_NOMEM, "%s: out of memory", name), GV_ERR_NOMEM;
    if (!gv_broadcast_shapes(a->rank, a->shape, b->rank, b->shape, &r, shape)) {
        char *sa = gv_shape_str(a->rank, a->shape), *sb = gv_shape_str(b->rank, b->shape);
        gv_graph_fail(g, GV_ERR_SHAPE, "%s: shapes %s and %s do not broadcast", name,
                      sa ? sa : "?", sb ? sb : "?");
        free(sa), free(sb);
        return GV_ERR_SHAPE;
    }
    n->dtype = is_compare(n->op) ? GV_BOOL : a->dtype;
    return GV_OK;
}

#define BINARY_LOOP(T, EXPR)                                                             \
    do {                                                                                 \
        const T *A = in[0], *B = in[1];                                                  \
        for (int64_t i = 0; i < size; i++, iter_next(&it)) {                             \
            T a = A[it.off[0]], b = B[it.off[1]];                                        \
            EXPR;                                                                        \
        }                                                                                \
    } while (0)

void gv_binary_kernel(const gv_node *n, const gv_node *const *ins, const void *const *in,
                          void *out) {
    bcast_iter it;
    int64_t mem[4 * (n->rank + 1)];
    if (!iter_init(&it, n, ins, 2, mem)) return;
    int64_t size = gv_node_size(n);
    gv_dtype dt = ins[0]->dtype;
    if (is_compare(n->op)) {
        uint8_t *y = out;
        bool fl = gv_dtype_is_float(dt);
        for (int64_t i = 0; i < size; i++, iter_next(&it)) {
            bool r, lt, gt;
            if (fl) { /* doubles hold float32/float64 exactly; NaN compares false */
                double a = gv_load_f64(dt, in[0], it.off[0]), b = gv_load_f64(dt, in[1], it.off[1]);
                switch (n->op) {
#define X(OP, EXPR) \
    case OP: r = (EXPR); break;
                    GV_COMPARE_OPS(X)
#undef X
                default: r = false; break;
                }
            } else { /* integers exactly: 64-bit values do not fit a double */
                uint64_t a = gv_load_bits(dt, in[0], it.off[0]), b = gv_load_bits(dt, in[1], it.off[1]);
                lt = gv_int_less(dt, a, b), gt = gv_int_less(dt, b, a);
                switch (n->op) {
                case GV_OP_EQ: r = a == b; break;
                case GV_OP_NE: r = a != b; break;
                case GV_OP_LT: r = lt; break;
                case GV_OP_LE: r = !gt; break;
                case GV_OP_GT: r = gt; break;
                default: r = !lt; break;
                }
            }
            y[i] = r;
        }
        return;
    }
    if (dt == GV_F32) {
        float *y = out;
        switch (n->op) {
#define X(OP, EXPR) \
    case OP: BINARY_LOOP(float, y[i] = (EXPR)); break;
            GV_BINARY_F32_OPS(X)
#undef X
        default: break;
        }
    } else if (dt == GV_F64) {
        double *y = out;
        switch (n->op) {
#define X(OP, EXPR) \
    case OP: BINARY_LOOP(double, y[i] = (EXPR)); break;
            GV_BINARY_F64_OPS(X)
#undef X
        default: break;
        }
    } else { /* integers, wrapping as two's complement at the dtype's width like XLA */
        bool uns = gv_dtype_is_unsigned(dt);
        for (int64_t i = 0; i < size; i++, iter_next(&it)) {
            uint64_t a = gv_load_bits(dt, in[0], it.off[0]), b = gv_load_bits(dt, in[1], it.off[1]);
            uint64_t r;
            switch (n->op) {
            case GV_OP_ADD: r = a + b; break;
            case GV_OP_SUB: r = a - b; break;
            case GV_OP_MUL: r = a * b; break;
            case GV_OP_DIV:
                /* lax.div rounds toward zero; as XLA's CPU backend, x / 0 is -1 (all
                 * bits set) and INT_MIN / -1 is INT_MIN (the negation wraps) */
                if (b == 0) r = UINT64_MAX;
                else if (uns) r = a / b;
                else if ((int64_t)b == -1) r = 0 - a;
                else r = (uint64_t)((int64_t)a / (int64_t)b);
                break;
            case GV_OP_MAX: r = gv_int_less(dt, a, b) ? b : a; break;
            default: r = gv_int_less(dt, b, a) ? b : a; break;
            }
            gv_store_bits(dt, out, i, r);
        }
    }
}

static gv_value binary(gv_opcode op, gv_value a, gv_value b) {
    gv_value xs[2] = {a, b};
    gv_graph *g = gv_graph_of(gv_opdefs[op].name, xs, 2);
    if (!g) return gv_invalid(a.graph ? a.graph : b.graph);
    gv_node_spec s = {.op = op, .nin = 2, .in = xs};
    return gv_emit(g, &s);
}

gv_value gv_add(gv_value a, gv_value b) { return binary(GV_OP_ADD, a, b); }
gv_value gv_sub(gv_value a, gv_value b) { return binary(GV_OP_SUB, a, b); }
gv_value gv_mul(gv_value a, gv_value b) { return binary(GV_OP_MUL, a, b); }
gv_value gv_div(gv_value a, gv_value b) { return binary(GV_OP_DIV, a, b); }
gv_value gv_pow(gv_value a, gv_value b) { return binary(GV_OP_POW, a, b); }
gv_value gv_maximum(gv_value a, gv_value b) { return binary(GV_OP_MAX, a, b); }
gv_value gv_minimum(gv_value a, gv_value b) { return binary(GV_OP_MIN, a, b); }
gv_value gv_eq(gv_value a, gv_value b) { return binary(GV_OP_EQ, a, b); }
gv_value gv_ne(gv_value a, gv_value b) { return binary(GV_OP_NE, a, b); }
gv_value gv_lt(gv_value a, gv_value b) { return binary(GV_OP_LT, a, b); }
gv_value gv_le(gv_value a, gv_value b) { return binary(GV_OP_LE, a, b); }
gv_value gv_gt(gv_value a, gv_value b) { return binary(GV_OP_GT, a, b); }
gv_value gv_ge(gv_value a, gv_value b) { return binary(GV_OP_GE, a, b); }

static gv_value scalar_like(gv_value a, double s) {
    return gv_scalar(a.graph, gv_value_dtype(a), s);
}
gv_value gv_add_scalar(gv_value a, double s) {
    return gv_value_ok(a) ? gv_add(a, scalar_like(a, s)) : a;
}
gv_value gv_mul_scalar(gv_value a, double s) {
    return gv_value_ok(a) ? gv_mul(a, scalar_like(a, s)) : a;
}
gv_value gv_pow_scalar(gv_value a, double s) {
    return gv_value_ok(a) ? gv_pow(a, scalar_like(a, s)) : a;
}

gv_value gv_unbroadcast(gv_value x, int rank, const int64_t *shape) {
    if (!gv_value_ok(x)) return x;
    int rx = gv_value_rank(x);
    const int64_t *sx = gv_value_shape(x);
    int axes[rx > 0 ? rx : 1], na = 0;
    for (int i = 0; i < rx; i++) {
        int j = i - (rx - rank);
        if (j < 0 || (shape[j] == 1 && sx[i] != 1)) axes[na++] = i;
    }
    gv_value s = na ? gv_sum(x, axes, na, false) : x;
    if (gv_value_rank(s) == rank) {
        bool same = true;
        for (int i = 0; i < rank; i++) same &= gv_value_shape(s)[i] == shape[i];
        if (same) return s;
    }
    return gv_reshape(s, rank, shape);
}

/* jax's _balanced_eq: 1 where x is the max/min alone, 0.5 where both are */
static gv_value balanced(gv_value x, gv_value out, gv_value other) {
    gv_value one = gv_ones_like(out), half = gv_full_like(out, 0.5), zero = gv_zeros_like(out);
    return gv_select(gv_eq(x, out), gv_select(gv_eq(other, out), half, one), zero);
}

void gv_binary_vjp(const gv_node *n, const gv_value *ins, gv_value out, gv_value ct,
                       gv_value *cts) {
    gv_value a = ins[0], b = ins[1];
    gv_value ca = gv_invalid(a.graph), cb = gv_invalid(a.graph);
    switch (n->op) {
    case GV_OP_ADD: ca = ct, cb = ct; break;
    case GV_OP_SUB: ca = ct, cb = gv_neg(ct); break;
    case GV_OP_MUL: ca = gv_mul(ct, b), cb = gv_mul(ct, a); break;
    case GV_OP_DIV: ca = gv_div(ct, b), cb = gv_neg(gv_div(gv_mul(ct, out), b)); break;
    case GV_OP_POW: {
        /* d/da = b a^(b-1), taken as 0 where b == 0 (jax's select(y == 0, ...) up to
         * 0.4.x, and torch: 0^0 would give 0 * inf = NaN); d/db = out log(a), taken
         * as 0 where a == 0 (jax's _replace_zero) */
        gv_value da = gv_mul(b, gv_pow(a, gv_sub(b, gv_ones_like(b))));
        ca = gv_mul(ct, gv_select(gv_eq(b, gv_zeros_like(b)), gv_zeros_like(da), da));
        gv_value safe = gv_select(gv_eq(a, gv_zeros_like(a)), gv_ones_like(a), a);
        cb = gv_mul(ct, gv_mul(out, gv_log(safe)));
        break;
    }
    case GV_OP_MAX:
    case GV_OP_MIN:
        ca = gv_mul(ct, balanced(a, out, b));
        cb = gv_mul(ct, balanced(b, out, a));
        break;
    default: return; /* comparisons */
    }
    cts[0] = gv_unbroadcast(ca, gv_value_rank(a), gv_value_shape(a));
    cts[1] = gv_unbroadcast(cb, gv_value_rank(b), gv_value_shape(b));
}

/* ---- select ---- */

gv_status gv_select_infer(gv_graph *g, gv_node *n, const gv_node *const *ins) {
    const gv_node *c = ins[0], *a = ins[1], *b = ins[2];
    if (c->dtype != GV_BOOL) {
        gv_graph_fail(g, GV_ERR_DTYPE, "select: condition must be bool, got %s",
                      gv_dtype_name(c->dtype));
        return GV_ERR_DTYPE;
    }
    if (a->dtype != b->dtype) {
        gv_graph_fail(g, GV_ERR_DTYPE, "select: dtype %s vs %s", gv_dtype_name(a->dtype),
                      gv_dtype_name(b->dtype));
        return GV_ERR_DTYPE;
    }
    int r1, r = c->rank;
    if (a->rank > r) r = a->rank;
    if (b->rank > r) r = b->rank;
    int64_t t[r > 0 ? r : 1];
    int64_t *shape = gv_node_set_shape(g, n, r, NULL);
    if (!gv_broadcast_shapes(a->rank, a->shape, b->rank, b->shape, &r1, t) ||
        !gv_broadcast_shapes(c->rank, c->shape, r1, t, &r, shape)) {
        char *sc = gv_shape_str(c->rank, c->shape), *sa = gv_shape_str(a->rank, a->shape),
             *sb = gv_shape_str(b->rank, b->shape);
        gv_graph_fail(g, GV_ERR_SHAPE, "select: shapes %s, %s and %s do not broadcast", sc, sa,
                      sb);
        free(sc), free(sa), free(sb);
        return GV_ERR_SHAPE;
    }
    n->dtype = a->dtype;
    return GV_OK;
}

void gv_select_kernel(const gv_node *n, const gv_node *const *ins, const void *const *in,
                          void *out) {
    bcast_iter it;
    int64_t mem[4 * (n->rank + 1)];
    if (!iter_init(&it, n, ins, 3, mem)) return;
    int64_t size = gv_node_size(n);
    size_t es = gv_dtype_size(n->dtype);
    const uint8_t *c = in[0];
    const char *a = in[1], *b = in[2];
    char *y = out;
    for (int64_t i = 0; i < size; i++, iter_next(&it))
        memcpy(y + i * es, c[it.off[0]] ? a + it.off[1] * es : b + it.off[2] * es, es);
}

void gv_select_vjp(const gv_node *n, const gv_value *ins, gv_value out, gv_value ct,
                       gv_value *cts) {
    gv_value zero = gv_zeros_like(ct);
    cts[1] = gv_unbroadcast(gv_select(ins[0], ct, zero), gv_value_rank(ins[1]),
                            gv_value_shape(ins[1]));
    cts[2] = gv_unbroadcast(gv_select(ins[0], zero, ct), gv_value_rank(ins[2]),
                            gv_value_shape(ins[2]));
}

gv_value gv_select(gv_value cond, gv_value a, gv_value b) {
    gv_value xs[3] = {cond, a, b};
    gv_graph *g = gv_graph_of("select", xs, 3);
    if (!g) return gv_invalid(cond.graph ? cond.graph : a.graph);
    gv_node_spec s = {.op = GV_OP_SELECT, .nin = 3, .in = xs};
    return gv_emit(g, &s);
}
