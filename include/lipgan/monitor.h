/* lipgan/monitor.h - spectral monitoring during training, and the spectra
 * log it writes (issue 6 items 1-2).
 *
 * Every `every` steps the monitor takes each weight layer of a network (the
 * raw weight, before SN/Toeplitz) and records:
 *  - the full singular-value spectrum of W_mat (lipschitz.h's layout; a
 *    conv weight (oc, c, kh, kw) as oc x c*kh*kw, a transposed conv with its
 *    output dim 1), in double: the square roots of the eigenvalues of the smaller
 *    Gram matrix (dsyrk + LAPACK dsyevd; ~10x faster than dgesdd, absolute
 *    error ~1e-8 sigma_0, far below what float weights carry);
 *  - sigma_0, sigma_1, sigma_0/sigma_1 and r(W) (thesis 4.1-4.2);
 *  - the layer's own normalization estimate for the current weight (SN:
 *    u^T W v, Toeplitz: ||T u||, from the layer's stored vectors, i.e.
 *    what an evaluation forward divides by) next to the exact value it
 *    estimates (sigma_0 for SN, the conv operator norm for Toeplitz);
 *  - for convolutions, the operator norm sigma(T) of the convolution at the
 *    layer's input size, stride and padding (thesis 4.1.2), by power
 *    iteration with the CPU conv and its adjoint, warm-started from a vector
 *    the monitor keeps per layer: toep_first_iters iterations at a layer's
 *    first record, toep_iters afterwards, so its cost stays small while the
 *    estimate tracks the slowly changing weights (it approaches sigma(T)
 *    from below; op_norm_delta says how much the last iteration moved it;
 *    checkpoints keep the vectors, "the monitor's state" below);
 *  - the "effective" norm of the layer as the forward applies it (operator
 *    norm / normalization estimate x scale);
 *  - the collapse statistics of the normalized spectrum s_i / s_1 (metrics.h
 *    lg_spectrum_collapse_stat: auc = mean_i s_i/s_1, frac_above) and a
 *    per-layer drop detector on one of them (lg_collapse_detector; SR-GAN
 *    Figure 4: a sharp drop of the spectrum is "spectral collapse").
 * Per network:
 *  - lip_upper_product: the product of the effective layer norms, the
 *    standard upper bound for a chain with 1-Lipschitz activations;
 *  - lip_upper: an upper bound that respects the architecture where the
 *    monitor knows it, NaN elsewhere: CNN D and MLP D without BN: the
 *    product; ResNet D (model_resnet.c): per block
 *    pool * (|c2| |c1|) + pool * |c_sc| (or + 1 for an identity shortcut),
 *    pool = 1/2 for the two downsampling blocks (2x2 average pooling has
 *    norm 1/2), times size/4 (the global sum pool over (size/4)^2 positions
 *    has norm size/4) times |l5|. The product alone is NOT a bound for a
 *    residual network (it ignores the shortcut sums and pooling);
 *    both "upper bounds" are ESTIMATES of those bounds, not certified: a
 *    linear layer's norm is exact (LAPACK), but a conv layer's operator
 *    norm comes from the power iteration above, which approaches it from
 *    below, so the value can lie slightly under the bound it estimates
 *    (most after a layer's first record; op_norm_delta, per layer in
 *    spectra.bin, says how much the last iteration still moved it). A
 *    certified per-conv bound costs far more (e.g. an FFT-based bound:
 *    one c_out x c_in SVD per frequency) and is not computed;
 *  - lip_lower: the empirical lower bound max_i ||grad_x D(x_i)|| over up to
 *    lower_n given samples (lipschitz.h lg_lipschitz_lower; evaluation-mode
 *    forward, so nothing in the model changes), for a critic only.
 *
 * The records are appended to RUN_DIR/spectra.bin (format below, read back
 * with lg_spectra_read). Cost per record (bench/bench_monitor.c, CPU, one
 * thread, on the shared 2-core development machine under load, so upper
 * values): 32x32 ResNet D ch=128 0.10-0.15 s (+0.4-0.55 s for the lower
 * bound on 16 samples), G ch=256 0.6-0.8 s (its 32x32 convs dominate);
 * the first record of a network (toep_first_iters) 0.5-0.8 s / 3-4 s.
 * Every 1000 steps that is far below 0.1% of a CPU training run.
 *
 * Usage (what the trainer does):
 *   lg_monitor_opts mo = lg_monitor_opts_default();
 *   mo.be = be;                                  // where the models live
 *   lg_monitor *mon;
 *   LG_TRY(lg_monitor_create(&mon, "runs/x", 1000, &mo));
 *   ... after each step:
 *   lg_monitor_summary ms;
 *   LG_TRY(lg_monitor_record(mon, step, "D", d, x_real, batch, &ms)); // no-op off-step
 *   if (ms.recorded) {
 *       char frag[1024];
 *       lg_monitor_summary_json(&ms, frag, sizeof frag);  // ,"spec_D_auc_min":..
 *       ...append frag to the metrics.jsonl row; print ms.warning if set...
 *   }
 *   lg_monitor_free(mon);
 *
 * spectra.bin (all integers and floats little-endian):
 *   file header, 16 bytes: "LGSPECTR", u32 version (1), u32 header size (16)
 *   records, appended one per (step, network):
 *     u32 magic 0x43455053 ("SPEC"), u32 body bytes B, body, u32 crc32(body)
 *     (zlib's CRC-32 of the B body bytes). body:
 *       i64 step, f64 wall_time (s since the epoch), char net[16] (NUL-padded),
 *       u32 n_layers, u32 NS (number of network scalars, 3 in version 1),
 *       f64 x NS: lip_upper_product, lip_upper, lip_lower (NaN = not known),
 *       then per layer:
 *         char name[48] (NUL-padded), u8 kind (lg_layer_kind), u8 lip
 *         (lg_lip_kind), u8 event (lg_collapse_event), u8 0, u32 nsv,
 *         i64 rows, i64 cols, u32 LS (layer scalars, 10 in version 1),
 *         f64 x LS: sigma_exact, sigma1, ratio01, r, sigma_est, op_norm,
 *         op_norm_delta, eff_norm, auc, frac_above,
 *         f32 x nsv: the singular values, descending (not normalized).
 *   A reader takes the first min(NS, known) / min(LS, known) scalars and
 *   skips the rest, so later versions can append scalars. A crash during an
 *   append leaves a partial last record: the reader drops it and reports
 *   it (lg_spectra_log.truncated); a bad record before the last is an
 *   LG_ERR_FORMAT error. tools/read_spectra.py reads the same format. */
#ifndef LIPGAN_MONITOR_H
#define LIPGAN_MONITOR_H

#include <stddef.h>
#include <stdint.h>

#include "lipgan/backend.h"
#include "lipgan/metrics.h"
#include "lipgan/model.h"
#include "lipgan/status.h"

#ifdef __cplusplus
extern "C" {
#endif

#define LG_SPECTRA_FILE "spectra.bin"
#define LG_SPECTRA_MAGIC "LGSPECTR"
#define LG_SPECTRA_VERSION 1
#define LG_SPECTRA_NET_MAX 16    /* bytes of a network name, NUL included */
#define LG_SPECTRA_NAME_MAX 48   /* bytes of a layer name, NUL included */
#define LG_SPECTRA_NET_SCALARS 3
#define LG_SPECTRA_LAYER_SCALARS 10

/* The statistic the collapse detector watches. */
typedef enum lg_monitor_stat {
    LG_MONITOR_STAT_AUC = 0,   /* mean_i s_i / s_1 (default) */
    LG_MONITOR_STAT_FRAC_ABOVE /* fraction of s_i / s_1 above stat_thresh */
} lg_monitor_stat;

typedef struct lg_monitor_opts {
    const lg_backend *be; /* backend the models live on (NULL = CPU); weights
                             and vectors are downloaded, the analysis runs on
                             the CPU */
    int toep_iters;       /* conv operator norm: power iterations per record,
                             warm-started (default 4) */
    int toep_first_iters; /* ... at a layer's first record (default 30) */
    int lower_n;          /* samples for the gradient-norm lower bound (default
                             16; 0 = never) */
    lg_monitor_stat stat; /* watched statistic (default AUC) */
    double stat_thresh;   /* frac_above threshold (<= 0: LG_COLLAPSE_THRESHOLD) */
    double collapse_drop; /* detector: relative drop that flags (default
                             LG_COLLAPSE_DROP = 0.5) */
    int collapse_warmup;  /* detector: records before any flag (default
                             LG_COLLAPSE_WARMUP) */
    int64_t resume_step;  /* < 0 (default): a new run, an existing spectra.bin
                             is replaced; >= 0: a resumed run, the existing
                             file keeps its records with step <= resume_step
                             (later ones, written after that checkpoint, are
                             dropped) and they re-arm the detectors; a
                             corrupt file is renamed spectra.bin.corrupt and
                             a new one started */
} lg_monitor_opts;

lg_monitor_opts lg_monitor_opts_default(void);

/* One weight layer at one record. */
typedef struct lg_monitor_layer {
    char name[LG_SPECTRA_NAME_MAX];
    int kind;             /* lg_layer_kind */
    int lip;              /* lg_lip_kind of the layer */
    int event;            /* lg_collapse_event of this record */
    int64_t rows, cols;   /* W_mat */
    int nsv;              /* min(rows, cols) */
    double sigma_exact;   /* s_1 = sigma(W_mat) */
    double sigma1;        /* s_2 (0 if nsv == 1); the thesis calls it sigma_1 */
    double ratio01;       /* sigma_exact / sigma1 (INFINITY if sigma1 == 0) */
    double r;             /* r(W) = ||W||_F / (cols sigma) (thesis 4.2.1) */
    double sigma_est;     /* the layer's normalization estimate (SN: u^T W v,
                             Toeplitz: ||T u||); NaN without a method */
    double op_norm;       /* conv/convT: sigma(T) estimate at the layer's input
                             size; linear: sigma_exact */
    double op_norm_delta; /* relative change of op_norm in its last power
                             iteration (0 for linear layers) */
    double eff_norm;      /* operator norm of the layer as applied:
                             op_norm * scale / sigma_est with a method, else
                             op_norm */
    double auc;           /* mean_i s_i / s_1 */
    double frac_above;    /* fraction of s_i / s_1 > stat_thresh */
    float *sv;            /* (nsv) singular values, descending */
} lg_monitor_layer;

/* What one lg_monitor_record call did, for the progress line and
 * metrics.jsonl. */
typedef struct lg_monitor_summary {
    int recorded;         /* 0: not a record step, nothing else is set */
    int64_t step;
    char net[LG_SPECTRA_NET_MAX];
    const char *stat_name;  /* "auc" or "frac" */
    int n_layers;
    double stat_min;      /* watched statistic: minimum over layers ... */
    double stat_mean;     /* ... and mean */
    char stat_min_layer[LG_SPECTRA_NAME_MAX];
    double lip_upper_product, lip_upper, lip_lower;  /* NaN = not known */
    double sn_err_max;    /* max over layers with a method of
                             |sigma_est - exact| / exact (exact: sigma_exact
                             for SN, op_norm for Toeplitz); NaN if none */
    int collapsed;        /* layers flagged at this record */
    int onsets;           /* layers flagged now but not at their previous record */
    char warning[512];    /* "" or "spectral collapse in D: block3.c1 auc 0.081
                             (max 0.314), ..." when onsets > 0 */
    double ms;            /* wall time of this record */
} lg_monitor_summary;

typedef struct lg_monitor lg_monitor;

/* A monitor recording every `every` steps (every >= 1) into
 * run_dir/spectra.bin (run_dir NULL: nothing is written; the records are
 * still computed and available through lg_monitor_last). opts NULL = the
 * defaults. Errors: LG_ERR_INVALID_ARG, LG_ERR_IO, LG_ERR_FORMAT (resuming
 * over a corrupt file), LG_ERR_NOMEM. */
lg_status lg_monitor_create(lg_monitor **out, const char *run_dir, int64_t every,
                            const lg_monitor_opts *opts);
void lg_monitor_free(lg_monitor *mon);

/* 1 if step is a record step (step % every == 0). */
int lg_monitor_due(const lg_monitor *mon, int64_t step);

/* Records network m under the name net (e.g. "D", "G"; at most 15 bytes)
 * if step is due (else sets summary->recorded = 0 and returns LG_OK at no
 * cost). x (N, sample shape) host floats, e.g. the last real batch, feeds
 * the lower bound of a critic (role D); NULL or n = 0 skips it. The same
 * net name must always come with a model of the same layers. summary may be
 * NULL. Errors: LG_ERR_INVALID_ARG, LG_ERR_NONFINITE (a weight with NaN:
 * the SVD fails), LG_ERR_NOMEM, LG_ERR_IO (the append failed). */
lg_status lg_monitor_record(lg_monitor *mon, int64_t step, const char *net, lg_model *m,
                            const float *x, int n, lg_monitor_summary *summary);

/* The layers of net's last record (valid until the next record of net or
 * lg_monitor_free); NULL with *n = 0 if none. */
const lg_monitor_layer *lg_monitor_last(const lg_monitor *mon, const char *net, int *n);

/* The convolution whose operator norm the monitor records for a conv or
 * transposed-conv layer L (lg_model_layer; not for linear layers), as one
 * sample (n = 1): L's own input size, stride and padding; a transposed conv
 * as its adjoint conv, i.e. its weight (c, oc, kh, kw) read as a conv
 * weight (oc' = c, c' = oc) on the transposed conv's output (oc, out_h,
 * out_w) (an operator and its adjoint have the same norm). `lipgan spectra`
 * takes each layer's geometry from here. */
void lg_monitor_layer_geom(const lg_layer_info *L, lg_conv_geom *g);

/* ---- the monitor's state in checkpoints ----
 * Later records depend on what the monitor keeps between records: per
 * conv/convT layer the warm-start vector of its operator-norm power
 * iteration (toep_first_iters iterations from a seeded random vector at a
 * layer's first record, toep_iters from the kept vector afterwards), and per
 * layer the collapse detector. lg_trainer_run's checkpoints carry it as the
 * tensors <net>.monitor.<layer>.state (I64, LG_MONITOR_STATE_WORDS) and, for
 * conv/convT layers, <net>.monitor.<layer>.tv (F32, lg_monitor_state_len), so
 * a resumed run logs and appends to spectra.bin exactly what an
 * uninterrupted one does. words: have_tv (0/1; tv is zeros while 0),
 * detector count, collapsed (0/1), onset_step (-1: none), onsets, and the
 * IEEE-754 bits of running_max (a double, kept exact). A network or layer
 * not recorded yet gives the state of a fresh one. */
#define LG_MONITOR_STATE_WORDS 6

/* Floats of layer L's warm-start vector: c*h*w of the input of
 * lg_monitor_layer_geom for a conv or transposed conv, 0 for linear. */
int64_t lg_monitor_state_len(const lg_layer_info *L);
/* net's state for layer i of model m into words and tv
 * (lg_monitor_state_len floats; may be NULL when that is 0). */
lg_status lg_monitor_state_get(const lg_monitor *mon, const char *net, const lg_model *m, int i,
                               int64_t words[LG_MONITOR_STATE_WORDS], float *tv);
/* LG_ERR_FORMAT (message without a name: the caller adds the tensor's) if
 * words are out of range, or have_tv = 1 with a tv of n values that is
 * missing, zero or not finite. */
lg_status lg_monitor_state_check(const int64_t words[LG_MONITOR_STATE_WORDS], const float *tv, int64_t n);
/* Sets net's state for layer i of model m (the net is created for m's
 * layers if the monitor has not seen it, e.g. before its first record).
 * Errors: lg_monitor_state_check's, LG_ERR_INVALID_ARG, LG_ERR_NOMEM. */
lg_status lg_monitor_state_set(lg_monitor *mon, const char *net, const lg_model *m, int i,
                               const int64_t words[LG_MONITOR_STATE_WORDS], const float *tv);

/* The summary as a JSON fragment for a metrics.jsonl row: it starts with a
 * comma, so it goes right before the row's closing brace:
 *   ,"spec_D_auc_min":0.31,"spec_D_auc_mean":0.52,"spec_D_collapsed":0,
 *    "lip_D_upper":12.5,"lip_D_upper_prod":3.1,"lip_D_lower":0.82,
 *    "sn_D_err_max":0.004,"spec_D_ms":210.5[,"spec_D_warning":"..."]
 * (non-finite numbers as null; no line breaks). Writes "" if
 * !s->recorded. Returns the length snprintf would write (truncates at cap). */
int lg_monitor_summary_json(const lg_monitor_summary *s, char *buf, size_t cap);

/* A short text for the progress line, e.g.
 * "  D: auc min 0.31 (block3.c1) Lip upper est. 12.5, >= 0.82" followed by
 * "  WARNING: spectral collapse in D: ..." when there is a warning. Without
 * an architecture bound (lip_upper NaN: batch norm, G) the upper part reads
 * "n/a (layer-norm product X, no bound)". */
int lg_monitor_summary_line(const lg_monitor_summary *s, char *buf, size_t cap);

/* ---- reading spectra.bin ---- */

typedef struct lg_spectra_record {
    int64_t step;
    double wall_time;
    char net[LG_SPECTRA_NET_MAX];
    double lip_upper_product, lip_upper, lip_lower;
    int n_layers;
    lg_monitor_layer *layers;  /* (n_layers), each with its own sv */
} lg_spectra_record;

typedef struct lg_spectra_log {
    int n;                     /* records, in file order */
    lg_spectra_record *rec;    /* (n) */
    int truncated;             /* 1 if a partial last record was dropped */
} lg_spectra_log;

/* Reads a whole spectra file. Errors: LG_ERR_NOT_FOUND, LG_ERR_IO,
 * LG_ERR_FORMAT (wrong magic or version, a corrupt record before the last),
 * LG_ERR_NOMEM. */
lg_status lg_spectra_read(const char *path, lg_spectra_log *out);
void lg_spectra_log_free(lg_spectra_log *log);

#ifdef __cplusplus
}
#endif
#endif
