/* Checkpoint manager: a directory of steps (Orbax's CheckpointManager,
 * reference D2-D5), each step written by gv_checkpointer_save.
 *
 * Layout (reference D3, simplified):
 *   <directory>/<step>/<item>.safetensors   one file per item
 *   <directory>/<step>/metrics.safetensors  the metrics tree, when given
 *   <directory>/.tmp-<step>-<pid>-<n>/      a step being written
 *   <directory>/.tmp-del-<step>-<pid>-<n>/  a step being deleted
 * A step directory's name is the step in plain decimal ("0" or [1-9][0-9]*);
 * every other entry of <directory> is ignored by all_steps.
 *
 * Atomicity (reference D4, AtomicRename mode only): the items are written
 * into a fresh temporary directory (each file fsynced by the checkpointer),
 * the temporary directory is fsynced, renamed to <step>, and <directory> is
 * fsynced. So <step> appears complete or not at all; there is no commit
 * marker to lose when a checkpoint is copied elsewhere (reference E3).
 * Deleting renames <step> to a temporary name first, so a step never appears
 * half-deleted either. Opening a manager removes leftover temporaries whose
 * writer is gone (its pid is not a live process, or is ours); directories
 * grove did not name are never touched (E3: foreign directories are kept).
 *
 * Semantics, and where they differ from Orbax:
 * - should_save(step), and which steps are kept (retention, reference D2):
 *   see retention.c.
 * - save() always writes the step it is given: the interval is applied by the
 *   caller through should_save (`if (should_save(m, s)) save(m, s, ...)`),
 *   where Orbax's save() checks should_save itself and returns False.
 *   A status-returning C call that silently does nothing would repeat
 *   Orbax's silent skips (E2), so instead save() refuses, with a message:
 *   a step that already exists (GV_ERR_EXISTS, as StepAlreadyExistsError),
 *   and a step below latest_step (GV_ERR_ARG; Orbax skips it silently).
 * - latest_step is the maximum step (Orbax: the last one appended, E2).
 *   all_steps is ascending; steps of pending async saves are included and
 *   steps chosen for deletion are excluded at once, as in Orbax.
 * - Old steps are deleted only after the new step has committed (retention.c
 *   chooses them).
 * - best_metric is a path into the metrics tree ("loss", "eval/accuracy")
 *   naming a one-element tensor; it replaces Orbax's best_fn callback. A
 *   save with metrics lacking that path fails (GV_ERR_NOT_FOUND). best_step
 *   is latest_step without best_metric, else the best step with metrics.
 * - Metrics are a safetensors file like the items (Orbax: JSON), written
 *   for every save that passes them, not only when best_fn is set. The item
 *   name "metrics" is therefore reserved, as in Orbax.
 * - restore(step < 0) restores the latest step (Orbax's step=None).
 * - Options: NULL and a zeroed struct are the same, Orbax's defaults where
 *   they make sense in C: keep all, every step, create the directory, keep
 *   checkpoints without metrics, rank by higher metric, and synchronous
 *   saves (Orbax defaults to async). Every field's zero is its default, so
 *   designated initialisers name only what differs.
 * - Async saves (reference D5: snapshots, the bounded queue, background
 *   errors): see writer.c.
 * - A manager is used from one thread at a time (the writer thread is
 *   internal). Two managers writing into one directory are not supported.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <inttypes.h>
#include <limits.h>
#include <math.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <dirent.h>
#include <unistd.h>

#include "checkpoint/manager_internal.h"
#include "core/error.h"
#include "grove/checkpoint.h"
#include "grove/eval_shape.h"

#define METRICS_NAME "metrics"
#define TMP_PREFIX ".tmp-"

/* ---- small filesystem helpers -------------------------------------------- */

static char *path_join(const char *a, const char *b) {
    size_t la = strlen(a), lb = strlen(b);
    char *p = malloc(la + lb + 2);
    if (!p) {
        gv_error(GV_ERR_NOMEM, "out of memory for a path");
        return NULL;
    }
    memcpy(p, a, la);
    p[la] = '/';
    memcpy(p + la + 1, b, lb + 1);
    return p;
}

static char *step_path(const char *dir, int64_t step) {
    char name[32];
    snprintf(name, sizeof name, "%" PRId64, step);
    return path_join(dir, name);
}

/* A fresh temporary name in dir: ".tmp-[del-]<step>-<pid>-<n>". */
static char *tmp_path(const char *dir, int64_t step, bool del) {
    static unsigned long counter; /* process-wide; names never repeat */
    unsigned long n = __atomic_fetch_add(&counter, 1, __ATOMIC_RELAXED);
    char name[96];
    snprintf(name, sizeof name, TMP_PREFIX "%s%" PRId64 "-%ld-%lu", del ? "del-" : "", step,
             (long)getpid(), n);
    return path_join(dir, name);
}

/* rename a directory without replacing an existing one (rename(2) would
 * replace an empty directory). Returns 0 or an errno. */
static int rename_noreplace(const char *from, const char *to) {
#ifdef RENAME_NOREPLACE
    if (renameat2(AT_FDCWD, from, AT_FDCWD, to, RENAME_NOREPLACE) == 0) return 0;
    if (errno != EINVAL && errno != ENOSYS && errno != ENOTSUP) return errno;
#endif
    struct stat sb;
    if (lstat(to, &sb) == 0) return EEXIST;
    return rename(from, to) == 0 ? 0 : errno;
}

static gv_status fsync_dir(const char *path) {
    int fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0) return gv_error(GV_ERR_IO, "cannot open directory '%s': %s", path, strerror(errno));
    int rc = fsync(fd);
    int e = errno;
    close(fd);
    /* some filesystems cannot fsync a directory; their rename is then as
     * durable as it gets */
    if (rc != 0 && e != EINVAL && e != ENOTSUP)
        return gv_error(GV_ERR_IO, "cannot fsync directory '%s': %s", path, strerror(e));
    return GV_OK;
}

static int rm_one(const char *path, const struct stat *sb, int flag, struct FTW *ftw) {
    (void)sb, (void)flag, (void)ftw;
    return remove(path) != 0 && errno != ENOENT ? -1 : 0;
}

/* rm -rf path (ENOENT is success). */
static gv_status remove_tree(const char *path) {
    if (nftw(path, rm_one, 16, FTW_DEPTH | FTW_PHYS) != 0 && errno != ENOENT)
        return gv_error(GV_ERR_IO, "cannot remove '%s': %s", path, strerror(errno));
    return GV_OK;
}

static gv_status mkdir_p(const char *path) {
    char *p = strdup(path);
    if (!p) return gv_error(GV_ERR_NOMEM, "out of memory");
    for (char *s = p + 1;; s++) {
        if (*s == '/' || *s == '\0') {
            char c = *s;
            *s = '\0';
            if (mkdir(p, 0777) != 0 && errno != EEXIST) {
                gv_status st = gv_error(GV_ERR_IO, "cannot create directory '%s': %s", p,
                                        strerror(errno));
                free(p);
                return st;
            }
            *s = c;
            if (!c) break;
        }
    }
    free(p);
    return GV_OK;
}

/* A step directory name: "0" or [1-9][0-9]* fitting int64. */
static bool parse_step(const char *s, int64_t *out) {
    if (!*s || (s[0] == '0' && s[1])) return false;
    int64_t v = 0;
    for (; *s; s++) {
        if (*s < '0' || *s > '9') return false;
        if (v > (INT64_MAX - (*s - '0')) / 10) return false;
        v = v * 10 + (*s - '0');
    }
    *out = v;
    return true;
}

/* Skip a run of decimal digits; NULL if there is none. */
static const char *skip_digits(const char *s) {
    const char *e = s;
    while (*e >= '0' && *e <= '9') e++;
    return e > s ? e : NULL;
}

/* A temporary we may remove: exactly our naming ".tmp-[del-]<step>-<pid>-<n>",
 * and its writer is gone. Anything else is not ours and stays. */
static bool stale_tmp(const char *name) {
    if (strncmp(name, TMP_PREFIX, strlen(TMP_PREFIX)) != 0) return false;
    const char *s = name + strlen(TMP_PREFIX);
    if (!strncmp(s, "del-", 4)) s += 4;
    const char *pid_at, *e;
    if (!(e = skip_digits(s)) || *e != '-') return false;
    pid_at = e + 1;
    if (!(e = skip_digits(pid_at)) || *e != '-') return false;
    if (!(e = skip_digits(e + 1)) || *e) return false;
    long long pid = strtoll(pid_at, NULL, 10); /* saturates on overflow */
    if (pid <= 0 || pid > INT_MAX || (pid_t)pid == getpid()) return true;
    return kill((pid_t)pid, 0) != 0 && errno == ESRCH;
}

/* ---- item names ---------------------------------------------------------- */

static bool valid_item_name(const char *s) {
    if (!s || !*s || s[0] == '.' || !strcmp(s, METRICS_NAME)) return false;
    for (const unsigned char *c = (const unsigned char *)s; *c; c++)
        if (*c < 0x20 || *c == 0x7f || *c == '/' || *c == '\\') return false;
    return true;
}

/* ---- the step list -------------------------------------------------------- */

static gv_status steps_reserve(gv_checkpoint_manager *m, size_t n) {
    if (n <= m->capsteps) return GV_OK;
    size_t cap = m->capsteps ? m->capsteps * 2 : 16;
    while (cap < n) cap *= 2;
    ckpt_entry *p = realloc(m->steps, cap * sizeof *p);
    if (!p) return gv_error(GV_ERR_NOMEM, "out of memory for the step list");
    m->steps = p;
    m->capsteps = cap;
    return GV_OK;
}

static ptrdiff_t steps_find(const gv_checkpoint_manager *m, int64_t step) {
    size_t lo = 0, hi = m->nsteps;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (m->steps[mid].step < step) lo = mid + 1;
        else hi = mid;
    }
    return lo < m->nsteps && m->steps[lo].step == step ? (ptrdiff_t)lo : -1;
}

static int cmp_entry(const void *a, const void *b) {
    int64_t x = ((const ckpt_entry *)a)->step, y = ((const ckpt_entry *)b)->step;
    return (x > y) - (x < y);
}

/* The metric of a committed step, from its metrics file; a missing or
 * unreadable file, or one without the metric, counts as "no metrics". */
static void read_metric(const gv_checkpoint_manager *m, ckpt_entry *e) {
    e->has_metric = false;
    e->metric = NAN;
    if (!m->best_metric) return;
    char *sdir = step_path(m->dir, e->step);
    char *path = sdir ? path_join(sdir, METRICS_NAME ".safetensors") : NULL;
    struct stat sb;
    if (path && stat(path, &sb) == 0) {
        gv_tree *t = gv_checkpointer_restore(path);
        gv_tensor *v = t ? gv_tree_get_tensor(t, m->best_metric) : NULL;
        double d;
        if (v && gv_tensor_size(v) == 1 && gv_tensor_get_flat(v, 0, &d) == GV_OK) {
            e->has_metric = true;
            e->metric = d;
        }
        gv_tree_free(t);
    }
    free(path);
    free(sdir);
    gv_clear_error();
}

/* Re-read the step list from the directory (only when nothing is queued). */
gv_status gv_reload(gv_checkpoint_manager *m) {
    DIR *d = opendir(m->dir);
    if (!d) return gv_error(GV_ERR_IO, "cannot list '%s': %s", m->dir, strerror(errno));
    m->nsteps = 0;
    gv_status st = GV_OK;
    struct dirent *de;
    while ((de = readdir(d))) {
        int64_t step;
        if (!parse_step(de->d_name, &step)) continue;
        char *p = path_join(m->dir, de->d_name);
        struct stat sb;
        bool isdir = p && lstat(p, &sb) == 0 && S_ISDIR(sb.st_mode);
        free(p);
        if (!isdir) continue;
        if ((st = steps_reserve(m, m->nsteps + 1)) != GV_OK) break;
        m->steps[m->nsteps++] = (ckpt_entry){.step = step, .has_metric = false, .metric = NAN};
    }
    closedir(d);
    if (m->nsteps > 1) qsort(m->steps, m->nsteps, sizeof *m->steps, cmp_entry);
    for (size_t i = 0; i < m->nsteps; i++) read_metric(m, &m->steps[i]);
    return st;
}

static gv_status remove_stale_tmps(const gv_checkpoint_manager *m) {
    DIR *d = opendir(m->dir);
    if (!d) return gv_error(GV_ERR_IO, "cannot list '%s': %s", m->dir, strerror(errno));
    gv_status st = GV_OK;
    struct dirent *de;
    while (st == GV_OK && (de = readdir(d))) {
        if (!stale_tmp(de->d_name)) continue;
        char *p = path_join(m->dir, de->d_name);
        struct stat sb;
        if (!p) st = GV_ERR_NOMEM;
        else if (lstat(p, &sb) == 0 && S_ISDIR(sb.st_mode)) st = remove_tree(p);
        free(p);
    }
    closedir(d);
    return st;
}

/* ---- writing and deleting steps (caller thread or writer thread) ---------- */

static gv_status delete_step_dir(const char *dir, int64_t step) {
    char *from = step_path(dir, step), *to = tmp_path(dir, step, true);
    gv_status st = from && to ? GV_OK : GV_ERR_NOMEM;
    if (st == GV_OK) {
        if (rename(from, to) != 0) {
            if (errno != ENOENT)
                st = gv_error(GV_ERR_IO, "cannot delete step %" PRId64 ": rename '%s': %s", step,
                              from, strerror(errno));
        } else if ((st = fsync_dir(dir)) == GV_OK) {
            st = remove_tree(to);
        }
    }
    free(from);
    free(to);
    return st;
}

static gv_status write_item(const char *tmp, const char *name, const gv_tree *tree,
                            int64_t step) {
    size_t len = strlen(name);
    char *file = malloc(len + sizeof ".safetensors");
    if (!file) return gv_error(GV_ERR_NOMEM, "out of memory");
    memcpy(file, name, len);
    memcpy(file + len, ".safetensors", sizeof ".safetensors");
    char *path = path_join(tmp, file);
    free(file);
    if (!path) return GV_ERR_NOMEM;
    gv_status st = gv_checkpointer_save(path, tree, false);
    if (st != GV_OK) gv_error_prefix("step %" PRId64 " item '%s': ", step, name);
    free(path);
    return st;
}

/* Write the job's step (D4 protocol above), then delete its old steps. */
gv_status gv_run_job(const char *dir, const ckpt_job *job, bool skip_deletes) {
    char *tmp = tmp_path(dir, job->step, false);
    char *final = step_path(dir, job->step);
    gv_status st = tmp && final ? GV_OK : GV_ERR_NOMEM;
    bool made = false;
    if (st == GV_OK) {
        if (mkdir(tmp, 0777) != 0)
            st = gv_error(GV_ERR_IO, "step %" PRId64 ": cannot create '%s': %s", job->step, tmp,
                          strerror(errno));
        else made = true;
    }
    for (int i = 0; st == GV_OK && i < job->nitems; i++)
        st = write_item(tmp, job->names[i], job->items[i], job->step);
    if (st == GV_OK && job->metrics) st = write_item(tmp, METRICS_NAME, job->metrics, job->step);
    if (st == GV_OK) st = fsync_dir(tmp);
    if (st == GV_OK) {
        int err = rename_noreplace(tmp, final);
        if (err == EEXIST || err == ENOTEMPTY)
            st = gv_error(GV_ERR_EXISTS, "step %" PRId64 ": '%s' already exists", job->step, final);
        else if (err)
            st = gv_error(GV_ERR_IO, "step %" PRId64 ": cannot rename '%s' to '%s': %s",
                          job->step, tmp, final, strerror(err));
        else made = false;
    }
    if (st == GV_OK) st = fsync_dir(dir);
    if (made) remove_tree(tmp); /* best effort: a crash leaves it for the next open */
    free(tmp);
    free(final);
    for (size_t i = 0; st == GV_OK && !skip_deletes && i < job->ndel; i++) {
        st = delete_step_dir(dir, job->del[i]);
        if (st != GV_OK)
            gv_error_prefix("step %" PRId64 " was saved, but deleting an old step failed: ",
                            job->step);
    }
    return st;
}

/* ---- public API ------------------------------------------------------------ */

/* Every field of the options; zero is the default of each (Orbax's), so a
 * field that is set but has no effect is refused rather than ignored. */
static gv_status check_options(const gv_checkpoint_options *o, const char *fn) {
    if (o->max_to_keep < 0)
        return gv_error(GV_ERR_ARG, "%s: max_to_keep is %d (0 keeps every step, n > 0 the "
                        "newest n)", fn, o->max_to_keep);
    if (o->save_interval_steps < 0)
        return gv_error(GV_ERR_ARG, "%s: save_interval_steps is %" PRId64 " (0 or 1 saves "
                        "every step)", fn, o->save_interval_steps);
    if (o->keep_period < 0)
        return gv_error(GV_ERR_ARG, "%s: keep_period is %" PRId64 " (0 is off)", fn,
                        o->keep_period);
    if (o->best_metric && !*o->best_metric)
        return gv_error(GV_ERR_ARG, "%s: best_metric is empty (NULL ranks by step)", fn);
    if (!o->best_metric && (o->best_mode_min || o->drop_checkpoints_without_metrics))
        return gv_error(GV_ERR_ARG, "%s: %s is set but best_metric is NULL (it only applies "
                        "when checkpoints are ranked by a metric)", fn,
                        o->best_mode_min ? "best_mode_min" : "drop_checkpoints_without_metrics");
    return GV_OK;
}

gv_checkpoint_manager *gv_checkpoint_manager_new(const char *directory,
                                                 const gv_checkpoint_options *opts) {
    static const char *fn = "gv_checkpoint_manager_new";
    if (!directory || !*directory) {
        gv_error(GV_ERR_ARG, "%s: directory is %s", fn, directory ? "empty" : "NULL");
        return NULL;
    }
    gv_checkpoint_options o = opts ? *opts : (gv_checkpoint_options){0};
    if (check_options(&o, fn) != GV_OK) return NULL;
    struct stat sb;
    if (stat(directory, &sb) != 0) {
        if (errno != ENOENT) {
            gv_error(GV_ERR_IO, "%s: cannot access '%s': %s", fn, directory, strerror(errno));
            return NULL;
        }
        if (o.must_exist) {
            gv_error(GV_ERR_NOT_FOUND, "%s: directory '%s' does not exist (must_exist is set)",
                     fn, directory);
            return NULL;
        }
        if (mkdir_p(directory) != GV_OK) {
            gv_error_prefix("%s: ", fn);
            return NULL;
        }
    } else if (!S_ISDIR(sb.st_mode)) {
        gv_error(GV_ERR_IO, "%s: '%s' is not a directory", fn, directory);
        return NULL;
    }

    gv_checkpoint_manager *m = calloc(1, sizeof *m);
    if (!m || !(m->dir = strdup(directory)) ||
        (o.best_metric && !(m->best_metric = strdup(o.best_metric)))) {
        if (m) free(m->dir);
        free(m);
        gv_error(GV_ERR_NOMEM, "%s: out of memory", fn);
        return NULL;
    }
    m->opts = o;
    m->opts.best_metric = m->best_metric;
    pthread_mutex_init(&m->mu, NULL);
    pthread_cond_init(&m->cv_work, NULL);
    pthread_cond_init(&m->cv_done, NULL);
    if (remove_stale_tmps(m) != GV_OK || gv_reload(m) != GV_OK ||
        (o.async && gv_writer_start(m) != GV_OK)) {
        /* close may set errors of its own: the opening error is the one to report */
        gv_error_prefix("%s: ", fn);
        gv_status st = gv_last_status();
        char *msg = strdup(gv_last_error());
        gv_checkpoint_manager_close(m);
        gv_error(st, "%s", msg ? msg : "");
        free(msg);
        return NULL;
    }
    return m;
}

gv_status gv_checkpoint_manager_close(gv_checkpoint_manager *m) {
    if (!m) return GV_OK;
    gv_status st = gv_take_bg_error(m, "gv_checkpoint_manager_close");
    char *msg = st != GV_OK ? strdup(gv_last_error()) : NULL;
    gv_writer_stop(m);
    while (m->spare) {
        ckpt_job *j = m->spare;
        m->spare = j->next;
        gv_job_free(j);
    }
    pthread_mutex_destroy(&m->mu);
    pthread_cond_destroy(&m->cv_work);
    pthread_cond_destroy(&m->cv_done);
    free(m->bg_msg);
    free(m->steps);
    free(m->best_metric);
    free(m->dir);
    free(m);
    if (st != GV_OK) gv_error(st, "%s", msg ? msg : "");
    free(msg);
    return st;
}

static gv_status check_save_args(const gv_checkpoint_manager *m, int64_t step,
                                 const char *const *names, const gv_tree *const *items,
                                 int nitems, const char *fn) {
    if (!m) return gv_error(GV_ERR_ARG, "%s: m is NULL", fn);
    if (step < 0) return gv_error(GV_ERR_ARG, "%s: step %" PRId64 " is negative", fn, step);
    if (nitems < 1 || !names || !items)
        return gv_error(GV_ERR_ARG, "%s: step %" PRId64 ": need at least one item (nitems %d, "
                        "item_names %s, items %s)", fn, step, nitems, names ? "set" : "NULL",
                        items ? "set" : "NULL");
    for (int i = 0; i < nitems; i++) {
        if (!valid_item_name(names[i]))
            return gv_error(GV_ERR_ARG, "%s: step %" PRId64 ": item name %d '%s' is not valid "
                            "(non-empty, printable, no '/' or '\\', not starting with '.', "
                            "not '" METRICS_NAME "')", fn, step, i, names[i] ? names[i] : "(null)");
        if (!items[i])
            return gv_error(GV_ERR_ARG, "%s: step %" PRId64 ": item '%s' is NULL", fn, step,
                            names[i]);
        /* here, not in the writer: an async save would fail only later */
        if (gv_tree_check_concrete(items[i], names[i]) != GV_OK)
            return gv_error_prefix("%s: step %" PRId64 ": cannot save item ", fn, step);
        for (int j = 0; j < i; j++)
            if (!strcmp(names[i], names[j]))
                return gv_error(GV_ERR_ARG, "%s: step %" PRId64 ": item name '%s' given twice",
                                fn, step, names[i]);
    }
    return GV_OK;
}

gv_status gv_checkpoint_manager_save(gv_checkpoint_manager *m, int64_t step,
                                     const char *const *item_names, const gv_tree *const *items,
                                     int nitems, const gv_tree *metrics) {
    static const char *fn = "gv_checkpoint_manager_save";
    gv_status st = check_save_args(m, step, item_names, items, nitems, fn);
    if (st != GV_OK) return st;
    if (metrics && gv_tree_check_concrete(metrics, "metrics") != GV_OK)
        return gv_error_prefix("%s: step %" PRId64 ": cannot save ", fn, step);
    if (gv_bg_failed(m)) return gv_take_bg_error(m, fn);
    if (steps_find(m, step) >= 0)
        return gv_error(GV_ERR_EXISTS, "%s: step %" PRId64 " already exists in '%s'", fn, step,
                        m->dir);
    if (m->nsteps && step < m->steps[m->nsteps - 1].step)
        return gv_error(GV_ERR_ARG, "%s: step %" PRId64 " is below the latest step %" PRId64
                        " in '%s' (delete the newer steps first)", fn, step,
                        m->steps[m->nsteps - 1].step, m->dir);

    ckpt_entry e = {.step = step, .has_metric = false, .metric = NAN};
    if (m->best_metric && metrics) {
        gv_tensor *v = gv_tree_get_tensor(metrics, m->best_metric);
        if (!v) return gv_error_prefix("%s: step %" PRId64 ": best_metric: ", fn, step);
        if (gv_tensor_size(v) != 1)
            return gv_error(GV_ERR_SHAPE, "%s: step %" PRId64 ": best_metric '%s' has %" PRId64
                            " elements, need 1", fn, step, m->best_metric, gv_tensor_size(v));
        if ((st = gv_tensor_get_flat(v, 0, &e.metric)) != GV_OK) return st;
        e.has_metric = true;
    }

    /* retention over the list with the new step appended */
    if ((st = steps_reserve(m, m->nsteps + 1)) != GV_OK) return gv_error_prefix("%s: ", fn);
    size_t n = m->nsteps + 1;
    m->steps[m->nsteps] = e;
    bool *keep = malloc(n * sizeof *keep);
    if (!keep) return gv_error(GV_ERR_NOMEM, "%s: out of memory", fn);
    gv_plan_retention(m, m->steps, n, keep);

    ckpt_job *job = NULL;
    if (m->opts.async) {
        gv_wait_room(m); /* room first, so a finished job's buffers are spare */
        job = gv_take_spare(m, item_names, items, nitems, metrics);
    }
    if (!job && !(job = gv_new_job(item_names, items, nitems, metrics, m->opts.async, step))) {
        free(keep);
        return gv_error_prefix("%s: '%s': ", fn, m->dir); /* a snapshot out of memory, say */
    }
    int64_t *del = realloc(job->del, n * sizeof *del);
    if (!del) {
        free(keep);
        gv_job_free(job);
        return gv_error(GV_ERR_NOMEM, "%s: out of memory", fn);
    }
    job->del = del;
    job->ndel = 0;
    for (size_t i = 0; i < n; i++)
        if (!keep[i]) job->del[job->ndel++] = m->steps[i].step;
    job->step = step;

    if (m->opts.async) {
        gv_queue_job(m, job);
    } else {
        st = gv_run_job(m->dir, job, false);
        gv_job_free(job);
        if (st != GV_OK) {
            free(keep);
            char *msg = strdup(gv_last_error());
            gv_reload(m); /* the disk decides what exists now */
            gv_error(st, "%s: '%s': %s", fn, m->dir, msg ? msg : "");
            free(msg);
            return st;
        }
    }
    /* the list now holds the new step and none of the deleted ones */
    size_t w = 0;
    for (size_t i = 0; i < n; i++)
        if (keep[i]) m->steps[w++] = m->steps[i];
    m->nsteps = w;
    free(keep);
    return GV_OK;
}

gv_status gv_checkpoint_manager_wait_until_finished(gv_checkpoint_manager *m) {
    if (!m) return gv_error(GV_ERR_ARG, "gv_checkpoint_manager_wait_until_finished: m is NULL");
    return gv_take_bg_error(m, "gv_checkpoint_manager_wait_until_finished");
}

gv_status gv_checkpoint_manager_all_steps(gv_checkpoint_manager *m, int64_t **steps, size_t *n) {
    if (steps) *steps = NULL;
    if (n) *n = 0;
    if (!m || !steps || !n)
        return gv_error(GV_ERR_ARG, "gv_checkpoint_manager_all_steps: %s is NULL",
                        !m ? "m" : !steps ? "steps" : "n");
    if (m->nsteps == 0) return GV_OK;
    int64_t *s = malloc(m->nsteps * sizeof *s);
    if (!s) return gv_error(GV_ERR_NOMEM, "gv_checkpoint_manager_all_steps: out of memory");
    for (size_t i = 0; i < m->nsteps; i++) s[i] = m->steps[i].step;
    *steps = s;
    *n = m->nsteps;
    return GV_OK;
}

int64_t gv_checkpoint_manager_latest_step(gv_checkpoint_manager *m) {
    if (!m) {
        gv_error(GV_ERR_ARG, "gv_checkpoint_manager_latest_step: m is NULL");
        return -1;
    }
    return m->nsteps ? m->steps[m->nsteps - 1].step : -1;
}

/* The file of an item in a step directory, malloc'd. */
static char *item_path(const char *dir, int64_t step, const char *item_name) {
    char *sdir = step_path(dir, step);
    size_t len = strlen(item_name);
    char *file = malloc(len + sizeof ".safetensors");
    char *path = NULL;
    if (file && sdir) {
        memcpy(file, item_name, len);
        memcpy(file + len, ".safetensors", sizeof ".safetensors");
        path = path_join(sdir, file);
    }
    free(file);
    free(sdir);
    return path;
}

/* One item of a committed step (the caller has waited for the writer). */
gv_tree *gv_restore_item(const gv_checkpoint_manager *m, int64_t step, const char *item_name,
                         const gv_tree *target, const char *fn) {
    if (!item_name) return gv_error(GV_ERR_ARG, "%s: item_name is NULL", fn), NULL;
    if (strchr(item_name, '/') ||
        (!valid_item_name(item_name) && strcmp(item_name, METRICS_NAME))) {
        gv_error(GV_ERR_ARG, "%s: item name '%s' is not valid", fn, item_name);
        return NULL;
    }
    char *path = item_path(m->dir, step, item_name);
    if (!path) return gv_error(GV_ERR_NOMEM, "%s: out of memory", fn), NULL;
    gv_tree *t = NULL;
    struct stat sb;
    if (stat(path, &sb) != 0)
        gv_error(errno == ENOENT ? GV_ERR_NOT_FOUND : GV_ERR_IO, "%s: step %" PRId64
                 " has no item '%s' ('%s': %s)", fn, step, item_name, path, strerror(errno));
    else if (!(t = target ? gv_checkpointer_restore_into(path, target)
                          : gv_checkpointer_restore(path)))
        gv_error_prefix("%s: step %" PRId64 " item '%s': ", fn, step, item_name);
    free(path);
    return t;
}

gv_tree *gv_checkpoint_manager_restore(gv_checkpoint_manager *m, int64_t step,
                                       const char *item_name, const gv_tree *target) {
    static const char *fn = "gv_checkpoint_manager_restore";
    if (!m || !item_name) {
        gv_error(GV_ERR_ARG, "%s: %s is NULL", fn, m ? "item_name" : "m");
        return NULL;
    }
    if (step < 0) step = gv_checkpoint_manager_latest_step(m);
    if (step < 0) {
        gv_error(GV_ERR_NOT_FOUND, "%s: no checkpoints in '%s'", fn, m->dir);
        return NULL;
    }
    if (steps_find(m, step) < 0) {
        gv_error(GV_ERR_NOT_FOUND, "%s: no step %" PRId64 " in '%s'", fn, step, m->dir);
        return NULL;
    }
    gv_wait_idle(m); /* the step may still be in the writer's queue */
    return gv_restore_item(m, step, item_name, target, fn);
}

gv_status gv_checkpoint_manager_delete(gv_checkpoint_manager *m, int64_t step) {
    static const char *fn = "gv_checkpoint_manager_delete";
    if (!m) return gv_error(GV_ERR_ARG, "%s: m is NULL", fn);
    gv_wait_idle(m); /* the step may still be in the writer's queue */
    ptrdiff_t i = steps_find(m, step);
    if (i < 0) return gv_error(GV_ERR_NOT_FOUND, "%s: no step %" PRId64 " in '%s'", fn, step, m->dir);
    gv_status st = delete_step_dir(m->dir, step);
    if (st != GV_OK) {
        char *msg = strdup(gv_last_error());
        gv_reload(m);
        gv_error(st, "%s: %s", fn, msg ? msg : "");
        free(msg);
        return st;
    }
    memmove(m->steps + i, m->steps + i + 1, (m->nsteps - (size_t)i - 1) * sizeof *m->steps);
    m->nsteps--;
    return GV_OK;
}
