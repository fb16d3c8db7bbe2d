/* See benchutil.h. */
#include "benchutil.h"

#include <json-c/json.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

double bench_now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static int by_value(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

double bench_median(double *v, int n) {
    qsort(v, (size_t)n, sizeof *v, by_value);
    return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

void bench_cpu_name(char *buf, size_t len) {
    snprintf(buf, len, "unknown CPU");
    FILE *f = fopen("/proc/cpuinfo", "r");
    char line[256];
    while (f && fgets(line, sizeof line, f))
        if (!strncmp(line, "model name", 10) && strchr(line, ':')) {
            snprintf(buf, len, "%s", strchr(line, ':') + 2);
            buf[strcspn(buf, "\n")] = '\0';
            break;
        }
    if (f) fclose(f);
}

double bench_steps_per_s(void (*step)(void *), void *ctx, double seconds) {
    for (int k = 0; k < 20; k++) step(ctx);
    double rates[5];
    for (int r = 0; r < 5; r++) {
        long n = 0;
        double t0 = bench_now(), t;
        do {
            for (int k = 0; k < 10; k++) step(ctx);
            n += 10;
            t = bench_now() - t0;
        } while (t < seconds / 5);
        rates[r] = (double)n / t;
    }
    for (int i = 0; i < 5; i++)
        for (int j = i + 1; j < 5; j++)
            if (rates[j] < rates[i]) {
                double x = rates[i];
                rates[i] = rates[j], rates[j] = x;
            }
    return rates[2];
}

int torch_run(const char *script, const char *extra_args, torch_row *rows, int cap) {
    char cmd[1024];
    snprintf(cmd, sizeof cmd, "/usr/bin/python3 %s --json %s 2>/dev/null", script,
             extra_args ? extra_args : "");
    FILE *p = popen(cmd, "r");
    if (!p) return 0;
    char line[4096];
    int n = 0;
    while (n < cap && fgets(line, sizeof line, p)) {
        json_object *o = json_tokener_parse(line), *v;
        if (!o) continue;
        if (json_object_object_get_ex(o, "steps_per_s", &v)) {
            torch_row *r = &rows[n++];
            r->rate = json_object_get_double(v);
            json_object_object_get_ex(o, "batch", &v), r->batch = json_object_get_int(v);
            json_object_object_get_ex(o, "threads", &v), r->threads = json_object_get_int(v);
            snprintf(r->blas, sizeof r->blas, "%s",
                     json_object_object_get_ex(o, "blas", &v) ? json_object_get_string(v) : "?");
        }
        json_object_put(o);
    }
    pclose(p);
    return n;
}

const torch_row *torch_best(const torch_row *rows, int n, int batch, int threads) {
    const torch_row *best = NULL;
    for (int k = 0; k < n; k++)
        if (rows[k].batch == batch && rows[k].threads == threads && (!best || rows[k].rate > best->rate))
            best = &rows[k];
    return best;
}

int bench_main(int argc, char **argv, const char *name, const char *title, const char *script,
               bench_grove_fn grove) {
    double seconds = 3.0;
    bool torch = true;
    char extra[128] = "";
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--seconds") && i + 1 < argc) seconds = atof(argv[++i]);
        else if (!strcmp(argv[i], "--no-torch")) torch = false;
        else if (!strcmp(argv[i], "--blas") && i + 1 < argc)
            snprintf(extra, sizeof extra, "--blas %s", argv[++i]);
        else seconds = -1;
        if (!(seconds > 0)) {
            fprintf(stderr, "usage: %s [--seconds S>0] [--no-torch] [--blas NAME|auto]\n", name);
            return 2;
        }
    }
    torch_row rows[64];
    int nrows = torch ? torch_run(script, extra, rows, 64) : 0;
    if (torch && nrows == 0)
        fprintf(stderr, "%s: no PyTorch numbers (is python3-torch installed?)\n", name);
    printf("%s, steps/s\n", title);
    printf("%6s %8s %12s %12s %8s  %s\n", "batch", "threads", "grove", "pytorch", "ratio",
           "pytorch BLAS");
    gv_plan_stats st = {0};
    int64_t batches[2] = {16, 128};
    for (int b = 0; b < 2; b++)
        for (int t = 1; t <= 2; t++) {
            double g = grove(batches[b], t, seconds, &st);
            const torch_row *best = torch_best(rows, nrows, (int)batches[b], t);
            if (best)
                printf("%6lld %8d %12.0f %12.0f %7.2fx  %s\n", (long long)batches[b], t, g,
                       best->rate, g / best->rate, best->blas);
            else
                printf("%6lld %8d %12.0f %12s %8s\n", (long long)batches[b], t, g, "-", "-");
            fflush(stdout);
        }
    printf("plan (batch 128): %d traced nodes -> %d, %d kernels (%d fused, %d GEMM), arena %zu B "
           "(all intermediates %zu B), %d outputs written in place\n",
           st.nodes_traced, st.nodes_optimized, st.kernels, st.fused_kernels, st.gemms,
           st.arena_bytes, st.intermediate_bytes, st.donated_outputs);
    return 0;
}
