/* Shape primitives: reshape, transpose, broadcast_to, slice, concatenate,
 * pad; and the composites expand_dims, squeeze, slice_axis, split. */
#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "ops_internal.h"

/* ---- reshape: the node's shape was given in the spec (-1 resolved by the
 * builder) ---- */

gv_status gv_reshape_infer(gv_graph *g, gv_node *n, const gv_node *const *ins) {
    if (gv_node_size(n) != gv_node_size(ins[0])) {
        char *a = gv_shape_str(ins[0]->rank, ins[0]->shape), *b = gv_shape_str(n->rank, n->shape);
        gv_graph_fail(g, GV_ERR_SHAPE, "reshape: cannot reshape %s into %s", a, b);
        free(a), free(b);
        return GV_ERR_SHAPE;
    }
    n->dtype = ins[0]->dtype;
    return GV_OK;
}
void gv_reshape_kernel(const gv_node *n, const gv_node *const *ins, const void *const *in,
                       void *out) {
    memcpy(out, in[0], (size_t)gv_node_size(n) * gv_dtype_size(n->dtype));
}
void gv_reshape_vjp(const gv_node *n, const gv_value *ins, gv_value out, gv_value ct,
                    gv_value *cts) {
    cts[0] = gv_reshape(ct, gv_value_rank(ins[0]), gv_value_shape(ins[0]));
}

gv_value gv_reshape(gv_value x, int rank, const int64_t *shape) {
    gv_graph *g = gv_graph_of("reshape", &x, 1);
    if (!g) return gv_invalid(x.graph);
    if (rank < 0 || (rank > 0 && !shape)) {
        gv_graph_fail(g, GV_ERR_ARG, "reshape: bad rank %d or NULL shape", rank);
        return gv_invalid(g);
    }
    int64_t dims[rank > 0 ? rank : 1], known = 1;
    int infer = -1;
    const char *why = NULL;
    for (int i = 0; i < rank && !why; i++) {
        dims[i] = shape[i];
        if (shape[i] == -1 && infer < 0) infer = i;
        else if (shape[i] == -1) why = "only one dimension may be -1";
        else if (shape[i] < 0) why = "negative dimension";
        else if (__builtin_mul_overflow(known, shape[i], &known)) why = "size overflows";
    }
    if (!why && infer >= 0) {
        int64_t size = gv_value_size(x);
        if (known == 0 || size % known) why = "cannot infer the -1 dimension";
        else dims[infer] = size / known;
    }
    if (why) {
        char *a = gv_shape_str(gv_value_rank(x), gv_value_shape(x)), *b = gv_shape_str(rank, shape);
        gv_graph_fail(g, why[0] == 'c' ? GV_ERR_SHAPE : GV_ERR_ARG, "reshape: cannot reshape %s "
                      "into %s: %s", a, b, why);
        free(a), free(b);
        return gv_invalid(g);
    }
    if (rank == gv_value_rank(x) && memcmp(dims, gv_value_shape(x), (size_t)rank * 8) == 0)
        return x;
    gv_node_spec s = {.op = GV_OP_RESHAPE, .nin = 1, .in = &x, .rank = rank, .shape = dims,
                      .dtype = gv_value_dtype(x)};
    return gv_emit(g, &s);
}

gv_value gv_expand_dims(gv_value x, int axis) {
    if (!gv_value_ok(x)) return x;
    int r = gv_value_rank(x), a;
    if (!gv_norm_axis(axis, r + 1, &a)) {
        char *sx = gv_shape_str(r, gv_value_shape(x));
        gv_graph_fail(x.graph, GV_ERR_ARG, "expand_dims: axis %d is out of range for %s", axis,
                      sx);
        free(sx);
        return gv_invalid(x.graph);
    }
    int64_t shape[r + 1];
    for (int i = 0, j = 0; i <= r; i++) shape[i] = i == a ? 1 : gv_value_shape(x)[j++];
    return gv_reshape(x, r + 1, shape);
}

gv_value gv_squeeze(gv_value x, const int *axes, int naxes) {
    if (!gv_value_ok(x)) return x;
    int r = gv_value_rank(x);
    const int64_t *xs = gv_value_shape(x);
    bool drop[r > 0 ? r : 1];
    memset(drop, 0, sizeof drop);
    for (int i = 0; i < (axes ? naxes : r); i++) {
        int a;
        if (!axes) {
            drop[i] = xs[i] == 1;
            continue;
        }
        bool in_range = gv_norm_axis(axes[i], r, &a);
        if (!in_range || xs[a] != 1) {
            char *sx = gv_shape_str(r, xs);
            gv_graph_fail(x.graph, in_range ? GV_ERR_SHAPE : GV_ERR_ARG, "squeeze: axis %d %s %s",
                          axes[i], in_range ? "is not of size 1 in" : "is out of range for", sx);
            free(sx);
            return gv_invalid(x.graph);
        }
        drop[a] = true;
    }
    int64_t shape[r > 0 ? r : 1];
    int k = 0;
    for (int i = 0; i < r; i++)
        if (!drop[i]) shape[k++] = xs[i];
    return gv_reshape(x, k, shape);
}

/* ---- transpose: attr = perm ---- */

gv_status gv_transpose_infer(gv_graph *g, gv_node *n, const gv_node *const *ins) {
    const gv_node *x = ins[0];
    bool *seen = calloc((size_t)x->rank + 1, 1);
    bool ok = seen && n->nattr == x->rank;
    for (int i = 0; ok && i < n->nattr; i++) {
        int a;
        ok = gv_norm_axis((int)n->attr[i], x->rank, &a) && !seen[a];
        if (ok) seen[a] = true, n->attr[i] = a;
    }
    free(seen);
    if (!ok) {
        char *sx = gv_shape_str(x->rank, x->shape), *sp = gv_shape_str(n->nattr, n->attr);
        gv_graph_fail(g, GV_ERR_ARG, "transpose: %s is not a permutation of the axes of %s", sp,
                      sx);
        free(sx), free(sp);
        return GV_ERR_ARG;
    }
    int64_t *shape = gv_node_set_shape(g, n, x->rank, NULL);
    for (int i = 0; i < x->rank; i++) shape[i] = x->shape[n->attr[i]];
    n->dtype = x->dtype;
    return GV_OK;
}

void gv_transpose_kernel(const gv_node *n, const gv_node *const *ins, const void *const *in,
                         void *out) {
    const gv_node *x = ins[0];
    int r = x->rank;
    size_t es = gv_dtype_size(n->dtype);
    int64_t *xstride = malloc((size_t)(r + 1) * 2 * sizeof(int64_t));
    if (!xstride) return;
    int64_t *idx = xstride + r + 1;
    int64_t s = 1;
    for (int i = r - 1; i >= 0; i--) xstride[i] = s, s *= x->shape[i];
    for (int i = 0; i < r; i++) idx[i] = 0;
    int64_t size = gv_node_size(n), off = 0;
    const char *src = in[0];
    char *dst = out;
    for (int64_t o = 0; o < size; o++) {
        memcpy(dst + o * es, src + off * es, es);
        for (int i = r - 1; i >= 0; i--) { /* next output index; source offset follows */
            off += xstride[n->attr[i]];
            if (++idx[i] < n->shape[i]) break;
            off -= xstride[n->attr[i]] * n->shape[i];
            idx[i] = 0;
        }
    }
    free(xstride);
}

void gv_transpose_vjp(const gv_node *n, const gv_value *ins, gv_value out, gv_value ct,
                      gv_value *cts) {
    int inv[n->nattr > 0 ? n->nattr : 1];
    for (int i = 0; i < n->nattr; i++) inv[n->attr[i]] = i;
    cts[0] = gv_transpose(ct, inv);
}

gv_value gv_transpose(gv_value x, const int *perm) {
    gv_graph *g = gv_graph_of("transpose", &x, 1);
    if (!g) return gv_invalid(x.graph);
    int r = gv_value_rank(x);
    int64_t p[r > 0 ? r : 1];
    bool identity = true;
    for (int i = 0; i < r; i++) {
        p[i] = perm ? perm[i] : r - 1 - i;
        identity &= p[i] == i;
    }
    if (identity) return x;
    gv_node_spec s = {.op = GV_OP_TRANSPOSE, .nin = 1, .in = &x, .nattr = r, .attr = p};
    return gv_emit(g, &s);
}

/* ---- broadcast_to (numpy rules) ---- */

gv_status gv_broadcast_infer(gv_graph *g, gv_node *n, const gv_node *const *ins) {
    const gv_node *x = ins[0];
    bool ok = x->rank <= n->rank;
    for (int i = 0; ok && i < x->rank; i++) {
        int64_t d = x->shape[i], t = n->shape[i + n->rank - x->rank];
        ok = d == t || d == 1;
    }
    if (!ok) {
        char *a = gv_shape_str(x->rank, x->shape), *b = gv_shape_str(n->rank, n->shape);
        gv_graph_fail(g, GV_ERR_SHAPE, "broadcast_to: cannot broadcast %s to %s", a, b);
        free(a), free(b);
        return GV_ERR_SHAPE;
    }
    n->dtype = x->dtype;
    return GV_OK;
}

void gv_broadcast_kernel(const gv_node *n, const gv_node *const *ins, const void *const *in,
                         void *out) {
    const gv_node *x = ins[0];
    size_t es = gv_dtype_size(n->dtype);
    int64_t size = gv_node_size(n);
    const char *src = in[0];
    char *dst = out;
    for (int64_t o = 0; o < size; o++) {
        int64_t rem = o, off = 0, stride = 1;
        for (int i = n->rank - 1; i >= 0; i--) {
            int64_t idx = rem % n->shape[i];
            rem /= n->shape[i];
            int xi = i - (n->rank - x->rank);
            if (xi < 0) continue;
            if (x->shape[xi] != 1) off += idx * stride;
            stride *= x->shape[xi];
        }
        memcpy(dst + o * es, src + off * es, es);
    }
}

void gv_broadcast_vjp(const gv_node *n, const gv_value *ins, gv_value out, gv_value ct,
                      gv_value *cts) {
    cts[0] = gv_unbroadcast(ct, gv_value_rank(ins[0]), gv_value_shape(ins[0]));
}

gv_value gv_broadcast_to(gv_value x, int rank, const int64_t *shape) {
    gv_graph *g = gv_graph_of("broadcast_to", &x, 1);
    if (!g) return gv_invalid(x.graph);
    int64_t size;
    if (gv_shape_check("broadcast_to", gv_value_dtype(x), rank, shape, &size) != GV_OK) {
        gv_graph_fail(g, gv_last_status(), "%s", gv_last_error());
        return gv_invalid(g);
    }
    if (rank == gv_value_rank(x) && memcmp(shape, gv_value_shape(x), (size_t)rank * 8) == 0)
        return x;
    gv_node_spec s = {.op = GV_OP_BROADCAST, .nin = 1, .in = &x, .rank = rank, .shape = shape,
                      .dtype = gv_value_dtype(x)};
    return gv_emit(g, &s);
}

/* ---- slice: attr = start[r], limit[r], stride[r] ---- */

gv_status gv_slice_infer(gv_graph *g, gv_node *n, const gv_node *const *ins) {
    const gv_node *x = ins[0];
    int r = x->rank;
    int64_t *shape = gv_node_set_shape(g, n, r, NULL);
    for (int i = 0; i < r; i++) {
        int64_t st = n->attr[i], lim = n->attr[r + i], str = n->attr[2 * r + i];
        if (st < 0 || lim < st || lim > x->shape[i] || str < 1) {
            char *sx = gv_shape_str(r, x->shape);
            gv_graph_fail(g, GV_ERR_ARG, "slice: [%lld:%lld:%lld] on axis %d of %s is out of "
                          "range", (long long)st, (long long)lim, (long long)str, i, sx);
            free(sx);
            return GV_ERR_ARG;
        }
        shape[i] = (lim - st + str - 1) / str;
    }
    n->dtype = x->dtype;
    return GV_OK;
}

void gv_slice_kernel(const gv_node *n, const gv_node *const *ins, const void *const *in,
                     void *out) {
    const gv_node *x = ins[0];
    int r = x->rank;
    size_t es = gv_dtype_size(n->dtype);
    int64_t size = gv_node_size(n);
    if (r > 0 && n->attr[3 * r - 1] == 1) {
        /* unit stride on the last axis: one index computation and one copy per row */
        int64_t cols = n->shape[r - 1], rows = cols ? size / cols : 0;
        for (int64_t row = 0; row < rows; row++) {
            int64_t rem = row, off = n->attr[r - 1], stride = x->shape[r - 1];
            for (int i = r - 2; i >= 0; i--) {
                off += (n->attr[i] + rem % n->shape[i] * n->attr[2 * r + i]) * stride;
                rem /= n->shape[i];
                stride *= x->shape[i];
            }
            memcpy((char *)out + row * cols * es, (const char *)in[0] + off * es, (size_t)cols * es);
        }
        return;
    }
    for (int64_t o = 0; o < size; o++) {
        int64_t rem = o, off = 0, stride = 1;
        for (int i = r - 1; i >= 0; i--) {
            int64_t idx = rem % n->shape[i];
            rem /= n->shape[i];
            off += (n->attr[i] + idx * n->attr[2 * r + i]) * stride;
            stride *= x->shape[i];
        }
        memcpy((char *)out + o * es, (const char *)in[0] + off * es, es);
    }
}

/* The cotangent of a slice is the cotangent padded back (interior padding
 * for strides is done by a strided scatter: pad with stride-1 zeros). */
void gv_slice_vjp(const gv_node *n, const gv_value *ins, gv_value out, gv_value ct,
                  gv_value *cts) {
    int r = gv_value_rank(ins[0]);
    const int64_t *xs = gv_value_shape(ins[0]);
    bool strided = false;
    for (int i = 0; i < r; i++) strided |= n->attr[2 * r + i] != 1;
    if (!strided) {
        int64_t lo[r > 0 ? r : 1], hi[r > 0 ? r : 1];
        for (int i = 0; i < r; i++) lo[i] = n->attr[i], hi[i] = xs[i] - n->attr[r + i];
        cts[0] = gv_pad(ct, lo, hi, 0.0);
        return;
    }
    /* strided: scatter ct into zeros through a take-free route: build the
     * index of each kept element along each axis with take-style one-hot
     * matmuls would be costly; instead expand with interior zeros axis by
     * axis: reshape [.., n, ..] -> [.., n, 1, ..], pad the new axis to the
     * stride, flatten, then pad the ends. */
    gv_value v = ct;
    for (int i = 0; i < r; i++) {
        int64_t str = n->attr[2 * r + i];
        if (str == 1) continue;
        if (!gv_value_ok(v)) return; /* the graph has failed: the error stands */
        int rv = gv_value_rank(v);
        int64_t shape[rv + 1], lo[rv + 1], hi[rv + 1];
        for (int j = 0, k = 0; j <= rv; j++) {
            shape[j] = j == i + 1 ? 1 : gv_value_shape(v)[k++];
            lo[j] = 0;
            hi[j] = j == i + 1 ? str - 1 : 0;
        }
        v = gv_pad(gv_reshape(v, rv + 1, shape), lo, hi, 0.0);
        int64_t flat[rv];
        for (int j = 0, k = 0; j < rv; j++, k++) {
            flat[j] = gv_value_shape(v)[k];
            if (j == i) flat[j] *= gv_value_shape(v)[++k];
        }
        v = gv_reshape(v, rv, flat);
    }
    if (!gv_value_ok(v)) return;
    int64_t lo[r > 0 ? r : 1], hi[r > 0 ? r : 1];
    for (int i = 0; i < r; i++) {
        lo[i] = n->attr[i];
        hi[i] = xs[i] - n->attr[i] - gv_value_shape(v)[i];
    }
    cts[0] = gv_pad(v, lo, hi, 0.0);
}

gv_value gv_slice(gv_value x, const int64_t *start, const int64_t *limit,
                  const int64_t *strides) {
    gv_graph *g = gv_graph_of("slice", &x, 1);
    if (!g) return gv_invalid(x.graph);
    int r = gv_value_rank(x);
    if (r > 0 && (!start || !limit)) {
        gv_graph_fail(g, GV_ERR_ARG, "slice: start or limit is NULL");
        return gv_invalid(g);
    }
    int64_t attr[3 * r + 1];
    for (int i = 0; i < r; i++) {
        attr[i] = start[i];
        attr[r + i] = limit[i];
        attr[2 * r + i] = strides ? strides[i] : 1;
    }
    gv_node_spec s = {.op = GV_OP_SLICE, .nin = 1, .in = &x, .nattr = 3 * r, .attr = attr};
    return gv_emit(g, &s);
}

gv_value gv_slice_axis(gv_value x, int axis, int64_t start, int64_t limit) {
    if (!gv_value_ok(x)) return x;
    int r = gv_value_rank(x), a;
    if (!gv_norm_axis(axis, r, &a)) {
        char *sx = gv_shape_str(r, gv_value_shape(x));
        gv_graph_fail(x.graph, GV_ERR_ARG, "slice_axis: axis %d is out of range for %s", axis, sx);
        free(sx);
        return gv_invalid(x.graph);
    }
    int64_t st[r], lim[r], len = gv_value_shape(x)[a];
    for (int i = 0; i < r; i++) st[i] = 0, lim[i] = gv_value_shape(x)[i];
    /* negative indices count from the end, as lax.slice_in_dim */
    st[a] = start < 0 ? start + len : start;
    lim[a] = limit < 0 ? limit + len : limit;
    return gv_slice(x, st, lim, NULL);
}

/* ---- concatenate: iattr[0] = axis ---- */

gv_status gv_concat_infer(gv_graph *g, gv_node *n, const gv_node *const *ins) {
    const gv_node *x0 = ins[0];
    int a;
    if (n->nin < 1 || !gv_norm_axis((int)n->iattr[0], x0->rank, &a)) {
        char *s0 = gv_shape_str(x0->rank, x0->shape);
        gv_graph_fail(g, GV_ERR_ARG, "concatenate: axis %d is out of range for operand 0 %s",
                      (int)n->iattr[0], s0);
        free(s0);
        return GV_ERR_ARG;
    }
    n->iattr[0] = a;
    int64_t *shape = gv_node_set_shape(g, n, x0->rank, x0->shape);
    shape[a] = 0;
    for (int k = 0; k < n->nin; k++) {
        const gv_node *x = ins[k];
        bool ok = x->rank == x0->rank && x->dtype == x0->dtype;
        for (int i = 0; ok && i < x->rank; i++) ok = i == a || x->shape[i] == x0->shape[i];
        if (!ok) {
            char *s0 = gv_shape_str(x0->rank, x0->shape), *sk = gv_shape_str(x->rank, x->shape);
            gv_graph_fail(g, GV_ERR_SHAPE, "concatenate: operand %d %s %s does not match "
                          "operand 0 %s %s on the axes other than %d", k, sk,
                          gv_dtype_name(x->dtype), s0, gv_dtype_name(x0->dtype), a);
            free(s0), free(sk);
            return GV_ERR_SHAPE;
        }
        shape[a] += x->shape[a];
    }
    n->dtype = x0->dtype;
    return GV_OK;
}

void gv_concat_kernel(const gv_node *n, const gv_node *const *ins, const void *const *in,
                      void *out) {
    int a = (int)n->iattr[0];
    size_t es = gv_dtype_size(n->dtype);
    int64_t outer = 1, inner = 1;
    for (int i = 0; i < a; i++) outer *= n->shape[i];
    for (int i = a + 1; i < n->rank; i++) inner *= n->shape[i];
    char *dst = out;
    for (int64_t o = 0; o < outer; o++)
        for (int k = 0; k < n->nin; k++) {
            size_t chunk = (size_t)(ins[k]->shape[a] * inner) * es;
            memcpy(dst, (const char *)in[k] + (size_t)o * chunk, chunk);
            dst += chunk;
        }
}

void gv_concat_vjp(const gv_node *n, const gv_value *ins, gv_value out, gv_value ct,
                   gv_value *cts) {
    int a = (int)n->iattr[0];
    int64_t at = 0;
    for (int k = 0; k < n->nin; k++) {
        int64_t len = gv_value_shape(ins[k])[a];
        cts[k] = gv_slice_axis(ct, a, at, at + len);
        at += len;
    }
}

gv_value gv_concatenate(const gv_value *xs, int n, int axis) {
    gv_graph *g = xs && n > 0 ? gv_graph_of("concatenate", xs, n) : NULL;
    if (!g) return gv_invalid(xs && n > 0 ? xs[0].graph : NULL);
    int a;
    if (n == 1 && gv_norm_axis(axis, gv_value_rank(xs[0]), &a)) return xs[0]; /* else: the rule fails */
    gv_node_spec s = {.op = GV_OP_CONCAT, .nin = n, .in = xs, .iattr = {axis, 0}};
    return gv_emit(g, &s);
}

gv_status gv_split_equal(gv_value x, int n, int axis, gv_value *out) {
    if (!out || n < 1) {
        if (x.graph) gv_graph_fail(x.graph, GV_ERR_ARG, "split: %d parts (need >= 1)%s", n,
                                   out ? "" : " or out is NULL");
        else gv_error(GV_ERR_ARG, "split: %d parts (need >= 1)%s", n, out ? "" : " or out is NULL");
        for (int i = 0; out && i < n; i++) out[i] = gv_invalid(x.graph);
        return GV_ERR_ARG;
    }
    if (!gv_value_ok(x)) {
        /* usually an earlier op failed and its error stands; else this records one */
        if (x.graph) gv_graph_fail(x.graph, GV_ERR_ARG, "split: the operand is not a valid value");
        else gv_error(GV_ERR_ARG, "split: the operand belongs to no graph (an invalid value)");
        for (int i = 0; i < n; i++) out[i] = x;
        return x.graph ? gv_graph_status(x.graph) : GV_ERR_ARG;
    }
    int a;
    int64_t len = 0;
    bool ok = gv_norm_axis(axis, gv_value_rank(x), &a);
    if (ok) len = gv_value_shape(x)[a];
    if (!ok || len % n) {
        char *sx = gv_shape_str(gv_value_rank(x), gv_value_shape(x));
        if (ok)
            gv_graph_fail(x.graph, GV_ERR_SHAPE, "split: axis %d of %s (size %lld) does not "
                          "split into %d equal parts", axis, sx, (long long)len, n);
        else
            gv_graph_fail(x.graph, GV_ERR_ARG, "split: axis %d is out of range for %s", axis, sx);
        free(sx);
        for (int i = 0; i < n; i++) out[i] = gv_invalid(x.graph);
        return ok ? GV_ERR_SHAPE : GV_ERR_ARG;
    }
    for (int i = 0; i < n; i++) out[i] = gv_slice_axis(x, a, i * len / n, (i + 1) * len / n);
    return gv_graph_status(x.graph);
}

/* ---- pad: attr = lo[r], hi[r] (negative crops); fattr[0] = value ---- */

gv_status gv_pad_infer(gv_graph *g, gv_node *n, const gv_node *const *ins) {
    const gv_node *x = ins[0];
    int r = x->rank;
    int64_t *shape = gv_node_set_shape(g, n, r, NULL);
    for (int i = 0; i < r; i++) {
        shape[i] = x->shape[i] + n->attr[i] + n->attr[r + i];
        if (shape[i] < 0) {
            char *sx = gv_shape_str(r, x->shape);
            gv_graph_fail(g, GV_ERR_ARG, "pad: padding (%lld, %lld) leaves axis %d of %s with "
                          "negative size %lld", (long long)n->attr[i], (long long)n->attr[r + i],
                          i, sx, (long long)shape[i]);
            free(sx);
            return GV_ERR_ARG;
        }
    }
    n->dtype = x->dtype;
    return GV_OK;
}

void gv_pad_kernel(const gv_node *n, const gv_node *const *ins, const void *const *in,
                   void *out) {
    const gv_node *x = ins[0];
    int r = x->rank;
    size_t es = gv_dtype_size(n->dtype);
    int64_t size = gv_node_size(n);
    if (r > 0) {
        /* per row: the padding before, the copied span, the padding after */
        char fill[16];
        gv_store_f64(n->dtype, fill, 0, n->fattr[0]);
        bool zero = true; /* all-zero bits (so not -0.0): memset */
        for (size_t k = 0; k < es; k++) zero = zero && fill[k] == 0;
        int64_t cols = n->shape[r - 1], rows = cols ? size / cols : 0, lo = n->attr[r - 1];
        int64_t a = lo > 0 ? lo : 0, b = lo + x->shape[r - 1] < cols ? lo + x->shape[r - 1] : cols;
        if (b < a) b = a;
        for (int64_t row = 0; row < rows; row++) {
            int64_t rem = row, off = a - lo, stride = x->shape[r - 1];
            bool inside = true;
            for (int i = r - 2; i >= 0; i--) {
                int64_t idx = rem % n->shape[i] - n->attr[i];
                rem /= n->shape[i];
                if (idx < 0 || idx >= x->shape[i]) inside = false;
                off += idx * stride;
                stride *= x->shape[i];
            }
            char *o = (char *)out + row * cols * es;
            int64_t c0 = inside ? a : cols, c1 = inside ? b : cols;
            if (zero) memset(o, 0, (size_t)c0 * es);
            else for (int64_t j = 0; j < c0; j++) memcpy(o + j * es, fill, es);
            if (c1 > c0) memcpy(o + c0 * es, (const char *)in[0] + off * es, (size_t)(c1 - c0) * es);
            if (zero) memset(o + c1 * es, 0, (size_t)(cols - c1) * es);
            else for (int64_t j = c1; j < cols; j++) memcpy(o + j * es, fill, es);
        }
        return;
    }
    for (int64_t o = 0; o < size; o++) {
        int64_t rem = o, off = 0, stride = 1;
        bool inside = true;
        for (int i = r - 1; i >= 0; i--) {
            int64_t idx = rem % n->shape[i] - n->attr[i];
            rem /= n->shape[i];
            if (idx < 0 || idx >= x->shape[i]) inside = false;
            off += idx * stride;
            stride *= x->shape[i];
        }
        if (inside) memcpy((char *)out + o * es, (const char *)in[0] + off * es, es);
        else gv_store_f64(n->dtype, out, o, n->fattr[0]);
    }
}

void gv_pad_vjp(const gv_node *n, const gv_value *ins, gv_value out, gv_value ct,
                gv_value *cts) {
    /* the cotangent is ct cropped back: a pad by the negated amounts */
    int r = gv_value_rank(ins[0]);
    int64_t lo[r > 0 ? r : 1], hi[r > 0 ? r : 1];
    for (int i = 0; i < r; i++) lo[i] = -n->attr[i], hi[i] = -n->attr[r + i];
    cts[0] = gv_pad(ct, lo, hi, 0.0);
}

gv_value gv_pad(gv_value x, const int64_t *lo, const int64_t *hi, double value) {
    gv_graph *g = gv_graph_of("pad", &x, 1);
    if (!g) return gv_invalid(x.graph);
    int r = gv_value_rank(x);
    int64_t attr[2 * r + 1];
    bool zero = true;
    for (int i = 0; i < r; i++) {
        attr[i] = lo ? lo[i] : 0;
        attr[r + i] = hi ? hi[i] : 0;
        zero &= attr[i] == 0 && attr[r + i] == 0;
    }
    if (zero) return x;
    gv_node_spec s = {.op = GV_OP_PAD, .nin = 1, .in = &x, .nattr = 2 * r, .attr = attr,
                      .fattr = {value, 0}};
    return gv_emit(g, &s);
}
