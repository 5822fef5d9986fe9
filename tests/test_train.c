/* Tests of the training pieces: losses against closed forms (values and
 * gradients), Adam against a double-precision reference, RMSProp against
 * PyTorch, the learning-rate and critic schedules, a short deterministic toy run whose D loss moves as it should,
 * non-finite updates being skipped and stopping a diverged run, every
 * example config running a few steps on tiny data, a trainer's thread count
 * applied per call with the host's put back (and trainers of 1 and 2 threads
 * taking turns computing what each does alone), and lg_generate's argument
 * checks. */
#include <cblas.h>
#include <dirent.h>
#include <lapacke.h>
#include <omp.h>
#include <float.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "lg_test.h"
#include "lipgan/backend_cpu.h"
#include "lipgan/config.h"
#include "lipgan/fileio.h"
#include "lipgan/loss.h"
#include "lipgan/ops.h"
#include "lipgan/optim.h"
#include "lipgan/safetensors.h"
#include "lipgan/train.h"
#include "train/train_internal.h" /* lg__trainer_set_step_mode */
#include "train_fixtures.h"

/* ---- losses ---- */

static double sp(double x) { return x > 0 ? x + log1p(exp(-x)) : log1p(exp(x)); }
static double relu(double x) { return x > 0 ? x : 0; }

#define NR 5
#define NF 6
static const float k_real[NR] = {-3.0f, -0.5f, 0.2f, 2.5f, 40.0f};
static const float k_fake[NF] = {-45.0f, -1.7f, 0.3f, 0.9f, 4.0f, -0.2f};

static void closed_forms(lg_loss_kind k, double *ld, double *lg) {
    double er = 0, ef = 0, a = 0, b = 0;
    for (int i = 0; i < NR; i++) er += k_real[i] / (double)NR;
    for (int i = 0; i < NF; i++) ef += k_fake[i] / (double)NF;
    switch (k) {
    case LG_LOSS_MINIMAX:
    case LG_LOSS_NONSAT:
        /* -E log sigmoid(r) - E log(1 - sigmoid(f)) */
        for (int i = 0; i < NR; i++) a += -log(1.0 / (1.0 + exp(-(double)k_real[i]))) / NR;
        for (int i = 0; i < NF; i++) b += sp(k_fake[i]) / NF;
        *ld = a + b;
        if (k == LG_LOSS_MINIMAX) {
            *lg = 0;  /* E log(1 - sigmoid(f)) */
            for (int i = 0; i < NF; i++) *lg += log1p(-1.0 / (1.0 + exp(-(double)k_fake[i]))) / NF;
        } else {
            *lg = 0;
            for (int i = 0; i < NF; i++) *lg += sp(-(double)k_fake[i]) / NF;
        }
        break;
    case LG_LOSS_HINGE:
        for (int i = 0; i < NR; i++) a += relu(1.0 - k_real[i]) / NR;
        for (int i = 0; i < NF; i++) b += relu(1.0 + k_fake[i]) / NF;
        *ld = a + b;
        *lg = -ef;
        break;
    default:
        *ld = ef - er;
        *lg = -ef;
    }
}

static void test_loss_values(void) {
    lg_ctx *ctx;
    CHECK_OK(lg_ctx_create(&ctx, NULL));
    for (int k = 0; k < LG_LOSS_COUNT; k++) {
        lg_ctx_reset(ctx);
        lg_tensor *r = lg_from_host(ctx, k_real, 2, (int64_t[]){NR, 1});
        lg_tensor *f = lg_from_host(ctx, k_fake, 2, (int64_t[]){NF, 1});
        double ld, lgv;
        closed_forms((lg_loss_kind)k, &ld, &lgv);
        float gd = lg_item(ctx, lg_loss_d(ctx, (lg_loss_kind)k, r, f));
        float gg = lg_item(ctx, lg_loss_g(ctx, (lg_loss_kind)k, f));
        CHECK_OK(lg_ctx_status(ctx));
        CHECK(fabs(gd - ld) <= 1e-5 * (1 + fabs(ld)), "%s D loss %.8g vs closed form %.8g",
              lg_loss_name((lg_loss_kind)k), gd, ld);
        CHECK(fabs(gg - lgv) <= 1e-5 * (1 + fabs(lgv)), "%s G loss %.8g vs closed form %.8g",
              lg_loss_name((lg_loss_kind)k), gg, lgv);
    }
    /* stability: huge logits give finite losses and gradients */
    for (int k = 0; k < LG_LOSS_COUNT; k++) {
        lg_ctx_reset(ctx);
        const float big[4] = {-200.0f, 200.0f, -90.0f, 95.0f};
        lg_tensor *r = lg_test_tensor(ctx, big, 1, (int64_t[]){4}, 1);
        lg_tensor *f = lg_test_tensor(ctx, big, 1, (int64_t[]){4}, 1);
        lg_tensor *l = lg_add(ctx, lg_loss_d(ctx, (lg_loss_kind)k, r, f), lg_loss_g(ctx, (lg_loss_kind)k, f));
        lg_tensor *g[2];
        CHECK_OK(lg_grad(ctx, l, NULL, 2, (lg_tensor *[]){r, f}, g, 0));
        float v = lg_item(ctx, l), hg[8];
        CHECK(isfinite(v), "%s loss at |x|=200 is %g", lg_loss_name((lg_loss_kind)k), v);
        CHECK_OK(lg_to_host(ctx, g[0], hg));
        CHECK_OK(lg_to_host(ctx, g[1], hg + 4));
        for (int i = 0; i < 8; i++) CHECK(isfinite(hg[i]), "%s gradient %d not finite", lg_loss_name((lg_loss_kind)k), i);
    }
    lg_ctx_free(ctx);
}

typedef struct { lg_loss_kind k; int side; } loss_case;

static lg_tensor *loss_fn(lg_ctx *ctx, lg_tensor **in, void *user) {
    loss_case *c = user;
    return c->side == 0 ? lg_loss_d(ctx, c->k, in[0], in[1]) : lg_loss_g(ctx, c->k, in[1]);
}

static void test_loss_gradients(void) {
    for (int k = 0; k < LG_LOSS_COUNT; k++)
        for (int side = 0; side < 2; side++) {
            float r[NR], f[NF];
            memcpy(r, k_real, sizeof r);
            memcpy(f, k_fake, sizeof f);
            lg_gc_input in[2] = {lg_gc_in("d_real", r, 2, NR, 1, 0, 0), lg_gc_in("d_fake", f, 2, NF, 1, 0, 0)};
            if (side == 1) in[0].constant = 1;
            loss_case c = {(lg_loss_kind)k, side};
            lg_gc_opts o = {.order = 1, .eps = 1e-2, .atol = 1e-4, .rtol = 1e-3};
            char what[64];
            snprintf(what, sizeof what, "%s %s loss", lg_loss_name(c.k), side ? "G" : "D");
            CHECK(lg_gradcheck(what, loss_fn, &c, 2, in, &o) == 0, "%s gradient", what);
        }
    /* one exact derivative: hinge D w.r.t. d_real_i is -1/N where r_i < 1 */
    lg_ctx *ctx;
    CHECK_OK(lg_ctx_create(&ctx, NULL));
    lg_tensor *r = lg_test_tensor(ctx, k_real, 1, (int64_t[]){NR}, 1);
    lg_tensor *f = lg_test_tensor(ctx, k_fake, 1, (int64_t[]){NF}, 1);
    lg_tensor *g[2];
    CHECK_OK(lg_grad(ctx, lg_loss_d(ctx, LG_LOSS_HINGE, r, f), NULL, 2, (lg_tensor *[]){r, f}, g, 0));
    float gr[NR], gf[NF];
    CHECK_OK(lg_to_host(ctx, g[0], gr));
    CHECK_OK(lg_to_host(ctx, g[1], gf));
    for (int i = 0; i < NR; i++) CHECK(gr[i] == (k_real[i] < 1 ? -1.0f / NR : 0.0f), "dL/dr[%d] = %g", i, gr[i]);
    for (int i = 0; i < NF; i++) CHECK(gf[i] == (k_fake[i] > -1 ? 1.0f / NF : 0.0f), "dL/df[%d] = %g", i, gf[i]);
    lg_ctx_free(ctx);

    lg_loss_kind kk;
    CHECK_OK(lg_loss_parse("standard", &kk));
    CHECK(kk == LG_LOSS_MINIMAX, "alias standard");
    CHECK_OK(lg_loss_parse("wgan", &kk));
    CHECK(kk == LG_LOSS_WASSERSTEIN, "alias wgan");
    CHECK(lg_loss_parse("hing", &kk) == LG_ERR_INVALID_ARG && strstr(lg_error_msg(), "hing"), "unknown");
}

/* ---- Adam and the schedule ---- */

static void test_adam(void) {
    const lg_backend *be = lg_backend_cpu();
    enum { N = 37, STEPS = 6 };
    float *p = lg_buffer_alloc(be, N), *g = lg_buffer_alloc(be, N);
    double rp[N], rm[N] = {0}, rv[N] = {0};
    lg_test_rng rng = lg_test_rng_make(5);
    for (int i = 0; i < N; i++) rp[i] = p[i] = lg_test_uniform(&rng, -1, 1);
    lg_adam a;
    const double b1 = 0.5, b2 = 0.999, eps = 1e-8;
    CHECK_OK(lg_adam_init(&a, be, N, (float)b1, (float)b2, (float)eps));
    for (int t = 1; t <= STEPS; t++) {
        float lr = lg_lr_linear(1e-2f, t - 1, STEPS);
        for (int i = 0; i < N; i++) g[i] = lg_test_uniform(&rng, -2, 2) * (i % 3 ? 1.0f : 1e-3f);
        lg_adam_step(&a, p, g, lr);
        for (int i = 0; i < N; i++) {
            rm[i] = b1 * rm[i] + (1 - b1) * g[i];
            rv[i] = b2 * rv[i] + (1 - b2) * (double)g[i] * g[i];
            double mh = rm[i] / (1 - pow(b1, t)), vh = rv[i] / (1 - pow(b2, t));
            rp[i] -= lr * mh / (sqrt(vh) + eps);
        }
    }
    CHECK(a.t == STEPS, "t = %lld", (long long)a.t);
    float ref[N];
    for (int i = 0; i < N; i++) ref[i] = (float)rp[i];
    lg_test_close(p, ref, N, 1e-6, 1e-5, "adam params vs double reference");
    lg_adam_free(&a);
    CHECK(lg_adam_init(&a, be, N, 1.0f, 0.9f, 1e-8f) == LG_ERR_INVALID_ARG, "beta1 = 1 rejected");
    CHECK(lg_adam_init(&a, be, N, 0.0f, 0.9f, 0.0f) == LG_ERR_INVALID_ARG, "eps = 0 rejected");
    lg_buffer_free(be, p);
    lg_buffer_free(be, g);

    CHECK(lg_lr_linear(2e-4f, 0, 100) == 2e-4f, "lr at 0");
    CHECK(fabsf(lg_lr_linear(2e-4f, 50, 100) - 1e-4f) < 1e-10f, "lr at half");
    CHECK(fabsf(lg_lr_linear(2e-4f, 99, 100) - 2e-6f) < 1e-11f, "lr at the last step");
    CHECK(lg_lr_linear(2e-4f, 100, 100) == 0.0f && lg_lr_linear(2e-4f, 500, 100) == 0.0f, "lr past the end");
    CHECK(lg_lr_linear(2e-4f, 7, 0) == 2e-4f, "no total: constant");
}

/* ---- training runs ---- */

static void toy_config(lg_config *c) {
    lg_config_default(c);
    const char *sets[] = {"data.format=ring8", "data.toy_n=2000", "model.z_dim=4",
                          "model.g.arch=mlp", "model.g.width=32", "model.g.depth=2", "model.g.bn=false",
                          "model.d.arch=mlp", "model.d.width=32", "model.d.depth=2",
                          "train.steps=40", "train.n_dis=2", "train.batch_d=32", "train.batch_g=32",
                          "optim.d.lr=1e-3", "optim.g.lr=1e-3", "optim.d.beta1=0.5", "optim.g.beta1=0.5",
                          "seed=3", "threads=1", NULL};
    for (int i = 0; sets[i]; i++) CHECK_OK(lg_config_set(c, sets[i]));
}

static int same_buffer(const float *a, const float *b, size_t n) { return memcmp(a, b, n * sizeof(float)) == 0; }

/* ---- RMSProp and the critic schedule ---- */

/* PyTorch's RMSprop step (torch/optim/rmsprop.py, _single_tensor_rmsprop,
 * centered=False, momentum=0) in float, in its order of operations:
 *   square_avg.mul_(alpha).addcmul_(g, g, value=1-alpha)
 *   avg = square_avg.sqrt().add_(eps); p.addcdiv_(g, avg, value=-lr)
 * where torch 2.x's CPU kernels compute addcmul as a fused multiply-add,
 * fma(value*t1, t2, self) (its square averages are reproduced bit for bit
 * below), and addcdiv as self + (value*t1)/t2; 1-alpha is formed in double
 * from the float alpha (the reference file's hyperparameters are float
 * values). Its vectorized float sqrt is not always correctly rounded (1 ulp
 * off at some inputs), so its parameters are only compared to a tolerance. */
static void torch_rmsprop_step(float *p, float *sq, const float *g, size_t n, float lr, float alpha,
                               float eps) {
    const float c = (float)(1.0 - (double)alpha), nlr = -lr;
    for (size_t i = 0; i < n; i++) {
        sq[i] = fmaf(c * g[i], g[i], sq[i] * alpha);
        float avg = sqrtf(sq[i]) + eps;
        p[i] = p[i] + nlr * g[i] / avg;
    }
}

/* largest |a - b| in units of the float spacing at max(|a|, |b|) */
static double max_ulps(const float *a, const float *b, size_t n) {
    double worst = 0;
    for (size_t i = 0; i < n; i++) {
        float m = fmaxf(fabsf(a[i]), fabsf(b[i]));
        double ulp = m > 0 ? (double)nextafterf(m, INFINITY) - (double)m : (double)FLT_TRUE_MIN;
        double u = fabs((double)a[i] - (double)b[i]) / ulp;
        if (u > worst) worst = u;
    }
    return worst;
}

/* lipgan's RMSProp (Adam with beta1 = 0 and no bias correction, optim.c)
 * against PyTorch's formula (above) and the numbers of torch.optim.RMSprop
 * in tests/data/ref/rmsprop.safetensors (tools/gen_reference_rmsprop.py).
 * lipgan rounds differently in two places (backend/adam_math.h, shared
 * with Adam): v*alpha + c*g*g without the fused multiply-add, and
 * p - lr*(g/avg) for p + (-lr*g)/avg; so square averages are compared to
 * t ulps after step t and parameters to t * 2^-22 (updates are at most
 * lr/sqrt(1-alpha) = 0.1 here, parameters below 2). A bias correction left
 * in (1/sqrt(1-alpha^t) = 10 at t = 1) or a wrong lr would be far outside.
 * The sync-free step's flagged update is bitwise the classic one, and a
 * flag of 0 changes nothing. */
static void test_rmsprop(void) {
    const lg_backend *be = lg_backend_cpu();
    const char *dir = getenv("LG_TEST_DATA");
    char path[512];
    snprintf(path, sizeof path, "%s/ref/rmsprop.safetensors", dir ? dir : "tests/data");
    lg_st_file *f = NULL;
    lg_status s = lg_st_open(&f, path);
    CHECK(s == LG_OK, "%s: %s (python3 tools/gen_reference_rmsprop.py writes it)", path, lg_error_msg());
    if (s != LG_OK) return;
    enum { N = 37, T = 8 };
    float p0[N], g[T][N], hyper[3], rp[T][N], rsq[T][N];
    CHECK_OK(lg_st_get_f32(f, "p0", 1, (int64_t[]){N}, p0));
    CHECK_OK(lg_st_get_f32(f, "g", 2, (int64_t[]){T, N}, &g[0][0]));
    CHECK_OK(lg_st_get_f32(f, "hyper", 1, (int64_t[]){3}, hyper));
    CHECK_OK(lg_st_get_f32(f, "p", 2, (int64_t[]){T, N}, &rp[0][0]));
    CHECK_OK(lg_st_get_f32(f, "sq", 2, (int64_t[]){T, N}, &rsq[0][0]));
    lg_st_close(f);
    const float lr = hyper[0], alpha = hyper[1], eps = hyper[2];

    float *p = lg_buffer_alloc(be, N), *pf = lg_buffer_alloc(be, N), *gb = lg_buffer_alloc(be, N);
    float *dev = lg_buffer_alloc(be, 6); /* lr, tc, flag, hp (3) */
    float fp[N], fsq[N] = {0};
    memcpy(p, p0, sizeof p0);
    memcpy(pf, p0, sizeof p0);
    memcpy(fp, p0, sizeof p0);
    lg_adam a, af;
    CHECK_OK(lg_rmsprop_init(&a, be, N, alpha, eps));
    CHECK_OK(lg_rmsprop_init(&af, be, N, alpha, eps));
    double worst_sq[2] = {0, 0}, worst_p[2] = {0, 0};
    for (int t = 0; t < T; t++) {
        memcpy(gb, g[t], sizeof g[t]);
        lg_adam_step(&a, p, gb, lr);
        torch_rmsprop_step(fp, fsq, g[t], N, lr, alpha, eps);
        /* the formula's square average is PyTorch's, bit for bit (this
         * fails if the file is regenerated where torch's addcmul has no FMA) */
        CHECK(same_buffer(fsq, rsq[t], N), "step %d: the float formula's square_avg differs from "
              "torch.optim.RMSprop's", t);
        const float *ref_p[2] = {rp[t], fp}, *ref_sq[2] = {rsq[t], fsq};
        for (int k = 0; k < 2; k++) {
            double u = max_ulps(a.v, ref_sq[k], N);
            if (u > worst_sq[k]) worst_sq[k] = u;
            CHECK(u <= t + 1, "step %d: square_avg %.1f ulps from %s", t, u, k ? "the formula" : "PyTorch");
            for (int i = 0; i < N; i++) {
                double e = fabs((double)p[i] - (double)ref_p[k][i]);
                if (e > worst_p[k]) worst_p[k] = e;
                CHECK(e <= (t + 1) * 0x1p-22, "step %d: param %d is %a, %s %a", t, i, p[i],
                      k ? "the formula's" : "PyTorch's", ref_p[k][i]);
            }
        }
        for (int i = 0; i < N; i++) CHECK(a.m[i] == 0.0f, "step %d: m[%d] = %g, not reset to 0", t, i, a.m[i]);
        /* the flagged update: skipped with flag 0, then bitwise the classic one */
        float pb[N], vb[N];
        memcpy(pb, pf, sizeof pb);
        memcpy(vb, af.v, sizeof vb);
        dev[0] = lr;
        dev[1] = (float)t;
        dev[2] = 0.0f;
        lg_adam_step_flagged(&af, pf, gb, dev, dev + 1, dev + 2, dev + 3);
        CHECK(same_buffer(pf, pb, N) && same_buffer(af.v, vb, N) && dev[1] == (float)t,
              "step %d: a flagged update with flag 0 changed something", t);
        dev[2] = 1.0f;
        lg_adam_step_flagged(&af, pf, gb, dev, dev + 1, dev + 2, dev + 3);
        CHECK(dev[1] == (float)(t + 1) && dev[3] == lr && dev[4] == 1.0f && dev[5] == 1.0f,
              "step %d: adam_prep gave t %g hp {%g, %g, %g}, want {lr, 1, 1}", t, dev[1], dev[3], dev[4],
              dev[5]);
        CHECK(same_buffer(pf, p, N) && same_buffer(af.v, a.v, N) && same_buffer(af.m, a.m, N),
              "step %d: the flagged update differs from the classic one", t);
    }
    CHECK(a.t == T, "t = %lld", (long long)a.t);
    if (getenv("LG_TEST_VERBOSE"))
        printf("  rmsprop: square_avg within %.0f ulps of PyTorch's (%.0f of the formula), params within "
               "%.3g (%.3g)\n", worst_sq[0], worst_sq[1], worst_p[0], worst_p[1]);
    /* the steps moved the parameters far beyond the tolerance (an lr or
     * bias-correction error would show), eps-dominated elements included */
    CHECK(fabsf(p[1] - p0[1]) > 1e-3f && fabsf(p[10] - p0[10]) > 1e-2f, "RMSProp barely moved: %g, %g",
          p[1] - p0[1], p[10] - p0[10]);
    lg_adam_free(&a);
    lg_adam_free(&af);
    CHECK(lg_rmsprop_init(&a, be, N, 1.0f, 1e-8f) == LG_ERR_INVALID_ARG, "alpha = 1 rejected");
    CHECK(lg_rmsprop_init(&a, be, N, 0.9f, 0.0f) == LG_ERR_INVALID_ARG, "eps = 0 rejected");
    lg_buffer_free(be, p);
    lg_buffer_free(be, pf);
    lg_buffer_free(be, gb);
    lg_buffer_free(be, dev);
}

/* The critic schedule: lg_dis_at's rule, and lg_dis_updates' closed form
 * against a plain sum over the steps. */
static void test_dis_schedule(void) {
    lg_dis_schedule wgan = {5, 100, 25, 500};
    int want[][2] = {{0, 100}, {24, 100}, {25, 5}, {26, 5}, {499, 5}, {500, 100}, {501, 5}, {1000, 100}};
    for (size_t i = 0; i < sizeof want / sizeof want[0]; i++)
        CHECK(lg_dis_at(&wgan, want[i][0]) == want[i][1], "WGAN schedule at %d: %d, want %d", want[i][0],
              lg_dis_at(&wgan, want[i][0]), want[i][1]);
    lg_dis_schedule off = {5, 0, 25, 500};
    CHECK(lg_dis_at(&off, 0) == 5 && lg_dis_at(&off, 500) == 5, "boost 0 is off");
    lg_dis_schedule ss[] = {{5, 100, 25, 500}, {1, 7, 2, 4}, {3, 9, 0, 3}, {2, 6, 5, 0}, {4, 1, 3, 2},
                            {5, 0, 25, 500}, {2, 8, 0, 0}, {1, 3, 10, 1}};
    for (size_t k = 0; k < sizeof ss / sizeof ss[0]; k++)
        for (int64_t from = 0; from < 30; from += 3)
            for (int64_t to = from; to < 1100; to += to < 40 ? 1 : 97) {
                int64_t sum = 0;
                for (int64_t i = from; i < to; i++) sum += lg_dis_at(&ss[k], i) + 1;
                int64_t got = lg_dis_updates(&ss[k], from, to);
                CHECK(got == sum, "schedule %zu: updates in [%lld, %lld): %lld, want %lld", k, (long long)from,
                      (long long)to, (long long)got, (long long)sum);
                if (got != sum) return;
            }
    CHECK(lg_dis_updates(&wgan, 10, 5) == 0, "an empty range");
}

/* The trainer runs the schedule in both step paths: D updates per step
 * with n_dis 1, boost 7 for the first 2 steps and every 4th; and builds
 * the optimizers optim.<net>.kind names (RMSProp on D here: its scratch m
 * stays 0, Adam's on G does not). */
static void test_dis_schedule_trainer(void) {
    static const int want[10] = {7, 7, 1, 1, 7, 1, 1, 1, 7, 1};
    for (int mode = 0; mode < 2; mode++) {
        lg_config c;
        toy_config(&c);
        const char *sets[] = {"train.n_dis=1", "train.n_dis_boost=7", "train.n_dis_boost_first=2",
                              "train.n_dis_boost_every=4", "train.batch_d=8", "train.batch_g=8",
                              "optim.d.kind=rmsprop", "optim.d.beta1=0", "optim.d.alpha=0.9", NULL};
        for (int i = 0; sets[i]; i++) CHECK_OK(lg_config_set(&c, sets[i]));
        lg_trainer *t = NULL;
        CHECK_OK(lg_trainer_create(&t, &c));
        if (!t) return;
        CHECK(t->opt_d.kind == LG_OPTIM_RMSPROP && t->opt_d.beta1 == 0.0f && t->opt_d.beta2 == 0.9f &&
                  t->opt_g.kind == LG_OPTIM_ADAM && t->opt_g.beta1 == 0.5f && t->opt_g.beta2 == 0.9f,
              "optimizers: D kind %d betas %g %g, G kind %d betas %g %g", t->opt_d.kind, t->opt_d.beta1,
              t->opt_d.beta2, t->opt_g.kind, t->opt_g.beta1, t->opt_g.beta2);
        CHECK_OK(lg__trainer_set_step_mode(t, mode));
        for (int i = 0; i < 10; i++) {
            int64_t d0 = t->opt_d.t, g0 = t->opt_g.t;
            lg_train_stats s;
            CHECK_OK(lg_trainer_step(t, &s));
            CHECK(t->opt_d.t - d0 == want[i] && t->opt_g.t - g0 == 1,
                  "%s step: step %d ran %lld D and %lld G updates, want %d and 1",
                  mode ? "sync-free" : "classic", i, (long long)(t->opt_d.t - d0), (long long)(t->opt_g.t - g0),
                  want[i]);
        }
        int dm = 0, gm = 0;
        for (size_t i = 0; i < t->opt_d.n; i++) dm += t->opt_d.m[i] != 0.0f;
        for (size_t i = 0; i < t->opt_g.n; i++) gm += t->opt_g.m[i] != 0.0f;
        CHECK(dm == 0 && gm > 0, "after 10 steps: %d nonzero m in D (RMSProp), %d in G (Adam)", dm, gm);
        lg_trainer_free(t);
    }
}

static void test_toy_run_deterministic(void) {
    lg_config c;
    toy_config(&c);
    lg_trainer *t[3];
    lg_train_stats s[3][12];
    size_t arena[12] = {0}; /* lg_trainer_arena_bytes after each step of the first run */
    for (int k = 0; k < 3; k++) {
        if (k == 2) c.seed = 4;
        CHECK_OK(lg_trainer_create(&t[k], &c));
        if (!t[k]) return;
        for (int i = 0; i < 12; i++) {
            CHECK_OK(lg_trainer_step(t[k], &s[k][i]));
            if (k == 0) arena[i] = lg_trainer_arena_bytes(t[k]);
        }
    }
    CHECK(arena[1] > 0 && arena[11] == arena[1], "step arena %zu bytes after step 2, %zu after 12 "
          "(want it reserved and no growth after the first steps)", arena[1], arena[11]);
    CHECK(memcmp(s[0], s[1], sizeof s[0]) == 0, "two runs with one seed gave different stats");
    CHECK(s[0][11].step == 12 && lg_trainer_steps_done(t[0]) == 12, "step count");
    for (int k = 1; k < 3; k++) {
        lg_model *g0 = lg_trainer_generator(t[0]), *gk = lg_trainer_generator(t[k]);
        lg_model *d0 = lg_trainer_discriminator(t[0]), *dk = lg_trainer_discriminator(t[k]);
        int same = same_buffer(lg_model_params(g0), lg_model_params(gk), lg_model_num_params(g0)) &&
                   same_buffer(lg_model_params(d0), lg_model_params(dk), lg_model_num_params(d0)) &&
                   same_buffer(lg_model_state(d0), lg_model_state(dk), lg_model_num_state(d0));
        if (k == 1) CHECK(same, "same seed: weights differ");
        else CHECK(!same && s[0][11].loss_d != s[2][11].loss_d, "another seed gave the same run");
    }
    for (int i = 0; i < 12; i++)
        CHECK(isfinite(s[0][i].loss_d) && isfinite(s[0][i].loss_g) && s[0][i].skipped == 0,
              "step %d: loss_d %g loss_g %g skipped %d", i, s[0][i].loss_d, s[0][i].loss_g, s[0][i].skipped);
    CHECK(s[0][0].sigma_max > 0, "SN sigma summary of D is reported (%g)", s[0][0].sigma_max);
    CHECK(s[0][0].lr_d == 1e-3f && s[0][11].lr_d < s[0][0].lr_d, "linear decay: %g -> %g", s[0][0].lr_d,
          s[0][11].lr_d);
    for (int k = 0; k < 3; k++) lg_trainer_free(t[k]);
}

/* The D update keeps only G's output of the fake batch: G's intermediates
 * go back to the arena before D runs, so D's forward and backward reuse
 * them. With a deep, wide G and a D of the same size at a large batch_d
 * (and a tiny batch_g, so that the D update sets the arena's size), a deep
 * G then needs about the arena of a shallow one instead of adding its
 * whole forward to D's. */
static size_t deep_g_arena(int depth) {
    lg_config c;
    toy_config(&c);
    char d[48];
    snprintf(d, sizeof d, "model.g.depth=%d", depth);
    const char *sets[] = {"model.g.width=256", d, "model.d.width=256", "model.d.depth=6", "train.batch_d=4096",
                          "train.batch_g=2", "train.n_dis=1", NULL};
    for (int i = 0; sets[i]; i++) CHECK_OK(lg_config_set(&c, sets[i]));
    lg_trainer *t = NULL;
    CHECK_OK(lg_trainer_create(&t, &c));
    if (!t) return 0;
    lg_train_stats st;
    for (int i = 0; i < 3; i++) CHECK_OK(lg_trainer_step(t, &st));
    size_t bytes = lg_trainer_arena_bytes(t);
    lg_trainer_free(t);
    return bytes;
}

static void test_d_update_releases_g_intermediates(void) {
    size_t one = deep_g_arena(1), eight = deep_g_arena(8);
    CHECK(one > 0 && eight < one + one / 4, "step arena: G depth 1 %zu bytes, depth 8 %zu (want under "
          "1.25x: D's update reuses G's 7 more (4096, 256) layers of 4 MB)", one, eight);
}

/* With G frozen (lr 0) the critic separates the fixed fakes from the ring:
 * the hinge D loss falls from ~2 (outputs near 0 at init) well below 1,
 * and D(x) ends above D(G(z)). With Wasserstein + clipping the critic's
 * loss E f - E r goes negative. */
static void test_d_loss_moves(void) {
    lg_config c;
    toy_config(&c);
    CHECK_OK(lg_config_set(&c, "optim.g.lr=0"));
    CHECK_OK(lg_config_set(&c, "lipschitz.d.sn=false"));  /* SN caps the margin on this toy */
    CHECK_OK(lg_config_set(&c, "train.steps=60"));
    lg_trainer *t;
    CHECK_OK(lg_trainer_create(&t, &c));
    if (!t) return;
    lg_train_stats s0, s;
    CHECK_OK(lg_trainer_step(t, &s0));
    for (int i = 1; i < 60; i++) CHECK_OK(lg_trainer_step(t, &s));
    CHECK(s0.loss_d > 1.5f && s0.loss_d < 2.5f, "initial hinge D loss %g, expected ~2", s0.loss_d);
    CHECK(s.loss_d < 0.5f * s0.loss_d, "D loss did not fall: %g -> %g", s0.loss_d, s.loss_d);
    CHECK(s.d_real > s.d_fake + 0.5f, "D(x) %g vs D(G(z)) %g", s.d_real, s.d_fake);
    lg_trainer_free(t);

    toy_config(&c);
    const char *w[] = {"loss=wasserstein", "lipschitz.d.sn=false", "lipschitz.d.clip=0.05",
                       "optim.g.lr=0", "train.steps=40", NULL};
    for (int i = 0; w[i]; i++) CHECK_OK(lg_config_set(&c, w[i]));
    CHECK_OK(lg_trainer_create(&t, &c));
    if (!t) return;
    CHECK_OK(lg_trainer_step(t, &s0));
    for (int i = 1; i < 40; i++) CHECK_OK(lg_trainer_step(t, &s));
    CHECK(s.loss_d < s0.loss_d && s.loss_d < 0, "WGAN critic loss %g -> %g", s0.loss_d, s.loss_d);
    /* clipping holds every weight in [-c, c] */
    lg_model *d = lg_trainer_discriminator(t);
    float mx = 0;
    for (size_t i = 0; i < lg_model_num_params(d); i++) mx = fmaxf(mx, fabsf(lg_model_params(d)[i]));
    CHECK(mx <= 0.05f, "max |w| of the clipped critic is %g", mx);
    lg_trainer_free(t);
}

/* ---- non-finite updates ---- */

typedef struct poison {
    int64_t at, restore_at;   /* poison D after step `at`, restore after `restore_at` */
    float saved;
    lg_train_stats log[64];
    int n;
    float *gcopy;             /* G params when poisoned */
    size_t ng;
} poison;

static void poison_hook(lg_trainer *t, const lg_train_stats *s, void *user) {
    poison *p = user;
    if (p->n < 64) p->log[p->n++] = *s;
    /* the transient case poisons G (no SN: nothing but the weight is
     * touched); the lasting one D */
    float *w = lg_model_params(p->restore_at >= 0 ? lg_trainer_generator(t) : lg_trainer_discriminator(t));
    if (s->step == p->at) {
        p->saved = w[0];
        w[0] = NAN;
        lg_model *g = lg_trainer_generator(t);
        p->ng = lg_model_num_params(g);
        p->gcopy = malloc(p->ng * sizeof(float));
        memcpy(p->gcopy, lg_model_params(g), p->ng * sizeof(float));
    }
    if (s->step == p->restore_at) w[0] = p->saved;
}

/* A transient NaN in D's weights with SN on D: the skipped update must not
 * leave NaN in D's persistent state (SN u/v/sigma are written by the
 * forward), so training recovers once the weight is restored. */
typedef struct dpoison {
    int64_t at;
    float saved;
    int state_finite_after;  /* 1 if D's state was finite right after the skip */
    int n_skipped;
} dpoison;

static void dpoison_hook(lg_trainer *t, const lg_train_stats *s, void *user) {
    dpoison *p = user;
    lg_model *d = lg_trainer_discriminator(t);
    float *w = lg_model_params(d);
    p->n_skipped += s->skipped;
    if (s->step == p->at) {
        p->saved = w[0];
        w[0] = NAN;
    } else if (s->step == p->at + 1) {
        const float *st = lg_model_state(d);
        size_t ns = lg_model_num_state(d);
        p->state_finite_after = 1;
        for (size_t i = 0; i < ns; i++)
            if (!isfinite(st[i])) p->state_finite_after = 0;
        w[0] = p->saved;
    }
}

static void test_skip_restores_sn_state(void) {
    char dir[64], p[256];
    CHECK(tf_mkdtemp(dir, sizeof dir) == 0, "mkdtemp");
    lg_config c;
    toy_config(&c);
    CHECK_OK(lg_config_set(&c, "lipschitz.d.sn=true"));
    CHECK_OK(lg_config_set(&c, "train.steps=6"));
    CHECK_OK(lg_config_set(&c, "log.samples_every=0"));
    CHECK_OK(lg_config_set(&c, "log.checkpoint_every=0"));
    lg_trainer *t;
    CHECK_OK(lg_trainer_create(&t, &c));
    if (!t) return;
    dpoison dp = {.at = 2};
    snprintf(p, sizeof p, "%s/run", dir);
    lg_train_opts o = {.out_dir = p, .after_step = dpoison_hook, .user = &dp};
    CHECK_OK(lg_trainer_run(t, &o));
    CHECK(dp.n_skipped > 0, "the poisoned step was not skipped");
    CHECK(dp.state_finite_after == 1, "a skipped update left non-finite SN/BN state in D");
    lg_trainer_free(t);
}

static int file_exists(const char *p) {
    struct stat sb;
    return stat(p, &sb) == 0;
}

static void test_nonfinite_skip_and_diverge(void) {
    char dir[64], p[256];
    CHECK(tf_mkdtemp(dir, sizeof dir) == 0, "mkdtemp");
    lg_config c;
    toy_config(&c);
    CHECK_OK(lg_config_set(&c, "train.max_nonfinite=5"));
    CHECK_OK(lg_config_set(&c, "train.steps=8"));
    CHECK_OK(lg_config_set(&c, "log.checkpoint_every=2"));
    CHECK_OK(lg_config_set(&c, "log.samples_every=0"));
    CHECK_OK(lg_config_set(&c, "log.every=1"));

    /* a transient NaN: the updates of step 4 are skipped, then training goes on */
    lg_trainer *t;
    CHECK_OK(lg_trainer_create(&t, &c));
    if (!t) return;
    poison pz = {.at = 3, .restore_at = 4};
    snprintf(p, sizeof p, "%s/transient", dir);
    lg_train_opts o = {.out_dir = p, .after_step = poison_hook, .user = &pz};
    CHECK_OK(lg_trainer_run(t, &o));
    CHECK(pz.n == 8, "%d steps ran", pz.n);
    CHECK(pz.log[3].skipped == 3 && pz.log[3].nonfinite_run == 3, "step 4 skipped %d (run %d), want 3",
          pz.log[3].skipped, pz.log[3].nonfinite_run);
    CHECK(pz.log[4].skipped == 0 && pz.log[4].nonfinite_run == 0, "step 5 recovered");
    snprintf(p + strlen(p), sizeof p - strlen(p), "/ckpt_000000004.safetensors");
    CHECK(!file_exists(p), "a checkpoint was written during the non-finite streak");
    free(pz.gcopy);
    lg_trainer_free(t);

    /* a lasting NaN: 5 skipped updates in a row stop the run; the newest
     * checkpoint is the last good one and loads */
    CHECK_OK(lg_trainer_create(&t, &c));
    if (!t) return;
    poison pd = {.at = 3, .restore_at = -1};
    snprintf(p, sizeof p, "%s/diverge", dir);
    o = (lg_train_opts){.out_dir = p, .after_step = poison_hook, .user = &pd};
    lg_status s = lg_trainer_run(t, &o);
    CHECK(s == LG_ERR_NONFINITE && strstr(lg_error_msg(), "diverged"), "got %s: %s", lg_status_str(s),
          lg_error_msg());
    lg_model *g = lg_trainer_generator(t);
    CHECK(pd.gcopy && same_buffer(pd.gcopy, lg_model_params(g), pd.ng), "skipped updates changed G");
    char latest[512];
    int64_t step = -1;
    CHECK_OK(lg_checkpoint_latest(p, latest, sizeof latest, &step));
    CHECK(step == 2, "newest checkpoint is step %lld, want the last good one (2)", (long long)step);
    lg_trainer *t2;
    CHECK_OK(lg_trainer_create(&t2, &c));
    if (t2) {
        CHECK_OK(lg_trainer_load(t2, latest));
        lg_model *d2 = lg_trainer_discriminator(t2);
        int finite = 1;
        for (size_t i = 0; i < lg_model_num_params(d2); i++) finite &= isfinite(lg_model_params(d2)[i]);
        CHECK(finite, "the last good checkpoint holds non-finite weights");
        lg_trainer_free(t2);
    }
    free(pd.gcopy);
    lg_trainer_free(t);
    tf_rm_rf(dir);
}

/* ---- every example config runs a few steps ---- */

static void set_width(lg_config *c, lg_cfg_net *n, const char *net) {
    char a[64];
    int w = !strcmp(n->arch, "resnet") ? 8 : !strcmp(n->arch, "cnn") ? 4 : 16;
    snprintf(a, sizeof a, "model.%s.width=%d", net, w);
    CHECK_OK(lg_config_set(c, a));
}

static int count_lines(const char *path) {
    FILE *f = fopen(path, "r");
    if (!f) return -1;
    int n = 0, ch;
    while ((ch = fgetc(f)) != EOF) n += ch == '\n';
    fclose(f);
    return n;
}

typedef struct { int n, finite; } runlog;
static void log_hook(lg_trainer *t, const lg_train_stats *s, void *user) {
    (void)t;
    runlog *r = user;
    r->n++;
    r->finite &= isfinite(s->loss_d) && isfinite(s->loss_g) && s->skipped == 0;
}

/* c = the defaults, data.path = a fresh temp dir (into tmp) of n 8x8 IDX
 * images, then sets (NULL-terminated key=value). */
static void idx8_config(lg_config *c, char *tmp, size_t cap, int n, const char *const *sets) {
    char a[600];
    CHECK(tf_mkdtemp(tmp, cap) == 0, "mkdtemp");
    CHECK(tf_write_idx_dir_sized(tmp, n, 8) == 0, "8x8 idx");
    lg_config_default(c);
    snprintf(a, sizeof a, "data.path=%s", tmp);
    CHECK_OK(lg_config_set(c, a));
    for (int i = 0; sets[i]; i++) CHECK_OK(lg_config_set(c, sets[i]));
}

/* data.format idx is any IDX file, not only MNIST's 28x28: 8x8 images train
 * a CNN at their own size (the config used to assume 28, refusing the CNN
 * as "not a multiple of 8"), and a pad below the native size is refused by
 * the loader, naming the file. */
static void test_idx_other_size(void) {
    char tmp[64];
    const char *sets[] = {"data.format=idx", "model.g.arch=cnn", "model.d.arch=cnn", "model.g.width=4",
                          "model.d.width=4", "model.z_dim=4", "train.steps=1", "train.n_dis=1", "train.batch_d=4",
                          "train.batch_g=4", "threads=1", "eval.every=0", NULL};
    lg_config c;
    idx8_config(&c, tmp, sizeof tmp, 12, sets);
    CHECK_OK(lg_config_validate(&c));
    lg_trainer *t = NULL;
    CHECK_OK(lg_trainer_create(&t, &c));
    if (t) {
        lg_train_stats st;
        CHECK_OK(lg_trainer_step(t, &st));
        CHECK(isfinite(st.loss_d) && isfinite(st.loss_g), "8x8 idx step: %g %g", st.loss_d, st.loss_g);
        lg_trainer_free(t);
    }
    /* padding 8x8 to 16 is fine; to 4 is not (the loader's check) */
    CHECK_OK(lg_config_set(&c, "data.image_size=16"));
    CHECK_OK(lg_config_validate(&c));
    CHECK_OK(lg_config_set(&c, "data.image_size=4"));
    CHECK_OK(lg_config_set(&c, "model.g.arch=mlp")); /* a cnn needs a multiple of 8 first */
    CHECK_OK(lg_config_set(&c, "model.d.arch=mlp"));
    lg_status s = lg_trainer_create(&t, &c);
    CHECK(s != LG_OK && strstr(lg_error_msg(), "train-images-idx3-ubyte") && strstr(lg_error_msg(), "pad"),
          "pad 8x8 to 4: %s (%s)", lg_status_str(s), lg_error_msg());
    if (s == LG_OK) lg_trainer_free(t);
    /* mnist/fashion-mnist are 28x28: that is still checked by the config */
    CHECK_OK(lg_config_set(&c, "model.g.arch=cnn"));
    CHECK_OK(lg_config_set(&c, "model.d.arch=cnn"));
    CHECK_OK(lg_config_set(&c, "data.format=fashion-mnist"));
    CHECK_OK(lg_config_set(&c, "data.image_size=16"));
    CHECK(lg_config_validate(&c) == LG_ERR_INVALID_ARG && strstr(lg_error_msg(), "28x28"), "fashion-mnist 16: %s",
          lg_error_msg());
    CHECK_OK(lg_config_set(&c, "data.image_size=0"));
    CHECK(lg_config_validate(&c) == LG_ERR_INVALID_ARG && strstr(lg_error_msg(), "multiple of 8"),
          "fashion-mnist native 28 with a cnn: %s", lg_error_msg());
}

/* Batch norm needs 2+ values per channel in a training forward: refused at
 * create, naming the batch key and the bn key, not at the first step. D
 * with BN runs real and fake in separate passes, so batch_d 1 is too small
 * for it even though [real; fake] would hold 2. A conv G's first BN sees a
 * (side/8)^2 map, so batch 1 is fine on 32x32 images. */
static void test_bn_batch_refused(void) {
    lg_config c;
    lg_config_default(&c);
    const char *sets[] = {"data.format=ring8", "data.toy_n=64", "model.g.arch=mlp", "model.d.arch=mlp",
                          "model.g.width=8", "model.d.width=8", "model.z_dim=4", "model.g.bn=false", "model.d.bn=true",
                          "lipschitz.d.sn=false", "train.steps=1", "train.n_dis=1", "train.batch_d=1",
                          "train.batch_g=4", "threads=1", NULL};
    for (int i = 0; sets[i]; i++) CHECK_OK(lg_config_set(&c, sets[i]));
    lg_trainer *t = NULL;
    lg_status s = lg_trainer_create(&t, &c);
    CHECK(s == LG_ERR_INVALID_ARG && strstr(lg_error_msg(), "train.batch_d") && strstr(lg_error_msg(), "model.d.bn"),
          "D bn, batch_d 1: %s (%s)", lg_status_str(s), lg_error_msg());
    if (t) lg_trainer_free(t), t = NULL;
    CHECK_OK(lg_config_set(&c, "train.batch_d=2"));
    CHECK_OK(lg_config_set(&c, "model.g.bn=true"));
    CHECK_OK(lg_config_set(&c, "train.batch_g=1"));
    s = lg_trainer_create(&t, &c);
    CHECK(s == LG_ERR_INVALID_ARG && strstr(lg_error_msg(), "train.batch_g") && strstr(lg_error_msg(), "model.g.bn"),
          "G bn, batch_g 1: %s (%s)", lg_status_str(s), lg_error_msg());
    if (t) lg_trainer_free(t), t = NULL;
    CHECK_OK(lg_config_set(&c, "train.batch_g=2"));
    CHECK_OK(lg_trainer_create(&t, &c));
    if (t) {
        lg_train_stats st;
        CHECK_OK(lg_trainer_step(t, &st));
        lg_trainer_free(t), t = NULL;
    }
    /* a CNN G on 32x32 CIFAR records: batch 1 gives 16 values per channel */
    char tmp[64], cifar[256], a[600];
    CHECK(tf_mkdtemp(tmp, sizeof tmp) == 0, "mkdtemp");
    CHECK(tf_write_cifar(tmp, 4, cifar, sizeof cifar) == 0, "tiny cifar");
    lg_config_default(&c);
    snprintf(a, sizeof a, "data.path=%s", cifar);
    CHECK_OK(lg_config_set(&c, a));
    const char *cs[] = {"data.format=cifar10", "model.g.arch=cnn", "model.d.arch=cnn", "model.g.width=4",
                        "model.d.width=4", "model.z_dim=4", "train.steps=1", "train.n_dis=1", "train.batch_d=1",
                        "train.batch_g=1", "threads=1", "eval.every=0", NULL};
    for (int i = 0; cs[i]; i++) CHECK_OK(lg_config_set(&c, cs[i]));
    CHECK_OK(lg_trainer_create(&t, &c));
    if (t) {
        lg_train_stats st;
        CHECK_OK(lg_trainer_step(t, &st));
        lg_trainer_free(t);
    }
}

/* SN with weight clipping (0.01) after RMSProp steps of lr 1e-2: weights of
 * exactly +-0.01 made W^T u exactly 0 in a power iteration, v the zero
 * vector and sigma 0, and every later update was skipped until the run
 * diverged at step 8 (all of seeds 1-3). With clipping, SN keeps such a
 * vector's previous value (lipschitz.h keep_zero): the run completes. */
static void test_sn_clip_no_collapse(void) {
    char tmp[64];
    const char *sets[] = {"data.format=idx", "model.g.arch=resnet", "model.d.arch=resnet", "model.g.width=4",
                          "model.d.width=4", "model.z_dim=4", "loss=wasserstein", "lipschitz.d.sn=true",
                          "lipschitz.d.clip=0.01", "optim.g.lr=1e-2", "optim.d.kind=rmsprop", "optim.d.beta1=0",
                          "optim.d.lr=1e-2", "train.n_dis=2", "train.batch_d=4", "train.batch_g=4",
                          "train.steps=14", "threads=1", "eval.every=0", "seed=1", NULL};
    lg_config c;
    idx8_config(&c, tmp, sizeof tmp, 32, sets);
    lg_trainer *t = NULL;
    CHECK_OK(lg_trainer_create(&t, &c));
    if (!t) return;
    int skipped = 0;
    lg_status s = LG_OK;
    for (int i = 0; i < 14 && s == LG_OK; i++) {
        lg_train_stats st;
        s = lg_trainer_step(t, &st);
        skipped += st.skipped;
    }
    CHECK(s == LG_OK && skipped == 0, "SN + clipping: %s (%s), %d updates skipped", lg_status_str(s),
          s == LG_OK ? "" : lg_error_msg(), skipped);
    lg_trainer_free(t);
}

static void test_example_configs_run(void) {
    const char *cdir = tf_configs_dir();
    CHECK(cdir != NULL, "configs/ not found");
    if (!cdir) return;
    char tmp[64], cifar[256], p[512];
    CHECK(tf_mkdtemp(tmp, sizeof tmp) == 0, "mkdtemp");
    CHECK(tf_write_cifar(tmp, 24, cifar, sizeof cifar) == 0, "tiny cifar");
    CHECK(tf_write_idx_dir(tmp, 24) == 0, "tiny idx");
    DIR *d = opendir(cdir);
    struct dirent *e;
    int n = 0;
    while (d && (e = readdir(d))) {
        size_t l = strlen(e->d_name);
        if (l < 6 || strcmp(e->d_name + l - 5, ".yaml")) continue;
        snprintf(p, sizeof p, "%s/%s", cdir, e->d_name);
        lg_config c;
        lg_config_default(&c);
        CHECK_OK(lg_config_load_file(&c, p));
        char a[600];
        if (!strcmp(c.data.format, "cifar10")) snprintf(a, sizeof a, "data.path=%s", cifar);
        else if (lg_config_is_toy(&c)) snprintf(a, sizeof a, "data.toy_n=256");
        else snprintf(a, sizeof a, "data.path=%s", tmp);
        CHECK_OK(lg_config_set(&c, a));
        set_width(&c, &c.model.g, "g");
        set_width(&c, &c.model.d, "d");
        const char *sets[] = {"train.steps=2", "train.n_dis=1", "train.batch_d=2", "train.batch_g=2", "threads=1",
                              "log.every=1", "log.samples_every=1", "log.checkpoint_every=1",
                              "log.keep=1", "log.sample_n=4", NULL};
        for (int i = 0; sets[i]; i++) CHECK_OK(lg_config_set(&c, sets[i]));
        if (c.lipschitz.d.sr_gamma > 0) CHECK_OK(lg_config_set(&c, "lipschitz.d.sr_every=1"));
        lg_trainer *t;
        lg_status s = lg_trainer_create(&t, &c);
        CHECK(s == LG_OK, "%s: %s", p, lg_error_msg());
        if (s != LG_OK) continue;
        char out[600];
        snprintf(out, sizeof out, "%s/run_%.*s", tmp, (int)(l - 5), e->d_name);
        runlog rl = {0, 1};
        lg_train_opts o = {.out_dir = out, .after_step = log_hook, .user = &rl};
        s = lg_trainer_run(t, &o);
        CHECK(s == LG_OK, "%s: %s", p, lg_error_msg());
        CHECK(rl.n == 2 && rl.finite, "%s: %d steps, finite %d", p, rl.n, rl.finite);
        char f[700];
        snprintf(f, sizeof f, "%s/ckpt_000000002.safetensors", out);
        CHECK(file_exists(f), "%s: no final checkpoint", p);
        snprintf(f, sizeof f, "%s/ckpt_000000001.safetensors", out);
        CHECK(!file_exists(f), "%s: log.keep=1 kept an old checkpoint", p);
        snprintf(f, sizeof f, "%s/samples.png", out);
        CHECK(file_exists(f), "%s: no samples.png", p);
        snprintf(f, sizeof f, "%s/metrics.jsonl", out);
        CHECK(count_lines(f) == 2, "%s: metrics.jsonl has %d rows", p, count_lines(f));
        lg_trainer_free(t);
        n++;
    }
    if (d) closedir(d);
    CHECK(n >= 7, "ran %d example configs", n);
    tf_rm_rf(tmp);
}


/* QA item 12: the progress line of the diverging step and the divergence
 * message give the same step number, in both step paths (the classic one
 * and the sync-free one that device backends use). D is poisoned after
 * step 3 for good; with n_dis 2 and max_nonfinite 5, step 4 skips its two
 * D updates and its G update (3 in a row) and step 5's second D update is
 * the 5th: the run diverges at step 5. */
static void poison_d_hook(lg_trainer *t, const lg_train_stats *s, void *user) {
    (void)user;
    if (s->step == 3) lg_model_params(lg_trainer_discriminator(t))[0] = NAN;
}

static void test_diverged_step_number(void) {
    char dir[64], p[256];
    CHECK(tf_mkdtemp(dir, sizeof dir) == 0, "mkdtemp");
    for (int mode = 0; mode < 2; mode++) {
        lg_config c;
        toy_config(&c);
        const char *sets[] = {"train.max_nonfinite=5", "train.steps=8", "log.every=1", "log.samples_every=0",
                              "log.checkpoint_every=0", "log.spectra_every=0", "log.tensorboard=false", NULL};
        for (int i = 0; sets[i]; i++) CHECK_OK(lg_config_set(&c, sets[i]));
        lg_trainer *t;
        CHECK_OK(lg_trainer_create(&t, &c));
        if (!t) return;
        CHECK_OK(lg__trainer_set_step_mode(t, mode));
        char *log = NULL;
        size_t len = 0;
        FILE *f = open_memstream(&log, &len);
        snprintf(p, sizeof p, "%s/mode%d", dir, mode);
        lg_train_opts o = {.out_dir = p, .progress = f, .after_step = poison_d_hook};
        lg_status s = lg_trainer_run(t, &o);
        char msg[1024];
        snprintf(msg, sizeof msg, "%s", lg_error_msg());
        fclose(f);
        CHECK(s == LG_ERR_NONFINITE, "mode %d: %s (%s)", mode, lg_status_str(s), msg);
        long long at = -1, line_step = -1;
        const char *m = strstr(msg, "diverged at step ");
        if (m) at = atoll(m + strlen("diverged at step "));
        /* the last "step N: ... skipped" line */
        for (const char *q = log; q && (q = strstr(q, "step ")) != NULL; q++) {
            long long v;
            char tail[16];
            if (sscanf(q, "step %lld: %*d update(s) skippe%15s", &v, tail) == 2) line_step = v;
        }
        CHECK(at == 5 && line_step == 5,
              "mode %d: message says step %lld, the progress line step %lld (want 5 and 5)\n%s\n%s", mode, at,
              line_step, msg, log ? log : "");
        /* and the metrics.jsonl row of the diverged step */
        snprintf(p + strlen(p), sizeof p - strlen(p), "/metrics.jsonl");
        unsigned char *rows = NULL;
        size_t rl = 0;
        CHECK_OK(lg_file_read_all(p, &rows, &rl));
        const char *last = rows ? strstr((const char *)rows, "{\"step\":5,") : NULL;
        CHECK(last != NULL, "mode %d: no metrics row for step 5:\n%s", mode, rows ? (char *)rows : "");
        free(rows);
        free(log);
        lg_trainer_free(t);
    }
    tf_rm_rf(dir);
}

/* The divergence message and the diverged step's stats give the run as the
 * limit it reached, train.max_nonfinite, in both step paths. n_dis 3 and
 * max_nonfinite 2: after step 3 either D's weights get a NaN (every update
 * of step 4 is skipped: the sync-free step, which finishes its step, used
 * to report 4) or the data does (D's updates are skipped, G's is finite:
 * it used to report 0). The classic step stops at step 4's second update,
 * before G's, and the sync-free step applies nothing after it either (it
 * used to apply G's finite update). The newest checkpoint is step 2's and
 * holds its weights; D and G are left as they were when D was poisoned. */
typedef struct limit_poison {
    int nan_data;
    size_t ng, nd;
    float *g2, *d2;           /* (ng), (nd) G and D after step 2 (checkpointed) */
    float *g3, *d3;           /* G and D after step 3, D poisoned or not */
    lg_train_stats last;
} limit_poison;

static float *dup_floats(const float *x, size_t n) {
    float *y = malloc(n * sizeof(float));
    if (y) memcpy(y, x, n * sizeof(float));
    return y;
}

static void limit_poison_hook(lg_trainer *t, const lg_train_stats *s, void *user) {
    limit_poison *p = user;
    lg_model *g = lg_trainer_generator(t), *d = lg_trainer_discriminator(t);
    p->last = *s;
    p->ng = lg_model_num_params(g);
    p->nd = lg_model_num_params(d);
    if (s->step == 2) {
        p->g2 = dup_floats(lg_model_params(g), p->ng);
        p->d2 = dup_floats(lg_model_params(d), p->nd);
    }
    if (s->step != 3) return;
    if (p->nan_data)
        for (int64_t i = 0; i < t->data.n * lg_data_sample_size(&t->data); i++) t->data.x[i] = NAN;
    else
        lg_model_params(d)[0] = NAN;
    p->g3 = dup_floats(lg_model_params(g), p->ng);
    p->d3 = dup_floats(lg_model_params(d), p->nd);
}

static void test_diverged_count_is_limit(void) {
    char dir[64], p[256];
    CHECK(tf_mkdtemp(dir, sizeof dir) == 0, "mkdtemp");
    for (int k = 0; k < 4; k++) {
        int mode = k & 1, nan_data = k >> 1;
        lg_config c;
        toy_config(&c);
        const char *sets[] = {"train.n_dis=3", "train.max_nonfinite=2", "train.steps=8",
                              "log.every=1", "log.samples_every=0", "log.checkpoint_every=2",
                              "log.spectra_every=0", "log.tensorboard=false", NULL};
        for (int i = 0; sets[i]; i++) CHECK_OK(lg_config_set(&c, sets[i]));
        lg_trainer *t;
        CHECK_OK(lg_trainer_create(&t, &c));
        if (!t) return;
        CHECK_OK(lg__trainer_set_step_mode(t, mode));
        limit_poison lp = {.nan_data = nan_data};
        snprintf(p, sizeof p, "%s/run%d", dir, k);
        lg_train_opts o = {.out_dir = p, .after_step = limit_poison_hook, .user = &lp};
        lg_status s = lg_trainer_run(t, &o);
        char msg[1024];
        snprintf(msg, sizeof msg, "%s", lg_error_msg());
        CHECK(s == LG_ERR_NONFINITE && strstr(msg, "diverged at step 4: 2 updates in a row"),
              "mode %d, NaN %s: %s (%s), want step 4 and the limit 2", mode, nan_data ? "data" : "D",
              lg_status_str(s), msg);
        CHECK(lp.last.step == 4 && lp.last.nonfinite_run == 2,
              "mode %d, NaN %s: the diverged step's stats say step %lld, run %d (want 4, 2)", mode,
              nan_data ? "data" : "D", (long long)lp.last.step, lp.last.nonfinite_run);
        lg_model *g = lg_trainer_generator(t), *d = lg_trainer_discriminator(t);
        CHECK(lp.d3 && same_buffer(lp.d3, lg_model_params(d), lp.nd), "mode %d, NaN %s: D changed",
              mode, nan_data ? "data" : "D");
        CHECK(lp.g3 && same_buffer(lp.g3, lg_model_params(g), lp.ng), "mode %d, NaN %s: G changed",
              mode, nan_data ? "data" : "D");
        char latest[512];
        int64_t step = -1;
        CHECK_OK(lg_checkpoint_latest(p, latest, sizeof latest, &step));
        CHECK(step == 2, "mode %d: newest checkpoint is step %lld, want 2", mode, (long long)step);
        lg_trainer *t2;
        CHECK_OK(lg_trainer_create(&t2, &c));
        if (t2 && step == 2) {
            CHECK_OK(lg_trainer_load(t2, latest));
            CHECK(lp.g2 && lp.d2 &&
                      same_buffer(lp.g2, lg_model_params(lg_trainer_generator(t2)), lp.ng) &&
                      same_buffer(lp.d2, lg_model_params(lg_trainer_discriminator(t2)), lp.nd),
                  "mode %d: the step-2 checkpoint does not hold step 2's weights", mode);
        }
        lg_trainer_free(t2);
        free(lp.g2);
        free(lp.d2);
        free(lp.g3);
        free(lp.d3);
        lg_trainer_free(t);
    }
    tf_rm_rf(dir);
}

/* Largest singular value of every SR'd layer of m (linear layers: the toy
 * MLP's), exactly (LAPACK); the largest |sigma1 - 1| over them. */
static double sr_sigma_err(lg_model *m) {
    double worst = 0;
    for (int i = 0; i < lg_model_num_layers(m); i++) {
        const lg_layer_info *L = lg_model_layer(m, i);
        int r = (int)L->w->shape[0], cc = (int)(L->w->numel / L->w->shape[0]);
        double *a = malloc((size_t)r * cc * sizeof *a), s[64], sup[64]; /* (r, cc) */
        if (!a || (r < cc ? r : cc) > 64) {
            free(a);
            return 1e9;
        }
        for (int k = 0; k < r * cc; k++) a[k] = lg_model_params(m)[L->w_offset + k];
        int info = LAPACKE_dgesvd(LAPACK_ROW_MAJOR, 'N', 'N', r, cc, a, cc, s, NULL, 1, NULL, 1, sup);
        free(a);
        if (info != 0) return 1e9;
        if (fabs(s[0] - 1) > worst) worst = fabs(s[0] - 1);
    }
    return worst;
}

/* SR's place in the step does not move when an update is skipped: with
 * sr_every = n_dis = 3 SR follows the last D update of every step (SR-GAN
 * sec. 4), so after every step with no skipped update each of D's raw
 * weights has sigma1 = 1. A few NaN data points make some D updates
 * non-finite; SR used to count applied updates only, and after the first
 * partial skip it ran after the first or second D update of a step, with
 * Adam moving the weights after it (SR keeps the classic step). */
static void test_sr_phase_after_skip(void) {
    lg_config c;
    toy_config(&c);
    const char *sets[] = {"lipschitz.d.sn=true", "lipschitz.d.sr_gamma=0.5", "lipschitz.d.sr_every=3",
                          "train.n_dis=3", "train.max_nonfinite=1000", NULL};
    for (int i = 0; sets[i]; i++) CHECK_OK(lg_config_set(&c, sets[i]));
    lg_trainer *t;
    CHECK_OK(lg_trainer_create(&t, &c));
    if (!t) return;
    /* 1 point in 50 is NaN: a batch of 32 has one with probability ~0.48 */
    for (int64_t i = 0; i < t->data.n; i += 50)
        for (int64_t k = 0; k < lg_data_sample_size(&t->data); k++)
            t->data.x[i * lg_data_sample_size(&t->data) + k] = NAN;
    int partial = 0, clean_after = 0;
    double worst = 0;
    for (int step = 0; step < 30; step++) {
        lg_train_stats s;
        CHECK_OK(lg_trainer_step(t, &s));
        if (s.skipped > 0 && s.skipped < 3) partial++;
        if (s.skipped == 0 && partial) {
            clean_after++;
            double e = sr_sigma_err(lg_trainer_discriminator(t));
            if (e > worst) worst = e;
        }
    }
    CHECK(partial > 0 && clean_after >= 3, "the NaN data gave %d partly skipped steps and %d clean ones after",
          partial, clean_after);
    CHECK(worst < 1e-5, "after a step with no skipped update, a D layer has |sigma1 - 1| = %.3g (SR ran "
                        "before the step's last D update)", worst);
    printf("  SR after skips: %d partly skipped steps, %d clean after them, max |sigma1-1| %.2g\n", partial,
           clean_after, worst);
    lg_trainer_free(t);
}

/* sr_schedule steps follows the public SR-GAN code (SR after every D
 * update of every sr_every-th iteration, the first included); updates is
 * the paper's last-update rule. n_dis 2, sr_every 3: with steps, SR ends
 * steps 1, 4 and 7 (1-based); with updates, it follows D updates 3, 6, 9,
 * 12, of which 6 and 12 end steps 3 and 6. sigma1 is exactly 1 after a step
 * that ends on SR and moved by Adam after the others. */
static void test_sr_schedule_steps(void) {
    for (int by_step = 0; by_step < 2; by_step++) {
        lg_config c;
        toy_config(&c);
        const char *sets[] = {"lipschitz.d.sn=true", "lipschitz.d.sr_gamma=0.5", "lipschitz.d.sr_every=3",
                              "train.n_dis=2", NULL};
        for (int i = 0; sets[i]; i++) CHECK_OK(lg_config_set(&c, sets[i]));
        CHECK_OK(lg_config_set(&c, by_step ? "lipschitz.d.sr_schedule=steps" : "lipschitz.d.sr_schedule=updates"));
        lg_trainer *t;
        CHECK_OK(lg_trainer_create(&t, &c));
        if (!t) return;
        double on = 0, off = 1e9;
        for (int step = 1; step <= 7; step++) {
            lg_train_stats st;
            CHECK_OK(lg_trainer_step(t, &st));
            double e = sr_sigma_err(lg_trainer_discriminator(t));
            if (by_step ? (step - 1) % 3 == 0 : step % 3 == 0) {
                if (e > on) on = e;
            } else if (e < off) {
                off = e;
            }
        }
        CHECK(on < 1e-5, "sr_schedule %s: a step that ends on SR has |sigma1 - 1| = %.3g",
              by_step ? "steps" : "updates", on);
        CHECK(off > 1e-5, "sr_schedule %s: a step that should not end on SR has |sigma1 - 1| = %.3g",
              by_step ? "steps" : "updates", off);
        printf("  sr_schedule %s: max |sigma1-1| after SR steps %.2g, min after the others %.2g\n",
               by_step ? "steps" : "updates", on, off);
        lg_trainer_free(t);
    }
}

/* QA item 11: the progress line labels D's sigma column by what it is. */
static void test_progress_sigma_label(void) {
    char dir[64], p[256], cifar[256];
    CHECK(tf_mkdtemp(dir, sizeof dir) == 0, "mkdtemp");
    CHECK(tf_write_cifar(dir, 6, cifar, sizeof cifar) == 0, "tiny cifar");
    struct { const char *sets[8]; const char *want; } cases[] = {
        {{"lipschitz.d.sn=true", NULL}, "D raw sigma min/mean/max "},
        {{"lipschitz.d.sn=false", "lipschitz.d.clip=0.1", NULL}, NULL}, /* nothing normalized: no column */
        {{"data.format=cifar10", "model.g.arch=cnn", "model.d.arch=cnn", "model.g.width=4", "model.d.width=4",
          "lipschitz.d.sn=false", "lipschitz.d.toeplitz_k=2", NULL},
         "D raw op-norm min/mean/max "},
    };
    for (int k = 0; k < 3; k++) {
        lg_config c;
        toy_config(&c);
        char a[300];
        snprintf(a, sizeof a, "data.path=%s", cifar);
        if (k == 2) CHECK_OK(lg_config_set(&c, a));
        const char *common[] = {"train.steps=1", "train.batch_d=4", "train.batch_g=4", "log.every=1",
                                "log.samples_every=0", "log.spectra_every=0", "log.tensorboard=false", NULL};
        for (int i = 0; common[i]; i++) CHECK_OK(lg_config_set(&c, common[i]));
        for (int i = 0; cases[k].sets[i]; i++) CHECK_OK(lg_config_set(&c, cases[k].sets[i]));
        lg_trainer *t;
        CHECK_OK(lg_trainer_create(&t, &c));
        if (!t) continue;
        char *log = NULL;
        size_t len = 0;
        FILE *f = open_memstream(&log, &len);
        snprintf(p, sizeof p, "%s/run%d", dir, k);
        lg_train_opts o = {.out_dir = p, .progress = f};
        CHECK_OK(lg_trainer_run(t, &o));
        fclose(f);
        const char *line = log ? strstr(log, "step 1/1") : NULL;
        CHECK(line != NULL, "case %d: no progress line:\n%s", k, log ? log : "");
        if (line) {
            CHECK(!strstr(line, "sigma(D)"), "case %d: the unlabelled sigma(D) is back: %s", k, line);
            if (cases[k].want) CHECK(strstr(line, cases[k].want) != NULL, "case %d: want '%s' in %s", k, cases[k].want, line);
            else CHECK(!strstr(line, " raw "), "case %d: a sigma column without SN/Toeplitz: %s", k, line);
        }
        free(log);
        lg_trainer_free(t);
    }
    tf_rm_rf(dir);
}

/* ---- threads: a trainer's count is its own, the host's is left alone ---- */

/* The three counts a host program sees. */
typedef struct host_threads {
    int kernels, omp, blas;
} host_threads;

static host_threads host_threads_now(void) {
    host_threads h = {lg_cpu_threads(), omp_get_max_threads(), openblas_get_num_threads()};
    return h;
}

static int host_threads_eq(host_threads a, host_threads b) {
    return a.kernels == b.kernels && a.omp == b.omp && a.blas == b.blas;
}

/* A tiny CNN on generated CIFAR records: its reductions and convolution
 * chunks depend on the thread count, so 1 and 2 threads round differently
 * (checked below), unlike the toy MLP whose kernels all run on one thread. */
static void threads_config(lg_config *c, const char *cifar, int threads) {
    lg_config_default(c);
    char a[600];
    snprintf(a, sizeof a, "data.path=%s", cifar);
    CHECK_OK(lg_config_set(c, a));
    const char *sets[] = {"data.format=cifar10", "model.z_dim=8", "model.g.arch=cnn", "model.d.arch=cnn",
                          "model.g.width=4", "model.d.width=4", "train.steps=3", "train.n_dis=1",
                          "train.batch_d=8", "train.batch_g=8", "seed=9", "log.every=1",
                          "log.samples_every=0", "log.checkpoint_every=0", NULL};
    for (int i = 0; sets[i]; i++) CHECK_OK(lg_config_set(c, sets[i]));
    c->threads = threads;
}

static host_threads g_seen; /* the counts inside lg_trainer_run's after_step */
static void threads_hook(lg_trainer *t, const lg_train_stats *s, void *user) {
    (void)t, (void)s, (void)user;
    g_seen = host_threads_now();
}

static void test_threads_host_restored(void) {
    char dir[64], cifar[128], p[160];
    CHECK(tf_mkdtemp(dir, sizeof dir) == 0 && tf_write_cifar(dir, 16, cifar, sizeof cifar) == 0, "tiny cifar");
    /* the host's counts, all different from each other and from the trainer's 2 */
    lg_cpu_set_threads(4);
    openblas_set_num_threads(3); /* also sets OpenMP's, to 3 */
    omp_set_num_threads(5);
    const host_threads host = host_threads_now();
    CHECK(host.kernels == 4 && host.blas == 3 && host.omp == 5, "host counts %d %d %d", host.kernels,
          host.blas, host.omp);
    lg_config c;
    threads_config(&c, cifar, 2);
    lg_trainer *t;
    CHECK_OK(lg_trainer_create(&t, &c));
    if (!t) goto out;
    host_threads h = host_threads_now();
    CHECK(host_threads_eq(h, host), "after lg_trainer_create: kernels %d omp %d blas %d, host's 4 5 3",
          h.kernels, h.omp, h.blas);
    CHECK(lg_trainer_threads(t) == 2, "lg_trainer_threads %d", lg_trainer_threads(t));
    lg_train_stats st;
    CHECK_OK(lg_trainer_step(t, &st));
    h = host_threads_now();
    CHECK(host_threads_eq(h, host), "after lg_trainer_step: kernels %d omp %d blas %d, host's 4 5 3",
          h.kernels, h.omp, h.blas);
    snprintf(p, sizeof p, "%s/t.safetensors", dir);
    CHECK_OK(lg_trainer_save(t, p));
    CHECK_OK(lg_trainer_load(t, p));
    h = host_threads_now();
    CHECK(host_threads_eq(h, host), "after save/load: kernels %d omp %d blas %d", h.kernels, h.omp, h.blas);
    /* the run applies the trainer's count (the callback sees it) and gives the host's back */
    snprintf(p, sizeof p, "%s/run", dir);
    memset(&g_seen, 0, sizeof g_seen);
    lg_train_opts o = {.out_dir = p, .after_step = threads_hook};
    CHECK_OK(lg_trainer_run(t, &o));
    CHECK(g_seen.kernels == 2 && g_seen.omp == 2 && g_seen.blas == 2,
          "inside lg_trainer_run: kernels %d omp %d blas %d, want the trainer's 2", g_seen.kernels,
          g_seen.omp, g_seen.blas);
    h = host_threads_now();
    CHECK(host_threads_eq(h, host), "after lg_trainer_run: kernels %d omp %d blas %d", h.kernels, h.omp,
          h.blas);
    /* and when a call fails (a run directory that is a file) */
    o.out_dir = cifar;
    lg_error_clear();
    CHECK(lg_trainer_run(t, &o) != LG_OK, "run into a file");
    lg_error_clear();
    h = host_threads_now();
    CHECK(host_threads_eq(h, host), "after a failed run: kernels %d omp %d blas %d", h.kernels, h.omp, h.blas);
    lg_trainer_free(t);
out:
    lg_cpu_set_threads(0);
    tf_rm_rf(dir);
}

/* D's and G's parameters after `steps` steps of each trainer, taking turns:
 * into d[k], g[k] (malloc'd). */
static void threads_turns(lg_trainer **t, int n, int steps, float **d, float **g) {
    lg_train_stats st;
    for (int i = 0; i < steps; i++)
        for (int k = 0; k < n; k++) CHECK_OK(lg_trainer_step(t[k], &st));
    for (int k = 0; k < n; k++) {
        lg_model *md = lg_trainer_discriminator(t[k]), *mg = lg_trainer_generator(t[k]);
        d[k] = dup_floats(lg_model_params(md), lg_model_num_params(md));
        g[k] = dup_floats(lg_model_params(mg), lg_model_num_params(mg));
    }
}

static void test_threads_trainers_interleaved(void) {
    char dir[64], cifar[128];
    CHECK(tf_mkdtemp(dir, sizeof dir) == 0 && tf_write_cifar(dir, 16, cifar, sizeof cifar) == 0, "tiny cifar");
    lg_cpu_set_threads(3); /* a host count neither trainer uses */
    lg_config c[2];
    threads_config(&c[0], cifar, 1);
    threads_config(&c[1], cifar, 2);
    float *d1[2] = {0}, *g1[2] = {0}, *d2[2] = {0}, *g2[2] = {0};
    lg_trainer *t[2] = {0, 0};
    size_t nd = 0, ng = 0;
    for (int k = 0; k < 2; k++) { /* each alone */
        CHECK_OK(lg_trainer_create(&t[0], &c[k]));
        if (!t[0]) goto out;
        nd = lg_model_num_params(lg_trainer_discriminator(t[0]));
        ng = lg_model_num_params(lg_trainer_generator(t[0]));
        threads_turns(t, 1, 2, &d1[k], &g1[k]);
        lg_trainer_free(t[0]);
        t[0] = NULL;
    }
    /* both alive, created in turn and stepped in turn */
    CHECK_OK(lg_trainer_create(&t[0], &c[0]));
    CHECK_OK(lg_trainer_create(&t[1], &c[1]));
    if (!t[0] || !t[1]) goto out;
    threads_turns(t, 2, 2, d2, g2);
    for (int k = 0; k < 2; k++)
        CHECK(d1[k] && d2[k] && g1[k] && g2[k] && same_buffer(d1[k], d2[k], nd) && same_buffer(g1[k], g2[k], ng),
              "threads %d: the trainer taking turns with another of threads %d computed other weights "
              "than alone", c[k].threads, c[1 - k].threads);
    /* the comparison has power only if the counts round differently */
    CHECK(d1[0] && d1[1] && !same_buffer(d1[0], d1[1], nd),
          "1 and 2 threads gave the same D weights: this test needs a model whose rounding depends on "
          "the thread count");
    CHECK(lg_cpu_threads() == 3 && omp_get_max_threads() == 3, "host count changed to %d / %d",
          lg_cpu_threads(), omp_get_max_threads());
out:
    for (int k = 0; k < 2; k++) {
        lg_trainer_free(t[k]);
        free(d1[k]), free(g1[k]), free(d2[k]), free(g2[k]);
    }
    lg_cpu_set_threads(0);
    tf_rm_rf(dir);
}

/* lg_generate's arguments: n < 0 and a NULL out (n > 0) are refused in one
 * line; n = 0 needs no buffer. */
static void test_generate_args(void) {
    lg_config c;
    toy_config(&c);
    lg_trainer *t;
    CHECK_OK(lg_trainer_create(&t, &c));
    if (!t) return;
    lg_model *g = lg_trainer_generator(t);
    float buf[4 * 2];
    lg_error_clear();
    lg_status s = lg_generate(g, lg_backend_cpu(), -1, 1, buf);
    CHECK(s == LG_ERR_INVALID_ARG && strstr(lg_error_msg(), "n is -1") && !strchr(lg_error_msg(), '\n'),
          "n = -1: %s (%s)", lg_status_str(s), lg_error_msg());
    lg_error_clear();
    s = lg_generate(g, lg_backend_cpu(), 4, 1, NULL);
    CHECK(s == LG_ERR_INVALID_ARG && strstr(lg_error_msg(), "out is NULL"), "out NULL: %s (%s)",
          lg_status_str(s), lg_error_msg());
    lg_error_clear();
    s = lg_generate(NULL, lg_backend_cpu(), 4, 1, buf);
    CHECK(s == LG_ERR_INVALID_ARG && strstr(lg_error_msg(), "g is NULL"), "g NULL: %s (%s)",
          lg_status_str(s), lg_error_msg());
    CHECK_OK(lg_generate(g, lg_backend_cpu(), 0, 1, NULL));
    CHECK_OK(lg_generate(g, lg_backend_cpu(), 4, 1, buf));
    lg_trainer_free(t);
}

int main(void) {
    LG_TEST_RUN(test_loss_values);
    LG_TEST_RUN(test_loss_gradients);
    LG_TEST_RUN(test_adam);
    LG_TEST_RUN(test_rmsprop);
    LG_TEST_RUN(test_dis_schedule);
    LG_TEST_RUN(test_dis_schedule_trainer);
    LG_TEST_RUN(test_toy_run_deterministic);
    LG_TEST_RUN(test_d_update_releases_g_intermediates);
    LG_TEST_RUN(test_d_loss_moves);
    LG_TEST_RUN(test_nonfinite_skip_and_diverge);
    LG_TEST_RUN(test_skip_restores_sn_state);
    LG_TEST_RUN(test_idx_other_size);
    LG_TEST_RUN(test_bn_batch_refused);
    LG_TEST_RUN(test_sn_clip_no_collapse);
    LG_TEST_RUN(test_example_configs_run);
    LG_TEST_RUN(test_diverged_step_number);
    LG_TEST_RUN(test_diverged_count_is_limit);
    LG_TEST_RUN(test_progress_sigma_label);
    LG_TEST_RUN(test_sr_phase_after_skip);
    LG_TEST_RUN(test_sr_schedule_steps);
    LG_TEST_RUN(test_threads_host_restored);
    LG_TEST_RUN(test_threads_trainers_interleaved);
    LG_TEST_RUN(test_generate_args);
    return lg_test_summary("test_train");
}
