/* The kernels of Inception-v3 inference on the GPU (the exec entries of
 * inception_internal.h): batched im2col + one strided-batched cuBLAS gemm
 * per convolution with bias and ReLU after it, the three pool kinds and
 * the global average. Everything is queued on the CUDA backend's stream;
 * inception.c drives them and checks lg_cuda_last_status() after each
 * pass. Each kernel computes an element the way inception_ops.c does (same
 * window bounds, same summation order), so the two paths differ only by
 * the gemm's rounding. */
#include "backend/cuda/cuda_internal.h"
#include "metrics/inception_internal.h"

#include <float.h>

static const float kOne = 1.0f, kZero = 0.0f;

/* col (nb, K, OH*OW), K = IC*KH*KW, row (c, ki, kj) of image b holds
 * x[b, c, oy*sh - ph + ki, ox*sw - pw + kj], 0 outside the image. */
struct inc_geo {
    int ic, h, w, kh, kw, sh, sw, ph, pw, oh, ow;
};

__global__ void k_inc_im2col(float *col, const float *x, inc_geo g, int64_t total) {
    const int64_t ohw = (int64_t)g.oh * g.ow, kk = (int64_t)g.kh * g.kw, rows = g.ic * kk;
    for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < total;
         i += (int64_t)gridDim.x * blockDim.x) {
        int64_t p = i % ohw, t = i / ohw;
        int64_t r = t % rows, b = t / rows;
        int c = (int)(r / kk), kij = (int)(r % kk);
        int ki = kij / g.kw, kj = kij % g.kw;
        int oy = (int)(p / g.ow), ox = (int)(p % g.ow);
        int iy = oy * g.sh - g.ph + ki, ix = ox * g.sw - g.pw + kj;
        float v = 0.0f;
        if (iy >= 0 && iy < g.h && ix >= 0 && ix < g.w)
            v = x[((b * g.ic + c) * g.h + iy) * (int64_t)g.w + ix];
        col[i] = v;
    }
}

/* y(b) (oc, ohw) at y + b*ys: y = max(y + bias[o], 0) */
__global__ void k_inc_bias_relu(float *y, const float *bias, int oc, int64_t ohw, int64_t ys,
                                int64_t total) {
    for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < total;
         i += (int64_t)gridDim.x * blockDim.x) {
        int64_t p = i % ohw, t = i / ohw;
        int o = (int)(t % oc);
        int64_t b = t / oc;
        float *e = y + b * ys + (int64_t)o * ohw + p;
        float v = *e + bias[o];
        *e = v > 0.0f ? v : 0.0f;
    }
}

extern "C" void lg_inc_cuda_conv(const lg_inc_conv *cv, const float *wd, const float *bd, int nb,
                                 const float *x, int h, int w, float *y, size_t ys, float *col) {
    inc_geo g = {cv->ic, h, w, cv->kh, cv->kw, cv->sh, cv->sw, cv->ph, cv->pw,
                 lg_inc_out_dim(h, cv->kh, cv->sh, cv->ph), lg_inc_out_dim(w, cv->kw, cv->sw, cv->pw)};
    const int64_t ohw = (int64_t)g.oh * g.ow, k = (int64_t)cv->ic * cv->kh * cv->kw;
    const float *a = x; /* (nb, K, ohw): the input itself for 1x1 stride-1 unpadded convs */
    if (!(cv->kh == 1 && cv->kw == 1 && cv->sh == 1 && cv->sw == 1 && cv->ph == 0 && cv->pw == 0)) {
        int64_t total = nb * k * ohw;
        LG_ASSERT((size_t)(k * ohw) <= LG_INC_COL_CAP);
        k_inc_im2col<<<lgc_grid((size_t)total), LGC_THREADS, 0, lgc_stream>>>(col, x, g, total);
        LGC_LAUNCHED();
        a = col;
    }
    /* FID features in plain fp32 even when training runs in TF32 or bf16 */
    cublasMath_t mode;
    LGC_BLAS(cublasGetMathMode(lgc_blas, &mode));
    LGC_BLAS(cublasSetMathMode(lgc_blas, CUBLAS_DEFAULT_MATH));
    /* row-major y_b (oc, ohw) = W (oc, K) a_b (K, ohw), i.e. column-major
     * y_b^T (ohw x oc) = a_b^T (ohw x K) W^T (K x oc) */
    cublasStatus_t st = cublasSgemmStridedBatched(lgc_blas, CUBLAS_OP_N, CUBLAS_OP_N, (int)ohw, cv->oc, (int)k,
                                                  &kOne, a, (int)ohw, k * ohw, wd, (int)k, 0, &kZero, y,
                                                  (int)ohw, (long long)ys, nb);
    LGC_BLAS(cublasSetMathMode(lgc_blas, mode));
    LGC_BLAS(st);
    int64_t total = nb * (int64_t)cv->oc * ohw;
    k_inc_bias_relu<<<lgc_grid((size_t)total), LGC_THREADS, 0, lgc_stream>>>(y, bd, cv->oc, ohw,
                                                                            (int64_t)ys, total);
    LGC_LAUNCHED();
}

/* y(b) (c, oh, ow) at y + b*ys: max over the 3x3 window at (2oy, 2ox) */
__global__ void k_inc_maxpool3s2(float *y, const float *x, int c, int h, int w, int oh, int ow,
                                 int64_t ys, int64_t total) {
    for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < total;
         i += (int64_t)gridDim.x * blockDim.x) {
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
}

extern "C" void lg_inc_cuda_maxpool3s2(int nb, const float *x, int c, int h, int w, float *y, size_t ys) {
    int oh = lg_inc_out_dim(h, 3, 2, 0), ow = lg_inc_out_dim(w, 3, 2, 0);
    int64_t total = (int64_t)nb * c * oh * ow;
    k_inc_maxpool3s2<<<lgc_grid((size_t)total), LGC_THREADS, 0, lgc_stream>>>(y, x, c, h, w, oh, ow,
                                                                             (int64_t)ys, total);
    LGC_LAUNCHED();
}

/* y (planes, h, w): 3x3 stride-1 pad-1 pool over in-image elements */
__global__ void k_inc_pool3s1(float *y, const float *x, int h, int w, int mode, int64_t total) {
    for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < total;
         i += (int64_t)gridDim.x * blockDim.x) {
        int ox = (int)(i % w);
        int64_t t = i / w;
        int oy = (int)(t % h);
        const float *xc = x + (t / h) * h * w;
        int y0 = oy > 0 ? oy - 1 : 0, y1 = oy + 1 < h ? oy + 1 : h - 1;
        int x0 = ox > 0 ? ox - 1 : 0, x1 = ox + 1 < w ? ox + 1 : w - 1;
        float acc = mode == LG_INC_MAX ? -FLT_MAX : 0.0f;
        for (int iy = y0; iy <= y1; iy++)
            for (int ix = x0; ix <= x1; ix++) {
                float v = xc[(int64_t)iy * w + ix];
                if (mode == LG_INC_MAX)
                    acc = v > acc ? v : acc;
                else
                    acc += v;
            }
        if (mode == LG_INC_AVG_EXCL_PAD)
            acc /= (float)((y1 - y0 + 1) * (x1 - x0 + 1));
        else if (mode == LG_INC_AVG_INCL_PAD)
            acc /= 9.0f;
        y[i] = acc;
    }
}

extern "C" void lg_inc_cuda_pool3s1(int nb, const float *x, int c, int h, int w, lg_inc_pool mode,
                                    float *y) {
    int64_t total = (int64_t)nb * c * h * w;
    k_inc_pool3s1<<<lgc_grid((size_t)total), LGC_THREADS, 0, lgc_stream>>>(y, x, h, w, (int)mode, total);
    LGC_LAUNCHED();
}

/* y (planes) = mean of x (planes, hw), summed in index order */
__global__ void k_inc_global_avg(float *y, const float *x, int hw, int64_t planes) {
    for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < planes;
         i += (int64_t)gridDim.x * blockDim.x) {
        const float *p = x + i * hw;
        float s = 0.0f;
        for (int j = 0; j < hw; j++) s += p[j];
        y[i] = s / (float)hw;
    }
}

extern "C" void lg_inc_cuda_global_avg(int nb, const float *x, int c, int hw, float *y) {
    int64_t planes = (int64_t)nb * c;
    k_inc_global_avg<<<lgc_grid((size_t)planes), LGC_THREADS, 0, lgc_stream>>>(y, x, hw, planes);
    LGC_LAUNCHED();
}
