/* Winograd F(4x4, 2x2) for 4x4, stride-2, pad-1 convs on the CPU: the
 * standard CNN's downsampling convs and, since a transposed conv's forward
 * is a conv's bwd_data, its generator's upsampling ones.
 *
 * Polyphase form. With the four phases of x, x_pq[i][j] = x[2i+p][2j+q]
 * (p, q in {0, 1}; OH x OW each, H and W even),
 *   y[oy][ox] = sum_{p,q} sum_{a,b in {0,1}} w[2a+1-p][2b+1-q] x_pq[oy-p+a][ox-q+b]:
 * a 2x2 stride-1 conv over 4C channels (row ph*C + c, ph = 2p + q), each
 * phase's window shifted by (-p, -q). Winograd F(4x4, 2x2) (points 0, 1,
 * -1, 2, infinity; matrices derived with the Toom-Cook construction and
 * checked in exact arithmetic) takes 25 products per 4x4 output tile and
 * channel pair: 25*4/16 = 6.25 multiply-adds per output per (c, oc), against
 * 16 for im2col, in the batched-GEMM form of cpu_winograd.c:
 *   V[xi] (4C, G*P)   the 5x5 input tiles, B^T d B, read straight from x
 *                     at stride 2 (no copy of the phases),
 *   U[xi] (OC, 4C)    G k G^T of each phase's 2x2 taps,
 *   M[xi] (OC, G*P)   = U[xi] V[xi]: 25 SGEMMs per chunk, then y = A^T m A.
 *
 * bwd_data, per phase: dx_pq[i][j] = sum_{a,b} w[3-2a-p][3-2b-q]
 * dy[i+p-1+a][j+q-1+b], a 2x2 correlation of dy whose window shift depends
 * on the phase; so each phase has its own transform of dy's tiles (all
 * four from one read of a 6x6 window, dy4_block) and its own 25 GEMMs
 * (C, OC) x (OC, G*P), its output written into dx at stride 2.
 * bwd_weight: dU[xi] (OC, 4C) = sum over tiles Z[xi] V[xi]^T with
 * Z = A dy A^T of the 4x4 dy tiles and V the forward's; dw = G^T dU G.
 *
 * Threads: chunks of samples over one OpenMP region as cpu_winograd.c
 * (OpenBLAS single-threaded inside it), every output written by one thread
 * in a fixed order, bwd_weight's per-thread partials added in thread order:
 * results are fixed for a thread count; with few tiles in all, one chunk
 * whose phases are split between the threads instead (the plan's split).
 * cpu_conv.c decides when to use it (wino_s2_use: enough tiles and
 * channels). */
#include <cblas.h>
#include <omp.h>
#include <string.h>

#include "backend/cpu/cpu_internal.h"
#include "lipgan/status.h"

#define S2_Q 25         /* 5x5 transformed tile */
#define S2_COLS_MIN 256 /* narrowest GEMM (tiles of a chunk) worth running */
#define S2_CB 64        /* tiles per block of the output transform */

int lg_cpu_wino_s2_ok(const lg_conv_geom *g) {
    return g->kh == 4 && g->kw == 4 && g->stride == 2 && g->pad == 1 && g->h % 2 == 0 &&
           g->w % 2 == 0 && g->oh == g->h / 2 && g->ow == g->w / 2 && g->n > 0 && g->c > 0 &&
           g->oc > 0 && g->h > 0 && g->w > 0;
}

typedef struct s2_plan {
    int T, G, nchunk;
    int split;    /* 1: few tiles in all (s2_plan_make): one chunk of every sample, the T
                   * threads splitting each phase (channels, GEMMs) */
    int th, tw;   /* tile rows and columns of the OH x OW output */
    size_t P;     /* tiles per sample */
    size_t us;    /* floats between U's Q matrices */
    size_t u;     /* floats of U (Q, OC, 4C) / (Q, 4, C, OC); bwd_weight: one dU per thread */
    size_t big;   /* floats of a slot's (Q, 4C, G*P) matrices: V (fwd, bwd_weight), M (bwd_data) */
    size_t small; /* floats of a slot's (Q, OC, G*P) ones: M (fwd), V (bwd_data; split: the
                   * four shifts' V), Z (bwd_weight) */
    size_t tmp;   /* floats of a thread's transform buffer */
    size_t slot;  /* big + small + tmp */
} s2_plan;

static void s2_plan_make(s2_plan *p, const lg_conv_geom *g) {
    p->th = (g->oh + 3) / 4;
    p->tw = (g->ow + 3) / 4;
    p->P = (size_t)p->th * p->tw;
    /* Few tiles (under S2_COLS_MIN a thread): a chunk each gave GEMMs a few
     * tiles wide, each of them packing all of U again (measured as
     * OpenBLAS's copy routine taking 2/3 of the GEMMs' time on 256->512 8x8
     * at n 64, chunks of 32 tiles); and fewer samples than threads left
     * threads idle. One chunk of all the samples then, every thread taking
     * part in every phase. */
    lg_cpu_chunks ch = lg_cpu_wino_chunks(g->n, p->P, S2_COLS_MIN, &p->split);
    p->T = ch.T;
    p->G = ch.G;
    p->nchunk = ch.nchunk;
    size_t ld = (size_t)ch.G * p->P, c4 = (size_t)4 * g->c;
    p->us = lg_cpu_wino_qs((size_t)g->oc * c4);
    p->u = S2_Q * p->us;
    p->big = S2_Q * lg_cpu_wino_qs(c4 * ld);
    p->small = 4 * S2_Q * lg_cpu_wino_qs((size_t)(g->oc > g->c ? g->oc : g->c) * ld);
    p->tmp = (size_t)(36 + 60) * S2_CB; /* dy4_block's; tiles_block needs 50, output_tf 36 */
    p->slot = p->big + p->small + p->tmp;
}

/* ws: (T, u) [U; bwd_weight's T partial dU], then T slots; split: u, then
 * big, small and T transform buffers. */
size_t lg_cpu_wino_s2_workspace(const lg_conv_geom *g) {
    if (!lg_cpu_wino_s2_ok(g)) return 0;
    s2_plan p;
    s2_plan_make(&p, g);
    if (p.split) return p.u + p.big + p.small + (size_t)p.T * p.tmp;
    return (size_t)p.T * (p.u + p.slot);
}

/* ---- the 1-D transforms: in[k*is] -> out[k*os] ---- */

#define S2_INLINE static inline __attribute__((always_inline))

/* 5 -> 5: B^T = [2 -1 -2 1 0; 0 -2 -1 1 0; 0 2 -3 1 0; 0 -1 0 1 0; 0 2 -1 -2 1] */
S2_INLINE void bt5(const float *in, size_t is, float *out, size_t os) {
    float d0 = in[0], d1 = in[is], d2 = in[2 * is], d3 = in[3 * is], d4 = in[4 * is];
    float t = d3 - d1;
    out[0] = 2.0f * (d0 - d2) + t;
    out[os] = t - d1 - d2;
    out[2 * os] = t + 3.0f * (d1 - d2);
    out[3 * os] = t;
    out[4 * os] = (d4 - d2) - 2.0f * t;
}

/* 5 -> 4: A^T = [1 1 1 1 0; 0 1 -1 2 0; 0 1 1 4 0; 0 1 -1 8 1] */
S2_INLINE void at5(const float *in, size_t is, float *out, size_t os) {
    float m0 = in[0], m1 = in[is], m2 = in[2 * is], m3 = in[3 * is], m4 = in[4 * is];
    float s = m1 + m2, d = m1 - m2;
    out[0] = m0 + s + m3;
    out[os] = d + 2.0f * m3;
    out[2 * os] = s + 4.0f * m3;
    out[3 * os] = d + 8.0f * m3 + m4;
}

/* 4 -> 5: A (the transpose of at5's matrix) */
S2_INLINE void a5(const float *in, size_t is, float *out, size_t os) {
    float t0 = in[0], t1 = in[is], t2 = in[2 * is], t3 = in[3 * is];
    float e = t0 + t2, f = t1 + t3;
    out[0] = t0;
    out[os] = e + f;
    out[2 * os] = e - f;
    out[3 * os] = t0 + 2.0f * t1 + 4.0f * t2 + 8.0f * t3;
    out[4 * os] = t3;
}

/* 2 -> 5: G = [1/2 0; -1/2 -1/2; -1/6 1/6; 1/6 1/3; 0 1] */
S2_INLINE void g5(const float *in, size_t is, float *out, size_t os) {
    float k0 = in[0], k1 = in[is];
    out[0] = 0.5f * k0;
    out[os] = -0.5f * (k0 + k1);
    out[2 * os] = (1.0f / 6) * (k1 - k0);
    out[3 * os] = (1.0f / 6) * k0 + (1.0f / 3) * k1;
    out[4 * os] = k1;
}

/* 5 -> 2: G^T */
S2_INLINE void gt5(const float *in, size_t is, float *out, size_t os) {
    float u0 = in[0], u1 = in[is], u2 = in[2 * is], u3 = in[3 * is], u4 = in[4 * is];
    out[0] = 0.5f * (u0 - u1) + (1.0f / 6) * (u3 - u2);
    out[os] = -0.5f * u1 + (1.0f / 6) * u2 + (1.0f / 3) * u3 + u4;
}

/* ---- filters ---- */

/* The 2x2 taps k[a][b] of weight w (OC, C, 4, 4) for output o, input c and
 * phase (p, q): the forward's w[2a+1-p][2b+1-q], or (flip) bwd_data's
 * w[3-2a-p][3-2b-q]. */
S2_INLINE void taps(float k[4], const float *w, int C, int o, int c, int p, int q, int flip) {
    const float *s = w + ((size_t)o * C + c) * 16;
    for (int a = 0; a < 2; a++)
        for (int b = 0; b < 2; b++) {
            int ky = flip ? 3 - 2 * a - p : 2 * a + 1 - p,
                kx = flip ? 3 - 2 * b - q : 2 * b + 1 - q;
            k[a * 2 + b] = s[ky * 4 + kx];
        }
}

/* u[(a*5 + b)*us] = (G k G^T)[a][b] of 2x2 taps k */
S2_INLINE void filter_tile(float *u, size_t us, const float k[4]) {
    float t[5 * 2]; /* (5, 2) = G k */
    for (int j = 0; j < 2; j++) g5(k + j, 2, t + j, 2);
    for (int a = 0; a < 5; a++) g5(t + a * 2, 1, u + (size_t)(a * 5) * us, us);
}

/* U (Q, OC, 4C), rows o in [o0, o1): the forward's */
static void filter_fwd(float *U, size_t us, const float *w, int C, int o0, int o1) {
    for (int o = o0; o < o1; o++)
        for (int ph = 0; ph < 4; ph++)
            for (int c = 0; c < C; c++) {
                float k[4];
                taps(k, w, C, o, c, ph >> 1, ph & 1, 0);
                filter_tile(U + ((size_t)o * 4 + ph) * C + c, us, k);
            }
}

/* U (Q, 4, C, OC), inputs c in [c0, c1): bwd_data's, one (C, OC) matrix per phase */
static void filter_bwd(float *U, size_t us, const float *w, int C, int OC, int c0, int c1) {
    for (int ph = 0; ph < 4; ph++)
        for (int c = c0; c < c1; c++)
            for (int o = 0; o < OC; o++) {
                float k[4];
                taps(k, w, C, o, c, ph >> 1, ph & 1, 1);
                filter_tile(U + ((size_t)ph * C + c) * OC + o, us, k);
            }
}

/* dw (OC, C, 4, 4) rows [o0, o1) from dU (Q, OC, 4C): the phase-(p, q) 2x2
 * taps G^T dU G go to w[2a+1-p][2b+1-q]; the 16 taps of (o, c) are its
 * four phases' 4. */
static void filter_adj(float *dw, const float *dU, size_t us, int C, int o0, int o1) {
    for (int o = o0; o < o1; o++)
        for (int ph = 0; ph < 4; ph++)
            for (int c = 0; c < C; c++) {
                const float *u = dU + ((size_t)o * 4 + ph) * C + c;
                float t[2 * 5], k[4]; /* t (2, 5) = G^T u */
                for (int b = 0; b < 5; b++) gt5(u + (size_t)b * us, 5 * us, t + b, 5);
                for (int a = 0; a < 2; a++) gt5(t + a * 5, 1, k + a * 2, 1);
                int p = ph >> 1, q = ph & 1;
                float *d = dw + ((size_t)o * C + c) * 16;
                for (int a = 0; a < 2; a++)
                    for (int b = 0; b < 2; b++)
                        d[(2 * a + 1 - p) * 4 + 2 * b + 1 - q] = k[a * 2 + b];
            }
}

/* ---- tiles ---- */

/* Transforms of tiles [c0, c0 + nb) (nb <= S2_CB) of a chunk's columns
 * (column j*P + ty*TW + tx: sample j, tile ty, tx) of one channel, img0
 * its image (H, W) in sample 0, ss floats between samples, into
 * v[(a*5 + b)*qs + t]: grad = 0, the forward's 5x5 tiles of a phase through
 * B^T, element (k, l) at x row 8ty + 2k + ro, column 8tx + 2l + co (ro, co
 * = -p, -q); grad = 1, bwd_weight's 4x4 tiles of dy at (4ty, 4tx) through
 * A (ro = co = 0). Zero outside the image. The tiles are first gathered into D
 * (n*n, S2_CB), element (k, l) of every tile in one row, so that both 1-D
 * passes run along the tiles (vectorized) and v is written in runs; per
 * tile, with 1-D passes along its rows, the stores to the 25 far-apart
 * matrices were scalar and the pass took twice the GEMMs' time.
 * tmp: (25 + 25, S2_CB). */
S2_INLINE void tiles_block(const int grad, float *restrict v, size_t qs, const float *img0,
                           size_t ss, int H, int W, int ro, int co, const s2_plan *p, size_t c0,
                           int nb, float *restrict tmp) {
    const int n = grad ? 4 : 5, st = grad ? 1 : 2, TW = p->tw; /* tile side, stride in x */
    float *restrict D = tmp, *restrict R = tmp + 25 * S2_CB; /* D (n*n, CB), R (5*n, CB) */
    size_t j = c0 / p->P, rem = c0 % p->P;
    int ty = (int)(rem / TW), tx = (int)(rem % TW);
    for (int t = 0; t < nb; t++) {
        const float *img = img0 + j * ss;
        int iy0 = 4 * st * ty + ro, ix0 = 4 * st * tx + co;
        if (iy0 >= 0 && iy0 + st * (n - 1) < H && ix0 >= 0 && ix0 + st * (n - 1) < W) {
            const float *src = img + (size_t)iy0 * W + ix0; /* the tile lies inside */
            for (int k = 0; k < n; k++)
                for (int l = 0; l < n; l++)
                    D[(k * n + l) * S2_CB + t] = src[(size_t)st * k * W + st * l];
        } else {
            for (int k = 0; k < n; k++) {
                int iy = iy0 + st * k;
                for (int l = 0; l < n; l++) {
                    int ix = ix0 + st * l;
                    D[(k * n + l) * S2_CB + t] =
                        iy >= 0 && iy < H && ix >= 0 && ix < W ? img[(size_t)iy * W + ix] : 0.0f;
                }
            }
        }
        if (++tx == TW) {
            tx = 0;
            if (++ty == p->th) ty = 0, j++;
        }
    }
    const size_t nc = (size_t)n * S2_CB;
    for (int l = 0; l < n; l++) { /* R[a*n + l] = F down the tiles' columns */
        const float *restrict in = D + l * S2_CB;
        float *restrict out = R + l * S2_CB;
        for (int t = 0; t < nb; t++) {
            if (grad) a5(in + t, nc, out + t, nc);
            else bt5(in + t, nc, out + t, nc);
        }
    }
    for (int a = 0; a < 5; a++) { /* v[(a*5 + b)*qs] = F along their rows */
        const float *restrict in = R + a * nc;
        float *restrict out = v + (size_t)(a * 5) * qs;
        for (int t = 0; t < nb; t++) {
            if (grad) a5(in + t, S2_CB, out + t, qs);
            else bt5(in + t, S2_CB, out + t, qs);
        }
    }
}

/* All tiles of a chunk of gc samples for one channel into vrow (column 0
 * of its row of V; Q matrices qs apart). */
static void tiles_tf(int grad, float *vrow, size_t qs, const float *img0, size_t ss, int H, int W,
                     int ro, int co, int gc, const s2_plan *p, float *tmp) {
    const size_t ld = (size_t)gc * p->P;
    for (size_t c0 = 0; c0 < ld; c0 += S2_CB) {
        int nb = ld - c0 < S2_CB ? (int)(ld - c0) : S2_CB;
        if (grad) tiles_block(1, vrow + c0, qs, img0, ss, H, W, ro, co, p, c0, nb, tmp);
        else tiles_block(0, vrow + c0, qs, img0, ss, H, W, ro, co, p, c0, nb, tmp);
    }
}

/* bwd_data's four transforms of dy's tiles, for tiles [c0, c0 + nb) of one
 * channel (img0, ss as tiles_block): phase ph = 2p + q reads the 5x5 tile
 * at (4ty + p - 1, 4tx + q - 1), written to v + ph*vs as tiles_block
 * writes. All four lie in the 6x6 window at (4ty - 1, 4tx - 1): one gather
 * of it, B^T down rows 0-4 and 1-5 of its columns, then along columns 0-4
 * and 1-5 of those rows (36 loads and 32 1-D transforms a tile, against
 * 100 and 40 for four tiles_block calls). tmp: (36 + 60, S2_CB). */
S2_INLINE void dy4_block(float *restrict v, size_t vs, size_t qs, const float *img0, size_t ss,
                         int H, int W, const s2_plan *p, size_t c0, int nb, float *restrict tmp) {
    const int TW = p->tw;
    float *restrict D = tmp, *restrict R = tmp + 36 * S2_CB; /* D (6, 6, CB), R (2, 5, 6, CB) */
    size_t j = c0 / p->P, rem = c0 % p->P;
    int ty = (int)(rem / TW), tx = (int)(rem % TW);
    for (int t = 0; t < nb; t++) {
        const float *img = img0 + j * ss;
        int iy0 = 4 * ty - 1, ix0 = 4 * tx - 1;
        if (iy0 >= 0 && iy0 + 5 < H && ix0 >= 0 && ix0 + 5 < W) {
            const float *src = img + (size_t)iy0 * W + ix0;
            for (int k = 0; k < 6; k++)
                for (int l = 0; l < 6; l++) D[(k * 6 + l) * S2_CB + t] = src[(size_t)k * W + l];
        } else {
            for (int k = 0; k < 6; k++) {
                int iy = iy0 + k;
                for (int l = 0; l < 6; l++) {
                    int ix = ix0 + l;
                    D[(k * 6 + l) * S2_CB + t] =
                        iy >= 0 && iy < H && ix >= 0 && ix < W ? img[(size_t)iy * W + ix] : 0.0f;
                }
            }
        }
        if (++tx == TW) {
            tx = 0;
            if (++ty == p->th) ty = 0, j++;
        }
    }
    const size_t nc = (size_t)6 * S2_CB;
    for (int r = 0; r < 2; r++) /* R[r][a][l]: rows r..r+4 of column l */
        for (int l = 0; l < 6; l++) {
            const float *restrict in = D + (r * 6 + l) * S2_CB;
            float *restrict out = R + (r * 5 * 6 + l) * S2_CB;
            for (int t = 0; t < nb; t++) bt5(in + t, nc, out + t, nc);
        }
    for (int ph = 0; ph < 4; ph++) /* columns q..q+4 of R[p][a] */
        for (int a = 0; a < 5; a++) {
            const float *restrict in = R + (((ph >> 1) * 5 + a) * 6 + (ph & 1)) * S2_CB;
            float *restrict out = v + ph * vs + (size_t)(a * 5) * qs;
            for (int t = 0; t < nb; t++) bt5(in + t, S2_CB, out + t, qs);
        }
}

/* The four V (Q, OC, gc*P) of bwd_data, vs floats apart, channels [o0, o1)
 * of dy (gc, OC, OH, OW) */
static void dy4_tf(float *V, size_t vs, const float *dy, int gc, int o0, int o1,
                   const lg_conv_geom *g, const s2_plan *p, float *tmp) {
    const int OC = g->oc, OH = g->oh, OW = g->ow;
    const size_t ld = (size_t)gc * p->P, qs = lg_cpu_wino_qs((size_t)OC * ld),
                 ss = (size_t)OC * OH * OW;
    for (int o = o0; o < o1; o++)
        for (size_t c0 = 0; c0 < ld; c0 += S2_CB) {
            int nb = ld - c0 < S2_CB ? (int)(ld - c0) : S2_CB;
            dy4_block(V + (size_t)o * ld + c0, vs, qs, dy + (size_t)o * OH * OW, ss, OH, OW, p, c0,
                      nb, tmp);
        }
}

/* V (Q, 4C, gc*P) of the gc samples x (gc, C, H, W), channels [c0, c1): row ph*C + c is phase
 * (p, q) of channel c, its tile ty, tx reading x rows 8ty + 2k - p and
 * columns 8tx + 2l - q. */
static void input_tf(float *V, const float *x, int gc, int c0, int c1, const lg_conv_geom *g,
                     const s2_plan *p, float *tmp) {
    const int C = g->c, H = g->h, W = g->w;
    const size_t ld = (size_t)gc * p->P, qs = lg_cpu_wino_qs((size_t)4 * C * ld),
                 ss = (size_t)C * H * W;
    for (int c = c0; c < c1; c++) /* the four phases of a channel while its images are in cache */
        for (int ph = 0; ph < 4; ph++)
            tiles_tf(0, V + ((size_t)ph * C + c) * ld, qs, x + (size_t)c * H * W, ss, H, W,
                     -(ph >> 1), -(ph & 1), gc, p, tmp);
}

/* Z (Q, OC, gc*P) of bwd_weight, channels [o0, o1): the 4x4 tiles of dy
 * (gc, OC, OH, OW) at (4ty, 4tx) through A. */
static void dy_tf(float *Z, const float *dy, int gc, int o0, int o1, const lg_conv_geom *g,
                  const s2_plan *p, float *tmp) {
    const int OC = g->oc, OH = g->oh, OW = g->ow;
    const size_t ld = (size_t)gc * p->P, qs = lg_cpu_wino_qs((size_t)OC * ld),
                 ss = (size_t)OC * OH * OW;
    for (int o = o0; o < o1; o++)
        tiles_tf(1, Z + (size_t)o * ld, qs, dy + (size_t)o * OH * OW, ss, OH, OW, 0, 0, gc, p, tmp);
}
/* The 4x4 tiles o[(a*4 + c)*S2_CB + t] of nb tiles from column c0 of a
 * chunk into one row's images (row img0 in sample 0, ss floats between
 * samples, each H x W): tile position (oy, ox) (< OH, OW) at image row
 * sy*oy + py, column sy*ox + px. */
S2_INLINE void scatter_tiles(const int sy, float *img0, size_t ss, int W, int py, int px,
                             const float *o, size_t c0, int nb, const lg_conv_geom *g,
                             const s2_plan *p) {
    const int TW = p->tw;
    size_t j = c0 / p->P, rem = c0 % p->P;
    int ty = (int)(rem / TW), tx = (int)(rem % TW);
    for (int t = 0; t < nb; t++) {
        float *dst = img0 + j * ss + (size_t)(sy * 4 * ty + py) * W + sy * 4 * tx + px;
        int nr = g->oh - 4 * ty < 4 ? g->oh - 4 * ty : 4;
        int nc = g->ow - 4 * tx < 4 ? g->ow - 4 * tx : 4;
        if (nr == 4 && nc == 4) {
            for (int a = 0; a < 4; a++)
                for (int c = 0; c < 4; c++)
                    dst[(size_t)sy * a * W + sy * c] = o[(a * 4 + c) * S2_CB + t];
        } else {
            for (int a = 0; a < nr; a++)
                for (int c = 0; c < nc; c++)
                    dst[(size_t)sy * a * W + sy * c] = o[(a * 4 + c) * S2_CB + t];
        }
        if (++tx == TW) {
            tx = 0;
            if (++ty == p->th) ty = 0, j++;
        }
    }
}

/* Output tiles A^T m A of M (Q matrices qs apart, rows of gc*P), rows
 * [r0, r1), into images: row r, sample j is out + (j*ostride + r)*H*W,
 * tiles placed as scatter_tiles says. Both 1-D passes run along S2_CB
 * tiles at a time (vectorized), then the tiles are scattered.
 * tmp: (4*9, S2_CB). */
static void output_tf(float *out, const float *Mb, size_t qs, int r0, int r1, int gc,
                      size_t ostride, int H, int W, int sy, int py, int px, const lg_conv_geom *g,
                      const s2_plan *p, float *tmp) {
    const size_t ld = (size_t)gc * p->P;
    float *restrict s = tmp, *restrict o = tmp + 4 * 5 * S2_CB;
    for (int r = r0; r < r1; r++) {
        const float *mo = Mb + (size_t)r * ld;
        for (size_t c0 = 0; c0 < ld; c0 += S2_CB) {
            int nb = ld - c0 < S2_CB ? (int)(ld - c0) : S2_CB;
            for (int b = 0; b < 5; b++) /* s[a*5 + b] = A^T along the tile's columns */
                for (int t = 0; t < nb; t++)
                    at5(mo + b * qs + c0 + t, 5 * qs, s + b * S2_CB + t, 5 * S2_CB);
            for (int a = 0; a < 4; a++) /* o[a*4 + c] = the same along its rows */
                for (int t = 0; t < nb; t++)
                    at5(s + a * 5 * S2_CB + t, S2_CB, o + a * 4 * S2_CB + t, S2_CB);
            float *img0 = out + (size_t)r * H * W;
            size_t ss = ostride * H * W;
            if (sy == 2) scatter_tiles(2, img0, ss, W, py, px, o, c0, nb, g, p);
            else scatter_tiles(1, img0, ss, W, py, px, o, c0, nb, g, p);
        }
    }
}

/* ---- the three passes ---- */

void lg_cpu_wino_s2_conv2d(float *y, const float *x, const float *w, const lg_conv_geom *g,
                           float *ws) {
    LG_ASSERT(lg_cpu_wino_s2_ok(g));
    s2_plan p;
    s2_plan_make(&p, g);
    const int C4 = 4 * g->c, OC = g->oc;
    const size_t us = p.us, xs = (size_t)g->c * g->h * g->w;
    const size_t ys = (size_t)OC * g->oh * g->ow;
    float *U = ws;
    if (p.split) { /* one chunk: transforms split by channel, the GEMMs by Q position */
        const size_t ld = (size_t)g->n * p.P, vq = lg_cpu_wino_qs((size_t)C4 * ld),
                     mq = lg_cpu_wino_qs((size_t)OC * ld);
        float *V = ws + p.u, *M = V + p.big;
#pragma omp parallel num_threads(p.T)
        {
            int t = omp_get_thread_num(), T = omp_get_num_threads(), a, b;
            float *tmp = M + p.small + (size_t)t * p.tmp;
            lg_cpu_part(OC, t, T, &a, &b);
            filter_fwd(U, us, w, g->c, a, b);
            lg_cpu_part(g->c, t, T, &a, &b);
            input_tf(V, x, g->n, a, b, g, &p, tmp);
#pragma omp barrier
            lg_cpu_part(S2_Q, t, T, &a, &b);
            for (int q = a; q < b; q++)
                cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, OC, (int)ld, C4, 1.0f,
                            U + q * us, C4, V + q * vq, (int)ld, 0.0f, M + q * mq, (int)ld);
#pragma omp barrier
            lg_cpu_part(OC, t, T, &a, &b);
            output_tf(y, M, mq, a, b, g->n, OC, g->oh, g->ow, 1, 0, 0, g, &p, tmp);
        }
        return;
    }
#pragma omp parallel num_threads(p.T)
    {
        int t = omp_get_thread_num(), T = omp_get_num_threads(), a, b;
        lg_cpu_part(OC, t, T, &a, &b);
        filter_fwd(U, us, w, g->c, a, b);
#pragma omp barrier
        float *V = ws + (size_t)p.T * p.u + (size_t)t * p.slot, *M = V + p.big, *tmp = M + p.small;
        lg_cpu_part(p.nchunk, t, T, &a, &b);
        for (int ch = a; ch < b; ch++) {
            int g0 = ch * p.G, gc = g->n - g0 < p.G ? g->n - g0 : p.G;
            size_t ld = (size_t)gc * p.P, vq = lg_cpu_wino_qs((size_t)C4 * ld),
                   mq = lg_cpu_wino_qs((size_t)OC * ld);
            input_tf(V, x + (size_t)g0 * xs, gc, 0, g->c, g, &p, tmp);
            /* M[q] (OC, ld) = U[q] (OC, 4C) V[q] (4C, ld) */
            for (int q = 0; q < S2_Q; q++)
                cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, OC, (int)ld, C4, 1.0f,
                            U + q * us, C4, V + q * vq, (int)ld, 0.0f, M + q * mq, (int)ld);
            output_tf(y + (size_t)g0 * ys, M, mq, 0, OC, gc, OC, g->oh, g->ow, 1, 0, 0, g, &p, tmp);
        }
    }
}

void lg_cpu_wino_s2_bwd_data(float *dx, const float *dy, const float *w, const lg_conv_geom *g,
                             float *ws) {
    LG_ASSERT(lg_cpu_wino_s2_ok(g));
    s2_plan p;
    s2_plan_make(&p, g);
    const int C = g->c, OC = g->oc;
    const size_t us = p.us, xs = (size_t)C * g->h * g->w;
    const size_t ys = (size_t)OC * g->oh * g->ow;
    float *U = ws; /* (Q, 4, C, OC) */
    if (p.split) {
        /* one chunk: dy's tiles at the four shifts into V (4, Q, OC, ld), split
         * by channel; the 100 GEMMs (phase, Q position) into M (Q, 4C, ld) split
         * between the threads; then the output by channel */
        const size_t ld = (size_t)g->n * p.P, vq = lg_cpu_wino_qs((size_t)OC * ld),
                     mq = lg_cpu_wino_qs((size_t)4 * C * ld);
        float *M = ws + p.u, *V = M + p.big;
#pragma omp parallel num_threads(p.T)
        {
            int t = omp_get_thread_num(), T = omp_get_num_threads(), a, b;
            float *tmp = V + p.small + (size_t)t * p.tmp;
            lg_cpu_part(C, t, T, &a, &b);
            filter_bwd(U, us, w, C, OC, a, b);
            lg_cpu_part(OC, t, T, &a, &b);
            dy4_tf(V, S2_Q * vq, dy, g->n, a, b, g, &p, tmp);
#pragma omp barrier
            lg_cpu_part(4 * S2_Q, t, T, &a, &b);
            for (int k = a; k < b; k++) {
                int ph = k / S2_Q, q = k % S2_Q;
                cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, C, (int)ld, OC, 1.0f,
                            U + q * us + (size_t)ph * C * OC, OC, V + (ph * S2_Q + q) * vq, (int)ld,
                            0.0f, M + q * mq + (size_t)ph * C * ld, (int)ld);
            }
#pragma omp barrier
            lg_cpu_part(C, t, T, &a, &b);
            for (int ph = 0; ph < 4; ph++)
                output_tf(dx, M + (size_t)ph * C * ld, mq, a, b, g->n, C, g->h, g->w, 2, ph >> 1,
                          ph & 1, g, &p, tmp);
        }
        return;
    }
#pragma omp parallel num_threads(p.T)
    {
        int t = omp_get_thread_num(), T = omp_get_num_threads(), a, b;
        lg_cpu_part(C, t, T, &a, &b);
        filter_bwd(U, us, w, C, OC, a, b);
#pragma omp barrier
        float *M = ws + (size_t)p.T * p.u + (size_t)t * p.slot, *V = M + p.big, *tmp = V + p.small;
        lg_cpu_part(p.nchunk, t, T, &a, &b);
        for (int ch = a; ch < b; ch++) {
            int g0 = ch * p.G, gc = g->n - g0 < p.G ? g->n - g0 : p.G;
            size_t ld = (size_t)gc * p.P, vq = lg_cpu_wino_qs((size_t)OC * ld),
                   mq = lg_cpu_wino_qs((size_t)C * ld);
            dy4_tf(V, S2_Q * vq, dy + (size_t)g0 * ys, gc, 0, OC, g, &p, tmp);
            for (int ph = 0; ph < 4; ph++) {
                int py = ph >> 1, px = ph & 1;
                /* M[q] (C, ld) = U[q][ph] (C, OC) V_ph[q] (OC, ld) */
                for (int q = 0; q < S2_Q; q++)
                    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, C, (int)ld, OC, 1.0f,
                                U + q * us + (size_t)ph * C * OC, OC, V + (ph * S2_Q + q) * vq,
                                (int)ld, 0.0f, M + q * mq, (int)ld);
                output_tf(dx + (size_t)g0 * xs, M, mq, 0, C, gc, C, g->h, g->w, 2, py, px, g, &p,
                          tmp);
            }
        }
    }
}

void lg_cpu_wino_s2_bwd_weight(float *dw, const float *x, const float *dy, const lg_conv_geom *g,
                               float *ws) {
    LG_ASSERT(lg_cpu_wino_s2_ok(g));
    s2_plan p;
    s2_plan_make(&p, g);
    const int C4 = 4 * g->c, OC = g->oc;
    const size_t us = p.us, xs = (size_t)g->c * g->h * g->w;
    const size_t ys = (size_t)OC * g->oh * g->ow;
    if (p.split) { /* one dU; the transforms split by channel, the GEMMs by Q position */
        const size_t ld = (size_t)g->n * p.P, vq = lg_cpu_wino_qs((size_t)C4 * ld),
                     zq = lg_cpu_wino_qs((size_t)OC * ld);
        float *V = ws + p.u, *Z = V + p.big;
#pragma omp parallel num_threads(p.T)
        {
            int t = omp_get_thread_num(), T = omp_get_num_threads(), a, b;
            float *tmp = Z + p.small + (size_t)t * p.tmp;
            lg_cpu_part(g->c, t, T, &a, &b);
            input_tf(V, x, g->n, a, b, g, &p, tmp);
            lg_cpu_part(OC, t, T, &a, &b);
            dy_tf(Z, dy, g->n, a, b, g, &p, tmp);
#pragma omp barrier
            lg_cpu_part(S2_Q, t, T, &a, &b);
            for (int q = a; q < b; q++)
                cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, OC, C4, (int)ld, 1.0f,
                            Z + q * zq, (int)ld, V + q * vq, (int)ld, 0.0f, ws + q * us, C4);
#pragma omp barrier
            lg_cpu_part(OC, t, T, &a, &b);
            filter_adj(dw, ws, us, g->c, a, b);
        }
        return;
    }
#pragma omp parallel num_threads(p.T)
    {
        int t = omp_get_thread_num(), T = omp_get_num_threads(), a, b;
        float *acc = ws + (size_t)t * p.u; /* (Q, OC, 4C) */
        float *V = ws + (size_t)p.T * p.u + (size_t)t * p.slot, *Z = V + p.big, *tmp = Z + p.small;
        lg_cpu_part(p.nchunk, t, T, &a, &b);
        if (a == b) memset(acc, 0, sizeof(float) * S2_Q * us);
        for (int ch = a; ch < b; ch++) {
            int g0 = ch * p.G, gc = g->n - g0 < p.G ? g->n - g0 : p.G;
            size_t ld = (size_t)gc * p.P, vq = lg_cpu_wino_qs((size_t)C4 * ld),
                   zq = lg_cpu_wino_qs((size_t)OC * ld);
            input_tf(V, x + (size_t)g0 * xs, gc, 0, g->c, g, &p, tmp);
            dy_tf(Z, dy + (size_t)g0 * ys, gc, 0, OC, g, &p, tmp);
            /* dU[q] (OC, 4C) += Z[q] (OC, ld) V[q]^T (ld, 4C) */
            for (int q = 0; q < S2_Q; q++)
                cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, OC, C4, (int)ld, 1.0f,
                            Z + q * zq, (int)ld, V + q * vq, (int)ld, ch == a ? 0.0f : 1.0f,
                            acc + q * us, C4);
        }
#pragma omp barrier
        /* the partials summed in thread order into thread 0's, rows of o split */
        lg_cpu_part(OC, t, T, &a, &b);
        for (int q = 0; q < S2_Q; q++)
            for (size_t i = (size_t)a * C4; i < (size_t)b * C4; i++)
                for (int k = 1; k < T; k++) ws[q * us + i] += ws[(size_t)k * p.u + q * us + i];
        filter_adj(dw, ws, us, g->c, a, b);
    }
}
