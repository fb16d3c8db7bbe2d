/* grove internal: atomic file writes, shared by the checkpointer
 * (safetensors.c) and the checkpoint manager.
 *
 * The protocol (reference D4, "AtomicRename", done for a single file):
 *   1. create "<path>.tmp-<pid>-<random>" in the same directory (O_EXCL);
 *   2. write every chunk, checking every write (short writes are retried,
 *      ENOSPC/EIO are errors);
 *   3. fsync the file, then close it (close errors are errors too);
 *   4. rename it over <path>: with force=false the rename refuses an existing
 *      <path> atomically (renameat2 RENAME_NOREPLACE, or link+unlink where the
 *      filesystem lacks it), so two writers never overwrite each other;
 *   5. fsync the directory, so the rename itself is durable.
 * On any failure before step 4 the temporary file is removed and <path> is
 * untouched. Temporaries left by a crash match GV_ATOMIC_TMP_MARKER; a
 * manager may delete "<name>.tmp-*" files it finds at startup. */
#ifndef GROVE_CHECKPOINT_IO_INTERNAL_H
#define GROVE_CHECKPOINT_IO_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#include "grove/status.h"

/* The infix of temporary names: "<path>" GV_ATOMIC_TMP_MARKER "<pid>-<hex>". */
#define GV_ATOMIC_TMP_MARKER ".tmp-"

/* Write the concatenation of chunks[0..n-1] (sizes[i] bytes each; a chunk
 * of size 0 may be NULL) to path atomically, as described above.
 * Errors (message names the path and strerror(errno)):
 *   GV_ERR_ARG        NULL path, n < 0, a NULL chunk with a non-zero size
 *   GV_ERR_EXISTS     path exists and force is false
 *   GV_ERR_NOT_FOUND  the directory does not exist
 *   GV_ERR_IO         anything else the OS refused (EACCES, ENOSPC, EIO,
 *                     ENOTDIR, ...). If only the final directory fsync fails,
 *                     the new file is already in place under path. */
gv_status gv_atomic_write_file(const char *path, const void *const *chunks, const size_t *sizes,
                               int n, bool force);

/* ---- fault injection, for tests only ---- */

/* Replacements for write(2) and fsync(2) used by gv_atomic_write_file; NULL
 * members mean the real call. Set errno and return -1 to simulate a failure
 * (e.g. ENOSPC after some bytes). Not thread-safe: set it only while no save
 * is running, and reset it with gv_atomic_io_set_hooks(NULL).
 * Defined only in the build of atomic_write.c with GROVE_IO_HOOKS, which the
 * test programs link (tests/CMakeLists.txt); libgrove.a and libgrove.so have
 * no hooks, so library code calling this fails to link. */
typedef struct gv_atomic_io_hooks {
    ssize_t (*write)(int fd, const void *buf, size_t count, void *userdata);
    int (*fsync)(int fd, void *userdata);
    void *userdata;
} gv_atomic_io_hooks;

void gv_atomic_io_set_hooks(const gv_atomic_io_hooks *hooks);

#endif
