/* grove internal: the checkpoint manager's state, shared by manager.c (the
 * step directories, saving and restoring items), writer.c (async saves: the
 * save jobs, the bounded queue, the writer thread), retention.c (which
 * steps are kept, and when to save) and restore.c (restoring the latest
 * step that reads cleanly). */
#ifndef GROVE_CHECKPOINT_MANAGER_INTERNAL_H
#define GROVE_CHECKPOINT_MANAGER_INTERNAL_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "grove/checkpoint.h"

typedef struct ckpt_entry {
    int64_t step;
    bool has_metric;
    double metric;
} ckpt_entry;

/* One step to write, then the old steps to delete once it has committed.
 * Made, snapshotted and queued by writer.c; written by manager.c's gv_run_job. */
typedef struct ckpt_job {
    struct ckpt_job *next;
    int64_t step;
    int nitems;
    char **names;
    const gv_tree **items; /* snapshots owned by the job when owned */
    const gv_tree *metrics;
    bool owned;
    int64_t *del;
    size_t ndel;
} ckpt_job;

struct gv_checkpoint_manager {
    char *dir;
    gv_checkpoint_options opts;
    char *best_metric;

    /* caller-side state: the steps on disk plus pending saves, ascending */
    ckpt_entry *steps;
    size_t nsteps, capsteps;

    /* async: queue and first background error, guarded by mu */
    bool thread_started;
    pthread_t thread;
    pthread_mutex_t mu;
    pthread_cond_t cv_work; /* a job was queued, or stop */
    pthread_cond_t cv_done; /* a job finished */
    ckpt_job *head, *tail;
    int pending; /* queued + being written */
    ckpt_job *spare; /* written jobs kept for their snapshot buffers */
    int nspare;
    bool stop;
    gv_status bg_status;
    char *bg_msg;
    int64_t bg_step;
    int bg_more_failed;     /* later background saves that failed too */
    int64_t bg_last_failed; /* the step of the last of them */

    /* the managers with a writer thread, drained at exit (writer.c) */
    struct gv_checkpoint_manager *live_next;
    pid_t live_pid; /* the process whose writer thread this is */
};

/* ---- manager.c ---- */

/* Re-read the step list from the directory (only when nothing is queued). */
gv_status gv_reload(gv_checkpoint_manager *m);

/* Write the job's step into dir, then delete its old steps (unless
 * skip_deletes). Runs on the caller's thread or the writer thread. */
gv_status gv_run_job(const char *dir, const ckpt_job *job, bool skip_deletes);

/* One item of a committed step, as saved (target NULL) or into target. The
 * caller has waited for the writer. NULL with the error set and prefixed
 * "fn: step <step> item '<name>': " (GV_ERR_NOT_FOUND for a missing file). */
gv_tree *gv_restore_item(const gv_checkpoint_manager *m, int64_t step, const char *item_name,
                         const gv_tree *target, const char *fn);

/* ---- writer.c ---- */

/* A job holding the items: snapshots when owned, else borrowed pointers.
 * NULL with the error set. gv_job_free(NULL) does nothing. */
ckpt_job *gv_new_job(const char *const *names, const gv_tree *const *items, int nitems,
                     const gv_tree *metrics, bool owned, int64_t step);
void gv_job_free(ckpt_job *job);

/* A spare job whose snapshots fit these items, refilled from them; NULL if
 * none fits. */
ckpt_job *gv_take_spare(gv_checkpoint_manager *m, const char *const *names,
                        const gv_tree *const *items, int nitems, const gv_tree *metrics);

/* The bounded queue: wait for room, then queue (one caller thread only). */
void gv_wait_room(gv_checkpoint_manager *m);
void gv_queue_job(gv_checkpoint_manager *m, ckpt_job *job);

/* The writer thread's function (arg: the manager), and waiting for it to
 * finish the queue. */
void *gv_writer_main(void *arg);
void gv_wait_idle(gv_checkpoint_manager *m);

/* Start m's writer thread and register m to be drained at exit; stop it
 * (after the queue is empty) and unregister m. */
gv_status gv_writer_start(gv_checkpoint_manager *m);
void gv_writer_stop(gv_checkpoint_manager *m);

/* A background failure: reported once by gv_take_bg_error (which waits for
 * the writer first); gv_bg_failed only tests for one. */
gv_status gv_take_bg_error(gv_checkpoint_manager *m, const char *fn);
bool gv_bg_failed(gv_checkpoint_manager *m);

/* ---- retention.c ---- */

/* keep[i] for each of the n entries e (ascending by step): the retention
 * rules of retention.c, for m's options. The newest entry is always kept. */
void gv_plan_retention(const gv_checkpoint_manager *m, const ckpt_entry *e, size_t n, bool *keep);

#endif
