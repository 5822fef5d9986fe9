/* lipgan/loss.h - GAN objectives as differentiable graph ops.
 *
 * Every loss takes the discriminator's raw outputs (logits / critic values,
 * any shape, usually (N,1)) and returns a 1-element tensor to minimize.
 * With r = D(x) on real data and f = D(G(z)) on generated data:
 *
 *   kind          D loss                                  G loss
 *   minimax       E softplus(-r) + E softplus(f)          -E softplus(f)
 *   nonsat        E softplus(-r) + E softplus(f)          E softplus(-f)
 *   hinge         E relu(1 - r) + E relu(1 + f)           -E f
 *   wasserstein   E f - E r                               -E f
 *
 * softplus(-r) = -log sigmoid(r) and softplus(f) = -log(1 - sigmoid(f)), so
 * minimax/nonsat are the cross-entropy losses of Goodfellow et al. written
 * without ever forming sigmoid(x) (stable for |x| large). "minimax" is the
 * saturating generator loss E log(1 - sigmoid(f)); "nonsat" is the usual
 * -E log sigmoid(f). hinge is the SN-GAN / thesis (sec. 5.3) default.
 *
 * Usage:
 *   lg_tensor *ld = lg_loss_d(ctx, LG_LOSS_HINGE, d_real, d_fake);   // (1)
 *   lg_tensor *lg = lg_loss_g(ctx, LG_LOSS_HINGE, d_fake2);          // (1)
 * Both return NULL (with the context's sticky error) on a NULL input. */
#ifndef LIPGAN_LOSS_H
#define LIPGAN_LOSS_H

#include "lipgan/tensor.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef enum lg_loss_kind {
    LG_LOSS_MINIMAX = 0,   /* "minimax" (also "standard") */
    LG_LOSS_NONSAT,        /* "nonsat" (also "non-saturating") */
    LG_LOSS_HINGE,         /* "hinge" */
    LG_LOSS_WASSERSTEIN,   /* "wasserstein" (also "wgan") */
    LG_LOSS_COUNT
} lg_loss_kind;

/* Canonical name of a kind ("hinge", ...). */
const char *lg_loss_name(lg_loss_kind k);
/* Parses a name or alias; LG_ERR_INVALID_ARG naming the known ones. */
lg_status lg_loss_parse(const char *name, lg_loss_kind *out);

/* Discriminator loss from d_real (N,...) and d_fake (M,...): shape (1). */
lg_tensor *lg_loss_d(lg_ctx *ctx, lg_loss_kind k, lg_tensor *d_real, lg_tensor *d_fake);
/* Generator loss from d_fake = D(G(z)): shape (1). */
lg_tensor *lg_loss_g(lg_ctx *ctx, lg_loss_kind k, lg_tensor *d_fake);

#ifdef __cplusplus
}
#endif
#endif
