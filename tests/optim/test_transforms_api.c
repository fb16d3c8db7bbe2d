/* clip, clip_by_global_norm, ema, apply_if_finite, MultiSteps,
 * multi_transform and inject_hyperparams beyond their numbers (those are
 * in test_transforms_golden.c): argument checks with their messages,
 * ownership on failure (no leaks under ASan), label trees, hyper-parameters
 * changed between steps of ONE compiled plan, and checkpoints: a run saved
 * and resumed through the checkpoint manager continues bit for bit. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "optim_testutil.h"
#include "grove/pack.h"
#include "tree/tree_internal.h"

static void expect_fail(void *tx, const char *needle) {
    cr_assert_null(tx, "constructor should fail (%s)", needle);
    cr_assert_eq(gv_last_status(), GV_ERR_ARG, "status %s: %s", gv_status_name(gv_last_status()),
                 gv_last_error());
    cr_assert(strstr(gv_last_error(), needle), "message '%s' should mention '%s'", gv_last_error(),
              needle);
}

/* params {"b": [3], "w": [2, 3]} with a pattern */
static gv_tree *params2(float scale) {
    float w[6] = {0.5f, -1, 2, 0, 1.5f, -0.25f}, b[3] = {0.1f, -0.2f, 0.3f};
    for (int i = 0; i < 6; i++) w[i] *= scale;
    for (int i = 0; i < 3; i++) b[i] *= scale;
    gv_tree *t = GVT_NN(gv_tree_new_dict());
    gv_tensor *tw = GVT_NN(gv_tensor_from_data(GV_F32, GV_DIMS(2, 3), w, sizeof w));
    gv_tensor *tb = GVT_NN(gv_tensor_from_data(GV_F32, GV_DIMS(3), b, sizeof b));
    GVT_OK(gv_tree_insert_tensor(t, "w", tw));
    GVT_OK(gv_tree_insert_tensor(t, "b", tb));
    gv_tensor_free(tw), gv_tensor_free(tb);
    return t;
}

Test(arguments, learning_rates) {
    expect_fail(gv_sgd(.learning_rate = -0.1), ".learning_rate is -0.1; it must be finite and >= 0");
    expect_fail(gv_adam(.learning_rate = -1e-3), "must be finite and >= 0");
    expect_fail(gv_adamw(.learning_rate = INFINITY), "must be finite");
    expect_fail(gv_nadam(), "no learning rate");
    gv_transform *zero = GVT_NN(gv_adam(.learning_rate = 0)); /* 0 freezes: allowed */
    gv_transform_free(zero);
}

Test(arguments, clipping_and_ema) {
    expect_fail(gv_clip(-1.0), "max_delta");
    expect_fail(gv_clip(GV_NONE), "max_delta");
    expect_fail(gv_clip_by_global_norm(-0.5), "max_norm");
    expect_fail(gv_ema(INFINITY, true), "decay");
    gv_transform *ok = GVT_NN(gv_clip_by_global_norm(0.0)); /* 0 is allowed, as in optax */
    gv_transform_free(ok);
}

Test(arguments, apply_if_finite_and_multi_steps) {
    expect_fail(gv_apply_if_finite(NULL, 1), "inner");
    expect_fail(gv_apply_if_finite(gv_sgd(.learning_rate = 1), -1), "max_consecutive_errors");
    expect_fail(gv_multi_steps(gv_sgd(.learning_rate = 1), .every_k = 0), "every_k");
    expect_fail(gv_multi_steps(gv_sgd(.learning_rate = 1), .every_k = -3), "every_k");
    expect_fail(gv_multi_steps(NULL, .every_k = 2), "inner");
    expect_fail(gv_multi_steps(gv_sgd(.learning_rate = 1), .every_k = 2, .skip = GV_SKIP_LARGE_UPDATES),
                "max_squared_norm");
}

static gv_tree *labels_fn(const gv_tree *t, void *ud) { return gv_labels("'x'"); }

Test(arguments, multi_transform) {
    /* a label naming no transformation: the path and the label, and the ones there are */
    expect_fail(gv_multi_transform(GV_TRANSFORMS({"train", gv_adam(.learning_rate = 1e-3)},
                                                 {"freeze", gv_set_to_zero()}),
                                   gv_labels("{'backbone': 'frozen', 'head': 'train'}")),
                "at backbone is 'frozen', which names no transformation");
    expect_fail(gv_multi_transform(GV_TRANSFORMS({"a", gv_set_to_zero()}, {"a", gv_identity()}),
                                   gv_labels("'a'")),
                "same label");
    expect_fail(gv_multi_transform(GV_TRANSFORMS({"a", gv_set_to_zero()}, {"b", NULL}), gv_labels("'a'")),
                "NULL");
    expect_fail(gv_multi_transform(GV_TRANSFORMS({"a", gv_set_to_zero()}), NULL), "param_labels");
    expect_fail(gv_multi_transform(GV_TRANSFORMS({"", gv_set_to_zero()}), gv_labels("'a'")), "empty");
    expect_fail(gv_multi_transform_fn(GV_TRANSFORMS({"a", gv_set_to_zero()}), NULL, NULL), "function");

    /* a label tree that is not a prefix of the params: an error at init naming it */
    gv_transform *tx = GVT_NN(gv_multi_transform(GV_TRANSFORMS({"a", gv_set_to_zero()}),
                                                 gv_labels("{'w': 'a', 'head': 'a'}")));
    gv_tree *p = params2(1);
    cr_assert_null(gv_transform_init_eager(tx, p));
    cr_assert(strstr(gv_last_error(), "param_labels is not the params' structure or a prefix"),
              "%s", gv_last_error());
    gv_transform_free(tx);
    /* a labelling function giving an unknown label: an error at init */
    tx = GVT_NN(gv_multi_transform_fn(GV_TRANSFORMS({"a", gv_set_to_zero()}), labels_fn, NULL));
    cr_assert_null(gv_transform_init_eager(tx, p));
    cr_assert(strstr(gv_last_error(), "'x', which names no transformation"), "%s", gv_last_error());
    gv_transform_free(tx);
    gv_tree_free(p);
}

/* A nested constructor's failure keeps its reason: the outer constructor
 * names what is NULL and quotes the error that made it so. */
Test(arguments, nested_failures_keep_their_cause) {
    expect_fail(gv_multi_steps(gv_chain((gv_transform *[]){gv_clip_by_global_norm(1.0), gv_adamw()}, 2),
                               .every_k = 2),
                "MultiSteps: inner is NULL (a failed constructor? the last error: chain: "
                "transformation 1 of 2 is NULL (a failed constructor? the last error: adamw: no "
                "learning rate");
    expect_fail(gv_adamw(.schedule = gv_warmup_cosine_decay_schedule(
                             .init_value = 0, .peak_value = 1, .warmup_steps = 100, .decay_steps = 10)),
                "decay_steps");
    expect_fail(gv_multi_transform(GV_TRANSFORMS({"train", gv_adam()}, {"freeze", gv_set_to_zero()}),
                                   gv_labels("'train'")),
                "the transformation of label 'train' is NULL (a failed constructor? the last error: "
                "adam: no learning rate");
    expect_fail(gv_inject_hyperparams(gv_sgd(.learning_rate = -1)), "sgd: .learning_rate is -1");
    expect_fail(gv_multi_steps(gv_sgd(.learning_rate = 1)), "give .every_k (>= 1) or .every_k_fn");
}

Test(labels, literal) {
    gv_tree *t = GVT_NN(gv_labels(" {'params': {'bert': \"freeze\", 'head': ['a', ('b',)]}} "));
    cr_assert_str_eq(gv_tree_leaf_label(gv_tree_get(t, "params/bert")), "freeze");
    cr_assert_str_eq(gv_tree_leaf_label(gv_tree_get(t, "params/head/1/0")), "b");
    cr_assert_eq(gv_tree_kind_of(gv_tree_get(t, "params/head/1")), GV_TREE_TUPLE);
    cr_assert_eq(gv_tree_kind_of(gv_tree_get(t, "params/head")), GV_TREE_LIST);
    gv_tree_free(t);
    t = GVT_NN(gv_labels("'it\\'s'"));
    cr_assert_str_eq(gv_tree_leaf_label(t), "it's");
    gv_tree_free(t);
    const char *bad[] = {"{'a': 'x'", "{'a' 'x'}", "{a: 'x'}", "['x' 'y']", "'x", "", "'x' y", "{'a': 1}"};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        cr_assert_null(gv_labels(bad[i]), "'%s' should not parse", bad[i]);
        cr_assert(strstr(gv_last_error(), "gv_labels: ") && strstr(gv_last_error(), "offset"), "%s",
                  gv_last_error());
    }
}

Test(arguments, inject_hyperparams) {
    /* one name, two values: the parts must be injected separately */
    expect_fail(gv_inject_hyperparams(gv_chain((gv_transform *[]){gv_scale(0.5), gv_scale(2.0)}, 2)),
                "'step_size' has two values");
    expect_fail(gv_inject_hyperparams(NULL), "inner");
    gv_transform *tx = GVT_NN(gv_inject_hyperparams(gv_sgd(.schedule = gv_constant_schedule(0.1))));
    gv_tree *p = params2(1), *s = GVT_NN(gv_transform_init_eager(tx, p));
    cr_assert_eq(gv_hyperparam_set(s, "momentum", 0.9), GV_ERR_ARG);
    cr_assert(strstr(gv_last_error(), "no hyper-parameter 'momentum' (the state has 'learning_rate')"),
              "%s", gv_last_error());
    cr_assert_eq(gv_hyperparam_set(s, "learning_rate", 0.2), GV_ERR_ARG);
    cr_assert(strstr(gv_last_error(), "scheduled"), "%s", gv_last_error());
    cr_assert_eq(gv_hyperparam_set(p, "learning_rate", 0.2), GV_ERR_NOT_FOUND);
    cr_assert(strstr(gv_last_error(), "holds no inject_hyperparams state"), "%s", gv_last_error());
    gv_tree_free(s), gv_tree_free(p);
    gv_transform_free(tx);
}

/* gv_hyperparam_set/get find the one inject state in a bigger tree (a train
 * state, MultiSteps around it), and refuse to guess between two. */
Test(inject_hyperparams, found_inside_a_train_state) {
    gv_transform *tx = GVT_NN(gv_multi_steps(gv_inject_hyperparams(gv_adam(.learning_rate = 1e-2)),
                                             .every_k = 2));
    gv_tree *p = params2(1), *ts = GVT_NN(gv_train_state_create(tx, p));
    GVT_OK(gv_hyperparam_set(ts, "b1", 0.5));
    double v;
    GVT_OK(gv_hyperparam_get(gv_tree_get(ts, "opt_state"), "b1", &v));
    cr_assert_eq(v, 0.5);
    GVT_OK(gv_hyperparam_get(gv_tree_get(ts, "opt_state/inner_opt_state"), "b1", &v));
    cr_assert_eq(v, 0.5);
    gv_transform *two = GVT_NN(GV_CHAIN(gv_inject_hyperparams(gv_sgd(.learning_rate = 0.1)),
                                        gv_inject_hyperparams(gv_sgd(.learning_rate = 0.2))));
    gv_tree *s2 = GVT_NN(gv_transform_init_eager(two, p));
    cr_assert_eq(gv_hyperparam_get(s2, "learning_rate", &v), GV_ERR_ARG);
    cr_assert(strstr(gv_last_error(), "holds 2 inject_hyperparams states (at 0, 1)"), "%s", gv_last_error());
    GVT_OK(gv_hyperparam_get(gv_tree_get(s2, "1"), "learning_rate", &v));
    cr_assert_float_eq(v, 0.2, 1e-7);
    gv_tree_free(s2), gv_tree_free(ts), gv_tree_free(p);
    gv_transform_free(tx), gv_transform_free(two);
}

static const char *bias_zero(const char *path, const gv_tree *leaf, void *ud) {
    (*(int *)ud)++;
    return gv_value_rank(gv_tree_leaf_value(leaf)) == 1 ? "zero" : "adam";
}

static gv_tree *labels_by_rank(const gv_tree *t, void *ud) { return gv_label_tree(t, bias_zero, ud); }

static const char *null_label(const char *path, const gv_tree *leaf, void *ud) { return NULL; }

/* optax.multi_transform(..., lambda p: tree_map(lambda x: 'zero' if x.ndim == 1 else 'adam', p)) */
Test(labels, label_tree_from_a_function) {
    int calls = 0;
    gv_transform *tx = GVT_NN(gv_multi_transform_fn(
        GV_TRANSFORMS({"adam", gv_adam(.learning_rate = 1e-2)}, {"zero", gv_set_to_zero()}),
        labels_by_rank, &calls));
    gv_tree *p = params2(1), *g = params2(0.5), *s = GVT_NN(gv_transform_init_eager(tx, p)), *u, *ns;
    GVT_OK(gv_transform_update_eager(tx, g, s, p, &u, &ns));
    cr_assert_eq(calls, 4, "two leaves, at init and at update");
    const float *ub = ot_f32(u, "b"), *uw = ot_f32(u, "w");
    for (int i = 0; i < 3; i++) cr_assert_eq(ub[i], 0.0f, "the bias (rank 1) is frozen");
    cr_assert_neq(uw[0], 0.0f, "the kernel trains");
    gv_tree *t = GVT_NN(gv_labels("{'a': ('x', 'y')}"));
    cr_assert_null(gv_label_tree(t, null_label, NULL));
    cr_assert(strstr(gv_last_error(), "returned NULL at a/0"), "%s", gv_last_error());
    gv_tree_free(t), gv_tree_free(u), gv_tree_free(ns), gv_tree_free(s), gv_tree_free(p), gv_tree_free(g);
    gv_transform_free(tx);
}

/* ---- hyper-parameters change between steps of one compiled plan ---- */

typedef struct step_ctx {
    gv_transform *tx;
} step_ctx;

/* (params, opt_state, grads) -> (params', opt_state') */
static gv_tree *train_step(gv_graph *g, const gv_tree *in, void *ud) {
    step_ctx *c = ud;
    const gv_tree *p = gv_tree_child(in, 0);
    gv_tree *u, *s;
    if (gv_transform_update(c->tx, g, gv_tree_child(in, 2), gv_tree_child(in, 1), p, &u, &s) != GV_OK)
        return NULL;
    return gv_tuple(g, gv_apply_updates(g, p, u), s);
}

Test(inject_hyperparams, set_between_steps_without_recompiling) {
    step_ctx c = {GVT_NN(gv_inject_hyperparams(gv_adamw(.learning_rate = 1e-2)))};
    gv_tree *p = params2(1), *g = params2(0.5), *s = GVT_NN(gv_transform_init_eager(c.tx, p));
    double lr;
    GVT_OK(gv_hyperparam_get(s, "learning_rate", &lr));
    cr_assert_float_eq(lr, 1e-2, 1e-9);
    GVT_OK(gv_hyperparam_get(s, "weight_decay", &lr));
    cr_assert_float_eq(lr, 1e-4, 1e-10); /* float32 1e-4 */
    gv_jit *jit = GVT_NN(gv_jit_new(train_step, &c, NULL));
    float w_before[3][6];
    for (int step = 0; step < 3; step++) {
        if (step == 2) GVT_OK(gv_hyperparam_set(s, "learning_rate", 0.0)); /* a frozen step */
        gv_tree *in = GVT_NN(gv_tree_tuple_take(3, (gv_tree *[]){gv_tree_clone(p), gv_tree_clone(s),
                                                                gv_tree_clone(g)}));
        gv_tree *out;
        GVT_OK(gv_jit_call(jit, in, &out));
        gv_tree_free(in), gv_tree_free(p), gv_tree_free(s);
        p = GVT_NN(gv_tree_copy(gv_tree_child(out, 0)));
        s = GVT_NN(gv_tree_copy(gv_tree_child(out, 1)));
        memcpy(w_before[step], ot_f32(p, "w"), sizeof w_before[step]);
    }
    cr_assert_eq(gv_jit_num_compiles(jit), 1, "a hyper-parameter change must not recompile");
    cr_assert(memcmp(w_before[0], w_before[1], sizeof w_before[0]) != 0, "lr 1e-2 moves the params");
    cr_assert(memcmp(w_before[1], w_before[2], sizeof w_before[0]) == 0,
              "with learning_rate 0 the step leaves the params as they were");
    GVT_OK(gv_hyperparam_get(s, "learning_rate", &lr));
    cr_assert_eq(lr, 0.0);
    gv_jit_free(jit);
    gv_tree_free(p), gv_tree_free(s), gv_tree_free(g);
    gv_transform_free(c.tx);
}

/* ---- checkpoints: save, restore, resume bit for bit ---- */

static gv_value every_k(gv_value gs, void *ud) {
    gv_graph *g = gs.graph;
    return gv_select(gv_lt(gs, gv_scalar(g, GV_I32, 1)), gv_scalar(g, GV_I32, 2), gv_scalar(g, GV_I32, 3));
}

static gv_transform *make(int i) {
    switch (i) {
    case 0: return gv_clip(0.3);
    case 1: return gv_chain((gv_transform *[]){gv_clip_by_global_norm(1.0), gv_adam(.learning_rate = 1e-2),
                                               gv_ema(0.999, true)}, 3);
    case 2: return gv_apply_if_finite(gv_adam(.learning_rate = 1e-2), 1);
    case 3: return gv_multi_steps(gv_adam(.learning_rate = 1e-2), .every_k = 3, .skip = GV_SKIP_NOT_FINITE);
    case 4: return gv_multi_steps(gv_sgd(.learning_rate = 0.1, .momentum = 0.9), .every_k_fn = every_k,
                                  .skip = GV_SKIP_LARGE_UPDATES, .max_squared_norm = 100);
    case 5: return gv_multi_transform(GV_TRANSFORMS({"train", gv_adam(.learning_rate = 1e-3)},
                                                    {"freeze", gv_set_to_zero()}),
                                      gv_labels("{'b': 'freeze', 'w': 'train'}"));
    case 6: return gv_inject_hyperparams(gv_sgd(.schedule = gv_linear_schedule(0.1, 0.01, 5, 1),
                                                .momentum = 0.9));
    case 7: return gv_inject_hyperparams(gv_adamw(.learning_rate = 1e-2, .mask = NULL));
    /* the other optimisers (optimizers.h) */
    case 8: return gv_rmsprop(.learning_rate = 1e-2, .centered = true, .momentum = 0.9);
    case 9: return gv_adagrad(.learning_rate = 1e-2);
    case 10: return gv_adafactor(.learning_rate = 1e-2, .momentum = 0.9);
    case 11: return gv_lion(.learning_rate = 1e-3);
    case 12: return gv_lamb(.learning_rate = 1e-3);
    case 13: return gv_adabelief(.learning_rate = 1e-3);
    case 14: return gv_adamax(.schedule = gv_warmup_constant_schedule(0, 1e-2, 3));
    case 15: return gv_inject_hyperparams(gv_rmsprop(.learning_rate = 1e-2, .bias_correction = true));
    default: return NULL;
    }
}
#define NMAKE 16

/* n steps from (p, s); grads change each step (one with a NaN for the
 * finite-checking transforms). Replaces *p and *s. */
static void run_steps(gv_transform *tx, gv_tree **p, gv_tree **s, int from, int n) {
    for (int k = from; k < from + n; k++) {
        gv_tree *g = params2((float)(k % 2 ? -1 : 1) * (1.0f + 0.25f * (float)k));
        if (k == 4) GVT_OK(gv_tensor_set_flat(gv_tree_get_tensor(g, "b"), 1, NAN));
        gv_tree *u, *ns;
        GVT_OK(gv_transform_update_eager(tx, g, *s, *p, &u, &ns));
        gv_tree *np = GVT_NN(gv_apply_updates_eager(*p, u));
        gv_tree_free(*p), gv_tree_free(*s), gv_tree_free(u), gv_tree_free(g);
        *p = np, *s = ns;
    }
}

Test(checkpoint, every_state_saves_restores_and_resumes_bit_for_bit) {
    char dir[] = "/tmp/grove-optim-ckpt-XXXXXX";
    cr_assert(mkdtemp(dir));
    for (int i = 0; i < NMAKE; i++) {
        gv_transform *tx = GVT_NN(make(i));
        gv_tree *p = params2(1), *s = GVT_NN(gv_transform_init_eager(tx, p));
        gv_tree *target = GVT_NN(gv_tree_copy(s)); /* the init state: the restore target */
        run_steps(tx, &p, &s, 0, 3);
        char sub[96];
        snprintf(sub, sizeof sub, "%s/tx%d", dir, i);
        gv_checkpoint_manager *m = GVT_NN(gv_checkpoint_manager_new(sub, NULL));
        GVT_OK(gv_checkpoint_manager_save(m, 3, (const char *[]){"params", "opt_state"},
                                          (const gv_tree *[]){p, s}, 2, NULL));
        gv_tree *p2 = gv_tree_copy(p), *s2 = gv_tree_copy(s);
        run_steps(tx, &p, &s, 3, 4); /* uninterrupted */
        gv_tree_free(p2), gv_tree_free(s2);
        GVT_OK(gv_checkpoint_manager_close(m));

        /* a fresh transform and a reopened manager, as a resumed process has */
        gv_transform *tx2 = GVT_NN(make(i));
        m = GVT_NN(gv_checkpoint_manager_new(sub, NULL));
        gv_tree *out[2];
        GVT_OK(gv_checkpoint_manager_restore_latest(m, (const char *[]){"params", "opt_state"},
                                                    (const gv_tree *[]){p, target}, 2, out, NULL, NULL));
        GVT_OK(gv_checkpoint_manager_close(m));
        run_steps(tx2, &out[0], &out[1], 3, 4);
        char what[64];
        snprintf(what, sizeof what, "%s resumed params", gv_transform_name(tx2));
        ot_expect_same_bits(p, out[0], what);
        snprintf(what, sizeof what, "%s resumed state", gv_transform_name(tx2));
        ot_expect_same_bits(s, out[1], what);
        gv_tree_free(out[0]), gv_tree_free(out[1]), gv_tree_free(target);
        gv_tree_free(p), gv_tree_free(s);
        gv_transform_free(tx), gv_transform_free(tx2);
    }
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    cr_assert_eq(system(cmd), 0);
}
