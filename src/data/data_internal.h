/* grove internal: helpers shared by the dataset and the loader. */
#ifndef GROVE_DATA_INTERNAL_H
#define GROVE_DATA_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

#include "grove/tensor.h"

/* A view of the first n rows (entries along axis 0) of t, sharing t's data
 * and keeping it alive: shape [n, t's other dims]. t must have rank >= 1 and
 * 0 <= n <= dim 0. New reference; NULL with the error set. The public
 * gv_tensor_reshape cannot express it (it keeps the element count). */
gv_tensor *gv_data_rows_view(gv_tensor *t, int64_t n);

/* Checks images and labels as a dataset: both uint8, images rank >= 2,
 * labels rank 1, both with data (not shape-only), the same number of
 * examples n >= 1. iname and lname name them in the message (file paths,
 * or "images" / "labels"). */
gv_status gv_data_check_pair(const gv_tensor *images, const gv_tensor *labels, const char *iname,
                             const char *lname);

/* SHA-256 (FIPS 180-4), streamed: init, any number of updates, then the
 * digest as 64 lowercase hex digits and a NUL (which ends the stream). Used
 * to check datasets against their known digests. */
typedef struct gv_sha256 {
    uint32_t h[8];
    uint64_t len;           /* bytes hashed */
    unsigned char buf[64];  /* a partial block */
    size_t nbuf;
} gv_sha256;
void gv_data_sha256_init(gv_sha256 *s);
void gv_data_sha256_update(gv_sha256 *s, const void *data, size_t n);
void gv_data_sha256_hex(gv_sha256 *s, char hex[65]);

#endif
