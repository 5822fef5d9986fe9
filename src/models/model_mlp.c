/* Fully connected G and D: depth hidden layers of width ch with ReLU (the
 * WGAN paper's MLP is depth 4, width 512; 2-D toys use e.g. 3 x 128),
 * optional batch norm after each hidden linear. G maps z to the flat
 * sample and ends with tanh for images (data in [-1, 1]) and with no
 * activation for flat data (data_dim > 0); D ends with fc<depth> -> 1.
 * Init: PyTorch's defaults. Names fc0..fc<depth>, bn0..bn<depth-1>. */
#include "models/model_internal.h"

static int64_t sample_dim(const lg_model_spec *s) {
    return s->data_dim > 0 ? s->data_dim : (int64_t)s->img_c * s->img_size * s->img_size;
}

lg_status lg__build_mlp(lg_model *m) {
    const lg_model_spec *s = &m->spec;
    int64_t out = sample_dim(s);
    if (out > (1 << 22)) return lg_error_set(LG_ERR_INVALID_ARG, "model: mlp sample dim %lld too large", (long long)out);
    int in = s->role == LG_NET_G ? s->z_dim : (int)out;
    for (int i = 0; i < s->depth; i++) {
        char n[16];
        snprintf(n, sizeof n, "fc%d", i);
        lg__add_linear(m, n, i == 0 ? in : s->ch, s->ch, LG_BIAS, LG_INIT_TORCH, 1.0f);
        if (s->batchnorm) {
            snprintf(n, sizeof n, "bn%d", i);
            lg__add_bn(m, n, s->ch);
        }
    }
    char n[16];
    snprintf(n, sizeof n, "fc%d", s->depth);
    lg__add_linear(m, n, s->ch, s->role == LG_NET_G ? (int)out : 1, LG_BIAS, LG_INIT_TORCH, 1.0f);
    return LG_OK;
}

lg_tensor *lg__forward_mlp(lg_ctx *ctx, lg_model *m, lg_tensor *x, int train) {
    const lg_model_spec *s = &m->spec;
    int L = 0, B = 0;
    lg_tensor *h = x->ndim == 2 ? x : lg_flatten(ctx, x);
    for (int i = 0; i < s->depth; i++) /* without BN the bias add is fused with the ReLU */
        h = s->batchnorm ? lg__bn_relu(ctx, m, B++, lg__wl(ctx, m, L++, h, train), train)
                         : lg__wl_relu(ctx, m, L++, h, train);
    h = lg__wl(ctx, m, L++, h, train);
    if (s->role == LG_NET_D || s->data_dim > 0) return h;
    if (!h) return NULL;
    int64_t sh[4] = {h->shape[0], s->img_c, s->img_size, s->img_size};
    return lg_tanh(ctx, lg_reshape(ctx, h, 4, sh));
}
