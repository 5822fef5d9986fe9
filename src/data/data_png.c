/* Folder-of-PNGs loader. Decoding is io/png_read.h (shared with
 * lg_image_read_png); this file lists the folder, checks that every image
 * has the first one's size and converts samples to float planes. */
#include "data/data_internal.h"

#include <dirent.h>
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

#include "io/png_read.h"

/* Reads one PNG. If out is NULL only the header is read and *h, *w are set;
 * otherwise the size must equal *h x *w (first_path names the file that set
 * it) and the pixels are written to out (channels, h, w) in [-1, 1]: 16-bit
 * files keep their precision, 1 channel is the luma of RGB, 3 channels
 * replicate gray, alpha is skipped. */
static lg_status png_read_one(const char *path, const char *first_path, int channels,
                              int *h, int *w, float *out) {
    lg_png_reader *r;
    int H, W;
    LG_TRY(lg_png_open(path, &r, &H, &W));
    if (!out) {
        lg_png_close(r);
        *h = H;
        *w = W;
        return LG_OK;
    }
    if (W != *w || H != *h) { /* checked before decoding anything */
        lg_png_close(r);
        return lg_error_set(LG_ERR_FORMAT,
                            "file %s: is %dx%d (WxH) but %s is %dx%d; all images must have the same size",
                            path, W, H, first_path, *w, *h);
    }
    void *pix; /* (H, W, nch) samples of bd bits */
    int nch, bd;
    lg_status s = lg_png_decode(r, 1, &pix, &nch, &bd);
    lg_png_close(r);
    if (s != LG_OK) return s;
    const uint8_t *p8 = pix;
    const uint16_t *p16 = pix;
    int color = nch >= 3 ? 3 : 1; /* samples before the alpha one */
    float half = bd == 16 ? 32767.5f : 127.5f;
    size_t plane = (size_t)H * W;
    for (size_t o = 0; o < plane; o++) {
        float v[3];
        for (int k = 0; k < color; k++) {
            size_t i = o * nch + k;
            v[k] = (float)(bd == 16 ? p16[i] : p8[i]);
        }
        if (channels == 1) {
            float g = color == 1 ? v[0] : 0.299f * v[0] + 0.587f * v[1] + 0.114f * v[2];
            out[o] = g / half - 1.0f;
        } else {
            for (int k = 0; k < 3; k++) out[k * plane + o] = v[color == 1 ? 0 : k] / half - 1.0f;
        }
    }
    free(pix);
    return LG_OK;
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
