/* lipgan/image.h - PNG output of samples: image grids and 2-D scatter plots,
 * plus a raw RGB/gray writer and a reader (libpng).
 *
 * Every writer is crash-safe: the PNG is encoded in memory, then written to
 * "<path>.tmp.<pid>" and renamed over path (fileio.h lg_file_write_atomic),
 * so a crash never leaves a half-written PNG under the final name.
 *
 * Usage:
 *   float x[64 * 3 * 32 * 32];                    // (N, C, H, W) in [-1, 1]
 *   LG_TRY(lg_image_write_grid("run/samples_1000.png", x, 64, 3, 32, 32, 8));
 *   float pts[2500 * 2], modes[8 * 2];            // (N, 2), (M, 2)
 *   LG_TRY(lg_image_write_scatter("run/toy_1000.png", pts, 2500, modes, 8, 2.5f, 512));
 */
#ifndef LIPGAN_IMAGE_H
#define LIPGAN_IMAGE_H

#include <stdint.h>

#include "lipgan/status.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Border between (and around) the tiles of a grid, in pixels, and its value
 * (white). */
#define LG_IMAGE_GRID_BORDER 2
#define LG_IMAGE_GRID_BORDER_VALUE 255

/* Writes n images x (N, C, H, W), values in [-1, 1], as one PNG grid of
 * ncols columns and ceil(n / ncols) rows (ncols <= 0: ceil(sqrt(n));
 * ncols > n: n).
 * C = 1 gives an 8-bit grayscale PNG, C = 3 an 8-bit RGB PNG. Each value
 * maps to round((v + 1) / 2 * 255) clamped to [0, 255]; NaN maps to 0.
 * Tiles are separated and surrounded by LG_IMAGE_GRID_BORDER pixels of
 * LG_IMAGE_GRID_BORDER_VALUE; unused cells of the last row are filled with
 * the border value. Image size: W_png = ncols*(w+B)+B, H_png = rows*(h+B)+B,
 * tile (r, c) starts at (B + r*(h+B), B + c*(w+B)).
 * Errors: LG_ERR_INVALID_ARG (n, c, h, w out of range), LG_ERR_IO. */
lg_status lg_image_write_grid(const char *path, const float *x /* (N,C,H,W) */, int n, int c, int h,
                              int w, int ncols);

/* Writes a square size_px x size_px RGB scatter plot of n 2-D points pts
 * (N, 2) over the m true modes modes (M, 2; may be NULL with m = 0): a white
 * background, the view [-range, range]^2 (x to the right, y up) in a dark
 * axes box with light zero lines and tick labels at -range, 0 and range,
 * points as small semi-transparent blue dots (dense regions saturate), modes
 * as red crosses drawn on top. Points outside the view are clipped; NaN
 * points are skipped. range <= 0 chooses one that fits all points and modes.
 * Errors: LG_ERR_INVALID_ARG (n < 0, size_px < 32 or > 8192), LG_ERR_IO. */
lg_status lg_image_write_scatter(const char *path, const float *pts /* (N,2) */, int n,
                                 const float *modes /* (M,2) */, int m, float range, int size_px);

/* Writes 8-bit pixels (H, W, C) row-major, C = 1 (gray), 3 (RGB) or 4
 * (RGBA), as a PNG, atomically. Used by the plot module. */
lg_status lg_image_write_png(const char *path, const uint8_t *pix /* (H,W,C) */, int h, int w,
                             int c);

/* Reads a PNG into a new malloc'ed buffer *pix (H, W, C) of 8-bit values
 * (free with free()). Palette and <8-bit gray are expanded, 16-bit is
 * reduced to 8, an alpha channel is kept: C = 1 (gray), 2 (gray+alpha),
 * 3 (RGB) or 4 (RGBA). Errors: LG_ERR_NOT_FOUND, LG_ERR_IO, LG_ERR_FORMAT
 * (not a PNG, corrupt, truncated, or over 16384 px per side),
 * LG_ERR_UNSUPPORTED, LG_ERR_NOMEM. */
lg_status lg_image_read_png(const char *path, uint8_t **pix /* (H,W,C) */, int *h, int *w, int *c);

#ifdef __cplusplus
}
#endif
#endif
