/* Shape-only trees (eval_shape.h): a tree's shape-only twin, the check that
 * refuses one where data is needed, jax.eval_shape of a traced function, of
 * model.init and of TrainState.create. */
#include <string.h>

#include "testutil.h"

static const int64_t DIMS[2] = {8, 3};
static gv_feedforward_cfg FF = {DIMS, 2, NULL, true};
static const gv_module MODEL = {&gv_FeedForward, &FF};

static void put(gv_tree *t, const char *path, gv_tensor *x) {
    GVT_OK(gv_tree_insert_tensor(t, path, x));
    gv_tensor_free(x);
}

static gv_status all_abstract(const char *path, const gv_tree *leaf, void *ud) {
    (void)ud;
    if (gv_tree_leaf_kind(leaf) == GV_LEAF_TENSOR)
        cr_assert(gv_tensor_is_abstract(gv_tree_leaf_tensor(leaf)), "%s has data", path);
    return GV_OK;
}

/* a's shape-only twin: the same tree but for the data, key order included */
static void assert_twin(const gv_tree *a, const gv_tree *shapes) {
    GVT_OK(gv_tree_check_same(a, shapes, "twin"));
    GVT_OK(gv_tree_foreach_leaf(shapes, all_abstract, NULL));
    char *ra = GVT_NN(gv_tree_repr_shapes(a)), *rb = GVT_NN(gv_tree_repr_shapes(shapes));
    cr_assert_str_eq(ra, rb);
    free(ra), free(rb);
}

Test(eval_shape, tree_to_shape_dtype_struct) {
    gv_tree *t = GVT_NN(gv_tree_new_dict());
    put(t, "params/w", GVT_NN(gv_tensor_ones(GV_F32, GV_DIMS(3, 4))));
    put(t, "params/b", GVT_NN(gv_tensor_zeros(GV_F64, GV_DIMS(4))));
    put(t, "step", GVT_NN(gv_tensor_scalar(GV_I32, 7)));
    put(t, "already", GVT_NN(gv_shape_dtype_struct(GV_U8, GV_DIMS(2))));
    GVT_OK(gv_tree_insert(t, "empty", GVT_NN(gv_tree_new_dict())));
    gv_tree *pair = GVT_NN(gv_tree_new_tuple());
    GVT_OK(gv_tree_append(pair, GVT_NN(gv_tree_new_label("frozen"))));
    GVT_OK(gv_tree_append(pair, GVT_NN(gv_tree_new_leaf(gv_tree_get_tensor(t, "step")))));
    GVT_OK(gv_tree_insert(t, "pair", pair));
    gv_tree *s = GVT_NN(gv_tree_to_shape_dtype_struct(t));
    assert_twin(t, s);
    cr_assert_str_eq(gv_tree_leaf_label(gv_tree_get(s, "pair/0")), "frozen");
    char *r = GVT_NN(gv_tree_repr(gv_tree_get(s, "params"), NULL));
    cr_assert_str_eq(r, "{'w': ShapeDtypeStruct(shape=(3, 4), dtype=float32), "
                        "'b': ShapeDtypeStruct(shape=(4,), dtype=float64)}");
    free(r);
    /* real zeros of those shapes again, when data is wanted */
    gv_tree *z = GVT_NN(gv_tree_zeros_like(gv_tree_get(s, "params")));
    cr_assert(!gv_tensor_is_abstract(gv_tree_get_tensor(z, "w")));
    GVT_OK(gv_tree_check_same(gv_tree_get(t, "params"), z, NULL));
    gv_tree_free(z);
    GVT_NULL(gv_tree_to_shape_dtype_struct(NULL), GV_ERR_ARG, "NULL");
    gv_tree_free(s);
    gv_tree_free(t);
}

Test(eval_shape, check_concrete_names_the_path) {
    gv_tree *t = GVT_NN(gv_tree_new_dict());
    put(t, "params/dense/kernel", GVT_NN(gv_tensor_ones(GV_F32, GV_DIMS(3, 4))));
    GVT_OK(gv_tree_check_concrete(t, "run"));
    put(t, "params/dense/bias", GVT_NN(gv_shape_dtype_struct(GV_F32, GV_DIMS(4))));
    GVT_FAILS(gv_tree_check_concrete(t, "run"), GV_ERR_ARG,
              "run: params/dense/bias: the leaf is shape-only (ShapeDtypeStruct float32[4]) "
              "and has no data");
    gv_tree *root = GVT_NN(gv_tree_new_leaf(gv_tree_get_tensor(t, "params/dense/bias")));
    GVT_FAILS(gv_tree_check_concrete(root, NULL), GV_ERR_ARG,
              "gv_tree_check_concrete: <root>: the leaf is shape-only");
    GVT_FAILS(gv_tree_check_concrete(NULL, "run"), GV_ERR_ARG, "NULL");
    gv_tree_free(root);
    gv_tree_free(t);
}

/* ((x @ w, sum(x)), {"n": x + 1}) */
static gv_tree *fn(gv_graph *g, const gv_tree *in, void *ud) {
    (void)ud;
    gv_value x = gv_tree_get_value(in, "x"), w = gv_tree_get_value(in, "w");
    gv_tree *pair = gv_tree_new_tuple(), *out = gv_tree_new_tuple(), *d = gv_tree_new_dict();
    gv_tree_append(pair, gv_tree_new_value_leaf(gv_matmul(x, w)));
    gv_tree_append(pair, gv_tree_new_value_leaf(gv_sum(x, NULL, 0, false)));
    gv_tree_insert_value(d, "n", gv_add(x, gv_scalar(g, GV_F32, 1.0)));
    gv_tree_append(out, pair);
    gv_tree_append(out, d);
    return out;
}

Test(eval_shape, eval_shape_of_a_traced_function) {
    gv_tree *in = GVT_NN(gv_tree_new_dict());
    put(in, "x", GVT_NN(gv_shape_dtype_struct(GV_F32, GV_DIMS(5, 3))));
    put(in, "w", GVT_NN(gv_tensor_ones(GV_F32, GV_DIMS(3, 2)))); /* real inputs mix in */
    gv_tree *s = GVT_NN(gv_eval_shape(fn, NULL, in));
    GVT_OK(gv_tree_foreach_leaf(s, all_abstract, NULL));
    char *r = GVT_NN(gv_tree_repr(s, NULL));
    cr_assert_str_eq(r, "((ShapeDtypeStruct(shape=(5, 2), dtype=float32), "
                        "ShapeDtypeStruct(shape=(), dtype=float32)), "
                        "{'n': ShapeDtypeStruct(shape=(5, 3), dtype=float32)})");
    free(r);
    gv_tree_free(s);
    /* a trace error is eval_shape's error */
    gv_tensor *w = GVT_NN(gv_shape_dtype_struct(GV_F32, GV_DIMS(4, 2)));
    GVT_OK(gv_tree_set_tensor(in, "w", w));
    gv_tensor_free(w);
    GVT_NULL(gv_eval_shape(fn, NULL, in), GV_ERR_SHAPE, "gv_eval_shape: ");
    gv_tree_free(in);
}

static gv_tree *args_of(gv_tensor *x) {
    gv_tree *args = GVT_NN(gv_args_tensors(&x, 1));
    gv_tensor_free(x);
    return args;
}

Test(eval_shape, init_and_train_state_shapes) {
    gv_tree *real_args = args_of(GVT_NN(gv_tensor_ones(GV_F32, GV_DIMS(4, 5))));
    gv_tree *abs_args = args_of(GVT_NN(gv_shape_dtype_struct(GV_F32, GV_DIMS(4, 5))));
    gv_tree *vars = GVT_NN(gv_init(&MODEL, gv_prng_key(0), real_args, NULL));
    gv_tree *shapes = GVT_NN(gv_eval_shape_init(&MODEL, gv_prng_key(0), abs_args, NULL));
    assert_twin(vars, shapes);
    cr_assert(gv_tree_contains(shapes, "params/Dense_1/kernel"));

    gv_transform *tx = GVT_NN(gv_adamw(.learning_rate = 1e-3));
    const gv_tree *params = gv_tree_get(vars, "params");
    gv_tree *state = GVT_NN(gv_train_state_create(tx, params));
    gv_tree *st_shapes = GVT_NN(gv_eval_shape_train_state(tx, gv_tree_get(shapes, "params")));
    assert_twin(state, st_shapes);
    cr_assert_str_eq(gv_tree_key(st_shapes, 0), "step");
    gv_tree *from_real = GVT_NN(gv_eval_shape_train_state(tx, params));
    assert_twin(state, from_real);

    GVT_NULL(gv_eval_shape_train_state(NULL, params), GV_ERR_ARG, "tx");
    GVT_NULL(gv_eval_shape_init(&MODEL, gv_prng_key(0), NULL, NULL), GV_ERR_ARG,
             "gv_eval_shape_init");
    gv_tree_free(from_real), gv_tree_free(st_shapes), gv_tree_free(state);
    gv_transform_free(tx);
    gv_tree_free(shapes), gv_tree_free(vars);
    gv_tree_free(abs_args), gv_tree_free(real_args);
}
