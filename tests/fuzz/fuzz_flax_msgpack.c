/* libFuzzer target: any bytes given to the Flax msgpack reader must give a
 * tree or a clean error, never a crash, a leak or undefined behaviour.
 * Built and run by scripts/fuzz.sh. A parsed tree is written again with
 * gv_flax_to_bytes and restored into itself as the target: it must come
 * back bit for bit (the writer and the target-guided reader see odd trees
 * too), and the original bytes must restore into it as well. "Bit for bit"
 * is checked through the writer, which is deterministic: both restored
 * trees must serialize to exactly the first tree's bytes. */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "grove/serialization.h"

static void check(bool ok, const char *what) {
    if (ok) return;
    fprintf(stderr, "%s: %s\n", what, gv_last_error());
    abort();
}

static void same_bytes(const gv_tree *t, const void *want, size_t n, const char *what) {
    void *b = NULL;
    size_t m = 0;
    check(gv_flax_to_bytes(t, &b, &m) == GV_OK, what);
    check(m == n && memcmp(b, want, n) == 0, what);
    free(b);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    gv_tree *t = gv_flax_msgpack_restore(data, size);
    if (!t) return 0;
    void *bytes = NULL;
    size_t n = 0;
    check(gv_flax_to_bytes(t, &bytes, &n) == GV_OK, "to_bytes of a restored tree");
    gv_tree *back = gv_flax_from_bytes(t, bytes, n);
    check(back != NULL, "round trip");
    same_bytes(back, bytes, n, "round trip changed a value");
    gv_tree *again = gv_flax_from_bytes(t, data, size);
    check(again != NULL, "restore into itself");
    same_bytes(again, bytes, n, "restore into itself changed a value");
    gv_tree_free(again);
    gv_tree_free(back);
    free(bytes);
    gv_tree_free(t);
    return 0;
}
