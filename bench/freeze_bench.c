/* What freezing a backbone costs in a compiled train step. One classifier,
 * MLP 256-512-512-512 (relu) + Dense(10), softmax cross-entropy, adam(1e-3),
 * batch 128, the TrainState step jitted with the state donated, compiled
 * four ways and run side by side:
 *   train all    adam on every param
 *   frozen       multi_transform({'train': adam, 'freeze': set_to_zero()},
 *                {'backbone': 'freeze', 'head': 'train'})
 *   no-grad      the frozen step's optimiser, with the loss reading the
 *                backbone through stop_gradient (never differentiated)
 *   head alone   adam on a state that holds the head only; the backbone is
 *                an input of the step, not part of the state
 * Prints each plan's kernels, fused kernels, GEMMs and arena, and the median
 * step time over many steps (rounds of steps taken in turn from each
 * variant, in a rotating order, so drift on the machine and the caches left
 * by the previous variant hit all four alike).
 *
 *   freeze_bench [--rounds R] [--steps S] [--threads T]
 */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "benchutil.h"
#include "grove/grove.h"

enum { B = 128, IN = 256, HID = 512, OUT = 10 };

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

typedef enum { TRAIN_ALL, FROZEN, NO_GRAD, HEAD_ONLY, NVARIANTS } variant;
static const char *const names[NVARIANTS] = {"train all", "frozen", "no-grad", "head alone"};

typedef struct ctx {
    net_cfg cfg;
    gv_module model;
    gv_transform *tx;
    variant v;
} ctx;

static gv_value loss_of(gv_graph *g, const ctx *c, const gv_tree *params, gv_value x, gv_value y) {
    gv_value logits;
    gv_tree *vars = gv_pack(g, "{params}", params);
    gv_unpack(gv_apply(g, &c->model, vars, gv_tuple(g, x), NULL, NULL), "logits", &logits);
    return gv_mean(gv_softmax_cross_entropy_with_integer_labels(logits, y, -1), NULL, 0, false);
}

/* loss_fn(params, x, y); no-grad: the backbone's params behind stop_gradient */
static gv_tree *loss_fn(gv_graph *g, const gv_tree *in, void *ud) {
    const ctx *c = ud;
    const gv_tree *params, *backbone, *head;
    gv_value x, y;
    gv_unpack(in, "(params, x, y)", &params, &x, &y);
    gv_unpack(params, "{backbone, head}", &backbone, &head);
    gv_tree *sg = NULL;
    if (c->v == NO_GRAD) {
        char **paths = NULL;
        size_t n = 0;
        sg = gv_tree_clone(backbone);
        if (sg && gv_tree_leaf_paths(sg, &paths, &n) == GV_OK) {
            for (size_t i = 0; i < n; i++)
                gv_tree_set(sg, paths[i], gv_tree_new_value_leaf(
                                              gv_stop_gradient(gv_tree_get_value(sg, paths[i]))));
            gv_tree_paths_free(paths, n);
        }
    }
    gv_tree *p = gv_pack(g, "{backbone, head}", sg ? sg : backbone, head);
    gv_tree_free(sg);
    return gv_pack(g, "loss", loss_of(g, c, p, x, y));
}

/* head alone: loss_fn({head}, backbone, x, y) */
static gv_tree *head_loss_fn(gv_graph *g, const gv_tree *in, void *ud) {
    const gv_tree *head, *backbone;
    gv_value x, y;
    gv_unpack(in, "({head}, backbone, x, y)", &head, &backbone, &x, &y);
    gv_tree *p = gv_pack(g, "{backbone, head}", backbone, head);
    return gv_pack(g, "loss", loss_of(g, ud, p, x, y));
}

/* train_step(state, x, y) -> (state', {loss}); head alone: (state, backbone, x, y) */
static gv_tree *train_step(gv_graph *g, const gv_tree *in, void *ud) {
    const ctx *c = ud;
    const gv_tree *state, *backbone, *grads;
    gv_value x, y, loss;
    gv_tree *args;
    if (c->v == HEAD_ONLY) {
        gv_unpack(in, "(state, backbone, x, y)", &state, &backbone, &x, &y);
        args = gv_pack(g, "(params, backbone, x, y)", gv_train_state_params(state), backbone, x, y);
    } else {
        gv_unpack(in, "(state, x, y)", &state, &x, &y);
        args = gv_pack(g, "(params, x, y)", gv_train_state_params(state), x, y);
    }
    gv_unpack(gv_value_and_grad_call(g, c->v == HEAD_ONLY ? head_loss_fn : loss_fn, ud, args, 0,
                                     false),
              "(loss, grads)", &loss, &grads);
    gv_tree *next = gv_train_state_apply_gradients(g, c->tx, state, grads);
    return gv_pack(g, "(state, {loss})", next, loss);
}

typedef struct run {
    ctx c;
    gv_tree *state, *in, *out;
    gv_jit *step;
    gv_plan_stats st;
    double *ms; /* per step */
    int n;
} run;

static void fail(const char *what) {
    fprintf(stderr, "freeze_bench: %s: %s\n", what, gv_last_error());
    exit(1);
}

static void run_init(run *r, variant v, const gv_tree *params, gv_tensor *x, gv_tensor *y,
                     int threads, int nsteps) {
    *r = (run){.c = {{{hidden, 3, NULL, false}, gv_dense_defaults(OUT)}, {&Net, NULL}, NULL, v}};
    r->c.model.cfg = &r->c.cfg;
    if (v == TRAIN_ALL || v == HEAD_ONLY) {
        r->c.tx = gv_adam(.learning_rate = 1e-3);
    } else {
        gv_tree *labels = gv_labels("{'backbone': 'freeze', 'head': 'train'}");
        r->c.tx = labels ? gv_multi_transform(GV_TRANSFORMS({"train", gv_adam(.learning_rate = 1e-3)},
                                                            {"freeze", gv_set_to_zero()}),
                                              labels)
                         : NULL;
    }
    if (!r->c.tx) fail("optimiser");
    gv_tree *trained = v == HEAD_ONLY ? gv_pack(NULL, "{head}", gv_tree_get(params, "head"))
                                      : gv_tree_copy(params);
    gv_tree *copy = trained ? gv_tree_copy(trained) : NULL; /* the state's own tensors */
    r->state = copy ? gv_train_state_create(r->c.tx, copy) : NULL;
    gv_tree_free(copy), gv_tree_free(trained);
    if (!r->state) fail("state");
    r->in = v == HEAD_ONLY ? gv_pack(NULL, "(state, backbone, x, y)", r->state,
                                     gv_tree_get(params, "backbone"), x, y)
                           : gv_pack(NULL, "(state, x, y)", r->state, x, y);
    r->step = gv_jit_new(train_step, &r->c, &(gv_plan_options){
        .threads = threads, .donate_argnums = GV_ARGNUMS(0)});
    const gv_plan *p = r->in && r->step ? gv_jit_plan(r->step, r->in) : NULL;
    if (!p) fail(names[v]);
    r->st = gv_plan_get_stats(p);
    r->ms = malloc((size_t)nsteps * sizeof *r->ms);
    if (!r->ms) fail("out of memory");
}

/* k steps, their times recorded when timed */
static void run_steps(run *r, int k, bool timed) {
    for (int i = 0; i < k; i++) {
        double t0 = bench_now();
        if (gv_jit_call(r->step, r->in, &r->out) != GV_OK) fail(names[r->c.v]);
        if (timed) r->ms[r->n++] = 1e3 * (bench_now() - t0);
    }
}

int main(int argc, char **argv) {
    int rounds = 125, steps = 4, threads = 1;
    for (int i = 1; i + 1 < argc; i += 2) {
        if (!strcmp(argv[i], "--rounds")) rounds = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--steps")) steps = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--threads")) threads = atoi(argv[i + 1]);
        else return fprintf(stderr, "usage: freeze_bench [--rounds R] [--steps S] [--threads T]\n"), 2;
    }
    if ((argc - 1) % 2 || rounds < 1 || steps < 1 || threads < 1)
        return fprintf(stderr, "usage: freeze_bench [--rounds R] [--steps S] [--threads T]\n"), 2;

    gv_tensor *x = gv_random_uniform_eager(GV_PRNG_DEFAULT, gv_prng_key(7), GV_DIMS(B, IN), -1, 1);
    gv_tensor *y = gv_tensor_zeros(GV_I32, GV_DIMS(B));
    if (!x || !y) fail("batch");
    for (int i = 0; i < B; i++) ((int32_t *)gv_tensor_data(y))[i] = (i * 7 + 3) % OUT;
    net_cfg cfg = {{hidden, 3, NULL, false}, gv_dense_defaults(OUT)};
    gv_module model = {&Net, &cfg};
    gv_tree *example = gv_pack(NULL, "(x)", x);
    gv_tree *vars = example ? gv_init(&model, gv_prng_key(0), example, NULL) : NULL;
    if (!vars) fail("init");
    const gv_tree *params = gv_tree_get(vars, "params");

    run r[NVARIANTS];
    for (int v = 0; v < NVARIANTS; v++) run_init(&r[v], (variant)v, params, x, y, threads, rounds * steps);
    for (int v = 0; v < NVARIANTS; v++) run_steps(&r[v], 20, false); /* warm-up */
    for (int k = 0; k < rounds; k++) /* each round starts with the next variant */
        for (int v = 0; v < NVARIANTS; v++) run_steps(&r[(k + v) % NVARIANTS], steps, true);

    char cpu[128];
    bench_cpu_name(cpu, sizeof cpu);
    printf("Freezing a backbone: MLP 256-512-512-512 + Dense(10), batch %d, adam, %d thread%s\n"
           "%s; median of %d steps each (%d rounds of %d, the variants in turn)\n\n",
           B, threads, threads == 1 ? "" : "s", cpu, rounds * steps, rounds, steps);
    printf("| %-10s | %7s | %5s | %5s | %11s | %9s | %7s |\n", "step", "kernels", "fused",
           "gemms", "arena bytes", "median ms", "speedup");
    printf("|%s|%s|%s|%s|%s|%s|%s|\n", "------------", "--------:", "------:", "------:",
           "------------:", "----------:", "--------:");
    double base = 0;
    for (int v = 0; v < NVARIANTS; v++) {
        double med = bench_median(r[v].ms, r[v].n);
        if (v == TRAIN_ALL) base = med;
        printf("| %-10s | %7d | %5d | %5d | %11zu | %9.3f | %6.2fx |\n", names[v], r[v].st.kernels,
               r[v].st.fused_kernels, r[v].st.gemms, r[v].st.arena_bytes, med, base / med);
    }
    for (int v = 0; v < NVARIANTS; v++) {
        gv_jit_free(r[v].step);
        gv_tree_free(r[v].in), gv_tree_free(r[v].state);
        gv_transform_free(r[v].c.tx);
        free(r[v].ms);
    }
    gv_tree_free(vars), gv_tree_free(example), gv_tensor_free(x), gv_tensor_free(y);
    return 0;
}
