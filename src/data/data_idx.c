/* IDX loader (MNIST, Fashion-MNIST), raw or gzip. Format: a 4-byte
 * big-endian magic 0x0000TTDD (TT = 0x08 unsigned byte, DD = number of
 * dims), then DD big-endian uint32 dims, then the data, nothing after. */
#include "data/data_internal.h"

#include <stdlib.h>
#include <string.h>

#define IDX_MAGIC_IMAGES 0x00000803u
#define IDX_MAGIC_LABELS 0x00000801u
#define IDX_MAX_HW 4096u
#define IDX_MAX_N (1u << 28)

static uint32_t be32(const unsigned char *p) {
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

/* Reads and checks the magic and the dims of an IDX file with ndim dims. */
static lg_status idx_header(lg_rd *r, uint32_t want_magic, uint32_t *dims) {
    int ndim = (int)(want_magic & 0xff);
    unsigned char b[4 + 4 * 3];
    LG_TRY(lg_rd_read(r, b, 4, "the IDX header"));
    uint32_t magic = be32(b);
    if (magic != want_magic) {
        const char *kind = ndim == 3 ? "images" : "labels";
        if ((magic >> 16) != 0)
            return lg_error_set(LG_ERR_FORMAT,
                                "file %s: not an IDX file: wrong magic 0x%08x, expected 0x%08x (IDX %s)",
                                r->path, magic, want_magic, kind);
        if (((magic >> 8) & 0xff) != 0x08)
            return lg_error_set(LG_ERR_FORMAT,
                                "file %s: wrong magic 0x%08x: IDX element type 0x%02x is not unsigned byte (0x08)",
                                r->path, magic, (magic >> 8) & 0xff);
        return lg_error_set(LG_ERR_FORMAT,
                            "file %s: wrong magic 0x%08x: %u dims, expected 0x%08x (IDX %s, %d dims); images and labels swapped?",
                            r->path, magic, magic & 0xff, want_magic, kind, ndim);
    }
    LG_TRY(lg_rd_read(r, b + 4, 4 * (size_t)ndim, "the IDX header"));
    for (int i = 0; i < ndim; i++) {
        dims[i] = be32(b + 4 + 4 * i);
        uint32_t lim = i == 0 ? IDX_MAX_N : IDX_MAX_HW;
        if (dims[i] == 0 || dims[i] > lim)
            return lg_error_set(LG_ERR_FORMAT, "file %s: IDX dimension %d is %u, must be in 1..%u",
                                r->path, i, dims[i], lim);
    }
    /* For raw files the exact size is known now: check it before allocating. */
    if (r->size >= 0) {
        uint64_t count = dims[0];
        for (int i = 1; i < ndim; i++) count *= dims[i]; /* <= 2^28 * 2^24: no overflow */
        uint64_t want = 4 + 4 * (uint64_t)ndim + count;
        if ((uint64_t)r->size < want)
            return lg_error_set(LG_ERR_FORMAT,
                                "file %s: truncated: %lld bytes, but the header's dimensions need %llu",
                                r->path, (long long)r->size, (unsigned long long)want);
        if ((uint64_t)r->size > want)
            return lg_error_set(LG_ERR_FORMAT,
                                "file %s: %llu trailing bytes: %lld bytes, but the header's dimensions need %llu",
                                r->path, (unsigned long long)((uint64_t)r->size - want),
                                (long long)r->size, (unsigned long long)want);
    }
    return LG_OK;
}

/* Reads d->n images of H x W into d->x, padded to d->h x d->w. For gzip
 * input the header's count is not backed by a known file size, so d->x
 * grows (doubling) as images actually arrive instead of trusting it. */
static lg_status idx_read_images(lg_rd *r, lg_dataset *d, uint32_t H, uint32_t W) {
    int top = (d->h - (int)H) / 2, left = (d->w - (int)W) / 2;
    int pad = d->h != (int)H || d->w != (int)W;
    size_t per = (size_t)H * W, oper = (size_t)d->h * d->w;
    size_t batch = per >= (1u << 20) ? 1 : (1u << 20) / per;
    int64_t cap = d->n;
    if (r->size < 0) {
        int64_t start = (int64_t)((16u << 20) / (oper * sizeof(float)));
        cap = start < 1 ? 1 : start > d->n ? d->n : start;
        float *x = realloc(d->x, (size_t)cap * oper * sizeof(float));
        if (!x) return lg_error_set(LG_ERR_NOMEM, "file %s: out of memory", r->path);
        d->x = x;
    }
    unsigned char *buf = malloc(batch * per);
    if (!buf) return lg_error_set(LG_ERR_NOMEM, "file %s: cannot allocate a read buffer", r->path);
    lg_status s = LG_OK;
    for (int64_t i0 = 0; i0 < d->n && s == LG_OK; i0 += (int64_t)batch) {
        size_t k = (size_t)(d->n - i0) < batch ? (size_t)(d->n - i0) : batch;
        s = lg_rd_read(r, buf, k * per, "the image data");
        if (s == LG_OK && i0 + (int64_t)k > cap) {
            int64_t nc = cap * 2 > d->n ? d->n : cap * 2;
            if (nc < i0 + (int64_t)k) nc = i0 + (int64_t)k;
            float *x = realloc(d->x, (size_t)nc * oper * sizeof(float));
            if (!x) s = lg_error_set(LG_ERR_NOMEM, "file %s: out of memory at image %lld", r->path, (long long)i0);
            else d->x = x, cap = nc;
        }
        for (size_t i = 0; i < k && s == LG_OK; i++) {
            float *o = d->x + (size_t)(i0 + (int64_t)i) * oper; /* (H', W') */
            const unsigned char *src = buf + i * per;          /* (H, W) */
            if (pad)
                for (size_t j = 0; j < oper; j++) o[j] = -1.0f;
            for (uint32_t y = 0; y < H; y++)
                for (uint32_t x = 0; x < W; x++)
                    o[(size_t)(y + top) * d->w + x + left] = lg_u8_to_unit(src[y * W + x]);
        }
    }
    free(buf);
    return s;
}

lg_status lg_data_load_idx(lg_dataset *out, const char *images_path,
                           const char *labels_path, int num_classes, int pad_to) {
    memset(out, 0, sizeof *out);
    if (labels_path && (num_classes < 1 || num_classes > 256))
        return lg_error_set(LG_ERR_INVALID_ARG, "file %s: num_classes %d must be in 1..256",
                            labels_path, num_classes);
    lg_rd ri, rl;
    memset(&rl, 0, sizeof rl);
    LG_TRY(lg_rd_open(&ri, images_path, 1));
    uint32_t di[3] = {0}, dl[1] = {0};
    lg_status s = idx_header(&ri, IDX_MAGIC_IMAGES, di);
    if (s == LG_OK && pad_to != 0 && (pad_to < (int)di[1] || pad_to < (int)di[2] || pad_to > (int)IDX_MAX_HW))
        s = lg_error_set(LG_ERR_INVALID_ARG,
                         "file %s: cannot pad %ux%u images to %d; the padded size (data.image_size, --image-size) "
                         "must be 0 (no padding) or in %u..%u",
                         images_path, di[1], di[2], pad_to, di[1] > di[2] ? di[1] : di[2], (unsigned)IDX_MAX_HW);
    if (s == LG_OK && labels_path) {
        s = lg_rd_open(&rl, labels_path, 1);
        if (s == LG_OK) s = idx_header(&rl, IDX_MAGIC_LABELS, dl);
        if (s == LG_OK && dl[0] != di[0])
            s = lg_error_set(LG_ERR_FORMAT, "file %s: has %u labels but %s has %u images",
                             labels_path, dl[0], images_path, di[0]);
    }
    int side_h = pad_to ? pad_to : (int)di[1], side_w = pad_to ? pad_to : (int)di[2];
    /* gzip: start with one image and let idx_read_images grow it */
    if (s == LG_OK) s = lg_data_alloc(out, ri.size < 0 ? 1 : di[0], 1, side_h, side_w, 0, 0, images_path);
    if (s == LG_OK) out->n = di[0];
    if (s == LG_OK) s = idx_read_images(&ri, out, di[1], di[2]);
    if (s == LG_OK) s = lg_rd_expect_eof(&ri);
    if (s == LG_OK && labels_path) {
        /* allocated only now: di[0] images really arrived */
        unsigned char *lab = malloc(di[0]);
        out->y = malloc((size_t)di[0] * sizeof(int32_t));
        out->num_classes = num_classes;
        if (!lab || !out->y) s = lg_error_set(LG_ERR_NOMEM, "file %s: cannot allocate labels", labels_path);
        if (s == LG_OK) s = lg_rd_read(&rl, lab, di[0], "the labels");
        for (uint32_t i = 0; s == LG_OK && i < di[0]; i++) {
            if (lab[i] >= num_classes)
                s = lg_error_set(LG_ERR_FORMAT, "file %s: label %u at index %u is out of range 0..%d",
                                 labels_path, lab[i], i, num_classes - 1);
            else
                out->y[i] = lab[i];
        }
        free(lab);
        if (s == LG_OK) s = lg_rd_expect_eof(&rl);
    }
    lg_rd_close(&ri);
    lg_rd_close(&rl);
    if (s != LG_OK) lg_data_free(out);
    return s;
}

/* Picks <dir>/<name> or <dir>/<name>.gz, whichever exists (raw first). */
static lg_status find_raw_or_gz(char *buf, size_t cap, const char *dir, const char *name) {
    LG_TRY(lg_path_join(buf, cap, dir, name));
    if (lg_path_exists(buf)) return LG_OK;
    size_t len = strlen(buf);
    if (len + 4 > cap) return lg_error_set(LG_ERR_INVALID_ARG, "path %s is too long", buf);
    memcpy(buf + len, ".gz", 4);
    if (lg_path_exists(buf)) return LG_OK;
    return lg_error_set(LG_ERR_NOT_FOUND, "directory %s: neither %s nor %s.gz exists", dir, name, name);
}

lg_status lg_data_load_mnist_dir(lg_dataset *out, const char *dir,
                                 lg_data_split split, int pad_to) {
    memset(out, 0, sizeof *out);
    if (split != LG_SPLIT_TRAIN && split != LG_SPLIT_TEST)
        return lg_error_set(LG_ERR_INVALID_ARG,
                            "directory %s: MNIST has only train and test splits; set data.split (--split) to one "
                            "of them",
                            dir);
    const char *pre = split == LG_SPLIT_TRAIN ? "train" : "t10k";
    char name[64], img[4096], lab[4096];
    snprintf(name, sizeof name, "%s-images-idx3-ubyte", pre);
    LG_TRY(find_raw_or_gz(img, sizeof img, dir, name));
    snprintf(name, sizeof name, "%s-labels-idx1-ubyte", pre);
    LG_TRY(find_raw_or_gz(lab, sizeof lab, dir, name));
    return lg_data_load_idx(out, img, lab, 10, pad_to);
}
