/* The CUDA backend's Winograd F(2x2, 3x3) pipeline (src/backend/cuda/
 * wino_tf.h, run by cuda_winograd.cu), emulated on the host: every
 * transform "kernel" is run for every thread index, and the 16 GEMMs with
 * the exact arguments the CUDA code passes to cublasSgemmStridedBatched,
 * through a column-major reference with cuBLAS's semantics. The results are
 * compared with the CPU backend's convolution passes on odd and tiny
 * shapes. This checks the index maps, layouts and GEMM arguments in CI
 * without a GPU; tests/gpu/test_backend_cuda.c checks the real kernels. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "lg_test.h"
#include "lipgan/backend.h"
#include "backend/wino_tf.h"

/* cublasSgemmStridedBatched semantics, column-major, alpha = 1, beta = 0:
 * C[b] (m, n) = op(A[b]) (m, k) op(B[b]) (k, n), double accumulation. */
static void sgemm_batched_ref(const lg_wino_gemm *g, const float *A, const float *B, float *C,
                              int batch) {
    for (int b = 0; b < batch; b++) {
        const float *a = A + b * g->sa, *bb = B + b * g->sb;
        float *c = C + b * g->sc;
        for (int j = 0; j < g->n; j++)
            for (int i = 0; i < g->m; i++) {
                double s = 0;
                for (int p = 0; p < g->k; p++) {
                    float av = g->ta ? a[i * (int64_t)g->lda + p] : a[p * (int64_t)g->lda + i];
                    float bv = g->tb ? bb[p * (int64_t)g->ldb + j] : bb[j * (int64_t)g->ldb + p];
                    s += (double)av * bv;
                }
                c[j * (int64_t)g->ldc + i] = (float)s;
            }
    }
}

/* forward (bwd = 0) or bwd_data (bwd = 1, in = dy, out = dx), F(m x m, 3x3),
 * as cuda_winograd.cu runs it */
static void emul_run(float *out, const float *in, const float *w, const lg_conv_geom *g, int bwd,
                     int m, float *ws) {
    int cin = bwd ? g->oc : g->c, cout = bwd ? g->c : g->oc;
    lg_wino_dims d = lg_wino_dims_make_m(g->n, cin, cout, g->h, g->w, m);
    float *U, *V, *M;
    lg_wino_split(ws, &d, &U, &V, &M);
    for (int64_t i = 0; i < (int64_t)cout * cin; i++)
        if (m == 4) lg_wino4_filter_one(U, w, g->c, cout, cin, bwd, i);
        else lg_wino_filter_one(U, w, g->c, cout, cin, bwd, i);
    for (int64_t i = 0; i < cin * d.NP; i++)
        if (m == 4) lg_wino4_input_one(V, in, &d, i);
        else lg_wino_input_one(V, in, &d, i);
    lg_wino_gemm gm = lg_wino_gemm_fwd(&d);
    sgemm_batched_ref(&gm, V, U, M, d.Q);
    for (int64_t i = 0; i < cout * d.NP; i++)
        if (m == 4) lg_wino4_output_one(out, M, &d, i);
        else lg_wino_output_one(out, M, &d, i);
}

static void emul_wgrad(float *dw, const float *x, const float *dy, const lg_conv_geom *g, int m,
                       float *ws) {
    lg_wino_dims d = lg_wino_dims_make_m(g->n, g->c, g->oc, g->h, g->w, m);
    float *dU, *V, *Z;
    lg_wino_split(ws, &d, &dU, &V, &Z);
    for (int64_t i = 0; i < g->c * d.NP; i++)
        if (m == 4) lg_wino4_input_one(V, x, &d, i);
        else lg_wino_input_one(V, x, &d, i);
    for (int64_t i = 0; i < g->oc * d.NP; i++)
        if (m == 4) lg_wino4_grad_one(Z, dy, &d, i);
        else lg_wino_grad_one(Z, dy, &d, i);
    lg_wino_gemm gm = lg_wino_gemm_wgrad(&d);
    sgemm_batched_ref(&gm, V, Z, dU, d.Q);
    for (int64_t i = 0; i < (int64_t)g->oc * g->c; i++)
        if (m == 4) lg_wino4_filter_adj_one(dw, dU, g->oc, g->c, i);
        else lg_wino_filter_adj_one(dw, dU, g->oc, g->c, i);
}

/* F(2x2,3x3) (m = 2) and F(4x4,3x3) (m = 4, more rounding: 1e-4 bars) */
static void check_against_cpu(int m) {
    const lg_backend *be = lg_backend_cpu();
    const double tol = m == 4 ? 1e-4 : 1e-5;
    /* n, c, h, w, oc: odd sizes, single rows and columns, one tile */
    static const int cases[][5] = {{2, 3, 7, 5, 4}, {1, 1, 1, 1, 1}, {3, 2, 2, 3, 5},
                                   {2, 5, 8, 8, 3}, {1, 4, 1, 9, 2}, {2, 2, 6, 1, 3},
                                   {4, 6, 4, 4, 6}};
    lg_test_rng r = lg_test_rng_make(99);
    for (size_t ci = 0; ci < sizeof cases / sizeof cases[0]; ci++) {
        const int *c = cases[ci];
        lg_conv_geom g = {c[0], c[1], c[2], c[3], c[4], 3, 3, 1, 1, c[2], c[3]};
        size_t nx = (size_t)g.n * g.c * g.h * g.w, ny = (size_t)g.n * g.oc * g.h * g.w,
               nw = (size_t)g.oc * g.c * 9;
        lg_wino_dims d = lg_wino_dims_make_m(g.n, g.c, g.oc, g.h, g.w, m);
        float *x = malloc(nx * 4), *dy = malloc(ny * 4), *w = malloc(nw * 4);
        float *y = malloc(ny * 4), *dx = malloc(nx * 4), *dw = malloc(nw * 4);
        float *ry = malloc(ny * 4), *rdx = malloc(nx * 4), *rdw = malloc(nw * 4);
        float *ws = malloc((size_t)lg_wino_floats(&d) * 4);
        float *cws = malloc((be->conv_workspace(&g) + 1) * 4);
        lg_test_fill_uniform(&r, x, nx, -1, 1);
        lg_test_fill_uniform(&r, dy, ny, -1, 1);
        lg_test_fill_uniform(&r, w, nw, -1, 1);
        for (size_t i = 0; i < ny; i++) y[i] = NAN; /* every output must be written */
        for (size_t i = 0; i < nx; i++) dx[i] = NAN;
        emul_run(y, x, w, &g, 0, m, ws);
        emul_run(dx, dy, w, &g, 1, m, ws);
        emul_wgrad(dw, x, dy, &g, m, ws);
        be->conv2d(ry, x, w, &g, cws);
        be->conv2d_bwd_data(rdx, dy, w, &g, cws);
        be->conv2d_bwd_weight(rdw, x, dy, &g, cws);
        char what[96];
        snprintf(what, sizeof what, "F(%d) forward n%d c%d %dx%d oc%d", m, c[0], c[1], c[2], c[3], c[4]);
        lg_test_close(y, ry, ny, tol, tol, what);
        snprintf(what, sizeof what, "F(%d) bwd_data n%d c%d %dx%d oc%d", m, c[0], c[1], c[2], c[3], c[4]);
        lg_test_close(dx, rdx, nx, tol, tol, what);
        snprintf(what, sizeof what, "F(%d) bwd_weight n%d c%d %dx%d oc%d", m, c[0], c[1], c[2], c[3], c[4]);
        lg_test_close(dw, rdw, nw, tol, tol, what);
        free(x), free(dy), free(w), free(y), free(dx), free(dw);
        free(ry), free(rdx), free(rdw), free(ws), free(cws);
    }
}

static void test_f2_against_cpu(void) { check_against_cpu(2); }
static void test_f4_against_cpu(void) { check_against_cpu(4); }

/* The GEMM arguments stay within int and the strides tile the buffers. */
static void test_gemm_args(void) {
    lg_wino_dims d = lg_wino_dims_make(128, 128, 256, 8, 8);
    lg_wino_gemm f = lg_wino_gemm_fwd(&d), b = lg_wino_gemm_wgrad(&d);
    CHECK(f.m == 128 * 16 && f.n == 256 && f.k == 128, "fwd m n k = %d %d %d", f.m, f.n, f.k);
    CHECK(f.sa == (int64_t)f.k * f.lda && f.sc == (int64_t)f.n * f.ldc && f.sb == (int64_t)f.n * f.ldb,
          "fwd strides are whole matrices");
    CHECK(b.m == 128 && b.n == 256 && b.k == 128 * 16 && b.ta == 1 && b.tb == 0,
          "wgrad m n k = %d %d %d", b.m, b.n, b.k);
    CHECK(b.sc == (int64_t)b.n * b.ldc, "wgrad C stride");
}

int main(void) {
    LG_TEST_RUN(test_f2_against_cpu);
    LG_TEST_RUN(test_f4_against_cpu);
    LG_TEST_RUN(test_gemm_args);
    return lg_test_summary("test_wino_emul");
}
