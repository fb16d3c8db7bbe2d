/* grove internal: the safetensors reader, exposed for the checkpoint
 * manager and the fuzzer (tests/fuzz/fuzz_safetensors.c), and what the
 * writer (safetensors.c), the reader (safetensors_read.c) and the strict
 * JSON parser (json_strict.c) share. */
#ifndef GROVE_CHECKPOINT_FORMAT_INTERNAL_H
#define GROVE_CHECKPOINT_FORMAT_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "grove/tree.h"

struct json_object;

/* Hard bounds of the reader. The header limit is safetensors' own (100 MB);
 * the structure depth bounds the recursion of the tree rebuild. */
#define GV_ST_MAX_HEADER 100000000ull
#define GV_ST_HEADER_JSON_DEPTH 64
#define GV_ST_STRUCTURE_JSON_DEPTH 3072   /* about 1000 tree levels */

/* Reserved tensor name of a tree that is a single leaf (the empty path is
 * not a valid name for every safetensors reader). */
#define GV_ST_ROOT_NAME "__root__"

/* The format is little-endian; neither side byte-swaps yet. */
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#define GV_ST_HOST_LE 0
#else
#define GV_ST_HOST_LE 1
/* Tensors above this many bytes are written as Flax's chunked dicts
 * (flax_msgpack.c; flax.serialization.MAX_CHUNK_SIZE, 2^30). Tests lower it
 * to compare with a file Flax wrote under a lowered MAX_CHUNK_SIZE. */
extern uint64_t gv_flax_max_chunk_bytes;

#endif

/* Parse a whole safetensors file held in memory. label names it in error
 * messages. *has_structure (may be NULL) says whether grove metadata was
 * present (false: a plain safetensors file, rebuilt as nested dicts). New
 * tree, or NULL with gv_last_error() set (never a crash on any input). */
gv_tree *gv_safetensors_parse_buffer(const void *data, size_t size, const char *label,
                                     bool *has_structure);

/* The same from a file, reading tensor data straight into the tensors. */
gv_tree *gv_safetensors_read_file(const char *path, bool *has_structure);

/* The same, for a model file of someone else's (a Hugging Face checkpoint):
 * float16 and bfloat16 entries are read as float32 (exactly: every such
 * value is a float32 value) and counted in *nconverted (may be NULL). */
gv_tree *gv_safetensors_read_file_widening(const char *path, size_t *nconverted);

/* The grove dtype of a safetensors dtype name (safetensors.c's table):
 * GV_OK with *out set; GV_ERR_UNSUPPORTED for a valid safetensors dtype
 * grove cannot hold yet; GV_ERR_FORMAT for any other name. Sets no error. */
gv_status gv_safetensors_dtype_from_name(const char *name, gv_dtype *out);

/* Parse len bytes of JSON text strictly (json_strict.c): json-c's strict
 * mode with UTF-8 validation and at most depth levels of nesting, trailing
 * whitespace (safetensors' padding) ignored; then duplicate keys at any
 * level, \u0000 in a key and anything else json-c's strict mode lets through
 * are refused. label and what name the file and the part in messages, base
 * is the byte offset of text in the file. New object (json_object_put it),
 * or NULL with the error set (GV_ERR_FORMAT, GV_ERR_NOMEM). */
struct json_object *gv_parse_json(const char *text, size_t len, int depth, const char *label,
                                  const char *what, uint64_t base);

/* Tensors above this many bytes are written as Flax's chunked dicts
 * (flax_msgpack.c; flax.serialization.MAX_CHUNK_SIZE, 2^30). Tests lower it
 * to compare with a file Flax wrote under a lowered MAX_CHUNK_SIZE. */
extern uint64_t gv_flax_max_chunk_bytes;

#endif
