/* Running a plan, its output trees, stats and dump; and gv_jit, the
 * shape-keyed cache of plans. */
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "compile_internal.h"
#include "dist/dist_internal.h"
#include "grove/eval_shape.h"
#include "core/error.h"
#include "tree/tree_internal.h"

static inline void *ptr(void *const *bases, gv_bufref r) {
    return (char *)bases[r.base] + r.offset;
}

static void run_step(gv_plan *p, int32_t k) {
    void *const *bases = p->bases;
    const gv_graph *g = p->opt.graph;
    {
        const gv_step *s = &p->steps[k];
        switch (s->kind) {
        case GV_STEP_FUSED: gv_fused_run(&s->fused, bases, p->scratch, p->threads); break;
        case GV_STEP_GEMM: {
            const gv_node *n = &g->nodes[s->node];
            gv_gemm_run(n, &g->nodes[n->in[0]], &g->nodes[n->in[1]], ptr(bases, s->in[0]),
                        ptr(bases, s->in[1]), ptr(bases, s->out), p->threads);
            break;
        }
        case GV_STEP_CONV: {
            const gv_node *n = &g->nodes[s->node];
            gv_conv_run(n, &g->nodes[n->in[0]], &g->nodes[n->in[1]], ptr(bases, s->in[0]),
                        ptr(bases, s->in[1]), ptr(bases, s->out), p->conv_scratch, p->threads);
            break;
        }
        case GV_STEP_REDUCE:
            gv_reduce_run(g->nodes[s->node].op, s->rdims, ptr(bases, s->in[0]), ptr(bases, s->out));
            break;
        case GV_STEP_REF: {
            const gv_node *n = &g->nodes[s->node];
            const gv_node *ins[n->nin > 0 ? n->nin : 1];
            const void *in[n->nin > 0 ? n->nin : 1];
            for (int q = 0; q < n->nin; q++) {
                ins[q] = &g->nodes[n->in[q]];
                in[q] = ptr(bases, s->in[q]);
            }
            gv_opdefs[n->op].kernel(n, ins, in, ptr(bases, s->out));
            break;
        }
        case GV_STEP_COPY:
            memmove(ptr(bases, s->out), ptr(bases, s->in[0]), s->copy_bytes);
            break;
        case GV_STEP_PSUM_ASYNC: {
            const gv_node *n = &g->nodes[s->node];
            void *out = ptr(bases, s->out);
            const void *in = ptr(bases, s->in[0]);
            int64_t count = gv_node_size(n);
            if (in != out) memmove(out, in, (size_t)count * gv_dtype_size(n->dtype));
            gv_step *ms = &p->steps[k];
            ms->ticket = gv_dist_async_sum(out, count, n->dtype);
            ms->pending = true;
            break;
        }
        }
    }
}

static double now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return 1e9 * (double)ts.tv_sec + (double)ts.tv_nsec;
}

/* Wait for the psums in flight that step k reads (k = nsteps: all). */
static void wait_due(gv_plan *p, int32_t k) {
    for (int32_t j = 0; j < p->nasync; j++) {
        gv_step *s = &p->steps[p->async_steps[j]];
        if (s->pending && s->deadline <= k) {
            gv_dist_async_wait(s->ticket);
            s->pending = false;
        }
    }
}

static gv_status execute(gv_plan *p) {
    if (!p->prof_ns) {
        for (int32_t k = 0; k < p->nsteps; k++) {
            if (p->nasync) wait_due(p, k);
            run_step(p, k);
        }
        if (p->nasync) wait_due(p, p->nsteps);
        return GV_OK;
    }
    double t = now_ns();
    for (int32_t k = 0; k < p->nsteps; k++) {
        if (p->nasync) wait_due(p, k);
        run_step(p, k);
        double t1 = now_ns();
        p->prof_ns[k] += t1 - t;
        t = t1;
    }
    if (p->nasync) wait_due(p, p->nsteps);
    p->prof_runs++;
    return GV_OK;
}

/* Check one input tensor against the compiled signature (cheap: no names). */
static gv_status check_input(size_t i, const gv_tensor *t, const gv_tensor *want) {
    if (!t) return gv_error(GV_ERR_ARG, "gv_plan_run: input leaf %zu is not a tensor", i);
    if (gv_tensor_is_abstract(t))
        return gv_error(GV_ERR_ARG, "gv_plan_run: input leaf %zu is shape-only "
                        "(gv_shape_dtype_struct) and has no data", i);
    if (gv_tensor_dtype(t) == gv_tensor_dtype(want) && gv_tensor_same_shape(t, want)) return GV_OK;
    char *a = gv_shape_str(gv_tensor_rank(t), gv_tensor_shape(t));
    char *b = gv_shape_str(gv_tensor_rank(want), gv_tensor_shape(want));
    gv_status st = gv_error(GV_ERR_SHAPE, "gv_plan_run: input leaf %zu is %s%s, the plan was "
                            "compiled for %s%s (compile again for new shapes)", i,
                            gv_dtype_name(gv_tensor_dtype(t)), a ? a : "?",
                            gv_dtype_name(gv_tensor_dtype(want)), b ? b : "?");
    free(a), free(b);
    return st;
}

/* Leaf nodes in flatten order, without allocating. Returns the count. */
static size_t leaves_into(const gv_tree *t, gv_tree **out, size_t at, size_t cap) {
    if (t->kind == GV_TREE_LEAF) {
        if (at < cap) out[at] = (gv_tree *)t;
        return at + 1;
    }
    for (size_t j = 0; j < t->n; j++) at = leaves_into(t->kids[gv_tree_flat_index(t, j)], out, at, cap);
    return at;
}

static gv_status bind_and_run(gv_plan *p, gv_tensor *const *in, gv_tensor *const *out) {
    for (size_t i = 0; i < p->nin; i++) {
        gv_status st = check_input(i, in[i], p->sig[i]);
        if (st != GV_OK) return st;
        p->bases[gv_base_input((int32_t)i)] = gv_tensor_data(in[i]);
    }
    p->bases[GV_BASE_ARENA] = p->arena;
    gv_status st = execute(p);
    /* donated inputs carried to their new values */
    for (int32_t k = 0; st == GV_OK && k < p->ncarry; k++) {
        const gv_carry *c = &p->carry[k];
        if (in[c->in] != out[c->out])
            memcpy(gv_tensor_data(in[c->in]), gv_tensor_data_const(out[c->out]), c->bytes);
    }
    return st;
}

gv_status gv_plan_run_flat(gv_plan *p, gv_tensor *const *inputs, gv_tensor **outputs) {
    if (!p || (p->nin && !inputs) || (p->nout && !outputs))
        return gv_error(GV_ERR_ARG, "gv_plan_run_flat: NULL argument");
    for (size_t j = 0; j < p->nout; j++) {
        if (p->out_alias[j] >= 0) outputs[j] = inputs[p->out_alias[j]];
        if (!outputs[j]) return gv_error(GV_ERR_ARG, "gv_plan_run_flat: output %zu is NULL", j);
        if (gv_tensor_is_abstract(outputs[j]))
            return gv_error(GV_ERR_ARG, "gv_plan_run_flat: output %zu is shape-only", j);
        p->bases[gv_base_output(p, (int32_t)j)] = gv_tensor_data(outputs[j]);
    }
    return bind_and_run(p, inputs, outputs);
}

gv_status gv_plan_run(gv_plan *p, const gv_tree *inputs, gv_tree *outputs) {
    if (!p || !inputs || !outputs) return gv_error(GV_ERR_ARG, "gv_plan_run: NULL argument");
    size_t nin = leaves_into(inputs, p->in_leaves, 0, p->nin);
    if (nin != p->nin)
        return gv_error(GV_ERR_STRUCTURE, "gv_plan_run: %zu input leaves, the plan takes %zu", nin,
                        p->nin);
    size_t nout = leaves_into(outputs, p->out_leaves, 0, p->nout);
    if (nout != p->nout)
        return gv_error(GV_ERR_STRUCTURE, "gv_plan_run: %zu output leaves, the plan makes %zu",
                        nout, p->nout);
    for (size_t i = 0; i < p->nin; i++)
        p->in_flat[i] = p->in_leaves[i]->leaf_kind == GV_LEAF_TENSOR ? p->in_leaves[i]->leaf.tensor : NULL;
    for (size_t j = 0; j < p->nout; j++) {
        gv_tree *leaf = p->out_leaves[j];
        if (leaf->leaf_kind != GV_LEAF_TENSOR || gv_tensor_is_abstract(leaf->leaf.tensor))
            return gv_error(GV_ERR_ARG, "gv_plan_run: output leaf %zu is not a tensor with data", j);
        if (p->out_alias[j] >= 0) {
            /* the output IS the donated input: swap references, no copy */
            gv_tensor *src = p->in_flat[p->out_alias[j]];
            if (src && leaf->leaf.tensor != src) {
                gv_tensor_retain(src);
                gv_tensor_free(leaf->leaf.tensor);
                leaf->leaf.tensor = src;
            }
        } else if (!gv_tensor_same_shape(leaf->leaf.tensor, p->out_sig[j]) ||
                   gv_tensor_dtype(leaf->leaf.tensor) != gv_tensor_dtype(p->out_sig[j])) {
            return gv_error(GV_ERR_SHAPE, "gv_plan_run: output leaf %zu does not have the plan's "
                            "output shape (use gv_plan_new_outputs)", j);
        }
        p->bases[gv_base_output(p, (int32_t)j)] = gv_tensor_data(leaf->leaf.tensor);
        p->out_flat[j] = leaf->leaf.tensor;
    }
    gv_status st = bind_and_run(p, p->in_flat, p->out_flat);
    /* a shape-only input: name its path (on the error path only, the run
     * itself walks no paths) */
    if (st == GV_ERR_ARG) gv_tree_check_concrete(inputs, "gv_plan_run: inputs");
    return st;
}

static gv_tree *new_output_leaf(const gv_tree *leaf, size_t index, void *ud) {
    gv_plan *p = ud;
    gv_tensor *t = gv_tensor_zeros(gv_tensor_dtype(p->out_sig[index]),
                                   gv_tensor_rank(p->out_sig[index]),
                                   gv_tensor_shape(p->out_sig[index]));
    if (!t) return NULL;
    gv_tree *l = gv_tree_new_leaf(t);
    gv_tensor_free(t);
    return l;
}

gv_tree *gv_plan_new_outputs(const gv_plan *p) {
    if (!p) {
        gv_error(GV_ERR_ARG, "gv_plan_new_outputs: plan is NULL");
        return NULL;
    }
    return gv_tree_rebuild_indexed(p->out_structure, new_output_leaf, (void *)p);
}

gv_plan_stats gv_plan_get_stats(const gv_plan *p) {
    gv_plan_stats s = {0};
    if (!p) return s;
    s.nodes_traced = p->opt.nodes_before;
    s.nodes_optimized = p->opt.nodes_after;
    s.kernels = p->nsteps;
    s.fused_kernels = p->fused_kernels;
    s.gemms = p->gemms;
    s.arena_bytes = p->arena_bytes;
    s.intermediate_bytes = p->intermediate_bytes;
    s.donated_outputs = p->donated;
    for (int32_t k = 0; k < p->nsteps; k++) {
        s.precompiled_kernels += p->steps[k].kind == GV_STEP_FUSED && p->steps[k].fused.specialised;
        s.overlapped_collectives += p->steps[k].kind == GV_STEP_PSUM_ASYNC;
    }
    return s;
}

/* One kernel's line of the dump: what runs, on which buffers. */
static void step_line(gv_tree_sb *sb, const gv_plan *p, int32_t k) {
    const gv_graph *g = p->opt.graph;
    const gv_step *s = &p->steps[k];
    const gv_node *n = &g->nodes[s->node];
    char *shape = gv_shape_str(n->rank, n->shape);
    switch (s->kind) {
    case GV_STEP_FUSED:
        gv_tree_sb_printf(sb, "%3d fused   %d ops, %d loads, %d stores, %d reductions over "
                          "%lld elements%s%s%s:", k, s->fused.ninstr, s->fused.nload,
                          s->fused.nstore, s->fused.nred, (long long)s->fused.size,
                          s->fused.specialised ? " (pre-compiled " : "",
                          s->fused.specialised ? s->fused.shape.name : "",
                          s->fused.specialised ? ")" : "");
        for (int i = 0, shown = 0; i < s->fused.ninstr; i++) {
            int op = s->fused.instr[i].op;
            if (op == GV_FOP_ALIAS || op == GV_FOP_LOAD) continue;
            if (shown++ == 10) {
                gv_tree_sb_printf(sb, " ...");
                break;
            }
            gv_tree_sb_printf(sb, " %s", op == GV_FOP_COPY ? "copy" : gv_opdefs[op].name);
        }
        for (int i = 0; i < s->fused.nred; i++)
            gv_tree_sb_printf(sb, " +%s", gv_opdefs[s->fused.red[i].op].name);
        gv_tree_sb_printf(sb, "\n");
        break;
    case GV_STEP_GEMM:
        gv_tree_sb_printf(sb, "%3d gemm    %s%s%s -> base %d +%zu\n", k, shape,
                          n->iattr[0] ? " A^T" : "", n->iattr[1] ? " B^T" : "", s->out.base,
                          s->out.offset);
        break;
    case GV_STEP_REDUCE:
    case GV_STEP_CONV:
    case GV_STEP_REF:
    case GV_STEP_PSUM_ASYNC:
        gv_tree_sb_printf(sb, "%3d %-7s %s -> base %d +%zu\n", k, gv_opdefs[n->op].name, shape,
                          s->out.base, s->out.offset);
        break;
    case GV_STEP_COPY:
        gv_tree_sb_printf(sb, "%3d copy    %zu bytes -> base %d\n", k, s->copy_bytes, s->out.base);
        break;
    }
    free(shape);
}

char *gv_plan_dump(const gv_plan *p) {
    if (!p) {
        gv_error(GV_ERR_ARG, "gv_plan_dump: plan is NULL");
        return NULL;
    }
    gv_tree_sb sb = {0};
    for (int32_t k = 0; k < p->nsteps; k++) step_line(&sb, p, k);
    gv_tree_sb_printf(&sb, "arena %zu bytes (intermediates %zu without reuse)\n", p->arena_bytes,
                      p->intermediate_bytes);
    return gv_tree_sb_finish(&sb, "gv_plan_dump");
}

/* ---- profiling ---- */

gv_status gv_plan_profile_enable(gv_plan *p, bool on) {
    if (!p) return gv_error(GV_ERR_ARG, "gv_plan_profile_enable: plan is NULL");
    free(p->prof_ns);
    p->prof_ns = NULL;
    p->prof_runs = 0;
    if (on && !(p->prof_ns = calloc((size_t)p->nsteps + 1, sizeof *p->prof_ns)))
        return gv_error(GV_ERR_NOMEM, "gv_plan_profile_enable: out of memory");
    return GV_OK;
}

static const double *prof_key;
static int by_time_desc(const void *x, const void *y) {
    double a = prof_key[*(const int32_t *)x], b = prof_key[*(const int32_t *)y];
    return a < b ? 1 : a > b ? -1 : *(const int32_t *)x - *(const int32_t *)y;
}

char *gv_plan_profile_report(const gv_plan *p) {
    if (!p || !p->prof_ns) {
        gv_error(GV_ERR_ARG, "gv_plan_profile_report: %s",
                 p ? "profiling is not enabled (gv_plan_profile_enable)" : "plan is NULL");
        return NULL;
    }
    int32_t *order = malloc(((size_t)p->nsteps + 1) * sizeof *order);
    if (!order) {
        gv_error(GV_ERR_NOMEM, "gv_plan_profile_report: out of memory");
        return NULL;
    }
    double total = 0, kind_ns[6] = {0};
    int kind_n[6] = {0};
    for (int32_t k = 0; k < p->nsteps; k++) {
        order[k] = k;
        total += p->prof_ns[k];
        kind_ns[p->steps[k].kind] += p->prof_ns[k];
        kind_n[p->steps[k].kind]++;
    }
    prof_key = p->prof_ns;
    qsort(order, (size_t)p->nsteps, sizeof *order, by_time_desc);
    double runs = p->prof_runs > 0 ? (double)p->prof_runs : 1;
    gv_tree_sb sb = {0};
    gv_tree_sb_printf(&sb, "%lld runs, %.1f us per run in %d kernels\n", (long long)p->prof_runs,
                      total / runs / 1e3, p->nsteps);
    static const char *kinds[6] = {"fused", "gemm", "conv", "reduce", "reference", "copy"};
    for (int i = 0; i < 6; i++)
        if (kind_n[i])
            gv_tree_sb_printf(&sb, "  %-9s %3d kernels %10.1f us %5.1f%%\n", kinds[i], kind_n[i],
                              kind_ns[i] / runs / 1e3, total > 0 ? 100 * kind_ns[i] / total : 0.0);
    gv_tree_sb_printf(&sb, "us/run   share  kernel\n");
    for (int32_t i = 0; i < p->nsteps; i++) {
        int32_t k = order[i];
        gv_tree_sb_printf(&sb, "%8.2f %5.1f%%  ", p->prof_ns[k] / runs / 1e3,
                          total > 0 ? 100 * p->prof_ns[k] / total : 0.0);
        step_line(&sb, p, k);
    }
    free(order);
    return gv_tree_sb_finish(&sb, "gv_plan_profile_report");
}

/* ---- jit ---- */

typedef struct jit_entry {
    gv_tree *signature;  /* example inputs (shapes, dtypes, structure) */
    gv_plan *plan;
    gv_tree *outputs;
} jit_entry;

struct gv_jit {
    gv_trace_fn fn;
    void *userdata;
    gv_plan_options opts;   /* its arrays are the jit's own copies */
    int *argnums;
    char **names;           /* donate_argnames, then donate paths */
    jit_entry *entries;
    int n, cap;
    int last;       /* the entry used last (-1: none) */
    int compiles;
};

/* The options outlive the caller's arrays (often compound literals). */
static gv_status copy_options(gv_jit *j, const gv_plan_options *o) {
    int nnum = o->donate_argnums.n > 0 ? o->donate_argnums.n : 0;
    int nname = o->donate_argnames.n > 0 ? o->donate_argnames.n : 0;
    int npath = o->ndonate > 0 ? o->ndonate : 0;
    if ((nnum && !o->donate_argnums.v) || (nname && !o->donate_argnames.v) || (npath && !o->donate))
        return gv_error(GV_ERR_ARG, "gv_jit_new: a donation list is NULL with a count");
    j->opts = *o;
    j->argnums = malloc(((size_t)nnum + 1) * sizeof *j->argnums);
    j->names = calloc((size_t)(nname + npath) + 1, sizeof *j->names);
    if (!j->argnums || !j->names) return gv_error(GV_ERR_NOMEM, "gv_jit_new: out of memory");
    if (nnum) memcpy(j->argnums, o->donate_argnums.v, (size_t)nnum * sizeof *j->argnums);
    for (int i = 0; i < nname + npath; i++) {
        const char *s = i < nname ? o->donate_argnames.v[i] : o->donate[i - nname];
        if (!s) return gv_error(GV_ERR_ARG, "gv_jit_new: donated name %d is NULL", i);
        if (!(j->names[i] = strdup(s))) return gv_error(GV_ERR_NOMEM, "gv_jit_new: out of memory");
    }
    j->opts.donate_argnums = (gv_argnums){j->argnums, nnum};
    j->opts.donate_argnames = (gv_argnames){(const char *const *)j->names, nname};
    j->opts.donate = (const char *const *)j->names + nname;
    j->opts.ndonate = npath;
    return GV_OK;
}

gv_jit *gv_jit_new(gv_trace_fn fn, void *userdata, const gv_plan_options *opts) {
    if (!fn) {
        gv_error(GV_ERR_ARG, "gv_jit_new: fn is NULL");
        return NULL;
    }
    gv_jit *j = calloc(1, sizeof *j);
    if (!j) {
        gv_error(GV_ERR_NOMEM, "gv_jit_new: out of memory");
        return NULL;
    }
    j->fn = fn;
    j->userdata = userdata;
    j->last = -1;
    if (opts && copy_options(j, opts) != GV_OK) {
        gv_jit_free(j);
        return NULL;
    }
    return j;
}

void gv_jit_free(gv_jit *j) {
    if (!j) return;
    for (int i = 0; j->names && i < j->opts.donate_argnames.n + j->opts.ndonate; i++)
        free(j->names[i]);
    free(j->names);
    free(j->argnums);
    for (int i = 0; i < j->n; i++) {
        gv_tree_free(j->entries[i].signature);
        gv_plan_free(j->entries[i].plan);
        gv_tree_free(j->entries[i].outputs);
    }
    free(j->entries);
    free(j);
}

int gv_jit_num_compiles(const gv_jit *j) { return j ? j->compiles : 0; }

/* Does in have sig's structure, keys, leaf kinds, shapes and dtypes? The
 * jit's cache probe: no allocation, no error messages (a different
 * signature is an answer, not an error). */
static bool same_signature(const gv_tree *sig, const gv_tree *in) {
    if (sig->kind != in->kind || sig->n != in->n) return false;
    if (sig->kind == GV_TREE_LEAF) {
        if (sig->leaf_kind != in->leaf_kind) return false;
        if (sig->leaf_kind != GV_LEAF_TENSOR) return true; /* labels: refused when run */
        const gv_tensor *a = sig->leaf.tensor, *b = in->leaf.tensor;
        return gv_tensor_dtype(a) == gv_tensor_dtype(b) && gv_tensor_same_shape(a, b);
    }
    for (size_t i = 0; i < sig->n; i++) {
        size_t a = gv_tree_flat_index(sig, i), b = gv_tree_flat_index(in, i);
        if (sig->kind == GV_TREE_DICT && strcmp(sig->keys[a], in->keys[b])) return false;
        if (!same_signature(sig->kids[a], in->kids[b])) return false;
    }
    return true;
}

static jit_entry *find_entry(gv_jit *j, const gv_tree *inputs) {
    /* the last one used first: a training loop calls with one signature */
    if (j->last >= 0 && same_signature(j->entries[j->last].signature, inputs))
        return &j->entries[j->last];
    for (int i = 0; i < j->n; i++)
        if (i != j->last && same_signature(j->entries[i].signature, inputs)) {
            j->last = i;
            return &j->entries[i];
        }
    return NULL;
}

static jit_entry *compile_entry(gv_jit *j, const gv_tree *inputs) {
    if (j->n == j->cap) {
        int cap = j->cap ? 2 * j->cap : 4;
        jit_entry *ne = realloc(j->entries, (size_t)cap * sizeof *ne);
        if (!ne) {
            gv_error(GV_ERR_NOMEM, "gv_jit: out of memory");
            return NULL;
        }
        j->entries = ne;
        j->cap = cap;
    }
    gv_fn *f = gv_trace(j->fn, j->userdata, inputs);
    if (!f) return NULL;
    gv_plan *p = gv_plan_compile(f, &j->opts);
    gv_fn_free(f);
    if (!p) return NULL;
    jit_entry ne = {gv_tree_clone(inputs), p, gv_plan_new_outputs(p)};
    if (!ne.signature || !ne.outputs) {
        gv_tree_free(ne.signature), gv_tree_free(ne.outputs), gv_plan_free(p);
        return NULL;
    }
    j->entries[j->n] = ne;
    j->last = j->n;
    j->compiles++;
    return &j->entries[j->n++];
}

/* The entry for inputs' signature, compiled now if none is cached. */
static jit_entry *entry_for(gv_jit *j, const gv_tree *inputs, const char *what) {
    if (!j || !inputs) {
        gv_error(GV_ERR_ARG, "%s: %s is NULL", what, j ? "inputs" : "jit");
        return NULL;
    }
    jit_entry *e = find_entry(j, inputs);
    return e ? e : compile_entry(j, inputs);
}

gv_status gv_jit_call(gv_jit *j, const gv_tree *inputs, gv_tree **outputs) {
    if (outputs) *outputs = NULL;
    jit_entry *e = entry_for(j, inputs, "gv_jit_call");
    if (!e) return gv_last_status();
    if (outputs) *outputs = e->outputs;
    return gv_plan_run(e->plan, inputs, e->outputs);
}

gv_tree *gv_jit_outputs(gv_jit *j, const gv_tree *inputs) {
    jit_entry *e = entry_for(j, inputs, "gv_jit_outputs");
    return e ? e->outputs : NULL;
}

const gv_plan *gv_jit_plan(gv_jit *j, const gv_tree *inputs) {
    jit_entry *e = entry_for(j, inputs, "gv_jit_plan");
    return e ? e->plan : NULL;
}
