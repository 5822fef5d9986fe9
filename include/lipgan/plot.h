/* lipgan/plot.h - PNG line plots (losses and metrics over steps) and
 * spectrum plots (singular value vs index, one curve per step, as the
 * thesis' appendix B and SR-GAN Figure 4), drawn without any plotting
 * library: a small RGB rasterizer with anti-aliased lines and a built-in
 * 5x7 bitmap font (src/io/raster.h). PNGs are written atomically (temp
 * file + rename, see image.h).
 *
 * A plot has a title, axis labels, "nice" tick values (1, 2, 5 x 10^k; on
 * a log axis powers of ten), light grid lines, and a legend placed in the
 * corner of the plot area that covers the fewest data points. Non-finite
 * values break a line (a gap), they are never drawn; on a log axis so are
 * values <= 0.
 *
 * Usage:
 *   double step[100], d_loss[100], g_loss[100];            // (100) each
 *   lg_plot_series s[2] = {{"loss_D", step, d_loss, 100, 0},
 *                          {"loss_G", step, g_loss, 100, 0}};
 *   lg_plot_opts o = lg_plot_opts_default();
 *   o.title = "losses"; o.xlabel = "step"; o.ylabel = "loss";
 *   LG_TRY(lg_plot_lines("run/losses.png", &o, s, 2));
 *
 *   double sv[3 * 64];                                      // (3 steps, 64 values)
 *   int64_t steps[3] = {0, 5000, 10000};
 *   o = lg_plot_opts_default(); o.log_y = 1; o.title = "D.conv1 spectrum";
 *   LG_TRY(lg_plot_spectra("run/spectrum_conv1.png", &o, sv, steps, 3, 64, 1));
 */
#ifndef LIPGAN_PLOT_H
#define LIPGAN_PLOT_H

#include <stdint.h>

#include "lipgan/status.h"

#ifdef __cplusplus
extern "C" {
#endif

/* One curve. */
typedef struct lg_plot_series {
    const char *label; /* legend text; NULL or "" keeps it out of the legend */
    const double *x;   /* (n) */
    const double *y;   /* (n) */
    int n;
    uint32_t color;    /* 0xRRGGBB; 0 = automatic (tab10 palette by series
                          index; use 0x000001 for black) */
} lg_plot_series;

typedef struct lg_plot_opts {
    const char *title;  /* NULL: none */
    const char *xlabel; /* NULL: none */
    const char *ylabel; /* NULL: none */
    int width, height;  /* pixels, 200..8192 (defaults 800 x 500) */
    int log_y;          /* 1: logarithmic y axis (values <= 0 skipped) */
    double y_lo, y_hi;  /* fixed y range when y_lo < y_hi (on a log axis both
                           must be > 0); otherwise fitted to the data */
    double line_width;  /* pixels (default 2) */
    int markers;        /* 1: a dot at every point; -1: never; 0 (default):
                           only for series of at most 40 points */
} lg_plot_opts;

/* The defaults above (800 x 500, linear, automatic range). */
lg_plot_opts lg_plot_opts_default(void);

/* Plots ns series into one PNG. Series may have n = 0 (nothing drawn, but
 * a legend entry). If no series has a finite point the axes are drawn with
 * a range of [0, 1] and "no data" in the middle.
 * Errors: LG_ERR_INVALID_ARG (bad sizes, n < 0, NULL arrays with n > 0, a
 * bad fixed range), LG_ERR_NOMEM, LG_ERR_IO. */
lg_status lg_plot_lines(const char *path, const lg_plot_opts *opts, const lg_plot_series *series,
                        int ns);

/* Plots singular-value spectra: row i of sv (nsteps, k) is the spectrum at
 * steps[i] (descending, as lg_svd_values returns it), drawn against the
 * index 1..k, one curve per step colored from early (dark purple) to late
 * (yellow-green; the viridis colormap up to 0.85, since its end is too
 * light on white), labelled "step N" (at most 8 legend
 * entries, evenly spaced, always the first and last). normalize = 1
 * divides each row by its largest value (s_i / s_1), so the curves show
 * the shape of the spectrum (SR-GAN's spectral collapse); rows whose
 * largest value is 0 or not finite are skipped. Default axis labels
 * ("index i", "s_i / s_1" or "s_i") are used where opts leaves them NULL.
 * Errors as lg_plot_lines. */
lg_status lg_plot_spectra(const char *path, const lg_plot_opts *opts, const double *sv /* (S,K) */,
                          const int64_t *steps /* (S) */, int nsteps, int k, int normalize);

#ifdef __cplusplus
}
#endif
#endif
