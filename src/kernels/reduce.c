/* Reductions for plans: the reduced axes are collapsed into one block, so
 * the input is [outer, red, inner] and the kernel is two plain loops with no
 * allocation. Each output accumulates over the reduced block in input order,
 * exactly as the reference kernel does, so the results are bit-identical. */
#include <math.h>

#include "compile/compile_internal.h"

bool gv_reduce_collapse(const gv_node *n, const gv_node *x, int64_t dims[3]) {
    int first = -1, last = -1;
    for (int i = 0; i < n->nattr; i++) {
        int a = (int)n->attr[i];
        if (x->shape[a] == 1) continue; /* size-1 axes reduce trivially */
        if (first < 0 || a < first) first = a;
        if (a > last) last = a;
    }
    int64_t outer = 1, red = 1, inner = 1;
    if (first < 0) { /* nothing but size-1 axes: a copy */
        for (int a = 0; a < x->rank; a++) outer *= x->shape[a];
        dims[0] = outer, dims[1] = 1, dims[2] = 1;
        return true;
    }
    for (int a = first; a <= last; a++) {
        bool reduced = false;
        for (int i = 0; i < n->nattr; i++) reduced |= n->attr[i] == a;
        if (!reduced && x->shape[a] != 1) return false; /* not one block */
        red *= x->shape[a];
    }
    for (int a = 0; a < first; a++) outer *= x->shape[a];
    for (int a = last + 1; a < x->rank; a++) inner *= x->shape[a];
    dims[0] = outer, dims[1] = red, dims[2] = inner;
    return true;
}

void gv_reduce_run(gv_opcode op, const int64_t dims[3], const float *x, float *y) {
    int64_t outer = dims[0], red = dims[1], inner = dims[2];
    float init = op == GV_OP_REDUCE_SUM ? 0.0f : op == GV_OP_REDUCE_MAX ? -INFINITY : INFINITY;
    for (int64_t o = 0; o < outer; o++) {
        float *out = y + o * inner;
        const float *in = x + o * red * inner;
        for (int64_t k = 0; k < inner; k++) out[k] = init;
        for (int64_t r = 0; r < red; r++, in += inner) {
            if (op == GV_OP_REDUCE_SUM)
                for (int64_t k = 0; k < inner; k++) out[k] += in[k];
            else if (op == GV_OP_REDUCE_MAX)
                for (int64_t k = 0; k < inner; k++)
                    out[k] = (in[k] > out[k] || isnan(in[k])) ? in[k] : out[k];
            else
                for (int64_t k = 0; k < inner; k++)
                    out[k] = (in[k] < out[k] || isnan(in[k])) ? in[k] : out[k];
        }
    }
}
