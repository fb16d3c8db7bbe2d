/* bind / unbind and tabulate: conveniences for interactive use on top of
 * gv_apply_eager (each call traces and compiles; training code traces instead). */
#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "grove/nn.h"
#include "tree/tree_internal.h"

/* One jit per method called: a bound module traces and compiles once per
 * method and input signature (gv_jit's cache), then reruns the plan. */
typedef struct bound_method {
    struct gv_bound *b;
    char *name;          /* NULL = __call__ */
    gv_jit *jit;
} bound_method;

struct gv_bound {
    gv_module m;
    gv_module_options o;
    gv_tree *variables;
    bound_method *methods;
    int nmethods;
};

gv_bound *gv_bind(const gv_module *m, const gv_tree *variables, const gv_module_options *o) {
    if (!m || !m->type || !variables) {
        gv_error(GV_ERR_ARG, "gv_bind: %s is NULL", variables ? "module" : "variables");
        return NULL;
    }
    gv_bound *b = calloc(1, sizeof *b);
    if (!b) {
        gv_error(GV_ERR_NOMEM, "gv_bind: out of memory");
        return NULL;
    }
    b->m = *m;
    if (o) b->o = *o;
    b->variables = gv_tree_clone(variables);
    if (!b->variables) {
        free(b);
        return NULL;
    }
    return b;
}

void gv_bound_free(gv_bound *b) {
    if (!b) return;
    for (int i = 0; i < b->nmethods; i++) {
        gv_jit_free(b->methods[i].jit);
        free(b->methods[i].name);
    }
    free(b->methods);
    gv_tree_free(b->variables);
    free(b);
}

/* inputs: (variables, args, rngs) */
static gv_tree *bound_trace(gv_graph *g, const gv_tree *in, void *ud) {
    bound_method *bm = ud;
    gv_module_options o = bm->b->o;
    o.method = bm->name;
    return gv_apply(g, &bm->b->m, gv_tree_get(in, "0"), gv_tree_get(in, "1"),
                    gv_tree_get(in, "2"), &o);
}

static bound_method *method_slot(gv_bound *b, const char *method) {
    for (int i = 0; i < b->nmethods; i++) {
        const char *n = b->methods[i].name;
        if ((!n && !method) || (n && method && strcmp(n, method) == 0)) return &b->methods[i];
    }
    /* the slots are referenced by their jits: allocate them once, up front */
    if (!b->methods) {
        int cap = 1 + b->m.type->nmethods;
        b->methods = calloc((size_t)cap, sizeof *b->methods);
        if (!b->methods) return NULL;
    }
    if (b->nmethods >= 1 + b->m.type->nmethods) return NULL;
    bound_method *bm = &b->methods[b->nmethods];
    bm->b = b;
    bm->name = method ? strdup(method) : NULL;
    bm->jit = gv_jit_new(bound_trace, bm, NULL);
    if ((method && !bm->name) || !bm->jit) {
        free(bm->name);
        gv_jit_free(bm->jit);
        return NULL;
    }
    b->nmethods++;
    return bm;
}

const gv_tree *gv_bound_variables(const gv_bound *b) { return b ? b->variables : NULL; }

gv_status gv_bound_call(gv_bound *b, const char *method, const gv_tree *args,
                        const gv_tree *rngs, gv_tree **out) {
    if (!b || !args || !out) return gv_error(GV_ERR_ARG, "gv_bound_call: NULL argument");
    *out = NULL;
    bool known = !method;
    for (int i = 0; i < b->m.type->nmethods && !known; i++)
        known = strcmp(b->m.type->methods[i].name, method) == 0;
    if (!known)
        return gv_error(GV_ERR_ARG, "gv_bound_call: module %s has no method '%s'",
                        b->m.type->name, method);
    bound_method *bm = method_slot(b, method);
    if (!bm) return gv_error(GV_ERR_NOMEM, "gv_bound_call: out of memory");
    gv_tree *in = gv_tree_tuple_take(3, (gv_tree *[]){gv_tree_clone(b->variables),
        gv_tree_clone(args), rngs ? gv_tree_clone(rngs) : gv_tree_new_dict()});
    gv_tree *res = NULL;
    gv_status st = in ? gv_jit_call(bm->jit, in, &res) : gv_last_status();
    if (st == GV_OK) {
        *out = gv_tree_copy(res); /* the jit's outputs are reused by the next call */
        if (!*out) st = gv_last_status();
    }
    if (st != GV_OK) gv_error_prefix("gv_bound_call(%s): ", b->m.type->name);
    gv_tree_free(in);
    return st;
}

int gv_bound_num_compiles(const gv_bound *b) {
    int n = 0;
    for (int i = 0; b && i < b->nmethods; i++) n += gv_jit_num_compiles(b->methods[i].jit);
    return n;
}

gv_bound *gv_bound_child(const gv_bound *b, const char *name, const gv_module *child) {
    if (!b || !name || !child) {
        gv_error(GV_ERR_ARG, "gv_bound_child: NULL argument");
        return NULL;
    }
    gv_tree *sub = gv_tree_new_dict();
    if (!sub) return NULL;
    for (size_t i = 0; i < gv_tree_num_children(b->variables); i++) {
        const char *coll = gv_tree_key(b->variables, i);
        /* a collection without this child is skipped: a quiet lookup */
        const gv_tree *part = strchr(name, '/') ? NULL
                              : gv_tree_find(gv_tree_child(b->variables, i), name);
        gv_tree *copy = part ? gv_tree_clone(part) : NULL;
        if (part && (!copy || gv_tree_insert(sub, coll, copy) != GV_OK)) {
            gv_tree_free(sub);
            gv_error_prefix("gv_bound_child(%s): ", name);
            return NULL;
        }
    }
    if (gv_tree_num_children(sub) == 0) {
        gv_tree_free(sub);
        gv_error(GV_ERR_NOT_FOUND, "gv_bound_child: the bound module has no child '%s'", name);
        return NULL;
    }
    gv_bound *c = gv_bind(child, sub, &b->o);
    gv_tree_free(sub);
    return c;
}

gv_status gv_unbind(gv_bound *b, gv_module *m, gv_tree **variables) {
    if (!b) return gv_error(GV_ERR_ARG, "gv_unbind: the module is not bound (NULL)");
    if (m) *m = b->m;
    if (variables) {
        *variables = b->variables;
        b->variables = NULL;
    }
    gv_bound_free(b);
    return GV_OK;
}

char *gv_tabulate(const gv_module *m, gv_key key, const gv_tree *args, const gv_module_options *o) {
    gv_tree *vars = gv_init(m, key, args, o);
    if (!vars) return NULL;
    char *s = gv_tree_summary(vars);
    gv_tree_free(vars);
    return s;
}
