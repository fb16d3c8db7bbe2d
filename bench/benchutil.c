/* See benchutil.h. */
#include "benchutil.h"

#include <json-c/json.h>
#include <stdio.h>
#include <time.h>

double bench_now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
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
