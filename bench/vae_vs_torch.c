/* The MNIST VAE's training step (apps/vae: forward, value_and_grad with the
 * mse/kl aux, adamw, apply_updates, state donated) in grove, PyTorch
 * (bench/torch_vae_step.py) and JAX with jit (bench/jax_vae_step.py, the
 * tutorial's Flax + Optax step), the same model, loss and optimiser, in the
 * same run, at batch 16 and 128 on 1 and 2 threads, against this machine's
 * floor measured in the same run. Prints a markdown table (bench/README.md).
 *
 *   vae_vs_torch [--seconds S] [--no-torch] [--no-jax] [--blas NAME|auto]
 *                [--jax-python PATH] [--repeat N] [--profile]
 *
 * --repeat N runs each grove configuration in N processes and reports the
 * one with the median steps/s (each run's own figure is already the median
 * of five timed rounds).
 *
 * Each grove configuration runs in a child process of its own (this binary
 * with --worker), so its peak RSS and its time from process start to the
 * first finished step (trace + compile + one step) are its own, as each
 * peer's are. The child also counts allocations (malloc family) and page
 * faults over its timed steps. */
#define _GNU_SOURCE
#include <immintrin.h>
#include <math.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include <json-c/json.h>

#include "alloc_count.h"
#include "benchutil.h"
#include "grove/optim.h"
#include "vae_model.h"

/* GEMM FLOPs of one step, per batch row: forward, dW and dX of the nine
 * Dense layers (sum of in*out = 490,112), less the two dead dX (of the
 * 784x256 input layer and the 10x64 one-hot class projection): 2 (2 * 490,112
 * + 288,768) = 2,537,984 (40.61 M at batch 16; performance-baseline.md). */
enum { VAE_GEMM_FLOPS_PER_ROW = 2537984, VAE_PARAMS = 491920 };

/* ---- the child: one grove configuration ---- */

typedef struct vae_run {
    vae_trainer *t;
    gv_tensor *x, *y;
    gv_key key;
} vae_run;

static void vae_step(void *ctx) {
    vae_run *r = ctx;
    gv_key sub;
    vae_metrics m;
    gv_random_split2_eager(GV_PRNG_DEFAULT, r->key, &r->key, &sub);
    if (vae_trainer_step(r->t, r->x, r->y, sub, &m) != GV_OK) {
        fprintf(stderr, "vae_vs_torch: %s\n", gv_last_error());
        exit(1);
    }
}

static int worker(int64_t batch, int threads, double seconds, double t0, bool profile) {
    vae_cfg cfg;
    vae_cfg_init(&cfg, 32);
    gv_tree *vars = vae_init_variables(&cfg, gv_prng_key(0), batch);
    vae_hparams hp = {0.5, 1e-4, threads, false};
    vae_run r = {0};
    r.t = vars ? vae_trainer_new(&cfg, &hp, gv_tree_get(vars, "params"), batch) : NULL;
    /* synthetic [0, 1) images and random labels, as the peers use */
    r.x = gv_random_uniform_eager(GV_PRNG_DEFAULT, gv_prng_key(1), GV_DIMS(batch, VAE_IMAGE_SIZE), 0, 1);
    r.y = gv_random_randint_eager(GV_PRNG_DEFAULT, gv_prng_key(2), GV_DIMS(batch), 0, VAE_NUM_CLASSES);
    r.key = gv_prng_key(3);
    if (!r.t || !r.x || !r.y) {
        fprintf(stderr, "vae_vs_torch: %s\n", gv_last_error());
        return 1;
    }
    vae_step(&r);
    double first = bench_now() - t0;
    gv_plan_stats st = vae_trainer_stats(r.t);
    if (profile) gv_plan_profile_enable(vae_trainer_plan(r.t), true);
    double rate = bench_steps_per_s(vae_step, &r, seconds);
    /* allocations and page faults over 200 more steps */
    struct rusage ru0, ru1;
    getrusage(RUSAGE_SELF, &ru0);
    long a0 = 0, a1 = 0;
#ifdef GVT_COUNTING_ALLOCS
    a0 = gvt_allocs;
#endif
    for (int k = 0; k < 200; k++) vae_step(&r);
#ifdef GVT_COUNTING_ALLOCS
    a1 = gvt_allocs;
#endif
    getrusage(RUSAGE_SELF, &ru1);
    json_object *o = json_object_new_object();
    json_object_object_add(o, "impl", json_object_new_string("grove"));
    json_object_object_add(o, "batch", json_object_new_int((int)batch));
    json_object_object_add(o, "threads", json_object_new_int(threads));
    json_object_object_add(o, "steps_per_s", json_object_new_double(rate));
    json_object_object_add(o, "rss_mib", json_object_new_double(ru1.ru_maxrss / 1024.0));
    json_object_object_add(o, "first_step_s", json_object_new_double(first));
#ifdef GVT_COUNTING_ALLOCS
    json_object_object_add(o, "allocs_per_step", json_object_new_double((double)(a1 - a0) / 200));
#endif
    json_object_object_add(o, "faults_per_step",
                           json_object_new_double((double)(ru1.ru_minflt - ru0.ru_minflt) / 200));
    json_object_object_add(o, "kernels", json_object_new_int(st.kernels));
    json_object_object_add(o, "gemms", json_object_new_int(st.gemms));
    json_object_object_add(o, "precompiled", json_object_new_int(st.precompiled_kernels));
    json_object_object_add(o, "arena_bytes", json_object_new_int64((int64_t)st.arena_bytes));
    printf("%s\n", json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN));
    json_object_put(o);
    if (profile) {
        char *rep = gv_plan_profile_report(vae_trainer_plan(r.t));
        fprintf(stderr, "grove, batch %lld, %d threads:\n%s", (long long)batch, threads,
                rep ? rep : gv_last_error());
        free(rep);
    }
    fflush(stdout);
    vae_trainer_free(r.t);
    gv_tensor_free(r.x), gv_tensor_free(r.y);
    gv_tree_free(vars);
    return 0;
}

/* ---- the floor: GEMM FLOPs at the FMA peak + one fused AdamW pass ---- */

/* FMA throughput of one thread: 16 independent chains of 16-lane FMAs. */
__attribute__((target("avx512f"), noinline)) static double fma_gflops_1(double seconds) {
    __m512 acc[16], m = _mm512_set1_ps(0.999999f), a = _mm512_set1_ps(1e-7f);
    for (int k = 0; k < 16; k++) acc[k] = _mm512_set1_ps((float)k);
    long iters = 0;
    double t0 = bench_now(), t;
    do {
        for (int i = 0; i < 100000; i++)
            for (int k = 0; k < 16; k++) acc[k] = _mm512_fmadd_ps(acc[k], m, a);
        iters += 100000;
        t = bench_now() - t0;
    } while (t < seconds);
    float sink = 0;
    for (int k = 0; k < 16; k++) sink += _mm512_reduce_add_ps(acc[k]);
    if (sink == 12345.678f) fprintf(stderr, " ");
    return (double)iters * 16 * 16 * 2 / t / 1e9;
}

static double fma_gflops(int threads, double seconds) {
    if (!__builtin_cpu_supports("avx512f")) return NAN;
    double total = 0;
#pragma omp parallel num_threads(threads) reduction(+ : total)
    total += fma_gflops_1(seconds);
    return total;
}

/* One AdamW pass over all 491,920 params as grove runs it (one pre-compiled
 * loop per leaf, the same leaves as the VAE), in microseconds: the optimiser
 * half of the floor. */
typedef struct adamw_pass {
    gv_plan *plan;
    gv_tree *in, *out;
} adamw_pass;

static gv_tree *adamw_update(gv_graph *g, const gv_tree *in, void *ud) {
    gv_tree *u, *s;
    if (gv_transform_update(ud, g, gv_tree_child(in, 2), gv_tree_child(in, 1), gv_tree_child(in, 0),
                            &u, &s) != GV_OK)
        return NULL;
    gv_tree *np = gv_apply_updates(g, gv_tree_child(in, 0), u), *t = gv_tree_new_tuple();
    gv_tree_free(u);
    gv_tree_append(t, np), gv_tree_append(t, s);
    return t;
}

static void adamw_run(void *ctx) {
    adamw_pass *a = ctx;
    if (gv_plan_run(a->plan, a->in, a->out) != GV_OK) {
        fprintf(stderr, "vae_vs_torch: %s\n", gv_last_error());
        exit(1);
    }
}

static double adamw_pass_us(int threads, double seconds) {
    vae_cfg cfg;
    vae_cfg_init(&cfg, 32);
    gv_tree *vars = vae_init_variables(&cfg, gv_prng_key(0), 16);
    gv_transform *tx = gv_adamw(.learning_rate = 1e-4);
    gv_tree *p = gv_tree_clone(gv_tree_get(vars, "params"));
    gv_tree *in = gv_tree_new_tuple();
    gv_tree_append(in, gv_tree_copy(p));
    gv_tree_append(in, gv_transform_init_eager(tx, p));
    gv_tree_append(in, p); /* grads: any values of the params' shapes */
    gv_fn *f = gv_trace(adamw_update, tx, in);
    adamw_pass a = {f ? gv_plan_compile(f, &(gv_plan_options){.threads = threads}) : NULL, in, NULL};
    a.out = a.plan ? gv_plan_new_outputs(a.plan) : NULL;
    double us = NAN;
    if (a.out) us = 1e6 / bench_steps_per_s(adamw_run, &a, seconds);
    else fprintf(stderr, "vae_vs_torch: the AdamW floor: %s\n", gv_last_error());
    gv_tree_free(a.out), gv_plan_free(a.plan), gv_fn_free(f), gv_tree_free(in);
    gv_transform_free(tx), gv_tree_free(vars);
    return us;
}

/* ---- the parent: peers, grove's children, the table ---- */

typedef struct row {
    bool ok;
    double rate, rss, first, allocs, faults;
    char blas[64];
} row;

enum { NB = 2, NT = 2, MAX_REPEAT = 9 };
static const int BATCHES[NB] = {16, 128};

static int cell(int batch, int threads) {
    for (int b = 0; b < NB; b++)
        if (BATCHES[b] == batch && threads >= 1 && threads <= NT) return b * NT + threads - 1;
    return -1;
}

static double num(json_object *o, const char *k, double dflt) {
    json_object *v;
    return json_object_object_get_ex(o, k, &v) ? json_object_get_double(v) : dflt;
}

/* Runs cmd and keeps, per (batch, threads), the fastest JSON line it prints. */
static int collect(const char *cmd, row *rows) {
    FILE *p = popen(cmd, "r");
    if (!p) return 0;
    char line[8192];
    int n = 0;
    while (fgets(line, sizeof line, p)) {
        json_object *o = json_tokener_parse(line), *v;
        if (!o) continue;
        int c = cell((int)num(o, "batch", 0), (int)num(o, "threads", 0));
        double rate = num(o, "steps_per_s", -1);
        if (c >= 0 && rate > 0 && (!rows[c].ok || rate > rows[c].rate)) {
            row *r = &rows[c];
            r->ok = true, r->rate = rate;
            r->rss = num(o, "rss_mib", NAN), r->first = num(o, "first_step_s", NAN);
            r->allocs = num(o, "allocs_per_step", NAN), r->faults = num(o, "faults_per_step", NAN);
            snprintf(r->blas, sizeof r->blas, "%s",
                     json_object_object_get_ex(o, "blas", &v) ? json_object_get_string(v) : "");
            n++;
        }
        json_object_put(o);
    }
    pclose(p);
    return n;
}

static void fmt(char *buf, size_t len, const char *f, double v) {
    if (isnan(v)) snprintf(buf, len, "-");
    else snprintf(buf, len, f, v);
}

static int usage(const char *why) {
    fprintf(stderr, "vae_vs_torch: %s\nusage: vae_vs_torch [--seconds S>0] [--no-torch] [--no-jax] "
                    "[--blas NAME|auto] [--jax-python PATH] [--repeat 1..9] [--profile]\n", why);
    return 2;
}

int main(int argc, char **argv) {
    double seconds = 3.0, t0 = bench_now();
    bool torch = true, jax = true, profile = false;
    int repeat = 1;
    char blas[128] = "", jax_python[1024];
    snprintf(jax_python, sizeof jax_python, "%s/.cache/grove/venv/bin/python",
             getenv("HOME") ? getenv("HOME") : "");
    if (argc == 7 && !strcmp(argv[1], "--worker")) /* --worker batch threads seconds t0 profile */
        return worker(atoll(argv[2]), atoi(argv[3]), atof(argv[4]), atof(argv[5]), atoi(argv[6]));
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        char *end = NULL;
        if (!strcmp(a, "--no-torch")) torch = false;
        else if (!strcmp(a, "--no-jax")) jax = false;
        else if (!strcmp(a, "--profile")) profile = true;
        else if (!v) return usage("a flag is unknown or lacks its value");
        else if (!strcmp(a, "--seconds") && (seconds = strtod(v, &end)) > 0 && !*end) i++;
        else if (!strcmp(a, "--repeat") && (repeat = (int)strtol(v, &end, 10)) >= 1 &&
                 repeat <= MAX_REPEAT && !*end) i++;
        else if (!strcmp(a, "--blas") && strlen(v) < 64) snprintf(blas, sizeof blas, "--blas %s", argv[++i]);
        else if (!strcmp(a, "--jax-python") && strlen(v) < sizeof jax_python)
            snprintf(jax_python, sizeof jax_python, "%s", argv[++i]);
        else return usage("a flag is unknown or has a bad value");
    }
    char cpu[128], cmd[2048], self[1024];
    bench_cpu_name(cpu, sizeof cpu);
    ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
    if (n <= 0) return fprintf(stderr, "vae_vs_torch: cannot find its own binary\n"), 1;
    self[n] = '\0';

    row g[NB * NT] = {0}, tr[NB * NT] = {0}, jx[NB * NT] = {0};
    if (torch) {
        fprintf(stderr, "vae_vs_torch: PyTorch (/usr/bin/python3 bench/torch_vae_step.py, "
                        "python3-torch), best of its BLAS per thread count...\n");
        snprintf(cmd, sizeof cmd, "/usr/bin/python3 %s/torch_vae_step.py --json %s 2>/dev/null",
                 GROVE_BENCH_DIR, blas);
        if (!collect(cmd, tr)) fprintf(stderr, "vae_vs_torch: no PyTorch numbers (apt-get install python3-torch)\n");
    }
    if (jax && access(jax_python, X_OK) != 0) {
        fprintf(stderr, "vae_vs_torch: no JAX: %s is missing (bash tests/golden/make-venv.sh "
                        "builds the pinned jax/flax/optax venv there)\n", jax_python);
        jax = false;
    }
    if (jax) {
        fprintf(stderr, "vae_vs_torch: JAX with jit (%s bench/jax_vae_step.py)...\n", jax_python);
        snprintf(cmd, sizeof cmd, "'%s' %s/jax_vae_step.py 2>/dev/null", jax_python, GROVE_BENCH_DIR);
        if (!collect(cmd, jx)) fprintf(stderr, "vae_vs_torch: no JAX numbers\n");
    }
    fprintf(stderr, "vae_vs_torch: grove (%d run(s) of each configuration in its own process)...\n", repeat);
    row runs[MAX_REPEAT][NB * NT] = {{{0}}};
    for (int k = 0; k < repeat; k++)
        for (int b = 0; b < NB; b++)
            for (int t = 1; t <= NT; t++) {
                snprintf(cmd, sizeof cmd, "'%s' --worker %d %d %g %.9f %d", self, BATCHES[b], t,
                         seconds, bench_now(), profile && k == 0);
                if (!collect(cmd, runs[k])) fprintf(stderr, "vae_vs_torch: grove's batch %d, %d threads failed\n", BATCHES[b], t);
            }
    /* per configuration, the run with the median steps/s */
    for (int c = 0; c < NB * NT; c++) {
        row ok[MAX_REPEAT];
        int m = 0;
        for (int k = 0; k < repeat; k++)
            if (runs[k][c].ok) ok[m++] = runs[k][c];
        for (int i = 1; i < m; i++)
            for (int j = i; j > 0 && ok[j].rate < ok[j - 1].rate; j--) {
                row x = ok[j];
                ok[j] = ok[j - 1], ok[j - 1] = x;
            }
        if (m) g[c] = ok[m / 2];
    }
    fprintf(stderr, "vae_vs_torch: the floor (FMA peak, one AdamW pass)...\n");
    double peak[NT + 1], adamw[NT + 1];
    for (int t = 1; t <= NT; t++) peak[t] = fma_gflops(t, 0.3), adamw[t] = adamw_pass_us(t, 1.0);

    printf("## MNIST VAE train step (forward, value_and_grad, adamw), steps/s\n\n%s; %.0f s since start\n\n",
           cpu, bench_now() - t0);
    printf("| batch | threads | grove | torch | jax | vs torch | vs jax | grove %% of floor (floor) "
           "| RSS MiB grove / torch / jax | first step s grove / torch / jax | allocs/step | faults/step |\n");
    printf("|---|---|---|---|---|---|---|---|---|---|---|---|\n");
    for (int b = 0; b < NB; b++)
        for (int t = 1; t <= NT; t++) {
            int c = b * NT + t - 1;
            double floor_us = VAE_GEMM_FLOPS_PER_ROW * (double)BATCHES[b] / (peak[t] * 1e3) + adamw[t];
            double gr = g[c].ok ? g[c].rate : NAN, trr = tr[c].ok ? tr[c].rate : NAN,
                   jr = jx[c].ok ? jx[c].rate : NAN;
            char s[12][48];
            fmt(s[0], 48, "%.0f", gr), fmt(s[1], 48, "%.0f", trr), fmt(s[2], 48, "%.0f", jr);
            fmt(s[3], 48, "%.2fx", gr / trr), fmt(s[4], 48, "%.2fx", gr / jr);
            fmt(s[5], 48, "%.0f%%", 100 * gr * floor_us / 1e6);
            fmt(s[6], 48, "%.0f", 1e6 / floor_us);
            fmt(s[7], 48, "%.0f", g[c].ok ? g[c].rss : NAN), fmt(s[8], 48, "%.0f", tr[c].ok ? tr[c].rss : NAN),
                fmt(s[9], 48, "%.0f", jx[c].ok ? jx[c].rss : NAN);
            char f[3][24];
            fmt(f[0], 24, "%.3f", g[c].ok ? g[c].first : NAN), fmt(f[1], 24, "%.2f", tr[c].ok ? tr[c].first : NAN),
                fmt(f[2], 24, "%.2f", jx[c].ok ? jx[c].first : NAN);
            fmt(s[10], 48, "%.0f", g[c].ok ? g[c].allocs : NAN), fmt(s[11], 48, "%.2f", g[c].ok ? g[c].faults : NAN);
            printf("| %d | %d | %s | %s | %s | %s | %s | %s (%s) | %s / %s / %s | %s / %s / %s | %s | %s |\n",
                   BATCHES[b], t, s[0], s[1], s[2], s[3], s[4], s[5], s[6], s[7], s[8], s[9], f[0],
                   f[1], f[2], s[10], s[11]);
        }
    printf("\nfloor = GEMM FLOPs (%.2f M at batch 16) at the FMA peak measured now (%.1f GFLOP/s on 1 "
           "thread, %.1f on 2) + one AdamW pass over the %d params as grove runs it (%.0f us on 1 "
           "thread, %.0f on 2)\n", VAE_GEMM_FLOPS_PER_ROW * 16 / 1e6, peak[1], peak[2], VAE_PARAMS,
           adamw[1], adamw[2]);
    for (int c = 0; c < NB * NT; c++)
        if (tr[c].ok) {
            printf("torch: best BLAS per (batch, threads): ");
            for (int d = 0; d < NB * NT; d++)
                printf("%s%d/%d %s", d ? ", " : "", BATCHES[d / NT], d % NT + 1, tr[d].ok ? tr[d].blas : "-");
            printf("\n");
            break;
        }
    printf("torch.compile (PyTorch 2): not run: PyPI's torch wheels for Linux pull the CUDA "
           "libraries (several GB), and Debian 12 ships PyTorch 1.13 only\n");
    return 0;
}
