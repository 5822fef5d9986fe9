/* Adam, RMSProp, the learning-rate schedule and the critic schedule (see
 * lipgan/optim.h). */
#include <string.h>

#include "lipgan/optim.h"
#include "lipgan/tensor.h"

lg_status lg_adam_init(lg_adam *a, const lg_backend *be, size_t n, float beta1,
                       float beta2, float eps) {
    memset(a, 0, sizeof *a);
    if (!(beta1 >= 0.0f && beta1 < 1.0f) || !(beta2 >= 0.0f && beta2 < 1.0f))
        return lg_error_set(LG_ERR_INVALID_ARG,
                            "adam: betas (%g, %g) must lie in [0, 1)", beta1, beta2);
    if (!(eps > 0.0f))
        return lg_error_set(LG_ERR_INVALID_ARG, "adam: eps %g must be > 0", eps);
    a->m = lg_buffer_alloc(be, 2 * (n ? n : 1));  /* one allocation: m then v */
    if (!a->m) return LG_ERR_NOMEM;
    a->v = a->m + n;
    a->be = be;
    a->n = n;
    a->beta1 = beta1;
    a->beta2 = beta2;
    a->eps = eps;
    a->kind = LG_OPTIM_ADAM;
    return LG_OK;
}

lg_status lg_rmsprop_init(lg_adam *a, const lg_backend *be, size_t n, float alpha, float eps) {
    memset(a, 0, sizeof *a);
    if (!(alpha >= 0.0f && alpha < 1.0f))
        return lg_error_set(LG_ERR_INVALID_ARG, "rmsprop: alpha %g must lie in [0, 1)", alpha);
    if (!(eps > 0.0f)) return lg_error_set(LG_ERR_INVALID_ARG, "rmsprop: eps %g must be > 0", eps);
    LG_TRY(lg_adam_init(a, be, n, 0.0f, alpha, eps));
    a->kind = LG_OPTIM_RMSPROP;
    return LG_OK;
}

void lg_adam_free(lg_adam *a) {
    if (a->m) lg_buffer_free(a->be, a->m);
    memset(a, 0, sizeof *a);
}

/* RMSProp as the backend's Adam (backend/adam_math.h), exactly:
 *  - beta1 = 0: the lerp weight is 1 - 0 = 1, so m = g - (g - m) * 0 = g for
 *    every finite g, as m is 0 before each step (reset after it, so that
 *    g - m cannot overflow);
 *  - v = v * alpha + (1 - alpha) g g is square_avg;
 *  - the bias corrections are 1: the plain `adam` entry takes them from
 *    (b1, b2, t) as 1 - b^t in double, and with t = INT64_MAX (2^63 as a
 *    double, an even integer) pow(b, t) is +0 for every b in [0, 1) (C99
 *    F.9.4.4: +0 for b = 0; b^t underflows otherwise), so step = lr / 1 =
 *    lr and the denominator is sqrt(v) / 1 + eps = sqrt(v) + eps;
 *  - the flagged entry's adam_prep forms them from its own (b1, b2),
 *    separate from adam_flagged's update constants: (0, 0) gives hp =
 *    {lr, 1, 1} (pow(0, t) = 0 for the counter t >= 1).
 * tests/test_train.c checks this against PyTorch's formula and numbers. */
#define LG_RMSPROP_T INT64_MAX

void lg_adam_step(lg_adam *a, float *params, const float *grads, float lr) {
    LG_ASSERT(a->m != NULL);
    a->t++;
    if (!a->n) return;
    if (a->kind == LG_OPTIM_RMSPROP) {
        a->be->adam(params, a->m, a->v, grads, a->n, lr, 0.0f, a->beta2, a->eps, LG_RMSPROP_T);
        a->be->fill(a->m, 0.0f, a->n);
    } else {
        a->be->adam(params, a->m, a->v, grads, a->n, lr, a->beta1, a->beta2, a->eps, a->t);
    }
}

void lg_adam_step_flagged(lg_adam *a, float *params, const float *grads, const float *lr,
                          float *tc, const float *flag, float *hp) {
    LG_ASSERT(a->m != NULL);
    const lg_backend *be = a->be;
    int rms = a->kind == LG_OPTIM_RMSPROP;
    /* RMSProp: prep with (0, 0) = no bias correction (see above) */
    be->adam_prep(hp, tc, flag, lr, a->beta1, rms ? 0.0f : a->beta2);
    if (!a->n) return;
    be->adam_flagged(params, a->m, a->v, grads, a->n, hp, a->beta1, a->beta2, a->eps);
    if (rms) be->fill(a->m, 0.0f, a->n); /* 0 already when the update was skipped */
}

float lg_lr_linear(float base, int64_t step, int64_t total) {
    if (total <= 0) return base;
    if (step >= total) return 0.0f;
    if (step < 0) step = 0;
    /* in double so the value does not depend on how the product rounds */
    return (float)((double)base * (1.0 - (double)step / (double)total));
}

int lg_dis_at(const lg_dis_schedule *s, int64_t step) {
    if (s->boost > 0 && (step < s->first || (s->every > 0 && step % s->every == 0))) return s->boost;
    return s->n_dis;
}

/* multiples of e in [0, x) */
static int64_t multiples_below(int64_t x, int64_t e) { return x > 0 ? (x - 1) / e + 1 : 0; }

int64_t lg_dis_updates(const lg_dis_schedule *s, int64_t from, int64_t to) {
    if (from < 0) from = 0;
    if (to <= from) return 0;
    int64_t boosted = 0;
    if (s->boost > 0) {
        int64_t f = s->first > 0 ? s->first : 0;
        int64_t a = from < f ? from : f, b = to < f ? to : f; /* [from, to) and [0, first) */
        boosted = b - a;
        int64_t lo = from > f ? from : f; /* past `first`: the multiples of every */
        if (s->every > 0 && to > lo) boosted += multiples_below(to, s->every) - multiples_below(lo, s->every);
    }
    return (to - from) * (int64_t)(s->n_dis + 1) + boosted * (int64_t)(s->boost - s->n_dis);
}
