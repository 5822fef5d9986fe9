/* lipgan/eval.h - evaluating a set of generated samples: the networks that
 * make features (inception.h, classifier.h) joined to the metric math
 * (metrics.h). `lipgan eval` and `lipgan fid-stats` are thin wrappers, and
 * a trainer can call lg_eval_samples on lg_generate's output for periodic
 * evaluation.
 *
 * Metrics (bit flags, names as --metrics takes them):
 *   is       Inception Score, 10 splits (logits of the Inception net)
 *   fid      FID on Inception pool3 features (2048) vs reference statistics
 *   kid      KID on pool3 features vs reference features
 *   cfid     "classifier FID": FID on the Fashion-MNIST classifier's
 *            penultimate features (128) vs reference statistics
 *   classes  classes covered by the classifier's predictions and
 *            KL(predicted-class histogram || uniform)
 *   toy      2-D toys: modes covered, % high-quality samples, reverse KL
 * Every result carries its sample counts (PITFALLS.md "Metrics").
 *
 * Usage:
 *   lg_eval_inputs in;  lg_eval_inputs_default(&in);
 *   in.metrics = LG_EVAL_CFID | LG_EVAL_CLASSES;
 *   in.classifier = cls;  in.cfid_ref = &ref_stats;   // lg_fid_stats_load or lg_eval_stats
 *   lg_eval_result r;
 *   LG_TRY(lg_eval_samples(&in, x, n, 1, 32, 32, &r));  // x (n, 1, 32, 32) from lg_generate
 *   lg_eval_result_print(&r, stdout);
 *   char *row = lg_eval_result_json(&r, step, ckpt_path);  // one line, free() it
 */
#ifndef LIPGAN_EVAL_H
#define LIPGAN_EVAL_H

#include <stdint.h>
#include <stdio.h>

#include "lipgan/classifier.h"
#include "lipgan/inception.h"
#include "lipgan/metrics.h"
#include "lipgan/status.h"

#ifdef __cplusplus
extern "C" {
#endif

enum {
    LG_EVAL_IS = 1u << 0,
    LG_EVAL_FID = 1u << 1,
    LG_EVAL_KID = 1u << 2,
    LG_EVAL_CFID = 1u << 3,
    LG_EVAL_CLASSES = 1u << 4,
    LG_EVAL_TOY = 1u << 5,
};
#define LG_EVAL_NEEDS_INCEPTION (LG_EVAL_IS | LG_EVAL_FID | LG_EVAL_KID)
#define LG_EVAL_NEEDS_CLASSIFIER (LG_EVAL_CFID | LG_EVAL_CLASSES)

/* Parses a comma-separated list ("is,fid,cfid") into flags. An empty or
 * unknown name is LG_ERR_INVALID_ARG naming it and listing the known ones. */
lg_status lg_eval_parse_metrics(const char *list, unsigned *out);
/* "is", "fid", ... for one flag; "?" for anything else. */
const char *lg_eval_metric_name(unsigned flag);

typedef struct lg_eval_inputs {
    unsigned metrics;                 /* LG_EVAL_* flags */
    const lg_inception *inception;    /* is, fid, kid */
    lg_classifier *classifier;        /* cfid, classes */
    const lg_fid_stats *fid_ref;      /* fid: reference statistics, dim 2048 */
    const float *kid_ref;             /* kid: reference pool3 features (kid_ref_n, 2048) */
    int64_t kid_ref_n;
    const lg_fid_stats *cfid_ref;     /* cfid: reference statistics, dim 128 */
    const float *modes;               /* toy: mode centres (n_modes, 2) */
    int n_modes;
    float mode_std;                   /* toy: the modes' standard deviation */
    int is_splits;                    /* <= 0: 10 */
    int kid_subsets, kid_subset_size; /* <= 0: 100 and 1000 */
    uint64_t seed;                    /* KID subsets; IS shuffle when is_shuffle */
    int is_shuffle;                   /* permute rows before the IS splits (seeded) */
    FILE *progress;                   /* a line per feature pass; NULL: quiet */
} lg_eval_inputs;

/* Zeroes in and sets the defaults above (seed 0, no metrics). */
void lg_eval_inputs_default(lg_eval_inputs *in);

/* The metric reference statistics of dimension dim serve: LG_EVAL_FID for
 * Inception pool3 features (LG_INCEPTION_POOL3_DIM), LG_EVAL_CFID for the
 * classifier's (LG_CLS_FEAT_DIM), 0 for any other. */
unsigned lg_eval_ref_metric(int dim);

typedef struct lg_eval_result {
    unsigned done;               /* the metrics computed */
    int64_t n;                   /* samples evaluated */
    lg_is_result is;
    lg_fid_result fid;
    lg_kid_result kid;
    lg_fid_result cfid;
    lg_class_hist_result classes;
    int64_t class_counts[LG_CLS_CLASSES];
    lg_toy_result toy;
    char inception_desc[256];    /* lg_inception_describe, when used */
} lg_eval_result;

/* Evaluates n samples x: images (N, C, H, W) in [-1, 1] (Inception takes
 * C = 1 or 3, any size; the classifier 1x28x28 or 1x32x32), or toy points
 * (N, 2) with c = 2, h = w = 1. Every requested metric must have its
 * network and reference; a missing one is LG_ERR_INVALID_ARG naming it.
 * Images are quantized to 8 bits (lg_eval_quantize8) before either
 * network, as the reference pipelines see generated images (pytorch-fid
 * reads saved PNGs, the SN-GAN evaluation casts to uint8, torch-fidelity
 * takes uint8): the real data they are compared with is 8-bit too. x is
 * not modified (chunks are quantized into scratch). IS uses the logits
 * without the fc bias (lg_inception_is_logits). A reference that is not a
 * covariance (lg_fid_compute's LG_ERR_INVALID_ARG) is LG_ERR_FORMAT, its
 * message starting "fid reference statistics" or "cfid reference
 * statistics". Other errors of the networks and metric functions pass
 * through. */
lg_status lg_eval_samples(const lg_eval_inputs *in, const float *x, int64_t n, int c, int h, int w,
                          lg_eval_result *out);

/* y = x rounded to the 8-bit grid of [-1, 1]: v = round((x + 1) * 127.5)
 * clamped to [0, 255] (round half to even), then v / 127.5 - 1, the same
 * float the data loaders make of an 8-bit pixel v, so a value on the grid
 * (any real 8-bit image) comes back bit for bit. NaN/Inf stay as they are
 * (the networks reject them). n values; y may equal x. */
void lg_eval_quantize8(const float *x, size_t n, float *y);

/* Features of n images from exactly one of inc / cls (the other NULL), as
 * given (no quantization: for real data): feat (N, 2048 or 128) and/or
 * logits (N, K) (Inception: the fc output with its bias); either may be
 * NULL. Runs in chunks of 256 images, a progress line per chunk of 2560 if
 * progress. */
lg_status lg_eval_features(const lg_inception *inc, lg_classifier *cls, const float *x, int64_t n, int c,
                           int h, int w, float *feat, float *logits, FILE *progress);

/* FID statistics (float64 mean and covariance, n recorded) of n images'
 * features from exactly one of inc / cls, streamed through lg_fid_accum
 * so memory stays O(D^2) for any n. */
lg_status lg_eval_stats(const lg_inception *inc, lg_classifier *cls, const float *x, int64_t n, int c, int h,
                        int w, FILE *progress, lg_fid_stats *out);

/* Human-readable lines, one per metric, each with its sample counts (a
 * reference of unknown size, n_ref 0, says so; a KID whose subsets were all
 * the same, i.e. subset size >= both set sizes, says its std means nothing). */
void lg_eval_result_print(const lg_eval_result *r, FILE *f);

/* One metrics.jsonl row (no newline), malloc'ed (free()), NULL on
 * allocation failure:
 *   {"step":S,"kind":"eval","checkpoint":"...","n":N,
 *    "is":{"mean":..,"std":..,"splits":10,"n":N},
 *    "fid":{"value":..,"n":N,"n_ref":M,"eps":..},
 *    "kid":{"mean":..,"std":..,"subsets":..,"subset_size":..,"n":N,"n_ref":M},
 *    "cfid":{"value":..,"n":N,"n_ref":M,"eps":..},
 *    "classes":{"covered":C,"k":10,"kl_uniform":..,"counts":[..],"n":N},
 *    "toy":{"modes_covered":..,"modes":M,"high_quality_pct":..,"reverse_kl":..,"n":N}}
 * with only the computed metrics; "step" first, as the trainer's rows (its
 * resume trimming reads it). checkpoint may be NULL. */
char *lg_eval_result_json(const lg_eval_result *r, int64_t step, const char *checkpoint);

#ifdef __cplusplus
}
#endif
#endif
