/* Checkpoint retention: which steps a checkpoint manager keeps (Orbax's
 * CheckpointManager, reference D2) and when it saves. The step directories
 * and the saves themselves are in manager.c, the writer thread in writer.c.
 *
 * - should_save(step) is Orbax's: false if step <= latest_step; otherwise
 *   true when no checkpoint exists yet (InitialSavePolicy), or when
 *   step % save_interval_steps == 0 (an interval of 0 or 1 saves every step).
 * - Retention (reference D2) keeps a step if any rule keeps it:
 *     max_to_keep == 0: keep all (Orbax's max_to_keep=None; Orbax's 0,
 *       "delete everything, even the new step", is not offered);
 *     no best_metric: the newest max_to_keep steps (LatestN);
 *     best_metric: the best max_to_keep among the steps with metrics
 *       (BestN; ties go to the newer step, NaN ranks worst), the steps
 *       without metrics unless drop_checkpoints_without_metrics, AND ALWAYS THE
 *       NEWEST STEP. Orbax drops LatestN when best_fn is set, so a run whose
 *       validation gets worse loses its newest checkpoint and cannot resume
 *       (E1, orbax#526); here up to max_to_keep + 1 steps remain;
 *     keep_period > 0: every step with step % keep_period == 0.
 */
#include <math.h>
#include <stddef.h>

#include "checkpoint/manager_internal.h"
#include "core/error.h"
#include "grove/checkpoint.h"

/* ---- which steps to keep -------------------------------------------------- */

/* "is better than" for best-metric ranking: the better metric, NaN worst,
 * a tie going to the newer step (Orbax's stable sort keeps the later one). */
static bool better(const gv_checkpoint_manager *m, const ckpt_entry *a, const ckpt_entry *b) {
    bool an = isnan(a->metric), bn = isnan(b->metric);
    if (an != bn) return bn;
    if (!an && a->metric != b->metric)
        return m->opts.best_mode_min ? a->metric < b->metric : a->metric > b->metric;
    return a->step > b->step;
}

/* keep[i] for each of the n entries (ascending): the retention of the header
 * comment. The newest entry is always kept. */
void gv_plan_retention(const gv_checkpoint_manager *m, const ckpt_entry *e, size_t n,
                       bool *keep) {
    size_t k = (size_t)m->opts.max_to_keep;
    for (size_t i = 0; i < n; i++) {
        bool kp = k == 0 || i + 1 == n;
        if (m->opts.keep_period > 0 && e[i].step % m->opts.keep_period == 0) kp = true;
        if (!m->best_metric) {
            if (n - i <= k) kp = true;
        } else if (!e[i].has_metric) {
            if (!m->opts.drop_checkpoints_without_metrics) kp = true;
        } else {
            size_t nbetter = 0; /* O(n^2): n is the number of checkpoints */
            for (size_t j = 0; j < n; j++)
                if (j != i && e[j].has_metric && better(m, &e[j], &e[i])) nbetter++;
            if (nbetter < k) kp = true;
        }
        keep[i] = kp;
    }
}

/* ---- public API ------------------------------------------------------------ */

bool gv_checkpoint_manager_should_save(const gv_checkpoint_manager *m, int64_t step) {
    if (!m) {
        gv_error(GV_ERR_ARG, "gv_checkpoint_manager_should_save: m is NULL");
        return false;
    }
    if (step < 0) return false;
    if (m->nsteps == 0) return true; /* Orbax InitialSavePolicy */
    if (step <= m->steps[m->nsteps - 1].step) return false;
    int64_t k = m->opts.save_interval_steps;
    return k <= 1 || step % k == 0;
}

int64_t gv_checkpoint_manager_best_step(gv_checkpoint_manager *m) {
    if (!m) {
        gv_error(GV_ERR_ARG, "gv_checkpoint_manager_best_step: m is NULL");
        return -1;
    }
    if (!m->best_metric) return gv_checkpoint_manager_latest_step(m);
    const ckpt_entry *best = NULL;
    for (size_t i = 0; i < m->nsteps; i++)
        if (m->steps[i].has_metric && (!best || better(m, &m->steps[i], best)))
            best = &m->steps[i];
    return best ? best->step : -1;
}
