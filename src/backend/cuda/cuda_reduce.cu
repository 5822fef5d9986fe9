/* CUDA backend: reductions to device scalars (sum_all, dot, normalize,
 * all_finite) and batch norm. All are deterministic: a grid of a size that
 * depends only on n writes one partial per block (fixed-order tree in shared
 * memory), and a single block reduces the partials the same way. Sums are
 * accumulated in double, which is cheap next to the memory traffic. */
#include "cuda_internal.h"

#include <math.h>

enum { RED_THREADS = 256, BN_THREADS = 512 };

/* Tree-reduces v over the block (blockDim.x == N, a power of two); the
 * result is valid in thread 0. */
template <int N, typename T, typename Op>
__device__ __forceinline__ T block_reduce(T v, Op op) {
    __shared__ T sh[N];
    sh[threadIdx.x] = v;
    __syncthreads();
    for (int w = N / 2; w > 0; w >>= 1) {
        if ((int)threadIdx.x < w) sh[threadIdx.x] = op(sh[threadIdx.x], sh[threadIdx.x + w]);
        __syncthreads();
    }
    T r = sh[0];
    __syncthreads(); /* sh may be reused by the caller's next reduction */
    return r;
}

struct add_op {
    __device__ double operator()(double a, double b) const { return a + b; }
};
struct min_op {
    __device__ double operator()(double a, double b) const { return a < b ? a : b; }
};

/* What pass 1 reduces. */
enum { R_SUM, R_DOT, R_SUMSQ, R_FINITE };

template <int MODE>
__global__ void k_reduce_pass1(double *partial, const float *a, const float *b, size_t n) {
    double acc = MODE == R_FINITE ? 1.0 : 0.0;
    for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < n;
         i += (size_t)gridDim.x * blockDim.x) {
        float x = a[i];
        if (MODE == R_SUM) acc += x;
        if (MODE == R_DOT) acc += (double)x * b[i];
        if (MODE == R_SUMSQ) acc += (double)x * x;
        if (MODE == R_FINITE && !isfinite(x)) acc = 0.0;
    }
    double r = MODE == R_FINITE ? block_reduce<RED_THREADS>(acc, min_op())
                                : block_reduce<RED_THREADS>(acc, add_op());
    if (threadIdx.x == 0) partial[blockIdx.x] = r;
}

/* Pass 2 (one block): out[0] = the reduced value; for R_SUMSQ it writes
 * the guarded norm max(sqrt(sum), eps) instead. */
template <int MODE>
__global__ void k_reduce_pass2(float *out, const double *partial, int nparts, float eps) {
    double acc = MODE == R_FINITE ? 1.0 : 0.0;
    for (int i = threadIdx.x; i < nparts; i += blockDim.x)
        acc = MODE == R_FINITE ? (partial[i] < acc ? partial[i] : acc) : acc + partial[i];
    double r = MODE == R_FINITE ? block_reduce<RED_THREADS>(acc, min_op())
                                : block_reduce<RED_THREADS>(acc, add_op());
    if (threadIdx.x == 0) {
        if (MODE == R_SUMSQ) {
            float nrm = (float)sqrt(r);
            out[0] = nrm > eps ? nrm : eps;
        } else {
            out[0] = (float)r;
        }
    }
}

template <int MODE>
static void reduce(float *out, const float *a, const float *b, size_t n, float eps) {
    /* grid size depends only on n, so the summation order is reproducible */
    size_t blocks = (n + RED_THREADS - 1) / RED_THREADS;
    if (blocks < 1) blocks = 1;
    if (blocks > LGC_RED_BLOCKS) blocks = LGC_RED_BLOCKS;
    k_reduce_pass1<MODE><<<(unsigned)blocks, RED_THREADS, 0, lgc_stream>>>(lgc_red_partial,
                                                                          a, b, n);
    LGC_LAUNCHED();
    k_reduce_pass2<MODE><<<1, RED_THREADS, 0, lgc_stream>>>(out, lgc_red_partial,
                                                            (int)blocks, eps);
    LGC_LAUNCHED();
}

void lgc_sum_all(float *y, const float *x, size_t n) { reduce<R_SUM>(y, x, nullptr, n, 0.f); }

void lgc_dot(float *y, const float *a, const float *b, size_t n) {
    reduce<R_DOT>(y, a, b, n, 0.f);
}

void lgc_all_finite(float *y, const float *x, size_t n) {
    reduce<R_FINITE>(y, x, nullptr, n, 0.f);
}

__global__ void k_div_by_scalar(float *x, size_t n, const float *s) {
    float d = s[0];
    for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < n;
         i += (size_t)gridDim.x * blockDim.x)
        x[i] = x[i] / d;
}

void lgc_normalize(float *x, size_t n, float eps) {
    if (n == 0) return;
    reduce<R_SUMSQ>(lgc_red_scalar, x, nullptr, n, eps);
    k_div_by_scalar<<<lgc_grid(n), LGC_THREADS, 0, lgc_stream>>>(x, n, lgc_red_scalar);
    LGC_LAUNCHED();
}

/* ---- batch norm over x (n, c, hw): one block per channel ---- */

/* Element r of channel ch's n*hw values. I is 32-bit when the tensor fits
 * (64-bit division is several times slower). */
template <typename I>
__device__ __forceinline__ I bn_index(I r, I ch, I c, I hw) {
    I q = r / hw;
    return q * c * hw + ch * hw + (r - q * hw);
}

template <typename I>
__global__ void k_bn_train(float *y, float *mean_out, float *rstd_out, const float *x,
                           const float *gamma, const float *beta, float *run_mean,
                           float *run_var, I n, I c, I hw, float eps, float momentum) {
    I ch = blockIdx.x;
    I cnt = n * hw;
    double s = 0.0;
    for (I r = threadIdx.x; r < cnt; r += blockDim.x) s += x[bn_index(r, ch, c, hw)];
    double mean = block_reduce<BN_THREADS>(s, add_op()) / (double)cnt;
    /* second pass for the variance: no cancellation from E[x^2] - mean^2 */
    double q = 0.0;
    for (I r = threadIdx.x; r < cnt; r += blockDim.x) {
        double d = x[bn_index(r, ch, c, hw)] - mean;
        q += d * d;
    }
    double var = block_reduce<BN_THREADS>(q, add_op()) / (double)cnt;
    float rstd = (float)(1.0 / sqrt(var + (double)eps));
    float fm = (float)mean;
    if (threadIdx.x == 0) {
        mean_out[ch] = fm;
        rstd_out[ch] = rstd;
        if (run_mean) run_mean[ch] = (1.0f - momentum) * run_mean[ch] + momentum * fm;
        if (run_var) {
            /* unbiased variance for the running estimate (PyTorch) */
            double uv = cnt > 1 ? var * (double)cnt / (double)(cnt - 1) : var;
            run_var[ch] = (1.0f - momentum) * run_var[ch] + momentum * (float)uv;
        }
    }
    float g = gamma ? gamma[ch] : 1.0f, bt = beta ? beta[ch] : 0.0f;
    for (I r = threadIdx.x; r < cnt; r += blockDim.x) {
        I i = bn_index(r, ch, c, hw);
        y[i] = g * (x[i] - fm) * rstd + bt;
    }
}

void lgc_bn_train(float *y, float *mean, float *rstd, const float *x, const float *gamma,
                  const float *beta, float *run_mean, float *run_var, int64_t n, int64_t c,
                  int64_t hw, float eps, float momentum) {
    if (c == 0) return;
    if (n * c * hw < (int64_t)INT32_MAX / 2)
        k_bn_train<unsigned><<<(unsigned)c, BN_THREADS, 0, lgc_stream>>>(
            y, mean, rstd, x, gamma, beta, run_mean, run_var, (unsigned)n, (unsigned)c,
            (unsigned)hw, eps, momentum);
    else
        k_bn_train<int64_t><<<(unsigned)c, BN_THREADS, 0, lgc_stream>>>(
            y, mean, rstd, x, gamma, beta, run_mean, run_var, n, c, hw, eps, momentum);
    LGC_LAUNCHED();
}

__global__ void k_bn_eval(float *y, const float *x, const float *gamma, const float *beta,
                          const float *run_mean, const float *run_var, int64_t total,
                          int64_t c, int64_t hw, float eps) {
    for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < total;
         i += (int64_t)gridDim.x * blockDim.x) {
        int64_t ch = (i / hw) % c;
        float g = gamma ? gamma[ch] : 1.0f, bt = beta ? beta[ch] : 0.0f;
        y[i] = g * (x[i] - run_mean[ch]) / sqrtf(run_var[ch] + eps) + bt;
    }
}

void lgc_bn_eval(float *y, const float *x, const float *gamma, const float *beta,
                 const float *run_mean, const float *run_var, int64_t n, int64_t c,
                 int64_t hw, float eps) {
    int64_t total = n * c * hw;
    if (total == 0) return;
    k_bn_eval<<<lgc_grid((size_t)total), LGC_THREADS, 0, lgc_stream>>>(
        y, x, gamma, beta, run_mean, run_var, total, c, hw, eps);
    LGC_LAUNCHED();
}

/* dx = gamma*rstd/N * (N*dy - sum(dy) - xhat*sum(dy*xhat)), xhat = (x-mean)*rstd */
template <typename I>
__global__ void k_bn_bwd(float *dx, float *dgamma, float *dbeta, const float *dy,
                         const float *x, const float *mean, const float *rstd,
                         const float *gamma, I n, I c, I hw) {
    I ch = blockIdx.x;
    I cnt = n * hw;
    float mu = mean[ch], rs = rstd[ch];
    double sdy = 0.0, sdyx = 0.0;
    for (I r = threadIdx.x; r < cnt; r += blockDim.x) {
        I i = bn_index(r, ch, c, hw);
        double g = dy[i];
        sdy += g;
        sdyx += g * (double)((x[i] - mu) * rs);
    }
    sdy = block_reduce<BN_THREADS>(sdy, add_op());
    sdyx = block_reduce<BN_THREADS>(sdyx, add_op());
    if (threadIdx.x == 0) {
        dgamma[ch] = (float)sdyx;
        dbeta[ch] = (float)sdy;
    }
    float g = gamma ? gamma[ch] : 1.0f;
    float k = g * rs / (float)cnt;
    float mdy = (float)sdy, mdyx = (float)sdyx;
    for (I r = threadIdx.x; r < cnt; r += blockDim.x) {
        I i = bn_index(r, ch, c, hw);
        float xh = (x[i] - mu) * rs;
        dx[i] = k * ((float)cnt * dy[i] - mdy - xh * mdyx);
    }
}

void lgc_bn_bwd(float *dx, float *dgamma, float *dbeta, const float *dy, const float *x,
                const float *mean, const float *rstd, const float *gamma, int64_t n,
                int64_t c, int64_t hw) {
    if (c == 0) return;
    if (n * c * hw < (int64_t)INT32_MAX / 2)
        k_bn_bwd<unsigned><<<(unsigned)c, BN_THREADS, 0, lgc_stream>>>(
            dx, dgamma, dbeta, dy, x, mean, rstd, gamma, (unsigned)n, (unsigned)c,
            (unsigned)hw);
    else
        k_bn_bwd<int64_t><<<(unsigned)c, BN_THREADS, 0, lgc_stream>>>(
            dx, dgamma, dbeta, dy, x, mean, rstd, gamma, n, c, hw);
    LGC_LAUNCHED();
}
