/* grove: 8-bit PNG files through libpng, and torchvision-style image grids.
 *
 * libpng reports errors by longjmp'ing out of whatever call failed. Each
 * encode/decode below therefore runs in a function of its own that calls
 * setjmp and returns at once when the longjmp lands, reading none of its
 * locals: everything that must survive (buffers, the output tensor, the
 * error) lives in a context struct owned by the caller, so no value is
 * indeterminate after the longjmp (C11 7.13.2.1p3), and the caller frees
 * whatever was allocated. */
#define _GNU_SOURCE
#include "grove/image.h"

#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <png.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "checkpoint/io_internal.h"
#include "core/error.h"

/* The largest image either direction accepts: 2^28 pixels (768 MiB as RGB).
 * Anything above is far beyond a sample grid or a dataset image, and on
 * read it is more likely a decompression bomb than a picture. */
#define GV_PNG_MAX_PIXELS ((int64_t)1 << 28)

/* The part of a libpng failure that outlives the longjmp. */
typedef struct png_err {
    gv_status status; /* GV_OK until something fails */
    char msg[256];
} png_err;

static void set_err(png_err *e, gv_status st, const char *msg) {
    if (e->status) return; /* the first cause wins over libpng's follow-up */
    e->status = st;
    snprintf(e->msg, sizeof e->msg, "%s", msg);
}

static void on_png_error(png_structp png, png_const_charp msg) {
    set_err(png_get_error_ptr(png), GV_ERR_FORMAT, msg ? msg : "libpng error");
    png_longjmp(png, 1);
}

/* libpng's default prints warnings to stderr; a library must stay quiet.
 * Warnings are recoverable by definition (e.g. a bad ancillary chunk CRC). */
static void on_png_warning(png_structp png, png_const_charp msg) {
    (void)png;
    (void)msg;
}

/* "[2, 3, 4]" into buf (truncated with "..." if it does not fit). */
static void shape_str(const gv_tensor *t, char *buf, size_t len) {
    int rank = gv_tensor_rank(t);
    const int64_t *s = gv_tensor_shape(t);
    size_t used = (size_t)snprintf(buf, len, "[");
    for (int i = 0; i < rank && used < len; i++)
        used += (size_t)snprintf(buf + used, len - used, "%s%" PRId64, i ? ", " : "", s[i]);
    if (used < len) used += (size_t)snprintf(buf + used, len - used, "]");
    if (used >= len && len > 4) strcpy(buf + len - 4, "...");
}

/* ---- writing -------------------------------------------------------------- */

typedef struct png_wctx {
    png_err err;
    unsigned char *buf; /* the encoded file */
    size_t len, cap;
} png_wctx;

static void on_write(png_structp png, png_bytep data, size_t n) {
    png_wctx *c = png_get_io_ptr(png);
    if (n > c->cap - c->len) {
        size_t need = c->len + n; /* cannot wrap: both are sizes of real buffers */
        size_t cap = c->cap > SIZE_MAX / 2 ? SIZE_MAX : 2 * c->cap;
        if (cap < need) cap = need;
        if (cap < 4096) cap = 4096;
        unsigned char *p = realloc(c->buf, cap);
        if (!p) {
            set_err(&c->err, GV_ERR_NOMEM, "out of memory encoding the PNG");
            png_error(png, "out of memory");
        }
        c->buf = p;
        c->cap = cap;
    }
    memcpy(c->buf + c->len, data, n);
    c->len += n;
}

static void on_flush(png_structp png) { (void)png; }

/* Encode into c->buf. rows[] is filled by the caller before, so this function
 * changes no local after setjmp. */
static void png_encode(png_structp png, png_infop info, png_wctx *c, png_bytepp rows,
                       uint32_t width, uint32_t height, int color_type) {
    if (setjmp(png_jmpbuf(png))) return; /* c->err says why */
    png_set_write_fn(png, c, on_write, on_flush);
    /* the caller bounds the size; libpng's default limit is 10^6 per side */
    png_set_user_limits(png, PNG_UINT_31_MAX, PNG_UINT_31_MAX);
    png_set_IHDR(png, info, width, height, 8, color_type, PNG_INTERLACE_NONE,
                 PNG_COMPRESSION_TYPE_DEFAULT, PNG_FILTER_TYPE_DEFAULT);
    png_write_info(png, info);
    png_write_image(png, rows);
    png_write_end(png, info);
}

gv_status gv_png_write(const char *path, const gv_tensor *image, bool force) {
    if (!path || !*path) return gv_error(GV_ERR_ARG, "gv_png_write: path is NULL or empty");
    if (!image) return gv_error(GV_ERR_ARG, "gv_png_write: '%s': image is NULL", path);
    if (gv_tensor_dtype(image) != GV_U8)
        return gv_error(GV_ERR_DTYPE, "gv_png_write: '%s': image dtype is %s, expected uint8", path,
                        gv_dtype_name(gv_tensor_dtype(image)));
    int rank = gv_tensor_rank(image);
    const int64_t *shape = gv_tensor_shape(image);
    if (!(rank == 2 || (rank == 3 && shape[2] == 3))) {
        char got[128];
        shape_str(image, got, sizeof got);
        return gv_error(GV_ERR_SHAPE,
                        "gv_png_write: '%s': image must be [H, W] (gray) or [H, W, 3] (RGB), "
                        "got %s",
                        path, got);
    }
    int64_t h = shape[0], w = shape[1];
    if (h < 1 || w < 1)
        return gv_error(GV_ERR_SHAPE, "gv_png_write: '%s': image is %" PRId64 " x %" PRId64
                        ", a PNG needs at least 1 x 1", path, h, w);
    if (h > GV_PNG_MAX_PIXELS / w)
        return gv_error(GV_ERR_SHAPE, "gv_png_write: '%s': image is %" PRId64 " x %" PRId64
                        ", more than 2^28 pixels", path, h, w);
    int channels = rank == 3 ? 3 : 1;

    png_wctx c = {.err = {GV_OK, ""}};
    png_bytepp rows = malloc((size_t)h * sizeof *rows);
    png_structp png = rows ? png_create_write_struct(PNG_LIBPNG_VER_STRING, &c.err, on_png_error,
                                                     on_png_warning)
                           : NULL;
    png_infop info = png ? png_create_info_struct(png) : NULL;
    if (!info) {
        if (png) png_destroy_write_struct(&png, NULL);
        free(rows);
        return gv_error(GV_ERR_NOMEM, "gv_png_write: '%s': out of memory", path);
    }
    /* libpng never writes through the row pointers; the cast drops const. */
    png_bytep data = (png_bytep)(uintptr_t)gv_tensor_data_const(image);
    for (int64_t y = 0; y < h; y++) rows[y] = data + (size_t)y * (size_t)w * (size_t)channels;

    png_encode(png, info, &c, rows, (uint32_t)w, (uint32_t)h,
               channels == 3 ? PNG_COLOR_TYPE_RGB : PNG_COLOR_TYPE_GRAY);
    png_destroy_write_struct(&png, &info);
    free(rows);

    gv_status st;
    if (c.err.status) {
        /* libpng rejecting our own stream is a grove bug, not a user error */
        st = gv_error(c.err.status == GV_ERR_NOMEM ? GV_ERR_NOMEM : GV_ERR_INTERNAL,
                      "gv_png_write: '%s': libpng: %s", path, c.err.msg);
    } else {
        const void *chunks[1] = {c.buf};
        size_t sizes[1] = {c.len};
        st = gv_atomic_write_file(path, chunks, sizes, 1, force);
        if (st) gv_error_prefix("gv_png_write: ");
    }
    free(c.buf);
    return st;
}

/* ---- reading -------------------------------------------------------------- */

typedef struct png_rctx {
    png_err err;
    FILE *f;
    gv_tensor *out;
    png_bytepp rows;
} png_rctx;

static void on_read(png_structp png, png_bytep data, size_t n) {
    png_rctx *c = png_get_io_ptr(png);
    if (fread(data, 1, n, c->f) == n) return;
    if (ferror(c->f)) {
        char msg[160];
        snprintf(msg, sizeof msg, "read error: %s", strerror(errno ? errno : EIO));
        set_err(&c->err, GV_ERR_IO, msg);
    } else {
        set_err(&c->err, GV_ERR_FORMAT, "truncated file");
    }
    png_error(png, "read failed");
}

/* Decode into c->out (allocated here, freed by the caller on failure). All
 * state that changes after setjmp lives in *c. */
static void png_decode(png_structp png, png_infop info, png_rctx *c) {
    if (setjmp(png_jmpbuf(png))) return;
    png_set_read_fn(png, c, on_read);
    png_set_sig_bytes(png, 8);
    /* Our own bound (below) replaces libpng's default 10^6 per side. */
    png_set_user_limits(png, PNG_UINT_31_MAX, PNG_UINT_31_MAX);
    png_read_info(png, info);

    uint32_t width = png_get_image_width(png, info), height = png_get_image_height(png, info);
    if ((int64_t)width * (int64_t)height > GV_PNG_MAX_PIXELS) {
        char msg[160];
        snprintf(msg, sizeof msg, "%" PRIu32 " x %" PRIu32 " pixels is more than 2^28", width,
                 height);
        set_err(&c->err, GV_ERR_UNSUPPORTED, msg);
        png_error(png, msg);
    }
    int color_type = png_get_color_type(png, info);
    int bit_depth = png_get_bit_depth(png, info);
    /* palette -> RGB, low-bit gray -> 8 bit, 16 -> 8 bit (rounded), alpha
     * dropped. png_set_palette_to_rgb also turns a palette's tRNS into an
     * alpha channel, which is dropped like any other. */
    bool alpha = (color_type & PNG_COLOR_MASK_ALPHA) ||
                 (color_type == PNG_COLOR_TYPE_PALETTE && png_get_valid(png, info, PNG_INFO_tRNS));
    if (color_type == PNG_COLOR_TYPE_PALETTE) png_set_palette_to_rgb(png);
    if (color_type == PNG_COLOR_TYPE_GRAY && bit_depth < 8) png_set_expand_gray_1_2_4_to_8(png);
    if (bit_depth == 16) {
#ifdef PNG_READ_SCALE_16_TO_8_SUPPORTED
        png_set_scale_16(png);
#else
        png_set_strip_16(png);
#endif
    }
    if (alpha) png_set_strip_alpha(png);
    png_set_interlace_handling(png);
    png_read_update_info(png, info);

    int channels = png_get_channels(png, info);
    int rank = (color_type & PNG_COLOR_MASK_COLOR) ? 3 : 2;
    if (png_get_bit_depth(png, info) != 8 || channels != (rank == 3 ? 3 : 1) ||
        png_get_rowbytes(png, info) != (size_t)width * (size_t)channels) {
        set_err(&c->err, GV_ERR_INTERNAL, "unexpected pixel layout after conversion");
        png_error(png, "layout");
    }
    int64_t shape[3] = {height, width, 3};
    c->out = gv_tensor_zeros(GV_U8, rank, shape);
    c->rows = malloc((size_t)height * sizeof *c->rows);
    if (!c->out || !c->rows) {
        set_err(&c->err, GV_ERR_NOMEM, "out of memory");
        png_error(png, "out of memory");
    }
    png_bytep data = gv_tensor_data(c->out);
    for (uint32_t y = 0; y < height; y++)
        c->rows[y] = data + (size_t)y * (size_t)width * (size_t)channels;
    png_read_image(png, c->rows);
    /* reads up to IEND: catches a file truncated after the image data and
     * CRC errors in the trailing chunks */
    png_read_end(png, NULL);
}

gv_tensor *gv_png_read(const char *path) {
    if (!path || !*path) return gv_error(GV_ERR_ARG, "gv_png_read: path is NULL or empty"), NULL;
    FILE *f = fopen(path, "rbe");
    if (!f) {
        int err = errno;
        gv_error(err == ENOENT ? GV_ERR_NOT_FOUND : GV_ERR_IO, "gv_png_read: cannot open '%s': %s",
                 path, strerror(err));
        return NULL;
    }
    unsigned char sig[8];
    size_t got = fread(sig, 1, sizeof sig, f);
    if (got < sizeof sig && ferror(f)) {
        int err = errno ? errno : EIO;
        fclose(f);
        gv_error(GV_ERR_IO, "gv_png_read: '%s': read error: %s", path, strerror(err));
        return NULL;
    }
    if (png_sig_cmp(sig, 0, got) != 0 || got < sizeof sig) {
        fclose(f);
        gv_error(GV_ERR_FORMAT, "gv_png_read: '%s': not a PNG file%s", path,
                 got > 0 && png_sig_cmp(sig, 0, got) == 0 ? " (truncated signature)" : "");
        return NULL;
    }

    png_rctx c = {.err = {GV_OK, ""}, .f = f};
    png_structp png =
        png_create_read_struct(PNG_LIBPNG_VER_STRING, &c.err, on_png_error, on_png_warning);
    png_infop info = png ? png_create_info_struct(png) : NULL;
    if (!info) {
        if (png) png_destroy_read_struct(&png, NULL, NULL);
        fclose(f);
        gv_error(GV_ERR_NOMEM, "gv_png_read: '%s': out of memory", path);
        return NULL;
    }
    png_decode(png, info, &c);
    png_destroy_read_struct(&png, &info, NULL);
    fclose(f);
    free(c.rows);
    if (c.err.status) {
        gv_tensor_free(c.out);
        gv_error(c.err.status, "gv_png_read: '%s': %s", path, c.err.msg);
        return NULL;
    }
    return c.out;
}

/* ---- grid ----------------------------------------------------------------- */

gv_tensor *gv_image_grid(const gv_tensor *images, int64_t nrow, int64_t h, int64_t w,
                         int64_t padding) {
    if (!images) return gv_error(GV_ERR_ARG, "gv_image_grid: images is NULL"), NULL;
    if (nrow < 1 || h < 1 || w < 1 || padding < 0) {
        gv_error(GV_ERR_ARG,
                 "gv_image_grid: need nrow, h, w >= 1 and padding >= 0, got nrow=%" PRId64
                 " h=%" PRId64 " w=%" PRId64 " padding=%" PRId64,
                 nrow, h, w, padding);
        return NULL;
    }
    if (gv_tensor_dtype(images) != GV_F32) {
        gv_error(GV_ERR_DTYPE, "gv_image_grid: images dtype is %s, expected float32",
                 gv_dtype_name(gv_tensor_dtype(images)));
        return NULL;
    }
    int rank = gv_tensor_rank(images);
    const int64_t *s = gv_tensor_shape(images);
    int64_t hw;
    if (__builtin_mul_overflow(h, w, &hw)) {
        gv_error(GV_ERR_OVERFLOW, "gv_image_grid: h*w overflows");
        return NULL;
    }
    bool ok = (rank == 2 && s[1] == hw) || (rank == 3 && s[1] == h && s[2] == w);
    if (!ok || s[0] < 1) {
        char got[128];
        shape_str(images, got, sizeof got);
        gv_error(GV_ERR_SHAPE,
                 "gv_image_grid: images must be [N, %" PRId64 "] or [N, %" PRId64 ", %" PRId64
                 "] with N >= 1, got %s",
                 hw, h, w, got);
        return NULL;
    }
    int64_t n = s[0];
    int64_t rows = n / nrow + (n % nrow != 0);
    int64_t gh, gw, t;
    if (__builtin_add_overflow(h, padding, &t) || __builtin_mul_overflow(rows, t, &gh) ||
        __builtin_add_overflow(gh, padding, &gh) || __builtin_add_overflow(w, padding, &t) ||
        __builtin_mul_overflow(nrow, t, &gw) || __builtin_add_overflow(gw, padding, &gw)) {
        gv_error(GV_ERR_OVERFLOW, "gv_image_grid: the grid size overflows");
        return NULL;
    }
    gv_tensor *out = gv_tensor_zeros(GV_U8, 2, (int64_t[]){gh, gw});
    if (!out) return gv_error_prefix("gv_image_grid: "), NULL;

    const float *src = gv_tensor_data_const(images);
    uint8_t *dst = gv_tensor_data(out);
    for (int64_t i = 0; i < n; i++) {
        int64_t y0 = padding + (i / nrow) * (h + padding);
        int64_t x0 = padding + (i % nrow) * (w + padding);
        const float *img = src + i * hw;
        for (int64_t y = 0; y < h; y++) {
            uint8_t *restrict d = dst + (y0 + y) * gw + x0;
            const float *restrict v = img + y * w;
            for (int64_t x = 0; x < w; x++) {
                float p = v[x] > 0.0f ? v[x] : 0.0f; /* NaN fails the compare: 0 */
                p = p < 1.0f ? p : 1.0f;
                /* in double, 255 * p is exact, so this is round-half-up of
                 * the true product (float would round 255 * 0.7f up to 179) */
                d[x] = (uint8_t)(255.0 * (double)p + 0.5);
            }
        }
    }
    return out;
}
