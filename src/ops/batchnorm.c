/* Batch normalization. First derivative only: its backward is one fused
 * kernel whose outputs carry an op without a backward rule, so a second
 * derivative through batch norm fails loudly instead of returning zero. */
#include <math.h>

#include "core/graph.h"

static const lg_op_def OP_BN_BACKWARD = {"batchnorm_backward", NULL};

/* Hands out a backward's three gradients, recorded under an op without a
 * backward rule (no second derivative). */
static lg_status bn_grads_out(lg_ctx *ctx, lg_tensor *g, lg_tensor *x, lg_tensor *gamma,
                              lg_tensor *dx, lg_tensor *dgamma, lg_tensor *dbeta, lg_tensor **gin) {
    lg_tensor *src[3] = {g, x, gamma};
    lg_graph_record(ctx, &OP_BN_BACKWARD, dx, 3, src);
    lg_graph_record(ctx, &OP_BN_BACKWARD, dgamma, 3, src);
    lg_graph_record(ctx, &OP_BN_BACKWARD, dbeta, 3, src);
    gin[0] = dx;
    gin[1] = dgamma;
    gin[2] = dbeta;
    return LG_OK;
}

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
    return bn_grads_out(ctx, g, x, gamma, dx, dgamma, dbeta, gin);
}
static const lg_op_def OP_BN = {"batchnorm", bw_bn};

/* Records a training-mode forward y = op(x, gamma, beta), keeping the
 * statistics its backward reads; returns y. */
static lg_tensor *bn_record(lg_ctx *ctx, const lg_op_def *op, lg_tensor *y, lg_tensor *x,
                            lg_tensor *gamma, lg_tensor *beta, lg_tensor *mean, lg_tensor *rstd) {
    lg_tensor *src[3] = {x, gamma, beta};
    lg_node *nd = lg_graph_record(ctx, op, y, 3, src);
    if (nd) {
        nd->aux[0] = mean;
        nd->aux[1] = rstd;
    }
    return y;
}

/* ---- synchronized batch norm (lg_ctx_set_bn_sync) ----
 * Each process reduces its own slice on the backend, the per-channel
 * values go round through the gatherer, and every process combines all of
 * them in rank order in double: the same bits everywhere, whatever the
 * order in which the processes arrive. */

/* all (world, k) of every process's mine (k) = {count, a (c), b (c)} with
 * a and b downloaded from backend memory; *own = this process's row. NULL
 * (sticky error) on failure. */
static double *bn_gather(lg_ctx *ctx, const lg_bn_sync *s, const float *a, const float *b,
                         int64_t c, double count, const double **own) {
    const lg_backend *be = lg_ctx_backend(ctx);
    size_t k = 1 + 2 * (size_t)c;
    float *h = lg_ctx_host_alloc(ctx, sizeof(float) * 2 * (size_t)c);
    double *mine = lg_ctx_host_alloc(ctx, sizeof(double) * k);
    double *all = lg_ctx_host_alloc(ctx, sizeof(double) * k * (size_t)s->world);
    if (!h || !mine || !all) return NULL;
    be->download(h, a, (size_t)c);
    be->download(h + c, b, (size_t)c);
    mine[0] = count;
    for (size_t i = 0; i < 2 * (size_t)c; i++) mine[1 + i] = h[i];
    *own = mine;
    lg_status st = s->fn(mine, all, k, s->user);
    if (st != LG_OK) {
        lg_ctx_fail(ctx, st, "batchnorm: synchronizing statistics over %d processes failed: %s",
                    s->world, lg_error_msg());
        return NULL;
    }
    return all;
}

/* c floats of host values into a new backend tensor */
static lg_tensor *bn_upload(lg_ctx *ctx, const float *h, int64_t c) {
    lg_tensor *t = lg_new1(ctx, c);
    if (t) lg_ctx_backend(ctx)->upload(t->data, h, (size_t)c);
    return t;
}

static lg_status bw_bn_sync(lg_ctx *ctx, lg_node *n, lg_tensor *g, lg_tensor **gin, const int *need) {
    (void)need;
    const lg_backend *be = lg_ctx_backend(ctx);
    const lg_bn_sync *s = lg_ctx_bn_sync(ctx);
    lg_tensor *x = n->src[0], *gamma = n->src[1];
    lg_tensor *mean = n->aux[0], *rstd = n->aux[1];
    int64_t nb = x->shape[0], c = x->shape[1], hw = x->numel / (nb * c);
    if (!s)
        return lg_error_set(LG_ERR_INVALID_ARG, "batchnorm: the backward of a synchronized batch "
                                                "norm needs the context's gatherer (it was unset)");
    lg_tensor *loc = lg_new1(ctx, 2 * c); /* this process's sums of dy and dy*(x-mean) */
    lg_tensor *dx = lg_new(ctx, x->ndim, x->shape);
    float *h = lg_ctx_host_alloc(ctx, sizeof(float) * 5 * (size_t)c);
    if (!loc || !dx || !h) return lg_ctx_status(ctx);
    be->bn_bwd_sums(loc->data, loc->data + c, g->data, x->data, mean->data, nb, c, hw);
    const double *mine;
    const double *all = bn_gather(ctx, s, loc->data, loc->data + c, c, (double)(nb * hw), &mine);
    if (!all) return lg_ctx_status(ctx);
    /* h: whole-batch sdy (c), sdyx (c), this process's dgamma (c), dbeta (c), rstd (c) */
    be->download(h + 4 * c, rstd->data, (size_t)c);
    size_t k = 1 + 2 * (size_t)c;
    double cnt = 0;
    for (int r = 0; r < s->world; r++) cnt += all[r * k];
    for (int64_t i = 0; i < c; i++) {
        double sdy = 0, sdyx = 0;
        for (int r = 0; r < s->world; r++) {
            sdy += all[r * k + 1 + i];
            sdyx += all[r * k + 1 + c + i];
        }
        h[i] = (float)sdy;
        h[c + i] = (float)sdyx;
        /* the parameters' gradients stay this process's own: the trainer
         * averages gradients over the processes as for any parameter */
        h[2 * c + i] = (float)(mine[1 + c + i] * h[4 * c + i]);
        h[3 * c + i] = (float)mine[1 + i];
    }
    lg_tensor *gsum = bn_upload(ctx, h, 2 * c);
    lg_tensor *dgamma = lg_new(ctx, gamma->ndim, gamma->shape);
    lg_tensor *dbeta = lg_new(ctx, gamma->ndim, gamma->shape);
    if (!gsum || !dgamma || !dbeta) return lg_ctx_status(ctx);
    be->upload(dgamma->data, h + 2 * c, (size_t)c);
    be->upload(dbeta->data, h + 3 * c, (size_t)c);
    be->bn_bwd_apply(dx->data, g->data, x->data, mean->data, rstd->data, gamma->data, gsum->data,
                     gsum->data + c, cnt, nb, c, hw);
    return bn_grads_out(ctx, g, x, gamma, dx, dgamma, dbeta, gin);
}
static const lg_op_def OP_BN_SYNC = {"batchnorm_sync", bw_bn_sync};

/* Training-mode forward with the whole batch's statistics: each process's
 * (count, mean, m2) per channel, combined in rank order by Chan et al.'s
 * pairwise update (no cancellation, unlike sums of squares). */
static lg_tensor *bn_train_sync(lg_ctx *ctx, const lg_bn_sync *s, lg_tensor *x, lg_tensor *gamma,
                                lg_tensor *beta, lg_bn_state *st) {
    const lg_backend *be = lg_ctx_backend(ctx);
    int64_t nb = x->shape[0], c = x->shape[1], hw = x->numel / (nb * c);
    if (!be->bn_stats || !be->bn_bwd_sums || !be->bn_bwd_apply)
        return lg_ctx_fail(ctx, LG_ERR_UNSUPPORTED,
                           "batchnorm: the %s backend does not offer synchronized batch norm; "
                           "run on the cpu backend or turn the synchronization off",
                           be->name);
    lg_tensor *y = lg_new(ctx, x->ndim, x->shape);
    lg_tensor *loc = lg_new1(ctx, 2 * c); /* this process's mean (c), m2 (c) */
    float *h = lg_ctx_host_alloc(ctx, sizeof(float) * 5 * (size_t)c);
    if (!y || !loc || !h) return NULL;
    be->bn_stats(loc->data, loc->data + c, x->data, nb, c, hw);
    const double *mine;
    const double *all = bn_gather(ctx, s, loc->data, loc->data + c, c, (double)(nb * hw), &mine);
    if (!all) return NULL;
    /* h: mean (c), biased variance (c), rstd (c), running mean (c), running var (c) */
    int run = st->run_mean && st->run_var; /* running statistics kept */
    if (run) {
        be->download(h + 3 * c, st->run_mean, (size_t)c);
        be->download(h + 4 * c, st->run_var, (size_t)c);
    }
    size_t k = 1 + 2 * (size_t)c;
    double total = 0; /* the same on every process, so all fail together */
    for (int r = 0; r < s->world; r++) total += all[(size_t)r * k] > 0 ? all[(size_t)r * k] : 0;
    if (total < 2)
        return lg_ctx_fail(ctx, LG_ERR_SHAPE,
                           "batchnorm: training needs more than one value per channel (the whole batch "
                           "of every process holds %.0f)", total);
    for (int64_t i = 0; i < c; i++) {
        double cnt = 0, mu = 0, m2 = 0;
        for (int r = 0; r < s->world; r++) {
            const double *row = all + (size_t)r * k;
            double nr = row[0];
            if (nr <= 0) continue;
            double tot = cnt + nr, d = row[1 + i] - mu;
            mu += d * nr / tot;
            m2 += row[1 + c + i] + d * d * cnt * nr / tot;
            cnt = tot;
        }
        double var = m2 / cnt, unb = cnt > 1 ? m2 / (cnt - 1) : var;
        double m = st->momentum;
        h[i] = (float)mu;
        h[c + i] = (float)var;
        h[2 * c + i] = (float)(1.0 / sqrt(var + (double)st->eps));
        h[3 * c + i] = (float)((1.0 - m) * h[3 * c + i] + m * mu); /* PyTorch's running update */
        h[4 * c + i] = (float)((1.0 - m) * h[4 * c + i] + m * unb);
    }
    lg_tensor *mean = bn_upload(ctx, h, c), *var = bn_upload(ctx, h + c, c);
    lg_tensor *rstd = bn_upload(ctx, h + 2 * c, c);
    if (!mean || !var || !rstd) return NULL;
    if (run) {
        be->upload(st->run_mean, h + 3 * c, (size_t)c);
        be->upload(st->run_var, h + 4 * c, (size_t)c);
    }
    /* normalizing by given statistics is what the eval kernel does */
    be->bn_eval(y->data, x->data, gamma->data, beta->data, mean->data, var->data, nb, c, hw,
                st->eps);
    return bn_record(ctx, &OP_BN_SYNC, y, x, gamma, beta, mean, rstd);
}

lg_tensor *lg_batchnorm(lg_ctx *ctx, lg_tensor *x, lg_tensor *gamma, lg_tensor *beta, lg_bn_state *st,
                        int train) {
    LG_CHECK_IN(ctx, x);
    LG_CHECK_IN(ctx, gamma);
    LG_CHECK_IN(ctx, beta);
    char s[64];
    if ((x->ndim != 2 && x->ndim != 4) || gamma->numel != x->shape[1] || beta->numel != x->shape[1])
        return lg_ctx_fail(ctx, LG_ERR_SHAPE, "batchnorm: input %s needs (N,C[,H,W]) with C-sized gamma/beta",
                           lg_shape_str(x, s, sizeof s));
    /* synchronized: what counts is the whole batch's count (bn_train_sync),
     * so a process may hold a single value */
    const lg_bn_sync *sync = train ? lg_ctx_bn_sync(ctx) : NULL;
    if (train && !sync && x->shape[0] * (x->numel / (x->shape[0] * x->shape[1])) < 2)
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
    if (sync) return bn_train_sync(ctx, sync, x, gamma, beta, st);
    lg_tensor *y = lg_new(ctx, x->ndim, x->shape);
    if (!y) return NULL;
    lg_tensor *mean = lg_new1(ctx, c), *rstd = lg_new1(ctx, c);
    if (!mean || !rstd) return NULL;
    be->bn_train(y->data, mean->data, rstd->data, x->data, gamma->data, beta->data, st->run_mean,
                 st->run_var, n, c, hw, st->eps, st->momentum);
    return bn_record(ctx, &OP_BN, y, x, gamma, beta, mean, rstd);
}
