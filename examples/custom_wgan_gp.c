/* A training loop of one's own on lipgan's ops, models and autograd:
 * WGAN-GP (Gulrajani et al.: the critic loss D(fake) - D(real) plus
 * lambda * E[(||grad D(x_hat)|| - 1)^2], 5 critic steps per generator step,
 * Adam 1e-4, betas 0.5/0.9) on the 8-Gaussian ring, with MLPs.
 *
 * Shows what the trainer does underneath: a context whose arena is reused
 * every step (no allocation in the steady state), models whose parameters
 * and gradients are one contiguous buffer each, a gradient penalty that
 * differentiates through a gradient (create_graph), and an optimizer step
 * over the whole buffer. Build against an installed lipgan:
 *   cc custom_wgan_gp.c $(pkg-config --cflags --libs lipgan) -o custom_wgan_gp
 *   ./custom_wgan_gp [generator steps]   (default 1000)
 * Prints the critic's Wasserstein estimate E[D(real)] - E[D(fake)] as it
 * goes and the mode metrics of 2500 samples at the end. */
#include <stdio.h>
#include <stdlib.h>

#include "lipgan/autograd.h"
#include "lipgan/backend.h"
#include "lipgan/data.h"
#include "lipgan/lipschitz.h"
#include "lipgan/metrics.h"
#include "lipgan/model.h"
#include "lipgan/ops.h"
#include "lipgan/optim.h"
#include "lipgan/rng.h"
#include "lipgan/train.h"

enum { BATCH = 256, ZDIM = 2, NDIS = 5 };

static lg_tensor *critic(lg_ctx *ctx, lg_tensor *x, void *d) {
    return lg_model_forward(ctx, d, x, 1);
}

/* The step's gradient of loss w.r.t. every parameter of m, into m's buffer. */
static lg_status backward_into(lg_ctx *ctx, lg_tensor *loss, lg_model *m) {
    lg_tensor *p[LG_MODEL_MAX_TENSORS], *g[LG_MODEL_MAX_TENSORS];
    int np = lg_model_param_tensors(m, p);
    LG_TRY(lg_grad(ctx, loss, NULL, np, p, g, 0));
    return lg_model_store_grads(ctx, m, g, 0);
}

static lg_status run(long steps) {
    const lg_backend *be = lg_backend_cpu();
    lg_status s = LG_OK;
    lg_model *g = NULL, *d = NULL;
    lg_ctx *ctx = NULL;
    lg_adam og = {0}, od = {0};
    lg_dataset data = {0};
    lg_data_sampler sampler = {0};
    float *real = malloc(sizeof(float) * BATCH * 2), *z = malloc(sizeof(float) * BATCH * ZDIM);
    float *eps = malloc(sizeof(float) * BATCH), *pts = malloc(sizeof(float) * 2500 * 2);
    if (!real || !z || !eps || !pts) {
        s = lg_error_set(LG_ERR_NOMEM, "out of memory");
        goto out;
    }

    lg_model_spec sg, sd;
    lg_model_spec_default(&sg, LG_ARCH_MLP, LG_NET_G);
    lg_model_spec_default(&sd, LG_ARCH_MLP, LG_NET_D);
    sg.data_dim = sd.data_dim = 2;
    sg.z_dim = ZDIM;
    sg.ch = sd.ch = 128;
    sg.depth = sd.depth = 3;
    sg.batchnorm = sd.batchnorm = 0; /* a penalty needs second derivatives: no BN */
    if ((s = lg_model_create(&g, &sg, be, 1)) || (s = lg_model_create(&d, &sd, be, 1)) ||
        (s = lg_ctx_create(&ctx, be)) ||
        (s = lg_adam_init(&og, be, lg_model_num_params(g), 0.5f, 0.9f, 1e-8f)) ||
        (s = lg_adam_init(&od, be, lg_model_num_params(d), 0.5f, 0.9f, 1e-8f)) ||
        (s = lg_data_make_toy(&data, LG_TOY_RING8, 100000, 2)) ||
        (s = lg_data_sampler_init(&sampler, &data, 3)))
        goto out;
    lg_rng noise, gp_rng;
    lg_rng_init(&noise, 4, LG_RNG_STREAM_NOISE);
    lg_rng_init(&gp_rng, 4, LG_RNG_STREAM_GP);
    const int64_t xs[2] = {BATCH, 2}, zs[2] = {BATCH, ZDIM}, es[2] = {BATCH, 1};

    for (long step = 1; step <= steps; step++) {
        float w_est = 0;
        for (int k = 0; k < NDIS; k++) { /* critic updates */
            if ((s = lg_data_next_batch(&sampler, BATCH, real, NULL))) goto out;
            lg_rng_fill_normal(&noise, z, BATCH * ZDIM, 0.0f, 1.0f);
            lg_rng_fill_uniform(&gp_rng, eps, BATCH, 0.0f, 1.0f);
            lg_tensor *x = lg_from_host(ctx, real, 2, xs);
            int old = lg_ctx_set_grad_enabled(ctx, 0); /* no graph through G here */
            lg_tensor *fake = lg_model_forward(ctx, g, lg_from_host(ctx, z, 2, zs), 1);
            lg_ctx_set_grad_enabled(ctx, old);
            lg_tensor *dr = lg_mean(ctx, lg_model_forward(ctx, d, x, 1));
            lg_tensor *df = lg_mean(ctx, lg_model_forward(ctx, d, fake, 1));
            lg_tensor *gp = lg_gradient_penalty(ctx, critic, d, x, fake,
                                                lg_from_host(ctx, eps, 2, es), 10.0f,
                                                LG_GP_TWO_SIDED);
            lg_tensor *loss = lg_add(ctx, lg_sub(ctx, df, dr), gp);
            if ((s = lg_ctx_status(ctx)) || (s = backward_into(ctx, loss, d))) goto out;
            float hr, hf;
            be->download(&hr, dr->data, 1);
            be->download(&hf, df->data, 1);
            w_est = hr - hf;
            lg_adam_step(&od, lg_model_params(d), lg_model_grads(d), 1e-4f);
            lg_ctx_reset(ctx); /* the step's tensors go; the arena stays */
        }
        /* generator update: maximize E[D(G(z))] */
        lg_rng_fill_normal(&noise, z, BATCH * ZDIM, 0.0f, 1.0f);
        lg_tensor *fake = lg_model_forward(ctx, g, lg_from_host(ctx, z, 2, zs), 1);
        lg_tensor *loss = lg_neg(ctx, lg_mean(ctx, lg_model_forward(ctx, d, fake, 1)));
        if ((s = lg_ctx_status(ctx)) || (s = backward_into(ctx, loss, g))) goto out;
        lg_adam_step(&og, lg_model_params(g), lg_model_grads(g), 1e-4f);
        lg_ctx_reset(ctx);
        if (step % 100 == 0 || step == steps)
            printf("step %5ld  Wasserstein estimate %.4f\n", step, w_est);
    }

    const float *modes; /* (8, 2) */
    float std;
    int m = lg_data_toy_modes(LG_TOY_RING8, &modes, &std);
    lg_toy_result r;
    if ((s = lg_generate(g, be, 2500, 5, pts)) ||
        (s = lg_toy_metrics(pts, 2500, modes, m, std, NULL, &r)))
        goto out;
    printf("modes covered %d/%d, high-quality %.1f%%, reverse KL %.3f\n", r.modes_covered, m,
           100.0 * r.frac_high_quality, r.reverse_kl);
out:
    lg_data_sampler_free(&sampler);
    lg_data_free(&data);
    lg_adam_free(&og);
    lg_adam_free(&od);
    lg_ctx_free(ctx);
    lg_model_free(g);
    lg_model_free(d);
    free(real);
    free(z);
    free(eps);
    free(pts);
    return s;
}

int main(int argc, char **argv) {
    long steps = argc > 1 ? strtol(argv[1], NULL, 10) : 1000;
    if (steps < 1) {
        fprintf(stderr, "usage: %s [generator steps >= 1]\n", argv[0]);
        return 2;
    }
    if (run(steps) != LG_OK) {
        fprintf(stderr, "custom_wgan_gp: %s\n", lg_error_msg());
        return 1;
    }
    return 0;
}
