/* 2-D toy distributions used to measure mode coverage (VEEGAN, PacGAN):
 * 8 Gaussians on a ring and a 5x5 grid of Gaussians. */
#include "data/data_internal.h"

#include <math.h>
#include <string.h>

#define R2 1.41421356237309505f /* 2 * cos(pi / 4) */

/* Angles 2*pi*k/8, k = 0..7 (not linspace(0, 2*pi, 8), whose last point
 * repeats the first and leaves 7 distinct modes). */
static const float ring8_centers[8 * 2] = {
    2.0f, 0.0f,  R2, R2,   0.0f, 2.0f,  -R2, R2,
    -2.0f, 0.0f, -R2, -R2, 0.0f, -2.0f, R2, -R2,
};

/* Mode k = 5*i + j is at (-4 + 2i, -4 + 2j). */
static const float grid25_centers[25 * 2] = {
    -4, -4, -4, -2, -4, 0, -4, 2, -4, 4,
    -2, -4, -2, -2, -2, 0, -2, 2, -2, 4,
    0,  -4, 0,  -2, 0,  0, 0,  2, 0,  4,
    2,  -4, 2,  -2, 2,  0, 2,  2, 2,  4,
    4,  -4, 4,  -2, 4,  0, 4,  2, 4,  4,
};

int lg_data_toy_modes(lg_toy_kind kind, const float **centers, float *std) {
    switch (kind) {
    case LG_TOY_RING8:
        if (centers) *centers = ring8_centers;
        if (std) *std = 0.02f;
        return 8;
    case LG_TOY_GRID25:
        if (centers) *centers = grid25_centers;
        if (std) *std = 0.05f;
        return 25;
    }
    if (centers) *centers = NULL;
    return 0;
}

/* Two independent standard normals by Box-Muller. */
static void normal_pair(uint64_t *st, double *z0, double *z1) {
    double u1 = (double)((lg_splitmix64(st) >> 11) + 1) * 0x1p-53; /* (0, 1] */
    double u2 = (double)(lg_splitmix64(st) >> 11) * 0x1p-53;       /* [0, 1) */
    double r = sqrt(-2.0 * log(u1)), t = 6.283185307179586 * u2;
    *z0 = r * cos(t);
    *z1 = r * sin(t);
}

lg_status lg_data_make_toy(lg_dataset *out, lg_toy_kind kind, int64_t n, uint64_t seed) {
    memset(out, 0, sizeof *out);
    const float *ctr;
    float sd;
    int K = lg_data_toy_modes(kind, &ctr, &sd);
    if (K == 0) return lg_error_set(LG_ERR_INVALID_ARG, "unknown toy dataset kind %d", (int)kind);
    if (n < 1) return lg_error_set(LG_ERR_INVALID_ARG, "toy dataset: n = %lld, must be >= 1", (long long)n);
    LG_TRY(lg_data_alloc(out, n, 2, 1, 1, 1, K, kind == LG_TOY_RING8 ? "<ring8>" : "<grid25>"));
    uint64_t st = seed;
    for (int64_t i = 0; i < n; i++) {
        int k = (int)lg_splitmix64_below(&st, (uint64_t)K);
        double z0, z1;
        normal_pair(&st, &z0, &z1);
        out->y[i] = k;
        out->x[2 * i] = ctr[2 * k] + (float)(sd * z0);
        out->x[2 * i + 1] = ctr[2 * k + 1] + (float)(sd * z1);
    }
    return LG_OK;
}
