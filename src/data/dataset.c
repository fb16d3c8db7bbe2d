/* grove: datasets as a pair of uint8 tensors (images, labels), read from
 * IDX files; the MNIST / Fashion-MNIST layout and its checks, and
 * Fashion-MNIST's published checksums. */
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
    /* a shape-only tensor (jax.ShapeDtypeStruct) has no pixels or labels */
    if (!gv_tensor_data_const(images)) return gv_error_prefix("images '%s': ", iname);
    if (!gv_tensor_data_const(labels)) return gv_error_prefix("labels '%s': ", lname);
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

/* ---- Fashion-MNIST ------------------------------------------------------ */

/* SHA-256, FIPS 180-4 section 6.2: what the dataset's checksums are given in
 * (zlib has only CRC-32, which gzip already checks per member). */
static const uint32_t SHA256_K[64] = {
    0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4,
    0xab1c5ed5, 0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe,
    0x9bdc06a7, 0xc19bf174, 0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f,
    0x4a7484aa, 0x5cb0a9dc, 0x76f988da, 0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7,
    0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967, 0x27b70a85, 0x2e1b2138, 0x4d2c6dfc,
    0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85, 0xa2bfe8a1, 0xa81a664b,
    0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070, 0x19a4c116,
    0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
    0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7,
    0xc67178f2};

static uint32_t ror(uint32_t x, int n) { return x >> n | x << (32 - n); }

static void sha256_block(uint32_t h[8], const unsigned char *p) {
    uint32_t w[64];
    for (int t = 0; t < 16; t++)
        w[t] = (uint32_t)p[4 * t] << 24 | (uint32_t)p[4 * t + 1] << 16 |
               (uint32_t)p[4 * t + 2] << 8 | p[4 * t + 3];
    for (int t = 16; t < 64; t++) {
        uint32_t s0 = ror(w[t - 15], 7) ^ ror(w[t - 15], 18) ^ w[t - 15] >> 3;
        uint32_t s1 = ror(w[t - 2], 17) ^ ror(w[t - 2], 19) ^ w[t - 2] >> 10;
        w[t] = w[t - 16] + s0 + w[t - 7] + s1;
    }
    uint32_t a = h[0], b = h[1], c = h[2], d = h[3], e = h[4], f = h[5], g = h[6], k = h[7];
    for (int t = 0; t < 64; t++) {
        uint32_t t1 = k + (ror(e, 6) ^ ror(e, 11) ^ ror(e, 25)) + ((e & f) ^ (~e & g)) +
                      SHA256_K[t] + w[t];
        uint32_t t2 = (ror(a, 2) ^ ror(a, 13) ^ ror(a, 22)) + ((a & b) ^ (a & c) ^ (b & c));
        k = g, g = f, f = e, e = d + t1, d = c, c = b, b = a, a = t1 + t2;
    }
    h[0] += a, h[1] += b, h[2] += c, h[3] += d, h[4] += e, h[5] += f, h[6] += g, h[7] += k;
}

void gv_data_sha256_init(gv_sha256 *s) {
    static const uint32_t h0[8] = {0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a,
                                   0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19};
    memcpy(s->h, h0, sizeof h0);
    s->len = 0;
    s->nbuf = 0;
}

void gv_data_sha256_update(gv_sha256 *s, const void *data, size_t n) {
    const unsigned char *p = data;
    s->len += n;
    if (s->nbuf) {
        size_t take = n < 64 - s->nbuf ? n : 64 - s->nbuf;
        memcpy(s->buf + s->nbuf, p, take);
        s->nbuf += take, p += take, n -= take;
        if (s->nbuf < 64) return;
        sha256_block(s->h, s->buf);
        s->nbuf = 0;
    }
    for (; n >= 64; p += 64, n -= 64) sha256_block(s->h, p);
    memcpy(s->buf, p, n);
    s->nbuf = n;
}

void gv_data_sha256_hex(gv_sha256 *s, char hex[65]) {
    uint64_t bits = s->len * 8;
    unsigned char pad[72] = {0x80};
    size_t npad = (s->nbuf < 56 ? 56 : 120) - s->nbuf;
    for (int i = 0; i < 8; i++) pad[npad + (size_t)i] = (unsigned char)(bits >> (56 - 8 * i));
    gv_data_sha256_update(s, pad, npad + 8);
    for (int i = 0; i < 32; i++)
        snprintf(hex + 2 * i, 3, "%02x", (unsigned)(s->h[i / 4] >> (24 - 8 * (i % 4))) & 0xff);
}

/* The SHA-256 of the IDX file t was read from: the header is rebuilt from
 * t's dims (gv_idx_read accepts only the exact layout, so it is the file's),
 * then the elements. */
static void idx_sha256(const gv_tensor *t, char hex[65]) {
    gv_sha256 s;
    gv_data_sha256_init(&s);
    int rank = gv_tensor_rank(t);
    unsigned char magic[4] = {0, 0, 0x08, (unsigned char)rank};
    gv_data_sha256_update(&s, magic, 4);
    for (int i = 0; i < rank; i++) {
        uint32_t d = (uint32_t)gv_tensor_shape(t)[i];
        unsigned char be[4] = {(unsigned char)(d >> 24), (unsigned char)(d >> 16),
                               (unsigned char)(d >> 8), (unsigned char)d};
        gv_data_sha256_update(&s, be, 4);
    }
    gv_data_sha256_update(&s, gv_tensor_data_const(t), gv_tensor_nbytes(t));
    gv_data_sha256_hex(&s, hex);
}

/* The SHA-256 of each uncompressed file: the digests scripts/fetch-mnist.sh
 * checks, whatever the source (the Debian package, a cache). */
static const struct {
    const char *name, *sha256;
} FASHION_FILES[2][2] = {
    {{"train-images-idx3-ubyte",
      "c59f468a2f672dc815687fe0f83887768d799fd8a3f3276145d20f83aa44d888"},
     {"train-labels-idx1-ubyte",
      "bad3541b69d912435c50bb6ba87bec294ff4f6a2e1246121d8633921760443d9"}},
    {{"t10k-images-idx3-ubyte",
      "5b4141f0afbad91edebe8549f8fcffe087ea10ca49f1dbef5c9a5cd8815ce37b"},
     {"t10k-labels-idx1-ubyte",
      "0402a96d92fd2663957122ceb108a494c5af83dab82d92729df917d7dec38c34"}},
};

/* t, read from dir/<name>[.gz], against the digest want. */
static gv_status check_sha256(const gv_tensor *t, const char *want, const char *dir,
                              const char *name) {
    char got[65];
    idx_sha256(t, got);
    if (strcmp(got, want) == 0) return GV_OK;
    char *path = find_file(dir, name);
    gv_clear_error();
    gv_status st = gv_error(GV_ERR_FORMAT, "'%s': the uncompressed file has SHA-256 %s, "
                            "Fashion-MNIST's is %s: a damaged or different file",
                            path ? path : name, got, want);
    free(path);
    return st;
}

gv_status gv_fashion_mnist_load(const char *dir, const char *split, gv_dataset *out) {
    if (!out) return gv_error(GV_ERR_ARG, "gv_fashion_mnist_load: out is NULL");
    dataset_clear(out);
    if (!dir) dir = GV_FASHION_MNIST_DIR;
    struct stat sb;
    if (stat(dir, &sb) != 0 && errno == ENOENT)
        return gv_error(GV_ERR_NOT_FOUND, "gv_fashion_mnist_load: '%s' does not exist: install "
                        "the Debian package dataset-fashion-mnist (scripts/install-deps.sh), or "
                        "run scripts/fetch-mnist.sh --dataset fashion-mnist", dir);
    gv_dataset d;
    if (gv_mnist_load(dir, split, &d)) return gv_error_prefix("gv_fashion_mnist_load: ");
    int k = strcmp(split, "train") == 0 ? 0 : 1; /* gv_mnist_load accepted the split */
    gv_status st = GV_OK;
    for (int f = 0; f < 2 && !st; f++)
        st = check_sha256(f ? d.labels : d.images, FASHION_FILES[k][f].sha256, dir,
                          FASHION_FILES[k][f].name);
    if (st) {
        gv_dataset_free(&d);
        return gv_error_prefix("gv_fashion_mnist_load: ");
    }
    *out = d;
    return GV_OK;
}

const char *gv_fashion_mnist_class_name(int label) {
    /* the dataset's README, "Labels" */
    static const char *const names[10] = {"T-shirt/top", "Trouser", "Pullover", "Dress",
                                          "Coat", "Sandal", "Shirt", "Sneaker", "Bag",
                                          "Ankle boot"};
    return label >= 0 && label < 10 ? names[label] : NULL;
}
