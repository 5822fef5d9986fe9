/* Private declarations shared by the CPU backend's source files.
 *
 * Threading: the backend owns exactly one thread pool, OpenMP's (the
 * OpenBLAS build is the OpenMP one, so BLAS threads are the same pool and
 * BLAS runs single-threaded when called inside one of our parallel
 * regions). Every parallel region names its thread count explicitly with
 * lg_cpu_nthreads(), and every reduction is split in a way that does not
 * depend on scheduling, so results are reproducible for a fixed count. */
#ifndef LIPGAN_BACKEND_CPU_INTERNAL_H
#define LIPGAN_BACKEND_CPU_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

#include "lipgan/backend.h"
#include "lipgan/backend_cpu.h"

/* Below this many elements an elementwise kernel runs on one thread: the
 * cost of waking the pool (a few microseconds) exceeds the work. */
#define LG_CPU_PAR_MIN ((size_t)32768)

/* Threads the kernels use (>= 1); set by lg_cpu_set_threads(). */
extern int lg_cpu_threads_;
static inline int lg_cpu_nthreads(void) { return lg_cpu_threads_; }

/* LG_CPU_WINO=0 at init: every convolution as im2col + SGEMM (the dispatch
 * takes no Winograd), to measure what Winograd gains or bisect rounding. */
extern int lg_cpu_wino_off_;

/* ---- chunked GEMM work (cpu_conv.c, cpu_winograd.c) ---- */

/* Floats rounded up to a multiple of 16: scratch slices start on 64-byte
 * boundaries. */
static inline size_t lg_cpu_round16(size_t v) { return (v + 15) / 16 * 16; }

/* Floats between the Q matrices of a Winograd kernel's transformed tiles
 * holding n floats each: an odd number of 64-byte lines, so that the Q
 * entries of one tile, read or written together, do not sit at the same
 * offset in a 4 KiB page (with n = 256*256, they all did). */
static inline size_t lg_cpu_wino_qs(size_t n) {
    size_t qs = lg_cpu_round16(n);
    return (qs / 16) % 2 ? qs : qs + 16;
}

/* [*a, *b): part t of T of [0, n), contiguous and fixed for T */
static inline void lg_cpu_part(int n, int t, int T, int *a, int *b) {
    *a = (int)((int64_t)n * t / T);
    *b = (int)((int64_t)n * (t + 1) / T);
}

/* How n samples are cut into chunks of G, so that a chunk's GEMM has at
 * least cols_min columns (cols per sample) where the batch allows, while
 * every thread still gets a chunk; T work slots (threads used). */
typedef struct lg_cpu_chunks {
    int T, G, nchunk;
} lg_cpu_chunks;

static inline lg_cpu_chunks lg_cpu_chunks_make(int n, size_t cols, size_t cols_min) {
    int nt = lg_cpu_nthreads();
    size_t G = (cols == 0 || cols >= cols_min) ? 1 : (cols_min + cols - 1) / cols;
    size_t per_thread = ((size_t)n + nt - 1) / nt; /* keep every thread busy */
    if (G > per_thread) G = per_thread;
    if (G < 1) G = 1;
    lg_cpu_chunks c;
    c.G = (int)G;
    c.nchunk = (n + c.G - 1) / c.G;
    c.T = nt < c.nchunk ? nt : c.nchunk;
    if (c.T < 1) c.T = 1;
    return c;
}

/* The chunks of a Winograd kernel over n samples of P tiles each: those
 * of lg_cpu_chunks_make(n, P, cols_min), except that with fewer samples
 * than threads or under cols_min tiles a thread (*split = 1) all samples
 * form one chunk that every thread works on, each phase split between them
 * (wino_plan_make in cpu_winograd.c says why). */
static inline lg_cpu_chunks lg_cpu_wino_chunks(int n, size_t P, size_t cols_min, int *split) {
    lg_cpu_chunks ch = lg_cpu_chunks_make(n, P, cols_min);
    int nt = lg_cpu_nthreads();
    *split = n < nt || (size_t)n * P < cols_min * nt;
    if (*split) {
        ch.G = n;
        ch.nchunk = 1;
        ch.T = nt;
    }
    return ch;
}

/* ---- kernels, one group per source file ---- */

/* cpu_memory.c */
void *lg_cpu_alloc(size_t bytes);
void lg_cpu_free(void *p);
void lg_cpu_upload(float *dst, const float *src, size_t n);
void lg_cpu_download(float *dst, const float *src, size_t n);
void lg_cpu_copy(float *dst, const float *src, size_t n);
void lg_cpu_fill(float *dst, float value, size_t n);
void lg_cpu_sync(void);

/* cpu_elementwise.c */
void lg_cpu_unary(lg_unary op, float *y, const float *x, size_t n, float alpha);
void lg_cpu_binary(lg_binary op, float *y, const int64_t yshape[4],
                   const float *a, const int64_t ashape[4],
                   const float *b, const int64_t bshape[4]);
void lg_cpu_sum_to(float *y, const int64_t yshape[4], const float *x, const int64_t xshape[4]);
void lg_cpu_sum_all(float *y, const float *x, size_t n);
/* Deterministic double-precision sum of a[i] (b == NULL) or a[i]*b[i]:
 * fixed blocks summed in parallel, then added in block order, so the
 * result does not depend on the thread count. */
double lg_cpu_dsum(const float *a, const float *b, size_t n);

/* cpu_conv.c */
void lg_cpu_gemm(int ta, int tb, int m, int n, int k, float alpha, const float *a, int lda,
                 const float *b, int ldb, float beta, float *c, int ldc);
size_t lg_cpu_conv_workspace(const lg_conv_geom *g);
/* The algorithm the dispatch runs g's three passes with (LG_CPU_WINO=0
 * gives im2col), and its name for reports: "im2col", "F(2,3)", "F(4,3)"
 * (Winograd F(m x m, 3x3)), "F(4,2)s2". */
typedef enum lg_cpu_conv_algo {
    LG_CPU_CONV_IM2COL,  /* im2col + SGEMM (a plain GEMM for direct 1x1 convs) */
    LG_CPU_CONV_WINO2,   /* Winograd F(2x2,3x3), cpu_winograd.c */
    LG_CPU_CONV_WINO4,   /* Winograd F(4x4,3x3), cpu_winograd.c */
    LG_CPU_CONV_WINO_S2, /* Winograd F(4x4,2x2) on the polyphase form, cpu_wino_s2.c */
} lg_cpu_conv_algo;
lg_cpu_conv_algo lg_cpu_conv_algo_of(const lg_conv_geom *g);
const char *lg_cpu_conv_algo_name(lg_cpu_conv_algo a);
void lg_cpu_conv2d(float *y, const float *x, const float *w, const lg_conv_geom *g, float *ws);
void lg_cpu_conv2d_bwd_data(float *dx, const float *dy, const float *w, const lg_conv_geom *g,
                            float *ws);
void lg_cpu_conv2d_bwd_weight(float *dw, const float *x, const float *dy, const lg_conv_geom *g,
                              float *ws);

/* cpu_winograd.c: Winograd F(m x m, 3x3), m = 2 or 4, for 3x3, stride-1,
 * pad-1 convs. lg_cpu_wino_ok() says whether g is such a conv; the
 * workspace of a given m (0 when g is not such a conv) covers all three
 * kernels of that m, which overwrite their whole output. */
int lg_cpu_wino_ok(const lg_conv_geom *g);
size_t lg_cpu_wino_workspace(const lg_conv_geom *g, int m);
void lg_cpu_wino_conv2d(float *y, const float *x, const float *w, const lg_conv_geom *g, int m,
                        float *ws);
void lg_cpu_wino_bwd_data(float *dx, const float *dy, const float *w, const lg_conv_geom *g, int m,
                          float *ws);
void lg_cpu_wino_bwd_weight(float *dw, const float *x, const float *dy, const lg_conv_geom *g,
                            int m, float *ws);

/* cpu_wino_s2.c: Winograd F(4x4, 2x2) on the polyphase form of 4x4,
 * stride-2, pad-1 convs of even-sized images. lg_cpu_wino_s2_ok() says
 * whether g is such a conv; the workspace (0 when not) covers all three
 * kernels, which overwrite their whole output. */
int lg_cpu_wino_s2_ok(const lg_conv_geom *g);
size_t lg_cpu_wino_s2_workspace(const lg_conv_geom *g);
void lg_cpu_wino_s2_conv2d(float *y, const float *x, const float *w, const lg_conv_geom *g,
                           float *ws);
void lg_cpu_wino_s2_bwd_data(float *dx, const float *dy, const float *w, const lg_conv_geom *g,
                             float *ws);
void lg_cpu_wino_s2_bwd_weight(float *dw, const float *x, const float *dy, const lg_conv_geom *g,
                               float *ws);

/* cpu_norm.c */
void lg_cpu_upsample2x(float *y, const float *x, int64_t nc, int64_t h, int64_t w);
void lg_cpu_sumpool2x2(float *y, const float *x, int64_t nc, int64_t h, int64_t w);
void lg_cpu_bn_train(float *y, float *mean, float *rstd, const float *x, const float *gamma,
                     const float *beta, float *run_mean, float *run_var, int64_t n, int64_t c,
                     int64_t hw, float eps, float momentum);
void lg_cpu_bn_eval(float *y, const float *x, const float *gamma, const float *beta,
                    const float *run_mean, const float *run_var, int64_t n, int64_t c,
                    int64_t hw, float eps);
void lg_cpu_bn_bwd(float *dx, float *dgamma, float *dbeta, const float *dy, const float *x,
                   const float *mean, const float *rstd, const float *gamma, int64_t n,
                   int64_t c, int64_t hw);
void lg_cpu_bn_stats(float *mean, float *m2, const float *x, int64_t n, int64_t c, int64_t hw);
void lg_cpu_bn_bwd_sums(float *sdy, float *sdyx, const float *dy, const float *x,
                        const float *mean, int64_t n, int64_t c, int64_t hw);
void lg_cpu_bn_bwd_apply(float *dx, const float *dy, const float *x, const float *mean,
                         const float *rstd, const float *gamma, const float *sdy,
                         const float *sdyx, double cnt, int64_t n, int64_t c, int64_t hw);

/* cpu_vector.c */
void lg_cpu_dot(float *y, const float *a, const float *b, size_t n);
void lg_cpu_normalize(float *x, size_t n, float eps);
void lg_cpu_adam(float *p, float *m, float *v, const float *g, size_t n, float lr, float b1,
                 float b2, float eps, int64_t t);
void lg_cpu_adam_prep(float *hp, float *tc, const float *flag, const float *lr, float b1,
                      float b2);
void lg_cpu_adam_flagged(float *p, float *m, float *v, const float *g, size_t n, const float *hp,
                         float b1, float b2, float eps);
void lg_cpu_cond_copy(float *dst, const float *src, size_t n, const float *flag);
void lg_cpu_flag_track(float *c, float *flag);
void lg_cpu_all_finite(float *y, const float *x, size_t n);

/* cpu_profile.c: the timing table when LG_CPU_PROFILE is set, else raw */
const lg_backend *lg__cpu_profile_wrap(const lg_backend *raw);
void lg__cpu_profile_at_exit(void);

#endif
