/* CUDA backend: elementwise kernels (fill, unary, broadcasting binary, the
 * broadcast adjoint sum_to, 2x resampling, Adam). Every loop is grid-stride
 * with 64-bit indices; every reduction has a fixed order (no atomics), so
 * results are bitwise reproducible run to run. */
#include "cuda_internal.h"

#include <math.h>

/* ---- fill ---- */

__global__ void k_fill(float *dst, float v, size_t n) {
    for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < n;
         i += (size_t)gridDim.x * blockDim.x)
        dst[i] = v;
}

void lgc_fill(float *dst, float value, size_t n) {
    if (n == 0) return;
    k_fill<<<lgc_grid(n), LGC_THREADS, 0, lgc_stream>>>(dst, value, n);
    LGC_LAUNCHED();
}

/* ---- unary ---- */

template <int OP>
__device__ __forceinline__ float unary_op(float x, float a) {
    switch (OP) {
    case LG_U_RELU: return (x > 0.0f || x != x) ? x : 0.0f; /* keeps NaN visible */
    case LG_U_LRELU: return x > 0.0f ? x : a * x;
    case LG_U_TANH: return tanhf(x);
    case LG_U_SIGMOID: {
        /* never overflows: exp of a non-positive argument */
        if (x >= 0.0f) return 1.0f / (1.0f + expf(-x));
        float e = expf(x);
        return e / (1.0f + e);
    }
    case LG_U_SOFTPLUS: return fmaxf(x, 0.0f) + log1pf(expf(-fabsf(x)));
    case LG_U_SQUARE: return x * x;
    case LG_U_SQRT: return sqrtf(x);
    case LG_U_NEG: return -x;
    case LG_U_SCALE: return a * x;
    case LG_U_ADD_SCALAR: return x + a;
    case LG_U_STEP: return x > 0.0f ? 1.0f : a;
    case LG_U_RECIP: return 1.0f / x;
    case LG_U_EXP: return expf(x);
    case LG_U_LOG: return logf(x);
    case LG_U_ABS: return fabsf(x);
    case LG_U_SIGN: return x > 0.0f ? 1.0f : (x < 0.0f ? -1.0f : x * 0.0f); /* NaN stays */
    case LG_U_CLAMP: return x < -a ? -a : (x > a ? a : x); /* NaN propagates */
    default: return x;
    }
}

template <int OP>
__global__ void k_unary(float *y, const float *x, size_t n, float a) {
    for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < n;
         i += (size_t)gridDim.x * blockDim.x)
        y[i] = unary_op<OP>(x[i], a);
}

template <int OP>
static void launch_unary(float *y, const float *x, size_t n, float a) {
    k_unary<OP><<<lgc_grid(n), LGC_THREADS, 0, lgc_stream>>>(y, x, n, a);
    LGC_LAUNCHED();
}

void lgc_unary(lg_unary op, float *y, const float *x, size_t n, float alpha) {
    if (n == 0) return;
    switch (op) {
#define U(o) case o: launch_unary<o>(y, x, n, alpha); break;
    U(LG_U_RELU) U(LG_U_LRELU) U(LG_U_TANH) U(LG_U_SIGMOID) U(LG_U_SOFTPLUS)
    U(LG_U_SQUARE) U(LG_U_SQRT) U(LG_U_NEG) U(LG_U_SCALE) U(LG_U_ADD_SCALAR)
    U(LG_U_STEP) U(LG_U_RECIP) U(LG_U_EXP) U(LG_U_LOG) U(LG_U_ABS) U(LG_U_SIGN)
    U(LG_U_CLAMP)
#undef U
    default: LG_ASSERT(!"unknown lg_unary op");
    }
}

/* ---- binary with broadcasting ---- */

template <int OP>
__device__ __forceinline__ float binary_op(float a, float b) {
    switch (OP) {
    case LG_B_ADD: return a + b;
    case LG_B_SUB: return a - b;
    case LG_B_MUL: return a * b;
    case LG_B_DIV: return a / b;
    case LG_B_MAX: return (a > b || a != a) ? a : b; /* NaN in either wins */
    default: return a;
    }
}

/* Shapes of y and the element strides of a and b in y's index space (0
 * along broadcast dims). */
struct bcast {
    int64_t d1, d2, d3;          /* y dims 1..3 (dim 0 is implied by n) */
    int64_t as[4], bs[4];
};

template <int OP>
__global__ void k_binary_same(float *y, const float *a, const float *b, size_t n) {
    for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < n;
         i += (size_t)gridDim.x * blockDim.x)
        y[i] = binary_op<OP>(a[i], b[i]);
}

template <int OP>
__global__ void k_binary_bcast(float *y, const float *a, const float *b, size_t n, bcast s) {
    for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < n;
         i += (size_t)gridDim.x * blockDim.x) {
        int64_t t = (int64_t)i;
        int64_t i3 = t % s.d3; t /= s.d3;
        int64_t i2 = t % s.d2; t /= s.d2;
        int64_t i1 = t % s.d1;
        int64_t i0 = t / s.d1;
        int64_t ia = i0 * s.as[0] + i1 * s.as[1] + i2 * s.as[2] + i3 * s.as[3];
        int64_t ib = i0 * s.bs[0] + i1 * s.bs[1] + i2 * s.bs[2] + i3 * s.bs[3];
        y[i] = binary_op<OP>(a[ia], b[ib]);
    }
}

/* Element strides of a contiguous tensor of shape sh seen in y's index
 * space: 0 where sh broadcasts (size 1 against a larger y dim). */
static void bcast_strides(int64_t st[4], const int64_t sh[4], const int64_t ysh[4]) {
    int64_t s = 1;
    for (int d = 3; d >= 0; d--) {
        st[d] = (sh[d] == 1 && ysh[d] != 1) ? 0 : s;
        s *= sh[d];
    }
}

static bool same_shape(const int64_t a[4], const int64_t b[4]) {
    return a[0] == b[0] && a[1] == b[1] && a[2] == b[2] && a[3] == b[3];
}

template <int OP>
static void launch_binary(float *y, const int64_t ysh[4], const float *a,
                          const int64_t ash[4], const float *b, const int64_t bsh[4]) {
    size_t n = (size_t)(ysh[0] * ysh[1] * ysh[2] * ysh[3]);
    if (n == 0) return;
    if (same_shape(ash, ysh) && same_shape(bsh, ysh)) {
        k_binary_same<OP><<<lgc_grid(n), LGC_THREADS, 0, lgc_stream>>>(y, a, b, n);
    } else {
        bcast s;
        s.d1 = ysh[1]; s.d2 = ysh[2]; s.d3 = ysh[3];
        bcast_strides(s.as, ash, ysh);
        bcast_strides(s.bs, bsh, ysh);
        k_binary_bcast<OP><<<lgc_grid(n), LGC_THREADS, 0, lgc_stream>>>(y, a, b, n, s);
    }
    LGC_LAUNCHED();
}

void lgc_binary(lg_binary op, float *y, const int64_t yshape[4], const float *a,
                const int64_t ashape[4], const float *b, const int64_t bshape[4]) {
    switch (op) {
#define B(o) case o: launch_binary<o>(y, yshape, a, ashape, b, bshape); break;
    B(LG_B_ADD) B(LG_B_SUB) B(LG_B_MUL) B(LG_B_DIV) B(LG_B_MAX)
#undef B
    default: LG_ASSERT(!"unknown lg_binary op");
    }
}

/* ---- sum_to: y (ysh) = x (xsh) summed over the dims where ysh is 1 ----
 * Output o has coordinates o_d < ysh[d]; reduction index r has coordinates
 * r_d < rsh[d] = xsh[d] / ysh[d] (1 on kept dims, xsh[d] on reduced ones);
 * the x element is at sum_d (o_d + r_d) * xst[d]. */
struct sumto {
    int64_t ysh[4], rsh[4], xst[4];
    int64_t m, r; /* number of outputs, reduction length */
};

__device__ __forceinline__ int64_t sumto_base(const sumto &s, int64_t o) {
    int64_t off = 0;
    for (int d = 3; d >= 0; d--) {
        off += (o % s.ysh[d]) * s.xst[d];
        o /= s.ysh[d];
    }
    return off;
}

__device__ __forceinline__ int64_t sumto_roff(const sumto &s, int64_t r) {
    int64_t off = 0;
    for (int d = 3; d >= 0; d--) {
        off += (r % s.rsh[d]) * s.xst[d];
        r /= s.rsh[d];
    }
    return off;
}

/* One thread per output, serial sum: for many outputs with short sums
 * (e.g. (N,C,H,W) -> (1,C,H,W)); neighbouring threads read neighbouring x. */
__global__ void k_sumto_thread(float *y, const float *x, sumto s) {
    for (int64_t o = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; o < s.m;
         o += (int64_t)gridDim.x * blockDim.x) {
        int64_t base = sumto_base(s, o);
        float acc = 0.0f;
        for (int64_t r = 0; r < s.r; r++) acc += x[base + sumto_roff(s, r)];
        y[o] = acc;
    }
}

/* One block per output, strided partial sums then a shared-memory tree:
 * for few outputs with long sums (e.g. a bias gradient (N,C,H,W) -> C). */
__global__ void k_sumto_block(float *y, const float *x, sumto s) {
    __shared__ float sh[LGC_THREADS];
    for (int64_t o = blockIdx.x; o < s.m; o += gridDim.x) {
        int64_t base = sumto_base(s, o);
        float acc = 0.0f;
        for (int64_t r = threadIdx.x; r < s.r; r += blockDim.x)
            acc += x[base + sumto_roff(s, r)];
        sh[threadIdx.x] = acc;
        __syncthreads();
        for (int w = LGC_THREADS / 2; w > 0; w >>= 1) {
            if ((int)threadIdx.x < w) sh[threadIdx.x] += sh[threadIdx.x + w];
            __syncthreads();
        }
        if (threadIdx.x == 0) y[o] = sh[0];
        __syncthreads();
    }
}

void lgc_sum_to(float *y, const int64_t yshape[4], const float *x, const int64_t xshape[4]) {
    sumto s;
    s.m = 1;
    int64_t xn = 1, st = 1;
    for (int d = 3; d >= 0; d--) {
        LG_ASSERT(yshape[d] == xshape[d] || yshape[d] == 1);
        s.ysh[d] = yshape[d];
        s.rsh[d] = yshape[d] == xshape[d] ? 1 : xshape[d];
        s.xst[d] = st;
        st *= xshape[d];
        s.m *= yshape[d];
        xn *= xshape[d];
    }
    if (s.m == 0) return;
    s.r = xn / s.m;
    if (s.r == 1) {
        LGC_CK(cudaMemcpyAsync(y, x, (size_t)s.m * sizeof(float), cudaMemcpyDeviceToDevice,
                               lgc_stream));
        return;
    }
    if (s.r <= 64 || s.m >= 4096) {
        k_sumto_thread<<<lgc_grid((size_t)s.m), LGC_THREADS, 0, lgc_stream>>>(y, x, s);
    } else {
        unsigned blocks = s.m < 65535 ? (unsigned)s.m : 65535u;
        k_sumto_block<<<blocks, LGC_THREADS, 0, lgc_stream>>>(y, x, s);
    }
    LGC_LAUNCHED();
}

/* ---- resampling over (nc, h, w) planes ---- */

__global__ void k_upsample2x(float *y, const float *x, int64_t nc, int64_t h, int64_t w) {
    int64_t ow = 2 * w, n = nc * 4 * h * w;
    for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < n;
         i += (int64_t)gridDim.x * blockDim.x) {
        int64_t ox = i % ow, t = i / ow;
        int64_t oy = t % (2 * h), p = t / (2 * h);
        y[i] = x[(p * h + oy / 2) * w + ox / 2];
    }
}

__global__ void k_sumpool2x2(float *y, const float *x, int64_t nc, int64_t h, int64_t w) {
    int64_t ow = w / 2, oh = h / 2, n = nc * oh * ow;
    for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < n;
         i += (int64_t)gridDim.x * blockDim.x) {
        int64_t ox = i % ow, t = i / ow;
        int64_t oy = t % oh, p = t / oh;
        const float *r0 = x + (p * h + 2 * oy) * w + 2 * ox;
        const float *r1 = r0 + w;
        y[i] = (r0[0] + r0[1]) + (r1[0] + r1[1]);
    }
}

void lgc_upsample2x(float *y, const float *x, int64_t nc, int64_t h, int64_t w) {
    size_t n = (size_t)(nc * 4 * h * w);
    if (n == 0) return;
    k_upsample2x<<<lgc_grid(n), LGC_THREADS, 0, lgc_stream>>>(y, x, nc, h, w);
    LGC_LAUNCHED();
}

void lgc_sumpool2x2(float *y, const float *x, int64_t nc, int64_t h, int64_t w) {
    size_t n = (size_t)(nc * (h / 2) * (w / 2));
    if (n == 0) return;
    k_sumpool2x2<<<lgc_grid(n), LGC_THREADS, 0, lgc_stream>>>(y, x, nc, h, w);
    LGC_LAUNCHED();
}

/* ---- Adam over one contiguous buffer ----
 * Arithmetic of PyTorch's single-tensor Adam with float32 state (as the
 * CPU backend): m.lerp_(g, 1-b1); v = b2 v + (1-b2) g^2;
 * p -= (lr / bc1) * m / (sqrt(v) / sqrt(bc2) + eps), the bias corrections
 * bc = 1 - b^t computed in double on the host. */

__global__ void k_adam(float *p, float *m, float *v, const float *g, size_t n, float w,
                       int lerp_lo, float b2, float c2, float step, float bc2s, float eps) {
    for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < n;
         i += (size_t)gridDim.x * blockDim.x) {
        float gi = g[i], mi = m[i];
        /* PyTorch's lerp picks its formula by the weight */
        mi = lerp_lo ? mi + w * (gi - mi) : gi - (gi - mi) * (1.0f - w);
        float vi = v[i] * b2 + c2 * gi * gi;
        m[i] = mi;
        v[i] = vi;
        p[i] -= step * (mi / (sqrtf(vi) / bc2s + eps));
    }
}

void lgc_adam(float *p, float *m, float *v, const float *g, size_t n, float lr, float b1,
              float b2, float eps, int64_t t) {
    if (n == 0) return;
    double bc1 = 1.0 - pow((double)b1, (double)t);
    double bc2 = 1.0 - pow((double)b2, (double)t);
    float w = (float)(1.0 - (double)b1);
    float c2 = (float)(1.0 - (double)b2);
    float step = (float)((double)lr / bc1);
    float bc2s = (float)sqrt(bc2);
    k_adam<<<lgc_grid(n), LGC_THREADS, 0, lgc_stream>>>(p, m, v, g, n, w, w < 0.5f, b2, c2,
                                                       step, bc2s, eps);
    LGC_LAUNCHED();
}
