/* From an optimised graph to a plan: fusion groups, step order, liveness,
 * donation, one arena with buffers reused after their last use, and the
 * run loop (no allocation, no lookups). */
#define _GNU_SOURCE /* qsort_r */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "compile_internal.h"
#include "dist/dist_internal.h"
#include "core/error.h"
#include "tree/tree_internal.h"

enum { V_NONE, V_INPUT, V_CONST, V_ALIAS, V_REG, V_STEP };

typedef struct vinfo {
    int kind;
    int32_t group;   /* fused group, -1 if none */
    int32_t def;     /* defining step */
    int32_t last;    /* last reading step */
    int32_t first;   /* first reading step (INT32_MAX: none) */
    int32_t alias;   /* V_ALIAS: the value whose buffer this one shares */
    bool placed;     /* buffer assigned */
    bool stored;     /* a group member written to memory */
    int32_t epi_group; /* a reduction accumulated inside this fused group (-1: no) */
    gv_bufref buf;
    size_t bytes;
} vinfo;

typedef struct builder {
    gv_plan *p;
    gv_graph *g;
    int32_t n;
    vinfo *v;
    char *live;
    int32_t *ncons, **cons;  /* consumers of each live node */
    bool *is_out;
    int32_t *group_last;     /* group -> its last member */
    int32_t ngroups;
    bool *donated;           /* per input index */
    bool *read_at_end;       /* per input index */
} builder;

static size_t node_bytes(const gv_node *n) {
    return (size_t)gv_node_size(n) * gv_dtype_size(n->dtype);
}

static int32_t root_of(const builder *b, int32_t id) {
    while (b->v[id].kind == V_ALIAS) id = b->v[id].alias;
    return id;
}

static bool fusible(const builder *b, int32_t id) {
    const gv_node *n = &b->g->nodes[id];
    if (n->dtype != GV_F32 && n->dtype != GV_BOOL) return false;
    if (!gv_fused_supports(n->op)) return false;
    if (n->op == GV_OP_FULL) return n->dtype == GV_F32;
    bool ew = gv_opdefs[n->op].flags & GV_OPF_ELEMENTWISE;
    if (!ew && n->op != GV_OP_BROADCAST) return false;
    if (n->op == GV_OP_CAST && n->dtype != GV_F32) return false;
    bool compare = n->op >= GV_OP_EQ && n->op <= GV_OP_GE;
    for (int k = 0; k < n->nin; k++) {
        gv_dtype d = b->g->nodes[n->in[k]].dtype;
        /* registers are float32: integer operands stay with exact integer kernels */
        if (d != GV_F32 && d != GV_BOOL) return false;
    }
    (void)compare;
    return true;
}

static bool same_shape(const gv_node *a, const gv_node *b) {
    return a->rank == b->rank && memcmp(a->shape, b->shape, (size_t)a->rank * 8) == 0;
}

/* Fusion groups, formed from the last node back. A group runs as one step
 * at the position of its root (its last member, whose shape is the group's
 * domain). A node joins a consumer's group G when its shape is G's domain
 * (or it is a constant) and every consumer outside G runs after G's step;
 * it is then stored for those consumers. That invariant (every outside
 * reader of a group's value runs later) keeps the step order valid. */
static int32_t position(const builder *b, const int32_t *root, int32_t c) {
    return b->v[c].group >= 0 ? root[b->v[c].group] : c;
}

static void form_groups(builder *b, int32_t *root) {
    for (int32_t i = b->n - 1; i >= 0; i--) {
        b->v[i].group = -1;
        if (!b->live[i] || !fusible(b, i)) continue;
        const gv_node *n = &b->g->nodes[i];
        int32_t best = -1;
        for (int32_t k = 0; k < b->ncons[i]; k++) {
            int32_t cg = b->v[b->cons[i][k]].group;
            if (cg < 0 || (best >= 0 && root[cg] >= root[best])) continue;
            /* a member is stored over the group's domain, so a constant of
             * another shape joins only when nothing outside reads it (not an
             * output either: its store would overrun the output buffer) */
            if ((n->op != GV_OP_FULL || b->is_out[i]) && !same_shape(n, &b->g->nodes[root[cg]]))
                continue;
            bool ok = true;
            for (int32_t q = 0; q < b->ncons[i] && ok; q++) {
                int32_t c = b->cons[i][q];
                if (b->v[c].group == cg) continue;
                /* a constant is cheap to recompute but not to share: keep it whole */
                ok = n->op != GV_OP_FULL && position(b, root, c) > root[cg];
            }
            if (ok) best = cg;
        }
        if (best >= 0) {
            b->v[i].group = best;
        } else {
            b->v[i].group = b->ngroups;
            root[b->ngroups++] = i;
        }
    }
}

/* Reads of value id by step s (liveness). */
static void read_at(builder *b, int32_t id, int32_t s) {
    int32_t r = root_of(b, id);
    if (b->v[r].last < s) b->v[r].last = s;
    if (b->v[r].first > s) b->v[r].first = s;
}

static gv_bufref buf_of(builder *b, int32_t id) {
    return b->v[root_of(b, id)].buf;
}

/* Greedy first fit by decreasing size over lifetime intervals. */
static int by_size_desc(const void *x, const void *y, void *ctx) {
    const vinfo *v = ctx;
    size_t a = v[*(const int32_t *)x].bytes, c = v[*(const int32_t *)y].bytes;
    return a < c ? 1 : a > c ? -1 : (*(const int32_t *)x - *(const int32_t *)y);
}

static gv_status place_arena(builder *b) {
    int32_t *ids = malloc(((size_t)b->n + 1) * sizeof *ids), m = 0;
    int32_t *placed = malloc(((size_t)b->n + 1) * sizeof *placed), np = 0;
    if (!ids || !placed) {
        free(ids), free(placed);
        return gv_error(GV_ERR_NOMEM, "compile: out of memory");
    }
    for (int32_t i = 0; i < b->n; i++)
        if (b->v[i].kind == V_STEP && !b->v[i].placed) {
            ids[m++] = i;
            b->p->intermediate_bytes += (b->v[i].bytes + 63) & ~(size_t)63;
        }
    qsort_r(ids, (size_t)m, sizeof *ids, by_size_desc, b->v);
    size_t peak = 0;
    for (int32_t k = 0; k < m; k++) {
        vinfo *v = &b->v[ids[k]];
        size_t size = (v->bytes + 63) & ~(size_t)63, off = 0;
        if (v->last < v->def) v->last = v->def;
        for (bool moved = true; moved;) {
            moved = false;
            for (int32_t j = 0; j < np; j++) {
                vinfo *u = &b->v[placed[j]];
                size_t usize = (u->bytes + 63) & ~(size_t)63;
                bool time = u->def <= v->last && v->def <= u->last;
                bool space = u->buf.offset < off + size && off < u->buf.offset + usize;
                if (time && space) {
                    off = u->buf.offset + usize;
                    moved = true;
                }
            }
        }
        v->buf = (gv_bufref){GV_BASE_ARENA, off};
        v->placed = true;
        placed[np++] = ids[k];
        if (off + size > peak) peak = off + size;
    }
    b->p->arena_bytes = peak;
    free(ids), free(placed);
    return GV_OK;
}

/* A fused group's loads: how element i of the domain maps into an operand. */
static gv_status make_load(const gv_node *dom, const gv_node *x, gv_fload *l) {
    int64_t size = gv_node_size(x);
    l->dtype = x->dtype;
    if (same_shape(dom, x)) {
        l->kind = GV_LOAD_FULL;
        return GV_OK;
    }
    if (size == 1) {
        l->kind = GV_LOAD_SCALAR;
        return GV_OK;
    }
    /* x's dims, right aligned, equal dom's trailing dims (leading 1s allowed) */
    int lead = 0;
    while (lead < x->rank && x->shape[lead] == 1) lead++;
    int k = x->rank - lead;
    bool periodic = k <= dom->rank;
    for (int i = 0; periodic && i < k; i++)
        periodic = x->shape[lead + i] == dom->shape[dom->rank - k + i];
    if (periodic) {
        l->kind = GV_LOAD_PERIODIC;
        l->period = size;
        return GV_OK;
    }
    /* x's dims, left aligned after dom's rank, equal dom's leading dims and
     * the rest are 1 ([B, 1] against [B, 784]): each element repeats */
    if (x->rank == dom->rank) {
        int k2 = x->rank;
        while (k2 > 0 && x->shape[k2 - 1] == 1) k2--;
        bool repeat = true;
        for (int i = 0; repeat && i < k2; i++) repeat = x->shape[i] == dom->shape[i];
        if (repeat) {
            l->kind = GV_LOAD_REPEAT;
            l->period = gv_node_size(dom) / size;
            return GV_OK;
        }
    }
    l->kind = GV_LOAD_GENERAL;
    l->div = malloc((size_t)dom->rank * 3 * sizeof(int64_t));
    if (!l->div) return gv_error(GV_ERR_NOMEM, "compile: out of memory");
    l->mod = l->div + dom->rank;
    l->stride = l->mod + dom->rank;
    int64_t div = 1, stride = 1;
    int nd = 0;
    int64_t xs[dom->rank];
    for (int i = dom->rank - 1; i >= 0; i--) {
        int xi = i - (dom->rank - x->rank);
        int64_t d = xi >= 0 ? x->shape[xi] : 1;
        xs[i] = d == 1 ? 0 : stride;
        stride *= d;
    }
    for (int i = dom->rank - 1; i >= 0; i--) {
        if (xs[i]) {
            l->div[nd] = div;
            l->mod[nd] = dom->shape[i];
            l->stride[nd] = xs[i];
            nd++;
        }
        div *= dom->shape[i];
    }
    l->nd = nd;
    return GV_OK;
}

static bool reg_uniform(const gv_fused *f, int16_t r) { return r < 0 || f->uniform[r]; }

static gv_status build_fused(builder *b, int32_t g, int32_t root, gv_step *s) {
    gv_fused *f = &s->fused;
    const gv_node *dom = &b->g->nodes[root];
    f->size = gv_node_size(dom);
    int32_t nm = 0, next = 0;
    for (int32_t i = 0; i <= root; i++) nm += b->live[i] && b->v[i].group == g;
    /* registers: one per member, one per distinct external operand */
    int32_t *reg = malloc(((size_t)b->n + 1) * sizeof *reg);
    f->instr = calloc((size_t)nm + 1, sizeof *f->instr);
    f->store = calloc((size_t)nm + 1, sizeof *f->store);
    f->load = calloc((size_t)nm * 3 + 1, sizeof *f->load);
    f->consts = malloc(((size_t)nm * 4 + 1) * sizeof *f->consts);
    f->uniform = calloc((size_t)nm * 4 + 1, sizeof *f->uniform);
    f->has_const = calloc((size_t)nm * 4 + 1, sizeof *f->has_const);
    if (!reg || !f->instr || !f->store || !f->load || !f->consts || !f->uniform || !f->has_const) {
        free(reg);
        return gv_error(GV_ERR_NOMEM, "compile: out of memory");
    }
    for (int32_t i = 0; i < b->n; i++) reg[i] = -1;
    for (int32_t i = 0; i <= root; i++) {
        if (!b->live[i] || b->v[i].group != g) continue;
        const gv_node *n = &b->g->nodes[i];
        int16_t r = (int16_t)next++;
        reg[i] = r;
        f->consts[r] = 0;
        if (b->v[i].stored) f->store[f->nstore++] = (gv_fstore){b->v[i].buf, n->dtype, r};
        if (n->op == GV_OP_FULL) {
            f->consts[r] = n->fattr[0];
            f->has_const[r] = true;
            f->uniform[r] = true;
            continue;
        }
        int16_t ops[3] = {-1, -1, -1};
        for (int k = 0; k < n->nin && k < 3; k++) {
            int32_t x = n->in[k];
            if (reg[x] < 0) { /* an external operand: load it */
                gv_fload *l = &f->load[f->nload++];
                gv_status st = make_load(dom, &b->g->nodes[x], l);
                if (st != GV_OK) {
                    free(reg);
                    return st;
                }
                l->buf = buf_of(b, x);
                l->reg = (int16_t)next++;
                f->consts[l->reg] = 0;
                f->uniform[l->reg] = l->kind == GV_LOAD_SCALAR;
                reg[x] = l->reg;
            }
            ops[k] = (int16_t)reg[x];
        }
        gv_finstr *in = &f->instr[f->ninstr++];
        bool copy = n->op == GV_OP_CAST || n->op == GV_OP_BROADCAST;
        /* uniform: all operands are scalars, constants or uniform results
         * (registers are written by one instruction or load only) */
        bool uniform = n->nin > 0;
        for (int k = 0; k < n->nin && k < 3; k++) uniform = uniform && reg_uniform(f, ops[k]);
        uint8_t op = !copy ? (uint8_t)n->op : b->v[i].stored ? GV_FOP_COPY : GV_FOP_ALIAS;
        *in = (gv_finstr){op, uniform, r, ops[0], ops[1], ops[2]};
        if (uniform) f->uniform[r] = true;
    }
    f->nregs = next;
    for (int32_t i = root + 1; i < b->n; i++) {
        if (!b->live[i] || b->v[i].epi_group != g) continue;
        if (!f->red) f->red = calloc((size_t)b->n - (size_t)root, sizeof *f->red);
        if (!f->red) {
            free(reg);
            return gv_error(GV_ERR_NOMEM, "compile: out of memory");
        }
        const gv_node *rn = &b->g->nodes[i];
        gv_fepi *e = &f->red[f->nred++];
        e->reg = (int16_t)reg[rn->in[0]];
        e->op = (uint8_t)rn->op;
        gv_reduce_collapse(rn, &b->g->nodes[rn->in[0]], e->dims);
        e->buf = b->v[i].buf;
    }
    free(reg);
    f->specialised = gv_fused_specialise(f, &f->shape);
    return GV_OK;
}

/* The copies that carry donated inputs not written in place: input i <-
 * output j at the same path, same shape and dtype. */
static gv_status find_carries(gv_plan *p, const gv_graph *g, const bool *donated,
                              const bool *carried, char **ipaths, char **opaths) {
    p->carry = calloc(p->nin + 1, sizeof *p->carry);
    if (!p->carry) return gv_error(GV_ERR_NOMEM, "gv_plan_compile: out of memory");
    for (size_t j = 0; j < p->nout; j++) {
        for (size_t i = 0; i < p->nin; i++) {
            if (!donated[i] || !carried[i] || strcmp(ipaths[i], opaths[j])) continue;
            if (p->out_alias[j] == (int32_t)i) break;
            const gv_tensor *want = p->sig[i];
            const gv_node *on = &g->nodes[p->opt.out_ids[j]];
            if (on->dtype != gv_tensor_dtype(want) || on->rank != gv_tensor_rank(want) ||
                (on->rank > 0 && /* a scalar's shape may be NULL */
                 memcmp(on->shape, gv_tensor_shape(want), (size_t)on->rank * sizeof *on->shape)))
                break;
            p->carry[p->ncarry++] = (gv_carry){(int32_t)i, (int32_t)j,
                                               gv_tensor_nbytes(want)};
            break;
        }
    }
    return GV_OK;
}

static bool under(const char *path, const char *prefix) {
    size_t l = strlen(prefix);
    return l == 0 || (!strncmp(path, prefix, l) && (path[l] == '\0' || path[l] == '/'));
}

/* donated[i] for every input leaf under a donated path, argument number or
 * argument name. A number or name that is not an argument is an error: a
 * typo must not silently turn donation off. */
static gv_status mark_donated(const gv_fn *fn, const gv_plan_options *o, bool *donated) {
    const gv_tree *in = fn->example;
    gv_tree_kind kind = gv_tree_kind_of(in);
    size_t nargs = gv_tree_num_children(in);
    if (o->donate_argnums.n > 0 && kind != GV_TREE_TUPLE && kind != GV_TREE_LIST)
        return gv_error(GV_ERR_ARG, "gv_plan_compile: donate_argnums needs inputs that are a "
                        "tuple of arguments, they are a %s", gv_tree_kind_name(kind));
    if (o->donate_argnames.n > 0 && kind != GV_TREE_DICT)
        return gv_error(GV_ERR_ARG, "gv_plan_compile: donate_argnames needs inputs that are a "
                        "dict of arguments, they are a %s", gv_tree_kind_name(kind));
    for (int d = 0; d < o->donate_argnums.n; d++) {
        int a = o->donate_argnums.v[d];
        if (a < 0 || (size_t)a >= nargs)
            return gv_error(GV_ERR_ARG, "gv_plan_compile: donate_argnums has %d, the function "
                            "takes %zu arguments", a, nargs);
    }
    for (int d = 0; d < o->donate_argnames.n; d++)
        if (!o->donate_argnames.v[d] || !gv_tree_child_by_key(in, o->donate_argnames.v[d]))
            return gv_error(GV_ERR_ARG, "gv_plan_compile: donate_argnames has '%s', which is not "
                            "an argument", o->donate_argnames.v[d] ? o->donate_argnames.v[d] : "(null)");
    if (o->ndonate <= 0 && o->donate_argnums.n <= 0 && o->donate_argnames.n <= 0) return GV_OK;
    char **paths = NULL;
    size_t np = 0;
    if (gv_tree_leaf_paths(in, &paths, &np) != GV_OK) return gv_error_prefix("gv_plan_compile: ");
    for (size_t i = 0; i < np; i++) {
        for (int d = 0; d < o->ndonate; d++) donated[i] |= under(paths[i], o->donate[d]);
        for (int d = 0; d < o->donate_argnames.n; d++)
            donated[i] |= under(paths[i], o->donate_argnames.v[d]);
        for (int d = 0; d < o->donate_argnums.n; d++) {
            char key[24];
            snprintf(key, sizeof key, "%d", o->donate_argnums.v[d]);
            donated[i] |= under(paths[i], key);
        }
    }
    gv_tree_paths_free(paths, np);
    return GV_OK;
}

gv_plan *gv_plan_compile(const gv_fn *fn, const gv_plan_options *opts) {
    if (!fn) {
        gv_error(GV_ERR_ARG, "gv_plan_compile: fn is NULL");
        return NULL;
    }
    gv_plan_options o = opts ? *opts : (gv_plan_options){0};
    gv_plan *p = calloc(1, sizeof *p);
    builder b = {0};
    if (!p) {
        gv_error(GV_ERR_NOMEM, "gv_plan_compile: out of memory");
        return NULL;
    }
    p->threads = o.threads > 0 ? o.threads : 1;
    p->nin = fn->ninputs;
    p->nout = fn->nout;
    if (gv_optimize(fn, !o.no_optimize, &p->opt) != GV_OK) goto fail;
    p->in_structure = gv_tree_clone(fn->example);
    p->out_structure = gv_tree_clone(fn->outputs);
    size_t nsig = 0; /* the compiled input signature, in flatten order */
    if (!p->in_structure || !p->out_structure ||
        gv_tree_flatten(p->in_structure, &p->sig, &nsig) != GV_OK)
        goto fail;
    b.p = p;
    b.g = p->opt.graph;
    b.n = b.g->n;
    int32_t n = b.n;
    b.v = calloc((size_t)n + 1, sizeof *b.v);
    b.live = calloc((size_t)n + 1, 1);
    b.ncons = calloc((size_t)n + 1, sizeof *b.ncons);
    b.cons = calloc((size_t)n + 1, sizeof *b.cons);
    b.is_out = calloc((size_t)n + 1, sizeof *b.is_out);
    b.group_last = calloc((size_t)n + 1, sizeof *b.group_last);
    b.donated = calloc(p->nin + 1, sizeof *b.donated);
    b.read_at_end = calloc(p->nin + 1, sizeof *b.read_at_end);
    int32_t *groot = calloc((size_t)n + 1, sizeof *groot);
    p->steps = calloc((size_t)n + p->nout + 1, sizeof *p->steps);
    p->out_alias = malloc((p->nout + 1) * sizeof *p->out_alias);
    p->consts = calloc((size_t)n + 1, sizeof *p->consts);
    if (!b.v || !b.live || !b.ncons || !b.cons || !b.is_out || !b.group_last || !b.donated ||
        !b.read_at_end || !groot || !p->steps || !p->out_alias || !p->consts) {
        free(groot);
        gv_error(GV_ERR_NOMEM, "gv_plan_compile: out of memory");
        goto fail;
    }
    gv_graph *g = b.g;
    for (size_t j = 0; j < p->nout; j++) {
        b.live[p->opt.out_ids[j]] = 1;
        b.is_out[p->opt.out_ids[j]] = true;
        p->out_alias[j] = -1;
    }
    for (int32_t i = n - 1; i >= 0; i--)
        if (b.live[i])
            for (int k = 0; k < g->nodes[i].nin; k++) b.live[g->nodes[i].in[k]] = 1;
    for (int32_t i = 0; i < n; i++)
        if (b.live[i])
            for (int k = 0; k < g->nodes[i].nin; k++) b.ncons[g->nodes[i].in[k]]++;
    for (int32_t i = 0; i < n; i++) {
        b.cons[i] = malloc(((size_t)b.ncons[i] + 1) * sizeof **b.cons);
        if (!b.cons[i]) {
            free(groot);
            gv_error(GV_ERR_NOMEM, "gv_plan_compile: out of memory");
            goto fail;
        }
        b.ncons[i] = 0;
    }
    for (int32_t i = 0; i < n; i++)
        if (b.live[i])
            for (int k = 0; k < g->nodes[i].nin; k++) {
                int32_t x = g->nodes[i].in[k];
                b.cons[x][b.ncons[x]++] = i;
            }
    /* donated inputs */
    if (mark_donated(fn, &o, b.donated) != GV_OK) {
        free(groot);
        goto fail;
    }
    form_groups(&b, groot);
    for (int32_t i = 0; i < n; i++)
        if (b.live[i] && b.v[i].group >= 0) b.group_last[b.v[i].group] = i;

    /* value kinds */
    for (int32_t i = 0; i < n; i++) {
        vinfo *v = &b.v[i];
        v->def = -1;
        v->last = -1;
        v->first = INT32_MAX;
        v->bytes = node_bytes(&g->nodes[i]);
        if (!b.live[i]) continue;
        const gv_node *nd = &g->nodes[i];
        if (nd->op == GV_OP_INPUT) {
            v->kind = V_INPUT;
            v->buf = (gv_bufref){gv_base_input((int32_t)nd->iattr[0]), 0};
            v->placed = true;
        } else if (nd->op == GV_OP_CONST) {
            v->kind = V_CONST;
            p->consts[p->nconsts] = gv_tensor_retain(nd->tensor);
            v->buf = (gv_bufref){0, 0}; /* base set after nconsts is known */
            v->alias = p->nconsts++;
            v->placed = true;
        } else if (nd->op == GV_OP_RESHAPE && !b.is_out[i]) {
            v->kind = V_ALIAS;
            v->alias = nd->in[0];
        } else if (v->group >= 0) {
            bool outside = b.is_out[i];
            for (int32_t k = 0; k < b.ncons[i]; k++) outside |= b.v[b.cons[i][k]].group != v->group;
            v->kind = outside ? V_STEP : V_REG;
            v->stored = outside;
        } else {
            v->kind = V_STEP;
        }
    }
    for (int32_t i = 0; i < n; i++)
        if (b.v[i].kind == V_CONST)
            b.v[i].buf = (gv_bufref){gv_base_const(p, b.v[i].alias), 0};
    /* reductions of a fused chain's value that nothing else reads: accumulate
     * them inside the chain's pass (fusion into reduction inputs) */
    for (int32_t i = 0; i < n; i++) {
        b.v[i].epi_group = -1;
        const gv_node *nd = &g->nodes[i];
        if (!b.live[i] || nd->dtype != GV_F32 ||
            (nd->op != GV_OP_REDUCE_SUM && nd->op != GV_OP_REDUCE_MAX && nd->op != GV_OP_REDUCE_MIN))
            continue;
        int32_t x = nd->in[0];
        int64_t dims[3];
        if (b.v[x].group < 0 || !b.v[x].stored || b.ncons[x] != 1 || b.is_out[x] ||
            g->nodes[x].op == GV_OP_FULL || !gv_reduce_collapse(nd, &g->nodes[x], dims))
            continue;
        b.v[x].stored = false;
        b.v[x].kind = V_REG;
        b.v[i].epi_group = b.v[x].group;
    }
    for (size_t j = 0; j < p->nout; j++) {
        int32_t r = root_of(&b, p->opt.out_ids[j]);
        if (b.v[r].kind == V_INPUT) b.read_at_end[g->nodes[r].iattr[0]] = true;
    }

    /* steps in order; record reads (liveness) and defs */
    int32_t ns = 0;
    for (int32_t i = 0; i < n; i++) {
        if (!b.live[i]) continue;
        vinfo *v = &b.v[i];
        const gv_node *nd = &g->nodes[i];
        if (v->group >= 0) {
            if (b.group_last[v->group] != i) continue;
            gv_step *s = &p->steps[ns];
            s->kind = GV_STEP_FUSED;
            s->node = i;
            for (int32_t m = 0; m <= i; m++)
                if (b.live[m] && b.v[m].group == v->group && b.v[m].stored) b.v[m].def = ns;
            for (int32_t m = i + 1; m < n; m++)
                if (b.live[m] && b.v[m].epi_group == v->group) b.v[m].def = ns;
            ns++;
            p->fused_kernels++;
            /* reads are recorded when the program is built (below) */
            continue;
        }
        if (v->kind != V_STEP || v->epi_group >= 0) continue;
        gv_step *s = &p->steps[ns];
        s->kind = nd->op == GV_OP_MATMUL && nd->dtype == GV_F32 ? GV_STEP_GEMM : GV_STEP_REF;
        if (s->kind == GV_STEP_GEMM) p->gemms++;
        if (nd->op == GV_OP_CONV && nd->dtype == GV_F32) s->kind = GV_STEP_CONV;
        bool reduce = nd->op == GV_OP_REDUCE_SUM || nd->op == GV_OP_REDUCE_MAX ||
                      nd->op == GV_OP_REDUCE_MIN;
        if (reduce && nd->dtype == GV_F32 && gv_reduce_collapse(nd, &g->nodes[nd->in[0]], s->rdims))
            s->kind = GV_STEP_REDUCE;
        s->node = i;
        s->nin = nd->nin;
        v->def = ns;
        for (int k = 0; k < nd->nin; k++) read_at(&b, nd->in[k], ns);
        ns++;
    }
    p->nsteps = ns;
    /* fused reads: operands outside the group */
    for (int32_t k = 0; k < ns; k++) {
        gv_step *s = &p->steps[k];
        if (s->kind != GV_STEP_FUSED) continue;
        int32_t grp = b.v[s->node].group;
        for (int32_t i = 0; i <= s->node; i++) {
            if (!b.live[i] || b.v[i].group != grp || g->nodes[i].op == GV_OP_FULL) continue;
            for (int q = 0; q < g->nodes[i].nin; q++) {
                int32_t x = g->nodes[i].in[q];
                if (b.v[x].group != grp) read_at(&b, x, k);
            }
        }
    }
    /* outputs: written straight into the output (or a donated input) */
    int32_t ncopies = 0;
    char **ipaths = NULL, **opaths = NULL;
    size_t nip = 0, nop = 0;
    /* the paths match donated inputs to outputs at the same path: a failure
     * here (out of memory) fails the compile rather than quietly placing
     * outputs elsewhere */
    gv_status pst = gv_tree_leaf_paths(fn->inputs, &ipaths, &nip);
    if (pst == GV_OK) pst = gv_tree_leaf_paths(fn->outputs, &opaths, &nop);
    if (pst != GV_OK || nip != p->nin || nop != p->nout) {
        if (ipaths) gv_tree_paths_free(ipaths, nip);
        if (opaths) gv_tree_paths_free(opaths, nop);
        if (pst != GV_OK)
            gv_error_prefix("gv_plan_compile: ");
        else
            gv_error(GV_ERR_INTERNAL, "gv_plan_compile: the function's trees have %zu inputs and "
                     "%zu outputs, its graph %zu and %zu", nip, nop, (size_t)p->nin, (size_t)p->nout);
        free(groot);
        goto fail;
    }
    /* a donated input with an output at its own path is carried: after the
     * run it holds that output (written in place, or copied back). Only
     * inputs that are not carried may hold some other output. */
    bool *carried = calloc(p->nin + 1, sizeof *carried);
    if (!carried) {
        gv_tree_paths_free(ipaths, nip), gv_tree_paths_free(opaths, nop);
        free(groot);
        gv_error(GV_ERR_NOMEM, "gv_plan_compile: out of memory");
        goto fail;
    }
    for (size_t i = 0; i < p->nin; i++)
        for (size_t j = 0; j < p->nout && b.donated[i] && !carried[i]; j++)
            carried[i] = !strcmp(ipaths[i], opaths[j]);
    for (size_t j = 0; j < p->nout; j++) {
        int32_t o_id = p->opt.out_ids[j];
        vinfo *v = &b.v[o_id];
        const gv_node *o_node = &g->nodes[o_id];
        if (o_node->op == GV_OP_INPUT) {
            /* a donated input returned unchanged at its own path (a frozen
             * param passed through a train step) is its own output: the
             * buffer already holds the value, so there is nothing to copy */
            size_t i = (size_t)o_node->iattr[0];
            /* read_at_end[i] is already set (this output reads it), so no
             * computed output is placed in that buffer either */
            if (i < p->nin && b.donated[i] && !strcmp(ipaths[i], opaths[j])) {
                p->out_alias[j] = (int32_t)i;
                p->donated++;
                continue;
            }
        }
        if (v->kind == V_STEP && !v->placed) {
            int32_t base = gv_base_output(p, (int32_t)j);
            const gv_node *on = &g->nodes[o_id];
            /* the donated input at the output's own path first (a state
             * passed through a step keeps its leaves' buffers, so the caller
             * may keep using its input tree), then any that fits */
            bool found = false;
            for (int pass = 0; pass < 2 && !found; pass++)
                for (size_t i = 0; i < p->nin && !found; i++) {
                    if (pass == 0 && strcmp(ipaths[i], opaths[j])) continue;
                    if (pass == 1 && carried[i]) continue;
                    if (!b.donated[i] || b.read_at_end[i]) continue;
                    /* find input i's node and its last read */
                    int32_t in_node = -1;
                    for (int32_t q = 0; q < n && in_node < 0; q++)
                        if (b.live[q] && g->nodes[q].op == GV_OP_INPUT && g->nodes[q].iattr[0] == (int64_t)i)
                            in_node = q;
                    if (in_node < 0 || !same_shape(&g->nodes[in_node], on) ||
                        g->nodes[in_node].dtype != on->dtype)
                        continue;
                    /* the input's last read must come before the output is
                     * written; within one fused pass that holds only for a
                     * value stored over the pass's own domain, where each
                     * block reads its elements before it stores them. A
                     * reduction epilogue is not: it writes (and first clears)
                     * its output while every block still reads the input. */
                    int32_t last = b.v[in_node].last;
                    bool ok = last < v->def;
                    if (!ok && last == v->def && p->steps[v->def].kind == GV_STEP_FUSED &&
                        v->epi_group < 0 && same_shape(on, &g->nodes[p->steps[v->def].node]))
                        ok = true;
                    if (!ok) continue;
                    base = gv_base_input((int32_t)i);
                    b.read_at_end[i] = true; /* claimed */
                    p->out_alias[j] = (int32_t)i;
                    p->donated++;
                    found = true;
                }
            v->buf = (gv_bufref){base, 0};
            v->placed = true;
            v->last = ns + (int32_t)p->nout;
        } else {
            ncopies++;
            read_at(&b, o_id, ns + (int32_t)j);
        }
    }
    gv_status cst = find_carries(p, g, b.donated, carried, ipaths, opaths);
    free(carried);
    gv_tree_paths_free(ipaths, nip), gv_tree_paths_free(opaths, nop);
    if (cst != GV_OK) {
        free(groot);
        goto fail;
    }
    if (place_arena(&b) != GV_OK) {
        free(groot);
        goto fail;
    }
    /* materialise the steps' operands */
    for (int32_t k = 0; k < ns; k++) {
        gv_step *s = &p->steps[k];
        const gv_node *nd = &g->nodes[s->node];
        if (s->kind == GV_STEP_FUSED) {
            int32_t grp = b.v[s->node].group;
            if (build_fused(&b, grp, s->node, s) != GV_OK) {
                free(groot);
                goto fail;
            }
            continue;
        }
        s->out = b.v[s->node].buf;
        s->in = malloc(((size_t)nd->nin + 1) * sizeof *s->in);
        if (!s->in) {
            free(groot);
            gv_error(GV_ERR_NOMEM, "gv_plan_compile: out of memory");
            goto fail;
        }
        for (int q = 0; q < nd->nin; q++) s->in[q] = buf_of(&b, nd->in[q]);
    }
    /* psums across processes run on the communication thread from their
     * own step until their first reader's (outputs: before the copies) */
    if (gv_dist_async_enabled()) {
        if (!(p->async_steps = malloc(((size_t)ns + 1) * sizeof *p->async_steps))) {
            free(groot);
            gv_error(GV_ERR_NOMEM, "gv_plan_compile: out of memory");
            goto fail;
        }
        for (int32_t k = 0; k < ns; k++) {
            gv_step *s = &p->steps[k];
            if (s->kind != GV_STEP_REF || g->nodes[s->node].op != GV_OP_PSUM) continue;
            int32_t first = b.v[root_of(&b, s->node)].first;
            s->kind = GV_STEP_PSUM_ASYNC;
            s->deadline = first < ns ? first : ns;
            p->async_steps[p->nasync++] = k;
        }
    }
    for (size_t j = 0; j < p->nout; j++) {
        int32_t o_id = p->opt.out_ids[j];
        if (b.v[o_id].kind == V_STEP && b.v[o_id].buf.base != GV_BASE_ARENA &&
            (b.v[o_id].buf.base == gv_base_output(p, (int32_t)j) || p->out_alias[j] >= 0))
            continue;
        if (g->nodes[o_id].op == GV_OP_INPUT && p->out_alias[j] >= 0) continue; /* passed through */
        gv_step *s = &p->steps[p->nsteps++];
        s->kind = GV_STEP_COPY;
        s->node = o_id;
        s->nin = 1;
        s->in = malloc(sizeof *s->in);
        if (!s->in) {
            free(groot);
            gv_error(GV_ERR_NOMEM, "gv_plan_compile: out of memory");
            goto fail;
        }
        s->in[0] = buf_of(&b, o_id);
        s->out = (gv_bufref){gv_base_output(p, (int32_t)j), 0};
        s->copy_bytes = b.v[o_id].bytes;
    }
    free(groot);
    (void)ncopies;
    /* run-time memory, all allocated now */
    p->nbases = 1 + (int32_t)(p->nin + p->nout) + p->nconsts;
    p->bases = calloc((size_t)p->nbases, sizeof *p->bases);
    p->arena = aligned_alloc(64, p->arena_bytes ? p->arena_bytes : 64);
    int maxregs = 1;
    for (int32_t k = 0; k < p->nsteps; k++)
        if (p->steps[k].kind == GV_STEP_FUSED && p->steps[k].fused.nregs > maxregs)
            maxregs = p->steps[k].fused.nregs;
    p->scratch = aligned_alloc(64, (size_t)p->threads * (size_t)maxregs * GV_FBLOCK * sizeof(float));
    int64_t conv_floats = 0;
    for (int32_t k = 0; k < p->nsteps; k++)
        if (p->steps[k].kind == GV_STEP_CONV) {
            const gv_node *cn = &g->nodes[p->steps[k].node];
            int64_t f = gv_conv_scratch_floats(cn, &g->nodes[cn->in[1]]);
            if (f > conv_floats) conv_floats = f;
        }
    if (conv_floats > 0) {
        p->conv_scratch = malloc((size_t)conv_floats * sizeof(float));
        if (!p->conv_scratch) {
            gv_error(GV_ERR_NOMEM, "gv_plan_compile: out of memory for %lld floats of conv patches",
                     (long long)conv_floats);
            goto fail;
        }
    }
    p->in_flat = calloc(p->nin + 1, sizeof *p->in_flat);
    p->out_flat = calloc(p->nout + 1, sizeof *p->out_flat);
    p->in_leaves = calloc(p->nin + 1, sizeof *p->in_leaves);
    p->out_leaves = calloc(p->nout + 1, sizeof *p->out_leaves);
    p->out_sig = calloc(p->nout + 1, sizeof *p->out_sig);
    if (!p->bases || !p->arena || !p->scratch || !p->in_flat || !p->out_flat || !p->in_leaves ||
        !p->out_leaves || !p->out_sig) {
        gv_error(GV_ERR_NOMEM, "gv_plan_compile: out of memory for a %zu-byte arena",
                 p->arena_bytes);
        goto fail;
    }
    for (size_t j = 0; j < p->nout; j++) {
        const gv_node *on = &g->nodes[p->opt.out_ids[j]];
        p->out_sig[j] = gv_tensor_zeros(on->dtype, on->rank, on->shape);
        if (!p->out_sig[j]) goto fail;
    }
    for (int32_t k = 0; k < p->nconsts; k++)
        p->bases[gv_base_const(p, k)] = (void *)gv_tensor_data_const(p->consts[k]);
    for (int32_t i = 0; i < n; i++) free(b.cons[i]);
    free(b.v), free(b.live), free(b.ncons), free(b.cons), free(b.is_out), free(b.group_last);
    free(b.donated), free(b.read_at_end);
    return p;
fail:
    if (b.cons)
        for (int32_t i = 0; i < b.n; i++) free(b.cons[i]);
    free(b.v), free(b.live), free(b.ncons), free(b.cons), free(b.is_out), free(b.group_last);
    free(b.donated), free(b.read_at_end);
    gv_plan_free(p);
    return NULL;
}

void gv_plan_free(gv_plan *p) {
    if (!p) return;
    for (int32_t k = 0; k < p->nsteps; k++) {
        gv_step *s = &p->steps[k];
        free(s->in);
        if (s->kind == GV_STEP_FUSED) {
            for (int l = 0; l < s->fused.nload; l++) free(s->fused.load[l].div);
            free(s->fused.instr), free(s->fused.load), free(s->fused.store), free(s->fused.consts);
            free(s->fused.uniform), free(s->fused.has_const);
            free(s->fused.red);
        }
    }
    free(p->steps);
    free(p->prof_ns);
    free(p->async_steps);
    for (int32_t k = 0; k < p->nconsts; k++) gv_tensor_free(p->consts[k]);
    free(p->consts);
    free(p->bases);
    free(p->arena);
    free(p->scratch);
    free(p->conv_scratch);
    free(p->in_flat);
    free(p->in_leaves);
    free(p->out_leaves);
    free(p->sig);
    if (p->out_sig)
        for (size_t j = 0; j < p->nout; j++) gv_tensor_free(p->out_sig[j]);
    free(p->out_sig);
    free(p->out_alias);
    free(p->carry);
    free(p->out_flat);
    gv_tree_free(p->in_structure);
    gv_tree_free(p->out_structure);
    gv_graph_free(p->opt.graph);
    free(p->opt.out_ids);
    free(p);
}
