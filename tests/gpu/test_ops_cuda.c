/* Every differentiable op, and whole models, on the CUDA backend against the
 * CPU reference: forward value, first derivatives w.r.t. every input and
 * second derivatives (G = sum(q * dL/dx0), differentiated w.r.t. every
 * input: the structure of a gradient penalty). Pass bar: normalized MSE
 * sum((a-b)^2)/sum(b^2) <= 1e-7 in fp32 (TF32 off).
 * Batch norm (first order only: its backward has no backward rule) runs
 * plain and synchronized (lg_ctx_set_bn_sync): world 1 with a copying
 * gatherer, and world 2 with an emulated peer (peer_gather), its running
 * statistics compared too.
 * Everything runs twice: convolutions through cuDNN (when it loads;
 * LG_REQUIRE_CUDNN=1 makes its absence a failure) and through im2col.
 * Skips (exit 0) without a device unless LG_REQUIRE_CUDA=1. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gpu_test.h"
#include "lg_test.h"
#include "lipgan/autograd.h"
#include "lipgan/model.h"
#include "lipgan/ops.h"
#ifdef LG_HAVE_CUDA
#include "lipgan/cuda.h"
#endif

#define NMSE_BAR 1e-7
#define MAXIN 4

typedef lg_tensor *(*op_fn)(lg_ctx *ctx, lg_tensor **in);

typedef struct opspec {
    const char *name;
    op_fn f;
    int nin;
    int ndim[MAXIN];
    int64_t shape[MAXIN][4];
    int order2;   /* 1: also check second derivatives */
    int positive; /* inputs in (0.5, 2) (sqrt, div) */
} opspec;

static lg_bn_state g_bn;
static float g_bn_mean[8], g_bn_var[8];

/* ---- synchronized batch norm's gatherers ---- */

static lg_status gather_copy(const double *mine, double *all, size_t n, void *user) {
    (void)user;
    memcpy(all, mine, sizeof(double) * n);
    return LG_OK;
}

/* World 2 in one thread: this process is rank 1, rank 0 a peer holding
 * g_peer.x and g_peer.dy (each the shape of this process's x) whose rows the
 * CPU backend computes from what has been gathered, as a real peer would
 * send them: bn_stats in the forward, then bn_bwd_sums with the combined
 * mean (Chan's update in rank order, as src/ops/batchnorm.c) in the
 * backward. Two threads as two processes (tests/test_bn_sync.c) cannot
 * share the CUDA backend: it has one stream and one per-channel scratch
 * (lgc_chan_partial, lgc_chan_coef) per process, so one thread's partial
 * sums could be overwritten by the other's between its passes. */
#define PEER_MAX (32 * 8 * 32 * 32)
static struct {
    float x[PEER_MAX], dy[PEER_MAX];
    int64_t n, c, hw;
    int calls;         /* 0: the forward's gather is next, 1: the backward's */
    float mean[8];     /* the whole batch's mean (c) after the forward */
} g_peer;

static lg_status gather_peer(const double *mine, double *all, size_t k, void *user) {
    (void)user;
    const lg_backend *cpu = lg_backend_cpu();
    int64_t c = g_peer.c;
    if (k != 1 + 2 * (size_t)c || g_peer.calls > 1)
        return lg_error_set(LG_ERR_INVALID_ARG, "gather_peer: unexpected call (%zu values, call %d)",
                            k, g_peer.calls);
    float a[8], b[8];
    if (g_peer.calls == 0)
        cpu->bn_stats(a, b, g_peer.x, g_peer.n, c, g_peer.hw);
    else
        cpu->bn_bwd_sums(a, b, g_peer.dy, g_peer.x, g_peer.mean, g_peer.n, c, g_peer.hw);
    all[0] = (double)(g_peer.n * g_peer.hw);
    for (int64_t i = 0; i < c; i++) all[1 + i] = a[i], all[1 + c + i] = b[i];
    memcpy(all + k, mine, sizeof(double) * k);
    if (g_peer.calls == 0)
        for (int64_t i = 0; i < c; i++) {
            double cnt = 0, mu = 0;
            for (int r = 0; r < 2; r++) {
                double nr = all[(size_t)r * k], tot = cnt + nr;
                mu += (all[(size_t)r * k + 1 + i] - mu) * nr / tot;
                cnt = tot;
            }
            g_peer.mean[i] = (float)mu;
        }
    g_peer.calls++;
    return LG_OK;
}

#define F(name, expr) static lg_tensor *name(lg_ctx *ctx, lg_tensor **in) { return (expr); }
F(f_matmul, lg_matmul(ctx, in[0], in[1], 0, 0))
F(f_matmul_tt, lg_matmul(ctx, in[0], in[1], 1, 1))
F(f_linear, lg_linear(ctx, in[0], in[1], in[2]))
F(f_conv_s1p1, lg_conv2d(ctx, in[0], in[1], in[2], 1, 1))
F(f_conv_s2p1, lg_conv2d(ctx, in[0], in[1], in[2], 2, 1))
F(f_conv_1x1, lg_conv2d(ctx, in[0], in[1], NULL, 1, 0))
F(f_convt, lg_conv_transpose2d(ctx, in[0], in[1], in[2], 2, 1, 1))
F(f_wgrad, lg_conv2d_wgrad(ctx, in[0], in[1], 3, 3, 2, 1))
F(f_up, lg_upsample2x(ctx, in[0]))
F(f_avg, lg_avgpool2x2(ctx, in[0]))
F(f_sumpool, lg_sumpool2x2(ctx, in[0]))
F(f_gsp, lg_global_sum_pool(ctx, in[0]))
F(f_bn, lg_batchnorm(ctx, in[0], in[1], in[2], &g_bn, 1))
static lg_tensor *f_bn_sync(lg_ctx *ctx, lg_tensor **in) {
    lg_ctx_set_bn_sync(ctx, gather_copy, 1, NULL);
    return lg_batchnorm(ctx, in[0], in[1], in[2], &g_bn, 1);
}
static lg_tensor *f_bn_sync2(lg_ctx *ctx, lg_tensor **in) {
    lg_ctx_set_bn_sync(ctx, gather_peer, 2, NULL);
    return lg_batchnorm(ctx, in[0], in[1], in[2], &g_bn, 1);
}
static int is_bn(op_fn f) { return f == f_bn || f == f_bn_sync || f == f_bn_sync2; }
F(f_relu, lg_relu(ctx, in[0]))
F(f_lrelu, lg_leaky_relu(ctx, in[0], 0.1f))
F(f_tanh, lg_tanh(ctx, in[0]))
F(f_sigmoid, lg_sigmoid(ctx, in[0]))
F(f_softplus, lg_softplus(ctx, in[0]))
F(f_add_b, lg_add(ctx, in[0], in[1]))
F(f_sub_b, lg_sub(ctx, in[0], in[1]))
F(f_mul_b, lg_mul(ctx, in[0], in[1]))
F(f_div_b, lg_div(ctx, in[0], in[1]))
F(f_add_relu_b, lg_add_relu(ctx, in[0], in[1]))
F(f_square, lg_square(ctx, in[0]))
F(f_sqrt, lg_sqrt(ctx, in[0]))
F(f_scale, lg_add_scalar(ctx, lg_scale(ctx, lg_neg(ctx, in[0]), 1.7f), 0.3f))
F(f_sum, lg_sum(ctx, in[0]))
F(f_mean_axes, lg_mean_axes(ctx, in[0], 1u | 4u))
F(f_flatten, lg_flatten(ctx, in[0]))
F(f_rows, lg_rows(ctx, in[0], 1, 3))
F(f_rows_pad, lg_rows_pad(ctx, in[0], 2, 7))
F(f_cat_rows, lg_cat_rows(ctx, in[0], in[1]))
/* a tiny critic: every op a discriminator uses, in one graph */
static lg_tensor *f_critic(lg_ctx *ctx, lg_tensor **in) {
    lg_tensor *h = lg_leaky_relu(ctx, lg_conv2d(ctx, in[0], in[1], NULL, 2, 1), 0.2f);
    h = lg_relu(ctx, lg_conv2d(ctx, h, in[2], NULL, 1, 1));
    h = lg_global_sum_pool(ctx, lg_avgpool2x2(ctx, h));
    return lg_linear(ctx, h, in[3], NULL);
}

#define S4(a, b, c, d) {a, b, c, d}
static const opspec OPS[] = {
    {"matmul", f_matmul, 2, {2, 2}, {S4(5, 7, 0, 0), S4(7, 3, 0, 0)}, 1, 0},
    {"matmul^T^T", f_matmul_tt, 2, {2, 2}, {S4(7, 5, 0, 0), S4(3, 7, 0, 0)}, 1, 0},
    {"linear", f_linear, 3, {2, 2, 1}, {S4(4, 6, 0, 0), S4(5, 6, 0, 0), S4(5, 0, 0, 0)}, 1, 0},
    {"conv s1 p1", f_conv_s1p1, 3, {4, 4, 1}, {S4(2, 3, 7, 6), S4(4, 3, 3, 3), S4(4, 0, 0, 0)}, 1, 0},
    {"conv s2 p1", f_conv_s2p1, 3, {4, 4, 1}, {S4(3, 2, 9, 8), S4(5, 2, 3, 3), S4(5, 0, 0, 0)}, 1, 0},
    {"conv 1x1", f_conv_1x1, 2, {4, 4}, {S4(2, 5, 6, 6), S4(3, 5, 1, 1)}, 1, 0},
    {"conv s1 p1 (16 ch)", f_conv_s1p1, 3, {4, 4, 1}, {S4(4, 16, 12, 12), S4(16, 16, 3, 3), S4(16, 0, 0, 0)}, 1, 0},
    {"conv_transpose s2", f_convt, 3, {4, 4, 1}, {S4(2, 4, 5, 5), S4(4, 3, 3, 3), S4(3, 0, 0, 0)}, 1, 0},
    {"conv2d_wgrad", f_wgrad, 2, {4, 4}, {S4(2, 3, 8, 8), S4(2, 4, 4, 4)}, 1, 0},
    {"upsample2x", f_up, 1, {4}, {S4(2, 3, 3, 5)}, 1, 0},
    {"avgpool2x2", f_avg, 1, {4}, {S4(2, 3, 6, 4)}, 1, 0},
    /* odd sizes floor (PyTorch): the backward is conv2d_bwd_data with a 2x2
     * kernel of ones, so cuDNN and im2col both */
    {"avgpool2x2 odd 5x7", f_avg, 1, {4}, {S4(2, 3, 5, 7)}, 1, 0},
    {"avgpool2x2 odd 5x8", f_avg, 1, {4}, {S4(2, 3, 5, 8)}, 1, 0},
    {"sumpool2x2 odd 6x9", f_sumpool, 1, {4}, {S4(3, 2, 6, 9)}, 1, 0},
    {"sumpool2x2 odd 3x3", f_sumpool, 1, {4}, {S4(1, 2, 3, 3)}, 1, 0},
    {"global_sum_pool", f_gsp, 1, {4}, {S4(3, 4, 5, 5)}, 1, 0},
    {"batchnorm train", f_bn, 3, {4, 1, 1}, {S4(4, 3, 5, 5), S4(3, 0, 0, 0), S4(3, 0, 0, 0)}, 0, 0},
    {"batchnorm train (N,C)", f_bn, 3, {2, 1, 1}, {S4(6, 5, 0, 0), S4(5, 0, 0, 0), S4(5, 0, 0, 0)}, 0, 0},
    /* synchronized: the backend's bn_stats, bn_bwd_sums, bn_bwd_apply */
    {"batchnorm sync, world 1", f_bn_sync, 3, {4, 1, 1}, {S4(4, 3, 5, 5), S4(3, 0, 0, 0), S4(3, 0, 0, 0)}, 0, 0},
    {"batchnorm sync (N,C), world 1", f_bn_sync, 3, {2, 1, 1}, {S4(6, 5, 0, 0), S4(5, 0, 0, 0), S4(5, 0, 0, 0)}, 0, 0},
    {"batchnorm sync, world 2", f_bn_sync2, 3, {4, 1, 1}, {S4(4, 3, 5, 5), S4(3, 0, 0, 0), S4(3, 0, 0, 0)}, 0, 0},
    {"batchnorm sync (N,C), world 2", f_bn_sync2, 3, {2, 1, 1}, {S4(6, 5, 0, 0), S4(5, 0, 0, 0), S4(5, 0, 0, 0)}, 0, 0},
    /* float4 loads, several chunks per channel */
    {"batchnorm sync (32,8,32,32), world 2", f_bn_sync2, 3, {4, 1, 1}, {S4(32, 8, 32, 32), S4(8, 0, 0, 0), S4(8, 0, 0, 0)}, 0, 0},
    {"relu", f_relu, 1, {3}, {S4(3, 5, 7, 0)}, 1, 0},
    {"leaky_relu", f_lrelu, 1, {3}, {S4(3, 5, 7, 0)}, 1, 0},
    {"tanh", f_tanh, 1, {2}, {S4(6, 9, 0, 0)}, 1, 0},
    {"sigmoid", f_sigmoid, 1, {2}, {S4(6, 9, 0, 0)}, 1, 0},
    {"softplus", f_softplus, 1, {2}, {S4(6, 9, 0, 0)}, 1, 0},
    {"add (broadcast)", f_add_b, 2, {4, 4}, {S4(2, 3, 4, 5), S4(1, 3, 1, 1)}, 1, 0},
    {"sub (broadcast)", f_sub_b, 2, {4, 2}, {S4(2, 3, 4, 5), S4(1, 5, 0, 0)}, 1, 0},
    {"mul (broadcast)", f_mul_b, 2, {4, 4}, {S4(3, 2, 4, 5), S4(3, 1, 1, 1)}, 1, 0},
    {"add_relu (bias)", f_add_relu_b, 2, {4, 4}, {S4(2, 3, 4, 5), S4(1, 3, 1, 1)}, 1, 0},
    {"add_relu (same shape)", f_add_relu_b, 2, {2, 2}, {S4(6, 9, 0, 0), S4(6, 9, 0, 0)}, 1, 0},
    {"div (broadcast)", f_div_b, 2, {4, 4}, {S4(2, 3, 4, 5), S4(2, 3, 1, 5)}, 1, 1},
    {"square", f_square, 1, {2}, {S4(7, 5, 0, 0)}, 1, 0},
    {"sqrt", f_sqrt, 1, {2}, {S4(7, 5, 0, 0)}, 1, 1},
    {"scale/neg/add_scalar", f_scale, 1, {2}, {S4(7, 5, 0, 0)}, 1, 0},
    {"sum", f_sum, 1, {4}, {S4(2, 3, 4, 5)}, 1, 0},
    {"mean_axes", f_mean_axes, 1, {4}, {S4(2, 3, 4, 5)}, 1, 0},
    {"flatten", f_flatten, 1, {4}, {S4(2, 3, 4, 5)}, 1, 0},
    {"rows [1,4)", f_rows, 1, {4}, {S4(5, 3, 2, 3)}, 1, 0},
    {"rows_pad at 2 of 7", f_rows_pad, 1, {3}, {S4(3, 2, 5, 0)}, 1, 0},
    {"cat_rows", f_cat_rows, 2, {4, 4}, {S4(2, 3, 4, 5), S4(3, 3, 4, 5)}, 1, 0},
    {"critic (conv,lrelu,relu,avgpool,sumpool,linear)", f_critic, 4, {4, 4, 4, 2},
     {S4(3, 3, 16, 16), S4(8, 3, 3, 3), S4(8, 8, 3, 3), S4(1, 8, 0, 0)}, 1, 0},
    /* the same with a 7x7 map into the pooling (odd: floors to 3x3) */
    {"critic, odd-size avgpool (7x7)", f_critic, 4, {4, 4, 4, 2},
     {S4(3, 3, 14, 14), S4(8, 3, 3, 3), S4(8, 8, 3, 3), S4(1, 8, 0, 0)}, 1, 0},
};


/* Results of one backend: y, dL/din[i], dG/din[i] (host copies); batch
 * norm's running mean and variance after the step. */
typedef struct result {
    float *y;
    size_t ny;
    float *g1[MAXIN], *g2[MAXIN];
    size_t n[MAXIN];
    float run[16]; /* run_mean (8), run_var (8) */
} result;

static int run_on(const lg_backend *be, const opspec *op, float **host_in, uint64_t seed, result *r) {
    lg_ctx *ctx;
    if (lg_ctx_create(&ctx, be) != LG_OK) return -1;
    if (op->f == f_bn_sync2) { /* the peer's half: other statistics, its own dy */
        int64_t n = 1;
        for (int d = 0; d < op->ndim[0]; d++) n *= op->shape[0][d];
        LG_ASSERT(n <= PEER_MAX && op->shape[0][1] <= 8);
        g_peer.n = op->shape[0][0];
        g_peer.c = op->shape[0][1];
        g_peer.hw = n / (g_peer.n * g_peer.c);
        g_peer.calls = 0;
        lg_test_rng prng = lg_test_rng_make(seed ^ 0x9ee7);
        lg_test_fill_uniform(&prng, g_peer.x, (size_t)n, -0.5f, 2.5f);
        lg_test_fill_uniform(&prng, g_peer.dy, (size_t)n, -1, 1);
    }
    if (is_bn(op->f)) {  /* fresh running stats per backend */
        for (int i = 0; i < 8; i++) g_bn_mean[i] = 0, g_bn_var[i] = 1;
        g_bn.run_mean = lg_buffer_alloc(be, 8);
        g_bn.run_var = lg_buffer_alloc(be, 8);
        be->upload(g_bn.run_mean, g_bn_mean, 8);
        be->upload(g_bn.run_var, g_bn_var, 8);
        g_bn.momentum = 0.1f;
        g_bn.eps = 1e-5f;
    }
    lg_tensor *in[MAXIN];
    for (int i = 0; i < op->nin; i++)
        in[i] = lg_test_tensor(ctx, host_in[i], op->ndim[i], op->shape[i], 1);
    lg_tensor *y = op->f(ctx, in);
    int rc = -1;
    if (!y) goto out;
    r->ny = (size_t)y->numel;
    r->y = malloc(r->ny * sizeof(float));
    lg_to_host(ctx, y, r->y);
    /* L = sum(w * y) with fixed weights w */
    float *w = malloc(r->ny * sizeof(float));
    lg_test_rng rng = lg_test_rng_make(seed ^ 0x5eed);
    lg_test_fill_uniform(&rng, w, r->ny, -1, 1);
    lg_tensor *wt = lg_test_tensor(ctx, w, y->ndim, y->shape, 0);
    free(w);
    lg_tensor *g[MAXIN];
    if (lg_grad(ctx, y, wt, op->nin, in, g, op->order2) != LG_OK) goto out;
    for (int i = 0; i < op->nin; i++) {
        r->n[i] = (size_t)g[i]->numel;
        r->g1[i] = malloc(r->n[i] * sizeof(float));
        lg_to_host(ctx, g[i], r->g1[i]);
    }
    if (op->order2) {
        float *q = malloc(r->n[0] * sizeof(float));
        lg_test_fill_uniform(&rng, q, r->n[0], -1, 1);
        lg_tensor *qt = lg_test_tensor(ctx, q, g[0]->ndim, g[0]->shape, 0);
        free(q);
        lg_tensor *G = lg_sum(ctx, lg_mul(ctx, g[0], qt));
        lg_tensor *g2[MAXIN];
        if (lg_grad(ctx, G, NULL, op->nin, in, g2, 0) != LG_OK) goto out;
        for (int i = 0; i < op->nin; i++) {
            r->g2[i] = malloc(r->n[i] * sizeof(float));
            lg_to_host(ctx, g2[i], r->g2[i]);
        }
    }
    /* the peer's rows went into the forward and the backward */
    CHECK(op->f != f_bn_sync2 || g_peer.calls == 2, "%s on %s: %d gathers, want 2", op->name,
          be->name, g_peer.calls);
    if (is_bn(op->f)) {
        be->download(r->run, g_bn.run_mean, 8);
        be->download(r->run + 8, g_bn.run_var, 8);
    }
    rc = lg_ctx_status(ctx) == LG_OK ? 0 : -1;
out:
    if (rc) fprintf(stderr, "  %s on %s failed: %s\n", op->name, be->name, lg_error_msg());
    if (is_bn(op->f)) {
        lg_buffer_free(be, g_bn.run_mean);
        lg_buffer_free(be, g_bn.run_var);
    }
    lg_ctx_free(ctx);
    return rc;
}

static void result_free(result *r) {
    free(r->y);
    for (int i = 0; i < MAXIN; i++) free(r->g1[i]), free(r->g2[i]);
    memset(r, 0, sizeof *r);
}

static const lg_backend *g_cuda;
static uint64_t g_seed;

static void test_ops(void) {
    const lg_backend *cpu = lg_backend_cpu();
    for (size_t k = 0; k < sizeof OPS / sizeof OPS[0]; k++) {
        const opspec *op = &OPS[k];
        float *hin[MAXIN] = {0};
        lg_test_rng rng = lg_test_rng_make(g_seed + k);
        for (int i = 0; i < op->nin; i++) {
            size_t n = 1;
            for (int d = 0; d < op->ndim[i]; d++) n *= (size_t)op->shape[i][d];
            hin[i] = malloc(n * sizeof(float));
            if (op->positive) lg_test_fill_uniform(&rng, hin[i], n, 0.5f, 2.0f);
            else lg_test_fill_away0(&rng, hin[i], n, 0.05f, 1.0f);
        }
        result rc = {0}, rg = {0};
        int ok = run_on(cpu, op, hin, g_seed + k, &rc) == 0 && run_on(g_cuda, op, hin, g_seed + k, &rg) == 0;
        CHECK(ok, "%s: a backend failed", op->name);
        if (ok) {
            double worst = gpu_test_nmse(rg.y, rc.y, rc.ny);
            if (is_bn(op->f)) {
                double er = gpu_test_nmse(rg.run, rc.run, 16);
                if (er > worst) worst = er;
            }
            for (int i = 0; i < op->nin; i++) {
                double e1 = gpu_test_nmse(rg.g1[i], rc.g1[i], rc.n[i]);
                if (e1 > worst) worst = e1;
                if (op->order2) {
                    double e2 = gpu_test_nmse(rg.g2[i], rc.g2[i], rc.n[i]);
                    if (e2 > worst) worst = e2;
                }
            }
            printf("  %-48s worst nMSE %.2e (%s)\n", op->name, worst,
                   op->order2 ? "fwd, d1, d2" : is_bn(op->f) ? "fwd, d1, running stats" : "fwd, d1");
            CHECK(worst <= NMSE_BAR, "%s: nMSE %.3e > %.0e", op->name, worst, NMSE_BAR);
        }
        result_free(&rc);
        result_free(&rg);
        for (int i = 0; i < op->nin; i++) free(hin[i]);
    }
}

/* Whole models: SN-GAN ResNet D with SN (forward, parameter gradients of a
 * hinge-like mean, and a gradient penalty's second-order parameter
 * gradients) and G with batch norm, CPU vs CUDA from identical weights. */
static int model_run(const lg_backend *be, lg_model_arch arch, lg_net_role role, int gp,
                     const float *x, int ndim, const int64_t *shape, float **y_out, size_t *ny,
                     float **g_out, size_t *ng) {
    lg_model_spec s;
    lg_model_spec_default(&s, arch, role);
    if (role == LG_NET_D) s.lip = LG_LIP_SN, s.ch = 32;
    else s.ch = 32;
    lg_model *m;
    if (lg_model_create(&m, &s, be, 7) != LG_OK) return -1;
    lg_ctx *ctx;
    lg_ctx_create(&ctx, be);
    lg_tensor *p[LG_MODEL_MAX_TENSORS], *g[LG_MODEL_MAX_TENSORS];
    int np = lg_model_param_tensors(m, p);
    lg_tensor *xt = lg_test_tensor(ctx, x, ndim, shape, gp);
    lg_tensor *y = lg_model_forward(ctx, m, xt, 1);
    lg_tensor *loss = lg_mean(ctx, y);
    if (gp) {
        lg_tensor *gx;
        lg_grad(ctx, lg_sum(ctx, y), NULL, 1, &xt, &gx, 1);
        lg_tensor *nrm = lg_sqrt(ctx, lg_add_scalar(ctx, lg_sum_axes(ctx, lg_square(ctx, gx), 2u | 4u | 8u), 1e-12f));
        loss = lg_add(ctx, loss, lg_scale(ctx, lg_mean(ctx, lg_square(ctx, lg_add_scalar(ctx, nrm, -1.0f))), 10.0f));
    }
    int rc = -1;
    if (y && lg_grad(ctx, loss, NULL, np, p, g, 0) == LG_OK &&
        lg_model_store_grads(ctx, m, g, 0) == LG_OK) {
        *ny = (size_t)y->numel;
        *y_out = malloc(*ny * sizeof(float));
        lg_to_host(ctx, y, *y_out);
        *ng = lg_model_num_params(m);
        *g_out = malloc(*ng * sizeof(float));
        be->download(*g_out, lg_model_grads(m), *ng);
        rc = 0;
    } else {
        fprintf(stderr, "  model on %s failed: %s\n", be->name, lg_error_msg());
    }
    lg_ctx_free(ctx);
    lg_model_free(m);
    return rc;
}

static void test_models(void) {
    lg_test_rng rng = lg_test_rng_make(g_seed ^ 99);
    static float x[8 * 3 * 32 * 32], z[16 * 128];
    lg_test_fill_uniform(&rng, x, sizeof x / sizeof x[0], -1, 1);
    lg_test_fill_uniform(&rng, z, sizeof z / sizeof z[0], -1, 1);
    int64_t xs[4] = {8, 3, 32, 32}, zs[2] = {16, 128};
    struct { const char *name; lg_net_role role; int gp; const float *in; int nd; const int64_t *s; } cases[] = {
        {"resnet D (SN) fwd + d1", LG_NET_D, 0, x, 4, xs},
        {"resnet D (SN) + gradient penalty (d2)", LG_NET_D, 1, x, 4, xs},
        {"resnet G (BN) fwd + d1", LG_NET_G, 0, z, 2, zs},
    };
    for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
        float *yc = NULL, *gc = NULL, *yg = NULL, *gg = NULL;
        size_t nyc = 0, ngc = 0, nyg = 0, ngg = 0;
        int ok = model_run(lg_backend_cpu(), LG_ARCH_RESNET, cases[k].role, cases[k].gp, cases[k].in,
                           cases[k].nd, cases[k].s, &yc, &nyc, &gc, &ngc) == 0 &&
                 model_run(g_cuda, LG_ARCH_RESNET, cases[k].role, cases[k].gp, cases[k].in, cases[k].nd,
                           cases[k].s, &yg, &nyg, &gg, &ngg) == 0;
        CHECK(ok, "%s failed", cases[k].name);
        if (ok) {
            double ey = gpu_test_nmse(yg, yc, nyc), eg = gpu_test_nmse(gg, gc, ngc);
            printf("  %-48s nMSE out %.2e, param grads %.2e\n", cases[k].name, ey, eg);
            CHECK(ey <= NMSE_BAR && eg <= NMSE_BAR, "%s: nMSE %.2e / %.2e", cases[k].name, ey, eg);
        }
        free(yc), free(gc), free(yg), free(gg);
    }
}

int main(void) {
    int rc;
    if (!(g_cuda = gpu_test_backend("test_ops_cuda", &rc))) return rc;
    g_seed = gpu_test_seed(12345);
    printf("seed %llu\n", (unsigned long long)g_seed);
#ifdef LG_HAVE_CUDA
    int have = gpu_test_cudnn("");
    if (have) {
        printf("-- convolutions through cuDNN\n");
        LG_TEST_RUN(test_ops);
        LG_TEST_RUN(test_models);
    }
    lg_cuda_set_cudnn(0);
    printf("-- convolutions through im2col + cuBLAS\n");
#endif
    LG_TEST_RUN(test_ops);
    LG_TEST_RUN(test_models);
    return lg_test_summary("test_ops_cuda");
}
