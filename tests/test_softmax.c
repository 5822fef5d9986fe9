/* log_softmax, softmax and cross-entropy (src/ops/softmax.c):
 *  - values, first and second derivatives against PyTorch
 *    (tests/data/ref/softmax.safetensors from tools/gen_reference_softmax.py,
 *    atol 1e-5, rtol 1e-4; logits up to +-60 check the max shift);
 *  - first and second derivatives against central differences;
 *  - known answers (uniform logits give log K, rows of softmax sum to 1);
 *  - errors: wrong rank, labels out of range, NULL labels. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "lg_test.h"
#include "lipgan/ops.h"
#include "lipgan/safetensors.h"

#define ATOL 1e-5
#define RTOL 1e-4

static lg_test_rng g_rng;

/* ---- against PyTorch ---- */

/* Host copy of reference tensor `name` with n floats expected (malloc'd). */
static float *ref_get(lg_st_file *f, const char *name, int64_t n) {
    const lg_st_tensor *t = lg_st_find(f, name);
    CHECK(t != NULL && t->numel == n, "softmax.safetensors: tensor '%s' missing or not %lld elements", name,
          (long long)n);
    if (!t || t->numel != n) return NULL;
    float *p = malloc((size_t)n * sizeof(float));
    LG_ASSERT(p);
    CHECK_OK(lg_st_get_f32(f, name, -1, NULL, p));
    return p;
}

static void cmp(lg_ctx *ctx, lg_tensor *t, const float *ref, int64_t n, const char *what) {
    CHECK(t != NULL && t->numel == n, "%s: not computed (%s)", what, lg_error_msg());
    if (!t || !ref || t->numel != n) return;
    float h[64];
    LG_ASSERT(n <= 64);
    lg_to_host(ctx, t, h);
    lg_test_close(h, ref, (size_t)n, ATOL, RTOL, what);
}

static void test_reference(void) {
    const char *dir = getenv("LG_TEST_DATA");
    char path[512];
    snprintf(path, sizeof path, "%s/ref/softmax.safetensors", dir ? dir : "tests/data");
    lg_st_file *f = NULL;
    lg_status st = lg_st_open(&f, path);
    CHECK(st == LG_OK, "cannot open %s: %s (regenerate with python3 tools/gen_reference_softmax.py)", path,
          lg_error_msg());
    if (st != LG_OK) return;
    const int64_t N = 6, K = 5, NK = 30, shape[2] = {6, 5};
    float *x = ref_get(f, "x", NK), *dy = ref_get(f, "dy", NK), *q = ref_get(f, "q", NK);
    float *ls = ref_get(f, "ls", NK), *dls = ref_get(f, "dls", NK), *d2ls = ref_get(f, "d2ls", NK);
    float *sm = ref_get(f, "sm", NK), *dsm = ref_get(f, "dsm", NK);
    float *ce = ref_get(f, "ce", 1), *dce = ref_get(f, "dce", NK), *d2ce = ref_get(f, "d2ce", NK);
    int64_t lab64[6] = {0};
    CHECK_OK(lg_st_get_i64(f, "labels", 1, (int64_t[]){6}, lab64));
    int32_t labels[6];
    for (int i = 0; i < N; i++) labels[i] = (int32_t)lab64[i];
    if (x && dy && q && ls && dls && d2ls && sm && dsm && ce && dce && d2ce) {
        lg_ctx *ctx;
        CHECK_OK(lg_ctx_create(&ctx, lg_test_backend()));
        lg_tensor *xt = lg_test_tensor(ctx, x, 2, shape, 1);
        lg_tensor *dyt = lg_from_host(ctx, dy, 2, shape);
        lg_tensor *qt = lg_from_host(ctx, q, 2, shape);

        /* log_softmax: y, first and second derivative */
        lg_tensor *y = lg_log_softmax(ctx, xt), *g = NULL, *g2 = NULL;
        cmp(ctx, y, ls, NK, "log_softmax y");
        CHECK_OK(lg_grad(ctx, y, dyt, 1, &xt, &g, 1));
        cmp(ctx, g, dls, NK, "log_softmax dx");
        CHECK_OK(lg_grad(ctx, lg_sum(ctx, lg_mul(ctx, qt, g)), NULL, 1, &xt, &g2, 0));
        cmp(ctx, g2, d2ls, NK, "log_softmax d2x");

        y = lg_softmax(ctx, xt);
        cmp(ctx, y, sm, NK, "softmax y");
        CHECK_OK(lg_grad(ctx, y, dyt, 1, &xt, &g, 0));
        cmp(ctx, g, dsm, NK, "softmax dx");

        y = lg_cross_entropy(ctx, xt, labels);
        cmp(ctx, y, ce, 1, "cross_entropy loss");
        CHECK_OK(lg_grad(ctx, y, NULL, 1, &xt, &g, 1));
        cmp(ctx, g, dce, NK, "cross_entropy dx");
        CHECK_OK(lg_grad(ctx, lg_sum(ctx, lg_mul(ctx, qt, g)), NULL, 1, &xt, &g2, 0));
        cmp(ctx, g2, d2ce, NK, "cross_entropy d2x");
        CHECK(lg_ctx_status(ctx) == LG_OK, "context status: %s", lg_error_msg());
        (void)K;
        lg_ctx_free(ctx);
    }
    float *all[] = {x, dy, q, ls, dls, d2ls, sm, dsm, ce, dce, d2ce};
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++) free(all[i]);
    lg_st_close(f);
}

/* ---- against finite differences ---- */

enum { F_LOGSOFTMAX, F_SOFTMAX, F_CE };
typedef struct gcase {
    int which;
    const int32_t *labels;
} gcase;

/* The op on in[0], then times in[1] (a second, differentiable input) so
 * the second-order check also sees a mixed derivative. */
static lg_tensor *gc_fn(lg_ctx *ctx, lg_tensor **in, void *user) {
    gcase *c = user;
    lg_tensor *x = lg_mul(ctx, in[0], in[1]);
    switch (c->which) {
    case F_LOGSOFTMAX: return lg_log_softmax(ctx, x);
    case F_SOFTMAX: return lg_softmax(ctx, x);
    default: return lg_cross_entropy(ctx, x, c->labels);
    }
}

static void test_gradcheck(void) {
    const int32_t labels[4] = {2, 0, 6, 2};
    const char *names[] = {"log_softmax", "softmax", "cross_entropy"};
    for (int which = 0; which < 3; which++) {
        float x[28], s[28];
        lg_test_fill_uniform(&g_rng, x, 28, -2.0f, 2.0f);
        lg_test_fill_uniform(&g_rng, s, 28, 0.5f, 1.5f);
        gcase c = {which, labels};
        lg_gc_input in[2] = {lg_gc_in("x", x, 2, 4, 7, 0, 0), lg_gc_in("s", s, 2, 4, 7, 0, 0)};
        for (int order = 1; order <= 2; order++) {
            lg_gc_opts o = {.order = order, .x0 = 0};
            char what[64];
            snprintf(what, sizeof what, "%s order %d", names[which], order);
            lg_gradcheck(what, gc_fn, &c, 2, in, &o);
        }
    }
}

/* ---- known answers ---- */

static void test_known(void) {
    lg_ctx *ctx;
    CHECK_OK(lg_ctx_create(&ctx, lg_test_backend()));
    /* uniform logits: loss = log K for any labels; softmax = 1/K */
    float z[3 * 10];
    for (int i = 0; i < 30; i++) z[i] = 7.25f;
    const int32_t lab[3] = {9, 0, 4};
    lg_tensor *zt = lg_test_tensor(ctx, z, 2, (int64_t[]){3, 10}, 0);
    float loss = lg_item(ctx, lg_cross_entropy(ctx, zt, lab));
    CHECK(fabsf(loss - logf(10.0f)) < 1e-6f, "uniform logits: loss %.8f, want log 10 = %.8f", loss, logf(10.0f));
    float p[30];
    lg_to_host(ctx, lg_softmax(ctx, zt), p);
    for (int i = 0; i < 30; i++) CHECK(fabsf(p[i] - 0.1f) < 1e-7f, "softmax of equal logits: %g", p[i]);

    /* huge logits: finite, rows of softmax sum to 1, a confident right label costs ~0 */
    float big[2 * 4] = {1e4f, -1e4f, 0.0f, 9990.0f, -3e4f, -3e4f + 1.0f, -3e4f, -3e4f};
    lg_tensor *bt = lg_test_tensor(ctx, big, 2, (int64_t[]){2, 4}, 0);
    lg_to_host(ctx, lg_softmax(ctx, bt), p);
    for (int i = 0; i < 2; i++) {
        double s = 0;
        for (int j = 0; j < 4; j++) {
            CHECK(isfinite(p[i * 4 + j]), "softmax of huge logits not finite: %g", p[i * 4 + j]);
            s += p[i * 4 + j];
        }
        CHECK(fabs(s - 1.0) < 1e-6, "softmax row %d sums to %.9f", i, s);
    }
    double e10 = exp(-10.0); /* row 0: p0 = 1 / (1 + e^-10), p3 = e^-10 p0, the rest 0 */
    CHECK(fabs(p[0] - 1.0 / (1.0 + e10)) < 1e-7 && fabs(p[3] - e10 / (1.0 + e10)) < 1e-9 && p[1] == 0.0f,
          "row 0: p0 %.9g p1 %g p3 %.9g", p[0], p[1], p[3]);
    const int32_t lab2[2] = {0, 1};
    loss = lg_item(ctx, lg_cross_entropy(ctx, bt, lab2));
    /* row 0: ~4.5e-5 (e^-10); row 1: log(e^1 + 3) - 1 */
    double want = (log1p(exp(-10.0)) + (log(exp(1.0) + 3.0) - 1.0)) / 2.0;
    CHECK(fabs(loss - want) < 1e-6, "huge logits: loss %.8f, want %.8f", loss, want);
    CHECK(lg_ctx_status(ctx) == LG_OK, "status %s", lg_error_msg());
    lg_ctx_free(ctx);
}

static void test_errors(void) {
    lg_ctx *ctx;
    CHECK_OK(lg_ctx_create(&ctx, lg_test_backend()));
    lg_tensor *x4 = lg_full(ctx, 4, (int64_t[]){2, 3, 1, 1}, 0.0f);
    CHECK(lg_log_softmax(ctx, x4) == NULL, "log_softmax of a 4-D tensor must fail");
    CHECK(lg_ctx_status(ctx) == LG_ERR_SHAPE && strstr(lg_error_msg(), "log_softmax"), "status %s: %s",
          lg_status_str(lg_ctx_status(ctx)), lg_error_msg());
    lg_ctx_reset(ctx);

    lg_tensor *x = lg_full(ctx, 2, (int64_t[]){2, 3}, 0.0f);
    const int32_t bad[2] = {1, 3};
    CHECK(lg_cross_entropy(ctx, x, bad) == NULL, "label 3 of 3 classes must fail");
    CHECK(lg_ctx_status(ctx) == LG_ERR_INVALID_ARG && strstr(lg_error_msg(), "label 3 of row 1"), "status %s: %s",
          lg_status_str(lg_ctx_status(ctx)), lg_error_msg());
    lg_ctx_reset(ctx);
    const int32_t neg[2] = {-1, 0};
    x = lg_full(ctx, 2, (int64_t[]){2, 3}, 0.0f);
    CHECK(lg_cross_entropy(ctx, x, neg) == NULL && lg_ctx_status(ctx) == LG_ERR_INVALID_ARG,
          "a negative label must fail");
    lg_ctx_reset(ctx);
    x = lg_full(ctx, 2, (int64_t[]){2, 3}, 0.0f);
    CHECK(lg_cross_entropy(ctx, x, NULL) == NULL && lg_ctx_status(ctx) == LG_ERR_INVALID_ARG,
          "NULL labels must fail");
    lg_ctx_reset(ctx);
    CHECK(lg_cross_entropy(ctx, NULL, neg) == NULL && lg_softmax(ctx, NULL) == NULL, "NULL input gives NULL");
    lg_ctx_free(ctx);
}

int main(void) {
    g_rng = lg_test_rng_make(2024);
    LG_TEST_RUN(test_reference);
    LG_TEST_RUN(test_gradcheck);
    LG_TEST_RUN(test_known);
    LG_TEST_RUN(test_errors);
    return lg_test_summary("test_softmax");
}
