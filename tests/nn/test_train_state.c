/* TrainState: create, apply_gradients inside one compiled train step
 * (forward, value_and_grad, chain(adamw) update, apply_updates), with the
 * state donated; a 2-layer MLP module fits a fixed synthetic regression. */
#include <math.h>
#include <string.h>

#include "testutil.h"

static const int64_t DIMS[2] = {32, 1};
static gv_feedforward_cfg FF = {DIMS, 2, gv_tanh, true};
static const gv_module MODEL = {&gv_FeedForward, &FF};

typedef struct step_ctx {
    gv_fn *vg;          /* value_and_grad of the loss w.r.t. params */
    gv_transform *tx;
} step_ctx;

/* loss(params, (x, y)) = mean((model(x) - y)^2) */
static gv_tree *loss_fn(gv_graph *g, const gv_tree *in, void *ud) {
    gv_tree *vars = gv_tree_new_dict();
    gv_tree_insert(vars, "params", gv_tree_clone(gv_tree_get(in, "0")));
    gv_tree *args = gv_args1(gv_tree_get_value(in, "1/x"));
    gv_tree *out = gv_apply(g, &MODEL, vars, args, NULL, NULL);
    gv_tree_free(vars), gv_tree_free(args);
    if (!out) return NULL;
    gv_value err = gv_sub(gv_tree_leaf_value(out), gv_tree_get_value(in, "1/y"));
    gv_tree_free(out);
    return gv_tree_new_value_leaf(gv_mean(gv_square(err), NULL, 0, false));
}

/* step(state, batch) -> (state', loss) */
static gv_tree *train_step(gv_graph *g, const gv_tree *in, void *ud) {
    step_ctx *c = ud;
    const gv_tree *state = gv_tree_get(in, "0");
    gv_tree *args = gv_tree_new_tuple();
    gv_tree_append(args, gv_tree_clone(gv_tree_get(state, "params")));
    gv_tree_append(args, gv_tree_clone(gv_tree_get(in, "1")));
    gv_tree *lg = gv_fn_call(g, c->vg, args); /* (loss, grads) */
    gv_tree_free(args);
    if (!lg) return NULL;
    gv_tree *next = gv_train_state_apply_gradients(g, c->tx, state, gv_tree_get(lg, "1"));
    gv_tree *out = gv_tree_new_tuple();
    gv_tree_append(out, next);
    gv_tree_append(out, gv_tree_new_value_leaf(gv_tree_get_value(lg, "0")));
    gv_tree_free(lg);
    return next ? out : (gv_tree_free(out), NULL);
}

static gv_tree *dataset(int n) {
    gv_tensor *x = gv_random_uniform_eager(GV_PRNG_DEFAULT, gv_prng_key(11), GV_DIMS(n, 2), -1.0f, 1.0f);
    gv_tensor *y = gv_tensor_zeros(GV_F32, GV_DIMS(n, 1));
    const float *px = gv_tensor_data_const(x);
    float *py = gv_tensor_data(y);
    for (int i = 0; i < n; i++) py[i] = sinf(2 * px[2 * i]) + px[2 * i] * px[2 * i + 1];
    gv_tree *b = gv_tree_new_dict();
    gv_tree_insert_tensor(b, "x", x);
    gv_tree_insert_tensor(b, "y", y);
    gv_tensor_free(x), gv_tensor_free(y);
    return b;
}

Test(train_state, create_structure) {
    gv_tree *batch = dataset(8);
    gv_tensor *x = gv_tree_get_tensor(batch, "x");
    gv_tree *args = gv_args_tensors(&x, 1);
    gv_tree *vars = GVT_NN(gv_init(&MODEL, gv_prng_key(0), args, NULL));
    gv_transform *tx = GVT_NN(gv_adamw(.learning_rate = 1e-3));
    gv_tree *state = GVT_NN(gv_train_state_create(tx, gv_tree_get(vars, "params")));
    double step;
    GVT_OK(gv_tensor_get(GVT_NN(gv_tree_get_tensor(state, "step")), NULL, &step));
    cr_assert_eq(step, 0);
    cr_assert_eq(gv_tensor_dtype(gv_tree_get_tensor(state, "step")), GV_I32);
    cr_assert(gv_tree_contains(state, "params/Dense_1/kernel"));
    cr_assert(gv_tree_contains(state, "opt_state/0/mu/Dense_0/bias"), "adamw state: ({count, mu, nu}, ...)");
    GVT_NULL(gv_train_state_create(NULL, vars), GV_ERR_ARG, "tx is NULL");
    gv_tree_free(state), gv_transform_free(tx), gv_tree_free(vars), gv_tree_free(args);
    gv_tree_free(batch);
}

Test(train_state, mlp_fits_regression_in_a_compiled_donated_step) {
    gv_tree *batch = dataset(128);
    gv_tensor *x = gv_tree_get_tensor(batch, "x");
    gv_tree *args = gv_args_tensors(&x, 1);
    gv_tree *vars = GVT_NN(gv_init(&MODEL, gv_prng_key(0), args, NULL));
    gv_transform *parts[1] = {gv_adamw(.learning_rate = 1e-2)};
    step_ctx c = {NULL, GVT_NN(gv_chain(parts, 1))};
    gv_tree *state = GVT_NN(gv_train_state_create(c.tx, gv_tree_get(vars, "params")));
    GVT_OK(gv_tree_insert_tensor(state, "note", x)); /* an extra field, carried through */
    /* loss over (params, batch) -> value_and_grad w.r.t. params */
    gv_tree *lin = gv_tree_new_tuple();
    GVT_OK(gv_tree_append(lin, gv_tree_clone(gv_tree_get(state, "params"))));
    GVT_OK(gv_tree_append(lin, gv_tree_clone(batch)));
    gv_fn *loss = GVT_NN(gv_trace(loss_fn, NULL, lin));
    c.vg = GVT_NN(gv_value_and_grad(loss, 0, false));
    gv_tree *in = gv_tree_new_tuple();
    GVT_OK(gv_tree_append(in, state));
    GVT_OK(gv_tree_append(in, gv_tree_clone(batch)));
    gv_fn *step = GVT_NN(gv_trace(train_step, &c, in));
    const char *donate[] = {"0"};
    gv_plan_options o = {.donate = donate, .ndonate = 1};
    gv_plan *plan = GVT_NN(gv_plan_compile(step, &o));
    gv_plan_stats st = gv_plan_get_stats(plan);
    cr_assert_geq(st.donated_outputs, 13, "params, mu, nu (12) and count in place: %d", st.donated_outputs);
    gv_tree *out = GVT_NN(gv_plan_new_outputs(plan));
    double first = 0, last = 0;
    int failures = 0;
    for (int k = 0; k < 1500; k++) {
        failures += gv_plan_run(plan, in, out) != GV_OK;
        if (k == 0) gv_tensor_get(gv_tree_get_tensor(out, "1"), NULL, &first);
        /* the new state is written into the donated input state */
    }
    cr_assert_eq(failures, 0, "%s", gv_last_error());
    gv_tensor_get(gv_tree_get_tensor(out, "1"), NULL, &last);
    double s;
    GVT_OK(gv_tensor_get(gv_tree_get_tensor(out, "0/step"), NULL, &s));
    cr_assert_eq(s, 1500, "step counts apply_gradients calls");
    cr_assert(gv_tree_contains(out, "0/note"), "extra fields are carried through");
    /* var(y) is about 0.4; a fit within 2% of it is well beyond a linear model */
    cr_log_info("loss %g -> %g after 1500 steps", first, last);
    cr_assert_lt(last, 0.008, "final loss %g (first %g)", last, first);
    cr_assert_lt(last, first / 20);
    gv_tree_free(out), gv_plan_free(plan), gv_fn_free(step), gv_tree_free(in);
    gv_fn_free(c.vg), gv_fn_free(loss), gv_tree_free(lin), gv_transform_free(c.tx);
    gv_tree_free(vars), gv_tree_free(args), gv_tree_free(batch);
}
