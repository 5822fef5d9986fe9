/* CUDA backend: Winograd convolutions, F(2x2,3x3) and F(4x4,3x3), for 3x3
 * stride-1 pad-1 layers: candidates, next to cuDNN's algorithms and im2col,
 * of the timed algorithm choice in cuda_cudnn.cu (cuDNN's fp32 algorithms
 * reach only 15-17 TFLOP/s on the SN-GAN critic's 8x8 layers).
 *
 * Each pass is three steps over the whole batch: the transform kernels of
 * wino_tf.h (one thread per filter, per (channel, tile) or per (channel,
 * output tile)), the Q = 16 or 36 products as one
 * cublasSgemmStridedBatched call (so fp32 / TF32 follow the cuBLAS handle's
 * math mode), then the inverse transform. No atomics: results are bitwise
 * repeatable. The transforms and GEMM arguments are shared with the host
 * emulation tests/test_wino_emul.c. Workspace: lgc_wino_bytes(g, m) bytes
 * (U, V, M), from the caller. */
#include "cuda_internal.h"
#include "backend/wino_tf.h"

/* One thread per element (grid-stride); M selects F(2x2,3x3) or F(4x4,3x3). */
#define EACH(i, n)                                                              \
    for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < (n); \
         i += (int64_t)gridDim.x * blockDim.x)

template <int M>
__global__ void k_wino_filter(float *U, const float *w, int C, int cout, int cin, int bwd,
                              int64_t n) {
    EACH(i, n) M == 4 ? lg_wino4_filter_one(U, w, C, cout, cin, bwd, i)
                      : lg_wino_filter_one(U, w, C, cout, cin, bwd, i);
}
template <int M>
__global__ void k_wino_input(float *V, const float *x, lg_wino_dims d, int64_t n) {
    EACH(i, n) M == 4 ? lg_wino4_input_one(V, x, &d, i) : lg_wino_input_one(V, x, &d, i);
}
template <int M>
__global__ void k_wino_output(float *y, const float *Mm, lg_wino_dims d, int64_t n) {
    EACH(i, n) M == 4 ? lg_wino4_output_one(y, Mm, &d, i) : lg_wino_output_one(y, Mm, &d, i);
}
template <int M>
__global__ void k_wino_grad(float *Z, const float *dy, lg_wino_dims d, int64_t n) {
    EACH(i, n) M == 4 ? lg_wino4_grad_one(Z, dy, &d, i) : lg_wino_grad_one(Z, dy, &d, i);
}
template <int M>
__global__ void k_wino_filter_adj(float *dw, const float *dU, int OC, int C, int64_t n) {
    EACH(i, n) M == 4 ? lg_wino4_filter_adj_one(dw, dU, OC, C, i)
                      : lg_wino_filter_adj_one(dw, dU, OC, C, i);
}
#undef EACH

bool lgc_wino_ok(const lg_conv_geom *g) {
    if (g->kh != 3 || g->kw != 3 || g->stride != 1 || g->pad != 1 || g->oh != g->h ||
        g->ow != g->w || g->n < 1 || g->c < 1 || g->oc < 1 || g->h < 1 || g->w < 1)
        return false;
    lg_wino_dims d = lg_wino_dims_make(g->n, g->c, g->oc, g->h, g->w); /* F(2): the most tiles */
    /* cuBLAS takes int sizes and leading dimensions */
    const int64_t lim = 2147483647;
    return d.NP < lim && (int64_t)36 * g->c * g->oc < lim && (int64_t)g->n * g->c * g->h * g->w < lim &&
           (int64_t)g->n * g->oc * g->h * g->w < lim;
}

size_t lgc_wino_bytes(const lg_conv_geom *g, int m) {
    lg_wino_dims d = lg_wino_dims_make_m(g->n, g->c, g->oc, g->h, g->w, m);
    return (size_t)lg_wino_floats(&d) * sizeof(float);
}

static const float kOne = 1.0f, kZero = 0.0f;

/* The Q products M[q] = U[q] V[q] (or dU[q] = Z[q] V[q]^T) in one call. */
static void gemm_q(const lg_wino_gemm *m, int Q, const float *a, const float *b, float *c) {
    LGC_BLAS(cublasSgemmStridedBatched(lgc_blas, m->ta ? CUBLAS_OP_T : CUBLAS_OP_N,
                                       m->tb ? CUBLAS_OP_T : CUBLAS_OP_N, m->m, m->n, m->k,
                                       &kOne, a, m->lda, m->sa, b, m->ldb, m->sb, &kZero, c,
                                       m->ldc, m->sc, Q));
}

/* forward (bwd = 0: in = x, out = y) or bwd_data (bwd = 1: in = dy, out = dx) */
template <int M>
static void wino_run(float *out, const float *in, const float *w, const lg_conv_geom *g, int bwd,
                     float *ws) {
    int cin = bwd ? g->oc : g->c, cout = bwd ? g->c : g->oc;
    lg_wino_dims d = lg_wino_dims_make_m(g->n, cin, cout, g->h, g->w, M);
    float *U, *V, *Mm;
    lg_wino_split(ws, &d, &U, &V, &Mm);
    int64_t nu = (int64_t)cout * cin, nv = cin * d.NP, nm = cout * d.NP;
    k_wino_filter<M><<<lgc_grid((size_t)nu), LGC_THREADS, 0, lgc_stream>>>(U, w, g->c, cout, cin,
                                                                           bwd, nu);
    k_wino_input<M><<<lgc_grid((size_t)nv), LGC_THREADS, 0, lgc_stream>>>(V, in, d, nv);
    LGC_LAUNCHED();
    lg_wino_gemm gm = lg_wino_gemm_fwd(&d);
    gemm_q(&gm, d.Q, V, U, Mm);
    k_wino_output<M><<<lgc_grid((size_t)nm), LGC_THREADS, 0, lgc_stream>>>(out, Mm, d, nm);
    LGC_LAUNCHED();
}

template <int M>
static void wino_wgrad(float *dw, const float *x, const float *dy, const lg_conv_geom *g,
                       float *ws) {
    lg_wino_dims d = lg_wino_dims_make_m(g->n, g->c, g->oc, g->h, g->w, M);
    float *dU, *V, *Z;
    lg_wino_split(ws, &d, &dU, &V, &Z);
    int64_t nv = g->c * d.NP, nz = g->oc * d.NP, nw = (int64_t)g->oc * g->c;
    k_wino_input<M><<<lgc_grid((size_t)nv), LGC_THREADS, 0, lgc_stream>>>(V, x, d, nv);
    k_wino_grad<M><<<lgc_grid((size_t)nz), LGC_THREADS, 0, lgc_stream>>>(Z, dy, d, nz);
    LGC_LAUNCHED();
    lg_wino_gemm gm = lg_wino_gemm_wgrad(&d);
    gemm_q(&gm, d.Q, V, Z, dU);
    k_wino_filter_adj<M><<<lgc_grid((size_t)nw), LGC_THREADS, 0, lgc_stream>>>(dw, dU, g->oc,
                                                                               g->c, nw);
    LGC_LAUNCHED();
}

void lgc_wino_conv2d(float *y, const float *x, const float *w, const lg_conv_geom *g, int m,
                     float *ws) {
    if (m == 4) wino_run<4>(y, x, w, g, 0, ws);
    else wino_run<2>(y, x, w, g, 0, ws);
}

void lgc_wino_bwd_data(float *dx, const float *dy, const float *w, const lg_conv_geom *g, int m,
                       float *ws) {
    if (m == 4) wino_run<4>(dx, dy, w, g, 1, ws);
    else wino_run<2>(dx, dy, w, g, 1, ws);
}

void lgc_wino_bwd_weight(float *dw, const float *x, const float *dy, const lg_conv_geom *g, int m,
                         float *ws) {
    if (m == 4) wino_wgrad<4>(dw, x, dy, g, ws);
    else wino_wgrad<2>(dw, x, dy, g, ws);
}
