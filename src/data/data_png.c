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

/* A growable list of malloc'ed strings. */
typedef struct name_list {
    char **v;
    size_t n, cap;
} name_list;

static void names_free(name_list *l) {
    for (size_t i = 0; i < l->n; i++) free(l->v[i]);
    free(l->v);
    memset(l, 0, sizeof *l);
}

static lg_status names_push(name_list *l, const char *s, const char *dir) {
    if (l->n == l->cap) {
        size_t nc = l->cap ? 2 * l->cap : 64;
        char **nv = realloc(l->v, nc * sizeof *nv);
        if (!nv) return lg_error_set(LG_ERR_NOMEM, "directory %s: out of memory listing files", dir);
        l->v = nv;
        l->cap = nc;
    }
    if (!(l->v[l->n] = strdup(s)))
        return lg_error_set(LG_ERR_NOMEM, "directory %s: out of memory listing files", dir);
    l->n++;
    return LG_OK;
}

/* Lists dir (names not starting with '.'): regular *.png files into pngs
 * and, if dirs is not NULL, subdirectories into dirs; both sorted by byte
 * order. Symbolic links are followed. A *.png entry that is not readable as
 * a file (a broken link, a fifo, no permission to stat) is an error, as an
 * unreadable image would be: skipping it would change the data set
 * silently. */
static lg_status list_dir(const char *dir, name_list *pngs, name_list *dirs) {
    DIR *dp = opendir(dir);
    if (!dp) {
        int e = errno;
        if (e == ENOTDIR)
            return lg_error_set(LG_ERR_FORMAT,
                                "path %s: is a file, not a directory; format png reads a folder of .png "
                                "files (or of class folders of them): give the folder",
                                dir);
        return lg_error_set(e == ENOENT ? LG_ERR_NOT_FOUND : LG_ERR_IO, "directory %s: cannot open: %s", dir,
                            strerror(e));
    }
    lg_status s = LG_OK;
    struct dirent *e;
    while (s == LG_OK && (e = readdir(dp)) != NULL) {
        if (e->d_name[0] == '.') continue;
        int png = has_png_suffix(e->d_name);
        if (!png && !dirs) continue;
        char full[4096];
        struct stat st;
        s = lg_path_join(full, sizeof full, dir, e->d_name);
        if (s != LG_OK) break;
        if (stat(full, &st) != 0) {
            int err = errno;
            if (!png) continue; /* not an image and not a folder we could read */
            struct stat lst;
            if (err == ENOENT && lstat(full, &lst) == 0 && S_ISLNK(lst.st_mode))
                s = lg_error_set(LG_ERR_NOT_FOUND,
                                 "file %s: is a broken symbolic link (its target does not exist); fix or "
                                 "remove it",
                                 full);
            else
                s = lg_error_set(err == ENOENT ? LG_ERR_NOT_FOUND : LG_ERR_IO, "file %s: cannot stat: %s", full,
                                 strerror(err));
        } else if (S_ISDIR(st.st_mode)) {
            if (dirs) s = names_push(dirs, e->d_name, dir);
        } else if (!png) {
            continue;
        } else if (!S_ISREG(st.st_mode)) {
            s = lg_error_set(LG_ERR_FORMAT, "file %s: is not a regular file; remove it from the folder", full);
        } else {
            s = names_push(pngs, e->d_name, dir);
        }
    }
    closedir(dp);
    if (s != LG_OK) {
        names_free(pngs);
        if (dirs) names_free(dirs);
        return s;
    }
    if (pngs->n > 1) qsort(pngs->v, pngs->n, sizeof *pngs->v, cmp_str);
    if (dirs && dirs->n > 1) qsort(dirs->v, dirs->n, sizeof *dirs->v, cmp_str);
    return LG_OK;
}

/* The images of dir as paths relative to it ("a.png", or "class/a.png")
 * with labels (NULL: unlabeled): dir's own *.png files if it has any,
 * otherwise one level of class folders (torchvision's ImageFolder: class k
 * is the k-th subfolder in sorted order). */
static lg_status list_images(const char *dir, name_list *files, int32_t **labels, int *num_classes) {
    name_list subs = {0};
    *labels = NULL;
    *num_classes = 0;
    LG_TRY(list_dir(dir, files, &subs));
    if (files->n > 0 || subs.n == 0) {
        names_free(&subs);
        if (files->n == 0)
            return lg_error_set(LG_ERR_NOT_FOUND, "directory %s: contains no .png files", dir);
        return LG_OK;
    }
    /* class folders */
    lg_status s = LG_OK;
    size_t empty = 0;
    const char *first_empty = NULL;
    name_list per = {0};
    int32_t *lab = NULL;
    size_t lab_cap = 0;
    for (size_t k = 0; s == LG_OK && k < subs.n; k++) {
        char sub[4096];
        s = lg_path_join(sub, sizeof sub, dir, subs.v[k]);
        if (s == LG_OK) s = list_dir(sub, &per, NULL);
        if (s == LG_OK && per.n == 0) {
            empty++;
            if (!first_empty) first_empty = subs.v[k];
        }
        for (size_t i = 0; s == LG_OK && i < per.n; i++) {
            char rel[4096];
            s = lg_path_join(rel, sizeof rel, subs.v[k], per.v[i]);
            if (s == LG_OK) s = names_push(files, rel, dir);
            if (s == LG_OK && files->n > lab_cap) {
                size_t nc = lab_cap ? 2 * lab_cap : 64;
                int32_t *nl = realloc(lab, nc * sizeof *nl);
                if (!nl) s = lg_error_set(LG_ERR_NOMEM, "directory %s: out of memory listing files", dir);
                else lab = nl, lab_cap = nc;
            }
            if (s == LG_OK) lab[files->n - 1] = (int32_t)k;
        }
        names_free(&per);
    }
    if (s == LG_OK && empty == subs.n)
        s = lg_error_set(LG_ERR_NOT_FOUND,
                         "directory %s: contains no .png files, and neither do its %zu subfolders (read one level "
                         "deep as class folders, %s/<class>/*.png; deeper folders are not read)",
                         dir, subs.n, dir);
    else if (s == LG_OK && empty > 0)
        s = lg_error_set(LG_ERR_NOT_FOUND,
                         "directory %s/%s: has no .png files, but %s is read as class folders (no .png files of "
                         "its own; every subfolder is a class, as in torchvision's ImageFolder): add images to "
                         "it or remove it",
                         dir, first_empty, dir);
    if (s == LG_OK) *num_classes = (int)subs.n;
    names_free(&subs);
    if (s != LG_OK) {
        free(lab);
        names_free(files);
        return s;
    }
    *labels = lab;
    return LG_OK;
}

lg_status lg_png_dir_load(lg_dataset *out, const char *dir, int channels, int size) {
    memset(out, 0, sizeof *out);
    if (channels != 1 && channels != 3)
        return lg_error_set(LG_ERR_INVALID_ARG, "directory %s: channels must be 1 or 3, not %d", dir, channels);
    name_list files = {0};
    int32_t *labels;
    int ncls;
    LG_TRY(list_images(dir, &files, &labels, &ncls));
    lg_status s = LG_OK;
    char first[4096], path[4096];
    int h = 0, w = 0;
    s = lg_path_join(first, sizeof first, dir, files.v[0]);
    if (s == LG_OK) s = png_read_one(first, first, channels, &h, &w, NULL);
    /* PNGs are not resized: an asked-for size must be the files' own */
    if (s == LG_OK && size != 0 && (h != size || w != size))
        s = lg_error_set(LG_ERR_INVALID_ARG,
                         "file %s: is %dx%d (WxH), but data.image_size (--image-size) is %d; png images are "
                         "not resized: set it to 0 (the files' own size) or resize the files",
                         first, w, h, size);
    if (s == LG_OK) s = lg_data_alloc(out, (int64_t)files.n, channels, h, w, labels != NULL, ncls, first);
    size_t per = (size_t)channels * h * w;
    for (size_t i = 0; s == LG_OK && i < files.n; i++) {
        s = lg_path_join(path, sizeof path, dir, files.v[i]);
        if (s == LG_OK) s = png_read_one(path, first, channels, &h, &w, out->x + i * per);
        if (s == LG_OK && labels) out->y[i] = labels[i];
    }
    free(labels);
    names_free(&files);
    if (s != LG_OK) lg_data_free(out);
    return s;
}

lg_status lg_data_load_png_dir(lg_dataset *out, const char *dir, int channels) {
    return lg_png_dir_load(out, dir, channels, 0);
}
