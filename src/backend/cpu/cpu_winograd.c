/* Winograd F(m x m, 3x3), m = 2 or 4, for 3x3, stride-1, pad-1 convs on the CPU.
 *
 * Batched-GEMM form (Lavin & Gray 2015): the output is cut into m x m tiles,
 * each read from an a x a input tile (a = m + 2). For each of the Q = a^2
 * positions xi of the transformed tile,
 *   V[xi] (CIN, G*P)   = (B^T d B)[xi] for every input channel and tile,
 *   U[xi] (COUT, CIN)  = (G g G^T)[xi] for every filter,
 *   M[xi] (COUT, G*P)  = U[xi] V[xi]      (Q SGEMMs per chunk),
 * and the output tile is A^T m A. Multiply-adds per output per channel
 * pair: 16/4 = 4 for F(2x2) and 36/16 = 2.25 for F(4x4), against 9 for
 * im2col; F(4x4) rounds more (transform entries up to 8 and 1/24: about
 * 1e-5 of the largest output against 7e-7 for F(2x2) on 256-channel convs)
 * and wastes more of its tiles at the edge of small images. cpu_conv.c
 * chooses between them. The matrices are those of wino_tf.h (the CUDA
 * backend's), written here as 1-D passes that share subexpressions; F(2x2)
 * rounds exactly as before F(4x4) was added.
 *
 * conv2d_bwd_data of such a conv is the same conv on dy with the kernel
 * flipped and the channel roles swapped (COUT = C, CIN = OC), so both use
 * wino_run(). bwd_weight is the adjoint in the filter: Q SGEMMs
 * dU[xi] (OC, C) += Z[xi] V[xi]^T with Z = A dy A^T of each m x m output
 * tile, then dW = G^T dU G.
 *
 * Threads and chunks of samples follow cpu_conv.c: one OpenMP region,
 * OpenBLAS single-threaded inside it, every output written by one thread
 * with a fixed order of operations (bwd_weight: per-thread partial sums
 * added in thread order), so results are fixed for a thread count. With
 * few tiles (the plan's split) the threads share one chunk instead: each
 * phase split by channel or by Q position, bwd_weight one dU. All scratch
 * is in ws, sized by lg_cpu_wino_workspace(). */
#include <cblas.h>
#include <omp.h>
#include <string.h>

#include "backend/cpu/cpu_internal.h"
#include "lipgan/status.h"

#define WINO_COLS_MIN 256 /* narrowest GEMM (tiles of a chunk) worth running */
#define WINO_CB 64        /* tiles per block of output_tf */

int lg_cpu_wino_ok(const lg_conv_geom *g) {
    return g->kh == 3 && g->kw == 3 && g->stride == 1 && g->pad == 1 && g->oh == g->h &&
           g->ow == g->w && g->n > 0 && g->c > 0 && g->oc > 0 && g->h > 0 && g->w > 0;
}

typedef struct wino_plan {
    int M, A, Q;    /* output tile side (2 or 4), input tile side M + 2, A*A */
    int T, G, nchunk;
    int split;      /* 1: fewer samples than threads, or few tiles (wino_plan_make):
                     * one chunk of all of them, the T threads splitting each phase
                     * (channels, Q positions) */
    int th, tw;     /* tile rows, tile columns */
    size_t P;       /* tiles per sample */
    size_t us;      /* floats between U's Q matrices */
    size_t u;       /* floats of U (Q, OC, C); bwd_weight: one dU per thread */
    size_t v, m;    /* floats of a slot's V (Q, CIN, G*P) and M (Q, COUT, G*P) */
    size_t tmp;     /* floats of a slot's transform buffer */
    size_t slot;
} wino_plan;

/* cin/cout: channels of the conv actually run (swapped for bwd_data). The
 * workspace is the same both ways since v + m is symmetric in them. */
static void wino_plan_make(wino_plan *p, const lg_conv_geom *g, int M, int cin, int cout) {
    LG_ASSERT(M == 2 || M == 4);
    p->M = M;
    p->A = M + 2;
    p->Q = p->A * p->A;
    p->th = (g->h + M - 1) / M;
    p->tw = (g->w + M - 1) / M;
    p->P = (size_t)p->th * p->tw;
    /* Few tiles: every thread takes part in every phase of one chunk of all
     * the samples (the Q GEMMs split between them) rather than a chunk
     * each. With fewer samples than threads (one image: the Toeplitz power
     * iteration) a chunk each left threads idle, and a lone thread ran
     * OpenBLAS threaded on each small GEMM; with few tiles per chunk every
     * thread read all of U for GEMMs a few columns wide. Measured on 2
     * cores (OPENBLAS_CORETYPE=Haswell, conv2d, ms before -> after): n = 1
     * 128->128 32x32 3.92 -> 0.53, 256->256 32x32 7.25 -> 1.88, 256->256
     * 8x8 1.25 -> 0.61; 256->256 8x8 n 2 0.90 -> 0.63, n 64 7.85 -> 7.61.
     * From about 512 tiles (2 threads) a chunk each was faster again
     * (128->128 16x16 n 32: 4.30 against 4.53 split). Scaling that
     * threshold with the thread count is a guess: only 2 cores measured. */
    lg_cpu_chunks ch = lg_cpu_wino_chunks(g->n, p->P, WINO_COLS_MIN, &p->split);
    p->G = ch.G;
    p->nchunk = ch.nchunk;
    p->T = ch.T;
    size_t G = (size_t)ch.G, Q = (size_t)p->Q;
    p->us = lg_cpu_wino_qs((size_t)g->oc * g->c);
    p->u = Q * p->us;
    p->v = Q * lg_cpu_wino_qs((size_t)cin * G * p->P);
    p->m = Q * lg_cpu_wino_qs((size_t)cout * G * p->P);
    size_t rows = (size_t)2 * p->A * (M * p->tw + 2), otf = (size_t)M * (p->A + M) * WINO_CB;
    p->tmp = lg_cpu_round16(rows > otf ? rows : otf); /* tiles_tf_m's, output_tf_m's */
    p->slot = p->v + p->m + p->tmp;
}

/* ws: (T, u) [U of conv2d/bwd_data; T partial dU of bwd_weight], then T
 * slots; split: u, then V, M (or Z) and T transform buffers. */
size_t lg_cpu_wino_workspace(const lg_conv_geom *g, int m) {
    if (!lg_cpu_wino_ok(g)) return 0;
    wino_plan p;
    wino_plan_make(&p, g, m, g->c, g->oc);
    if (p.split) return p.u + p.v + p.m + (size_t)p.T * p.tmp;
    return (size_t)p.T * (p.u + p.slot);
}

/* ---- the transforms. The 1-D ones map in[k*is] to out[k*os]; the 2-D
 * ones apply them down the columns first, then along the rows. Each 2-D
 * one is written once for both tile sizes: an always-inlined body taking
 * M, called with M = 2 or 4 as a constant, so that the compiler unrolls
 * the loops over a tile (with M a variable, F(4x4) convs ran 4-10% slower
 * on 256 channels). ---- */

#define WINO_INLINE static inline __attribute__((always_inline))

/* a = M+2 values -> a: B^T (wino_tf.h, LG_W4_BT for M = 4) */
WINO_INLINE void bt_1d(int M, const float *in, size_t is, float *out, size_t os) {
    if (M == 2) {
        float d0 = in[0], d1 = in[is], d2 = in[2 * is], d3 = in[3 * is];
        out[0] = d0 - d2;
        out[os] = d1 + d2;
        out[2 * os] = d2 - d1;
        out[3 * os] = d1 - d3;
    } else {
        float d0 = in[0], d1 = in[is], d2 = in[2 * is], d3 = in[3 * is], d4 = in[4 * is],
              d5 = in[5 * is];
        float s12 = d4 - 4.0f * d2, s34 = d3 - 4.0f * d1; /* shared by rows 1, 2 */
        float e = d4 - d2, f = 2.0f * (d3 - d1);           /* shared by rows 3, 4 */
        out[0] = 4.0f * d0 - 5.0f * d2 + d4;
        out[os] = s12 + s34;
        out[2 * os] = s12 - s34;
        out[3 * os] = e + f;
        out[4 * os] = e - f;
        out[5 * os] = 4.0f * d1 - 5.0f * d3 + d5;
    }
}

/* a values -> M: A^T (M = 2: [1 1 1 0; 0 1 -1 -1]; M = 4: LG_W4_AT) */
WINO_INLINE void at_1d(int M, const float *in, size_t is, float *out, size_t os) {
    float m0 = in[0], m1 = in[is], m2 = in[2 * is], m3 = in[3 * is];
    if (M == 2) {
        out[0] = m0 + m1 + m2;
        out[os] = m1 - m2 - m3;
    } else {
        float m4 = in[4 * is], m5 = in[5 * is];
        float p12 = m1 + m2, d12 = m1 - m2, p34 = m3 + m4, d34 = m3 - m4;
        out[0] = m0 + p12 + p34;
        out[os] = d12 + 2.0f * d34;
        out[2 * os] = p12 + 4.0f * p34;
        out[3 * os] = d12 + 8.0f * d34 + m5;
    }
}

/* M values -> a: A (the transpose of at_1d's matrix) */
WINO_INLINE void a_1d(int M, const float *in, size_t is, float *out, size_t os) {
    if (M == 2) {
        float d0 = in[0], d1 = in[is];
        out[0] = d0;
        out[os] = d0 + d1;
        out[2 * os] = d0 - d1;
        out[3 * os] = -d1;
    } else {
        float g0 = in[0], g1 = in[is], g2 = in[2 * is], g3 = in[3 * is];
        float e = g0 + g2, f = g1 + g3, e4 = g0 + 4.0f * g2, f4 = 2.0f * g1 + 8.0f * g3;
        out[0] = g0;
        out[os] = e + f;
        out[2 * os] = e - f;
        out[3 * os] = e4 + f4;
        out[4 * os] = e4 - f4;
        out[5 * os] = g3;
    }
}

/* 3 values -> a: G (M = 2: [1 0 0; .5 .5 .5; .5 -.5 .5; 0 0 1]; M = 4: LG_W4_G) */
WINO_INLINE void g_1d(int M, const float *in, size_t is, float *out, size_t os) {
    float k0 = in[0], k1 = in[is], k2 = in[2 * is];
    if (M == 2) {
        out[0] = k0;
        out[os] = 0.5f * (k0 + k1 + k2);
        out[2 * os] = 0.5f * (k0 - k1 + k2);
        out[3 * os] = k2;
    } else {
        float e = k0 + k2, f = k0 * (1.0f / 24) + k2 * (1.0f / 6), h = k1 * (1.0f / 12);
        out[0] = 0.25f * k0;
        out[os] = -(1.0f / 6) * (e + k1);
        out[2 * os] = -(1.0f / 6) * (e - k1);
        out[3 * os] = f + h;
        out[4 * os] = f - h;
        out[5 * os] = k2;
    }
}

/* a values -> 3: G^T (the adjoint of g_1d) */
WINO_INLINE void gt_1d(int M, const float *in, size_t is, float *out, size_t os) {
    float u0 = in[0], u1 = in[is], u2 = in[2 * is], u3 = in[3 * is];
    if (M == 2) {
        out[0] = u0 + 0.5f * (u1 + u2);
        out[os] = 0.5f * (u1 - u2);
        out[2 * os] = 0.5f * (u1 + u2) + u3;
    } else {
        float u4 = in[4 * is], u5 = in[5 * is];
        float p12 = u1 + u2, p34 = u3 + u4;
        out[0] = 0.25f * u0 - (1.0f / 6) * p12 + (1.0f / 24) * p34;
        out[os] = (1.0f / 6) * (u2 - u1) + (1.0f / 12) * (u3 - u4);
        out[2 * os] = (1.0f / 6) * (p34 - p12) + u5;
    }
}

/* U (Q, cout, cin), matrices us floats apart, filters [r0, r1) x cin: G k
 * G^T of the kernel for (out r, in s), k = w[(r*C + s)*9] (bwd = 0) or
 * w[(s*C + r)*9] flipped (bwd = 1), w (OC, C, 3, 3), C = the weight's
 * input channels. */
WINO_INLINE void filter_tf_m(const int M, float *U, size_t us, const float *w, int C, int r0,
                             int r1, int cin, int bwd) {
    const int A = M + 2;
    for (int r = r0; r < r1; r++)
        for (int s = 0; s < cin; s++) {
            const float *src = bwd ? w + ((size_t)s * C + r) * 9 : w + ((size_t)r * C + s) * 9;
            float k[9], t[6 * 3]; /* t (A, 3) = G k */
            for (int e = 0; e < 9; e++) k[e] = bwd ? src[8 - e] : src[e];
            for (int j = 0; j < 3; j++) g_1d(M, k + j, 3, t + j, 3);
            float *u = U + (size_t)r * cin + s;
            for (int a = 0; a < A; a++) g_1d(M, t + a * 3, 1, u + (size_t)(a * A) * us, us);
        }
}

/* dw (OC, C, 3, 3) rows [o0, o1) = G^T dU G, dU (Q, OC, C), matrices us
 * floats apart. */
WINO_INLINE void filter_adj_m(const int M, float *dw, const float *dU, size_t us, int C, int o0,
                              int o1) {
    const int A = M + 2;
    for (size_t i = (size_t)o0 * C; i < (size_t)o1 * C; i++) {
        float t[3 * 6]; /* (3, A) = G^T u */
        for (int b = 0; b < A; b++) gt_1d(M, dU + b * us + i, A * us, t + b, A);
        for (int a = 0; a < 3; a++) gt_1d(M, t + a * A, 1, dw + i * 9 + a * 3, 1);
    }
}

static void filter_tf(int M, float *U, size_t us, const float *w, int C, int r0, int r1, int cin,
                      int bwd) {
    if (M == 4) filter_tf_m(4, U, us, w, C, r0, r1, cin, bwd);
    else filter_tf_m(2, U, us, w, C, r0, r1, cin, bwd);
}

static void filter_adj(int M, float *dw, const float *dU, size_t us, int C, int o0, int o1) {
    if (M == 4) filter_adj_m(4, dw, dU, us, C, o0, o1);
    else filter_adj_m(2, dw, dU, us, C, o0, o1);
}

/* Copies image row iy of xc (H, W) into dk (pw) at offset off, zero
 * elsewhere (a zero row when iy is outside the image). */
static void load_row(float *dk, const float *xc, int iy, int H, int W, int off, int pw) {
    if (iy < 0 || iy >= H) {
        memset(dk, 0, sizeof(float) * pw);
        return;
    }
    for (int i = 0; i < off; i++) dk[i] = 0.0f;
    memcpy(dk + off, xc + (size_t)iy * W, sizeof(float) * W);
    for (int i = W + off; i < pw; i++) dk[i] = 0.0f;
}

/* V (Q, CH, gc*P) = F d F^T of every tile of the gc samples x (gc, CH, H, W),
 * sample j in columns [j*P, j*P+P): the input transform (grad = 0: F = B^T,
 * a x a tiles read at (M*ty - 1, M*tx - 1)) or bwd_weight's transform of
 * dy (grad = 1: F = A, M x M tiles at (M*ty, M*tx)), zero past the edge.
 * Channel by channel, so that each of the Q rows written is one run of
 * gc*P floats rather than gc runs of P floats far apart. Per tile row: its
 * rows of x, zero padded, into d; F down the columns (vectorized) into r;
 * then F along the rows, tile by tile. (Tiles gathered into columns, so
 * that this pass vectorizes too, ran 1.2x slower on 256->3 convs.)
 * tmp: (2A, pw), pw = M*TW + 2. */
WINO_INLINE void tiles_tf_m(const int M, const int grad, float *V, const float *x, int gc, int ch,
                            int c0, int c1, int H, int W, const wino_plan *p, float *tmp) {
    const int A = M + 2, TH = p->th, TW = p->tw, pw = M * TW + 2;
    const int n = grad ? M : A, off = grad ? 0 : 1; /* tile side read, its offset */
    const int nt = grad ? M * TW : pw;              /* columns of d transformed */
    float *d = tmp;          /* (n, pw) */
    float *r = tmp + A * pw; /* (A, pw) */
    const size_t ld = (size_t)gc * p->P, cs = lg_cpu_wino_qs((size_t)ch * ld); /* between the Q matrices */
    for (int c = c0; c < c1; c++)
        for (int j = 0; j < gc; j++) {
            const float *xc = x + ((size_t)j * ch + c) * H * W;
            for (int ty = 0; ty < TH; ty++) {
                for (int k = 0; k < n; k++)
                    load_row(d + k * pw, xc, M * ty - off + k, H, W, off, pw);
                for (int i = 0; i < nt; i++) {
                    if (grad) a_1d(M, d + i, pw, r + i, pw);
                    else bt_1d(M, d + i, pw, r + i, pw);
                }
                float *vb = V + c * ld + j * p->P + (size_t)ty * TW;
                for (int a = 0; a < A; a++) /* (a, b) of tile tx -> vb[(a*A + b)*cs + tx] */
                    for (int tx = 0; tx < TW; tx++) {
                        const float *in = r + a * pw + M * tx;
                        if (grad) a_1d(M, in, 1, vb + (size_t)(a * A) * cs + tx, cs);
                        else bt_1d(M, in, 1, vb + (size_t)(a * A) * cs + tx, cs);
                    }
            }
        }
}

/* channels [c0, c1) of the cin */
static void input_tf(float *V, const float *x, int gc, int cin, int c0, int c1, int H, int W,
                     const wino_plan *p, float *tmp) {
    if (p->M == 4) tiles_tf_m(4, 0, V, x, gc, cin, c0, c1, H, W, p, tmp);
    else tiles_tf_m(2, 0, V, x, gc, cin, c0, c1, H, W, p, tmp);
}

static void grad_tf(float *Z, const float *dy, int gc, int oc, int c0, int c1, int H, int W,
                    const wino_plan *p, float *tmp) {
    if (p->M == 4) tiles_tf_m(4, 1, Z, dy, gc, oc, c0, c1, H, W, p, tmp);
    else tiles_tf_m(2, 1, Z, dy, gc, oc, c0, c1, H, W, p, tmp);
}

/* y (gc, COUT, H, W) = A^T m A of the tiles of gc samples, m = M (Q, COUT,
 * gc*P) as tiles_tf_m lays it out; the part of a tile past the edge is
 * dropped. Channel by channel, as tiles_tf_m, WINO_CB tiles at a time:
 * both 1-D passes run along the tiles (vectorized), into s (M*A, CB) and
 * then o (M*M, CB), which are scattered into y (tile by tile, the Q loads
 * far apart were the slowest part of F(4x4)'s pass in a profile).
 * tmp: (M*(A+M), WINO_CB). */
WINO_INLINE void output_tf_m(const int M, float *y, const float *Mb, int gc, int cout, int o0,
                             int o1, int H, int W, const wino_plan *p, float *tmp) {
    const int A = M + 2, TW = p->tw;
    const size_t P = p->P, ld = (size_t)gc * P, cs = lg_cpu_wino_qs((size_t)cout * ld);
    float *s = tmp, *o = tmp + M * A * WINO_CB;
    for (int oc = o0; oc < o1; oc++) {
        const float *mo = Mb + oc * ld;
        for (size_t c0 = 0; c0 < ld; c0 += WINO_CB) {
            int nb = ld - c0 < WINO_CB ? (int)(ld - c0) : WINO_CB;
            for (int b = 0; b < A; b++) /* s[a*A + b] = A^T along the tile's columns */
                for (int t = 0; t < nb; t++)
                    at_1d(M, mo + b * cs + c0 + t, A * cs, s + b * WINO_CB + t, A * WINO_CB);
            for (int a = 0; a < M; a++) /* o[a*M + c] = the same along its rows */
                for (int t = 0; t < nb; t++)
                    at_1d(M, s + a * A * WINO_CB + t, WINO_CB, o + a * M * WINO_CB + t, WINO_CB);
            size_t j = (c0 / P), r = c0 % P; /* sample, tile in it */
            int ty = (int)(r / TW), tx = (int)(r % TW);
            for (int t = 0; t < nb; t++) {
                float *yt = y + ((size_t)j * cout + oc) * H * W + (size_t)M * ty * W + M * tx;
                int nr = H - M * ty < M ? H - M * ty : M, nc = W - M * tx < M ? W - M * tx : M;
                for (int a = 0; a < nr; a++)
                    for (int c = 0; c < nc; c++)
                        yt[(size_t)a * W + c] = o[(a * M + c) * WINO_CB + t];
                if (++tx == TW) {
                    tx = 0;
                    if (++ty == p->th) ty = 0, j++;
                }
            }
        }
    }
}

/* output channels [o0, o1) */
static void output_tf(float *y, const float *Mb, int gc, int cout, int o0, int o1, int H, int W,
                      const wino_plan *p, float *tmp) {
    if (p->M == 4) output_tf_m(4, y, Mb, gc, cout, o0, o1, H, W, p, tmp);
    else output_tf_m(2, y, Mb, gc, cout, o0, o1, H, W, p, tmp);
}

/* out (n, cout, H, W) = 3x3 pad-1 conv of in (n, cin, H, W). The kernel
 * (out r, in s) is w[(r*C + s)*9] (bwd = 0) or w[(s*C + r)*9] flipped
 * (bwd = 1), with w (OC, C, 3, 3) and C = g->c. */
static void wino_run(float *out, const float *in, const float *w, const lg_conv_geom *g, int M,
                     int cin, int cout, int bwd, float *ws) {
    wino_plan p;
    wino_plan_make(&p, g, M, cin, cout);
    const int H = g->h, W = g->w, C = g->c, Q = p.Q;
    const size_t ins = (size_t)cin * H * W, outs = (size_t)cout * H * W;
    float *U = ws; /* (Q, cout, cin), then the slots after T of them */
    const size_t us = p.us;
    if (p.split) { /* all samples in one chunk; each phase split over the threads */
        const size_t ld = (size_t)g->n * p.P;
        const size_t vq = lg_cpu_wino_qs((size_t)cin * ld), mq = lg_cpu_wino_qs((size_t)cout * ld);
        float *V = ws + p.u, *Mq = V + p.v;
#pragma omp parallel num_threads(p.T)
        {
            int t = omp_get_thread_num(), T = omp_get_num_threads(), a, b;
            float *tmp = Mq + p.m + (size_t)t * p.tmp;
            lg_cpu_part(cout, t, T, &a, &b);
            filter_tf(M, U, us, w, C, a, b, cin, bwd);
            lg_cpu_part(cin, t, T, &a, &b);
            input_tf(V, in, g->n, cin, a, b, H, W, &p, tmp);
#pragma omp barrier
            lg_cpu_part(Q, t, T, &a, &b);
            for (int q = a; q < b; q++)
                cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, cout, (int)ld, cin, 1.0f,
                            U + q * us, cin, V + q * vq, (int)ld, 0.0f, Mq + q * mq, (int)ld);
#pragma omp barrier
            lg_cpu_part(cout, t, T, &a, &b);
            output_tf(out, Mq, g->n, cout, a, b, H, W, &p, tmp);
        }
        return;
    }
#pragma omp parallel num_threads(p.T)
    {
        int t = omp_get_thread_num(), T = omp_get_num_threads();
        filter_tf(M, U, us, w, C, (int)((int64_t)cout * t / T), (int)((int64_t)cout * (t + 1) / T),
                  cin, bwd);
        /* U is complete after this */
#pragma omp barrier
        float *V = ws + (size_t)p.T * p.u + (size_t)t * p.slot, *Mq = V + p.v, *tmp = Mq + p.m;
        int c0 = (int)((int64_t)p.nchunk * t / T), c1 = (int)((int64_t)p.nchunk * (t + 1) / T);
        for (int ch = c0; ch < c1; ch++) {
            int g0 = ch * p.G, gc = g->n - g0 < p.G ? g->n - g0 : p.G;
            size_t ld = (size_t)gc * p.P;
            size_t vq = lg_cpu_wino_qs((size_t)cin * ld), mq = lg_cpu_wino_qs((size_t)cout * ld);
            input_tf(V, in + (size_t)g0 * ins, gc, cin, 0, cin, H, W, &p, tmp);
            /* M[q] (cout, ld) = U[q] (cout, cin) V[q] (cin, ld) */
            for (int q = 0; q < Q; q++)
                cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, cout, (int)ld, cin, 1.0f,
                            U + q * us, cin, V + q * vq, (int)ld, 0.0f, Mq + q * mq, (int)ld);
            output_tf(out + (size_t)g0 * outs, Mq, gc, cout, 0, cout, H, W, &p, tmp);
        }
    }
}

void lg_cpu_wino_conv2d(float *y, const float *x, const float *w, const lg_conv_geom *g, int m,
                        float *ws) {
    LG_ASSERT(lg_cpu_wino_ok(g));
    wino_run(y, x, w, g, m, g->c, g->oc, 0, ws);
}

void lg_cpu_wino_bwd_data(float *dx, const float *dy, const float *w, const lg_conv_geom *g, int m,
                          float *ws) {
    LG_ASSERT(lg_cpu_wino_ok(g));
    wino_run(dx, dy, w, g, m, g->oc, g->c, 1, ws);
}

/* dW = sum over samples and tiles of G^T [(A dy A^T) (.) (B^T x B)] G: each
 * thread sums its chunks into its own dU (Q, OC, C) with Q SGEMMs per chunk
 * (beta = 1 after its first), the partials are added in thread order, then
 * transformed back. Fixed for a thread count. */
void lg_cpu_wino_bwd_weight(float *dw, const float *x, const float *dy, const lg_conv_geom *g,
                            int m, float *ws) {
    LG_ASSERT(lg_cpu_wino_ok(g));
    wino_plan p;
    wino_plan_make(&p, g, m, g->c, g->oc);
    const int H = g->h, W = g->w, C = g->c, OC = g->oc, Q = p.Q;
    const size_t xs = (size_t)C * H * W, ys = (size_t)OC * H * W, us = p.us;
    if (p.split) { /* one dU; the transforms split by channel, the GEMMs by Q position */
        const size_t ld = (size_t)g->n * p.P;
        const size_t vq = lg_cpu_wino_qs((size_t)C * ld), zq = lg_cpu_wino_qs((size_t)OC * ld);
        float *V = ws + p.u, *Z = V + p.v;
#pragma omp parallel num_threads(p.T)
        {
            int t = omp_get_thread_num(), T = omp_get_num_threads(), a, b;
            float *tmp = Z + p.m + (size_t)t * p.tmp;
            lg_cpu_part(C, t, T, &a, &b);
            input_tf(V, x, g->n, C, a, b, H, W, &p, tmp);
            lg_cpu_part(OC, t, T, &a, &b);
            grad_tf(Z, dy, g->n, OC, a, b, H, W, &p, tmp);
#pragma omp barrier
            lg_cpu_part(Q, t, T, &a, &b);
            for (int q = a; q < b; q++)
                cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, OC, C, (int)ld, 1.0f,
                            Z + q * zq, (int)ld, V + q * vq, (int)ld, 0.0f, ws + q * us, C);
#pragma omp barrier
            lg_cpu_part(OC, t, T, &a, &b);
            filter_adj(m, dw, ws, us, C, a, b);
        }
        return;
    }
#pragma omp parallel num_threads(p.T)
    {
        int t = omp_get_thread_num(), T = omp_get_num_threads();
        float *acc = ws + (size_t)t * p.u; /* (Q, OC, C) */
        float *V = ws + (size_t)p.T * p.u + (size_t)t * p.slot, *Z = V + p.v, *tmp = Z + p.m;
        int c0 = (int)((int64_t)p.nchunk * t / T), c1 = (int)((int64_t)p.nchunk * (t + 1) / T);
        if (c0 == c1) memset(acc, 0, sizeof(float) * Q * us);
        for (int ch = c0; ch < c1; ch++) {
            int g0 = ch * p.G, gc = g->n - g0 < p.G ? g->n - g0 : p.G;
            size_t ld = (size_t)gc * p.P;
            size_t vq = lg_cpu_wino_qs((size_t)C * ld), zq = lg_cpu_wino_qs((size_t)OC * ld);
            input_tf(V, x + (size_t)g0 * xs, gc, C, 0, C, H, W, &p, tmp);
            grad_tf(Z, dy + (size_t)g0 * ys, gc, OC, 0, OC, H, W, &p, tmp);
            /* dU[q] (OC, C) += Z[q] (OC, ld) V[q]^T (ld, C) */
            for (int q = 0; q < Q; q++)
                cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, OC, C, (int)ld, 1.0f,
                            Z + q * zq, (int)ld, V + q * vq, (int)ld, ch == c0 ? 0.0f : 1.0f,
                            acc + q * us, C);
        }
#pragma omp barrier
        /* dW[o][c] = G^T (sum over threads of dU[.][o][c]) G, rows of o split over
         * threads; the partials are summed in thread order into thread 0's dU */
        int o0 = (int)((int64_t)OC * t / T), o1 = (int)((int64_t)OC * (t + 1) / T);
        for (int q = 0; q < Q; q++)
            for (size_t i = (size_t)o0 * C; i < (size_t)o1 * C; i++)
                for (int k = 1; k < T; k++) ws[q * us + i] += ws[(size_t)k * p.u + q * us + i];
        filter_adj(m, dw, ws, us, C, o0, o1);
    }
}
