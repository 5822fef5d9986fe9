/* Adam and the learning-rate schedule (see lipgan/optim.h). */
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
    return LG_OK;
}

void lg_adam_free(lg_adam *a) {
    if (a->m) lg_buffer_free(a->be, a->m);
    memset(a, 0, sizeof *a);
}

void lg_adam_step(lg_adam *a, float *params, const float *grads, float lr) {
    LG_ASSERT(a->m != NULL);
    a->t++;
    if (a->n) a->be->adam(params, a->m, a->v, grads, a->n, lr, a->beta1, a->beta2, a->eps, a->t);
}

float lg_lr_linear(float base, int64_t step, int64_t total) {
    if (total <= 0) return base;
    if (step >= total) return 0.0f;
    if (step < 0) step = 0;
    /* in double so the value does not depend on how the product rounds */
    return (float)((double)base * (1.0 - (double)step / (double)total));
}
