/* lipgan/backend.h - the kernel dispatch table.
 *
 * Every numerical kernel the graph layer (ops.h) needs is one function
 * pointer here; the CPU backend (src/backend/cpu) is the reference and the
 * CUDA backend (src/backend/cuda) fills the same table. Kernels take raw
 * buffers living in the backend's memory, never allocate, and never fail on
 * valid arguments (callers validate shapes). All buffers are float32,
 * contiguous, row-major; NCHW for images.
 *
 * Broadcasting shapes are always passed as 4 dims, right-aligned and padded
 * on the left with 1 (a (C) bias seen against (N,C,H,W) is passed as
 * {1,1,1,C}; reshape it to (1,C,1,1) first to broadcast over channels). */
#ifndef LIPGAN_BACKEND_H
#define LIPGAN_BACKEND_H

#include <stddef.h>
#include <stdint.h>

#include "lipgan/status.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Geometry of a 2-D convolution y = conv(x, w):
 * x (n, c, h, w), w (oc, c, kh, kw), y (n, oc, oh, ow),
 * oh = (h + 2*pad - kh) / stride + 1 (floor), likewise ow.
 * A transposed convolution is the backward-data pass of the conv whose
 * input is the transposed conv's output. */
typedef struct lg_conv_geom {
    int n, c, h, w;      /* input */
    int oc, kh, kw;      /* weight */
    int stride, pad;
    int oh, ow;          /* output */
} lg_conv_geom;

typedef enum lg_unary {
    LG_U_RELU,        /* max(x, 0) */
    LG_U_LRELU,       /* x > 0 ? x : alpha*x */
    LG_U_TANH,
    LG_U_SIGMOID,
    LG_U_SOFTPLUS,    /* log(1 + e^x), stable for large |x| */
    LG_U_SQUARE,
    LG_U_SQRT,
    LG_U_NEG,
    LG_U_SCALE,       /* alpha * x */
    LG_U_ADD_SCALAR,  /* x + alpha */
    LG_U_STEP,        /* x > 0 ? 1 : alpha  (ReLU/LeakyReLU slope mask) */
    LG_U_RECIP,       /* 1 / x */
    LG_U_EXP,
    LG_U_LOG,
    LG_U_ABS,
    LG_U_SIGN,        /* -1, 0, 1 */
    LG_U_CLAMP,       /* clamp to [-alpha, alpha] (weight clipping) */
    LG_U_COUNT
} lg_unary;

typedef enum lg_binary {
    LG_B_ADD,
    LG_B_SUB,
    LG_B_MUL,
    LG_B_DIV,
    LG_B_MAX,
    LG_B_ADD_RELU,  /* relu(a + b): a bias add fused with the ReLU after it */
    LG_B_RELU_MASK, /* a * (b > 0 ? 1 : 0): ReLU's backward, the mask read from
                     * b = its input or its output (both > 0 at the same places) */
    LG_B_COUNT
} lg_binary;

/* 2^63: the largest magnitude all_finite accepts (its square is finite in
 * float, with room for Adam's running sums) */
#define LG_FINITE_MAX 9.2233720e18f

typedef struct lg_backend {
    const char *name;  /* "cpu", "cuda" */
    int is_device;     /* 1 if buffers are not host-addressable */

    /* ---- memory (one pool per backend; alloc returns NULL on failure) ---- */
    void *(*alloc)(size_t bytes);           /* 64-byte aligned */
    void (*free)(void *p);
    void (*upload)(float *dst, const float *host_src, size_t n);   /* host -> backend */
    void (*download)(float *host_dst, const float *src, size_t n); /* backend -> host */
    void (*copy)(float *dst, const float *src, size_t n);
    void (*fill)(float *dst, float value, size_t n);
    void (*sync)(void);                      /* wait for queued work */

    /* ---- dense linear algebra ----
     * C (m,n) = alpha * op(A) op(B) + beta * C, row-major;
     * op(A) is (m,k): A is (m,k) with lda>=k, or (k,m) if ta, lda>=m. */
    void (*gemm)(int ta, int tb, int m, int n, int k, float alpha,
                 const float *a, int lda, const float *b, int ldb,
                 float beta, float *c, int ldc);

    /* ---- convolution (no bias; bias is a broadcast add) ----
     * conv2d:            y (n,oc,oh,ow)  = x (n,c,h,w) * w (oc,c,kh,kw)
     * conv2d_bwd_data:   dx (n,c,h,w)    = d/dx of sum(dy*y), overwritten
     * conv2d_bwd_weight: dw (oc,c,kh,kw) = d/dw of sum(dy*y), overwritten
     * ws is a scratch buffer of at least conv_workspace(g) floats. */
    size_t (*conv_workspace)(const lg_conv_geom *g);
    void (*conv2d)(float *y, const float *x, const float *w,
                   const lg_conv_geom *g, float *ws);
    void (*conv2d_bwd_data)(float *dx, const float *dy, const float *w,
                            const lg_conv_geom *g, float *ws);
    void (*conv2d_bwd_weight)(float *dw, const float *x, const float *dy,
                              const lg_conv_geom *g, float *ws);

    /* ---- elementwise ---- */
    void (*unary)(lg_unary op, float *y, const float *x, size_t n, float alpha);
    /* y (yshape) = a (ashape) op b (bshape); every dim of a and b is either
     * equal to y's or 1 (broadcast). y may alias a or b when shapes equal. */
    void (*binary)(lg_binary op, float *y, const int64_t yshape[4],
                   const float *a, const int64_t ashape[4],
                   const float *b, const int64_t bshape[4]);
    /* y (yshape) = sum of x (xshape) over the dims where yshape is 1 and
     * xshape is not (the adjoint of broadcasting). */
    void (*sum_to)(float *y, const int64_t yshape[4],
                   const float *x, const int64_t xshape[4]);
    /* y[0] = sum(x[0..n)) (a device scalar) */
    void (*sum_all)(float *y, const float *x, size_t n);

    /* ---- resampling, x and y are (nc, h, w) planes ----
     * upsample2x:  y (nc, 2h, 2w) nearest neighbour of x (nc, h, w)
     * sumpool2x2:  y (nc, h/2, w/2) = sum of each 2x2 block of x (nc, h, w),
     *              h/2 and w/2 rounded down: an odd h's last row and an odd
     *              w's last column are not read (PyTorch's avg_pool2d). */
    void (*upsample2x)(float *y, const float *x, int64_t nc, int64_t h, int64_t w);
    void (*sumpool2x2)(float *y, const float *x, int64_t nc, int64_t h, int64_t w);

    /* ---- batch norm over x (n, c, hw), statistics per channel ----
     * train: y = gamma*(x-mean)*rstd + beta with batch mean and biased
     *   variance; writes mean (c), rstd (c) and updates running mean/var
     *   (c) with momentum (PyTorch convention, unbiased running variance).
     * eval: uses the running statistics.
     * bwd: dx (n,c,hw), dgamma (c), dbeta (c) overwritten. */
    void (*bn_train)(float *y, float *mean, float *rstd, const float *x,
                     const float *gamma, const float *beta,
                     float *run_mean, float *run_var,
                     int64_t n, int64_t c, int64_t hw, float eps, float momentum);
    void (*bn_eval)(float *y, const float *x, const float *gamma, const float *beta,
                    const float *run_mean, const float *run_var,
                    int64_t n, int64_t c, int64_t hw, float eps);
    void (*bn_bwd)(float *dx, float *dgamma, float *dbeta, const float *dy,
                   const float *x, const float *mean, const float *rstd,
                   const float *gamma, int64_t n, int64_t c, int64_t hw);

    /* ---- vector helpers for power iteration and optimizers ---- */
    /* y[0] = dot(a, b) (device scalar) */
    void (*dot)(float *y, const float *a, const float *b, size_t n);
    /* x /= max(||x||_2, eps), in place */
    void (*normalize)(float *x, size_t n, float eps);
    /* Adam with bias correction, PyTorch semantics, over one contiguous
     * buffer: m = b1 m + (1-b1) g; v = b2 v + (1-b2) g^2;
     * p -= lr * (m / (1-b1^t)) / (sqrt(v / (1-b2^t)) + eps). */
    void (*adam)(float *p, float *m, float *v, const float *g, size_t n,
                 float lr, float b1, float b2, float eps, int64_t t);
    /* y[0] = 1 if every |x| < LG_FINITE_MAX (so finite, and x^2 too) else 0
     * (device scalar): a gradient beyond it would overflow Adam's or
     * RMSProp's second moment to inf, so the trainer skips it as non-finite */
    void (*all_finite)(float *y, const float *x, size_t n);

    /* ---- a training step without host round trips (src/train/step_dev.c):
     * whether an update is applied is decided from a flag in backend
     * memory (1 = gradients and loss finite), so a whole update can be
     * queued, or captured as a CUDA graph, without reading anything back.
     * adam_prep: if flag[0] == 1: t = tc[0] + 1, tc[0] = t and
     *   hp (3) = {lr[0] / (1 - b1^t), sqrt(1 - b2^t), 1}, both in double as
     *   `adam` computes them (t counts in a float: exact to 2^24 updates);
     *   else hp[2] = 0.
     * adam_flagged: `adam` with the step size and bias correction of hp;
     *   nothing when hp[2] != 1 (bitwise equal to `adam` otherwise).
     * cond_copy: dst (n) = src (n) when flag[0] != 1 (restores state saved
     *   before a skipped update).
     * flag_track: c (4) = {run, max_run, skipped, limit}: once max_run has
     *   reached limit, sets flag[0] = 0 and counts nothing (the run has
     *   stopped: later updates are not applied); else flag 1 sets run = 0,
     *   otherwise run, skipped += 1 and max_run = max(max_run, run). */
    void (*adam_prep)(float *hp, float *tc, const float *flag, const float *lr, float b1,
                      float b2);
    void (*adam_flagged)(float *p, float *m, float *v, const float *g, size_t n,
                         const float *hp, float b1, float b2, float eps);
    void (*cond_copy)(float *dst, const float *src, size_t n, const float *flag);
    void (*flag_track)(float *c, float *flag);

    /* ---- optional (NULL: not offered; callers do it on the host) ----
     * Thin SVD of the column-major m x n matrix a (m >= n >= 1), float:
     * s (n) descending, u (m, n) and vt (n, n), both column-major, all
     * backend memory; a is overwritten. Waits for the result. Returns
     * LG_OK, or a status with the message set (no convergence, no memory). */
    lg_status (*svd)(float *s, float *u, float *vt, float *a, int m, int n);

    /* Batch norm in parts, for statistics over the whole batch of several
     * processes (synchronized batch norm, src/ops/batchnorm.c); x and dy
     * are (n, c, hw), sums run over this process's (n, hw) per channel:
     * bn_stats:     mean (c) and m2 (c) = sum of (x - mean)^2;
     * bn_bwd_sums:  sdy (c) = sum of dy, sdyx (c) = sum of dy*(x - mean);
     * bn_bwd_apply: dx = gamma*rstd*(dy - sdy/cnt - (x - mean)*rstd^2*sdyx/cnt)
     *               with sdy, sdyx and cnt (values per channel) those of the
     *               whole batch; NULL gamma means 1. */
    void (*bn_stats)(float *mean, float *m2, const float *x, int64_t n, int64_t c, int64_t hw);
    void (*bn_bwd_sums)(float *sdy, float *sdyx, const float *dy, const float *x,
                        const float *mean, int64_t n, int64_t c, int64_t hw);
    void (*bn_bwd_apply)(float *dx, const float *dy, const float *x, const float *mean,
                         const float *rstd, const float *gamma, const float *sdy,
                         const float *sdyx, double cnt, int64_t n, int64_t c, int64_t hw);
} lg_backend;

/* Short names of the elementwise ops ("relu", "add_relu", ...; "?" out of
 * range), for profiles and messages. */
const char *lg_unary_name(lg_unary op);
const char *lg_binary_name(lg_binary op);

/* The CPU backend (always available). */
const lg_backend *lg_backend_cpu(void);

/* The CUDA backend, or NULL with a message (lg_error_msg) when lipgan was
 * built without CUDA or no device is usable. */
const lg_backend *lg_backend_cuda(void);

/* Looks a backend up by name ("cpu", "cuda"). */
lg_status lg_backend_get(const char *name, const lg_backend **out);

/* Output size of a convolution along one dim; <= 0 if the input is too small. */
static inline int lg_conv_out_size(int in, int k, int stride, int pad) {
    return (in + 2 * pad - k) / stride + 1;
}

#ifdef __cplusplus
}
#endif
#endif
