/* Leaves of the graph: inputs, constants, fills and iota. */
#include <stdlib.h>
#include <string.h>

#include "ops_internal.h"

bool gv_norm_axis(int axis, int rank, int *out) {
    int a = axis < 0 ? axis + rank : axis;
    if (a < 0 || a >= rank) return false;
    *out = a;
    return true;
}

/* Inputs and fills take their dtype and shape from the node spec. */
gv_status gv_input_infer(gv_graph *g, gv_node *n, const gv_node *const *ins) { return GV_OK; }
void gv_input_kernel(const gv_node *n, const gv_node *const *ins, const void *const *in,
                     void *out) {}
void gv_input_vjp(const gv_node *n, const gv_value *ins, gv_value out, gv_value ct,
                  gv_value *cts) {}

gv_status gv_const_infer(gv_graph *g, gv_node *n, const gv_node *const *ins) { return GV_OK; }
void gv_const_kernel(const gv_node *n, const gv_node *const *ins, const void *const *in,
                     void *out) {
    memcpy(out, gv_tensor_data_const(n->tensor), gv_tensor_nbytes(n->tensor));
}
void gv_const_vjp(const gv_node *n, const gv_value *ins, gv_value out, gv_value ct,
                  gv_value *cts) {}

gv_status gv_full_infer(gv_graph *g, gv_node *n, const gv_node *const *ins) { return GV_OK; }
void gv_full_kernel(const gv_node *n, const gv_node *const *ins, const void *const *in,
                    void *out) {
    int64_t size = gv_node_size(n);
    if (n->dtype == GV_F32) {
        float v = (float)n->fattr[0], *y = out;
        for (int64_t i = 0; i < size; i++) y[i] = v;
        return;
    }
    for (int64_t i = 0; i < size; i++) gv_store_f64(n->dtype, out, i, n->fattr[0]);
}
void gv_full_vjp(const gv_node *n, const gv_value *ins, gv_value out, gv_value ct,
                 gv_value *cts) {}

gv_status gv_iota_infer(gv_graph *g, gv_node *n, const gv_node *const *ins) {
    int a;
    if (!gv_norm_axis((int)n->iattr[0], n->rank, &a)) {
        char *s = gv_shape_str(n->rank, n->shape);
        gv_graph_fail(g, GV_ERR_ARG, "iota: axis %d is out of range for %s", (int)n->iattr[0], s);
        free(s);
        return GV_ERR_ARG;
    }
    n->iattr[0] = a;
    return GV_OK;
}
void gv_iota_kernel(const gv_node *n, const gv_node *const *ins, const void *const *in,
                    void *out) {
    int a = (int)n->iattr[0];
    int64_t inner = 1;
    for (int i = a + 1; i < n->rank; i++) inner *= n->shape[i];
    int64_t size = gv_node_size(n);
    for (int64_t i = 0; i < size; i++)
        gv_store_f64(n->dtype, out, i, (double)((i / inner) % n->shape[a]));
}
void gv_iota_vjp(const gv_node *n, const gv_value *ins, gv_value out, gv_value ct,
                 gv_value *cts) {}

/* ---- public builders ---- */

static bool check_shape(gv_graph *g, const char *op, gv_dtype dtype, int rank,
                        const int64_t *shape) {
    int64_t size;
    if (gv_shape_check(op, dtype, rank, shape, &size) != GV_OK) {
        gv_graph_fail(g, gv_last_status(), "%s", gv_last_error());
        return false;
    }
    return true;
}

gv_value gv_constant(gv_graph *g, const gv_tensor *t) {
    if (!g || g->status != GV_OK) return gv_invalid(g);
    if (!t) {
        gv_graph_fail(g, GV_ERR_ARG, "constant: tensor is NULL");
        return gv_invalid(g);
    }
    gv_tensor *copy = gv_tensor_copy(t);
    if (!copy) {
        gv_graph_fail(g, gv_last_status(), "constant: %s", gv_last_error());
        return gv_invalid(g);
    }
    gv_node_spec s = {.op = GV_OP_CONST, .tensor = copy, .dtype = gv_tensor_dtype(t),
                      .rank = gv_tensor_rank(t), .shape = gv_tensor_shape(t)};
    gv_value v = gv_emit(g, &s);
    gv_tensor_free(copy);
    return v;
}

gv_value gv_full(gv_graph *g, gv_dtype dtype, int rank, const int64_t *shape, double value) {
    if (!g || g->status != GV_OK) return gv_invalid(g);
    if (!check_shape(g, "full", dtype, rank, shape)) return gv_invalid(g);
    gv_node_spec s = {.op = GV_OP_FULL, .dtype = dtype, .rank = rank, .shape = shape,
                      .fattr = {value, 0}};
    return gv_emit(g, &s);
}

gv_value gv_scalar(gv_graph *g, gv_dtype dtype, double value) {
    return gv_full(g, dtype, 0, NULL, value);
}

gv_value gv_full_like(gv_value x, double value) {
    if (!gv_value_ok(x)) return x;
    return gv_full(x.graph, gv_value_dtype(x), gv_value_rank(x), gv_value_shape(x), value);
}
gv_value gv_zeros_like(gv_value x) { return gv_full_like(x, 0.0); }
gv_value gv_ones_like(gv_value x) { return gv_full_like(x, 1.0); }

gv_value gv_iota(gv_graph *g, gv_dtype dtype, int rank, const int64_t *shape, int axis) {
    if (!g || g->status != GV_OK) return gv_invalid(g);
    if (!check_shape(g, "iota", dtype, rank, shape)) return gv_invalid(g);
    gv_node_spec s = {.op = GV_OP_IOTA, .dtype = dtype, .rank = rank, .shape = shape,
                      .iattr = {axis, 0}};
    return gv_emit(g, &s);
}
