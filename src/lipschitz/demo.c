/* The two worked examples of seed 001 (Fleuret, "Wasserstein GAN" slides),
 * run through the library: examples/seed001_*.c print them, the tests check
 * their pass bars. */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "lipgan/autograd.h"
#include "lipgan/ops.h"
#include "lipgan/rng.h"
#include "lipschitz/lip_internal.h"

/* W = torch.randn(15, 15); u = torch.randn(15); 10 x (v = W^T u / ||.||,
 * u = W v / ||.||); print(u^T W v) vs W.svd().S.max(). */
lg_status lg_demo_power_iteration(uint64_t seed, int verbose, double *estimate, double *exact) {
    enum { N = 15 };
    float w[N * N]; /* (15, 15) */
    lg_rng r;
    lg_rng_init(&r, seed, LG_RNG_STREAM_INIT);
    lg_rng_fill_normal(&r, w, N * N, 0.0f, 1.0f);
    double s[N];
    LG_TRY(lg_svd_values(w, N, N, s));
    *exact = s[0];

    lg_ctx *ctx;
    LG_TRY(lg_ctx_create(&ctx, NULL));
    lg_sn_state sn;
    lg_status st = lg_sn_init(&sn, NULL, N, N, seed);
    if (st == LG_OK) {
        sn.n_iter = 10;
        lg_tensor *wt = lg_from_host(ctx, w, 2, (int64_t[]){N, N});
        lg_tensor *sigma = lg_sn_sigma_tensor(ctx, &sn, wt, 0, 1);
        st = sigma ? LG_OK : lg_ctx_status(ctx);
        if (st == LG_OK) *estimate = lg_item(ctx, sigma);
        lg_sn_free(&sn);
    }
    lg_ctx_free(ctx);
    if (st == LG_OK && verbose) {
        printf("largest singular value (SVD):             %.4f\n", *exact);
        printf("power iteration (10 iterations, u^T W v): %.4f\n", *estimate);
        printf("relative difference: %.2e\n", fabs(*estimate - *exact) / *exact);
    }
    return st;
}

/* m = nn.Linear(5, 5) [optionally spectral_norm(m)]; x = torch.rand(100, 5);
 * SGD(lr 0.1), 100 x (loss = -||m(x)||; backward; step). */
lg_status lg_demo_sn_linear(int use_sn, uint64_t seed, int verbose, double *sigma_start,
                            double *sigma_end) {
    enum { D = 5, N = 100, STEPS = 100 };
    const float lr = 0.1f;
    float w[D * D], b[D], x[N * D], wlast[D * D]; /* w (5,5), b (5), x (100,5) */
    lg_rng r;
    lg_rng_init(&r, seed, LG_RNG_STREAM_INIT);
    const float bound = 1.0f / sqrtf((float)D); /* PyTorch's Linear init */
    lg_rng_fill_uniform(&r, w, D * D, -bound, bound);
    lg_rng_fill_uniform(&r, b, D, -bound, bound);
    lg_rng_fill_uniform(&r, x, N * D, 0.0f, 1.0f);
    double s[D];
    LG_TRY(lg_svd_values(w, D, D, s));
    *sigma_start = s[0];

    lg_ctx *ctx;
    LG_TRY(lg_ctx_create(&ctx, NULL));
    lg_sn_state sn;
    memset(&sn, 0, sizeof sn);
    lg_status st = use_sn ? lg_sn_init(&sn, NULL, D, D, seed) : LG_OK;
    lg_tensor wp, bp; /* persistent parameter leaves over w, b (CPU memory is host) */
    lg_tensor_init(&wp, w, 2, (int64_t[]){D, D});
    lg_tensor_init(&bp, b, 1, (int64_t[]){D});
    wp.requires_grad = bp.requires_grad = 1;
    for (int step = 0; step < STEPS && st == LG_OK; step++) {
        lg_ctx_reset(ctx);
        lg_tensor *xt = lg_from_host(ctx, x, 2, (int64_t[]){N, D});
        lg_tensor *wn = use_sn ? lg_sn_weight(ctx, &sn, &wp, 0, 1) : &wp;
        lg_tensor *y = lg_linear(ctx, xt, wn, &bp);
        lg_tensor *loss = lg_neg(ctx, lg_sqrt(ctx, lg_sum(ctx, lg_square(ctx, y))));
        lg_tensor *wrt[2] = {&wp, &bp}, *g[2] = {NULL, NULL};
        st = loss ? lg_grad(ctx, loss, NULL, 2, wrt, g, 0) : lg_ctx_status(ctx);
        if (st != LG_OK) break;
        if (wn) lg_to_host(ctx, wn, wlast); /* PyTorch's m.weight after the loop */
        float gw[D * D], gb[D];
        lg_to_host(ctx, g[0], gw);
        lg_to_host(ctx, g[1], gb);
        for (int i = 0; i < D * D; i++) w[i] -= lr * gw[i];
        for (int i = 0; i < D; i++) b[i] -= lr * gb[i];
    }
    if (st == LG_OK) {
        st = lg_svd_values(use_sn ? wlast : w, D, D, s);
        *sigma_end = s[0];
    }
    if (use_sn) lg_sn_free(&sn);
    lg_ctx_free(ctx);
    if (st == LG_OK && verbose) {
        printf("%s: sigma(W) before training %.4f\n", use_sn ? "with SN" : "without SN",
               *sigma_start);
        printf("%s: sigma(%s) after 100 steps %.4f\n", use_sn ? "with SN" : "without SN",
               use_sn ? "W / sigma" : "W", *sigma_end);
    }
    return st;
}
