/* grove: IDX files (the MNIST format), read strictly, written atomically.
 *
 * Layout (LeCun, Cortes, Burges, "THE MNIST DATABASE", section "FILE FORMATS
 * FOR THE MNIST DATABASE"):
 *   u8 0 | u8 0 | u8 type | u8 rank | rank x u32 big-endian dims | elements
 * with type 0x08 unsigned byte, 0x09 signed byte, 0x0B short, 0x0C int,
 * 0x0D float, 0x0E double. grove reads 0x08 only: every public dataset in
 * this format stores pixels and labels as unsigned bytes.
 *
 * A file whose first two bytes are 1f 8b (the gzip magic, RFC 1952) is
 * inflated while it is read; concatenated gzip members form one stream, as
 * `gzip -d` treats them, and anything after the last member is an error.
 *
 * Memory: the header is read and checked first, then exactly the announced
 * number of bytes is allocated. Before allocating, a plain regular file's
 * size must match the header exactly, and a gzip file must be large enough
 * to hold the announced data at deflate's best ratio (1032:1, zlib's
 * "Maximum compression ratio" in its FAQ/tech notes), so a small hostile
 * file cannot make grove allocate gigabytes. The announced size is also
 * capped at IDX_MAX_BYTES. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include "checkpoint/io_internal.h"
#include "core/error.h"
#include "grove/data.h"

enum { IDX_MAX_RANK = 8, IDX_TYPE_U8 = 0x08, IDX_BUF = 1 << 16 };
#define IDX_MAX_BYTES (UINT64_C(1) << 34)
/* deflate emits at least 1 bit per 258 output bytes in the best case */
#define IDX_DEFLATE_MAX_RATIO UINT64_C(1032)

static const char *idx_type_name(unsigned t) {
    switch (t) {
    case 0x08: return "unsigned byte";
    case 0x09: return "signed byte";
    case 0x0B: return "short";
    case 0x0C: return "int";
    case 0x0D: return "float";
    case 0x0E: return "double";
    }
    return NULL;
}

/* "60000x28x28" */
static void dims_str(char *out, size_t cap, const int64_t *dims, int rank) {
    size_t o = 0;
    out[0] = '\0';
    for (int i = 0; i < rank && o < cap; i++) {
        int w = snprintf(out + o, cap - o, i ? "x%" PRId64 : "%" PRId64, dims[i]);
        if (w < 0) break;
        o += (size_t)w;
    }
}

/* ---- the byte source: a file descriptor, inflated when gzip ------------- */

typedef struct idx_src {
    const char *path;
    int fd;
    bool gz;
    bool zinit;
    bool member_done; /* gz: inflate reached the end of the current member */
    int members;      /* gz: members started so far */
    bool raw_eof;     /* read(2) returned 0 */
    z_stream zs;
    unsigned char *buf; /* raw bytes read ahead */
    size_t pos, len;    /* plain: unread bytes are buf[pos..len) */
} idx_src;

/* Read up to cap raw bytes into dst; *got = 0 at the end of the file. */
static gv_status raw_read(idx_src *s, void *dst, size_t cap, size_t *got) {
    *got = 0;
    if (cap > ((size_t)1 << 30)) cap = (size_t)1 << 30;
    for (;;) {
        ssize_t r = read(s->fd, dst, cap);
        if (r < 0 && errno == EINTR) continue;
        if (r < 0)
            return gv_error(GV_ERR_IO, "'%s': read error: %s", s->path, strerror(errno));
        if (r == 0) s->raw_eof = true;
        *got = (size_t)r;
        return GV_OK;
    }
}

static gv_status plain_read(idx_src *s, unsigned char *dst, size_t n, size_t *got) {
    size_t done = 0;
    if (s->pos < s->len) {
        size_t k = s->len - s->pos < n ? s->len - s->pos : n;
        memcpy(dst, s->buf + s->pos, k);
        s->pos += k;
        done = k;
    }
    while (done < n && !s->raw_eof) {
        size_t r;
        gv_status st = raw_read(s, dst + done, n - done, &r);
        if (st) return st;
        done += r;
    }
    *got = done;
    return GV_OK;
}

static gv_status gz_read(idx_src *s, unsigned char *dst, size_t n, size_t *got) {
    size_t done = 0;
    while (done < n) {
        if (s->member_done) {
            /* another member follows, or the end of the file */
            if (s->zs.avail_in == 0 && !s->raw_eof) {
                size_t r;
                gv_status st = raw_read(s, s->buf, IDX_BUF, &r);
                if (st) return st;
                s->zs.next_in = s->buf;
                s->zs.avail_in = (uInt)r;
            }
            if (s->zs.avail_in == 0) break;
            if (inflateReset(&s->zs) != Z_OK)
                return gv_error(GV_ERR_INTERNAL, "'%s': inflateReset failed", s->path);
            s->member_done = false;
            s->members++;
        }
        if (s->zs.avail_in == 0) {
            size_t r = 0;
            if (!s->raw_eof) {
                gv_status st = raw_read(s, s->buf, IDX_BUF, &r);
                if (st) return st;
            }
            if (r == 0 && s->members > 1 && s->zs.total_out == 0)
                return gv_error(GV_ERR_FORMAT, "'%s': the bytes after the end of the gzip "
                                "stream are not a complete gzip member", s->path);
            if (r == 0)
                return gv_error(GV_ERR_FORMAT, "'%s': truncated gzip stream: the file ends "
                                "inside a compressed member", s->path);
            s->zs.next_in = s->buf;
            s->zs.avail_in = (uInt)r;
        }
        size_t want = n - done;
        if (want > UINT_MAX) want = UINT_MAX;
        s->zs.next_out = dst + done;
        s->zs.avail_out = (uInt)want;
        int ret = inflate(&s->zs, Z_NO_FLUSH);
        done += want - s->zs.avail_out;
        switch (ret) {
        case Z_OK:
        case Z_BUF_ERROR: /* no progress: more input is needed */
            break;
        case Z_STREAM_END:
            s->member_done = true;
            break;
        case Z_MEM_ERROR:
            return gv_error(GV_ERR_NOMEM, "'%s': out of memory inflating", s->path);
        default:
            if (s->members > 1 && s->zs.total_out == 0)
                return gv_error(GV_ERR_FORMAT, "'%s': the bytes after the end of the gzip "
                                "stream are not a complete gzip member (%s)", s->path,
                                s->zs.msg ? s->zs.msg : "bad header");
            return gv_error(GV_ERR_FORMAT, "'%s': corrupt gzip stream: %s", s->path,
                            s->zs.msg ? s->zs.msg : "invalid data");
        }
    }
    *got = done;
    return GV_OK;
}

/* Read up to n bytes (fewer only at the end of the data). */
static gv_status src_read(idx_src *s, void *dst, size_t n, size_t *got) {
    return s->gz ? gz_read(s, dst, n, got) : plain_read(s, dst, n, got);
}

static void src_close(idx_src *s) {
    if (s->zinit) inflateEnd(&s->zs);
    if (s->fd >= 0) close(s->fd);
    free(s->buf);
}

/* ---- reading ----------------------------------------------------------- */

static gv_tensor *idx_read(idx_src *s, const char *path) {
    s->fd = open(path, O_RDONLY | O_CLOEXEC);
    if (s->fd < 0) {
        if (errno == ENOENT)
            gv_error(GV_ERR_NOT_FOUND, "'%s': no such file", path);
        else
            gv_error(GV_ERR_IO, "'%s': cannot open: %s", path, strerror(errno));
        return NULL;
    }
    struct stat sb;
    if (fstat(s->fd, &sb) != 0) {
        gv_error(GV_ERR_IO, "'%s': cannot stat: %s", path, strerror(errno));
        return NULL;
    }
    if (S_ISDIR(sb.st_mode)) {
        gv_error(GV_ERR_IO, "'%s': is a directory", path);
        return NULL;
    }
    bool regular = S_ISREG(sb.st_mode);
    s->buf = malloc(IDX_BUF);
    if (!s->buf) {
        gv_error(GV_ERR_NOMEM, "out of memory");
        return NULL;
    }

    /* sniff the gzip magic in the first raw bytes */
    while (s->len < 2 && !s->raw_eof) {
        size_t r;
        if (raw_read(s, s->buf + s->len, IDX_BUF - s->len, &r)) return NULL;
        s->len += r;
    }
    if (s->len >= 2 && s->buf[0] == 0x1f && s->buf[1] == 0x8b) {
        s->gz = true;
        /* 16 + MAX_WBITS: a gzip wrapper, with its CRC-32 and length checked */
        if (inflateInit2(&s->zs, 16 + MAX_WBITS) != Z_OK) {
            gv_error(GV_ERR_NOMEM, "'%s': cannot initialise zlib", path);
            return NULL;
        }
        s->zinit = true;
        s->members = 1;
        s->zs.next_in = s->buf;
        s->zs.avail_in = (uInt)s->len;
    }
    const char *what = s->gz ? "the decompressed data" : "the file";

    /* magic */
    unsigned char magic[4];
    size_t got;
    if (src_read(s, magic, 4, &got)) return NULL;
    if (got == 0) {
        gv_error(GV_ERR_FORMAT, "'%s': %s is empty, not an IDX file", path, what);
        return NULL;
    }
    if (got < 4) {
        gv_error(GV_ERR_FORMAT, "'%s': truncated IDX header: %zu of the 4 magic bytes", path,
                 got);
        return NULL;
    }
    if (magic[0] != 0 || magic[1] != 0) {
        gv_error(GV_ERR_FORMAT, "'%s': bad magic 0x%02x%02x%02x%02x: not an IDX file (its "
                 "first two bytes must be zero)", path, magic[0], magic[1], magic[2], magic[3]);
        return NULL;
    }
    if (magic[2] != IDX_TYPE_U8) {
        const char *tn = idx_type_name(magic[2]);
        if (tn)
            gv_error(GV_ERR_FORMAT, "'%s': element type 0x%02X (%s) is not supported, expected "
                     "0x08 (unsigned byte)", path, magic[2], tn);
        else
            gv_error(GV_ERR_FORMAT, "'%s': unknown element type 0x%02X, expected 0x08 "
                     "(unsigned byte)", path, magic[2]);
        return NULL;
    }
    int rank = magic[3];
    if (rank < 1 || rank > IDX_MAX_RANK) {
        gv_error(GV_ERR_FORMAT, "'%s': rank %d is out of range, expected 1..%d dims", path,
                 rank, IDX_MAX_RANK);
        return NULL;
    }

    /* dims */
    unsigned char raw[4 * IDX_MAX_RANK];
    size_t need = 4 * (size_t)rank;
    if (src_read(s, raw, need, &got)) return NULL;
    if (got < need) {
        gv_error(GV_ERR_FORMAT, "'%s': truncated IDX header: %d dims need %zu bytes after the "
                 "magic, got %zu", path, rank, need, got);
        return NULL;
    }
    int64_t dims[IDX_MAX_RANK];
    uint64_t nbytes = 1;
    bool too_big = false;
    for (int i = 0; i < rank; i++) {
        const unsigned char *p = raw + 4 * i;
        uint32_t d = (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
        if (d == 0) {
            gv_error(GV_ERR_FORMAT, "'%s': dimension %d is 0", path, i);
            return NULL;
        }
        dims[i] = d;
        if (__builtin_mul_overflow(nbytes, (uint64_t)d, &nbytes) || nbytes > IDX_MAX_BYTES)
            too_big = true, nbytes = IDX_MAX_BYTES + 1;
    }
    char ds[16 * IDX_MAX_RANK];
    dims_str(ds, sizeof ds, dims, rank);
    if (too_big) {
        gv_error(GV_ERR_FORMAT, "'%s': dims %s describe more than 2^34 bytes (16 GiB), the "
                 "largest IDX file grove reads", path, ds);
        return NULL;
    }
    uint64_t header = 4 + need;
    if (regular && !s->gz) {
        uint64_t have = (uint64_t)sb.st_size - header;
        if ((uint64_t)sb.st_size < header + nbytes) {
            gv_error(GV_ERR_FORMAT, "'%s': truncated: dims %s need %" PRIu64 " bytes of data "
                     "after the %" PRIu64 "-byte header, got %" PRIu64, path, ds, nbytes, header,
                     have);
            return NULL;
        }
        if ((uint64_t)sb.st_size > header + nbytes) {
            gv_error(GV_ERR_FORMAT, "'%s': %" PRIu64 " trailing byte%s after the %" PRIu64
                     " bytes of data that dims %s need", path, have - nbytes,
                     have - nbytes == 1 ? "" : "s", nbytes, ds);
            return NULL;
        }
    }
    if (regular && s->gz &&
        (header + nbytes) / IDX_DEFLATE_MAX_RATIO > (uint64_t)sb.st_size) {
        gv_error(GV_ERR_FORMAT, "'%s': truncated: dims %s need %" PRIu64 " bytes of data, more "
                 "than a %" PRIu64 "-byte gzip file can hold (deflate expands at most %" PRIu64
                 ":1)", path, ds, nbytes, (uint64_t)sb.st_size, IDX_DEFLATE_MAX_RATIO);
        return NULL;
    }

    /* data: exactly nbytes, then nothing */
    gv_tensor *t = gv_tensor_zeros(GV_U8, rank, dims);
    if (!t) { /* out of memory, most likely: the message names the file */
        gv_error_prefix("'%s': dims %s: ", path, ds);
        return NULL;
    }
    if (src_read(s, gv_tensor_data(t), (size_t)nbytes, &got)) goto fail;
    if (got < nbytes) {
        gv_error(GV_ERR_FORMAT, "'%s': truncated: dims %s need %" PRIu64 " bytes of data after "
                 "the %" PRIu64 "-byte header, got %zu%s", path, ds, nbytes, header, got,
                 s->gz ? " (decompressed)" : " (the file shrank while it was read)");
        goto fail;
    }
    unsigned char extra;
    if (src_read(s, &extra, 1, &got)) goto fail;
    if (got) {
        gv_error(GV_ERR_FORMAT, "'%s': trailing bytes after the %" PRIu64 " bytes of data that "
                 "dims %s need%s", path, nbytes, ds, s->gz ? " (decompressed)" : "");
        goto fail;
    }
    return t;
fail:
    gv_tensor_free(t);
    return NULL;
}

gv_tensor *gv_idx_read(const char *path) {
    if (!path || !*path) {
        gv_error(GV_ERR_ARG, "gv_idx_read: path is NULL or empty");
        return NULL;
    }
    idx_src s = {.path = path, .fd = -1};
    gv_tensor *t = idx_read(&s, path);
    src_close(&s);
    if (!t) gv_error_prefix("gv_idx_read: ");
    return t;
}

/* ---- writing ----------------------------------------------------------- */

gv_status gv_idx_write(const char *path, const gv_tensor *t, bool force) {
    if (!path || !*path) return gv_error(GV_ERR_ARG, "gv_idx_write: path is NULL or empty");
    if (!t) return gv_error(GV_ERR_ARG, "gv_idx_write: '%s': tensor is NULL", path);
    if (gv_tensor_dtype(t) != GV_U8)
        return gv_error(GV_ERR_DTYPE, "gv_idx_write: '%s': dtype %s, IDX files hold uint8 only",
                        path, gv_dtype_name(gv_tensor_dtype(t)));
    int rank = gv_tensor_rank(t);
    if (rank < 1 || rank > IDX_MAX_RANK)
        return gv_error(GV_ERR_SHAPE, "gv_idx_write: '%s': rank %d, IDX files have 1..%d dims",
                        path, rank, IDX_MAX_RANK);
    unsigned char header[4 + 4 * IDX_MAX_RANK] = {0, 0, IDX_TYPE_U8, (unsigned char)rank};
    for (int i = 0; i < rank; i++) {
        int64_t d = gv_tensor_shape(t)[i];
        /* the reader refuses 0 (a file that cannot be read back is no use) */
        if (d < 1 || d > (int64_t)UINT32_MAX)
            return gv_error(GV_ERR_SHAPE, "gv_idx_write: '%s': dimension %d is %" PRId64
                            ", IDX dims are 1..2^32-1", path, i, d);
        for (int b = 0; b < 4; b++)
            header[4 + 4 * i + b] = (unsigned char)((uint64_t)d >> (24 - 8 * b));
    }
    if ((uint64_t)gv_tensor_nbytes(t) > IDX_MAX_BYTES)
        return gv_error(GV_ERR_SHAPE, "gv_idx_write: '%s': %zu bytes, more than the 2^34 that "
                        "gv_idx_read accepts", path, gv_tensor_nbytes(t));
    const void *chunks[2] = {header, gv_tensor_data_const(t)};
    size_t sizes[2] = {4 + 4 * (size_t)rank, gv_tensor_nbytes(t)};
    gv_status st = gv_atomic_write_file(path, chunks, sizes, 2, force);
    if (st) gv_error_prefix("gv_idx_write: ");
    return st;
}
