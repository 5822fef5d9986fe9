/* Tests of the Philox4x32-10 generator: published known answers,
 * determinism, the documented counter and fill layouts (what a GPU kernel
 * must reproduce), streams and splits, checkpoint save/restore (also
 * through a safetensors I64 tensor), and statistical moments within
 * 5-sigma bounds. */
#include "lg_test.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "lipgan/rng.h"
#include "lipgan/safetensors.h"

/* Random123 kat_vectors: counter[4] key[2] -> output[4]. */
static void test_known_answers(void) {
    static const struct {
        int rounds;
        uint32_t ctr[4], key[2], out[4];
    } kat[] = {
        {7, {0, 0, 0, 0}, {0, 0}, {0x5f6fb709, 0x0d893f64, 0x4f121f81, 0x4f730a48}},
        {7, {~0u, ~0u, ~0u, ~0u}, {~0u, ~0u}, {0x5207ddc2, 0x45165e59, 0x4d8ee751, 0x8c52f662}},
        {7, {0x243f6a88, 0x85a308d3, 0x13198a2e, 0x03707344}, {0xa4093822, 0x299f31d0},
         {0x4dfccaba, 0x190a87f0, 0xc47362ba, 0xb6b5242a}},
        {10, {0, 0, 0, 0}, {0, 0}, {0x6627e8d5, 0xe169c58d, 0xbc57ac4c, 0x9b00dbd8}},
        {10, {~0u, ~0u, ~0u, ~0u}, {~0u, ~0u}, {0x408f276d, 0x41c83b0e, 0xa20bc7c6, 0x6d5451fd}},
        {10, {0x243f6a88, 0x85a308d3, 0x13198a2e, 0x03707344}, {0xa4093822, 0x299f31d0},
         {0xd16cfe09, 0x94fdcceb, 0x5001e420, 0x24126ea1}},
    };
    for (size_t i = 0; i < sizeof kat / sizeof kat[0]; i++) {
        uint32_t out[4];
        lg_philox4x32(kat[i].ctr, kat[i].key, kat[i].rounds, out);
        CHECK(memcmp(out, kat[i].out, sizeof out) == 0, "KAT %zu (%d rounds): got %08x %08x %08x %08x", i,
              kat[i].rounds, out[0], out[1], out[2], out[3]);
    }
    /* the generator's first words are block 0 of (key = seed, stream in ctr[2..3]) */
    lg_rng r;
    lg_rng_init(&r, 0, 0);
    uint32_t w[4];
    for (int k = 0; k < 4; k++) w[k] = lg_rng_u32(&r);
    CHECK(w[0] == 0x6627e8d5 && w[1] == 0xe169c58d && w[2] == 0xbc57ac4c && w[3] == 0x9b00dbd8,
          "seed 0 stream 0 starts with the zero-counter KAT");
    uint64_t seed = 0x299f31d0a4093822ull, stream = 0x0370734413198a2eull;
    lg_rng_init(&r, seed, stream);
    uint32_t ctr[4] = {0, 0, 0x13198a2e, 0x03707344}, key[2] = {0xa4093822, 0x299f31d0}, ref[4];
    for (uint32_t b = 0; b < 3; b++) {
        ctr[0] = b;
        lg_philox4x32(ctr, key, 10, ref);
        for (int k = 0; k < 4; k++) {
            uint32_t x = lg_rng_u32(&r);
            CHECK(x == ref[k], "block %u word %d: %08x vs %08x", b, k, x, ref[k]);
        }
    }
}

/* The word -> uniform map covers [0, 1) exactly: 0 -> 0, max -> 1 - 2^-24. */
static void test_conversions(void) {
    CHECK(lg_rng_word_to_uniform(0) == 0.0f, "0 -> 0");
    CHECK(lg_rng_word_to_uniform(0xFFFFFFFFu) == 1.0f - 1.0f / 16777216.0f, "max -> 1 - 2^-24 (%.9g)",
          lg_rng_word_to_uniform(0xFFFFFFFFu));
    CHECK(lg_rng_word_to_uniform(0x80000000u) == 0.5f, "2^31 -> 0.5");
    CHECK(lg_rng_word_to_uniform(0x000000FFu) == 0.0f, "low 8 bits are dropped");
}

static void test_determinism(void) {
    lg_rng a, b, c, d;
    lg_rng_init(&a, 42, 1);
    lg_rng_init(&b, 42, 1);
    lg_rng_init(&c, 43, 1);
    lg_rng_init(&d, 42, 2);
    int same_ab = 1, same_ac = 0, same_ad = 0;
    for (int i = 0; i < 1000; i++) {
        uint32_t x = lg_rng_u32(&a), y = lg_rng_u32(&b), z = lg_rng_u32(&c), t = lg_rng_u32(&d);
        same_ab &= x == y;
        same_ac += x == z;
        same_ad += x == t;
    }
    CHECK(same_ab, "same seed and stream give the same words");
    CHECK(same_ac < 3 && same_ad < 3, "other seed/stream differ (%d, %d equal words)", same_ac, same_ad);

    /* fills are deterministic too, and uniform == word_to_uniform(u32) */
    float f1[37], f2[37];
    lg_rng_init(&a, 7, 0);
    lg_rng_init(&b, 7, 0);
    lg_rng_fill_normal(&a, f1, 37, 0.0f, 1.0f);
    lg_rng_fill_normal(&b, f2, 37, 0.0f, 1.0f);
    CHECK(memcmp(f1, f2, sizeof f1) == 0, "normal fills repeat");
    lg_rng_init(&a, 7, 0);
    lg_rng_init(&b, 7, 0);
    for (int i = 0; i < 9; i++) {
        float u = lg_rng_uniform(&a);
        CHECK(u == lg_rng_word_to_uniform(lg_rng_u32(&b)), "uniform %d", i);
    }
}

/* Fills follow the documented block layout, so a kernel given
 * lg_rng_reserve's counter reproduces them. */
static void test_fill_layout(void) {
    lg_rng r, g;
    lg_rng_init(&r, 99, LG_RNG_STREAM_NOISE);
    g = r;
    (void)lg_rng_u32(&r); /* a partly used block is dropped by the fill */
    float u[10];          /* (10) */
    lg_rng_fill_uniform(&r, u, 10, -2.0f, 2.0f);
    /* reference: blocks 1, 2, 3 (block 0 was the single draw) */
    uint32_t key[2], ctr[4];
    (void)lg_rng_u32(&g);
    lg_rng_reserve(&g, 3, key, ctr);
    CHECK(ctr[0] == 1 && ctr[1] == 0 && ctr[2] == LG_RNG_STREAM_NOISE && ctr[3] == 0, "reserve counter %u", ctr[0]);
    int bad = 0;
    for (int i = 0; i < 10; i++) {
        uint32_t c[4] = {ctr[0] + (uint32_t)(i / 4), ctr[1], ctr[2], ctr[3]}, w[4];
        lg_philox4x32(c, key, 10, w);
        float ref = -2.0f + 4.0f * lg_rng_word_to_uniform(w[i % 4]);
        bad += u[i] != ref;
    }
    CHECK(bad == 0, "%d uniform fill elements differ from the block layout", bad);
    /* after a fill of 10 (3 blocks) both continue at block 4 */
    CHECK(lg_rng_u32(&r) == lg_rng_u32(&g), "continuation after fill");

    /* normal fill: words (0,1) and (2,3) of each block through Box-Muller */
    lg_rng_init(&r, 5, 3);
    float z[6];
    lg_rng_fill_normal(&r, z, 6, 1.0f, 2.0f);
    bad = 0;
    uint32_t k5[2] = {5, 0};
    for (int b = 0; b < 2; b++) {
        uint32_t c[4] = {(uint32_t)b, 0, 3, 0}, w[4];
        lg_philox4x32(c, k5, 10, w);
        for (int p = 0; p < 2 && 4 * b + 2 * p < 6; p++) {
            double u1 = ((double)w[2 * p] + 1.0) / 4294967296.0, u2 = (double)w[2 * p + 1] / 4294967296.0;
            double rad = sqrt(-2.0 * log(u1));
            float n0 = 1.0f + 2.0f * (float)(rad * cos(6.283185307179586 * u2));
            float n1 = 1.0f + 2.0f * (float)(rad * sin(6.283185307179586 * u2));
            bad += fabsf(z[4 * b + 2 * p] - n0) > 1e-6f;
            bad += fabsf(z[4 * b + 2 * p + 1] - n1) > 1e-6f;
        }
    }
    CHECK(bad == 0, "%d normal fill elements differ from Box-Muller on the block layout", bad);
    /* the 64-bit block index carries into ctr[1] */
    lg_rng_init(&r, 1, 0);
    r.ctr[0] = 0xffffffffu;
    lg_rng_reserve(&r, 2, key, ctr);
    CHECK(r.ctr[0] == 1 && r.ctr[1] == 1, "carry: ctr %u %u", r.ctr[0], r.ctr[1]);
}

static void test_streams_and_split(void) {
    lg_rng p, c1, c2, c1b, q;
    lg_rng_init(&p, 2024, LG_RNG_STREAM_DATA);
    lg_rng_split(&p, 1, &c1);
    lg_rng_split(&p, 2, &c2);
    for (int i = 0; i < 13; i++) (void)lg_rng_u32(&p);
    lg_rng_split(&p, 1, &c1b); /* independent of how far the parent went */
    CHECK(memcmp(&c1, &c1b, sizeof c1) == 0, "split depends only on seed, stream and id");
    lg_rng_init(&q, 2024, LG_RNG_STREAM_DATA);
    int eq12 = 0, eq1p = 0;
    for (int i = 0; i < 1000; i++) {
        uint32_t a = lg_rng_u32(&c1), b = lg_rng_u32(&c2), c = lg_rng_u32(&q);
        eq12 += a == b;
        eq1p += a == c;
    }
    CHECK(eq12 < 3 && eq1p < 3, "children differ from each other and the parent (%d, %d)", eq12, eq1p);
    /* streams are uncorrelated: |corr| below 5/sqrt(N) */
    const int n = 200000;
    lg_rng a, b;
    lg_rng_init(&a, 11, 0);
    lg_rng_init(&b, 11, 1);
    double sab = 0, sa = 0, sb = 0, saa = 0, sbb = 0;
    for (int i = 0; i < n; i++) {
        double x = lg_rng_uniform(&a), y = lg_rng_uniform(&b);
        sab += x * y;
        sa += x;
        sb += y;
        saa += x * x;
        sbb += y * y;
    }
    double cov = sab / n - (sa / n) * (sb / n);
    double corr = cov / sqrt((saa / n - (sa / n) * (sa / n)) * (sbb / n - (sb / n) * (sb / n)));
    CHECK(fabs(corr) < 5.0 / sqrt(n), "stream correlation %g", corr);
}

static void draw_mix(lg_rng *r) {
    float tmp[7];
    (void)lg_rng_u32(r);
    (void)lg_rng_normal(r);
    lg_rng_fill_uniform(r, tmp, 7, 0, 1);
    (void)lg_rng_below(r, 10);
}

static int same_continuation(lg_rng *a, lg_rng *b) {
    int ok = 1;
    for (int i = 0; i < 50; i++) {
        ok &= lg_rng_u32(a) == lg_rng_u32(b);
        ok &= lg_rng_normal(a) == lg_rng_normal(b);
        float fa[5], fb[5];
        lg_rng_fill_normal(a, fa, 5, 0, 1);
        lg_rng_fill_normal(b, fb, 5, 0, 1);
        ok &= memcmp(fa, fb, sizeof fa) == 0;
    }
    return ok;
}

static void test_state_save_restore(void) {
    /* at every buffer position 0..4 */
    for (int extra = 0; extra < 5; extra++) {
        lg_rng r, s;
        lg_rng_init(&r, 0xDEADBEEFCAFEull, 77);
        draw_mix(&r);
        for (int i = 0; i < extra; i++) (void)lg_rng_u32(&r);
        int64_t st[LG_RNG_STATE_WORDS];
        lg_rng_state_save(&r, st);
        for (int i = 0; i < LG_RNG_STATE_WORDS; i++)
            CHECK(st[i] >= 0 && st[i] <= (int64_t)UINT32_MAX, "state word %d = %lld", i, (long long)st[i]);
        lg_rng_init(&s, 1, 1);
        CHECK_OK(lg_rng_state_load(&s, st));
        CHECK(same_continuation(&r, &s), "restored generator continues identically (pos after %d extra)", extra);
    }
    /* a fresh generator (nothing buffered at block 0) */
    lg_rng r, s;
    lg_rng_init(&r, 5, 5);
    int64_t st[LG_RNG_STATE_WORDS];
    lg_rng_state_save(&r, st);
    CHECK_OK(lg_rng_state_load(&s, st));
    CHECK(same_continuation(&r, &s), "fresh state restores");

    /* through a checkpoint file: an I64 tensor of shape (8) */
    lg_rng_init(&r, 31337, LG_RNG_STREAM_GP);
    draw_mix(&r);
    (void)lg_rng_u32(&r);
    lg_rng_state_save(&r, st);
    char path[64];
    snprintf(path, sizeof path, "/tmp/lg_rng_test_%ld.safetensors", (long)getpid());
    lg_st_writer *w;
    CHECK_OK(lg_st_writer_create(&w));
    CHECK_OK(lg_st_writer_add_i64(w, "rng.gp", 1, (int64_t[]){LG_RNG_STATE_WORDS}, st));
    CHECK_OK(lg_st_writer_write(w, path, 1));
    lg_st_writer_free(w);
    lg_st_file *f = NULL;
    int64_t back[LG_RNG_STATE_WORDS] = {0};
    CHECK_OK(lg_st_open(&f, path));
    if (f) CHECK_OK(lg_st_get_i64(f, "rng.gp", 1, (int64_t[]){LG_RNG_STATE_WORDS}, back));
    lg_st_close(f);
    unlink(path);
    CHECK_OK(lg_rng_state_load(&s, back));
    CHECK(same_continuation(&r, &s), "state restored from a safetensors file continues identically");

    /* corrupt states are refused */
    int64_t bad[LG_RNG_STATE_WORDS];
    memcpy(bad, st, sizeof bad);
    bad[0] = 0;
    CHECK_STATUS(lg_rng_state_load(&s, bad), LG_ERR_FORMAT);
    memcpy(bad, st, sizeof bad);
    bad[3] = (int64_t)1 << 32;
    CHECK_STATUS(lg_rng_state_load(&s, bad), LG_ERR_FORMAT);
    memcpy(bad, st, sizeof bad);
    bad[5] = -1;
    CHECK_STATUS(lg_rng_state_load(&s, bad), LG_ERR_FORMAT);
    memcpy(bad, st, sizeof bad);
    bad[7] = 5;
    CHECK_STATUS(lg_rng_state_load(&s, bad), LG_ERR_FORMAT);
    memcpy(bad, st, sizeof bad);
    bad[3] = bad[4] = 0;
    bad[7] = 2; /* words buffered before any block was drawn */
    CHECK_STATUS(lg_rng_state_load(&s, bad), LG_ERR_FORMAT);
    CHECK(strstr(lg_error_msg(), "random generator state") != NULL, "message: %s", lg_error_msg());
}

/* Moments within 5 standard errors (fixed seed: deterministic, but the
 * bounds hold for any seed with overwhelming probability). */
static void test_statistics(void) {
    const size_t n = 1000000;
    float *x = malloc(n * sizeof *x); /* (n) */
    lg_rng r;
    lg_rng_init(&r, 12345, 0);

    lg_rng_fill_uniform(&r, x, n, 0.0f, 1.0f);
    double s = 0, s2 = 0, mn = 1, mx = 0;
    long hist[100] = {0};
    for (size_t i = 0; i < n; i++) {
        s += x[i];
        s2 += (double)x[i] * x[i];
        mn = fmin(mn, x[i]);
        mx = fmax(mx, x[i]);
        hist[(int)(x[i] * 100)]++;
    }
    double mean = s / n, var = s2 / n - mean * mean;
    CHECK(mn >= 0.0 && mx < 1.0, "uniform range [%g, %g]", mn, mx);
    CHECK(fabs(mean - 0.5) < 5 * sqrt(1.0 / 12 / n), "uniform mean %g", mean);
    /* var of (u - 1/2)^2 is 1/180 */
    CHECK(fabs(var - 1.0 / 12) < 5 * sqrt(1.0 / 180 / n), "uniform variance %g", var);
    double chi2 = 0, e = n / 100.0;
    for (int i = 0; i < 100; i++) chi2 += (hist[i] - e) * (hist[i] - e) / e;
    CHECK(chi2 < 99 + 5 * sqrt(2 * 99.0), "uniform histogram chi^2 %g (99 dof)", chi2);

    /* single draws too (they use the same words, in another order) */
    s = 0;
    for (size_t i = 0; i < 100000; i++) s += lg_rng_uniform(&r);
    CHECK(fabs(s / 100000 - 0.5) < 5 * sqrt(1.0 / 12 / 100000), "single-draw uniform mean %g", s / 100000);

    lg_rng_fill_normal(&r, x, n, 0.0f, 1.0f);
    double s3 = 0, s4 = 0;
    long within1 = 0;
    s = s2 = 0;
    int finite = 1;
    for (size_t i = 0; i < n; i++) {
        double v = x[i];
        finite &= isfinite(x[i]) && fabs(v) < 6.7;
        s += v;
        s2 += v * v;
        s3 += v * v * v;
        s4 += v * v * v * v;
        within1 += fabs(v) < 1.0;
    }
    mean = s / n;
    var = s2 / n - mean * mean;
    CHECK(finite, "normals finite and below 6.66 in magnitude");
    CHECK(fabs(mean) < 5 / sqrt((double)n), "normal mean %g", mean);
    CHECK(fabs(var - 1) < 5 * sqrt(2.0 / n), "normal variance %g", var);
    CHECK(fabs(s3 / n) < 5 * sqrt(15.0 / n), "normal third moment %g", s3 / n);
    CHECK(fabs(s4 / n - 3) < 5 * sqrt(96.0 / n), "normal fourth moment %g", s4 / n);
    double p1 = 0.682689492137;
    CHECK(fabs((double)within1 / n - p1) < 5 * sqrt(p1 * (1 - p1) / n), "P(|z|<1) = %g", (double)within1 / n);

    /* mean/std parameters */
    lg_rng_fill_normal(&r, x, 100000, 3.0f, 0.5f);
    s = s2 = 0;
    for (size_t i = 0; i < 100000; i++) {
        s += x[i];
        s2 += (double)x[i] * x[i];
    }
    mean = s / 1e5;
    var = s2 / 1e5 - mean * mean;
    CHECK(fabs(mean - 3) < 5 * 0.5 / sqrt(1e5) && fabs(var - 0.25) < 5 * 0.25 * sqrt(2 / 1e5),
          "N(3, 0.5^2): mean %g var %g", mean, var);
    s = 0;
    for (size_t i = 0; i < 100000; i++) s += lg_rng_normal(&r);
    CHECK(fabs(s / 1e5) < 5 / sqrt(1e5), "single-draw normal mean %g", s / 1e5);
    free(x);
}

static void test_integers(void) {
    lg_rng r;
    lg_rng_init(&r, 3, 0);
    long cnt[6] = {0};
    const int n = 60000;
    int in_range = 1;
    for (int i = 0; i < n; i++) {
        uint64_t v = lg_rng_below(&r, 6);
        in_range &= v < 6;
        if (v < 6) cnt[v]++;
    }
    CHECK(in_range, "below(6) in range");
    double chi2 = 0;
    for (int i = 0; i < 6; i++) chi2 += (cnt[i] - n / 6.0) * (cnt[i] - n / 6.0) / (n / 6.0);
    CHECK(chi2 < 5 + 5 * sqrt(10.0), "below(6) chi^2 %g (5 dof)", chi2);
    CHECK(lg_rng_below(&r, 1) == 0, "below(1)");
    uint64_t big = (1ull << 40) + 3;
    int ok = 1;
    for (int i = 0; i < 1000; i++) ok &= lg_rng_below(&r, big) < big;
    CHECK(ok, "below(2^40+3) in range");
    /* large n where skipping the rejection step would be badly biased:
     * below(3*2^30) without it returns multiples of 3 half the time, and
     * below(3*2^62) values under 2^62 half the time; both should be 1/3 */
    long m3 = 0, lowq = 0;
    const int nb = 30000;
    for (int i = 0; i < nb; i++) {
        m3 += lg_rng_below(&r, 0xC0000000ull) % 3 == 0;
        lowq += lg_rng_below(&r, 0xC000000000000000ull) < (1ull << 62);
    }
    double se = sqrt((1.0 / 3) * (2.0 / 3) / nb);
    CHECK(fabs((double)m3 / nb - 1.0 / 3) < 5 * se, "below(3*2^30): P(v%%3==0) = %g", (double)m3 / nb);
    CHECK(fabs((double)lowq / nb - 1.0 / 3) < 5 * se, "below(3*2^62): P(v<2^62) = %g", (double)lowq / nb);

    int64_t perm[100], perm2[100];
    lg_rng a, b;
    lg_rng_init(&a, 8, LG_RNG_STREAM_DATA);
    b = a;
    lg_rng_permutation(&a, perm, 100);
    lg_rng_permutation(&b, perm2, 100);
    int seen[100] = {0}, fixed = 0;
    for (int i = 0; i < 100; i++) {
        if (perm[i] >= 0 && perm[i] < 100) seen[perm[i]]++;
        fixed += perm[i] == i;
    }
    int all = 1;
    for (int i = 0; i < 100; i++) all &= seen[i] == 1;
    CHECK(all, "permutation holds each index once");
    CHECK(fixed < 10, "permutation shuffles (%d fixed points)", fixed);
    CHECK(memcmp(perm, perm2, sizeof perm) == 0, "permutation deterministic");
    /* every position equally likely: index 0 lands in each of 4 slots ~1/4 */
    long where[4] = {0};
    for (int t = 0; t < 40000; t++) {
        int64_t p4[4];
        lg_rng_permutation(&a, p4, 4);
        for (int i = 0; i < 4; i++)
            if (p4[i] == 0) where[i]++;
    }
    chi2 = 0;
    for (int i = 0; i < 4; i++) chi2 += (where[i] - 10000.0) * (where[i] - 10000.0) / 10000.0;
    CHECK(chi2 < 3 + 5 * sqrt(6.0), "permutation position chi^2 %g (3 dof)", chi2);
}

int main(void) {
    LG_TEST_RUN(test_known_answers);
    LG_TEST_RUN(test_conversions);
    LG_TEST_RUN(test_determinism);
    LG_TEST_RUN(test_fill_layout);
    LG_TEST_RUN(test_streams_and_split);
    LG_TEST_RUN(test_state_save_restore);
    LG_TEST_RUN(test_statistics);
    LG_TEST_RUN(test_integers);
    return lg_test_summary("test_rng");
}
