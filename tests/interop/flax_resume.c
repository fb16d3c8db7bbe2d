/* JAX -> grove: restore a TrainState that real JAX/Flax/Optax trained and
 * saved with flax.serialization.to_bytes (tests/interop/jax_train_vae.py),
 * continue training it in grove on the same batches with the same keys,
 * and compare with what JAX did next.
 *
 *   flax_resume MNIST_DIR DIR BEFORE AFTER
 *
 * DIR holds jax_state.msgpack ({'state': TrainState, 'rng': key}),
 * jax_after.json (JAX's loss, mse and kl of the next AFTER steps) and
 * jax_final.msgpack (JAX's state after them). The step is the tutorial's,
 * compiled by grove (apps/vae/vae_model.c, the `vae` program's own). Prints
 * every step's losses side by side and the largest differences; exits 1
 * when a loss differs by more than LOSS_RTOL relative or a param by more
 * than PARAM_TOL (absolute, over max(1, |param|)). */
#include <grove/grove.h>
#include <json-c/json.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "vae_model.h"

/* Measured: see docs/interop.md (JAX -> grove). XLA fuses and reorders
 * float32 sums differently from grove, so the two drift apart by rounding. */
#define LOSS_RTOL 1e-5
#define PARAM_TOL 1e-5

#define B 16

static int fail(const char *what) {
    fprintf(stderr, "flax_resume: %s: %s\n", what, gv_last_error());
    return 1;
}

typedef struct worst {
    double diff;
    char path[256];
} worst;

typedef struct cmp_ctx {
    const gv_tree *other;
    worst w;
    int64_t n;
} cmp_ctx;

static gv_status cmp_leaf(const char *path, const gv_tree *leaf, void *ud) {
    cmp_ctx *c = ud;
    const gv_tensor *a = gv_tree_leaf_tensor(leaf), *b = gv_tree_get_tensor(c->other, path);
    if (!a || !b || !gv_tensor_same_shape(a, b) || gv_tensor_dtype(a) != gv_tensor_dtype(b)) {
        c->w.diff = INFINITY; /* missing from JAX's state, or not the same leaf */
        snprintf(c->w.path, sizeof c->w.path, "%s (missing or different)", path);
        return GV_OK;
    }
    if (gv_tensor_dtype(a) != GV_F32) return GV_OK; /* Adam's count: compared as the step */
    const float *x = gv_tensor_data_const(a), *y = gv_tensor_data_const(b);
    for (int64_t i = 0; i < gv_tensor_size(a); i++) {
        double d = fabs((double)x[i] - y[i]) / fmax(1.0, fabs((double)y[i]));
        if (!(d <= c->w.diff)) { /* NaN counts as the worst */
            c->w.diff = isnan(d) ? INFINITY : d;
            snprintf(c->w.path, sizeof c->w.path, "%s[%lld]", path, (long long)i);
        }
    }
    c->n += gv_tensor_size(a);
    return GV_OK;
}

int main(int argc, char **argv) {
    if (argc != 5) {
        fprintf(stderr, "usage: flax_resume MNIST_DIR DIR BEFORE AFTER\n");
        return 2;
    }
    const char *mnist = argv[1], *dir = argv[2];
    int before = atoi(argv[3]), after = atoi(argv[4]);
    char path[4096];

    vae_cfg cfg;
    vae_cfg_init(&cfg, 32);
    vae_hparams hp = {.kl_weight = 0.5, .learning_rate = 1e-4, .threads = 1};
    gv_tree *vars = vae_init_variables(&cfg, gv_prng_key(0), B);
    vae_trainer *t = vars ? vae_trainer_new(&cfg, &hp, gv_tree_get(vars, "params"), B) : NULL;
    if (!t) return fail("building the train step");

    /* from_bytes(target, ...) with grove's own TrainState as the target */
    gv_tensor *rng0 = gv_tensor_zeros(GV_U32, GV_DIMS(2));
    gv_tree *target = gv_tree_new_dict();
    gv_tree_insert(target, "state", gv_tree_clone(vae_trainer_state(t)));
    gv_tree_insert_tensor(target, "rng", rng0);
    snprintf(path, sizeof path, "%s/jax_state.msgpack", dir);
    gv_tree *saved = gv_flax_restore(path, target);
    if (!saved) return fail(path);
    if (vae_trainer_load_state(t, gv_tree_get(saved, "state")) != GV_OK) return fail("loading the state");
    gv_key key;
    memcpy(key.k, gv_tensor_data_const(gv_tree_get_tensor(saved, "rng")), sizeof key.k);
    int32_t step0 = *(const int32_t *)gv_tensor_data_const(gv_tree_get_tensor(saved, "state/step"));
    printf("restored JAX's TrainState at step %d from %s\n", step0, path);

    gv_dataset ds;
    if (gv_mnist_load(mnist, "train", &ds) != GV_OK) return fail(mnist);
    gv_dataset_take(&ds, (int64_t)B * (before + after), &ds);
    gv_loader *loader = gv_loader_new(&ds, &(gv_loader_options){.batch_size = B, .drop_last = true});
    if (!loader) return fail("loader");
    gv_batch b;
    for (int i = 0; i < before; i++) gv_loader_next(loader, &b); /* JAX's first batches */

    snprintf(path, sizeof path, "%s/jax_after.json", dir);
    json_object *ref = json_object_from_file(path);
    json_object *jl = NULL;
    if (!ref || !json_object_object_get_ex(ref, "loss", &jl) ||
        (int)json_object_array_length(jl) != after) {
        fprintf(stderr, "flax_resume: %s: no 'loss' list of %d steps\n", path, after);
        return 1;
    }
    double worst_loss = 0;
    printf("step | grove loss | JAX loss | relative difference\n");
    for (int i = 0; i < after; i++) {
        if (gv_loader_next(loader, &b) != GV_OK || !b.x) return fail("next batch");
        gv_key sub;
        gv_random_split2_eager(GV_PRNG_DEFAULT, key, &key, &sub); /* rng, key = split(rng) */
        vae_metrics m;
        if (vae_trainer_step(t, b.x, b.y, sub, &m) != GV_OK) return fail("step");
        double want = json_object_get_double(json_object_array_get_idx(jl, i));
        double rel = fabs(m.loss - want) / fabs(want);
        if (!(rel <= worst_loss)) worst_loss = isnan(rel) ? INFINITY : rel;
        printf("%4d | %10.5f | %8.5f | %.2e\n", before + i + 1, m.loss, want, rel);
    }

    snprintf(path, sizeof path, "%s/jax_final.msgpack", dir);
    gv_tree *final = gv_flax_restore(path, vae_trainer_state(t));
    if (!final) return fail(path);
    cmp_ctx c = {.other = gv_tree_get(final, "params")};
    gv_tree_foreach_leaf(gv_tree_get(vae_trainer_state(t), "params"), cmp_leaf, &c);
    double worst_param = c.w.diff;
    char worst_path[256];
    snprintf(worst_path, sizeof worst_path, "%s", c.w.path);
    int64_t nparams = c.n;
    c = (cmp_ctx){.other = gv_tree_get(final, "opt_state")};
    gv_tree_foreach_leaf(gv_tree_get(vae_trainer_state(t), "opt_state"), cmp_leaf, &c);
    int32_t step1 = *(const int32_t *)gv_tensor_data_const(gv_tree_get_tensor(vae_trainer_state(t), "step"));
    int32_t jstep = *(const int32_t *)gv_tensor_data_const(gv_tree_get_tensor(final, "step"));
    printf("after %d steps in grove: step %d (JAX %d); loss within %.2e of JAX's (bound %.0e); "
           "%lld params within %.2e (bound %.0e, worst %s); %lld Adam moments within %.2e "
           "(worst %s)\n", after, step1, jstep, worst_loss, LOSS_RTOL, (long long)nparams,
           worst_param, PARAM_TOL, worst_path, (long long)c.n, c.w.diff, c.w.path);
    int rc = worst_loss <= LOSS_RTOL && worst_param <= PARAM_TOL && c.w.diff < INFINITY &&
             step1 == jstep && nparams > 0 ? 0 : 1;
    json_object_put(ref);
    gv_loader_free(loader);
    gv_dataset_free(&ds);
    gv_tree_free(final), gv_tree_free(saved), gv_tree_free(target), gv_tree_free(vars);
    gv_tensor_free(rng0);
    vae_trainer_free(t);
    return rc;
}
