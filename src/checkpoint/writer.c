/* Checkpoint writer: a checkpoint manager's asynchronous saves, i.e. the
 * save job and its snapshots, the bounded queue, the writer thread and its
 * errors. The step directories, and writing one step (gv_run_job, also on
 * the caller's thread for a synchronous save), are in manager.c.
 *
 * - Async (reference D5): save() snapshots the trees (gv_tree_copy, so the
 *   caller may change or free its tensors at once) and queues them for ONE
 *   writer thread, which writes steps in order. At most
 *   CKPT_MAX_PENDING saves are queued (the one being written included);
 *   a further save waits for room, which bounds the memory held by
 *   snapshots (E4). A written job's snapshot is kept (within that bound)
 *   and refilled by memcpy at the next save of the same structure: on
 *   fresh memory the page faults cost more than the copy.
 * - Errors: a background failure is kept as (status, message)
 *   (gv_last_error is thread-local) and returned, once, by the next save,
 *   wait_until_finished or close, with a count of the later saves that
 *   failed too; the manager then re-reads the directory, so its step list
 *   matches the disk again. Deletions queued after a failure are skipped
 *   until it has been reported.
 * - Release: close finishes the queue before it stops the thread and
 *   returns the failures. A manager that is never closed is drained when
 *   the process exits (drain_at_exit), its failures written to stderr, so
 *   a queued step is never lost silently. Only _exit, a signal or a crash
 *   still lose queued steps, and those leave invisible temporaries, never
 *   half-written steps.
 */
#include <inttypes.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "checkpoint/manager_internal.h"
#include "core/error.h"
#include "grove/checkpoint.h"

/* Saves queued or being written at once (async); a further save waits. */
#define CKPT_MAX_PENDING 2

/* ---- save jobs ----------------------------------------------------------- */

/* A job holding the items: snapshots (gv_tree_copy) when owned, else
 * borrowed pointers. NULL with the error set. */
ckpt_job *gv_new_job(const char *const *names, const gv_tree *const *items, int nitems,
                      const gv_tree *metrics, bool owned, int64_t step) {
    ckpt_job *job = calloc(1, sizeof *job);
    if (job) {
        job->owned = owned;
        job->names = calloc((size_t)nitems, sizeof *job->names);
        job->items = calloc((size_t)nitems, sizeof *job->items);
    }
    if (!job || !job->names || !job->items) {
        gv_job_free(job);
        gv_error(GV_ERR_NOMEM, "out of memory");
        return NULL;
    }
    job->nitems = nitems;
    gv_status st = GV_OK;
    for (int i = 0; st == GV_OK && i < nitems; i++) {
        if (!(job->names[i] = strdup(names[i]))) st = gv_error(GV_ERR_NOMEM, "out of memory");
        else if (!owned) job->items[i] = items[i];
        else if (!(job->items[i] = gv_tree_copy(items[i])))
            st = gv_error_prefix("step %" PRId64 " item '%s': snapshot: ", step, names[i]);
    }
    if (st == GV_OK && metrics) {
        if (!owned) job->metrics = metrics;
        else if (!(job->metrics = gv_tree_copy(metrics)))
            st = gv_error_prefix("step %" PRId64 " metrics: snapshot: ", step);
    }
    if (st != GV_OK) {
        gv_job_free(job);
        return NULL;
    }
    return job;
}

void gv_job_free(ckpt_job *job) {
    if (!job) return;
    for (int i = 0; i < job->nitems; i++) {
        free(job->names ? job->names[i] : NULL);
        if (job->owned && job->items) gv_tree_free((gv_tree *)job->items[i]);
    }
    if (job->owned) gv_tree_free((gv_tree *)job->metrics);
    free(job->names);
    free(job->items);
    free(job->del);
    free(job);
}

/* ---- reusing a written job's snapshots ----------------------------------- */

/* Same kinds, keys and key order (insertion order too: the file stores it). */
static bool same_order(const gv_tree *a, const gv_tree *b) {
    if (gv_tree_kind_of(a) != gv_tree_kind_of(b)) return false;
    size_t n = gv_tree_num_children(a);
    if (n != gv_tree_num_children(b)) return false;
    for (size_t i = 0; i < n; i++)
        if (strcmp(gv_tree_key(a, i), gv_tree_key(b, i)) ||
            !same_order(gv_tree_child(a, i), gv_tree_child(b, i)))
            return false;
    return true;
}

/* Copy src's tensor data into dst, an earlier snapshot of the same
 * structure, shapes and dtypes. Reusing its resident memory avoids the page
 * faults of a fresh copy, which cost more than the copy itself (reference
 * D5: the blocking phase should be a memcpy). False if it does not fit. */
static bool refill_snapshot(gv_tree *dst, const gv_tree *src) {
    gv_tensor **d = NULL, **sv = NULL;
    size_t nd = 0, ns = 0;
    bool ok = gv_tree_check_same(src, dst, NULL) == GV_OK && same_order(src, dst) &&
              gv_tree_flatten(dst, &d, &nd) == GV_OK && gv_tree_flatten(src, &sv, &ns) == GV_OK &&
              nd == ns;
    for (size_t i = 0; ok && i < nd; i++)
        if (gv_tensor_nbytes(d[i]))
            memcpy(gv_tensor_data(d[i]), gv_tensor_data_const(sv[i]), gv_tensor_nbytes(d[i]));
    free(d);
    free(sv);
    gv_clear_error();
    return ok;
}

/* A spare job whose snapshots fit these items (names, structures), refilled
 * from them; NULL if none fits. */
ckpt_job *gv_take_spare(gv_checkpoint_manager *m, const char *const *names,
                        const gv_tree *const *items, int nitems, const gv_tree *metrics) {
    pthread_mutex_lock(&m->mu);
    ckpt_job *job = m->spare;
    if (job) {
        m->spare = job->next;
        m->nspare--;
    }
    pthread_mutex_unlock(&m->mu);
    if (!job) return NULL;
    bool fits = job->nitems == nitems && !job->metrics == !metrics;
    for (int i = 0; fits && i < nitems; i++)
        fits = !strcmp(job->names[i], names[i]) && refill_snapshot((gv_tree *)job->items[i], items[i]);
    if (fits && metrics) fits = refill_snapshot((gv_tree *)job->metrics, metrics);
    if (!fits) {
        gv_job_free(job);
        return NULL;
    }
    job->next = NULL;
    job->ndel = 0;
    return job;
}

/* ---- the bounded queue and the writer thread ----------------------------- */

/* Block until the queue has room for one more save. Caller holds no lock. */
void gv_wait_room(gv_checkpoint_manager *m) {
    pthread_mutex_lock(&m->mu);
    while (m->pending >= CKPT_MAX_PENDING) pthread_cond_wait(&m->cv_done, &m->mu);
    pthread_mutex_unlock(&m->mu);
}

/* Queue job for the writer thread, after gv_wait_room. */
void gv_queue_job(gv_checkpoint_manager *m, ckpt_job *job) {
    pthread_mutex_lock(&m->mu); /* only this thread queues: there is room */
    if (m->tail) m->tail->next = job;
    else m->head = job;
    m->tail = job;
    m->pending++;
    pthread_cond_signal(&m->cv_work);
    pthread_mutex_unlock(&m->mu);
}

void *gv_writer_main(void *arg) {
    gv_checkpoint_manager *m = arg;
    pthread_mutex_lock(&m->mu);
    for (;;) {
        while (!m->head && !m->stop) pthread_cond_wait(&m->cv_work, &m->mu);
        if (!m->head) break;
        ckpt_job *job = m->head;
        bool skip = m->bg_status != GV_OK;
        pthread_mutex_unlock(&m->mu);

        gv_status st = gv_run_job(m->dir, job, skip);
        char *msg = st != GV_OK ? strdup(gv_last_error()) : NULL;
        gv_clear_error();

        pthread_mutex_lock(&m->mu);
        m->head = job->next;
        if (!m->head) m->tail = NULL;
        if (st != GV_OK && m->bg_status == GV_OK) {
            m->bg_status = st;
            m->bg_msg = msg;
            m->bg_step = job->step;
            msg = NULL;
        } else if (st != GV_OK) { /* counted, so the report names every lost step */
            m->bg_more_failed++;
            m->bg_last_failed = job->step;
        }
        m->pending--;
        if (m->pending + m->nspare < CKPT_MAX_PENDING) { /* keep its buffers */
            job->next = m->spare;
            m->spare = job;
            m->nspare++;
            job = NULL;
        }
        pthread_cond_broadcast(&m->cv_done);
        pthread_mutex_unlock(&m->mu);
        free(msg);
        gv_job_free(job);
        pthread_mutex_lock(&m->mu);
    }
    pthread_mutex_unlock(&m->mu);
    return NULL;
}

/* ---- starting and stopping the writer, and draining it at exit ----------- */

/* Every manager with a writer thread, so that a process which exits without
 * closing one still finishes its queued saves (at exit, see drain_at_exit)
 * instead of losing them with the thread. The only process-wide state of
 * the checkpoint code; guarded by live_mu. */
static pthread_mutex_t live_mu = PTHREAD_MUTEX_INITIALIZER;
static gv_checkpoint_manager *live_head;

gv_status gv_writer_start(gv_checkpoint_manager *m) {
    int rc = pthread_create(&m->thread, NULL, gv_writer_main, m);
    if (rc != 0)
        return gv_error(GV_ERR_INTERNAL, "cannot start the writer thread: %s", strerror(rc));
    m->thread_started = true;
    m->live_pid = getpid();
    pthread_mutex_lock(&live_mu);
    m->live_next = live_head;
    live_head = m;
    pthread_mutex_unlock(&live_mu);
    return GV_OK;
}

void gv_writer_stop(gv_checkpoint_manager *m) {
    if (!m->thread_started) return;
    pthread_mutex_lock(&live_mu);
    for (gv_checkpoint_manager **p = &live_head; *p; p = &(*p)->live_next)
        if (*p == m) {
            *p = m->live_next;
            break;
        }
    pthread_mutex_unlock(&live_mu);
    pthread_mutex_lock(&m->mu);
    m->stop = true; /* the writer still empties the queue first */
    pthread_cond_broadcast(&m->cv_work);
    pthread_mutex_unlock(&m->mu);
    pthread_join(m->thread, NULL);
    m->thread_started = false;
}

/* At exit (or when libgrove.so is unloaded): wait for the saves still queued
 * on managers that were never closed, so no step is lost with the writer
 * thread. Nobody can be handed a status any more, so a save that fails now
 * is reported on stderr: failing loudly is better than losing it in
 * silence. Managers of another process (a fork's parent: the child has no
 * writer thread) are left alone. */
__attribute__((destructor)) static void drain_at_exit(void) {
    pthread_mutex_lock(&live_mu);
    for (gv_checkpoint_manager *m = live_head; m; m = m->live_next) {
        if (m->live_pid != getpid()) continue;
        if (gv_take_bg_error(m, "grove: a checkpoint manager not closed at exit") != GV_OK)
            fprintf(stderr, "%s\n", gv_last_error());
    }
    pthread_mutex_unlock(&live_mu);
}

/* Block until the writer is idle. Caller holds no lock. */
void gv_wait_idle(gv_checkpoint_manager *m) {
    if (!m->thread_started) return;
    pthread_mutex_lock(&m->mu);
    while (m->pending > 0) pthread_cond_wait(&m->cv_done, &m->mu);
    pthread_mutex_unlock(&m->mu);
}

/* ---- background errors --------------------------------------------------- */

/* Wait until idle; if a background save failed, report it (once), re-read
 * the directory, and return its status with the message set. */
gv_status gv_take_bg_error(gv_checkpoint_manager *m, const char *fn) {
    if (!m->thread_started) return GV_OK;
    gv_wait_idle(m);
    pthread_mutex_lock(&m->mu);
    gv_status st = m->bg_status;
    char *msg = m->bg_msg;
    int64_t step = m->bg_step, last = m->bg_last_failed;
    int more = m->bg_more_failed;
    m->bg_status = GV_OK;
    m->bg_msg = NULL;
    m->bg_more_failed = 0;
    pthread_mutex_unlock(&m->mu);
    if (st == GV_OK) return GV_OK;
    gv_reload(m);
    /* the writer could not copy its message: out of memory, as a rule */
    const char *why = msg ? msg : st == GV_ERR_NOMEM ? "out of memory (no memory was left for "
                                                       "the details)" : "(no message)";
    if (more)
        gv_error(st, "%s: background save of step %" PRId64 " in '%s' failed: %s (and %d later "
                 "background save%s failed too, the last of step %" PRId64 ")", fn, step, m->dir,
                 why, more, more > 1 ? "s" : "", last);
    else
        gv_error(st, "%s: background save of step %" PRId64 " in '%s' failed: %s", fn, step,
                 m->dir, why);
    free(msg);
    return st;
}

bool gv_bg_failed(gv_checkpoint_manager *m) {
    if (!m->thread_started) return false;
    pthread_mutex_lock(&m->mu);
    bool f = m->bg_status != GV_OK;
    pthread_mutex_unlock(&m->mu);
    return f;
}
