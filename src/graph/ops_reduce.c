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
    bool *red = calloc((size_t)x->rank + 1, 1);
    if (!red) return gv_graph_fail(g, GV_ERR_NOMEM, "%s: out of memory", name), GV_ERR_NOMEM;
    for (int i = 0; i < n->nattr; i++) {
        int a;
        bool in_range = gv_norm_axis((int)n->attr[i], x->rank, &a);
        if (!in_range || red[a]) {
            gv_graph_fail(g, GV_ERR_ARG, "%s: axis %lld is %s for rank %d", name,
                          (long long)n->attr[i], in_range ? "repeated" : "out of range",
                          x->rank);
            free(red);
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
            gv_graph_fail(g, GV_ERR_SHAPE, "%s: reducing a zero-size axis %d has no identity",
                          name, a);
            free(red);
            return GV_ERR_SHAPE;
        }
    }
    free(red);
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
    } else {
        bool fl = gv_dtype_is_float(x->dtype);
        for (int64_t o = 0; o < osize; o++)
            acc[o] = n->op == GV_OP_REDUCE_SUM ? 0.0
                   : n->op == GV_OP_REDUCE_MAX ? (fl ? -INFINITY : -9.3e18) : (fl ? INFINITY : 9.3e18);
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

gv_value gv_mean(gv_value x, const int *axes, int naxes, bool keepdims) {
    gv_value s = gv_sum(x, axes, naxes, keepdims);
    if (!gv_value_ok(s)) return s;
    /* jnp.mean: sum / count, the count in the value's dtype */
    int64_t count = gv_value_size(x) / (gv_value_size(s) ? gv_value_size(s) : 1);
    if (gv_value_size(s) == 0) count = 0;
    return gv_div(s, gv_scalar(x.graph, gv_value_dtype(x), (double)count));
}

/* jax.nn.logsumexp: max + log(sum(exp(x - max))), max held constant */
gv_value gv_logsumexp(gv_value x, const int *axes, int naxes, bool keepdims) {
    gv_value m = gv_stop_gradient(gv_max(x, axes, naxes, true));
    gv_value s = gv_log(gv_sum(gv_exp(gv_sub(x, m)), axes, naxes, true));
    gv_value r = gv_add(s, m);
    if (keepdims || !gv_value_ok(r)) return r;
    return gv_squeeze(r, axes, axes ? naxes : gv_value_rank(x));
}

gv_value gv_log_softmax(gv_value x, int axis) {
    gv_value shifted = gv_sub(x, gv_stop_gradient(gv_max(x, &axis, 1, true)));
    return gv_sub(shifted, gv_log(gv_sum(gv_exp(shifted), &axis, 1, true)));
}

gv_value gv_softmax(gv_value x, int axis) {
    gv_value e = gv_exp(gv_sub(x, gv_stop_gradient(gv_max(x, &axis, 1, true))));
    return gv_div(e, gv_sum(e, &axis, 1, true));
}

/* ---- argmax: iattr[0] = axis, iattr[1] = keepdims; int32 ---- */

gv_status gv_argmax_infer(gv_graph *g, gv_node *n, const gv_node *const *ins) {
    const gv_node *x = ins[0];
    int a;
    if (!gv_norm_axis((int)n->iattr[0], x->rank, &a)) {
        gv_graph_fail(g, GV_ERR_ARG, "argmax: axis %d is out of range for rank %d",
                      (int)n->iattr[0], x->rank);
        return GV_ERR_ARG;
    }
    if (x->shape[a] == 0) {
        gv_graph_fail(g, GV_ERR_SHAPE, "argmax: axis %d has size 0", a);
        return GV_ERR_SHAPE;
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
