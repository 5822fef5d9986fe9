/* Toeplitz-normalized convolution (thesis 4.1.2): power iteration on the
 * convolution operator T at the layer's input size, stride and padding,
 * with T^T applied as the backend's exact adjoint (conv2d_bwd_data). */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "lipgan/ops.h"
#include "core/graph.h"
#include "lipschitz/lip_internal.h"

enum { OWN_U = 1, OWN_SIGMA = 4 };

lg_status lg_toep_init_buffers(lg_toep_state *st, const lg_backend *be, int c, int h, int w,
                               uint64_t seed, float *u, float *sigma) {
    memset(st, 0, sizeof *st);
    if (!be) be = lg_backend_cpu();
    if (c < 1 || h < 1 || w < 1)
        return lg_error_set(LG_ERR_SHAPE, "Toeplitz state for input (%d,%d,%d): sizes must be >= 1",
                            c, h, w);
    st->be = be;
    st->c = c;
    st->h = h;
    st->w = w;
    st->n_iter = 1;
    st->eps = 1e-12f;
    st->u = u;
    st->sigma = sigma;
    size_t n = (size_t)c * h * w;
    if (!st->u) {
        if (!(st->u = lg_buffer_alloc(be, n))) goto nomem;
        st->owned_ |= OWN_U;
    }
    if (!st->sigma) {
        if (!(st->sigma = lg_buffer_alloc(be, 1))) goto nomem;
        st->owned_ |= OWN_SIGMA;
    }
    be->fill(st->sigma, 0.0f, 1);
    lg_status s = lip_init_vectors(be, seed, st->u, n, NULL, 0, st->eps);
    if (s != LG_OK) {
        lg_toep_free(st);
        return s;
    }
    return LG_OK;
nomem:
    lg_toep_free(st);
    return LG_ERR_NOMEM;
}

lg_status lg_toep_init(lg_toep_state *st, const lg_backend *be, int c, int h, int w,
                       uint64_t seed) {
    return lg_toep_init_buffers(st, be, c, h, w, seed, NULL, NULL);
}

void lg_toep_free(lg_toep_state *st) {
    if (!st) return;
    if (st->be) {
        if (st->owned_ & OWN_U) lg_buffer_free(st->be, st->u);
        if (st->owned_ & OWN_SIGMA) lg_buffer_free(st->be, st->sigma);
    }
    memset(st, 0, sizeof *st);
}

float lg_toep_sigma(const lg_toep_state *st) {
    float s = 0.0f;
    if (st && st->sigma) st->be->download(&s, st->sigma, 1);
    return s;
}

/* Geometry of the layer's conv on one input of the state's size. */
static int toep_geom(const lg_toep_state *st, const lg_tensor *w, int stride, int pad,
                     lg_conv_geom *g) {
    if (w->ndim != 4 || w->shape[1] != st->c || stride < 1 || pad < 0) return 0;
    *g = (lg_conv_geom){1, st->c, st->h, st->w, (int)w->shape[0], (int)w->shape[2],
                        (int)w->shape[3], stride, pad, 0, 0};
    g->oh = lg_conv_out_size(g->h, g->kh, stride, pad);
    g->ow = lg_conv_out_size(g->w, g->kw, stride, pad);
    return g->oh >= 1 && g->ow >= 1;
}

lg_tensor *lg_toep_sigma_tensor(lg_ctx *ctx, lg_toep_state *st, lg_tensor *w, int stride,
                                int pad, int update) {
    if (!w) return NULL;
    const lg_backend *be = lg_ctx_backend(ctx);
    char sw[64];
    lg_conv_geom g;
    if (!st || !st->u || st->be != be)
        return lg_ctx_fail(ctx, LG_ERR_INVALID_ARG,
                           "Toeplitz norm: state not initialized or on another backend");
    if (!toep_geom(st, w, stride, pad, &g))
        return lg_ctx_fail(ctx, LG_ERR_SHAPE,
                           "Toeplitz norm: weight %s (stride %d, pad %d) does not fit the input "
                           "(%d,%d,%d) of the state",
                           lg_shape_str(w, sw, sizeof sw), stride, pad, st->c, st->h, st->w);
    const size_t nin = (size_t)st->c * st->h * st->w;
    const size_t nout = (size_t)g.oc * g.oh * g.ow;
    int iters = update ? st->n_iter : (st->primed ? 0 : LG_SN_PRIME_ITERS);
    if (iters > 0) {
        size_t nws = be->conv_workspace(&g);
        if (nws == 0) nws = 1;
        float *y = lg_ctx_scratch(ctx, nout);
        float *ws = lg_ctx_scratch(ctx, nws);
        if (!y || !ws) return NULL;
        for (int i = 0; i < iters; i++) { /* y <- T u / ||.||, u <- T^T y / ||.|| */
            be->conv2d(y, st->u, w->data, &g, ws);
            be->normalize(y, nout, st->eps);
            be->conv2d_bwd_data(st->u, y, w->data, &g, ws);
            be->normalize(st->u, nin, st->eps);
        }
        lg_ctx_scratch_release(ctx, ws, nws);
        lg_ctx_scratch_release(ctx, y, nout);
        st->primed = 1;
    }
    lg_tensor *ut = lg_new4(ctx, 1, st->c, st->h, st->w);
    if (!ut) return NULL;
    be->copy(ut->data, st->u, nin);
    lg_tensor *y = lg_conv2d(ctx, ut, w, NULL, stride, pad);  /* T u, differentiable in W */
    if (!y) return NULL;
    lg_tensor *yhat = lg_new(ctx, y->ndim, y->shape);         /* constant T u / ||T u|| */
    if (!yhat) return NULL;
    be->copy(yhat->data, y->data, nout);
    be->normalize(yhat->data, nout, st->eps);
    lg_tensor *sigma = lg_sum(ctx, lg_mul(ctx, y, yhat));
    if (sigma) be->copy(st->sigma, sigma->data, 1);
    return sigma;
}

lg_tensor *lg_toep_weight(lg_ctx *ctx, lg_toep_state *st, lg_tensor *w, int stride, int pad,
                          float k, int update) {
    lg_tensor *wn = lg_div(ctx, w, lg_toep_sigma_tensor(ctx, st, w, stride, pad, update));
    return k == 1.0f ? wn : lg_scale(ctx, wn, k);
}

lg_tensor *lg_toep_conv2d(lg_ctx *ctx, lg_toep_state *st, lg_tensor *x, lg_tensor *w,
                          lg_tensor *b, int stride, int pad, float k, int update) {
    if (!x || !w) return NULL;
    char sx[64];
    if (!st || x->ndim != 4 || x->shape[1] != st->c || x->shape[2] != st->h ||
        x->shape[3] != st->w)
        return lg_ctx_fail(ctx, LG_ERR_SHAPE,
                           "Toeplitz conv: input %s does not match the size (%d,%d,%d) the "
                           "operator norm is computed at",
                           lg_shape_str(x, sx, sizeof sx), st ? st->c : 0, st ? st->h : 0,
                           st ? st->w : 0);
    return lg_conv2d(ctx, x, lg_toep_weight(ctx, st, w, stride, pad, k, update), b, stride, pad);
}

/* ---- reporting: true norm, reshaped norm, Tsuzuku bound ---- */

static double dnorm(const float *x, size_t n) {
    double s = 0.0;
    for (size_t i = 0; i < n; i++) s += (double)x[i] * x[i];
    return sqrt(s);
}

static void dscale(float *x, size_t n, double nrm) {
    if (nrm < 1e-30) nrm = 1e-30;
    for (size_t i = 0; i < n; i++) x[i] = (float)(x[i] / nrm);
}

lg_status lg_conv_norms_compute(const float *w_host, int oc, int c, int kh, int kw, int h,
                                int w, int stride, int pad, int max_iter, double tol,
                                uint64_t seed, lg_conv_norms *out) {
    memset(out, 0, sizeof *out);
    lg_conv_geom g = {1, c, h, w, oc, kh, kw, stride, pad, 0, 0};
    g.oh = lg_conv_out_size(h, kh, stride, pad);
    g.ow = lg_conv_out_size(w, kw, stride, pad);
    if (oc < 1 || c < 1 || kh < 1 || kw < 1 || h < 1 || w < 1 || stride < 1 || pad < 0 ||
        g.oh < 1 || g.ow < 1)
        return lg_error_set(LG_ERR_SHAPE,
                            "conv norms: kernel (%d,%d,%d,%d) does not fit input %dx%d (stride %d, "
                            "pad %d)",
                            oc, c, kh, kw, h, w, stride, pad);
    const lg_backend *be = lg_backend_cpu();
    const size_t nin = (size_t)c * h * w, nout = (size_t)oc * g.oh * g.ow;
    const int64_t rows = oc, cols = (int64_t)c * kh * kw;
    const int64_t nsv = rows < cols ? rows : cols;
    size_t nws = be->conv_workspace(&g);
    float *x = malloc(nin * sizeof(float));
    float *y = malloc(nout * sizeof(float));
    float *ws = malloc((nws ? nws : 1) * sizeof(float));
    double *s = malloc((size_t)nsv * sizeof(double));
    lg_status st = LG_OK;
    if (!x || !y || !ws || !s) {
        st = lg_error_set(LG_ERR_NOMEM, "conv norms: out of memory for input %dx%dx%d", c, h, w);
        goto out;
    }
    /* exact reshaped-matrix norm; w (oc, c, kh, kw) is W_mat row-major */
    if ((st = lg_svd_values(w_host, rows, cols, s)) != LG_OK) goto out;
    out->reshaped = s[0];
    int nh = kh < h + 2 * pad - kh + 1 ? kh : h + 2 * pad - kh + 1;
    int nw = kw < w + 2 * pad - kw + 1 ? kw : w + 2 * pad - kw + 1;
    out->n = nh * nw;
    out->tsuzuku = sqrt((double)out->n) * out->reshaped;

    /* power iteration on T: sigma_k = ||T x_k|| for unit x_k, increasing to sigma(T) */
    if ((st = lip_init_vectors(be, seed, x, nin, NULL, 0, 1e-12f)) != LG_OK) goto out;
    double prev = 0.0, est = 0.0;
    int it;
    for (it = 0; it < max_iter; it++) {
        be->conv2d(y, x, w_host, &g, ws);
        est = dnorm(y, nout);
        dscale(y, nout, est);
        be->conv2d_bwd_data(x, y, w_host, &g, ws);
        dscale(x, nin, dnorm(x, nin));
        if (it > 0 && fabs(est - prev) <= tol * est) {
            out->converged = 1;
            it++;
            break;
        }
        prev = est;
    }
    out->iters = it;
    out->op_norm = est;
out:
    free(x);
    free(y);
    free(ws);
    free(s);
    return st;
}
