#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "error.h"
#include "tensor_internal.h"

enum { GV_ALIGN = 64 };

size_t gv_dtype_size(gv_dtype d) {
    switch (d) {
    case GV_DTYPE_INVALID: break; /* refused by every caller before this */
    case GV_BOOL: case GV_U8: return 1;
    case GV_U16: return 2;
    case GV_U32: case GV_I32: case GV_F32: return 4;
    case GV_U64: case GV_I64: case GV_F64: return 8;
    }
    return 0;
}

bool gv_dtype_is_valid(gv_dtype d) { return gv_dtype_size(d) != 0; }

bool gv_dtype_is_float(gv_dtype d) { return d == GV_F32 || d == GV_F64; }

static const struct { gv_dtype d; const char *name; } dtype_names[] = {
    {GV_BOOL, "bool"},   {GV_U8, "uint8"},   {GV_U16, "uint16"},
    {GV_U32, "uint32"},  {GV_U64, "uint64"}, {GV_I32, "int32"},
    {GV_I64, "int64"},   {GV_F32, "float32"}, {GV_F64, "float64"},
};

const char *gv_dtype_name(gv_dtype d) {
    for (size_t i = 0; i < sizeof dtype_names / sizeof dtype_names[0]; i++)
        if (dtype_names[i].d == d) return dtype_names[i].name;
    return "?";
}

gv_status gv_dtype_from_name(const char *name, gv_dtype *out) {
    if (!name || !out) return gv_error(GV_ERR_ARG, "gv_dtype_from_name: NULL argument");
    for (size_t i = 0; i < sizeof dtype_names / sizeof dtype_names[0]; i++)
        if (strcmp(dtype_names[i].name, name) == 0) {
            *out = dtype_names[i].d;
            return GV_OK;
        }
    return gv_error(GV_ERR_ARG, "unknown dtype name '%s' (expected bool, uint8, uint16, "
                    "uint32, uint64, int32, int64, float32 or float64)", name);
}

gv_status gv_shape_check(const char *what, gv_dtype dtype, int rank, const int64_t *shape,
                         int64_t *size_out) {
    if (!gv_dtype_is_valid(dtype))
        return gv_error(GV_ERR_DTYPE, "%s: invalid dtype %d", what, (int)dtype);
    if (rank < 0) return gv_error(GV_ERR_ARG, "%s: negative rank %d", what, rank);
    if (rank > 0 && !shape)
        return gv_error(GV_ERR_ARG, "%s: shape is NULL for rank %d", what, rank);
    int64_t size = 1;
    for (int i = 0; i < rank; i++) {
        if (shape[i] < 0)
            return gv_error(GV_ERR_ARG, "%s: dimension %d is negative (%lld)", what, i,
                            (long long)shape[i]);
        if (__builtin_mul_overflow(size, shape[i], &size))
            return gv_error(GV_ERR_OVERFLOW, "%s: element count overflows at dimension %d",
                            what, i);
    }
    size_t bytes;
    if (__builtin_mul_overflow((size_t)size, gv_dtype_size(dtype), &bytes) ||
        bytes > (size_t)PTRDIFF_MAX - GV_ALIGN)
        return gv_error(GV_ERR_OVERFLOW, "%s: %lld elements of %s do not fit in memory", what,
                        (long long)size, gv_dtype_name(dtype));
    *size_out = size;
    return GV_OK;
}

static gv_tensor *tensor_alloc(const char *what, gv_dtype dtype, int rank,
                               const int64_t *shape) {
    int64_t size;
    if (gv_shape_check(what, dtype, rank, shape, &size) != GV_OK) return NULL;
    gv_tensor *t = calloc(1, sizeof *t);
    gv_storage *s = calloc(1, sizeof *s);
    size_t nbytes = (size_t)size * gv_dtype_size(dtype);
    size_t alloc = (nbytes + GV_ALIGN - 1) / GV_ALIGN * GV_ALIGN;
    if (alloc == 0) alloc = GV_ALIGN;
    void *data = t && s ? aligned_alloc(GV_ALIGN, alloc) : NULL;
    int64_t *dims = rank > 0 && data ? malloc((size_t)rank * sizeof *dims) : NULL;
    if (!t || !s || !data || (rank > 0 && !dims)) {
        free(t), free(s), free(data), free(dims);
        gv_error(GV_ERR_NOMEM, "%s: out of memory allocating %zu bytes", what, nbytes);
        return NULL;
    }
    memset(data, 0, alloc);
    if (rank > 0) memcpy(dims, shape, (size_t)rank * sizeof *dims);
    atomic_init(&s->refcount, 1);
    s->nbytes = nbytes;
    s->data = data;
    atomic_init(&t->refcount, 1);
    t->dtype = dtype;
    t->rank = rank;
    t->shape = dims;
    t->size = size;
    t->storage = s;
    return t;
}

/* A tensor without storage: jax.ShapeDtypeStruct (tensor.h). Every path that
 * reads or writes elements goes through gv_tensor_data, flat_index,
 * check_flat or shape_only_error, which refuse it; the queries (dtype,
 * shape, size, nbytes) answer as for a real tensor. Copy and cast refuse it
 * too, so a graph constant made from one (gv_constant copies) fails at once
 * instead of at run time. */
static gv_tensor *shape_only_alloc(const char *what, gv_dtype dtype, int rank,
                                   const int64_t *shape) {
    int64_t size;
    if (gv_shape_check(what, dtype, rank, shape, &size) != GV_OK) return NULL;
    gv_tensor *t = calloc(1, sizeof *t);
    int64_t *dims = rank > 0 ? malloc((size_t)rank * sizeof *dims) : NULL;
    if (!t || (rank > 0 && !dims)) {
        free(t), free(dims);
        gv_error(GV_ERR_NOMEM, "%s: out of memory", what);
        return NULL;
    }
    if (rank > 0) memcpy(dims, shape, (size_t)rank * sizeof *dims);
    atomic_init(&t->refcount, 1);
    t->dtype = dtype;
    t->rank = rank;
    t->shape = dims;
    t->size = size;
    return t;
}

gv_tensor *gv_shape_dtype_struct(gv_dtype dtype, int rank, const int64_t *shape) {
    return shape_only_alloc("gv_shape_dtype_struct", dtype, rank, shape);
}

bool gv_tensor_is_abstract(const gv_tensor *t) { return t && !t->storage; }

/* The error for a shape-only tensor where data is needed, showing it as
 * "float32[2,3]" (a malloc'd text of any rank; "?" without memory). */
static void shape_only_error(const char *what, const gv_tensor *t) {
    size_t cap = 2 + 21 * (size_t)t->rank, n = 0;
    char *dims = malloc(cap);
    for (int i = 0; dims && i < t->rank; i++)
        n += (size_t)snprintf(dims + n, cap - n, "%s%lld", i ? "," : "", (long long)t->shape[i]);
    if (dims) dims[n] = '\0';
    gv_error(GV_ERR_ARG, "%s: the tensor is shape-only (ShapeDtypeStruct %s[%s]): it has no "
             "data; make one with data (gv_tree_zeros_like, or a restore into it)", what,
             gv_dtype_name(t->dtype), dims ? dims : "?");
    free(dims);
}

double gv_load_f64(gv_dtype d, const void *p, int64_t i) {
    switch (d) {
    case GV_DTYPE_INVALID: break; /* refused by every caller before this */
    case GV_BOOL: return ((const uint8_t *)p)[i] != 0;
    case GV_U8: return ((const uint8_t *)p)[i];
    case GV_U16: return ((const uint16_t *)p)[i];
    case GV_U32: return ((const uint32_t *)p)[i];
    case GV_U64: return (double)((const uint64_t *)p)[i];
    case GV_I32: return ((const int32_t *)p)[i];
    case GV_I64: return (double)((const int64_t *)p)[i];
    case GV_F32: return ((const float *)p)[i];
    case GV_F64: return ((const double *)p)[i];
    }
    return 0;
}

/* Float -> integer as numpy's astype on x86-64: truncate toward zero; values
 * out of range (and NaN) are undefined in C, so saturate them instead. */
static int64_t to_i64(double v, double lo, double hi) {
    if (isnan(v)) return 0;
    if (v <= lo) return (int64_t)lo;
    if (v >= hi) return (int64_t)hi;
    return (int64_t)v;
}

static uint64_t to_u64(double v, double hi) {
    if (isnan(v) || v <= 0) {
        /* negative values wrap as numpy does for in-range integers */
        if (v < 0 && v > -9.2233720368547758e18) return (uint64_t)(int64_t)v;
        return 0;
    }
    if (v >= hi) return (uint64_t)hi;
    return (uint64_t)v;
}

void gv_store_f64(gv_dtype d, void *p, int64_t i, double v) {
    switch (d) {
    case GV_DTYPE_INVALID: break; /* refused by every caller before this */
    case GV_BOOL: ((uint8_t *)p)[i] = v != 0; break;
    case GV_U8: ((uint8_t *)p)[i] = (uint8_t)to_u64(v, 18446744073709549568.0); break;
    case GV_U16: ((uint16_t *)p)[i] = (uint16_t)to_u64(v, 18446744073709549568.0); break;
    case GV_U32: ((uint32_t *)p)[i] = (uint32_t)to_u64(v, 18446744073709549568.0); break;
    case GV_U64: ((uint64_t *)p)[i] = to_u64(v, 18446744073709549568.0); break;
    case GV_I32: ((int32_t *)p)[i] = (int32_t)to_i64(v, -2147483648.0, 2147483647.0); break;
    case GV_I64:
        ((int64_t *)p)[i] = to_i64(v, -9223372036854775808.0, 9223372036854774784.0);
        break;
    case GV_F32: ((float *)p)[i] = (float)v; break;
    case GV_F64: ((double *)p)[i] = v; break;
    }
}

gv_tensor *gv_tensor_zeros(gv_dtype dtype, int rank, const int64_t *shape) {
    return tensor_alloc("gv_tensor_zeros", dtype, rank, shape);
}

gv_tensor *gv_tensor_full(gv_dtype dtype, int rank, const int64_t *shape, double value) {
    gv_tensor *t = tensor_alloc("gv_tensor_full", dtype, rank, shape);
    if (!t) return NULL;
    void *p = t->storage->data;
    for (int64_t i = 0; i < t->size; i++) gv_store_f64(dtype, p, i, value);
    return t;
}

gv_tensor *gv_tensor_ones(gv_dtype dtype, int rank, const int64_t *shape) {
    return gv_tensor_full(dtype, rank, shape, 1.0);
}

gv_tensor *gv_tensor_scalar(gv_dtype dtype, double value) {
    return gv_tensor_full(dtype, 0, NULL, value);
}

gv_tensor *gv_tensor_from_data(gv_dtype dtype, int rank, const int64_t *shape,
                               const void *data, size_t nbytes) {
    gv_tensor *t = tensor_alloc("gv_tensor_from_data", dtype, rank, shape);
    if (!t) return NULL;
    if (nbytes != t->storage->nbytes) {
        gv_error(GV_ERR_SHAPE, "gv_tensor_from_data: got %zu bytes, but %lld elements of %s "
                 "need %zu", nbytes, (long long)t->size, gv_dtype_name(dtype),
                 t->storage->nbytes);
        gv_tensor_free(t);
        return NULL;
    }
    if (nbytes && !data) {
        gv_error(GV_ERR_ARG, "gv_tensor_from_data: data is NULL");
        gv_tensor_free(t);
        return NULL;
    }
    if (nbytes) memcpy(t->storage->data, data, nbytes);
    return t;
}

gv_tensor *gv_tensor_arange(gv_dtype dtype, double start, double stop, double step) {
    if (step == 0 || !isfinite(start) || !isfinite(stop) || !isfinite(step)) {
        gv_error(GV_ERR_ARG, "gv_tensor_arange: need finite start/stop and a non-zero step "
                 "(got %g, %g, %g)", start, stop, step);
        return NULL;
    }
    double n = ceil((stop - start) / step);
    if (n < 0) n = 0;
    if (n > 9.0e18) {
        gv_error(GV_ERR_OVERFLOW, "gv_tensor_arange: %g elements is too many", n);
        return NULL;
    }
    int64_t len = (int64_t)n;
    gv_tensor *t = tensor_alloc("gv_tensor_arange", dtype, 1, &len);
    if (!t) return NULL;
    for (int64_t i = 0; i < len; i++)
        gv_store_f64(dtype, t->storage->data, i, start + (double)i * step);
    return t;
}

gv_tensor *gv_tensor_retain(gv_tensor *t) {
    if (t) atomic_fetch_add_explicit(&t->refcount, 1, memory_order_relaxed);
    return t;
}

static void storage_release(gv_storage *s) {
    if (atomic_fetch_sub_explicit(&s->refcount, 1, memory_order_acq_rel) == 1) {
        free(s->data);
        free(s);
    }
}

void gv_tensor_free(gv_tensor *t) {
    if (!t) return;
    if (atomic_fetch_sub_explicit(&t->refcount, 1, memory_order_acq_rel) == 1) {
        if (t->storage) storage_release(t->storage);
        free(t->shape);
        free(t);
    }
}

/* The queries on a NULL tensor (a failed lookup, or a traced value's leaf
 * asked for its tensor) set GV_ERR_ARG and return an impossible value
 * instead of crashing. */
static void null_tensor(const char *what) {
    gv_error(GV_ERR_ARG, "%s: the tensor is NULL (a failed lookup? a leaf that holds a traced "
             "value is read with gv_tree_leaf_value and gv_value_rank/gv_value_shape)", what);
}

gv_dtype gv_tensor_dtype(const gv_tensor *t) {
    if (__builtin_expect(!t, 0)) return null_tensor("gv_tensor_dtype"), GV_DTYPE_INVALID;
    return t->dtype;
}
int gv_tensor_rank(const gv_tensor *t) {
    if (__builtin_expect(!t, 0)) return null_tensor("gv_tensor_rank"), -1;
    return t->rank;
}
const int64_t *gv_tensor_shape(const gv_tensor *t) {
    if (__builtin_expect(!t, 0)) return null_tensor("gv_tensor_shape"), NULL;
    return t->shape;
}
int64_t gv_tensor_size(const gv_tensor *t) {
    if (__builtin_expect(!t, 0)) return null_tensor("gv_tensor_size"), 0;
    return t->size;
}
size_t gv_tensor_nbytes(const gv_tensor *t) {
    if (__builtin_expect(!t, 0)) return null_tensor("gv_tensor_nbytes"), 0;
    return (size_t)t->size * gv_dtype_size(t->dtype);
}
void *gv_tensor_data(gv_tensor *t) {
    if (__builtin_expect(!t, 0)) return null_tensor("gv_tensor_data"), NULL;
    if (__builtin_expect(!t->storage, 0)) return shape_only_error("gv_tensor_data", t), NULL;
    return (char *)t->storage->data + t->offset;
}
const void *gv_tensor_data_const(const gv_tensor *t) {
    if (__builtin_expect(!t, 0)) return null_tensor("gv_tensor_data_const"), NULL;
    if (__builtin_expect(!t->storage, 0))
        return shape_only_error("gv_tensor_data_const", t), NULL;
    return (const char *)t->storage->data + t->offset;
}

int64_t gv_tensor_dim(const gv_tensor *t, int axis) {
    if (!t) return null_tensor("gv_tensor_dim"), -1;
    int a = axis < 0 ? axis + t->rank : axis;
    if (a < 0 || a >= t->rank) {
        gv_error(GV_ERR_ARG, "gv_tensor_dim: axis %d is out of range for rank %d", axis,
                 t->rank);
        return -1;
    }
    return t->shape[a];
}

bool gv_tensor_same_shape(const gv_tensor *a, const gv_tensor *b) {
    if (!a || !b) return null_tensor("gv_tensor_same_shape"), false;
    if (a->rank != b->rank) return false;
    for (int i = 0; i < a->rank; i++)
        if (a->shape[i] != b->shape[i]) return false;
    return true;
}

static gv_status flat_index(const char *what, const gv_tensor *t, const int64_t *index,
                            int64_t *out) {
    if (!t) return gv_error(GV_ERR_ARG, "%s: tensor is NULL", what);
    if (!t->storage) return shape_only_error(what, t), GV_ERR_ARG;
    if (t->rank > 0 && !index) return gv_error(GV_ERR_ARG, "%s: index is NULL", what);
    int64_t flat = 0;
    for (int i = 0; i < t->rank; i++) {
        int64_t k = index[i] < 0 ? index[i] + t->shape[i] : index[i];
        if (k < 0 || k >= t->shape[i])
            return gv_error(GV_ERR_ARG, "%s: index %lld is out of bounds for axis %d with "
                            "size %lld", what, (long long)index[i], i, (long long)t->shape[i]);
        flat = flat * t->shape[i] + k;
    }
    *out = flat;
    return GV_OK;
}

gv_status gv_tensor_get(const gv_tensor *t, const int64_t *index, double *out) {
    int64_t i;
    gv_status st = flat_index("gv_tensor_get", t, index, &i);
    if (st != GV_OK) return st;
    if (!out) return gv_error(GV_ERR_ARG, "gv_tensor_get: out is NULL");
    *out = gv_load_f64(t->dtype, gv_tensor_data_const(t), i);
    return GV_OK;
}

gv_status gv_tensor_set(gv_tensor *t, const int64_t *index, double value) {
    int64_t i;
    gv_status st = flat_index("gv_tensor_set", t, index, &i);
    if (st != GV_OK) return st;
    gv_store_f64(t->dtype, gv_tensor_data(t), i, value);
    return GV_OK;
}

static gv_status check_flat(const char *what, const gv_tensor *t, int64_t *i) {
    if (!t) return gv_error(GV_ERR_ARG, "%s: tensor is NULL", what);
    if (!t->storage) return shape_only_error(what, t), GV_ERR_ARG;
    int64_t k = *i < 0 ? *i + t->size : *i;
    if (k < 0 || k >= t->size)
        return gv_error(GV_ERR_ARG, "%s: flat index %lld is out of bounds for size %lld", what,
                        (long long)*i, (long long)t->size);
    *i = k;
    return GV_OK;
}

gv_status gv_tensor_get_flat(const gv_tensor *t, int64_t i, double *out) {
    gv_status st = check_flat("gv_tensor_get_flat", t, &i);
    if (st != GV_OK) return st;
    if (!out) return gv_error(GV_ERR_ARG, "gv_tensor_get_flat: out is NULL");
    *out = gv_load_f64(t->dtype, gv_tensor_data_const(t), i);
    return GV_OK;
}

gv_status gv_tensor_set_flat(gv_tensor *t, int64_t i, double value) {
    gv_status st = check_flat("gv_tensor_set_flat", t, &i);
    if (st != GV_OK) return st;
    gv_store_f64(t->dtype, gv_tensor_data(t), i, value);
    return GV_OK;
}

gv_tensor *gv_tensor_copy(const gv_tensor *t) {
    if (!t) {
        gv_error(GV_ERR_ARG, "gv_tensor_copy: tensor is NULL");
        return NULL;
    }
    if (!t->storage) return shape_only_error("gv_tensor_copy", t), NULL;
    gv_tensor *c = tensor_alloc("gv_tensor_copy", t->dtype, t->rank, t->shape);
    if (c) memcpy(c->storage->data, gv_tensor_data_const(t), gv_tensor_nbytes(t));
    return c;
}

gv_tensor *gv_tensor_reshape(gv_tensor *t, int rank, const int64_t *shape) {
    if (!t) {
        gv_error(GV_ERR_ARG, "gv_tensor_reshape: tensor is NULL");
        return NULL;
    }
    if (rank < 0 || (rank > 0 && !shape)) {
        gv_error(GV_ERR_ARG, "gv_tensor_reshape: bad rank %d or NULL shape", rank);
        return NULL;
    }
    int64_t *dims = rank > 0 ? malloc((size_t)rank * sizeof *dims) : NULL;
    gv_tensor *v = calloc(1, sizeof *v);
    if ((rank > 0 && !dims) || !v) {
        free(dims), free(v);
        gv_error(GV_ERR_NOMEM, "gv_tensor_reshape: out of memory");
        return NULL;
    }
    int infer = -1;
    int64_t known = 1;
    for (int i = 0; i < rank; i++) {
        dims[i] = shape[i];
        if (shape[i] == -1 && infer < 0) {
            infer = i;
            continue;
        }
        if (shape[i] < 0 || __builtin_mul_overflow(known, shape[i], &known)) {
            gv_error(GV_ERR_ARG, "gv_tensor_reshape: invalid dimension %lld at axis %d",
                     (long long)shape[i], i);
            goto fail;
        }
    }
    if (infer >= 0) {
        if (known == 0 || t->size % known != 0) {
            gv_error(GV_ERR_SHAPE, "gv_tensor_reshape: cannot infer axis %d: %lld elements "
                     "are not a multiple of %lld", infer, (long long)t->size, (long long)known);
            goto fail;
        }
        dims[infer] = t->size / known;
        known = t->size;
    }
    if (known != t->size) {
        gv_error(GV_ERR_SHAPE, "gv_tensor_reshape: cannot reshape %lld elements into a shape "
                 "of %lld elements", (long long)t->size, (long long)known);
        goto fail;
    }
    atomic_init(&v->refcount, 1);
    v->dtype = t->dtype;
    v->rank = rank;
    v->shape = dims;
    v->size = t->size;
    v->storage = t->storage;
    v->offset = t->offset;
    if (t->storage) atomic_fetch_add_explicit(&t->storage->refcount, 1, memory_order_relaxed);
    return v;
fail:
    free(dims);
    free(v);
    return NULL;
}

gv_tensor *gv_tensor_cast(const gv_tensor *t, gv_dtype dtype) {
    if (!t) {
        gv_error(GV_ERR_ARG, "gv_tensor_cast: tensor is NULL");
        return NULL;
    }
    if (!t->storage) return shape_only_error("gv_tensor_cast", t), NULL;
    gv_tensor *c = tensor_alloc("gv_tensor_cast", dtype, t->rank, t->shape);
    if (!c) return NULL;
    const void *src = gv_tensor_data_const(t);
    void *dst = c->storage->data;
    if (dtype == t->dtype) {
        memcpy(dst, src, gv_tensor_nbytes(t));
    } else if (t->dtype == GV_U64 || t->dtype == GV_I64) {
        /* 64-bit integers do not pass through double exactly */
        for (int64_t i = 0; i < t->size; i++) {
            uint64_t u = ((const uint64_t *)src)[i];
            int64_t s = ((const int64_t *)src)[i];
            switch (dtype) {
            case GV_DTYPE_INVALID: break; /* refused by every caller before this */
            case GV_U64: case GV_I64: ((uint64_t *)dst)[i] = u; break;
            case GV_U32: case GV_I32: ((uint32_t *)dst)[i] = (uint32_t)u; break;
            case GV_U16: ((uint16_t *)dst)[i] = (uint16_t)u; break;
            case GV_U8: ((uint8_t *)dst)[i] = (uint8_t)u; break;
            case GV_BOOL: ((uint8_t *)dst)[i] = u != 0; break;
            case GV_F32:
                ((float *)dst)[i] = t->dtype == GV_U64 ? (float)u : (float)s;
                break;
            case GV_F64:
                ((double *)dst)[i] = t->dtype == GV_U64 ? (double)u : (double)s;
                break;
            }
        }
    } else if (!gv_dtype_is_float(t->dtype) && !gv_dtype_is_float(dtype) && dtype != GV_BOOL) {
        /* integer -> integer wraps modulo 2^bits, as numpy does */
        for (int64_t i = 0; i < t->size; i++) {
            int64_t v = (int64_t)gv_load_f64(t->dtype, src, i);
            switch (dtype) {
            case GV_U8: ((uint8_t *)dst)[i] = (uint8_t)v; break;
            case GV_U16: ((uint16_t *)dst)[i] = (uint16_t)v; break;
            case GV_U32: case GV_I32: ((uint32_t *)dst)[i] = (uint32_t)v; break;
            default: ((int64_t *)dst)[i] = v; break;
            }
        }
    } else {
        for (int64_t i = 0; i < t->size; i++)
            gv_store_f64(dtype, dst, i, gv_load_f64(t->dtype, src, i));
    }
    return c;
}

/* Comparing values needs values: false, with the error set, for a
 * shape-only operand (no data is not equal to anything). */
static bool both_concrete(const char *what, const gv_tensor *a, const gv_tensor *b) {
    if (!a->storage || !b->storage) return shape_only_error(what, a->storage ? b : a), false;
    return true;
}

bool gv_tensor_equal(const gv_tensor *a, const gv_tensor *b) {
    if (!a || !b || a->dtype != b->dtype || !gv_tensor_same_shape(a, b)) return false;
    if (!both_concrete("gv_tensor_equal", a, b)) return false;
    const void *pa = gv_tensor_data_const(a), *pb = gv_tensor_data_const(b);
    if (!gv_dtype_is_float(a->dtype)) return memcmp(pa, pb, gv_tensor_nbytes(a)) == 0;
    for (int64_t i = 0; i < a->size; i++)
        if (!(gv_load_f64(a->dtype, pa, i) == gv_load_f64(b->dtype, pb, i))) return false;
    return true;
}

bool gv_tensor_allclose(const gv_tensor *a, const gv_tensor *b, double rtol, double atol,
                        bool equal_nan) {
    if (!a || !b || !gv_tensor_same_shape(a, b)) return false;
    if (!both_concrete("gv_tensor_allclose", a, b)) return false;
    const void *pa = gv_tensor_data_const(a), *pb = gv_tensor_data_const(b);
    for (int64_t i = 0; i < a->size; i++) {
        double x = gv_load_f64(a->dtype, pa, i), y = gv_load_f64(b->dtype, pb, i);
        if (isnan(x) || isnan(y)) {
            if (equal_nan && isnan(x) && isnan(y)) continue;
            return false;
        }
        if (x == y) continue; /* covers equal infinities */
        if (!(fabs(x - y) <= atol + rtol * fabs(y))) return false;
    }
    return true;
}
