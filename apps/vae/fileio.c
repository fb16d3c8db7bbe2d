/* See fileio.h. */
#define _POSIX_C_SOURCE 200809L
#include "fileio.h"

#include <grove/grove.h>

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static void set_err(char *err, size_t errlen, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void set_err(char *err, size_t errlen, const char *fmt, ...) {
    if (!err || !errlen) return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
}

char *vae_strfmt(const char *fmt, ...) {
    va_list ap, again;
    va_start(ap, fmt);
    va_copy(again, ap);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    char *s = n >= 0 ? malloc((size_t)n + 1) : NULL;
    if (s) vsnprintf(s, (size_t)n + 1, fmt, again);
    va_end(again);
    if (!s) errno = n < 0 ? EOVERFLOW : ENOMEM;
    return s;
}

char *vae_read_file(const char *path, size_t *len) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    char *buf = NULL;
    size_t cap = 0, n = 0;
    for (;;) {
        if (n + 4096 + 1 > cap) {
            cap = 2 * cap + 8192;
            char *nb = realloc(buf, cap);
            if (!nb) return free(buf), fclose(f), NULL;
            buf = nb;
        }
        size_t got = fread(buf + n, 1, 4096, f);
        n += got;
        if (got < 4096) break;
    }
    bool err = ferror(f);
    fclose(f);
    if (err) return free(buf), NULL;
    buf[n] = 0;
    *len = n;
    return buf;
}

int vae_write_all(int fd, const char *p, size_t n) {
    while (n > 0) {
        ssize_t w = write(fd, p, n);
        if (w < 0) {
            if (errno == EINTR) continue;
            return -1;
        }
        if (w == 0) {
            errno = ENOSPC;
            return -1;
        }
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

int vae_write_file_atomic(const char *path, const char *text, size_t len, char *err,
                          size_t errlen) {
    /* grove's own atomic write: the checkpoints' protocol, fault hooks and
     * stale-temporary cleanup (gv_remove_stale_temporaries) included */
    if (gv_write_file_atomic(path, text, len, true) == GV_OK) return 0;
    set_err(err, errlen, "%s", gv_last_error());
    return -1;
}

