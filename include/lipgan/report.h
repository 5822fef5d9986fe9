/* lipgan/report.h - one self-contained HTML report of a run directory
 * (issue 6 item 6; `lipgan report DIR`).
 *
 * Reads what the trainer and the monitor leave in a run directory:
 *   metrics.jsonl      one JSON object per line with "step" and numbers
 *                      (null = not finite) -> curves, grouped (losses, D
 *                      outputs, learning rates, sigma, Lipschitz bounds,
 *                      collapse statistic, ...; unknown keys get a plot each);
 *                      string fields named *_warning are listed as warnings
 *   spectra.bin        the spectral monitor's log (monitor.h) -> per network:
 *                      collapse statistic, sigma_0, sigma_0/sigma_1, SN
 *                      estimate error and the Lipschitz bounds over time; per
 *                      layer the normalized spectrum s_i/s_1 vs index at up
 *                      to max_spectra_steps steps (thesis appendix B, SR-GAN
 *                      Figure 4); a table of the last record; collapse onsets
 *   samples/STEP.png   sample grids over time (the step is the last number in
 *                      the file name), else DIR/NAME.png; up to max_samples,
 *                      evenly spaced, always the first and the last
 *   config.yaml        shown verbatim; else the "config" metadata of the
 *                      newest checkpoint
 * Any of them may be missing (the section then says so). Plots are drawn
 * with plot.h into a temporary directory and embedded, like the sample
 * grids, as base64 data: URIs; the page has no external resource (no
 * links, fonts or scripts from elsewhere), so the file can be mailed or
 * archived alone. One inline script checks, on load, that every <img>
 * decoded (naturalWidth > 0) and records the result and any script error
 * in a hidden element, <div id="lg-check" data-images-ok=N
 * data-images-bad=N data-errors=N>, which tests/report_chromium.sh reads
 * from headless Chromium's DOM.
 *
 * Usage:
 *   lg_report_opts o = lg_report_opts_default();
 *   lg_report_info info;
 *   LG_TRY(lg_report_write("runs/x", "runs/x/report.html", &o, &info));
 */
#ifndef LIPGAN_REPORT_H
#define LIPGAN_REPORT_H

#include "lipgan/status.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct lg_report_opts {
    const char *title;       /* page title (NULL: "lipgan report: <dir>") */
    int max_samples;         /* sample grids shown (default 12) */
    int max_spectra_steps;   /* curves per spectrum plot (default 8) */
    int max_layer_plots;     /* spectrum plots per network (default 64) */
    int plot_width, plot_height;  /* curve plots (default 640 x 400); spectrum
                                     plots are 0.75 of that */
} lg_report_opts;

lg_report_opts lg_report_opts_default(void);

/* What went into the page. */
typedef struct lg_report_info {
    int metrics_rows;        /* parsed lines of metrics.jsonl */
    int metrics_bad_lines;   /* lines that were not JSON objects with a step */
    int curve_plots;         /* plots from metrics.jsonl */
    int spectra_records;     /* records read from spectra.bin */
    int spectra_plots;       /* plots from spectra.bin */
    int sample_grids;        /* sample images embedded */
    int sample_tried;        /* sample images picked for the page (embedded or not) */
    int sample_unreadable;   /* ... of which not readable PNG files (left out) */
    char sample_unreadable_first[256]; /* the first of those, by file name */
    int images;              /* <img> elements in total */
    int warnings;            /* warnings listed (metrics.jsonl + collapse onsets) */
    int has_config;          /* a config was found */
    long bytes;              /* size of the HTML file */
} lg_report_info;

/* Writes the report of run directory dir to out_html (atomically). opts and
 * info may be NULL. Unreadable inputs (a corrupt spectra.bin, lines of
 * metrics.jsonl that are not JSON) are reported in the page, not as errors.
 * Errors: LG_ERR_NOT_FOUND (dir is not a directory), LG_ERR_IO, LG_ERR_NOMEM. */
lg_status lg_report_write(const char *dir, const char *out_html, const lg_report_opts *opts,
                          lg_report_info *info);

#ifdef __cplusplus
}
#endif
#endif
