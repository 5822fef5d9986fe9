/* Per-element bodies of the GPU Inception kernels (inception_cuda.cu), and
 * the arguments of each convolution's strided-batched gemm. The CUDA
 * kernels are grid-stride loops over these; tests/test_inception.c runs the
 * same bodies on the host, with the gemm arguments fed to a column-major
 * cblas_sgemm (cuBLAS's convention), so CI checks the GPU path's index maps
 * and gemm strides without a GPU. */
#ifndef LIPGAN_METRICS_INCEPTION_KERN_H
#define LIPGAN_METRICS_INCEPTION_KERN_H

#include <float.h>
#include <stdint.h>

#include "metrics/inception_internal.h"

#ifdef __CUDACC__
#define LG_INC_HD __host__ __device__ __forceinline__ static
#else
#define LG_INC_HD static inline
#endif

/* One convolution's geometry on an h x w input. */
typedef struct lg_inc_geo {
    int ic, h, w, kh, kw, sh, sw, ph, pw, oh, ow;
} lg_inc_geo;

/* The gemm of a convolution over nb images, column-major (cuBLAS):
 * C_b (m x n) = A_b (m x k) B (k x n) with A_b = a + b*sa, C_b = y + b*sc,
 * B the weights (stride 0). Row-major that is y_b (oc, ohw) = W (oc, K)
 * a_b (K, ohw), a the im2col column or, for 1x1 stride-1 unpadded convs
 * (direct), the input itself. */
typedef struct lg_inc_gemm {
    int m, n, k, lda, ldb, ldc;
    int64_t sa, sc;
    int direct;
} lg_inc_gemm;

/* (host only: they set up launches) */
static inline lg_inc_geo lg_inc_geo_of(const lg_inc_conv *cv, int h, int w) {
    lg_inc_geo g = {cv->ic, h, w, cv->kh, cv->kw, cv->sh, cv->sw, cv->ph, cv->pw,
                    lg_inc_out_dim(h, cv->kh, cv->sh, cv->ph), lg_inc_out_dim(w, cv->kw, cv->sw, cv->pw)};
    return g;
}

static inline lg_inc_gemm lg_inc_gemm_of(const lg_inc_conv *cv, int h, int w, size_t ys) {
    lg_inc_geo g = lg_inc_geo_of(cv, h, w);
    int ohw = g.oh * g.ow, k = cv->ic * cv->kh * cv->kw;
    lg_inc_gemm q;
    q.m = ohw;
    q.n = cv->oc;
    q.k = k;
    q.lda = ohw;
    q.ldb = k;
    q.ldc = ohw;
    q.sa = (int64_t)k * ohw; /* = ic*h*w when direct */
    q.sc = (int64_t)ys;
    q.direct = cv->kh == 1 && cv->kw == 1 && cv->sh == 1 && cv->sw == 1 && cv->ph == 0 && cv->pw == 0;
    return q;
}

/* col (nb, K, OH*OW), element i: row (c, ki, kj) of image b holds
 * x[b, c, oy*sh - ph + ki, ox*sw - pw + kj], 0 outside the image. */
LG_INC_HD void lg_inc_im2col_at(float *col, const float *x, lg_inc_geo g, int64_t i) {
    const int64_t ohw = (int64_t)g.oh * g.ow, kk = (int64_t)g.kh * g.kw, rows = g.ic * kk;
    int64_t p = i % ohw, t = i / ohw;
    int64_t r = t % rows, b = t / rows;
    int c = (int)(r / kk), kij = (int)(r % kk);
    int ki = kij / g.kw, kj = kij % g.kw;
    int oy = (int)(p / g.ow), ox = (int)(p % g.ow);
    int iy = oy * g.sh - g.ph + ki, ix = ox * g.sw - g.pw + kj;
    float v = 0.0f;
    if (iy >= 0 && iy < g.h && ix >= 0 && ix < g.w) v = x[((b * g.ic + c) * g.h + iy) * (int64_t)g.w + ix];
    col[i] = v;
}

/* Element i of y (nb, oc, ohw) with image stride ys: max(y + bias[o], 0). */
LG_INC_HD void lg_inc_bias_relu_at(float *y, const float *bias, int oc, int64_t ohw, int64_t ys, int64_t i) {
    int64_t p = i % ohw, t = i / ohw;
    int o = (int)(t % oc);
    int64_t b = t / oc;
    float *e = y + b * ys + (int64_t)o * ohw + p;
    float v = *e + bias[o];
    *e = v > 0.0f ? v : 0.0f;
}

/* Element i of y(b) (c, oh, ow) at y + b*ys: the 3x3 stride-2 max over
 * x (nb, c, h, w). */
LG_INC_HD void lg_inc_maxpool3s2_at(float *y, const float *x, int c, int h, int w, int oh, int ow, int64_t ys,
                                    int64_t i) {
    int ox = (int)(i % ow);
    int64_t t = i / ow;
    int oy = (int)(t % oh);
    t /= oh; /* plane b*c + ch */
    int ch = (int)(t % c);
    int64_t b = t / c;
    const float *p = x + t * h * w + (int64_t)(2 * oy) * w + 2 * ox;
    float m = p[0];
    for (int u = 0; u < 3; u++)
        for (int v = 0; v < 3; v++)
            if (p[u * w + v] > m) m = p[u * w + v];
    y[b * ys + ((int64_t)ch * oh + oy) * ow + ox] = m;
}

/* Element i of y (planes, h, w): the 3x3 stride-1 pad-1 pool over the
 * window's in-image elements of x (planes, h, w), in the host kernel's
 * order (lg_inc_pool3s1: each column reduced over the rows first, from the
 * top; then the three columns, left to right, an out-of-image one the
 * identity), so both give the same bits. */
LG_INC_HD void lg_inc_pool3s1_at(float *y, const float *x, int h, int w, int mode, int64_t i) {
    int ox = (int)(i % w);
    int64_t t = i / w;
    int oy = (int)(t % h);
    const float *xc = x + (t / h) * h * w;
    int y0 = oy > 0 ? oy - 1 : 0, y1 = oy + 1 < h ? oy + 1 : h - 1;
    const int mx = mode == LG_INC_MAX;
    float v[3];
    for (int k = 0; k < 3; k++) {
        int cx = ox - 1 + k;
        if (cx < 0 || cx >= w) {
            v[k] = mx ? -FLT_MAX : 0.0f;
            continue;
        }
        float a = xc[(int64_t)y0 * w + cx];
        for (int iy = y0 + 1; iy <= y1; iy++) {
            float e = xc[(int64_t)iy * w + cx];
            a = mx ? (e > a ? e : a) : a + e;
        }
        v[k] = a;
    }
    float acc;
    if (mx) {
        float m = v[0] > v[1] ? v[0] : v[1];
        acc = v[2] > m ? v[2] : m;
    } else {
        acc = (v[0] + v[1]) + v[2];
        int x0 = ox > 0 ? ox - 1 : 0, x1 = ox + 1 < w ? ox + 1 : w - 1;
        if (mode == LG_INC_AVG_EXCL_PAD)
            acc /= (float)(y1 - y0 + 1) * (float)(x1 - x0 + 1);
        else
            acc /= 9.0f;
    }
    y[i] = acc;
}

/* Single-rounded float products and sums: nvcc would fuse a*b + c into an
 * FMA, which rounds once where the host rounds twice. */
#ifdef __CUDA_ARCH__
#define LG_INC_MUL(a, b) __fmul_rn((a), (b))
#define LG_INC_ADD(a, b) __fadd_rn((a), (b))
#else
#define LG_INC_MUL(a, b) ((a) * (b))
#define LG_INC_ADD(a, b) ((a) + (b))
#endif

/* Source index and weights of output d along a dim of in -> out, in float
 * as PyTorch's CPU kernel computes them (bilinear, align_corners=False:
 * src = (in/out)*(d+0.5) - 0.5 clamped at 0, i0 = floor, i1 = i0 + 1
 * unless at the border); lg_inception_resize uses it too. */
LG_INC_HD void lg_inc_lin_coeffs(int in, int out, int d, int *i0, int *i1, float *l0, float *l1) {
    float scale = (float)in / (float)out;
    float src = LG_INC_ADD(LG_INC_MUL(scale, (float)d + 0.5f), -0.5f);
    if (src < 0.0f) src = 0.0f;
    int i = (int)src;
    if (i > in - 1) i = in - 1;
    float lam = src - (float)i;
    if (lam > 1.0f) lam = 1.0f;
    if (lam < 0.0f) lam = 0.0f;
    *i0 = i;
    *i1 = i + (i < in - 1 ? 1 : 0);
    *l1 = lam;
    *l0 = 1.0f - lam;
}

/* Element i of y (nb, 3, S, S), S = 299: the network's input from raw
 * images x (nb, c, h, w), c = 1 (repeated to 3 channels) or 3, as
 * lg_inception_resize gives it (a copy when h = w = S), bit for bit. */
LG_INC_HD void lg_inc_prep_at(float *y, const float *x, int c, int h, int w, int64_t i) {
    const int S = LG_INCEPTION_SIZE;
    int ox = (int)(i % S);
    int64_t t = i / S;
    int oy = (int)(t % S);
    t /= S;
    int ch = (int)(t % 3);
    int64_t b = t / 3;
    const float *xc = x + (b * c + (c == 1 ? 0 : ch)) * (int64_t)h * w;
    if (h == S && w == S) {
        y[i] = xc[(int64_t)oy * w + ox];
        return;
    }
    int y0, y1, x0, x1;
    float ly0, ly1, lx0, lx1;
    lg_inc_lin_coeffs(h, S, oy, &y0, &y1, &ly0, &ly1);
    lg_inc_lin_coeffs(w, S, ox, &x0, &x1, &lx0, &lx1);
    const float *r0 = xc + (int64_t)y0 * w, *r1 = xc + (int64_t)y1 * w;
    float a = LG_INC_ADD(LG_INC_MUL(lx0, r0[x0]), LG_INC_MUL(lx1, r0[x1]));
    float e = LG_INC_ADD(LG_INC_MUL(lx0, r1[x0]), LG_INC_MUL(lx1, r1[x1]));
    y[i] = LG_INC_ADD(LG_INC_MUL(ly0, a), LG_INC_MUL(ly1, e));
}

/* Plane i of y (planes) = mean of x (planes, hw), summed in index order. */
LG_INC_HD void lg_inc_global_avg_at(float *y, const float *x, int hw, int64_t i) {
    const float *p = x + i * hw;
    float s = 0.0f;
    for (int j = 0; j < hw; j++) s += p[j];
    y[i] = s / (float)hw;
}

#endif
