/* Nearest upsampling x2 and 2x2 pooling (adjoints of each other), and
 * global sum pooling.
 *
 * Pooling floors as PyTorch's avg_pool2d(x, 2): an odd H or W leaves x's
 * last row or column out. Its adjoint is then upsampling into (H, W) with
 * that row or column 0; even sizes use the upsample2x kernel, odd ones the
 * backend's conv2d_bwd_data with a 2x2 kernel of ones and stride 2, which
 * is exactly that map (each output element receives one input element
 * times 1, or nothing). */
#include <limits.h>

#include "core/graph.h"

static lg_status bw_upsample(lg_ctx *ctx, lg_node *n, lg_tensor *g, lg_tensor **gin, const int *need);
static lg_status bw_sumpool(lg_ctx *ctx, lg_node *n, lg_tensor *g, lg_tensor **gin, const int *need);
static lg_status bw_sumpool_adj(lg_ctx *ctx, lg_node *n, lg_tensor *g, lg_tensor **gin,
                                const int *need);
static const lg_op_def OP_UPSAMPLE = {"upsample2x", bw_upsample};
static const lg_op_def OP_SUMPOOL = {"sumpool2x2", bw_sumpool};
static const lg_op_def OP_SUMPOOL_ADJ = {"sumpool2x2_adjoint", bw_sumpool_adj};

/* y (N,C,h,w) = the adjoint of 2x2 sum pooling of a (N,C,h,w) input,
 * applied to g (N,C,h/2,w/2): each g element copied over its 2x2 block, an
 * odd h's last row and an odd w's last column 0. */
static lg_tensor *sumpool_adjoint(lg_ctx *ctx, lg_tensor *g, int64_t h, int64_t w) {
    LG_CHECK_IN(ctx, g);
    if (h == 2 * g->shape[2] && w == 2 * g->shape[3]) return lg_upsample2x(ctx, g);
    int64_t nc = g->shape[0] * g->shape[1];
    LG_ASSERT(g->ndim == 4 && h / 2 == g->shape[2] && w / 2 == g->shape[3]);
    if (nc > INT_MAX || h > INT_MAX || w > INT_MAX)
        return lg_ctx_fail(ctx, LG_ERR_SHAPE, "2x2 pooling backward: %lld planes of %lldx%lld exceed "
                           "the convolution geometry's int range", (long long)nc, (long long)h,
                           (long long)w);
    lg_tensor *y = lg_new4(ctx, g->shape[0], g->shape[1], h, w);
    if (!y) return NULL;
    /* planes as a batch of one-channel images (N*C,1,h,w) */
    lg_conv_geom geo = {(int)nc, 1, (int)h, (int)w, 1, 2, 2, 2, 0, (int)g->shape[2], (int)g->shape[3]};
    const lg_backend *be = lg_ctx_backend(ctx);
    size_t nws = be->conv_workspace(&geo);
    if (nws == 0) nws = 1;
    float *ones = lg_ctx_scratch(ctx, 4); /* (1,1,2,2) */
    float *ws = ones ? lg_ctx_scratch(ctx, nws) : NULL;
    if (!ws) return NULL;
    be->fill(ones, 1.0f, 4);
    be->conv2d_bwd_data(y->data, g->data, ones, &geo, ws);
    lg_ctx_scratch_release(ctx, ws, nws);
    lg_graph_record(ctx, &OP_SUMPOOL_ADJ, y, 1, &g);
    return y;
}

static lg_status bw_upsample(lg_ctx *ctx, lg_node *n, lg_tensor *g, lg_tensor **gin, const int *need) {
    gin[0] = lg_sumpool2x2(ctx, g);
    return LG_OK;
}
static lg_status bw_sumpool(lg_ctx *ctx, lg_node *n, lg_tensor *g, lg_tensor **gin, const int *need) {
    gin[0] = sumpool_adjoint(ctx, g, n->src[0]->shape[2], n->src[0]->shape[3]);
    return LG_OK;
}
static lg_status bw_sumpool_adj(lg_ctx *ctx, lg_node *n, lg_tensor *g, lg_tensor **gin,
                                const int *need) {
    gin[0] = lg_sumpool2x2(ctx, g);
    return LG_OK;
}

lg_tensor *lg_upsample2x(lg_ctx *ctx, lg_tensor *x) {
    LG_CHECK_IN(ctx, x);
    if (x->ndim != 4) return lg_ctx_fail(ctx, LG_ERR_SHAPE, "upsample2x: input must be (N,C,H,W)");
    lg_tensor *y = lg_new4(ctx, x->shape[0], x->shape[1], 2 * x->shape[2], 2 * x->shape[3]);
    if (!y) return NULL;
    lg_ctx_backend(ctx)->upsample2x(y->data, x->data, x->shape[0] * x->shape[1], x->shape[2],
                                    x->shape[3]);
    lg_graph_record(ctx, &OP_UPSAMPLE, y, 1, &x);
    return y;
}

lg_tensor *lg_sumpool2x2(lg_ctx *ctx, lg_tensor *x) {
    LG_CHECK_IN(ctx, x);
    char s[64];
    if (x->ndim != 4)
        return lg_ctx_fail(ctx, LG_ERR_SHAPE, "2x2 pooling: input %s must be (N,C,H,W)",
                           lg_shape_str(x, s, sizeof s));
    /* PyTorch's avg_pool2d fails the same way ("output size is too small") */
    if (x->shape[2] < 2 || x->shape[3] < 2)
        return lg_ctx_fail(ctx, LG_ERR_SHAPE, "2x2 pooling: input %s has H or W below 2, so the "
                           "output (N,C,H/2,W/2) would be empty; pool only planes of 2x2 or more",
                           lg_shape_str(x, s, sizeof s));
    lg_tensor *y = lg_new4(ctx, x->shape[0], x->shape[1], x->shape[2] / 2, x->shape[3] / 2);
    if (!y) return NULL;
    lg_ctx_backend(ctx)->sumpool2x2(y->data, x->data, x->shape[0] * x->shape[1], x->shape[2],
                                    x->shape[3]);
    lg_graph_record(ctx, &OP_SUMPOOL, y, 1, &x);
    return y;
}

lg_tensor *lg_avgpool2x2(lg_ctx *ctx, lg_tensor *x) {
    return lg_scale(ctx, lg_sumpool2x2(ctx, x), 0.25f);
}

lg_tensor *lg_global_sum_pool(lg_ctx *ctx, lg_tensor *x) {
    LG_CHECK_IN(ctx, x);
    if (x->ndim != 4) return lg_ctx_fail(ctx, LG_ERR_SHAPE, "global_sum_pool: input must be (N,C,H,W)");
    int64_t s[2] = {x->shape[0], x->shape[1]};
    return lg_reshape(ctx, lg_sum_axes(ctx, x, (1u << 2) | (1u << 3)), 2, s);
}
