/* gv_pack / gv_unpack: trees built and taken apart by a pattern (pack.h).
 *
 * Both walk the pattern by recursive descent; pack builds as it goes,
 * unpack matches the tree and sets each target as it goes, and on any
 * failure clears them all, so no target is left half-set. */
#define _GNU_SOURCE /* vasprintf */
#include <ctype.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "grove/pack.h"

#include "core/error.h"
#include "graph_internal.h"
#include "tree/tree_internal.h"

typedef struct walk {
    const char *what;      /* "gv_pack" or "gv_unpack" */
    const char *pattern;
    const char *p;         /* the read position */
    const gv_item *items;  /* pack items or unpack targets */
    size_t n, next;        /* how many, the next one to use */
    gv_graph *g;           /* pack: the owner; unpack: the tree's graph, if any */
    gv_status st;
    gv_tree_sb path;       /* where in the tree (messages) */
} walk;

static const char *shown(const walk *w) {
    return w->pattern ? w->pattern : "(tuple)";
}

/* The first failure sticks; later ones are consequences. */
static void fail(walk *w, gv_status st, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void fail(walk *w, gv_status st, const char *fmt, ...) {
    if (w->st != GV_OK) return;
    va_list ap;
    va_start(ap, fmt);
    char *msg = NULL;
    if (vasprintf(&msg, fmt, ap) < 0) msg = NULL;
    va_end(ap);
    const char *at = gv_tree_sb_str(&w->path);
    bool where = at && at[0];
    w->st = gv_error(st, "%s %s: %s%s%s%s", w->what, shown(w), where ? "at " : "",
                     where ? at : "", where ? ": " : "", msg ? msg : "out of memory");
    free(msg);
    if (w->g) gv_graph_fail(w->g, st, "%s", gv_last_error());
}

/* A failure that already has its error (a NULL item, an invalid value):
 * keep that first error, and make it the trace's. */
static void pass_through(walk *w, const char *why) {
    if (w->st != GV_OK) return;
    gv_status st = w->g && w->g->status != GV_OK ? w->g->status : gv_last_status();
    if (st == GV_OK) {
        fail(w, GV_ERR_ARG, "%s", why);
        return;
    }
    w->st = st;
    if (w->g && w->g->status == GV_OK) gv_graph_fail(w->g, st, "%s", gv_last_error());
    else if (w->g) gv_error(st, "%s", w->g->error ? w->g->error : why);
}

static void skip_space(walk *w) {
    while (*w->p == ' ' || *w->p == '\t' || *w->p == '\n') w->p++;
}

/* An identifier or "_". Returns its length (0 if none). */
static size_t name_len(const char *p) {
    if (!(isalpha((unsigned char)*p) || *p == '_')) return 0;
    size_t n = 1;
    while (isalnum((unsigned char)p[n]) || p[n] == '_') n++;
    return n;
}

static bool expect(walk *w, char c) {
    skip_space(w);
    if (*w->p == c) {
        w->p++;
        return true;
    }
    fail(w, GV_ERR_ARG, "bad pattern: '%c' expected at offset %td, found %s", c,
         w->p - w->pattern, *w->p ? "another character" : "the end");
    return false;
}

/* ---- pack ---- */

static gv_tree *pack_item(walk *w, const char *name, size_t len) {
    if (w->next >= w->n) {
        fail(w, GV_ERR_ARG, "more names than the %zu items given", w->n);
        return NULL;
    }
    const gv_item *it = &w->items[w->next++];
    gv_tree *t = NULL;
    switch (it->kind) {
    case GV_ITEM_VALUE:
        if (!gv_value_ok(it->u.value)) {
            pass_through(w, "an invalid value");
            return NULL;
        }
        t = gv_tree_new_value_leaf(it->u.value);
        break;
    case GV_ITEM_TREE:
        if (!it->u.tree) {
            pass_through(w, "a NULL tree");
            return NULL;
        }
        t = gv_tree_clone(it->u.tree);
        break;
    case GV_ITEM_TENSOR:
        if (!it->u.tensor) {
            pass_through(w, "a NULL tensor");
            return NULL;
        }
        t = gv_tree_new_leaf(it->u.tensor);
        break;
    }
    if (!t) fail(w, gv_last_status() != GV_OK ? gv_last_status() : GV_ERR_NOMEM, "item '%.*s'",
                 (int)len, name);
    return t;
}

static gv_tree *pack_node(walk *w);

static gv_tree *pack_seq(walk *w, char close, gv_tree *seq) {
    skip_space(w);
    if (*w->p == close) {
        w->p++;
        return seq;
    }
    for (;;) {
        gv_tree *kid = pack_node(w);
        if (!kid || gv_tree_append(seq, kid) != GV_OK) break;
        skip_space(w);
        if (*w->p == ',') {
            w->p++;
            skip_space(w);
            if (*w->p == close) w->p++; /* a trailing comma */
            else continue;
            return seq;
        }
        if (expect(w, close)) return seq;
        break;
    }
    if (w->st == GV_OK) fail(w, gv_last_status(), "building the sequence");
    gv_tree_free(seq);
    return NULL;
}

static gv_tree *pack_dict(walk *w, gv_tree *d) {
    for (;;) {
        skip_space(w);
        if (*w->p == '}') {
            w->p++;
            return d;
        }
        const char *key = w->p;
        size_t len = name_len(key);
        if (!len || (len == 1 && key[0] == '_')) {
            fail(w, GV_ERR_ARG, "bad pattern: a key expected at offset %td", key - w->pattern);
            break;
        }
        w->p += len;
        skip_space(w);
        gv_tree *kid;
        if (*w->p == ':') {
            w->p++;
            kid = pack_node(w);
        } else {
            kid = pack_item(w, key, len);
        }
        char *k = strndup(key, len);
        if (!kid || !k || gv_tree_insert(d, k, kid) != GV_OK) {
            if (!k) gv_tree_free(kid);
            free(k);
            if (w->st == GV_OK) fail(w, gv_last_status(), "key '%.*s'", (int)len, key);
            break;
        }
        free(k);
        skip_space(w);
        if (*w->p == ',') w->p++;
        else if (*w->p != '}') {
            expect(w, '}');
            break;
        }
    }
    gv_tree_free(d);
    return NULL;
}

static gv_tree *pack_node(walk *w) {
    if (w->st != GV_OK) return NULL;
    skip_space(w);
    char c = *w->p;
    if (c == '(' || c == '[' || c == '{') {
        w->p++;
        gv_tree *t = c == '(' ? gv_tree_new_tuple() : c == '[' ? gv_tree_new_list()
                                                              : gv_tree_new_dict();
        if (!t) {
            fail(w, GV_ERR_NOMEM, "out of memory");
            return NULL;
        }
        return c == '{' ? pack_dict(w, t) : pack_seq(w, c == '(' ? ')' : ']', t);
    }
    size_t len = name_len(w->p);
    if (!len || (len == 1 && c == '_')) {
        fail(w, GV_ERR_ARG, "bad pattern: a name, '(', '[' or '{' expected at offset %td",
             w->p - w->pattern);
        return NULL;
    }
    const char *name = w->p;
    w->p += len;
    return pack_item(w, name, len);
}

gv_tree *gv_pack_items(gv_graph *g, const char *pattern, const gv_item *items, size_t n) {
    walk w = {.what = "gv_pack", .pattern = pattern, .p = pattern, .items = items, .n = n, .g = g};
    gv_tree *t = NULL;
    if (!items && n) {
        fail(&w, GV_ERR_ARG, "items is NULL");
    } else if (!pattern) {
        t = gv_tree_new_tuple();
        if (!t) fail(&w, GV_ERR_NOMEM, "out of memory");
        for (size_t i = 0; t && i < n; i++) {
            gv_tree *kid = pack_item(&w, "item", 4);
            if (!kid || gv_tree_append(t, kid) != GV_OK) {
                if (w.st == GV_OK) fail(&w, gv_last_status(), "building the tuple");
                gv_tree_free(t), t = NULL;
            }
        }
    } else {
        t = pack_node(&w);
        skip_space(&w);
        if (t && *w.p) fail(&w, GV_ERR_ARG, "bad pattern: text after the end at offset %td",
                            w.p - pattern);
        else if (t && w.next != n)
            fail(&w, GV_ERR_ARG, "%zu names for %zu items", w.next, n);
        if (w.st != GV_OK) gv_tree_free(t), t = NULL;
    }
    gv_tree_sb_free(&w.path);
    return g && t ? gv_graph_own(g, t) : t;
}

/* ---- unpack ---- */

static void unpack_node(walk *w, const gv_tree *t);

static const char *kind_of(const gv_tree *t) {
    return t->kind == GV_TREE_LEAF ? gv_leaf_kind_name(t->leaf_kind) : gv_tree_kind_name(t->kind);
}

static void unpack_leaf(walk *w, const gv_tree *t, const char *name, size_t len) {
    if (len == 1 && name[0] == '_') return;
    if (w->next >= w->n) {
        fail(w, GV_ERR_ARG, "more names than the %zu targets given", w->n);
        return;
    }
    size_t i = w->next++;
    const gv_item *it = &w->items[i];
    if (it->kind == GV_ITEM_VALUE) {
        if (t->kind != GV_TREE_LEAF || t->leaf_kind != GV_LEAF_VALUE)
            fail(w, GV_ERR_STRUCTURE, "'%.*s' is a %s, its target a gv_value", (int)len, name,
                 kind_of(t));
        else *it->u.value_out = t->leaf.value;
    } else if (it->kind == GV_ITEM_TENSOR) {
        if (t->kind != GV_TREE_LEAF || t->leaf_kind != GV_LEAF_TENSOR)
            fail(w, GV_ERR_STRUCTURE, "'%.*s' is a %s, its target a gv_tensor *", (int)len, name,
                 kind_of(t));
        else *it->u.tensor_out = t->leaf.tensor;
    } else {
        *it->u.tree_out = t;
    }
}

static size_t count_children(const char *p, char close) {
    /* commas at depth 0 before the closing bracket, for the arity message */
    size_t n = 0, depth = 0;
    bool any = false;
    for (; *p; p++) {
        if (*p == '(' || *p == '[' || *p == '{') depth++;
        else if ((*p == ')' || *p == ']' || *p == '}') && depth) depth--;
        else if (*p == close && !depth) break;
        else if (*p == ',' && !depth) {
            n++;
            any = false;
            continue;
        }
        if (*p != ' ') any = true;
    }
    return n + any;
}

static void unpack_seq(walk *w, const gv_tree *t, char close) {
    size_t want = count_children(w->p, close);
    if (t->kind != GV_TREE_TUPLE && t->kind != GV_TREE_LIST) {
        fail(w, GV_ERR_STRUCTURE, "a %s, the pattern has a sequence of %zu", kind_of(t), want);
        return;
    }
    if (t->n != want) {
        fail(w, GV_ERR_STRUCTURE, "a %s of %zu, the pattern has %zu", kind_of(t), t->n, want);
        return;
    }
    for (size_t i = 0; i < t->n && w->st == GV_OK; i++) {
        size_t old = gv_tree_path_push(&w->path, t->keys[i]);
        unpack_node(w, t->kids[i]);
        gv_tree_path_pop(&w->path, old);
        skip_space(w);
        if (*w->p == ',') w->p++;
    }
    if (w->st == GV_OK) expect(w, close);
}

static void unpack_dict(walk *w, const gv_tree *t) {
    if (t->kind != GV_TREE_DICT) {
        fail(w, GV_ERR_STRUCTURE, "a %s, the pattern has a dict", kind_of(t));
        return;
    }
    while (w->st == GV_OK) {
        skip_space(w);
        if (*w->p == '}') {
            w->p++;
            return;
        }
        const char *key = w->p;
        size_t len = name_len(key);
        if (!len || (len == 1 && key[0] == '_')) {
            fail(w, GV_ERR_ARG, "bad pattern: a key expected at offset %td", key - w->pattern);
            return;
        }
        w->p += len;
        const gv_tree *kid = NULL;
        for (size_t i = 0; i < t->n && !kid; i++)
            if (strlen(t->keys[i]) == len && !memcmp(t->keys[i], key, len)) kid = t->kids[i];
        if (!kid) {
            fail(w, GV_ERR_STRUCTURE, "the dict has no key '%.*s'", (int)len, key);
            return;
        }
        char *k = strndup(key, len);
        size_t old = gv_tree_path_push(&w->path, k ? k : "?");
        free(k);
        skip_space(w);
        if (*w->p == ':') {
            w->p++;
            unpack_node(w, kid);
        } else {
            unpack_leaf(w, kid, key, len);
        }
        gv_tree_path_pop(&w->path, old);
        skip_space(w);
        if (*w->p == ',') w->p++;
        else if (*w->p != '}') expect(w, '}');
    }
}

static void unpack_node(walk *w, const gv_tree *t) {
    if (w->st != GV_OK) return;
    skip_space(w);
    char c = *w->p;
    if (c == '(' || c == '[') {
        w->p++;
        unpack_seq(w, t, c == '(' ? ')' : ']');
    } else if (c == '{') {
        w->p++;
        unpack_dict(w, t);
    } else {
        size_t len = name_len(w->p);
        if (!len) {
            fail(w, GV_ERR_ARG, "bad pattern: a name, '_', '(', '[' or '{' expected at offset %td",
                 w->p - w->pattern);
            return;
        }
        const char *name = w->p;
        w->p += len;
        unpack_leaf(w, t, name, len);
    }
}

static gv_graph *graph_of(const gv_tree *t) {
    if (!t) return NULL;
    if (t->kind == GV_TREE_LEAF)
        return t->leaf_kind == GV_LEAF_VALUE ? t->leaf.value.graph : NULL;
    for (size_t i = 0; i < t->n; i++) {
        gv_graph *g = graph_of(t->kids[i]);
        if (g) return g;
    }
    return NULL;
}

static void clear_targets(const gv_item *targets, size_t n, gv_graph *g) {
    for (size_t i = 0; targets && i < n; i++) {
        switch (targets[i].kind) {
        case GV_ITEM_VALUE: *targets[i].u.value_out = gv_invalid(g); break;
        case GV_ITEM_TREE: *targets[i].u.tree_out = NULL; break;
        case GV_ITEM_TENSOR: *targets[i].u.tensor_out = NULL; break;
        }
    }
}

gv_status gv_unpack_items(const gv_tree *tree, const char *pattern, const gv_item *targets,
                          size_t n) {
    walk w = {.what = "gv_unpack", .pattern = pattern, .p = pattern, .items = targets, .n = n,
              .g = graph_of(tree)};
    if (!pattern || (!targets && n)) {
        clear_targets(targets, n, w.g);
        return gv_error(GV_ERR_ARG, "gv_unpack: %s is NULL", pattern ? "targets" : "pattern");
    }
    if (!tree) {
        clear_targets(targets, n, NULL);
        gv_status st = gv_last_status();
        return st != GV_OK ? st : gv_error(GV_ERR_ARG, "gv_unpack %s: the tree is NULL", pattern);
    }
    unpack_node(&w, tree);
    skip_space(&w);
    if (w.st == GV_OK && *w.p)
        fail(&w, GV_ERR_ARG, "bad pattern: text after the end at offset %td", w.p - pattern);
    if (w.st == GV_OK && w.next != n) fail(&w, GV_ERR_ARG, "%zu names for %zu targets", w.next, n);
    if (w.st != GV_OK) clear_targets(targets, n, w.g);
    gv_tree_sb_free(&w.path);
    return w.st;
}
