/* One process of the data-parallel tests (test_distributed.c launches it
 * with mpirun). Each mode checks what it can on every rank and exits
 * non-zero with a message naming the rank on the first failure.
 *
 *   dist_worker collectives        psum/pmean in compiled plans, pmean_tree
 *                                  buckets, the loader's shards, check_same
 *   dist_worker train K B OUT      K Adam steps of an MLP with global batch B,
 *                                  each rank on its shard; rank 0 writes the
 *                                  params and the step losses to OUT
 *   dist_worker train-zero1 K B OUT  the same with the optimiser state
 *                                  sharded (ZeRO-1); each rank prints the
 *                                  size of its optimiser state
 *   dist_worker die-at K RANK      trains; rank RANK kills itself (SIGKILL)
 *                                  at step K: the job must end, not hang */
#include <grove/grove.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static int rank_, nproc_;

#define CHECK(cond, ...)                                                        \
    do {                                                                        \
        if (!(cond)) {                                                          \
            fprintf(stderr, "rank %d: %s:%d: ", rank_, __FILE__, __LINE__);   \
            fprintf(stderr, __VA_ARGS__);                                       \
            fprintf(stderr, " (%s)\n", gv_last_error());                       \
            gv_distributed_abort(1);                                            \
        }                                                                       \
    } while (0)

/* ---- collectives ---- */

/* f(x, i) = (psum(x), pmean(x), psum(i)) with x float32 [3, 5], i int32 [4] */
static gv_tree *f_sums(gv_graph *g, const gv_tree *in, void *ud) {
    gv_value x, i;
    gv_unpack(in, "(x, i)", &x, &i);
    return gv_pack(g, "(s, m, i)", gv_psum(x), gv_pmean(x), gv_psum(i));
}

/* pmean_tree over a dict of leaves of several sizes, with tiny buckets */
static gv_tree *f_tree(gv_graph *g, const gv_tree *in, void *ud) {
    return gv_pmean_tree(g, in, *(const size_t *)ud);
}

static void check_collectives(void) {
    int r = rank_, n = nproc_;
    float xs[15];
    int32_t is[4];
    for (int k = 0; k < 15; k++) xs[k] = (float)(r + 1) * (float)(k - 7) * 0.25f;
    for (int k = 0; k < 4; k++) is[k] = (r + 1) * (k + 1) - (k == 3 ? 1000000 : 0);
    gv_tensor *x = gv_tensor_from_data(GV_F32, GV_DIMS(3, 5), xs, sizeof xs);
    gv_tensor *i = gv_tensor_from_data(GV_I32, GV_DIMS(4), is, sizeof is);
    gv_tree *in = gv_pack(NULL, "(x, i)", x, i), *out = NULL;
    gv_jit *j = gv_jit_new(f_sums, NULL, NULL);
    CHECK(in && j && gv_jit_call(j, in, &out) == GV_OK, "psum plan");
    gv_tensor *s, *m, *si;
    gv_unpack(out, "(s, m, i)", &s, &m, &si);
    double tri = n * (n + 1) / 2.0; /* sum of (r + 1) over the ranks */
    const float *sp = gv_tensor_data_const(s), *mp = gv_tensor_data_const(m);
    const int32_t *ip = gv_tensor_data_const(si);
    for (int k = 0; k < 15; k++) {
        /* small multiples of 0.25: every partial sum is exact */
        CHECK(sp[k] == (float)(tri * (k - 7) * 0.25), "psum[%d] = %g", k, sp[k]);
        CHECK(mp[k] == (float)(tri * (k - 7) * 0.25 / n), "pmean[%d] = %g", k, mp[k]);
    }
    for (int k = 0; k < 4; k++)
        CHECK(ip[k] == (int32_t)(tri * (k + 1)) - (k == 3 ? 1000000 * n : 0), "psum int[%d] = %d",
              k, ip[k]);
    gv_tree_free(in), gv_jit_free(j); /* out belongs to the jit */

    /* the same function evaluated by the reference evaluator, through the
     * same primitive: gv_jit with optimisation off is not needed, eval is */
    /* pmean_tree: leaves of 1, 7, 300 and 40 x 3 floats plus an int64 leaf,
     * buckets of 1 KiB so they are split across several messages */
    gv_tree *t = gv_tree_new_dict();
    const int64_t sizes[4] = {1, 7, 300, 120};
    const char *names[4] = {"a", "b/c", "b/d", "e"};
    for (int q = 0; q < 4; q++) {
        gv_tensor *v = gv_tensor_zeros(GV_F32, GV_DIMS(sizes[q]));
        float *p = gv_tensor_data(v);
        for (int64_t k = 0; k < sizes[q]; k++) p[k] = (float)((r + 1) * (k % 13) + q);
        CHECK(gv_tree_insert_tensor(t, names[q], v) == GV_OK, "tree");
        gv_tensor_free(v);
    }
    gv_tensor *cnt = gv_tensor_scalar(GV_I64, 10.0 * (r + 1));
    CHECK(gv_tree_insert_tensor(t, "count", cnt) == GV_OK, "tree");
    gv_tensor_free(cnt);
    size_t bucket = 1024;
    gv_jit *jt = gv_jit_new(f_tree, &bucket, NULL);
    gv_tree *mean = NULL;
    CHECK(jt && gv_jit_call(jt, t, &mean) == GV_OK, "pmean_tree plan");
    for (int q = 0; q < 4; q++) {
        const float *p = gv_tensor_data_const(gv_tree_get_tensor(mean, names[q]));
        for (int64_t k = 0; k < sizes[q]; k++) {
            float want = (float)(tri * (k % 13) + n * q) / (float)n;
            CHECK(p[k] == want, "pmean_tree %s[%lld] = %g, expected %g", names[q], (long long)k,
                  p[k], want);
        }
    }
    double c = gv_tensor_item(gv_tree_get_tensor(mean, "count"));
    CHECK(c == floor(10.0 * tri / n), "pmean_tree count = %g", c);
    gv_tree_free(t), gv_jit_free(jt);

    /* the loader: this rank's shard is its slice of the whole batch */
    int64_t rows = 12 * n, nex = 5 * rows + 3;
    gv_tensor *ids = gv_tensor_zeros(GV_I64, GV_DIMS(nex));
    int64_t *idp = gv_tensor_data(ids);
    for (int64_t k = 0; k < nex; k++) idp[k] = k;
    gv_loader_options o = {.batch_size = rows, .shuffle = true, .key = gv_prng_key(7),
                           .drop_last = true, .prefetch = true};
    gv_loader *whole = gv_loader_new_arrays(&ids, 1, &o);
    o.shard = gv_shard_by_process();
    gv_loader *mine = gv_loader_new_arrays(&ids, 1, &o);
    CHECK(whole && mine, "loaders");
    int64_t seen = 0;
    for (int epoch = 0; epoch < 2; epoch++) {
        gv_batch a, b;
        for (;;) {
            CHECK(gv_loader_next(whole, &a) == GV_OK && gv_loader_next(mine, &b) == GV_OK,
                  "loader_next");
            CHECK(!a.x == !b.x, "the shard's epoch ends with the whole one's");
            if (!a.x) break;
            int64_t per = rows / n;
            CHECK(gv_tensor_dim(b.x, 0) == per, "shard of %lld rows", (long long)gv_tensor_dim(b.x, 0));
            const int64_t *wa = gv_tensor_data_const(a.x), *wb = gv_tensor_data_const(b.x);
            for (int64_t k = 0; k < per; k++)
                CHECK(wb[k] == wa[r * per + k], "epoch %d batch %lld row %lld", epoch,
                      (long long)a.index, (long long)k);
            seen += per;
        }
    }
    CHECK(seen == 2 * 5 * rows / n, "rows seen %lld", (long long)seen);
    gv_loader_free(whole), gv_loader_free(mine), gv_tensor_free(ids);

    /* check_same: equal bytes pass, a difference names the first rank that has it */
    int same = 42, differ = r == n - 1 ? 43 : 42;
    CHECK(gv_distributed_check_same(&same, sizeof same, "same") == GV_OK, "check_same equal");
    if (n > 1) {
        CHECK(gv_distributed_check_same(&differ, sizeof differ, "the answer") != GV_OK,
              "check_same found no difference");
        char want[64];
        snprintf(want, sizeof want, "rank %d", n - 1);
        CHECK(strstr(gv_last_error(), want) && strstr(gv_last_error(), "the answer"),
              "check_same message: %s", gv_last_error());
    }
    /* ZeRO-1 refuses what it cannot shard, naming it */
    gv_tree *params = gv_tree_new_dict();
    for (int q = 0; q < 3; q++) {
        char name[32];
        snprintf(name, sizeof name, "layer%d/kernel", q);
        gv_tensor *w = gv_tensor_zeros(GV_F32, GV_DIMS(4, 3));
        gv_tree_insert_tensor(params, name, w);
        gv_tensor_free(w);
    }
    gv_transform *clip = gv_chain((gv_transform *[]){gv_clip_by_global_norm(1.0), gv_adam(.learning_rate = 1e-3)}, 2);
    CHECK(!gv_train_state_create_zero1(clip, params) && gv_last_status() == GV_ERR_UNSUPPORTED &&
          strstr(gv_last_error(), "clip_by_global_norm"), "zero1 with clip_by_global_norm");
    gv_transform *adam = gv_adam(.learning_rate = 1e-3);
    gv_tree *st = gv_train_state_create_zero1(adam, params);
    CHECK(st, "zero1 state");
    CHECK(gv_tree_get_tensor(st, "zero1") && gv_tensor_dim(gv_tree_get_tensor(st, "zero1"), 0) == n,
          "zero1 field");
    gv_tree_free(st), gv_transform_free(clip), gv_transform_free(adam), gv_tree_free(params);

    gv_tensor_free(x), gv_tensor_free(i);
    printf("rank %d of %d: collectives ok\n", r, n);
}

/* ---- training ---- */

typedef struct mlp_cfg { gv_dense_cfg hidden, out; } mlp_cfg;

static gv_tree *mlp_call(gv_scope *s, const void *cfgp, const gv_tree *args) {
    const mlp_cfg *cfg = cfgp;
    gv_module hidden = {&gv_Dense, &cfg->hidden}, out = {&gv_Dense, &cfg->out};
    gv_value h = gv_relu(gv_scope_call1(s, "Dense_0", &hidden, gv_args_get(args, 0)));
    return gv_pack(gv_scope_graph(s), "logits", gv_scope_call1(s, "Dense_1", &out, h));
}
static const gv_module_type MLP = {"MLP", mlp_call, NULL, 0};

typedef struct ctx { gv_module model; gv_transform *tx; } ctx;

static gv_tree *loss_fn(gv_graph *g, const gv_tree *in, void *ud) {
    const ctx *c = ud;
    const gv_tree *params;
    gv_value x, y, logits;
    gv_unpack(in, "(params, x, y)", &params, &x, &y);
    gv_tree *vars = gv_pack(g, "{params}", params);
    gv_unpack(gv_apply(g, &c->model, vars, gv_tuple(g, x), NULL, NULL), "logits", &logits);
    gv_value xent = gv_softmax_cross_entropy_with_integer_labels(logits, y, -1);
    return gv_pack(g, "loss", gv_mean(xent, NULL, 0, false));
}

/* the classifier's step, unchanged for N processes but for the logged loss */
static gv_tree *train_step(gv_graph *g, const gv_tree *in, void *ud) {
    const gv_tree *state, *grads;
    gv_value x, y, loss;
    gv_unpack(in, "(state, x, y)", &state, &x, &y);
    gv_tree *args = gv_pack(g, "(params, x, y)", gv_train_state_params(state), x, y);
    gv_unpack(gv_value_and_grad_call(g, loss_fn, ud, args, 0, false), "(loss, grads)", &loss,
              &grads);
    gv_tree *next = gv_train_state_apply_gradients(g, ((const ctx *)ud)->tx, state, grads);
    return gv_pack(g, "(state, loss)", next, gv_pmean(loss));
}

static int train(long steps, long batch, const char *out_path, long die_at, int die_rank,
                 bool zero1) {
    enum { N = 384, F = 20, C = 4 };
    float xs[N * F];
    int32_t ys[N];
    for (int i = 0; i < N; i++) {
        ys[i] = (i * 7 + i / 5) % C;
        for (int j = 0; j < F; j++)
            xs[i * F + j] = sinf(0.37f * (float)(i * F + j)) + (j % C == ys[i] ? 0.8f : 0.0f);
    }
    gv_tensor *x = gv_tensor_from_data(GV_F32, GV_DIMS(N, F), xs, sizeof xs);
    gv_tensor *y = gv_tensor_from_data(GV_I32, GV_DIMS(N), ys, sizeof ys);
    mlp_cfg cfg = {gv_dense_defaults(32), gv_dense_defaults(C)};
    ctx c = {{&MLP, &cfg}, gv_adamw(.learning_rate = 3e-2, .weight_decay = 1e-3)};
    gv_tensor *x0 = gv_tensor_zeros(GV_F32, GV_DIMS(1, F));
    gv_tree *example = gv_pack(NULL, "(x)", x0);
    gv_tree *vars = gv_init(&c.model, gv_prng_key(0), example, NULL);
    gv_tree *state = zero1 ? gv_train_state_create_zero1(c.tx, gv_tree_get(vars, "params"))
                           : gv_train_state_create(c.tx, gv_tree_get(vars, "params"));
    CHECK(state, "state");
    printf("rank %d: opt_state %lld elements of params' %lld\n", rank_,
           (long long)gv_tree_size(gv_tree_get(state, "opt_state")),
           (long long)gv_tree_size(gv_tree_get(state, "params")));
    gv_jit *step = gv_jit_new(train_step, &c, &(gv_plan_options){.donate_argnums = GV_ARGNUMS(0)});
    gv_loader *ld = gv_loader_new_arrays((gv_tensor *[]){x, y}, 2, &(gv_loader_options){
        .batch_size = batch, .shuffle = true, .key = gv_prng_key(1), .drop_last = true,
        .shard = gv_shard_by_process()});
    CHECK(state && step && ld, "setup");
    {
        gv_batch b0;
        CHECK(gv_loader_next(ld, &b0) == GV_OK && b0.x, "loader");
        gv_tree *in0 = gv_pack(NULL, "(state, x, y)", state, b0.x, b0.y);
        const gv_plan *plan = in0 ? gv_jit_plan(step, in0) : NULL;
        CHECK(plan, "compile");
        gv_plan_stats ps = gv_plan_get_stats(plan);
        printf("rank %d: %d kernels, %d collectives overlapped\n", rank_, ps.kernels,
               ps.overlapped_collectives);
        gv_tree_free(in0);
        CHECK(gv_loader_seek(ld, 0, 0) == GV_OK, "seek");
    }
    CHECK(gv_distributed_check_same(&batch, sizeof batch, "the batch size") == GV_OK, "config");
    FILE *log = rank_ == 0 && out_path ? fopen(out_path, "w") : NULL;
    for (long k = 0; k < steps;) {
        gv_batch b;
        CHECK(gv_loader_next(ld, &b) == GV_OK, "loader");
        if (!b.x) continue;
        if (k == die_at && rank_ == die_rank) {
            fprintf(stderr, "rank %d: dying at step %ld\n", rank_, k);
            raise(SIGKILL);
        }
        gv_tree *in = gv_pack(NULL, "(state, x, y)", state, b.x, b.y), *out = NULL;
        gv_tensor *loss = NULL;
        CHECK(in && gv_jit_call(step, in, &out) == GV_OK, "step %ld", k);
        gv_unpack(out, "(_, loss)", &loss);
        if (log) fprintf(log, "%ld %.9g\n", k, gv_tensor_item(loss));
        gv_tree_free(in);
        k++;
    }
    if (log) fclose(log);
    if (rank_ == 0 && out_path) {
        char path[4096];
        snprintf(path, sizeof path, "%s.params", out_path);
        CHECK(gv_checkpointer_save(path, gv_train_state_params(state), true) == GV_OK, "save");
    }
    gv_loader_free(ld), gv_jit_free(step), gv_tree_free(state), gv_tree_free(vars);
    gv_tree_free(example), gv_tensor_free(x0), gv_tensor_free(x), gv_tensor_free(y);
    gv_transform_free(c.tx);
    return 0;
}

int main(int argc, char **argv) {
    if (gv_distributed_init(&argc, &argv) != GV_OK) {
        fprintf(stderr, "dist_worker: %s\n", gv_last_error());
        return 1;
    }
    rank_ = gv_process_index(), nproc_ = gv_process_count();
    int rc = 2;
    if (argc == 2 && !strcmp(argv[1], "collectives")) check_collectives(), rc = 0;
    else if (argc == 5 && !strcmp(argv[1], "train"))
        rc = train(atol(argv[2]), atol(argv[3]), argv[4], -1, -1, false);
    else if (argc == 5 && !strcmp(argv[1], "train-zero1"))
        rc = train(atol(argv[2]), atol(argv[3]), argv[4], -1, -1, true);
    else if (argc == 4 && !strcmp(argv[1], "die-at"))
        rc = train(1000000, 4 * nproc_, NULL, atol(argv[2]), atoi(argv[3]), false);
    else
        fprintf(stderr, "usage: dist_worker collectives | train K B OUT | train-zero1 K B OUT | "
                "die-at K RANK\n");
    gv_distributed_shutdown();
    return rc;
}
