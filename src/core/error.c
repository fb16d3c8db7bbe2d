#include "error.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* One heap buffer per thread: messages have no fixed length limit. */
static _Thread_local char *err_msg;
static _Thread_local gv_status err_status;
static _Thread_local unsigned long long err_count;
/* Where a message goes when its heap buffer cannot be allocated (out of
 * memory, the very failure being reported), cut to this size: a short
 * message beats an empty or a stale one. err_msg may point here. */
static _Thread_local char err_fallback[256];

static void msg_free(char *m) {
    if (m != err_fallback) free(m);
}

/* err_msg = format(fmt, ap) followed by tail (tail may be NULL, and may be
 * err_fallback itself). */
static void store(const char *fmt, va_list ap, const char *tail) {
    va_list ap2;
    va_copy(ap2, ap);
    int n = vsnprintf(NULL, 0, fmt, ap);
    if (n < 0) n = 0;
    size_t tlen = tail ? strlen(tail) : 0;
    char *buf = malloc((size_t)n + tlen + 1);
    if (buf) {
        vsnprintf(buf, (size_t)n + 1, fmt, ap2);
        if (tlen) memcpy(buf + n, tail, tlen);
        buf[(size_t)n + tlen] = '\0';
    } else { /* built on the stack first: tail may be the fallback buffer */
        char tmp[sizeof err_fallback];
        vsnprintf(tmp, sizeof tmp, fmt, ap2);
        size_t used = strlen(tmp), k = tlen < sizeof tmp - 1 - used ? tlen : sizeof tmp - 1 - used;
        memcpy(tmp + used, tail ? tail : "", k);
        tmp[used + k] = '\0';
        memcpy(err_fallback, tmp, used + k + 1);
        buf = err_fallback;
    }
    if (err_msg != buf) msg_free(err_msg);
    err_msg = buf;
    va_end(ap2);
}

gv_status gv_error(gv_status status, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    store(fmt, ap, NULL);
    va_end(ap);
    err_status = status;
    err_count++;
    return status;
}

gv_status gv_set_error(gv_status status, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    store(fmt, ap, NULL);
    va_end(ap);
    err_status = status != GV_OK ? status : GV_ERR_ARG;
    err_count++;
    return err_status;
}

gv_status gv_error_prefix(const char *fmt, ...) {
    char *old = err_msg;
    err_msg = NULL;
    va_list ap;
    va_start(ap, fmt);
    store(fmt, ap, old);
    va_end(ap);
    if (old != err_msg) msg_free(old);
    return err_status;
}

const char *gv_last_error(void) { return err_msg ? err_msg : ""; }

gv_status gv_last_status(void) { return err_status; }

void gv_clear_error(void) {
    msg_free(err_msg);
    err_msg = NULL;
    err_status = GV_OK;
}

unsigned long long gv_error_count(void) { return err_count; }

gv_error_saved gv_error_save(void) {
    gv_error_saved s = {err_msg == err_fallback ? strdup(err_fallback) : err_msg, err_status};
    err_msg = NULL;
    err_status = GV_OK;
    return s;
}

void gv_error_restore(gv_error_saved *saved) {
    msg_free(err_msg);
    err_msg = saved->msg;
    err_status = saved->status;
    saved->msg = NULL;
}

const char *gv_status_name(gv_status s) {
    switch (s) {
    case GV_OK: return "GV_OK";
    case GV_ERR_ARG: return "GV_ERR_ARG";
    case GV_ERR_NOMEM: return "GV_ERR_NOMEM";
    case GV_ERR_OVERFLOW: return "GV_ERR_OVERFLOW";
    case GV_ERR_SHAPE: return "GV_ERR_SHAPE";
    case GV_ERR_DTYPE: return "GV_ERR_DTYPE";
    case GV_ERR_NOT_FOUND: return "GV_ERR_NOT_FOUND";
    case GV_ERR_EXISTS: return "GV_ERR_EXISTS";
    case GV_ERR_STRUCTURE: return "GV_ERR_STRUCTURE";
    case GV_ERR_IO: return "GV_ERR_IO";
    case GV_ERR_FORMAT: return "GV_ERR_FORMAT";
    case GV_ERR_UNSUPPORTED: return "GV_ERR_UNSUPPORTED";
    case GV_ERR_INTERNAL: return "GV_ERR_INTERNAL";
    }
    return "GV_ERR_UNKNOWN";
}
