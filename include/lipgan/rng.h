/* lipgan/rng.h - seeded, counter-based random numbers (Philox4x32-10).
 *
 * Philox4x32-10 (Salmon et al., "Parallel random numbers: as easy as 1, 2,
 * 3", SC'11) maps a 128-bit counter and a 64-bit key to 128 random bits.
 * Because output block i is a pure function of (key, counter i), a GPU
 * thread can compute any element of a fill directly, so the CUDA backend
 * reproduces exactly the CPU's uniform stream (see lg_rng_reserve).
 *
 * A generator is (key, counter, 4-word buffer):
 *   key     = the 64-bit seed;
 *   counter = { block index (64 bits, ctr[0] low), stream id (64 bits,
 *               ctr[2] low) }, so each stream has 2^64 blocks of its own.
 * Independent streams for the separate uses of randomness (weight init,
 * data order, latent noise, gradient-penalty epsilon) come from
 * lg_rng_init(seed, LG_RNG_STREAM_...) or lg_rng_split().
 *
 * Conversions (also what a GPU kernel must do to match):
 *   uniform u = (x >> 8) * 2^-24, in [0, 1), 24 random bits;
 *   normal: Box-Muller on two words x0, x1 in double precision:
 *     u1 = (x0 + 1) * 2^-32 in (0, 1], u2 = x1 * 2^-32,
 *     n0 = sqrt(-2 ln u1) cos(2 pi u2), n1 = sqrt(-2 ln u1) sin(2 pi u2),
 *   rounded to float (|n| <= 6.66). Uniforms are bit-identical across
 *   backends; normals may differ in the last ulp (libm vs CUDA math).
 *
 * Single draws (lg_rng_u32, lg_rng_uniform, lg_rng_normal) consume words
 * of the current block in order; fills start at a fresh block (leftover
 * buffered words are dropped) and element i of a fill uses word i % 4 of
 * block start + i / 4 (a normal fill pairs words (0,1) and (2,3) of each
 * block), consuming ceil(n / 4) blocks.
 *
 * Checkpoints: lg_rng_state_save writes LG_RNG_STATE_WORDS integers, each
 * in [0, 2^32), stored as an I64 safetensors tensor of shape
 * (LG_RNG_STATE_WORDS,) (float32 cannot hold 32-bit words exactly):
 *   [0] format tag 0x4C475231 ("LGR1"), [1..2] key, [3..6] counter,
 *   [7] position in the buffered block (4 = none buffered).
 * lg_rng_state_load restores it (recomputing the buffer from the counter)
 * and validates every word; the continuation is identical.
 *
 * Usage:
 *   lg_rng noise;
 *   lg_rng_init(&noise, cfg_seed, LG_RNG_STREAM_NOISE);
 *   lg_rng_fill_normal(&noise, z, (size_t)batch * zdim, 0.0f, 1.0f);   // z (batch, zdim)
 */
#ifndef LIPGAN_RNG_H
#define LIPGAN_RNG_H

#include <stddef.h>
#include <stdint.h>

#include "lipgan/status.h"

#ifdef __cplusplus
extern "C" {
#endif

#ifdef __CUDACC__
#define LG_RNG_HD __host__ __device__
#else
#define LG_RNG_HD
#endif

#define LG_RNG_STATE_WORDS 8
#define LG_RNG_STATE_TAG 0x4C475231 /* "LGR1" */

/* Stream ids the trainer uses with one seed (fixed: they are part of what
 * makes a run reproducible). */
enum {
    LG_RNG_STREAM_INIT = 0,    /* weight initialization */
    LG_RNG_STREAM_DATA = 1,    /* data shuffling and augmentation */
    LG_RNG_STREAM_NOISE = 2,   /* latent z */
    LG_RNG_STREAM_GP = 3,      /* gradient-penalty interpolation epsilon */
    LG_RNG_STREAM_SN = 4,      /* spectral-norm u/v initialization */
    LG_RNG_STREAM_EVAL = 5     /* sampling for metrics */
};

typedef struct lg_rng {
    uint32_t key[2];   /* seed (key[0] low word) */
    uint32_t ctr[4];   /* next block: ctr[0..1] block index, ctr[2..3] stream */
    uint32_t buf[4];   /* output of the previous block (valid from pos) */
    int pos;           /* next unused word of buf; 4 = empty */
} lg_rng;

/* ---- the core generator ---- */

/* Philox4x32 with the given number of rounds (10 is the standard). */
static inline LG_RNG_HD void lg_philox4x32(const uint32_t ctr[4], const uint32_t key[2], int rounds,
                                           uint32_t out[4]) {
    uint32_t c0 = ctr[0], c1 = ctr[1], c2 = ctr[2], c3 = ctr[3], k0 = key[0], k1 = key[1];
    for (int r = 0; r < rounds; r++) {
        if (r > 0) {
            k0 += 0x9E3779B9u; /* Weyl key schedule */
            k1 += 0xBB67AE85u;
        }
        uint64_t p0 = (uint64_t)0xD2511F53u * c0, p1 = (uint64_t)0xCD9E8D57u * c2;
        uint32_t hi0 = (uint32_t)(p0 >> 32), lo0 = (uint32_t)p0;
        uint32_t hi1 = (uint32_t)(p1 >> 32), lo1 = (uint32_t)p1;
        c0 = hi1 ^ c1 ^ k0;
        c1 = lo1;
        c2 = hi0 ^ c3 ^ k1;
        c3 = lo0;
    }
    out[0] = c0;
    out[1] = c1;
    out[2] = c2;
    out[3] = c3;
}

/* A 32-bit word to a uniform float in [0, 1). */
static inline LG_RNG_HD float lg_rng_word_to_uniform(uint32_t x) {
    return (float)(x >> 8) * (1.0f / 16777216.0f);
}

/* ---- generators ---- */

/* Generator for (seed, stream), at the start of its stream. */
void lg_rng_init(lg_rng *r, uint64_t seed, uint64_t stream);

/* A child generator for sub-task `id`: same key, stream id a 64-bit hash of
 * (parent's stream, id), starting at block 0. Depends only on the parent's
 * seed and stream, not on how far the parent has advanced; different ids
 * give different streams, so a child never overlaps its parent or its
 * siblings (barring a 2^-64 hash collision). */
void lg_rng_split(const lg_rng *parent, uint64_t id, lg_rng *child);

uint32_t lg_rng_u32(lg_rng *r);
uint64_t lg_rng_u64(lg_rng *r);       /* two words, first is the low half */
float lg_rng_uniform(lg_rng *r);      /* [0, 1) */
float lg_rng_normal(lg_rng *r);       /* N(0, 1); uses two words */
/* Uniform integer in [0, n), unbiased (Lemire's method); n >= 1. */
uint64_t lg_rng_below(lg_rng *r, uint64_t n);

/* out (n): lo + (hi - lo) * uniform, in the fill layout above. */
void lg_rng_fill_uniform(lg_rng *r, float *out, size_t n, float lo, float hi);
/* out (n): mean + std * normal, in the fill layout above. */
void lg_rng_fill_normal(lg_rng *r, float *out, size_t n, float mean, float std);
/* perm (n): a uniformly random permutation of 0..n-1 (Fisher-Yates). */
void lg_rng_permutation(lg_rng *r, int64_t *perm, int64_t n);

/* For device kernels: reserves nblocks blocks (as a fill of 4*nblocks
 * elements would), returning the key and the first block's counter; block
 * j of the fill is Philox(ctr + j, key) with j added to the 64-bit block
 * index ctr[0..1]. Drops buffered words like a fill. */
void lg_rng_reserve(lg_rng *r, uint64_t nblocks, uint32_t key[2], uint32_t ctr[4]);

/* ---- checkpoint state (see the layout above) ---- */
void lg_rng_state_save(const lg_rng *r, int64_t out[LG_RNG_STATE_WORDS]);
/* LG_ERR_FORMAT (message names the bad word) if in is not a saved state. */
lg_status lg_rng_state_load(lg_rng *r, const int64_t in[LG_RNG_STATE_WORDS]);

#ifdef __cplusplus
}
#endif
#endif
