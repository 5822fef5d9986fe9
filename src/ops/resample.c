/* Nearest upsampling x2 and 2x2 pooling (adjoints of each other), and
 * global sum pooling. */
#include "core/graph.h"

static lg_status bw_upsample(lg_ctx *ctx, lg_node *n, lg_tensor *g, lg_tensor **gin, const int *need) {
    gin[0] = lg_sumpool2x2(ctx, g);
    return LG_OK;
}
static lg_status bw_sumpool(lg_ctx *ctx, lg_node *n, lg_tensor *g, lg_tensor **gin, const int *need) {
    gin[0] = lg_upsample2x(ctx, g);
    return LG_OK;
}
static const lg_op_def OP_UPSAMPLE = {"upsample2x", bw_upsample};
static const lg_op_def OP_SUMPOOL = {"sumpool2x2", bw_sumpool};

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
    if (x->ndim != 4 || x->shape[2] % 2 || x->shape[3] % 2)
        return lg_ctx_fail(ctx, LG_ERR_SHAPE, "2x2 pooling: input %s must be (N,C,H,W) with even H, W",
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
