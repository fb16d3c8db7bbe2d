/* grove internal: the functions the registry rows point to, per op file. */
#ifndef GROVE_OPS_INTERNAL_H
#define GROVE_OPS_INTERNAL_H

#include "core/tensor_internal.h"
#include "graph_internal.h"

int64_t gv_node_size(const gv_node *n);
/* Element offset of batch element bi of matmul operand x, x's batch dims
 * broadcast to those of the product out (ops_linalg.c). */
int64_t gv_matmul_batch_offset(const gv_node *x, const gv_node *out, int64_t bi);

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
/* ops_conv.c */
GV_DECLARE_OP_FNS(conv)
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
/* ops_collective.c */
GV_DECLARE_OP_FNS(psum)

/* Integers exactly (not through double, which loses 64-bit values): the
 * element's bits widened to 64 (signed types sign-extended), and a store that
 * keeps the low bits, so arithmetic in uint64_t wraps as two's complement at
 * every width, as XLA's integer ops do. */
static inline bool gv_dtype_is_unsigned(gv_dtype d) {
    return d == GV_U8 || d == GV_U16 || d == GV_U32 || d == GV_U64 || d == GV_BOOL;
}
static inline uint64_t gv_load_bits(gv_dtype d, const void *p, int64_t i) {
    switch (d) {
    case GV_BOOL:
    case GV_U8: return ((const uint8_t *)p)[i];
    case GV_U16: return ((const uint16_t *)p)[i];
    case GV_U32: return ((const uint32_t *)p)[i];
    case GV_U64: return ((const uint64_t *)p)[i];
    case GV_I32: return (uint64_t)(int64_t)((const int32_t *)p)[i];
    case GV_I64: return (uint64_t)((const int64_t *)p)[i];
    default: return 0;
    }
}
static inline void gv_store_bits(gv_dtype d, void *p, int64_t i, uint64_t v) {
    switch (d) {
    case GV_BOOL: ((uint8_t *)p)[i] = v != 0; break;
    case GV_U8: ((uint8_t *)p)[i] = (uint8_t)v; break;
    case GV_U16: ((uint16_t *)p)[i] = (uint16_t)v; break;
    case GV_U32: ((uint32_t *)p)[i] = (uint32_t)v; break;
    case GV_U64: ((uint64_t *)p)[i] = v; break;
    case GV_I32: ((int32_t *)p)[i] = (int32_t)(uint32_t)v; break;
    case GV_I64: ((int64_t *)p)[i] = (int64_t)v; break;
    default: break;
    }
}
/* a < b for two loaded integers of dtype d. */
static inline bool gv_int_less(gv_dtype d, uint64_t a, uint64_t b) {
    return gv_dtype_is_unsigned(d) ? a < b : (int64_t)a < (int64_t)b;
}
/* An index element as int64 (unsigned values past INT64_MAX saturate). */
static inline int64_t gv_load_index(gv_dtype d, const void *p, int64_t i) {
    uint64_t v = gv_load_bits(d, p, i);
    if (d == GV_U64 && v > (uint64_t)INT64_MAX) return INT64_MAX;
    return (int64_t)v;
}

/* Shared shape helpers. */
/* Normalise axis (negative allowed) for rank; false if out of range. */
bool gv_norm_axis(int axis, int rank, int *out);

#endif
