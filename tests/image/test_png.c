/* gv_png_write / gv_png_read / gv_image_grid: bit-exact round trips (gray,
 * RGB, odd sizes), the formats libpng converts on read (palette, 16-bit,
 * 1-bit, alpha, interlaced), grid layout, clipping and NaN, argument errors,
 * the atomic write (no overwrite without force, nothing left behind after a
 * failure), and every kind of broken file: not a PNG, every truncation,
 * every flipped byte, absurd dimensions. */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <math.h>
#include <png.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include "checkpoint/io_internal.h"
#include "grove/image.h"
#include "testutil.h"

/* ---- helpers -------------------------------------------------------------- */

static void make_tmpdir(void) { gvt_tmpdir_make("png"); }
static void remove_tmpdir(void) { gvt_tmpdir_remove(); }

TestSuite(png, .init = make_tmpdir, .fini = remove_tmpdir);
TestSuite(grid);

static char *tpath(const char *name) { return gvt_tmp_path(name); }


/* Number of entries in gvt_tmpdir (besides . and ..), and how many of them look
 * like temporaries of an atomic write. */
static int count_entries(int *temporaries) {
    DIR *d = opendir(gvt_tmpdir);
    cr_assert_not_null(d);
    int n = 0, tmp = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, "..")) continue;
        n++;
        if (strstr(e->d_name, ".tmp")) tmp++;
    }
    closedir(d);
    if (temporaries) *temporaries = tmp;
    return n;
}

/* A uint8 tensor whose bytes are a fixed pseudo-random pattern including 0
 * and 255 (so a channel swap, a flip or an off-by-one row shows). */
static gv_tensor *pattern(int rank, const int64_t *shape, unsigned seed) {
    gv_tensor *t = GVT_NN(gv_tensor_zeros(GV_U8, rank, shape));
    uint8_t *p = gv_tensor_data(t);
    uint32_t s = seed * 2654435761u + 1;
    for (size_t i = 0; i < gv_tensor_nbytes(t); i++) {
        s = s * 1664525u + 1013904223u;
        p[i] = i % 7 == 0 ? 0 : i % 11 == 0 ? 255 : (uint8_t)(s >> 24);
    }
    return t;
}

static void assert_round_trip(gv_tensor *img, const char *name) {
    char *path = tpath(name);
    GVT_OK(gv_png_write(path, img, false));
    size_t len;
    char *bytes = gvt_read_file(path, &len);
    cr_assert(len > 8 && memcmp(bytes, "\x89PNG\r\n\x1a\n", 8) == 0, "%s: no PNG signature", name);
    free(bytes);
    gv_tensor *back = GVT_NN(gv_png_read(path));
    cr_assert(gv_tensor_equal(img, back), "%s: round trip differs", name);
    gv_tensor_free(back);
    free(path);
}

/* A small valid gray PNG (4 x 3) written by gv_png_write, as bytes. */
static unsigned char *small_png(size_t *len) {
    gv_tensor *img = pattern(GV_DIMS(3, 4), 9);
    char *path = tpath("small.png");
    GVT_OK(gv_png_write(path, img, true));
    unsigned char *bytes = (unsigned char *)gvt_read_file(path, len);
    unlink(path);
    free(path);
    gv_tensor_free(img);
    return bytes;
}

/* Write a PNG with libpng's classic API in any color type / bit depth (for
 * the formats gv_png_write never produces). rows: height rows of packed
 * bytes as libpng expects them (16-bit samples big-endian). */
typedef struct raw_png {
    uint32_t width, height;
    int color_type, bit_depth, interlace;
    const png_color *palette;
    int npalette;
    const unsigned char *data; /* rows back to back */
    size_t rowbytes;
    const unsigned char *trans_alpha; /* palette tRNS, or NULL */
    int ntrans;
    const png_color_16 *trans_color; /* gray/RGB tRNS, or NULL */
} raw_png;

static bool write_raw_png_impl(FILE *f, png_structp png, png_infop info, const raw_png *r,
                               png_bytepp rows) {
    if (setjmp(png_jmpbuf(png))) return false;
    png_init_io(png, f);
    png_set_IHDR(png, info, r->width, r->height, r->bit_depth, r->color_type, r->interlace,
                 PNG_COMPRESSION_TYPE_DEFAULT, PNG_FILTER_TYPE_DEFAULT);
    if (r->palette) png_set_PLTE(png, info, r->palette, r->npalette);
    if (r->trans_alpha || r->trans_color)
        png_set_tRNS(png, info, r->trans_alpha, r->ntrans, r->trans_color);
    png_write_info(png, info);
    png_write_image(png, rows);
    png_write_end(png, info);
    return true;
}

static void write_raw_png(const char *path, const raw_png *r) {
    FILE *f = fopen(path, "wb");
    cr_assert_not_null(f);
    png_structp png = png_create_write_struct(PNG_LIBPNG_VER_STRING, NULL, NULL, NULL);
    png_infop info = png_create_info_struct(png);
    png_bytepp rows = malloc(r->height * sizeof *rows);
    cr_assert(png && info && rows);
    for (uint32_t y = 0; y < r->height; y++) rows[y] = (png_bytep)r->data + y * r->rowbytes;
    bool ok = write_raw_png_impl(f, png, info, r, rows);
    png_destroy_write_struct(&png, &info);
    free(rows);
    cr_assert_eq(fclose(f), 0);
    cr_assert(ok, "libpng could not write %s", path);
}

/* ---- round trips ---------------------------------------------------------- */

Test(png, round_trip_gray) {
    gv_tensor *a = pattern(GV_DIMS(5, 7), 1);
    gv_tensor *b = pattern(GV_DIMS(1, 1), 2);
    gv_tensor *c = pattern(GV_DIMS(61, 33), 3);
    gv_tensor *d = pattern(GV_DIMS(1, 300), 4);
    assert_round_trip(a, "a.png");
    assert_round_trip(b, "b.png");
    assert_round_trip(c, "c.png");
    assert_round_trip(d, "d.png");
    gv_tensor_free(a);
    gv_tensor_free(b);
    gv_tensor_free(c);
    gv_tensor_free(d);
}

Test(png, round_trip_rgb) {
    gv_tensor *a = pattern(GV_DIMS(4, 6, 3), 5);
    gv_tensor *b = pattern(GV_DIMS(1, 1, 3), 6);
    gv_tensor *c = pattern(GV_DIMS(37, 50, 3), 7);
    assert_round_trip(a, "a.png");
    assert_round_trip(b, "b.png");
    assert_round_trip(c, "c.png");
    /* channel order: a pure red pixel stays red */
    gv_tensor *red = GVT_NN(gv_tensor_zeros(GV_U8, GV_DIMS(1, 2, 3)));
    ((uint8_t *)gv_tensor_data(red))[0] = 255;
    ((uint8_t *)gv_tensor_data(red))[5] = 200; /* second pixel blue */
    assert_round_trip(red, "red.png");
    gv_tensor_free(a);
    gv_tensor_free(b);
    gv_tensor_free(c);
    gv_tensor_free(red);
}

Test(png, round_trip_wider_than_libpng_default_limit) {
    /* libpng refuses more than 10^6 pixels per side unless told otherwise */
    gv_tensor *wide = pattern(GV_DIMS(2, 1100000), 16);
    gv_tensor *tall = pattern(GV_DIMS(1100000, 1, 3), 17);
    assert_round_trip(wide, "wide.png");
    assert_round_trip(tall, "tall.png");
    gv_tensor_free(wide);
    gv_tensor_free(tall);
}

Test(png, round_trip_of_a_view) {
    /* a reshaped view writes the shared data */
    gv_tensor *flat = pattern(GV_DIMS(24), 8);
    gv_tensor *img = GVT_NN(gv_tensor_reshape(flat, GV_DIMS(2, 4, 3)));
    assert_round_trip(img, "view.png");
    gv_tensor_free(img);
    gv_tensor_free(flat);
}

/* ---- formats converted on read ------------------------------------------- */

Test(png, reads_rgba_dropping_alpha) {
    const unsigned char px[2 * 2 * 4] = {255, 0, 0, 0,   0, 255, 0, 128,
                                         0, 0, 255, 255, 10, 20, 30, 40};
    char *path = tpath("rgba.png");
    write_raw_png(path, &(raw_png){.width = 2, .height = 2, .color_type = PNG_COLOR_TYPE_RGBA,
        .bit_depth = 8, .data = px, .rowbytes = 8});
    gv_tensor *t = GVT_NN(gv_png_read(path));
    const unsigned char want[12] = {255, 0, 0, 0, 255, 0, 0, 0, 255, 10, 20, 30};
    gv_tensor *w = GVT_NN(gv_tensor_from_data(GV_U8, GV_DIMS(2, 2, 3), want, sizeof want));
    cr_assert(gv_tensor_equal(t, w));
    gv_tensor_free(t);
    gv_tensor_free(w);
    free(path);
}

Test(png, reads_gray_alpha_as_gray) {
    const unsigned char px[3 * 2] = {7, 0, 100, 255, 250, 1};
    char *path = tpath("ga.png");
    write_raw_png(path, &(raw_png){.width = 3, .height = 1, .color_type = PNG_COLOR_TYPE_GRAY_ALPHA,
        .bit_depth = 8, .data = px, .rowbytes = 6});
    gv_tensor *t = GVT_NN(gv_png_read(path));
    const unsigned char want[3] = {7, 100, 250};
    gv_tensor *w = GVT_NN(gv_tensor_from_data(GV_U8, GV_DIMS(1, 3), want, sizeof want));
    cr_assert(gv_tensor_equal(t, w));
    gv_tensor_free(t);
    gv_tensor_free(w);
    free(path);
}

Test(png, reads_16_bit_gray_scaled_to_8) {
    /* v8 * 257 is the exact 16-bit image of v8, and scales back to v8 */
    const unsigned char px[4 * 2] = {0x00, 0x00, 0xFF, 0xFF, 0x80, 0x80, 0x01, 0x01};
    char *path = tpath("g16.png");
    write_raw_png(path, &(raw_png){.width = 4, .height = 1, .color_type = PNG_COLOR_TYPE_GRAY,
        .bit_depth = 16, .data = px, .rowbytes = 8});
    gv_tensor *t = GVT_NN(gv_png_read(path));
    const unsigned char want[4] = {0, 255, 128, 1};
    gv_tensor *w = GVT_NN(gv_tensor_from_data(GV_U8, GV_DIMS(1, 4), want, sizeof want));
    cr_assert(gv_tensor_equal(t, w));
    gv_tensor_free(t);
    gv_tensor_free(w);
    free(path);
}

Test(png, reads_1_bit_gray_and_palette) {
    /* 1-bit gray 10 x 1: bits 1011001110 -> 0/255 */
    const unsigned char bits[2] = {0xB3, 0x80};
    char *path = tpath("g1.png");
    write_raw_png(path, &(raw_png){.width = 10, .height = 1, .color_type = PNG_COLOR_TYPE_GRAY,
        .bit_depth = 1, .data = bits, .rowbytes = 2});
    gv_tensor *t = GVT_NN(gv_png_read(path));
    const unsigned char want[10] = {255, 0, 255, 255, 0, 0, 255, 255, 255, 0};
    gv_tensor *w = GVT_NN(gv_tensor_from_data(GV_U8, GV_DIMS(1, 10), want, sizeof want));
    cr_assert(gv_tensor_equal(t, w));
    gv_tensor_free(t);
    gv_tensor_free(w);
    free(path);

    /* 2-bit palette, 3 x 2 */
    const png_color pal[4] = {{0, 0, 0}, {255, 0, 0}, {0, 128, 0}, {1, 2, 3}};
    const unsigned char idx[2] = {(1 << 6) | (2 << 4) | (3 << 2), (3 << 6) | (0 << 4) | (1 << 2)};
    path = tpath("pal.png");
    write_raw_png(path, &(raw_png){.width = 3, .height = 2, .color_type = PNG_COLOR_TYPE_PALETTE,
        .bit_depth = 2, .palette = pal, .npalette = 4, .data = idx, .rowbytes = 1});
    t = GVT_NN(gv_png_read(path));
    const unsigned char wantp[18] = {255, 0, 0, 0, 128, 0, 1, 2, 3, 1, 2, 3, 0, 0, 0, 255, 0, 0};
    w = GVT_NN(gv_tensor_from_data(GV_U8, GV_DIMS(2, 3, 3), wantp, sizeof wantp));
    cr_assert(gv_tensor_equal(t, w));
    gv_tensor_free(t);
    gv_tensor_free(w);
    free(path);
}

Test(png, reads_transparency_as_opaque) {
    /* palette with tRNS: libpng's palette expansion adds alpha; it is dropped */
    const png_color pal[2] = {{10, 20, 30}, {200, 100, 0}};
    const unsigned char trans[2] = {0, 128};
    const unsigned char idx[2] = {0, 1};
    char *path = tpath("pal_trns.png");
    write_raw_png(path, &(raw_png){.width = 2, .height = 1, .color_type = PNG_COLOR_TYPE_PALETTE,
        .bit_depth = 8, .palette = pal, .npalette = 2, .data = idx, .rowbytes = 2,
        .trans_alpha = trans, .ntrans = 2});
    gv_tensor *t = GVT_NN(gv_png_read(path));
    const unsigned char want[6] = {10, 20, 30, 200, 100, 0};
    gv_tensor *w = GVT_NN(gv_tensor_from_data(GV_U8, GV_DIMS(1, 2, 3), want, sizeof want));
    cr_assert(gv_tensor_equal(t, w));
    gv_tensor_free(t);
    gv_tensor_free(w);
    free(path);

    /* gray with a transparent color key stays plain gray */
    const png_color_16 key = {.gray = 7};
    const unsigned char g[3] = {7, 8, 9};
    path = tpath("gray_trns.png");
    write_raw_png(path, &(raw_png){.width = 3, .height = 1, .color_type = PNG_COLOR_TYPE_GRAY,
        .bit_depth = 8, .data = g, .rowbytes = 3, .trans_color = &key});
    t = GVT_NN(gv_png_read(path));
    w = GVT_NN(gv_tensor_from_data(GV_U8, GV_DIMS(1, 3), g, sizeof g));
    cr_assert(gv_tensor_equal(t, w));
    gv_tensor_free(t);
    gv_tensor_free(w);
    free(path);

    /* RGB with a color key likewise */
    const png_color_16 rgbkey = {.red = 1, .green = 2, .blue = 3};
    const unsigned char rgb[6] = {1, 2, 3, 4, 5, 6};
    path = tpath("rgb_trns.png");
    write_raw_png(path, &(raw_png){.width = 2, .height = 1, .color_type = PNG_COLOR_TYPE_RGB,
        .bit_depth = 8, .data = rgb, .rowbytes = 6, .trans_color = &rgbkey});
    t = GVT_NN(gv_png_read(path));
    w = GVT_NN(gv_tensor_from_data(GV_U8, GV_DIMS(1, 2, 3), rgb, sizeof rgb));
    cr_assert(gv_tensor_equal(t, w));
    gv_tensor_free(t);
    gv_tensor_free(w);
    free(path);
}

Test(png, reads_interlaced) {
    gv_tensor *img = pattern(GV_DIMS(13, 11, 3), 10);
    char *path = tpath("adam7.png");
    write_raw_png(path, &(raw_png){.width = 11, .height = 13, .color_type = PNG_COLOR_TYPE_RGB,
        .bit_depth = 8, .interlace = PNG_INTERLACE_ADAM7, .data = gv_tensor_data(img),
        .rowbytes = 33});
    gv_tensor *t = GVT_NN(gv_png_read(path));
    cr_assert(gv_tensor_equal(t, img));
    gv_tensor_free(t);
    gv_tensor_free(img);
    free(path);
}

/* ---- writing: arguments and the atomic protocol --------------------------- */

Test(png, write_rejects_bad_tensors) {
    char *path = tpath("bad.png");
    gv_tensor *f32 = GVT_NN(gv_tensor_zeros(GV_F32, GV_DIMS(2, 2)));
    gv_tensor *r1 = GVT_NN(gv_tensor_zeros(GV_U8, GV_DIMS(4)));
    gv_tensor *r4 = GVT_NN(gv_tensor_zeros(GV_U8, GV_DIMS(2, 2, 3, 1)));
    gv_tensor *c4 = GVT_NN(gv_tensor_zeros(GV_U8, GV_DIMS(2, 2, 4)));
    gv_tensor *c1 = GVT_NN(gv_tensor_zeros(GV_U8, GV_DIMS(2, 2, 1)));
    gv_tensor *h0 = GVT_NN(gv_tensor_zeros(GV_U8, GV_DIMS(0, 5)));
    gv_tensor *w0 = GVT_NN(gv_tensor_zeros(GV_U8, GV_DIMS(5, 0, 3)));
    gv_tensor *s0 = GVT_NN(gv_tensor_scalar(GV_U8, 1));
    GVT_FAILS(gv_png_write(NULL, r1, false), GV_ERR_ARG, "path");
    GVT_FAILS(gv_png_write("", r1, false), GV_ERR_ARG, "path");
    GVT_FAILS(gv_png_write(path, NULL, false), GV_ERR_ARG, "NULL");
    GVT_FAILS(gv_png_write(path, f32, false), GV_ERR_DTYPE, "float32");
    GVT_FAILS(gv_png_write(path, r1, false), GV_ERR_SHAPE, "[4]");
    GVT_FAILS(gv_png_write(path, r4, false), GV_ERR_SHAPE, "[2, 2, 3, 1]");
    GVT_FAILS(gv_png_write(path, c4, false), GV_ERR_SHAPE, "[2, 2, 4]");
    GVT_FAILS(gv_png_write(path, c1, false), GV_ERR_SHAPE, "[2, 2, 1]");
    GVT_FAILS(gv_png_write(path, h0, false), GV_ERR_SHAPE, "0 x 5");
    GVT_FAILS(gv_png_write(path, w0, false), GV_ERR_SHAPE, "5 x 0");
    GVT_FAILS(gv_png_write(path, s0, false), GV_ERR_SHAPE, "[]");
    cr_assert_eq(count_entries(NULL), 0, "a rejected write created a file");
    gv_tensor_free(f32);
    gv_tensor_free(r1);
    gv_tensor_free(r4);
    gv_tensor_free(c4);
    gv_tensor_free(c1);
    gv_tensor_free(h0);
    gv_tensor_free(w0);
    gv_tensor_free(s0);
    free(path);
}

Test(png, write_to_missing_directory) {
    char *path = tpath("no/such/dir/x.png");
    gv_tensor *img = pattern(GV_DIMS(2, 2), 11);
    GVT_FAILS(gv_png_write(path, img, false), GV_ERR_NOT_FOUND, path);
    GVT_FAILS(gv_png_write(path, img, true), GV_ERR_NOT_FOUND, path);
    cr_assert_eq(count_entries(NULL), 0);
    gv_tensor_free(img);
    free(path);
}

Test(png, no_overwrite_without_force) {
    char *path = tpath("x.png");
    gv_tensor *a = pattern(GV_DIMS(3, 5), 12);
    gv_tensor *b = pattern(GV_DIMS(4, 2, 3), 13);
    GVT_OK(gv_png_write(path, a, false));
    GVT_FAILS(gv_png_write(path, b, false), GV_ERR_EXISTS, path);
    gv_tensor *back = GVT_NN(gv_png_read(path));
    cr_assert(gv_tensor_equal(back, a), "the old file changed");
    gv_tensor_free(back);

    int tmp;
    cr_assert_eq(count_entries(&tmp), 1);
    cr_assert_eq(tmp, 0);

    GVT_OK(gv_png_write(path, b, true));
    back = GVT_NN(gv_png_read(path));
    cr_assert(gv_tensor_equal(back, b), "force did not replace the file");
    gv_tensor_free(back);
    cr_assert_eq(count_entries(&tmp), 1);
    cr_assert_eq(tmp, 0);
    gv_tensor_free(a);
    gv_tensor_free(b);
    free(path);
}

/* Every write fails with ENOSPC after `budget` bytes. */
static ssize_t enospc_write(int fd, const void *buf, size_t count, void *userdata) {
    size_t *budget = userdata;
    if (*budget == 0) {
        errno = ENOSPC;
        return -1;
    }
    size_t n = count < *budget ? count : *budget;
    *budget -= n;
    return write(fd, buf, n);
}

Test(png, failed_write_leaves_old_file_and_no_temporary) {
    char *path = tpath("x.png");
    gv_tensor *a = pattern(GV_DIMS(6, 6), 14);
    gv_tensor *b = pattern(GV_DIMS(40, 40, 3), 15);
    GVT_OK(gv_png_write(path, a, false));

    size_t budget = 100;
    gv_atomic_io_set_hooks(&(gv_atomic_io_hooks){.write = enospc_write, .userdata = &budget});
    gv_clear_error();
    gv_status st = gv_png_write(path, b, true);
    gv_atomic_io_set_hooks(NULL);
    cr_assert_eq(st, GV_ERR_IO, "expected GV_ERR_IO, got %s: %s", gv_status_name(st),
                 gv_last_error());
    cr_assert(strstr(gv_last_error(), path) && strstr(gv_last_error(), strerror(ENOSPC)),
              "message: %s", gv_last_error());

    int tmp;
    cr_assert_eq(count_entries(&tmp), 1);
    cr_assert_eq(tmp, 0, "a temporary file was left behind");
    gv_tensor *back = GVT_NN(gv_png_read(path));
    cr_assert(gv_tensor_equal(back, a), "the old file changed");

    /* and a fresh path: nothing at all is left */
    char *fresh = tpath("fresh.png");
    budget = 10;
    gv_atomic_io_set_hooks(&(gv_atomic_io_hooks){.write = enospc_write, .userdata = &budget});
    st = gv_png_write(fresh, b, false);
    gv_atomic_io_set_hooks(NULL);
    cr_assert_eq(st, GV_ERR_IO);
    cr_assert_eq(access(fresh, F_OK), -1);
    cr_assert_eq(count_entries(&tmp), 1);
    cr_assert_eq(tmp, 0);
    gv_tensor_free(back);
    gv_tensor_free(a);
    gv_tensor_free(b);
    free(fresh);
    free(path);
}

/* ---- reading broken files ------------------------------------------------- */

Test(png, read_errors_name_the_file) {
    char *missing = tpath("missing.png");
    GVT_NULL(gv_png_read(missing), GV_ERR_NOT_FOUND, missing);
    GVT_NULL(gv_png_read(NULL), GV_ERR_ARG, "path");
    GVT_NULL(gv_png_read(gvt_tmpdir), GV_ERR_IO, gvt_tmpdir); /* a directory */

    char *text = tpath("text.png");
    gvt_write_file(text, "hello, this is not a PNG file at all\n", 37);
    GVT_NULL(gv_png_read(text), GV_ERR_FORMAT, "not a PNG");
    GVT_NULL(gv_png_read(text), GV_ERR_FORMAT, text);

    char *empty = tpath("empty.png");
    gvt_write_file(empty, "", 0);
    GVT_NULL(gv_png_read(empty), GV_ERR_FORMAT, "not a PNG");

    /* a JPEG's first bytes */
    char *jpeg = tpath("photo.png");
    gvt_write_file(jpeg, "\xff\xd8\xff\xe0\x00\x10JFIF\x00\x01", 12);
    GVT_NULL(gv_png_read(jpeg), GV_ERR_FORMAT, "not a PNG");
    free(missing);
    free(text);
    free(empty);
    free(jpeg);
}

Test(png, every_truncation_is_a_format_error) {
    size_t len;
    unsigned char *good = small_png(&len);
    char *path = tpath("cut.png");
    /* the full file reads (sanity), every proper prefix fails cleanly */
    gvt_write_file(path, good, len);
    gv_tensor *t = GVT_NN(gv_png_read(path));
    gv_tensor_free(t);

    size_t wrong = 0, first_wrong = 0;
    char msg[512] = "";
    for (size_t cut = 0; cut < len; cut++) {
        gvt_write_file(path, good, cut);
        gv_clear_error();
        t = gv_png_read(path);
        bool ok = !t && gv_last_status() == GV_ERR_FORMAT && strstr(gv_last_error(), path);
        if (!ok && !wrong++) {
            first_wrong = cut;
            snprintf(msg, sizeof msg, "%s: %s", gv_status_name(gv_last_status()), gv_last_error());
        }
        gv_tensor_free(t);
    }
    cr_assert_eq(wrong, 0, "%zu of %zu prefixes not rejected as GV_ERR_FORMAT; first at %zu: %s",
                 wrong, len, first_wrong, msg);

    /* a cut inside the image data says so */
    gvt_write_file(path, good, len - 20);
    GVT_NULL(gv_png_read(path), GV_ERR_FORMAT, "truncated");
    free(good);
    free(path);
}

Test(png, corrupted_byte_is_a_format_error) {
    size_t len;
    unsigned char *good = small_png(&len);
    char *path = tpath("flip.png");

    /* a flipped byte in IHDR's height, then in IDAT's CRC: libpng checks the
     * CRC of every critical chunk */
    size_t ihdr = 8 + 8; /* signature, IHDR length and type */
    cr_assert(memcmp(good + ihdr - 4, "IHDR", 4) == 0);
    good[ihdr + 7] ^= 0x04;
    gvt_write_file(path, good, len);
    GVT_NULL(gv_png_read(path), GV_ERR_FORMAT, "CRC");
    GVT_NULL(gv_png_read(path), GV_ERR_FORMAT, path);
    good[ihdr + 7] ^= 0x04;

    size_t idat_crc = len - 12 - 4; /* IDAT is the last chunk before IEND */
    cr_assert(memcmp(good + len - 8, "IEND", 4) == 0);
    good[idat_crc + 1] ^= 0x80;
    gvt_write_file(path, good, len);
    GVT_NULL(gv_png_read(path), GV_ERR_FORMAT, "CRC");
    good[idat_crc + 1] ^= 0x80;

    /* every single-bit flip anywhere in the file is detected: the signature,
     * the chunk CRCs and the zlib checksum between them cover every byte */
    size_t missed = 0, first_missed = 0;
    for (size_t i = 0; i < len; i++) {
        good[i] ^= 0x01;
        gvt_write_file(path, good, len);
        good[i] ^= 0x01;
        gv_clear_error();
        gv_tensor *t = gv_png_read(path);
        if ((t || gv_last_status() != GV_ERR_FORMAT) && !missed++) first_missed = i;
        gv_tensor_free(t);
    }
    cr_assert_eq(missed, 0, "%zu of %zu flipped bytes not detected; first at byte %zu", missed,
                 len, first_missed);
    free(good);
    free(path);
}

/* A PNG whose IHDR (valid CRC) claims width x height, followed by an empty
 * IDAT and IEND: no image data. */
static void write_header_only(const char *path, uint32_t width, uint32_t height) {
    unsigned char f[8 + 25 + 12 + 12];
    memcpy(f, "\x89PNG\r\n\x1a\n", 8);
    unsigned char *c = f + 8;
    memcpy(c, "\0\0\0\x0dIHDR", 8);
    for (int i = 0; i < 4; i++) {
        c[8 + i] = (unsigned char)(width >> (24 - 8 * i));
        c[12 + i] = (unsigned char)(height >> (24 - 8 * i));
    }
    c[16] = 8; /* bit depth */
    c[17] = 0; /* gray */
    c[18] = c[19] = c[20] = 0;
    uint32_t crc = (uint32_t)crc32(0, c + 4, 17);
    for (int i = 0; i < 4; i++) c[21 + i] = (unsigned char)(crc >> (24 - 8 * i));
    memcpy(f + 33, "\0\0\0\0IDAT", 8);
    crc = (uint32_t)crc32(0, (const unsigned char *)"IDAT", 4);
    for (int i = 0; i < 4; i++) f[41 + i] = (unsigned char)(crc >> (24 - 8 * i));
    memcpy(f + 45, "\0\0\0\0IEND\xae\x42\x60\x82", 12);
    gvt_write_file(path, f, sizeof f);
}

Test(png, absurd_dimensions_are_refused) {
    char *path = tpath("huge.png");
    write_header_only(path, 100000, 100000);
    GVT_NULL(gv_png_read(path), GV_ERR_UNSUPPORTED, "100000 x 100000");
    write_header_only(path, (1u << 28) + 1, 1);
    GVT_NULL(gv_png_read(path), GV_ERR_UNSUPPORTED, path);
    /* zero and > 2^31-1 are invalid PNG, not merely too big */
    write_header_only(path, 0, 5);
    GVT_NULL(gv_png_read(path), GV_ERR_FORMAT, path);
    write_header_only(path, 0x80000000u, 1);
    GVT_NULL(gv_png_read(path), GV_ERR_FORMAT, path);
    /* a sane header with the image data missing */
    write_header_only(path, 3, 2);
    GVT_NULL(gv_png_read(path), GV_ERR_FORMAT, path);
    free(path);
}

/* ---- grid ----------------------------------------------------------------- */

/* Independent reference: for every output pixel, find its tile. */
static gv_tensor *grid_reference(const float *v, int64_t n, int64_t nrow, int64_t h, int64_t w,
                                 int64_t pad) {
    int64_t rows = (n + nrow - 1) / nrow;
    int64_t gh = rows * (h + pad) + pad, gw = nrow * (w + pad) + pad;
    gv_tensor *out = GVT_NN(gv_tensor_zeros(GV_U8, GV_DIMS(gh, gw)));
    uint8_t *o = gv_tensor_data(out);
    for (int64_t y = 0; y < gh; y++)
        for (int64_t x = 0; x < gw; x++) {
            int64_t ty = y - pad, tx = x - pad;
            if (ty < 0 || tx < 0 || ty % (h + pad) >= h || tx % (w + pad) >= w) continue;
            int64_t i = (ty / (h + pad)) * nrow + tx / (w + pad);
            if (i >= n) continue;
            double p = v[i * h * w + (ty % (h + pad)) * w + tx % (w + pad)];
            p = isnan(p) ? 0 : p < 0 ? 0 : p > 1 ? 1 : p;
            o[y * gw + x] = (uint8_t)round(255 * p);
        }
    return out;
}

static uint8_t px(gv_tensor *t, int64_t y, int64_t x) {
    double v;
    GVT_OK(gv_tensor_get(t, (int64_t[]){y, x}, &v));
    return (uint8_t)v;
}

Test(grid, layout) {
    /* 5 images of 2 x 3, 3 per row, padding 1 -> [2*3+1, 3*4+1] = [7, 13] */
    enum { N = 5, H = 2, W = 3 };
    float v[N * H * W];
    for (int i = 0; i < N * H * W; i++) v[i] = (float)(i + 1) / 40.0f;
    gv_tensor *imgs = GVT_NN(gv_tensor_from_data(GV_F32, GV_DIMS(N, H * W), v, sizeof v));
    gv_tensor *g = GVT_NN(gv_image_grid(imgs, 3, H, W, 1));
    cr_assert_eq(gv_tensor_rank(g), 2);
    cr_assert_eq(gv_tensor_dim(g, 0), 7);
    cr_assert_eq(gv_tensor_dim(g, 1), 13);
    cr_assert_eq(gv_tensor_dtype(g), GV_U8);

    /* known positions: image i's (y, x) is v[i*6 + y*3 + x] */
    cr_assert_eq(px(g, 0, 0), 0);                                /* border */
    cr_assert_eq(px(g, 1, 1), (uint8_t)round(255.0 * v[0]));     /* image 0 (0,0) */
    cr_assert_eq(px(g, 2, 3), (uint8_t)round(255.0 * v[5]));     /* image 0 (1,2) */
    cr_assert_eq(px(g, 1, 4), 0);                                /* gap between 0 and 1 */
    cr_assert_eq(px(g, 1, 5), (uint8_t)round(255.0 * v[6]));     /* image 1 (0,0) */
    cr_assert_eq(px(g, 2, 11), (uint8_t)round(255.0 * v[17]));   /* image 2 (1,2) */
    cr_assert_eq(px(g, 3, 1), 0);                                /* gap between rows */
    cr_assert_eq(px(g, 4, 1), (uint8_t)round(255.0 * v[18]));    /* image 3 (0,0) */
    cr_assert_eq(px(g, 5, 7), (uint8_t)round(255.0 * v[29]));    /* image 4 (1,2) */
    cr_assert_eq(px(g, 4, 9), 0);                                /* empty slot 5 */
    cr_assert_eq(px(g, 6, 12), 0);                               /* bottom-right border */

    gv_tensor *ref = grid_reference(v, N, 3, H, W, 1);
    cr_assert(gv_tensor_equal(g, ref));

    /* [N, h, w] gives the same grid */
    gv_tensor *imgs3 = GVT_NN(gv_tensor_from_data(GV_F32, GV_DIMS(N, H, W), v, sizeof v));
    gv_tensor *g3 = GVT_NN(gv_image_grid(imgs3, 3, H, W, 1));
    cr_assert(gv_tensor_equal(g, g3));

    /* no padding, one per row, more per row than images */
    gv_tensor *g0 = GVT_NN(gv_image_grid(imgs, 1, H, W, 0));
    gv_tensor *r0 = grid_reference(v, N, 1, H, W, 0);
    cr_assert(gv_tensor_equal(g0, r0));
    cr_assert_eq(gv_tensor_dim(g0, 0), N * H);
    gv_tensor *g8 = GVT_NN(gv_image_grid(imgs, 8, H, W, 2));
    gv_tensor *r8 = grid_reference(v, N, 8, H, W, 2);
    cr_assert(gv_tensor_equal(g8, r8));
    cr_assert_eq(gv_tensor_dim(g8, 1), 8 * (W + 2) + 2);
    /* a 3x3 matrix of 28x28 digits like the VAE's samples */
    float *big = malloc(10 * 784 * sizeof *big);
    cr_assert_not_null(big);
    for (int i = 0; i < 10 * 784; i++) big[i] = (float)((i * 37) % 101) / 100.0f;
    gv_tensor *digits = GVT_NN(gv_tensor_from_data(GV_F32, GV_DIMS(10, 784), big, 10 * 784 * 4));
    gv_tensor *gd = GVT_NN(gv_image_grid(digits, 4, 28, 28, 2));
    gv_tensor *rd = grid_reference(big, 10, 4, 28, 28, 2);
    cr_assert(gv_tensor_equal(gd, rd));
    cr_assert_eq(gv_tensor_dim(gd, 0), 3 * 30 + 2);

    free(big);
    gv_tensor_free(imgs);
    gv_tensor_free(g);
    gv_tensor_free(ref);
    gv_tensor_free(imgs3);
    gv_tensor_free(g3);
    gv_tensor_free(g0);
    gv_tensor_free(r0);
    gv_tensor_free(g8);
    gv_tensor_free(r8);
    gv_tensor_free(digits);
    gv_tensor_free(gd);
    gv_tensor_free(rd);
}

Test(grid, clipping_nan_and_rounding) {
    /* 0.7f is 0.69999998...: 255 * it is 178.499996, which float arithmetic
     * would round to 178.5 and then up */
    const float v[11] = {-0.5f, 1.5f, NAN,  INFINITY, -INFINITY, 0.5f,
                         0.2f,  1.0f / 255, 0.0f, 1.0f, 0.7f};
    gv_tensor *imgs = GVT_NN(gv_tensor_from_data(GV_F32, GV_DIMS(1, 11), v, sizeof v));
    gv_tensor *g = GVT_NN(gv_image_grid(imgs, 1, 1, 11, 0));
    const uint8_t want[11] = {0, 255, 0, 255, 0, 128, 51, 1, 0, 255, 178};
    gv_tensor *w = GVT_NN(gv_tensor_from_data(GV_U8, GV_DIMS(1, 11), want, sizeof want));
    cr_assert(gv_tensor_equal(g, w));
    gv_tensor_free(imgs);
    gv_tensor_free(g);
    gv_tensor_free(w);
}

Test(grid, bad_arguments) {
    gv_tensor *ok = GVT_NN(gv_tensor_zeros(GV_F32, GV_DIMS(4, 6)));
    gv_tensor *f64 = GVT_NN(gv_tensor_zeros(GV_F64, GV_DIMS(4, 6)));
    gv_tensor *u8 = GVT_NN(gv_tensor_zeros(GV_U8, GV_DIMS(4, 6)));
    gv_tensor *r1 = GVT_NN(gv_tensor_zeros(GV_F32, GV_DIMS(24)));
    gv_tensor *r4 = GVT_NN(gv_tensor_zeros(GV_F32, GV_DIMS(4, 2, 3, 1)));
    gv_tensor *n0 = GVT_NN(gv_tensor_zeros(GV_F32, GV_DIMS(0, 6)));
    gv_tensor *r3 = GVT_NN(gv_tensor_zeros(GV_F32, GV_DIMS(4, 3, 2)));
    GVT_NULL(gv_image_grid(NULL, 2, 2, 3, 1), GV_ERR_ARG, "NULL");
    GVT_NULL(gv_image_grid(f64, 2, 2, 3, 1), GV_ERR_DTYPE, "float64");
    GVT_NULL(gv_image_grid(u8, 2, 2, 3, 1), GV_ERR_DTYPE, "uint8");
    GVT_NULL(gv_image_grid(r1, 2, 2, 3, 1), GV_ERR_SHAPE, "[24]");
    GVT_NULL(gv_image_grid(r4, 2, 2, 3, 1), GV_ERR_SHAPE, "[4, 2, 3, 1]");
    GVT_NULL(gv_image_grid(n0, 2, 2, 3, 1), GV_ERR_SHAPE, "[0, 6]");
    GVT_NULL(gv_image_grid(ok, 2, 3, 3, 1), GV_ERR_SHAPE, "[4, 6]");  /* h*w != 6 */
    GVT_NULL(gv_image_grid(r3, 2, 2, 3, 1), GV_ERR_SHAPE, "[4, 3, 2]"); /* transposed */
    GVT_NULL(gv_image_grid(ok, 0, 2, 3, 1), GV_ERR_ARG, "nrow=0");
    GVT_NULL(gv_image_grid(ok, 2, 0, 3, 1), GV_ERR_ARG, "h=0");
    GVT_NULL(gv_image_grid(ok, 2, 2, -3, 1), GV_ERR_ARG, "w=-3");
    GVT_NULL(gv_image_grid(ok, 2, 2, 3, -1), GV_ERR_ARG, "padding=-1");
    GVT_NULL(gv_image_grid(ok, INT64_MAX, 2, 3, 1), GV_ERR_OVERFLOW, "overflow");
    gv_tensor_free(ok);
    gv_tensor_free(f64);
    gv_tensor_free(u8);
    gv_tensor_free(r1);
    gv_tensor_free(r4);
    gv_tensor_free(n0);
    gv_tensor_free(r3);
}

Test(png, grid_to_png_and_back) {
    float v[6 * 16];
    for (int i = 0; i < 6 * 16; i++) v[i] = (float)i / 95.0f;
    gv_tensor *imgs = GVT_NN(gv_tensor_from_data(GV_F32, GV_DIMS(6, 4, 4), v, sizeof v));
    gv_tensor *g = GVT_NN(gv_image_grid(imgs, 3, 4, 4, 2));
    char *path = tpath("grid.png");
    GVT_OK(gv_png_write(path, g, false));
    gv_tensor *back = GVT_NN(gv_png_read(path));
    cr_assert(gv_tensor_equal(g, back));
    gv_tensor_free(imgs);
    gv_tensor_free(g);
    gv_tensor_free(back);
    free(path);
}
