/* Helpers shared by the optimiser tests: small float32 trees and checks. */
#ifndef GROVE_OPTIM_TESTUTIL_H
#define GROVE_OPTIM_TESTUTIL_H

#include <math.h>
#include <string.h>

#include "testutil.h"

/* A rank-1 float32 tensor. */
static inline gv_tensor *ot_vec(const float *x, int64_t n) {
    return GVT_NN(gv_tensor_from_data(GV_F32, GV_DIMS(n), x, (size_t)n * sizeof(float)));
}

/* A tree that is one rank-1 float32 leaf (optax's params = jnp.array([...])). */
static inline gv_tree *ot_leaf(const float *x, int64_t n) {
    gv_tensor *t = ot_vec(x, n);
    gv_tree *tr = GVT_NN(gv_tree_new_leaf(t));
    gv_tensor_free(t);
    return tr;
}

static inline const float *ot_f32(const gv_tree *t, const char *path) {
    gv_tensor *x = GVT_NN(gv_tree_get_tensor(t, path));
    cr_assert_eq(gv_tensor_dtype(x), GV_F32, "%s: dtype %s", path, gv_dtype_name(gv_tensor_dtype(x)));
    return gv_tensor_data_const(x);
}

/* Every element within rtol of want (relative to |want|, or atol when want is 0). */
static inline void ot_expect_close(const gv_tree *t, const char *path, const double *want, int64_t n,
                                   double rtol, const char *what) {
    gv_tensor *x = GVT_NN(gv_tree_get_tensor(t, path));
    cr_assert_eq(gv_tensor_size(x), n, "%s: size", what);
    for (int64_t i = 0; i < n; i++) {
        double v;
        GVT_OK(gv_tensor_get_flat(x, i, &v));
        double tol = want[i] == 0 ? rtol : rtol * fabs(want[i]);
        cr_assert(fabs(v - want[i]) <= tol, "%s[%lld]: got %.10g, want %.10g (rtol %g)", what,
                  (long long)i, v, want[i], rtol);
    }
}

/* Every element equal, bit for bit, to the float32 nearest to want[i] (the
 * reference's 9-significant-digit float32 values name one float exactly). */
static inline void ot_expect_exact(const gv_tree *t, const char *path, const double *want, int64_t n,
                                   const char *what) {
    const float *x = ot_f32(t, path);
    for (int64_t i = 0; i < n; i++) {
        float w = (float)want[i];
        uint32_t bx, bw;
        memcpy(&bx, &x[i], 4), memcpy(&bw, &w, 4);
        cr_assert_eq(bx, bw, "%s[%lld]: got %.9g (0x%08x), want %.9g (0x%08x)", what, (long long)i,
                     x[i], bx, w, bw);
    }
}

/* Two tensor trees equal bit for bit (same structure, dtypes, shapes, data). */
static inline void ot_expect_same_bits(const gv_tree *a, const gv_tree *b, const char *what) {
    GVT_OK(gv_tree_check_same(a, b, what));
    gv_tensor **la, **lb;
    size_t na, nb;
    GVT_OK(gv_tree_flatten(a, &la, &na));
    GVT_OK(gv_tree_flatten(b, &lb, &nb));
    for (size_t i = 0; i < na; i++)
        cr_assert(memcmp(gv_tensor_data_const(la[i]), gv_tensor_data_const(lb[i]),
                         gv_tensor_nbytes(la[i])) == 0,
                  "%s: leaf %zu differs", what, i);
    free(la), free(lb);
}

#endif
