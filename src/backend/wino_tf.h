/* Winograd F(2x2, 3x3) for the CUDA backend: the per-element transforms and
 * the batched-GEMM arguments, written once for the device kernels
 * (cuda_winograd.cu) and for a host emulation of the whole pipeline that
 * runs in CI without a GPU (tests/test_wino_emul.c).
 *
 * The algorithm and its rounding order are those of the CPU backend
 * (src/backend/cpu/cpu_winograd.c): the output is cut into 2x2 tiles, each
 * read from a 4x4 input tile; for each of the 16 positions q of a
 * transformed tile, M[q] = U[q] V[q] is one GEMM, here all images at once:
 *   U (16, cout, cin)  filter transforms G k G^T (bwd_data: k flipped, roles swapped)
 *   V (16, cin, NP)    input tile transforms B^T d B, column j = img*P + ty*TW + tx
 *   M (16, cout, NP)   products, then the output tile A^T m A
 * with P = TH*TW tiles per image (TH = ceil(H/2), TW = ceil(W/2)), NP = n*P.
 * bwd_weight: Z (16, OC, NP) = A dy A^T per output tile, dU[q] (OC, C) =
 * Z[q] V[q]^T, dW = G^T dU G. All buffers row-major float. */
#ifndef LIPGAN_WINO_TF_H
#define LIPGAN_WINO_TF_H

#include <stdint.h>

#include "backend/hostdev.h"

typedef struct lg_wino_dims {
    int n, cin, cout, H, W; /* the conv actually run (bwd_data: cin = OC, cout = C) */
    int m, Q;               /* output tile side (2: F(2x2,3x3), 4: F(4x4,3x3)); (m+2)^2 */
    int TH, TW;             /* tile rows, columns */
    int64_t P, NP;          /* tiles per image, all tiles */
} lg_wino_dims;

/* m = 2 or 4 */
LG_HD lg_wino_dims lg_wino_dims_make_m(int n, int cin, int cout, int H, int W, int m) {
    lg_wino_dims d;
    d.n = n;
    d.cin = cin;
    d.cout = cout;
    d.H = H;
    d.W = W;
    d.m = m;
    d.Q = (m + 2) * (m + 2);
    d.TH = (H + m - 1) / m;
    d.TW = (W + m - 1) / m;
    d.P = (int64_t)d.TH * d.TW;
    d.NP = (int64_t)n * d.P;
    return d;
}

LG_HD lg_wino_dims lg_wino_dims_make(int n, int cin, int cout, int H, int W) {
    return lg_wino_dims_make_m(n, cin, cout, H, W, 2);
}

/* Element i of a (channels, NP) plane: channel *ch, column *j, and its
 * image, tile row and tile column. */
LG_HD void lg_wino_at(const lg_wino_dims *d, int64_t i, int64_t *ch, int64_t *j, int64_t *img,
                       int *ty, int *tx) {
    *ch = i / d->NP;
    *j = i % d->NP;
    *img = *j / d->P;
    int64_t t = *j % d->P;
    *ty = (int)(t / d->TW);
    *tx = (int)(t % d->TW);
}

/* Element i in [0, cout*cin) of U: the kernel for (out r, in s) is
 * w[(r*C + s)*9] (bwd = 0) or w[(s*C + r)*9] flipped (bwd = 1), w (OC, C,
 * 3, 3), C = the weight's input channels. G = [1 0 0; .5 .5 .5; .5 -.5 .5; 0 0 1]. */
LG_HD void lg_wino_filter_one(float *U, const float *w, int C, int cout, int cin, int bwd,
                               int64_t i) {
    int64_t r = i / cin, s = i % cin;
    float k[9];
    if (!bwd) {
        const float *src = w + (r * C + s) * 9;
        for (int e = 0; e < 9; e++) k[e] = src[e];
    } else {
        const float *src = w + (s * C + r) * 9;
        for (int e = 0; e < 9; e++) k[e] = src[8 - e];
    }
    float t[4][3]; /* G k */
    for (int j = 0; j < 3; j++) {
        float a = k[j], b = k[3 + j], c = k[6 + j];
        t[0][j] = a;
        t[1][j] = 0.5f * (a + b + c);
        t[2][j] = 0.5f * (a - b + c);
        t[3][j] = c;
    }
    const int64_t cs = (int64_t)cout * cin;
    for (int a4 = 0; a4 < 4; a4++) {
        float a = t[a4][0], b = t[a4][1], c = t[a4][2];
        U[(a4 * 4 + 0) * cs + i] = a;
        U[(a4 * 4 + 1) * cs + i] = 0.5f * (a + b + c);
        U[(a4 * 4 + 2) * cs + i] = 0.5f * (a - b + c);
        U[(a4 * 4 + 3) * cs + i] = c;
    }
}

/* Element i in [0, cin*NP) of V: channel c = i / NP, column j = i % NP of
 * x (n, cin, H, W), zero padded by 1. B^T = [1 0 -1 0; 0 1 1 0; 0 -1 1 0; 0 1 0 -1];
 * rows are combined first, then columns (the CPU backend's order). */
LG_HD void lg_wino_input_one(float *V, const float *x, const lg_wino_dims *d, int64_t i) {
    int64_t c, j, img;
    int ty, tx;
    lg_wino_at(d, i, &c, &j, &img, &ty, &tx);
    const float *xc = x + (img * d->cin + c) * d->H * d->W;
    float v[4][4];
    for (int a = 0; a < 4; a++) {
        int iy = 2 * ty - 1 + a;
        for (int b = 0; b < 4; b++) {
            int ix = 2 * tx - 1 + b;
            v[a][b] = iy >= 0 && iy < d->H && ix >= 0 && ix < d->W ? xc[iy * d->W + ix] : 0.0f;
        }
    }
    float r[4][4]; /* B^T d, down the columns */
    for (int b = 0; b < 4; b++) {
        float d0 = v[0][b], d1 = v[1][b], d2 = v[2][b], d3 = v[3][b];
        r[0][b] = d0 - d2;
        r[1][b] = d1 + d2;
        r[2][b] = d2 - d1;
        r[3][b] = d1 - d3;
    }
    const int64_t cs = (int64_t)d->cin * d->NP;
    float *vb = V + c * d->NP + j;
    for (int a = 0; a < 4; a++) {
        float p = r[a][0], q = r[a][1], e = r[a][2], f = r[a][3];
        vb[(a * 4 + 0) * cs] = p - e;
        vb[(a * 4 + 1) * cs] = q + e;
        vb[(a * 4 + 2) * cs] = e - q;
        vb[(a * 4 + 3) * cs] = q - f;
    }
}

/* Element i in [0, cout*NP) of the output: channel o = i / NP, tile column
 * j = i % NP; y (n, cout, H, W) gets A^T m A, A^T = [1 1 1 0; 0 1 -1 -1]. */
LG_HD void lg_wino_output_one(float *y, const float *M, const lg_wino_dims *d, int64_t i) {
    int64_t o, j, img;
    int ty, tx;
    lg_wino_at(d, i, &o, &j, &img, &ty, &tx);
    const int64_t cs = (int64_t)d->cout * d->NP;
    float m[16];
    for (int q = 0; q < 16; q++) m[q] = M[q * cs + o * d->NP + j];
    float s0[4], s1[4];
    for (int b = 0; b < 4; b++) {
        s0[b] = m[b] + m[4 + b] + m[8 + b];
        s1[b] = m[4 + b] - m[8 + b] - m[12 + b];
    }
    float *yo = y + (img * d->cout + o) * d->H * d->W;
    int y0 = 2 * ty, x0 = 2 * tx;
    yo[y0 * d->W + x0] = s0[0] + s0[1] + s0[2];
    if (x0 + 1 < d->W) yo[y0 * d->W + x0 + 1] = s0[1] - s0[2] - s0[3];
    if (y0 + 1 < d->H) {
        yo[(y0 + 1) * d->W + x0] = s1[0] + s1[1] + s1[2];
        if (x0 + 1 < d->W) yo[(y0 + 1) * d->W + x0 + 1] = s1[1] - s1[2] - s1[3];
    }
}

/* Element i in [0, cout*NP) of Z = A dy A^T of the 2x2 tile of dy (n, cout,
 * H, W), zero past the edge; A = [1 0; 1 1; 1 -1; 0 -1]. */
LG_HD void lg_wino_grad_one(float *Z, const float *dy, const lg_wino_dims *d, int64_t i) {
    int64_t o, j, img;
    int ty, tx;
    lg_wino_at(d, i, &o, &j, &img, &ty, &tx);
    const float *dyo = dy + (img * d->cout + o) * d->H * d->W;
    float g[2][2];
    for (int a = 0; a < 2; a++)
        for (int b = 0; b < 2; b++) {
            int iy = 2 * ty + a, ix = 2 * tx + b;
            g[a][b] = iy < d->H && ix < d->W ? dyo[iy * d->W + ix] : 0.0f;
        }
    float r[4][2]; /* A d, down the columns */
    for (int b = 0; b < 2; b++) {
        float d0 = g[0][b], d1 = g[1][b];
        r[0][b] = d0;
        r[1][b] = d0 + d1;
        r[2][b] = d0 - d1;
        r[3][b] = -d1;
    }
    const int64_t cs = (int64_t)d->cout * d->NP;
    float *zb = Z + o * d->NP + j;
    for (int a = 0; a < 4; a++) {
        float p = r[a][0], q = r[a][1];
        zb[(a * 4 + 0) * cs] = p;
        zb[(a * 4 + 1) * cs] = p + q;
        zb[(a * 4 + 2) * cs] = p - q;
        zb[(a * 4 + 3) * cs] = -q;
    }
}

/* Element i in [0, OC*C) of dw (OC, C, 3, 3) = G^T dU[.][i] G, dU (16, OC, C). */
LG_HD void lg_wino_filter_adj_one(float *dw, const float *dU, int OC, int C, int64_t i) {
    const int64_t cs = (int64_t)OC * C;
    float u[16];
    for (int q = 0; q < 16; q++) u[q] = dU[q * cs + i];
    float t[3][4]; /* G^T u, G^T = [1 .5 .5 0; 0 .5 -.5 0; 0 .5 .5 1] */
    for (int j = 0; j < 4; j++) {
        float a = u[j], b = u[4 + j], c = u[8 + j], e = u[12 + j];
        t[0][j] = a + 0.5f * (b + c);
        t[1][j] = 0.5f * (b - c);
        t[2][j] = 0.5f * (b + c) + e;
    }
    float *k = dw + i * 9;
    for (int a = 0; a < 3; a++) {
        float p = t[a][0], q = t[a][1], c = t[a][2], e = t[a][3];
        k[a * 3 + 0] = p + 0.5f * (q + c);
        k[a * 3 + 1] = 0.5f * (q - c);
        k[a * 3 + 2] = 0.5f * (q + c) + e;
    }
}

/* ---- F(4x4, 3x3) (Lavin & Gray 2015, points 0, +-1, +-2, inf): the same
 * layout with Q = 36 positions of a 6x6 tile; fewer products per output
 * (36 per 4x4 against 16 per 2x2) and less transform traffic, more
 * rounding. The matrices are written out in each function (device code
 * cannot read host constants). */
#define LG_W4_BT                                                                                \
    {{4, 0, -5, 0, 1, 0}, {0, -4, -4, 1, 1, 0}, {0, 4, -4, -1, 1, 0}, {0, -2, -1, 2, 1, 0},   \
     {0, 2, -1, -2, 1, 0}, {0, 4, 0, -5, 0, 1}}
#define LG_W4_G                                                                                 \
    {{0.25f, 0, 0}, {-1.0f / 6, -1.0f / 6, -1.0f / 6}, {-1.0f / 6, 1.0f / 6, -1.0f / 6},        \
     {1.0f / 24, 1.0f / 12, 1.0f / 6}, {1.0f / 24, -1.0f / 12, 1.0f / 6}, {0, 0, 1}}
#define LG_W4_AT {{1, 1, 1, 1, 1, 0}, {0, 1, -1, 2, -2, 0}, {0, 1, 1, 4, 4, 0}, {0, 1, -1, 8, -8, 1}}

/* U (36, cout, cin) element i: G k G^T, k as in lg_wino_filter_one. */
LG_HD void lg_wino4_filter_one(float *U, const float *w, int C, int cout, int cin, int bwd,
                                int64_t i) {
    const float G[6][3] = LG_W4_G;
    int64_t r = i / cin, s = i % cin;
    const float *src = bwd ? w + (s * C + r) * 9 : w + (r * C + s) * 9;
    float k[9], t[6][3];
    for (int e = 0; e < 9; e++) k[e] = bwd ? src[8 - e] : src[e];
    for (int a = 0; a < 6; a++)
        for (int j = 0; j < 3; j++) t[a][j] = G[a][0] * k[j] + G[a][1] * k[3 + j] + G[a][2] * k[6 + j];
    const int64_t cs = (int64_t)cout * cin;
    for (int a = 0; a < 6; a++)
        for (int b = 0; b < 6; b++)
            U[(a * 6 + b) * cs + i] = t[a][0] * G[b][0] + t[a][1] * G[b][1] + t[a][2] * G[b][2];
}

/* V (36, cin, NP) element i: B^T d B of the 6x6 input tile at (4ty-1, 4tx-1). */
LG_HD void lg_wino4_input_one(float *V, const float *x, const lg_wino_dims *d, int64_t i) {
    const float BT[6][6] = LG_W4_BT;
    int64_t c, j, img;
    int ty, tx;
    lg_wino_at(d, i, &c, &j, &img, &ty, &tx);
    const float *xc = x + (img * d->cin + c) * d->H * d->W;
    float v[6][6], r[6][6];
    for (int a = 0; a < 6; a++) {
        int iy = 4 * ty - 1 + a;
        for (int b = 0; b < 6; b++) {
            int ix = 4 * tx - 1 + b;
            v[a][b] = iy >= 0 && iy < d->H && ix >= 0 && ix < d->W ? xc[iy * d->W + ix] : 0.0f;
        }
    }
    for (int a = 0; a < 6; a++)
        for (int b = 0; b < 6; b++) {
            float acc = 0.0f;
            for (int k = 0; k < 6; k++) acc += BT[a][k] * v[k][b];
            r[a][b] = acc;
        }
    const int64_t cs = (int64_t)d->cin * d->NP;
    float *vb = V + c * d->NP + j;
    for (int a = 0; a < 6; a++)
        for (int b = 0; b < 6; b++) {
            float acc = 0.0f;
            for (int k = 0; k < 6; k++) acc += r[a][k] * BT[b][k];
            vb[(a * 6 + b) * cs] = acc;
        }
}

/* y (n, cout, H, W) for element i of (cout, NP): A^T m A, the 4x4 output tile. */
LG_HD void lg_wino4_output_one(float *y, const float *M, const lg_wino_dims *d, int64_t i) {
    const float AT[4][6] = LG_W4_AT;
    int64_t o, j, img;
    int ty, tx;
    lg_wino_at(d, i, &o, &j, &img, &ty, &tx);
    const int64_t cs = (int64_t)d->cout * d->NP;
    float m[6][6], s[4][6];
    for (int q = 0; q < 36; q++) m[q / 6][q % 6] = M[q * cs + o * d->NP + j];
    for (int a = 0; a < 4; a++)
        for (int b = 0; b < 6; b++) {
            float acc = 0.0f;
            for (int k = 0; k < 6; k++) acc += AT[a][k] * m[k][b];
            s[a][b] = acc;
        }
    float *yo = y + (img * d->cout + o) * d->H * d->W;
    for (int a = 0; a < 4; a++) {
        int yy = 4 * ty + a;
        if (yy >= d->H) break;
        for (int b = 0; b < 4; b++) {
            int xx = 4 * tx + b;
            if (xx >= d->W) break;
            float acc = 0.0f;
            for (int k = 0; k < 6; k++) acc += s[a][k] * AT[b][k];
            yo[yy * d->W + xx] = acc;
        }
    }
}

/* Z (36, cout, NP) element i: A g A^T of the 4x4 dy tile, zero past the edge. */
LG_HD void lg_wino4_grad_one(float *Z, const float *dy, const lg_wino_dims *d, int64_t i) {
    const float AT[4][6] = LG_W4_AT;
    int64_t o, j, img;
    int ty, tx;
    lg_wino_at(d, i, &o, &j, &img, &ty, &tx);
    const float *dyo = dy + (img * d->cout + o) * d->H * d->W;
    float g[4][4], r[6][4];
    for (int a = 0; a < 4; a++)
        for (int b = 0; b < 4; b++) {
            int iy = 4 * ty + a, ix = 4 * tx + b;
            g[a][b] = iy < d->H && ix < d->W ? dyo[iy * d->W + ix] : 0.0f;
        }
    for (int k = 0; k < 6; k++)
        for (int b = 0; b < 4; b++) {
            float acc = 0.0f;
            for (int a = 0; a < 4; a++) acc += AT[a][k] * g[a][b];
            r[k][b] = acc;
        }
    const int64_t cs = (int64_t)d->cout * d->NP;
    float *zb = Z + o * d->NP + j;
    for (int k = 0; k < 6; k++)
        for (int l = 0; l < 6; l++) {
            float acc = 0.0f;
            for (int b = 0; b < 4; b++) acc += r[k][b] * AT[b][l];
            zb[(k * 6 + l) * cs] = acc;
        }
}

/* dw (OC, C, 3, 3) element i = G^T dU[.][i] G, dU (36, OC, C). */
LG_HD void lg_wino4_filter_adj_one(float *dw, const float *dU, int OC, int C, int64_t i) {
    const float G[6][3] = LG_W4_G;
    const int64_t cs = (int64_t)OC * C;
    float u[6][6], t[3][6];
    for (int q = 0; q < 36; q++) u[q / 6][q % 6] = dU[q * cs + i];
    for (int a = 0; a < 3; a++)
        for (int b = 0; b < 6; b++) {
            float acc = 0.0f;
            for (int k = 0; k < 6; k++) acc += G[k][a] * u[k][b];
            t[a][b] = acc;
        }
    float *k9 = dw + i * 9;
    for (int a = 0; a < 3; a++)
        for (int b = 0; b < 3; b++) {
            float acc = 0.0f;
            for (int k = 0; k < 6; k++) acc += t[a][k] * G[k][b];
            k9[a * 3 + b] = acc;
        }
}

/* The Q GEMMs as one cublasSgemmStridedBatched call (column-major: a
 * row-major (r, c) matrix is the column-major (c, r) one). Forward and
 * bwd_data: M[q] (cout, NP) = U[q] (cout, cin) V[q] (cin, NP), i.e.
 * column-major M^T (NP, cout) = V^T (NP, cin) U^T (cin, cout): op N, N,
 * A = V, B = U. bwd_weight: dU[q] (OC, C) = Z[q] (OC, NP) V[q]^T, i.e.
 * column-major dU^T (C, OC) = V (C, NP) Z^T (NP, OC): op T on the
 * column-major V^T (NP, C), N on Z^T (NP, OC). */
typedef struct lg_wino_gemm {
    int ta, tb;          /* 1: transposed (CUBLAS_OP_T) */
    int m, n, k;
    int lda, ldb, ldc;
    int64_t sa, sb, sc;  /* strides between the Q matrices */
} lg_wino_gemm;

LG_HD lg_wino_gemm lg_wino_gemm_fwd(const lg_wino_dims *d) {
    lg_wino_gemm g;
    g.ta = 0, g.tb = 0;
    g.m = (int)d->NP, g.n = d->cout, g.k = d->cin;
    g.lda = (int)d->NP, g.sa = (int64_t)d->cin * d->NP;  /* A = V */
    g.ldb = d->cin, g.sb = (int64_t)d->cout * d->cin;    /* B = U */
    g.ldc = (int)d->NP, g.sc = (int64_t)d->cout * d->NP; /* C = M */
    return g;
}

/* d describes the forward conv: cin = C, cout = OC. */
LG_HD lg_wino_gemm lg_wino_gemm_wgrad(const lg_wino_dims *d) {
    lg_wino_gemm g;
    g.ta = 1, g.tb = 0;
    g.m = d->cin, g.n = d->cout, g.k = (int)d->NP;
    g.lda = (int)d->NP, g.sa = (int64_t)d->cin * d->NP;  /* A = V (NP, C) column-major */
    g.ldb = (int)d->NP, g.sb = (int64_t)d->cout * d->NP; /* B = Z (NP, OC) column-major */
    g.ldc = d->cin, g.sc = (int64_t)d->cout * d->cin;    /* C = dU (C, OC) column-major */
    return g;
}

/* Floats of U, V and M (or dU, V, Z), Q matrices each, padded to a multiple of 64
 * (256 bytes), for the forward geometry (cin = C, cout = OC; the same for
 * bwd_data, whose V and M swap sizes). */
LG_HD int64_t lg_wino_pad64(int64_t v) { return (v + 63) / 64 * 64; }
LG_HD int64_t lg_wino_floats(const lg_wino_dims *d) {
    return lg_wino_pad64((int64_t)d->Q * d->cout * d->cin) +
           lg_wino_pad64((int64_t)d->Q * d->cin * d->NP) + lg_wino_pad64((int64_t)d->Q * d->cout * d->NP);
}

/* U, V and M (or dU, V, Z) in a workspace of lg_wino_floats(d) floats. */
LG_HD void lg_wino_split(float *ws, const lg_wino_dims *d, float **U, float **V, float **M) {
    *U = ws;
    *V = *U + lg_wino_pad64((int64_t)d->Q * d->cout * d->cin);
    *M = *V + lg_wino_pad64((int64_t)d->Q * d->cin * d->NP);
}

#endif
