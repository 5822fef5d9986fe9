/* tests/train_fixtures.h - small data sets and temp directories for the
 * training tests (header-only: included by test_train.c, test_checkpoint.c
 * and test_config.c; not linked into other tests). */
#ifndef LIPGAN_TESTS_TRAIN_FIXTURES_H
#define LIPGAN_TESTS_TRAIN_FIXTURES_H

#include <ftw.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* A fresh directory /tmp/lgtrn_XXXXXX into buf (cap >= 32); 0 on success. */
__attribute__((unused)) static int tf_mkdtemp(char *buf, size_t cap) {
    snprintf(buf, cap, "/tmp/lgtrn_XXXXXX");
    return mkdtemp(buf) ? 0 : -1;
}

__attribute__((unused)) static int tf_rm_cb(const char *p, const struct stat *sb, int flag, struct FTW *ftw) {
    (void)sb; (void)flag; (void)ftw;
    return remove(p);
}
/* rm -rf dir */
__attribute__((unused)) static void tf_rm_rf(const char *dir) { nftw(dir, tf_rm_cb, 16, FTW_DEPTH | FTW_PHYS); }

__attribute__((unused)) static uint32_t tf_lcg(uint32_t *s) {
    *s = *s * 1664525u + 1013904223u;
    return *s >> 8;
}

/* n CIFAR-10 records (label byte + 3072 pixel bytes) at dir/tiny_cifar.bin;
 * path into out. */
__attribute__((unused)) static int tf_write_cifar(const char *dir, int n, char *out, size_t cap) {
    snprintf(out, cap, "%s/tiny_cifar.bin", dir);
    FILE *f = fopen(out, "wb");
    if (!f) return -1;
    uint32_t s = 12345;
    for (int i = 0; i < n; i++) {
        unsigned char rec[3073];
        rec[0] = (unsigned char)(i % 10);
        for (int j = 1; j < 3073; j++) rec[j] = (unsigned char)(tf_lcg(&s) & 0xff);
        if (fwrite(rec, 1, sizeof rec, f) != sizeof rec) { fclose(f); return -1; }
    }
    return fclose(f);
}

/* 1000 CIFAR-10 records (label byte + 3072 pixel bytes) of LCG noise at
 * path: the synthetic data of bench/bench_train_iter.c and
 * tests/gpu/test_train_cuda.c. 0 on success. */
__attribute__((unused)) static int tf_write_cifar_noise(const char *path) {
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

__attribute__((unused)) static void tf_be32(unsigned char *p, uint32_t v) {
    p[0] = (unsigned char)(v >> 24); p[1] = (unsigned char)(v >> 16);
    p[2] = (unsigned char)(v >> 8); p[3] = (unsigned char)v;
}

/* A directory in the (uncompressed) MNIST / Fashion-MNIST layout with n
 * side x side training images and labels: dir/train-images-idx3-ubyte, ... */
__attribute__((unused)) static int tf_write_idx_dir_sized(const char *dir, int n, int side) {
    char p[512];
    unsigned char h[16];
    snprintf(p, sizeof p, "%s/train-images-idx3-ubyte", dir);
    FILE *f = fopen(p, "wb");
    if (!f) return -1;
    tf_be32(h, 0x803); tf_be32(h + 4, (uint32_t)n); tf_be32(h + 8, (uint32_t)side); tf_be32(h + 12, (uint32_t)side);
    fwrite(h, 1, 16, f);
    uint32_t s = 777;
    for (int i = 0; i < n * side * side; i++) fputc((int)(tf_lcg(&s) & 0xff), f);
    if (fclose(f)) return -1;
    snprintf(p, sizeof p, "%s/train-labels-idx1-ubyte", dir);
    f = fopen(p, "wb");
    if (!f) return -1;
    tf_be32(h, 0x801); tf_be32(h + 4, (uint32_t)n);
    fwrite(h, 1, 8, f);
    for (int i = 0; i < n; i++) fputc(i % 10, f);
    return fclose(f);
}

/* The same with MNIST's 28x28 images. */
__attribute__((unused)) static int tf_write_idx_dir(const char *dir, int n) {
    return tf_write_idx_dir_sized(dir, n, 28);
}

/* The repository's configs/ directory (tests run from the repository root;
 * also tried: one and two levels up). */
__attribute__((unused)) static const char *tf_configs_dir(void) {
    static const char *const cand[] = {"configs", "../configs", "../../configs"};
    for (int i = 0; i < 3; i++)
        if (access(cand[i], R_OK) == 0) return cand[i];
    return NULL;
}

#endif
