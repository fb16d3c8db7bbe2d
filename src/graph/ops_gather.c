/* Indexing: take (jnp.take along an axis), take_along_axis, their
 * scatter-add transposes (the VJPs), and one_hot. Out-of-range indices are
 * clamped, as jnp.take's default gather mode does on CPU ("clip"). */
#include <stdlib.h>
#include <string.h>

#include "ops_internal.h"

static bool is_int(gv_dtype d) {
    return d == GV_I32 || d == GV_I64 || d == GV_U8 || d == GV_U16 || d == GV_U32 ||
           d == GV_U64;
}

static int64_t clampi(int64_t i, int64_t n) {
    if (i < 0) i += n; /* numpy-style negative indices */
    return i < 0 ? 0 : i >= n ? n - 1 : i;
}

/* ---- take: out = x[..., idx[...], ...] along axis; shape
 * x.shape[:a] + idx.shape + x.shape[a+1:] ---- */

gv_status gv_take_infer(gv_graph *g, gv_node *n, const gv_node *const *ins) {
    const gv_node *x = ins[0], *idx = ins[1];
    int a;
    if (!is_int(idx->dtype)) {
        gv_graph_fail(g, GV_ERR_DTYPE, "take: indices must be integers, got %s",
                      gv_dtype_name(idx->dtype));
        return GV_ERR_DTYPE;
    }
    bool in_range = gv_norm_axis((int)n->iattr[0], x->rank, &a);
    if (!in_range || x->shape[a] == 0) {
        /* an empty axis has nothing to clip indices to (jax's fill mode would give NaN) */
        char *sx = gv_shape_str(x->rank, x->shape);
        gv_graph_fail(g, in_range ? GV_ERR_SHAPE : GV_ERR_ARG, "take: axis %d %s %s",
                      (int)n->iattr[0], in_range ? "has size 0 in" : "is out of range for", sx);
        free(sx);
        return in_range ? GV_ERR_SHAPE : GV_ERR_ARG;
    }
    n->iattr[0] = a;
    int r = x->rank - 1 + idx->rank;
    int64_t *shape = gv_node_set_shape(g, n, r, NULL);
    int k = 0;
    for (int i = 0; i < a; i++) shape[k++] = x->shape[i];
    for (int i = 0; i < idx->rank; i++) shape[k++] = idx->shape[i];
    for (int i = a + 1; i < x->rank; i++) shape[k++] = x->shape[i];
    n->dtype = x->dtype;
    return GV_OK;
}

static void take_dims(const gv_node *x, int a, int64_t *outer, int64_t *inner) {
    *outer = 1, *inner = 1;
    for (int i = 0; i < a; i++) *outer *= x->shape[i];
    for (int i = a + 1; i < x->rank; i++) *inner *= x->shape[i];
}

void gv_take_kernel(const gv_node *n, const gv_node *const *ins, const void *const *in,
                    void *out) {
    const gv_node *x = ins[0], *idx = ins[1];
    int a = (int)n->iattr[0];
    int64_t outer, inner, len = x->shape[a], ni = gv_node_size(idx);
    take_dims(x, a, &outer, &inner);
    size_t es = gv_dtype_size(n->dtype), row = (size_t)inner * es;
    char *dst = out;
    for (int64_t o = 0; o < outer; o++)
        for (int64_t j = 0; j < ni; j++) {
            int64_t i = clampi(gv_load_index(idx->dtype, in[1], j), len);
            memcpy(dst, (const char *)in[0] + ((size_t)(o * len + i)) * row, row);
            dst += row;
        }
}

void gv_take_vjp(const gv_node *n, const gv_value *ins, gv_value out, gv_value ct,
                 gv_value *cts) {
    gv_value xs[3] = {ins[0], ins[1], ct};
    gv_node_spec s = {.op = GV_OP_SCATTER_ADD_TAKE, .nin = 3, .in = xs,
                      .iattr = {n->iattr[0], 0}};
    cts[0] = gv_emit(ins[0].graph, &s);
}

gv_value gv_take(gv_value x, gv_value idx, int axis) {
    gv_value xs[2] = {x, idx};
    gv_graph *g = gv_graph_of("take", xs, 2);
    if (!g) return gv_invalid(x.graph ? x.graph : idx.graph);
    gv_node_spec s = {.op = GV_OP_TAKE, .nin = 2, .in = xs, .iattr = {axis, 0}};
    return gv_emit(g, &s);
}

/* scatter_add_take(x_like, idx, upd): zeros of x's shape with upd added at
 * the taken positions (repeated indices accumulate). */
gv_status gv_scatter_add_take_infer(gv_graph *g, gv_node *n, const gv_node *const *ins) {
    n->dtype = ins[0]->dtype;
    gv_node_set_shape(g, n, ins[0]->rank, ins[0]->shape);
    return GV_OK;
}

void gv_scatter_add_take_kernel(const gv_node *n, const gv_node *const *ins,
                                const void *const *in, void *out) {
    const gv_node *x = ins[0], *idx = ins[1];
    int a = (int)n->iattr[0];
    int64_t outer, inner, len = x->shape[a], ni = gv_node_size(idx);
    take_dims(x, a, &outer, &inner);
    int64_t size = gv_node_size(n);
    for (int64_t i = 0; i < size; i++) gv_store_f64(n->dtype, out, i, 0.0);
    int64_t u = 0;
    for (int64_t o = 0; o < outer; o++)
        for (int64_t j = 0; j < ni; j++) {
            int64_t i = clampi(gv_load_index(idx->dtype, in[1], j), len);
            for (int64_t k = 0; k < inner; k++, u++) {
                int64_t d = (o * len + i) * inner + k;
                if (n->dtype == GV_F32) ((float *)out)[d] += ((const float *)in[2])[u];
                else gv_store_f64(n->dtype, out, d, gv_load_f64(n->dtype, out, d) +
                                                        gv_load_f64(n->dtype, in[2], u));
            }
        }
}

void gv_scatter_add_take_vjp(const gv_node *n, const gv_value *ins, gv_value out, gv_value ct,
                             gv_value *cts) {
    cts[2] = gv_take(ct, ins[1], (int)n->iattr[0]);
}

/* ---- take_along_axis: idx has x's rank; out[..., j, ...] = x[..., idx[..., j, ...], ...] */

gv_status gv_take_along_infer(gv_graph *g, gv_node *n, const gv_node *const *ins) {
    const gv_node *x = ins[0], *idx = ins[1];
    int a;
    if (!is_int(idx->dtype)) {
        gv_graph_fail(g, GV_ERR_DTYPE, "take_along_axis: indices must be integers, got %s",
                      gv_dtype_name(idx->dtype));
        return GV_ERR_DTYPE;
    }
    bool ok = idx->rank == x->rank && gv_norm_axis((int)n->iattr[0], x->rank, &a) &&
              x->shape[a] > 0;
    for (int i = 0; ok && i < x->rank; i++) ok = i == a || idx->shape[i] == x->shape[i];
    if (!ok) {
        char *sx = gv_shape_str(x->rank, x->shape), *si = gv_shape_str(idx->rank, idx->shape);
        gv_graph_fail(g, GV_ERR_SHAPE, "take_along_axis: indices %s do not match x %s along "
                      "axis %d", si, sx, (int)n->iattr[0]);
        free(sx), free(si);
        return GV_ERR_SHAPE;
    }
    n->iattr[0] = a;
    n->dtype = x->dtype;
    gv_node_set_shape(g, n, idx->rank, idx->shape);
    return GV_OK;
}

void gv_take_along_kernel(const gv_node *n, const gv_node *const *ins, const void *const *in,
                          void *out) {
    const gv_node *x = ins[0];
    int a = (int)n->iattr[0];
    int64_t outer, inner, len = x->shape[a], m = n->shape[a];
    take_dims(x, a, &outer, &inner);
    size_t es = gv_dtype_size(n->dtype);
    for (int64_t o = 0; o < outer; o++)
        for (int64_t j = 0; j < m; j++)
            for (int64_t k = 0; k < inner; k++) {
                int64_t d = (o * m + j) * inner + k;
                int64_t i = clampi(gv_load_index(ins[1]->dtype, in[1], d), len);
                memcpy((char *)out + d * es, (const char *)in[0] + ((o * len + i) * inner + k) * es,
                       es);
            }
}

void gv_take_along_vjp(const gv_node *n, const gv_value *ins, gv_value out, gv_value ct,
                       gv_value *cts) {
    gv_value xs[3] = {ins[0], ins[1], ct};
    gv_node_spec s = {.op = GV_OP_SCATTER_ADD_ALONG, .nin = 3, .in = xs,
                      .iattr = {n->iattr[0], 0}};
    cts[0] = gv_emit(ins[0].graph, &s);
}

gv_value gv_take_along_axis(gv_value x, gv_value idx, int axis) {
    gv_value xs[2] = {x, idx};
    gv_graph *g = gv_graph_of("take_along_axis", xs, 2);
    if (!g) return gv_invalid(x.graph ? x.graph : idx.graph);
    gv_node_spec s = {.op = GV_OP_TAKE_ALONG, .nin = 2, .in = xs, .iattr = {axis, 0}};
    return gv_emit(g, &s);
}

gv_status gv_scatter_add_along_infer(gv_graph *g, gv_node *n, const gv_node *const *ins) {
    n->dtype = ins[0]->dtype;
    gv_node_set_shape(g, n, ins[0]->rank, ins[0]->shape);
    return GV_OK;
}

void gv_scatter_add_along_kernel(const gv_node *n, const gv_node *const *ins,
                                 const void *const *in, void *out) {
    const gv_node *x = ins[0], *idx = ins[1];
    int a = (int)n->iattr[0];
    int64_t outer, inner, len = x->shape[a], m = idx->shape[a];
    take_dims(x, a, &outer, &inner);
    int64_t size = gv_node_size(n);
    for (int64_t i = 0; i < size; i++) gv_store_f64(n->dtype, out, i, 0.0);
    for (int64_t o = 0; o < outer; o++)
        for (int64_t j = 0; j < m; j++)
            for (int64_t k = 0; k < inner; k++) {
                int64_t s = (o * m + j) * inner + k;
                int64_t i = clampi(gv_load_index(idx->dtype, in[1], s), len);
                int64_t d = (o * len + i) * inner + k;
                gv_store_f64(n->dtype, out, d,
                             gv_load_f64(n->dtype, out, d) + gv_load_f64(n->dtype, in[2], s));
            }
}

void gv_scatter_add_along_vjp(const gv_node *n, const gv_value *ins, gv_value out,
                              gv_value ct, gv_value *cts) {
    cts[2] = gv_take_along_axis(ct, ins[1], (int)n->iattr[0]);
}

/* jax.nn.one_hot: labels[..., None] == arange(n), in dtype */
gv_value gv_one_hot(gv_value labels, int64_t n, gv_dtype dtype) {
    if (!gv_value_ok(labels)) return labels;
    if (n < 0 || gv_value_dtype(labels) == GV_BOOL) {
        char *s = gv_shape_str(gv_value_rank(labels), gv_value_shape(labels));
        gv_graph_fail(labels.graph, GV_ERR_ARG, "one_hot: %s labels %s and %lld classes",
                      gv_dtype_name(gv_value_dtype(labels)), s, (long long)n);
        free(s);
        return gv_invalid(labels.graph);
    }
    int r = gv_value_rank(labels);
    int64_t shape[r + 1];
    for (int i = 0; i < r; i++) shape[i] = gv_value_shape(labels)[i];
    shape[r] = n;
    gv_value cls = gv_iota(labels.graph, gv_value_dtype(labels), r + 1, shape, r);
    return gv_cast(gv_eq(gv_expand_dims(labels, -1), cls), dtype);
}
