/* Tracing: a C function becomes a graph once; evaluating the graph with
 * the reference kernels gives the numbers the ops define; trace errors are
 * sticky and name the op, the shapes and the scope. */
#include <math.h>
#include <string.h>

#include "testutil.h"

static gv_tensor *tensor_f32(int rank, const int64_t *shape, const float *data) {
    int64_t n = 1;
    for (int i = 0; i < rank; i++) n *= shape[i];
    return GVT_NN(gv_tensor_from_data(GV_F32, rank, shape, data, (size_t)n * 4));
}

/* y = relu(x @ w + b), loss = mean(y^2) */
static gv_tree *mlp(gv_graph *g, const gv_tree *in, void *ud) {
    gv_value x = gv_tree_get_value(in, "x"), w = gv_tree_get_value(in, "params/w"),
             b = gv_tree_get_value(in, "params/b");
    gv_value y = gv_relu(gv_add(gv_matmul(x, w), b));
    gv_tree *out = gv_tree_new_dict();
    gv_tree_insert_value(out, "y", y);
    gv_tree_insert_value(out, "loss", gv_mean(gv_square(y), NULL, 0, false));
    return out;
}

static gv_tree *mlp_inputs(void) {
    float x[6] = {1, -2, 3, 0.5f, 0.25f, -1};
    float w[6] = {0.1f, -0.2f, 0.3f, 0.4f, -0.5f, 0.6f};
    float b[2] = {0.05f, -0.05f};
    gv_tensor *tx = tensor_f32(GV_DIMS(2, 3), x), *tw = tensor_f32(GV_DIMS(3, 2), w),
              *tb = tensor_f32(GV_DIMS(2), b);
    gv_tree *in = gv_tree_new_dict();
    GVT_OK(gv_tree_insert_tensor(in, "x", tx));
    GVT_OK(gv_tree_insert_tensor(in, "params/w", tw));
    GVT_OK(gv_tree_insert_tensor(in, "params/b", tb));
    gv_tensor_free(tx), gv_tensor_free(tw), gv_tensor_free(tb);
    return in;
}

Test(trace, mlp_forward_values) {
    gv_tree *in = mlp_inputs();
    gv_fn *f = GVT_NN(gv_trace(mlp, NULL, in));
    gv_tree *out = NULL;
    GVT_OK(gv_fn_eval(f, in, &out));
    const float *y = gv_tensor_data_const(GVT_NN(gv_tree_get_tensor(out, "y")));
    /* x @ w + b by hand */
    float want[4];
    float x[6] = {1, -2, 3, 0.5f, 0.25f, -1}, w[6] = {0.1f, -0.2f, 0.3f, 0.4f, -0.5f, 0.6f};
    float b[2] = {0.05f, -0.05f};
    double loss = 0;
    for (int i = 0; i < 2; i++)
        for (int j = 0; j < 2; j++) {
            float acc = 0;
            for (int k = 0; k < 3; k++) acc += x[i * 3 + k] * w[k * 2 + j];
            acc += b[j];
            want[i * 2 + j] = acc > 0 ? acc : 0;
            loss += (double)want[i * 2 + j] * want[i * 2 + j];
        }
    for (int i = 0; i < 4; i++) cr_expect_float_eq(y[i], want[i], 1e-6, "y[%d]", i);
    double got;
    GVT_OK(gv_tensor_get(gv_tree_get_tensor(out, "loss"), NULL, &got));
    cr_expect_float_eq(got, loss / 4, 1e-6);
    gv_tree_free(out);
    gv_fn_free(f);
    gv_tree_free(in);
}

static gv_tree *bad_matmul(gv_graph *g, const gv_tree *in, void *ud) {
    gv_graph_push_scope(g, "params");
    gv_graph_push_scope(g, "Dense_1");
    gv_value x = gv_tree_get_value(in, "x"), w = gv_tree_get_value(in, "params/w");
    gv_value y = gv_matmul(x, x); /* [2,3] x [2,3]: mismatch */
    y = gv_add(y, w);            /* no-op after the first error */
    gv_graph_pop_scope(g);
    gv_graph_pop_scope(g);
    return gv_tree_new_value_leaf(y);
}

Test(trace, errors_are_sticky_and_named) {
    gv_tree *in = mlp_inputs();
    GVT_NULL(gv_trace(bad_matmul, NULL, in), GV_ERR_SHAPE,
             "params/Dense_1: matmul: [2,3] x [2,3]: contracting dims differ");
    GVT_NULL(gv_trace(NULL, NULL, in), GV_ERR_ARG, "fn is NULL");
    gv_tree_free(in);
}

static gv_tree *dtype_mismatch(gv_graph *g, const gv_tree *in, void *ud) {
    gv_value x = gv_tree_get_value(in, "x");
    return gv_tree_new_value_leaf(gv_add(x, gv_cast(x, GV_F64)));
}

static gv_tree *missing_input(gv_graph *g, const gv_tree *in, void *ud) {
    return gv_tree_new_value_leaf(gv_exp(gv_tree_get_value(in, "params/nope")));
}

Test(trace, dtype_and_path_errors) {
    gv_tree *in = mlp_inputs();
    GVT_NULL(gv_trace(dtype_mismatch, NULL, in), GV_ERR_DTYPE, "add: dtype float32 vs float64");
    GVT_NULL(gv_trace(missing_input, NULL, in), GV_ERR_NOT_FOUND, "nope");
    gv_tree_free(in);
}

Test(trace, eval_checks_inputs) {
    gv_tree *in = mlp_inputs();
    gv_fn *f = GVT_NN(gv_trace(mlp, NULL, in));
    gv_tensor *bad = GVT_NN(gv_tensor_zeros(GV_F32, GV_DIMS(5)));
    GVT_OK(gv_tree_set_tensor(in, "params/b", bad));
    gv_tree *out = NULL;
    GVT_FAILS(gv_fn_eval(f, in, &out), GV_ERR_STRUCTURE, "params/b: shape (2,) vs (5,)");
    cr_assert_null(out);
    gv_tensor_free(bad);
    gv_fn_free(f);
    gv_tree_free(in);
}

Test(trace, dump) {
    gv_tree *in = mlp_inputs();
    gv_fn *f = GVT_NN(gv_trace(mlp, NULL, in));
    char *s = GVT_NN(gv_fn_dump(f));
    cr_assert(strstr(s, "= matmul %"), "%s", s);
    cr_assert(strstr(s, "outputs:"));
    char *d = GVT_NN(gv_fn_dump_dot(f));
    cr_assert(strstr(d, "digraph grove"));
    cr_assert_gt(gv_fn_num_nodes(f), 5);
    free(s), free(d);
    gv_fn_free(f);
    gv_tree_free(in);
}

/* What the queries answered for a failed op's value, inside the trace. */
static struct {
    gv_dtype dtype;
    int rank;
    int64_t size, dim;
    const int64_t *shape;
} seen;

static gv_tree *query_failed_value(gv_graph *g, const gv_tree *in, void *ud) {
    gv_value x = gv_tree_get_value(in, "x");
    gv_value bad = gv_matmul(x, x); /* [2,3] x [2,3]: fails */
    seen.dtype = gv_value_dtype(bad);
    seen.rank = gv_value_rank(bad);
    seen.size = gv_value_size(bad);
    seen.dim = gv_dim(bad, 0);
    seen.shape = gv_value_shape(bad);
    return gv_tree_new_value_leaf(bad);
}

Test(trace, queries_of_an_invalid_value_signal) {
    gv_tree *in = mlp_inputs();
    /* the answers are no dtype and no shape, and the first error stands */
    GVT_NULL(gv_trace(query_failed_value, NULL, in), GV_ERR_SHAPE, "contracting dims differ");
    cr_expect_eq(seen.dtype, GV_DTYPE_INVALID);
    cr_expect_eq(seen.rank, -1);
    cr_expect_eq(seen.size, -1);
    cr_expect_eq(seen.dim, -1);
    cr_expect_null(seen.shape);
    cr_expect_not(gv_dtype_is_valid(GV_DTYPE_INVALID));
    gv_tree_free(in);

    /* a value of no graph records its own error */
    gv_clear_error();
    gv_value none = {NULL, -1};
    cr_expect_eq(gv_value_dtype(none), GV_DTYPE_INVALID);
    cr_expect_eq(gv_last_status(), GV_ERR_ARG);
    cr_expect(strstr(gv_last_error(), "gv_value_dtype: the value belongs to no graph") != NULL,
              "%s", gv_last_error());
    gv_clear_error();
    cr_expect_eq(gv_value_rank(none), -1);
    cr_expect(strstr(gv_last_error(), "gv_value_rank") != NULL, "%s", gv_last_error());
    gv_clear_error();
}
