/* libFuzzer target: any bytes given to the safetensors reader must give a
 * tree or a clean error, never a crash, a leak or undefined behaviour.
 * Built and run by scripts/fuzz.sh (clang -fsanitize=fuzzer,address,undefined).
 * A parsed tree is saved again and re-read, so the writer sees odd trees too. */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "checkpoint/format_internal.h"
#include "grove/checkpoint.h"

static char out_path[64];

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    bool grove = false;
    gv_tree *t = gv_safetensors_parse_buffer(data, size, "fuzz", &grove);
    if (!t) return 0;
    if (!out_path[0]) snprintf(out_path, sizeof out_path, "/tmp/gv-fuzz-%ld.safetensors", (long)getpid());
    if (gv_checkpointer_save(out_path, t, true) == GV_OK) {
        gv_tree *r = gv_checkpointer_restore(out_path);
        if (!r || gv_tree_check_same(t, r, "fuzz round trip") != GV_OK) {
            fprintf(stderr, "round trip failed: %s\n", gv_last_error());
            abort();
        }
        gv_tree_free(r);
    }
    gv_tree_free(t);
    return 0;
}
