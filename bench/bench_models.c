/* lipgan side of the model benchmark: forward+backward of the SN-GAN ResNet
 * discriminator at batch 64 and generator at batch 128 (thesis figs. 5.3,
 * 5.4), the same models as bench/torch_models.py. Prints one line per case:
 * `lipgan <case> <median ms>`; lines starting with '#' are details.
 *
 *   build/bench/bench_models [--iters N] [--sn] [--device cpu|cuda]
 *                            [--graph] [--tf32|--bf16] [--nondet] [--no-cudnn]
 *                            [--only D|G]
 *
 * The input lives on the device (as in torch_models.py) and is copied into
 * the step's arena each step. On cuda, each case also prints the host time
 * spent queuing one eager step (if it is close to the step time, the step
 * is bound by launch overhead). --graph also captures one whole fwd+bwd
 * step in a CUDA Graph on lg_cuda_stream() (the arena hands out the same
 * addresses every step after the first, so the captured step is valid for
 * every later one) and times its replays as case `<case>_graph`, after
 * checking that a replay gives the eager step's gradients. --tf32 allows
 * TF32 in cuBLAS/cuDNN, --bf16 runs gemm and convolutions on bf16 operands
 * with fp32 sums (lg_cuda_set_precision); --nondet admits cuDNN's
 * nondeterministic algorithms (lg_cuda_set_deterministic(0), as PyTorch's
 * default); --no-cudnn forces the im2col convolutions; --only runs one of
 * the two cases. The '# cuda:' header line names the mode.
 *
 * With LG_CUDA_PROFILE=1 in the environment (cuda only), each case also
 * prints the backend's per-kernel profile of its timed eager steps (per
 * step; lines start with '#'); the eager times then include the profiling
 * overhead, graph replays do not. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "bench_util.h"
#include "lipgan/autograd.h"
#include "lipgan/model.h"
#include "lipgan/ops.h"

#ifdef LG_HAVE_CUDA
#include <cuda_runtime.h>

#include "lipgan/cuda.h"
#endif

/* Queues one fwd+bwd of model m on the input xd (backend buffer, shape
 * given); gradients go into the model's buffer, as a training step would.
 * No synchronization: the caller syncs (or captures). */
static int enqueue_step(lg_ctx *ctx, lg_model *m, const float *xd, int ndim,
                        const int64_t *shape) {
    lg_tensor *p[LG_MODEL_MAX_TENSORS], *g[LG_MODEL_MAX_TENSORS];
    int np = lg_model_param_tensors(m, p);
    lg_tensor *x = lg_new(ctx, ndim, shape);
    if (!x) return -1;
    lg_ctx_backend(ctx)->copy(x->data, xd, (size_t)x->numel);
    lg_tensor *y = lg_model_forward(ctx, m, x, 1);
    lg_tensor *loss = lg_mean(ctx, y);
    if (lg_grad(ctx, loss, NULL, np, p, g, 0) != LG_OK) return -1;
    if (lg_model_store_grads(ctx, m, g, 0) != LG_OK) return -1;
    return lg_ctx_status(ctx) == LG_OK ? 0 : -1;
}

static void die(const char *what) {
    fprintf(stderr, "bench_models: %s: %s\n", what, lg_error_msg());
    exit(1);
}

static double nmse(const float *a, const float *b, size_t n) {
    double num = 0, den = 0;
    for (size_t i = 0; i < n; i++) {
        double d = (double)a[i] - b[i];
        num += d * d;
        den += (double)b[i] * b[i];
    }
    return den > 0 ? num / den : num;
}

/* Prints the CUDA profile of the last `steps` steps, each line as "# ...". */
static void print_profile(const char *name, int steps) {
#ifdef LG_HAVE_CUDA
    if (!lg_cuda_profile_enabled()) return;
    const char *r = lg_cuda_profile_report(steps);
    printf("# %s: profile of %d eager steps (LG_CUDA_PROFILE=1)\n", name, steps);
    while (*r) {
        const char *e = strchr(r, '\n');
        int len = e ? (int)(e - r) : (int)strlen(r);
        printf("# %.*s\n", len, r);
        r += len + (e ? 1 : 0);
    }
    fflush(stdout);
    lg_cuda_profile_reset();
#else
    (void)name, (void)steps;
#endif
}

static void bench(const lg_backend *be, const char *name, lg_model *m, int ndim,
                  const int64_t *shape, int iters, int graph) {
    size_t n = 1;
    for (int i = 0; i < ndim; i++) n *= (size_t)shape[i];
    float *xh = malloc(n * sizeof *xh);
    for (size_t i = 0; i < n; i++) xh[i] = (float)((i * 2654435761u) % 2001) / 1000.0f - 1.0f;
    float *xd = lg_buffer_alloc(be, n);
    if (!xd) die("input buffer");
    be->upload(xd, xh, n);
    lg_ctx *ctx;
    if (lg_ctx_create(&ctx, be) != LG_OK) die("context");
    double *t = malloc((size_t)iters * sizeof *t), *th = malloc((size_t)iters * sizeof *th);
    for (int i = 0; i < 3; i++) { /* warm-up: arena sizing, cuDNN algorithm search */
        if (enqueue_step(ctx, m, xd, ndim, shape)) die(name);
        be->sync();
        lg_ctx_reset(ctx);
    }
    size_t allocs0 = lg_ctx_sys_allocs(ctx);
#ifdef LG_HAVE_CUDA
    if (be->is_device) lg_cuda_profile_reset(); /* profile the timed steps only */
#endif
    for (int i = 0; i < iters; i++) {
        double t0 = bench_now_ms();
        if (enqueue_step(ctx, m, xd, ndim, shape)) die(name);
        th[i] = bench_now_ms() - t0;
        be->sync();
        t[i] = bench_now_ms() - t0;
        lg_ctx_reset(ctx);
    }
    double med = bench_median(t, iters), medh = bench_median(th, iters);
    printf("lipgan %s %.2f\n", name, med);
    if (be->is_device)
        printf("# %s: host time to queue one eager step %.2f ms of %.2f; arena system "
               "allocations during the timed steps: %zu\n",
               name, medh, med, lg_ctx_sys_allocs(ctx) - allocs0);
    fflush(stdout);
    if (be->is_device) print_profile(name, iters);
#ifdef LG_HAVE_CUDA
    if (graph && be->is_device) {
        size_t ng = lg_model_num_params(m);
        float *ge = malloc(ng * sizeof *ge), *gg = malloc(ng * sizeof *gg);
        /* reference: one eager step's gradients */
        if (enqueue_step(ctx, m, xd, ndim, shape)) die(name);
        be->download(ge, lg_model_grads(m), ng);
        lg_ctx_reset(ctx);
        cudaStream_t st = (cudaStream_t)lg_cuda_stream();
        cudaGraph_t gr = NULL;
        cudaGraphExec_t ex = NULL;
        double tc = bench_now_ms();
        cudaError_t e = cudaStreamBeginCapture(st, cudaStreamCaptureModeThreadLocal);
        int rc = e == cudaSuccess ? enqueue_step(ctx, m, xd, ndim, shape) : -1;
        if (e == cudaSuccess) e = cudaStreamEndCapture(st, &gr);
        if (e == cudaSuccess && rc == 0) e = cudaGraphInstantiate(&ex, gr, 0);
        tc = bench_now_ms() - tc;
        lg_ctx_reset(ctx);
        if (e != cudaSuccess || rc != 0 || lg_cuda_last_status() != LG_OK) {
            printf("# %s_graph: capture failed: %s / %s\n", name, cudaGetErrorString(e),
                   lg_cuda_last_status() != LG_OK ? lg_error_msg() : "no backend error");
            (void)cudaGetLastError();
            lg_cuda_clear_status();
        } else {
            size_t nodes = 0;
            cudaGraphGetNodes(gr, NULL, &nodes);
            /* a replay must give what the eager step gave */
            cudaGraphLaunch(ex, st);
            be->sync();
            be->download(gg, lg_model_grads(m), ng);
            double err = nmse(gg, ge, ng);
            for (int i = 0; i < 2; i++) cudaGraphLaunch(ex, st);
            be->sync();
            for (int i = 0; i < iters; i++) {
                double t0 = bench_now_ms();
                cudaGraphLaunch(ex, st);
                cudaStreamSynchronize(st);
                t[i] = bench_now_ms() - t0;
            }
            double medg = bench_median(t, iters);
            printf("lipgan %s_graph %.2f\n", name, medg);
            printf("# %s_graph: %zu nodes, captured+instantiated in %.1f ms; replay vs eager "
                   "gradients nMSE %.2e (%s)%s\n",
                   name, nodes, tc, err,
                   err == 0.0 ? "bitwise equal"
                              : "not bitwise: SN's u, v move between steps, or --nondet",
                   lg_cuda_last_status() == LG_OK ? "" : "; CUDA error after replay");
            cudaGraphExecDestroy(ex);
        }
        if (gr) cudaGraphDestroy(gr);
        free(ge), free(gg);
        lg_cuda_profile_reset(); /* the reference eager step: not reported */
    }
#else
    (void)graph;
    (void)nmse;
#endif
    free(t), free(th), free(xh);
    lg_buffer_free(be, xd);
    lg_ctx_free(ctx);
}

int main(int argc, char **argv) {
    int iters = 10, sn = 0, graph = 0, precision = 0 /* 0 fp32, 1 tf32, 2 bf16 */, nondet = 0,
        cudnn = 1;
    const char *device = "cpu", *only = NULL;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--iters") && i + 1 < argc) iters = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--sn")) sn = 1;
        else if (!strcmp(argv[i], "--graph")) graph = 1;
        else if (!strcmp(argv[i], "--tf32")) precision = 1;
        else if (!strcmp(argv[i], "--bf16")) precision = 2;
        else if (!strcmp(argv[i], "--nondet")) nondet = 1;
        else if (!strcmp(argv[i], "--no-cudnn")) cudnn = 0;
        else if (!strcmp(argv[i], "--device") && i + 1 < argc) device = argv[++i];
        else if (!strcmp(argv[i], "--only") && i + 1 < argc &&
                 (!strcmp(argv[i + 1], "D") || !strcmp(argv[i + 1], "G")))
            only = argv[++i];
        else {
            fprintf(stderr, "usage: bench_models [--iters N] [--sn] [--device cpu|cuda] "
                            "[--graph] [--tf32|--bf16] [--nondet] [--no-cudnn] [--only D|G]\n");
            return 2;
        }
    }
    if (iters < 1) iters = 1;
#ifdef LG_HAVE_CUDA
    /* LG_CUDA_FP32/TF32/BF16 are 0/1/2, as `precision` */
    if (lg_cuda_set_precision(precision) != LG_OK) die("precision");
    if (nondet) lg_cuda_set_deterministic(0);
    if (!cudnn) lg_cuda_set_cudnn(0);
#endif
    const lg_backend *be;
    if (lg_backend_get(device, &be) != LG_OK || !be) die("backend");
#ifdef LG_HAVE_CUDA
    if (be->is_device) {
        static const char *pn[] = {"fp32 (TF32 off)", "tf32", "bf16 (fp32 sums)"};
        int p = lg_cuda_precision();
        printf("# cuda: precision %s; %s convolutions; %s; convolutions %s\n",
               p >= 0 && p <= 2 ? pn[p] : "?",
               lg_cuda_deterministic() ? "deterministic" : "nondeterministic",
               graph ? "eager + graph replay" : "eager", lg_cuda_cudnn_info());
    }
#else
    (void)cudnn;
#endif
    if (!be->is_device && (precision || nondet))
        printf("# cpu: --tf32/--bf16/--nondet ignored (the cpu backend computes in fp32)\n");
    lg_model_spec ds, gs;
    lg_model_spec_default(&ds, LG_ARCH_RESNET, LG_NET_D);
    lg_model_spec_default(&gs, LG_ARCH_RESNET, LG_NET_G);
    ds.lip = sn ? LG_LIP_SN : LG_LIP_NONE;
    lg_model *d, *g;
    if (lg_model_create(&d, &ds, be, 1) != LG_OK || lg_model_create(&g, &gs, be, 2) != LG_OK)
        die("model");
    int64_t xs[4] = {64, 3, 32, 32}, zs[2] = {128, 128};
    if (!only || !strcmp(only, "D")) bench(be, "D_fwd_bwd_b64", d, 4, xs, iters, graph);
    if (!only || !strcmp(only, "G")) bench(be, "G_fwd_bwd_b128", g, 2, zs, iters, graph);
#ifdef LG_HAVE_CUDA
    if (be->is_device) printf("# cuda: convolutions %s\n", lg_cuda_cudnn_info());
#endif
    lg_model_free(d);
    lg_model_free(g);
    return 0;
}
