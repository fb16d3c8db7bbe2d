/* gv_idx_read / gv_idx_write and the datasets built on them: round trips
 * (plain and gzip, one and several gzip members), every malformed-file case
 * on crafted files (each asserting the status and that the message names
 * the file), the dataset checks (counts, ranks, MNIST's 28x28 and labels
 * 0..9), gv_dataset_take's views, and, when GROVE_MNIST_DIR is set, the
 * real MNIST files. Fashion-MNIST on the Debian package's real files
 * (scripts/install-deps.sh installs it): its checksums, the error for a
 * changed byte or a missing directory, and the SHA-256 behind them. */
#define _GNU_SOURCE
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include "data/data_internal.h"
#include "grove/data.h"
#include "testutil.h"

/* ---- helpers -------------------------------------------------------------- */

static void make_tmpdir(void) { gvt_tmpdir_make("idx"); }
static void remove_tmpdir(void) { gvt_tmpdir_remove(); }

TestSuite(idx, .init = make_tmpdir, .fini = remove_tmpdir);
TestSuite(dataset, .init = make_tmpdir, .fini = remove_tmpdir);
TestSuite(fashion_mnist, .init = make_tmpdir, .fini = remove_tmpdir);

/* gvt_tmpdir/name in a static buffer (one path at a time is enough here) */
static const char *tpath(const char *name) {
    static char buf[4][256];
    static int k;
    k = (k + 1) % 4;
    snprintf(buf[k], sizeof buf[k], "%s/%s", gvt_tmpdir, name);
    return buf[k];
}


/* An IDX image in memory: header for dims, then the bytes i % 251. */
static unsigned char *idx_bytes(int rank, const uint32_t *dims, size_t *len) {
    size_t data = 1;
    for (int i = 0; i < rank; i++) data *= dims[i];
    size_t n = 4 + 4 * (size_t)rank + data;
    unsigned char *b = malloc(n);
    cr_assert_not_null(b);
    b[0] = 0, b[1] = 0, b[2] = 0x08, b[3] = (unsigned char)rank;
    for (int i = 0; i < rank; i++)
        for (int k = 0; k < 4; k++) b[4 + 4 * i + k] = (unsigned char)(dims[i] >> (24 - 8 * k));
    for (size_t i = 0; i < data; i++) b[4 + 4 * (size_t)rank + i] = (unsigned char)(i % 251);
    *len = n;
    return b;
}

/* gzip (RFC 1952) of buf, as one member. Caller frees. */
static unsigned char *gzip_bytes(const void *buf, size_t n, size_t *out_len) {
    z_stream zs = {0};
    cr_assert_eq(deflateInit2(&zs, 6, Z_DEFLATED, 16 + MAX_WBITS, 8, Z_DEFAULT_STRATEGY), Z_OK);
    size_t cap = deflateBound(&zs, (uLong)n) + 32;
    unsigned char *out = malloc(cap);
    cr_assert_not_null(out);
    zs.next_in = (Bytef *)buf;
    zs.avail_in = (uInt)n;
    zs.next_out = out;
    zs.avail_out = (uInt)cap;
    cr_assert_eq(deflate(&zs, Z_FINISH), Z_STREAM_END);
    *out_len = zs.total_out;
    deflateEnd(&zs);
    return out;
}

static void write_gz(const char *path, const void *buf, size_t n) {
    size_t gl;
    unsigned char *g = gzip_bytes(buf, n, &gl);
    gvt_write_file(path, g, gl);
    free(g);
}

/* A uint8 tensor [rank dims] holding i % 251, as idx_bytes writes. */
static gv_tensor *expected_tensor(int rank, const uint32_t *dims) {
    int64_t d64[8];
    for (int i = 0; i < rank; i++) d64[i] = dims[i];
    gv_tensor *t = GVT_NN(gv_tensor_zeros(GV_U8, rank, d64));
    uint8_t *p = gv_tensor_data(t);
    for (int64_t i = 0; i < gv_tensor_size(t); i++) p[i] = (uint8_t)(i % 251);
    return t;
}

/* gv_idx_read(path) fails with status and a message naming path and needle. */
static bool read_fails(const char *path, gv_status status, const char *needle, char *why,
                       size_t cap) {
    gv_clear_error();
    gv_tensor *t = gv_idx_read(path);
    if (t) {
        gv_tensor_free(t);
        snprintf(why, cap, "%s: read succeeded", path);
        return false;
    }
    const char *msg = gv_last_error();
    if (gv_last_status() != status || !strstr(msg, path) || (needle && !strstr(msg, needle))) {
        snprintf(why, cap, "%s: %s: '%s' (wanted %s mentioning '%s')", path,
                 gv_status_name(gv_last_status()), msg, gv_status_name(status),
                 needle ? needle : "");
        return false;
    }
    return true;
}

#define ASSERT_READ_FAILS(path, status, needle)                                   \
    do {                                                                          \
        char why_[1024] = ""; /* formatted even when the read fails as it should */  \
        cr_assert(read_fails((path), (status), (needle), why_, sizeof why_), "%s", why_); \
    } while (0)

static const uint32_t dims3[3] = {2, 3, 4}; /* header 16 bytes, data 24 */

/* ---- round trips ---------------------------------------------------------- */

Test(idx, write_read_round_trip) {
    uint32_t shapes[][3] = {{7, 0, 0}, {2, 3, 4}, {1, 1, 1}, {300, 17, 0}};
    int ranks[] = {1, 3, 3, 2};
    for (int s = 0; s < 4; s++) {
        gv_tensor *t = expected_tensor(ranks[s], shapes[s]);
        const char *p = tpath("rt.idx");
        GVT_OK(gv_idx_write(p, t, true));
        gv_tensor *r = GVT_NN(gv_idx_read(p));
        cr_assert(gv_tensor_equal(t, r), "shape %d differs after a round trip", s);
        /* the bytes are exactly what an IDX writer produces */
        size_t len, elen;
        char *got = gvt_read_file(p, &len);
        unsigned char *want = idx_bytes(ranks[s], shapes[s], &elen);
        cr_assert_eq(len, elen);
        cr_assert(memcmp(got, want, len) == 0);
        free(got), free(want);
        gv_tensor_free(t), gv_tensor_free(r);
    }
}

Test(idx, write_refuses_existing_without_force) {
    gv_tensor *t = expected_tensor(3, dims3);
    const char *p = tpath("a.idx");
    GVT_OK(gv_idx_write(p, t, false));
    GVT_FAILS(gv_idx_write(p, t, false), GV_ERR_EXISTS, "a.idx");
    GVT_OK(gv_idx_write(p, t, true));
    GVT_FAILS(gv_idx_write(tpath("no/such/dir.idx"), t, true), GV_ERR_NOT_FOUND, "dir.idx");
    gv_tensor_free(t);
}

Test(idx, write_refuses_what_idx_cannot_hold) {
    const char *p = tpath("w.idx");
    gv_tensor *f = GVT_NN(gv_tensor_zeros(GV_F32, GV_DIMS(2, 2)));
    GVT_FAILS(gv_idx_write(p, f, true), GV_ERR_DTYPE, "uint8");
    gv_tensor *s = GVT_NN(gv_tensor_scalar(GV_U8, 3));
    GVT_FAILS(gv_idx_write(p, s, true), GV_ERR_SHAPE, "rank 0");
    gv_tensor *z = GVT_NN(gv_tensor_zeros(GV_U8, GV_DIMS(3, 0)));
    GVT_FAILS(gv_idx_write(p, z, true), GV_ERR_SHAPE, "dimension 1 is 0");
    int64_t nine[9] = {1, 1, 1, 1, 1, 1, 1, 1, 1};
    gv_tensor *r9 = GVT_NN(gv_tensor_zeros(GV_U8, 9, nine));
    GVT_FAILS(gv_idx_write(p, r9, true), GV_ERR_SHAPE, "rank 9");
    GVT_FAILS(gv_idx_write(p, NULL, true), GV_ERR_ARG, "NULL");
    GVT_FAILS(gv_idx_write(NULL, z, true), GV_ERR_ARG, "path");
    cr_assert_eq(access(p, F_OK), -1, "nothing is written on error");
    gv_tensor_free(f), gv_tensor_free(s), gv_tensor_free(z), gv_tensor_free(r9);
}

Test(idx, gzip_read) {
    uint32_t big[3] = {50, 28, 28}; /* several inflate buffers' worth */
    size_t n;
    unsigned char *b = idx_bytes(3, big, &n);
    const char *p = tpath("imgs.gz");
    write_gz(p, b, n);
    gv_tensor *want = expected_tensor(3, big);
    gv_tensor *r = GVT_NN(gv_idx_read(p));
    cr_assert(gv_tensor_equal(want, r));
    gv_tensor_free(r);

    /* detected by content, not by name */
    const char *q = tpath("compressed-without-suffix");
    write_gz(q, b, n);
    r = GVT_NN(gv_idx_read(q));
    cr_assert(gv_tensor_equal(want, r));
    gv_tensor_free(r);

    /* zlib's gzwrite, as a user's own tool would write it */
    gzFile gz = gzopen(tpath("gzwrite.gz"), "wb9");
    cr_assert_not_null(gz);
    cr_assert_eq(gzwrite(gz, b, (unsigned)n), (int)n);
    cr_assert_eq(gzclose(gz), Z_OK);
    r = GVT_NN(gv_idx_read(tpath("gzwrite.gz")));
    cr_assert(gv_tensor_equal(want, r));
    gv_tensor_free(r);

    /* two members concatenated (cat a.gz b.gz) are one stream, as for gzip -d */
    size_t l1, l2, cut = n / 3;
    unsigned char *g1 = gzip_bytes(b, cut, &l1), *g2 = gzip_bytes(b + cut, n - cut, &l2);
    unsigned char *cat = malloc(l1 + l2);
    memcpy(cat, g1, l1), memcpy(cat + l1, g2, l2);
    gvt_write_file(tpath("two.gz"), cat, l1 + l2);
    r = GVT_NN(gv_idx_read(tpath("two.gz")));
    cr_assert(gv_tensor_equal(want, r));
    gv_tensor_free(r);
    free(g1), free(g2), free(cat), free(b);
    gv_tensor_free(want);
}

/* ---- bad files ------------------------------------------------------------ */

Test(idx, missing_file_and_directory) {
    ASSERT_READ_FAILS(tpath("nope-idx1-ubyte"), GV_ERR_NOT_FOUND, "no such file");
    ASSERT_READ_FAILS(gvt_tmpdir, GV_ERR_IO, "directory");
    GVT_NULL(gv_idx_read(NULL), GV_ERR_ARG, "path");
}

Test(idx, empty_file) {
    gvt_write_file(tpath("empty"), "", 0);
    ASSERT_READ_FAILS(tpath("empty"), GV_ERR_FORMAT, "empty");
}

Test(idx, short_header_at_every_length) {
    size_t n;
    unsigned char *b = idx_bytes(3, dims3, &n);
    char why[1024] = "";
    bool ok = true;
    for (size_t len = 0; len < 16 && ok; len++) {
        char name[32];
        snprintf(name, sizeof name, "short-%zu", len);
        gvt_write_file(tpath(name), b, len);
        ok = read_fails(tpath(name), GV_ERR_FORMAT, len ? "truncated IDX header" : "empty", why,
                        sizeof why);
        /* the same inside a gzip stream */
        snprintf(name, sizeof name, "short-%zu.gz", len);
        write_gz(tpath(name), b, len);
        ok = ok && read_fails(tpath(name), GV_ERR_FORMAT, len ? "truncated IDX header" : "empty",
                              why, sizeof why);
    }
    cr_assert(ok, "%s", why);
    free(b);
}

Test(idx, bad_magic) {
    size_t n;
    unsigned char *b = idx_bytes(3, dims3, &n);
    b[0] = 0x01;
    gvt_write_file(tpath("m0"), b, n);
    ASSERT_READ_FAILS(tpath("m0"), GV_ERR_FORMAT, "bad magic 0x01000803");
    b[0] = 0, b[1] = 0x20;
    gvt_write_file(tpath("m1"), b, n);
    ASSERT_READ_FAILS(tpath("m1"), GV_ERR_FORMAT, "not an IDX file");
    /* a PNG, say */
    gvt_write_file(tpath("png"), "\x89PNG\r\n\x1a\n", 8);
    ASSERT_READ_FAILS(tpath("png"), GV_ERR_FORMAT, "bad magic");
    free(b);
}

Test(idx, wrong_type_byte) {
    size_t n;
    unsigned char *b = idx_bytes(3, dims3, &n);
    b[2] = 0x0D;
    gvt_write_file(tpath("float"), b, n);
    ASSERT_READ_FAILS(tpath("float"), GV_ERR_FORMAT,
                      "element type 0x0D (float) is not supported, expected 0x08 (unsigned byte)");
    b[2] = 0x09;
    gvt_write_file(tpath("i8"), b, n);
    ASSERT_READ_FAILS(tpath("i8"), GV_ERR_FORMAT, "0x09 (signed byte)");
    b[2] = 0x07;
    gvt_write_file(tpath("t7"), b, n);
    ASSERT_READ_FAILS(tpath("t7"), GV_ERR_FORMAT, "unknown element type 0x07");
    free(b);
}

Test(idx, rank_out_of_range) {
    unsigned char r0[4] = {0, 0, 8, 0};
    gvt_write_file(tpath("rank0"), r0, 4);
    ASSERT_READ_FAILS(tpath("rank0"), GV_ERR_FORMAT, "rank 0");
    /* rank 9 with nine valid dims of 1 and one byte of data */
    unsigned char r9[4 + 36 + 1] = {0, 0, 8, 9};
    for (int i = 0; i < 9; i++) r9[4 + 4 * i + 3] = 1;
    gvt_write_file(tpath("rank9"), r9, sizeof r9);
    ASSERT_READ_FAILS(tpath("rank9"), GV_ERR_FORMAT, "rank 9");
    unsigned char r255[4] = {0, 0, 8, 255};
    gvt_write_file(tpath("rank255"), r255, 4);
    ASSERT_READ_FAILS(tpath("rank255"), GV_ERR_FORMAT, "rank 255");
}

Test(idx, zero_dim) {
    size_t n;
    unsigned char *b = idx_bytes(3, dims3, &n);
    char why[1024] = "";
    bool ok = true;
    for (int d = 0; d < 3 && ok; d++) {
        unsigned char *c = malloc(n);
        memcpy(c, b, n);
        memset(c + 4 + 4 * d, 0, 4);
        char name[16], needle[32];
        snprintf(name, sizeof name, "zero%d", d);
        snprintf(needle, sizeof needle, "dimension %d is 0", d);
        gvt_write_file(tpath(name), c, n);
        ok = read_fails(tpath(name), GV_ERR_FORMAT, needle, why, sizeof why);
        free(c);
    }
    cr_assert(ok, "%s", why);
    free(b);
}

Test(idx, truncated_data) {
    size_t n;
    unsigned char *b = idx_bytes(3, dims3, &n); /* 16 + 24 */
    size_t keep[] = {0, 1, 12, 23};
    char why[1024] = "";
    bool ok = true;
    for (size_t i = 0; i < sizeof keep / sizeof *keep && ok; i++) {
        char name[32], needle[64];
        snprintf(name, sizeof name, "trunc-%zu", keep[i]);
        snprintf(needle, sizeof needle, "need 24 bytes of data after the 16-byte header, got %zu",
                 keep[i]);
        gvt_write_file(tpath(name), b, 16 + keep[i]);
        ok = read_fails(tpath(name), GV_ERR_FORMAT, needle, why, sizeof why);
        /* a complete gzip stream of truncated content */
        snprintf(name, sizeof name, "trunc-%zu.gz", keep[i]);
        write_gz(tpath(name), b, 16 + keep[i]);
        ok = ok && read_fails(tpath(name), GV_ERR_FORMAT, needle, why, sizeof why);
    }
    cr_assert(ok, "%s", why);
    free(b);
}

Test(idx, trailing_bytes) {
    size_t n;
    unsigned char *b = idx_bytes(3, dims3, &n);
    unsigned char *c = malloc(n + 5);
    memcpy(c, b, n);
    memset(c + n, 7, 5);
    gvt_write_file(tpath("plus1"), c, n + 1);
    ASSERT_READ_FAILS(tpath("plus1"), GV_ERR_FORMAT, "1 trailing byte after the 24 bytes");
    gvt_write_file(tpath("plus5"), c, n + 5);
    ASSERT_READ_FAILS(tpath("plus5"), GV_ERR_FORMAT, "5 trailing bytes");
    write_gz(tpath("plus1.gz"), c, n + 1);
    ASSERT_READ_FAILS(tpath("plus1.gz"), GV_ERR_FORMAT, "trailing bytes");
    free(b), free(c);
}

Test(idx, corrupt_gzip) {
    uint32_t dims[3] = {20, 28, 28};
    size_t n, gl;
    unsigned char *b = idx_bytes(3, dims, &n);
    unsigned char *g = gzip_bytes(b, n, &gl);
    cr_assert_gt(gl, 40u);
    char why[1024] = "";
    bool ok = true;
    /* flip a byte after the 10-byte gzip header (every 7th of the deflate
     * stream, each of the CRC-32 and length): the read fails, or, where the flipped bits are
     * redundant (unused Huffman code lengths, say) and inflate produces the
     * same bytes, it returns the original data; never different data */
    gv_tensor *want = expected_tensor(3, dims);
    unsigned char *c = malloc(gl + 3);
    int failed = 0, tried = 0;
    for (size_t at = 10; at < gl && ok; at += at + 8 < gl ? 7 : 1, tried++) {
        memcpy(c, g, gl);
        c[at] ^= 0x5a;
        gvt_write_file(tpath("flip.gz"), c, gl);
        gv_clear_error();
        gv_tensor *r = gv_idx_read(tpath("flip.gz"));
        if (r) {
            ok = gv_tensor_equal(r, want);
            if (!ok) snprintf(why, sizeof why, "flip at %zu: different data read", at);
            gv_tensor_free(r);
        } else {
            ok = read_fails(tpath("flip.gz"), GV_ERR_FORMAT, NULL, why, sizeof why);
            failed++;
        }
    }
    cr_assert(ok, "%s", why);
    cr_assert_gt(failed, tried * 9 / 10, "only %d of %d flips were caught", failed, tried);
    gv_tensor_free(want);
    /* a truncated .gz, cut anywhere after the magic */
    size_t cuts[] = {2, 5, 10, 11, gl / 2, gl - 8, gl - 4, gl - 1};
    for (size_t i = 0; i < sizeof cuts / sizeof *cuts && ok; i++) {
        char name[32];
        snprintf(name, sizeof name, "cut-%zu.gz", cuts[i]);
        gvt_write_file(tpath(name), g, cuts[i]);
        ok = read_fails(tpath(name), GV_ERR_FORMAT, "truncated gzip stream", why, sizeof why);
    }
    cr_assert(ok, "%s", why);
    /* garbage after the gzip stream */
    memcpy(c, g, gl);
    memcpy(c + gl, "xyz", 3);
    gvt_write_file(tpath("junk.gz"), c, gl + 3);
    ASSERT_READ_FAILS(tpath("junk.gz"), GV_ERR_FORMAT, "not a complete gzip member");
    gvt_write_file(tpath("junk1.gz"), c, gl + 1);
    ASSERT_READ_FAILS(tpath("junk1.gz"), GV_ERR_FORMAT, "not a complete gzip member");
    /* a corrupt header: bad compression method */
    memcpy(c, g, gl);
    c[2] = 7;
    gvt_write_file(tpath("method.gz"), c, gl);
    ASSERT_READ_FAILS(tpath("method.gz"), GV_ERR_FORMAT, "corrupt gzip stream");
    free(c), free(b), free(g);
}

Test(idx, huge_dims) {
    /* 65536^3 = 2^48 bytes: over the 2^34 limit, refused before allocating */
    unsigned char h[16] = {0, 0, 8, 3, 0, 1, 0, 0, 0, 1, 0, 0, 0, 1, 0, 0};
    gvt_write_file(tpath("huge"), h, sizeof h);
    ASSERT_READ_FAILS(tpath("huge"), GV_ERR_FORMAT, "65536x65536x65536");
    /* eight dims of 2^32-1: the product overflows 64 bits */
    unsigned char o[36] = {0, 0, 8, 8};
    memset(o + 4, 0xff, 32);
    gvt_write_file(tpath("overflow"), o, sizeof o);
    ASSERT_READ_FAILS(tpath("overflow"), GV_ERR_FORMAT, "2^34");
    /* 2^33 bytes announced by a tiny gzip file: refused before allocating */
    unsigned char g[12] = {0, 0, 8, 2, 0, 2, 0, 0, 0, 1, 0, 0};
    write_gz(tpath("huge.gz"), g, sizeof g);
    ASSERT_READ_FAILS(tpath("huge.gz"), GV_ERR_FORMAT, "gzip file can hold");
    /* 2^31 bytes announced by a plain header-only file: refused by size */
    unsigned char p[8] = {0, 0, 8, 1, 0x80, 0, 0, 0};
    gvt_write_file(tpath("big"), p, sizeof p);
    ASSERT_READ_FAILS(tpath("big"), GV_ERR_FORMAT, "need 2147483648 bytes");
}

/* ---- datasets ------------------------------------------------------------- */

/* Write images [n, h, w] (pixel = (i + k) % 256) and labels [n] (label[i]). */
static void write_pair(const char *iname, const char *lname, int64_t n, int64_t h, int64_t w,
                       const uint8_t *labels) {
    gv_tensor *im = GVT_NN(gv_tensor_zeros(GV_U8, GV_DIMS(n, h, w)));
    uint8_t *p = gv_tensor_data(im);
    for (int64_t i = 0; i < gv_tensor_size(im); i++) p[i] = (uint8_t)(i / (h * w) + i % (h * w));
    gv_tensor *lb = GVT_NN(gv_tensor_from_data(GV_U8, 1, &n, labels, (size_t)n));
    GVT_OK(gv_idx_write(tpath(iname), im, true));
    GVT_OK(gv_idx_write(tpath(lname), lb, true));
    gv_tensor_free(im), gv_tensor_free(lb);
}

static const uint8_t labels5[5] = {3, 1, 4, 1, 5};

Test(dataset, load_idx_and_take) {
    write_pair("im", "lb", 5, 4, 3, labels5);
    gv_dataset d;
    GVT_OK(gv_dataset_load_idx(tpath("im"), tpath("lb"), &d));
    cr_assert_eq(gv_dataset_size(&d), 5);
    cr_assert_eq(gv_tensor_rank(d.images), 3);
    cr_assert_eq(gv_tensor_dim(d.images, 1), 4);

    gv_dataset t;
    GVT_OK(gv_dataset_take(&d, 2, &t));
    cr_assert_eq(gv_dataset_size(&t), 2);
    cr_assert_eq(gv_tensor_dim(t.images, 0), 2);
    cr_assert_eq(gv_tensor_dim(t.images, 2), 3);
    /* views: the same memory, alive after the source is freed */
    cr_assert_eq(gv_tensor_data(t.images), gv_tensor_data(d.images));
    cr_assert_eq(gv_tensor_data(t.labels), gv_tensor_data(d.labels));
    gv_dataset_free(&d);
    cr_assert_null(d.images);
    cr_assert_eq(((uint8_t *)gv_tensor_data(t.labels))[1], 1);
    cr_assert_eq(((uint8_t *)gv_tensor_data(t.images))[12], 1);
    GVT_FAILS(gv_dataset_take(&t, 3, &d), GV_ERR_ARG, "out of range 1..2");
    GVT_FAILS(gv_dataset_take(&t, 0, &d), GV_ERR_ARG, "n = 0");
    /* in place */
    GVT_OK(gv_dataset_take(&t, 1, &t));
    cr_assert_eq(gv_dataset_size(&t), 1);
    gv_dataset_free(&t);
    gv_dataset_free(&t); /* emptied: a no-op */
    gv_dataset_free(NULL);
    cr_assert_eq(gv_dataset_size(NULL), 0);
}

Test(dataset, count_mismatch_names_both_files) {
    write_pair("im5", "lb5", 5, 4, 3, labels5);
    write_pair("im4", "lb4", 4, 4, 3, labels5);
    gv_dataset d = {(gv_tensor *)1, (gv_tensor *)1};
    GVT_FAILS(gv_dataset_load_idx(tpath("im5"), tpath("lb4"), &d), GV_ERR_SHAPE, "5 images");
    cr_assert(strstr(gv_last_error(), tpath("im5")) && strstr(gv_last_error(), tpath("lb4")),
              "%s", gv_last_error());
    cr_assert(strstr(gv_last_error(), "4 labels"));
    cr_assert_null(d.images, "out is left empty");
    cr_assert_null(d.labels);
}

Test(dataset, ranks_are_checked) {
    write_pair("im", "lb", 5, 4, 3, labels5);
    /* labels as images: rank 1 images */
    GVT_FAILS(gv_dataset_load_idx(tpath("lb"), tpath("lb"), &(gv_dataset){0}), GV_ERR_SHAPE,
              "rank >= 2");
    GVT_FAILS(gv_dataset_load_idx(tpath("im"), tpath("im"), &(gv_dataset){0}), GV_ERR_SHAPE,
              "expected rank 1");
    GVT_FAILS(gv_dataset_load_idx(tpath("im"), tpath("missing"), &(gv_dataset){0}),
              GV_ERR_NOT_FOUND, "missing");
}

Test(dataset, mnist_layout) {
    uint8_t labels[6] = {0, 9, 3, 3, 7, 1};
    write_pair("train-images-idx3-ubyte", "train-labels-idx1-ubyte", 6, 28, 28, labels);
    gv_dataset d;
    GVT_OK(gv_mnist_load(gvt_tmpdir, "train", &d));
    cr_assert_eq(gv_dataset_size(&d), 6);
    gv_dataset_free(&d);

    /* t10k from .gz files only */
    size_t n;
    char *im = gvt_read_file(tpath("train-images-idx3-ubyte"), &n);
    write_gz(tpath("t10k-images-idx3-ubyte.gz"), im, n);
    free(im);
    char *lb = gvt_read_file(tpath("train-labels-idx1-ubyte"), &n);
    write_gz(tpath("t10k-labels-idx1-ubyte.gz"), lb, n);
    free(lb);
    GVT_OK(gv_mnist_load(gvt_tmpdir, "t10k", &d));
    cr_assert_eq(gv_dataset_size(&d), 6);
    gv_dataset_free(&d);

    /* plain is preferred: a broken .gz beside a good plain file is not read */
    gvt_write_file(tpath("train-images-idx3-ubyte.gz"), "broken", 6);
    GVT_OK(gv_mnist_load(gvt_tmpdir, "train", &d));
    gv_dataset_free(&d);

    GVT_FAILS(gv_mnist_load(gvt_tmpdir, "test", &d), GV_ERR_ARG, "\"train\" or \"t10k\"");
    GVT_FAILS(gv_mnist_load(gvt_tmpdir, NULL, &d), GV_ERR_ARG, "split");
    GVT_FAILS(gv_mnist_load(tpath("nowhere"), "train", &d), GV_ERR_NOT_FOUND,
              "train-images-idx3-ubyte");
}

Test(dataset, mnist_label_out_of_range) {
    uint8_t labels[6] = {0, 9, 3, 10, 7, 11};
    write_pair("train-images-idx3-ubyte", "train-labels-idx1-ubyte", 6, 28, 28, labels);
    gv_dataset d = {0};
    GVT_FAILS(gv_mnist_load(gvt_tmpdir, "train", &d), GV_ERR_FORMAT,
              "label 10 at index 3 is out of range 0..9");
    cr_assert(strstr(gv_last_error(), tpath("train-labels-idx1-ubyte")), "%s", gv_last_error());
    cr_assert_null(d.images);
}

Test(dataset, mnist_wrong_image_size) {
    uint8_t labels[3] = {1, 2, 3};
    write_pair("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte", 3, 28, 27, labels);
    gv_dataset d = {0};
    GVT_FAILS(gv_mnist_load(gvt_tmpdir, "t10k", &d), GV_ERR_SHAPE, "images are 28x27");
    cr_assert(strstr(gv_last_error(), tpath("t10k-images-idx3-ubyte")), "%s", gv_last_error());
    cr_assert_null(d.images);
}

/* The real files, when GROVE_MNIST_DIR points at them (scripts/fetch-mnist.sh).
 * A suite without a temporary directory: a skipped test does not run fini. */
Test(mnist_files, real_mnist) {
    const char *dir = getenv("GROVE_MNIST_DIR");
    char probe[4096];
    snprintf(probe, sizeof probe, "%s/train-images-idx3-ubyte", dir ? dir : "");
    char probe_gz[4200];
    snprintf(probe_gz, sizeof probe_gz, "%s.gz", probe);
    if (!dir || (access(probe, R_OK) != 0 && access(probe_gz, R_OK) != 0))
        cr_skip_test("GROVE_MNIST_DIR is not set or holds no MNIST files");
    gv_dataset d;
    GVT_OK(gv_mnist_load(dir, "train", &d));
    cr_assert_eq(gv_tensor_rank(d.images), 3);
    cr_assert_eq(gv_tensor_dim(d.images, 0), 60000);
    cr_assert_eq(gv_tensor_dim(d.images, 1), 28);
    cr_assert_eq(gv_tensor_dim(d.images, 2), 28);
    cr_assert_eq(gv_tensor_dim(d.labels, 0), 60000);
    /* the first training labels are 5 0 4 1 9 */
    const uint8_t *y = gv_tensor_data_const(d.labels);
    cr_assert(y[0] == 5 && y[1] == 0 && y[2] == 4 && y[3] == 1 && y[4] == 9);
    gv_dataset_free(&d);
    GVT_OK(gv_mnist_load(dir, "t10k", &d));
    cr_assert_eq(gv_dataset_size(&d), 10000);
    gv_dataset_free(&d);
}

/* ---- Fashion-MNIST -------------------------------------------------------- */

static void sha256_of(const void *data, size_t n, size_t split, char hex[65]) {
    gv_sha256 s;
    gv_data_sha256_init(&s);
    gv_data_sha256_update(&s, data, split);
    gv_data_sha256_update(&s, (const char *)data + split, n - split);
    gv_data_sha256_hex(&s, hex);
}

/* FIPS 180-4 / NIST CSRC example vectors, and lengths around the padding
 * edges (55, 56, 63, 64 bytes), each hashed in two pieces split anywhere. */
Test(fashion_mnist, sha256_vectors) {
    static const char *abc56 = "abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq";
    struct {
        const char *msg;
        size_t n;
        const char *want;
    } v[] = {
        {"", 0, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"},
        {"abc", 3, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"},
        {abc56, 56, "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1"},
    };
    char hex[65];
    for (size_t i = 0; i < sizeof v / sizeof *v; i++)
        for (size_t split = 0; split <= v[i].n; split++) {
            sha256_of(v[i].msg, v[i].n, split, hex);
            cr_assert_str_eq(hex, v[i].want, "vector %zu split at %zu", i, split);
        }
    /* one million 'a' (FIPS 180-2 appendix B.3) */
    char *a = malloc(1000000);
    cr_assert_not_null(a);
    memset(a, 'a', 1000000);
    sha256_of(a, 1000000, 333333, hex);
    cr_assert_str_eq(hex, "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0");
    /* 'a' x 55, 63, 64 (sha256sum of `printf 'a%.0s' $(seq N)`) */
    const char *edges[][2] = {
        {"55", "9f4390f8d30c2dd92ec9f095b65e2b9ae9b0a925a5258e241c9f1e910f734318"},
        {"63", "7d3e74a05d7db15bce4ad9ec0658ea98e3f06eeecf16b4c6fff2da457ddc2f34"},
        {"64", "ffe054fe7ae0cb6dc65c3af9b61d5209f439851db43d0ba5997337df154668eb"},
    };
    for (size_t i = 0; i < 3; i++) {
        size_t n = (size_t)atoi(edges[i][0]);
        sha256_of(a, n, n / 2, hex);
        cr_assert_str_eq(hex, edges[i][1], "'a' x %zu", n);
    }
    free(a);
}

/* The Debian package's files (dataset-fashion-mnist, gzip), checked against
 * their SHA-256, and a small slice through the loader. */
Test(fashion_mnist, real_files_from_the_debian_package) {
    struct stat sb;
    cr_assert(stat(GV_FASHION_MNIST_DIR, &sb) == 0,
              "%s is missing: scripts/install-deps.sh installs dataset-fashion-mnist",
              GV_FASHION_MNIST_DIR);
    gv_dataset d;
    GVT_OK(gv_fashion_mnist_load(NULL, "t10k", &d));
    cr_assert_eq(gv_dataset_size(&d), 10000);
    cr_assert(gv_tensor_dim(d.images, 1) == 28 && gv_tensor_dim(d.images, 2) == 28);
    /* the first test labels: ankle boot, pullover, trouser, trouser, shirt */
    const uint8_t *y = gv_tensor_data_const(d.labels);
    cr_assert(y[0] == 9 && y[1] == 2 && y[2] == 1 && y[3] == 1 && y[4] == 6);
    cr_assert_str_eq(gv_fashion_mnist_class_name(y[0]), "Ankle boot");
    gv_dataset part;
    GVT_OK(gv_dataset_take(&d, 100, &part));
    gv_loader *l = GVT_NN(gv_loader_new(&part, &(gv_loader_options){.batch_size = 32}));
    gv_batch b;
    GVT_OK(gv_loader_next(l, &b));
    const float *x = gv_tensor_data_const(b.x);
    const uint8_t *px = gv_tensor_data_const(d.images);
    cr_assert(gv_tensor_dim(b.x, 1) == 784 && x[400] == (float)px[400] / 255.0f);
    cr_assert_eq(((const int32_t *)gv_tensor_data_const(b.y))[0], 9);
    gv_loader_free(l);
    gv_dataset_free(&part);

    /* an uncompressed copy loads too (the layout scripts/fetch-mnist.sh makes) */
    GVT_OK(gv_idx_write(tpath("t10k-images-idx3-ubyte"), d.images, true));
    GVT_OK(gv_idx_write(tpath("t10k-labels-idx1-ubyte"), d.labels, true));
    gv_dataset c;
    GVT_OK(gv_fashion_mnist_load(gvt_tmpdir, "t10k", &c));
    cr_assert(gv_tensor_equal(c.images, d.images) && gv_tensor_equal(c.labels, d.labels));
    gv_dataset_free(&c);

    /* one pixel changed: the checksum names the file and both digests */
    ((uint8_t *)gv_tensor_data(d.images))[12345] ^= 1;
    GVT_OK(gv_idx_write(tpath("t10k-images-idx3-ubyte"), d.images, true));
    GVT_FAILS(gv_fashion_mnist_load(gvt_tmpdir, "t10k", &c), GV_ERR_FORMAT,
              "t10k-images-idx3-ubyte': the uncompressed file has SHA-256 ");
    cr_assert(strstr(gv_last_error(), "Fashion-MNIST's is 5b4141f0afbad91edebe8549f8fcffe087"),
              "%s", gv_last_error());
    cr_assert_null(c.images, "on error *out is left empty");
    /* one label changed */
    ((uint8_t *)gv_tensor_data(d.images))[12345] ^= 1;
    ((uint8_t *)gv_tensor_data(d.labels))[7] ^= 1;
    GVT_OK(gv_idx_write(tpath("t10k-images-idx3-ubyte"), d.images, true));
    GVT_OK(gv_idx_write(tpath("t10k-labels-idx1-ubyte"), d.labels, true));
    GVT_FAILS(gv_fashion_mnist_load(gvt_tmpdir, "t10k", &c), GV_ERR_FORMAT,
              "t10k-labels-idx1-ubyte': the uncompressed file has SHA-256 ");
    gv_dataset_free(&d);
}

Test(fashion_mnist, missing_directory_bad_split_and_class_names) {
    gv_dataset d;
    GVT_FAILS(gv_fashion_mnist_load(tpath("nowhere"), "train", &d), GV_ERR_NOT_FOUND,
              "install the Debian package dataset-fashion-mnist");
    GVT_FAILS(gv_fashion_mnist_load(NULL, "test", &d), GV_ERR_ARG, "split 'test'");
    GVT_FAILS(gv_fashion_mnist_load(gvt_tmpdir, "train", &d), GV_ERR_NOT_FOUND,
              "train-images-idx3-ubyte");
    GVT_FAILS(gv_fashion_mnist_load(NULL, "train", NULL), GV_ERR_ARG, "out is NULL");
    cr_assert_str_eq(gv_fashion_mnist_class_name(0), "T-shirt/top");
    cr_assert_str_eq(gv_fashion_mnist_class_name(8), "Bag");
    cr_assert_null(gv_fashion_mnist_class_name(10));
    cr_assert_null(gv_fashion_mnist_class_name(-1));
}
