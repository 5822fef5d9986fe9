/* lipgan side of the model benchmark: forward+backward of the SN-GAN ResNet
 * discriminator at batch 64 and generator at batch 128 (thesis figs. 5.3,
 * 5.4), the same models as bench/torch_models.py. Prints one line per case:
 * `lipgan <case> <median ms>`.
 *
 *   build/bench/bench_models [--iters N] [--sn] [--device cpu|cuda]
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "lipgan/autograd.h"
#include "lipgan/model.h"
#include "lipgan/ops.h"

static double now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e3 + ts.tv_nsec * 1e-6;
}

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* One fwd+bwd of model m on input x (host data, shape given), gradients
 * stored into the model's buffer, as a training step would. */
static int step(lg_ctx *ctx, lg_model *m, const float *xh, int ndim, const int64_t *shape) {
    lg_tensor *p[LG_MODEL_MAX_TENSORS], *g[LG_MODEL_MAX_TENSORS];
    int np = lg_model_param_tensors(m, p);
    lg_tensor *x = lg_from_host(ctx, xh, ndim, shape);
    lg_tensor *y = lg_model_forward(ctx, m, x, 1);
    lg_tensor *loss = lg_mean(ctx, y);
    if (lg_grad(ctx, loss, NULL, np, p, g, 0) != LG_OK) return -1;
    if (lg_model_store_grads(ctx, m, g, 0) != LG_OK) return -1;
    lg_ctx_backend(ctx)->sync();
    lg_ctx_reset(ctx);
    return 0;
}

static double bench(const lg_backend *be, lg_model *m, int ndim, const int64_t *shape, int iters) {
    size_t n = 1;
    for (int i = 0; i < ndim; i++) n *= (size_t)shape[i];
    float *xh = malloc(n * sizeof *xh);
    for (size_t i = 0; i < n; i++) xh[i] = (float)((i * 2654435761u) % 2001) / 1000.0f - 1.0f;
    lg_ctx *ctx;
    lg_ctx_create(&ctx, be);
    double *t = malloc((size_t)iters * sizeof *t);
    for (int i = 0; i < 2; i++)
        if (step(ctx, m, xh, ndim, shape)) {
            fprintf(stderr, "bench_models: %s\n", lg_error_msg());
            exit(1);
        }
    for (int i = 0; i < iters; i++) {
        double t0 = now_ms();
        step(ctx, m, xh, ndim, shape);
        t[i] = now_ms() - t0;
    }
    qsort(t, (size_t)iters, sizeof *t, cmp_double);
    double med = t[iters / 2];
    free(t);
    free(xh);
    lg_ctx_free(ctx);
    return med;
}

int main(int argc, char **argv) {
    int iters = 10, sn = 0;
    const char *device = "cpu";
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--iters") && i + 1 < argc) iters = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--sn")) sn = 1;
        else if (!strcmp(argv[i], "--device") && i + 1 < argc) device = argv[++i];
        else {
            fprintf(stderr, "usage: bench_models [--iters N] [--sn] [--device cpu|cuda]\n");
            return 2;
        }
    }
    if (iters < 1) iters = 1;
    const lg_backend *be;
    if (lg_backend_get(device, &be) != LG_OK || !be) {
        fprintf(stderr, "bench_models: %s\n", lg_error_msg());
        return 1;
    }
    lg_model_spec ds, gs;
    lg_model_spec_default(&ds, LG_ARCH_RESNET, LG_NET_D);
    lg_model_spec_default(&gs, LG_ARCH_RESNET, LG_NET_G);
    ds.lip = sn ? LG_LIP_SN : LG_LIP_NONE;
    lg_model *d, *g;
    if (lg_model_create(&d, &ds, be, 1) != LG_OK || lg_model_create(&g, &gs, be, 2) != LG_OK) {
        fprintf(stderr, "bench_models: %s\n", lg_error_msg());
        return 1;
    }
    int64_t xs[4] = {64, 3, 32, 32}, zs[2] = {128, 128};
    printf("lipgan D_fwd_bwd_b64 %.2f\n", bench(be, d, 4, xs, iters));
    fflush(stdout);
    printf("lipgan G_fwd_bwd_b128 %.2f\n", bench(be, g, 2, zs, iters));
    lg_model_free(d);
    lg_model_free(g);
    return 0;
}
