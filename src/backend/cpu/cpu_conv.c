/* GEMM and 2-D convolution of the CPU backend.
 *
 * Convolutions are im2col + SGEMM (OpenBLAS). The batch is cut into chunks
 * of G samples whose column matrices sit side by side, (C*KH*KW, G*OH*OW),
 * so that small images (4x4, 8x8) still give GEMMs at least COLS_MIN
 * columns wide; for larger images G = 1 and the GEMM reads and writes the
 * tensors in place. A 1x1, stride-1, unpadded conv is a plain GEMM on the
 * input (no im2col) when G = 1.
 *
 * Threads: chunks are spread over the threads of one OpenMP region, each
 * thread running single-threaded SGEMMs on its own scratch (OpenBLAS's
 * OpenMP build does not spawn threads inside a parallel region). Measured
 * on 2 cores against the alternative (chunks of >= 2048 columns one after
 * the other, each GEMM threaded by OpenBLAS, im2col/col2im in parallel
 * loops), this was faster on every SN-GAN shape, by 1.1-1.6x on most and
 * up to 2x on 1x1 convs; COLS_MIN 256 beat 1024 on 8x8 and 16x16 images.
 *
 * bwd_weight sums over samples: each thread accumulates the chunks it owns
 * into its own partial dW with beta = 1 (one long GEMM, K = its samples'
 * columns; thread 0 directly into dw), then the partials are added in
 * thread order, so the result is fixed for a thread count.
 *
 * 3x3 stride-1 pad-1 convs with enough channels go to Winograd F(2x2,3x3)
 * or F(4x4,3x3) (cpu_winograd.c) for all three kernels, see wino_m(); 4x4
 * stride-2 pad-1 ones with enough samples to F(4x4,2x2) on their polyphase
 * form (cpu_wino_s2.c), see wino_s2_use(). */
#include <cblas.h>
#include <omp.h>
#include <string.h>

#include "backend/cpu/cpu_internal.h"

/* ---- GEMM ---- */

void lg_cpu_gemm(int ta, int tb, int m, int n, int k, float alpha, const float *a, int lda,
                 const float *b, int ldb, float beta, float *c, int ldc) {
    if (m <= 0 || n <= 0) return;
    if (k <= 0) { /* C = beta*C; beta == 0 overwrites (C may be garbage) */
        for (int i = 0; i < m; i++)
            for (int j = 0; j < n; j++)
                c[(size_t)i * ldc + j] = beta == 0.0f ? 0.0f : beta * c[(size_t)i * ldc + j];
        return;
    }
    cblas_sgemm(CblasRowMajor, ta ? CblasTrans : CblasNoTrans, tb ? CblasTrans : CblasNoTrans,
                m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
}

/* ---- plan ---- */

#define COLS_MIN 256 /* narrowest GEMM worth running (OpenBLAS is near peak above it) */

typedef struct conv_plan {
    int T;        /* work slots = threads used */
    int G;        /* samples per chunk */
    int nchunk;   /* ceil(n / G) */
    int direct;   /* 1x1, stride 1, pad 0: x (C, H*W) is its own column matrix */
    size_t ohw;   /* oh*ow */
    size_t ckk;   /* c*kh*kw */
    size_t col;   /* floats of a slot's column matrix (CKK, G*OHW), 0 if unused */
    size_t tmp;   /* floats of a slot's (OC, G*OHW) staging buffer, 0 if G == 1 */
    size_t slot;  /* floats per slot */
    size_t part;  /* floats of one partial dW (OC, CKK) */
} conv_plan;

static void conv_plan_make(conv_plan *p, const lg_conv_geom *g) {
    p->ohw = (size_t)g->oh * g->ow;
    p->ckk = (size_t)g->c * g->kh * g->kw;
    p->direct = g->kh == 1 && g->kw == 1 && g->stride == 1 && g->pad == 0;
    lg_cpu_chunks ch = lg_cpu_chunks_make(g->n, p->ohw, COLS_MIN);
    p->G = ch.G;
    p->nchunk = ch.nchunk;
    p->T = ch.T;
    size_t G = (size_t)ch.G;
    p->col = (p->direct && p->G == 1) ? 0 : lg_cpu_round16(p->ckk * G * p->ohw);
    p->tmp = p->G == 1 ? 0 : lg_cpu_round16((size_t)g->oc * G * p->ohw);
    p->slot = p->col + p->tmp;
    p->part = lg_cpu_round16((size_t)g->oc * p->ckk);
}

/* Winograd where it measured faster than im2col (single conv kernels,
 * OPENBLAS_CORETYPE=Haswell, 1 and 2 threads): conv2d and bwd_data 1.3-1.9x
 * on 128->128 (32x32, 16x16) and 256->256 (4x4 .. 32x32), 1.4-1.8x on
 * 256->3 at 32x32; bwd_weight 1.0-1.2x at 4x4 and 8x8, 1.5-1.9x above; but
 * all 2-3x slower on 3->128 (GEMMs with K or M = 3). Narrower convs were
 * no better when first measured; after later changes to the transforms
 * (2 threads, n 64/128, im2col / Winograd, forward, bwd_data, bwd_weight)
 * F(4x4) gains 2.3x 2.1x 2.1x on 32->32 16x16, 1.6x 1.6x 1.6x on 16->16
 * 32x32, 2.5x 2.3x 2.5x on 64->32 16x16, and F(2x2) 1.7x 1.8x 1.7x on
 * 64->3 32x32 (the standard CNN's last conv), 2.1x 1.8x 1.8x on 32->3: so
 * 16 channels on both sides, or 32 inputs.
 *
 * F(4x4,3x3) rather than F(2x2,3x3) where both channel counts are >= 16 and
 * its tiles need fewer products (36 per 4x4 tile against 16 per 2x2 tile;
 * ties go to F(2x2), which rounds less): measured 1.3-1.7x faster in all
 * three passes on 256->256 (4x4 .. 32x32) and 128->128 (8x8 .. 32x32), 1
 * and 2 threads, where the GEMMs dominate (bench/RESULTS.md), and 1.2-1.5x
 * on 32->32, 16->16, 64->32 and 32->64 (16x16, 32x32). On 256->3
 * the transforms dominate and F(4x4) was slower (forward and bwd_weight
 * 0.88-0.94x), so convs with a narrow side stay F(2x2); so do 1x1 and 2x2
 * images, where one 6x6 tile is mostly padding.
 *
 * Returns 0 (im2col) or m: Winograd F(m x m, 3x3) for all three passes. */
static int wino_m(const lg_conv_geom *g) {
    if (lg_cpu_wino_off_ || !lg_cpu_wino_ok(g) || !((g->c >= 16 && g->oc >= 16) || g->c >= 32))
        return 0;
    int64_t t2 = (int64_t)((g->h + 1) / 2) * ((g->w + 1) / 2);
    int64_t t4 = (int64_t)((g->h + 3) / 4) * ((g->w + 3) / 4);
    int m = g->c >= 16 && g->oc >= 16 && 36 * t4 < 16 * t2 ? 4 : 2;
    /* Under 8 tiles in all, the Q GEMMs are nearly matrix-vector products
     * bound by reading U, Q/9 times the weight's bytes: with large weights
     * im2col wins (256->512 at 4x4, n 1/2/4: 0.65/0.44/0.76 ms against
     * 1.20/1.21/1.40; n 8 even, n 16 Winograd 1.82 against 2.80), with
     * 256x256 or smaller ones Winograd still does (256->256 8x8 n 1: 0.61
     * against 0.77). */
    int64_t tiles = (int64_t)g->n * (m == 4 ? t4 : t2);
    if (tiles < 8 && (int64_t)g->c * g->oc > 65536) return 0;
    return m;
}

/* 4x4 stride-2 pad-1 convs (the standard CNN's) go to Winograd F(4x4,2x2)
 * on their polyphase form (cpu_wino_s2.c) where it measured faster than
 * im2col (OPENBLAS_CORETYPE=Haswell, 2 threads, im2col / Winograd time,
 * forward, bwd_data, bwd_weight): n128 64->64 32x32 1.83x 1.58x 1.80x,
 * 128->128 16x16 1.90x 1.50x 1.79x, 256->256 8x8 1.97x 1.69x 2.12x; n64
 * 256->512 8x8 1.68x 1.36x 2.03x; n1 64->64 32x32 (16 tiles) 1.35x 1.10x
 * 1.52x. Every call transforms the weights and its GEMMs read all of U (25
 * x OC x 4C), so it loses with few tiles in all and large weights: n16
 * 256->512 8x8 (16 tiles, U 52 MB) 0.77-1.40x, n8 (8 tiles) 0.53-1.04x,
 * n1 256->256 8x8 (1 tile) 0.13-0.21x, while n4 128->128 16x16 (16 tiles,
 * U 6.5 MB) still gains 1.15-1.62x. Narrow outputs are fine (n64 64->3
 * 32x32: 1.5-1.9x). It loses with 3 input channels
 * (bwd_data's GEMMs 3 rows tall: 0.26x) and where the 4x4 tiles are mostly
 * past the edge (n128 512->512 4x4, 2x2 outputs: 0.57-0.69x). */
static int wino_s2_use(const lg_conv_geom *g) {
    if (lg_cpu_wino_off_ || !lg_cpu_wino_s2_ok(g) || g->c < 16) return 0;
    int64_t P = (int64_t)((g->oh + 3) / 4) * ((g->ow + 3) / 4);
    int64_t tiles = (int64_t)g->n * P, u_bytes = (int64_t)25 * g->oc * 4 * g->c * 4;
    if ((int64_t)g->oh * g->ow * 2 < 16 * P) return 0; /* under half of the tiles used */
    return tiles >= 32 || (tiles >= 16 && u_bytes <= ((int64_t)16 << 20));
}

/* The one decision the three passes, the workspace and the profile's label
 * all take, so that they cannot disagree. */
lg_cpu_conv_algo lg_cpu_conv_algo_of(const lg_conv_geom *g) {
    int m = wino_m(g);
    if (m) return m == 4 ? LG_CPU_CONV_WINO4 : LG_CPU_CONV_WINO2;
    return wino_s2_use(g) ? LG_CPU_CONV_WINO_S2 : LG_CPU_CONV_IM2COL;
}

/* The tile size m of Winograd F(m x m, 3x3), 0 for the other algorithms. */
static int algo_m(lg_cpu_conv_algo a) {
    return a == LG_CPU_CONV_WINO4 ? 4 : a == LG_CPU_CONV_WINO2 ? 2 : 0;
}

const char *lg_cpu_conv_algo_name(lg_cpu_conv_algo a) {
    switch (a) {
    case LG_CPU_CONV_WINO2: return "F(2,3)";
    case LG_CPU_CONV_WINO4: return "F(4,3)";
    case LG_CPU_CONV_WINO_S2: return "F(4,2)s2";
    default: return "im2col";
    }
}

size_t lg_cpu_conv_workspace(const lg_conv_geom *g) {
    conv_plan p;
    conv_plan_make(&p, g);
    size_t ws = (size_t)p.T * p.slot + (size_t)(p.T - 1) * p.part;
    lg_cpu_conv_algo a = lg_cpu_conv_algo_of(g);
    size_t wn = 0;
    if (algo_m(a)) wn = lg_cpu_wino_workspace(g, algo_m(a));
    else if (a == LG_CPU_CONV_WINO_S2) wn = lg_cpu_wino_s2_workspace(g);
    if (wn > ws) ws = wn;
    return ws ? ws : 1;
}

/* ---- im2col / col2im ---- */

/* Output columns [lo, hi) of a kernel column kj read inside the image:
 * ix = ox*S - P + kj in [0, W). */
static void valid_cols(const lg_conv_geom *g, int kj, int *lo, int *hi) {
    int S = g->stride, P = g->pad, W = g->w;
    int l = P - kj <= 0 ? 0 : (P - kj + S - 1) / S;
    int num = W - 1 + P - kj;
    int h = num < 0 ? 0 : num / S + 1;
    if (h > g->ow) h = g->ow;
    if (h < l) h = l;
    *lo = l;
    *hi = h;
}

/* col (C*KH*KW, ldc), first OH*OW columns = patches of one sample x (C, H, W),
 * the rows of channels [c0, c1).
 * (memcpy/memset measured faster than plain loops here, even for 4-float rows.) */
static void im2col_ch(float *col, size_t ldc, const float *x, const lg_conv_geom *g, int c0,
                      int c1) {
    const int H = g->h, W = g->w, KH = g->kh, KW = g->kw;
    const int S = g->stride, P = g->pad, OH = g->oh, OW = g->ow;
    for (int c = c0; c < c1; c++) {
        const float *xc = x + (size_t)c * H * W;
        for (int ki = 0; ki < KH; ki++) {
            for (int kj = 0; kj < KW; kj++) {
                float *dst = col + ((size_t)(c * KH + ki) * KW + kj) * ldc;
                int lo, hi, off = kj - P; /* ix = ox*S + off */
                valid_cols(g, kj, &lo, &hi);
                for (int oy = 0; oy < OH; oy++) {
                    float *d = dst + (size_t)oy * OW;
                    int iy = oy * S - P + ki;
                    if (iy < 0 || iy >= H) {
                        memset(d, 0, sizeof(float) * OW);
                        continue;
                    }
                    const float *src = xc + (size_t)iy * W;
                    for (int ox = 0; ox < lo; ox++) d[ox] = 0.0f;
                    if (S == 1) {
                        if (hi > lo) memcpy(d + lo, src + lo + off, sizeof(float) * (hi - lo));
                    } else {
                        for (int ox = lo; ox < hi; ox++) d[ox] = src[ox * S + off];
                    }
                    for (int ox = hi; ox < OW; ox++) d[ox] = 0.0f;
                }
            }
        }
    }
}

static void im2col(float *col, size_t ldc, const float *x, const lg_conv_geom *g) {
    im2col_ch(col, ldc, x, g, 0, g->c);
}

/* dx (C, H, W) channels [c0, c1) = adjoint of im2col applied to their rows
 * of col (C*KH*KW, ldc). */
static void col2im_ch(float *dx, const float *col, size_t ldc, const lg_conv_geom *g, int c0,
                      int c1) {
    const int H = g->h, W = g->w, KH = g->kh, KW = g->kw;
    const int S = g->stride, P = g->pad, OH = g->oh, OW = g->ow;
    if (c1 > c0) memset(dx + (size_t)c0 * H * W, 0, sizeof(float) * (size_t)(c1 - c0) * H * W);
    for (int c = c0; c < c1; c++) {
        float *xc = dx + (size_t)c * H * W;
        for (int ki = 0; ki < KH; ki++) {
            for (int kj = 0; kj < KW; kj++) {
                const float *src = col + ((size_t)(c * KH + ki) * KW + kj) * ldc;
                int lo, hi, off = kj - P; /* ix = ox*S + off */
                valid_cols(g, kj, &lo, &hi);
                for (int oy = 0; oy < OH; oy++) {
                    int iy = oy * S - P + ki;
                    if (iy < 0 || iy >= H) continue;
                    const float *s = src + (size_t)oy * OW;
                    float *d = xc + (size_t)iy * W;
                    if (S == 1) {
                        for (int ox = lo; ox < hi; ox++) d[ox + off] += s[ox];
                    } else {
                        for (int ox = lo; ox < hi; ox++) d[ox * S + off] += s[ox];
                    }
                }
            }
        }
    }
}

static void col2im(float *dx, const float *col, size_t ldc, const lg_conv_geom *g) {
    col2im_ch(dx, col, ldc, g, 0, g->c);
}

/* Copies samples [g0, g0+gc) of t (n, rows, ohw) into m (rows, gc*ohw) or back. */
static void gather(float *m, const float *t, int gc, size_t rows, size_t ohw) {
    size_t ld = (size_t)gc * ohw;
    for (int j = 0; j < gc; j++)
        for (size_t r = 0; r < rows; r++)
            memcpy(m + r * ld + j * ohw, t + ((size_t)j * rows + r) * ohw, sizeof(float) * ohw);
}

static void scatter(float *t, const float *m, int gc, size_t rows, size_t ohw) {
    size_t ld = (size_t)gc * ohw;
    for (int j = 0; j < gc; j++)
        for (size_t r = 0; r < rows; r++)
            memcpy(t + ((size_t)j * rows + r) * ohw, m + r * ld + j * ohw, sizeof(float) * ohw);
}

/* The column matrix of chunk samples [g0, g0+gc): a pointer into x when it
 * already is one (direct, gc == 1), else built in col. *ld gets its row stride. */
static const float *chunk_cols(const conv_plan *p, float *col, const float *x, int g0, int gc,
                               const lg_conv_geom *g, size_t *ld) {
    size_t chw = (size_t)g->c * g->h * g->w;
    if (p->direct && gc == 1) {
        *ld = p->ohw;
        return x + (size_t)g0 * chw;
    }
    *ld = (size_t)gc * p->ohw;
    for (int j = 0; j < gc; j++) im2col(col + (size_t)j * p->ohw, *ld, x + (size_t)(g0 + j) * chw, g);
    return col;
}

/* Chunks [*c0, *c1) of thread t out of T (contiguous, fixed for T). */
static void thread_chunks(const conv_plan *p, int t, int T, int *c0, int *c1) {
    *c0 = (int)((int64_t)p->nchunk * t / T);
    *c1 = (int)((int64_t)p->nchunk * (t + 1) / T);
}

/* ---- convolution ----
 * Each pass runs its chunks in one OpenMP region of p.T threads (one chunk
 * on one thread: on the calling thread). One image on several threads
 * (the Toeplitz power iteration) is the one_* functions instead: every
 * thread takes part of each phase, OpenBLAS single-threaded inside the
 * region. A lone chunk in a region of one thread had OpenBLAS open a
 * nested team while the pool's other thread still spun from the last
 * region; the two competed for the cores, and such a conv took 3.2 ms in
 * a training step against 0.3 ms alone (0.39 ms with
 * OMP_WAIT_POLICY=passive). OpenBLAS threaded on the pool, outside any
 * region, was no better in the step and 1.6x slower alone. */

/* One pass of a convolution: out = y, dx or dw; in = x (conv2d,
 * bwd_weight) or dy (bwd_data); in2 = w (conv2d, bwd_data) or dy
 * (bwd_weight); parts: bwd_weight's partial dW of threads 1.. */
typedef struct conv_job {
    const conv_plan *p;
    const lg_conv_geom *g;
    float *out, *ws, *parts;
    const float *in, *in2;
} conv_job;
typedef void (*conv_part_fn)(const conv_job *j, int t, int T);

/* One image's column matrix on thread t of T: im2col split by channel into
 * ws, then the region's barrier; a direct conv's is x itself. */
static const float *one_cols(const conv_job *j, int t, int T) {
    if (j->p->direct) return j->in;
    int a, b;
    lg_cpu_part(j->g->c, t, T, &a, &b);
    im2col_ch(j->ws, j->p->ohw, j->in, j->g, a, b);
#pragma omp barrier
    return j->ws;
}

/* One image on thread t of T (inside their region; barriers are the
 * region's): the column matrix, then rows of Y = W col split by output
 * channel. */
static void one_fwd(const conv_job *j, int t, int T) {
    const conv_plan *p = j->p;
    const float *w = j->in2, *B = one_cols(j, t, T);
    float *y = j->out;
    const size_t ld = p->ohw;
    int a, b;
    lg_cpu_part(j->g->oc, t, T, &a, &b);
    if (b > a)
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, b - a, (int)ld, (int)p->ckk, 1.0f,
                    w + (size_t)a * p->ckk, (int)p->ckk, B, (int)ld, 0.0f, y + (size_t)a * ld,
                    (int)ld);
}

/* One image: input channels [a, b) per thread, their rows of dcol = W^T dY
 * and their col2im (no barrier: nothing is shared). */
static void one_bwd_data(const conv_job *j, int t, int T) {
    const conv_plan *p = j->p;
    const lg_conv_geom *g = j->g;
    float *dx = j->out, *ws = j->ws;
    const float *dy = j->in, *w = j->in2;
    const size_t ld = p->ohw, kk = (size_t)g->kh * g->kw;
    int a, b;
    lg_cpu_part(g->c, t, T, &a, &b);
    if (b <= a) return;
    float *dst = p->direct ? dx + (size_t)a * ld : ws + (size_t)a * kk * ld;
    cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, (int)((size_t)(b - a) * kk), (int)ld,
                g->oc, 1.0f, w + (size_t)a * kk, (int)p->ckk, dy, (int)ld, 0.0f, dst, (int)ld);
    if (!p->direct) col2im_ch(dx, ws, ld, g, a, b);
}

/* One image: the column matrix, then rows of dW = dY col^T split by
 * output channel (no partial sums: each row is one thread's). */
static void one_bwd_weight(const conv_job *j, int t, int T) {
    const conv_plan *p = j->p;
    const float *dy = j->in2, *B = one_cols(j, t, T);
    float *dw = j->out;
    const size_t ld = p->ohw;
    int a, b;
    lg_cpu_part(j->g->oc, t, T, &a, &b);
    if (b > a)
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, b - a, (int)p->ckk, (int)ld, 1.0f,
                    dy + (size_t)a * ld, (int)ld, B, (int)ld, 0.0f, dw + (size_t)a * p->ckk,
                    (int)p->ckk);
}

/* Thread t of T: conv2d's chunks thread_chunks gives it. */
static void fwd_part(const conv_job *j, int t, int T) {
    const conv_plan *p = j->p;
    const lg_conv_geom *g = j->g;
    float *y = j->out, *ws = j->ws;
    const float *x = j->in, *w = j->in2;
    const size_t oc = (size_t)g->oc, yss = oc * p->ohw;
    float *col = ws + (size_t)t * p->slot, *tmp = col + p->col;
    int c0, c1;
    thread_chunks(p, t, T, &c0, &c1);
    for (int ch = c0; ch < c1; ch++) {
        int g0 = ch * p->G, gc = g->n - g0 < p->G ? g->n - g0 : p->G;
        size_t ld;
        const float *B = chunk_cols(p, col, x, g0, gc, g, &ld);
        /* Y (OC, gc*OHW) = W (OC, CKK) B (CKK, gc*OHW) */
        float *dst = gc == 1 ? y + (size_t)g0 * yss : tmp;
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)oc, (int)ld, (int)p->ckk,
                    1.0f, w, (int)p->ckk, B, (int)ld, 0.0f, dst, (int)ld);
        if (gc > 1) scatter(y + (size_t)g0 * yss, tmp, gc, oc, p->ohw);
    }
}

/* Thread t of T: conv2d_bwd_data's chunks. */
static void bwd_data_part(const conv_job *j, int t, int T) {
    const conv_plan *p = j->p;
    const lg_conv_geom *g = j->g;
    float *dx = j->out, *ws = j->ws;
    const float *dy = j->in, *w = j->in2;
    const size_t oc = (size_t)g->oc, yss = oc * p->ohw, chw = (size_t)g->c * g->h * g->w;
    float *col = ws + (size_t)t * p->slot, *tmp = col + p->col;
    int c0, c1;
    thread_chunks(p, t, T, &c0, &c1);
    for (int ch = c0; ch < c1; ch++) {
        int g0 = ch * p->G, gc = g->n - g0 < p->G ? g->n - g0 : p->G;
        size_t ld = (size_t)gc * p->ohw;
        const float *A = dy + (size_t)g0 * yss; /* dY (OC, gc*OHW) */
        if (gc > 1) {
            gather(tmp, A, gc, oc, p->ohw);
            A = tmp;
        }
        /* dcol (CKK, gc*OHW) = W^T (CKK, OC) dY; a direct conv writes dx itself */
        int in_place = p->direct && gc == 1;
        float *dcol = in_place ? dx + (size_t)g0 * chw : col;
        cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, (int)p->ckk, (int)ld, (int)oc, 1.0f,
                    w, (int)p->ckk, A, (int)ld, 0.0f, dcol, (int)ld);
        if (in_place) continue;
        for (int i = 0; i < gc; i++) {
            float *dxi = dx + (size_t)(g0 + i) * chw;
            if (p->direct) {
                for (int c = 0; c < g->c; c++)
                    memcpy(dxi + (size_t)c * p->ohw, col + (size_t)c * ld + i * p->ohw,
                           sizeof(float) * p->ohw);
            } else {
                col2im(dxi, col + (size_t)i * p->ohw, ld, g);
            }
        }
    }
}

/* Thread t of T: conv2d_bwd_weight's chunks, summed into dw (t = 0) or
 * its partial in parts. */
static void bwd_weight_part(const conv_job *j, int t, int T) {
    const conv_plan *p = j->p;
    const lg_conv_geom *g = j->g;
    float *dw = j->out, *ws = j->ws, *parts = j->parts;
    const float *x = j->in, *dy = j->in2;
    const size_t oc = (size_t)g->oc, yss = oc * p->ohw, nw = oc * p->ckk;
    float *col = ws + (size_t)t * p->slot, *tmp = col + p->col;
    float *acc = t == 0 ? dw : parts + (size_t)(t - 1) * p->part;
    int c0, c1;
    thread_chunks(p, t, T, &c0, &c1);
    if (c0 == c1) memset(acc, 0, sizeof(float) * nw);
    for (int ch = c0; ch < c1; ch++) {
        int g0 = ch * p->G, gc = g->n - g0 < p->G ? g->n - g0 : p->G;
        size_t ld;
        const float *B = chunk_cols(p, col, x, g0, gc, g, &ld);
        const float *A = dy + (size_t)g0 * yss;
        if (gc > 1) {
            gather(tmp, A, gc, oc, p->ohw);
            A = tmp;
        }
        /* dW (OC, CKK) += dY (OC, gc*OHW) B^T (gc*OHW, CKK) */
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)oc, (int)p->ckk, (int)ld, 1.0f,
                    A, (int)ld, B, (int)ld, ch == c0 ? 0.0f : 1.0f, acc, (int)p->ckk);
    }
}

/* Runs a pass over the threads: one image on more than one thread through
 * one(j, t, T); else part(j, t, T) in a region of p->T threads, or on the
 * calling thread when that is one. Returns how many threads ran part
 * (bwd_weight adds the partial sums of threads 1..); 1 after one(). */
static int conv_run(const conv_job *j, conv_part_fn one, conv_part_fn part) {
    if (j->g->n == 1 && lg_cpu_nthreads() > 1) {
#pragma omp parallel num_threads(lg_cpu_nthreads())
        one(j, omp_get_thread_num(), omp_get_num_threads());
        return 1;
    }
    if (j->p->T == 1) {
        part(j, 0, 1);
        return 1;
    }
    int used = j->p->T;
#pragma omp parallel num_threads(j->p->T)
    {
        if (omp_get_thread_num() == 0) used = omp_get_num_threads(); /* read after the region */
        part(j, omp_get_thread_num(), omp_get_num_threads());
    }
    return used;
}

void lg_cpu_conv2d(float *y, const float *x, const float *w, const lg_conv_geom *g, float *ws) {
    lg_cpu_conv_algo a = lg_cpu_conv_algo_of(g);
    if (algo_m(a)) {
        lg_cpu_wino_conv2d(y, x, w, g, algo_m(a), ws);
        return;
    }
    if (a == LG_CPU_CONV_WINO_S2) {
        lg_cpu_wino_s2_conv2d(y, x, w, g, ws);
        return;
    }
    conv_plan p;
    conv_plan_make(&p, g);
    const size_t oc = (size_t)g->oc, yss = oc * p.ohw; /* y sample stride */
    if (g->n == 0 || yss == 0) return;
    if (p.ckk == 0) { /* no input channels: an empty sum */
        memset(y, 0, sizeof(float) * g->n * yss);
        return;
    }
    conv_job j = {&p, g, y, ws, NULL, x, w};
    conv_run(&j, one_fwd, fwd_part);
}

void lg_cpu_conv2d_bwd_data(float *dx, const float *dy, const float *w, const lg_conv_geom *g,
                            float *ws) {
    lg_cpu_conv_algo a = lg_cpu_conv_algo_of(g);
    if (algo_m(a)) {
        lg_cpu_wino_bwd_data(dx, dy, w, g, algo_m(a), ws);
        return;
    }
    if (a == LG_CPU_CONV_WINO_S2) {
        lg_cpu_wino_s2_bwd_data(dx, dy, w, g, ws);
        return;
    }
    conv_plan p;
    conv_plan_make(&p, g);
    const size_t oc = (size_t)g->oc, yss = oc * p.ohw, chw = (size_t)g->c * g->h * g->w;
    if (g->n == 0 || chw == 0) return;
    if (yss == 0 || p.ckk == 0) { /* nothing flows back */
        memset(dx, 0, sizeof(float) * g->n * chw);
        return;
    }
    conv_job j = {&p, g, dx, ws, NULL, dy, w};
    conv_run(&j, one_bwd_data, bwd_data_part);
}

void lg_cpu_conv2d_bwd_weight(float *dw, const float *x, const float *dy, const lg_conv_geom *g,
                              float *ws) {
    lg_cpu_conv_algo a = lg_cpu_conv_algo_of(g);
    if (algo_m(a)) {
        lg_cpu_wino_bwd_weight(dw, x, dy, g, algo_m(a), ws);
        return;
    }
    if (a == LG_CPU_CONV_WINO_S2) {
        lg_cpu_wino_s2_bwd_weight(dw, x, dy, g, ws);
        return;
    }
    conv_plan p;
    conv_plan_make(&p, g);
    const size_t oc = (size_t)g->oc, nw = oc * p.ckk;
    if (nw == 0) return;
    if (g->n == 0 || p.ohw == 0) {
        memset(dw, 0, sizeof(float) * nw);
        return;
    }
    float *parts = ws + (size_t)p.T * p.slot; /* (T-1, OC, CKK): threads 1.. */
    conv_job j = {&p, g, dw, ws, parts, x, dy};
    int Tused = conv_run(&j, one_bwd_weight, bwd_weight_part);
    if (Tused > 1) {
#pragma omp parallel for num_threads(Tused) if (nw >= 4096) schedule(static)
        for (size_t i = 0; i < nw; i++) {
            float s = dw[i];
            for (int t = 1; t < Tused; t++) s += parts[(size_t)(t - 1) * p.part + i];
            dw[i] = s;
        }
    }
}
