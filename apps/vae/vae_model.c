/* The class-conditioned VAE and its train step, written like the tutorial
 * (see vae_model.h). */
#include "vae_model.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- the model ---- */

void vae_cfg_init(vae_cfg *cfg, int64_t latent) {
    *cfg = (vae_cfg){.latent = latent, .encoder_dims = {256, 128, 64},
                     .decoder_dims = {128, 256, VAE_IMAGE_SIZE}};
    cfg->encoder = (gv_feedforward_cfg){cfg->encoder_dims, 3, gv_relu, false};
    cfg->decoder = (gv_feedforward_cfg){cfg->decoder_dims, 3, gv_relu, false};
}

/* encode(x): mean, logvar = split(pre_latent_proj(encoder(x)), 2, -1) */
static bool encode(gv_scope *s, const vae_cfg *cfg, gv_value x, gv_value *mean, gv_value *logvar) {
    gv_module encoder = {&gv_FeedForward, &cfg->encoder};
    gv_dense_cfg pre = gv_dense_defaults(2 * cfg->latent);
    gv_module pre_latent_proj = {&gv_Dense, &pre};
    gv_value h = gv_scope_call1(s, "encoder", &encoder, x);
    h = gv_scope_call1(s, "pre_latent_proj", &pre_latent_proj, h);
    gv_value parts[2];
    if (!gv_value_ok(h) || gv_split_equal(h, 2, -1, parts) != GV_OK) return false;
    *mean = parts[0], *logvar = parts[1];
    return true;
}

/* decode(z, c) = decoder(post_latent_proj(z) + class_proj(c)) */
static gv_value decode(gv_scope *s, const vae_cfg *cfg, gv_value z, gv_value c) {
    gv_dense_cfg hidden = gv_dense_defaults(cfg->encoder_dims[2]);
    gv_module post_latent_proj = {&gv_Dense, &hidden}, class_proj = {&gv_Dense, &hidden};
    gv_module decoder = {&gv_FeedForward, &cfg->decoder};
    gv_value h = gv_add(gv_scope_call1(s, "post_latent_proj", &post_latent_proj, z),
                        gv_scope_call1(s, "class_proj", &class_proj, c));
    return gv_scope_call1(s, "decoder", &decoder, h);
}

static gv_tree *vae_encode(gv_scope *s, const void *cfg, const gv_tree *args) {
    gv_value mean, logvar;
    if (!encode(s, cfg, gv_args_get(args, 0), &mean, &logvar)) return NULL;
    return gv_pack(gv_scope_graph(s), "(mean, logvar)", mean, logvar);
}

static gv_tree *vae_decode_method(gv_scope *s, const void *cfg, const gv_tree *args) {
    gv_value y = decode(s, cfg, gv_args_get(args, 0), gv_args_get(args, 1));
    return gv_value_ok(y) ? gv_graph_own(gv_scope_graph(s), gv_tree_new_value_leaf(y)) : NULL;
}

/* __call__(x, c, key): reparameterise z = eps * exp(0.5 logvar) + mean */
static gv_tree *vae_call(gv_scope *s, const void *cfgp, const gv_tree *args) {
    const vae_cfg *cfg = cfgp;
    gv_value mean, logvar;
    if (!encode(s, cfg, gv_args_get(args, 0), &mean, &logvar)) return NULL;
    /* noise for every example of the global batch, and this process's rows
     * of it (distributed.h): P processes draw what one process would */
    int64_t shape[2] = {gv_value_shape(logvar)[0] * gv_process_count(), gv_value_shape(logvar)[1]};
    gv_value eps = gv_process_rows(gv_random_normal(gv_scope_prng_impl(s), gv_args_get(args, 2),
                                                    2, shape));
    gv_value z = gv_add(gv_mul(eps, gv_exp(gv_mul_scalar(logvar, 0.5))), mean);
    gv_value recon = decode(s, cfg, z, gv_args_get(args, 1));
    return gv_pack(gv_scope_graph(s), "(recon, mean, logvar)", recon, mean, logvar);
}

static const gv_method VAE_METHODS[] = {{"encode", vae_encode}, {"decode", vae_decode_method}};
const gv_module_type VAE = {"VAE", vae_call, VAE_METHODS, 2};

/* Example inputs (x, one_hot(c), key) for tracing and init. */
static gv_tree *example_args(int64_t batch) {
    gv_tensor *ts[3] = {gv_tensor_zeros(GV_F32, GV_DIMS(batch, VAE_IMAGE_SIZE)),
                        gv_tensor_zeros(GV_F32, GV_DIMS(batch, VAE_NUM_CLASSES)),
                        gv_tensor_zeros(GV_U32, GV_DIMS(2))};
    gv_tree *args = ts[0] && ts[1] && ts[2] ? gv_args_tensors(ts, 3) : NULL;
    for (int i = 0; i < 3; i++) gv_tensor_free(ts[i]);
    return args;
}

/* (head, x, c, key) with a batch of zeros: the example inputs a step is
 * traced and compiled for (only shapes and dtypes matter) */
static gv_tree *with_batch(const char *pattern, const gv_tree *head, int64_t batch) {
    gv_tensor *x = gv_tensor_zeros(GV_F32, GV_DIMS(batch, VAE_IMAGE_SIZE));
    gv_tensor *c = gv_tensor_zeros(GV_I32, GV_DIMS(batch));
    gv_tensor *key = gv_tensor_zeros(GV_U32, GV_DIMS(2));
    gv_tree *t = head && x && c && key ? gv_pack(NULL, pattern, head, x, c, key) : NULL;
    gv_tensor_free(x), gv_tensor_free(c), gv_tensor_free(key);
    return t;
}

gv_tree *vae_init_variables(const vae_cfg *cfg, gv_key key, int64_t batch) {
    gv_module m = vae_module(cfg);
    gv_tree *args = example_args(batch);
    if (!args) return NULL;
    gv_tensor *k = gv_tree_get_tensor(args, "2");
    if (!k) return gv_tree_free(args), NULL;
    memcpy(gv_tensor_data(k), key.k, sizeof key.k);
    gv_tree *vars = gv_init(&m, key, args, NULL);
    gv_tree_free(args);
    return vars;
}

/* ---- the loss and the train step (the tutorial's create_train_step) ---- */

typedef struct loss_ctx { gv_module model; double kl_weight; gv_transform *tx; } loss_ctx;

/* loss_fn(params, x, c, key) -> (loss, (mse, kl)) */
static gv_tree *loss_fn(gv_graph *g, const gv_tree *in, void *ud) {
    const loss_ctx *s = ud;
    const gv_tree *params;
    gv_value x, c, key, recon, mean, logvar;
    gv_unpack(in, "(params, x, c, key)", &params, &x, &c, &key);
    gv_tree *args = gv_tuple(g, x, gv_one_hot(c, VAE_NUM_CLASSES, GV_F32), key);
    gv_tree *out = gv_apply(g, &s->model, gv_pack(g, "{params}", params), args, NULL, NULL);
    gv_unpack(out, "(recon, mean, logvar)", &recon, &mean, &logvar);
    int last = -1;
    gv_value mse = gv_mean(gv_sum(gv_l2_loss(recon, x), &last, 1, false), NULL, 0, false);
    gv_value inner = gv_sub(gv_sub(gv_add_scalar(logvar, 1.0), gv_square(mean)), gv_exp(logvar));
    gv_value kl = gv_mean(gv_mul_scalar(gv_sum(inner, &last, 1, false), -0.5), NULL, 0, false);
    return gv_pack(g, "(loss, (mse, kl))", gv_add(mse, gv_mul_scalar(kl, s->kl_weight)), mse, kl);
}

/* train_step(state, x, c, key) -> (state', {loss, mse, kl}) */
static gv_tree *train_step(gv_graph *g, const gv_tree *in, void *ud) {
    const loss_ctx *s = ud;
    const gv_tree *state, *grads;
    gv_value x, c, key, loss, mse, kl;
    gv_unpack(in, "(state, x, c, key)", &state, &x, &c, &key);
    gv_tree *args = gv_pack(g, "(params, x, c, key)", gv_train_state_params(state), x, c, key);
    gv_unpack(gv_value_and_grad_call(g, loss_fn, ud, args, 0, true), "((loss, (mse, kl)), grads)",
              &loss, &mse, &kl, &grads);
    gv_tree *next = gv_train_state_apply_gradients(g, s->tx, state, grads);
    /* the metrics of the whole batch: the mean over the processes' shards
     * (pmean is x itself on one process; apply_gradients averages the grads) */
    return gv_pack(g, "(state, {loss, mse, kl})", next, gv_pmean(loss), gv_pmean(mse), gv_pmean(kl));
}

struct vae_trainer {    /* args (state, x, c, key): the state is donated, so it stays current */
    loss_ctx ctx;
    gv_jit *step;
    gv_tree *args, *out, *x, *c; /* x, c: leaf handles each batch goes into */
    gv_tensor *key, *loss, *mse, *kl;
};

vae_trainer *vae_trainer_new(const vae_cfg *cfg, const vae_hparams *hp, const gv_tree *params,
                             int64_t batch) {
    vae_trainer *t = calloc(1, sizeof *t);
    if (!t) return NULL;
    t->ctx = (loss_ctx){vae_module(cfg), hp->kl_weight,
                        gv_adamw(.learning_rate = hp->learning_rate)};
    gv_tree *state = !t->ctx.tx ? NULL
                   : hp->zero1 ? gv_train_state_create_zero1(t->ctx.tx, params)
                               : gv_train_state_create(t->ctx.tx, params);
    t->args = with_batch("(state, x, c, key)", state, batch);
    gv_tree_free(state);
    t->step = gv_jit_new(train_step, &t->ctx, &(gv_plan_options){
        .threads = hp->threads, .donate_argnums = GV_ARGNUMS(0)});
    t->out = t->args && t->step ? gv_jit_outputs(t->step, t->args) : NULL; /* compiles */
    if (!t->out || gv_unpack(t->args, "(_, x, c, key)", &t->x, &t->c, &t->key) != GV_OK ||
        gv_unpack(t->out, "(_, {loss, mse, kl})", &t->loss, &t->mse, &t->kl) != GV_OK)
        return vae_trainer_free(t), NULL;
    return t;
}

gv_status vae_trainer_step(vae_trainer *t, gv_tensor *x, gv_tensor *y, gv_key key,
                           vae_metrics *out) {
    gv_tree_leaf_set_tensor(t->x, x), gv_tree_leaf_set_tensor(t->c, y);
    memcpy(gv_tensor_data(t->key), key.k, sizeof key.k);
    gv_tree *res = NULL;
    gv_status st = gv_jit_call(t->step, t->args, &res);
    *out = (vae_metrics){gv_tensor_item(t->loss), gv_tensor_item(t->mse), gv_tensor_item(t->kl)};
    return st || res == t->out ? st : gv_set_error(GV_ERR_SHAPE, "vae_trainer_step: batch shape");
}

/* ---- the rest of the trainer ---- */

gv_fn *vae_loss_fn(const vae_cfg *cfg, double kl_weight, const gv_tree *params, int64_t batch) {
    loss_ctx lc = {vae_module(cfg), kl_weight, NULL};
    gv_tree *in = with_batch("(params, x, c, key)", params, batch);
    gv_fn *fn = in ? gv_trace(loss_fn, &lc, in) : NULL;
    gv_tree_free(in);
    return fn;
}

void vae_trainer_free(vae_trainer *t) {
    if (!t) return;
    gv_jit_free(t->step);
    gv_transform_free(t->ctx.tx);
    gv_tree_free(t->args);
    free(t);
}

gv_tree *vae_trainer_state(vae_trainer *t) { return gv_tree_child(t->args, 0); }

gv_plan_stats vae_trainer_stats(const vae_trainer *t) {
    return gv_plan_get_stats(gv_jit_plan(t->step, t->args));
}

gv_plan *vae_trainer_plan(vae_trainer *t) {
    /* the jit owns its plans and hands them out read-only; profiling is the
     * one thing a caller may switch on in one */
    return (gv_plan *)gv_jit_plan(t->step, t->args);
}

static gv_status copy_leaf(const char *path, const gv_tree *leaf, void *ud) {
    const gv_tree *dst = ud;
    gv_tree *node = gv_tree_get(dst, path);
    if (!node) return gv_last_status();
    /* the caller checked the whole trees; this re-check names the leaf */
    gv_status st = gv_tree_check_same(node, leaf, path);
    if (st != GV_OK) return st;
    gv_tensor *d = gv_tree_leaf_tensor(node);
    const gv_tensor *s = gv_tree_leaf_tensor(leaf);
    if (!d || !s) return gv_last_status();
    memcpy(gv_tensor_data(d), gv_tensor_data_const(s), gv_tensor_nbytes(s));
    return GV_OK;
}

gv_status vae_trainer_load_state(vae_trainer *t, const gv_tree *state) {
    gv_status st = gv_tree_check_same(vae_trainer_state(t), state, "restored train state");
    if (st != GV_OK) return st;
    return gv_tree_foreach_leaf(state, copy_leaf, vae_trainer_state(t));
}

/* ---- evaluation and sampling ---- */

struct vae_evaluator {
    loss_ctx ctx;
    gv_jit *jit;
};

/* (params, x, y, key) -> (mse, kl): the training forward pass, no update */
static gv_tree *eval_fn(gv_graph *g, const gv_tree *in, void *ud) {
    gv_value mse, kl;
    gv_unpack(loss_fn(g, in, ud), "(_, (mse, kl))", &mse, &kl);
    return gv_pack(g, "(mse, kl)", mse, kl);
}

vae_evaluator *vae_evaluator_new(const vae_cfg *cfg, int threads) {
    vae_evaluator *e = calloc(1, sizeof *e);
    if (!e) return NULL;
    e->ctx = (loss_ctx){vae_module(cfg), 0.0, NULL};
    gv_plan_options po = {.threads = threads};
    e->jit = gv_jit_new(eval_fn, &e->ctx, &po);
    if (!e->jit) free(e), e = NULL;
    return e;
}

void vae_evaluator_free(vae_evaluator *e) {
    if (!e) return;
    gv_jit_free(e->jit);
    free(e);
}

gv_status vae_evaluate(vae_evaluator *e, const gv_tree *params, gv_tensor *x, gv_tensor *y,
                       gv_key key, vae_metrics *out) {
    gv_tensor *k = gv_tensor_from_data(GV_U32, GV_DIMS(2), key.k, sizeof key.k);
    gv_tree *in = gv_tree_new_tuple();
    gv_status st = !k || !in ? GV_ERR_NOMEM : GV_OK;
    if (st == GV_OK && (gv_tree_append(in, gv_tree_clone(params)) != GV_OK ||
                        gv_tree_append_tensor(in, x) != GV_OK ||
                        gv_tree_append_tensor(in, y) != GV_OK || gv_tree_append_tensor(in, k) != GV_OK))
        st = gv_last_status();
    gv_tensor_free(k);
    gv_tree *res = NULL;
    if (st == GV_OK) st = gv_jit_call(e->jit, in, &res);
    gv_tree_free(in);
    if (st != GV_OK) return st;
    out->mse = *(const float *)gv_tensor_data_const(gv_tree_get_tensor(res, "0"));
    out->kl = *(const float *)gv_tensor_data_const(gv_tree_get_tensor(res, "1"));
    out->loss = out->mse;
    return GV_OK;
}

static void set_err(char *err, size_t errlen, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void set_err(char *err, size_t errlen, const char *fmt, ...) {
    if (!err || !errlen) return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
}

/* one_hot(labels, 10) for labels int32 [n], every label checked first: the
 * one-hot rows are written by index */
static gv_tensor *one_hot_classes(const gv_tensor *labels, int64_t n, char *err, size_t errlen) {
    if (!labels || gv_tensor_dtype(labels) != GV_I32 || gv_tensor_rank(labels) != 1 ||
        gv_tensor_dim(labels, 0) != n) {
        set_err(err, errlen, "vae_decode: labels must be int32 [%" PRId64 "] (one per row of z)", n);
        return NULL;
    }
    const int32_t *lab = gv_tensor_data_const(labels);
    for (int64_t i = 0; i < n; i++)
        if (lab[i] < 0 || lab[i] >= VAE_NUM_CLASSES) {
            set_err(err, errlen, "vae_decode: label %" PRId32 " at index %" PRId64
                    " is not a class (0..%d)", lab[i], i, VAE_NUM_CLASSES - 1);
            return NULL;
        }
    gv_tensor *c = gv_tensor_zeros(GV_F32, GV_DIMS(n, VAE_NUM_CLASSES));
    if (!c) {
        set_err(err, errlen, "vae_decode: %s", gv_last_error());
        return NULL;
    }
    float *pc = gv_tensor_data(c);
    for (int64_t i = 0; i < n; i++) pc[i * VAE_NUM_CLASSES + lab[i]] = 1.0f;
    return c;
}

gv_tensor *vae_decode(gv_bound *model, const gv_tensor *z, const gv_tensor *labels, char *err,
                      size_t errlen) {
    if (!z || gv_tensor_rank(z) != 2) {
        set_err(err, errlen, "vae_decode: z must be [N, latent]");
        return NULL;
    }
    gv_tensor *c = one_hot_classes(labels, gv_tensor_dim(z, 0), err, errlen);
    if (!c) return NULL;
    gv_tensor *ts[2] = {(gv_tensor *)z, c};
    gv_tree *args = gv_args_tensors(ts, 2), *out = NULL;
    gv_tensor_free(c);
    gv_status st = args ? gv_bound_call(model, "decode", args, NULL, &out) : gv_last_status();
    gv_tree_free(args);
    gv_tensor *img = st == GV_OK ? gv_tensor_retain(gv_tree_leaf_tensor(out)) : NULL;
    gv_tree_free(out);
    if (!img) set_err(err, errlen, "vae_decode: %s", gv_last_error());
    return img;
}
