/* The run directory's config, metrics and plot (see run.h). */
#include "run.h"

#include <errno.h>
#include <fcntl.h>
#include <json-c/json.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "fileio.h"
#include "plot.h"

static const char *const DATASETS[] = {"mnist", "fashion-mnist"};

void vae_run_config_from_flags(vae_run_config *c, const vae_flags *f) {
    *c = (vae_run_config){f->epochs, f->batch_size, f->latent, f->seed, f->threads, f->log_every,
                          f->train_limit, 0, 0, f->kl_weight, f->lr, f->dataset};
}

/* ---- config <-> checkpoint ---- */

typedef struct int_field {
    const char *name;
    size_t offset;
    double min, max;     /* the flags' ranges (main.c) */
} int_field;

#define INT_FIELD(f, lo, hi) {#f, offsetof(vae_run_config, f), lo, hi}
static const int_field INT_FIELDS[] = {
    INT_FIELD(epochs, 1, 1e6),      INT_FIELD(batch_size, 1, 65536), INT_FIELD(latent, 1, 4096),
    INT_FIELD(seed, 0, 4294967295.0), INT_FIELD(threads, 1, 256),   INT_FIELD(log_every, 1, 1e9),
    INT_FIELD(train_limit, 0, 1e9), INT_FIELD(data_examples, 1, 1e9), INT_FIELD(data_crc, 0, 4294967295.0)};
#define NINT (sizeof INT_FIELDS / sizeof INT_FIELDS[0])

gv_status vae_tree_put(gv_tree *t, const char *path, gv_tensor *x) {
    gv_status st = x ? gv_tree_insert_tensor(t, path, x) : gv_last_status();
    gv_tensor_free(x);
    return st;
}

static gv_status put_scalar(gv_tree *t, const char *name, gv_dtype dt, double v) {
    char path[64];
    snprintf(path, sizeof path, "config/%s", name);
    return vae_tree_put(t, path, gv_tensor_scalar(dt, v));
}

gv_status vae_run_config_put(gv_tree *meta, const vae_run_config *c) {
    gv_status st = GV_OK;
    for (size_t i = 0; i < NINT && st == GV_OK; i++)
        st = put_scalar(meta, INT_FIELDS[i].name, GV_I64,
                        (double)*(const int64_t *)((const char *)c + INT_FIELDS[i].offset));
    int64_t ds = strcmp(c->dataset, DATASETS[0]) ? 1 : 0;
    if (st == GV_OK) st = put_scalar(meta, "dataset", GV_I64, (double)ds);
    if (st == GV_OK) st = put_scalar(meta, "kl_weight", GV_F64, c->kl_weight);
    if (st == GV_OK) st = put_scalar(meta, "lr", GV_F64, c->lr);
    return st;
}

static bool get_scalar(const gv_tree *meta, const char *name, gv_dtype dt, void *out) {
    char path[64];
    snprintf(path, sizeof path, "config/%s", name);
    gv_tensor *x = gv_tree_contains(meta, path) ? gv_tree_get_tensor(meta, path) : NULL;
    if (!x || gv_tensor_dtype(x) != dt || gv_tensor_rank(x) != 0) return false;
    memcpy(out, gv_tensor_data_const(x), gv_dtype_size(dt));
    return true;
}

int vae_run_config_get(const gv_tree *meta, vae_run_config *c, const char *dir, int64_t step) {
    const char *bad = NULL;
    for (size_t i = 0; i < NINT && !bad; i++) {
        int64_t *v = (int64_t *)((char *)c + INT_FIELDS[i].offset);
        if (!get_scalar(meta, INT_FIELDS[i].name, GV_I64, v) || (double)*v < INT_FIELDS[i].min ||
            (double)*v > INT_FIELDS[i].max)
            bad = INT_FIELDS[i].name;
    }
    int64_t ds = -1;
    if (!bad && (!get_scalar(meta, "dataset", GV_I64, &ds) || ds < 0 || ds > 1)) bad = "dataset";
    if (!bad && (!get_scalar(meta, "kl_weight", GV_F64, &c->kl_weight) || !isfinite(c->kl_weight) ||
                 c->kl_weight < 0 || c->kl_weight > 1e6))
        bad = "kl_weight";
    if (!bad && (!get_scalar(meta, "lr", GV_F64, &c->lr) || !isfinite(c->lr) || c->lr < 1e-12 ||
                 c->lr > 10))
        bad = "lr";
    if (bad) {
        fprintf(stderr, "vae: %s: checkpoint %lld: its config has no valid '%s'\n", dir,
                (long long)step, bad);
        return VAE_EXIT_ERROR;
    }
    c->dataset = DATASETS[ds];
    return 0;
}

int vae_run_config_check(vae_run_config *saved, const vae_flags *f, const char *dir) {
    struct {
        vae_flag_id id;
        const char *flag;
        double given, was;
    } fixed[] = {
        {F_BATCH_SIZE, "batch-size", (double)f->batch_size, (double)saved->batch_size},
        {F_LATENT, "latent", (double)f->latent, (double)saved->latent},
        {F_SEED, "seed", (double)f->seed, (double)saved->seed},
        {F_TRAIN_LIMIT, "train-limit", (double)f->train_limit, (double)saved->train_limit},
        {F_KL_WEIGHT, "kl-weight", f->kl_weight, saved->kl_weight},
        {F_LR, "lr", f->lr, saved->lr},
    };
    for (size_t i = 0; i < sizeof fixed / sizeof fixed[0]; i++)
        if (f->given[fixed[i].id] && fixed[i].given != fixed[i].was) {
            fprintf(stderr, "vae: --%s %.15g: the run in %s was started with --%s %.15g; resume "
                    "it with that value, or use a new --run-dir\n", fixed[i].flag, fixed[i].given,
                    dir, fixed[i].flag, fixed[i].was);
            return VAE_EXIT_USAGE;
        }
    if (f->given[F_DATASET] && strcmp(f->dataset, saved->dataset)) {
        fprintf(stderr, "vae: --dataset %s: the run in %s was trained on %s\n", f->dataset, dir,
                saved->dataset);
        return VAE_EXIT_USAGE;
    }
    if (f->given[F_EPOCHS]) saved->epochs = f->epochs;
    if (f->given[F_THREADS] && f->threads != saved->threads) {
        /* allowed, but large GEMMs are split by thread count */
        fprintf(stderr, "vae: note: the run in %s was trained with --threads %lld; with %lld the "
                "results differ in the last bits from a run that never changed\n", dir,
                (long long)saved->threads, (long long)f->threads);
        saved->threads = f->threads;
    }
    if (f->given[F_LOG_EVERY]) saved->log_every = f->log_every;
    return 0;
}

int64_t vae_run_state_step(const gv_tree *state) {
    double s = -1;
    gv_tensor *t = gv_tree_get_tensor(state, "step");
    if (t) gv_tensor_get(t, NULL, &s);
    return (int64_t)s;
}

/* ---- metrics.jsonl ---- */

int vae_metrics_truncate(const char *path, int64_t step) {
    size_t len;
    char *text = vae_read_file(path, &len);
    if (!text) return errno == ENOENT ? 0 : (fprintf(stderr, "vae: %s: %s\n", path, strerror(errno)),
                                             VAE_EXIT_ERROR);
    size_t keep = 0;
    for (char *line = text; *line;) {
        char *nl = strchr(line, '\n');
        size_t n = nl ? (size_t)(nl - line) + 1 : strlen(line);
        if (nl) *nl = 0; /* parse this line only */
        json_object *o = json_tokener_parse(line);
        if (nl) *nl = '\n';
        json_object *s, *t;
        /* a run's test-set line is written again when it finishes */
        bool ok = nl && o && json_object_object_get_ex(o, "step", &s) &&
                  json_object_get_int64(s) <= step && !json_object_object_get_ex(o, "test", &t);
        json_object_put(o);
        if (ok) {
            memmove(text + keep, line, n);
            keep += n;
        }
        line += n;
    }
    char err[512];
    int rc = vae_write_file_atomic(path, text, keep, err, sizeof err);
    free(text);
    if (rc) fprintf(stderr, "vae: %s\n", err);
    return rc ? VAE_EXIT_ERROR : 0;
}

/* svg_path from the log-window lines of metrics_path. */
static int plot_from(const char *metrics_path, const char *svg_path) {
    size_t len;
    char *text = vae_read_file(metrics_path, &len);
    if (!text) {
        fprintf(stderr, "vae: %s: %s\n", metrics_path, strerror(errno));
        return VAE_EXIT_ERROR;
    }
    size_t cap = 1;
    for (size_t i = 0; i < len; i++) cap += text[i] == '\n';
    double *cols = calloc(4 * cap, sizeof *cols);
    if (!cols) {
        fprintf(stderr, "vae: %s: out of memory\n", svg_path);
        return free(text), VAE_EXIT_ERROR;
    }
    double *x = cols, *loss = cols + cap, *mse = cols + 2 * cap, *kl = cols + 3 * cap;
    int n = 0;
    for (char *line = strtok(text, "\n"); line; line = strtok(NULL, "\n")) {
        json_object *o = json_tokener_parse(line), *v[4];
        /* the log-window lines: step, loss, mse, kl and no epoch_end/test key */
        if (o && json_object_object_get_ex(o, "batch", &v[0]) && json_object_object_get_ex(o, "step", &v[0]) &&
            json_object_object_get_ex(o, "loss", &v[1]) && json_object_object_get_ex(o, "mse", &v[2]) &&
            json_object_object_get_ex(o, "kl", &v[3])) {
            x[n] = json_object_get_double(v[0]), loss[n] = json_object_get_double(v[1]);
            mse[n] = json_object_get_double(v[2]), kl[n] = json_object_get_double(v[3]);
            n++;
        }
        json_object_put(o);
    }
    free(text);
    plot_series series[3] = {{"loss = mse + kl_weight * kl", loss}, {"mse (reconstruction)", mse},
                             {"kl", kl}};
    char err[512];
    int rc = plot_svg(svg_path, "VAE training on MNIST (means over each log window)", "step", x, n, series,
                      3, err, sizeof err);
    free(cols);
    if (rc) {
        fprintf(stderr, "vae: %s\n", err);
        return VAE_EXIT_ERROR;
    }
    return 0;
}

int vae_plot_metrics(const char *dir) {
    char *metrics_path = vae_strfmt("%s/metrics.jsonl", dir), *svg_path = vae_strfmt("%s/loss.svg", dir);
    int rc = metrics_path && svg_path ? plot_from(metrics_path, svg_path)
                                      : (fprintf(stderr, "vae: %s/loss.svg: out of memory\n", dir),
                                         VAE_EXIT_ERROR);
    free(metrics_path), free(svg_path);
    return rc;
}
