/* lipgan side of the training-iteration benchmark (issues 5 and 7): one
 * full SN-GAN CIFAR-10 iteration = 5 D updates at batch 64 + 1 G update at
 * batch 128, SN on D, hinge loss, Adam, the SN-GAN ResNet of
 * configs/cifar10_sngan_hinge.yaml, on CIFAR-10-shaped data (a synthetic
 * file in the published binary format, written to a temp dir). Prints
 * `lipgan train_iter <median ms>`; the PyTorch side is
 * bench/torch_train_iter.py.
 *
 *   build/bench/bench_train_iter [--iters N] [--device cpu|cuda] [--set k=v ...]
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "lipgan/config.h"
#include "lipgan/train.h"

static double now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e3 + ts.tv_nsec * 1e-6;
}

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* 1000 CIFAR-10 records (label byte + 3072 pixel bytes) of noise. */
static int write_cifar(const char *path) {
    FILE *f = fopen(path, "wb");
    if (!f) return -1;
    unsigned char rec[3073];
    uint32_t s = 12345;
    for (int r = 0; r < 1000; r++) {
        for (int i = 0; i < 3073; i++) {
            s = s * 1664525u + 1013904223u;
            rec[i] = (unsigned char)(s >> 24);
        }
        rec[0] %= 10;
        if (fwrite(rec, 1, sizeof rec, f) != sizeof rec) {
            fclose(f);
            return -1;
        }
    }
    return fclose(f);
}

int main(int argc, char **argv) {
    int iters = 5;
    const char *device = "cpu";
    lg_config c;
    lg_config_default(&c);
    if (lg_config_load_file(&c, "configs/cifar10_sngan_hinge.yaml") != LG_OK) {
        fprintf(stderr, "bench_train_iter: %s (run from the repository root)\n", lg_error_msg());
        return 1;
    }
    char dir[] = "/tmp/lg_bench_XXXXXX", path[64], set[128];
    if (!mkdtemp(dir)) return 1;
    snprintf(path, sizeof path, "%s/data_batch_1.bin", dir);
    if (write_cifar(path)) {
        fprintf(stderr, "bench_train_iter: cannot write %s\n", path);
        return 1;
    }
    snprintf(set, sizeof set, "data.path=%s", path);
    lg_config_set(&c, set);
    lg_config_set(&c, "data.instance_noise=0");
    lg_config_set(&c, "train.steps=1000");
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--iters") && i + 1 < argc) iters = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--device") && i + 1 < argc) device = argv[++i];
        else if (!strcmp(argv[i], "--set") && i + 1 < argc) {
            if (lg_config_set(&c, argv[++i]) != LG_OK) {
                fprintf(stderr, "bench_train_iter: %s\n", lg_error_msg());
                return 4;
            }
        } else {
            fprintf(stderr, "usage: bench_train_iter [--iters N] [--device cpu|cuda] [--set k=v ...]\n");
            return 2;
        }
    }
    snprintf(set, sizeof set, "device=%s", device);
    lg_config_set(&c, set);
    if (iters < 1) iters = 1;
    lg_trainer *t;
    if (lg_config_validate(&c) != LG_OK || lg_trainer_create(&t, &c) != LG_OK) {
        fprintf(stderr, "bench_train_iter: %s\n", lg_error_msg());
        return 1;
    }
    lg_train_stats st;
    double *ms = malloc((size_t)iters * sizeof *ms);
    for (int i = 0; i < iters + 1; i++) {  /* the first step warms the arena up */
        double t0 = now_ms();
        if (lg_trainer_step(t, &st) != LG_OK) {
            fprintf(stderr, "bench_train_iter: %s\n", lg_error_msg());
            return 1;
        }
        if (i > 0) ms[i - 1] = now_ms() - t0;  /* the step ends with host reads of the losses */
    }
    qsort(ms, (size_t)iters, sizeof *ms, cmp_double);
    printf("lipgan train_iter %.2f\n", ms[iters / 2]);
    printf("# loss D %.4f G %.4f after %d steps\n", st.loss_d, st.loss_g, iters + 1);
    free(ms);
    lg_trainer_free(t);
    unlink(path);
    rmdir(dir);
    return 0;
}
