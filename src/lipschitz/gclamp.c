/* Spectral gradient clamping (thesis 4.2.3) on a gradient buffer in place. */
#include <string.h>

#include "lipschitz/lip_internal.h"

/* Device scalars in the scratch tail: the values the host used to read
 * back are computed where they live, so a clamp queues work and never
 * waits (the sync-free training step runs it; lg_gclamp_read fetches). */
enum { GC_S0, GC_NS0, GC_S1, GC_T, GC_T2, GC_MASK, GC_NCUT, GC_NSCAL };

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
    st->single = st->rows < 2 || st->cols < 2;
    st->n_iter = 1;
    st->eps = 1e-12f;
    st->ratio = ratio;
    st->tol = 1e-4f;
    const size_t r = (size_t)st->rows, c = (size_t)st->cols;
    st->u0 = lg_buffer_alloc(be, r);
    st->u1 = lg_buffer_alloc(be, r);
    st->v0 = lg_buffer_alloc(be, c);
    st->v1 = lg_buffer_alloc(be, c);
    st->scratch = lg_buffer_alloc(be, r * c + r + c + GC_NSCAL);
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
    if (st->single) return LG_OK; /* no sigma1: nothing to clamp against (lipschitz.h) */
    const lg_backend *be = st->be;
    const lip_view v = {st->pre, st->rows, st->post};
    const size_t r = (size_t)st->rows, c = (size_t)st->cols;
    float *big = st->scratch;    /* (rows*cols) broadcast products, outer product */
    float *ty = big + r * c;     /* (rows) */
    float *d = ty + r + c;       /* (GC_NSCAL) device scalars */
    static const int64_t one[4] = {1, 1, 1, 1};
    const int64_t rs[4] = {1, 1, 1, (int64_t)r};

    /* (u0, v0): top singular pair of G; sigma0 = u0^T G v0 */
    for (int i = 0; i < st->n_iter; i++) {
        lip_mtv(be, g, v, st->u0, st->v0, big);
        be->normalize(st->v0, c, st->eps);
        lip_mv(be, g, v, st->v0, st->u0, big);
        be->normalize(st->u0, r, st->eps);
    }
    lip_mv(be, g, v, st->v0, ty, big);
    be->dot(d + GC_S0, st->u0, ty, r);
    be->unary(LG_U_NEG, d + GC_NS0, d + GC_S0, 1, 0.0f);

    /* (u1, v1): top pair of M = G - sigma0 u0 v0^T, applied implicitly:
     * M^T x = G^T x - sigma0 v0 (u0.x),  M y = G y - sigma0 u0 (v0.y);
     * the rank-one corrections are gemms with k = 1 over a device scalar */
    for (int i = 0; i < st->n_iter; i++) {
        lip_mtv(be, g, v, st->u1, st->v1, big);
        be->dot(d + GC_T, st->u0, st->u1, r);
        be->binary(LG_B_MUL, d + GC_T, one, d + GC_T, one, d + GC_NS0, one);
        be->gemm(0, 0, (int)c, 1, 1, 1.0f, st->v0, 1, d + GC_T, 1, 1.0f, st->v1, 1);
        be->normalize(st->v1, c, st->eps);
        lip_mv(be, g, v, st->v1, st->u1, big);
        be->dot(d + GC_T, st->v0, st->v1, c);
        be->binary(LG_B_MUL, d + GC_T, one, d + GC_T, one, d + GC_NS0, one);
        be->gemm(0, 0, (int)r, 1, 1, 1.0f, st->u0, 1, d + GC_T, 1, 1.0f, st->u1, 1);
        be->normalize(st->u1, r, st->eps);
    }
    /* sigma1 = u1^T M v1 = u1^T G v1 - sigma0 (u1.u0)(v0.v1) */
    lip_mv(be, g, v, st->v1, ty, big);
    be->dot(d + GC_S1, st->u1, ty, r);
    be->dot(d + GC_T, st->u0, st->u1, r);
    be->dot(d + GC_T2, st->v0, st->v1, c);
    be->binary(LG_B_MUL, d + GC_T, one, d + GC_T, one, d + GC_T2, one);
    be->binary(LG_B_MUL, d + GC_T, one, d + GC_T, one, d + GC_NS0, one);
    be->binary(LG_B_ADD, d + GC_S1, one, d + GC_S1, one, d + GC_T, one);

    /* mask = [sigma0 > r sigma1 (1 + tol)] (0 for NaN), -cut = mask * (r sigma1 - sigma0) */
    be->unary(LG_U_SCALE, d + GC_T, d + GC_S1, 1, -st->ratio * (1.0f + st->tol));
    be->binary(LG_B_ADD, d + GC_T, one, d + GC_T, one, d + GC_S0, one);
    be->unary(LG_U_STEP, d + GC_MASK, d + GC_T, 1, 0.0f);
    be->unary(LG_U_SCALE, d + GC_T, d + GC_S1, 1, st->ratio);
    be->binary(LG_B_ADD, d + GC_T, one, d + GC_T, one, d + GC_NS0, one);
    be->binary(LG_B_MUL, d + GC_NCUT, one, d + GC_T, one, d + GC_MASK, one);

    /* G += (-cut) u0 v0^T: adds zeros when not clamped */
    if (v.pre == 1) {
        be->binary(LG_B_MUL, ty, rs, st->u0, rs, d + GC_NCUT, one);
        be->gemm(0, 0, (int)r, (int)c, 1, 1.0f, ty, 1, st->v0, (int)c, 1.0f, g, (int)c);
    } else {
        const int64_t gs[4] = {1, v.pre, v.rows, v.post};
        lip_outer(be, v, st->u0, st->v0, big);
        be->binary(LG_B_MUL, big, gs, big, gs, d + GC_NCUT, one);
        be->binary(LG_B_ADD, g, gs, g, gs, big, gs);
    }
    return LG_OK;
}

lg_status lg_gclamp_read(lg_gclamp_state *st) {
    if (!st || !st->be)
        return lg_error_set(LG_ERR_INVALID_ARG, "gradient clamping: state not initialized");
    if (st->single) {
        st->sigma0 = st->sigma1 = 0.0f;
        st->clamped = 0;
        return LG_OK;
    }
    const size_t r = (size_t)st->rows, c = (size_t)st->cols;
    float h[GC_NSCAL];
    st->be->download(h, st->scratch + r * c + r + c, GC_NSCAL);
    st->sigma0 = h[GC_S0];
    st->sigma1 = h[GC_S1];
    st->clamped = h[GC_MASK] == 1.0f;
    return LG_OK;
}
