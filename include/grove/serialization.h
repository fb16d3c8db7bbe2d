/* grove: Flax's msgpack serialization (flax.serialization), both ways.
 *
 *   bytes = flax.serialization.to_bytes(state)          gv_flax_to_bytes(state, &buf, &len)
 *   d = flax.serialization.msgpack_restore(bytes)      gv_flax_msgpack_restore(buf, len)
 *   state = flax.serialization.from_bytes(target, b)   gv_flax_from_bytes(target, buf, len)
 *   open(path, "wb").write(to_bytes(state))            gv_flax_save(path, state, force)
 *   from_bytes(target, open(path, "rb").read())        gv_flax_restore(path, target)
 *
 * The format is Flax's state dict packed with msgpack (msgpack-c does the
 * packing and unpacking):
 *   - a dict is a map with string keys, in the tree's key order; a list or
 *     a tuple is a map with keys "0", "1", ... (Flax's to_state_dict), so
 *     restoring without a target gives dicts there, as msgpack_restore does;
 *     restoring into a target gives the target's lists and tuples back;
 *   - a tensor is ext type 1 ("ndarray") holding the msgpack array
 *     [shape, numpy dtype name, C-order little-endian bytes]; tensors above
 *     2^30 bytes are written as Flax's chunked dicts
 *     ({"__msgpack_chunked_array__": true, "shape": ..., "chunks": ...});
 *   - a label leaf is a string.
 * A tree grove writes is byte for byte what Flax writes for the same tree
 * (tests/checkpoint/test_flax_msgpack.c checks it against files Flax made).
 *
 * What a file may hold and what grove makes of it (restoring as saved):
 *   ndarray (ext 1), numpy scalar (ext 3)  tensor; rank-0 for a scalar
 *     dtypes bool, uint8/16/32/64, int32/64, float32/64; float16,
 *     bfloat16, int8, int16, complex and the float8 kinds are
 *     GV_ERR_UNSUPPORTED naming the path and the dtype
 *   Python int                             int64 scalar (uint64 above INT64_MAX)
 *   Python float                           float64 scalar
 *   Python bool                            bool scalar
 *   str                                    label leaf
 *   map (str keys), array                  dict, list
 *   None, bytes, complex (ext 2)           GV_ERR_UNSUPPORTED naming the path
 * Into a target, a Python scalar takes the target leaf's dtype when its value
 * is exactly representable there (a float into a float dtype, rounded as
 * numpy rounds float64 to float32); anything else must match the target's
 * dtype and shape exactly (GV_ERR_STRUCTURE naming the path and both).
 * A target dict's keys must all be in the file and the file may hold no
 * others (Flax ignores extra keys; grove names them, so nothing is dropped
 * silently). Target leaves may be shape-only (eval_shape.h).
 *
 * Reading is strict and bounded: before msgpack-c builds anything, a scan
 * checks that every length and element count fits in the bytes that remain
 * and that containers nest at most GV_FLAX_MAX_DEPTH deep, so no input can
 * make the reader allocate more than a small multiple of its size. Every
 * malformed input (truncated, trailing bytes, a bad ext payload, a shape
 * whose size does not match its bytes, a non-string or duplicate key, a key
 * grove cannot hold) is GV_ERR_FORMAT naming the file (or "msgpack bytes"),
 * the byte offset or the tree path, and what was expected; never a crash.
 * Writing a file is atomic, as every grove checkpoint write (checkpoint.h). */
#ifndef GROVE_SERIALIZATION_H
#define GROVE_SERIALIZATION_H

#include <stdbool.h>
#include <stddef.h>

#include "grove/status.h"
#include "grove/tree.h"

#ifdef __cplusplus
extern "C" {
#endif

#pragma GCC visibility push(default) /* the public API: exported from libgrove.so */

/* Containers deeper than this are refused (msgpack-c's own limit is 32). */
#define GV_FLAX_MAX_DEPTH 30

/* flax.serialization.to_bytes(tree): *bytes (malloc'd; the caller frees)
 * and *len. Errors: GV_ERR_ARG for a NULL argument, a shape-only leaf or a
 * symbolic value (naming its path), GV_ERR_DTYPE for a dtype with no numpy
 * name, GV_ERR_NOMEM. */
gv_status gv_flax_to_bytes(const gv_tree *tree, void **bytes, size_t *len);
/* flax.serialization.msgpack_restore(bytes): the state dict as saved. New
 * tree, or NULL with the error set. */
gv_tree *gv_flax_msgpack_restore(const void *bytes, size_t len);
/* flax.serialization.from_bytes(target, bytes): the state dict restored
 * into target's structure (target is not modified). New tree. */
gv_tree *gv_flax_from_bytes(const gv_tree *target, const void *bytes, size_t len);

/* to_bytes written to path atomically (GV_ERR_EXISTS unless force; the
 * errors of gv_checkpointer_save otherwise). */
gv_status gv_flax_save(const char *path, const gv_tree *tree, bool force);
/* The file at path restored as saved (target NULL) or into target. Errors
 * name the file: GV_ERR_NOT_FOUND, GV_ERR_IO, GV_ERR_FORMAT,
 * GV_ERR_UNSUPPORTED, GV_ERR_STRUCTURE, GV_ERR_NOMEM (the file is read into
 * memory whole). */
gv_tree *gv_flax_restore(const char *path, const gv_tree *target);

#pragma GCC visibility pop

#ifdef __cplusplus
}
#endif
#endif
