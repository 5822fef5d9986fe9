/* Internal helpers of the metrics module. */
#ifndef LIPGAN_METRICS_INTERNAL_H
#define LIPGAN_METRICS_INTERNAL_H

#include <stdint.h>

/* splitmix64: a small seeded generator for subset draws and shuffles
 * (the same sequence on every platform). */
static inline uint64_t lg_met_next(uint64_t *s) {
    uint64_t z = (*s += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

/* Uniform integer in [0, n) (rejection sampling, no modulo bias). */
static inline uint64_t lg_met_below(uint64_t *s, uint64_t n) {
    uint64_t lim = UINT64_MAX - UINT64_MAX % n;
    uint64_t r;
    do r = lg_met_next(s);
    while (r >= lim);
    return r % n;
}

/* The first m entries of idx become a uniform random m-subset of its n
 * entries (partial Fisher-Yates). */
static inline void lg_met_partial_shuffle(uint64_t *s, int64_t *idx, int64_t n, int64_t m) {
    for (int64_t i = 0; i < m && i < n - 1; i++) {
        int64_t j = i + (int64_t)lg_met_below(s, (uint64_t)(n - i));
        int64_t t = idx[i];
        idx[i] = idx[j];
        idx[j] = t;
    }
}

#endif
