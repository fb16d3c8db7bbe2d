/* grove internal: the checkpoint manager's state, shared by manager.c (the
 * step directories, saving and restoring items, the writer thread) and
 * retention.c (which steps are kept, and when to save). */
#ifndef GROVE_CHECKPOINT_MANAGER_INTERNAL_H
#define GROVE_CHECKPOINT_MANAGER_INTERNAL_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "grove/checkpoint.h"

typedef struct ckpt_entry {
    int64_t step;
    bool has_metric;
    double metric;
} ckpt_entry;

/* One step to write and the old steps to delete (defined in manager.c). */
typedef struct ckpt_job ckpt_job;

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
};

/* ---- retention.c ---- */

/* keep[i] for each of the n entries e (ascending by step): the retention
 * rules of retention.c, for m's options. The newest entry is always kept. */
void gv_plan_retention(const gv_checkpoint_manager *m, const ckpt_entry *e, size_t n, bool *keep);

#endif
