/* grove internal: the layout of a traced function. */
#ifndef GROVE_FN_INTERNAL_H
#define GROVE_FN_INTERNAL_H

#include "graph_internal.h"

struct gv_fn {
    gv_graph *graph;    /* owned */
    gv_tree *example;   /* the example inputs (tensor leaves: shapes and dtypes) */
    gv_tree *inputs;    /* the same structure with INPUT values as leaves */
    gv_tree *outputs;   /* value leaves */
    size_t ninputs;
    int32_t *out_ids;   /* output node ids in flatten order */
    size_t nout;
};

/* Replace the outputs (a tree of values of f's graph; copied). */
gv_status gv_fn_set_outputs(gv_fn *f, const gv_tree *out);

#endif
