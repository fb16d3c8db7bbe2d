/* Reductions over any set of axes (sum, max, min), argmax, and the
 * composites built on them (mean, logsumexp, softmax, log_softmax). */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "ops_internal.h"

/* attr = the reduced axes, sorted and unique; iattr[0] = keepdims. */
gv_status gv_reduce_infer(gv_graph *g, gv_node *n, const gv_node *const *ins) {
    const gv_node *x = ins[0];
    const char *name = gv_opdefs[n->op].name;
    if (x->dtype == GV_BOOL) {
        gv_graph_fail(g, GV_ERR_DTYPE, "%s: bool operand (cast it first)", name);
        return GV_ERR_DTYPE;
    }
    char *sx = gv_shape_str(x->rank, x->shape);
    bool *red = calloc((size_t)x->rank + 1, 1);
    if (!red) {
        free(sx);
        return gv_graph_fail(g, GV_ERR_NOMEM, "%s: out of memory", name), GV_ERR_NOMEM;
    }
    for (int i = 0; i < n->nattr; i++) {
        int a;
        bool in_range = gv_norm_axis((int)n->attr[i], x->rank, &a);
        if (!in_range || red[a]) {
            gv_graph_fail(g, GV_ERR_ARG, "%s: axis %lld is %s for %s", name,
                          (long long)n->attr[i], in_range ? "repeated" : "out of range", sx);
            free(red), free(sx);
            return GV_ERR_ARG;
        }
        red[a] = true;
    }
    int k = 0;
    for (int a = 0; a < x->rank; a++)
        if (red[a]) n->attr[k++] = a; /* sorted */
    bool keep = n->iattr[0];
    int64_t *shape = gv_node_set_shape(g, n, keep ? x->rank : x->rank - k, NULL);
    int j = 0;
    for (int a = 0; a < x->rank; a++) {
        if (!red[a]) shape[j++] = x->shape[a];
        else if (keep) shape[j++] = 1;
        if (red[a] && x->shape[a] == 0 && n->op != GV_OP_REDUCE_SUM) {
            gv_graph_fail(g, GV_ERR_SHAPE, "%s: reducing the zero-size axis %d of %s has no "
                          "identity", name, a, sx);
            free(red), free(sx);
            return GV_ERR_SHAPE;
        }
    }
    free(red), free(sx);
    n->dtype = x->dtype;
    return GV_OK;
}

/* For each input element, the flat index of its output element. */
static int64_t out_index(const gv_node *x, const bool *red, int64_t i) {
    int64_t o = 0, scale = 1;
    for (int a = x->rank - 1; a >= 0; a--) {
        int64_t idx = i % x->shape[a];
        i /= x->shape[a];
        if (red[a]) continue;
        o += idx * scale;
        scale *= x->shape[a];
    }
    return o;
}

void gv_reduce_kernel(const gv_node *n, const gv_node *const *ins, const void *const *in,
                      void *out) {
    const gv_node *x = ins[0];
    bool *red = calloc((size_t)x->rank + 1, 1);
    if (!red) return;
    for (int i = 0; i < n->nattr; i++) red[n->attr[i]] = true;
    int64_t osize = gv_node_size(n), isize = gv_node_size(x);
    double *acc = malloc((size_t)(osize ? osize : 1) * sizeof *acc);
    if (!acc) {
        free(red);
        return;
    }
    if (x->dtype == GV_F32) {
        /* float32 sums accumulate in float32, in input order */
        float *y = out;
        const float *p = in[0];
        for (int64_t o = 0; o < osize; o++)
            y[o] = n->op == GV_OP_REDUCE_SUM ? 0.0f : n->op == GV_OP_REDUCE_MAX ? -INFINITY : INFINITY;
        for (int64_t i = 0; i < isize; i++) {
            int64_t o = out_index(x, red, i);
            float v = p[i];
            if (n->op == GV_OP_REDUCE_SUM) y[o] += v;
            else if (n->op == GV_OP_REDUCE_MAX) y[o] = (v > y[o] || isnan(v)) ? v : y[o];
            else y[o] = (v < y[o] || isnan(v)) ? v : y[o];
        }
    } else if (!gv_dtype_is_float(x->dtype)) {
        /* integers exactly: sums wrap as integer adds do, max/min compare in
         * the dtype's signedness (not through double, which loses int64) */
        gv_dtype dt = x->dtype;
        bool uns = gv_dtype_is_unsigned(dt);
        uint64_t *iacc = (uint64_t *)acc;
        uint64_t init = n->op == GV_OP_REDUCE_SUM ? 0
                      : n->op == GV_OP_REDUCE_MAX ? (uns ? 0 : (uint64_t)INT64_MIN)
                      : (uns ? UINT64_MAX : (uint64_t)INT64_MAX);
        for (int64_t o = 0; o < osize; o++) iacc[o] = init;
        for (int64_t i = 0; i < isize; i++) {
            int64_t o = out_index(x, red, i);
            uint64_t v = gv_load_bits(dt, in[0], i);
            if (n->op == GV_OP_REDUCE_SUM) iacc[o] += v;
            else if (n->op == GV_OP_REDUCE_MAX) iacc[o] = gv_int_less(dt, iacc[o], v) ? v : iacc[o];
            else iacc[o] = gv_int_less(dt, v, iacc[o]) ? v : iacc[o];
        }
        for (int64_t o = 0; o < osize; o++) gv_store_bits(dt, out, o, iacc[o]);
    } else {
        for (int64_t o = 0; o < osize; o++)
            acc[o] = n->op == GV_OP_REDUCE_SUM ? 0.0 : n->op == GV_OP_REDUCE_MAX ? -INFINITY : INFINITY;
        for (int64_t i = 0; i < isize; i++) {
            int64_t o = out_index(x, red, i);
            double v = gv_load_f64(x->dtype, in[0], i);
            if (n->op == GV_OP_REDUCE_SUM) acc[o] += v;
            else if (n->op == GV_OP_REDUCE_MAX) acc[o] = (v > acc[o] || isnan(v)) ? v : acc[o];
            else acc[o] = (v < acc[o] || isnan(v)) ? v : acc[o];
        }
        for (int64_t o = 0; o < osize; o++) gv_store_f64(n->dtype, out, o, acc[o]);
    }
    free(acc);
    free(red);
}

/* ct with the reduced axes put back as size 1 (if they were dropped). */
static gv_value keepdims_shape(const gv_node *n, gv_value x, gv_value v) {
    if (n->iattr[0]) return v;
    int r = gv_value_rank(x);
    int64_t shape[r > 0 ? r : 1];
    for (int a = 0; a < r; a++) shape[a] = gv_value_shape(x)[a];
    for (int i = 0; i < n->nattr; i++) shape[n->attr[i]] = 1;
    return gv_reshape(v, r, shape);
}

void gv_reduce_vjp(const gv_node *n, const gv_value *ins, gv_value out, gv_value ct,
                   gv_value *cts) {
    gv_value x = ins[0];
    int r = gv_value_rank(x);
    const int64_t *xs = gv_value_shape(x);
    gv_value ctk = keepdims_shape(n, x, ct);
    if (n->op == GV_OP_REDUCE_SUM) {
        cts[0] = gv_broadcast_to(ctk, r, xs);
        return;
    }
    /* max/min: split ct equally among the positions equal to the result */
    gv_value outk = gv_broadcast_to(keepdims_shape(n, x, out), r, xs);
    gv_value loc = gv_cast(gv_eq(x, outk), gv_value_dtype(x));
    int axes[n->nattr > 0 ? n->nattr : 1];
    for (int i = 0; i < n->nattr; i++) axes[i] = (int)n->attr[i];
    gv_value counts = gv_sum(loc, axes, n->nattr, true);
    cts[0] = gv_div(gv_mul(gv_broadcast_to(ctk, r, xs), loc), gv_broadcast_to(counts, r, xs));
}

static gv_value reduce(gv_opcode op, gv_value x, const int *axes, int naxes, bool keepdims) {
    gv_graph *g = gv_graph_of(gv_opdefs[op].name, &x, 1);
    if (!g) return gv_invalid(x.graph);
    int r = gv_value_rank(x);
    int n = axes ? naxes : r;
    int64_t attr[n > 0 ? n : 1];
    for (int i = 0; i < n; i++) attr[i] = axes ? axes[i] : i;
    gv_node_spec s = {.op = op, .nin = 1, .in = &x, .nattr = n, .attr = attr,
                      .iattr = {keepdims, 0}};
    return gv_emit(g, &s);
}

gv_value gv_sum(gv_value x, const int *axes, int naxes, bool keepdims) {
    return reduce(GV_OP_REDUCE_SUM, x, axes, naxes, keepdims);
}
gv_value gv_max(gv_value x, const int *axes, int naxes, bool keepdims) {
    return reduce(GV_OP_REDUCE_MAX, x, axes, naxes, keepdims);
}
gv_value gv_min(gv_value x, const int *axes, int naxes, bool keepdims) {
    return reduce(GV_OP_REDUCE_MIN, x, axes, naxes, keepdims);
}

/* Composites check their axes first, so an error names the op the user called
 * (not the reduce_max inside softmax). */
static bool check_axes(const char *op, gv_value x, const int *axes, int naxes) {
    if (!gv_value_ok(x)) return false;
    int r = gv_value_rank(x), a;
    for (int i = 0; axes && i < naxes; i++)
        if (!gv_norm_axis(axes[i], r, &a)) {
            char *sx = gv_shape_str(r, gv_value_shape(x));
            gv_graph_fail(x.graph, GV_ERR_ARG, "%s: axis %d is out of range for %s", op, axes[i],
                          sx);
            free(sx);
            return false;
        }
    return true;
}

gv_value gv_mean(gv_value x, const int *axes, int naxes, bool keepdims) {
    if (!check_axes("mean", x, axes, naxes)) return gv_invalid(x.graph);
    gv_value s = gv_sum(x, axes, naxes, keepdims);
    if (!gv_value_ok(s)) return s;
    /* jnp.mean: sum / count, the count in the value's dtype */
    int64_t count = gv_value_size(x) / (gv_value_size(s) ? gv_value_size(s) : 1);
    if (gv_value_size(s) == 0) count = 0;
    return gv_div(s, gv_scalar(x.graph, gv_value_dtype(x), (double)count));
}

/* jax.nn.logsumexp: max + log(sum(exp(x - max))), the max held constant and
 * replaced by 0 where it is not finite (so a row of -inf gives -inf and one
 * holding +inf gives +inf, not inf - inf = NaN); over zero-size axes the max
 * starts at -inf (jax's initial=-inf), so the result is -inf. */
gv_value gv_logsumexp(gv_value x, const int *axes, int naxes, bool keepdims) {
    if (!check_axes("logsumexp", x, axes, naxes)) return gv_invalid(x.graph);
    int r = gv_value_rank(x);
    bool empty = false;
    for (int i = 0; i < (axes ? naxes : r); i++) {
        int a;
        if (!axes) a = i;
        else if (!gv_norm_axis(axes[i], r, &a)) continue; /* checked above */
        empty |= gv_value_shape(x)[a] == 0;
    }
    if (empty) return gv_full_like(gv_sum(x, axes, naxes, keepdims), -INFINITY);
    gv_value m = gv_max(x, axes, naxes, true);
    gv_value finite = gv_lt(gv_abs(m), gv_full_like(m, INFINITY)); /* false for NaN too */
    m = gv_stop_gradient(gv_select(finite, m, gv_zeros_like(m)));
    gv_value s = gv_log(gv_sum(gv_exp(gv_sub(x, m)), axes, naxes, true));
    gv_value lse = gv_add(s, m);
    if (keepdims || !gv_value_ok(lse)) return lse;
    return gv_squeeze(lse, axes, axes ? naxes : r);
}

gv_value gv_log_softmax(gv_value x, int axis) {
    if (!check_axes("log_softmax", x, &axis, 1)) return gv_invalid(x.graph);
    gv_value shifted = gv_sub(x, gv_stop_gradient(gv_max(x, &axis, 1, true)));
    return gv_sub(shifted, gv_log(gv_sum(gv_exp(shifted), &axis, 1, true)));
}

gv_value gv_softmax(gv_value x, int axis) {
    if (!check_axes("softmax", x, &axis, 1)) return gv_invalid(x.graph);
    gv_value e = gv_exp(gv_sub(x, gv_stop_gradient(gv_max(x, &axis, 1, true))));
    return gv_div(e, gv_sum(e, &axis, 1, true));
}

/* ---- argmax: iattr[0] = axis, iattr[1] = keepdims; int32 ---- */

gv_status gv_argmax_infer(gv_graph *g, gv_node *n, const gv_node *const *ins) {
    const gv_node *x = ins[0];
    int a;
    bool in_range = gv_norm_axis((int)n->iattr[0], x->rank, &a);
    if (!in_range || x->shape[a] == 0) {
        char *sx = gv_shape_str(x->rank, x->shape);
        gv_graph_fail(g, in_range ? GV_ERR_SHAPE : GV_ERR_ARG, "argmax: axis %d %s %s",
                      (int)n->iattr[0], in_range ? "has size 0 in" : "is out of range for", sx);
        free(sx);
        return in_range ? GV_ERR_SHAPE : GV_ERR_ARG;
    }
    n->iattr[0] = a;
    bool keep = n->iattr[1];
    int64_t *shape = gv_node_set_shape(g, n, keep ? x->rank : x->rank - 1, NULL);
    for (int i = 0, j = 0; i < x->rank; i++) {
        if (i != a) shape[j++] = x->shape[i];
        else if (keep) shape[j++] = 1;
    }
    n->dtype = GV_I32;
    return GV_OK;
}

void gv_argmax_kernel(const gv_node *n, const gv_node *const *ins, const void *const *in,
                      void *out) {
    const gv_node *x = ins[0];
    int a = (int)n->iattr[0];
    int64_t inner = 1, outer = 1, len = x->shape[a];
    for (int i = a + 1; i < x->rank; i++) inner *= x->shape[i];
    for (int i = 0; i < a; i++) outer *= x->shape[i];
    int32_t *y = out;
    if (!gv_dtype_is_float(x->dtype)) { /* integers exactly */
        for (int64_t o = 0; o < outer; o++)
            for (int64_t in_ = 0; in_ < inner; in_++) {
                int64_t best = 0;
                uint64_t bv = gv_load_bits(x->dtype, in[0], o * len * inner + in_);
                for (int64_t k = 1; k < len; k++) {
                    uint64_t v = gv_load_bits(x->dtype, in[0], (o * len + k) * inner + in_);
                    if (gv_int_less(x->dtype, bv, v)) bv = v, best = k;
                }
                y[o * inner + in_] = (int32_t)best;
            }
        return;
    }
    for (int64_t o = 0; o < outer; o++)
        for (int64_t in_ = 0; in_ < inner; in_++) {
            int64_t best = 0;
            double bv = gv_load_f64(x->dtype, in[0], o * len * inner + in_);
            for (int64_t k = 1; k < len && !isnan(bv); k++) {
                double v = gv_load_f64(x->dtype, in[0], (o * len + k) * inner + in_);
                if (v > bv || isnan(v)) bv = v, best = k; /* first maximum; NaN wins */
            }
            y[o * inner + in_] = (int32_t)best;
        }
}

void gv_argmax_vjp(const gv_node *n, const gv_value *ins, gv_value out, gv_value ct,
                   gv_value *cts) {}

gv_value gv_argmax(gv_value x, int axis, bool keepdims) {
    gv_graph *g = gv_graph_of("argmax", &x, 1);
    if (!g) return gv_invalid(x.graph);
    gv_node_spec s = {.op = GV_OP_ARGMAX, .nin = 1, .in = &x, .iattr = {axis, keepdims}};
    return gv_emit(g, &s);
}
