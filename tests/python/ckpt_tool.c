/* The C side of tests/python/test_grove_ckpt.py: grove's public checkpoint
 * API driven from the command line, its results printed as JSON lines that
 * the Python test compares with grove_ckpt's.
 *
 *   ckpt_tool dump FILE...             one line per file: the restored tree, or
 *                                      the error (gv_checkpointer_restore)
 *   ckpt_tool dump-into FILE TARGET    the same for gv_checkpointer_restore_into,
 *                                      the target restored from TARGET
 *   ckpt_tool resave IN OUT            restore IN, save it as OUT
 *   ckpt_tool save-sample FILE         save sample_tree() below
 *   ckpt_tool manager-save DIR         save steps 0, 10 and 20 with the manager
 *   ckpt_tool manager-dump DIR ITEM... all_steps, then every ITEM of every step
 *
 * A tree prints as {"dict": [[key, node], ...]}, {"list": [...]},
 * {"tuple": [...]}, and a leaf as {"dtype": "F32", "shape": [..], "hex": data};
 * an error as {"ok": false, "status": "GV_ERR_FORMAT", "error_hex": message}
 * (hex, since a message may quote bytes of a damaged file). Exit status 0
 * unless the program itself is misused or a save fails. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "grove/checkpoint.h"

static const char *st_name(gv_dtype d) {
    switch (d) {
    case GV_BOOL: return "BOOL";
    case GV_U8: return "U8";
    case GV_U16: return "U16";
    case GV_U32: return "U32";
    case GV_U64: return "U64";
    case GV_I32: return "I32";
    case GV_I64: return "I64";
    case GV_F32: return "F32";
    case GV_F64: return "F64";
    default: return "?";
    }
}

static void put_hex(const void *p, size_t n) {
    const unsigned char *b = p;
    putchar('"');
    for (size_t i = 0; i < n; i++) printf("%02x", b[i]);
    putchar('"');
}

static void put_node(const gv_tree *t) {
    gv_tree_kind kind = gv_tree_kind_of(t);
    if (kind == GV_TREE_LEAF) {
        const gv_tensor *x = gv_tree_leaf_tensor(t);
        printf("{\"dtype\": \"%s\", \"shape\": [", st_name(gv_tensor_dtype(x)));
        for (int d = 0; d < gv_tensor_rank(x); d++)
            printf("%s%" PRId64, d ? ", " : "", gv_tensor_shape(x)[d]);
        printf("], \"hex\": ");
        put_hex(gv_tensor_data_const(x), gv_tensor_nbytes(x));
        putchar('}');
        return;
    }
    printf("{\"%s\": [", gv_tree_kind_name(kind));
    for (size_t i = 0; i < gv_tree_num_children(t); i++) {
        if (i) printf(", ");
        if (kind == GV_TREE_DICT) {
            /* keys as hex too: printable UTF-8, but never re-escaped here */
            putchar('[');
            const char *k = gv_tree_key(t, i);
            put_hex(k, strlen(k));
            printf(", ");
        }
        put_node(gv_tree_child(t, i));
        if (kind == GV_TREE_DICT) putchar(']');
    }
    printf("]}");
}

static void put_result(gv_tree *t) {
    if (t) {
        printf("{\"ok\": true, \"tree\": ");
        put_node(t);
        printf("}\n");
    } else {
        printf("{\"ok\": false, \"status\": \"%s\", \"error_hex\": ", gv_status_name(gv_last_status()));
        put_hex(gv_last_error(), strlen(gv_last_error()));
        printf("}\n");
    }
    gv_tree_free(t);
}

static void put(gv_tree *t, const char *path, gv_tensor *x) {
    gv_tree_insert_tensor(t, path, x);
    gv_tensor_free(x);
}

/* arange(start, start + n) in dtype (bool: alternating), as test_checkpointer.c. */
static gv_tensor *ar(gv_dtype dt, int rank, const int64_t *shape, double start) {
    gv_tensor *t = gv_tensor_zeros(dt, rank, shape);
    for (int64_t i = 0; t && i < gv_tensor_size(t); i++)
        gv_tensor_set_flat(t, i, dt == GV_BOOL ? (double)(i % 2) : start + (double)i);
    return t;
}

/* Every dtype, rank 0, an empty tensor, empty subtrees of each kind, tuples
 * and lists, keys inserted out of sorted order and a non-ASCII key.
 * test_grove_ckpt.py's SAMPLE is the same tree in Python. */
static gv_tree *sample_tree(void) {
    gv_tree *t = gv_tree_new_dict();
    put(t, "params/dense/kernel", ar(GV_F32, GV_DIMS(3, 4), 0));
    put(t, "params/dense/bias", ar(GV_F64, GV_DIMS(4), -2));
    put(t, "step", ar(GV_I64, 0, NULL, 7));
    put(t, "ints/u8", ar(GV_U8, GV_DIMS(5), 250));
    put(t, "ints/u16", ar(GV_U16, GV_DIMS(2), 65534));
    put(t, "ints/u32", ar(GV_U32, GV_DIMS(2), 4294967294.0));
    put(t, "ints/u64", ar(GV_U64, GV_DIMS(2), 1e15));
    put(t, "ints/i32", ar(GV_I32, GV_DIMS(2, 3), -3));
    put(t, "ints/i64", ar(GV_I64, GV_DIMS(2), -5e14));
    put(t, "mask", ar(GV_BOOL, GV_DIMS(4), 0));
    put(t, "empty", ar(GV_F32, GV_DIMS(0, 3), 0));
    put(t, "caf\xc3\xa9", ar(GV_F32, 0, NULL, 1.5));
    gv_tree_insert(t, "nothing", gv_tree_new_dict());
    gv_tree *opt = gv_tree_new_tuple(), *mu = gv_tree_new_list();
    gv_tensor *x = ar(GV_F32, GV_DIMS(2), 10);
    gv_tree_append_tensor(mu, x);
    gv_tensor_free(x);
    gv_tree_append(mu, gv_tree_new_tuple());
    gv_tree_append(mu, gv_tree_new_list());
    gv_tree_append(opt, mu);
    x = ar(GV_I32, 0, NULL, 3);
    gv_tree_append_tensor(opt, x);
    gv_tensor_free(x);
    gv_tree_insert(t, "opt_state", opt);
    return t;
}

static int fail(const char *what) {
    fprintf(stderr, "ckpt_tool: %s: %s\n", what, gv_last_error());
    return 1;
}

/* Steps 0, 10, 20 of {"params": {"w": f32[2, 3] = step + i}, "step": step}
 * and {"hidden": i32 4} as "config", metrics {"loss": 1 / (step + 1)}. */
static int manager_save(const char *dir) {
    gv_checkpoint_manager *m = gv_checkpoint_manager_new(dir, NULL);
    if (!m) return fail("gv_checkpoint_manager_new");
    for (int64_t step = 0; step <= 20; step += 10) {
        gv_tree *state = gv_tree_new_dict(), *config = gv_tree_new_dict();
        gv_tree *metrics = gv_tree_new_dict();
        put(state, "params/w", ar(GV_F32, GV_DIMS(2, 3), (double)step));
        put(state, "step", ar(GV_I64, 0, NULL, (double)step));
        put(config, "hidden", ar(GV_I32, 0, NULL, 4));
        put(metrics, "loss", gv_tensor_scalar(GV_F32, 1.0 / (double)(step + 1)));
        const char *names[] = {"state", "config"};
        const gv_tree *items[] = {state, config};
        gv_status st = gv_checkpoint_manager_save(m, step, names, items, 2, metrics);
        gv_tree_free(state), gv_tree_free(config), gv_tree_free(metrics);
        if (st != GV_OK) {
            gv_checkpoint_manager_close(m);
            return fail("gv_checkpoint_manager_save");
        }
    }
    return gv_checkpoint_manager_close(m) == GV_OK ? 0 : fail("gv_checkpoint_manager_close");
}

static int manager_dump(const char *dir, char **items, int nitems) {
    gv_checkpoint_manager *m =
        gv_checkpoint_manager_new(dir, &(gv_checkpoint_options){.must_exist = true});
    if (!m) return fail("gv_checkpoint_manager_new");
    int64_t *steps = NULL;
    size_t n = 0;
    if (gv_checkpoint_manager_all_steps(m, &steps, &n) != GV_OK) return fail("all_steps");
    printf("{\"steps\": [");
    for (size_t i = 0; i < n; i++) printf("%s%" PRId64, i ? ", " : "", steps[i]);
    printf("], \"latest\": %" PRId64 "}\n", gv_checkpoint_manager_latest_step(m));
    for (size_t i = 0; i < n; i++)
        for (int k = 0; k < nitems; k++)
            put_result(gv_checkpoint_manager_restore(m, steps[i], items[k], NULL));
    free(steps);
    gv_checkpoint_manager_close(m);
    return 0;
}

int main(int argc, char **argv) {
    const char *cmd = argc > 1 ? argv[1] : "";
    if (!strcmp(cmd, "dump") && argc >= 3) {
        for (int i = 2; i < argc; i++) put_result(gv_checkpointer_restore(argv[i]));
        return 0;
    }
    if (!strcmp(cmd, "dump-into") && argc == 4) {
        gv_tree *target = gv_checkpointer_restore(argv[3]);
        if (!target) return fail(argv[3]);
        put_result(gv_checkpointer_restore_into(argv[2], target));
        gv_tree_free(target);
        return 0;
    }
    if (!strcmp(cmd, "resave") && argc == 4) {
        gv_tree *t = gv_checkpointer_restore(argv[2]);
        if (!t) return fail(argv[2]);
        gv_status st = gv_checkpointer_save(argv[3], t, false);
        gv_tree_free(t);
        return st == GV_OK ? 0 : fail(argv[3]);
    }
    if (!strcmp(cmd, "save-sample") && argc == 3) {
        gv_tree *t = sample_tree();
        gv_status st = gv_checkpointer_save(argv[2], t, false);
        gv_tree_free(t);
        return st == GV_OK ? 0 : fail(argv[2]);
    }
    if (!strcmp(cmd, "manager-save") && argc == 3) return manager_save(argv[2]);
    if (!strcmp(cmd, "manager-dump") && argc >= 4) return manager_dump(argv[2], argv + 3, argc - 3);
    fprintf(stderr, "usage: %s dump FILE... | dump-into FILE TARGET | resave IN OUT | "
                    "save-sample FILE | manager-save DIR | manager-dump DIR ITEM...\n",
            argv[0]);
    return 2;
}
