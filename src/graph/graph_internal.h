/* grove internal: the graph, its nodes and the primitive registry.
 *
 * A graph is an append-only array of SSA nodes. Each node names a primitive
 * (gv_opcode), its inputs (earlier node ids), its attributes, and its output
 * dtype and shape. Everything a primitive is lives in ONE registry row
 * (gv_opdef, src/graph/registry.c): name, shape/dtype rule, reference kernel,
 * VJP rule, flags. Adding a primitive touches that row and its op file. */
#ifndef GROVE_GRAPH_INTERNAL_H
#define GROVE_GRAPH_INTERNAL_H

#include <stdarg.h>

#include "grove/graph.h"
#include "grove/ops.h"

typedef enum gv_opcode {
    GV_OP_INPUT,      /* iattr[0] = input index (flatten order) */
    GV_OP_CONST,      /* tensor */
    GV_OP_FULL,       /* fattr[0] = value */
    GV_OP_IOTA,       /* iattr[0] = axis */
    /* elementwise unary */
    GV_OP_NEG, GV_OP_ABS, GV_OP_SIGN, GV_OP_EXP, GV_OP_LOG, GV_OP_LOG1P, GV_OP_EXPM1,
    GV_OP_SQRT, GV_OP_RSQRT, GV_OP_SQUARE, GV_OP_TANH, GV_OP_SIGMOID, GV_OP_ERF,
    GV_OP_RELU, GV_OP_GELU_TANH, GV_OP_GELU_ERF, GV_OP_SILU, GV_OP_SOFTPLUS,
    GV_OP_CAST,       /* iattr[0] = target dtype (the node's dtype) */
    GV_OP_STOP_GRADIENT,
    /* elementwise binary (broadcasting) */
    GV_OP_ADD, GV_OP_SUB, GV_OP_MUL, GV_OP_DIV, GV_OP_POW, GV_OP_MAX, GV_OP_MIN,
    GV_OP_EQ, GV_OP_NE, GV_OP_LT, GV_OP_LE, GV_OP_GT, GV_OP_GE,
    GV_OP_SELECT,     /* ternary: cond, a, b */
    /* linear algebra */
    GV_OP_MATMUL,     /* batched: [..., M, K] x [..., K, N]; iattr[0] = transpose a,
                       * iattr[1] = transpose b (set by the compiler's folding) */
    GV_OP_CONV,       /* lhs [N, S..., C], rhs [K..., C/G, O]; attr = stride[s], lo[s],
                       * hi[s], lhs_dilation[s], rhs_dilation[s]; iattr[0] = G (ops_conv.c) */
    /* reductions: attr = axes (sorted), iattr[0] = keepdims */
    GV_OP_REDUCE_SUM, GV_OP_REDUCE_MAX, GV_OP_REDUCE_MIN,
    GV_OP_ARGMAX,     /* iattr[0] = axis, iattr[1] = keepdims */
    /* shapes */
    GV_OP_RESHAPE,    /* shape in the node */
    GV_OP_TRANSPOSE,  /* attr = perm */
    GV_OP_BROADCAST,  /* numpy broadcast to the node's shape */
    GV_OP_SLICE,      /* attr = start[r], limit[r], stride[r] */
    GV_OP_CONCAT,     /* iattr[0] = axis, variadic */
    GV_OP_PAD,        /* attr = lo[r], hi[r]; fattr[0] = value */
    GV_OP_TAKE,       /* x, idx; iattr[0] = axis */
    GV_OP_TAKE_ALONG, /* x, idx; iattr[0] = axis */
    GV_OP_SCATTER_ADD_ALONG, /* zeros-like x + scatter of upd at idx along axis
                              * (the VJP of take_along_axis); ins: x_like, idx, upd */
    GV_OP_SCATTER_ADD_TAKE,  /* VJP of take: ins x_like, idx, upd; iattr[0] = axis */
    /* random: key is uint32[2]; iattr[0] = gv_prng_impl */
    GV_OP_RANDOM_SPLIT,     /* iattr[1] = n -> uint32[n, 2] */
    GV_OP_RANDOM_FOLD_IN,   /* iattr[1] = data */
    GV_OP_RANDOM_BITS,      /* uint32 of the node's shape */
    GV_OP_RANDOM_UNIFORM,   /* fattr = minval, maxval */
    GV_OP_RANDOM_NORMAL,
    GV_OP_RANDOM_TRUNC_NORMAL, /* fattr = lower, upper */
    GV_OP_RANDOM_BERNOULLI,    /* fattr[0] = p */
    /* collectives (distributed.h) */
    GV_OP_PSUM,        /* sum over the processes of the job */
    GV_OP_COUNT
} gv_opcode;

typedef struct gv_node {
    gv_opcode op;
    gv_dtype dtype;
    int rank;
    int64_t *shape;   /* rank dims, in the graph's arena */
    int nin;
    int32_t *in;      /* input node ids, in the arena */
    int nattr;
    int64_t *attr;    /* integer list attribute (axes, perm, starts...), in the arena */
    double fattr[2];  /* scalar float attributes */
    int64_t iattr[2]; /* scalar integer attributes */
    gv_tensor *tensor;/* GV_OP_CONST's data (owned by the graph) */
    int32_t scope;    /* index of the scope path string, -1 = root */
} gv_node;

enum {
    GV_OPF_ELEMENTWISE = 1u << 0, /* out[i] depends on in[j][i] only (after broadcast) */
    GV_OPF_NONDIFF = 1u << 1,     /* no gradient flows to any input */
    GV_OPF_RANDOM = 1u << 2
};

/* Forward kernel: inputs and output are contiguous row-major buffers whose
 * shapes and dtypes are those of the nodes. */
typedef void (*gv_kernel_fn)(const gv_node *n, const gv_node *const *ins,
                             const void *const *in, void *out);
/* Shape/dtype rule: fill n->dtype/rank/shape (gv_node_set_shape) from the
 * inputs and attributes, or return a trace error (gv_graph_fail). */
typedef gv_status (*gv_infer_fn)(gv_graph *g, gv_node *n, const gv_node *const *ins);
/* VJP rule, written with public ops so it can be differentiated again:
 * given the node's inputs and output (as values) and the output cotangent
 * ct, set cts[i] to input i's cotangent, or leave it invalid (no gradient,
 * treated as zero). */
typedef void (*gv_vjp_fn)(const gv_node *n, const gv_value *ins, gv_value out, gv_value ct,
                          gv_value *cts);

typedef struct gv_opdef {
    const char *name;
    int nin;            /* -1 = variadic */
    gv_infer_fn infer;
    gv_kernel_fn kernel;
    gv_vjp_fn vjp;
    unsigned flags;
} gv_opdef;

extern const gv_opdef gv_opdefs[GV_OP_COUNT];

struct gv_graph {
    gv_node *nodes;
    int32_t n, cap;
    /* arena for shapes, input lists and attributes: blocks never move */
    struct gv_arena_block *arena;
    /* scopes */
    char **scopes;       /* interned scope paths */
    int32_t nscopes, scopes_cap;
    int32_t *scope_stack;
    int32_t depth, stack_cap;
    /* the first trace error (sticky) */
    gv_status status;
    char *error;
    int32_t ninputs;
    /* trees the graph owns (gv_graph_own), freed with it */
    gv_tree **owned;
    size_t nowned, owned_cap;
};

/* ---- graph building (src/graph/graph.c) ---- */
gv_graph *gv_graph_new(void);
void gv_graph_free(gv_graph *g);
gv_graph *gv_graph_clone(const gv_graph *g);
void *gv_graph_alloc(gv_graph *g, size_t bytes);
gv_node *gv_graph_node(const gv_graph *g, int32_t id);
/* The node's shape storage for a given rank (in the arena). */
int64_t *gv_node_set_shape(gv_graph *g, gv_node *n, int rank, const int64_t *shape);

/* Describes a node to add: op, inputs, attributes. */
typedef struct gv_node_spec {
    gv_opcode op;
    int nin;
    const gv_value *in;
    int nattr;
    const int64_t *attr;
    double fattr[2];
    int64_t iattr[2];
    gv_tensor *tensor; /* CONST: retained */
    /* for ops whose output shape is not derived from inputs (FULL, IOTA,
     * RESHAPE, BROADCAST, random): the requested dtype/shape */
    gv_dtype dtype;
    int rank;
    const int64_t *shape;
} gv_node_spec;

/* Validate the inputs (same graph, valid), run the op's shape rule, append
 * the node. Returns an invalid value on any error (recorded in the graph). */
gv_value gv_emit(gv_graph *g, const gv_node_spec *spec);
/* The graph shared by the inputs, or NULL if any is invalid (after which
 * the op must return an invalid value). Records an error if graphs differ. */
gv_graph *gv_graph_of(const char *op, const gv_value *xs, int n);
gv_value gv_invalid(gv_graph *g);

/* "scope/path: " or "" for error messages (borrowed). */
const char *gv_graph_scope_prefix(const gv_graph *g);
/* Format a shape as "[16,256]" into a malloc'd string. */
char *gv_shape_str(int rank, const int64_t *shape);

/* ---- elementwise helpers (src/graph/ops_elementwise.c) ---- */
/* numpy broadcasting of two shapes; false if incompatible. out has
 * max(ra, rb) entries. */
bool gv_broadcast_shapes(int ra, const int64_t *a, int rb, const int64_t *b, int *rank,
                         int64_t *out);
/* The sum of x over the axes that broadcasting added or stretched, reshaped
 * to (rank, shape): the cotangent of a broadcast operand. */
gv_value gv_unbroadcast(gv_value x, int rank, const int64_t *shape);

/* ---- evaluation (src/graph/eval.c) ---- */
/* Evaluate the nodes needed for `outs` with the reference kernels. inputs
 * are the INPUT nodes' tensors in index order. Returns new tensors in outs. */
gv_status gv_graph_eval(const gv_graph *g, gv_tensor *const *inputs, int ninputs,
                        const int32_t *out_ids, int nout, gv_tensor **outs);

#endif
