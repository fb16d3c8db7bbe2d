/* The tutorial's class-conditioned VAE on MNIST (MISSION.md section 5), as
 * grove modules, and its compiled train step.
 *
 *   class VAE(nn.Module):                       // setup-style children
 *     encoder = FeedForward((256, 128, 64))
 *     pre_latent_proj = Dense(2 * latent)      // split into mean, logvar
 *     post_latent_proj = Dense(64)
 *     class_proj = Dense(64)
 *     decoder = FeedForward((128, 256, 784))
 *     encode(x) -> (mean, logvar)
 *     decode(z, c) -> decoder(post_latent_proj(z) + class_proj(c))
 *     __call__(x, c, key) -> (decode(eps * exp(0.5 logvar) + mean, c), mean, logvar)
 *
 * Used by the `vae` program, its tests and bench/vae_vs_torch. */
#ifndef VAE_MODEL_H
#define VAE_MODEL_H

#include <grove/grove.h>

#define VAE_NUM_CLASSES 10
#define VAE_IMAGE_SIZE 784

typedef struct vae_cfg {
    int64_t latent;
    int64_t encoder_dims[3];
    int64_t decoder_dims[3];
    gv_feedforward_cfg encoder, decoder;
} vae_cfg;

extern const gv_module_type VAE;

/* The tutorial's model with latent dimension `latent`. The struct is
 * self-referential: don't copy it after this call. */
void vae_cfg_init(vae_cfg *cfg, int64_t latent);
static inline gv_module vae_module(const vae_cfg *cfg) { return (gv_module){&VAE, cfg}; }

/* model.init(key, x, one_hot(c), key) with zero example inputs: {"params": ...}. */
gv_tree *vae_init_variables(const vae_cfg *cfg, gv_key key, int64_t batch);

typedef struct vae_hparams {
    double kl_weight;      /* 0.5 */
    double learning_rate;  /* adamw(1e-4) */
    int threads;           /* plan threads */
    bool zero1;            /* shard the AdamW state across processes (distributed.h) */
} vae_hparams;

/* The tutorial's loss_fn(params, x, c, key) -> (loss, (mse, kl)), traced for
 * a batch of `batch`: inputs (params, x f32 [B, 784], y i32 [B], key u32[2]).
 *   mse = l2_loss(recon, x).sum(-1).mean()
 *   kl  = mean(-0.5 * sum(1 + logvar - mean^2 - exp(logvar), -1))
 *   loss = mse + kl_weight * kl
 * New gv_fn, NULL with the error set. */
gv_fn *vae_loss_fn(const vae_cfg *cfg, double kl_weight, const gv_tree *params, int64_t batch);

typedef struct vae_metrics {
    float loss, mse, kl;
} vae_metrics;

/* The tutorial's create_train_step: a TrainState {step, params, opt_state}
 * and one compiled step
 *   (state, x, c, key) -> (state', {loss, mse, kl})
 * doing the forward pass, value_and_grad (aux: mse, kl), the adamw update
 * and apply_updates, with the state donated (updated in place). */
typedef struct vae_trainer vae_trainer;

/* params: a {"params"}-less params tree (the "params" collection), shared. */
vae_trainer *vae_trainer_new(const vae_cfg *cfg, const vae_hparams *hp, const gv_tree *params,
                             int64_t batch);
void vae_trainer_free(vae_trainer *t);
/* One step on x f32 [B, 784], y i32 [B] with the step's key. No allocation. */
gv_status vae_trainer_step(vae_trainer *t, gv_tensor *x, gv_tensor *y, gv_key key,
                           vae_metrics *out);
/* The train state tree {step, params, opt_state} (borrowed; updated in place
 * by every step). */
gv_tree *vae_trainer_state(vae_trainer *t);
/* Replace the state's values with a restored state of the same structure. */
gv_status vae_trainer_load_state(vae_trainer *t, const gv_tree *state);
gv_plan_stats vae_trainer_stats(const vae_trainer *t);
/* The compiled step's plan (per-kernel profiling: gv_plan_profile_enable). */
gv_plan *vae_trainer_plan(vae_trainer *t);

/* mse and kl of the model on one batch with z drawn from `key` (the
 * training forward pass, no update): the test-set reconstruction loss. The
 * evaluator keeps a jit (one compile per batch shape). */
typedef struct vae_evaluator vae_evaluator;
vae_evaluator *vae_evaluator_new(const vae_cfg *cfg, int threads);
void vae_evaluator_free(vae_evaluator *e);
gv_status vae_evaluate(vae_evaluator *e, const gv_tree *params, gv_tensor *x, gv_tensor *y,
                       gv_key key, vae_metrics *out);

/* Decode z [N, latent] for classes labels i32 [N] with a bound model's
 * compiled decode method: images f32 [N, 784] (new tensor). NULL on failure
 * with a message in err (errlen bytes; err may be NULL): a label outside
 * 0..9 (naming the label and its index), labels of another dtype or shape,
 * or grove's error from the decode call. */
gv_tensor *vae_decode(gv_bound *model, const gv_tensor *z, const gv_tensor *labels, char *err,
                      size_t errlen);

#endif
