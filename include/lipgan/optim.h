/* lipgan/optim.h - Adam over a network's contiguous parameter buffer and the
 * learning-rate schedule (the EMA of G is lg_model_ema_update, model.h).
 *
 * A network keeps all its trainable parameters in one buffer of n floats and
 * their gradients in another (model.h); the optimizer state is one more
 * allocation of 2n floats (m then v), and one call of the backend's `adam`
 * kernel updates everything (PyTorch semantics, bias-corrected).
 *
 *   lg_adam opt;
 *   LG_TRY(lg_adam_init(&opt, be, n, 0.0f, 0.9f, 1e-8f));     // beta1, beta2, eps
 *   for (step = 0; step < total; step++) {
 *       ... gradients into grads (n) ...
 *       lg_adam_step(&opt, params, grads, lg_lr_linear(2e-4f, step, total));
 *   }
 *   lg_adam_free(&opt);
 *
 * Everything here is deterministic: the same inputs give bitwise the same
 * outputs on a backend with a fixed thread count. */
#ifndef LIPGAN_OPTIM_H
#define LIPGAN_OPTIM_H

#include <stddef.h>
#include <stdint.h>

#include "lipgan/backend.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct lg_adam {
    const lg_backend *be;
    size_t n;          /* number of parameters */
    float *m;          /* (n) first moment, backend memory (first half of one allocation) */
    float *v;          /* (n) second moment (second half) */
    int64_t t;         /* updates applied so far (the bias-correction step) */
    float beta1, beta2, eps;
} lg_adam;

/* Zeroed moments, t = 0. LG_ERR_INVALID_ARG for betas outside [0, 1) or
 * eps <= 0; LG_ERR_NOMEM if the buffer cannot be allocated. */
lg_status lg_adam_init(lg_adam *a, const lg_backend *be, size_t n, float beta1,
                       float beta2, float eps);
/* Frees the moments and zeroes a (safe on a zeroed lg_adam). */
void lg_adam_free(lg_adam *a);
/* One update: t += 1, then params (n) -= Adam(grads (n)) with learning rate lr. */
void lg_adam_step(lg_adam *a, float *params, const float *grads, float lr);

/* Linear decay to 0 over the run: base * (1 - step / total) for step in
 * [0, total), 0 past the end; base when total <= 0. step counts generator
 * updates already done (the thesis decays over its 50,000 G steps). */
float lg_lr_linear(float base, int64_t step, int64_t total);

#ifdef __cplusplus
}
#endif
#endif
