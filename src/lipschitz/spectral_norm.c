/* Spectral normalization (thesis Algorithm 1), the weight-matrix view shared
 * by every method, and the differentiable rank metric r(W). */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "lipgan/ops.h"
#include "lipgan/rng.h"
#include "lipschitz/lip_internal.h"

enum { OWN_U = 1, OWN_V = 2, OWN_SIGMA = 4 };

/* ---- weight-matrix view ---- */

int lip_view_of(int ndim, const int64_t *shape, int out_dim, lip_view *v) {
    if (ndim < 2 || ndim > 4 || out_dim < 0 || out_dim >= ndim) return 0;
    v->pre = 1;
    v->post = 1;
    for (int i = 0; i < ndim; i++) {
        if (shape[i] < 1) return 0;
        if (i < out_dim) v->pre *= shape[i];
        if (i > out_dim) v->post *= shape[i];
    }
    v->rows = shape[out_dim];
    return 1;
}

lg_status lg_weight_mat_dims(int ndim, const int64_t *shape, int out_dim, int64_t *rows,
                             int64_t *cols) {
    lip_view v;
    if (!lip_view_of(ndim, shape, out_dim, &v))
        return lg_error_set(LG_ERR_SHAPE,
                            "weight of %d dims with output dim %d: need 2-4 dims, 0 <= out_dim < ndim",
                            ndim, out_dim);
    *rows = v.rows;
    *cols = lip_cols(v);
    return LG_OK;
}

void lg_weight_to_mat(const float *w, int ndim, const int64_t *shape, int out_dim, float *mat) {
    lip_view v;
    LG_ASSERT(lip_view_of(ndim, shape, out_dim, &v));
    for (int64_t p = 0; p < v.pre; p++)
        for (int64_t o = 0; o < v.rows; o++)
            memcpy(mat + o * lip_cols(v) + p * v.post, w + (p * v.rows + o) * v.post,
                   (size_t)v.post * sizeof(float));
}

void lg_weight_from_mat(const float *mat, int ndim, const int64_t *shape, int out_dim, float *w) {
    lip_view v;
    LG_ASSERT(lip_view_of(ndim, shape, out_dim, &v));
    for (int64_t p = 0; p < v.pre; p++)
        for (int64_t o = 0; o < v.rows; o++)
            memcpy(w + (p * v.rows + o) * v.post, mat + o * lip_cols(v) + p * v.post,
                   (size_t)v.post * sizeof(float));
}

/* ---- products with W_mat on backend buffers ---- */

void lip_mv(const lg_backend *be, const float *w, lip_view v, const float *x, float *y,
            float *scratch) {
    if (v.pre == 1) { /* W_mat is w itself, (rows, post) row-major */
        be->gemm(0, 0, (int)v.rows, 1, (int)v.post, 1.0f, w, (int)v.post, x, 1, 0.0f, y, 1);
        return;
    }
    /* y[o] = sum_{p,q} w[p,o,q] x[p,q]: a broadcast product, then a reduction */
    const int64_t ws[4] = {1, v.pre, v.rows, v.post}, xs[4] = {1, v.pre, 1, v.post};
    const int64_t ys[4] = {1, 1, v.rows, 1};
    be->binary(LG_B_MUL, scratch, ws, w, ws, x, xs);
    be->sum_to(y, ys, scratch, ws);
}

void lip_mtv(const lg_backend *be, const float *w, lip_view v, const float *x, float *y,
             float *scratch) {
    if (v.pre == 1) {
        be->gemm(1, 0, (int)v.post, 1, (int)v.rows, 1.0f, w, (int)v.post, x, 1, 0.0f, y, 1);
        return;
    }
    /* y[p,q] = sum_o w[p,o,q] x[o] */
    const int64_t ws[4] = {1, v.pre, v.rows, v.post}, xs[4] = {1, 1, v.rows, 1};
    const int64_t ys[4] = {1, v.pre, 1, v.post};
    be->binary(LG_B_MUL, scratch, ws, w, ws, x, xs);
    be->sum_to(y, ys, scratch, ws);
}

void lip_outer(const lg_backend *be, lip_view v, const float *u, const float *vv, float *p) {
    const int64_t ps[4] = {1, v.pre, v.rows, v.post};
    const int64_t us[4] = {1, 1, v.rows, 1}, vs[4] = {1, v.pre, 1, v.post};
    be->binary(LG_B_MUL, p, ps, u, us, vv, vs);
}

lg_status lip_init_vectors(const lg_backend *be, uint64_t seed, float *a, size_t na, float *b,
                           size_t nb, float eps) {
    size_t n = na > nb ? na : nb;
    float *h = malloc(n * sizeof(float));
    if (!h) return lg_error_set(LG_ERR_NOMEM, "out of memory drawing a %zu-float vector", n);
    lg_rng r;
    lg_rng_init(&r, seed, LG_RNG_STREAM_SN);
    lg_rng_fill_normal(&r, h, na, 0.0f, 1.0f);
    be->upload(a, h, na);
    be->normalize(a, na, eps);
    if (b) {
        lg_rng_fill_normal(&r, h, nb, 0.0f, 1.0f);
        be->upload(b, h, nb);
        be->normalize(b, nb, eps);
    }
    free(h);
    return LG_OK;
}

/* ---- state ---- */

lg_status lg_sn_init_buffers(lg_sn_state *st, const lg_backend *be, int64_t out, int64_t in,
                             uint64_t seed, float *u, float *v, float *sigma) {
    memset(st, 0, sizeof *st);
    if (!be) be = lg_backend_cpu();
    if (out < 1 || in < 1)
        return lg_error_set(LG_ERR_SHAPE, "spectral norm of a %lld x %lld matrix: need both >= 1",
                            (long long)out, (long long)in);
    st->be = be;
    st->out = out;
    st->in = in;
    st->n_iter = 1;
    st->eps = 1e-12f;
    st->u = u;
    st->v = v;
    st->sigma = sigma;
    if (!st->u) {
        if (!(st->u = lg_buffer_alloc(be, (size_t)out))) goto nomem;
        st->owned_ |= OWN_U;
    }
    if (!st->v) {
        if (!(st->v = lg_buffer_alloc(be, (size_t)in))) goto nomem;
        st->owned_ |= OWN_V;
    }
    if (!st->sigma) {
        if (!(st->sigma = lg_buffer_alloc(be, 1))) goto nomem;
        st->owned_ |= OWN_SIGMA;
    }
    be->fill(st->sigma, 0.0f, 1);
    lg_status s = lip_init_vectors(be, seed, st->u, (size_t)out, st->v, (size_t)in, st->eps);
    if (s != LG_OK) {
        lg_sn_free(st);
        return s;
    }
    return LG_OK;
nomem:
    lg_sn_free(st);
    return LG_ERR_NOMEM; /* message set by lg_buffer_alloc */
}

lg_status lg_sn_init(lg_sn_state *st, const lg_backend *be, int64_t out, int64_t in,
                     uint64_t seed) {
    return lg_sn_init_buffers(st, be, out, in, seed, NULL, NULL, NULL);
}

void lg_sn_free(lg_sn_state *st) {
    if (!st) return;
    if (st->be) {
        if (st->owned_ & OWN_U) lg_buffer_free(st->be, st->u);
        if (st->owned_ & OWN_V) lg_buffer_free(st->be, st->v);
        if (st->owned_ & OWN_SIGMA) lg_buffer_free(st->be, st->sigma);
    }
    memset(st, 0, sizeof *st);
}

float lg_sn_sigma(const lg_sn_state *st) {
    float s = 0.0f;
    if (st && st->sigma) st->be->download(&s, st->sigma, 1);
    return s;
}

/* ---- the normalized weight ---- */

lg_tensor *lg_sn_sigma_tensor(lg_ctx *ctx, lg_sn_state *st, lg_tensor *w, int out_dim,
                              int update) {
    if (!w) return NULL;
    const lg_backend *be = lg_ctx_backend(ctx);
    lip_view v;
    char sw[64];
    if (!st || !st->u || st->be != be)
        return lg_ctx_fail(ctx, LG_ERR_INVALID_ARG,
                           "spectral norm: state not initialized or on another backend");
    if (!lip_view_of(w->ndim, w->shape, out_dim, &v) || v.rows != st->out ||
        lip_cols(v) != st->in)
        return lg_ctx_fail(ctx, LG_ERR_SHAPE,
                           "spectral norm: weight %s with output dim %d is not a %lld x %lld matrix "
                           "(the state's size)",
                           lg_shape_str(w, sw, sizeof sw), out_dim, (long long)st->out,
                           (long long)st->in);
    int iters = update ? st->n_iter : (st->primed ? 0 : LG_SN_PRIME_ITERS);
    if (iters > 0) {
        float *scratch = NULL;
        if (v.pre > 1 && !(scratch = lg_ctx_scratch(ctx, (size_t)lip_numel(v)))) return NULL;
        /* power iteration, no graph: v <- W^T u / ||.||, u <- W v / ||.|| */
        float *tv = NULL, *tu = NULL, *f = NULL;
        if (st->keep_zero && (!(tv = lg_ctx_scratch(ctx, (size_t)st->in)) ||
                              !(tu = lg_ctx_scratch(ctx, (size_t)st->out)) || !(f = lg_ctx_scratch(ctx, 1))))
            return NULL;
        for (int i = 0; i < iters; i++) {
            if (st->keep_zero) {
                lip_mtv(be, w->data, v, st->u, tv, scratch);
                lip_normalize_keep(be, st->v, tv, (size_t)st->in, f, st->eps);
                lip_mv(be, w->data, v, st->v, tu, scratch);
                lip_normalize_keep(be, st->u, tu, (size_t)st->out, f, st->eps);
                continue;
            }
            lip_mtv(be, w->data, v, st->u, st->v, scratch);
            be->normalize(st->v, (size_t)st->in, st->eps);
            lip_mv(be, w->data, v, st->v, st->u, scratch);
            be->normalize(st->u, (size_t)st->out, st->eps);
        }
        st->primed = 1;
    }
    /* sigma = u^T W_mat v = sum(w * (u v^T in w's layout)), u v^T a constant */
    lg_tensor *p = lg_new(ctx, w->ndim, w->shape);
    if (!p) return NULL;
    lip_outer(be, v, st->u, st->v, p->data);
    lg_tensor *sigma = lg_sum(ctx, lg_mul(ctx, w, p));
    if (sigma && st->keep_zero) {
        /* Clipped weights can give u^T W v = 0 exactly (in practice with the
         * stored vectors, in a pass without iteration: G's update through D),
         * and W / 0 would skip the update: in any pass, the last stored sigma
         * then stands in, added as a constant (+0 otherwise, bitwise the
         * same), on the device */
        lg_tensor *add = lg_new1(ctx, 1), *f = lg_new1(ctx, 1);
        if (!add || !f) return NULL;
        be->unary(LG_U_ABS, f->data, sigma->data, 1, 0.0f);
        be->unary(LG_U_STEP, f->data, f->data, 1, 0.0f); /* 1 if |sigma| > 0; 0 for 0 or NaN */
        be->fill(add->data, 0.0f, 1);
        be->cond_copy(add->data, st->sigma, 1, f->data);  /* f != 1: the stored sigma */
        sigma = lg_add(ctx, sigma, add);
    }
    if (sigma) be->copy(st->sigma, sigma->data, 1);
    return sigma;
}

lg_tensor *lg_sn_weight(lg_ctx *ctx, lg_sn_state *st, lg_tensor *w, int out_dim, int update) {
    return lg_div(ctx, w, lg_sn_sigma_tensor(ctx, st, w, out_dim, update));
}

/* ---- r(W) (thesis 4.2.1) ---- */

lg_tensor *lg_rank_ratio(lg_ctx *ctx, lg_sn_state *st, lg_tensor *w, int out_dim, int update) {
    lg_tensor *sigma = lg_sn_sigma_tensor(ctx, st, w, out_dim, update);
    if (!sigma) return NULL;
    lg_tensor *fro = lg_sqrt(ctx, lg_sum(ctx, lg_square(ctx, w)));
    return lg_div(ctx, fro, lg_scale(ctx, sigma, (float)st->in));
}

lg_tensor *lg_rank_penalty(lg_ctx *ctx, int n, lg_sn_state *const *st, lg_tensor *const *w,
                           const int *out_dim, float lambda, int update) {
    if (n < 1) return lg_ctx_fail(ctx, LG_ERR_INVALID_ARG, "rank penalty: no weights given");
    lg_tensor *sum = NULL;
    for (int i = 0; i < n; i++) {
        lg_tensor *r = lg_rank_ratio(ctx, st[i], w[i], out_dim ? out_dim[i] : 0, update);
        if (!r) return NULL;
        sum = sum ? lg_add(ctx, sum, r) : r;
    }
    return lg_scale(ctx, sum, -lambda);
}

double lg_rank_ratio_exact(const double *s, int64_t nsv, int64_t cols) {
    double f2 = 0.0;
    for (int64_t i = 0; i < nsv; i++) f2 += s[i] * s[i];
    if (nsv < 1 || !(s[0] > 0.0)) return 0.0;
    return sqrt(f2) / ((double)cols * s[0]);
}
