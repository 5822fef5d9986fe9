/* The Lipschitz toolkit against independent references: LAPACK SVDs of
 * matrices with known spectra, explicitly built convolution (Toeplitz)
 * matrices, closed-form results, and finite differences. PyTorch reference
 * vectors are in test_lipschitz_ref.c, the seed-001 demonstrations in
 * test_lipschitz_demo.c. */
#include <lapacke.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "lg_test.h"
#include "lipgan/lipschitz.h"
#include "lipgan/ops.h"

/* ---- helpers ---- */

/* A (rows, cols) host matrix U diag(s) V^T with random orthonormal U, V
 * (QR of Gaussian matrices); s has min(rows, cols) entries. */
static void make_matrix(int rows, int cols, const double *s, uint64_t seed, float *out) {
    int n = rows < cols ? rows : cols;
    lg_test_rng r = lg_test_rng_make(seed);
    double *q1 = malloc(sizeof(double) * rows * n), *q2 = malloc(sizeof(double) * cols * n);
    double tau[64];
    LG_ASSERT(q1 && q2 && n <= 64);
    for (int i = 0; i < rows * n; i++) q1[i] = lg_test_uniform(&r, -1.0f, 1.0f);
    for (int i = 0; i < cols * n; i++) q2[i] = lg_test_uniform(&r, -1.0f, 1.0f);
    LG_ASSERT(LAPACKE_dgeqrf(LAPACK_ROW_MAJOR, rows, n, q1, n, tau) == 0);
    LG_ASSERT(LAPACKE_dorgqr(LAPACK_ROW_MAJOR, rows, n, n, q1, n, tau) == 0);
    LG_ASSERT(LAPACKE_dgeqrf(LAPACK_ROW_MAJOR, cols, n, q2, n, tau) == 0);
    LG_ASSERT(LAPACKE_dorgqr(LAPACK_ROW_MAJOR, cols, n, n, q2, n, tau) == 0);
    for (int i = 0; i < rows; i++)
        for (int j = 0; j < cols; j++) {
            double acc = 0.0;
            for (int k = 0; k < n; k++) acc += q1[i * n + k] * s[k] * q2[j * n + k];
            out[i * cols + j] = (float)acc;
        }
    free(q1);
    free(q2);
}

static double rel(double a, double b) { return fabs(a - b) / fabs(b); }

static double exact_sigma(const float *a, int64_t rows, int64_t cols) {
    int64_t n = rows < cols ? rows : cols;
    double *s = malloc(sizeof(double) * n);
    LG_ASSERT(s);
    CHECK_OK(lg_svd_values(a, rows, cols, s));
    double r = s[0];
    free(s);
    return r;
}

/* sigma of a host (rows, cols) matrix through an SN state and the graph op */
static double sn_sigma_of(const float *w, int ndim, const int64_t *shape, int out_dim,
                          int n_iter, uint64_t seed) {
    int64_t rows, cols;
    CHECK_OK(lg_weight_mat_dims(ndim, shape, out_dim, &rows, &cols));
    lg_ctx *ctx;
    CHECK_OK(lg_ctx_create(&ctx, NULL));
    lg_sn_state sn;
    CHECK_OK(lg_sn_init(&sn, NULL, rows, cols, seed));
    sn.n_iter = n_iter;
    lg_tensor *wt = lg_from_host(ctx, w, ndim, shape);
    lg_tensor *s = lg_sn_sigma_tensor(ctx, &sn, wt, out_dim, 1);
    CHECK(s != NULL, "sn sigma failed: %s", lg_error_msg());
    double r = s ? lg_item(ctx, s) : NAN;
    CHECK(fabs(lg_sn_sigma(&sn) - r) <= 0.0, "st->sigma %g differs from the tensor %g",
          (double)lg_sn_sigma(&sn), r);
    lg_sn_free(&sn);
    lg_ctx_free(ctx);
    return r;
}

/* ---- power iteration ---- */

static void test_power_iteration_vs_svd(void) {
    enum { R = 20, C = 12 };
    float a[R * C];
    double s[C];
    /* random Gaussian-like */
    lg_test_rng r = lg_test_rng_make(7);
    lg_test_fill_uniform(&r, a, R * C, -1.0f, 1.0f);
    double ex = exact_sigma(a, R, C);
    double pi = lg_power_sigma(a, R, C, 300, 1);
    CHECK(rel(pi, ex) < 1e-5, "random: power %.8g vs SVD %.8g", pi, ex);
    double sn = sn_sigma_of(a, 2, (int64_t[]){R, C}, 0, 300, 1);
    CHECK(rel(sn, ex) < 1e-5, "random via SN state: %.8g vs SVD %.8g", sn, ex);

    /* rank-deficient: rank 3 */
    for (int i = 0; i < C; i++) s[i] = i < 3 ? 3.0 - 0.7 * i : 0.0;
    make_matrix(R, C, s, 11, a);
    ex = exact_sigma(a, R, C);
    CHECK(rel(ex, 3.0) < 1e-5, "constructed spectrum: SVD %.8g, want 3", ex);
    pi = lg_power_sigma(a, R, C, 200, 2);
    CHECK(rel(pi, ex) < 1e-5, "rank-deficient: power %.8g vs SVD %.8g", pi, ex);
    sn = sn_sigma_of(a, 2, (int64_t[]){R, C}, 0, 200, 2);
    CHECK(rel(sn, ex) < 1e-5, "rank-deficient via SN state: %.8g vs SVD %.8g", sn, ex);

    /* ill-conditioned: s_i = 10^-i (condition number 1e11, s2/s1 = 0.1) */
    for (int i = 0; i < C; i++) s[i] = pow(10.0, -i);
    make_matrix(R, C, s, 13, a);
    ex = exact_sigma(a, R, C);
    pi = lg_power_sigma(a, R, C, 50, 3);
    CHECK(rel(pi, ex) < 1e-6, "ill-conditioned: power %.8g vs SVD %.8g", pi, ex);

    /* convergence: sigma_k approaches sigma from below; error shrinks like
     * (s2/s1)^(2k); here s2/s1 = 0.9 */
    for (int i = 0; i < C; i++) s[i] = i == 0 ? 1.0 : 0.9 / (1 + i * 0.1);
    make_matrix(R, C, s, 17, a);
    double prev = INFINITY;
    int iters[] = {1, 3, 10, 30, 100, 300};
    for (int k = 0; k < 6; k++) {
        double e = lg_power_sigma(a, R, C, iters[k], 4);
        double err = 1.0 - e; /* sigma = 1 */
        CHECK(err > -1e-6, "%d iterations: estimate %.8g above sigma 1", iters[k], e);
        CHECK(err <= prev + 1e-7, "%d iterations: error %.3g grew from %.3g", iters[k], err, prev);
        prev = err;
    }
    CHECK(prev < 1e-6, "300 iterations with gap 0.9: error %.3g", prev);
}

/* the (pre, rows, post) path: a transposed-conv weight with out_dim 1 */
static void test_weight_views(void) {
    const int64_t shape[4] = {3, 4, 2, 2}; /* (in, out, kh, kw) */
    float w[48], mat[48], back[48];
    lg_test_rng r = lg_test_rng_make(5);
    lg_test_fill_uniform(&r, w, 48, -1.0f, 1.0f);
    int64_t rows, cols;
    CHECK_OK(lg_weight_mat_dims(4, shape, 1, &rows, &cols));
    CHECK(rows == 4 && cols == 12, "convT view %lldx%lld, want 4x12", (long long)rows,
          (long long)cols);
    lg_weight_to_mat(w, 4, shape, 1, mat);
    /* W_mat[o, i*4 + k] = w[i, o, k] (PyTorch's permute(1, 0, 2, 3)) */
    CHECK(mat[2 * 12 + 1 * 4 + 3] == w[1 * 16 + 2 * 4 + 3], "convT matrix layout");
    lg_weight_from_mat(mat, 4, shape, 1, back);
    CHECK(memcmp(w, back, sizeof w) == 0, "to_mat/from_mat round trip");
    double ex = exact_sigma(mat, 4, 12);
    double sn = sn_sigma_of(w, 4, shape, 1, 200, 9);
    CHECK(rel(sn, ex) < 1e-5, "convT SN sigma %.8g vs SVD of the permuted matrix %.8g", sn, ex);
    CHECK_STATUS(lg_weight_mat_dims(4, shape, 4, &rows, &cols), LG_ERR_SHAPE);
    CHECK_STATUS(lg_weight_mat_dims(1, shape, 0, &rows, &cols), LG_ERR_SHAPE);
}

/* ---- SN: eval mode, gradient, errors ---- */

static void test_sn_eval_mode(void) {
    enum { R = 6, C = 5 };
    float w[R * C], u[R], v[C], u2[R], v2[C];
    lg_test_rng r = lg_test_rng_make(21);
    lg_test_fill_uniform(&r, w, R * C, -1.0f, 1.0f);
    lg_ctx *ctx;
    CHECK_OK(lg_ctx_create(&ctx, NULL));
    const int64_t shape[2] = {R, C};

    /* evaluation before any training step: primes with LG_SN_PRIME_ITERS,
     * exactly like a training forward with that many iterations */
    lg_sn_state a, b;
    CHECK_OK(lg_sn_init(&a, NULL, R, C, 3));
    CHECK_OK(lg_sn_init(&b, NULL, R, C, 3));
    b.n_iter = LG_SN_PRIME_ITERS;
    lg_tensor *wt = lg_from_host(ctx, w, 2, shape);
    lg_tensor *sa = lg_sn_sigma_tensor(ctx, &a, wt, 0, 0);
    lg_tensor *sb = lg_sn_sigma_tensor(ctx, &b, wt, 0, 1);
    CHECK(sa && sb, "sigma: %s", lg_error_msg());
    CHECK(a.primed == 1, "eval on a fresh state must prime it");
    float fa = lg_item(ctx, sa), fb = lg_item(ctx, sb);
    CHECK(fa == fb, "eval-before-training sigma %.9g != primed training sigma %.9g", fa, fb);
    double ex = exact_sigma(w, R, C);
    CHECK(fa > 0.0f && rel(fa, ex) < 1e-2, "eval-before-training sigma %g vs exact %g", fa, ex);

    /* after that, eval uses u, v unchanged, bit for bit */
    memcpy(u, a.u, sizeof u);
    memcpy(v, a.v, sizeof v);
    for (int i = 0; i < R * C; i++) w[i] += 0.1f * lg_test_uniform(&r, -1.0f, 1.0f);
    lg_ctx_reset(ctx);
    wt = lg_from_host(ctx, w, 2, shape);
    lg_tensor *wn = lg_sn_weight(ctx, &a, wt, 0, 0);
    CHECK(wn != NULL, "sn weight: %s", lg_error_msg());
    CHECK(memcmp(u, a.u, sizeof u) == 0 && memcmp(v, a.v, sizeof v) == 0,
          "eval mode changed u or v");
    double sig = 0.0; /* u^T W v on the host */
    for (int i = 0; i < R; i++)
        for (int j = 0; j < C; j++) sig += (double)u[i] * w[i * C + j] * v[j];
    float got[R * C];
    lg_to_host(ctx, wn, got);
    float want[R * C];
    for (int i = 0; i < R * C; i++) want[i] = (float)(w[i] / sig);
    lg_test_close(got, want, R * C, 1e-6, 1e-5, "eval W/sigma with stored u, v");
    CHECK(rel(lg_sn_sigma(&a), sig) < 1e-5, "monitored sigma %g vs %g", (double)lg_sn_sigma(&a),
          sig);

    /* training mode updates them: one iteration from (u, v) */
    lg_tensor *wn2 = lg_sn_weight(ctx, &a, wt, 0, 1);
    CHECK(wn2 != NULL, "sn weight: %s", lg_error_msg());
    memcpy(u2, a.u, sizeof u2);
    memcpy(v2, a.v, sizeof v2);
    CHECK(memcmp(u, u2, sizeof u) != 0, "training mode did not update u");
    double vv[C], uu[R], nv = 0, nu = 0; /* v = W^T u / |.|, u = W v / |.| from stored u */
    for (int j = 0; j < C; j++) {
        vv[j] = 0;
        for (int i = 0; i < R; i++) vv[j] += (double)w[i * C + j] * u[i];
        nv += vv[j] * vv[j];
    }
    for (int i = 0; i < R; i++) {
        uu[i] = 0;
        for (int j = 0; j < C; j++) uu[i] += (double)w[i * C + j] * vv[j] / sqrt(nv);
        nu += uu[i] * uu[i];
    }
    float uref[R], vref[C];
    for (int i = 0; i < R; i++) uref[i] = (float)(uu[i] / sqrt(nu));
    for (int j = 0; j < C; j++) vref[j] = (float)(vv[j] / sqrt(nv));
    lg_test_close(u2, uref, R, 1e-6, 1e-5, "u after one iteration");
    lg_test_close(v2, vref, C, 1e-6, 1e-5, "v after one iteration");

    /* gradient of sigma is u v^T (to W only) */
    lg_ctx_reset(ctx);
    wt = lg_test_tensor(ctx, w, 2, shape, 1);
    lg_tensor *st = lg_sn_sigma_tensor(ctx, &a, wt, 0, 0);
    lg_tensor *gw = NULL;
    CHECK_OK(lg_grad(ctx, st, NULL, 1, &wt, &gw, 0));
    float g[R * C], uv[R * C];
    lg_to_host(ctx, gw, g);
    for (int i = 0; i < R; i++)
        for (int j = 0; j < C; j++) uv[i * C + j] = a.u[i] * a.v[j];
    lg_test_close(g, uv, R * C, 1e-7, 1e-6, "d sigma / dW = u v^T");

    /* wrong shape: sticky error, NULL */
    lg_ctx_reset(ctx);
    lg_tensor *bad = lg_new2(ctx, C, R);
    CHECK(lg_sn_weight(ctx, &a, bad, 0, 1) == NULL, "mismatched weight accepted");
    CHECK(lg_ctx_status(ctx) == LG_ERR_SHAPE, "status %s", lg_status_str(lg_ctx_status(ctx)));
    lg_sn_free(&a);
    lg_sn_free(&b);
    lg_ctx_free(ctx);
}

/* SN composes with a gradient penalty: second derivatives through W/sigma */
typedef struct sn_user {
    lg_sn_state *sn;
    int out_dim;
} sn_user;

static lg_tensor *f_sn_linear(lg_ctx *ctx, lg_tensor **in, void *user) {
    sn_user *u = user; /* y = tanh(x (W/sigma)^T + b) */
    return lg_tanh(ctx, lg_linear(ctx, in[0], lg_sn_weight(ctx, u->sn, in[1], 0, 0), in[2]));
}

static lg_tensor *f_sn_convt(lg_ctx *ctx, lg_tensor **in, void *user) {
    sn_user *u = user;
    return lg_tanh(ctx, lg_conv_transpose2d(ctx, in[0], lg_sn_weight(ctx, u->sn, in[1], 1, 0),
                                            NULL, 2, 1, 0));
}

/* W^T u exactly 0 (weights of exactly cancelling values, as clipping to
 * +-c makes them): without keep_zero v becomes 0, sigma 0 and W/sigma NaN
 * (as torch.nn.utils.spectral_norm); with it, v keeps its previous value and
 * sigma stays the positive u^T W v. Where nothing is 0, keep_zero changes
 * no bit. */
/* A 2x2 SN state on the CPU, primed, with keep_zero as given (the u and v
 * values are set by the caller). */
static void sn_state_2x2(lg_sn_state *st, int keep) {
    CHECK_OK(lg_sn_init(st, NULL, 2, 2, 5));
    st->keep_zero = keep;
    st->primed = 1;
}

/* A pass without power iteration (update 0) whose stored vectors give
 * u^T W v = 0 exactly: without keep_zero sigma is 0 and W / sigma infinite
 * (the update is then skipped); with it the last stored sigma stands in,
 * and the gradient through the normalized weight stays finite. */
static void test_sn_keep_zero_no_iteration(void) {
    enum { R = 2, C = 2 };
    const float w[R * C] = {0.25f, 0.0f, 0.0f, 0.25f}; /* u = e0, v = e1: u^T W v = 0 */
    const int64_t shape[2] = {R, C};
    lg_ctx *ctx;
    CHECK_OK(lg_ctx_create(&ctx, NULL));
    for (int keep = 0; keep < 2; keep++) {
        lg_sn_state st;
        sn_state_2x2(&st, keep);
        st.u[0] = 1.0f, st.u[1] = 0.0f;
        st.v[0] = 0.0f, st.v[1] = 1.0f;
        st.sigma[0] = 0.5f; /* what the last updating pass stored */
        lg_ctx_reset(ctx);
        lg_tensor *wt = lg_from_host(ctx, w, 2, shape);
        if (wt) wt->requires_grad = 1;
        lg_tensor *wn = lg_sn_weight(ctx, &st, wt, 0, 0);
        lg_tensor *g = NULL;
        CHECK(wn && lg_grad(ctx, lg_sum(ctx, wn), NULL, 1, &wt, &g, 0) == LG_OK, "sn: %s", lg_error_msg());
        float got[R * C] = {0}, dg[R * C] = {0};
        if (wn) lg_to_host(ctx, wn, got);
        if (g) lg_to_host(ctx, g, dg);
        float sig = lg_sn_sigma(&st);
        if (!keep) {
            CHECK(sig == 0.0f && !isfinite(got[0]), "without keep_zero: sigma %g, W/sigma %g", sig, got[0]);
        } else {
            int fin = 1;
            for (int i = 0; i < R * C; i++) fin &= isfinite(dg[i]);
            CHECK(sig == 0.5f && got[0] == 0.5f && got[3] == 0.5f && got[1] == 0.0f && fin,
                  "keep_zero: sigma %g (want the stored 0.5), W/sigma (%g, %g, %g, %g), finite gradient %d",
                  sig, got[0], got[1], got[2], got[3], fin);
        }
        lg_sn_free(&st);
    }
    lg_ctx_free(ctx);
}

static void test_sn_keep_zero(void) {
    enum { R = 2, C = 2 };
    /* W^T u = 0 exactly, with products exact in float so that no FMA
     * leaves a residual */
    const float w[R * C] = {0.25f, 0.0f, 0.25f, 0.0f};
    const int64_t shape[2] = {R, C};
    lg_ctx *ctx;
    CHECK_OK(lg_ctx_create(&ctx, NULL));
    for (int keep = 0; keep < 2; keep++) {
        lg_sn_state st;
        sn_state_2x2(&st, keep);
        st.u[0] = 0.5f, st.u[1] = -0.5f;
        float v0[C] = {st.v[0], st.v[1]};
        lg_ctx_reset(ctx);
        lg_tensor *wn = lg_sn_weight(ctx, &st, lg_from_host(ctx, w, 2, shape), 0, 1);
        CHECK(wn != NULL, "sn weight: %s", lg_error_msg());
        float got[R * C] = {0};
        if (wn) lg_to_host(ctx, wn, got);
        float sig = lg_sn_sigma(&st);
        if (!keep) {
            CHECK(sig == 0.0f && !isfinite(got[0]), "without keep_zero: sigma %g, W/sigma %g (the PyTorch failure)",
                  sig, got[0]);
        } else {
            CHECK(st.v[0] == v0[0] && st.v[1] == v0[1], "v changed to (%g, %g) from (%g, %g)", st.v[0], st.v[1],
                  v0[0], v0[1]);
            double want = 0.25 * fabs((double)v0[0]) * sqrt(2.0); /* ||W v0||: u = W v0 / |.| */
            CHECK(isfinite(got[0]) && rel(sig, want) < 1e-5, "keep_zero: sigma %g (want %g), W/sigma %g", sig,
                  want, got[0]);
        }
        lg_sn_free(&st);
    }
    /* a generic W: the same bits with and without keep_zero */
    enum { R2 = 5, C2 = 4 };
    float w2[R2 * C2];
    lg_test_rng r = lg_test_rng_make(33);
    lg_test_fill_uniform(&r, w2, R2 * C2, -1.0f, 1.0f);
    lg_sn_state a, b;
    CHECK_OK(lg_sn_init(&a, NULL, R2, C2, 8));
    CHECK_OK(lg_sn_init(&b, NULL, R2, C2, 8));
    b.keep_zero = 1;
    for (int it = 0; it < 3; it++) {
        lg_ctx_reset(ctx);
        lg_tensor *wt = lg_from_host(ctx, w2, 2, (int64_t[]){R2, C2});
        CHECK(lg_sn_weight(ctx, &a, wt, 0, 1) && lg_sn_weight(ctx, &b, wt, 0, 1), "sn: %s", lg_error_msg());
        /* and a pass without iteration: the same normalized weight */
        lg_tensor *na = lg_sn_weight(ctx, &a, wt, 0, 0), *nb = lg_sn_weight(ctx, &b, wt, 0, 0);
        float ha[R2 * C2] = {0}, hb[R2 * C2] = {0};
        if (na && nb) lg_to_host(ctx, na, ha), lg_to_host(ctx, nb, hb);
        CHECK(na && nb && !memcmp(ha, hb, sizeof ha), "keep_zero changed a pass without iteration");
    }
    CHECK(memcmp(a.u, b.u, sizeof(float) * R2) == 0 && memcmp(a.v, b.v, sizeof(float) * C2) == 0 &&
              lg_sn_sigma(&a) == lg_sn_sigma(&b),
          "keep_zero changed a generic power iteration");
    lg_sn_free(&a);
    lg_sn_free(&b);
    lg_ctx_free(ctx);
}

static void test_sn_gradcheck(void) {
    float x[3 * 4], w[5 * 4], b[5];
    lg_test_rng r = lg_test_rng_make(31);
    lg_test_fill_uniform(&r, x, 12, -1.0f, 1.0f);
    lg_test_fill_uniform(&r, w, 20, -1.0f, 1.0f);
    lg_test_fill_uniform(&r, b, 5, -0.5f, 0.5f);
    lg_sn_state sn;
    CHECK_OK(lg_sn_init(&sn, NULL, 5, 4, 1));
    sn.primed = 0; /* first evaluation primes; then u, v stay fixed */
    sn_user u = {&sn, 0};
    lg_gc_input in[3] = {lg_gc_in("x", x, 2, 3, 4, 0, 0), lg_gc_in("w", w, 2, 5, 4, 0, 0),
                         lg_gc_in("b", b, 1, 5, 0, 0, 0)};
    lg_gc_opts o1 = {.order = 1, .eps = 1e-2};
    CHECK(lg_gradcheck("SN linear, first order", f_sn_linear, &u, 3, in, &o1) == 0,
          "SN linear gradient");
    lg_gc_opts o2 = {.order = 2, .x0 = 0, .eps = 1e-2};
    CHECK(lg_gradcheck("SN linear, second order (GP structure)", f_sn_linear, &u, 3, in, &o2) ==
              0,
          "SN linear second-order gradient");
    lg_sn_free(&sn);

    /* transposed conv, out_dim 1 */
    float xc[1 * 2 * 2 * 2], wc[2 * 3 * 4 * 4];
    lg_test_fill_uniform(&r, xc, 8, -1.0f, 1.0f);
    lg_test_fill_uniform(&r, wc, 96, -0.5f, 0.5f);
    CHECK_OK(lg_sn_init(&sn, NULL, 3, 2 * 16, 2));
    sn_user uc = {&sn, 1};
    lg_gc_input inc[2] = {lg_gc_in("x", xc, 4, 1, 2, 2, 2), lg_gc_in("w", wc, 4, 2, 3, 4, 4)};
    CHECK(lg_gradcheck("SN convT, second order", f_sn_convt, &uc, 2, inc, &o2) == 0,
          "SN convT second-order gradient");
    lg_sn_free(&sn);
}

/* ---- Toeplitz ---- */

/* T (nout, nin) of conv2d(x (c,h,w), w (oc,c,kh,kw)) built entry by entry */
static float *toeplitz_matrix(const float *w, int oc, int c, int kh, int kw, int h, int wd,
                              int stride, int pad, int *nout, int *nin) {
    int oh = (h + 2 * pad - kh) / stride + 1, ow = (wd + 2 * pad - kw) / stride + 1;
    *nout = oc * oh * ow;
    *nin = c * h * wd;
    float *t = calloc((size_t)*nout * *nin, sizeof(float));
    LG_ASSERT(t);
    for (int o = 0; o < oc; o++)
        for (int oy = 0; oy < oh; oy++)
            for (int ox = 0; ox < ow; ox++)
                for (int ci = 0; ci < c; ci++)
                    for (int ky = 0; ky < kh; ky++)
                        for (int kx = 0; kx < kw; kx++) {
                            int iy = oy * stride - pad + ky, ix = ox * stride - pad + kx;
                            if (iy < 0 || iy >= h || ix < 0 || ix >= wd) continue;
                            t[((size_t)(o * oh + oy) * ow + ox) * *nin + (ci * h + iy) * wd + ix] +=
                                w[((o * c + ci) * kh + ky) * kw + kx];
                        }
    return t;
}

static void test_toeplitz_vs_explicit(void) {
    struct {
        int oc, c, kh, kw, h, w, stride, pad;
    } cases[] = {
        {1, 1, 3, 3, 6, 6, 1, 0}, {2, 1, 3, 3, 6, 6, 1, 1}, {4, 3, 3, 3, 6, 6, 2, 1},
        {3, 2, 3, 3, 7, 7, 2, 0}, {2, 4, 4, 4, 8, 8, 2, 1}, {4, 2, 3, 2, 5, 6, 1, 1},
        {1, 3, 1, 1, 4, 4, 1, 0}, {3, 3, 3, 3, 3, 3, 1, 1},
    };
    lg_test_rng r = lg_test_rng_make(41);
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        int oc = cases[i].oc, c = cases[i].c, kh = cases[i].kh, kw = cases[i].kw;
        int h = cases[i].h, wd = cases[i].w, s = cases[i].stride, p = cases[i].pad;
        int nw = oc * c * kh * kw;
        float *w = malloc(sizeof(float) * nw);
        lg_test_fill_uniform(&r, w, (size_t)nw, -1.0f, 1.0f);
        int nout, nin;
        float *t = toeplitz_matrix(w, oc, c, kh, kw, h, wd, s, p, &nout, &nin);
        double ex = exact_sigma(t, nout, nin);
        lg_conv_norms cn;
        CHECK_OK(lg_conv_norms_compute(w, oc, c, kh, kw, h, wd, s, p, 3000, 0.0, 1, &cn));
        CHECK(rel(cn.op_norm, ex) < 1e-4,
              "case %zu (oc %d c %d k %dx%d in %dx%d s %d p %d): power %.7g vs explicit SVD %.7g",
              i, oc, c, kh, kw, h, wd, s, p, cn.op_norm, ex);
        double rk = exact_sigma(w, oc, c * kh * kw);
        CHECK(rel(cn.reshaped, rk) < 1e-6, "case %zu: reshaped %.7g vs %.7g", i, cn.reshaped, rk);
        int hp = h + 2 * p, wp = wd + 2 * p;
        int n = (kh < hp - kh + 1 ? kh : hp - kh + 1) * (kw < wp - kw + 1 ? kw : wp - kw + 1);
        CHECK(cn.n == n, "case %zu: n %d, want %d", i, cn.n, n);
        CHECK(cn.tsuzuku >= ex * (1 - 1e-6), "case %zu: Tsuzuku bound %.7g below sigma(T) %.7g", i,
              cn.tsuzuku, ex);

        /* the layer's state: the same operator norm through lg_toep_sigma_tensor */
        lg_ctx *ctx;
        CHECK_OK(lg_ctx_create(&ctx, NULL));
        lg_toep_state ts;
        CHECK_OK(lg_toep_init(&ts, NULL, c, h, wd, 5));
        ts.n_iter = 3000;
        lg_tensor *wt = lg_from_host(ctx, w, 4, (int64_t[]){oc, c, kh, kw});
        lg_tensor *sg = lg_toep_sigma_tensor(ctx, &ts, wt, s, p, 1);
        CHECK(sg != NULL, "toep sigma: %s", lg_error_msg());
        if (sg) CHECK(rel(lg_item(ctx, sg), ex) < 1e-4, "case %zu: state sigma %.7g vs %.7g", i,
                      (double)lg_item(ctx, sg), ex);
        /* normalized with k = 2: the explicit matrix of k W / sigma has norm k */
        lg_tensor *wn = lg_toep_weight(ctx, &ts, wt, s, p, 2.0f, 0);
        float *wnh = malloc(sizeof(float) * nw);
        lg_to_host(ctx, wn, wnh);
        float *t2 = toeplitz_matrix(wnh, oc, c, kh, kw, h, wd, s, p, &nout, &nin);
        double ex2 = exact_sigma(t2, nout, nin);
        CHECK(rel(ex2, 2.0) < 1e-4, "case %zu: operator norm after normalization %.7g, want 2", i,
              ex2);
        free(t2);
        free(wnh);
        lg_toep_free(&ts);
        lg_ctx_free(ctx);
        free(t);
        free(w);
    }
    lg_conv_norms cn;
    CHECK_STATUS(lg_conv_norms_compute((float[9]){0}, 1, 1, 3, 3, 1, 1, 1, 0, 10, 0, 1, &cn),
                 LG_ERR_SHAPE);
}

typedef struct toep_user {
    lg_toep_state *ts;
    float k;
} toep_user;

static lg_tensor *f_toep(lg_ctx *ctx, lg_tensor **in, void *user) {
    toep_user *u = user;
    return lg_tanh(ctx, lg_toep_conv2d(ctx, u->ts, in[0], in[1], in[2], 2, 1, u->k, 0));
}

static void test_toeplitz_layer(void) {
    enum { N = 2, C = 2, H = 5, OC = 3, K = 3 };
    float x[N * C * H * H], w[OC * C * K * K], b[OC];
    lg_test_rng r = lg_test_rng_make(43);
    lg_test_fill_uniform(&r, x, sizeof x / 4, -1.0f, 1.0f);
    lg_test_fill_uniform(&r, w, sizeof w / 4, -1.0f, 1.0f);
    lg_test_fill_uniform(&r, b, OC, -0.5f, 0.5f);
    lg_toep_state ts;
    CHECK_OK(lg_toep_init(&ts, NULL, C, H, H, 3));
    toep_user u = {&ts, 4.0f};
    lg_gc_input in[3] = {lg_gc_in("x", x, 4, N, C, H, H), lg_gc_in("w", w, 4, OC, C, K, K),
                         lg_gc_in("b", b, 1, OC, 0, 0, 0)};
    lg_gc_opts o1 = {.order = 1};
    CHECK(lg_gradcheck("Toeplitz conv, first order", f_toep, &u, 3, in, &o1) == 0,
          "Toeplitz conv gradient");
    lg_gc_opts o2 = {.order = 2, .x0 = 0};
    CHECK(lg_gradcheck("Toeplitz conv, second order", f_toep, &u, 3, in, &o2) == 0,
          "Toeplitz conv second-order gradient");

    /* the output is k * conv(x, W / sigma) + b, bias unscaled */
    lg_ctx *ctx;
    CHECK_OK(lg_ctx_create(&ctx, NULL));
    lg_tensor *xt = lg_from_host(ctx, x, 4, (int64_t[]){N, C, H, H});
    lg_tensor *wt = lg_from_host(ctx, w, 4, (int64_t[]){OC, C, K, K});
    lg_tensor *bt = lg_from_host(ctx, b, 1, (int64_t[]){OC});
    lg_tensor *y = lg_toep_conv2d(ctx, &ts, xt, wt, bt, 2, 1, 4.0f, 0);
    float sig = lg_toep_sigma(&ts);
    lg_tensor *yr = lg_conv2d(ctx, xt, lg_scale(ctx, wt, 4.0f / sig), bt, 2, 1);
    CHECK(y && yr, "conv: %s", lg_error_msg());
    float gy[N * OC * 3 * 3], gr[N * OC * 3 * 3];
    lg_to_host(ctx, y, gy);
    lg_to_host(ctx, yr, gr);
    lg_test_close(gy, gr, sizeof gy / 4, 1e-5, 1e-5, "Toeplitz layer output");
    /* an input of another size is refused */
    lg_tensor *x2 = lg_new4(ctx, 1, C, H + 1, H);
    CHECK(lg_toep_conv2d(ctx, &ts, x2, wt, bt, 2, 1, 1.0f, 1) == NULL, "wrong input size accepted");
    CHECK(lg_ctx_status(ctx) == LG_ERR_SHAPE, "status %s", lg_status_str(lg_ctx_status(ctx)));
    lg_ctx_free(ctx);
    lg_toep_free(&ts);
}

/* ---- SR ---- */

static void svals_of(const float *w, int ndim, const int64_t *shape, int out_dim, double *s) {
    int64_t rows, cols;
    CHECK_OK(lg_weight_mat_dims(ndim, shape, out_dim, &rows, &cols));
    float *m = malloc(sizeof(float) * rows * cols);
    lg_weight_to_mat(w, ndim, shape, out_dim, m);
    CHECK_OK(lg_svd_values(m, rows, cols, s));
    free(m);
}

static void test_sr(void) {
    enum { R = 5, C = 8 };
    const double s0[R] = {4.0, 3.0, 1.0, 0.5, 0.25};
    float w[R * C], w1[R * C];
    make_matrix(R, C, s0, 51, w);
    const int64_t shape[2] = {R, C};
    double s[R];

    /* gamma = floor(0.5 * 5) = 2 (the SR-GAN code's s[:n // 2] = 1):
     * spectrum (1, 1, 1/4, 0.5/4, 0.25/4) */
    memcpy(w1, w, sizeof w);
    CHECK_OK(lg_sr_apply(NULL, w1, 2, shape, 0, 0.5f, 0, NULL));
    svals_of(w1, 2, shape, 0, s);
    const double want[R] = {1, 1, 0.25, 0.125, 0.0625};
    for (int i = 0; i < R; i++)
        CHECK(fabs(s[i] - want[i]) < 2e-6, "SR s[%d] = %.8g, want %.8g", i, s[i], want[i]);
    /* 0.7f is 0.69999999, so 0.7f * 10 falls just short of 7: still 7 values
     * (a plain floor would give 6); 0.9f likewise */
    {
        enum { R2 = 10, C2 = 12 };
        double s10[R2];
        for (int i = 0; i < R2; i++) s10[i] = 10.0 - i;
        float w10[R2 * C2];
        double sv[R2];
        const float fr[2] = {0.7f, 0.9f};
        for (int k = 0; k < 2; k++) {
            make_matrix(R2, C2, s10, 59, w10);
            CHECK_OK(lg_sr_apply(NULL, w10, 2, (int64_t[]){R2, C2}, 0, fr[k], 0, NULL));
            svals_of(w10, 2, (int64_t[]){R2, C2}, 0, sv);
            for (int i = 0; i < R2; i++) {
                const double wi = i < 7 + 2 * k ? 1.0 : s10[i] / s10[0];
                CHECK(fabs(sv[i] - wi) < 2e-6, "SR(%g) s[%d] = %.8g, want %.8g", fr[k], i, sv[i], wi);
            }
        }
    }

    /* gamma = 1 is SN with the exact sigma: W / s1 elementwise */
    memcpy(w1, w, sizeof w);
    CHECK_OK(lg_sr_apply(NULL, w1, 2, shape, 0, 0.0f, 0, NULL));
    float sn[R * C];
    for (int i = 0; i < R * C; i++) sn[i] = w[i] / 4.0f;
    lg_test_close(w1, sn, R * C, 1e-6, 1e-5, "SR(gamma = 1) == W / sigma");
    memcpy(w1, w, sizeof w);
    CHECK_OK(lg_sr_apply(NULL, w1, 2, shape, 0, 1.0f / R, 0, NULL)); /* 1/n of the values */
    lg_test_close(w1, sn, R * C, 1e-6, 1e-5, "SR(gamma_frac = 1/n) == W / sigma");

    /* all values compensated: every singular value 1 */
    memcpy(w1, w, sizeof w);
    CHECK_OK(lg_sr_apply(NULL, w1, 2, shape, 0, 1.0f, 0, NULL));
    svals_of(w1, 2, shape, 0, s);
    for (int i = 0; i < R; i++) CHECK(fabs(s[i] - 1.0) < 2e-6, "SR(gamma = n) s[%d] = %.8g", i, s[i]);

    /* transposed-conv layout (out_dim 1): (in 2, out 3, 2, 2) -> W_mat 3 x 8 */
    const int64_t tshape[4] = {2, 3, 2, 2};
    const double ts0[3] = {2.0, 1.0, 0.1};
    float m[24], wt[24];
    make_matrix(3, 8, ts0, 53, m);
    lg_weight_from_mat(m, 4, tshape, 1, wt);
    CHECK_OK(lg_sr_apply(NULL, wt, 4, tshape, 1, 0.5f, 0, NULL)); /* gamma = floor(1.5) = 1 */
    svals_of(wt, 4, tshape, 1, s);
    CHECK(fabs(s[0] - 1) < 2e-6 && fabs(s[1] - 0.5) < 2e-6 && fabs(s[2] - 0.05) < 2e-6,
          "SR convT spectrum %.8g %.8g %.8g, want 1 0.5 0.05", s[0], s[1], s[2]);

    /* dynamic: keeps the elementwise max of the normalized spectra */
    lg_sr_state st = {0};
    memcpy(w1, w, sizeof w);
    CHECK_OK(lg_sr_apply(NULL, w1, 2, shape, 0, 0.0f, 1, &st)); /* records (1,.75,.25,.125,.0625) */
    CHECK(st.have_ref && st.n == R, "dynamic state not recorded");
    const double s2[R] = {8.0, 2.0, 2.0, 0.1, 0.1}; /* normalized (1, .25, .25, .0125, .0125) */
    float w2[R * C];
    make_matrix(R, C, s2, 55, w2);
    CHECK_OK(lg_sr_apply(NULL, w2, 2, shape, 0, 0.0f, 1, &st));
    svals_of(w2, 2, shape, 0, s);
    const double want2[R] = {1, 0.75, 0.25, 0.125, 0.0625};
    for (int i = 0; i < R; i++)
        CHECK(fabs(s[i] - want2[i]) < 2e-6, "dynamic SR s[%d] = %.8g, want %.8g", i, s[i], want2[i]);
    const double s3[R] = {1.0, 0.9, 0.8, 0.7, 0.6}; /* now above the record: it rises */
    make_matrix(R, C, s3, 57, w2);
    CHECK_OK(lg_sr_apply(NULL, w2, 2, shape, 0, 0.0f, 1, &st));
    svals_of(w2, 2, shape, 0, s);
    for (int i = 0; i < R; i++)
        CHECK(fabs(s[i] - s3[i]) < 2e-6 && fabs(st.ref[i] - s3[i]) < 1e-6,
              "dynamic SR raised s[%d] = %.8g (ref %.8g), want %.8g", i, s[i], (double)st.ref[i],
              s3[i]);
    float other[12];
    CHECK_STATUS(lg_sr_apply(NULL, other, 2, (int64_t[]){3, 4}, 0, 0.5f, 1, &st), LG_ERR_SHAPE);
    lg_sr_free(&st);

    float zero[R * C] = {0};
    CHECK_STATUS(lg_sr_apply(NULL, zero, 2, shape, 0, 0.5f, 0, NULL), LG_ERR_NONFINITE);
    CHECK_STATUS(lg_sr_apply(NULL, w1, 2, shape, 0, 1.5f, 0, NULL), LG_ERR_INVALID_ARG);
}

/* The SR path for backends with an `svd` entry (CUDA: cuSOLVER), run here
 * on the CPU backend given a LAPACK sgesvd as that entry: weights of
 * 65,536+ entries with rows <= cols take it, and must match the host path
 * (double SVD) to float-SVD accuracy, static and dynamic, for an odd row
 * count too. */
static lg_status svd_lapack(float *s, float *u, float *vt, float *a, int m, int n) {
    float *superb = malloc(sizeof(float) * (size_t)(n > 1 ? n - 1 : 1));
    lapack_int info = superb ? LAPACKE_sgesvd(LAPACK_COL_MAJOR, 'S', 'S', m, n, a, m, s, u, m,
                                              vt, n, superb)
                             : -1;
    free(superb);
    return info == 0 ? LG_OK : lg_error_set(LG_ERR_NONFINITE, "sgesvd info %d", (int)info);
}

static void test_sr_backend_svd(void) {
    lg_backend be = *lg_backend_cpu();
    be.svd = svd_lapack;
    const int64_t shapes[2][4] = {{64, 128, 3, 3}, {37, 1800, 1, 1}};
    lg_test_rng r = lg_test_rng_make(29);
    for (int k = 0; k < 2; k++) {
        size_t n = (size_t)(shapes[k][0] * shapes[k][1] * shapes[k][2] * shapes[k][3]);
        float *w = malloc(sizeof(float) * n), *wa = malloc(sizeof(float) * n);
        float *wb = malloc(sizeof(float) * n);
        lg_test_fill_uniform(&r, w, n, -0.05f, 0.05f);
        for (int dyn = 0; dyn < 2; dyn++) {
            memcpy(wa, w, sizeof(float) * n);
            memcpy(wb, w, sizeof(float) * n);
            lg_sr_state sa, sb;
            memset(&sa, 0, sizeof sa);
            memset(&sb, 0, sizeof sb);
            for (int rep = 0; rep < 1 + 2 * dyn; rep++) {
                CHECK_OK(lg_sr_apply(NULL, wa, 4, shapes[k], 0, 0.5f, dyn, dyn ? &sa : NULL));
                CHECK_OK(lg_sr_apply(&be, wb, 4, shapes[k], 0, 0.5f, dyn, dyn ? &sb : NULL));
            }
            double num = 0, den = 0;
            for (size_t i = 0; i < n; i++) {
                num += ((double)wb[i] - wa[i]) * ((double)wb[i] - wa[i]);
                den += (double)wa[i] * wa[i];
            }
            CHECK(sqrt(num / den) <= 1e-4, "SR through the backend's svd, shape %d, dynamic %d: "
                  "rel L2 %.3e from the host path", k, dyn, sqrt(num / den));
            CHECK(!dyn || (sa.n == sb.n && sb.have_ref), "dynamic state n %lld / %lld",
                  (long long)sa.n, (long long)sb.n);
            lg_sr_free(&sa);
            lg_sr_free(&sb);
        }
        free(w);
        free(wa);
        free(wb);
    }
}

static void test_clip(void) {
    float w[6] = {-3.0f, -0.5f, 0.0f, 0.25f, 0.01f, 7.0f};
    lg_clip_weights(NULL, w, 6, 0.01f);
    const float want[6] = {-0.01f, -0.01f, 0.0f, 0.01f, 0.01f, 0.01f};
    CHECK(memcmp(w, want, sizeof w) == 0, "clip to [-0.01, 0.01]: %g %g %g %g %g %g", w[0], w[1],
          w[2], w[3], w[4], w[5]);
}

/* ---- spectral gradient clamping ---- */

static void test_gclamp(void) {
    enum { R = 6, C = 5 };
    const int64_t shape[2] = {R, C};
    const double s0[C] = {10.0, 2.0, 1.0, 0.5, 0.1};
    float g[R * C], keep[R * C];
    double s[C];
    make_matrix(R, C, s0, 61, g);

    lg_gclamp_state st;
    CHECK_OK(lg_gclamp_init(&st, NULL, 2, shape, 0, 2.0f, 1));
    st.n_iter = 100;
    CHECK_OK(lg_gclamp_apply(&st, g));
    CHECK_OK(lg_gclamp_read(&st));
    CHECK(st.clamped == 1, "sigma0/sigma1 = 5 > 2 not clamped");
    CHECK(rel(st.sigma0, 10.0) < 1e-5 && rel(st.sigma1, 2.0) < 1e-4, "estimates %g %g, want 10 2",
          (double)st.sigma0, (double)st.sigma1);
    svals_of(g, 2, shape, 0, s);
    const double want[C] = {4.0, 2.0, 1.0, 0.5, 0.1};
    for (int i = 0; i < C; i++)
        CHECK(fabs(s[i] - want[i]) < 1e-4 * want[0], "clamped s[%d] = %.7g, want %.7g", i, s[i],
              want[i]);
    CHECK(s[0] <= 2.0 * s[1] + 1e-4, "sigma0 %.7g > r * sigma1 %.7g", s[0], 2.0 * s[1]);

    /* in ratio: untouched bit for bit */
    memcpy(keep, g, sizeof g);
    CHECK_OK(lg_gclamp_apply(&st, g));
    CHECK_OK(lg_gclamp_read(&st));
    CHECK(st.clamped == 0 && memcmp(keep, g, sizeof g) == 0,
          "gradient at the ratio was changed (clamped %d, sigma0 %g, sigma1 %g)", st.clamped,
          (double)st.sigma0, (double)st.sigma1);
    const double s1[C] = {3.0, 2.0, 1.0, 0.5, 0.1};
    make_matrix(R, C, s1, 63, g);
    memcpy(keep, g, sizeof g);
    CHECK_OK(lg_gclamp_apply(&st, g));
    CHECK_OK(lg_gclamp_read(&st));
    CHECK(st.clamped == 0 && memcmp(keep, g, sizeof g) == 0, "in-ratio gradient changed");
    lg_gclamp_free(&st);

    /* a (1, 8) weight has one singular value: its gradient is never
     * clamped (with sigma1 = 0 the rule would zero it) */
    {
        const int64_t row[2] = {1, 8};
        float g1[8], k1[8];
        for (int i = 0; i < 8; i++) g1[i] = k1[i] = (float)(i + 1) * 0.25f;
        lg_gclamp_state s1st;
        CHECK_OK(lg_gclamp_init(&s1st, NULL, 2, row, 0, 1.5f, 3));
        CHECK_OK(lg_gclamp_apply(&s1st, g1));
        CHECK_OK(lg_gclamp_read(&s1st));
        CHECK(s1st.single == 1 && s1st.clamped == 0 && memcmp(g1, k1, sizeof g1) == 0,
              "a one-row gradient was changed (clamped %d)", s1st.clamped);
        lg_gclamp_free(&s1st);
    }

    /* persistent vectors: one iteration per call converges across calls */
    CHECK_OK(lg_gclamp_init(&st, NULL, 2, shape, 0, 2.0f, 2));
    for (int call = 0; call < 40; call++) {
        make_matrix(R, C, s0, 61, g);
        CHECK_OK(lg_gclamp_apply(&st, g));
    }
    svals_of(g, 2, shape, 0, s);
    for (int i = 0; i < C; i++)
        CHECK(fabs(s[i] - want[i]) < 1e-3 * want[0], "after 40 calls of 1 iteration: s[%d] = %.7g",
              i, s[i]);
    lg_gclamp_free(&st);

    /* a transposed-conv gradient (in 2, out 3, 2, 2), out_dim 1 */
    const int64_t tshape[4] = {2, 3, 2, 2};
    const double ts[3] = {6.0, 1.0, 0.5};
    float m[24], gt[24];
    make_matrix(3, 8, ts, 65, m);
    lg_weight_from_mat(m, 4, tshape, 1, gt);
    CHECK_OK(lg_gclamp_init(&st, NULL, 4, tshape, 1, 1.5f, 3));
    st.n_iter = 100;
    CHECK_OK(lg_gclamp_apply(&st, gt));
    svals_of(gt, 4, tshape, 1, s);
    CHECK(fabs(s[0] - 1.5) < 1e-4 && fabs(s[1] - 1.0) < 1e-4 && fabs(s[2] - 0.5) < 1e-4,
          "convT clamped spectrum %.7g %.7g %.7g, want 1.5 1 0.5", s[0], s[1], s[2]);
    lg_gclamp_free(&st);
    CHECK_STATUS(lg_gclamp_init(&st, NULL, 2, shape, 0, 0.5f, 1), LG_ERR_INVALID_ARG);
}

/* ---- gradient penalty vs finite differences ---- */

typedef struct gp_user {
    lg_gp_kind kind;
    int sn;
    lg_sn_state sc, sl;    /* SN states of conv and linear (primed, then fixed) */
    lg_tensor **params;    /* set by f_gp for the critic */
} gp_user;

/* critic: conv3x3(2->3, s1, p1) -> tanh -> flatten -> linear(3*4*4 -> 1) */
static lg_tensor *critic(lg_ctx *ctx, lg_tensor *x, void *user) {
    gp_user *u = user;
    lg_tensor **p = u->params;
    lg_tensor *cw = u->sn ? lg_sn_weight(ctx, &u->sc, p[0], 0, 0) : p[0];
    lg_tensor *lw = u->sn ? lg_sn_weight(ctx, &u->sl, p[2], 0, 0) : p[2];
    lg_tensor *h = lg_tanh(ctx, lg_conv2d(ctx, x, cw, p[1], 1, 1));
    return lg_linear(ctx, lg_flatten(ctx, h), lw, p[3]);
}

static lg_tensor *f_gp(lg_ctx *ctx, lg_tensor **in, void *user) {
    gp_user *u = user;
    u->params = in; /* in[0..3] = conv w, conv b, lin w, lin b; in[4..6] real, fake, eps */
    return lg_gradient_penalty(ctx, critic, u, in[4], in[5], in[6], 10.0f, u->kind);
}

static void test_gp_fd(void) {
    enum { N = 3, C = 2, H = 4, OC = 3 };
    float cw[OC * C * 9], cb[OC], lw[OC * H * H], lb[1], real[N * C * H * H], fake[N * C * H * H],
        eps[N];
    lg_test_rng r = lg_test_rng_make(71);
    lg_test_fill_uniform(&r, cw, sizeof cw / 4, -0.6f, 0.6f);
    lg_test_fill_uniform(&r, cb, OC, -0.3f, 0.3f);
    lg_test_fill_uniform(&r, lw, sizeof lw / 4, -0.5f, 0.5f);
    lb[0] = 0.2f;
    lg_test_fill_uniform(&r, real, sizeof real / 4, -1.0f, 1.0f);
    lg_test_fill_uniform(&r, fake, sizeof fake / 4, -1.0f, 1.0f);
    lg_test_fill_uniform(&r, eps, N, 0.0f, 1.0f);
    const char *names[] = {"two-sided", "one-sided", "R1"};
    for (int sn = 0; sn <= 1; sn++)
        for (int k = 0; k < LG_GP_COUNT; k++) {
            gp_user u = {.kind = (lg_gp_kind)k, .sn = sn};
            if (sn) {
                CHECK_OK(lg_sn_init(&u.sc, NULL, OC, C * 9, 1));
                CHECK_OK(lg_sn_init(&u.sl, NULL, 1, OC * H * H, 2));
            }
            lg_gc_input in[7] = {
                lg_gc_in("conv_w", cw, 4, OC, C, 3, 3), lg_gc_in("conv_b", cb, 1, OC, 0, 0, 0),
                lg_gc_in("lin_w", lw, 2, 1, OC * H * H, 0, 0), lg_gc_in("lin_b", lb, 1, 1, 0, 0, 0),
                lg_gc_in("real", real, 4, N, C, H, H), lg_gc_in("fake", fake, 4, N, C, H, H),
                lg_gc_in("eps", eps, 4, N, 1, 1, 1)};
            in[4].constant = in[5].constant = in[6].constant = 1;
            lg_gc_opts o = {.order = 1, .eps = 1e-2, .atol = 1e-3, .rtol = 1e-2};
            char what[64];
            snprintf(what, sizeof what, "GP %s%s vs finite differences", names[k],
                     sn ? " with SN" : "");
            CHECK(lg_gradcheck(what, f_gp, &u, 7, in, &o) == 0, "%s", what);
            if (sn) {
                lg_sn_free(&u.sc);
                lg_sn_free(&u.sl);
            }
        }
}

/* the GP value itself, against a hand computation for a linear critic:
 * D(x) = w.x + b has grad w everywhere, so GP = lambda (||w|| - 1)^2 */
static lg_tensor *critic_lin(lg_ctx *ctx, lg_tensor *x, void *user) {
    return lg_linear(ctx, x, (lg_tensor *)user, NULL);
}

static void test_gp_value(void) {
    lg_ctx *ctx;
    CHECK_OK(lg_ctx_create(&ctx, NULL));
    float w[4] = {0.5f, -1.0f, 1.5f, 0.25f}, x[8] = {1, 2, 3, 4, 5, 6, 7, 8}, e[2] = {0.3f, 0.6f};
    double nw = sqrt(0.25 + 1 + 2.25 + 0.0625);
    lg_tensor *wt = lg_test_tensor(ctx, w, 2, (int64_t[]){1, 4}, 1);
    lg_tensor *xr = lg_from_host(ctx, x, 2, (int64_t[]){2, 4});
    lg_tensor *xf = lg_from_host(ctx, x, 2, (int64_t[]){2, 4});
    lg_tensor *et = lg_from_host(ctx, e, 1, (int64_t[]){2});
    lg_tensor *two = lg_gradient_penalty(ctx, critic_lin, wt, xr, xf, et, 10.0f, LG_GP_TWO_SIDED);
    lg_tensor *one = lg_gradient_penalty(ctx, critic_lin, wt, xr, xf, et, 10.0f, LG_GP_ONE_SIDED);
    lg_tensor *r1 = lg_gradient_penalty(ctx, critic_lin, wt, xr, NULL, NULL, 10.0f, LG_GP_R1);
    CHECK(two && one && r1, "penalty: %s", lg_error_msg());
    CHECK(rel(lg_item(ctx, two), 10 * (nw - 1) * (nw - 1)) < 1e-5, "two-sided %g",
          (double)lg_item(ctx, two));
    CHECK(rel(lg_item(ctx, one), 10 * (nw - 1) * (nw - 1)) < 1e-5, "one-sided %g",
          (double)lg_item(ctx, one));
    CHECK(rel(lg_item(ctx, r1), 10 * nw * nw) < 1e-5, "R1 %g", (double)lg_item(ctx, r1));
    /* the gradient w.r.t. w: d/dw 10 (||w|| - 1)^2 = 20 (||w|| - 1) w / ||w|| */
    lg_tensor *gw = NULL;
    CHECK_OK(lg_grad(ctx, two, NULL, 1, &wt, &gw, 0));
    float g[4], want[4];
    lg_to_host(ctx, gw, g);
    for (int i = 0; i < 4; i++) want[i] = (float)(20 * (nw - 1) * w[i] / nw);
    lg_test_close(g, want, 4, 1e-5, 1e-5, "d GP / dw");
    /* a small w is inside the one-sided constraint: penalty 0 */
    float ws[4] = {0.1f, 0.2f, -0.1f, 0.3f};
    lg_tensor *wst = lg_test_tensor(ctx, ws, 2, (int64_t[]){1, 4}, 1);
    lg_tensor *z = lg_gradient_penalty(ctx, critic_lin, wst, xr, xf, et, 10.0f, LG_GP_ONE_SIDED);
    CHECK(z && lg_item(ctx, z) == 0.0f, "one-sided penalty inside the constraint");
    /* wrong number of epsilons */
    lg_tensor *e3 = lg_new1(ctx, 3);
    CHECK(lg_gradient_penalty(ctx, critic_lin, wt, xr, xf, e3, 1, LG_GP_TWO_SIDED) == NULL,
          "3 epsilons for 2 samples accepted");
    lg_ctx_free(ctx);
}

/* ---- r(W) ---- */

typedef struct rank_user {
    lg_sn_state *sn;
} rank_user;

static lg_tensor *f_rank(lg_ctx *ctx, lg_tensor **in, void *user) {
    rank_user *u = user;
    lg_sn_state *st[1] = {u->sn};
    int od[1] = {0};
    return lg_rank_penalty(ctx, 1, st, in, od, 0.5f, 0);
}

static void test_rank_ratio(void) {
    enum { R = 4, C = 6 };
    const double s0[R] = {2.0, 1.0, 0.5, 0.1};
    float w[R * C];
    make_matrix(R, C, s0, 81, w);
    double want = sqrt(4 + 1 + 0.25 + 0.01) / (C * 2.0);
    CHECK(rel(lg_rank_ratio_exact(s0, R, C), want) < 1e-12, "exact r(W)");
    lg_ctx *ctx;
    CHECK_OK(lg_ctx_create(&ctx, NULL));
    lg_sn_state sn;
    CHECK_OK(lg_sn_init(&sn, NULL, R, C, 1));
    sn.n_iter = 100;
    lg_tensor *wt = lg_from_host(ctx, w, 2, (int64_t[]){R, C});
    lg_tensor *r = lg_rank_ratio(ctx, &sn, wt, 0, 1);
    CHECK(r && rel(lg_item(ctx, r), want) < 1e-5, "r(W) %g, want %g (m = columns = %d)",
          r ? (double)lg_item(ctx, r) : NAN, want, C);
    lg_ctx_free(ctx);
    rank_user u = {&sn};
    lg_gc_input in[1] = {lg_gc_in("w", w, 2, R, C, 0, 0)};
    lg_gc_opts o = {.order = 1, .eps = 1e-3};
    CHECK(lg_gradcheck("generator rank penalty -lambda r(W)", f_rank, &u, 1, in, &o) == 0,
          "rank penalty gradient");
    lg_sn_free(&sn);
}

/* ---- spectra and bounds ---- */

static lg_tensor *critic_mlp(lg_ctx *ctx, lg_tensor *x, void *user) {
    lg_tensor **p = user; /* relu(x W1^T) W2^T */
    return lg_linear(ctx, lg_relu(ctx, lg_linear(ctx, x, p[0], NULL)), p[1], NULL);
}

static void test_bounds_and_spectrum(void) {
    lg_ctx *ctx;
    CHECK_OK(lg_ctx_create(&ctx, NULL));
    enum { D = 5, HID = 7, N = 64 };
    float w1[HID * D], w2[HID], x[N * D];
    lg_test_rng r = lg_test_rng_make(91);
    lg_test_fill_uniform(&r, w1, sizeof w1 / 4, -1, 1);
    lg_test_fill_uniform(&r, w2, HID, -1, 1);
    lg_test_fill_uniform(&r, x, sizeof x / 4, -1, 1);
    lg_tensor *p[2] = {lg_from_host(ctx, w1, 2, (int64_t[]){HID, D}),
                       lg_from_host(ctx, w2, 2, (int64_t[]){1, HID})};
    lg_tensor *xt = lg_from_host(ctx, x, 2, (int64_t[]){N, D});
    float lower;
    CHECK_OK(lg_lipschitz_lower(ctx, critic_mlp, p, xt, &lower));
    double norms[2] = {exact_sigma(w1, HID, D), exact_sigma(w2, 1, HID)};
    double upper = lg_lipschitz_upper(2, norms);
    CHECK(lower > 0 && lower <= upper * (1 + 1e-6), "lower bound %g vs upper bound %g",
          (double)lower, upper);
    /* a linear critic: both bounds equal ||w|| */
    float lw;
    lg_tensor *wl = lg_from_host(ctx, w2, 2, (int64_t[]){1, HID});
    lg_tensor *xh = lg_from_host(ctx, x, 2, (int64_t[]){N / 8, HID});
    CHECK_OK(lg_lipschitz_lower(ctx, critic_lin, wl, xh, &lw));
    CHECK(rel(lw, norms[1]) < 1e-5, "linear critic lower bound %g vs ||w|| %g", (double)lw,
          norms[1]);
    lg_ctx_free(ctx);

    /* per-weight analysis of a conv weight */
    float cw[4 * 3 * 3 * 3];
    lg_test_fill_uniform(&r, cw, sizeof cw / 4, -1, 1);
    lg_spectrum_info info;
    double sv[4];
    CHECK_OK(lg_spectrum_analyze(cw, 4, (int64_t[]){4, 3, 3, 3}, 0, 8, 1, 1, &info, sv));
    CHECK(info.rows == 4 && info.cols == 27 && info.is_conv, "analysis shape");
    CHECK(rel(info.sigma_exact, sv[0]) < 1e-12 && rel(info.sigma1, sv[1]) < 1e-12, "svals");
    CHECK(rel(info.sigma_power, info.sigma_exact) < 1e-3, "power %g vs exact %g",
          info.sigma_power, info.sigma_exact);
    CHECK(rel(info.r, lg_rank_ratio_exact(sv, 4, 27)) < 1e-12, "r");
    CHECK(info.conv.op_norm <= info.conv.tsuzuku && info.conv.n == 9,
          "op norm %g, Tsuzuku %g, n %d", info.conv.op_norm, info.conv.tsuzuku, info.conv.n);
}

int main(void) {
    LG_TEST_RUN(test_power_iteration_vs_svd);
    LG_TEST_RUN(test_weight_views);
    LG_TEST_RUN(test_sn_eval_mode);
    LG_TEST_RUN(test_sn_keep_zero);
    LG_TEST_RUN(test_sn_keep_zero_no_iteration);
    LG_TEST_RUN(test_sn_gradcheck);
    LG_TEST_RUN(test_toeplitz_vs_explicit);
    LG_TEST_RUN(test_toeplitz_layer);
    LG_TEST_RUN(test_sr_backend_svd);
    LG_TEST_RUN(test_sr);
    LG_TEST_RUN(test_clip);
    LG_TEST_RUN(test_gclamp);
    LG_TEST_RUN(test_gp_value);
    LG_TEST_RUN(test_gp_fd);
    LG_TEST_RUN(test_rank_ratio);
    LG_TEST_RUN(test_bounds_and_spectrum);
    return lg_test_summary("test_lipschitz");
}
