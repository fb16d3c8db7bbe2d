/* A program that returns from main with async checkpoint saves still queued
 * and its manager never closed, for test_manager.c (exit_without_close):
 * grove must finish the queued saves at exit, or say on stderr which failed.
 *
 *   exit_without_close <dir> finish   saves steps 0..3, every write slowed
 *   exit_without_close <dir> fail     saves step 0, waits, then step 1 whose
 *                                     writes fail with ENOSPC
 *
 * Step s holds {"w": f32[EXIT_N]} with w[i] = s * 1000 + i. The exit status
 * is 0 unless the program itself went wrong before exiting. */
#include <errno.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "checkpoint/io_internal.h"
#include "grove/checkpoint.h"

#define EXIT_N 1000

static atomic_int fail_writes;

/* Slow enough that the saves are still queued when main returns. */
static ssize_t slow_write(int fd, const void *buf, size_t n, void *ud) {
    (void)ud;
    usleep(30000);
    if (atomic_load(&fail_writes)) {
        errno = ENOSPC;
        return -1;
    }
    return write(fd, buf, n);
}

static gv_status save_step(gv_checkpoint_manager *m, int64_t step) {
    gv_tensor *w = gv_tensor_zeros(GV_F32, GV_DIMS(EXIT_N));
    gv_tree *t = w ? gv_tree_new_leaf(w) : NULL;
    gv_status st = t ? GV_OK : gv_last_status();
    for (int64_t i = 0; st == GV_OK && i < EXIT_N; i++)
        st = gv_tensor_set_flat(w, i, (double)(step * 1000 + i));
    const char *names[] = {"state"};
    const gv_tree *items[] = {t};
    if (st == GV_OK) st = gv_checkpoint_manager_save(m, step, names, items, 1, NULL);
    gv_tree_free(t);
    gv_tensor_free(w);
    return st;
}

int main(int argc, char **argv) {
    if (argc != 3 || (strcmp(argv[2], "finish") && strcmp(argv[2], "fail"))) {
        fprintf(stderr, "usage: %s <dir> finish|fail\n", argv[0]);
        return 2;
    }
    bool fail = !strcmp(argv[2], "fail");
    gv_atomic_io_set_hooks(&(gv_atomic_io_hooks){.write = slow_write});
    gv_checkpoint_manager *m =
        gv_checkpoint_manager_new(argv[1], &(gv_checkpoint_options){.async = true});
    gv_status st = m ? GV_OK : gv_last_status();
    for (int64_t s = 0; st == GV_OK && s < (fail ? 2 : 4); s++) {
        if (fail && s == 1) {
            st = gv_checkpoint_manager_wait_until_finished(m);
            atomic_store(&fail_writes, 1);
        }
        if (st == GV_OK) st = save_step(m, s);
    }
    if (st != GV_OK) {
        fprintf(stderr, "exit_without_close: %s\n", gv_last_error());
        return 1;
    }
    return 0; /* no close, no wait: the steps still queued are grove's to finish */
}
