/* Correctness of every op in lipgan/ops.h:
 *  - forward values against naive loops written here;
 *  - first derivatives of every op against central differences;
 *  - second derivatives (G = sum(q * grad_{x0} sum(r * f))) of every op
 *    except batch norm, whose second derivative must fail with
 *    LG_ERR_UNSUPPORTED;
 *  - a WGAN-GP penalty on a tiny two-conv critic with parameter gradients
 *    checked by differences;
 *  - no system allocation after the first step of a fixed
 *    forward+backward+penalty graph.
 *
 * Tolerances (|analytic - fd| <= atol + rtol*|fd|): differences are taken
 * in float32 with eps = 1e-2 (inputs of size ~1) and summed in double, so
 * their error is ~eps^2 * f''' plus ~1e-7*sqrt(n)/eps of rounding; atol
 * 1e-3 and rtol 1e-2 leave a wide margin while a wrong rule is off by O(1).
 * Forward values use atol 1e-5, rtol 1e-4. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/graph.h"
#include "lg_test.h"
#include "lipgan/ops.h"

/* ---- host buffers, all freed at exit (LeakSanitizer) ---- */

#define MAX_BUFS 4096
static float *g_bufs[MAX_BUFS];
static int g_nbufs;
static lg_test_rng g_rng;

static float *buf_new(size_t n) {
    LG_ASSERT(g_nbufs < MAX_BUFS);
    float *p = calloc(n ? n : 1, sizeof(float));
    LG_ASSERT(p);
    g_bufs[g_nbufs++] = p;
    return p;
}
static float *buf_u(size_t n, float lo, float hi) {
    float *p = buf_new(n);
    lg_test_fill_uniform(&g_rng, p, n, lo, hi);
    return p;
}
static float *buf_away0(size_t n, float min_abs, float max_abs) {
    float *p = buf_new(n);
    lg_test_fill_away0(&g_rng, p, n, min_abs, max_abs);
    return p;
}
static void bufs_free(void) {
    for (int i = 0; i < g_nbufs; i++) free(g_bufs[i]);
    g_nbufs = 0;
}

/* ---- one op, described by a case, run as an lg_gc_fn ---- */

enum {
    OP_MATMUL, OP_LINEAR, OP_CONV, OP_CONVT, OP_WGRAD, OP_UP, OP_AVG, OP_SUMPOOL, OP_GSP,
    OP_BN, OP_RELU, OP_LRELU, OP_TANH, OP_SIGMOID, OP_SOFTPLUS, OP_ADD, OP_SUB, OP_MUL,
    OP_DIV, OP_SCALE, OP_ADDS, OP_NEG, OP_SQUARE, OP_SQRT, OP_SUM, OP_MEAN, OP_SUMAX,
    OP_MEANAX, OP_BCAST, OP_SUMTO, OP_RESHAPE, OP_FLATTEN, OP_ROWS, OP_ROWS_PAD, OP_CAT,
    OP_ADDRELU
};

typedef struct opcase {
    int op;
    int ta, tb;                 /* matmul transposes */
    int has_bias;               /* linear/conv/convT: in[2] is the bias */
    int stride, pad, out_pad;   /* conv family */
    int kh, kw;                 /* conv2d_wgrad */
    float alpha;                /* leaky slope, scale, scalar */
    unsigned mask;              /* sum_axes/mean_axes */
    int ndim;                   /* target shape: broadcast_to/sum_to/reshape */
    int64_t shape[LG_MAX_DIMS];
    lg_bn_state *bn;
    int train;
    int nin;                    /* inputs of the op itself */
    int wrap;                   /* 1: result * in[nin] (an extra input) */
} opcase;

static lg_tensor *op_apply(lg_ctx *ctx, lg_tensor **in, void *user) {
    opcase *c = user;
    lg_tensor *a = in[0], *b = c->nin > 1 ? in[1] : NULL, *bias = c->has_bias ? in[2] : NULL;
    lg_tensor *y = NULL;
    switch (c->op) {
    case OP_MATMUL: y = lg_matmul(ctx, a, b, c->ta, c->tb); break;
    case OP_LINEAR: y = lg_linear(ctx, a, b, bias); break;
    case OP_CONV: y = lg_conv2d(ctx, a, b, bias, c->stride, c->pad); break;
    case OP_CONVT: y = lg_conv_transpose2d(ctx, a, b, bias, c->stride, c->pad, c->out_pad); break;
    case OP_WGRAD: y = lg_conv2d_wgrad(ctx, a, b, c->kh, c->kw, c->stride, c->pad); break;
    case OP_UP: y = lg_upsample2x(ctx, a); break;
    case OP_AVG: y = lg_avgpool2x2(ctx, a); break;
    case OP_SUMPOOL: y = lg_sumpool2x2(ctx, a); break;
    case OP_GSP: y = lg_global_sum_pool(ctx, a); break;
    case OP_BN: y = lg_batchnorm(ctx, a, in[1], in[2], c->bn, c->train); break;
    case OP_RELU: y = lg_relu(ctx, a); break;
    case OP_LRELU: y = lg_leaky_relu(ctx, a, c->alpha); break;
    case OP_TANH: y = lg_tanh(ctx, a); break;
    case OP_SIGMOID: y = lg_sigmoid(ctx, a); break;
    case OP_SOFTPLUS: y = lg_softplus(ctx, a); break;
    case OP_ADD: y = lg_add(ctx, a, b); break;
    case OP_SUB: y = lg_sub(ctx, a, b); break;
    case OP_MUL: y = lg_mul(ctx, a, b); break;
    case OP_DIV: y = lg_div(ctx, a, b); break;
    case OP_ADDRELU: y = lg_add_relu(ctx, a, b); break;
    case OP_SCALE: y = lg_scale(ctx, a, c->alpha); break;
    case OP_ADDS: y = lg_add_scalar(ctx, a, c->alpha); break;
    case OP_NEG: y = lg_neg(ctx, a); break;
    case OP_SQUARE: y = lg_square(ctx, a); break;
    case OP_SQRT: y = lg_sqrt(ctx, a); break;
    case OP_SUM: y = lg_sum(ctx, a); break;
    case OP_MEAN: y = lg_mean(ctx, a); break;
    case OP_SUMAX: y = lg_sum_axes(ctx, a, c->mask); break;
    case OP_MEANAX: y = lg_mean_axes(ctx, a, c->mask); break;
    case OP_BCAST: y = lg_broadcast_to(ctx, a, c->ndim, c->shape); break;
    case OP_SUMTO: y = lg_sum_to(ctx, a, c->ndim, c->shape); break;
    case OP_RESHAPE: y = lg_reshape(ctx, a, c->ndim, c->shape); break;
    case OP_FLATTEN: y = lg_flatten(ctx, a); break;
    case OP_ROWS: y = lg_rows(ctx, a, c->stride, c->ndim); break;      /* start, len */
    case OP_ROWS_PAD: y = lg_rows_pad(ctx, a, c->stride, c->ndim); break; /* start, total */
    case OP_CAT: y = lg_cat_rows(ctx, a, b); break;
    }
    if (c->wrap) y = lg_mul(ctx, y, in[c->nin]);
    return y;
}

/* Runs the op once on the host inputs (no wrap): its output (malloc'd into
 * *out, numel in *numel, shape in ys). Returns 0 on success. */
static int op_forward(opcase *c, const lg_gc_input *in, float **out, int64_t *numel,
                      int *ydim, int64_t ys[LG_MAX_DIMS]) {
    lg_ctx *ctx;
    CHECK_OK(lg_ctx_create(&ctx, lg_test_backend()));
    lg_tensor *t[8] = {NULL}; /* op_apply may look at in[1], in[2] past nin */
    for (int i = 0; i < c->nin; i++)
        t[i] = lg_test_tensor(ctx, in[i].data, in[i].ndim, in[i].shape, 0);
    int wrap = c->wrap;
    c->wrap = 0;
    lg_tensor *y = op_apply(ctx, t, c);
    c->wrap = wrap;
    int rc = 1;
    if (y && lg_ctx_status(ctx) == LG_OK) {
        *out = buf_new((size_t)y->numel);
        *numel = y->numel;
        if (ydim) *ydim = y->ndim;
        if (ys) memcpy(ys, y->shape, sizeof(int64_t) * LG_MAX_DIMS);
        lg_to_host(ctx, y, *out);
        rc = 0;
    } else {
        CHECK(0, "op %d forward failed: %s", c->op, lg_error_msg());
    }
    lg_ctx_free(ctx);
    return rc;
}

/* Forward value check against a reference computed by the caller. */
static void fwd_check(const char *what, opcase *c, const lg_gc_input *in, const float *ref,
                      int64_t ref_numel) {
    float *y;
    int64_t n;
    if (op_forward(c, in, &y, &n, NULL, NULL)) return;
    CHECK(n == ref_numel, "%s: output has %lld elements, want %lld", what, (long long)n,
          (long long)ref_numel);
    if (n == ref_numel) lg_test_close(y, ref, (size_t)n, 1e-5, 1e-4, what);
}

/* Gradient check of the case; order 2 multiplies the output by an extra
 * random input m so that the backward rule's dependence on its incoming
 * gradient is differentiated too (otherwise linear ops give G = const). */
static void gcheck_tol(const char *what, opcase *c, int n, const lg_gc_input *in_, int order,
                       int x0, double eps, double atol, double rtol) {
    lg_gc_input in[8];
    memcpy(in, in_, sizeof(lg_gc_input) * (size_t)n);
    c->nin = n;
    c->wrap = 0;
    if (order == 2) {
        float *y;
        int64_t ny, ys[LG_MAX_DIMS];
        int yd;
        if (op_forward(c, in, &y, &ny, &yd, ys)) return;
        in[n] = lg_gc_in("m", buf_u((size_t)ny, -1.5f, 1.5f), yd, ys[0], ys[1], ys[2], ys[3]);
        c->wrap = 1;
        n++;
    }
    char label[160];
    snprintf(label, sizeof label, "%s%s", what, order == 2 && x0 ? " (x0 = input 1)" : "");
    lg_gc_opts o = {.order = order, .x0 = x0, .eps = eps, .atol = atol, .rtol = rtol};
    lg_gradcheck(label, op_apply, c, n, in, &o);
    c->wrap = 0;
}

static void gcheck(const char *what, opcase *c, int n, const lg_gc_input *in, int order, int x0) {
    gcheck_tol(what, c, n, in, order, x0, 1e-2, 1e-3, 1e-2);
}

/* First and second order with x0 = input 0. */
static void gcheck12(const char *what, opcase *c, int n, const lg_gc_input *in) {
    gcheck(what, c, n, in, 1, 0);
    gcheck(what, c, n, in, 2, 0);
}

#define IN1(name, d, nd, a0, a1, a2, a3) lg_gc_in(name, d, nd, a0, a1, a2, a3)

/* ---- naive references ---- */

static void ref_matmul(const float *a, const float *b, float *y, int m, int k, int n, int ta,
                       int tb) {
    for (int i = 0; i < m; i++)
        for (int j = 0; j < n; j++) {
            double s = 0;
            for (int p = 0; p < k; p++) {
                double av = ta ? a[p * m + i] : a[i * k + p];
                double bv = tb ? b[j * k + p] : b[p * n + j];
                s += av * bv;
            }
            y[i * n + j] = (float)s;
        }
}

/* conv2d: x (N,C,H,W), w (OC,C,KH,KW), b (OC) or NULL -> y (N,OC,OH,OW) */
static void ref_conv(const float *x, const float *w, const float *b, float *y, int N, int C,
                     int H, int W, int OC, int KH, int KW, int s, int p, int OH, int OW) {
    for (int n = 0; n < N; n++)
        for (int o = 0; o < OC; o++)
            for (int i = 0; i < OH; i++)
                for (int j = 0; j < OW; j++) {
                    double acc = b ? b[o] : 0.0;
                    for (int c = 0; c < C; c++)
                        for (int u = 0; u < KH; u++)
                            for (int v = 0; v < KW; v++) {
                                int hi = i * s - p + u, wi = j * s - p + v;
                                if (hi < 0 || hi >= H || wi < 0 || wi >= W) continue;
                                acc += (double)x[((n * C + c) * H + hi) * W + wi] *
                                       w[((o * C + c) * KH + u) * KW + v];
                            }
                    y[((n * OC + o) * OH + i) * OW + j] = (float)acc;
                }
}

/* conv_transpose2d: x (N,C,H,W), w (C,OC,KH,KW), b (OC) -> y (N,OC,OH,OW) */
static void ref_convt(const float *x, const float *w, const float *b, float *y, int N, int C,
                      int H, int W, int OC, int KH, int KW, int s, int p, int OH, int OW) {
    for (int n = 0; n < N; n++)
        for (int o = 0; o < OC; o++)
            for (int i = 0; i < OH * OW; i++) y[(n * OC + o) * OH * OW + i] = b ? b[o] : 0.0f;
    for (int n = 0; n < N; n++)
        for (int c = 0; c < C; c++)
            for (int i = 0; i < H; i++)
                for (int j = 0; j < W; j++)
                    for (int o = 0; o < OC; o++)
                        for (int u = 0; u < KH; u++)
                            for (int v = 0; v < KW; v++) {
                                int ho = i * s - p + u, wo = j * s - p + v;
                                if (ho < 0 || ho >= OH || wo < 0 || wo >= OW) continue;
                                y[((n * OC + o) * OH + ho) * OW + wo] +=
                                    x[((n * C + c) * H + i) * W + j] *
                                    w[((c * OC + o) * KH + u) * KW + v];
                            }
}

/* conv2d weight gradient: x (N,C,H,W), dy (N,OC,OH,OW) -> dw (OC,C,KH,KW) */
static void ref_wgrad(const float *x, const float *dy, float *dw, int N, int C, int H, int W,
                      int OC, int KH, int KW, int s, int p, int OH, int OW) {
    for (int o = 0; o < OC; o++)
        for (int c = 0; c < C; c++)
            for (int u = 0; u < KH; u++)
                for (int v = 0; v < KW; v++) {
                    double acc = 0;
                    for (int n = 0; n < N; n++)
                        for (int i = 0; i < OH; i++)
                            for (int j = 0; j < OW; j++) {
                                int hi = i * s - p + u, wi = j * s - p + v;
                                if (hi < 0 || hi >= H || wi < 0 || wi >= W) continue;
                                acc += (double)dy[((n * OC + o) * OH + i) * OW + j] *
                                       x[((n * C + c) * H + hi) * W + wi];
                            }
                    dw[((o * C + c) * KH + u) * KW + v] = (float)acc;
                }
}

static void right_align(int ndim, const int64_t *s, int64_t o[4]) {
    for (int i = 0; i < 4; i++) o[i] = i < 4 - ndim ? 1 : s[i - (4 - ndim)];
}

/* Index into a right-aligned 4-D shape s of the broadcast position (i0..i3). */
static int64_t bidx(const int64_t s[4], int64_t i0, int64_t i1, int64_t i2, int64_t i3) {
    return (((s[0] == 1 ? 0 : i0) * s[1] + (s[1] == 1 ? 0 : i1)) * s[2] + (s[2] == 1 ? 0 : i2)) *
               s[3] + (s[3] == 1 ? 0 : i3);
}

/* ---- linear algebra ---- */

static void test_matmul(void) {
    const int m = 3, k = 4, n = 5;
    for (int ta = 0; ta < 2; ta++)
        for (int tb = 0; tb < 2; tb++) {
            float *a = buf_u((size_t)m * k, -1, 1), *b = buf_u((size_t)k * n, -1, 1);
            lg_gc_input in[2] = {ta ? IN1("a", a, 2, k, m, 0, 0) : IN1("a", a, 2, m, k, 0, 0),
                                 tb ? IN1("b", b, 2, n, k, 0, 0) : IN1("b", b, 2, k, n, 0, 0)};
            opcase c = {.op = OP_MATMUL, .ta = ta, .tb = tb, .nin = 2};
            float *ref = buf_new((size_t)m * n);
            ref_matmul(a, b, ref, m, k, n, ta, tb);
            char what[64];
            snprintf(what, sizeof what, "matmul ta=%d tb=%d", ta, tb);
            fwd_check(what, &c, in, ref, m * n);
            gcheck(what, &c, 2, in, 1, 0);
            gcheck(what, &c, 2, in, 2, 0);
            gcheck(what, &c, 2, in, 2, 1);
        }
}

static void test_linear(void) {
    const int N = 3, I = 4, O = 2;
    for (int hb = 0; hb < 2; hb++) {
        float *x = buf_u(N * I, -1, 1), *w = buf_u(O * I, -1, 1), *b = buf_u(O, -1, 1);
        lg_gc_input in[3] = {IN1("x", x, 2, N, I, 0, 0), IN1("w", w, 2, O, I, 0, 0),
                             IN1("b", b, 1, O, 0, 0, 0)};
        opcase c = {.op = OP_LINEAR, .has_bias = hb, .nin = 2 + hb};
        float *ref = buf_new(N * O);
        ref_matmul(x, w, ref, N, I, O, 0, 1);
        if (hb)
            for (int i = 0; i < N * O; i++) ref[i] += b[i % O];
        const char *what = hb ? "linear with bias" : "linear without bias";
        fwd_check(what, &c, in, ref, N * O);
        gcheck(what, &c, 2 + hb, in, 1, 0);
        gcheck(what, &c, 2 + hb, in, 2, 0);
        gcheck(what, &c, 2 + hb, in, 2, 1);
    }
}

/* ---- convolutions ---- */

static void test_conv2d(void) {
    const int N = 2, C = 2, H = 5, W = 4, OC = 3, K = 3;
    struct { int s, p, bias; } cfg[] = {{1, 0, 0}, {1, 1, 1}, {2, 0, 1}, {2, 1, 0}, {2, 1, 1}};
    for (size_t t = 0; t < sizeof cfg / sizeof cfg[0]; t++) {
        int s = cfg[t].s, p = cfg[t].p;
        int OH = (H + 2 * p - K) / s + 1, OW = (W + 2 * p - K) / s + 1;
        float *x = buf_u(N * C * H * W, -1, 1), *w = buf_u(OC * C * K * K, -1, 1);
        float *b = buf_u(OC, -1, 1);
        lg_gc_input in[3] = {IN1("x", x, 4, N, C, H, W), IN1("w", w, 4, OC, C, K, K),
                             IN1("b", b, 1, OC, 0, 0, 0)};
        opcase c = {.op = OP_CONV, .stride = s, .pad = p, .has_bias = cfg[t].bias};
        c.nin = 2 + c.has_bias;
        float *ref = buf_new((size_t)N * OC * OH * OW);
        ref_conv(x, w, c.has_bias ? b : NULL, ref, N, C, H, W, OC, K, K, s, p, OH, OW);
        char what[64];
        snprintf(what, sizeof what, "conv2d stride %d pad %d%s", s, p,
                 c.has_bias ? " bias" : "");
        fwd_check(what, &c, in, ref, (int64_t)N * OC * OH * OW);
        gcheck(what, &c, c.nin, in, 1, 0);
        gcheck(what, &c, c.nin, in, 2, 0);
        gcheck(what, &c, c.nin, in, 2, 1);
    }
    /* a rectangular kernel (2x3), stride 2, pad 1 */
    {
        float *x = buf_u(2 * 2 * 5 * 4, -1, 1), *w = buf_u(3 * 2 * 2 * 3, -1, 1);
        float *b = buf_u(3, -1, 1);
        lg_gc_input in[3] = {IN1("x", x, 4, 2, 2, 5, 4), IN1("w", w, 4, 3, 2, 2, 3),
                             IN1("b", b, 1, 3, 0, 0, 0)};
        opcase c = {.op = OP_CONV, .stride = 2, .pad = 1, .has_bias = 1, .nin = 3};
        int OH = (5 + 2 - 2) / 2 + 1, OW = (4 + 2 - 3) / 2 + 1;
        float *ref = buf_new((size_t)2 * 3 * OH * OW);
        ref_conv(x, w, b, ref, 2, 2, 5, 4, 3, 2, 3, 2, 1, OH, OW);
        fwd_check("conv2d kernel 2x3", &c, in, ref, (int64_t)2 * 3 * OH * OW);
        gcheck("conv2d kernel 2x3", &c, 3, in, 1, 0);
        gcheck("conv2d kernel 2x3", &c, 3, in, 2, 0);
        gcheck("conv2d kernel 2x3", &c, 3, in, 2, 1);
    }
    /* a 1x1 kernel */
    {
        float *x = buf_u(2 * 3 * 3 * 3, -1, 1), *w = buf_u(2 * 3, -1, 1);
        lg_gc_input in[2] = {IN1("x", x, 4, 2, 3, 3, 3), IN1("w", w, 4, 2, 3, 1, 1)};
        opcase c = {.op = OP_CONV, .stride = 1, .pad = 0, .nin = 2};
        float *ref = buf_new(2 * 2 * 9);
        ref_conv(x, w, NULL, ref, 2, 3, 3, 3, 2, 1, 1, 1, 0, 3, 3);
        fwd_check("conv2d 1x1", &c, in, ref, 36);
        gcheck12("conv2d 1x1", &c, 2, in);
    }
}

static void test_conv_transpose2d(void) {
    const int N = 2, C = 3, H = 3, W = 2, OC = 2, K = 4;
    struct { int s, p, op, bias; } cfg[] = {{2, 1, 0, 1}, {2, 1, 1, 1}, {2, 1, 1, 0}, {1, 0, 0, 1}};
    for (size_t t = 0; t < sizeof cfg / sizeof cfg[0]; t++) {
        int s = cfg[t].s, p = cfg[t].p, op = cfg[t].op, kk = s == 1 ? 3 : K;
        int OH = (H - 1) * s - 2 * p + kk + op, OW = (W - 1) * s - 2 * p + kk + op;
        float *x = buf_u(N * C * H * W, -1, 1), *w = buf_u(C * OC * kk * kk, -1, 1);
        float *b = buf_u(OC, -1, 1);
        lg_gc_input in[3] = {IN1("x", x, 4, N, C, H, W), IN1("w", w, 4, C, OC, kk, kk),
                             IN1("b", b, 1, OC, 0, 0, 0)};
        opcase c = {.op = OP_CONVT, .stride = s, .pad = p, .out_pad = op, .has_bias = cfg[t].bias};
        c.nin = 2 + c.has_bias;
        float *ref = buf_new((size_t)N * OC * OH * OW);
        ref_convt(x, w, c.has_bias ? b : NULL, ref, N, C, H, W, OC, kk, kk, s, p, OH, OW);
        char what[80];
        snprintf(what, sizeof what, "conv_transpose2d k%d stride %d pad %d out_pad %d%s", kk, s,
                 p, op, c.has_bias ? " bias" : "");
        fwd_check(what, &c, in, ref, (int64_t)N * OC * OH * OW);
        gcheck(what, &c, c.nin, in, 1, 0);
        gcheck(what, &c, c.nin, in, 2, 0);
        gcheck(what, &c, c.nin, in, 2, 1);
    }
}

static void test_conv2d_wgrad(void) {
    const int N = 2, C = 2, H = 5, W = 4, OC = 3, K = 3;
    struct { int s, p; } cfg[] = {{1, 1}, {2, 1}, {2, 0}};
    for (size_t t = 0; t < sizeof cfg / sizeof cfg[0]; t++) {
        int s = cfg[t].s, p = cfg[t].p;
        int OH = (H + 2 * p - K) / s + 1, OW = (W + 2 * p - K) / s + 1;
        float *x = buf_u(N * C * H * W, -1, 1), *dy = buf_u((size_t)N * OC * OH * OW, -1, 1);
        lg_gc_input in[2] = {IN1("x", x, 4, N, C, H, W), IN1("dy", dy, 4, N, OC, OH, OW)};
        opcase c = {.op = OP_WGRAD, .kh = K, .kw = K, .stride = s, .pad = p, .nin = 2};
        float *ref = buf_new(OC * C * K * K);
        ref_wgrad(x, dy, ref, N, C, H, W, OC, K, K, s, p, OH, OW);
        char what[64];
        snprintf(what, sizeof what, "conv2d_wgrad stride %d pad %d", s, p);
        fwd_check(what, &c, in, ref, OC * C * K * K);
        gcheck(what, &c, 2, in, 1, 0);
        gcheck(what, &c, 2, in, 2, 0);
        gcheck(what, &c, 2, in, 2, 1);
    }
}

/* ---- resampling ---- */

/* 2x2 pooling of x (N,C,H,W), any H, W >= 2: y (N,C,H/2,W/2) rounded down
 * (PyTorch's avg_pool2d floor; an odd H's last row and an odd W's last
 * column are left out), forward values and derivatives of both orders. */
static void check_pool(int N, int C, int H, int W) {
    const int OH = H / 2, OW = W / 2;
    float *x = buf_u((size_t)N * C * H * W, -1, 1);
    lg_gc_input in[1] = {IN1("x", x, 4, N, C, H, W)};
    float *avg = buf_new((size_t)N * C * OH * OW), *sum = buf_new((size_t)N * C * OH * OW);
    for (int nc = 0; nc < N * C; nc++) {
        const float *xp = x + nc * H * W;
        for (int i = 0; i < OH; i++)
            for (int j = 0; j < OW; j++) {
                float s = xp[2 * i * W + 2 * j] + xp[2 * i * W + 2 * j + 1] +
                          xp[(2 * i + 1) * W + 2 * j] + xp[(2 * i + 1) * W + 2 * j + 1];
                sum[(nc * OH + i) * OW + j] = s;
                avg[(nc * OH + i) * OW + j] = s / 4;
            }
    }
    struct { int op; const char *name; float *ref; } t[] = {
        {OP_AVG, "avgpool2x2", avg},
        {OP_SUMPOOL, "sumpool2x2", sum},
    };
    for (size_t i = 0; i < sizeof t / sizeof t[0]; i++) {
        char what[96];
        snprintf(what, sizeof what, "%s (%d,%d,%d,%d)", t[i].name, N, C, H, W);
        opcase c = {.op = t[i].op, .nin = 1};
        float *y;
        int64_t n, ys[LG_MAX_DIMS];
        int yd;
        if (!op_forward(&c, in, &y, &n, &yd, ys))
            CHECK(yd == 4 && ys[0] == N && ys[1] == C && ys[2] == OH && ys[3] == OW,
                  "%s: output (%lld,%lld,%lld,%lld), want (%d,%d,%d,%d)", what, (long long)ys[0],
                  (long long)ys[1], (long long)ys[2], (long long)ys[3], N, C, OH, OW);
        fwd_check(what, &c, in, t[i].ref, (int64_t)N * C * OH * OW);
        gcheck12(what, &c, 1, in);
    }
}

/* The gradient of sum(dy * avgpool2x2(x)) for a random dy (N,C,H/2,W/2):
 * exactly dy/4 over each pooled 2x2 block, exactly 0 on the dropped row and
 * column (sizes too large for differences included). */
static void check_pool_grad(int N, int C, int H, int W) {
    const int OH = H / 2, OW = W / 2;
    size_t nx = (size_t)N * C * H * W, ny = (size_t)N * C * OH * OW;
    float *x = buf_u(nx, -1, 1), *dy = buf_u(ny, -1, 1);
    lg_ctx *ctx;
    CHECK_OK(lg_ctx_create(&ctx, lg_test_backend()));
    lg_tensor *xt = lg_test_tensor(ctx, x, 4, (int64_t[]){N, C, H, W}, 1), *gx = NULL;
    lg_tensor *seed = lg_test_tensor(ctx, dy, 4, (int64_t[]){N, C, OH, OW}, 0);
    CHECK_OK(lg_grad(ctx, lg_avgpool2x2(ctx, xt), seed, 1, &xt, &gx, 0));
    if (gx) {
        float *h = buf_new(nx), *want = buf_new(nx);
        lg_to_host(ctx, gx, h);
        for (int nc = 0; nc < N * C; nc++)
            for (int i = 0; i < H; i++)
                for (int j = 0; j < W; j++)
                    want[(nc * H + i) * W + j] =
                        i < 2 * OH && j < 2 * OW ? 0.25f * dy[(nc * OH + i / 2) * OW + j / 2] : 0.0f;
        char what[96];
        snprintf(what, sizeof what, "d avgpool2x2 / dx (%d,%d,%d,%d)", N, C, H, W);
        lg_test_close(h, want, nx, 0, 0, what);
    }
    lg_ctx_free(ctx);
}

static void test_resample(void) {
    const int N = 2, C = 3, H = 4, W = 6;
    float *x = buf_u(N * C * H * W, -1, 1);
    lg_gc_input in[1] = {IN1("x", x, 4, N, C, H, W)};
    float *up = buf_new(N * C * H * W * 4), *gsp = buf_new(N * C);
    for (int nc = 0; nc < N * C; nc++) {
        const float *xp = x + nc * H * W;
        double g = 0;
        for (int i = 0; i < 2 * H; i++)
            for (int j = 0; j < 2 * W; j++) up[(nc * 2 * H + i) * 2 * W + j] = xp[(i / 2) * W + j / 2];
        for (int i = 0; i < H * W; i++) g += xp[i];
        gsp[nc] = (float)g;
    }
    struct { int op; const char *name; float *ref; int64_t n; } t[] = {
        {OP_UP, "upsample2x", up, N * C * H * W * 4},
        {OP_GSP, "global_sum_pool", gsp, N * C},
    };
    for (size_t i = 0; i < sizeof t / sizeof t[0]; i++) {
        opcase c = {.op = t[i].op, .nin = 1};
        fwd_check(t[i].name, &c, in, t[i].ref, t[i].n);
        gcheck12(t[i].name, &c, 1, in);
    }
    /* pooling: even, odd and mixed sizes, the smallest ones included */
    static const int ps[][4] = {{2, 3, 4, 6}, {2, 2, 5, 7}, {1, 2, 5, 4}, {2, 1, 4, 7},
                                {1, 2, 3, 3}, {2, 1, 2, 3}, {1, 1, 3, 2}, {1, 1, 2, 2}};
    for (size_t i = 0; i < sizeof ps / sizeof ps[0]; i++) {
        check_pool(ps[i][0], ps[i][1], ps[i][2], ps[i][3]);
        check_pool_grad(ps[i][0], ps[i][1], ps[i][2], ps[i][3]);
    }
    check_pool_grad(4, 16, 33, 31); /* planes on several threads */
    check_pool_grad(2, 8, 32, 17);
    /* global_sum_pool output is (N,C) */
    {
        opcase c = {.op = OP_GSP, .nin = 1};
        float *y;
        int64_t n, ys[4];
        int yd;
        if (!op_forward(&c, in, &y, &n, &yd, ys))
            CHECK(yd == 2 && ys[0] == N && ys[1] == C, "global_sum_pool shape ndim %d (%lld,%lld)",
                  yd, (long long)ys[0], (long long)ys[1]);
    }
}

/* ---- batch norm ---- */

/* Running statistics in the test backend's memory. */
static void bn_state_init(lg_bn_state *st, int C, float **rm, float **rv) {
    const lg_backend *be = lg_test_backend();
    *rm = lg_buffer_alloc(be, (size_t)C);
    *rv = lg_buffer_alloc(be, (size_t)C);
    LG_ASSERT(*rm && *rv && C <= 8);
    float hm[8], hv[8];
    for (int i = 0; i < C; i++) {
        hm[i] = 0.1f * (float)i - 0.05f;
        hv[i] = 0.5f + 0.25f * (float)i;
    }
    be->upload(*rm, hm, (size_t)C);
    be->upload(*rv, hv, (size_t)C);
    st->run_mean = *rm;
    st->run_var = *rv;
    st->momentum = 0.1f;
    st->eps = 1e-5f;
}

static void test_batchnorm(void) {
    const int C = 3;
    float *rm, *rv;
    lg_bn_state st;
    bn_state_init(&st, C, &rm, &rv);
    float *x4 = buf_u(4 * C * 2 * 2, -1, 1), *x2 = buf_u(6 * C, -1, 1);
    float *gamma = buf_u(C, 0.5f, 1.5f), *beta = buf_u(C, -0.5f, 0.5f);
    for (int train = 1; train >= 0; train--) {
        opcase c = {.op = OP_BN, .bn = &st, .train = train, .nin = 3};
        lg_gc_input in4[3] = {IN1("x", x4, 4, 4, C, 2, 2), IN1("gamma", gamma, 1, C, 0, 0, 0),
                              IN1("beta", beta, 1, C, 0, 0, 0)};
        lg_gc_input in2[3] = {IN1("x", x2, 2, 6, C, 0, 0), IN1("gamma", gamma, 1, C, 0, 0, 0),
                              IN1("beta", beta, 1, C, 0, 0, 0)};
        /* normalization has a 1/sqrt(var) that makes third derivatives
         * larger: smaller steps */
        gcheck_tol(train ? "batchnorm train (N,C,H,W)" : "batchnorm eval (N,C,H,W)", &c, 3, in4,
                   1, 0, 3e-3, 1e-3, 1e-2);
        gcheck_tol(train ? "batchnorm train (N,C)" : "batchnorm eval (N,C)", &c, 3, in2, 1, 0,
                   3e-3, 1e-3, 1e-2);
        /* forward: eval uses the running statistics (which train calls in
         * the differences above have changed; read them now) */
        float *ref = buf_new(6 * C), hrm[8], hrv[8];
        double mean[8], var[8];
        lg_test_backend()->download(hrm, rm, (size_t)C);
        lg_test_backend()->download(hrv, rv, (size_t)C);
        for (int ch = 0; ch < C; ch++) {
            double s = 0, s2 = 0;
            for (int n = 0; n < 6; n++) s += x2[n * C + ch];
            s /= 6;
            for (int n = 0; n < 6; n++) s2 += (x2[n * C + ch] - s) * (x2[n * C + ch] - s);
            mean[ch] = train ? s : hrm[ch];
            var[ch] = train ? s2 / 6 : hrv[ch];
        }
        for (int n = 0; n < 6; n++)
            for (int ch = 0; ch < C; ch++)
                ref[n * C + ch] = (float)(gamma[ch] * (x2[n * C + ch] - mean[ch]) /
                                              sqrt(var[ch] + st.eps) + beta[ch]);
        fwd_check(train ? "batchnorm train (N,C) forward" : "batchnorm eval (N,C) forward", &c,
                  in2, ref, 6 * C);
    }

    /* The second derivative does not exist: differentiating the backward
     * must fail loudly with LG_ERR_UNSUPPORTED, never give zeros. */
    {
        lg_ctx *ctx;
        CHECK_OK(lg_ctx_create(&ctx, lg_test_backend()));
        lg_tensor *x = lg_test_tensor(ctx, x4, 4, (int64_t[]){4, C, 2, 2}, 1);
        lg_tensor *g = lg_test_tensor(ctx, gamma, 1, (int64_t[]){C}, 1);
        lg_tensor *b = lg_test_tensor(ctx, beta, 1, (int64_t[]){C}, 1);
        lg_tensor *y = lg_batchnorm(ctx, x, g, b, &st, 1);
        lg_tensor *r = lg_from_host(ctx, buf_u(4 * C * 4, -1, 1), 4, (int64_t[]){4, C, 2, 2});
        lg_tensor *dx = NULL;
        CHECK_OK(lg_grad(ctx, y, r, 1, &x, &dx, 1));
        if (dx) {
            lg_tensor *q = lg_from_host(ctx, buf_u(4 * C * 4, -1, 1), 4, (int64_t[]){4, C, 2, 2});
            lg_tensor *wrt[3] = {x, g, b}, *gg[3] = {0};
            CHECK_STATUS(lg_grad(ctx, dx, q, 3, wrt, gg, 0), LG_ERR_UNSUPPORTED);
            CHECK(strstr(lg_error_msg(), "batchnorm") || strstr(lg_error_msg(), "bn"),
                  "the message should name the op: \"%s\"", lg_error_msg());
            CHECK(lg_ctx_status(ctx) != LG_OK, "the failure should be sticky on the context");
        }
        lg_ctx_free(ctx);
    }
    lg_buffer_free(lg_test_backend(), rm);
    lg_buffer_free(lg_test_backend(), rv);
}

/* ---- activations and elementwise ---- */

static double ref_unary(int op, double x, double alpha) {
    switch (op) {
    case OP_RELU: return x > 0 ? x : 0;
    case OP_LRELU: return x > 0 ? x : alpha * x;
    case OP_TANH: return tanh(x);
    case OP_SIGMOID: return 1 / (1 + exp(-x));
    case OP_SOFTPLUS: return log1p(exp(x));
    case OP_SCALE: return alpha * x;
    case OP_ADDS: return x + alpha;
    case OP_NEG: return -x;
    case OP_SQUARE: return x * x;
    case OP_SQRT: return sqrt(x);
    }
    return NAN;
}

static void test_unary(void) {
    struct { int op; const char *name; float alpha; int pos; } t[] = {
        {OP_RELU, "relu", 0, 0},          {OP_LRELU, "leaky_relu", 0.2f, 0},
        {OP_TANH, "tanh", 0, 0},          {OP_SIGMOID, "sigmoid", 0, 0},
        {OP_SOFTPLUS, "softplus", 0, 0},  {OP_SCALE, "scale", -1.7f, 0},
        {OP_ADDS, "add_scalar", 0.6f, 0}, {OP_NEG, "neg", 0, 0},
        {OP_SQUARE, "square", 0, 0},      {OP_SQRT, "sqrt", 0, 1},
    };
    const int n = 2 * 3 * 2 * 2;
    for (size_t i = 0; i < sizeof t / sizeof t[0]; i++) {
        /* kinks: keep |x| >= 3*eps; sqrt: positive inputs */
        float *x = t[i].pos ? buf_u(n, 0.5f, 2.0f) : buf_away0(n, 0.05f, 2.0f);
        lg_gc_input in[1] = {IN1("x", x, 4, 2, 3, 2, 2)};
        opcase c = {.op = t[i].op, .alpha = t[i].alpha, .nin = 1};
        float *ref = buf_new(n);
        for (int j = 0; j < n; j++) ref[j] = (float)ref_unary(t[i].op, x[j], t[i].alpha);
        fwd_check(t[i].name, &c, in, ref, n);
        gcheck12(t[i].name, &c, 1, in);
    }
    /* softplus is stable for large |x| (no overflow to inf, no log(0)) */
    {
        float x[4] = {-100.0f, -30.0f, 30.0f, 100.0f};
        float ref[4];
        for (int j = 0; j < 4; j++) ref[j] = (float)ref_unary(OP_SOFTPLUS, x[j], 0);
        lg_gc_input in[1] = {IN1("x", x, 1, 4, 0, 0, 0)};
        opcase c = {.op = OP_SOFTPLUS, .nin = 1};
        fwd_check("softplus large |x|", &c, in, ref, 4);
    }
    /* 2-D and 1-D shapes work too */
    {
        float *x = buf_away0(5, 0.05f, 2.0f);
        lg_gc_input in[1] = {IN1("x", x, 1, 5, 0, 0, 0)};
        opcase c = {.op = OP_LRELU, .alpha = 0.1f, .nin = 1};
        gcheck12("leaky_relu 1-D", &c, 1, in);
    }
}

static void test_binary(void) {
    struct { int ad; int64_t as[4]; int bd; int64_t bs[4]; } shp[] = {
        {4, {2, 3, 2, 2}, 4, {2, 3, 2, 2}},  /* same shape */
        {4, {2, 3, 2, 2}, 3, {3, 1, 1}},     /* per-channel */
        {4, {2, 3, 2, 2}, 1, {2}},           /* last dim */
        {3, {2, 1, 4}, 2, {3, 1}},           /* both broadcast -> (2,3,4) */
        {2, {1, 3}, 2, {4, 1}},              /* outer product shape */
        {1, {1}, 2, {2, 3}},                 /* scalar tensor */
    };
    struct { int op; const char *name; } ops[] = {{OP_ADD, "add"}, {OP_SUB, "sub"},
                                                  {OP_MUL, "mul"}, {OP_DIV, "div"},
                                                  {OP_ADDRELU, "add_relu"}};
    for (size_t o = 0; o < sizeof ops / sizeof ops[0]; o++)
        for (size_t s = 0; s < sizeof shp / sizeof shp[0]; s++) {
            int64_t an = 1, bn = 1, A[4], B[4], Y[4];
            for (int i = 0; i < shp[s].ad; i++) an *= shp[s].as[i];
            for (int i = 0; i < shp[s].bd; i++) bn *= shp[s].bs[i];
            float *a = buf_u((size_t)an, -1, 1);
            /* div: keep the denominator away from 0 */
            float *b = ops[o].op == OP_DIV ? buf_away0((size_t)bn, 0.5f, 1.5f)
                                           : buf_u((size_t)bn, -1, 1);
            lg_gc_input in[2] = {lg_gc_in("a", a, shp[s].ad, shp[s].as[0], shp[s].as[1],
                                          shp[s].as[2], shp[s].as[3]),
                                 lg_gc_in("b", b, shp[s].bd, shp[s].bs[0], shp[s].bs[1],
                                          shp[s].bs[2], shp[s].bs[3])};
            right_align(shp[s].ad, shp[s].as, A);
            right_align(shp[s].bd, shp[s].bs, B);
            int64_t yn = 1;
            for (int i = 0; i < 4; i++) {
                Y[i] = A[i] > B[i] ? A[i] : B[i];
                yn *= Y[i];
            }
            /* add_relu: redraw b until no sum is within 0.05 of the kink */
            for (int tries = 0; ops[o].op == OP_ADDRELU; tries++) {
                LG_ASSERT(tries < 1000);
                int near = 0;
                for (int64_t i = 0; i < yn; i++) {
                    int64_t i3 = i % Y[3], i2 = i / Y[3] % Y[2], i1 = i / (Y[3] * Y[2]) % Y[1],
                            i0 = i / (Y[3] * Y[2] * Y[1]);
                    float v = a[bidx(A, i0, i1, i2, i3)] + b[bidx(B, i0, i1, i2, i3)];
                    near |= fabsf(v) < 0.05f;
                }
                if (!near) break;
                lg_test_fill_uniform(&g_rng, b, (size_t)bn, -1, 1);
            }
            float *ref = buf_new((size_t)yn);
            for (int64_t i0 = 0; i0 < Y[0]; i0++)
                for (int64_t i1 = 0; i1 < Y[1]; i1++)
                    for (int64_t i2 = 0; i2 < Y[2]; i2++)
                        for (int64_t i3 = 0; i3 < Y[3]; i3++) {
                            float av = a[bidx(A, i0, i1, i2, i3)], bv = b[bidx(B, i0, i1, i2, i3)];
                            float v = ops[o].op == OP_ADD     ? av + bv
                                      : ops[o].op == OP_SUB   ? av - bv
                                      : ops[o].op == OP_MUL   ? av * bv
                                      : ops[o].op == OP_DIV   ? av / bv
                                      : av + bv < 0 ? 0.0f : av + bv;
                            ref[((i0 * Y[1] + i1) * Y[2] + i2) * Y[3] + i3] = v;
                        }
            opcase c = {.op = ops[o].op, .nin = 2};
            char what[64];
            snprintf(what, sizeof what, "%s shape case %zu", ops[o].name, s);
            fwd_check(what, &c, in, ref, yn);
            gcheck(what, &c, 2, in, 1, 0);
            gcheck(what, &c, 2, in, 2, 0);
            gcheck(what, &c, 2, in, 2, 1);
        }
}

/* ---- reductions and shapes ---- */

static void test_reductions(void) {
    const int64_t S[4] = {2, 3, 2, 2};
    const int n = 24;
    float *x = buf_u(n, -1, 1);
    lg_gc_input in[1] = {IN1("x", x, 4, 2, 3, 2, 2)};
    double tot = 0;
    for (int i = 0; i < n; i++) tot += x[i];
    {
        float ref = (float)tot;
        opcase c = {.op = OP_SUM, .nin = 1};
        fwd_check("sum", &c, in, &ref, 1);
        gcheck12("sum", &c, 1, in);
        ref = (float)(tot / n);
        c.op = OP_MEAN;
        fwd_check("mean", &c, in, &ref, 1);
        gcheck12("mean", &c, 1, in);
    }
    unsigned masks[] = {0x1, 0x2, 0x5, 0xa, 0xe, 0xf};
    for (size_t m = 0; m < sizeof masks / sizeof masks[0]; m++) {
        unsigned mask = masks[m];
        int64_t Y[4], cnt = 1, yn = 1;
        for (int d = 0; d < 4; d++) {
            Y[d] = (mask >> d) & 1 ? 1 : S[d];
            if ((mask >> d) & 1) cnt *= S[d];
            yn *= Y[d];
        }
        float *rs = buf_new((size_t)yn), *rm = buf_new((size_t)yn);
        for (int64_t i0 = 0; i0 < 2; i0++)
            for (int64_t i1 = 0; i1 < 3; i1++)
                for (int64_t i2 = 0; i2 < 2; i2++)
                    for (int64_t i3 = 0; i3 < 2; i3++)
                        rs[bidx(Y, i0, i1, i2, i3)] += x[((i0 * 3 + i1) * 2 + i2) * 2 + i3];
        for (int64_t i = 0; i < yn; i++) rm[i] = rs[i] / (float)cnt;
        char what[64];
        opcase c = {.op = OP_SUMAX, .mask = mask, .nin = 1};
        snprintf(what, sizeof what, "sum_axes mask 0x%x", mask);
        fwd_check(what, &c, in, rs, yn);
        gcheck12(what, &c, 1, in);
        /* keepdim: same ndim, reduced dims of size 1 */
        float *y;
        int64_t ny, ys[4];
        int yd;
        if (!op_forward(&c, in, &y, &ny, &yd, ys))
            CHECK(yd == 4 && ys[0] == Y[0] && ys[1] == Y[1] && ys[2] == Y[2] && ys[3] == Y[3],
                  "%s: wrong shape", what);
        c.op = OP_MEANAX;
        snprintf(what, sizeof what, "mean_axes mask 0x%x", mask);
        fwd_check(what, &c, in, rm, yn);
        gcheck12(what, &c, 1, in);
    }
    /* sum_axes on a 2-D tensor (rows of a matrix) */
    {
        float *x2 = buf_u(12, -1, 1), ref[4] = {0};
        for (int i = 0; i < 3; i++)
            for (int j = 0; j < 4; j++) ref[j] += x2[i * 4 + j];
        lg_gc_input in2[1] = {IN1("x", x2, 2, 3, 4, 0, 0)};
        opcase c = {.op = OP_SUMAX, .mask = 0x1, .nin = 1};
        fwd_check("sum_axes 2-D dim 0", &c, in2, ref, 4);
        gcheck12("sum_axes 2-D dim 0", &c, 1, in2);
    }
}

static void test_shapes(void) {
    /* broadcast_to (3,1) -> (2,3,4) and its adjoint sum_to */
    {
        float *x = buf_u(3, -1, 1), *ref = buf_new(24);
        for (int i = 0; i < 24; i++) ref[i] = x[(i / 4) % 3];
        lg_gc_input in[1] = {IN1("x", x, 2, 3, 1, 0, 0)};
        opcase c = {.op = OP_BCAST, .ndim = 3, .shape = {2, 3, 4}, .nin = 1};
        fwd_check("broadcast_to (3,1)->(2,3,4)", &c, in, ref, 24);
        gcheck12("broadcast_to (3,1)->(2,3,4)", &c, 1, in);
    }
    {
        float *x = buf_u(24, -1, 1), ref[3] = {0};
        for (int i = 0; i < 24; i++) ref[(i / 4) % 3] += x[i];
        lg_gc_input in[1] = {IN1("x", x, 3, 2, 3, 4, 0)};
        opcase c = {.op = OP_SUMTO, .ndim = 2, .shape = {3, 1}, .nin = 1};
        fwd_check("sum_to (2,3,4)->(3,1)", &c, in, ref, 3);
        gcheck12("sum_to (2,3,4)->(3,1)", &c, 1, in);
    }
    {
        float *x = buf_u(24, -1, 1), ref[3] = {0};
        for (int i = 0; i < 24; i++) ref[(i / 4) % 3] += x[i];
        lg_gc_input in[1] = {IN1("x", x, 4, 2, 3, 2, 2)};
        opcase c = {.op = OP_SUMTO, .ndim = 4, .shape = {1, 3, 1, 1}, .nin = 1};
        fwd_check("sum_to (2,3,2,2)->(1,3,1,1)", &c, in, ref, 3);
        gcheck12("sum_to (2,3,2,2)->(1,3,1,1)", &c, 1, in);
    }
    {
        float *x = buf_u(24, -1, 1);
        lg_gc_input in[1] = {IN1("x", x, 3, 2, 3, 4, 0)};
        opcase c = {.op = OP_RESHAPE, .ndim = 2, .shape = {4, 6}, .nin = 1};
        fwd_check("reshape (2,3,4)->(4,6)", &c, in, x, 24);
        gcheck12("reshape (2,3,4)->(4,6)", &c, 1, in);
        float *y;
        int64_t ny, ys[4];
        int yd;
        if (!op_forward(&c, in, &y, &ny, &yd, ys))
            CHECK(yd == 2 && ys[0] == 4 && ys[1] == 6, "reshape gave ndim %d", yd);
    }
    {
        float *x = buf_u(24, -1, 1);
        lg_gc_input in[1] = {IN1("x", x, 4, 2, 3, 2, 2)};
        opcase c = {.op = OP_FLATTEN, .nin = 1};
        fwd_check("flatten (2,3,2,2)", &c, in, x, 24);
        gcheck12("flatten (2,3,2,2)", &c, 1, in);
        float *y;
        int64_t ny, ys[4];
        int yd;
        if (!op_forward(&c, in, &y, &ny, &yd, ys))
            CHECK(yd == 2 && ys[0] == 2 && ys[1] == 12, "flatten gave ndim %d (%lld,%lld)", yd,
                  (long long)ys[0], (long long)ys[1]);
    }
    {   /* rows 1..2 of (4,3,2): elements 6..17 */
        float *x = buf_u(24, -1, 1);
        lg_gc_input in[1] = {IN1("x", x, 3, 4, 3, 2, 0)};
        opcase c = {.op = OP_ROWS, .stride = 1, .ndim = 2, .nin = 1};
        fwd_check("rows [1,3) of (4,3,2)", &c, in, x + 6, 12);
        gcheck12("rows [1,3) of (4,3,2)", &c, 1, in);
    }
    {   /* (2,3) placed at row 1 of (5,3) */
        float *x = buf_u(6, -1, 1), ref[15] = {0};
        memcpy(ref + 3, x, 6 * sizeof(float));
        lg_gc_input in[1] = {IN1("x", x, 2, 2, 3, 0, 0)};
        opcase c = {.op = OP_ROWS_PAD, .stride = 1, .ndim = 5, .nin = 1};
        fwd_check("rows_pad (2,3) at 1 of 5", &c, in, ref, 15);
        gcheck12("rows_pad (2,3) at 1 of 5", &c, 1, in);
    }
    {   /* [a (2,2,3); b (3,2,3)] */
        float *a = buf_u(12, -1, 1), *b = buf_u(18, -1, 1), ref[30];
        memcpy(ref, a, 12 * sizeof(float));
        memcpy(ref + 12, b, 18 * sizeof(float));
        lg_gc_input in[2] = {IN1("a", a, 3, 2, 2, 3, 0), IN1("b", b, 3, 3, 2, 3, 0)};
        opcase c = {.op = OP_CAT, .nin = 2};
        fwd_check("cat_rows (2,2,3),(3,2,3)", &c, in, ref, 30);
        gcheck12("cat_rows (2,2,3),(3,2,3)", &c, 2, in);
        gcheck("cat_rows (2,2,3),(3,2,3)", &c, 2, in, 2, 1);
    }
}

/* ---- graphs that reuse a tensor, and the checker's own ability to fail ---- */

/* x used several times: y = tanh(x) + x * sigmoid(x) + x * x */
static lg_tensor *diamond_fn(lg_ctx *ctx, lg_tensor **in, void *user) {
    (void)user;
    lg_tensor *x = in[0];
    lg_tensor *y = lg_add(ctx, lg_tanh(ctx, x), lg_mul(ctx, x, lg_sigmoid(ctx, x)));
    return lg_add(ctx, y, lg_mul(ctx, x, x));
}

/* a wrong gradient on purpose: x * detach(x) has derivative 2x, lg_grad sees x */
static lg_tensor *wrong_fn(lg_ctx *ctx, lg_tensor **in, void *user) {
    (void)user;
    return lg_mul(ctx, in[0], lg_detach(ctx, in[0], 0));
}

static void test_graph_reuse(void) {
    float *x = buf_u(6, -1, 1);
    lg_gc_input in[1] = {IN1("x", x, 2, 2, 3, 0, 0)};
    lg_gc_opts o1 = {.order = 1}, o2 = {.order = 2};
    lg_gradcheck("x used four times", diamond_fn, NULL, 1, in, &o1);
    lg_gradcheck("x used four times", diamond_fn, NULL, 1, in, &o2);

    /* the checker must catch a wrong gradient (then the count is restored) */
    long before = lg_test_failures;
    fprintf(stderr, "(an expected gradcheck failure follows)\n");
    int bad = lg_gradcheck("deliberately wrong gradient", wrong_fn, NULL, 1, in, &o1);
    CHECK(bad == 1 && lg_test_failures == before + 1,
          "gradcheck did not report a wrong gradient (returned %d)", bad);
    lg_test_failures = before + (bad == 1 ? 0 : 1);

    /* a wrt tensor that y does not depend on gets zeros of its shape */
    lg_ctx *ctx;
    CHECK_OK(lg_ctx_create(&ctx, lg_test_backend()));
    lg_tensor *a = lg_test_tensor(ctx, x, 2, (int64_t[]){2, 3}, 1);
    lg_tensor *z = lg_test_tensor(ctx, x, 1, (int64_t[]){4}, 1);
    lg_tensor *wrt[2] = {a, z}, *g[2] = {0};
    CHECK_OK(lg_grad(ctx, lg_sum(ctx, lg_square(ctx, a)), NULL, 2, wrt, g, 0));
    if (g[1]) {
        float h[4] = {1, 1, 1, 1};
        lg_to_host(ctx, g[1], h);
        CHECK(g[1]->ndim == 1 && g[1]->shape[0] == 4 && h[0] == 0 && h[1] == 0 && h[2] == 0 &&
                  h[3] == 0,
              "unused wrt: want zeros of shape (4)");
    }
    /* the gradient w.r.t. an intermediate tensor h = tanh(a) of sum(h^2) is 2h */
    {
        lg_tensor *h = lg_tanh(ctx, a), *gh = NULL;
        CHECK_OK(lg_grad(ctx, lg_sum(ctx, lg_square(ctx, h)), NULL, 1, &h, &gh, 0));
        if (gh) {
            float hh[6], gv[6], want[6];
            lg_to_host(ctx, h, hh);
            lg_to_host(ctx, gh, gv);
            for (int i = 0; i < 6; i++) want[i] = 2 * hh[i];
            lg_test_close(gv, want, 6, 1e-6, 1e-5, "gradient w.r.t. an intermediate");
        }
    }
    /* y given with a seed of the wrong shape is an error */
    lg_tensor *y = lg_square(ctx, a), *gg = NULL;
    lg_tensor *seed = lg_full(ctx, 1, (int64_t[]){6}, 1.0f);
    CHECK(lg_grad(ctx, y, seed, 1, &a, &gg, 0) != LG_OK, "a (6) seed for a (2,3) output");
    lg_ctx_free(ctx);
}

/* ---- shape errors: NULL + sticky LG_ERR_SHAPE, and NULL propagates ---- */

static void test_errors(void) {
    lg_ctx *ctx;
    CHECK_OK(lg_ctx_create(&ctx, lg_test_backend()));
    struct { const char *name; int which; } t[] = {
        {"matmul inner mismatch", 0}, {"add not broadcastable", 1}, {"conv2d channels", 2},
        {"linear in features", 3},    {"sum_to not reducible", 4},  {"reshape numel", 5},
        {"conv_transpose2d channels", 6}, {"batchnorm gamma size", 7},
        {"avgpool2x2 height 1", 8},       {"sum_axes mask beyond ndim", 9},
        {"conv2d_wgrad dy size", 10},     {"matmul 4-D operand", 11},
        {"sumpool2x2 width 1", 12},       {"avgpool2x2 3-D input", 13},
    };
    for (size_t i = 0; i < sizeof t / sizeof t[0]; i++) {
        lg_ctx_reset(ctx);
        lg_tensor *y = NULL;
        lg_tensor *a23 = lg_full(ctx, 2, (int64_t[]){2, 3}, 1.0f);
        lg_tensor *a24 = lg_full(ctx, 2, (int64_t[]){2, 4}, 1.0f);
        lg_tensor *x4 = lg_full(ctx, 4, (int64_t[]){1, 2, 4, 4}, 1.0f);
        lg_tensor *w3 = lg_full(ctx, 4, (int64_t[]){2, 3, 3, 3}, 1.0f);
        lg_tensor *wt = lg_full(ctx, 4, (int64_t[]){3, 2, 3, 3}, 1.0f);
        lg_tensor *g3 = lg_full(ctx, 1, (int64_t[]){3}, 1.0f);
        float rm[4] = {0}, rv[4] = {1, 1, 1, 1};
        lg_bn_state st = {rm, rv, 0.1f, 1e-5f};
        switch (t[i].which) {
        case 0: y = lg_matmul(ctx, a23, a24, 0, 0); break;
        case 1: y = lg_add(ctx, a23, a24); break;
        case 2: y = lg_conv2d(ctx, x4, w3, NULL, 1, 1); break;
        case 3: y = lg_linear(ctx, a23, a24, NULL); break;
        case 4: y = lg_sum_to(ctx, a23, 1, (int64_t[]){2}); break;
        case 5: y = lg_reshape(ctx, a23, 2, (int64_t[]){4, 2}); break;
        case 6: y = lg_conv_transpose2d(ctx, x4, wt, NULL, 2, 1, 0); break;
        case 7: y = lg_batchnorm(ctx, x4, g3, g3, &st, 1); break;
        /* PyTorch: "output size is too small" (the output would be empty) */
        case 8: y = lg_avgpool2x2(ctx, lg_full(ctx, 4, (int64_t[]){1, 1, 1, 3}, 1.0f)); break;
        case 9: y = lg_sum_axes(ctx, a23, 0x4); break;
        case 10: y = lg_conv2d_wgrad(ctx, x4, x4, 3, 3, 2, 1); break; /* dy should be 2x2 */
        case 11: y = lg_matmul(ctx, x4, a23, 0, 0); break;
        case 12: y = lg_sumpool2x2(ctx, lg_full(ctx, 4, (int64_t[]){2, 1, 3, 1}, 1.0f)); break;
        case 13: y = lg_avgpool2x2(ctx, lg_full(ctx, 3, (int64_t[]){2, 4, 4}, 1.0f)); break;
        }
        CHECK(y == NULL, "%s: expected NULL", t[i].name);
        CHECK(lg_ctx_status(ctx) == LG_ERR_SHAPE, "%s: status %s (%s), want shape error",
              t[i].name, lg_status_str(lg_ctx_status(ctx)), lg_error_msg());
        /* pooling says why itself (not a later empty-tensor failure) */
        if (t[i].which == 8 || t[i].which == 12 || t[i].which == 13)
            CHECK(strstr(lg_error_msg(), "2x2 pooling") != NULL, "%s: message '%s'", t[i].name,
                  lg_error_msg());
        CHECK(lg_relu(ctx, y) == NULL, "%s: an op given NULL returns NULL", t[i].name);
        CHECK(lg_ctx_status(ctx) == LG_ERR_SHAPE, "%s: the first failure stays", t[i].name);
    }
    lg_ctx_free(ctx);
}

/* ---- gradient penalty on a tiny two-conv critic ----
 * D(x) = linear(flatten(avgpool2x2(conv2d(leaky_relu(conv2d(x, w1, b1, s2, p1), 0.2),
 *                                        w2, b2, s1, p1))), wl, bl)
 * x (2,3,8,8) -> (2,4,4,4) -> (2,4,4,4) -> (2,4,2,2) -> (2,16) -> (2,1).
 * GP = 10 * mean_n (||grad_x sum(D)(x_n)||_2 - 1)^2. Same critic as
 * tools/gen_reference.py. */

enum { CN = 2, CC = 3, CH = 8, CO1 = 4, CO2 = 4 };

typedef struct critic_data {
    float *xhat; /* (CN,CC,CH,CH) */
} critic_data;

static lg_tensor *critic_D(lg_ctx *ctx, lg_tensor *x, lg_tensor *const *p) {
    lg_tensor *h = lg_conv2d(ctx, x, p[0], p[1], 2, 1);
    h = lg_leaky_relu(ctx, h, 0.2f);
    h = lg_conv2d(ctx, h, p[2], p[3], 1, 1);
    h = lg_avgpool2x2(ctx, h);
    h = lg_flatten(ctx, h);
    return lg_linear(ctx, h, p[4], p[5]);
}

static lg_tensor *gradient_penalty(lg_ctx *ctx, lg_tensor *xhat, lg_tensor *const *p,
                                   float lambda) {
    lg_tensor *d = critic_D(ctx, xhat, p);
    lg_tensor *s = lg_sum(ctx, d), *g = NULL;
    if (!s || lg_grad(ctx, s, NULL, 1, &xhat, &g, 1) != LG_OK) return NULL;
    lg_tensor *n2 = lg_sum_axes(ctx, lg_square(ctx, g), 0xe);  /* (N,1,1,1) */
    lg_tensor *dev = lg_add_scalar(ctx, lg_sqrt(ctx, n2), -1.0f);
    return lg_scale(ctx, lg_mean(ctx, lg_square(ctx, dev)), lambda);
}

static lg_tensor *gp_fn(lg_ctx *ctx, lg_tensor **in, void *user) {
    critic_data *cd = user;
    lg_tensor *xhat = lg_test_tensor(ctx, cd->xhat, 4, (int64_t[]){CN, CC, CH, CH}, 1);
    return gradient_penalty(ctx, xhat, in, 10.0f);
}

/* D itself with x as input 0, for the generic second-order check. */
static lg_tensor *critic_fn(lg_ctx *ctx, lg_tensor **in, void *user) {
    (void)user;
    return critic_D(ctx, in[0], in + 1);
}

/* Random critic parameters whose first-layer pre-activations are all at
 * least `margin` from the leaky-ReLU kink, so differences with steps
 * smaller than margin never cross it. */
static void critic_params(float *x, float **p, const int64_t *pn, float margin) {
    for (uint64_t seed = 1; seed < 1000; seed++) {
        lg_test_rng r = lg_test_rng_make(seed * 7919);
        lg_test_fill_uniform(&r, x, CN * CC * CH * CH, -1, 1);
        for (int i = 0; i < 6; i++) lg_test_fill_uniform(&r, p[i], (size_t)pn[i], -0.5f, 0.5f);
        lg_ctx *ctx;
        lg_ctx_create(&ctx, lg_test_backend());
        lg_tensor *xt = lg_from_host(ctx, x, 4, (int64_t[]){CN, CC, CH, CH});
        lg_tensor *w = lg_from_host(ctx, p[0], 4, (int64_t[]){CO1, CC, 3, 3});
        lg_tensor *b = lg_from_host(ctx, p[1], 1, (int64_t[]){CO1});
        lg_tensor *z = lg_conv2d(ctx, xt, w, b, 2, 1);
        float zmin = 0;
        if (z) {
            float *zh = malloc((size_t)z->numel * sizeof(float));
            lg_to_host(ctx, z, zh);
            zmin = INFINITY;
            for (int64_t i = 0; i < z->numel; i++) zmin = fminf(zmin, fabsf(zh[i]));
            free(zh);
        }
        lg_ctx_free(ctx);
        if (zmin >= margin) return;
    }
    CHECK(0, "no critic seed keeps the pre-activations %g from 0", margin);
}

static void test_gradient_penalty(void) {
    const int64_t pn[6] = {CO1 * CC * 9, CO1, CO2 * CO1 * 9, CO2, CO2 * 4, 1};
    float *x = buf_new(CN * CC * CH * CH), *p[6];
    for (int i = 0; i < 6; i++) p[i] = buf_new((size_t)pn[i]);
    /* a step of 2e-3 in one parameter or input moves a first-layer
     * pre-activation by at most 2e-3 (|x| < 1, |w| < 0.5) */
    critic_params(x, p, pn, 0.01f);
    lg_gc_input in[7] = {
        IN1("x", x, 4, CN, CC, CH, CH),       IN1("w1", p[0], 4, CO1, CC, 3, 3),
        IN1("b1", p[1], 1, CO1, 0, 0, 0),     IN1("w2", p[2], 4, CO2, CO1, 3, 3),
        IN1("b2", p[3], 1, CO2, 0, 0, 0),     IN1("wl", p[4], 2, 1, CO2 * 4, 0, 0),
        IN1("bl", p[5], 1, 1, 0, 0, 0),
    };
    /* the penalty as a function of the parameters (x fixed) */
    critic_data cd = {x};
    lg_gc_opts o1 = {.order = 1, .eps = 2e-3, .atol = 2e-3, .rtol = 1e-2};
    lg_gradcheck("WGAN-GP penalty d/dparams", gp_fn, &cd, 6, in + 1, &o1);
    /* the generic second-order structure on D with x0 = x */
    lg_gc_opts o2 = {.order = 2, .x0 = 0, .eps = 2e-3, .atol = 2e-3, .rtol = 1e-2};
    lg_gradcheck("critic D second order", critic_fn, NULL, 7, in, &o2);
    lg_gc_opts o3 = {.order = 1, .eps = 2e-3, .atol = 1e-3, .rtol = 1e-2};
    lg_gradcheck("critic D first order", critic_fn, NULL, 7, in, &o3);
}

/* ---- the fused ReLU ops give what relu(x + b) gave before them ----
 * Same critic with ReLUs; way 0 writes relu as x * mask (a constant mask),
 * which is exactly the old rule (forward relu, backward g * step(x), zero
 * second derivative); way 1 uses lg_add_relu for the first layer's bias and
 * lg_relu (now a relu_mask pass back) for the second. The penalty and its
 * gradient in every parameter must be equal, not just close. */
static lg_tensor *relu_as_mask(lg_ctx *ctx, lg_tensor *x) {
    float *h = malloc((size_t)x->numel * sizeof(float));
    lg_to_host(ctx, x, h);
    for (int64_t i = 0; i < x->numel; i++) h[i] = h[i] > 0 ? 1.0f : 0.0f;
    lg_tensor *m = lg_from_host(ctx, h, x->ndim, x->shape); /* not recorded: a constant */
    free(h);
    return lg_mul(ctx, x, m);
}

static lg_tensor *relu_critic(lg_ctx *ctx, lg_tensor *x, lg_tensor *const *p, int fused) {
    lg_tensor *h;
    if (fused)
        h = lg_add_relu(ctx, lg_conv2d(ctx, x, p[0], NULL, 2, 1),
                        lg_reshape(ctx, p[1], 4, (int64_t[]){1, CO1, 1, 1}));
    else
        h = relu_as_mask(ctx, lg_conv2d(ctx, x, p[0], p[1], 2, 1));
    h = lg_conv2d(ctx, h, p[2], p[3], 1, 1);
    h = fused ? lg_relu(ctx, h) : relu_as_mask(ctx, h);
    h = lg_flatten(ctx, lg_avgpool2x2(ctx, h));
    return lg_linear(ctx, h, p[4], p[5]);
}

static void test_fused_relu_same_as_before(void) {
    const int64_t pn[6] = {CO1 * CC * 9, CO1, CO2 * CO1 * 9, CO2, CO2 * 4, 1};
    const int64_t ps[6][4] = {{CO1, CC, 3, 3}, {CO1}, {CO2, CO1, 3, 3}, {CO2}, {1, CO2 * 4}, {1}};
    const int pd[6] = {4, 1, 4, 1, 2, 1};
    float *x = buf_new(CN * CC * CH * CH), *p[6];
    for (int i = 0; i < 6; i++) p[i] = buf_new((size_t)pn[i]);
    critic_params(x, p, pn, 0.0f);
    float pen[2], *gp[2][6];
    int active = 0;
    for (int way = 0; way < 2; way++) {
        lg_ctx *ctx;
        CHECK_OK(lg_ctx_create(&ctx, lg_test_backend()));
        lg_tensor *pt[6], *g = NULL, *grads[6] = {0};
        for (int i = 0; i < 6; i++) pt[i] = lg_test_tensor(ctx, p[i], pd[i], ps[i], 1);
        lg_tensor *xh = lg_test_tensor(ctx, x, 4, (int64_t[]){CN, CC, CH, CH}, 1);
        lg_tensor *s = lg_sum(ctx, relu_critic(ctx, xh, pt, way));
        CHECK_OK(lg_grad(ctx, s, NULL, 1, &xh, &g, 1));
        lg_tensor *n2 = lg_sum_axes(ctx, lg_square(ctx, g), 0xe);
        lg_tensor *pen_t = lg_mean(ctx, lg_square(ctx, lg_add_scalar(ctx, lg_sqrt(ctx, n2), -1.0f)));
        CHECK_OK(lg_grad(ctx, pen_t, NULL, 6, pt, grads, 0));
        pen[way] = pen_t ? lg_item(ctx, pen_t) : NAN;
        for (int i = 0; i < 6; i++) {
            gp[way][i] = buf_new((size_t)pn[i]);
            if (grads[i]) lg_to_host(ctx, grads[i], gp[way][i]);
        }
        lg_ctx_free(ctx);
    }
    CHECK(pen[0] == pen[1] && isfinite(pen[0]), "penalty %.9g (mask) vs %.9g (fused)",
          (double)pen[0], (double)pen[1]);
    for (int i = 0; i < 6; i++)
        for (int64_t j = 0; j < pn[i]; j++) {
            active += gp[0][i][j] != 0;
            CHECK(gp[0][i][j] == gp[1][i][j], "d penalty / d p%d[%lld]: %.9g vs %.9g", i,
                  (long long)j, (double)gp[0][i][j], (double)gp[1][i][j]);
        }
    CHECK(active > 20, "only %d nonzero penalty gradients: the test would not see a change",
          active);
}

/* ---- a fixed forward+backward+penalty step allocates nothing after the
 * first step ---- */

static void test_no_alloc_after_first_step(void) {
    const int64_t pn[6] = {CO1 * CC * 9, CO1, CO2 * CO1 * 9, CO2, CO2 * 4, 1};
    const int64_t ps[6][4] = {{CO1, CC, 3, 3}, {CO1}, {CO2, CO1, 3, 3}, {CO2}, {1, CO2 * 4}, {1}};
    const int pd[6] = {4, 1, 4, 1, 2, 1};
    lg_ctx *ctx;
    CHECK_OK(lg_ctx_create(&ctx, lg_test_backend()));
    lg_tensor params[6], *pp[6];
    float *pbuf[6];
    for (int i = 0; i < 6; i++) {
        pbuf[i] = lg_buffer_alloc(lg_test_backend(), (size_t)pn[i]);
        lg_test_backend()->upload(pbuf[i], buf_u((size_t)pn[i], -0.5f, 0.5f), (size_t)pn[i]);
        lg_tensor_init(&params[i], pbuf[i], pd[i], ps[i]);
        params[i].requires_grad = 1;
        pp[i] = &params[i];
    }
    float *xr = buf_u(CN * CC * CH * CH, -1, 1), *xf = buf_u(CN * CC * CH * CH, -1, 1);
    float alpha[CN] = {0.3f, 0.8f};
    size_t allocs[4] = {0};
    float loss[3] = {0};
    for (int step = 0; step < 3; step++) {
        const int64_t xs[4] = {CN, CC, CH, CH};
        lg_tensor *real = lg_from_host(ctx, xr, 4, xs), *fake = lg_from_host(ctx, xf, 4, xs);
        lg_tensor *al = lg_from_host(ctx, alpha, 4, (int64_t[]){CN, 1, 1, 1});
        lg_tensor *xhat = lg_add(ctx, lg_mul(ctx, al, real),
                                 lg_mul(ctx, lg_add_scalar(ctx, lg_neg(ctx, al), 1.0f), fake));
        xhat = lg_detach(ctx, xhat, 1);
        lg_tensor *l = lg_sub(ctx, lg_mean(ctx, critic_D(ctx, fake, pp)),
                              lg_mean(ctx, critic_D(ctx, real, pp)));
        l = lg_add(ctx, l, gradient_penalty(ctx, xhat, pp, 10.0f));
        lg_tensor *grads[6];
        CHECK_OK(lg_grad(ctx, l, NULL, 6, pp, grads, 0));
        CHECK(lg_ctx_status(ctx) == LG_OK, "step %d: %s", step, lg_error_msg());
        if (l) loss[step] = lg_item(ctx, l);
        lg_ctx_reset(ctx);
        allocs[step + 1] = lg_ctx_sys_allocs(ctx);
    }
    CHECK(allocs[1] > 0, "the first step should have allocated");
    CHECK(allocs[2] == allocs[1] && allocs[3] == allocs[1],
          "system allocations after steps 1,2,3: %zu, %zu, %zu (want no growth after step 1)",
          allocs[1], allocs[2], allocs[3]);
    CHECK(loss[0] == loss[1] && loss[1] == loss[2], "same step, same loss: %g %g %g",
          (double)loss[0], (double)loss[1], (double)loss[2]);
    for (int i = 0; i < 6; i++) lg_buffer_free(lg_test_backend(), pbuf[i]);
    lg_ctx_free(ctx);
}

/* The arena folds to what a step used (plus 1/8), not to the capacity of
 * its doubling chunks: 40 tensors of 4 MB grow chunks of 1, 2, .., 256 MiB
 * (over 500 MB) for 160 MB used. The same step then fits without a system
 * allocation, and a step 1/16 larger still fits the headroom. */
static void test_arena_fold_keeps_use(void) {
    lg_ctx *ctx;
    CHECK_OK(lg_ctx_create(&ctx, lg_test_backend()));
    const int64_t n = 1000000; /* (n) floats per tensor, 4 MB */
    const size_t need = 40 * (size_t)n * sizeof(float);
    size_t allocs[3] = {0}, bytes[3] = {0};
    for (int step = 0; step < 3; step++) {
        int count = step == 2 ? 42 : 40;
        for (int i = 0; i < count; i++) CHECK(lg_new(ctx, 1, (int64_t[]){n}) != NULL, "alloc %d", i);
        lg_ctx_reset(ctx);
        allocs[step] = lg_ctx_sys_allocs(ctx);
        bytes[step] = lg_ctx_arena_bytes(ctx);
    }
    /* data: 160 MB * 9/8; meta: the 40 headers in one small block */
    CHECK(bytes[0] >= need && bytes[0] <= need + need / 8 + ((size_t)1 << 20),
          "arena after the fold: %zu bytes for %zu used (want at most 9/8 of the use)", bytes[0],
          need);
    CHECK(allocs[1] == allocs[0] && allocs[2] == allocs[0] && bytes[2] == bytes[0],
          "allocations %zu %zu %zu, bytes %zu %zu %zu: the same or a slightly larger step "
          "should fit the folded block",
          allocs[0], allocs[1], allocs[2], bytes[0], bytes[1], bytes[2]);
    /* a step of 50 grows past the block by small chunks (1/8 of it, then
     * doubling), not by one of twice the block; the fold then keeps 9/8 of 50 */
    for (int i = 0; i < 50; i++) CHECK(lg_new(ctx, 1, (int64_t[]){n}) != NULL, "alloc %d", i);
    size_t during = lg_ctx_arena_bytes(ctx);
    lg_ctx_reset(ctx);
    size_t after = lg_ctx_arena_bytes(ctx), need50 = 50 * (size_t)n * sizeof(float);
    CHECK(during < bytes[0] + bytes[0] / 2, "growing past a %zu-byte block held %zu bytes "
          "(want under 1.5x the block)", bytes[0], during);
    CHECK(after >= need50 && after <= need50 + need50 / 8 + ((size_t)1 << 20),
          "after the larger step: %zu bytes for %zu used", after, need50);
    lg_ctx_free(ctx);
}

/* When a request does not fit the last chunk, a new chunk is added, and the
 * old chunk's unused tail stays usable: a later small request goes there
 * (best fit), not after the large one. */
static void test_arena_tail_reused(void) {
    lg_ctx *ctx;
    CHECK_OK(lg_ctx_create(&ctx, lg_test_backend()));
    const int64_t a = 600 * 1024 / 4, b = 1024 * 1024 / 4, c = 300 * 1024 / 4; /* floats */
    lg_tensor *ta = lg_new(ctx, 1, &a), *tb = lg_new(ctx, 1, &b), *tc = lg_new(ctx, 1, &c);
    CHECK(ta && tb && tc, "%s", lg_error_msg());
    /* the first chunk is 1 MiB: a fills 600 KiB of it, b needs a new chunk */
    if (ta && tb && tc)
        CHECK(tc->data == ta->data + a, "the 300 KiB tensor went to offset %lld from the first "
              "(want %lld: the first chunk's tail)", (long long)(tc->data - ta->data), (long long)a);
    lg_ctx_free(ctx);
}

/* Arena bytes of one step of `chain` tanh ops on a (n) input, after the
 * fold, with or without the backward. */
static size_t chain_step_bytes(int chain, int64_t n, int backward) {
    lg_ctx *ctx;
    CHECK_OK(lg_ctx_create(&ctx, lg_test_backend()));
    size_t bytes = 0;
    for (int step = 0; step < 2; step++) {
        lg_tensor *x = lg_full(ctx, 1, (int64_t[]){n}, 0.5f);
        if (x) x->requires_grad = 1;
        lg_tensor *y = x;
        for (int i = 0; i < chain; i++) y = lg_tanh(ctx, y);
        lg_tensor *g = NULL;
        if (backward) CHECK_OK(lg_grad(ctx, lg_sum(ctx, y), NULL, 1, &x, &g, 0));
        CHECK(lg_ctx_status(ctx) == LG_OK, "%s", lg_error_msg());
        lg_ctx_reset(ctx);
        bytes = lg_ctx_arena_bytes(ctx);
    }
    lg_ctx_free(ctx);
    return bytes;
}

/* lg_grad without create_graph gives each gradient back to the arena once
 * it is passed on: a chain of 24 tanh ops keeps 25 tensors for the forward,
 * and its backward (2 new tensors per op: tanh' and the product) then adds
 * a handful, not 48. */
static void test_backward_releases_gradients(void) {
    const int64_t n = 1 << 18; /* 1 MB per tensor */
    size_t fwd = chain_step_bytes(24, n, 0), both = chain_step_bytes(24, n, 1);
    CHECK(fwd > 0 && both < fwd + fwd / 4, "arena: forward %zu bytes, forward + backward %zu "
          "(want the backward to add under 1/4: dead gradients reused)", fwd, both);
}

/* The gradients through relu(batchnorm(x)) with the ReLU written over the
 * norm's output (lg__relu_into, as the models run it) equal those of
 * lg_relu bit for bit: first order in training mode, and second order (a
 * gradient-penalty-like sum of squared input gradients) in eval mode. */
static void test_relu_into_same_gradients(void) {
    const int C = 3;
    const int64_t xs[4] = {4, C, 3, 3};
    float *x = buf_u(4 * C * 9, -1, 1), *c = buf_u(4 * C * 9, -1, 1);
    float *gm = buf_u(C, 0.5f, 1.5f), *bt = buf_u(C, -0.5f, 0.5f);
    float got[2][3][4 * 3 * 9];
    for (int train = 1; train >= 0; train--) {
        for (int into = 0; into < 2; into++) {
            float *rm, *rv;
            lg_bn_state st;
            bn_state_init(&st, C, &rm, &rv);
            lg_ctx *ctx;
            CHECK_OK(lg_ctx_create(&ctx, lg_test_backend()));
            lg_tensor *tx = lg_from_host(ctx, x, 4, xs), *tc = lg_from_host(ctx, c, 4, xs);
            lg_tensor *tg = lg_from_host(ctx, gm, 1, (int64_t[]){C});
            lg_tensor *tb = lg_from_host(ctx, bt, 1, (int64_t[]){C});
            if (!tx || !tg || !tb) break;
            tx->requires_grad = tg->requires_grad = tb->requires_grad = 1;
            lg_tensor *h = lg_batchnorm(ctx, tx, tg, tb, &st, train);
            lg_tensor *y = into ? lg__relu_into(ctx, h) : lg_relu(ctx, h);
            if (into) CHECK(y && h && y->data == h->data, "relu_into made a new tensor");
            lg_tensor *loss = lg_sum(ctx, lg_mul(ctx, y, tc));
            lg_tensor *wrt[3] = {tx, tg, tb}, *g[3] = {0};
            if (train) {
                CHECK_OK(lg_grad(ctx, loss, NULL, 3, wrt, g, 0));
            } else {
                lg_tensor *gx = NULL;
                CHECK_OK(lg_grad(ctx, loss, NULL, 1, &tx, &gx, 1));
                CHECK_OK(lg_grad(ctx, lg_sum(ctx, lg_mul(ctx, gx, gx)), NULL, 3, wrt, g, 0));
            }
            for (int i = 0; i < 3; i++)
                if (g[i]) CHECK_OK(lg_to_host(ctx, g[i], got[into][i]));
            lg_ctx_free(ctx);
            lg_buffer_free(lg_test_backend(), rm);
            lg_buffer_free(lg_test_backend(), rv);
        }
        CHECK(!memcmp(got[0][0], got[1][0], sizeof(float) * 4 * C * 9) &&
                  !memcmp(got[0][1], got[1][1], sizeof(float) * C) &&
                  !memcmp(got[0][2], got[1][2], sizeof(float) * C),
              "%s: gradients through relu_into differ from lg_relu's", train ? "train" : "eval, second order");
    }
}

/* A convolution's workspace goes back to the arena once its kernel is
 * issued: a step of 8 convolutions holds their outputs and about one
 * workspace, not 8. */
static void test_conv_workspace_released(void) {
    const lg_backend *be = lg_test_backend();
    lg_conv_geom g = {4, 16, 16, 16, 16, 3, 3, 1, 1, 16, 16};
    size_t ws = be->conv_workspace(&g) * sizeof(float);
    const size_t act = (size_t)4 * 16 * 16 * 16 * sizeof(float); /* one (4,16,16,16) tensor */
    if (ws < 2 * act) {
        printf("  (this backend's workspace, %zu bytes, is too small to see)\n", ws);
        return;
    }
    lg_ctx *ctx;
    CHECK_OK(lg_ctx_create(&ctx, be));
    size_t bytes = 0;
    for (int step = 0; step < 2; step++) {
        lg_tensor *x = lg_full(ctx, 4, (int64_t[]){4, 16, 16, 16}, 0.1f);
        lg_tensor *w = lg_full(ctx, 4, (int64_t[]){16, 16, 3, 3}, 0.01f);
        for (int i = 0; i < 8; i++) x = lg_conv2d(ctx, x, w, NULL, 1, 1);
        CHECK(lg_ctx_status(ctx) == LG_OK, "%s", lg_error_msg());
        lg_ctx_reset(ctx);
        bytes = lg_ctx_arena_bytes(ctx);
    }
    size_t want = (10 * act + 2 * ws) * 9 / 8 + ((size_t)1 << 20);
    CHECK(bytes <= want, "arena %zu bytes for 9 tensors of %zu and workspaces of %zu (want at most "
          "%zu: each workspace reused)", bytes, act, ws, want);
    lg_ctx_free(ctx);
}

/* A layer's bias is added over the output its op has just made (one tensor
 * per layer instead of two): conv2d, conv_transpose2d and linear. */
static void test_bias_over_own_output(void) {
    lg_ctx *ctx;
    CHECK_OK(lg_ctx_create(&ctx, lg_test_backend()));
    lg_tensor *x = lg_full(ctx, 4, (int64_t[]){2, 3, 5, 5}, 0.25f);
    lg_tensor *w = lg_full(ctx, 4, (int64_t[]){4, 3, 3, 3}, 0.5f);
    lg_tensor *wt = lg_full(ctx, 4, (int64_t[]){3, 4, 3, 3}, 0.5f);
    lg_tensor *b = lg_full(ctx, 1, (int64_t[]){4}, 1.0f);
    lg_tensor *x2 = lg_full(ctx, 2, (int64_t[]){2, 3}, 0.25f), *w2 = lg_full(ctx, 2, (int64_t[]){4, 3}, 0.5f);
    if (w) w->requires_grad = 1;
    if (wt) wt->requires_grad = 1;
    if (w2) w2->requires_grad = 1;
    lg_tensor *y[3] = {lg_conv2d(ctx, x, w, b, 1, 1), lg_conv_transpose2d(ctx, x, wt, b, 1, 1, 0),
                       lg_linear(ctx, x2, w2, b)};
    CHECK(lg_ctx_status(ctx) == LG_OK, "%s", lg_error_msg());
    for (int i = 0; i < 3; i++) {
        if (!y[i]) continue;
        CHECK(y[i]->node && y[i]->node->src[0] && y[i]->node->src[0]->data == y[i]->data,
              "layer %d: the bias add made a new tensor instead of writing over the op's output", i);
        /* every weight is 0.5, every input 0.25, the bias 1: y = 1 + 0.125 * taps */
        float v[4 * 5 * 5 * 2];
        CHECK_OK(lg_to_host(ctx, y[i], v));
        float centre = i == 2 ? 1.0f + 0.125f * 3 : 1.0f + 0.125f * 3 * 9;
        int64_t at = i == 2 ? 0 : 2 * 5 + 2; /* sample 0, channel 0, centre pixel */
        CHECK(fabsf(v[at] - centre) < 1e-5f, "layer %d: y = %g, want %g", i, (double)v[at],
              (double)centre);
    }
    lg_ctx_free(ctx);
}

int main(void) {
    g_rng = lg_test_rng_make(20240601);
    LG_TEST_RUN(test_matmul);
    LG_TEST_RUN(test_linear);
    LG_TEST_RUN(test_conv2d);
    LG_TEST_RUN(test_conv_transpose2d);
    LG_TEST_RUN(test_conv2d_wgrad);
    LG_TEST_RUN(test_resample);
    LG_TEST_RUN(test_batchnorm);
    LG_TEST_RUN(test_unary);
    LG_TEST_RUN(test_binary);
    LG_TEST_RUN(test_reductions);
    LG_TEST_RUN(test_shapes);
    LG_TEST_RUN(test_graph_reuse);
    LG_TEST_RUN(test_errors);
    LG_TEST_RUN(test_gradient_penalty);
    LG_TEST_RUN(test_fused_relu_same_as_before);
    LG_TEST_RUN(test_no_alloc_after_first_step);
    LG_TEST_RUN(test_arena_fold_keeps_use);
    LG_TEST_RUN(test_arena_tail_reused);
    LG_TEST_RUN(test_backward_releases_gradients);
    LG_TEST_RUN(test_bias_over_own_output);
    LG_TEST_RUN(test_conv_workspace_released);
    LG_TEST_RUN(test_relu_into_same_gradients);
    bufs_free();
    return lg_test_summary("test_ops_grad");
}
