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

char gvt_tmpdir[64];

void gvt_tmpdir_make(const char *tag) {
    snprintf(gvt_tmpdir, sizeof gvt_tmpdir, "/tmp/grove-%.20s-XXXXXX", tag);
    cr_assert_not_null(mkdtemp(gvt_tmpdir), "mkdtemp %s", gvt_tmpdir);
}

void gvt_tmpdir_remove(void) {
    if (!gvt_tmpdir[0]) return;
    char cmd[256];
    snprintf(cmd, sizeof cmd, "chmod -R u+w '%s'; rm -rf '%s'", gvt_tmpdir, gvt_tmpdir);
    cr_assert_eq(system(cmd), 0, "cannot remove %s", gvt_tmpdir);
    gvt_tmpdir[0] = '\0';
}

char *gvt_tmp_path(const char *name) { return join(gvt_tmpdir, name); }

typedef struct diff_ctx {
    const gv_tree *other;
    int differ;
    char *first;
    size_t len;
} diff_ctx;

static gv_status diff_leaf(const char *path, const gv_tree *leaf, void *ud) {
    diff_ctx *c = ud;
    const gv_tree *ol = gv_tree_contains(c->other, path) ? gv_tree_get(c->other, path) : NULL;
    if (gv_tree_leaf_kind(leaf) == GV_LEAF_LABEL) { /* labels: the same string */
        bool same = gv_tree_leaf_kind(ol) == GV_LEAF_LABEL &&
                    strcmp(gv_tree_leaf_label(ol), gv_tree_leaf_label(leaf)) == 0;
        if (!same && !c->differ++ && c->first) snprintf(c->first, c->len, "%s", path);
        return GV_OK;
    }
    gv_tensor *o = gv_tree_leaf_kind(ol) == GV_LEAF_TENSOR ? gv_tree_leaf_tensor(ol) : NULL;
    const gv_tensor *t = gv_tree_leaf_tensor(leaf);
    /* bits, not values: NaN equals the same NaN, and -0 differs from 0 */
    bool same = o && t && gv_tensor_dtype(o) == gv_tensor_dtype(t) && gv_tensor_same_shape(o, t) &&
                memcmp(gv_tensor_data_const(o), gv_tensor_data_const(t), gv_tensor_nbytes(t)) == 0;
    if (!same && !c->differ++ && c->first)
        snprintf(c->first, c->len, "%s", path);
    return GV_OK;
}

int gvt_tree_diff(const gv_tree *a, const gv_tree *b, char *first, size_t len) {
    diff_ctx c = {b, 0, first, len};
    if (first && len) first[0] = '\0';
    if (!gv_tree_structure_equal(a, b)) {
        if (first) snprintf(first, len, "(the structures differ)");
        return 1;
    }
    cr_assert_eq(gv_tree_foreach_leaf(a, diff_leaf, &c), GV_OK, "%s", gv_last_error());
    return c.differ;
}

char *gvt_data_path(const char *name) { return join(GROVE_TEST_DATA_DIR, name); }
char *gvt_golden_path(const char *name) { return join(GROVE_TEST_GOLDEN_DIR, name); }

double gvt_numpy_printed(float v) {
    if (v == 0) return 0.0;
    char s[64];
    int nd;
    for (nd = 1; nd <= 9; nd++) {
        snprintf(s, sizeof s, "%.*e", nd - 1, (double)v);
        if (strtof(s, NULL) == v) break;
    }
    int exp10 = atoi(strchr(s, 'e') + 1);
    int decimals = nd - 1 - exp10;
    if (decimals <= 8) return strtod(s, NULL);
    snprintf(s, sizeof s, "%.8f", (double)v);
    return strtod(s, NULL);
}

void gvt_write_file(const char *path, const void *buf, size_t n) {
    FILE *f = fopen(path, "wb");
    cr_assert_not_null(f, "cannot create %s", path);
    cr_assert_eq(fwrite(buf, 1, n, f), n);
    cr_assert_eq(fclose(f), 0);
}

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
