/* libFuzzer harness: PNG files through lg_image_read_png (src/io/image.c,
 * src/io/png_read.h) and the folder-of-PNGs dataset loader
 * (src/data/data_png.c), with 1 or 3 channels by the input's length. The
 * harness recomputes the chunk CRCs first so that mutations reach the
 * decoder. Seeds: tools/fuzz/corpus/png/ (gray, gray+alpha, RGB, RGBA,
 * palette with tRNS, 1/2/4/16-bit, interlaced; tools/fuzz/gen_seeds.c). */
#include "fuzz_common.h"
#include "lipgan/data.h"
#include "lipgan/image.h"

static lg_status fuzz_png(const uint8_t *data, size_t size) {
    uint8_t *b = fz_dup(data, size);
    fz_fix_png_crcs(b, size);
    char dir[128], path[160];
    fz_path(dir, sizeof dir, "pngs");
    mkdir(dir, 0700);
    snprintf(path, sizeof path, "%s/a.png", dir);
    fz_write(path, b, size);
    free(b);
    uint8_t *pix = NULL;
    int h = 0, w = 0, c = 0;
    lg_status s = FZ_MAIN(lg_image_read_png(path, &pix, &h, &w, &c));
    if (s == LG_OK) {
        FZ_ASSERT(pix && h >= 1 && w >= 1 && c >= 1 && c <= 4);
        unsigned sum = 0; /* touch every pixel: ASan checks the buffer's size */
        for (size_t i = 0; i < (size_t)h * w * c; i++) sum += pix[i];
        (void)sum;
        free(pix);
    }
    lg_dataset d;
    lg_status s2 = FZ(lg_data_load_png_dir(&d, dir, size & 1 ? 1 : 3));
    if (s2 == LG_OK) {
        FZ_ASSERT(d.n == 1 && d.h == h && d.w == w && d.x && !d.y);
        for (int64_t i = 0; i < lg_data_sample_size(&d); i++) FZ_ASSERT(d.x[i] >= -1.0f && d.x[i] <= 1.0f);
        lg_data_free(&d);
    }
    /* both decode with libpng: they agree on what is a valid PNG */
    FZ_ASSERT((s == LG_OK) == (s2 == LG_OK));
    return s;
}

LG_FUZZ_MAIN(fuzz_png)
