/* Collectives across the processes of a data-parallel job (jax.lax.psum,
 * pmean): the primitive psum, and pmean over values and trees built on it.
 *
 * psum is the one primitive whose result depends on other processes. Every
 * process traces and compiles the same function, so every process runs the
 * same psums in the same order; the optimiser must still never evaluate
 * one at compile time (optimize.c skips it when folding constants). */
#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "dist/dist_internal.h"
#include "grove/distributed.h"
#include "grove/ops.h"
#include "ops_internal.h"
#include "optim/optim_internal.h" /* gv_tx_leaves, gv_tx_rebuild: trees of values */

gv_status gv_psum_infer(gv_graph *g, gv_node *n, const gv_node *const *ins) {
    const gv_node *x = ins[0];
    if (!gv_dist_sum_supports(x->dtype)) {
        gv_graph_fail(g, GV_ERR_DTYPE, "psum: needs a float or integer operand, got %s",
                      gv_dtype_name(x->dtype));
        return GV_ERR_DTYPE;
    }
    n->dtype = x->dtype;
    gv_node_set_shape(g, n, x->rank, x->shape);
    return GV_OK;
}

void gv_psum_kernel(const gv_node *n, const gv_node *const *ins, const void *const *in,
                    void *out) {
    int64_t count = gv_node_size(n);
    if (in[0] != out) memmove(out, in[0], (size_t)count * gv_dtype_size(n->dtype));
    gv_dist_allreduce_sum(out, count, n->dtype);
}

/* d psum(x) / dx: every process's x reaches every process's output, so the
 * cotangent of x is the sum of the output cotangents: psum(ct). */
void gv_psum_vjp(const gv_node *n, const gv_value *ins, gv_value out, gv_value ct,
                 gv_value *cts) {
    cts[0] = gv_psum(ct);
}

gv_value gv_psum(gv_value x) {
    gv_graph *g = gv_graph_of("psum", &x, 1);
    if (!g) return gv_invalid(x.graph);
    gv_node_spec s = {.op = GV_OP_PSUM, .nin = 1, .in = &x};
    return gv_emit(g, &s);
}

gv_value gv_pmean(gv_value x) {
    int n = gv_process_count();
    if (n == 1) return x;
    gv_value s = gv_psum(x);
    return gv_div(s, gv_scalar(x.graph, gv_value_dtype(x), (double)n));
}

gv_value gv_process_rows(gv_value x) {
    int p = gv_process_count();
    if (p == 1 || !gv_value_ok(x)) return x;
    int rank = gv_value_rank(x);
    if (rank < 1) return gv_value_fail(x.graph, GV_ERR_SHAPE, "process_rows: a scalar has no rows");
    int64_t n = gv_value_shape(x)[0];
    if (n % p)
        return gv_value_fail(x.graph, GV_ERR_SHAPE, "process_rows: %lld rows do not divide into "
                             "%d processes", (long long)n, p);
    return gv_slice_axis(x, 0, gv_process_index() * (n / p), (gv_process_index() + 1) * (n / p));
}

/* ---- pmean of a tree, bucketed ---- */

/* The nb float32 leaves v[order[0..nb)] reduced as one message:
 * flattened, concatenated, psum'd (pmean'd), cut apart and reshaped again
 * (v's entries replaced by the results). */
static void reduce_bucket(gv_value *v, const size_t *order, size_t nb, bool mean) {
    gv_value flat[nb];
    int64_t at[nb + 1];
    memset(flat, 0, sizeof flat);
    at[0] = 0;
    for (size_t k = 0; k < nb; k++) {
        gv_value x = v[order[k]];
        flat[k] = gv_reshape(x, 1, (int64_t[]){-1});
        at[k + 1] = at[k] + gv_value_size(x);
    }
    gv_value all = nb == 1 ? flat[0] : gv_concatenate(flat, (int)nb, 0);
    gv_value sum = mean ? gv_pmean(all) : gv_psum(all);
    for (size_t k = 0; k < nb; k++) {
        gv_value x = v[order[k]];
        gv_value part = nb == 1 ? sum
                                : gv_slice(sum, (int64_t[]){at[k]}, (int64_t[]){at[k + 1]}, NULL);
        v[order[k]] = gv_reshape(part, gv_value_rank(x), gv_value_shape(x));
    }
}

/* psum (mean: pmean) of every leaf, bucketed. */
static gv_tree *reduce_tree(gv_graph *g, const gv_tree *tree, size_t bucket_bytes, bool mean) {
    const char *fn = mean ? "pmean_tree" : "psum_tree";
    if (!g || gv_graph_status(g) != GV_OK) return NULL;
    if (!tree) {
        gv_graph_fail(g, GV_ERR_ARG, "%s: the tree is NULL", fn);
        return NULL;
    }
    gv_value *v = NULL;
    size_t n = 0, *order = NULL;
    gv_status st = gv_tx_leaves(tree, &v, &n, NULL);
    if (!st && !(order = calloc(n ? n : 1, sizeof *order)))
        st = gv_error(GV_ERR_NOMEM, "out of memory");
    if (st) {
        free(v);
        gv_graph_fail(g, st, "%s: %s", fn, gv_last_error());
        return NULL;
    }
    if (gv_process_count() > 1) {
        if (!bucket_bytes) bucket_bytes = (size_t)1 << 20;
        /* float32 leaves in buckets, last leaf first; others one by one */
        size_t nb = 0, bytes = 0;
        for (size_t i = n; i-- > 0;) {
            gv_value x = v[i];
            if (gv_value_dtype(x) != GV_F32) {
                v[i] = mean ? gv_pmean(x) : gv_psum(x);
                continue;
            }
            size_t xb = (size_t)gv_value_size(x) * 4;
            if (nb && bytes + xb > bucket_bytes) {
                reduce_bucket(v, order, nb, mean);
                nb = 0, bytes = 0;
            }
            order[nb++] = i, bytes += xb;
        }
        if (nb) reduce_bucket(v, order, nb, mean);
    }
    /* one process: the tree itself, copied */
    gv_tree *out = gv_graph_status(g) == GV_OK ? gv_tx_rebuild(tree, v) : NULL;
    free(v), free(order);
    if (!out && gv_graph_status(g) == GV_OK)
        gv_graph_fail(g, gv_last_status(), "%s: %s", fn, gv_last_error());
    return out;
}

gv_tree *gv_pmean_tree(gv_graph *g, const gv_tree *tree, size_t bucket_bytes) {
    return reduce_tree(g, tree, bucket_bytes, true);
}

gv_tree *gv_psum_tree(gv_graph *g, const gv_tree *tree, size_t bucket_bytes) {
    return reduce_tree(g, tree, bucket_bytes, false);
}
