/* Batch normalization. First derivative only: its backward is one fused
 * kernel whose outputs carry an op without a backward rule, so a second
 * derivative through batch norm fails loudly instead of returning zero. */
#include "core/graph.h"

static const lg_op_def OP_BN_BACKWARD = {"batchnorm_backward", NULL};

static lg_status bw_bn(lg_ctx *ctx, lg_node *n, lg_tensor *g, lg_tensor **gin, const int *need) {
    lg_tensor *x = n->src[0], *gamma = n->src[1];
    lg_tensor *mean = n->aux[0], *rstd = n->aux[1];
    int64_t c = x->shape[1], hw = x->numel / (x->shape[0] * c);
    lg_tensor *dx = lg_new(ctx, x->ndim, x->shape);
    lg_tensor *dgamma = lg_new(ctx, gamma->ndim, gamma->shape);
    lg_tensor *dbeta = lg_new(ctx, gamma->ndim, gamma->shape);
    if (!dx || !dgamma || !dbeta) return lg_ctx_status(ctx);
    lg_ctx_backend(ctx)->bn_bwd(dx->data, dgamma->data, dbeta->data, g->data, x->data, mean->data,
                                rstd->data, gamma->data, x->shape[0], c, hw);
    lg_tensor *src[3] = {g, x, gamma};
    lg_graph_record(ctx, &OP_BN_BACKWARD, dx, 3, src);
    lg_graph_record(ctx, &OP_BN_BACKWARD, dgamma, 3, src);
    lg_graph_record(ctx, &OP_BN_BACKWARD, dbeta, 3, src);
    gin[0] = dx;
    gin[1] = dgamma;
    gin[2] = dbeta;
    return LG_OK;
}
static const lg_op_def OP_BN = {"batchnorm", bw_bn};

lg_tensor *lg_batchnorm(lg_ctx *ctx, lg_tensor *x, lg_tensor *gamma, lg_tensor *beta, lg_bn_state *st,
                        int train) {
    LG_CHECK_IN(ctx, x);
    LG_CHECK_IN(ctx, gamma);
    LG_CHECK_IN(ctx, beta);
    char s[64];
    if ((x->ndim != 2 && x->ndim != 4) || gamma->numel != x->shape[1] || beta->numel != x->shape[1])
        return lg_ctx_fail(ctx, LG_ERR_SHAPE, "batchnorm: input %s needs (N,C[,H,W]) with C-sized gamma/beta",
                           lg_shape_str(x, s, sizeof s));
    if (train && x->shape[0] * (x->numel / (x->shape[0] * x->shape[1])) < 2)
        return lg_ctx_fail(ctx, LG_ERR_SHAPE, "batchnorm: training needs more than one value per channel");
    int64_t n = x->shape[0], c = x->shape[1], hw = x->numel / (n * c);
    const lg_backend *be = lg_ctx_backend(ctx);
    if (!train) {
        /* eval: y is affine in x with fixed statistics; when a gradient is
         * wanted, build it from differentiable ops (second order works) */
        if (lg_ctx_grad_enabled(ctx) && (x->requires_grad || gamma->requires_grad || beta->requires_grad)) {
            int nd = x->ndim;
            int64_t shp[4] = {1, c, 1, 1};
            lg_tensor run_mean;
            lg_tensor_init(&run_mean, st->run_mean, 1, &c);
            lg_tensor *mean = lg_alias(ctx, &run_mean, nd, shp);
            lg_tensor *rstd = lg_new(ctx, nd, shp);
            if (!mean || !rstd) return NULL;
            be->unary(LG_U_ADD_SCALAR, rstd->data, st->run_var, (size_t)c, st->eps);
            be->unary(LG_U_SQRT, rstd->data, rstd->data, (size_t)c, 0.0f);
            be->unary(LG_U_RECIP, rstd->data, rstd->data, (size_t)c, 0.0f);
            lg_tensor *xn = lg_mul(ctx, lg_sub(ctx, x, mean), rstd);
            return lg_add(ctx, lg_mul(ctx, xn, lg_reshape(ctx, gamma, nd, shp)),
                          lg_reshape(ctx, beta, nd, shp));
        }
        lg_tensor *y = lg_new(ctx, x->ndim, x->shape);
        if (!y) return NULL;
        be->bn_eval(y->data, x->data, gamma->data, beta->data, st->run_mean, st->run_var, n, c, hw, st->eps);
        return y;
    }
    lg_tensor *y = lg_new(ctx, x->ndim, x->shape);
    if (!y) return NULL;
    lg_tensor *mean = lg_new1(ctx, c), *rstd = lg_new1(ctx, c);
    if (!mean || !rstd) return NULL;
    be->bn_train(y->data, mean->data, rstd->data, x->data, gamma->data, beta->data, st->run_mean,
                 st->run_var, n, c, hw, st->eps, st->momentum);
    lg_tensor *src[3] = {x, gamma, beta};
    lg_node *nd = lg_graph_record(ctx, &OP_BN, y, 3, src);
    if (nd) {
        nd->aux[0] = mean;
        nd->aux[1] = rstd;
    }
    return y;
}
