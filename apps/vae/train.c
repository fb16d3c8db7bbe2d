/* vae train: the tutorial's training loop, with checkpoints and resume.
 *
 *   for epoch in range(epochs):
 *     for i, (x, c) in enumerate(loader):          # a new shuffle each epoch
 *       key, subkey = jax.random.split(key)
 *       state, (loss, mse, kl) = train_step(state, x, c, subkey)
 *       every 100 steps: print the means over those steps
 *     checkpoint (state, key, data position)
 *
 * Keys: root = PRNGKey(seed) is split into four: params init, data order,
 * the step key stream, and the test/sample noise. A checkpoint holds the
 * train state and a "meta" item (epoch, batch index, the key stream, the
 * running sums of the log window and the epoch, the config), so a resumed
 * run takes exactly the steps the uninterrupted one would have taken.
 *
 * Data-parallel (mpirun -np P vae train ...): every process builds the same
 * state and steps on B/P rows of each batch (distributed.h); the step
 * averages grads and metrics, so the processes stay identical. Process 0
 * prints, writes metrics.jsonl, the checkpoints, samples.png and loss.svg;
 * the others read the checkpoints to resume (a directory every process sees). */
#define _GNU_SOURCE /* vasprintf */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"
#include "fileio.h"
#include "plot.h"
#include "run.h"
#include "vae_model.h"

#include <zlib.h>

static volatile sig_atomic_t interrupted;

static void on_signal(int sig) {
    interrupted = sig;
    signal(sig, SIG_DFL); /* a second Ctrl-C stops at once; saves are atomic */
}

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* ---- the running means: [loss, mse, kl, count] over a log window and an epoch ---- */

typedef struct sums {
    double window[4], epoch[4];
} sums;

static void sums_add(double *s, const vae_metrics *m) {
    s[0] += m->loss, s[1] += m->mse, s[2] += m->kl, s[3] += 1;
}

/* ---- the meta item of a checkpoint ---- */

static gv_tree *meta_tree(const vae_run_config *c, int64_t epoch, int64_t index, gv_key key,
                          const sums *s) {
    gv_tree *t = gv_tree_new_dict();
    double acc[8];
    memcpy(acc, s->window, sizeof s->window);
    memcpy(acc + 4, s->epoch, sizeof s->epoch);
    bool ok = t && vae_tree_put(t, "epoch", gv_tensor_scalar(GV_I64, (double)epoch)) == GV_OK &&
              vae_tree_put(t, "index", gv_tensor_scalar(GV_I64, (double)index)) == GV_OK &&
              vae_tree_put(t, "key", gv_tensor_from_data(GV_U32, GV_DIMS(2), key.k, sizeof key.k)) == GV_OK &&
              vae_tree_put(t, "sums", gv_tensor_from_data(GV_F64, GV_DIMS(8), acc, sizeof acc)) == GV_OK &&
              vae_run_config_put(t, c) == GV_OK;
    if (!ok) gv_tree_free(t);
    return ok ? t : NULL;
}

/* ---- the log ---- */

typedef struct progress {
    bool tty;
    double t0, last_draw;
    int64_t steps_done;   /* in this invocation */
    int64_t steps_left;   /* to the end of training */
} progress;

static void progress_clear(const progress *p) {
    if (p->tty) fputs("\r\033[K", stdout);
}

/* "epoch 3/10 [=====>   ] 1234/3750  812 steps/s  ETA 0:42  loss 31.2": the
 * epoch counted from 1 as progress bars do, the loss the mean of the current
 * log window; redrawn at most ten times a second. */
static void progress_draw(progress *p, int64_t epoch, int64_t epochs, int64_t index, int64_t per_epoch,
                          double running_loss) {
    double t = now();
    if (!p->tty || t - p->last_draw < 0.1) return;
    p->last_draw = t;
    double rate = p->steps_done / fmax(t - p->t0, 1e-9);
    double eta = p->steps_left / fmax(rate, 1e-9);
    int width = 24, fill = (int)(width * index / (per_epoch ? per_epoch : 1));
    char bar[32];
    for (int i = 0; i < width; i++) bar[i] = i < fill ? '=' : i == fill ? '>' : ' ';
    bar[width] = 0;
    printf("\r\033[Kepoch %lld/%lld [%s] %lld/%lld  %.0f steps/s  ETA %d:%02d  loss %.4f",
           (long long)epoch + 1, (long long)epochs, bar, (long long)index, (long long)per_epoch, rate,
           (int)(eta / 60), (int)fmod(eta, 60), running_loss);
    fflush(stdout);
}

/* ---- the command ---- */

typedef struct trainer_run {
    const vae_flags *flags;
    vae_run_config cfg;
    char *dir;             /* --run-dir (owned) */
    vae_cfg model;
    gv_dataset train, test;
    gv_loader *loader;
    vae_trainer *trainer;
    gv_checkpoint_manager *ckpt;
    int metrics;           /* metrics.jsonl, opened O_APPEND; -1 when not open */
    char *metrics_path;    /* <dir>/metrics.jsonl (owned) */
    gv_key keys[4], key;   /* keys: init, data, step stream, noise; key: the stream now */
    int64_t epoch, index;
    sums sums;
    int rank, nproc;       /* this process of nproc (distributed.h); rank 0 writes */
    gv_checkpoint_manager *shard; /* --zero1, processes but 0: their own states */
    int64_t resume_step;   /* the latest step every process has a checkpoint of, or -1 */
    bool stopping;         /* a Ctrl-C reached some process: all stop at this step */
} trainer_run;

static int error(const char *what) {
    fprintf(stderr, "vae: %s: %s\n", what, gv_last_error());
    return VAE_EXIT_ERROR;
}

static int out_of_memory(const char *what) {
    fprintf(stderr, "vae: %s: out of memory\n", what);
    return VAE_EXIT_ERROR;
}

/* ---- metrics.jsonl ---- */

/* One line, flushed so that a crash loses none. A line that cannot be
 * written (disk full, file size limit, I/O error) stops training: a run
 * whose metrics have holes would plot and resume wrongly. 0 or an exit code. */
static int metrics_line(trainer_run *r, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int metrics_line(trainer_run *r, const char *fmt, ...) {
    if (r->metrics < 0) return 0; /* a process other than 0 */
    /* one write(2) of the whole line (not stdio, whose buffer could split
     * it), retried until every byte is written */
    char *line = NULL;
    va_list ap;
    va_start(ap, fmt);
    int n = vasprintf(&line, fmt, ap);
    va_end(ap);
    int e = ENOMEM;
    if (n >= 0) {
        line[n] = '\n'; /* vasprintf's NUL becomes the newline */
        e = vae_write_all(r->metrics, line, (size_t)n + 1) == 0 ? 0 : errno;
    }
    free(n >= 0 ? line : NULL);
    if (!e) return 0;
    fprintf(stderr, "vae: writing %s: %s\n", r->metrics_path, strerror(e));
    return VAE_EXIT_ERROR;
}

static int save(trainer_run *r) {
    gv_tree *state = vae_trainer_state(r->trainer);
    if (r->shard) { /* --zero1: this process's AdamW shard, in its own directory */
        int64_t s = vae_run_state_step(state);
        if (s == gv_checkpoint_manager_latest_step(r->shard)) return 0;
        gv_status st = gv_checkpoint_manager_save(r->shard, s, (const char *[]){"state"},
                                                  (const gv_tree *[]){state}, 1, NULL);
        return st == GV_OK ? 0 : error("saving this process's checkpoint");
    }
    if (r->rank) return 0; /* process 0 saves for all: their states are the same */
    int64_t step = vae_run_state_step(state);
    if (step == gv_checkpoint_manager_latest_step(r->ckpt)) return 0;
    gv_tree *meta = meta_tree(&r->cfg, r->epoch, r->index, r->key, &r->sums);
    if (!meta) return error("checkpoint metadata");
    const char *names[2] = {"state", "meta"};
    const gv_tree *items[2] = {state, meta};
    gv_status st = gv_checkpoint_manager_save(r->ckpt, step, names, items, 2, NULL);
    gv_tree_free(meta);
    return st == GV_OK ? 0 : error("saving a checkpoint");
}

/* The step to resume from: the latest checkpoint every process has (with
 * --zero1, a process killed before its save holds an older one). */
static int agree_resume_step(trainer_run *r) {
    int64_t s = gv_checkpoint_manager_latest_step(r->shard ? r->shard : r->ckpt);
    if (gv_distributed_min(&s, 1) != GV_OK) return error("resuming");
    r->resume_step = s;
    return 0;
}

/* Restore the agreed checkpoint, if any. */
static int resume(trainer_run *r) {
    int rc = agree_resume_step(r);
    int64_t step = r->resume_step;
    if (rc || step < 0) return rc;
    gv_tree *meta = gv_checkpoint_manager_restore(r->ckpt, step, "meta", NULL);
    if (!meta) {
        fprintf(stderr, "vae: reading the latest checkpoint: %s\n(to resume from the one before, "
                "remove %s/checkpoints/%lld)\n", gv_last_error(), r->dir, (long long)step);
        return VAE_EXIT_ERROR;
    }
    vae_run_config saved;
    rc = vae_run_config_get(meta, &saved, r->dir, step);
    if (!rc) rc = vae_run_config_check(&saved, r->flags, r->dir);
    if (rc) return gv_tree_free(meta), rc;
    r->cfg = saved;
    gv_tensor *k = gv_tree_get_tensor(meta, "key"), *s = gv_tree_get_tensor(meta, "sums");
    gv_tensor *e = gv_tree_get_tensor(meta, "epoch"), *i = gv_tree_get_tensor(meta, "index");
    if (!k || !s || !e || !i || gv_tensor_dtype(k) != GV_U32 || gv_tensor_size(k) != 2 ||
        gv_tensor_dtype(s) != GV_F64 || gv_tensor_size(s) != 8 || gv_tensor_dtype(e) != GV_I64 ||
        gv_tensor_rank(e) != 0 || gv_tensor_dtype(i) != GV_I64 || gv_tensor_rank(i) != 0) {
        gv_tree_free(meta);
        fprintf(stderr, "vae: %s: checkpoint %lld: 'meta' lacks key/sums/epoch/index of the expected "
                "types\n", r->dir, (long long)step);
        return VAE_EXIT_ERROR;
    }
    memcpy(r->key.k, gv_tensor_data_const(k), sizeof r->key.k);
    memcpy(r->sums.window, gv_tensor_data_const(s), sizeof r->sums.window);
    memcpy(r->sums.epoch, (const double *)gv_tensor_data_const(s) + 4, sizeof r->sums.epoch);
    r->epoch = *(const int64_t *)gv_tensor_data_const(e);
    r->index = *(const int64_t *)gv_tensor_data_const(i);
    gv_tree_free(meta);
    bool finite = true;
    for (int j = 0; j < 4; j++) finite = finite && isfinite(r->sums.window[j]) && isfinite(r->sums.epoch[j]);
    if (r->epoch < 0 || r->epoch > r->cfg.epochs + 1000000 || r->index < 0 || !finite ||
        r->sums.epoch[3] > (double)r->index) {
        fprintf(stderr, "vae: %s: checkpoint %lld: bad data position or log sums in 'meta'\n", r->dir,
                (long long)step);
        return VAE_EXIT_ERROR;
    }
    if (r->epoch > r->cfg.epochs || (r->epoch == r->cfg.epochs && r->index > 0)) {
        fprintf(stderr, "vae: --epochs %lld: the run in %s is already at epoch %lld, batch %lld\n",
                (long long)r->cfg.epochs, r->dir, (long long)r->epoch, (long long)r->index);
        return VAE_EXIT_USAGE;
    }
    return 0;
}

static int load_state(trainer_run *r, int64_t step) {
    gv_tree *state = gv_checkpoint_manager_restore(r->shard ? r->shard : r->ckpt, step, "state",
                                                   vae_trainer_state(r->trainer));
    if (!state) {
        fprintf(stderr, "vae: restoring the train state: %s\n(to resume from the checkpoint before, "
                "remove %s/checkpoints/%lld)\n", gv_last_error(), r->dir, (long long)step);
        return VAE_EXIT_ERROR;
    }
    gv_status st = vae_trainer_load_state(r->trainer, state);
    gv_tree_free(state);
    if (st != GV_OK) return error("restoring the train state");
    if (gv_loader_seek(r->loader, r->epoch, r->index) != GV_OK) return error("resuming the data order");
    if (!r->rank)
        printf("resumed %s at step %lld (epoch %lld, batch %lld)\n", r->dir, (long long)step,
               (long long)r->epoch, (long long)r->index);
    return 0;
}

/* CRC-32 of the training examples' bytes: a resumed run must see the same data. */
static int64_t data_crc(const gv_dataset *d) {
    uLong crc = crc32(0L, Z_NULL, 0);
    const gv_tensor *parts[2] = {d->images, d->labels};
    for (int i = 0; i < 2; i++) {
        const unsigned char *p = gv_tensor_data_const(parts[i]);
        for (size_t off = 0, n = gv_tensor_nbytes(parts[i]); off < n;) {
            uInt chunk = n - off > (1u << 30) ? (1u << 30) : (uInt)(n - off);
            crc = crc32(crc, p + off, chunk);
            off += chunk;
        }
    }
    return (int64_t)crc;
}

static int load_data_from(trainer_run *r, const char *dir, bool resumed) {
    if (gv_mnist_load(dir, "train", &r->train) != GV_OK || gv_mnist_load(dir, "t10k", &r->test) != GV_OK) {
        if (gv_last_status() == GV_ERR_NOT_FOUND) /* not for a bad file or no memory */
            fprintf(stderr, "vae: %s\n(get the data with: bash scripts/fetch-mnist.sh --dataset %s)\n",
                    gv_last_error(), r->cfg.dataset);
        else
            fprintf(stderr, "vae: %s\n", gv_last_error());
        return VAE_EXIT_ERROR;
    }
    int64_t n = gv_dataset_size(&r->train), limit = r->cfg.train_limit;
    if (limit > n) {
        fprintf(stderr, "vae: --train-limit %lld: the training set has only %lld examples\n",
                (long long)limit, (long long)n);
        return VAE_EXIT_USAGE;
    }
    if (limit && limit < r->cfg.batch_size) {
        fprintf(stderr, "vae: --train-limit %lld is smaller than --batch-size %lld\n", (long long)limit,
                (long long)r->cfg.batch_size);
        return VAE_EXIT_USAGE;
    }
    if (limit) {
        gv_dataset part;
        if (gv_dataset_take(&r->train, limit, &part) != GV_OK) return error("--train-limit");
        gv_dataset_free(&r->train);
        r->train = part;
    }
    n = gv_dataset_size(&r->train);
    if (r->cfg.batch_size > n) {
        fprintf(stderr, "vae: --batch-size %lld: only %lld training examples\n",
                (long long)r->cfg.batch_size, (long long)n);
        return VAE_EXIT_USAGE;
    }
    int64_t tn = gv_dataset_size(&r->test);
    if (r->flags->test_limit > tn) {
        fprintf(stderr, "vae: --test-limit %lld: the test set has only %lld examples\n",
                (long long)r->flags->test_limit, (long long)tn);
        return VAE_EXIT_USAGE;
    }
    int64_t crc = data_crc(&r->train);
    if (resumed && (r->cfg.data_examples != n || r->cfg.data_crc != crc)) {
        fprintf(stderr, "vae: %s holds other training data (%lld examples, CRC-32 %08llx) than the run "
                "in %s was trained on (%lld examples, CRC-32 %08llx)\n", dir, (long long)n,
                (long long)crc, r->dir, (long long)r->cfg.data_examples, (long long)r->cfg.data_crc);
        return VAE_EXIT_USAGE;
    }
    r->cfg.data_examples = n, r->cfg.data_crc = crc;
    return 0;
}

static int load_data(trainer_run *r, bool resumed) {
    char *dir = vae_data_dir(r->flags->data_dir, r->cfg.dataset);
    if (!dir) return out_of_memory("the data directory");
    int rc = load_data_from(r, dir, resumed);
    free(dir);
    return rc;
}

/* Mean mse and kl over the test set (the tutorial's reconstruction loss);
 * data-parallel too: each process takes its rows of every batch. */
static int evaluate(trainer_run *r, double *mse, double *kl) {
    int64_t n = gv_dataset_size(&r->test), limit = r->flags->test_limit;
    gv_dataset part = r->test;
    if (limit && limit < n && gv_dataset_take(&r->test, limit, &part) != GV_OK) return error("--test-limit");
    gv_loader *ld = gv_loader_new(&part, &(gv_loader_options){.batch_size = 500,
                                                                .shard = gv_shard_by_process()});
    vae_evaluator *ev = ld ? vae_evaluator_new(&r->model, (int)r->cfg.threads) : NULL;
    if (part.images != r->test.images) gv_dataset_free(&part);
    if (!ev) return gv_loader_free(ld), error("evaluating on the test set");
    const gv_tree *params = gv_tree_get(vae_trainer_state(r->trainer), "params");
    double sm = 0, sk = 0, count = 0;
    gv_batch b;
    gv_status st;
    while ((st = gv_loader_next(ld, &b)) == GV_OK && b.x) {
        vae_metrics m;
        gv_key k = gv_random_fold_in_eager(r->keys[3], (uint32_t)b.index);
        if ((st = vae_evaluate(ev, params, b.x, b.y, k, &m)) != GV_OK) break;
        double w = (double)gv_tensor_dim(b.x, 0);
        sm += m.mse * w, sk += m.kl * w, count += w;
    }
    vae_evaluator_free(ev);
    gv_loader_free(ld);
    if (st != GV_OK) return error("evaluating on the test set");
    double sums3[3] = {sm, sk, count};
    if (gv_distributed_sum(sums3, 3) != GV_OK) return error("evaluating on the test set");
    *mse = sums3[0] / sums3[2], *kl = sums3[1] / sums3[2];
    return 0;
}

/* mkdir -p; -1 with errno set */
static int make_dirs(const char *dir) {
    char *path = vae_strfmt("%s", dir);
    if (!path) return -1;
    for (char *p = path + 1; ; p++) {
        if (*p != '/' && *p) continue;
        char c = *p;
        *p = 0;
        if (mkdir(path, 0777) && errno != EEXIST) {
            int e = errno;
            free(path);
            return errno = e, -1;
        }
        *p = c;
        if (!c) break;
    }
    free(path);
    struct stat st;
    if (stat(dir, &st)) return -1;
    if (!S_ISDIR(st.st_mode)) return errno = ENOTDIR, -1;
    return 0;
}

/* Process 0 makes the run directory and opens the checkpoints (cleaning
 * up what an earlier run left); the others open them after it. */
static int open_run(trainer_run *r) {
    if (!r->rank && make_dirs(r->dir)) {
        fprintf(stderr, "vae: --run-dir %s: %s\n", r->dir, strerror(errno));
        return VAE_EXIT_ERROR;
    }
    /* what a killed run was writing (metrics.jsonl, loss.svg, samples.png) */
    if (!r->rank && gv_remove_stale_temporaries(r->dir, NULL) != GV_OK) {
        fprintf(stderr, "vae: --run-dir %s: %s\n", r->dir, gv_last_error());
        return VAE_EXIT_ERROR;
    }
    char *path = vae_strfmt("%s/checkpoints", r->dir);
    if (!path) return out_of_memory("--run-dir");
    gv_checkpoint_options o = {.max_to_keep = 3, .async = true, .must_exist = r->rank > 0};
    if (!r->rank) r->ckpt = gv_checkpoint_manager_new(path, &o);
    if (gv_distributed_barrier() != GV_OK) return free(path), error("--run-dir");
    if (r->rank) r->ckpt = gv_checkpoint_manager_new(path, &o);
    free(path);
    if (!r->ckpt) return error("--run-dir");
    if (r->flags->zero1 && r->rank) {
        char *own = vae_strfmt("%s/checkpoints-process-%d", r->dir, r->rank);
        if (!own) return out_of_memory("--run-dir");
        o.must_exist = false;
        r->shard = gv_checkpoint_manager_new(own, &o);
        free(own);
        if (!r->shard) return error("--zero1");
    }
    return 0;
}

static int open_metrics(trainer_run *r, int64_t resumed_step) {
    if (r->rank) return 0; /* process 0 writes the metrics */
    r->metrics_path = vae_strfmt("%s/metrics.jsonl", r->dir);
    if (!r->metrics_path) return out_of_memory("metrics.jsonl");
    /* lines written after the checkpoint we resume from are dropped: the
     * resumed run writes them again */
    if (vae_metrics_truncate(r->metrics_path, resumed_step) != 0) return VAE_EXIT_ERROR;
    r->metrics = open(r->metrics_path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
    if (r->metrics < 0) {
        fprintf(stderr, "vae: %s: %s\n", r->metrics_path, strerror(errno));
        return VAE_EXIT_ERROR;
    }
    return 0;
}

static int finish_window(trainer_run *r, int64_t step, double rate) {
    double *w = r->sums.window;
    if (w[3] == 0) return 0;
    if (!r->rank)
        printf("epoch %lld | step %lld | loss: %.4f ~ mse: %.4f. kl: %.4f\n", (long long)r->epoch,
               (long long)r->index, w[0] / w[3], w[1] / w[3], w[2] / w[3]);
    int rc = metrics_line(r, "{\"step\": %lld, \"epoch\": %lld, \"batch\": %lld, \"loss\": %.9g, "
                          "\"mse\": %.9g, \"kl\": %.9g, \"steps_per_s\": %.1f}", (long long)step,
                          (long long)r->epoch, (long long)r->index, w[0] / w[3], w[1] / w[3],
                          w[2] / w[3], rate);
    memset(w, 0, sizeof r->sums.window);
    return rc;
}

static int train_loop(trainer_run *r, double *train_seconds) {
    const vae_flags *f = r->flags;
    int64_t per_epoch = gv_loader_batches_per_epoch(r->loader);
    int64_t step0 = vae_run_state_step(vae_trainer_state(r->trainer)), budget = f->max_steps;
    progress p = {.tty = !r->rank && isatty(STDOUT_FILENO), .t0 = now()};
    p.steps_left = (r->cfg.epochs - r->epoch) * per_epoch - r->index;
    int rc = 0;
    while (r->epoch < r->cfg.epochs && !rc) {
        /* stop inside an epoch only: at its end the marker is read first, so
         * the checkpoint is the epoch's own */
        r->stopping = gv_distributed_any(interrupted != 0); /* one process's Ctrl-C stops all */
        if ((r->stopping || (budget && p.steps_done >= budget)) && r->index < per_epoch) break;
        gv_batch b;
        if (gv_loader_next(r->loader, &b) != GV_OK) return error("reading a batch");
        int64_t step = step0 + p.steps_done;
        if (!b.x) { /* end of the epoch: summary and checkpoint */
            double *e = r->sums.epoch;
            progress_clear(&p);
            if (e[3] > 0 && !r->rank)
                printf("epoch %lld done | %lld steps | mean loss: %.4f ~ mse: %.4f. kl: %.4f\n",
                       (long long)r->epoch, (long long)e[3], e[0] / e[3], e[1] / e[3], e[2] / e[3]);
            /* a metrics line that cannot be written stops training before
             * the checkpoint: a resumed run writes the line again */
            if ((rc = metrics_line(r, "{\"epoch_end\": %lld, \"step\": %lld, \"loss\": %.9g, "
                                   "\"mse\": %.9g, \"kl\": %.9g}", (long long)r->epoch, (long long)step,
                                   e[0] / e[3], e[1] / e[3], e[2] / e[3])))
                return rc;
            memset(&r->sums, 0, sizeof r->sums);
            r->epoch++, r->index = 0;
            rc = save(r);
            continue;
        }
        gv_key sub;
        gv_random_split2_eager(GV_PRNG_DEFAULT, r->key, &r->key, &sub);
        vae_metrics m;
        if (vae_trainer_step(r->trainer, b.x, b.y, sub, &m) != GV_OK) return error("train step");
        if (!isfinite(m.loss)) { /* the mean over all processes: all stop here */
            progress_clear(&p);
            fprintf(stderr, "vae: the loss is %g at step %lld (epoch %lld, batch %lld); stopping "
                    "without saving this state (lower --lr?)\n", m.loss, (long long)step + 1,
                    (long long)r->epoch, (long long)r->index);
            return VAE_EXIT_ERROR;
        }
        p.steps_done++, p.steps_left--;
        r->index++;
        sums_add(r->sums.window, &m), sums_add(r->sums.epoch, &m);
        if (r->index % r->cfg.log_every == 0) {
            progress_clear(&p);
            if ((rc = finish_window(r, step + 1, p.steps_done / (now() - p.t0)))) return rc;
        }
        double *w = r->sums.window;
        progress_draw(&p, r->epoch, r->cfg.epochs, r->index, per_epoch, w[3] > 0 ? w[0] / w[3] : m.loss);
    }
    progress_clear(&p);
    fflush(stdout);
    *train_seconds = now() - p.t0;
    if (rc) return rc;
    if (r->epoch < r->cfg.epochs) { /* interrupted or out of steps: save where we are */
        rc = save(r);
        if (!rc && gv_checkpoint_manager_wait_until_finished(r->ckpt) != GV_OK) rc = error("checkpoint");
        if (!rc && r->shard && gv_checkpoint_manager_wait_until_finished(r->shard) != GV_OK)
            rc = error("checkpoint");
        if (rc) return rc;
        if (!r->rank)
            printf("%s at step %lld (epoch %lld, batch %lld): checkpoint saved in %s/checkpoints; "
                   "run the same command to resume\n", r->stopping ? "interrupted" : "stopped",
                   (long long)vae_run_state_step(vae_trainer_state(r->trainer)), (long long)r->epoch,
                   (long long)r->index, r->dir);
        return r->stopping ? VAE_EXIT_INTERRUPTED : 0; /* 0: stopped by --max-steps */
    }
    return 0;
}

static void run_free(trainer_run *r) {
    gv_loader_free(r->loader);
    vae_trainer_free(r->trainer);
    if (r->ckpt && gv_checkpoint_manager_close(r->ckpt) != GV_OK)
        fprintf(stderr, "vae: saving a checkpoint: %s\n", gv_last_error());
    if (r->shard && gv_checkpoint_manager_close(r->shard) != GV_OK)
        fprintf(stderr, "vae: saving this process's checkpoint: %s\n", gv_last_error());
    if (r->metrics >= 0) close(r->metrics);
    free(r->metrics_path);
    free(r->dir);
    gv_dataset_free(&r->train);
    gv_dataset_free(&r->test);
}

int vae_cmd_train(const vae_flags *f) {
    trainer_run r = {.flags = f, .dir = vae_strfmt("%s", f->run_dir), .rank = gv_process_index(),
                     .metrics = -1,
                     .nproc = gv_process_count()};
    if (!r.dir) return out_of_memory("--run-dir");
    vae_run_config_from_flags(&r.cfg, f);
    if (r.cfg.batch_size % r.nproc) {
        fprintf(stderr, "vae: --batch-size %lld does not divide into %d processes\n",
                (long long)r.cfg.batch_size, r.nproc);
        return free(r.dir), VAE_EXIT_USAGE;
    }
    if (f->zero1 && r.nproc == 1) {
        fprintf(stderr, "vae: --zero1 shards the AdamW state across processes: run it under "
                "mpirun -np P with P > 1\n");
        return free(r.dir), VAE_EXIT_USAGE;
    }
    int rc = open_run(&r);
    if (!rc) rc = resume(&r);
    int64_t resumed = r.resume_step;
    if (!rc) rc = load_data(&r, resumed >= 0);
    if (rc) return run_free(&r), rc;

    vae_cfg_init(&r.model, r.cfg.latent);
    gv_random_split_eager(GV_PRNG_DEFAULT, gv_prng_key((int64_t)r.cfg.seed), 4, r.keys);
    if (resumed < 0) r.key = r.keys[2];
    gv_tree *vars = vae_init_variables(&r.model, r.keys[0], r.cfg.batch_size);
    vae_hparams hp = {r.cfg.kl_weight, r.cfg.lr, (int)r.cfg.threads, f->zero1};
    /* the step is traced for this process's rows of each batch */
    r.trainer = vars ? vae_trainer_new(&r.model, &hp, gv_tree_get(vars, "params"),
                                       r.cfg.batch_size / r.nproc) : NULL;
    gv_tree_free(vars);
    if (!r.trainer) return run_free(&r), error("creating the train step");
    r.loader = gv_loader_new(&r.train, &(gv_loader_options){.batch_size = r.cfg.batch_size,
        .shuffle = true, .key = r.keys[1], .drop_last = true, .prefetch = true,
        .shard = gv_shard_by_process()});
    if (!r.loader) return run_free(&r), error("the data loader");
    if (resumed >= 0 && (rc = load_state(&r, resumed))) return run_free(&r), rc;
    if ((rc = open_metrics(&r, resumed))) return run_free(&r), rc;

    gv_plan_stats st = vae_trainer_stats(r.trainer);
    if (!r.rank)
        printf("VAE: %lld params, latent %lld | %lld training examples, batch %lld, %lld steps per "
               "epoch | adamw(%g), kl weight %g | %lld thread%s\n",
               (long long)gv_tree_size(gv_tree_get(vae_trainer_state(r.trainer), "params")),
               (long long)r.cfg.latent, (long long)gv_dataset_size(&r.train),
               (long long)r.cfg.batch_size, (long long)gv_loader_batches_per_epoch(r.loader), r.cfg.lr,
               r.cfg.kl_weight, (long long)r.cfg.threads, r.cfg.threads > 1 ? "s" : "");
    if (!r.rank)
        printf("train step: %d kernels (%d fused, %d GEMM), arena %.2f MB, %d outputs in place\n",
               st.kernels, st.fused_kernels, st.gemms, st.arena_bytes / 1e6, st.donated_outputs);
    if (r.nproc > 1 && !r.rank)
        printf("data-parallel: %d processes, %lld examples of each batch per process\n", r.nproc,
               (long long)(r.cfg.batch_size / r.nproc));
    fflush(stdout);

    signal(SIGINT, on_signal);
    signal(SIGTERM, on_signal);
    double seconds = 0;
    rc = train_loop(&r, &seconds);
    signal(SIGINT, SIG_DFL);
    signal(SIGTERM, SIG_DFL);
    int64_t steps = vae_run_state_step(vae_trainer_state(r.trainer));
    if (rc == 0 && gv_checkpoint_manager_wait_until_finished(r.ckpt) != GV_OK) rc = error("checkpoint");
    if (rc == 0 && r.shard && gv_checkpoint_manager_wait_until_finished(r.shard) != GV_OK)
        rc = error("checkpoint");
    if (rc || r.epoch < r.cfg.epochs) return run_free(&r), rc; /* an error, or --max-steps */

    if (!r.rank)
        printf("trained %lld epochs (%lld steps) | this run: %.1f s\n", (long long)r.cfg.epochs,
               (long long)steps, seconds);
    double mse, kl;
    if ((rc = evaluate(&r, &mse, &kl))) return run_free(&r), rc;
    if (r.rank) return run_free(&r), 0; /* process 0 writes the rest */
    printf("test set: reconstruction loss (mse) %.4f, kl %.4f\n", mse, kl);
    if ((rc = metrics_line(&r, "{\"test\": true, \"step\": %lld, \"mse\": %.9g, \"kl\": %.9g}",
                           (long long)steps, mse, kl)))
        return run_free(&r), rc;
    int metrics = r.metrics;
    r.metrics = -1;
    if (fsync(metrics) != 0 || close(metrics) != 0) {
        fprintf(stderr, "vae: closing %s: %s\n", r.metrics_path, strerror(errno));
        return run_free(&r), VAE_EXIT_ERROR;
    }

    char *path = vae_strfmt("%s/samples.png", r.dir);
    if (!path) return run_free(&r), out_of_memory("samples.png");
    const gv_tree *params = gv_tree_get(vae_trainer_state(r.trainer), "params");
    rc = vae_write_samples(&r.model, params, r.keys[3], -1, 10, path);
    if (!rc) printf("samples: %s\n", path);
    free(path);
    if (rc) return run_free(&r), rc;
    if ((rc = vae_plot_metrics(r.dir))) return run_free(&r), rc;
    printf("loss curve: %s/loss.svg\ncheckpoints: %s/checkpoints\n", r.dir, r.dir);
    run_free(&r);
    return 0;
}
