/* An LD_PRELOAD library that makes one write(2) or fsync(2) of a program
 * fail, to test that every file the program writes survives it:
 *
 *   GROVE_FAULT_WRITE=k   the k-th write to a regular file (1-based, all
 *                         threads, stdout/stderr and pipes not counted)
 *   GROVE_FAULT_KIND      enospc | eio: it fails with that errno, writing
 *                         nothing; short: it writes half of what was asked
 *                         (at least one byte) and succeeds
 *   GROVE_FAULT_FSYNC=k   the k-th fsync (of a file or a directory) fails
 *                         with EIO
 *   GROVE_FAULT_LOG=path  at exit, "writes N fsyncs M faults F" goes there
 *   GROVE_FAULT_NOSYNC=1  the fsyncs that do not fail return at once
 *                         without syncing: the hundreds of runs of the test
 *                         are bound by the disk otherwise, and what they
 *                         check (which bytes end up in which file) does not
 *                         depend on when the disk gets them
 *
 * grove's own files (checkpoints, PNGs, Flax msgpack) and the vae
 * program's (metrics.jsonl, loss.svg) are all written with write(2), so
 * every write of every one of them can be made to fail in turn
 * (tests/faults/faults.sh). Calls glibc makes internally (stdio) are not
 * seen, which is why none of those files is written through stdio. */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static ssize_t (*real_write)(int, const void *, size_t);
static int (*real_fsync)(int);
static atomic_long nwrites, nfsyncs, nfaults;
static long fault_write, fault_fsync;
static int kind; /* 0 enospc, 1 eio, 2 short */
static int nosync;

__attribute__((constructor)) static void init(void) {
    real_write = (ssize_t (*)(int, const void *, size_t))dlsym(RTLD_NEXT, "write");
    real_fsync = (int (*)(int))dlsym(RTLD_NEXT, "fsync");
    const char *w = getenv("GROVE_FAULT_WRITE"), *f = getenv("GROVE_FAULT_FSYNC"),
               *k = getenv("GROVE_FAULT_KIND");
    fault_write = w ? atol(w) : 0;
    fault_fsync = f ? atol(f) : 0;
    nosync = getenv("GROVE_FAULT_NOSYNC") != NULL;
    kind = !k || !strcmp(k, "enospc") ? 0 : !strcmp(k, "eio") ? 1 : !strcmp(k, "short") ? 2 : -1;
    if (kind < 0) {
        fprintf(stderr, "faultwrite: GROVE_FAULT_KIND=%s: expected enospc, eio or short\n", k);
        _exit(2);
    }
}

__attribute__((destructor)) static void report(void) {
    const char *log = getenv("GROVE_FAULT_LOG");
    if (!log) return;
    FILE *f = fopen(log, "w");
    if (!f) return;
    fprintf(f, "writes %ld fsyncs %ld faults %ld\n", (long)nwrites, (long)nfsyncs, (long)nfaults);
    fclose(f);
}

static int regular(int fd) {
    struct stat st;
    return fstat(fd, &st) == 0 && S_ISREG(st.st_mode);
}

ssize_t write(int fd, const void *buf, size_t count) {
    if (!real_write) init();
    if (fd > 2 && regular(fd) && ++nwrites == fault_write) {
        ++nfaults;
        if (kind == 2) return real_write(fd, buf, count > 1 ? count / 2 : count);
        errno = kind == 0 ? ENOSPC : EIO;
        return -1;
    }
    return real_write(fd, buf, count);
}

int fsync(int fd) {
    if (!real_fsync) init();
    if (++nfsyncs == fault_fsync) {
        ++nfaults;
        errno = EIO;
        return -1;
    }
    return nosync ? 0 : real_fsync(fd);
}
