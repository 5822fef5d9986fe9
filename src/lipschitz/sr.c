/* Spectral regularization (SR-GAN, seed 004) and weight clipping (WGAN),
 * both applied in place to raw weights after an optimizer step. */
#include <cblas.h>
#include <lapacke.h>
#include <stdint.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "lipschitz/lip_internal.h"

void lg_sr_free(lg_sr_state *st) {
    if (!st) return;
    free(st->ref);
    memset(st, 0, sizeof *st);
}

/* The SR factors t (n) from the singular values s (n, descending):
 * 1 for the gamma largest, s_i / s_1 (or, dynamic, the recorded maximum of
 * that ratio) for the rest. LG_ERR_NOMEM if the recorded spectrum cannot be
 * allocated. */
static lg_status sr_factors(const double *s, int64_t n, float gamma_frac, int dynamic,
                            lg_sr_state *st, double *t) {
    /* rounded down as the public code's s[:n // 2] (n odd: a 128 x 27 input
     * conv compensates 13 values); the factor keeps a float fraction such as
     * 0.7f (0.69999999) from losing a value at an exact product */
    int64_t gamma = (int64_t)floor((double)gamma_frac * (double)n * (1.0 + 1e-6));
    if (gamma < 1) gamma = 1;
    if (gamma > n) gamma = n;
    if (dynamic && !st->have_ref) {
        if (!(st->ref = malloc((size_t)n * sizeof(float))))
            return lg_error_set(LG_ERR_NOMEM, "SR: out of memory for the recorded spectrum");
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
    return LG_OK;
}

/* Weights at least this large (rows * cols) take the backend's SVD when it
 * has one: on an H100, cuSOLVER's float gesvd beat the host's LAPACK from
 * 128 x 1152 up and tied at 128 x 128 (bench/bench_sr_svd.c, bench/RESULTS.md). */
#define SR_DEVICE_MIN_NUMEL 65536

/* SR with the backend's SVD, for a weight whose matrix is its own memory
 * (out_dim 0) with rows <= cols: column-major that memory is A = W^T
 * (cols x rows, m >= n), A = U S V^T, and W_SR^T = U diag(t) V^T. */
static lg_status sr_device(const lg_backend *be, float *w, int64_t rows, int64_t cols,
                           float gamma_frac, int dynamic, lg_sr_state *st) {
    const int64_t m = cols, n = rows;
    LG_ASSERT(n >= 1 && m >= n);
    float *buf = lg_buffer_alloc(be, (size_t)(m * n + n + m * n + n * n + n));
    if (!buf) return LG_ERR_NOMEM;
    float *a = buf, *s = a + m * n, *u = s + n, *vt = u + m * n, *tf = vt + n * n; /* (n) */
    /* host: s and t in double (n each), then s / t in float (n) */
    double *sd = malloc((size_t)n * (2 * sizeof(double) + sizeof(float)));
    double *t = sd ? sd + n : NULL;
    float *sh = sd ? (float *)(t + n) : NULL;
    lg_status status = sd ? LG_OK : lg_error_set(LG_ERR_NOMEM, "SR: out of memory");
    if (status == LG_OK) {
        be->copy(a, w, (size_t)(m * n));
        status = be->svd(s, u, vt, a, (int)m, (int)n);
    }
    if (status == LG_OK) {
        be->download(sh, s, (size_t)n);
        for (int64_t i = 0; i < n; i++) sd[i] = sh[i];
        if (!isfinite(sd[0]) || !(sd[0] > 0.0))
            status = lg_error_set(LG_ERR_NONFINITE,
                                  "SR: SVD of a %lld x %lld weight gave s1 %g; the weight is zero "
                                  "or not finite", (long long)rows, (long long)cols, sd[0]);
        if (status == LG_OK) status = sr_factors(sd, n, gamma_frac, dynamic, st, t);
        if (status == LG_OK) {
            for (int64_t i = 0; i < n; i++) sh[i] = (float)t[i];
            be->upload(tf, sh, (size_t)n);
            /* U's columns times t: row-major U is (n, m), rows scaled */
            const int64_t us[4] = {1, 1, n, m}, ts[4] = {1, 1, n, 1};
            be->binary(LG_B_MUL, u, us, u, us, tf, ts);
            /* row-major W_SR (n, m) = VT^T (n, n) . U'^T (n, m) */
            be->gemm(0, 0, (int)n, (int)m, (int)n, 1.0f, vt, (int)n, u, (int)m, 0.0f, w, (int)m);
        }
    }
    free(sd);
    lg_buffer_free(be, buf);
    return status;
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
    if (be->svd && out_dim == 0 && rows <= cols && numel >= SR_DEVICE_MIN_NUMEL && cols <= INT32_MAX)
        return sr_device(be, w, rows, cols, gamma_frac, dynamic, st);
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
    if ((status = sr_factors(s, n, gamma_frac, dynamic, st, t)) != LG_OK) goto out;
    /* W_SR = U diag(t) V^T, i.e. (W + U D V^T) / s_1: scale U's columns,
     * then one dgemm into the (no longer needed) input copy a */
    for (int64_t i = 0; i < rows; i++)
        for (int64_t k = 0; k < n; k++) u[i * n + k] *= t[k];
    cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)rows, (int)cols, (int)n, 1.0, u,
                (int)n, vt, (int)cols, 0.0, a, (int)cols);
    for (int64_t i = 0; i < rows * cols; i++) mat[i] = (float)a[i];
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
