/* The learning-rate schedules (include/grove/schedules.h) against the real
 * optax 0.2.8: tests/golden/optax_schedules_golden.json, made by
 * tests/golden/make_optax_schedules_golden.py, holds every schedule at
 * many counts as jax.jit evaluates it. Each case is built here from its
 * spec through grove's public API and checked bit for bit (or within the
 * case's `ulps`) both through gv_schedule_value_eager (the graph's
 * reference kernels) and inside a plan compiled by gv_jit (constant
 * folding, fusion). Then every argument check, and ownership. */
#include <math.h>
#include <string.h>

#include "testutil.h"

/* ---- building a schedule from a golden spec ---- */

typedef struct args {
    json_object *obj;
    const char *where;
    int used; /* keys read, to catch a key the builder does not know */
} args;

static json_object *arg_get(args *a, const char *key) {
    json_object *v;
    if (!json_object_object_get_ex(a->obj, key, &v)) return NULL;
    a->used++;
    return v;
}

static double arg_d(args *a, const char *key, double dflt) {
    json_object *v = arg_get(a, key);
    return v ? json_object_get_double(v) : dflt;
}

static int64_t arg_i(args *a, const char *key, int64_t dflt) {
    json_object *v = arg_get(a, key);
    if (!v) return dflt;
    cr_assert(json_object_is_type(v, json_type_int), "%s: %s is not an int", a->where, key);
    return json_object_get_int64(v);
}

static bool arg_b(args *a, const char *key, bool dflt) {
    json_object *v = arg_get(a, key);
    return v ? json_object_get_boolean(v) : dflt;
}

static void args_done(args *a) {
    cr_assert_eq(a->used, json_object_object_length(a->obj), "%s: an argument the test does not know: %s",
                 a->where, json_object_to_json_string(a->obj));
}

static void set_d(args *a, const char *key, double *field) { *field = arg_d(a, key, *field); }
static void set_i(args *a, const char *key, int64_t *field) { *field = arg_i(a, key, *field); }

/* The dict's [boundary, scale] pairs, in the file's (insertion) order. */
static size_t arg_pairs(args *a, int64_t **b, double **s) {
    json_object *v = arg_get(a, "boundaries_and_scales");
    size_t n = v ? json_object_array_length(v) : 0;
    *b = malloc((n + 1) * sizeof **b), *s = malloc((n + 1) * sizeof **s);
    for (size_t i = 0; i < n; i++) {
        json_object *p = json_object_array_get_idx(v, i);
        (*b)[i] = json_object_get_int64(json_object_array_get_idx(p, 0));
        (*s)[i] = json_object_get_double(json_object_array_get_idx(p, 1));
    }
    return n;
}

static gv_warmup_cosine_decay_schedule_opts warmup_cosine_opts(args *a) {
    gv_warmup_cosine_decay_schedule_opts o = gv_warmup_cosine_decay_schedule_defaults();
    set_d(a, "init_value", &o.init_value), set_d(a, "peak_value", &o.peak_value);
    set_i(a, "warmup_steps", &o.warmup_steps), set_i(a, "decay_steps", &o.decay_steps);
    set_d(a, "end_value", &o.end_value), set_d(a, "exponent", &o.exponent);
    return o;
}

static gv_schedule *build(json_object *spec, const char *where) {
    json_object *jname, *jargs;
    cr_assert(json_object_object_get_ex(spec, "schedule", &jname) &&
              json_object_object_get_ex(spec, "args", &jargs), "%s: bad spec", where);
    const char *name = json_object_get_string(jname);
    args a = {jargs, where, 0};
    gv_schedule *s = NULL;
    if (!strcmp(name, "constant_schedule")) {
        s = gv_constant_schedule(arg_d(&a, "value", NAN));
    } else if (!strcmp(name, "polynomial_schedule")) {
        s = gv_polynomial_schedule(arg_d(&a, "init_value", NAN), arg_d(&a, "end_value", NAN),
                                   arg_d(&a, "power", NAN), arg_i(&a, "transition_steps", 0),
                                   arg_i(&a, "transition_begin", 0));
    } else if (!strcmp(name, "linear_schedule")) {
        s = gv_linear_schedule(arg_d(&a, "init_value", NAN), arg_d(&a, "end_value", NAN),
                               arg_i(&a, "transition_steps", 0), arg_i(&a, "transition_begin", 0));
    } else if (!strcmp(name, "warmup_constant_schedule")) {
        s = gv_warmup_constant_schedule(arg_d(&a, "init_value", NAN), arg_d(&a, "peak_value", NAN),
                                        arg_i(&a, "warmup_steps", 0));
    } else if (!strcmp(name, "cosine_decay_schedule")) {
        gv_cosine_decay_schedule_opts o = gv_cosine_decay_schedule_defaults();
        set_d(&a, "init_value", &o.init_value), set_i(&a, "decay_steps", &o.decay_steps);
        set_d(&a, "alpha", &o.alpha), set_d(&a, "exponent", &o.exponent);
        s = gv_cosine_decay_schedule_with(&o);
    } else if (!strcmp(name, "warmup_cosine_decay_schedule")) {
        gv_warmup_cosine_decay_schedule_opts o = warmup_cosine_opts(&a);
        s = gv_warmup_cosine_decay_schedule_with(&o);
    } else if (!strcmp(name, "sgdr_schedule")) {
        json_object *cy = arg_get(&a, "cycles");
        size_t n = json_object_array_length(cy);
        gv_warmup_cosine_decay_schedule_opts o[n];
        for (size_t i = 0; i < n; i++) {
            args c = {json_object_array_get_idx(cy, i), where, 0};
            o[i] = warmup_cosine_opts(&c);
            args_done(&c);
        }
        s = gv_sgdr_schedule(o, n);
    } else if (!strcmp(name, "exponential_decay")) {
        gv_exponential_decay_opts o = gv_exponential_decay_defaults();
        set_d(&a, "init_value", &o.init_value), set_i(&a, "transition_steps", &o.transition_steps);
        set_d(&a, "decay_rate", &o.decay_rate), set_i(&a, "transition_begin", &o.transition_begin);
        o.staircase = arg_b(&a, "staircase", o.staircase), set_d(&a, "end_value", &o.end_value);
        s = gv_exponential_decay_with(&o);
    } else if (!strcmp(name, "warmup_exponential_decay_schedule")) {
        gv_warmup_exponential_decay_schedule_opts o = gv_warmup_exponential_decay_schedule_defaults();
        set_d(&a, "init_value", &o.init_value), set_d(&a, "peak_value", &o.peak_value);
        set_i(&a, "warmup_steps", &o.warmup_steps), set_i(&a, "transition_steps", &o.transition_steps);
        set_d(&a, "decay_rate", &o.decay_rate), set_i(&a, "transition_begin", &o.transition_begin);
        o.staircase = arg_b(&a, "staircase", o.staircase), set_d(&a, "end_value", &o.end_value);
        s = gv_warmup_exponential_decay_schedule_with(&o);
    } else if (!strcmp(name, "piecewise_constant_schedule") ||
               !strcmp(name, "piecewise_interpolate_schedule")) {
        int64_t *b;
        double *sc;
        json_object *type = arg_get(&a, "interpolate_type");
        double init = arg_d(&a, "init_value", NAN);
        size_t n = arg_pairs(&a, &b, &sc);
        s = type ? gv_piecewise_interpolate_schedule(json_object_get_string(type), init, b, sc, n)
                 : gv_piecewise_constant_schedule(init, b, sc, n);
        free(b), free(sc);
    } else if (!strcmp(name, "linear_onecycle_schedule")) {
        gv_linear_onecycle_schedule_opts o = gv_linear_onecycle_schedule_defaults();
        set_i(&a, "transition_steps", &o.transition_steps), set_d(&a, "peak_value", &o.peak_value);
        set_d(&a, "pct_start", &o.pct_start), set_d(&a, "pct_final", &o.pct_final);
        set_d(&a, "div_factor", &o.div_factor), set_d(&a, "final_div_factor", &o.final_div_factor);
        s = gv_linear_onecycle_schedule_with(&o);
    } else if (!strcmp(name, "cosine_onecycle_schedule")) {
        gv_cosine_onecycle_schedule_opts o = gv_cosine_onecycle_schedule_defaults();
        set_i(&a, "transition_steps", &o.transition_steps), set_d(&a, "peak_value", &o.peak_value);
        set_d(&a, "pct_start", &o.pct_start), set_d(&a, "div_factor", &o.div_factor);
        set_d(&a, "final_div_factor", &o.final_div_factor);
        s = gv_cosine_onecycle_schedule_with(&o);
    } else if (!strcmp(name, "join_schedules")) {
        json_object *js = arg_get(&a, "schedules"), *jb = arg_get(&a, "boundaries");
        size_t n = json_object_array_length(js), nb = json_object_array_length(jb);
        gv_schedule *parts[n];
        int64_t bounds[nb + 1];
        for (size_t i = 0; i < n; i++) parts[i] = build(json_object_array_get_idx(js, i), where);
        for (size_t i = 0; i < nb; i++) bounds[i] = json_object_get_int64(json_object_array_get_idx(jb, i));
        s = gv_join_schedules(parts, n, bounds, nb);
    } else {
        cr_assert_fail("%s: no builder for %s", where, name);
    }
    args_done(&a);
    cr_assert_not_null(s, "%s: building %s failed: %s", where, name, gv_last_error());
    return s;
}

/* ---- evaluating ---- */

static gv_tree *schedule_step(gv_graph *g, const gv_tree *in, void *ud) {
    (void)g;
    gv_value v = gv_schedule_value(ud, gv_tree_leaf_value(in));
    return gv_value_ok(v) ? gv_tree_new_value_leaf(v) : NULL;
}

static uint32_t f32_bits(float v) {
    uint32_t u;
    memcpy(&u, &v, 4);
    return u;
}

/* Distance in units in the last place (floats ordered as integers). */
static int64_t ulp_distance(uint32_t a, uint32_t b) {
    int64_t ia = a & 0x80000000u ? -(int64_t)(a & 0x7fffffffu) : (int64_t)a;
    int64_t ib = b & 0x80000000u ? -(int64_t)(b & 0x7fffffffu) : (int64_t)b;
    return ia > ib ? ia - ib : ib - ia;
}

typedef struct golden_stats {
    int cases, values, exact;
    int64_t worst_ulps;
} golden_stats;

/* Check one case; returns the number of mismatches, printing the first. */
static int check_case(json_object *c, golden_stats *st) {
    json_object *jname, *spec, *jcounts, *jvals, *julps;
    cr_assert(json_object_object_get_ex(c, "name", &jname) && json_object_object_get_ex(c, "spec", &spec) &&
              json_object_object_get_ex(c, "counts", &jcounts) &&
              json_object_object_get_ex(c, "values", &jvals) && json_object_object_get_ex(c, "ulps", &julps));
    const char *name = json_object_get_string(jname);
    int64_t allowed = json_object_get_int64(julps);
    gv_schedule *s = build(spec, name);
    gv_jit *jit = GVT_NN(gv_jit_new(schedule_step, s, NULL));
    gv_tensor *count = GVT_NN(gv_tensor_scalar(GV_I32, 0));
    gv_tree *in = GVT_NN(gv_tree_new_leaf(count));
    size_t n = json_object_array_length(jcounts);
    cr_assert_eq(n, json_object_array_length(jvals), "%s: counts and values differ in length", name);
    int bad = 0;
    for (size_t i = 0; i < n; i++) {
        int64_t k = json_object_get_int64(json_object_array_get_idx(jcounts, i));
        uint32_t want = (uint32_t)strtoul(json_object_get_string(json_object_array_get_idx(jvals, i)), NULL, 16);
        cr_assert(k >= INT32_MIN && k <= INT32_MAX, "%s: count %lld", name, (long long)k);
        float eager;
        GVT_OK(gv_schedule_value_eager(s, (int32_t)k, &eager));
        *(int32_t *)gv_tensor_data(count) = (int32_t)k;
        gv_tree *out;
        GVT_OK(gv_jit_call(jit, in, &out));
        float jitted = *(const float *)gv_tensor_data_const(gv_tree_leaf_tensor(out));
        const char *path[2] = {"eager", "jit"};
        uint32_t got[2] = {f32_bits(eager), f32_bits(jitted)};
        for (int p = 0; p < 2; p++) {
            if (got[p] == want) continue;
            /* a NaN matches only itself, bit for bit */
            bool nan = (got[p] & 0x7fffffffu) > 0x7f800000u || (want & 0x7fffffffu) > 0x7f800000u;
            int64_t d = nan ? INT64_MAX : ulp_distance(got[p], want);
            if (!nan && d > st->worst_ulps) st->worst_ulps = d;
            if (allowed > 0 && d <= allowed) continue; /* ulps 0: bit for bit, so -0 is not +0 */
            if (bad++ < 8) {
                float w;
                memcpy(&w, &want, 4);
                cr_log_error("%s (%s) at count %lld: got %.9g (0x%08x), optax %.9g (0x%08x), %lld ulps",
                             name, path[p], (long long)k, p ? (double)jitted : (double)eager, got[p],
                             (double)w, want, (long long)d);
            }
        }
        st->values++;
        st->exact += got[0] == want && got[1] == want;
    }
    cr_assert_eq(gv_jit_num_compiles(jit), 1, "%s: the plan is compiled once, not per count", name);
    gv_tree_free(in), gv_tensor_free(count), gv_jit_free(jit), gv_schedule_free(s);
    st->cases++;
    return bad;
}

Test(schedules_golden, every_case_matches_optax) {
    char *path = gvt_golden_path("optax_schedules_golden.json");
    json_object *root = gvt_load_json(path);
    json_object *cases;
    cr_assert(json_object_object_get_ex(root, "cases", &cases));
    golden_stats st = {0};
    int bad = 0, bad_cases = 0;
    for (size_t i = 0; i < json_object_array_length(cases); i++) {
        int b = check_case(json_object_array_get_idx(cases, i), &st);
        bad += b, bad_cases += b > 0;
    }
    cr_log_info("schedules golden: %d cases, %d counts, %d bit for bit on both paths, worst %lld ulps",
                st.cases, st.values, st.exact, (long long)st.worst_ulps);
    cr_assert_eq(bad, 0, "%d values in %d cases differ from optax beyond the case's ulps (see the log)",
                 bad, bad_cases);
    cr_assert_geq(st.cases, 90);
    json_object_put(root);
    free(path);
}

/* Every schedule the header declares has a golden case (by optax name),
 * at top level or as a join's part. */
static bool spec_uses(json_object *spec, const char *name) {
    json_object *jn, *ja, *parts;
    json_object_object_get_ex(spec, "schedule", &jn);
    json_object_object_get_ex(spec, "args", &ja);
    if (!strcmp(json_object_get_string(jn), name)) return true;
    if (json_object_object_get_ex(ja, "schedules", &parts))
        for (size_t i = 0; i < json_object_array_length(parts); i++)
            if (spec_uses(json_object_array_get_idx(parts, i), name)) return true;
    return false;
}

Test(schedules_golden, every_schedule_is_covered) {
    char *path = gvt_golden_path("optax_schedules_golden.json");
    json_object *root = gvt_load_json(path), *cases;
    cr_assert(json_object_object_get_ex(root, "cases", &cases));
    const char *names[] = {"constant_schedule", "polynomial_schedule", "linear_schedule",
                           "warmup_constant_schedule", "cosine_decay_schedule",
                           "warmup_cosine_decay_schedule", "sgdr_schedule", "exponential_decay",
                           "warmup_exponential_decay_schedule", "piecewise_constant_schedule",
                           "piecewise_interpolate_schedule", "linear_onecycle_schedule",
                           "cosine_onecycle_schedule", "join_schedules"};
    for (size_t k = 0; k < sizeof names / sizeof *names; k++) {
        int n = 0;
        for (size_t i = 0; i < json_object_array_length(cases); i++) {
            json_object *spec;
            json_object_object_get_ex(json_object_array_get_idx(cases, i), "spec", &spec);
            n += spec_uses(spec, names[k]);
        }
        cr_assert_geq(n, 2, "%s: %d golden cases, want several", names[k], n);
    }
    json_object_put(root);
    free(path);
}

/* ---- values the reference states (S-vectors), as plain numbers ---- */

static float at(gv_schedule *s, int32_t count) {
    float v;
    GVT_OK(gv_schedule_value_eager(s, count, &v));
    return v;
}

Test(schedules, boundary_semantics) {
    /* S19: join switches AT the boundary, and each part sees step - its own boundary */
    gv_schedule *parts[3] = {gv_constant_schedule(1), gv_constant_schedule(2), gv_constant_schedule(1)};
    gv_schedule *j = GVT_NN(gv_join_schedules(parts, 3, (int64_t[]){3, 6}, 2));
    const float want[7] = {1, 1, 1, 2, 2, 2, 1};
    for (int c = 0; c < 7; c++) cr_assert_eq(at(j, c), want[c], "S19 at %d", c);
    gv_schedule_free(j);
    gv_schedule *lin[2] = {gv_constant_schedule(9), gv_linear_schedule(0, 10, 10, 0)};
    j = GVT_NN(gv_join_schedules(lin, 2, (int64_t[]){5}, 1));
    cr_assert_eq(at(j, 4), 9.0f);
    cr_assert_eq(at(j, 5), 0.0f, "local step 0 at the boundary");
    cr_assert_eq(at(j, 8), 3.0f, "local step 3, not a cumulative offset");
    gv_schedule_free(j);
    /* S6: the piecewise constant scale applies at count == boundary */
    gv_schedule *p = GVT_NN(gv_piecewise_constant_schedule(0.1, (int64_t[]){6, 3}, (double[]){0.5, 2.0}, 2));
    const float pw[10] = {0.1f, 0.1f, 0.1f, 0.2f, 0.2f, 0.2f, 0.1f, 0.1f, 0.1f, 0.1f};
    for (int c = 0; c < 10; c++) cr_assert_eq(at(p, c), pw[c], "S6 at %d", c);
    gv_schedule_free(p);
    /* S17: exactly the peak at the end of the warmup, the end value at decay_steps */
    gv_schedule *w = GVT_NN(gv_warmup_cosine_decay_schedule(.init_value = 0, .peak_value = 1,
                                                            .warmup_steps = 10, .decay_steps = 110,
                                                            .end_value = 0.25));
    cr_assert_eq(at(w, 10), 1.0f);
    cr_assert_eq(at(w, 110), 0.25f);
    cr_assert_eq(at(w, 1000), 0.25f);
    cr_assert_str_eq(gv_schedule_name(w), "warmup_cosine_decay_schedule");
    gv_schedule_free(w);
}

Test(schedules, reference_vectors) {
    /* S9 (derived): 2^(-c/2), and the staircase */
    gv_schedule *e = GVT_NN(gv_exponential_decay(.init_value = 1, .transition_steps = 2, .decay_rate = 0.5));
    gv_schedule *st = GVT_NN(gv_exponential_decay(.init_value = 1, .transition_steps = 2,
                                                  .decay_rate = 0.5, .staircase = true));
    const double w[7] = {1, 0.70710678, 0.5, 0.35355339, 0.25, 0.1767767, 0.125};
    const float ws[7] = {1, 1, 0.5f, 0.5f, 0.25f, 0.25f, 0.125f};
    for (int c = 0; c < 7; c++) {
        cr_assert_float_eq(at(e, c), w[c], 1e-7, "S9 at %d", c);
        cr_assert_eq(at(st, c), ws[c], "S9 staircase at %d", c);
    }
    gv_schedule_free(e), gv_schedule_free(st);
    /* S22, S23: the onecycles */
    gv_schedule *l = GVT_NN(gv_linear_onecycle_schedule(.transition_steps = 10, .peak_value = 1000,
                                                        .pct_start = 0.3, .pct_final = 0.7,
                                                        .div_factor = 10, .final_div_factor = 100));
    const double wl[12] = {100, 400, 700, 1000, 775, 550, 325, 100, 67, 34, 1, 1};
    for (int c = 0; c < 12; c++) cr_assert_float_eq(at(l, c), wl[c], 1e-3 * wl[c], "S22 at %d", c);
    gv_schedule *co = GVT_NN(gv_cosine_onecycle_schedule(.transition_steps = 5, .peak_value = 1000,
                                                         .pct_start = 0.4, .div_factor = 10,
                                                         .final_div_factor = 100));
    const double wc[7] = {100, 550, 1000, 750.25, 250.75, 1, 1};
    for (int c = 0; c < 7; c++) cr_assert_float_eq(at(co, c), wc[c], 1e-4 * wc[c], "S23 at %d", c);
    gv_schedule_free(l), gv_schedule_free(co);
    /* S13: cosine with decay_steps beyond int32 */
    gv_schedule *g = GVT_NN(gv_cosine_decay_schedule(.init_value = 1000, .decay_steps = 10000000000));
    cr_assert_float_eq(at(g, 1000000000), 975.52826, 1e-3);
    gv_schedule_free(g);
}

/* ---- inside an optimiser ---- */

/* sgd(schedule) applies -schedule(count) * g at each step, the count read
 * before it is incremented (reference F.2): the schedule runs inside the
 * optimiser's compiled update. */
Test(schedules, drives_an_optimiser) {
    gv_schedule *s = GVT_NN(gv_warmup_cosine_decay_schedule(.init_value = 0, .peak_value = 0.1,
                                                            .warmup_steps = 2, .decay_steps = 6));
    gv_transform *tx = GVT_NN(gv_sgd(.schedule = gv_schedule_retain(s)));
    gv_tensor *p = GVT_NN(gv_tensor_scalar(GV_F32, 0.0)), *gr = GVT_NN(gv_tensor_scalar(GV_F32, 1.0));
    gv_tree *params = gv_tree_new_leaf(p), *grads = gv_tree_new_leaf(gr);
    gv_tree *state = GVT_NN(gv_transform_init_eager(tx, params));
    for (int k = 0; k < 8; k++) {
        gv_tree *u, *ns;
        GVT_OK(gv_transform_update_eager(tx, grads, state, params, &u, &ns));
        float got = *(const float *)gv_tensor_data_const(gv_tree_leaf_tensor(u));
        cr_assert_eq(got, -at(s, k), "step %d: update %.9g, schedule %.9g", k, (double)got,
                     (double)at(s, k));
        gv_tree_free(u), gv_tree_free(state);
        state = ns;
    }
    gv_tree_free(state), gv_tree_free(params), gv_tree_free(grads);
    gv_tensor_free(p), gv_tensor_free(gr);
    gv_transform_free(tx), gv_schedule_free(s);
}

/* ---- argument checks: GV_ERR_ARG, the message naming the argument ---- */

Test(schedules_args, cosine) {
    GVT_NULL(gv_cosine_decay_schedule(.init_value = 1, .decay_steps = 0), GV_ERR_ARG, "decay_steps");
    GVT_NULL(gv_cosine_decay_schedule(.init_value = 1, .decay_steps = -3), GV_ERR_ARG, "positive");
    GVT_NULL(gv_cosine_decay_schedule(.decay_steps = 10), GV_ERR_ARG, ".init_value is required");
    GVT_NULL(gv_cosine_decay_schedule(.init_value = 1), GV_ERR_ARG, ".decay_steps is required");
    GVT_NULL(gv_cosine_decay_schedule_with(NULL), GV_ERR_ARG, "opts");
}

Test(schedules_args, warmup_cosine) {
    GVT_NULL(gv_warmup_cosine_decay_schedule(.init_value = 0, .peak_value = 1, .warmup_steps = 10,
                                             .decay_steps = 10),
             GV_ERR_ARG, ".decay_steps (10) must exceed .warmup_steps (10)");
    GVT_NULL(gv_warmup_cosine_decay_schedule(.init_value = 0, .peak_value = 1, .warmup_steps = 20,
                                             .decay_steps = 10),
             GV_ERR_ARG, ".warmup_steps");
    GVT_NULL(gv_warmup_cosine_decay_schedule(.init_value = 0, .warmup_steps = 2, .decay_steps = 10),
             GV_ERR_ARG, ".peak_value is required");
    GVT_NULL(gv_warmup_cosine_decay_schedule(.init_value = 0, .peak_value = 1, .decay_steps = 10),
             GV_ERR_ARG, ".warmup_steps is required");
    GVT_NULL(gv_warmup_cosine_decay_schedule(.init_value = 0, .peak_value = 1,
                                             .warmup_steps = 3000000000, .decay_steps = 4000000000),
             GV_ERR_ARG, ".warmup_steps = 3000000000 does not fit an int32");
}

Test(schedules_args, sgdr) {
    gv_warmup_cosine_decay_schedule_opts c[2] = {gv_warmup_cosine_decay_schedule_defaults(),
                                                 gv_warmup_cosine_decay_schedule_defaults()};
    c[0].init_value = c[1].init_value = 0, c[0].peak_value = c[1].peak_value = 1;
    c[0].warmup_steps = c[1].warmup_steps = 5, c[0].decay_steps = 10, c[1].decay_steps = 5;
    GVT_NULL(gv_sgdr_schedule(c, 2), GV_ERR_ARG, "cycles[1]: .decay_steps (5) must exceed");
    GVT_NULL(gv_sgdr_schedule(c, 0), GV_ERR_ARG, "n is 0");
    GVT_NULL(gv_sgdr_schedule(NULL, 1), GV_ERR_ARG, "cycles is NULL");
    c[1].decay_steps = 10, c[0].decay_steps = 2147483648;
    GVT_NULL(gv_sgdr_schedule(c, 2), GV_ERR_ARG, "cycles[0]: the cycle ends at step 2147483648");
    c[0].decay_steps = 10;
    gv_schedule *s = GVT_NN(gv_sgdr_schedule(c, 2));
    cr_assert_str_eq(gv_schedule_name(s), "sgdr_schedule");
    gv_schedule_free(s);
}

Test(schedules_args, exponential) {
    GVT_NULL(gv_exponential_decay(.transition_steps = 3, .decay_rate = 0.5), GV_ERR_ARG,
             "exponential_decay: .init_value is required");
    GVT_NULL(gv_exponential_decay(.init_value = 1, .decay_rate = 0.5), GV_ERR_ARG,
             ".transition_steps is required");
    GVT_NULL(gv_exponential_decay(.init_value = 1, .transition_steps = 3), GV_ERR_ARG,
             ".decay_rate is required");
    GVT_NULL(gv_exponential_decay(.init_value = 1, .transition_steps = 3000000000, .decay_rate = 0.5),
             GV_ERR_ARG, "transition_steps = 3000000000 does not fit an int32");
    GVT_NULL(gv_exponential_decay(.init_value = 1, .transition_steps = 3, .decay_rate = 0.5,
                                  .transition_begin = 1LL << 40),
             GV_ERR_ARG, "transition_begin");
    /* optax's constant cases are no errors: T <= 0 or rate 0 */
    gv_schedule *s = GVT_NN(gv_exponential_decay(.init_value = 2, .transition_steps = 0, .decay_rate = 0.5));
    cr_assert_eq(at(s, 7), 2.0f);
    gv_schedule_free(s);
    GVT_NULL(gv_warmup_exponential_decay_schedule(.init_value = 0, .peak_value = 1, .warmup_steps = 5,
                                                  .decay_rate = 0.5),
             GV_ERR_ARG, "warmup_exponential_decay_schedule: .transition_steps is required");
    GVT_NULL(gv_warmup_exponential_decay_schedule(.init_value = 0, .peak_value = 1, .warmup_steps = -(1LL << 33),
                                                  .transition_steps = 3, .decay_rate = 0.5),
             GV_ERR_ARG, ".warmup_steps");
}

Test(schedules_args, polynomial) {
    GVT_NULL(gv_polynomial_schedule(1, 0, 1, 1LL << 31, 0), GV_ERR_ARG, "transition_steps = 2147483648");
    GVT_NULL(gv_linear_schedule(1, 0, 10, 1LL << 31), GV_ERR_ARG, "linear_schedule: transition_begin");
    GVT_NULL(gv_warmup_constant_schedule(0, 1, 1LL << 32), GV_ERR_ARG, "warmup_constant_schedule");
    /* T <= 0 is optax's constant schedule, whatever the begin */
    gv_schedule *s = GVT_NN(gv_polynomial_schedule(3, 0, 1, -5, 1LL << 40));
    cr_assert_eq(at(s, 100), 3.0f);
    gv_schedule_free(s);
}

Test(schedules_args, piecewise) {
    int64_t b[3] = {10, 20, 30};
    double sc[3] = {0.5, -0.1, 2};
    GVT_NULL(gv_piecewise_constant_schedule(1, b, sc, 3), GV_ERR_ARG, "scales[1] = -0.1");
    sc[1] = NAN;
    GVT_NULL(gv_piecewise_constant_schedule(1, b, sc, 3), GV_ERR_ARG, "scales[1] = nan");
    sc[1] = 0.3, b[2] = 10;
    GVT_NULL(gv_piecewise_constant_schedule(1, b, sc, 3), GV_ERR_ARG,
             "boundaries[0] and boundaries[2] are both 10");
    b[2] = 1LL << 31;
    GVT_NULL(gv_piecewise_constant_schedule(1, b, sc, 3), GV_ERR_ARG, "boundaries[2] = 2147483648");
    GVT_NULL(gv_piecewise_constant_schedule(1, NULL, sc, 3), GV_ERR_ARG, "boundaries is NULL");
    GVT_NULL(gv_piecewise_constant_schedule(1, b, NULL, 3), GV_ERR_ARG, "scales is NULL");
    b[2] = 30;
    GVT_NULL(gv_piecewise_interpolate_schedule("quadratic", 1, b, sc, 3), GV_ERR_ARG,
             "interpolate_type must be either 'cosine' or 'linear', got 'quadratic'");
    GVT_NULL(gv_piecewise_interpolate_schedule(NULL, 1, b, sc, 3), GV_ERR_ARG, "interpolate_type");
    GVT_NULL(gv_piecewise_interpolate_schedule("linear", 1, b, NULL, 3), GV_ERR_ARG,
             "piecewise_interpolate_schedule: scales is NULL with n = 3");
    sc[0] = -1;
    GVT_NULL(gv_piecewise_interpolate_schedule("cosine", 1, b, sc, 3), GV_ERR_ARG, "scales[0] = -1");
    /* no entries: arrays may be NULL */
    gv_schedule *s = GVT_NN(gv_piecewise_constant_schedule(0.5, NULL, NULL, 0));
    cr_assert_eq(at(s, 3), 0.5f);
    gv_schedule_free(s);
}

Test(schedules_args, onecycle) {
    GVT_NULL(gv_linear_onecycle_schedule(.transition_steps = 0, .peak_value = 1), GV_ERR_ARG,
             ".transition_steps must be positive");
    GVT_NULL(gv_linear_onecycle_schedule(.peak_value = 1), GV_ERR_ARG, ".transition_steps is required");
    GVT_NULL(gv_linear_onecycle_schedule(.transition_steps = 10), GV_ERR_ARG, ".peak_value is required");
    GVT_NULL(gv_linear_onecycle_schedule(.transition_steps = 10, .peak_value = 1, .div_factor = 0),
             GV_ERR_ARG, ".div_factor is 0");
    GVT_NULL(gv_linear_onecycle_schedule(.transition_steps = 10, .peak_value = 1, .final_div_factor = -2),
             GV_ERR_ARG, ".final_div_factor is -2");
    GVT_NULL(gv_linear_onecycle_schedule(.transition_steps = 10, .peak_value = 1, .pct_final = 1e12),
             GV_ERR_ARG, "int(.pct_final * transition_steps)");
    GVT_NULL(gv_cosine_onecycle_schedule(.transition_steps = -4, .peak_value = 1), GV_ERR_ARG,
             "cosine_onecycle_schedule: .transition_steps must be positive, got -4");
    GVT_NULL(gv_cosine_onecycle_schedule(.transition_steps = 10, .peak_value = 1, .div_factor = NAN),
             GV_ERR_ARG, ".div_factor is nan");
}

/* ---- join: argument checks and ownership ---- */

static int frees;
static gv_value counted_fn(gv_value count, void *ud) {
    return gv_scalar(count.graph, GV_F32, *(const float *)ud);
}
static void counted_free(void *ud) {
    frees++;
    free(ud);
}
static gv_schedule *counted(float v) {
    float *p = malloc(sizeof *p);
    *p = v;
    return GVT_NN(gv_schedule_new("counted", counted_fn, p, counted_free));
}

Test(schedules_args, join) {
    struct {
        int64_t b[3];
        size_t nb;
        const char *needle;
    } bad[] = {
        {{5, 5}, 2, "boundaries must be strictly increasing: boundaries[1] = 5 after 5"},
        {{7, 3}, 2, "boundaries[1] = 3 after 7"},
        {{1, 2, 3}, 3, "nboundaries is 3 for 3 schedules; it must be n - 1"},
        {{1}, 1, "nboundaries is 1 for 3 schedules"},
        {{1, 1LL << 31}, 2, "boundaries[1] = 2147483648 does not fit an int32"},
    };
    for (size_t k = 0; k < sizeof bad / sizeof *bad; k++) {
        frees = 0;
        gv_schedule *parts[3] = {counted(1), counted(2), counted(3)};
        GVT_NULL(gv_join_schedules(parts, 3, bad[k].b, bad[k].nb), GV_ERR_ARG, bad[k].needle);
        cr_assert_eq(frees, 3, "case %zu: a failed join frees its parts (%d freed)", k, frees);
    }
    frees = 0;
    gv_schedule *parts[3] = {counted(1), NULL, counted(3)};
    GVT_NULL(gv_join_schedules(parts, 3, (int64_t[]){1, 2}, 2), GV_ERR_ARG, "schedules[1] is NULL");
    cr_assert_eq(frees, 2, "the other parts are freed");
    GVT_NULL(gv_join_schedules(parts, 0, NULL, 0), GV_ERR_ARG, "schedules is empty");
    GVT_NULL(gv_join_schedules(NULL, 2, (int64_t[]){1}, 1), GV_ERR_ARG, "schedules is NULL");
    frees = 0;
    gv_schedule *two[2] = {counted(1), counted(2)};
    GVT_NULL(gv_join_schedules(two, 2, NULL, 1), GV_ERR_ARG, "boundaries is NULL");
    cr_assert_eq(frees, 2);
}

Test(schedules, join_owns_its_parts) {
    frees = 0;
    gv_schedule *keep = counted(7);
    gv_schedule *parts[3] = {counted(1), gv_schedule_retain(keep), counted(3)};
    gv_schedule *j = GVT_NN(gv_join_schedules(parts, 3, (int64_t[]){-2, 9}, 2));
    cr_assert_eq(at(j, -3), 1.0f);
    cr_assert_eq(at(j, -2), 7.0f);
    cr_assert_eq(at(j, 9), 3.0f);
    cr_assert_eq(frees, 0, "parts live while the join does");
    /* a join inside a join, and a join kept alive by another reference */
    gv_schedule *outer = GVT_NN(gv_join_schedules((gv_schedule *[]){gv_schedule_retain(j), counted(4)},
                                                  2, (int64_t[]){100}, 1));
    gv_schedule_free(j);
    cr_assert_eq(frees, 0);
    cr_assert_eq(at(outer, 0), 7.0f, "the inner join at step 0");
    cr_assert_eq(at(outer, 99), 3.0f);
    cr_assert_eq(at(outer, 100), 4.0f);
    gv_schedule_free(outer);
    cr_assert_eq(frees, 3, "the outer join frees its part and the inner join's two own parts");
    cr_assert_eq(at(keep, 0), 7.0f, "a part the caller retained survives");
    gv_schedule_free(keep);
    cr_assert_eq(frees, 4);
}

/* Warmup-cosine, warmup-exponential and sgdr are joins they build: on a
 * failed check nothing is leaked (ASan) and nothing is half-built. */
Test(schedules, composite_failures_leak_nothing) {
    for (int k = 0; k < 100; k++) {
        cr_assert_null(gv_warmup_cosine_decay_schedule(.init_value = 0, .peak_value = 1,
                                                       .warmup_steps = 5, .decay_steps = 5));
        cr_assert_null(gv_warmup_exponential_decay_schedule(.init_value = 0, .peak_value = 1,
                                                            .warmup_steps = 5, .transition_steps = 3,
                                                            .decay_rate = 0.5,
                                                            .transition_begin = 1LL << 33));
    }
    cr_assert(strstr(gv_last_error(), "warmup_exponential_decay_schedule: transition_begin") != NULL,
              "%s", gv_last_error());
}

/* A schedule's value is traced once per compile: the count is a traced
 * input, so a plan serves every step (no recompile per step). */
Test(schedules, one_plan_for_all_counts) {
    gv_schedule *s = GVT_NN(gv_cosine_onecycle_schedule(.transition_steps = 100, .peak_value = 0.1));
    gv_jit *jit = GVT_NN(gv_jit_new(schedule_step, s, NULL));
    gv_tensor *c = GVT_NN(gv_tensor_scalar(GV_I32, 0));
    gv_tree *in = gv_tree_new_leaf(c);
    for (int32_t k = 0; k < 300; k += 7) {
        *(int32_t *)gv_tensor_data(c) = k;
        gv_tree *out;
        GVT_OK(gv_jit_call(jit, in, &out));
        cr_assert_eq(*(const float *)gv_tensor_data_const(gv_tree_leaf_tensor(out)), at(s, k), "count %d", k);
    }
    cr_assert_eq(gv_jit_num_compiles(jit), 1);
    gv_tree_free(in), gv_tensor_free(c), gv_jit_free(jit), gv_schedule_free(s);
}

/* The options macros fill Optax's defaults. */
Test(schedules, defaults) {
    gv_cosine_decay_schedule_opts c = gv_cosine_decay_schedule_defaults();
    cr_assert(isnan(c.init_value) && c.decay_steps == GV_STEPS_NONE && c.alpha == 0 && c.exponent == 1);
    gv_warmup_cosine_decay_schedule_opts w = gv_warmup_cosine_decay_schedule_defaults();
    cr_assert(w.end_value == 0 && w.exponent == 1 && w.warmup_steps == GV_STEPS_NONE);
    gv_exponential_decay_opts e = gv_exponential_decay_defaults();
    cr_assert(e.transition_begin == 0 && !e.staircase && isnan(e.end_value) && isnan(e.decay_rate));
    gv_warmup_exponential_decay_schedule_opts we = gv_warmup_exponential_decay_schedule_defaults();
    cr_assert(we.transition_begin == 0 && !we.staircase && isnan(we.end_value));
    gv_linear_onecycle_schedule_opts l = gv_linear_onecycle_schedule_defaults();
    cr_assert(l.pct_start == 0.3 && l.pct_final == 0.85 && l.div_factor == 25 && l.final_div_factor == 1e4);
    gv_cosine_onecycle_schedule_opts o = gv_cosine_onecycle_schedule_defaults();
    cr_assert(o.pct_start == 0.3 && o.div_factor == 25 && o.final_div_factor == 1e4);
    gv_schedule *s = GVT_NN(gv_cosine_decay_schedule(.init_value = 0.1, .decay_steps = 10));
    cr_assert_str_eq(gv_schedule_name(s), "cosine_decay_schedule");
    cr_assert_eq(at(s, 10), 0.0f, "alpha 0 by default");
    gv_schedule_free(s);
}
