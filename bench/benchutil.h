/* Shared by the benchmarks: timing a step function, and running one of
 * bench/torch_*_step.py to collect PyTorch's steps/s per (batch, threads)
 * and the BLAS that gave them. */
#ifndef GROVE_BENCH_BENCHUTIL_H
#define GROVE_BENCH_BENCHUTIL_H

#include <stddef.h>
#include <stdint.h>

#include "grove/compile.h"

double bench_now(void);
/* The median of v[0..n) (n >= 1), sorting v ascending in place. */
double bench_median(double *v, int n);
/* The CPU's model name from /proc/cpuinfo ("unknown CPU" without it). */
void bench_cpu_name(char *buf, size_t len);
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


/* grove's steps/s for one (batch, threads); *st gets the plan's statistics. */
typedef double (*bench_grove_fn)(int64_t batch, int threads, double seconds, gv_plan_stats *st);

/* The whole benchmark program: parses [--seconds S] [--no-torch]
 * [--blas NAME|auto], runs the PyTorch script, then prints `title` and a
 * table of grove against PyTorch's best at batch 16 and 128 on 1 and 2
 * threads, and the batch-128 plan's statistics. Returns the exit status. */
int bench_main(int argc, char **argv, const char *name, const char *title, const char *script,
               bench_grove_fn grove);

#endif
