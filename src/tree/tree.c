/* Trees: nodes, keys and paths, editing by path, children, counts, copies.
 * Flattening, structure and transformations are in tree_ops.c, printing in
 * tree_print.c. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "tree_internal.h"

/* ---- key validation ------------------------------------------------------ */

/* Length of the valid, printable UTF-8 character at s (n bytes left), or 0.
 * Printable: not a C0/C1 control character, not DEL; any valid code point
 * above U+009F (Python's isprintable() also rejects a few more, such as
 * U+2028; those are allowed here). */
size_t gv_tree_printable_char(const unsigned char *s, size_t n) {
    unsigned c = s[0];
    if (c < 0x80) return c >= 0x20 && c != 0x7f ? 1 : 0;
    size_t len;
    unsigned cp, min;
    if ((c & 0xe0) == 0xc0) len = 2, cp = c & 0x1f, min = 0x80;
    else if ((c & 0xf0) == 0xe0) len = 3, cp = c & 0x0f, min = 0x800;
    else if ((c & 0xf8) == 0xf0) len = 4, cp = c & 0x07, min = 0x10000;
    else return 0;
    if (len > n) return 0;
    for (size_t i = 1; i < len; i++) {
        if ((s[i] & 0xc0) != 0x80) return 0;
        cp = cp << 6 | (s[i] & 0x3f);
    }
    if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)) return 0;
    if (cp <= 0x9f) return 0; /* C1 controls */
    return len;
}

/* Offset of the first non-printable character of s[0..n), or n if none. */
static size_t first_unprintable(const char *s, size_t n) {
    size_t i = 0;
    while (i < n) {
        size_t k = gv_tree_printable_char((const unsigned char *)s + i, n - i);
        if (!k) return i;
        i += k;
    }
    return n;
}

/* ---- paths ---------------------------------------------------------------- */

size_t gv_tree_path_push(gv_tree_sb *path, const char *key) {
    size_t old = path->len;
    if (old) gv_tree_sb_putn(path, "/", 1);
    gv_tree_sb_puts(path, key);
    return old;
}

char *gv_tree_path_join(const char *parent, const char *key) {
    size_t a = strlen(parent), b = strlen(key);
    char *out = malloc(a + b + 2);
    if (!out) return NULL;
    if (a) {
        memcpy(out, parent, a);
        out[a] = '/';
        memcpy(out + a + 1, key, b + 1);
    } else {
        memcpy(out, key, b + 1);
    }
    return out;
}

void gv_tree_path_pop(gv_tree_sb *path, size_t len) {
    if (path->oom) return; /* the content is lost anyway; the caller checks oom */
    path->len = len;
    if (path->buf) path->buf[len] = '\0';
}

const char *gv_tree_show_path(const char *path) { return *path ? path : "<root>"; }

/* Set GV_ERR_ARG for a bad path (NULL, empty when not allowed, an empty key,
 * a non-printable character), naming the component. */
static gv_status check_path(const char *what, const char *path, bool allow_empty) {
    if (!path) return gv_error(GV_ERR_ARG, "%s: path is NULL", what);
    if (!*path) {
        if (allow_empty) return GV_OK;
        return gv_error(GV_ERR_ARG, "%s: the path is empty", what);
    }
    size_t len = strlen(path), start = 0, comp = 1;
    for (size_t i = 0; i <= len; i++) {
        if (i < len && path[i] != '/') continue;
        gv_status st = GV_OK;
        size_t bad = first_unprintable(path + start, i - start);
        gv_tree_sb sb = {0};
        if (i == start || bad < i - start) {
            gv_tree_sb_repr(&sb, path, len);
            if (i == start)
                st = gv_error(GV_ERR_ARG, "%s: invalid path %s: key %zu is empty (keys are "
                              "separated by '/')", what, gv_tree_sb_str(&sb), comp);
            else
                st = gv_error(GV_ERR_ARG, "%s: invalid path %s: key %zu has the non-printable "
                              "byte 0x%02x", what, gv_tree_sb_str(&sb), comp,
                              (unsigned char)path[start + bad]);
        }
        gv_tree_sb_free(&sb);
        if (st != GV_OK) return st;
        start = i + 1;
        comp++;
    }
    return GV_OK;
}

/* strcmp of key against the component s[0..n). */
static int key_cmp(const char *key, const char *s, size_t n) {
    int c = strncmp(key, s, n);
    if (c) return c;
    return key[n] ? 1 : 0;
}

/* Index of the key (s, n) in a dict's sorted order: *pos gets the position in
 * t->sorted where it is or would be inserted; returns whether it is there. */
static bool dict_search(const gv_tree *t, const char *s, size_t n, size_t *pos) {
    size_t lo = 0, hi = t->n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int c = key_cmp(t->keys[t->sorted[mid]], s, n);
        if (c == 0) {
            *pos = mid;
            return true;
        }
        if (c < 0) lo = mid + 1;
        else hi = mid;
    }
    *pos = lo;
    return false;
}

/* Parse a canonical decimal index ("0", "17"; not "01", "+1", "-1"). */
static bool parse_index(const char *s, size_t n, size_t *out) {
    if (n == 0 || (n > 1 && s[0] == '0')) return false;
    size_t v = 0;
    for (size_t i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9') return false;
        if (v > (SIZE_MAX - 9) / 10) return false;
        v = v * 10 + (size_t)(s[i] - '0');
    }
    *out = v;
    return true;
}

size_t gv_tree_find_kid(const gv_tree *t, const char *s, size_t n) {
    if (t->kind == GV_TREE_DICT) {
        size_t pos;
        return dict_search(t, s, n, &pos) ? t->sorted[pos] : SIZE_MAX;
    }
    size_t i;
    return parse_index(s, n, &i) && i < t->n ? i : SIZE_MAX;
}

/* ---- nodes ---------------------------------------------------------------- */

static gv_tree *node_new(gv_tree_kind kind) {
    gv_tree *t = calloc(1, sizeof *t);
    if (!t) {
        gv_error(GV_ERR_NOMEM, "gv_tree: out of memory allocating a node");
        return NULL;
    }
    t->kind = kind;
    t->leaf_kind = kind == GV_TREE_LEAF ? GV_LEAF_PLACEHOLDER : GV_LEAF_NONE;
    return t;
}

/* Every leaf kind's resources: the one place to extend for a new kind. */
static void leaf_release(gv_tree *t) {
    switch (t->leaf_kind) {
    case GV_LEAF_TENSOR: gv_tensor_free(t->leaf.tensor); break;
    case GV_LEAF_LABEL: free(t->leaf.label); break;
    default: break; /* placeholder: owns nothing */
    }
}

static void node_free(gv_tree *t) {
    if (!t) return;
    if (t->kind == GV_TREE_LEAF) {
        leaf_release(t);
    } else {
        for (size_t i = 0; i < t->n; i++) {
            node_free(t->kids[i]);
            free(t->keys[i]);
        }
        free(t->kids);
        free(t->keys);
        free(t->sorted);
    }
    free(t);
}

static const gv_tree *root_of(const gv_tree *t);

void gv_tree_free(gv_tree *tree) {
    if (!tree || root_of(tree)->owner) return; /* a graph's tree goes with its graph */
    if (tree->parent) {
        gv_error(GV_ERR_ARG, "gv_tree_free: this node belongs to a tree; free the root, or "
                 "detach the node with gv_tree_pop first");
        return;
    }
    node_free(tree);
}

gv_status gv_tree_leaf_set_tensor(gv_tree *leaf, gv_tensor *t) {
    if (!leaf || leaf->kind != GV_TREE_LEAF || leaf->leaf_kind != GV_LEAF_TENSOR)
        return gv_error(GV_ERR_ARG, "gv_tree_leaf_set_tensor: %s", leaf ? "not a tensor leaf"
                                                                         : "leaf is NULL");
    if (!t) return gv_error(GV_ERR_ARG, "gv_tree_leaf_set_tensor: tensor is NULL");
    if (t != leaf->leaf.tensor) {
        gv_tensor_retain(t);
        gv_tensor_free(leaf->leaf.tensor);
        leaf->leaf.tensor = t;
    }
    return GV_OK;
}

gv_tree *gv_tree_new_dict(void) { return node_new(GV_TREE_DICT); }
gv_tree *gv_tree_new_list(void) { return node_new(GV_TREE_LIST); }
gv_tree *gv_tree_new_tuple(void) { return node_new(GV_TREE_TUPLE); }

gv_tree *gv_tree_leaf_take(gv_tensor *t) {
    gv_tree *n = node_new(GV_TREE_LEAF);
    if (!n) {
        gv_tensor_free(t);
        return NULL;
    }
    n->leaf_kind = GV_LEAF_TENSOR;
    n->leaf.tensor = t;
    return n;
}

gv_tree *gv_tree_placeholder_new(void) { return node_new(GV_TREE_LEAF); }

gv_tree *gv_tree_new_leaf(gv_tensor *t) {
    if (!t) {
        gv_error(GV_ERR_ARG, "gv_tree_new_leaf: tensor is NULL");
        return NULL;
    }
    return gv_tree_leaf_take(gv_tensor_retain(t));
}

static gv_tree *label_new(const char *what, const char *label) {
    size_t n = strlen(label), bad = first_unprintable(label, n);
    if (bad < n) {
        gv_tree_sb sb = {0};
        gv_tree_sb_repr(&sb, label, n);
        gv_error(GV_ERR_ARG, "%s: label %s has the non-printable byte 0x%02x at offset %zu",
                 what, gv_tree_sb_str(&sb), (unsigned char)label[bad], bad);
        gv_tree_sb_free(&sb);
        return NULL;
    }
    gv_tree *t = node_new(GV_TREE_LEAF);
    char *copy = t ? strdup(label) : NULL;
    if (!copy) {
        free(t);
        gv_error(GV_ERR_NOMEM, "%s: out of memory", what);
        return NULL;
    }
    t->leaf_kind = GV_LEAF_LABEL;
    t->leaf.label = copy;
    return t;
}

gv_tree *gv_tree_new_label(const char *label) {
    if (!label) {
        gv_error(GV_ERR_ARG, "gv_tree_new_label: label is NULL");
        return NULL;
    }
    return label_new("gv_tree_new_label", label);
}

gv_tree *gv_tree_leaf_dup(const gv_tree *leaf, bool deep) {
    switch (leaf->leaf_kind) {
    case GV_LEAF_TENSOR:
        if (deep) {
            gv_tensor *c = gv_tensor_copy(leaf->leaf.tensor);
            return c ? gv_tree_leaf_take(c) : NULL;
        }
        return gv_tree_leaf_take(gv_tensor_retain(leaf->leaf.tensor));
    case GV_LEAF_LABEL: return label_new("gv_tree", leaf->leaf.label);
    case GV_LEAF_VALUE: return gv_tree_new_value_leaf(leaf->leaf.value);
    default: return gv_tree_placeholder_new();
    }
}

const char *gv_tree_kind_name(gv_tree_kind kind) {
    switch (kind) {
    case GV_TREE_DICT: return "dict";
    case GV_TREE_LIST: return "list";
    case GV_TREE_TUPLE: return "tuple";
    case GV_TREE_LEAF: return "leaf";
    }
    return "?";
}

const char *gv_leaf_kind_name(gv_leaf_kind kind) {
    switch (kind) {
    case GV_LEAF_NONE: return "none";
    case GV_LEAF_TENSOR: return "tensor";
    case GV_LEAF_LABEL: return "label";
    case GV_LEAF_VALUE: return "value";
    }
    return "?";
}

const char *gv_tree_node_name(const gv_tree *t) {
    if (t->kind != GV_TREE_LEAF) return gv_tree_kind_name(t->kind);
    return t->leaf_kind == GV_LEAF_PLACEHOLDER ? "leaf" : gv_leaf_kind_name(t->leaf_kind);
}

gv_tensor *gv_tree_need_tensor(const char *what, const gv_tree *leaf, const char *path) {
    if (leaf->leaf_kind == GV_LEAF_TENSOR) return leaf->leaf.tensor;
    gv_error(GV_ERR_ARG, "%s: the leaf at %s is a %s, not a tensor", what,
             gv_tree_show_path(path), gv_tree_node_name(leaf));
    return NULL;
}

gv_tree_kind gv_tree_kind_of(const gv_tree *tree) {
    if (!tree) {
        gv_error(GV_ERR_ARG, "gv_tree_kind_of: tree is NULL");
        return GV_TREE_LEAF;
    }
    return tree->kind;
}

bool gv_tree_is_leaf(const gv_tree *tree) { return tree && tree->kind == GV_TREE_LEAF; }

gv_leaf_kind gv_tree_leaf_kind(const gv_tree *tree) {
    if (!tree || tree->kind != GV_TREE_LEAF || tree->leaf_kind == GV_LEAF_PLACEHOLDER)
        return GV_LEAF_NONE;
    return (gv_leaf_kind)tree->leaf_kind;
}

/* A NULL tree given to an accessor is usually what a failed call returned:
 * the error that call left is the one to keep (failure passes through), so
 * a new message only when none is pending. */
static void null_tree(const char *what) {
    if (gv_last_status() == GV_OK) gv_error(GV_ERR_ARG, "%s: tree is NULL", what);
}

gv_tensor *gv_tree_leaf_tensor(const gv_tree *tree) {
    if (!tree) {
        null_tree("gv_tree_leaf_tensor");
        return NULL;
    }
    if (tree->leaf_kind != GV_LEAF_TENSOR) {
        gv_error(GV_ERR_ARG, "gv_tree_leaf_tensor: the node is a %s, not a tensor leaf",
                 gv_tree_node_name(tree));
        return NULL;
    }
    return tree->leaf.tensor;
}

const char *gv_tree_leaf_label(const gv_tree *tree) {
    if (!tree) {
        gv_error(GV_ERR_ARG, "gv_tree_leaf_label: tree is NULL");
        return NULL;
    }
    if (tree->leaf_kind != GV_LEAF_LABEL) {
        gv_error(GV_ERR_ARG, "gv_tree_leaf_label: the node is a %s, not a label leaf",
                 gv_tree_node_name(tree));
        return NULL;
    }
    return tree->leaf.label;
}

/* ---- containers ----------------------------------------------------------- */

static gv_status reserve(gv_tree *t, size_t need) {
    if (need <= t->cap) return GV_OK;
    size_t cap = t->cap ? t->cap : 4;
    while (cap < need) cap *= 2;
    char **keys = realloc(t->keys, cap * sizeof *keys);
    if (keys) t->keys = keys;
    gv_tree **kids = keys ? realloc(t->kids, cap * sizeof *kids) : NULL;
    if (kids) t->kids = kids;
    bool sorted_ok = t->kind != GV_TREE_DICT;
    if (kids && !sorted_ok) {
        size_t *sorted = realloc(t->sorted, cap * sizeof *sorted);
        if (sorted) t->sorted = sorted, sorted_ok = true;
    }
    if (!keys || !kids || !sorted_ok)
        return gv_error(GV_ERR_NOMEM, "gv_tree: out of memory growing a %s to %zu children",
                        gv_tree_kind_name(t->kind), need);
    t->cap = cap;
    return GV_OK;
}

/* Append child under key (s, n) (ignored for sequences: the key is the
 * index). For dicts the caller has checked that the key is absent. Does not
 * consume child on failure. */
static gv_status attach(gv_tree *p, const char *s, size_t n, gv_tree *child) {
    if (reserve(p, p->n + 1) != GV_OK) return GV_ERR_NOMEM;
    char *key;
    if (p->kind == GV_TREE_DICT) {
        key = malloc(n + 1);
        if (key) memcpy(key, s, n), key[n] = '\0';
    } else {
        char num[24];
        snprintf(num, sizeof num, "%zu", p->n);
        key = strdup(num);
    }
    if (!key) return gv_error(GV_ERR_NOMEM, "gv_tree: out of memory copying a key");
    if (p->kind == GV_TREE_DICT) {
        size_t pos;
        dict_search(p, s, n, &pos);
        memmove(p->sorted + pos + 1, p->sorted + pos, (p->n - pos) * sizeof *p->sorted);
        p->sorted[pos] = p->n;
    }
    p->keys[p->n] = key;
    p->kids[p->n] = child;
    p->n++;
    child->parent = p;
    return GV_OK;
}

/* Detach kid i; later kids move down (in a sequence their keys stay "0".."n-1"). */
static gv_tree *detach(gv_tree *p, size_t i) {
    gv_tree *kid = p->kids[i];
    if (p->kind == GV_TREE_DICT) {
        size_t w = 0;
        for (size_t j = 0; j < p->n; j++) {
            size_t s = p->sorted[j];
            if (s != i) p->sorted[w++] = s > i ? s - 1 : s;
        }
        free(p->keys[i]);
        memmove(p->keys + i, p->keys + i + 1, (p->n - i - 1) * sizeof *p->keys);
    } else {
        free(p->keys[p->n - 1]);
    }
    memmove(p->kids + i, p->kids + i + 1, (p->n - i - 1) * sizeof *p->kids);
    p->n--;
    kid->parent = NULL;
    return kid;
}

/* ---- resolving paths ------------------------------------------------------ */

/* Where a path leads: the container holding its last component, that
 * component, and the node there if any. */
typedef struct {
    gv_tree *parent;
    const char *key;
    size_t keylen;
    size_t index;   /* kid index of node in parent */
    gv_tree *node;  /* NULL if absent */
    gv_tree *created; /* the first intermediate dict this call created, if any */
} path_ref;

/* GV_ERR_NOT_FOUND for the component s[0..n) of path, missing in cur. */
static gv_status not_found(const char *what, const char *path, const gv_tree *cur,
                           const char *s, size_t n) {
    int at = (int)(s - path) - (s > path); /* length of the path to cur */
    const char *pre = at ? path : "<root>";
    int prelen = at ? at : 6;
    if (cur->kind == GV_TREE_LEAF)
        return gv_error(GV_ERR_NOT_FOUND, "%s: %s not found: %.*s is a %s leaf with no key "
                        "'%.*s'", what, path, prelen, pre, gv_tree_node_name(cur), (int)n, s);
    if (cur->kind == GV_TREE_DICT)
        return gv_error(GV_ERR_NOT_FOUND, "%s: %s not found: no key '%.*s' at %.*s", what,
                        path, (int)n, s, prelen, pre);
    return gv_error(GV_ERR_NOT_FOUND, "%s: %s not found: no index '%.*s' in the %s of %zu at "
                    "%.*s", what, path, (int)n, s, gv_tree_kind_name(cur->kind), cur->n,
                    prelen, pre);
}

/* Follow path (already checked, non-empty) from root. With `create`, missing
 * intermediates in dicts become new dicts (for insert/set); otherwise a
 * missing intermediate is GV_ERR_NOT_FOUND. A leaf in the way is
 * GV_ERR_EXISTS when creating, GV_ERR_NOT_FOUND otherwise. */
static gv_status resolve(const char *what, gv_tree *root, const char *path, bool create,
                         path_ref *ref) {
    *ref = (path_ref){0};
    gv_tree *cur = root;
    const char *s = path;
    for (;;) {
        const char *slash = strchr(s, '/');
        size_t n = slash ? (size_t)(slash - s) : strlen(s);
        if (cur->kind == GV_TREE_LEAF) {
            if (!create) return not_found(what, path, cur, s, n);
            int at = (int)(s - path) - (s > path);
            return gv_error(GV_ERR_EXISTS, "%s: cannot create %s: %.*s is a %s leaf", what,
                            path, at ? at : 6, at ? path : "<root>", gv_tree_node_name(cur));
        }
        size_t i = gv_tree_find_kid(cur, s, n);
        if (!slash) {
            ref->parent = cur;
            ref->key = s;
            ref->keylen = n;
            ref->index = i;
            ref->node = i == SIZE_MAX ? NULL : cur->kids[i];
            return GV_OK;
        }
        if (i == SIZE_MAX) {
            if (!create || cur->kind != GV_TREE_DICT) return not_found(what, path, cur, s, n);
            gv_tree *d = gv_tree_new_dict();
            if (!d) return GV_ERR_NOMEM;
            if (attach(cur, s, n, d) != GV_OK) {
                node_free(d);
                return GV_ERR_NOMEM;
            }
            if (!ref->created) ref->created = d;
            cur = d;
        } else {
            cur = cur->kids[i];
        }
        s = slash + 1;
    }
}

static gv_status not_found_last(const char *what, const char *path, const path_ref *r) {
    return not_found(what, path, r->parent, r->key, r->keylen);
}

/* Undo the intermediates a failed insert created. */
static void rollback(path_ref *r) {
    if (!r->created) return;
    gv_tree *p = r->created->parent;
    for (size_t i = 0; i < p->n; i++)
        if (p->kids[i] == r->created) {
            node_free(detach(p, i));
            break;
        }
}

static const gv_tree *root_of(const gv_tree *t) {
    while (t->parent) t = t->parent;
    return t;
}

/* The checks on a subtree argument that leave it untouched on failure. */
static gv_status check_subtree(const char *what, const gv_tree *dest, const gv_tree *sub) {
    if (!sub) return gv_error(GV_ERR_ARG, "%s: subtree is NULL", what);
    if (sub->parent)
        return gv_error(GV_ERR_ARG, "%s: the subtree already belongs to a tree (insert a "
                        "gv_tree_clone of it, or gv_tree_pop it first)", what);
    if (root_of(dest) == sub)
        return gv_error(GV_ERR_ARG, "%s: cannot insert a tree into itself", what);
    return GV_OK;
}

/* A subtree the graph owns is inserted as a clone: the graph keeps its own. */
static gv_tree *adopt(gv_tree *sub) {
    return sub && sub->owner && !sub->parent ? gv_tree_clone(sub) : sub;
}

static gv_status place(const char *what, gv_tree *tree, const char *path, gv_tree *sub,
                       bool replace) {
    sub = adopt(sub);
    if (!tree) {
        gv_status st = gv_error(GV_ERR_ARG, "%s: tree is NULL", what);
        if (sub && !sub->parent) node_free(sub);
        return st;
    }
    gv_status st = check_subtree(what, tree, sub);
    if (st != GV_OK) return st;
    st = check_path(what, path, false);
    path_ref r;
    if (st == GV_OK) st = resolve(what, tree, path, true, &r);
    if (st != GV_OK) {
        node_free(sub);
        return st;
    }
    gv_tree *p = r.parent;
    if (r.node) {
        if (!replace) {
            node_free(sub);
            return gv_error(GV_ERR_EXISTS, "%s: %s already exists (a %s)", what, path,
                            gv_tree_node_name(r.node));
        }
        r.node->parent = NULL;
        node_free(r.node);
        p->kids[r.index] = sub;
        sub->parent = p;
        return GV_OK;
    }
    if (p->kind != GV_TREE_DICT) {
        size_t i;
        if (!parse_index(r.key, r.keylen, &i) || i != p->n) {
            node_free(sub);
            return not_found_last(what, path, &r); /* nothing created: p is not new */
        }
    }
    st = attach(p, r.key, r.keylen, sub);
    if (st != GV_OK) {
        node_free(sub);
        rollback(&r);
    }
    return st;
}

gv_status gv_tree_insert(gv_tree *tree, const char *path, gv_tree *subtree) {
    return place("gv_tree_insert", tree, path, subtree, false);
}

gv_status gv_tree_set(gv_tree *tree, const char *path, gv_tree *subtree) {
    return place("gv_tree_set", tree, path, subtree, true);
}

static gv_status place_tensor(const char *what, gv_tree *tree, const char *path, gv_tensor *t,
                              bool replace) {
    if (!t) return gv_error(GV_ERR_ARG, "%s: tensor is NULL", what);
    if (!tree) return gv_error(GV_ERR_ARG, "%s: tree is NULL", what);
    gv_tree *leaf = gv_tree_leaf_take(gv_tensor_retain(t));
    if (!leaf) return GV_ERR_NOMEM;
    return place(what, tree, path, leaf, replace);
}

gv_status gv_tree_insert_tensor(gv_tree *tree, const char *path, gv_tensor *t) {
    return place_tensor("gv_tree_insert_tensor", tree, path, t, false);
}

gv_status gv_tree_set_tensor(gv_tree *tree, const char *path, gv_tensor *t) {
    return place_tensor("gv_tree_set_tensor", tree, path, t, true);
}

static gv_status append(const char *what, gv_tree *seq, gv_tree *sub) {
    gv_status st = GV_OK;
    sub = adopt(sub);
    if (!seq) st = gv_error(GV_ERR_ARG, "%s: seq is NULL", what);
    else if (seq->kind != GV_TREE_LIST && seq->kind != GV_TREE_TUPLE)
        st = gv_error(GV_ERR_ARG, "%s: cannot append to a %s (only to a list or tuple)", what,
                      gv_tree_node_name(seq));
    if (st != GV_OK) {
        if (sub && !sub->parent) node_free(sub);
        return st;
    }
    st = check_subtree(what, seq, sub);
    if (st != GV_OK) return st;
    st = attach(seq, NULL, 0, sub);
    if (st != GV_OK) node_free(sub);
    return st;
}

gv_status gv_tree_append(gv_tree *seq, gv_tree *subtree) {
    return append("gv_tree_append", seq, subtree);
}

gv_tree *gv_tree_tuple_take(size_t n, gv_tree *const *kids) {
    bool ok = true;
    for (size_t i = 0; i < n; i++) ok &= kids[i] != NULL;
    gv_tree *t = ok ? gv_tree_new_tuple() : NULL;
    for (size_t i = 0; i < n; i++) {
        gv_tree *kid = t ? adopt(kids[i]) : NULL; /* a graph's tree goes in as a clone */
        if (kid && attach(t, NULL, 0, kid) == GV_OK) continue;
        gv_tree_free(kids[i]); /* a graph's tree stays the graph's */
        if (kid != kids[i]) gv_tree_free(kid);
        if (t) {
            node_free(t);
            t = NULL;
        }
    }
    return t;
}

gv_status gv_tree_append_tensor(gv_tree *seq, gv_tensor *t) {
    if (!t) return gv_error(GV_ERR_ARG, "gv_tree_append_tensor: tensor is NULL");
    gv_tree *leaf = gv_tree_leaf_take(gv_tensor_retain(t));
    return leaf ? append("gv_tree_append_tensor", seq, leaf) : GV_ERR_NOMEM;
}

/* Look up an existing node; NULL with the error set. */
static gv_tree *lookup(const char *what, const gv_tree *tree, const char *path, path_ref *r) {
    if (!tree) {
        null_tree(what);
        return NULL;
    }
    if (check_path(what, path, true) != GV_OK) return NULL;
    if (!*path) return (gv_tree *)tree;
    if (resolve(what, (gv_tree *)tree, path, false, r) != GV_OK) return NULL;
    if (!r->node) {
        not_found_last(what, path, r);
        return NULL;
    }
    return r->node;
}

gv_tree *gv_tree_get(const gv_tree *tree, const char *path) {
    path_ref r;
    return lookup("gv_tree_get", tree, path, &r);
}

gv_tensor *gv_tree_get_tensor(const gv_tree *tree, const char *path) {
    path_ref r;
    gv_tree *n = lookup("gv_tree_get_tensor", tree, path, &r);
    if (!n) return NULL;
    if (n->leaf_kind != GV_LEAF_TENSOR) {
        gv_error(GV_ERR_ARG, "gv_tree_get_tensor: %s is a %s, not a tensor leaf",
                 gv_tree_show_path(path), gv_tree_node_name(n));
        return NULL;
    }
    return n->leaf.tensor;
}

gv_tree *gv_tree_find(const gv_tree *tree, const char *path) {
    if (!tree || !path) return NULL;
    const gv_tree *cur = tree;
    const char *s = path;
    if (!*s) return (gv_tree *)tree;
    for (;;) {
        const char *slash = strchr(s, '/');
        size_t n = slash ? (size_t)(slash - s) : strlen(s);
        if (cur->kind == GV_TREE_LEAF || n == 0) return NULL;
        size_t i = gv_tree_find_kid(cur, s, n);
        if (i == SIZE_MAX) return NULL;
        cur = cur->kids[i];
        if (!slash) return (gv_tree *)cur;
        s = slash + 1;
    }
}

bool gv_tree_contains(const gv_tree *tree, const char *path) {
    if (!tree || !path) {
        gv_error(GV_ERR_ARG, "gv_tree_contains: %s is NULL", tree ? "path" : "tree");
        return false;
    }
    return gv_tree_find(tree, path) != NULL; /* without touching the error state */
}

gv_tree *gv_tree_pop(gv_tree *tree, const char *path) {
    if (path && !*path) {
        gv_error(GV_ERR_ARG, "gv_tree_pop: the path is empty (cannot pop the root)");
        return NULL;
    }
    path_ref r;
    gv_tree *n = lookup("gv_tree_pop", tree, path, &r);
    return n ? detach(r.parent, r.index) : NULL;
}

gv_status gv_tree_remove(gv_tree *tree, const char *path) {
    if (path && !*path)
        return gv_error(GV_ERR_ARG, "gv_tree_remove: the path is empty (cannot remove the "
                        "root; gv_tree_free it)");
    path_ref r;
    gv_tree *n = lookup("gv_tree_remove", tree, path, &r);
    if (!n) return gv_last_status();
    node_free(detach(r.parent, r.index));
    return GV_OK;
}

/* ---- children ------------------------------------------------------------- */

size_t gv_tree_num_children(const gv_tree *tree) {
    if (!tree) {
        gv_error(GV_ERR_ARG, "gv_tree_num_children: tree is NULL");
        return 0;
    }
    return tree->kind == GV_TREE_LEAF ? 0 : tree->n;
}

static bool check_child(const char *what, const gv_tree *tree, size_t i) {
    if (!tree) null_tree(what);
    else if (tree->kind == GV_TREE_LEAF)
        gv_error(GV_ERR_ARG, "%s: the node is a %s leaf, it has no children", what,
                 gv_tree_node_name(tree));
    else if (i >= tree->n)
        gv_error(GV_ERR_ARG, "%s: index %zu is out of range for a %s of %zu", what, i,
                 gv_tree_kind_name(tree->kind), tree->n);
    else return true;
    return false;
}

gv_tree *gv_tree_child(const gv_tree *tree, size_t i) {
    return check_child("gv_tree_child", tree, i) ? tree->kids[i] : NULL;
}

const char *gv_tree_key(const gv_tree *tree, size_t i) {
    return check_child("gv_tree_key", tree, i) ? tree->keys[i] : NULL;
}

gv_tree *gv_tree_child_by_key(const gv_tree *tree, const char *key) {
    const char *what = "gv_tree_child_by_key";
    if (!tree || !key) {
        gv_error(GV_ERR_ARG, "%s: %s is NULL", what, tree ? "key" : "tree");
        return NULL;
    }
    if (strchr(key, '/')) {
        gv_error(GV_ERR_ARG, "%s: key '%s' contains '/' (use gv_tree_get for paths)", what,
                 key);
        return NULL;
    }
    if (check_path(what, key, false) != GV_OK) return NULL;
    if (tree->kind == GV_TREE_LEAF) {
        gv_error(GV_ERR_NOT_FOUND, "%s: no key '%s': the node is a %s leaf", what, key,
                 gv_tree_node_name(tree));
        return NULL;
    }
    size_t i = gv_tree_find_kid(tree, key, strlen(key));
    if (i == SIZE_MAX) {
        gv_error(GV_ERR_NOT_FOUND, "%s: no key '%s' in this %s of %zu", what, key,
                 gv_tree_kind_name(tree->kind), tree->n);
        return NULL;
    }
    return tree->kids[i];
}

/* ---- copying ------------------------------------------- */

/* A container of src's kind with src's keys and order, and no kids yet
 * (kids[i] NULL, n = src->n: node_free copes with the gaps). */
static gv_tree *container_like(const gv_tree *src) {
    gv_tree *t = node_new(src->kind);
    if (!t) return NULL;
    if (reserve(t, src->n) != GV_OK) {
        node_free(t);
        return NULL;
    }
    for (size_t i = 0; i < src->n; i++) {
        t->kids[i] = NULL;
        t->keys[i] = strdup(src->keys[i]);
        if (!t->keys[i]) {
            t->n = i;
            node_free(t);
            gv_error(GV_ERR_NOMEM, "gv_tree: out of memory copying keys");
            return NULL;
        }
        t->n = i + 1;
    }
    if (src->sorted && src->n) memcpy(t->sorted, src->sorted, src->n * sizeof *t->sorted);
    return t;
}

static gv_tree *rebuild(const gv_tree *src, gv_tree_sb *path, gv_tree_rebuild_fn fn,
                        void *ctx) {
    if (src->kind == GV_TREE_LEAF) {
        gv_tree *out = NULL;
        if (fn(src, gv_tree_sb_str(path), &out, ctx) != GV_OK) return NULL;
        return out;
    }
    gv_tree *t = container_like(src);
    if (!t) return NULL;
    for (size_t j = 0; j < src->n; j++) {
        size_t i = gv_tree_flat_index(src, j);
        size_t old = gv_tree_path_push(path, src->keys[i]);
        gv_tree *kid = rebuild(src->kids[i], path, fn, ctx);
        gv_tree_path_pop(path, old);
        if (!kid) {
            node_free(t);
            return NULL;
        }
        t->kids[i] = kid;
        kid->parent = t;
    }
    return t;
}

gv_tree *gv_tree_rebuild(const gv_tree *src, gv_tree_rebuild_fn fn, void *ctx) {
    gv_tree_sb path = {0};
    gv_tree *t = rebuild(src, &path, fn, ctx);
    gv_tree_sb_free(&path);
    return t;
}

static gv_status dup_leaf(const gv_tree *leaf, const char *path, gv_tree **out, void *ctx) {
    *out = gv_tree_leaf_dup(leaf, *(const bool *)ctx);
    return *out ? GV_OK : gv_error_prefix("at %s: ", gv_tree_show_path(path));
}

static gv_tree *duplicate(const char *what, const gv_tree *tree, bool deep) {
    if (!tree) {
        gv_error(GV_ERR_ARG, "%s: tree is NULL", what);
        return NULL;
    }
    gv_tree *t = gv_tree_rebuild(tree, dup_leaf, &deep);
    if (!t) gv_error_prefix("%s: ", what);
    return t;
}

gv_tree *gv_tree_clone(const gv_tree *tree) { return duplicate("gv_tree_clone", tree, false); }

void gv_tree_release_owned(gv_tree *tree) {
    if (!tree) return;
    tree->owner = NULL;
    gv_tree_free(tree);
}

gv_tree *gv_tree_copy(const gv_tree *tree) { return duplicate("gv_tree_copy", tree, true); }
