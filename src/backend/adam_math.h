/* Adam's arithmetic, one copy for the CPU and CUDA backends (backend.h:
 * adam, adam_prep, adam_flagged), so that the sync-free step's flagged
 * update stays bitwise the plain one on either. PyTorch's single-tensor
 * Adam with float32 state (torch/optim/adam.py):
 *   m.lerp_(g, 1-b1); v.mul_(b2).addcmul_(g, g, value=1-b2);
 *   step_size = lr / (1 - b1^t); denom = sqrt(v) / sqrt(1 - b2^t) + eps;
 *   p.addcdiv_(m, denom, value=-step_size)
 * with the bias corrections computed in double, as Python does, and the
 * scalars rounded to float as PyTorch's CPU kernels do. */
#ifndef LIPGAN_ADAM_MATH_H
#define LIPGAN_ADAM_MATH_H

#include <math.h>
#include <stddef.h>

#include "backend/hostdev.h"

/* step = lr / (1 - b1^t), bc2s = sqrt(1 - b2^t) */
LG_HD void lg_adam_bias(float lr, float b1, float b2, double t, float *step, float *bc2s) {
    const double bc1 = 1.0 - pow((double)b1, t);
    const double bc2 = 1.0 - pow((double)b2, t);
    *step = (float)((double)lr / bc1);
    *bc2s = (float)sqrt(bc2);
}

/* adam_prep (backend.h): hp (3) = {step, bc2s, 1} for the next step count
 * in tc[0] when flag[0] == 1, else hp[2] = 0. */
LG_HD void lg_adam_prep_one(float *hp, float *tc, const float *flag, const float *lr, float b1,
                            float b2) {
    if (flag[0] != 1.0f) {
        hp[2] = 0.0f;
        return;
    }
    float t = tc[0] + 1.0f;
    tc[0] = t;
    lg_adam_bias(lr[0], b1, b2, (double)t, &hp[0], &hp[1]);
    hp[2] = 1.0f;
}

/* The update's constants from b1, b2: lerp weight w = 1-b1 (and which of
 * PyTorch's two lerp formulas it picks), c2 = 1-b2. */
typedef struct lg_adam_k {
    float w, b2, c2, eps;
    int lerp_lo;
} lg_adam_k;

LG_HD lg_adam_k lg_adam_consts(float b1, float b2, float eps) {
    lg_adam_k k;
    k.w = (float)(1.0 - (double)b1);
    k.b2 = b2;
    k.c2 = (float)(1.0 - (double)b2);
    k.eps = eps;
    k.lerp_lo = k.w < 0.5f;
    return k;
}

/* One element: m, v and p updated in place. */
LG_HD void lg_adam_elem(float *p, float *m, float *v, float g, const lg_adam_k *k, float step,
                        float bc2s) {
    float mi = *m;
    mi = k->lerp_lo ? mi + k->w * (g - mi) : g - (g - mi) * (1.0f - k->w);
    float vi = *v * k->b2 + k->c2 * g * g;
    *m = mi;
    *v = vi;
    *p -= step * (mi / (sqrtf(vi) / bc2s + k->eps));
}

#endif
