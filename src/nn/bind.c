/* bind / unbind and tabulate: conveniences for interactive use on top of
 * gv_apply (each call traces and compiles; training code traces instead). */
#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "grove/nn.h"

struct gv_bound {
    gv_module m;
    gv_module_options o;
    gv_tree *variables;
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
    gv_tree_free(b->variables);
    free(b);
}

const gv_tree *gv_bound_variables(const gv_bound *b) { return b ? b->variables : NULL; }

gv_status gv_bound_call(gv_bound *b, const char *method, const gv_tree *args,
                        const gv_tree *rngs, gv_tree **out) {
    if (!b) return gv_error(GV_ERR_ARG, "gv_bound_call: bound module is NULL");
    gv_module_options o = b->o;
    o.method = method;
    return gv_apply(&b->m, b->variables, args, rngs, &o, out);
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
        const gv_tree *part = gv_tree_child_by_key(gv_tree_child(b->variables, i), name);
        gv_clear_error();
        if (part && gv_tree_insert(sub, coll, gv_tree_clone(part)) != GV_OK) {
            gv_tree_free(sub);
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
