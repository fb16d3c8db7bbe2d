/* Data-parallel training across processes: MPI jobs of dist_worker on
 * loopback, launched with mpirun.
 *
 * - the collectives give the exact sums and means on two processes, the
 *   loader's shards are the slices of the whole batch;
 * - equivalence: two processes with global batch B end with the params one
 *   process with batch B ends with, within float summation-order noise,
 *   and log the same losses;
 * - a process that dies ends the whole job (non-zero, the rank named), it
 *   never hangs. */
#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

#include "grove/grove.h"
#include "testutil.h"

/* Runs an mpirun job of np dist_worker processes with the worker's
 * arguments; its combined output goes to *log (owned by the caller).
 * Returns the exit status, or -1 for a job killed by the time limit. */
static int mpirun(int np, const char *args, int limit_s, char **log) {
    char *out = gvt_tmp_path("mpirun.log");
    char cmd[8192];
    /* root in a container: Open MPI refuses unless told twice. In the
     * sanitizer build, LeakSanitizer skips what Open MPI keeps after
     * MPI_Finalize (its components stay loaded so their frames have names) */
    snprintf(cmd, sizeof cmd,
             "OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMP_NUM_THREADS=1 "
             "OMPI_MCA_mca_base_component_disable_dlclose=1 "
             "LSAN_OPTIONS=suppressions=" GROVE_LSAN_MPI_SUPP ":fast_unwind_on_malloc=0 "
             "timeout -k 10 %d %s --oversubscribe --mca btl self,vader -np %d %s %s > %s 2>&1",
             limit_s, GROVE_MPIEXEC, np, GROVE_DIST_WORKER, args, out);
    int st = system(cmd);
    size_t n = 0;
    *log = gvt_read_file(out, &n);
    free(out);
    if (!WIFEXITED(st)) return -2;
    int code = WEXITSTATUS(st);
    return code == 124 ? -1 : code; /* 124: timeout ended a job that hung */
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

/* The largest |a - b| / (1 + |b|) over every leaf of two param trees. */
static double max_rel_diff(const gv_tree *a, const gv_tree *b) {
    gv_tensor **la, **lb;
    size_t na, nb;
    cr_assert_eq(gv_tree_flatten(a, &la, &na), GV_OK);
    cr_assert_eq(gv_tree_flatten(b, &lb, &nb), GV_OK);
    cr_assert_eq(na, nb);
    double worst = 0;
    for (size_t i = 0; i < na; i++) {
        cr_assert_eq(gv_tensor_size(la[i]), gv_tensor_size(lb[i]));
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
