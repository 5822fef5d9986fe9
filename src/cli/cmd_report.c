/* lipgan report: one self-contained HTML page of a run directory
 * (lipgan/report.h). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "cli/cli.h"
#include "lipgan/report.h"

static void usage(FILE *f) {
    fprintf(f,
            "usage: lipgan report DIR [--out FILE.html] [--title TEXT] [--samples N] [--spectra-steps N]\n"
            "\n"
            "Writes one self-contained HTML file (figures embedded, no external resources) from the\n"
            "run directory DIR of `lipgan train`: curves from metrics.jsonl, spectra and Lipschitz\n"
            "bounds from spectra.bin (the spectral monitor), sample grids over time (samples/*.png),\n"
            "collapse warnings, and the config. Missing parts are noted in the page.\n"
            "  -o, --out FILE    output file (default DIR/report.html); it may replace an earlier\n"
            "                    report, never a lipgan file (checkpoint, classifier, FID statistics)\n"
            "                    or a run's own file (metrics.jsonl, config.yaml, spectra.bin, .lock,\n"
            "                    ckpt_*, events.*): exit 2\n"
            "  --title TEXT      page title (default \"lipgan report: DIR\")\n"
            "  --samples N       sample grids shown, evenly spaced over training, 1..1000 (default 12)\n"
            "  --spectra-steps N curves per spectrum plot, 1..64 (default 8)\n"
            "  -h, --help        this help\n"
            "Exit codes: 0 written, 2 usage (a bad flag value, an --out above), 3 DIR missing or not a\n"
            "run directory, 1 runtime error (e.g. the page cannot be written).\n");
}

int lg_cmd_report(int argc, char **argv) {
    const char *dir = NULL, *out = NULL;
    lg_report_opts o = lg_report_opts_default();
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            usage(stdout);
            return LG_EXIT_OK;
        }
        int has = i + 1 < argc;
        if (!strcmp(a, "--out") || !strcmp(a, "-o")) {
            if (!has) return lg_cli_usage_error("report", "%s needs a file name", a);
            out = argv[++i];
        } else if (!strcmp(a, "--title")) {
            if (!has) return lg_cli_usage_error("report", "--title needs a text");
            o.title = argv[++i];
        } else if (!strcmp(a, "--samples") || !strcmp(a, "--spectra-steps")) {
            if (!has) return lg_cli_usage_error("report", "%s needs a number", a);
            int samples = !strcmp(a, "--samples");
            lg_status fs = lg_cli_flag_int(a, argv[++i], 1, samples ? 1000 : 64,
                                           samples ? &o.max_samples : &o.max_spectra_steps);
            if (fs != LG_OK) return lg_cli_fail("report", fs);
        } else if (a[0] == '-' && a[1]) {
            return lg_cli_usage_error("report", "unknown option '%s'", a);
        } else if (!dir) {
            dir = a;
        } else {
            return lg_cli_usage_error("report", "one run directory expected, got '%s' and '%s'", dir, a);
        }
    }
    if (!dir) return lg_cli_usage_error("report", "no run directory given");
    char def[4096];
    if (!out) {
        snprintf(def, sizeof def, "%s/report.html", dir);
        out = def;
    }
    /* never over a checkpoint or the run's own files (a DIR that is not a
     * directory is lg_report_write's to explain) */
    lg_status s = LG_OK;
    struct stat sb;
    if (stat(dir, &sb) == 0 && S_ISDIR(sb.st_mode)) s = lg_cli_check_writable("--out", out, ".html");
    if (s != LG_OK) return lg_cli_fail("report", s);
    lg_report_info info;
    s = lg_report_write(dir, out, &o, &info);
    if (s != LG_OK) return lg_cli_fail("report", s);
    printf("wrote %s: %d figures (%d curves, %d spectra, %d sample grids), %d warnings, %ld KB\n", out, info.images,
           info.curve_plots, info.spectra_plots, info.sample_grids, info.warnings, (info.bytes + 1023) / 1024);
    if (info.sample_unreadable)
        fprintf(stderr,
                "lipgan report: warning: %d of %d sample images are not readable PNG files (e.g. %s); the page "
                "leaves them out, so it shows fewer grids than its count says\n",
                info.sample_unreadable, info.sample_tried, info.sample_unreadable_first);
    return LG_EXIT_OK;
}
