/* vae sample: draw digits with the compiled decode method.
 *
 *   model = VAE(...).bind({'params': params})
 *   z = jax.random.normal(key, (n, latent))
 *   images = model.decode(z, one_hot(c, 10))        # apply(..., method=decode)
 *
 * 10 per class, one row per digit 0..9, as a PNG grid; or, for an --out
 * ending in .safetensors or .msgpack, the float images themselves with the
 * z and labels that made them ({images f32 [N, 784], z f32 [N, latent],
 * labels i32 [N]}, a grove checkpoint or Flax's msgpack), for comparing
 * with model.apply(params, z, one_hot(labels), method=model.decode) in
 * Flax (docs/interop.md). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "cli.h"
#include "fileio.h"
#include "run.h"
#include "vae_model.h"

static bool ends_with(const char *s, const char *suffix) {
    size_t n = strlen(s), k = strlen(suffix);
    return n >= k && strcmp(s + n - k, suffix) == 0;
}

/* {images, z, labels} as a checkpoint (.safetensors) or Flax msgpack. */
static gv_status write_raw(const char *path, gv_tensor *images, gv_tensor *z, gv_tensor *labels) {
    gv_tree *t = gv_tree_new_dict();
    gv_status st = t ? GV_OK : GV_ERR_NOMEM;
    if (!st) st = gv_tree_insert_tensor(t, "images", images);
    if (!st) st = gv_tree_insert_tensor(t, "z", z);
    if (!st) st = gv_tree_insert_tensor(t, "labels", labels);
    if (!st) st = ends_with(path, ".msgpack") ? gv_flax_save(path, t, true)
                                              : gv_checkpointer_save(path, t, true);
    gv_tree_free(t);
    return st;
}

int vae_write_samples(const vae_cfg *model, const gv_tree *params, gv_key key, int64_t cls,
                      int64_t n, const char *path) {
    int64_t rows = cls < 0 ? VAE_NUM_CLASSES : 1, total = rows * n;
    gv_tensor *z = gv_random_normal_eager(GV_PRNG_DEFAULT, key, GV_DIMS(total, model->latent));
    gv_tensor *labels = gv_tensor_zeros(GV_I32, GV_DIMS(total));
    gv_tree *vars = gv_tree_new_dict();
    gv_module m = vae_module(model);
    gv_module_options o = {0};
    gv_bound *bound = NULL;
    gv_tensor *images = NULL, *grid = NULL;
    char err[512] = "";
    if (z && labels && vars && gv_tree_insert(vars, "params", gv_tree_clone(params)) == GV_OK) {
        int32_t *lab = gv_tensor_data(labels);
        for (int64_t i = 0; i < total; i++) lab[i] = (int32_t)(cls < 0 ? i / n : cls);
        bound = gv_bind(&m, vars, &o);
    }
    if (bound) images = vae_decode(bound, z, labels, err, sizeof err);
    gv_status st = GV_ERR_ARG;
    if (images && (ends_with(path, ".safetensors") || ends_with(path, ".msgpack"))) {
        st = write_raw(path, images, z, labels);
    } else if (images) {
        /* one row per class; a single class is laid out as a square-ish grid */
        int64_t per_row = cls < 0 ? n : (int64_t)ceil(sqrt((double)n));
        grid = gv_image_grid(images, per_row, 28, 28, 2);
        st = grid ? gv_png_write(path, grid, true) : GV_ERR_ARG;
    }
    if (st != GV_OK) /* vae_decode's message, or that of the grove call that failed */
        fprintf(stderr, "vae: writing samples to %s: %s\n", path, bound && !images ? err : gv_last_error());
    gv_tensor_free(grid), gv_tensor_free(images), gv_tensor_free(z), gv_tensor_free(labels);
    gv_bound_free(bound);
    gv_tree_free(vars);
    return st == GV_OK ? 0 : VAE_EXIT_ERROR;
}

static int out_of_memory(const char *what) {
    fprintf(stderr, "vae: %s: out of memory\n", what);
    return VAE_EXIT_ERROR;
}

int vae_cmd_sample(const vae_flags *f) {
    char *dir = vae_strfmt("%s/checkpoints", f->run_dir);
    if (!dir) return out_of_memory("--run-dir");
    struct stat st;
    if (stat(dir, &st) != 0) {
        free(dir);
        fprintf(stderr, "vae: --run-dir %s: no checkpoint yet (train first: vae train --run-dir %s)\n",
                f->run_dir, f->run_dir);
        return VAE_EXIT_ERROR;
    }
    gv_checkpoint_manager *ckpt = gv_checkpoint_manager_new(dir, &(gv_checkpoint_options){0});
    free(dir);
    if (!ckpt) {
        fprintf(stderr, "vae: --run-dir %s: %s\n", f->run_dir, gv_last_error());
        return VAE_EXIT_ERROR;
    }
    int64_t step = f->step >= 0 ? f->step : gv_checkpoint_manager_latest_step(ckpt);
    if (step < 0) {
        fprintf(stderr, "vae: --run-dir %s: no checkpoint yet (train first: vae train --run-dir %s)\n",
                f->run_dir, f->run_dir);
        gv_checkpoint_manager_close(ckpt);
        return VAE_EXIT_ERROR;
    }
    gv_tree *meta = gv_checkpoint_manager_restore(ckpt, step, "meta", NULL);
    gv_tree *state = meta ? gv_checkpoint_manager_restore(ckpt, step, "state", NULL) : NULL;
    gv_checkpoint_manager_close(ckpt);
    vae_run_config cfg;
    int rc = !state ? (fprintf(stderr, "vae: --run-dir %s: checkpoint %lld: %s\n", f->run_dir,
                               (long long)step, gv_last_error()), VAE_EXIT_ERROR)
                    : vae_run_config_get(meta, &cfg, f->run_dir, step);
    const gv_tree *params = state ? gv_tree_get(state, "params") : NULL;
    if (!rc && !params) {
        fprintf(stderr, "vae: --run-dir %s: checkpoint %lld has no params\n", f->run_dir, (long long)step);
        rc = VAE_EXIT_ERROR;
    }
    if (!rc) {
        vae_cfg model;
        vae_cfg_init(&model, cfg.latent);
        char *out = f->out ? vae_strfmt("%s", f->out)
                  : f->cls < 0 ? vae_strfmt("%s/samples.png", f->run_dir)
                               : vae_strfmt("%s/samples-class%lld.png", f->run_dir, (long long)f->cls);
        /* the noise key of train.c: split(PRNGKey(seed), 4)[3], the run's seed by default */
        gv_key keys[4];
        gv_random_split_eager(GV_PRNG_DEFAULT, gv_prng_key(f->given[F_SEED] ? f->seed : cfg.seed), 4, keys);
        /* a killed earlier sampling's temporary, beside the file it was writing */
        char *odir = out ? vae_strfmt("%s", out) : NULL, *slash = odir ? strrchr(odir, '/') : NULL;
        if (slash) *slash = 0;
        if (odir && gv_remove_stale_temporaries(slash ? (*odir ? odir : "/") : ".", NULL) != GV_OK)
            fprintf(stderr, "vae: warning: %s\n", gv_last_error());
        free(odir);
        rc = out ? vae_write_samples(&model, params, keys[3], f->cls, f->n, out) : out_of_memory("--out");
        if (!rc)
            printf("wrote %s: %lld samples of %s from checkpoint step %lld\n", out,
                   (long long)(f->cls < 0 ? 10 * f->n : f->n),
                   f->cls < 0 ? "each digit, one row per digit" : "one digit", (long long)step);
        free(out);
    }
    gv_tree_free(state);
    gv_tree_free(meta);
    return rc;
}
