/* A run directory: its config (saved in every checkpoint), metrics.jsonl,
 * the loss curve and the sample grid. */
#ifndef VAE_RUN_H
#define VAE_RUN_H

#include "cli.h"
#include "vae_model.h"

typedef struct vae_run_config {
    int64_t epochs, batch_size, latent, seed, threads, log_every, train_limit;
    int64_t data_examples, data_crc;   /* the training data: count and CRC-32 of its bytes */
    double kl_weight, lr;
    const char *dataset;
} vae_run_config;

void vae_run_config_from_flags(vae_run_config *c, const vae_flags *f);
/* Into / out of a checkpoint's meta tree ("config/latent", ...). get checks
 * every value against the flags' ranges and returns 0, or an exit code after
 * printing what is wrong with the checkpoint. */
gv_status vae_run_config_put(gv_tree *meta, const vae_run_config *c);
int vae_run_config_get(const gv_tree *meta, vae_run_config *c, const char *dir, int64_t step);
/* A resumed run keeps the saved model and data settings: a flag given with
 * another value is an error (exit 2). epochs, threads and log-every may
 * change; *saved takes the flags' values for those. */
int vae_run_config_check(vae_run_config *saved, const vae_flags *f, const char *dir);

/* Insert tensor x (consumed; NULL: the error of the call that made it) at
 * path: the meta item's leaves. */
gv_status vae_tree_put(gv_tree *t, const char *path, gv_tensor *x);

/* The train state's step counter. */
int64_t vae_run_state_step(const gv_tree *state);

/* Keep only the training lines of metrics.jsonl with "step" <= step (none
 * when step < 0; test-set lines are dropped), atomically. A missing file is fine. 0 or an exit code. */
int vae_metrics_truncate(const char *path, int64_t step);
/* <dir>/loss.svg from <dir>/metrics.jsonl. 0 or an exit code. */
int vae_plot_metrics(const char *dir);

/* Decode n samples per class (cls -1: all ten classes, one row each; else
 * only class cls) with z ~ N(0, 1) from key, and write the grid as a PNG. */
int vae_write_samples(const vae_cfg *model, const gv_tree *params, gv_key key, int64_t cls,
                      int64_t n, const char *path);

#endif
