/* libFuzzer harness: CIFAR-10 binary files (src/data/data_cifar10.c) as a
 * single file, and as a directory's test_batch.bin. Needs -max_len above
 * 3073 (README.md). Seeds: tools/fuzz/corpus/cifar/. */
#include "fuzz_common.h"
#include "lipgan/data.h"

static lg_status fuzz_cifar(const uint8_t *data, size_t size) {
    char path[128], dir[128], tb[160];
    fz_path(path, sizeof path, "cifar.bin");
    fz_write(path, data, size);
    lg_dataset d;
    lg_status s = FZ_MAIN(lg_data_load_cifar10(&d, path, LG_SPLIT_TRAIN));
    if (s == LG_OK) {
        FZ_ASSERT(d.n >= 1 && d.c == 3 && d.h == 32 && d.w == 32 && d.x && d.y && d.num_classes == 10);
        for (int64_t i = 0; i < d.n; i++) FZ_ASSERT(d.y[i] >= 0 && d.y[i] < 10);
    } else {
        FZ_ASSERT(!d.x && !d.y && d.n == 0);
    }
    lg_data_free(&d);
    /* the directory form: a short test_batch.bin is an error, with the hint
     * machinery of lg_data_load around it */
    fz_path(dir, sizeof dir, "cifar");
    mkdir(dir, 0700);
    snprintf(tb, sizeof tb, "%s/test_batch.bin", dir);
    fz_write(tb, data, size);
    lg_data_spec spec = {.format = "cifar10", .path = dir, .split = LG_SPLIT_TEST};
    if (FZ(lg_data_load(&d, &spec)) == LG_OK) lg_data_free(&d);
    return s;
}

LG_FUZZ_MAIN(fuzz_cifar)
