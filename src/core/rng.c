/* Philox4x32-10 generator: streams, conversions, fills, checkpoint state.
 * Layout and formulas are specified in include/lipgan/rng.h. */
#include "lipgan/rng.h"

#include <math.h>
#include <string.h>

#define LG_PHILOX_ROUNDS 10

/* Adds n to the 64-bit block index held in ctr[0] (low), ctr[1] (high). */
static void ctr_add(uint32_t ctr[4], uint64_t n) {
    uint64_t b = ((uint64_t)ctr[1] << 32 | ctr[0]) + n;
    ctr[0] = (uint32_t)b;
    ctr[1] = (uint32_t)(b >> 32);
}

/* Output of block (ctr + j) without touching the generator. */
static void block_at(const lg_rng *r, const uint32_t base[4], uint64_t j, uint32_t out[4]) {
    uint32_t c[4] = {base[0], base[1], base[2], base[3]};
    ctr_add(c, j);
    lg_philox4x32(c, r->key, LG_PHILOX_ROUNDS, out);
}

void lg_rng_init(lg_rng *r, uint64_t seed, uint64_t stream) {
    memset(r, 0, sizeof *r);
    r->key[0] = (uint32_t)seed;
    r->key[1] = (uint32_t)(seed >> 32);
    r->ctr[2] = (uint32_t)stream;
    r->ctr[3] = (uint32_t)(stream >> 32);
    r->pos = 4;
}

static uint64_t splitmix64(uint64_t z) {
    z += 0x9E3779B97F4A7C15ull;
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

void lg_rng_split(const lg_rng *parent, uint64_t id, lg_rng *child) {
    uint64_t seed = (uint64_t)parent->key[1] << 32 | parent->key[0];
    uint64_t stream = (uint64_t)parent->ctr[3] << 32 | parent->ctr[2];
    lg_rng_init(child, seed, splitmix64(splitmix64(stream) ^ splitmix64(id ^ 0x5DEECE66Dull)));
}

uint32_t lg_rng_u32(lg_rng *r) {
    if (r->pos >= 4) {
        lg_philox4x32(r->ctr, r->key, LG_PHILOX_ROUNDS, r->buf);
        ctr_add(r->ctr, 1);
        r->pos = 0;
    }
    return r->buf[r->pos++];
}

uint64_t lg_rng_u64(lg_rng *r) {
    uint64_t lo = lg_rng_u32(r);
    return lo | (uint64_t)lg_rng_u32(r) << 32;
}

float lg_rng_uniform(lg_rng *r) { return lg_rng_word_to_uniform(lg_rng_u32(r)); }

/* Box-Muller on two words (see rng.h). */
static void box_muller(uint32_t x0, uint32_t x1, float *n0, float *n1) {
    const double two_m32 = 1.0 / 4294967296.0;
    double u1 = ((double)x0 + 1.0) * two_m32; /* (0, 1]: log is finite */
    double u2 = (double)x1 * two_m32;
    double rad = sqrt(-2.0 * log(u1)), th = 6.283185307179586 * u2;
    *n0 = (float)(rad * cos(th));
    *n1 = (float)(rad * sin(th));
}

float lg_rng_normal(lg_rng *r) {
    uint32_t x0 = lg_rng_u32(r), x1 = lg_rng_u32(r);
    float n0, n1;
    box_muller(x0, x1, &n0, &n1);
    return n0; /* n1 is dropped so the state stays a plain counter */
}

uint64_t lg_rng_below(lg_rng *r, uint64_t n) {
    LG_ASSERT(n >= 1);
    if (n <= UINT32_MAX) {
        /* Lemire: multiply-shift with rejection of the biased low range */
        uint32_t n32 = (uint32_t)n;
        uint64_t m = (uint64_t)lg_rng_u32(r) * n32;
        uint32_t l = (uint32_t)m;
        if (l < n32) {
            uint32_t t = (uint32_t)(-n32) % n32;
            while (l < t) {
                m = (uint64_t)lg_rng_u32(r) * n32;
                l = (uint32_t)m;
            }
        }
        return m >> 32;
    }
    uint64_t lim = UINT64_MAX - UINT64_MAX % n; /* accept x < lim */
    uint64_t x;
    do x = lg_rng_u64(r);
    while (x >= lim);
    return x % n;
}

void lg_rng_reserve(lg_rng *r, uint64_t nblocks, uint32_t key[2], uint32_t ctr[4]) {
    r->pos = 4; /* a fill starts at a fresh block */
    key[0] = r->key[0];
    key[1] = r->key[1];
    memcpy(ctr, r->ctr, 4 * sizeof *ctr);
    ctr_add(r->ctr, nblocks);
}

void lg_rng_fill_uniform(lg_rng *r, float *out, size_t n, float lo, float hi) {
    uint32_t key[2], base[4];
    lg_rng_reserve(r, (n + 3) / 4, key, base);
    float scale = hi - lo;
    for (size_t b = 0; 4 * b < n; b++) {
        uint32_t w[4];
        block_at(r, base, b, w);
        for (size_t k = 0; k < 4 && 4 * b + k < n; k++) out[4 * b + k] = lo + scale * lg_rng_word_to_uniform(w[k]);
    }
}

void lg_rng_fill_normal(lg_rng *r, float *out, size_t n, float mean, float std) {
    uint32_t key[2], base[4];
    lg_rng_reserve(r, (n + 3) / 4, key, base);
    for (size_t b = 0; 4 * b < n; b++) {
        uint32_t w[4];
        float z[4];
        block_at(r, base, b, w);
        box_muller(w[0], w[1], &z[0], &z[1]);
        box_muller(w[2], w[3], &z[2], &z[3]);
        for (size_t k = 0; k < 4 && 4 * b + k < n; k++) out[4 * b + k] = mean + std * z[k];
    }
}

void lg_rng_permutation(lg_rng *r, int64_t *perm, int64_t n) {
    for (int64_t i = 0; i < n; i++) perm[i] = i;
    for (int64_t i = n - 1; i > 0; i--) {
        int64_t j = (int64_t)lg_rng_below(r, (uint64_t)i + 1);
        int64_t t = perm[i];
        perm[i] = perm[j];
        perm[j] = t;
    }
}

void lg_rng_state_save(const lg_rng *r, int64_t out[LG_RNG_STATE_WORDS]) {
    out[0] = LG_RNG_STATE_TAG;
    out[1] = r->key[0];
    out[2] = r->key[1];
    for (int i = 0; i < 4; i++) out[3 + i] = r->ctr[i];
    out[7] = r->pos;
}

lg_status lg_rng_state_load(lg_rng *r, const int64_t in[LG_RNG_STATE_WORDS]) {
    if (in[0] != LG_RNG_STATE_TAG)
        return lg_error_set(LG_ERR_FORMAT, "random generator state: word 0 is %lld, not the tag %d (\"LGR1\"); the checkpoint is corrupt or from another program",
                            (long long)in[0], LG_RNG_STATE_TAG);
    for (int i = 1; i < LG_RNG_STATE_WORDS; i++)
        if (in[i] < 0 || in[i] > (int64_t)UINT32_MAX)
            return lg_error_set(LG_ERR_FORMAT, "random generator state: word %d = %lld is not a 32-bit word; the checkpoint is corrupt",
                                i, (long long)in[i]);
    uint64_t block = (uint64_t)in[4] << 32 | (uint64_t)in[3];
    if (in[7] > 4 || (in[7] < 4 && block == 0))
        return lg_error_set(LG_ERR_FORMAT, "random generator state: buffer position %lld is invalid at block %llu; the checkpoint is corrupt",
                            (long long)in[7], (unsigned long long)block);
    lg_rng t;
    t.key[0] = (uint32_t)in[1];
    t.key[1] = (uint32_t)in[2];
    for (int i = 0; i < 4; i++) t.ctr[i] = (uint32_t)in[3 + i];
    t.pos = (int)in[7];
    memset(t.buf, 0, sizeof t.buf);
    if (t.pos < 4) block_at(&t, t.ctr, UINT64_MAX, t.buf); /* the block before ctr (+2^64-1 == -1) */
    *r = t;
    return LG_OK;
}
