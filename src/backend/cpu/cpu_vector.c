/* Vector helpers of the CPU backend: power iteration and the optimizer. */
#include <math.h>
#include <string.h>

#include "backend/adam_math.h"
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

/* Adam: the arithmetic is backend/adam_math.h's, shared with the CUDA
 * backend. The update with the step size and sqrt(bc2) already formed: */
static void adam_core(float *p, float *m, float *v, const float *g, size_t n, float step,
                      float bc2s, float b1, float b2, float eps) {
    const lg_adam_k k = lg_adam_consts(b1, b2, eps);
    int nt = lg_cpu_nthreads();
#pragma omp parallel for num_threads(nt) if (n >= LG_CPU_PAR_MIN / 4) schedule(static)
    for (size_t i = 0; i < n; i++) lg_adam_elem(p + i, m + i, v + i, g[i], &k, step, bc2s);
}

void lg_cpu_adam(float *p, float *m, float *v, const float *g, size_t n, float lr, float b1,
                 float b2, float eps, int64_t t) {
    float step, bc2s;
    lg_adam_bias(lr, b1, b2, (double)t, &step, &bc2s);
    adam_core(p, m, v, g, n, step, bc2s, b1, b2, eps);
}

void lg_cpu_adam_prep(float *hp, float *tc, const float *flag, const float *lr, float b1,
                      float b2) {
    lg_adam_prep_one(hp, tc, flag, lr, b1, b2);
}

void lg_cpu_adam_flagged(float *p, float *m, float *v, const float *g, size_t n, const float *hp,
                         float b1, float b2, float eps) {
    if (hp[2] != 1.0f) return;
    adam_core(p, m, v, g, n, hp[0], hp[1], b1, b2, eps);
}

void lg_cpu_cond_copy(float *dst, const float *src, size_t n, const float *flag) {
    if (flag[0] != 1.0f && n && dst != src) memmove(dst, src, n * sizeof *dst);
}

void lg_cpu_flag_track(float *c, float *flag) {
    if (c[1] >= c[3]) {
        flag[0] = 0.0f;
        return;
    }
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
    for (size_t i = 0; i < n; i++) bad |= !(fabsf(x[i]) < LG_FINITE_MAX); /* NaN fails too */
    y[0] = bad ? 0.0f : 1.0f;
}
