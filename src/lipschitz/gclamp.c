/* Spectral gradient clamping (thesis 4.2.3) on a gradient buffer in place. */
#include <string.h>

#include "lipschitz/lip_internal.h"

lg_status lg_gclamp_init(lg_gclamp_state *st, const lg_backend *be, int ndim,
                         const int64_t *shape, int out_dim, float ratio, uint64_t seed) {
    memset(st, 0, sizeof *st);
    if (!be) be = lg_backend_cpu();
    lip_view v;
    if (!lip_view_of(ndim, shape, out_dim, &v))
        return lg_error_set(LG_ERR_SHAPE,
                            "gradient clamping: weight of %d dims with output dim %d is not a matrix",
                            ndim, out_dim);
    if (!(ratio >= 1.0f))
        return lg_error_set(LG_ERR_INVALID_ARG, "gradient clamping: ratio r = %g must be >= 1",
                            (double)ratio);
    st->be = be;
    st->pre = v.pre;
    st->rows = v.rows;
    st->post = v.post;
    st->cols = lip_cols(v);
    st->n_iter = 1;
    st->eps = 1e-12f;
    st->ratio = ratio;
    st->tol = 1e-4f;
    const size_t r = (size_t)st->rows, c = (size_t)st->cols;
    st->u0 = lg_buffer_alloc(be, r);
    st->u1 = lg_buffer_alloc(be, r);
    st->v0 = lg_buffer_alloc(be, c);
    st->v1 = lg_buffer_alloc(be, c);
    st->scratch = lg_buffer_alloc(be, r * c + r + c + 4);
    if (!st->u0 || !st->u1 || !st->v0 || !st->v1 || !st->scratch) {
        lg_gclamp_free(st);
        return LG_ERR_NOMEM;
    }
    lg_status s = lip_init_vectors(be, seed, st->u0, r, st->v0, c, st->eps);
    if (s == LG_OK) s = lip_init_vectors(be, seed + 1, st->u1, r, st->v1, c, st->eps);
    if (s != LG_OK) lg_gclamp_free(st);
    return s;
}

void lg_gclamp_free(lg_gclamp_state *st) {
    if (!st) return;
    if (st->be) {
        lg_buffer_free(st->be, st->u0);
        lg_buffer_free(st->be, st->u1);
        lg_buffer_free(st->be, st->v0);
        lg_buffer_free(st->be, st->v1);
        lg_buffer_free(st->be, st->scratch);
    }
    memset(st, 0, sizeof *st);
}

lg_status lg_gclamp_apply(lg_gclamp_state *st, float *g) {
    if (!st || !st->be || !g)
        return lg_error_set(LG_ERR_INVALID_ARG, "gradient clamping: state not initialized");
    const lg_backend *be = st->be;
    const lip_view v = {st->pre, st->rows, st->post};
    const size_t r = (size_t)st->rows, c = (size_t)st->cols;
    float *big = st->scratch;    /* (rows*cols) broadcast products, outer product */
    float *ty = big + r * c;     /* (rows) */
    float *tx = ty + r;          /* (cols) */
    float *d = tx + c;           /* (4) device scalars */
    (void)tx;

    /* (u0, v0): top singular pair of G */
    for (int i = 0; i < st->n_iter; i++) {
        lip_mtv(be, g, v, st->u0, st->v0, big);
        be->normalize(st->v0, c, st->eps);
        lip_mv(be, g, v, st->v0, st->u0, big);
        be->normalize(st->u0, r, st->eps);
    }
    lip_mv(be, g, v, st->v0, ty, big);
    be->dot(d, st->u0, ty, r);
    float sigma0;
    be->download(&sigma0, d, 1);

    /* (u1, v1): top pair of M = G - sigma0 u0 v0^T, applied implicitly:
     * M^T x = G^T x - sigma0 v0 (u0.x),  M y = G y - sigma0 u0 (v0.y);
     * the rank-one corrections are gemms with k = 1 over a device scalar */
    for (int i = 0; i < st->n_iter; i++) {
        lip_mtv(be, g, v, st->u1, st->v1, big);
        be->dot(d + 1, st->u0, st->u1, r);
        be->gemm(0, 0, (int)c, 1, 1, -sigma0, st->v0, 1, d + 1, 1, 1.0f, st->v1, 1);
        be->normalize(st->v1, c, st->eps);
        lip_mv(be, g, v, st->v1, st->u1, big);
        be->dot(d + 1, st->v0, st->v1, c);
        be->gemm(0, 0, (int)r, 1, 1, -sigma0, st->u0, 1, d + 1, 1, 1.0f, st->u1, 1);
        be->normalize(st->u1, r, st->eps);
    }
    /* sigma1 = u1^T M v1 = u1^T G v1 - sigma0 (u1.u0)(v0.v1) */
    lip_mv(be, g, v, st->v1, ty, big);
    be->dot(d + 1, st->u1, ty, r);
    be->dot(d + 2, st->u0, st->u1, r);
    be->dot(d + 3, st->v0, st->v1, c);
    float h[3];
    be->download(h, d + 1, 3);
    float sigma1 = h[0] - sigma0 * h[1] * h[2];
    st->sigma0 = sigma0;
    st->sigma1 = sigma1;
    st->clamped = 0;
    if (!(sigma0 > st->ratio * sigma1 * (1.0f + st->tol))) return LG_OK; /* untouched */
    const float cut = sigma0 - st->ratio * sigma1;
    if (v.pre == 1) { /* G -= cut u0 v0^T */
        be->gemm(0, 0, (int)r, (int)c, 1, -cut, st->u0, 1, st->v0, (int)c, 1.0f, g, (int)c);
    } else {
        const int64_t gs[4] = {1, v.pre, v.rows, v.post};
        lip_outer(be, v, st->u0, st->v0, big);
        be->unary(LG_U_SCALE, big, big, r * c, -cut);
        be->binary(LG_B_ADD, g, gs, g, gs, big, gs);
    }
    st->clamped = 1;
    return LG_OK;
}
