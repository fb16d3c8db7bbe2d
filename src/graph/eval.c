/* Reference evaluation: run the needed nodes in order with the registry's
 * reference kernels, one fresh tensor per node, freed after its last use.
 * Slow and simple on purpose: it is what compiled plans are checked against. */
#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "ops_internal.h"

gv_status gv_graph_eval(const gv_graph *g, gv_tensor *const *inputs, int ninputs,
                        const int32_t *out_ids, int nout, gv_tensor **outs) {
    int32_t n = g->n;
    char *need = calloc((size_t)n + 1, 1);
    int32_t *last = malloc(((size_t)n + 1) * sizeof *last);
    gv_tensor **val = calloc((size_t)n + 1, sizeof *val);
    gv_status st = GV_OK;
    if (!need || !last || !val) {
        st = gv_error(GV_ERR_NOMEM, "eval: out of memory for %d nodes", n);
        goto done;
    }
    for (int i = 0; i < nout; i++) need[out_ids[i]] = 1;
    for (int32_t i = n - 1; i >= 0; i--) {
        last[i] = -1;
        if (!need[i]) continue;
        for (int k = 0; k < g->nodes[i].nin; k++) need[g->nodes[i].in[k]] = 1;
    }
    for (int32_t i = 0; i < n; i++)
        if (need[i])
            for (int k = 0; k < g->nodes[i].nin; k++) last[g->nodes[i].in[k]] = i;
    for (int i = 0; i < nout; i++) last[out_ids[i]] = n; /* outputs live to the end */

    for (int32_t i = 0; i < n && st == GV_OK; i++) {
        if (!need[i]) continue;
        const gv_node *nd = &g->nodes[i];
        if (nd->op == GV_OP_INPUT) {
            int64_t idx = nd->iattr[0];
            if (idx < 0 || idx >= ninputs) {
                st = gv_error(GV_ERR_INTERNAL, "eval: input %lld of %d", (long long)idx, ninputs);
                break;
            }
            val[i] = gv_tensor_retain(inputs[idx]);
            continue;
        }
        val[i] = gv_tensor_zeros(nd->dtype, nd->rank, nd->shape);
        if (!val[i]) {
            st = gv_error_prefix("eval: node %d (%s): ", i, gv_opdefs[nd->op].name);
            break;
        }
        int nin = nd->nin;
        const gv_node *ins[nin > 0 ? nin : 1];
        const void *in[nin > 0 ? nin : 1];
        for (int k = 0; k < nin; k++) {
            ins[k] = &g->nodes[nd->in[k]];
            in[k] = gv_tensor_data_const(val[nd->in[k]]);
        }
        gv_opdefs[nd->op].kernel(nd, ins, in, gv_tensor_data(val[i]));
        for (int k = 0; k < nin; k++) {
            int32_t j = nd->in[k];
            if (last[j] == i && val[j]) {
                gv_tensor_free(val[j]);
                val[j] = NULL;
            }
        }
    }
    for (int i = 0; i < nout; i++) outs[i] = st == GV_OK ? gv_tensor_retain(val[out_ids[i]]) : NULL;
done:
    if (val)
        for (int32_t i = 0; i < n; i++) gv_tensor_free(val[i]);
    free(val);
    free(last);
    free(need);
    return st;
}
