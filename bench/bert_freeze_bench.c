/* Frozen costs nothing, measured: the BERT fine-tuning step of
 * apps/bert_finetune (finetune.h) on the pretrained all-MiniLM-L6-v2,
 * num_labels 2, batch 32 x length 64 of synthetic tokens ([CLS] random ids
 * in [1000, 30000) [SEP], all attended), dropout on, in one run:
 *   frozen    multi_transform({'train': adam, 'freeze': set_to_zero()},
 *             {'bert': 'freeze', 'classifier': 'train'})
 *   full      adam on every param
 *   forward   the same loss in train mode without a gradient: the floor
 *             for the frozen step, which must compute the forward anyway
 * Each is compiled with its state donated and measured in a forked child of
 * its own, so its peak RSS (getrusage in the child) is its own: kernels,
 * arena, the state's bytes, peak RSS, load and compile time, median and
 * fastest step. The three children load side by side, then step in rounds,
 * one step each in a rotating order while the others wait, so drift on the
 * shared machine hits all three alike. Then PyTorch's frozen and full steps
 * (bench/torch_bert_step.py: requires_grad_(False) on the backbone and Adam
 * over the classifier, or Adam over everything). Checked first: the torch
 * model's pooler output against grove's gv_BertModel (eval mode,
 * gv_apply_eager) on a fixed padded input.
 *
 * The steps are the app's own (apps/bert_finetune/finetune.c, bert_ft_init
 * with --threads); the forward-only floor is its loss function alone.
 *
 *   bert_freeze_bench [--batch B] [--length L] [--steps N | --seconds S]
 *                     [--threads T] [--no-torch] [--blas NAME|auto]
 *
 * The model directory is $GROVE_BERT_DIR, else
 * /root/.cache/grove/all-MiniLM-L6-v2 (scripts/fetch-bert.sh). */
#include <errno.h>
#include <json-c/json.h>
#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <signal.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include "benchutil.h"
#include "finetune.h"

/* OpenBLAS's own queries: grove links OpenBLAS (docs/blas.md) */
extern char *openblas_get_corename(void);
extern char *openblas_get_config(void);

#define DEFAULT_DIR "/root/.cache/grove/all-MiniLM-L6-v2"
enum { CHECK_B = 2, CHECK_L = 16, MAX_POOLED = CHECK_B * 4096 };
static const double LR = 1e-3;

typedef struct opts {
    const char *dir;
    int64_t batch, length;
    int steps, threads;
    double seconds;
    bool torch;
    const char *blas;
} opts;

typedef enum { FROZEN, FULL, FORWARD, NVARIANTS } variant;
static const char *const names[NVARIANTS] = {"frozen", "full", "forward"};

/* what a child reports through its pipe */
typedef struct result {
    int ok;
    char err[512];
    gv_plan_stats st;
    int64_t trained, total; /* params trained / in the model */
    size_t state_bytes;     /* the donated state: params + optimiser state */
    double load_s, compile_s, median_ms, min_ms;
    int nsteps;
    float loss0, loss1;     /* the first and last step's loss */
    long rss_loaded_kib, rss_peak_kib;
    /* the check */
    int nloaded, ninitialized, nunused;
    int npooled;
    float pooled[MAX_POOLED];
} result;

/* ---- the forward-only floor ---- */

/* forward_step(state, batch, key) -> (step, {loss, accuracy}): the frozen
 * step without the classifier's gradient and update (nothing donated) */
static gv_tree *forward_step(gv_graph *g, const gv_tree *in, void *ud) {
    const gv_tree *state, *batch;
    gv_value key, loss, acc, step;
    gv_unpack(in, "(state, batch, key)", &state, &batch, &key);
    gv_unpack(state, "{step}", &step);
    gv_tree *args = gv_pack(g, "(params, batch, key)", gv_train_state_params(state), batch, key);
    gv_unpack(bert_ft_loss_fn(g, args, ud), "(loss, acc)", &loss, &acc);
    return gv_pack(g, "(step, {loss, accuracy})", step, loss, acc);
}

/* ---- a child's work ---- */

static long maxrss_kib(void) {
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return ru.ru_maxrss; /* KiB on Linux */
}

static bool set_err(result *r, const char *what) {
    snprintf(r->err, sizeof r->err, "%s: %s", what, gv_last_error());
    return false;
}

static gv_status load_config(const opts *o, gv_bert_config *cfg) {
    gv_status st = gv_bert_config_load(o->dir, cfg);
    cfg->num_labels = 2;
    return st;
}

/* [batch, length] int32 synthetic tokens and int32 labels */
static gv_tree *synthetic_batch(int64_t batch, int64_t length) {
    gv_tensor *ids = gv_random_randint_eager(GV_PRNG_DEFAULT, gv_prng_key(1),
                                             GV_DIMS(batch, length), 1000, 30000);
    gv_tensor *mask = gv_tensor_ones(GV_I32, GV_DIMS(batch, length));
    gv_tensor *types = gv_tensor_zeros(GV_I32, GV_DIMS(batch, length));
    gv_tensor *labels = gv_random_randint_eager(GV_PRNG_DEFAULT, gv_prng_key(2), GV_DIMS(batch), 0, 2);
    gv_tree *b = NULL;
    if (ids && mask && types && labels) {
        int32_t *p = gv_tensor_data(ids);
        for (int64_t i = 0; i < batch; i++) p[i * length] = 101, p[i * length + length - 1] = 102;
        b = bert_ft_batch(&(gv_bert_batch){ids, mask, types}, labels);
    }
    gv_tensor_free(ids), gv_tensor_free(mask), gv_tensor_free(types), gv_tensor_free(labels);
    return b;
}

/* torch_bert_step.py's check_input(): row b has length - 4b tokens, type 1
 * on the second half of them */
static gv_tree *check_batch(void) {
    int32_t ids[CHECK_B][CHECK_L] = {{0}}, mask[CHECK_B][CHECK_L] = {{0}},
            types[CHECK_B][CHECK_L] = {{0}}, labels[CHECK_B] = {0, 1};
    for (int b = 0; b < CHECK_B; b++) {
        int n = CHECK_L - 4 * b < 2 ? 2 : CHECK_L - 4 * b;
        for (int t = 0; t < n; t++) {
            ids[b][t] = t == 0 ? 101 : t == n - 1 ? 102 : 1000 + (b * 131 + t * 7919) % 29000;
            mask[b][t] = 1;
            types[b][t] = t >= n / 2;
        }
    }
    gv_tensor *ti = gv_tensor_from_data(GV_I32, GV_DIMS(CHECK_B, CHECK_L), ids, sizeof ids);
    gv_tensor *tm = gv_tensor_from_data(GV_I32, GV_DIMS(CHECK_B, CHECK_L), mask, sizeof mask);
    gv_tensor *tt = gv_tensor_from_data(GV_I32, GV_DIMS(CHECK_B, CHECK_L), types, sizeof types);
    gv_tensor *tl = gv_tensor_from_data(GV_I32, GV_DIMS(CHECK_B), labels, sizeof labels);
    gv_tree *b = ti && tm && tt && tl ? bert_ft_batch(&(gv_bert_batch){ti, tm, tt}, tl) : NULL;
    gv_tensor_free(ti), gv_tensor_free(tm), gv_tensor_free(tt), gv_tensor_free(tl);
    return b;
}

static void put(int fd, char c) {
    while (write(fd, &c, 1) < 0 && errno == EINTR) {}
}
static char get(int fd) {
    char c = 0;
    ssize_t n;
    while ((n = read(fd, &c, 1)) < 0 && errno == EINTR) {}
    return n == 1 ? c : 0;
}

/* One variant at full size in a child: load, compile, two warm-up steps
 * (the arena's pages faulted in), 'R' up; then one timed step per 'r' down
 * ('a' up after it) until 'q'. */
static bool run_variant(const opts *o, variant v, result *r, int down, int up) {
    gv_bert_config cfg;
    if (load_config(o, &cfg)) return set_err(r, "config");
    bert_ft f;
    if (bert_ft_init(&f, &cfg, v != FULL, LR, o->threads)) return set_err(r, "bert_ft_init");
    double t0 = bench_now();
    gv_tree *vars = gv_bert_from_pretrained(&f.model, o->dir, gv_prng_key(0), NULL);
    if (!vars) return set_err(r, "from_pretrained");
    r->load_s = bench_now() - t0;
    const gv_tree *params = gv_tree_get(vars, "params");
    r->total = gv_tree_size(params);
    r->trained = v == FULL ? r->total : gv_tree_size(gv_tree_get(params, "classifier"));
    gv_tree *state = gv_train_state_create(f.tx, params);
    gv_tree *batch = synthetic_batch(o->batch, o->length);
    gv_tensor *key = gv_tensor_zeros(GV_U32, GV_DIMS(2));
    gv_tree *in = state && batch && key ? gv_pack(NULL, "(state, batch, key)", state, batch, key)
                                        : NULL;
    if (!in) return set_err(r, "inputs");
    r->state_bytes = gv_tree_nbytes(state);
    r->rss_loaded_kib = maxrss_kib();
    gv_jit *fwd = v == FORWARD
                      ? gv_jit_new(forward_step, &f, &(gv_plan_options){.threads = o->threads})
                      : NULL;
    gv_jit *step = v == FORWARD ? fwd : f.step; /* the app's own train step */
    t0 = bench_now();
    const gv_plan *plan = step ? gv_jit_plan(step, in) : NULL;
    if (!plan) return set_err(r, "compile");
    r->compile_s = bench_now() - t0;
    r->st = gv_plan_get_stats(plan);

    int cap = 64, n = 0;
    double *ms = malloc((size_t)cap * sizeof *ms);
    uint32_t *k = gv_tensor_data(key);
    gv_tree *out = NULL;
    gv_tensor *loss, *acc;
    for (int i = -2; ms; i++) {
        if (i == 0) put(up, 'R');
        if (i >= 0 && get(down) != 'r') break;
        k[0] = (uint32_t)(i + 2); /* a new dropout key each step */
        t0 = bench_now();
        if (gv_jit_call(step, in, &out)) return free(ms), set_err(r, "step");
        double dt = 1e3 * (bench_now() - t0);
        gv_unpack(out, "(_, {loss, accuracy})", &loss, &acc);
        if (i == -2) r->loss0 = (float)gv_tensor_item(loss);
        r->loss1 = (float)gv_tensor_item(loss);
        if (i < 0) continue;
        if (n == cap) {
            double *grown = realloc(ms, (size_t)(cap *= 2) * sizeof *ms);
            if (!grown) return free(ms), snprintf(r->err, sizeof r->err, "out of memory"), false;
            ms = grown;
        }
        ms[n++] = dt;
        put(up, 'a');
    }
    if (!ms || n == 0) return free(ms), snprintf(r->err, sizeof r->err, "no steps"), false;
    r->nsteps = n;
    r->median_ms = bench_median(ms, n); /* sorts ms */
    r->min_ms = ms[0];
    free(ms);
    r->rss_peak_kib = maxrss_kib();
    /* the process ends here: what the step holds goes with it */
    return true;
}

/* The pooler output of gv_BertModel on check_batch(), the load report, and
 * whether the bench's steps compile to bert_ft's (at the check's size). */
static bool run_check(const opts *o, result *r) {
    gv_bert_config cfg;
    if (load_config(o, &cfg)) return set_err(r, "config");
    gv_module bert = {&gv_BertModel, &cfg};
    gv_load_report rep = {0};
    gv_tree *vars = gv_bert_from_pretrained(&bert, o->dir, gv_prng_key(0), &rep);
    if (!vars) return set_err(r, "from_pretrained");
    r->nloaded = (int)rep.nloaded, r->ninitialized = (int)rep.ninitialized;
    r->nunused = (int)rep.nunused;
    gv_load_report_free(&rep);
    gv_tree *batch = check_batch(), *out = NULL;
    gv_tensor *ids, *mask, *types, *pooled;
    if (!batch) return set_err(r, "check batch");
    gv_unpack(batch, "{input_ids, attention_mask, token_type_ids}", &ids, &mask, &types);
    gv_tree *args = gv_pack(NULL, "(ids, mask, types)", ids, mask, types);
    if (!args || gv_apply_eager(&bert, vars, args, NULL, NULL, &out)) return set_err(r, "BertModel");
    gv_unpack(out, "(_, pooled)", &pooled);
    if (!pooled || gv_tensor_size(pooled) > MAX_POOLED) return set_err(r, "pooler output");
    r->npooled = (int)gv_tensor_size(pooled);
    memcpy(r->pooled, gv_tensor_data(pooled), (size_t)r->npooled * sizeof(float));

    return true;
}

/* A forked child of its own for each measurement, so each peak RSS is its
 * own (the parent holds no model when it forks). down: commands to it; up:
 * its one-byte replies ('E' for an error), then its result. */
typedef struct child {
    pid_t pid;
    int down, up;
} child;

static bool child_start(child *c, const opts *o, variant v, bool check, result *r) {
    int d[2], u[2];
    memset(r, 0, sizeof *r);
    *c = (child){-1, -1, -1};
    if (pipe(d) || pipe(u))
        return snprintf(r->err, sizeof r->err, "pipe: %s", strerror(errno)), false;
    fflush(stdout), fflush(stderr);
    pid_t pid = fork();
    if (pid < 0) return snprintf(r->err, sizeof r->err, "fork: %s", strerror(errno)), false;
    if (pid == 0) {
        close(d[1]), close(u[0]);
        r->ok = check ? run_check(o, r) : run_variant(o, v, r, d[0], u[1]);
        if (!r->ok && !check) put(u[1], 'E'); /* in place of 'R' or 'a': the result follows */
        const char *p = (const char *)r;
        for (size_t left = sizeof *r; left;) {
            ssize_t w = write(u[1], p, left);
            if (w <= 0 && errno != EINTR) break;
            if (w > 0) p += w, left -= (size_t)w;
        }
        _exit(0);
    }
    close(d[0]), close(u[1]);
    *c = (child){pid, d[1], u[0]};
    return true;
}

/* 'q' down (a child that failed has gone: SIGPIPE is ignored), then the
 * child's result, and the child reaped. */
static bool child_finish(child *c, result *r) {
    if (c->pid < 0) return false;
    put(c->down, 'q');
    close(c->down);
    size_t got = 0;
    for (char *p = (char *)r; got < sizeof *r;) {
        ssize_t n = read(c->up, p + got, sizeof *r - got);
        if (n == 0) break;
        if (n > 0) got += (size_t)n;
        else if (errno != EINTR) break;
    }
    close(c->up);
    int status = 0;
    waitpid(c->pid, &status, 0);
    c->pid = -1;
    if (got < sizeof *r) {
        memset(r, 0, sizeof *r);
        if (WIFSIGNALED(status))
            snprintf(r->err, sizeof r->err, "the child died of signal %d", WTERMSIG(status));
        else snprintf(r->err, sizeof r->err, "the child exited with %d", WEXITSTATUS(status));
        return false;
    }
    return r->ok;
}

/* ---- PyTorch ---- */

typedef struct torch_res {
    bool ok;
    double ms, min_ms;
    long rss_kib;
    int steps;
    char blas[64], kernels[96];
} torch_res;

static json_object *popen_json(const char *cmd, const char *want, json_object **more, int nmore) {
    FILE *p = popen(cmd, "r");
    if (!p) return NULL;
    json_object *found = NULL, *v;
    size_t cap = 1 << 20, len = 0;
    char *line = malloc(cap);
    int c;
    while (line && (c = fgetc(p)) != EOF) {
        if (len + 1 == cap) {
            char *grown = realloc(line, cap *= 2);
            if (!grown) break;
            line = grown;
        }
        if (c != '\n') {
            line[len++] = (char)c;
            continue;
        }
        line[len] = '\0', len = 0;
        json_object *o = json_tokener_parse(line);
        if (!o) continue;
        if (json_object_object_get_ex(o, want, &v)) {
            const char *var = json_object_get_string(v);
            int slot = -1;
            if (!strcmp(want, "variant"))
                for (int i = 0; i < nmore; i++)
                    if (!strcmp(var, names[i])) slot = i;
            if (slot >= 0 && !more[slot]) more[slot] = o, o = NULL;
            else if (slot < 0 && !found) found = o, o = NULL;
        }
        json_object_put(o);
    }
    free(line);
    pclose(p);
    return found;
}

static double jnum(json_object *o, const char *k) {
    json_object *v;
    return json_object_object_get_ex(o, k, &v) ? json_object_get_double(v) : NAN;
}
static const char *jstr(json_object *o, const char *k) {
    json_object *v;
    return json_object_object_get_ex(o, k, &v) ? json_object_get_string(v) : "?";
}

static void torch_times(const opts *o, torch_res out[2]) {
    char cmd[2048];
    snprintf(cmd, sizeof cmd,
             "/usr/bin/python3 %s/torch_bert_step.py --model-dir '%s' --batch %lld --length %lld "
             "--threads %d --steps %d --seconds %g --lr %g --blas %s 2>/dev/null",
             GROVE_BENCH_DIR, o->dir, (long long)o->batch, (long long)o->length, o->threads,
             o->steps > 0 ? o->steps : 3, o->steps > 0 ? 0.0 : o->seconds, LR, o->blas);
    json_object *rows[2] = {NULL, NULL};
    popen_json(cmd, "variant", rows, 2);
    for (int i = 0; i < 2; i++) {
        out[i] = (torch_res){0};
        if (!rows[i]) continue;
        out[i].ok = true;
        out[i].ms = jnum(rows[i], "step_ms"), out[i].min_ms = jnum(rows[i], "min_ms");
        out[i].rss_kib = (long)jnum(rows[i], "peak_rss_kib");
        out[i].steps = (int)jnum(rows[i], "steps");
        snprintf(out[i].blas, sizeof out[i].blas, "%s", jstr(rows[i], "blas"));
        snprintf(out[i].kernels, sizeof out[i].kernels, "%s", jstr(rows[i], "kernels"));
        json_object_put(rows[i]);
    }
}

/* max |torch - grove| over the pooled outputs, NAN when torch gave none */
static double torch_check(const opts *o, const result *r, double *maxabs) {
    char cmd[2048];
    snprintf(cmd, sizeof cmd,
             "/usr/bin/python3 %s/torch_bert_step.py --check --model-dir '%s' --check-batch %d "
             "--check-length %d --threads 1 2>/dev/null",
             GROVE_BENCH_DIR, o->dir, CHECK_B, CHECK_L);
    json_object *row = popen_json(cmd, "check", NULL, 0), *v;
    double diff = NAN;
    *maxabs = 0;
    if (row && json_object_object_get_ex(row, "pooled", &v) &&
        (int)json_object_array_length(v) == r->npooled) {
        diff = 0;
        for (int i = 0; i < r->npooled; i++) {
            double t = json_object_get_double(json_object_array_get_idx(v, (size_t)i));
            diff = fmax(diff, fabs(t - r->pooled[i]));
            *maxabs = fmax(*maxabs, fabs(t));
        }
    }
    json_object_put(row);
    return diff;
}

/* ---- the machine ---- */

static bool cpu_has(const char *flag) {
    FILE *f = fopen("/proc/cpuinfo", "r");
    char line[8192];
    bool has = false;
    while (f && !has && fgets(line, sizeof line, f))
        if (!strncmp(line, "flags", 5))
            for (char *t = strtok(line, " \t\n"); t && !has; t = strtok(NULL, " \t\n"))
                has = !strcmp(t, flag);
    if (f) fclose(f);
    return has;
}

static int usage(void) {
    fprintf(stderr, "usage: bert_freeze_bench [--batch B] [--length L] [--steps N | --seconds S] "
                    "[--threads T] [--no-torch] [--blas NAME|auto]\n");
    return 2;
}

/* the 1-minute load average: others' jobs share these cores */
static double loadavg(void) {
    double l = NAN;
    FILE *f = fopen("/proc/loadavg", "r");
    if (f) {
        if (fscanf(f, "%lf", &l) != 1) l = NAN;
        fclose(f);
    }
    return l;
}

static double mib(double bytes) { return bytes / (1024.0 * 1024.0); }

int main(int argc, char **argv) {
    opts o = {getenv("GROVE_BERT_DIR") ? getenv("GROVE_BERT_DIR") : DEFAULT_DIR, 32, 64, 10, 2,
              0, true, "auto"};
    for (int i = 1; i < argc; i++) {
        bool more = i + 1 < argc;
        if (!strcmp(argv[i], "--batch") && more) o.batch = atoll(argv[++i]);
        else if (!strcmp(argv[i], "--length") && more) o.length = atoll(argv[++i]);
        else if (!strcmp(argv[i], "--steps") && more) o.steps = atoi(argv[++i]), o.seconds = 0;
        else if (!strcmp(argv[i], "--seconds") && more) o.seconds = atof(argv[++i]), o.steps = 0;
        else if (!strcmp(argv[i], "--threads") && more) o.threads = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--blas") && more) o.blas = argv[++i];
        else if (!strcmp(argv[i], "--no-torch")) o.torch = false;
        else return usage();
    }
    /* o.dir and o.blas go into the PyTorch command line, in single quotes */
    if (o.batch < 1 || o.length < 2 || o.length > 512 || o.threads < 1 ||
        (o.steps < 1 && !(o.seconds > 0)) || strchr(o.dir, '\'') ||
        strspn(o.blas, "abcdefghijklmnopqrstuvwxyz-") != strlen(o.blas))
        return usage();
    char path[4096];
    snprintf(path, sizeof path, "%s/model.safetensors", o.dir);
    if (access(path, R_OK)) {
        fprintf(stderr, "bert_freeze_bench: no %s (run scripts/fetch-bert.sh, or set GROVE_BERT_DIR)\n",
                path);
        return 1;
    }
    /* OpenBLAS 0.3.21 picks its generic Prescott kernels on CPUs it does not
     * know, 3-4x slower GEMMs (docs/blas.md); it reads OPENBLAS_CORETYPE when
     * it loads, so the bench starts itself again with the Skylake-X kernels,
     * as scripts/main.sh does for the VAE. A value the user set is kept. */
    const char *core_env = getenv("OPENBLAS_CORETYPE");
    bool core_set_here = getenv("BERT_FREEZE_BENCH_CORETYPE_SET") != NULL;
    if (!core_env && cpu_has("avx512f") && !strcmp(openblas_get_corename(), "Prescott")) {
        fprintf(stderr, "bert_freeze_bench: OpenBLAS does not know this CPU (it picked Prescott); "
                        "running again with OPENBLAS_CORETYPE=SkylakeX\n");
        setenv("OPENBLAS_CORETYPE", "SkylakeX", 1);
        setenv("BERT_FREEZE_BENCH_CORETYPE_SET", "1", 1);
        execv("/proc/self/exe", argv);
        fprintf(stderr, "bert_freeze_bench: warning: could not restart (%s); set "
                        "OPENBLAS_CORETYPE=SkylakeX yourself\n", strerror(errno));
    }

    char cpu[128];
    bench_cpu_name(cpu, sizeof cpu);
    printf("BERT fine-tuning step, backbone frozen vs fully fine-tuned: %s, 2 labels\n", o.dir);
    printf("batch %lld x length %lld, dropout 0.1, adam lr %g, %d thread%s (grove plans, "
           "torch.set_num_threads)\n", (long long)o.batch, (long long)o.length, LR, o.threads,
           o.threads == 1 ? "" : "s");
    printf("machine: %s, %ld CPUs online, AVX-512 %s; load average %.2f before the run\n", cpu,
           sysconf(_SC_NPROCESSORS_ONLN), cpu_has("avx512f") ? "yes" : "no", loadavg());
    printf("grove's BLAS: %s; kernels %s (OPENBLAS_CORETYPE%s%s)\n", openblas_get_config(),
           openblas_get_corename(), core_env ? "=" : " ",
           core_set_here ? "SkylakeX, set by this bench: OpenBLAS picked Prescott"
                         : core_env ? core_env : "unset");
    fflush(stdout);

    /* the check */
    static result chk, res[NVARIANTS];
    signal(SIGPIPE, SIG_IGN);
    child cc;
    bool cok = child_start(&cc, &o, 0, true, &chk) && child_finish(&cc, &chk);
    if (!cok) printf("check: grove failed: %s\n", chk.err);
    else {
        printf("load: %d params from the checkpoint, %d newly initialised, %d checkpoint tensors "
               "unused\n", chk.nloaded, chk.ninitialized, chk.nunused);
        if (o.torch) {
            double maxabs, d = torch_check(&o, &chk, &maxabs);
            if (isnan(d)) printf("check: no PyTorch (is python3-torch installed?): skipped\n");
            else printf("check: pooler output, PyTorch vs grove (eval, [%d, %d] with padding and "
                        "token types): max |diff| %.2e (max |x| %.3f): %s\n", CHECK_B, CHECK_L, d,
                        maxabs, d <= 1e-5 ? "ok" : "MISMATCH");
        }
    }
    fflush(stdout);

    /* the variants load and compile side by side, then take their timed
     * steps in rounds, one step each in a rotating order, so drift on this
     * shared machine hits all three alike */
    child ch[NVARIANTS];
    bool ok[NVARIANTS], live[NVARIANTS];
    for (int v = 0; v < NVARIANTS; v++) live[v] = child_start(&ch[v], &o, (variant)v, false, &res[v]);
    for (int v = 0; v < NVARIANTS; v++) live[v] = live[v] && get(ch[v].up) == 'R';
    double t_end = bench_now() + o.seconds;
    for (int k = 0; o.steps > 0 ? k < o.steps : k < 3 || bench_now() < t_end; k++)
        for (int j = 0; j < NVARIANTS; j++) {
            int v = (k + j) % NVARIANTS;
            if (live[v]) put(ch[v].down, 'r'), live[v] = get(ch[v].up) == 'a';
        }
    for (int v = 0; v < NVARIANTS; v++) {
        ok[v] = child_finish(&ch[v], &res[v]);
        if (!ok[v]) fprintf(stderr, "bert_freeze_bench: %s: %s\n", names[v], res[v].err);
    }
    torch_res tr[2] = {{0}};
    if (o.torch) {
        torch_times(&o, tr);
        if (!tr[0].ok && !tr[1].ok)
            fprintf(stderr, "bert_freeze_bench: no PyTorch numbers (is python3-torch installed?)\n");
    }

    printf("\nRSS in MiB: \"RSS ready\" is the child's peak once the model is loaded and the "
           "state created, before compiling; \"peak RSS\" its peak at the end\n");
    printf("\n| %-15s | %10s | %7s | %5s | %5s | %9s | %9s | %9s | %9s | %6s | %8s | %9s | %7s | %6s |\n",
           "step", "trained", "kernels", "fused", "gemms", "arena MiB", "state MiB", "RSS ready",
           "peak RSS", "load", "compile", "median ms", "fastest", "steps");
    printf("|%s|%s|%s|%s|%s|%s|%s|%s|%s|%s|%s|%s|%s|%s|\n", "-----------------", "-----------:",
           "--------:", "------:", "------:", "----------:", "----------:", "----------:",
           "----------:", "-------:", "---------:", "----------:", "--------:", "-------:");
    for (int v = 0; v < NVARIANTS; v++) {
        char label[32];
        snprintf(label, sizeof label, "grove %s", names[v]);
        if (!ok[v]) {
            printf("| %-15s | failed: %s\n", label, res[v].err);
            continue;
        }
        const result *r = &res[v];
        printf("| %-15s | %10lld | %7d | %5d | %5d | %9.1f | %9.1f | %9.1f | %9.1f | %5.1fs | "
               "%7.1fs | %9.1f | %7.1f | %6d |\n", label, v == FORWARD ? 0LL : (long long)r->trained,
               r->st.kernels, r->st.fused_kernels, r->st.gemms, mib((double)r->st.arena_bytes),
               mib((double)r->state_bytes), r->rss_loaded_kib / 1024.0, r->rss_peak_kib / 1024.0,
               r->load_s, r->compile_s, r->median_ms, r->min_ms, r->nsteps);
    }
    for (int i = 0; i < 2; i++)
        if (tr[i].ok)
            printf("| pytorch %-7s | %10s | %7s | %5s | %5s | %9s | %9s | %9s | %9.1f | %6s | %8s | "
                   "%9.1f | %7.1f | %6d |\n", names[i], i == FROZEN ? "classifier" : "all", "-", "-",
                   "-", "-", "-", "-", tr[i].rss_kib / 1024.0, "-", "-", tr[i].ms, tr[i].min_ms,
                   tr[i].steps);
    if (tr[0].ok || tr[1].ok)
        printf("\npytorch %s, BLAS %s (%s)\n", "1.13", tr[tr[0].ok ? 0 : 1].blas,
               tr[tr[0].ok ? 0 : 1].kernels);
    printf("\n");
    for (int v = 0; v < NVARIANTS; v++)
        if (ok[v])
            printf("grove %s plan: %d traced nodes -> %d, all intermediates %.1f MiB without reuse, "
                   "%d outputs written in place into the donated state\n", names[v],
                   res[v].st.nodes_traced, res[v].st.nodes_optimized,
                   mib((double)res[v].st.intermediate_bytes), res[v].st.donated_outputs);
    printf("\nratios: median (fastest)\n");
    if (ok[FROZEN] && ok[FULL])
        printf("grove: frozen step %.2fx (%.2fx) faster than full, arena %.2fx smaller, peak RSS "
               "%.2fx smaller\n", res[FULL].median_ms / res[FROZEN].median_ms,
               res[FULL].min_ms / res[FROZEN].min_ms,
               (double)res[FULL].st.arena_bytes / (double)res[FROZEN].st.arena_bytes,
               (double)res[FULL].rss_peak_kib / (double)res[FROZEN].rss_peak_kib);
    if (ok[FROZEN] && ok[FORWARD])
        printf("grove: frozen step / forward alone: %.3fx (%.3fx) time, %+d kernels (the "
               "classifier's gradient and adam)\n", res[FROZEN].median_ms / res[FORWARD].median_ms,
               res[FROZEN].min_ms / res[FORWARD].min_ms,
               res[FROZEN].st.kernels - res[FORWARD].st.kernels);
    if (tr[0].ok && tr[1].ok)
        printf("pytorch: frozen step %.2fx (%.2fx) faster than full\n", tr[1].ms / tr[0].ms,
               tr[1].min_ms / tr[0].min_ms);
    for (int i = 0; i < 2; i++)
        if (ok[i] && tr[i].ok)
            printf("grove vs pytorch, %s: %.2fx (%.2fx) (pytorch ms / grove ms)\n", names[i],
                   tr[i].ms / res[i].median_ms, tr[i].min_ms / res[i].min_ms);
    for (int v = 0; v < NVARIANTS; v++)
        if (ok[v])
            printf("grove %s: loss %.4f at the first step, %.4f at the last\n", names[v],
                   res[v].loss0, res[v].loss1);
    printf("load average %.2f after the run\n", loadavg());
    return ok[FROZEN] && ok[FULL] && ok[FORWARD] ? 0 : 1;
}
