/* grove internal: the functions the registry rows point to, per op file. */
#ifndef GROVE_OPS_INTERNAL_H
#define GROVE_OPS_INTERNAL_H

#include "core/tensor_internal.h"
#include "graph_internal.h"

int64_t gv_node_size(const gv_node *n);

#define GV_DECLARE_OP_FNS(name)                                                          \
    gv_status gv_##name##_infer(gv_graph *g, gv_node *n, const gv_node *const *ins);     \
    void gv_##name##_kernel(const gv_node *n, const gv_node *const *ins,                 \
                            const void *const *in, void *out);                           \
    void gv_##name##_vjp(const gv_node *n, const gv_value *ins, gv_value out, gv_value ct, \
                         gv_value *cts);

/* ops_elementwise.c */
GV_DECLARE_OP_FNS(unary)
GV_DECLARE_OP_FNS(cast)
GV_DECLARE_OP_FNS(binary)
GV_DECLARE_OP_FNS(select)
/* ops_create.c */
GV_DECLARE_OP_FNS(input)
GV_DECLARE_OP_FNS(const)
GV_DECLARE_OP_FNS(full)
GV_DECLARE_OP_FNS(iota)
/* ops_linalg.c */
GV_DECLARE_OP_FNS(matmul)
/* ops_reduce.c */
GV_DECLARE_OP_FNS(reduce)
GV_DECLARE_OP_FNS(argmax)
/* ops_shape.c */
GV_DECLARE_OP_FNS(reshape)
GV_DECLARE_OP_FNS(transpose)
GV_DECLARE_OP_FNS(broadcast)
GV_DECLARE_OP_FNS(slice)
GV_DECLARE_OP_FNS(concat)
GV_DECLARE_OP_FNS(pad)
/* ops_gather.c */
GV_DECLARE_OP_FNS(take)
GV_DECLARE_OP_FNS(take_along)
GV_DECLARE_OP_FNS(scatter_add_along)
GV_DECLARE_OP_FNS(scatter_add_take)
/* ops_random.c */
GV_DECLARE_OP_FNS(random)

/* Shared shape helpers. */
/* Normalise axis (negative allowed) for rank; false if out of range. */
bool gv_norm_axis(int axis, int rank, int *out);

#endif
