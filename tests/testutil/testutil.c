#include "testutil.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static char *join(const char *dir, const char *name) {
    size_t n = strlen(dir) + strlen(name) + 2;
    char *p = malloc(n);
    cr_assert_not_null(p);
    snprintf(p, n, "%s/%s", dir, name);
    return p;
}

char *gvt_data_path(const char *name) { return join(GROVE_TEST_DATA_DIR, name); }
char *gvt_golden_path(const char *name) { return join(GROVE_TEST_GOLDEN_DIR, name); }

char *gvt_read_file(const char *path, size_t *len) {
    FILE *f = fopen(path, "rb");
    cr_assert_not_null(f, "cannot open %s", path);
    cr_assert_eq(fseek(f, 0, SEEK_END), 0);
    long n = ftell(f);
    cr_assert(n >= 0);
    rewind(f);
    char *buf = malloc((size_t)n + 1);
    cr_assert_not_null(buf);
    cr_assert_eq(fread(buf, 1, (size_t)n, f), (size_t)n, "short read of %s", path);
    buf[n] = '\0';
    fclose(f);
    if (len) *len = (size_t)n;
    return buf;
}

json_object *gvt_load_json(const char *path) {
    char *text = gvt_read_file(path, NULL);
    json_tokener *tok = json_tokener_new();
    json_object *obj = json_tokener_parse_ex(tok, text, (int)strlen(text));
    cr_assert_not_null(obj, "%s: JSON parse error: %s", path,
                       json_tokener_error_desc(json_tokener_get_error(tok)));
    json_tokener_free(tok);
    free(text);
    return obj;
}
