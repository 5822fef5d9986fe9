/* Tests for the dataset loaders, toys and sampler (lipgan/data.h).
 * Fixtures are written in the published formats into a mkdtemp directory;
 * corrupted variants must be rejected with a message naming the file. */
#include <ftw.h>
#include <math.h>
#include <png.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include "lg_test.h"
#include "lipgan/data.h"
#include "lipgan/image.h"

static char g_tmp[256];

/* The status must be `want` and the message must contain `needle` (the
 * file name, usually). */
#define CHECK_ERR(expr, want, needle)                                                     \
    do {                                                                                  \
        lg_status s_ = (expr);                                                            \
        CHECK(s_ == (want), "got %s (%s), want %s", lg_status_str(s_), lg_error_msg(),    \
              lg_status_str(want));                                                       \
        CHECK(strstr(lg_error_msg(), (needle)) != NULL, "message \"%s\" lacks \"%s\"",    \
              lg_error_msg(), (needle));                                                  \
    } while (0)

/* ---- fixture helpers ------------------------------------------------------ */

static const char *tpath(const char *name) {
    static char buf[8][512];
    static int k;
    k = (k + 1) % 8;
    snprintf(buf[k], sizeof buf[k], "%s/%s", g_tmp, name);
    return buf[k];
}

static void mkdir_t(const char *name) {
    if (mkdir(tpath(name), 0700) != 0) {
        perror(name);
        abort();
    }
}

static void write_file(const char *path, const void *data, size_t n) {
    FILE *f = fopen(path, "wb");
    if (!f || (n && fwrite(data, 1, n, f) != n) || fclose(f) != 0) {
        perror(path);
        abort();
    }
}

static void write_gz(const char *path, const void *data, size_t n) {
    gzFile g = gzopen(path, "wb");
    if (!g || (n && gzwrite(g, data, (unsigned)n) != (int)n) || gzclose(g) != Z_OK) {
        fprintf(stderr, "gz write %s failed\n", path);
        abort();
    }
}

static unsigned char *read_all(const char *path, size_t *n) {
    FILE *f = fopen(path, "rb");
    if (!f) abort();
    fseek(f, 0, SEEK_END);
    long sz = ftell(f);
    fseek(f, 0, SEEK_SET);
    unsigned char *b = malloc(sz ? (size_t)sz : 1);
    if (fread(b, 1, (size_t)sz, f) != (size_t)sz) abort();
    fclose(f);
    *n = (size_t)sz;
    return b;
}

static void put_be32(unsigned char *p, uint32_t v) {
    p[0] = (unsigned char)(v >> 24);
    p[1] = (unsigned char)(v >> 16);
    p[2] = (unsigned char)(v >> 8);
    p[3] = (unsigned char)v;
}

static float unit(unsigned v) { return (float)v / 127.5f - 1.0f; }

static int rm_entry(const char *p, const struct stat *sb, int flag, struct FTW *ftw) {
    (void)sb; (void)flag; (void)ftw;
    return remove(p);
}

/* ---- IDX ------------------------------------------------------------------- */

#define IN 5
#define IH 3
#define IW 4

static unsigned idx_pix(int i, int y, int x) {
    if (i == 0 && y == 0 && x == 0) return 0;
    if (i == IN - 1 && y == IH - 1 && x == IW - 1) return 255;
    return (unsigned)(i * 61 + y * 17 + x * 5 + 3) % 256;
}

/* IDX images (n, h, w) with the given magic; extra bytes appended (or
 * negative: cut). Returns the buffer size. */
static size_t make_idx_images(unsigned char *b, uint32_t magic, uint32_t n, uint32_t h, uint32_t w,
                              int extra) {
    put_be32(b, magic);
    put_be32(b + 4, n);
    put_be32(b + 8, h);
    put_be32(b + 12, w);
    size_t k = 16;
    for (uint32_t i = 0; i < n; i++)
        for (uint32_t y = 0; y < h; y++)
            for (uint32_t x = 0; x < w; x++) b[k++] = (unsigned char)idx_pix((int)i, (int)y, (int)x);
    for (int e = 0; e < extra; e++) b[k++] = 7;
    return (size_t)((long)k + (extra < 0 ? extra : 0));
}

static size_t make_idx_labels(unsigned char *b, uint32_t n, const unsigned char *lab, int extra) {
    put_be32(b, 0x00000801);
    put_be32(b + 4, n);
    memcpy(b + 8, lab, n);
    for (int e = 0; e < extra; e++) b[8 + n + e] = 1;
    return (size_t)((long)(8 + n) + extra);
}

static void check_idx_content(const lg_dataset *d, int pad) {
    int P = pad ? pad : IH, Q = pad ? pad : IW;
    int top = (P - IH) / 2, left = (Q - IW) / 2;
    CHECK(d->n == IN && d->c == 1 && d->h == P && d->w == Q, "shape (%lld,%d,%d,%d)",
          (long long)d->n, d->c, d->h, d->w);
    if (d->n != IN || d->h != P || d->w != Q) return;
    int bad = 0;
    for (int i = 0; i < IN; i++)
        for (int y = 0; y < P; y++)
            for (int x = 0; x < Q; x++) {
                int iy = y - top, ix = x - left;
                float want = (iy >= 0 && iy < IH && ix >= 0 && ix < IW) ? unit(idx_pix(i, iy, ix)) : -1.0f;
                bad += d->x[((size_t)i * P + y) * Q + x] != want;
            }
    CHECK(bad == 0, "%d IDX pixels differ", bad);
    CHECK(d->x[0] == -1.0f, "pixel 0 -> %g, want -1", d->x[0]);
}

static void test_idx(void) {
    static unsigned char img[16 + IN * IH * IW + 8], lb[8 + IN + 8], tmp[64 * 1024];
    const unsigned char labs[IN] = {0, 9, 3, 3, 7};
    size_t ni = make_idx_images(img, 0x00000803, IN, IH, IW, 0);
    size_t nl = make_idx_labels(lb, IN, labs, 0);
    write_file(tpath("img.idx"), img, ni);
    write_file(tpath("lab.idx"), lb, nl);
    write_gz(tpath("img.idx.gz"), img, ni);
    write_gz(tpath("lab.idx.gz"), lb, nl);

    lg_dataset d;
    /* raw and gzip give the same result */
    for (int gz = 0; gz < 2; gz++) {
        CHECK_OK(lg_data_load_idx(&d, tpath(gz ? "img.idx.gz" : "img.idx"),
                                  tpath(gz ? "lab.idx.gz" : "lab.idx"), 10, 0));
        check_idx_content(&d, 0);
        CHECK(d.y && d.num_classes == 10, "labels missing");
        for (int i = 0; d.y && i < IN; i++) CHECK(d.y[i] == labs[i], "label %d: %d", i, d.y[i]);
        lg_data_free(&d);
        CHECK(d.x == NULL && d.y == NULL && d.n == 0, "free zeroes");
    }
    /* padding to 8x8 centers the 3x4 image (top 2, left 2) on -1 */
    CHECK_OK(lg_data_load_idx(&d, tpath("img.idx"), NULL, 10, 8));
    check_idx_content(&d, 8);
    CHECK(d.y == NULL && d.num_classes == 0, "no labels requested");
    lg_data_free(&d);
    CHECK_ERR(lg_data_load_idx(&d, tpath("img.idx"), NULL, 10, 3), LG_ERR_INVALID_ARG, "img.idx");

    /* --- corrupt images files --- */
    struct { const char *name; size_t n; } bad[24];
    int nb = 0;
    size_t k;
    write_file(tpath("short_hdr.idx"), img, 3);
    bad[nb].name = "short_hdr.idx"; bad[nb++].n = 0;
    write_file(tpath("short_dims.idx"), img, 10);
    bad[nb].name = "short_dims.idx"; bad[nb++].n = 0;
    k = make_idx_images(tmp, 0x00000801, IN, IH, IW, 0);
    write_file(tpath("magic_labels.idx"), tmp, k);
    bad[nb].name = "magic_labels.idx"; bad[nb++].n = 0;
    k = make_idx_images(tmp, 0x12345678, IN, IH, IW, 0);
    write_file(tpath("magic_junk.idx"), tmp, k);
    bad[nb].name = "magic_junk.idx"; bad[nb++].n = 0;
    k = make_idx_images(tmp, 0x00000D03, IN, IH, IW, 0); /* float elements */
    write_file(tpath("magic_float.idx"), tmp, k);
    bad[nb].name = "magic_float.idx"; bad[nb++].n = 0;
    k = make_idx_images(tmp, 0x00000803, 0, IH, IW, 0);
    write_file(tpath("zero_n.idx"), tmp, k);
    bad[nb].name = "zero_n.idx"; bad[nb++].n = 0;
    k = make_idx_images(tmp, 0x00000803, IN, 0, IW, 0);
    write_file(tpath("zero_h.idx"), tmp, k);
    bad[nb].name = "zero_h.idx"; bad[nb++].n = 0;
    put_be32(tmp + 8, 5000); /* huge H (header only; rejected before the data) */
    write_file(tpath("huge_h.idx"), tmp, 16);
    bad[nb].name = "huge_h.idx"; bad[nb++].n = 0;
    put_be32(tmp + 4, 0xFFFFFFFFu); /* huge N, would overflow 32-bit sizes */
    put_be32(tmp + 8, 4096);
    put_be32(tmp + 12, 4096);
    write_file(tpath("huge_n.idx"), tmp, 16);
    bad[nb].name = "huge_n.idx"; bad[nb++].n = 0;
    /* the largest allowed header on a tiny file: no giant allocation, just "truncated" */
    put_be32(tmp + 4, 1u << 28);
    memset(tmp + 16, 9, 100);
    write_file(tpath("liar.idx"), tmp, 116);
    bad[nb].name = "liar.idx"; bad[nb++].n = 0;
    write_gz(tpath("liar.idx.gz"), tmp, 116);
    bad[nb].name = "liar.idx.gz"; bad[nb++].n = 0;
    write_file(tpath("trunc.idx"), img, ni - 1);
    bad[nb].name = "trunc.idx"; bad[nb++].n = 0;
    k = make_idx_images(tmp, 0x00000803, IN, IH, IW, 1);
    write_file(tpath("trail.idx"), tmp, k);
    bad[nb].name = "trail.idx"; bad[nb++].n = 0;
    write_gz(tpath("trunc_data.idx.gz"), img, ni - 1);
    bad[nb].name = "trunc_data.idx.gz"; bad[nb++].n = 0;
    write_gz(tpath("trail_data.idx.gz"), tmp, k);
    bad[nb].name = "trail_data.idx.gz"; bad[nb++].n = 0;
    write_gz(tpath("short_hdr.idx.gz"), img, 6);
    bad[nb].name = "short_hdr.idx.gz"; bad[nb++].n = 0;
    for (int i = 0; i < nb; i++) {
        d.x = (float *)1; /* must be reset on error */
        CHECK_ERR(lg_data_load_idx(&d, tpath(bad[i].name), NULL, 10, 0), LG_ERR_FORMAT, bad[i].name);
        CHECK(d.x == NULL && d.n == 0, "%s: dataset not cleared on error", bad[i].name);
    }
    /* specific reasons */
    lg_data_load_idx(&d, tpath("magic_labels.idx"), NULL, 10, 0);
    CHECK(strstr(lg_error_msg(), "magic") != NULL, "%s", lg_error_msg());
    lg_data_load_idx(&d, tpath("trail.idx"), NULL, 10, 0);
    CHECK(strstr(lg_error_msg(), "trailing") != NULL, "%s", lg_error_msg());
    lg_data_load_idx(&d, tpath("trail_data.idx.gz"), NULL, 10, 0);
    CHECK(strstr(lg_error_msg(), "trailing") != NULL, "%s", lg_error_msg());
    lg_data_load_idx(&d, tpath("trunc.idx"), NULL, 10, 0);
    CHECK(strstr(lg_error_msg(), "truncated") != NULL, "%s", lg_error_msg());
    lg_data_load_idx(&d, tpath("trunc_data.idx.gz"), NULL, 10, 0);
    CHECK(strstr(lg_error_msg(), "truncated") != NULL, "%s", lg_error_msg());

    /* --- corrupt gzip streams (a larger file so the damage lands in deflate data) --- */
    {
        enum { BN = 300, BH = 28, BW = 28 };
        size_t bsz = 16 + (size_t)BN * BH * BW;
        unsigned char *big = malloc(bsz);
        put_be32(big, 0x803);
        put_be32(big + 4, BN);
        put_be32(big + 8, BH);
        put_be32(big + 12, BW);
        uint64_t st = 99;
        for (size_t i = 16; i < bsz; i++) { /* compressible but not trivial */
            st = st * 6364136223846793005ULL + 1442695040888963407ULL;
            big[i] = (unsigned char)((st >> 60) * 16);
        }
        write_gz(tpath("big.idx.gz"), big, bsz);
        CHECK_OK(lg_data_load_idx(&d, tpath("big.idx.gz"), NULL, 10, 0));
        CHECK(d.n == BN && d.h == BH && d.x[(size_t)BN * BH * BW - 1] == unit(big[bsz - 1]), "big gz content");
        lg_data_free(&d);
        size_t gn;
        unsigned char *gzb = read_all(tpath("big.idx.gz"), &gn);
        write_file(tpath("gz_half.idx.gz"), gzb, gn / 2);
        write_file(tpath("gz_notrailer.idx.gz"), gzb, gn - 4);
        unsigned char *c = malloc(gn);
        memcpy(c, gzb, gn);
        for (size_t i = gn / 2; i < gn / 2 + 16; i++) c[i] ^= 0x5A;
        write_file(tpath("gz_flip.idx.gz"), c, gn);
        memcpy(c, gzb, gn);
        c[gn - 6] ^= 0xFF; /* CRC32 in the trailer */
        write_file(tpath("gz_crc.idx.gz"), c, gn);
        memcpy(c, gzb, gn);
        c[3] = 0xE0; /* reserved FLG bits: a bad gzip header */
        write_file(tpath("gz_hdr.idx.gz"), c, gn);
        const char *gzbad[] = {"gz_half.idx.gz", "gz_notrailer.idx.gz", "gz_flip.idx.gz", "gz_crc.idx.gz",
                               "gz_hdr.idx.gz"};
        for (int i = 0; i < 5; i++) {
            CHECK_ERR(lg_data_load_idx(&d, tpath(gzbad[i]), NULL, 10, 0), LG_ERR_FORMAT, gzbad[i]);
            CHECK(strstr(lg_error_msg(), "gzip") != NULL || strstr(lg_error_msg(), "magic") != NULL,
                  "%s: %s", gzbad[i], lg_error_msg());
        }
        free(c);
        free(gzb);
        free(big);
    }

    /* --- label files --- */
    const unsigned char labs4[4] = {1, 2, 3, 4};
    k = make_idx_labels(tmp, 4, labs4, 0);
    write_file(tpath("lab_count.idx"), tmp, k);
    CHECK_ERR(lg_data_load_idx(&d, tpath("img.idx"), tpath("lab_count.idx"), 10, 0), LG_ERR_FORMAT,
              "lab_count.idx");
    const unsigned char labs_oor[IN] = {0, 1, 10, 2, 3};
    k = make_idx_labels(tmp, IN, labs_oor, 0);
    write_file(tpath("lab_oor.idx"), tmp, k);
    CHECK_ERR(lg_data_load_idx(&d, tpath("img.idx"), tpath("lab_oor.idx"), 10, 0), LG_ERR_FORMAT,
              "lab_oor.idx");
    CHECK(strstr(lg_error_msg(), "out of range") != NULL, "%s", lg_error_msg());
    /* class count is a parameter: 8 classes reject label 9 */
    CHECK_ERR(lg_data_load_idx(&d, tpath("img.idx"), tpath("lab.idx"), 8, 0), LG_ERR_FORMAT, "lab.idx");
    CHECK_OK(lg_data_load_idx(&d, tpath("img.idx"), tpath("lab.idx"), 10, 0));
    lg_data_free(&d);
    k = make_idx_labels(tmp, IN, labs, 2);
    write_file(tpath("lab_trail.idx"), tmp, k);
    CHECK_ERR(lg_data_load_idx(&d, tpath("img.idx"), tpath("lab_trail.idx"), 10, 0), LG_ERR_FORMAT,
              "lab_trail.idx");
    write_gz(tpath("lab_trail.idx.gz"), tmp, k);
    CHECK_ERR(lg_data_load_idx(&d, tpath("img.idx"), tpath("lab_trail.idx.gz"), 10, 0), LG_ERR_FORMAT,
              "lab_trail.idx.gz");
    /* swapped arguments: the images file as labels */
    CHECK_ERR(lg_data_load_idx(&d, tpath("img.idx"), tpath("img.idx"), 10, 0), LG_ERR_FORMAT, "img.idx");
    CHECK(strstr(lg_error_msg(), "magic") != NULL, "%s", lg_error_msg());
    CHECK_ERR(lg_data_load_idx(&d, tpath("lab.idx"), NULL, 10, 0), LG_ERR_FORMAT, "lab.idx");
    CHECK_ERR(lg_data_load_idx(&d, tpath("nonexistent.idx"), NULL, 10, 0), LG_ERR_NOT_FOUND,
              "nonexistent.idx");
    CHECK_ERR(lg_data_load_idx(&d, g_tmp, NULL, 10, 0), LG_ERR_INVALID_ARG, "not a regular file");

    /* --- directory form with the standard names --- */
    mkdir_t("mnist");
    write_gz(tpath("mnist/t10k-images-idx3-ubyte.gz"), img, ni);
    write_file(tpath("mnist/t10k-labels-idx1-ubyte"), lb, nl);
    CHECK_OK(lg_data_load_mnist_dir(&d, tpath("mnist"), LG_SPLIT_TEST, 0));
    check_idx_content(&d, 0);
    lg_data_free(&d);
    CHECK_ERR(lg_data_load_mnist_dir(&d, tpath("mnist"), LG_SPLIT_TRAIN, 0), LG_ERR_NOT_FOUND,
              "train-images-idx3-ubyte");
    /* by-name dispatch with a file path finds the sibling labels */
    lg_data_spec sp = {.format = "mnist", .path = tpath("mnist/t10k-images-idx3-ubyte.gz")};
    CHECK_OK(lg_data_load(&d, &sp));
    CHECK(d.n == IN && d.y && d.y[1] == 9, "dispatch mnist file");
    lg_data_free(&d);
}

static void test_fashion_mnist_real(void) {
    const char *dir = "/usr/share/datasets/fashion-mnist";
    char p[512];
    snprintf(p, sizeof p, "%s/t10k-images-idx3-ubyte.gz", dir);
    if (access(p, R_OK) != 0) {
        printf("  SKIP real Fashion-MNIST check: %s not present (apt package dataset-fashion-mnist)\n", p);
        return;
    }
    lg_dataset d;
    CHECK_OK(lg_data_load_mnist_dir(&d, dir, LG_SPLIT_TEST, 32));
    CHECK(d.n == 10000 && d.c == 1 && d.h == 32 && d.w == 32 && d.num_classes == 10, "t10k shape");
    if (d.n != 10000 || !d.y) return;
    const int first[5] = {9, 2, 1, 1, 6}; /* known first labels of t10k */
    for (int i = 0; i < 5; i++) CHECK(d.y[i] == first[i], "label %d = %d, want %d", i, d.y[i], first[i]);
    int count[10] = {0};
    for (int i = 0; i < 10000; i++) count[d.y[i]]++;
    for (int c = 0; c < 10; c++) CHECK(count[c] == 1000, "class %d has %d images", c, count[c]);
    /* byte sums measured with Python's gzip: image 0 = 33456, all = 573469082 */
    double s0 = 0, all = 0;
    int border_bad = 0;
    for (int i = 0; i < 10000; i++)
        for (int y = 0; y < 32; y++)
            for (int x = 0; x < 32; x++) {
                float v = d.x[((size_t)i * 32 + y) * 32 + x];
                if (y < 2 || y >= 30 || x < 2 || x >= 30) {
                    border_bad += v != -1.0f;
                    continue;
                }
                double byte = (double)lround(((double)v + 1.0) * 127.5); /* back to the exact byte */
                all += byte;
                if (i == 0) s0 += byte;
            }
    CHECK(border_bad == 0, "%d padding pixels are not -1", border_bad);
    CHECK(fabs(s0 - 33456) < 0.01, "image 0 byte sum %.3f, want 33456", s0);
    CHECK(fabs(all - 573469082.0) < 1.0, "byte sum %.1f, want 573469082", all);
    lg_data_free(&d);
}

/* ---- CIFAR-10 --------------------------------------------------------------- */

static unsigned cifar_pix(int64_t r, int c, int y, int x) { return (unsigned)(r * 7 + c * 85 + y * 3 + x * 11) % 256; }

/* Writes nrec records with label lab(r) = labels[r % nlab]; extra bytes cut (<0) or added. */
static void make_cifar(const char *path, int64_t nrec, const unsigned char *labels, int nlab, int extra) {
    size_t n = (size_t)nrec * LG_CIFAR10_RECORD;
    unsigned char *b = malloc(n + 16);
    for (int64_t r = 0; r < nrec; r++) {
        unsigned char *rec = b + r * LG_CIFAR10_RECORD;
        rec[0] = labels[r % nlab];
        for (int c = 0; c < 3; c++)
            for (int y = 0; y < 32; y++)
                for (int x = 0; x < 32; x++) rec[1 + c * 1024 + y * 32 + x] = (unsigned char)cifar_pix(r, c, y, x);
    }
    for (int e = 0; e < extra; e++) b[n + e] = 0;
    write_file(path, b, (size_t)((long)n + extra));
    free(b);
}

static int cifar_mismatches(const lg_dataset *d, int64_t r, int64_t src_r) {
    int bad = 0;
    for (int c = 0; c < 3; c++)
        for (int y = 0; y < 32; y++)
            for (int x = 0; x < 32; x++)
                bad += d->x[(((size_t)r * 3 + c) * 32 + y) * 32 + x] != unit(cifar_pix(src_r, c, y, x));
    return bad;
}

static void test_cifar10(void) {
    const unsigned char labs[] = {0, 9, 5};
    lg_dataset d;
    make_cifar(tpath("c3.bin"), 3, labs, 3, 0);
    CHECK_OK(lg_data_load_cifar10(&d, tpath("c3.bin"), LG_SPLIT_TRAIN));
    CHECK(d.n == 3 && d.c == 3 && d.h == 32 && d.w == 32 && d.num_classes == 10, "cifar shape");
    for (int r = 0; d.n == 3 && r < 3; r++) {
        CHECK(d.y[r] == labs[r], "record %d label %d", r, d.y[r]);
        CHECK(cifar_mismatches(&d, r, r) == 0, "record %d pixels", r);
    }
    lg_data_free(&d);

    make_cifar(tpath("c_partial.bin"), 3, labs, 3, -1);
    CHECK_ERR(lg_data_load_cifar10(&d, tpath("c_partial.bin"), LG_SPLIT_TRAIN), LG_ERR_FORMAT, "c_partial.bin");
    CHECK(strstr(lg_error_msg(), "partial") != NULL, "%s", lg_error_msg());
    make_cifar(tpath("c_extra.bin"), 3, labs, 3, 5);
    CHECK_ERR(lg_data_load_cifar10(&d, tpath("c_extra.bin"), LG_SPLIT_TRAIN), LG_ERR_FORMAT, "c_extra.bin");
    write_file(tpath("c_empty.bin"), "", 0);
    CHECK_ERR(lg_data_load_cifar10(&d, tpath("c_empty.bin"), LG_SPLIT_TRAIN), LG_ERR_FORMAT, "c_empty.bin");
    const unsigned char labs_bad[] = {0, 1, 10};
    make_cifar(tpath("c_label.bin"), 3, labs_bad, 3, 0);
    CHECK_ERR(lg_data_load_cifar10(&d, tpath("c_label.bin"), LG_SPLIT_TRAIN), LG_ERR_FORMAT, "c_label.bin");
    CHECK(strstr(lg_error_msg(), "record 2") != NULL, "%s", lg_error_msg());
    CHECK(d.x == NULL, "cleared on error");
    {
        size_t n;
        unsigned char *b = read_all(tpath("c3.bin"), &n);
        write_gz(tpath("c3.bin.gz"), b, n);
        free(b);
        CHECK_ERR(lg_data_load_cifar10(&d, tpath("c3.bin.gz"), LG_SPLIT_TRAIN), LG_ERR_FORMAT, "c3.bin.gz");
    }

    /* Directory = the standard set: each file must be 30,730,000 bytes. */
    mkdir_t("cifar");
    const unsigned char all10[] = {0, 1, 2, 3, 4, 5, 6, 7, 8, 9};
    make_cifar(tpath("cifar/test_batch.bin"), 10000, all10, 10, 0);
    struct stat st;
    CHECK(stat(tpath("cifar/test_batch.bin"), &st) == 0 && st.st_size == 30730000, "fixture size");
    CHECK_OK(lg_data_load_cifar10(&d, tpath("cifar"), LG_SPLIT_TEST));
    CHECK(d.n == 10000, "test split has %lld images", (long long)d.n);
    if (d.n == 10000) {
        const int64_t probe[] = {0, 1, 4999, 9999};
        for (int i = 0; i < 4; i++) {
            CHECK(d.y[probe[i]] == probe[i] % 10, "label of %lld", (long long)probe[i]);
            CHECK(cifar_mismatches(&d, probe[i], probe[i]) == 0, "pixels of %lld", (long long)probe[i]);
        }
    }
    lg_data_free(&d);
    /* train: data_batch_1..4 standard (hard links to the full file), 5 short */
    for (int i = 1; i <= 4; i++) {
        char name[64];
        snprintf(name, sizeof name, "cifar/data_batch_%d.bin", i);
        CHECK(link(tpath("cifar/test_batch.bin"), tpath(name)) == 0, "link %s", name);
    }
    CHECK_ERR(lg_data_load_cifar10(&d, tpath("cifar"), LG_SPLIT_TRAIN), LG_ERR_NOT_FOUND, "data_batch_5.bin");
    make_cifar(tpath("cifar/data_batch_5.bin"), 3, labs, 3, 0);
    CHECK_ERR(lg_data_load_cifar10(&d, tpath("cifar"), LG_SPLIT_TRAIN), LG_ERR_FORMAT, "data_batch_5.bin");
    CHECK(strstr(lg_error_msg(), "30730000") != NULL, "%s", lg_error_msg());
    CHECK_ERR(lg_data_load_cifar10(&d, tpath("cifar"), LG_SPLIT_UNLABELED), LG_ERR_INVALID_ARG, "cifar");

    lg_data_spec sp = {.format = "cifar10", .path = tpath("c3.bin")};
    CHECK_OK(lg_data_load(&d, &sp));
    CHECK(d.n == 3 && d.y[1] == 9, "dispatch cifar10");
    lg_data_free(&d);
}

/* ---- STL-10 ----------------------------------------------------------------- */

static unsigned stl_pix(int i, int c, int y, int x) { return (unsigned)(i * 101 + c * 50 + y * 3 + x * 7) % 256; }

static void make_stl(const char *path, int n, int extra) {
    size_t sz = (size_t)n * LG_STL10_IMAGE;
    unsigned char *b = malloc(sz + 16);
    for (int i = 0; i < n; i++)
        for (int c = 0; c < 3; c++)
            for (int y = 0; y < 96; y++)
                for (int x = 0; x < 96; x++) /* column-major within each channel */
                    b[(size_t)i * LG_STL10_IMAGE + c * 9216 + x * 96 + y] = (unsigned char)stl_pix(i, c, y, x);
    for (int e = 0; e < extra; e++) b[sz + e] = 0;
    write_file(path, b, (size_t)((long)sz + extra));
    free(b);
}

static void check_stl(const lg_dataset *d, int n, int size) {
    CHECK(d->n == n && d->c == 3 && d->h == size && d->w == size, "stl shape %lld,%d,%d,%d",
          (long long)d->n, d->c, d->h, d->w);
    if (d->n != n || d->h != size) return;
    int f = 96 / size;
    double worst = 0;
    for (int i = 0; i < n; i++)
        for (int c = 0; c < 3; c++)
            for (int y = 0; y < size; y++)
                for (int x = 0; x < size; x++) {
                    double sum = 0;
                    for (int dy = 0; dy < f; dy++)
                        for (int dx = 0; dx < f; dx++) sum += stl_pix(i, c, y * f + dy, x * f + dx);
                    double want = sum / (f * f) / 127.5 - 1.0;
                    double got = d->x[(((size_t)i * 3 + c) * size + y) * size + x];
                    if (fabs(got - want) > worst) worst = fabs(got - want);
                }
    CHECK(worst < 1e-6, "STL-10 at %d: worst error %g", size, worst);
}

static void test_stl10(void) {
    lg_dataset d;
    mkdir_t("stl");
    make_stl(tpath("stl/train_X.bin"), 2, 0);
    const unsigned char y2[2] = {1, 10};
    write_file(tpath("stl/train_y.bin"), y2, 2);
    for (int si = 0; si < 3; si++) {
        int size = (int[]){96, 48, 32}[si];
        CHECK_OK(lg_data_load_stl10_dir(&d, tpath("stl"), LG_SPLIT_TRAIN, size));
        check_stl(&d, 2, size);
        CHECK(d.y && d.y[0] == 0 && d.y[1] == 9 && d.num_classes == 10, "labels 1..10 -> 0..9");
        lg_data_free(&d);
    }
    /* transposition: pixel (c=0, y=0, x=1) comes from byte 96, not byte 1 */
    CHECK_OK(lg_data_load_stl10(&d, tpath("stl/train_X.bin"), NULL, 0));
    CHECK(d.x[1] == unit(stl_pix(0, 0, 0, 1)) && d.x[96] == unit(stl_pix(0, 0, 1, 0)), "column-major transpose");
    CHECK(d.y == NULL, "no labels");
    lg_data_free(&d);

    make_stl(tpath("stl/unlabeled_X.bin"), 3, 0);
    CHECK_OK(lg_data_load_stl10_dir(&d, tpath("stl"), LG_SPLIT_UNLABELED, 32));
    check_stl(&d, 3, 32);
    CHECK(d.y == NULL && d.num_classes == 0, "unlabeled has no labels");
    lg_data_free(&d);
    CHECK_ERR(lg_data_load_stl10_dir(&d, tpath("stl"), LG_SPLIT_TEST, 32), LG_ERR_NOT_FOUND, "test_X.bin");

    make_stl(tpath("stl_partial_X.bin"), 2, -100);
    CHECK_ERR(lg_data_load_stl10(&d, tpath("stl_partial_X.bin"), NULL, 96), LG_ERR_FORMAT, "stl_partial_X.bin");
    write_file(tpath("stl_empty_X.bin"), "", 0);
    CHECK_ERR(lg_data_load_stl10(&d, tpath("stl_empty_X.bin"), NULL, 96), LG_ERR_FORMAT, "stl_empty_X.bin");
    const unsigned char y0[2] = {0, 3}, y11[2] = {3, 11}, y3[3] = {1, 2, 3};
    write_file(tpath("y0.bin"), y0, 2);
    write_file(tpath("y11.bin"), y11, 2);
    write_file(tpath("y3.bin"), y3, 3);
    CHECK_ERR(lg_data_load_stl10(&d, tpath("stl/train_X.bin"), tpath("y0.bin"), 96), LG_ERR_FORMAT, "y0.bin");
    CHECK_ERR(lg_data_load_stl10(&d, tpath("stl/train_X.bin"), tpath("y11.bin"), 96), LG_ERR_FORMAT, "y11.bin");
    CHECK(strstr(lg_error_msg(), "out of range") != NULL, "%s", lg_error_msg());
    CHECK_ERR(lg_data_load_stl10(&d, tpath("stl/train_X.bin"), tpath("y3.bin"), 96), LG_ERR_FORMAT, "y3.bin");
    CHECK_ERR(lg_data_load_stl10(&d, tpath("stl/train_X.bin"), NULL, 64), LG_ERR_INVALID_ARG, "train_X.bin");

    lg_data_spec sp = {.format = "stl10", .path = tpath("stl/train_X.bin"), .size = 48};
    CHECK_OK(lg_data_load(&d, &sp));
    CHECK(d.n == 2 && d.h == 48 && d.y && d.y[1] == 9, "dispatch stl10 file finds train_y.bin");
    lg_data_free(&d);
}

/* ---- PNG folder --------------------------------------------------------------- */

#define PW 4
#define PH 3

/* "True" 16-bit-scale RGB of pixel (y, x) for image kind k, as 8-bit values. */
static unsigned pv(int k, int ch, int y, int x) {
    unsigned v = (unsigned)(k * 31 + ch * 70 + y * 40 + x * 19) % 256;
    if (y == 0 && x == 0) v = 0;
    if (y == PH - 1 && x == PW - 1) v = 255;
    return v;
}

typedef struct png_fix {
    int color_type, depth, interlace;
    int w, h;
    unsigned char rows[PH * 2][PW * 8 * 2]; /* raw PNG rows (big enough) */
    png_color pal[16];
    int npal;
    unsigned char trns[16];
    int ntrns;
} png_fix;

static void write_png(const char *path, const png_fix *f) {
    FILE *fp = fopen(path, "wb");
    png_structp png = png_create_write_struct(PNG_LIBPNG_VER_STRING, NULL, NULL, NULL);
    png_infop info = png_create_info_struct(png);
    if (!fp || !png || !info || setjmp(png_jmpbuf(png))) {
        fprintf(stderr, "writing %s failed\n", path);
        abort();
    }
    png_init_io(png, fp);
    png_set_IHDR(png, info, (png_uint_32)f->w, (png_uint_32)f->h, f->depth, f->color_type,
                 f->interlace ? PNG_INTERLACE_ADAM7 : PNG_INTERLACE_NONE, PNG_COMPRESSION_TYPE_DEFAULT,
                 PNG_FILTER_TYPE_DEFAULT);
    if (f->npal) png_set_PLTE(png, info, f->pal, f->npal);
    if (f->ntrns) png_set_tRNS(png, info, f->trns, f->ntrns, NULL);
    png_write_info(png, info);
    png_bytep rows[PH * 2];
    for (int y = 0; y < f->h; y++) rows[y] = (png_bytep)f->rows[y];
    png_write_image(png, rows);
    png_write_end(png, NULL);
    png_destroy_write_struct(&png, &info);
    fclose(fp);
}

/* Builds image kind k as the given PNG type; exp gets the expected RGB
 * floats (3, PH, PW) (gray images have R = G = B). */
static void build_png(png_fix *f, int k, int color_type, int depth, int interlace, float *exp) {
    memset(f, 0, sizeof *f);
    f->color_type = color_type;
    f->depth = depth;
    f->interlace = interlace;
    f->w = PW;
    f->h = PH;
    int gray = !(color_type & PNG_COLOR_MASK_COLOR);
    int alpha = (color_type & PNG_COLOR_MASK_ALPHA) != 0;
    for (int y = 0; y < PH; y++)
        for (int x = 0; x < PW; x++) {
            unsigned r = pv(k, 0, y, x), g = pv(k, 1, y, x), b = pv(k, 2, y, x);
            if (gray) g = b = r;
            unsigned rgb[3] = {r, g, b};
            unsigned char *row = f->rows[y];
            if (color_type == PNG_COLOR_TYPE_PALETTE) {
                int idx = (y * PW + x) % 3; /* 3 palette colors */
                for (int c = 0; c < 3; c++) rgb[c] = pv(k, c, 0, idx + 1);
                f->pal[idx] = (png_color){(png_byte)rgb[0], (png_byte)rgb[1], (png_byte)rgb[2]};
                f->npal = 3;
                /* 4-bit: two indices per byte, high nibble first */
                row[x / 2] |= (unsigned char)(idx << (x % 2 ? 0 : 4));
            } else if (gray && depth == 1) {
                unsigned bit = (unsigned)((y + x) % 2);
                rgb[0] = rgb[1] = rgb[2] = bit ? 255 : 0;
                row[x / 8] |= (unsigned char)(bit << (7 - x % 8));
            } else {
                int nch = (gray ? 1 : 3) + alpha;
                for (int c = 0; c < nch; c++) {
                    unsigned v8 = c < (gray ? 1 : 3) ? rgb[c] : 128 + (unsigned)x; /* alpha: arbitrary */
                    if (depth == 16) {
                        unsigned v16 = v8 * 257; /* full range: 0 -> 0, 255 -> 65535 */
                        row[2 * (x * nch + c)] = (unsigned char)(v16 >> 8);
                        row[2 * (x * nch + c) + 1] = (unsigned char)v16;
                    } else {
                        row[x * nch + c] = (unsigned char)v8;
                    }
                }
            }
            for (int c = 0; c < 3; c++) exp[(c * PH + y) * PW + x] = unit(rgb[c]);
        }
}

static void test_png(void) {
    lg_dataset d;
    mkdir_t("png");
    struct { const char *name; int ct, depth, il; } kinds[] = {
        {"a_gray8.png", PNG_COLOR_TYPE_GRAY, 8, 0},
        {"b_rgb8.png", PNG_COLOR_TYPE_RGB, 8, 0},
        {"c_rgba8.PNG", PNG_COLOR_TYPE_RGB_ALPHA, 8, 0},
        {"d_graya8.png", PNG_COLOR_TYPE_GRAY_ALPHA, 8, 0},
        {"e_rgb16.png", PNG_COLOR_TYPE_RGB, 16, 0},
        {"f_gray16.png", PNG_COLOR_TYPE_GRAY, 16, 0},
        {"g_pal4.png", PNG_COLOR_TYPE_PALETTE, 4, 0},
        {"h_gray1.png", PNG_COLOR_TYPE_GRAY, 1, 0},
        {"i_rgb8_adam7.png", PNG_COLOR_TYPE_RGB, 8, 1},
        {"j_pal4_trns.png", PNG_COLOR_TYPE_PALETTE, 4, 0},
    };
    enum { NK = sizeof kinds / sizeof kinds[0] };
    static float exp[NK][3 * PH * PW];
    static png_fix f;
    /* written in reverse order: the loader must sort by name */
    for (int k = NK - 1; k >= 0; k--) {
        build_png(&f, k, kinds[k].ct, kinds[k].depth, kinds[k].il, exp[k]);
        if (k == NK - 1) { /* palette with transparency: alpha must be ignored */
            f.ntrns = 2;
            f.trns[0] = 0;
            f.trns[1] = 77;
        }
        char p[128];
        snprintf(p, sizeof p, "png/%s", kinds[k].name);
        write_png(tpath(p), &f);
    }
    write_file(tpath("png/readme.txt"), "not an image", 12);
    write_file(tpath("png/.hidden.png"), "junk", 4);

    CHECK_OK(lg_data_load_png_dir(&d, tpath("png"), 3));
    CHECK(d.n == NK && d.c == 3 && d.h == PH && d.w == PW && d.y == NULL, "png dir shape %lld,%d,%d,%d",
          (long long)d.n, d.c, d.h, d.w);
    for (int k = 0; d.n == NK && k < NK; k++) {
        char what[64];
        snprintf(what, sizeof what, "png %s", kinds[k].name);
        lg_test_close(d.x + (size_t)k * 3 * PH * PW, exp[k], 3 * PH * PW, 1e-6, 0, what);
    }
    lg_data_free(&d);
    /* one channel: gray stays, RGB -> 0.299 R + 0.587 G + 0.114 B */
    CHECK_OK(lg_data_load_png_dir(&d, tpath("png"), 1));
    for (int k = 0; d.n == NK && k < NK; k++) {
        float want[PH * PW];
        for (int i = 0; i < PH * PW; i++) {
            double r = exp[k][i] + 1, g = exp[k][PH * PW + i] + 1, b = exp[k][2 * PH * PW + i] + 1;
            want[i] = (float)(0.299 * r + 0.587 * g + 0.114 * b - 1);
        }
        char what[64];
        snprintf(what, sizeof what, "png gray %s", kinds[k].name);
        lg_test_close(d.x + (size_t)k * PH * PW, want, PH * PW, 1e-5, 0, what);
    }
    lg_data_free(&d);
    CHECK_ERR(lg_data_load_png_dir(&d, tpath("png"), 2), LG_ERR_INVALID_ARG, "channels");

    /* --- failures, each in its own folder --- */
    size_t n;
    unsigned char *good = read_all(tpath("png/b_rgb8.png"), &n);
    mkdir_t("png_empty");
    CHECK_ERR(lg_data_load_png_dir(&d, tpath("png_empty"), 3), LG_ERR_NOT_FOUND, "png_empty");
    CHECK_ERR(lg_data_load_png_dir(&d, tpath("png_missing"), 3), LG_ERR_NOT_FOUND, "png_missing");

    mkdir_t("png_text");
    write_file(tpath("png_text/a.png"), good, n);
    write_file(tpath("png_text/b_fake.png"), "hello, I am text\n", 17);
    CHECK_ERR(lg_data_load_png_dir(&d, tpath("png_text"), 3), LG_ERR_FORMAT, "b_fake.png");
    CHECK(d.x == NULL && d.n == 0, "cleared on error");

    mkdir_t("png_size");
    write_file(tpath("png_size/a.png"), good, n);
    build_png(&f, 0, PNG_COLOR_TYPE_RGB, 8, 0, exp[0]);
    f.w = PW - 1; /* 3x3 */
    write_png(tpath("png_size/b_odd.png"), &f);
    CHECK_ERR(lg_data_load_png_dir(&d, tpath("png_size"), 3), LG_ERR_FORMAT, "b_odd.png");
    CHECK(strstr(lg_error_msg(), "same size") != NULL, "%s", lg_error_msg());

    mkdir_t("png_trunc");
    write_file(tpath("png_trunc/a.png"), good, n);
    write_file(tpath("png_trunc/b_cut.png"), good, n - 20); /* cuts IDAT / IEND */
    CHECK_ERR(lg_data_load_png_dir(&d, tpath("png_trunc"), 3), LG_ERR_FORMAT, "b_cut.png");
    CHECK(strstr(lg_error_msg(), "truncated") != NULL, "%s", lg_error_msg());

    mkdir_t("png_crc");
    write_file(tpath("png_crc/a.png"), good, n);
    {
        unsigned char *c = malloc(n);
        memcpy(c, good, n);
        size_t at = 0, len = 0; /* offset of IDAT's type field, data length */
        for (size_t i = 12; i + 8 < n && !at; i++)
            if (!memcmp(c + i, "IDAT", 4))
                at = i, len = (size_t)c[i - 4] << 24 | (size_t)c[i - 3] << 16 | (size_t)c[i - 2] << 8 | c[i - 1];
        CHECK(at && at + 8 + len <= n, "fixture has an IDAT chunk");
        c[at + 4 + len] ^= 0xFF; /* the chunk's CRC: libpng must refuse a critical chunk */
        write_file(tpath("png_crc/b_crc.png"), c, n);
        CHECK_ERR(lg_data_load_png_dir(&d, tpath("png_crc"), 3), LG_ERR_FORMAT, "b_crc.png");
        CHECK(strstr(lg_error_msg(), "CRC") != NULL, "%s", lg_error_msg());
        remove(tpath("png_crc/b_crc.png"));
        memcpy(c, good, n);
        c[at + 4 + len / 2] ^= 0xFF; /* the compressed data */
        write_file(tpath("png_crc/c_data.png"), c, n);
        CHECK_ERR(lg_data_load_png_dir(&d, tpath("png_crc"), 3), LG_ERR_FORMAT, "c_data.png");
        free(c);
    }

    mkdir_t("png_first");
    write_file(tpath("png_first/a_hdr.png"), good, 12); /* signature + part of IHDR */
    write_file(tpath("png_first/b.png"), good, n);
    CHECK_ERR(lg_data_load_png_dir(&d, tpath("png_first"), 3), LG_ERR_FORMAT, "a_hdr.png");
    free(good);

    /* wider than the shared reader's limit of 16384 per side */
    mkdir_t("png_wide");
    {
        static uint8_t row[16385]; /* (1, W, 1) */
        CHECK_OK(lg_image_write_png(tpath("png_wide/a.png"), row, 1, 16385, 1));
        CHECK_ERR(lg_data_load_png_dir(&d, tpath("png_wide"), 3), LG_ERR_FORMAT, "a.png");
        CHECK(strstr(lg_error_msg(), "too large") != NULL, "%s", lg_error_msg());
    }

    /* 16-bit precision and byte order: samples whose two bytes differ */
    mkdir_t("png_16");
    {
        float want16[PH * PW]; /* (H, W) */
        memset(&f, 0, sizeof f);
        f.color_type = PNG_COLOR_TYPE_GRAY, f.depth = 16, f.w = PW, f.h = PH;
        for (int y = 0; y < PH; y++)
            for (int x = 0; x < PW; x++) {
                unsigned v = (unsigned)(y * PW + x) * 5003 + 1;
                f.rows[y][2 * x] = (unsigned char)(v >> 8), f.rows[y][2 * x + 1] = (unsigned char)v;
                want16[y * PW + x] = (float)v / 32767.5f - 1.0f;
            }
        write_png(tpath("png_16/a.png"), &f);
        CHECK_OK(lg_data_load_png_dir(&d, tpath("png_16"), 1));
        if (d.n == 1 && d.c == 1 && d.h == PH && d.w == PW) lg_test_close(d.x, want16, PH * PW, 1e-6, 0, "png 16-bit");
        else CHECK(0, "16-bit png dir shape %lld,%d,%d,%d", (long long)d.n, d.c, d.h, d.w);
        lg_data_free(&d);
    }

    lg_data_spec sp = {.format = "png", .path = tpath("png"), .channels = 3};
    CHECK_OK(lg_data_load(&d, &sp));
    CHECK(d.n == NK, "dispatch png");
    lg_data_free(&d);
}

/* ---- layouts and settings the loaders cannot honour ------------------------- */

/* A 4x4 RGB PNG whose pixels are all v. */
static void write_flat_png(const char *path, int side, unsigned v) {
    uint8_t pix[8 * 8 * 3]; /* (side, side, 3), side <= 8 */
    memset(pix, (int)v, sizeof pix);
    if (lg_image_write_png(path, pix, side, side, 3) != LG_OK) {
        fprintf(stderr, "writing %s failed: %s\n", path, lg_error_msg());
        abort();
    }
}

static void test_png_layouts(void) {
    lg_dataset d;
    /* torchvision's ImageFolder: classes = sorted subfolders, samples class
     * by class, names sorted. Expected order and labels as printed by
     * torchvision.datasets.ImageFolder on this layout:
     * Alpha/a.PNG 0, Alpha/x10.png 0, Alpha/x2.png 0, b_mid/... 1, zeta/... 2 */
    const char *cls[3] = {"zeta", "Alpha", "b_mid"}; /* created unsorted */
    const char *files[3] = {"x2.png", "x10.png", "a.PNG"};
    const int cls_rank[3] = {2, 0, 1}, file_rank[3] = {2, 1, 0};
    mkdir_t("pngcls");
    for (int k = 0; k < 3; k++) {
        char p[128];
        snprintf(p, sizeof p, "pngcls/%s", cls[k]);
        mkdir_t(p);
        for (int i = 0; i < 3; i++) {
            snprintf(p, sizeof p, "pngcls/%s/%s", cls[k], files[i]);
            write_flat_png(tpath(p), 4, (unsigned)(cls_rank[k] * 3 + file_rank[i]) * 20); /* value = position */
        }
    }
    mkdir_t("pngcls/zeta/deeper"); /* one level only: not read */
    write_flat_png(tpath("pngcls/zeta/deeper/q.png"), 4, 250);
    mkdir_t("pngcls/.hidden"); /* skipped, like dot files */
    write_file(tpath("pngcls/readme.txt"), "x", 1);
    CHECK_OK(lg_data_load_png_dir(&d, tpath("pngcls"), 1));
    CHECK(d.n == 9 && d.c == 1 && d.h == 4 && d.w == 4 && d.y && d.num_classes == 3,
          "class folders: n %lld, y %p, %d classes", (long long)d.n, (void *)d.y, d.num_classes);
    for (int i = 0; d.n == 9 && d.y && i < 9; i++) {
        CHECK(d.y[i] == i / 3, "sample %d label %d, want %d", i, d.y[i], i / 3);
        CHECK(fabsf(d.x[i * 16] - unit((unsigned)i * 20)) < 1e-5f && /* gray: luma of R = G = B */
                  fabsf(d.x[i * 16 + 15] - unit((unsigned)i * 20)) < 1e-5f,
              "sample %d is not the %d-th file in ImageFolder order (%g)", i, i, d.x[i * 16]);
    }
    lg_data_free(&d);
    /* a class folder without images is an error (as torchvision's) */
    mkdir_t("pngcls/empty_class");
    CHECK_ERR(lg_data_load_png_dir(&d, tpath("pngcls"), 3), LG_ERR_NOT_FOUND, "empty_class");
    CHECK(strstr(lg_error_msg(), "class") != NULL, "%s", lg_error_msg());
    /* images at the top level win: subfolders are not read then */
    write_flat_png(tpath("pngcls/top.png"), 4, 7);
    CHECK_OK(lg_data_load_png_dir(&d, tpath("pngcls"), 3));
    CHECK(d.n == 1 && d.y == NULL, "top-level png: n %lld", (long long)d.n);
    lg_data_free(&d);
    /* subfolders without images anywhere: the message says how deep it reads */
    mkdir_t("pngnest");
    mkdir_t("pngnest/a");
    mkdir_t("pngnest/a/b");
    write_flat_png(tpath("pngnest/a/b/x.png"), 4, 7);
    CHECK_ERR(lg_data_load_png_dir(&d, tpath("pngnest"), 3), LG_ERR_NOT_FOUND, "no .png files");
    CHECK(strstr(lg_error_msg(), "subfolders") && strstr(lg_error_msg(), "one level"), "%s", lg_error_msg());

    /* a broken *.png link is an error, not a silently smaller data set */
    mkdir_t("pnglink");
    write_flat_png(tpath("pnglink/a.png"), 4, 7);
    CHECK(symlink(tpath("pnglink/gone.png"), tpath("pnglink/b.png")) == 0, "symlink");
    CHECK_ERR(lg_data_load_png_dir(&d, tpath("pnglink"), 3), LG_ERR_NOT_FOUND, "b.png");
    CHECK(strstr(lg_error_msg(), "broken symbolic link") != NULL, "%s", lg_error_msg());
    /* a working link is read */
    remove(tpath("pnglink/b.png"));
    CHECK(symlink(tpath("pnglink/a.png"), tpath("pnglink/b.png")) == 0, "symlink");
    CHECK_OK(lg_data_load_png_dir(&d, tpath("pnglink"), 3));
    CHECK(d.n == 2, "linked png read: n %lld", (long long)d.n);
    lg_data_free(&d);

    /* a file where the folder should be: bad input (exit 3), not an I/O failure */
    CHECK_ERR(lg_data_load_png_dir(&d, tpath("pnglink/a.png"), 3), LG_ERR_FORMAT, "not a directory");

    /* sizes: PNGs are not resized, cifar10 is 32x32 */
    lg_data_spec sp = {.format = "png", .path = tpath("pnglink"), .channels = 3, .size = 64};
    CHECK_ERR(lg_data_load(&d, &sp), LG_ERR_INVALID_ARG, "data.image_size");
    CHECK(strstr(lg_error_msg(), "4x4") != NULL, "%s", lg_error_msg());
    sp.size = 4;
    CHECK_OK(lg_data_load(&d, &sp));
    CHECK(d.n == 2 && d.h == 4, "png at its own size");
    lg_data_free(&d);
    const unsigned char labs[] = {1, 2};
    make_cifar(tpath("c2.bin"), 2, labs, 2, 0);
    lg_data_spec sc = {.format = "cifar10", .path = tpath("c2.bin"), .size = 64};
    CHECK_ERR(lg_data_load(&d, &sc), LG_ERR_INVALID_ARG, "data.image_size");
    sc.size = 32;
    CHECK_OK(lg_data_load(&d, &sc));
    CHECK(d.n == 2 && d.h == 32, "cifar10 at 32");
    lg_data_free(&d);
}

/* The hint of lg_data_load for a missing standard data set. */
static void test_missing_hints(void) {
    lg_dataset d;
    lg_data_spec sp = {.format = "cifar10", .split = LG_SPLIT_TRAIN};
    /* test split only, train asked: name data.split */
    mkdir_t("h_cifar");
    write_file(tpath("h_cifar/test_batch.bin"), "", 0); /* only its presence matters here */
    sp.path = tpath("h_cifar");
    CHECK_ERR(lg_data_load(&d, &sp), LG_ERR_NOT_FOUND, "data_batch_1.bin");
    CHECK(strstr(lg_error_msg(), "data.split: test") && strstr(lg_error_msg(), "--split test") &&
              !strstr(lg_error_msg(), "cifar-10-binary"),
          "%s", lg_error_msg());
    /* nothing there: where to get it */
    sp.path = tpath("h_nothing");
    CHECK_ERR(lg_data_load(&d, &sp), LG_ERR_NOT_FOUND, "h_nothing");
    CHECK(strstr(lg_error_msg(), "cifar-10-binary.tar.gz") && !strstr(lg_error_msg(), "data.split"), "%s",
          lg_error_msg());
    /* the Python version */
    mkdir_t("h_cifar_py");
    write_file(tpath("h_cifar_py/data_batch_1"), "", 0);
    sp.path = tpath("h_cifar_py");
    CHECK_ERR(lg_data_load(&d, &sp), LG_ERR_NOT_FOUND, "data_batch_1.bin");
    CHECK(strstr(lg_error_msg(), "Python") != NULL, "%s", lg_error_msg());
    /* the folder the archive was extracted into, not the data set's own:
     * name the subfolder to point at (CIFAR-10 and STL-10) */
    mkdir_t("h_parent");
    mkdir_t("h_parent/cifar-10-batches-bin");
    mkdir_t("h_parent/stl10_binary");
    sp.path = tpath("h_parent");
    CHECK_ERR(lg_data_load(&d, &sp), LG_ERR_NOT_FOUND, "data_batch_1.bin");
    CHECK(strstr(lg_error_msg(), "point data.path at") && strstr(lg_error_msg(), "h_parent/cifar-10-batches-bin") &&
              !strstr(lg_error_msg(), "Python"),
          "%s", lg_error_msg());
    lg_data_spec sl = {.format = "stl10", .split = LG_SPLIT_TRAIN, .path = tpath("h_parent")};
    CHECK_ERR(lg_data_load(&d, &sl), LG_ERR_NOT_FOUND, "train_X.bin");
    CHECK(strstr(lg_error_msg(), "point data.path at") && strstr(lg_error_msg(), "h_parent/stl10_binary"), "%s",
          lg_error_msg());
    sl.path = tpath("h_nothing");
    CHECK_ERR(lg_data_load(&d, &sl), LG_ERR_NOT_FOUND, "h_nothing");
    CHECK(strstr(lg_error_msg(), "stl10_binary.tar.gz"), "%s", lg_error_msg());
    /* not for errors a download would not fix: a bad label, a missing split kind */
    const unsigned char bad[] = {0, 10};
    make_cifar(tpath("h_label.bin"), 2, bad, 2, 0);
    sp.path = tpath("h_label.bin");
    CHECK_ERR(lg_data_load(&d, &sp), LG_ERR_FORMAT, "label 10");
    CHECK(!strstr(lg_error_msg(), "cifar-10-binary"), "hint on a label error: %s", lg_error_msg());
    sp.path = tpath("h_cifar");
    sp.split = LG_SPLIT_UNLABELED;
    CHECK_ERR(lg_data_load(&d, &sp), LG_ERR_INVALID_ARG, "only train and test");
    CHECK(!strstr(lg_error_msg(), "cifar-10-binary") && !strstr(lg_error_msg(), "data.split"),
          "hint on a split error: %s", lg_error_msg());

    /* STL-10: unlabeled only; test + unlabeled */
    mkdir_t("h_stl");
    make_stl(tpath("h_stl/unlabeled_X.bin"), 1, 0);
    lg_data_spec ss = {.format = "stl10", .path = tpath("h_stl"), .split = LG_SPLIT_TRAIN, .size = 32};
    CHECK_ERR(lg_data_load(&d, &ss), LG_ERR_NOT_FOUND, "train_X.bin");
    CHECK(strstr(lg_error_msg(), "data.split: unlabeled") != NULL, "%s", lg_error_msg());
    make_stl(tpath("h_stl/test_X.bin"), 1, 0);
    CHECK_ERR(lg_data_load(&d, &ss), LG_ERR_NOT_FOUND, "train_X.bin");
    CHECK(strstr(lg_error_msg(), "test and unlabeled splits") != NULL, "%s", lg_error_msg());
    ss.path = tpath("h_nothing");
    CHECK_ERR(lg_data_load(&d, &ss), LG_ERR_NOT_FOUND, "h_nothing");
    CHECK(strstr(lg_error_msg(), "stl10_binary") != NULL, "%s", lg_error_msg());

    /* MNIST layout: test only; nothing (the Fashion-MNIST hint, also for mnist and idx) */
    mkdir_t("h_idx");
    write_file(tpath("h_idx/t10k-images-idx3-ubyte.gz"), "", 0);
    const char *fmts[3] = {"mnist", "idx", "fashion-mnist"};
    for (int i = 0; i < 3; i++) {
        lg_data_spec sm = {.format = fmts[i], .path = tpath("h_idx"), .split = LG_SPLIT_TRAIN};
        CHECK_ERR(lg_data_load(&d, &sm), LG_ERR_NOT_FOUND, "train-images-idx3-ubyte");
        CHECK(strstr(lg_error_msg(), "data.split: test") != NULL, "%s: %s", fmts[i], lg_error_msg());
        sm.path = tpath("h_nothing");
        CHECK_ERR(lg_data_load(&d, &sm), LG_ERR_NOT_FOUND, "h_nothing");
        CHECK(strstr(lg_error_msg(), "/usr/share/datasets/fashion-mnist") != NULL, "%s: %s", fmts[i],
              lg_error_msg());
    }
}

/* ---- toys ------------------------------------------------------------------- */

static void check_toy(lg_toy_kind kind, int want_k, float want_std) {
    const float *ctr;
    float sd;
    int K = lg_data_toy_modes(kind, &ctr, &sd);
    CHECK(K == want_k && sd == want_std, "kind %d: %d modes, std %g", (int)kind, K, sd);
    if (K != want_k) return;
    /* distinct modes: no two centers closer than 1 */
    double dmin = 1e9;
    for (int a = 0; a < K; a++)
        for (int b = a + 1; b < K; b++)
            dmin = fmin(dmin, hypot(ctr[2 * a] - ctr[2 * b], ctr[2 * a + 1] - ctr[2 * b + 1]));
    CHECK(dmin > 1.0, "kind %d: modes %g apart", (int)kind, dmin);

    enum { N = 20000 };
    lg_dataset d, d2;
    CHECK_OK(lg_data_make_toy(&d, kind, N, 42));
    CHECK(d.n == N && d.c == 2 && d.h == 1 && d.w == 1 && d.num_classes == K && d.y, "toy shape");
    if (d.n != N) return;
    int count[25] = {0};
    double sum[25][2] = {{0}}, sq[25][2] = {{0}};
    int hq = 0, wrong_mode = 0;
    for (int i = 0; i < N; i++) {
        float px = d.x[2 * i], py = d.x[2 * i + 1];
        int best = 0;
        double bd = 1e30;
        for (int k = 0; k < K; k++) {
            double dd = hypot(px - ctr[2 * k], py - ctr[2 * k + 1]);
            if (dd < bd) bd = dd, best = k;
        }
        wrong_mode += best != d.y[i];
        hq += bd < 3 * sd;
        int k = d.y[i];
        count[k]++;
        double dx = px - ctr[2 * k], dy = py - ctr[2 * k + 1];
        sum[k][0] += dx, sum[k][1] += dy;
        sq[k][0] += dx * dx, sq[k][1] += dy * dy;
    }
    CHECK(wrong_mode == 0, "%d points nearest to another mode than their label", wrong_mode);
    /* P(r < 3 sigma) for a 2-D isotropic Gaussian = 1 - exp(-4.5) = 0.9889 */
    double fhq = (double)hq / N;
    CHECK(fhq > 0.984 && fhq < 0.994, "high-quality fraction %g, want ~0.989", fhq);
    double p = 1.0 / K, tol = 5 * sqrt(N * p * (1 - p));
    for (int k = 0; k < K; k++) {
        CHECK(fabs(count[k] - N * p) < tol, "mode %d has %d points, want %g +- %g", k, count[k], N * p, tol);
        for (int c = 0; c < 2 && count[k] > 1; c++) {
            double m = sum[k][c] / count[k], s = sqrt(sq[k][c] / count[k] - m * m);
            CHECK(fabs(m) < 5 * sd / sqrt(count[k]), "mode %d coord %d mean offset %g", k, c, m);
            CHECK(fabs(s / sd - 1) < 0.08, "mode %d coord %d std %g, want %g", k, c, s, sd);
        }
    }
    /* determinism */
    CHECK_OK(lg_data_make_toy(&d2, kind, N, 42));
    CHECK(!memcmp(d.x, d2.x, sizeof(float) * 2 * N) && !memcmp(d.y, d2.y, sizeof(int32_t) * N),
          "same seed, same points");
    lg_data_free(&d2);
    CHECK_OK(lg_data_make_toy(&d2, kind, N, 43));
    CHECK(memcmp(d.x, d2.x, sizeof(float) * 2 * N) != 0, "another seed, other points");
    lg_data_free(&d2);
    lg_data_free(&d);
}

static void test_toys(void) {
    check_toy(LG_TOY_RING8, 8, 0.02f);
    check_toy(LG_TOY_GRID25, 25, 0.05f);
    /* ring: radius 2, angles 2 pi k / 8 (8 distinct, not linspace's 7) */
    const float *c;
    lg_data_toy_modes(LG_TOY_RING8, &c, NULL);
    for (int k = 0; k < 8; k++) {
        double a = 2 * M_PI * k / 8;
        CHECK(fabs(c[2 * k] - 2 * cos(a)) < 1e-6 && fabs(c[2 * k + 1] - 2 * sin(a)) < 1e-6, "ring center %d", k);
    }
    lg_data_toy_modes(LG_TOY_GRID25, &c, NULL);
    for (int k = 0; k < 25; k++)
        CHECK(c[2 * k] == -4 + 2 * (k / 5) && c[2 * k + 1] == -4 + 2 * (k % 5), "grid center %d", k);
    CHECK(lg_data_toy_modes((lg_toy_kind)7, &c, NULL) == 0 && c == NULL, "unknown kind");
    lg_dataset d;
    CHECK_ERR(lg_data_make_toy(&d, LG_TOY_RING8, 0, 1), LG_ERR_INVALID_ARG, "n = 0");
    lg_data_spec sp = {.format = "grid25", .n = 100, .seed = 5};
    CHECK_OK(lg_data_load(&d, &sp));
    CHECK(d.n == 100 && d.num_classes == 25, "dispatch grid25");
    lg_data_free(&d);
    sp.format = "imagenet";
    CHECK_ERR(lg_data_load(&d, &sp), LG_ERR_INVALID_ARG, "imagenet");
}

/* ---- sampler ---------------------------------------------------------------- */

/* n samples of shape (1, 1, 2): x = (i, -i), y = i % 3 (or unlabeled). */
static void make_index_set(lg_dataset *d, int n, int labeled) {
    memset(d, 0, sizeof *d);
    d->n = n;
    d->c = 1;
    d->h = 1;
    d->w = 2;
    d->x = malloc(sizeof(float) * 2 * (size_t)n);
    for (int i = 0; i < n; i++) d->x[2 * i] = (float)i, d->x[2 * i + 1] = (float)-i;
    if (labeled) {
        d->y = malloc(sizeof(int32_t) * (size_t)n);
        for (int i = 0; i < n; i++) d->y[i] = i % 3;
        d->num_classes = 3;
    }
}

/* Draws nb batches of size b; writes the sample indices to idx (nb*b).
 * Returns the number of inconsistencies (x / label not matching an index). */
static int draw(lg_data_sampler *s, int nb, int b, int *idx) {
    float x[64 * 2];
    int32_t y[64];
    int bad = 0;
    for (int k = 0; k < nb; k++) {
        if (lg_data_next_batch(s, b, x, y) != LG_OK) return 1000;
        for (int j = 0; j < b; j++) {
            int i = (int)x[2 * j];
            bad += x[2 * j + 1] != -x[2 * j];
            bad += s->data->y ? y[j] != i % 3 : y[j] != -1;
            idx[k * b + j] = i;
        }
    }
    return bad;
}

static int is_perm(const int *a, int n) {
    int seen[64] = {0};
    for (int i = 0; i < n; i++) {
        if (a[i] < 0 || a[i] >= n || seen[a[i]]) return 0;
        seen[a[i]] = 1;
    }
    return 1;
}

static void test_sampler(void) {
    enum { N = 10 };
    lg_dataset d;
    make_index_set(&d, N, 1);
    lg_data_sampler a, b;
    int ia[400] = {0}, ib[400] = {0}; /* zeroed: draw() may stop early on an error */
    CHECK_OK(lg_data_sampler_init(&a, &d, 7));
    CHECK_OK(lg_data_sampler_init(&b, &d, 7));
    CHECK(draw(&a, 50, 4, ia) == 0, "batch contents match indices and labels");
    CHECK(draw(&b, 50, 4, ib) == 0, "batch contents");
    CHECK(!memcmp(ia, ib, sizeof(int) * 200), "same seed, same order");
    /* every epoch (aligned blocks of N draws) is a permutation; epochs differ */
    int perms = 1, differ = 0;
    for (int e = 0; e < 20; e++) {
        perms &= is_perm(ia + e * N, N);
        if (e) differ += memcmp(ia + e * N, ia + (e - 1) * N, sizeof(int) * N) != 0;
    }
    CHECK(perms, "each epoch is a permutation of 0..N-1");
    CHECK(differ >= 18, "epochs are reshuffled (%d of 19 differ from the previous)", differ);
    int64_t cur[LG_DATA_CURSOR_LEN];
    lg_data_sampler_get_cursor(&a, cur);
    CHECK(cur[0] == 7 && cur[1] == 20 && cur[2] == 0 && cur[3] == N, "cursor after 200 draws: %lld %lld %lld %lld",
          (long long)cur[0], (long long)cur[1], (long long)cur[2], (long long)cur[3]);
    lg_data_sampler_free(&b);
    CHECK_OK(lg_data_sampler_init(&b, &d, 8));
    CHECK(draw(&b, 5, 4, ib) == 0, "batch contents (seed 8)");
    CHECK(memcmp(ia, ib, sizeof(int) * 20) != 0, "another seed, another order");
    lg_data_sampler_free(&b);

    /* exact resume: save mid-epoch, continue, restore into a fresh sampler */
    lg_data_sampler_free(&a);
    CHECK_OK(lg_data_sampler_init(&a, &d, 0xFEEDFACECAFEBEEFULL)); /* top bit set: seed survives int64 */
    CHECK(draw(&a, 7, 3, ia) == 0, "batch contents"); /* 21 draws: epoch 2, position 1 */
    lg_data_sampler_get_cursor(&a, cur);
    CHECK(cur[1] == 2 && cur[2] == 1, "cursor epoch %lld pos %lld", (long long)cur[1], (long long)cur[2]);
    CHECK(draw(&a, 20, 7, ia) == 0, "batch contents after the save");
    CHECK_OK(lg_data_sampler_init(&b, &d, 1));
    CHECK(draw(&b, 3, 5, ib) == 0, "batch contents"); /* some unrelated state first */
    CHECK_OK(lg_data_sampler_set_cursor(&b, cur));
    CHECK(draw(&b, 20, 7, ib) == 0, "batch contents after the restore");
    CHECK(!memcmp(ia, ib, sizeof(int) * 140), "resumed sampler repeats the original exactly");
    /* bad cursors are rejected and leave the sampler unchanged */
    int64_t c2[LG_DATA_CURSOR_LEN];
    lg_data_sampler_get_cursor(&b, c2);
    int64_t bad1[LG_DATA_CURSOR_LEN] = {cur[0], cur[1], cur[2], N + 1};
    int64_t bad2[LG_DATA_CURSOR_LEN] = {cur[0], cur[1], N, N};
    int64_t bad3[LG_DATA_CURSOR_LEN] = {cur[0], -1, 0, N};
    CHECK_ERR(lg_data_sampler_set_cursor(&b, bad1), LG_ERR_INVALID_ARG, "11 samples");
    CHECK_ERR(lg_data_sampler_set_cursor(&b, bad2), LG_ERR_INVALID_ARG, "out of range");
    CHECK_ERR(lg_data_sampler_set_cursor(&b, bad3), LG_ERR_INVALID_ARG, "out of range");
    int64_t c3[LG_DATA_CURSOR_LEN];
    lg_data_sampler_get_cursor(&b, c3);
    CHECK(!memcmp(c2, c3, sizeof c2), "unchanged after a bad cursor");
    float one[2];
    CHECK_ERR(lg_data_next_batch(&b, 0, one, NULL), LG_ERR_INVALID_ARG, "batch size");
    lg_data_sampler_free(&b);

    /* batch larger than the dataset wraps through several epochs */
    CHECK_OK(lg_data_sampler_init(&b, &d, 3));
    CHECK(draw(&b, 3, 25, ib) == 0, "big batches");
    for (int e = 0; e < 7; e++) CHECK(is_perm(ib + e * N, N), "epoch %d within big batches", e);
    lg_data_sampler_free(&b);
    lg_data_sampler_free(&a);

    /* shuffles are uniform: position 0 of 4000 epochs of N = 4 */
    lg_dataset d4;
    make_index_set(&d4, 4, 1);
    CHECK_OK(lg_data_sampler_init(&a, &d4, 11));
    static int i4[16000];
    CHECK(draw(&a, 400, 40, i4) == 0, "batch contents (N = 4)");
    int first[4] = {0}, last[4] = {0};
    for (int e = 0; e < 4000; e++) first[i4[4 * e]]++, last[i4[4 * e + 3]]++;
    for (int k = 0; k < 4; k++)
        CHECK(abs(first[k] - 1000) < 5 * 27 && abs(last[k] - 1000) < 5 * 27, "value %d first %d last %d times", k,
              first[k], last[k]);
    lg_data_sampler_free(&a);
    lg_data_free(&d4);
    lg_data_free(&d);

    /* unlabeled: labels_out is -1 */
    make_index_set(&d, N, 0);
    CHECK_OK(lg_data_sampler_init(&a, &d, 1));
    CHECK(draw(&a, 3, 4, ia) == 0, "unlabeled batches");
    lg_data_sampler_free(&a);
    lg_data_free(&d);
    lg_dataset empty = {0};
    CHECK_ERR(lg_data_sampler_init(&a, &empty, 1), LG_ERR_INVALID_ARG, "empty");
}

/* ---- the example in data.h, verbatim ----------------------------------------- */

static lg_status header_example(const char *cifar_dir) {
    lg_dataset d;
    LG_TRY(lg_data_load_cifar10(&d, cifar_dir, LG_SPLIT_TEST));
    lg_data_sampler smp;
    lg_status s = lg_data_sampler_init(&smp, &d, 1234);
    float *xb = malloc(64 * lg_data_sample_size(&d) * sizeof(float)); // (64, C, H, W)
    int32_t yb[64];
    for (int step = 0; s == LG_OK && step < 3; step++) {
        s = lg_data_next_batch(&smp, 64, xb, yb);
        /* ... train on xb, yb ... */
    }
    free(xb);
    lg_data_sampler_free(&smp);
    lg_data_free(&d);
    return s;
}

static void test_header_example(void) {
    CHECK_OK(header_example(tpath("cifar")));
    CHECK_ERR(header_example(tpath("no_such_dir")), LG_ERR_NOT_FOUND, "no_such_dir");
}

int main(void) {
    const char *base = getenv("TMPDIR");
    snprintf(g_tmp, sizeof g_tmp, "%s/lg_test_data_XXXXXX", base && base[0] ? base : "/tmp");
    if (!mkdtemp(g_tmp)) {
        perror("mkdtemp");
        return 1;
    }
    LG_TEST_RUN(test_idx);
    LG_TEST_RUN(test_fashion_mnist_real);
    LG_TEST_RUN(test_cifar10);
    LG_TEST_RUN(test_stl10);
    LG_TEST_RUN(test_png);
    LG_TEST_RUN(test_png_layouts);
    LG_TEST_RUN(test_missing_hints);
    LG_TEST_RUN(test_toys);
    LG_TEST_RUN(test_sampler);
    LG_TEST_RUN(test_header_example);
    nftw(g_tmp, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
    return lg_test_summary("test_data");
}
