/* grove: the batch loader (the role tf.data / a torch DataLoader plays in
 * the Flax MNIST tutorial), deterministic by construction.
 *
 * Order: epoch e visits the examples in the order
 *   jax.random.permutation(jax.random.fold_in(key, e), n)
 * (or 0..n-1 without shuffle), and batch i of epoch e holds the entries
 * [i*B, min((i+1)*B, n)) of that order. So a batch depends only on (key, e,
 * i): gv_loader_seek(e, i) resumes a run exactly where it stopped.
 *
 * Buffers: the returned x [B, row] float32 and y [B] int32 are allocated
 * once (with a view of their first rows for a last incomplete batch) and
 * refilled on every call; their data pointers never change, so a view or a
 * plan bound to them stays valid.
 *
 * Prefetch (double buffering): a worker thread fills batch i+1 into its own
 * buffer while the caller uses batch i; gv_loader_next waits for it and
 * copies it into the returned tensors (a memcpy, cheaper than the gather and
 * conversion it overlaps). The worker also owns the permutation, so the next
 * epoch's order is computed in the background during the last batch. The
 * worker touches nothing the caller reads: the request and the result are
 * handed over under `mu`. The batches are the same bit for bit with and
 * without prefetch: both run fill() on the same (epoch, index). */
#define _GNU_SOURCE
#include <inttypes.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "data/data_internal.h"
#include "grove/data.h"

struct gv_loader {
    gv_tensor *images, *labels; /* retained */
    int64_t n, row;             /* examples, elements per example */
    int64_t batch, rows_alloc;  /* B, and the rows allocated: min(B, n) */
    int64_t nbatches, last_rows;
    gv_loader_options opts;

    /* caller side */
    int64_t epoch, index;       /* where the next gv_loader_next reads */
    gv_tensor *x, *y;           /* [rows_alloc, row] f32, [rows_alloc] i32 */
    gv_tensor *x_last, *y_last; /* views of the first last_rows rows, or NULL */

    /* the order of perm_epoch; used only by the thread that fills batches
     * (the caller without prefetch, the worker with it) */
    int64_t perm_epoch;
    int64_t *perm;

    /* prefetch, guarded by mu */
    bool sync_init, thread_started;
    pthread_t thread;
    pthread_mutex_t mu;
    pthread_cond_t cv_work; /* a job was requested, or stop */
    pthread_cond_t cv_done; /* a job finished */
    bool stop;
    bool job; /* requested or running */
    int64_t job_epoch, job_index;
    bool ready; /* back_x/back_y hold batch (ready_epoch, ready_index) */
    int64_t ready_epoch, ready_index;
    gv_status bg_status;
    char *bg_msg;
    gv_tensor *back_x, *back_y; /* the worker's buffers */
};

static int64_t rows_of(const gv_loader *l, int64_t index) {
    return index == l->nbatches - 1 ? l->last_rows : l->batch;
}

static gv_status ensure_perm(gv_loader *l, int64_t epoch) {
    if (!l->opts.shuffle || l->perm_epoch == epoch) return GV_OK;
    /* fold_in takes 32 bits of data: epochs repeat their order after 2^32 */
    gv_key k = gv_random_fold_in_eager(l->opts.key, (uint32_t)epoch);
    gv_tensor *p = gv_random_permutation_eager(l->opts.impl, k, l->n);
    if (!p) return gv_error_prefix("the order of epoch %" PRId64 ": ", epoch);
    if (gv_tensor_dtype(p) == GV_I64) {
        memcpy(l->perm, gv_tensor_data_const(p), (size_t)l->n * sizeof *l->perm);
    } else {
        const int32_t *q = gv_tensor_data_const(p);
        for (int64_t i = 0; i < l->n; i++) l->perm[i] = q[i];
    }
    gv_tensor_free(p);
    l->perm_epoch = epoch;
    return GV_OK;
}

/* Batch (epoch, index) into x (rows x row floats) and y. */
static gv_status fill(gv_loader *l, int64_t epoch, int64_t index, float *restrict x,
                      int32_t *restrict y) {
    gv_status st = ensure_perm(l, epoch);
    if (st) return st;
    const uint8_t *images = gv_tensor_data_const(l->images);
    const uint8_t *labels = gv_tensor_data_const(l->labels);
    int64_t start = index * l->batch, rows = rows_of(l, index), row = l->row;
    for (int64_t r = 0; r < rows; r++) {
        int64_t e = l->opts.shuffle ? l->perm[start + r] : start + r;
        const uint8_t *restrict src = images + e * row;
        float *restrict dst = x + r * row;
        /* float32 pixel / 255, as tf.cast(x, tf.float32) / 255. in the Flax tutorial
         * (for bytes also equal to (x / 255.0).astype(float32): checked for all 256) */
        for (int64_t k = 0; k < row; k++) dst[k] = (float)src[k] / 255.0f;
        y[r] = labels[e];
    }
    return GV_OK;
}

/* ---- the prefetch worker ----------------------------------------------- */

/* Ask the worker for batch (epoch, index); the next position after an
 * epoch's last batch is the following epoch's first. Caller holds mu and the
 * worker is idle. */
static void request(gv_loader *l, int64_t epoch, int64_t index) {
    if (index >= l->nbatches) epoch++, index = 0;
    l->job = true;
    l->job_epoch = epoch;
    l->job_index = index;
    l->ready = false;
    pthread_cond_signal(&l->cv_work);
}

static void *worker_main(void *arg) {
    gv_loader *l = arg;
    pthread_mutex_lock(&l->mu);
    for (;;) {
        while (!l->job && !l->stop) pthread_cond_wait(&l->cv_work, &l->mu);
        if (l->stop) break;
        int64_t epoch = l->job_epoch, index = l->job_index;
        pthread_mutex_unlock(&l->mu);

        gv_status st = fill(l, epoch, index, gv_tensor_data(l->back_x), gv_tensor_data(l->back_y));
        char *msg = st ? strdup(gv_last_error()) : NULL;
        gv_clear_error(); /* the message lives in this thread's storage */

        pthread_mutex_lock(&l->mu);
        l->job = false;
        if (st) {
            l->bg_status = st;
            free(l->bg_msg);
            l->bg_msg = msg;
        } else {
            l->ready = true;
            l->ready_epoch = epoch;
            l->ready_index = index;
        }
        pthread_cond_broadcast(&l->cv_done);
    }
    pthread_mutex_unlock(&l->mu);
    return NULL;
}

/* Wait until the worker is idle. Caller holds mu. */
static void wait_idle(gv_loader *l) {
    while (l->job) pthread_cond_wait(&l->cv_done, &l->mu);
}

/* Batch (epoch, index) from the worker into l->x / l->y, then queue the
 * next one. */
static gv_status take_prefetched(gv_loader *l, int64_t epoch, int64_t index) {
    pthread_mutex_lock(&l->mu);
    wait_idle(l);
    if (!l->bg_status && !(l->ready && l->ready_epoch == epoch && l->ready_index == index)) {
        request(l, epoch, index); /* not queued: the first call after an error */
        wait_idle(l);
    }
    if (l->bg_status) {
        gv_status st = l->bg_status;
        char *msg = l->bg_msg;
        l->bg_status = GV_OK;
        l->bg_msg = NULL;
        pthread_mutex_unlock(&l->mu);
        gv_error(st, "%s", msg ? msg : "out of memory");
        free(msg);
        return st;
    }
    int64_t rows = rows_of(l, index);
    memcpy(gv_tensor_data(l->x), gv_tensor_data_const(l->back_x),
           (size_t)(rows * l->row) * sizeof(float));
    memcpy(gv_tensor_data(l->y), gv_tensor_data_const(l->back_y), (size_t)rows * sizeof(int32_t));
    request(l, epoch, index + 1);
    pthread_mutex_unlock(&l->mu);
    return GV_OK;
}

static void stop_worker(gv_loader *l) {
    if (!l->thread_started) return;
    pthread_mutex_lock(&l->mu);
    l->stop = true;
    pthread_cond_signal(&l->cv_work);
    pthread_mutex_unlock(&l->mu);
    pthread_join(l->thread, NULL);
    l->thread_started = false;
}

/* ---- the public API ---------------------------------------------------- */

void gv_loader_free(gv_loader *l) {
    if (!l) return;
    stop_worker(l);
    if (l->sync_init) {
        pthread_cond_destroy(&l->cv_done);
        pthread_cond_destroy(&l->cv_work);
        pthread_mutex_destroy(&l->mu);
    }
    free(l->bg_msg);
    gv_tensor_free(l->back_x);
    gv_tensor_free(l->back_y);
    gv_tensor_free(l->x_last);
    gv_tensor_free(l->y_last);
    gv_tensor_free(l->x);
    gv_tensor_free(l->y);
    free(l->perm);
    gv_tensor_free(l->images);
    gv_tensor_free(l->labels);
    free(l);
}

gv_loader *gv_loader_new(const gv_dataset *d, const gv_loader_options *opts) {
    if (!d || !opts || !d->images || !d->labels) {
        gv_error(GV_ERR_ARG, "gv_loader_new: %s is NULL",
                 !d ? "the dataset" : !opts ? "opts" : "a dataset tensor");
        return NULL;
    }
    if (gv_data_check_pair(d->images, d->labels, "images", "labels")) {
        gv_error_prefix("gv_loader_new: ");
        return NULL;
    }
    int64_t n = gv_dataset_size(d), b = opts->batch_size;
    if (b <= 0) {
        gv_error(GV_ERR_ARG, "gv_loader_new: batch_size is %" PRId64 ", expected > 0", b);
        return NULL;
    }
    if (opts->drop_last && b > n) {
        gv_error(GV_ERR_ARG, "gv_loader_new: batch_size %" PRId64 " is larger than the dataset "
                 "(%" PRId64 " examples) and drop_last is set: an epoch would have no batch",
                 b, n);
        return NULL;
    }
    if (opts->impl != GV_PRNG_PARTITIONABLE && opts->impl != GV_PRNG_LEGACY) {
        gv_error(GV_ERR_ARG, "gv_loader_new: unknown PRNG impl %d", (int)opts->impl);
        return NULL;
    }
    gv_loader *l = calloc(1, sizeof *l);
    if (!l) {
        gv_error(GV_ERR_NOMEM, "gv_loader_new: out of memory");
        return NULL;
    }
    l->opts = *opts;
    l->images = gv_tensor_retain(d->images);
    l->labels = gv_tensor_retain(d->labels);
    l->n = n;
    l->row = gv_tensor_size(d->images) / n;
    l->batch = b;
    l->rows_alloc = b < n ? b : n;
    l->nbatches = n / b + (!opts->drop_last && n % b != 0);
    l->last_rows = opts->drop_last || n % b == 0 ? b : n % b;
    l->perm_epoch = -1;
    if (opts->shuffle && !(l->perm = malloc((size_t)n * sizeof *l->perm))) {
        gv_error(GV_ERR_NOMEM, "gv_loader_new: out of memory for an order of %" PRId64
                 " examples", n);
        goto fail;
    }
    l->x = gv_tensor_zeros(GV_F32, GV_DIMS(l->rows_alloc, l->row));
    l->y = gv_tensor_zeros(GV_I32, GV_DIMS(l->rows_alloc));
    if (!l->x || !l->y) goto prefix;
    if (l->last_rows != l->rows_alloc) {
        l->x_last = gv_data_rows_view(l->x, l->last_rows);
        l->y_last = gv_data_rows_view(l->y, l->last_rows);
        if (!l->x_last || !l->y_last) goto prefix;
    }
    if (opts->prefetch) {
        l->back_x = gv_tensor_zeros(GV_F32, GV_DIMS(l->rows_alloc, l->row));
        l->back_y = gv_tensor_zeros(GV_I32, GV_DIMS(l->rows_alloc));
        if (!l->back_x || !l->back_y) goto prefix;
        pthread_mutex_init(&l->mu, NULL);
        pthread_cond_init(&l->cv_work, NULL);
        pthread_cond_init(&l->cv_done, NULL);
        l->sync_init = true;
        int rc = pthread_create(&l->thread, NULL, worker_main, l);
        if (rc) {
            gv_error(GV_ERR_NOMEM, "gv_loader_new: cannot start the prefetch thread: %s",
                     strerror(rc));
            goto fail;
        }
        l->thread_started = true;
        pthread_mutex_lock(&l->mu);
        request(l, 0, 0);
        pthread_mutex_unlock(&l->mu);
    }
    return l;
prefix:
    gv_error_prefix("gv_loader_new: ");
fail:
    gv_loader_free(l);
    return NULL;
}

gv_status gv_loader_next(gv_loader *l, gv_batch *b) {
    if (!l || !b) return gv_error(GV_ERR_ARG, "gv_loader_next: NULL argument");
    b->x = NULL;
    b->y = NULL;
    b->epoch = l->epoch;
    b->index = l->index;
    if (l->index >= l->nbatches) { /* the end of the epoch, reported once */
        l->epoch++;
        l->index = 0;
        return GV_OK;
    }
    gv_status st = l->opts.prefetch
                       ? take_prefetched(l, l->epoch, l->index)
                       : fill(l, l->epoch, l->index, gv_tensor_data(l->x), gv_tensor_data(l->y));
    if (st)
        return gv_error_prefix("gv_loader_next: epoch %" PRId64 " batch %" PRId64 ": ",
                               l->epoch, l->index);
    bool last = rows_of(l, l->index) != l->rows_alloc;
    b->x = last ? l->x_last : l->x;
    b->y = last ? l->y_last : l->y;
    l->index++;
    return GV_OK;
}

gv_status gv_loader_seek(gv_loader *l, int64_t epoch, int64_t index) {
    if (!l) return gv_error(GV_ERR_ARG, "gv_loader_seek: loader is NULL");
    if (epoch < 0 || index < 0 || index > l->nbatches)
        return gv_error(GV_ERR_ARG, "gv_loader_seek: position (epoch %" PRId64 ", batch %" PRId64
                        ") is out of range: epoch >= 0, batch 0..%" PRId64, epoch, index,
                        l->nbatches);
    if (l->opts.prefetch) {
        /* let the worker finish its batch, drop it, and start on the new one */
        pthread_mutex_lock(&l->mu);
        wait_idle(l);
        l->bg_status = GV_OK;
        free(l->bg_msg);
        l->bg_msg = NULL;
        request(l, epoch, index);
        pthread_mutex_unlock(&l->mu);
    }
    l->epoch = epoch;
    l->index = index;
    return GV_OK;
}

void gv_loader_position(const gv_loader *l, int64_t *epoch, int64_t *index) {
    if (epoch) *epoch = l ? l->epoch : 0;
    if (index) *index = l ? l->index : 0;
}

int64_t gv_loader_batches_per_epoch(const gv_loader *l) { return l ? l->nbatches : 0; }
