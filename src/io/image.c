/* PNG output (sample grids, toy scatter plots) and input, via libpng.
 * PNGs are encoded into memory and then written with lg_file_write_atomic,
 * so the final name only ever holds a complete file. The one PNG decoder
 * (io/png_read.h) is here too; the dataset loader uses it. libpng reports
 * errors by longjmp; everything that must be freed on that path is volatile
 * or was allocated before the setjmp. */
#include "lipgan/image.h"

#include <errno.h>
#include <math.h>
#include <png.h>
#include <setjmp.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "io/png_read.h"
#include "io/raster.h"
#include "lipgan/fileio.h"

typedef struct png_ctx {
    char msg[256];
    uint8_t *buf; /* (cap) encoded bytes */
    size_t len, cap;
    int oom;
} png_ctx;

static void on_error(png_structp png, png_const_charp msg) {
    png_ctx *c = png_get_error_ptr(png);
    snprintf(c->msg, sizeof c->msg, "%s", msg);
    png_longjmp(png, 1);
}

static void on_warning(png_structp png, png_const_charp msg) {
    (void)png;
    (void)msg; /* warnings (e.g. a bad ancillary chunk) do not affect pixels */
}

static void on_write(png_structp png, png_bytep data, size_t n) {
    png_ctx *c = png_get_io_ptr(png);
    if (c->len + n > c->cap) {
        size_t cap = c->cap ? c->cap : 65536;
        while (cap < c->len + n) cap *= 2;
        uint8_t *nb = realloc(c->buf, cap);
        if (!nb) {
            c->oom = 1;
            png_error(png, "out of memory while encoding");
        }
        c->buf = nb;
        c->cap = cap;
    }
    memcpy(c->buf + c->len, data, n);
    c->len += n;
}

static void on_flush(png_structp png) { (void)png; }

lg_status lg_image_write_png(const char *path, const uint8_t *pix, int h, int w, int c) {
    if (!path || !pix || h <= 0 || w <= 0 || h > 65535 || w > 65535 || (c != 1 && c != 3 && c != 4))
        return lg_error_set(LG_ERR_INVALID_ARG,
                            "PNG %s: bad image %dx%d with %d channels; need 1..65535 pixels per side "
                            "and 1, 3 or 4 channels",
                            path ? path : "(null)", w, h, c);
    png_ctx ctx = {{0}, NULL, 0, 0, 0};
    png_structp png = png_create_write_struct(PNG_LIBPNG_VER_STRING, &ctx, on_error, on_warning);
    png_infop info = png ? png_create_info_struct(png) : NULL;
    if (!info) {
        png_destroy_write_struct(png ? &png : NULL, NULL);
        return lg_error_set(LG_ERR_NOMEM, "PNG %s: cannot create a PNG writer", path);
    }
    png_bytep *volatile rows = NULL; /* (H) row pointers into pix */
    if (setjmp(png_jmpbuf(png))) {
        png_destroy_write_struct(&png, &info);
        free(rows);
        free(ctx.buf);
        return lg_error_set(ctx.oom ? LG_ERR_NOMEM : LG_ERR_IO, "PNG %s: encoding failed: %s", path,
                            ctx.msg);
    }
    rows = malloc(sizeof(png_bytep) * (size_t)h);
    if (!rows) png_error(png, "out of memory");
    for (int y = 0; y < h; y++) rows[y] = (png_bytep)(pix + (size_t)y * w * c);
    png_set_write_fn(png, &ctx, on_write, on_flush);
    int type = c == 1 ? PNG_COLOR_TYPE_GRAY : c == 3 ? PNG_COLOR_TYPE_RGB : PNG_COLOR_TYPE_RGBA;
    png_set_IHDR(png, info, (png_uint_32)w, (png_uint_32)h, 8, type, PNG_INTERLACE_NONE,
                 PNG_COMPRESSION_TYPE_DEFAULT, PNG_FILTER_TYPE_DEFAULT);
    png_set_compression_level(png, 6);
    png_write_info(png, info);
    png_write_image(png, rows);
    png_write_end(png, NULL);
    png_destroy_write_struct(&png, &info);
    free(rows);
    lg_status s = lg_file_write_atomic(path, ctx.buf, ctx.len);
    free(ctx.buf);
    return s;
}

static uint8_t to_u8(float v) {
    if (!(v == v)) return 0; /* NaN */
    float q = (v + 1.0f) * 127.5f;
    if (q <= 0.0f) return 0;
    if (q >= 255.0f) return 255;
    return (uint8_t)lrintf(q);
}

lg_status lg_image_write_grid(const char *path, const float *x, int n, int c, int h, int w,
                              int ncols) {
    if (!path || !x || n <= 0 || (c != 1 && c != 3) || h <= 0 || w <= 0 || h > 4096 || w > 4096)
        return lg_error_set(LG_ERR_INVALID_ARG,
                            "image grid %s: bad input (n=%d, c=%d, h=%d, w=%d); need n >= 1, c = 1 "
                            "or 3, 1 <= h, w <= 4096",
                            path ? path : "(null)", n, c, h, w);
    if (ncols <= 0) ncols = (int)ceil(sqrt((double)n));
    if (ncols > n) ncols = n;
    const int B = LG_IMAGE_GRID_BORDER;
    int nrows = (n + ncols - 1) / ncols;
    int64_t W = (int64_t)ncols * (w + B) + B, H = (int64_t)nrows * (h + B) + B;
    if (W > 65535 || H > 65535)
        return lg_error_set(LG_ERR_INVALID_ARG,
                            "image grid %s: %lldx%lld pixels is too large for a PNG; write fewer "
                            "images or more columns",
                            path, (long long)W, (long long)H);
    uint8_t *pix = malloc((size_t)W * H * c); /* (H, W, C) */
    if (!pix) return lg_error_set(LG_ERR_NOMEM, "image grid %s: cannot allocate", path);
    memset(pix, LG_IMAGE_GRID_BORDER_VALUE, (size_t)W * H * c);
    size_t plane = (size_t)h * w;
    for (int i = 0; i < n; i++) {
        int r0 = B + (i / ncols) * (h + B), c0 = B + (i % ncols) * (w + B);
        const float *img = x + (size_t)i * c * plane; /* (C, H, W) */
        for (int y = 0; y < h; y++)
            for (int xx = 0; xx < w; xx++)
                for (int k = 0; k < c; k++)
                    pix[(((size_t)(r0 + y)) * W + c0 + xx) * c + k] = to_u8(img[k * plane + (size_t)y * w + xx]);
    }
    lg_status s = lg_image_write_png(path, pix, (int)H, (int)W, c);
    free(pix);
    return s;
}

/* Formats a tick value compactly ("-2.5", "0", "10"). */
static void fmt_num(char *buf, size_t cap, double v) {
    if (fabs(v) < 1e-12) v = 0;
    snprintf(buf, cap, "%.3g", v);
}

lg_status lg_image_write_scatter(const char *path, const float *pts, int n, const float *modes, int m,
                                 float range, int size_px) {
    if (!path || n < 0 || (n > 0 && !pts) || m < 0 || (m > 0 && !modes) || size_px < 32 ||
        size_px > 8192)
        return lg_error_set(LG_ERR_INVALID_ARG,
                            "scatter %s: bad input (n=%d, m=%d, size_px=%d); need n, m >= 0 and "
                            "32 <= size_px <= 8192",
                            path ? path : "(null)", n, m, size_px);
    double R = range;
    if (!(R > 0) || !isfinite(R)) { /* fit everything, with 10% headroom */
        R = 0;
        for (int i = 0; i < n; i++)
            for (int k = 0; k < 2; k++)
                if (isfinite(pts[2 * i + k])) R = fmax(R, fabs(pts[2 * i + k]));
        for (int i = 0; i < m; i++)
            for (int k = 0; k < 2; k++)
                if (isfinite(modes[2 * i + k])) R = fmax(R, fabs(modes[2 * i + k]));
        R = R > 0 ? R * 1.1 : 1.0;
    }
    lg_canvas cv;
    LG_TRY(lg_canvas_init(&cv, size_px, size_px, 0xffffff));
    /* plot area: a square inset leaving room for the tick labels (left and
     * bottom) */
    int scale = size_px >= 384 ? 2 : 1;
    char buf[32];
    fmt_num(buf, sizeof buf, -R);
    int lab_w = lg_canvas_text_width(buf, scale);
    int x0 = lab_w + 10, y0 = 6 + LG_FONT_H * scale / 2;
    int side = size_px - x0 - 8;
    if (size_px - y0 - (LG_FONT_H + 4) * scale - 6 < side) side = size_px - y0 - (LG_FONT_H + 4) * scale - 6;
    if (side < 8) side = 8;
    double k = side / (2 * R);
#define SX(v) (x0 + ((v) + R) * k)
#define SY(v) (y0 + (R - (v)) * k)
    /* zero lines and the box */
    lg_canvas_line(&cv, SX(0), y0, SX(0), y0 + side, 0xdddddd, 1.0, 1.0f);
    lg_canvas_line(&cv, x0, SY(0), x0 + side, SY(0), 0xdddddd, 1.0, 1.0f);
    double dot = fmax(1.0, size_px / 400.0);
    for (int i = 0; i < n; i++) {
        double px = pts[2 * i], py = pts[2 * i + 1];
        if (!isfinite(px) || !isfinite(py) || fabs(px) > R || fabs(py) > R) continue;
        lg_canvas_disc(&cv, SX(px), SY(py), dot, 0x1f77b4, 0.45f);
    }
    double arm = fmax(4.0, size_px / 80.0), lw = fmax(1.5, size_px / 300.0);
    for (int i = 0; i < m; i++) {
        double cx = SX(modes[2 * i]), cy = SY(modes[2 * i + 1]);
        lg_canvas_line(&cv, cx - arm, cy - arm, cx + arm, cy + arm, 0xd62728, lw, 1.0f);
        lg_canvas_line(&cv, cx - arm, cy + arm, cx + arm, cy - arm, 0xd62728, lw, 1.0f);
    }
    lg_canvas_rect(&cv, x0 - 1, y0 - 1, x0 + side + 1, y0 + side + 1, 0x444444);
    /* ticks at -R, 0, R: x labels below (the outer ones aligned to the box
     * edges), y labels to the left, right-aligned */
    for (int t = -1; t <= 1; t++) {
        double v = t * R;
        fmt_num(buf, sizeof buf, v);
        int tw = lg_canvas_text_width(buf, scale);
        int tx = (int)lrint(SX(v));
        lg_canvas_fill_rect(&cv, tx, y0 + side, tx + 1, y0 + side + 4, 0x444444, 1.0f);
        int lx = t < 0 ? tx : t > 0 ? tx - tw + 1 : tx - tw / 2;
        lg_canvas_text(&cv, lx, y0 + side + 6, buf, 0x222222, scale);
        int ty = (int)lrint(SY(v));
        lg_canvas_fill_rect(&cv, x0 - 5, ty, x0 - 1, ty + 1, 0x444444, 1.0f);
        lg_canvas_text(&cv, x0 - 7 - tw, ty - LG_FONT_H * scale / 2, buf, 0x222222, scale);
    }
#undef SX
#undef SY
    lg_status s = lg_canvas_save(&cv, path);
    lg_canvas_free(&cv);
    return s;
}

/* ---- reading (io/png_read.h) ---- */

struct lg_png_reader {
    png_ctx ctx; /* libpng's error message */
    FILE *fp;
    png_structp png;
    png_infop info;
    png_uint_32 h, w;
    char path[]; /* for messages */
};

/* Replaces libpng's default reader to say what a short read means. */
static void on_read(png_structp png, png_bytep data, size_t n) {
    FILE *fp = png_get_io_ptr(png);
    if (fread(data, 1, n, fp) != n)
        png_error(png, ferror(fp) ? "read failed" : "file ends early (truncated)");
}

void lg_png_close(lg_png_reader *r) {
    if (!r) return;
    png_destroy_read_struct(&r->png, &r->info, NULL); /* safe on NULL members */
    if (r->fp) fclose(r->fp);
    free(r);
}

lg_status lg_png_open(const char *path, lg_png_reader **out, int *h, int *w) {
    *out = NULL;
    FILE *fp = fopen(path, "rb");
    if (!fp)
        return lg_error_set(errno == ENOENT ? LG_ERR_NOT_FOUND : LG_ERR_IO, "file %s: cannot open: %s",
                            path, strerror(errno));
    unsigned char sig[8];
    if (fread(sig, 1, 8, fp) != 8 || png_sig_cmp(sig, 0, 8) != 0) {
        fclose(fp);
        return lg_error_set(LG_ERR_FORMAT, "file %s: not a PNG file (bad signature)", path);
    }
    size_t len = strlen(path);
    lg_png_reader *r = calloc(1, sizeof *r + len + 1);
    if (r) {
        memcpy(r->path, path, len + 1);
        r->fp = fp;
        r->png = png_create_read_struct(PNG_LIBPNG_VER_STRING, &r->ctx, on_error, on_warning);
        r->info = r->png ? png_create_info_struct(r->png) : NULL;
    }
    if (!r || !r->info) {
        if (r) lg_png_close(r);
        else fclose(fp);
        return lg_error_set(LG_ERR_NOMEM, "file %s: cannot create a PNG reader", path);
    }
    if (setjmp(png_jmpbuf(r->png))) {
        lg_status s = lg_error_set(LG_ERR_FORMAT, "file %s: corrupt PNG: %s", path, r->ctx.msg);
        lg_png_close(r);
        return s;
    }
    png_set_read_fn(r->png, fp, on_read);
    png_set_sig_bytes(r->png, 8);
    png_read_info(r->png, r->info);
    r->w = png_get_image_width(r->png, r->info);
    r->h = png_get_image_height(r->png, r->info);
    if (r->w > LG_PNG_MAX_SIDE || r->h > LG_PNG_MAX_SIDE) {
        lg_status s = lg_error_set(LG_ERR_FORMAT, "file %s: %ux%u is too large (at most %d per side)",
                                   path, (unsigned)r->w, (unsigned)r->h, LG_PNG_MAX_SIDE);
        lg_png_close(r);
        return s;
    }
    /* The pixels must fit in the file, deflate-compressed at most 1032:1:
     * otherwise a header of a few bytes would make the callers allocate
     * gigabytes before the decoder finds the data missing. */
    uint64_t bits = (uint64_t)r->w * r->h * png_get_channels(r->png, r->info) * png_get_bit_depth(r->png, r->info);
    struct stat sb;
    if (fstat(fileno(fp), &sb) == 0 && (uint64_t)sb.st_size < bits / 8 / 1032) {
        lg_status s = lg_error_set(LG_ERR_FORMAT,
                                   "file %s: truncated or corrupt: %ux%u pixels cannot fit in its %lld bytes",
                                   path, (unsigned)r->w, (unsigned)r->h, (long long)sb.st_size);
        lg_png_close(r);
        return s;
    }
    *h = (int)r->h;
    *w = (int)r->w;
    *out = r;
    return LG_OK;
}

int lg_png_channels(const lg_png_reader *r) {
    int type = png_get_color_type(r->png, r->info);
    int ch = type == PNG_COLOR_TYPE_GRAY        ? 1
             : type == PNG_COLOR_TYPE_GRAY_ALPHA ? 2
             : type == PNG_COLOR_TYPE_RGB_ALPHA  ? 4
                                                 : 3; /* RGB, or a palette decoded to RGB */
    if (ch != 2 && ch != 4 && png_get_valid(r->png, r->info, PNG_INFO_tRNS)) ch++;
    return ch;
}

lg_status lg_png_decode(lg_png_reader *r, int keep16, void **out, int *c, int *depth) {
    *out = NULL;
    png_structp png = r->png;
    png_infop info = r->info;
    uint8_t *volatile pix = NULL;    /* (H, rowbytes) = (H, W, C) samples */
    png_bytep *volatile rows = NULL; /* (H) pointers into pix */
    if (setjmp(png_jmpbuf(png))) {
        free(pix);
        free(rows);
        return lg_error_set(LG_ERR_FORMAT, "file %s: corrupt PNG: %s", r->path, r->ctx.msg);
    }
    png_uint_32 W = r->w, H = r->h;
    int type = png_get_color_type(png, info), bd = png_get_bit_depth(png, info);
    if (type == PNG_COLOR_TYPE_PALETTE) png_set_palette_to_rgb(png);
    if (type == PNG_COLOR_TYPE_GRAY && bd < 8) png_set_expand_gray_1_2_4_to_8(png);
    if (png_get_valid(png, info, PNG_INFO_tRNS)) png_set_tRNS_to_alpha(png);
    if (bd == 16 && !keep16) png_set_strip_16(png);
    const uint16_t probe = 1;
    if (bd == 16 && keep16 && *(const uint8_t *)&probe == 1) png_set_swap(png); /* PNG is big-endian */
    png_set_interlace_handling(png);
    png_read_update_info(png, info);
    int nch = png_get_channels(png, info);
    bd = png_get_bit_depth(png, info);
    size_t rowbytes = png_get_rowbytes(png, info);
    if ((bd != 8 && bd != 16) || nch < 1 || nch > 4 || rowbytes != (size_t)W * nch * (bd / 8))
        return lg_error_set(LG_ERR_UNSUPPORTED, "file %s: unexpected PNG layout (%d channels, %d bit)",
                            r->path, nch, bd);
    pix = malloc(rowbytes * H);
    rows = malloc(sizeof(png_bytep) * H);
    if (!pix || !rows) {
        free(pix);
        free(rows);
        return lg_error_set(LG_ERR_NOMEM, "file %s: cannot allocate %ux%u pixels", r->path, (unsigned)W,
                            (unsigned)H);
    }
    for (png_uint_32 y = 0; y < H; y++) rows[y] = pix + y * rowbytes;
    png_read_image(png, rows);
    png_read_end(png, NULL); /* checks the remaining chunks up to IEND */
    free(rows);
    *out = pix;
    *c = nch;
    *depth = bd;
    return LG_OK;
}

lg_status lg_image_read_png(const char *path, uint8_t **out, int *h, int *w, int *c) {
    lg_png_reader *r;
    int ph, pw, pc, depth;
    void *pix;
    LG_TRY(lg_png_open(path, &r, &ph, &pw));
    lg_status s = lg_png_decode(r, 0, &pix, &pc, &depth);
    lg_png_close(r);
    if (s != LG_OK) return s;
    *out = pix;
    *h = ph;
    *w = pw;
    *c = pc;
    return LG_OK;
}
