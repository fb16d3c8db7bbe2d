/* grove: atomic single-file writes (see io_internal.h for the protocol). */
#define _GNU_SOURCE
#include "io_internal.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "core/error.h"
#include "grove/checkpoint.h"

#ifdef GROVE_IO_HOOKS /* the tests' build of this file (CMakeLists.txt) */
static gv_atomic_io_hooks io_hooks;

void gv_atomic_io_set_hooks(const gv_atomic_io_hooks *hooks) {
    if (hooks) io_hooks = *hooks;
    else memset(&io_hooks, 0, sizeof io_hooks);
}

static ssize_t do_write(int fd, const void *buf, size_t count) {
    if (io_hooks.write) return io_hooks.write(fd, buf, count, io_hooks.userdata);
    return write(fd, buf, count);
}

static int do_fsync(int fd) {
    if (io_hooks.fsync) return io_hooks.fsync(fd, io_hooks.userdata);
    return fsync(fd);
}
#else
static ssize_t do_write(int fd, const void *buf, size_t count) { return write(fd, buf, count); }
static int do_fsync(int fd) { return fsync(fd); }
#endif

static gv_status os_error(int err, const char *what, const char *path) {
    gv_status st = err == ENOENT ? GV_ERR_NOT_FOUND : err == EEXIST ? GV_ERR_EXISTS : GV_ERR_IO;
    return gv_error(st, "%s '%s': %s", what, path, strerror(err));
}

/* Write all of buf, retrying short writes and EINTR. Returns 0 or an errno. */
static int write_all(int fd, const unsigned char *buf, size_t n) {
    while (n > 0) {
        size_t chunk = n > ((size_t)1 << 30) ? ((size_t)1 << 30) : n;
        ssize_t w = do_write(fd, buf, chunk);
        if (w < 0) {
            if (errno == EINTR) continue;
            return errno ? errno : EIO;
        }
        if (w == 0) return ENOSPC; /* write(2) returning 0 for n > 0: no progress */
        buf += w;
        n -= (size_t)w;
    }
    return 0;
}

/* The directory part of path ("." if none). Malloc'd. */
static char *dir_of(const char *path) {
    const char *slash = strrchr(path, '/');
    if (!slash) return strdup(".");
    if (slash == path) return strdup("/");
    return strndup(path, (size_t)(slash - path));
}

static uint64_t random_u64(void) {
    uint64_t r = 0;
    if (getrandom(&r, sizeof r, GRND_NONBLOCK) != (ssize_t)sizeof r) {
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        static _Thread_local uint64_t counter;
        r = ((uint64_t)ts.tv_nsec << 20) ^ (uint64_t)ts.tv_sec ^ (++counter * 0x9E3779B97F4A7C15ull) ^
            (uint64_t)(uintptr_t)&r;
    }
    return r;
}

/* rename tmp -> path without replacing an existing path. Returns 0 or errno. */
static int rename_noreplace(const char *tmp, const char *path) {
#ifdef RENAME_NOREPLACE
    if (renameat2(AT_FDCWD, tmp, AT_FDCWD, path, RENAME_NOREPLACE) == 0) return 0;
    if (errno != EINVAL && errno != ENOSYS && errno != ENOTSUP) return errno;
#endif
    /* Filesystems without RENAME_NOREPLACE: link() fails with EEXIST too. */
    if (link(tmp, path) != 0) return errno;
    unlink(tmp);
    return 0;
}

gv_status gv_atomic_write_file(const char *path, const void *const *chunks, const size_t *sizes,
                               int n, bool force) {
    if (!path || !*path) return gv_error(GV_ERR_ARG, "gv_atomic_write_file: path is NULL or empty");
    if (n < 0 || (n > 0 && (!chunks || !sizes)))
        return gv_error(GV_ERR_ARG, "gv_atomic_write_file: '%s': bad chunk list", path);
    for (int i = 0; i < n; i++)
        if (!chunks[i] && sizes[i])
            return gv_error(GV_ERR_ARG, "gv_atomic_write_file: '%s': chunk %d is NULL", path, i);

    /* Fail fast, before writing anything; the rename re-checks atomically. */
    struct stat sb;
    if (!force && lstat(path, &sb) == 0)
        return gv_error(GV_ERR_EXISTS, "'%s' already exists (pass force to overwrite)", path);

    size_t tlen = strlen(path) + 64;
    char *tmp = malloc(tlen);
    if (!tmp) return gv_error(GV_ERR_NOMEM, "out of memory saving '%s'", path);
    int fd = -1;
    for (int attempt = 0; attempt < 16 && fd < 0; attempt++) {
        snprintf(tmp, tlen, "%s" GV_ATOMIC_TMP_MARKER "%ld-%016llx", path, (long)getpid(),
                 (unsigned long long)random_u64());
        fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
        if (fd < 0 && errno != EEXIST) break;
    }
    if (fd < 0) {
        gv_status st = os_error(errno, "cannot create temporary file", tmp);
        free(tmp);
        return st;
    }

    int err = 0;
    const char *what = "cannot write";
    for (int i = 0; i < n && !err; i++)
        if (sizes[i]) err = write_all(fd, chunks[i], sizes[i]);
    if (!err && do_fsync(fd) != 0) err = errno ? errno : EIO, what = "cannot fsync";
    if (close(fd) != 0 && !err) err = errno ? errno : EIO, what = "cannot close";
    if (err) {
        unlink(tmp);
        gv_status st = os_error(err, what, tmp);
        gv_error_prefix("saving '%s': ", path);
        free(tmp);
        return st == GV_ERR_NOT_FOUND ? GV_ERR_IO : st;
    }

    if (force) {
        if (rename(tmp, path) != 0) err = errno;
    } else {
        err = rename_noreplace(tmp, path);
    }
    if (err) {
        unlink(tmp);
        gv_status st = err == EEXIST
                           ? gv_error(GV_ERR_EXISTS, "'%s' already exists (pass force to overwrite)", path)
                           : os_error(err, "cannot rename temporary file to", path);
        free(tmp);
        return st;
    }
    free(tmp);

    /* Make the rename durable. Some filesystems refuse fsync on a directory
     * (EINVAL); there is nothing more to do on those. */
    char *dir = dir_of(path);
    if (!dir) return gv_error(GV_ERR_NOMEM, "out of memory saving '%s'", path);
    int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    gv_status st = GV_OK;
    if (dfd < 0) {
        st = os_error(errno, "saved, but cannot open the directory to fsync it:", dir);
    } else {
        if (do_fsync(dfd) != 0 && errno != EINVAL)
            st = os_error(errno, "saved, but cannot fsync the directory", dir);
        close(dfd);
    }
    free(dir);
    return st;
}

/* ---- the public forms ---- */

gv_status gv_write_file_atomic(const char *path, const void *data, size_t len, bool force) {
    if (!data && len) return gv_error(GV_ERR_ARG, "gv_write_file_atomic: '%s': data is NULL", path ? path : "");
    const void *chunks[1] = {data};
    gv_status st = gv_atomic_write_file(path, chunks, &len, 1, force);
    if (st) gv_error_prefix("gv_write_file_atomic: ");
    return st;
}

/* "<name>.tmp-<pid>-<16 hex>" of a process that no longer runs (or is this
 * one: a name we are not writing right now is a leftover of an earlier
 * process with our pid). */
static bool stale_temporary(const char *name) {
    const char *m = strstr(name, GV_ATOMIC_TMP_MARKER), *next;
    for (; m; m = next) { /* the last marker: names may contain ".tmp-" themselves */
        next = strstr(m + 1, GV_ATOMIC_TMP_MARKER);
        if (!next) break;
    }
    if (!m || m == name) return false;
    const char *p = m + strlen(GV_ATOMIC_TMP_MARKER), *e = p;
    while (*e >= '0' && *e <= '9') e++;
    if (e == p || e - p > 9 || *e != '-') return false;
    const char *h = e + 1;
    for (int i = 0; i < 16; i++)
        if (!((h[i] >= '0' && h[i] <= '9') || (h[i] >= 'a' && h[i] <= 'f'))) return false;
    if (h[16]) return false;
    long pid = strtol(p, NULL, 10);
    if (pid <= 0 || (pid_t)pid == getpid()) return pid > 0;
    return kill((pid_t)pid, 0) != 0 && errno == ESRCH;
}

gv_status gv_remove_stale_temporaries(const char *directory, size_t *nremoved) {
    if (nremoved) *nremoved = 0;
    if (!directory || !*directory)
        return gv_error(GV_ERR_ARG, "gv_remove_stale_temporaries: directory is NULL or empty");
    DIR *d = opendir(directory);
    if (!d) return os_error(errno, "cannot list", directory);
    gv_status st = GV_OK;
    struct dirent *de;
    size_t n = 0;
    while ((de = readdir(d))) {
        if (!stale_temporary(de->d_name)) continue;
        char *p = NULL;
        if (asprintf(&p, "%s/%s", directory, de->d_name) < 0) {
            st = gv_error(GV_ERR_NOMEM, "out of memory");
            break;
        }
        struct stat sb;
        if (lstat(p, &sb) == 0 && S_ISREG(sb.st_mode)) {
            if (unlink(p) == 0) n++;
            else if (errno != ENOENT) st = os_error(errno, "cannot remove the stale temporary", p);
        }
        free(p);
        if (st) break;
    }
    closedir(d);
    if (nremoved) *nremoved = n;
    return st;
}
