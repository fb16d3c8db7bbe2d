/* The primitive registry: one row per primitive, with its name, operand
 * count, shape/dtype rule, reference kernel, VJP rule and flags. The
 * functions live in the ops_*.c file of each family. */
#include "ops_internal.h"

#define ROW(op, name, nin, fam, flags) \
    [op] = {name, nin, gv_##fam##_infer, gv_##fam##_kernel, gv_##fam##_vjp, flags}
#define EW GV_OPF_ELEMENTWISE
#define ND GV_OPF_NONDIFF
#define RND (GV_OPF_RANDOM | GV_OPF_NONDIFF)

const gv_opdef gv_opdefs[GV_OP_COUNT] = {
    ROW(GV_OP_INPUT, "input", 0, input, 0),
    ROW(GV_OP_CONST, "constant", 0, const, ND),
    ROW(GV_OP_FULL, "full", 0, full, ND),
    ROW(GV_OP_IOTA, "iota", 0, iota, ND),

    ROW(GV_OP_NEG, "neg", 1, unary, EW),
    ROW(GV_OP_ABS, "abs", 1, unary, EW),
    ROW(GV_OP_SIGN, "sign", 1, unary, EW | ND),
    ROW(GV_OP_EXP, "exp", 1, unary, EW),
    ROW(GV_OP_LOG, "log", 1, unary, EW),
    ROW(GV_OP_LOG1P, "log1p", 1, unary, EW),
    ROW(GV_OP_EXPM1, "expm1", 1, unary, EW),
    ROW(GV_OP_SQRT, "sqrt", 1, unary, EW),
    ROW(GV_OP_RSQRT, "rsqrt", 1, unary, EW),
    ROW(GV_OP_SQUARE, "square", 1, unary, EW),
    ROW(GV_OP_TANH, "tanh", 1, unary, EW),
    ROW(GV_OP_SIGMOID, "sigmoid", 1, unary, EW),
    ROW(GV_OP_ERF, "erf", 1, unary, EW),
    ROW(GV_OP_RELU, "relu", 1, unary, EW),
    ROW(GV_OP_GELU_TANH, "gelu_tanh", 1, unary, EW),
    ROW(GV_OP_GELU_ERF, "gelu", 1, unary, EW),
    ROW(GV_OP_SILU, "silu", 1, unary, EW),
    ROW(GV_OP_SOFTPLUS, "softplus", 1, unary, EW),
    ROW(GV_OP_CAST, "cast", 1, cast, EW),
    ROW(GV_OP_STOP_GRADIENT, "stop_gradient", 1, unary, EW | ND),

    ROW(GV_OP_ADD, "add", 2, binary, EW),
    ROW(GV_OP_SUB, "sub", 2, binary, EW),
    ROW(GV_OP_MUL, "mul", 2, binary, EW),
    ROW(GV_OP_DIV, "div", 2, binary, EW),
    ROW(GV_OP_POW, "pow", 2, binary, EW),
    ROW(GV_OP_MAX, "max", 2, binary, EW),
    ROW(GV_OP_MIN, "min", 2, binary, EW),
    ROW(GV_OP_EQ, "eq", 2, binary, EW | ND),
    ROW(GV_OP_NE, "ne", 2, binary, EW | ND),
    ROW(GV_OP_LT, "lt", 2, binary, EW | ND),
    ROW(GV_OP_LE, "le", 2, binary, EW | ND),
    ROW(GV_OP_GT, "gt", 2, binary, EW | ND),
    ROW(GV_OP_GE, "ge", 2, binary, EW | ND),
    ROW(GV_OP_SELECT, "select", 3, select, EW),

    ROW(GV_OP_MATMUL, "matmul", 2, matmul, 0),
    ROW(GV_OP_CONV, "conv_general_dilated", 2, conv, 0),

    ROW(GV_OP_REDUCE_SUM, "reduce_sum", 1, reduce, 0),
    ROW(GV_OP_REDUCE_MAX, "reduce_max", 1, reduce, 0),
    ROW(GV_OP_REDUCE_MIN, "reduce_min", 1, reduce, 0),
    ROW(GV_OP_ARGMAX, "argmax", 1, argmax, ND),

    ROW(GV_OP_RESHAPE, "reshape", 1, reshape, 0),
    ROW(GV_OP_TRANSPOSE, "transpose", 1, transpose, 0),
    ROW(GV_OP_BROADCAST, "broadcast_to", 1, broadcast, 0),
    ROW(GV_OP_SLICE, "slice", 1, slice, 0),
    ROW(GV_OP_CONCAT, "concatenate", -1, concat, 0),
    ROW(GV_OP_PAD, "pad", 1, pad, 0),
    ROW(GV_OP_TAKE, "take", 2, take, 0),
    ROW(GV_OP_TAKE_ALONG, "take_along_axis", 2, take_along, 0),
    ROW(GV_OP_SCATTER_ADD_ALONG, "scatter_add_along_axis", 3, scatter_add_along, 0),
    ROW(GV_OP_SCATTER_ADD_TAKE, "scatter_add_take", 3, scatter_add_take, 0),

    ROW(GV_OP_RANDOM_SPLIT, "random_split", 1, random, RND),
    ROW(GV_OP_RANDOM_FOLD_IN, "random_fold_in", 1, random, RND),
    ROW(GV_OP_RANDOM_BITS, "random_bits", 1, random, RND),
    ROW(GV_OP_RANDOM_UNIFORM, "random_uniform", 1, random, RND),
    ROW(GV_OP_RANDOM_NORMAL, "random_normal", 1, random, RND),
    ROW(GV_OP_RANDOM_TRUNC_NORMAL, "random_truncated_normal", 1, random, RND),
    ROW(GV_OP_RANDOM_BERNOULLI, "random_bernoulli", 1, random, RND),

    ROW(GV_OP_PSUM, "psum", 1, psum, 0),
};
