/* Spectral normalization and gradient penalties against PyTorch
 * (torch.nn.utils.spectral_norm, torch.autograd.grad with create_graph),
 * from tests/data/ref/{sn_linear,sn_conv2d,sn_convt2d,gp}.safetensors written
 * by tools/gen_reference_lipschitz.py (its docstring names every tensor).
 * Both sides start from the same u0, so every value must match to float32
 * rounding: atol 1e-5, rtol 1e-4 (gradient penalty: 3e-5, 3e-4).
 * Data directory: $LG_TEST_DATA or tests/data (run from the repo root). */
#include <stdlib.h>
#include <string.h>

#include "lg_test.h"
#include "lipgan/lipschitz.h"
#include "lipgan/ops.h"
#include "lipgan/safetensors.h"

#define ATOL 1e-5
#define RTOL 1e-4

typedef struct ref {
    float *d; /* (numel) host */
    int ndim;
    int64_t shape[LG_MAX_DIMS];
    int64_t numel;
} ref;

static lg_st_file *open_ref(const char *name) {
    const char *dir = getenv("LG_TEST_DATA");
    char path[512];
    snprintf(path, sizeof path, "%s/ref/%s.safetensors", dir ? dir : "tests/data", name);
    lg_st_file *f = NULL;
    lg_status s = lg_st_open(&f, path);
    CHECK(s == LG_OK, "cannot open %s: %s (regenerate: python3 tools/gen_reference_lipschitz.py)",
          path, lg_error_msg());
    return s == LG_OK ? f : NULL;
}

/* Reads tensor key; a missing one fails a check and yields a zero (1) tensor. */
static ref get(lg_st_file *f, const char *key) {
    ref r;
    memset(&r, 0, sizeof r);
    const lg_st_tensor *t = lg_st_find(f, key);
    CHECK(t != NULL, "%s: no tensor '%s'", lg_st_path(f), key);
    if (!t || t->ndim > LG_MAX_DIMS) {
        r.ndim = 1;
        r.shape[0] = r.numel = 1;
        r.d = calloc(1, sizeof(float));
        return r;
    }
    r.ndim = t->ndim ? t->ndim : 1;
    for (int i = 0; i < LG_MAX_DIMS; i++) r.shape[i] = i < t->ndim ? t->shape[i] : 1;
    r.numel = t->numel;
    r.d = malloc(sizeof(float) * (size_t)r.numel);
    LG_ASSERT(r.d);
    CHECK_OK(lg_st_get_f32(f, key, -1, NULL, r.d));
    return r;
}

static lg_tensor *tens(lg_ctx *ctx, ref r, int requires_grad) {
    return lg_test_tensor(ctx, r.d, r.ndim, r.shape, requires_grad);
}

static void close_t(lg_ctx *ctx, lg_tensor *got, ref want, double atol, double rtol,
                    const char *what) {
    CHECK(got != NULL, "%s: no result (%s)", what, lg_error_msg());
    if (!got) return;
    CHECK(got->numel == want.numel, "%s: %lld elements, want %lld", what, (long long)got->numel,
          (long long)want.numel);
    if (got->numel != want.numel) return;
    float *h = malloc(sizeof(float) * (size_t)got->numel);
    LG_ASSERT(h);
    lg_to_host(ctx, got, h);
    lg_test_close(h, want.d, (size_t)want.numel, atol, rtol, what);
    free(h);
}

/* ---- SN: linear, conv2d, transposed conv2d ---- */

typedef enum { L_LINEAR, L_CONV, L_CONVT } layer_kind;

static lg_tensor *layer(lg_ctx *ctx, layer_kind k, lg_tensor *x, lg_tensor *w, lg_tensor *b) {
    switch (k) {
    case L_LINEAR: return lg_linear(ctx, x, w, b);
    case L_CONV: return lg_conv2d(ctx, x, w, b, 1, 1);
    default: return lg_conv_transpose2d(ctx, x, w, b, 2, 1, 0);
    }
}

static void sn_case(const char *name, layer_kind k) {
    lg_st_file *f = open_ref(name);
    if (!f) return;
    const int dim = atoi(lg_st_meta(f, "dim") ? lg_st_meta(f, "dim") : "0");
    const int n_iter = atoi(lg_st_meta(f, "n_iter") ? lg_st_meta(f, "n_iter") : "1");
    const float lr = (float)atof(lg_st_meta(f, "lr") ? lg_st_meta(f, "lr") : "0.1");
    CHECK(dim == (k == L_CONVT ? 1 : 0), "%s: reference output dim %d", name, dim);
    ref w = get(f, "w"), b = get(f, "b"), x = get(f, "x"), u0 = get(f, "u0"), r = get(f, "r");
    ref y1 = get(f, "y1"), wsn1 = get(f, "wsn1"), sigma1 = get(f, "sigma1"), u1 = get(f, "u1"),
        v1 = get(f, "v1"), gw1 = get(f, "gw1"), gx1 = get(f, "gx1"), y2 = get(f, "y2"),
        u2 = get(f, "u2"), sigma2 = get(f, "sigma2"), y_eval = get(f, "y_eval");
    int64_t rows, cols;
    CHECK_OK(lg_weight_mat_dims(w.ndim, w.shape, dim, &rows, &cols));
    lg_sn_state sn;
    CHECK_OK(lg_sn_init(&sn, NULL, rows, cols, 99));
    CHECK(u0.numel == rows, "%s: u0 has %lld entries for %lld rows", name, (long long)u0.numel,
          (long long)rows);
    memcpy(sn.u, u0.d, sizeof(float) * (size_t)rows); /* CPU backend memory is host memory */
    sn.n_iter = n_iter;
    lg_ctx *ctx;
    CHECK_OK(lg_ctx_create(&ctx, NULL));
    char what[96];

    /* training forward 1, with gradients */
    lg_tensor *wt = tens(ctx, w, 1), *bt = tens(ctx, b, 0), *xt = tens(ctx, x, 1);
    lg_tensor *wn = lg_sn_weight(ctx, &sn, wt, dim, 1);
    lg_tensor *y = layer(ctx, k, xt, wn, bt);
#define CLOSE(t, ref_, label)                                                   \
    do {                                                                        \
        snprintf(what, sizeof what, "%s %s", name, label);                      \
        close_t(ctx, t, ref_, ATOL, RTOL, what);                                \
    } while (0)
    CLOSE(y, y1, "forward 1 (training)");
    CLOSE(wn, wsn1, "normalized weight 1");
    snprintf(what, sizeof what, "%s u1", name);
    lg_test_close(sn.u, u1.d, (size_t)rows, ATOL, RTOL, what);
    snprintf(what, sizeof what, "%s v1", name);
    lg_test_close(sn.v, v1.d, (size_t)cols, ATOL, RTOL, what);
    float s1 = lg_sn_sigma(&sn);
    snprintf(what, sizeof what, "%s sigma1", name);
    lg_test_close(&s1, sigma1.d, 1, ATOL, RTOL, what);
    lg_tensor *seed = tens(ctx, r, 0);
    lg_tensor *wrt[2] = {wt, xt}, *g[2] = {NULL, NULL};
    CHECK_OK(lg_grad(ctx, y, seed, 2, wrt, g, 0));
    CLOSE(g[0], gw1, "d loss / d weight_orig");
    CLOSE(g[1], gx1, "d loss / d x");

    /* SGD step on the raw weight, then training forward 2 (u persists) */
    /* zeroed: with no gradient (already a failed CLOSE) the step is a no-op */
    float *gh = calloc((size_t)w.numel, sizeof(float));
    LG_ASSERT(gh);
    if (g[0]) lg_to_host(ctx, g[0], gh);
    for (int64_t i = 0; i < w.numel; i++) w.d[i] -= lr * gh[i];
    free(gh);
    lg_ctx_reset(ctx);
    wt = tens(ctx, w, 1);
    bt = tens(ctx, b, 0);
    xt = tens(ctx, x, 0);
    y = layer(ctx, k, xt, lg_sn_weight(ctx, &sn, wt, dim, 1), bt);
    CLOSE(y, y2, "forward 2 (training, persistent u)");
    snprintf(what, sizeof what, "%s u2", name);
    lg_test_close(sn.u, u2.d, (size_t)rows, ATOL, RTOL, what);
    float s2 = lg_sn_sigma(&sn);
    snprintf(what, sizeof what, "%s sigma2", name);
    lg_test_close(&s2, sigma2.d, 1, ATOL, RTOL, what);

    /* evaluation: stored u, v, no update */
    float *ukeep = malloc(sizeof(float) * (size_t)rows);
    memcpy(ukeep, sn.u, sizeof(float) * (size_t)rows);
    y = layer(ctx, k, xt, lg_sn_weight(ctx, &sn, wt, dim, 0), bt);
    CLOSE(y, y_eval, "forward 3 (eval)");
    CHECK(memcmp(ukeep, sn.u, sizeof(float) * (size_t)rows) == 0, "%s: eval changed u", name);
    free(ukeep);
#undef CLOSE
    lg_ctx_free(ctx);
    lg_sn_free(&sn);
    ref all[] = {w, b, x, u0, r, y1, wsn1, sigma1, u1, v1, gw1, gx1, y2, u2, sigma2, y_eval};
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++) free(all[i].d);
    lg_st_close(f);
}

static void test_sn_linear(void) { sn_case("sn_linear", L_LINEAR); }
static void test_sn_conv2d(void) { sn_case("sn_conv2d", L_CONV); }
static void test_sn_convt2d(void) { sn_case("sn_convt2d", L_CONVT); }

/* ---- gradient penalties ---- */

typedef struct gp_user {
    int sn;
    float out_scale;
    lg_sn_state sc, sl;
    lg_tensor *p[4]; /* conv w, conv b, lin w, lin b */
} gp_user;

/* conv3x3(3->4, s1, p1) -> LeakyReLU(0.2) -> flatten -> linear(100 -> 1), x out_scale;
 * the penalty's forward is the only forward, so SN updates (as PyTorch's) */
static lg_tensor *critic(lg_ctx *ctx, lg_tensor *x, void *user) {
    gp_user *u = user;
    lg_tensor *cw = u->sn ? lg_sn_weight(ctx, &u->sc, u->p[0], 0, 1) : u->p[0];
    lg_tensor *lw = u->sn ? lg_sn_weight(ctx, &u->sl, u->p[2], 0, 1) : u->p[2];
    lg_tensor *h = lg_leaky_relu(ctx, lg_conv2d(ctx, x, cw, u->p[1], 1, 1), 0.2f);
    return lg_scale(ctx, lg_linear(ctx, lg_flatten(ctx, h), lw, u->p[3]), u->out_scale);
}

static void test_gp(void) {
    lg_st_file *f = open_ref("gp");
    if (!f) return;
    const float lambda = (float)atof(lg_st_meta(f, "lambda") ? lg_st_meta(f, "lambda") : "10");
    const char *pn[4] = {"conv_w", "conv_b", "lin_w", "lin_b"};
    ref prm[4];
    for (int i = 0; i < 4; i++) prm[i] = get(f, pn[i]);
    ref u_conv = get(f, "u_conv"), u_lin = get(f, "u_lin"), real = get(f, "real"),
        fake = get(f, "fake"), eps = get(f, "eps");
    const char *kinds[3] = {"two", "one", "r1"};
    lg_ctx *ctx;
    CHECK_OK(lg_ctx_create(&ctx, NULL));
    for (int sn = 0; sn <= 1; sn++)
        for (int k = 0; k < 3; k++) {
            lg_ctx_reset(ctx);
            gp_user u;
            memset(&u, 0, sizeof u);
            u.sn = sn;
            char key[64];
            snprintf(key, sizeof key, "out_scale_sn%d", sn);
            u.out_scale = (float)atof(lg_st_meta(f, key) ? lg_st_meta(f, key) : "1");
            if (sn) { /* fresh states from PyTorch's u0 for every case, as the script */
                CHECK_OK(lg_sn_init(&u.sc, NULL, 4, 27, 1));
                CHECK_OK(lg_sn_init(&u.sl, NULL, 1, 100, 2));
                memcpy(u.sc.u, u_conv.d, sizeof(float) * 4);
                memcpy(u.sl.u, u_lin.d, sizeof(float) * 1);
            }
            for (int i = 0; i < 4; i++) u.p[i] = tens(ctx, prm[i], 1);
            lg_tensor *rt = tens(ctx, real, 0), *ft = tens(ctx, fake, 0), *et = tens(ctx, eps, 0);
            lg_tensor *pen = lg_gradient_penalty(ctx, critic, &u, rt, ft, et, lambda,
                                                 (lg_gp_kind)k);
            char tag[32], what[96];
            snprintf(tag, sizeof tag, "%s_sn%d", kinds[k], sn);
            snprintf(key, sizeof key, "gp_%s", tag);
            ref want = get(f, key);
            snprintf(what, sizeof what, "GP %s value", tag);
            close_t(ctx, pen, want, 3e-5, 3e-4, what);
            free(want.d);
            lg_tensor *g[4] = {0};
            CHECK_OK(pen ? lg_grad(ctx, pen, NULL, 4, u.p, g, 0) : lg_ctx_status(ctx));
            for (int i = 0; i < 4; i++) {
                snprintf(key, sizeof key, "g_%s_%s", tag, pn[i]);
                ref gw = get(f, key);
                snprintf(what, sizeof what, "GP %s d/d%s (second order)", tag, pn[i]);
                close_t(ctx, g[i], gw, 3e-5, 3e-4, what);
                free(gw.d);
            }
            if (sn) {
                lg_sn_free(&u.sc);
                lg_sn_free(&u.sl);
            }
        }
    lg_ctx_free(ctx);
    for (int i = 0; i < 4; i++) free(prm[i].d);
    free(u_conv.d);
    free(u_lin.d);
    free(real.d);
    free(fake.d);
    free(eps.d);
    lg_st_close(f);
}

int main(void) {
    LG_TEST_RUN(test_sn_linear);
    LG_TEST_RUN(test_sn_conv2d);
    LG_TEST_RUN(test_sn_convt2d);
    LG_TEST_RUN(test_gp);
    return lg_test_summary("test_lipschitz_ref");
}
