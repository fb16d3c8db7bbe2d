/* grove: status codes and the thread-local error message.
 *
 * Every fallible grove call either returns a gv_status, or returns an object
 * pointer that is NULL on failure. In both cases gv_last_error() then holds a
 * message naming what was wrong and where (argument, file, tree path, shapes),
 * and gv_last_status() the code. Nothing in grove exits or aborts on input a
 * user or a file can cause. */
#ifndef GROVE_STATUS_H
#define GROVE_STATUS_H

#ifdef __cplusplus
extern "C" {
#endif

#pragma GCC visibility push(default) /* the public API: exported from libgrove.so */

typedef enum gv_status {
    GV_OK = 0,
    GV_ERR_ARG,         /* invalid argument: NULL, negative dim, bad axis, ... */
    GV_ERR_NOMEM,       /* an allocation failed */
    GV_ERR_OVERFLOW,    /* an element count or byte size does not fit */
    GV_ERR_SHAPE,       /* shapes do not agree */
    GV_ERR_DTYPE,       /* dtypes do not agree or are not supported here */
    GV_ERR_NOT_FOUND,   /* a path or name is not present */
    GV_ERR_EXISTS,      /* a path or name is already present */
    GV_ERR_STRUCTURE,   /* two trees differ in structure */
    GV_ERR_IO,          /* the operating system refused a file operation */
    GV_ERR_FORMAT,      /* a file or string is malformed */
    GV_ERR_UNSUPPORTED, /* valid, but not implemented for this case */
    GV_ERR_INTERNAL     /* a grove bug: please report it */
} gv_status;

/* The message of the last failed call on this thread ("" if none). The
 * pointer stays valid until the next grove call on this thread. */
const char *gv_last_error(void);

/* The status of the last failed call on this thread (GV_OK if none). */
gv_status gv_last_status(void);

/* Record an error as grove's own calls do (for a user's schedule,
 * transformation or helper that fails): gv_last_error() is then the message.
 * Returns status (GV_ERR_ARG if status is GV_OK), so code can write
 * `return gv_set_error(GV_ERR_SHAPE, "batch %d: ...", i);`. */
gv_status gv_set_error(gv_status status, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Forget the last error on this thread. */
void gv_clear_error(void);

/* A short constant name for a status ("GV_ERR_SHAPE"). */
const char *gv_status_name(gv_status status);

#pragma GCC visibility pop

#ifdef __cplusplus
}
#endif
#endif
