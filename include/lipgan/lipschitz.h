/* lipgan/lipschitz.h - the Lipschitz toolkit: every constraint of the source
 * documents (seeds 000-004) as parts that attach to any linear, conv2d or
 * transposed-conv2d layer, plus exact spectra.
 *
 *   spectral normalization      lg_sn_*        Miyato et al.; thesis Alg. 1
 *   Toeplitz-normalized conv    lg_toep_*      thesis 4.1.2
 *   spectral regularization     lg_sr_*        SR-GAN (seed 004)
 *   weight clipping             lg_clip_weights  WGAN
 *   gradient penalties          lg_gradient_penalty  WGAN-GP, one-sided, R1
 *   rank metric r(W), penalty   lg_rank_ratio, lg_rank_penalty  thesis 4.2.1-2
 *   spectral gradient clamping  lg_gclamp_*    thesis 4.2.3
 *   spectra and bounds          lg_svd_values, lg_conv_norms_compute,
 *                               lg_spectrum_analyze, lg_lipschitz_*
 *
 * Weight matrices. A weight tensor w is viewed as the matrix W_mat (out x in)
 * whose rows are indexed by the "output" dim out_dim of w and whose columns
 * run over all other dims in their stored order:
 *   linear          w (out, in)            out_dim 0, W_mat (out, in)
 *   conv2d          w (oc, c, kh, kw)      out_dim 0, W_mat (oc, c*kh*kw)
 *   conv_transpose  w (c, oc, kh, kw)      out_dim 1, W_mat (oc, c*kh*kw)
 * The transposed conv's output dim is 1 (PyTorch issue 7865; PITFALLS):
 * W_mat[o, i*kh*kw + k] = w[i, o, k], as torch.nn.utils.spectral_norm(dim=1).
 * No copy is made: the kernels read w in place.
 *
 * Spectral normalization in a layer's forward (training):
 *
 *   lg_sn_state sn;                                      // once, at build
 *   LG_TRY(lg_sn_init(&sn, be, oc, c * kh * kw, seed));
 *   ...
 *   lg_tensor *wn = lg_sn_weight(ctx, &sn, w, 0, train); // W / sigma(W)
 *   lg_tensor *y  = lg_conv2d(ctx, x, wn, b, 1, 1);
 *   ...
 *   float s = lg_sn_sigma(&sn);                          // monitoring
 *   lg_sn_free(&sn);
 *
 * Everything that runs per step (lg_sn_weight, lg_toep_conv2d, penalties)
 * follows ops.h's failure model: NULL result and a sticky context error.
 * Everything that runs on host or on buffers returns lg_status. */
#ifndef LIPGAN_LIPSCHITZ_H
#define LIPGAN_LIPSCHITZ_H

#include <stddef.h>
#include <stdint.h>

#include "lipgan/backend.h"
#include "lipgan/status.h"
#include "lipgan/tensor.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Rows and columns of W_mat for a weight of shape (ndim, shape) with output
 * dim out_dim (see above). LG_ERR_SHAPE for ndim outside 2..4 or a bad
 * out_dim. */
lg_status lg_weight_mat_dims(int ndim, const int64_t *shape, int out_dim,
                             int64_t *rows, int64_t *cols);

/* Copies w (host, shape (ndim, shape)) into mat (host, rows x cols) in the
 * W_mat layout above, and back. */
void lg_weight_to_mat(const float *w, int ndim, const int64_t *shape, int out_dim, float *mat);
void lg_weight_from_mat(const float *mat, int ndim, const int64_t *shape, int out_dim, float *w);

/* ======================================================================
 * Spectral normalization (Miyato et al. 2018; thesis Algorithm 1)
 * ====================================================================== */

/* Iterations run when a never-updated state is used in evaluation mode. */
#define LG_SN_PRIME_ITERS 15

typedef struct lg_sn_state {
    const lg_backend *be;
    float *u;        /* (out) backend memory: left singular vector estimate */
    float *v;        /* (in) backend memory: right singular vector estimate */
    float *sigma;    /* (1) backend memory: sigma of the last lg_sn_weight */
    int64_t out;     /* rows of W_mat */
    int64_t in;      /* columns of W_mat (in*kh*kw for convs) */
    int n_iter;      /* power iterations per updating forward (default 1) */
    float eps;       /* normalization guard: x / max(||x||, eps) (default 1e-12) */
    int primed;      /* 0 until u, v were updated once (see lg_sn_weight) */
    int keep_zero;   /* 1: a power-iteration step whose new u or v is exactly 0
                        keeps the previous one, and a sigma u^T W v that comes
                        out exactly 0 is replaced by the stored one (default 0,
                        as PyTorch, where W^T u = 0 gives sigma 0 and a NaN
                        weight; weights of exactly cancelling values, e.g.
                        clipped to +-c, can hit it) */
    int owned_;      /* internal: which buffers lg_sn_free releases */
} lg_sn_state;

/* Allocates u, v, sigma on backend be (NULL = CPU) and draws u and v from
 * N(0, 1) with lg_rng(seed, LG_RNG_STREAM_SN) (u first, then v), each
 * normalized to unit length. n_iter = 1, eps = 1e-12, primed = 0. */
lg_status lg_sn_init(lg_sn_state *st, const lg_backend *be, int64_t out, int64_t in,
                     uint64_t seed);
/* The same over caller-owned backend buffers u (out), v (in) and sigma (1)
 * (e.g. slices of a model's state buffer; sigma may be NULL, then one float
 * is allocated). The caller may overwrite u and v afterwards, e.g. with
 * vectors restored from a checkpoint; then set primed = 1. */
lg_status lg_sn_init_buffers(lg_sn_state *st, const lg_backend *be, int64_t out, int64_t in,
                             uint64_t seed, float *u, float *v, float *sigma);
/* Frees what lg_sn_init* allocated (not caller buffers); st is zeroed. */
void lg_sn_free(lg_sn_state *st);

/* The spectrally normalized weight W / sigma, shaped like w.
 *
 * update = 1 (training): first runs n_iter power iterations on W_mat
 *   without recording a graph (v <- normalize(W^T u), u <- normalize(W v)),
 *   storing u and v; sets primed = 1.
 * update = 0 (evaluation): u and v are used as stored, unchanged - except on
 *   a state that was never updated (primed == 0: a model evaluated before
 *   any training step, or restored without setting primed), which first
 *   runs LG_SN_PRIME_ITERS iterations from its seeded u, as
 *   torch.nn.utils.parametrizations.spectral_norm does at construction.
 *   Without this, sigma = u^T W v of two unrelated random vectors can be
 *   tiny or negative (PyTorch issue 51800).
 * Then sigma = u^T W_mat v is computed WITH ops, u and v entering as
 * constants (copies, so a later update in the same step cannot change this
 * step's graph): the gradient flows to W only (d sigma/dW = u v^T, as
 * PyTorch), and the result is differentiable twice, so a gradient penalty
 * composes with SN. sigma is also copied into st->sigma (device memory, no
 * host sync). Calling it twice in one step with update = 1 advances the
 * iteration twice (as PyTorch does on every training forward); pass
 * update = 0 for extra passes (e.g. the gradient-penalty pass). w must
 * have out_dim's rows/cols equal to st->out / st->in. */
lg_tensor *lg_sn_weight(lg_ctx *ctx, lg_sn_state *st, lg_tensor *w, int out_dim, int update);

/* The same sigma tensor alone (shape (1)), with the same update rule. */
lg_tensor *lg_sn_sigma_tensor(lg_ctx *ctx, lg_sn_state *st, lg_tensor *w, int out_dim,
                              int update);

/* The last sigma (downloads one float: a host sync on device backends). */
float lg_sn_sigma(const lg_sn_state *st);

/* ======================================================================
 * Toeplitz-normalized convolution (thesis 4.1.2)
 *
 * The convolution at a fixed input size (C, H, W), stride and padding is
 * the linear map T: R^{C*H*W} -> R^{OC*OH*OW}; its operator norm sigma(T)
 * is the layer's true Lipschitz constant (theorem 2.4.7), which the
 * reshaped-matrix norm sigma(W_mat) only bounds within a factor sqrt(n)
 * (lemma 2.4.8, Tsuzuku et al.). Power iteration runs on T itself: T is
 * the backend's conv2d and T^T its exact adjoint conv2d_bwd_data (the
 * transposed convolution, lemma 2.4.9), at the layer's stride and padding.
 * The one persistent vector u lives in the input space (C, H, W), without
 * a batch dimension, so it checkpoints independently of the batch size
 * (the thesis code had both problems; PITFALLS).
 * ====================================================================== */

typedef struct lg_toep_state {
    const lg_backend *be;
    float *u;        /* (C, H, W) backend memory: right singular vector estimate */
    float *sigma;    /* (1) backend memory: sigma(T) estimate of the last call */
    int c, h, w;     /* layer input size (no batch) */
    int n_iter;      /* power iterations per updating forward (default 1) */
    float eps;       /* normalization guard (default 1e-12) */
    int primed;      /* 0 until u was updated once (as lg_sn_state) */
    int owned_;
} lg_toep_state;

/* u (c, h, w) from N(0,1) with lg_rng(seed, LG_RNG_STREAM_SN), normalized. */
lg_status lg_toep_init(lg_toep_state *st, const lg_backend *be, int c, int h, int w,
                       uint64_t seed);
/* Over caller buffers u (c*h*w) and sigma (1 or NULL). */
lg_status lg_toep_init_buffers(lg_toep_state *st, const lg_backend *be, int c, int h, int w,
                               uint64_t seed, float *u, float *sigma);
void lg_toep_free(lg_toep_state *st);

/* The operator-norm estimate sigma(T) as a (1) tensor. update = 1: n_iter
 * iterations  y <- normalize(T u), u <- normalize(T^T y)  without a graph
 * (update = 0: stored u; a never-updated state first runs
 * LG_SN_PRIME_ITERS, as lg_sn_weight). Then, with ops,
 *   y = conv2d(u, W) (graph),  y_hat = y / ||y|| (a constant),
 *   sigma = <y_hat, y>  (= ||T u||).
 * Why this form: it is the exact analogue of SN's u^T W v - bilinear in
 * the two constant singular-vector estimates, so d sigma/dW is the weight
 * gradient of the rank-one pair (what Miyato's analysis assumes) - and it
 * avoids the sqrt of the alternative ||conv(u, W)||, whose derivative is
 * singular at 0; both have the same value and first derivative. It costs
 * one conv of a single (1, C, H, W) input. w is (OC, C, KH, KW). */
lg_tensor *lg_toep_sigma_tensor(lg_ctx *ctx, lg_toep_state *st, lg_tensor *w, int stride,
                                int pad, int update);

/* The normalized weight k * W / sigma(T) (shape of w). */
lg_tensor *lg_toep_weight(lg_ctx *ctx, lg_toep_state *st, lg_tensor *w, int stride, int pad,
                          float k, int update);

/* The Toeplitz-normalized layer: y = k * conv2d(x, W / sigma(T)) + b, so
 * the layer's operator norm is k (up to the power-iteration error); the
 * thesis swept k = 1, 2, 4, 8. The bias is not scaled (it does not change
 * the Lipschitz constant). x (N, C, H, W) must match the state's (C, H, W);
 * b (OC) or NULL. */
lg_tensor *lg_toep_conv2d(lg_ctx *ctx, lg_toep_state *st, lg_tensor *x, lg_tensor *w,
                          lg_tensor *b, int stride, int pad, float k, int update);

/* The last sigma(T) estimate (a host sync on device backends). */
float lg_toep_sigma(const lg_toep_state *st);

/* Norms of one convolution at input size (h, w) with stride and padding:
 *  - op_norm: sigma(T), by power iteration on the CPU backend until the
 *    estimate changes by less than tol (relative) between iterations or
 *    max_iter is reached (iters, converged say which). Power iteration
 *    approaches sigma(T) from below.
 *  - reshaped: sigma(W_mat), exact (LAPACK dgesdd in double).
 *  - tsuzuku: sqrt(n) * reshaped with n = min(k, h'-k+1) * min(k, w'-k+1)
 *    (lemma 2.4.8; per-axis for non-square kernels), h' = h + 2*pad and
 *    w' = w + 2*pad: zero padding embeds the input isometrically in the
 *    padded one, so the bound holds with the padded size (with the
 *    unpadded size it can fail, e.g. h = k = 3, pad = 1). A stride > 1
 *    only lowers sigma(T), so the bound holds for every stride.
 * w_host (oc, c, kh, kw). seed seeds the start vector. */
typedef struct lg_conv_norms {
    double op_norm;
    double reshaped;
    double tsuzuku;
    int n;
    int iters;
    int converged;
} lg_conv_norms;
lg_status lg_conv_norms_compute(const float *w_host, int oc, int c, int kh, int kw, int h,
                                int w, int stride, int pad, int max_iter, double tol,
                                uint64_t seed, lg_conv_norms *out);

/* ======================================================================
 * Spectral regularization (SR-GAN, Liu et al. 2019; seed 004)
 *
 * W = U diag(s_1..s_n) V^T (full SVD of W_mat, LAPACK dgesdd on a host copy
 * in double; device buffers are downloaded and uploaded). With gamma the
 * number of compensated singular values,
 *   W_SR = (W + U D V^T) / s_1,  D = diag(0, s_1 - s_2, .., s_1 - s_gamma, 0..),
 * i.e. singular values 1..gamma of W_SR are 1 and the rest s_i / s_1.
 * gamma = floor(gamma_frac * n) (as the SR-GAN code's n // 2), clamped to
 * [1, n] (paper default 0.5; gamma = 1 is spectral normalization with the
 * exact sigma). The paper's
 * code applies it to the discriminator's conv weights every 5th step, in
 * place, after the optimizer step.
 *
 * Dynamic variant (dynamic = 1): the state keeps ref, the elementwise
 * maximum of every normalized spectrum s / s_1 seen so far (initialized at
 * the first call); the new spectrum is 1 for i <= gamma and
 * max(ref_i, s_i / s_1) otherwise, so no normalized singular value ever
 * drops below the largest level it had reached. Use gamma_frac = 0 (gamma
 * = 1) for the pure maximum variant. The result is normalized (s_1 = 1) as
 * in the static variant.
 * ====================================================================== */

#define LG_SR_GAMMA_FRAC_DEFAULT 0.5f  /* gamma = n/2, the paper's default */
#define LG_SR_EVERY_DEFAULT 5          /* apply every 5th discriminator step */

typedef struct lg_sr_state {
    int64_t n;       /* number of singular values (min(rows, cols)); 0 before first use */
    float *ref;      /* (n) host: elementwise max of s / s_1 (dynamic); save it in
                        checkpoints */
    int have_ref;    /* ref holds a recorded spectrum */
} lg_sr_state;

/* Applies SR in place to w (backend memory of be, shape (ndim, shape),
 * output dim out_dim). st may be NULL when dynamic = 0. Errors:
 * LG_ERR_SHAPE, LG_ERR_NOMEM, LG_ERR_NONFINITE (SVD failed or W = 0). */
lg_status lg_sr_apply(const lg_backend *be, float *w, int ndim, const int64_t *shape,
                      int out_dim, float gamma_frac, int dynamic, lg_sr_state *st);
void lg_sr_free(lg_sr_state *st);

/* ======================================================================
 * Weight clipping (WGAN): w <- clamp(w, -c, c) in place, after each update.
 * ====================================================================== */
void lg_clip_weights(const lg_backend *be, float *w, size_t n, float c);

/* ======================================================================
 * Gradient penalties
 * ====================================================================== */

/* A critic: x (N, ...) -> (N, 1) or (N). Called with grad recording on.
 * Inside a penalty, SN layers should use update = 0 (their vectors were
 * advanced by the step's main forward; see lg_model_set_lip_update). */
typedef lg_tensor *(*lg_critic_fn)(lg_ctx *ctx, lg_tensor *x, void *user);

typedef enum lg_gp_kind {
    LG_GP_TWO_SIDED = 0,  /* WGAN-GP: lambda E[(||g|| - 1)^2] on interpolates */
    LG_GP_ONE_SIDED,      /* lambda E[max(0, ||g|| - 1)^2] on interpolates */
    LG_GP_R1,             /* lambda E[||g||^2] on real data (Mescheder et al.'s
                             R1 is gamma/2 E||g||^2: pass lambda = gamma/2) */
    LG_GP_COUNT
} lg_gp_kind;

/* The penalty as a (1) tensor. g = grad_x D(x) at x_hat, per sample:
 *   two/one-sided: x_hat = eps * real + (1 - eps) * fake, with eps (N)
 *     (any shape of N elements, e.g. (N,1,1,1)) drawn by the caller from
 *     U[0, 1) per sample (LG_RNG_STREAM_GP);
 *   R1: x_hat = real (fake and eps may be NULL).
 * x_hat is built without history (fake is effectively detached) and made
 * a leaf; g is taken with lg_grad(create_graph = 1), ||g|| per sample as
 * sqrt(sum g^2 + 1e-12) (the guard keeps d||g|| finite at g = 0; it
 * changes ||g|| by < 1e-6 / ||g||). lg_grad of the result w.r.t. the
 * critic's parameters is the second-order gradient the penalty needs. */
lg_tensor *lg_gradient_penalty(lg_ctx *ctx, lg_critic_fn critic, void *critic_user,
                               lg_tensor *real, lg_tensor *fake, lg_tensor *eps,
                               float lambda, lg_gp_kind kind);

/* ======================================================================
 * Rank collapse metric and generator penalty (thesis 4.2.1-4.2.2)
 *
 * r(W) = ||W||_F / (m * sigma(W)) for W_mat in R^{n x m}: m is the number
 * of COLUMNS of W_mat (the input dimension, in*kh*kw for a conv), as the
 * thesis writes it. Note: with the Frobenius norm r(W) <= sqrt(min(n,m))/m,
 * so it is not normalized to max 1 as the thesis' prose says; we implement
 * the formula as written (the thesis code's -||W||_F / (sigma^2 sqrt(m))
 * is yet another quantity; PITFALLS). sigma is the power-iteration estimate
 * u^T W v of the given SN state (same update rule as lg_sn_weight; use a
 * state of its own for a layer without SN), so r is differentiable in W.
 * ====================================================================== */
lg_tensor *lg_rank_ratio(lg_ctx *ctx, lg_sn_state *st, lg_tensor *w, int out_dim, int update);

/* -lambda * sum_i r(W_i) (add it to the generator loss). */
lg_tensor *lg_rank_penalty(lg_ctx *ctx, int n, lg_sn_state *const *st, lg_tensor *const *w,
                           const int *out_dim, float lambda, int update);

/* Exact r(W) from the singular values (host, double). */
double lg_rank_ratio_exact(const double *s, int64_t nsv, int64_t cols);

/* ======================================================================
 * Spectral gradient clamping (thesis 4.2.3)
 *
 * After backward, for a gradient G (W_mat layout of the weight):
 *   (u0, v0) <- n_iter power iterations on G (persistent);
 *   sigma0 = u0^T G v0;
 *   (u1, v1) <- n_iter power iterations on M = G - sigma0 u0 v0^T
 *               (deflation; persistent);
 *   sigma1 = u1^T M v1;
 *   if sigma0 > r sigma1 (1 + tol):  G <- G - (sigma0 - r sigma1) u0 v0^T
 * so sigma0 becomes r * sigma1 and, with converged vectors, every other
 * singular value is unchanged. A gradient already within the ratio is not
 * changed (a zero update is added: values equal, a -0 may become +0). The
 * decision is made in backend memory: lg_gclamp_apply only queues work, so
 * the sync-free training step can run it. The thesis writes min(0, .) where the intent is
 * max(0, .) (PITFALLS); this is the max form. A weight with one row or
 * one column (e.g. a critic's final (1, ch) linear layer) has a single
 * singular value and no sigma1: the rule does not apply and its gradient
 * is never clamped (with sigma1 taken as 0 it would be zeroed at every
 * step; the thesis code clamps its convolutions only). Its lg_gclamp_read
 * gives sigma0 = sigma1 = 0, clamped = 0. A gradient of a larger weight
 * that happens to be rank one (batch 1) is clamped as the rule says.
 * ====================================================================== */
typedef struct lg_gclamp_state {
    const lg_backend *be;
    float *u0, *u1;   /* (rows) backend memory */
    float *v0, *v1;   /* (cols) backend memory */
    float *scratch;   /* (rows*cols + rows + cols + 8) backend memory: products, vectors, device scalars */
    int64_t pre, rows, post;  /* G viewed as (pre, rows, post), W_mat (rows, pre*post) */
    int64_t cols;     /* pre * post */
    int n_iter;       /* power iterations per call (default 1) */
    float eps;        /* normalization guard (default 1e-12) */
    float ratio;      /* r > 1 */
    float tol;        /* relative slack: clamp only if sigma0 > r sigma1 (1 + tol)
                         (default 1e-4), so a gradient at the ratio (e.g. one
                         clamped before) stays untouched despite rounding */
    float sigma0, sigma1;  /* estimates of the last call (host; lg_gclamp_read) */
    int clamped;      /* 1 if the last call clamped G (lg_gclamp_read) */
    int single;       /* 1: one row or column, one singular value: never clamped */
} lg_gclamp_state;

/* For a weight of shape (ndim, shape) with output dim out_dim. */
lg_status lg_gclamp_init(lg_gclamp_state *st, const lg_backend *be, int ndim,
                         const int64_t *shape, int out_dim, float ratio, uint64_t seed);
void lg_gclamp_free(lg_gclamp_state *st);
/* Clamps g (backend memory, the weight's shape) in place; queues work
 * without waiting for it. */
lg_status lg_gclamp_apply(lg_gclamp_state *st, float *g);
/* Fetches sigma0, sigma1 and clamped of the last lg_gclamp_apply into st
 * (waits for the backend). */
lg_status lg_gclamp_read(lg_gclamp_state *st);

/* ======================================================================
 * Spectra and Lipschitz bounds
 * ====================================================================== */

/* All min(rows, cols) singular values of a (rows, cols) host matrix,
 * descending (LAPACK dgesdd in double). */
lg_status lg_svd_values(const float *a, int64_t rows, int64_t cols, double *s);

/* sigma of a (rows, cols) host matrix by n_iter power iterations in float
 * (v <- W^T u / ||.||, u <- W v / ||.||, sigma = u^T W v) from u ~ N(0,1)
 * drawn with lg_rng(seed, LG_RNG_STREAM_SN). */
double lg_power_sigma(const float *a, int64_t rows, int64_t cols, int n_iter, uint64_t seed);

typedef struct lg_spectrum_info {
    int64_t rows, cols;    /* W_mat */
    double sigma_power;    /* power iteration (LG_SPECTRUM_POWER_ITERS iterations) */
    double sigma_exact;    /* largest singular value (LAPACK) */
    double sigma1;         /* second singular value (0 if only one) */
    double ratio01;        /* sigma0 / sigma1 (INFINITY if sigma1 == 0) */
    double r;              /* r(W), exact */
    int is_conv;           /* 4-D: conv fields below are set */
    lg_conv_norms conv;    /* op norm at the given input size, Tsuzuku bound */
} lg_spectrum_info;
#define LG_SPECTRUM_POWER_ITERS 20

/* Everything above for one host weight. svals (optional) receives the
 * min(rows, cols) singular values. For 4-D weights (taken as conv2d
 * (oc, c, kh, kw), out_dim 0) the conv norms are computed at input size
 * (input_size, input_size) with the given stride and pad. */
lg_status lg_spectrum_analyze(const float *w_host, int ndim, const int64_t *shape, int out_dim,
                              int input_size, int stride, int pad, lg_spectrum_info *out,
                              double *svals);

/* Upper bound on a feed-forward network's Lipschitz constant: the product
 * of its layers' operator norms (activations 1-Lipschitz; residual
 * connections need (1 + norm) factors instead). */
double lg_lipschitz_upper(int n, const double *layer_norms);

/* Empirical lower bound: the largest per-sample input-gradient norm
 * ||grad_x D(x_i)|| over the samples x (N, ...) (each is a lower bound on
 * the Lipschitz constant). The critic must treat samples independently
 * (no batch statistics). Writes the maximum to *out. */
lg_status lg_lipschitz_lower(lg_ctx *ctx, lg_critic_fn critic, void *critic_user,
                             lg_tensor *x, float *out);

/* ======================================================================
 * Demonstrations of seed 001 (run by tests/test_lipschitz_demo.c and by
 * examples/seed001_*.c). verbose prints what the slides print.
 * ====================================================================== */

/* A 15x15 N(0,1) matrix, u ~ N(0,1), 10 power iterations (through the SN
 * state and lg_sn_weight); *estimate vs *exact (LAPACK). Pass bar: relative
 * difference <= 1e-4. */
lg_status lg_demo_power_iteration(uint64_t seed, int verbose, double *estimate, double *exact);

/* A Linear(5, 5) (PyTorch default init) trained 100 SGD steps (lr 0.1) to
 * maximize ||m(x)|| on 100 inputs in [0,1)^5. *sigma_start / *sigma_end
 * are the exact largest singular values of the weight before and after
 * (with SN: of the normalized weight of the last forward, as PyTorch's
 * m.weight). Pass bars: without SN sigma_end >> sigma_start (the seed
 * printed 0.93 -> 114); with SN |sigma_end - 1| <= 1e-3. */
lg_status lg_demo_sn_linear(int use_sn, uint64_t seed, int verbose, double *sigma_start,
                            double *sigma_end);

#ifdef __cplusplus
}
#endif
#endif
