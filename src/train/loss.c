/* GAN losses built from differentiable ops (see lipgan/loss.h). */
#include <string.h>

#include "lipgan/loss.h"
#include "lipgan/ops.h"

static const char *const k_names[LG_LOSS_COUNT] = {"minimax", "nonsat", "hinge", "wasserstein"};

const char *lg_loss_name(lg_loss_kind k) {
    return (k >= 0 && k < LG_LOSS_COUNT) ? k_names[k] : "?";
}

lg_status lg_loss_parse(const char *name, lg_loss_kind *out) {
    static const struct { const char *name; lg_loss_kind k; } aliases[] = {
        {"minimax", LG_LOSS_MINIMAX},   {"standard", LG_LOSS_MINIMAX},
        {"nonsat", LG_LOSS_NONSAT},     {"non-saturating", LG_LOSS_NONSAT},
        {"hinge", LG_LOSS_HINGE},       {"wasserstein", LG_LOSS_WASSERSTEIN},
        {"wgan", LG_LOSS_WASSERSTEIN},
    };
    for (size_t i = 0; name && i < sizeof aliases / sizeof aliases[0]; i++)
        if (strcmp(name, aliases[i].name) == 0) {
            *out = aliases[i].k;
            return LG_OK;
        }
    return lg_error_set(LG_ERR_INVALID_ARG,
                        "unknown loss '%s'; use minimax, nonsat, hinge or wasserstein",
                        name ? name : "(null)");
}

/* E softplus(s * x) */
static lg_tensor *mean_softplus(lg_ctx *ctx, lg_tensor *x, float s) {
    return lg_mean(ctx, lg_softplus(ctx, s < 0 ? lg_neg(ctx, x) : x));
}

/* E relu(1 + s * x) */
static lg_tensor *mean_hinge(lg_ctx *ctx, lg_tensor *x, float s) {
    return lg_mean(ctx, lg_relu(ctx, lg_add_scalar(ctx, s < 0 ? lg_neg(ctx, x) : x, 1.0f)));
}

lg_tensor *lg_loss_d(lg_ctx *ctx, lg_loss_kind k, lg_tensor *d_real, lg_tensor *d_fake) {
    if (!d_real || !d_fake) return NULL;
    switch (k) {
    case LG_LOSS_MINIMAX:
    case LG_LOSS_NONSAT:
        return lg_add(ctx, mean_softplus(ctx, d_real, -1.0f), mean_softplus(ctx, d_fake, 1.0f));
    case LG_LOSS_HINGE:
        return lg_add(ctx, mean_hinge(ctx, d_real, -1.0f), mean_hinge(ctx, d_fake, 1.0f));
    case LG_LOSS_WASSERSTEIN:
        return lg_sub(ctx, lg_mean(ctx, d_fake), lg_mean(ctx, d_real));
    default:
        return lg_ctx_fail(ctx, LG_ERR_INVALID_ARG, "lg_loss_d: unknown loss kind %d", (int)k);
    }
}

lg_tensor *lg_loss_g(lg_ctx *ctx, lg_loss_kind k, lg_tensor *d_fake) {
    if (!d_fake) return NULL;
    switch (k) {
    case LG_LOSS_MINIMAX:
        return lg_neg(ctx, mean_softplus(ctx, d_fake, 1.0f));
    case LG_LOSS_NONSAT:
        return mean_softplus(ctx, d_fake, -1.0f);
    case LG_LOSS_HINGE:
    case LG_LOSS_WASSERSTEIN:
        return lg_neg(ctx, lg_mean(ctx, d_fake));
    default:
        return lg_ctx_fail(ctx, LG_ERR_INVALID_ARG, "lg_loss_g: unknown loss kind %d", (int)k);
    }
}
