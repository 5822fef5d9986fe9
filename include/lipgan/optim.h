/* lipgan/optim.h - Adam and RMSProp over a network's contiguous parameter
 * buffer, the learning-rate schedule and the critic schedule (the EMA of G
 * is lg_model_ema_update, model.h).
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
 * RMSProp (lg_rmsprop_init; torch.optim.RMSprop with centered=False,
 * momentum=0, weight_decay=0: sq = alpha sq + (1-alpha) g^2;
 * p -= lr g / (sqrt(sq) + eps)) runs on the same struct and kernels: it is
 * Adam with beta1 = 0 and no bias correction (v is sq; m is scratch, kept 0
 * between steps).
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

typedef enum lg_optim_kind {
    LG_OPTIM_ADAM = 0,
    LG_OPTIM_RMSPROP, /* beta1 = 0, beta2 = alpha, no bias correction */
} lg_optim_kind;

typedef struct lg_adam {
    const lg_backend *be;
    size_t n;          /* number of parameters */
    float *m;          /* (n) first moment, backend memory (first half of one allocation);
                        * RMSProp: scratch, 0 between steps */
    float *v;          /* (n) second moment (second half); RMSProp: square_avg */
    int64_t t;         /* updates applied so far (Adam's bias-correction step) */
    float beta1, beta2, eps; /* RMSProp: 0, alpha, eps */
    lg_optim_kind kind;
} lg_adam;

/* Zeroed moments, t = 0. LG_ERR_INVALID_ARG for betas outside [0, 1) or
 * eps <= 0; LG_ERR_NOMEM if the buffer cannot be allocated. */
lg_status lg_adam_init(lg_adam *a, const lg_backend *be, size_t n, float beta1,
                       float beta2, float eps);
/* RMSProp: zeroed square_avg, t = 0. LG_ERR_INVALID_ARG for alpha outside
 * [0, 1) or eps <= 0; LG_ERR_NOMEM if the buffer cannot be allocated. */
lg_status lg_rmsprop_init(lg_adam *a, const lg_backend *be, size_t n, float alpha, float eps);
/* Frees the moments and zeroes a (safe on a zeroed lg_adam). */
void lg_adam_free(lg_adam *a);
/* One update: t += 1, then params (n) -= Adam(grads (n)) (or RMSProp's)
 * with learning rate lr. */
void lg_adam_step(lg_adam *a, float *params, const float *grads, float lr);
/* The same update decided on the device (the sync-free step, step_dev.c),
 * through the backend's adam_prep / adam_flagged: applied only when
 * flag[0] == 1, with the step counter tc (1) and the learning rate lr (1)
 * in backend memory (tc += 1 when applied); hp (3) is scratch. Bitwise
 * lg_adam_step's result. a->t is not touched: the caller reads tc back. */
void lg_adam_step_flagged(lg_adam *a, float *params, const float *grads, const float *lr,
                          float *tc, const float *flag, float *hp);

/* Linear decay to 0 over the run: base * (1 - step / total) for step in
 * [0, total), 0 past the end; base when total <= 0. step counts generator
 * updates already done (the thesis decays over its 50,000 G steps). */
float lg_lr_linear(float base, int64_t step, int64_t total);

/* The critic schedule of the WGAN reference code (Arjovsky et al. 2017,
 * main.py: Diters = 100 if gen_iterations < 25 or gen_iterations % 500 == 0
 * else 5): the number of D updates before G update `step` (G updates done
 * so far, from 0) is boost if boost > 0 and (step < first or (every > 0 and
 * step % every == 0)), else n_dis. */
typedef struct lg_dis_schedule {
    int n_dis;        /* D updates per G update */
    int boost;        /* D updates before the boosted G updates; 0 = off */
    int64_t first;    /* the first `first` G updates are boosted */
    int64_t every;    /* ... and every `every`-th one (step % every == 0); 0 = none */
} lg_dis_schedule;

int lg_dis_at(const lg_dis_schedule *s, int64_t step);
/* Updates (D updates plus the G update) of steps [from, to), in closed
 * form: the work left for an ETA. 0 when to <= from. */
int64_t lg_dis_updates(const lg_dis_schedule *s, int64_t from, int64_t to);

#ifdef __cplusplus
}
#endif
#endif
