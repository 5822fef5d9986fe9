/* Internal: a tiny RGB canvas with anti-aliased drawing and a built-in 5x7
 * bitmap font, shared by image.c (scatter plots) and plot.c (line and
 * spectrum plots). Not a public header.
 *
 * Coordinates are pixels, x to the right, y down, pixel (i, j) covering
 * [i, i+1) x [j, j+1) with its center at (i + 0.5, j + 0.5). Colors are
 * 0xRRGGBB; alpha in [0, 1] blends over what is there. */
#ifndef LIPGAN_IO_RASTER_H
#define LIPGAN_IO_RASTER_H

#include <stdint.h>

#include "lipgan/status.h"

typedef struct lg_canvas {
    int w, h;
    uint8_t *px; /* (H, W, 3) RGB */
} lg_canvas;

/* Allocates a w x h canvas filled with bg. LG_ERR_NOMEM on failure. */
lg_status lg_canvas_init(lg_canvas *cv, int w, int h, uint32_t bg);
void lg_canvas_free(lg_canvas *cv);

/* Blends color over pixel (x, y) with weight alpha; off-canvas is ignored. */
void lg_canvas_blend(lg_canvas *cv, int x, int y, uint32_t color, float alpha);
/* Fills pixels [x0, x1) x [y0, y1) (clipped). */
void lg_canvas_fill_rect(lg_canvas *cv, int x0, int y0, int x1, int y1, uint32_t color, float alpha);
/* One-pixel outline of the pixels [x0, x1) x [y0, y1). */
void lg_canvas_rect(lg_canvas *cv, int x0, int y0, int x1, int y1, uint32_t color);
/* Anti-aliased segment of the given width (coverage from the distance of
 * each pixel center to the segment). */
void lg_canvas_line(lg_canvas *cv, double x0, double y0, double x1, double y1, uint32_t color,
                    double width, float alpha);
/* Anti-aliased filled disc. */
void lg_canvas_disc(lg_canvas *cv, double cx, double cy, double r, uint32_t color, float alpha);

/* 5x7 font, 1 column of spacing: each character advances 6*scale pixels
 * and is 7*scale tall. Characters outside ASCII 32..126 draw as '?'. */
#define LG_FONT_W 5
#define LG_FONT_H 7
/* Width in pixels of s drawn at scale (no trailing spacing). */
int lg_canvas_text_width(const char *s, int scale);
/* Draws s with its top-left corner at (x, y). */
void lg_canvas_text(lg_canvas *cv, int x, int y, const char *s, uint32_t color, int scale);
/* Draws s rotated 90 degrees counter-clockwise (reading bottom to top),
 * its bounding box's top-left at (x, y): 7*scale wide, text_width tall. */
void lg_canvas_text_up(lg_canvas *cv, int x, int y, const char *s, uint32_t color, int scale);

/* Writes the canvas as an RGB PNG, atomically (lg_image_write_png). */
lg_status lg_canvas_save(const lg_canvas *cv, const char *path);

#endif
