/* Resampling and batch norm kernels of the CPU backend.
 *
 * Batch norm works per channel, each channel on one thread with double
 * accumulators, so statistics do not depend on the thread count. NULL
 * gamma/beta mean 1/0, NULL dgamma/dbeta/run_mean/run_var are skipped. */
#include <math.h>
#include <string.h>

#include "backend/cpu/cpu_internal.h"

/* ---- resampling, planes (nc, h, w) ---- */

void lg_cpu_upsample2x(float *y, const float *x, int64_t nc, int64_t h, int64_t w) {
    int nt = lg_cpu_nthreads();
    int64_t w2 = 2 * w;
#pragma omp parallel for num_threads(nt) if (nc * h * w >= (int64_t)LG_CPU_PAR_MIN / 4) schedule(static)
    for (int64_t p = 0; p < nc; p++) {
        const float *xp = x + p * h * w;
        float *yp = y + p * 4 * h * w;
        for (int64_t i = 0; i < h; i++) {
            float *y0 = yp + 2 * i * w2;
            const float *xr = xp + i * w;
            for (int64_t j = 0; j < w; j++) y0[2 * j] = y0[2 * j + 1] = xr[j];
            memcpy(y0 + w2, y0, sizeof(float) * w2);
        }
    }
}

/* oh, ow round down: an odd h's last row and an odd w's last column are
 * never read (PyTorch's avg_pool2d floor). */
void lg_cpu_sumpool2x2(float *y, const float *x, int64_t nc, int64_t h, int64_t w) {
    int nt = lg_cpu_nthreads();
    int64_t oh = h / 2, ow = w / 2;
#pragma omp parallel for num_threads(nt) if (nc * h * w >= (int64_t)LG_CPU_PAR_MIN) schedule(static)
    for (int64_t p = 0; p < nc; p++) {
        const float *xp = x + p * h * w;
        float *yp = y + p * oh * ow;
        for (int64_t i = 0; i < oh; i++) {
            const float *r0 = xp + 2 * i * w, *r1 = r0 + w;
            float *yr = yp + i * ow;
            for (int64_t j = 0; j < ow; j++)
                yr[j] = (r0[2 * j] + r0[2 * j + 1]) + (r1[2 * j] + r1[2 * j + 1]);
        }
    }
}

/* ---- batch norm over x (n, c, hw) ---- */

/* Sums over the (n, hw) elements of channel k, each row with four
 * independent double accumulators (fixed order, but not one long
 * dependency chain): sum a, sum (a-mu)^2, or sum a*(b-mu). */
enum { CS_SUM, CS_SQDEV, CS_DOT };

static double chan_reduce(int kind, const float *a, const float *b, double mu, int64_t n,
                          int64_t c, int64_t hw, int64_t k) {
    LG_ASSERT(kind != CS_DOT || b);
    double s = 0;
    for (int64_t i = 0; i < n; i++) {
        const float *r = a + (i * c + k) * hw, *q = b ? b + (i * c + k) * hw : NULL;
        double t[4] = {0, 0, 0, 0};
        int64_t j = 0;
        switch (kind) {
        case CS_SUM:
            for (; j + 4 <= hw; j += 4)
                for (int l = 0; l < 4; l++) t[l] += r[j + l];
            for (; j < hw; j++) t[0] += r[j];
            break;
        case CS_SQDEV:
            for (; j + 4 <= hw; j += 4)
                for (int l = 0; l < 4; l++) {
                    double d = r[j + l] - mu;
                    t[l] += d * d;
                }
            for (; j < hw; j++) t[0] += (r[j] - mu) * (r[j] - mu);
            break;
        default:
            for (; j + 4 <= hw; j += 4)
                for (int l = 0; l < 4; l++) t[l] += r[j + l] * (q[j + l] - mu);
            for (; j < hw; j++) t[0] += r[j] * (q[j] - mu);
        }
        s += (t[0] + t[1]) + (t[2] + t[3]);
    }
    return s;
}

/* y = (x - mu)*scale + shift over channel k; subtracting first keeps
 * precision when |mean| >> std */
static void chan_affine(float *y, const float *x, float mu, float scale, float shift, int64_t n,
                        int64_t c, int64_t hw, int64_t k) {
    for (int64_t i = 0; i < n; i++) {
        const float *r = x + (i * c + k) * hw;
        float *o = y + (i * c + k) * hw;
        for (int64_t j = 0; j < hw; j++) o[j] = (r[j] - mu) * scale + shift;
    }
}

void lg_cpu_bn_train(float *y, float *mean, float *rstd, const float *x, const float *gamma,
                     const float *beta, float *run_mean, float *run_var, int64_t n, int64_t c,
                     int64_t hw, float eps, float momentum) {
    int nt = lg_cpu_nthreads();
    const int64_t cnt = n * hw;
#pragma omp parallel for num_threads(nt) if (n * c * hw >= (int64_t)LG_CPU_PAR_MIN) schedule(static)
    for (int64_t k = 0; k < c; k++) {
        /* two passes (mean, then squared deviations): no cancellation */
        double mu = chan_reduce(CS_SUM, x, NULL, 0, n, c, hw, k) / (double)cnt;
        double var = chan_reduce(CS_SQDEV, x, NULL, mu, n, c, hw, k) / (double)cnt; /* biased */
        double rs = 1.0 / sqrt(var + (double)eps);
        mean[k] = (float)mu;
        rstd[k] = (float)rs;
        double g = gamma ? gamma[k] : 1.0, b = beta ? beta[k] : 0.0;
        chan_affine(y, x, (float)mu, (float)(g * rs), (float)b, n, c, hw, k);
        if (run_mean && run_var) {
            /* PyTorch: run = (1-m)*run + m*batch, unbiased batch variance */
            double unb = cnt > 1 ? var * (double)cnt / (double)(cnt - 1) : var;
            run_mean[k] = (float)((1.0 - momentum) * run_mean[k] + (double)momentum * mu);
            run_var[k] = (float)((1.0 - momentum) * run_var[k] + (double)momentum * unb);
        }
    }
}

void lg_cpu_bn_eval(float *y, const float *x, const float *gamma, const float *beta,
                    const float *run_mean, const float *run_var, int64_t n, int64_t c,
                    int64_t hw, float eps) {
    int nt = lg_cpu_nthreads();
#pragma omp parallel for num_threads(nt) if (n * c * hw >= (int64_t)LG_CPU_PAR_MIN) schedule(static)
    for (int64_t k = 0; k < c; k++) {
        double rs = 1.0 / sqrt((double)run_var[k] + (double)eps);
        double g = gamma ? gamma[k] : 1.0, b = beta ? beta[k] : 0.0;
        chan_affine(y, x, run_mean[k], (float)(g * rs), (float)b, n, c, hw, k);
    }
}

/* dx over channel k = a*dy + b*(x-mean) + d, with the per-channel constants
 * of dx = gamma*rstd * (dy - sdy/cnt - xhat * rstd*sdyx/cnt), xhat =
 * (x-mean)*rstd: both backward entries end here */
static void chan_bwd_apply(float *dx, const float *dy, const float *x, double mu, double rs,
                           double g, double sdy, double sdyx, double cnt, int64_t n, int64_t c,
                           int64_t hw, int64_t k) {
    double a = g * rs;
    const float fa = (float)a, fb = (float)(-a * rs * rs * sdyx / cnt);
    const float fd = (float)(-a * sdy / cnt), fmu = (float)mu;
    for (int64_t i = 0; i < n; i++) {
        const float *xr = x + (i * c + k) * hw, *gr = dy + (i * c + k) * hw;
        float *o = dx + (i * c + k) * hw;
        for (int64_t j = 0; j < hw; j++) o[j] = fa * gr[j] + fb * (xr[j] - fmu) + fd;
    }
}

void lg_cpu_bn_bwd(float *dx, float *dgamma, float *dbeta, const float *dy, const float *x,
                   const float *mean, const float *rstd, const float *gamma, int64_t n,
                   int64_t c, int64_t hw) {
    int nt = lg_cpu_nthreads();
    const double cnt = (double)(n * hw);
#pragma omp parallel for num_threads(nt) if (n * c * hw >= (int64_t)LG_CPU_PAR_MIN) schedule(static)
    for (int64_t k = 0; k < c; k++) {
        const double mu = mean[k], rs = rstd[k];
        double sdy = chan_reduce(CS_SUM, dy, NULL, 0, n, c, hw, k);
        double sdyx = chan_reduce(CS_DOT, dy, x, mu, n, c, hw, k); /* sum dy*(x-mean) */
        if (dbeta) dbeta[k] = (float)sdy;
        if (dgamma) dgamma[k] = (float)(sdyx * rs);
        chan_bwd_apply(dx, dy, x, mu, rs, gamma ? gamma[k] : 1.0, sdy, sdyx, cnt, n, c, hw, k);
    }
}

/* ---- batch norm in parts (statistics summed over processes) ---- */

void lg_cpu_bn_stats(float *mean, float *m2, const float *x, int64_t n, int64_t c, int64_t hw) {
    int nt = lg_cpu_nthreads();
#pragma omp parallel for num_threads(nt) if (n * c * hw >= (int64_t)LG_CPU_PAR_MIN) schedule(static)
    for (int64_t k = 0; k < c; k++) {
        double mu = chan_reduce(CS_SUM, x, NULL, 0, n, c, hw, k) / (double)(n * hw);
        mean[k] = (float)mu;
        m2[k] = (float)chan_reduce(CS_SQDEV, x, NULL, mu, n, c, hw, k);
    }
}

void lg_cpu_bn_bwd_sums(float *sdy, float *sdyx, const float *dy, const float *x,
                        const float *mean, int64_t n, int64_t c, int64_t hw) {
    int nt = lg_cpu_nthreads();
#pragma omp parallel for num_threads(nt) if (n * c * hw >= (int64_t)LG_CPU_PAR_MIN) schedule(static)
    for (int64_t k = 0; k < c; k++) {
        sdy[k] = (float)chan_reduce(CS_SUM, dy, NULL, 0, n, c, hw, k);
        sdyx[k] = (float)chan_reduce(CS_DOT, dy, x, mean[k], n, c, hw, k);
    }
}

void lg_cpu_bn_bwd_apply(float *dx, const float *dy, const float *x, const float *mean,
                         const float *rstd, const float *gamma, const float *sdy,
                         const float *sdyx, double cnt, int64_t n, int64_t c, int64_t hw) {
    int nt = lg_cpu_nthreads();
#pragma omp parallel for num_threads(nt) if (n * c * hw >= (int64_t)LG_CPU_PAR_MIN) schedule(static)
    for (int64_t k = 0; k < c; k++)
        chan_bwd_apply(dx, dy, x, mean[k], rstd[k], gamma ? gamma[k] : 1.0, sdy[k], sdyx[k], cnt,
                       n, c, hw, k);
}
