/* Shared helpers for grove's Criterion tests. */
#ifndef GROVE_TESTUTIL_H
#define GROVE_TESTUTIL_H

#include <criterion/criterion.h>
#include <criterion/parameterized.h>
#include <json-c/json.h>

#include "grove/grove.h"

/* Path of a file under tests/data (static buffer per call site is not
 * needed: returns a malloc'd string the caller frees). */
char *gvt_data_path(const char *name);
char *gvt_golden_path(const char *name);

/* Parse a JSON file; fails the current test with a message if it cannot. */
json_object *gvt_load_json(const char *path);

/* The value numpy prints for a float32 (precision 8): the shortest
 * round-trip digits if they need at most 8 decimals, otherwise the value
 * rounded to 8 decimals (jax_prng_ref.numpy_print_value): what the reference
 * vectors were written with. */
double gvt_numpy_printed(float v);

/* Write n bytes to path (fails the test if it cannot). */
void gvt_write_file(const char *path, const void *buf, size_t n);

/* Read a whole file into a malloc'd NUL-terminated buffer (fails the test). */
char *gvt_read_file(const char *path, size_t *len);

/* A scratch directory per test, for TestSuite(.init/.fini): gvt_tmpdir_make
 * creates /tmp/grove-<tag>-XXXXXX in gvt_tmpdir, gvt_tmpdir_remove deletes
 * it (made writable first). gvt_tmp_path: "<gvt_tmpdir>/<name>", malloc'd. */
extern char gvt_tmpdir[64];
void gvt_tmpdir_make(const char *tag);
void gvt_tmpdir_remove(void);
char *gvt_tmp_path(const char *name);

/* How many tensor leaves of a are missing from b or differ from b's bit for
 * bit (a structure difference counts as one); the first such path goes to
 * first (len bytes). */
int gvt_tree_diff(const gv_tree *a, const gv_tree *b, char *first, size_t len);

/* Assert a grove call succeeded, printing gv_last_error() otherwise. */
#define GVT_OK(expr)                                                             \
    do {                                                                         \
        gv_status gvt_st_ = (expr);                                              \
        cr_assert_eq(gvt_st_, GV_OK, "%s failed: %s: %s", #expr,                \
                     gv_status_name(gvt_st_), gv_last_error());                  \
    } while (0)

/* Assert a pointer-returning grove call succeeded. */
#define GVT_NN(expr)                                                             \
    ({                                                                           \
        __typeof__(expr) gvt_p_ = (expr);                                        \
        cr_assert_not_null(gvt_p_, "%s returned NULL: %s", #expr, gv_last_error()); \
        gvt_p_;                                                                  \
    })

/* Assert a call failed with `status` and its message contains `needle`. */
#define GVT_FAILS(expr, status, needle)                                          \
    do {                                                                         \
        gv_clear_error();                                                        \
        gv_status gvt_st_ = (expr);                                              \
        cr_assert_eq(gvt_st_, (status), "%s: expected %s, got %s (%s)", #expr,   \
                     gv_status_name(status), gv_status_name(gvt_st_), gv_last_error()); \
        cr_assert(strstr(gv_last_error(), (needle)) != NULL,                     \
                  "%s: message '%s' does not mention '%s'", #expr, gv_last_error(), \
                  (needle));                                                     \
    } while (0)

/* Assert a pointer-returning call failed (NULL) with `status` and `needle`. */
#define GVT_NULL(expr, status, needle)                                           \
    do {                                                                         \
        gv_clear_error();                                                        \
        void *gvt_p_ = (void *)(expr);                                           \
        cr_assert_null(gvt_p_, "%s: expected NULL", #expr);                      \
        cr_assert_eq(gv_last_status(), (status), "%s: expected %s, got %s (%s)", #expr, \
                     gv_status_name(status), gv_status_name(gv_last_status()),   \
                     gv_last_error());                                           \
        cr_assert(strstr(gv_last_error(), (needle)) != NULL,                     \
                  "%s: message '%s' does not mention '%s'", #expr, gv_last_error(), \
                  (needle));                                                     \
    } while (0)

#endif
