/* grove internal: the tensor layout, shared by src/core and later kernels. */
#ifndef GROVE_CORE_TENSOR_INTERNAL_H
#define GROVE_CORE_TENSOR_INTERNAL_H

#include <stdatomic.h>

#include "grove/tensor.h"

/* Data block shared by a tensor and its views. */
typedef struct gv_storage {
    atomic_int refcount;
    size_t nbytes;
    void *data;
} gv_storage;

struct gv_tensor {
    atomic_int refcount;
    gv_dtype dtype;
    int rank;
    int64_t *shape;   /* rank entries (NULL for rank 0) */
    int64_t size;     /* product of shape */
    gv_storage *storage;
    size_t offset;    /* bytes from storage->data */
};

/* Checks dtype, rank and dims, and computes the element count with overflow
 * checks. `what` names the caller for the message. */
gv_status gv_shape_check(const char *what, gv_dtype dtype, int rank, const int64_t *shape,
                         int64_t *size_out);

/* Read/write element i as double, without checks. */
double gv_load_f64(gv_dtype dtype, const void *data, int64_t i);
void gv_store_f64(gv_dtype dtype, void *data, int64_t i, double v);

#endif
