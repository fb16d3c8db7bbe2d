/* vae: whole-file reads and atomic whole-file writes for the run directory
 * (metrics.jsonl, loss.svg), and the paths to them. */
#ifndef VAE_FILEIO_H
#define VAE_FILEIO_H

#include <stddef.h>

/* A new string formatted like printf, of exactly the length it needs (no
 * limit on path length: "<run-dir>/metrics.jsonl" for any run dir). The
 * caller frees it. NULL with errno set (ENOMEM; EOVERFLOW past INT_MAX bytes). */
char *vae_strfmt(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* The file's bytes plus a terminating NUL (malloc'd; *len excludes the NUL),
 * or NULL with errno set. */
char *vae_read_file(const char *path, size_t *len);

/* write(2) all n bytes to fd, retrying short writes and EINTR. 0, or -1
 * with errno set (ENOSPC for a write that wrote nothing). */
int vae_write_all(int fd, const char *p, size_t n);

/* Replace path with text atomically (gv_write_file_atomic: a temporary,
 * fsync'd, renamed over path; on failure the temporary is removed and path
 * is untouched).
 * Returns 0, or -1 with a message naming the file in err (errlen bytes; err
 * may be NULL). */
int vae_write_file_atomic(const char *path, const char *text, size_t len, char *err,
                          size_t errlen);

#endif
