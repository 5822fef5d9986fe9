/* The SN-GAN ResNet (Miyato et al. 2018, after Gulrajani et al. 2017; thesis
 * figs. 5.2-5.4), following the block structure of the authors' Chainer
 * code (sngan_projection, {dis,gen}_resnet for 32x32):
 *
 *  D  block1 OptimizedBlock(c -> ch):  res = pool(c2(relu(c1(x))))
 *                                      sc  = c_sc(pool(x))
 *     block2 Block(ch -> ch, down):     res = pool(c2(relu(c1(relu(h)))))
 *                                      sc  = pool(c_sc(h))
 *     block3, block4 Block(ch -> ch):   res = c2(relu(c1(relu(h)))), sc = h
 *     relu, sum over H and W, l5 linear(ch -> 1) WITHOUT bias (as both
 *     references: snresnet_32.py SNLinear(ch, 1, nobias=True), the thesis
 *     code SNLinear(channels, 1, bias=False); under the hinge loss a bias
 *     shifts D(x) against the margins, so it is not a no-op)
 *  G  l1 linear(z -> b*b*ch), reshape (N, ch, b, b), b = size/8
 *     block2..4 Block(ch -> ch, up):   res = c2(relu(b2(c1(up(relu(b1(h)))))))
 *                                      sc  = c_sc(up(h))
 *     b5 BN, relu, c5 conv3x3(ch -> c), tanh
 * (1x1 conv and 2x2 average pooling commute, so the two shortcut orders
 * differ only in rounding; we keep the reference's.)
 * Init: Xavier-uniform, gain sqrt(2) for the 3x3 convs inside blocks, 1
 * for shortcuts, l1, c5 and l5; zero biases (every layer but l5 has one). */
#include <math.h>

#include "models/model_internal.h"

lg_status lg__build_resnet(lg_model *m) {
    const lg_model_spec *s = &m->spec;
    const int ch = s->ch, c = s->img_c, S = s->img_size, b = m->bottom;
    const float g2 = (float)sqrt(2.0);
    if (s->role == LG_NET_D) {
        lg__add_conv(m, "block1.c1", c, ch, 3, 1, 1, S, S, LG_INIT_XAVIER, g2);
        lg__add_conv(m, "block1.c2", ch, ch, 3, 1, 1, S, S, LG_INIT_XAVIER, g2);
        lg__add_conv(m, "block1.c_sc", c, ch, 1, 1, 0, S / 2, S / 2, LG_INIT_XAVIER, 1.0f);
        lg__add_conv(m, "block2.c1", ch, ch, 3, 1, 1, S / 2, S / 2, LG_INIT_XAVIER, g2);
        lg__add_conv(m, "block2.c2", ch, ch, 3, 1, 1, S / 2, S / 2, LG_INIT_XAVIER, g2);
        lg__add_conv(m, "block2.c_sc", ch, ch, 1, 1, 0, S / 2, S / 2, LG_INIT_XAVIER, 1.0f);
        lg__add_conv(m, "block3.c1", ch, ch, 3, 1, 1, S / 4, S / 4, LG_INIT_XAVIER, g2);
        lg__add_conv(m, "block3.c2", ch, ch, 3, 1, 1, S / 4, S / 4, LG_INIT_XAVIER, g2);
        lg__add_conv(m, "block4.c1", ch, ch, 3, 1, 1, S / 4, S / 4, LG_INIT_XAVIER, g2);
        lg__add_conv(m, "block4.c2", ch, ch, 3, 1, 1, S / 4, S / 4, LG_INIT_XAVIER, g2);
        lg__add_linear(m, "l5", ch, 1, LG_NOBIAS, LG_INIT_XAVIER, 1.0f);
        return LG_OK;
    }
    const int bn = s->batchnorm;
    lg__add_linear(m, "l1", s->z_dim, b * b * ch, LG_BIAS, LG_INIT_XAVIER, 1.0f);
    int h = b;
    for (int i = 2; i <= 4; i++, h *= 2) {
        char n[32];
        if (bn) {
            snprintf(n, sizeof n, "block%d.b1", i);
            lg__add_bn(m, n, ch);
        }
        snprintf(n, sizeof n, "block%d.c1", i);
        lg__add_conv(m, n, ch, ch, 3, 1, 1, 2 * h, 2 * h, LG_INIT_XAVIER, g2);
        if (bn) {
            snprintf(n, sizeof n, "block%d.b2", i);
            lg__add_bn(m, n, ch);
        }
        snprintf(n, sizeof n, "block%d.c2", i);
        lg__add_conv(m, n, ch, ch, 3, 1, 1, 2 * h, 2 * h, LG_INIT_XAVIER, g2);
        snprintf(n, sizeof n, "block%d.c_sc", i);
        lg__add_conv(m, n, ch, ch, 1, 1, 0, 2 * h, 2 * h, LG_INIT_XAVIER, 1.0f);
    }
    if (bn) lg__add_bn(m, "b5", ch);
    lg__add_conv(m, "c5", ch, c, 3, 1, 1, S, S, LG_INIT_XAVIER, 1.0f);
    return LG_OK;
}

/* Layer and BN indices follow the registration order above. */
lg_tensor *lg__forward_resnet(lg_ctx *ctx, lg_model *m, lg_tensor *x, int train) {
    const lg_model_spec *s = &m->spec;
    int L = 0, B = 0;
    if (s->role == LG_NET_D) {
        /* block1 (optimized) */
        lg_tensor *r = lg__wl_relu(ctx, m, L++, x, train);
        r = lg_avgpool2x2(ctx, lg__wl(ctx, m, L++, r, train));
        lg_tensor *sc = lg__wl(ctx, m, L++, lg_avgpool2x2(ctx, x), train);
        lg_tensor *h = lg_add(ctx, r, sc);
        /* block2 (down, learnable shortcut) */
        r = lg__wl_relu(ctx, m, L++, lg_relu(ctx, h), train);
        r = lg_avgpool2x2(ctx, lg__wl(ctx, m, L++, r, train));
        sc = lg_avgpool2x2(ctx, lg__wl(ctx, m, L++, h, train));
        h = lg_add(ctx, r, sc);
        /* block3, block4 (identity shortcut) */
        for (int i = 0; i < 2; i++) {
            r = lg__wl_relu(ctx, m, L++, lg_relu(ctx, h), train);
            r = lg__wl(ctx, m, L++, r, train);
            h = lg_add(ctx, h, r);
        }
        h = lg_global_sum_pool(ctx, lg_relu(ctx, h)); /* (N, ch) */
        return lg__wl(ctx, m, L++, h, train);           /* (N, 1) */
    }
    const int bn = s->batchnorm;
    lg_tensor *h = lg__wl(ctx, m, L++, x, train);
    if (!h) return NULL;
    int64_t sh[4] = {h->shape[0], s->ch, m->bottom, m->bottom};
    h = lg_reshape(ctx, h, 4, sh);
    for (int i = 0; i < 3; i++) {
        lg_tensor *r = h;
        /* without BN the ReLU reads h, which the shortcut reads too */
        r = lg_upsample2x(ctx, bn ? lg__bn_relu(ctx, m, B++, r, train) : lg_relu(ctx, r));
        if (bn) r = lg__bn_relu(ctx, m, B++, lg__wl(ctx, m, L++, r, train), train);
        else r = lg__wl_relu(ctx, m, L++, r, train);
        r = lg__wl(ctx, m, L++, r, train);
        lg_tensor *sc = lg__wl(ctx, m, L++, lg_upsample2x(ctx, h), train);
        h = lg_add(ctx, r, sc);
    }
    h = lg__wl(ctx, m, L++, bn ? lg__bn_relu(ctx, m, B++, h, train) : lg_relu(ctx, h), train);
    return lg_tanh(ctx, h);
}
