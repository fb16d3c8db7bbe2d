/* The graph passes: the needed nodes are re-emitted into a fresh graph in
 * order, and on the way each one is constant-folded, simplified (x*1, x/1,
 * x+(-0), x-(+0): the identities that hold for every IEEE value, -0 and NaN
 * included; double negation, reshape/transpose chains, transposes folded
 * into matmul flags, stop_gradient erased) or merged with an identical
 * earlier node (CSE). Nodes nobody needs are never emitted (DCE), so
 * whatever only feeds a zeros_like (a frozen parameter's gradient) is never
 * computed: a FULL has no operands. A last pass copies the live nodes once
 * more, giving each fused reader of a constant its own copy. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "compile_internal.h"
#include "dist/dist_internal.h"
#include "core/error.h"

enum { FOLD_MAX_ELEMENTS = 1 << 16 };

typedef struct cse_table {
    int32_t *slots; /* new node ids, -1 empty */
    size_t cap;
} cse_table;

static uint64_t mix(uint64_t h, uint64_t v) {
    h ^= v + 0x9E3779B97F4A7C15ull + (h << 6) + (h >> 2);
    return h;
}

static uint64_t node_hash(const gv_node *n) {
    uint64_t h = mix(0, n->op);
    h = mix(h, (uint64_t)n->dtype);
    for (int i = 0; i < n->rank; i++) h = mix(h, (uint64_t)n->shape[i]);
    for (int i = 0; i < n->nin; i++) h = mix(h, (uint64_t)n->in[i]);
    for (int i = 0; i < n->nattr; i++) h = mix(h, (uint64_t)n->attr[i]);
    uint64_t f[2];
    memcpy(f, n->fattr, sizeof f);
    h = mix(mix(h, f[0]), f[1]);
    h = mix(mix(h, (uint64_t)n->iattr[0]), (uint64_t)n->iattr[1]);
    return mix(h, (uint64_t)(uintptr_t)n->tensor);
}

static bool node_equal(const gv_node *a, const gv_node *b) {
    if (a->op != b->op || a->dtype != b->dtype || a->rank != b->rank || a->nin != b->nin ||
        a->nattr != b->nattr || a->tensor != b->tensor)
        return false;
    if (memcmp(a->shape, b->shape, (size_t)a->rank * 8) || memcmp(a->in, b->in, (size_t)a->nin * 4) ||
        memcmp(a->attr, b->attr, (size_t)a->nattr * 8) || memcmp(a->fattr, b->fattr, sizeof a->fattr) ||
        memcmp(a->iattr, b->iattr, sizeof a->iattr))
        return false;
    return true;
}

/* Emit spec unless an identical node exists; returns the node id or -1. */
static int32_t emit_cse(gv_graph *g, cse_table *t, const gv_node_spec *s, bool cse) {
    gv_value v = gv_emit(g, s);
    if (!gv_value_ok(v)) return -1;
    if (!cse || s->op == GV_OP_INPUT) return v.id;
    const gv_node *n = &g->nodes[v.id];
    size_t mask = t->cap - 1, i = node_hash(n) & mask;
    for (; t->slots[i] >= 0; i = (i + 1) & mask)
        if (node_equal(&g->nodes[t->slots[i]], n)) {
            /* drop the duplicate we just appended (it is the last node) */
            gv_tensor_free(g->nodes[v.id].tensor);
            g->n--;
            return t->slots[i];
        }
    t->slots[i] = v.id;
    return v.id;
}

/* A node whose every element is the same known value. */
static bool splat(const gv_graph *g, int32_t id, double *v) {
    const gv_node *n = &g->nodes[id];
    if (n->op == GV_OP_FULL) {
        *v = n->fattr[0];
        return true;
    }
    if (n->op == GV_OP_CONST && gv_tensor_size(n->tensor) == 1) {
        gv_tensor_get_flat(n->tensor, 0, v);
        return true;
    }
    return false;
}

static bool same_shape(const gv_node *a, const gv_node *b) {
    return a->rank == b->rank && memcmp(a->shape, b->shape, (size_t)a->rank * 8) == 0;
}

static bool is_constant(const gv_node *n) {
    return n->op == GV_OP_CONST || n->op == GV_OP_FULL || n->op == GV_OP_IOTA;
}

/* Evaluate a node whose inputs are all constants; returns a new tensor. */
static gv_tensor *fold(const gv_graph *g, const gv_node *n) {
    gv_tensor *ins[n->nin > 0 ? n->nin : 1];
    const gv_node *innodes[n->nin > 0 ? n->nin : 1];
    const void *in[n->nin > 0 ? n->nin : 1];
    gv_tensor *out = gv_tensor_zeros(n->dtype, n->rank, n->shape);
    bool ok = out != NULL;
    for (int k = 0; k < n->nin; k++) {
        const gv_node *x = &g->nodes[n->in[k]];
        innodes[k] = x;
        if (x->op == GV_OP_CONST) {
            ins[k] = gv_tensor_retain(x->tensor);
        } else {
            ins[k] = gv_tensor_zeros(x->dtype, x->rank, x->shape);
            if (ins[k]) gv_opdefs[x->op].kernel(x, NULL, NULL, gv_tensor_data(ins[k]));
        }
        ok &= ins[k] != NULL;
        in[k] = ins[k] ? gv_tensor_data_const(ins[k]) : NULL;
    }
    if (ok) gv_opdefs[n->op].kernel(n, innodes, in, gv_tensor_data(out));
    for (int k = 0; k < n->nin; k++) gv_tensor_free(ins[k]);
    if (!ok) {
        gv_tensor_free(out);
        return NULL;
    }
    return out;
}

/* Transposes that only swap the last two axes can fold into matmul. */
static bool swaps_last_two(const gv_node *t) {
    if (t->op != GV_OP_TRANSPOSE || t->nattr < 2) return false;
    int r = t->nattr;
    for (int i = 0; i < r - 2; i++)
        if (t->attr[i] != i) return false;
    return t->attr[r - 2] == r - 1 && t->attr[r - 1] == r - 2;
}

/* Whether the planner fuses n into an elementwise pass (plan.c's fusible();
 * the two must agree, or a private constant below costs a kernel of its own). */
static bool fused_reader(const gv_graph *g, const gv_node *n) {
    if ((n->dtype != GV_F32 && n->dtype != GV_BOOL) || !gv_fused_supports(n->op) ||
        n->op == GV_OP_FULL)
        return false;
    if (!(gv_opdefs[n->op].flags & GV_OPF_ELEMENTWISE) && n->op != GV_OP_BROADCAST) return false;
    if (n->op == GV_OP_CAST && n->dtype != GV_F32) return false;
    for (int k = 0; k < n->nin; k++) {
        gv_dtype d = g->nodes[n->in[k]].dtype;
        if (d != GV_F32 && d != GV_BOOL) return false;
    }
    return true;
}

/* The nodes the outputs reach (live[i] = 1), *count of them; NULL when out
 * of memory. */
static char *count_live(const gv_graph *g, const int32_t *out_ids, size_t nout, int32_t *count) {
    char *live = calloc((size_t)g->n + 1, 1);
    if (!live) return NULL;
    for (size_t j = 0; j < nout; j++) live[out_ids[j]] = 1;
    *count = 0;
    for (int32_t i = g->n - 1; i >= 0; i--)
        if (live[i]) {
            ++*count;
            for (int k = 0; k < g->nodes[i].nin; k++) live[g->nodes[i].in[k]] = 1;
        }
    return live;
}

static gv_value copy_node(gv_graph *g, const gv_node *nd, const gv_value *ins) {
    gv_node_spec s = {.op = nd->op, .nin = nd->nin, .in = ins, .nattr = nd->nattr,
                      .attr = nd->attr, .tensor = nd->tensor, .dtype = nd->dtype,
                      .rank = nd->rank, .shape = nd->shape};
    memcpy(s.fattr, nd->fattr, sizeof s.fattr);
    memcpy(s.iattr, nd->iattr, sizeof s.iattr);
    return gv_emit(g, &s);
}

/* Private constants. A fused pass computes a float32 FULL it reads in its
 * registers, but only when that FULL is its own: one shared by several
 * passes (CSE merges every zeros_like of one shape) would be stored to the
 * arena by a pass of its own and loaded by each reader. So every fused
 * reader gets its own copy, placed just before it; the shared node stays
 * for readers that are not fused and for outputs (which are stored
 * anyway). Also leaves out the nodes that simplification made dead, so
 * the result holds the live nodes only. Returns a new graph and rewrites
 * out_ids, or NULL with the error set. */
static gv_graph *private_constants(const gv_graph *g, const char *live, int32_t *out_ids,
                                   size_t nout) {
    int32_t n = g->n;
    char *is_out = calloc((size_t)n + 1, 1), *shared = calloc((size_t)n + 1, 1);
    int32_t *map = malloc(((size_t)n + 1) * sizeof *map);
    gv_graph *pg = gv_graph_new();
    if (!is_out || !shared || !map || !pg) {
        free(is_out), free(shared), free(map), gv_graph_free(pg);
        gv_error(GV_ERR_NOMEM, "compile: out of memory");
        return NULL;
    }
    for (size_t j = 0; j < nout; j++) is_out[out_ids[j]] = shared[out_ids[j]] = 1;
    for (int32_t i = 0; i < n; i++) {
        const gv_node *nd = &g->nodes[i];
        if (!live[i]) continue;
        bool fused = fused_reader(g, nd);
        for (int k = 0; k < nd->nin; k++) {
            const gv_node *x = &g->nodes[nd->in[k]];
            if (x->op == GV_OP_FULL && (!fused || x->dtype != GV_F32)) shared[nd->in[k]] = 1;
        }
    }
    for (int32_t i = 0; i < n && pg->status == GV_OK; i++) {
        const gv_node *nd = &g->nodes[i];
        map[i] = -1;
        if (!live[i] || (nd->op == GV_OP_FULL && !shared[i])) continue;
        bool fused = fused_reader(g, nd);
        gv_value ins[nd->nin > 0 ? nd->nin : 1];
        for (int k = 0; k < nd->nin; k++) {
            int32_t x = nd->in[k];
            const gv_node *xn = &g->nodes[x];
            ins[k] = (gv_value){pg, map[x]};
            /* an output's readers keep reading it: its own store is needed anyway */
            if (!fused || xn->op != GV_OP_FULL || xn->dtype != GV_F32 || is_out[x]) continue;
            int q = 0; /* one copy per reader, also when it reads the constant twice */
            while (q < k && nd->in[q] != x) q++;
            ins[k] = q < k ? ins[q] : copy_node(pg, xn, NULL);
        }
        map[i] = copy_node(pg, nd, ins).id;
    }
    gv_status st = pg->status;
    if (st == GV_OK)
        for (size_t j = 0; j < nout; j++) out_ids[j] = map[out_ids[j]];
    else
        gv_error(st, "compile: %s", gv_graph_error(pg));
    free(is_out), free(shared), free(map);
    if (st != GV_OK) gv_graph_free(pg), pg = NULL;
    return pg;
}

/* Node i of g copied into pg, its inputs through map. */
static void copy_mapped(gv_graph *pg, const gv_graph *g, int32_t *map, int32_t i) {
    const gv_node *nd = &g->nodes[i];
    gv_value ins[nd->nin > 0 ? nd->nin : 1];
    for (int k = 0; k < nd->nin; k++) ins[k] = (gv_value){pg, map[nd->in[k]]};
    map[i] = copy_node(pg, nd, ins).id;
}

/* The nodes again in an order in which every psum, with the reshapes and
 * concatenations that only feed psums, comes as early as its inputs allow:
 * a bucket of grads starts travelling as soon as backward has made them,
 * while the rest of backward runs (the psum runs on the communication
 * thread, run.c). The other nodes keep their order. NULL with the error set. */
static gv_graph *schedule_collectives(const gv_graph *g, int32_t *out_ids, size_t nout) {
    int32_t n = g->n, ne = 0, emitted = 0;
    size_t cells = (size_t)n + 1;
    char *eager = calloc(cells, 1), *done = calloc(cells, 1), *is_out = calloc(cells, 1);
    int32_t *ncons = calloc(cells, sizeof *ncons), *neager = calloc(cells, sizeof *neager);
    int32_t *map = malloc(cells * sizeof *map), *elist = malloc(cells * sizeof *elist);
    gv_graph *pg = gv_graph_new();
    gv_status st = eager && done && is_out && ncons && neager && map && elist && pg
                 ? GV_OK : gv_error(GV_ERR_NOMEM, "compile: out of memory");
    for (size_t j = 0; !st && j < nout; j++) is_out[out_ids[j]] = 1;
    for (int32_t i = 0; !st && i < n; i++)
        for (int k = 0; k < g->nodes[i].nin; k++) ncons[g->nodes[i].in[k]]++;
    /* eager: psums, and reshapes/concatenations all of whose readers are eager */
    for (int32_t i = n - 1; !st && i >= 0; i--) {
        const gv_node *nd = &g->nodes[i];
        bool feeder = (nd->op == GV_OP_RESHAPE || nd->op == GV_OP_CONCAT) && ncons[i] > 0 &&
                      neager[i] == ncons[i] && !is_out[i];
        eager[i] = nd->op == GV_OP_PSUM || feeder;
        if (eager[i])
            for (int k = 0; k < nd->nin; k++) neager[nd->in[k]]++;
    }
    for (int32_t i = 0; !st && i < n; i++)
        if (eager[i]) elist[ne++] = i;
    for (int32_t i = 0; !st && i <= n && pg->status == GV_OK; i++) {
        if (i < n && !eager[i]) copy_mapped(pg, g, map, i), done[i] = 1, emitted++;
        /* every eager node whose inputs are all there, in order */
        for (bool more = true; more && pg->status == GV_OK;) {
            more = false;
            for (int32_t q = 0; q < ne; q++) {
                int32_t e = elist[q];
                const gv_node *nd = &g->nodes[e];
                bool ready = !done[e];
                for (int k = 0; k < nd->nin && ready; k++) ready = done[nd->in[k]];
                if (ready) copy_mapped(pg, g, map, e), done[e] = 1, emitted++, more = true;
            }
        }
    }
    if (!st && pg->status != GV_OK)
        st = gv_error(pg->status, "compile: %s", gv_graph_error(pg));
    else if (!st && emitted != n)
        st = gv_error(GV_ERR_INTERNAL, "compile: scheduling the collectives left %d nodes",
                      (int)(n - emitted));
    for (size_t j = 0; !st && j < nout; j++) out_ids[j] = map[out_ids[j]];
    free(eager), free(done), free(is_out), free(ncons), free(neager), free(map), free(elist);
    if (st) gv_graph_free(pg), pg = NULL;
    return pg;
}

gv_status gv_optimize(const gv_fn *fn, bool enabled, gv_opt_result *res) {
    const gv_graph *src = fn->graph;
    memset(res, 0, sizeof *res);
    int32_t n = src->n;
    char *need = calloc((size_t)n + 1, 1);
    int32_t *map = malloc(((size_t)n + 1) * sizeof *map);
    cse_table t = {NULL, 1};
    while (t.cap < 2 * (size_t)n + 16) t.cap <<= 1;
    t.slots = malloc(t.cap * sizeof *t.slots);
    gv_graph *g = gv_graph_new();
    res->out_ids = malloc((fn->nout + 1) * sizeof *res->out_ids);
    gv_status st = GV_OK;
    if (!need || !map || !t.slots || !g || !res->out_ids) {
        st = gv_error(GV_ERR_NOMEM, "compile: out of memory");
        goto done;
    }
    for (size_t i = 0; i < t.cap; i++) t.slots[i] = -1;
    for (size_t i = 0; i < fn->nout; i++) need[fn->out_ids[i]] = 1;
    for (int32_t i = n - 1; i >= 0; i--)
        if (need[i]) {
            res->nodes_before++;
            for (int k = 0; k < src->nodes[i].nin; k++) need[src->nodes[i].in[k]] = 1;
        }
    for (int32_t i = 0; i < n; i++) {
        map[i] = -1;
        if (!need[i]) continue;
        const gv_node *nd = &src->nodes[i];
        int32_t in[nd->nin > 0 ? nd->nin : 1];
        for (int k = 0; k < nd->nin; k++) in[k] = map[nd->in[k]];
        gv_node_spec s = {.op = nd->op, .nin = nd->nin, .nattr = nd->nattr, .attr = nd->attr,
                          .tensor = nd->tensor, .dtype = nd->dtype, .rank = nd->rank,
                          .shape = nd->shape};
        memcpy(s.fattr, nd->fattr, sizeof s.fattr);
        memcpy(s.iattr, nd->iattr, sizeof s.iattr);
        int64_t composed[nd->nattr > 0 ? nd->nattr : 1];
        if (enabled) {
            const gv_node *a = nd->nin > 0 ? &g->nodes[in[0]] : NULL;
            const gv_node *b = nd->nin > 1 ? &g->nodes[in[1]] : NULL;
            double v;
            int32_t same = -1;
            switch (nd->op) {
            case GV_OP_STOP_GRADIENT: same = in[0]; break;
            case GV_OP_MUL:
                if (splat(g, in[1], &v) && v == 1.0 && same_shape(a, nd)) same = in[0];
                else if (splat(g, in[0], &v) && v == 1.0 && same_shape(b, nd)) same = in[1];
                break;
            case GV_OP_ADD:
                /* x + (-0) is x for every x; x + (+0) turns -0 into +0, so it stays */
                if (splat(g, in[1], &v) && v == 0.0 && signbit(v) && same_shape(a, nd)) same = in[0];
                else if (splat(g, in[0], &v) && v == 0.0 && signbit(v) && same_shape(b, nd)) same = in[1];
                break;
            case GV_OP_SUB:
                /* x - (+0) is x + (-0): x for every x; x - (-0) is x + (+0), so it stays */
                if (splat(g, in[1], &v) && v == 0.0 && !signbit(v) && same_shape(a, nd))
                    same = in[0];
                break;
            case GV_OP_DIV:
                if (splat(g, in[1], &v) && v == 1.0 && same_shape(a, nd)) same = in[0];
                break;
            case GV_OP_NEG:
                if (a->op == GV_OP_NEG) same = a->in[0];
                break;
            case GV_OP_RESHAPE:
                if (a->op == GV_OP_RESHAPE) in[0] = a->in[0];
                if (same_shape(&g->nodes[in[0]], nd)) same = in[0];
                break;
            case GV_OP_TRANSPOSE:
                if (a->op == GV_OP_TRANSPOSE) {
                    bool id = true;
                    for (int k = 0; k < nd->nattr; k++) {
                        composed[k] = a->attr[nd->attr[k]];
                        id &= composed[k] == k;
                    }
                    if (id) same = a->in[0];
                    in[0] = a->in[0];
                    s.attr = composed;
                }
                break;
            case GV_OP_MATMUL:
                if (swaps_last_two(a)) in[0] = a->in[0], s.iattr[0] = !s.iattr[0];
                if (swaps_last_two(b)) in[1] = b->in[0], s.iattr[1] = !s.iattr[1];
                break;
            default: break;
            }
            if (same >= 0) {
                map[i] = same;
                continue;
            }
        }
        gv_value ins[nd->nin > 0 ? nd->nin : 1];
        bool all_const = nd->nin > 0;
        int64_t size = 1;
        for (int k = 0; k < nd->nin; k++) {
            ins[k] = (gv_value){g, in[k]};
            all_const &= is_constant(&g->nodes[in[k]]);
        }
        for (int k = 0; k < nd->rank; k++) size *= nd->shape[k];
        s.in = ins;
        gv_tensor *folded = NULL;
        /* a psum's value comes from the other processes: never folded */
        if (enabled && all_const && size <= FOLD_MAX_ELEMENTS && nd->op != GV_OP_INPUT &&
            nd->op != GV_OP_PSUM) {
            /* emit to get the exact node, evaluate it, then replace it */
            gv_value tmp = gv_emit(g, &s);
            if (gv_value_ok(tmp)) {
                folded = fold(g, &g->nodes[tmp.id]);
                g->n--; /* discard the temporary node */
            }
            if (folded) {
                gv_node_spec c = {.op = GV_OP_CONST, .tensor = folded, .dtype = nd->dtype,
                                  .rank = nd->rank, .shape = nd->shape};
                map[i] = emit_cse(g, &t, &c, false);
                gv_tensor_free(folded);
                if (map[i] < 0) break;
                continue;
            }
        }
        map[i] = emit_cse(g, &t, &s, enabled);
        if (map[i] < 0) break;
    }
    if (g->status != GV_OK) {
        st = gv_error(g->status, "compile: %s", gv_graph_error(g));
        goto done;
    }
    for (size_t j = 0; j < fn->nout; j++) res->out_ids[j] = map[fn->out_ids[j]];
    char *live = count_live(g, res->out_ids, fn->nout, &res->nodes_after);
    if (!live) {
        st = gv_error(GV_ERR_NOMEM, "compile: out of memory");
        goto done;
    }
    if (enabled) {
        gv_graph *pg = private_constants(g, live, res->out_ids, fn->nout);
        if (!pg) {
            free(live);
            st = gv_last_status();
            goto done;
        }
        gv_graph_free(g);
        g = pg;
    }
    free(live);
    bool has_psum = false;
    for (int32_t i = 0; i < g->n && !has_psum; i++) has_psum = g->nodes[i].op == GV_OP_PSUM;
    if (has_psum && gv_dist_async_enabled()) {
        gv_graph *sg = schedule_collectives(g, res->out_ids, fn->nout);
        if (!sg) {
            st = gv_last_status();
            goto done;
        }
        gv_graph_free(g);
        g = sg;
    }
    res->graph = g;
    g = NULL;
done:
    if (st != GV_OK) {
        free(res->out_ids);
        res->out_ids = NULL;
    }
    gv_graph_free(g);
    free(t.slots);
    free(map);
    free(need);
    return st;
}
