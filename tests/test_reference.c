/* lipgan's forward values and gradients against PyTorch (float32, CPU),
 * from tests/data/ref/<case>.safetensors written by tools/gen_reference.py (see
 * its docstring for every case's shapes and names).
 *
 * Tolerance: |lipgan - torch| <= atol + rtol*|torch| elementwise with
 * atol 1e-5, rtol 1e-4 for everything, the gradient penalty and its
 * parameter gradients (a second derivative through six layers) included;
 * the observed errors are <= 1e-6 (LG_TEST_VERBOSE=1 prints them).
 * Data directory: $LG_TEST_DATA or tests/data (run from the repo root). */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "lg_test.h"
#include "lipgan/ops.h"
#include "lipgan/safetensors.h"

#define ATOL 1e-5
#define RTOL 1e-4
#define GP_ATOL ATOL
#define GP_RTOL RTOL

/* One reference tensor read from a file (host copy). */
typedef struct ref {
    float *d;                    /* (numel) */
    int ndim;
    int64_t shape[LG_MAX_DIMS];
    int64_t numel;
} ref;

#define MAX_REFS 64
typedef struct reffile {
    lg_st_file *f;
    const char *name;
    ref r[MAX_REFS];
    int n;
} reffile;

static int ref_open(reffile *rf, const char *name) {
    memset(rf, 0, sizeof *rf);
    rf->name = name;
    const char *dir = getenv("LG_TEST_DATA");
    char path[512];
    snprintf(path, sizeof path, "%s/ref/%s.safetensors", dir ? dir : "tests/data", name);
    lg_status s = lg_st_open(&rf->f, path);
    CHECK(s == LG_OK, "cannot open %s: %s (regenerate with python3 tools/gen_reference.py)",
          path, lg_error_msg());
    return s == LG_OK;
}

/* The tensor `key` of the file (exits the check with a message if absent). */
static ref *get(reffile *rf, const char *key) {
    static ref empty;
    const lg_st_tensor *t = lg_st_find(rf->f, key);
    CHECK(t != NULL, "%s: no tensor '%s'", rf->name, key);
    if (!t) return &empty;
    LG_ASSERT(rf->n < MAX_REFS && t->ndim <= LG_MAX_DIMS);
    ref *r = &rf->r[rf->n++];
    r->ndim = t->ndim ? t->ndim : 1;
    for (int i = 0; i < LG_MAX_DIMS; i++) r->shape[i] = i < t->ndim ? t->shape[i] : 1;
    r->numel = t->numel;
    r->d = malloc((size_t)t->numel * sizeof(float));
    LG_ASSERT(r->d);
    CHECK_OK(lg_st_get_f32(rf->f, key, -1, NULL, r->d));
    return r;
}

static void ref_close(reffile *rf) {
    for (int i = 0; i < rf->n; i++) free(rf->r[i].d);
    if (rf->f) lg_st_close(rf->f);
    memset(rf, 0, sizeof *rf);
}

/* A step tensor holding reference data. */
static lg_tensor *tens(lg_ctx *ctx, const ref *r, int requires_grad) {
    if (!r->d) return NULL;
    return lg_test_tensor(ctx, r->d, r->ndim, r->shape, requires_grad);
}

/* Compares a tensor with a reference: shape and values. */
static void cmp(lg_ctx *ctx, const char *file, const char *what, lg_tensor *t, const ref *r,
                double atol, double rtol) {
    char label[128];
    snprintf(label, sizeof label, "%s: %s", file, what);
    CHECK(t != NULL, "%s: not computed (%s)", label, lg_error_msg());
    if (!t || !r->d) return;
    CHECK(t->numel == r->numel, "%s: %lld elements, reference has %lld", label,
          (long long)t->numel, (long long)r->numel);
    if (t->numel != r->numel) return;
    float *h = malloc((size_t)t->numel * sizeof(float));
    LG_ASSERT(h);
    lg_to_host(ctx, t, h);
    lg_test_close(h, r->d, (size_t)t->numel, atol, rtol, label);
    if (getenv("LG_TEST_VERBOSE")) {
        double mx = 0, mr = 0;
        for (int64_t i = 0; i < t->numel; i++) {
            double e = fabs((double)h[i] - r->d[i]);
            if (e > mx) mx = e;
            if (fabs(r->d[i]) > mr) mr = fabs(r->d[i]);
        }
        printf("  %s: max abs err %.3g (max |ref| %.3g)\n", label, mx, mr);
    }
    free(h);
}

/* Output y seeded with dy: gradients w.r.t. wrt[] compared with refs[]. */
static void cmp_grads(lg_ctx *ctx, const char *file, lg_tensor *y, const ref *dy, int n,
                      lg_tensor **wrt, const char **names, ref **refs) {
    lg_tensor *g[8] = {0};
    lg_tensor *seed = tens(ctx, dy, 0);
    if (!y || !seed) {
        CHECK(0, "%s: forward failed: %s", file, lg_error_msg());
        return;
    }
    seed = lg_alias(ctx, seed, y->ndim, y->shape);  /* torch (N,C) vs ours, same numel */
    CHECK_OK(lg_grad(ctx, y, seed, n, wrt, g, 0));
    for (int i = 0; i < n; i++) cmp(ctx, file, names[i], g[i], refs[i], ATOL, RTOL);
}

static void test_conv(const char *file, int transposed, int out_pad) {
    reffile rf;
    if (!ref_open(&rf, file)) return;
    lg_ctx *ctx;
    CHECK_OK(lg_ctx_create(&ctx, lg_test_backend()));
    lg_tensor *x = tens(ctx, get(&rf, "x"), 1), *w = tens(ctx, get(&rf, "w"), 1);
    lg_tensor *b = tens(ctx, get(&rf, "b"), 1);
    lg_tensor *y = transposed ? lg_conv_transpose2d(ctx, x, w, b, 2, 1, out_pad)
                              : lg_conv2d(ctx, x, w, b, 2, 1);
    cmp(ctx, file, "y", y, get(&rf, "y"), ATOL, RTOL);
    lg_tensor *wrt[3] = {x, w, b};
    const char *names[3] = {"dx", "dw", "db"};
    ref *refs[3] = {get(&rf, "dx"), get(&rf, "dw"), get(&rf, "db")};
    cmp_grads(ctx, file, y, get(&rf, "dy"), 3, wrt, names, refs);
    lg_ctx_free(ctx);
    ref_close(&rf);
}

static void test_conv2d(void) { test_conv("conv2d_s2p1", 0, 0); }
static void test_convt(void) {
    test_conv("convt_k3s2p1op1", 1, 1);
    test_conv("convt_k4s2p1", 1, 0);
}

static void test_linear(void) {
    reffile rf;
    if (!ref_open(&rf, "linear")) return;
    lg_ctx *ctx;
    CHECK_OK(lg_ctx_create(&ctx, lg_test_backend()));
    lg_tensor *x = tens(ctx, get(&rf, "x"), 1), *w = tens(ctx, get(&rf, "w"), 1);
    lg_tensor *b = tens(ctx, get(&rf, "b"), 1);
    lg_tensor *y = lg_linear(ctx, x, w, b);
    cmp(ctx, "linear", "y", y, get(&rf, "y"), ATOL, RTOL);
    lg_tensor *wrt[3] = {x, w, b};
    const char *names[3] = {"dx", "dw", "db"};
    ref *refs[3] = {get(&rf, "dx"), get(&rf, "dw"), get(&rf, "db")};
    cmp_grads(ctx, "linear", y, get(&rf, "dy"), 3, wrt, names, refs);
    lg_ctx_free(ctx);
    ref_close(&rf);
}

/* relu(conv2d(x, w) + b) through lg_add_relu, to second order */
static void test_conv_bias_relu(void) {
    reffile rf;
    if (!ref_open(&rf, "conv_bias_relu")) return;
    lg_ctx *ctx;
    CHECK_OK(lg_ctx_create(&ctx, lg_test_backend()));
    lg_tensor *x = tens(ctx, get(&rf, "x"), 1), *w = tens(ctx, get(&rf, "w"), 1);
    lg_tensor *b = tens(ctx, get(&rf, "b"), 1);
    lg_tensor *y = lg_add_relu(ctx, lg_conv2d(ctx, x, w, NULL, 1, 1),
                               lg_reshape(ctx, b, 4, (int64_t[]){1, 4, 1, 1}));
    cmp(ctx, "conv_bias_relu", "y", y, get(&rf, "y"), ATOL, RTOL);
    lg_tensor *wrt[3] = {x, w, b};
    const char *names[3] = {"dx", "dw", "db"};
    ref *refs[3] = {get(&rf, "dx"), get(&rf, "dw"), get(&rf, "db")};
    cmp_grads(ctx, "conv_bias_relu", y, get(&rf, "dy"), 3, wrt, names, refs);
    /* gp = sum(dx^2), dx kept differentiable; then d gp / dw */
    lg_tensor *dyt = tens(ctx, get(&rf, "dy"), 0), *dx = NULL, *gw = NULL;
    lg_tensor *s = y && dyt ? lg_sum(ctx, lg_mul(ctx, y, dyt)) : NULL;
    CHECK_OK(lg_grad(ctx, s, NULL, 1, &x, &dx, 1));
    lg_tensor *gp = lg_sum(ctx, lg_square(ctx, dx));
    cmp(ctx, "conv_bias_relu", "gp", gp, get(&rf, "gp"), ATOL, RTOL);
    CHECK_OK(lg_grad(ctx, gp, NULL, 1, &w, &gw, 0));
    cmp(ctx, "conv_bias_relu", "gp_dw", gw, get(&rf, "gp_dw"), ATOL, RTOL);
    lg_ctx_free(ctx);
    ref_close(&rf);
}

/* cmp with atol = scale * max|ref|: for sums whose rounding grows with the
 * size of their terms rather than of the result (Winograd F(4x4,3x3)). */
static void cmp_scaled(lg_ctx *ctx, const char *file, const char *what, lg_tensor *t,
                       const ref *r, double scale, double rtol) {
    double mx = 0;
    for (int64_t i = 0; r->d && i < r->numel; i++) mx = fmax(mx, fabs(r->d[i]));
    cmp(ctx, file, what, t, r, scale * mx, rtol);
}

/* 64 -> 64 channel convs on the CPU backend's Winograd paths: 7x7 goes to
 * F(4x4,3x3) (partial tiles), 2x2 to F(2x2,3x3); at 7x7 also the gradient
 * penalty's second order, whose passes are Winograd convs too.
 * F(4x4)'s transforms multiply terms by up to 8 before they cancel, so it
 * rounds more than im2col: against PyTorch, measured max abs errors at 7x7
 * were y 5.1e-6 (im2col 7.2e-7), dw 2.3e-5 (4.8e-6), gp_dw 2.7e-5 (6.7e-6),
 * i.e. 1.8e-6..4.2e-6 of the largest |ref|. The 7x7 case takes atol =
 * 1e-5 * max|ref|; the 2x2 case (F(2x2)) passes this file's ATOL. */
static void test_conv_wino(void) {
    reffile rf;
    if (!ref_open(&rf, "conv_wino")) return;
    lg_ctx *ctx;
    CHECK_OK(lg_ctx_create(&ctx, lg_test_backend()));
    const char *tags[2] = {"7", "2"};
    for (int k = 0; k < 2; k++) {
        char n[8][16];
        const char *base[8] = {"x", "y", "dy", "dx", "dw", "db", "gp", "gp_dw"};
        for (int i = 0; i < 8; i++) snprintf(n[i], sizeof n[i], "%s%s", base[i], tags[k]);
        lg_tensor *w = tens(ctx, get(&rf, "w"), 1), *b = tens(ctx, get(&rf, "b"), 1);
        lg_tensor *x = tens(ctx, get(&rf, n[0]), 1);
        lg_tensor *y = lg_conv2d(ctx, x, w, b, 1, 1);
        double sc = k == 0 ? 1e-5 : 0; /* F(4x4): scaled atol; F(2x2): ATOL */
        lg_tensor *wrt[3] = {x, w, b}, *g[3] = {NULL, NULL, NULL};
        lg_tensor *dyt = tens(ctx, get(&rf, n[2]), 0);
        lg_tensor *s = y && dyt ? lg_sum(ctx, lg_mul(ctx, y, dyt)) : NULL;
        CHECK_OK(lg_grad(ctx, s, NULL, 3, wrt, g, 1)); /* kept differentiable for gp */
        for (int i = 0; i < 4; i++) {
            lg_tensor *t = i ? g[i - 1] : y;
            const ref *r = get(&rf, n[i ? i + 2 : 1]);
            if (sc > 0) cmp_scaled(ctx, "conv_wino", n[i ? i + 2 : 1], t, r, sc, RTOL);
            else cmp(ctx, "conv_wino", n[i ? i + 2 : 1], t, r, ATOL, RTOL);
        }
        if (k == 0) {
            lg_tensor *gw = NULL;
            lg_tensor *gp = lg_sum(ctx, lg_square(ctx, g[0]));
            cmp_scaled(ctx, "conv_wino", n[6], gp, get(&rf, n[6]), sc, RTOL);
            CHECK_OK(lg_grad(ctx, gp, NULL, 1, &w, &gw, 0));
            cmp_scaled(ctx, "conv_wino", n[7], gw, get(&rf, n[7]), sc, RTOL);
        }
        lg_ctx_reset(ctx);
    }
    lg_ctx_free(ctx);
    ref_close(&rf);
}

/* upsample / avgpool / global_sum_pool: x -> y, dx */
static void test_unary_file(const char *file, lg_tensor *(*op)(lg_ctx *, lg_tensor *)) {
    reffile rf;
    if (!ref_open(&rf, file)) return;
    lg_ctx *ctx;
    CHECK_OK(lg_ctx_create(&ctx, lg_test_backend()));
    lg_tensor *x = tens(ctx, get(&rf, "x"), 1);
    lg_tensor *y = op(ctx, x);
    ref *ry = get(&rf, "y");
    cmp(ctx, file, "y", y, ry, ATOL, RTOL);
    if (y) {
        CHECK(y->ndim == ry->ndim, "%s: ndim %d, torch %d", file, y->ndim, ry->ndim);
        for (int i = 0; i < y->ndim && i < ry->ndim; i++)
            CHECK(y->shape[i] == ry->shape[i], "%s: dim %d is %lld, torch %lld", file, i,
                  (long long)y->shape[i], (long long)ry->shape[i]);
    }
    const char *names[1] = {"dx"};
    ref *refs[1] = {get(&rf, "dx")};
    cmp_grads(ctx, file, y, get(&rf, "dy"), 1, &x, names, refs);
    lg_ctx_free(ctx);
    ref_close(&rf);
}

static void test_resample(void) {
    test_unary_file("upsample", lg_upsample2x);
    test_unary_file("avgpool", lg_avgpool2x2);
    test_unary_file("global_sum_pool", lg_global_sum_pool);
}

/* pool_odd: 2x2 avg and sum pooling on odd and mixed sizes (PyTorch
 * floors), forward and backward, and the gradient penalty's second order
 * through an odd-size pool. */
static void test_pool_odd(void) {
    reffile rf;
    if (!ref_open(&rf, "pool_odd")) return;
    lg_ctx *ctx;
    CHECK_OK(lg_ctx_create(&ctx, lg_test_backend()));
    static const char *tags[5] = {"5x7", "5x4", "4x7", "3x3", "2x3"};
    char key[3][32];
    for (int t = 0; t < 5; t++) {
        ref *rx = get(&rf, (snprintf(key[0], sizeof key[0], "x_%s", tags[t]), key[0]));
        for (int sum = 0; sum < 2; sum++) {
            const char *kind = sum ? "sum" : "avg";
            lg_ctx_reset(ctx);
            lg_tensor *x = tens(ctx, rx, 1);
            lg_tensor *y = sum ? lg_sumpool2x2(ctx, x) : lg_avgpool2x2(ctx, x);
            snprintf(key[0], sizeof key[0], "%s_%s", kind, tags[t]);
            snprintf(key[1], sizeof key[1], "d%s_y_%s", kind, tags[t]);
            snprintf(key[2], sizeof key[2], "d%s_%s", kind, tags[t]);
            ref *ry = get(&rf, key[0]);
            cmp(ctx, "pool_odd", key[0], y, ry, ATOL, RTOL);
            for (int i = 0; y && i < 4; i++)
                CHECK(y->shape[i] == ry->shape[i], "pool_odd: %s dim %d is %lld, torch %lld",
                      key[0], i, (long long)y->shape[i], (long long)ry->shape[i]);
            const char *names[1] = {key[2]};
            ref *refs[1] = {get(&rf, key[2])};
            cmp_grads(ctx, "pool_odd", y, get(&rf, key[1]), 1, &x, names, refs);
        }
    }
    /* D(x) = fc(flatten(avgpool(leaky_relu(conv(x))))) on x (2,3,5,7);
     * gp = mean_n (||grad_x sum(D)_n|| - 1)^2 and its parameter gradients */
    lg_ctx_reset(ctx);
    lg_tensor *x = tens(ctx, get(&rf, "x_5x7"), 1);
    lg_tensor *p[3] = {tens(ctx, get(&rf, "cw"), 1), tens(ctx, get(&rf, "cb"), 1),
                       tens(ctx, get(&rf, "fw"), 1)};
    lg_tensor *h = lg_leaky_relu(ctx, lg_conv2d(ctx, x, p[0], p[1], 1, 1), 0.2f);
    lg_tensor *d = lg_linear(ctx, lg_flatten(ctx, lg_avgpool2x2(ctx, h)), p[2], NULL);
    cmp(ctx, "pool_odd", "d", d, get(&rf, "d"), ATOL, RTOL);
    lg_tensor *g = NULL, *gp = NULL;
    lg_tensor *s = lg_sum(ctx, d);
    CHECK_OK(s ? lg_grad(ctx, s, NULL, 1, &x, &g, 1) : lg_ctx_status(ctx));
    if (g) {
        lg_tensor *nrm = lg_sqrt(ctx, lg_sum_axes(ctx, lg_square(ctx, g), 0xe));
        gp = lg_mean(ctx, lg_square(ctx, lg_add_scalar(ctx, nrm, -1.0f)));
    }
    cmp(ctx, "pool_odd", "gp", gp, get(&rf, "gp"), GP_ATOL, GP_RTOL);
    if (gp) {
        lg_tensor *gr[3] = {0};
        const char *gn[3] = {"gp_cw", "gp_cb", "gp_fw"};
        CHECK_OK(lg_grad(ctx, gp, NULL, 3, p, gr, 0));
        for (int i = 0; i < 3; i++) cmp(ctx, "pool_odd", gn[i], gr[i], get(&rf, gn[i]), GP_ATOL, GP_RTOL);
    }
    CHECK(lg_ctx_status(ctx) == LG_OK, "pool_odd: %s", lg_error_msg());
    lg_ctx_free(ctx);
    ref_close(&rf);
}

static lg_tensor *rows_1_3(lg_ctx *ctx, lg_tensor *x) { return lg_rows(ctx, x, 1, 3); }
static lg_tensor *rows_pad_1_5(lg_ctx *ctx, lg_tensor *x) { return lg_rows_pad(ctx, x, 1, 5); }

static void test_rows(void) {
    test_unary_file("rows", rows_1_3);
    test_unary_file("rows_pad", rows_pad_1_5);
    reffile rf;
    if (!ref_open(&rf, "cat_rows")) return;
    lg_ctx *ctx;
    CHECK_OK(lg_ctx_create(&ctx, lg_test_backend()));
    lg_tensor *in[2] = {tens(ctx, get(&rf, "a"), 1), tens(ctx, get(&rf, "b"), 1)};
    lg_tensor *y = lg_cat_rows(ctx, in[0], in[1]);
    cmp(ctx, "cat_rows", "y", y, get(&rf, "y"), ATOL, RTOL);
    const char *names[2] = {"da", "db"};
    ref *refs[2] = {get(&rf, "da"), get(&rf, "db")};
    cmp_grads(ctx, "cat_rows", y, get(&rf, "dy"), 2, in, names, refs);
    lg_ctx_free(ctx);
    ref_close(&rf);
}

static void test_activations(void) {
    reffile rf;
    if (!ref_open(&rf, "activations")) return;
    lg_ctx *ctx;
    CHECK_OK(lg_ctx_create(&ctx, lg_test_backend()));
    const char *acts[5] = {"relu", "leaky_relu", "tanh", "sigmoid", "softplus"};
    ref *rx = get(&rf, "x"), *rdy = get(&rf, "dy");
    for (int a = 0; a < 5; a++) {
        lg_ctx_reset(ctx);
        lg_tensor *x = tens(ctx, rx, 1), *y = NULL;
        switch (a) {
        case 0: y = lg_relu(ctx, x); break;
        case 1: y = lg_leaky_relu(ctx, x, 0.2f); break;
        case 2: y = lg_tanh(ctx, x); break;
        case 3: y = lg_sigmoid(ctx, x); break;
        case 4: y = lg_softplus(ctx, x); break;
        }
        char ky[32], kd[32];
        snprintf(ky, sizeof ky, "y_%s", acts[a]);
        snprintf(kd, sizeof kd, "dx_%s", acts[a]);
        cmp(ctx, "activations", ky, y, get(&rf, ky), ATOL, RTOL);
        const char *names[1] = {kd};
        ref *refs[1] = {get(&rf, kd)};
        cmp_grads(ctx, "activations", y, rdy, 1, &x, names, refs);
    }
    lg_ctx_free(ctx);
    ref_close(&rf);
}

static void test_batchnorm(void) {
    reffile rf;
    if (!ref_open(&rf, "batchnorm")) return;
    lg_ctx *ctx;
    CHECK_OK(lg_ctx_create(&ctx, lg_test_backend()));
    /* running statistics live in backend memory; hm/hv are host copies */
    const lg_backend *be = lg_test_backend();
    float *rm = lg_buffer_alloc(be, 3), *rv = lg_buffer_alloc(be, 3), hm[3], hv[3];
    lg_bn_state st = {rm, rv, 0.1f, 1e-5f};
    ref *gamma = get(&rf, "gamma"), *beta = get(&rf, "beta");
    ref *rm0 = get(&rf, "rm0"), *rv0 = get(&rf, "rv0");
    const char *names[3] = {"dx", "dgamma", "dbeta"};
    /* train, (N,C,H,W) and (N,C) */
    for (int two = 0; two < 2; two++) {
        lg_ctx_reset(ctx);
        if (rm0->d && rv0->d) {
            be->upload(rm, rm0->d, 3);
            be->upload(rv, rv0->d, 3);
        }
        lg_tensor *x = tens(ctx, get(&rf, two ? "x2" : "x"), 1);
        lg_tensor *g = tens(ctx, gamma, 1), *b = tens(ctx, beta, 1);
        lg_tensor *y = lg_batchnorm(ctx, x, g, b, &st, 1);
        const char *what = two ? "train (N,C) y" : "train y";
        cmp(ctx, "batchnorm", what, y, get(&rf, two ? "y2" : "y"), ATOL, RTOL);
        lg_tensor *wrt[3] = {x, g, b};
        ref *refs[3] = {get(&rf, two ? "dx2" : "dx"), get(&rf, two ? "dgamma2" : "dgamma"),
                        get(&rf, two ? "dbeta2" : "dbeta")};
        cmp_grads(ctx, two ? "batchnorm train (N,C)" : "batchnorm train", y,
                  get(&rf, two ? "dy2" : "dy"), 3, wrt, names, refs);
        /* running statistics after one step (unbiased variance, momentum 0.1) */
        ref *rm1 = get(&rf, two ? "rm2" : "rm1"), *rv1 = get(&rf, two ? "rv2" : "rv1");
        be->download(hm, rm, 3);
        be->download(hv, rv, 3);
        if (rm1->d && rv1->d) {
            lg_test_close(hm, rm1->d, 3, ATOL, RTOL, "batchnorm running_mean after a step");
            lg_test_close(hv, rv1->d, 3, ATOL, RTOL, "batchnorm running_var after a step");
        }
    }
    /* eval with given running statistics; they must not change */
    {
        lg_ctx_reset(ctx);
        ref *erm = get(&rf, "erm"), *erv = get(&rf, "erv");
        if (erm->d && erv->d) {
            be->upload(rm, erm->d, 3);
            be->upload(rv, erv->d, 3);
        }
        lg_tensor *x = tens(ctx, get(&rf, "x"), 1);
        lg_tensor *g = tens(ctx, gamma, 1), *b = tens(ctx, beta, 1);
        lg_tensor *y = lg_batchnorm(ctx, x, g, b, &st, 0);
        cmp(ctx, "batchnorm", "eval y", y, get(&rf, "ey"), ATOL, RTOL);
        lg_tensor *wrt[3] = {x, g, b};
        ref *refs[3] = {get(&rf, "edx"), get(&rf, "edgamma"), get(&rf, "edbeta")};
        const char *enames[3] = {"eval dx", "eval dgamma", "eval dbeta"};
        cmp_grads(ctx, "batchnorm", y, get(&rf, "dy"), 3, wrt, enames, refs);
        /* without gradients eval takes another path (one kernel) */
        lg_tensor *y0 = lg_batchnorm(ctx, tens(ctx, get(&rf, "x"), 0), tens(ctx, gamma, 0),
                                     tens(ctx, beta, 0), &st, 0);
        cmp(ctx, "batchnorm", "eval y without grad", y0, get(&rf, "ey"), ATOL, RTOL);
        be->download(hm, rm, 3);
        be->download(hv, rv, 3);
        if (erm->d && erv->d) {
            lg_test_close(hm, erm->d, 3, 0, 0, "batchnorm eval leaves running_mean");
            lg_test_close(hv, erv->d, 3, 0, 0, "batchnorm eval leaves running_var");
        }
    }
    lg_buffer_free(be, rm);
    lg_buffer_free(be, rv);
    lg_ctx_free(ctx);
    ref_close(&rf);
}

/* The critic of tools/gen_reference.py. */
static lg_tensor *critic(lg_ctx *ctx, lg_tensor *x, lg_tensor *const *p) {
    lg_tensor *h = lg_leaky_relu(ctx, lg_conv2d(ctx, x, p[0], p[1], 2, 1), 0.2f);
    h = lg_avgpool2x2(ctx, lg_conv2d(ctx, h, p[2], p[3], 1, 1));
    return lg_linear(ctx, lg_flatten(ctx, h), p[4], p[5]);
}

static void test_wgan_gp(void) {
    reffile rf;
    if (!ref_open(&rf, "wgan_gp")) return;
    const char *pnames[6] = {"conv1.weight", "conv1.bias", "conv2.weight",
                             "conv2.bias",   "fc.weight",  "fc.bias"};
    lg_ctx *ctx;
    CHECK_OK(lg_ctx_create(&ctx, lg_test_backend()));
    lg_tensor *p[6];
    for (int i = 0; i < 6; i++) p[i] = tens(ctx, get(&rf, pnames[i]), 1);
    lg_tensor *real = tens(ctx, get(&rf, "real"), 0), *fake = tens(ctx, get(&rf, "fake"), 0);
    lg_tensor *al = tens(ctx, get(&rf, "alpha"), 0);
    /* xhat = alpha*real + (1-alpha)*fake, a leaf requiring grad */
    lg_tensor *xhat = lg_add(ctx, lg_mul(ctx, al, real),
                             lg_mul(ctx, lg_add_scalar(ctx, lg_neg(ctx, al), 1.0f), fake));
    cmp(ctx, "wgan_gp", "xhat", xhat, get(&rf, "xhat"), ATOL, RTOL);
    xhat = lg_detach(ctx, xhat, 1);
    lg_tensor *dr = critic(ctx, real, p), *df = critic(ctx, fake, p);
    cmp(ctx, "wgan_gp", "d_real", dr, get(&rf, "d_real"), ATOL, RTOL);
    cmp(ctx, "wgan_gp", "d_fake", df, get(&rf, "d_fake"), ATOL, RTOL);
    /* gp = 10 * mean_n (||grad_xhat sum D(xhat)||_n - 1)^2 */
    lg_tensor *g = NULL, *gp = NULL;
    lg_tensor *s = lg_sum(ctx, critic(ctx, xhat, p));
    CHECK_OK(s ? lg_grad(ctx, s, NULL, 1, &xhat, &g, 1) : lg_ctx_status(ctx));
    if (g) {
        lg_tensor *nrm = lg_sqrt(ctx, lg_sum_axes(ctx, lg_square(ctx, g), 0xe));
        gp = lg_scale(ctx, lg_mean(ctx, lg_square(ctx, lg_add_scalar(ctx, nrm, -1.0f))), 10.0f);
    }
    cmp(ctx, "wgan_gp", "gp", gp, get(&rf, "gp"), GP_ATOL, GP_RTOL);
    lg_tensor *loss = lg_add(ctx, lg_sub(ctx, lg_mean(ctx, df), lg_mean(ctx, dr)), gp);
    cmp(ctx, "wgan_gp", "loss", loss, get(&rf, "loss"), GP_ATOL, GP_RTOL);
    lg_tensor *grads[6] = {0};
    char key[64];
    if (gp) {
        CHECK_OK(lg_grad(ctx, gp, NULL, 6, p, grads, 0));
        for (int i = 0; i < 6; i++) {
            snprintf(key, sizeof key, "gp_grad.%s", pnames[i]);
            cmp(ctx, "wgan_gp", key, grads[i], get(&rf, key), GP_ATOL, GP_RTOL);
        }
    }
    if (loss) {
        CHECK_OK(lg_grad(ctx, loss, NULL, 6, p, grads, 0));
        for (int i = 0; i < 6; i++) {
            snprintf(key, sizeof key, "loss_grad.%s", pnames[i]);
            cmp(ctx, "wgan_gp", key, grads[i], get(&rf, key), GP_ATOL, GP_RTOL);
        }
    }
    CHECK(lg_ctx_status(ctx) == LG_OK, "wgan_gp: %s", lg_error_msg());
    lg_ctx_free(ctx);
    ref_close(&rf);
}

int main(void) {
    LG_TEST_RUN(test_conv2d);
    LG_TEST_RUN(test_convt);
    LG_TEST_RUN(test_linear);
    LG_TEST_RUN(test_conv_bias_relu);
    LG_TEST_RUN(test_conv_wino);
    LG_TEST_RUN(test_resample);
    LG_TEST_RUN(test_pool_odd);
    LG_TEST_RUN(test_rows);
    LG_TEST_RUN(test_activations);
    LG_TEST_RUN(test_batchnorm);
    LG_TEST_RUN(test_wgan_gp);
    return lg_test_summary("test_reference");
}
