/* grove internal: the safetensors reader, exposed for the checkpoint
 * manager and the fuzzer (tests/fuzz/fuzz_safetensors.c). */
#ifndef GROVE_CHECKPOINT_FORMAT_INTERNAL_H
#define GROVE_CHECKPOINT_FORMAT_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>

#include "grove/tree.h"

/* Hard bounds of the reader. The header limit is safetensors' own (100 MB);
 * the structure depth bounds the recursion of the tree rebuild. */
#define GV_ST_MAX_HEADER 100000000ull
#define GV_ST_HEADER_JSON_DEPTH 64
#define GV_ST_STRUCTURE_JSON_DEPTH 3072   /* about 1000 tree levels */

/* Reserved tensor name of a tree that is a single leaf (the empty path is
 * not a valid name for every safetensors reader). */
#define GV_ST_ROOT_NAME "__root__"

/* Parse a whole safetensors file held in memory. label names it in error
 * messages. *has_structure (may be NULL) says whether grove metadata was
 * present (false: a plain safetensors file, rebuilt as nested dicts). New
 * tree, or NULL with gv_last_error() set (never a crash on any input). */
gv_tree *gv_safetensors_parse_buffer(const void *data, size_t size, const char *label,
                                     bool *has_structure);

/* The same from a file, reading tensor data straight into the tensors. */
gv_tree *gv_safetensors_read_file(const char *path, bool *has_structure);

#endif
