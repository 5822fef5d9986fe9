/* Internal helpers of src/lipschitz: matrix-vector products with a weight
 * viewed as W_mat, written with backend kernels so they run on any backend
 * without recording a graph. */
#ifndef LIPGAN_SRC_LIPSCHITZ_LIP_INTERNAL_H
#define LIPGAN_SRC_LIPSCHITZ_LIP_INTERNAL_H

#include "lipgan/lipschitz.h"

/* A weight viewed as (pre, rows, post): rows is the output dim, W_mat is
 * (rows, pre*post) with column index p*post + q. */
typedef struct lip_view {
    int64_t pre, rows, post;
} lip_view;

/* The view of a weight; 0 on a bad shape or out_dim. */
int lip_view_of(int ndim, const int64_t *shape, int out_dim, lip_view *v);

static inline int64_t lip_cols(lip_view v) { return v.pre * v.post; }
static inline int64_t lip_numel(lip_view v) { return v.pre * v.rows * v.post; }

/* y (rows) = W_mat x, x (cols). scratch (numel) is needed only if pre > 1. */
void lip_mv(const lg_backend *be, const float *w, lip_view v, const float *x, float *y,
            float *scratch);
/* y (cols) = W_mat^T x, x (rows). scratch as lip_mv. */
void lip_mtv(const lg_backend *be, const float *w, lip_view v, const float *x, float *y,
             float *scratch);
/* p (numel, the weight's layout) = u v^T, u (rows), v (cols). */
void lip_outer(const lg_backend *be, lip_view v, const float *u, const float *vv, float *p);

/* dst (n) = t / max(||t||, eps), unless t is exactly 0: then dst keeps
 * its value (t is overwritten). f: 1 float of backend scratch. All on the
 * device, no host read, so it runs inside a captured step. */
static inline void lip_normalize_keep(const lg_backend *be, float *dst, float *t, size_t n, float *f,
                                      float eps) {
    be->dot(f, t, t, n);
    be->unary(LG_U_STEP, f, f, 1, 0.0f); /* 1 if ||t||^2 > 0, else 0 */
    be->normalize(t, n, eps);
    be->cond_copy(t, dst, n, f);         /* flag 0: t = the previous dst */
    be->copy(dst, t, n);
}

/* Fills backend buffers a (na) and b (nb, may be NULL) with N(0,1) draws of
 * lg_rng(seed, LG_RNG_STREAM_SN), a first, each normalized. */
lg_status lip_init_vectors(const lg_backend *be, uint64_t seed, float *a, size_t na, float *b,
                           size_t nb, float eps);

#endif
