/* CUDA backend: reductions to device scalars (sum_all, dot, normalize,
 * all_finite; batch norm is in cuda_bn.cu). All are deterministic: a grid
 * of a size that depends only on n writes one partial per block
 * (fixed-order tree in shared memory), and a single block reduces the
 * partials the same way. Sums are accumulated in double, which is cheap
 * next to the memory traffic. */
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
        if (MODE == R_FINITE && !(fabsf(x) < LG_FINITE_MAX)) acc = 0.0; /* NaN fails too */
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
