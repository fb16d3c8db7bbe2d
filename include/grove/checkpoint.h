/* grove: checkpoints (Orbax). Trees are saved as safetensors files whose
 * tensor names are the tree paths ("params/encoder/Dense_0/kernel"), with
 * grove metadata in the header's __metadata__ (format version, the tree
 * structure including empty subtrees and tuple/list kinds, a checksum of
 * the data region). Python reads them with the safetensors package or a
 * few lines of numpy (docs/checkpoints.md).
 *
 * Every write is atomic: written under a temporary name, fsynced, renamed,
 * and the directory fsynced, so a crash at any moment leaves either the old
 * file or the complete new one, never a half-written file under the real
 * name. Every read is strict and bounded: a bad file is an error naming the
 * file and what was wrong, never a crash. */
#ifndef GROVE_CHECKPOINT_H
#define GROVE_CHECKPOINT_H

#include "grove/eval_shape.h" /* shape-only restore targets */
#include "grove/tree.h"

#ifdef __cplusplus
extern "C" {
#endif

#pragma GCC visibility push(default) /* the public API: exported from libgrove.so */

/* ---- one tree <-> one file (Orbax's Checkpointer) ---- */

/* Save a tree of tensors to path (the file must not exist unless force). A
 * shape-only leaf is GV_ERR_ARG naming its path (it has no data to write).
 * Format: src/checkpoint/safetensors.c (tensor names are the tree paths, a
 * tree that is one leaf is named "__root__"; metadata holds the structure
 * and a zlib CRC-32 of the data). Errors: GV_ERR_ARG for a label leaf or a
 * key named "__metadata__"; GV_ERR_EXISTS; GV_ERR_NOT_FOUND for a missing
 * directory; GV_ERR_IO (with strerror) for anything else the OS refuses,
 * ENOSPC and EIO included; the old file is then intact. */
gv_status gv_checkpointer_save(const char *path, const gv_tree *tree, bool force);
/* Restore the tree as saved (structure from the metadata). New tree.
 * A safetensors file without grove metadata (Python's safetensors) is
 * rebuilt as nested dicts from its names split at '/'. Errors:
 * GV_ERR_NOT_FOUND, GV_ERR_IO, GV_ERR_FORMAT for any malformed or corrupted
 * file (naming the file and the byte offset or entry), GV_ERR_UNSUPPORTED
 * for a valid dtype grove lacks (F16, BF16, I8, I16, ...). */
gv_tree *gv_checkpointer_restore(const char *path);
/* Restore into target's structure: every path, shape and dtype must match
 * (GV_ERR_STRUCTURE naming the path and both shapes); tuples stay tuples.
 * The target's leaves may be shape-only (gv_shape_dtype_struct; a whole
 * target from gv_eval_shape, gv_eval_shape_init or gv_eval_shape_train_state),
 * so restoring needs no initialised tree; the result always has data.
 * A file without grove metadata has no kinds: it is matched by path and the
 * result takes the target's containers.
 * New tree (target is not modified). */
gv_tree *gv_checkpointer_restore_into(const char *path, const gv_tree *target);

/* ---- any file, written as checkpoints are ---- */

/* Write len bytes to path with the protocol of every grove save (a
 * temporary "<path>.tmp-<pid>-<hex>" in the same directory, every write
 * checked and short writes retried, fsync, rename, fsync of the directory):
 * a crash or a full disk leaves the old file or the complete new one. A
 * failure removes the temporary. Errors as gv_checkpointer_save. */
gv_status gv_write_file_atomic(const char *path, const void *data, size_t len, bool force);
/* Remove from directory (not below it) the temporaries of such writes whose
 * process was killed before it could remove them: "<name>.tmp-<pid>-<16 hex>"
 * regular files of a pid that no longer runs. Nothing else is touched. A
 * program that writes into a directory calls it when it starts (the
 * checkpoint manager does so for its own directory). *nremoved may be NULL. */
gv_status gv_remove_stale_temporaries(const char *directory, size_t *nremoved);

/* ---- a directory of steps (Orbax's CheckpointManager) ---- */

typedef struct gv_checkpoint_manager gv_checkpoint_manager;

/* CheckpointManagerOptions. Every field's zero is Orbax's default, and NULL
 * options are the same as a zeroed struct, so a designated initialiser names
 * only what differs: &(gv_checkpoint_options){.max_to_keep = 2} keeps two
 * steps and creates a missing directory, as NULL does. */
typedef struct gv_checkpoint_options {
    int max_to_keep;             /* 0 = keep all (Orbax None); n > 0 keeps n */
    int64_t save_interval_steps; /* should_save: step % interval == 0 (0 or 1 = every step) */
    int64_t keep_period;         /* steps that are multiples are never deleted (0 = off) */
    const char *best_metric;     /* metrics path used to rank checkpoints (NULL = by step) */
    bool best_mode_min;          /* with best_metric: lower is better (Orbax best_mode='min';
                                    default higher, 'max') */
    bool drop_checkpoints_without_metrics; /* with best_metric: steps saved without metrics
                                    may be deleted (Orbax keep_checkpoints_without_metrics=False) */
    bool must_exist;             /* GV_ERR_NOT_FOUND for a missing directory (Orbax create=False);
                                    default: create it and its parents */
    bool async;                  /* save on a background thread (default synchronous) */
} gv_checkpoint_options;

/* Open (and clean up leftover temporaries in) directory. New manager. */
gv_checkpoint_manager *gv_checkpoint_manager_new(const char *directory,
                                                 const gv_checkpoint_options *opts);
/* mngr.close(): writes every queued async save, stops the writer thread and
 * frees m (NULL is a no-op). Returns GV_OK, or the first background failure
 * not yet reported (the message names its step and counts later failures).
 * m is freed either way. A manager never closed is drained at process exit,
 * its failures written to stderr (docs/checkpoints.md, Async saves). */
gv_status gv_checkpoint_manager_close(gv_checkpoint_manager *m);

bool gv_checkpoint_manager_should_save(const gv_checkpoint_manager *m, int64_t step);
/* Save several named items for one step (Orbax composite: "state",
 * "config", ...), with optional metrics (a tree of scalars, may be NULL).
 * A shape-only leaf in an item or the metrics is GV_ERR_ARG naming the item
 * and path, at once, also for async saves.
 * The trees are snapshotted before return; with async the writing
 * continues in the background. An earlier background failure is returned
 * here. */
gv_status gv_checkpoint_manager_save(gv_checkpoint_manager *m, int64_t step,
                                     const char *const *item_names, const gv_tree *const *items,
                                     int nitems, const gv_tree *metrics);
gv_status gv_checkpoint_manager_wait_until_finished(gv_checkpoint_manager *m);

/* Steps on disk, ascending (*steps malloc'd; caller frees). */
gv_status gv_checkpoint_manager_all_steps(gv_checkpoint_manager *m, int64_t **steps, size_t *n);
/* -1 if none. */
int64_t gv_checkpoint_manager_latest_step(gv_checkpoint_manager *m);
int64_t gv_checkpoint_manager_best_step(gv_checkpoint_manager *m);
/* Restore one item of a step (as saved, or into target when not NULL);
 * step < 0 is the latest (Orbax's step=None). A bad file is an error naming
 * it (GV_ERR_FORMAT, GV_ERR_IO; GV_ERR_NOT_FOUND for a missing item). */
gv_tree *gv_checkpoint_manager_restore(gv_checkpoint_manager *m, int64_t step,
                                       const char *item_name, const gv_tree *target);

/* ---- restoring the latest step that reads cleanly ---- */

typedef struct gv_restore_options {
    /* Pass over steps whose files do not read cleanly (GV_ERR_FORMAT:
     * truncated, corrupted; GV_ERR_IO; GV_ERR_NOT_FOUND: an item missing),
     * newest first, and restore the newest step that reads. Default (false):
     * the latest step's error is returned, as gv_checkpoint_manager_restore. */
    bool skip_unreadable;
} gv_restore_options;

/* Which step a restore came from, and the steps it passed over. */
typedef struct gv_restore_result {
    int64_t step;          /* the step restored; -1 if none */
    size_t nskipped;       /* steps passed over, newest first */
    int64_t *skipped;      /* nskipped steps (malloc'd; NULL if none) */
    char *skipped_message; /* one line per skipped step, "step 30: <why, naming the file>"
                              (malloc'd; NULL if none): for the caller to print or log */
} gv_restore_result;

/* Free the result's arrays and reset it (step -1). NULL is a no-op. */
void gv_restore_result_clear(gv_restore_result *result);

/* Restore items of the latest step, all from the same step (Orbax's
 * mngr.restore(None, args=Composite(...))): out[i] gets item_names[i], as
 * saved or into targets[i] (targets may be NULL, or hold NULL entries; a
 * target may be shape-only, see eval_shape.h). With opts->skip_unreadable
 * a step any of whose items does not read is passed over (never silently:
 * *result names it and why); opts may be NULL. result may be NULL; else it
 * is filled in on success and failure, and the caller clears it.
 *
 *   gv_tree *state;
 *   gv_restore_result res;
 *   gv_status st = gv_checkpoint_manager_restore_latest(
 *       m, (const char *[]){"state"}, (const gv_tree *[]){target}, 1, &state,
 *       &(gv_restore_options){.skip_unreadable = true}, &res);
 *   if (st == GV_OK && res.nskipped) fprintf(stderr, "%s\n", res.skipped_message);
 *   gv_restore_result_clear(&res);
 *
 * Returns GV_OK with every out[i] a new tree the caller frees, or an error
 * with every out[i] NULL: GV_ERR_NOT_FOUND for no checkpoints, or when every
 * step was skipped (the message lists them); a restore error that is not an
 * unreadable file (GV_ERR_STRUCTURE against a target, GV_ERR_UNSUPPORTED,
 * GV_ERR_NOMEM) is returned at once, older steps untried. */
gv_status gv_checkpoint_manager_restore_latest(gv_checkpoint_manager *m,
                                               const char *const *item_names,
                                               const gv_tree *const *targets, int nitems,
                                               gv_tree **out, const gv_restore_options *opts,
                                               gv_restore_result *result);
gv_status gv_checkpoint_manager_delete(gv_checkpoint_manager *m, int64_t step);

#pragma GCC visibility pop

#ifdef __cplusplus
}
#endif
#endif
