/* libFuzzer harness: IDX images and labels, raw or gzip
 * (src/data/data_idx.c, the reader in src/data/data_common.c). Input: one
 * option byte, then the image file, FZ_SEP, the label file. Option bits:
 * 0-1 pad_to (0, 28, 32, 5), 2 no label file, 3-4 num_classes (10, 1, 256,
 * 0). Seeds: tools/fuzz/corpus/idx/ (tools/fuzz/gen_seeds.c). */
#include "fuzz_common.h"
#include "lipgan/data.h"

static lg_status fuzz_idx(const uint8_t *data, size_t size) {
    if (size < 1) return LG_OK;
    static const int pads[4] = {0, 28, 32, 5}, classes[4] = {10, 1, 256, 0};
    const uint8_t opt = data[0];
    const uint8_t *part[2];
    size_t len[2];
    fz_split(data + 1, size - 1, part, len, 2);
    char img[128], lab[128];
    fz_path(img, sizeof img, "images-idx3-ubyte");
    fz_path(lab, sizeof lab, "labels-idx1-ubyte");
    fz_write(img, part[0], len[0]);
    fz_write(lab, part[1], len[1]);
    lg_dataset d;
    lg_status s = FZ_MAIN(lg_data_load_idx(&d, img, opt & 4 ? NULL : lab, classes[(opt >> 3) & 3], pads[opt & 3]));
    if (s == LG_OK) {
        FZ_ASSERT(d.n >= 1 && d.c == 1 && d.x);
        for (int64_t i = 0; i < d.n * lg_data_sample_size(&d); i++) FZ_ASSERT(d.x[i] >= -1.0f && d.x[i] <= 1.0f);
        for (int64_t i = 0; d.y && i < d.n; i++) FZ_ASSERT(d.y[i] >= 0 && d.y[i] < d.num_classes);
    } else {
        FZ_ASSERT(!d.x && !d.y && d.n == 0);
    }
    lg_data_free(&d);
    return s;
}

LG_FUZZ_MAIN(fuzz_idx)
