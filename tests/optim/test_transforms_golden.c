/* clip, clip_by_global_norm, ema, trace, masked weight decay,
 * apply_if_finite, MultiSteps, multi_transform and inject_hyperparams
 * against the real optax (tests/golden/optax_transforms_golden.json, made
 * by tests/golden/make_optax_transforms_golden.py with optax 0.2.8).
 *
 * Every case runs init and several updates through the compiled eager path
 * (gv_transform_update_eager traces and compiles the update once) and
 * compares, after each step, the updates, the params after apply_updates
 * and EVERY state leaf by its path, dtype and shape, and that the state has
 * no leaf optax's lacks. Tolerance: bit for bit for every case (its "ulps"
 * is 0), NaN matching NaN: the file is made with XLA computing optax's
 * formulas one float32 operation at a time (its fused multiply-adds off,
 * see the script), which is what grove does. The check itself also takes a
 * tolerance in units of the leaf's largest magnitude, which is how the
 * distance to optax under XLA's default flags ("xla_default_units", 1 to 5
 * units after five steps) was measured. */
#include <float.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "optim_testutil.h"

static json_object *golden(void) {
    static json_object *root;
    if (!root) {
        char *p = gvt_golden_path("optax_transforms_golden.json");
        root = gvt_load_json(p);
        free(p);
        cr_assert(root, "cannot read optax_transforms_golden.json");
    }
    return root;
}

static json_object *get(json_object *o, const char *key) {
    json_object *v = NULL;
    cr_assert(json_object_object_get_ex(o, key, &v), "golden: no '%s'", key);
    return v;
}

static uint32_t hex_bits(json_object *s) { return (uint32_t)strtoul(json_object_get_string(s), NULL, 16); }

static gv_dtype dtype_of(const char *name) {
    if (!strcmp(name, "float32")) return GV_F32;
    if (!strcmp(name, "int32")) return GV_I32;
    if (!strcmp(name, "bool")) return GV_BOOL;
    cr_assert_fail("golden: dtype %s", name);
    return GV_F32;
}

/* A tensor from one golden leaf. */
static gv_tensor *tensor_of(json_object *leaf) {
    json_object *shape = get(leaf, "shape");
    int64_t dims[8];
    int rank = (int)json_object_array_length(shape);
    for (int i = 0; i < rank; i++) dims[i] = json_object_get_int64(json_object_array_get_idx(shape, i));
    gv_dtype dt = dtype_of(json_object_get_string(get(leaf, "dtype")));
    gv_tensor *t = GVT_NN(gv_tensor_zeros(dt, rank, dims));
    json_object *vals = dt == GV_F32 ? get(leaf, "bits") : get(leaf, "ints");
    for (size_t i = 0; i < json_object_array_length(vals); i++) {
        json_object *v = json_object_array_get_idx(vals, i);
        if (dt == GV_F32) {
            uint32_t b = hex_bits(v);
            float f;
            memcpy(&f, &b, 4);
            ((float *)gv_tensor_data(t))[i] = f;
        } else {
            GVT_OK(gv_tensor_set_flat(t, (int64_t)i, (double)json_object_get_int64(v)));
        }
    }
    return t;
}

/* A dict tree of tensors from golden leaves (paths of dict keys). */
static gv_tree *tree_of(json_object *leaves) {
    size_t n = json_object_array_length(leaves);
    if (n == 1 && !strcmp(json_object_get_string(get(json_object_array_get_idx(leaves, 0), "path")), "")) {
        gv_tensor *t = tensor_of(json_object_array_get_idx(leaves, 0));
        gv_tree *tr = GVT_NN(gv_tree_new_leaf(t));
        gv_tensor_free(t);
        return tr;
    }
    gv_tree *tr = GVT_NN(gv_tree_new_dict());
    for (size_t i = 0; i < n; i++) {
        json_object *l = json_object_array_get_idx(leaves, i);
        gv_tensor *t = tensor_of(l);
        GVT_OK(gv_tree_insert_tensor(tr, json_object_get_string(get(l, "path")), t));
        gv_tensor_free(t);
    }
    return tr;
}

/* |a - b| in units of the last place of the leaf's largest magnitude: a
 * normwise distance, so that a value that is small only because of
 * cancellation is not judged by its own tiny ulp. */
static double leaf_ulps(float a, float b, float leaf_max) {
    float unit = nextafterf(leaf_max, INFINITY) - leaf_max;
    if (!(unit > 0)) unit = FLT_TRUE_MIN;
    return fabs((double)a - (double)b) / unit;
}

/* The largest distance seen in the current case (printed with
 * GROVE_GOLDEN_REPORT=1, which is how the cases' tolerances were measured). */
static double max_seen;

/* got has exactly the golden leaves, each element equal bit for bit (ulps
 * 0) or within ulps units of the leaf's largest magnitude; NaN must meet
 * NaN. */
static void expect_tree(const gv_tree *got, json_object *want, int ulps, const char *what) {
    size_t n = json_object_array_length(want);
    cr_assert_eq(gv_tree_num_leaves(got), n, "%s: %zu leaves, optax has %zu", what,
                 gv_tree_num_leaves(got), n);
    for (size_t i = 0; i < n; i++) {
        json_object *l = json_object_array_get_idx(want, i);
        const char *path = json_object_get_string(get(l, "path"));
        gv_tensor *w = tensor_of(l);
        gv_tensor *g = gv_tree_get_tensor(got, path);
        cr_assert(g, "%s: no leaf at '%s' (optax has one)", what, path);
        cr_assert_eq(gv_tensor_dtype(g), gv_tensor_dtype(w), "%s: %s: dtype %s, optax %s", what,
                     path, gv_dtype_name(gv_tensor_dtype(g)), gv_dtype_name(gv_tensor_dtype(w)));
        cr_assert_eq(gv_tensor_rank(g), gv_tensor_rank(w), "%s: %s: rank", what, path);
        cr_assert_eq(gv_tensor_size(g), gv_tensor_size(w), "%s: %s: size", what, path);
        float leaf_max = 0;
        if (gv_tensor_dtype(w) == GV_F32)
            for (int64_t k = 0; k < gv_tensor_size(w); k++) {
                float b = fabsf(((const float *)gv_tensor_data_const(w))[k]);
                if (isfinite(b) && b > leaf_max) leaf_max = b;
            }
        for (int64_t k = 0; k < gv_tensor_size(w); k++) {
            if (gv_tensor_dtype(w) == GV_F32) {
                float a = ((const float *)gv_tensor_data_const(g))[k];
                float b = ((const float *)gv_tensor_data_const(w))[k];
                uint32_t ba, bb;
                memcpy(&ba, &a, 4), memcpy(&bb, &b, 4);
                bool ok;
                if (isnan(a) || isnan(b)) ok = isnan(a) && isnan(b);
                else if (isinf(a) || isinf(b) || ulps == 0) ok = ba == bb;
                else ok = leaf_ulps(a, b, leaf_max) <= ulps;
                if (!isnan(a) && !isnan(b) && ba != bb) {
                    double d = isinf(a) || isinf(b) ? INFINITY : leaf_ulps(a, b, leaf_max);
                    if (d < 1) d = 1; /* -0 against +0, or below a unit: still not the same bits */
                    if (d > max_seen) max_seen = d;
                }
                cr_expect(ok, "%s: %s[%lld]: grove %.9g (0x%08x), optax %.9g (0x%08x), tolerance %d "
                          "units of %g", what, path, (long long)k, a, ba, b, bb, ulps,
                          (double)(nextafterf(leaf_max, INFINITY) - leaf_max));
            } else {
                double a, b;
                GVT_OK(gv_tensor_get_flat(g, k, &a));
                GVT_OK(gv_tensor_get_flat(w, k, &b));
                cr_expect_eq(a, b, "%s: %s[%lld]: grove %g, optax %g", what, path, (long long)k, a, b);
            }
        }
        gv_tensor_free(w);
    }
}

/* ---- the transformations, as the script makes them ---- */

static gv_value every_k_fn(gv_value gstep, void *ud) {
    /* jnp.where(s < 2, 1, 3) */
    gv_graph *g = gstep.graph;
    return gv_select(gv_lt(gstep, gv_scalar(g, GV_I32, 2)), gv_scalar(g, GV_I32, 1),
                     gv_scalar(g, GV_I32, 3));
}

/* the first letter of each leaf's key */
static gv_tree *first_letter(const gv_tree *tree, void *ud) {
    char **paths;
    size_t n;
    if (gv_tree_leaf_paths(tree, &paths, &n) != GV_OK) return NULL;
    gv_tree *labels = gv_tree_new_dict();
    for (size_t i = 0; labels && i < n; i++) {
        const char *last = strrchr(paths[i], '/');
        char lab[2] = {last ? last[1] : paths[i][0], 0};
        if (gv_tree_insert(labels, paths[i], gv_tree_new_label(lab)) != GV_OK)
            gv_tree_free(labels), labels = NULL;
    }
    gv_tree_paths_free(paths, n);
    return labels;
}

static gv_transform *make(const char *name) {
    if (!strcmp(name, "clip_0.5")) return gv_clip(0.5);
    if (!strcmp(name, "clip_by_global_norm_1")) return gv_clip_by_global_norm(1.0);
    if (!strcmp(name, "clip_by_global_norm_5_at")) return gv_clip_by_global_norm(5.0);
    if (!strcmp(name, "clip_by_global_norm_special")) return gv_clip_by_global_norm(1.0);
    if (!strcmp(name, "clip_by_global_norm_0_zero")) return gv_clip_by_global_norm(0.0);
    if (!strcmp(name, "ema_0.9_debias")) return gv_ema(0.9, true);
    if (!strcmp(name, "ema_0.9_nodebias")) return gv_ema(0.9, false);
    if (!strcmp(name, "ema_0.999")) return gv_ema(0.999, true);
    if (!strcmp(name, "trace_0.9_nesterov")) return gv_trace_momentum(0.9, true);
    if (!strcmp(name, "add_decayed_weights_mask")) {
        gv_tree *mask = GVT_NN(gv_labels("{'b': 'false', 'w': 'true'}"));
        gv_transform *tx = gv_add_decayed_weights(0.1, mask);
        gv_tree_free(mask);
        return tx;
    }
    if (!strcmp(name, "chain_clip_adam"))
        return gv_chain((gv_transform *[]){gv_clip_by_global_norm(1.0), gv_adam(.learning_rate = 1e-2)}, 2);
    if (!strcmp(name, "chain_clip_adam_ema"))
        return gv_chain((gv_transform *[]){gv_clip_by_global_norm(1.0), gv_adam(.learning_rate = 1e-2),
                                           gv_ema(0.999, true)}, 3);
    if (!strcmp(name, "apply_if_finite_sgd_2")) return gv_apply_if_finite(gv_sgd(.learning_rate = 1.0), 2);
    if (!strcmp(name, "multi_steps_adam_4")) return gv_multi_steps(gv_adam(.learning_rate = 1e-2), .every_k = 4);
    if (!strcmp(name, "multi_steps_sgd_3_sum"))
        return gv_multi_steps(gv_sgd(.learning_rate = 0.1), .every_k = 3, .use_grad_mean = false);
    if (!strcmp(name, "multi_steps_every_k_fn"))
        return gv_multi_steps(gv_sgd(.learning_rate = 0.1), .every_k_fn = every_k_fn);
    if (!strcmp(name, "multi_steps_skip_not_finite"))
        return gv_multi_steps(gv_sgd(.learning_rate = 1.0), .every_k = 2, .skip = GV_SKIP_NOT_FINITE);
    if (!strcmp(name, "multi_steps_skip_large"))
        return gv_multi_steps(gv_sgd(.learning_rate = 1.0), .every_k = 2, .skip = GV_SKIP_LARGE_UPDATES,
                              .max_squared_norm = 30.0);
    if (!strcmp(name, "multi_steps_nan_poisons"))
        return gv_multi_steps(gv_adam(.learning_rate = 1e-2), .every_k = 2);
    if (!strcmp(name, "multi_transform_freeze_prefix"))
        return gv_multi_transform(
            GV_TRANSFORMS({"train", gv_adam(.learning_rate = 1e-3)}, {"freeze", gv_set_to_zero()}),
            gv_labels("{'backbone': 'freeze', 'head': 'train'}"));
    if (!strcmp(name, "adam_head_only")) return gv_adam(.learning_rate = 1e-3);
    if (!strcmp(name, "multi_transform_full_labels"))
        return gv_multi_transform(
            GV_TRANSFORMS({"a", gv_sgd(.learning_rate = 0.1, .momentum = 0.9)},
                          {"b", gv_adam(.learning_rate = 1e-2)}, {"unused", gv_adam(.learning_rate = 1.0)}),
            gv_labels("{'backbone': {'dense': {'kernel': 'a', 'bias': 'b'}},"
                      " 'head': {'kernel': 'b', 'bias': 'a'}}"));
    if (!strcmp(name, "partition_label_fn"))
        return gv_multi_transform_fn(
            GV_TRANSFORMS({"a", gv_scale(-1.0)}, {"b", gv_ema(0.0, true)}, {"c", gv_scale(2.0)}),
            first_letter, NULL);
    if (!strcmp(name, "inject_adam")) return gv_inject_hyperparams(gv_adam(.learning_rate = 1e-2));
    if (!strcmp(name, "inject_sgd_schedule_momentum"))
        return gv_inject_hyperparams(
            gv_sgd(.schedule = gv_linear_schedule(0.1, 0.0, 4, 0), .momentum = 0.9));
    if (!strcmp(name, "inject_adamw"))
        return gv_inject_hyperparams(gv_adamw(.learning_rate = 1e-2, .weight_decay = 0.1));
    cr_assert_fail("no transformation for golden case %s", name);
    return NULL;
}

static void run_case(json_object *c) {
    const char *name = json_object_get_string(get(c, "name"));
    int ulps = json_object_get_int(get(c, "ulps"));
    max_seen = 0;
    bool report = getenv("GROVE_GOLDEN_REPORT") != NULL;
    if (report) ulps = 1 << 30;
    gv_transform *tx = make(name);
    cr_assert(tx, "%s: %s", name, gv_last_error());
    gv_tree *params = tree_of(get(c, "params"));
    gv_tree *state = gv_transform_init_eager(tx, params);
    cr_assert(state, "%s: init: %s", name, gv_last_error());
    char what[160];
    snprintf(what, sizeof what, "%s init", name);
    expect_tree(state, get(c, "init"), ulps, what);
    json_object *steps = get(c, "steps");
    for (size_t i = 0; i < json_object_array_length(steps); i++) {
        json_object *st = json_object_array_get_idx(steps, i), *set;
        if (json_object_object_get_ex(st, "set", &set)) {
            json_object_object_foreach(set, k, v) {
                GVT_OK(gv_hyperparam_set(state, k, json_object_get_double(v)));
            }
        }
        gv_tree *g = tree_of(get(st, "grads")), *u, *s;
        gv_status rc = gv_transform_update_eager(tx, g, state, params, &u, &s);
        cr_assert_eq(rc, GV_OK, "%s step %zu: %s", name, i, gv_last_error());
        gv_tree *np = GVT_NN(gv_apply_updates_eager(params, u));
        snprintf(what, sizeof what, "%s step %zu updates", name, i);
        expect_tree(u, get(st, "updates"), ulps, what);
        snprintf(what, sizeof what, "%s step %zu params", name, i);
        expect_tree(np, get(st, "params"), ulps, what);
        snprintf(what, sizeof what, "%s step %zu state", name, i);
        expect_tree(s, get(st, "state"), ulps, what);
        json_object *hu;
        if (json_object_object_get_ex(st, "has_updated", &hu)) {
            bool b;
            GVT_OK(gv_multi_steps_has_updated(s, &b));
            cr_expect_eq(b, json_object_get_int(hu) != 0, "%s step %zu: has_updated", name, i);
        }
        gv_tree_free(state), gv_tree_free(params), gv_tree_free(g), gv_tree_free(u);
        state = s, params = np;
    }
    gv_tree_free(state), gv_tree_free(params);
    gv_transform_free(tx);
    if (report) fprintf(stderr, "golden %s: max distance %.2f units\n", name, max_seen);
}

static void run_named(const char *prefix) {
    json_object *cases = get(golden(), "cases");
    int ran = 0;
    for (size_t i = 0; i < json_object_array_length(cases); i++) {
        json_object *c = json_object_array_get_idx(cases, i);
        if (strncmp(json_object_get_string(get(c, "name")), prefix, strlen(prefix))) continue;
        run_case(c);
        ran++;
    }
    cr_assert(ran > 0, "no golden case starts with %s", prefix);
}

Test(optax_golden, clip) { run_named("clip_0"); }
Test(optax_golden, clip_by_global_norm) { run_named("clip_by_global_norm"); }
Test(optax_golden, ema) { run_named("ema_"); }
Test(optax_golden, trace_and_masked_decay) { run_named("trace_"), run_named("add_decayed_weights"); }
Test(optax_golden, tutorial_chains) { run_named("chain_"); }
Test(optax_golden, apply_if_finite) { run_named("apply_if_finite"); }
Test(optax_golden, multi_steps) { run_named("multi_steps"); }
Test(optax_golden, multi_transform) { run_named("multi_transform"), run_named("partition"), run_named("adam_head"); }
Test(optax_golden, inject_hyperparams) { run_named("inject_"); }

/* The tutorial's freeze, stated directly (the golden comparison implies it):
 * through 4 steps every update of the frozen part is exactly +0.0 (a
 * tree_reduce counting the elements that are not), and the trained part's
 * updates equal plain adam on the head alone, bit for bit. */
static gv_status count_nonzero(void *acc, gv_tensor *leaf, void *ud) {
    const float *x = gv_tensor_data_const(leaf);
    for (int64_t i = 0; i < gv_tensor_size(leaf); i++) {
        uint32_t b;
        memcpy(&b, &x[i], 4);
        *(int64_t *)acc += b != 0; /* -0.0 and NaN count too */
    }
    return GV_OK;
}

static json_object *find_case(const char *name) {
    json_object *cases = get(golden(), "cases");
    for (size_t i = 0; i < json_object_array_length(cases); i++)
        if (!strcmp(json_object_get_string(get(json_object_array_get_idx(cases, i), "name")), name))
            return json_object_array_get_idx(cases, i);
    cr_assert_fail("no golden case %s", name);
    return NULL;
}

Test(optax_golden, freeze_is_zero_and_head_is_adam) {
    json_object *c = find_case("multi_transform_freeze_prefix");
    gv_transform *tx = GVT_NN(make("multi_transform_freeze_prefix"));
    gv_transform *adam = GVT_NN(gv_adam(.learning_rate = 1e-3));
    gv_tree *p = tree_of(get(c, "params"));
    gv_tree *head = GVT_NN(gv_tree_copy(gv_tree_get(p, "head")));
    gv_tree *hp = GVT_NN(gv_tree_new_dict());
    GVT_OK(gv_tree_insert(hp, "head", head));
    gv_tree *s = GVT_NN(gv_transform_init_eager(tx, p)), *hs = GVT_NN(gv_transform_init_eager(adam, hp));
    json_object *steps = get(c, "steps");
    for (size_t i = 0; i < json_object_array_length(steps); i++) {
        gv_tree *g = tree_of(get(json_object_array_get_idx(steps, i), "grads")), *u, *ns, *hu, *hns;
        gv_tree *hg = GVT_NN(gv_tree_new_dict());
        GVT_OK(gv_tree_insert(hg, "head", GVT_NN(gv_tree_copy(gv_tree_get(g, "head")))));
        GVT_OK(gv_transform_update_eager(tx, g, s, p, &u, &ns));
        GVT_OK(gv_transform_update_eager(adam, hg, hs, hp, &hu, &hns));
        int64_t nonzero = 0;
        GVT_OK(gv_tree_reduce(count_nonzero, NULL, gv_tree_get(u, "backbone"), &nonzero));
        cr_assert_eq(nonzero, 0, "step %zu: %lld frozen updates are not +0", i, (long long)nonzero);
        ot_expect_same_bits(gv_tree_get(u, "head"), gv_tree_get(hu, "head"), "head updates vs adam");
        gv_tree *np = GVT_NN(gv_apply_updates_eager(p, u)), *nhp = GVT_NN(gv_apply_updates_eager(hp, hu));
        gv_tree_free(p), gv_tree_free(hp), gv_tree_free(s), gv_tree_free(hs);
        gv_tree_free(u), gv_tree_free(hu), gv_tree_free(g), gv_tree_free(hg);
        p = np, hp = nhp, s = ns, hs = hns;
    }
    gv_tree_free(p), gv_tree_free(hp), gv_tree_free(s), gv_tree_free(hs);
    gv_transform_free(tx), gv_transform_free(adam);
}
