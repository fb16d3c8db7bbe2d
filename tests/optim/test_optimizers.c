/* The optimisers of grove/optimizers.h against the real optax 0.2.8
 * (tests/golden/optax_optimizers_golden.json, made by
 * tests/golden/make_optax_optimizers_golden.py): five steps of every case,
 * through the eager calls (gv_transform_init_eager / update_eager) and
 * through one compiled train step (updates, apply_updates and the new state
 * in one plan), each compared leaf by leaf with optax's updates, new params
 * and state. Bit for bit unless the case's tol_ulp allows a difference (in
 * units of the last place of the leaf's largest magnitude; the JSON's
 * tol_note says why). The state's nesting, field names and order, dtypes
 * and shapes must be optax's. Then every argument check.
 *
 * GROVE_GOLDEN_REPORT=1 prints the largest difference of every case and
 * every leaf beyond its tolerance instead of failing (to measure them). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "optim_testutil.h"

/* ---- the golden file ---- */

static json_object *golden(void) {
    static json_object *root;
    if (!root) {
        char *path = gvt_golden_path("optax_optimizers_golden.json");
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

/* The float32 words of a leaf: a list of '0x%08x' or one string of 8-digit
 * words. Returns a malloc'd array; *n its length. */
static uint32_t *words_of(json_object *v, size_t *n) {
    if (json_object_is_type(v, json_type_string)) {
        const char *s = json_object_get_string(v) + 2;
        *n = strlen(s) / 8;
        uint32_t *w = malloc((*n ? *n : 1) * sizeof *w);
        for (size_t i = 0; i < *n; i++) {
            char buf[9];
            memcpy(buf, s + 8 * i, 8), buf[8] = 0;
            w[i] = (uint32_t)strtoul(buf, NULL, 16);
        }
        return w;
    }
    *n = json_object_array_length(v);
    uint32_t *w = malloc((*n ? *n : 1) * sizeof *w);
    for (size_t i = 0; i < *n; i++)
        w[i] = (uint32_t)strtoul(json_object_get_string(json_object_array_get_idx(v, i)), NULL, 16);
    return w;
}

/* ---- inputs: the pattern of make_optax_optimizers_golden.py ---- */

static gv_tensor *leaf_tensor(json_object *spec, int k, int step, int grad_scale) {
    json_object *shp = get(spec, "shape");
    int rank = (int)json_object_array_length(shp);
    int64_t shape[8], n = 1;
    for (int d = 0; d < rank; d++) n *= shape[d] = json_object_get_int64(json_object_array_get_idx(shp, d));
    bool zeros = !strcmp(json_object_get_string(get(spec, "kind")), "zeros");
    gv_tensor *t = GVT_NN(gv_tensor_zeros(GV_F32, rank, shape));
    float *x = gv_tensor_data(t);
    for (int64_t i = 0; i < n; i++) {
        if (step < 0) /* the params */
            x[i] = zeros ? 0.0f : (float)(((7 * i + 3 * k) % 13 - 6) / 8.0);
        else if (!(zeros && step % 2 == 0))
            x[i] = (float)(((5 * i + 11 * k + 3 * step) % 17 - 8) * (step % 3 + 1) / 32.0 * grad_scale);
    }
    return t;
}

/* step -1: the params; else the grads of that step */
static gv_tree *pattern_tree(json_object *c, int step) {
    json_object *leaves = get(c, "params");
    int scale = json_object_get_int(get(c, "grad_scale"));
    gv_tree *t = gv_tree_new_dict();
    for (size_t k = 0; k < json_object_array_length(leaves); k++) {
        json_object *spec = json_object_array_get_idx(leaves, k);
        gv_tensor *x = leaf_tensor(spec, (int)k, step, scale);
        GVT_OK(gv_tree_insert_tensor(t, json_object_get_string(get(spec, "path")), x));
        gv_tensor_free(x);
    }
    return t;
}

static gv_tree *initial_params(json_object *c) {
    gv_tree *p = pattern_tree(c, -1);
    if (!json_object_get_boolean(get(c, "lookahead"))) return p;
    gv_tree *pair = GVT_NN(gv_lookahead_params_init_synced(p));
    gv_tree_free(p);
    return pair;
}

/* the case's mask as labels {"b": "false", ...}, or NULL */
static gv_tree *mask_of(json_object *c) {
    json_object *m = get(c, "mask");
    if (!m || json_object_is_type(m, json_type_null)) return NULL;
    gv_tree *t = gv_tree_new_dict();
    json_object_object_foreach(m, key, val)
        GVT_OK(gv_tree_insert(t, key, gv_tree_new_label(json_object_get_boolean(val) ? "true" : "false")));
    return t;
}

/* ---- the optimisers, as the golden script's calls ---- */

typedef gv_transform *(*make_fn)(const gv_tree *mask);

static gv_transform *m_rmsprop(const gv_tree *m) { return gv_rmsprop(.learning_rate = 0.01); }
static gv_transform *m_rmsprop_cmn(const gv_tree *m) {
    return gv_rmsprop(.learning_rate = 0.01, .centered = true, .momentum = 0.9, .nesterov = true);
}
static gv_transform *m_rmsprop_bc(const gv_tree *m) {
    return gv_rmsprop(.learning_rate = 0.01, .decay = 0.95, .eps = 1e-6, .initial_scale = 0.1,
                      .eps_in_sqrt = false, .momentum = 0.5, .bias_correction = true);
}
static gv_transform *m_rmsprop_cbc(const gv_tree *m) {
    return gv_rmsprop(.learning_rate = 0.02, .initial_scale = 0.5, .eps_in_sqrt = false,
                      .centered = true, .bias_correction = true);
}
static gv_transform *m_rmsprop_sched(const gv_tree *m) {
    return gv_rmsprop(.schedule = gv_linear_schedule(0.1, 0.01, 4, 0), .momentum = 0.9);
}
static gv_transform *m_adagrad(const gv_tree *m) { return gv_adagrad(.learning_rate = 0.1); }
static gv_transform *m_adagrad_zero(const gv_tree *m) {
    return gv_adagrad(.learning_rate = 0.05, .initial_accumulator_value = 0.0, .eps = 1e-6);
}
static gv_transform *m_adafactor(const gv_tree *m) { return gv_adafactor(); }
static gv_transform *m_adafactor_small(const gv_tree *m) {
    return gv_adafactor(.learning_rate = 0.01, .min_dim_size_to_factor = 3, .decay_rate = 0.7,
                        .decay_offset = -3, .clipping_threshold = 0.5, .momentum = 0.9,
                        .weight_decay_rate = 1e-3, .weight_decay_mask = m);
}
static gv_transform *m_adafactor_unf(const gv_tree *m) {
    return gv_adafactor(.schedule = gv_linear_schedule(0.1, 0.01, 4, 0),
                        .multiply_by_parameter_scale = false, .clipping_threshold = GV_NONE,
                        .eps = 1e-20, .factored = false);
}
static gv_transform *m_lion(const gv_tree *m) { return gv_lion(.learning_rate = 0.001); }
static gv_transform *m_lion_masked(const gv_tree *m) {
    return gv_lion(.learning_rate = 0.01, .b1 = 0.8, .b2 = 0.95, .weight_decay = 0.1, .mask = m);
}
static gv_transform *m_lion_smooth(const gv_tree *m) {
    return gv_scale_by_lion(.b1 = 0.5, .mode = GV_LION_SMOOTH, .smooth_beta = 2.0);
}
static gv_transform *m_lion_refined(const gv_tree *m) {
    return gv_scale_by_lion(.b1 = 0.5, .mode = GV_LION_REFINED);
}
static gv_transform *m_lamb(const gv_tree *m) { return gv_lamb(.learning_rate = 0.01); }
static gv_transform *m_lamb_masked(const gv_tree *m) {
    return gv_lamb(.learning_rate = 0.01, .b1 = 0.8, .eps = 1e-4, .eps_root = 1e-8,
                   .weight_decay = 0.01, .mask = m);
}
static gv_transform *m_trust(const gv_tree *m) {
    return gv_scale_by_trust_ratio(.min_norm = 0.5, .trust_coefficient = 0.9, .eps = 1e-3);
}
static gv_transform *m_adabelief(const gv_tree *m) { return gv_adabelief(.learning_rate = 0.01); }
static gv_transform *m_adabelief_n(const gv_tree *m) {
    return gv_adabelief(.learning_rate = 0.01, .b1 = 0.8, .b2 = 0.99, .eps = 1e-8,
                        .eps_root = 1e-12, .nesterov = true);
}
static gv_transform *m_adamax(const gv_tree *m) { return gv_adamax(.learning_rate = 0.01); }
static gv_transform *m_adamax_c(const gv_tree *m) {
    return gv_adamax(.learning_rate = 0.02, .b1 = 0.8, .b2 = 0.99, .eps = 1e-4);
}
static gv_transform *m_sgd_sched(const gv_tree *m) {
    return gv_sgd(.schedule = gv_linear_schedule(0.1, 0.01, 4, 0), .momentum = 0.9,
                  .nesterov = true);
}
static gv_transform *m_la_adam(const gv_tree *m) {
    return gv_lookahead(gv_adam(.learning_rate = 0.01), 2, 0.5, false);
}
static gv_transform *m_la_sgd(const gv_tree *m) {
    return gv_lookahead(gv_sgd(.learning_rate = 0.1, .momentum = 0.9), 3, 0.3, true);
}

static const struct {
    const char *name;
    make_fn make;
} MAKERS[] = {
    {"rmsprop", m_rmsprop},
    {"rmsprop_centered_momentum_nesterov", m_rmsprop_cmn},
    {"rmsprop_bias_correction", m_rmsprop_bc},
    {"rmsprop_centered_bias_correction", m_rmsprop_cbc},
    {"rmsprop_schedule", m_rmsprop_sched},
    {"adagrad", m_adagrad},
    {"adagrad_zero_init", m_adagrad_zero},
    {"adafactor", m_adafactor},
    {"adafactor_small_factored", m_adafactor_small},
    {"adafactor_unfactored_schedule", m_adafactor_unf},
    {"lion", m_lion},
    {"lion_masked", m_lion_masked},
    {"scale_by_lion_smooth", m_lion_smooth},
    {"scale_by_lion_refined", m_lion_refined},
    {"lamb", m_lamb},
    {"lamb_masked", m_lamb_masked},
    {"scale_by_trust_ratio", m_trust},
    {"adabelief", m_adabelief},
    {"adabelief_nesterov", m_adabelief_n},
    {"adamax", m_adamax},
    {"adamax_custom", m_adamax_c},
    {"sgd_schedule", m_sgd_sched},
    {"lookahead_adam", m_la_adam},
    {"lookahead_sgd_reset", m_la_sgd},
};
enum { NMAKERS = sizeof MAKERS / sizeof MAKERS[0] };

/* ---- comparisons ---- */

/* |a - b| in units of the last place of the leaf's largest magnitude
 * (make_optax_optimizers_golden.py's ulp_diff); 0 only if bit-equal. */
static double leaf_ulps(const float *got, const uint32_t *want, size_t n) {
    float scale = 0;
    bool same = true;
    for (size_t i = 0; i < n; i++) {
        float w;
        memcpy(&w, &want[i], 4);
        if (fabsf(w) > scale) scale = fabsf(w);
        same &= memcmp(&got[i], &want[i], 4) == 0;
    }
    if (same) return 0;
    double ulp = scale > 0 ? nextafterf(scale, INFINITY) - scale : 0x1p-149, worst = 1e-9;
    for (size_t i = 0; i < n; i++) {
        float w;
        memcpy(&w, &want[i], 4);
        if (!isfinite(got[i]) || !isfinite(w)) {
            if (memcmp(&got[i], &want[i], 4)) return INFINITY;
            continue;
        }
        double d = fabs((double)got[i] - w) / ulp;
        if (d > worst) worst = d;
    }
    return worst;
}

typedef struct report {
    double worst[3]; /* updates, params, state */
} report;

static const char *const KINDS[3] = {"updates", "params", "state"};

/* got's leaves (by path) against want {path: words or int}; the leaf sets
 * must be the same */
static void expect_leaves(const gv_tree *got, json_object *want, int kind, int tol,
                          const char *what, report *r) {
    char **paths;
    size_t np;
    GVT_OK(gv_tree_leaf_paths(got, &paths, &np));
    cr_assert_eq(np, (size_t)json_object_object_length(want), "%s: %zu leaves, optax has %d", what,
                 np, json_object_object_length(want));
    for (size_t i = 0; i < np; i++) {
        json_object *w = NULL;
        cr_assert(json_object_object_get_ex(want, paths[i], &w), "%s: leaf %s is not optax's",
                  what, paths[i]);
        gv_tensor *t = gv_tree_get_tensor(got, paths[i]);
        if (json_object_is_type(w, json_type_int)) {
            cr_assert_eq(gv_tensor_dtype(t), GV_I32, "%s: %s is %s, not int32", what, paths[i],
                         gv_dtype_name(gv_tensor_dtype(t)));
            double v;
            GVT_OK(gv_tensor_get_flat(t, 0, &v));
            cr_assert_eq((int64_t)v, json_object_get_int64(w), "%s: %s = %g, optax %lld", what,
                         paths[i], v, (long long)json_object_get_int64(w));
            continue;
        }
        size_t n;
        uint32_t *ww = words_of(w, &n);
        cr_assert_eq(gv_tensor_dtype(t), GV_F32, "%s: %s dtype", what, paths[i]);
        cr_assert_eq((size_t)gv_tensor_size(t), n, "%s: %s has %lld elements, optax %zu", what,
                     paths[i], (long long)gv_tensor_size(t), n);
        const float *x = gv_tensor_data_const(t);
        double d = leaf_ulps(x, ww, n);
        if (d > r->worst[kind]) r->worst[kind] = d;
        if (d > tol) { /* name the first element that is off */
            size_t j = 0;
            while (j < n && !memcmp(&x[j], &ww[j], 4)) j++;
            float wj;
            memcpy(&wj, &ww[j < n ? j : 0], 4);
            uint32_t xj = 0;
            if (j < n) memcpy(&xj, &x[j], 4);
            char msg[512];
            snprintf(msg, sizeof msg,
                     "%s: %s differs from optax by %.3g ulp of the leaf (allowed %d): first at "
                     "[%zu]: %.9g (0x%08x) vs %.9g (0x%08x)",
                     what, paths[i], d, tol, j, x[j < n ? j : 0], xj, wj, j < n ? ww[j] : 0);
            if (getenv("GROVE_GOLDEN_REPORT")) fprintf(stderr, "  %s\n", msg); /* measuring */
            else cr_assert_fail("%s", msg);
        }
        free(ww);
    }
    gv_tree_paths_free(paths, np);
}

/* grove's tree against optax's structure ({fields} dict, [tuple], "dtype[shape]") */
static void expect_structure(const gv_tree *t, json_object *want, const char *where) {
    char sub[512];
    if (json_object_is_type(want, json_type_object)) {
        cr_assert_eq(gv_tree_kind_of(t), GV_TREE_DICT, "%s: a %s, optax has a NamedTuple/dict",
                     where, gv_tree_kind_name(gv_tree_kind_of(t)));
        cr_assert_eq(gv_tree_num_children(t), (size_t)json_object_object_length(want),
                     "%s: %zu fields, optax %d", where, gv_tree_num_children(t),
                     json_object_object_length(want));
        size_t i = 0;
        json_object_object_foreach(want, key, val) {
            cr_assert_str_eq(gv_tree_key(t, i), key, "%s: field %zu is '%s', optax '%s'", where, i,
                             gv_tree_key(t, i), key);
            snprintf(sub, sizeof sub, "%s/%s", where, key);
            expect_structure(gv_tree_child(t, i++), val, sub);
        }
    } else if (json_object_is_type(want, json_type_array)) {
        cr_assert_eq(gv_tree_kind_of(t), GV_TREE_TUPLE, "%s: a %s, optax has a tuple", where,
                     gv_tree_kind_name(gv_tree_kind_of(t)));
        size_t n = json_object_array_length(want);
        cr_assert_eq(gv_tree_num_children(t), n, "%s: %zu elements, optax %zu", where,
                     gv_tree_num_children(t), n);
        for (size_t i = 0; i < n; i++) {
            snprintf(sub, sizeof sub, "%s/%zu", where, i);
            expect_structure(gv_tree_child(t, i), json_object_array_get_idx(want, i), sub);
        }
    } else {
        cr_assert(gv_tree_is_leaf(t) && gv_tree_leaf_kind(t) == GV_LEAF_TENSOR, "%s: not a leaf",
                  where);
        gv_tensor *x = gv_tree_leaf_tensor(t);
        char got[256];
        int k = snprintf(got, sizeof got, "%s[", gv_dtype_name(gv_tensor_dtype(x)));
        for (int d = 0; d < gv_tensor_rank(x); d++)
            k += snprintf(got + k, sizeof got - k, "%s%lld", d ? "," : "",
                          (long long)gv_tensor_shape(x)[d]);
        snprintf(got + k, sizeof got - k, "]");
        cr_assert_str_eq(got, json_object_get_string(want), "%s: %s, optax %s", where, got,
                         json_object_get_string(want));
    }
}

/* ---- running a case ---- */

/* (params, state, grads) -> (updates, apply_updates(params, updates), state) */
static gv_tree *train_step(gv_graph *g, const gv_tree *in, void *ud) {
    const gv_tree *params = gv_tree_child(in, 0);
    gv_tree *u, *s;
    if (gv_transform_update(ud, g, gv_tree_child(in, 2), gv_tree_child(in, 1), params, &u, &s) !=
        GV_OK)
        return NULL;
    gv_tree *out = gv_tree_new_tuple();
    gv_tree_append(out, gv_tree_clone(u));
    gv_tree_append(out, gv_apply_updates(g, params, u));
    gv_tree_append(out, s);
    gv_tree_free(u);
    return out;
}

static gv_tree *triple(const gv_tree *a, const gv_tree *b, const gv_tree *c) {
    gv_tree *t = gv_tree_new_tuple();
    gv_tree_append(t, gv_tree_clone(a));
    gv_tree_append(t, gv_tree_clone(b));
    gv_tree_append(t, gv_tree_clone(c));
    return t;
}

static void expect_step(json_object *want, const gv_tree *u, const gv_tree *p, const gv_tree *s,
                        json_object *tol, const char *how, const char *name, int step,
                        report *r) {
    const gv_tree *got[3] = {u, p, s};
    for (int k = 0; k < 3; k++) {
        char what[160];
        snprintf(what, sizeof what, "%s %s step %d %s", name, how, step + 1, KINDS[k]);
        expect_leaves(got[k], get(want, KINDS[k]), k, json_object_get_int(get(tol, KINDS[k])),
                      what, r);
    }
}

static void run_case(const char *name, make_fn make) {
    json_object *c = find_case(name), *steps = get(c, "steps"), *tol = get(c, "tol_ulp");
    gv_tree *mask = mask_of(c);
    gv_transform *tx = GVT_NN(make(mask));
    gv_tree_free(mask); /* copied */
    report eager = {{0}}, compiled = {{0}};

    /* eager: init, then update + apply_updates per step */
    gv_tree *params = initial_params(c);
    gv_tree *state = GVT_NN(gv_transform_init_eager(tx, params));
    expect_structure(state, get(c, "state_structure"), name);
    expect_leaves(state, get(c, "init"), 2, 0, "init", &eager);
    for (int k = 0; k < (int)json_object_array_length(steps); k++) {
        gv_tree *grads = pattern_tree(c, k), *u, *s;
        GVT_OK(gv_transform_update_eager(tx, grads, state, params, &u, &s));
        gv_tree *np = GVT_NN(gv_apply_updates_eager(params, u));
        if (k == 0) expect_structure(u, get(c, "update_structure"), "updates");
        expect_structure(s, get(c, "state_structure"), name);
        expect_step(json_object_array_get_idx(steps, k), u, np, s, tol, "eager", name, k, &eager);
        gv_tree_free(grads), gv_tree_free(u), gv_tree_free(params), gv_tree_free(state);
        params = np, state = s;
    }
    gv_tree_free(params), gv_tree_free(state);

    /* one compiled train step, run five times */
    params = initial_params(c);
    state = GVT_NN(gv_transform_init_eager(tx, params));
    gv_tree *g0 = pattern_tree(c, 0), *in = triple(params, state, g0);
    gv_fn *fn = GVT_NN(gv_trace(train_step, tx, in));
    gv_plan *plan = GVT_NN(gv_plan_compile(fn, NULL));
    gv_tree *out = GVT_NN(gv_plan_new_outputs(plan));
    gv_tree_free(in), gv_tree_free(g0);
    for (int k = 0; k < (int)json_object_array_length(steps); k++) {
        gv_tree *grads = pattern_tree(c, k);
        in = triple(params, state, grads);
        GVT_OK(gv_plan_run(plan, in, out));
        expect_step(json_object_array_get_idx(steps, k), gv_tree_child(out, 0),
                    gv_tree_child(out, 1), gv_tree_child(out, 2), tol, "compiled", name, k,
                    &compiled);
        gv_tree_free(in), gv_tree_free(grads), gv_tree_free(params), gv_tree_free(state);
        params = GVT_NN(gv_tree_copy(gv_tree_child(out, 1)));
        state = GVT_NN(gv_tree_copy(gv_tree_child(out, 2)));
    }
    gv_tree_free(out), gv_tree_free(params), gv_tree_free(state);
    gv_plan_free(plan), gv_fn_free(fn);
    gv_transform_free(tx);
    if (getenv("GROVE_GOLDEN_REPORT"))
        fprintf(stderr, "%-36s eager %.3g %.3g %.3g  compiled %.3g %.3g %.3g (ulp of the leaf)\n",
                name, eager.worst[0], eager.worst[1], eager.worst[2], compiled.worst[0],
                compiled.worst[1], compiled.worst[2]);
}

/* one test per case, named like it */
#define GOLDEN(case_name, i)                                                            \
    Test(optax_golden, case_name) {                                                     \
        cr_assert_str_eq(MAKERS[i].name, #case_name);                                   \
        run_case(MAKERS[i].name, MAKERS[i].make);                                       \
    }
GOLDEN(rmsprop, 0)
GOLDEN(rmsprop_centered_momentum_nesterov, 1)
GOLDEN(rmsprop_bias_correction, 2)
GOLDEN(rmsprop_centered_bias_correction, 3)
GOLDEN(rmsprop_schedule, 4)
GOLDEN(adagrad, 5)
GOLDEN(adagrad_zero_init, 6)
GOLDEN(adafactor, 7)
GOLDEN(adafactor_small_factored, 8)
GOLDEN(adafactor_unfactored_schedule, 9)
GOLDEN(lion, 10)
GOLDEN(lion_masked, 11)
GOLDEN(scale_by_lion_smooth, 12)
GOLDEN(scale_by_lion_refined, 13)
GOLDEN(lamb, 14)
GOLDEN(lamb_masked, 15)
GOLDEN(scale_by_trust_ratio, 16)
GOLDEN(adabelief, 17)
GOLDEN(adabelief_nesterov, 18)
GOLDEN(adamax, 19)
GOLDEN(adamax_custom, 20)
GOLDEN(sgd_schedule, 21)
GOLDEN(lookahead_adam, 22)
GOLDEN(lookahead_sgd_reset, 23)

/* every golden case has a maker and every maker a case */
Test(optax_golden, cases_and_makers_match) {
    json_object *cases = get(golden(), "cases");
    cr_assert_eq(json_object_array_length(cases), (size_t)NMAKERS);
    for (size_t i = 0; i < NMAKERS; i++)
        cr_assert_str_eq(json_object_get_string(get(json_object_array_get_idx(cases, i), "name")),
                         MAKERS[i].name);
}

/* ---- argument checks ---- */

static gv_schedule *sched(void) { return GVT_NN(gv_linear_schedule(0.1, 0.01, 4, 0)); }

/* Each alias: no rate, a bad rate, both rate and schedule, and a bad
 * option given with a schedule (taken over also then: ASan's leak check
 * sees it). */
Test(optimizers, learning_rate_checks) {
    GVT_NULL(gv_rmsprop(.decay = 0.9), GV_ERR_ARG, "rmsprop: no learning rate");
    GVT_NULL(gv_rmsprop(.learning_rate = -0.1), GV_ERR_ARG, "rmsprop: .learning_rate is -0.1");
    GVT_NULL(gv_rmsprop(.learning_rate = INFINITY), GV_ERR_ARG, "must be finite and >= 0");
    GVT_NULL(gv_rmsprop(.learning_rate = 0.1, .schedule = sched()), GV_ERR_ARG,
             "rmsprop: both .learning_rate and .schedule");
    GVT_NULL(gv_adagrad(.eps = 1e-7), GV_ERR_ARG, "adagrad: no learning rate");
    GVT_NULL(gv_adagrad(.learning_rate = -1), GV_ERR_ARG, "adagrad: .learning_rate is -1");
    GVT_NULL(gv_lion(.learning_rate = -INFINITY), GV_ERR_ARG, "lion: .learning_rate is -inf");
    GVT_NULL(gv_lion(.b1 = 0.9), GV_ERR_ARG, "lion: no learning rate");
    GVT_NULL(gv_lamb(.learning_rate = 1, .schedule = sched()), GV_ERR_ARG, "lamb: both");
    GVT_NULL(gv_lamb(.b1 = 0.9), GV_ERR_ARG, "lamb: no learning rate");
    GVT_NULL(gv_adabelief(.learning_rate = -2), GV_ERR_ARG, "adabelief: .learning_rate is -2");
    GVT_NULL(gv_adabelief(.b1 = 0.9), GV_ERR_ARG, "adabelief: no learning rate");
    GVT_NULL(gv_adamax(.learning_rate = 1, .schedule = sched()), GV_ERR_ARG, "adamax: both");
    GVT_NULL(gv_adamax(.b1 = 0.9), GV_ERR_ARG, "adamax: no learning rate");
    /* adafactor's rate is optional; the other checks still hold */
    gv_transform_free(GVT_NN(gv_adafactor()));
    gv_transform_free(GVT_NN(gv_adafactor(.schedule = sched())));
    GVT_NULL(gv_adafactor(.learning_rate = -0.5), GV_ERR_ARG, "adafactor: .learning_rate is -0.5");
    GVT_NULL(gv_adafactor(.learning_rate = 0.5, .schedule = sched()), GV_ERR_ARG, "adafactor: both");
    /* a rate of 0 with a schedule is the zero-filled opts' rate: the schedule wins */
    gv_rmsprop_opts r = gv_rmsprop_defaults();
    r.learning_rate = 0, r.schedule = sched();
    gv_transform_free(GVT_NN(gv_rmsprop_with(&r)));
    /* a bad option with a schedule: refused, the schedule freed */
    GVT_NULL(gv_rmsprop(.schedule = sched(), .decay = 2), GV_ERR_ARG, "rmsprop: .decay is 2");
    GVT_NULL(gv_adagrad(.schedule = sched(), .eps = -1), GV_ERR_ARG, "adagrad: .eps is -1");
    GVT_NULL(gv_adafactor(.schedule = sched(), .momentum = 2), GV_ERR_ARG,
             "adafactor: .momentum is 2");
    GVT_NULL(gv_adafactor(.schedule = sched(), .min_dim_size_to_factor = -1), GV_ERR_ARG,
             "adafactor: .min_dim_size_to_factor is -1");
    GVT_NULL(gv_lion(.schedule = sched(), .b2 = -0.5), GV_ERR_ARG, "lion: .b2 is -0.5");
    GVT_NULL(gv_lamb(.schedule = sched(), .weight_decay = -1), GV_ERR_ARG,
             "lamb: .weight_decay is -1");
    GVT_NULL(gv_adabelief(.schedule = sched(), .eps_root = -1), GV_ERR_ARG,
             "adabelief: .eps_root is -1");
    GVT_NULL(gv_adamax(.schedule = sched(), .b1 = 1.5), GV_ERR_ARG, "adamax: .b1 is 1.5");
    /* NULL options */
    GVT_NULL(gv_rmsprop_with(NULL), GV_ERR_ARG, "rmsprop: opts is NULL");
    GVT_NULL(gv_adagrad_with(NULL), GV_ERR_ARG, "adagrad: opts is NULL");
    GVT_NULL(gv_adafactor_with(NULL), GV_ERR_ARG, "adafactor: opts is NULL");
    GVT_NULL(gv_lion_with(NULL), GV_ERR_ARG, "lion: opts is NULL");
    GVT_NULL(gv_lamb_with(NULL), GV_ERR_ARG, "lamb: opts is NULL");
    GVT_NULL(gv_adabelief_with(NULL), GV_ERR_ARG, "adabelief: opts is NULL");
    GVT_NULL(gv_adamax_with(NULL), GV_ERR_ARG, "adamax: opts is NULL");
}

Test(optimizers, option_checks) {
    /* rmsprop: a decay and the momentum in [0, 1]; eps, initial_scale >= 0 */
    GVT_NULL(gv_rmsprop(.learning_rate = 1, .decay = 1.5), GV_ERR_ARG,
             "rmsprop: .decay is 1.5; it must be in [0, 1]");
    GVT_NULL(gv_rmsprop(.learning_rate = 1, .decay = -0.1), GV_ERR_ARG, ".decay is -0.1");
    GVT_NULL(gv_rmsprop(.learning_rate = 1, .decay = NAN), GV_ERR_ARG, ".decay is nan");
    GVT_NULL(gv_rmsprop(.learning_rate = 1, .eps = -1e-8), GV_ERR_ARG,
             "rmsprop: .eps is -1e-08; it must be finite and >= 0");
    GVT_NULL(gv_rmsprop(.learning_rate = 1, .eps = INFINITY), GV_ERR_ARG, ".eps is inf");
    GVT_NULL(gv_rmsprop(.learning_rate = 1, .initial_scale = -1), GV_ERR_ARG,
             "rmsprop: .initial_scale is -1");
    GVT_NULL(gv_rmsprop(.learning_rate = 1, .momentum = 1.5), GV_ERR_ARG,
             "rmsprop: .momentum is 1.5");
    GVT_NULL(gv_rmsprop(.learning_rate = 1, .momentum = -INFINITY), GV_ERR_ARG, ".momentum is -inf");
    /* adagrad */
    GVT_NULL(gv_adagrad(.learning_rate = 1, .initial_accumulator_value = -0.1), GV_ERR_ARG,
             "adagrad: .initial_accumulator_value is -0.1");
    GVT_NULL(gv_adagrad(.learning_rate = 1, .eps = NAN), GV_ERR_ARG, "adagrad: .eps is nan");
    /* adafactor */
    GVT_NULL(gv_adafactor(.decay_rate = -0.8), GV_ERR_ARG, "adafactor: .decay_rate is -0.8");
    GVT_NULL(gv_adafactor(.eps = -1), GV_ERR_ARG, "adafactor: .eps is -1");
    GVT_NULL(gv_adafactor(.clipping_threshold = 0), GV_ERR_ARG,
             "adafactor: .clipping_threshold is 0; it must be finite and > 0");
    GVT_NULL(gv_adafactor(.clipping_threshold = INFINITY), GV_ERR_ARG, ".clipping_threshold is inf");
    GVT_NULL(gv_adafactor(.momentum = -0.1), GV_ERR_ARG, "adafactor: .momentum is -0.1");
    GVT_NULL(gv_adafactor(.weight_decay_rate = -1e-3), GV_ERR_ARG,
             "adafactor: .weight_decay_rate is -0.001");
    GVT_NULL(gv_adafactor(.min_dim_size_to_factor = -2), GV_ERR_ARG,
             "adafactor: .min_dim_size_to_factor is -2");
    /* lion, lamb, adabelief, adamax: b1, b2 in [0, 1]; eps, eps_root, decay >= 0 */
    GVT_NULL(gv_lion(.learning_rate = 1, .b1 = 1.1), GV_ERR_ARG, "lion: .b1 is 1.1");
    GVT_NULL(gv_lion(.learning_rate = 1, .b2 = NAN), GV_ERR_ARG, "lion: .b2 is nan");
    GVT_NULL(gv_lion(.learning_rate = 1, .weight_decay = INFINITY), GV_ERR_ARG,
             "lion: .weight_decay is inf");
    GVT_NULL(gv_lamb(.learning_rate = 1, .b2 = 2), GV_ERR_ARG, "lamb: .b2 is 2");
    GVT_NULL(gv_lamb(.learning_rate = 1, .eps = -1), GV_ERR_ARG, "lamb: .eps is -1");
    GVT_NULL(gv_lamb(.learning_rate = 1, .eps_root = INFINITY), GV_ERR_ARG, "lamb: .eps_root is inf");
    GVT_NULL(gv_adabelief(.learning_rate = 1, .b1 = -1), GV_ERR_ARG, "adabelief: .b1 is -1");
    GVT_NULL(gv_adabelief(.learning_rate = 1, .eps = -1e-16), GV_ERR_ARG, "adabelief: .eps is -1e-16");
    GVT_NULL(gv_adamax(.learning_rate = 1, .b2 = 1.01), GV_ERR_ARG, "adamax: .b2 is 1.01");
    GVT_NULL(gv_adamax(.learning_rate = 1, .eps = NAN), GV_ERR_ARG, "adamax: .eps is nan");
    /* the edges are allowed */
    gv_transform_free(GVT_NN(gv_rmsprop(.learning_rate = 0, .decay = 1, .momentum = 0, .eps = 0)));
    gv_transform_free(GVT_NN(gv_lion(.learning_rate = 1, .b1 = 0, .b2 = 1, .weight_decay = 0)));
}

Test(optimizers, primitive_checks) {
    GVT_NULL(gv_scale_by_rms(.decay = 2), GV_ERR_ARG, "scale_by_rms: .decay is 2");
    GVT_NULL(gv_scale_by_rms(.initial_scale = NAN), GV_ERR_ARG, "scale_by_rms: .initial_scale is nan");
    GVT_NULL(gv_scale_by_stddev(.eps = -1), GV_ERR_ARG, "scale_by_stddev: .eps is -1");
    GVT_NULL(gv_scale_by_rss(.initial_accumulator_value = -1), GV_ERR_ARG,
             "scale_by_rss: .initial_accumulator_value is -1");
    GVT_NULL(gv_scale_by_factored_rms(.decay_rate = INFINITY), GV_ERR_ARG,
             "scale_by_factored_rms: .decay_rate is inf");
    GVT_NULL(gv_scale_by_factored_rms(.epsilon = -1), GV_ERR_ARG,
             "scale_by_factored_rms: .epsilon is -1");
    GVT_NULL(gv_scale_by_factored_rms(.min_dim_size_to_factor = -1), GV_ERR_ARG,
             "scale_by_factored_rms: .min_dim_size_to_factor is -1");
    GVT_NULL(gv_clip_by_block_rms(0), GV_ERR_ARG, "clip_by_block_rms: .threshold is 0");
    GVT_NULL(gv_clip_by_block_rms(NAN), GV_ERR_ARG, "clip_by_block_rms: .threshold is nan");
    GVT_NULL(gv_scale_by_param_block_rms(-1e-3), GV_ERR_ARG,
             "scale_by_param_block_rms: .min_scale is -0.001");
    GVT_NULL(gv_scale_by_lion(.b1 = 2), GV_ERR_ARG, "scale_by_lion: .b1 is 2");
    GVT_NULL(gv_scale_by_lion(.mode = (gv_lion_mode)7), GV_ERR_ARG, "scale_by_lion: .mode is 7");
    GVT_NULL(gv_scale_by_lion(.smooth_beta = INFINITY), GV_ERR_ARG,
             "scale_by_lion: .smooth_beta is inf");
    GVT_NULL(gv_scale_by_trust_ratio(.min_norm = -1), GV_ERR_ARG,
             "scale_by_trust_ratio: .min_norm is -1");
    GVT_NULL(gv_scale_by_trust_ratio(.trust_coefficient = NAN), GV_ERR_ARG,
             "scale_by_trust_ratio: .trust_coefficient is nan");
    GVT_NULL(gv_scale_by_trust_ratio(.eps = -1), GV_ERR_ARG, "scale_by_trust_ratio: .eps is -1");
    GVT_NULL(gv_scale_by_belief(.b2 = 1.5), GV_ERR_ARG, "scale_by_belief: .b2 is 1.5");
    GVT_NULL(gv_scale_by_belief(.eps_root = -1), GV_ERR_ARG, "scale_by_belief: .eps_root is -1");
    GVT_NULL(gv_scale_by_adamax(.eps = NAN), GV_ERR_ARG, "scale_by_adamax: .eps is nan");
    GVT_NULL(gv_scale_by_rms_with(NULL), GV_ERR_ARG, "scale_by_rms: opts is NULL");
    GVT_NULL(gv_scale_by_stddev_with(NULL), GV_ERR_ARG, "scale_by_stddev: opts is NULL");
    GVT_NULL(gv_scale_by_rss_with(NULL), GV_ERR_ARG, "scale_by_rss: opts is NULL");
    GVT_NULL(gv_scale_by_factored_rms_with(NULL), GV_ERR_ARG, "scale_by_factored_rms: opts is NULL");
    GVT_NULL(gv_scale_by_lion_with(NULL), GV_ERR_ARG, "scale_by_lion: opts is NULL");
    GVT_NULL(gv_scale_by_trust_ratio_with(NULL), GV_ERR_ARG, "scale_by_trust_ratio: opts is NULL");
    GVT_NULL(gv_scale_by_belief_with(NULL), GV_ERR_ARG, "scale_by_belief: opts is NULL");
    GVT_NULL(gv_scale_by_adamax_with(NULL), GV_ERR_ARG, "scale_by_adamax: opts is NULL");
    /* lookahead takes over the fast optimiser, also when it refuses */
    GVT_NULL(gv_lookahead(NULL, 2, 0.5, false), GV_ERR_ARG, "lookahead: fast_optimizer is NULL");
    GVT_NULL(gv_lookahead(gv_adam(.learning_rate = 0.1), 0, 0.5, false), GV_ERR_ARG,
             "lookahead: sync_period is 0; it must be >= 1");
    GVT_NULL(gv_lookahead(gv_adam(.learning_rate = 0.1), 2, 1.5, false), GV_ERR_ARG,
             "lookahead: slow_step_size is 1.5; it must be in [0, 1]");
    GVT_NULL(gv_lookahead_params_init_synced(NULL), GV_ERR_ARG, "params is NULL");
}

/* The defaults are optax's (spot checks of the struct forms). */
Test(optimizers, defaults) {
    gv_rmsprop_opts r = gv_rmsprop_defaults();
    cr_assert(r.decay == 0.9 && r.eps == 1e-8 && r.initial_scale == 0 && r.eps_in_sqrt &&
              !r.centered && isnan(r.momentum) && !r.nesterov && !r.bias_correction &&
              isnan(r.learning_rate) && !r.schedule);
    gv_adafactor_opts a = gv_adafactor_defaults();
    cr_assert(a.min_dim_size_to_factor == 128 && a.decay_rate == 0.8 && a.decay_offset == 0 &&
              a.multiply_by_parameter_scale && a.clipping_threshold == 1.0 && isnan(a.momentum) &&
              isnan(a.weight_decay_rate) && a.eps == 1e-30 && a.factored &&
              !a.weight_decay_mask && isnan(a.learning_rate));
    cr_assert(gv_lion_defaults().weight_decay == 1e-3 && gv_lion_defaults().b2 == 0.99);
    cr_assert(gv_lamb_defaults().eps == 1e-6 && gv_lamb_defaults().weight_decay == 0);
    cr_assert(gv_adabelief_defaults().eps == 1e-16 && gv_adabelief_defaults().eps_root == 1e-16);
    cr_assert(gv_adagrad_defaults().initial_accumulator_value == 0.1 &&
              gv_adagrad_defaults().eps == 1e-7);
    cr_assert(gv_adamax_defaults().eps == 1e-8);
    cr_assert(gv_scale_by_lion_defaults().mode == GV_LION_HARD &&
              gv_scale_by_lion_defaults().smooth_beta == 1.0);
    cr_assert(gv_scale_by_trust_ratio_defaults().trust_coefficient == 1.0);
    cr_assert(gv_scale_by_factored_rms_defaults().epsilon == 1e-30);
    const char *names[] = {"rmsprop", "adafactor", "lookahead"};
    gv_transform *txs[] = {GVT_NN(gv_rmsprop(.learning_rate = 1)), GVT_NN(gv_adafactor()),
                           GVT_NN(gv_lookahead(gv_sgd(.learning_rate = 1), 1, 1, false))};
    for (int i = 0; i < 3; i++) {
        cr_assert_str_eq(gv_transform_name(txs[i]), names[i]);
        gv_transform_free(txs[i]);
    }
}

/* ---- errors while updating ---- */

static gv_tree *small_params(void) {
    const float x[3] = {1, -2, 0.5f};
    return ot_leaf(x, 3);
}

/* the transformations that need params say so when given none */
Test(optimizers, params_required) {
    gv_transform *txs[] = {GVT_NN(gv_adafactor()), GVT_NN(gv_lamb(.learning_rate = 0.1)),
                           GVT_NN(gv_scale_by_trust_ratio()),
                           GVT_NN(gv_scale_by_param_block_rms(1e-3)),
                           GVT_NN(gv_scale_by_factored_rms())};
    gv_tree *p = small_params();
    for (size_t i = 0; i < sizeof txs / sizeof txs[0]; i++) {
        gv_tree *s = GVT_NN(gv_transform_init_eager(txs[i], p)), *u, *ns;
        GVT_FAILS(gv_transform_update_eager(txs[i], p, s, NULL, &u, &ns), GV_ERR_ARG,
                  "requires the current value of the parameters");
        cr_assert_null(u);
        cr_assert_null(ns);
        gv_tree_free(s);
        gv_transform_free(txs[i]);
    }
    /* lookahead needs the {"fast", "slow"} pair */
    gv_transform *la = GVT_NN(gv_lookahead(gv_sgd(.learning_rate = 0.1), 2, 0.5, false));
    gv_tree *s = GVT_NN(gv_transform_init_eager(la, p)), *u, *ns; /* plain params: the fast ones */
    cr_assert(gv_tree_contains(s, "fast_state") && gv_tree_contains(s, "steps_since_sync"));
    GVT_FAILS(gv_transform_update_eager(la, p, s, NULL, &u, &ns), GV_ERR_ARG, "lookahead pair");
    GVT_FAILS(gv_transform_update_eager(la, p, s, p, &u, &ns), GV_ERR_ARG, "lookahead pair");
    gv_tree *pair = GVT_NN(gv_lookahead_params_init_synced(p));
    GVT_OK(gv_transform_update_eager(la, p, s, pair, &u, &ns));
    cr_assert(gv_tree_contains(u, "fast") && gv_tree_contains(u, "slow"));
    gv_tree_free(u), gv_tree_free(ns), gv_tree_free(pair), gv_tree_free(s), gv_tree_free(p);
    gv_transform_free(la);
}

/* a state that is not the transformation's is refused with a message */
Test(optimizers, foreign_state) {
    gv_tree *p = small_params(), *u, *ns;
    gv_transform *rms = GVT_NN(gv_scale_by_rms()), *ada = GVT_NN(gv_scale_by_rss());
    gv_tree *s = GVT_NN(gv_transform_init_eager(rms, p));
    GVT_FAILS(gv_transform_update_eager(ada, p, s, p, &u, &ns), GV_ERR_STRUCTURE,
              "scale_by_rss: the state is not this transformation's (expected a dict with "
              "'sum_of_squares'");
    gv_tree_free(s);
    /* rmsprop with bias correction keeps a count; a state without one is refused */
    gv_transform *bc = GVT_NN(gv_scale_by_rms(.bias_correction = true));
    s = GVT_NN(gv_transform_init_eager(rms, p));
    GVT_FAILS(gv_transform_update_eager(bc, p, s, p, &u, &ns), GV_ERR_STRUCTURE, "'count'");
    gv_tree_free(s);
    gv_transform_free(bc);
    /* adafactor's statistics for another factoring: refused, naming the field */
    const float m[12] = {0};
    gv_tensor *t = GVT_NN(gv_tensor_from_data(GV_F32, GV_DIMS(4, 3), m, sizeof m));
    gv_tree *mp = GVT_NN(gv_tree_new_leaf(t));
    gv_tensor_free(t);
    gv_transform *f3 = GVT_NN(gv_adafactor(.min_dim_size_to_factor = 3));
    gv_transform *f128 = GVT_NN(gv_adafactor());
    s = GVT_NN(gv_transform_init_eager(f3, mp));
    GVT_FAILS(gv_transform_update_eager(f128, mp, s, mp, &u, &ns), GV_ERR_SHAPE, "state.v_row");
    gv_tree_free(s), gv_tree_free(mp), gv_tree_free(p);
    gv_transform_free(rms), gv_transform_free(ada), gv_transform_free(f3), gv_transform_free(f128);
}

/* inject_hyperparams binds the float arguments of each factory by their
 * optax names: the keys of its state's "hyperparams" are optax's numeric
 * float arguments (optax also lists the int ones, min_dim_size_to_factor
 * and decay_offset, which stay static here, as every int argument does). */
static void expect_hyperparams(gv_transform *tx, const char *want) {
    gv_tree *p = small_params();
    gv_transform *inj = GVT_NN(gv_inject_hyperparams(tx));
    gv_tree *s = GVT_NN(gv_transform_init_eager(inj, p));
    const gv_tree *h = GVT_NN(gv_tree_get(s, "hyperparams"));
    char got[512] = "";
    char **keys = malloc(gv_tree_num_children(h) * sizeof *keys);
    size_t n = gv_tree_num_children(h);
    for (size_t i = 0; i < n; i++) keys[i] = (char *)gv_tree_key(h, i);
    for (size_t i = 0; i < n; i++) /* sorted, as a Python dict of the names would print sorted */
        for (size_t j = i + 1; j < n; j++)
            if (strcmp(keys[j], keys[i]) < 0) {
                char *x = keys[i];
                keys[i] = keys[j], keys[j] = x;
            }
    for (size_t i = 0; i < n; i++) strcat(strcat(got, i ? " " : ""), keys[i]);
    free(keys);
    cr_assert_str_eq(got, want);
    /* and one update runs with them */
    gv_tree *u, *ns;
    GVT_OK(gv_transform_update_eager(inj, p, s, p, &u, &ns));
    gv_tree_free(u), gv_tree_free(ns), gv_tree_free(s), gv_tree_free(p);
    gv_transform_free(inj);
}

Test(optimizers, inject_hyperparams_names) {
    expect_hyperparams(gv_rmsprop(.learning_rate = 0.01, .momentum = 0.9),
                       "decay eps initial_scale learning_rate momentum");
    expect_hyperparams(gv_rmsprop(.learning_rate = 0.01, .centered = true),
                       "decay eps initial_scale learning_rate");
    expect_hyperparams(gv_adagrad(.learning_rate = 0.01),
                       "eps initial_accumulator_value learning_rate");
    expect_hyperparams(gv_adafactor(.learning_rate = 0.01, .momentum = 0.9,
                                    .weight_decay_rate = 1e-3),
                       "clipping_threshold decay_rate eps learning_rate momentum "
                       "weight_decay_rate");
    expect_hyperparams(gv_adafactor(), "clipping_threshold decay_rate eps");
    expect_hyperparams(gv_lion(.learning_rate = 0.01), "b1 b2 learning_rate weight_decay");
    expect_hyperparams(gv_lamb(.learning_rate = 0.01, .weight_decay = 0.1),
                       "b1 b2 eps eps_root learning_rate weight_decay");
    expect_hyperparams(gv_adabelief(.learning_rate = 0.01), "b1 b2 eps eps_root learning_rate");
    expect_hyperparams(gv_adamax(.learning_rate = 0.01), "b1 b2 eps learning_rate");
}
