/* Spectral regularization (SR-GAN, seed 004) and weight clipping (WGAN),
 * both applied in place to raw weights after an optimizer step. */
#include <lapacke.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "lipschitz/lip_internal.h"

void lg_sr_free(lg_sr_state *st) {
    if (!st) return;
    free(st->ref);
    memset(st, 0, sizeof *st);
}

lg_status lg_sr_apply(const lg_backend *be, float *w, int ndim, const int64_t *shape,
                      int out_dim, float gamma_frac, int dynamic, lg_sr_state *st) {
    if (!be) be = lg_backend_cpu();
    lip_view v;
    if (!lip_view_of(ndim, shape, out_dim, &v))
        return lg_error_set(LG_ERR_SHAPE, "SR: weight of %d dims with output dim %d is not a matrix",
                            ndim, out_dim);
    if (dynamic && !st)
        return lg_error_set(LG_ERR_INVALID_ARG, "SR: the dynamic variant needs a state");
    if (!(gamma_frac >= 0.0f && gamma_frac <= 1.0f))
        return lg_error_set(LG_ERR_INVALID_ARG, "SR: gamma fraction %g is not in [0, 1]",
                            (double)gamma_frac);
    const int64_t rows = v.rows, cols = lip_cols(v), numel = lip_numel(v);
    const int64_t n = rows < cols ? rows : cols;
    if (dynamic && st->n != 0 && st->n != n)
        return lg_error_set(LG_ERR_SHAPE,
                            "SR: the state holds a spectrum of %lld values, this weight has %lld; "
                            "use one state per layer",
                            (long long)st->n, (long long)n);
    float *wf = malloc((size_t)numel * 2 * sizeof(float));
    double *a = malloc((size_t)(rows * cols + rows * n + n * cols + 2 * n) * sizeof(double));
    lg_status status = LG_OK;
    if (!wf || !a) {
        status = lg_error_set(LG_ERR_NOMEM, "SR: out of memory for a %lld x %lld SVD",
                              (long long)rows, (long long)cols);
        goto out;
    }
    float *mat = wf + numel;
    double *u = a + rows * cols, *vt = u + rows * n, *s = vt + n * cols, *t = s + n;
    be->download(wf, w, (size_t)numel);
    lg_weight_to_mat(wf, ndim, shape, out_dim, mat);
    for (int64_t i = 0; i < rows * cols; i++) a[i] = mat[i];
    lapack_int info = LAPACKE_dgesdd(LAPACK_ROW_MAJOR, 'S', (lapack_int)rows, (lapack_int)cols, a,
                                     (lapack_int)cols, s, u, (lapack_int)n, vt, (lapack_int)cols);
    if (info != 0 || !isfinite(s[0]) || !(s[0] > 0.0)) {
        status = lg_error_set(LG_ERR_NONFINITE,
                              "SR: SVD of a %lld x %lld weight failed (info %d, s1 %g); the weight "
                              "is zero or not finite",
                              (long long)rows, (long long)cols, (int)info, s[0]);
        goto out;
    }
    int64_t gamma = (int64_t)llround((double)gamma_frac * (double)n);
    if (gamma < 1) gamma = 1;
    if (gamma > n) gamma = n;
    if (dynamic && !st->have_ref) {
        if (!(st->ref = malloc((size_t)n * sizeof(float)))) {
            status = lg_error_set(LG_ERR_NOMEM, "SR: out of memory for the recorded spectrum");
            goto out;
        }
        st->n = n;
        for (int64_t i = 0; i < n; i++) st->ref[i] = (float)(s[i] / s[0]);
        st->have_ref = 1;
    }
    for (int64_t i = 0; i < n; i++) {
        double r = s[i] / s[0];
        if (dynamic) {
            if (r > st->ref[i]) st->ref[i] = (float)r;
            if (st->ref[i] > r) r = st->ref[i];
        }
        t[i] = i < gamma ? 1.0 : r;
    }
    /* W_SR = U diag(t) V^T, i.e. (W + U D V^T) / s_1 */
    for (int64_t i = 0; i < rows; i++)
        for (int64_t j = 0; j < cols; j++) {
            double acc = 0.0;
            for (int64_t k = 0; k < n; k++) acc += u[i * n + k] * t[k] * vt[k * cols + j];
            mat[i * cols + j] = (float)acc;
        }
    lg_weight_from_mat(mat, ndim, shape, out_dim, wf);
    be->upload(w, wf, (size_t)numel);
out:
    free(wf);
    free(a);
    return status;
}

void lg_clip_weights(const lg_backend *be, float *w, size_t n, float c) {
    if (!be) be = lg_backend_cpu();
    be->unary(LG_U_CLAMP, w, w, n, c);
}
