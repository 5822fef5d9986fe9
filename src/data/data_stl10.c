/* STL-10 binary loader. Images: uint8, 3 x 96 x 96, stored channel after
 * channel, each channel column-major (MATLAB order), so pixel (c, y, x) is
 * byte c*9216 + x*96 + y. Labels: one byte per image, 1..10. */
#include "data/data_internal.h"

#include <stdlib.h>
#include <string.h>

#define STL_SIDE 96
#define STL_PLANE (STL_SIDE * STL_SIDE)
#define STL_CHUNK 32 /* images per read */

/* Transposes one image to CHW and area-averages f x f blocks. */
static void stl_convert(const unsigned char *src /* (3, 96 cols, 96 rows) */,
                        float *o /* (3, S, S) */, int f) {
    int S = STL_SIDE / f;
    float scale = 127.5f * (float)(f * f);
    for (int c = 0; c < 3; c++) {
        const unsigned char *pl = src + c * STL_PLANE;
        for (int oy = 0; oy < S; oy++)
            for (int ox = 0; ox < S; ox++) {
                unsigned sum = 0;
                for (int dx = 0; dx < f; dx++) {
                    const unsigned char *col = pl + (ox * f + dx) * STL_SIDE + oy * f;
                    for (int dy = 0; dy < f; dy++) sum += col[dy];
                }
                o[(c * S + oy) * S + ox] = (float)sum / scale - 1.0f;
            }
    }
}

lg_status lg_data_load_stl10(lg_dataset *out, const char *images_path,
                             const char *labels_path, int size) {
    memset(out, 0, sizeof *out);
    if (size == 0) size = STL_SIDE;
    if (size != 96 && size != 48 && size != 32)
        return lg_error_set(LG_ERR_INVALID_ARG, "file %s: STL-10 size %d unsupported; use 96, 48 or 32",
                            images_path, size);
    int f = STL_SIDE / size;
    lg_rd ri, rl;
    memset(&rl, 0, sizeof rl);
    LG_TRY(lg_rd_open(&ri, images_path, 0));
    lg_status s = LG_OK;
    int64_t n = ri.size / LG_STL10_IMAGE;
    if (ri.size == 0)
        s = lg_error_set(LG_ERR_FORMAT, "file %s: is empty; expected 27648-byte STL-10 images", images_path);
    else if (ri.size % LG_STL10_IMAGE != 0)
        s = lg_error_set(LG_ERR_FORMAT,
                         "file %s: %lld bytes is not a whole number of 27648-byte images (%lld images + %lld bytes of a partial one); truncated or not STL-10 binary",
                         images_path, (long long)ri.size, (long long)n, (long long)(ri.size % LG_STL10_IMAGE));
    if (s == LG_OK && labels_path) {
        s = lg_rd_open(&rl, labels_path, 0);
        if (s == LG_OK && rl.size != n)
            s = lg_error_set(LG_ERR_FORMAT, "file %s: has %lld labels but %s has %lld images",
                             labels_path, (long long)rl.size, images_path, (long long)n);
    }
    if (s == LG_OK) s = lg_data_alloc(out, n, 3, size, size, labels_path != NULL, 10, images_path);
    unsigned char *buf = NULL;
    if (s == LG_OK) {
        buf = malloc((size_t)STL_CHUNK * LG_STL10_IMAGE);
        if (!buf) s = lg_error_set(LG_ERR_NOMEM, "file %s: cannot allocate a read buffer", images_path);
    }
    for (int64_t i0 = 0; s == LG_OK && i0 < n; i0 += STL_CHUNK) {
        int64_t k = n - i0 < STL_CHUNK ? n - i0 : STL_CHUNK;
        s = lg_rd_read(&ri, buf, (size_t)k * LG_STL10_IMAGE, "STL-10 images");
        for (int64_t i = 0; s == LG_OK && i < k; i++)
            stl_convert(buf + i * LG_STL10_IMAGE, out->x + (i0 + i) * 3 * size * size, f);
    }
    if (s == LG_OK) s = lg_rd_expect_eof(&ri);
    if (s == LG_OK && labels_path) {
        unsigned char *lab = malloc((size_t)n);
        if (!lab) s = lg_error_set(LG_ERR_NOMEM, "file %s: cannot allocate labels", labels_path);
        if (s == LG_OK) s = lg_rd_read(&rl, lab, (size_t)n, "STL-10 labels");
        for (int64_t i = 0; s == LG_OK && i < n; i++) {
            if (lab[i] < 1 || lab[i] > 10)
                s = lg_error_set(LG_ERR_FORMAT, "file %s: label %u at index %lld is out of range 1..10",
                                 labels_path, lab[i], (long long)i);
            else
                out->y[i] = lab[i] - 1;
        }
        free(lab);
        if (s == LG_OK) s = lg_rd_expect_eof(&rl);
    }
    free(buf);
    lg_rd_close(&ri);
    lg_rd_close(&rl);
    if (s != LG_OK) lg_data_free(out);
    return s;
}

lg_status lg_data_load_stl10_dir(lg_dataset *out, const char *dir,
                                 lg_data_split split, int size) {
    memset(out, 0, sizeof *out);
    char img[4096], lab[4096];
    switch (split) {
    case LG_SPLIT_TRAIN:
        LG_TRY(lg_path_join(img, sizeof img, dir, "train_X.bin"));
        LG_TRY(lg_path_join(lab, sizeof lab, dir, "train_y.bin"));
        return lg_data_load_stl10(out, img, lab, size);
    case LG_SPLIT_TEST:
        LG_TRY(lg_path_join(img, sizeof img, dir, "test_X.bin"));
        LG_TRY(lg_path_join(lab, sizeof lab, dir, "test_y.bin"));
        return lg_data_load_stl10(out, img, lab, size);
    case LG_SPLIT_UNLABELED:
        LG_TRY(lg_path_join(img, sizeof img, dir, "unlabeled_X.bin"));
        return lg_data_load_stl10(out, img, NULL, size);
    }
    return lg_error_set(LG_ERR_INVALID_ARG, "directory %s: unknown split %d", dir, (int)split);
}
