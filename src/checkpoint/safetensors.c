/* grove: one tree <-> one safetensors file (Orbax's Checkpointer, reference
 * D1), with the atomic write of D4 and the fixes for E3/E5/E6: a plain
 * logical array per leaf, and the node kinds (dict/list/tuple, empty
 * subtrees) stored so that a restore rebuilds the tree faithfully.
 *
 * File layout (https://github.com/huggingface/safetensors, "Format"):
 *   u64 little-endian N | N bytes of JSON header, space-padded so that
 *   8 + N is a multiple of 8 | data region.
 * Header: {"__metadata__": {...}, "<name>": {"dtype": "F32", "shape": [..],
 * "data_offsets": [begin, end]}, ...}, offsets relative to the data region.
 *
 * grove writes:
 *   - one entry per tensor leaf, named by its tree path ("params/Dense_0/
 *     kernel"); a tree that is a single leaf uses GV_ST_ROOT_NAME;
 *   - entries in flatten order (dict keys sorted), data contiguous in the
 *     same order, no padding between tensors;
 *   - __metadata__ (string values only, as safetensors requires):
 *       format "grove", version "1", byte_order "little",
 *       checksum_algorithm "crc32" (zlib's CRC-32 of the whole data region),
 *       checksum "%08x",
 *       structure: JSON text of the tree in insertion order, where a node is
 *         "tensor name"                      a leaf
 *         {"dict": [["key", node], ...]}     keys in insertion order
 *         {"list": [node, ...]}  {"tuple": [node, ...]}
 *
 * Reading back: safetensors_read.c (strict, see its notes), with the JSON
 * checks in json_strict.c. */
#include "format_internal.h"
#include "io_internal.h"

#include <json-c/json.h>
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include "core/error.h"
#include "grove/checkpoint.h"
#include "grove/eval_shape.h"
#include "tree/tree_internal.h"

/* ---- dtypes ---------------------------------------------------------------- */

static const struct {
    const char *name;
    gv_dtype dtype;
} st_dtypes[] = {
    {"BOOL", GV_BOOL}, {"U8", GV_U8},   {"U16", GV_U16}, {"U32", GV_U32}, {"U64", GV_U64},
    {"I32", GV_I32},   {"I64", GV_I64}, {"F32", GV_F32}, {"F64", GV_F64},
};

/* Valid safetensors dtypes grove cannot hold yet (GV_ERR_UNSUPPORTED). */
static const char *const st_unsupported[] = {"F16", "BF16", "I8", "I16", "F8_E4M3", "F8_E5M2",
                                             "F8_E8M0", "F6_E2M3", "F6_E3M2", "F4", "C64"};

static const char *st_dtype_name(gv_dtype d) {
    for (size_t i = 0; i < sizeof st_dtypes / sizeof *st_dtypes; i++)
        if (st_dtypes[i].dtype == d) return st_dtypes[i].name;
    return NULL;
}

gv_status gv_safetensors_dtype_from_name(const char *name, gv_dtype *out) {
    bool found = false;
    for (size_t i = 0; i < sizeof st_dtypes / sizeof *st_dtypes; i++)
        if (strcmp(name, st_dtypes[i].name) == 0) *out = st_dtypes[i].dtype, found = true;
    if (found) return GV_OK;
    for (size_t i = 0; i < sizeof st_unsupported / sizeof *st_unsupported; i++)
        if (strcmp(name, st_unsupported[i]) == 0) return GV_ERR_UNSUPPORTED;
    return GV_ERR_FORMAT;
}

/* ---- save -------------------------------------------------------------------- */

static json_object *structure_of(const gv_tree *t, const char *path) {
    gv_tree_kind kind = gv_tree_kind_of(t);
    if (kind == GV_TREE_LEAF) return json_object_new_string(*path ? path : GV_ST_ROOT_NAME);
    json_object *items = json_object_new_array();
    if (!items) return NULL;
    size_t n = gv_tree_num_children(t);
    for (size_t i = 0; i < n; i++) {
        const char *key = gv_tree_key(t, i);
        char *cpath = gv_tree_path_join(path, key);
        if (!cpath) goto fail;
        json_object *child = structure_of(gv_tree_child(t, i), cpath);
        free(cpath);
        if (!child) goto fail;
        if (kind == GV_TREE_DICT) {
            json_object *pair = json_object_new_array();
            json_object *k = json_object_new_string(key);
            if (!pair || !k || json_object_array_add(pair, k) ||
                json_object_array_add(pair, child) || json_object_array_add(items, pair)) {
                json_object_put(pair), json_object_put(k), json_object_put(child);
                goto fail;
            }
        } else if (json_object_array_add(items, child)) {
            json_object_put(child);
            goto fail;
        }
    }
    json_object *node = json_object_new_object();
    if (!node) goto fail;
    json_object_object_add(node, gv_tree_kind_name(kind), items);
    return node;
fail:
    json_object_put(items);
    return NULL;
}

static int add_int_pair(json_object *obj, const char *key, int64_t a, int64_t b) {
    json_object *arr = json_object_new_array();
    if (!arr) return -1;
    json_object_array_add(arr, json_object_new_int64(a));
    json_object_array_add(arr, json_object_new_int64(b));
    return json_object_object_add(obj, key, arr);
}

gv_status gv_checkpointer_save(const char *path, const gv_tree *tree, bool force) {
    if (!path || !*path) return gv_error(GV_ERR_ARG, "gv_checkpointer_save: path is NULL or empty");
    if (!tree) return gv_error(GV_ERR_ARG, "gv_checkpointer_save: '%s': tree is NULL", path);
    if (!GV_ST_HOST_LE)
        return gv_error(GV_ERR_UNSUPPORTED, "gv_checkpointer_save: big-endian hosts are not supported");

    gv_tensor **leaves = NULL;
    char **paths = NULL;
    size_t n = 0, npaths = 0;
    json_object *header = NULL, *meta = NULL, *structure = NULL;
    const void **chunks = NULL;
    size_t *sizes = NULL;
    char *hbuf = NULL;
    /* a shape-only leaf has nothing to write: refused by path, never written as zeros */
    gv_status st = gv_tree_check_concrete(tree, "cannot save");
    if (st == GV_OK) st = gv_tree_flatten(tree, &leaves, &n);
    if (st) {
        gv_error_prefix("gv_checkpointer_save: '%s': ", path);
        return st;
    }
    st = gv_tree_leaf_paths(tree, &paths, &npaths);
    if (st) goto prefix;
    if (npaths != n || n > (size_t)INT_MAX - 2) {
        st = gv_error(GV_ERR_INTERNAL, "leaf count %zu vs %zu paths", n, npaths);
        goto prefix;
    }

    header = json_object_new_object();
    meta = json_object_new_object();
    structure = structure_of(tree, "");
    chunks = malloc((n + 2) * sizeof *chunks);
    sizes = malloc((n + 2) * sizeof *sizes);
    if (!header || !meta || !structure || !chunks || !sizes) goto nomem;

    /* __metadata__ first, as safetensors writes it; its values are filled in
     * below (the checksum needs the data). */
    json_object_object_add(header, "__metadata__", json_object_get(meta));
    uLong crc = crc32_z(0L, Z_NULL, 0);
    uint64_t offset = 0;
    for (size_t i = 0; i < n; i++) {
        const char *name = paths[i][0] ? paths[i] : GV_ST_ROOT_NAME;
        if (strcmp(name, "__metadata__") == 0) {
            st = gv_error(GV_ERR_ARG, "the key '__metadata__' is reserved by safetensors");
            goto prefix;
        }
        gv_tensor *t = leaves[i];
        const char *dname = st_dtype_name(gv_tensor_dtype(t));
        if (!dname) {
            st = gv_error(GV_ERR_DTYPE, "%s: dtype %s cannot be saved", name,
                          gv_dtype_name(gv_tensor_dtype(t)));
            goto prefix;
        }
        size_t nb = gv_tensor_nbytes(t);
        json_object *e = json_object_new_object(), *shape = json_object_new_array();
        if (!e || !shape) {
            json_object_put(e), json_object_put(shape);
            goto nomem;
        }
        json_object_object_add(e, "dtype", json_object_new_string(dname));
        for (int d = 0; d < gv_tensor_rank(t); d++)
            json_object_array_add(shape, json_object_new_int64(gv_tensor_shape(t)[d]));
        json_object_object_add(e, "shape", shape);
        add_int_pair(e, "data_offsets", (int64_t)offset, (int64_t)(offset + nb));
        if (json_object_object_add(header, name, e)) goto nomem;
        offset += nb;
        chunks[i + 2] = gv_tensor_data_const(t);
        sizes[i + 2] = nb;
        crc = crc32_z(crc, gv_tensor_data_const(t), nb);
    }

    char crcbuf[16];
    snprintf(crcbuf, sizeof crcbuf, "%08lx", (unsigned long)crc & 0xffffffffUL);
    json_object_object_add(meta, "format", json_object_new_string("grove"));
    json_object_object_add(meta, "version", json_object_new_string("1"));
    json_object_object_add(meta, "byte_order", json_object_new_string("little"));
    json_object_object_add(meta, "checksum_algorithm", json_object_new_string("crc32"));
    json_object_object_add(meta, "checksum", json_object_new_string(crcbuf));
    const char *stext = json_object_to_json_string_ext(
        structure, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE);
    if (!stext) goto nomem;
    json_object_object_add(meta, "structure", json_object_new_string(stext));

    size_t hlen = 0;
    const char *htext = json_object_to_json_string_length(
        header, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE, &hlen);
    if (!htext) goto nomem;
    size_t padded = (hlen + 7) & ~(size_t)7;
    hbuf = malloc(8 + padded);
    if (!hbuf) goto nomem;
    uint64_t N = padded;
    for (int b = 0; b < 8; b++) hbuf[b] = (char)((N >> (8 * b)) & 0xff);
    memcpy(hbuf + 8, htext, hlen);
    memset(hbuf + 8 + hlen, ' ', padded - hlen);
    chunks[0] = hbuf;
    sizes[0] = 8 + padded;
    chunks[1] = NULL;
    sizes[1] = 0;

    st = gv_atomic_write_file(path, chunks, sizes, (int)(n + 2), force);
    if (st) gv_error_prefix("gv_checkpointer_save: ");
    goto done;

nomem:
    st = gv_error(GV_ERR_NOMEM, "out of memory");
prefix:
    gv_error_prefix("gv_checkpointer_save: '%s': ", path);
done:
    free(hbuf);
    free(chunks);
    free(sizes);
    json_object_put(structure);
    json_object_put(meta);
    json_object_put(header);
    gv_tree_paths_free(paths, npaths);
    free(leaves);
    return st;
}
