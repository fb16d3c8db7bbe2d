/* Compiled plans against the reference on cases that once gave a different
 * number: each test here failed on the code before its fix. */
#include <math.h>
#include <string.h>

#include "testutil.h"

/* Compile fn for in (optionally donating `donate`), run it, and check every
 * output leaf bit for bit against gv_fn_eval; returns the donated count. */
static int run_and_compare(gv_trace_fn fn, gv_tree *in, const char *donate, bool no_optimize) {
    gv_fn *f = GVT_NN(gv_trace(fn, NULL, in));
    gv_tree *ref = NULL;
    GVT_OK(gv_fn_eval(f, in, &ref));
    /* donation overwrites the inputs: run the plan on a copy */
    gv_tree *work = GVT_NN(gv_tree_copy(in));
    const char *d[1] = {donate};
    gv_plan_options o = {.donate = d, .ndonate = donate ? 1 : 0, .no_optimize = no_optimize};
    gv_plan *p = GVT_NN(gv_plan_compile(f, &o));
    gv_tree *out = GVT_NN(gv_plan_new_outputs(p));
    GVT_OK(gv_plan_run(p, work, out));
    char first[256] = "";
    int bad = gvt_tree_diff(ref, out, first, sizeof first);
    cr_assert_eq(bad, 0, "%d outputs differ from the reference (no_optimize %d), first %s", bad,
                 (int)no_optimize, first);
    int donated = gv_plan_get_stats(p).donated_outputs;
    gv_tree_free(out), gv_plan_free(p), gv_tree_free(work), gv_tree_free(ref), gv_fn_free(f);
    return donated;
}

static gv_tree *one_input(const char *name, gv_tensor *t) {
    gv_tree *in = gv_tree_new_dict();
    GVT_OK(gv_tree_insert_tensor(in, name, t));
    gv_tensor_free(t);
    return in;
}

/* NaN constants: the fused registers once used NaN to mean "no constant",
 * so a NaN written by the user vanished (select gave 0, add gave x). */
static gv_tree *nan_consts(gv_graph *g, const gv_tree *in, void *ud) {
    gv_value x = gv_tree_get_value(in, "x");
    gv_tree *out = gv_tree_new_dict();
    gv_tree_insert_value(out, "select", gv_select(gv_gt(x, gv_zeros_like(x)), x, gv_full_like(x, NAN)));
    gv_tree_insert_value(out, "add", gv_add(x, gv_full_like(x, NAN)));
    gv_tree_insert_value(out, "inf", gv_mul(x, gv_full_like(x, INFINITY)));
    gv_tree_insert_value(out, "negzero", gv_add(gv_full_like(x, -0.0), gv_full_like(x, -0.0)));
    return out;
}

Test(regressions, nan_constants_survive_compilation) {
    float xs[6] = {1.5f, -2.0f, 0.0f, -0.0f, 3.0f, -1.0f};
    for (int no_opt = 0; no_opt <= 1; no_opt++) {
        gv_tree *in = one_input("x", GVT_NN(gv_tensor_from_data(GV_F32, GV_DIMS(2, 3), xs, sizeof xs)));
        run_and_compare(nan_consts, in, NULL, no_opt);
        gv_tree_free(in);
    }
}

/* A label outside [0, classes) makes the loss NaN in the reference (optim.h);
 * the compiled step once gave 0, so bad labels were silently ignored. */
static gv_tree *xent(gv_graph *g, const gv_tree *in, void *ud) {
    gv_value logits = gv_tree_get_value(in, "logits"), labels = gv_tree_get_value(in, "labels");
    gv_tree *out = gv_tree_new_dict();
    gv_value l = gv_softmax_cross_entropy_with_integer_labels(logits, labels, -1);
    gv_tree_insert_value(out, "loss", l);
    gv_tree_insert_value(out, "mean", gv_mean(l, NULL, 0, false));
    return out;
}

Test(regressions, out_of_range_label_gives_nan_when_compiled) {
    float lg[8] = {0.1f, 0.2f, 0.3f, 0.4f, 1.0f, -1.0f, 2.0f, 0.5f};
    int32_t lb[2] = {1, 7}; /* 7 is out of range for 4 classes */
    for (int no_opt = 0; no_opt <= 1; no_opt++) {
        gv_tree *in = gv_tree_new_dict();
        gv_tensor *a = GVT_NN(gv_tensor_from_data(GV_F32, GV_DIMS(2, 4), lg, sizeof lg));
        gv_tensor *b = GVT_NN(gv_tensor_from_data(GV_I32, GV_DIMS(2), lb, sizeof lb));
        GVT_OK(gv_tree_insert_tensor(in, "logits", a));
        GVT_OK(gv_tree_insert_tensor(in, "labels", b));
        gv_tensor_free(a), gv_tensor_free(b);
        run_and_compare(xent, in, NULL, no_opt);
        /* and the number itself: row 1 is NaN, row 0 is finite */
        gv_fn *f = GVT_NN(gv_trace(xent, NULL, in));
        gv_plan *p = GVT_NN(gv_plan_compile(f, &(gv_plan_options){.no_optimize = no_opt}));
        gv_tree *out = GVT_NN(gv_plan_new_outputs(p));
        GVT_OK(gv_plan_run(p, in, out));
        const float *loss = gv_tensor_data_const(gv_tree_get_tensor(out, "loss"));
        cr_assert(isfinite(loss[0]) && isnan(loss[1]), "loss %g %g", loss[0], loss[1]);
        cr_assert(isnan(*(const float *)gv_tensor_data_const(gv_tree_get_tensor(out, "mean"))));
        gv_tree_free(out), gv_plan_free(p), gv_fn_free(f), gv_tree_free(in);
    }
}

/* Donation with a fused reduction epilogue: the output aliased the donated
 * p, whose last read was the same fused pass, and the epilogue cleared the
 * output before the first block read p (the plan gave zeros). */
static gv_tree *sum_xp(gv_graph *g, const gv_tree *in, void *ud) {
    gv_value x = gv_tree_get_value(in, "x"), p = gv_tree_get_value(in, "p");
    gv_tree *out = gv_tree_new_dict();
    gv_tree_insert_value(out, "p", gv_sum(gv_mul(x, p), (int[]){0}, 1, false));
    return out;
}

static gv_tree *max_xp(gv_graph *g, const gv_tree *in, void *ud) {
    gv_value x = gv_tree_get_value(in, "x"), p = gv_tree_get_value(in, "p");
    gv_tree *out = gv_tree_new_dict();
    /* a reduction over the last axis into p's shape, p read as repeated rows */
    gv_tree_insert_value(out, "p", gv_max(gv_add(x, gv_reshape(p, GV_DIMS(3, 1))), (int[]){1}, 1, false));
    return out;
}

Test(regressions, donated_input_read_by_a_reduction_epilogue) {
    for (int big = 0; big <= 1; big++) {
        int64_t rows = big ? 3000 : 3; /* one block and many blocks */
        gv_tensor *x = GVT_NN(gv_tensor_ones(GV_F32, GV_DIMS(rows, 4)));
        float pv[4] = {1, 2, 3, 4};
        gv_tree *in = one_input("x", x);
        gv_tensor *p = GVT_NN(gv_tensor_from_data(GV_F32, GV_DIMS(4), pv, sizeof pv));
        GVT_OK(gv_tree_insert_tensor(in, "p", p));
        gv_tensor_free(p);
        run_and_compare(sum_xp, in, "p", false);
        gv_tree_free(in);
    }
    gv_tensor *x = GVT_NN(gv_random_normal_eager(GV_PRNG_DEFAULT, gv_prng_key(3), GV_DIMS(3, 700)));
    gv_tree *in = one_input("x", x);
    gv_tensor *p = GVT_NN(gv_random_normal_eager(GV_PRNG_DEFAULT, gv_prng_key(4), GV_DIMS(3)));
    GVT_OK(gv_tree_insert_tensor(in, "p", p));
    gv_tensor_free(p);
    run_and_compare(max_xp, in, "p", false);
    gv_tree_free(in);
}

/* The same with a reduction whose output has the pass's own shape: summing
 * over an axis of length 1 with keepdims. Shape alone does not make a
 * reduction epilogue safe to write in place. */
static gv_tree *sum_unit_axis(gv_graph *g, const gv_tree *in, void *ud) {
    gv_value x = gv_tree_get_value(in, "x"), p = gv_tree_get_value(in, "p");
    gv_tree *out = gv_tree_new_dict();
    gv_tree_insert_value(out, "p", gv_sum(gv_mul(x, p), (int[]){1}, 1, true));
    return out;
}

Test(regressions, donated_input_read_by_a_same_shape_epilogue) {
    float pv[3] = {1, 2, 3};
    for (int no_opt = 0; no_opt <= 1; no_opt++) {
        gv_tree *in = one_input("x", GVT_NN(gv_tensor_ones(GV_F32, GV_DIMS(3, 1))));
        gv_tensor *p = GVT_NN(gv_tensor_from_data(GV_F32, GV_DIMS(3, 1), pv, sizeof pv));
        GVT_OK(gv_tree_insert_tensor(in, "p", p));
        gv_tensor_free(p);
        run_and_compare(sum_unit_axis, in, "p", no_opt);
        gv_tree_free(in);
    }
}

/* Where donation is safe it still happens: an elementwise update of p. */
static gv_tree *update_p(gv_graph *g, const gv_tree *in, void *ud) {
    gv_value x = gv_tree_get_value(in, "x"), p = gv_tree_get_value(in, "p");
    gv_tree *out = gv_tree_new_dict();
    gv_tree_insert_value(out, "p", gv_sub(p, gv_mul_scalar(gv_tanh(x), 0.1)));
    return out;
}

Test(regressions, elementwise_update_is_still_donated) {
    gv_tree *in = one_input("x", GVT_NN(gv_random_normal_eager(GV_PRNG_DEFAULT, gv_prng_key(5), GV_DIMS(40, 30))));
    gv_tensor *p = GVT_NN(gv_random_normal_eager(GV_PRNG_DEFAULT, gv_prng_key(6), GV_DIMS(40, 30)));
    GVT_OK(gv_tree_insert_tensor(in, "p", p));
    gv_tensor_free(p);
    cr_assert_eq(run_and_compare(update_p, in, "p", false), 1);
    gv_tree_free(in);
}

/* A constant that is both an output and an operand of a larger fused pass
 * once joined the pass and was stored over its whole domain: 1200 floats
 * into a 4-float output (a heap overflow under ASan, garbage without). */
static gv_tree *const_output(gv_graph *g, const gv_tree *in, void *ud) {
    gv_value x = gv_tree_get_value(in, "x");
    gv_value c = gv_full(g, GV_F32, 1, (int64_t[]){4}, 2.0);
    gv_tree *out = gv_tree_new_dict();
    gv_tree_insert_value(out, "a", gv_add(x, c));
    gv_tree_insert_value(out, "c", c);
    return out;
}

Test(regressions, constant_output_read_by_a_larger_pass) {
    for (int no_opt = 0; no_opt <= 1; no_opt++) {
        gv_tree *in = one_input("x", GVT_NN(gv_tensor_ones(GV_F32, GV_DIMS(300, 4))));
        run_and_compare(const_output, in, NULL, no_opt);
        gv_tree_free(in);
    }
}

/* stop_gradient had no case in the fused block loop, which left its
 * register unwritten: with no_optimize (the pass that removes it skipped),
 * x - stop_gradient(max(x)) came out as x. */
static gv_tree *shifted(gv_graph *g, const gv_tree *in, void *ud) {
    gv_value x = gv_tree_get_value(in, "x");
    gv_tree *out = gv_tree_new_dict();
    gv_tree_insert_value(out, "y", gv_sub(x, gv_stop_gradient(gv_max(x, (int[]){1}, 1, true))));
    return out;
}

Test(regressions, stop_gradient_in_a_fused_pass) {
    for (int no_opt = 0; no_opt <= 1; no_opt++) {
        gv_tree *in = one_input("x", GVT_NN(gv_random_normal_eager(GV_PRNG_DEFAULT, gv_prng_key(7), GV_DIMS(5, 9))));
        run_and_compare(shifted, in, NULL, no_opt);
        gv_tree_free(in);
    }
}
