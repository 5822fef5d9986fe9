/* Internal to the CUDA backend (C++/CUDA only): the shared stream and cuBLAS
 * handle, error recording, launch helpers, and the kernel entry points each
 * .cu file contributes to the table. */
#ifndef LIPGAN_CUDA_INTERNAL_H
#define LIPGAN_CUDA_INTERNAL_H

#include <cublas_v2.h>
#include <cuda_runtime.h>

#include "lipgan/backend.h"
#include "lipgan/cuda.h"

/* The backend's single stream and cuBLAS handle (valid after init). */
extern cudaStream_t lgc_stream;
extern cublasHandle_t lgc_blas;
/* LG_CUDA_FP32 / TF32 / BF16 (lg_cuda_set_precision) */
extern int lgc_precision;
/* The device pool's allocator (NULL + lg_error_set on failure). */
void *lgc_pool_alloc(size_t bytes);
void lgc_pool_free(void *p);
/* True while lgc_stream is being captured into a CUDA graph (or when that
 * cannot be told): nothing may synchronize or allocate then. */
bool lgc_capturing(void);

/* Records the first failure (sticky) and the thread's message; returns
 * true when the call succeeded. */
bool lgc_cuda_ok(cudaError_t e, const char *expr, const char *file, int line);
bool lgc_blas_ok(cublasStatus_t s, const char *expr, const char *file, int line);

/* Return from a void wrapper when a call failed (already recorded). */
#define LGC_CK(x)                                                              \
    do {                                                                       \
        if (!lgc_cuda_ok((x), #x, __FILE__, __LINE__)) return;                 \
    } while (0)
#define LGC_BLAS(x)                                                            \
    do {                                                                       \
        if (!lgc_blas_ok((x), #x, __FILE__, __LINE__)) return;                 \
    } while (0)
/* After every kernel launch: catches bad configurations without syncing. */
#define LGC_LAUNCHED() LGC_CK(cudaGetLastError())

/* Threads per block for 1-D elementwise kernels, and a grid that covers n
 * elements with grid-stride loops (capped: enough blocks to fill an H100). */
enum { LGC_THREADS = 256 };
static inline unsigned lgc_grid(size_t n) {
    size_t b = (n + LGC_THREADS - 1) / LGC_THREADS;
    if (b < 1) b = 1;
    if (b > 132 * 16) b = 132 * 16;
    return (unsigned)b;
}

/* Persistent device scratch for two-pass reductions (allocated at init). */
enum { LGC_RED_BLOCKS = 1024 };
extern double *lgc_red_partial; /* (LGC_RED_BLOCKS) */
extern float *lgc_red_scalar;   /* (1) */

/* Scratch of the per-channel reductions (batch norm, bias gradients;
 * cuda_bn.cu): partial sums of (channel, chunk) blocks, and per-channel
 * coefficients of the elementwise pass that follows. Fixed sizes so that
 * nothing is allocated while a CUDA graph is captured; shapes beyond them
 * fall back to the one-block-per-channel kernels. */
enum { LGC_CHAN_PARTIALS = 1 << 18, LGC_CHAN_MAXC = 1 << 16 };
extern double *lgc_chan_partial; /* (LGC_CHAN_PARTIALS) */
extern float4 *lgc_chan_coef;    /* (LGC_CHAN_MAXC) */

/* Division by a run-time constant d (1 <= d <= INT32_MAX) for dividends up
 * to INT32_MAX, as a multiply-high, an add and a shift (Granlund and
 * Montgomery, as PyTorch's IntDivider): 32-bit division is a ~20-instruction
 * sequence on the GPU, and elementwise kernels that find the channel of an
 * element would spend more time on it than on their memory traffic. */
struct lgc_fastdiv {
    unsigned d, m, s;
};
static inline lgc_fastdiv lgc_fastdiv_make(unsigned d) {
    lgc_fastdiv f;
    f.d = d;
    for (f.s = 0; f.s < 31 && (1u << f.s) < d; f.s++) {
    }
    unsigned long long one = 1;
    f.m = (unsigned)(((one << 32) * ((one << f.s) - d)) / d + 1);
    return f;
}
__host__ __device__ __forceinline__ unsigned lgc_div(unsigned n, const lgc_fastdiv &f) {
#ifdef __CUDA_ARCH__
    unsigned t = __umulhi(n, f.m);
#else
    unsigned t = (unsigned)(((unsigned long long)n * f.m) >> 32);
#endif
    return (t + n) >> f.s;
}

/* True when p is aligned for vector loads of `bytes` (8 or 16). */
static inline bool lgc_aligned(const void *p, size_t bytes) {
    return ((size_t)p & (bytes - 1)) == 0;
}

/* ---- opt-in per-call profiling (cuda_profile.cu) ----
 * With LG_CUDA_PROFILE=1 at init, lg_backend_cuda() hands out a copy of the
 * table whose entries time each call with a pair of CUDA events (not while
 * the stream is being captured) and add the time to per-entry and
 * per-geometry totals; otherwise the table is the plain one (no cost). */
bool lgc_profile_env(void);
const lg_backend *lgc_profiled_table(const lg_backend *raw);

/* ---- kernels, grouped by file ---- */
/* cuda_linalg.cu */
void lgc_gemm(int ta, int tb, int m, int n, int k, float alpha, const float *a,
              int lda, const float *b, int ldb, float beta, float *c, int ldc);
size_t lgc_conv_workspace(const lg_conv_geom *g);
void lgc_conv2d(float *y, const float *x, const float *w, const lg_conv_geom *g,
                float *ws);
void lgc_conv2d_bwd_data(float *dx, const float *dy, const float *w,
                         const lg_conv_geom *g, float *ws);
void lgc_conv2d_bwd_weight(float *dw, const float *x, const float *dy,
                           const lg_conv_geom *g, float *ws);
lg_status lgc_svd(float *s, float *u, float *vt, float *a, int m, int n);
/* the im2col + cuBLAS passes alone (what the three above fall back to) */
void lgc_im2col_conv2d(float *y, const float *x, const float *w, const lg_conv_geom *g,
                       float *ws);
void lgc_im2col_conv2d_bwd_data(float *dx, const float *dy, const float *w,
                                const lg_conv_geom *g, float *ws);
void lgc_im2col_conv2d_bwd_weight(float *dw, const float *x, const float *dy,
                                  const lg_conv_geom *g, float *ws);
/* cuda_winograd.cu: Winograd F(m x m, 3x3) passes (m = 2 or 4) for 3x3
 * stride-1 pad-1 convolutions (lgc_wino_ok), in a workspace of
 * lgc_wino_bytes(g, m) bytes; candidates of the timed choice in cuda_cudnn.cu. */
bool lgc_wino_ok(const lg_conv_geom *g);
size_t lgc_wino_bytes(const lg_conv_geom *g, int m);
void lgc_wino_conv2d(float *y, const float *x, const float *w, const lg_conv_geom *g, int m,
                     float *ws);
void lgc_wino_bwd_data(float *dx, const float *dy, const float *w, const lg_conv_geom *g, int m,
                       float *ws);
void lgc_wino_bwd_weight(float *dw, const float *x, const float *dy, const lg_conv_geom *g, int m,
                         float *ws);
/* cuda_cudnn.cu: the same three passes through cuDNN when it is loaded and
 * has a deterministic algorithm for the geometry within
 * lgc_conv_workspace(g) floats of ws; false: nothing was queued, use im2col. */
bool lgc_dnn_conv2d(float *y, const float *x, const float *w, const lg_conv_geom *g, float *ws);
bool lgc_dnn_conv2d_bwd_data(float *dx, const float *dy, const float *w,
                             const lg_conv_geom *g, float *ws);
bool lgc_dnn_conv2d_bwd_weight(float *dw, const float *x, const float *dy,
                               const lg_conv_geom *g, float *ws);
/* cuda_elementwise.cu */
void lgc_fill(float *dst, float value, size_t n);
void lgc_unary(lg_unary op, float *y, const float *x, size_t n, float alpha);
void lgc_binary(lg_binary op, float *y, const int64_t yshape[4], const float *a,
                const int64_t ashape[4], const float *b, const int64_t bshape[4]);
void lgc_sum_to(float *y, const int64_t yshape[4], const float *x,
                const int64_t xshape[4]);
void lgc_upsample2x(float *y, const float *x, int64_t nc, int64_t h, int64_t w);
void lgc_sumpool2x2(float *y, const float *x, int64_t nc, int64_t h, int64_t w);
void lgc_adam(float *p, float *m, float *v, const float *g, size_t n, float lr,
              float b1, float b2, float eps, int64_t t);
void lgc_adam_prep(float *hp, float *tc, const float *flag, const float *lr, float b1, float b2);
void lgc_adam_flagged(float *p, float *m, float *v, const float *g, size_t n, const float *hp,
                      float b1, float b2, float eps);
void lgc_cond_copy(float *dst, const float *src, size_t n, const float *flag);
void lgc_flag_track(float *c, float *flag);
/* cuda_reduce.cu */
void lgc_sum_all(float *y, const float *x, size_t n);
void lgc_dot(float *y, const float *a, const float *b, size_t n);
void lgc_normalize(float *x, size_t n, float eps);
void lgc_all_finite(float *y, const float *x, size_t n);
/* cuda_bn.cu: batch norm, and per-channel sums for sum_to */
void lgc_bn_train(float *y, float *mean, float *rstd, const float *x,
                  const float *gamma, const float *beta, float *run_mean,
                  float *run_var, int64_t n, int64_t c, int64_t hw, float eps,
                  float momentum);
void lgc_bn_eval(float *y, const float *x, const float *gamma, const float *beta,
                 const float *run_mean, const float *run_var, int64_t n,
                 int64_t c, int64_t hw, float eps);
void lgc_bn_bwd(float *dx, float *dgamma, float *dbeta, const float *dy,
                const float *x, const float *mean, const float *rstd,
                const float *gamma, int64_t n, int64_t c, int64_t hw);
/* synchronized batch norm's parts (backend.h bn_stats, bn_bwd_sums,
 * bn_bwd_apply) */
void lgc_bn_stats(float *mean, float *m2, const float *x, int64_t n, int64_t c, int64_t hw);
void lgc_bn_bwd_sums(float *sdy, float *sdyx, const float *dy, const float *x,
                     const float *mean, int64_t n, int64_t c, int64_t hw);
void lgc_bn_bwd_apply(float *dx, const float *dy, const float *x, const float *mean,
                      const float *rstd, const float *gamma, const float *sdy,
                      const float *sdyx, double cnt, int64_t n, int64_t c, int64_t hw);
/* y (c) = sums of x (a, c, b) over a and b; false: shape not served
 * (nothing queued), use another kernel. */
bool lgc_chan_sum(float *y, const float *x, int64_t a, int64_t c, int64_t b);

#endif
