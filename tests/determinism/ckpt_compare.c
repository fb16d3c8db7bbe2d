/* ckpt_compare: are two checkpoints the same, bit for bit?
 *
 *   ckpt_compare A B
 *
 * A and B are each one of
 *   - a safetensors file (gv_checkpointer_restore),
 *   - a step directory (<dir>/<step>/: every *.safetensors in it),
 *   - a checkpoint manager's directory (its latest step, through
 *     gv_checkpoint_manager_restore; both must have the same latest step).
 * Every item (file) of A must be in B and the other way round, with the same
 * tree structure (kinds, keys, key order), and every tensor the same dtype,
 * shape and bytes: a memcmp, so -0.0 != 0.0 and NaNs compare by their bits,
 * as a determinism check should. Prints one line per differing tensor (how
 * many elements differ, the largest difference for floats, the first
 * differing element) and a summary.
 *
 * Exit: 0 identical, 1 different, 2 could not read or open (the message
 * names the file). */
#define _GNU_SOURCE
#include <dirent.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <grove/checkpoint.h>

enum { SAME = 0, DIFFERENT = 1, ERROR = 2 };

/* One side: its items as (name, tree), sorted by name. */
typedef struct side {
    const char *path;
    int64_t step; /* -1 unless a manager's directory */
    size_t n;
    char **names;
    gv_tree **trees;
} side;

static void side_free(side *s) {
    for (size_t i = 0; i < s->n; i++) free(s->names[i]), gv_tree_free(s->trees ? s->trees[i] : NULL);
    free(s->names), free(s->trees);
}

static int by_name(const void *a, const void *b) {
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static bool is_step_name(const char *s) { /* "0" or [1-9][0-9]*, as the manager names steps */
    if (!*s || (s[0] == '0' && s[1])) return false;
    for (; *s; s++)
        if (*s < '0' || *s > '9') return false;
    return true;
}

/* The sorted item names (file names less ".safetensors") of step directory dir. */
static int list_items(const char *dir, char ***names, size_t *n) {
    DIR *d = opendir(dir);
    if (!d) return fprintf(stderr, "ckpt_compare: cannot open '%s'\n", dir), ERROR;
    size_t cap = 0;
    *names = NULL, *n = 0;
    for (struct dirent *e; (e = readdir(d));) {
        size_t len = strlen(e->d_name), ext = strlen(".safetensors");
        if (len <= ext || strcmp(e->d_name + len - ext, ".safetensors")) continue;
        if (*n == cap) {
            cap = cap ? 2 * cap : 8;
            char **grown = realloc(*names, cap * sizeof **names);
            if (!grown) return closedir(d), fprintf(stderr, "ckpt_compare: out of memory\n"), ERROR;
            *names = grown;
        }
        if (!((*names)[*n] = strndup(e->d_name, len - ext)))
            return closedir(d), fprintf(stderr, "ckpt_compare: out of memory\n"), ERROR;
        ++*n;
    }
    closedir(d);
    if (*n) qsort(*names, *n, sizeof **names, by_name);
    return SAME;
}

static int has_steps(const char *dir) {
    DIR *d = opendir(dir);
    bool found = false;
    for (struct dirent *e; d && !found && (e = readdir(d));) found = is_step_name(e->d_name);
    if (d) closedir(d);
    return found;
}

static int load(side *s) {
    struct stat sb;
    if (stat(s->path, &sb) != 0)
        return fprintf(stderr, "ckpt_compare: '%s' does not exist\n", s->path), ERROR;
    s->step = -1;
    if (!S_ISDIR(sb.st_mode)) { /* one file */
        s->n = 1;
        s->names = calloc(1, sizeof *s->names), s->trees = calloc(1, sizeof *s->trees);
        if (!s->names || !s->trees) return fprintf(stderr, "ckpt_compare: out of memory\n"), ERROR;
        s->names[0] = strdup("(file)");
        s->trees[0] = gv_checkpointer_restore(s->path);
        if (!s->trees[0]) return fprintf(stderr, "ckpt_compare: %s\n", gv_last_error()), ERROR;
        return SAME;
    }
    gv_checkpoint_manager *m = NULL;
    char *stepdir = NULL;
    if (has_steps(s->path)) { /* a manager's directory: its latest step */
        m = gv_checkpoint_manager_new(s->path, &(gv_checkpoint_options){.must_exist = true});
        if (!m) return fprintf(stderr, "ckpt_compare: %s\n", gv_last_error()), ERROR;
        s->step = gv_checkpoint_manager_latest_step(m);
        if (asprintf(&stepdir, "%s/%" PRId64, s->path, s->step) < 0) stepdir = NULL;
    } else {
        stepdir = strdup(s->path);
    }
    int rc = stepdir ? list_items(stepdir, &s->names, &s->n) : ERROR;
    if (rc == SAME && s->n == 0)
        rc = ERROR, fprintf(stderr, "ckpt_compare: no *.safetensors in '%s'\n", stepdir);
    if (rc == SAME && !(s->trees = calloc(s->n, sizeof *s->trees)))
        rc = ERROR, fprintf(stderr, "ckpt_compare: out of memory\n");
    for (size_t i = 0; rc == SAME && i < s->n; i++) {
        char *file = NULL;
        if (m) {
            s->trees[i] = gv_checkpoint_manager_restore(m, s->step, s->names[i], NULL);
        } else if (asprintf(&file, "%s/%s.safetensors", stepdir, s->names[i]) >= 0) {
            s->trees[i] = gv_checkpointer_restore(file);
            free(file);
        }
        if (!s->trees[i]) rc = ERROR, fprintf(stderr, "ckpt_compare: %s\n", gv_last_error());
    }
    free(stepdir);
    if (m && gv_checkpoint_manager_close(m) != GV_OK && rc == SAME)
        rc = ERROR, fprintf(stderr, "ckpt_compare: %s\n", gv_last_error());
    return rc;
}

/* Element i of t as a double (exact for float32/float64, the dtypes of params). */
static double element(const gv_tensor *t, int64_t i) {
    const void *p = gv_tensor_data_const(t);
    switch (gv_tensor_dtype(t)) {
    case GV_F32: return ((const float *)p)[i];
    case GV_F64: return ((const double *)p)[i];
    default: {
        double v = NAN;
        gv_tensor_get_flat(t, i, &v);
        return v;
    }
    }
}

static void shape_str(const gv_tensor *t, char *out, size_t cap) {
    size_t o = (size_t)snprintf(out, cap, "(");
    for (int d = 0; d < gv_tensor_rank(t) && o < cap; d++)
        o += (size_t)snprintf(out + o, cap - o, "%s%" PRId64, d ? ", " : "", gv_tensor_shape(t)[d]);
    if (o < cap) snprintf(out + o, cap - o, gv_tensor_rank(t) == 1 ? ",)" : ")");
}

typedef struct tally {
    size_t tensors, bytes, differing_tensors, differing_structures;
    int64_t differing_elements;
} tally;

/* Compare one tensor of item `item` at path; prints a line if it differs. */
static void compare_tensor(const char *item, const char *path, const gv_tensor *a,
                           const gv_tensor *b, tally *t) {
    t->tensors++;
    char sa[128], sb[128];
    shape_str(a, sa, sizeof sa), shape_str(b, sb, sizeof sb);
    if (gv_tensor_dtype(a) != gv_tensor_dtype(b) || !gv_tensor_same_shape(a, b)) {
        printf("  %s: %s: %s %s vs %s %s\n", item, path, gv_dtype_name(gv_tensor_dtype(a)), sa,
               gv_dtype_name(gv_tensor_dtype(b)), sb);
        t->differing_tensors++, t->differing_elements += gv_tensor_size(a);
        return;
    }
    size_t nb = gv_tensor_nbytes(a), es = gv_dtype_size(gv_tensor_dtype(a));
    const unsigned char *pa = gv_tensor_data_const(a), *pb = gv_tensor_data_const(b);
    t->bytes += nb;
    if (nb == 0 || memcmp(pa, pb, nb) == 0) return;
    int64_t n = gv_tensor_size(a), ndiff = 0, first = -1;
    double maxabs = 0;
    for (int64_t i = 0; i < n; i++) {
        if (memcmp(pa + (size_t)i * es, pb + (size_t)i * es, es) == 0) continue;
        if (first < 0) first = i;
        ndiff++;
        double d = fabs(element(a, i) - element(b, i));
        if (d > maxabs || isnan(d)) maxabs = d;
    }
    printf("  %s: %s %s %s: %" PRId64 " of %" PRId64 " elements differ, max |a-b| %.9g, first at "
           "[%" PRId64 "]: %.9g vs %.9g\n", item, path, gv_dtype_name(gv_tensor_dtype(a)), sa,
           ndiff, n, maxabs, first, element(a, first), element(b, first));
    t->differing_tensors++, t->differing_elements += ndiff;
}

/* Compare one item's trees; false if their structures differ (reported). */
static bool compare_item(const char *item, const gv_tree *a, const gv_tree *b, tally *t) {
    if (!gv_tree_structure_equal(a, b)) {
        char *ra = gv_tree_repr_shapes(a), *rb = gv_tree_repr_shapes(b);
        printf("  %s: tree structures differ:\n    %s\n    %s\n", item, ra ? ra : "?",
               rb ? rb : "?");
        free(ra), free(rb);
        t->differing_structures++;
        return false;
    }
    gv_tensor **la = NULL, **lb = NULL;
    char **paths = NULL;
    size_t na = 0, nb = 0, np = 0;
    bool ok = gv_tree_flatten(a, &la, &na) == GV_OK && gv_tree_flatten(b, &lb, &nb) == GV_OK &&
              gv_tree_leaf_paths(a, &paths, &np) == GV_OK && na == nb && na == np;
    if (!ok) printf("  %s: cannot flatten: %s\n", item, gv_last_error()), t->differing_structures++;
    for (size_t i = 0; ok && i < na; i++)
        compare_tensor(item, paths[i][0] ? paths[i] : "(root)", la[i], lb[i], t);
    free(la), free(lb);
    gv_tree_paths_free(paths, np);
    return ok;
}

int main(int argc, char **argv) {
    if (argc != 3) return fprintf(stderr, "usage: ckpt_compare A B\n"), ERROR;
    side a = {.path = argv[1]}, b = {.path = argv[2]};
    int rc = load(&a);
    if (rc == SAME) rc = load(&b);
    if (rc != SAME) return side_free(&a), side_free(&b), rc;
    bool same = true;
    if (a.step != b.step) {
        printf("  latest steps differ: %" PRId64 " vs %" PRId64 "\n", a.step, b.step);
        same = false;
    }
    tally t = {0};
    size_t i = 0, j = 0;
    while (i < a.n || j < b.n) { /* a merge of the two sorted name lists */
        int c = i == a.n ? 1 : j == b.n ? -1 : strcmp(a.names[i], b.names[j]);
        if (c) {
            printf("  item '%s' only in %s\n", c < 0 ? a.names[i] : b.names[j],
                   c < 0 ? a.path : b.path);
            same = false;
            c < 0 ? i++ : j++;
            continue;
        }
        same = compare_item(a.names[i], a.trees[i], b.trees[j], &t) && same;
        i++, j++;
    }
    same = same && t.differing_tensors == 0;
    char at[32] = "";
    if (a.step >= 0) snprintf(at, sizeof at, "step %" PRId64 ", ", a.step);
    if (same)
        printf("identical: %s%zu item%s, %zu tensors, %zu bytes\n", at, a.n, a.n == 1 ? "" : "s",
               t.tensors, t.bytes);
    else
        printf("different: %zu of %zu tensors differ (%" PRId64 " elements), %zu item%s of "
               "another structure\n", t.differing_tensors, t.tensors, t.differing_elements,
               t.differing_structures, t.differing_structures == 1 ? "" : "s");
    side_free(&a), side_free(&b);
    return same ? SAME : DIFFERENT;
}
