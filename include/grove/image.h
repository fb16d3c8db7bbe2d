/* grove: images out (and back in): 8-bit PNG through libpng, and tiling a
 * batch of images into a grid, as torchvision.utils.make_grid does.
 *
 *   gv_tensor *grid = gv_image_grid(samples, 10, 28, 28, 2);  // [N, 784] f32 -> u8 grid
 *   gv_png_write(path, grid, false);
 *
 * Writes are atomic (temporary file, fsync, rename): a failed or interrupted
 * write never leaves a half-written PNG under the real name. */
#ifndef GROVE_IMAGE_H
#define GROVE_IMAGE_H

#include "grove/tensor.h"

#ifdef __cplusplus
extern "C" {
#endif

#pragma GCC visibility push(default) /* the public API: exported from libgrove.so */

/* Write a uint8 tensor [H, W] (grayscale) or [H, W, 3] (RGB) as an 8-bit
 * PNG. Errors: GV_ERR_ARG/GV_ERR_DTYPE/GV_ERR_SHAPE for the tensor,
 * GV_ERR_EXISTS unless force, GV_ERR_NOT_FOUND for a missing directory,
 * GV_ERR_IO naming the path for anything else the OS refuses. */
gv_status gv_png_write(const char *path, const gv_tensor *image, bool force);

/* Read an 8-bit grayscale or RGB PNG (other formats are converted to these
 * by libpng: palette to RGB, 16-bit to 8-bit, alpha dropped). New uint8
 * tensor [H, W] or [H, W, 3]; NULL with the error naming the file:
 * GV_ERR_NOT_FOUND, GV_ERR_IO, GV_ERR_FORMAT (not a PNG, truncated, bad CRC,
 * corrupt data), GV_ERR_UNSUPPORTED (more than 2^28 pixels). */
gv_tensor *gv_png_read(const char *path);

/* Tile images into a grid: images float32 [N, h*w] or [N, h, w] with values
 * in [0, 1] (clipped; NaN becomes 0), nrow images per row, `padding` pixels
 * of black between and around tiles. Returns a new uint8 tensor
 * [rows*(h+padding)+padding, nrow*(w+padding)+padding], rows = ceil(N/nrow);
 * a pixel is round(255 * v). */
gv_tensor *gv_image_grid(const gv_tensor *images, int64_t nrow, int64_t h, int64_t w,
                         int64_t padding);

#pragma GCC visibility pop

#ifdef __cplusplus
}
#endif
#endif
