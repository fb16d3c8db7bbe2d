/* The vae program end to end on slices of real MNIST: learning, resume bit
 * for bit (at an epoch boundary, mid-epoch, and after Ctrl-C), the sample
 * PNGs, and the command line's answers to bad flags.
 *
 * MNIST comes from $GROVE_MNIST_DIR, else $GROVE_DATA/mnist, else
 * ~/.cache/grove/mnist (scripts/fetch-mnist.sh puts it there; the test
 * command runs it first). */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "testutil.h"

static char mnist_dir[4096];

static const char *mnist(void) {
    const char *d = getenv("GROVE_MNIST_DIR"), *root = getenv("GROVE_DATA"), *home = getenv("HOME");
    if (d && *d) snprintf(mnist_dir, sizeof mnist_dir, "%s", d);
    else if (root && *root) snprintf(mnist_dir, sizeof mnist_dir, "%s/mnist", root);
    else snprintf(mnist_dir, sizeof mnist_dir, "%s/.cache/grove/mnist", home ? home : ".");
    char probe[4200];
    snprintf(probe, sizeof probe, "%s/train-images-idx3-ubyte", mnist_dir);
    struct stat st;
    cr_assert(stat(probe, &st) == 0, "no MNIST in %s: run scripts/fetch-mnist.sh first", mnist_dir);
    return mnist_dir;
}

/* ---- running the program ---- */

typedef struct result {
    int code;          /* exit code, or 128 + signal */
    char out[1 << 16], err[1 << 14];
} result;

static void slurp(const char *path, char *buf, size_t cap) {
    FILE *f = fopen(path, "r");
    size_t n = f ? fread(buf, 1, cap - 1, f) : 0;
    buf[n] = 0;
    if (f) fclose(f);
}

static void make_workdir(void) { gvt_tmpdir_make("vae"); }
static void remove_workdir(void) { gvt_tmpdir_remove(); }

/* Start vae with args (NULL-terminated); stdout/stderr to files in gvt_tmpdir.
 * fsize_limit > 0: no file the program writes may grow past that many bytes
 * (RLIMIT_FSIZE; a write past it fails with EFBIG instead of SIGXFSZ). */
static pid_t start_limited(char *const *args, rlim_t fsize_limit) {
    char out[128], err[128];
    snprintf(out, sizeof out, "%s/stdout", gvt_tmpdir);
    snprintf(err, sizeof err, "%s/stderr", gvt_tmpdir);
    char *argv[64] = {VAE_BIN};
    int n = 1;
    for (; args[n - 1]; n++) argv[n] = args[n - 1];
    argv[n] = NULL;
    pid_t pid = fork();
    if (pid == 0) {
        int o = open(out, O_WRONLY | O_CREAT | O_TRUNC, 0644), e = open(err, O_WRONLY | O_CREAT | O_TRUNC, 0644);
        dup2(o, 1), dup2(e, 2);
        if (fsize_limit) {
            signal(SIGXFSZ, SIG_IGN); /* stays ignored across exec */
            struct rlimit rl = {fsize_limit, fsize_limit};
            if (setrlimit(RLIMIT_FSIZE, &rl)) _exit(126);
        }
        execv(VAE_BIN, argv);
        _exit(127);
    }
    return pid;
}

static pid_t start(char *const *args) { return start_limited(args, 0); }

static void finish(pid_t pid, result *r) {
    int status;
    waitpid(pid, &status, 0);
    r->code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
    char path[128];
    snprintf(path, sizeof path, "%s/stdout", gvt_tmpdir);
    slurp(path, r->out, sizeof r->out);
    snprintf(path, sizeof path, "%s/stderr", gvt_tmpdir);
    slurp(path, r->err, sizeof r->err);
}

static result *run(char *const *args) {
    static result r;
    finish(start(args), &r);
    return &r;
}

#define VAE(...) run((char *const[]){__VA_ARGS__, NULL})

static char *run_dir(const char *name) {
    static char buf[4][256];
    static int k;
    char *b = buf[k++ % 4];
    snprintf(b, 256, "%s/%s", gvt_tmpdir, name);
    return b;
}

/* The latest checkpoint's state and meta of a run dir. */
static void latest(const char *dir, gv_tree **state, gv_tree **meta) {
    char path[512];
    snprintf(path, sizeof path, "%s/checkpoints", dir);
    gv_checkpoint_manager *m = GVT_NN(gv_checkpoint_manager_new(path, &(gv_checkpoint_options){0}));
    int64_t step = gv_checkpoint_manager_latest_step(m);
    cr_assert_geq(step, 0, "no checkpoint in %s", dir);
    *state = GVT_NN(gv_checkpoint_manager_restore(m, step, "state", NULL));
    *meta = GVT_NN(gv_checkpoint_manager_restore(m, step, "meta", NULL));
    GVT_OK(gv_checkpoint_manager_close(m));
}

/* Same structure and every leaf equal bit for bit. */
static void assert_same_tree(const gv_tree *a, const gv_tree *b, const char *what) {
    char first[256];
    int n = gvt_tree_diff(a, b, first, sizeof first);
    cr_assert_eq(n, 0, "%s: %d leaves differ, first %s", what, n, first);
}

static void assert_same_run(const char *a, const char *b) {
    gv_tree *sa, *ma, *sb, *mb;
    latest(a, &sa, &ma);
    latest(b, &sb, &mb);
    assert_same_tree(sa, sb, "train state");
    assert_same_tree(ma, mb, "meta (key, data position, log sums)");
    gv_tree_free(sa), gv_tree_free(ma), gv_tree_free(sb), gv_tree_free(mb);
}

static double json_number(const char *line, const char *key) {
    json_object *o = json_tokener_parse(line), *v;
    cr_assert_not_null(o, "bad JSON line: %s", line);
    cr_assert(json_object_object_get_ex(o, key, &v), "no %s in %s", key, line);
    double d = json_object_get_double(v);
    json_object_put(o);
    return d;
}

TestSuite(vae, .init = make_workdir, .fini = remove_workdir, .timeout = 600);

/* ---- learning ---- */

/* 1250 steps (batch 16) on the first 20000 training images. The bar is
 * the mean-image predictor: outputting the pixel means of the training set
 * scores 26.45 on the test set (0.5 * sum of squared deviations, computed
 * with numpy from the IDX files), so a test mse below it means the decoder
 * reconstructs each digit from its code, which a broken gradient, optimiser
 * or data pipeline does not reach. The first log window (steps 1-100) is
 * about 48; an all-zeros output scores 43.9. */
Test(vae, learns_on_real_mnist) {
    char *dir = run_dir("learn");
    result *r = VAE("train", "--data-dir", (char *)mnist(), "--run-dir", dir, "--epochs", "1",
                    "--train-limit", "20000", "--test-limit", "2000");
    cr_assert_eq(r->code, 0, "exit %d: %s", r->code, r->err);
    cr_assert(strstr(r->out, "epoch 0 | step 100 | loss: "), "log lines: %s", r->out);
    char path[512];
    snprintf(path, sizeof path, "%s/metrics.jsonl", dir);
    char *text = gvt_read_file(path, NULL);
    char *first = text, *test = strstr(text, "{\"test\"");
    cr_assert_not_null(test, "no test line in metrics.jsonl:\n%s", text);
    double first_loss = json_number(strtok(first, "\n"), "loss");
    double test_mse = json_number(test, "mse");
    cr_log_info("first window loss %.3f, test mse %.3f", first_loss, test_mse);
    cr_assert_gt(first_loss, 40.0, "the untrained model should start near the all-zeros 43.9");
    cr_assert_lt(test_mse, 26.45, "test reconstruction %.3f is no better than the mean image", test_mse);
    free(text);
    /* the grid: 10 rows of 10 digits, 28 + 2 pixels each, and a 2-pixel
     * border. Samples this early are faint but every tile has a stroke
     * (about 70 pixels above 64 at least; an empty tile has none). */
    snprintf(path, sizeof path, "%s/samples.png", dir);
    gv_tensor *img = GVT_NN(gv_png_read(path));
    cr_assert_eq(gv_tensor_rank(img), 2);
    cr_assert_eq(gv_tensor_dim(img, 0), 302);
    cr_assert_eq(gv_tensor_dim(img, 1), 302);
    const uint8_t *px = gv_tensor_data_const(img);
    int blank_tiles = 0;
    for (int ty = 0; ty < 10; ty++)
        for (int tx = 0; tx < 10; tx++) {
            long ink = 0;
            for (int y = 0; y < 28; y++)
                for (int x = 0; x < 28; x++) ink += px[(2 + ty * 30 + y) * 302 + 2 + tx * 30 + x] > 64;
            blank_tiles += ink < 20;
        }
    cr_assert_eq(blank_tiles, 0, "%d of 100 sample tiles have (almost) no ink", blank_tiles);
    gv_tensor_free(img);
    snprintf(path, sizeof path, "%s/loss.svg", dir);
    char *svg = gvt_read_file(path, NULL);
    cr_assert(strstr(svg, "<svg") && strstr(svg, "mse"), "loss.svg");
    free(svg);

    /* vae sample --class 3 --n 16: a 4x4 grid of threes */
    r = VAE("sample", "--run-dir", dir, "--class", "3", "--n", "16");
    cr_assert_eq(r->code, 0, "exit %d: %s", r->code, r->err);
    snprintf(path, sizeof path, "%s/samples-class3.png", dir);
    img = GVT_NN(gv_png_read(path));
    cr_assert_eq(gv_tensor_dim(img, 0), 4 * 30 + 2);
    cr_assert_eq(gv_tensor_dim(img, 1), 4 * 30 + 2);
    gv_tensor_free(img);
    /* sampling again with the run's seed reproduces the training's grid */
    snprintf(path, sizeof path, "%s/again.png", dir);
    r = VAE("sample", "--run-dir", dir, "--out", path);
    cr_assert_eq(r->code, 0, "exit %d: %s", r->code, r->err);
    char orig[512];
    snprintf(orig, sizeof orig, "%s/samples.png", dir);
    gv_tensor *a = GVT_NN(gv_png_read(orig)), *b = GVT_NN(gv_png_read(path));
    cr_assert(gv_tensor_equal(a, b), "vae sample differs from the training's samples.png");
    gv_tensor_free(a), gv_tensor_free(b);
}

/* ---- resume ---- */

#define SLICE "--data-dir", (char *)mnist(), "--train-limit", "640", "--test-limit", "500", \
              "--log-every", "7"

/* 2 epochs in one go == 1 epoch, then resumed for the second. */
Test(vae, resume_at_an_epoch_boundary_is_bit_identical) {
    char *a = run_dir("a"), *b = run_dir("b");
    result *r = VAE("train", SLICE, "--run-dir", a, "--epochs", "2");
    cr_assert_eq(r->code, 0, "exit %d: %s", r->code, r->err);
    r = VAE("train", SLICE, "--run-dir", b, "--epochs", "1");
    cr_assert_eq(r->code, 0, "exit %d: %s", r->code, r->err);
    r = VAE("train", SLICE, "--run-dir", b, "--epochs", "2");
    cr_assert_eq(r->code, 0, "exit %d: %s", r->code, r->err);
    cr_assert(strstr(r->out, "resumed"), "%s", r->out);
    assert_same_run(a, b);
    /* the log of the resumed run equals the uninterrupted one, line for line */
    char pa[512], pb[512];
    snprintf(pa, sizeof pa, "%s/metrics.jsonl", a);
    snprintf(pb, sizeof pb, "%s/metrics.jsonl", b);
    char *ta = gvt_read_file(pa, NULL), *tb = gvt_read_file(pb, NULL);
    int la = 0, lb = 0;
    for (char *p = ta; *p; p++) la += *p == '\n';
    for (char *p = tb; *p; p++) lb += *p == '\n';
    cr_assert_eq(la, lb, "metrics.jsonl: %d lines vs %d", la, lb);
    free(ta), free(tb);
}

/* The same with two threads (large GEMMs split, fused passes in parallel):
 * a run is deterministic for a given thread count. */
Test(vae, resume_with_two_threads_is_bit_identical) {
    char *a = run_dir("a"), *b = run_dir("b");
    result *r = VAE("train", SLICE, "--run-dir", a, "--epochs", "2", "--threads", "2");
    cr_assert_eq(r->code, 0, "exit %d: %s", r->code, r->err);
    r = VAE("train", SLICE, "--run-dir", b, "--epochs", "2", "--threads", "2", "--max-steps", "55");
    cr_assert_eq(r->code, 0, "exit %d: %s", r->code, r->err);
    r = VAE("train", SLICE, "--run-dir", b, "--epochs", "2", "--threads", "2");
    cr_assert_eq(r->code, 0, "exit %d: %s", r->code, r->err);
    assert_same_run(a, b);
}

/* Stopped in the middle of an epoch (--max-steps) and resumed. */
Test(vae, resume_mid_epoch_is_bit_identical) {
    char *a = run_dir("a"), *b = run_dir("b");
    result *r = VAE("train", SLICE, "--run-dir", a, "--epochs", "2");
    cr_assert_eq(r->code, 0, "exit %d: %s", r->code, r->err);
    r = VAE("train", SLICE, "--run-dir", b, "--epochs", "2", "--max-steps", "27");
    cr_assert_eq(r->code, 0, "exit %d: %s", r->code, r->err);
    cr_assert(strstr(r->out, "stopped at step 27 (epoch 0, batch 27)"), "%s", r->out);
    r = VAE("train", SLICE, "--run-dir", b, "--epochs", "2", "--max-steps", "30");
    cr_assert_eq(r->code, 0, "exit %d: %s", r->code, r->err);
    r = VAE("train", SLICE, "--run-dir", b, "--epochs", "2");
    cr_assert_eq(r->code, 0, "exit %d: %s", r->code, r->err);
    assert_same_run(a, b);
}

/* Stopped right after the last batch of an epoch (40 steps per epoch here):
 * the epoch still ends, and its checkpoint is the uninterrupted run's. */
Test(vae, stop_at_the_last_batch_of_an_epoch) {
    char *a = run_dir("a"), *b = run_dir("deeper/nested/b");
    result *r = VAE("train", SLICE, "--run-dir", a, "--epochs", "1");
    cr_assert_eq(r->code, 0, "exit %d: %s", r->code, r->err);
    r = VAE("train", SLICE, "--run-dir", b, "--epochs", "1", "--max-steps", "40");
    cr_assert_eq(r->code, 0, "exit %d: %s", r->code, r->err);
    assert_same_run(a, b);
    r = VAE("train", SLICE, "--run-dir", b, "--epochs", "1");
    cr_assert_eq(r->code, 0, "exit %d: %s", r->code, r->err);
    assert_same_run(a, b);
}

/* Ctrl-C saves a checkpoint and exits with 130; resuming finishes the run
 * exactly as an uninterrupted one. */
Test(vae, ctrl_c_saves_and_resumes_bit_identical) {
    char *a = run_dir("a"), *b = run_dir("b");
#define LONGER "--data-dir", (char *)mnist(), "--train-limit", "4800", "--test-limit", "500", "--epochs", "2"
    result *r = VAE("train", LONGER, "--run-dir", a);
    cr_assert_eq(r->code, 0, "exit %d: %s", r->code, r->err);
    pid_t pid = start((char *const[]){"train", LONGER, "--run-dir", b, NULL});
    /* wait for the first log window to be written, then interrupt */
    char path[512];
    snprintf(path, sizeof path, "%s/metrics.jsonl", b);
    struct stat st;
    for (int i = 0; i < 6000 && (stat(path, &st) || st.st_size == 0); i++) usleep(10000);
    kill(pid, SIGINT);
    static result ri;
    finish(pid, &ri);
    cr_assert_eq(ri.code, 130, "exit %d, expected 130 after Ctrl-C: %s %s", ri.code, ri.out, ri.err);
    cr_assert(strstr(ri.out, "interrupted at step"), "%s", ri.out);
    r = VAE("train", LONGER, "--run-dir", b);
    cr_assert_eq(r->code, 0, "exit %d: %s", r->code, r->err);
    assert_same_run(a, b);
#undef LONGER
}

/* A metrics line that cannot be written (here: past a file size limit, as on
 * a full disk) stops training at once with a message naming metrics.jsonl,
 * before any checkpoint: not a run that goes on with holes in its log. */
Test(vae, a_failed_metrics_write_stops_training) {
    char *dir = run_dir("m");
    /* one line per step (~115 bytes): past 2000 bytes at step 18; stdout
     * (~65 bytes a step) stays under the limit, and no checkpoint is due
     * before step 30 (40 steps per epoch) */
    pid_t pid = start_limited((char *const[]){"train", "--data-dir", (char *)mnist(), "--train-limit",
                                              "640", "--test-limit", "500", "--log-every", "1",
                                              "--max-steps", "30", "--run-dir", dir, NULL},
                              2000);
    static result r;
    finish(pid, &r);
    cr_assert_eq(r.code, 1, "exit %d: %s", r.code, r.err);
    char want[512];
    snprintf(want, sizeof want, "vae: writing %s/metrics.jsonl: %s", dir, strerror(EFBIG));
    cr_assert(strstr(r.err, want), "expected '%s' in: %s", want, r.err);
    cr_assert(strstr(r.out, "| step 1 |"), "%s", r.out);
    cr_assert_null(strstr(r.out, "| step 25 |"), "training went on: %s", r.out);
    char ckpt[512];
    snprintf(ckpt, sizeof ckpt, "%s/checkpoints", dir);
    gv_checkpoint_manager *m = GVT_NN(gv_checkpoint_manager_new(ckpt, &(gv_checkpoint_options){0}));
    cr_assert_lt(gv_checkpoint_manager_latest_step(m), 0, "a checkpoint was saved");
    GVT_OK(gv_checkpoint_manager_close(m));
}

/* A resumed run keeps its model settings. */
Test(vae, resume_refuses_changed_settings) {
    char *a = run_dir("a");
    result *r = VAE("train", SLICE, "--run-dir", a, "--epochs", "1");
    cr_assert_eq(r->code, 0, "exit %d: %s", r->code, r->err);
    r = VAE("train", SLICE, "--run-dir", a, "--epochs", "2", "--latent", "16");
    cr_assert_eq(r->code, 2, "exit %d", r->code);
    cr_assert(strstr(r->err, "--latent 16") && strstr(r->err, "--latent 32"), "%s", r->err);
    r = VAE("train", SLICE, "--run-dir", a, "--epochs", "2", "--dataset", "fashion-mnist");
    cr_assert_eq(r->code, 2, "exit %d", r->code);
    cr_assert(strstr(r->err, "trained on mnist"), "%s", r->err);
    /* other data under the same settings: a slice of a different size */
    r = VAE("train", "--data-dir", (char *)mnist(), "--train-limit", "640", "--test-limit", "500",
            "--run-dir", a, "--epochs", "2", "--batch-size", "16");
    cr_assert_eq(r->code, 0, "the same data resumes: exit %d: %s", r->code, r->err);
    char other[512];
    snprintf(other, sizeof other, "%s/other", gvt_tmpdir);
    mkdir(other, 0777);
    char cmd[8192];
    snprintf(cmd, sizeof cmd, "cp %s/t10k-* %s/ && cp %s/t10k-images-idx3-ubyte %s/train-images-idx3-ubyte && "
             "cp %s/t10k-labels-idx1-ubyte %s/train-labels-idx1-ubyte", mnist(), other, mnist(), other,
             mnist(), other);
    cr_assert_eq(system(cmd), 0);
    r = VAE("train", "--data-dir", other, "--train-limit", "640", "--test-limit", "500", "--run-dir", a,
            "--epochs", "3");
    cr_assert_eq(r->code, 2, "exit %d: %s", r->code, r->err);
    cr_assert(strstr(r->err, "other training data"), "%s", r->err);
    /* fewer epochs than the run already has */
    r = VAE("train", SLICE, "--run-dir", a, "--epochs", "1");
    cr_assert_eq(r->code, 2, "exit %d: %s", r->code, r->err);
    cr_assert(strstr(r->err, "already at epoch 2"), "%s", r->err);
}

/* ---- the command line ---- */

typedef struct bad_case {
    const char *args[8];
    const char *needle;
} bad_case;

Test(vae, bad_flags_exit_2_with_a_message) {
    static const bad_case cases[] = {
        {{"frobnicate"}, "unknown command 'frobnicate'"},
        {{"train", "--epoch", "3"}, "unknown flag '--epoch'"},
        {{"train", "--epochs", "0"}, "--epochs: '0' is not an integer in [1,"},
        {{"train", "--epochs", "3x"}, "--epochs: '3x'"},
        {{"train", "--epochs", ""}, "--epochs: ''"},
        {{"train", "--epochs", "99999999999999999999"}, "--epochs"},
        {{"train", "--batch-size", "-16"}, "--batch-size: '-16'"},
        {{"train", "--lr", "nan"}, "--lr: 'nan'"},
        {{"train", "--lr", "-1e-4"}, "--lr: '-1e-4'"},
        {{"train", "--kl-weight", "inf"}, "--kl-weight: 'inf'"},
        {{"train", "--threads", "0"}, "--threads: '0'"},
        {{"train", "--dataset", "cifar"}, "--dataset: expected one of mnist|fashion-mnist"},
        {{"train", "--dataset", "mnis"}, "--dataset: expected one of"},
        {{"train", "--run-dir"}, "--run-dir needs a value"},
        {{"train", "--run-dir="}, "--run-dir: empty value"},
        {{"train", "--epochs", "2", "--epochs", "3"}, "--epochs given twice"},
        {{"train", "extra"}, "unexpected argument 'extra'"},
        {{"train", "--class", "3"}, "--class is not a flag of 'vae train'"},
        {{"sample", "--class", "10"}, "--class: '10'"},
        {{"sample", "--n", "0"}, "--n: '0'"},
        {{"sample", "--epochs", "2"}, "--epochs is not a flag of 'vae sample'"},
        {{"train", "--dataset", "mnist|fashion-mnist"}, "--dataset: expected one of"},
        {{"train", "--dataset", "fashion"}, "--dataset: expected one of"},
        {{"train", "--run-dir", "--help"}, "--run-dir needs a value (got the flag '--help'"},
        {{"train", "--seed", "4294967296"}, "--seed: '4294967296'"},
        /* data-parallel flags, outside an MPI job */
        {{"train", "--distributed"}, "--distributed: not started by an MPI launcher"},
        {{"train", "--distributed=yes"}, "--distributed takes no value"},
        {{"train", "--zero1"}, "--zero1 shards the AdamW state across processes"},
        {{"sample", "--distributed"}, "--distributed is not a flag of 'vae sample'"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char *args[9] = {0};
        for (int k = 0; k < 8 && cases[i].args[k]; k++) args[k] = (char *)cases[i].args[k];
        result *r = run(args);
        cr_expect_eq(r->code, 2, "case %zu (%s): exit %d, expected 2", i, cases[i].needle, r->code);
        cr_expect(strstr(r->err, cases[i].needle), "case %zu: stderr '%s' lacks '%s'", i, r->err,
                  cases[i].needle);
    }
    result *r = VAE("train", "--data-dir", (char *)mnist(), "--run-dir", run_dir("x"), "--train-limit",
                    "70000");
    cr_assert_eq(r->code, 2, "exit %d", r->code);
    cr_assert(strstr(r->err, "--train-limit 70000: the training set has only 60000"), "%s", r->err);
    r = VAE("train", "--data-dir", (char *)mnist(), "--run-dir", run_dir("y"), "--train-limit", "100",
            "--batch-size", "200");
    cr_assert_eq(r->code, 2, "exit %d", r->code);
    cr_assert(strstr(r->err, "--train-limit 100 is smaller than --batch-size 200"), "%s", r->err);
    r = VAE("train", "--data-dir", (char *)mnist(), "--run-dir", run_dir("z"), "--batch-size", "65536");
    cr_assert_eq(r->code, 2, "exit %d", r->code);
    cr_assert(strstr(r->err, "--batch-size 65536: only 60000 training examples"), "%s", r->err);
    r = VAE("train", "--data-dir", (char *)mnist(), "--run-dir", run_dir("w"), "--test-limit", "20000");
    cr_assert_eq(r->code, 2, "exit %d", r->code);
    cr_assert(strstr(r->err, "--test-limit 20000: the test set has only 10000"), "%s", r->err);
    r = VAE("--help");
    cr_assert_eq(r->code, 0);
    cr_assert(strstr(r->out, "--batch-size") && strstr(r->out, "vae sample"), "%s", r->out);
    r = run((char *[]){NULL});
    cr_assert_eq(r->code, 2);
}

Test(vae, missing_data_and_runs_are_clear_errors) {
    result *r = VAE("train", "--data-dir", run_dir("nowhere"), "--run-dir", run_dir("x"));
    cr_assert_eq(r->code, 1, "exit %d", r->code);
    cr_assert(strstr(r->err, "nowhere") && strstr(r->err, "fetch-mnist.sh"), "%s", r->err);
    r = VAE("sample", "--run-dir", run_dir("empty"));
    cr_assert_eq(r->code, 1, "exit %d", r->code);
    cr_assert(strstr(r->err, "no checkpoint"), "%s", r->err);
}

/* "<base>/" + 21 directories of 200 characters + "/END": longer than the
 * 4096 bytes the program's path buffers once held (and than PATH_MAX). */
static char *long_path(const char *base, char c) {
    size_t n = strlen(base) + 21 * 201 + 5;
    char *p = malloc(n), *q = p + sprintf(p, "%s/", base);
    for (int i = 0; i < 21; i++) memset(q, c, 200), q[200] = '/', q += 201;
    strcpy(q, "END");
    return p;
}

/* Paths are never cut short: a --run-dir or $GROVE_DATA too long for the
 * system is reported in full, not swapped for a shorter one. */
Test(vae, long_path_flags_are_not_truncated) {
    /* a regular file where a parent directory should be: mkdir fails at once */
    char *file = run_dir("plain");
    FILE *f = fopen(file, "w");
    cr_assert_not_null(f);
    fclose(f);
    char *dir = long_path(file, 'd');
    result *r = VAE("train", "--data-dir", (char *)mnist(), "--run-dir", dir);
    cr_assert_eq(r->code, 1, "exit %d", r->code);
    char *want = malloc(strlen(dir) + 64);
    sprintf(want, "--run-dir %s: %s", dir, strerror(ENOTDIR));
    cr_assert(strstr(r->err, want), "the message does not name the whole --run-dir: %.300s", r->err);
    free(want), free(dir);

    char *data = long_path(gvt_tmpdir, 'e');
    setenv("GROVE_DATA", data, 1);
    r = VAE("train", "--run-dir", run_dir("g"));
    unsetenv("GROVE_DATA");
    cr_assert_eq(r->code, 1, "exit %d", r->code);
    cr_assert(strstr(r->err, "/END/mnist/train-images-idx3-ubyte"), "%.300s", r->err);
    cr_assert(strstr(r->err, strerror(ENAMETOOLONG)), "%.300s", r->err);
    free(data);
}
