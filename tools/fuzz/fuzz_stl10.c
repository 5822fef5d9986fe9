/* libFuzzer harness: STL-10 binary images and labels
 * (src/data/data_stl10.c). Input: one option byte (bits 0-1: size 0, 96,
 * 48, 32; bit 2: no label file; bit 3: size 64, unsupported), then the
 * images, FZ_SEP, the labels. Needs -max_len above 27648 (README.md).
 * Seeds: tools/fuzz/corpus/stl10/. */
#include "fuzz_common.h"
#include "lipgan/data.h"

static lg_status fuzz_stl10(const uint8_t *data, size_t size) {
    if (size < 1) return LG_OK;
    static const int sizes[4] = {0, 96, 48, 32};
    const uint8_t opt = data[0];
    const uint8_t *part[2];
    size_t len[2];
    fz_split(data + 1, size - 1, part, len, 2);
    char img[128], lab[128];
    fz_path(img, sizeof img, "train_X.bin");
    fz_path(lab, sizeof lab, "train_y.bin");
    fz_write(img, part[0], len[0]);
    fz_write(lab, part[1], len[1]);
    lg_dataset d;
    int sz = opt & 8 ? 64 : sizes[opt & 3];
    lg_status s = FZ_MAIN(lg_data_load_stl10(&d, img, opt & 4 ? NULL : lab, sz));
    if (s == LG_OK) {
        FZ_ASSERT(d.n >= 1 && d.c == 3 && d.x && d.h == (sz ? sz : 96));
        for (int64_t i = 0; i < d.n * lg_data_sample_size(&d); i++) FZ_ASSERT(d.x[i] >= -1.0f && d.x[i] <= 1.0f);
        for (int64_t i = 0; d.y && i < d.n; i++) FZ_ASSERT(d.y[i] >= 0 && d.y[i] < 10);
    } else {
        FZ_ASSERT(!d.x && !d.y && d.n == 0);
    }
    lg_data_free(&d);
    return s;
}

LG_FUZZ_MAIN(fuzz_stl10)
