/* CUDA backend: elementwise kernels (fill, unary, broadcasting binary, the
 * broadcast adjoint sum_to, 2x resampling, Adam). Every loop is grid-stride;
 * every reduction has a fixed order (no atomics), so results are bitwise
 * reproducible run to run.
 *
 * These kernels are bound by memory bandwidth, so the common cases move
 * float4 (16 bytes) per thread and step when the buffers are 16-byte
 * aligned (arena tensors are 64-byte aligned; a parameter slice may not
 * be): fill, unary, same-shape binary, a full tensor op a per-channel or
 * per-row operand (bias adds: channel found by lgc_fastdiv, not by
 * division), and the 2x resampling pair. Misaligned or odd shapes take the
 * scalar kernels. */
#include "cuda_internal.h"
#include "backend/adam_math.h"

#include <math.h>

/* Vector part of a float buffer of n elements: n/4 float4, then n%4 floats
 * that block 0 handles. */
static inline size_t n4_of(size_t n) { return n / 4; }

/* ---- fill ---- */

__global__ void k_fill(float *dst, float v, size_t n) {
    for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < n;
         i += (size_t)gridDim.x * blockDim.x)
        dst[i] = v;
}

__global__ void k_fill4(float *dst, float v, size_t n) {
    size_t n4 = n / 4;
    float4 *d4 = (float4 *)dst, q = make_float4(v, v, v, v);
    for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < n4;
         i += (size_t)gridDim.x * blockDim.x)
        d4[i] = q;
    if (blockIdx.x == 0 && threadIdx.x < n - 4 * n4) dst[4 * n4 + threadIdx.x] = v;
}

void lgc_fill(float *dst, float value, size_t n) {
    if (n == 0) return;
    if (n >= 4 && lgc_aligned(dst, 16))
        k_fill4<<<lgc_grid(n4_of(n)), LGC_THREADS, 0, lgc_stream>>>(dst, value, n);
    else
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

/* y may alias x: each element is read, then written, by one thread */
template <int OP>
__global__ void k_unary4(float *y, const float *x, size_t n, float a) {
    size_t n4 = n / 4;
    float4 *y4 = (float4 *)y;
    const float4 *x4 = (const float4 *)x;
    for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < n4;
         i += (size_t)gridDim.x * blockDim.x) {
        float4 v = x4[i];
        y4[i] = make_float4(unary_op<OP>(v.x, a), unary_op<OP>(v.y, a), unary_op<OP>(v.z, a),
                            unary_op<OP>(v.w, a));
    }
    if (blockIdx.x == 0 && threadIdx.x < n - 4 * n4)
        y[4 * n4 + threadIdx.x] = unary_op<OP>(x[4 * n4 + threadIdx.x], a);
}

template <int OP>
static void launch_unary(float *y, const float *x, size_t n, float a) {
    if (n >= 4 && lgc_aligned(y, 16) && lgc_aligned(x, 16))
        k_unary4<OP><<<lgc_grid(n4_of(n)), LGC_THREADS, 0, lgc_stream>>>(y, x, n, a);
    else
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
    case LG_B_ADD_RELU: { /* as the CPU backend: v < 0 so that NaN propagates */
        float v = a + b;
        return v < 0.0f ? 0.0f : v;
    }
    case LG_B_RELU_MASK: return a * (b > 0.0f ? 1.0f : 0.0f); /* inf/NaN in a stay visible */
    default: return a;
    }
}

/* Broadcasting is canonicalized on the host: size-1 dims of y are dropped
 * and neighbouring dims merged wherever both a and b are laid out
 * contiguously across them (a zero stride merges with a zero stride), so a
 * bias add (N,C,H,W) + (1,C,1,1) becomes 3 dims (N, C, H*W) and a scalar
 * operand 1 dim. Kernels are instantiated per number of dims (fewer
 * divisions) and index type (32-bit when everything fits: 64-bit division
 * costs several times more than 32-bit). */
template <typename I> struct bshape {
    I size[4], as[4], bs[4];
};

template <int OP>
__global__ void k_binary_same(float *y, const float *a, const float *b, size_t n) {
    for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < n;
         i += (size_t)gridDim.x * blockDim.x)
        y[i] = binary_op<OP>(a[i], b[i]);
}

template <int OP>
__global__ void k_binary_same4(float *y, const float *a, const float *b, size_t n) {
    size_t n4 = n / 4;
    float4 *y4 = (float4 *)y;
    const float4 *a4 = (const float4 *)a, *b4 = (const float4 *)b;
    for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < n4;
         i += (size_t)gridDim.x * blockDim.x) {
        float4 u = a4[i], v = b4[i];
        y4[i] = make_float4(binary_op<OP>(u.x, v.x), binary_op<OP>(u.y, v.y),
                            binary_op<OP>(u.z, v.z), binary_op<OP>(u.w, v.w));
    }
    size_t t = 4 * n4 + threadIdx.x;
    if (blockIdx.x == 0 && threadIdx.x < n - 4 * n4) y[t] = binary_op<OP>(a[t], b[t]);
}

/* y (O, C, I) = full (O, C, I) op bias (C), or bias op full when SWAP: a
 * bias add (N,C,H,W) + (1,C,1,1) is (N, C, H*W); a row broadcast
 * (N, F) + (F) is I = 1; a scalar operand C = 1. V = 4: I % 4 == 0 and
 * 16-byte aligned buffers, one float4 (one channel) per thread and step;
 * idiv divides the vector index by I/V, cdiv by C. n < 2^31. */
template <int OP, bool SWAP, int V>
__global__ void k_binary_bias(float *y, const float *full, const float *bias, unsigned nv,
                              lgc_fastdiv idiv, lgc_fastdiv cdiv) {
    for (unsigned i = blockIdx.x * blockDim.x + threadIdx.x; i < nv; i += gridDim.x * blockDim.x) {
        unsigned p = lgc_div(i, idiv);
        float bv = bias[p - lgc_div(p, cdiv) * cdiv.d];
        if (V == 4) {
            float4 u = ((const float4 *)full)[i];
            ((float4 *)y)[i] =
                SWAP ? make_float4(binary_op<OP>(bv, u.x), binary_op<OP>(bv, u.y),
                                   binary_op<OP>(bv, u.z), binary_op<OP>(bv, u.w))
                     : make_float4(binary_op<OP>(u.x, bv), binary_op<OP>(u.y, bv),
                                   binary_op<OP>(u.z, bv), binary_op<OP>(u.w, bv));
        } else {
            float u = full[i];
            y[i] = SWAP ? binary_op<OP>(bv, u) : binary_op<OP>(u, bv);
        }
    }
}

/* Element offsets in a and b of y's element i. */
template <int ND, typename I>
__host__ __device__ __forceinline__ void bin_index(I i, const bshape<I> &s, I *ia, I *ib) {
    I t = i, pa = 0, pb = 0;
    for (int d = ND - 1; d > 0; d--) {
        I q = t / s.size[d], c = t - q * s.size[d];
        pa += c * s.as[d];
        pb += c * s.bs[d];
        t = q;
    }
    *ia = pa + t * s.as[0];
    *ib = pb + t * s.bs[0];
}

template <int OP, int ND, typename I>
__global__ void k_binary_nd(float *y, const float *a, const float *b, I n, bshape<I> s) {
    for (I i = blockIdx.x * (I)blockDim.x + threadIdx.x; i < n; i += (I)gridDim.x * blockDim.x) {
        I ia, ib;
        bin_index<ND, I>(i, s, &ia, &ib);
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

/* Merged dims, outermost first: nd in 1..4 entries of size and strides. */
struct bmerged {
    int nd;
    int64_t size[4], as[4], bs[4];
};

static bmerged bmerge(const int64_t ysh[4], const int64_t ast[4], const int64_t bst[4]) {
    bmerged m;
    m.nd = 0;
    for (int d = 0; d < 4; d++) {
        if (ysh[d] == 1) continue;
        if (m.nd > 0) {
            int k = m.nd - 1; /* merge into the previous (outer) dim? */
            if (m.as[k] == ast[d] * ysh[d] && m.bs[k] == bst[d] * ysh[d]) {
                m.size[k] *= ysh[d];
                m.as[k] = ast[d];
                m.bs[k] = bst[d];
                continue;
            }
        }
        m.size[m.nd] = ysh[d];
        m.as[m.nd] = ast[d];
        m.bs[m.nd] = bst[d];
        m.nd++;
    }
    if (m.nd == 0) { /* a single element */
        m.nd = 1;
        m.size[0] = 1;
        m.as[0] = m.bs[0] = 1;
    }
    return m;
}

template <typename I> static bshape<I> bshape_of(const bmerged &m) {
    bshape<I> s;
    for (int d = 0; d < 4; d++) {
        s.size[d] = d < m.nd ? (I)m.size[d] : 1;
        s.as[d] = d < m.nd ? (I)m.as[d] : 0;
        s.bs[d] = d < m.nd ? (I)m.bs[d] : 0;
    }
    return s;
}

template <int OP, int ND, typename I>
static void launch_nd(float *y, const float *a, const float *b, size_t n, const bmerged &m) {
    bshape<I> s = bshape_of<I>(m);
    k_binary_nd<OP, ND, I><<<lgc_grid(n), LGC_THREADS, 0, lgc_stream>>>(y, a, b, (I)n, s);
}

template <int OP, typename I>
static void launch_merged(float *y, const float *a, const float *b, size_t n, const bmerged &m) {
    switch (m.nd) {
    case 1: launch_nd<OP, 1, I>(y, a, b, n, m); break;
    case 2: launch_nd<OP, 2, I>(y, a, b, n, m); break;
    case 3: launch_nd<OP, 3, I>(y, a, b, n, m); break;
    default: launch_nd<OP, 4, I>(y, a, b, n, m); break;
    }
}

/* The bias pattern of bias_shape against y: its non-1 dims are one run
 * [d0, d1] equal to y's there. C = the run's size, I = y's size after it
 * (a scalar: C = 1, I = all of y, so that its index is always 0 and float4
 * works whenever y's size is a multiple of 4). False for anything else. */
static bool bias_pattern(const int64_t bsh[4], const int64_t ysh[4], int64_t *C, int64_t *I) {
    int d0 = -1, d1 = -1;
    for (int d = 0; d < 4; d++) {
        if (bsh[d] == 1) continue;
        if (bsh[d] != ysh[d]) return false;
        if (d0 < 0) d0 = d;
        else if (d != d1 + 1) return false; /* a gap: not one run */
        d1 = d;
    }
    int64_t c = 1, in = 1;
    for (int d = 0; d < 4; d++) {
        if (d0 >= 0 && d >= d0 && d <= d1) c *= ysh[d];
        if (d > d1) in *= ysh[d];
    }
    *C = c;
    *I = in;
    return true;
}

template <int OP, bool SWAP, int V>
static void launch_bias_v(float *y, const float *full, const float *bias, unsigned nv,
                          lgc_fastdiv idiv, lgc_fastdiv cdiv) {
    k_binary_bias<OP, SWAP, V><<<lgc_grid(nv), LGC_THREADS, 0, lgc_stream>>>(y, full, bias, nv,
                                                                           idiv, cdiv);
}

/* Tries the bias fast path (one operand y-shaped, the other a bias);
 * false: nothing queued. */
template <int OP>
static bool launch_bias(float *y, const int64_t ysh[4], const float *a, const int64_t ash[4],
                        const float *b, const int64_t bsh[4], size_t n) {
    if (n >= (size_t)INT32_MAX) return false;
    bool swap = !same_shape(ash, ysh); /* a is the bias */
    const float *full = swap ? b : a, *bias = swap ? a : b;
    if (!same_shape(swap ? bsh : ash, ysh)) return false;
    int64_t C, I;
    if (!bias_pattern(swap ? ash : bsh, ysh, &C, &I)) return false;
    bool v4 = I % 4 == 0 && lgc_aligned(y, 16) && lgc_aligned(full, 16);
    unsigned nv = (unsigned)(v4 ? n / 4 : n);
    lgc_fastdiv idiv = lgc_fastdiv_make((unsigned)(v4 ? I / 4 : I)),
                cdiv = lgc_fastdiv_make((unsigned)C);
    if (v4 && swap) launch_bias_v<OP, true, 4>(y, full, bias, nv, idiv, cdiv);
    else if (v4) launch_bias_v<OP, false, 4>(y, full, bias, nv, idiv, cdiv);
    else if (swap) launch_bias_v<OP, true, 1>(y, full, bias, nv, idiv, cdiv);
    else launch_bias_v<OP, false, 1>(y, full, bias, nv, idiv, cdiv);
    return true;
}

template <int OP>
static void launch_binary(float *y, const int64_t ysh[4], const float *a,
                          const int64_t ash[4], const float *b, const int64_t bsh[4]) {
    size_t n = (size_t)(ysh[0] * ysh[1] * ysh[2] * ysh[3]);
    if (n == 0) return;
    if (same_shape(ash, ysh) && same_shape(bsh, ysh)) {
        if (n >= 4 && lgc_aligned(y, 16) && lgc_aligned(a, 16) && lgc_aligned(b, 16))
            k_binary_same4<OP><<<lgc_grid(n4_of(n)), LGC_THREADS, 0, lgc_stream>>>(y, a, b, n);
        else
            k_binary_same<OP><<<lgc_grid(n), LGC_THREADS, 0, lgc_stream>>>(y, a, b, n);
    } else if (launch_bias<OP>(y, ysh, a, ash, b, bsh, n)) {
    } else {
        int64_t ast[4], bst[4];
        bcast_strides(ast, ash, ysh);
        bcast_strides(bst, bsh, ysh);
        bmerged m = bmerge(ysh, ast, bst);
        /* the largest index formed is below n or below a's / b's size */
        if (n < (size_t)INT32_MAX / 2)
            launch_merged<OP, unsigned>(y, a, b, n, m);
        else
            launch_merged<OP, int64_t>(y, a, b, n, m);
    }
    LGC_LAUNCHED();
}

void lgc_binary(lg_binary op, float *y, const int64_t yshape[4], const float *a,
                const int64_t ashape[4], const float *b, const int64_t bshape[4]) {
    switch (op) {
#define B(o) case o: launch_binary<o>(y, yshape, a, ashape, b, bshape); break;
    B(LG_B_ADD) B(LG_B_SUB) B(LG_B_MUL) B(LG_B_DIV) B(LG_B_MAX) B(LG_B_ADD_RELU)
    B(LG_B_RELU_MASK)
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

/* ---- sum_to fast paths ----
 * After dropping size-1 dims and merging neighbours of the same kind (kept
 * K / reduced R), the common cases are two-level: output o and reduction
 * index j address x at base(o) + off(j) with
 *   base(o) = (o / ob) * os1 + (o % ob) * os2,
 *   off(j)  = (j / jb) * js1 + (j % jb) * js2.
 * [R?,K,R] (a bias gradient (N,C,HW) -> C): ob = C, os2 = HW; jb = HW,
 *   js1 = C*HW, js2 = 1: one block (or several, see below) per output,
 *   coalesced over the inner reduced run.
 * [K?,R,K] ((N,C,H,W) -> (1,C,H,W)): ob = K2, os1 = R*K2, os2 = 1; jb = R,
 *   js2 = K2: one thread per output, coalesced over neighbouring outputs.
 * A block-per-output reduction with few outputs is split into `splits`
 * blocks per output whose partials a second kernel adds in a fixed order,
 * so the result does not depend on timing. */
template <typename I> struct red2 {
    I m, len;           /* outputs, reduction length */
    I ob, os1, os2;     /* base(o) */
    I jb, js1, js2;     /* off(j) */
    I splits, chunk;    /* block kernel: blocks per output, j per block */
};

template <typename I>
__host__ __device__ __forceinline__ I red2_base(const red2<I> &s, I o) {
    I q = o / s.ob;
    return q * s.os1 + (o - q * s.ob) * s.os2;
}
template <typename I>
__host__ __device__ __forceinline__ I red2_off(const red2<I> &s, I j) {
    I q = j / s.jb;
    return q * s.js1 + (j - q * s.jb) * s.js2;
}

template <typename I>
__global__ void k_red2_thread(float *y, const float *x, red2<I> s) {
    for (I o = blockIdx.x * (I)blockDim.x + threadIdx.x; o < s.m; o += (I)gridDim.x * blockDim.x) {
        const float *xb = x + red2_base(s, o);
        float acc = 0.0f;
        for (I j = 0; j < s.len; j++) acc += xb[red2_off(s, j)];
        y[o] = acc;
    }
}

/* grid: m * splits blocks; block (o, k) sums j in [k*chunk, (k+1)*chunk) */
template <typename I>
__global__ void k_red2_block(float *y, double *partial, const float *x, red2<I> s) {
    __shared__ float sh[LGC_THREADS];
    I o = blockIdx.x / s.splits, k = blockIdx.x - o * s.splits;
    const float *xb = x + red2_base(s, o);
    I j0 = k * s.chunk, j1 = j0 + s.chunk < s.len ? j0 + s.chunk : s.len;
    float acc = 0.0f;
    for (I j = j0 + threadIdx.x; j < j1; j += blockDim.x) acc += xb[red2_off(s, j)];
    sh[threadIdx.x] = acc;
    __syncthreads();
    for (int w = LGC_THREADS / 2; w > 0; w >>= 1) {
        if ((int)threadIdx.x < w) sh[threadIdx.x] += sh[threadIdx.x + w];
        __syncthreads();
    }
    if (threadIdx.x == 0) {
        if (s.splits == 1) y[o] = sh[0];
        else partial[blockIdx.x] = sh[0];
    }
}

__global__ void k_red2_finish(float *y, const double *partial, int m, int splits) {
    for (int o = blockIdx.x * blockDim.x + threadIdx.x; o < m; o += gridDim.x * blockDim.x) {
        double acc = 0.0;
        for (int k = 0; k < splits; k++) acc += partial[o * splits + k];
        y[o] = (float)acc;
    }
}

template <typename I>
static void launch_red2(float *y, const float *x, const red2<int64_t> &s64, bool block) {
    red2<I> s;
    s.m = (I)s64.m, s.len = (I)s64.len;
    s.ob = (I)s64.ob, s.os1 = (I)s64.os1, s.os2 = (I)s64.os2;
    s.jb = (I)s64.jb, s.js1 = (I)s64.js1, s.js2 = (I)s64.js2;
    s.splits = 1, s.chunk = s.len;
    if (!block) {
        k_red2_thread<I><<<lgc_grid((size_t)s64.m), LGC_THREADS, 0, lgc_stream>>>(y, x, s);
        return;
    }
    /* enough blocks for two waves of an H100 when outputs are few */
    const int64_t target = 2 * 132;
    int64_t splits = 1;
    if (s64.m < target && s64.len >= 8192) {
        splits = (target + s64.m - 1) / s64.m;
        if (splits > s64.len / 4096) splits = s64.len / 4096;
        if (splits > LGC_RED_BLOCKS / s64.m) splits = LGC_RED_BLOCKS / s64.m;
        if (splits < 1) splits = 1;
    }
    s.splits = (I)splits;
    s.chunk = (I)((s64.len + splits - 1) / splits);
    k_red2_block<I><<<(unsigned)(s64.m * splits), LGC_THREADS, 0, lgc_stream>>>(
        y, lgc_red_partial, x, s);
    if (splits > 1) {
        LGC_LAUNCHED();
        k_red2_finish<<<lgc_grid((size_t)s64.m), LGC_THREADS, 0, lgc_stream>>>(
            y, lgc_red_partial, (int)s64.m, (int)splits);
    }
}

/* How sum_to_fast() reduces: */
enum { RP_GENERIC, RP_ALL, RP_THREAD, RP_BLOCK };

/* abc: for the [R,K,R] / [K,R] pattern, x seen as (A, C, B) summed to (C);
 * abc[0] = 0 otherwise. */
static int sum_to_plan(const int64_t ysh[4], const int64_t xsh[4], red2<int64_t> *out,
                       int64_t abc[3]) {
    abc[0] = 0;
    int64_t size[4];
    bool red[4];
    int ns = 0;
    for (int d = 0; d < 4; d++) {
        if (xsh[d] == 1) continue;
        bool r = ysh[d] != xsh[d];
        if (ns > 0 && red[ns - 1] == r) {
            size[ns - 1] *= xsh[d];
            continue;
        }
        size[ns] = xsh[d];
        red[ns] = r;
        ns++;
    }
    if (ns < 2) return ns == 1 && red[0] ? RP_ALL : RP_GENERIC; /* ALL: a scalar */
    red2<int64_t> s;
    bool block;
    if (red[ns - 1] && ns <= 3 && (ns == 2 || red[0])) {
        /* [K,R] or [R,K,R]: A outer reduced, C kept, B inner reduced */
        int64_t A = ns == 3 ? size[0] : 1, C = size[ns - 2], B = size[ns - 1];
        s.m = C, s.len = A * B;
        s.ob = C, s.os1 = 0, s.os2 = B;
        s.jb = B, s.js1 = C * B, s.js2 = 1;
        /* a block per output unless the sums are short and outputs many */
        block = s.len >= 256 || s.m < 4096;
        abc[0] = A, abc[1] = C, abc[2] = B;
    } else if (!red[ns - 1] && ns <= 3 && (ns == 2 || !red[0])) {
        /* [R,K] or [K,R,K]: A outer kept, R reduced, B inner kept */
        int64_t A = ns == 3 ? size[0] : 1, R = size[ns - 2], B = size[ns - 1];
        s.m = A * B, s.len = R;
        s.ob = B, s.os1 = R * B, s.os2 = 1;
        s.jb = R, s.js1 = 0, s.js2 = B;
        /* few outputs with long sums: a block each beats a thread each */
        block = s.m < 2048 && R > 64;
    } else {
        return RP_GENERIC;
    }
    s.splits = 1, s.chunk = s.len;
    *out = s;
    return block ? RP_BLOCK : RP_THREAD;
}

/* Tries the fast paths; false: use the generic kernels. */
static bool sum_to_fast(float *y, const int64_t ysh[4], const float *x, const int64_t xsh[4],
                        int64_t xn) {
    red2<int64_t> s;
    int64_t abc[3];
    int how = sum_to_plan(ysh, xsh, &s, abc);
    if (how == RP_GENERIC) return false;
    /* per-channel sums (bias gradients): the (chunk, channel) grid with
     * float4 loads of cuda_bn.cu */
    if (how == RP_BLOCK && abc[0] > 0 && lgc_chan_sum(y, x, abc[0], abc[1], abc[2])) return true;
    if (how == RP_ALL)
        lgc_sum_all(y, x, (size_t)xn);
    else if (xn < (int64_t)INT32_MAX / 2)
        launch_red2<unsigned>(y, x, s, how == RP_BLOCK);
    else
        launch_red2<int64_t>(y, x, s, how == RP_BLOCK);
    return true;
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
    if (s.r == 0) { /* sum over an empty dim */
        lgc_fill(y, 0.0f, (size_t)s.m);
        return;
    }
    if (s.r == 1) {
        LGC_CK(cudaMemcpyAsync(y, x, (size_t)s.m * sizeof(float), cudaMemcpyDeviceToDevice,
                               lgc_stream));
        return;
    }
    if (sum_to_fast(y, yshape, x, xshape, xn)) {
        LGC_LAUNCHED();
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

/* 32-bit indices when the tensors fit (cheaper division), else 64-bit */
template <typename I>
__global__ void k_upsample2x(float *y, const float *x, I nc, I h, I w) {
    I ow = 2 * w, n = nc * 4 * h * w;
    for (I i = blockIdx.x * (I)blockDim.x + threadIdx.x; i < n; i += (I)gridDim.x * blockDim.x) {
        I t = i / ow, ox = i - t * ow;
        I p = t / (2 * h), oy = t - p * (2 * h);
        y[i] = x[(p * h + oy / 2) * w + ox / 2];
    }
}

/* oh, ow round down as on the CPU: an odd h's last row and an odd w's last
 * column are never read (plane p starts at input row p*h, not 2*p*oh) */
template <typename I>
__global__ void k_sumpool2x2(float *y, const float *x, I nc, I h, I w) {
    I ow = w / 2, oh = h / 2, n = nc * oh * ow;
    for (I i = blockIdx.x * (I)blockDim.x + threadIdx.x; i < n; i += (I)gridDim.x * blockDim.x) {
        I t = i / ow, ox = i - t * ow;
        I p = t / oh, oy = t - p * oh;
        const float *r0 = x + (p * h + 2 * oy) * w + 2 * ox;
        const float *r1 = r0 + w;
        y[i] = (r0[0] + r0[1]) + (r1[0] + r1[1]);
    }
}

/* Vector forms, one thread per pair of neighbouring elements of the coarse
 * grid. Input row r = p*h + iy of x is output rows 2r and 2r+1 of y (its
 * plane p starts at output row 2*p*h), so pair q of x (row q / (w/2)) maps
 * to two float4 of y without further index math.
 * upsample: w even, x 8-byte and y 16-byte aligned; a float2 read, a
 *   float4 written to each of the two output rows. */
__global__ void k_upsample2x_v(float *y, const float *x, unsigned npairs, lgc_fastdiv wp) {
    const unsigned w = 2 * wp.d;
    for (unsigned q = blockIdx.x * blockDim.x + threadIdx.x; q < npairs;
         q += gridDim.x * blockDim.x) {
        unsigned row = lgc_div(q, wp), j = q - row * wp.d;
        float2 v = ((const float2 *)x)[q];
        float4 o = make_float4(v.x, v.x, v.y, v.y);
        float *y0 = y + (size_t)(2 * row) * (2 * w);
        ((float4 *)y0)[j] = o;
        ((float4 *)(y0 + 2 * w))[j] = o;
    }
}

/* sumpool: w % 4 == 0, h even (output row `row` is input rows 2*row and
 * 2*row + 1 across planes only then; odd sizes take k_sumpool2x2), x
 * 16-byte and y 8-byte aligned; output pair q (row q / (w/4)) reads a
 * float4 from each of input rows 2*row and 2*row + 1 and writes a float2;
 * the same sums in the same order as the CPU. */
__global__ void k_sumpool2x2_v(float *y, const float *x, unsigned npairs, lgc_fastdiv owp) {
    const unsigned w = 4 * owp.d;
    for (unsigned q = blockIdx.x * blockDim.x + threadIdx.x; q < npairs;
         q += gridDim.x * blockDim.x) {
        unsigned row = lgc_div(q, owp), j = q - row * owp.d;
        const float *x0 = x + (size_t)(2 * row) * w;
        float4 a = ((const float4 *)x0)[j], b = ((const float4 *)(x0 + w))[j];
        ((float2 *)y)[q] = make_float2((a.x + a.y) + (b.x + b.y), (a.z + a.w) + (b.z + b.w));
    }
}

void lgc_upsample2x(float *y, const float *x, int64_t nc, int64_t h, int64_t w) {
    size_t n = (size_t)(nc * 4 * h * w);
    if (n == 0) return;
    if (w % 2 == 0 && n < (size_t)INT32_MAX && lgc_aligned(x, 8) && lgc_aligned(y, 16)) {
        unsigned npairs = (unsigned)(nc * h * w / 2);
        k_upsample2x_v<<<lgc_grid(npairs), LGC_THREADS, 0, lgc_stream>>>(
            y, x, npairs, lgc_fastdiv_make((unsigned)(w / 2)));
    } else if (n < (size_t)INT32_MAX / 2)
        k_upsample2x<unsigned><<<lgc_grid(n), LGC_THREADS, 0, lgc_stream>>>(
            y, x, (unsigned)nc, (unsigned)h, (unsigned)w);
    else
        k_upsample2x<int64_t><<<lgc_grid(n), LGC_THREADS, 0, lgc_stream>>>(y, x, nc, h, w);
    LGC_LAUNCHED();
}

void lgc_sumpool2x2(float *y, const float *x, int64_t nc, int64_t h, int64_t w) {
    size_t n = (size_t)(nc * (h / 2) * (w / 2));
    if (n == 0) return;
    if (w % 4 == 0 && h % 2 == 0 && (size_t)(nc * h * w) < (size_t)INT32_MAX &&
        lgc_aligned(x, 16) && lgc_aligned(y, 8)) {
        unsigned npairs = (unsigned)(n / 2);
        k_sumpool2x2_v<<<lgc_grid(npairs), LGC_THREADS, 0, lgc_stream>>>(
            y, x, npairs, lgc_fastdiv_make((unsigned)(w / 4)));
    } else if ((size_t)(nc * h * w) < (size_t)INT32_MAX / 2)
        k_sumpool2x2<unsigned><<<lgc_grid(n), LGC_THREADS, 0, lgc_stream>>>(
            y, x, (unsigned)nc, (unsigned)h, (unsigned)w);
    else
        k_sumpool2x2<int64_t><<<lgc_grid(n), LGC_THREADS, 0, lgc_stream>>>(y, x, nc, h, w);
    LGC_LAUNCHED();
}

/* ---- Adam over one contiguous buffer ----
 * The arithmetic is backend/adam_math.h's, shared with the CPU backend; the
 * bias corrections are formed on the host (adam) or by adam_prep on the
 * device (adam_flagged). */

/* hp: NULL, or adam_prep's {step, sqrt(bc2), apply} read on the device
 * (then step and bc2s are ignored, and nothing is written unless apply). */
__global__ void k_adam(float *p, float *m, float *v, const float *g, size_t n, lg_adam_k k,
                       float step, float bc2s, const float *hp) {
    if (hp) {
        if (hp[2] != 1.0f) return;
        step = hp[0];
        bc2s = hp[1];
    }
    for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < n;
         i += (size_t)gridDim.x * blockDim.x)
        lg_adam_elem(p + i, m + i, v + i, g[i], &k, step, bc2s);
}

void lgc_adam(float *p, float *m, float *v, const float *g, size_t n, float lr, float b1,
              float b2, float eps, int64_t t) {
    if (n == 0) return;
    float step, bc2s;
    lg_adam_bias(lr, b1, b2, (double)t, &step, &bc2s);
    k_adam<<<lgc_grid(n), LGC_THREADS, 0, lgc_stream>>>(p, m, v, g, n,
                                                       lg_adam_consts(b1, b2, eps), step, bc2s,
                                                       nullptr);
    LGC_LAUNCHED();
}

/* ---- the sync-free step's flag-driven helpers (backend.h) ---- */

__global__ void k_adam_prep(float *hp, float *tc, const float *flag, const float *lr, float b1,
                            float b2) {
    lg_adam_prep_one(hp, tc, flag, lr, b1, b2);
}

void lgc_adam_prep(float *hp, float *tc, const float *flag, const float *lr, float b1, float b2) {
    k_adam_prep<<<1, 1, 0, lgc_stream>>>(hp, tc, flag, lr, b1, b2);
    LGC_LAUNCHED();
}

void lgc_adam_flagged(float *p, float *m, float *v, const float *g, size_t n, const float *hp,
                      float b1, float b2, float eps) {
    if (n == 0) return;
    k_adam<<<lgc_grid(n), LGC_THREADS, 0, lgc_stream>>>(p, m, v, g, n,
                                                       lg_adam_consts(b1, b2, eps), 0.0f, 1.0f,
                                                       hp);
    LGC_LAUNCHED();
}

__global__ void k_cond_copy(float *dst, const float *src, size_t n, const float *flag) {
    if (flag[0] == 1.0f) return;
    for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < n;
         i += (size_t)gridDim.x * blockDim.x)
        dst[i] = src[i];
}

void lgc_cond_copy(float *dst, const float *src, size_t n, const float *flag) {
    if (n == 0 || dst == src) return;
    k_cond_copy<<<lgc_grid(n), LGC_THREADS, 0, lgc_stream>>>(dst, src, n, flag);
    LGC_LAUNCHED();
}

__global__ void k_flag_track(float *c, float *flag) {
    if (c[1] >= c[3]) {
        flag[0] = 0.0f;
        return;
    }
    if (flag[0] == 1.0f) {
        c[0] = 0.0f;
        return;
    }
    c[0] += 1.0f;
    c[2] += 1.0f;
    if (c[0] > c[1]) c[1] = c[0];
}

void lgc_flag_track(float *c, float *flag) {
    k_flag_track<<<1, 1, 0, lgc_stream>>>(c, flag);
    LGC_LAUNCHED();
}
