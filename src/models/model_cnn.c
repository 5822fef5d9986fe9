/* The "standard CNN" of Miyato et al. 2018 (table 3, DCGAN-style), with
 * base width ch (64 in the paper) and b = size/8:
 *  D  c0_0 conv3x3 s1 ch, c0_1 conv4x4 s2 ch, c1_0 conv3x3 2ch,
 *     c1_1 conv4x4 s2 2ch, c2_0 conv3x3 4ch, c2_1 conv4x4 s2 4ch,
 *     c3_0 conv3x3 8ch, each followed by LeakyReLU(lrelu = 0.1);
 *     l4 linear(b*b*8ch -> 1), with a bias (as chainer-gan-lib's
 *     SNDCGANDiscriminator l4; only the ResNet D's l5 has none).
 *     With batchnorm (off by default; the WGAN paper's critic, which is
 *     DCGAN's discriminator, martinarjovsky/WassersteinGAN models/dcgan.py
 *     DCGAN_D): batch norm bn0_1 .. bn3_0 between every conv but the first
 *     and its LeakyReLU, none on l4 (DCGAN_D: BN after every conv except
 *     the first conv and the final 1-output conv, the counterpart of l4,
 *     its last pyramid conv included, which is c3_0 here). Those six convs
 *     then have no bias (DCGAN_D's convs are bias=False; a bias before BN
 *     is cancelled by the batch mean and gets a zero gradient).
 *  G  l0 linear(z -> b*b*8ch), reshape, bn0, relu; dc1..dc3 convT4x4 s2 p1
 *     to 4ch, 2ch, ch, each bn + relu; c4 conv3x3 (ch -> c), tanh.
 * Init: PyTorch's defaults (U(+-1/sqrt(fan_in)) for weights and biases). */
#include "models/model_internal.h"

lg_status lg__build_cnn(lg_model *m) {
    const lg_model_spec *s = &m->spec;
    const int ch = s->ch, c = s->img_c, S = s->img_size, b = m->bottom;
    const int bn = s->batchnorm;
    if (s->role == LG_NET_D) {
        static const int mult[7] = {1, 1, 2, 2, 4, 4, 8}, k[7] = {3, 4, 3, 4, 3, 4, 3};
        static const char *const names[7] = {"c0_0", "c0_1", "c1_0", "c1_1", "c2_0", "c2_1", "c3_0"};
        int cin = c, h = S;
        for (int i = 0; i < 7; i++) {
            int st = k[i] == 4 ? 2 : 1, co = mult[i] * ch;
            if (bn && i > 0) {
                lg__add_conv_nobias(m, names[i], cin, co, k[i], st, 1, h, h, LG_INIT_TORCH, 1.0f);
                char n[16];
                snprintf(n, sizeof n, "bn%s", names[i] + 1); /* c0_1 -> bn0_1 */
                lg__add_bn(m, n, co);
            } else {
                lg__add_conv(m, names[i], cin, co, k[i], st, 1, h, h, LG_INIT_TORCH, 1.0f);
            }
            cin = co;
            h = lg_conv_out_size(h, k[i], st, 1);
        }
        lg__add_linear(m, "l4", b * b * 8 * ch, 1, LG_BIAS, LG_INIT_TORCH, 1.0f);
        return LG_OK;
    }
    lg__add_linear(m, "l0", s->z_dim, b * b * 8 * ch, LG_BIAS, LG_INIT_TORCH, 1.0f);
    if (bn) lg__add_bn(m, "bn0", 8 * ch);
    int cin = 8 * ch, h = b;
    for (int i = 1; i <= 3; i++, h *= 2) {
        char n[16];
        snprintf(n, sizeof n, "dc%d", i);
        lg__add_convt(m, n, cin, cin / 2, 4, 2, 1, h, h, LG_INIT_TORCH, 1.0f);
        cin /= 2;
        if (bn) {
            snprintf(n, sizeof n, "bn%d", i);
            lg__add_bn(m, n, cin);
        }
    }
    lg__add_conv(m, "c4", ch, c, 3, 1, 1, S, S, LG_INIT_TORCH, 1.0f);
    return LG_OK;
}

lg_tensor *lg__forward_cnn(lg_ctx *ctx, lg_model *m, lg_tensor *x, int train) {
    const lg_model_spec *s = &m->spec;
    const int bn = s->batchnorm;
    int L = 0, B = 0;
    if (s->role == LG_NET_D) {
        lg_tensor *h = x;
        for (int i = 0; i < 7; i++) {
            h = lg__wl(ctx, m, L++, h, train);
            if (bn && i > 0) h = lg__bn(ctx, m, B++, h, train);
            h = lg_leaky_relu(ctx, h, s->lrelu);
        }
        return lg__wl(ctx, m, L++, lg_flatten(ctx, h), train);
    }
    /* without BN, each layer's bias add is fused with its ReLU */
    lg_tensor *h = bn ? lg__wl(ctx, m, L++, x, train) : lg__wl_relu(ctx, m, L++, x, train);
    if (!h) return NULL;
    int64_t sh[4] = {h->shape[0], 8 * s->ch, m->bottom, m->bottom};
    h = lg_reshape(ctx, h, 4, sh);
    if (bn) h = lg__bn_relu(ctx, m, B++, h, train);
    for (int i = 0; i < 3; i++)
        h = bn ? lg__bn_relu(ctx, m, B++, lg__wl(ctx, m, L++, h, train), train)
               : lg__wl_relu(ctx, m, L++, h, train);
    return lg_tanh(ctx, lg__wl(ctx, m, L++, h, train));
}
