/* grove: the batch loader (the role tf.data / a torch DataLoader plays in
 * the Flax MNIST tutorial), deterministic by construction.
 *
 * A loader reads the rows (entries along axis 0) of one or more source
 * tensors that share that axis, and gathers B of them into one output tensor
 * per source. gv_loader_new_arrays copies the rows as they are (any dtype,
 * any trailing shape); gv_loader_new is the same loader over a dataset's two
 * uint8 tensors, with the images converted to float32 / 255 and flattened,
 * and the labels widened to int32.
 *
 * Order: epoch e visits the examples in the order
 *   jax.random.permutation(jax.random.fold_in(key, e), n)
 * (or 0..n-1 without shuffle), and batch i of epoch e holds the entries
 * [i*B, min((i+1)*B, n)) of that order. So a batch depends only on (key, e,
 * i): gv_loader_seek(e, i) resumes a run exactly where it stopped.
 *
 * Buffers: the returned tensors [B, ...] are allocated once (with views of
 * their first rows for a last incomplete batch) and refilled on every call;
 * their data pointers never change, so a view or a plan bound to them stays
 * valid.
 *
 * Prefetch (double buffering): a worker thread fills batch i+1 into its own
 * buffers while the caller uses batch i; gv_loader_next waits for it and
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

/* How a source row becomes an output row. */
typedef enum conv {
    CONV_COPY,   /* the bytes as they are: gv_loader_new_arrays */
    CONV_PIXELS, /* uint8 -> float32 / 255, flattened: a dataset's images */
    CONV_LABELS, /* uint8 -> int32: a dataset's labels */
} conv;

typedef struct source {
    gv_tensor *src;     /* retained */
    conv conv;
    int64_t row;        /* elements per example */
    size_t src_bytes;   /* bytes per example in src */
    size_t out_bytes;   /* bytes per example in the batch */
} source;

struct gv_loader {
    int nsrc;
    source *src;
    int64_t n;                  /* examples */
    int64_t batch, rows_alloc;  /* B (global), and the rows allocated: min(B, n) / nshards */
    int64_t nbatches, last_rows; /* last_rows: this shard's rows of the last batch */
    int64_t nshards, shard;     /* this loader yields shard `shard` of `nshards` of each batch */
    gv_loader_options opts;

    /* caller side */
    int64_t epoch, index;   /* where the next gv_loader_next reads */
    gv_tensor **out;        /* nsrc batch tensors [rows_alloc, ...] */
    gv_tensor **out_last;   /* views of their first last_rows rows, or NULL */

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
    bool ready; /* back holds batch (ready_epoch, ready_index) */
    int64_t ready_epoch, ready_index;
    gv_status bg_status;
    char *bg_msg;
    gv_tensor **back; /* the worker's buffers, nsrc, like out */
};

/* This shard's rows of batch `index`. */
static int64_t rows_of(const gv_loader *l, int64_t index) {
    return index == l->nbatches - 1 ? l->last_rows : l->batch / l->nshards;
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

/* Rows order[0..rows) of s into dst (rows x s->out_bytes). */
static void gather(const source *s, const int64_t *order, int64_t rows, void *dst) {
    const uint8_t *base = gv_tensor_data_const(s->src);
    int64_t row = s->row;
    switch (s->conv) {
    case CONV_COPY:
        for (int64_t r = 0; r < rows; r++)
            memcpy((char *)dst + (size_t)r * s->out_bytes, base + (size_t)order[r] * s->src_bytes,
                   s->src_bytes);
        break;
    case CONV_PIXELS:
        for (int64_t r = 0; r < rows; r++) {
            const uint8_t *restrict src = base + order[r] * row;
            float *restrict x = (float *)dst + r * row;
            /* float32 pixel / 255, as tf.cast(x, tf.float32) / 255. in the Flax tutorial
             * (for bytes also equal to (x / 255.0).astype(float32): checked for all 256) */
            for (int64_t k = 0; k < row; k++) x[k] = (float)src[k] / 255.0f;
        }
        break;
    case CONV_LABELS:
        for (int64_t r = 0; r < rows; r++) {
            const uint8_t *restrict src = base + order[r] * row;
            int32_t *restrict y = (int32_t *)dst + r * row;
            for (int64_t k = 0; k < row; k++) y[k] = src[k];
        }
        break;
    }
}

/* Batch (epoch, index) into dst[0..nsrc) (l->out or l->back). */
static gv_status fill(gv_loader *l, int64_t epoch, int64_t index, gv_tensor **dst) {
    gv_status st = ensure_perm(l, epoch);
    if (st) return st;
    int64_t rows = rows_of(l, index), start = index * l->batch + l->shard * rows;
    /* without shuffle the order is 0..n-1: l->perm is then the identity,
     * written once by loader_create */
    const int64_t *order = l->perm + start;
    for (int i = 0; i < l->nsrc; i++) gather(&l->src[i], order, rows, gv_tensor_data(dst[i]));
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

        gv_status st = fill(l, epoch, index, l->back);
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

/* Batch (epoch, index) from the worker into l->out, then queue the next one. */
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
    for (int i = 0; i < l->nsrc; i++)
        memcpy(gv_tensor_data(l->out[i]), gv_tensor_data_const(l->back[i]),
               (size_t)rows * l->src[i].out_bytes);
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

static gv_status start_worker(gv_loader *l) {
    pthread_mutex_init(&l->mu, NULL);
    pthread_cond_init(&l->cv_work, NULL);
    pthread_cond_init(&l->cv_done, NULL);
    l->sync_init = true;
    int rc = pthread_create(&l->thread, NULL, worker_main, l);
    if (rc) return gv_error(GV_ERR_NOMEM, "cannot start the prefetch thread: %s", strerror(rc));
    l->thread_started = true;
    pthread_mutex_lock(&l->mu);
    request(l, 0, 0);
    pthread_mutex_unlock(&l->mu);
    return GV_OK;
}

/* ---- construction ------------------------------------------------------ */

static void free_tensors(gv_tensor **t, int n) {
    if (!t) return;
    for (int i = 0; i < n; i++) gv_tensor_free(t[i]);
    free(t);
}

void gv_loader_free(gv_loader *l) {
    if (!l) return;
    stop_worker(l);
    if (l->sync_init) {
        pthread_cond_destroy(&l->cv_done);
        pthread_cond_destroy(&l->cv_work);
        pthread_mutex_destroy(&l->mu);
    }
    free(l->bg_msg);
    free_tensors(l->back, l->nsrc);
    free_tensors(l->out_last, l->nsrc);
    free_tensors(l->out, l->nsrc);
    free(l->perm);
    for (int i = 0; l->src && i < l->nsrc; i++) gv_tensor_free(l->src[i].src);
    free(l->src);
    free(l);
}

/* The options against n examples. */
static gv_status check_options(const gv_loader_options *opts, int64_t n) {
    int64_t b = opts->batch_size;
    if (b <= 0) return gv_error(GV_ERR_ARG, "batch_size is %" PRId64 ", expected > 0", b);
    if (opts->drop_last && b > n)
        return gv_error(GV_ERR_ARG, "batch_size %" PRId64 " is larger than the dataset (%" PRId64
                        " examples) and drop_last is set: an epoch would have no batch", b, n);
    if (opts->impl != GV_PRNG_PARTITIONABLE && opts->impl != GV_PRNG_LEGACY)
        return gv_error(GV_ERR_ARG, "unknown PRNG impl %d", (int)opts->impl);
    gv_shard sh = opts->shard;
    if (sh.count == 0 && sh.index == 0) return GV_OK;
    if (sh.count < 1 || sh.index < 0 || sh.index >= sh.count)
        return gv_error(GV_ERR_ARG, "shard {index %" PRId64 ", count %" PRId64 "}: expected "
                        "count >= 1 and 0 <= index < count", sh.index, sh.count);
    if (b % sh.count)
        return gv_error(GV_ERR_ARG, "batch_size %" PRId64 " does not divide into %" PRId64
                        " equal shards", b, sh.count);
    int64_t last = n % b;
    if (!opts->drop_last && last % sh.count)
        return gv_error(GV_ERR_ARG, "the last batch of an epoch has %" PRId64 " examples "
                        "(%" PRId64 " %% %" PRId64 "), which do not divide into %" PRId64
                        " equal shards: set drop_last, or pick a batch size that divides the "
                        "data", last, n, b, sh.count);
    return GV_OK;
}

/* A batch tensor for s with `rows` rows: the source's dtype and trailing dims
 * for a copy, [rows, row] float32 for pixels, [rows] int32 for labels. */
static gv_tensor *batch_tensor(const source *s, int64_t rows) {
    if (s->conv == CONV_PIXELS) return gv_tensor_zeros(GV_F32, GV_DIMS(rows, s->row));
    if (s->conv == CONV_LABELS) return gv_tensor_zeros(GV_I32, GV_DIMS(rows));
    int rank = gv_tensor_rank(s->src);
    int64_t *dims = malloc((size_t)rank * sizeof *dims);
    if (!dims) {
        gv_error(GV_ERR_NOMEM, "out of memory for a shape");
        return NULL;
    }
    memcpy(dims, gv_tensor_shape(s->src), (size_t)rank * sizeof *dims);
    dims[0] = rows;
    gv_tensor *t = gv_tensor_zeros(gv_tensor_dtype(s->src), rank, dims);
    free(dims);
    return t;
}

/* nsrc batch tensors of rows_alloc rows each (into a new array *out). */
static gv_status alloc_batch(gv_loader *l, gv_tensor ***out) {
    if (!(*out = calloc((size_t)l->nsrc, sizeof **out)))
        return gv_error(GV_ERR_NOMEM, "out of memory");
    for (int i = 0; i < l->nsrc; i++)
        if (!((*out)[i] = batch_tensor(&l->src[i], l->rows_alloc)))
            return gv_error_prefix("source %d: ", i);
    return GV_OK;
}

/* The batch tensors, the views for a short last batch, the order buffer and
 * the prefetch buffers and thread. */
static gv_status loader_alloc(gv_loader *l) {
    gv_status st = alloc_batch(l, &l->out);
    if (st) return st;
    if (l->last_rows != l->rows_alloc) {
        if (!(l->out_last = calloc((size_t)l->nsrc, sizeof *l->out_last)))
            return gv_error(GV_ERR_NOMEM, "out of memory");
        for (int i = 0; i < l->nsrc; i++)
            if (!(l->out_last[i] = gv_data_rows_view(l->out[i], l->last_rows)))
                return GV_ERR_NOMEM;
    }
    if (!(l->perm = malloc((size_t)l->n * sizeof *l->perm)))
        return gv_error(GV_ERR_NOMEM, "out of memory for an order of %" PRId64 " examples", l->n);
    for (int64_t i = 0; i < l->n; i++) l->perm[i] = i; /* the order without shuffle */
    if (!l->opts.prefetch) return GV_OK;
    if ((st = alloc_batch(l, &l->back))) return st;
    return start_worker(l);
}

/* A loader over nsrc sources with n rows each; convs[i] says how source i
 * is read. fn names the public function in messages. */
static gv_loader *loader_create(const char *fn, gv_tensor *const *srcs, const conv *convs,
                                int nsrc, int64_t n, const gv_loader_options *opts) {
    if (check_options(opts, n)) {
        gv_error_prefix("%s: ", fn);
        return NULL;
    }
    gv_loader *l = calloc(1, sizeof *l);
    source *src = calloc((size_t)nsrc, sizeof *src);
    if (!l || !src) {
        free(l), free(src);
        gv_error(GV_ERR_NOMEM, "%s: out of memory", fn);
        return NULL;
    }
    l->src = src;
    l->nsrc = nsrc;
    for (int i = 0; i < nsrc; i++) {
        source *s = &src[i];
        s->src = gv_tensor_retain(srcs[i]);
        s->conv = convs[i];
        s->row = gv_tensor_size(srcs[i]) / n;
        s->src_bytes = (size_t)s->row * gv_dtype_size(gv_tensor_dtype(srcs[i]));
        s->out_bytes = s->conv == CONV_COPY ? s->src_bytes : (size_t)s->row * 4;
    }
    int64_t b = opts->batch_size;
    l->opts = *opts;
    l->n = n;
    l->batch = b;
    l->nshards = opts->shard.count > 0 ? opts->shard.count : 1;
    l->shard = opts->shard.index;
    l->rows_alloc = (b < n ? b : n) / l->nshards;
    l->nbatches = n / b + (!opts->drop_last && n % b != 0);
    l->last_rows = (opts->drop_last || n % b == 0 ? b : n % b) / l->nshards;
    l->perm_epoch = -1;
    if (loader_alloc(l)) {
        gv_error_prefix("%s: ", fn);
        gv_loader_free(l);
        return NULL;
    }
    return l;
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
    return loader_create("gv_loader_new", (gv_tensor *[]){d->images, d->labels},
                         (conv[]){CONV_PIXELS, CONV_LABELS}, 2, gv_dataset_size(d), opts);
}

/* Every array non-NULL, rank >= 1, with the leading axis of arrays[0] and
 * at least one example. */
static gv_status check_arrays(gv_tensor *const *arrays, int narrays) {
    if (!arrays) return gv_error(GV_ERR_ARG, "arrays is NULL");
    if (narrays < 1) return gv_error(GV_ERR_ARG, "%d arrays, expected at least 1", narrays);
    for (int i = 0; i < narrays; i++) {
        if (!arrays[i]) return gv_error(GV_ERR_ARG, "arrays[%d] is NULL", i);
        if (gv_tensor_rank(arrays[i]) < 1)
            return gv_error(GV_ERR_SHAPE, "arrays[%d] is a scalar (rank 0): it has no leading "
                            "(example) axis to batch along", i);
        /* a shape-only tensor (jax.ShapeDtypeStruct) has no rows to batch */
        if (!gv_tensor_data_const(arrays[i])) return gv_error_prefix("arrays[%d]: ", i);
        int64_t ni = gv_tensor_dim(arrays[i], 0), n0 = gv_tensor_dim(arrays[0], 0);
        if (ni != n0)
            return gv_error(GV_ERR_SHAPE, "arrays[%d] has %" PRId64 " examples (leading axis) "
                            "but arrays[0] has %" PRId64 ": every array needs one entry per "
                            "example", i, ni, n0);
    }
    if (gv_tensor_dim(arrays[0], 0) < 1)
        return gv_error(GV_ERR_SHAPE, "the arrays hold no examples (leading axis 0)");
    return GV_OK;
}

gv_loader *gv_loader_new_arrays(gv_tensor *const *arrays, int narrays,
                                const gv_loader_options *opts) {
    if (!opts) {
        gv_error(GV_ERR_ARG, "gv_loader_new_arrays: opts is NULL");
        return NULL;
    }
    if (check_arrays(arrays, narrays)) {
        gv_error_prefix("gv_loader_new_arrays: ");
        return NULL;
    }
    conv *convs = calloc((size_t)narrays, sizeof *convs); /* all CONV_COPY */
    if (!convs) {
        gv_error(GV_ERR_NOMEM, "gv_loader_new_arrays: out of memory");
        return NULL;
    }
    gv_loader *l = loader_create("gv_loader_new_arrays", arrays, convs, narrays,
                                 gv_tensor_dim(arrays[0], 0), opts);
    free(convs);
    return l;
}

/* ---- reading ----------------------------------------------------------- */

gv_status gv_loader_next(gv_loader *l, gv_batch *b) {
    if (!l || !b) return gv_error(GV_ERR_ARG, "gv_loader_next: NULL argument");
    *b = (gv_batch){.epoch = l->epoch, .index = l->index, .narrays = l->nsrc};
    if (l->index >= l->nbatches) { /* the end of the epoch, reported once */
        l->epoch++;
        l->index = 0;
        return GV_OK;
    }
    gv_status st = l->opts.prefetch ? take_prefetched(l, l->epoch, l->index)
                                    : fill(l, l->epoch, l->index, l->out);
    if (st)
        return gv_error_prefix("gv_loader_next: epoch %" PRId64 " batch %" PRId64 ": ",
                               l->epoch, l->index);
    bool last = rows_of(l, l->index) != l->rows_alloc;
    b->arrays = last ? l->out_last : l->out;
    b->x = b->arrays[0];
    b->y = l->nsrc > 1 ? b->arrays[1] : NULL;
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
