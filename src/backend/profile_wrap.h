/* Internal: what the two backend profilers (cpu/cpu_profile.c,
 * LG_CPU_PROFILE; cuda/cuda_profile.cu, LG_CUDA_PROFILE) share, so that a
 * new compute entry of lg_backend is one row of LG_PROF_ENTRIES.
 *
 * LG_PROF_ENTRIES(X) calls X(entry, (params), (args), describe) for every
 * compute entry of the table (optional ones included: a profiler installs
 * a wrapper only where the plain table has the entry). A profiler defines
 * X to write its wrapper: call g_raw->entry args, time it, and file the
 * call under `entry` and the lg_prof_call that `describe` (an expression
 * of the parameters) returns. The memory and transfer entries (alloc, free,
 * upload, download, sync, conv_workspace) and svd are not in it: the CPU
 * profile does not time them, the CUDA one times its transfers by hand.
 *
 * Both profilers key rows by entry and a detail string made from the
 * lg_prof_call, in their own established formats (the reports are parsed
 * by tests/test_cpu_profile.c and tests/gpu/device_run.sh):
 * lg_prof_detail gives the CPU's (the op, or the convolution or gemm
 * geometry), lg_prof_geometry the CUDA's (every shape).
 *
 * C11 and C++17 (nvcc) alike: no compound literals or designated
 * initializers. */
#ifndef LIPGAN_SRC_BACKEND_PROFILE_WRAP_H
#define LIPGAN_SRC_BACKEND_PROFILE_WRAP_H

#include <stdio.h>
#include <string.h>

#include "lipgan/backend.h"

/* What the detail strings are made of, by the shape of the entry's call. */
typedef enum lg_prof_kind {
    LG_PROF_NONE,   /* nothing (scalar bookkeeping) */
    LG_PROF_N,      /* n elements */
    LG_PROF_GEMM,   /* ta, tb, m, n, k, beta != 0 */
    LG_PROF_CONV,   /* geometry and pass */
    LG_PROF_UNARY,  /* op, n, in place */
    LG_PROF_BINARY, /* op and the three 4-d shapes */
    LG_PROF_SUM_TO, /* the input and output 4-d shapes */
    LG_PROF_RESIZE, /* nc planes h x w -> oh x ow */
    LG_PROF_BN      /* n, c, hw */
} lg_prof_kind;

/* One call, as the profilers file it. */
typedef struct lg_prof_call {
    lg_prof_kind kind;
    double bytes;           /* least bytes the call moves (0: not modelled) */
    double flops;           /* floating-point operations (gemm, conv; else 0) */
    size_t n;               /* N, UNARY: elements */
    int op;                 /* UNARY, BINARY: the lg_unary / lg_binary op;
                             * CONV: the pass (0 forward, 1 data, 2 filter) */
    int in_place;           /* UNARY: y == x */
    int gemm[6];            /* GEMM: ta, tb, m, n, k, beta != 0 */
    const lg_conv_geom *g;  /* CONV */
    const int64_t *s[3];    /* BINARY: y, a, b shapes (4); SUM_TO: y, x */
    int64_t d[5];           /* RESIZE: nc, h, w, oh, ow; BN: n, c, hw */
} lg_prof_call;

static inline lg_prof_call lg_prof_none(void) {
    lg_prof_call c;
    memset(&c, 0, sizeof c);
    return c;
}

static inline lg_prof_call lg_prof_n(size_t n, double bytes) {
    lg_prof_call c = lg_prof_none();
    c.kind = LG_PROF_N;
    c.n = n;
    c.bytes = bytes;
    return c;
}

static inline lg_prof_call lg_prof_gemm(int ta, int tb, int m, int n, int k, float beta) {
    lg_prof_call c = lg_prof_none();
    c.kind = LG_PROF_GEMM;
    c.gemm[0] = ta, c.gemm[1] = tb, c.gemm[2] = m, c.gemm[3] = n, c.gemm[4] = k;
    c.gemm[5] = beta != 0.0f;
    c.bytes = 4.0 * ((double)m * k + (double)k * n + (double)m * n * (beta != 0.0f ? 2 : 1));
    c.flops = 2.0 * m * n * (double)k;
    return c;
}

/* x, w and y once each */
static inline lg_prof_call lg_prof_conv(const lg_conv_geom *g, int pass) {
    lg_prof_call c = lg_prof_none();
    c.kind = LG_PROF_CONV;
    c.g = g;
    c.op = pass;
    c.bytes = 4.0 * ((double)g->n * g->c * g->h * g->w + (double)g->oc * g->c * g->kh * g->kw +
                     (double)g->n * g->oc * g->oh * g->ow);
    c.flops = 2.0 * g->n * g->oc * g->oh * g->ow * (double)g->c * g->kh * g->kw;
    return c;
}

static inline lg_prof_call lg_prof_unary(lg_unary op, size_t n, int in_place) {
    lg_prof_call c = lg_prof_n(n, 8.0 * n);
    c.kind = LG_PROF_UNARY;
    c.op = (int)op;
    c.in_place = in_place;
    return c;
}

static inline double lg_prof_numel4(const int64_t s[4]) {
    return (double)s[0] * (double)s[1] * (double)s[2] * (double)s[3];
}

static inline lg_prof_call lg_prof_binary(lg_binary op, const int64_t ys[4], const int64_t as[4],
                                          const int64_t bs[4]) {
    lg_prof_call c = lg_prof_none();
    c.kind = LG_PROF_BINARY;
    c.op = (int)op;
    c.s[0] = ys, c.s[1] = as, c.s[2] = bs;
    c.bytes = 4.0 * (lg_prof_numel4(ys) + lg_prof_numel4(as) + lg_prof_numel4(bs));
    return c;
}

static inline lg_prof_call lg_prof_sum_to(const int64_t ys[4], const int64_t xs[4]) {
    lg_prof_call c = lg_prof_none();
    c.kind = LG_PROF_SUM_TO;
    c.s[0] = ys, c.s[1] = xs;
    c.bytes = 4.0 * (lg_prof_numel4(ys) + lg_prof_numel4(xs));
    return c;
}

/* bytes: per input element (upsampling writes 4 outputs per input) */
static inline lg_prof_call lg_prof_resize(int64_t nc, int64_t h, int64_t w, int64_t oh,
                                          int64_t ow, double bytes_per_in) {
    lg_prof_call c = lg_prof_none();
    c.kind = LG_PROF_RESIZE;
    c.d[0] = nc, c.d[1] = h, c.d[2] = w, c.d[3] = oh, c.d[4] = ow;
    c.bytes = bytes_per_in * nc * h * w;
    return c;
}

/* bytes: per element of x (n, c, hw) */
static inline lg_prof_call lg_prof_bn(int64_t n, int64_t c_, int64_t hw, double bytes_per_el) {
    lg_prof_call c = lg_prof_none();
    c.kind = LG_PROF_BN;
    c.d[0] = n, c.d[1] = c_, c.d[2] = hw;
    c.bytes = bytes_per_el * n * c_ * hw;
    return c;
}

/* Batch-norm floors: train reads x for the statistics, then reads x and
 * writes y (12 bytes per element); backward reads dy and x for its sums,
 * then both again and writes dx (20 bytes); the split passes (sync BN)
 * read x (stats), dy and x (sums), and dy, x, dx (apply). cond_copy
 * usually copies nothing (the update was finite): no floor. */
#define LG_PROF_ENTRIES(X)                                                                       \
    X(copy, (float *dst, const float *src, size_t n), (dst, src, n), lg_prof_n(n, 8.0 * n))      \
    X(fill, (float *dst, float value, size_t n), (dst, value, n), lg_prof_n(n, 4.0 * n))         \
    X(gemm,                                                                                      \
      (int ta, int tb, int m, int n, int k, float alpha, const float *a, int lda, const float *b, \
       int ldb, float beta, float *c, int ldc),                                                  \
      (ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc), lg_prof_gemm(ta, tb, m, n, k, beta)) \
    X(conv2d, (float *y, const float *x, const float *w, const lg_conv_geom *g, float *ws),      \
      (y, x, w, g, ws), lg_prof_conv(g, 0))                                                      \
    X(conv2d_bwd_data,                                                                           \
      (float *dx, const float *dy, const float *w, const lg_conv_geom *g, float *ws),            \
      (dx, dy, w, g, ws), lg_prof_conv(g, 1))                                                    \
    X(conv2d_bwd_weight,                                                                         \
      (float *dw, const float *x, const float *dy, const lg_conv_geom *g, float *ws),            \
      (dw, x, dy, g, ws), lg_prof_conv(g, 2))                                                    \
    X(unary, (lg_unary op, float *y, const float *x, size_t n, float alpha), (op, y, x, n, alpha), \
      lg_prof_unary(op, n, y == x))                                                              \
    X(binary,                                                                                    \
      (lg_binary op, float *y, const int64_t ys[4], const float *a, const int64_t as[4],         \
       const float *b, const int64_t bs[4]),                                                     \
      (op, y, ys, a, as, b, bs), lg_prof_binary(op, ys, as, bs))                                 \
    X(sum_to, (float *y, const int64_t ys[4], const float *x, const int64_t xs[4]),              \
      (y, ys, x, xs), lg_prof_sum_to(ys, xs))                                                    \
    X(sum_all, (float *y, const float *x, size_t n), (y, x, n), lg_prof_n(n, 4.0 * n))           \
    X(upsample2x, (float *y, const float *x, int64_t nc, int64_t h, int64_t w), (y, x, nc, h, w), \
      lg_prof_resize(nc, h, w, 2 * h, 2 * w, 20.0))                                              \
    X(sumpool2x2, (float *y, const float *x, int64_t nc, int64_t h, int64_t w), (y, x, nc, h, w), \
      lg_prof_resize(nc, h, w, h / 2, w / 2, 5.0))                                               \
    X(bn_train,                                                                                  \
      (float *y, float *mean, float *rstd, const float *x, const float *gamma,                   \
       const float *beta, float *rm, float *rv, int64_t n, int64_t c, int64_t hw, float eps,     \
       float momentum),                                                                          \
      (y, mean, rstd, x, gamma, beta, rm, rv, n, c, hw, eps, momentum),                          \
      lg_prof_bn(n, c, hw, 12.0))                                                                \
    X(bn_eval,                                                                                   \
      (float *y, const float *x, const float *gamma, const float *beta, const float *rm,         \
       const float *rv, int64_t n, int64_t c, int64_t hw, float eps),                            \
      (y, x, gamma, beta, rm, rv, n, c, hw, eps), lg_prof_bn(n, c, hw, 8.0))                     \
    X(bn_bwd,                                                                                    \
      (float *dx, float *dg, float *db, const float *dy, const float *x, const float *mean,      \
       const float *rstd, const float *gamma, int64_t n, int64_t c, int64_t hw),                 \
      (dx, dg, db, dy, x, mean, rstd, gamma, n, c, hw), lg_prof_bn(n, c, hw, 20.0))              \
    X(dot, (float *y, const float *a, const float *b, size_t n), (y, a, b, n),                   \
      lg_prof_n(n, 8.0 * n))                                                                     \
    X(normalize, (float *x, size_t n, float eps), (x, n, eps), lg_prof_n(n, 12.0 * n))           \
    X(adam,                                                                                      \
      (float *p, float *m, float *v, const float *g, size_t n, float lr, float b1, float b2,     \
       float eps, int64_t t),                                                                    \
      (p, m, v, g, n, lr, b1, b2, eps, t), lg_prof_n(n, 28.0 * n))                               \
    X(all_finite, (float *y, const float *x, size_t n), (y, x, n), lg_prof_n(n, 4.0 * n))        \
    X(adam_prep,                                                                                 \
      (float *hp, float *tc, const float *flag, const float *lr, float b1, float b2),            \
      (hp, tc, flag, lr, b1, b2), lg_prof_none())                                                \
    X(adam_flagged,                                                                              \
      (float *p, float *m, float *v, const float *g, size_t n, const float *hp, float b1,        \
       float b2, float eps),                                                                     \
      (p, m, v, g, n, hp, b1, b2, eps), lg_prof_n(n, 28.0 * n))                                  \
    X(cond_copy, (float *dst, const float *src, size_t n, const float *flag),                    \
      (dst, src, n, flag), lg_prof_n(n, 0.0))                                                    \
    X(flag_track, (float *c, float *flag), (c, flag), lg_prof_none())                            \
    X(bn_stats, (float *mean, float *m2, const float *x, int64_t n, int64_t c, int64_t hw),      \
      (mean, m2, x, n, c, hw), lg_prof_bn(n, c, hw, 4.0))                                        \
    X(bn_bwd_sums,                                                                               \
      (float *sdy, float *sdyx, const float *dy, const float *x, const float *mean, int64_t n,   \
       int64_t c, int64_t hw),                                                                   \
      (sdy, sdyx, dy, x, mean, n, c, hw), lg_prof_bn(n, c, hw, 8.0))                             \
    X(bn_bwd_apply,                                                                              \
      (float *dx, const float *dy, const float *x, const float *mean, const float *rstd,         \
       const float *gamma, const float *sdy, const float *sdyx, double cnt, int64_t n,           \
       int64_t c, int64_t hw),                                                                   \
      (dx, dy, x, mean, rstd, gamma, sdy, sdyx, cnt, n, c, hw), lg_prof_bn(n, c, hw, 12.0))

/* The CPU profile's detail: the op of unary and binary, the geometry of
 * convolutions and gemm, else "". */
static inline void lg_prof_detail(char *b, size_t cap, const lg_prof_call *c) {
    const lg_conv_geom *g = c->g;
    switch (c->kind) {
    case LG_PROF_CONV:
        snprintf(b, cap, "n%d c%d %dx%d oc%d k%dx%d s%d p%d", g->n, g->c, g->h, g->w, g->oc, g->kh,
                 g->kw, g->stride, g->pad);
        break;
    case LG_PROF_GEMM:
        snprintf(b, cap, "%s%s m%d n%d k%d", c->gemm[0] ? "T" : "N", c->gemm[1] ? "T" : "N",
                 c->gemm[2], c->gemm[3], c->gemm[4]);
        break;
    case LG_PROF_UNARY: snprintf(b, cap, "%s", lg_unary_name((lg_unary)c->op)); break;
    case LG_PROF_BINARY: snprintf(b, cap, "%s", lg_binary_name((lg_binary)c->op)); break;
    default: snprintf(b, cap, "%s", ""); break;
    }
}

/* "(d0,d1,d2,d3)" */
static inline void lg_prof_shape(char *b, size_t cap, const int64_t s[4]) {
    snprintf(b, cap, "(%lld,%lld,%lld,%lld)", (long long)s[0], (long long)s[1], (long long)s[2],
             (long long)s[3]);
}

/* The CUDA profile's geometry: every shape of the call; conv_path names the
 * convolution's algorithm ("cudnn algo 1", "im2col"; CONV only). */
static inline void lg_prof_geometry(char *b, size_t cap, const lg_prof_call *c,
                                    const char *conv_path) {
    const lg_conv_geom *g = c->g;
    char s0[64], s1[64], s2[64];
    switch (c->kind) {
    case LG_PROF_NONE: snprintf(b, cap, "%s", ""); break;
    case LG_PROF_N: snprintf(b, cap, "n %zu", c->n); break;
    case LG_PROF_GEMM:
        snprintf(b, cap, "ta%d tb%d m%d n%d k%d%s", c->gemm[0], c->gemm[1], c->gemm[2], c->gemm[3],
                 c->gemm[4], c->gemm[5] ? " beta" : "");
        break;
    case LG_PROF_CONV:
        snprintf(b, cap, "n%d c%d %dx%d -> oc%d %dx%d k%dx%d s%d p%d, %s", g->n, g->c, g->h, g->w,
                 g->oc, g->oh, g->ow, g->kh, g->kw, g->stride, g->pad, conv_path);
        break;
    case LG_PROF_UNARY:
        snprintf(b, cap, "%s n %zu%s", lg_unary_name((lg_unary)c->op), c->n,
                 c->in_place ? " in place" : "");
        break;
    case LG_PROF_BINARY:
        lg_prof_shape(s0, sizeof s0, c->s[0]);
        lg_prof_shape(s1, sizeof s1, c->s[1]);
        lg_prof_shape(s2, sizeof s2, c->s[2]);
        snprintf(b, cap, "%s %s <- %s, %s", lg_binary_name((lg_binary)c->op), s0, s1, s2);
        break;
    case LG_PROF_SUM_TO:
        lg_prof_shape(s0, sizeof s0, c->s[1]);
        lg_prof_shape(s1, sizeof s1, c->s[0]);
        snprintf(b, cap, "%s -> %s", s0, s1);
        break;
    case LG_PROF_RESIZE:
        snprintf(b, cap, "nc %lld %lldx%lld -> %lldx%lld", (long long)c->d[0], (long long)c->d[1],
                 (long long)c->d[2], (long long)c->d[3], (long long)c->d[4]);
        break;
    case LG_PROF_BN:
        snprintf(b, cap, "n %lld c %lld hw %lld", (long long)c->d[0], (long long)c->d[1],
                 (long long)c->d[2]);
        break;
    }
}

#endif
