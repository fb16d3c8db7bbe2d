/* Data-parallel training across processes: MPI jobs of dist_worker on
 * loopback, launched with mpirun.
 *
 * - the collectives give the exact sums and means on two processes, the
 *   loader's shards are the slices of the whole batch;
 * - equivalence: two processes with global batch B end with the params one
 *   process with batch B ends with, within float summation-order noise,
 *   and log the same losses;
 * - a process that dies ends the whole job (non-zero, the rank named), it
 *   never hangs;
 * - the apps: the classifier and the VAE on two processes train what they
 *   train on one, and a VAE job whose process 1 is killed resumes from its
 *   last checkpoint to the params of a job never killed, bit for bit. */
#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include "grove/grove.h"
#include "testutil.h"

/* Runs an mpirun job of np dist_worker processes with the worker's
 * arguments; its combined output goes to *log (owned by the caller).
 * Returns the exit status, or -1 for a job killed by the time limit. */
static int mpirun_env(int np, const char *env, const char *args, int limit_s, char **log) {
    char *out = gvt_tmp_path("mpirun.log");
    char cmd[8192];
    /* root in a container: Open MPI refuses unless told twice. In the
     * sanitizer build, LeakSanitizer skips what Open MPI keeps after
     * MPI_Finalize (its components stay loaded so their frames have names) */
    snprintf(cmd, sizeof cmd,
             "OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMP_NUM_THREADS=1 "
             "OMPI_MCA_mca_base_component_disable_dlclose=1 "
             "LSAN_OPTIONS=suppressions=" GROVE_LSAN_MPI_SUPP ":fast_unwind_on_malloc=0:print_suppressions=0 "
             "%s timeout -k 10 %d %s --oversubscribe --mca btl self,vader -np %d %s %s > %s 2>&1",
             env, limit_s, GROVE_MPIEXEC, np, GROVE_DIST_WORKER, args, out);
    int st = system(cmd);
    size_t n = 0;
    *log = gvt_read_file(out, &n);
    free(out);
    if (!WIFEXITED(st)) return -2;
    int code = WEXITSTATUS(st);
    return code == 124 ? -1 : code; /* 124: timeout ended a job that hung */
}

static int mpirun(int np, const char *args, int limit_s, char **log) {
    return mpirun_env(np, "", args, limit_s, log);
}

Test(distributed, collectives_and_shards_on_two_processes, .timeout = 120) {
    gvt_tmpdir_make("dist_collectives");
    char *log = NULL;
    int rc = mpirun(2, "collectives", 60, &log);
    cr_assert_eq(rc, 0, "the job failed (%d):\n%s", rc, log ? log : "");
    cr_expect(strstr(log, "rank 0 of 2: collectives ok") && strstr(log, "rank 1 of 2: collectives ok"),
              "%s", log);
    free(log);
    gvt_tmpdir_remove();
}

/* "step loss" lines of a worker's log file */
static int read_losses(const char *path, double *loss, int max) {
    FILE *f = fopen(path, "r");
    cr_assert_not_null(f, "no loss log %s", path);
    int n = 0;
    long k;
    double v;
    while (n < max && fscanf(f, "%ld %lf", &k, &v) == 2) loss[n++] = v;
    fclose(f);
    return n;
}

/* The largest |a - b| / (1 + |b|) over the float32 leaves of two trees
 * (NaN if any is NaN); the other leaves (step counters) must be equal. */
static double max_rel_diff(const gv_tree *a, const gv_tree *b) {
    gv_tensor **la, **lb;
    size_t na, nb;
    cr_assert_eq(gv_tree_flatten(a, &la, &na), GV_OK);
    cr_assert_eq(gv_tree_flatten(b, &lb, &nb), GV_OK);
    cr_assert_eq(na, nb);
    double worst = 0;
    for (size_t i = 0; i < na; i++) {
        cr_assert_eq(gv_tensor_dtype(la[i]), gv_tensor_dtype(lb[i]));
        cr_assert_eq(gv_tensor_size(la[i]), gv_tensor_size(lb[i]));
        if (gv_tensor_dtype(la[i]) != GV_F32) {
            cr_expect_eq(memcmp(gv_tensor_data_const(la[i]), gv_tensor_data_const(lb[i]),
                                gv_tensor_nbytes(la[i])), 0, "leaf %zu differs", i);
            continue;
        }
        const float *p = gv_tensor_data_const(la[i]), *q = gv_tensor_data_const(lb[i]);
        for (int64_t k = 0; k < gv_tensor_size(la[i]); k++) {
            double d = fabs((double)p[k] - q[k]) / (1 + fabs((double)q[k]));
            if (!(d <= worst)) worst = d; /* NaN sticks */
        }
    }
    free(la), free(lb);
    return worst;
}

Test(distributed, two_processes_take_the_steps_of_one, .timeout = 300) {
    gvt_tmpdir_make("dist_equiv");
    char *one = gvt_tmp_path("one"), *two = gvt_tmp_path("two"), args[4096], *log = NULL;
    const int steps = 60;
    snprintf(args, sizeof args, "train %d 32 %s", steps, one);
    cr_assert_eq(mpirun(1, args, 120, &log), 0, "one process:\n%s", log);
    free(log);
    snprintf(args, sizeof args, "train %d 32 %s", steps, two);
    cr_assert_eq(mpirun(2, args, 120, &log), 0, "two processes:\n%s", log);
    free(log);

    double l1[128], l2[128];
    cr_assert_eq(read_losses(one, l1, 128), steps);
    cr_assert_eq(read_losses(two, l2, 128), steps);
    for (int k = 0; k < steps; k++)
        cr_expect(fabs(l1[k] - l2[k]) <= 1e-5 * (1 + fabs(l1[k])), "step %d: loss %.9g vs %.9g",
                  k, l1[k], l2[k]);
    /* the loss fell: the job trained, not just agreed */
    cr_expect_lt(l2[steps - 1], 0.5 * l2[0], "loss %g -> %g", l2[0], l2[steps - 1]);

    char p1[4200], p2[4200];
    snprintf(p1, sizeof p1, "%s.params", one);
    snprintf(p2, sizeof p2, "%s.params", two);
    gv_tree *a = gv_checkpointer_restore(p1), *b = gv_checkpointer_restore(p2);
    cr_assert(a && b, "%s", gv_last_error());
    /* the only difference is where the sums are split: a mean of two
     * half-batch means instead of one mean, in float32 through 60 steps
     * (measured: 1.8e-7) */
    double d = max_rel_diff(b, a);
    cr_expect(d <= 1e-5, "params differ by %g (relative)", d);
    gv_tree_free(a), gv_tree_free(b);
    free(one), free(two);
    gvt_tmpdir_remove();
}

static void expect_same_bits(const gv_tree *a, const gv_tree *b, const char *what);

/* Overlapping the all-reduce with the rest of the step (what a job across
 * hosts does; forced here on one host) changes when the sums travel, not
 * what they are: the same params bit for bit, and the psums really start
 * before their readers (the plan says how many do). */
Test(distributed, overlapped_collectives_give_the_same_bits, .timeout = 300) {
    gvt_tmpdir_make("dist_overlap");
    char *sync = gvt_tmp_path("sync"), *async = gvt_tmp_path("async"), args[4096], *log = NULL;
    snprintf(args, sizeof args, "train 40 32 %s", sync);
    cr_assert_eq(mpirun_env(2, "GROVE_OVERLAP_COLLECTIVES=0", args, 120, &log), 0, "%s", log);
    cr_expect(strstr(log, "rank 0: ") && strstr(log, " 0 collectives overlapped"), "%s", log);
    free(log);
    snprintf(args, sizeof args, "train 40 32 %s", async);
    cr_assert_eq(mpirun_env(2, "GROVE_OVERLAP_COLLECTIVES=1", args, 120, &log), 0, "%s", log);
    cr_expect(!strstr(log, " 0 collectives overlapped"), "nothing overlapped:\n%s", log);
    free(log);
    char p1[4200], p2[4200];
    snprintf(p1, sizeof p1, "%s.params", sync);
    snprintf(p2, sizeof p2, "%s.params", async);
    gv_tree *a = gv_checkpointer_restore(p1), *b = gv_checkpointer_restore(p2);
    cr_assert(a && b, "%s", gv_last_error());
    expect_same_bits(b, a, "overlapped vs blocking");
    gv_tree_free(a), gv_tree_free(b), free(sync), free(async);
    gvt_tmpdir_remove();
}

/* Every float32 leaf of a and b equal bit for bit. */
static void expect_same_bits(const gv_tree *a, const gv_tree *b, const char *what) {
    gv_tensor **la, **lb;
    size_t na, nb;
    cr_assert_eq(gv_tree_flatten(a, &la, &na), GV_OK);
    cr_assert_eq(gv_tree_flatten(b, &lb, &nb), GV_OK);
    cr_assert_eq(na, nb);
    for (size_t i = 0; i < na; i++)
        cr_expect_eq(memcmp(gv_tensor_data_const(la[i]), gv_tensor_data_const(lb[i]),
                            gv_tensor_nbytes(la[i])), 0, "%s: leaf %zu differs", what, i);
    free(la), free(lb);
}

Test(distributed, zero1_shards_the_optimiser_state_and_steps_bit_for_bit, .timeout = 300) {
    gvt_tmpdir_make("dist_zero1");
    char *plain = gvt_tmp_path("plain"), *zero = gvt_tmp_path("zero"), *zero1p = gvt_tmp_path("zero1p");
    char args[4096], *log = NULL;
    snprintf(args, sizeof args, "train 40 32 %s", plain);
    cr_assert_eq(mpirun(2, args, 120, &log), 0, "replicated state:\n%s", log);
    free(log);
    snprintf(args, sizeof args, "train-zero1 40 32 %s", zero);
    cr_assert_eq(mpirun(2, args, 120, &log), 0, "ZeRO-1 on two processes:\n%s", log);
    /* the MLP's four leaves (kernels 20x32, 32x4 and biases 32, 4) dealt
     * largest first to the lighter process: rank 0 the 640, rank 1 the
     * 128 + 32 + 4; AdamW keeps mu and nu of each and one step count */
    long long o0 = -1, o1 = -1, p0 = -1;
    const char *l0 = strstr(log, "rank 0: opt_state "), *l1 = strstr(log, "rank 1: opt_state ");
    cr_assert(l0 && l1, "%s", log);
    sscanf(l0, "rank 0: opt_state %lld elements of params' %lld", &o0, &p0);
    sscanf(l1, "rank 1: opt_state %lld", &o1);
    cr_expect_eq(p0, 804);
    cr_expect_eq(o0, 2 * 640 + 1, "rank 0 keeps %lld", o0);
    cr_expect_eq(o1, 2 * 164 + 1, "rank 1 keeps %lld", o1);
    free(log);
    snprintf(args, sizeof args, "train-zero1 40 32 %s", zero1p);
    cr_assert_eq(mpirun(1, args, 120, &log), 0, "ZeRO-1 on one process:\n%s", log);
    free(log);
    char pp[4200], pz[4200], p1[4200];
    snprintf(pp, sizeof pp, "%s.params", plain);
    snprintf(pz, sizeof pz, "%s.params", zero);
    snprintf(p1, sizeof p1, "%s.params", zero1p);
    gv_tree *a = gv_checkpointer_restore(pp), *b = gv_checkpointer_restore(pz);
    gv_tree *c = gv_checkpointer_restore(p1);
    cr_assert(a && b && c, "%s", gv_last_error());
    /* each process updates its leaves from the same averaged grads the
     * replicated state uses, and the others add -0.0: the same bits */
    expect_same_bits(b, a, "ZeRO-1 vs replicated, two processes");
    /* and on one process it is the plain update */
    double d = max_rel_diff(c, a);
    cr_expect(d <= 1e-5, "one process vs two differ by %g", d);
    gv_tree_free(a), gv_tree_free(b), gv_tree_free(c);
    free(plain), free(zero), free(zero1p);
    gvt_tmpdir_remove();
}

Test(distributed, a_process_that_dies_ends_the_job, .timeout = 120) {
    gvt_tmpdir_make("dist_die");
    char *log = NULL;
    /* rank 1 SIGKILLs itself at step 5; rank 0 is then waiting in an
     * all-reduce that can never complete. The job must end on its own,
     * well inside the 60 s limit, saying which rank died. */
    int rc = mpirun(2, "die-at 5 1", 60, &log);
    cr_expect_neq(rc, -1, "the job hung until the time limit:\n%s", log);
    cr_expect_neq(rc, 0, "the job reported success:\n%s", log);
    cr_expect(strstr(log, "rank 1") != NULL, "the message does not name rank 1:\n%s", log);
    free(log);
    gvt_tmpdir_remove();
}

/* ---- the apps under mpirun ---- */

#define MPI_ENV                                                                         \
    "OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMP_NUM_THREADS=1 "      \
    "OMPI_MCA_mca_base_component_disable_dlclose=1 "                                    \
    "LSAN_OPTIONS=suppressions=" GROVE_LSAN_MPI_SUPP ":fast_unwind_on_malloc=0:print_suppressions=0 "

/* Runs `mpirun -np np <cmd>` through the shell, output into *log. Returns
 * the exit code, -1 after the time limit. */
static int mpirun_app(int np, const char *cmd, int limit_s, char **log) {
    char *out = gvt_tmp_path("app.log"), line[32768];
    snprintf(line, sizeof line, MPI_ENV "timeout -k 10 %d %s --oversubscribe --mca btl self,vader "
             "-np %d %s > %s 2>&1", limit_s, GROVE_MPIEXEC, np, cmd, out);
    int st = system(line);
    size_t n = 0;
    *log = gvt_read_file(out, &n);
    free(out);
    if (!WIFEXITED(st)) return -2;
    return WEXITSTATUS(st) == 124 ? -1 : WEXITSTATUS(st);
}

/* The "state" item of the latest step in a checkpoint directory. */
static gv_tree *latest_state(const char *dir, int64_t *step) {
    gv_checkpoint_manager *m = gv_checkpoint_manager_new(dir, &(gv_checkpoint_options){
        .must_exist = true});
    cr_assert_not_null(m, "%s: %s", dir, gv_last_error());
    *step = gv_checkpoint_manager_latest_step(m);
    gv_tree *t = *step >= 0 ? gv_checkpoint_manager_restore(m, *step, "state", NULL) : NULL;
    cr_assert_not_null(t, "%s step %lld: %s", dir, (long long)*step, gv_last_error());
    gv_checkpoint_manager_close(m);
    return t;
}

/* The states at the latest steps of two VAE run directories, both at step `want`. */
static void vae_states(const char *run_a, const char *run_b, int64_t want, gv_tree **a,
                       gv_tree **b) {
    char ca[8300], cb[8300];
    snprintf(ca, sizeof ca, "%s/checkpoints", run_a);
    snprintf(cb, sizeof cb, "%s/checkpoints", run_b);
    int64_t sa, sb;
    *a = latest_state(ca, &sa), *b = latest_state(cb, &sb);
    cr_expect_eq(sa, want, "%s: step %lld", run_a, (long long)sa);
    cr_expect_eq(sb, want, "%s: step %lld", run_b, (long long)sb);
}

static const char *mnist_dir(void) {
    const char *d = getenv("GROVE_MNIST_DIR");
    cr_assert(d && *d, "GROVE_MNIST_DIR is not set (scripts/fetch-mnist.sh prints it)");
    return d;
}

/* The classifier's result lines ("epoch ...", "best step ...") of a log. */
static char *results(const char *log) {
    char *out = calloc(1, strlen(log) + 1);
    cr_assert_not_null(out);
    for (const char *l = log; *l;) {
        size_t n = strcspn(l, "\n");
        if (!strncmp(l, "epoch ", 6) || !strncmp(l, "best step ", 10)) strncat(out, l, n + 1);
        l += n + (l[n] == '\n');
    }
    return out;
}

Test(distributed, classifier_on_two_processes_trains_what_one_does, .timeout = 300) {
    gvt_tmpdir_make("dist_classifier");
    char *d1 = gvt_tmp_path("one"), *d2 = gvt_tmp_path("two"), cmd[8192], *log1, *log2;
    snprintf(cmd, sizeof cmd, "%s %s 2 3000", GROVE_CLASSIFIER, d1);
    cr_assert_eq(mpirun_app(1, cmd, 200, &log1), 0, "one process:\n%s", log1);
    snprintf(cmd, sizeof cmd, "%s %s 2 3000 --distributed", GROVE_CLASSIFIER, d2);
    cr_assert_eq(mpirun_app(2, cmd, 200, &log2), 0, "two processes:\n%s", log2);
    /* process 0 alone prints: one line per epoch and the best step */
    char *r1 = results(log1), *r2 = results(log2);
    cr_expect(*r1 && !strcmp(r1, r2), "the results differ:\n%s---\n%s", log1, log2);
    free(r1), free(r2);
    int64_t s1, s2;
    gv_tree *a = latest_state(d1, &s1), *b = latest_state(d2, &s2);
    cr_expect_eq(s1, s2);
    double d = max_rel_diff(b, a); /* 46 Adam steps; measured 9.7e-7 */
    cr_expect(d <= 1e-5, "the states differ by %g (relative)", d);
    gv_tree_free(a), gv_tree_free(b), free(log1), free(log2), free(d1), free(d2);
    gvt_tmpdir_remove();
}

#define VAE_FLAGS "--data-dir %s --train-limit 4096 --test-limit 1000 --batch-size 32"

Test(distributed, vae_on_two_processes_trains_what_one_does, .timeout = 300) {
    gvt_tmpdir_make("dist_vae");
    char *d1 = gvt_tmp_path("one"), *d2 = gvt_tmp_path("two"), cmd[8192], *log1, *log2;
    snprintf(cmd, sizeof cmd, "%s train " VAE_FLAGS " --epochs 1 --run-dir %s", GROVE_VAE,
             mnist_dir(), d1);
    cr_assert_eq(mpirun_app(1, cmd, 200, &log1), 0, "one process:\n%s", log1);
    snprintf(cmd, sizeof cmd, "%s train " VAE_FLAGS " --epochs 1 --run-dir %s --distributed",
             GROVE_VAE, mnist_dir(), d2);
    cr_assert_eq(mpirun_app(2, cmd, 200, &log2), 0, "two processes:\n%s", log2);
    cr_expect(strstr(log2, "data-parallel: 2 processes, 16 examples"), "%s", log2);
    gv_tree *a, *b;
    vae_states(d1, d2, 128, &a, &b);
    double d = max_rel_diff(b, a);
    /* 128 AdamW steps; measured 6.1e-7 */
    cr_expect(d <= 1e-5, "the states differ by %g (relative)", d);
    /* the test-set line is the mean over both processes' halves */
    const char *t1 = strstr(log1, "test set:"), *t2 = strstr(log2, "test set:");
    cr_assert(t1 && t2, "no test-set line:\n%s\n---\n%s", log1, log2);
    double m1, k1, m2, k2;
    cr_assert_eq(sscanf(t1, "test set: reconstruction loss (mse) %lf, kl %lf", &m1, &k1), 2);
    cr_assert_eq(sscanf(t2, "test set: reconstruction loss (mse) %lf, kl %lf", &m2, &k2), 2);
    cr_expect(fabs(m1 - m2) <= 1e-3 && fabs(k1 - k2) <= 1e-3, "test mse %g/%g kl %g/%g", m1, m2,
              k1, k2);
    /* only process 0 writes the run's files */
    char png[8200];
    snprintf(png, sizeof png, "%s/samples.png", d2);
    cr_expect_eq(access(png, F_OK), 0, "no %s", png);
    gv_tree_free(a), gv_tree_free(b), free(log1), free(log2), free(d1), free(d2);
    gvt_tmpdir_remove();
}

Test(distributed, vae_job_with_a_killed_process_resumes_exactly, .timeout = 600) {
    gvt_tmpdir_make("dist_vae_kill");
    char *ref = gvt_tmp_path("ref"), *run = gvt_tmp_path("run"), *out = gvt_tmp_path("killed.log");
    char *rcf = gvt_tmp_path("killed.rc");
    char cmd[16384], flags[4096], *log;
    snprintf(flags, sizeof flags, VAE_FLAGS " --epochs 4", mnist_dir());
    /* the reference: the same job, never killed */
    snprintf(cmd, sizeof cmd, "%s train %s --run-dir %s --distributed", GROVE_VAE, flags, ref);
    cr_assert_eq(mpirun_app(2, cmd, 300, &log), 0, "reference job:\n%s", log);
    free(log);

    /* the job again, and SIGKILL for process 1 (the process of this run
     * whose environment says rank 1) once the first epoch's checkpoint is on
     * disk; the job must then end by itself (the 120 s limit means a hang) */
    snprintf(cmd, sizeof cmd,
             MPI_ENV "timeout -k 5 120 %s --oversubscribe --mca btl self,vader -np 2 %s train %s "
             "--run-dir %s --distributed > %s 2>&1 & job=$!\n"
             "victim=\n"
             "while kill -0 $job 2>/dev/null && [ -z \"$victim\" ]; do\n"
             "  if [ -e %s/checkpoints/128 ]; then\n"
             "    for p in $(pgrep -f -- '--run-dir %s '); do\n"
             "      tr '\\0' '\\n' < /proc/$p/environ 2>/dev/null | grep -qx OMPI_COMM_WORLD_RANK=1 "
             "&& victim=$p\n"
             "    done\n"
             "    [ -n \"$victim\" ] && kill -KILL $victim\n"
             "  fi\n"
             "  sleep 0.005\n"
             "done\n"
             "wait $job; echo \"$? ${victim:-none}\" > %s\n",
             GROVE_MPIEXEC, GROVE_VAE, flags, run, out, run, run, rcf);
    system(cmd);
    size_t n = 0;
    char *rc = gvt_read_file(rcf, &n);
    log = gvt_read_file(out, &n);
    int code = -1;
    char victim[32] = "";
    cr_assert(rc && sscanf(rc, "%d %31s", &code, victim) == 2, "no result:\n%s", log);
    cr_assert_neq(strcmp(victim, "none"), 0, "the job ended before process 1 was killed:\n%s", log);
    cr_expect_neq(code, 124, "the job hung after process 1 was killed:\n%s", log);
    cr_expect_neq(code, 0, "the job reported success:\n%s", log);
    cr_expect(strstr(log, "rank 1") != NULL, "the job's message does not name rank 1:\n%s", log);
    free(log), free(rc), free(rcf);

    /* the same command resumes from the last checkpoint and ends where the
     * job never killed ended, bit for bit */
    snprintf(cmd, sizeof cmd, "%s train %s --run-dir %s --distributed", GROVE_VAE, flags, run);
    cr_assert_eq(mpirun_app(2, cmd, 300, &log), 0, "resumed job:\n%s", log);
    cr_expect(strstr(log, "resumed ") != NULL, "the job did not resume:\n%s", log);
    free(log);
    gv_tree *a, *b;
    vae_states(ref, run, 512, &a, &b);
    cr_expect_eq(max_rel_diff(b, a), 0.0, "the resumed job's state differs from the reference's");
    gv_tree_free(a), gv_tree_free(b);
    free(ref), free(run), free(out);
    gvt_tmpdir_remove();
}

Test(distributed, vae_zero1_stops_resumes_and_matches_the_replicated_job, .timeout = 600) {
    gvt_tmpdir_make("dist_vae_zero1");
    char *ref = gvt_tmp_path("ref"), *run = gvt_tmp_path("run"), cmd[8192], flags[4096], *log;
    snprintf(flags, sizeof flags, VAE_FLAGS " --epochs 2", mnist_dir());
    snprintf(cmd, sizeof cmd, "%s train %s --run-dir %s", GROVE_VAE, flags, ref);
    cr_assert_eq(mpirun_app(2, cmd, 300, &log), 0, "replicated job:\n%s", log);
    free(log);
    /* ZeRO-1, stopped at step 150 (checkpoints 128 and 150 on each process) */
    snprintf(cmd, sizeof cmd, "%s train %s --run-dir %s --zero1 --max-steps 150", GROVE_VAE, flags,
             run);
    cr_assert_eq(mpirun_app(2, cmd, 300, &log), 0, "ZeRO-1 job:\n%s", log);
    free(log);
    /* process 1 lost its last save (as if killed before it): the job must
     * resume from the step both processes have, 128 */
    char last[8300];
    snprintf(last, sizeof last, "rm -rf '%s/checkpoints-process-1/150'", run);
    cr_assert_eq(system(last), 0);
    snprintf(cmd, sizeof cmd, "%s train %s --run-dir %s --zero1", GROVE_VAE, flags, run);
    cr_assert_eq(mpirun_app(2, cmd, 300, &log), 0, "resumed ZeRO-1 job:\n%s", log);
    cr_expect(strstr(log, "resumed ") && strstr(log, "at step 128"), "%s", log);
    free(log);
    gv_tree *a, *b;
    vae_states(ref, run, 256, &a, &b);
    /* the sharded update is the replicated one, bit for bit */
    expect_same_bits(gv_tree_get(b, "params"), gv_tree_get(a, "params"), "params");
    /* and process 0 keeps only its part of the AdamW state */
    cr_expect_lt(gv_tree_size(gv_tree_get(b, "opt_state")),
                 0.8 * gv_tree_size(gv_tree_get(a, "opt_state")));
    gv_tree_free(a), gv_tree_free(b), free(ref), free(run);
    gvt_tmpdir_remove();
}
