/* libFuzzer target: any bytes given to the IDX reader, plain or gzip, must
 * give a tensor or a clean error naming the file, never a crash, a leak or
 * undefined behaviour. Built and run by scripts/fuzz.sh. The input goes
 * through a memory file (memfd), read by path as a user's file would be; a
 * tensor that is read is written again and must read back equal. */
#define _GNU_SOURCE
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "grove/data.h"

static char out_path[64];

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    int fd = memfd_create("idx", 0);
    if (fd < 0) abort();
    for (size_t off = 0; off < size;) {
        ssize_t w = write(fd, data + off, size - off);
        if (w <= 0) abort();
        off += (size_t)w;
    }
    char path[64];
    snprintf(path, sizeof path, "/proc/self/fd/%d", fd);
    gv_tensor *t = gv_idx_read(path);
    if (!t && !strstr(gv_last_error(), path)) {
        fprintf(stderr, "the error does not name the file: %s\n", gv_last_error());
        abort();
    }
    if (t) {
        if (!out_path[0]) snprintf(out_path, sizeof out_path, "/tmp/gv-fuzz-%ld.idx", (long)getpid());
        if (gv_idx_write(out_path, t, true) == GV_OK) {
            gv_tensor *r = gv_idx_read(out_path);
            if (!r || !gv_tensor_equal(r, t)) {
                fprintf(stderr, "round trip failed: %s\n", gv_last_error());
                abort();
            }
            gv_tensor_free(r);
        }
        gv_tensor_free(t);
    }
    close(fd);
    return 0;
}
