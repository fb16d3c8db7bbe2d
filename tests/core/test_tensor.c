/* gv_tensor: construction, validation, queries, element access, views,
 * casts, comparisons and the error messages of every bad argument. */
#include <math.h>
#include <stdint.h>
#include <string.h>

#include "testutil.h"

Test(dtype, sizes_and_names) {
    cr_assert_eq(gv_dtype_size(GV_F32), 4);
    cr_assert_eq(gv_dtype_size(GV_F64), 8);
    cr_assert_eq(gv_dtype_size(GV_BOOL), 1);
    cr_assert_eq(gv_dtype_size(GV_U16), 2);
    cr_assert_eq(gv_dtype_size((gv_dtype)99), 0);
    cr_assert_str_eq(gv_dtype_name(GV_I32), "int32");
    cr_assert_str_eq(gv_dtype_name(GV_BOOL), "bool");
    cr_assert_str_eq(gv_dtype_name((gv_dtype)99), "?");
    gv_dtype d;
    GVT_OK(gv_dtype_from_name("uint64", &d));
    cr_assert_eq(d, GV_U64);
    GVT_FAILS(gv_dtype_from_name("float8", &d), GV_ERR_ARG, "float8");
    GVT_FAILS(gv_dtype_from_name(NULL, &d), GV_ERR_ARG, "NULL");
    cr_assert(gv_dtype_is_float(GV_F64));
    cr_assert(!gv_dtype_is_float(GV_I64));
}

Test(tensor, zeros_shape_queries) {
    gv_tensor *t = GVT_NN(gv_tensor_zeros(GV_F32, GV_DIMS(2, 3, 4)));
    cr_assert_eq(gv_tensor_rank(t), 3);
    cr_assert_eq(gv_tensor_size(t), 24);
    cr_assert_eq(gv_tensor_nbytes(t), 96);
    cr_assert_eq(gv_tensor_dim(t, 0), 2);
    cr_assert_eq(gv_tensor_dim(t, -1), 4);
    cr_assert_eq(gv_tensor_shape(t)[1], 3);
    cr_assert_eq((uintptr_t)gv_tensor_data(t) % 64, 0, "data is 64-byte aligned");
    const float *p = gv_tensor_data_const(t);
    for (int i = 0; i < 24; i++) cr_assert_eq(p[i], 0.0f);
    gv_clear_error();
    cr_assert_eq(gv_tensor_dim(t, 3), -1);
    cr_assert(strstr(gv_last_error(), "axis 3 is out of range for rank 3"));
    gv_tensor_free(t);
}

Test(tensor, rank_0_and_high_rank) {
    gv_tensor *s = GVT_NN(gv_tensor_scalar(GV_F64, 2.5));
    cr_assert_eq(gv_tensor_rank(s), 0);
    cr_assert_eq(gv_tensor_size(s), 1);
    double v;
    GVT_OK(gv_tensor_get(s, NULL, &v));
    cr_assert_eq(v, 2.5);
    gv_tensor_free(s);
    /* no fixed rank limit: rank 12 */
    int64_t dims[12];
    for (int i = 0; i < 12; i++) dims[i] = 2;
    gv_tensor *h = GVT_NN(gv_tensor_ones(GV_U8, 12, dims));
    cr_assert_eq(gv_tensor_size(h), 4096);
    int64_t idx[12] = {1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, -1};
    GVT_OK(gv_tensor_get(h, idx, &v));
    cr_assert_eq(v, 1.0);
    gv_tensor_free(h);
}

Test(tensor, zero_size_dims) {
    gv_tensor *t = GVT_NN(gv_tensor_zeros(GV_F32, GV_DIMS(3, 0)));
    cr_assert_eq(gv_tensor_size(t), 0);
    cr_assert_eq(gv_tensor_nbytes(t), 0);
    gv_tensor *r = GVT_NN(gv_tensor_reshape(t, GV_DIMS(0, 5)));
    cr_assert_eq(gv_tensor_size(r), 0);
    gv_tensor_free(r);
    gv_tensor_free(t);
}

Test(tensor, constructor_validation) {
    GVT_NULL(gv_tensor_zeros(GV_F32, GV_DIMS(2, -1)), GV_ERR_ARG, "dimension 1 is negative");
    GVT_NULL(gv_tensor_zeros(GV_F32, -1, NULL), GV_ERR_ARG, "negative rank");
    GVT_NULL(gv_tensor_zeros(GV_F32, 2, NULL), GV_ERR_ARG, "shape is NULL");
    GVT_NULL(gv_tensor_zeros((gv_dtype)42, GV_DIMS(2)), GV_ERR_DTYPE, "invalid dtype 42");
    GVT_NULL(gv_tensor_zeros(GV_F32, GV_DIMS(INT64_C(1) << 40, INT64_C(1) << 40)),
             GV_ERR_OVERFLOW, "element count overflows");
    GVT_NULL(gv_tensor_zeros(GV_F64, GV_DIMS(INT64_C(1) << 61)), GV_ERR_OVERFLOW,
             "do not fit in memory");
    float data[6] = {0};
    GVT_NULL(gv_tensor_from_data(GV_F32, GV_DIMS(2, 3), data, 20), GV_ERR_SHAPE,
             "got 20 bytes, but 6 elements of float32 need 24");
    GVT_NULL(gv_tensor_from_data(GV_F32, GV_DIMS(2, 3), NULL, 24), GV_ERR_ARG,
             "data is NULL");
    GVT_NULL(gv_tensor_arange(GV_F32, 0, 5, 0), GV_ERR_ARG, "non-zero step");
    GVT_NULL(gv_tensor_arange(GV_F32, 0, INFINITY, 1), GV_ERR_ARG, "finite");
}

Test(tensor, full_ones_from_data_arange) {
    gv_tensor *f = GVT_NN(gv_tensor_full(GV_I32, GV_DIMS(3), -7.9));
    const int32_t *pi = gv_tensor_data_const(f);
    for (int i = 0; i < 3; i++) cr_assert_eq(pi[i], -7, "C cast truncates toward zero");
    gv_tensor_free(f);
    gv_tensor *b = GVT_NN(gv_tensor_full(GV_BOOL, GV_DIMS(2), 0.5));
    cr_assert_eq(((const uint8_t *)gv_tensor_data_const(b))[1], 1);
    gv_tensor_free(b);
    double src[4] = {1.5, -2.0, 3.25, 1e300};
    gv_tensor *d = GVT_NN(gv_tensor_from_data(GV_F64, GV_DIMS(2, 2), src, sizeof src));
    double v;
    GVT_OK(gv_tensor_get(d, (int64_t[]){1, 1}, &v));
    cr_assert_eq(v, 1e300);
    gv_tensor_free(d);
    gv_tensor *a = GVT_NN(gv_tensor_arange(GV_F32, 0.0, 1.0, 0.25));
    cr_assert_eq(gv_tensor_size(a), 4);
    GVT_OK(gv_tensor_get_flat(a, -1, &v));
    cr_assert_eq(v, 0.75);
    gv_tensor_free(a);
    gv_tensor *e = GVT_NN(gv_tensor_arange(GV_I64, 5, 0, 1));
    cr_assert_eq(gv_tensor_size(e), 0, "empty range as numpy");
    gv_tensor_free(e);
    gv_tensor *down = GVT_NN(gv_tensor_arange(GV_I32, 5, 0, -2));
    cr_assert_eq(gv_tensor_size(down), 3);
    cr_assert_eq(((const int32_t *)gv_tensor_data_const(down))[2], 1);
    gv_tensor_free(down);
}

Test(tensor, element_access_errors) {
    gv_tensor *t = GVT_NN(gv_tensor_zeros(GV_F32, GV_DIMS(2, 3)));
    double v;
    GVT_OK(gv_tensor_set(t, (int64_t[]){-1, -1}, 4.0));
    GVT_OK(gv_tensor_get_flat(t, 5, &v));
    cr_assert_eq(v, 4.0);
    GVT_FAILS(gv_tensor_get(t, (int64_t[]){2, 0}, &v), GV_ERR_ARG,
              "index 2 is out of bounds for axis 0 with size 2");
    GVT_FAILS(gv_tensor_set(t, (int64_t[]){0, -4}, 1), GV_ERR_ARG,
              "index -4 is out of bounds for axis 1 with size 3");
    GVT_FAILS(gv_tensor_get(t, NULL, &v), GV_ERR_ARG, "index is NULL");
    GVT_FAILS(gv_tensor_get(NULL, NULL, &v), GV_ERR_ARG, "tensor is NULL");
    GVT_FAILS(gv_tensor_get_flat(t, 6, &v), GV_ERR_ARG, "flat index 6 is out of bounds");
    GVT_FAILS(gv_tensor_set_flat(t, -7, 0), GV_ERR_ARG, "flat index -7");
    gv_tensor_free(t);
}

Test(tensor, reshape_is_a_view) {
    gv_tensor *t = GVT_NN(gv_tensor_arange(GV_F32, 0, 12, 1));
    gv_tensor *v = GVT_NN(gv_tensor_reshape(t, GV_DIMS(3, -1)));
    cr_assert_eq(gv_tensor_dim(v, 1), 4);
    cr_assert_eq(gv_tensor_data(v), gv_tensor_data(t), "no copy");
    GVT_OK(gv_tensor_set(v, (int64_t[]){2, 3}, 100));
    double x;
    GVT_OK(gv_tensor_get_flat(t, 11, &x));
    cr_assert_eq(x, 100, "write through the view is seen by the source");
    gv_tensor_free(t); /* the view keeps the data alive */
    GVT_OK(gv_tensor_get(v, (int64_t[]){0, 1}, &x));
    cr_assert_eq(x, 1);
    GVT_NULL(gv_tensor_reshape(v, GV_DIMS(5, -1)), GV_ERR_SHAPE, "cannot infer axis 1");
    GVT_NULL(gv_tensor_reshape(v, GV_DIMS(5, 2)), GV_ERR_SHAPE,
             "cannot reshape 12 elements into a shape of 10 elements");
    GVT_NULL(gv_tensor_reshape(v, GV_DIMS(-2, 6)), GV_ERR_ARG, "invalid dimension -2");
    GVT_NULL(gv_tensor_reshape(NULL, GV_DIMS(1)), GV_ERR_ARG, "tensor is NULL");
    gv_tensor_free(v);
}

Test(tensor, copy_is_deep_and_retain_counts) {
    gv_tensor *t = GVT_NN(gv_tensor_ones(GV_I32, GV_DIMS(4)));
    gv_tensor *c = GVT_NN(gv_tensor_copy(t));
    cr_assert_neq(gv_tensor_data(c), gv_tensor_data(t));
    GVT_OK(gv_tensor_set_flat(c, 0, 9));
    double v;
    GVT_OK(gv_tensor_get_flat(t, 0, &v));
    cr_assert_eq(v, 1);
    cr_assert_eq(gv_tensor_retain(t), t);
    gv_tensor_free(t);
    GVT_OK(gv_tensor_get_flat(t, 3, &v)); /* still alive: one reference left */
    gv_tensor_free(t);
    gv_tensor_free(c);
    gv_tensor_free(NULL);
    GVT_NULL(gv_tensor_copy(NULL), GV_ERR_ARG, "tensor is NULL");
}

Test(tensor, cast_as_numpy_astype) {
    float src[6] = {-1.7f, 2.9f, 0.0f, 300.0f, -0.0f, 65537.0f};
    gv_tensor *t = GVT_NN(gv_tensor_from_data(GV_F32, GV_DIMS(6), src, sizeof src));
    gv_tensor *i = GVT_NN(gv_tensor_cast(t, GV_I32));
    const int32_t *pi = gv_tensor_data_const(i);
    int32_t want_i[6] = {-1, 2, 0, 300, 0, 65537};
    cr_assert_arr_eq(pi, want_i, sizeof want_i);
    gv_tensor *b = GVT_NN(gv_tensor_cast(t, GV_BOOL));
    const uint8_t *pb = gv_tensor_data_const(b);
    uint8_t want_b[6] = {1, 1, 0, 1, 0, 1};
    cr_assert_arr_eq(pb, want_b, sizeof want_b);
    /* integer -> narrower integer wraps */
    gv_tensor *u16 = GVT_NN(gv_tensor_cast(i, GV_U16));
    cr_assert_eq(((const uint16_t *)gv_tensor_data_const(u16))[5], 1);
    cr_assert_eq(((const uint16_t *)gv_tensor_data_const(u16))[0], 65535);
    /* 64-bit integers are exact, not rounded through double */
    uint64_t big[2] = {UINT64_MAX, (UINT64_C(1) << 53) + 1};
    gv_tensor *u = GVT_NN(gv_tensor_from_data(GV_U64, GV_DIMS(2), big, sizeof big));
    gv_tensor *s = GVT_NN(gv_tensor_cast(u, GV_I64));
    cr_assert_eq(((const int64_t *)gv_tensor_data_const(s))[0], -1);
    cr_assert_eq(((const int64_t *)gv_tensor_data_const(s))[1], (INT64_C(1) << 53) + 1);
    gv_tensor *back = GVT_NN(gv_tensor_cast(t, GV_F32));
    cr_assert(gv_tensor_equal(back, t));
    gv_tensor_free(t), gv_tensor_free(i), gv_tensor_free(b), gv_tensor_free(u16);
    gv_tensor_free(u), gv_tensor_free(s), gv_tensor_free(back);
    GVT_NULL(gv_tensor_cast(NULL, GV_F32), GV_ERR_ARG, "tensor is NULL");
}

Test(tensor, equal_and_allclose) {
    float a[3] = {1.0f, NAN, 3.0f}, b[3] = {1.0f, NAN, 3.0001f};
    gv_tensor *ta = GVT_NN(gv_tensor_from_data(GV_F32, GV_DIMS(3), a, sizeof a));
    gv_tensor *tb = GVT_NN(gv_tensor_from_data(GV_F32, GV_DIMS(3), b, sizeof b));
    cr_assert(!gv_tensor_equal(ta, ta), "NaN != NaN as numpy.array_equal");
    cr_assert(!gv_tensor_allclose(ta, tb, 1e-5, 1e-8, false));
    cr_assert(gv_tensor_allclose(ta, tb, 1e-4, 0, true));
    cr_assert(!gv_tensor_allclose(ta, tb, 1e-6, 1e-6, true));
    gv_tensor *c = GVT_NN(gv_tensor_zeros(GV_F32, GV_DIMS(1, 3)));
    cr_assert(!gv_tensor_allclose(ta, c, 1, 1, true), "shapes differ");
    cr_assert(!gv_tensor_equal(ta, c));
    gv_tensor *i1 = GVT_NN(gv_tensor_ones(GV_I32, GV_DIMS(2)));
    gv_tensor *f1 = GVT_NN(gv_tensor_ones(GV_F32, GV_DIMS(2)));
    cr_assert(!gv_tensor_equal(i1, f1), "dtypes differ");
    cr_assert(gv_tensor_allclose(i1, f1, 0, 0, false), "values compared as numbers");
    gv_tensor_free(ta), gv_tensor_free(tb), gv_tensor_free(c);
    gv_tensor_free(i1), gv_tensor_free(f1);
}

/* jax.ShapeDtypeStruct: the queries answer, nothing that needs values does. */
Test(tensor, shape_dtype_struct_has_no_data) {
    gv_tensor *t = GVT_NN(gv_shape_dtype_struct(GV_F32, GV_DIMS(2, 3)));
    cr_assert(gv_tensor_is_abstract(t));
    cr_assert_eq(gv_tensor_dtype(t), GV_F32);
    cr_assert_eq(gv_tensor_rank(t), 2);
    cr_assert_eq(gv_tensor_dim(t, -1), 3);
    cr_assert_eq(gv_tensor_size(t), 6);
    cr_assert_eq(gv_tensor_nbytes(t), 24); /* the bytes it would hold */
    gv_tensor *real = GVT_NN(gv_tensor_zeros(GV_F32, GV_DIMS(2, 3)));
    cr_assert(!gv_tensor_is_abstract(real) && !gv_tensor_is_abstract(NULL));
    cr_assert(gv_tensor_same_shape(t, real));

    GVT_NULL(gv_tensor_data(t), GV_ERR_ARG, "gv_tensor_data: the tensor is shape-only "
             "(ShapeDtypeStruct float32[2,3])");
    GVT_NULL(gv_tensor_data_const(t), GV_ERR_ARG, "shape-only");
    double v;
    GVT_FAILS(gv_tensor_get(t, (int64_t[]){0, 0}, &v), GV_ERR_ARG, "shape-only");
    GVT_FAILS(gv_tensor_set(t, (int64_t[]){0, 0}, 1.0), GV_ERR_ARG, "shape-only");
    GVT_FAILS(gv_tensor_get_flat(t, 0, &v), GV_ERR_ARG, "shape-only");
    GVT_FAILS(gv_tensor_set_flat(t, 0, 1.0), GV_ERR_ARG, "shape-only");
    GVT_NULL(gv_tensor_copy(t), GV_ERR_ARG, "gv_tensor_copy: the tensor is shape-only");
    GVT_NULL(gv_tensor_cast(t, GV_F64), GV_ERR_ARG, "gv_tensor_cast: the tensor is shape-only");
    gv_clear_error();
    cr_assert(!gv_tensor_equal(t, real) && !gv_tensor_equal(real, t));
    cr_assert(strstr(gv_last_error(), "gv_tensor_equal: the tensor is shape-only"));
    gv_clear_error();
    cr_assert(!gv_tensor_allclose(t, t, 0, 0, true));
    cr_assert(strstr(gv_last_error(), "shape-only"));

    /* a view of one is shape-only too, and keeps nothing alive it lacks */
    gv_tensor *r = GVT_NN(gv_tensor_reshape(t, GV_DIMS(-1)));
    cr_assert(gv_tensor_is_abstract(r));
    cr_assert_eq(gv_tensor_dim(r, 0), 6);
    gv_tensor_free(r);

    /* a scalar, and the checks of gv_tensor_zeros */
    gv_tensor *s = GVT_NN(gv_shape_dtype_struct(GV_I32, 0, NULL));
    cr_assert_eq(gv_tensor_size(s), 1);
    GVT_NULL(gv_tensor_data(s), GV_ERR_ARG, "int32[]");
    gv_tensor_free(s);
    GVT_NULL(gv_shape_dtype_struct(GV_F32, GV_DIMS(2, -1)), GV_ERR_ARG, "negative");
    GVT_NULL(gv_shape_dtype_struct(GV_DTYPE_INVALID, GV_DIMS(2)), GV_ERR_DTYPE, "dtype");
    gv_tensor_free(real);
    gv_tensor_free(t);
}

Test(status, names_and_clearing) {
    cr_assert_str_eq(gv_status_name(GV_ERR_SHAPE), "GV_ERR_SHAPE");
    cr_assert_str_eq(gv_status_name(GV_OK), "GV_OK");
    GVT_NULL(gv_tensor_zeros(GV_F32, GV_DIMS(-3)), GV_ERR_ARG, "negative");
    cr_assert_eq(gv_last_status(), GV_ERR_ARG);
    gv_clear_error();
    cr_assert_eq(gv_last_status(), GV_OK);
    cr_assert_str_eq(gv_last_error(), "");
}

/* A failed lookup's NULL is an error, not a crash (e.g. asking a leaf that
 * holds a traced value for its tensor). */
Test(tensor, queries_on_null_are_errors) {
    cr_assert_eq(gv_tensor_rank(NULL), -1);
    cr_assert_eq(gv_last_status(), GV_ERR_ARG);
    cr_assert(strstr(gv_last_error(), "gv_tensor_rank: the tensor is NULL"), "%s", gv_last_error());
    cr_assert_eq(gv_tensor_dtype(NULL), GV_DTYPE_INVALID);
    cr_assert_null(gv_tensor_shape(NULL));
    cr_assert_eq(gv_tensor_size(NULL), 0);
    cr_assert_eq(gv_tensor_nbytes(NULL), 0);
    cr_assert_null(gv_tensor_data(NULL));
    cr_assert_null(gv_tensor_data_const(NULL));
    cr_assert_eq(gv_tensor_dim(NULL, 0), -1);
    cr_assert(!gv_tensor_same_shape(NULL, NULL));
}
