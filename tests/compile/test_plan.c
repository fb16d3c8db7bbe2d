/* The compiler: an optimised plan computes what the reference evaluation
 * computes, updates donated params in place, allocates nothing per run,
 * and uses less memory than all intermediates together. */
#include <dlfcn.h>
#include <math.h>
#include <string.h>

#include "mlp_step.h"
#include "core/error.h" /* the caller's error below is set as grove code does */
#include "testutil.h"

#include "alloc_count.h"

static const mlp_dims DIMS = {16, 784, 256, 128, 10, 0.01};

static void expect_close(const gv_tree *a, const gv_tree *b, double rtol, double atol) {
    gv_tensor **la, **lb;
    size_t na, nb;
    GVT_OK(gv_tree_flatten(a, &la, &na));
    GVT_OK(gv_tree_flatten(b, &lb, &nb));
    cr_assert_eq(na, nb);
    for (size_t i = 0; i < na; i++) {
        cr_assert(gv_tensor_same_shape(la[i], lb[i]));
        int bad = 0;
        double worst = 0;
        for (int64_t k = 0; k < gv_tensor_size(la[i]); k++) {
            double x, y;
            gv_tensor_get_flat(la[i], k, &x), gv_tensor_get_flat(lb[i], k, &y);
            double d = fabs(x - y);
            if (d > atol + rtol * fabs(y)) bad++;
            if (d > worst) worst = d;
        }
        cr_expect_eq(bad, 0, "leaf %zu: %d elements differ (worst %g)", i, bad, worst);
    }
    free(la), free(lb);
}

Test(plan, mlp_step_matches_reference) {
    gv_tree *in = mlp_example_inputs(&DIMS, 1);
    gv_fn *step = GVT_NN(mlp_train_step(in, DIMS.lr));
    gv_tree *ref = NULL;
    GVT_OK(gv_fn_eval(step, in, &ref));
    gv_plan *plan = GVT_NN(gv_plan_compile(step, NULL));
    gv_tree *out = GVT_NN(gv_plan_new_outputs(plan));
    GVT_OK(gv_plan_run(plan, in, out));
    expect_close(out, ref, 1e-5, 1e-6);
    gv_plan_stats s = gv_plan_get_stats(plan);
    cr_assert_lt(s.nodes_optimized, s.nodes_traced, "passes remove nodes (%d -> %d)",
                 s.nodes_traced, s.nodes_optimized);
    cr_assert_gt(s.fused_kernels, 0);
    cr_assert_eq(s.gemms, 8, "3 forward, 3 dW, 2 dX GEMMs (dX of layer 1 is dead)");
    cr_assert_lt(s.arena_bytes, s.intermediate_bytes, "arena %zu vs %zu", s.arena_bytes,
                 s.intermediate_bytes);
    char *dump = GVT_NN(gv_plan_dump(plan));
    cr_log_info("%s", dump);
    free(dump);
    cr_log_info("MLP step: %d traced nodes -> %d, %d kernels (%d fused, %d GEMM), arena %zu B, "
                "intermediates %zu B", s.nodes_traced, s.nodes_optimized, s.kernels,
                s.fused_kernels, s.gemms, s.arena_bytes, s.intermediate_bytes);
    gv_tree_free(out), gv_tree_free(ref);
    gv_plan_free(plan), gv_fn_free(step), gv_tree_free(in);
}

/* The per-kernel profile: off by default (the report is an error), then
 * every run counted and every kernel listed once with its share; turning it
 * off and on again starts from zero; results are unchanged by profiling. */
Test(plan, profile_counts_runs_and_lists_every_kernel) {
    gv_tree *in = mlp_example_inputs(&DIMS, 1);
    gv_fn *step = GVT_NN(mlp_train_step(in, DIMS.lr));
    gv_plan *plan = GVT_NN(gv_plan_compile(step, NULL));
    gv_tree *out = GVT_NN(gv_plan_new_outputs(plan)), *ref = GVT_NN(gv_plan_new_outputs(plan));
    GVT_OK(gv_plan_run(plan, in, ref));
    cr_assert_null(gv_plan_profile_report(plan), "no report before profiling is enabled");
    cr_assert_eq(gv_last_status(), GV_ERR_ARG);
    cr_assert(strstr(gv_last_error(), "gv_plan_profile_enable"), "%s", gv_last_error());
    cr_assert_eq(gv_plan_profile_enable(NULL, true), GV_ERR_ARG);
    GVT_OK(gv_plan_profile_enable(plan, true));
    for (int i = 0; i < 5; i++) GVT_OK(gv_plan_run(plan, in, out));
    expect_close(out, ref, 0, 0);
    char *r = GVT_NN(gv_plan_profile_report(plan));
    cr_log_info("%s", r);
    cr_assert(strncmp(r, "5 runs, ", 8) == 0, "report starts with the run count: %.40s", r);
    int kernels = gv_plan_get_stats(plan).kernels, lines = 0;
    for (const char *c = r; (c = strchr(c, '%')); c++) lines += c[1] == ' ' && c[2] == ' ';
    cr_assert_eq(lines, kernels, "one line per kernel (%d), found %d", kernels, lines);
    cr_assert(strstr(r, "gemm") && strstr(r, "fused"), "kinds are summed");
    free(r);
    GVT_OK(gv_plan_profile_enable(plan, false));
    cr_assert_null(gv_plan_profile_report(plan));
    GVT_OK(gv_plan_profile_enable(plan, true));
    GVT_OK(gv_plan_run(plan, in, out));
    r = GVT_NN(gv_plan_profile_report(plan));
    cr_assert(strncmp(r, "1 runs, ", 8) == 0, "re-enabling starts from zero: %.40s", r);
    free(r);
    gv_tree_free(out), gv_tree_free(ref);
    gv_plan_free(plan), gv_fn_free(step), gv_tree_free(in);
}

Test(plan, unoptimized_plan_matches_reference_bit_for_bit_except_gemm) {
    gv_tree *in = mlp_example_inputs(&DIMS, 2);
    gv_fn *step = GVT_NN(mlp_train_step(in, DIMS.lr));
    gv_tree *ref = NULL;
    GVT_OK(gv_fn_eval(step, in, &ref));
    gv_plan_options o = {.no_optimize = true};
    gv_plan *plan = GVT_NN(gv_plan_compile(step, &o));
    gv_tree *out = GVT_NN(gv_plan_new_outputs(plan));
    GVT_OK(gv_plan_run(plan, in, out));
    expect_close(out, ref, 1e-5, 1e-6);
    gv_tree_free(out), gv_tree_free(ref);
    gv_plan_free(plan), gv_fn_free(step), gv_tree_free(in);
}

Test(plan, donated_params_update_in_place_over_steps) {
    gv_tree *in = mlp_example_inputs(&DIMS, 3);
    gv_tree *ref_in = GVT_NN(gv_tree_copy(in));
    gv_fn *step = GVT_NN(mlp_train_step(in, DIMS.lr));
    const char *donate[] = {"0"};
    gv_plan_options o = {.donate = donate, .ndonate = 1};
    gv_plan *plan = GVT_NN(gv_plan_compile(step, &o));
    gv_plan_stats s = gv_plan_get_stats(plan);
    cr_assert_eq(s.donated_outputs, 6, "all six params updated in place (%d)", s.donated_outputs);
    gv_tree *out = GVT_NN(gv_plan_new_outputs(plan));
    void *w1 = gv_tensor_data(gv_tree_get_tensor(in, "0/w1"));
    for (int k = 0; k < 3; k++) {
        GVT_OK(gv_plan_run(plan, in, out));
        cr_assert_eq(gv_tensor_data(gv_tree_get_tensor(out, "0/w1")), w1, "same buffer");
        /* the reference: evaluate and carry params forward */
        gv_tree *r = NULL;
        GVT_OK(gv_fn_eval(step, ref_in, &r));
        GVT_OK(gv_tree_set(ref_in, "0", gv_tree_pop(r, "0")));
        gv_tree_free(r);
    }
    expect_close(gv_tree_get(in, "0"), gv_tree_get(ref_in, "0"), 1e-5, 1e-6);
    gv_tree_free(out), gv_tree_free(ref_in);
    gv_plan_free(plan), gv_fn_free(step), gv_tree_free(in);
}

Test(plan, zero_allocations_per_run) {
#ifdef GVT_COUNTING_ALLOCS
    gv_tree *in = mlp_example_inputs(&DIMS, 4);
    gv_fn *step = GVT_NN(mlp_train_step(in, DIMS.lr));
    const char *donate[] = {"0"};
    gv_plan_options o = {.donate = donate, .ndonate = 1};
    gv_plan *plan = GVT_NN(gv_plan_compile(step, &o));
    gv_tree *out = GVT_NN(gv_plan_new_outputs(plan));
    GVT_OK(gv_plan_run(plan, in, out)); /* warm-up: BLAS sets itself up */
    /* no assertion inside the counted loop: Criterion allocates to record one */
    int failures = 0;
    long before = gvt_allocs;
    for (int k = 0; k < 20; k++) failures += gv_plan_run(plan, in, out) != GV_OK;
    long n = gvt_allocs - before;
    cr_assert_eq(failures, 0, "%s", gv_last_error());
    cr_assert_eq(n, 0, "%ld allocations in 20 runs", n);
    gv_tree_free(out), gv_plan_free(plan), gv_fn_free(step), gv_tree_free(in);
#else
    cr_skip_test("allocation counting is replaced by the sanitizer's allocator");
#endif
}

Test(plan, run_checks_inputs) {
    gv_tree *in = mlp_example_inputs(&DIMS, 5);
    gv_fn *step = GVT_NN(mlp_train_step(in, DIMS.lr));
    gv_plan *plan = GVT_NN(gv_plan_compile(step, NULL));
    gv_tree *out = GVT_NN(gv_plan_new_outputs(plan));
    mlp_dims d2 = DIMS;
    d2.batch = 8;
    gv_tree *in2 = mlp_example_inputs(&d2, 5);
    GVT_FAILS(gv_plan_run(plan, in2, out), GV_ERR_SHAPE, "compiled for float32[16,784]");
    GVT_FAILS(gv_plan_run(plan, in, in), GV_ERR_STRUCTURE, "output leaves");
    gv_tree_free(in2), gv_tree_free(out), gv_plan_free(plan), gv_fn_free(step), gv_tree_free(in);
}

static gv_tree *square_sum(gv_graph *g, const gv_tree *in, void *ud) {
    gv_value x = gv_tree_get_value(in, "x");
    return gv_tree_new_value_leaf(gv_sum(gv_square(x), NULL, 0, false));
}

Test(jit, caches_by_shape) {
    gv_jit *j = GVT_NN(gv_jit_new(square_sum, NULL, NULL));
    for (int64_t n = 3; n <= 4; n++)
        for (int rep = 0; rep < 3; rep++) {
            gv_tensor *x = GVT_NN(gv_tensor_arange(GV_F32, 0, (double)n, 1));
            gv_tree *in = gv_tree_new_dict();
            gv_tree_insert_tensor(in, "x", x);
            gv_tree *out;
            GVT_OK(gv_jit_call(j, in, &out));
            double v;
            GVT_OK(gv_tensor_get(gv_tree_leaf_tensor(out), NULL, &v));
            cr_assert_eq(v, n == 3 ? 5.0 : 14.0);
            gv_tree_free(in), gv_tensor_free(x);
        }
    cr_assert_eq(gv_jit_num_compiles(j), 2, "one trace+compile per input shape");
    /* a cached call neither leaves the signature probes' messages behind nor
     * erases an error the caller still holds */
    gv_tensor *x = GVT_NN(gv_tensor_arange(GV_F32, 0, 4, 1));
    gv_tree *in = gv_tree_new_dict();
    GVT_OK(gv_tree_insert_tensor(in, "x", x));
    gv_error(GV_ERR_IO, "the caller's own error");
    gv_tree *out;
    GVT_OK(gv_jit_call(j, in, &out)); /* probes the [3] entry first: a mismatch */
    cr_expect_eq(gv_last_status(), GV_ERR_IO);
    cr_expect_str_eq(gv_last_error(), "the caller's own error");
    gv_clear_error();
    GVT_OK(gv_jit_call(j, in, &out));
    cr_expect_eq(gv_last_status(), GV_OK, "a probe left: %s", gv_last_error());
    cr_assert_eq(gv_jit_num_compiles(j), 2);
    gv_tree_free(in), gv_tensor_free(x);
    gv_jit_free(j);
}

/* step(state, x) -> (state', metrics): state' = {w: w + x, b: x, n: n + 1},
 * metrics {sum: sum(w + x)}. b := x is an input passed through, so it can
 * not be written in place: it is copied back. */
static gv_tree *carry_step(gv_graph *g, const gv_tree *in, void *ud) {
    gv_value w, b, n, x;
    gv_unpack(in, "({w, b, n}, x)", &w, &b, &n, &x);
    gv_value w2 = gv_add(w, x);
    gv_value n2 = gv_add(n, gv_scalar(g, GV_I32, 1));
    return gv_pack(g, "({w, b, n}, {sum})", w2, x, n2, gv_sum(w2, NULL, 0, false));
}

static gv_tree *carry_inputs(gv_tensor **w, gv_tensor **b, gv_tensor **n, gv_tensor **x) {
    *w = GVT_NN(gv_tensor_arange(GV_F32, 0, 4, 1));
    *b = GVT_NN(gv_tensor_zeros(GV_F32, GV_DIMS(4)));
    *n = GVT_NN(gv_tensor_scalar(GV_I32, 0));
    *x = GVT_NN(gv_tensor_full(GV_F32, GV_DIMS(4), 1.0));
    gv_tree *state = GVT_NN(gv_pack(NULL, "{w, b, n}", *w, *b, *n));
    gv_tree *in = GVT_NN(gv_pack(NULL, "(state, x)", state, *x));
    gv_tree_free(state);
    return in;
}

Test(jit, a_donated_argument_holds_the_new_state_after_each_call) {
    gv_tensor *w, *b, *n, *x;
    gv_tree *in = carry_inputs(&w, &b, &n, &x);
    gv_jit *j = GVT_NN(gv_jit_new(carry_step, NULL, &(gv_plan_options){
        .donate_argnums = GV_ARGNUMS(0)}));
    gv_tree *out;
    for (int k = 1; k <= 3; k++) {
        GVT_OK(gv_jit_call(j, in, &out));
        /* the caller's own tensors: w = arange + k, b = x, n = k */
        const float *wd = gv_tensor_data_const(w), *bd = gv_tensor_data_const(b);
        for (int i = 0; i < 4; i++) {
            cr_expect_eq(wd[i], (float)(i + k), "w[%d] after %d calls", i, k);
            cr_expect_eq(bd[i], 1.0f, "b[%d] (copied back) after %d calls", i, k);
        }
        cr_expect_eq(gv_tensor_item(n), k);
        gv_tensor *sum;
        GVT_OK(gv_unpack(out, "(_, {sum})", &sum));
        cr_expect_eq(gv_tensor_item(sum), 6.0 + 4 * k);
    }
    const gv_plan *p = GVT_NN(gv_jit_plan(j, in));
    cr_expect_geq(gv_plan_get_stats(p).donated_outputs, 1, "w is written in place");
    cr_expect_eq(gv_jit_num_compiles(j), 1);
    gv_jit_free(j);
    gv_tree_free(in);
    gv_tensor_free(w), gv_tensor_free(b), gv_tensor_free(n), gv_tensor_free(x);
}

static gv_tree *carry_step_dict(gv_graph *g, const gv_tree *in, void *ud) {
    const gv_tree *state;
    gv_value x;
    gv_unpack(in, "{state, x}", &state, &x);
    const gv_tree *next, *metrics;
    gv_unpack(carry_step(g, gv_pack(g, "(state, x)", state, x), ud), "(s, m)", &next, &metrics);
    return gv_pack(g, "{state: s, metrics: m}", next, metrics);
}

Test(jit, donation_by_argument_name_and_bad_arguments) {
    gv_tensor *w, *b, *n, *x;
    gv_tree *tin = carry_inputs(&w, &b, &n, &x);
    const gv_tree *state;
    GVT_OK(gv_unpack(tin, "(state, _)", &state));
    gv_tree *in = GVT_NN(gv_pack(NULL, "{state, x}", state, x));
    gv_jit *j = GVT_NN(gv_jit_new(carry_step_dict, NULL, &(gv_plan_options){
        .donate_argnames = GV_ARGNAMES("state")}));
    GVT_OK(gv_jit_call(j, in, NULL));
    GVT_OK(gv_jit_call(j, in, NULL));
    cr_expect_eq(gv_tensor_item(n), 2);
    cr_expect_eq(((const float *)gv_tensor_data_const(w))[3], 5.0f);
    gv_jit_free(j);
    /* a name or number that is no argument is an error, not silently no donation */
    j = GVT_NN(gv_jit_new(carry_step_dict, NULL, &(gv_plan_options){
        .donate_argnames = GV_ARGNAMES("stat")}));
    cr_expect_eq(gv_jit_call(j, in, NULL), GV_ERR_ARG);
    cr_expect(strstr(gv_last_error(), "'stat', which is not an argument"), "%s", gv_last_error());
    gv_jit_free(j);
    j = GVT_NN(gv_jit_new(carry_step, NULL, &(gv_plan_options){.donate_argnums = GV_ARGNUMS(2)}));
    cr_expect_eq(gv_jit_call(j, tin, NULL), GV_ERR_ARG);
    cr_expect(strstr(gv_last_error(), "donate_argnums has 2, the function takes 2 arguments"),
              "%s", gv_last_error());
    gv_jit_free(j);
    gv_tree_free(in), gv_tree_free(tin);
    gv_tensor_free(w), gv_tensor_free(b), gv_tensor_free(n), gv_tensor_free(x);
}

#ifdef GVT_COUNTING_ALLOCS
/* (params, batch) -> (params + grads, loss) */
static gv_tree *jit_mlp_step(gv_graph *g, const gv_tree *in, void *vg) {
    const gv_tree *params, *grads;
    gv_value loss;
    gv_unpack(in, "(params, _)", &params);
    gv_unpack(gv_fn_call(g, vg, in), "(loss, grads)", &loss, &grads);
    return gv_pack(g, "(params, loss)", gv_apply_updates(g, params, grads), loss);
}
#endif

Test(jit, a_cached_call_allocates_nothing) {
#ifdef GVT_COUNTING_ALLOCS
    gv_tree *in = mlp_example_inputs(&DIMS, 3);
    gv_fn *loss = GVT_NN(mlp_loss_fn(in));
    gv_fn *vg = GVT_NN(gv_value_and_grad(loss, 0, false));
    gv_fn_free(loss);
    gv_jit *j = GVT_NN(gv_jit_new(jit_mlp_step, vg, &(gv_plan_options){
        .donate_argnums = GV_ARGNUMS(0)}));
    gv_tree *out;
    GVT_OK(gv_jit_call(j, in, &out)); /* compiles; BLAS sets itself up */
    GVT_OK(gv_jit_call(j, in, &out));
    int failures = 0;
    long before = gvt_allocs;
    for (int k = 0; k < 100; k++) failures += gv_jit_call(j, in, &out) != GV_OK;
    long n = gvt_allocs - before;
    cr_assert_eq(failures, 0, "%s", gv_last_error());
    cr_assert_eq(n, 0, "%ld allocations in 100 cached calls", n);
    cr_assert_eq(gv_jit_num_compiles(j), 1);
    gv_jit_free(j);
    gv_fn_free(vg);
    gv_tree_free(in);
#else
    cr_skip_test("allocation counting is replaced by the sanitizer's allocator");
#endif
}

Test(pack_items, a_one_element_tensor_reads_as_a_double) {
    gv_tensor *i = GVT_NN(gv_tensor_scalar(GV_I64, -7));
    gv_tensor *f = GVT_NN(gv_tensor_full(GV_F32, GV_DIMS(1, 1), 0.5));
    gv_tensor *v = GVT_NN(gv_tensor_zeros(GV_F32, GV_DIMS(2)));
    cr_expect_eq(gv_tensor_item(i), -7.0);
    cr_expect_eq(gv_tensor_item(f), 0.5);
    cr_expect(isnan(gv_tensor_item(v)));
    cr_expect_eq(gv_last_status(), GV_ERR_SHAPE);
    gv_tensor_free(i), gv_tensor_free(f), gv_tensor_free(v);
}

Test(jit, a_shape_only_input_is_refused_naming_its_path) {
    gv_tensor *w, *b, *n, *x;
    gv_tree *in = carry_inputs(&w, &b, &n, &x);
    gv_jit *j = GVT_NN(gv_jit_new(carry_step, NULL, NULL));
    GVT_OK(gv_jit_call(j, in, NULL));
    gv_tensor *shape_only = GVT_NN(gv_shape_dtype_struct(GV_F32, GV_DIMS(4)));
    gv_tree *x_leaf;
    GVT_OK(gv_unpack(in, "(_, x)", &x_leaf));
    GVT_OK(gv_tree_leaf_set_tensor(x_leaf, shape_only));
    cr_expect_eq(gv_jit_call(j, in, NULL), GV_ERR_ARG);
    cr_expect(strstr(gv_last_error(), "1") && strstr(gv_last_error(), "shape-only"), "%s",
              gv_last_error());
    gv_fn *f = GVT_NN(gv_trace(carry_step, NULL, in));
    gv_tree *out = NULL;
    cr_expect_eq(gv_fn_eval(f, in, &out), GV_ERR_ARG);
    cr_expect(strstr(gv_last_error(), "gv_fn_eval: inputs"), "%s", gv_last_error());
    cr_expect_null(out);
    gv_fn_free(f);
    gv_jit_free(j);
    gv_tree_free(in);
    gv_tensor_free(shape_only);
    gv_tensor_free(w), gv_tensor_free(b), gv_tensor_free(n), gv_tensor_free(x);
}
