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

#endif
