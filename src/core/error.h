/* grove internal: setting the thread-local error. */
#ifndef GROVE_CORE_ERROR_H
#define GROVE_CORE_ERROR_H

#include "grove/status.h"

/* Record `status` with a printf-style message; returns `status` so callers
 * can write `return gv_error(GV_ERR_ARG, "...")`. */
gv_status gv_error(gv_status status, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* Prefix the current message with more context ("file x: " + old message),
 * keeping the status. Returns the current status. */
gv_status gv_error_prefix(const char *fmt, ...)
    __attribute__((format(printf, 1, 2)));

/* How many errors gv_error has recorded on this thread so far. To tell
 * whether a user callback set a message, compare the count before and after
 * the call: unlike clearing the error first, this keeps an error the caller
 * still holds. */
unsigned long long gv_error_count(void);

/* The thread's error, taken out (gv_error_save leaves none pending) and put
 * back (gv_error_restore drops whatever was set in between). For a probe
 * whose failure is an expected answer, handled by the caller, so that the
 * probe neither leaves its own message behind nor erases the caller's. */
typedef struct gv_error_saved {
    char *msg;
    gv_status status;
} gv_error_saved;
gv_error_saved gv_error_save(void);
void gv_error_restore(gv_error_saved *saved);

#endif
