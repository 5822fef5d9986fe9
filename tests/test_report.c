/* The HTML run report (lipgan/report.h, `lipgan report`): a synthetic run
 * directory (metrics.jsonl with a bad line and a collapse warning,
 * spectra.bin written by the monitor from real tiny models over a fake
 * training with a constructed collapse, PNG sample grids, config.yaml) is
 * turned into a page that must embed every figure as a decodable PNG data
 * URI, load nothing from elsewhere, escape the config and list the
 * warnings. The CLI is run too ($BUILD/lipgan), and, when Chromium is
 * installed, tests/report_chromium.sh loads the page headless and checks
 * every image decoded and the console is clean (and that a page with a
 * broken image fails that check). A directory holding none of a run's
 * files is an error (exit 3 from the CLI) and nothing is written. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "lg_test.h"
#include "lipgan/fileio.h"
#include "lipgan/image.h"
#include "lipgan/monitor.h"
#include "lipgan/report.h"

static char g_dir[256], g_bin[512];

static void sh(const char *fmt, const char *arg) {
    char cmd[1024];
    snprintf(cmd, sizeof cmd, fmt, arg);
    if (system(cmd) != 0) fprintf(stderr, "command failed: %s\n", cmd);
}

static lg_model *tiny(lg_model_arch arch, lg_net_role role, uint64_t seed) {
    lg_model_spec s;
    lg_model_spec_default(&s, arch, role);
    s.img_c = 1, s.img_size = 8, s.ch = arch == LG_ARCH_RESNET ? 8 : 2, s.z_dim = 4;
    s.lip = role == LG_NET_D ? LG_LIP_SN : LG_LIP_NONE;
    lg_model *m = NULL;
    CHECK_OK(lg_model_create(&m, &s, NULL, seed));
    return m;
}

/* A fake run: 10 records of D and G; the weights drift; at step 600 one of
 * D's layers collapses to (almost) rank one. */
static void make_run(void) {
    char p[600];
    lg_model *d = tiny(LG_ARCH_RESNET, LG_NET_D, 1), *g = tiny(LG_ARCH_CNN, LG_NET_G, 2);
    lg_monitor_opts mo = lg_monitor_opts_default();
    mo.toep_first_iters = 5;
    mo.toep_iters = 2;
    lg_monitor *mon;
    CHECK_OK(lg_monitor_create(&mon, g_dir, 100, &mo));
    lg_test_rng r = lg_test_rng_make(9);
    float x[4 * 64]; /* (4, 1, 8, 8) */
    lg_test_fill_uniform(&r, x, 256, -1, 1);
    snprintf(p, sizeof p, "%s/metrics.jsonl", g_dir);
    FILE *mf = fopen(p, "w");
    CHECK(mf != NULL, "cannot write %s", p);
    if (!mf) return;
    for (int step = 100; step <= 1000; step += 100) {
        for (lg_model *m = d; m; m = m == d ? g : NULL) /* drift every weight a little */
            for (int i = 0; i < lg_model_num_layers(m); i++) {
                const lg_layer_info *L = lg_model_layer(m, i);
                for (int64_t k = 0; k < L->w->numel; k++) L->w->data[k] *= 1.0f + 0.05f * lg_test_uniform(&r, -1, 1);
            }
        if (step == 600) {
            const lg_layer_info *L = lg_model_layer(d, 3); /* block2.c1 (8, 8, 3, 3) */
            for (int o = 0; o < 8; o++)
                for (int j = 0; j < 72; j++) L->w->data[o * 72 + j] = (o + 1) * 0.1f * ((j % 5) - 2.0f);
        }
        lg_monitor_summary sd, sg;
        CHECK_OK(lg_monitor_record(mon, step, "D", d, x, 4, &sd));
        CHECK_OK(lg_monitor_record(mon, step, "G", g, NULL, 0, &sg));
        char fd[1024], fg[1024];
        lg_monitor_summary_json(&sd, fd, sizeof fd);
        lg_monitor_summary_json(&sg, fg, sizeof fg);
        fprintf(mf, "{\"step\":%d,\"loss_d\":%g,\"loss_g\":%g,\"d_real\":%g,\"d_fake\":%g,\"lr_d\":2e-4,\"lr_g\":2e-4,"
                    "\"gp\":null,\"it_per_s\":3.5,\"elapsed_s\":%d%s%s}\n",
                step, 1.0 / step * 100, 0.5 + 0.01 * step / 100, 0.3, -0.3, step / 10, fd, fg);
        if (step == 300) fprintf(mf, "this line is not JSON\n");
        if (step % 500 == 0) fprintf(mf, "{\"step\":%d,\"fid_cls\":%g,\"n_fid\":1000}\n", step, 50.0 - step / 50.0);
    }
    fclose(mf);
    lg_monitor_free(mon);
    lg_model_free(d);
    lg_model_free(g);
    /* sample grids at three steps, plus the final copy at the top level */
    sh("mkdir -p '%s/samples'", g_dir);
    float img[16 * 64]; /* (16, 1, 8, 8) */
    for (int s = 0; s < 3; s++) {
        for (int i = 0; i < 16 * 64; i++) img[i] = sinf(0.1f * i * (s + 1));
        snprintf(p, sizeof p, "%s/samples/step_%09d.png", g_dir, 500 * s);
        CHECK_OK(lg_image_write_grid(p, img, 16, 1, 8, 8, 4));
    }
    snprintf(p, sizeof p, "%s/samples/notes.txt", g_dir);
    CHECK_OK(lg_file_write_atomic(p, "x", 1));
    snprintf(p, sizeof p, "%s/config.yaml", g_dir);
    const char *cfg = "model:\n  d: {arch: resnet}\n# a <tag> & \"quotes\" must be escaped\n";
    CHECK_OK(lg_file_write_atomic(p, cfg, strlen(cfg)));
}

static int count(const char *s, const char *needle) {
    int n = 0;
    for (const char *q = strstr(s, needle); q; q = strstr(q + 1, needle)) n++;
    return n;
}

static int b64v(int c) {
    if (c >= 'A' && c <= 'Z') return c - 'A';
    if (c >= 'a' && c <= 'z') return c - 'a' + 26;
    if (c >= '0' && c <= '9') return c - '0' + 52;
    return c == '+' ? 62 : c == '/' ? 63 : -1;
}

/* Decodes every data URI image and reads it back as a PNG. */
static int check_images(const char *html, int *decoded) {
    const char *pre = "<img alt=\"";
    int bad = 0;
    *decoded = 0;
    char path[600];
    snprintf(path, sizeof path, "%s/decoded.png", g_dir);
    for (const char *q = strstr(html, pre); q; q = strstr(q + 1, pre)) {
        const char *src = strstr(q, "src=\"");
        const char *gt = strchr(q, '>');
        if (!src || !gt || src > gt || strncmp(src + 5, "data:image/png;base64,", 22) != 0) {
            bad++;
            continue;
        }
        const char *b = src + 27, *e = strchr(b, '"');
        size_t n = (size_t)(e - b);
        unsigned char *out = malloc(n);
        size_t o = 0;
        uint32_t acc = 0;
        int bits = 0, ok = n % 4 == 0;
        for (size_t i = 0; i < n && ok; i++) {
            if (b[i] == '=') break;
            int v = b64v(b[i]);
            if (v < 0) ok = 0;
            acc = acc << 6 | (uint32_t)v;
            bits += 6;
            if (bits >= 8) out[o++] = (unsigned char)(acc >> (bits -= 8));
        }
        uint8_t *pix = NULL;
        int h = 0, w = 0, c = 0;
        if (ok && lg_file_write_atomic(path, out, o) == LG_OK && lg_image_read_png(path, &pix, &h, &w, &c) == LG_OK &&
            h > 0 && w > 0)
            (*decoded)++;
        else
            bad++, lg_error_clear();
        free(pix);
        free(out);
    }
    return bad;
}

static int have_chromium(void) {
    return system("command -v chromium >/dev/null 2>&1 || command -v chromium-browser >/dev/null 2>&1") == 0;
}

static void test_report(void) {
    make_run();
    char out[600];
    snprintf(out, sizeof out, "%s/report.html", g_dir);
    lg_report_opts o = lg_report_opts_default();
    o.plot_width = 320, o.plot_height = 240; /* small: the test runs under ASan */
    o.max_spectra_steps = 4;
    lg_report_info info;
    CHECK_OK(lg_report_write(g_dir, out, &o, &info));
    CHECK(info.metrics_rows == 12 && info.metrics_bad_lines == 1, "rows %d, bad %d", info.metrics_rows,
          info.metrics_bad_lines);
    CHECK(info.spectra_records == 20, "spectra records %d", info.spectra_records);
    CHECK(info.sample_grids == 3 && info.has_config, "samples %d config %d", info.sample_grids, info.has_config);
    /* curves: losses, D outputs, lr, bounds, collapse stat, collapsed, SN error,
     * monitor cost, throughput, fid_cls, n_fid (gp all null: no plot) */
    CHECK(info.curve_plots == 11, "curve plots %d", info.curve_plots);
    /* per net: auc, sigma, ratio, bounds, (+ SN error for D), and one
     * spectrum per layer with >= 2 singular values (D: 9 of 11, without
     * l5 (1 x 8) and block1.c_sc (8 x 1); G: 4 of 5, without c5 (1 x 18)) */
    CHECK(info.spectra_plots == 5 + 9 + 4 + 4, "spectra plots %d", info.spectra_plots);
    CHECK(info.images == info.curve_plots + info.spectra_plots + info.sample_grids, "images %d", info.images);
    unsigned char *buf;
    size_t len;
    CHECK_OK(lg_file_read_all(out, &buf, &len));
    const char *h = (const char *)buf;
    CHECK((long)len == info.bytes && !strncmp(h, "<!DOCTYPE html>", 15) && strstr(h, "</html>"), "document");
    CHECK(count(h, "<img ") == info.images, "%d <img> vs %d", count(h, "<img "), info.images);
    int decoded;
    CHECK(check_images(h, &decoded) == 0 && decoded == info.images, "decoded %d of %d images", decoded, info.images);
    /* self-contained: nothing fetched from elsewhere */
    CHECK(!strstr(h, "http://") && !strstr(h, "https://") && !strstr(h, "<link") && !strstr(h, "url(") &&
              !strstr(h, "<script src") && !strstr(h, "<iframe"),
          "external resource in the page");
    CHECK(count(h, "src=\"") == count(h, "src=\"data:image/png;base64,"), "every src is a data URI");
    CHECK(strstr(h, "a &lt;tag&gt; &amp; &quot;quotes&quot;") && !strstr(h, "<tag>"), "config escaped");
    CHECK(strstr(h, "spectral collapse onset in D.block2.c1") != NULL, "collapse onset listed");
    CHECK(strstr(h, "step 600: spectral collapse in D: block2.c1") != NULL, "metrics warning listed");
    CHECK(info.warnings == 3, "warnings %d", info.warnings);
    CHECK(strstr(h, "metrics.jsonl: 1 unreadable line skipped") != NULL, "bad metrics line warned");
    CHECK(strstr(h, "id=\"lg-check\"") == NULL && strstr(h, "getElementsByTagName('img')"), "check script present");
    CHECK(strstr(h, "step 1000 (step_000001000.png)") && strstr(h, "step 0 (step_000000000.png)"), "sample captions");
    CHECK(strstr(h, "<tr class=\"flag\"><td>block2.c1</td>") != NULL, "collapsed layer flagged in the table");

    /* the CLI: same page; usage and missing-directory errors */
    char cmd[1600], out2[600];
    snprintf(out2, sizeof out2, "%s/cli.html", g_dir);
    snprintf(cmd, sizeof cmd, "'%s' report '%s' --out '%s' --samples 2 >/dev/null", g_bin, g_dir, out2);
    CHECK(system(cmd) == 0, "lipgan report failed: %s", cmd);
    unsigned char *b2;
    size_t l2;
    CHECK_OK(lg_file_read_all(out2, &b2, &l2));
    CHECK(count((const char *)b2, "class=\"sample\"") == 2, "--samples 2");
    free(b2);
    snprintf(cmd, sizeof cmd, "'%s' report /nonexistent/run 2>/dev/null", g_bin);
    int rc = system(cmd);
    CHECK(WIFEXITED(rc) && WEXITSTATUS(rc) == 3, "missing dir: exit %d", WEXITSTATUS(rc));
    snprintf(cmd, sizeof cmd, "'%s' report 2>/dev/null", g_bin);
    rc = system(cmd);
    CHECK(WIFEXITED(rc) && WEXITSTATUS(rc) == 2, "no dir: exit %d", WEXITSTATUS(rc));

    if (!have_chromium()) {
        printf("  chromium not installed: skipping tests/report_chromium.sh\n");
    } else {
        snprintf(cmd, sizeof cmd, "tests/report_chromium.sh '%s' %d >/dev/null 2>&1", out, info.images);
        rc = system(cmd);
        CHECK(WIFEXITED(rc) && WEXITSTATUS(rc) == 0, "headless chromium check failed: %s", cmd);
        /* the check must catch a broken image: overwrite one sample's PNG
         * signature (decoders tolerate damage further in, and know the size
         * from the header) */
        char *cap = strstr((char *)buf, "class=\"sample\"><img");
        char *src = cap ? strstr(cap, "base64,") : NULL;
        CHECK(src != NULL, "a sample image in the page");
        if (src) {
            memcpy(src + 7, "AAAAAAAAAAAA", 12);
            char bad[600];
            snprintf(bad, sizeof bad, "%s/broken.html", g_dir);
            CHECK_OK(lg_file_write_atomic(bad, buf, len));
            snprintf(cmd, sizeof cmd, "tests/report_chromium.sh '%s' >/dev/null 2>&1", bad);
            rc = system(cmd);
            CHECK(WIFEXITED(rc) && WEXITSTATUS(rc) == 1, "broken image not detected (exit %d)", WEXITSTATUS(rc));
        }
    }
    free(buf);

    /* an unreadable sample image is named in the page, not silently dropped
     * under a count that includes it */
    {
        char bp[600], out3[600];
        snprintf(bp, sizeof bp, "%s/samples/step_000002000.png", g_dir);
        CHECK_OK(lg_file_write_atomic(bp, "not a png", 9));
        snprintf(out3, sizeof out3, "%s/bad_sample.html", g_dir);
        lg_report_info i3;
        CHECK_OK(lg_report_write(g_dir, out3, &o, &i3));
        unsigned char *b3;
        size_t l3;
        CHECK_OK(lg_file_read_all(out3, &b3, &l3));
        const char *h3 = (const char *)b3;
        CHECK(i3.sample_tried == 4 && i3.sample_unreadable == 1 &&
                  !strcmp(i3.sample_unreadable_first, "step_000002000.png"),
              "info: tried %d, unreadable %d (%s)", i3.sample_tried, i3.sample_unreadable,
              i3.sample_unreadable_first);
        CHECK(i3.sample_grids == 3 && strstr(h3, "<p>4 of 4 images") &&
                  strstr(h3, "1 of the 4 selected could not be read (not a PNG or unreadable): step_000002000.png"),
              "unreadable sample: grids %d", i3.sample_grids);
        free(b3);
        remove(bp);
    }
}

static void test_empty_dir(void) {
    char d[300], out[400], cmd[1024];
    snprintf(d, sizeof d, "%s/empty", g_dir);
    sh("mkdir -p '%s'", d);
    snprintf(out, sizeof out, "%s/r.html", d);
    lg_report_info info;
    /* a directory with none of a run's files is an error, and nothing is written */
    sh("touch '%s/notes.txt'", d);
    CHECK_STATUS(lg_report_write(d, out, NULL, &info), LG_ERR_NOT_FOUND);
    CHECK(strstr(lg_error_msg(), "is not a run directory") && strstr(lg_error_msg(), d), "message: %s",
          lg_error_msg());
    CHECK(access(out, F_OK) != 0, "%s was written for a directory that is not a run", out);
    snprintf(cmd, sizeof cmd, "report '%s'", d);
    static char o[4096];
    int rc = lg_test_run_cli(g_bin, cmd, 1, o, sizeof o);
    CHECK(rc == 3 && strstr(o, "not a run directory") && strchr(o, '\n') == o + strlen(o) - 1,
          "lipgan report on a non-run directory: exit %d: %s", rc, o);
    snprintf(out, sizeof out, "%s/report.html", d);
    CHECK(access(out, F_OK) != 0, "lipgan report wrote %s", out);
    /* a corrupt spectra.bin makes it a run directory; the damage is reported
     * in the page, not fatal, and the missing parts are named */
    char sp[400];
    snprintf(sp, sizeof sp, "%s/spectra.bin", d);
    CHECK_OK(lg_file_write_atomic(sp, "LGSPECTR\x07\0\0\0\x10\0\0\0", 16));
    CHECK_OK(lg_report_write(d, out, NULL, &info));
    CHECK(info.warnings == 1, "corrupt spectra.bin warned: %d", info.warnings);
    CHECK(info.images == 0 && info.metrics_rows == 0 && !info.has_config, "nearly empty run");
    unsigned char *buf;
    size_t len;
    CHECK_OK(lg_file_read_all(out, &buf, &len));
    CHECK(strstr((char *)buf, "No metrics.jsonl") && strstr((char *)buf, "spectra.bin could not be read") &&
              strstr((char *)buf, "No sample images"),
          "missing parts are named");
    free(buf);
    /* a log whose every line is unreadable is not called empty: the page
     * and the warning count say how many lines were skipped */
    snprintf(sp, sizeof sp, "%s/metrics.jsonl", d);
    const char *bad_log = "{\"step\": garbage\n[1, 2]\n";
    CHECK_OK(lg_file_write_atomic(sp, bad_log, strlen(bad_log)));
    CHECK_OK(lg_report_write(d, out, NULL, &info));
    CHECK(info.metrics_rows == 0 && info.metrics_bad_lines == 2 && info.warnings == 2,
          "all lines bad: rows %d, bad %d, warnings %d", info.metrics_rows, info.metrics_bad_lines, info.warnings);
    CHECK_OK(lg_file_read_all(out, &buf, &len));
    CHECK(strstr((char *)buf, "No readable metrics.jsonl rows: 2 unreadable lines skipped") &&
              strstr((char *)buf, "2 unreadable lines skipped (not a JSON object with a numeric step; the first is line 1)"),
          "all-bad log named as such");
    free(buf);
    CHECK_STATUS(lg_report_write("/nonexistent/dir", out, NULL, &info), LG_ERR_NOT_FOUND);
}

int main(void) {
    if (lg_test_cli_path(g_bin, sizeof g_bin) != 0) return 1;
    snprintf(g_dir, sizeof g_dir, "/tmp/lg_test_report.%d", (int)getpid());
    sh("mkdir -p '%s'", g_dir);
    LG_TEST_RUN(test_report);
    LG_TEST_RUN(test_empty_dir);
    if (!getenv("LG_TEST_KEEP")) sh("rm -rf '%s'", g_dir);
    return lg_test_summary("test_report");
}
