/* grove: concrete n-d arrays.
 *
 * A gv_tensor is a row-major, contiguous array of one dtype and any rank
 * (rank 0 is a scalar). Tensors are reference counted: every function that
 * returns a new gv_tensor * gives the caller one reference, released with
 * gv_tensor_free(). Views (gv_tensor_reshape) share the data of their source
 * and keep it alive. Functions returning a pointer return NULL on failure with
 * gv_last_error() set (see status.h). */
#ifndef GROVE_TENSOR_H
#define GROVE_TENSOR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "grove/status.h"

#ifdef __cplusplus
extern "C" {
#endif

#pragma GCC visibility push(default) /* the public API: exported from libgrove.so */

/* Element types. The numbering leaves room for f16/bf16 storage types.
 * GV_DTYPE_INVALID is no element type: gv_value_dtype's answer for an
 * invalid value; every function taking a dtype refuses it. */
typedef enum gv_dtype {
    GV_DTYPE_INVALID = -1,
    GV_BOOL = 0,
    GV_U8 = 1,
    GV_U16 = 2,
    GV_U32 = 3,
    GV_U64 = 4,
    GV_I32 = 5,
    GV_I64 = 6,
    GV_F32 = 10,
    GV_F64 = 11
} gv_dtype;

/* Bytes per element, or 0 for an unknown dtype. */
size_t gv_dtype_size(gv_dtype dtype);
/* numpy's name: "float32", "int32", "uint8", "bool", ... ("?" if unknown). */
const char *gv_dtype_name(gv_dtype dtype);
/* Parse a numpy dtype name; GV_ERR_ARG if unknown. */
gv_status gv_dtype_from_name(const char *name, gv_dtype *out);
bool gv_dtype_is_float(gv_dtype dtype);
bool gv_dtype_is_valid(gv_dtype dtype);

typedef struct gv_tensor gv_tensor;

/* Shape arguments are (rank, dims). GV_DIMS(2, 3) expands to "2, (int64_t[]){2, 3}"
 * so that gv_tensor_zeros(GV_F32, GV_DIMS(2, 3)) reads like jnp.zeros((2, 3)).
 * A scalar is (0, NULL). */
#define GV_DIMS(...)                                                        \
    (int)(sizeof((int64_t[]){__VA_ARGS__}) / sizeof(int64_t)), (int64_t[]) { \
        __VA_ARGS__                                                         \
    }

/* New tensors (caller owns one reference). All validate dtype, rank >= 0,
 * dims >= 0, and that the element count and byte size fit. */
gv_tensor *gv_tensor_zeros(gv_dtype dtype, int rank, const int64_t *shape);
gv_tensor *gv_tensor_ones(gv_dtype dtype, int rank, const int64_t *shape);
/* Every element = value converted to dtype as a C cast would (bool: value != 0). */
gv_tensor *gv_tensor_full(gv_dtype dtype, int rank, const int64_t *shape, double value);
/* Copies nbytes from data; nbytes must equal size * dtype size exactly. */
gv_tensor *gv_tensor_from_data(gv_dtype dtype, int rank, const int64_t *shape,
                               const void *data, size_t nbytes);
/* Like numpy.arange(start, stop, step) in the given dtype (rank 1). */
gv_tensor *gv_tensor_arange(gv_dtype dtype, double start, double stop, double step);
/* A rank-0 tensor holding value. */
gv_tensor *gv_tensor_scalar(gv_dtype dtype, double value);

/* jax.ShapeDtypeStruct(shape, dtype): a SHAPE-ONLY tensor, with a dtype and
 * a shape but no data, e.g. a restore target that needs no dummy init
 * (gv_eval_shape and gv_tree_to_shape_dtype_struct in eval_shape.h make
 * whole trees of them). The queries (dtype, rank, shape, dim, size, nbytes:
 * the bytes it would hold) answer as for any tensor, and trees, structure
 * checks (gv_tree_check_same), printing (ShapeDtypeStruct(shape=(2, 3),
 * dtype=float32)), tracing (as example inputs) and restoring into it accept
 * it. Everything that needs values refuses it with GV_ERR_ARG and a
 * message saying it is shape-only: gv_tensor_data (NULL), get/set,
 * equal/allclose (false), copy and cast (so gv_tree_copy and gv_constant),
 * saving, running a plan. gv_tensor_reshape of one is shape-only too;
 * gv_tree_zeros_like gives real zeros of its shapes. Checks as
 * gv_tensor_zeros; the caller owns the reference. */
gv_tensor *gv_shape_dtype_struct(gv_dtype dtype, int rank, const int64_t *shape);
/* True for a shape-only tensor (false for NULL and for tensors with data). */
bool gv_tensor_is_abstract(const gv_tensor *t);

/* Reference counting. gv_tensor_retain returns t; gv_tensor_free(NULL) is a no-op. */
gv_tensor *gv_tensor_retain(gv_tensor *t);
void gv_tensor_free(gv_tensor *t);

/* Queries. gv_tensor_dim accepts negative axes (-1 = last); it returns -1 and
 * sets the error if the axis is out of range. On a NULL tensor every query
 * sets GV_ERR_ARG and returns an impossible value (dtype GV_DTYPE_INVALID,
 * rank -1, size and nbytes 0, shape and data NULL, same_shape false), so a
 * failed lookup is an error, not a crash. */
gv_dtype gv_tensor_dtype(const gv_tensor *t);
int gv_tensor_rank(const gv_tensor *t);
const int64_t *gv_tensor_shape(const gv_tensor *t);
int64_t gv_tensor_dim(const gv_tensor *t, int axis);
int64_t gv_tensor_size(const gv_tensor *t);     /* number of elements */
size_t gv_tensor_nbytes(const gv_tensor *t);
/* Row-major, 64-byte aligned; NULL with GV_ERR_ARG for a shape-only tensor. */
void *gv_tensor_data(gv_tensor *t);
const void *gv_tensor_data_const(const gv_tensor *t);
/* x.item(): the one element of a tensor of size 1 (any rank) as a double.
 * NaN with GV_ERR_SHAPE set for any other size, GV_ERR_ARG for NULL. */
double gv_tensor_item(const gv_tensor *t);
/* True if both have the same rank and dims. */
bool gv_tensor_same_shape(const gv_tensor *a, const gv_tensor *b);

/* Element access by multi-index (rank entries, negative allowed) with the
 * value as double (exact for every dtype except 64-bit integers > 2^53). */
gv_status gv_tensor_get(const gv_tensor *t, const int64_t *index, double *out);
gv_status gv_tensor_set(gv_tensor *t, const int64_t *index, double value);
/* The same by flat row-major index. */
gv_status gv_tensor_get_flat(const gv_tensor *t, int64_t i, double *out);
gv_status gv_tensor_set_flat(gv_tensor *t, int64_t i, double value);

/* A deep copy with its own data. */
gv_tensor *gv_tensor_copy(const gv_tensor *t);
/* A view with a new shape and the same data (one dim may be -1, inferred).
 * The view keeps the data alive; writes through either are seen by both. */
gv_tensor *gv_tensor_reshape(gv_tensor *t, int rank, const int64_t *shape);
/* A new tensor with every element converted as numpy's astype does
 * (float -> int truncates toward zero; anything -> bool is value != 0). */
gv_tensor *gv_tensor_cast(const gv_tensor *t, gv_dtype dtype);

/* numpy.array_equal: same dtype, same shape, equal elements (NaN != NaN). */
bool gv_tensor_equal(const gv_tensor *a, const gv_tensor *b);
/* numpy.allclose on same-shape tensors: |a - b| <= atol + rtol * |b|
 * elementwise, compared in double; NaNs equal only if equal_nan. */
bool gv_tensor_allclose(const gv_tensor *a, const gv_tensor *b, double rtol, double atol,
                        bool equal_nan);

/* Printing, as numpy/JAX do (numpy 1.24 defaults: precision 8, linewidth 75,
 * threshold 1000, edgeitems 3). */
typedef struct gv_print_options {
    int precision;   /* digits after the point, default 8 */
    int linewidth;   /* default 75 */
    int64_t threshold; /* summarise above this many elements, default 1000 */
    int edgeitems;   /* items shown at each end when summarising, default 3 */
} gv_print_options;

/* The defaults above. */
gv_print_options gv_print_options_default(void);

/* JAX's repr: "Array([[1., 2.],\n       [3., 4.]], dtype=float32)".
 * Returns a malloc'd string the caller frees, NULL on failure. opts may be NULL
 * (the defaults); a negative precision or edgeitems is GV_ERR_ARG. As in JAX,
 * when "dtype=..." would pass linewidth it follows the last line after six
 * spaces instead of one (JAX does not start a new line for it). */
char *gv_tensor_repr(const gv_tensor *t, const gv_print_options *opts);
/* numpy's str (what print(x) shows): "[[1. 2.]\n [3. 4.]]". Caller frees.
 * A 0-d tensor prints as numpy's scalar str ("1.0", "1e-05"), ignoring opts. */
char *gv_tensor_str(const gv_tensor *t, const gv_print_options *opts);
/* Write gv_tensor_repr(t) and a newline to f. */
gv_status gv_tensor_print(FILE *f, const gv_tensor *t);

#pragma GCC visibility pop

#ifdef __cplusplus
}
#endif
#endif
