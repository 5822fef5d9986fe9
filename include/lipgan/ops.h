/* lipgan/ops.h - differentiable tensor operations.
 *
 * Every function computes its result on the context's backend and, when
 * grad recording is on and an input requires grad, records a graph node.
 * Each op's backward rule is written with these same ops, so a gradient
 * is itself a differentiable graph (lg_grad with create_graph) and can be
 * differentiated again, as the gradient penalty needs.
 *
 * Failure model: on bad shapes or allocation failure an op records a
 * sticky error on the context (lg_ctx_status) and returns NULL; an op given
 * a NULL input returns NULL. Check lg_ctx_status() once after a pass.
 *
 * Broadcasting (add/sub/mul/div/max): shapes are right-aligned as in NumPy;
 * each dim must be equal or 1 in one of the operands.
 *
 * Second derivatives work through: matmul/linear, conv2d, conv_transpose2d,
 * avg/sum pooling, upsampling, every activation, elementwise ops,
 * reductions and reshapes. Batch norm has a first derivative only (it is
 * used in generators; differentiating its backward fails with an error). */
#ifndef LIPGAN_OPS_H
#define LIPGAN_OPS_H

#include "lipgan/tensor.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ---- linear algebra ---- */
/* (m,n) = op(a) op(b), a and b 2-D; ta/tb transpose them. */
lg_tensor *lg_matmul(lg_ctx *ctx, lg_tensor *a, lg_tensor *b, int ta, int tb);
/* y (N,out) = x (N,in) w^T + b; w (out,in), b (out) or NULL. */
lg_tensor *lg_linear(lg_ctx *ctx, lg_tensor *x, lg_tensor *w, lg_tensor *b);

/* ---- convolutions (NCHW) ---- */
/* y (N,OC,OH,OW) = conv(x (N,C,H,W), w (OC,C,KH,KW)) + b (OC) or NULL. */
lg_tensor *lg_conv2d(lg_ctx *ctx, lg_tensor *x, lg_tensor *w, lg_tensor *b,
                     int stride, int pad);
/* y (N,OC,OH,OW), OH = (H-1)*stride - 2*pad + KH + out_pad;
 * x (N,C,H,W), w (C,OC,KH,KW) (PyTorch's ConvTranspose2d layout), b (OC). */
lg_tensor *lg_conv_transpose2d(lg_ctx *ctx, lg_tensor *x, lg_tensor *w, lg_tensor *b,
                               int stride, int pad, int out_pad);
/* The weight gradient of conv2d as an op: dw (OC,C,KH,KW) = d/dw sum(dy *
 * conv2d(x, w)) for x (N,C,H,W), dy (N,OC,OH,OW). Differentiable in x and dy. */
lg_tensor *lg_conv2d_wgrad(lg_ctx *ctx, lg_tensor *x, lg_tensor *dy,
                           int kh, int kw, int stride, int pad);

/* ---- resampling ---- */
lg_tensor *lg_upsample2x(lg_ctx *ctx, lg_tensor *x);   /* (N,C,2H,2W) nearest */
/* 2x2 pooling, stride 2, y (N,C,H/2,W/2) with H/2, W/2 rounded down, as
 * PyTorch's F.avg_pool2d(x, 2) (sum pooling is 4 times it): an odd H's
 * last row and an odd W's last column are left out, and their gradient is
 * 0. H or W below 2 (an empty output) is LG_ERR_SHAPE, as PyTorch's
 * "output size is too small". */
lg_tensor *lg_avgpool2x2(lg_ctx *ctx, lg_tensor *x);   /* (N,C,H/2,W/2) */
lg_tensor *lg_sumpool2x2(lg_ctx *ctx, lg_tensor *x);   /* (N,C,H/2,W/2) */
lg_tensor *lg_global_sum_pool(lg_ctx *ctx, lg_tensor *x); /* (N,C) = sum over H,W */

/* ---- normalization ----
 * Running statistics and their update rule live in the caller's state. */
typedef struct lg_bn_state {
    float *run_mean;   /* (C) backend memory */
    float *run_var;    /* (C) backend memory */
    float momentum;    /* PyTorch convention, default 0.1 */
    float eps;         /* default 1e-5 */
} lg_bn_state;
/* x (N,C,H,W) or (N,C); gamma, beta (C). train: batch statistics and a
 * running-average update; otherwise the running statistics. */
lg_tensor *lg_batchnorm(lg_ctx *ctx, lg_tensor *x, lg_tensor *gamma, lg_tensor *beta,
                        lg_bn_state *st, int train);

/* ---- activations ---- */
lg_tensor *lg_relu(lg_ctx *ctx, lg_tensor *x);
lg_tensor *lg_leaky_relu(lg_ctx *ctx, lg_tensor *x, float alpha);
/* relu(a + b), broadcasting as lg_add: a layer's bias add and the ReLU after
 * it in one pass (forward), and one masked pass back. */
lg_tensor *lg_add_relu(lg_ctx *ctx, lg_tensor *a, lg_tensor *b);
lg_tensor *lg_tanh(lg_ctx *ctx, lg_tensor *x);
lg_tensor *lg_sigmoid(lg_ctx *ctx, lg_tensor *x);
lg_tensor *lg_softplus(lg_ctx *ctx, lg_tensor *x);

/* ---- elementwise ---- */
lg_tensor *lg_add(lg_ctx *ctx, lg_tensor *a, lg_tensor *b);
lg_tensor *lg_sub(lg_ctx *ctx, lg_tensor *a, lg_tensor *b);
lg_tensor *lg_mul(lg_ctx *ctx, lg_tensor *a, lg_tensor *b);
lg_tensor *lg_div(lg_ctx *ctx, lg_tensor *a, lg_tensor *b);
lg_tensor *lg_scale(lg_ctx *ctx, lg_tensor *x, float c);       /* c*x */
lg_tensor *lg_add_scalar(lg_ctx *ctx, lg_tensor *x, float c);  /* x+c */
lg_tensor *lg_neg(lg_ctx *ctx, lg_tensor *x);
lg_tensor *lg_square(lg_ctx *ctx, lg_tensor *x);
lg_tensor *lg_sqrt(lg_ctx *ctx, lg_tensor *x);

/* ---- reductions ---- */
lg_tensor *lg_sum(lg_ctx *ctx, lg_tensor *x);    /* shape (1) */
lg_tensor *lg_mean(lg_ctx *ctx, lg_tensor *x);   /* shape (1) */
/* Sums over the dims whose bit is set in axes_mask (bit i = dim i),
 * keeping them with size 1 (keepdim). */
lg_tensor *lg_sum_axes(lg_ctx *ctx, lg_tensor *x, unsigned axes_mask);
lg_tensor *lg_mean_axes(lg_ctx *ctx, lg_tensor *x, unsigned axes_mask);
/* Broadcast to a larger shape / reduce to a smaller one (adjoint pair). */
lg_tensor *lg_broadcast_to(lg_ctx *ctx, lg_tensor *x, int ndim, const int64_t *shape);
lg_tensor *lg_sum_to(lg_ctx *ctx, lg_tensor *x, int ndim, const int64_t *shape);

/* ---- shape ---- */
lg_tensor *lg_reshape(lg_ctx *ctx, lg_tensor *x, int ndim, const int64_t *shape);
lg_tensor *lg_flatten(lg_ctx *ctx, lg_tensor *x);  /* (N, rest) */
/* Rows along dim 0, differentiable to any order:
 * rows:     y (len, ...)   = x[start : start+len]
 * rows_pad: y (total, ...) = zeros with y[start : start+n] = x (n, ...) (rows' adjoint)
 * cat_rows: y (na+nb, ...) = [a; b] (a, b equal beyond dim 0) */
lg_tensor *lg_rows(lg_ctx *ctx, lg_tensor *x, int64_t start, int64_t len);
lg_tensor *lg_rows_pad(lg_ctx *ctx, lg_tensor *x, int64_t start, int64_t total);
lg_tensor *lg_cat_rows(lg_ctx *ctx, lg_tensor *a, lg_tensor *b);

/* ---- classification (src/ops/softmax.c) ----
 * Over the rows of x (N,K); the forward runs on the host in double with the
 * row maximum subtracted (stable for any finite logits), so it costs a
 * download/upload on a device backend. Derivatives of every order. */
lg_tensor *lg_log_softmax(lg_ctx *ctx, lg_tensor *x);  /* (N,K) */
lg_tensor *lg_softmax(lg_ctx *ctx, lg_tensor *x);      /* (N,K), exp(log_softmax) */
/* Mean cross-entropy (1) = -(1/N) sum_i log_softmax(logits)[i, labels[i]]
 * of logits (N,K) and host labels (N) in [0, K) (PyTorch's
 * F.cross_entropy with reduction "mean"); a label out of range is a sticky
 * LG_ERR_INVALID_ARG. */
lg_tensor *lg_cross_entropy(lg_ctx *ctx, lg_tensor *logits, const int32_t *labels);

#ifdef __cplusplus
}
#endif
#endif
