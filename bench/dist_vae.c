/* The VAE's data-parallel train step: steps/s, samples/s and the share of
 * the step spent in the gradient all-reduce, for one process of an MPI job.
 *
 *   mpirun -np P dist_vae BATCH STEPS [THREADS [zero1]]
 *   mpirun -np P dist_vae allreduce FLOATS REPS    the psum alone
 *
 * BATCH is the global batch (each process steps on BATCH/P rows). Every
 * process runs 20 warm-up steps and then STEPS timed ones (the same number
 * everywhere: a collective needs all of them); process 0 prints one JSON
 * line. The communication share is the time inside MPI (transfer plus the
 * wait for the slower process) over the step time. bench/dist_scaling.sh
 * runs the table of docs/distributed.md. */
#include <grove/grove.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "benchutil.h"
#include "vae_model.h"

static gv_tree *psum_fn(gv_graph *g, const gv_tree *in, void *ud) {
    (void)ud;
    return gv_graph_own(g, gv_tree_new_value_leaf(gv_psum(gv_tree_leaf_value(in))));
}

/* The all-reduce of the VAE's gradient bytes alone, every process arriving
 * together (a barrier before each): what the transfer costs without any
 * wait for a slower process. */
static int allreduce_only(long floats, long reps) {
    gv_tensor *x = gv_tensor_zeros(GV_F32, GV_DIMS(floats));
    gv_tree *in = gv_tree_new_leaf(x), *out = NULL;
    gv_jit *j = gv_jit_new(psum_fn, NULL, NULL);
    if (!j || gv_jit_call(j, in, &out) != GV_OK) gv_distributed_abort(1);
    double total = 0;
    for (long r = 0; r < reps; r++) {
        gv_distributed_barrier();
        double t0 = bench_now();
        gv_jit_call(j, in, &out);
        total += bench_now() - t0;
    }
    if (gv_process_index() == 0)
        printf("{\"processes\": %d, \"bytes\": %ld, \"psum_us\": %.1f}\n", gv_process_count(),
               floats * 4, 1e6 * total / reps);
    gv_jit_free(j), gv_tree_free(in), gv_tensor_free(x);
    gv_distributed_shutdown();
    return 0;
}

int main(int argc, char **argv) {
    if (gv_distributed_init(&argc, &argv) != GV_OK) {
        fprintf(stderr, "dist_vae: %s\n", gv_last_error());
        return 1;
    }
    if (argc == 4 && !strcmp(argv[1], "allreduce")) return allreduce_only(atol(argv[2]), atol(argv[3]));
    long batch = argc > 2 ? atol(argv[1]) : 0, steps = argc > 2 ? atol(argv[2]) : 0;
    int threads = argc > 3 ? atoi(argv[3]) : 1, p = gv_process_count();
    bool zero1 = argc > 4 && !strcmp(argv[4], "zero1");
    if (argc < 3 || argc > 5 || batch < 1 || steps < 1 || threads < 1 || batch % p ||
        (argc == 5 && !zero1)) {
        fprintf(stderr, "usage: mpirun -np P dist_vae BATCH STEPS [THREADS [zero1]] (BATCH "
                "divisible by P)\n");
        gv_distributed_shutdown();
        return 2;
    }
    long local = batch / p;
    vae_cfg cfg;
    vae_cfg_init(&cfg, 32);
    gv_tree *vars = vae_init_variables(&cfg, gv_prng_key(0), local);
    vae_hparams hp = {0.5, 1e-4, threads, zero1};
    vae_trainer *t = vars ? vae_trainer_new(&cfg, &hp, gv_tree_get(vars, "params"), local) : NULL;
    /* synthetic [0, 1) images and labels, a different shard on each process */
    gv_key k = gv_random_fold_in_eager(gv_prng_key(1), (uint32_t)gv_process_index());
    gv_tensor *x = gv_random_uniform_eager(GV_PRNG_DEFAULT, k, GV_DIMS(local, VAE_IMAGE_SIZE), 0, 1);
    gv_tensor *y = gv_random_randint_eager(GV_PRNG_DEFAULT, k, GV_DIMS(local), 0, VAE_NUM_CLASSES);
    if (!t || !x || !y) {
        fprintf(stderr, "dist_vae: %s\n", gv_last_error());
        gv_distributed_abort(1);
    }
    gv_key key = gv_prng_key(3), sub;
    vae_metrics m;
    for (long s = 0; s < 20; s++) {
        gv_random_split2_eager(GV_PRNG_DEFAULT, key, &key, &sub);
        if (vae_trainer_step(t, x, y, sub, &m) != GV_OK) gv_distributed_abort(1);
    }
    gv_distributed_barrier();
    gv_distributed_stats s0 = gv_distributed_get_stats();
    double t0 = bench_now();
    for (long s = 0; s < steps; s++) {
        gv_random_split2_eager(GV_PRNG_DEFAULT, key, &key, &sub);
        if (vae_trainer_step(t, x, y, sub, &m) != GV_OK) gv_distributed_abort(1);
    }
    double secs = bench_now() - t0;
    gv_distributed_stats s1 = gv_distributed_get_stats();
    /* the communication share averaged over the processes */
    double all[2] = {secs, s1.seconds - s0.seconds};
    gv_distributed_sum(all, 2);
    if (gv_process_index() == 0)
        printf("{\"processes\": %d, \"threads\": %d, \"zero1\": %s, \"batch\": %ld, \"steps_per_s\": %.1f, "
               "\"samples_per_s\": %.0f, \"comm_share\": %.4f, \"allreduce_bytes_per_step\": %lld, "
               "\"allreduce_calls_per_step\": %.1f}\n",
               p, threads, zero1 ? "true" : "false", batch, steps / secs, steps * batch / secs, all[1] / all[0],
               (long long)((s1.bytes - s0.bytes) / steps), (double)(s1.calls - s0.calls) / steps);
    vae_trainer_free(t);
    gv_tensor_free(x), gv_tensor_free(y), gv_tree_free(vars);
    gv_distributed_shutdown();
    return 0;
}
