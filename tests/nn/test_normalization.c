/* LayerNorm, RMSNorm and GroupNorm against the real Flax
 * (tests/golden/flax_norm_golden.json, made by
 * tests/golden/make_flax_norm_golden.py): init's paths, shapes and values,
 * apply's outputs and the gradients of sum(out * w) w.r.t. x and the params,
 * through the reference evaluator and a compiled plan. Then a float64
 * finite-difference check of the gradients, Flax's parameter paths inside a
 * compact module, the defaults, and the argument errors.
 *
 * Tolerances (measured; MAX_ULPS below). The elementwise arithmetic is
 * Flax's op for op, but every mean and every parameter gradient is a sum
 * whose terms XLA adds in its own order (its CPU reduce loop) and grove in
 * its own, so a sum may round differently in its last bit; a mean 1 ulp off
 * moves x - mean, and through rsqrt the whole row, by a few ulps of the
 * row's largest value. Distances are in units of the last place of the
 * largest magnitude in the compared array (a near-zero element of a sum
 * that cancels has no meaningful ulp of its own). */
#include <math.h>
#include <string.h>

#include "testutil.h"

/* ---- golden file ---- */

static json_object *golden(void) {
    static json_object *root;
    if (!root) {
        char *path = gvt_golden_path("flax_norm_golden.json");
        root = gvt_load_json(path);
        free(path);
    }
    return root;
}

static json_object *get(json_object *o, const char *key) {
    json_object *v = NULL;
    cr_assert(json_object_object_get_ex(o, key, &v), "golden: no '%s'", key);
    return v;
}

static json_object *find_case(const char *name) {
    json_object *cases = get(golden(), "cases");
    for (size_t i = 0; i < json_object_array_length(cases); i++) {
        json_object *c = json_object_array_get_idx(cases, i);
        if (!strcmp(json_object_get_string(get(c, "name")), name)) return c;
    }
    cr_assert_fail("golden: no case '%s'", name);
    return NULL;
}

/* A float32 tensor from a shape list and a list of '0x%08x' words. */
static gv_tensor *tensor_of(json_object *shape, json_object *words) {
    int rank = (int)json_object_array_length(shape);
    int64_t dims[8];
    for (int d = 0; d < rank; d++) dims[d] = json_object_get_int64(json_object_array_get_idx(shape, d));
    size_t n = json_object_array_length(words);
    uint32_t *w = malloc((n ? n : 1) * sizeof *w);
    for (size_t i = 0; i < n; i++)
        w[i] = (uint32_t)strtoul(json_object_get_string(json_object_array_get_idx(words, i)), NULL, 16);
    gv_tensor *t = GVT_NN(gv_tensor_from_data(GV_F32, rank, dims, w, n * sizeof *w));
    free(w);
    return t;
}

/* {path: {shape, bits}} as a tree of tensors. */
static gv_tree *tree_of(json_object *tensors) {
    gv_tree *t = gv_tree_new_dict();
    json_object_object_foreach(tensors, path, spec) {
        gv_tensor *x = tensor_of(get(spec, "shape"), get(spec, "bits"));
        GVT_OK(gv_tree_insert_tensor(t, path, x));
        gv_tensor_free(x);
    }
    return t;
}

/* ---- the modules of the cases ---- */

static const int AX12[2] = {1, 2};

static gv_module module_of(const char *name) {
    static gv_layer_norm_cfg ln;
    static gv_rms_norm_cfg rms;
    static gv_group_norm_cfg gn;
    ln = gv_layer_norm_defaults(), rms = gv_rms_norm_defaults(), gn = gv_group_norm_defaults();
    if (!strcmp(name, "layernorm_default") || !strcmp(name, "layernorm_constant_row"))
        return (gv_module){&gv_LayerNorm, &ln};
    if (!strcmp(name, "layernorm_no_bias")) return ln.use_bias = false, (gv_module){&gv_LayerNorm, &ln};
    if (!strcmp(name, "layernorm_no_scale")) return ln.use_scale = false, (gv_module){&gv_LayerNorm, &ln};
    if (!strcmp(name, "layernorm_reduce_1_2")) {
        ln.reduction_axes = AX12, ln.nreduction_axes = 2;
        return (gv_module){&gv_LayerNorm, &ln};
    }
    if (!strcmp(name, "layernorm_feature_1_2")) {
        ln.reduction_axes = AX12, ln.nreduction_axes = 2;
        ln.feature_axes = AX12, ln.nfeature_axes = 2;
        return (gv_module){&gv_LayerNorm, &ln};
    }
    if (!strcmp(name, "layernorm_slow_variance"))
        return ln.use_fast_variance = false, (gv_module){&gv_LayerNorm, &ln};
    if (!strcmp(name, "rmsnorm_default")) return (gv_module){&gv_RMSNorm, &rms};
    if (!strcmp(name, "rmsnorm_no_scale")) return rms.use_scale = false, (gv_module){&gv_RMSNorm, &rms};
    if (!strcmp(name, "groupnorm_num_groups_2")) return gn.num_groups = 2, (gv_module){&gv_GroupNorm, &gn};
    if (!strcmp(name, "groupnorm_group_size_2")) {
        gn.num_groups = 0, gn.group_size = 2;
        return (gv_module){&gv_GroupNorm, &gn};
    }
    if (!strcmp(name, "groupnorm_reduce_2_3")) {
        static const int ax23[2] = {2, 3};
        gn.num_groups = 4, gn.reduction_axes = ax23, gn.nreduction_axes = 2;
        return (gv_module){&gv_GroupNorm, &gn};
    }
    cr_assert_fail("no module for case %s", name);
    return (gv_module){0};
}

/* ---- ulp distances ---- */

/* Units of the last place of a's largest magnitude between a and b. */
static double max_units(const float *a, const float *b, int64_t n) {
    float big = 0;
    for (int64_t i = 0; i < n; i++) big = fmaxf(big, fabsf(a[i]));
    double ulp = (double)nextafterf(big, INFINITY) - big, worst = 0;
    for (int64_t i = 0; i < n; i++) {
        if (isnan(a[i]) != isnan(b[i])) return INFINITY;
        worst = fmax(worst, fabs((double)a[i] - b[i]) / ulp);
    }
    return worst;
}

/* How far `have` is from the golden tensor (units as above); fails on a
 * shape difference. */
static double units_from_golden(const char *what, const gv_tensor *have, const gv_tensor *want) {
    cr_assert_eq(gv_tensor_size(have), gv_tensor_size(want), "%s: %lld values, golden %lld", what,
                 (long long)gv_tensor_size(have), (long long)gv_tensor_size(want));
    return max_units(gv_tensor_data_const(want), gv_tensor_data_const(have), gv_tensor_size(want));
}

/* ---- loss = sum(apply(params, x) * w), with the output as aux ---- */

typedef struct loss_ctx {
    gv_module m;
    const gv_tensor *w;
} loss_ctx;

static gv_tree *loss_fn(gv_graph *g, const gv_tree *in, void *ud) {
    const loss_ctx *c = ud;
    gv_tree *args = gv_args1(gv_tree_get_value(in, "1"));
    gv_tree *out = gv_apply(g, &c->m, gv_tree_get(in, "0"), args, NULL, NULL);
    gv_tree_free(args);
    if (!out) return NULL;
    gv_value y = gv_tree_leaf_value(out);
    gv_tree_free(out);
    gv_value w = gv_constant(g, c->w);
    if (gv_value_dtype(y) != gv_value_dtype(w)) w = gv_cast(w, gv_value_dtype(y));
    gv_value loss = gv_sum(gv_mul(y, w), NULL, 0, false);
    gv_tree *r = gv_tree_new_tuple();
    gv_tree_append(r, gv_tree_new_value_leaf(loss));
    gv_tree_append(r, gv_tree_new_value_leaf(y));
    return r;
}

/* Largest distances of one case: output, grad x, grad scale, grad bias. */
typedef struct dist {
    double out, gx, gscale, gbias;
} dist;

static dist run_case(json_object *c, bool compiled) {
    const char *name = json_object_get_string(get(c, "name"));
    loss_ctx lc = {module_of(name), tensor_of(get(c, "x_shape"), get(c, "w"))};
    gv_tensor *x = tensor_of(get(c, "x_shape"), get(c, "x"));
    gv_tree *in = gv_tree_new_tuple();
    GVT_OK(gv_tree_append(in, tree_of(get(c, "params"))));
    GVT_OK(gv_tree_append_tensor(in, x));
    gv_fn *f = GVT_NN(gv_trace(loss_fn, &lc, in));
    gv_fn *vg = GVT_NN(gv_value_and_grad_path(f, "", true));
    gv_tree *out = NULL;
    if (compiled) {
        gv_plan *p = GVT_NN(gv_plan_compile(vg, NULL));
        out = GVT_NN(gv_plan_new_outputs(p));
        GVT_OK(gv_plan_run(p, in, out));
        gv_plan_free(p);
    } else {
        GVT_OK(gv_fn_eval(vg, in, &out));
    }
    dist d = {0};
    gv_tensor *want = tensor_of(get(c, "x_shape"), get(c, "out"));
    d.out = units_from_golden(name, GVT_NN(gv_tree_get_tensor(out, "0/1")), want);
    gv_tensor_free(want);
    want = tensor_of(get(c, "x_shape"), get(c, "grad_x"));
    d.gx = units_from_golden(name, GVT_NN(gv_tree_get_tensor(out, "1/1")), want);
    gv_tensor_free(want);
    json_object_object_foreach(get(c, "grad_params"), path, spec) {
        char p[128];
        snprintf(p, sizeof p, "1/0/%s", path);
        want = tensor_of(get(spec, "shape"), get(spec, "bits"));
        double u = units_from_golden(p, GVT_NN(gv_tree_get_tensor(out, p)), want);
        if (strstr(path, "scale")) d.gscale = u;
        else d.gbias = u;
        gv_tensor_free(want);
    }
    gv_tree_free(out), gv_fn_free(vg), gv_fn_free(f), gv_tree_free(in);
    gv_tensor_free(x), gv_tensor_free((gv_tensor *)lc.w);
    return d;
}

/* Measured against the golden file (units of the largest magnitude, see the
 * top comment), the same through the evaluator and a plan. LayerNorm and
 * RMSNorm: outputs, grad x and grad scale bit for bit; grad bias is the sum
 * of the output cotangent over the non-feature axes (6 terms here), whose
 * order XLA picks (in layernorm_default it equals the float64 sum rounded
 * once, not a left-to-right float32 sum; grove adds left to right): half a
 * unit (1 ulp of a smaller element).
 * With feature axes (1, 2) the bias sum has 2 terms and is exact. GroupNorm:
 * its means sum 8 to 64 terms over axes of the grouped input that are not
 * adjacent (the group axis lies between), which grove adds in input order
 * and XLA in its own; a last-bit difference in a mean moves the normalised
 * row by up to 2 units, the scale gradient (a sum of those) by up to 4, and
 * the bias gradient is again a reordered sum (1.5). */
static const struct {
    const char *name;
    dist tol;
} MAX_ULPS[] = {
    {"layernorm_default", {0, 0, 0, 0.5}},
    {"layernorm_no_bias", {0, 0, 0, 0}},
    {"layernorm_no_scale", {0, 0, 0, 0.5}},
    {"layernorm_reduce_1_2", {0, 0, 0, 0.5}},
    {"layernorm_feature_1_2", {0, 0, 0, 0}},
    {"layernorm_slow_variance", {0, 0, 0, 0.5}},
    {"layernorm_constant_row", {0, 0, 0, 0.5}},
    {"rmsnorm_default", {0, 0, 0, 0}},
    {"rmsnorm_no_scale", {0, 0, 0, 0}},
    {"groupnorm_num_groups_2", {2, 2, 2, 1.5}},
    {"groupnorm_group_size_2", {2, 2, 4, 1.5}},
    {"groupnorm_reduce_2_3", {2, 1.5, 1, 1.5}},
};

static void check_cases(bool compiled) {
    json_object *cases = get(golden(), "cases");
    cr_assert_eq(json_object_array_length(cases), sizeof MAX_ULPS / sizeof *MAX_ULPS);
    for (size_t i = 0; i < sizeof MAX_ULPS / sizeof *MAX_ULPS; i++) {
        dist d = run_case(find_case(MAX_ULPS[i].name), compiled), t = MAX_ULPS[i].tol;
        cr_log_info("%s %s: out %g, grad x %g, grad scale %g, grad bias %g units",
                    compiled ? "plan" : "eval", MAX_ULPS[i].name, d.out, d.gx, d.gscale, d.gbias);
        cr_expect(d.out <= t.out, "%s: output %g units from Flax (allowed %g)", MAX_ULPS[i].name,
                  d.out, t.out);
        cr_expect(d.gx <= t.gx, "%s: grad x %g units from Flax (allowed %g)", MAX_ULPS[i].name,
                  d.gx, t.gx);
        cr_expect(d.gscale <= t.gscale, "%s: grad scale %g units from Flax (allowed %g)",
                  MAX_ULPS[i].name, d.gscale, t.gscale);
        cr_expect(d.gbias <= t.gbias, "%s: grad bias %g units from Flax (allowed %g)",
                  MAX_ULPS[i].name, d.gbias, t.gbias);
    }
}

Test(flax_golden, outputs_and_gradients_reference_evaluator) { check_cases(false); }
Test(flax_golden, outputs_and_gradients_compiled_plan) { check_cases(true); }

Test(flax_golden, init_paths_shapes_and_values) {
    json_object *cases = get(golden(), "cases");
    for (size_t i = 0; i < json_object_array_length(cases); i++) {
        json_object *c = json_object_array_get_idx(cases, i);
        const char *name = json_object_get_string(get(c, "name"));
        gv_module m = module_of(name);
        gv_tensor *x = tensor_of(get(c, "x_shape"), get(c, "x"));
        gv_tree *args = gv_args_tensors(&x, 1);
        gv_tree *vars = gv_init(&m, gv_prng_key(0), args, NULL);
        cr_assert_not_null(vars, "%s: init: %s", name, gv_last_error());
        gv_tree *want = tree_of(get(c, "init"));
        char first[256] = "";
        cr_expect_eq(gv_tree_num_leaves(vars), gv_tree_num_leaves(want), "%s: %zu params, Flax %zu",
                     name, gv_tree_num_leaves(vars), gv_tree_num_leaves(want));
        if (gv_tree_num_leaves(want)) {
            int nd = gvt_tree_diff(want, vars, first, sizeof first);
            cr_expect_eq(nd, 0, "%s: %d params differ from Flax's init, first %s", name, nd, first);
        }
        gv_tree_free(want), gv_tree_free(vars), gv_tree_free(args), gv_tensor_free(x);
    }
}

/* ---- Flax's paths inside a compact module ---- */

static gv_tree *net_call(gv_scope *s, const void *cfg, const gv_tree *args) {
    gv_layer_norm_cfg ln = gv_layer_norm_defaults(), ln2 = gv_layer_norm_defaults();
    gv_rms_norm_cfg rms = gv_rms_norm_defaults();
    gv_group_norm_cfg gn = gv_group_norm_defaults();
    gn.num_groups = 4, ln2.use_bias = false;
    gv_module a = {&gv_LayerNorm, &ln}, b = {&gv_RMSNorm, &rms}, c = {&gv_GroupNorm, &gn},
              d = {&gv_LayerNorm, &ln2};
    gv_value x = gv_scope_call1(s, NULL, &a, gv_args_get(args, 0));
    x = gv_scope_call1(s, NULL, &b, x);
    x = gv_scope_call1(s, NULL, &c, x);
    return gv_tree_new_value_leaf(gv_scope_call1(s, NULL, &d, x));
}
static const gv_module_type Net = {"Net", net_call, NULL, 0};

Test(flax_golden, nested_paths) {
    gv_module m = {&Net, NULL};
    gv_tensor *x = gv_tensor_ones(GV_F32, GV_DIMS(2, 4, 4, 8));
    gv_tree *args = gv_args_tensors(&x, 1);
    gv_tree *vars = GVT_NN(gv_init(&m, gv_prng_key(0), args, NULL));
    json_object *want = get(golden(), "nested_paths");
    cr_expect_eq(gv_tree_num_leaves(vars), (size_t)json_object_object_length(want));
    json_object_object_foreach(want, path, shape) {
        gv_tensor *t = gv_tree_get_tensor(vars, path);
        cr_assert_not_null(t, "no %s in grove's init", path);
        cr_expect_eq(gv_tensor_rank(t), 1);
        cr_expect_eq(gv_tensor_shape(t)[0], json_object_get_int64(json_object_array_get_idx(shape, 0)),
                     "%s", path);
    }
    gv_tree_free(vars), gv_tree_free(args), gv_tensor_free(x);
}

Test(defaults, flax_defaults) {
    gv_layer_norm_cfg ln = gv_layer_norm_defaults();
    cr_expect_eq(ln.epsilon, 1e-6);
    cr_expect(ln.use_bias && ln.use_scale && ln.use_fast_variance);
    cr_expect(ln.reduction_axes == NULL && ln.feature_axes == NULL, "NULL = axis -1");
    cr_expect(ln.scale_init.kind == GV_INIT_CONSTANT && ln.scale_init.value == 1.0);
    cr_expect(ln.bias_init.kind == GV_INIT_CONSTANT && ln.bias_init.value == 0.0);
    gv_rms_norm_cfg rms = gv_rms_norm_defaults();
    cr_expect(rms.epsilon == 1e-6 && rms.use_scale && rms.scale_init.value == 1.0);
    gv_group_norm_cfg gn = gv_group_norm_defaults();
    cr_expect(gn.num_groups == 32 && gn.group_size == 0 && gn.epsilon == 1e-6);
    cr_expect(gn.use_bias && gn.use_scale && gn.use_fast_variance && gn.reduction_axes == NULL);
}

/* ---- float64 finite differences ---- */

/* loss(in) through the reference evaluator. */
static double loss_at(const gv_fn *f, const gv_tree *in) {
    gv_tree *out = NULL;
    GVT_OK(gv_fn_eval(f, in, &out));
    double v = *(const double *)gv_tensor_data_const(GVT_NN(gv_tree_get_tensor(out, "0")));
    gv_tree_free(out);
    return v;
}

typedef struct fd_state {
    const gv_fn *f;
    gv_tree *in;
    const gv_tree *grads;
    const char *name;
    double worst;
} fd_state;

/* Central differences for every element of the input leaf at path (in
 * the tuple (variables, x)) against the gradient there. */
static void fd_leaf(fd_state *st, const char *path) {
    gv_tensor *t = GVT_NN(gv_tree_get_tensor(st->in, path));
    char gpath[160];
    snprintf(gpath, sizeof gpath, "1/%s", path);
    const double *g = gv_tensor_data_const(GVT_NN(gv_tree_get_tensor(st->grads, gpath)));
    double *p = gv_tensor_data(t);
    const double h = 1e-5;
    for (int64_t j = 0; j < gv_tensor_size(t); j++) {
        double keep = p[j];
        p[j] = keep + h;
        double up = loss_at(st->f, st->in);
        p[j] = keep - h;
        double down = loss_at(st->f, st->in);
        p[j] = keep;
        double fd = (up - down) / (2 * h), err = fabs(fd - g[j]) / (1 + fabs(g[j]));
        st->worst = fmax(st->worst, err);
        cr_expect_leq(err, 1e-7, "%s %s[%lld]: grad %.12g, finite difference %.12g", st->name,
                      path, (long long)j, g[j], fd);
    }
}

static gv_tensor *pattern64(int rank, const int64_t *shape, double a, double b, double c) {
    gv_tensor *t = GVT_NN(gv_tensor_zeros(GV_F64, rank, shape));
    double *p = gv_tensor_data(t);
    for (int64_t i = 0; i < gv_tensor_size(t); i++) p[i] = c + a * sin(b * (double)i + c);
    return t;
}

static void fd_check(const char *name, gv_module m, int rank, const int64_t *shape) {
    gv_tensor *x32 = gv_tensor_ones(GV_F32, rank, shape);
    gv_tree *args = gv_args_tensors(&x32, 1);
    gv_tree *vars = GVT_NN(gv_init(&m, gv_prng_key(0), args, NULL));
    /* float64 variables of init's shapes, scale near 1 and bias near 0 */
    gv_tree *vars64 = gv_tree_new_dict();
    char **paths;
    size_t np;
    GVT_OK(gv_tree_leaf_paths(vars, &paths, &np));
    for (size_t i = 0; i < np; i++) {
        gv_tensor *v = gv_tree_get_tensor(vars, paths[i]);
        bool scale = strstr(paths[i], "scale") != NULL;
        gv_tensor *t = pattern64(gv_tensor_rank(v), gv_tensor_shape(v), 0.3, 0.8 + (double)i,
                                 scale ? 1.0 : 0.1);
        GVT_OK(gv_tree_insert_tensor(vars64, paths[i], t));
        gv_tensor_free(t);
    }
    gv_tree_paths_free(paths, np);
    gv_tensor *x = pattern64(rank, shape, 1.3, 0.71, 0.4);
    gv_tensor *w = pattern64(rank, shape, 1.0, 0.37, -0.2);
    gv_tree *in = gv_tree_new_tuple();
    GVT_OK(gv_tree_append(in, vars64));
    GVT_OK(gv_tree_append_tensor(in, x));
    loss_ctx lc = {m, w};
    gv_fn *f = GVT_NN(gv_trace(loss_fn, &lc, in));
    gv_fn *vg = GVT_NN(gv_value_and_grad_path(f, "", true));
    gv_tree *out = NULL;
    GVT_OK(gv_fn_eval(vg, in, &out));
    cr_assert_eq(gv_tensor_dtype(GVT_NN(gv_tree_get_tensor(out, "0/1"))), GV_F64,
                 "%s: a float64 input stays float64", name);
    fd_state st = {f, in, out, name, 0};
    fd_leaf(&st, "1");
    GVT_OK(gv_tree_leaf_paths(gv_tree_get(in, "0"), &paths, &np));
    for (size_t i = 0; i < np; i++) {
        char p[160];
        snprintf(p, sizeof p, "0/%s", paths[i]);
        fd_leaf(&st, p);
    }
    gv_tree_paths_free(paths, np);
    cr_log_info("finite differences %s: worst relative error %.3g", name, st.worst);
    gv_tree_free(out), gv_fn_free(vg), gv_fn_free(f), gv_tree_free(in);
    gv_tensor_free(x), gv_tensor_free(w), gv_tree_free(vars), gv_tree_free(args);
    gv_tensor_free(x32);
}

Test(finite_differences, float64_gradients) {
    const char *names[] = {"layernorm_default", "layernorm_slow_variance", "layernorm_feature_1_2",
                           "rmsnorm_default"};
    for (size_t i = 0; i < sizeof names / sizeof *names; i++)
        fd_check(names[i], module_of(names[i]), GV_DIMS(2, 3, 8));
    fd_check("groupnorm_num_groups_2", module_of("groupnorm_num_groups_2"), GV_DIMS(2, 3, 2, 8));
    fd_check("groupnorm_group_size_2", module_of("groupnorm_group_size_2"), GV_DIMS(2, 3, 2, 8));
}

/* ---- argument and shape errors, naming the module path ---- */

static gv_status init_status(const gv_module *m, gv_dtype dtype, int rank, const int64_t *shape) {
    gv_tensor *x = gv_tensor_zeros(dtype, rank, shape);
    gv_tree *args = gv_args_tensors(&x, 1);
    gv_tree *vars = gv_init(m, gv_prng_key(0), args, NULL);
    gv_status st = vars ? GV_OK : gv_last_status();
    gv_tree_free(vars), gv_tree_free(args), gv_tensor_free(x);
    return st;
}

/* A parent calling its one child (cfg) in compact style: the child's path
 * is "<Type>_0". */
static gv_tree *parent_call(gv_scope *s, const void *cfg, const gv_tree *args) {
    return gv_tree_new_value_leaf(gv_scope_call1(s, NULL, cfg, gv_args_get(args, 0)));
}
static const gv_module_type Parent = {"Parent", parent_call, NULL, 0};

Test(errors, group_norm_groups) {
    gv_group_norm_cfg gn = gv_group_norm_defaults();
    gv_module m = {&gv_GroupNorm, &gn}, parent = {&Parent, &m};
    /* the default 32 groups on 8 channels */
    GVT_FAILS(init_status(&m, GV_F32, GV_DIMS(2, 4, 4, 8)), GV_ERR_SHAPE,
              "GroupNorm: the number of groups (32) does not divide the number of channels (8)");
    gn.num_groups = 3;
    GVT_FAILS(init_status(&parent, GV_F32, GV_DIMS(2, 4, 4, 8)), GV_ERR_SHAPE,
              "GroupNorm_0: GroupNorm: the number of groups (3) does not divide");
    GVT_FAILS(init_status(&parent, GV_F32, GV_DIMS(2, 4, 4, 8)), GV_ERR_SHAPE,
              "(input shape [2,4,4,8])");
    gn.num_groups = -2;
    GVT_FAILS(init_status(&m, GV_F32, GV_DIMS(2, 8)), GV_ERR_SHAPE, "number of groups (-2)");
    gn.num_groups = 2, gn.group_size = 4;
    GVT_FAILS(init_status(&m, GV_F32, GV_DIMS(2, 8)), GV_ERR_ARG, "exactly one of .num_groups");
    gn.num_groups = 0, gn.group_size = 0;
    GVT_FAILS(init_status(&m, GV_F32, GV_DIMS(2, 8)), GV_ERR_ARG, "exactly one of .num_groups");
    gn.group_size = 3;
    GVT_FAILS(init_status(&m, GV_F32, GV_DIMS(2, 8)), GV_ERR_SHAPE,
              "the number of channels (8) is not a multiple of the group size (3)");
    gn.group_size = 4;
    GVT_OK(init_status(&m, GV_F32, GV_DIMS(2, 8)));
    static const int ax1[1] = {1};
    gn.reduction_axes = ax1, gn.nreduction_axes = 1;
    GVT_FAILS(init_status(&m, GV_F32, GV_DIMS(2, 4, 8)), GV_ERR_SHAPE,
              "the reduction axes must include the final dimension");
    gn.reduction_axes = NULL, gn.nreduction_axes = 0;
    GVT_FAILS(init_status(&m, GV_F32, 0, NULL), GV_ERR_SHAPE, "channels axis");
}

Test(errors, axes_and_dtypes) {
    static const int ax3[1] = {3}, axm4[1] = {-4};
    gv_layer_norm_cfg ln = gv_layer_norm_defaults();
    gv_module m = {&gv_LayerNorm, &ln}, parent = {&Parent, &m};
    ln.reduction_axes = ax3, ln.nreduction_axes = 1;
    GVT_FAILS(init_status(&parent, GV_F32, GV_DIMS(2, 3, 8)), GV_ERR_SHAPE,
              "LayerNorm_0: LayerNorm: reduction axis 3 is out of range for an input of rank 3");
    ln.reduction_axes = NULL, ln.nreduction_axes = 0;
    ln.feature_axes = axm4, ln.nfeature_axes = 1;
    GVT_FAILS(init_status(&m, GV_F32, GV_DIMS(2, 3, 8)), GV_ERR_SHAPE,
              "LayerNorm: feature axis -4 is out of range");
    ln.feature_axes = NULL, ln.nfeature_axes = 0;
    GVT_FAILS(init_status(&m, GV_F32, 0, NULL), GV_ERR_SHAPE, "out of range for an input of rank 0");
    GVT_FAILS(init_status(&m, GV_I32, GV_DIMS(2, 8)), GV_ERR_DTYPE,
              "LayerNorm: expects a float32 or float64 input, got int32");
    gv_rms_norm_cfg rms = gv_rms_norm_defaults();
    gv_module r = {&gv_RMSNorm, &rms};
    rms.reduction_axes = ax3, rms.nreduction_axes = 1;
    GVT_FAILS(init_status(&r, GV_F32, GV_DIMS(2, 8)), GV_ERR_SHAPE, "RMSNorm: reduction axis 3");
    /* duplicates are one axis, as Flax's _canonicalize_axes makes them */
    static const int dup[3] = {-1, 2, -1};
    ln.reduction_axes = dup, ln.nreduction_axes = 3;
    GVT_OK(init_status(&m, GV_F32, GV_DIMS(2, 3, 8)));
}

/* Variables made for other feature axes: gv_param's shape check names the path. */
Test(errors, apply_with_wrong_param_shape) {
    gv_layer_norm_cfg ln = gv_layer_norm_defaults();
    gv_module m = {&gv_LayerNorm, &ln};
    gv_tensor *x = gv_tensor_ones(GV_F32, GV_DIMS(2, 3, 8));
    gv_tree *args = gv_args_tensors(&x, 1);
    gv_tree *vars = GVT_NN(gv_init(&m, gv_prng_key(0), args, NULL));
    ln.feature_axes = AX12, ln.nfeature_axes = 2;
    gv_tree *out = NULL;
    GVT_FAILS(gv_apply_eager(&m, vars, args, NULL, NULL, &out), GV_ERR_SHAPE,
              "param params/scale has shape [8], the module expects [3,8]");
    gv_tree_free(out), gv_tree_free(vars), gv_tree_free(args), gv_tensor_free(x);
}
