/* Flax's msgpack serialization (include/grove/serialization.h): trees to
 * flax.serialization.to_bytes's format and back, with msgpack-c.
 *
 * Reading happens in three steps:
 *   1. scan(): a bounds pass over the raw bytes. Every str/bin/ext length
 *      must fit in what remains, every array/map count must be at most the
 *      bytes that remain (each element takes at least one), nesting is at
 *      most GV_FLAX_MAX_DEPTH. msgpack-c allocates an element array per
 *      container from the count it reads, before reading the elements, so
 *      without this pass five bytes (dd ff ff ff ff) would ask it for 96 GB.
 *      After it, msgpack-c's allocations are bounded by ~24 bytes per input
 *      byte and its fixed 32-level stack is never exceeded.
 *   2. msgpack_unpack_next() builds the object tree; strings, bins and ext
 *      payloads point into the input (nothing large is copied).
 *   3. convert() turns objects into a grove tree, as saved or guided by a
 *      target; an ndarray ext payload is itself a msgpack document and goes
 *      through steps 1-2 again.
 * Writing packs the tree with msgpack-c's packer; an ndarray payload's size
 * is computed up front so the tensor bytes are copied once. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <math.h>
#include <msgpack.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "checkpoint/format_internal.h"
#include "checkpoint/io_internal.h"
#include "core/error.h"
#include "grove/eval_shape.h"
#include "grove/serialization.h"
#include "tree/tree_internal.h"

enum { EXT_NDARRAY = 1, EXT_COMPLEX = 2, EXT_NPSCALAR = 3 };
#define CHUNK_MARKER "__msgpack_chunked_array__"
#define MAX_CHUNK_BYTES ((uint64_t)1 << 30) /* flax.serialization.MAX_CHUNK_SIZE */
#define MAX_ARRAY_RANK 64                  /* numpy's NPY_MAXDIMS */

uint64_t gv_flax_max_chunk_bytes = MAX_CHUNK_BYTES;

/* ---- dtypes: numpy names ---- */

static const gv_dtype np_dtypes[] = {GV_BOOL, GV_U8, GV_U16, GV_U32, GV_U64,
                                     GV_I32,  GV_I64, GV_F32, GV_F64};
/* numpy dtypes a file may hold that grove cannot (GV_ERR_UNSUPPORTED). */
static const char *const np_unsupported[] = {
    "float16", "bfloat16", "int8", "int16", "complex64", "complex128", "float8_e4m3fn",
    "float8_e5m2", "float8_e4m3b11fnuz", "float8_e4m3fnuz", "float8_e5m2fnuz", "float8_e3m4",
    "float8_e4m3", "float8_e8m0fnu", "float4_e2m1fn", "int4", "uint4", "int2", "uint2",
    "longdouble", "float128", "complex256", "object", "str", "bytes", "void", "datetime64",
    "timedelta64"};

/* GV_OK with *out set, GV_ERR_UNSUPPORTED or GV_ERR_FORMAT (no error set). */
static gv_status dtype_from_np(const char *name, size_t n, gv_dtype *out) {
    for (size_t i = 0; i < sizeof np_dtypes / sizeof *np_dtypes; i++) {
        const char *s = gv_dtype_name(np_dtypes[i]);
        if (strlen(s) == n && memcmp(s, name, n) == 0) return *out = np_dtypes[i], GV_OK;
    }
    for (size_t i = 0; i < sizeof np_unsupported / sizeof *np_unsupported; i++) {
        size_t k = strlen(np_unsupported[i]);
        /* "str96", "bytes8", "void16", "datetime64[ns]": a kind and a size */
        if (n >= k && memcmp(np_unsupported[i], name, k) == 0 &&
            (n == k || name[k] == '[' || (name[k] >= '0' && name[k] <= '9')))
            return GV_ERR_UNSUPPORTED;
    }
    return GV_ERR_FORMAT;
}

/* ---- step 1: the bounds pass ---- */

typedef struct reader {
    const char *label; /* the file, or "msgpack bytes" */
} reader;

static uint64_t be(const uint8_t *p, int n) {
    uint64_t v = 0;
    for (int i = 0; i < n; i++) v = v << 8 | p[i];
    return v;
}

static gv_status truncated(const reader *r, size_t at, uint64_t need, size_t left, const char *what) {
    return gv_error(GV_ERR_FORMAT, "'%s': truncated at byte %zu: %s needs %" PRIu64
                    " more bytes, %zu remain", r->label, at, what, need, left);
}

/* One object at *off (advanced past it), `depth` containers above it. */
static gv_status scan(const reader *r, const uint8_t *p, size_t len, size_t *off, int depth) {
    size_t at = *off;
    if (at >= len) return truncated(r, at, 1, 0, "an object");
    uint8_t b = p[at++];
    uint64_t skip = 0, count = 0;  /* payload bytes to skip; elements that follow */
    int lenbytes = 0;              /* a big-endian length of this many bytes follows */
    const char *what = "an object";
    bool container = false;
    if (b <= 0x7f || b >= 0xe0 || b == 0xc0 || b == 0xc2 || b == 0xc3) {
        /* fixint, nil, false, true */
    } else if (b <= 0x8f) {
        count = 2u * (b & 0x0f), container = true, what = "a map";
    } else if (b <= 0x9f) {
        count = b & 0x0f, container = true, what = "an array";
    } else if (b <= 0xbf) {
        skip = b & 0x1f, what = "a str";
    } else if (b == 0xc1) {
        return gv_error(GV_ERR_FORMAT, "'%s': byte %zu: 0xc1 is not a msgpack type", r->label,
                        at - 1);
    } else if (b >= 0xc4 && b <= 0xc6) {
        lenbytes = 1 << (b - 0xc4), what = "a bin";
    } else if (b >= 0xc7 && b <= 0xc9) {
        lenbytes = 1 << (b - 0xc7), what = "an ext";
    } else if (b == 0xca || b == 0xcb) {
        skip = b == 0xca ? 4 : 8, what = "a float";
    } else if (b >= 0xcc && b <= 0xd3) {
        skip = (uint64_t)1 << ((b - 0xcc) & 3), what = "an int";
    } else if (b >= 0xd4 && b <= 0xd8) {
        skip = 1 + ((uint64_t)1 << (b - 0xd4)), what = "an ext";
    } else if (b >= 0xd9 && b <= 0xdb) {
        lenbytes = 1 << (b - 0xd9), what = "a str";
    } else if (b == 0xdc || b == 0xdd) {
        lenbytes = b == 0xdc ? 2 : 4, container = true, what = "an array";
    } else { /* 0xde, 0xdf */
        lenbytes = b == 0xde ? 2 : 4, container = true, what = "a map";
    }
    if (lenbytes) {
        if ((size_t)lenbytes > len - at) return truncated(r, at - 1, (uint64_t)lenbytes, len - at, what);
        uint64_t n = be(p + at, lenbytes);
        at += (size_t)lenbytes;
        if (container) count = b == 0xde || b == 0xdf ? 2 * n : n;
        else skip = n + (b >= 0xc7 && b <= 0xc9 ? 1 : 0); /* ext: the type byte */
    }
    if (container) {
        if (depth >= GV_FLAX_MAX_DEPTH)
            return gv_error(GV_ERR_FORMAT, "'%s': byte %zu: containers nested more than %d deep",
                            r->label, *off, GV_FLAX_MAX_DEPTH);
        if (count > len - at)
            return gv_error(GV_ERR_FORMAT, "'%s': byte %zu: %s of %" PRIu64 " elements, but only "
                            "%zu bytes remain", r->label, *off, what,
                            b == 0xde || b == 0xdf || b <= 0x8f ? count / 2 : count, len - at);
        *off = at;
        for (uint64_t i = 0; i < count; i++) {
            gv_status st = scan(r, p, len, off, depth + 1);
            if (st) return st;
        }
        return GV_OK;
    }
    if (skip > len - at) return truncated(r, *off, skip, len - at, what);
    *off = at + (size_t)skip;
    return GV_OK;
}

/* Steps 1 and 2 for one whole document: *obj lives in *u. */
static gv_status unpack(const reader *r, const void *data, size_t len, msgpack_unpacked *u,
                        const char *what) {
    size_t off = 0;
    gv_status st = scan(r, data, len, &off, 0);
    if (st) return st;
    if (off != len)
        return gv_error(GV_ERR_FORMAT, "'%s': %zu bytes after the end of %s at byte %zu",
                        r->label, len - off, what, off);
    size_t pos = 0;
    msgpack_unpack_return ret = msgpack_unpack_next(u, data, len, &pos);
    if (ret == MSGPACK_UNPACK_NOMEM_ERROR) return gv_error(GV_ERR_NOMEM, "'%s': out of memory", r->label);
    if (ret != MSGPACK_UNPACK_SUCCESS || pos != len) /* the scan accepted it: not expected */
        return gv_error(GV_ERR_FORMAT, "'%s': msgpack-c could not unpack %s (status %d at byte %zu)",
                        r->label, what, (int)ret, pos);
    return GV_OK;
}

/* ---- step 3: objects -> tree ---- */

static const char *show(const char *path) { return gv_tree_show_path(path); }

/* Python's repr of a shape, "(4,)" (malloc'd; NULL when out of memory). */
static char *shape_str(int rank, const int64_t *shape) {
    gv_tree_sb sb = {0};
    gv_tree_sb_shape(&sb, rank, shape);
    return gv_tree_sb_finish(&sb, "a shape");
}

static const char *type_name(const msgpack_object *o) {
    switch (o->type) {
    case MSGPACK_OBJECT_NIL: return "None";
    case MSGPACK_OBJECT_BOOLEAN: return "a bool";
    case MSGPACK_OBJECT_POSITIVE_INTEGER:
    case MSGPACK_OBJECT_NEGATIVE_INTEGER: return "an int";
    case MSGPACK_OBJECT_FLOAT32:
    case MSGPACK_OBJECT_FLOAT64: return "a float";
    case MSGPACK_OBJECT_STR: return "a str";
    case MSGPACK_OBJECT_ARRAY: return "an array";
    case MSGPACK_OBJECT_MAP: return "a map";
    case MSGPACK_OBJECT_BIN: return "bytes";
    case MSGPACK_OBJECT_EXT:
        return o->via.ext.type == EXT_NDARRAY    ? "an ndarray"
               : o->via.ext.type == EXT_NPSCALAR ? "a numpy scalar"
               : o->via.ext.type == EXT_COMPLEX  ? "a complex"
                                                 : "an ext";
    }
    return "an object";
}

static bool is_str(const msgpack_object *o, const char *s) {
    size_t n = strlen(s);
    /* msgpack-c leaves ptr NULL for an empty str */
    return o->type == MSGPACK_OBJECT_STR && o->via.str.size == n &&
           (n == 0 || memcmp(o->via.str.ptr, s, n) == 0);
}

/* The value under key s in a map, or NULL. */
static const msgpack_object *map_get(const msgpack_object *m, const char *s) {
    for (uint32_t i = 0; i < m->via.map.size; i++)
        if (is_str(&m->via.map.ptr[i].key, s)) return &m->via.map.ptr[i].val;
    return NULL;
}

/* An ndarray payload [shape, dtype name, bytes] -> tensor; rank0: a numpy
 * scalar (ext 3), whose shape must be (). */
static gv_tensor *ndarray(const reader *r, const char *data, size_t size, const char *path,
                          bool scalar) {
    const char *what = scalar ? "numpy scalar" : "ndarray";
    msgpack_unpacked u;
    msgpack_unpacked_init(&u);
    gv_tensor *t = NULL;
    if (unpack(r, data, size, &u, what) != GV_OK) { /* "'file': path: ndarray payload: ..." */
        char *msg = strdup(gv_last_error());
        size_t skip = strlen(r->label) + 4;
        if (msg && strlen(msg) >= skip)
            gv_error(gv_last_status(), "'%s': %s: %s payload: %s", r->label, show(path), what,
                     msg + skip);
        free(msg);
        goto done;
    }
    const msgpack_object *o = &u.data;
    if (o->type != MSGPACK_OBJECT_ARRAY || o->via.array.size != 3) {
        gv_error(GV_ERR_FORMAT, "'%s': %s: the %s holds %s%s, not [shape, dtype, bytes]", r->label,
                 show(path), what, type_name(o), o->type == MSGPACK_OBJECT_ARRAY ? " of another size" : "");
        goto done;
    }
    const msgpack_object *shape = &o->via.array.ptr[0], *name = &o->via.array.ptr[1],
                         *bytes = &o->via.array.ptr[2];
    if (shape->type != MSGPACK_OBJECT_ARRAY || shape->via.array.size > MAX_ARRAY_RANK) {
        gv_error(GV_ERR_FORMAT, "'%s': %s: the %s's shape is %s, not an array of at most %d dims",
                 r->label, show(path), what, type_name(shape), MAX_ARRAY_RANK);
        goto done;
    }
    /* numpy's own reader takes dtype and data as bytes or str (raw=True) */
    if ((name->type != MSGPACK_OBJECT_STR && name->type != MSGPACK_OBJECT_BIN) ||
        (bytes->type != MSGPACK_OBJECT_BIN && bytes->type != MSGPACK_OBJECT_STR)) {
        gv_error(GV_ERR_FORMAT, "'%s': %s: the %s's dtype is %s and its data %s, not a str and bytes",
                 r->label, show(path), what, type_name(name), type_name(bytes));
        goto done;
    }
    int rank = (int)shape->via.array.size;
    int64_t dims[MAX_ARRAY_RANK];
    uint64_t count = 1;
    bool overflow = false;
    for (int i = 0; i < rank; i++) {
        const msgpack_object *d = &shape->via.array.ptr[i];
        if (d->type != MSGPACK_OBJECT_POSITIVE_INTEGER || d->via.u64 > (uint64_t)INT64_MAX) {
            gv_error(GV_ERR_FORMAT, "'%s': %s: the %s's dim %d is %s, not a non-negative int",
                     r->label, show(path), what, i, type_name(d));
            goto done;
        }
        dims[i] = (int64_t)d->via.u64;
        if (d->via.u64 && count > UINT64_MAX / d->via.u64) overflow = true;
        else count *= d->via.u64;
    }
    const char *np = name->via.str.ptr; /* str and bin share the layout */
    size_t nlen = name->via.str.size;
    gv_dtype dt = GV_DTYPE_INVALID;
    gv_status st = dtype_from_np(np, nlen, &dt);
    if (st) {
        gv_error(st, st == GV_ERR_UNSUPPORTED
                         ? "'%s': %s: dtype '%.*s': grove holds bool, uint8/16/32/64, int32/64 and float32/64"
                         : "'%s': %s: '%.*s' is not a numpy dtype name",
                 r->label, show(path), (int)(nlen > 64 ? 64 : nlen), np);
        goto done;
    }
    if (scalar && rank != 0) {
        gv_error(GV_ERR_FORMAT, "'%s': %s: a numpy scalar with %d dims", r->label, show(path), rank);
        goto done;
    }
    uint64_t isz = gv_dtype_size(dt);
    if (overflow || count > UINT64_MAX / isz || count * isz != bytes->via.bin.size) {
        char *s = shape_str(rank, dims), need[32] = "more than 2^64";
        if (!overflow && count <= UINT64_MAX / isz) snprintf(need, sizeof need, "%" PRIu64, count * isz);
        gv_error(GV_ERR_FORMAT, "'%s': %s: shape %s of %s needs %s bytes, the %s holds %" PRIu32,
                 r->label, show(path), s ? s : "?", gv_dtype_name(dt), need, what,
                 bytes->via.bin.size);
        free(s);
        goto done;
    }
    t = gv_tensor_from_data(dt, rank, dims, bytes->via.bin.ptr, bytes->via.bin.size);
    if (t && dt == GV_BOOL) { /* numpy bools are 0 or 1; any other byte is not a bool */
        const uint8_t *v = gv_tensor_data_const(t);
        for (uint64_t i = 0; i < count; i++)
            if (v[i] > 1) {
                gv_error(GV_ERR_FORMAT, "'%s': %s: bool element %" PRIu64 " is %u, not 0 or 1",
                         r->label, show(path), i, v[i]);
                gv_tensor_free(t), t = NULL;
                break;
            }
    }
done:
    msgpack_unpacked_destroy(&u);
    return t;
}

/* A map of n entries keyed "0".."n-1" (Flax's tuple-as-dict): entry i, or NULL. */
static const msgpack_object *indexed(const msgpack_object *m, uint32_t i) {
    char key[16];
    snprintf(key, sizeof key, "%" PRIu32, i);
    return map_get(m, key);
}

/* Flax's _unchunk: {"__msgpack_chunked_array__": true, "shape": {"0": d0, ...},
 * "chunks": {"0": ndarray, ...}} -> one tensor. */
static gv_tensor *unchunk(const reader *r, const msgpack_object *m, const char *path) {
    const msgpack_object *mark = map_get(m, CHUNK_MARKER), *shape = map_get(m, "shape"),
                         *chunks = map_get(m, "chunks");
    if (!mark || mark->type != MSGPACK_OBJECT_BOOLEAN || !mark->via.boolean || !shape ||
        !chunks || m->via.map.size != 3 || shape->type != MSGPACK_OBJECT_MAP ||
        chunks->type != MSGPACK_OBJECT_MAP || shape->via.map.size > MAX_ARRAY_RANK) {
        gv_error(GV_ERR_FORMAT, "'%s': %s: a chunked array needs exactly the keys %s: true, "
                 "'shape' (a map of at most %d dims) and 'chunks' (a map)", r->label, show(path),
                 CHUNK_MARKER, MAX_ARRAY_RANK);
        return NULL;
    }
    int rank = (int)shape->via.map.size;
    int64_t dims[MAX_ARRAY_RANK];
    uint64_t count = 1;
    for (int i = 0; i < rank; i++) {
        const msgpack_object *d = indexed(shape, (uint32_t)i);
        if (!d || d->type != MSGPACK_OBJECT_POSITIVE_INTEGER || d->via.u64 > (uint64_t)INT64_MAX ||
            (d->via.u64 && count > UINT64_MAX / d->via.u64)) {
            gv_error(GV_ERR_FORMAT, "'%s': %s: chunked array: shape entry '%d' is missing or not a "
                     "non-negative int (or the size overflows)", r->label, show(path), i);
            return NULL;
        }
        dims[i] = (int64_t)d->via.u64;
        count *= d->via.u64;
    }
    uint32_t nchunks = chunks->via.map.size;
    gv_tensor **parts = calloc(nchunks ? nchunks : 1, sizeof *parts);
    gv_tensor *out = NULL;
    if (!parts) return gv_error(GV_ERR_NOMEM, "out of memory"), NULL;
    uint64_t total = 0;
    gv_dtype dt = GV_DTYPE_INVALID;
    for (uint32_t i = 0; i < nchunks; i++) {
        const msgpack_object *c = indexed(chunks, i);
        char *cpath = NULL;
        if (asprintf(&cpath, "%s/chunks/%" PRIu32, path, i) < 0) cpath = NULL;
        if (!c || c->type != MSGPACK_OBJECT_EXT || c->via.ext.type != EXT_NDARRAY) {
            gv_error(GV_ERR_FORMAT, "'%s': %s: chunk is %s, not an ndarray", r->label,
                     cpath ? cpath : path, c ? type_name(c) : "missing");
            free(cpath);
            goto done;
        }
        parts[i] = ndarray(r, c->via.ext.ptr, c->via.ext.size, cpath ? cpath : path, false);
        free(cpath);
        if (!parts[i]) goto done;
        if (gv_tensor_rank(parts[i]) != 1 || (i && gv_tensor_dtype(parts[i]) != dt)) {
            gv_error(GV_ERR_FORMAT, "'%s': %s: chunk %" PRIu32 " is not a 1-d %s array", r->label,
                     show(path), i, i ? gv_dtype_name(dt) : "");
            goto done;
        }
        dt = gv_tensor_dtype(parts[i]);
        total += (uint64_t)gv_tensor_shape(parts[i])[0];
    }
    if (dt == GV_DTYPE_INVALID || total != count) {
        char *s = shape_str(rank, dims);
        gv_error(GV_ERR_FORMAT, "'%s': %s: chunked array of shape %s has %" PRIu64
                 " elements in %" PRIu32 " chunks", r->label, show(path), s ? s : "?", total, nchunks);
        free(s);
        goto done;
    }
    out = gv_tensor_zeros(dt, rank, dims);
    if (out) {
        char *dst = gv_tensor_data(out);
        for (uint32_t i = 0; i < nchunks; i++) {
            size_t nb = gv_tensor_nbytes(parts[i]);
            if (nb) memcpy(dst, gv_tensor_data_const(parts[i]), nb);
            dst += nb;
        }
    }
done:
    for (uint32_t i = 0; i < nchunks; i++) gv_tensor_free(parts[i]);
    free(parts);
    return out;
}

static bool is_chunked(const msgpack_object *o) {
    return o->type == MSGPACK_OBJECT_MAP && map_get(o, CHUNK_MARKER) != NULL;
}

static bool is_python_scalar(const msgpack_object *o) {
    return o->type == MSGPACK_OBJECT_POSITIVE_INTEGER || o->type == MSGPACK_OBJECT_NEGATIVE_INTEGER ||
           o->type == MSGPACK_OBJECT_FLOAT32 || o->type == MSGPACK_OBJECT_FLOAT64 ||
           o->type == MSGPACK_OBJECT_BOOLEAN;
}

/* A leaf object as saved -> tensor (NULL with the error set). */
static gv_tensor *leaf_tensor(const reader *r, const msgpack_object *o, const char *path) {
    switch (o->type) {
    case MSGPACK_OBJECT_EXT:
        if (o->via.ext.type == EXT_NDARRAY || o->via.ext.type == EXT_NPSCALAR)
            return ndarray(r, o->via.ext.ptr, o->via.ext.size, path,
                           o->via.ext.type == EXT_NPSCALAR);
        if (o->via.ext.type == EXT_COMPLEX)
            return gv_error(GV_ERR_UNSUPPORTED, "'%s': %s: a Python complex; grove has no complex "
                            "dtype", r->label, show(path)), NULL;
        return gv_error(GV_ERR_FORMAT, "'%s': %s: msgpack ext type %d is not one of Flax's (1 "
                        "ndarray, 2 complex, 3 numpy scalar)", r->label, show(path),
                        (int)o->via.ext.type), NULL;
    case MSGPACK_OBJECT_POSITIVE_INTEGER:
        if (o->via.u64 > (uint64_t)INT64_MAX) return gv_tensor_from_data(GV_U64, 0, NULL, &o->via.u64, 8);
        return gv_tensor_from_data(GV_I64, 0, NULL, &o->via.i64, 8);
    case MSGPACK_OBJECT_NEGATIVE_INTEGER: return gv_tensor_from_data(GV_I64, 0, NULL, &o->via.i64, 8);
    case MSGPACK_OBJECT_FLOAT32:
    case MSGPACK_OBJECT_FLOAT64: return gv_tensor_from_data(GV_F64, 0, NULL, &o->via.f64, 8);
    case MSGPACK_OBJECT_BOOLEAN: {
        uint8_t v = o->via.boolean ? 1 : 0;
        return gv_tensor_from_data(GV_BOOL, 0, NULL, &v, 1);
    }
    case MSGPACK_OBJECT_MAP:
        if (is_chunked(o)) return unchunk(r, o, path);
        break;
    default: break;
    }
    return gv_error(GV_ERR_UNSUPPORTED, "'%s': %s: %s has no grove equivalent", r->label,
                    show(path), type_name(o)), NULL;
}

/* A Python scalar into a scalar target of dtype dt, if exactly representable
 * (a float into a float dtype is rounded, as numpy casts). */
static gv_tensor *scalar_as(const reader *r, const msgpack_object *o, gv_dtype dt, const char *path) {
    bool ok = false;
    double f = 0;
    int64_t i = 0;
    uint64_t u = 0;
    bool neg = o->type == MSGPACK_OBJECT_NEGATIVE_INTEGER;
    if (o->type == MSGPACK_OBJECT_BOOLEAN) {
        ok = dt == GV_BOOL;
        f = o->via.boolean;
    } else if (o->type == MSGPACK_OBJECT_FLOAT32 || o->type == MSGPACK_OBJECT_FLOAT64) {
        ok = dt == GV_F32 || dt == GV_F64;
        f = o->via.f64;
    } else { /* an int: exactly representable in dt? */
        if (neg) i = o->via.i64;
        else u = o->via.u64;
        switch (dt) {
        case GV_U8: ok = !neg && u <= UINT8_MAX; break;
        case GV_U16: ok = !neg && u <= UINT16_MAX; break;
        case GV_U32: ok = !neg && u <= UINT32_MAX; break;
        case GV_U64: ok = !neg; break;
        case GV_I32: ok = neg ? i >= INT32_MIN : u <= INT32_MAX; break;
        case GV_I64: ok = neg || u <= (uint64_t)INT64_MAX; break;
        case GV_F32: ok = neg ? (int64_t)(float)i == i && (float)i != 0x1p63f
                              : (float)u < 0x1p64f && (uint64_t)(float)u == u; break;
        case GV_F64: ok = neg ? (double)i != 0x1p63 && (int64_t)(double)i == i
                              : (double)u < 0x1p64 && (uint64_t)(double)u == u; break;
        default: ok = false;
        }
    }
    if (!ok)
        return gv_error(GV_ERR_STRUCTURE, "%s: %s%s%s cannot become the target's %s", show(path),
                        type_name(o), o->type == MSGPACK_OBJECT_BOOLEAN ? "" : " of that value",
                        "", gv_dtype_name(dt)), NULL;
    gv_tensor *t = gv_tensor_zeros(dt, 0, NULL);
    if (!t) return NULL;
    void *p = gv_tensor_data(t);
    switch (dt) {
    case GV_BOOL: *(uint8_t *)p = f != 0; break;
    case GV_U8: *(uint8_t *)p = (uint8_t)u; break;
    case GV_U16: *(uint16_t *)p = (uint16_t)u; break;
    case GV_U32: *(uint32_t *)p = (uint32_t)u; break;
    case GV_U64: *(uint64_t *)p = u; break;
    case GV_I32: *(int32_t *)p = neg ? (int32_t)i : (int32_t)u; break;
    case GV_I64: *(int64_t *)p = neg ? i : (int64_t)u; break;
    case GV_F32:
        *(float *)p = o->type == MSGPACK_OBJECT_FLOAT32 || o->type == MSGPACK_OBJECT_FLOAT64
                          ? (float)f : neg ? (float)i : (float)u;
        break;
    case GV_F64:
        *(double *)p = o->type == MSGPACK_OBJECT_FLOAT32 || o->type == MSGPACK_OBJECT_FLOAT64
                           ? f : neg ? (double)i : (double)u;
        break;
    default: break;
    }
    (void)r;
    return t;
}

static gv_tree *convert(const reader *r, const msgpack_object *o, const gv_tree *target,
                        const char *path);

/* A key of a map as a grove key: a non-empty str without '/' or NUL. */
static char *key_of(const reader *r, const msgpack_object *k, const char *path) {
    if (k->type != MSGPACK_OBJECT_STR)
        return gv_error(GV_ERR_FORMAT, "'%s': %s: a key is %s; Flax state dicts have str keys",
                        r->label, show(path), type_name(k)), NULL;
    size_t n = k->via.str.size;
    if (n == 0 || memchr(k->via.str.ptr, '/', n) || memchr(k->via.str.ptr, 0, n))
        return gv_error(GV_ERR_FORMAT, "'%s': %s: key '%.*s' is empty or holds '/' or NUL, which "
                        "a grove path cannot", r->label, show(path), (int)(n > 64 ? 64 : n),
                        k->via.str.ptr), NULL;
    char *s = strndup(k->via.str.ptr, n);
    if (!s) gv_error(GV_ERR_NOMEM, "out of memory");
    return s;
}

/* Insert child (consumed) under key into dict; GV_ERR_FORMAT for a key the
 * tree refuses (invalid UTF-8, control characters) or a duplicate. */
static gv_status add_child(const reader *r, gv_tree *dict, const char *key, gv_tree *child,
                           const char *path) {
    gv_status st = gv_tree_insert(dict, key, child);
    if (st == GV_ERR_EXISTS)
        return gv_error(GV_ERR_FORMAT, "'%s': %s: key '%s' appears twice", r->label, show(path), key);
    if (st == GV_ERR_ARG)
        return gv_error(GV_ERR_FORMAT, "'%s': %s: key '%.64s' is not a valid tree key (printable "
                        "UTF-8)", r->label, show(path), key);
    return st;
}

static gv_tree *tensor_leaf(gv_tensor *t) {
    gv_tree *leaf = t ? gv_tree_new_leaf(t) : NULL;
    gv_tensor_free(t);
    return leaf;
}

/* As saved: maps are dicts, arrays lists. */
static gv_tree *convert_saved(const reader *r, const msgpack_object *o, const char *path) {
    if (o->type == MSGPACK_OBJECT_STR) {
        size_t n = o->via.str.size;
        char *s = strndup(n ? o->via.str.ptr : "", n); /* ptr is NULL for "" */
        gv_tree *t = s && (n == 0 || !memchr(o->via.str.ptr, 0, n)) ? gv_tree_new_label(s) : NULL;
        if (!t) gv_error(s ? GV_ERR_FORMAT : GV_ERR_NOMEM, "'%s': %s: a str that is not printable "
                         "UTF-8 (grove labels are)", r->label, show(path));
        free(s);
        return t;
    }
    if (o->type == MSGPACK_OBJECT_ARRAY) {
        gv_tree *list = gv_tree_new_list();
        for (uint32_t i = 0; list && i < o->via.array.size; i++) {
            char key[16];
            snprintf(key, sizeof key, "%" PRIu32, i);
            char *cpath = gv_tree_path_join(path, key);
            gv_tree *c = cpath ? convert(r, &o->via.array.ptr[i], NULL, cpath) : NULL;
            free(cpath);
            if (!c || gv_tree_append(list, c) != GV_OK) gv_tree_free(list), list = NULL;
        }
        return list;
    }
    if (o->type == MSGPACK_OBJECT_MAP && !is_chunked(o)) {
        gv_tree *dict = gv_tree_new_dict();
        for (uint32_t i = 0; dict && i < o->via.map.size; i++) {
            char *key = key_of(r, &o->via.map.ptr[i].key, path);
            char *cpath = key ? gv_tree_path_join(path, key) : NULL;
            gv_tree *c = cpath ? convert(r, &o->via.map.ptr[i].val, NULL, cpath) : NULL;
            if (key && !cpath) gv_error(GV_ERR_NOMEM, "out of memory");
            if (!c || add_child(r, dict, key, c, path) != GV_OK) gv_tree_free(dict), dict = NULL;
            free(key), free(cpath);
        }
        return dict;
    }
    return tensor_leaf(leaf_tensor(r, o, path));
}

/* Into a target container: a dict by its keys, a list or tuple by "0".. or
 * by array position. */
static gv_tree *convert_container(const reader *r, const msgpack_object *o, const gv_tree *target,
                                  const char *path) {
    gv_tree_kind kind = gv_tree_kind_of(target);
    size_t n = gv_tree_num_children(target);
    bool by_array = kind != GV_TREE_DICT && o->type == MSGPACK_OBJECT_ARRAY;
    if ((o->type != MSGPACK_OBJECT_MAP || is_chunked(o)) && !by_array)
        return gv_error(GV_ERR_STRUCTURE, "%s: the target has a %s of %zu, the file %s", show(path),
                        gv_tree_kind_name(kind), n, is_chunked(o) ? "an array" : type_name(o)), NULL;
    size_t have = by_array ? o->via.array.size : o->via.map.size;
    if (!by_array)
        for (uint32_t i = 0; i < o->via.map.size; i++) { /* keys the target lacks: named */
            const msgpack_object *k = &o->via.map.ptr[i].key;
            char *key = key_of(r, k, path);
            if (!key) return NULL;
            bool known = gv_tree_child_by_key(target, key) != NULL;
            if (!known)
                gv_error(GV_ERR_STRUCTURE, "%s: key '%s' is in the file but not in the target %s",
                         show(path), key, gv_tree_kind_name(kind));
            free(key);
            if (!known) return NULL;
        }
    if (have != n)
        return gv_error(GV_ERR_STRUCTURE, "%s: the target %s has %zu entries, the file %zu (a key "
                        "repeated?)", show(path), gv_tree_kind_name(kind), n, have), NULL;
    gv_tree *out = kind == GV_TREE_DICT ? gv_tree_new_dict()
                 : kind == GV_TREE_LIST ? gv_tree_new_list() : gv_tree_new_tuple();
    for (size_t i = 0; out && i < n; i++) {
        const char *key = gv_tree_key(target, i);
        const msgpack_object *v = by_array ? &o->via.array.ptr[i] : map_get(o, key);
        char *cpath = gv_tree_path_join(path, key);
        if (!cpath) gv_error(GV_ERR_NOMEM, "out of memory");
        else if (!v) gv_error(GV_ERR_STRUCTURE, "%s: in the target but not in the file", cpath);
        gv_tree *c = cpath && v ? convert(r, v, gv_tree_child(target, i), cpath) : NULL;
        free(cpath);
        gv_status st = !c ? GV_ERR_FORMAT
                     : kind == GV_TREE_DICT ? gv_tree_insert(out, key, c) : gv_tree_append(out, c);
        if (st) gv_tree_free(out), out = NULL;
    }
    return out;
}

static gv_tree *convert(const reader *r, const msgpack_object *o, const gv_tree *target,
                        const char *path) {
    if (!target) return convert_saved(r, o, path);
    if (!gv_tree_is_leaf(target)) return convert_container(r, o, target, path);
    gv_leaf_kind lk = gv_tree_leaf_kind(target);
    if (lk == GV_LEAF_LABEL) {
        if (o->type != MSGPACK_OBJECT_STR)
            return gv_error(GV_ERR_STRUCTURE, "%s: the target has a label, the file %s", show(path),
                            type_name(o)), NULL;
        return convert_saved(r, o, path);
    }
    const gv_tensor *want = gv_tree_leaf_tensor(target);
    if (lk != GV_LEAF_TENSOR || !want)
        return gv_error(GV_ERR_ARG, "%s: the target leaf is a %s, not a tensor or a label",
                        show(path), gv_leaf_kind_name(lk)), NULL;
    if (is_python_scalar(o) && gv_tensor_rank(want) == 0)
        return tensor_leaf(scalar_as(r, o, gv_tensor_dtype(want), path));
    if (o->type == MSGPACK_OBJECT_MAP && !is_chunked(o))
        return gv_error(GV_ERR_STRUCTURE, "%s: the target has a tensor, the file a map",
                        show(path)), NULL;
    gv_tensor *t = leaf_tensor(r, o, path);
    if (!t) return NULL;
    if (!gv_tensor_same_shape(t, want) || gv_tensor_dtype(t) != gv_tensor_dtype(want)) {
        char *a = shape_str(gv_tensor_rank(want), gv_tensor_shape(want));
        char *b = shape_str(gv_tensor_rank(t), gv_tensor_shape(t));
        gv_error(GV_ERR_STRUCTURE, "%s: target %s %s vs file %s %s", show(path),
                 gv_dtype_name(gv_tensor_dtype(want)), a ? a : "?", gv_dtype_name(gv_tensor_dtype(t)),
                 b ? b : "?");
        free(a), free(b);
        gv_tensor_free(t);
        return NULL;
    }
    return tensor_leaf(t);
}

static gv_tree *restore_bytes(const char *label, const void *bytes, size_t len,
                              const gv_tree *target) {
    reader r = {label};
    msgpack_unpacked u;
    msgpack_unpacked_init(&u);
    gv_tree *out = NULL;
    if (len == 0) gv_error(GV_ERR_FORMAT, "'%s': empty (0 bytes): not a Flax msgpack file", label);
    else if (unpack(&r, bytes, len, &u, "the state dict") == GV_OK) out = convert(&r, &u.data, target, "");
    msgpack_unpacked_destroy(&u);
    return out;
}

gv_tree *gv_flax_msgpack_restore(const void *bytes, size_t len) {
    if (!bytes && len) return gv_error(GV_ERR_ARG, "gv_flax_msgpack_restore: bytes is NULL"), NULL;
    return restore_bytes("msgpack bytes", bytes ? bytes : "", len, NULL);
}

gv_tree *gv_flax_from_bytes(const gv_tree *target, const void *bytes, size_t len) {
    if (!target || (!bytes && len))
        return gv_error(GV_ERR_ARG, "gv_flax_from_bytes: %s is NULL", !target ? "target" : "bytes"),
               NULL;
    return restore_bytes("msgpack bytes", bytes ? bytes : "", len, target);
}

/* The whole file in memory (malloc'd), checking every read. */
static void *read_whole(const char *path, size_t *len) {
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        int e = errno;
        gv_error(e == ENOENT ? GV_ERR_NOT_FOUND : GV_ERR_IO, "cannot open '%s': %s", path, strerror(e));
        return NULL;
    }
    struct stat sb;
    if (fstat(fd, &sb) != 0 || !S_ISREG(sb.st_mode)) {
        gv_error(GV_ERR_IO, "'%s': %s", path, S_ISDIR(sb.st_mode) ? "is a directory" : "not a regular file");
        close(fd);
        return NULL;
    }
    size_t n = (size_t)sb.st_size;
    char *buf = malloc(n ? n : 1);
    if (!buf) {
        gv_error(GV_ERR_NOMEM, "'%s': out of memory reading %zu bytes", path, n);
        close(fd);
        return NULL;
    }
    size_t got = 0;
    while (got < n) {
        ssize_t k = read(fd, buf + got, n - got > (1u << 30) ? (1u << 30) : n - got);
        if (k < 0 && errno == EINTR) continue;
        if (k <= 0) {
            gv_error(k < 0 ? GV_ERR_IO : GV_ERR_FORMAT, "'%s': %s at byte %zu", path,
                     k < 0 ? strerror(errno) : "truncated while reading (file shrank?)", got);
            free(buf);
            close(fd);
            return NULL;
        }
        got += (size_t)k;
    }
    close(fd);
    *len = n;
    return buf;
}

gv_tree *gv_flax_restore(const char *path, const gv_tree *target) {
    if (!path || !*path) return gv_error(GV_ERR_ARG, "gv_flax_restore: path is NULL or empty"), NULL;
    size_t len = 0;
    void *buf = read_whole(path, &len);
    if (!buf) return NULL;
    gv_tree *t = restore_bytes(path, buf, len, target);
    free(buf);
    return t;
}

/* ---- writing ---- */

static size_t uint_size(uint64_t v) {
    return v < 128 ? 1 : v < 256 ? 2 : v < 65536 ? 3 : v <= UINT32_MAX ? 5 : 9;
}
static size_t array_header(size_t n) { return n < 16 ? 1 : n < 65536 ? 3 : 5; }
static size_t str_header(size_t n) { return n < 32 ? 1 : n < 256 ? 2 : n < 65536 ? 3 : 5; }
static size_t bin_header(size_t n) { return n < 256 ? 2 : n < 65536 ? 3 : 5; }

static int pack_str(msgpack_packer *pk, const char *s) {
    size_t n = strlen(s);
    return msgpack_pack_str(pk, n) || msgpack_pack_str_body(pk, s, n);
}

/* ext 1: msgpack.packb((shape, dtype.name, bytes), use_bin_type=True) */
static int pack_ndarray(msgpack_packer *pk, gv_dtype dt, int rank, const int64_t *shape,
                        const void *data, size_t nbytes) {
    const char *name = gv_dtype_name(dt);
    size_t nlen = strlen(name);
    size_t plen = 1 + array_header((size_t)rank) + str_header(nlen) + nlen + bin_header(nbytes) + nbytes;
    for (int i = 0; i < rank; i++) plen += uint_size((uint64_t)shape[i]);
    if (plen > UINT32_MAX) return -1;
    int e = msgpack_pack_ext(pk, plen, EXT_NDARRAY) || msgpack_pack_array(pk, 3) ||
            msgpack_pack_array(pk, (size_t)rank);
    for (int i = 0; i < rank && !e; i++) e = msgpack_pack_uint64(pk, (uint64_t)shape[i]);
    return e || pack_str(pk, name) || msgpack_pack_bin(pk, nbytes) ||
           msgpack_pack_bin_body(pk, data, nbytes);
}

typedef struct writer {
    msgpack_packer pk;
    gv_status st; /* a refusal with its message, else GV_ERR_NOMEM on a pack failure */
} writer;

static int pack_tensor(writer *w, const gv_tensor *t) {
    gv_dtype dt = gv_tensor_dtype(t);
    size_t nb = gv_tensor_nbytes(t);
    const char *data = gv_tensor_data_const(t);
    if (nb <= gv_flax_max_chunk_bytes)
        return pack_ndarray(&w->pk, dt, gv_tensor_rank(t), gv_tensor_shape(t), data, nb);
    /* Flax's _chunk: 1-d chunks of max(1, MAX_CHUNK_SIZE / itemsize) elements */
    size_t isz = gv_dtype_size(dt), per = (size_t)(gv_flax_max_chunk_bytes / isz);
    if (per == 0) per = 1;
    size_t count = nb / isz, nchunks = (count + per - 1) / per;
    int rank = gv_tensor_rank(t);
    int e = msgpack_pack_map(&w->pk, 3) || pack_str(&w->pk, CHUNK_MARKER) ||
            msgpack_pack_true(&w->pk) || pack_str(&w->pk, "shape") ||
            msgpack_pack_map(&w->pk, (size_t)rank);
    char key[24];
    for (int i = 0; i < rank && !e; i++) {
        snprintf(key, sizeof key, "%d", i);
        e = pack_str(&w->pk, key) || msgpack_pack_uint64(&w->pk, (uint64_t)gv_tensor_shape(t)[i]);
    }
    e = e || pack_str(&w->pk, "chunks") || msgpack_pack_map(&w->pk, nchunks);
    for (size_t c = 0; c < nchunks && !e; c++) {
        int64_t n = (int64_t)(c + 1 < nchunks ? per : count - c * per);
        snprintf(key, sizeof key, "%zu", c);
        e = pack_str(&w->pk, key) ||
            pack_ndarray(&w->pk, dt, 1, &n, data + c * per * isz, (size_t)n * isz);
    }
    return e;
}

static int pack_tree(writer *w, const gv_tree *t, const char *path) {
    gv_tree_kind kind = gv_tree_kind_of(t);
    if (kind != GV_TREE_LEAF) { /* lists and tuples as {"0": ..., "1": ...} */
        size_t n = gv_tree_num_children(t);
        if (msgpack_pack_map(&w->pk, n)) return -1;
        for (size_t i = 0; i < n; i++) {
            const char *key = gv_tree_key(t, i);
            char *cpath = gv_tree_path_join(path, key);
            int e = !cpath || pack_str(&w->pk, key) || pack_tree(w, gv_tree_child(t, i), cpath);
            free(cpath);
            if (e) return -1;
        }
        return 0;
    }
    if (gv_tree_leaf_kind(t) == GV_LEAF_LABEL) return pack_str(&w->pk, gv_tree_leaf_label(t));
    const gv_tensor *x = gv_tree_leaf_tensor(t);
    if (!x) {
        w->st = gv_error(GV_ERR_ARG, "%s: a %s leaf cannot be serialized", show(path),
                         gv_leaf_kind_name(gv_tree_leaf_kind(t)));
        return -1;
    }
    return pack_tensor(w, x);
}

gv_status gv_flax_to_bytes(const gv_tree *tree, void **bytes, size_t *len) {
    if (bytes) *bytes = NULL;
    if (len) *len = 0;
    if (!tree || !bytes || !len)
        return gv_error(GV_ERR_ARG, "gv_flax_to_bytes: %s is NULL", !tree ? "tree" : !bytes ? "bytes" : "len");
    gv_status st = gv_tree_check_concrete(tree, "cannot serialize");
    if (st) return gv_error_prefix("gv_flax_to_bytes: "), st;
    msgpack_sbuffer sb;
    msgpack_sbuffer_init(&sb);
    writer w = {.st = GV_OK};
    msgpack_packer_init(&w.pk, &sb, msgpack_sbuffer_write);
    if (pack_tree(&w, tree, "")) {
        msgpack_sbuffer_destroy(&sb);
        if (w.st) return gv_error_prefix("gv_flax_to_bytes: "), w.st;
        return gv_error(GV_ERR_NOMEM, "gv_flax_to_bytes: out of memory");
    }
    *len = sb.size;
    *bytes = sb.size ? msgpack_sbuffer_release(&sb) : malloc(1);
    msgpack_sbuffer_destroy(&sb);
    if (!*bytes) return gv_error(GV_ERR_NOMEM, "gv_flax_to_bytes: out of memory");
    return GV_OK;
}

gv_status gv_flax_save(const char *path, const gv_tree *tree, bool force) {
    if (!path || !*path) return gv_error(GV_ERR_ARG, "gv_flax_save: path is NULL or empty");
    void *buf = NULL;
    size_t len = 0;
    gv_status st = gv_flax_to_bytes(tree, &buf, &len);
    if (st) return gv_error_prefix("'%s': ", path), st;
    const void *chunks[1] = {buf};
    st = gv_atomic_write_file(path, chunks, &len, 1, force);
    if (st) gv_error_prefix("gv_flax_save: ");
    free(buf);
    return st;
}
