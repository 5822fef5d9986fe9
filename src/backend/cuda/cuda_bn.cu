/* CUDA backend: batch norm over x (n, c, hw), and the per-channel sums that
 * bias gradients need (sum_to (n, c, hw) -> (c)).
 *
 * A channel's n*hw values are n runs of hw contiguous floats, so one block
 * per channel (the first version) left most of an H100 idle at the
 * generator's shapes: 256 channels are 256 blocks, each looping serially
 * over 131,072 values at (128, 256, 32, 32). Here every pass is a grid over
 * (chunk, channel) or over all elements, with float4 loads where hw % 4 == 0
 * and the buffers are 16-byte aligned:
 *  1. k_chan_partial: block (k, ch) sums its chunk of channel ch in double
 *     (sum and sum of squares, or sum dy and sum dy*(x-mean)); one partial
 *     pair per block into lgc_chan_partial (c, K, 2).
 *  2. a finish kernel, one thread per channel, adds the K partials in chunk
 *     order (fixed: the result does not depend on timing), writes the
 *     statistics and the per-channel coefficients of pass 3.
 *  3. k_chan_apply: y = (x - mean) * scale + shift (forward, fused
 *     normalize + affine), or dx = a*dy + b*(x - mean) + d (backward), one
 *     float4 per thread and step.
 * Memory traffic: forward reads x twice and writes y once (the byte floor
 * for data that does not fit in L2), backward reads dy and x twice and
 * writes dx. The variance is E[x^2] - mean^2 accumulated in double: its
 * rounding error is about 1e-16 * (1 + mean^2/var) relative, far below
 * float resolution for any activation statistics (the CPU backend's two
 * passes agree to ~1e-16).
 *
 * Synchronized batch norm (the table's bn_stats, bn_bwd_sums and
 * bn_bwd_apply; src/ops/batchnorm.c combines the processes' values on the
 * host between them) runs the same passes split in three: pass 1 and a
 * finish kernel for each of the sums, pass 3 after a kernel that turns the
 * whole batch's sums into the coefficients. bn_stats' m2 is q - s*mean in
 * double from the same one read of x (the argument above). Traffic: x once
 * (bn_stats), dy and x once (bn_bwd_sums), dy and x read and dx written
 * (bn_bwd_apply).
 *
 * Shapes beyond the fixed scratch (c > 65535, or 2^31 elements and more)
 * use the first version's one-block-per-channel kernels, kept below. */
#include "cuda_internal.h"

#include <math.h>

enum { CH_THREADS = 256 };

/* What k_chan_partial sums over a channel: x; x and x^2; dy and
 * dy*(x - mean). */
enum { CM_SUM, CM_STATS, CM_BWD };

template <int MODE>
__device__ __forceinline__ void chan_acc1(double &s0, double &s1, float a, float b, double mu) {
    double u = (double)a;
    s0 += u;
    if (MODE == CM_STATS) s1 += u * u;
    if (MODE == CM_BWD) s1 += u * ((double)b - mu);
}
template <int MODE>
__device__ __forceinline__ void chan_acc(double &s0, double &s1, float a, float b, double mu) {
    chan_acc1<MODE>(s0, s1, a, b, mu);
}
template <int MODE>
__device__ __forceinline__ void chan_acc(double &s0, double &s1, float4 a, float4 b, double mu) {
    chan_acc1<MODE>(s0, s1, a.x, b.x, mu);
    chan_acc1<MODE>(s0, s1, a.y, b.y, mu);
    chan_acc1<MODE>(s0, s1, a.z, b.z, mu);
    chan_acc1<MODE>(s0, s1, a.w, b.w, mu);
}

template <int V> struct chan_vec;
template <> struct chan_vec<1> {
    typedef float T;
    static __device__ __forceinline__ float zero() { return 0.0f; }
};
template <> struct chan_vec<4> {
    typedef float4 T;
    static __device__ __forceinline__ float4 zero() { return make_float4(0.f, 0.f, 0.f, 0.f); }
};

/* Sums (a, b) over the block in a fixed order (warp shuffles, then the
 * warps' results in warp 0); the result is valid in thread 0. */
__device__ __forceinline__ void block_sum2(double &a, double &b) {
    __shared__ double sa[CH_THREADS / 32], sb[CH_THREADS / 32];
    for (int o = 16; o > 0; o >>= 1) {
        a += __shfl_down_sync(0xffffffffu, a, o);
        b += __shfl_down_sync(0xffffffffu, b, o);
    }
    const int w = threadIdx.x >> 5, l = threadIdx.x & 31;
    if (l == 0) {
        sa[w] = a;
        sb[w] = b;
    }
    __syncthreads();
    if (w == 0) {
        a = l < CH_THREADS / 32 ? sa[l] : 0.0;
        b = l < CH_THREADS / 32 ? sb[l] : 0.0;
        for (int o = 16; o > 0; o >>= 1) {
            a += __shfl_down_sync(0xffffffffu, a, o);
            b += __shfl_down_sync(0xffffffffu, b, o);
        }
    }
}

/* The element walk of one thread of k_chan_partial, in units of V floats:
 * channel ch's vector v (0 <= v < n*hwv) is image img = v / hwv, position
 * j = v % hwv, at ((img*c + ch)*hwv + j). A thread starts at v0 + tid and
 * steps by the block size, carrying (img, j) forward without dividing. */
struct chan_walk {
    unsigned img, j;
};
__host__ __device__ __forceinline__ chan_walk chan_walk_start(unsigned v, unsigned hwv) {
    chan_walk w;
    w.img = v / hwv;
    w.j = v - w.img * hwv;
    return w;
}
__host__ __device__ __forceinline__ void chan_walk_step(chan_walk &w, unsigned hwv,
                                                        unsigned step_img, unsigned step_j) {
    w.img += step_img;
    w.j += step_j;
    if (w.j >= hwv) {
        w.j -= hwv;
        w.img++;
    }
}
__host__ __device__ __forceinline__ size_t chan_off(const chan_walk &w, unsigned c, unsigned ch,
                                                    unsigned hwv) {
    return ((size_t)w.img * c + ch) * hwv + w.j;
}

/* grid (K, c): block (k, ch) sums vectors [k*chunkv, (k+1)*chunkv) of
 * channel ch (cntv = n*hwv vectors in all) into part[(ch*K + k)*2 + {0,1}].
 * b and mean are read only in CM_BWD. */
template <int MODE, int V>
__global__ void __launch_bounds__(CH_THREADS)
k_chan_partial(double *part, const float *a, const float *b, const float *mean, unsigned c,
               unsigned hwv, unsigned cntv, unsigned chunkv, unsigned step_img, unsigned step_j) {
    typedef typename chan_vec<V>::T VT;
    const VT *av = (const VT *)a, *bv = (const VT *)b;
    const unsigned ch = blockIdx.y, k = blockIdx.x, K = gridDim.x;
    const unsigned v0 = k * chunkv;
    const unsigned v1 = cntv - v0 < chunkv ? cntv : v0 + chunkv; /* v0 <= cntv */
    const double mu = MODE == CM_BWD ? (double)mean[ch] : 0.0;
    double s0 = 0.0, s1 = 0.0;
    const unsigned v = v0 + threadIdx.x;
    if (v0 < cntv && v < v1) {
        /* four loads in flight per thread (no bound check between them),
         * accumulated in iteration order */
        const unsigned nit = (v1 - v + CH_THREADS - 1) / CH_THREADS;
        chan_walk w = chan_walk_start(v, hwv);
        unsigned it = 0;
        for (; it + 4 <= nit; it += 4) {
            size_t off[4];
            VT x[4], y[4];
#pragma unroll
            for (int u = 0; u < 4; u++) {
                off[u] = chan_off(w, c, ch, hwv);
                chan_walk_step(w, hwv, step_img, step_j);
            }
#pragma unroll
            for (int u = 0; u < 4; u++) {
                x[u] = av[off[u]];
                y[u] = MODE == CM_BWD ? bv[off[u]] : chan_vec<V>::zero();
            }
#pragma unroll
            for (int u = 0; u < 4; u++) chan_acc<MODE>(s0, s1, x[u], y[u], mu);
        }
        for (; it < nit; it++) {
            size_t off = chan_off(w, c, ch, hwv);
            VT x = av[off];
            VT y = MODE == CM_BWD ? bv[off] : chan_vec<V>::zero();
            chan_acc<MODE>(s0, s1, x, y, mu);
            chan_walk_step(w, hwv, step_img, step_j);
        }
    }
    block_sum2(s0, s1);
    if (threadIdx.x == 0) {
        double *p = part + ((size_t)ch * K + k) * 2;
        p[0] = s0;
        p[1] = s1;
    }
}

/* Pass 3: y = (a - c.x) * c.y + c.z (AP_NORM), or
 * y = c.x * a + c.y * (b - c.w) + c.z (AP_BWD), with c = coef[channel];
 * over nv vectors of the whole (n, c, hw) tensor. y may alias a or b
 * (each element is read before it is written, by the same thread). */
enum { AP_NORM, AP_BWD };

template <int MODE>
__device__ __forceinline__ float apply1(float a, float b, const float4 &c) {
    return MODE == AP_NORM ? (a - c.x) * c.y + c.z : c.x * a + c.y * (b - c.w) + c.z;
}
template <int MODE>
__device__ __forceinline__ float apply_v(float a, float b, const float4 &c) {
    return apply1<MODE>(a, b, c);
}
template <int MODE>
__device__ __forceinline__ float4 apply_v(float4 a, float4 b, const float4 &c) {
    return make_float4(apply1<MODE>(a.x, b.x, c), apply1<MODE>(a.y, b.y, c),
                       apply1<MODE>(a.z, b.z, c), apply1<MODE>(a.w, b.w, c));
}

template <int MODE, int V>
__global__ void k_chan_apply(float *y, const float *a, const float *b, const float4 *coef,
                             unsigned nv, lgc_fastdiv hwv, lgc_fastdiv cdiv) {
    typedef typename chan_vec<V>::T VT;
    VT *yv = (VT *)y;
    const VT *av = (const VT *)a, *bv = (const VT *)b;
    for (unsigned i = blockIdx.x * blockDim.x + threadIdx.x; i < nv; i += gridDim.x * blockDim.x) {
        unsigned p = lgc_div(i, hwv);        /* plane (image, channel) */
        unsigned ch = p - lgc_div(p, cdiv) * cdiv.d;
        float4 co = coef[ch];
        VT x = av[i];
        VT z = MODE == AP_BWD ? bv[i] : chan_vec<V>::zero();
        yv[i] = apply_v<MODE>(x, z, co);
    }
}

/* ---- finish kernels: one thread per channel, partials in chunk order ---- */

/* (s0, s1) = channel ch's K partial pairs added in chunk order (fixed, so
 * the result does not depend on timing) */
__device__ __forceinline__ void chan_partials_sum(const double *part, unsigned ch, unsigned K,
                                                  double &s0, double &s1) {
    const double *p = part + (size_t)ch * K * 2;
    s0 = 0.0;
    s1 = 0.0;
    for (unsigned k = 0; k < K; k++) {
        s0 += p[2 * k];
        s1 += p[2 * k + 1];
    }
}

__global__ void k_bn_train_finish(float *mean, float *rstd, float *run_mean, float *run_var,
                                  float4 *coef, const double *part, const float *gamma,
                                  const float *beta, unsigned c, unsigned K, double cnt,
                                  float eps, float momentum) {
    unsigned ch = blockIdx.x * blockDim.x + threadIdx.x;
    if (ch >= c) return;
    double s, q;
    chan_partials_sum(part, ch, K, s, q);
    double mu = s / cnt;
    double var = q / cnt - mu * mu; /* biased; NaN stays NaN */
    if (var < 0.0) var = 0.0;
    double rs = 1.0 / sqrt(var + (double)eps);
    mean[ch] = (float)mu;
    rstd[ch] = (float)rs;
    double g = gamma ? (double)gamma[ch] : 1.0, bt = beta ? (double)beta[ch] : 0.0;
    /* the CPU backend's constants: (x - (float)mu) * (float)(g*rs) + (float)b */
    coef[ch] = make_float4((float)mu, (float)(g * rs), (float)bt, 0.0f);
    if (run_mean && run_var) {
        /* PyTorch: run = (1-m)*run + m*batch, unbiased batch variance */
        double unb = cnt > 1.0 ? var * cnt / (cnt - 1.0) : var;
        run_mean[ch] = (float)((1.0 - momentum) * run_mean[ch] + (double)momentum * mu);
        run_var[ch] = (float)((1.0 - momentum) * run_var[ch] + (double)momentum * unb);
    }
}

__global__ void k_bn_eval_coef(float4 *coef, const float *gamma, const float *beta,
                               const float *run_mean, const float *run_var, unsigned c,
                               float eps) {
    unsigned ch = blockIdx.x * blockDim.x + threadIdx.x;
    if (ch >= c) return;
    double rs = 1.0 / sqrt((double)run_var[ch] + (double)eps);
    double g = gamma ? (double)gamma[ch] : 1.0, bt = beta ? (double)beta[ch] : 0.0;
    coef[ch] = make_float4(run_mean[ch], (float)(g * rs), (float)bt, 0.0f);
}

__global__ void k_bn_bwd_finish(float *dgamma, float *dbeta, float4 *coef, const double *part,
                                const float *mean, const float *rstd, const float *gamma,
                                unsigned c, unsigned K, double cnt) {
    unsigned ch = blockIdx.x * blockDim.x + threadIdx.x;
    if (ch >= c) return;
    double sdy, sdyx; /* sum dy, sum dy*(x - mean) */
    chan_partials_sum(part, ch, K, sdy, sdyx);
    double rs = rstd[ch];
    if (dbeta) dbeta[ch] = (float)sdy;
    if (dgamma) dgamma[ch] = (float)(sdyx * rs);
    /* dx = gamma*rstd * (dy - mean(dy) - xhat * mean(dy*xhat))
     *    = a*dy + b*(x - mean) + d, as the CPU backend computes it */
    double g = gamma ? (double)gamma[ch] : 1.0;
    double a = g * rs;
    coef[ch] = make_float4((float)a, (float)(-a * rs * rs * sdyx / cnt), (float)(-a * sdy / cnt),
                           mean[ch]);
}

__global__ void k_chan_sum_finish(float *y, const double *part, unsigned c, unsigned K) {
    unsigned ch = blockIdx.x * blockDim.x + threadIdx.x;
    if (ch >= c) return;
    const double *p = part + (size_t)ch * K * 2;
    double s = 0.0;
    for (unsigned k = 0; k < K; k++) s += p[2 * k];
    y[ch] = (float)s;
}

/* bn_stats: mean (c) = s/cnt and m2 (c) = q - s*mean, sum of squared
 * deviations, from the partials of x and x^2 */
__global__ void k_bn_stats_finish(float *mean, float *m2, const double *part, unsigned c,
                                  unsigned K, double cnt) {
    unsigned ch = blockIdx.x * blockDim.x + threadIdx.x;
    if (ch >= c) return;
    double s, q;
    chan_partials_sum(part, ch, K, s, q);
    double mu = s / cnt;
    double d2 = q - s * mu; /* sum (x - mu)^2 = q - 2 mu s + cnt mu^2; NaN stays NaN */
    if (d2 < 0.0) d2 = 0.0;
    mean[ch] = (float)mu;
    m2[ch] = (float)d2;
}

/* bn_bwd_sums: sdy (c) and sdyx (c) = sum dy*(x - mean), from the partials */
__global__ void k_bn_sums_finish(float *sdy, float *sdyx, const double *part, unsigned c,
                                 unsigned K) {
    unsigned ch = blockIdx.x * blockDim.x + threadIdx.x;
    if (ch >= c) return;
    double s0, s1;
    chan_partials_sum(part, ch, K, s0, s1);
    sdy[ch] = (float)s0;
    sdyx[ch] = (float)s1;
}

/* The constants of dx = a*dy + b*(x - mean) + d for channel ch from the
 * whole batch's sums (cnt values), in double and rounded once, exactly as
 * the CPU backend's chan_bwd_apply: the apply passes then compute its float
 * expression (up to nvcc contracting it into fmas). */
struct bn_bwd_k {
    float a, b, d, mu;
};
__device__ __forceinline__ bn_bwd_k bn_bwd_consts(const float *mean, const float *rstd,
                                                  const float *gamma, const float *sdy,
                                                  const float *sdyx, double cnt, size_t ch) {
    double rs = rstd[ch], g = gamma ? (double)gamma[ch] : 1.0;
    double a = g * rs;
    bn_bwd_k k;
    k.a = (float)a;
    k.b = (float)(-a * rs * rs * (double)sdyx[ch] / cnt);
    k.d = (float)(-a * (double)sdy[ch] / cnt);
    k.mu = mean[ch];
    return k;
}

/* bn_bwd_apply: coef[ch] = (a, b, d, mean) for k_chan_apply<AP_BWD> */
__global__ void k_bn_bwd_apply_coef(float4 *coef, const float *mean, const float *rstd,
                                    const float *gamma, const float *sdy, const float *sdyx,
                                    unsigned c, double cnt) {
    unsigned ch = blockIdx.x * blockDim.x + threadIdx.x;
    if (ch >= c) return;
    bn_bwd_k k = bn_bwd_consts(mean, rstd, gamma, sdy, sdyx, cnt, ch);
    coef[ch] = make_float4(k.a, k.b, k.d, k.mu);
}

/* ---- host side ---- */

/* Launch geometry of the three passes for x (n, c, hw). */
struct chan_plan {
    bool ok;          /* false: shape beyond the fast kernels */
    int V;            /* floats per vector: 4 or 1 */
    unsigned c, hwv;  /* channels, vectors per image row of a channel */
    unsigned cntv;    /* vectors per channel (n * hwv) */
    unsigned nv;      /* vectors in the tensor */
    unsigned K;       /* chunks (blocks) per channel */
    unsigned chunkv;  /* vectors per chunk */
    unsigned step_img, step_j;
};

/* vec4: every buffer the passes touch is 16-byte aligned. K gives about
 * 2048 blocks in all (8 per SM of an H100, several waves), but at least 4
 * vectors per thread, and fits the partials scratch; it depends on the
 * shape only, so the summation order is reproducible. */
static chan_plan chan_plan_of(int64_t n, int64_t c, int64_t hw, bool vec4) {
    chan_plan p;
    p.ok = false;
    int64_t total = n * c * hw;
    if (n < 1 || c < 1 || hw < 1 || c > 65535 || c > LGC_CHAN_MAXC ||
        total >= (int64_t)INT32_MAX)
        return p;
    p.V = vec4 && hw % 4 == 0 ? 4 : 1;
    p.c = (unsigned)c;
    p.hwv = (unsigned)(hw / p.V);
    p.cntv = (unsigned)(n * p.hwv);
    p.nv = (unsigned)(total / p.V);
    unsigned k = (unsigned)((2048 + c - 1) / c);
    unsigned kmax = p.cntv / (4 * CH_THREADS);
    if (k > kmax) k = kmax;
    if ((int64_t)k * c * 2 > LGC_CHAN_PARTIALS) k = (unsigned)(LGC_CHAN_PARTIALS / (2 * c));
    if (k < 1) k = 1;
    p.K = k;
    p.chunkv = (p.cntv + k - 1) / k;
    p.step_img = CH_THREADS / p.hwv;
    p.step_j = CH_THREADS % p.hwv;
    p.ok = true;
    return p;
}

template <int MODE>
static void launch_partial(const chan_plan &p, const float *a, const float *b, const float *mean) {
    dim3 grid(p.K, p.c);
    if (p.V == 4)
        k_chan_partial<MODE, 4><<<grid, CH_THREADS, 0, lgc_stream>>>(
            lgc_chan_partial, a, b, mean, p.c, p.hwv, p.cntv, p.chunkv, p.step_img, p.step_j);
    else
        k_chan_partial<MODE, 1><<<grid, CH_THREADS, 0, lgc_stream>>>(
            lgc_chan_partial, a, b, mean, p.c, p.hwv, p.cntv, p.chunkv, p.step_img, p.step_j);
}

template <int MODE>
static void launch_apply(const chan_plan &p, float *y, const float *a, const float *b) {
    lgc_fastdiv hd = lgc_fastdiv_make(p.hwv), cd = lgc_fastdiv_make(p.c);
    unsigned grid = lgc_grid(p.nv);
    if (p.V == 4)
        k_chan_apply<MODE, 4><<<grid, LGC_THREADS, 0, lgc_stream>>>(y, a, b, lgc_chan_coef,
                                                                     p.nv, hd, cd);
    else
        k_chan_apply<MODE, 1><<<grid, LGC_THREADS, 0, lgc_stream>>>(y, a, b, lgc_chan_coef,
                                                                     p.nv, hd, cd);
}

static unsigned per_channel_grid(unsigned c) { return (c + 127) / 128; }

bool lgc_chan_sum(float *y, const float *x, int64_t a, int64_t c, int64_t b) {
    chan_plan p = chan_plan_of(a, c, b, lgc_aligned(x, 16));
    if (!p.ok) return false;
    launch_partial<CM_SUM>(p, x, nullptr, nullptr);
    k_chan_sum_finish<<<per_channel_grid(p.c), 128, 0, lgc_stream>>>(y, lgc_chan_partial, p.c,
                                                                       p.K);
    return true;
}

/* ---- fallback: one block per channel (the first version), for shapes
 * beyond the fast kernels' scratch and 32-bit indices ---- */

enum { BN_THREADS = 512 };

/* Tree-reduces v over the block (blockDim.x == N, a power of two); the
 * result is valid in every thread. */
template <int N>
__device__ __forceinline__ double block_sum_all(double v) {
    __shared__ double sh[N];
    sh[threadIdx.x] = v;
    __syncthreads();
    for (int w = N / 2; w > 0; w >>= 1) {
        if ((int)threadIdx.x < w) sh[threadIdx.x] += sh[threadIdx.x + w];
        __syncthreads();
    }
    double r = sh[0];
    __syncthreads(); /* sh is reused by the caller's next reduction */
    return r;
}

/* Element r of channel ch's n*hw values. I is 32-bit when the tensor fits
 * (64-bit division is several times slower). */
template <typename I>
__device__ __forceinline__ I bn_index(I r, I ch, I c, I hw) {
    I q = r / hw;
    return q * c * hw + ch * hw + (r - q * hw);
}

/* Channel ch's mean and sum of squared deviations m2 over its cnt values,
 * in every thread of the block: two passes, so no cancellation from
 * E[x^2] - mean^2. */
template <typename I>
__device__ __forceinline__ void chan_mean_m2(const float *x, I ch, I c, I hw, I cnt, double &mean,
                                             double &m2) {
    double s = 0.0;
    for (I r = threadIdx.x; r < cnt; r += blockDim.x) s += x[bn_index(r, ch, c, hw)];
    mean = block_sum_all<BN_THREADS>(s) / (double)cnt;
    double q = 0.0;
    for (I r = threadIdx.x; r < cnt; r += blockDim.x) {
        double d = x[bn_index(r, ch, c, hw)] - mean;
        q += d * d;
    }
    m2 = block_sum_all<BN_THREADS>(q);
}

/* the one-block-per-channel kernels index in 32 bits when the tensor fits */
static bool bn_index32(int64_t n, int64_t c, int64_t hw) {
    return n * c * hw < (int64_t)INT32_MAX / 2;
}

template <typename I>
__global__ void k_bn_train(float *y, float *mean_out, float *rstd_out, const float *x,
                           const float *gamma, const float *beta, float *run_mean,
                           float *run_var, I n, I c, I hw, float eps, float momentum) {
    I ch = blockIdx.x;
    I cnt = n * hw;
    double mean, m2;
    chan_mean_m2(x, ch, c, hw, cnt, mean, m2);
    double var = m2 / (double)cnt;
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

static void bn_train_per_channel(float *y, float *mean, float *rstd, const float *x,
                                 const float *gamma, const float *beta, float *run_mean,
                                 float *run_var, int64_t n, int64_t c, int64_t hw, float eps,
                                 float momentum) {
    if (c == 0) return;
    if (bn_index32(n, c, hw))
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

static void bn_eval_per_channel(float *y, const float *x, const float *gamma,
                                const float *beta, const float *run_mean, const float *run_var,
                                int64_t n, int64_t c, int64_t hw, float eps) {
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
    sdy = block_sum_all<BN_THREADS>(sdy);
    sdyx = block_sum_all<BN_THREADS>(sdyx);
    if (threadIdx.x == 0) {
        if (dgamma) dgamma[ch] = (float)sdyx;
        if (dbeta) dbeta[ch] = (float)sdy;
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

static void bn_bwd_per_channel(float *dx, float *dgamma, float *dbeta, const float *dy,
                               const float *x, const float *mean, const float *rstd,
                               const float *gamma, int64_t n, int64_t c, int64_t hw) {
    if (c == 0) return;
    if (bn_index32(n, c, hw))
        k_bn_bwd<unsigned><<<(unsigned)c, BN_THREADS, 0, lgc_stream>>>(
            dx, dgamma, dbeta, dy, x, mean, rstd, gamma, (unsigned)n, (unsigned)c,
            (unsigned)hw);
    else
        k_bn_bwd<int64_t><<<(unsigned)c, BN_THREADS, 0, lgc_stream>>>(
            dx, dgamma, dbeta, dy, x, mean, rstd, gamma, n, c, hw);
    LGC_LAUNCHED();
}

/* Synchronized batch norm's parts, one block per channel: the CPU
 * backend's formulas (two passes for m2), for the shapes above. */
template <typename I>
__global__ void k_bn_stats_pc(float *mean_out, float *m2_out, const float *x, I n, I c, I hw) {
    I ch = blockIdx.x;
    double mean, m2;
    chan_mean_m2(x, ch, c, hw, n * hw, mean, m2);
    if (threadIdx.x == 0) {
        mean_out[ch] = (float)mean;
        m2_out[ch] = (float)m2;
    }
}

template <typename I>
__global__ void k_bn_bwd_sums_pc(float *sdy_out, float *sdyx_out, const float *dy, const float *x,
                                 const float *mean, I n, I c, I hw) {
    I ch = blockIdx.x;
    I cnt = n * hw;
    double mu = mean[ch], sdy = 0.0, sdyx = 0.0;
    for (I r = threadIdx.x; r < cnt; r += blockDim.x) {
        I i = bn_index(r, ch, c, hw);
        double g = dy[i];
        sdy += g;
        sdyx += g * ((double)x[i] - mu);
    }
    sdy = block_sum_all<BN_THREADS>(sdy);
    sdyx = block_sum_all<BN_THREADS>(sdyx);
    if (threadIdx.x == 0) {
        sdy_out[ch] = (float)sdy;
        sdyx_out[ch] = (float)sdyx;
    }
}

/* every thread derives its channel's constants (a few double operations)
 * rather than going through the coefficient scratch, which holds 65536 */
template <typename I>
__global__ void k_bn_bwd_apply_pc(float *dx, const float *dy, const float *x, const float *mean,
                                  const float *rstd, const float *gamma, const float *sdy,
                                  const float *sdyx, double cnt_all, I n, I c, I hw) {
    I ch = blockIdx.x;
    I cnt = n * hw;
    bn_bwd_k k = bn_bwd_consts(mean, rstd, gamma, sdy, sdyx, cnt_all, (size_t)ch);
    for (I r = threadIdx.x; r < cnt; r += blockDim.x) {
        I i = bn_index(r, ch, c, hw);
        dx[i] = k.a * dy[i] + k.b * (x[i] - k.mu) + k.d;
    }
}

static void bn_stats_per_channel(float *mean, float *m2, const float *x, int64_t n, int64_t c,
                                 int64_t hw) {
    if (bn_index32(n, c, hw))
        k_bn_stats_pc<unsigned><<<(unsigned)c, BN_THREADS, 0, lgc_stream>>>(
            mean, m2, x, (unsigned)n, (unsigned)c, (unsigned)hw);
    else
        k_bn_stats_pc<int64_t><<<(unsigned)c, BN_THREADS, 0, lgc_stream>>>(mean, m2, x, n, c, hw);
    LGC_LAUNCHED();
}

static void bn_bwd_sums_per_channel(float *sdy, float *sdyx, const float *dy, const float *x,
                                    const float *mean, int64_t n, int64_t c, int64_t hw) {
    if (bn_index32(n, c, hw))
        k_bn_bwd_sums_pc<unsigned><<<(unsigned)c, BN_THREADS, 0, lgc_stream>>>(
            sdy, sdyx, dy, x, mean, (unsigned)n, (unsigned)c, (unsigned)hw);
    else
        k_bn_bwd_sums_pc<int64_t><<<(unsigned)c, BN_THREADS, 0, lgc_stream>>>(sdy, sdyx, dy, x,
                                                                            mean, n, c, hw);
    LGC_LAUNCHED();
}

static void bn_bwd_apply_per_channel(float *dx, const float *dy, const float *x,
                                     const float *mean, const float *rstd, const float *gamma,
                                     const float *sdy, const float *sdyx, double cnt, int64_t n,
                                     int64_t c, int64_t hw) {
    if (bn_index32(n, c, hw))
        k_bn_bwd_apply_pc<unsigned><<<(unsigned)c, BN_THREADS, 0, lgc_stream>>>(
            dx, dy, x, mean, rstd, gamma, sdy, sdyx, cnt, (unsigned)n, (unsigned)c,
            (unsigned)hw);
    else
        k_bn_bwd_apply_pc<int64_t><<<(unsigned)c, BN_THREADS, 0, lgc_stream>>>(
            dx, dy, x, mean, rstd, gamma, sdy, sdyx, cnt, n, c, hw);
    LGC_LAUNCHED();
}

/* ---- the table's batch-norm entries ---- */

void lgc_bn_train(float *y, float *mean, float *rstd, const float *x, const float *gamma,
                  const float *beta, float *run_mean, float *run_var, int64_t n, int64_t c,
                  int64_t hw, float eps, float momentum) {
    if (n * c * hw == 0) return;
    chan_plan p = chan_plan_of(n, c, hw, lgc_aligned(x, 16) && lgc_aligned(y, 16));
    if (!p.ok) {
        bn_train_per_channel(y, mean, rstd, x, gamma, beta, run_mean, run_var, n, c, hw, eps,
                             momentum);
        return;
    }
    launch_partial<CM_STATS>(p, x, nullptr, nullptr);
    LGC_LAUNCHED();
    k_bn_train_finish<<<per_channel_grid(p.c), 128, 0, lgc_stream>>>(
        mean, rstd, run_mean, run_var, lgc_chan_coef, lgc_chan_partial, gamma, beta, p.c, p.K,
        (double)(n * hw), eps, momentum);
    LGC_LAUNCHED();
    launch_apply<AP_NORM>(p, y, x, nullptr);
    LGC_LAUNCHED();
}

void lgc_bn_eval(float *y, const float *x, const float *gamma, const float *beta,
                 const float *run_mean, const float *run_var, int64_t n, int64_t c, int64_t hw,
                 float eps) {
    if (n * c * hw == 0) return;
    chan_plan p = chan_plan_of(n, c, hw, lgc_aligned(x, 16) && lgc_aligned(y, 16));
    if (!p.ok) {
        bn_eval_per_channel(y, x, gamma, beta, run_mean, run_var, n, c, hw, eps);
        return;
    }
    k_bn_eval_coef<<<per_channel_grid(p.c), 128, 0, lgc_stream>>>(lgc_chan_coef, gamma, beta,
                                                                   run_mean, run_var, p.c, eps);
    LGC_LAUNCHED();
    launch_apply<AP_NORM>(p, y, x, nullptr);
    LGC_LAUNCHED();
}

void lgc_bn_bwd(float *dx, float *dgamma, float *dbeta, const float *dy, const float *x,
                const float *mean, const float *rstd, const float *gamma, int64_t n, int64_t c,
                int64_t hw) {
    if (n * c * hw == 0) return;
    chan_plan p = chan_plan_of(n, c, hw,
                               lgc_aligned(dx, 16) && lgc_aligned(dy, 16) && lgc_aligned(x, 16));
    if (!p.ok) {
        bn_bwd_per_channel(dx, dgamma, dbeta, dy, x, mean, rstd, gamma, n, c, hw);
        return;
    }
    launch_partial<CM_BWD>(p, dy, x, mean);
    LGC_LAUNCHED();
    k_bn_bwd_finish<<<per_channel_grid(p.c), 128, 0, lgc_stream>>>(
        dgamma, dbeta, lgc_chan_coef, lgc_chan_partial, mean, rstd, gamma, p.c, p.K,
        (double)(n * hw));
    LGC_LAUNCHED();
    launch_apply<AP_BWD>(p, dx, dy, x);
    LGC_LAUNCHED();
}

/* ---- synchronized batch norm's parts (backend.h) ---- */

void lgc_bn_stats(float *mean, float *m2, const float *x, int64_t n, int64_t c, int64_t hw) {
    if (c == 0) return;
    if (n * hw == 0) {
        /* the CPU's values over no elements: mean 0/0, an empty sum */
        lgc_fill(mean, NAN, (size_t)c);
        lgc_fill(m2, 0.0f, (size_t)c);
        return;
    }
    chan_plan p = chan_plan_of(n, c, hw, lgc_aligned(x, 16));
    if (!p.ok) {
        bn_stats_per_channel(mean, m2, x, n, c, hw);
        return;
    }
    launch_partial<CM_STATS>(p, x, nullptr, nullptr);
    LGC_LAUNCHED();
    k_bn_stats_finish<<<per_channel_grid(p.c), 128, 0, lgc_stream>>>(
        mean, m2, lgc_chan_partial, p.c, p.K, (double)(n * hw));
    LGC_LAUNCHED();
}

void lgc_bn_bwd_sums(float *sdy, float *sdyx, const float *dy, const float *x, const float *mean,
                     int64_t n, int64_t c, int64_t hw) {
    if (c == 0) return;
    if (n * hw == 0) { /* empty sums (the other processes' still count) */
        lgc_fill(sdy, 0.0f, (size_t)c);
        lgc_fill(sdyx, 0.0f, (size_t)c);
        return;
    }
    chan_plan p = chan_plan_of(n, c, hw, lgc_aligned(dy, 16) && lgc_aligned(x, 16));
    if (!p.ok) {
        bn_bwd_sums_per_channel(sdy, sdyx, dy, x, mean, n, c, hw);
        return;
    }
    launch_partial<CM_BWD>(p, dy, x, mean);
    LGC_LAUNCHED();
    k_bn_sums_finish<<<per_channel_grid(p.c), 128, 0, lgc_stream>>>(sdy, sdyx, lgc_chan_partial,
                                                                      p.c, p.K);
    LGC_LAUNCHED();
}

void lgc_bn_bwd_apply(float *dx, const float *dy, const float *x, const float *mean,
                      const float *rstd, const float *gamma, const float *sdy, const float *sdyx,
                      double cnt, int64_t n, int64_t c, int64_t hw) {
    if (n * c * hw == 0) return;
    chan_plan p = chan_plan_of(n, c, hw,
                               lgc_aligned(dx, 16) && lgc_aligned(dy, 16) && lgc_aligned(x, 16));
    if (!p.ok) {
        bn_bwd_apply_per_channel(dx, dy, x, mean, rstd, gamma, sdy, sdyx, cnt, n, c, hw);
        return;
    }
    k_bn_bwd_apply_coef<<<per_channel_grid(p.c), 128, 0, lgc_stream>>>(
        lgc_chan_coef, mean, rstd, gamma, sdy, sdyx, p.c, cnt);
    LGC_LAUNCHED();
    launch_apply<AP_BWD>(p, dx, dy, x);
    LGC_LAUNCHED();
}
