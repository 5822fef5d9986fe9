/* Winograd F(2x2, 3x3) convolution for 3x3, stride-1, pad-1 convs on the CPU.
 *
 * Batched-GEMM form (Lavin & Gray 2015): the output is cut into 2x2 tiles,
 * each read from a 4x4 input tile. For each of the 16 positions xi of the
 * transformed 4x4 tile,
 *   V[xi] (CIN, G*P)   = (B^T d B)[xi] for every input channel and tile,
 *   U[xi] (COUT, CIN)  = (G g G^T)[xi] for every filter,
 *   M[xi] (COUT, G*P)  = U[xi] V[xi]      (16 SGEMMs per chunk),
 * and the output tile is A^T m A. This takes 16 multiply-adds per 2x2
 * output per channel pair instead of 36 (im2col).
 *
 * conv2d_bwd_data of such a conv is the same conv on dy with the kernel
 * flipped and the channel roles swapped (COUT = C, CIN = OC), so both use
 * wino_run(). bwd_weight is the adjoint in the filter: 16 SGEMMs
 * dU[xi] (OC, C) += Z[xi] V[xi]^T with Z = A dy A^T of each 2x2 output tile,
 * then dW = G^T dU G.
 *
 * Threads and chunks of samples follow cpu_conv.c: one OpenMP region,
 * OpenBLAS single-threaded inside it, every output written by one thread
 * with a fixed order of operations (bwd_weight: per-thread partial sums
 * added in thread order), so results are fixed for a thread count. All
 * scratch is in ws, sized by lg_cpu_wino_workspace(). */
#include <cblas.h>
#include <omp.h>
#include <string.h>

#include "backend/cpu/cpu_internal.h"
#include "backend/wino_tf.h"
#include "lipgan/status.h"

#define WINO_COLS_MIN 256 /* narrowest GEMM (tiles of a chunk) worth running */

int lg_cpu_wino_ok(const lg_conv_geom *g) {
    return g->kh == 3 && g->kw == 3 && g->stride == 1 && g->pad == 1 && g->oh == g->h &&
           g->ow == g->w && g->n > 0 && g->c > 0 && g->oc > 0 && g->h > 0 && g->w > 0;
}

typedef struct wino_plan {
    int T, G, nchunk;
    int th, tw;     /* tile rows, tile columns */
    size_t P;       /* tiles per sample */
    int pw;         /* padded row width 2*tw + 2 */
    size_t u;       /* floats of U (16, OC, C); bwd_weight: one dU per thread */
    size_t v, m;    /* floats of a slot's V (16, CIN, G*P) and M (16, COUT, G*P) */
    size_t rows;    /* floats of a slot's row buffers (8, pw) */
    size_t slot;
} wino_plan;

/* cin/cout: channels of the conv actually run (swapped for bwd_data). The
 * workspace is the same both ways since v + m is symmetric in them. */
static void wino_plan_make(wino_plan *p, const lg_conv_geom *g, int cin, int cout) {
    p->th = (g->h + 1) / 2;
    p->tw = (g->w + 1) / 2;
    p->P = (size_t)p->th * p->tw;
    p->pw = 2 * p->tw + 2;
    lg_cpu_chunks ch = lg_cpu_chunks_make(g->n, p->P, WINO_COLS_MIN);
    p->G = ch.G;
    p->nchunk = ch.nchunk;
    p->T = ch.T;
    size_t G = (size_t)ch.G;
    p->u = lg_cpu_round16((size_t)16 * g->oc * g->c);
    p->v = lg_cpu_round16((size_t)16 * cin * G * p->P);
    p->m = lg_cpu_round16((size_t)16 * cout * G * p->P);
    p->rows = lg_cpu_round16((size_t)8 * p->pw);
    p->slot = p->v + p->m + p->rows;
}

/* ws: (T, u) [U of conv2d/bwd_data; T partial dU of bwd_weight], then T slots. */
size_t lg_cpu_wino_workspace(const lg_conv_geom *g) {
    if (!lg_cpu_wino_ok(g)) return 0;
    wino_plan p;
    wino_plan_make(&p, g, g->c, g->oc);
    return (size_t)p.T * (p.u + p.slot);
}

/* V (16, CIN, ldv) columns [j0, j0+P) = B^T d B of every tile of one sample
 * x (CIN, H, W). B^T = [1 0 -1 0; 0 1 1 0; 0 -1 1 0; 0 1 0 -1]. rows: (8, pw). */
static void input_tf(float *V, size_t ldv, size_t j0, const float *x, int cin, int H, int W,
                     const wino_plan *p, float *rows) {
    const int pw = p->pw, TH = p->th, TW = p->tw;
    float *d = rows;            /* (4, pw): input rows 2ty-1 .. 2ty+2, zero padded */
    float *t = rows + 4 * pw;   /* (4, pw): B^T d, down the columns */
    const size_t cs = (size_t)cin * ldv; /* stride between the 16 matrices */
    for (int c = 0; c < cin; c++) {
        const float *xc = x + (size_t)c * H * W;
        for (int ty = 0; ty < TH; ty++) {
            for (int k = 0; k < 4; k++) {
                float *dk = d + k * pw;
                int iy = 2 * ty - 1 + k;
                if (iy < 0 || iy >= H) {
                    memset(dk, 0, sizeof(float) * pw);
                    continue;
                }
                dk[0] = 0.0f;
                memcpy(dk + 1, xc + (size_t)iy * W, sizeof(float) * W);
                for (int i = W + 1; i < pw; i++) dk[i] = 0.0f;
            }
            for (int i = 0; i < pw; i++) {
                float d0 = d[i], d1 = d[pw + i], d2 = d[2 * pw + i], d3 = d[3 * pw + i];
                t[i] = d0 - d2;
                t[pw + i] = d1 + d2;
                t[2 * pw + i] = d2 - d1;
                t[3 * pw + i] = d1 - d3;
            }
            float *vb = V + (size_t)c * ldv + j0 + (size_t)ty * TW;
            for (int r = 0; r < 4; r++) {
                const float *tr = t + r * pw;
                float *v0 = vb + (size_t)(r * 4) * cs, *v1 = v0 + cs, *v2 = v1 + cs, *v3 = v2 + cs;
                for (int tx = 0; tx < TW; tx++) {
                    const float *d4 = tr + 2 * tx; /* the tile's 4 columns */
                    float a = d4[0], b = d4[1], e = d4[2], f = d4[3];
                    v0[tx] = a - e;
                    v1[tx] = b + e;
                    v2[tx] = e - b;
                    v3[tx] = b - f;
                }
            }
        }
    }
}

/* y (COUT, H, W) of one sample = A^T m A of its tiles, m = M (16, COUT, ldm)
 * columns [j0, j0+P). A^T = [1 1 1 0; 0 1 -1 -1]. */
static void output_tf(float *y, const float *M, size_t ldm, size_t j0, int cout, int H, int W,
                      const wino_plan *p) {
    const int TH = p->th, TW = p->tw;
    const size_t cs = (size_t)cout * ldm;
    for (int o = 0; o < cout; o++) {
        float *yo = y + (size_t)o * H * W;
        for (int ty = 0; ty < TH; ty++) {
            const float *mb = M + (size_t)o * ldm + j0 + (size_t)ty * TW;
            float *y0 = yo + (size_t)(2 * ty) * W;
            float *y1 = 2 * ty + 1 < H ? y0 + W : NULL;
            for (int tx = 0; tx < TW; tx++) {
                float m[16];
                for (int q = 0; q < 16; q++) m[q] = mb[q * cs + tx];
                float s0[4], s1[4];
                for (int b = 0; b < 4; b++) {
                    s0[b] = m[b] + m[4 + b] + m[8 + b];
                    s1[b] = m[4 + b] - m[8 + b] - m[12 + b];
                }
                int x0 = 2 * tx;
                y0[x0] = s0[0] + s0[1] + s0[2];
                if (x0 + 1 < W) y0[x0 + 1] = s0[1] - s0[2] - s0[3];
                if (y1) {
                    y1[x0] = s1[0] + s1[1] + s1[2];
                    if (x0 + 1 < W) y1[x0 + 1] = s1[1] - s1[2] - s1[3];
                }
            }
        }
    }
}

/* out (n, cout, H, W) = 3x3 pad-1 conv of in (n, cin, H, W). The kernel
 * (out r, in s) is w[(r*C + s)*9] (bwd = 0) or w[(s*C + r)*9] flipped
 * (bwd = 1), with w (OC, C, 3, 3) and C = g->c. */
static void wino_run(float *out, const float *in, const float *w, const lg_conv_geom *g, int cin,
                     int cout, int bwd, float *ws) {
    wino_plan p;
    wino_plan_make(&p, g, cin, cout);
    const int H = g->h, W = g->w, C = g->c;
    const size_t ins = (size_t)cin * H * W, outs = (size_t)cout * H * W;
    float *U = ws; /* (16, cout, cin), then the slots after T of them */
    const size_t ucs = (size_t)cout * cin;
#pragma omp parallel num_threads(p.T)
    {
        int t = omp_get_thread_num(), T = omp_get_num_threads();
#pragma omp for schedule(static)
        for (int r = 0; r < cout; r++)
            for (int s = 0; s < cin; s++)
                lg_wino_filter_one(U, w, C, cout, cin, bwd, (int64_t)r * cin + s);
        /* implicit barrier: U is complete */
        float *V = ws + (size_t)p.T * p.u + (size_t)t * p.slot, *M = V + p.v, *rows = M + p.m;
        int c0 = (int)((int64_t)p.nchunk * t / T), c1 = (int)((int64_t)p.nchunk * (t + 1) / T);
        for (int ch = c0; ch < c1; ch++) {
            int g0 = ch * p.G, gc = g->n - g0 < p.G ? g->n - g0 : p.G;
            size_t ld = (size_t)gc * p.P;
            for (int j = 0; j < gc; j++)
                input_tf(V, ld, (size_t)j * p.P, in + (size_t)(g0 + j) * ins, cin, H, W, &p, rows);
            /* M[q] (cout, ld) = U[q] (cout, cin) V[q] (cin, ld) */
            for (int q = 0; q < 16; q++)
                cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, cout, (int)ld, cin, 1.0f,
                            U + q * ucs, cin, V + (size_t)q * cin * ld, (int)ld, 0.0f,
                            M + (size_t)q * cout * ld, (int)ld);
            for (int j = 0; j < gc; j++)
                output_tf(out + (size_t)(g0 + j) * outs, M, ld, (size_t)j * p.P, cout, H, W, &p);
        }
    }
}

void lg_cpu_wino_conv2d(float *y, const float *x, const float *w, const lg_conv_geom *g,
                        float *ws) {
    LG_ASSERT(lg_cpu_wino_ok(g));
    wino_run(y, x, w, g, g->c, g->oc, 0, ws);
}

void lg_cpu_wino_bwd_data(float *dx, const float *dy, const float *w, const lg_conv_geom *g,
                          float *ws) {
    LG_ASSERT(lg_cpu_wino_ok(g));
    wino_run(dx, dy, w, g, g->oc, g->c, 1, ws);
}

/* Z (16, OC, ldz) columns [j0, j0+P) = A dy A^T of every 2x2 tile of one
 * sample dy (OC, H, W), zero past the edge. A = [1 0; 1 1; 1 -1; 0 -1]. */
static void grad_tf(float *Z, size_t ldz, size_t j0, const float *dy, int oc, int H, int W,
                    const wino_plan *p, float *rows) {
    const int pw = p->pw, TH = p->th, TW = p->tw;
    float *d = rows;          /* (2, pw): dy rows 2ty, 2ty+1, zero padded */
    float *t = rows + 2 * pw; /* (4, pw): A d, down the columns */
    const size_t cs = (size_t)oc * ldz;
    for (int o = 0; o < oc; o++) {
        const float *dyo = dy + (size_t)o * H * W;
        for (int ty = 0; ty < TH; ty++) {
            for (int k = 0; k < 2; k++) {
                float *dk = d + k * pw;
                int iy = 2 * ty + k;
                if (iy >= H) {
                    memset(dk, 0, sizeof(float) * pw);
                    continue;
                }
                memcpy(dk, dyo + (size_t)iy * W, sizeof(float) * W);
                for (int i = W; i < pw; i++) dk[i] = 0.0f;
            }
            for (int i = 0; i < 2 * TW; i++) {
                float d0 = d[i], d1 = d[pw + i];
                t[i] = d0;
                t[pw + i] = d0 + d1;
                t[2 * pw + i] = d0 - d1;
                t[3 * pw + i] = -d1;
            }
            float *zb = Z + (size_t)o * ldz + j0 + (size_t)ty * TW;
            for (int r = 0; r < 4; r++) {
                const float *tr = t + r * pw;
                float *z0 = zb + (size_t)(r * 4) * cs, *z1 = z0 + cs, *z2 = z1 + cs, *z3 = z2 + cs;
                for (int tx = 0; tx < TW; tx++) {
                    float a = tr[2 * tx], b = tr[2 * tx + 1];
                    z0[tx] = a;
                    z1[tx] = a + b;
                    z2[tx] = a - b;
                    z3[tx] = -b;
                }
            }
        }
    }
}

/* dW = sum over samples and tiles of G^T [(A dy A^T) (.) (B^T x B)] G: each
 * thread sums its chunks into its own dU (16, OC, C) with 16 SGEMMs per chunk
 * (beta = 1 after its first), the partials are added in thread order, then
 * transformed back. Fixed for a thread count. */
void lg_cpu_wino_bwd_weight(float *dw, const float *x, const float *dy, const lg_conv_geom *g,
                            float *ws) {
    LG_ASSERT(lg_cpu_wino_ok(g));
    wino_plan p;
    wino_plan_make(&p, g, g->c, g->oc);
    const int H = g->h, W = g->w, C = g->c, OC = g->oc;
    const size_t xs = (size_t)C * H * W, ys = (size_t)OC * H * W, ucs = (size_t)OC * C;
#pragma omp parallel num_threads(p.T)
    {
        int t = omp_get_thread_num(), T = omp_get_num_threads();
        float *acc = ws + (size_t)t * p.u; /* (16, OC, C) */
        float *V = ws + (size_t)p.T * p.u + (size_t)t * p.slot, *Z = V + p.v, *rows = Z + p.m;
        int c0 = (int)((int64_t)p.nchunk * t / T), c1 = (int)((int64_t)p.nchunk * (t + 1) / T);
        if (c0 == c1) memset(acc, 0, sizeof(float) * 16 * ucs);
        for (int ch = c0; ch < c1; ch++) {
            int g0 = ch * p.G, gc = g->n - g0 < p.G ? g->n - g0 : p.G;
            size_t ld = (size_t)gc * p.P;
            for (int j = 0; j < gc; j++) {
                input_tf(V, ld, (size_t)j * p.P, x + (size_t)(g0 + j) * xs, C, H, W, &p, rows);
                grad_tf(Z, ld, (size_t)j * p.P, dy + (size_t)(g0 + j) * ys, OC, H, W, &p, rows);
            }
            /* dU[q] (OC, C) += Z[q] (OC, ld) V[q]^T (ld, C) */
            for (int q = 0; q < 16; q++)
                cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, OC, C, (int)ld, 1.0f,
                            Z + (size_t)q * OC * ld, (int)ld, V + (size_t)q * C * ld, (int)ld,
                            ch == c0 ? 0.0f : 1.0f, acc + q * ucs, C);
        }
#pragma omp barrier
        /* dW[o][c] = G^T (sum over threads of dU[.][o][c]) G, rows of o split over
         * threads; the partials are summed in thread order into thread 0's dU */
#pragma omp for schedule(static)
        for (int o = 0; o < OC; o++) {
            for (int c = 0; c < C; c++) {
                size_t i = (size_t)o * C + c;
                for (int q = 0; q < 16; q++)
                    for (int k = 1; k < T; k++) ws[q * ucs + i] += ws[(size_t)k * p.u + q * ucs + i];
                lg_wino_filter_adj_one(dw, ws, OC, C, (int64_t)i);
            }
        }
    }
}
