/* Shared dataset helpers: the raw/gzip reader, allocation, paths, and the
 * lg_data_load dispatcher. */
#include "data/data_internal.h"

#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* ---- dataset ------------------------------------------------------------- */

void lg_data_free(lg_dataset *d) {
    if (!d) return;
    free(d->x);
    free(d->y);
    memset(d, 0, sizeof *d);
}

int64_t lg_data_sample_size(const lg_dataset *d) {
    return (int64_t)d->c * d->h * d->w;
}

lg_status lg_data_alloc(lg_dataset *d, int64_t n, int c, int h, int w,
                        int labeled, int num_classes, const char *path) {
    memset(d, 0, sizeof *d);
    if (n < 1 || c < 1 || h < 1 || w < 1)
        return lg_error_set(LG_ERR_INVALID_ARG,
                            "file %s: empty dataset shape (%lld, %d, %d, %d)",
                            path, (long long)n, c, h, w);
    uint64_t per = (uint64_t)c * (uint64_t)h * (uint64_t)w;
    if ((uint64_t)n > SIZE_MAX / sizeof(float) / per)
        return lg_error_set(LG_ERR_FORMAT,
                            "file %s: dataset (%lld, %d, %d, %d) is too large to address",
                            path, (long long)n, c, h, w);
    size_t bytes = (size_t)n * per * sizeof(float);
    d->x = malloc(bytes);
    if (!d->x)
        return lg_error_set(LG_ERR_NOMEM,
                            "file %s: cannot allocate %.1f MB for %lld samples of %dx%dx%d floats",
                            path, bytes / 1048576.0, (long long)n, c, h, w);
    if (labeled) {
        d->y = malloc((size_t)n * sizeof(int32_t));
        if (!d->y) {
            free(d->x);
            d->x = NULL;
            return lg_error_set(LG_ERR_NOMEM, "file %s: cannot allocate labels for %lld samples",
                                path, (long long)n);
        }
        d->num_classes = num_classes;
    }
    d->n = n;
    d->c = c;
    d->h = h;
    d->w = w;
    return LG_OK;
}

/* ---- paths --------------------------------------------------------------- */

lg_status lg_path_join(char *buf, size_t cap, const char *dir, const char *name) {
    int k = snprintf(buf, cap, "%s/%s", dir, name);
    if (k < 0 || (size_t)k >= cap)
        return lg_error_set(LG_ERR_INVALID_ARG, "path %s/%s is too long", dir, name);
    return LG_OK;
}

int lg_path_is_dir(const char *path) {
    struct stat st;
    return stat(path, &st) == 0 && S_ISDIR(st.st_mode);
}

int lg_path_exists(const char *path) {
    struct stat st;
    return stat(path, &st) == 0;
}

/* ---- reader -------------------------------------------------------------- */

lg_status lg_rd_open(lg_rd *r, const char *path, int allow_gzip) {
    memset(r, 0, sizeof *r);
    r->path = path;
    r->size = -1;
    FILE *f = fopen(path, "rb");
    if (!f)
        return lg_error_set(errno == ENOENT ? LG_ERR_NOT_FOUND : LG_ERR_IO,
                            "file %s: cannot open: %s", path, strerror(errno));
    struct stat st;
    if (fstat(fileno(f), &st) != 0) {
        int e = errno;
        fclose(f);
        return lg_error_set(LG_ERR_IO, "file %s: cannot stat: %s", path, strerror(e));
    }
    if (!S_ISREG(st.st_mode)) {
        fclose(f);
        return lg_error_set(LG_ERR_INVALID_ARG, "file %s: not a regular file", path);
    }
    unsigned char m[2];
    size_t got = fread(m, 1, 2, f);
    if (ferror(f)) {
        int e = errno;
        fclose(f);
        return lg_error_set(LG_ERR_IO, "file %s: read failed: %s", path, strerror(e));
    }
    if (got == 2 && m[0] == 0x1f && m[1] == 0x8b) {
        if (!allow_gzip) {
            fclose(f);
            return lg_error_set(LG_ERR_FORMAT,
                                "file %s: is gzip-compressed; decompress it first (gunzip)", path);
        }
        /* Hand the same open file to zlib (no second open by name). */
        int fd = dup(fileno(f));
        fclose(f);
        if (fd < 0 || lseek(fd, 0, SEEK_SET) != 0) {
            int e = errno;
            if (fd >= 0) close(fd);
            return lg_error_set(LG_ERR_IO, "file %s: cannot reopen for gzip: %s", path, strerror(e));
        }
        r->gz = gzdopen(fd, "rb");
        if (!r->gz) {
            close(fd);
            return lg_error_set(LG_ERR_NOMEM, "file %s: gzdopen failed", path);
        }
        gzbuffer(r->gz, 1u << 17);
        return LG_OK;
    }
    rewind(f);
    r->f = f;
    r->size = (int64_t)st.st_size;
    return LG_OK;
}

/* Maps zlib's state after a read to a status; LG_OK if no error. */
static lg_status rd_gz_check(lg_rd *r, const char *what) {
    int errnum = Z_OK;
    const char *m = gzerror(r->gz, &errnum);
    if (errnum == Z_OK) return LG_OK;
    /* zlib prefixes its message with "<fd:N>: "; we name the file ourselves */
    const char *colon = strstr(m, ": ");
    if (colon && m[0] == '<') m = colon + 2;
    if (errnum == Z_ERRNO)
        return lg_error_set(LG_ERR_IO, "file %s: read failed while reading %s: %s", r->path,
                            what, strerror(errno));
    if (errnum == Z_MEM_ERROR)
        return lg_error_set(LG_ERR_NOMEM, "file %s: zlib out of memory", r->path);
    if (errnum == Z_BUF_ERROR)
        return lg_error_set(LG_ERR_FORMAT, "file %s: truncated gzip stream (zlib: %s); re-download it",
                            r->path, m);
    /* zlib decompresses ahead in large blocks, so no precise offset */
    return lg_error_set(LG_ERR_FORMAT, "file %s: corrupt gzip stream (zlib: %s); re-download it",
                        r->path, m);
}

lg_status lg_rd_read(lg_rd *r, void *buf, size_t n, const char *what) {
    unsigned char *p = buf;
    if (r->f) {
        size_t got = fread(p, 1, n, r->f);
        r->off += (int64_t)got;
        if (got == n) return LG_OK;
        if (ferror(r->f))
            return lg_error_set(LG_ERR_IO, "file %s: read failed while reading %s: %s", r->path,
                                what, strerror(errno));
        return lg_error_set(LG_ERR_FORMAT,
                            "file %s: truncated: ends at byte %lld while reading %s (%zu more bytes needed)",
                            r->path, (long long)r->off, what, n - got);
    }
    while (n > 0) {
        unsigned chunk = n > (1u << 30) ? (1u << 30) : (unsigned)n;
        int k = gzread(r->gz, p, chunk);
        lg_status s = rd_gz_check(r, what);
        if (s != LG_OK) return s;
        if (k < 0) /* should have been caught above; be safe */
            return lg_error_set(LG_ERR_FORMAT, "file %s: corrupt gzip stream", r->path);
        r->off += k;
        if ((unsigned)k < chunk)
            return lg_error_set(LG_ERR_FORMAT,
                                "file %s: truncated: decompressed data ends at byte %lld while reading %s (%zu more bytes needed)",
                                r->path, (long long)r->off, what, n - (size_t)k);
        p += k;
        n -= (size_t)k;
    }
    return LG_OK;
}

lg_status lg_rd_expect_eof(lg_rd *r) {
    if (r->f) {
        if (r->off < r->size)
            return lg_error_set(LG_ERR_FORMAT,
                                "file %s: %lld trailing bytes after the expected %lld; wrong or corrupt file",
                                r->path, (long long)(r->size - r->off), (long long)r->off);
        /* the file could have grown since fstat */
        if (fgetc(r->f) != EOF)
            return lg_error_set(LG_ERR_FORMAT, "file %s: trailing bytes after the expected %lld",
                                r->path, (long long)r->off);
        return LG_OK;
    }
    /* Reading past the end makes zlib verify the gzip trailer (CRC, length). */
    unsigned char b[4096];
    int k = gzread(r->gz, b, sizeof b);
    lg_status s = rd_gz_check(r, "the end of the data");
    if (s != LG_OK) return s;
    if (k != 0)
        return lg_error_set(LG_ERR_FORMAT,
                            "file %s: trailing data after the expected %lld decompressed bytes; wrong or corrupt file",
                            r->path, (long long)r->off);
    return LG_OK;
}

void lg_rd_close(lg_rd *r) {
    if (r->f) fclose(r->f);
    if (r->gz) gzclose(r->gz);
    r->f = NULL;
    r->gz = NULL;
}

/* ---- dispatch ------------------------------------------------------------ */

/* Replaces the last occurrence of `from` in src by `to`; 0 if absent. */
static int replace_last(char *dst, size_t cap, const char *src, const char *from, const char *to) {
    const char *hit = NULL;
    for (const char *p = strstr(src, from); p; p = strstr(p + 1, from)) hit = p;
    if (!hit) return 0;
    int k = snprintf(dst, cap, "%.*s%s%s", (int)(hit - src), src, to, hit + strlen(from));
    return k > 0 && (size_t)k < cap;
}

/* ---- hints for a missing data set ----------------------------------------- */

enum { KIND_IDX, KIND_CIFAR, KIND_STL };

/* 1 if dir holds any image file of the split (of a kind's standard layout). */
static int has_split(int kind, const char *dir, lg_data_split split) {
    static const char *const names[3][3][6] = {
        [KIND_IDX] = {{"train-images-idx3-ubyte", "train-images-idx3-ubyte.gz"},
                      {"t10k-images-idx3-ubyte", "t10k-images-idx3-ubyte.gz"}},
        [KIND_CIFAR] = {{"data_batch_1.bin", "data_batch_2.bin", "data_batch_3.bin", "data_batch_4.bin",
                         "data_batch_5.bin"},
                        {"test_batch.bin"}},
        [KIND_STL] = {{"train_X.bin"}, {"test_X.bin"}, {"unlabeled_X.bin"}},
    };
    if ((int)split < 0 || split > LG_SPLIT_UNLABELED) return 0;
    for (int i = 0; i < 6 && names[kind][split][i]; i++) {
        char p[4096];
        if (lg_path_join(p, sizeof p, dir, names[kind][split][i]) == LG_OK && lg_path_exists(p)) return 1;
    }
    return 0;
}

/* 1 if <dir>/<name> exists. */
static int has_entry(const char *dir, const char *name) {
    char p[4096];
    return lg_path_join(p, sizeof p, dir, name) == LG_OK && lg_path_exists(p);
}

/* Appends to a "file/directory ...: cannot open" error (LG_ERR_NOT_FOUND) of
 * a standard data set what to do: the data.split that the folder has, or
 * where to get the data. Other errors (permissions, corrupt files, labels)
 * get no hint, since re-downloading would not fix them. */
static lg_status missing_hint(lg_status s, int kind, const char *path, lg_data_split split) {
    static const char *const split_name[3] = {"train", "test", "unlabeled"};
    char msg[1024], hint[640] = "";
    snprintf(msg, sizeof msg, "%s", lg_error_msg());
    int dir = lg_path_is_dir(path);
    if (dir && !has_split(kind, path, split)) {
        int other[3], n = 0;
        for (int sp = 0; sp < 3; sp++)
            if (sp != (int)split && has_split(kind, path, (lg_data_split)sp)) other[n++] = sp;
        const char *want = (int)split >= 0 && split <= LG_SPLIT_UNLABELED ? split_name[split] : "?";
        if (n == 1)
            snprintf(hint, sizeof hint,
                     "; the folder has no %s split but has the %s split: set data.split: %s (lipgan fid-stats: "
                     "--split %s)",
                     want, split_name[other[0]], split_name[other[0]], split_name[other[0]]);
        else if (n == 2)
            snprintf(hint, sizeof hint,
                     "; the folder has no %s split but has the %s and %s splits: set data.split to one of them "
                     "(lipgan fid-stats: --split)",
                     want, split_name[other[0]], split_name[other[1]]);
    }
    if (!hint[0] && kind == KIND_CIFAR) {
        if (dir && has_entry(path, "cifar-10-batches-bin"))
            snprintf(hint, sizeof hint, "; point data.path at %.512s/cifar-10-batches-bin", path);
        else if (dir && (has_entry(path, "data_batch_1") || has_entry(path, "test_batch") ||
                         has_entry(path, "cifar-10-batches-py")))
            snprintf(hint, sizeof hint,
                     "; this is the Python (pickle) version, which lipgan does not read: extract the binary "
                     "version (cifar-10-binary.tar.gz) and point data.path at cifar-10-batches-bin");
        else
            snprintf(hint, sizeof hint,
                     "; extract the CIFAR-10 binary version (cifar-10-binary.tar.gz) and point data.path at "
                     "cifar-10-batches-bin");
    } else if (!hint[0] && kind == KIND_STL) {
        if (dir && has_entry(path, "stl10_binary"))
            snprintf(hint, sizeof hint, "; point data.path at %.512s/stl10_binary", path);
        else
            snprintf(hint, sizeof hint,
                     "; extract the STL-10 binary version (stl10_binary.tar.gz) and point data.path at "
                     "stl10_binary");
    } else if (!hint[0]) {
        snprintf(hint, sizeof hint,
                 "; data.path must be a folder with {train,t10k}-{images-idx3,labels-idx1}-ubyte[.gz]; "
                 "Debian's dataset-fashion-mnist (tools/setup.sh) puts Fashion-MNIST in "
                 "/usr/share/datasets/fashion-mnist");
    }
    return lg_error_set(s, "%s%s", msg, hint);
}

/* ---- dispatch ------------------------------------------------------------ */

static lg_status load_by_format(lg_dataset *out, const lg_data_spec *spec, const char *fmt) {
    const char *path = spec->path;
    int is_dir = lg_path_is_dir(path);
    char sib[4096];
    if (!strcmp(fmt, "cifar10")) {
        if (spec->size != 0 && spec->size != 32)
            return lg_error_set(LG_ERR_INVALID_ARG,
                                "path %s: cifar10 images are 32x32 and are not resized, but data.image_size "
                                "(--image-size) is %d; set it to 0 or 32",
                                path, spec->size);
        return lg_data_load_cifar10(out, path, spec->split);
    }
    if (!strcmp(fmt, "png")) return lg_png_dir_load(out, path, spec->channels ? spec->channels : 3, spec->size);
    if (!strcmp(fmt, "stl10")) {
        if (is_dir) return lg_data_load_stl10_dir(out, path, spec->split, spec->size);
        int have = replace_last(sib, sizeof sib, path, "_X.bin", "_y.bin") && lg_path_exists(sib);
        return lg_data_load_stl10(out, path, have ? sib : NULL, spec->size);
    }
    /* mnist / fashion-mnist / idx */
    if (is_dir) return lg_data_load_mnist_dir(out, path, spec->split, spec->size);
    int have = replace_last(sib, sizeof sib, path, "images-idx3", "labels-idx1");
    if (have && !lg_path_exists(sib)) { /* the labels may be (un)compressed differently */
        size_t len = strlen(sib);
        if (len > 3 && !strcmp(sib + len - 3, ".gz")) sib[len - 3] = '\0';
        else if (len + 4 <= sizeof sib) memcpy(sib + len, ".gz", 4);
        have = lg_path_exists(sib);
    }
    return lg_data_load_idx(out, path, have ? sib : NULL, 10, spec->size);
}

lg_status lg_data_load(lg_dataset *out, const lg_data_spec *spec) {
    memset(out, 0, sizeof *out);
    const char *fmt = spec->format ? spec->format : "";
    if (!strcmp(fmt, "ring8")) return lg_data_make_toy(out, LG_TOY_RING8, spec->n, spec->seed);
    if (!strcmp(fmt, "grid25")) return lg_data_make_toy(out, LG_TOY_GRID25, spec->n, spec->seed);
    int known = !strcmp(fmt, "mnist") || !strcmp(fmt, "fashion-mnist") || !strcmp(fmt, "idx") ||
                !strcmp(fmt, "cifar10") || !strcmp(fmt, "stl10") || !strcmp(fmt, "png");
    if (!known)
        return lg_error_set(LG_ERR_INVALID_ARG,
                            "unknown dataset format \"%s\"; use mnist, fashion-mnist, idx, cifar10, stl10, png, ring8 or grid25",
                            fmt);
    if (!spec->path || !spec->path[0])
        return lg_error_set(LG_ERR_INVALID_ARG, "dataset format %s needs a path", fmt);
    lg_status s = load_by_format(out, spec, fmt);
    if (s == LG_ERR_NOT_FOUND && strcmp(fmt, "png") != 0)
        s = missing_hint(s, !strcmp(fmt, "cifar10") ? KIND_CIFAR : !strcmp(fmt, "stl10") ? KIND_STL : KIND_IDX,
                         spec->path, spec->split);
    return s;
}
