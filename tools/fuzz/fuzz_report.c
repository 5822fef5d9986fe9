/* libFuzzer harness: what `lipgan report` reads from a run directory
 * (src/io/report.c): metrics.jsonl, spectra.bin, config.yaml and a sample
 * image. Input: the parts metrics.jsonl, spectra.bin, config.yaml, a
 * sample file name, the sample PNG, separated by FZ_SEP (an empty part: no
 * such file). The name is cut to [A-Za-z0-9_.-] and gets ".png"; spectra
 * and PNG CRCs are recomputed. Seeds: tools/fuzz/corpus/report/. */
#include <ctype.h>

#include "fuzz_common.h"
#include "lipgan/report.h"

static void report_put(const char *dir, const char *name, const uint8_t *d, size_t n) {
    if (!n) return;
    char p[256];
    snprintf(p, sizeof p, "%s/%s", dir, name);
    fz_write(p, d, n);
}

static lg_status fuzz_report(const uint8_t *data, size_t size) {
    const uint8_t *part[5];
    size_t len[5];
    fz_split(data, size, part, len, 5);
    char dir[128], out[128];
    fz_path(dir, sizeof dir, "run");
    fz_clear_dir(dir);
    fz_path(out, sizeof out, "report.html");
    report_put(dir, "metrics.jsonl", part[0], len[0]);
    uint8_t *b = fz_dup(part[1], len[1]);
    fz_fix_spectra_crcs(b, len[1]);
    report_put(dir, "spectra.bin", b, len[1]);
    free(b);
    report_put(dir, "config.yaml", part[2], len[2]);
    if (len[4]) {
        char name[80] = "samples/";
        size_t k = strlen(name);
        for (size_t i = 0; i < len[3] && k < 64; i++) {
            int ch = part[3][i];
            if (isalnum(ch) || ch == '_' || ch == '-' || (ch == '.' && k > 8)) name[k++] = (char)ch;
        }
        if (k == 8) name[k++] = 's';
        memcpy(name + k, ".png", 5);
        char sd[160];
        snprintf(sd, sizeof sd, "%s/samples", dir);
        mkdir(sd, 0700);
        b = fz_dup(part[4], len[4]);
        fz_fix_png_crcs(b, len[4]);
        report_put(dir, name, b, len[4]);
        free(b);
    }
    lg_report_opts o = lg_report_opts_default();
    o.max_samples = 2;
    o.max_spectra_steps = 3;
    o.max_layer_plots = 2;
    o.plot_width = o.plot_height = 200; /* the smallest it draws: fast */
    lg_report_info info;
    lg_status s = FZ_MAIN(lg_report_write(dir, out, &o, &info));
    if (s == LG_OK) FZ_ASSERT(info.bytes > 0 && info.images >= info.sample_grids);
    return s;
}

LG_FUZZ_MAIN(fuzz_report)
