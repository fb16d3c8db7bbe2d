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

/* A tuple of the n subtrees kids, each consumed. A NULL kid is a
 * constructor that failed: the tuple is not made, the other kids are freed
 * and that constructor's error is kept. NULL with the error set. */
static gv_tree *tuple_take(gv_tree *const *kids, int n) {
    bool ok = true;
    for (int i = 0; i < n; i++) ok = ok && kids[i];
    gv_tree *t = ok ? gv_tree_new_tuple() : NULL;
    for (int i = 0; i < n; i++) {
        if (t && gv_tree_append(t, kids[i]) == GV_OK) continue;
        if (!t) gv_tree_free(kids[i]); /* a failed append has freed its kid */
        gv_tree_free(t), t = NULL;
    }
    return t;
}

/* A tree builder failed while tracing: its error becomes the trace's (the
 * first one sticks, so a builder that failed on an invalid value keeps the
 * op error that made the value invalid). Returns NULL. */
static gv_tree *trace_fail(gv_graph *g, const char *what) {
    gv_status st = gv_last_status();
    gv_graph_fail(g, st != GV_OK ? st : GV_ERR_NOMEM, "%s: %s", what, gv_last_error());
    return NULL;
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
    gv_tree *out = tuple_take((gv_tree *[]){gv_tree_new_value_leaf(mean), gv_tree_new_value_leaf(logvar)}, 2);
    return out ? out : trace_fail(gv_scope_graph(s), "VAE.encode: the outputs (mean, logvar)");
}

static gv_tree *vae_decode_method(gv_scope *s, const void *cfg, const gv_tree *args) {
    gv_value y = decode(s, cfg, gv_args_get(args, 0), gv_args_get(args, 1));
    if (!gv_value_ok(y)) return NULL;
    gv_tree *out = gv_tree_new_value_leaf(y);
    return out ? out : trace_fail(gv_scope_graph(s), "VAE.decode: the output");
}

/* __call__(x, c, key): reparameterise z = eps * exp(0.5 logvar) + mean */
static gv_tree *vae_call(gv_scope *s, const void *cfgp, const gv_tree *args) {
    const vae_cfg *cfg = cfgp;
    gv_value mean, logvar;
    if (!encode(s, cfg, gv_args_get(args, 0), &mean, &logvar)) return NULL;
    gv_value eps = gv_random_normal(gv_scope_prng_impl(s), gv_args_get(args, 2),
                                    gv_value_rank(logvar), gv_value_shape(logvar));
    gv_value z = gv_add(gv_mul(eps, gv_exp(gv_mul_scalar(logvar, 0.5))), mean);
    gv_value recon = decode(s, cfg, z, gv_args_get(args, 1));
    if (!gv_value_ok(recon)) return NULL;
    gv_tree *out = tuple_take((gv_tree *[]){gv_tree_new_value_leaf(recon), gv_tree_new_value_leaf(mean),
                                            gv_tree_new_value_leaf(logvar)}, 3);
    return out ? out : trace_fail(gv_scope_graph(s), "VAE: the outputs (recon, mean, logvar)");
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

/* ---- the loss (the tutorial's loss_fn) ---- */

typedef struct loss_ctx {
    const vae_cfg *cfg;
    double kl_weight;
} loss_ctx;

/* loss_fn(params, x, c, key) -> (loss, (mse, kl)):
 *   mse = l2_loss(recon, x).sum(-1).mean()
 *   kl  = mean(-0.5 * sum(1 + logvar - mean^2 - exp(logvar), -1))
 *   loss = mse + kl_weight * kl */
static gv_tree *loss_fn(gv_graph *g, const gv_tree *in, void *ud) {
    const loss_ctx *c = ud;
    gv_module m = vae_module(c->cfg);
    gv_value x = gv_tree_get_value(in, "1");
    gv_value onehot = gv_one_hot(gv_tree_get_value(in, "2"), VAE_NUM_CLASSES, GV_F32);
    /* apply({"params": params}, x, one_hot(c), key) */
    gv_tree *params = gv_tree_clone(gv_tree_get(in, "0"));
    gv_tree *vars = params ? gv_tree_new_dict() : NULL;
    if (params && !vars) gv_tree_free(params);
    bool ok = vars && gv_tree_insert(vars, "params", params) == GV_OK; /* consumes params */
    gv_tree *args = ok ? gv_args3(x, onehot, gv_tree_get_value(in, "3")) : NULL;
    if (!args) return trace_fail(g, "VAE loss_fn: the variables and arguments"), gv_tree_free(vars), NULL;
    gv_tree *out = gv_apply(g, &m, vars, args, NULL, NULL);
    gv_tree_free(vars), gv_tree_free(args);
    if (!out) return NULL;
    gv_value recon = gv_tree_get_value(out, "0"), mean = gv_tree_get_value(out, "1"),
             logvar = gv_tree_get_value(out, "2");
    gv_tree_free(out);
    int last = -1;
    gv_value mse = gv_mean(gv_sum(gv_l2_loss(recon, x), &last, 1, false), NULL, 0, false);
    gv_value inner = gv_sub(gv_sub(gv_add_scalar(logvar, 1.0), gv_square(mean)), gv_exp(logvar));
    gv_value kl = gv_mean(gv_mul_scalar(gv_sum(inner, &last, 1, false), -0.5), NULL, 0, false);
    gv_value loss = gv_add(mse, gv_mul_scalar(kl, c->kl_weight));
    gv_tree *aux = tuple_take((gv_tree *[]){gv_tree_new_value_leaf(mse), gv_tree_new_value_leaf(kl)}, 2);
    gv_tree *res = tuple_take((gv_tree *[]){gv_tree_new_value_leaf(loss), aux}, 2);
    return res ? res : trace_fail(g, "VAE loss_fn: the outputs (loss, (mse, kl))");
}

/* (params, x, y, key) example inputs */
static gv_tree *loss_inputs(const gv_tree *params, int64_t batch) {
    gv_tree *in = gv_tree_new_tuple();
    gv_tensor *x = gv_tensor_zeros(GV_F32, GV_DIMS(batch, VAE_IMAGE_SIZE));
    gv_tensor *y = gv_tensor_zeros(GV_I32, GV_DIMS(batch));
    gv_tensor *k = gv_tensor_zeros(GV_U32, GV_DIMS(2));
    bool ok = in && x && y && k && gv_tree_append(in, gv_tree_clone(params)) == GV_OK &&
              gv_tree_append_tensor(in, x) == GV_OK && gv_tree_append_tensor(in, y) == GV_OK &&
              gv_tree_append_tensor(in, k) == GV_OK;
    gv_tensor_free(x), gv_tensor_free(y), gv_tensor_free(k);
    if (!ok) gv_tree_free(in);
    return ok ? in : NULL;
}

gv_fn *vae_loss_fn(const vae_cfg *cfg, double kl_weight, const gv_tree *params, int64_t batch) {
    gv_tree *in = loss_inputs(params, batch);
    if (!in) return NULL;
    loss_ctx lc = {cfg, kl_weight};
    gv_fn *fn = gv_trace(loss_fn, &lc, in);
    gv_tree_free(in);
    return fn;
}

/* ---- the train step (the tutorial's create_train_step) ---- */

struct vae_trainer {
    gv_transform *tx;
    gv_fn *value_and_grad;
    gv_plan *plan;
    gv_tree *inputs;          /* (state, x, y, key) */
    gv_tensor **in_flat, **out_flat;
    size_t nin, nout;
    size_t ix, iy, ikey;      /* flat input slots of the batch and key */
    size_t iloss, imse, ikl;  /* flat output slots of the metrics */
    size_t *state_in, *state_out, nstate; /* state leaf k: input slot, output slot */
    gv_tensor *key;
    gv_tree *outputs;
};

typedef struct step_ctx {
    gv_fn *vg;
    const gv_transform *tx;
} step_ctx;

/* train_step(state, x, c, key) -> (state', {loss, mse, kl}) */
static gv_tree *train_step(gv_graph *g, const gv_tree *in, void *ud) {
    const step_ctx *c = ud;
    const gv_tree *state = gv_tree_get(in, "0");
    /* loss_fn's (params, x, y, key) */
    gv_tree *args = tuple_take((gv_tree *[]){gv_tree_clone(gv_tree_get(state, "params")),
                                             gv_tree_clone(gv_tree_child(in, 1)),
                                             gv_tree_clone(gv_tree_child(in, 2)),
                                             gv_tree_clone(gv_tree_child(in, 3))}, 4);
    if (!args) return trace_fail(g, "VAE train_step: the loss_fn arguments");
    gv_tree *lg = gv_fn_call(g, c->vg, args); /* ((loss, (mse, kl)), grads) */
    gv_tree_free(args);
    if (!lg) return NULL;
    gv_tree *next = gv_train_state_apply_gradients(g, c->tx, state, gv_tree_get(lg, "1"));
    gv_tree *metrics = next ? gv_tree_new_dict() : NULL;
    bool ok = metrics && gv_tree_insert_value(metrics, "loss", gv_tree_get_value(lg, "0/0")) == GV_OK &&
              gv_tree_insert_value(metrics, "mse", gv_tree_get_value(lg, "0/1/0")) == GV_OK &&
              gv_tree_insert_value(metrics, "kl", gv_tree_get_value(lg, "0/1/1")) == GV_OK;
    gv_tree_free(lg);
    if (!next) return NULL;
    if (!ok) return trace_fail(g, "VAE train_step: the metrics"), gv_tree_free(metrics), gv_tree_free(next), NULL;
    gv_tree *out = tuple_take((gv_tree *[]){next, metrics}, 2);
    return out ? out : trace_fail(g, "VAE train_step: the outputs (state, metrics)");
}

static size_t slot_of(char **paths, size_t n, const char *path) {
    for (size_t i = 0; i < n; i++)
        if (!strcmp(paths[i], path)) return i;
    return (size_t)-1;
}

void vae_trainer_free(vae_trainer *t) {
    if (!t) return;
    gv_plan_free(t->plan);
    gv_fn_free(t->value_and_grad);
    gv_transform_free(t->tx);
    gv_tree_free(t->inputs);
    gv_tree_free(t->outputs);
    free(t->in_flat);
    free(t->out_flat);
    free(t->state_in);
    free(t->state_out);
    free(t);
}

static bool find_slots(vae_trainer *t) {
    char **ip = NULL, **op = NULL;
    size_t ni = 0, no = 0;
    if (gv_tree_leaf_paths(t->inputs, &ip, &ni) != GV_OK) return false;
    if (gv_tree_leaf_paths(t->outputs, &op, &no) != GV_OK) return gv_tree_paths_free(ip, ni), false;
    t->ix = slot_of(ip, ni, "1"), t->iy = slot_of(ip, ni, "2"), t->ikey = slot_of(ip, ni, "3");
    t->iloss = slot_of(op, no, "1/loss"), t->imse = slot_of(op, no, "1/mse"),
    t->ikl = slot_of(op, no, "1/kl");
    /* the new state's leaves, matched to the state's by path */
    t->state_in = calloc(ni + 1, sizeof *t->state_in);
    t->state_out = calloc(ni + 1, sizeof *t->state_out);
    bool ok = t->state_in && t->state_out;
    for (size_t i = 0; ok && i < ni; i++) {
        if (ip[i][0] != '0') continue;
        size_t j = slot_of(op, no, ip[i]);
        ok = j != (size_t)-1;
        t->state_in[t->nstate] = i, t->state_out[t->nstate++] = j;
    }
    gv_tree_paths_free(ip, ni), gv_tree_paths_free(op, no);
    return ok && t->ix != (size_t)-1 && t->iy != (size_t)-1 && t->ikey != (size_t)-1 &&
           t->iloss != (size_t)-1 && t->imse != (size_t)-1 && t->ikl != (size_t)-1;
}

vae_trainer *vae_trainer_new(const vae_cfg *cfg, const vae_hparams *hp, const gv_tree *params,
                             int64_t batch) {
    vae_trainer *t = calloc(1, sizeof *t);
    if (!t) return NULL;
    /* optax.adamw(learning_rate) with its defaults */
    t->tx = gv_adamw(.learning_rate = hp->learning_rate);
    gv_tree *state = t->tx ? gv_train_state_create(t->tx, params) : NULL;
    gv_tree *lin = state ? loss_inputs(params, batch) : NULL;
    if (!lin) return gv_tree_free(state), vae_trainer_free(t), NULL;
    gv_fn *loss = vae_loss_fn(cfg, hp->kl_weight, params, batch);
    t->value_and_grad = loss ? gv_value_and_grad(loss, 0, true) : NULL;
    gv_fn_free(loss);
    if (!t->value_and_grad) return gv_tree_free(state), gv_tree_free(lin), vae_trainer_free(t), NULL;
    /* the step's inputs: (state, x, y, key), the batch slots borrowed per step */
    t->inputs = tuple_take((gv_tree *[]){state, gv_tree_clone(gv_tree_child(lin, 1)),
                                         gv_tree_clone(gv_tree_child(lin, 2)),
                                         gv_tree_clone(gv_tree_child(lin, 3))}, 4);
    gv_tree_free(lin);
    if (!t->inputs) return vae_trainer_free(t), NULL;
    step_ctx sc = {t->value_and_grad, t->tx};
    gv_fn *step = gv_trace(train_step, &sc, t->inputs);
    const char *donate[] = {"0"};
    gv_plan_options po = {.threads = hp->threads, .donate = donate, .ndonate = 1};
    t->plan = step ? gv_plan_compile(step, &po) : NULL;
    gv_fn_free(step);
    if (!t->plan) return vae_trainer_free(t), NULL;
    t->outputs = gv_plan_new_outputs(t->plan);
    if (!t->outputs || gv_tree_flatten(t->inputs, &t->in_flat, &t->nin) != GV_OK ||
        gv_tree_flatten(t->outputs, &t->out_flat, &t->nout) != GV_OK || !find_slots(t))
        return vae_trainer_free(t), NULL;
    t->key = t->in_flat[t->ikey];
    return t;
}

gv_status vae_trainer_step(vae_trainer *t, gv_tensor *x, gv_tensor *y, gv_key key,
                           vae_metrics *out) {
    t->in_flat[t->ix] = x;
    t->in_flat[t->iy] = y;
    memcpy(gv_tensor_data(t->key), key.k, sizeof key.k);
    gv_status st = gv_plan_run_flat(t->plan, t->in_flat, t->out_flat);
    if (st != GV_OK) return st;
    /* the plan writes every state leaf in place (donation matches paths);
     * a leaf it could not is copied back, so the state tree stays current */
    for (size_t k = 0; k < t->nstate; k++) {
        gv_tensor *src = t->out_flat[t->state_out[k]], *dst = t->in_flat[t->state_in[k]];
        if (src != dst) memcpy(gv_tensor_data(dst), gv_tensor_data_const(src), gv_tensor_nbytes(dst));
    }
    out->loss = *(const float *)gv_tensor_data_const(t->out_flat[t->iloss]);
    out->mse = *(const float *)gv_tensor_data_const(t->out_flat[t->imse]);
    out->kl = *(const float *)gv_tensor_data_const(t->out_flat[t->ikl]);
    return GV_OK;
}

gv_tree *vae_trainer_state(vae_trainer *t) { return gv_tree_child(t->inputs, 0); }

gv_plan_stats vae_trainer_stats(const vae_trainer *t) { return gv_plan_get_stats(t->plan); }

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
    gv_tree *r = loss_fn(g, in, ud);
    if (!r) return NULL;
    gv_tree *aux = gv_tree_pop(r, "1");
    gv_tree_free(r);
    return aux;
}

vae_evaluator *vae_evaluator_new(const vae_cfg *cfg, int threads) {
    vae_evaluator *e = calloc(1, sizeof *e);
    if (!e) return NULL;
    e->ctx = (loss_ctx){cfg, 0.0};
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
