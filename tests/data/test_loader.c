/* gv_loader_*: the order of every epoch (a permutation, equal to
 * permutation(fold_in(key, e), n) computed directly, the same for the same
 * key, different across keys and epochs), batch counts with and without
 * drop_last, the end-of-epoch marker, the reused tensors, values exactly
 * pixel / 255, prefetch == no prefetch bit for bit, seek == reading through,
 * and the option errors; the same for gv_loader_new_arrays over float32,
 * int32, float64 and uint8 arrays of several trailing shapes.
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

/* ---- gv_loader_new_arrays ------------------------------------------------- */

/* Three arrays over N examples, each recognisable: x float32 [N, 3] with row
 * i = (i, i + 0.5, -i), y int32 [N] = 1000 + i, z float64 [N, 2, 2] with row
 * i = i * (1, 1/4, 1/8, 1/16), and u uint8 [N] = i % 251. */
typedef struct arrays4 {
    gv_tensor *a[4];
} arrays4;

static arrays4 make_arrays(int64_t n) {
    arrays4 r;
    r.a[0] = GVT_NN(gv_tensor_zeros(GV_F32, GV_DIMS(n, 3)));
    r.a[1] = GVT_NN(gv_tensor_zeros(GV_I32, GV_DIMS(n)));
    r.a[2] = GVT_NN(gv_tensor_zeros(GV_F64, GV_DIMS(n, 2, 2)));
    r.a[3] = GVT_NN(gv_tensor_zeros(GV_U8, GV_DIMS(n)));
    float *x = gv_tensor_data(r.a[0]);
    int32_t *y = gv_tensor_data(r.a[1]);
    double *z = gv_tensor_data(r.a[2]);
    uint8_t *u = gv_tensor_data(r.a[3]);
    for (int64_t i = 0; i < n; i++) {
        x[3 * i] = (float)i, x[3 * i + 1] = (float)i + 0.5f, x[3 * i + 2] = -(float)i;
        y[i] = (int32_t)(1000 + i);
        for (int k = 0; k < 4; k++) z[4 * i + k] = (double)i / (double)(1 << (2 * k));
        u[i] = (uint8_t)(i % 251);
    }
    return r;
}

static void free_arrays(arrays4 *r) {
    for (int k = 0; k < 4; k++) gv_tensor_free(r->a[k]);
}

static gv_loader *arrays_loader(const arrays4 *r, int narrays, int64_t b, bool shuffle,
                                uint32_t seed, bool drop_last, bool prefetch) {
    return GVT_NN(gv_loader_new_arrays(r->a, narrays, &(gv_loader_options){
        .batch_size = b, .shuffle = shuffle, .key = gv_prng_key(seed), .drop_last = drop_last,
        .prefetch = prefetch}));
}

/* One epoch of a loader over the four arrays: the example of every row, in
 * order, after checking that each array's row belongs to that example and
 * that dtypes, shapes and positions are right (false + why otherwise). */
static bool read_arrays_epoch(gv_loader *l, int64_t n, int64_t *order, epoch_read *er,
                              char *why, size_t cap) {
    memset(er, 0, sizeof *er);
    gv_loader_position(l, &er->epoch, NULL);
    for (;;) {
        gv_batch b;
        if (gv_loader_next(l, &b) != GV_OK)
            return snprintf(why, cap, "gv_loader_next: %s", gv_last_error()), false;
        if (b.epoch != er->epoch || b.index != er->batches || b.narrays != 4)
            return snprintf(why, cap, "batch (%lld, %lld) with %d arrays", (long long)b.epoch,
                            (long long)b.index, b.narrays), false;
        if (!b.arrays)
            return (b.x || b.y) ? (snprintf(why, cap, "end marker with x or y"), false) : true;
        gv_tensor *const *a = b.arrays;
        int64_t rows = gv_tensor_dim(a[0], 0);
        if (b.x != a[0] || b.y != a[1])
            return snprintf(why, cap, "x and y are not arrays[0] and arrays[1]"), false;
        if (gv_tensor_dtype(a[0]) != GV_F32 || gv_tensor_rank(a[0]) != 2 ||
            gv_tensor_dim(a[0], 1) != 3 || gv_tensor_dtype(a[1]) != GV_I32 ||
            gv_tensor_rank(a[1]) != 1 || gv_tensor_dim(a[1], 0) != rows ||
            gv_tensor_dtype(a[2]) != GV_F64 || gv_tensor_rank(a[2]) != 3 ||
            gv_tensor_dim(a[2], 0) != rows || gv_tensor_dim(a[2], 1) != 2 ||
            gv_tensor_dim(a[2], 2) != 2 || gv_tensor_dtype(a[3]) != GV_U8 ||
            gv_tensor_dim(a[3], 0) != rows)
            return snprintf(why, cap, "batch %lld: bad dtypes or shapes", (long long)b.index),
                   false;
        const float *x = gv_tensor_data_const(a[0]);
        const int32_t *y = gv_tensor_data_const(a[1]);
        const double *z = gv_tensor_data_const(a[2]);
        const uint8_t *u = gv_tensor_data_const(a[3]);
        for (int64_t r = 0; r < rows; r++) {
            int64_t e = (int64_t)x[3 * r];
            bool ok = e >= 0 && e < n && er->count < n && x[3 * r + 1] == (float)e + 0.5f &&
                      x[3 * r + 2] == -(float)e && y[r] == 1000 + e && u[r] == e % 251;
            for (int k = 0; k < 4 && ok; k++) ok = z[4 * r + k] == (double)e / (1 << (2 * k));
            if (!ok)
                return snprintf(why, cap, "batch %lld row %lld: the arrays disagree (x says "
                                "example %lld, y %d)", (long long)b.index, (long long)r,
                                (long long)e, y[r]), false;
            order[er->count++] = e;
        }
        er->rows_of_last = rows;
        er->batches++;
    }
}

#define READ_ARRAYS_EPOCH(l, n, order, er)                                             \
    do {                                                                               \
        char why_[512] = "";                                                           \
        cr_assert(read_arrays_epoch((l), (n), (order), (er), why_, sizeof why_), "%s", why_); \
    } while (0)

Test(loader_arrays, order_rows_and_batches_for_every_option) {
    enum { N = 47, B = 6 };
    arrays4 r = make_arrays(N);
    gv_key key = gv_prng_key(77);
    for (int opt = 0; opt < 8; opt++) {
        bool shuffle = opt & 1, drop = opt & 2, pf = opt & 4;
        gv_loader *l = arrays_loader(&r, 4, B, shuffle, 77, drop, pf);
        cr_assert_eq(gv_loader_batches_per_epoch(l), drop ? N / B : N / B + 1);
        for (int64_t e = 0; e < 2; e++) {
            int64_t order[N];
            epoch_read er;
            READ_ARRAYS_EPOCH(l, N, order, &er);
            cr_assert_eq(er.batches, drop ? N / B : N / B + 1, "options %d", opt);
            cr_assert_eq(er.count, drop ? N / B * B : N, "options %d", opt);
            cr_assert_eq(er.rows_of_last, drop ? B : N % B, "options %d", opt);
            gv_tensor *p = GVT_NN(gv_random_permutation_eager(
                GV_PRNG_DEFAULT, gv_random_fold_in_eager(key, (uint32_t)e), N));
            const int32_t *q = gv_tensor_data_const(p);
            bool same = true;
            for (int64_t i = 0; i < er.count; i++) same = same && order[i] == (shuffle ? q[i] : i);
            gv_tensor_free(p);
            cr_assert(same, "options %d epoch %lld: not the order %s", opt, (long long)e,
                      shuffle ? "permutation(fold_in(key, e), n)" : "0..n-1");
        }
        gv_loader_free(l);
    }
    free_arrays(&r);
}

Test(loader_arrays, same_order_as_the_image_loader) {
    enum { N = 90 };
    arrays4 r = make_arrays(N);
    gv_dataset d = make_dataset(N);
    gv_loader *a = arrays_loader(&r, 4, 8, true, 5, false, false);
    gv_loader *im = loader(&d, 8, true, 5, false, false);
    int64_t oa[N], oi[N];
    epoch_read er;
    for (int e = 0; e < 2; e++) {
        READ_ARRAYS_EPOCH(a, N, oa, &er);
        READ_EPOCH(im, &d, oi, N, &er);
        cr_assert(memcmp(oa, oi, sizeof oa) == 0, "epoch %d: the two loaders' orders differ", e);
    }
    gv_loader_free(a), gv_loader_free(im);
    gv_dataset_free(&d);
    free_arrays(&r);
}

/* Every batch of `epochs` epochs, all arrays' bytes concatenated. */
static size_t read_all_arrays(gv_loader *l, int epochs, unsigned char *buf, size_t cap) {
    size_t o = 0;
    for (int seen = 0; seen < epochs;) {
        gv_batch b;
        GVT_OK(gv_loader_next(l, &b));
        if (!b.arrays) {
            seen++;
            continue;
        }
        for (int k = 0; k < b.narrays; k++) {
            size_t nb = gv_tensor_nbytes(b.arrays[k]);
            cr_assert_leq(o + nb, cap);
            memcpy(buf + o, gv_tensor_data(b.arrays[k]), nb);
            o += nb;
        }
    }
    return o;
}

Test(loader_arrays, prefetch_equals_no_prefetch) {
    enum { N = 1000 };
    arrays4 r = make_arrays(N);
    size_t cap = 3 * (size_t)N * (12 + 4 + 32 + 1) + 64;
    unsigned char *a = malloc(cap), *b = malloc(cap);
    for (int opt = 0; opt < 4; opt++) {
        gv_loader *l0 = arrays_loader(&r, 4, 64, opt & 1, 11, opt & 2, false);
        gv_loader *l1 = arrays_loader(&r, 4, 64, opt & 1, 11, opt & 2, true);
        size_t na = read_all_arrays(l0, 3, a, cap), nb = read_all_arrays(l1, 3, b, cap);
        cr_assert_eq(na, nb);
        cr_assert(memcmp(a, b, na) == 0, "options %d: prefetch changes the batches", opt);
        gv_loader_free(l0), gv_loader_free(l1);
    }
    free(a), free(b);
    free_arrays(&r);
}

Test(loader_arrays, seek_gives_the_batches_of_reading_through) {
    enum { N = 29, B = 4, NB = 8 };
    arrays4 r = make_arrays(N);
    /* the first example of every batch of 3 epochs, by reading through */
    int64_t first[3][NB];
    gv_loader *ref = arrays_loader(&r, 4, B, true, 8, false, false);
    cr_assert_eq(gv_loader_batches_per_epoch(ref), NB);
    for (int e = 0; e < 3; e++)
        for (int i = 0; i <= NB; i++) {
            gv_batch b;
            GVT_OK(gv_loader_next(ref, &b));
            if (i < NB) first[e][i] = (int64_t)((const float *)gv_tensor_data(b.x))[0];
        }
    gv_loader_free(ref);
    int64_t targets[][2] = {{2, 3}, {0, 0}, {1, 7}, {0, NB}, {2, 0}, {1, 4}};
    for (int pf = 0; pf < 2; pf++) {
        gv_loader *l = arrays_loader(&r, 4, B, true, 8, false, pf);
        gv_batch b;
        GVT_OK(gv_loader_next(l, &b));
        for (size_t t = 0; t < sizeof targets / sizeof *targets; t++) {
            int64_t e = targets[t][0], i = targets[t][1];
            GVT_OK(gv_loader_seek(l, e, i));
            GVT_OK(gv_loader_next(l, &b));
            if (i == NB) { /* the end marker, then batch 0 of the next epoch */
                cr_assert(!b.arrays && b.epoch == e);
                GVT_OK(gv_loader_next(l, &b));
                e++, i = 0;
            }
            cr_assert(b.arrays && b.epoch == e && b.index == i);
            cr_assert_eq((int64_t)((const float *)gv_tensor_data(b.x))[0], first[e][i],
                         "prefetch=%d, seek(%lld, %lld)", pf, (long long)targets[t][0],
                         (long long)targets[t][1]);
            cr_assert_eq(((const int32_t *)gv_tensor_data(b.y))[0], 1000 + first[e][i]);
        }
        gv_loader_free(l);
    }
    free_arrays(&r);
}

Test(loader_arrays, one_array_retained_and_reused) {
    enum { N = 10 };
    arrays4 r = make_arrays(N);
    gv_tensor *z = gv_tensor_retain(r.a[2]);
    gv_loader *l = GVT_NN(gv_loader_new_arrays((gv_tensor *[]){z}, 1, &(gv_loader_options){
        .batch_size = 4, .prefetch = true}));
    gv_tensor_free(z);
    free_arrays(&r); /* the loader holds its own reference to z */
    gv_batch b;
    GVT_OK(gv_loader_next(l, &b));
    cr_assert(b.narrays == 1 && b.x == b.arrays[0] && !b.y, "one array: x is it, y is NULL");
    gv_tensor *first = b.x;
    const void *data = gv_tensor_data(first);
    GVT_OK(gv_loader_next(l, &b));
    cr_assert(b.x == first && gv_tensor_data(b.x) == data, "the same tensor every batch");
    cr_assert_eq(((const double *)gv_tensor_data(b.x))[0], 4.0, "rows 4..7, in order");
    GVT_OK(gv_loader_next(l, &b)); /* the last 2 rows: a view of the first */
    cr_assert(gv_tensor_dim(b.x, 0) == 2 && gv_tensor_data(b.x) == data);
    cr_assert_eq(((const double *)gv_tensor_data(b.x))[4], 9.0);
    GVT_OK(gv_loader_next(l, &b));
    cr_assert(!b.x && !b.y && !b.arrays && b.narrays == 1, "the end of the epoch");
    gv_loader_free(l);
}

Test(loader_arrays, errors) {
    arrays4 r = make_arrays(10);
    gv_loader_options o = {.batch_size = 4};
    GVT_NULL(gv_loader_new_arrays(NULL, 2, &o), GV_ERR_ARG, "arrays is NULL");
    GVT_NULL(gv_loader_new_arrays(r.a, 2, NULL), GV_ERR_ARG, "opts is NULL");
    GVT_NULL(gv_loader_new_arrays(r.a, 0, &o), GV_ERR_ARG, "0 arrays, expected at least 1");
    GVT_NULL(gv_loader_new_arrays((gv_tensor *[]){r.a[0], NULL}, 2, &o), GV_ERR_ARG,
             "arrays[1] is NULL");
    gv_tensor *s = GVT_NN(gv_tensor_scalar(GV_F32, 1));
    GVT_NULL(gv_loader_new_arrays((gv_tensor *[]){r.a[0], s}, 2, &o), GV_ERR_SHAPE,
             "arrays[1] is a scalar");
    gv_tensor *short_y = GVT_NN(gv_tensor_zeros(GV_I32, GV_DIMS(9)));
    GVT_NULL(gv_loader_new_arrays((gv_tensor *[]){r.a[0], r.a[1], short_y}, 3, &o),
             GV_ERR_SHAPE, "arrays[2] has 9 examples (leading axis) but arrays[0] has 10");
    gv_tensor *empty = GVT_NN(gv_tensor_zeros(GV_F32, GV_DIMS(0, 3)));
    GVT_NULL(gv_loader_new_arrays((gv_tensor *[]){empty}, 1, &o), GV_ERR_SHAPE,
             "no examples");
    o.batch_size = 0;
    GVT_NULL(gv_loader_new_arrays(r.a, 4, &o), GV_ERR_ARG,
             "gv_loader_new_arrays: batch_size is 0, expected > 0");
    o.batch_size = 11;
    o.drop_last = true;
    GVT_NULL(gv_loader_new_arrays(r.a, 4, &o), GV_ERR_ARG, "drop_last");
    o.batch_size = 10;
    o.impl = (gv_prng_impl)9;
    GVT_NULL(gv_loader_new_arrays(r.a, 4, &o), GV_ERR_ARG, "impl");
    /* a shape-only tensor has no rows to batch, in either loader */
    o = (gv_loader_options){.batch_size = 4};
    gv_tensor *abstract = GVT_NN(gv_shape_dtype_struct(GV_I32, GV_DIMS(10)));
    GVT_NULL(gv_loader_new_arrays((gv_tensor *[]){r.a[0], abstract}, 2, &o), GV_ERR_ARG,
             "gv_loader_new_arrays: arrays[1]: ");
    gv_tensor *abstract_u8 = GVT_NN(gv_shape_dtype_struct(GV_U8, GV_DIMS(10, 2, 3)));
    gv_dataset d = make_dataset(10);
    GVT_NULL(gv_loader_new(&(gv_dataset){abstract_u8, d.labels}, &o), GV_ERR_ARG,
             "gv_loader_new: images 'images': ");
    gv_dataset_free(&d);
    gv_tensor_free(abstract), gv_tensor_free(abstract_u8);
    gv_tensor_free(s), gv_tensor_free(short_y), gv_tensor_free(empty);
    free_arrays(&r);
}
