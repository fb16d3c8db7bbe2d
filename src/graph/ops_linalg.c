/* matmul (jnp.matmul semantics). The graph primitive is a batched product
 * [..., M, K] x [..., K, N] with broadcasting batch dims; iattr[0]/iattr[1]
 * say an operand is stored transposed ([..., K, M] / [..., N, K]), which only
 * the compiler sets when it folds a transpose into the product. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "ops_internal.h"

/* Dims of an operand as the product sees it (after its transpose flag). */
static void mk(const gv_node *x, bool t, int64_t *rows, int64_t *cols) {
    int64_t r = x->shape[x->rank - 2], c = x->shape[x->rank - 1];
    *rows = t ? c : r;
    *cols = t ? r : c;
}

gv_status gv_matmul_infer(gv_graph *g, gv_node *n, const gv_node *const *ins) {
    const gv_node *a = ins[0], *b = ins[1];
    if (a->dtype != b->dtype || (a->dtype != GV_F32 && a->dtype != GV_F64)) {
        gv_graph_fail(g, GV_ERR_DTYPE, "matmul: needs two float32 or two float64 operands, "
                      "got %s and %s", gv_dtype_name(a->dtype), gv_dtype_name(b->dtype));
        return GV_ERR_DTYPE;
    }
    int64_t m, k1, k2, nn;
    if (a->rank < 2 || b->rank < 2) {
        gv_graph_fail(g, GV_ERR_SHAPE, "matmul: operands of rank %d and %d (need >= 2)",
                      a->rank, b->rank);
        return GV_ERR_SHAPE;
    }
    mk(a, n->iattr[0], &m, &k1);
    mk(b, n->iattr[1], &k2, &nn);
    int br;
    int ra = a->rank - 2, rb = b->rank - 2;
    int64_t batch[(ra > rb ? ra : rb) + 1];
    bool ok = k1 == k2 && gv_broadcast_shapes(ra, a->shape, rb, b->shape, &br, batch);
    if (!ok) {
        char *sa = gv_shape_str(a->rank, a->shape), *sb = gv_shape_str(b->rank, b->shape);
        gv_graph_fail(g, GV_ERR_SHAPE, "matmul: %s x %s: %s", sa, sb,
                      k1 != k2 ? "contracting dims differ" : "batch dims do not broadcast");
        free(sa), free(sb);
        return GV_ERR_SHAPE;
    }
    int64_t *shape = gv_node_set_shape(g, n, br + 2, NULL);
    memcpy(shape, batch, (size_t)br * sizeof *shape);
    shape[br] = m;
    shape[br + 1] = nn;
    n->dtype = a->dtype;
    return GV_OK;
}

/* Offset of batch element bi of operand x (broadcast to the output's batch). */
int64_t gv_matmul_batch_offset(const gv_node *x, const gv_node *out, int64_t bi) {
    int obr = out->rank - 2, xbr = x->rank - 2;
    int64_t off = 0, stride = x->shape[x->rank - 2] * x->shape[x->rank - 1];
    for (int i = obr - 1; i >= 0; i--) {
        int64_t idx = bi % out->shape[i];
        bi /= out->shape[i];
        int xi = i - (obr - xbr);
        if (xi < 0) continue;
        if (x->shape[xi] != 1) off += idx * stride;
        stride *= x->shape[xi];
    }
    return off;
}

/* Reference kernel: each output accumulated over k in order from 0, one
 * multiply-add per term (as XLA's small dots; docs/random.md 7.3). */
void gv_matmul_kernel(const gv_node *n, const gv_node *const *ins, const void *const *in,
                      void *out) {
    const gv_node *a = ins[0], *b = ins[1];
    bool ta = n->iattr[0], tb = n->iattr[1];
    int64_t m, k, k2, nn;
    mk(a, ta, &m, &k);
    mk(b, tb, &k2, &nn);
    int64_t nbatch = 1;
    for (int i = 0; i < n->rank - 2; i++) nbatch *= n->shape[i];
    for (int64_t bi = 0; bi < nbatch; bi++) {
        int64_t oa = gv_matmul_batch_offset(a, n, bi), ob = gv_matmul_batch_offset(b, n, bi);
        /* element (i, p) of op(A): A[i*k + p] or A[p*m + i] when transposed */
        int64_t as_i = ta ? 1 : k, as_p = ta ? m : 1, bs_p = tb ? 1 : nn, bs_j = tb ? k : 1;
        if (n->dtype == GV_F32) {
            const float *A = (const float *)in[0] + oa, *B = (const float *)in[1] + ob;
            float *C = (float *)out + bi * m * nn;
            for (int64_t i = 0; i < m; i++)
                for (int64_t j = 0; j < nn; j++) {
                    float acc = 0.0f;
                    for (int64_t p = 0; p < k; p++) acc = fmaf(A[i * as_i + p * as_p], B[p * bs_p + j * bs_j], acc);
                    C[i * nn + j] = acc;
                }
        } else {
            const double *A = (const double *)in[0] + oa, *B = (const double *)in[1] + ob;
            double *C = (double *)out + bi * m * nn;
            for (int64_t i = 0; i < m; i++)
                for (int64_t j = 0; j < nn; j++) {
                    double acc = 0.0;
                    for (int64_t p = 0; p < k; p++) acc = fma(A[i * as_i + p * as_p], B[p * bs_p + j * bs_j], acc);
                    C[i * nn + j] = acc;
                }
        }
    }
}

/* Swap the last two axes. */
static gv_value mT(gv_value x) {
    if (!gv_value_ok(x)) return x; /* an earlier op of the VJP failed */
    int r = gv_value_rank(x);
    int perm[r];
    for (int i = 0; i < r; i++) perm[i] = i;
    perm[r - 2] = r - 1;
    perm[r - 1] = r - 2;
    return gv_transpose(x, perm);
}

/* C = op(A) op(B): dA = ct op(B)^T, dB = op(A)^T ct, then undo the operand's
 * own transpose and sum the broadcast batch dims away. */
void gv_matmul_vjp(const gv_node *n, const gv_value *ins, gv_value out, gv_value ct,
                   gv_value *cts) {
    gv_value a = ins[0], b = ins[1];
    gv_value opa = n->iattr[0] ? mT(a) : a, opb = n->iattr[1] ? mT(b) : b;
    gv_value da = gv_matmul(ct, mT(opb)), db = gv_matmul(mT(opa), ct);
    if (n->iattr[0]) da = mT(da);
    if (n->iattr[1]) db = mT(db);
    cts[0] = gv_unbroadcast(da, gv_value_rank(a), gv_value_shape(a));
    cts[1] = gv_unbroadcast(db, gv_value_rank(b), gv_value_shape(b));
}

gv_value gv_matmul(gv_value a, gv_value b) {
    gv_value xs[2] = {a, b};
    gv_graph *g = gv_graph_of("matmul", xs, 2);
    if (!g) return gv_invalid(a.graph ? a.graph : b.graph);
    int ra = gv_value_rank(a), rb = gv_value_rank(b);
    const int64_t *sa = gv_value_shape(a), *sb = gv_value_shape(b);
    /* checked here on the operands as given, so a 1-d one is named as it is */
    const char *why = ra == 0 || rb == 0 ? "scalar operand (use mul)"
                    : sa[ra - 1] != sb[rb == 1 ? 0 : rb - 2] ? "contracting dims differ" : NULL;
    if (why) {
        char *a_ = gv_shape_str(ra, sa), *b_ = gv_shape_str(rb, sb);
        gv_graph_fail(g, GV_ERR_SHAPE, "matmul: %s x %s: %s", a_, b_, why);
        free(a_), free(b_);
        return gv_invalid(g);
    }
    /* jnp.matmul: a 1-d operand gains a dim that is removed from the result */
    if (ra == 1) a = gv_reshape(a, GV_DIMS(1, gv_value_shape(a)[0]));
    if (rb == 1) b = gv_reshape(b, GV_DIMS(gv_value_shape(b)[0], 1));
    gv_value ys[2] = {a, b};
    gv_node_spec s = {.op = GV_OP_MATMUL, .nin = 2, .in = ys};
    gv_value c = gv_emit(g, &s);
    if (!gv_value_ok(c) || (ra > 1 && rb > 1)) return c;
    int rc = gv_value_rank(c);
    int64_t shape[rc];
    int k = 0;
    for (int i = 0; i < rc; i++) {
        if (ra == 1 && i == rc - 2) continue;
        if (rb == 1 && i == rc - 1) continue;
        shape[k++] = gv_value_shape(c)[i];
    }
    return gv_reshape(c, k, shape);
}
