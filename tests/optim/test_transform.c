/* Gradient transformations: state trees (structure, paths, dtypes), chain
 * composition, masks, schedules inside optimisers, saturating counters,
 * and errors naming the transformation. */
#include "optim_testutil.h"
#include "optim/optim_internal.h"

/* params {"w": (2, 3), "b": (3,)} with small distinct values */
static gv_tree *params_wb(float scale) {
    gv_tree *p = gv_tree_new_dict();
    gv_tensor *w = gv_tensor_arange(GV_F32, 1, 7, 1), *w2 = gv_tensor_reshape(w, GV_DIMS(2, 3));
    gv_tensor *b = gv_tensor_full(GV_F32, GV_DIMS(3), 0.5);
    float *wd = gv_tensor_data(w2), *bd = gv_tensor_data(b);
    for (int i = 0; i < 6; i++) wd[i] *= scale;
    for (int i = 0; i < 3; i++) bd[i] = scale * (float)(i - 1);
    gv_tree_insert_tensor(p, "w", w2);
    gv_tree_insert_tensor(p, "b", b);
    gv_tensor_free(w), gv_tensor_free(w2), gv_tensor_free(b);
    return p;
}

static char *paths_str(const gv_tree *t) {
    char **paths;
    size_t n;
    GVT_OK(gv_tree_leaf_paths(t, &paths, &n));
    size_t len = 1;
    for (size_t i = 0; i < n; i++) len += strlen(paths[i]) + 1;
    char *s = calloc(len, 1);
    for (size_t i = 0; i < n; i++) strcat(strcat(s, i ? " " : ""), paths[i]);
    gv_tree_paths_free(paths, n);
    return s;
}

static void expect_state(gv_transform *tx, const char *paths, const char *repr_shapes) {
    gv_tree *p = params_wb(1);
    gv_tree *s = GVT_NN(gv_transform_init_eager(tx, p));
    char *got = paths_str(s), *shapes = GVT_NN(gv_tree_repr_shapes(s));
    cr_assert_str_eq(got, paths, "%s: leaf paths", gv_transform_name(tx));
    cr_assert_str_eq(shapes, repr_shapes, "%s: shapes", gv_transform_name(tx));
    free(got), free(shapes);
    gv_tree_free(s), gv_tree_free(p);
    gv_transform_free(tx);
}

/* Reference A17: optax's state trees, NamedTuples as dicts of their fields,
 * EmptyState as (). */
Test(state, structure_and_paths) {
    expect_state(gv_sgd(.learning_rate = 0.1), "", "((), ())");
    expect_state(gv_sgd(.learning_rate = 0.1, .momentum = 0.9), "0/trace/b 0/trace/w",
                 "({'trace': {'w': (2, 3), 'b': (3,)}}, ())");
    /* optax's momentum=0.0 (not None) keeps a trace of zeros */
    expect_state(gv_sgd(.learning_rate = 0.1, .momentum = 0), "0/trace/b 0/trace/w",
                 "({'trace': {'w': (2, 3), 'b': (3,)}}, ())");
    expect_state(gv_adam(.learning_rate = 0.1), "0/count 0/mu/b 0/mu/w 0/nu/b 0/nu/w",
                 "({'count': (), 'mu': {'w': (2, 3), 'b': (3,)}, 'nu': {'w': (2, 3), 'b': (3,)}}, ())");
    expect_state(gv_adam(.schedule = gv_constant_schedule(0.1)),
                 "0/count 0/mu/b 0/mu/w 0/nu/b 0/nu/w 1/count",
                 "({'count': (), 'mu': {'w': (2, 3), 'b': (3,)}, 'nu': {'w': (2, 3), 'b': (3,)}}, "
                 "{'count': ()})");
    expect_state(gv_adamw(.learning_rate = 0.1),
                 "0/count 0/mu/b 0/mu/w 0/nu/b 0/nu/w",
                 "({'count': (), 'mu': {'w': (2, 3), 'b': (3,)}, 'nu': {'w': (2, 3), 'b': (3,)}}, (), ())");
    gv_tree *mask = gv_tree_new_dict();
    gv_tree_insert(mask, "w", gv_tree_new_label("true"));
    gv_tree_insert(mask, "b", gv_tree_new_label("false"));
    expect_state(gv_adamw(.learning_rate = 0.1, .mask = mask),
                 "0/count 0/mu/b 0/mu/w 0/nu/b 0/nu/w",
                 "({'count': (), 'mu': {'w': (2, 3), 'b': (3,)}, 'nu': {'w': (2, 3), 'b': (3,)}}, "
                 "{'inner_state': ()}, ())");
    expect_state(gv_adamw(.schedule = gv_linear_schedule(0.1, 0, 10, 0)),
                 "0/count 0/mu/b 0/mu/w 0/nu/b 0/nu/w 2/count",
                 "({'count': (), 'mu': {'w': (2, 3), 'b': (3,)}, "
                 "'nu': {'w': (2, 3), 'b': (3,)}}, (), {'count': ()})");
    /* masked adam keeps no moments for masked-out leaves (MaskedNode = ()) */
    expect_state(gv_masked(gv_scale_by_adam(), mask),
                 "inner_state/count inner_state/mu/w inner_state/nu/w",
                 "{'inner_state': {'count': (), 'mu': {'w': (2, 3), 'b': ()}, 'nu': {'w': (2, 3), 'b': ()}}}");
    gv_tree_free(mask);
    expect_state(gv_chain(NULL, 0), "", "()");
}

Test(state, dtypes_and_zeros) {
    gv_transform *tx = GVT_NN(gv_adam(.learning_rate = 0.1));
    gv_tree *p = params_wb(1);
    gv_tree *s = GVT_NN(gv_transform_init_eager(tx, p));
    gv_tensor *c = GVT_NN(gv_tree_get_tensor(s, "0/count"));
    cr_assert_eq(gv_tensor_dtype(c), GV_I32);
    cr_assert_eq(gv_tensor_rank(c), 0);
    cr_assert_eq(*(const int32_t *)gv_tensor_data_const(c), 0);
    const float *mu = ot_f32(s, "0/mu/w");
    for (int i = 0; i < 6; i++) cr_assert_eq(mu[i], 0.0f);
    cr_assert_str_eq(gv_transform_name(tx), "adam");
    gv_tree_free(s), gv_tree_free(p), gv_transform_free(tx);
}

/* Run n updates with the same grads; returns the last updates and state. */
static void run_updates(gv_transform *tx, const gv_tree *p, const gv_tree *g, int n, gv_tree **u,
                        gv_tree **s) {
    *s = GVT_NN(gv_transform_init_eager(tx, p));
    *u = NULL;
    for (int k = 0; k < n; k++) {
        gv_tree *nu, *ns;
        GVT_OK(gv_transform_update_eager(tx, g, *s, p, &nu, &ns));
        gv_tree_free(*u), gv_tree_free(*s);
        *u = nu, *s = ns;
    }
}

Test(chain, composition_equals_alias) {
    gv_tree *p = params_wb(1), *g = params_wb(0.3f);
    gv_transform *parts[2] = {gv_scale_by_adam(), gv_scale_by_learning_rate(0.01)};
    gv_transform *a = GVT_NN(gv_chain(parts, 2)), *b = GVT_NN(gv_adam(.learning_rate = 0.01));
    gv_tree *ua, *sa, *ub, *sb;
    run_updates(a, p, g, 3, &ua, &sa);
    run_updates(b, p, g, 3, &ub, &sb);
    ot_expect_same_bits(ua, ub, "chain(scale_by_adam, scale_by_learning_rate) vs adam");
    ot_expect_same_bits(sa, sb, "states");
    gv_tree_free(ua), gv_tree_free(sa), gv_tree_free(ub), gv_tree_free(sb);
    gv_transform_free(a), gv_transform_free(b);
    /* chain(scale(2), scale(-0.5)): u * 2 * -0.5 = -u exactly; state ((), ()) */
    gv_transform *sc[2] = {gv_scale(2), gv_scale(-0.5)};
    gv_transform *c = GVT_NN(gv_chain(sc, 2));
    gv_tree *uc, *scs;
    run_updates(c, p, g, 1, &uc, &scs);
    const float *x = ot_f32(uc, "w"), *y = ot_f32(g, "w");
    for (int i = 0; i < 6; i++) cr_assert_eq(x[i], -y[i]);
    char *r = gv_tree_repr_shapes(scs);
    cr_assert_str_eq(r, "((), ())");
    free(r);
    gv_tree_free(uc), gv_tree_free(scs), gv_transform_free(c);
    /* the empty chain is the identity; set_to_zero zeroes */
    gv_transform *e = GVT_NN(gv_chain(NULL, 0)), *z = GVT_NN(gv_set_to_zero()), *id = GVT_NN(gv_identity());
    gv_tree *ue, *se, *uz, *sz, *ui, *si;
    run_updates(e, p, g, 1, &ue, &se);
    run_updates(z, p, g, 1, &uz, &sz);
    run_updates(id, p, g, 1, &ui, &si);
    ot_expect_same_bits(ue, g, "empty chain");
    ot_expect_same_bits(ui, g, "identity");
    const float *zz = ot_f32(uz, "w");
    for (int i = 0; i < 6; i++) cr_assert_eq(zz[i], 0.0f);
    gv_tree_free(ue), gv_tree_free(se), gv_tree_free(uz), gv_tree_free(sz), gv_tree_free(ui), gv_tree_free(si);
    gv_transform_free(e), gv_transform_free(z), gv_transform_free(id);
    gv_tree_free(p), gv_tree_free(g);
}

/* adamw(mask): masked-out leaves get Adam's update with NO decay (A7, A11). */
Test(chain, adamw_mask) {
    gv_tree *p = params_wb(1), *g = params_wb(0.3f);
    gv_tree *mask = gv_tree_new_dict();
    gv_tensor *t = gv_tensor_scalar(GV_BOOL, 1), *f = gv_tensor_scalar(GV_BOOL, 0);
    gv_tree_insert_tensor(mask, "w", t);
    gv_tree_insert_tensor(mask, "b", f);
    gv_transform *aw = GVT_NN(gv_adamw(.learning_rate = 0.01, .weight_decay = 0.5, .mask = mask));
    gv_transform *a = GVT_NN(gv_adam(.learning_rate = 0.01));
    gv_transform *awall = GVT_NN(gv_adamw(.learning_rate = 0.01, .weight_decay = 0.5));
    gv_tree *u1, *s1, *u2, *s2, *u3, *s3;
    run_updates(aw, p, g, 2, &u1, &s1);
    run_updates(a, p, g, 2, &u2, &s2);
    run_updates(awall, p, g, 2, &u3, &s3);
    const float *b1 = ot_f32(u1, "b"), *b2 = ot_f32(u2, "b");
    for (int i = 0; i < 3; i++) cr_assert_eq(b1[i], b2[i], "b is masked out: plain adam");
    ot_expect_same_bits(gv_tree_get(u1, "w"), gv_tree_get(u3, "w"), "w decays as in unmasked adamw");
    const float *w1 = ot_f32(u1, "w"), *w2 = ot_f32(u2, "w");
    for (int i = 0; i < 6; i++) cr_assert(w1[i] < w2[i], "decay pulls w down");
    /* a prefix mask: one label for the whole tree */
    gv_tree *all = gv_tree_new_label("False");
    gv_transform *none = GVT_NN(gv_adamw(.learning_rate = 0.01, .weight_decay = 0.5, .mask = all));
    gv_tree *u4, *s4;
    run_updates(none, p, g, 2, &u4, &s4);
    ot_expect_same_bits(u4, u2, "mask False everywhere = adam");
    gv_tree_free(u1), gv_tree_free(s1), gv_tree_free(u2), gv_tree_free(s2);
    gv_tree_free(u3), gv_tree_free(s3), gv_tree_free(u4), gv_tree_free(s4);
    gv_transform_free(aw), gv_transform_free(a), gv_transform_free(awall), gv_transform_free(none);
    gv_tree_free(all), gv_tree_free(mask), gv_tensor_free(t), gv_tensor_free(f);
    gv_tree_free(p), gv_tree_free(g);
}

/* A schedule reads the count BEFORE incrementing: the first update uses
 * lr(0) (A4); sgd(.schedule = linear 1 -> 0 over 10) scales by -1, -0.9, ... */
Test(chain, schedule_in_optimizer) {
    const float one[2] = {1, 2};
    gv_tree *p = ot_leaf(one, 2), *g = ot_leaf(one, 2);
    gv_transform *tx = GVT_NN(gv_sgd(.schedule = gv_linear_schedule(1.0, 0.0, 10, 0)));
    gv_tree *s = GVT_NN(gv_transform_init_eager(tx, p));
    const double lr[3] = {1.0, 0.899999976, 0.800000012};
    for (int k = 0; k < 3; k++) {
        gv_tree *u, *ns;
        GVT_OK(gv_transform_update_eager(tx, g, s, p, &u, &ns));
        ot_expect_exact(u, "", (double[]){-(double)(float)lr[k], -(double)((float)lr[k] * 2.0f)}, 2, "sgd(schedule)");
        double c;
        GVT_OK(gv_tensor_get(gv_tree_get_tensor(ns, "1/count"), NULL, &c));
        cr_assert_eq(c, k + 1);
        gv_tree_free(u), gv_tree_free(s);
        s = ns;
    }
    gv_tree_free(s), gv_transform_free(tx);
    /* adam with a constant schedule gives adam's numbers bit for bit */
    gv_transform *a = GVT_NN(gv_adam(.learning_rate = 0.01));
    gv_transform *b = GVT_NN(gv_adam(.schedule = gv_constant_schedule(0.01)));
    gv_tree *ua, *sa, *ub, *sb;
    run_updates(a, p, g, 2, &ua, &sa);
    run_updates(b, p, g, 2, &ub, &sb);
    ot_expect_same_bits(ua, ub, "adam(schedule) vs adam");
    double c1, c2;
    GVT_OK(gv_tensor_get(gv_tree_get_tensor(sb, "0/count"), NULL, &c1));
    GVT_OK(gv_tensor_get(gv_tree_get_tensor(sb, "1/count"), NULL, &c2));
    cr_assert(c1 == 2 && c2 == 2, "two separate counters with the same value");
    gv_tree_free(ua), gv_tree_free(sa), gv_tree_free(ub), gv_tree_free(sb);
    gv_transform_free(a), gv_transform_free(b), gv_tree_free(p), gv_tree_free(g);
}

/* ---- options: Optax's defaults, zero as a value, one learning-rate field ---- */

/* The defaults are optax's (the vectors in test_optim_vectors.c check the
 * numbers they give); the learning rate has none. */
Test(options, defaults_are_optax) {
    gv_sgd_opts s = gv_sgd_defaults();
    cr_assert(isnan(s.learning_rate) && !s.schedule && isnan(s.momentum) && !s.nesterov);
    gv_adam_opts a = gv_adam_defaults();
    cr_assert(isnan(a.learning_rate) && !a.schedule && !a.nesterov);
    cr_assert(a.b1 == 0.9 && a.b2 == 0.999 && a.eps == 1e-8 && a.eps_root == 0.0);
    gv_nadam_opts n = gv_nadam_defaults();
    cr_assert(isnan(n.learning_rate) && !n.schedule);
    cr_assert(n.b1 == 0.9 && n.b2 == 0.999 && n.eps == 1e-8 && n.eps_root == 0.0);
    gv_adamw_opts w = gv_adamw_defaults();
    cr_assert(isnan(w.learning_rate) && !w.schedule && !w.mask && !w.nesterov);
    cr_assert(w.b1 == 0.9 && w.b2 == 0.999 && w.eps == 1e-8 && w.eps_root == 0.0);
    cr_assert_eq(w.weight_decay, 1e-4);
    gv_scale_by_adam_opts sa = gv_scale_by_adam_defaults();
    cr_assert(sa.b1 == 0.9 && sa.b2 == 0.999 && sa.eps == 1e-8 && sa.eps_root == 0.0);
    cr_assert(!sa.nesterov);
    /* the macro and the function from the defaults make the same optimiser */
    w.learning_rate = 0.01;
    gv_transform *a1 = GVT_NN(gv_adamw_with(&w)), *a2 = GVT_NN(gv_adamw(.learning_rate = 0.01));
    gv_tree *p = params_wb(1), *g = params_wb(0.3f), *u1, *s1, *u2, *s2;
    run_updates(a1, p, g, 2, &u1, &s1);
    run_updates(a2, p, g, 2, &u2, &s2);
    ot_expect_same_bits(u1, u2, "adamw_with(defaults) vs adamw()");
    gv_tree_free(u1), gv_tree_free(s1), gv_tree_free(u2), gv_tree_free(s2);
    gv_transform_free(a1), gv_transform_free(a2), gv_tree_free(p), gv_tree_free(g);
}

/* A field set to 0 is 0, not "the default": adamw(weight_decay = 0) is
 * adam, scale_by_adam(b1 = 0) keeps mu = g, sgd(momentum = 0) traces. */
Test(options, zero_is_a_value) {
    gv_tree *p = params_wb(1), *g = params_wb(0.3f);
    gv_transform *w0 = GVT_NN(gv_adamw(.learning_rate = 0.01, .weight_decay = 0));
    gv_transform *a = GVT_NN(gv_adam(.learning_rate = 0.01));
    gv_transform *wd = GVT_NN(gv_adamw(.learning_rate = 0.01));
    gv_tree *uw0, *sw0, *ua, *sa, *uwd, *swd;
    run_updates(w0, p, g, 2, &uw0, &sw0);
    run_updates(a, p, g, 2, &ua, &sa);
    run_updates(wd, p, g, 2, &uwd, &swd);
    ot_expect_same_bits(uw0, ua, "adamw(weight_decay = 0) vs adam");
    ot_expect_same_bits(gv_tree_child(sw0, 0), gv_tree_child(sa, 0), "their adam states");
    cr_assert(ot_f32(uwd, "w")[0] != ot_f32(ua, "w")[0], "the default decay 1e-4 is not 0");
    gv_tree_free(uw0), gv_tree_free(sw0), gv_tree_free(ua), gv_tree_free(sa);
    gv_tree_free(uwd), gv_tree_free(swd);
    gv_transform_free(w0), gv_transform_free(a), gv_transform_free(wd);
    /* b1 = 0: mu = (1 - 0) g + 0 mu = g exactly, after one step */
    gv_transform *b0 = GVT_NN(gv_scale_by_adam(.b1 = 0));
    gv_tree *u, *st;
    run_updates(b0, p, g, 1, &u, &st);
    ot_expect_same_bits(gv_tree_get(st, "mu"), g, "scale_by_adam(b1 = 0): mu");
    gv_tree_free(u), gv_tree_free(st), gv_transform_free(b0);
    /* momentum = 0: a trace t = g + 0 t = g, so sgd's numbers */
    gv_transform *m0 = GVT_NN(gv_sgd(.learning_rate = 0.1, .momentum = 0));
    gv_transform *none = GVT_NN(gv_sgd(.learning_rate = 0.1));
    gv_tree *um, *sm, *un, *sn;
    run_updates(m0, p, g, 2, &um, &sm);
    run_updates(none, p, g, 2, &un, &sn);
    ot_expect_same_bits(um, un, "sgd(momentum = 0) vs sgd()");
    ot_expect_same_bits(gv_tree_get(sm, "0/trace"), g, "the trace of momentum 0");
    gv_tree_free(um), gv_tree_free(sm), gv_tree_free(un), gv_tree_free(sn);
    gv_transform_free(m0), gv_transform_free(none);
    gv_tree_free(p), gv_tree_free(g);
}

/* adamw(.schedule = s): state (adam, (), {"count"}), and each update is
 * -s(count) times adam's decayed update (float32, bit for bit). */
Test(options, schedule_through_the_same_constructor) {
    gv_tree *p = params_wb(1), *g = params_wb(0.3f);
    gv_transform *tx = GVT_NN(gv_adamw(.schedule = gv_linear_schedule(1e-2, 0, 10, 0)));
    gv_transform *parts[2] = {gv_scale_by_adam(), gv_add_decayed_weights(1e-4, NULL)};
    gv_transform *inner = GVT_NN(gv_chain(parts, 2));
    gv_schedule *lin = GVT_NN(gv_linear_schedule(1e-2, 0, 10, 0)); /* the same, to read */
    gv_tree *s = GVT_NN(gv_transform_init_eager(tx, p));
    gv_tree *si = GVT_NN(gv_transform_init_eager(inner, p));
    for (int k = 0; k < 3; k++) {
        gv_tree *u, *ns, *ui, *nsi;
        GVT_OK(gv_transform_update_eager(tx, g, s, p, &u, &ns));
        GVT_OK(gv_transform_update_eager(inner, g, si, p, &ui, &nsi));
        float lr;
        GVT_OK(gv_schedule_value_eager(lin, k, &lr));
        const float *x = ot_f32(u, "w"), *y = ot_f32(ui, "w");
        for (int i = 0; i < 6; i++)
            cr_assert_eq(x[i], -lr * y[i], "step %d, w[%d]: %.9g vs %.9g", k, i, (double)x[i],
                         (double)(-lr * y[i]));
        cr_assert_eq(*(const int32_t *)gv_tensor_data_const(gv_tree_get_tensor(ns, "2/count")),
                     k + 1);
        gv_tree_free(u), gv_tree_free(ui), gv_tree_free(s), gv_tree_free(si);
        s = ns, si = nsi;
    }
    gv_tree_free(s), gv_tree_free(si), gv_transform_free(tx), gv_transform_free(inner);
    gv_schedule_free(lin), gv_tree_free(p), gv_tree_free(g);
}

static void count_free(void *ud) { ++*(int *)ud; }
static gv_value const_lr(gv_value count, void *ud) { return gv_scalar(count.graph, GV_F32, 0.01); }

Test(options, learning_rate_errors) {
    int freed = 0;
    gv_schedule *s = GVT_NN(gv_schedule_new("mine", const_lr, &freed, count_free));
    GVT_NULL(gv_adam(.learning_rate = 0.01, .schedule = s), GV_ERR_ARG,
             "adam: both .learning_rate (0.01) and .schedule are given");
    cr_assert_eq(freed, 1, "the schedule is taken over, also on failure");
    /* a zero rate with a schedule is the schedule */
    s = GVT_NN(gv_schedule_new("mine", const_lr, &freed, count_free));
    gv_adam_opts o = gv_adam_defaults();
    o.learning_rate = 0, o.schedule = s;
    gv_transform *tx = GVT_NN(gv_adam_with(&o));
    gv_transform_free(tx);
    cr_assert_eq(freed, 2);
    GVT_NULL(gv_sgd(), GV_ERR_ARG, "sgd: no learning rate");
    GVT_NULL(gv_sgd(.schedule = NULL), GV_ERR_ARG, "give a finite .learning_rate or a .schedule");
    GVT_NULL(gv_adamw(.learning_rate = NAN), GV_ERR_ARG, "adamw: no learning rate");
    GVT_NULL(gv_nadam(.learning_rate = INFINITY), GV_ERR_ARG, "nadam: .learning_rate is inf");
    GVT_NULL(gv_adamw(.learning_rate = -INFINITY), GV_ERR_ARG, "must be finite");
    GVT_NULL(gv_adam_with(NULL), GV_ERR_ARG, "adam: opts is NULL");
    GVT_NULL(gv_scale_by_adam_with(NULL), GV_ERR_ARG, "scale_by_adam: opts is NULL");
}

/* Counters are int32 and saturate at INT32_MAX (safe_increment, 0.6). */
Test(state, count_saturates) {
    const float one[2] = {1, 2};
    gv_tree *p = ot_leaf(one, 2), *g = ot_leaf(one, 2);
    gv_transform *tx = GVT_NN(gv_adam(.learning_rate = 0.01));
    gv_tree *s = GVT_NN(gv_transform_init_eager(tx, p));
    *(int32_t *)gv_tensor_data(gv_tree_get_tensor(s, "0/count")) = INT32_MAX - 1;
    for (int k = 0; k < 2; k++) {
        gv_tree *u, *ns;
        GVT_OK(gv_transform_update_eager(tx, g, s, p, &u, &ns));
        cr_assert_eq(*(const int32_t *)gv_tensor_data_const(gv_tree_get_tensor(ns, "0/count")), INT32_MAX);
        const float *x = ot_f32(u, "");
        cr_assert(isfinite(x[0]) && isfinite(x[1]));
        gv_tree_free(u), gv_tree_free(s);
        s = ns;
    }
    gv_tree_free(s), gv_transform_free(tx), gv_tree_free(p), gv_tree_free(g);
}

/* The eager calls compile once per input signature. */
Test(state, eager_cache_reused) {
    gv_tree *p = params_wb(1), *g = params_wb(0.3f);
    gv_transform *tx = GVT_NN(gv_adam(.learning_rate = 0.01));
    gv_tree *u, *s;
    run_updates(tx, p, g, 4, &u, &s);
    cr_assert_not_null(tx->update_jit);
    cr_assert_eq(gv_jit_num_compiles(tx->update_jit), 1);
    gv_tree_free(u), gv_tree_free(s), gv_transform_free(tx), gv_tree_free(p), gv_tree_free(g);
}

/* ---- errors ---- */

Test(errors, mismatched_trees) {
    gv_tree *p = params_wb(1), *g = gv_tree_new_dict();
    gv_tensor *w = gv_tensor_zeros(GV_F32, GV_DIMS(2, 3)), *b = gv_tensor_zeros(GV_F32, GV_DIMS(4));
    gv_tree_insert_tensor(g, "w", w);
    gv_tree_insert_tensor(g, "b", b);
    gv_transform *tx = GVT_NN(gv_adam(.learning_rate = 0.01));
    gv_tree *s = GVT_NN(gv_transform_init_eager(tx, p)), *u = NULL, *ns = NULL;
    GVT_FAILS(gv_transform_update_eager(tx, g, s, p, &u, &ns), GV_ERR_SHAPE,
              "scale_by_adam: updates and state.mu differ: b: float32[4] vs float32[3]");
    cr_assert_null(u);
    gv_tree *g2 = gv_tree_new_dict();
    gv_tree_insert_tensor(g2, "w", w);
    GVT_FAILS(gv_transform_update_eager(tx, g2, s, p, &u, &ns), GV_ERR_STRUCTURE,
              "scale_by_adam: updates and state.mu differ");
    /* a state that is not this optimiser's */
    gv_tree *wrong = gv_tree_new_tuple();
    GVT_FAILS(gv_transform_update_eager(tx, p, wrong, p, &u, &ns), GV_ERR_STRUCTURE,
              "init first");
    gv_tree_free(wrong), gv_tree_free(g2), gv_tree_free(s), gv_transform_free(tx);
    gv_tree_free(p), gv_tree_free(g), gv_tensor_free(w), gv_tensor_free(b);
}

Test(errors, needs_params) {
    gv_tree *p = params_wb(1);
    gv_transform *tx = GVT_NN(gv_adamw(.learning_rate = 0.01));
    gv_tree *s = GVT_NN(gv_transform_init_eager(tx, p)), *u = NULL, *ns = NULL;
    GVT_FAILS(gv_transform_update_eager(tx, p, s, NULL, &u, &ns), GV_ERR_ARG,
              "add_decayed_weights: this transformation requires the current value of the parameters");
    /* adam does not need them */
    gv_transform *a = GVT_NN(gv_adam(.learning_rate = 0.01));
    gv_tree *sa = GVT_NN(gv_transform_init_eager(a, p));
    GVT_OK(gv_transform_update_eager(a, p, sa, NULL, &u, &ns));
    gv_tree_free(u), gv_tree_free(ns), gv_tree_free(sa), gv_transform_free(a);
    gv_tree_free(s), gv_transform_free(tx), gv_tree_free(p);
}

Test(errors, bad_mask_and_null_parts) {
    gv_tree *p = params_wb(1);
    gv_tree *mask = gv_tree_new_dict();
    gv_tree_insert(mask, "w", gv_tree_new_label("yes"));
    gv_tree_insert(mask, "b", gv_tree_new_label("false"));
    gv_transform *tx = GVT_NN(gv_add_decayed_weights(0.1, mask));
    GVT_NULL(gv_transform_init_eager(tx, p), GV_ERR_ARG, "masked: mask leaf at w");
    gv_transform_free(tx);
    gv_tree *m2 = gv_tree_new_dict();
    gv_tree_insert(m2, "x", gv_tree_new_label("true"));
    tx = GVT_NN(gv_add_decayed_weights(0.1, m2));
    GVT_NULL(gv_transform_init_eager(tx, p), GV_ERR_STRUCTURE, "masked: the mask does not fit");
    gv_transform_free(tx);
    gv_transform *parts[2] = {gv_identity(), NULL};
    GVT_NULL(gv_chain(parts, 2), GV_ERR_ARG, "chain: transformation 1 of 2 is NULL");
    GVT_NULL(gv_scale_by_learning_rate_schedule(NULL), GV_ERR_ARG, "the schedule is NULL");
    gv_tree_free(m2), gv_tree_free(mask), gv_tree_free(p);
}

/* Traced: the error is both returned and the graph's sticky error, so a
 * gv_trace of a step that ignores the status fails with it. */
static gv_tree *bad_step(gv_graph *g, const gv_tree *in, void *ud) {
    gv_tree *u = NULL, *s = NULL;
    gv_status st = gv_transform_update(ud, g, gv_tree_child(in, 0), gv_tree_child(in, 1), NULL, &u, &s);
    cr_assert_eq(st, GV_ERR_ARG);
    cr_assert(strstr(gv_last_error(), "add_decayed_weights") != NULL, "%s", gv_last_error());
    cr_assert_null(u);
    return gv_tree_new_value_leaf(gv_tree_get_value(in, "0/w"));
}

Test(errors, traced_error_is_sticky) {
    gv_tree *p = params_wb(1);
    gv_transform *tx = GVT_NN(gv_adamw(.learning_rate = 0.01));
    gv_tree *s = GVT_NN(gv_transform_init_eager(tx, p));
    gv_tree *in = gv_tree_new_tuple();
    gv_tree_append(in, gv_tree_clone(p));
    gv_tree_append(in, gv_tree_clone(s));
    GVT_NULL(gv_trace(bad_step, tx, in), GV_ERR_ARG, "adamw/add_decayed_weights: this transformation requires");
    gv_tree_free(in), gv_tree_free(s), gv_transform_free(tx), gv_tree_free(p);
}

/* ---- user-defined transformations (gv_transform_new) ---- */

/* "half": u <- factor * u with a step counter {"count"}; mode picks a way
 * to misbehave for the error tests. */
typedef enum { HALF_OK, HALF_FAIL_MSG, HALF_FAIL_SILENT, HALF_NO_STATE, HALF_WRONG_TREE,
               HALF_TENSOR_STATE } half_mode;
typedef struct half_ctx {
    double factor;
    half_mode mode;
    int *freed;
} half_ctx;

static void half_free(void *ud) {
    half_ctx *c = ud;
    ++*c->freed;
    free(c);
}

static gv_tree *half_init(gv_graph *g, const gv_tree *params, void *ud) {
    const half_ctx *c = ud;
    gv_tree *s = gv_tree_new_dict();
    if (c->mode == HALF_TENSOR_STATE) {
        gv_tensor *t = gv_tensor_scalar(GV_I32, 0);
        gv_tree_insert_tensor(s, "count", t);
        gv_tensor_free(t);
    } else {
        gv_tree_insert_value(s, "count", gv_scalar(g, GV_I32, 0));
    }
    return s;
}

static gv_status half_update(gv_graph *g, const gv_tree *updates, const gv_tree *state,
                             const gv_tree *params, gv_tree **nu, gv_tree **ns, void *ud) {
    const half_ctx *c = ud;
    if (c->mode == HALF_FAIL_MSG) {
        gv_graph_fail(g, GV_ERR_SHAPE, "the factor does not fit");
        return GV_ERR_SHAPE;
    }
    if (c->mode == HALF_FAIL_SILENT) return GV_ERR_ARG;
    char **paths;
    size_t n;
    if (gv_tree_leaf_paths(updates, &paths, &n) != GV_OK) return gv_last_status();
    *nu = gv_tree_clone(updates);
    for (size_t i = 0; i < n; i++) {
        gv_value v = gv_tree_get_value(updates, paths[i]);
        gv_tree_set_value(*nu, paths[i], gv_mul_scalar(v, c->factor));
    }
    gv_tree_paths_free(paths, n);
    if (c->mode == HALF_WRONG_TREE) gv_tree_remove(*nu, "b");
    if (c->mode == HALF_NO_STATE) return GV_OK;
    *ns = gv_tree_new_dict();
    gv_tree_insert_value(*ns, "count", gv_add_scalar(gv_tree_get_value(state, "count"), 1));
    return GV_OK;
}

static gv_transform *half_new(half_mode mode, int *freed) {
    half_ctx *c = malloc(sizeof *c);
    *c = (half_ctx){0.5, mode, freed};
    return gv_transform_new("half", half_init, half_update, c, half_free);
}

/* (params, state, grads) -> (params', state'), for the compiled step */
static gv_tree *user_step(gv_graph *g, const gv_tree *in, void *ud) {
    gv_tree *u, *s;
    if (gv_transform_update(ud, g, gv_tree_child(in, 2), gv_tree_child(in, 1),
                            gv_tree_child(in, 0), &u, &s) != GV_OK)
        return NULL;
    gv_tree *np = gv_apply_updates(g, gv_tree_child(in, 0), u);
    gv_tree_free(u);
    gv_tree *out = gv_tree_new_tuple();
    gv_tree_append(out, np);
    gv_tree_append(out, s);
    return out;
}

/* chain(half, sgd(0.1)): each update is (0.5 g) * -0.1f and the counter
 * counts, the same compiled into a step as eager, bit for bit. */
Test(user, chained_with_sgd_compiled_and_eager) {
    int freed = 0;
    gv_transform *parts[2] = {half_new(HALF_OK, &freed), gv_sgd(.learning_rate = 0.1)};
    gv_transform *tx = GVT_NN(gv_chain(parts, 2));
    cr_assert_str_eq(gv_transform_name(parts[0]), "half");
    gv_tree *p = params_wb(1), *g = params_wb(0.3f);
    gv_tree *s = GVT_NN(gv_transform_init_eager(tx, p));
    char *r = GVT_NN(gv_tree_repr_shapes(s));
    cr_assert_str_eq(r, "({'count': ()}, ((), ()))");
    free(r);
    gv_tree *in = gv_tree_new_tuple();
    gv_tree_append(in, gv_tree_copy(p));
    gv_tree_append(in, gv_tree_copy(s));
    gv_tree_append(in, gv_tree_clone(g));
    gv_fn *f = GVT_NN(gv_trace(user_step, tx, in));
    gv_plan *plan = GVT_NN(gv_plan_compile(f, NULL));
    gv_tree *out = GVT_NN(gv_plan_new_outputs(plan));
    const float *gw = ot_f32(g, "w");
    for (int k = 0; k < 3; k++) {
        GVT_OK(gv_plan_run(plan, in, out));
        gv_tree_set(in, "0", gv_tree_copy(gv_tree_child(out, 0)));
        gv_tree_set(in, "1", gv_tree_copy(gv_tree_child(out, 1)));
        gv_tree *u, *ns;
        GVT_OK(gv_transform_update_eager(tx, g, s, p, &u, &ns));
        const float *uw = ot_f32(u, "w");
        for (int i = 0; i < 6; i++)
            cr_assert_eq(uw[i], 0.5f * gw[i] * (float)-0.1, "step %d, w[%d]", k, i);
        gv_tree *np = GVT_NN(gv_apply_updates_eager(p, u));
        gv_tree_free(u), gv_tree_free(s), gv_tree_free(p);
        p = np, s = ns;
        cr_assert_eq(*(const int32_t *)gv_tensor_data_const(gv_tree_get_tensor(s, "0/count")),
                     k + 1);
    }
    ot_expect_same_bits(gv_tree_child(out, 0), p, "compiled vs eager params");
    ot_expect_same_bits(gv_tree_child(out, 1), s, "compiled vs eager state");
    gv_tree_free(out), gv_plan_free(plan), gv_fn_free(f), gv_tree_free(in);
    gv_tree_free(s), gv_tree_free(p), gv_tree_free(g);
    cr_assert_eq(freed, 0);
    gv_transform_free(tx);
    cr_assert_eq(freed, 1, "the userdata is freed with the transform");
}

/* masked(half, {w: true, b: false}): b passes through, the counter is the
 * inner state. */
Test(user, under_a_mask) {
    int freed = 0;
    gv_tree *mask = gv_tree_new_dict();
    gv_tree_insert(mask, "w", gv_tree_new_label("true"));
    gv_tree_insert(mask, "b", gv_tree_new_label("false"));
    gv_transform *tx = GVT_NN(gv_masked(half_new(HALF_OK, &freed), mask));
    gv_tree *p = params_wb(1), *g = params_wb(0.3f), *u, *s;
    run_updates(tx, p, g, 2, &u, &s);
    ot_expect_same_bits(gv_tree_get(u, "b"), gv_tree_get(g, "b"), "masked out");
    const float *uw = ot_f32(u, "w"), *gw = ot_f32(g, "w");
    for (int i = 0; i < 6; i++) cr_assert_eq(uw[i], 0.5f * gw[i]);
    gv_tensor *count = GVT_NN(gv_tree_get_tensor(s, "inner_state/count"));
    cr_assert_eq(*(const int32_t *)gv_tensor_data_const(count), 2);
    gv_tree_free(u), gv_tree_free(s), gv_tree_free(p), gv_tree_free(g), gv_tree_free(mask);
    gv_transform_free(tx);
    cr_assert_eq(freed, 1);
}

static void expect_user_error(half_mode mode, bool at_init, gv_status st, const char *needle) {
    int freed = 0;
    gv_transform *tx = GVT_NN(half_new(mode, &freed));
    gv_tree *p = params_wb(1);
    if (at_init) {
        GVT_NULL(gv_transform_init_eager(tx, p), st, needle);
    } else {
        gv_tree *s = GVT_NN(gv_transform_init_eager(tx, p)), *u = NULL, *ns = NULL;
        GVT_FAILS(gv_transform_update_eager(tx, p, s, p, &u, &ns), st, needle);
        cr_assert(!u && !ns);
        gv_tree_free(s);
    }
    gv_tree_free(p), gv_transform_free(tx);
    cr_assert_eq(freed, 1);
}

Test(user, errors_name_the_transform) {
    expect_user_error(HALF_FAIL_MSG, false, GV_ERR_SHAPE, "half: the factor does not fit");
    expect_user_error(HALF_FAIL_SILENT, false, GV_ERR_ARG,
                      "half: update failed (GV_ERR_ARG) and set no message");
    expect_user_error(HALF_NO_STATE, false, GV_ERR_ARG,
                      "half: update returned GV_OK without new_state");
    expect_user_error(HALF_WRONG_TREE, false, GV_ERR_STRUCTURE,
                      "half: updates and the new updates differ");
    expect_user_error(HALF_TENSOR_STATE, true, GV_ERR_ARG, "half: init returned a state");
    cr_assert(strstr(gv_last_error(), "the leaf at count is a tensor, not a traced value"),
              "%s", gv_last_error());
    /* the constructor checks its functions and frees the userdata on failure */
    int freed = 0;
    half_ctx *c = malloc(sizeof *c);
    *c = (half_ctx){0.5, HALF_OK, &freed};
    GVT_NULL(gv_transform_new("half", half_init, NULL, c, half_free), GV_ERR_ARG,
             "gv_transform_new: update is NULL");
    cr_assert_eq(freed, 1);
    gv_transform *unnamed = GVT_NN(gv_transform_new(NULL, half_init, half_update, NULL, NULL));
    cr_assert_str_eq(gv_transform_name(unnamed), "transform");
    gv_transform_free(unnamed);
}
