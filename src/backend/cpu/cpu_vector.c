/* Vector helpers of the CPU backend: power iteration and the optimizer. */
#include <math.h>
#include <string.h>

#include "backend/cpu/cpu_internal.h"

void lg_cpu_dot(float *y, const float *a, const float *b, size_t n) {
    y[0] = (float)lg_cpu_dsum(a, b, n);
}

void lg_cpu_normalize(float *x, size_t n, float eps) {
    double nrm = sqrt(lg_cpu_dsum(x, x, n));
    float d = (float)(nrm > (double)eps ? nrm : (double)eps); /* PyTorch: x / max(||x||, eps) */
    int nt = lg_cpu_nthreads();
#pragma omp parallel for num_threads(nt) if (n >= LG_CPU_PAR_MIN) schedule(static)
    for (size_t i = 0; i < n; i++) x[i] /= d;
}

/* PyTorch's single-tensor Adam (torch/optim/adam.py), float32 state:
 *   m.lerp_(g, 1-b1); v.mul_(b2).addcmul_(g, g, value=1-b2);
 *   step_size = lr / (1 - b1^t); denom = sqrt(v) / sqrt(1 - b2^t) + eps;
 *   p.addcdiv_(m, denom, value=-step_size)
 * with the bias corrections computed in double, as Python does, and the
 * scalars rounded to float as PyTorch's CPU kernels do. */
/* The update with the step size lr/bc1 and sqrt(bc2) already formed. */
static void adam_core(float *p, float *m, float *v, const float *g, size_t n, float step,
                      float bc2s, float b1, float b2, float eps) {
    const float w = (float)(1.0 - (double)b1);      /* lerp weight */
    const float fb2 = b2, c2 = (float)(1.0 - (double)b2);
    const int lerp_lo = w < 0.5f; /* PyTorch's lerp picks its formula by weight */
    int nt = lg_cpu_nthreads();
#pragma omp parallel for num_threads(nt) if (n >= LG_CPU_PAR_MIN / 4) schedule(static)
    for (size_t i = 0; i < n; i++) {
        float gi = g[i], mi = m[i];
        mi = lerp_lo ? mi + w * (gi - mi) : gi - (gi - mi) * (1.0f - w);
        float vi = v[i] * fb2 + c2 * gi * gi;
        m[i] = mi;
        v[i] = vi;
        p[i] -= step * (mi / (sqrtf(vi) / bc2s + eps));
    }
}

void lg_cpu_adam(float *p, float *m, float *v, const float *g, size_t n, float lr, float b1,
                 float b2, float eps, int64_t t) {
    const double bc1 = 1.0 - pow((double)b1, (double)t);
    const double bc2 = 1.0 - pow((double)b2, (double)t);
    adam_core(p, m, v, g, n, (float)((double)lr / bc1), (float)sqrt(bc2), b1, b2, eps);
}

void lg_cpu_adam_prep(float *hp, float *tc, const float *flag, const float *lr, float b1,
                      float b2) {
    if (flag[0] != 1.0f) {
        hp[2] = 0.0f;
        return;
    }
    float t = tc[0] + 1.0f;
    tc[0] = t;
    const double bc1 = 1.0 - pow((double)b1, (double)t);
    const double bc2 = 1.0 - pow((double)b2, (double)t);
    hp[0] = (float)((double)lr[0] / bc1);
    hp[1] = (float)sqrt(bc2);
    hp[2] = 1.0f;
}

void lg_cpu_adam_flagged(float *p, float *m, float *v, const float *g, size_t n, const float *hp,
                         float b1, float b2, float eps) {
    if (hp[2] != 1.0f) return;
    adam_core(p, m, v, g, n, hp[0], hp[1], b1, b2, eps);
}

void lg_cpu_cond_copy(float *dst, const float *src, size_t n, const float *flag) {
    if (flag[0] != 1.0f && n && dst != src) memmove(dst, src, n * sizeof *dst);
}

void lg_cpu_flag_track(float *c, const float *flag) {
    if (flag[0] == 1.0f) {
        c[0] = 0.0f;
        return;
    }
    c[0] += 1.0f;
    c[2] += 1.0f;
    if (c[0] > c[1]) c[1] = c[0];
}

void lg_cpu_all_finite(float *y, const float *x, size_t n) {
    int bad = 0;
    int nt = lg_cpu_nthreads();
#pragma omp parallel for num_threads(nt) if (n >= LG_CPU_PAR_MIN) reduction(| : bad) schedule(static)
    for (size_t i = 0; i < n; i++) bad |= !isfinite(x[i]);
    y[0] = bad ? 0.0f : 1.0f;
}
