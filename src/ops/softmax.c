/* Log-softmax over the rows of (N,K), softmax, and the cross-entropy loss.
 *
 * The forward pass runs on the host in double with the row maximum
 * subtracted (the backend table has no row-max kernel; K is small for every
 * use in lipgan, e.g. 10 classes). The backward rule is written with ops,
 *   d log_softmax: dx = g - softmax(x) * rowsum(g),  softmax = exp(y),
 * so a gradient of it is again a graph and can be differentiated. */
#include <math.h>
#include <string.h>

#include "core/graph.h"

#define BE(ctx) lg_ctx_backend(ctx)

/* ---- exp as a private op: d exp(x) = exp(x), the op's own output ---- */

static lg_status bw_exp(lg_ctx *ctx, lg_node *n, lg_tensor *g, lg_tensor **gin, const int *need) {
    gin[0] = lg_mul(ctx, g, n->out);
    return LG_OK;
}
static const lg_op_def OP_EXP = {"exp", bw_exp};

static lg_tensor *op_exp(lg_ctx *ctx, lg_tensor *x) {
    LG_CHECK_IN(ctx, x);
    lg_tensor *y = lg_new(ctx, x->ndim, x->shape);
    if (!y) return NULL;
    BE(ctx)->unary(LG_U_EXP, y->data, x->data, (size_t)x->numel, 0.0f);
    lg_graph_record(ctx, &OP_EXP, y, 1, &x);
    return y;
}

/* ---- log_softmax ---- */

static lg_status bw_log_softmax(lg_ctx *ctx, lg_node *n, lg_tensor *g, lg_tensor **gin,
                                const int *need) {
    lg_tensor *p = op_exp(ctx, n->out);      /* (N,K) softmax, differentiable through out */
    lg_tensor *s = lg_sum_axes(ctx, g, 2u);  /* (N,1) */
    gin[0] = lg_sub(ctx, g, lg_mul(ctx, p, s));
    return LG_OK;
}
static const lg_op_def OP_LOG_SOFTMAX = {"log_softmax", bw_log_softmax};

/* y (n,k) = log_softmax of the rows of x (n,k), host memory; y may equal x. */
static void log_softmax_rows(float *y, const float *x, int64_t n, int64_t k) {
    for (int64_t i = 0; i < n; i++) {
        const float *xr = x + i * k;
        double mx = -INFINITY;
        for (int64_t j = 0; j < k; j++)
            if (xr[j] > mx) mx = xr[j];
        double s = 0.0;
        for (int64_t j = 0; j < k; j++) s += exp((double)xr[j] - mx);
        double lse = mx + log(s);  /* NaN/Inf inputs propagate as in PyTorch */
        for (int64_t j = 0; j < k; j++) y[i * k + j] = (float)((double)xr[j] - lse);
    }
}

lg_tensor *lg_log_softmax(lg_ctx *ctx, lg_tensor *x) {
    LG_CHECK_IN(ctx, x);
    if (x->ndim != 2 || x->shape[1] < 1) {
        char sx[64];
        return lg_ctx_fail(ctx, LG_ERR_SHAPE, "log_softmax: input must be (N,K) with K >= 1, got %s",
                           lg_shape_str(x, sx, sizeof sx));
    }
    lg_tensor *y = lg_new(ctx, 2, x->shape);
    if (!y) return NULL;
    const lg_backend *be = BE(ctx);
    if (!be->is_device) {
        log_softmax_rows(y->data, x->data, x->shape[0], x->shape[1]);
    } else {
        float *h = lg_ctx_host_alloc(ctx, (size_t)x->numel * sizeof(float)); /* (N,K) */
        if (!h) return NULL;
        be->download(h, x->data, (size_t)x->numel);
        log_softmax_rows(h, h, x->shape[0], x->shape[1]);
        be->upload(y->data, h, (size_t)x->numel);
    }
    lg_graph_record(ctx, &OP_LOG_SOFTMAX, y, 1, &x);
    return y;
}

lg_tensor *lg_softmax(lg_ctx *ctx, lg_tensor *x) { return op_exp(ctx, lg_log_softmax(ctx, x)); }

/* ---- cross-entropy ----
 * loss = -(1/N) sum_i log_softmax(x)_{i, label_i} = sum(w * log_softmax(x))
 * with the constant w (N,K) = -1/N at (i, label_i), 0 elsewhere: only ops,
 * so its derivatives of every order come from mul, sum and log_softmax. */
lg_tensor *lg_cross_entropy(lg_ctx *ctx, lg_tensor *logits, const int32_t *labels) {
    LG_CHECK_IN(ctx, logits);
    if (logits->ndim != 2 || logits->shape[0] < 1 || logits->shape[1] < 1) {
        char sx[64];
        return lg_ctx_fail(ctx, LG_ERR_SHAPE, "cross_entropy: logits must be (N,K), N, K >= 1, got %s",
                           lg_shape_str(logits, sx, sizeof sx));
    }
    if (!labels) return lg_ctx_fail(ctx, LG_ERR_INVALID_ARG, "cross_entropy: labels is NULL");
    int64_t n = logits->shape[0], k = logits->shape[1];
    for (int64_t i = 0; i < n; i++)
        if (labels[i] < 0 || labels[i] >= k)
            return lg_ctx_fail(ctx, LG_ERR_INVALID_ARG,
                               "cross_entropy: label %lld of row %lld is outside [0, %lld)",
                               (long long)labels[i], (long long)i, (long long)k);
    float *w = lg_ctx_host_alloc(ctx, (size_t)(n * k) * sizeof(float)); /* (N,K) */
    if (!w) return NULL;
    memset(w, 0, (size_t)(n * k) * sizeof(float));
    for (int64_t i = 0; i < n; i++) w[i * k + labels[i]] = -1.0f / (float)n;
    lg_tensor *wt = lg_from_host(ctx, w, 2, logits->shape);
    return lg_sum(ctx, lg_mul(ctx, wt, lg_log_softmax(ctx, logits)));
}
