/* libFuzzer target: the strict JSON scanner gv_parse_json
 * (src/checkpoint/json_strict.c), which reads every safetensors header,
 * grove's structure metadata and a BERT config.json. Any bytes must give
 * an object or a GV_ERR_FORMAT whose message names the file, never a
 * crash, a leak or undefined behaviour. Built and run by scripts/fuzz.sh.
 *
 * Byte 0 picks the nesting bound (the safetensors header's 64, the
 * structure's 3072, and 1 and 2 so that the bound itself is reached often)
 * and the byte offset the messages count from; the rest is the text, in a
 * buffer of exactly its size (no NUL after it), so a read past the end is
 * an ASan report. A text that is accepted must be accepted again:
 *   - as json-c writes it back (and give an equal object): what grove's
 *     own writer emits is what its reader takes;
 *   - with safetensors' trailing space padding after it. */
#include <json-c/json.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "checkpoint/format_internal.h"
#include "core/error.h"

#define LABEL "fuzz.json"

static void check(bool ok, const char *what, const char *text, size_t len) {
    if (ok) return;
    fprintf(stderr, "%s (error: '%s'); text: %.*s\n", what, gv_last_error(), (int)len, text);
    abort();
}

/* gv_parse_json of a private copy of len bytes (no NUL after them). */
static json_object *parse(const char *text, size_t len, int depth, uint64_t base) {
    char *copy = malloc(len ? len : 1);
    if (!copy) abort();
    memcpy(copy, text, len);
    unsigned long long errors = gv_error_count();
    json_object *o = gv_parse_json(copy, len, depth, LABEL, "text", base);
    /* NULL means an error, and the error must be new and name the file */
    check(o || gv_error_count() > errors, "NULL without an error", copy, len);
    check(o || gv_last_status() == GV_ERR_FORMAT || gv_last_status() == GV_ERR_NOMEM,
          "NULL with a status other than GV_ERR_FORMAT", copy, len);
    check(o || gv_last_status() == GV_ERR_NOMEM || strstr(gv_last_error(), "'" LABEL "'"),
          "the error does not name the file", copy, len);
    free(copy);
    return o;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size < 1) return 0;
    static const int depths[4] = {64, 3072, 1, 2};
    int depth = depths[data[0] & 3];
    uint64_t base = (uint64_t)(data[0] >> 2) * 1000;
    const char *text = (const char *)data + 1;
    size_t len = size - 1;
    json_object *o = parse(text, len, depth, base);
    if (!o) return 0;

    const char *again = json_object_to_json_string_ext(
        o, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE);
    check(again != NULL, "json-c cannot write the object back", text, len);
    json_object *back = parse(again, strlen(again), depth, base);
    check(back != NULL, "json-c's own text of an accepted object is refused", again, strlen(again));
    check(json_object_equal(o, back), "written back, the object reads differently", again,
          strlen(again));
    json_object_put(back);

    char *padded = malloc(len + 8);
    if (!padded) abort();
    memcpy(padded, text, len);
    memset(padded + len, ' ', 8);
    json_object *p = parse(padded, len + 8, depth, base);
    check(p != NULL && json_object_equal(o, p), "trailing padding changed the result", padded,
          len + 8);
    json_object_put(p);
    free(padded);
    json_object_put(o);
    return 0;
}
