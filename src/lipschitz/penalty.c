/* Gradient penalties (WGAN-GP, one-sided, R1) built as differentiable
 * graphs, so their parameter gradient is the required second derivative. */
#include "lipgan/autograd.h"
#include "lipgan/ops.h"
#include "lipschitz/lip_internal.h"

lg_tensor *lg_gradient_penalty(lg_ctx *ctx, lg_critic_fn critic, void *critic_user,
                               lg_tensor *real, lg_tensor *fake, lg_tensor *eps,
                               float lambda, lg_gp_kind kind) {
    if (!real) return NULL;
    char sr[64], sf[64];
    if (!critic || kind < 0 || kind >= LG_GP_COUNT)
        return lg_ctx_fail(ctx, LG_ERR_INVALID_ARG, "gradient penalty: no critic or unknown kind %d",
                           (int)kind);
    const int64_t n = real->shape[0];
    if (kind != LG_GP_R1) {
        if (!fake || !eps) return NULL;
        if (!lg_same_shape(real, fake) || eps->numel != n)
            return lg_ctx_fail(ctx, LG_ERR_SHAPE,
                               "gradient penalty: real %s, fake %s and %lld epsilons do not fit "
                               "(need equal shapes and one epsilon per sample)",
                               lg_shape_str(real, sr, sizeof sr), lg_shape_str(fake, sf, sizeof sf),
                               (long long)eps->numel);
    }
    /* x_hat without history: the penalty differentiates D only */
    int old = lg_ctx_set_grad_enabled(ctx, 0);
    lg_tensor *xh;
    if (kind == LG_GP_R1) {
        xh = lg_detach(ctx, real, 0);
    } else {
        int64_t es[LG_MAX_DIMS] = {n, 1, 1, 1};
        lg_tensor *e = lg_alias(ctx, eps, real->ndim, es);
        xh = lg_add(ctx, fake, lg_mul(ctx, e, lg_sub(ctx, real, fake)));
    }
    lg_ctx_set_grad_enabled(ctx, 1);
    lg_tensor *pen = NULL;
    if (!xh) goto out;
    xh->requires_grad = 1; /* a fresh leaf: no node was recorded */
    lg_tensor *d = critic(ctx, xh, critic_user);
    if (!d) goto out;
    lg_tensor *g = NULL;
    lg_status st = lg_grad(ctx, lg_sum(ctx, d), NULL, 1, &xh, &g, 1);
    if (st != LG_OK) {
        lg_ctx_fail(ctx, st, "%s", lg_error_msg());
        goto out;
    }
    lg_tensor *sq = lg_square(ctx, g);
    unsigned mask = ((1u << real->ndim) - 1u) & ~1u; /* every dim but the batch */
    lg_tensor *s = mask ? lg_sum_axes(ctx, sq, mask) : sq;  /* (N,1,..) ||g||^2 */
    lg_tensor *per;
    if (kind == LG_GP_R1) {
        per = s;
    } else {
        lg_tensor *dev = lg_add_scalar(ctx, lg_sqrt(ctx, lg_add_scalar(ctx, s, 1e-12f)), -1.0f);
        if (kind == LG_GP_ONE_SIDED) dev = lg_relu(ctx, dev);
        per = lg_square(ctx, dev);
    }
    pen = lg_scale(ctx, lg_mean(ctx, per), lambda);
out:
    lg_ctx_set_grad_enabled(ctx, old);
    return pen;
}
