/* io/png_read.h - internal: the one libpng decoder, shared by
 * lg_image_read_png (lipgan/image.h) and the folder-of-PNGs dataset loader
 * (src/data/data_png.c). Implemented in src/io/image.c.
 *
 * Reading is split in two steps so a caller can look at the size before any
 * pixel is decoded (the dataset loader refuses a mismatched image without
 * decoding it):
 *   lg_png_reader *r;
 *   int h, w, c, depth;
 *   void *pix;                                   // (H, W, C) samples
 *   LG_TRY(lg_png_open(path, &r, &h, &w));
 *   lg_status s = lg_png_decode(r, 0, &pix, &c, &depth);
 *   lg_png_close(r);
 *
 * Error messages all start "file <path>: ...": LG_ERR_NOT_FOUND / LG_ERR_IO
 * (cannot open), LG_ERR_FORMAT (bad signature, corrupt, "file ends early
 * (truncated)", larger than LG_PNG_MAX_SIDE, or a header whose pixels cannot
 * fit in the file even at deflate's best ratio, checked by lg_png_open before
 * anyone allocates for them), LG_ERR_UNSUPPORTED, LG_ERR_NOMEM. */
#ifndef LIPGAN_IO_PNG_READ_H
#define LIPGAN_IO_PNG_READ_H

#include "lipgan/status.h"

/* Largest width or height accepted; bounds the allocation a header alone can
 * ask for (16384^2 RGBA at 16 bit is 2 GiB). */
#define LG_PNG_MAX_SIDE 16384

typedef struct lg_png_reader lg_png_reader;

/* Opens path, checks the PNG signature and reads the header: *h, *w. On
 * error nothing is left open and *r is NULL. */
lg_status lg_png_open(const char *path, lg_png_reader **r, int *h, int *w);

/* The channels lg_png_decode will deliver (1 gray, 2 gray + alpha, 3 RGB,
 * 4 RGBA: a palette decodes to RGB, tRNS adds alpha), from the header
 * alone: no pixel is decoded. */
int lg_png_channels(const lg_png_reader *r);

/* Decodes the whole image of an opened reader into a new malloc'ed buffer
 * *pix (H, W, C), interleaved (free with free()). Palette and <8-bit gray are
 * expanded to 8 bit, tRNS becomes an alpha channel: C = 1 (gray), 2
 * (gray+alpha), 3 (RGB) or 4 (RGBA). *depth is 8 (uint8_t samples) or, only
 * when keep16 is set and the file has 16-bit samples, 16 (uint16_t samples in
 * host byte order); without keep16 16-bit samples are reduced to their high
 * byte. Call at most once per reader; close the reader whether or not it
 * succeeds. */
lg_status lg_png_decode(lg_png_reader *r, int keep16, void **pix, int *c, int *depth);

/* Closes the reader (NULL is fine). */
void lg_png_close(lg_png_reader *r);

#endif
