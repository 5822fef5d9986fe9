/* Tests of PNG output (include/lipgan/image.h), the plots (plot.h) and the
 * internal canvas and font (src/io/raster.h): grids read back pixel for
 * pixel, scatter plots and line plots checked at known pixels, atomic
 * writes, and the errors of bad input and bad files. */
#include <dirent.h>
#include <math.h>
#include <png.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "io/png_read.h"
#include "io/raster.h"
#include "lg_test.h"
#include "lipgan/image.h"
#include "lipgan/plot.h"

static char g_dir[64];

static const char *tpath(const char *name) {
    static char buf[4][160];
    static int k;
    k = (k + 1) % 4;
    snprintf(buf[k], sizeof buf[k], "%s/%s", g_dir, name);
    return buf[k];
}

/* Number of entries in g_dir whose name contains ".tmp." (leftover temp files). */
static int count_tmp_files(void) {
    DIR *d = opendir(g_dir);
    int n = 0;
    if (!d) return -1;
    struct dirent *e;
    while ((e = readdir(d))) n += strstr(e->d_name, ".tmp.") != NULL;
    closedir(d);
    return n;
}

static void test_grid_round_trip_rgb(void) {
    enum { N = 5, C = 3, H = 4, W = 6, COLS = 3, B = LG_IMAGE_GRID_BORDER };
    float x[N * C * H * W];
    uint8_t want[N * C * H * W];
    lg_test_rng r = lg_test_rng_make(1);
    for (int i = 0; i < N * C * H * W; i++) {
        want[i] = (uint8_t)(lg_test_rng_u64(&r) % 256);
        x[i] = want[i] / 127.5f - 1.0f; /* maps back to exactly want[i] */
    }
    const char *p = tpath("grid.png");
    CHECK_OK(lg_image_write_grid(p, x, N, C, H, W, COLS));
    uint8_t *pix = NULL;
    int h = 0, w = 0, c = 0;
    CHECK_OK(lg_image_read_png(p, &pix, &h, &w, &c));
    int rows = (N + COLS - 1) / COLS;
    CHECK(w == COLS * (W + B) + B && h == rows * (H + B) + B && c == 3, "grid is %dx%dx%d", w, h, c);
    if (!pix || c != 3 || w != COLS * (W + B) + B) {
        free(pix);
        return;
    }
    int bad = 0, bad_border = 0;
    for (int i = 0; i < N; i++)
        for (int k = 0; k < C; k++)
            for (int yy = 0; yy < H; yy++)
                for (int xx = 0; xx < W; xx++) {
                    int py = B + (i / COLS) * (H + B) + yy, px = B + (i % COLS) * (W + B) + xx;
                    bad += pix[((size_t)py * w + px) * 3 + k] != want[((i * C + k) * H + yy) * W + xx];
                }
    /* borders: row 0, column 0, the gap column after tile 0, and the unused cell (row 1, col 2) */
    for (int xx = 0; xx < w; xx++) bad_border += pix[(size_t)xx * 3] != LG_IMAGE_GRID_BORDER_VALUE;
    for (int yy = 0; yy < h; yy++)
        for (int t = 0; t < B; t++) {
            bad_border += pix[((size_t)yy * w + t) * 3 + 1] != LG_IMAGE_GRID_BORDER_VALUE;
            bad_border += pix[((size_t)yy * w + B + W + t) * 3 + 2] != LG_IMAGE_GRID_BORDER_VALUE;
        }
    for (int yy = 0; yy < H; yy++)
        for (int xx = 0; xx < W; xx++)
            bad_border += pix[((size_t)(B + (H + B) + yy) * w + B + 2 * (W + B) + xx) * 3] != LG_IMAGE_GRID_BORDER_VALUE;
    CHECK(bad == 0, "%d tile pixel values differ after the round trip", bad);
    CHECK(bad_border == 0, "%d border pixels are not the border value", bad_border);
    free(pix);
    CHECK(count_tmp_files() == 0, "temp files left behind");
}

static void test_grid_gray_and_mapping(void) {
    enum { N = 4, H = 2, W = 3 };
    /* the value mapping: clamping, NaN, rounding of (v + 1) * 127.5 */
    float x[N * H * W] = {-1, 1, 0, -2, 2, NAN, 0.5f, -0.5f, 1e30f, -1e30f, 0.999f, -0.999f};
    const uint8_t want[12] = {0, 255, 128, 0, 255, 0, 191, 64, 255, 0, 255, 0};
    for (int i = 12; i < N * H * W; i++) x[i] = 0;
    const char *p = tpath("gray.png");
    CHECK_OK(lg_image_write_grid(p, x, N, 1, H, W, 0)); /* ncols 0 -> ceil(sqrt(4)) = 2 */
    uint8_t *pix = NULL;
    int h = 0, w = 0, c = 0;
    CHECK_OK(lg_image_read_png(p, &pix, &h, &w, &c));
    const int B = LG_IMAGE_GRID_BORDER;
    CHECK(c == 1 && w == 2 * (W + B) + B && h == 2 * (H + B) + B, "gray grid %dx%dx%d", w, h, c);
    if (pix && c == 1 && w == 2 * (W + B) + B)
        for (int i = 0; i < 12; i++) {
            int img = i / (H * W), yy = i % (H * W) / W, xx = i % W;
            int py = B + (img / 2) * (H + B) + yy, px = B + (img % 2) * (W + B) + xx;
            CHECK(pix[py * w + px] == want[i], "value %d (%g) -> %d, want %d", i, x[i], pix[py * w + px], want[i]);
        }
    free(pix);
    /* a grid written over an existing file replaces it */
    CHECK_OK(lg_image_write_grid(p, x, 1, 1, H, W, 1));
    pix = NULL;
    CHECK_OK(lg_image_read_png(p, &pix, &h, &w, &c));
    CHECK(w == W + 2 * B && h == H + 2 * B, "overwritten grid is %dx%d", w, h);
    free(pix);
}

static void test_grid_errors(void) {
    float x[12] = {0};
    CHECK_STATUS(lg_image_write_grid(tpath("e.png"), x, 1, 2, 2, 3, 1), LG_ERR_INVALID_ARG);
    CHECK_STATUS(lg_image_write_grid(tpath("e.png"), x, 0, 1, 2, 3, 1), LG_ERR_INVALID_ARG);
    CHECK_STATUS(lg_image_write_grid(tpath("e.png"), NULL, 1, 1, 2, 3, 1), LG_ERR_INVALID_ARG);
    CHECK_STATUS(lg_image_write_grid(tpath("e.png"), x, 1, 1, 0, 3, 1), LG_ERR_INVALID_ARG);
    CHECK(access(tpath("e.png"), F_OK) != 0, "a failed write created a file");
    /* a directory that does not exist: an IO error, nothing left behind */
    CHECK_STATUS(lg_image_write_grid(tpath("no/such/dir.png"), x, 1, 1, 2, 3, 1), LG_ERR_IO);
    CHECK(count_tmp_files() == 0, "temp files left behind");
}

static void test_read_errors(void) {
    uint8_t *pix = NULL;
    int h, w, c;
    CHECK_STATUS(lg_image_read_png(tpath("missing.png"), &pix, &h, &w, &c), LG_ERR_NOT_FOUND);
    FILE *f = fopen(tpath("text.png"), "wb");
    fputs("not a png", f);
    fclose(f);
    CHECK_STATUS(lg_image_read_png(tpath("text.png"), &pix, &h, &w, &c), LG_ERR_FORMAT);
    /* a valid PNG cut in half */
    float x[3 * 16 * 16];
    for (int i = 0; i < 3 * 16 * 16; i++) x[i] = sinf(i * 0.37f);
    CHECK_OK(lg_image_write_grid(tpath("full.png"), x, 1, 3, 16, 16, 1));
    f = fopen(tpath("full.png"), "rb");
    unsigned char buf[4096];
    size_t n = f ? fread(buf, 1, sizeof buf, f) : 0;
    if (f) fclose(f);
    CHECK(n > 100, "PNG has %zu bytes", n);
    f = fopen(tpath("cut.png"), "wb");
    fwrite(buf, 1, n / 2, f);
    fclose(f);
    CHECK_STATUS(lg_image_read_png(tpath("cut.png"), &pix, &h, &w, &c), LG_ERR_FORMAT);
    CHECK(pix == NULL, "failed read returned pixels");
    CHECK(strstr(lg_error_msg(), "truncated") && strstr(lg_error_msg(), "cut.png"), "%s", lg_error_msg());
    /* wider than the reader's limit (the writer allows up to 65535) */
    static uint8_t row[LG_PNG_MAX_SIDE + 1]; /* (1, W, 1) */
    CHECK_OK(lg_image_write_png(tpath("wide.png"), row, 1, LG_PNG_MAX_SIDE + 1, 1));
    CHECK_STATUS(lg_image_read_png(tpath("wide.png"), &pix, &h, &w, &c), LG_ERR_FORMAT);
    CHECK(strstr(lg_error_msg(), "too large"), "%s", lg_error_msg());
    CHECK_OK(lg_image_write_png(tpath("wide.png"), row, 1, LG_PNG_MAX_SIDE, 1));
    CHECK_OK(lg_image_read_png(tpath("wide.png"), &pix, &h, &w, &c));
    CHECK(w == LG_PNG_MAX_SIDE && h == 1 && c == 1, "wide image is %dx%dx%d", w, h, c);
    free(pix);
}

/* Writes a w x h PNG of the given type and depth from raw PNG rows (H, rowbytes). */
static void write_raw_png(const char *path, int w, int h, int type, int depth, const uint8_t *raw,
                          size_t rowbytes, const png_color *pal, int npal, const uint8_t *trns, int ntrns) {
    FILE *fp = fopen(path, "wb");
    png_structp png = png_create_write_struct(PNG_LIBPNG_VER_STRING, NULL, NULL, NULL);
    png_infop info = png ? png_create_info_struct(png) : NULL;
    if (!fp || !info || setjmp(png_jmpbuf(png))) {
        fprintf(stderr, "writing %s failed\n", path);
        abort();
    }
    png_init_io(png, fp);
    png_set_IHDR(png, info, (png_uint_32)w, (png_uint_32)h, depth, type, PNG_INTERLACE_NONE,
                 PNG_COMPRESSION_TYPE_DEFAULT, PNG_FILTER_TYPE_DEFAULT);
    if (npal) png_set_PLTE(png, info, pal, npal);
    if (ntrns) png_set_tRNS(png, info, trns, ntrns, NULL);
    png_write_info(png, info);
    for (int y = 0; y < h; y++) png_write_row(png, raw + (size_t)y * rowbytes);
    png_write_end(png, NULL);
    png_destroy_write_struct(&png, &info);
    fclose(fp);
}

/* The shared decoder: 16-bit samples reduced to their high byte by
 * lg_image_read_png and kept exactly by lg_png_decode(keep16); a palette
 * with tRNS becomes RGBA. */
static void test_read_depths(void) {
    enum { W = 3, H = 2, N = W * H * 3 };
    uint16_t v16[N]; /* (H, W, 3) */
    uint8_t raw[N * 2];
    for (int i = 0; i < N; i++) {
        v16[i] = (uint16_t)(i * 3001 + 17);
        raw[2 * i] = (uint8_t)(v16[i] >> 8), raw[2 * i + 1] = (uint8_t)v16[i];
    }
    const char *p = tpath("rgb16.png");
    write_raw_png(p, W, H, PNG_COLOR_TYPE_RGB, 16, raw, W * 6, NULL, 0, NULL, 0);
    uint8_t *pix = NULL;
    int h = 0, w = 0, c = 0;
    CHECK_OK(lg_image_read_png(p, &pix, &h, &w, &c));
    CHECK(h == H && w == W && c == 3, "16-bit RGB read as %dx%dx%d", w, h, c);
    for (int i = 0; pix && c == 3 && i < N; i++)
        CHECK(pix[i] == v16[i] >> 8, "sample %d: %d, want %d", i, pix[i], v16[i] >> 8);
    free(pix);
    lg_png_reader *r = NULL;
    void *p16 = NULL;
    int depth = 0;
    CHECK_OK(lg_png_open(p, &r, &h, &w));
    CHECK_OK(lg_png_decode(r, 1, &p16, &c, &depth));
    lg_png_close(r);
    CHECK(depth == 16 && c == 3, "keep16 gives %d channels of %d bit", c, depth);
    for (int i = 0; p16 && depth == 16 && i < N; i++)
        CHECK(((const uint16_t *)p16)[i] == v16[i], "16-bit sample %d: %d, want %d", i,
              ((const uint16_t *)p16)[i], v16[i]);
    free(p16);

    const png_color pal[2] = {{10, 20, 30}, {200, 150, 100}};
    const uint8_t trns[1] = {77}, idx[W * H] = {0, 1, 1, 0, 0, 1}; /* (H, W) */
    p = tpath("pal.png");
    write_raw_png(p, W, H, PNG_COLOR_TYPE_PALETTE, 8, idx, W, pal, 2, trns, 1);
    pix = NULL;
    CHECK_OK(lg_image_read_png(p, &pix, &h, &w, &c));
    CHECK(c == 4 && h == H && w == W, "palette + tRNS read as %dx%dx%d", w, h, c);
    for (int i = 0; pix && c == 4 && i < W * H; i++) {
        const png_color *e = &pal[idx[i]];
        const uint8_t *q = pix + 4 * i;
        CHECK(q[0] == e->red && q[1] == e->green && q[2] == e->blue && q[3] == (idx[i] ? 255 : 77),
              "pixel %d: %d %d %d %d", i, q[0], q[1], q[2], q[3]);
    }
    free(pix);
}

static const uint8_t *px_at(const uint8_t *pix, int w, int x, int y) { return pix + ((size_t)y * w + x) * 3; }

static void test_scatter(void) {
    enum { M = 8, N = 800, S = 400 };
    float modes[2 * M], pts[2 * N];
    for (int j = 0; j < M; j++) modes[2 * j] = (float)(2 * cos(2 * M_PI * j / M)), modes[2 * j + 1] = (float)(2 * sin(2 * M_PI * j / M));
    /* all points in a small cloud right of mode 2 = (0, 2) (clear of its
     * cross), plus some outside the view and NaN */
    for (int i = 0; i < N; i++) pts[2 * i] = 0.3f + 0.05f * (i % 5), pts[2 * i + 1] = 2.0f + 0.05f * (i % 3);
    pts[0] = 100, pts[1] = -100, pts[2] = NAN, pts[5] = INFINITY;
    const char *p = tpath("scatter.png");
    CHECK_OK(lg_image_write_scatter(p, pts, N, modes, M, 2.5f, S));
    uint8_t *pix = NULL;
    int h = 0, w = 0, c = 0;
    CHECK_OK(lg_image_read_png(p, &pix, &h, &w, &c));
    CHECK(w == S && h == S && c == 3, "scatter is %dx%dx%d", w, h, c);
    if (pix && w == S && c == 3) {
        /* find the plot box: the first dark pixel along the middle row from the left */
        int box_l = -1;
        for (int xx = 0; xx < S && box_l < 0; xx++) {
            const uint8_t *q = px_at(pix, w, xx, S / 3);
            if (q[0] < 100 && q[1] < 100 && q[2] < 100) box_l = xx;
        }
        CHECK(box_l > 0 && box_l < S / 4, "plot box left edge at %d", box_l);
        /* mode 6 = (0, -2) has no points: its cross is red; the center of
         * the empty upper-right quadrant is white; mode 2 is covered by
         * blue points under a red cross, so blue-ish around it */
        int red = 0, white = 0, blue = 0;
        for (int yy = 0; yy < S; yy++)
            for (int xx = 0; xx < S; xx++) {
                const uint8_t *q = px_at(pix, w, xx, yy);
                red += q[0] > 180 && q[1] < 80 && q[2] < 80;
                blue += q[2] > 120 && q[0] < 100;
                white += q[0] == 255 && q[1] == 255 && q[2] == 255;
            }
        CHECK(red > 8 * 10, "red mode crosses: %d pixels", red);
        CHECK(blue > 5, "blue sample pixels: %d", blue);
        CHECK(white > S * S / 2, "background: %d white pixels", white);
    }
    free(pix);
    /* no points, no modes, automatic range */
    CHECK_OK(lg_image_write_scatter(tpath("empty_scatter.png"), NULL, 0, NULL, 0, 0.0f, 64));
    CHECK_OK(lg_image_write_scatter(tpath("auto.png"), pts + 8, N - 4, modes, M, -1.0f, 128));
    CHECK_STATUS(lg_image_write_scatter(tpath("bad.png"), pts, N, modes, M, 2.5f, 16), LG_ERR_INVALID_ARG);
    CHECK_STATUS(lg_image_write_scatter(tpath("bad.png"), NULL, 3, modes, M, 2.5f, 128), LG_ERR_INVALID_ARG);
}

static void test_font_and_canvas(void) {
    lg_canvas cv;
    CHECK_OK(lg_canvas_init(&cv, 40, 20, 0xffffff));
    lg_canvas_text(&cv, 1, 2, "1", 0x000000, 1);
    /* '1' is ..#.. / .##.. / ..#.. x4 / .###. */
    static const char *want[7] = {"..#..", ".##..", "..#..", "..#..", "..#..", "..#..", ".###."};
    int bad = 0;
    for (int r = 0; r < 7; r++)
        for (int c = 0; c < 5; c++) {
            int ink = cv.px[((size_t)(2 + r) * 40 + 1 + c) * 3] == 0;
            bad += ink != (want[r][c] == '#');
        }
    CHECK(bad == 0, "glyph '1' differs in %d pixels", bad);
    CHECK(lg_canvas_text_width("abc", 2) == 3 * 12 - 2, "text width %d", lg_canvas_text_width("abc", 2));
    /* every printable glyph but space has ink; text outside ASCII draws '?' */
    for (int ch = 33; ch < 127; ch++) {
        lg_canvas_fill_rect(&cv, 0, 0, 40, 20, 0xffffff, 1.0f);
        char s[2] = {(char)ch, 0};
        lg_canvas_text(&cv, 0, 0, s, 0x000000, 1);
        int ink = 0;
        for (size_t i = 0; i < (size_t)40 * 20 * 3; i++) ink += cv.px[i] == 0;
        CHECK(ink > 0, "glyph %d '%c' is empty", ch, ch);
    }
    /* anti-aliased lines: a full-coverage center, a clipped far line is harmless */
    lg_canvas_fill_rect(&cv, 0, 0, 40, 20, 0xffffff, 1.0f);
    lg_canvas_line(&cv, 0, 10.5, 40, 10.5, 0x102030, 2.0, 1.0f);
    const uint8_t *q = cv.px + ((size_t)10 * 40 + 20) * 3;
    CHECK(q[0] == 0x10 && q[1] == 0x20 && q[2] == 0x30, "line center %02x%02x%02x", q[0], q[1], q[2]);
    CHECK(cv.px[((size_t)5 * 40 + 20) * 3] == 0xff, "line bled 5 px away");
    lg_canvas_line(&cv, -1e9, -1e9, 1e9, 1e9, 0, 1.0, 1.0f);
    lg_canvas_line(&cv, NAN, 0, 1, 1, 0, 1.0, 1.0f);
    lg_canvas_free(&cv);
}

/* Counts pixels of exactly the given color. */
static long count_color(const uint8_t *pix, int w, int h, uint32_t col) {
    long n = 0;
    for (size_t i = 0; i < (size_t)w * h; i++)
        n += pix[3 * i] == (col >> 16 & 255) && pix[3 * i + 1] == (col >> 8 & 255) && pix[3 * i + 2] == (col & 255);
    return n;
}

static void test_line_plot(void) {
    enum { N = 200 };
    double x[N], a[N], b[N], c[N];
    for (int i = 0; i < N; i++) {
        x[i] = i * 50;
        a[i] = exp(-i / 40.0);
        b[i] = i % 37 == 0 ? NAN : 0.5 + 0.2 * sin(i / 9.0);
        c[i] = i < 100 ? -1 : 1e-3 * i; /* non-positive part: skipped on a log axis */
    }
    lg_plot_series s[3] = {{"loss_D", x, a, N, 0}, {"loss_G", x, b, N, 0}, {"gp", x, c, N, 0x000001}};
    lg_plot_opts o = lg_plot_opts_default();
    o.title = "losses";
    o.xlabel = "step";
    o.ylabel = "loss";
    const char *p = tpath("lines.png");
    CHECK_OK(lg_plot_lines(p, &o, s, 3));
    uint8_t *pix = NULL;
    int h = 0, w = 0, ch = 0;
    CHECK_OK(lg_image_read_png(p, &pix, &h, &w, &ch));
    CHECK(w == 800 && h == 500 && ch == 3, "plot is %dx%dx%d", w, h, ch);
    if (pix && ch == 3) {
        long blue = count_color(pix, w, h, 0x1f77b4), orange = count_color(pix, w, h, 0xff7f0e);
        CHECK(blue > 300 && orange > 300, "series pixels: blue %ld, orange %ld", blue, orange);
        CHECK(count_color(pix, w, h, 0xffffff) > w * h / 2, "mostly white background");
    }
    free(pix);
    o.log_y = 1;
    CHECK_OK(lg_plot_lines(tpath("lines_log.png"), &o, s, 3));
    o.y_lo = 0.01, o.y_hi = 0.5; /* fixed range clips the curves */
    CHECK_OK(lg_plot_lines(tpath("lines_fixed.png"), &o, s, 3));
    /* small, single point, empty, constant series */
    lg_plot_opts small = lg_plot_opts_default();
    small.width = 240, small.height = 160;
    double one = 3, cst[4] = {2, 2, 2, 2}, xs[4] = {1, 2, 3, 4};
    lg_plot_series s1[2] = {{"single", &one, &one, 1, 0}, {"constant", xs, cst, 4, 0}};
    CHECK_OK(lg_plot_lines(tpath("small.png"), &small, s1, 2));
    CHECK_OK(lg_plot_lines(tpath("none.png"), NULL, NULL, 0));
    /* errors */
    o = lg_plot_opts_default();
    o.width = 50;
    CHECK_STATUS(lg_plot_lines(tpath("bad.png"), &o, s, 3), LG_ERR_INVALID_ARG);
    o = lg_plot_opts_default();
    o.log_y = 1, o.y_lo = -1, o.y_hi = 1;
    CHECK_STATUS(lg_plot_lines(tpath("bad.png"), &o, s, 3), LG_ERR_INVALID_ARG);
    lg_plot_series broken = {"x", NULL, a, 3, 0};
    CHECK_STATUS(lg_plot_lines(tpath("bad.png"), NULL, &broken, 1), LG_ERR_INVALID_ARG);
    CHECK(access(tpath("bad.png"), F_OK) != 0, "a rejected plot created a file");
    CHECK(count_tmp_files() == 0, "temp files left behind");
}

static void test_spectrum_plot(void) {
    enum { S = 5, K = 48 };
    double sv[S * K];
    int64_t steps[S];
    for (int i = 0; i < S; i++) {
        steps[i] = i * 1000;
        for (int j = 0; j < K; j++) sv[i * K + j] = 4.0 * exp(-j * (0.02 + 0.05 * i));
    }
    lg_plot_opts o = lg_plot_opts_default();
    o.title = "D.conv1";
    o.log_y = 1;
    const char *p = tpath("spectrum.png");
    CHECK_OK(lg_plot_spectra(p, &o, sv, steps, S, K, 1));
    uint8_t *pix = NULL;
    int h = 0, w = 0, ch = 0;
    CHECK_OK(lg_image_read_png(p, &pix, &h, &w, &ch));
    if (pix && ch == 3) {
        /* the first step's curve is viridis(0) = 0x440154 */
        long first = count_color(pix, w, h, 0x440154);
        CHECK(first > 100, "first-step curve pixels: %ld", first);
    }
    free(pix);
    /* unnormalized, a zero row (skipped when normalized), linear axis */
    for (int j = 0; j < K; j++) sv[2 * K + j] = 0;
    o.log_y = 0;
    CHECK_OK(lg_plot_spectra(tpath("spectrum_lin.png"), &o, sv, steps, S, K, 1));
    CHECK_OK(lg_plot_spectra(tpath("spectrum_raw.png"), NULL, sv, steps, S, K, 0));
    CHECK_STATUS(lg_plot_spectra(tpath("bad.png"), NULL, NULL, steps, S, K, 1), LG_ERR_INVALID_ARG);
}

int main(void) {
    snprintf(g_dir, sizeof g_dir, "/tmp/lg_test_image_XXXXXX");
    if (!mkdtemp(g_dir)) {
        perror("mkdtemp");
        return 1;
    }
    LG_TEST_RUN(test_grid_round_trip_rgb);
    LG_TEST_RUN(test_grid_gray_and_mapping);
    LG_TEST_RUN(test_grid_errors);
    LG_TEST_RUN(test_read_errors);
    LG_TEST_RUN(test_read_depths);
    LG_TEST_RUN(test_scatter);
    LG_TEST_RUN(test_font_and_canvas);
    LG_TEST_RUN(test_line_plot);
    LG_TEST_RUN(test_spectrum_plot);
    if (getenv("LG_TEST_KEEP")) {
        printf("kept %s\n", g_dir);
    } else {
        char cmd[128];
        snprintf(cmd, sizeof cmd, "rm -rf '%s'", g_dir);
        if (system(cmd) != 0) fprintf(stderr, "could not remove %s\n", g_dir);
    }
    return lg_test_summary("test_image");
}
