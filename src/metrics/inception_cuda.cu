/* The kernels of Inception-v3 inference on the GPU (the exec entries of
 * inception_internal.h): batched im2col + one strided-batched cuBLAS gemm
 * per convolution with bias and ReLU after it, the three pool kinds and
 * the global average, and the resize of the raw images to the network's
 * input. Each kernel is a grid-stride loop over an element
 * body of inception_kern.h, which tests/test_inception.c also runs on the
 * host. Everything is queued on the CUDA backend's stream; inception.c
 * drives the kernels and checks lg_cuda_last_status() after each pass. */
#include "backend/cuda/cuda_internal.h"
#include "metrics/inception_kern.h"

static const float kOne = 1.0f, kZero = 0.0f;

#define GRID_STRIDE(i, total)                                                                      \
    for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < (total);                  \
         i += (int64_t)gridDim.x * blockDim.x)

__global__ void k_inc_im2col(float *col, const float *x, lg_inc_geo g, int64_t total) {
    GRID_STRIDE(i, total) lg_inc_im2col_at(col, x, g, i);
}

__global__ void k_inc_bias_relu(float *y, const float *bias, int oc, int64_t ohw, int64_t ys, int64_t total) {
    GRID_STRIDE(i, total) lg_inc_bias_relu_at(y, bias, oc, ohw, ys, i);
}

__global__ void k_inc_maxpool3s2(float *y, const float *x, int c, int h, int w, int oh, int ow, int64_t ys,
                                 int64_t total) {
    GRID_STRIDE(i, total) lg_inc_maxpool3s2_at(y, x, c, h, w, oh, ow, ys, i);
}

__global__ void k_inc_pool3s1(float *y, const float *x, int h, int w, int mode, int64_t total) {
    GRID_STRIDE(i, total) lg_inc_pool3s1_at(y, x, h, w, mode, i);
}

__global__ void k_inc_global_avg(float *y, const float *x, int hw, int64_t planes) {
    GRID_STRIDE(i, planes) lg_inc_global_avg_at(y, x, hw, i);
}

__global__ void k_inc_prep(float *y, const float *x, int c, int h, int w, int64_t total) {
    GRID_STRIDE(i, total) lg_inc_prep_at(y, x, c, h, w, i);
}

extern "C" void lg_inc_cuda_prep(void *st, int nb, const float *x, int c, int h, int w, float *y) {
    int64_t total = (int64_t)nb * 3 * LG_INCEPTION_SIZE * LG_INCEPTION_SIZE;
    k_inc_prep<<<lgc_grid((size_t)total), LGC_THREADS, 0, lgc_stream>>>(y, x, c, h, w, total);
    LGC_LAUNCHED();
}

extern "C" void lg_inc_cuda_conv(void *st, const lg_inc_conv *cv, int nb, const float *x, int h, int w, float *y,
                                 size_t ys) {
    const lg_inc_dev *d = (const lg_inc_dev *)st;
    const float *wd = lg_inc_dev_w(d, cv->w), *bd = lg_inc_dev_w(d, cv->b);
    float *col = d->col;
    lg_inc_geo g = lg_inc_geo_of(cv, h, w);
    lg_inc_gemm q = lg_inc_gemm_of(cv, h, w, ys);
    const float *a = x;
    if (!q.direct) {
        LG_ASSERT((size_t)q.sa <= LG_INC_COL_CAP);
        int64_t total = nb * q.sa;
        k_inc_im2col<<<lgc_grid((size_t)total), LGC_THREADS, 0, lgc_stream>>>(col, x, g, total);
        LGC_LAUNCHED();
        a = col;
    }
    /* FID features in plain fp32 even when training runs in TF32 or bf16 */
    cublasMath_t mode;
    LGC_BLAS(cublasGetMathMode(lgc_blas, &mode));
    LGC_BLAS(cublasSetMathMode(lgc_blas, CUBLAS_DEFAULT_MATH));
    cublasStatus_t bs = cublasSgemmStridedBatched(lgc_blas, CUBLAS_OP_N, CUBLAS_OP_N, q.m, q.n, q.k, &kOne, a, q.lda,
                                                  q.sa, wd, q.ldb, 0, &kZero, y, q.ldc, q.sc, nb);
    LGC_BLAS(cublasSetMathMode(lgc_blas, mode));
    LGC_BLAS(bs);
    int64_t total = nb * (int64_t)q.n * q.m;
    k_inc_bias_relu<<<lgc_grid((size_t)total), LGC_THREADS, 0, lgc_stream>>>(y, bd, q.n, q.m, q.sc, total);
    LGC_LAUNCHED();
}

extern "C" void lg_inc_cuda_maxpool3s2(void *st, int nb, const float *x, int c, int h, int w, float *y, size_t ys) {
    int oh = lg_inc_out_dim(h, 3, 2, 0), ow = lg_inc_out_dim(w, 3, 2, 0);
    int64_t total = (int64_t)nb * c * oh * ow;
    k_inc_maxpool3s2<<<lgc_grid((size_t)total), LGC_THREADS, 0, lgc_stream>>>(y, x, c, h, w, oh, ow, (int64_t)ys,
                                                                             total);
    LGC_LAUNCHED();
}

extern "C" void lg_inc_cuda_pool3s1(void *st, int nb, const float *x, int c, int h, int w, lg_inc_pool mode,
                                    float *y) {
    int64_t total = (int64_t)nb * c * h * w;
    k_inc_pool3s1<<<lgc_grid((size_t)total), LGC_THREADS, 0, lgc_stream>>>(y, x, h, w, (int)mode, total);
    LGC_LAUNCHED();
}

extern "C" void lg_inc_cuda_global_avg(void *st, int nb, const float *x, int c, int hw, float *y) {
    int64_t planes = (int64_t)nb * c;
    k_inc_global_avg<<<lgc_grid((size_t)planes), LGC_THREADS, 0, lgc_stream>>>(y, x, hw, planes);
    LGC_LAUNCHED();
}
