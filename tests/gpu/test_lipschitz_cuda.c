/* The Lipschitz toolkit on the CUDA backend against the CPU backend: SN
 * (out_dim 0 and 1) with its weight gradient, the Toeplitz operator norm,
 * spectral gradient clamping, SR, weight clipping, and a gradient penalty
 * through an SN critic with its second-order parameter gradients. Both
 * sides start from the same vectors (drawn on the host and uploaded), so
 * results must agree to float rounding (rtol 1e-4).
 * Skips (exit 0) without a device unless LG_REQUIRE_CUDA=1. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "gpu_test.h"
#include "lg_test.h"
#include "lipgan/lipschitz.h"
#include "lipgan/ops.h"

static const lg_backend *g_cuda;
static uint64_t g_seed = 12345;

#define ATOL 1e-5
#define RTOL 1e-4

static float *host_of(const lg_backend *be, const float *p, size_t n) {
    float *h = malloc(sizeof(float) * n);
    LG_ASSERT(h);
    be->download(h, p, n);
    return h;
}

static void cmp(const lg_backend *be_a, const float *a, const lg_backend *be_b, const float *b,
                size_t n, const char *what) {
    float *ha = host_of(be_a, a, n), *hb = host_of(be_b, b, n);
    lg_test_close(ha, hb, n, ATOL, RTOL, what);
    free(ha);
    free(hb);
}

static void test_sn(void) {
    const int64_t shapes[2][4] = {{8, 3, 3, 3}, {4, 6, 4, 4}};
    for (int od = 0; od <= 1; od++) {
        const int64_t *sh = shapes[od];
        int64_t n = sh[0] * sh[1] * sh[2] * sh[3], rows, cols;
        CHECK_OK(lg_weight_mat_dims(4, sh, od, &rows, &cols));
        float *w = malloc(sizeof(float) * n), *r = malloc(sizeof(float) * n);
        lg_test_rng rng = lg_test_rng_make(g_seed + od);
        lg_test_fill_uniform(&rng, w, (size_t)n, -1, 1);
        lg_test_fill_uniform(&rng, r, (size_t)n, -1, 1);
        const lg_backend *bes[2] = {lg_backend_cpu(), g_cuda};
        lg_ctx *ctx[2];
        lg_sn_state st[2];
        lg_tensor *wn[2], *gw[2];
        for (int b = 0; b < 2; b++) {
            CHECK_OK(lg_ctx_create(&ctx[b], bes[b]));
            CHECK_OK(lg_sn_init(&st[b], bes[b], rows, cols, g_seed));
            st[b].n_iter = 3;
            lg_tensor *wt = lg_test_tensor(ctx[b], w, 4, sh, 1);
            wn[b] = lg_sn_weight(ctx[b], &st[b], wt, od, 1);
            lg_tensor *seed = lg_from_host(ctx[b], r, 4, sh);
            CHECK(wn[b] != NULL, "sn: %s", lg_error_msg());
            CHECK_OK(lg_grad(ctx[b], wn[b], seed, 1, &wt, &gw[b], 0));
        }
        char what[64];
        snprintf(what, sizeof what, "SN out_dim %d: W/sigma", od);
        cmp(bes[1], wn[1]->data, bes[0], wn[0]->data, (size_t)n, what);
        snprintf(what, sizeof what, "SN out_dim %d: dW", od);
        cmp(bes[1], gw[1]->data, bes[0], gw[0]->data, (size_t)n, what);
        snprintf(what, sizeof what, "SN out_dim %d: u", od);
        cmp(bes[1], st[1].u, bes[0], st[0].u, (size_t)rows, what);
        snprintf(what, sizeof what, "SN out_dim %d: v", od);
        cmp(bes[1], st[1].v, bes[0], st[0].v, (size_t)cols, what);
        float s0 = lg_sn_sigma(&st[0]), s1 = lg_sn_sigma(&st[1]);
        CHECK(fabsf(s0 - s1) <= 1e-4f * s0, "SN out_dim %d sigma cpu %g cuda %g", od, (double)s0,
              (double)s1);
        for (int b = 0; b < 2; b++) {
            lg_sn_free(&st[b]);
            lg_ctx_free(ctx[b]);
        }
        free(w);
        free(r);
    }
}

static void test_toeplitz(void) {
    const int64_t sh[4] = {4, 3, 3, 3};
    float w[108];
    lg_test_rng rng = lg_test_rng_make(g_seed + 7);
    lg_test_fill_uniform(&rng, w, 108, -1, 1);
    const lg_backend *bes[2] = {lg_backend_cpu(), g_cuda};
    float sig[2];
    lg_toep_state st[2];
    lg_ctx *ctx[2];
    for (int b = 0; b < 2; b++) {
        CHECK_OK(lg_ctx_create(&ctx[b], bes[b]));
        CHECK_OK(lg_toep_init(&st[b], bes[b], 3, 8, 8, g_seed));
        st[b].n_iter = 20;
        lg_tensor *wt = lg_from_host(ctx[b], w, 4, sh);
        lg_tensor *s = lg_toep_sigma_tensor(ctx[b], &st[b], wt, 2, 1, 1);
        CHECK(s != NULL, "toeplitz: %s", lg_error_msg());
        sig[b] = s ? lg_item(ctx[b], s) : NAN;
    }
    CHECK(fabsf(sig[0] - sig[1]) <= 1e-4f * sig[0], "Toeplitz sigma cpu %g cuda %g", (double)sig[0],
          (double)sig[1]);
    cmp(bes[1], st[1].u, bes[0], st[0].u, 3 * 64, "Toeplitz u");
    for (int b = 0; b < 2; b++) {
        lg_toep_free(&st[b]);
        lg_ctx_free(ctx[b]);
    }
}

static void test_buffers(void) {
    const lg_backend *cpu = lg_backend_cpu();
    const int64_t sh[4] = {3, 4, 2, 2}; /* convT layout, out_dim 1 */
    float g[48], w[48];
    lg_test_rng rng = lg_test_rng_make(g_seed + 9);
    lg_test_fill_uniform(&rng, g, 48, -1, 1);
    for (int i = 0; i < 4; i++) g[i * 4] += 3.0f; /* a dominant direction: clamping happens */
    lg_test_fill_uniform(&rng, w, 48, -1, 1);
    float *gd = lg_buffer_alloc(g_cuda, 48), *wd = lg_buffer_alloc(g_cuda, 48);
    float gc[48], wc[48], back[48];
    memcpy(gc, g, sizeof g);
    memcpy(wc, w, sizeof w);
    g_cuda->upload(gd, g, 48);
    g_cuda->upload(wd, w, 48);
    lg_gclamp_state a, b;
    CHECK_OK(lg_gclamp_init(&a, cpu, 4, sh, 1, 1.5f, g_seed));
    CHECK_OK(lg_gclamp_init(&b, g_cuda, 4, sh, 1, 1.5f, g_seed));
    a.n_iter = b.n_iter = 30;
    CHECK_OK(lg_gclamp_apply(&a, gc));
    CHECK_OK(lg_gclamp_apply(&b, gd));
    CHECK_OK(lg_gclamp_read(&a));
    CHECK_OK(lg_gclamp_read(&b));
    CHECK(a.clamped && b.clamped, "clamped cpu %d cuda %d", a.clamped, b.clamped);
    g_cuda->download(back, gd, 48);
    lg_test_close(back, gc, 48, ATOL, RTOL, "gradient clamping");
    lg_gclamp_free(&a);
    lg_gclamp_free(&b);

    CHECK_OK(lg_sr_apply(cpu, wc, 4, sh, 1, 0.5f, 0, NULL));
    CHECK_OK(lg_sr_apply(g_cuda, wd, 4, sh, 1, 0.5f, 0, NULL));
    g_cuda->download(back, wd, 48);
    lg_test_close(back, wc, 48, 1e-6, 1e-5, "SR");
    lg_clip_weights(cpu, wc, 48, 0.1f);
    lg_clip_weights(g_cuda, wd, 48, 0.1f);
    g_cuda->download(back, wd, 48);
    CHECK(memcmp(back, wc, sizeof wc) == 0, "weight clipping differs");
    lg_buffer_free(g_cuda, gd);
    lg_buffer_free(g_cuda, wd);
}

/* SR on a weight large enough for the CUDA backend's own SVD (cuSOLVER,
 * float) against the CPU's LAPACK path (double): the SN-GAN D's 3x3
 * convolution, static and dynamic (three applications, so the recorded
 * spectrum is used). Bar: relative L2 1e-4 (float SVD: the top-gamma
 * subspace is determined to ~eps * s / gap). */
static void test_sr_device(void) {
    const lg_backend *cpu = lg_backend_cpu();
    const int64_t sh[4] = {128, 128, 3, 3};
    const size_t n = 128 * 128 * 9;
    float *w = malloc(n * sizeof *w), *back = malloc(n * sizeof *back);
    lg_test_rng rng = lg_test_rng_make(g_seed + 31);
    lg_test_fill_uniform(&rng, w, n, -0.05f, 0.05f);
    for (int dyn = 0; dyn < 2; dyn++) {
        float *wc = malloc(n * sizeof *wc), *wd = lg_buffer_alloc(g_cuda, n);
        memcpy(wc, w, n * sizeof *wc);
        g_cuda->upload(wd, w, n);
        lg_sr_state sa, sb;
        memset(&sa, 0, sizeof sa);
        memset(&sb, 0, sizeof sb);
        for (int k = 0; k < 1 + 2 * dyn; k++) {
            CHECK_OK(lg_sr_apply(cpu, wc, 4, sh, 0, 0.5f, dyn, dyn ? &sa : NULL));
            CHECK_OK(lg_sr_apply(g_cuda, wd, 4, sh, 0, 0.5f, dyn, dyn ? &sb : NULL));
        }
        g_cuda->download(back, wd, n);
        double num = 0, den = 0;
        for (size_t i = 0; i < n; i++) {
            double d = (double)back[i] - wc[i];
            num += d * d;
            den += (double)wc[i] * wc[i];
        }
        double rel = sqrt(num / den);
        printf("  SR %s on 128x1152 (cuSOLVER vs LAPACK): rel L2 %.2e\n",
               dyn ? "dynamic, 3 times" : "static", rel);
        CHECK(rel <= 1e-4, "SR %s on 128x1152: cuda vs cpu rel L2 %.3e > 1e-4",
              dyn ? "dynamic" : "static", rel);
        if (dyn)
            CHECK(sa.n == sb.n && sa.have_ref && sb.have_ref, "SR dynamic state n %lld / %lld",
                  (long long)sa.n, (long long)sb.n);
        lg_sr_free(&sa);
        lg_sr_free(&sb);
        free(wc);
        lg_buffer_free(g_cuda, wd);
    }
    free(w);
    free(back);
}

typedef struct gp_user {
    lg_sn_state sc, sl;
    lg_tensor *p[4];
} gp_user;

static lg_tensor *critic(lg_ctx *ctx, lg_tensor *x, void *user) {
    gp_user *u = user;
    lg_tensor *h = lg_leaky_relu(
        ctx, lg_conv2d(ctx, x, lg_sn_weight(ctx, &u->sc, u->p[0], 0, 1), u->p[1], 1, 1), 0.2f);
    return lg_linear(ctx, lg_flatten(ctx, h), lg_sn_weight(ctx, &u->sl, u->p[2], 0, 1), u->p[3]);
}

static void test_gp(void) {
    enum { N = 4, C = 3, H = 6, OC = 5 };
    float cw[OC * C * 9], cb[OC], lw[OC * H * H], lb[1] = {0.1f}, real[N * C * H * H],
        fake[N * C * H * H], eps[N];
    lg_test_rng rng = lg_test_rng_make(g_seed + 11);
    lg_test_fill_uniform(&rng, cw, sizeof cw / 4, -0.5f, 0.5f);
    lg_test_fill_uniform(&rng, cb, OC, -0.2f, 0.2f);
    lg_test_fill_uniform(&rng, lw, sizeof lw / 4, -0.3f, 0.3f);
    lg_test_fill_uniform(&rng, real, sizeof real / 4, -1, 1);
    lg_test_fill_uniform(&rng, fake, sizeof fake / 4, -1, 1);
    lg_test_fill_uniform(&rng, eps, N, 0, 1);
    const int64_t shp[4][4] = {{OC, C, 3, 3}, {OC}, {1, OC * H * H}, {1}};
    const int nd[4] = {4, 1, 2, 1};
    float *ph[4] = {cw, cb, lw, lb};
    const lg_backend *bes[2] = {lg_backend_cpu(), g_cuda};
    float pen[2];
    float *gh[2][4];
    for (int b = 0; b < 2; b++) {
        lg_ctx *ctx;
        CHECK_OK(lg_ctx_create(&ctx, bes[b]));
        gp_user u;
        CHECK_OK(lg_sn_init(&u.sc, bes[b], OC, C * 9, g_seed));
        CHECK_OK(lg_sn_init(&u.sl, bes[b], 1, OC * H * H, g_seed + 1));
        for (int i = 0; i < 4; i++) u.p[i] = lg_test_tensor(ctx, ph[i], nd[i], shp[i], 1);
        const int64_t xs[4] = {N, C, H, H}, es[4] = {N, 1, 1, 1};
        lg_tensor *p = lg_gradient_penalty(ctx, critic, &u, lg_from_host(ctx, real, 4, xs),
                                           lg_from_host(ctx, fake, 4, xs),
                                           lg_from_host(ctx, eps, 4, es), 10.0f, LG_GP_TWO_SIDED);
        CHECK(p != NULL, "gp: %s", lg_error_msg());
        pen[b] = p ? lg_item(ctx, p) : NAN;
        lg_tensor *g[4] = {0};
        CHECK_OK(p ? lg_grad(ctx, p, NULL, 4, u.p, g, 0) : lg_ctx_status(ctx));
        for (int i = 0; i < 4; i++)
            gh[b][i] = g[i] ? host_of(bes[b], g[i]->data, (size_t)g[i]->numel) : calloc(400, 4);
        lg_sn_free(&u.sc);
        lg_sn_free(&u.sl);
        lg_ctx_free(ctx);
    }
    CHECK(fabsf(pen[0] - pen[1]) <= 3e-4f * fabsf(pen[0]) + 1e-6f, "GP cpu %g cuda %g",
          (double)pen[0], (double)pen[1]);
    const size_t cnt[4] = {sizeof cw / 4, OC, sizeof lw / 4, 1};
    const char *names[4] = {"GP d/dconv_w", "GP d/dconv_b", "GP d/dlin_w", "GP d/dlin_b"};
    for (int i = 0; i < 4; i++) {
        lg_test_close(gh[1][i], gh[0][i], cnt[i], 3e-5, 3e-4, names[i]);
        free(gh[0][i]);
        free(gh[1][i]);
    }
}

int main(void) {
    int rc;
    if (!(g_cuda = gpu_test_backend("test_lipschitz_cuda", &rc))) return rc;
    g_seed = gpu_test_seed(12345);
    printf("seed %llu\n", (unsigned long long)g_seed);
    LG_TEST_RUN(test_sn);
    LG_TEST_RUN(test_toeplitz);
    LG_TEST_RUN(test_buffers);
    LG_TEST_RUN(test_sr_device);
    LG_TEST_RUN(test_gp);
    return lg_test_summary("test_lipschitz_cuda");
}
