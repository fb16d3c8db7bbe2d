/* BatchNorm and the mutable batch_stats collection against the real Flax
 * (tests/golden/flax_batchnorm_golden.json, make_flax_batchnorm_golden.py;
 * three cases: the defaults on (8, 5), NHWC (4, 3, 3, 2), and axis 1 with
 * the two-pass variance and no bias on (6, 4, 3)): init, 3 training applies with mutable=['batch_stats'] (outputs and
 * running averages), the eval output from the running averages, the
 * gradient in training mode (MAX_ULP_DX says how close and why); the
 * errors Flax raises; and a Dense -> BatchNorm -> Dense model trained with
 * a jitted, donated train step whose state carries batch_stats through
 * the steps and through a checkpoint.
 *
 * Through the reference evaluator (gv_fn_eval) everything is Flax's bit
 * for bit: its reductions sum in index order from 0, as XLA:CPU's small
 * reductions do here, and every other op is one float32 operation. A
 * compiled plan may sum the reductions in another order (and fuse the
 * elementwise tail), but on these sizes it sums in the same order: measured
 * 0 ulp on every output, so MAX_ULP_COMPILED is 0 (a plan that reorders
 * the reductions would need the measured bound here, and why). */
#include <math.h>
#include <string.h>

#include "testutil.h"

#define MAX_ULP_COMPILED 0

static const char *const MUTABLE[] = {"batch_stats"};

/* ---- JSON -> tensors ---- */

static void json_shape(json_object *a, int *rank, int64_t *shape) {
    *rank = 0;
    while (json_object_is_type(a, json_type_array)) {
        shape[(*rank)++] = (int64_t)json_object_array_length(a);
        a = json_object_array_get_idx(a, 0);
    }
}

static void json_flatten(json_object *a, float *out, int64_t *n) {
    if (!json_object_is_type(a, json_type_array)) {
        out[(*n)++] = (float)json_object_get_double(a);
        return;
    }
    for (size_t i = 0; i < json_object_array_length(a); i++)
        json_flatten(json_object_array_get_idx(a, i), out, n);
}

static gv_tensor *json_tensor(json_object *a) {
    int rank;
    int64_t shape[8];
    json_shape(a, &rank, shape);
    gv_tensor *t = GVT_NN(gv_tensor_zeros(GV_F32, rank, shape));
    int64_t n = 0;
    json_flatten(a, gv_tensor_data(t), &n);
    cr_assert_eq(n, gv_tensor_size(t));
    return t;
}

/* a dict of dicts of lists -> a tree of tensors */
static gv_tree *json_tree(json_object *o) {
    if (json_object_is_type(o, json_type_array)) {
        gv_tensor *t = json_tensor(o);
        gv_tree *leaf = gv_tree_new_leaf(t);
        gv_tensor_free(t);
        return leaf;
    }
    gv_tree *d = gv_tree_new_dict();
    json_object_object_foreach(o, k, v) GVT_OK(gv_tree_insert(d, k, json_tree(v)));
    return d;
}

static json_object *get(json_object *o, const char *key) {
    json_object *v = NULL;
    cr_assert(json_object_object_get_ex(o, key, &v), "no '%s' in the golden file", key);
    return v;
}

static json_object *load_golden(void) {
    char *path = gvt_golden_path("flax_batchnorm_golden.json");
    json_object *root = gvt_load_json(path);
    free(path);
    return root;
}

static json_object *golden_case(json_object *root, int i) {
    return json_object_array_get_idx(get(root, "cases"), (size_t)i);
}

/* ---- comparing ---- */

static int64_t ulp_key(float f) {
    int32_t i;
    memcpy(&i, &f, sizeof i);
    return i < 0 ? (int64_t)INT32_MIN - i : i;
}

/* max ulp distance between two float32 tensors of the same size */
static int64_t max_ulp(const gv_tensor *a, const gv_tensor *b, const char *what) {
    cr_assert_not_null(a, "%s: missing", what);
    cr_assert_not_null(b, "%s: missing", what);
    cr_assert_eq(gv_tensor_size(a), gv_tensor_size(b), "%s: sizes differ", what);
    const float *pa = gv_tensor_data_const(a), *pb = gv_tensor_data_const(b);
    int64_t worst = 0;
    for (int64_t i = 0; i < gv_tensor_size(a); i++) {
        int64_t d = llabs(ulp_key(pa[i]) - ulp_key(pb[i]));
        if (d > worst) worst = d;
    }
    return worst;
}

static gv_tree *vars_of(const gv_tree *params, const gv_tree *stats) {
    gv_tree *v = gv_tree_new_dict();
    GVT_OK(gv_tree_insert(v, "params", gv_tree_clone(params)));
    if (stats) GVT_OK(gv_tree_insert(v, "batch_stats", gv_tree_clone(stats)));
    return v;
}

/* ---- apply through the reference evaluator ---- */

typedef struct apply_ctx {
    const gv_module *m;
    const gv_module_options *o;
} apply_ctx;

static gv_tree *apply_trace(gv_graph *g, const gv_tree *in, void *ud) {
    const apply_ctx *c = ud;
    return gv_apply(g, c->m, gv_tree_get(in, "0"), gv_tree_get(in, "1"), NULL, c->o);
}

static gv_tree *apply_reference(const gv_module *m, const gv_tree *vars, gv_tensor *x,
                                const gv_module_options *o) {
    apply_ctx c = {m, o};
    gv_tree *in = gv_tree_new_tuple();
    GVT_OK(gv_tree_append(in, gv_tree_clone(vars)));
    GVT_OK(gv_tree_append(in, gv_args_tensors(&x, 1)));
    gv_fn *f = GVT_NN(gv_trace(apply_trace, &c, in));
    gv_tree *out = NULL;
    GVT_OK(gv_fn_eval(f, in, &out));
    gv_fn_free(f), gv_tree_free(in);
    return out;
}

static gv_tree *apply_compiled(const gv_module *m, const gv_tree *vars, gv_tensor *x,
                               const gv_module_options *o) {
    gv_tree *args = gv_args_tensors(&x, 1), *out = NULL;
    GVT_OK(gv_apply_eager(m, vars, args, NULL, o, &out));
    gv_tree_free(args);
    return out;
}

#define NCASES 3

/* the case's BatchNorm(momentum=..., **cfg) */
static gv_batchnorm_cfg case_cfg(json_object *c) {
    gv_batchnorm_cfg cfg = gv_batchnorm_defaults();
    cfg.momentum = json_object_get_double(get(c, "momentum"));
    json_object_object_foreach(get(c, "cfg"), k, v) {
        if (!strcmp(k, "axis")) cfg.axis = json_object_get_int(v);
        else if (!strcmp(k, "use_fast_variance")) cfg.use_fast_variance = json_object_get_boolean(v);
        else if (!strcmp(k, "use_bias")) cfg.use_bias = json_object_get_boolean(v);
        else cr_assert_fail("golden cfg field %s is not read here", k);
    }
    return cfg;
}

/* ---- init ---- */

Test(batchnorm, init_matches_flax) {
    json_object *root = load_golden();
    for (int k = 0; k < NCASES; k++) {
        json_object *c = golden_case(root, k);
        gv_batchnorm_cfg cfg = case_cfg(c);
        gv_module bn = {&gv_BatchNorm, &cfg};
        gv_tensor *x = json_tensor(get(json_object_array_get_idx(get(c, "steps"), 0), "x"));
        gv_tree *args = gv_args_tensors(&x, 1);
        /* Flax's tutorial inits in train mode: no running average is written */
        gv_tree *vars = GVT_NN(gv_init(&bn, gv_prng_key(0), args,
                                       &(gv_module_options){.train = true}));
        gv_tree *want = json_tree(get(c, "init"));
        char first[256] = "";
        cr_expect_eq(gvt_tree_diff(vars, want, first, sizeof first), 0, "%s: %s",
                     json_object_get_string(get(c, "name")), first);
        cr_expect_eq(gvt_tree_diff(want, vars, first, sizeof first), 0, "%s: %s",
                     json_object_get_string(get(c, "name")), first);
        cr_expect(gv_tree_contains(vars, "batch_stats/mean") && gv_tree_contains(vars, "params/scale"));
        gv_tree_free(want), gv_tree_free(vars), gv_tree_free(args), gv_tensor_free(x);
    }
    json_object_put(root);
}

/* ---- train-mode applies with mutable batch_stats, then eval ---- */

static void run_case(json_object *c, bool compiled) {
    const char *name = json_object_get_string(get(c, "name"));
    gv_batchnorm_cfg cfg = case_cfg(c);
    gv_module bn = {&gv_BatchNorm, &cfg};
    gv_module_options train = {.train = true, .mutable_collections = MUTABLE, .nmutable = 1};
    gv_tree *params = json_tree(get(c, "params"));
    gv_tree *stats = json_tree(get(get(c, "init"), "batch_stats"));
    gv_tree *(*apply)(const gv_module *, const gv_tree *, gv_tensor *, const gv_module_options *) =
        compiled ? apply_compiled : apply_reference;
    int64_t worst_y = 0, worst_stats = 0;
    json_object *steps = get(c, "steps");
    for (size_t k = 0; k < json_object_array_length(steps); k++) {
        json_object *st = json_object_array_get_idx(steps, k);
        gv_tensor *x = json_tensor(get(st, "x"));
        gv_tree *vars = vars_of(params, stats);
        gv_tree *out = apply(&bn, vars, x, &train);
        cr_assert_eq(gv_tree_num_children(out), 2, "%s: apply with mutable returns (out, mutated)", name);
        cr_assert(gv_tree_contains(out, "1/batch_stats/mean"), "%s: mutated holds batch_stats", name);
        cr_assert_eq(gv_tree_num_children(gv_tree_get(out, "1")), 1, "only the mutable collections");
        gv_tensor *y_want = json_tensor(get(st, "y"));
        int64_t u = max_ulp(gv_tree_get_tensor(out, "0"), y_want, name);
        worst_y = u > worst_y ? u : worst_y;
        gv_tree *stats_want = json_tree(get(st, "batch_stats"));
        for (int v = 0; v < 2; v++) {
            const char *leaf = v ? "var" : "mean";
            char path[64];
            snprintf(path, sizeof path, "1/batch_stats/%s", leaf);
            u = max_ulp(gv_tree_get_tensor(out, path), gv_tree_get_tensor(stats_want, leaf), leaf);
            worst_stats = u > worst_stats ? u : worst_stats;
        }
        /* chain our own stats: each step's error would carry into the next */
        gv_tree_free(stats);
        stats = gv_tree_copy(gv_tree_get(out, "1/batch_stats"));
        gv_tree_free(stats_want), gv_tensor_free(y_want), gv_tree_free(out);
        gv_tree_free(vars), gv_tensor_free(x);
    }
    /* eval: the running averages, nothing written (no mutable needed) */
    gv_tensor *xe = json_tensor(get(c, "x_eval")), *ye = json_tensor(get(c, "y_eval"));
    gv_tree *vars = vars_of(params, stats);
    gv_tree *out = apply(&bn, vars, xe, &(gv_module_options){0});
    int64_t worst_eval = max_ulp(gv_tree_leaf_tensor(out), ye, "eval");
    gv_tree_free(out);
    /* use_running_average in the cfg does the same in a training scope */
    gv_batchnorm_cfg frozen = cfg;
    frozen.use_running_average = true;
    gv_module bn_frozen = {&gv_BatchNorm, &frozen};
    out = apply(&bn_frozen, vars, xe, &train);
    int64_t u = max_ulp(gv_tree_get_tensor(out, "0"), ye, "eval, use_running_average");
    worst_eval = u > worst_eval ? u : worst_eval;
    char first[256] = "";
    cr_expect_eq(gvt_tree_diff(gv_tree_get(out, "1/batch_stats"), stats, first, sizeof first), 0,
                 "use_running_average writes nothing: %s", first);
    gv_tree_free(out);
    cr_log_info("%s (%s): max ulp: train outputs %lld, batch_stats %lld, eval %lld", name,
                compiled ? "compiled" : "reference", (long long)worst_y, (long long)worst_stats,
                (long long)worst_eval);
    int64_t tol = compiled ? MAX_ULP_COMPILED : 0;
    cr_expect_leq(worst_y, tol, "%s: train outputs %lld ulp", name, (long long)worst_y);
    cr_expect_leq(worst_stats, tol, "%s: batch_stats %lld ulp", name, (long long)worst_stats);
    cr_expect_leq(worst_eval, tol, "%s: eval %lld ulp", name, (long long)worst_eval);
    gv_tree_free(vars), gv_tensor_free(xe), gv_tensor_free(ye);
    gv_tree_free(stats), gv_tree_free(params);
}

Test(batchnorm, train_and_eval_match_flax_reference_evaluator) {
    json_object *root = load_golden();
    for (int k = 0; k < NCASES; k++) run_case(golden_case(root, k), false);
    json_object_put(root);
}

Test(batchnorm, train_and_eval_match_flax_compiled) {
    json_object *root = load_golden();
    for (int k = 0; k < NCASES; k++) run_case(golden_case(root, k), true);
    json_object_put(root);
}

/* ---- the gradient in training mode, through the batch statistics ---- */

typedef struct grad_ctx {
    const gv_module *m;
    gv_tensor *w;
} grad_ctx;

/* loss(params, x, stats) = sum(y * w), y from a training apply */
static gv_tree *grad_loss(gv_graph *g, const gv_tree *in, void *ud) {
    const grad_ctx *c = ud;
    const gv_tree *params, *stats, *mutated;
    gv_value x, y;
    gv_unpack(in, "(params, x, stats)", &params, &x, &stats);
    gv_module_options o = {.train = true, .mutable_collections = MUTABLE, .nmutable = 1};
    gv_tree *out = gv_apply(g, c->m, gv_pack(g, "{params, batch_stats}", params, stats),
                            gv_tuple(g, x), NULL, &o);
    if (gv_unpack(out, "(y, mutated)", &y, &mutated) != GV_OK) return NULL;
    return gv_tree_new_value_leaf(gv_sum(gv_mul(y, gv_constant(g, c->w)), NULL, 0, false));
}

/* d/dscale and d/dbias are Flax's bits. d/dx is not: JAX's VJPs of
 * mean, square and the broadcasts sum their cotangents in XLA's order and
 * grove's VJP rules are other ops in another order. Measured: 5 ulp (8x5),
 * 2 ulp (NHWC) and 0 (axis 1 without the fast variance), the same through
 * the reference evaluator and a compiled plan; MAX_ULP_DX is that with a
 * factor 2 margin. */
#define MAX_ULP_DX 10

static void check_grad(json_object *c, bool compiled, int64_t *worst_p, int64_t *worst_x) {
    const char *name = json_object_get_string(get(c, "name"));
    json_object *gj = get(c, "grad");
    gv_batchnorm_cfg cfg = case_cfg(c);
    gv_module bn = {&gv_BatchNorm, &cfg};
    grad_ctx gc = {&bn, json_tensor(get(gj, "w"))};
    gv_tensor *x = json_tensor(get(json_object_array_get_idx(get(c, "steps"), 0), "x"));
    gv_tree *params = json_tree(get(c, "params")), *stats = json_tree(get(get(c, "init"), "batch_stats"));
    gv_tree *in = gv_pack(NULL, "(params, x, stats)", params, x, stats); /* copies the trees */
    gv_tree_free(params), gv_tree_free(stats);
    gv_fn *f = GVT_NN(gv_trace(grad_loss, &gc, in));
    gv_tree *want_p = json_tree(get(gj, "params"));
    gv_tensor *want_x = json_tensor(get(gj, "x"));
    for (int arg = 0; arg < 2; arg++) {
        gv_fn *vg = GVT_NN(gv_value_and_grad(f, arg, false));
        gv_tree *out = NULL;
        if (compiled) {
            gv_plan *p = GVT_NN(gv_plan_compile(vg, NULL));
            out = GVT_NN(gv_plan_new_outputs(p));
            GVT_OK(gv_plan_run(p, in, out));
            gv_plan_free(p);
        } else {
            GVT_OK(gv_fn_eval(vg, in, &out));
        }
        const char *leaves[] = {"scale", "bias"};
        for (int l = 0; arg == 0 && l < 2; l++) {
            if (!gv_tree_contains(want_p, leaves[l])) continue; /* use_bias=False */
            char path[32];
            snprintf(path, sizeof path, "1/%s", leaves[l]);
            int64_t u = max_ulp(gv_tree_get_tensor(out, path), gv_tree_get_tensor(want_p, leaves[l]),
                                leaves[l]);
            cr_log_info("%s (%s): d/d%s %lld ulp", name, compiled ? "compiled" : "reference",
                        leaves[l], (long long)u);
            *worst_p = u > *worst_p ? u : *worst_p;
        }
        if (arg == 1) {
            int64_t u = max_ulp(gv_tree_get_tensor(out, "1"), want_x, "dx");
            cr_log_info("%s (%s): d/dx %lld ulp", name, compiled ? "compiled" : "reference",
                        (long long)u);
            *worst_x = u > *worst_x ? u : *worst_x;
        }
        gv_tree_free(out), gv_fn_free(vg);
    }
    gv_tree_free(want_p), gv_tensor_free(want_x), gv_fn_free(f), gv_tree_free(in);
    gv_tensor_free(x), gv_tensor_free(gc.w);
}

Test(batchnorm, gradient_in_training_mode_matches_flax) {
    json_object *root = load_golden();
    int64_t worst_p = 0, worst_x = 0;
    for (int k = 0; k < NCASES; k++) {
        check_grad(golden_case(root, k), false, &worst_p, &worst_x);
        check_grad(golden_case(root, k), true, &worst_p, &worst_x);
    }
    cr_expect_eq(worst_p, 0, "d/dscale, d/dbias %lld ulp from Flax's", (long long)worst_p);
    cr_expect_leq(worst_x, MAX_ULP_DX, "d/dx %lld ulp from Flax's", (long long)worst_x);
    json_object_put(root);
}

/* ---- errors, as Flax raises them ---- */

Test(batchnorm, errors_name_the_variable) {
    gv_batchnorm_cfg cfg = gv_batchnorm_defaults();
    gv_module bn = {&gv_BatchNorm, &cfg};
    gv_tensor *x = gv_random_normal_eager(GV_PRNG_DEFAULT, gv_prng_key(3), GV_DIMS(6, 3));
    gv_tree *args = gv_args_tensors(&x, 1), *out = NULL;
    gv_tree *vars = GVT_NN(gv_init(&bn, gv_prng_key(0), args, NULL));
    /* training without mutable: Flax's ModifyScopeVariableError */
    GVT_FAILS(gv_apply_eager(&bn, vars, args, NULL, &(gv_module_options){.train = true}, &out),
              GV_ERR_ARG, "cannot update variable batch_stats/mean");
    cr_expect(strstr(gv_last_error(), "immutable"), "%s", gv_last_error());
    /* eval without the collection: not found, naming it */
    gv_tree *params_only = vars_of(gv_tree_get(vars, "params"), NULL);
    GVT_FAILS(gv_apply_eager(&bn, params_only, args, NULL, NULL, &out), GV_ERR_NOT_FOUND,
              "batch_stats/mean");
    /* training with batch_stats mutable but absent: created as in init, then updated */
    gv_module_options train = {.train = true, .mutable_collections = MUTABLE, .nmutable = 1};
    GVT_OK(gv_apply_eager(&bn, params_only, args, NULL, &train, &out));
    cr_expect(gv_tree_contains(out, "1/batch_stats/var"));
    gv_tree_free(out);
    /* a wrong shape */
    gv_tree *bad = gv_tree_clone(vars);
    gv_tensor *z = gv_tensor_zeros(GV_F32, GV_DIMS(4));
    GVT_OK(gv_tree_set_tensor(bad, "batch_stats/var", z));
    GVT_FAILS(gv_apply_eager(&bn, bad, args, NULL, NULL, &out), GV_ERR_SHAPE, "batch_stats/var");
    /* mutable without the list */
    GVT_FAILS(gv_apply_eager(&bn, vars, args, NULL, &(gv_module_options){.nmutable = 1}, &out),
              GV_ERR_ARG, "mutable_collections");
    /* eval with mutable: the collection comes back unchanged */
    GVT_OK(gv_apply_eager(&bn, vars, args, NULL,
                          &(gv_module_options){.mutable_collections = MUTABLE, .nmutable = 1}, &out));
    char first[256] = "";
    cr_expect_eq(gvt_tree_diff(gv_tree_get(out, "1/batch_stats"), gv_tree_get(vars, "batch_stats"),
                               first, sizeof first), 0, "%s", first);
    gv_tree_free(out), gv_tensor_free(z), gv_tree_free(bad), gv_tree_free(params_only);
    gv_tree_free(vars), gv_tree_free(args), gv_tensor_free(x);
}

/* ---- self.variable in general: Flax's counter example ---- */

/* count = self.variable('counter', 'count', zeros, ()); count.value += 1;
 * return x + count.value */
static gv_tree *counter_call(gv_scope *s, const void *cfg, const gv_tree *args) {
    (void)cfg;
    gv_var *count = gv_variable(s, "counter", "count", gv_init_zeros(), 0, NULL);
    gv_value x = gv_args_get(args, 0);
    if (!count || !gv_variable_set(count, gv_add_scalar(gv_variable_value(count), 1.0)))
        return NULL;
    return gv_tree_new_value_leaf(gv_add(x, gv_variable_value(count)));
}
static const gv_module_type COUNTER_TYPE = {"Counter", counter_call, NULL, 0};

Test(batchnorm, variables_written_in_init_and_apply) {
    const gv_module counter = {&COUNTER_TYPE, NULL};
    gv_tensor *x = gv_tensor_zeros(GV_F32, GV_DIMS(2));
    gv_tree *args = gv_args_tensors(&x, 1), *out = NULL;
    /* init: every collection is mutable, the written value is kept (Flax: 1) */
    gv_tree *vars = GVT_NN(gv_init(&counter, gv_prng_key(0), args, NULL));
    cr_expect_eq(gv_tensor_item(GVT_NN(gv_tree_get_tensor(vars, "counter/count"))), 1.0);
    const char *const mut[] = {"counter"};
    gv_module_options o = {.mutable_collections = mut, .nmutable = 1};
    GVT_OK(gv_apply_eager(&counter, vars, args, NULL, &o, &out));
    cr_expect_eq(gv_tensor_item(GVT_NN(gv_tree_get_tensor(out, "1/counter/count"))), 2.0);
    const float *y = gv_tensor_data_const(gv_tree_get_tensor(out, "0"));
    cr_expect(y[0] == 2.0f && y[1] == 2.0f, "the read after the write sees it");
    gv_tree_free(out);
    /* batch_stats is mutable, counter is not */
    GVT_FAILS(gv_apply_eager(&counter, vars, args, NULL,
                             &(gv_module_options){.mutable_collections = MUTABLE, .nmutable = 1},
                             &out),
              GV_ERR_ARG, "cannot update variable counter/count");
    gv_tree_free(vars), gv_tree_free(args), gv_tensor_free(x);
}

/* ---- a train step carrying batch_stats ---- */

static gv_dense_cfg D_HIDDEN, D_OUT;
static gv_batchnorm_cfg BN_CFG;
static const gv_module DENSE_HIDDEN = {&gv_Dense, &D_HIDDEN}, DENSE_OUT = {&gv_Dense, &D_OUT};
static const gv_module BN = {&gv_BatchNorm, &BN_CFG};

/* Dense(8) -> BatchNorm -> relu -> Dense(1), compact-named */
static gv_tree *net_call(gv_scope *s, const void *cfg, const gv_tree *args) {
    (void)cfg;
    gv_value h = gv_scope_call1(s, NULL, &DENSE_HIDDEN, gv_args_get(args, 0));
    h = gv_relu(gv_scope_call1(s, NULL, &BN, h));
    gv_value y = gv_scope_call1(s, NULL, &DENSE_OUT, h);
    return gv_value_ok(y) ? gv_tree_new_value_leaf(y) : NULL;
}
static const gv_module_type NET_TYPE = {"Net", net_call, NULL, 0};
static const gv_module NET = {&NET_TYPE, NULL};

typedef struct step_ctx {
    gv_transform *tx;
} step_ctx;

/* loss_fn(params, batch_stats, x, y) -> (loss, mutated batch_stats) */
static gv_tree *loss_fn(gv_graph *g, const gv_tree *in, void *ud) {
    (void)ud;
    const gv_tree *params, *stats, *out, *mutated;
    gv_value x, y, pred;
    gv_unpack(in, "(params, batch_stats, x, y)", &params, &stats, &x, &y);
    gv_module_options o = {.train = true, .mutable_collections = MUTABLE, .nmutable = 1};
    out = gv_apply(g, &NET, gv_pack(g, "{params, batch_stats}", params, stats), gv_tuple(g, x),
                   NULL, &o);
    if (gv_unpack(out, "(pred, mutated)", &pred, &mutated) != GV_OK) return NULL;
    gv_value loss = gv_mean(gv_square(gv_sub(pred, y)), NULL, 0, false);
    return gv_pack(g, "(loss, stats)", loss, gv_tree_get(mutated, "batch_stats"));
}

/* train_step(state, x, y) -> (state', loss) */
static gv_tree *train_step(gv_graph *g, const gv_tree *in, void *ud) {
    const step_ctx *c = ud;
    const gv_tree *state, *stats, *grads;
    gv_value x, y, loss;
    gv_unpack(in, "(state, x, y)", &state, &x, &y);
    gv_tree *args = gv_pack(g, "(params, batch_stats, x, y)", gv_train_state_params(state),
                            gv_train_state_batch_stats(state), x, y);
    if (gv_unpack(gv_value_and_grad_call(g, loss_fn, NULL, args, 0, true),
                  "((loss, stats), grads)", &loss, &stats, &grads) != GV_OK)
        return NULL;
    /* state.apply_gradients(grads=grads, batch_stats=updates['batch_stats']) */
    gv_tree *next = gv_train_state_replace(
        g, gv_train_state_apply_gradients(g, c->tx, state, grads), "batch_stats", stats);
    return gv_pack(g, "(state, loss)", next, loss);
}

TestSuite(batchnorm_train, .init = NULL);

static void copy_stats(const gv_tree *state, float *mean, float *var) {
    memcpy(mean, gv_tensor_data_const(gv_tree_get_tensor(state, "batch_stats/BatchNorm_0/mean")),
           8 * sizeof *mean);
    memcpy(var, gv_tensor_data_const(gv_tree_get_tensor(state, "batch_stats/BatchNorm_0/var")),
           8 * sizeof *var);
}

Test(batchnorm_train, state_carries_batch_stats_through_steps_eval_and_checkpoint) {
    D_HIDDEN = gv_dense_defaults(8);
    D_OUT = gv_dense_defaults(1);
    BN_CFG = gv_batchnorm_defaults();
    BN_CFG.momentum = 0.9;
    gv_tensor *x = gv_random_normal_eager(GV_PRNG_DEFAULT, gv_prng_key(5), GV_DIMS(32, 3));
    gv_tensor *y = gv_random_normal_eager(GV_PRNG_DEFAULT, gv_prng_key(6), GV_DIMS(32, 1));
    gv_tree *args = gv_args_tensors(&x, 1);
    gv_tree *vars = GVT_NN(gv_init(&NET, gv_prng_key(0), args, NULL));
    cr_assert(gv_tree_contains(vars, "batch_stats/BatchNorm_0/mean"));
    cr_assert(gv_tree_contains(vars, "params/BatchNorm_0/scale"));
    cr_assert(gv_tree_contains(vars, "params/Dense_1/kernel"));
    step_ctx c = {GVT_NN(gv_adamw(.learning_rate = 1e-2))};
    gv_tree *state = GVT_NN(gv_train_state_create_with_batch_stats(
        c.tx, gv_tree_get(vars, "params"), gv_tree_get(vars, "batch_stats")));
    cr_assert_not_null(gv_train_state_batch_stats(state));
    /* the state shares vars' tensors, and the donated step writes them in place */
    gv_tree *stats0 = gv_tree_copy(gv_tree_get(vars, "batch_stats"));

    /* what the first step's running averages must be: one apply with mutable */
    gv_module_options mut = {.train = true, .mutable_collections = MUTABLE, .nmutable = 1};
    gv_tree *first = NULL;
    GVT_OK(gv_apply_eager(&NET, vars, args, NULL, &mut, &first));

    gv_jit *step = GVT_NN(gv_jit_new(train_step, &c,
                                     &(gv_plan_options){.donate_argnums = GV_ARGNUMS(0)}));
    gv_tree *in = gv_pack(NULL, "(state, x, y)", state, x, y);
    gv_tensor *loss;
    GVT_OK(gv_unpack(GVT_NN(gv_jit_outputs(step, in)), "(_, loss)", &loss));
    float mean[4][8], var[4][8];
    copy_stats(state, mean[0], var[0]);
    for (int k = 1; k <= 3; k++) {
        GVT_OK(gv_jit_call(step, in, NULL));
        /* donated: the state's own tensors hold the new state */
        copy_stats(state, mean[k], var[k]);
        cr_expect(memcmp(mean[k], mean[k - 1], sizeof mean[k]) != 0, "step %d: mean unchanged", k);
        cr_expect(memcmp(var[k], var[k - 1], sizeof var[k]) != 0, "step %d: var unchanged", k);
        cr_log_info("step %d: loss %g, mean[0] %g, var[0] %g", k, gv_tensor_item(loss),
                    (double)mean[k][0], (double)var[k][0]);
        if (k == 1) {
            const float *want = gv_tensor_data_const(
                gv_tree_get_tensor(first, "1/batch_stats/BatchNorm_0/mean"));
            for (int i = 0; i < 8; i++)
                cr_expect_float_eq(mean[1][i], want[i], 1e-6f * (1 + fabsf(want[i])),
                                   "step 1 mean[%d] %g, one apply gives %g", i,
                                   (double)mean[1][i], (double)want[i]);
        }
    }
    cr_expect_eq(gv_train_state_step(state), 3);
    cr_expect_eq(gv_jit_num_compiles(step), 1);

    /* eval with use_running_average: the state's batch_stats are used */
    gv_tree *eval_vars = vars_of(gv_train_state_params(state), gv_train_state_batch_stats(state));
    gv_tree *eval_init = vars_of(gv_train_state_params(state), stats0);
    gv_tree *ye = NULL, *ye_init = NULL;
    GVT_OK(gv_apply_eager(&NET, eval_vars, args, NULL, NULL, &ye));
    GVT_OK(gv_apply_eager(&NET, eval_init, args, NULL, NULL, &ye_init));
    int64_t moved = max_ulp(gv_tree_leaf_tensor(ye), gv_tree_leaf_tensor(ye_init), "eval");
    cr_log_info("eval with the trained vs the initial running averages: %lld ulp apart",
                (long long)moved);
    cr_expect_gt(moved, 100, "the eval output depends on the running averages (%lld ulp)",
                 (long long)moved);
    /* and equals normalising by hand with them: BatchNorm as a function of its variables */
    gv_tree *ye2 = NULL;
    GVT_OK(gv_apply_eager(&NET, eval_vars, args, NULL,
                          &(gv_module_options){.mutable_collections = MUTABLE, .nmutable = 1}, &ye2));
    cr_expect_eq(max_ulp(gv_tree_leaf_tensor(ye), gv_tree_get_tensor(ye2, "0"), "eval"), 0);

    /* a checkpoint carries them */
    gvt_tmpdir_make("batchnorm");
    gv_checkpoint_manager *mngr = GVT_NN(gv_checkpoint_manager_new(gvt_tmpdir, NULL));
    GVT_OK(gv_checkpoint_manager_save(mngr, gv_train_state_step(state), (const char *[]){"state"},
                                      (const gv_tree *[]){state}, 1, NULL));
    gv_tree *target = GVT_NN(gv_eval_shape_train_state_with_batch_stats(
        c.tx, gv_train_state_params(state), gv_train_state_batch_stats(state)));
    gv_tree *restored = GVT_NN(gv_checkpoint_manager_restore(mngr, 3, "state", target));
    char diff[256] = "";
    cr_expect_eq(gvt_tree_diff(state, restored, diff, sizeof diff), 0, "%s", diff);
    cr_expect_eq(gvt_tree_diff(restored, state, diff, sizeof diff), 0, "%s", diff);
    cr_expect(gv_tree_contains(restored, "batch_stats/BatchNorm_0/var"));
    GVT_OK(gv_checkpoint_manager_close(mngr));
    gvt_tmpdir_remove();

    gv_tree_free(restored), gv_tree_free(target);
    gv_tree_free(ye2), gv_tree_free(ye), gv_tree_free(ye_init);
    gv_tree_free(eval_vars), gv_tree_free(eval_init), gv_tree_free(stats0);
    gv_tree_free(in), gv_jit_free(step), gv_tree_free(first), gv_tree_free(state);
    gv_transform_free(c.tx), gv_tree_free(vars), gv_tree_free(args);
    gv_tensor_free(x), gv_tensor_free(y);
}
