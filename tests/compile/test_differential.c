/* Every primitive, compiled against the reference evaluator.
 *
 * The test walks the primitive registry itself (gv_opdefs): each opcode must
 * have a row in `families` below that builds graphs around it, so an op
 * added later fails this test until it is covered. For every dtype the op
 * accepts (found by trying all of them: the op's shape rule refuses the
 * others), on inputs full of special values (NaN, +-Inf, -0, subnormals,
 * values at the edge of overflow), at sizes that take the one-block,
 * many-block and threaded paths of the fused kernels, with broadcasting
 * along every axis and reductions along every axis (keepdims or not, fused
 * as epilogues), each graph is compiled with and without the optimising
 * passes, on 1 and 2 threads, and with no input or each input donated, and
 * every output is compared with gv_fn_eval's: bit for bit (any NaN equals
 * any NaN, see leaf_close), except where a tolerance is written next to the
 * family with the reason. */
#include <float.h>
#include <math.h>
#include <string.h>

#include "grove/distributed.h"

#include "compile/compile_internal.h"
#include "graph/fn_internal.h"
#include "grove/nn_conv.h"
#include "testutil.h"

/* ---- inputs ---- */

typedef enum gen_kind {
    GEN_SPECIAL, /* special values mixed with random ones */
    GEN_TAME,    /* finite, modest values, plus NaN/Inf/-0/subnormals (matmul) */
    GEN_INDEX,   /* integers in [-2, limit + 2): in and out of range */
    GEN_KEY      /* uint32 bits */
} gen_kind;

typedef struct operand {
    gen_kind gen;
    gv_dtype dtype;
    int rank;
    int64_t shape[4];
    int64_t limit; /* GEN_INDEX */
} operand;

static uint64_t mix(uint64_t x) {
    x ^= x >> 33, x *= 0xff51afd7ed558ccdull, x ^= x >> 33, x *= 0xc4ceb9fe1a85ec53ull;
    return x ^ (x >> 33);
}

static const double float_specials[] = {
    NAN, INFINITY, -INFINITY, 0.0, -0.0, 1e-40, -1e-40, 1.17549435e-38, 88.72, 88.73, -87.3,
    -103.9, 1e38, -1e38, 3.4e38, 0.5, 1.0, -1.0, 2.0, 3.5, -2.5, 20.0, -20.0, 1e-7, 0.1,
    -0.1, 9.5, 1e300, -1e-310};
static const double tame_specials[] = {NAN, INFINITY, -INFINITY, 0.0, -0.0, 1e-40, 1.0, -1.0, 0.5};

static double gen_value(const operand *o, uint64_t seed, int64_t k) {
    uint64_t h = mix(seed * 0x9E3779B97F4A7C15ull + (uint64_t)k);
    double u = (double)(h >> 11) / 9007199254740992.0; /* [0, 1) */
    switch (o->gen) {
    case GEN_INDEX: return (double)(int64_t)(u * (double)(o->limit + 4)) - 2;
    case GEN_KEY: return (double)(uint32_t)h;
    case GEN_TAME:
        if (h % 11 == 0) return tame_specials[(h >> 8) % (sizeof tame_specials / sizeof *tame_specials)];
        return (u - 0.5) * 6;
    default: break;
    }
    if (o->dtype == GV_BOOL) return (double)(h & 1);
    if (!gv_dtype_is_float(o->dtype)) {
        static const double ints[] = {0, 1, -1, 2, -2, 7, 100, -128, 127, 255, 65535,
                                      2147483647.0, -2147483648.0, 4294967295.0};
        if (h % 3 == 0) return ints[(h >> 8) % (sizeof ints / sizeof *ints)];
        return (double)((int64_t)(u * 200) - 100);
    }
    if (h % 3 == 0) return float_specials[(h >> 8) % (sizeof float_specials / sizeof *float_specials)];
    return (u - 0.5) * 8;
}

/* A tensor of o's dtype and shape; values go through gv_tensor_set_flat
 * (which converts like numpy's astype), integers wrapping into the dtype. */
static gv_tensor *make_operand(const operand *o, uint64_t seed) {
    gv_tensor *t = gv_tensor_zeros(o->dtype, o->rank, o->shape);
    cr_assert_not_null(t, "%s", gv_last_error());
    void *d = gv_tensor_data(t);
    for (int64_t k = 0; k < gv_tensor_size(t); k++) {
        double v = gen_value(o, seed, k);
        switch (o->dtype) {
        case GV_F32: ((float *)d)[k] = (float)v; break;
        case GV_F64: ((double *)d)[k] = v; break;
        case GV_BOOL: ((uint8_t *)d)[k] = v != 0; break;
        case GV_U8: ((uint8_t *)d)[k] = (uint8_t)(int64_t)v; break;
        case GV_U16: ((uint16_t *)d)[k] = (uint16_t)(int64_t)v; break;
        case GV_U32: ((uint32_t *)d)[k] = (uint32_t)(int64_t)v; break;
        case GV_U64: ((uint64_t *)d)[k] = (uint64_t)(int64_t)v; break;
        case GV_I32: ((int32_t *)d)[k] = (int32_t)(int64_t)v; break;
        case GV_I64: ((int64_t *)d)[k] = (int64_t)v; break;
        default: cr_assert_fail("dtype %d", (int)o->dtype);
        }
    }
    return t;
}

/* ---- one case: a graph around an op, compiled every way ---- */

typedef struct dcase dcase;
/* Build the case's main output from the operands; may add more outputs. */
typedef gv_value (*build_fn)(gv_graph *g, const gv_value *x, const dcase *c, gv_tree *out);

struct dcase {
    gv_opcode op;        /* the primitive under test */
    build_fn build;
    int nin;
    operand in[3];
    int iparam[4];       /* build parameters (axes, flags) */
    double fparam;
    double tol;          /* 0 = bit for bit; else |a-b| <= tol * (1 + |b|), NaN where NaN */
};

typedef struct op_report {
    int cases, comparisons;
    unsigned dtypes; /* bit per dtype that compiled */
    double tol;
    const char *why;
} op_report;

static op_report report[GV_OP_COUNT];
static int total_comparisons, failures;
static char first_failure[512];

static gv_tree *trace_case(gv_graph *g, const gv_tree *in, void *ud) {
    const dcase *c = ud;
    gv_value x[3];
    static const char *names[3] = {"x0", "x1", "x2"};
    for (int k = 0; k < c->nin; k++) x[k] = gv_tree_get_value(in, names[k]);
    gv_tree *out = gv_tree_new_dict();
    if (!out) return NULL;
    gv_value y = c->build(g, x, c, out);
    if (gv_tree_insert_value(out, "y", y) != GV_OK) {
        gv_tree_free(out);
        return NULL;
    }
    return out;
}

static bool graph_has_op(const gv_graph *g, gv_opcode op) {
    for (int32_t i = 0; i < g->n; i++)
        if (g->nodes[i].op == op) return true;
    return false;
}

static bool leaf_close(const gv_tensor *a, const gv_tensor *b, double tol, int64_t *where) {
    if (gv_tensor_dtype(a) != gv_tensor_dtype(b) || !gv_tensor_same_shape(a, b)) return *where = -1, false;
    if (tol == 0) {
        if (memcmp(gv_tensor_data_const(a), gv_tensor_data_const(b), gv_tensor_nbytes(a)) == 0) return true;
        /* bits, except that any NaN equals any NaN: when two NaNs meet, IEEE
         * 754 leaves open which one propagates, and a compiler may swap the
         * operands of a commutative add (so -nan + nan is either) */
        gv_dtype dt = gv_tensor_dtype(a);
        size_t es = gv_dtype_size(dt);
        for (int64_t k = 0; k < gv_tensor_size(a); k++) {
            const char *pa = (const char *)gv_tensor_data_const(a) + k * es;
            const char *pb = (const char *)gv_tensor_data_const(b) + k * es;
            if (!memcmp(pa, pb, es)) continue;
            if (dt == GV_F32 && isnan(*(const float *)pa) && isnan(*(const float *)pb)) continue;
            if (dt == GV_F64 && isnan(*(const double *)pa) && isnan(*(const double *)pb)) continue;
            return *where = k, false;
        }
        return true;
    }
    for (int64_t k = 0; k < gv_tensor_size(a); k++) {
        double x, y;
        gv_tensor_get_flat(a, k, &x), gv_tensor_get_flat(b, k, &y);
        bool ok = isnan(y) ? isnan(x) : isinf(y) ? x == y : fabs(x - y) <= tol * (1 + fabs(y));
        if (!ok) return *where = k, false;
    }
    return true;
}

static void fail_case(const dcase *c, const char *mode, const char *fmt, ...) {
    if (failures++) return;
    char msg[300];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    char *shape = gv_shape_str(c->in[0].rank, c->in[0].shape);
    snprintf(first_failure, sizeof first_failure, "%s (dtype %s, x0 %s, params %d %d %d): %s: %s",
             gv_opdefs[c->op].name, gv_dtype_name(c->in[0].dtype), shape ? shape : "?",
             c->iparam[0], c->iparam[1], c->iparam[2], mode, msg);
    free(shape);
}

/* Returns false when the op refuses this dtype (not a failure). */
static bool run_case(dcase *c, uint64_t seed) {
    static const char *names[3] = {"x0", "x1", "x2"};
    gv_tree *in = gv_tree_new_dict();
    for (int k = 0; k < c->nin; k++) {
        gv_tensor *t = make_operand(&c->in[k], seed * 7 + (uint64_t)k);
        GVT_OK(gv_tree_insert_tensor(in, names[k], t));
        gv_tensor_free(t);
    }
    gv_clear_error();
    gv_fn *f = gv_trace(trace_case, c, in);
    if (!f) {
        gv_status st = gv_last_status();
        gv_tree_free(in);
        if (st == GV_ERR_DTYPE) return false;
        fail_case(c, "trace", "%s", gv_last_error());
        return true;
    }
    cr_assert(graph_has_op(f->graph, c->op), "the case for %s does not contain it",
              gv_opdefs[c->op].name);
    gv_tree *ref = NULL;
    GVT_OK(gv_fn_eval(f, in, &ref));
    size_t nref = gv_tree_num_leaves(ref);
    op_report *r = &report[c->op];
    r->cases++;
    r->dtypes |= 1u << c->in[c->op == GV_OP_SELECT ? 1 : 0].dtype; /* the data, not the condition */
    for (int no_opt = 0; no_opt <= 1; no_opt++)
        for (int threads = 1; threads <= 2; threads++)
            for (int donate = -1; donate < c->nin; donate++) {
                char mode[96];
                snprintf(mode, sizeof mode, "%s, %d thread%s, %s%s", no_opt ? "no_optimize" : "optimised",
                         threads, threads > 1 ? "s" : "", donate < 0 ? "no donation" : "donating ",
                         donate < 0 ? "" : names[donate]);
                const char *d[1] = {donate >= 0 ? names[donate] : NULL};
                gv_plan_options o = {.threads = threads, .no_optimize = no_opt, .donate = d,
                                     .ndonate = donate >= 0};
                gv_plan *p = gv_plan_compile(f, &o);
                if (!p) {
                    fail_case(c, mode, "compile: %s", gv_last_error());
                    continue;
                }
                if (no_opt && !graph_has_op(p->opt.graph, c->op))
                    fail_case(c, mode, "the unoptimised plan lost the op");
                gv_tree *work = GVT_NN(gv_tree_copy(in)); /* donation may overwrite it */
                gv_tree *out = GVT_NN(gv_plan_new_outputs(p));
                if (gv_plan_run(p, work, out) != GV_OK) {
                    fail_case(c, mode, "run: %s", gv_last_error());
                } else if (gv_tree_num_leaves(out) != nref) {
                    fail_case(c, mode, "%zu output leaves, the reference has %zu",
                              gv_tree_num_leaves(out), nref);
                } else {
                    gv_tensor **la, **lb;
                    size_t na, nb;
                    GVT_OK(gv_tree_flatten(out, &la, &na));
                    GVT_OK(gv_tree_flatten(ref, &lb, &nb));
                    for (size_t j = 0; j < na; j++) {
                        int64_t where = 0;
                        total_comparisons++, r->comparisons++;
                        if (!leaf_close(la[j], lb[j], c->tol, &where)) {
                            double a = NAN, b = NAN;
                            if (where >= 0) gv_tensor_get_flat(la[j], where, &a), gv_tensor_get_flat(lb[j], where, &b);
                            fail_case(c, mode, "output %zu element %lld: plan %.9g, reference %.9g", j,
                                      (long long)where, a, b);
                            break;
                        }
                    }
                    free(la), free(lb);
                }
                gv_tree_free(out), gv_tree_free(work), gv_plan_free(p);
            }
    gv_tree_free(ref), gv_fn_free(f), gv_tree_free(in);
    return true;
}

static const gv_dtype all_dtypes[] = {GV_F32, GV_F64, GV_BOOL, GV_U8, GV_U16, GV_U32,
                                      GV_U64, GV_I32, GV_I64};
enum { NDT = sizeof all_dtypes / sizeof *all_dtypes };

static operand opnd(gv_dtype dt, int rank, const int64_t *shape) {
    operand o = {GEN_SPECIAL, dt, rank, {0}, 0};
    for (int i = 0; i < rank; i++) o.shape[i] = shape[i];
    return o;
}
#define OPND(dt, ...) opnd(dt, GV_DIMS(__VA_ARGS__))

/* Run c once per dtype (operands whose dtype is `as` take the dtype under
 * test); the tolerance and its reason go into the report. */
static void each_dtype(dcase c, gv_dtype as, uint64_t seed) {
    for (int k = 0; k < NDT; k++) {
        dcase d = c;
        for (int q = 0; q < d.nin; q++)
            if (d.in[q].dtype == as && d.in[q].gen != GEN_INDEX && d.in[q].gen != GEN_KEY)
                d.in[q].dtype = all_dtypes[k];
        run_case(&d, seed + (uint64_t)k);
    }
}

/* sizes: one block, many blocks, and enough blocks for the threaded path */
static const int64_t size_shapes[3][4] = {{1, 7}, {3, 3, 5, 67}, {1, 64 * 256 + 37}};

/* ---- families ---- */

static gv_value op1(gv_opcode op, gv_value x) {
    switch (op) {
    case GV_OP_NEG: return gv_neg(x);
    case GV_OP_ABS: return gv_abs(x);
    case GV_OP_SIGN: return gv_sign(x);
    case GV_OP_EXP: return gv_exp(x);
    case GV_OP_LOG: return gv_log(x);
    case GV_OP_LOG1P: return gv_log1p(x);
    case GV_OP_EXPM1: return gv_expm1(x);
    case GV_OP_SQRT: return gv_sqrt(x);
    case GV_OP_RSQRT: return gv_rsqrt(x);
    case GV_OP_SQUARE: return gv_square(x);
    case GV_OP_TANH: return gv_tanh(x);
    case GV_OP_SIGMOID: return gv_sigmoid(x);
    case GV_OP_ERF: return gv_erf(x);
    case GV_OP_RELU: return gv_relu(x);
    case GV_OP_GELU_TANH: return gv_gelu(x, true);
    case GV_OP_GELU_ERF: return gv_gelu(x, false);
    case GV_OP_SILU: return gv_silu(x);
    case GV_OP_SOFTPLUS: return gv_softplus(x);
    case GV_OP_STOP_GRADIENT: return gv_stop_gradient(x);
    case GV_OP_PSUM: return gv_psum(x); /* one process here: the sum over one */
    default: return gv_invalid(x.graph);
    }
}

static gv_value op2(gv_opcode op, gv_value a, gv_value b) {
    switch (op) {
    case GV_OP_ADD: return gv_add(a, b);
    case GV_OP_SUB: return gv_sub(a, b);
    case GV_OP_MUL: return gv_mul(a, b);
    case GV_OP_DIV: return gv_div(a, b);
    case GV_OP_POW: return gv_pow(a, b);
    case GV_OP_MAX: return gv_maximum(a, b);
    case GV_OP_MIN: return gv_minimum(a, b);
    case GV_OP_EQ: return gv_eq(a, b);
    case GV_OP_NE: return gv_ne(a, b);
    case GV_OP_LT: return gv_lt(a, b);
    case GV_OP_LE: return gv_le(a, b);
    case GV_OP_GT: return gv_gt(a, b);
    case GV_OP_GE: return gv_ge(a, b);
    default: return gv_invalid(a.graph);
    }
}

/* iparam[0]: 0 plain, 1 in a chain with a broadcast operand, 2 feeding reductions */
static gv_value build_unary(gv_graph *g, const gv_value *x, const dcase *c, gv_tree *out) {
    if (c->iparam[0] == 1) return op1(c->op, gv_add(x[0], x[1]));
    gv_value y = op1(c->op, x[0]);
    if (c->iparam[0] == 2) { /* epilogues: y only feeds reductions */
        int r = gv_value_rank(y);
        gv_tree_insert_value(out, "max0", gv_max(y, (int[]){0}, 1, true));
        return gv_sum(y, (int[]){r - 1}, 1, false);
    }
    return y;
}

static void family_unary(gv_opcode op) {
    for (int s = 0; s < 3; s++) {
        const int64_t *sh = size_shapes[s];
        dcase c = {.op = op, .build = build_unary, .nin = 1};
        c.in[0] = opnd(GV_F32, (int)sh[0], sh + 1);
        each_dtype(c, GV_F32, 100 + (uint64_t)s);
        c.iparam[0] = 2;
        each_dtype(c, GV_F32, 200 + (uint64_t)s);
    }
    /* a chain: op(x0 + x1), x1 broadcast as rows repeated and as a period */
    const int64_t x1s[2][4] = {{3, 3, 5, 1}, {2, 5, 67}};
    for (int k = 0; k < 2; k++) {
        dcase c = {.op = op, .build = build_unary, .nin = 2, .iparam = {1}};
        c.in[0] = OPND(GV_F32, 3, 5, 67);
        c.in[1] = opnd(GV_F32, (int)x1s[k][0], x1s[k] + 1);
        each_dtype(c, GV_F32, 300 + (uint64_t)k);
    }
}

/* iparam[0]: 0 plain, 1 feeding a reduction over axis iparam[1] (keepdims iparam[2]) */
static gv_value build_binary(gv_graph *g, const gv_value *x, const dcase *c, gv_tree *out) {
    gv_value y = op2(c->op, x[0], x[1]);
    if (c->iparam[0] == 1) {
        if (gv_value_dtype(y) == GV_BOOL) y = gv_cast(y, GV_F32);
        return gv_sum(y, (int[]){c->iparam[1]}, 1, c->iparam[2]);
    }
    return y;
}

/* every way an operand broadcasts against [3, 5, 67]: each axis stretched,
 * trailing dims (a period), a scalar, and both operands stretched at once */
static const int64_t bcast_shapes[][2][5] = {
    {{3, 3, 5, 67}, {3, 3, 5, 67}}, {{3, 3, 5, 67}, {3, 1, 5, 67}}, {{3, 3, 5, 67}, {3, 3, 1, 67}},
    {{3, 3, 5, 67}, {3, 3, 5, 1}},  {{3, 3, 5, 67}, {1, 67}},       {{3, 3, 5, 67}, {2, 5, 1}},
    {{3, 3, 5, 67}, {0}},           {{3, 1, 5, 67}, {3, 3, 5, 67}}, {{0}, {3, 3, 5, 67}},
    {{4, 2, 1, 4, 1}, {4, 1, 3, 1, 5}}, {{1, 7}, {1, 7}}, {{1, 64 * 256 + 37}, {1, 64 * 256 + 37}},
    {{2, 130, 257}, {1, 257}}};

static void family_binary(gv_opcode op) {
    for (size_t k = 0; k < sizeof bcast_shapes / sizeof *bcast_shapes; k++) {
        dcase c = {.op = op, .build = build_binary, .nin = 2};
        c.in[0] = opnd(GV_F32, (int)bcast_shapes[k][0][0], bcast_shapes[k][0] + 1);
        c.in[1] = opnd(GV_F32, (int)bcast_shapes[k][1][0], bcast_shapes[k][1] + 1);
        each_dtype(c, GV_F32, 400 + k);
    }
    for (int axis = 0; axis < 3; axis++) { /* fused into reductions along every axis */
        dcase c = {.op = op, .build = build_binary, .nin = 2, .iparam = {1, axis, axis & 1}};
        c.in[0] = OPND(GV_F32, 3, 5, 67);
        c.in[1] = OPND(GV_F32, 5, 1);
        each_dtype(c, GV_F32, 500 + (uint64_t)axis);
    }
}

static gv_value build_select(gv_graph *g, const gv_value *x, const dcase *c, gv_tree *out) {
    return gv_select(x[0], x[1], x[2]);
}

static void family_select(gv_opcode op) {
    static const int64_t shapes[][3][5] = {
        {{3, 3, 5, 67}, {3, 3, 5, 67}, {3, 3, 5, 67}}, {{3, 3, 5, 1}, {3, 3, 5, 67}, {1, 67}},
        {{1, 67}, {3, 3, 1, 67}, {0}}, {{1, 64 * 256 + 37}, {1, 64 * 256 + 37}, {1, 64 * 256 + 37}},
        {{1, 7}, {0}, {1, 7}}};
    for (size_t k = 0; k < sizeof shapes / sizeof *shapes; k++) {
        dcase c = {.op = op, .build = build_select, .nin = 3};
        c.in[0] = opnd(GV_BOOL, (int)shapes[k][0][0], shapes[k][0] + 1);
        c.in[1] = opnd(GV_F32, (int)shapes[k][1][0], shapes[k][1] + 1);
        c.in[2] = opnd(GV_F32, (int)shapes[k][2][0], shapes[k][2] + 1);
        each_dtype(c, GV_F32, 600 + k);
    }
}

/* iparam[0] = target dtype; iparam[1] = 1: in a fused chain */
static gv_value build_cast(gv_graph *g, const gv_value *x, const dcase *c, gv_tree *out) {
    gv_value y = gv_cast(x[0], (gv_dtype)c->iparam[0]);
    if (c->iparam[1]) return gv_mul(y, gv_cast(gv_ones_like(x[0]), (gv_dtype)c->iparam[0]));
    return y;
}

static void family_cast(gv_opcode op) {
    for (int to = 0; to < NDT; to++)
        for (int s = 0; s < 3; s++)
            for (int chain = 0; chain <= 1; chain++) {
                const int64_t *sh = size_shapes[s];
                dcase c = {.op = op, .build = build_cast, .nin = 1, .iparam = {all_dtypes[to], chain}};
                c.in[0] = opnd(GV_F32, (int)sh[0], sh + 1);
                for (int k = 0; k < NDT; k++) { /* a cast to its own dtype is not a cast */
                    if (all_dtypes[k] == all_dtypes[to]) continue;
                    dcase d = c;
                    d.in[0].dtype = all_dtypes[k];
                    run_case(&d, 700 + (uint64_t)(to * 10 + k));
                }
            }
}

/* creation ops: iparam[0] selects the value or axis */
static gv_value build_const(gv_graph *g, const gv_value *x, const dcase *c, gv_tree *out) {
    operand o = c->in[0];
    gv_tensor *t = make_operand(&o, 77);
    gv_value k = gv_constant(g, t);
    gv_tensor_free(t);
    return gv_add(x[0], k);
}

static gv_value build_full(gv_graph *g, const gv_value *x, const dcase *c, gv_tree *out) {
    gv_dtype dt = gv_value_dtype(x[0]);
    gv_value f = gv_full(g, dt, gv_value_rank(x[0]), gv_value_shape(x[0]), c->fparam);
    gv_tree_insert_value(out, "full", f); /* a constant as an output too */
    gv_value small = gv_full(g, dt, 1, &gv_value_shape(x[0])[gv_value_rank(x[0]) - 1], c->fparam);
    gv_tree_insert_value(out, "small", small);
    return dt == GV_BOOL ? gv_select(x[0], f, small) : gv_add(x[0], small);
}

static gv_value build_iota(gv_graph *g, const gv_value *x, const dcase *c, gv_tree *out) {
    gv_dtype dt = gv_value_dtype(x[0]);
    return gv_iota(g, dt, gv_value_rank(x[0]), gv_value_shape(x[0]), c->iparam[0]);
}

static gv_value build_input(gv_graph *g, const gv_value *x, const dcase *c, gv_tree *out) {
    gv_tree_insert_value(out, "again", x[0]); /* one input, two outputs */
    return x[0];
}

static void family_create(gv_opcode op) {
    static const double values[] = {NAN, -0.0, INFINITY, -INFINITY, 1e-40, 3.4e38, 1e300, -7.0, 0.0, 1.0};
    for (int s = 0; s < 3; s++) {
        const int64_t *sh = size_shapes[s];
        dcase c = {.op = op, .nin = 1};
        c.in[0] = opnd(GV_F32, (int)sh[0], sh + 1);
        switch (op) {
        case GV_OP_INPUT: c.build = build_input; each_dtype(c, GV_F32, 800); break;
        case GV_OP_CONST: c.build = build_const; each_dtype(c, GV_F32, 810); break;
        case GV_OP_FULL:
            c.build = build_full;
            for (size_t v = 0; v < sizeof values / sizeof *values; v++) {
                c.fparam = values[v];
                each_dtype(c, GV_F32, 820 + v);
            }
            break;
        default: /* IOTA, along every axis */
            c.build = build_iota;
            for (int a = 0; a < (int)sh[0]; a++) {
                c.iparam[0] = a;
                each_dtype(c, GV_F32, 830);
            }
        }
    }
}

/* matmul: iparam[0] = 1: the left operand is transposed (folded into a GEMM flag) */
static gv_value build_matmul(gv_graph *g, const gv_value *x, const dcase *c, gv_tree *out) {
    gv_value a = x[0];
    if (c->iparam[0]) {
        int r = gv_value_rank(a), perm[4];
        for (int i = 0; i < r; i++) perm[i] = i;
        perm[r - 1] = r - 2, perm[r - 2] = r - 1;
        a = gv_transpose(a, perm);
    }
    return gv_matmul(a, x[1]);
}

static void family_matmul(gv_opcode op) {
    static const int64_t shapes[][2][5] = {
        {{2, 4, 5}, {2, 5, 6}},         {{4, 2, 3, 4, 5}, {2, 5, 6}}, {{3, 3, 4, 5}, {3, 3, 5, 6}},
        {{3, 1, 4, 5}, {3, 2, 5, 6}},   {{2, 1, 9}, {2, 9, 1}},       {{2, 64, 256}, {2, 256, 128}},
        {{3, 2, 5, 4}, {2, 4, 3}}};
    for (size_t k = 0; k < sizeof shapes / sizeof *shapes; k++) {
        dcase c = {.op = op, .build = build_matmul, .nin = 2};
        c.in[0] = opnd(GV_F32, (int)shapes[k][0][0], shapes[k][0] + 1);
        c.in[1] = opnd(GV_F32, (int)shapes[k][1][0], shapes[k][1] + 1);
        c.in[0].gen = c.in[1].gen = GEN_TAME;
        if (k == 6) { /* [2,5,4]^T: [2,4,5] @ [4,3] */
            c.in[0] = OPND(GV_F32, 2, 5, 4);
            c.in[1] = OPND(GV_F32, 5, 3);
            c.in[0].gen = c.in[1].gen = GEN_TAME;
            c.iparam[0] = 1;
        }
        /* float32 products go to the BLAS, which sums in its own (blocked,
         * fused multiply-add) order: within 1e-5 relative of the reference's
         * loop; every other dtype runs the reference kernel itself */
        for (int d = 0; d < NDT; d++) {
            dcase e = c;
            e.in[0].dtype = e.in[1].dtype = all_dtypes[d];
            e.tol = all_dtypes[d] == GV_F32 ? 1e-5 : 0;
            run_case(&e, 900 + k);
        }
    }
    report[op].tol = 1e-5;
    report[op].why = "float32 only: the BLAS's summation order (blocked, FMA) is not the loop's";
}

/* conv_general_dilated: iparam[0] indexes conv_cases (1-d and 2-d, padding
 * with negative crops, strides, both dilations, groups, depthwise) */
typedef struct conv_case {
    int rank;
    int64_t x[4], w[4];
    int64_t stride[2], pad[4], ld[2], rd[2];
    int groups;
} conv_case;
static const conv_case conv_cases[] = {
    {3, {2, 7, 3}, {3, 3, 4}, {1}, {1, 1}, {1}, {1}, 1},
    {3, {2, 9, 4}, {2, 2, 6}, {2}, {-1, 2}, {2}, {3}, 2},
    {4, {2, 5, 6, 4}, {3, 2, 4, 6}, {2, 1}, {1, 0, 2, 1}, {1, 1}, {1, 2}, 1},
    {4, {1, 6, 6, 6}, {3, 3, 2, 9}, {1, 2}, {-1, 1, 0, 0}, {2, 1}, {1, 1}, 3},
    {4, {2, 4, 4, 3}, {3, 3, 1, 3}, {1, 1}, {1, 1, 1, 1}, {1, 1}, {1, 1}, 3}, /* out shaped as x */
    {4, {2, 16, 16, 8}, {3, 3, 8, 16}, {1, 1}, {1, 1, 1, 1}, {1, 1}, {1, 1}, 1},
    {4, {1, 32, 32, 16}, {3, 3, 16, 64}, {1, 1}, {1, 1, 1, 1}, {1, 1}, {1, 1}, 1}, /* GEMM split on 2 threads */
};

static gv_value build_conv(gv_graph *g, const gv_value *x, const dcase *c, gv_tree *out) {
    (void)g, (void)out;
    const conv_case *k = &conv_cases[c->iparam[0]];
    return gv_conv_general_dilated(x[0], x[1], k->stride, k->pad, k->ld, k->rd, k->groups);
}

static void family_conv(gv_opcode op) {
    for (int k = 0; k < (int)(sizeof conv_cases / sizeof *conv_cases); k++) {
        dcase c = {.op = op, .build = build_conv, .nin = 2, .iparam = {k}};
        c.in[0] = opnd(GV_F32, conv_cases[k].rank, conv_cases[k].x);
        c.in[1] = opnd(GV_F32, conv_cases[k].rank, conv_cases[k].w);
        c.in[0].gen = c.in[1].gen = GEN_TAME;
        /* float32 convs run as im2col + the BLAS GEMM (src/kernels/conv.c),
         * which sums the same terms in its own order, as for matmul; float64
         * runs the reference kernel itself */
        for (int d = 0; d < NDT; d++) {
            dcase e = c;
            e.in[0].dtype = e.in[1].dtype = all_dtypes[d];
            e.tol = all_dtypes[d] == GV_F32 ? 1e-5 : 0;
            run_case(&e, 950 + (uint64_t)k);
        }
    }
    report[op].tol = 1e-5;
    report[op].why = "float32 only: im2col + the BLAS GEMM sums in its own order, not the loop's";
}

/* reductions: iparam = axes bitmask, keepdims, fused (reduce a chain) */
static gv_value build_reduce(gv_graph *g, const gv_value *x, const dcase *c, gv_tree *out) {
    int axes[4], n = 0, r = gv_value_rank(x[0]);
    for (int a = 0; a < r; a++)
        if (c->iparam[0] & (1 << a)) axes[n++] = a;
    gv_value v = x[0];
    if (c->iparam[2]) v = gv_mul(gv_add(v, v), v); /* a chain whose value only the reduction reads */
    bool keep = c->iparam[1];
    switch (c->op) {
    case GV_OP_REDUCE_SUM: return gv_sum(v, axes, n, keep);
    case GV_OP_REDUCE_MAX: return gv_max(v, axes, n, keep);
    case GV_OP_REDUCE_MIN: return gv_min(v, axes, n, keep);
    default: return gv_argmax(v, axes[0], keep);
    }
}

static void family_reduce(gv_opcode op) {
    static const int64_t shapes[][4] = {{3, 3, 5, 67}, {1, 7}, {2, 130, 257}, {1, 64 * 256 + 37}};
    for (size_t s = 0; s < sizeof shapes / sizeof *shapes; s++) {
        int r = (int)shapes[s][0];
        for (int mask = 1; mask < (1 << r); mask++) {
            if (op == GV_OP_ARGMAX && __builtin_popcount((unsigned)mask) != 1) continue;
            for (int keep = 0; keep <= 1; keep++)
                for (int fused = 0; fused <= 1; fused++) {
                    dcase c = {.op = op, .build = build_reduce, .nin = 1, .iparam = {mask, keep, fused}};
                    c.in[0] = opnd(GV_F32, r, shapes[s] + 1);
                    each_dtype(c, GV_F32, 1000 + s * 100 + (uint64_t)mask);
                }
        }
    }
}

/* shape ops; iparam[0] selects the variant */
static gv_value build_shape(gv_graph *g, const gv_value *x, const dcase *c, gv_tree *out) {
    int v = c->iparam[0];
    switch (c->op) {
    case GV_OP_RESHAPE: /* as an output (a copy) and inside a chain (an alias) */
        gv_tree_insert_value(out, "chain", gv_add(gv_reshape(x[0], GV_DIMS(15, 67)), gv_reshape(x[0], GV_DIMS(15, 67))));
        return gv_reshape(x[0], GV_DIMS(5, 3, 67));
    case GV_OP_TRANSPOSE: {
        static const int perms[6][3] = {{0, 1, 2}, {0, 2, 1}, {1, 0, 2}, {1, 2, 0}, {2, 0, 1}, {2, 1, 0}};
        return gv_transpose(x[0], perms[v]);
    }
    case GV_OP_BROADCAST: {
        static const int64_t to[3][3] = {{3, 5, 67}, {4, 3, 5}, {2, 2, 1}};
        (void)to;
        return v == 0 ? gv_broadcast_to(x[0], GV_DIMS(4, 3, 5, 67))
             : gv_add(gv_broadcast_to(x[0], GV_DIMS(2, 3, 5, 67)), gv_broadcast_to(x[0], GV_DIMS(2, 3, 5, 67)));
    }
    case GV_OP_SLICE:
        if (v == 0) return gv_slice(x[0], (int64_t[]){1, 0, 3}, (int64_t[]){3, 5, 60}, (int64_t[]){1, 2, 5});
        return gv_slice_axis(x[0], v, 1, -1);
    case GV_OP_CONCAT: {
        gv_value xs[3] = {x[0], gv_neg(x[0]), x[0]};
        return gv_concatenate(xs, 3, v);
    }
    case GV_OP_PAD: {
        int64_t lo[3] = {1, 0, 2}, hi[3] = {0, 2, v == 0 ? 1 : -3};
        return gv_pad(x[0], lo, hi, c->fparam);
    }
    default: return gv_invalid(g);
    }
}

static void family_shape(gv_opcode op) {
    int variants = op == GV_OP_TRANSPOSE ? 6 : op == GV_OP_BROADCAST ? 2 : op == GV_OP_SLICE ? 3
                 : op == GV_OP_CONCAT ? 3 : op == GV_OP_PAD ? 2 : 1;
    for (int v = op == GV_OP_TRANSPOSE; v < variants; v++) { /* (not the identity perm) */
        dcase c = {.op = op, .build = build_shape, .nin = 1, .iparam = {v}};
        c.in[0] = OPND(GV_F32, 3, 5, 67);
        if (op == GV_OP_BROADCAST) c.in[0] = v == 0 ? OPND(GV_F32, 3, 1, 67) : OPND(GV_F32, 5, 1);
        c.fparam = v == 0 ? NAN : -0.0;
        each_dtype(c, GV_F32, 1500 + (uint64_t)v);
    }
}

/* gathers and their scatters (the scatters are take's and take_along's VJPs) */
static gv_value build_gather(gv_graph *g, const gv_value *x, const dcase *c, gv_tree *out) {
    int axis = c->iparam[0];
    switch (c->op) {
    case GV_OP_TAKE: return gv_take(x[0], x[1], axis);
    case GV_OP_TAKE_ALONG: return gv_take_along_axis(x[0], x[1], axis);
    default: {
        gv_value xs[3] = {x[0], x[1], x[2]};
        gv_node_spec s = {.op = c->op, .nin = 3, .in = xs, .iattr = {axis, 0}};
        return gv_emit(g, &s);
    }
    }
}

static void family_gather(gv_opcode op) {
    static const gv_dtype idx_dtypes[] = {GV_I32, GV_I64, GV_U8, GV_U32};
    for (int axis = 0; axis < 3; axis++)
        for (size_t q = 0; q < sizeof idx_dtypes / sizeof *idx_dtypes; q++) {
            int64_t xs[3] = {3, 5, 67};
            dcase c = {.op = op, .build = build_gather, .nin = 2, .iparam = {axis}};
            c.in[0] = opnd(GV_F32, 3, xs);
            int64_t is[3] = {3, 5, 67};
            is[axis] = 4;
            if (op == GV_OP_TAKE || op == GV_OP_SCATTER_ADD_TAKE) {
                c.in[1] = OPND(idx_dtypes[q], 2, 3);
                if (op == GV_OP_SCATTER_ADD_TAKE) { /* upd: x's shape with axis -> idx's dims */
                    int64_t us[4], n = 0;
                    for (int a = 0; a < 3; a++) {
                        if (a == axis) us[n++] = 2, us[n++] = 3;
                        else us[n++] = xs[a];
                    }
                    c.in[2] = opnd(GV_F32, 4, us);
                    c.nin = 3;
                }
            } else {
                c.in[1] = opnd(idx_dtypes[q], 3, is);
                if (op == GV_OP_SCATTER_ADD_ALONG) {
                    c.in[2] = opnd(GV_F32, 3, is);
                    c.nin = 3;
                }
            }
            c.in[1].gen = GEN_INDEX;
            c.in[1].limit = xs[axis];
            each_dtype(c, GV_F32, 1600 + (uint64_t)(axis * 10) + q);
        }
}

/* random ops: key uint32[2]; iparam[0] = the impl */
static gv_value build_random(gv_graph *g, const gv_value *x, const dcase *c, gv_tree *out) {
    gv_prng_impl impl = (gv_prng_impl)c->iparam[0];
    int64_t n = c->iparam[1];
    switch (c->op) {
    case GV_OP_RANDOM_SPLIT: return gv_random_split(impl, x[0], n);
    case GV_OP_RANDOM_FOLD_IN: return gv_random_fold_in(x[0], (uint32_t)n * 2654435761u);
    case GV_OP_RANDOM_BITS: {
        gv_node_spec s = {.op = GV_OP_RANDOM_BITS, .nin = 1, .in = x, .iattr = {impl, 0},
                          .rank = 1, .shape = &n};
        return gv_emit(g, &s);
    }
    case GV_OP_RANDOM_UNIFORM: return gv_random_uniform(impl, x[0], 1, &n, -1.5f, 2.0f);
    case GV_OP_RANDOM_NORMAL: return gv_random_normal(impl, x[0], 1, &n);
    case GV_OP_RANDOM_TRUNC_NORMAL: return gv_random_truncated_normal(impl, x[0], -2.0f, 1.0f, 1, &n);
    default: return gv_random_bernoulli(impl, x[0], 0.3f, 1, &n);
    }
}

static void family_random(gv_opcode op) {
    for (int impl = GV_PRNG_PARTITIONABLE; impl <= GV_PRNG_LEGACY; impl++)
        for (int n = 1; n <= 1005; n += 501) {
            dcase c = {.op = op, .build = build_random, .nin = 1, .iparam = {impl, n}};
            c.in[0] = OPND(GV_U32, 2);
            c.in[0].gen = GEN_KEY;
            run_case(&c, 1700 + (uint64_t)n);
        }
}

/* ---- the registry walk ---- */

typedef void (*family_fn)(gv_opcode op);

static family_fn family_of(gv_opcode op) {
    switch (op) {
    case GV_OP_INPUT: case GV_OP_CONST: case GV_OP_FULL: case GV_OP_IOTA: return family_create;
    case GV_OP_NEG: case GV_OP_ABS: case GV_OP_SIGN: case GV_OP_EXP: case GV_OP_LOG:
    case GV_OP_LOG1P: case GV_OP_EXPM1: case GV_OP_SQRT: case GV_OP_RSQRT: case GV_OP_SQUARE:
    case GV_OP_TANH: case GV_OP_SIGMOID: case GV_OP_ERF: case GV_OP_RELU: case GV_OP_GELU_TANH:
    case GV_OP_GELU_ERF: case GV_OP_SILU: case GV_OP_SOFTPLUS: case GV_OP_STOP_GRADIENT:
    case GV_OP_PSUM:
        return family_unary;
    case GV_OP_CAST: return family_cast;
    case GV_OP_ADD: case GV_OP_SUB: case GV_OP_MUL: case GV_OP_DIV: case GV_OP_POW:
    case GV_OP_MAX: case GV_OP_MIN: case GV_OP_EQ: case GV_OP_NE: case GV_OP_LT: case GV_OP_LE:
    case GV_OP_GT: case GV_OP_GE:
        return family_binary;
    case GV_OP_SELECT: return family_select;
    case GV_OP_MATMUL: return family_matmul;
    case GV_OP_CONV: return family_conv;
    case GV_OP_REDUCE_SUM: case GV_OP_REDUCE_MAX: case GV_OP_REDUCE_MIN: case GV_OP_ARGMAX:
        return family_reduce;
    case GV_OP_RESHAPE: case GV_OP_TRANSPOSE: case GV_OP_BROADCAST: case GV_OP_SLICE:
    case GV_OP_CONCAT: case GV_OP_PAD:
        return family_shape;
    case GV_OP_TAKE: case GV_OP_TAKE_ALONG: case GV_OP_SCATTER_ADD_ALONG: case GV_OP_SCATTER_ADD_TAKE:
        return family_gather;
    case GV_OP_RANDOM_SPLIT: case GV_OP_RANDOM_FOLD_IN: case GV_OP_RANDOM_BITS:
    case GV_OP_RANDOM_UNIFORM: case GV_OP_RANDOM_NORMAL: case GV_OP_RANDOM_TRUNC_NORMAL:
    case GV_OP_RANDOM_BERNOULLI:
        return family_random;
    default: return NULL; /* a new op: give it a family above */
    }
}

/* GROVE_DIFF_OPS=name,name restricts the walk (for debugging one op). */
static bool selected(const char *name) {
    const char *sel = getenv("GROVE_DIFF_OPS");
    if (!sel || !*sel) return true;
    size_t n = strlen(name);
    for (const char *p = sel; (p = strstr(p, name)); p += n)
        if ((p == sel || p[-1] == ',') && (p[n] == ',' || p[n] == '\0')) return true;
    return false;
}

Test(differential, every_primitive_compiled_equals_reference, .timeout = 900) {
    int covered = 0;
    for (int op = 0; op < GV_OP_COUNT; op++) {
        cr_assert_not_null(gv_opdefs[op].name, "opcode %d has no registry row", op);
        family_fn fam = family_of((gv_opcode)op);
        cr_assert_not_null(fam, "primitive %s has no differential case: add it to family_of()",
                           gv_opdefs[op].name);
        if (!selected(gv_opdefs[op].name)) continue;
        fam((gv_opcode)op);
        cr_assert_gt(report[op].cases, 0, "primitive %s: no dtype compiled", gv_opdefs[op].name);
        covered++;
    }
    fprintf(stderr, "differential: %d of %d primitives, %d leaf comparisons\n", covered,
            (int)GV_OP_COUNT, total_comparisons);
    for (int op = 0; op < GV_OP_COUNT; op++) {
        if (!report[op].cases) continue;
        char dts[128] = "";
        for (int k = 0; k < NDT; k++)
            if (report[op].dtypes & (1u << all_dtypes[k]))
                snprintf(dts + strlen(dts), sizeof dts - strlen(dts), "%s%s", *dts ? " " : "",
                         gv_dtype_name(all_dtypes[k]));
        if (report[op].tol > 0)
            fprintf(stderr, "  %-24s %4d cases %6d comparisons  [%s]  within %g: %s\n", gv_opdefs[op].name,
                    report[op].cases, report[op].comparisons, dts, report[op].tol, report[op].why);
        else
            fprintf(stderr, "  %-24s %4d cases %6d comparisons  [%s]  bit for bit\n", gv_opdefs[op].name,
                    report[op].cases, report[op].comparisons, dts);
    }
    cr_assert_eq(failures, 0, "%d compiled results differ from the reference; first: %s", failures,
                 first_failure);
}
