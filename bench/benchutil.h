/* Shared by the benchmarks: timing a step function, and running one of
 * bench/torch_*_step.py to collect PyTorch's steps/s per (batch, threads)
 * and the BLAS that gave them. */
#ifndef GROVE_BENCH_BENCHUTIL_H
#define GROVE_BENCH_BENCHUTIL_H

double bench_now(void);
/* Steps per second of step(ctx): 20 warm-up calls, then the median of 5
 * rounds of about seconds/5 each. */
double bench_steps_per_s(void (*step)(void *), void *ctx, double seconds);

typedef struct torch_row {
    int batch, threads;
    double rate;
    char blas[64];
} torch_row;

/* Runs "/usr/bin/python3 script --json" plus extra_args; up to cap rows.
 * Returns the number of rows (0 when PyTorch is missing or failed). */
int torch_run(const char *script, const char *extra_args, torch_row *rows, int cap);
/* The fastest row for (batch, threads), or NULL. */
const torch_row *torch_best(const torch_row *rows, int n, int batch, int threads);

#endif
