/* Folder-of-PNGs loader (libpng). libpng reports errors by longjmp to the
 * setjmp in png_read_one; everything allocated after that setjmp is held in
 * volatile pointers so the error path can free it. */
#include "data/data_internal.h"

#include <dirent.h>
#include <errno.h>
#include <png.h>
#include <setjmp.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

typedef struct png_err_ctx {
    char msg[256];
} png_err_ctx;

static void png_on_error(png_structp png, png_const_charp msg) {
    png_err_ctx *c = png_get_error_ptr(png);
    snprintf(c->msg, sizeof c->msg, "%s", msg);
    png_longjmp(png, 1);
}

static void png_on_warning(png_structp png, png_const_charp msg) {
    (void)png;
    (void)msg; /* warnings (e.g. a bad ancillary chunk) do not affect pixels */
}

/* Replaces libpng's default reader to say what a short read means. */
static void png_on_read(png_structp png, png_bytep data, size_t n) {
    FILE *fp = png_get_io_ptr(png);
    if (fread(data, 1, n, fp) != n)
        png_error(png, ferror(fp) ? "read failed" : "file ends early (truncated)");
}

/* Reads one PNG. If out is NULL only the header is read and *h, *w are set;
 * otherwise the size must equal *h x *w (first_path names the file that set
 * it) and the pixels are written to out (channels, h, w). */
static lg_status png_read_one(const char *path, const char *first_path, int channels,
                              int *h, int *w, float *out) {
    FILE *fp = fopen(path, "rb");
    if (!fp) return lg_error_set(LG_ERR_IO, "file %s: cannot open: %s", path, strerror(errno));
    unsigned char sig[8];
    if (fread(sig, 1, 8, fp) != 8 || png_sig_cmp(sig, 0, 8) != 0) {
        fclose(fp);
        return lg_error_set(LG_ERR_FORMAT, "file %s: not a PNG file (bad signature)", path);
    }
    png_err_ctx ctx = {{0}};
    png_structp png = png_create_read_struct(PNG_LIBPNG_VER_STRING, &ctx, png_on_error, png_on_warning);
    png_infop info = png ? png_create_info_struct(png) : NULL;
    if (!info) {
        png_destroy_read_struct(png ? &png : NULL, NULL, NULL);
        fclose(fp);
        return lg_error_set(LG_ERR_NOMEM, "file %s: cannot create a PNG reader", path);
    }
    unsigned char *volatile pix = NULL;  /* (H, rowbytes) */
    png_bytep *volatile rows = NULL;     /* (H) pointers into pix */
    lg_status s = LG_OK;
    if (setjmp(png_jmpbuf(png))) {
        png_destroy_read_struct(&png, &info, NULL);
        free(pix);
        free(rows);
        fclose(fp);
        return lg_error_set(LG_ERR_FORMAT, "file %s: corrupt PNG: %s", path, ctx.msg);
    }
    png_set_read_fn(png, fp, png_on_read);
    png_set_sig_bytes(png, 8);
    png_read_info(png, info);
    png_uint_32 W = png_get_image_width(png, info), H = png_get_image_height(png, info);
    int color_type = png_get_color_type(png, info), depth = png_get_bit_depth(png, info);
    if (!out) {
        if (W > 16384 || H > 16384) {
            s = lg_error_set(LG_ERR_FORMAT, "file %s: %ux%u is too large (at most 16384 per side)",
                             path, (unsigned)W, (unsigned)H);
        } else {
            *h = (int)H;
            *w = (int)W;
        }
        goto done;
    }
    if ((int)W != *w || (int)H != *h) {
        s = lg_error_set(LG_ERR_FORMAT,
                         "file %s: is %ux%u (WxH) but %s is %dx%d; all images must have the same size",
                         path, (unsigned)W, (unsigned)H, first_path, *w, *h);
        goto done;
    }
    /* Normalize to 8 or 16 bit gray / gray+alpha / RGB / RGBA; alpha is
     * skipped below, so tRNS expansion does not matter. */
    if (color_type == PNG_COLOR_TYPE_PALETTE) png_set_palette_to_rgb(png);
    if (color_type == PNG_COLOR_TYPE_GRAY && depth < 8) png_set_expand_gray_1_2_4_to_8(png);
    png_set_interlace_handling(png);
    png_read_update_info(png, info);
    int nch = png_get_channels(png, info);
    int bd = png_get_bit_depth(png, info);
    size_t rowbytes = png_get_rowbytes(png, info);
    if ((bd != 8 && bd != 16) || nch < 1 || nch > 4 || rowbytes < (size_t)W * nch * (bd / 8)) {
        s = lg_error_set(LG_ERR_UNSUPPORTED, "file %s: unexpected PNG layout (%d channels, %d bit)", path,
                         nch, bd);
        goto done;
    }
    pix = malloc(rowbytes * H);
    rows = malloc(sizeof(png_bytep) * H);
    if (!pix || !rows) {
        s = lg_error_set(LG_ERR_NOMEM, "file %s: cannot allocate %ux%u pixels", path, (unsigned)W,
                         (unsigned)H);
        goto done;
    }
    for (png_uint_32 y = 0; y < H; y++) rows[y] = pix + y * rowbytes;
    png_read_image(png, rows);
    png_read_end(png, NULL); /* checks the remaining chunks up to IEND */

    {
        int color = nch >= 3 ? 3 : 1; /* samples before the alpha one */
        float half = bd == 16 ? 32767.5f : 127.5f;
        size_t plane = (size_t)H * W;
        for (png_uint_32 y = 0; y < H; y++) {
            const unsigned char *row = rows[y];
            for (png_uint_32 x = 0; x < W; x++) {
                float v[3];
                for (int k = 0; k < color; k++) {
                    size_t i = (size_t)x * nch + k;
                    unsigned raw = bd == 16 ? (unsigned)row[2 * i] << 8 | row[2 * i + 1] : row[i];
                    v[k] = (float)raw;
                }
                size_t o = (size_t)y * W + x;
                if (channels == 1) {
                    float g = color == 1 ? v[0] : 0.299f * v[0] + 0.587f * v[1] + 0.114f * v[2];
                    out[o] = g / half - 1.0f;
                } else {
                    for (int k = 0; k < 3; k++) out[k * plane + o] = v[color == 1 ? 0 : k] / half - 1.0f;
                }
            }
        }
    }
done:
    png_destroy_read_struct(&png, &info, NULL);
    free(pix);
    free(rows);
    fclose(fp);
    return s;
}

static int has_png_suffix(const char *name) {
    size_t n = strlen(name);
    return n > 4 && strcasecmp(name + n - 4, ".png") == 0;
}

static int cmp_str(const void *a, const void *b) {
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Lists regular *.png files (not starting with '.') in dir, sorted. */
static lg_status list_pngs(const char *dir, char ***names_out, size_t *n_out) {
    *names_out = NULL;
    *n_out = 0;
    DIR *dp = opendir(dir);
    if (!dp)
        return lg_error_set(errno == ENOENT ? LG_ERR_NOT_FOUND : LG_ERR_IO,
                            "directory %s: cannot open: %s", dir, strerror(errno));
    char **names = NULL;
    size_t n = 0, cap = 0;
    lg_status s = LG_OK;
    struct dirent *e;
    while (s == LG_OK && (e = readdir(dp)) != NULL) {
        if (e->d_name[0] == '.' || !has_png_suffix(e->d_name)) continue;
        char full[4096];
        struct stat st;
        if (lg_path_join(full, sizeof full, dir, e->d_name) != LG_OK || stat(full, &st) != 0 ||
            !S_ISREG(st.st_mode))
            continue;
        if (n == cap) {
            size_t nc = cap ? 2 * cap : 64;
            char **nn = realloc(names, nc * sizeof *nn);
            if (!nn) {
                s = lg_error_set(LG_ERR_NOMEM, "directory %s: out of memory listing files", dir);
                break;
            }
            names = nn;
            cap = nc;
        }
        names[n] = strdup(e->d_name);
        if (!names[n]) s = lg_error_set(LG_ERR_NOMEM, "directory %s: out of memory listing files", dir);
        else n++;
    }
    closedir(dp);
    if (s != LG_OK) {
        for (size_t i = 0; i < n; i++) free(names[i]);
        free(names);
        return s;
    }
    if (n > 0) qsort(names, n, sizeof *names, cmp_str);
    *names_out = names;
    *n_out = n;
    return LG_OK;
}

lg_status lg_data_load_png_dir(lg_dataset *out, const char *dir, int channels) {
    memset(out, 0, sizeof *out);
    if (channels != 1 && channels != 3)
        return lg_error_set(LG_ERR_INVALID_ARG, "directory %s: channels must be 1 or 3, not %d", dir, channels);
    char **names;
    size_t n;
    LG_TRY(list_pngs(dir, &names, &n));
    lg_status s = LG_OK;
    if (n == 0) s = lg_error_set(LG_ERR_NOT_FOUND, "directory %s: contains no .png files", dir);
    char first[4096], path[4096];
    int h = 0, w = 0;
    if (s == LG_OK) s = lg_path_join(first, sizeof first, dir, names[0]);
    if (s == LG_OK) s = png_read_one(first, first, channels, &h, &w, NULL);
    if (s == LG_OK) s = lg_data_alloc(out, (int64_t)n, channels, h, w, 0, 0, first);
    size_t per = (size_t)channels * h * w;
    for (size_t i = 0; s == LG_OK && i < n; i++) {
        s = lg_path_join(path, sizeof path, dir, names[i]);
        if (s == LG_OK) s = png_read_one(path, first, channels, &h, &w, out->x + i * per);
    }
    for (size_t i = 0; i < n; i++) free(names[i]);
    free(names);
    if (s != LG_OK) lg_data_free(out);
    return s;
}
