/* gv_loader_*: the order of every epoch (a permutation, equal to
 * permutation(fold_in(key, e), n) computed directly, the same for the same
 * key, different across keys and epochs), batch counts with and without
 * drop_last, the end-of-epoch marker, the reused tensors, values exactly
 * pixel / 255, prefetch == no prefetch bit for bit, seek == reading through,
 * and the option errors.
 *
 * The dataset makes every example recognisable: example i has label
 * i % 256 and its first two pixels are i % 256 and i / 256, so the index
 * of each row of a batch can be read back from x. */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "grove/data.h"
#include "testutil.h"

enum { H = 2, W = 3, ROW = H * W };

/* n examples [n, H, W]: pixel 0 = i % 256, pixel 1 = i / 256, pixel k >= 2
 * = (7 i + 13 k) % 256; label = i % 256. */
static gv_dataset make_dataset(int64_t n) {
    gv_dataset d;
    d.images = GVT_NN(gv_tensor_zeros(GV_U8, GV_DIMS(n, H, W)));
    d.labels = GVT_NN(gv_tensor_zeros(GV_U8, GV_DIMS(n)));
    uint8_t *p = gv_tensor_data(d.images), *y = gv_tensor_data(d.labels);
    for (int64_t i = 0; i < n; i++) {
        p[i * ROW] = (uint8_t)(i % 256);
        p[i * ROW + 1] = (uint8_t)(i / 256);
        for (int k = 2; k < ROW; k++) p[i * ROW + k] = (uint8_t)((7 * i + 13 * k) % 256);
        y[i] = (uint8_t)(i % 256);
    }
    return d;
}

static int64_t example_of(const float *x) {
    return lrintf(x[0] * 255.0f) + 256 * lrintf(x[1] * 255.0f);
}

/* Read one epoch: the example indices in the order they came (order[n_max])
 * and the number of batches; checks shapes, dtypes, positions, labels and
 * exact values on the way (false + why on the first problem). */
typedef struct epoch_read {
    int64_t count, batches, epoch;
    int64_t rows_of_last;
} epoch_read;

static bool read_epoch(gv_loader *l, const gv_dataset *d, int64_t *order, int64_t n_max,
                       epoch_read *er, char *why, size_t cap) {
    memset(er, 0, sizeof *er);
    gv_loader_position(l, &er->epoch, NULL);
    const uint8_t *img = gv_tensor_data_const(d->images);
    const uint8_t *lab = gv_tensor_data_const(d->labels);
    for (;;) {
        gv_batch b;
        if (gv_loader_next(l, &b) != GV_OK) {
            snprintf(why, cap, "gv_loader_next: %s", gv_last_error());
            return false;
        }
        if (b.epoch != er->epoch || b.index != er->batches) {
            snprintf(why, cap, "batch at (%lld, %lld), expected (%lld, %lld)",
                     (long long)b.epoch, (long long)b.index, (long long)er->epoch,
                     (long long)er->batches);
            return false;
        }
        if (!b.x) {
            if (b.y) return snprintf(why, cap, "x NULL but y not"), false;
            return true;
        }
        int64_t rows = gv_tensor_dim(b.x, 0);
        if (gv_tensor_dtype(b.x) != GV_F32 || gv_tensor_dtype(b.y) != GV_I32 ||
            gv_tensor_rank(b.x) != 2 || gv_tensor_dim(b.x, 1) != ROW ||
            gv_tensor_rank(b.y) != 1 || gv_tensor_dim(b.y, 0) != rows)
            return snprintf(why, cap, "bad batch shapes or dtypes"), false;
        const float *x = gv_tensor_data_const(b.x);
        const int32_t *y = gv_tensor_data_const(b.y);
        for (int64_t r = 0; r < rows; r++) {
            int64_t e = example_of(x + r * ROW);
            if (e < 0 || e >= gv_dataset_size(d) || er->count >= n_max)
                return snprintf(why, cap, "row %lld: example %lld?", (long long)r,
                                (long long)e), false;
            for (int k = 0; k < ROW; k++)
                if (x[r * ROW + k] != (float)img[e * ROW + k] / 255.0f)
                    return snprintf(why, cap, "example %lld pixel %d: %.9g", (long long)e, k,
                                    (double)x[r * ROW + k]), false;
            if (y[r] != lab[e])
                return snprintf(why, cap, "example %lld: label %d", (long long)e, y[r]), false;
            order[er->count++] = e;
        }
        er->rows_of_last = rows;
        er->batches++;
    }
}

/* Every index 0..n-1 exactly once. */
static bool is_permutation(const int64_t *order, int64_t count, int64_t n) {
    if (count != n) return false;
    char *seen = calloc((size_t)n, 1);
    bool ok = true;
    for (int64_t i = 0; i < n && ok; i++) {
        ok = order[i] >= 0 && order[i] < n && !seen[order[i]];
        if (ok) seen[order[i]] = 1;
    }
    free(seen);
    return ok;
}

#define READ_EPOCH(l, d, order, n_max, er)                                     \
    do {                                                                       \
        char why_[512] = "";                                                   \
        cr_assert(read_epoch((l), (d), (order), (n_max), (er), why_, sizeof why_), "%s", why_); \
    } while (0)

static gv_loader *loader(const gv_dataset *d, int64_t b, bool shuffle, uint32_t seed,
                         bool drop_last, bool prefetch) {
    return GVT_NN(gv_loader_new(d, &(gv_loader_options){.batch_size = b, .shuffle = shuffle,
                                                         .key = gv_prng_key(seed),
                                                         .drop_last = drop_last,
                                                         .prefetch = prefetch}));
}

/* ---- order ---------------------------------------------------------------- */

Test(loader, order_is_permutation_of_fold_in_key_epoch) {
    enum { N = 300 };
    gv_dataset d = make_dataset(N);
    gv_prng_impl impls[2] = {GV_PRNG_DEFAULT, GV_PRNG_LEGACY};
    for (int im = 0; im < 2; im++) {
        gv_key key = gv_prng_key(42);
        gv_loader *l = GVT_NN(gv_loader_new(&d, &(gv_loader_options){
            .batch_size = 7, .shuffle = true, .key = key, .impl = impls[im],
            .prefetch = im == 1}));
        int64_t order[N];
        bool same = true;
        for (int64_t e = 0; e < 3; e++) {
            epoch_read er;
            READ_EPOCH(l, &d, order, N, &er);
            cr_assert_eq(er.epoch, e);
            cr_assert(is_permutation(order, er.count, N), "epoch %lld is not a permutation",
                      (long long)e);
            gv_key ek = gv_random_fold_in_eager(key, (uint32_t)e);
            gv_tensor *p = GVT_NN(gv_random_permutation_eager(impls[im], ek, N));
            const int32_t *q = gv_tensor_data_const(p);
            for (int64_t i = 0; i < N; i++) same = same && order[i] == q[i];
            gv_tensor_free(p);
        }
        cr_assert(same, "impl %d: the order differs from permutation(fold_in(key, e), n)", im);
        gv_loader_free(l);
    }
    gv_dataset_free(&d);
}

Test(loader, same_key_same_order_other_key_or_epoch_differs) {
    enum { N = 100 };
    gv_dataset d = make_dataset(N);
    gv_loader *a = loader(&d, 10, true, 1, false, false);
    gv_loader *b = loader(&d, 10, true, 1, false, true);
    gv_loader *c = loader(&d, 10, true, 2, false, false);
    int64_t oa[2][N], ob[2][N], oc[2][N];
    epoch_read er;
    for (int e = 0; e < 2; e++) {
        READ_EPOCH(a, &d, oa[e], N, &er);
        READ_EPOCH(b, &d, ob[e], N, &er);
        READ_EPOCH(c, &d, oc[e], N, &er);
    }
    cr_assert(memcmp(oa, ob, sizeof oa) == 0, "the same key gives the same orders");
    cr_assert(memcmp(oa[0], oc[0], sizeof oa[0]) != 0, "another key, another order");
    cr_assert(memcmp(oa[0], oa[1], sizeof oa[0]) != 0, "another epoch, another order");
    gv_loader_free(a), gv_loader_free(b), gv_loader_free(c);
    gv_dataset_free(&d);
}

Test(loader, no_shuffle_is_in_order) {
    enum { N = 23 };
    gv_dataset d = make_dataset(N);
    gv_loader *l = loader(&d, 5, false, 0, false, true);
    int64_t order[N];
    epoch_read er;
    for (int e = 0; e < 2; e++) {
        READ_EPOCH(l, &d, order, N, &er);
        bool inorder = er.count == N;
        for (int64_t i = 0; i < N && inorder; i++) inorder = order[i] == i;
        cr_assert(inorder);
    }
    gv_loader_free(l);
    gv_dataset_free(&d);
}

/* ---- batches -------------------------------------------------------------- */

Test(loader, drop_last_batch_counts) {
    gv_dataset d = make_dataset(10);
    int64_t order[10];
    epoch_read er;
    for (int pf = 0; pf < 2; pf++) {
        gv_loader *l = loader(&d, 4, true, 3, true, pf);
        cr_assert_eq(gv_loader_batches_per_epoch(l), 2);
        READ_EPOCH(l, &d, order, 10, &er);
        cr_assert_eq(er.batches, 2);
        cr_assert_eq(er.count, 8);
        cr_assert_eq(er.rows_of_last, 4);
        gv_loader_free(l);

        l = loader(&d, 4, true, 3, false, pf);
        cr_assert_eq(gv_loader_batches_per_epoch(l), 3);
        for (int e = 0; e < 2; e++) {
            READ_EPOCH(l, &d, order, 10, &er);
            cr_assert_eq(er.batches, 3);
            cr_assert_eq(er.rows_of_last, 2);
            cr_assert(is_permutation(order, er.count, 10));
        }
        gv_loader_free(l);

        /* B > n without drop_last: one batch of all n */
        l = loader(&d, 64, true, 3, false, pf);
        cr_assert_eq(gv_loader_batches_per_epoch(l), 1);
        READ_EPOCH(l, &d, order, 10, &er);
        cr_assert_eq(er.batches, 1);
        cr_assert_eq(er.rows_of_last, 10);
        gv_loader_free(l);

        /* B divides n: no short batch */
        l = loader(&d, 5, false, 3, false, pf);
        cr_assert_eq(gv_loader_batches_per_epoch(l), 2);
        READ_EPOCH(l, &d, order, 10, &er);
        cr_assert_eq(er.rows_of_last, 5);
        gv_loader_free(l);
    }
    gv_dataset_free(&d);
}

Test(loader, end_of_epoch_marker_and_positions) {
    gv_dataset d = make_dataset(10);
    gv_loader *l = loader(&d, 4, true, 5, false, true);
    int64_t e, i;
    gv_loader_position(l, &e, &i);
    cr_assert(e == 0 && i == 0);
    gv_batch b;
    for (int k = 0; k < 3; k++) GVT_OK(gv_loader_next(l, &b));
    cr_assert_not_null(b.x);
    gv_loader_position(l, &e, &i);
    cr_assert(e == 0 && i == 3, "after the last batch: (%lld, %lld)", (long long)e, (long long)i);
    GVT_OK(gv_loader_next(l, &b));
    cr_assert(!b.x && !b.y && b.epoch == 0 && b.index == 3, "the end marker, once");
    gv_loader_position(l, &e, &i);
    cr_assert(e == 1 && i == 0);
    GVT_OK(gv_loader_next(l, &b));
    cr_assert(b.x && b.y && b.epoch == 1 && b.index == 0, "then the next epoch");
    gv_loader_free(l);
    gv_dataset_free(&d);
}

Test(loader, tensors_are_reused) {
    gv_dataset d = make_dataset(50);
    for (int pf = 0; pf < 2; pf++) {
        gv_loader *l = loader(&d, 8, true, 9, false, pf);
        gv_batch b;
        GVT_OK(gv_loader_next(l, &b));
        gv_tensor *x0 = b.x, *y0 = b.y;
        const void *px = gv_tensor_data(x0);
        float first = ((float *)px)[0];
        bool same = true, changed = false;
        gv_tensor *xs = NULL;
        for (int k = 0; k < 20; k++) { /* across the epoch boundary */
            GVT_OK(gv_loader_next(l, &b));
            if (!b.x) continue;
            if (gv_tensor_dim(b.x, 0) < 8) { /* the short last batch: a view */
                if (xs) same = same && xs == b.x;
                xs = b.x;
                same = same && gv_tensor_data(b.x) == px;
                continue;
            }
            same = same && b.x == x0 && b.y == y0 && gv_tensor_data(b.x) == px;
            changed = changed || ((float *)gv_tensor_data(b.x))[0] != first;
        }
        cr_assert(same, "the returned tensors and their data are the same on every call");
        cr_assert(changed, "and their contents change");
        cr_assert_not_null(xs);
        gv_loader_free(l);
    }
    gv_dataset_free(&d);
}

/* All batches of `epochs` epochs, x and y bytes concatenated. */
static size_t read_all(gv_loader *l, int epochs, unsigned char *buf, size_t cap) {
    size_t o = 0;
    int seen = 0;
    while (seen < epochs) {
        gv_batch b;
        GVT_OK(gv_loader_next(l, &b));
        if (!b.x) {
            seen++;
            continue;
        }
        size_t nx = gv_tensor_nbytes(b.x), ny = gv_tensor_nbytes(b.y);
        cr_assert_leq(o + nx + ny, cap);
        memcpy(buf + o, gv_tensor_data(b.x), nx);
        memcpy(buf + o + nx, gv_tensor_data(b.y), ny);
        o += nx + ny;
    }
    return o;
}

Test(loader, prefetch_equals_no_prefetch) {
    enum { N = 1000 };
    gv_dataset d = make_dataset(N);
    size_t cap = 3 * (size_t)N * (ROW * 4 + 4) + 64;
    unsigned char *a = malloc(cap), *b = malloc(cap);
    for (int drop = 0; drop < 2; drop++) {
        gv_loader *l0 = loader(&d, 64, true, 11, drop, false);
        gv_loader *l1 = loader(&d, 64, true, 11, drop, true);
        size_t na = read_all(l0, 3, a, cap), nb = read_all(l1, 3, b, cap);
        cr_assert_eq(na, nb);
        cr_assert(memcmp(a, b, na) == 0, "drop_last=%d: prefetch changes the batches", drop);
        gv_loader_free(l0), gv_loader_free(l1);
    }
    free(a), free(b);
    gv_dataset_free(&d);
}

/* ---- seek ----------------------------------------------------------------- */

Test(loader, seek_gives_the_batches_of_reading_through) {
    enum { N = 37, B = 5, NB = 8, EPOCHS = 3 };
    gv_dataset d = make_dataset(N);
    /* reference: every batch of 3 epochs, by reading through */
    unsigned char ref[EPOCHS][NB][B * (ROW * 4 + 4)];
    int64_t rows[EPOCHS][NB];
    gv_loader *r = loader(&d, B, true, 21, false, false);
    cr_assert_eq(gv_loader_batches_per_epoch(r), NB);
    for (int e = 0; e < EPOCHS; e++)
        for (int i = 0; i <= NB; i++) {
            gv_batch b;
            GVT_OK(gv_loader_next(r, &b));
            if (i == NB) {
                cr_assert_null(b.x);
                break;
            }
            rows[e][i] = gv_tensor_dim(b.x, 0);
            memcpy(ref[e][i], gv_tensor_data(b.x), gv_tensor_nbytes(b.x));
            memcpy(ref[e][i] + rows[e][i] * ROW * 4, gv_tensor_data(b.y), gv_tensor_nbytes(b.y));
        }
    gv_loader_free(r);

    /* seek to positions in any order, with and without prefetch, in the
     * middle of reading; read a few batches after each and compare */
    int64_t targets[][2] = {{1, 2}, {0, 0}, {2, 7}, {1, NB}, {0, 5}, {2, 0}, {1, 1}, {0, NB}};
    bool ok = true;
    char why[256] = "";
    for (int pf = 0; pf < 2; pf++) {
        gv_loader *l = loader(&d, B, true, 21, false, pf);
        gv_batch b;
        GVT_OK(gv_loader_next(l, &b)); /* the worker is busy with batch 1 now */
        for (size_t t = 0; t < sizeof targets / sizeof *targets && ok; t++) {
            int64_t e = targets[t][0], i = targets[t][1];
            GVT_OK(gv_loader_seek(l, e, i));
            int64_t pe, pi;
            gv_loader_position(l, &pe, &pi);
            ok = pe == e && pi == i;
            for (int k = 0; k < 4 && ok && e < EPOCHS; k++) {
                GVT_OK(gv_loader_next(l, &b));
                if (i == NB) { /* the end marker, then the next epoch */
                    ok = !b.x && b.epoch == e;
                    e++, i = 0;
                    continue;
                }
                unsigned char got[B * (ROW * 4 + 4)];
                ok = b.x && b.epoch == e && b.index == i && gv_tensor_dim(b.x, 0) == rows[e][i];
                if (!ok) break;
                memcpy(got, gv_tensor_data(b.x), gv_tensor_nbytes(b.x));
                memcpy(got + rows[e][i] * ROW * 4, gv_tensor_data(b.y), gv_tensor_nbytes(b.y));
                ok = memcmp(got, ref[e][i], (size_t)rows[e][i] * (ROW * 4 + 4)) == 0;
                i++;
            }
            if (!ok)
                snprintf(why, sizeof why, "prefetch=%d, after seek(%lld, %lld)", pf,
                         (long long)targets[t][0], (long long)targets[t][1]);
        }
        gv_loader_free(l);
    }
    cr_assert(ok, "%s", why);
    gv_dataset_free(&d);
}

Test(loader, seek_range_and_free_while_busy) {
    gv_dataset d = make_dataset(10);
    gv_loader *l = loader(&d, 4, true, 1, false, true);
    GVT_FAILS(gv_loader_seek(l, 0, 4), GV_ERR_ARG, "out of range");
    GVT_FAILS(gv_loader_seek(l, -1, 0), GV_ERR_ARG, "out of range");
    GVT_FAILS(gv_loader_seek(l, 0, -1), GV_ERR_ARG, "out of range");
    GVT_OK(gv_loader_seek(l, 5, 3));
    gv_loader_free(l); /* right after a seek: the worker is stopped cleanly */
    /* many loaders freed at once after creation, and repeated seeks */
    for (int k = 0; k < 20; k++) {
        l = loader(&d, 3, true, (uint32_t)k, k % 2, true);
        for (int s = 0; s < k; s++) {
            gv_batch b;
            GVT_OK(gv_loader_seek(l, s, s % 3));
            GVT_OK(gv_loader_next(l, &b));
        }
        gv_loader_free(l);
    }
    gv_loader_free(NULL);
    gv_dataset_free(&d);
}

/* ---- options and lifetime ------------------------------------------------- */

Test(loader, option_errors) {
    gv_dataset d = make_dataset(10);
    gv_loader_options o = {.batch_size = 4};
    GVT_NULL(gv_loader_new(NULL, &o), GV_ERR_ARG, "dataset");
    GVT_NULL(gv_loader_new(&d, NULL), GV_ERR_ARG, "opts");
    GVT_NULL(gv_loader_new(&(gv_dataset){0}, &o), GV_ERR_ARG, "NULL");
    o.batch_size = 0;
    GVT_NULL(gv_loader_new(&d, &o), GV_ERR_ARG, "batch_size");
    o.batch_size = -3;
    GVT_NULL(gv_loader_new(&d, &o), GV_ERR_ARG, "batch_size");
    o.batch_size = 11;
    o.drop_last = true;
    GVT_NULL(gv_loader_new(&d, &o), GV_ERR_ARG, "drop_last");
    o.batch_size = 10;
    o.impl = (gv_prng_impl)7;
    GVT_NULL(gv_loader_new(&d, &o), GV_ERR_ARG, "impl");
    /* a dataset whose tensors disagree */
    gv_dataset bad = {d.images, GVT_NN(gv_tensor_zeros(GV_U8, GV_DIMS(9)))};
    o.impl = GV_PRNG_DEFAULT;
    GVT_NULL(gv_loader_new(&bad, &o), GV_ERR_SHAPE, "10 images");
    gv_tensor_free(bad.labels);
    GVT_FAILS(gv_loader_next(NULL, &(gv_batch){0}), GV_ERR_ARG, "NULL");
    gv_dataset_free(&d);
}

Test(loader, dataset_may_be_freed) {
    gv_dataset d = make_dataset(10);
    gv_dataset keep = make_dataset(10);
    gv_loader *l = loader(&d, 4, true, 2, false, true);
    gv_dataset_free(&d); /* the loader holds its own references */
    int64_t order[10];
    epoch_read er;
    READ_EPOCH(l, &keep, order, 10, &er);
    cr_assert(is_permutation(order, er.count, 10));
    gv_loader_free(l);
    gv_dataset_free(&keep);
}
