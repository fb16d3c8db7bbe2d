/* Checkpoint manager: restoring the latest step that reads cleanly.
 *
 * Orbax restores one given step and raises on a bad file; a training run
 * whose newest checkpoint was damaged (a disk error, a copy cut short) then
 * cannot resume without a person picking an older step by hand. Here the
 * caller can ask for the fallback explicitly (gv_restore_options
 * .skip_unreadable): steps are tried newest first, a step whose files do not
 * read is passed over, and the result says which steps were skipped and
 * why. Never silently: without the option the newest step's error is
 * returned, naming the file.
 *
 * What counts as unreadable: a malformed or corrupted file (GV_ERR_FORMAT:
 * truncated, checksum mismatch, bad header), an OS read error (GV_ERR_IO) or
 * a missing item file (GV_ERR_NOT_FOUND). A step that reads but does not
 * match the target (GV_ERR_STRUCTURE), a format version this grove cannot
 * read (GV_ERR_UNSUPPORTED) and running out of memory stop the search: they
 * are not damage, and an older step would hide the real problem.
 *
 * All items of one step are restored together (Orbax's Composite), so a
 * caller never gets "state" from one step and "meta" from another. */
#define _GNU_SOURCE
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "checkpoint/manager_internal.h"
#include "core/error.h"
#include "grove/checkpoint.h"

static bool unreadable(gv_status st) {
    return st == GV_ERR_FORMAT || st == GV_ERR_IO || st == GV_ERR_NOT_FOUND;
}

void gv_restore_result_clear(gv_restore_result *r) {
    if (!r) return;
    free(r->skipped);
    free(r->skipped_message);
    *r = (gv_restore_result){.step = -1};
}

/* Record a skipped step and the current error message as its reason
 * ("step 30: <message>", one line per step). */
static gv_status note_skip(gv_restore_result *r, int64_t step) {
    int64_t *s = realloc(r->skipped, (r->nskipped + 1) * sizeof *s);
    if (!s) return gv_error(GV_ERR_NOMEM, "out of memory");
    r->skipped = s;
    s[r->nskipped++] = step;
    const char *old = r->skipped_message ? r->skipped_message : "";
    char *msg = NULL;
    if (asprintf(&msg, "%s%sstep %" PRId64 ": %s", old, *old ? "\n" : "", step,
                 gv_last_error()) < 0)
        return gv_error(GV_ERR_NOMEM, "out of memory");
    free(r->skipped_message);
    r->skipped_message = msg;
    return GV_OK;
}

static void free_trees(gv_tree **out, int n) {
    for (int i = 0; i < n; i++) {
        gv_tree_free(out[i]);
        out[i] = NULL;
    }
}

/* Every item of one step into out[]; on failure none are kept. */
static gv_status restore_step(const gv_checkpoint_manager *m, int64_t step,
                              const char *const *names, const gv_tree *const *targets,
                              int nitems, gv_tree **out, const char *fn) {
    for (int i = 0; i < nitems; i++) {
        out[i] = gv_restore_item(m, step, names[i], targets ? targets[i] : NULL, fn);
        if (!out[i]) {
            gv_status st = gv_last_status();
            free_trees(out, i);
            return st;
        }
    }
    return GV_OK;
}

static gv_status check_args(const gv_checkpoint_manager *m, const char *const *names,
                            int nitems, gv_tree **out, const char *fn) {
    if (!m || !names || !out)
        return gv_error(GV_ERR_ARG, "%s: %s is NULL", fn,
                        !m ? "m" : !names ? "item_names" : "out");
    if (nitems < 1) return gv_error(GV_ERR_ARG, "%s: nitems is %d, need at least 1", fn, nitems);
    for (int i = 0; i < nitems; i++) {
        out[i] = NULL;
        if (!names[i]) return gv_error(GV_ERR_ARG, "%s: item name %d is NULL", fn, i);
    }
    return GV_OK;
}

gv_status gv_checkpoint_manager_restore_latest(gv_checkpoint_manager *m,
                                               const char *const *item_names,
                                               const gv_tree *const *targets, int nitems,
                                               gv_tree **out, const gv_restore_options *opts,
                                               gv_restore_result *result) {
    static const char *fn = "gv_checkpoint_manager_restore_latest";
    gv_restore_result r = {.step = -1};
    if (result) *result = r;
    gv_status st = check_args(m, item_names, nitems, out, fn);
    if (st != GV_OK) return st;
    bool skip = opts && opts->skip_unreadable;
    gv_wait_idle(m); /* the newest steps may still be in the writer's queue */
    if (m->nsteps == 0) return gv_error(GV_ERR_NOT_FOUND, "%s: no checkpoints in '%s'", fn, m->dir);
    st = GV_ERR_NOT_FOUND;
    for (size_t k = m->nsteps; k-- > 0;) {
        int64_t step = m->steps[k].step;
        st = restore_step(m, step, item_names, targets, nitems, out, fn);
        if (st == GV_OK) {
            r.step = step;
            break;
        }
        if (!skip || !unreadable(st)) break;
        if ((st = note_skip(&r, step)) != GV_OK) break;
        st = GV_ERR_NOT_FOUND;
    }
    if (st == GV_ERR_NOT_FOUND && r.step < 0 && r.nskipped)
        gv_error(st, "%s: no step in '%s' reads cleanly:\n%s", fn, m->dir, r.skipped_message);
    if (result) *result = r;
    else gv_restore_result_clear(&r);
    return st;
}
