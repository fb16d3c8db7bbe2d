/* Freezing parameters costs nothing. A classifier with a large backbone
 * (MLP 256-512-512-512, relu) and a small head (512-10) is trained with
 * the TrainState step in three ways:
 *   (a) everything with adam;
 *   (b) the backbone frozen the Optax way, multi_transform({'train':
 *       adam, 'freeze': set_to_zero()}, labels) (reference A11);
 *   (c) the same step and optimiser, but the loss sees the backbone params
 *       through stop_gradient: they are never differentiated.
 * The compiled plan of (b) must be the plan of (c): dead-code elimination
 * removes every kernel that only fed the zeroed backbone updates (the
 * backbone's weight and activation gradients), and no constant costs
 * memory. These are structural facts about the plans, not timings
 * (bench/freeze_bench.c times them). And the numbers: after a few steps
 * the frozen params are bit-identical to their initial values, and the
 * head's are bit-identical to plain adam on the head alone, with the
 * backbone an input that is not differentiated and not updated. */
#include "optim_testutil.h"

enum { B = 128, IN = 256, HID = 512, OUT = 10, STEPS = 4 };

/* ---- the model: {"backbone": FeedForward(512, 512, 512), "head": Dense(10)} ---- */

typedef struct net_cfg {
    gv_feedforward_cfg backbone;
    gv_dense_cfg head;
} net_cfg;

static gv_tree *net_call(gv_scope *s, const void *cfgp, const gv_tree *args) {
    const net_cfg *cfg = cfgp;
    gv_module backbone = {&gv_FeedForward, &cfg->backbone}, head = {&gv_Dense, &cfg->head};
    gv_value h = gv_scope_call1(s, "backbone", &backbone, gv_args_get(args, 0));
    return gv_pack(gv_scope_graph(s), "logits", gv_scope_call1(s, "head", &head, h));
}
static const gv_module_type Net = {"Net", net_call, NULL, 0};

static const int64_t hidden[] = {HID, HID, HID};

typedef enum { TRAIN_ALL, FROZEN, NO_GRAD, HEAD_ONLY } variant;

typedef struct ctx {
    net_cfg cfg;
    gv_module model;
    gv_transform *tx;
    variant v;
} ctx;

/* The tree with every leaf behind stop_gradient (a new tree of values of g). */
static gv_tree *stop_gradient_tree(const gv_tree *t) {
    gv_tree *s = gv_tree_clone(t);
    char **paths = NULL;
    size_t n = 0;
    if (!s || gv_tree_leaf_paths(s, &paths, &n) != GV_OK) {
        gv_tree_free(s);
        return NULL;
    }
    for (size_t i = 0; i < n; i++)
        gv_tree_set(s, paths[i], gv_tree_new_value_leaf(gv_stop_gradient(gv_tree_get_value(s, paths[i]))));
    gv_tree_paths_free(paths, n);
    return s;
}

/* mean softmax cross-entropy of the model on (x, y) */
static gv_value loss_of(gv_graph *g, const ctx *c, const gv_tree *params, gv_value x, gv_value y) {
    gv_value logits;
    gv_tree *vars = gv_pack(g, "{params}", params);
    gv_unpack(gv_apply(g, &c->model, vars, gv_tuple(g, x), NULL, NULL), "logits", &logits);
    return gv_mean(gv_softmax_cross_entropy_with_integer_labels(logits, y, -1), NULL, 0, false);
}

/* loss_fn(params, x, y); (c) wraps the backbone's params in stop_gradient */
static gv_tree *loss_fn(gv_graph *g, const gv_tree *in, void *ud) {
    const ctx *c = ud;
    const gv_tree *params, *backbone, *head;
    gv_value x, y;
    gv_unpack(in, "(params, x, y)", &params, &x, &y);
    gv_unpack(params, "{backbone, head}", &backbone, &head);
    gv_tree *sg = c->v == NO_GRAD ? stop_gradient_tree(backbone) : NULL;
    gv_tree *p = gv_pack(g, "{backbone, head}", sg ? sg : backbone, head);
    gv_tree_free(sg);
    return gv_pack(g, "loss", loss_of(g, c, p, x, y));
}

/* The head alone: loss_fn(head, backbone, x, y), differentiated in head only */
static gv_tree *head_loss_fn(gv_graph *g, const gv_tree *in, void *ud) {
    const gv_tree *head, *backbone;
    gv_value x, y;
    gv_unpack(in, "({head}, backbone, x, y)", &head, &backbone, &x, &y);
    gv_tree *p = gv_pack(g, "{backbone, head}", backbone, head);
    return gv_pack(g, "loss", loss_of(g, ud, p, x, y));
}

/* train_step(state, x, y) -> (state', {loss}); the head alone:
 * train_step(state, backbone, x, y) */
static gv_tree *train_step(gv_graph *g, const gv_tree *in, void *ud) {
    const ctx *c = ud;
    const gv_tree *state, *backbone = NULL, *grads;
    gv_value x, y, loss;
    gv_tree *args;
    if (c->v == HEAD_ONLY) {
        gv_unpack(in, "(state, backbone, x, y)", &state, &backbone, &x, &y);
        args = gv_pack(g, "(params, backbone, x, y)", gv_train_state_params(state), backbone, x, y);
    } else {
        gv_unpack(in, "(state, x, y)", &state, &x, &y);
        args = gv_pack(g, "(params, x, y)", gv_train_state_params(state), x, y);
    }
    gv_trace_fn f = c->v == HEAD_ONLY ? head_loss_fn : loss_fn;
    gv_unpack(gv_value_and_grad_call(g, f, ud, args, 0, false), "(loss, grads)", &loss, &grads);
    gv_tree *next = gv_train_state_apply_gradients(g, c->tx, state, grads);
    return gv_pack(g, "(state, {loss})", next, loss);
}

/* Freezing the backbone as Optax does it: multi_transform({'train':
 * adam(1e-3), 'freeze': set_to_zero()}, labels), the head trained, the
 * backbone's updates set to zero (masked leaves keep no adam state). */
static gv_transform *frozen_backbone_adam(void) {
    gv_tree *labels = GVT_NN(gv_labels("{'backbone': 'freeze', 'head': 'train'}"));
    return GVT_NN(gv_multi_transform(GV_TRANSFORMS({"train", gv_adam(.learning_rate = 1e-3)},
                                                   {"freeze", gv_set_to_zero()}),
                                     labels));
}

/* ---- one variant: its state, batch and jitted step ---- */

typedef struct trainer {
    ctx c;
    gv_tree *params;   /* the initial params (the model's init) */
    gv_tree *state;    /* donated: holds the current state after each step */
    gv_tree *backbone; /* HEAD_ONLY: the fixed backbone params, an input */
    gv_tensor *x, *y;
    gv_jit *step;
} trainer;

static gv_tree *step_inputs(const trainer *t) {
    if (t->c.v == HEAD_ONLY)
        return GVT_NN(gv_pack(NULL, "(state, backbone, x, y)", t->state, t->backbone, t->x, t->y));
    return GVT_NN(gv_pack(NULL, "(state, x, y)", t->state, t->x, t->y));
}

static void trainer_init(trainer *t, variant v) {
    *t = (trainer){.c = {{{hidden, 3, NULL, false}, gv_dense_defaults(OUT)}, {&Net, NULL}, NULL, v}};
    t->c.model.cfg = &t->c.cfg;
    t->c.tx = v == TRAIN_ALL || v == HEAD_ONLY ? GVT_NN(gv_adam(.learning_rate = 1e-3))
                                               : frozen_backbone_adam();
    t->x = GVT_NN(gv_random_uniform_eager(GV_PRNG_DEFAULT, gv_prng_key(7), GV_DIMS(B, IN), -1, 1));
    t->y = GVT_NN(gv_tensor_zeros(GV_I32, GV_DIMS(B)));
    int32_t *yd = gv_tensor_data(t->y);
    for (int i = 0; i < B; i++) yd[i] = (i * 7 + 3) % OUT;
    gv_tree *example = GVT_NN(gv_pack(NULL, "(x)", t->x));
    gv_tree *vars = GVT_NN(gv_init(&t->c.model, gv_prng_key(0), example, NULL));
    t->params = GVT_NN(gv_tree_copy(gv_tree_get(vars, "params")));
    gv_tree_free(example), gv_tree_free(vars);
    gv_tree *trained = t->params;
    if (v == HEAD_ONLY) {
        t->backbone = GVT_NN(gv_tree_copy(gv_tree_get(t->params, "backbone")));
        trained = GVT_NN(gv_pack(NULL, "{head}", gv_tree_get(t->params, "head")));
    }
    /* a copy, so the donated state never writes into t->params */
    gv_tree *copy = GVT_NN(gv_tree_copy(trained));
    t->state = GVT_NN(gv_train_state_create(t->c.tx, copy));
    gv_tree_free(copy);
    if (trained != t->params) gv_tree_free(trained);
    t->step = GVT_NN(gv_jit_new(train_step, &t->c, &(gv_plan_options){
        .donate_argnums = GV_ARGNUMS(0)}));
}

static const gv_plan *trainer_plan(trainer *t) {
    gv_tree *in = step_inputs(t);
    const gv_plan *p = GVT_NN(gv_jit_plan(t->step, in));
    gv_tree_free(in);
    return p;
}

static gv_plan_stats trainer_stats(trainer *t) { return gv_plan_get_stats(trainer_plan(t)); }

/* One step; returns the loss. */
static float trainer_run(trainer *t) {
    gv_tree *in = step_inputs(t), *out = NULL;
    GVT_OK(gv_jit_call(t->step, in, &out));
    gv_tree_free(in);
    gv_tensor *loss = NULL;
    GVT_OK(gv_unpack(out, "(_, {loss})", &loss));
    return (float)gv_tensor_item(loss);
}

static void trainer_free(trainer *t) {
    gv_jit_free(t->step);
    gv_tree_free(t->state), gv_tree_free(t->params), gv_tree_free(t->backbone);
    gv_tensor_free(t->x), gv_tensor_free(t->y);
    gv_transform_free(t->c.tx);
}

static void report(const char *name, gv_plan_stats s) {
    cr_log_info("%-16s nodes %3d -> %3d, kernels %2d (fused %2d, gemms %2d), arena %7zu B",
                name, s.nodes_traced, s.nodes_optimized, s.kernels, s.fused_kernels, s.gemms,
                s.arena_bytes);
}

Test(freeze, frozen_backbone_compiles_to_the_plan_without_its_gradients) {
    trainer a, b, c, h;
    trainer_init(&a, TRAIN_ALL), trainer_init(&b, FROZEN), trainer_init(&c, NO_GRAD);
    trainer_init(&h, HEAD_ONLY);
    gv_plan_stats sa = trainer_stats(&a), sb = trainer_stats(&b), sc = trainer_stats(&c);
    gv_plan_stats sh = trainer_stats(&h);
    report("train all", sa), report("frozen backbone", sb), report("no-grad backbone", sc);
    report("head alone", sh);

    /* costs nothing: the plan of a step that never differentiates the backbone */
    cr_expect_eq(sb.kernels, sc.kernels, "kernels: frozen %d, not differentiated %d", sb.kernels,
                 sc.kernels);
    cr_expect_eq(sb.fused_kernels, sc.fused_kernels, "fused kernels: %d vs %d", sb.fused_kernels,
                 sc.fused_kernels);
    cr_expect_eq(sb.gemms, sc.gemms, "gemms: %d vs %d", sb.gemms, sc.gemms);
    cr_expect_eq(sb.arena_bytes, sc.arena_bytes, "arena: frozen %zu B, not differentiated %zu B",
                 sb.arena_bytes, sc.arena_bytes);
    cr_expect_eq(sb.nodes_optimized, sc.nodes_optimized, "nodes after the passes: %d vs %d",
                 sb.nodes_optimized, sc.nodes_optimized);
    /* kernel for kernel: the same steps on the same buffers */
    char *db = GVT_NN(gv_plan_dump(trainer_plan(&b))), *dc = GVT_NN(gv_plan_dump(trainer_plan(&c)));
    cr_expect_str_eq(db, dc, "the frozen step's plan:\n%s\nthe not differentiated one's:\n%s", db,
                     dc);
    free(db), free(dc);

    /* what is gone against training everything: the backbone's 3 weight
     * gradients and the 3 activation gradients below the head (GEMMs),
     * the 3 relu backward passes and the 3 bias gradients (sums), and the 6
     * adam updates of the backbone */
    cr_expect_eq(sb.gemms, sa.gemms - 6, "gemms: frozen %d, all %d", sb.gemms, sa.gemms);
    cr_expect_eq(sb.gemms, 5, "the 4 forward GEMMs and the head's weight gradient, got %d",
                 sb.gemms);
    cr_expect_leq(sb.kernels, sa.kernels - 12, "kernels: frozen %d, all %d", sb.kernels,
                  sa.kernels);
    /* the arena holds the forward's two largest activations ([128, 512]
     * float32 each) and nothing of the backward: no stored zeros either */
    cr_expect_leq(sb.arena_bytes, (size_t)2 * B * HID * 4, "arena: frozen %zu B", sb.arena_bytes);
    cr_expect_lt(sb.arena_bytes * 4, sa.arena_bytes, "arena: frozen %zu B, all %zu B",
                 sb.arena_bytes, sa.arena_bytes);
    /* and against the head alone, whose state holds no backbone and whose
     * step never updates it: nothing. A frozen param's update is a
     * constant zero, and apply_updates passes such a param through as
     * jax.jit does (XLA drops A + 0), so there is no p + 0 pass either */
    cr_expect_eq(sb.kernels, sh.kernels, "kernels: frozen %d, head alone %d", sb.kernels,
                 sh.kernels);
    cr_expect_eq(sb.fused_kernels, sh.fused_kernels, "fused kernels: frozen %d, head alone %d",
                 sb.fused_kernels, sh.fused_kernels);
    cr_expect_eq(sb.gemms, sh.gemms, "gemms: frozen %d, head alone %d", sb.gemms, sh.gemms);
    cr_expect_eq(sb.arena_bytes, sh.arena_bytes, "arena: frozen %zu B, head alone %zu B",
                 sb.arena_bytes, sh.arena_bytes);
    /* the outputs of (b) reach less than half of what (a)'s reach before
     * any pass: the backbone's gradient nodes are dead from the start */
    cr_expect_lt(sb.nodes_traced * 2, sa.nodes_traced, "nodes reached: frozen %d, all %d",
                 sb.nodes_traced, sa.nodes_traced);
    trainer_free(&a), trainer_free(&b), trainer_free(&c), trainer_free(&h);
}

static void expect_same_bits(const gv_tree *got, const gv_tree *want, const char *what) {
    char first[256] = "";
    int n = gvt_tree_diff(got, want, first, sizeof first);
    cr_expect_eq(n, 0, "%s: %d leaves differ, the first at %s", what, n, first);
}

Test(freeze, frozen_params_stay_and_the_head_trains_as_alone) {
    trainer b, c, h, a;
    trainer_init(&b, FROZEN), trainer_init(&c, NO_GRAD), trainer_init(&h, HEAD_ONLY);
    trainer_init(&a, TRAIN_ALL);
    for (int s = 0; s < STEPS; s++) {
        float lb = trainer_run(&b), lc = trainer_run(&c), lh = trainer_run(&h);
        trainer_run(&a);
        cr_expect(lb == lh && lc == lh, "step %d: loss frozen %.9g, no-grad %.9g, head alone %.9g",
                  s, lb, lc, lh);
    }
    cr_expect_eq(gv_train_state_step(b.state), STEPS);
    const gv_tree *pb = gv_train_state_params(b.state), *pc = gv_train_state_params(c.state);
    /* frozen: bit-identical to the initial values */
    expect_same_bits(gv_tree_get(pb, "backbone"), gv_tree_get(b.params, "backbone"),
                     "frozen backbone after training");
    /* the head: what adam does to the head alone */
    expect_same_bits(gv_tree_get(pb, "head"), gv_tree_get(gv_train_state_params(h.state), "head"),
                     "head (frozen backbone) vs head alone");
    expect_same_bits(pc, pb, "params (no-grad backbone) vs (frozen backbone)");
    /* the head moved, and training everything moves the backbone */
    cr_expect_neq(gvt_tree_diff(gv_tree_get(pb, "head"), gv_tree_get(b.params, "head"), NULL, 0), 0,
                  "the head did not train");
    cr_expect_neq(gvt_tree_diff(gv_tree_get(gv_train_state_params(a.state), "backbone"),
                                gv_tree_get(a.params, "backbone"), NULL, 0), 0,
                  "training everything left the backbone as it was");
    trainer_free(&b), trainer_free(&c), trainer_free(&h), trainer_free(&a);
}
