/* The MNIST VAE's training step (apps/vae: forward, value_and_grad with the
 * mse/kl aux, adamw, apply_updates, state donated) in grove and in PyTorch
 * (bench/torch_vae_step.py, the same model, loss and optimiser), in the same
 * run, at batch 16 and 128 on 1 and 2 threads. Prints steps/s of each and
 * the ratio.
 *
 *   vae_vs_torch [--seconds S] [--no-torch] [--blas NAME|auto]
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "benchutil.h"
#include "vae_model.h"

typedef struct vae_run {
    vae_trainer *t;
    gv_tensor *x, *y;
    gv_key key;
} vae_run;

static void vae_step(void *ctx) {
    vae_run *r = ctx;
    gv_key sub;
    vae_metrics m;
    gv_split2(GV_PRNG_DEFAULT, r->key, &r->key, &sub);
    if (vae_trainer_step(r->t, r->x, r->y, sub, &m) != GV_OK) {
        fprintf(stderr, "vae_vs_torch: %s\n", gv_last_error());
        exit(1);
    }
}

static double grove_steps_per_s(int64_t batch, int threads, double seconds, gv_plan_stats *st) {
    vae_cfg cfg;
    vae_cfg_init(&cfg, 32);
    gv_tree *vars = vae_init_variables(&cfg, gv_prng_key(0), batch);
    vae_hparams hp = {0.5, 1e-4, threads};
    vae_run r = {0};
    r.t = vars ? vae_trainer_new(&cfg, &hp, gv_tree_get(vars, "params"), batch) : NULL;
    /* synthetic [0, 1) images and random labels, as the PyTorch side uses */
    r.x = gv_random_uniform(GV_PRNG_DEFAULT, gv_prng_key(1), GV_DIMS(batch, VAE_IMAGE_SIZE), 0, 1);
    r.y = gv_random_randint(GV_PRNG_DEFAULT, gv_prng_key(2), GV_DIMS(batch), 0, VAE_NUM_CLASSES);
    r.key = gv_prng_key(3);
    if (!r.t || !r.x || !r.y) {
        fprintf(stderr, "vae_vs_torch: %s\n", gv_last_error());
        exit(1);
    }
    *st = vae_trainer_stats(r.t);
    double rate = bench_steps_per_s(vae_step, &r, seconds);
    vae_trainer_free(r.t);
    gv_tensor_free(r.x), gv_tensor_free(r.y);
    gv_tree_free(vars);
    return rate;
}

int main(int argc, char **argv) {
    double seconds = 3.0;
    bool torch = true;
    char extra[128] = "";
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--seconds") && i + 1 < argc) seconds = atof(argv[++i]);
        else if (!strcmp(argv[i], "--no-torch")) torch = false;
        else if (!strcmp(argv[i], "--blas") && i + 1 < argc)
            snprintf(extra, sizeof extra, "--blas %s", argv[++i]);
        else {
            fprintf(stderr, "usage: vae_vs_torch [--seconds S] [--no-torch] [--blas NAME|auto]\n");
            return 2;
        }
        if (!(seconds > 0)) {
            fprintf(stderr, "vae_vs_torch: --seconds must be positive\n");
            return 2;
        }
    }
    torch_row rows[64];
    int nrows = torch ? torch_run(GROVE_BENCH_DIR "/torch_vae_step.py", extra, rows, 64) : 0;
    if (torch && nrows == 0)
        fprintf(stderr, "vae_vs_torch: no PyTorch numbers (is python3-torch installed?)\n");
    printf("MNIST VAE train step (forward, value_and_grad, adamw), steps/s\n");
    printf("%6s %8s %12s %12s %8s  %s\n", "batch", "threads", "grove", "pytorch", "ratio",
           "pytorch BLAS");
    gv_plan_stats st = {0};
    int64_t batches[2] = {16, 128};
    for (int b = 0; b < 2; b++)
        for (int t = 1; t <= 2; t++) {
            double g = grove_steps_per_s(batches[b], t, seconds, &st);
            const torch_row *best = torch_best(rows, nrows, (int)batches[b], t);
            if (best)
                printf("%6lld %8d %12.0f %12.0f %7.2fx  %s\n", (long long)batches[b], t, g,
                       best->rate, g / best->rate, best->blas);
            else
                printf("%6lld %8d %12.0f %12s %8s\n", (long long)batches[b], t, g, "-", "-");
            fflush(stdout);
        }
    printf("plan (batch 128): %d traced nodes -> %d, %d kernels (%d fused, %d GEMM), arena %zu B "
           "(all intermediates %zu B), %d state outputs in place\n",
           st.nodes_traced, st.nodes_optimized, st.kernels, st.fused_kernels, st.gemms,
           st.arena_bytes, st.intermediate_bytes, st.donated_outputs);
    return 0;
}
