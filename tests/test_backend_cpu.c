/* Tests of the CPU backend: every kernel of the lg_backend table against
 * naive reference loops written here (double accumulation), on odd shapes,
 * for 1, 2 and 3 threads; plus determinism, thread-count independence of
 * the reductions, and backend lookup. */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "lg_test.h"
#include "lipgan/backend.h"
#include "lipgan/backend_cpu.h"
#include "backend/cpu/cpu_internal.h" /* lg_cpu_wino_*: tested directly */

static const lg_backend *be;

/* host buffers of n floats, filled uniform in [lo, hi) */
static float *rnd(lg_test_rng *r, size_t n, float lo, float hi) {
    float *p = malloc((n ? n : 1) * sizeof(float));
    lg_test_fill_uniform(r, p, n, lo, hi);
    return p;
}

static float *nans(size_t n) {
    float *p = malloc((n ? n : 1) * sizeof(float));
    for (size_t i = 0; i < n; i++) p[i] = NAN;
    return p;
}

static void to_float(float *dst, const double *src, size_t n) {
    for (size_t i = 0; i < n; i++) dst[i] = (float)src[i];
}

/* ---- memory, lookup, threads ---- */

static void test_memory(void) {
    for (size_t bytes = 0; bytes < 300; bytes += 37) {
        float *p = be->alloc(bytes);
        CHECK(p != NULL, "alloc(%zu) returned NULL", bytes);
        CHECK(((uintptr_t)p & 63) == 0, "alloc(%zu) = %p is not 64-byte aligned", bytes, (void *)p);
        be->free(p);
    }
    be->free(NULL);
    lg_test_rng r = lg_test_rng_make(1);
    const size_t sizes[] = {1, 13, (1u << 20) + 5}; /* the last one takes the parallel path */
    for (int s = 0; s < 3; s++) {
        size_t n = sizes[s];
        float *h = rnd(&r, n, -1, 1), *back = nans(n);
        float *a = be->alloc(n * sizeof(float)), *b = be->alloc(n * sizeof(float));
        be->upload(a, h, n);
        be->copy(b, a, n);
        be->sync();
        be->download(back, b, n);
        CHECK(memcmp(back, h, n * sizeof(float)) == 0, "upload/copy/download changed data (n=%zu)", n);
        be->fill(b, -2.5f, n);
        be->download(back, b, n);
        size_t bad = 0;
        for (size_t i = 0; i < n; i++) bad += back[i] != -2.5f;
        CHECK(bad == 0, "fill left %zu of %zu elements unset", bad, n);
        be->free(a);
        be->free(b);
        free(h);
        free(back);
    }
    /* overlapping copy behaves like memmove */
    float v[8] = {0, 1, 2, 3, 4, 5, 6, 7};
    be->copy(v + 1, v, 6);
    CHECK(v[1] == 0 && v[6] == 5 && v[7] == 7, "overlapping copy: v[1]=%g v[6]=%g", v[1], v[6]);
}

static void test_lookup(void) {
    const lg_backend *b = NULL;
    CHECK_OK(lg_backend_get("cpu", &b));
    CHECK(b == lg_backend_cpu() && strcmp(b->name, "cpu") == 0 && !b->is_device,
          "lg_backend_get(\"cpu\") gave the wrong table");
    /* every entry of the table is filled */
    CHECK(b->alloc && b->free && b->upload && b->download && b->copy && b->fill && b->sync &&
              b->gemm && b->conv_workspace && b->conv2d && b->conv2d_bwd_data &&
              b->conv2d_bwd_weight && b->unary && b->binary && b->sum_to && b->sum_all &&
              b->upsample2x && b->sumpool2x2 && b->bn_train && b->bn_eval && b->bn_bwd &&
              b->dot && b->normalize && b->adam && b->all_finite,
          "a function pointer of the CPU table is NULL");
    lg_error_clear();
    lg_status s = lg_backend_get("cuda", &b);
#ifndef LG_HAVE_CUDA
    CHECK(s == LG_ERR_UNSUPPORTED && b == NULL, "cuda without CUDA: got %s", lg_status_str(s));
    CHECK(strstr(lg_error_msg(), "built without CUDA") != NULL, "message: '%s'", lg_error_msg());
#else
    CHECK(s == LG_OK ? b != NULL : (b == NULL && lg_error_msg()[0] != '\0'),
          "cuda lookup: status %s, msg '%s'", lg_status_str(s), lg_error_msg());
#endif
    CHECK_STATUS(lg_backend_get("tpu", &b), LG_ERR_INVALID_ARG);
    CHECK(b == NULL && strstr(lg_error_msg(), "tpu") != NULL, "message: '%s'", lg_error_msg());
    CHECK_STATUS(lg_backend_get(NULL, &b), LG_ERR_INVALID_ARG);

    lg_cpu_set_threads(3);
    CHECK(lg_cpu_threads() == 3, "threads %d after set(3)", lg_cpu_threads());
    lg_cpu_set_threads(0);
    CHECK(lg_cpu_threads() >= 1, "default threads %d", lg_cpu_threads());
}

/* ---- gemm ---- */

static void test_gemm(void) {
    lg_test_rng r = lg_test_rng_make(2);
    const int dims[][3] = {{5, 7, 3}, {1, 9, 4}, {6, 1, 11}, {33, 17, 65}, {4, 3, 0}};
    for (int d = 0; d < 5; d++) {
        for (int ta = 0; ta < 2; ta++) {
            for (int tb = 0; tb < 2; tb++) {
                for (int bz = 0; bz < 2; bz++) {
                    int m = dims[d][0], n = dims[d][1], k = dims[d][2];
                    int lda = (ta ? m : k) + 2, ldb = (tb ? k : n) + 1, ldc = n + 3;
                    size_t arows = ta ? k : m, brows = tb ? n : k;
                    float *a = rnd(&r, arows * lda + 1, -1, 1), *b = rnd(&r, brows * ldb + 1, -1, 1);
                    float *c = bz ? nans((size_t)m * ldc) : rnd(&r, (size_t)m * ldc, -1, 1);
                    float beta = bz ? 0.0f : -0.5f, alpha = 0.7f;
                    float *ref = malloc(sizeof(float) * m * ldc);
                    memcpy(ref, c, sizeof(float) * m * ldc);
                    for (int i = 0; i < m; i++)
                        for (int j = 0; j < n; j++) {
                            double s = 0;
                            for (int q = 0; q < k; q++)
                                s += (double)(ta ? a[q * lda + i] : a[i * lda + q]) *
                                     (tb ? b[j * ldb + q] : b[q * ldb + j]);
                            ref[i * ldc + j] = (float)(alpha * s + (bz ? 0.0 : beta * c[i * ldc + j]));
                        }
                    be->gemm(ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
                    /* compare the m x n block only (padding stays as it was) */
                    for (int i = 0; i < m; i++) {
                        char what[96];
                        snprintf(what, sizeof what, "gemm m%d n%d k%d ta%d tb%d beta%g row %d", m, n,
                                 k, ta, tb, beta, i);
                        lg_test_close(c + i * ldc, ref + i * ldc, n, 1e-5, 1e-5, what);
                    }
                    free(a);
                    free(b);
                    free(c);
                    free(ref);
                }
            }
        }
    }
}

/* ---- convolution ---- */

static double *conv_ref(const float *x, const float *w, const lg_conv_geom *g) {
    double *y = calloc((size_t)g->n * g->oc * g->oh * g->ow, sizeof(double));
    for (int n = 0; n < g->n; n++)
        for (int o = 0; o < g->oc; o++)
            for (int oy = 0; oy < g->oh; oy++)
                for (int ox = 0; ox < g->ow; ox++) {
                    double s = 0;
                    for (int c = 0; c < g->c; c++)
                        for (int ki = 0; ki < g->kh; ki++)
                            for (int kj = 0; kj < g->kw; kj++) {
                                int iy = oy * g->stride - g->pad + ki, ix = ox * g->stride - g->pad + kj;
                                if (iy < 0 || iy >= g->h || ix < 0 || ix >= g->w) continue;
                                s += (double)x[((n * g->c + c) * g->h + iy) * g->w + ix] *
                                     w[((o * g->c + c) * g->kh + ki) * g->kw + kj];
                            }
                    y[((n * g->oc + o) * g->oh + oy) * g->ow + ox] = s;
                }
    return y;
}

/* dx and dw of sum(dy * conv(x, w)) */
static void conv_bwd_ref(double *dx, double *dw, const float *x, const float *w, const float *dy,
                         const lg_conv_geom *g) {
    memset(dx, 0, sizeof(double) * g->n * g->c * g->h * g->w);
    memset(dw, 0, sizeof(double) * g->oc * g->c * g->kh * g->kw);
    for (int n = 0; n < g->n; n++)
        for (int o = 0; o < g->oc; o++)
            for (int oy = 0; oy < g->oh; oy++)
                for (int ox = 0; ox < g->ow; ox++) {
                    double d = dy[((n * g->oc + o) * g->oh + oy) * g->ow + ox];
                    for (int c = 0; c < g->c; c++)
                        for (int ki = 0; ki < g->kh; ki++)
                            for (int kj = 0; kj < g->kw; kj++) {
                                int iy = oy * g->stride - g->pad + ki, ix = ox * g->stride - g->pad + kj;
                                if (iy < 0 || iy >= g->h || ix < 0 || ix >= g->w) continue;
                                size_t xi = ((size_t)(n * g->c + c) * g->h + iy) * g->w + ix;
                                size_t wi = ((size_t)(o * g->c + c) * g->kh + ki) * g->kw + kj;
                                dx[xi] += d * w[wi];
                                dw[wi] += d * x[xi];
                            }
                }
}

/* Random x, w, dy (uniform in [-1, 1]) for g and the float-rounded double
 * references of the three passes. */
typedef struct conv_fixture {
    size_t nx, nw, ny;
    float *x, *w, *dy;          /* (N,C,H,W), (OC,C,KH,KW), (N,OC,OH,OW) */
    float *yref, *dxref, *dwref; /* conv2d, bwd_data, bwd_weight */
} conv_fixture;

static conv_fixture conv_fixture_make(lg_test_rng *r, const lg_conv_geom *g) {
    conv_fixture f;
    f.nx = (size_t)g->n * g->c * g->h * g->w;
    f.nw = (size_t)g->oc * g->c * g->kh * g->kw;
    f.ny = (size_t)g->n * g->oc * g->oh * g->ow;
    f.x = rnd(r, f.nx, -1, 1), f.w = rnd(r, f.nw, -1, 1), f.dy = rnd(r, f.ny, -1, 1);
    double *yr = conv_ref(f.x, f.w, g);
    double *dxr = malloc(sizeof(double) * f.nx), *dwr = malloc(sizeof(double) * f.nw);
    conv_bwd_ref(dxr, dwr, f.x, f.w, f.dy, g);
    f.yref = malloc(sizeof(float) * f.ny), f.dxref = malloc(sizeof(float) * f.nx);
    f.dwref = malloc(sizeof(float) * f.nw);
    to_float(f.yref, yr, f.ny);
    to_float(f.dxref, dxr, f.nx);
    to_float(f.dwref, dwr, f.nw);
    free(yr), free(dxr), free(dwr);
    return f;
}

static void conv_fixture_free(conv_fixture *f) {
    free(f->x), free(f->w), free(f->dy), free(f->yref), free(f->dxref), free(f->dwref);
}

static void test_conv(void) {
    /* n, c, h, w, oc, kh, kw, stride, pad */
    const int geoms[][9] = {
        {1, 1, 5, 5, 1, 1, 1, 1, 0},    /* direct 1x1, one sample */
        {3, 3, 7, 5, 5, 3, 3, 1, 1},    /* non-square, small: chunks of samples */
        {3, 5, 8, 8, 3, 4, 4, 2, 1},    /* DCGAN-style 4x4 stride 2 */
        {1, 3, 9, 6, 5, 3, 3, 2, 2},    /* pad 2, stride 2 */
        {3, 5, 4, 4, 5, 3, 3, 1, 1},    /* 4x4 images */
        {3, 3, 6, 6, 5, 1, 1, 1, 0},    /* direct 1x1 in chunks */
        {3, 5, 17, 17, 3, 3, 3, 1, 1},  /* one sample per GEMM */
        {3, 3, 16, 18, 5, 1, 1, 1, 0},  /* direct 1x1, one sample per GEMM */
        {3, 1, 6, 7, 3, 4, 3, 2, 0},    /* kernel 4x3, rows not all used */
        {1, 5, 5, 5, 3, 3, 3, 1, 2},    /* pad 2 grows the image */
        {3, 3, 5, 5, 5, 1, 1, 2, 1},    /* 1x1 with stride and pad */
        {2, 3, 3, 3, 4, 4, 4, 1, 2},    /* kernel larger than the image */
        {5, 16, 8, 8, 16, 3, 3, 1, 1},  /* 8x8 generator-like, gathered chunks */
        {3, 8, 16, 16, 8, 3, 3, 1, 1},  /* 16x16 discriminator-like */
        {1, 64, 5, 3, 65, 3, 3, 1, 1},  /* Winograd dispatch: odd sizes, batch 1 */
        {3, 130, 3, 4, 7, 3, 3, 1, 1},  /* Winograd dispatch: many inputs, few outputs */
        /* one image, split over the threads (T > 1) */
        {1, 6, 5, 7, 4, 1, 1, 1, 0},    /* direct 1x1 */
        {1, 8, 8, 8, 6, 4, 4, 2, 1},    /* 4x4 stride 2: the standard CNN's downsampling */
        {1, 260, 2, 2, 261, 3, 3, 1, 1}, /* under 8 tiles, large weights: im2col, not Winograd */
        /* 4x4 stride 2 pad 1 taken by Winograd F(4x4,2x2) (wino_s2_use): exact
         * tiles, tiles cut by the edge, one image */
        {6, 16, 32, 32, 8, 4, 4, 2, 1},
        {5, 16, 12, 20, 7, 4, 4, 2, 1},
        {1, 16, 32, 32, 5, 4, 4, 2, 1},
    };
    const int ng = (int)(sizeof geoms / sizeof geoms[0]);
    lg_test_rng r = lg_test_rng_make(3);
    for (int gi = 0; gi < ng; gi++) {
        const int *q = geoms[gi];
        lg_conv_geom g = {.n = q[0], .c = q[1], .h = q[2], .w = q[3], .oc = q[4], .kh = q[5],
                          .kw = q[6], .stride = q[7], .pad = q[8]};
        g.oh = lg_conv_out_size(g.h, g.kh, g.stride, g.pad);
        g.ow = lg_conv_out_size(g.w, g.kw, g.stride, g.pad);
        conv_fixture f = conv_fixture_make(&r, &g);
        size_t nx = f.nx, nw = f.nw, ny = f.ny;
        const float *x = f.x, *w = f.w, *dy = f.dy, *yref = f.yref, *dxref = f.dxref;
        const float *dwref = f.dwref;
        /* tolerance grows with the number of terms per output */
        double tol = 2e-6 * (g.c * g.kh * g.kw + g.n * g.oh * g.ow + g.oc);
        for (int T = 1; T <= 3; T++) {
            lg_cpu_set_threads(T);
            size_t nws = be->conv_workspace(&g);
            float *ws = nans(nws); /* exactly the size asked for: ASan catches overruns */
            float *y = nans(ny), *dx = nans(nx), *dw = nans(nw), *dw2 = nans(nw);
            char what[128];
            be->conv2d(y, x, w, &g, ws);
            snprintf(what, sizeof what, "conv2d geom %d (%dx%dx%dx%d k%dx%d s%d p%d) T=%d", gi,
                     g.n, g.c, g.h, g.w, g.kh, g.kw, g.stride, g.pad, T);
            lg_test_close(y, yref, ny, tol, 1e-5, what);
            for (size_t i = 0; i < nws; i++) ws[i] = NAN;
            be->conv2d_bwd_data(dx, dy, w, &g, ws);
            snprintf(what, sizeof what, "conv2d_bwd_data geom %d T=%d", gi, T);
            lg_test_close(dx, dxref, nx, tol, 1e-5, what);
            for (size_t i = 0; i < nws; i++) ws[i] = NAN;
            be->conv2d_bwd_weight(dw, x, dy, &g, ws);
            snprintf(what, sizeof what, "conv2d_bwd_weight geom %d T=%d", gi, T);
            lg_test_close(dw, dwref, nw, tol, 1e-5, what);
            /* same thread count, same bits */
            be->conv2d_bwd_weight(dw2, x, dy, &g, ws);
            CHECK(memcmp(dw, dw2, nw * sizeof(float)) == 0,
                  "bwd_weight not reproducible (geom %d, T=%d)", gi, T);
            free(ws);
            free(y);
            free(dx);
            free(dw);
            free(dw2);
        }
        conv_fixture_free(&f);
    }
    lg_cpu_set_threads(0);

    /* an empty batch: dw is an empty sum (zeros), nothing else is touched */
    lg_conv_geom e = {.n = 0, .c = 2, .h = 3, .w = 3, .oc = 2, .kh = 3, .kw = 3, .stride = 1,
                      .pad = 1, .oh = 3, .ow = 3};
    size_t nws = be->conv_workspace(&e);
    float *ws = nans(nws), *dw = nans(36), dummy = 0;
    be->conv2d(&dummy, &dummy, dw, &e, ws);
    be->conv2d_bwd_data(&dummy, &dummy, dw, &e, ws);
    be->conv2d_bwd_weight(dw, &dummy, &dummy, &e, ws);
    size_t bad = 0;
    for (int i = 0; i < 36; i++) bad += dw[i] != 0.0f;
    CHECK(bad == 0 && dummy == 0, "empty batch: %zu dw entries not zero", bad);
    free(ws);
    free(dw);
}

/* ---- Winograd F(2x2,3x3) and F(4x4,3x3), called directly (conv2d's
 * dispatch only takes them for wide convs) ---- */

/* Max |got - ref| over n (LG_TEST_VERBOSE prints it: the measured errors). */
static double max_abs_diff(const float *got, const float *ref, size_t n) {
    double mx = 0;
    for (size_t i = 0; i < n; i++) {
        double e = fabs((double)got[i] - ref[i]);
        if (e > mx || isnan(e)) mx = e;
    }
    return mx;
}

/* The three passes of F(m x m, 3x3) on g against the double reference
 * (yref, dxref, dwref) and against im2col + SGEMM at the same thread count
 * (these geometries have too few channels for the dispatch to take
 * Winograd), T = 1..3, plus same-bits reproducibility. */
static void wino_case(int m, int gi, const lg_conv_geom *g, const float *x, const float *w,
                      const float *dy, const float *yref, const float *dxref,
                      const float *dwref) {
    size_t nx = (size_t)g->n * g->c * g->h * g->w, nw = (size_t)g->oc * g->c * 9;
    size_t ny = (size_t)g->n * g->oc * g->oh * g->ow;
    /* grows with the terms per output; F(4x4) rounds about 10x more than
     * F(2x2) (transform entries up to 8 and 1/24) and still fits the bar of
     * im2col's test, its atol 12x or more above the errors measured here */
    double tol = 2e-6 * (g->c * 9 + g->n * g->oh * g->ow + g->oc), rtol = 1e-5;
    for (int T = 1; T <= 3; T++) {
        lg_cpu_set_threads(T);
        size_t nws = lg_cpu_wino_workspace(g, m), ncws = be->conv_workspace(g);
        float *ws = nans(nws); /* exactly the size asked for: ASan catches overruns */
        float *cws = nans(ncws);
        float *y = nans(ny), *y2 = nans(ny), *dx = nans(nx), *dx2 = nans(nx);
        float *dw = nans(nw), *dw2 = nans(nw);
        float *iy = nans(ny), *idx = nans(nx), *idw = nans(nw); /* im2col */
        be->conv2d(iy, x, w, g, cws);
        be->conv2d_bwd_data(idx, dy, w, g, cws);
        be->conv2d_bwd_weight(idw, x, dy, g, cws);
        char what[128];
        lg_cpu_wino_conv2d(y, x, w, g, m, ws);
        snprintf(what, sizeof what, "F(%d) conv2d geom %d (%dx%dx%dx%d -> %d) T=%d", m, gi, g->n,
                 g->c, g->h, g->w, g->oc, T);
        lg_test_close(y, yref, ny, tol, rtol, what);
        lg_test_close(y, iy, ny, tol, rtol, what);
        for (size_t i = 0; i < nws; i++) ws[i] = NAN;
        lg_cpu_wino_bwd_data(dx, dy, w, g, m, ws);
        snprintf(what, sizeof what, "F(%d) bwd_data geom %d T=%d", m, gi, T);
        lg_test_close(dx, dxref, nx, tol, rtol, what);
        lg_test_close(dx, idx, nx, tol, rtol, what);
        for (size_t i = 0; i < nws; i++) ws[i] = NAN;
        lg_cpu_wino_bwd_weight(dw, x, dy, g, m, ws);
        snprintf(what, sizeof what, "F(%d) bwd_weight geom %d T=%d", m, gi, T);
        lg_test_close(dw, dwref, nw, tol, rtol, what);
        lg_test_close(dw, idw, nw, tol, rtol, what);
        if (getenv("LG_TEST_VERBOSE"))
            printf("  F(%d) geom %d T=%d: max |err| vs double %.3g %.3g %.3g, vs im2col %.3g %.3g "
                   "%.3g (fwd, bwd_data, bwd_weight)\n",
                   m, gi, T, max_abs_diff(y, yref, ny), max_abs_diff(dx, dxref, nx),
                   max_abs_diff(dw, dwref, nw), max_abs_diff(y, iy, ny),
                   max_abs_diff(dx, idx, nx), max_abs_diff(dw, idw, nw));
        /* same thread count, same bits */
        lg_cpu_wino_conv2d(y2, x, w, g, m, ws);
        lg_cpu_wino_bwd_data(dx2, dy, w, g, m, ws);
        lg_cpu_wino_bwd_weight(dw2, x, dy, g, m, ws);
        CHECK(memcmp(y, y2, ny * sizeof(float)) == 0 && memcmp(dx, dx2, nx * sizeof(float)) == 0 &&
                  memcmp(dw, dw2, nw * sizeof(float)) == 0,
              "F(%d) winograd not reproducible (geom %d, T=%d)", m, gi, T);
        free(dw), free(dw2), free(ws), free(cws), free(y), free(y2), free(dx), free(dx2);
        free(iy), free(idx), free(idw);
    }
}

static void test_conv_winograd(void) {
    /* n, c, h, w, oc: 3x3, stride 1, pad 1; odd sizes, tiles cut by the
     * edge for both tile sizes (1x1 and 2x2 images, 5, 6, 7, 9, 11, 15, 17,
     * 31, 33), exact tiles (4x4, 8x8); the last one has several chunks of
     * several samples per thread, the last chunk partial */
    const int geoms[][5] = {
        {1, 1, 1, 1, 1},  {3, 3, 2, 2, 5},   {1, 5, 7, 5, 3},    {3, 7, 5, 9, 9},
        {3, 9, 4, 4, 13}, {1, 13, 11, 1, 6}, {3, 6, 17, 15, 11}, {5, 10, 8, 8, 10},
        {6, 4, 1, 1, 5},  {2, 4, 6, 6, 3},   {9, 3, 33, 31, 4},
    };
    const int ng = (int)(sizeof geoms / sizeof geoms[0]);
    lg_test_rng r = lg_test_rng_make(11);
    for (int gi = 0; gi < ng; gi++) {
        const int *q = geoms[gi];
        lg_conv_geom g = {.n = q[0], .c = q[1], .h = q[2], .w = q[3], .oc = q[4], .kh = 3,
                          .kw = 3, .stride = 1, .pad = 1, .oh = q[2], .ow = q[3]};
        CHECK(lg_cpu_wino_ok(&g), "winograd geom %d not accepted", gi);
        conv_fixture f = conv_fixture_make(&r, &g);
        wino_case(2, gi, &g, f.x, f.w, f.dy, f.yref, f.dxref, f.dwref);
        wino_case(4, gi, &g, f.x, f.w, f.dy, f.yref, f.dxref, f.dwref);
        conv_fixture_free(&f);
    }
    lg_cpu_set_threads(0);
    /* only 3x3, stride 1, pad 1 */
    lg_conv_geom s2 = {.n = 1, .c = 1, .h = 5, .w = 5, .oc = 1, .kh = 3, .kw = 3, .stride = 2,
                       .pad = 1, .oh = 3, .ow = 3};
    CHECK(!lg_cpu_wino_ok(&s2) && lg_cpu_wino_workspace(&s2, 2) == 0 &&
              lg_cpu_wino_workspace(&s2, 4) == 0,
          "stride 2 taken by winograd");
}

/* ---- which algorithm the dispatch takes (cpu_conv.c's wino_m and
 * wino_s2_use), on the models' shapes and at the edges of its rules, at 2
 * threads ---- */
static void test_conv_dispatch(void) {
    /* n, c, h, oc, k, stride, expected (square images, pad 1) */
    const int cases[][7] = {
        {128, 64, 32, 64, 4, 2, LG_CPU_CONV_WINO_S2},  /* the standard CNN's D c0_1 */
        {128, 256, 8, 256, 4, 2, LG_CPU_CONV_WINO_S2}, /* c2_1: 4x4 outputs, one tile */
        {64, 256, 8, 512, 4, 2, LG_CPU_CONV_WINO_S2},  /* G's dc1 (its bwd_data) */
        {1, 64, 32, 64, 4, 2, LG_CPU_CONV_WINO_S2},    /* one image, 16 tiles, small U */
        {1, 256, 8, 256, 4, 2, LG_CPU_CONV_IM2COL},    /* one tile */
        {16, 256, 8, 512, 4, 2, LG_CPU_CONV_IM2COL},   /* 16 tiles, U of 52 MB */
        {128, 512, 4, 512, 4, 2, LG_CPU_CONV_IM2COL},  /* 2x2 outputs: tiles mostly unused */
        {64, 3, 32, 64, 4, 2, LG_CPU_CONV_IM2COL},     /* 3 input channels */
        {128, 3, 32, 64, 3, 1, LG_CPU_CONV_IM2COL},    /* D's c0_0: 3 input channels */
        {64, 64, 32, 3, 3, 1, LG_CPU_CONV_WINO2},      /* G's last conv: narrow output */
        {128, 64, 16, 128, 3, 1, LG_CPU_CONV_WINO4},   /* D's c1_0 */
        {64, 16, 32, 16, 3, 1, LG_CPU_CONV_WINO4},     /* 16 channels on both sides */
        {64, 8, 32, 8, 3, 1, LG_CPU_CONV_IM2COL},      /* 8 */
        {1, 260, 2, 261, 3, 1, LG_CPU_CONV_IM2COL},    /* under 8 tiles, large weights */
        {128, 64, 32, 64, 4, 1, LG_CPU_CONV_IM2COL},   /* 4x4 stride 1 */
    };
    lg_cpu_set_threads(2);
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        const int *q = cases[i];
        lg_conv_geom g = {.n = q[0], .c = q[1], .h = q[2], .w = q[2], .oc = q[3], .kh = q[4],
                          .kw = q[4], .stride = q[5], .pad = 1};
        g.oh = g.ow = lg_conv_out_size(g.h, g.kh, g.stride, g.pad);
        lg_cpu_conv_algo a = lg_cpu_conv_algo_of(&g);
        CHECK(a == (lg_cpu_conv_algo)q[6], "case %zu (n%d c%d %dx%d oc%d k%d s%d): %s, expected %s",
              i, g.n, g.c, g.h, g.w, g.oc, g.kh, g.stride, lg_cpu_conv_algo_name(a),
              lg_cpu_conv_algo_name((lg_cpu_conv_algo)q[6]));
    }
    lg_cpu_set_threads(0);
}

/* ---- Winograd F(4x4,2x2) on the polyphase form of 4x4 stride-2 pad-1
 * convs, called directly (the dispatch takes it for wide, large batches) ---- */

/* n, c, h, w, oc (even h, w): one-pixel outputs (2x2 images), tiles cut by
 * the edge in either direction (6, 10, 14, 18 wide images: 3, 5, 7, 9
 * outputs), exact tiles (8x8, 16x16), one channel; these have few tiles,
 * so the threads share one chunk (the plan's split). The last two have
 * 256 tiles or more per thread at T = 1, 2 (both) and 3 (the first): a
 * chunk per thread, several of them, the last one partial. */
static void test_conv_wino_s2(void) {
    const int geoms[][5] = {
        {1, 1, 2, 2, 1},   {2, 3, 6, 10, 2}, {3, 2, 8, 8, 5},     {1, 5, 14, 4, 3},
        {2, 1, 16, 16, 1}, {3, 4, 18, 6, 6}, {40, 3, 10, 8, 4},   {49, 2, 32, 32, 3},
        {301, 1, 6, 10, 2},
    };
    const int ng = (int)(sizeof geoms / sizeof geoms[0]);
    lg_test_rng r = lg_test_rng_make(12);
    for (int gi = 0; gi < ng; gi++) {
        const int *q = geoms[gi];
        lg_conv_geom g = {.n = q[0], .c = q[1], .h = q[2], .w = q[3], .oc = q[4], .kh = 4,
                          .kw = 4, .stride = 2, .pad = 1, .oh = q[2] / 2, .ow = q[3] / 2};
        CHECK(lg_cpu_wino_s2_ok(&g), "s2 winograd geom %d not accepted", gi);
        conv_fixture f = conv_fixture_make(&r, &g);
        size_t nx = f.nx, nw = f.nw, ny = f.ny;
        const float *x = f.x, *w = f.w, *dy = f.dy, *yref = f.yref, *dxref = f.dxref;
        const float *dwref = f.dwref;
        /* im2col's bar (terms per output); the errors measured here are 10x
         * or more below it (LG_TEST_VERBOSE) */
        double tol = 2e-6 * (g.c * 16 + g.n * g.oh * g.ow + g.oc), rtol = 1e-5;
        for (int T = 1; T <= 3; T++) {
            lg_cpu_set_threads(T);
            size_t nws = lg_cpu_wino_s2_workspace(&g);
            float *ws = nans(nws); /* exactly the size asked for: ASan catches overruns */
            float *y = nans(ny), *y2 = nans(ny), *dx = nans(nx), *dx2 = nans(nx);
            float *dw = nans(nw), *dw2 = nans(nw);
            char what[128];
            lg_cpu_wino_s2_conv2d(y, x, w, &g, ws);
            snprintf(what, sizeof what, "F(4,2) s2 conv2d geom %d (%dx%dx%dx%d -> %d) T=%d", gi,
                     g.n, g.c, g.h, g.w, g.oc, T);
            lg_test_close(y, yref, ny, tol, rtol, what);
            for (size_t i = 0; i < nws; i++) ws[i] = NAN;
            lg_cpu_wino_s2_bwd_data(dx, dy, w, &g, ws);
            snprintf(what, sizeof what, "F(4,2) s2 bwd_data geom %d T=%d", gi, T);
            lg_test_close(dx, dxref, nx, tol, rtol, what);
            for (size_t i = 0; i < nws; i++) ws[i] = NAN;
            lg_cpu_wino_s2_bwd_weight(dw, x, dy, &g, ws);
            snprintf(what, sizeof what, "F(4,2) s2 bwd_weight geom %d T=%d", gi, T);
            lg_test_close(dw, dwref, nw, tol, rtol, what);
            if (getenv("LG_TEST_VERBOSE"))
                printf("  F(4,2) s2 geom %d T=%d: max |err| vs double %.3g %.3g %.3g (fwd, "
                       "bwd_data, bwd_weight), bar %.3g\n",
                       gi, T, max_abs_diff(y, yref, ny), max_abs_diff(dx, dxref, nx),
                       max_abs_diff(dw, dwref, nw), tol);
            /* same thread count, same bits */
            lg_cpu_wino_s2_conv2d(y2, x, w, &g, ws);
            lg_cpu_wino_s2_bwd_data(dx2, dy, w, &g, ws);
            lg_cpu_wino_s2_bwd_weight(dw2, x, dy, &g, ws);
            CHECK(memcmp(y, y2, ny * sizeof(float)) == 0 &&
                      memcmp(dx, dx2, nx * sizeof(float)) == 0 &&
                      memcmp(dw, dw2, nw * sizeof(float)) == 0,
                  "s2 winograd not reproducible (geom %d, T=%d)", gi, T);
            free(ws), free(y), free(y2), free(dx), free(dx2), free(dw), free(dw2);
        }
        conv_fixture_free(&f);
    }
    lg_cpu_set_threads(0);
    /* only 4x4, stride 2, pad 1 on even images */
    lg_conv_geom odd = {.n = 1, .c = 1, .h = 5, .w = 6, .oc = 1, .kh = 4, .kw = 4, .stride = 2,
                        .pad = 1, .oh = 2, .ow = 3};
    lg_conv_geom p0 = {.n = 1, .c = 1, .h = 6, .w = 6, .oc = 1, .kh = 4, .kw = 4, .stride = 2,
                       .pad = 0, .oh = 2, .ow = 2};
    CHECK(!lg_cpu_wino_s2_ok(&odd) && !lg_cpu_wino_s2_ok(&p0) &&
              lg_cpu_wino_s2_workspace(&odd) == 0 && lg_cpu_wino_s2_workspace(&p0) == 0,
          "odd image or pad 0 taken by the stride-2 winograd");
}

/* ---- elementwise ---- */

static double unary_ref(lg_unary op, double x, double a) {
    switch (op) {
    case LG_U_RELU: return x > 0 ? x : 0;
    case LG_U_LRELU: return x > 0 ? x : a * x;
    case LG_U_TANH: return tanh(x);
    case LG_U_SIGMOID: return 1.0 / (1.0 + exp(-x));
    case LG_U_SOFTPLUS: return x > 30 ? x : log(1.0 + exp(x));
    case LG_U_SQUARE: return x * x;
    case LG_U_SQRT: return sqrt(x);
    case LG_U_NEG: return -x;
    case LG_U_SCALE: return a * x;
    case LG_U_ADD_SCALAR: return x + a;
    case LG_U_STEP: return x > 0 ? 1 : a;
    case LG_U_RECIP: return 1.0 / x;
    case LG_U_EXP: return exp(x);
    case LG_U_LOG: return log(x);
    case LG_U_ABS: return fabs(x);
    case LG_U_SIGN: return (x > 0) - (x < 0);
    case LG_U_CLAMP: return x < -a ? -a : (x > a ? a : x);
    default: return NAN;
    }
}

static void test_unary(void) {
    lg_test_rng r = lg_test_rng_make(4);
    const size_t sizes[] = {1, 37, 70001}; /* the last runs in parallel */
    for (int op = 0; op < LG_U_COUNT; op++) {
        int positive = op == LG_U_SQRT || op == LG_U_LOG || op == LG_U_RECIP;
        for (int s = 0; s < 3; s++) {
            size_t n = sizes[s];
            float *x = positive ? rnd(&r, n, 0.05f, 4.0f) : rnd(&r, n, -6.0f, 6.0f);
            if (!positive && n > 10) { /* extremes where naive formulas overflow */
                x[0] = 100.0f;
                x[1] = -100.0f;
                x[2] = 0.0f;
                x[3] = 88.0f;
                x[4] = -88.0f;
            }
            float *y = nans(n), *ref = malloc(sizeof(float) * n);
            float alpha = op == LG_U_CLAMP ? 0.5f : 0.2f;
            if (op == LG_U_EXP)
                for (size_t i = 0; i < n; i++) x[i] = fminf(x[i], 80.0f);
            for (size_t i = 0; i < n; i++) ref[i] = (float)unary_ref((lg_unary)op, x[i], alpha);
            be->unary((lg_unary)op, y, x, n, alpha);
            char what[64];
            snprintf(what, sizeof what, "unary op %d n=%zu", op, n);
            lg_test_close(y, ref, n, 1e-6, 2e-6, what);
            be->unary((lg_unary)op, x, x, n, alpha); /* in place */
            snprintf(what, sizeof what, "unary op %d n=%zu in place", op, n);
            lg_test_close(x, ref, n, 1e-6, 2e-6, what);
            free(x);
            free(y);
            free(ref);
        }
    }
    /* NaN propagates through relu/clamp (so all_finite can see it) */
    float v = NAN, out = 0;
    be->unary(LG_U_RELU, &out, &v, 1, 0);
    CHECK(isnan(out), "relu(NaN) = %g", out);
    be->unary(LG_U_CLAMP, &out, &v, 1, 1);
    CHECK(isnan(out), "clamp(NaN) = %g", out);
}

static size_t numel4(const int64_t s[4]) { return (size_t)(s[0] * s[1] * s[2] * s[3]); }

/* index of the broadcast source element of y index (i0..i3) */
static size_t bidx(const int64_t s[4], const int64_t i[4]) {
    size_t o = 0;
    for (int d = 0; d < 4; d++) o = o * s[d] + (s[d] == 1 ? 0 : i[d]);
    return o;
}

static double binary_ref(lg_binary op, double a, double b) {
    switch (op) {
    case LG_B_ADD: return a + b;
    case LG_B_SUB: return a - b;
    case LG_B_MUL: return a * b;
    case LG_B_DIV: return a / b;
    case LG_B_MAX: return a > b ? a : b;
    case LG_B_ADD_RELU: return a + b > 0 ? a + b : 0;
    case LG_B_RELU_MASK: return b > 0 ? a : 0;
    default: return NAN;
    }
}

static void test_binary(void) {
    const int64_t cases[][3][4] = {
        {{2, 3, 4, 5}, {2, 3, 4, 5}, {2, 3, 4, 5}},
        {{2, 3, 4, 5}, {2, 3, 4, 5}, {1, 3, 1, 1}},
        {{2, 3, 4, 5}, {1, 3, 1, 1}, {2, 3, 4, 5}},
        {{2, 3, 4, 5}, {2, 1, 4, 5}, {1, 3, 1, 5}},
        {{2, 3, 4, 5}, {1, 1, 1, 1}, {2, 3, 4, 5}},
        {{1, 1, 1, 7}, {1, 1, 1, 7}, {1, 1, 1, 1}},
        {{1, 1, 1, 1}, {1, 1, 1, 1}, {1, 1, 1, 1}},
        {{3, 1, 2, 1}, {3, 1, 1, 1}, {1, 1, 2, 1}},
        {{4, 8, 64, 64}, {4, 8, 64, 64}, {1, 8, 1, 1}}, /* parallel */
        {{1, 1, 1, 70000}, {1, 1, 1, 70000}, {1, 1, 1, 70000}},
        {{2, 1, 1, 40000}, {1, 1, 1, 40000}, {2, 1, 1, 1}},
    };
    lg_test_rng r = lg_test_rng_make(5);
    for (size_t ci = 0; ci < sizeof cases / sizeof cases[0]; ci++) {
        const int64_t *ys = cases[ci][0], *as = cases[ci][1], *bs = cases[ci][2];
        size_t ny = numel4(ys), na = numel4(as), nb = numel4(bs);
        for (int op = 0; op < LG_B_COUNT; op++) {
            float *a = rnd(&r, na, -2, 2), *b = rnd(&r, nb, 0.5f, 2);
            for (size_t i = 0; i < nb; i += 2) b[i] = -b[i]; /* signs, but away from 0 */
            float *y = nans(ny), *ref = malloc(sizeof(float) * ny);
            int64_t i[4];
            size_t k = 0;
            for (i[0] = 0; i[0] < ys[0]; i[0]++)
                for (i[1] = 0; i[1] < ys[1]; i[1]++)
                    for (i[2] = 0; i[2] < ys[2]; i[2]++)
                        for (i[3] = 0; i[3] < ys[3]; i[3]++)
                            ref[k++] = (float)binary_ref((lg_binary)op, a[bidx(as, i)], b[bidx(bs, i)]);
            be->binary((lg_binary)op, y, ys, a, as, b, bs);
            char what[64];
            snprintf(what, sizeof what, "binary op %d case %zu", op, ci);
            lg_test_close(y, ref, ny, 1e-6, 1e-6, what);
            if (na == ny) { /* y aliasing a */
                be->binary((lg_binary)op, a, ys, a, as, b, bs);
                snprintf(what, sizeof what, "binary op %d case %zu in place", op, ci);
                lg_test_close(a, ref, ny, 1e-6, 1e-6, what);
            }
            free(a);
            free(b);
            free(y);
            free(ref);
        }
    }
    float a = NAN, b = 1, y = 0;
    int64_t one[4] = {1, 1, 1, 1};
    be->binary(LG_B_MAX, &y, one, &a, one, &b, one);
    CHECK(isnan(y), "max(NaN, 1) = %g", y);
    be->binary(LG_B_MAX, &y, one, &b, one, &a, one);
    CHECK(isnan(y), "max(1, NaN) = %g", y);
    /* the fused ReLU pair keeps non-finite values visible, as relu and step*mul do */
    be->binary(LG_B_ADD_RELU, &y, one, &a, one, &b, one);
    CHECK(isnan(y), "add_relu(NaN, 1) = %g", y);
    float inf = INFINITY, neg = -1;
    be->binary(LG_B_RELU_MASK, &y, one, &inf, one, &neg, one);
    CHECK(isnan(y), "relu_mask(inf, -1) = %g (inf * 0)", y);
    be->binary(LG_B_RELU_MASK, &y, one, &b, one, &a, one);
    CHECK(y == 0, "relu_mask(1, NaN) = %g", y);
}

static void test_sum_to(void) {
    const int64_t xs_small[4] = {2, 3, 4, 5}, xs_big[4] = {8, 16, 32, 32};
    const int64_t ys_list[][4] = {{1, 3, 1, 1}, {1, 1, 1, 1}, {2, 1, 1, 1}, {1, 3, 4, 5},
                                  {2, 3, 4, 5}, {2, 1, 4, 1}, {1, 3, 1, 5}, {2, 1, 1, 5},
                                  {1, 1, 4, 5}, {2, 3, 1, 1}};
    lg_test_rng r = lg_test_rng_make(6);
    for (int big = 0; big < 2; big++) {
        const int64_t *xs = big ? xs_big : xs_small;
        size_t nx = numel4(xs);
        float *x = rnd(&r, nx, -1, 1);
        for (size_t yi = 0; yi < sizeof ys_list / sizeof ys_list[0]; yi++) {
            int64_t ys[4];
            for (int d = 0; d < 4; d++) ys[d] = ys_list[yi][d] == 1 ? 1 : xs[d];
            size_t ny = numel4(ys);
            double *acc = calloc(ny, sizeof(double));
            int64_t i[4];
            size_t k = 0;
            for (i[0] = 0; i[0] < xs[0]; i[0]++)
                for (i[1] = 0; i[1] < xs[1]; i[1]++)
                    for (i[2] = 0; i[2] < xs[2]; i[2]++)
                        for (i[3] = 0; i[3] < xs[3]; i[3]++) acc[bidx(ys, i)] += x[k++];
            float *ref = malloc(sizeof(float) * ny), *y = nans(ny), *y1 = nans(ny);
            to_float(ref, acc, ny);
            be->sum_to(y, ys, x, xs);
            char what[96];
            snprintf(what, sizeof what, "sum_to (%lld,%lld,%lld,%lld) <- %s", (long long)ys[0],
                     (long long)ys[1], (long long)ys[2], (long long)ys[3], big ? "big" : "small");
            lg_test_close(y, ref, ny, 1e-6, 1e-6, what);
            /* the result does not depend on the thread count */
            lg_cpu_set_threads(1);
            be->sum_to(y1, ys, x, xs);
            lg_cpu_set_threads(0);
            CHECK(memcmp(y, y1, ny * sizeof(float)) == 0, "%s differs between thread counts", what);
            free(acc);
            free(ref);
            free(y);
            free(y1);
        }
        free(x);
    }
}

static void test_reductions(void) {
    lg_test_rng r = lg_test_rng_make(7);
    const size_t sizes[] = {0, 1, 7, 5000, 100003};
    for (int s = 0; s < 5; s++) {
        size_t n = sizes[s];
        float *a = rnd(&r, n, -1, 1), *b = rnd(&r, n, -1, 1);
        double sa = 0, sab = 0;
        for (size_t i = 0; i < n; i++) {
            sa += a[i];
            sab += (double)a[i] * b[i];
        }
        float y = NAN, y1 = NAN, d = NAN, d1 = NAN;
        be->sum_all(&y, a, n);
        be->dot(&d, a, b, n);
        lg_cpu_set_threads(1);
        be->sum_all(&y1, a, n);
        be->dot(&d1, a, b, n);
        lg_cpu_set_threads(0);
        float fsa = (float)sa, fsab = (float)sab;
        lg_test_close(&y, &fsa, 1, 1e-6, 1e-6, "sum_all");
        lg_test_close(&d, &fsab, 1, 1e-6, 1e-6, "dot");
        CHECK(y == y1 && d == d1, "sum_all/dot differ between 1 and default threads (n=%zu)", n);

        /* normalize */
        if (n > 0) {
            float *x = malloc(sizeof(float) * n), *ref = malloc(sizeof(float) * n);
            memcpy(x, a, sizeof(float) * n);
            double nrm = 0;
            for (size_t i = 0; i < n; i++) nrm += (double)a[i] * a[i];
            nrm = sqrt(nrm);
            for (size_t i = 0; i < n; i++) ref[i] = (float)(a[i] / nrm);
            be->normalize(x, n, 1e-12f);
            lg_test_close(x, ref, n, 1e-7, 1e-6, "normalize");
            free(x);
            free(ref);
        }
        free(a);
        free(b);
    }
    float z[5] = {0, 0, 0, 0, 0};
    be->normalize(z, 5, 1e-12f);
    CHECK(z[0] == 0 && z[4] == 0, "normalize of 0 gave %g", z[0]);

    /* all_finite */
    size_t n = 70001;
    float *x = rnd(&r, n, -9e18f, 9e18f), y = -1;
    be->all_finite(&y, x, n);
    CHECK(y == 1.0f, "all_finite of finite data = %g", y);
    /* "finite" is |x| < LG_FINITE_MAX (2^63): a gradient beyond would make
     * Adam's g^2 inf (a checkpoint that its own loader refuses) */
    const float bad[] = {NAN, INFINITY, -INFINITY, LG_FINITE_MAX, -3e38f};
    const size_t where[] = {0, 34567, n - 1, 12, 69999};
    for (int b = 0; b < 5; b++) {
        float keep = x[where[b]];
        x[where[b]] = bad[b];
        be->all_finite(&y, x, n);
        CHECK(y == 0.0f, "all_finite missed %g at %zu", bad[b], where[b]);
        be->all_finite(&y, x + where[b], 1);
        CHECK(y == 0.0f, "all_finite of one %g", bad[b]);
        x[where[b]] = keep;
    }
    be->all_finite(&y, x, 0);
    CHECK(y == 1.0f, "all_finite of nothing = %g", y);
    free(x);
}

static void test_adam(void) {
    lg_test_rng r = lg_test_rng_make(8);
    const float b1s[] = {0.0f, 0.5f, 0.9f};
    const size_t n = 40003;
    for (int bi = 0; bi < 3; bi++) {
        float b1 = b1s[bi], b2 = 0.999f, lr = 2e-4f, eps = 1e-8f;
        float *p = rnd(&r, n, -1, 1), *m = calloc(n, sizeof(float)), *v = calloc(n, sizeof(float));
        double *pr = malloc(sizeof(double) * n), *mr = calloc(n, sizeof(double)),
               *vr = calloc(n, sizeof(double));
        for (size_t i = 0; i < n; i++) pr[i] = p[i];
        for (int64_t t = 1; t <= 5; t++) {
            float *g = rnd(&r, n, -1, 1);
            if (t == 3) g[0] = 0; /* m, v stay small: the eps regime */
            be->adam(p, m, v, g, n, lr, b1, b2, eps, t);
            double bc1 = 1 - pow(b1, (double)t), bc2 = 1 - pow(b2, (double)t);
            for (size_t i = 0; i < n; i++) {
                mr[i] = b1 * mr[i] + (1 - (double)b1) * g[i];
                vr[i] = b2 * vr[i] + (1 - (double)b2) * g[i] * g[i];
                pr[i] -= lr * (mr[i] / bc1) / (sqrt(vr[i] / bc2) + eps);
            }
            free(g);
        }
        float *pf = malloc(sizeof(float) * n), *mf = malloc(sizeof(float) * n),
              *vf = malloc(sizeof(float) * n);
        to_float(pf, pr, n);
        to_float(mf, mr, n);
        to_float(vf, vr, n);
        char what[48];
        snprintf(what, sizeof what, "adam p (b1=%g)", b1);
        lg_test_close(p, pf, n, 1e-7, 1e-6, what);
        snprintf(what, sizeof what, "adam m (b1=%g)", b1);
        lg_test_close(m, mf, n, 1e-7, 1e-5, what);
        snprintf(what, sizeof what, "adam v (b1=%g)", b1);
        lg_test_close(v, vf, n, 1e-9, 1e-5, what);
        free(p);
        free(m);
        free(v);
        free(pr);
        free(mr);
        free(vr);
        free(pf);
        free(mf);
        free(vf);
    }
    /* first step moves every parameter by ~lr (the bias-corrected ratio is +-1) */
    float p = 0, m = 0, v = 0, g = 3;
    be->adam(&p, &m, &v, &g, 1, 0.01f, 0.9f, 0.999f, 1e-8f, 1);
    CHECK(fabsf(p + 0.01f) < 1e-6f, "first adam step gave %g, want -0.01", p);
}

/* ---- resampling ---- */

static void test_resample(void) {
    lg_test_rng r = lg_test_rng_make(9);
    /* odd sizes: pooling floors (PyTorch's avg_pool2d), the last row or
     * column is not read; 1x1 pools to nothing */
    const int64_t shapes[][3] = {{1, 1, 1}, {5, 3, 7}, {3, 4, 6}, {64, 32, 32},
                                 {2, 5, 4}, {3, 4, 5}, {2, 2, 3}, {4, 33, 31}};
    for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++) {
        int64_t nc = shapes[s][0], h = shapes[s][1], w = shapes[s][2];
        size_t nx = (size_t)(nc * h * w);
        float *x = rnd(&r, nx, -1, 1), *y = nans(4 * nx), *ref = malloc(sizeof(float) * 4 * nx);
        for (int64_t p = 0; p < nc; p++)
            for (int64_t i = 0; i < 2 * h; i++)
                for (int64_t j = 0; j < 2 * w; j++)
                    ref[(p * 2 * h + i) * 2 * w + j] = x[(p * h + i / 2) * w + j / 2];
        be->upsample2x(y, x, nc, h, w);
        lg_test_close(y, ref, 4 * nx, 0, 0, "upsample2x");
        int64_t oh = h / 2, ow = w / 2;
        size_t no = (size_t)(nc * oh * ow);
        /* one guard element past the output must stay NaN */
        float *py = nans(no + 1), *pref = malloc(sizeof(float) * (no + 1));
        for (int64_t p = 0; p < nc; p++)
            for (int64_t i = 0; i < oh; i++)
                for (int64_t j = 0; j < ow; j++) {
                    const float *q = x + (p * h + 2 * i) * w + 2 * j;
                    pref[(p * oh + i) * ow + j] = (float)((double)q[0] + q[1] + q[w] + q[w + 1]);
                }
        be->sumpool2x2(py, x, nc, h, w);
        char what[64];
        snprintf(what, sizeof what, "sumpool2x2 %lldx%lldx%lld", (long long)nc, (long long)h,
                 (long long)w);
        lg_test_close(py, pref, no, 1e-6, 1e-6, what);
        CHECK(isnan(py[no]), "%s wrote past its (nc, h/2, w/2) output", what);
        free(py);
        free(pref);
        free(x);
        free(y);
        free(ref);
    }
}

/* ---- batch norm ---- */

/* double BN forward of channel-major reference; y (n,c,hw) */
static void bn_fwd_ref(double *y, double *mean, double *var, const double *x, const float *gamma,
                       const float *beta, int64_t n, int64_t c, int64_t hw, double eps) {
    double cnt = (double)(n * hw);
    for (int64_t k = 0; k < c; k++) {
        double s = 0, ss = 0;
        for (int64_t i = 0; i < n; i++)
            for (int64_t j = 0; j < hw; j++) s += x[(i * c + k) * hw + j];
        double mu = s / cnt;
        for (int64_t i = 0; i < n; i++)
            for (int64_t j = 0; j < hw; j++) {
                double d = x[(i * c + k) * hw + j] - mu;
                ss += d * d;
            }
        mean[k] = mu;
        var[k] = ss / cnt;
        for (int64_t i = 0; i < n; i++)
            for (int64_t j = 0; j < hw; j++) {
                size_t q = (size_t)((i * c + k) * hw + j);
                y[q] = gamma[k] * (x[q] - mu) / sqrt(var[k] + eps) + beta[k];
            }
    }
}

static void test_batchnorm(void) {
    lg_test_rng r = lg_test_rng_make(10);
    const int64_t shapes[][3] = {{3, 5, 7}, {4, 3, 1}, {1, 3, 9}, {8, 16, 1024}};
    const float eps = 1e-5f, mom = 0.1f;
    for (int s = 0; s < 4; s++) {
        int64_t n = shapes[s][0], c = shapes[s][1], hw = shapes[s][2];
        size_t nx = (size_t)(n * c * hw);
        float *x = rnd(&r, nx, -2, 3), *gamma = rnd(&r, c, 0.5f, 1.5f), *beta = rnd(&r, c, -1, 1);
        for (size_t i = 0; i < nx; i++) x[i] += 10.0f; /* mean far from 0 */
        float *rm = rnd(&r, c, -1, 1), *rv = rnd(&r, c, 0.5f, 2);
        float *rm0 = malloc(sizeof(float) * c), *rv0 = malloc(sizeof(float) * c);
        memcpy(rm0, rm, sizeof(float) * c);
        memcpy(rv0, rv, sizeof(float) * c);
        double *xd = malloc(sizeof(double) * nx), *yd = malloc(sizeof(double) * nx);
        double *md = malloc(sizeof(double) * c), *vd = malloc(sizeof(double) * c);
        for (size_t i = 0; i < nx; i++) xd[i] = x[i];
        bn_fwd_ref(yd, md, vd, xd, gamma, beta, n, c, hw, eps);
        float *y = nans(nx), *mean = nans(c), *rstd = nans(c), *ref = malloc(sizeof(float) * nx);
        float *cref = malloc(sizeof(float) * c);
        be->bn_train(y, mean, rstd, x, gamma, beta, rm, rv, n, c, hw, eps, mom);
        to_float(ref, yd, nx);
        lg_test_close(y, ref, nx, 1e-5, 1e-5, "bn_train y");
        to_float(cref, md, c);
        lg_test_close(mean, cref, c, 1e-6, 1e-6, "bn_train mean");
        for (int64_t k = 0; k < c; k++) cref[k] = (float)(1.0 / sqrt(vd[k] + eps));
        lg_test_close(rstd, cref, c, 1e-6, 1e-5, "bn_train rstd");
        double cnt = (double)(n * hw);
        for (int64_t k = 0; k < c; k++) cref[k] = (float)(0.9 * rm0[k] + 0.1 * md[k]);
        lg_test_close(rm, cref, c, 1e-6, 1e-6, "bn_train running mean");
        for (int64_t k = 0; k < c; k++)
            cref[k] = (float)(0.9 * rv0[k] + 0.1 * (cnt > 1 ? vd[k] * cnt / (cnt - 1) : vd[k]));
        lg_test_close(rv, cref, c, 1e-6, 1e-5, "bn_train running var (unbiased)");

        /* eval with the updated running statistics */
        be->bn_eval(y, x, gamma, beta, rm, rv, n, c, hw, eps);
        for (size_t i = 0; i < nx; i++) {
            int64_t k = (int64_t)(i / hw) % c;
            ref[i] = (float)(gamma[k] * ((double)x[i] - rm[k]) / sqrt((double)rv[k] + eps) + beta[k]);
        }
        lg_test_close(y, ref, nx, 1e-5, 1e-5, "bn_eval");

        /* backward vs central differences of the double forward:
         * L(x) = sum(dy * y(x)); exact enough with h = 1e-6 in double */
        if (n * hw > 1) {
            float *dy = rnd(&r, nx, -1, 1), *dx = nans(nx), *dg = nans(c), *db = nans(c);
            be->bn_bwd(dx, dg, db, dy, x, mean, rstd, gamma, n, c, hw);
            double *yp = malloc(sizeof(double) * nx), *mm = malloc(sizeof(double) * c),
                   *vv = malloc(sizeof(double) * c);
            size_t step = nx > 200 ? nx / 23 : 1; /* a sample of elements of the big case */
            size_t cnt_chk = 0;
            float got[200], want[200];
            for (size_t i = 0; i < nx && cnt_chk < 200; i += step) {
                double keep = xd[i], h = 1e-4 * (1 + fabs(keep)), lp = 0, lm = 0;
                xd[i] = keep + h;
                bn_fwd_ref(yp, mm, vv, xd, gamma, beta, n, c, hw, eps);
                for (size_t q = 0; q < nx; q++) lp += dy[q] * yp[q];
                xd[i] = keep - h;
                bn_fwd_ref(yp, mm, vv, xd, gamma, beta, n, c, hw, eps);
                for (size_t q = 0; q < nx; q++) lm += dy[q] * yp[q];
                xd[i] = keep;
                got[cnt_chk] = dx[i];
                want[cnt_chk] = (float)((lp - lm) / (2 * h));
                cnt_chk++;
            }
            lg_test_close(got, want, cnt_chk, 2e-4, 1e-3, "bn_bwd dx vs finite differences");
            /* dgamma = sum dy*xhat, dbeta = sum dy */
            for (int64_t k = 0; k < c; k++) {
                double sg = 0, sb = 0;
                for (int64_t i = 0; i < n; i++)
                    for (int64_t j = 0; j < hw; j++) {
                        size_t q = (size_t)((i * c + k) * hw + j);
                        sg += dy[q] * (xd[q] - md[k]) / sqrt(vd[k] + eps);
                        sb += dy[q];
                    }
                got[k] = dg[k];
                want[k] = (float)sg;
                got[c + k] = db[k];
                want[c + k] = (float)sb;
            }
            lg_test_close(got, want, 2 * (size_t)c, 1e-4, 1e-4, "bn_bwd dgamma, dbeta");
            free(dy);
            free(dx);
            free(dg);
            free(db);
            free(yp);
            free(mm);
            free(vv);
        }
        free(x);
        free(gamma);
        free(beta);
        free(rm);
        free(rv);
        free(rm0);
        free(rv0);
        free(xd);
        free(yd);
        free(md);
        free(vd);
        free(y);
        free(mean);
        free(rstd);
        free(ref);
        free(cref);
    }
}

int main(void) {
    unsetenv("LG_CPU_WINO"); /* test_conv_dispatch checks the dispatch's own choice */
    be = lg_backend_cpu();
    LG_TEST_RUN(test_lookup);
    LG_TEST_RUN(test_memory);
    LG_TEST_RUN(test_gemm);
    LG_TEST_RUN(test_conv);
    LG_TEST_RUN(test_conv_winograd);
    LG_TEST_RUN(test_conv_wino_s2);
    LG_TEST_RUN(test_conv_dispatch);
    LG_TEST_RUN(test_unary);
    LG_TEST_RUN(test_binary);
    LG_TEST_RUN(test_sum_to);
    LG_TEST_RUN(test_reductions);
    LG_TEST_RUN(test_adam);
    LG_TEST_RUN(test_resample);
    LG_TEST_RUN(test_batchnorm);
    return lg_test_summary("test_backend_cpu");
}
