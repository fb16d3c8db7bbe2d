/* Printing trees the way Python prints the nested dicts they mirror, plus
 * the string building shared by src/tree. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "tree_internal.h"

/* ---- growable strings ---------------------------------------------------- */

void gv_tree_sb_putn(gv_tree_sb *sb, const char *s, size_t n) {
    if (sb->oom) return;
    if (n >= sb->cap - sb->len || !sb->buf) {
        size_t cap = sb->cap ? sb->cap : 64;
        while (cap - sb->len <= n) {
            if (cap > SIZE_MAX / 2) {
                sb->oom = true;
                return;
            }
            cap *= 2;
        }
        char *b = realloc(sb->buf, cap);
        if (!b) {
            sb->oom = true;
            return;
        }
        sb->buf = b;
        sb->cap = cap;
    }
    if (n) memcpy(sb->buf + sb->len, s, n);
    sb->len += n;
    sb->buf[sb->len] = '\0';
}

void gv_tree_sb_puts(gv_tree_sb *sb, const char *s) { gv_tree_sb_putn(sb, s, strlen(s)); }

void gv_tree_sb_printf(gv_tree_sb *sb, const char *fmt, ...) {
    va_list ap, ap2;
    va_start(ap, fmt);
    va_copy(ap2, ap);
    char small[128];
    int n = vsnprintf(small, sizeof small, fmt, ap);
    if (n < 0) {
        sb->oom = true;
    } else if ((size_t)n < sizeof small) {
        gv_tree_sb_putn(sb, small, (size_t)n);
    } else {
        char *big = malloc((size_t)n + 1);
        if (!big) {
            sb->oom = true;
        } else {
            vsnprintf(big, (size_t)n + 1, fmt, ap2);
            gv_tree_sb_putn(sb, big, (size_t)n);
            free(big);
        }
    }
    va_end(ap2);
    va_end(ap);
}

const char *gv_tree_sb_str(const gv_tree_sb *sb) { return sb->buf ? sb->buf : ""; }

char *gv_tree_sb_finish(gv_tree_sb *sb, const char *what) {
    if (!sb->buf && !sb->oom) gv_tree_sb_putn(sb, "", 0);
    if (sb->oom) {
        gv_tree_sb_free(sb);
        gv_error(GV_ERR_NOMEM, "%s: out of memory building a string", what);
        return NULL;
    }
    char *s = sb->buf;
    *sb = (gv_tree_sb){0};
    return s;
}

void gv_tree_sb_free(gv_tree_sb *sb) {
    free(sb->buf);
    *sb = (gv_tree_sb){0};
}

void gv_tree_sb_repr(gv_tree_sb *sb, const char *s, size_t n) {
    /* Python: single quotes unless the string has ' and no " */
    bool sq = memchr(s, '\'', n) != NULL, dq = memchr(s, '"', n) != NULL;
    char q = sq && !dq ? '"' : '\'';
    gv_tree_sb_putn(sb, &q, 1);
    size_t i = 0;
    while (i < n) {
        unsigned char c = (unsigned char)s[i];
        size_t k = gv_tree_printable_char((const unsigned char *)s + i, n - i);
        if (c == '\\' || c == (unsigned char)q) {
            char e[2] = {'\\', (char)c};
            gv_tree_sb_putn(sb, e, 2);
        } else if (k) {
            gv_tree_sb_putn(sb, s + i, k);
            i += k;
            continue;
        } else if (c == '\n') {
            gv_tree_sb_puts(sb, "\\n");
        } else if (c == '\t') {
            gv_tree_sb_puts(sb, "\\t");
        } else if (c == '\r') {
            gv_tree_sb_puts(sb, "\\r");
        } else {
            gv_tree_sb_printf(sb, "\\x%02x", c);
        }
        i++;
    }
    gv_tree_sb_putn(sb, &q, 1);
}

void gv_tree_sb_shape(gv_tree_sb *sb, int rank, const int64_t *shape) {
    gv_tree_sb_puts(sb, "(");
    for (int i = 0; i < rank; i++)
        gv_tree_sb_printf(sb, i ? ", %lld" : "%lld", (long long)shape[i]);
    gv_tree_sb_puts(sb, rank == 1 ? ",)" : ")");
}



/* ---- Python's str() of nested containers ---------------------------------- */

enum { SHOW_VALUES, SHOW_SHAPES, SHOW_STARS };

/* One leaf; the one place to extend for a new leaf kind. */
static gv_status repr_leaf(gv_tree_sb *sb, const gv_tree *t, int mode,
                           const gv_print_options *opts) {
    if (mode == SHOW_STARS || t->leaf_kind == GV_LEAF_PLACEHOLDER) {
        gv_tree_sb_puts(sb, "*");
        return GV_OK;
    }
    switch (t->leaf_kind) {
    case GV_LEAF_TENSOR: {
        const gv_tensor *x = t->leaf.tensor;
        if (mode == SHOW_SHAPES) {
            gv_tree_sb_shape(sb, gv_tensor_rank(x), gv_tensor_shape(x));
            return GV_OK;
        }
        char *r = gv_tensor_repr(x, opts);
        if (!r) return gv_last_status() != GV_OK ? gv_last_status() : GV_ERR_INTERNAL;
        gv_tree_sb_puts(sb, r);
        free(r);
        return GV_OK;
    }
    case GV_LEAF_LABEL:
        gv_tree_sb_repr(sb, t->leaf.label, strlen(t->leaf.label));
        return GV_OK;
    case GV_LEAF_VALUE: {
        /* as a JAX tracer prints: Traced<float32[16,784]> */
        gv_value v = t->leaf.value;
        if (mode == SHOW_SHAPES) {
            gv_tree_sb_shape(sb, gv_value_rank(v), gv_value_shape(v));
            return GV_OK;
        }
        gv_tree_sb_printf(sb, "Traced<%s[", gv_dtype_name(gv_value_dtype(v)));
        for (int i = 0; i < gv_value_rank(v); i++)
            gv_tree_sb_printf(sb, i ? ",%lld" : "%lld", (long long)gv_value_shape(v)[i]);
        gv_tree_sb_puts(sb, "]>");
        return GV_OK;
    }
    }
    return gv_error(GV_ERR_INTERNAL, "gv_tree: unknown leaf kind %d", t->leaf_kind);
}

/* str(dict) uses repr() of every key and value; dicts in insertion order
 * (SHOW_STARS: sorted, as a PyTreeDef stores them). */
static gv_status repr_node(gv_tree_sb *sb, const gv_tree *t, int mode,
                           const gv_print_options *opts) {
    if (t->kind == GV_TREE_LEAF) return repr_leaf(sb, t, mode, opts);
    const char *brackets = t->kind == GV_TREE_DICT ? "{}" : t->kind == GV_TREE_LIST ? "[]" : "()";
    gv_tree_sb_putn(sb, brackets, 1);
    for (size_t j = 0; j < t->n; j++) {
        size_t i = mode == SHOW_STARS ? gv_tree_flat_index(t, j) : j;
        if (j) gv_tree_sb_puts(sb, ", ");
        if (t->kind == GV_TREE_DICT) {
            gv_tree_sb_repr(sb, t->keys[i], strlen(t->keys[i]));
            gv_tree_sb_puts(sb, ": ");
        }
        gv_status st = repr_node(sb, t->kids[i], mode, opts);
        if (st != GV_OK) return st;
    }
    if (t->kind == GV_TREE_TUPLE && t->n == 1) gv_tree_sb_puts(sb, ",");
    gv_tree_sb_putn(sb, brackets + 1, 1);
    return GV_OK;
}

static char *repr(const char *what, const gv_tree *tree, int mode, const gv_print_options *opts) {
    if (!tree) {
        gv_error(GV_ERR_ARG, "%s: tree is NULL", what);
        return NULL;
    }
    gv_tree_sb sb = {0};
    if (repr_node(&sb, tree, mode, opts) != GV_OK) {
        gv_error_prefix("%s: ", what);
        gv_tree_sb_free(&sb);
        return NULL;
    }
    return gv_tree_sb_finish(&sb, what);
}

char *gv_tree_repr(const gv_tree *tree, const gv_print_options *opts) {
    return repr("gv_tree_repr", tree, SHOW_VALUES, opts);
}

char *gv_tree_repr_shapes(const gv_tree *tree) {
    return repr("gv_tree_repr_shapes", tree, SHOW_SHAPES, NULL);
}

gv_status gv_tree_print(FILE *f, const gv_tree *tree) {
    if (!f) return gv_error(GV_ERR_ARG, "gv_tree_print: f is NULL");
    char *s = repr("gv_tree_print", tree, SHOW_VALUES, NULL);
    if (!s) return gv_last_status();
    bool ok = fputs(s, f) >= 0 && fputc('\n', f) != EOF;
    free(s);
    return ok ? GV_OK : gv_error(GV_ERR_IO, "gv_tree_print: write failed");
}

char *gv_treedef_repr(const gv_treedef *def) {
    if (!def) {
        gv_error(GV_ERR_ARG, "gv_treedef_repr: def is NULL");
        return NULL;
    }
    gv_tree_sb sb = {0};
    gv_tree_sb_puts(&sb, "PyTreeDef(");
    repr_node(&sb, def->skel, SHOW_STARS, NULL);
    gv_tree_sb_puts(&sb, ")");
    return gv_tree_sb_finish(&sb, "gv_treedef_repr");
}

/* ---- the summary table ---------------------------------------------------- */

/* Python's f'{n:,}'. */
static void put_grouped(gv_tree_sb *sb, const char *digits) {
    size_t n = strlen(digits), lead = n % 3 ? n % 3 : 3;
    gv_tree_sb_putn(sb, digits, lead);
    for (size_t i = lead; i < n; i += 3) {
        gv_tree_sb_puts(sb, ",");
        gv_tree_sb_putn(sb, digits + i, 3);
    }
}

/* Flax's _size_and_bytes_repr: "1,234 (4.9 KB)"; units are powers of 1000
 * and a unit is used once the byte count exceeds it. */
static void put_size_and_bytes(gv_tree_sb *sb, int64_t size, size_t bytes) {
    char num[48];
    snprintf(num, sizeof num, "%lld", (long long)size);
    put_grouped(sb, num);
    gv_tree_sb_puts(sb, " (");
    static const struct { double scale; const char *unit; } units[] = {
        {1e9, "GB"}, {1e6, "MB"}, {1e3, "KB"}};
    const char *unit = "B";
    for (size_t u = 0; u < 3; u++)
        if ((double)bytes > units[u].scale) {
            snprintf(num, sizeof num, "%.1f", (double)bytes / units[u].scale);
            unit = units[u].unit;
            break;
        }
    if (unit[0] == 'B') snprintf(num, sizeof num, "%zu", bytes);
    char *dot = strchr(num, '.');
    if (dot) *dot = '\0';
    put_grouped(sb, num);
    if (dot) {
        *dot = '.';
        gv_tree_sb_puts(sb, dot);
    }
    gv_tree_sb_printf(sb, " %s)", unit);
}

enum { NCOL = 4 };

typedef struct {
    gv_tree_sb *cells; /* NCOL per row */
    size_t n, cap;
    bool oom;
} table;

static gv_tree_sb *add_row(table *tb) {
    if (tb->oom) return NULL;
    if (tb->n == tb->cap) {
        size_t cap = tb->cap ? tb->cap * 2 : 16;
        gv_tree_sb *c = realloc(tb->cells, cap * NCOL * sizeof *c);
        if (!c) {
            tb->oom = true;
            return NULL;
        }
        tb->cells = c;
        tb->cap = cap;
    }
    gv_tree_sb *row = tb->cells + tb->n++ * NCOL;
    memset(row, 0, NCOL * sizeof *row);
    return row;
}

static void summarize(table *tb, const gv_tree *t, const char *key, int depth) {
    if (key) {
        gv_tree_sb *row = add_row(tb);
        if (!row) return;
        for (int d = 0; d < depth; d++) gv_tree_sb_puts(&row[0], "  ");
        gv_tree_sb_puts(&row[0], key);
        if (t->leaf_kind == GV_LEAF_TENSOR) {
            const gv_tensor *x = t->leaf.tensor;
            gv_tree_sb_shape(&row[1], gv_tensor_rank(x), gv_tensor_shape(x));
            gv_tree_sb_puts(&row[2], gv_dtype_name(gv_tensor_dtype(x)));
        } else if (t->leaf_kind == GV_LEAF_LABEL) {
            gv_tree_sb_repr(&row[1], t->leaf.label, strlen(t->leaf.label));
            gv_tree_sb_puts(&row[2], "label");
        }
        put_size_and_bytes(&row[3], gv_tree_size(t), gv_tree_nbytes(t));
        depth++;
    }
    if (t->kind == GV_TREE_LEAF) return;
    for (size_t i = 0; i < t->n; i++) summarize(tb, t->kids[i], t->keys[i], depth);
}

/* Display width: UTF-8 code points (keys may be non-ASCII). */
static size_t width(const gv_tree_sb *sb) {
    size_t w = 0;
    for (size_t i = 0; i < sb->len; i++) w += ((unsigned char)sb->buf[i] & 0xc0) != 0x80;
    return w;
}

char *gv_tree_summary(const gv_tree *tree) {
    const char *what = "gv_tree_summary";
    if (!tree) {
        gv_error(GV_ERR_ARG, "%s: tree is NULL", what);
        return NULL;
    }
    table tb = {0};
    static const char *header[NCOL] = {"name", "shape", "dtype", "params"};
    gv_tree_sb *row = add_row(&tb);
    for (int c = 0; row && c < NCOL; c++) gv_tree_sb_puts(&row[c], header[c]);
    summarize(&tb, tree, tree->kind == GV_TREE_LEAF ? "<root>" : NULL, 0);
    size_t w[NCOL] = {0};
    for (size_t r = 0; r < tb.n; r++)
        for (int c = 0; c < NCOL; c++) {
            size_t cw = width(&tb.cells[r * NCOL + c]);
            if (cw > w[c]) w[c] = cw;
        }
    gv_tree_sb out = {0};
    for (size_t r = 0; r < tb.n; r++) {
        size_t pad = 0;
        for (int c = 0; c < NCOL; c++) {
            const gv_tree_sb *cell = &tb.cells[r * NCOL + c];
            if (cell->len) {
                for (; pad; pad--) gv_tree_sb_puts(&out, " ");
                gv_tree_sb_puts(&out, gv_tree_sb_str(cell));
            }
            pad += w[c] - width(cell) + 2; /* spaces are written only before text */
        }
        gv_tree_sb_puts(&out, "\n");
    }
    gv_tree_sb_puts(&out, "Total Parameters: ");
    put_size_and_bytes(&out, gv_tree_size(tree), gv_tree_nbytes(tree));
    gv_tree_sb_puts(&out, "\n");
    bool oom = tb.oom;
    for (size_t i = 0; i < tb.n * NCOL; i++) {
        oom |= tb.cells[i].oom;
        gv_tree_sb_free(&tb.cells[i]);
    }
    free(tb.cells);
    if (oom) out.oom = true;
    return gv_tree_sb_finish(&out, what);
}
