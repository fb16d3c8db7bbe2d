/* gv_tensor_item: a one-element tensor read as a double (x.item()). */
#include <math.h>

#include "core/error.h"
#include "grove/tensor.h"

double gv_tensor_item(const gv_tensor *t) {
    if (!t) {
        gv_error(GV_ERR_ARG, "gv_tensor_item: tensor is NULL");
        return NAN;
    }
    if (gv_tensor_size(t) != 1) {
        gv_error(GV_ERR_SHAPE, "gv_tensor_item: a tensor of %lld elements (item needs exactly 1)",
                 (long long)gv_tensor_size(t));
        return NAN;
    }
    const void *p = gv_tensor_data_const(t);
    if (!p) return NAN; /* shape-only: the error is set */
    switch (gv_tensor_dtype(t)) {
    case GV_BOOL: return *(const bool *)p;
    case GV_U8: return *(const uint8_t *)p;
    case GV_U16: return *(const uint16_t *)p;
    case GV_U32: return *(const uint32_t *)p;
    case GV_U64: return (double)*(const uint64_t *)p;
    case GV_I32: return *(const int32_t *)p;
    case GV_I64: return (double)*(const int64_t *)p;
    case GV_F32: return *(const float *)p;
    case GV_F64: return *(const double *)p;
    default: break;
    }
    gv_error(GV_ERR_ARG, "gv_tensor_item: unknown dtype %d", (int)gv_tensor_dtype(t));
    return NAN;
}
