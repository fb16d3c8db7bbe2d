/* Random graphs decoded from bytes (graph_gen.h). The first bytes choose the
 * sizes (one block, or enough elements for the threaded fused path), the
 * thread count, the optimiser switch and which inputs are donated; then each
 * op takes four bytes: what to do and which earlier values to use. Values
 * are kept in a tame range where an op would overflow on random data;
 * constants include NaN, infinities and -0 on purpose.
 *
 * The plan must give the reference's bits (docs/engine.md), and it does for
 * every op grove computes itself. A float32 matmul is the exception: the plan
 * calls the BLAS, whose summation order is its own and changes with the
 * kernel set it picks for the CPU (OpenBLAS's Prescott, Haswell and SkylakeX
 * kernels all give different last bits), and ops after it can magnify that
 * or flip a comparison. So the matmuls drawn here take operands on a coarse
 * grid (on_grid()) on which every product and partial sum is exact: any
 * order gives the same result and the forward graphs are compared bit for
 * bit. Their VJPs multiply cotangents, which no grid can hold; only the
 * gradients that pass through them get the caller's tolerance. */
#include "graph_gen.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static uint8_t byte(gvt_stream *s) {
    if (s->data) return s->at < s->size ? s->data[s->at++] : 0;
    s->seed ^= s->seed << 13, s->seed ^= s->seed >> 7, s->seed ^= s->seed << 17;
    return (uint8_t)(s->seed >> 32);
}

enum { MAX_OPS = 40, POOL = 4 + MAX_OPS };

typedef struct recipe {
    int nops;
    uint8_t op[MAX_OPS][4];
    uint8_t outputs;   /* bit k: input k gets an output at its own path */
    bool loss_only;
    bool small_matmul;
} recipe;

static const char *names[4] = {"a", "b", "c", "d"};
static const double specials[] = {NAN, INFINITY, -INFINITY, -0.0, 1e-40, 3.0e38, 0.5, 2.0};

static gv_value tame(gv_value x) { return gv_tanh(x); }

/* tanh(x) rounded to a multiple of 1/8: 8 tanh(x) + 1.5*2^23 lies in
 * [2^23, 2^24), where float32's spacing is 1, so the add rounds it to an
 * integer and the subtraction is exact. NaN stays NaN. */
static gv_value on_grid(gv_value x) {
    gv_value t = gv_add_scalar(gv_mul_scalar(gv_tanh(x), 8.0), 12582912.0);
    return gv_mul_scalar(gv_add_scalar(t, -12582912.0), 0.125);
}

static gv_value draw(const recipe *r, const uint8_t *o, gv_value *pool, int n, bool *matmul) {
    gv_value a = pool[o[1] % n], b = pool[o[2] % n];
    int ra = gv_value_rank(a);
    /* reductions keep their dims, so every value still broadcasts against
     * every other; with the top bit they reduce everything to a scalar */
    int axis = ra > 0 ? o[3] % ra : 0;
    const int *axes = o[3] & 0x80 ? NULL : &axis;
    int naxes = o[3] & 0x80 ? 0 : 1;
    bool keep = !(o[3] & 0x80);
    double k = specials[o[3] % (sizeof specials / sizeof *specials)];
    switch (o[0] % 26) {
    case 0: return gv_add(a, b);
    case 1: return gv_sub(a, b);
    case 2: return gv_mul(a, b);
    case 3: return gv_div(a, gv_add_scalar(gv_abs(b), 1.0));
    case 4: return gv_maximum(a, b);
    case 5: return gv_minimum(a, gv_mul_scalar(b, 0.5));
    case 6: return gv_exp(tame(a));
    case 7: return gv_sigmoid(a);
    case 8: return gv_relu(gv_sub(a, b));
    case 9: return gv_select(gv_gt(a, b), a, gv_square(b));
    case 10: return gv_sqrt(gv_add_scalar(gv_square(a), 1.0));
    case 11: return ra > 0 ? gv_sum(a, axes, naxes, keep) : gv_neg(a);
    case 12: return ra > 0 ? gv_mean(a, axes, naxes, keep) : gv_abs(a);
    case 13: return ra > 0 ? gv_max(gv_mul(a, tame(b)), axes, naxes, keep) : gv_tanh(a); /* an epilogue */
    case 14: return ra > 0 ? gv_min(gv_exp(tame(a)), axes, naxes, keep) : gv_erf(a);
    case 15: return ra >= 2 ? gv_transpose(gv_transpose(a, NULL), NULL) : gv_tanh(a);
    case 16: {
        /* a @ M, M = m^T (m + 1/4) from b broadcast to [d, d]: batch
         * broadcasting and a folded transpose. Exact in any summation order
         * (see the top): m and a are multiples of 1/8 in [-1, 1], so M's
         * entries are multiples of 1/64 with |M| <= 1.25 d, and a @ M sums
         * d multiples of 2^-9 with partial sums below 1.25 d^2 < 2^15 for
         * d <= 130 (the largest last dim here): at most 24 bits, exact. */
        int64_t d = ra >= 2 ? gv_value_shape(a)[ra - 1] : 0;
        if (ra < 2 || (r->small_matmul && d > 16)) return gv_log1p(gv_square(a));
        /* 8 mean(b) spreads the grid's values (mean(b) is mostly small) */
        gv_value m = on_grid(gv_broadcast_to(gv_mul_scalar(gv_mean(b, NULL, 0, false), 8.0),
                                             GV_DIMS(d, d)));
        *matmul = true;
        return gv_matmul(on_grid(a),
                         gv_matmul(gv_transpose(m, NULL), gv_add(m, gv_full_like(m, 0.25))));
    }
    case 17: return gv_add(a, gv_full_like(a, k));                        /* special constants */
    case 18: return gv_select(gv_gt(a, gv_zeros_like(a)), a, gv_full_like(a, k));
    case 19: return gv_mul(gv_stop_gradient(a), b);
    case 20: return gv_gelu(a, o[3] & 1);
    case 21: return gv_softplus(gv_mul_scalar(a, 10.0));
    case 22: return ra > 0 ? gv_logsumexp(a, axes, naxes, keep) : gv_silu(a);
    case 23: return gv_pow(gv_add_scalar(gv_abs(a), 0.5), tame(b));
    case 24: return gv_cast(gv_lt(a, b), GV_F32);
    default: return gv_mul_scalar(gv_add_scalar(a, 1.0), 1.0); /* simplifiable */
    }
}

typedef struct trace_ctx {
    const recipe *r;
    uint8_t under_matmul; /* out: bit k: input k reaches a matmul operand */
} trace_ctx;

static gv_tree *trace(gv_graph *g, const gv_tree *in, void *ud) {
    trace_ctx *tc = ud;
    const recipe *r = tc->r;
    gv_value pool[POOL];
    uint8_t from[POOL]; /* bit k: the value may depend on input k */
    int n = 0;
    for (int k = 0; k < 4; k++) from[n] = 1u << k, pool[n++] = gv_tree_get_value(in, names[k]);
    for (int k = 0; k < r->nops; k++) {
        const uint8_t *o = r->op[k];
        bool matmul = false;
        gv_value v = draw(r, o, pool, n, &matmul);
        if (!gv_value_ok(v)) return NULL; /* the trace's error stands */
        from[n] = from[o[1] % n] | from[o[2] % n];
        if (matmul) tc->under_matmul |= from[n];
        pool[n++] = v;
    }
    gv_tree *out = gv_tree_new_dict();
    if (!out) return NULL;
    gv_value loss = gv_scalar(g, GV_F32, 0.0);
    for (int k = 4; k < n; k++) loss = gv_add(loss, gv_mean(pool[k], NULL, 0, false));
    gv_status st = gv_tree_insert_value(out, "loss", loss);
    if (r->loss_only) { /* the loss as the whole output, for value_and_grad */
        gv_tree *l = st == GV_OK ? gv_tree_pop(out, "loss") : NULL;
        gv_tree_free(out);
        return l;
    }
    st = gv_tree_insert_value(out, "last", pool[n - 1]);
    /* state-like outputs at the inputs' own paths: a donated input's buffer
     * is then written in place (an update, or the input passed through) */
    for (int k = 0; k < 4 && st == GV_OK; k++) {
        if (!(r->outputs & (1u << k))) continue;
        gv_value x = pool[k], v = pool[n - 1 - k % (n > 4 ? n - 4 : 1)];
        gv_value upd = (r->outputs >> 4) & (1u << k) ? x
                     : gv_sub(x, gv_mul_scalar(gv_add(x, gv_mean(v, NULL, 0, false)), 0.1));
        st = gv_tree_insert_value(out, names[k], upd);
    }
    if (st != GV_OK) {
        gv_tree_free(out);
        return NULL;
    }
    return out;
}

static gv_status normal_input(gv_tree *in, const char *name, uint32_t seed, int rank,
                              const int64_t *shape) {
    gv_tensor *t = gv_random_normal_eager(GV_PRNG_DEFAULT, gv_prng_key(seed), rank, shape);
    if (!t) return gv_last_status();
    gv_status st = gv_tree_insert_tensor(in, name, t);
    gv_tensor_free(t);
    return st;
}

gv_status gvt_graph_case_make(gvt_stream *s, bool loss_only, gvt_graph_case *c) {
    memset(c, 0, sizeof *c);
    uint8_t mode = byte(s), don = byte(s), outs = byte(s), nops = byte(s);
    bool large = mode & 1; /* 2*64*130 elements: the fused kernels' threaded path */
    c->opts.threads = 1 + ((mode >> 1) & 1);
    c->opts.no_optimize = (mode >> 2) & 1;
    int64_t d0 = large ? 2 : 3, d1 = large ? 64 : 4, d2 = large ? 130 : 5;
    c->inputs = gv_tree_new_dict();
    if (!c->inputs) return gv_last_status();
    uint32_t seed = (uint32_t)byte(s) * 16;
    gv_status st = normal_input(c->inputs, "a", seed, GV_DIMS(d0, d1, d2));
    if (st == GV_OK) st = normal_input(c->inputs, "b", seed + 1, GV_DIMS(d1, 1));
    if (st == GV_OK) st = normal_input(c->inputs, "c", seed + 2, GV_DIMS(d2));
    if (st == GV_OK) st = normal_input(c->inputs, "d", seed + 3, GV_DIMS(d0, 1, d2));
    if (st != GV_OK) return st;
    recipe r = {.nops = 4 + nops % (MAX_OPS - 4), .outputs = outs, .loss_only = loss_only,
                .small_matmul = s->small_matmul};
    for (int k = 0; k < r.nops; k++)
        for (int q = 0; q < 4; q++) r.op[k][q] = byte(s);
    int nd = 0;
    for (int k = 0; k < 4; k++)
        if (don & (1u << k)) c->donate[nd++] = names[k];
    c->opts.donate = c->donate;
    c->opts.ndonate = nd;
    c->ops = r.nops;
    c->loss_only = loss_only;
    trace_ctx tc = {&r, 0};
    c->fn = gv_trace(trace, &tc, c->inputs);
    c->under_matmul = tc.under_matmul;
    return c->fn ? GV_OK : gv_last_status();
}

void gvt_graph_case_free(gvt_graph_case *c) {
    gv_fn_free(c->fn);
    gv_tree_free(c->inputs);
    memset(c, 0, sizeof *c);
}

/* Leaf by leaf: the reference's leaves in loose[0..nloose) within rel
 * relative, NaN and infinities exact; all others exactly equal (any NaN
 * matches any NaN, -0 matches +0). */
static int compare(const gv_tree *out, const gv_tree *ref, const gv_tensor *const *loose,
                   int nloose, double rel, char *why, size_t len) {
    gv_tensor **la = NULL, **lb = NULL;
    size_t na = 0, nb = 0;
    if (gv_tree_flatten(out, &la, &na) != GV_OK || gv_tree_flatten(ref, &lb, &nb) != GV_OK) {
        free(la);
        snprintf(why, len, "flatten: %s", gv_last_error());
        return -1;
    }
    int bad = 0;
    if (na != nb) {
        snprintf(why, len, "the plan gives %zu output leaves, the reference %zu", na, nb);
        bad = 1;
    }
    for (size_t i = 0; i < na && !bad; i++) {
        if (!gv_tensor_same_shape(la[i], lb[i]) || gv_tensor_dtype(la[i]) != gv_tensor_dtype(lb[i])) {
            snprintf(why, len, "output leaf %zu: shape or dtype differs", i);
            bad = 1;
        }
        double tol = 0.0;
        for (int q = 0; q < nloose; q++)
            if (lb[i] == loose[q]) tol = rel;
        for (int64_t k = 0; k < gv_tensor_size(lb[i]) && !bad; k++) {
            double x, y;
            gv_tensor_get_flat(la[i], k, &x), gv_tensor_get_flat(lb[i], k, &y);
            bool ok = isnan(y) ? isnan(x)
                    : isinf(y) || tol == 0 ? x == y
                    : fabs(x - y) <= tol * (1 + fabs(y));
            if (!ok) {
                snprintf(why, len, "output leaf %zu element %lld: plan %.9g, reference %.9g (%s)",
                         i, (long long)k, x, y,
                         tol == 0 ? "must be equal" : "beyond the tolerance");
                bad = 1;
            }
        }
    }
    free(la), free(lb);
    return bad;
}

int gvt_graph_case_check(const gvt_graph_case *c, double rel, char *why, size_t len) {
    gv_tree *ref = NULL, *work = NULL, *out = NULL;
    gv_plan *p = NULL;
    int res = -1;
    if (gv_fn_eval(c->fn, c->inputs, &ref) != GV_OK) {
        snprintf(why, len, "eval: %s", gv_last_error());
        goto done;
    }
    if (!(p = gv_plan_compile(c->fn, &c->opts))) {
        snprintf(why, len, "compile: %s", gv_last_error());
        goto done;
    }
    if (!(work = gv_tree_copy(c->inputs)) || !(out = gv_plan_new_outputs(p))) {
        snprintf(why, len, "%s", gv_last_error());
        goto done;
    }
    if (gv_plan_run(p, work, out) != GV_OK) {
        snprintf(why, len, "run: %s", gv_last_error());
        goto done;
    }
    /* Only a gradient can differ: the (loss, grads) of value_and_grad, whose
     * leaves are the loss and then the grads of a, b, c, d. The loss and the
     * grads of inputs that reach no matmul never meet a BLAS result that
     * depends on the BLAS's order (see the top). */
    const gv_tensor *loose[4];
    int nloose = 0;
    for (int k = 0; k < 4 && c->loss_only; k++) {
        char path[8];
        snprintf(path, sizeof path, "1/%s", names[k]);
        const gv_tensor *grad = c->under_matmul >> k & 1 ? gv_tree_get_tensor(ref, path) : NULL;
        if (grad) loose[nloose++] = grad;
    }
    res = compare(out, ref, loose, nloose, rel, why, len);
done:
    gv_tree_free(out), gv_tree_free(work), gv_plan_free(p), gv_tree_free(ref);
    return res;
}
