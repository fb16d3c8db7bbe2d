/* grove: datasets as a pair of uint8 tensors (images, labels), read from
 * IDX files; the MNIST / Fashion-MNIST layout and its checks. */
#define _GNU_SOURCE
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "core/error.h"
#include "core/tensor_internal.h"
#include "data/data_internal.h"
#include "grove/data.h"

gv_tensor *gv_data_rows_view(gv_tensor *t, int64_t n) {
    if (!t || t->rank < 1 || n < 0 || n > t->shape[0]) {
        gv_error(GV_ERR_ARG, "gv_data_rows_view: bad tensor or row count %" PRId64, n);
        return NULL;
    }
    gv_tensor *v = calloc(1, sizeof *v);
    int64_t *dims = malloc((size_t)t->rank * sizeof *dims);
    if (!v || !dims) {
        free(v), free(dims);
        gv_error(GV_ERR_NOMEM, "out of memory for a tensor view");
        return NULL;
    }
    memcpy(dims, t->shape, (size_t)t->rank * sizeof *dims);
    dims[0] = n;
    int64_t row = 1;
    for (int i = 1; i < t->rank; i++) row *= t->shape[i];
    atomic_init(&v->refcount, 1);
    v->dtype = t->dtype;
    v->rank = t->rank;
    v->shape = dims;
    v->size = n * row; /* <= t->size, so it fits */
    v->storage = t->storage;
    v->offset = t->offset; /* the first rows start where t starts */
    atomic_fetch_add_explicit(&t->storage->refcount, 1, memory_order_relaxed);
    return v;
}

static void dataset_clear(gv_dataset *d) {
    d->images = NULL;
    d->labels = NULL;
}

gv_status gv_data_check_pair(const gv_tensor *images, const gv_tensor *labels, const char *iname,
                             const char *lname) {
    if (gv_tensor_dtype(images) != GV_U8 || gv_tensor_dtype(labels) != GV_U8)
        return gv_error(GV_ERR_DTYPE, "images '%s' (%s) and labels '%s' (%s) must be uint8",
                        iname, gv_dtype_name(gv_tensor_dtype(images)), lname,
                        gv_dtype_name(gv_tensor_dtype(labels)));
    if (gv_tensor_rank(images) < 2)
        return gv_error(GV_ERR_SHAPE, "images '%s' have rank %d, expected rank >= 2 "
                        "([n, H, W] or [n, features])", iname, gv_tensor_rank(images));
    if (gv_tensor_rank(labels) != 1)
        return gv_error(GV_ERR_SHAPE, "labels '%s' have rank %d, expected rank 1 ([n])", lname,
                        gv_tensor_rank(labels));
    int64_t ni = gv_tensor_shape(images)[0], nl = gv_tensor_shape(labels)[0];
    if (ni != nl)
        return gv_error(GV_ERR_SHAPE, "'%s' has %" PRId64 " images but '%s' has %" PRId64
                        " labels", iname, ni, lname, nl);
    if (ni < 1) return gv_error(GV_ERR_SHAPE, "'%s' and '%s' hold no examples", iname, lname);
    return GV_OK;
}

gv_status gv_dataset_load_idx(const char *images_path, const char *labels_path,
                              gv_dataset *out) {
    if (!out) return gv_error(GV_ERR_ARG, "gv_dataset_load_idx: out is NULL");
    dataset_clear(out);
    if (!images_path || !labels_path)
        return gv_error(GV_ERR_ARG, "gv_dataset_load_idx: a path is NULL");
    gv_tensor *images = gv_idx_read(images_path);
    if (!images) return gv_error_prefix("gv_dataset_load_idx: images: ");
    gv_tensor *labels = gv_idx_read(labels_path);
    if (!labels) {
        gv_tensor_free(images);
        return gv_error_prefix("gv_dataset_load_idx: labels: ");
    }
    gv_status st = gv_data_check_pair(images, labels, images_path, labels_path);
    if (st) {
        gv_tensor_free(images);
        gv_tensor_free(labels);
        return gv_error_prefix("gv_dataset_load_idx: ");
    }
    out->images = images;
    out->labels = labels;
    return GV_OK;
}

/* dir/name if it exists, else dir/name.gz if that exists, else NULL with
 * GV_ERR_NOT_FOUND (or another error) set. Caller frees. */
static char *find_file(const char *dir, const char *name) {
    size_t n = strlen(dir) + strlen(name) + 8;
    char *plain = malloc(n), *gz = malloc(n);
    if (!plain || !gz) {
        free(plain), free(gz);
        gv_error(GV_ERR_NOMEM, "out of memory for a path");
        return NULL;
    }
    snprintf(plain, n, "%s/%s", dir, name);
    snprintf(gz, n, "%s/%s.gz", dir, name);
    struct stat sb;
    if (stat(plain, &sb) == 0) return free(gz), plain;
    int e1 = errno;
    if (stat(gz, &sb) == 0) return free(plain), gz;
    if (e1 == ENOENT && errno == ENOENT)
        gv_error(GV_ERR_NOT_FOUND, "neither '%s' nor '%s' exists (scripts/fetch-mnist.sh "
                 "downloads MNIST)", plain, gz);
    else
        gv_error(GV_ERR_IO, "cannot stat '%s': %s", plain, strerror(e1 != ENOENT ? e1 : errno));
    free(plain), free(gz);
    return NULL;
}

gv_status gv_mnist_load(const char *dir, const char *split, gv_dataset *out) {
    if (!out) return gv_error(GV_ERR_ARG, "gv_mnist_load: out is NULL");
    dataset_clear(out);
    if (!dir || !*dir) return gv_error(GV_ERR_ARG, "gv_mnist_load: dir is NULL or empty");
    if (!split || (strcmp(split, "train") != 0 && strcmp(split, "t10k") != 0))
        return gv_error(GV_ERR_ARG, "gv_mnist_load: split '%s', expected \"train\" or \"t10k\"",
                        split ? split : "(null)");
    char iname[64], lname[64];
    snprintf(iname, sizeof iname, "%s-images-idx3-ubyte", split);
    snprintf(lname, sizeof lname, "%s-labels-idx1-ubyte", split);
    char *ipath = find_file(dir, iname);
    char *lpath = ipath ? find_file(dir, lname) : NULL;
    if (!ipath || !lpath) {
        free(ipath);
        return gv_error_prefix("gv_mnist_load: ");
    }
    gv_dataset d;
    gv_status st = gv_dataset_load_idx(ipath, lpath, &d);
    if (st) {
        gv_error_prefix("gv_mnist_load: ");
        goto done;
    }
    const int64_t *s = gv_tensor_shape(d.images);
    if (gv_tensor_rank(d.images) != 3 || s[1] != 28 || s[2] != 28) {
        char shape[64] = "";
        for (int i = 1, o = 0; i < gv_tensor_rank(d.images) && o < (int)sizeof shape; i++)
            o += snprintf(shape + o, sizeof shape - (size_t)o, i > 1 ? "x%" PRId64 : "%" PRId64,
                          s[i]);
        st = gv_error(GV_ERR_SHAPE, "gv_mnist_load: '%s': images are %s, MNIST images are "
                      "28x28", ipath, shape);
        goto fail;
    }
    const uint8_t *y = gv_tensor_data_const(d.labels);
    for (int64_t i = 0; i < gv_tensor_size(d.labels); i++)
        if (y[i] > 9) {
            st = gv_error(GV_ERR_FORMAT, "gv_mnist_load: '%s': label %u at index %" PRId64
                          " is out of range 0..9", lpath, (unsigned)y[i], i);
            goto fail;
        }
    *out = d;
    goto done;
fail:
    gv_dataset_free(&d);
done:
    free(ipath);
    free(lpath);
    return st;
}

gv_status gv_dataset_take(const gv_dataset *d, int64_t n, gv_dataset *out) {
    if (!d || !out) return gv_error(GV_ERR_ARG, "gv_dataset_take: NULL argument");
    if (!d->images || !d->labels)
        return gv_error(GV_ERR_ARG, "gv_dataset_take: the dataset is empty");
    gv_status st = gv_data_check_pair(d->images, d->labels, "images", "labels");
    if (st) return gv_error_prefix("gv_dataset_take: ");
    int64_t size = gv_dataset_size(d);
    if (n < 1 || n > size)
        return gv_error(GV_ERR_ARG, "gv_dataset_take: n = %" PRId64 " is out of range 1..%"
                        PRId64, n, size);
    gv_tensor *images = gv_data_rows_view(d->images, n);
    gv_tensor *labels = images ? gv_data_rows_view(d->labels, n) : NULL;
    if (!labels) {
        gv_tensor_free(images);
        return gv_error_prefix("gv_dataset_take: ");
    }
    if (out == d) gv_dataset_free(out); /* the views keep the data alive */
    out->images = images;
    out->labels = labels;
    return GV_OK;
}

int64_t gv_dataset_size(const gv_dataset *d) {
    if (!d) return 0;
    if (d->labels && gv_tensor_rank(d->labels) >= 1) return gv_tensor_shape(d->labels)[0];
    if (d->images && gv_tensor_rank(d->images) >= 1) return gv_tensor_shape(d->images)[0];
    return 0;
}

void gv_dataset_free(gv_dataset *d) {
    if (!d) return;
    gv_tensor_free(d->images);
    gv_tensor_free(d->labels);
    dataset_clear(d);
}
