/* gemm_bench: which Debian BLAS should grove's compiled plans call?
 *
 * Times, for batch M in {16, 128}, the 25 GEMMs of one training step of the
 * MISSION.md section 5 VAE (forward X.W, backward dY.W^T and X^T.dY per Dense
 * layer; no dX for the two layers fed by data: the encoder's first layer and
 * class_proj), exactly as grove will issue them: cblas_sgemm, row-major, the
 * transposes folded into the BLAS flags. Every candidate library is loaded
 * with dlopen() in a forked child of its own, so libraries, their thread
 * pools and their environment variables never meet, and the bench needs no
 * BLAS at build time. See docs/blas.md for the results and the choice.
 *
 * Threading modes, per library:
 *   T=1          the library with one thread;
 *   T=2 lib      the library's own threads (env vars + its setter);
 *   T=2 split    the caller splits each GEMM's output in two halves across
 *                its own OpenMP team and calls the library at one thread in
 *                each: what grove can do with its own OpenMP threads.
 *
 * OpenBLAS also runs once per kernel set named by --openblas-core: "auto" is
 * its own CPU detection (OPENBLAS_CORETYPE unset), and by default the value
 * the environment forces, if any, is timed too.
 *
 * Before timing, every configuration is checked against a double-precision
 * naive product: the step's 25 GEMMs, and every transpose-flag pair on each
 * layer's shape with padded leading dimensions, alpha 0.75 and beta 0.5;
 * writes outside C's columns are caught too.
 *
 * Numbers are medians of many timed samples after a warm-up (the machine is
 * shared and noisy); --rounds N repeats every configuration N times,
 * interleaved, and reports the median across rounds. About 60 s per round.
 * Usage: gemm_bench --help.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <math.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#ifdef _OPENMP
#include <omp.h>
#endif

/* CBLAS enum values (cblas.h); spelled here so no BLAS header is needed. */
enum { CBLAS_ROW_MAJOR = 101, CBLAS_NO_TRANS = 111, CBLAS_TRANS = 112 };

typedef void (*sgemm_fn)(int order, int ta, int tb, int m, int n, int k, float alpha,
                         const float *a, int lda, const float *b, int ldb, float beta,
                         float *c, int ldc);
typedef void (*set_threads_fn)(int);

/* ---------------------------------------------------------------- candidates */

typedef enum { FAM_OPENBLAS, FAM_BLIS, FAM_NETLIB } family;
typedef enum { THR_SERIAL, THR_PTHREAD, THR_OPENMP } threading;

typedef struct {
    const char *name;    /* as selected with --lib */
    const char *path;
    const char *package; /* Debian runtime package */
    family fam;
    threading thr;
} candidate;

#define LIBDIR "/usr/lib/x86_64-linux-gnu/"
static const candidate CANDIDATES[] = {
    {"openblas-pthread", LIBDIR "openblas-pthread/libopenblas.so.0", "libopenblas0-pthread", FAM_OPENBLAS, THR_PTHREAD},
    {"openblas-openmp", LIBDIR "openblas-openmp/libopenblas.so.0", "libopenblas0-openmp", FAM_OPENBLAS, THR_OPENMP},
    {"openblas-serial", LIBDIR "openblas-serial/libopenblas.so.0", "libopenblas0-serial", FAM_OPENBLAS, THR_SERIAL},
    {"blis-pthread", LIBDIR "blis-pthread/libblis.so.4", "libblis4-pthread", FAM_BLIS, THR_PTHREAD},
    {"blis-openmp", LIBDIR "blis-openmp/libblis.so.4", "libblis4-openmp", FAM_BLIS, THR_OPENMP},
    {"blis-serial", LIBDIR "blis-serial/libblis.so.4", "libblis4-serial", FAM_BLIS, THR_SERIAL},
    {"netlib", LIBDIR "blas/libblas.so.3", "libblas3", FAM_NETLIB, THR_SERIAL},
};
#define NCAND ((int)(sizeof CANDIDATES / sizeof CANDIDATES[0]))

/* ---------------------------------------------------------------- workload */

typedef struct {
    const char *name;
    int in, out;
    bool needs_dx; /* false where the layer's input is data, not a value with a gradient */
} layer_def;

/* MISSION.md section 5: encoder FeedForward(256,128,64), pre_latent_proj Dense(2*32),
 * post_latent_proj Dense(64) on z (32), class_proj Dense(64) on one_hot(label, 10),
 * decoder FeedForward(128,256,784). */
static const layer_def VAE[] = {
    {"enc0", 784, 256, false}, {"enc1", 256, 128, true},       {"enc2", 128, 64, true},
    {"pre_latent", 64, 64, true}, {"post_latent", 32, 64, true}, {"class_proj", 10, 64, false},
    {"dec0", 64, 128, true},   {"dec1", 128, 256, true},       {"dec2", 256, 784, true},
};
#define NLAYER ((int)(sizeof VAE / sizeof VAE[0]))
#define NGEMM 25 /* 9 forward + 9 dW + 7 dX */

static const int BATCHES[] = {16, 128};
#define NBATCH 2

typedef struct {
    char label[40];
    int ta, tb, m, n, k;
    const float *a;
    int lda;
    const float *b;
    int ldb;
    float *c;
    int ldc;
} gemm;

typedef struct {
    int batch;
    gemm g[NGEMM];
    double flops; /* per step */
} step;

static float *falloc(size_t n) {
    size_t bytes = (n * sizeof(float) + 63) / 64 * 64;
    float *p = aligned_alloc(64, bytes ? bytes : 64);
    if (!p) {
        fprintf(stderr, "gemm_bench: out of memory\n");
        exit(1);
    }
    return p;
}

static uint64_t rng_state = 0x9E3779B97F4A7C15ull;
static float urand(void) { /* splitmix64 -> uniform [-1, 1) */
    uint64_t z = (rng_state += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    z ^= z >> 31;
    return (float)((double)(z >> 40) / (double)(1ull << 24) * 2.0 - 1.0);
}
static float *frand(size_t n) {
    float *p = falloc(n);
    for (size_t i = 0; i < n; i++) p[i] = urand();
    return p;
}

/* One step's GEMMs in the order a step issues them: forward through the
 * layers, then backward from the last layer (dW, then dX where needed).
 * Each layer owns its buffers, as in a plan's arena. */
static void step_build(step *s, int M) {
    s->batch = M;
    s->flops = 0;
    float *X[NLAYER], *W[NLAYER], *Y[NLAYER], *dY[NLAYER], *dX[NLAYER], *dW[NLAYER];
    for (int l = 0; l < NLAYER; l++) {
        int K = VAE[l].in, N = VAE[l].out;
        X[l] = frand((size_t)M * K), W[l] = frand((size_t)K * N), Y[l] = frand((size_t)M * N);
        dY[l] = frand((size_t)M * N), dX[l] = frand((size_t)M * K), dW[l] = frand((size_t)K * N);
    }
    int i = 0;
    for (int l = 0; l < NLAYER; l++) {
        int K = VAE[l].in, N = VAE[l].out;
        gemm *g = &s->g[i++];
        *g = (gemm){.ta = CBLAS_NO_TRANS, .tb = CBLAS_NO_TRANS, .m = M, .n = N, .k = K,
                    .a = X[l], .lda = K, .b = W[l], .ldb = N, .c = Y[l], .ldc = N};
        snprintf(g->label, sizeof g->label, "%s Y=X.W", VAE[l].name);
    }
    for (int l = NLAYER - 1; l >= 0; l--) {
        int K = VAE[l].in, N = VAE[l].out;
        gemm *g = &s->g[i++];
        *g = (gemm){.ta = CBLAS_TRANS, .tb = CBLAS_NO_TRANS, .m = K, .n = N, .k = M,
                    .a = X[l], .lda = K, .b = dY[l], .ldb = N, .c = dW[l], .ldc = N};
        snprintf(g->label, sizeof g->label, "%s dW=Xt.dY", VAE[l].name);
        if (VAE[l].needs_dx) {
            g = &s->g[i++];
            *g = (gemm){.ta = CBLAS_NO_TRANS, .tb = CBLAS_TRANS, .m = M, .n = K, .k = N,
                        .a = dY[l], .lda = N, .b = W[l], .ldb = N, .c = dX[l], .ldc = K};
            snprintf(g->label, sizeof g->label, "%s dX=dY.Wt", VAE[l].name);
        }
    }
    if (i != NGEMM) {
        fprintf(stderr, "gemm_bench: built %d GEMMs, expected %d\n", i, NGEMM);
        exit(1);
    }
    for (i = 0; i < NGEMM; i++) s->flops += 2.0 * s->g[i].m * s->g[i].n * s->g[i].k;
}

/* ---------------------------------------------------------------- calling */

static sgemm_fn sgemm;
static int split_threads = 1; /* >1: the caller splits each GEMM across its OpenMP team */

static void gemm_call(const gemm *g, float alpha, float beta) {
    sgemm(CBLAS_ROW_MAJOR, g->ta, g->tb, g->m, g->n, g->k, alpha, g->a, g->lda, g->b, g->ldb,
          beta, g->c, g->ldc);
}

/* C (m x n, row-major) is cut into split_threads blocks of rows, or of
 * columns when it is wider than tall; block edges are multiples of 16 floats
 * (one AVX-512 vector) so no thread's block starts mid-vector. */
static void gemm_run(const gemm *g) {
#ifdef _OPENMP
    if (split_threads > 1) {
        bool by_rows = g->m >= g->n;
        int extent = by_rows ? g->m : g->n;
#pragma omp parallel num_threads(split_threads)
        {
            int t = omp_get_thread_num(), nt = omp_get_num_threads();
            int chunk = (extent + nt - 1) / nt;
            chunk = (chunk + 15) / 16 * 16;
            int lo = t * chunk, hi = lo + chunk < extent ? lo + chunk : extent;
            if (lo < hi) {
                gemm part = *g;
                if (by_rows) {
                    part.m = hi - lo;
                    part.a = g->ta == CBLAS_NO_TRANS ? g->a + (size_t)lo * g->lda : g->a + lo;
                    part.c = g->c + (size_t)lo * g->ldc;
                } else {
                    part.n = hi - lo;
                    part.b = g->tb == CBLAS_NO_TRANS ? g->b + lo : g->b + (size_t)lo * g->ldb;
                    part.c = g->c + lo;
                }
                gemm_call(&part, 1.0f, 0.0f);
            }
        }
        return;
    }
#endif
    gemm_call(g, 1.0f, 0.0f);
}

/* ---------------------------------------------------------------- timing */

static double now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e9 + (double)ts.tv_nsec;
}

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static double median(double *v, int n) {
    qsort(v, (size_t)n, sizeof *v, cmp_double);
    return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

typedef struct {
    double sample_ns; /* each sample runs the work k times, k chosen to last about this long */
    double budget_ns; /* samples stop once this much time is spent (after min_samples) */
    int min_samples, max_samples;
} timing_plan;

static timing_plan PLAN_SHAPE = {100e3, 15e6, 5, 21};
static timing_plan PLAN_STEP = {0, 100e6, 7, 41}; /* one step per sample */
static double warmup_ns = 20e6;

#define MAX_SAMPLES 101

/* Median nanoseconds per call of work(ctx); *fastest gets the fastest sample. */
static double time_median(void (*work)(const void *), const void *ctx, const timing_plan *p,
                          double *fastest) {
    double t0 = now_ns(), best = INFINITY;
    int calls = 0;
    while (calls < 3 || (now_ns() - t0 < warmup_ns && calls < 1000)) {
        double a = now_ns();
        work(ctx);
        double d = now_ns() - a;
        if (d < best) best = d;
        calls++;
    }
    int k = best >= p->sample_ns ? 1 : (int)ceil(p->sample_ns / (best > 1 ? best : 1));
    double samples[MAX_SAMPLES];
    int n = 0;
    double start = now_ns();
    while (n < p->max_samples && (n < p->min_samples || now_ns() - start < p->budget_ns)) {
        double a = now_ns();
        for (int r = 0; r < k; r++) work(ctx);
        samples[n++] = (now_ns() - a) / k;
    }
    double m = median(samples, n);
    if (fastest) *fastest = samples[0]; /* sorted by median() */
    return m;
}

static void work_gemm(const void *ctx) { gemm_run(ctx); }
static void work_step(const void *ctx) {
    const step *s = ctx;
    for (int i = 0; i < NGEMM; i++) gemm_run(&s->g[i]);
}
static void work_tiny(const void *ctx) {
    static float a = 1, b = 2, c = 0;
    (void)ctx;
    sgemm(CBLAS_ROW_MAJOR, CBLAS_NO_TRANS, CBLAS_NO_TRANS, 1, 1, 1, 1.0f, &a, 1, &b, 1, 0.0f, &c, 1);
}

/* ---------------------------------------------------------------- numerics */

typedef struct {
    char label[48];
    int ta, tb, m, n, k, lda, ldb, ldc;
    float alpha, beta;
    float *a, *b, *c0, *c;
    double *ref;  /* alpha*op(A)op(B) + beta*C0, in double */
    double *bound; /* |alpha|*|op(A)||op(B)| + |beta||C0|: the scale an error is measured against */
} check_case;

static check_case *checks;
static int nchecks;

static void check_add(const char *label, int ta, int tb, int m, int n, int k, int pad, float alpha,
                      float beta) {
    check_case *c = &checks[nchecks++];
    snprintf(c->label, sizeof c->label, "%s", label);
    c->ta = ta, c->tb = tb, c->m = m, c->n = n, c->k = k, c->alpha = alpha, c->beta = beta;
    int arows = ta == CBLAS_NO_TRANS ? m : k, acols = ta == CBLAS_NO_TRANS ? k : m;
    int brows = tb == CBLAS_NO_TRANS ? k : n, bcols = tb == CBLAS_NO_TRANS ? n : k;
    c->lda = acols + pad, c->ldb = bcols + pad, c->ldc = n + pad;
    c->a = frand((size_t)arows * c->lda);
    c->b = frand((size_t)brows * c->ldb);
    c->c0 = frand((size_t)m * c->ldc);
    c->c = falloc((size_t)m * c->ldc);
    c->ref = malloc(sizeof(double) * (size_t)m * n);
    c->bound = malloc(sizeof(double) * (size_t)m * n);
    double *arow = malloc(sizeof(double) * (size_t)k), *bcol = malloc(sizeof(double) * (size_t)k);
    if (!c->ref || !c->bound || !arow || !bcol) exit(1);
    for (int i = 0; i < m; i++) {
        for (int p = 0; p < k; p++)
            arow[p] = ta == CBLAS_NO_TRANS ? c->a[(size_t)i * c->lda + p] : c->a[(size_t)p * c->lda + i];
        for (int j = 0; j < n; j++) {
            double s = 0, sa = 0;
            for (int p = 0; p < k; p++) {
                double bv = tb == CBLAS_NO_TRANS ? c->b[(size_t)p * c->ldb + j] : c->b[(size_t)j * c->ldb + p];
                bcol[p] = bv;
                s += arow[p] * bv;
                sa += fabs(arow[p] * bv);
            }
            double c0 = c->c0[(size_t)i * c->ldc + j];
            c->ref[(size_t)i * n + j] = alpha * s + beta * c0;
            c->bound[(size_t)i * n + j] = fabs(alpha) * sa + fabs(beta) * fabs(c0);
        }
    }
    free(arow), free(bcol);
}

static void checks_build(void) {
    checks = calloc((size_t)NBATCH * (NGEMM + 4 * NLAYER), sizeof *checks);
    nchecks = 0;
    static const char *tn[] = {"N", "T"};
    char label[48];
    for (int bi = 0; bi < NBATCH; bi++) {
        int M = BATCHES[bi];
        step s;
        step_build(&s, M); /* the step's own shapes and flags, alpha 1, beta 0, tight ld */
        for (int i = 0; i < NGEMM; i++) {
            const gemm *g = &s.g[i];
            snprintf(label, sizeof label, "M=%d %s", M, g->label);
            check_add(label, g->ta, g->tb, g->m, g->n, g->k, 0, 1.0f, 0.0f);
        }
        /* every flag pair on each layer's forward shape, with padded leading
         * dimensions, alpha != 1 and beta != 0 (gradient accumulation) */
        for (int l = 0; l < NLAYER; l++)
            for (int f = 0; f < 4; f++) {
                snprintf(label, sizeof label, "M=%d %s op %s%s ld+3 a=.75 b=.5", M, VAE[l].name,
                         tn[f >> 1], tn[f & 1]);
                check_add(label, f >> 1 ? CBLAS_TRANS : CBLAS_NO_TRANS,
                          f & 1 ? CBLAS_TRANS : CBLAS_NO_TRANS, M, VAE[l].out, VAE[l].in, 3, 0.75f, 0.5f);
            }
    }
    /* the step buffers built here are not freed: the process is short-lived */
}

typedef struct {
    double max_err;   /* max over elements and cases of |C - ref| / bound */
    double max_ratio; /* max over cases of that error / ((k + 2) u), u = 2^-24 */
    int fails;        /* cases over 2 (k + 2) u, or writing outside C */
    char worst[48];
} check_result;

static void checks_run(check_result *r) {
    const double u = ldexp(1.0, -24);
    r->max_err = 0, r->max_ratio = 0, r->fails = 0, r->worst[0] = 0;
    for (int ci = 0; ci < nchecks; ci++) {
        check_case *c = &checks[ci];
        memcpy(c->c, c->c0, sizeof(float) * (size_t)c->m * c->ldc);
        gemm g = {.ta = c->ta, .tb = c->tb, .m = c->m, .n = c->n, .k = c->k, .a = c->a,
                  .lda = c->lda, .b = c->b, .ldb = c->ldb, .c = c->c, .ldc = c->ldc};
        if (split_threads > 1 && c->alpha == 1.0f && c->beta == 0.0f)
            gemm_run(&g);
        else
            gemm_call(&g, c->alpha, c->beta);
        double worst = 0;
        bool outside = false;
        for (int i = 0; i < c->m; i++) {
            for (int j = 0; j < c->n; j++) {
                double got = c->c[(size_t)i * c->ldc + j], ref = c->ref[(size_t)i * c->n + j];
                double bnd = c->bound[(size_t)i * c->n + j];
                double e = fabs(got - ref) / (bnd > 1e-30 ? bnd : 1e-30);
                if (!(e <= worst)) worst = isnan(e) ? INFINITY : e;
            }
            for (int j = c->n; j < c->ldc; j++)
                if (memcmp(&c->c[(size_t)i * c->ldc + j], &c->c0[(size_t)i * c->ldc + j], sizeof(float)))
                    outside = true;
        }
        double ratio = worst / ((c->k + 2) * u);
        if (worst > r->max_err) r->max_err = worst;
        if (ratio > r->max_ratio) {
            r->max_ratio = ratio;
            snprintf(r->worst, sizeof r->worst, "%s", c->label);
        }
        if (ratio > 2.0 || outside) {
            r->fails++;
            fprintf(stderr, "  check FAILED: %s: err/bound %.3g (%.2f x (k+2)u)%s\n", c->label, worst,
                    ratio, outside ? ", wrote outside C" : "");
        }
    }
}

/* ---------------------------------------------------------------- one config */

typedef struct {
    int ok;
    char info[200];
    double tiny_ns;
    double gemm_ns[NBATCH][NGEMM];
    double step_ns[NBATCH];
    double step_min_ns[NBATCH]; /* the fastest step seen: the uncontended machine */
    char kernels[24];           /* the kernel set the library runs: OpenBLAS core, BLIS arch */
    check_result chk;
} result;

typedef struct {
    int cand, threads;
    bool split;
    const char *coretype; /* OpenBLAS only: OPENBLAS_CORETYPE to force, NULL = its own detection */
} config;

static step steps[NBATCH];
static bool do_check = true, check_only = false;
static int check_repeat = 1;

static void set_env_int(const char *name, int v) {
    char buf[16];
    snprintf(buf, sizeof buf, "%d", v);
    setenv(name, buf, 1);
}

/* Runs in the forked child: load, configure, check, time. */
static void run_config(const config *cf, result *r) {
    const candidate *c = &CANDIDATES[cf->cand];
    int lib_threads = cf->split ? 1 : cf->threads;
    memset(r, 0, sizeof *r);
    /* read when the library initialises, so set before dlopen */
    set_env_int("OPENBLAS_NUM_THREADS", lib_threads);
    set_env_int("BLIS_NUM_THREADS", lib_threads);
    set_env_int("OMP_NUM_THREADS", lib_threads);
    if (cf->coretype) setenv("OPENBLAS_CORETYPE", cf->coretype, 1);
    else unsetenv("OPENBLAS_CORETYPE");
    void *h = dlopen(c->path, RTLD_NOW | RTLD_LOCAL);
    if (!h) {
        snprintf(r->info, sizeof r->info, "dlopen: %s", dlerror());
        return;
    }
    sgemm = (sgemm_fn)dlsym(h, "cblas_sgemm");
    if (!sgemm) {
        snprintf(r->info, sizeof r->info, "no cblas_sgemm in %s", c->path);
        return;
    }
    set_threads_fn setter = NULL;
    if (c->fam == FAM_OPENBLAS) {
        setter = (set_threads_fn)dlsym(h, "openblas_set_num_threads");
        char *(*corename)(void) = (char *(*)(void))dlsym(h, "openblas_get_corename");
        char *(*get_config)(void) = (char *(*)(void))dlsym(h, "openblas_get_config");
        snprintf(r->info, sizeof r->info, "core %s; %s", corename ? corename() : "?",
                 get_config ? get_config() : "?");
        snprintf(r->kernels, sizeof r->kernels, "%s", corename ? corename() : "?");
    } else if (c->fam == FAM_BLIS) {
        setter = (set_threads_fn)dlsym(h, "bli_thread_set_num_threads");
        int (*arch_id)(void) = (int (*)(void))dlsym(h, "bli_arch_query_id");
        const char *(*arch_str)(int) = (const char *(*)(int))dlsym(h, "bli_arch_string");
        const char *(*version)(void) = (const char *(*)(void))dlsym(h, "bli_info_get_version_str");
        snprintf(r->info, sizeof r->info, "BLIS %s, kernels for %s", version ? version() : "?",
                 arch_id && arch_str ? arch_str(arch_id()) : "?");
        snprintf(r->kernels, sizeof r->kernels, "%s", arch_id && arch_str ? arch_str(arch_id()) : "?");
    } else {
        snprintf(r->info, sizeof r->info, "reference BLAS (LAPACK 3.11)");
        snprintf(r->kernels, sizeof r->kernels, "reference");
    }
    /* openblas_set_num_threads in the OpenMP build also sets the process's
     * OMP nthreads ICV; the split mode's parallel regions name their size. */
    if (setter) setter(lib_threads);
    split_threads = cf->split ? cf->threads : 1;

    for (int rep = 0; do_check && rep < check_repeat; rep++) {
        check_result cr;
        checks_run(&cr);
        if (rep == 0 || cr.max_ratio > r->chk.max_ratio) {
            int fails = r->chk.fails + cr.fails;
            r->chk = cr;
            r->chk.fails = fails;
        } else {
            r->chk.fails += cr.fails;
        }
    }
    if (check_only) {
        r->ok = 1;
        return;
    }
    r->tiny_ns = time_median(work_tiny, NULL, &PLAN_SHAPE, NULL);
    for (int bi = 0; bi < NBATCH; bi++) {
        for (int i = 0; i < NGEMM; i++)
            r->gemm_ns[bi][i] = time_median(work_gemm, &steps[bi].g[i], &PLAN_SHAPE, NULL);
        r->step_ns[bi] = time_median(work_step, &steps[bi], &PLAN_STEP, &r->step_min_ns[bi]);
    }
    r->ok = 1;
}

static int run_forked(const config *cf, result *r) {
    int fd[2];
    if (pipe(fd)) return -1;
    fflush(NULL);
    pid_t pid = fork();
    if (pid < 0) return -1;
    if (pid == 0) {
        close(fd[0]);
        result res;
        run_config(cf, &res);
        const char *p = (const char *)&res;
        size_t left = sizeof res;
        while (left) {
            ssize_t w = write(fd[1], p, left);
            if (w <= 0) _exit(2);
            p += w, left -= (size_t)w;
        }
        _exit(0);
    }
    close(fd[1]);
    char *p = (char *)r;
    size_t left = sizeof *r;
    while (left) {
        ssize_t got = read(fd[0], p, left);
        if (got <= 0) break;
        p += got, left -= (size_t)got;
    }
    close(fd[0]);
    int status;
    waitpid(pid, &status, 0);
    if (left) {
        memset(r, 0, sizeof *r);
        snprintf(r->info, sizeof r->info, "child died (status %d)", status);
    }
    return 0;
}

/* ---------------------------------------------------------------- main */

static void usage(FILE *f) {
    fprintf(f,
            "usage: gemm_bench [--lib NAME,...] [--threads 1,2] [--no-split] [--rounds N] [--openblas-core LIST]\n"
            "                  [--quick] [--no-check] [--check-repeat N] [--check-only] [--brief] [--json] [--list]\n"
            "  --lib       candidates to run (default: all installed; see --list)\n"
            "  --threads   thread counts (default 1,2)\n"
            "  --no-split  skip the caller-split 2-thread mode\n"
            "  --rounds N  run every configuration N times, interleaved; report medians (default 1; 3 for docs/blas.md)\n"
            "  --openblas-core auto,SkylakeX,...\n"
            "              OpenBLAS kernel sets to try (OPENBLAS_CORETYPE; auto = its own detection;\n"
            "              default: auto, plus $OPENBLAS_CORETYPE when that is set)\n"
            "  --quick     shorter timing budgets\n"
            "  --brief     summary only, no per-shape tables\n"
            "  --check-repeat N  run the numerical check N times per configuration (races show up)\n"
            "  --check-only      the numerical check, no timing\n"
            "  --json      also print one JSON line per configuration and batch\n");
}

static bool in_list(const char *list, const char *name) {
    size_t n = strlen(name);
    for (const char *p = list; p && *p;) {
        const char *e = strchr(p, ',');
        size_t len = e ? (size_t)(e - p) : strlen(p);
        if (len == n && !strncmp(p, name, n)) return true;
        p = e ? e + 1 : NULL;
    }
    return false;
}

/* "M x 256 x 784": the batch dimension (the one that differs between the two
 * steps' versions of this GEMM) written as M */
static void shape_str(char *buf, size_t n, const gemm *a, const gemm *b) {
    char d[3][12];
    int av[3] = {a->m, a->n, a->k}, bv[3] = {b->m, b->n, b->k};
    for (int i = 0; i < 3; i++)
        if (av[i] != bv[i]) snprintf(d[i], sizeof d[i], "M");
        else snprintf(d[i], sizeof d[i], "%d", av[i]);
    snprintf(buf, n, "%s x %s x %s", d[0], d[1], d[2]);
}

#define MAX_CFG 64

static void config_name(char *buf, size_t n, const config *cf) {
    snprintf(buf, n, "%s%s%s%s T=%d%s", CANDIDATES[cf->cand].name, cf->coretype ? "[" : "",
             cf->coretype ? cf->coretype : "", cf->coretype ? "]" : "", cf->threads, cf->split ? " split" : "");
}

static const char *thr_name(threading t) {
    return t == THR_SERIAL ? "serial" : t == THR_PTHREAD ? "pthread" : "openmp";
}

int main(int argc, char **argv) {
    const char *libs = NULL, *threads = "1,2", *core_arg = NULL;
    int rounds = 1;
    bool split = true, brief = false, json = false;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "--lib") && i + 1 < argc) libs = argv[++i];
        else if (!strcmp(a, "--threads") && i + 1 < argc) threads = argv[++i];
        else if (!strcmp(a, "--rounds") && i + 1 < argc) rounds = atoi(argv[++i]);
        else if (!strcmp(a, "--openblas-core") && i + 1 < argc) core_arg = argv[++i];
        else if (!strcmp(a, "--no-split")) split = false;
        else if (!strcmp(a, "--no-check")) do_check = false;
        else if (!strcmp(a, "--check-only")) check_only = true;
        else if (!strcmp(a, "--check-repeat") && i + 1 < argc) check_repeat = atoi(argv[++i]);
        else if (!strcmp(a, "--brief")) brief = true;
        else if (!strcmp(a, "--json")) json = true;
        else if (!strcmp(a, "--quick")) {
            PLAN_SHAPE = (timing_plan){50e3, 5e6, 3, 9};
            PLAN_STEP = (timing_plan){0, 40e6, 5, 21};
            warmup_ns = 5e6;
        } else if (!strcmp(a, "--list")) {
            for (int c = 0; c < NCAND; c++)
                printf("%-17s %-8s %s%s\n", CANDIDATES[c].name, thr_name(CANDIDATES[c].thr),
                       CANDIDATES[c].path, access(CANDIDATES[c].path, R_OK) ? "  (not installed)" : "");
            return 0;
        } else {
            usage(strcmp(a, "--help") && strcmp(a, "-h") ? stderr : stdout);
            return strcmp(a, "--help") && strcmp(a, "-h") ? 2 : 0;
        }
    }
    if (rounds < 1) rounds = 1;
#ifndef _OPENMP
    split = false;
#endif

    /* OpenBLAS's kernel set: its own CPU detection ("auto"), and also whatever
     * OPENBLAS_CORETYPE the environment forces, to show what that costs (this
     * machine's environment sets Haswell, the AVX2 kernels; see docs/blas.md). */
    const char *cores[8];
    int ncores = 0;
    const char *env_core = getenv("OPENBLAS_CORETYPE");
    char default_cores[64];
    snprintf(default_cores, sizeof default_cores, "auto%s%s", env_core && *env_core ? "," : "",
             env_core && *env_core ? env_core : "");
    char *core_list = strdup(core_arg ? core_arg : default_cores);
    for (char *tok = strtok(core_list, ","); tok && ncores < 8; tok = strtok(NULL, ","))
        cores[ncores++] = strcmp(tok, "auto") ? tok : NULL;

    config cfgs[MAX_CFG];
    int ncfg = 0;
    for (int c = 0; c < NCAND; c++) {
        if (libs ? !in_list(libs, CANDIDATES[c].name) : access(CANDIDATES[c].path, R_OK) != 0) continue;
        for (int t = 1; t <= 8; t++) {
            char tb[4];
            snprintf(tb, sizeof tb, "%d", t);
            if (!in_list(threads, tb)) continue;
            for (int ki = 0; ki < (CANDIDATES[c].fam == FAM_OPENBLAS ? ncores : 1); ki++) {
                const char *ct = CANDIDATES[c].fam == FAM_OPENBLAS ? cores[ki] : NULL;
                if (ncfg + 2 > MAX_CFG) break;
                if (t == 1) cfgs[ncfg++] = (config){c, 1, false, ct};
                else {
                    if (CANDIDATES[c].thr != THR_SERIAL) cfgs[ncfg++] = (config){c, t, false, ct};
                    /* the caller's OpenMP team around a one-thread library: not for the
                     * pthread builds (their pool is not meant to be entered concurrently)
                     * or netlib (too slow to matter) */
                    if (split && CANDIDATES[c].thr != THR_PTHREAD && CANDIDATES[c].fam != FAM_NETLIB)
                        cfgs[ncfg++] = (config){c, t, true, ct};
                }
            }
        }
    }
    if (!ncfg) {
        fprintf(stderr, "gemm_bench: no candidate selected or installed (see --list)\n");
        return 1;
    }

    for (int bi = 0; bi < NBATCH; bi++) step_build(&steps[bi], BATCHES[bi]);
    if (do_check) checks_build();

    printf("gemm_bench: %d GEMMs per VAE training step; %.2f MFLOP at M=16, %.2f MFLOP at M=128\n",
           NGEMM, steps[0].flops / 1e6, steps[1].flops / 1e6);
    printf("%d configurations x %d round(s); medians of timed samples after warm-up\n\n", ncfg, rounds);

    result *res = calloc((size_t)ncfg * rounds, sizeof *res);
    for (int r = 0; r < rounds; r++)
        for (int i = 0; i < ncfg; i++) {
            char nm[48];
            config_name(nm, sizeof nm, &cfgs[i]);
            fprintf(stderr, "[round %d/%d] %s\n", r + 1, rounds, nm);
            run_forked(&cfgs[i], &res[(size_t)r * ncfg + i]);
        }

    /* median across rounds, per configuration */
    result *med = calloc((size_t)ncfg, sizeof *med);
    double v[256];
    for (int i = 0; i < ncfg; i++) {
        result *m = &med[i];
        int okn = 0;
        for (int r = 0; r < rounds; r++) {
            result *x = &res[(size_t)r * ncfg + i];
            if (!x->ok) {
                *m = *x;
                continue;
            }
            if (!okn) *m = *x;
            okn++;
            if (x->chk.max_err > m->chk.max_err) m->chk = x->chk;
        }
        if (!okn) continue;
        m->ok = 1;
#define MEDIAN_OF(field)                                                                     \
    do {                                                                                     \
        int n_ = 0;                                                                          \
        for (int r = 0; r < rounds; r++)                                                     \
            if (res[(size_t)r * ncfg + i].ok) v[n_++] = res[(size_t)r * ncfg + i].field;     \
        m->field = median(v, n_);                                                            \
    } while (0)
        MEDIAN_OF(tiny_ns);
        for (int bi = 0; bi < NBATCH; bi++) {
            MEDIAN_OF(step_ns[bi]);
            for (int r = 0; r < rounds; r++)
                if (res[(size_t)r * ncfg + i].ok && res[(size_t)r * ncfg + i].step_min_ns[bi] < m->step_min_ns[bi])
                    m->step_min_ns[bi] = res[(size_t)r * ncfg + i].step_min_ns[bi];
            for (int g = 0; g < NGEMM; g++) MEDIAN_OF(gemm_ns[bi][g]);
        }
    }

    char names[MAX_CFG][48];
    for (int i = 0; i < ncfg; i++) config_name(names[i], sizeof names[i], &cfgs[i]);

    if (check_only) {
        printf("Numerical check only: max over %d cases (x %d repeats) of |C - ref| / (|alpha||A||B| + "
               "|beta C0|), and that over (k + 2) u, u = 2^-24\n\n", nchecks, check_repeat);
        printf("| %-32s | %-10s | %9s | %7s | %s\n", "library, threads", "kernels", "max err", "/(k+2)u",
               "failed cases");
        for (int i = 0; i < ncfg; i++)
            printf("| %-32s | %-10s | %9.2e | %7.2f | %d%s\n", names[i], med[i].kernels, med[i].chk.max_err,
                   med[i].chk.max_ratio, med[i].chk.fails, med[i].ok ? "" : " (did not run)");
        int bad = 0;
        for (int i = 0; i < ncfg; i++) bad += !med[i].ok || med[i].chk.fails;
        return bad ? 1 : 0;
    }
    if (!brief) {
        for (int i = 0; i < ncfg; i++) {
            result *m = &med[i];
            printf("== %s  (%s)\n", names[i], m->info);
            if (!m->ok) {
                printf("   FAILED\n\n");
                continue;
            }
            printf("   %-26s %-17s | %9s %7s | %9s %7s\n", "GEMM", "m x n x k", "M=16 us", "GFLOP/s",
                   "M=128 us", "GFLOP/s");
            for (int g = 0; g < NGEMM; g++) {
                const gemm *a = &steps[0].g[g], *b = &steps[1].g[g];
                char shape[48];
                shape_str(shape, sizeof shape, a, b);
                printf("   %-26s %-17s | %9.2f %7.1f | %9.2f %7.1f\n", a->label, shape, m->gemm_ns[0][g] / 1e3, 2.0 * a->m * a->n * a->k / m->gemm_ns[0][g],
                       m->gemm_ns[1][g] / 1e3, 2.0 * b->m * b->n * b->k / m->gemm_ns[1][g]);
            }
            double sum[NBATCH] = {0};
            for (int bi = 0; bi < NBATCH; bi++)
                for (int g = 0; g < NGEMM; g++) sum[bi] += m->gemm_ns[bi][g];
            printf("   %-44s | %9.1f %7.1f | %9.1f %7.1f\n", "sum of per-shape medians", sum[0] / 1e3,
                   steps[0].flops / sum[0], sum[1] / 1e3, steps[1].flops / sum[1]);
            printf("   %-44s | %9.1f %7.1f | %9.1f %7.1f\n", "whole step, 25 GEMMs in order", m->step_ns[0] / 1e3,
                   steps[0].flops / m->step_ns[0], m->step_ns[1] / 1e3, steps[1].flops / m->step_ns[1]);
            printf("\n");
        }
    }

    printf("Summary: the 25 GEMMs of one VAE training step: median us per step and its GFLOP/s, the\n"
           "fastest step seen (best, us), the 1x1x1 call's cost, and the numerical check: max over %d\n"
           "cases of |C - ref| / (|alpha||A||B| + |beta C0|), and that over (k + 2) u, u = 2^-24\n\n",
           nchecks);
    printf("| %-32s | %-9s | %8s | %7s | %8s | %8s | %7s | %8s | %6s | %8s | %7s |\n", "library, threads",
           "kernels", "M=16 us", "GFLOP/s", "best us", "M=128 us", "GFLOP/s", "best us", "call ns", "max err",
           "/(k+2)u");
    printf("|%s|%s|%s|%s|%s|%s|%s|%s|%s|%s|%s|\n", "----------------------------------", "-----------",
           "---------:", "--------:", "---------:", "---------:", "--------:", "---------:", "-------:",
           "---------:", "--------:");
    for (int i = 0; i < ncfg; i++) {
        result *m = &med[i];
        if (!m->ok) {
            printf("| %-32s | failed: %s\n", names[i], m->info);
            continue;
        }
        printf("| %-32s | %-9s | %8.1f | %7.1f | %8.1f | %8.1f | %7.1f | %8.1f | %6.1f | %8.2e | %7.2f |%s\n",
               names[i], m->kernels, m->step_ns[0] / 1e3, steps[0].flops / m->step_ns[0],
               m->step_min_ns[0] / 1e3, m->step_ns[1] / 1e3, steps[1].flops / m->step_ns[1],
               m->step_min_ns[1] / 1e3, m->tiny_ns, m->chk.max_err, m->chk.max_ratio,
               m->chk.fails ? " CHECK FAILED" : "");
    }
    if (json)
        for (int i = 0; i < ncfg; i++)
            for (int bi = 0; bi < NBATCH && med[i].ok; bi++)
                printf("{\"impl\": \"cblas_sgemm\", \"blas\": \"%s\", \"coretype\": \"%s\", \"kernels\": \"%s\", \"threads\": %d, \"mode\": \"%s\", "
                       "\"batch\": %d, \"step_us\": %.2f, \"best_us\": %.2f, \"gflops\": %.2f, \"call_ns\": %.1f, "
                       "\"max_err\": %.3e, \"check_fails\": %d}\n",
                       CANDIDATES[cfgs[i].cand].name, cfgs[i].coretype ? cfgs[i].coretype : "auto", med[i].kernels, cfgs[i].threads, cfgs[i].split ? "split" : "lib",
                       BATCHES[bi], med[i].step_ns[bi] / 1e3, med[i].step_min_ns[bi] / 1e3, steps[bi].flops / med[i].step_ns[bi],
                       med[i].tiny_ns, med[i].chk.max_err, med[i].chk.fails);
    int bad = 0;
    for (int i = 0; i < ncfg; i++) bad += !med[i].ok || med[i].chk.fails;
    return bad ? 1 : 0;
}
