/* Compares every kernel of the CUDA backend table with the CPU backend (the
 * reference) on fresh random inputs, printing one normalized MSE per
 * kernel and case, nMSE = sum((gpu - cpu)^2) / sum(cpu^2); the bar is 1e-7
 * (fp32, TF32 off), and 1e-10 for gemm and im2col convolutions, 1e-9 for
 * cuDNN convolutions (which proves TF32
 * is off). Every output is poisoned with NaN on both backends
 * before each call, so an unwritten element fails. Also checks run-to-run
 * determinism, the sticky error status, the memory pool and a CUDA-Graph
 * capture of kernels on lg_cuda_stream().
 *
 * The CUDA kernels have float4 fast paths for 16-byte-aligned buffers and
 * scalar paths otherwise: cases marked "+1" run on views one float into
 * their buffers, so both are compared. The generator's real sizes
 * ((128, 256, 32, 32) batch norm and synchronized batch norm's parts,
 * bias add and its gradient, 16 -> 32 upsampling) are included. With LG_CUDA_PROFILE=1 in the environment the
 * whole run goes through the profiling table, and test_profile checks its
 * report.
 *
 * Without a usable device it prints SKIP and exits 0, unless
 * LG_REQUIRE_CUDA=1 (tests/gpu/run.sh sets it), where that is a failure.
 * Run: tests/gpu/run.sh  (or `make test` in a CUDA build on a GPU machine). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gpu_test.h"
#include "lg_test.h"
#include "lipgan/backend.h"
#include "lipgan/status.h"

#ifdef LG_HAVE_CUDA
#include <cuda_runtime.h>

#include "lipgan/cuda.h"
#endif

#define NMSE_BAR 1e-7
/* gemm and convolutions with TF32 off must be far better than the bar:
 * TF32 itself lands near 1e-7 (about 7e-8 at k = 512 on an H100), fp32
 * near 1e-13, so this catches TF32 being on by accident. */
#define FP32_BAR 1e-10
/* cuDNN's FFT and Winograd algorithms transform the data and round a little
 * more than a direct fp32 sum; still two orders of magnitude below TF32. */
#define CUDNN_BAR 1e-9

static const lg_backend *B[2]; /* [0] cuda (under test), [1] cpu (reference) */
static lg_test_rng rng;
static int n_rows, n_bad;
static double worst_nmse;

/* Per-kernel summary: cases compared and the worst nMSE (printed last). */
enum { MAX_KERNELS = 48 };
static struct {
    const char *name;
    int cases;
    double worst;
} ksum[MAX_KERNELS];
static int n_kernels;

static void ksum_add(const char *kernel, double nmse) {
    int i = 0;
    while (i < n_kernels && strcmp(ksum[i].name, kernel) != 0) i++;
    if (i == n_kernels) {
        LG_ASSERT(n_kernels < MAX_KERNELS);
        ksum[n_kernels++].name = kernel;
    }
    ksum[i].cases++;
    if (!(nmse <= ksum[i].worst)) ksum[i].worst = nmse; /* NaN sticks */
}

/* ---- a buffer living on both backends ---- */
typedef struct pbuf {
    float *d[2];
    size_t n;
} pbuf;

static pbuf pb_alloc(size_t n) {
    pbuf p = {{NULL, NULL}, n};
    for (int k = 0; k < 2; k++) {
        p.d[k] = B[k]->alloc((n ? n : 1) * sizeof(float));
        LG_ASSERT(p.d[k]);
    }
    return p;
}

/* Both copies hold the same host data. */
static pbuf pb_host(const float *h, size_t n) {
    pbuf p = pb_alloc(n);
    for (int k = 0; k < 2; k++) B[k]->upload(p.d[k], h, n);
    return p;
}

static pbuf pb_rand(size_t n, float lo, float hi) {
    float *h = malloc((n ? n : 1) * sizeof(float));
    lg_test_fill_uniform(&rng, h, n, lo, hi);
    pbuf p = pb_host(h, n);
    free(h);
    return p;
}

/* Random magnitude in [lo, hi) with a random sign (away from 0). */
static pbuf pb_rand_away0(size_t n, float lo, float hi) {
    float *h = malloc((n ? n : 1) * sizeof(float));
    lg_test_fill_away0(&rng, h, n, lo, hi);
    pbuf p = pb_host(h, n);
    free(h);
    return p;
}

static void pb_poison(pbuf *p) {
    for (int k = 0; k < 2; k++) B[k]->fill(p->d[k], NAN, p->n);
}

static pbuf pb_nan(size_t n) {
    pbuf p = pb_alloc(n);
    pb_poison(&p);
    return p;
}

static void pb_free(pbuf *p) {
    for (int k = 0; k < 2; k++) B[k]->free(p->d[k]);
}

/* n elements of p starting at element off (not to be freed: free p). */
static pbuf pb_view(const pbuf *p, size_t off, size_t n) {
    LG_ASSERT(off + n <= p->n);
    pbuf v = {{p->d[0] + off, p->d[1] + off}, n};
    return v;
}

/* A random buffer of n elements, seen at offset off (0 or 1) of a larger
 * one: off = 1 makes the CUDA kernels take their unaligned paths. */
static pbuf pb_rand_at(pbuf *base, size_t off, size_t n, float lo, float hi) {
    *base = pb_rand(n + off, lo, hi);
    return pb_view(base, off, n);
}
static pbuf pb_nan_at(pbuf *base, size_t off, size_t n) {
    *base = pb_nan(n + off);
    return pb_view(base, off, n);
}

static float *pb_get(const pbuf *p, int k) {
    float *h = malloc((p->n ? p->n : 1) * sizeof(float));
    B[k]->download(h, p->d[k], p->n);
    return h;
}

/* Runs of the CUDA side must repeat bit for bit: fails otherwise. */
static void check_same_bits(const char *kernel, const char *what, const float *first,
                            const pbuf *p) {
    float *again = pb_get(p, 0);
    CHECK(memcmp(first, again, p->n * sizeof(float)) == 0, "%s %s: two runs differ bitwise",
          kernel, what);
    free(again);
}

static double bar_of(const char *kernel) {
    if (strncmp(kernel, "conv2d", 6) == 0 && !strstr(kernel, "/i2c")) return CUDNN_BAR;
    int fp32 = strncmp(kernel, "gemm", 4) == 0 || strncmp(kernel, "conv2d", 6) == 0;
    return fp32 ? FP32_BAR : NMSE_BAR;
}

/* Prints one table row and fails the check above the bar (or on NaN). */
static double compare(const char *kernel, const char *what, const pbuf *p) {
    float *g = pb_get(p, 0), *c = pb_get(p, 1);
    double num = 0.0, den = 0.0;
    size_t nonfinite = 0;
    for (size_t i = 0; i < p->n; i++) {
        if (!isfinite(g[i]) || !isfinite(c[i])) nonfinite++;
        double d = (double)g[i] - c[i];
        num += d * d;
        den += (double)c[i] * c[i];
    }
    double nmse = den > 0.0 ? num / den : num;
    if (nonfinite) nmse = NAN;
    int ok = nmse <= bar_of(kernel);
    printf("  %-18s %-40s n=%-9zu nmse=%.3e %s\n", kernel, what, p->n, nmse,
           ok ? "ok" : "FAIL");
    n_rows++;
    if (!ok) n_bad++;
    if (!(nmse <= worst_nmse)) worst_nmse = nmse;
    ksum_add(kernel, nmse);
    CHECK(ok, "%s %s: nmse %.3e (bar %.0e), %zu non-finite elements", kernel, what, nmse,
          bar_of(kernel), nonfinite);
    free(g);
    free(c);
    return nmse;
}

/* Exact comparison (for outputs that must match bit for bit). */
static void compare_exact(const char *kernel, const char *what, const pbuf *p) {
    float *g = pb_get(p, 0), *c = pb_get(p, 1);
    int same = memcmp(g, c, p->n * sizeof(float)) == 0;
    printf("  %-18s %-40s n=%-9zu exact %s (gpu %g, cpu %g)\n", kernel, what, p->n,
           same ? "ok" : "FAIL", (double)g[0], (double)c[0]);
    n_rows++;
    if (!same) n_bad++;
    ksum_add(kernel, same ? 0.0 : NAN);
    CHECK(same, "%s %s: results differ", kernel, what);
    free(g);
    free(c);
}

/* ---- gemm ---- */

static void case_gemm(int ta, int tb, int m, int n, int k, int pad, float alpha, float beta) {
    int lda = (ta ? m : k) + pad, ldb = (tb ? k : n) + pad, ldc = n + pad;
    pbuf a = pb_rand((size_t)(ta ? k : m) * lda, -1, 1);
    pbuf b = pb_rand((size_t)(tb ? n : k) * ldb, -1, 1);
    /* beta == 0 must not read C: poison it; else start from the same C */
    pbuf c = beta == 0.0f ? pb_nan((size_t)m * ldc) : pb_rand((size_t)m * ldc, -1, 1);
    for (int q = 0; q < 2; q++)
        B[q]->gemm(ta, tb, m, n, k, alpha, a.d[q], lda, b.d[q], ldb, beta, c.d[q], ldc);
    /* compare only the m x n window: padding columns are not written */
    float *g = pb_get(&c, 0), *r = pb_get(&c, 1);
    pbuf win = pb_alloc((size_t)m * n);
    float *wg = malloc((size_t)m * n * sizeof(float)), *wr = malloc((size_t)m * n * sizeof(float));
    for (int i = 0; i < m; i++)
        for (int j = 0; j < n; j++) {
            wg[(size_t)i * n + j] = g[(size_t)i * ldc + j];
            wr[(size_t)i * n + j] = r[(size_t)i * ldc + j];
        }
    B[0]->upload(win.d[0], wg, (size_t)m * n);
    B[1]->upload(win.d[1], wr, (size_t)m * n);
    char what[96];
    snprintf(what, sizeof what, "ta%d tb%d %dx%dx%d ld+%d a%.1f b%.1f", ta, tb, m, n, k, pad,
             (double)alpha, (double)beta);
    compare("gemm", what, &win);
    free(g), free(r), free(wg), free(wr);
    pb_free(&a), pb_free(&b), pb_free(&c), pb_free(&win);
}

static void test_gemm(void) {
    for (int ta = 0; ta < 2; ta++)
        for (int tb = 0; tb < 2; tb++) {
            case_gemm(ta, tb, 37, 53, 29, 0, 1.0f, 0.0f);
            case_gemm(ta, tb, 37, 53, 29, 3, 1.3f, 0.7f);
        }
    case_gemm(0, 0, 257, 129, 300, 0, 1.0f, 0.0f);
    case_gemm(1, 0, 1, 513, 64, 0, 1.0f, 1.0f);
    case_gemm(0, 1, 64, 1, 1000, 1, 0.5f, 0.0f);
}

/* ---- convolutions ----
 * Run twice: through cuDNN (when it loads; LG_REQUIRE_CUDNN=1 makes its
 * absence a failure) and through im2col + cuBLAS (lg_cuda_set_cudnn(0)).
 * Kernel names carry the path ("/i2c" for im2col); both get the fp32 bar. */

static int g_conv_mode; /* 0: cuDNN (if loaded), 1: im2col */
static const char *const CONV_NAMES[2][3] = {
    {"conv2d", "conv2d_bwd_data", "conv2d_bwd_weight"},
    {"conv2d/i2c", "conv2d_bwd_data/i2c", "conv2d_bwd_weight/i2c"},
};

static void test_conv_case(int n, int c, int h, int w, int oc, int k, int stride, int pad) {
    const char *const *kn = CONV_NAMES[g_conv_mode];
    lg_conv_geom g = {n, c, h, w, oc, k, k, stride, pad, lg_conv_out_size(h, k, stride, pad),
                      lg_conv_out_size(w, k, stride, pad)};
    LG_ASSERT(g.oh > 0 && g.ow > 0);
    size_t nx = (size_t)n * c * h * w, nw = (size_t)oc * c * k * k;
    size_t ny = (size_t)n * oc * g.oh * g.ow;
    char what[96];
    snprintf(what, sizeof what, "n%d c%d %dx%d oc%d k%d s%d p%d", n, c, h, w, oc, k, stride, pad);
    pbuf x = pb_rand(nx, -1, 1), wt = pb_rand(nw, -1, 1), dy = pb_rand(ny, -1, 1);
    float *ws[2];
    for (int q = 0; q < 2; q++) {
        size_t wn = B[q]->conv_workspace(&g);
        ws[q] = B[q]->alloc((wn ? wn : 1) * sizeof(float));
        LG_ASSERT(ws[q]);
        B[q]->fill(ws[q], NAN, wn); /* kernels must not rely on its contents */
    }
    pbuf y = pb_nan(ny), dx = pb_nan(nx), dw = pb_nan(nw);
    for (int q = 0; q < 2; q++) B[q]->conv2d(y.d[q], x.d[q], wt.d[q], &g, ws[q]);
    compare(kn[0], what, &y);
    for (int q = 0; q < 2; q++) B[q]->conv2d_bwd_data(dx.d[q], dy.d[q], wt.d[q], &g, ws[q]);
    compare(kn[1], what, &dx);
    for (int q = 0; q < 2; q++) B[q]->conv2d_bwd_weight(dw.d[q], x.d[q], dy.d[q], &g, ws[q]);
    compare(kn[2], what, &dw);
#ifdef LG_HAVE_CUDA
    int algos[3];
    if (lg_cuda_conv_algos(&g, algos))
        printf("  %-18s %-40s cuDNN algorithms fwd %d, bwd data %d, bwd filter %d (-1: im2col, "
               "-3/-4: winograd F(2)/F(4))\n",
               "", what, algos[0], algos[1], algos[2]);
    /* LG_CUDA_WINO=force / force4: every 3x3 stride-1 pad-1 pass must have run
     * lipgan's Winograd F(2x2,3x3) (-3) / F(4x4,3x3) (-4) */
    const char *wino = getenv("LG_CUDA_WINO");
    int want = !wino ? 0 : !strcmp(wino, "force") ? -3 : !strcmp(wino, "force4") ? -4 : 0;
    if (g_conv_mode == 0 && want && k == 3 && stride == 1 && pad == 1 &&
        lg_cuda_conv_algos(&g, algos))
        CHECK(algos[0] == want && algos[1] == want && algos[2] == want,
              "%s: LG_CUDA_WINO=%s but the passes ran %d %d %d", what, wino, algos[0], algos[1],
              algos[2]);
#endif
    /* run-to-run determinism of both backward passes (reductions over the
     * batch and over the output channels) */
    float *first = pb_get(&dw, 0), *first_dx = pb_get(&dx, 0);
    B[0]->fill(dw.d[0], NAN, nw);
    B[0]->fill(dx.d[0], NAN, nx);
    B[0]->conv2d_bwd_weight(dw.d[0], x.d[0], dy.d[0], &g, ws[0]);
    B[0]->conv2d_bwd_data(dx.d[0], dy.d[0], wt.d[0], &g, ws[0]);
    float *second = pb_get(&dw, 0), *second_dx = pb_get(&dx, 0);
    CHECK(memcmp(first, second, nw * sizeof(float)) == 0,
          "%s %s: two runs differ bitwise", kn[2], what);
    CHECK(memcmp(first_dx, second_dx, nx * sizeof(float)) == 0,
          "%s %s: two runs differ bitwise", kn[1], what);
    free(first), free(second), free(first_dx), free(second_dx);
    for (int q = 0; q < 2; q++) B[q]->free(ws[q]);
    pb_free(&x), pb_free(&wt), pb_free(&dy), pb_free(&y), pb_free(&dx), pb_free(&dw);
}

static void conv_cases(void) {
    test_conv_case(2, 3, 7, 9, 5, 3, 1, 1);
    test_conv_case(3, 4, 8, 8, 6, 3, 2, 1);
    test_conv_case(3, 6, 10, 11, 7, 3, 2, 0);
    test_conv_case(1, 3, 5, 5, 2, 3, 1, 0);
    test_conv_case(2, 5, 9, 7, 4, 1, 1, 0);   /* 1x1 direct path */
    test_conv_case(1, 5, 9, 7, 4, 1, 1, 0);   /* direct, one image */
    test_conv_case(2, 3, 9, 9, 4, 1, 2, 0);   /* 1x1 strided */
    test_conv_case(3, 2, 6, 5, 3, 1, 1, 1);   /* 1x1 padded */
    test_conv_case(4, 8, 16, 16, 16, 4, 2, 1); /* DCGAN-style 4x4 s2 p1 */
    test_conv_case(8, 16, 16, 16, 32, 3, 1, 1);
    test_conv_case(16, 3, 32, 32, 64, 3, 1, 1); /* CIFAR first layer */
    test_conv_case(5, 7, 13, 11, 9, 5, 3, 2);  /* odd everything */
    /* big enough that the CUDA backend splits the batch into chunks
     * (12 images, then 1: also the single-image path) */
    test_conv_case(13, 64, 64, 64, 64, 3, 1, 1);
    /* the ResNet models' geometries (where cuDNN picks its fast kernels) */
    test_conv_case(16, 128, 16, 16, 128, 3, 1, 1);
    test_conv_case(128, 128, 8, 8, 128, 3, 1, 1); /* D's 8x8 layers on [real; fake] */
    test_conv_case(8, 256, 32, 32, 256, 3, 1, 1);
    test_conv_case(16, 256, 8, 8, 256, 1, 1, 0);
}

static void test_conv(void) {
#ifdef LG_HAVE_CUDA
    int have = gpu_test_cudnn("  ");
    g_conv_mode = 0;
    if (have) {
        conv_cases();
        printf("  after the cuDNN cases: %s\n", lg_cuda_cudnn_info());
        /* a failed cuDNN call or benchmark (cudnnFind*Ex), or a Winograd pass that
         * disagreed with im2col when timed, is reported there as a fallback */
        CHECK(!strstr(lg_cuda_cudnn_info(), "fallback"), "%s", lg_cuda_cudnn_info());
    }
    lg_cuda_set_cudnn(0);
    CHECK(!lg_cuda_cudnn(), "lg_cuda_set_cudnn(0) did not switch cuDNN off");
    g_conv_mode = 1;
    conv_cases();
    lg_cuda_set_cudnn(1);
    g_conv_mode = 0;
#else
    conv_cases();
#endif
}

/* ---- elementwise ---- */

static void test_unary(void) {
    static const struct {
        lg_unary op;
        const char *name;
        float lo, hi, alpha;
        int away0; /* inputs of magnitude [lo, hi) with random sign */
    } cs[] = {
        {LG_U_RELU, "relu", 0.01f, 3, 0, 1},     {LG_U_LRELU, "lrelu", 0.01f, 3, 0.2f, 1},
        {LG_U_TANH, "tanh", -4, 4, 0, 0},         {LG_U_SIGMOID, "sigmoid", -30, 30, 0, 0},
        {LG_U_SOFTPLUS, "softplus", -30, 30, 0, 0}, {LG_U_SQUARE, "square", -3, 3, 0, 0},
        {LG_U_SQRT, "sqrt", 0, 9, 0, 0},          {LG_U_NEG, "neg", -3, 3, 0, 0},
        {LG_U_SCALE, "scale", -3, 3, 1.7f, 0},    {LG_U_ADD_SCALAR, "add_scalar", -3, 3, 0.3f, 0},
        {LG_U_STEP, "step", 0.01f, 3, 0.2f, 1},   {LG_U_RECIP, "recip", 0.1f, 3, 0, 1},
        {LG_U_EXP, "exp", -8, 8, 0, 0},           {LG_U_LOG, "log", 0.01f, 10, 0, 0},
        {LG_U_ABS, "abs", -3, 3, 0, 0},           {LG_U_SIGN, "sign", 0.01f, 3, 0, 1},
        {LG_U_CLAMP, "clamp", -2, 2, 0.5f, 0},
    };
    const size_t n = 10007;
    for (size_t i = 0; i < sizeof cs / sizeof cs[0]; i++) {
        pbuf x = cs[i].away0 ? pb_rand_away0(n, cs[i].lo, cs[i].hi)
                             : pb_rand(n, cs[i].lo, cs[i].hi);
        pbuf y = pb_nan(n);
        for (int q = 0; q < 2; q++) B[q]->unary(cs[i].op, y.d[q], x.d[q], n, cs[i].alpha);
        char what[64];
        snprintf(what, sizeof what, "%s alpha %.2f", cs[i].name, (double)cs[i].alpha);
        compare("unary", what, &y);
        /* in place: y aliases x */
        for (int q = 0; q < 2; q++) B[q]->unary(cs[i].op, x.d[q], x.d[q], n, cs[i].alpha);
        snprintf(what, sizeof what, "%s in place", cs[i].name);
        compare("unary", what, &x);
        pb_free(&x), pb_free(&y);
    }
    /* unaligned views (scalar kernel), and the vector kernel's tail */
    for (size_t off = 0; off < 2; off++) {
        pbuf xb, yb;
        pbuf x = pb_rand_at(&xb, off, 4099, -3, 3), y = pb_nan_at(&yb, off, 4099);
        for (int q = 0; q < 2; q++) B[q]->unary(LG_U_TANH, y.d[q], x.d[q], 4099, 0);
        compare("unary", off ? "tanh n 4099 +1" : "tanh n 4099", &y);
        pb_free(&xb), pb_free(&yb);
    }
}

static int64_t numel4(const int64_t s[4]) { return s[0] * s[1] * s[2] * s[3]; }

static void test_binary(void) {
    static const int64_t shapes[][3][4] = {
        /* y, a, b */
        {{2, 3, 5, 7}, {2, 3, 5, 7}, {2, 3, 5, 7}},
        {{2, 3, 5, 7}, {2, 3, 5, 7}, {1, 3, 1, 1}},
        {{2, 3, 5, 7}, {1, 1, 5, 7}, {2, 3, 1, 1}},
        {{2, 3, 5, 7}, {2, 1, 5, 1}, {1, 3, 1, 7}},
        {{1, 1, 9, 13}, {1, 1, 1, 1}, {1, 1, 9, 13}},
        {{64, 32, 8, 8}, {64, 32, 8, 8}, {1, 32, 1, 1}},
        {{2, 3, 5, 7}, {2, 3, 5, 7}, {1, 1, 1, 1}},  /* scalar operand */
        {{2, 3, 5, 7}, {2, 1, 5, 7}, {2, 3, 5, 7}},  /* broadcast a, merged dims */
        {{4, 6, 1, 9}, {1, 6, 1, 9}, {4, 1, 1, 1}},  /* y has a size-1 dim */
        /* the bias fast path: channel (float4 when H*W % 4 == 0), a bias on
         * the left, a row broadcast, a scalar, a channel-and-row run */
        {{4, 6, 5, 8}, {4, 6, 5, 8}, {1, 6, 1, 1}},
        {{2, 3, 4, 8}, {1, 3, 1, 1}, {2, 3, 4, 8}},
        {{1, 1, 128, 64}, {1, 1, 128, 64}, {1, 1, 1, 64}},
        {{1, 1, 7, 10}, {1, 1, 1, 10}, {1, 1, 7, 10}},
        {{2, 3, 4, 8}, {2, 3, 4, 8}, {1, 1, 1, 1}},
        {{4, 6, 5, 9}, {4, 6, 5, 9}, {1, 6, 5, 1}},
        {{4, 6, 5, 9}, {4, 6, 5, 9}, {4, 6, 1, 1}},
    };
    static const char *names[] = {"add", "sub", "mul", "div", "max", "add_relu", "relu_mask"};
    _Static_assert(sizeof names / sizeof names[0] == LG_B_COUNT, "a name per binary op");
    for (int op = 0; op < LG_B_COUNT; op++)
        for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++) {
            const int64_t *ys = shapes[s][0], *as = shapes[s][1], *bs = shapes[s][2];
            pbuf a = pb_rand((size_t)numel4(as), -2, 2);
            pbuf b = op == LG_B_DIV ? pb_rand_away0((size_t)numel4(bs), 0.2f, 2)
                                    : pb_rand((size_t)numel4(bs), -2, 2);
            pbuf y = pb_nan((size_t)numel4(ys));
            for (int q = 0; q < 2; q++)
                B[q]->binary((lg_binary)op, y.d[q], ys, a.d[q], as, b.d[q], bs);
            char what[96];
            snprintf(what, sizeof what, "%s (%lld,%lld,%lld,%lld)<-(%lld,%lld,%lld,%lld)", names[op],
                     (long long)ys[0], (long long)ys[1], (long long)ys[2], (long long)ys[3],
                     (long long)bs[0], (long long)bs[1], (long long)bs[2], (long long)bs[3]);
            compare("binary", what, &y);
            pb_free(&a), pb_free(&b), pb_free(&y);
        }
    /* y aliases a (same shapes) */
    int64_t sh[4] = {3, 4, 5, 6};
    pbuf a = pb_rand(360, -2, 2), b = pb_rand(360, -2, 2);
    for (int q = 0; q < 2; q++) B[q]->binary(LG_B_MUL, a.d[q], sh, a.d[q], sh, b.d[q], sh);
    compare("binary", "mul in place (y == a)", &a);
    pb_free(&a), pb_free(&b);
    /* unaligned views: scalar kernels of the same-shape and bias paths;
     * in place on the bias path (y == the full operand) */
    {
        int64_t ys[4] = {4, 6, 5, 8}, bs[4] = {1, 6, 1, 1};
        size_t n = 960;
        pbuf ab, bb, cb, yb;
        pbuf x = pb_rand_at(&ab, 1, n, -2, 2), z = pb_rand_at(&bb, 1, n, -2, 2);
        pbuf bias = pb_rand_at(&cb, 1, 6, -2, 2), y = pb_nan_at(&yb, 1, n);
        for (int q = 0; q < 2; q++) B[q]->binary(LG_B_SUB, y.d[q], ys, x.d[q], ys, z.d[q], ys);
        compare("binary", "sub (4,6,5,8) same shape +1", &y);
        pb_poison(&y);
        for (int q = 0; q < 2; q++) B[q]->binary(LG_B_ADD, y.d[q], ys, x.d[q], ys, bias.d[q], bs);
        compare("binary", "add (4,6,5,8)<-(1,6,1,1) +1", &y);
        for (int q = 0; q < 2; q++) B[q]->binary(LG_B_MUL, x.d[q], ys, x.d[q], ys, bias.d[q], bs);
        compare("binary", "mul (4,6,5,8)<-(1,6,1,1) +1 in place", &x);
        pb_free(&ab), pb_free(&bb), pb_free(&cb), pb_free(&yb);
    }
    /* the generator's bias add at 32x32, and the relu-backward product */
    {
        int64_t ys[4] = {128, 256, 32, 32}, bs[4] = {1, 256, 1, 1};
        size_t n = (size_t)numel4(ys);
        pbuf x = pb_rand(n, -2, 2), z = pb_rand(n, -2, 2), bias = pb_rand(256, -1, 1);
        pbuf y = pb_nan(n);
        for (int q = 0; q < 2; q++) B[q]->binary(LG_B_ADD, y.d[q], ys, x.d[q], ys, bias.d[q], bs);
        compare("binary", "add (128,256,32,32)<-(1,256,1,1)", &y);
        pb_poison(&y);
        for (int q = 0; q < 2; q++) B[q]->binary(LG_B_MUL, y.d[q], ys, x.d[q], ys, z.d[q], ys);
        compare("binary", "mul (128,256,32,32) same shape", &y);
        pb_free(&x), pb_free(&z), pb_free(&bias), pb_free(&y);
    }
}

static void test_sum_to(void) {
    static const int64_t cs[][2][4] = {
        /* x, y */
        {{4, 3, 5, 7}, {1, 3, 1, 1}},    {{4, 3, 5, 7}, {1, 3, 5, 7}},
        {{4, 3, 5, 7}, {4, 1, 1, 1}},    {{4, 3, 5, 7}, {1, 1, 1, 1}},
        {{4, 3, 5, 7}, {4, 3, 1, 7}},    {{4, 3, 5, 7}, {1, 1, 5, 7}},
        {{4, 3, 5, 7}, {4, 3, 5, 7}},    {{64, 128, 8, 8}, {1, 128, 1, 1}},
        {{64, 256, 4, 4}, {1, 256, 4, 4}}, {{1, 1, 300, 70}, {1, 1, 1, 70}},
        {{1, 1, 1, 100000}, {1, 1, 1, 1}},
        /* the fast paths: bias gradients (many and few channels, split
         * reductions), [K,R,K] and [R,K] with few outputs, and a 4-segment
         * pattern for the generic kernel */
        {{128, 256, 16, 16}, {1, 256, 1, 1}}, {{128, 3, 32, 32}, {1, 3, 1, 1}},
        {{1, 64, 100, 64}, {1, 64, 1, 64}},   {{1, 1, 5000, 3}, {1, 1, 1, 3}},
        {{2, 3, 5, 7}, {2, 1, 5, 1}},         {{1, 3, 40000, 1}, {1, 3, 1, 1}},
        {{3, 1, 1, 70000}, {3, 1, 1, 1}},
        /* the generator's bias gradient at 32x32 (channel sums, float4, 8
         * chunks per channel), global sum pooling, odd inner sizes */
        {{128, 256, 32, 32}, {1, 256, 1, 1}}, {{64, 128, 4, 4}, {64, 128, 1, 1}},
        {{7, 33, 5, 5}, {1, 33, 1, 1}},
    };
    for (size_t i = 0; i < sizeof cs / sizeof cs[0]; i++) {
        const int64_t *xs = cs[i][0], *ys = cs[i][1];
        pbuf x = pb_rand((size_t)numel4(xs), -1, 1), y = pb_nan((size_t)numel4(ys));
        for (int q = 0; q < 2; q++) B[q]->sum_to(y.d[q], ys, x.d[q], xs);
        char what[96];
        snprintf(what, sizeof what, "(%lld,%lld,%lld,%lld)->(%lld,%lld,%lld,%lld)",
                 (long long)xs[0], (long long)xs[1], (long long)xs[2], (long long)xs[3],
                 (long long)ys[0], (long long)ys[1], (long long)ys[2], (long long)ys[3]);
        compare("sum_to", what, &y);
        float *first = pb_get(&y, 0);
        B[0]->fill(y.d[0], NAN, y.n);
        B[0]->sum_to(y.d[0], ys, x.d[0], xs);
        check_same_bits("sum_to", what, first, &y);
        free(first);
        pb_free(&x), pb_free(&y);
    }
    /* an unaligned bias gradient (channel sums, scalar loads) */
    int64_t xs[4] = {16, 64, 8, 8}, ys[4] = {1, 64, 1, 1};
    pbuf xb, x = pb_rand_at(&xb, 1, 65536, -1, 1), y = pb_nan(64);
    for (int q = 0; q < 2; q++) B[q]->sum_to(y.d[q], ys, x.d[q], xs);
    compare("sum_to", "(16,64,8,8)->(1,64,1,1) +1", &y);
    pb_free(&xb), pb_free(&y);
}

/* ---- scalar reductions and vector helpers ---- */

static void test_reductions(void) {
    static const size_t sizes[] = {1, 1000, 65537, ((size_t)1 << 20) + 3};
    for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
        size_t n = sizes[i];
        char what[64];
        snprintf(what, sizeof what, "n %zu", n);
        /* offset so the sum is not near 0, which would inflate the nMSE */
        pbuf a = pb_rand(n, -0.5f, 1.0f), b = pb_rand(n, -0.5f, 1.0f);
        pbuf s = pb_nan(1);
        for (int q = 0; q < 2; q++) B[q]->sum_all(s.d[q], a.d[q], n);
        compare("sum_all", what, &s);
        /* determinism: a second run gives the same bits */
        float s1, s2;
        B[0]->download(&s1, s.d[0], 1);
        B[0]->fill(s.d[0], NAN, 1);
        B[0]->sum_all(s.d[0], a.d[0], n);
        B[0]->download(&s2, s.d[0], 1);
        CHECK(memcmp(&s1, &s2, sizeof s1) == 0, "sum_all %s: two runs differ", what);
        pb_poison(&s);
        for (int q = 0; q < 2; q++) B[q]->dot(s.d[q], a.d[q], b.d[q], n);
        compare("dot", what, &s);
        for (int q = 0; q < 2; q++) B[q]->normalize(a.d[q], n, 1e-12f);
        compare("normalize", what, &a);
        pb_poison(&s);
        for (int q = 0; q < 2; q++) B[q]->all_finite(s.d[q], b.d[q], n);
        compare_exact("all_finite", what, &s);
        /* plant one Inf, then one NaN, at a random position */
        size_t at = (size_t)(lg_test_rng_u64(&rng) % n);
        const float bad[2] = {INFINITY, NAN};
        for (int j = 0; j < 2; j++) {
            for (int q = 0; q < 2; q++) B[q]->upload(b.d[q] + at, &bad[j], 1);
            pb_poison(&s);
            for (int q = 0; q < 2; q++) B[q]->all_finite(s.d[q], b.d[q], n);
            snprintf(what, sizeof what, "n %zu, %s at %zu", n, j ? "NaN" : "Inf", at);
            compare_exact("all_finite", what, &s);
        }
        pb_free(&a), pb_free(&b), pb_free(&s);
    }
    /* normalize of a tiny vector divides by eps, not by its norm */
    pbuf t = pb_rand(17, -1e-9f, 1e-9f);
    for (int q = 0; q < 2; q++) B[q]->normalize(t.d[q], 17, 1e-6f);
    compare("normalize", "n 17, norm below eps", &t);
    pb_free(&t);
}

/* ---- resampling ---- */

static void test_resample(void) {
    /* {nc, h, w, offset}: odd widths and offset 1 take the scalar kernels;
     * 32768 x 16x16 is the generator's last upsampling (128 x 256 planes).
     * x itself is pooled too: odd h or w floor (PyTorch's avg_pool2d), the
     * scalar kernel; 4 x 5x8 has w % 4 == 0 with h odd, which the vector
     * kernel must not take. */
    static const int64_t cs[][4] = {{6, 5, 7, 0}, {1, 1, 1, 0},  {128, 16, 16, 0},
                                    {5, 3, 2, 0}, {7, 2, 6, 0},  {128, 16, 16, 1},
                                    {9, 4, 4, 1}, {32768, 16, 16, 0}, {4, 5, 8, 0},
                                    {3, 7, 9, 1}, {2, 33, 31, 0}, {3, 2, 3, 1}};
    for (size_t i = 0; i < sizeof cs / sizeof cs[0]; i++) {
        int64_t nc = cs[i][0], h = cs[i][1], w = cs[i][2];
        size_t off = (size_t)cs[i][3];
        char what[64];
        snprintf(what, sizeof what, "nc %lld, %lldx%lld%s", (long long)nc, (long long)h,
                 (long long)w, off ? " +1" : "");
        pbuf xb, yb, pb, ub;
        pbuf x = pb_rand_at(&xb, off, (size_t)(nc * h * w), -1, 1);
        pbuf y = pb_nan_at(&yb, off, (size_t)(nc * 4 * h * w));
        for (int q = 0; q < 2; q++) B[q]->upsample2x(y.d[q], x.d[q], nc, h, w);
        compare("upsample2x", what, &y);
        if (h >= 2 && w >= 2) {
            /* (nc, h, w) -> (nc, h/2, w/2) rounded down; one guard element
             * past the output must stay NaN */
            size_t no = (size_t)(nc * (h / 2) * (w / 2));
            pbuf ob;
            pbuf o = pb_nan_at(&ob, off, no + 1);
            for (int q = 0; q < 2; q++) B[q]->sumpool2x2(o.d[q], x.d[q], nc, h, w);
            pbuf ov = pb_view(&o, 0, no);
            compare("sumpool2x2", what, &ov);
            float *gd = pb_get(&o, 0);
            CHECK(isnan(gd[no]), "sumpool2x2 %s: the CUDA kernel wrote past its output", what);
            free(gd);
            pb_free(&ob);
        }
        /* pool the upsampled planes back: (nc, 2h, 2w) -> (nc, h, w) */
        pbuf p = pb_nan_at(&pb, off, (size_t)(nc * h * w));
        pbuf u = pb_rand_at(&ub, off, (size_t)(nc * 4 * h * w), -1, 1);
        for (int q = 0; q < 2; q++) B[q]->sumpool2x2(p.d[q], u.d[q], nc, 2 * h, 2 * w);
        snprintf(what, sizeof what, "nc %lld, %lldx%lld%s", (long long)nc, (long long)(2 * h),
                 (long long)(2 * w), off ? " +1" : "");
        compare("sumpool2x2", what, &p);
        pb_free(&xb), pb_free(&yb), pb_free(&pb), pb_free(&ub);
    }
}

/* ---- batch norm ---- */

/* off = 1: x, y, dy, dx are unaligned views (scalar loads). */
static void test_bn_case(int64_t n, int64_t c, int64_t hw, size_t off) {
    size_t nx = (size_t)(n * c * hw);
    char what[64];
    snprintf(what, sizeof what, "n %lld c %lld hw %lld%s", (long long)n, (long long)c,
             (long long)hw, off ? " +1" : "");
    const float eps = 1e-5f, mom = 0.1f;
    pbuf xb, yb, dyb, dxb;
    pbuf x = pb_rand_at(&xb, off, nx, -1.5f, 2.5f), gamma = pb_rand((size_t)c, 0.5f, 1.5f);
    pbuf beta = pb_rand((size_t)c, -0.5f, 0.5f);
    pbuf rm = pb_rand((size_t)c, -0.2f, 0.2f), rv = pb_rand((size_t)c, 0.5f, 2.0f);
    pbuf y = pb_nan_at(&yb, off, nx), mean = pb_nan((size_t)c), rstd = pb_nan((size_t)c);
    for (int q = 0; q < 2; q++)
        B[q]->bn_train(y.d[q], mean.d[q], rstd.d[q], x.d[q], gamma.d[q], beta.d[q], rm.d[q],
                       rv.d[q], n, c, hw, eps, mom);
    compare("bn_train y", what, &y);
    {
        /* run to run: same bits (fixed-order partial sums) */
        float *first = pb_get(&y, 0), *first_m = pb_get(&rstd, 0);
        pbuf rm2 = pb_rand((size_t)c, -0.2f, 0.2f), rv2 = pb_rand((size_t)c, 0.5f, 2.0f);
        B[0]->fill(y.d[0], NAN, nx);
        B[0]->fill(rstd.d[0], NAN, (size_t)c);
        B[0]->bn_train(y.d[0], mean.d[0], rstd.d[0], x.d[0], gamma.d[0], beta.d[0], rm2.d[0],
                       rv2.d[0], n, c, hw, eps, mom);
        check_same_bits("bn_train y", what, first, &y);
        check_same_bits("bn_train rstd", what, first_m, &rstd);
        free(first), free(first_m);
        pb_free(&rm2), pb_free(&rv2);
    }
    compare("bn_train mean", what, &mean);
    compare("bn_train rstd", what, &rstd);
    compare("bn_train run_mean", what, &rm);
    compare("bn_train run_var", what, &rv);
    pb_poison(&y);
    for (int q = 0; q < 2; q++)
        B[q]->bn_eval(y.d[q], x.d[q], gamma.d[q], beta.d[q], rm.d[q], rv.d[q], n, c, hw, eps);
    compare("bn_eval", what, &y);
    /* backward with the CPU's statistics on both, so only bn_bwd differs */
    float *hm = pb_get(&mean, 1), *hr = pb_get(&rstd, 1);
    B[0]->upload(mean.d[0], hm, (size_t)c);
    B[0]->upload(rstd.d[0], hr, (size_t)c);
    free(hm), free(hr);
    pbuf dy = pb_rand_at(&dyb, off, nx, -1, 1), dx = pb_nan_at(&dxb, off, nx);
    pbuf dg = pb_nan((size_t)c), db = pb_nan((size_t)c);
    for (int q = 0; q < 2; q++)
        B[q]->bn_bwd(dx.d[q], dg.d[q], db.d[q], dy.d[q], x.d[q], mean.d[q], rstd.d[q],
                     gamma.d[q], n, c, hw);
    compare("bn_bwd dx", what, &dx);
    compare("bn_bwd dgamma", what, &dg);
    compare("bn_bwd dbeta", what, &db);
    {
        float *first = pb_get(&dx, 0), *first_g = pb_get(&dg, 0);
        B[0]->fill(dx.d[0], NAN, nx);
        B[0]->fill(dg.d[0], NAN, (size_t)c);
        B[0]->bn_bwd(dx.d[0], dg.d[0], db.d[0], dy.d[0], x.d[0], mean.d[0], rstd.d[0],
                     gamma.d[0], n, c, hw);
        check_same_bits("bn_bwd dx", what, first, &dx);
        check_same_bits("bn_bwd dgamma", what, first_g, &dg);
        free(first), free(first_g);
    }
    pb_free(&xb), pb_free(&gamma), pb_free(&beta), pb_free(&rm), pb_free(&rv), pb_free(&yb);
    pb_free(&mean), pb_free(&rstd), pb_free(&dyb), pb_free(&dxb), pb_free(&dg), pb_free(&db);
}

/* Synchronized batch norm's parts (bn_stats, bn_bwd_sums, bn_bwd_apply):
 * each entry on the same inputs on both backends (bn_bwd_sums with the
 * CPU's mean, bn_bwd_apply with whole-batch sums and a count larger than
 * this slice's, as another process would add), run-to-run bits on the
 * CUDA side. gamma NULL (= 1) when no_gamma. */
static void test_bn_parts_case(int64_t n, int64_t c, int64_t hw, size_t off, int no_gamma) {
    size_t nx = (size_t)(n * c * hw), nc = (size_t)c;
    char what[64];
    snprintf(what, sizeof what, "n %lld c %lld hw %lld%s%s", (long long)n, (long long)c,
             (long long)hw, off ? " +1" : "", no_gamma ? " gamma 1" : "");
    pbuf xb, dyb, dxb;
    pbuf x = pb_rand_at(&xb, off, nx, -1.5f, 2.5f), dy = pb_rand_at(&dyb, off, nx, -1, 1);
    pbuf mean = pb_nan(nc), m2 = pb_nan(nc), sdy = pb_nan(nc), sdyx = pb_nan(nc);
    for (int q = 0; q < 2; q++) B[q]->bn_stats(mean.d[q], m2.d[q], x.d[q], n, c, hw);
    compare("bn_stats mean", what, &mean);
    compare("bn_stats m2", what, &m2);
    {
        float *first = pb_get(&mean, 0), *first_m2 = pb_get(&m2, 0);
        B[0]->fill(mean.d[0], NAN, nc);
        B[0]->fill(m2.d[0], NAN, nc);
        B[0]->bn_stats(mean.d[0], m2.d[0], x.d[0], n, c, hw);
        check_same_bits("bn_stats mean", what, first, &mean);
        check_same_bits("bn_stats m2", what, first_m2, &m2);
        free(first), free(first_m2);
    }
    /* the CPU's mean on both, so only bn_bwd_sums differs */
    float *hm = pb_get(&mean, 1);
    B[0]->upload(mean.d[0], hm, nc);
    free(hm);
    for (int q = 0; q < 2; q++)
        B[q]->bn_bwd_sums(sdy.d[q], sdyx.d[q], dy.d[q], x.d[q], mean.d[q], n, c, hw);
    compare("bn_bwd_sums sdy", what, &sdy);
    compare("bn_bwd_sums sdyx", what, &sdyx);
    {
        float *first = pb_get(&sdy, 0), *first_x = pb_get(&sdyx, 0);
        B[0]->fill(sdy.d[0], NAN, nc);
        B[0]->fill(sdyx.d[0], NAN, nc);
        B[0]->bn_bwd_sums(sdy.d[0], sdyx.d[0], dy.d[0], x.d[0], mean.d[0], n, c, hw);
        check_same_bits("bn_bwd_sums sdy", what, first, &sdy);
        check_same_bits("bn_bwd_sums sdyx", what, first_x, &sdyx);
        free(first), free(first_x);
    }
    /* the whole batch: 2.5 times this slice's count, sums of its size */
    const double cnt = 2.5 * (double)(n * hw);
    float *hs = malloc(2 * nc * sizeof(float));
    lg_test_fill_uniform(&rng, hs, 2 * nc, -0.5f, 0.5f);
    for (size_t i = 0; i < 2 * nc; i++) hs[i] *= (float)cnt;
    pbuf gsdy = pb_host(hs, nc), gsdyx = pb_host(hs + nc, nc);
    free(hs);
    pbuf rstd = pb_rand(nc, 0.5f, 2.0f), gamma = pb_rand(nc, 0.5f, 1.5f);
    pbuf dx = pb_nan_at(&dxb, off, nx);
    for (int q = 0; q < 2; q++)
        B[q]->bn_bwd_apply(dx.d[q], dy.d[q], x.d[q], mean.d[q], rstd.d[q],
                           no_gamma ? NULL : gamma.d[q], gsdy.d[q], gsdyx.d[q], cnt, n, c, hw);
    compare("bn_bwd_apply dx", what, &dx);
    {
        float *first = pb_get(&dx, 0);
        B[0]->fill(dx.d[0], NAN, nx);
        B[0]->bn_bwd_apply(dx.d[0], dy.d[0], x.d[0], mean.d[0], rstd.d[0],
                           no_gamma ? NULL : gamma.d[0], gsdy.d[0], gsdyx.d[0], cnt, n, c, hw);
        check_same_bits("bn_bwd_apply dx", what, first, &dx);
        free(first);
    }
    pb_free(&xb), pb_free(&dyb), pb_free(&dxb), pb_free(&mean), pb_free(&m2), pb_free(&sdy);
    pb_free(&sdyx), pb_free(&gsdy), pb_free(&gsdyx), pb_free(&rstd), pb_free(&gamma);
}

static void test_bn_parts(void) {
    test_bn_parts_case(4, 3, 25, 0, 0);       /* odd hw: scalar loads */
    test_bn_parts_case(5, 7, 9, 1, 1);        /* odd hw, unaligned, gamma NULL */
    test_bn_parts_case(64, 32, 1, 0, 0);      /* (N, C): hw 1 */
    test_bn_parts_case(3, 5, 1, 1, 0);        /* (N, C), unaligned */
    test_bn_parts_case(16, 64, 64, 0, 0);     /* float4 loads */
    test_bn_parts_case(16, 64, 64, 1, 0);     /* the same unaligned: scalar loads */
    test_bn_parts_case(2, 3, 100003, 0, 1);   /* many chunks per channel, across images */
    test_bn_parts_case(7, 300, 36, 0, 0);     /* more channels than threads per block */
    test_bn_parts_case(128, 256, 16, 0, 0);   /* the generator's 4x4 ... */
    test_bn_parts_case(128, 256, 1024, 0, 0); /* ... and 32x32 batch norms */
    test_bn_parts_case(3, 70000, 1, 0, 0);    /* c > 65535: one block per channel */
    test_bn_parts_case(2, 65536, 3, 1, 1);
}

static void test_bn(void) {
    test_bn_case(4, 3, 25, 0);
    test_bn_case(3, 5, 1, 0);
    test_bn_case(16, 64, 64, 0);
    test_bn_case(64, 128, 256, 0);
    test_bn_case(16, 64, 64, 1);     /* unaligned: scalar loads */
    test_bn_case(2, 3, 100003, 0);   /* many chunks per channel, across images */
    test_bn_case(7, 300, 36, 0);     /* more channels than threads per block */
    test_bn_case(128, 256, 16, 0);   /* the generator's 4x4 ... */
    test_bn_case(128, 256, 1024, 0); /* ... and 32x32 batch norms */
}

/* ---- Adam ---- */

static void test_adam(void) {
    const size_t n = 10007;
    const int64_t ts[] = {1, 7, 1000};
    for (size_t i = 0; i < sizeof ts / sizeof ts[0]; i++) {
        pbuf p = pb_rand(n, -1, 1), m = pb_rand(n, -0.1f, 0.1f), v = pb_rand(n, 0, 0.01f);
        pbuf g = pb_rand(n, -1, 1);
        for (int q = 0; q < 2; q++)
            B[q]->adam(p.d[q], m.d[q], v.d[q], g.d[q], n, 2e-4f, 0.5f, 0.999f, 1e-8f, ts[i]);
        char what[64];
        snprintf(what, sizeof what, "t %lld", (long long)ts[i]);
        compare("adam p", what, &p);
        compare("adam m", what, &m);
        compare("adam v", what, &v);
        pb_free(&p), pb_free(&m), pb_free(&v), pb_free(&g);
    }
}

/* ---- memory: upload/download/copy/fill round trips ---- */

static void test_memory(void) {
    const size_t n = 100003;
    float *h = malloc(n * sizeof(float)), *back = malloc(n * sizeof(float));
    lg_test_fill_uniform(&rng, h, n, -1, 1);
    float *d1 = B[0]->alloc(n * sizeof(float)), *d2 = B[0]->alloc(n * sizeof(float));
    CHECK(d1 && d2, "cuda alloc of %zu floats failed: %s", n, lg_error_msg());
    if (!d1 || !d2) return;
    CHECK(((uintptr_t)d1 & 63) == 0, "alloc not 64-byte aligned");
    B[0]->upload(d1, h, n);
    B[0]->fill(d2, NAN, n);
    B[0]->copy(d2, d1, n);
    B[0]->download(back, d2, n);
    CHECK(memcmp(h, back, n * sizeof(float)) == 0, "upload/copy/download round trip differs");
    B[0]->fill(d2 + 5, 2.5f, 7);
    B[0]->download(back, d2, 16);
    int fill_ok = back[4] == h[4] && back[12] == h[12];
    for (int i = 5; i < 12; i++) fill_ok &= back[i] == 2.5f;
    CHECK(fill_ok, "fill wrote outside [5, 12) or not 2.5");
    B[0]->free(d2);
    B[0]->free(d1);
    B[0]->free(NULL); /* no-op */
    printf("  %-18s %-40s exact %s\n", "memory", "upload/copy/fill/download", "checked");
    free(h), free(back);
}

#ifdef LG_HAVE_CUDA
/* ---- CUDA-only: sticky status, pool reuse, TF32 switch, graph capture ---- */

static void test_cuda_extras(void) {
    /* sticky status: a bad gemm (lda < k) is recorded, and stays recorded */
    CHECK(lg_cuda_last_status() == LG_OK, "status not OK before the bad call: %s",
          lg_error_msg());
    float *a = B[0]->alloc(64 * sizeof(float));
    B[0]->gemm(0, 0, 4, 4, 4, 1.0f, a, 1, a, 4, 0.0f, a, 4);
    CHECK(lg_cuda_last_status() == LG_ERR_BACKEND, "bad gemm not recorded (status %d)",
          (int)lg_cuda_last_status());
    CHECK(strstr(lg_error_msg(), "cublas") != NULL, "message: '%s'", lg_error_msg());
    printf("  sticky status after a bad gemm: %s\n", lg_error_msg());
    B[0]->sync();
    CHECK(lg_cuda_last_status() == LG_ERR_BACKEND, "status was not sticky");
    lg_cuda_clear_status();
    CHECK(lg_cuda_last_status() == LG_OK, "clear did not clear");
    B[0]->free(a);

    /* pool: freeing and re-allocating the same size reuses the block just
     * freed (LIFO), with no new cudaMalloc */
    size_t r0, u0, r1, u1;
    float *p = B[0]->alloc(1 << 20);
    lg_cuda_pool_stats(&r0, &u0);
    B[0]->free(p);
    float *p2 = B[0]->alloc(1 << 20);
    lg_cuda_pool_stats(&r1, &u1);
    CHECK(p2 == p && r1 == r0 && u1 == u0,
          "pool did not reuse the block (%p -> %p; %zu -> %zu reserved, %zu -> %zu in use)", (void *)p,
          (void *)p2, r0, r1, u0, u1);
    B[0]->free(p2);

    /* TF32: larger error than fp32 but still close; reported, not barred */
    lg_cuda_set_tf32(1);
    CHECK(lg_cuda_tf32() == 1, "tf32 switch did not stick");
    {
        int m = 256, n = 256, k = 512;
        pbuf x = pb_rand((size_t)m * k, -1, 1), w = pb_rand((size_t)k * n, -1, 1);
        pbuf c = pb_nan((size_t)m * n);
        for (int q = 0; q < 2; q++)
            B[q]->gemm(0, 0, m, n, k, 1.0f, x.d[q], k, w.d[q], n, 0.0f, c.d[q], n);
        float *g = pb_get(&c, 0), *r = pb_get(&c, 1);
        double num = 0, den = 0;
        for (size_t i = 0; i < c.n; i++) {
            num += ((double)g[i] - r[i]) * ((double)g[i] - r[i]);
            den += (double)r[i] * r[i];
        }
        printf("  %-18s %-40s nmse=%.3e (TF32 on: must be above %.0e, below 1e-5)\n",
               "gemm", "256x256x512 tf32", num / den, FP32_BAR);
        /* above the fp32 bar: the switch really enables TF32 */
        CHECK(num / den > FP32_BAR && num / den < 1e-5, "TF32 gemm nmse %.3e", num / den);
        free(g), free(r);
        pb_free(&x), pb_free(&w), pb_free(&c);
    }
    lg_cuda_set_tf32(0);

    /* graph capture: the kernel wrappers must not synchronize, so a capture
     * on lg_cuda_stream() of conv2d -> relu -> sum_all succeeds and its
     * replay gives the same numbers as direct calls */
    lg_conv_geom g = {4, 3, 12, 12, 8, 3, 3, 1, 1, 12, 12};
    size_t nx = 4 * 3 * 144, nw = 8 * 3 * 9, ny = 4 * 8 * 144;
    pbuf x = pb_rand(nx, -1, 1), w = pb_rand(nw, -1, 1), y = pb_nan(ny), s = pb_nan(1);
    float *ws = B[0]->alloc(B[0]->conv_workspace(&g) * sizeof(float));
    cudaStream_t st = (cudaStream_t)lg_cuda_stream();
    CHECK(st != NULL, "lg_cuda_stream() is NULL after init");
    cudaGraph_t graph = NULL;
    cudaGraphExec_t exec = NULL;
    cudaError_t e = cudaStreamBeginCapture(st, cudaStreamCaptureModeThreadLocal);
    CHECK(e == cudaSuccess, "begin capture: %s", cudaGetErrorString(e));
    B[0]->conv2d(y.d[0], x.d[0], w.d[0], &g, ws);
    B[0]->unary(LG_U_RELU, y.d[0], y.d[0], ny, 0);
    B[0]->sum_all(s.d[0], y.d[0], ny);
    e = cudaStreamEndCapture(st, &graph);
    CHECK(e == cudaSuccess, "end capture: %s", cudaGetErrorString(e));
    CHECK(lg_cuda_last_status() == LG_OK, "a call failed during capture: %s", lg_error_msg());
    if (e == cudaSuccess) {
        e = cudaGraphInstantiate(&exec, graph, 0);
        CHECK(e == cudaSuccess, "instantiate: %s", cudaGetErrorString(e));
        if (e == cudaSuccess) {
            e = cudaGraphLaunch(exec, st);
            CHECK(e == cudaSuccess, "graph launch: %s", cudaGetErrorString(e));
            B[0]->sync();
            float *tmp = B[1]->alloc(B[1]->conv_workspace(&g) * sizeof(float));
            B[1]->conv2d(y.d[1], x.d[1], w.d[1], &g, tmp);
            B[1]->unary(LG_U_RELU, y.d[1], y.d[1], ny, 0);
            B[1]->sum_all(s.d[1], y.d[1], ny);
            B[1]->free(tmp);
            compare("graph replay y", "conv2d+relu captured", &y);
            compare("graph replay sum", "sum_all captured", &s);
            cudaGraphExecDestroy(exec);
        }
        cudaGraphDestroy(graph);
    }
    B[0]->free(ws);
    pb_free(&x), pb_free(&w), pb_free(&y), pb_free(&s);
    B[0]->sync();
    CHECK(lg_cuda_last_status() == LG_OK, "CUDA status at the end: %s", lg_error_msg());
}

/* The generator's non-convolution kernels (batch norm with its fixed
 * scratch, channel sums, bias add, resampling) captured in a graph: the
 * capture succeeds and a replay gives the bits of direct calls. */
enum { CAP_OUTS = 8 };
static void cap_sequence(float *const o[CAP_OUTS], const float *x, const float *dy,
                         const float *gamma, const float *beta, float *rm, float *rv) {
    const int64_t n = 16, c = 64, hw = 64;
    const int64_t xs[4] = {16, 64, 8, 8}, bs[4] = {1, 64, 1, 1};
    /* o: y, mean, rstd, dx, dgamma, dbeta, y + dbeta, upsample(dx) */
    B[0]->bn_train(o[0], o[1], o[2], x, gamma, beta, rm, rv, n, c, hw, 1e-5f, 0.1f);
    B[0]->bn_bwd(o[3], o[4], o[5], dy, x, o[1], o[2], gamma, n, c, hw);
    B[0]->sum_to(o[5], bs, dy, xs);
    B[0]->binary(LG_B_ADD, o[6], xs, o[0], xs, o[5], bs);
    B[0]->upsample2x(o[7], o[3], n * c, 8, 8);
    B[0]->sumpool2x2(o[3], o[7], n * c, 16, 16);
}

static void test_capture_kernels(void) {
    const size_t nx = 16 * 64 * 64, sizes[CAP_OUTS] = {nx, 64, 64, nx, 64, 64, nx, 4 * nx};
    float *hx = malloc(nx * sizeof(float)), *hdy = malloc(nx * sizeof(float));
    float hg[64], hb[64], hrm[64], hrv[64];
    lg_test_fill_uniform(&rng, hx, nx, -1.5f, 2.5f);
    lg_test_fill_uniform(&rng, hdy, nx, -1, 1);
    lg_test_fill_uniform(&rng, hg, 64, 0.5f, 1.5f);
    lg_test_fill_uniform(&rng, hb, 64, -0.5f, 0.5f);
    lg_test_fill_uniform(&rng, hrm, 64, -0.2f, 0.2f);
    lg_test_fill_uniform(&rng, hrv, 64, 0.5f, 2.0f);
    float *x = B[0]->alloc(nx * 4), *dy = B[0]->alloc(nx * 4), *g = B[0]->alloc(256);
    float *bt = B[0]->alloc(256), *rm[2], *rv[2], *o[2][CAP_OUTS];
    B[0]->upload(x, hx, nx), B[0]->upload(dy, hdy, nx), B[0]->upload(g, hg, 64);
    B[0]->upload(bt, hb, 64);
    for (int k = 0; k < 2; k++) {
        rm[k] = B[0]->alloc(256), rv[k] = B[0]->alloc(256);
        B[0]->upload(rm[k], hrm, 64), B[0]->upload(rv[k], hrv, 64);
        for (int i = 0; i < CAP_OUTS; i++) {
            o[k][i] = B[0]->alloc(sizes[i] * 4);
            B[0]->fill(o[k][i], NAN, sizes[i]);
        }
    }
    cap_sequence(o[0], x, dy, g, bt, rm[0], rv[0]); /* direct */
    cudaStream_t st = (cudaStream_t)lg_cuda_stream();
    cudaGraph_t graph = NULL;
    cudaGraphExec_t exec = NULL;
    cudaError_t e = cudaStreamBeginCapture(st, cudaStreamCaptureModeThreadLocal);
    CHECK(e == cudaSuccess, "begin capture: %s", cudaGetErrorString(e));
    cap_sequence(o[1], x, dy, g, bt, rm[1], rv[1]);
    e = cudaStreamEndCapture(st, &graph);
    CHECK(e == cudaSuccess, "end capture of the generator's kernels: %s", cudaGetErrorString(e));
    CHECK(lg_cuda_last_status() == LG_OK, "a call failed during capture: %s", lg_error_msg());
    if (e == cudaSuccess) {
        e = cudaGraphInstantiate(&exec, graph, 0);
        CHECK(e == cudaSuccess, "instantiate: %s", cudaGetErrorString(e));
        if (e == cudaSuccess) {
            e = cudaGraphLaunch(exec, st);
            CHECK(e == cudaSuccess, "graph launch: %s", cudaGetErrorString(e));
            B[0]->sync();
            static const char *const names[CAP_OUTS] = {"bn y", "mean", "rstd", "sumpool",
                                                        "dgamma", "sum_to", "bias add",
                                                        "upsample"};
            int same = 1;
            for (int i = 0; i < CAP_OUTS; i++) {
                float *a = malloc(sizes[i] * 4), *b = malloc(sizes[i] * 4);
                B[0]->download(a, o[0][i], sizes[i]);
                B[0]->download(b, o[1][i], sizes[i]);
                int eq = memcmp(a, b, sizes[i] * 4) == 0;
                CHECK(eq, "graph replay of %s differs from the direct call", names[i]);
                same &= eq;
                free(a), free(b);
            }
            float a[64], b[64];
            B[0]->download(a, rv[0], 64);
            B[0]->download(b, rv[1], 64);
            CHECK(memcmp(a, b, sizeof a) == 0, "graph replay: running variance differs");
            printf("  %-18s %-40s %s\n", "graph replay", "bn, sum_to, bias add, resampling",
                   same ? "bitwise equal to direct calls" : "FAIL");
            cudaGraphExecDestroy(exec);
        }
        cudaGraphDestroy(graph);
    }
    for (int k = 0; k < 2; k++) {
        B[0]->free(rm[k]), B[0]->free(rv[k]);
        for (int i = 0; i < CAP_OUTS; i++) B[0]->free(o[k][i]);
    }
    B[0]->free(x), B[0]->free(dy), B[0]->free(g), B[0]->free(bt);
    free(hx), free(hdy);
    B[0]->sync();
    CHECK(lg_cuda_last_status() == LG_OK, "CUDA status: %s", lg_error_msg());
}

/* With LG_CUDA_PROFILE=1: the report has the kernels this test ran, and the
 * calls queued during the graph captures were counted, not timed. */
static void test_profile(void) {
    if (!lg_cuda_profile_enabled()) {
        printf("  profiling off (LG_CUDA_PROFILE unset): report not checked\n");
        return;
    }
    const char *r = lg_cuda_profile_report(0);
    static const char *const need[] = {"bn_train",    "bn_bwd",       "bn_stats",
                                       "bn_bwd_sums", "bn_bwd_apply", "conv2d_bwd_weight",
                                       "sum_to",      "upsample2x",   "binary",
                                       "not timed",   "by entry and geometry"};
    for (size_t i = 0; i < sizeof need / sizeof need[0]; i++)
        CHECK(strstr(r, need[i]) != NULL, "profile report lacks '%s'", need[i]);
    /* the first rows: header and the slowest entries */
    int lines = 0;
    for (const char *p = r; *p && lines < 14; p++) {
        putchar(*p);
        if (*p == '\n') lines++;
    }
    lg_cuda_profile_reset();
    const char *r2 = lg_cuda_profile_report(0);
    CHECK(strstr(r2, " 0 timed calls") != NULL, "after reset: %.80s", r2);
}
#endif

int main(void) {
    int rc;
    if (!(B[0] = gpu_test_backend("test_backend_cuda", &rc))) return rc;
    B[1] = lg_backend_cpu();
    LG_ASSERT(B[1] && B[0]->is_device && !B[1]->is_device);
    uint64_t seed = gpu_test_seed(0x5eed);
    rng = lg_test_rng_make(seed);
    printf("CUDA backend vs CPU backend, seed %llu, nMSE bar %.0e\n", (unsigned long long)seed,
           NMSE_BAR);
    LG_TEST_RUN(test_memory);
    LG_TEST_RUN(test_gemm);
    LG_TEST_RUN(test_conv);
    LG_TEST_RUN(test_unary);
    LG_TEST_RUN(test_binary);
    LG_TEST_RUN(test_sum_to);
    LG_TEST_RUN(test_reductions);
    LG_TEST_RUN(test_resample);
    LG_TEST_RUN(test_bn);
    LG_TEST_RUN(test_bn_parts);
    LG_TEST_RUN(test_adam);
#ifdef LG_HAVE_CUDA
    LG_TEST_RUN(test_cuda_extras);
    LG_TEST_RUN(test_capture_kernels);
    LG_TEST_RUN(test_profile);
    B[0]->sync();
    CHECK(lg_cuda_last_status() == LG_OK, "CUDA status: %s", lg_error_msg());
#endif
    printf("\nper kernel (worst nMSE over its cases):\n");
    for (int i = 0; i < n_kernels; i++)
        printf("  %-20s %3d cases  worst %.3e  bar %.0e %s\n", ksum[i].name, ksum[i].cases,
               ksum[i].worst, bar_of(ksum[i].name),
               ksum[i].worst <= bar_of(ksum[i].name) ? "ok" : "FAIL");
    printf("%d comparisons, %d above the bar, worst nMSE %.3e\n", n_rows, n_bad, worst_nmse);
    return lg_test_summary("test_backend_cuda");
}
