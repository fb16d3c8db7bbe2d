/* vae: whole-file reads and atomic whole-file writes for the run directory
 * (metrics.jsonl, loss.svg). */
#ifndef VAE_FILEIO_H
#define VAE_FILEIO_H

#include <stddef.h>

/* The file's bytes plus a terminating NUL (malloc'd; *len excludes the NUL),
 * or NULL with errno set. */
char *vae_read_file(const char *path, size_t *len);

/* Replace path with text: written to "<path>.tmp.<pid>", fsync'd, renamed
 * over path; on failure the temporary is removed and path is untouched.
 * Returns 0, or -1 with a message naming the file in err (errlen bytes; err
 * may be NULL). */
int vae_write_file_atomic(const char *path, const char *text, size_t len, char *err,
                          size_t errlen);

#endif
