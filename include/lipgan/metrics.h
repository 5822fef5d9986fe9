/* lipgan/metrics.h - the math of the evaluation metrics, on plain host
 * arrays of features or class probabilities (the networks that produce them
 * live elsewhere):
 *
 *   FID        lg_fid_*          Frechet distance of Gaussian fits (float64)
 *   IS         lg_inception_score  exp(E KL(p(y|x) || p(y))), over splits
 *   KID        lg_kid            unbiased MMD^2, cubic polynomial kernel
 *   toy modes  lg_toy_metrics    VEEGAN/PacGAN mode coverage on 2-D data
 *   classes    lg_class_hist_metrics  classes covered, KL of the histogram
 *   collapse   lg_spectrum_collapse_stat, lg_collapse_detector_*
 *
 * Every result records the number of samples it came from (n, n1, n2): a
 * FID from 10k samples is not comparable to one from 50k (PITFALLS.md
 * "Metrics"). Report them with the number.
 *
 * Usage:
 *   lg_fid_stats real, fake;                    // or lg_fid_stats_load(&real, "cifar10.st")
 *   LG_TRY(lg_fid_stats_compute(&real, feat_real, n_real, 2048));   // feat (N, 2048)
 *   LG_TRY(lg_fid_stats_compute(&fake, feat_fake, n_fake, 2048));
 *   lg_fid_result r;
 *   LG_TRY(lg_fid_compute(&real, &fake, &r));   // r.fid, r.n1, r.n2
 *   lg_fid_stats_free(&real); lg_fid_stats_free(&fake);
 */
#ifndef LIPGAN_METRICS_H
#define LIPGAN_METRICS_H

#include <stdint.h>

#include "lipgan/status.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ======================================================================
 * FID
 * ====================================================================== */

/* Gaussian fit of a feature set: the mean and the sample covariance
 * (denominator n - 1, as numpy.cov and pytorch-fid), in float64. */
typedef struct lg_fid_stats {
    int dim;        /* D */
    int64_t n;      /* number of samples; 0 = unknown (a loaded file
                       without the "n" metadata) */
    double *mu;     /* (D) */
    double *sigma;  /* (D, D) symmetric */
    char source[1024]; /* what the features and data were (the file's
                          "source" metadata, as lipgan fid-stats writes it:
                          "<feature network>; data <path> (<format>, <split>,
                          CxHxW), first N of M images"); "" if unknown */
} lg_fid_stats;

/* Statistics of n feature vectors feat (N, D); n >= 2. The sums run in
 * float64, shifted by the first sample for accuracy. Errors:
 * LG_ERR_INVALID_ARG (n < 2, d < 1), LG_ERR_NONFINITE (a NaN/Inf feature),
 * LG_ERR_NOMEM. out is owned by the caller: lg_fid_stats_free. */
lg_status lg_fid_stats_compute(lg_fid_stats *out, const float *feat /* (N,D) */, int64_t n, int d);
void lg_fid_stats_free(lg_fid_stats *s);

/* Streaming form, for features computed batch by batch:
 *   lg_fid_accum a; LG_TRY(lg_fid_accum_init(&a, 2048));
 *   for each batch: lg_fid_accum_add(&a, feat, nb);     // feat (nb, 2048)
 *   lg_fid_accum_finish(&a, &stats); lg_fid_accum_free(&a);
 * Gives the same statistics as lg_fid_stats_compute on all rows at once
 * (up to rounding). */
typedef struct lg_fid_accum {
    int dim;
    int64_t n;
    double *shift; /* (D) the first sample */
    double *sum;   /* (D) sum of (x - shift) */
    double *sxx;   /* (D, D) sum of (x - shift)(x - shift)^T, upper triangle */
    double *buf;   /* (LG_FID_CHUNK, D) scratch */
} lg_fid_accum;
#define LG_FID_CHUNK 256
lg_status lg_fid_accum_init(lg_fid_accum *a, int d);
lg_status lg_fid_accum_add(lg_fid_accum *a, const float *feat /* (N,D) */, int64_t n);
lg_status lg_fid_accum_finish(const lg_fid_accum *a, lg_fid_stats *out);
void lg_fid_accum_free(lg_fid_accum *a);

/* Saves statistics as safetensors: F64 tensors "mu" (D) and "sigma"
 * (D, D), metadata "format" = LG_FID_STATS_FORMAT, "n" (sample count),
 * "dim", and "source" (what the features are, e.g. "pytorch-fid
 * inception-v3 pool3, 299x299 bilinear"; NULL omits it). Written
 * atomically. */
#define LG_FID_STATS_FORMAT "lipgan-fid-stats-v1"
lg_status lg_fid_stats_save(const lg_fid_stats *s, const char *path, const char *source);
/* Loads statistics saved above, or any safetensors file with "mu" (D) and
 * "sigma" (D, D) as F64 or F32 (F32 is widened); n comes from metadata "n"
 * (0 if absent), source from metadata "source" ("" if absent, truncated to
 * the field). Errors: LG_ERR_NOT_FOUND, LG_ERR_IO, LG_ERR_FORMAT (not
 * safetensors: a zip archive, e.g. pytorch-fid's .npz, gets a message with
 * a conversion command; a NaN/Inf value, since a file is bad input, not a
 * diverged computation), LG_ERR_SHAPE, LG_ERR_NOMEM. */
lg_status lg_fid_stats_load(lg_fid_stats *out, const char *path);
/* The sample shape a stats file's source records (the "CxHxW" of its
 * "; data PATH (FORMAT, SPLIT, CxHxW), first N of M images" part): 1 with
 * *c, *h, *w set, 0 if source does not say (e.g. a converted file). */
int lg_fid_stats_source_shape(const char *source, int *c, int *h, int *w);

typedef struct lg_fid_result {
    double fid;        /* mean_term + trace_term, clamped at >= 0 */
    double mean_term;  /* ||mu1 - mu2||^2 */
    double trace_term; /* Tr(S1) + Tr(S2) - 2 tr_covmean */
    double tr_covmean; /* Tr(sqrt(S1 S2)) */
    int64_t n1, n2;    /* sample counts of the two statistics */
    int dim;
    double eps;        /* offset eps*I added to both covariances (0 or 1e-6) */
    double neg_eig;    /* the most negative eigenvalue clamped to 0, relative
                          to the largest (0 if none); tiny values are rounding */
} lg_fid_result;

/* FID = ||mu1 - mu2||^2 + Tr(S1 + S2 - 2 sqrt(S1 S2)), all in float64.
 * Tr(sqrt(S1 S2)) is computed without complex numbers: with
 * S1 = V diag(l) V^T (LAPACK dsyevd), R = V diag(sqrt(max(l, 0))) V^T is
 * sqrt(S1); M = R S2 R is symmetric PSD with the same eigenvalues as
 * S1 S2, so Tr(sqrt(S1 S2)) = sum sqrt(max(eig(M), 0)). This stays real
 * and finite for singular covariances (fewer samples than dimensions,
 * where scipy's sqrtm returns complex values, pytorch-fid issue 13). If
 * LAPACK fails or the result is not finite, it retries once with
 * 1e-6 * I added to both covariances, as pytorch-fid does, and records
 * eps. Negative eigenvalues (rounding) are clamped; below -1e-3 relative
 * to the largest, an input is not a covariance: LG_ERR_INVALID_ARG.
 * Errors: LG_ERR_SHAPE (different D), LG_ERR_NONFINITE, LG_ERR_NOMEM,
 * LG_ERR_BACKEND (LAPACK failed twice). Costs O(D^3): two symmetric
 * eigendecompositions and three D x D products; for D = 2048, statistics
 * of 2 x 2100 samples plus the distance took 20 CPU-seconds on the 2-core
 * build machine. Checked against torch.linalg.eigvals of S1 S2 (float64)
 * to 10 significant digits (D = 64 and 256), 8 with singular covariances. */
lg_status lg_fid_compute(const lg_fid_stats *a, const lg_fid_stats *b, lg_fid_result *out);

/* Convenience: statistics of both feature sets, then lg_fid_compute. */
lg_status lg_fid_from_features(const float *f1 /* (N1,D) */, int64_t n1, const float *f2 /* (N2,D) */,
                               int64_t n2, int d, lg_fid_result *out);

/* ======================================================================
 * Inception Score
 * ====================================================================== */

typedef struct lg_is_result {
    double mean, std; /* over the splits; std is the population std (ddof 0,
                         numpy.std as in the original and torch-fidelity) */
    int splits;
    int64_t n;        /* samples */
    int k;            /* classes */
} lg_is_result;

#define LG_IS_SPLITS 10

/* IS of n class-probability rows probs (N, K) (softmax outputs; each row
 * non-negative and summing to 1 within 1e-3). The rows are cut into
 * `splits` contiguous parts (splits <= 0: 10) of sizes floor/ceil of
 * n / splits; for each, IS = exp(mean_i KL(p_i || p_split)) with
 * p_split the part's mean row and 0 log 0 = 0. shuffle_seed != 0 first
 * permutes the rows (seeded), which avoids the bias of class-sorted input;
 * 0 keeps the given order (the original implementation). torch-fidelity
 * shuffles by default with numpy's generator (seed 2020); ours is a
 * different generator, so shuffled values match its only in distribution.
 * Uniform rows give 1; confident one-hot rows spread evenly over K classes
 * in every part give K. Errors: LG_ERR_INVALID_ARG (n < splits, k < 1, rows that are not
 * probabilities), LG_ERR_NONFINITE, LG_ERR_NOMEM. */
lg_status lg_inception_score(const float *probs /* (N,K) */, int64_t n, int k, int splits,
                             uint64_t shuffle_seed, lg_is_result *out);

/* Row-wise softmax of logits (N, K) into probs (N, K), in float64 with the
 * max subtracted. probs may equal logits. */
void lg_softmax_rows(const float *logits /* (N,K) */, int64_t n, int k, float *probs /* (N,K) */);

/* ======================================================================
 * KID
 * ====================================================================== */

typedef struct lg_kid_result {
    double mean, std; /* of the per-subset MMD^2 (std: ddof 0, as torch-fidelity) */
    int subsets, subset_size;
    int64_t n1, n2;
} lg_kid_result;

#define LG_KID_SUBSETS 100
#define LG_KID_SUBSET_SIZE 1000

/* Kernel Inception Distance (Binkowski et al. 2018) as torch-fidelity
 * computes it: for each of `subsets` subsets (<= 0: 100), draw m =
 * min(subset_size (<= 0: 1000), n1, n2) rows of each set without
 * replacement (seeded), and take the unbiased MMD^2 with
 * k(x, y) = (x.y / d + 1)^3:
 *   sum_{i!=j} k(x_i,x_j) / (m(m-1)) + sum_{i!=j} k(y_i,y_j) / (m(m-1))
 *   - 2 sum_{i,j} k(x_i,y_j) / m^2.
 * Unbiased: its expectation is 0 for identical distributions, so single
 * values can be negative. Kernels are computed in float64 (BLAS).
 * Errors: LG_ERR_INVALID_ARG (m < 2, d < 1), LG_ERR_NONFINITE,
 * LG_ERR_NOMEM. */
lg_status lg_kid(const float *f1 /* (N1,D) */, int64_t n1, const float *f2 /* (N2,D) */, int64_t n2,
                 int d, int subsets, int subset_size, uint64_t seed, lg_kid_result *out);

/* ======================================================================
 * Toy mode metrics (VEEGAN, PacGAN; PITFALLS.md "Metrics")
 * ====================================================================== */

typedef struct lg_toy_result {
    int64_t n;              /* samples */
    int m;                  /* modes */
    int64_t n_high_quality; /* samples within 3 std of their nearest mode */
    double frac_high_quality; /* n_high_quality / n, in [0, 1] (x100 = the
                                 papers' percentage) */
    int modes_covered;      /* modes that are the nearest mode of >= 1
                               high-quality sample */
    double reverse_kl;      /* KL(q || uniform) in nats, see below */
} lg_toy_result;

/* Mode metrics of n 2-D samples pts (N, 2) against m modes (M, 2) of a
 * mixture of isotropic Gaussians of standard deviation std:
 *  - a sample is high-quality if its Euclidean distance to its nearest
 *    mode is <= 3 * std (ties go to the lower mode index);
 *  - a mode is covered if it is the nearest mode of at least one
 *    high-quality sample;
 *  - reverse KL: q is the histogram over modes of the high-quality samples
 *    (q_j = count_j / n_high_quality), compared with the uniform mode
 *    distribution of the data: KL(q || u) = sum_{j: q_j > 0} q_j log(M q_j)
 *    (natural log). It needs no smoothing: empty modes contribute 0 (the
 *    limit of q log q), and u > 0 everywhere. 0 for a perfectly balanced
 *    generator, log M when every high-quality sample sits on one mode;
 *    with no high-quality sample at all it is defined as log M (nothing
 *    covered is at least as bad as one mode).
 * counts (optional, (M)) receives the per-mode counts of high-quality
 * samples. Non-finite samples count as samples but never as high-quality.
 * Errors: LG_ERR_INVALID_ARG (n < 1, m < 1, std <= 0, two modes closer
 * than std, i.e. the same mode twice: e.g. a ring built with
 * linspace(0, 2 pi, M), whose last mode repeats the first, PITFALLS.md),
 * LG_ERR_NONFINITE (a mode). */
lg_status lg_toy_metrics(const float *pts /* (N,2) */, int64_t n, const float *modes /* (M,2) */, int m,
                         float std, int64_t *counts /* (M) or NULL */, lg_toy_result *out);

/* ======================================================================
 * Classifier class histogram (download-free evaluation, issue 6 item 4)
 * ====================================================================== */

typedef struct lg_class_hist_result {
    int64_t n;           /* samples */
    int k;               /* classes */
    int classes_covered; /* classes predicted for >= min_count samples */
    double kl_uniform;   /* KL(q || uniform) = sum_{c: q_c > 0} q_c log(K q_c),
                            nats, q the predicted-class histogram (as the
                            toy reverse KL: no smoothing needed) */
} lg_class_hist_result;

/* From predicted labels pred (N) in [0, K). min_count <= 0 means 1.
 * counts (optional, (K)) receives the histogram. Errors:
 * LG_ERR_INVALID_ARG (n < 1, k < 1, a label out of range). */
lg_status lg_class_hist_metrics(const int *pred /* (N) */, int64_t n, int k, int64_t min_count,
                                int64_t *counts /* (K) or NULL */, lg_class_hist_result *out);

/* pred[i] = argmax_c probs[i, c] (the first on ties; NaN never wins). */
void lg_argmax_rows(const float *probs /* (N,K) */, int64_t n, int k, int *pred /* (N) */);

/* ======================================================================
 * Spectral collapse (SR-GAN, seed 004 sections 2.3 and 4)
 * ====================================================================== */

/* Default threshold of frac_above. */
#define LG_COLLAPSE_THRESHOLD 0.1

typedef struct lg_spectrum_stat {
    int k;             /* number of singular values */
    double s1;         /* the largest one */
    double auc;        /* area under the normalized curve: mean_i s_i / s1,
                          in [1/k, 1]; 1/k = rank one, 1 = all equal */
    double frac_above; /* fraction of i with s_i / s1 > threshold, in [1/k, 1] */
} lg_spectrum_stat;

/* Statistics of a singular-value spectrum s (K), any order (normalized by
 * its largest value). A collapsed spectrum (SR-GAN: all but the first few
 * singular values fall toward 0) has a small auc and frac_above. If the
 * largest value is 0, auc = frac_above = 0. thresh <= 0 means
 * LG_COLLAPSE_THRESHOLD. Errors: LG_ERR_INVALID_ARG (k < 1, a negative
 * value), LG_ERR_NONFINITE. */
lg_status lg_spectrum_collapse_stat(const double *s /* (K) */, int k, double thresh,
                                    lg_spectrum_stat *out);

/* Flags a sharp drop of a statistic (e.g. auc of one layer, logged every N
 * steps) relative to its running maximum: observation v is "collapsed" when
 * v < (1 - drop) * max(all previous observations) and at least `warmup`
 * observations came before it. One detector per layer; all fields are plain
 * values, so it can be saved with a checkpoint. Non-finite values are
 * ignored (LG_COLLAPSE_NONE, state unchanged). */
typedef struct lg_collapse_detector {
    double drop;         /* relative drop that flags (default 0.5: half of the max) */
    int warmup;          /* observations before any flag (default 2) */
    int64_t count;       /* finite observations so far */
    double running_max;  /* -INFINITY before the first */
    int collapsed;       /* 1 while the latest observation is flagged */
    int64_t onset_step;  /* step of the latest onset, -1 if none */
    int64_t onsets;      /* number of onsets */
} lg_collapse_detector;

#define LG_COLLAPSE_DROP 0.5
#define LG_COLLAPSE_WARMUP 2

typedef enum lg_collapse_event {
    LG_COLLAPSE_NONE = 0,   /* not flagged */
    LG_COLLAPSE_ONSET = 1,  /* flagged now, not flagged at the previous observation: warn */
    LG_COLLAPSE_ONGOING = 2 /* flagged now and before */
} lg_collapse_event;

/* drop in (0, 1) (else LG_COLLAPSE_DROP), warmup >= 0 (< 0: LG_COLLAPSE_WARMUP). */
void lg_collapse_detector_init(lg_collapse_detector *d, double drop, int warmup);
lg_collapse_event lg_collapse_detector_update(lg_collapse_detector *d, int64_t step, double value);

#ifdef __cplusplus
}
#endif
#endif
