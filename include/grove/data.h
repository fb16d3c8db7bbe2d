/* grove: datasets and the batch loader.
 *
 * IDX is the format MNIST and Fashion-MNIST ship in: a big-endian magic
 * 0x0000TTNN (TT = element type, NN = number of dims), NN big-endian u32
 * dims, then the elements. grove reads unsigned-byte IDX files (TT = 0x08),
 * plain or gzip-compressed (detected by content, not by name), and checks
 * every byte of the header and the exact length: a bad file is an error
 * naming the file and what was wrong, never a crash or a short read.
 *
 * A loader over your own arrays (any dtypes, the same leading axis):
 *
 *   gv_loader *ld = gv_loader_new_arrays((gv_tensor *[]){x, y}, 2, &(gv_loader_options){
 *       .batch_size = 128, .shuffle = true, .key = gv_prng_key(0), .prefetch = true});
 *   for (gv_batch b; gv_loader_next(ld, &b) == GV_OK && b.x; )
 *       step(b.arrays[0], b.arrays[1]);                // also b.x, b.y
 *
 * A loader over an image dataset (uint8 images / 255 as float32):
 *
 *   gv_dataset train;
 *   gv_fashion_mnist_load(NULL, "train", &train);      // or gv_mnist_load(dir, ...)
 *   gv_loader *ld = gv_loader_new(&train, &(gv_loader_options){
 *       .batch_size = 16, .shuffle = true, .key = gv_prng_key(0),
 *       .drop_last = true, .prefetch = true});
 *   for (gv_batch b; gv_loader_next(ld, &b) == GV_OK && b.x; ) ...
 *
 * gv_loader_new yields float32 images in [0, 1] flattened to [B, H*W] and
 * int32 labels [B]; gv_loader_new_arrays yields each array's rows as they
 * are. Both visit the examples in a new order each epoch: the order of epoch
 * e is jax.random.permutation(fold_in(key, e), n), so it depends only on the
 * key and the epoch: a run resumed at (epoch, batch) sees exactly the
 * batches it would have seen. Batch memory is allocated once. */
#ifndef GROVE_DATA_H
#define GROVE_DATA_H

#include "grove/random.h"
#include "grove/tensor.h"

#ifdef __cplusplus
extern "C" {
#endif

#pragma GCC visibility push(default) /* the public API: exported from libgrove.so */

/* ---- IDX files ---- */

/* Read an unsigned-byte IDX file (plain or .gz). Returns a new uint8 tensor
 * with the file's dims, NULL with the error set: GV_ERR_NOT_FOUND / GV_ERR_IO
 * for the OS, GV_ERR_FORMAT for a bad magic, element type, rank (1..8), a
 * zero or oversized dim, a truncated file, trailing bytes, or a corrupt gzip
 * stream (each message names the file). */
gv_tensor *gv_idx_read(const char *path);

/* Write a uint8 tensor (rank 1..8) as a plain IDX file, atomically
 * (temporary file, fsync, rename): for making slices of a dataset. */
gv_status gv_idx_write(const char *path, const gv_tensor *t, bool force);

/* ---- datasets ---- */

/* Images uint8 [n, H, W] (or any rank >= 2) and labels uint8 [n]. */
typedef struct gv_dataset {
    gv_tensor *images;
    gv_tensor *labels;
} gv_dataset;

/* Read an images file and a labels file and check they agree (same n, n > 0,
 * images rank >= 2, labels rank 1). On error *out is left empty. */
gv_status gv_dataset_load_idx(const char *images_path, const char *labels_path, gv_dataset *out);

/* The MNIST layout (also Fashion-MNIST's): in dir, split "train" or "t10k":
 * <split>-images-idx3-ubyte and <split>-labels-idx1-ubyte, each plain or
 * with ".gz" (plain is preferred when both exist). Also checks 28x28 images
 * and labels 0..9 (naming the file and the first bad index). */
gv_status gv_mnist_load(const char *dir, const char *split, gv_dataset *out);

/* Where the Debian package dataset-fashion-mnist puts the four .gz files. */
#define GV_FASHION_MNIST_DIR "/usr/share/datasets/fashion-mnist"

/* Fashion-MNIST (Xiao, Rasul, Vollgraf 2017; tfds "fashion_mnist"): as
 * gv_mnist_load on dir (NULL = GV_FASHION_MNIST_DIR), then the SHA-256 of
 * each file's uncompressed bytes is checked against the known one (the
 * digests scripts/fetch-mnist.sh checks), so a damaged or different file is
 * GV_ERR_FORMAT naming it and both digests.
 * A missing directory is GV_ERR_NOT_FOUND saying which package installs it.
 * dir may also be the uncompressed copy that
 * `scripts/fetch-mnist.sh --dataset fashion-mnist` makes. On error *out is
 * left empty. */
gv_status gv_fashion_mnist_load(const char *dir, const char *split, gv_dataset *out);

/* The class name of a Fashion-MNIST label ("T-shirt/top", "Trouser", ...,
 * "Ankle boot"), or NULL outside 0..9. A static string. */
const char *gv_fashion_mnist_class_name(int label);

/* The first n examples, 1 <= n <= size: views sharing d's data (no copy;
 * they keep it alive after d is freed). out may be d. */
gv_status gv_dataset_take(const gv_dataset *d, int64_t n, gv_dataset *out);
int64_t gv_dataset_size(const gv_dataset *d);
/* Frees both tensors and empties d; NULL or an empty dataset is a no-op. */
void gv_dataset_free(gv_dataset *d);

/* ---- the loader ---- */

typedef struct gv_loader gv_loader;

/* Which part of every batch this loader yields (grain's ShardOptions):
 * shard `index` of `count` takes rows [index*B/count, (index+1)*B/count) of
 * each global batch of B rows, all shards walking the same order, so
 * `count` loaders together see exactly the batches one loader sees. {0, 0}
 * (the default) and {0, 1} are the whole batch. B (and a last incomplete
 * batch's rows, without drop_last) must divide by count. */
typedef struct gv_shard {
    int64_t index, count;
} gv_shard;

/* This process's shard of a data-parallel job: {gv_process_index(),
 * gv_process_count()} (distributed.h); {0, 1} for a single process. */
gv_shard gv_shard_by_process(void);

typedef struct gv_loader_options {
    int64_t batch_size;    /* > 0 and <= the number of examples when drop_last */
    bool shuffle;          /* a new order each epoch from key; false = in order */
    gv_key key;            /* epoch e uses permutation(fold_in(key, e), n) */
    gv_prng_impl impl;     /* the PRNG scheme of the permutation */
    bool drop_last;        /* drop the last incomplete batch */
    bool prefetch;         /* fill the next batch on a background thread */
    gv_shard shard;        /* this loader's rows of each batch; {0} = all of them */
} gv_loader_options;

/* One batch. At the end of an epoch x, y and arrays are NULL. */
typedef struct gv_batch {
    gv_tensor *x;          /* arrays[0]; gv_loader_new: float32 [B, H*W] in [0, 1] */
    gv_tensor *y;          /* arrays[1] (NULL with one array); gv_loader_new: int32 [B] */
    int64_t epoch;         /* the epoch and index of this batch within it */
    int64_t index;
    gv_tensor *const *arrays; /* narrays tensors, in the order the loader was given */
    int narrays;
} gv_batch;

/* A loader over d (d's tensors are retained; d may be freed). New loader,
 * NULL with the error set for bad options. Starts at epoch 0, batch 0. */
gv_loader *gv_loader_new(const gv_dataset *d, const gv_loader_options *opts);

/* A loader over the rows of narrays arrays (what tf.data's
 * from_tensor_slices((x, y)) batches, or a torch TensorDataset): every array
 * has rank >= 1 and the same leading (example) axis n >= 1; each may have
 * any dtype and trailing shape. Batch i holds, for every array, the rows of
 * the same examples: b.arrays[k] has arrays[k]'s dtype and shape
 * [B, trailing dims...] (fewer rows for a last incomplete batch without
 * drop_last), and its bytes are exactly those rows' bytes. The arrays are
 * retained (the caller may free its references) and read, not copied, when
 * a batch is filled: do not write to them while the loader is in use. The
 * options and everything else are as for gv_loader_new. New loader, NULL
 * with the error set: GV_ERR_ARG for NULL arrays / opts, narrays < 1 and bad
 * options; GV_ERR_SHAPE for a rank-0 array, leading axes that differ (the
 * message names the array and both counts) or no examples. */
gv_loader *gv_loader_new_arrays(gv_tensor *const *arrays, int narrays,
                                const gv_loader_options *opts);
void gv_loader_free(gv_loader *l);

/* The next batch of the current epoch. At the end of an epoch b->x, b->y and
 * b->arrays are NULL once, and the loader moves on to the next epoch (the
 * following call returns its first batch). The tensors belong to the loader
 * and stay valid until the next call to gv_loader_next or gv_loader_seek;
 * they are the same tensors on every call (B is fixed), except a last
 * incomplete batch when drop_last is false, which is a view of their first
 * rows. */
gv_status gv_loader_next(gv_loader *l, gv_batch *b);

/* Jump to batch `index` of epoch `epoch` (index may equal batches_per_epoch:
 * the end of that epoch). Used to resume a run. */
gv_status gv_loader_seek(gv_loader *l, int64_t epoch, int64_t index);
/* Where the next gv_loader_next call reads. */
void gv_loader_position(const gv_loader *l, int64_t *epoch, int64_t *index);
int64_t gv_loader_batches_per_epoch(const gv_loader *l);

#pragma GCC visibility pop

#ifdef __cplusplus
}
#endif
#endif
