/* Exact spectra (LAPACK), host power iteration, per-weight analysis and
 * network Lipschitz bounds. */
#include <lapacke.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "lipgan/autograd.h"
#include "lipgan/ops.h"
#include "lipgan/rng.h"
#include "lipschitz/lip_internal.h"

lg_status lg_svd_values(const float *a, int64_t rows, int64_t cols, double *s) {
    if (rows < 1 || cols < 1)
        return lg_error_set(LG_ERR_SHAPE, "SVD of a %lld x %lld matrix", (long long)rows,
                            (long long)cols);
    double *d = malloc((size_t)(rows * cols) * sizeof(double));
    if (!d)
        return lg_error_set(LG_ERR_NOMEM, "out of memory for the SVD of a %lld x %lld matrix",
                            (long long)rows, (long long)cols);
    for (int64_t i = 0; i < rows * cols; i++) d[i] = a[i];
    lapack_int info = LAPACKE_dgesdd(LAPACK_ROW_MAJOR, 'N', (lapack_int)rows, (lapack_int)cols, d,
                                     (lapack_int)cols, s, NULL, (lapack_int)rows, NULL, (lapack_int)cols);
    free(d);
    if (info != 0)
        return lg_error_set(LG_ERR_NONFINITE,
                            "SVD of a %lld x %lld matrix failed (LAPACK info %d); is it finite?",
                            (long long)rows, (long long)cols, (int)info);
    return LG_OK;
}

static void fnormalize(float *x, int64_t n) {
    double s = 0.0;
    for (int64_t i = 0; i < n; i++) s += (double)x[i] * x[i];
    double d = sqrt(s);
    if (d < 1e-12) d = 1e-12;
    for (int64_t i = 0; i < n; i++) x[i] = (float)(x[i] / d);
}

double lg_power_sigma(const float *a, int64_t rows, int64_t cols, int n_iter, uint64_t seed) {
    float *u = malloc((size_t)rows * sizeof(float));
    float *v = malloc((size_t)cols * sizeof(float));
    if (!u || !v) {
        free(u);
        free(v);
        return NAN;
    }
    lg_rng r;
    lg_rng_init(&r, seed, LG_RNG_STREAM_SN);
    lg_rng_fill_normal(&r, u, (size_t)rows, 0.0f, 1.0f);
    fnormalize(u, rows);
    memset(v, 0, (size_t)cols * sizeof(float));
    for (int it = 0; it < n_iter; it++) {
        for (int64_t j = 0; j < cols; j++) {
            double acc = 0.0;
            for (int64_t i = 0; i < rows; i++) acc += (double)a[i * cols + j] * u[i];
            v[j] = (float)acc;
        }
        fnormalize(v, cols);
        for (int64_t i = 0; i < rows; i++) {
            double acc = 0.0;
            for (int64_t j = 0; j < cols; j++) acc += (double)a[i * cols + j] * v[j];
            u[i] = (float)acc;
        }
        fnormalize(u, rows);
    }
    double sigma = 0.0;
    for (int64_t i = 0; i < rows; i++) {
        double acc = 0.0;
        for (int64_t j = 0; j < cols; j++) acc += (double)a[i * cols + j] * v[j];
        sigma += u[i] * acc;
    }
    free(u);
    free(v);
    return sigma;
}

lg_status lg_spectrum_analyze(const float *w_host, int ndim, const int64_t *shape, int out_dim,
                              int input_size, int stride, int pad, lg_spectrum_info *out,
                              double *svals) {
    memset(out, 0, sizeof *out);
    int64_t rows, cols;
    LG_TRY(lg_weight_mat_dims(ndim, shape, out_dim, &rows, &cols));
    const int64_t nsv = rows < cols ? rows : cols;
    float *mat = malloc((size_t)(rows * cols) * sizeof(float));
    double *s = malloc((size_t)nsv * sizeof(double));
    lg_status st = LG_OK;
    if (!mat || !s) {
        st = lg_error_set(LG_ERR_NOMEM, "out of memory analysing a %lld x %lld weight",
                          (long long)rows, (long long)cols);
        goto out;
    }
    lg_weight_to_mat(w_host, ndim, shape, out_dim, mat);
    if ((st = lg_svd_values(mat, rows, cols, s)) != LG_OK) goto out;
    out->rows = rows;
    out->cols = cols;
    out->sigma_exact = s[0];
    out->sigma1 = nsv > 1 ? s[1] : 0.0;
    out->ratio01 = out->sigma1 > 0.0 ? s[0] / out->sigma1 : INFINITY;
    out->r = lg_rank_ratio_exact(s, nsv, cols);
    out->sigma_power = lg_power_sigma(mat, rows, cols, LG_SPECTRUM_POWER_ITERS, 0);
    if (svals) memcpy(svals, s, (size_t)nsv * sizeof(double));
    if (ndim == 4 && out_dim == 0 && input_size > 0) {
        out->is_conv = 1;
        st = lg_conv_norms_compute(w_host, (int)shape[0], (int)shape[1], (int)shape[2],
                                   (int)shape[3], input_size, input_size, stride, pad, 500, 1e-6,
                                   0, &out->conv);
    }
out:
    free(mat);
    free(s);
    return st;
}

double lg_lipschitz_upper(int n, const double *layer_norms) {
    double p = 1.0;
    for (int i = 0; i < n; i++) p *= layer_norms[i];
    return p;
}

lg_status lg_lipschitz_lower(lg_ctx *ctx, lg_critic_fn critic, void *critic_user, lg_tensor *x,
                             float *out) {
    *out = 0.0f;
    if (!x) return lg_error_set(LG_ERR_INVALID_ARG, "Lipschitz lower bound: no samples");
    int old = lg_ctx_set_grad_enabled(ctx, 1);
    lg_tensor *xl = lg_detach(ctx, x, 1);
    lg_tensor *d = xl ? critic(ctx, xl, critic_user) : NULL;
    lg_tensor *g = NULL;
    lg_status st = d ? lg_grad(ctx, lg_sum(ctx, d), NULL, 1, &xl, &g, 0) : lg_ctx_status(ctx);
    lg_ctx_set_grad_enabled(ctx, old);
    if (st == LG_OK && lg_ctx_status(ctx) != LG_OK) st = lg_ctx_status(ctx);
    if (st != LG_OK) return st;
    LG_ASSERT(g); /* lg_grad succeeded */
    const int64_t nb = g->shape[0], per = g->numel / nb;
    float *h = malloc((size_t)g->numel * sizeof(float));
    if (!h) return lg_error_set(LG_ERR_NOMEM, "Lipschitz lower bound: out of memory");
    lg_to_host(ctx, g, h);
    double best = 0.0;
    for (int64_t i = 0; i < nb; i++) {
        double s = 0.0;
        for (int64_t j = 0; j < per; j++) s += (double)h[i * per + j] * h[i * per + j];
        if (sqrt(s) > best) best = sqrt(s);
    }
    free(h);
    *out = (float)best;
    return LG_OK;
}
