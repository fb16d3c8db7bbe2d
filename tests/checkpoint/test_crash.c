/* Crash safety of the checkpoint manager (reference D4): a child process
 * saves checkpoints in a loop and is killed with SIGKILL at a random moment,
 * CRASH_KILLS times. After every kill a fresh manager must list only steps
 * that restore completely, with exactly the values of that step, and its
 * latest step must be at least the last step the child reported as saved.
 * Half of the children save synchronously, half asynchronously (reporting a
 * step only after wait_until_finished). The child's stderr is left alone; it
 * must not call Criterion (with --full-stats every passing assert is a
 * message to the runner, which refuses one from an unknown pid). */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#ifdef __linux__
#include <sys/prctl.h>
#endif

#include "grove/checkpoint.h"
#include "testutil.h"

#if defined(__SANITIZE_ADDRESS__) /* saves are several times slower */
#define CRASH_KILLS 60
#define CRASH_MAX_DELAY_US 120000
#else
#define CRASH_KILLS 200
#define CRASH_MAX_DELAY_US 40000
#endif
#define CRASH_N (512 * 1024) /* floats in the big tensor: 2 MB */
#define CRASH_AUX 1000
#define CRASH_MAX_TO_KEEP 3

static gv_checkpoint_options crash_opts(bool async) {
    return (gv_checkpoint_options){.max_to_keep = CRASH_MAX_TO_KEEP, .async = async};
}

/* The contents of step s: w[i] = s + i*1e-3 (as float), aux[i] = 2s - i. */
static float w_value(int64_t s, int64_t i) { return (float)((double)s + (double)i * 1e-3); }
static float aux_value(int64_t s, int64_t i) { return (float)(2.0 * (double)s - (double)i); }

/* {"params": {"w": f32[CRASH_N]}, "step": i64[]} and {"aux": f32[CRASH_AUX]},
 * built once per child; fill_items writes the values of step s into them. */
static gv_status make_items(gv_tree **state, gv_tree **aux) {
    gv_tensor *w = gv_tensor_zeros(GV_F32, GV_DIMS(CRASH_N));
    gv_tensor *a = gv_tensor_zeros(GV_F32, GV_DIMS(CRASH_AUX));
    gv_tensor *st = gv_tensor_scalar(GV_I64, 0);
    *state = gv_tree_new_dict();
    *aux = gv_tree_new_dict();
    gv_status r = w && a && st && *state && *aux ? GV_OK : GV_ERR_NOMEM;
    if (r == GV_OK && (r = gv_tree_insert_tensor(*state, "params/w", w)) == GV_OK &&
        (r = gv_tree_insert_tensor(*state, "step", st)) == GV_OK)
        r = gv_tree_insert_tensor(*aux, "aux", a);
    gv_tensor_free(w), gv_tensor_free(a), gv_tensor_free(st);
    return r;
}

static void fill_items(int64_t s, gv_tree *state, gv_tree *aux) {
    float *wd = gv_tensor_data(gv_tree_get_tensor(state, "params/w"));
    float *ad = gv_tensor_data(gv_tree_get_tensor(aux, "aux"));
    for (int64_t i = 0; i < CRASH_N; i++) wd[i] = w_value(s, i);
    for (int64_t i = 0; i < CRASH_AUX; i++) ad[i] = aux_value(s, i);
    *(int64_t *)gv_tensor_data(gv_tree_get_tensor(state, "step")) = s;
}

/* The child: save step after step until killed; report a step on fd once it
 * is durable (save returned, or wait_until_finished for async). */
static _Noreturn void child_main(const char *dir, int fd, bool async, pid_t parent) {
#ifdef __linux__
    prctl(PR_SET_PDEATHSIG, SIGKILL); /* never outlive the test */
#endif
    if (getppid() != parent) _exit(1); /* the test died before prctl */
    gv_checkpoint_options o = crash_opts(async);
    gv_checkpoint_manager *m = gv_checkpoint_manager_new(dir, &o);
    if (!m) {
        fprintf(stderr, "child: open: %s\n", gv_last_error());
        _exit(2);
    }
    gv_tree *state = NULL, *aux = NULL;
    if (make_items(&state, &aux) != GV_OK) _exit(3);
    int64_t ready = -1;
    if (write(fd, &ready, sizeof ready) != (ssize_t)sizeof ready) _exit(6);
    const char *names[] = {"state", "aux"};
    const gv_tree *items[] = {state, aux};
    for (int64_t s = gv_checkpoint_manager_latest_step(m) + 1; s < 1000000; s++) {
        /* async: this also overwrites the tensors of a save still queued,
         * which must not matter (save snapshots them) */
        fill_items(s, state, aux);
        if (gv_checkpoint_manager_save(m, s, names, items, 2, NULL) != GV_OK) {
            fprintf(stderr, "child: save %lld: %s\n", (long long)s, gv_last_error());
            _exit(4);
        }
        if (async && s % 2 == 0) continue; /* report in pairs */
        if (async && gv_checkpoint_manager_wait_until_finished(m) != GV_OK) {
            fprintf(stderr, "child: wait: %s\n", gv_last_error());
            _exit(5);
        }
        if (write(fd, &s, sizeof s) != (ssize_t)sizeof s) _exit(6);
    }
    _exit(7);
}

static bool tensor_matches(gv_tensor *t, int64_t n, float (*f)(int64_t, int64_t), int64_t s) {
    if (!t || gv_tensor_dtype(t) != GV_F32 || gv_tensor_size(t) != n) return false;
    const float *d = gv_tensor_data_const(t);
    for (int64_t i = 0; i < n; i++)
        if (d[i] != f(s, i)) return false;
    return true;
}

/* Restore both items of step s and compare every value. */
static bool step_is_intact(gv_checkpoint_manager *m, int64_t s) {
    gv_tree *state = gv_checkpoint_manager_restore(m, s, "state", NULL);
    gv_tree *aux = gv_checkpoint_manager_restore(m, s, "aux", NULL);
    bool ok = state && aux;
    if (!ok) fprintf(stderr, "step %lld: %s\n", (long long)s, gv_last_error());
    double v = -1;
    ok = ok && tensor_matches(gv_tree_get_tensor(state, "params/w"), CRASH_N, w_value, s) &&
         tensor_matches(gv_tree_get_tensor(aux, "aux"), CRASH_AUX, aux_value, s) &&
         gv_tensor_get_flat(gv_tree_get_tensor(state, "step"), 0, &v) == GV_OK && v == (double)s;
    gv_tree_free(state);
    gv_tree_free(aux);
    return ok;
}

static int count_temporaries(const char *dir) {
    DIR *d = opendir(dir);
    if (!d) return -1;
    int n = 0;
    struct dirent *de;
    while ((de = readdir(d)))
        if (!strncmp(de->d_name, ".tmp-", 5)) n++;
    closedir(d);
    return n;
}

static int rm_one(const char *path, const struct stat *sb, int flag, struct FTW *ftw) {
    (void)sb, (void)flag, (void)ftw;
    return remove(path);
}

Test(checkpoint_crash, sigkill_during_saves, .timeout = 300) {
    /* in the build tree, not /tmp: a real disk, where fsync does something */
    char dir[] = "gv-crash-XXXXXX";
    cr_assert_not_null(mkdtemp(dir), "mkdtemp: %s", strerror(errno));
    unsigned seed = (unsigned)time(NULL) ^ (unsigned)getpid();
    printf("crash test: %d kills, delays 0-%d us, seed %u, dir %s\n", CRASH_KILLS,
           CRASH_MAX_DELAY_US, seed, dir);
    srand(seed);

    int64_t reported = -1; /* the highest step any child reported as saved */
    int survived = 0, lost = 0, corrupt = 0, leftovers = 0, unexpected = 0;
    int64_t total_steps_checked = 0;
    for (int k = 0; k < CRASH_KILLS; k++) {
        int p[2];
        cr_assert_eq(pipe(p), 0);
        fflush(stdout);
        fflush(stderr);
        pid_t parent = getpid();
        pid_t pid = fork();
        if (pid == 0) { /* no Criterion call in the child: it reports to the runner */
            close(p[0]);
            child_main(dir, p[1], k % 2 == 1, parent);
        }
        cr_assert(pid > 0, "fork: %s", strerror(errno));
        close(p[1]);
        /* one kill in four counts from fork, so it may hit the start-up
         * (removing temporaries); the others count from "ready" (-1) */
        int64_t s;
        if (k % 4 != 0 && read(p[0], &s, sizeof s) == (ssize_t)sizeof s && s > reported)
            reported = s;
        usleep((useconds_t)(rand() % (CRASH_MAX_DELAY_US + 1)));
        kill(pid, SIGKILL);
        int status = 0;
        while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {}
        while (read(p[0], &s, sizeof s) == (ssize_t)sizeof s)
            if (s > reported) reported = s;
        close(p[0]);
        if (!WIFSIGNALED(status) || WTERMSIG(status) != SIGKILL) {
            fprintf(stderr, "kill %d: the child ended by itself (status 0x%x)\n", k, status);
            unexpected++;
            continue;
        }

        gv_checkpoint_options o = crash_opts(false);
        gv_checkpoint_manager *m = gv_checkpoint_manager_new(dir, &o);
        cr_assert_not_null(m, "kill %d: reopen: %s", k, gv_last_error());
        int tmps = count_temporaries(dir);
        if (tmps != 0) {
            fprintf(stderr, "kill %d: %d temporaries left after reopening\n", k, tmps);
            leftovers++;
        }
        int64_t *steps = NULL;
        size_t n = 0;
        cr_assert_eq(gv_checkpoint_manager_all_steps(m, &steps, &n), GV_OK);
        bool ok = true;
        for (size_t i = 0; i < n; i++, total_steps_checked++)
            if (!step_is_intact(m, steps[i])) {
                fprintf(stderr, "kill %d: step %lld is listed but not intact\n", k,
                        (long long)steps[i]);
                corrupt++;
                ok = false;
            }
        int64_t latest = gv_checkpoint_manager_latest_step(m);
        if (latest < reported) {
            fprintf(stderr, "kill %d: latest step %lld < reported %lld\n", k, (long long)latest,
                    (long long)reported);
            lost++;
            ok = false;
        }
        free(steps);
        cr_assert_eq(gv_checkpoint_manager_close(m), GV_OK);
        if (ok) survived++;
    }
    int64_t final_latest;
    {
        gv_checkpoint_options o = crash_opts(false);
        gv_checkpoint_manager *m = gv_checkpoint_manager_new(dir, &o);
        cr_assert_not_null(m);
        final_latest = gv_checkpoint_manager_latest_step(m);
        gv_checkpoint_manager_close(m);
    }
    printf("kills survived: %d, data lost: %d (steps reached: %lld, listed steps verified: "
           "%lld, corrupt: %d, temporaries left: %d, children that ended early: %d)\n",
           survived, lost + corrupt, (long long)final_latest, (long long)total_steps_checked,
           corrupt, leftovers, unexpected);
    fflush(stdout);
    nftw(dir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
    cr_assert_eq(unexpected, 0);
    cr_assert_eq(lost, 0);
    cr_assert_eq(corrupt, 0);
    cr_assert_eq(leftovers, 0);
    cr_assert_eq(survived, CRASH_KILLS);
    /* the kills must also land after commits, not only before the first */
    cr_assert_geq(final_latest, 10, "the children made too little progress");
}
