/* Checkpoint manager: retention (reference D2, test vectors K1-K7), items,
 * restore, temporaries, async saves and their errors, bad input. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <math.h>
#include <spawn.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "checkpoint/io_internal.h"
#include "grove/checkpoint.h"
#include "testutil.h"

/* ---- helpers ---------------------------------------------------------------- */

static int rm_one(const char *path, const struct stat *sb, int flag, struct FTW *ftw) {
    (void)sb, (void)flag, (void)ftw;
    return remove(path);
}

static void rm_rf(const char *path) { nftw(path, rm_one, 16, FTW_DEPTH | FTW_PHYS); }

static char *make_tmpdir(void) {
    char *d = strdup("/tmp/gv-ckpt-test-XXXXXX");
    cr_assert_not_null(mkdtemp(d), "mkdtemp: %s", strerror(errno));
    return d;
}

static char *join(const char *a, const char *b) {
    char *p = NULL;
    cr_assert(asprintf(&p, "%s/%s", a, b) > 0);
    return p;
}

static bool exists(const char *dir, const char *name) {
    char *p = join(dir, name);
    struct stat sb;
    bool e = stat(p, &sb) == 0;
    free(p);
    return e;
}

static bool step_on_disk(const char *dir, int64_t step) {
    char name[32];
    snprintf(name, sizeof name, "%lld", (long long)step);
    return exists(dir, name);
}

/* {"params": {"w": f32[3,4], "b": f32[4]}, "count": i64[], "pair": (f32[2], i32[3])}
 * with values that depend on step. */
static gv_tree *make_state(int64_t step) {
    gv_tree *t = GVT_NN(gv_tree_new_dict());
    gv_tensor *w = GVT_NN(gv_tensor_zeros(GV_F32, GV_DIMS(3, 4)));
    for (int i = 0; i < 12; i++) GVT_OK(gv_tensor_set_flat(w, i, (double)step + i * 0.25));
    gv_tensor *b = GVT_NN(gv_tensor_full(GV_F32, GV_DIMS(4), -(double)step));
    gv_tensor *c = GVT_NN(gv_tensor_scalar(GV_I64, (double)step * 1000));
    gv_tensor *p0 = GVT_NN(gv_tensor_full(GV_F32, GV_DIMS(2), 0.5 * (double)step));
    gv_tensor *p1 = GVT_NN(gv_tensor_arange(GV_I32, 0, 3, 1));
    GVT_OK(gv_tree_insert_tensor(t, "params/w", w));
    GVT_OK(gv_tree_insert_tensor(t, "params/b", b));
    GVT_OK(gv_tree_insert_tensor(t, "count", c));
    gv_tree *pair = GVT_NN(gv_tree_new_tuple());
    GVT_OK(gv_tree_append_tensor(pair, p0));
    GVT_OK(gv_tree_append_tensor(pair, p1));
    GVT_OK(gv_tree_insert(t, "pair", pair));
    gv_tensor_free(w), gv_tensor_free(b), gv_tensor_free(c), gv_tensor_free(p0),
        gv_tensor_free(p1);
    return t;
}

static void assert_tree_eq(const gv_tree *a, const gv_tree *b) {
    GVT_OK(gv_tree_check_same(a, b, "restored"));
    char first[256];
    int n = gvt_tree_diff(a, b, first, sizeof first);
    cr_assert_eq(n, 0, "%d leaves differ, first %s", n, first);
}

/* Save make_state(step) as item "state", with {"loss": metric} unless NaN. */
static gv_status save_state(gv_checkpoint_manager *m, int64_t step, double metric) {
    gv_tree *s = make_state(step);
    gv_tree *metrics = NULL;
    if (!isnan(metric)) {
        metrics = GVT_NN(gv_tree_new_dict());
        gv_tensor *v = GVT_NN(gv_tensor_scalar(GV_F32, metric));
        GVT_OK(gv_tree_insert_tensor(metrics, "loss", v));
        gv_tensor_free(v);
    }
    const char *names[] = {"state"};
    const gv_tree *items[] = {s};
    gv_status st = gv_checkpoint_manager_save(m, step, names, items, 1, metrics);
    gv_tree_free(s);
    gv_tree_free(metrics);
    return st;
}

static void assert_steps(gv_checkpoint_manager *m, const char *dir, const int64_t *want,
                         size_t nwant) {
    int64_t *steps;
    size_t n;
    GVT_OK(gv_checkpoint_manager_all_steps(m, &steps, &n));
    char got[512] = "", exp[512] = "";
    for (size_t i = 0; i < n; i++)
        snprintf(got + strlen(got), sizeof got - strlen(got), "%lld ", (long long)steps[i]);
    for (size_t i = 0; i < nwant; i++)
        snprintf(exp + strlen(exp), sizeof exp - strlen(exp), "%lld ", (long long)want[i]);
    cr_assert_str_eq(got, exp, "all_steps: got [%s], want [%s]", got, exp);
    free(steps);
    /* and the disk agrees: exactly these step directories */
    for (int64_t s = 0; s <= 100; s++) {
        bool w = false;
        for (size_t i = 0; i < nwant; i++) w |= want[i] == s;
        cr_assert_eq(step_on_disk(dir, s), w, "step %lld on disk: %d", (long long)s, !w);
    }
}

#define STEPS(...) (int64_t[]){__VA_ARGS__}, sizeof((int64_t[]){__VA_ARGS__}) / sizeof(int64_t)

/* ---- retention ----------------------------------------------------------------- */

Test(checkpoint_manager, max_to_keep_k2) {
    char *dir = make_tmpdir();
    gv_checkpoint_manager *m =
        GVT_NN(gv_checkpoint_manager_new(dir, &(gv_checkpoint_options){.max_to_keep = 2}));
    for (int64_t s = 0; s <= 30; s += 10) GVT_OK(save_state(m, s, NAN));
    assert_steps(m, dir, STEPS(20, 30));
    cr_assert_eq(gv_checkpoint_manager_latest_step(m), 30);
    cr_assert_eq(gv_checkpoint_manager_best_step(m), 30);
    GVT_OK(gv_checkpoint_manager_close(m));
    rm_rf(dir);
    free(dir);
}

Test(checkpoint_manager, max_to_keep_zero_keeps_all) {
    char *dir = make_tmpdir();
    gv_checkpoint_manager *m =
        GVT_NN(gv_checkpoint_manager_new(dir, &(gv_checkpoint_options){.max_to_keep = 0}));
    for (int64_t s = 0; s < 5; s++) GVT_OK(save_state(m, s, NAN));
    assert_steps(m, dir, STEPS(0, 1, 2, 3, 4));
    GVT_OK(gv_checkpoint_manager_close(m));
    rm_rf(dir);
    free(dir);
}

Test(checkpoint_manager, keep_period_k3) {
    char *dir = make_tmpdir();
    gv_checkpoint_manager *m = GVT_NN(gv_checkpoint_manager_new(
        dir, &(gv_checkpoint_options){.max_to_keep = 2, .keep_period = 20}));
    for (int64_t s = 0; s <= 40; s += 10) GVT_OK(save_state(m, s, NAN));
    assert_steps(m, dir, STEPS(0, 20, 30, 40));
    GVT_OK(save_state(m, 50, NAN));
    assert_steps(m, dir, STEPS(0, 20, 40, 50));
    GVT_OK(gv_checkpoint_manager_close(m));
    rm_rf(dir);
    free(dir);
}

Test(checkpoint_manager, save_interval_k1) {
    char *dir = make_tmpdir();
    gv_checkpoint_manager *m = GVT_NN(
        gv_checkpoint_manager_new(dir, &(gv_checkpoint_options){.save_interval_steps = 10}));
    cr_assert(gv_checkpoint_manager_should_save(m, 3)); /* InitialSavePolicy */
    cr_assert(!gv_checkpoint_manager_should_save(m, -1));
    GVT_OK(save_state(m, 3, NAN));
    cr_assert(!gv_checkpoint_manager_should_save(m, 5));
    cr_assert(gv_checkpoint_manager_should_save(m, 10));
    cr_assert(!gv_checkpoint_manager_should_save(m, 3));
    cr_assert(!gv_checkpoint_manager_should_save(m, 0));
    /* a training loop: only multiples of 10 after the first */
    for (int64_t s = 4; s <= 35; s++)
        if (gv_checkpoint_manager_should_save(m, s)) GVT_OK(save_state(m, s, NAN));
    assert_steps(m, dir, STEPS(3, 10, 20, 30));
    /* save itself refuses, with a reason, what Orbax skips silently */
    GVT_FAILS(save_state(m, 30, NAN), GV_ERR_EXISTS, "step 30 already exists");
    GVT_FAILS(save_state(m, 25, NAN), GV_ERR_ARG, "below the latest step 30");
    GVT_OK(save_state(m, 31, NAN)); /* explicit off-interval save is honoured */
    GVT_OK(gv_checkpoint_manager_close(m));

    /* interval 0 and 1: every step */
    for (int k = 0; k <= 1; k++) {
        char *d2 = make_tmpdir();
        m = GVT_NN(gv_checkpoint_manager_new(
            d2, &(gv_checkpoint_options){.save_interval_steps = k}));
        GVT_OK(save_state(m, 0, NAN));
        cr_assert(gv_checkpoint_manager_should_save(m, 1));
        cr_assert(gv_checkpoint_manager_should_save(m, 7));
        GVT_OK(gv_checkpoint_manager_close(m));
        rm_rf(d2);
        free(d2);
    }
    rm_rf(dir);
    free(dir);
}

Test(checkpoint_manager, best_min_k4_keeps_newest) {
    char *dir = make_tmpdir();
    gv_checkpoint_options o = {.max_to_keep = 2, .best_metric = "loss", .best_mode_min = true};
    gv_checkpoint_manager *m = GVT_NN(gv_checkpoint_manager_new(dir, &o));
    cr_assert_eq(gv_checkpoint_manager_best_step(m), -1);
    const double loss[] = {0.5, 0.3, 0.4, 0.6};
    for (int s = 1; s <= 4; s++) GVT_OK(save_state(m, s, loss[s - 1]));
    /* Orbax keeps {2, 3} and deletes 4, the newest (E1); grove keeps it */
    assert_steps(m, dir, STEPS(2, 3, 4));
    cr_assert_eq(gv_checkpoint_manager_best_step(m), 2);
    cr_assert_eq(gv_checkpoint_manager_latest_step(m), 4);
    GVT_OK(save_state(m, 5, 0.2));
    assert_steps(m, dir, STEPS(2, 5));
    cr_assert_eq(gv_checkpoint_manager_best_step(m), 5);
    GVT_OK(gv_checkpoint_manager_close(m));

    /* the metrics come back from disk after reopening */
    m = GVT_NN(gv_checkpoint_manager_new(dir, &o));
    cr_assert_eq(gv_checkpoint_manager_best_step(m), 5);
    GVT_OK(save_state(m, 6, 0.25));
    assert_steps(m, dir, STEPS(5, 6));
    GVT_OK(save_state(m, 7, 0.9));
    assert_steps(m, dir, STEPS(5, 6, 7));
    cr_assert_eq(gv_checkpoint_manager_best_step(m), 5);
    gv_tree *metrics = GVT_NN(gv_checkpoint_manager_restore(m, 7, "metrics", NULL));
    double v;
    GVT_OK(gv_tensor_get_flat(gv_tree_get_tensor(metrics, "loss"), 0, &v));
    cr_assert_float_eq(v, 0.9, 1e-6);
    gv_tree_free(metrics);
    GVT_OK(gv_checkpoint_manager_close(m));
    rm_rf(dir);
    free(dir);
}

Test(checkpoint_manager, best_max) {
    char *dir = make_tmpdir();
    gv_checkpoint_options o = {.max_to_keep = 1, .best_metric = "loss", .best_mode_min = false};
    gv_checkpoint_manager *m = GVT_NN(gv_checkpoint_manager_new(dir, &o));
    const double acc[] = {0.1, 0.9, 0.5, 0.2, NAN};
    for (int s = 1; s <= 4; s++) GVT_OK(save_state(m, s, acc[s - 1]));
    assert_steps(m, dir, STEPS(2, 4));
    cr_assert_eq(gv_checkpoint_manager_best_step(m), 2);
    /* a tie goes to the newer step */
    GVT_OK(save_state(m, 5, 0.9));
    assert_steps(m, dir, STEPS(5));
    cr_assert_eq(gv_checkpoint_manager_best_step(m), 5);
    GVT_OK(gv_checkpoint_manager_close(m));
    rm_rf(dir);
    free(dir);
}

Test(checkpoint_manager, keep_checkpoints_without_metrics) {
    for (int flag = 0; flag <= 1; flag++) {
        char *dir = make_tmpdir();
        gv_checkpoint_options o = {.max_to_keep = 1, .best_metric = "loss", .best_mode_min = true,
                                   .drop_checkpoints_without_metrics = !flag};
        gv_checkpoint_manager *m = GVT_NN(gv_checkpoint_manager_new(dir, &o));
        GVT_OK(save_state(m, 1, NAN));
        cr_assert_eq(gv_checkpoint_manager_best_step(m), -1); /* no step has metrics */
        GVT_OK(save_state(m, 2, 0.5));
        GVT_OK(save_state(m, 3, 0.4));
        GVT_OK(save_state(m, 4, 0.6));
        GVT_OK(save_state(m, 5, NAN));
        if (flag) assert_steps(m, dir, STEPS(1, 3, 5));
        else assert_steps(m, dir, STEPS(3, 5));
        cr_assert_eq(gv_checkpoint_manager_best_step(m), 3);
        GVT_OK(gv_checkpoint_manager_close(m));
        rm_rf(dir);
        free(dir);
    }
}

Test(checkpoint_manager, best_metric_path_must_exist) {
    char *dir = make_tmpdir();
    gv_checkpoint_options o = {.best_metric = "eval/loss"};
    gv_checkpoint_manager *m = GVT_NN(gv_checkpoint_manager_new(dir, &o));
    GVT_FAILS(save_state(m, 1, 0.5), GV_ERR_NOT_FOUND, "eval");
    cr_assert_eq(gv_checkpoint_manager_latest_step(m), -1);
    GVT_OK(gv_checkpoint_manager_close(m));
    rm_rf(dir);
    free(dir);
}

/* ---- items, restore, reopen, delete ------------------------------------------- */

Test(checkpoint_manager, several_items_and_restore_into) {
    char *dir = make_tmpdir();
    gv_checkpoint_manager *m = GVT_NN(gv_checkpoint_manager_new(dir, NULL));
    gv_tree *state = make_state(7), *other = make_state(8);
    gv_tree *config = GVT_NN(gv_tree_new_dict());
    gv_tensor *lr = GVT_NN(gv_tensor_scalar(GV_F64, 1e-3));
    GVT_OK(gv_tree_insert_tensor(config, "lr", lr));
    gv_tensor_free(lr);
    const char *names[] = {"state", "config", "ema"};
    const gv_tree *items[] = {state, config, other};
    GVT_OK(gv_checkpoint_manager_save(m, 7, names, items, 3, NULL));
    cr_assert(exists(dir, "7/state.safetensors"));
    cr_assert(exists(dir, "7/config.safetensors"));
    cr_assert(exists(dir, "7/ema.safetensors"));
    cr_assert(!exists(dir, "7/metrics.safetensors"));

    for (int i = 0; i < 3; i++) {
        gv_tree *r = GVT_NN(gv_checkpoint_manager_restore(m, 7, names[i], NULL));
        assert_tree_eq(items[i], r);
        gv_tree_free(r);
    }
    /* step < 0: the latest */
    gv_tree *r = GVT_NN(gv_checkpoint_manager_restore(m, -1, "ema", NULL));
    assert_tree_eq(other, r);
    gv_tree_free(r);

    /* into a target: its structure (the tuple stays a tuple), new tensors */
    gv_tree *target = gv_tree_zeros_like(state);
    r = GVT_NN(gv_checkpoint_manager_restore(m, 7, "state", target));
    assert_tree_eq(state, r);
    cr_assert_eq(gv_tree_kind_of(gv_tree_get(r, "pair")), GV_TREE_TUPLE);
    double z;
    GVT_OK(gv_tensor_get_flat(gv_tree_get_tensor(target, "params/w"), 1, &z));
    cr_assert_eq(z, 0.0, "the target is not modified");
    gv_tree_free(r);
    gv_tree_free(target);

    /* a target of another structure: the checkpointer's structure error */
    GVT_NULL(gv_checkpoint_manager_restore(m, 7, "config", state), GV_ERR_STRUCTURE, "config");
    GVT_NULL(gv_checkpoint_manager_restore(m, 7, "nope", NULL), GV_ERR_NOT_FOUND, "no item 'nope'");
    GVT_NULL(gv_checkpoint_manager_restore(m, 6, "state", NULL), GV_ERR_NOT_FOUND, "no step 6");
    GVT_NULL(gv_checkpoint_manager_restore(m, 7, "../7/state", NULL), GV_ERR_ARG, "not valid");

    /* bad item names and duplicate names */
    const char *bad[][2] = {{"metrics", "x"}, {"a/b", "x"}, {".hidden", "x"}, {"", "x"},
                            {"same", "same"}};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        const gv_tree *two[] = {state, state};
        GVT_FAILS(gv_checkpoint_manager_save(m, 9, bad[i], two, 2, NULL), GV_ERR_ARG, "item name");
    }
    GVT_FAILS(gv_checkpoint_manager_save(m, 9, names, items, 0, NULL), GV_ERR_ARG, "at least one");
    cr_assert_eq(gv_checkpoint_manager_latest_step(m), 7);

    GVT_OK(gv_checkpoint_manager_close(m));
    gv_tree_free(state);
    gv_tree_free(other);
    gv_tree_free(config);
    rm_rf(dir);
    free(dir);
}

Test(checkpoint_manager, reopen_and_delete) {
    char *dir = make_tmpdir();
    char *sub = join(dir, "run/a"); /* create makes the parents too */
    gv_checkpoint_manager *m = GVT_NN(gv_checkpoint_manager_new(sub, NULL));
    cr_assert_eq(gv_checkpoint_manager_latest_step(m), -1);
    GVT_NULL(gv_checkpoint_manager_restore(m, -1, "state", NULL), GV_ERR_NOT_FOUND,
             "no checkpoints"); /* K10 */
    for (int64_t s = 0; s < 12; s += 3) GVT_OK(save_state(m, s, NAN));
    GVT_OK(gv_checkpoint_manager_close(m));

    m = GVT_NN(gv_checkpoint_manager_new(sub, NULL));
    assert_steps(m, sub, STEPS(0, 3, 6, 9));
    cr_assert_eq(gv_checkpoint_manager_latest_step(m), 9);
    cr_assert(gv_checkpoint_manager_should_save(m, 10));
    cr_assert(!gv_checkpoint_manager_should_save(m, 9));
    for (int64_t s = 0; s < 12; s += 3) {
        gv_tree *want = make_state(s), *got = GVT_NN(gv_checkpoint_manager_restore(m, s, "state", NULL));
        assert_tree_eq(want, got);
        gv_tree_free(want);
        gv_tree_free(got);
    }
    GVT_OK(gv_checkpoint_manager_delete(m, 3));
    GVT_OK(gv_checkpoint_manager_delete(m, 9));
    GVT_FAILS(gv_checkpoint_manager_delete(m, 9), GV_ERR_NOT_FOUND, "no step 9");
    GVT_FAILS(gv_checkpoint_manager_delete(m, 4), GV_ERR_NOT_FOUND, "no step 4");
    assert_steps(m, sub, STEPS(0, 6));
    cr_assert_eq(gv_checkpoint_manager_latest_step(m), 6);
    GVT_OK(save_state(m, 7, NAN)); /* after deleting 9, 7 is above the latest */
    GVT_OK(gv_checkpoint_manager_close(m));

    m = GVT_NN(gv_checkpoint_manager_new(sub, NULL));
    assert_steps(m, sub, STEPS(0, 6, 7));
    GVT_OK(gv_checkpoint_manager_close(m));
    rm_rf(dir);
    free(sub);
    free(dir);
}

Test(checkpoint_manager, leftover_temporaries) {
    char *dir = make_tmpdir();
    gv_checkpoint_manager *m = GVT_NN(gv_checkpoint_manager_new(dir, NULL));
    GVT_OK(save_state(m, 5, NAN));
    GVT_OK(gv_checkpoint_manager_close(m));

    /* what a crash leaves (a dead writer: pid above any pid_max), what a
     * live writer is busy with (our parent), and things grove did not make */
    char buf[128];
    const char *dead[] = {".tmp-7-999999999-0", ".tmp-del-3-999999999-1"};
    for (int i = 0; i < 2; i++) {
        char *p = join(dir, dead[i]);
        cr_assert_eq(mkdir(p, 0777), 0);
        char *f = join(p, "state.safetensors");
        FILE *fp = fopen(f, "w");
        fputs("half", fp);
        fclose(fp);
        free(f);
        free(p);
    }
    snprintf(buf, sizeof buf, ".tmp-9-%ld-0", (long)getppid());
    char *live = join(dir, buf);
    cr_assert_eq(mkdir(live, 0777), 0);
    const char *foreign[] = {"007", "junk", "12x", "-1", ".tmp-8-junk", ".tmp-8-1-2x"};
    for (int i = 0; i < 6; i++) {
        char *p = join(dir, foreign[i]);
        cr_assert_eq(mkdir(p, 0777), 0);
        free(p);
    }
    char *regular = join(dir, "11"); /* a file named like a step */
    FILE *fp = fopen(regular, "w");
    fclose(fp);

    m = GVT_NN(gv_checkpoint_manager_new(dir, NULL));
    int64_t *steps;
    size_t n;
    GVT_OK(gv_checkpoint_manager_all_steps(m, &steps, &n));
    cr_assert_eq(n, 1);
    cr_assert_eq(steps[0], 5);
    free(steps);
    for (int i = 0; i < 2; i++) cr_assert(!exists(dir, dead[i]), "%s not removed", dead[i]);
    cr_assert(exists(dir, buf), "a live writer's temporary was removed");
    for (int i = 0; i < 6; i++) cr_assert(exists(dir, foreign[i]), "%s removed", foreign[i]);
    cr_assert(exists(dir, "11"));
    GVT_OK(save_state(m, 12, NAN));
    GVT_OK(gv_checkpoint_manager_close(m));
    rmdir(live);
    free(live);
    free(regular);
    rm_rf(dir);
    free(dir);
}

/* ---- async ------------------------------------------------------------------------ */

Test(checkpoint_manager, async_loop_identical) {
    char *dir = make_tmpdir();
    gv_checkpoint_manager *m = GVT_NN(gv_checkpoint_manager_new(
        dir, &(gv_checkpoint_options){.async = true, .max_to_keep = 5}));
    for (int64_t s = 0; s < 20; s++) {
        gv_tree *st = make_state(s);
        const char *names[] = {"state"};
        const gv_tree *items[] = {st};
        GVT_OK(gv_checkpoint_manager_save(m, s, names, items, 1, NULL));
        /* the caller may write its tensors as soon as save returns */
        GVT_OK(gv_tensor_set_flat(gv_tree_get_tensor(st, "params/w"), 0, -12345.0));
        gv_tree_free(st);
        cr_assert_eq(gv_checkpoint_manager_latest_step(m), s); /* pending steps count */
    }
    GVT_OK(gv_checkpoint_manager_wait_until_finished(m));
    assert_steps(m, dir, STEPS(15, 16, 17, 18, 19));
    for (int64_t s = 15; s < 20; s++) {
        gv_tree *want = make_state(s), *got = GVT_NN(gv_checkpoint_manager_restore(m, s, "state", NULL));
        assert_tree_eq(want, got);
        gv_tree_free(want);
        gv_tree_free(got);
    }
    GVT_OK(gv_checkpoint_manager_close(m));

    /* restore and delete right after an async save wait for it */
    m = GVT_NN(gv_checkpoint_manager_new(dir, &(gv_checkpoint_options){.async = true}));
    GVT_OK(save_state(m, 20, NAN));
    gv_tree *got = GVT_NN(gv_checkpoint_manager_restore(m, 20, "state", NULL));
    gv_tree *want = make_state(20);
    assert_tree_eq(want, got);
    gv_tree_free(got);
    gv_tree_free(want);
    GVT_OK(save_state(m, 21, NAN));
    GVT_OK(gv_checkpoint_manager_delete(m, 21));

    /* snapshot buffers are reused only for the same structure, key order
     * included: another tree, then the same keys inserted in another order */
    gv_tree *ab = GVT_NN(gv_tree_new_dict()), *ba = GVT_NN(gv_tree_new_dict());
    gv_tensor *x = GVT_NN(gv_tensor_full(GV_F32, GV_DIMS(3), 1.0));
    gv_tensor *y = GVT_NN(gv_tensor_full(GV_F32, GV_DIMS(3), 2.0));
    GVT_OK(gv_tree_insert_tensor(ab, "a", x));
    GVT_OK(gv_tree_insert_tensor(ab, "b", y));
    GVT_OK(gv_tree_insert_tensor(ba, "b", y));
    GVT_OK(gv_tree_insert_tensor(ba, "a", x));
    const char *names[] = {"state"};
    for (int64_t s = 22; s < 28; s++) {
        const gv_tree *items[] = {s % 2 ? ba : ab};
        GVT_OK(gv_checkpoint_manager_save(m, s, names, items, 1, NULL));
        GVT_OK(gv_tensor_set_flat(x, 0, (double)s)); /* after the snapshot */
    }
    GVT_OK(gv_checkpoint_manager_wait_until_finished(m));
    for (int64_t s = 22; s < 28; s++) {
        got = GVT_NN(gv_checkpoint_manager_restore(m, s, "state", NULL));
        cr_assert_str_eq(gv_tree_key(got, 0), s % 2 ? "b" : "a", "step %lld", (long long)s);
        double v;
        GVT_OK(gv_tensor_get_flat(gv_tree_get_tensor(got, "a"), 0, &v));
        cr_assert_eq(v, s == 22 ? 1.0 : (double)(s - 1), "step %lld", (long long)s);
        gv_tree_free(got);
    }
    gv_tree_free(ab);
    gv_tree_free(ba);
    gv_tensor_free(x);
    gv_tensor_free(y);
    GVT_OK(gv_checkpoint_manager_close(m));
    cr_assert(!step_on_disk(dir, 21));
    rm_rf(dir);
    free(dir);
}

Test(checkpoint_manager, async_error_surfaces) {
    char *dir = make_tmpdir();
    gv_checkpoint_manager *m = GVT_NN(gv_checkpoint_manager_new(
        dir, &(gv_checkpoint_options){.async = true}));
    GVT_OK(save_state(m, 1, NAN));
    GVT_OK(gv_checkpoint_manager_wait_until_finished(m));
    rm_rf(dir); /* the directory disappears under the manager */

    /* on wait_until_finished, once */
    GVT_OK(save_state(m, 2, NAN));
    GVT_FAILS(gv_checkpoint_manager_wait_until_finished(m), GV_ERR_IO,
              "background save of step 2");
    GVT_OK(gv_checkpoint_manager_wait_until_finished(m));

    /* on the next save (the writer fails some time after save returns) */
    bool surfaced = false;
    for (int64_t s = 3; s < 200 && !surfaced; s++) {
        gv_clear_error();
        gv_status st = save_state(m, s, NAN);
        if (st != GV_OK) {
            cr_assert_eq(st, GV_ERR_IO, "%s", gv_last_error());
            cr_assert(strstr(gv_last_error(), "background save of step"), "%s", gv_last_error());
            surfaced = true;
        }
        usleep(2000);
    }
    cr_assert(surfaced);

    /* on close */
    GVT_OK(gv_checkpoint_manager_wait_until_finished(m));
    GVT_OK(save_state(m, 500, NAN));
    GVT_FAILS(gv_checkpoint_manager_close(m), GV_ERR_IO, "background save of step 500");
    free(dir);
}

/* ---- releasing a manager with saves queued ------------------------------------- */

/* Every write slowed, so that saves are still queued when the manager is
 * released; and failing with ENOSPC once fail_writes is set. */
static atomic_int fail_writes;
/* While the gate is closed, the writer thread waits in its first write: a
 * test queues saves behind it knowing none has been written yet, however
 * loaded the machine is (a sleep alone made that a race). */
static atomic_int gate_closed;
static ssize_t slow_write(int fd, const void *buf, size_t n, void *ud) {
    (void)ud;
    while (atomic_load(&gate_closed)) usleep(1000);
    usleep(20000);
    if (atomic_load(&fail_writes)) {
        errno = ENOSPC;
        return -1;
    }
    return write(fd, buf, n);
}

static void slow_writes_on(void) {
    atomic_store(&fail_writes, 0);
    gv_atomic_io_set_hooks(&(gv_atomic_io_hooks){.write = slow_write});
}

static void assert_states_restore(const char *dir, int64_t from, int64_t to) {
    gv_checkpoint_manager *m = GVT_NN(gv_checkpoint_manager_new(dir, NULL));
    for (int64_t s = from; s <= to; s++) {
        gv_tree *want = make_state(s);
        gv_tree *got = GVT_NN(gv_checkpoint_manager_restore(m, s, "state", NULL));
        assert_tree_eq(want, got);
        gv_tree_free(want);
        gv_tree_free(got);
    }
    GVT_OK(gv_checkpoint_manager_close(m));
}

Test(checkpoint_manager, close_finishes_queued_saves) {
    char *dir = make_tmpdir();
    slow_writes_on();
    gv_checkpoint_manager *m =
        GVT_NN(gv_checkpoint_manager_new(dir, &(gv_checkpoint_options){.async = true}));
    for (int64_t s = 0; s < 5; s++) GVT_OK(save_state(m, s, NAN));
    cr_assert(!step_on_disk(dir, 4), "step 4 written before close: the test proves nothing");
    GVT_OK(gv_checkpoint_manager_close(m)); /* no wait_until_finished first */
    gv_atomic_io_set_hooks(NULL);
    for (int64_t s = 0; s < 5; s++) cr_assert(step_on_disk(dir, s), "step %d lost", (int)s);
    assert_states_restore(dir, 0, 4);
    rm_rf(dir);
    free(dir);
}

Test(checkpoint_manager, close_reports_every_failed_queued_save) {
    char *dir = make_tmpdir();
    slow_writes_on();
    gv_checkpoint_manager *m =
        GVT_NN(gv_checkpoint_manager_new(dir, &(gv_checkpoint_options){.async = true}));
    GVT_OK(save_state(m, 1, NAN));
    GVT_OK(gv_checkpoint_manager_wait_until_finished(m));
    atomic_store(&fail_writes, 1);
    atomic_store(&gate_closed, 1);
    GVT_OK(save_state(m, 2, NAN));
    GVT_OK(save_state(m, 3, NAN)); /* queued behind 2, whose write waits at the gate */
    atomic_store(&gate_closed, 0);
    gv_clear_error();
    cr_assert_eq(gv_checkpoint_manager_close(m), GV_ERR_IO, "%s", gv_last_error());
    gv_atomic_io_set_hooks(NULL);
    const char *msg = gv_last_error();
    cr_assert(strstr(msg, "background save of step 2"), "%s", msg);
    cr_assert(strstr(msg, "No space left on device"), "%s", msg);
    cr_assert(strstr(msg, "1 later background save failed too, the last of step 3"), "%s", msg);
    cr_assert(step_on_disk(dir, 1) && !step_on_disk(dir, 2) && !step_on_disk(dir, 3));
    rm_rf(dir);
    free(dir);
}

/* Run exit_without_close.c: a program that returns from main with saves
 * queued and its manager never closed. Its stderr goes to *err. */
static int run_exit_without_close(const char *dir, const char *mode, char **err) {
    char *errpath = join(dir, "stderr.txt"), *ckpt = join(dir, "ckpt");
    /* posix_spawn, not fork: a forked copy of a Criterion worker confuses
     * its runner (with --full-stats it reports as a stranger) */
    posix_spawn_file_actions_t fa;
    cr_assert_eq(posix_spawn_file_actions_init(&fa), 0);
    cr_assert_eq(posix_spawn_file_actions_addopen(&fa, 2, errpath, O_WRONLY | O_CREAT | O_TRUNC,
                                                  0644), 0);
    char *argv[] = {CKPT_EXIT_BIN, ckpt, (char *)mode, NULL};
    pid_t pid;
    int rc = posix_spawn(&pid, CKPT_EXIT_BIN, &fa, NULL, argv, environ);
    cr_assert_eq(rc, 0, "posix_spawn %s: %s", CKPT_EXIT_BIN, strerror(rc));
    posix_spawn_file_actions_destroy(&fa);
    free(ckpt);
    int status;
    cr_assert_eq(waitpid(pid, &status, 0), pid);
    *err = gvt_read_file(errpath, NULL);
    free(errpath);
    cr_assert(WIFEXITED(status), "the program did not exit normally");
    return WEXITSTATUS(status);
}

Test(checkpoint_manager, exit_without_close) {
    char *dir = make_tmpdir(), *ckpt = join(dir, "ckpt"), *err;
    /* every queued step is on disk once the process has exited */
    cr_assert_eq(run_exit_without_close(dir, "finish", &err), 0, "%s", err);
    cr_assert_str_eq(err, "", "a clean exit reports nothing");
    free(err);
    gv_checkpoint_manager *m = GVT_NN(gv_checkpoint_manager_new(ckpt, NULL));
    assert_steps(m, ckpt, STEPS(0, 1, 2, 3));
    for (int64_t s = 0; s < 4; s++) {
        gv_tree *t = GVT_NN(gv_checkpoint_manager_restore(m, s, "state", NULL));
        double v;
        GVT_OK(gv_tensor_get_flat(gv_tree_leaf_tensor(t), 999, &v));
        cr_assert_eq(v, (double)(s * 1000 + 999), "step %d", (int)s);
        gv_tree_free(t);
    }
    GVT_OK(gv_checkpoint_manager_close(m));
    rm_rf(ckpt);

    /* a queued save that fails at exit is reported on stderr, naming the step */
    cr_assert_eq(run_exit_without_close(dir, "fail", &err), 0, "%s", err);
    cr_assert(strstr(err, "not closed at exit: background save of step 1"), "stderr: '%s'", err);
    cr_assert(strstr(err, "No space left on device"), "stderr: '%s'", err);
    free(err);
    free(ckpt);
    rm_rf(dir);
    free(dir);
}

/* ---- restoring the latest step that reads cleanly ------------------------------- */

static void truncate_half(const char *path) {
    struct stat sb;
    cr_assert_eq(stat(path, &sb), 0, "%s: %s", path, strerror(errno));
    cr_assert_eq(truncate(path, sb.st_size / 2), 0);
}

/* Flip one bit of the byte `from_end` bytes before the end (tensor data). */
static void flip_bit(const char *path, off_t from_end) {
    struct stat sb;
    cr_assert_eq(stat(path, &sb), 0, "%s: %s", path, strerror(errno));
    int fd = open(path, O_RDWR);
    cr_assert(fd >= 0);
    unsigned char c;
    cr_assert_eq(pread(fd, &c, 1, sb.st_size - from_end), 1);
    c ^= 0x08;
    cr_assert_eq(pwrite(fd, &c, 1, sb.st_size - from_end), 1);
    close(fd);
}

/* Steps 1..3, each with the items "state" (make_state) and "meta". */
static void save_three_steps(const char *dir) {
    gv_checkpoint_manager *m = GVT_NN(gv_checkpoint_manager_new(dir, NULL));
    for (int64_t s = 1; s <= 3; s++) {
        gv_tree *st = make_state(s), *meta = GVT_NN(gv_tree_new_dict());
        gv_tensor *v = GVT_NN(gv_tensor_scalar(GV_I64, (double)s));
        GVT_OK(gv_tree_insert_tensor(meta, "step", v));
        gv_tensor_free(v);
        GVT_OK(gv_checkpoint_manager_save(m, s, (const char *[]){"state", "meta"},
                                          (const gv_tree *[]){st, meta}, 2, NULL));
        gv_tree_free(st);
        gv_tree_free(meta);
    }
    GVT_OK(gv_checkpoint_manager_close(m));
}

static const char *const both[] = {"state", "meta"};

Test(checkpoint_manager, restore_latest_skips_unreadable_steps_on_request) {
    char *dir = make_tmpdir();
    save_three_steps(dir);
    char *f3 = join(dir, "3/state.safetensors"), *f2 = join(dir, "2/meta.safetensors");
    truncate_half(f3); /* the newest: truncated */
    gv_checkpoint_manager *m = GVT_NN(gv_checkpoint_manager_new(dir, NULL));
    gv_tree *out[2] = {NULL, NULL};
    gv_restore_result res;

    /* without the option: an error naming the newest step's file, as restore */
    gv_clear_error();
    cr_assert_eq(gv_checkpoint_manager_restore_latest(m, both, NULL, 2, out, NULL, &res),
                 GV_ERR_FORMAT, "%s", gv_last_error());
    cr_assert(strstr(gv_last_error(), f3), "'%s' does not name %s", gv_last_error(), f3);
    cr_assert(!out[0] && !out[1] && res.step == -1 && res.nskipped == 0);
    gv_restore_result_clear(&res);

    /* with it: step 2, and step 3 named as skipped with the reason */
    gv_restore_options skip = {.skip_unreadable = true};
    GVT_OK(gv_checkpoint_manager_restore_latest(m, both, NULL, 2, out, &skip, &res));
    cr_assert_eq(res.step, 2);
    cr_assert_eq(res.nskipped, 1);
    cr_assert_eq(res.skipped[0], 3);
    cr_assert(strstr(res.skipped_message, "step 3: "), "%s", res.skipped_message);
    cr_assert(strstr(res.skipped_message, f3), "%s", res.skipped_message);
    cr_assert(strstr(res.skipped_message, "truncated"), "%s", res.skipped_message);
    gv_tree *want = make_state(2);
    assert_tree_eq(want, out[0]);
    gv_tree_free(want);
    double v;
    GVT_OK(gv_tensor_get_flat(gv_tree_get_tensor(out[1], "step"), 0, &v));
    cr_assert_eq(v, 2.0, "meta from step %g: the items must come from one step", v);
    gv_tree_free(out[0]), gv_tree_free(out[1]);
    gv_restore_result_clear(&res);

    /* a flipped bit in another item of step 2 skips the whole step: step 1 */
    flip_bit(f2, 3);
    GVT_OK(gv_checkpoint_manager_restore_latest(m, both, NULL, 2, out, &skip, &res));
    cr_assert_eq(res.step, 1);
    cr_assert_eq(res.nskipped, 2);
    cr_assert(res.skipped[0] == 3 && res.skipped[1] == 2);
    cr_assert(strstr(res.skipped_message, "\nstep 2: "), "%s", res.skipped_message);
    cr_assert(strstr(res.skipped_message, "checksum mismatch"), "%s", res.skipped_message);
    cr_assert(strstr(res.skipped_message, f2), "%s", res.skipped_message);
    want = make_state(1);
    assert_tree_eq(want, out[0]);
    gv_tree_free(want);
    gv_tree_free(out[0]), gv_tree_free(out[1]);
    gv_restore_result_clear(&res);

    /* only the items asked for are read: "state" alone, into a target and
     * without a result, comes from step 2, whose state is intact */
    gv_tree *target = make_state(0);
    GVT_OK(gv_checkpoint_manager_restore_latest(m, both, (const gv_tree *[]){target}, 1, out,
                                                &skip, NULL));
    want = make_state(2);
    assert_tree_eq(want, out[0]);
    gv_tree_free(want);
    gv_tree_free(out[0]);
    gv_tree_free(target);
    GVT_OK(gv_checkpoint_manager_close(m));
    free(f3);
    free(f2);
    rm_rf(dir);
    free(dir);
}

Test(checkpoint_manager, restore_latest_errors) {
    char *dir = make_tmpdir();
    gv_checkpoint_manager *m = GVT_NN(gv_checkpoint_manager_new(dir, NULL));
    gv_tree *out[2];
    gv_restore_options skip = {.skip_unreadable = true};
    GVT_FAILS(gv_checkpoint_manager_restore_latest(m, both, NULL, 2, out, &skip, NULL),
              GV_ERR_NOT_FOUND, "no checkpoints");
    GVT_FAILS(gv_checkpoint_manager_restore_latest(m, both, NULL, 0, out, &skip, NULL),
              GV_ERR_ARG, "nitems");
    GVT_FAILS(gv_checkpoint_manager_restore_latest(m, NULL, NULL, 1, out, &skip, NULL),
              GV_ERR_ARG, "item_names");
    GVT_OK(gv_checkpoint_manager_close(m));
    save_three_steps(dir);
    m = GVT_NN(gv_checkpoint_manager_new(dir, NULL));

    /* a target that does not match is the caller's error, not damage: no skip */
    gv_tree *bad = make_state(0);
    gv_tensor *b5 = GVT_NN(gv_tensor_zeros(GV_F32, GV_DIMS(5)));
    GVT_OK(gv_tree_set_tensor(bad, "params/b", b5));
    gv_tensor_free(b5);
    gv_restore_result res;
    gv_clear_error();
    cr_assert_eq(gv_checkpoint_manager_restore_latest(m, both, (const gv_tree *[]){bad}, 1, out,
                                                      &skip, &res), GV_ERR_STRUCTURE);
    cr_assert(strstr(gv_last_error(), "params/b"), "%s", gv_last_error());
    cr_assert(res.step == -1 && res.nskipped == 0 && !out[0]);
    gv_restore_result_clear(&res);
    gv_tree_free(bad);

    /* every step unreadable: NOT_FOUND listing each */
    for (int s = 1; s <= 3; s++) {
        char name[32];
        snprintf(name, sizeof name, "%d/state.safetensors", s);
        char *f = join(dir, name);
        truncate_half(f);
        free(f);
    }
    gv_clear_error();
    cr_assert_eq(gv_checkpoint_manager_restore_latest(m, both, NULL, 2, out, &skip, &res),
                 GV_ERR_NOT_FOUND);
    cr_assert(strstr(gv_last_error(), "no step in"), "%s", gv_last_error());
    cr_assert(strstr(gv_last_error(), "step 3: ") && strstr(gv_last_error(), "step 1: "), "%s",
              gv_last_error());
    cr_assert(res.step == -1 && res.nskipped == 3 && !out[0] && !out[1]);
    gv_restore_result_clear(&res);
    cr_assert(res.skipped == NULL && res.skipped_message == NULL && res.step == -1);
    GVT_OK(gv_checkpoint_manager_close(m));
    rm_rf(dir);
    free(dir);
}

/* ---- bad input ------------------------------------------------------------------- */

Test(checkpoint_manager, bad_directory_and_options) {
    char *dir = make_tmpdir();
    char *missing = join(dir, "missing");
    GVT_NULL(gv_checkpoint_manager_new(missing, &(gv_checkpoint_options){.must_exist = true}),
             GV_ERR_NOT_FOUND, "missing");
    cr_assert(!exists(dir, "missing"));
    char *file = join(dir, "file");
    FILE *fp = fopen(file, "w");
    fputs("x", fp);
    fclose(fp);
    GVT_NULL(gv_checkpoint_manager_new(file, NULL), GV_ERR_IO, "not a directory");
    char *under = join(file, "sub");
    GVT_NULL(gv_checkpoint_manager_new(under, NULL), GV_ERR_IO, "file");
    GVT_NULL(gv_checkpoint_manager_new(NULL, NULL), GV_ERR_ARG, "NULL");
    GVT_NULL(gv_checkpoint_manager_new(dir, &(gv_checkpoint_options){.max_to_keep = -1}),
             GV_ERR_ARG, "max_to_keep");
    GVT_NULL(gv_checkpoint_manager_new(dir, &(gv_checkpoint_options){.best_metric = ""}),
             GV_ERR_ARG, "best_metric");

    gv_checkpoint_manager *m = GVT_NN(gv_checkpoint_manager_new(dir, NULL));
    GVT_FAILS(save_state(m, -2, NAN), GV_ERR_ARG, "negative");
    GVT_FAILS(gv_checkpoint_manager_save(NULL, 1, NULL, NULL, 0, NULL), GV_ERR_ARG, "NULL");
    GVT_FAILS(gv_checkpoint_manager_all_steps(m, NULL, NULL), GV_ERR_ARG, "NULL");
    cr_assert_eq(gv_checkpoint_manager_latest_step(NULL), -1);
    cr_assert(!gv_checkpoint_manager_should_save(NULL, 1));
    GVT_NULL(gv_checkpoint_manager_restore(m, 1, NULL, NULL), GV_ERR_ARG, "item_name");
    GVT_OK(gv_checkpoint_manager_close(m));
    cr_assert_eq(gv_checkpoint_manager_close(NULL), GV_OK);
    free(under);
    free(file);
    free(missing);
    rm_rf(dir);
    free(dir);
}

/* A shape-only leaf has no data: refused at once, sync or async, by name. */
Test(checkpoint_manager, shape_only_leaves_are_not_saved) {
    char *dir = make_tmpdir();
    for (int async = 0; async <= 1; async++) {
        gv_checkpoint_manager *m = GVT_NN(
            gv_checkpoint_manager_new(dir, &(gv_checkpoint_options){.async = async}));
        gv_tree *st = make_state(1);
        gv_tensor *ghost = GVT_NN(gv_shape_dtype_struct(GV_F32, GV_DIMS(3, 4)));
        GVT_OK(gv_tree_set_tensor(st, "params/w", ghost));
        const char *names[] = {"state"};
        const gv_tree *items[] = {st};
        GVT_FAILS(gv_checkpoint_manager_save(m, 1, names, items, 1, NULL), GV_ERR_ARG,
                  "step 1: cannot save item state: params/w: the leaf is shape-only");
        gv_tree *metrics = GVT_NN(gv_tree_new_leaf(ghost));
        items[0] = make_state(1);
        GVT_FAILS(gv_checkpoint_manager_save(m, 1, names, items, 1, metrics), GV_ERR_ARG,
                  "step 1: cannot save metrics: <root>: the leaf is shape-only");
        cr_assert_eq(gv_checkpoint_manager_latest_step(m), -1);
        GVT_OK(gv_checkpoint_manager_close(m));
        cr_assert(!step_on_disk(dir, 1));
        gv_tree_free((gv_tree *)items[0]);
        gv_tree_free(metrics);
        gv_tensor_free(ghost);
        gv_tree_free(st);
    }
    rm_rf(dir);
    free(dir);
}

/* NULL options and a zeroed struct are the same defaults (Orbax's: the
 * directory is created), and naming one field keeps the others' defaults. */
Test(checkpoint_manager, options_zero_is_the_default) {
    char *dir = make_tmpdir();
    const gv_checkpoint_options zero = {0}, two = {.max_to_keep = 2};
    const gv_checkpoint_options *cases[] = {NULL, &zero, &two};
    const char *names[] = {"null/run", "zero/run", "two/run"};
    for (int c = 0; c < 3; c++) {
        char *sub = join(dir, names[c]);
        gv_checkpoint_manager *m = GVT_NN(gv_checkpoint_manager_new(sub, cases[c]));
        cr_assert(exists(dir, names[c]), "options %s: directory not created", names[c]);
        for (int64_t s = 0; s < 4; s++) GVT_OK(save_state(m, s, NAN));
        if (c < 2) assert_steps(m, sub, STEPS(0, 1, 2, 3));
        else assert_steps(m, sub, STEPS(2, 3));
        GVT_OK(gv_checkpoint_manager_close(m));
        free(sub);
    }
    rm_rf(dir);
    free(dir);
}

/* Each field is checked on its own, and the message names it. */
Test(checkpoint_manager, options_every_field_checked) {
    char *dir = make_tmpdir();
    struct {
        gv_checkpoint_options o;
        const char *field;
    } bad[] = {
        {{.max_to_keep = -1}, "max_to_keep is -1"},
        {{.save_interval_steps = -5}, "save_interval_steps is -5"},
        {{.keep_period = -2}, "keep_period is -2"},
        {{.best_metric = ""}, "best_metric is empty"},
        {{.best_mode_min = true}, "best_mode_min is set but best_metric is NULL"},
        {{.drop_checkpoints_without_metrics = true},
         "drop_checkpoints_without_metrics is set but best_metric is NULL"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++)
        GVT_NULL(gv_checkpoint_manager_new(dir, &bad[i].o), GV_ERR_ARG, bad[i].field);
    rm_rf(dir);
    free(dir);
}

Test(checkpoint_manager, corrupted_item_file) {
    char *dir = make_tmpdir();
    gv_checkpoint_manager *m = GVT_NN(gv_checkpoint_manager_new(dir, NULL));
    for (int64_t s = 1; s <= 3; s++) GVT_OK(save_state(m, s, NAN));
    GVT_OK(gv_checkpoint_manager_close(m));

    /* step 1: truncated; step 2: a flipped byte near the end (tensor data) */
    char *f1 = join(dir, "1/state.safetensors"), *f2 = join(dir, "2/state.safetensors");
    struct stat sb;
    cr_assert_eq(stat(f1, &sb), 0);
    cr_assert_eq(truncate(f1, sb.st_size / 2), 0);
    cr_assert_eq(stat(f2, &sb), 0);
    int fd = open(f2, O_RDWR);
    cr_assert(fd >= 0);
    unsigned char c;
    cr_assert_eq(pread(fd, &c, 1, sb.st_size - 3), 1);
    c ^= 0x40;
    cr_assert_eq(pwrite(fd, &c, 1, sb.st_size - 3), 1);
    close(fd);

    m = GVT_NN(gv_checkpoint_manager_new(dir, NULL));
    assert_steps(m, dir, STEPS(1, 2, 3)); /* listing does not read the files */
    gv_clear_error();
    cr_assert_null(gv_checkpoint_manager_restore(m, 1, "state", NULL));
    cr_assert(strstr(gv_last_error(), f1), "message '%s' does not name %s", gv_last_error(), f1);
    cr_assert_neq(gv_last_status(), GV_OK);
    gv_clear_error();
    cr_assert_null(gv_checkpoint_manager_restore(m, 2, "state", NULL));
    cr_assert(strstr(gv_last_error(), f2), "message '%s' does not name %s", gv_last_error(), f2);
    gv_tree *want = make_state(3), *got = GVT_NN(gv_checkpoint_manager_restore(m, 3, "state", NULL));
    assert_tree_eq(want, got);
    gv_tree_free(want);
    gv_tree_free(got);
    GVT_OK(gv_checkpoint_manager_close(m));
    free(f1);
    free(f2);
    rm_rf(dir);
    free(dir);
}
