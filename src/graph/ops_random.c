/* PRNG ops: a key is a uint32[2] value, so keys can be inputs and outputs
 * of compiled functions (a train step takes a key and returns the next).
 * iattr[0] = gv_prng_impl; the numbers are exactly those of random.h. */
#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "ops_internal.h"
#include "random/random_internal.h"

gv_status gv_random_infer(gv_graph *g, gv_node *n, const gv_node *const *ins) {
    const gv_node *k = ins[0];
    const char *name = gv_opdefs[n->op].name;
    if (k->dtype != GV_U32 || k->rank != 1 || k->shape[0] != 2) {
        char *s = gv_shape_str(k->rank, k->shape);
        gv_graph_fail(g, GV_ERR_SHAPE, "%s: a key is uint32[2], got %s%s", name,
                      gv_dtype_name(k->dtype), s);
        free(s);
        return GV_ERR_SHAPE;
    }
    if (n->iattr[0] != GV_PRNG_LEGACY && n->iattr[0] != GV_PRNG_PARTITIONABLE) {
        gv_graph_fail(g, GV_ERR_ARG, "%s: unknown PRNG scheme %lld", name, (long long)n->iattr[0]);
        return GV_ERR_ARG;
    }
    switch (n->op) {
    case GV_OP_RANDOM_SPLIT:
        if (n->iattr[1] < 0) {
            gv_graph_fail(g, GV_ERR_ARG, "random_split: negative count %lld",
                          (long long)n->iattr[1]);
            return GV_ERR_ARG;
        }
        gv_node_set_shape(g, n, 2, (int64_t[]){n->iattr[1], 2});
        n->dtype = GV_U32;
        break;
    case GV_OP_RANDOM_FOLD_IN:
        gv_node_set_shape(g, n, 1, (int64_t[]){2});
        n->dtype = GV_U32;
        break;
    case GV_OP_RANDOM_BITS: n->dtype = GV_U32; break;
    case GV_OP_RANDOM_BERNOULLI:
        if (!(n->fattr[0] >= 0 && n->fattr[0] <= 1)) {
            gv_graph_fail(g, GV_ERR_ARG, "bernoulli: p = %g is not in [0, 1]", n->fattr[0]);
            return GV_ERR_ARG;
        }
        n->dtype = GV_BOOL;
        break;
    case GV_OP_RANDOM_TRUNC_NORMAL:
        if (!(n->fattr[0] < n->fattr[1])) {
            gv_graph_fail(g, GV_ERR_ARG, "truncated_normal: need lower < upper (got %g, %g)",
                          n->fattr[0], n->fattr[1]);
            return GV_ERR_ARG;
        }
        n->dtype = GV_F32;
        break;
    default: n->dtype = GV_F32; break;
    }
    return GV_OK;
}

void gv_random_kernel(const gv_node *n, const gv_node *const *ins, const void *const *in,
                      void *out) {
    const uint32_t *k = in[0];
    gv_key key = {{k[0], k[1]}};
    gv_prng_impl impl = (gv_prng_impl)n->iattr[0];
    int64_t size = gv_node_size(n);
    switch (n->op) {
    case GV_OP_RANDOM_SPLIT: gv_random_split_eager(impl, key, n->iattr[1], out); break;
    case GV_OP_RANDOM_FOLD_IN: {
        gv_key f = gv_random_fold_in_eager(key, (uint32_t)n->iattr[1]);
        memcpy(out, f.k, sizeof f.k);
        break;
    }
    case GV_OP_RANDOM_BITS: gv_random_bits_fill(impl, key, 32, out, size); break;
    case GV_OP_RANDOM_UNIFORM:
        gv_random_uniform_fill(impl, key, out, size, (float)n->fattr[0], (float)n->fattr[1]);
        break;
    case GV_OP_RANDOM_NORMAL: gv_random_normal_fill(impl, key, out, size); break;
    case GV_OP_RANDOM_TRUNC_NORMAL:
        gv_random_truncated_normal_fill(impl, key, out, size, (float)n->fattr[0],
                                        (float)n->fattr[1]);
        break;
    case GV_OP_RANDOM_BERNOULLI: {
        /* the uniform draw needs float scratch; the reference kernel may allocate */
        float *u = malloc((size_t)(size ? size : 1) * sizeof *u);
        if (u) gv_random_bernoulli_fill(impl, key, out, size, (float)n->fattr[0], u);
        free(u);
        break;
    }
    default: break;
    }
}

void gv_random_vjp(const gv_node *n, const gv_value *ins, gv_value out, gv_value ct,
                   gv_value *cts) {}

static gv_value rnd(gv_opcode op, gv_prng_impl impl, gv_value key, int64_t i1, double f0,
                    double f1, int rank, const int64_t *shape) {
    gv_graph *g = gv_graph_of(gv_opdefs[op].name, &key, 1);
    if (!g) return gv_invalid(key.graph);
    if (shape || rank) {
        int64_t size;
        if (gv_shape_check(gv_opdefs[op].name, GV_F32, rank, shape, &size) != GV_OK) {
            gv_graph_fail(g, gv_last_status(), "%s", gv_last_error());
            return gv_invalid(g);
        }
    }
    gv_node_spec s = {.op = op, .nin = 1, .in = &key, .iattr = {impl, i1}, .fattr = {f0, f1},
                      .rank = rank, .shape = shape};
    return gv_emit(g, &s);
}

gv_value gv_key_constant(gv_graph *g, gv_key key) {
    gv_tensor *t = gv_tensor_from_data(GV_U32, GV_DIMS(2), key.k, sizeof key.k);
    if (!t) {
        gv_graph_fail(g, gv_last_status(), "key constant: %s", gv_last_error());
        return gv_invalid(g);
    }
    gv_value v = gv_constant(g, t);
    gv_tensor_free(t);
    return v;
}

gv_value gv_random_split(gv_prng_impl impl, gv_value key, int64_t n) {
    return rnd(GV_OP_RANDOM_SPLIT, impl, key, n, 0, 0, 0, NULL);
}
gv_value gv_key_at(gv_value keys, int64_t i) {
    if (!gv_value_ok(keys)) return keys;
    return gv_reshape(gv_slice_axis(keys, 0, i, i + 1), GV_DIMS(2));
}
gv_value gv_random_fold_in(gv_value key, uint32_t data) {
    return rnd(GV_OP_RANDOM_FOLD_IN, GV_PRNG_DEFAULT, key, data, 0, 0, 0, NULL);
}
gv_value gv_random_uniform(gv_prng_impl impl, gv_value key, int rank, const int64_t *shape,
                           float minval, float maxval) {
    return rnd(GV_OP_RANDOM_UNIFORM, impl, key, 0, minval, maxval, rank, shape);
}
gv_value gv_random_normal(gv_prng_impl impl, gv_value key, int rank, const int64_t *shape) {
    return rnd(GV_OP_RANDOM_NORMAL, impl, key, 0, 0, 0, rank, shape);
}
gv_value gv_random_truncated_normal(gv_prng_impl impl, gv_value key, float lower,
                                    float upper, int rank, const int64_t *shape) {
    return rnd(GV_OP_RANDOM_TRUNC_NORMAL, impl, key, 0, lower, upper, rank, shape);
}
gv_value gv_random_bernoulli(gv_prng_impl impl, gv_value key, float p, int rank,
                             const int64_t *shape) {
    return rnd(GV_OP_RANDOM_BERNOULLI, impl, key, 0, p, 0, rank, shape);
}
