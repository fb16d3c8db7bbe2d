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
    gv_random_split2_eager(GV_PRNG_DEFAULT, r->key, &r->key, &sub);
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
    r.x = gv_random_uniform_eager(GV_PRNG_DEFAULT, gv_prng_key(1), GV_DIMS(batch, VAE_IMAGE_SIZE), 0, 1);
    r.y = gv_random_randint_eager(GV_PRNG_DEFAULT, gv_prng_key(2), GV_DIMS(batch), 0, VAE_NUM_CLASSES);
    r.key = gv_prng_key(3);
    if (!r.t || !r.x || !r.y) {
        fprintf(stderr, "vae_vs_torch: %s\n", gv_last_error());
        exit(1);
    }
    *st = vae_trainer_stats(r.t);
    if (getenv("GROVE_BENCH_PROFILE")) gv_plan_profile_enable(vae_trainer_plan(r.t), true);
    double rate = bench_steps_per_s(vae_step, &r, seconds);
    if (getenv("GROVE_BENCH_PROFILE")) {
        char *rep = gv_plan_profile_report(vae_trainer_plan(r.t));
        printf("batch %lld, %d threads:\n%s", (long long)batch, threads, rep ? rep : gv_last_error());
        free(rep);
    }
    vae_trainer_free(r.t);
    gv_tensor_free(r.x), gv_tensor_free(r.y);
    gv_tree_free(vars);
    return rate;
}

int main(int argc, char **argv) {
    return bench_main(argc, argv, "vae_vs_torch", "MNIST VAE train step (forward, value_and_grad, adamw)",
                      GROVE_BENCH_DIR "/torch_vae_step.py", grove_steps_per_s);
}
