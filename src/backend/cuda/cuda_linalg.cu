/* CUDA backend: gemm (cuBLAS) and 2-D convolutions: through cuDNN when it
 * is loaded (cuda_cudnn.cu), else (and for any pass cuDNN cannot serve
 * deterministically) as im2col + cuBLAS, below.
 *
 * cuBLAS is column-major; a row-major matrix M (r, c) with leading dim ld
 * is, to cuBLAS, the column-major matrix M^T (c x r) with the same ld. So
 * row-major C = op(A) op(B) is computed as C^T = op(B)^T op(A)^T, i.e.
 * cublasSgemm(opB, opA, n, m, k, B, A, C), without any copies.
 *
 * Convolutions process the batch in chunks of `bc` images (bc chosen from
 * the geometry alone so that conv_workspace() and the kernels agree):
 *  forward:     col_b (ckk, ohw) = im2col(x_b); y_b (oc, ohw) = W (oc, ckk) col_b
 *               (one strided-batched gemm per chunk);
 *  bwd_data:    dcol_b (ckk, ohw) = W^T dy_b (strided-batched); dx_b = col2im(dcol_b),
 *               a gather (each dx element sums its own taps: no atomics);
 *  bwd_weight:  dw (oc, ckk) = sum_b dy_b col_b^T, as one gemm per chunk over
 *               K = bc*ohw with col laid out (ckk, bc, ohw) and dy transposed
 *               to (oc, bc, ohw); chunks accumulate with beta = 1.
 * 1x1 stride-1 unpadded convolutions skip im2col: col_b is x_b itself. */
#include "cuda_internal.h"

#include <cusolverDn.h>
#include <mutex>
#include <stdlib.h>
#include <string.h>

static cublasOperation_t op_of(int t) { return t ? CUBLAS_OP_T : CUBLAS_OP_N; }

void lgc_gemm(int ta, int tb, int m, int n, int k, float alpha, const float *a, int lda,
              const float *b, int ldb, float beta, float *c, int ldc) {
    if (m <= 0 || n <= 0) return;
    if (lgc_precision == LG_CUDA_BF16) { /* fp32 storage, bf16 products */
        LGC_BLAS(cublasGemmEx(lgc_blas, op_of(tb), op_of(ta), n, m, k, &alpha, b, CUDA_R_32F,
                              ldb, a, CUDA_R_32F, lda, &beta, c, CUDA_R_32F, ldc,
                              CUBLAS_COMPUTE_32F_FAST_16BF, CUBLAS_GEMM_DEFAULT));
        return;
    }
    LGC_BLAS(cublasSgemm(lgc_blas, op_of(tb), op_of(ta), n, m, k, &alpha, b, ldb, a, lda,
                         &beta, c, ldc));
}

/* ---- geometry helpers ---- */

/* Largest workspace we aim for, in floats (128 MiB): big enough for whole
 * GAN batches at CIFAR/STL sizes, small next to an H100's memory. */
static const int64_t WS_TARGET = (int64_t)1 << 25;

struct cgeo {
    int64_t ckk, ohw, hw, bc; /* c*kh*kw, oh*ow, h*w, images per chunk */
    bool direct;              /* 1x1, stride 1, pad 0: col_b == x_b */
};

static cgeo geo_of(const lg_conv_geom *g) {
    cgeo q;
    q.ckk = (int64_t)g->c * g->kh * g->kw;
    q.ohw = (int64_t)g->oh * g->ow;
    q.hw = (int64_t)g->h * g->w;
    int64_t per_img = (q.ckk + g->oc) * q.ohw;
    int64_t bc = per_img > 0 ? WS_TARGET / per_img : g->n;
    if (bc < 1) bc = 1;
    if (bc > g->n) bc = g->n;
    q.bc = bc;
    q.direct = g->kh == 1 && g->kw == 1 && g->stride == 1 && g->pad == 0;
    return q;
}

size_t lgc_conv_workspace(const lg_conv_geom *g) {
    cgeo q = geo_of(g);
    /* col (bc, ckk, ohw) plus, for bwd_weight, dy transposed (oc, bc, ohw) */
    size_t ws = (size_t)(q.bc * (q.ckk + g->oc) * q.ohw);
    return ws > 0 ? ws : 1;
}

/* col[b*bs + r*rs + p] = x[b0+b] at tap r = (ci, ki, kj), output pixel
 * p = (oy, ox); 0 outside the padded image. */
__global__ void k_im2col(float *col, const float *x, lg_conv_geom g, int64_t nb,
                         int64_t bs, int64_t rs) {
    int64_t ohw = (int64_t)g.oh * g.ow, kk = (int64_t)g.kh * g.kw;
    int64_t total = nb * g.c * kk * ohw;
    for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < total;
         i += (int64_t)gridDim.x * blockDim.x) {
        int64_t p = i % ohw, t = i / ohw;
        int64_t r = t % (g.c * kk), b = t / (g.c * kk);
        int ci = (int)(r / kk), kij = (int)(r % kk);
        int ki = kij / g.kw, kj = kij % g.kw;
        int oy = (int)(p / g.ow), ox = (int)(p % g.ow);
        int iy = oy * g.stride - g.pad + ki, ix = ox * g.stride - g.pad + kj;
        float v = 0.0f;
        if (iy >= 0 && iy < g.h && ix >= 0 && ix < g.w)
            v = x[((b * g.c + ci) * g.h + iy) * (int64_t)g.w + ix];
        col[b * bs + r * rs + p] = v;
    }
}

/* dx (nb, c, h, w) = col2im(dcol): tap r of image b at output pixel p is
 * dcol[b*bs + r*rs + p] ((nb, ckk, ohw): bs = ckk*ohw, rs = ohw; (ckk, nb,
 * ohw): bs = ohw, rs = nb*ohw). Each input pixel gathers the taps that read
 * it, in a fixed order. */
__global__ void k_col2im(float *dx, const float *dcol, lg_conv_geom g, int64_t nb, int64_t bs,
                         int64_t rs) {
    int64_t total = nb * g.c * (int64_t)g.h * g.w;
    for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < total;
         i += (int64_t)gridDim.x * blockDim.x) {
        int ix = (int)(i % g.w);
        int64_t t = i / g.w;
        int iy = (int)(t % g.h);
        t /= g.h;
        int ci = (int)(t % g.c);
        int64_t b = t / g.c;
        const float *dc = dcol + b * bs;
        float acc = 0.0f;
        for (int ki = 0; ki < g.kh; ki++) {
            int ty = iy + g.pad - ki;
            if (ty < 0 || ty % g.stride) continue;
            int oy = ty / g.stride;
            if (oy >= g.oh) continue;
            for (int kj = 0; kj < g.kw; kj++) {
                int tx = ix + g.pad - kj;
                if (tx < 0 || tx % g.stride) continue;
                int ox = tx / g.stride;
                if (ox >= g.ow) continue;
                int64_t r = ((int64_t)ci * g.kh + ki) * g.kw + kj;
                acc += dc[r * rs + (int64_t)oy * g.ow + ox];
            }
        }
        dx[i] = acc;
    }
}

/* out (d1, d0, ohw) = in (d0, d1, ohw): swaps the first two dims, e.g. dyt
 * (oc, nb, ohw) from dy (nb, oc, ohw) and back */
__global__ void k_swap01(float *out, const float *in, int64_t d0, int64_t d1, int64_t ohw) {
    int64_t total = d0 * d1 * ohw;
    for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < total;
         i += (int64_t)gridDim.x * blockDim.x) {
        int64_t p = i % ohw, t = i / ohw;
        int64_t a = t % d0, b = t / d0; /* out[b][a] */
        out[i] = in[(a * d1 + b) * ohw + p];
    }
}

static const float kOne = 1.0f, kZero = 0.0f;

/* Small images (ohw <= 256) make per-image gemms too thin to fill the GPU:
 * then forward and data gradient use one gemm per chunk over all of its
 * images, with col laid out (ckk, nb, ohw) as the weight gradient does
 * (LG_CUDA_IM2COL_WIDE=0 turns this off, for tests). */
static bool wide(const cgeo &q) {
    static int env = -1;
    if (env < 0) {
        const char *e = getenv("LG_CUDA_IM2COL_WIDE");
        env = !(e && !strcmp(e, "0"));
    }
    return env && q.ohw <= 256;
}

void lgc_conv2d(float *y, const float *x, const float *w, const lg_conv_geom *g, float *ws) {
    if (!lgc_dnn_conv2d(y, x, w, g, ws)) lgc_im2col_conv2d(y, x, w, g, ws);
}

void lgc_conv2d_bwd_data(float *dx, const float *dy, const float *w, const lg_conv_geom *g,
                         float *ws) {
    if (!lgc_dnn_conv2d_bwd_data(dx, dy, w, g, ws)) lgc_im2col_conv2d_bwd_data(dx, dy, w, g, ws);
}

void lgc_conv2d_bwd_weight(float *dw, const float *x, const float *dy, const lg_conv_geom *g,
                           float *ws) {
    if (!lgc_dnn_conv2d_bwd_weight(dw, x, dy, g, ws)) lgc_im2col_conv2d_bwd_weight(dw, x, dy, g, ws);
}

void lgc_im2col_conv2d(float *y, const float *x, const float *w, const lg_conv_geom *g, float *ws) {
    cgeo q = geo_of(g);
    if (g->n <= 0 || q.ohw <= 0 || g->oc <= 0) return;
    int64_t xs = (int64_t)g->c * q.hw, ys = (int64_t)g->oc * q.ohw;
    if (q.direct) {
        /* y_b^T (ohw x oc) = x_b^T (hw x c) . W^T (c x oc) for all images at once */
        LGC_BLAS(cublasSgemmStridedBatched(lgc_blas, CUBLAS_OP_N, CUBLAS_OP_N, (int)q.ohw,
                                           g->oc, (int)q.ckk, &kOne, x, (int)q.ohw, xs, w,
                                           (int)q.ckk, 0, &kZero, y, (int)q.ohw, ys, g->n));
        return;
    }
    if (wide(q)) {
        float *col = ws, *yt = ws + q.bc * q.ckk * q.ohw; /* (ckk, nb, ohw), (oc, nb, ohw) */
        for (int64_t b0 = 0; b0 < g->n; b0 += q.bc) {
            int64_t nb = g->n - b0 < q.bc ? g->n - b0 : q.bc, kdim = nb * q.ohw;
            size_t tot = (size_t)(nb * q.ckk * q.ohw);
            k_im2col<<<lgc_grid(tot), LGC_THREADS, 0, lgc_stream>>>(col, x + b0 * xs, *g, nb,
                                                                    q.ohw, kdim);
            LGC_LAUNCHED();
            /* yt^T (K x oc) = col^T (K x ckk) . W^T (ckk x oc) */
            LGC_BLAS(cublasSgemm(lgc_blas, CUBLAS_OP_N, CUBLAS_OP_N, (int)kdim, g->oc, (int)q.ckk,
                                 &kOne, col, (int)kdim, w, (int)q.ckk, &kZero, yt, (int)kdim));
            size_t ty = (size_t)(nb * ys);
            k_swap01<<<lgc_grid(ty), LGC_THREADS, 0, lgc_stream>>>(y + b0 * ys, yt, g->oc, nb,
                                                                   q.ohw);
            LGC_LAUNCHED();
        }
        return;
    }
    for (int64_t b0 = 0; b0 < g->n; b0 += q.bc) {
        int64_t nb = g->n - b0 < q.bc ? g->n - b0 : q.bc;
        size_t tot = (size_t)(nb * q.ckk * q.ohw);
        k_im2col<<<lgc_grid(tot), LGC_THREADS, 0, lgc_stream>>>(ws, x + b0 * xs, *g, nb,
                                                                q.ckk * q.ohw, q.ohw);
        LGC_LAUNCHED();
        LGC_BLAS(cublasSgemmStridedBatched(
            lgc_blas, CUBLAS_OP_N, CUBLAS_OP_N, (int)q.ohw, g->oc, (int)q.ckk, &kOne, ws,
            (int)q.ohw, q.ckk * q.ohw, w, (int)q.ckk, 0, &kZero, y + b0 * ys, (int)q.ohw, ys,
            (int)nb));
    }
}

void lgc_im2col_conv2d_bwd_data(float *dx, const float *dy, const float *w,
                                const lg_conv_geom *g, float *ws) {
    cgeo q = geo_of(g);
    if (g->n <= 0 || q.hw <= 0 || g->c <= 0) return;
    int64_t xs = (int64_t)g->c * q.hw, ys = (int64_t)g->oc * q.ohw;
    /* dcol_b^T (ohw x ckk) = dy_b^T (ohw x oc) . W (oc x ckk) */
    if (q.direct) {
        LGC_BLAS(cublasSgemmStridedBatched(lgc_blas, CUBLAS_OP_N, CUBLAS_OP_T, (int)q.ohw,
                                           (int)q.ckk, g->oc, &kOne, dy, (int)q.ohw, ys, w,
                                           (int)q.ckk, 0, &kZero, dx, (int)q.ohw, xs, g->n));
        return;
    }
    if (wide(q) && q.ohw > 0 && g->oc > 0) {
        float *dcol = ws, *dyt = ws + q.bc * q.ckk * q.ohw; /* (ckk, nb, ohw), (oc, nb, ohw) */
        for (int64_t b0 = 0; b0 < g->n; b0 += q.bc) {
            int64_t nb = g->n - b0 < q.bc ? g->n - b0 : q.bc, kdim = nb * q.ohw;
            size_t ty = (size_t)(nb * ys);
            k_swap01<<<lgc_grid(ty), LGC_THREADS, 0, lgc_stream>>>(dyt, dy + b0 * ys, nb, g->oc,
                                                                   q.ohw);
            LGC_LAUNCHED();
            /* dcol^T (K x ckk) = dyt^T (K x oc) . W (oc x ckk) */
            LGC_BLAS(cublasSgemm(lgc_blas, CUBLAS_OP_N, CUBLAS_OP_T, (int)kdim, (int)q.ckk, g->oc,
                                 &kOne, dyt, (int)kdim, w, (int)q.ckk, &kZero, dcol, (int)kdim));
            size_t tot = (size_t)(nb * xs);
            k_col2im<<<lgc_grid(tot), LGC_THREADS, 0, lgc_stream>>>(dx + b0 * xs, dcol, *g, nb,
                                                                     q.ohw, kdim);
            LGC_LAUNCHED();
        }
        return;
    }
    for (int64_t b0 = 0; b0 < g->n; b0 += q.bc) {
        int64_t nb = g->n - b0 < q.bc ? g->n - b0 : q.bc;
        if (q.ohw > 0 && g->oc > 0) {
            LGC_BLAS(cublasSgemmStridedBatched(
                lgc_blas, CUBLAS_OP_N, CUBLAS_OP_T, (int)q.ohw, (int)q.ckk, g->oc, &kOne,
                dy + b0 * ys, (int)q.ohw, ys, w, (int)q.ckk, 0, &kZero, ws, (int)q.ohw,
                q.ckk * q.ohw, (int)nb));
        } else {
            lgc_fill(ws, 0.0f, (size_t)(nb * q.ckk * (q.ohw > 0 ? q.ohw : 0)));
        }
        size_t tot = (size_t)(nb * xs);
        k_col2im<<<lgc_grid(tot), LGC_THREADS, 0, lgc_stream>>>(dx + b0 * xs, ws, *g, nb,
                                                                 q.ckk * q.ohw, q.ohw);
        LGC_LAUNCHED();
    }
}

void lgc_im2col_conv2d_bwd_weight(float *dw, const float *x, const float *dy,
                                  const lg_conv_geom *g, float *ws) {
    cgeo q = geo_of(g);
    size_t nw = (size_t)((int64_t)g->oc * q.ckk);
    if (nw == 0) return;
    if (g->n <= 0 || q.ohw <= 0) {
        lgc_fill(dw, 0.0f, nw); /* empty sum */
        return;
    }
    int64_t xs = (int64_t)g->c * q.hw, ys = (int64_t)g->oc * q.ohw;
    float *col = ws;                       /* (ckk, nb, ohw) */
    float *dyt = ws + q.bc * q.ckk * q.ohw; /* (oc, nb, ohw) */
    for (int64_t b0 = 0; b0 < g->n; b0 += q.bc) {
        int64_t nb = g->n - b0 < q.bc ? g->n - b0 : q.bc;
        int64_t kdim = nb * q.ohw;
        const float *colp = col, *dyp = dy + b0 * ys;
        if (q.direct && nb == 1) {
            colp = x + b0 * xs;
        } else {
            size_t tot = (size_t)(nb * q.ckk * q.ohw);
            k_im2col<<<lgc_grid(tot), LGC_THREADS, 0, lgc_stream>>>(col, x + b0 * xs, *g, nb,
                                                                    q.ohw, kdim);
            LGC_LAUNCHED();
        }
        if (nb > 1) {
            size_t tot = (size_t)(nb * ys);
            k_swap01<<<lgc_grid(tot), LGC_THREADS, 0, lgc_stream>>>(dyt, dyp, nb, g->oc,
                                                                    q.ohw);
            LGC_LAUNCHED();
            dyp = dyt;
        }
        /* dw^T (ckk x oc) = col (ckk x K) . dyt^T (K x oc), K = nb*ohw */
        const float *beta = b0 == 0 ? &kZero : &kOne;
        LGC_BLAS(cublasSgemm(lgc_blas, CUBLAS_OP_T, CUBLAS_OP_N, (int)q.ckk, g->oc,
                             (int)kdim, &kOne, colp, (int)kdim, dyp, (int)kdim, beta, dw,
                             (int)q.ckk));
    }
}

/* ---- SVD (cuSOLVER gesvd), for SR-GAN on large weights: measured faster
 * than the host's LAPACK from 128 x 1152 up (bench/bench_sr_svd.c) ---- */

static std::mutex g_svd_mu;
static cusolverDnHandle_t g_svd;

lg_status lgc_svd(float *s, float *u, float *vt, float *a, int m, int n) {
    if (m < n || n < 1)
        return lg_error_set(LG_ERR_SHAPE, "cuda svd: needs m >= n >= 1, got %d x %d", m, n);
    std::lock_guard<std::mutex> lk(g_svd_mu);
    if (!g_svd) {
        if (cusolverDnCreate(&g_svd) != CUSOLVER_STATUS_SUCCESS) {
            g_svd = nullptr;
            return lg_error_set(LG_ERR_BACKEND, "cuda svd: cusolverDnCreate failed");
        }
    }
    if (cusolverDnSetStream(g_svd, lgc_stream) != CUSOLVER_STATUS_SUCCESS)
        return lg_error_set(LG_ERR_BACKEND, "cuda svd: cusolverDnSetStream failed");
    int lwork = 0;
    if (cusolverDnSgesvd_bufferSize(g_svd, m, n, &lwork) != CUSOLVER_STATUS_SUCCESS)
        return lg_error_set(LG_ERR_BACKEND, "cuda svd: gesvd_bufferSize failed for %d x %d", m, n);
    /* workspace (lwork floats) then the info word, from the pool */
    float *work = (float *)lgc_pool_alloc(((size_t)lwork + 1) * sizeof(float));
    if (!work) return LG_ERR_NOMEM;
    int *info = (int *)(work + lwork);
    cusolverStatus_t cs = cusolverDnSgesvd(g_svd, 'S', 'S', m, n, a, m, s, u, m, vt, n, work,
                                           lwork, nullptr, info);
    int hinfo = 0;
    cudaError_t e = cudaMemcpyAsync(&hinfo, info, sizeof hinfo, cudaMemcpyDeviceToHost, lgc_stream);
    if (e == cudaSuccess) e = cudaStreamSynchronize(lgc_stream);
    lgc_pool_free(work);
    if (e != cudaSuccess) {
        lgc_cuda_ok(e, "svd", __FILE__, __LINE__);
        return lg_cuda_last_status();
    }
    if (cs != CUSOLVER_STATUS_SUCCESS || hinfo != 0)
        return lg_error_set(LG_ERR_NONFINITE,
                            "cuda svd: gesvd of a %d x %d matrix failed (status %d, info %d)", m, n,
                            (int)cs, hinfo);
    return LG_OK;
}
