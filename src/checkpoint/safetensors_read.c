/* grove: one safetensors file -> one tree (the format is described in
 * safetensors.c), and the public restore API.
 *
 * The reader is strict (GV_ERR_FORMAT, naming the file and the byte offset
 * or entry): the data region must be covered exactly, as safetensors itself
 * requires: entries sorted by offset are contiguous from 0 to the end of the
 * file, with no gap, no overlap and no trailing bytes. Duplicate JSON keys
 * (at any level) are refused rather than resolved. Unknown keys in a tensor
 * entry are refused. A file without grove metadata (written by Python's
 * safetensors) is rebuilt as nested dicts from the names split at '/'. */
#define _GNU_SOURCE
#include "format_internal.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <json-c/json.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include "core/error.h"
#include "grove/checkpoint.h"
#include "tree/tree_internal.h"

/* ---- reading: the byte source ---------------------------------------------- */

typedef struct st_src {
    int fd;                     /* a file, or -1 */
    const unsigned char *mem;   /* or a buffer */
    uint64_t size;
    const char *label;
} st_src;

/* Read exactly n bytes at off. 0 on success; otherwise the error is set. */
static gv_status src_read(const st_src *s, uint64_t off, void *dst, size_t n) {
    if (off > s->size || n > s->size - off)
        return gv_error(GV_ERR_FORMAT, "'%s': truncated: %zu bytes needed at byte %" PRIu64
                        " of a %" PRIu64 "-byte file", s->label, n, off, s->size);
    if (s->fd < 0) {
        if (n) memcpy(dst, s->mem + off, n);
        return GV_OK;
    }
    unsigned char *p = dst;
    while (n > 0) {
        size_t chunk = n > ((size_t)1 << 30) ? ((size_t)1 << 30) : n;
        ssize_t r = pread(s->fd, p, chunk, (off_t)off);
        if (r < 0) {
            if (errno == EINTR) continue;
            return gv_error(GV_ERR_IO, "'%s': read error at byte %" PRIu64 ": %s", s->label, off,
                            strerror(errno));
        }
        if (r == 0)
            return gv_error(GV_ERR_FORMAT, "'%s': truncated at byte %" PRIu64 " (file shrank?)",
                            s->label, off);
        p += r;
        off += (uint64_t)r;
        n -= (size_t)r;
    }
    return GV_OK;
}

/* ---- reading: the header ------------------------------------------------------ */

typedef struct st_entry {
    const char *name;   /* borrowed from the header json */
    gv_dtype dtype;
    int rank;
    int64_t *shape;
    uint64_t begin, end;
    gv_tensor *t;
    bool used;
    int half;           /* 0, or the float16 / bfloat16 element stored (converted to float32) */
} st_entry;

enum { ST_F16 = 1, ST_BF16 = 2 };

typedef struct st_file {
    const st_src *src;
    json_object *header;
    st_entry *entries;   /* header order */
    size_t n;
    st_entry **by_offset;
    st_entry **by_name;
    uint64_t data_start, data_len;
    json_object *meta;   /* borrowed, may be NULL */
    bool grove;
    bool half_to_f32;    /* read F16 and BF16 entries as float32 */
    size_t nconverted;
} st_file;

static void file_free(st_file *f) {
    for (size_t i = 0; i < f->n; i++) {
        free(f->entries[i].shape);
        gv_tensor_free(f->entries[i].t);
    }
    free(f->entries);
    free(f->by_offset);
    free(f->by_name);
    json_object_put(f->header);
}

static int cmp_offset(const void *a, const void *b) {
    const st_entry *x = *(st_entry *const *)a, *y = *(st_entry *const *)b;
    if (x->begin != y->begin) return x->begin < y->begin ? -1 : 1;
    if (x->end != y->end) return x->end < y->end ? -1 : 1;
    return 0;
}

static int cmp_name(const void *a, const void *b) {
    return strcmp((*(st_entry *const *)a)->name, (*(st_entry *const *)b)->name);
}

/* A non-negative JSON integer (json-c saturates huge ones at INT64_MAX, which
 * every bound below then refuses). */
static bool get_uint(json_object *o, uint64_t *out) {
    if (!json_object_is_type(o, json_type_int)) return false;
    if (json_object_get_int64(o) < 0) return false;
    *out = (uint64_t)json_object_get_int64(o);
    return true;
}

static gv_status parse_entry(st_file *f, st_entry *e, json_object *v) {
    const char *L = f->src->label;
    if (!json_object_is_type(v, json_type_object))
        return gv_error(GV_ERR_FORMAT, "'%s': entry '%s' is not an object", L, e->name);
    json_object *jd = NULL, *js = NULL, *jo = NULL;
    json_object_object_foreach(v, k, val) {
        if (strcmp(k, "dtype") == 0) jd = val;
        else if (strcmp(k, "shape") == 0) js = val;
        else if (strcmp(k, "data_offsets") == 0) jo = val;
        else return gv_error(GV_ERR_FORMAT, "'%s': entry '%s': unknown field '%s'", L, e->name, k);
    }
    if (!jd || !js || !jo)
        return gv_error(GV_ERR_FORMAT, "'%s': entry '%s': missing %s", L, e->name,
                        !jd ? "dtype" : !js ? "shape" : "data_offsets");
    if (!json_object_is_type(jd, json_type_string))
        return gv_error(GV_ERR_FORMAT, "'%s': entry '%s': dtype is not a string", L, e->name);
    const char *dn = json_object_get_string(jd);
    gv_status dst = gv_safetensors_dtype_from_name(dn, &e->dtype);
    if (dst == GV_ERR_UNSUPPORTED && f->half_to_f32 &&
        (strcmp(dn, "F16") == 0 || strcmp(dn, "BF16") == 0)) {
        e->half = dn[0] == 'F' ? ST_F16 : ST_BF16;
        e->dtype = GV_F32;
        dst = GV_OK;
    }
    if (dst == GV_ERR_UNSUPPORTED)
        return gv_error(GV_ERR_UNSUPPORTED, "'%s': entry '%s': dtype %s is not supported by grove yet",
                        L, e->name, dn);
    if (dst) return gv_error(GV_ERR_FORMAT, "'%s': entry '%s': unknown dtype '%.40s'", L, e->name, dn);
    if (!json_object_is_type(js, json_type_array))
        return gv_error(GV_ERR_FORMAT, "'%s': entry '%s': shape is not an array", L, e->name);
    size_t rank = json_object_array_length(js);
    if (rank > INT_MAX)
        return gv_error(GV_ERR_FORMAT, "'%s': entry '%s': rank too large", L, e->name);
    e->rank = (int)rank;
    e->shape = malloc((rank ? rank : 1) * sizeof *e->shape);
    if (!e->shape) return gv_error(GV_ERR_NOMEM, "out of memory");
    uint64_t count = 1;
    bool zero = false, overflow = false;
    for (size_t d = 0; d < rank; d++) {
        uint64_t dim;
        if (!get_uint(json_object_array_get_idx(js, d), &dim))
            return gv_error(GV_ERR_FORMAT, "'%s': entry '%s': shape[%zu] is not an integer >= 0", L,
                            e->name, d);
        e->shape[d] = (int64_t)dim;
        if (dim == 0) zero = true;
        else if (__builtin_mul_overflow(count, dim, &count) || count > (uint64_t)INT64_MAX)
            overflow = true;
    }
    if (zero) count = 0;
    else if (overflow)
        return gv_error(GV_ERR_FORMAT, "'%s': entry '%s': element count overflows", L, e->name);
    if (!json_object_is_type(jo, json_type_array) || json_object_array_length(jo) != 2 ||
        !get_uint(json_object_array_get_idx(jo, 0), &e->begin) ||
        !get_uint(json_object_array_get_idx(jo, 1), &e->end))
        return gv_error(GV_ERR_FORMAT, "'%s': entry '%s': data_offsets is not [begin, end]", L,
                        e->name);
    if (e->begin > e->end || e->end > f->data_len)
        return gv_error(GV_ERR_FORMAT,
                        "'%s': entry '%s': data_offsets [%" PRIu64 ", %" PRIu64
                        "] outside the %" PRIu64 "-byte data region",
                        L, e->name, e->begin, e->end, f->data_len);
    uint64_t nbytes, esize = e->half ? 2 : (uint64_t)gv_dtype_size(e->dtype);
    if (__builtin_mul_overflow(count, esize, &nbytes) ||
        nbytes != e->end - e->begin)
        return gv_error(GV_ERR_FORMAT,
                        "'%s': entry '%s': shape and dtype %s need %" PRIu64
                        " elements but data_offsets span %" PRIu64 " bytes",
                        L, e->name, dn, count, e->end - e->begin);
    return GV_OK;
}

static gv_status parse_header(st_file *f) {
    const st_src *s = f->src;
    const char *L = s->label;
    if (s->size < 8)
        return gv_error(GV_ERR_FORMAT, "'%s': not a safetensors file: %" PRIu64
                        " bytes, shorter than the 8-byte header length", L, s->size);
    unsigned char lb[8];
    gv_status st = src_read(s, 0, lb, 8);
    if (st) return st;
    uint64_t N = 0;
    for (int b = 7; b >= 0; b--) N = (N << 8) | lb[b];
    if (N > GV_ST_MAX_HEADER)
        return gv_error(GV_ERR_FORMAT, "'%s': header length %" PRIu64
                        " at byte 0 is over the 100 MB limit", L, N);
    if (N > s->size - 8)
        return gv_error(GV_ERR_FORMAT, "'%s': header length %" PRIu64
                        " at byte 0 is more than the %" PRIu64 " bytes after it (truncated?)",
                        L, N, s->size - 8);
    if (N < 2) return gv_error(GV_ERR_FORMAT, "'%s': header length %" PRIu64 " is too short", L, N);
    f->data_start = 8 + N;
    f->data_len = s->size - 8 - N;
    char *text = malloc(N + 1);
    if (!text) return gv_error(GV_ERR_NOMEM, "out of memory for a %" PRIu64 "-byte header", N);
    st = src_read(s, 8, text, N);
    if (st) return free(text), st;
    text[N] = '\0';
    const char *nul = memchr(text, '\0', N);
    if (nul) {
        st = gv_error(GV_ERR_FORMAT, "'%s': NUL byte in the header at byte %" PRIu64, L,
                      (uint64_t)(8 + (nul - text)));
        free(text);
        return st;
    }
    if (text[0] != '{') {
        free(text);
        return gv_error(GV_ERR_FORMAT, "'%s': header does not start with '{' (byte 8)", L);
    }
    f->header = gv_parse_json(text, N, GV_ST_HEADER_JSON_DEPTH, L, "header", 8);
    free(text);
    if (!f->header) return gv_last_status();
    if (!json_object_is_type(f->header, json_type_object))
        return gv_error(GV_ERR_FORMAT, "'%s': header is not a JSON object", L);

    size_t total = (size_t)json_object_object_length(f->header);
    f->entries = calloc(total ? total : 1, sizeof *f->entries);
    f->by_offset = calloc(total ? total : 1, sizeof *f->by_offset);
    f->by_name = calloc(total ? total : 1, sizeof *f->by_name);
    if (!f->entries || !f->by_offset || !f->by_name) return gv_error(GV_ERR_NOMEM, "out of memory");
    json_object_object_foreach(f->header, key, val) {
        if (strcmp(key, "__metadata__") == 0) {
            if (!json_object_is_type(val, json_type_object))
                return gv_error(GV_ERR_FORMAT, "'%s': __metadata__ is not an object", L);
            json_object_object_foreach(val, mk, mv) {
                if (!json_object_is_type(mv, json_type_string))
                    return gv_error(GV_ERR_FORMAT, "'%s': __metadata__['%s'] is not a string", L, mk);
            }
            f->meta = val;
            continue;
        }
        st_entry *e = &f->entries[f->n++];
        e->name = key;
        st = parse_entry(f, e, val);
        if (st) return st;
    }
    for (size_t i = 0; i < f->n; i++) f->by_offset[i] = f->by_name[i] = &f->entries[i];
    qsort(f->by_offset, f->n, sizeof *f->by_offset, cmp_offset);
    qsort(f->by_name, f->n, sizeof *f->by_name, cmp_name);
    /* safetensors' rule: the entries tile the data region exactly. */
    uint64_t pos = 0;
    for (size_t i = 0; i < f->n; i++) {
        st_entry *e = f->by_offset[i];
        if (e->begin != pos)
            return gv_error(GV_ERR_FORMAT,
                            "'%s': entry '%s': data_offsets [%" PRIu64 ", %" PRIu64 "] %s at data byte %" PRIu64,
                            L, e->name, e->begin, e->end,
                            e->begin < pos ? "overlap the previous entry" : "leave a gap", pos);
        pos = e->end;
    }
    if (pos != f->data_len)
        return gv_error(GV_ERR_FORMAT, "'%s': entries cover %" PRIu64 " bytes but the data region "
                        "has %" PRIu64 " (trailing or missing bytes at file byte %" PRIu64 ")",
                        L, pos, f->data_len, f->data_start + pos);
    return GV_OK;
}

/* ---- reading: data and tree ---------------------------------------------------- */

/* IEEE binary16 -> binary32, exactly (every half value is a float value):
 * signed zeros, subnormals (normalised here), infinities and NaNs (payload
 * kept in the top mantissa bits). */
static uint32_t f16_to_f32_bits(uint16_t h) {
    uint32_t sign = (uint32_t)(h & 0x8000u) << 16, exp = (h >> 10) & 0x1fu, man = h & 0x3ffu;
    if (exp == 0x1f) return sign | 0x7f800000u | (man << 13);
    if (exp == 0) {
        if (man == 0) return sign;
        int e = -1; /* normalise: shift until the implicit bit appears */
        do {
            e++;
            man <<= 1;
        } while (!(man & 0x400u));
        return sign | ((uint32_t)(127 - 15 - e) << 23) | ((man & 0x3ffu) << 13);
    }
    return sign | ((exp + 127 - 15) << 23) | (man << 13);
}

/* The count 16-bit values at the start of buf become count floats, in place
 * (from the last one down, since each float is wider). */
static void widen_half(void *buf, size_t count, int kind) {
    const uint16_t *h = buf;
    uint32_t *w = buf;
    for (size_t i = count; i-- > 0;) {
        uint16_t v = h[i];
        w[i] = kind == ST_BF16 ? (uint32_t)v << 16 : f16_to_f32_bits(v);
    }
}

static const char *meta_get(const st_file *f, const char *key) {
    json_object *v;
    if (!f->meta || !json_object_object_get_ex(f->meta, key, &v)) return NULL;
    return json_object_get_string(v);
}

static gv_status read_data(st_file *f, uLong *crc) {
    const char *L = f->src->label;
    *crc = crc32_z(0L, Z_NULL, 0);
    for (size_t i = 0; i < f->n; i++) {
        st_entry *e = f->by_offset[i];
        gv_clear_error();
        e->t = gv_tensor_zeros(e->dtype, e->rank, e->rank ? e->shape : NULL);
        if (!e->t) {
            gv_status st = gv_last_status() == GV_ERR_NOMEM ? GV_ERR_NOMEM : GV_ERR_FORMAT;
            return gv_error(st, "'%s': entry '%s': %s", L, e->name, gv_last_error());
        }
        size_t nb = (size_t)(e->end - e->begin);
        if (!nb) continue;
        gv_status st = src_read(f->src, f->data_start + e->begin, gv_tensor_data(e->t), nb);
        if (st) return st;
        const unsigned char *p = gv_tensor_data_const(e->t);
        *crc = crc32_z(*crc, p, nb);
        if (e->half) {
            widen_half(gv_tensor_data(e->t), nb / 2, e->half);
            f->nconverted++;
        }
        if (e->dtype == GV_BOOL)
            for (size_t k = 0; k < nb; k++)
                if (p[k] > 1)
                    return gv_error(GV_ERR_FORMAT, "'%s': entry '%s': bool byte %u at file byte %" PRIu64,
                                    L, e->name, p[k], f->data_start + e->begin + k);
    }
    return GV_OK;
}

static st_entry *find_entry(st_file *f, const char *name) {
    st_entry key = {.name = name}, *kp = &key;
    st_entry **hit = bsearch(&kp, f->by_name, f->n, sizeof *f->by_name, cmp_name);
    return hit ? *hit : NULL;
}

/* Rebuild the tree from the structure node. NULL with the error set. */
static gv_tree *build_node(st_file *f, json_object *node, const char *path) {
    const char *L = f->src->label;
    const char *where = *path ? path : "<root>";
    if (json_object_is_type(node, json_type_string)) {
        const char *want = *path ? path : GV_ST_ROOT_NAME;
        const char *name = json_object_get_string(node);
        if (strcmp(name, want) != 0) {
            gv_error(GV_ERR_FORMAT, "'%s': structure: leaf at %s names tensor '%.200s', expected '%s'",
                     L, where, name, want);
            return NULL;
        }
        st_entry *e = find_entry(f, name);
        if (!e || e->used) {
            gv_error(GV_ERR_FORMAT, "'%s': structure: leaf at %s: tensor '%s' is %s", L, where, name,
                     e ? "used twice" : "not in the header");
            return NULL;
        }
        e->used = true;
        return gv_tree_new_leaf(e->t);
    }
    json_object *items = NULL;
    gv_tree_kind kind = GV_TREE_DICT;
    if (json_object_is_type(node, json_type_object) && json_object_object_length(node) == 1) {
        if (json_object_object_get_ex(node, "dict", &items)) kind = GV_TREE_DICT;
        else if (json_object_object_get_ex(node, "list", &items)) kind = GV_TREE_LIST;
        else if (json_object_object_get_ex(node, "tuple", &items)) kind = GV_TREE_TUPLE;
    }
    if (!items || !json_object_is_type(items, json_type_array)) {
        gv_error(GV_ERR_FORMAT, "'%s': structure: bad node at %s", L, where);
        return NULL;
    }
    gv_tree *t = kind == GV_TREE_DICT ? gv_tree_new_dict()
               : kind == GV_TREE_LIST ? gv_tree_new_list()
                                      : gv_tree_new_tuple();
    if (!t) return NULL;
    size_t n = json_object_array_length(items);
    for (size_t i = 0; i < n; i++) {
        json_object *item = json_object_array_get_idx(items, i), *child_node = item;
        const char *key = NULL;
        char idx[32];
        if (kind == GV_TREE_DICT) {
            json_object *k;
            if (!json_object_is_type(item, json_type_array) || json_object_array_length(item) != 2 ||
                !json_object_is_type(k = json_object_array_get_idx(item, 0), json_type_string)) {
                gv_error(GV_ERR_FORMAT, "'%s': structure: bad dict item %zu at %s", L, i, where);
                goto fail;
            }
            key = json_object_get_string(k);
            if (!*key || strchr(key, '/') ||
                (size_t)json_object_get_string_len(k) != strlen(key)) {
                gv_error(GV_ERR_FORMAT, "'%s': structure: bad key '%.200s' at %s", L, key, where);
                goto fail;
            }
            child_node = json_object_array_get_idx(item, 1);
        } else {
            snprintf(idx, sizeof idx, "%zu", i);
            key = idx;
        }
        char *cpath = gv_tree_path_join(path, key);
        if (!cpath) {
            gv_error(GV_ERR_NOMEM, "out of memory");
            goto fail;
        }
        gv_tree *child = build_node(f, child_node, cpath);
        free(cpath);
        if (!child) goto fail;
        gv_status st = kind == GV_TREE_DICT ? gv_tree_insert(t, key, child) : gv_tree_append(t, child);
        if (st) {
            gv_error(GV_ERR_FORMAT, "'%s': structure: cannot add key '%.200s' at %s: %s", L, key,
                     where, gv_last_error());
            goto fail;
        }
    }
    return t;
fail:
    gv_tree_free(t);
    return NULL;
}

static gv_tree *build_tree(st_file *f) {
    const char *L = f->src->label;
    if (f->grove) {
        const char *text = meta_get(f, "structure");
        if (!text) return gv_error(GV_ERR_FORMAT, "'%s': grove metadata without structure", L), NULL;
        json_object *s = gv_parse_json(text, strlen(text), GV_ST_STRUCTURE_JSON_DEPTH, L,
                                    "__metadata__ structure", 0);
        if (!s) return NULL;
        gv_tree *t = build_node(f, s, "");
        json_object_put(s);
        if (!t) return NULL;
        for (size_t i = 0; i < f->n; i++)
            if (!f->entries[i].used) {
                gv_error(GV_ERR_FORMAT, "'%s': entry '%s' is not in the structure", L,
                         f->entries[i].name);
                gv_tree_free(t);
                return NULL;
            }
        return t;
    }
    /* A plain safetensors file: names split at '/' as nested dicts, in header order. */
    gv_tree *t = gv_tree_new_dict();
    if (!t) return NULL;
    for (size_t i = 0; i < f->n; i++) {
        st_entry *e = &f->entries[i];
        if (gv_tree_insert_tensor(t, e->name, e->t)) {
            gv_error(GV_ERR_FORMAT, "'%s': entry '%.200s' is not a valid tree path: %s", L, e->name,
                     gv_last_error());
            gv_tree_free(t);
            return NULL;
        }
    }
    return t;
}

static gv_tree *read_src(const st_src *src, bool *has_structure, bool half_to_f32,
                         size_t *nconverted) {
    if (!GV_ST_HOST_LE)
        return gv_error(GV_ERR_UNSUPPORTED, "big-endian hosts are not supported"), NULL;
    st_file f = {.src = src, .half_to_f32 = half_to_f32};
    gv_tree *tree = NULL;
    if (parse_header(&f)) goto out;
    const char *fmt = meta_get(&f, "format");
    f.grove = fmt && strcmp(fmt, "grove") == 0;
    if (f.grove) {
        const char *ver = meta_get(&f, "version"), *bo = meta_get(&f, "byte_order");
        const char *algo = meta_get(&f, "checksum_algorithm"), *sum = meta_get(&f, "checksum");
        if (!ver || strcmp(ver, "1") != 0) {
            gv_error(GV_ERR_UNSUPPORTED, "'%s': grove format version '%s' (this grove reads 1)",
                     src->label, ver ? ver : "(none)");
            goto out;
        }
        if (!bo || strcmp(bo, "little") != 0 || !algo || strcmp(algo, "crc32") != 0 || !sum) {
            gv_error(GV_ERR_FORMAT, "'%s': grove metadata needs byte_order 'little', "
                     "checksum_algorithm 'crc32' and a checksum", src->label);
            goto out;
        }
    }
    uLong crc;
    if (read_data(&f, &crc)) goto out;
    if (f.grove) {
        char got[16];
        snprintf(got, sizeof got, "%08lx", (unsigned long)crc & 0xffffffffUL);
        if (strcmp(got, meta_get(&f, "checksum")) != 0) {
            gv_error(GV_ERR_FORMAT, "'%s': checksum mismatch: the data region (bytes %" PRIu64
                     "..%" PRIu64 ") has crc32 %s, the header says %.16s (corrupted file)",
                     src->label, f.data_start, src->size, got, meta_get(&f, "checksum"));
            goto out;
        }
    }
    tree = build_tree(&f);
    if (tree && has_structure) *has_structure = f.grove;
    if (tree && nconverted) *nconverted = f.nconverted;
out:
    file_free(&f);
    return tree;
}

gv_tree *gv_safetensors_parse_buffer(const void *data, size_t size, const char *label,
                                     bool *has_structure) {
    if (!data && size) return gv_error(GV_ERR_ARG, "gv_safetensors_parse_buffer: data is NULL"), NULL;
    st_src src = {.fd = -1, .mem = data, .size = size, .label = label ? label : "<buffer>"};
    return read_src(&src, has_structure, false, NULL);
}

static gv_tree *read_file(const char *path, bool *has_structure, bool half_to_f32,
                          size_t *nconverted) {
    if (!path) return gv_error(GV_ERR_ARG, "path is NULL"), NULL;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        int err = errno;
        gv_error(err == ENOENT ? GV_ERR_NOT_FOUND : GV_ERR_IO, "cannot open '%s': %s", path,
                 strerror(err));
        return NULL;
    }
    struct stat sb;
    if (fstat(fd, &sb) != 0) {
        gv_error(GV_ERR_IO, "cannot stat '%s': %s", path, strerror(errno));
        close(fd);
        return NULL;
    }
    if (!S_ISREG(sb.st_mode)) {
        gv_error(GV_ERR_IO, "'%s' is not a regular file%s", path,
                 S_ISDIR(sb.st_mode) ? " (it is a directory)" : "");
        close(fd);
        return NULL;
    }
    st_src src = {.fd = fd, .size = (uint64_t)sb.st_size, .label = path};
    gv_tree *t = read_src(&src, has_structure, half_to_f32, nconverted);
    close(fd);
    return t;
}

gv_tree *gv_safetensors_read_file(const char *path, bool *has_structure) {
    return read_file(path, has_structure, false, NULL);
}

gv_tree *gv_safetensors_read_file_widening(const char *path, size_t *nconverted) {
    return read_file(path, NULL, true, nconverted);
}

/* ---- public restore ---------------------------------------------------------------- */

gv_tree *gv_checkpointer_restore(const char *path) {
    gv_tree *t = gv_safetensors_read_file(path, NULL);
    if (!t) gv_error_prefix("gv_checkpointer_restore: ");
    return t;
}

static gv_tensor *leaf_tensor_at(const gv_tree *t, const char *path) {
    gv_tree *node = gv_tree_get(t, path);
    return node && gv_tree_leaf_kind(node) == GV_LEAF_TENSOR ? gv_tree_leaf_tensor(node) : NULL;
}

static char *shape_str(const gv_tensor *t) {
    size_t cap = 8 + 24 * (size_t)gv_tensor_rank(t), o = 0;
    char *s = malloc(cap);
    if (!s) return NULL;
    o += (size_t)snprintf(s + o, cap - o, "(");
    for (int d = 0; d < gv_tensor_rank(t); d++)
        o += (size_t)snprintf(s + o, cap - o, "%s%" PRId64, d ? ", " : "", gv_tensor_shape(t)[d]);
    snprintf(s + o, cap - o, gv_tensor_rank(t) == 1 ? ",)" : ")");
    return s;
}

/* A file without grove metadata has only names: match the target's leaf
 * paths against them and give the result the target's containers. */
static gv_tree *restore_by_paths(const char *path, gv_tree *file, const gv_tree *target) {
    gv_tensor **tl = NULL, **out = NULL;
    char **paths = NULL;
    size_t n = 0, np = 0;
    gv_tree *result = NULL;
    gv_treedef *def = NULL;
    if (gv_tree_flatten(target, &tl, &n) || gv_tree_leaf_paths(target, &paths, &np)) goto done;
    out = calloc(n ? n : 1, sizeof *out);
    if (!out) {
        gv_error(GV_ERR_NOMEM, "out of memory");
        goto done;
    }
    bool root_leaf = gv_tree_is_leaf(target);
    for (size_t i = 0; i < n; i++) {
        const char *p = root_leaf ? GV_ST_ROOT_NAME : paths[i];
        gv_tensor *ft = leaf_tensor_at(file, p);
        if (!ft) {
            gv_error(GV_ERR_STRUCTURE, "%s: in the target but not in the file", paths[i][0] ? paths[i] : "<root>");
            goto done;
        }
        if (!gv_tensor_same_shape(tl[i], ft) || gv_tensor_dtype(tl[i]) != gv_tensor_dtype(ft)) {
            char *a = shape_str(tl[i]), *b = shape_str(ft);
            gv_error(GV_ERR_STRUCTURE, "%s: target %s %s vs file %s %s", p,
                     gv_dtype_name(gv_tensor_dtype(tl[i])), a ? a : "?",
                     gv_dtype_name(gv_tensor_dtype(ft)), b ? b : "?");
            free(a), free(b);
            goto done;
        }
        out[i] = ft;
    }
    if (gv_tree_num_leaves(file) != n) {
        gv_error(GV_ERR_STRUCTURE, "the file has %zu tensors, the target %zu leaves",
                 gv_tree_num_leaves(file), n);
        goto done;
    }
    def = gv_tree_structure(target);
    if (def) result = gv_tree_unflatten(def, out, n);
done:
    gv_treedef_free(def);
    free(out);
    free(tl);
    gv_tree_paths_free(paths, np);
    (void)path;
    return result;
}

gv_tree *gv_checkpointer_restore_into(const char *path, const gv_tree *target) {
    if (!target) {
        gv_error(GV_ERR_ARG, "gv_checkpointer_restore_into: target is NULL");
        return NULL;
    }
    bool grove = false;
    gv_tree *file = gv_safetensors_read_file(path, &grove);
    if (!file) {
        gv_error_prefix("gv_checkpointer_restore_into: ");
        return NULL;
    }
    gv_tree *result = NULL;
    if (grove) {
        /* Saved kinds must match exactly: a tuple never becomes a list or
         * dict (reference E6). gv_tree_check_same names the first
         * difference, "path: shape (4,) vs (5,)" with the target first. */
        if (gv_tree_check_same(target, file, "target vs file") == GV_OK) {
            result = file;
            file = NULL;
        }
    } else {
        result = restore_by_paths(path, file, target);
    }
    gv_tree_free(file);
    if (!result) {
        gv_status st = gv_last_status();
        gv_error(st == GV_ERR_NOMEM || st == GV_ERR_ARG ? st : GV_ERR_STRUCTURE, "%s", gv_last_error());
        gv_error_prefix("gv_checkpointer_restore_into: '%s': ", path);
    }
    return result;
}
