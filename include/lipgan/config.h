/* lipgan/config.h - training configuration: a typed struct, its key table,
 * YAML parsing (libyaml), command-line overrides and printing.
 *
 * Every setting has a dotted key ("model.g.width", "optim.d.lr", "seed")
 * described by one row of a table (name, type, range or choices, help); the
 * parser, the --set overrides, the printer and `lipgan train --help-config`
 * all walk that table, so they cannot disagree. A YAML file nests the
 * dotted keys as mappings:
 *
 *   data:
 *     format: fashion-mnist
 *     path: /usr/share/datasets/fashion-mnist
 *   model: {g: {arch: resnet, width: 64}, d: {arch: resnet, width: 64}}
 *   loss: hinge
 *   lipschitz: {d: {sn: true}}
 *
 * Keys absent from the file keep their defaults (lg_config_default). An
 * unknown key, a value of the wrong type, a value out of range, a duplicate
 * key or malformed YAML is an LG_ERR_INVALID_ARG error whose message names
 * the file and line and the full key:
 *   "cfg.yaml:7: model.g.widht: unknown key; keys of model.g: arch, width, ..."
 *   "cfg.yaml:9: optim.d.beta2: 1.5 is out of range [0, 0.999999]"
 *
 * Usage:
 *   lg_config c;
 *   lg_config_default(&c);
 *   LG_TRY(lg_config_load_file(&c, "configs/fmnist_sn_hinge.yaml"));
 *   LG_TRY(lg_config_set(&c, "train.steps=100"));      // --set overrides
 *   LG_TRY(lg_config_validate(&c));                      // ranges and cross-key checks
 *   char *text = lg_config_to_yaml(&c);                   // effective config
 */
#ifndef LIPGAN_CONFIG_H
#define LIPGAN_CONFIG_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "lipgan/status.h"

#ifdef __cplusplus
extern "C" {
#endif

#define LG_CFG_STR_MAX 24     /* enum-valued strings ("resnet", "hinge") */
#define LG_CFG_PATH_MAX 1024  /* file system paths */

/* model.g / model.d */
typedef struct lg_cfg_net {
    char arch[LG_CFG_STR_MAX];  /* resnet | cnn | mlp */
    int width;                  /* channels / hidden units; 0 = the arch's default */
    int depth;                  /* MLP hidden layers; 0 = default (4) */
    int bn;                     /* batch norm layers (G: default on; D: off) */
    float lrelu;                /* CNN D LeakyReLU slope */
} lg_cfg_net;

/* lipschitz.g / lipschitz.d: any combination of the toolkit's methods */
typedef struct lg_cfg_lip {
    int sn;                     /* spectral normalization of every weight layer */
    int sn_iters;               /* power iterations per step */
    float toeplitz_k;           /* > 0: Toeplitz (true conv operator) norm scaled to k, instead of SN */
    float sr_gamma;             /* > 0: SR-GAN, compensating this fraction of the singular
                                 * values (paper: 0.5; tiny = 1 value = exact SN) */
    int sr_every;               /* ... applied after every N-th update of the network, skipped
                                 * (non-finite) ones counted (paper: 5, = n_dis) */
    char sr_schedule[LG_CFG_STR_MAX]; /* updates: after every sr_every-th update (the paper's
                                 * "last D update" with sr_every = n_dis); steps: after every
                                 * update of every sr_every-th step, the first included (the
                                 * public SR-GAN code: iteration % 5 == 0) */
    int sr_dynamic;             /* SR's dynamic variant (running maximum of the spectrum) */
    float clip;                 /* > 0: weight clipping to [-c, c] after each update (WGAN) */
    float gp_lambda;            /* > 0: gradient penalty weight (D only) */
    char gp_kind[LG_CFG_STR_MAX]; /* two-sided | one-sided | zero-centered */
    float rw_lambda;            /* > 0: r(W) rank penalty weight (thesis 4.2.2) */
    float clamp_ratio;          /* > 0: spectral gradient clamping ratio r (thesis 4.2.3) */
    int clamp_iters;            /* power iterations per update for the gradient's top two
                                 * singular pairs (warm-started; the thesis code: 3) */
} lg_cfg_lip;

/* optim.g / optim.d */
typedef struct lg_cfg_adam {
    float lr, beta1, beta2, eps;  /* beta1, beta2: Adam only */
    float alpha;                  /* RMSProp only: square_avg decay (PyTorch's default 0.99) */
    char kind[LG_CFG_STR_MAX];    /* adam | rmsprop (lipgan/optim.h) */
} lg_cfg_adam;

typedef struct lg_config {
    struct {
        char format[LG_CFG_STR_MAX];  /* fashion-mnist | mnist | idx | cifar10 | stl10 | png | ring8 | grid25 */
        char path[LG_CFG_PATH_MAX];   /* file or directory (unused for toys) */
        char split[LG_CFG_STR_MAX];   /* train | test | unlabeled */
        int image_size;               /* mnist: pad to (0 = 28); stl10: 96/48/32 (0 = 96) */
        int channels;                 /* png: 1 or 3 */
        int64_t toy_n;                /* toys: number of points */
        float instance_noise;         /* U[0, a] added to real images (thesis: 1/128) */
    } data;
    struct {
        int z_dim;
        lg_cfg_net g, d;
    } model;
    char loss[LG_CFG_STR_MAX];        /* minimax | nonsat | hinge | wasserstein */
    struct {
        lg_cfg_lip g, d;
    } lipschitz;
    struct {
        lg_cfg_adam g, d;
    } optim;
    struct {
        int64_t steps;                /* generator updates */
        int n_dis;                    /* D updates per G update */
        int n_dis_boost;              /* > 0: D updates before the boosted G updates (WGAN: 100) */
        int64_t n_dis_boost_first;    /* ... which are the first N (WGAN: 25) */
        int64_t n_dis_boost_every;    /* ... and every N-th (step % N == 0; WGAN: 500; 0 = none) */
        int batch_d, batch_g;
        char lr_decay[LG_CFG_STR_MAX];  /* linear | none */
        int max_nonfinite;            /* this many skipped updates in a row stop the run */
    } train;
    struct {
        float decay;                  /* 0 = no EMA of G */
        int64_t start;                /* G step from which the EMA averages (copies before) */
    } ema;
    int64_t seed;
    int threads;                      /* CPU threads; 0 = default (OMP_NUM_THREADS or all cores) */
    char device[LG_CFG_STR_MAX];      /* cpu | cuda */
    char dist[LG_CFG_STR_MAX];        /* none | mpi (lipgan/dist.h) */
    int dist_sync_bn;                 /* dist: batch norm by the whole batch's statistics */
    struct {                          /* only with device: cuda */
        int device;                   /* GPU index (lg_cuda_set_device; + local rank under dist) */
        char precision[LG_CFG_STR_MAX]; /* fp32 | tf32 | bf16 matrix math (lipgan/cuda.h) */
        int deterministic;            /* deterministic convolution algorithms only */
        int benchmark;                /* choose algorithms by timing them (else heuristics) */
        int graph;                    /* replay each update as a captured CUDA graph */
    } cuda;
    struct {
        int64_t every;                /* progress line + metrics.jsonl row every N G steps */
        int64_t samples_every;        /* PNG grid every N G steps (0 = only at the end) */
        int64_t checkpoint_every;     /* checkpoint every N G steps (0 = only at the end) */
        int keep;                     /* checkpoints kept */
        int sample_n;                 /* samples in a grid */
        int64_t spectra_every;        /* spectral monitor record every N G steps (0 = off;
                                       * a multiple of every): DIR/spectra.bin */
        int tensorboard;              /* TensorBoard event file in the run directory */
    } log;
    struct {                          /* periodic evaluation (eval.h) */
        int64_t every;                /* every N G steps (0 = off; a multiple of log.every) */
        char metrics[LG_CFG_PATH_MAX]; /* "auto" | "none" | a list such as "cfid,classes" */
        int64_t n;                    /* samples (0 = 2500 for toys, 10000 for images) */
        int64_t ref_n;                /* real images for computed reference statistics */
        char ref[LG_CFG_PATH_MAX];    /* `lipgan fid-stats` file (2048-D: fid, 128-D: cfid);
                                       * "" = computed from the training data */
        char classifier[LG_CFG_PATH_MAX]; /* "" = models/fmnist_classifier.safetensors */
        char inception[LG_CFG_PATH_MAX];  /* Inception-v3 weights ("" = none) */
    } eval;
} lg_config;

typedef enum lg_cfg_type {
    LG_CFG_INT = 0,   /* int */
    LG_CFG_I64,       /* int64_t */
    LG_CFG_FLOAT,     /* float */
    LG_CFG_BOOL,      /* int 0/1; YAML true/false/yes/no/on/off */
    LG_CFG_ENUM,      /* char[LG_CFG_STR_MAX], one of `choices` */
    LG_CFG_PATH,      /* char[LG_CFG_PATH_MAX], any string */
} lg_cfg_type;

/* One row of the key table. */
typedef struct lg_cfg_key {
    const char *name;     /* dotted key */
    lg_cfg_type type;
    size_t offset;        /* of the field in lg_config */
    double min, max;      /* numeric range (inclusive) */
    const char *choices;  /* ENUM: "a|b|c" */
    const char *help;     /* one line */
} lg_cfg_key;

/* The key table (in printing order) and its length. */
const lg_cfg_key *lg_config_keys(int *n);
/* The row of a key, NULL if unknown. */
const lg_cfg_key *lg_config_find_key(const char *name);

/* Fills c with the defaults (the thesis' SN-GAN baseline: ResNet, hinge,
 * SN in D, Adam 2e-4 (0, 0.9), n_dis 5 without boost, batches 64/128,
 * linear decay). */
void lg_config_default(lg_config *c);

/* Sets one key from its text value ("0.5", "true", "hinge"); `where` is
 * used as the message prefix (e.g. "--set" or "cfg.yaml:12"). */
lg_status lg_config_set_value(lg_config *c, const char *key, const char *value,
                              const char *where);
/* A "key=value" override (the argument of --set). */
lg_status lg_config_set(lg_config *c, const char *assignment);

/* Applies a YAML document (file or string) over c. label names it in errors.
 * A file that sets no keys (empty, only comments, "{}") is an error: it
 * would silently train the built-in defaults (cifar10). */
lg_status lg_config_load_file(lg_config *c, const char *path);
lg_status lg_config_load_string(lg_config *c, const char *yaml, size_t len,
                                const char *label);

/* Checks every field against its key's range and choices (as the setters
 * do, for callers that fill the struct directly), then cross-key checks;
 * the message names the offending key. Settings that
 * would do nothing are errors: a key of the other network (gradient
 * penalty on G, r(W) penalty on D), model.d.bn on a resnet D (it has no batch
 * norm; a cnn D has DCGAN's), sr_dynamic without sr_gamma, SR without SN/Toeplitz on
 * that network, Adam's betas with optim.<net>.kind rmsprop and RMSProp's
 * alpha with adam; also e.g. a convolutional model for 2-D toy data. */
lg_status lg_config_validate(const lg_config *c);

/* Harmless settings that do nothing (data.path with a 2-D toy, sr_every
 * without SR, sn_iters without SN/Toeplitz, gp_kind without the penalty,
 * train.n_dis_boost_first/_every without n_dis_boost, a boost that never
 * applies or equals n_dis):
 * one line each, "<prefix>warning: ...", to f (NULL: only counted).
 * Returns their number. */
int lg_config_warnings(const lg_config *c, FILE *f, const char *prefix);

/* The value of key k in c as printed in the YAML ("0.0002", "true",
 * "hinge", a quoted path) into buf. */
void lg_config_value_str(const lg_config *c, const lg_cfg_key *k, char *buf, size_t cap);
/* The keys whose values differ between a and b, as "key: a -> b, ..." into
 * buf (cut with "..." if it does not fit); returns how many differ. */
int lg_config_diff(const lg_config *a, const lg_config *b, char *buf, size_t cap);

/* The effective config as YAML that lg_config_load_string reads back to an
 * identical struct (floats printed in their shortest round-trip form).
 * malloc'ed; NULL on allocation failure. */
char *lg_config_to_yaml(const lg_config *c);
/* Writes lg_config_to_yaml to f; with help = 1 adds each key's help and range
 * as a comment. */
lg_status lg_config_print(const lg_config *c, FILE *f, int help);

/* Is the data format a 2-D toy ("ring8", "grid25")? */
int lg_config_is_toy(const lg_config *c);

/* The periodic-evaluation metrics (eval.h's LG_EVAL_* flags) for training
 * samples of shape (ch, h, w) (toys: (2, 1, 1); h = 0: size not known
 * yet): eval.metrics, where "auto" means toy for 2-D toys, cfid,classes
 * for 1x28x28 / 1x32x32 images, is,fid when eval.inception is set, and
 * nothing otherwise; "none" is 0. A metric that cannot apply to the data
 * (or lacks its network) is an LG_ERR_INVALID_ARG naming the key. */
lg_status lg_config_eval_metrics(const lg_config *c, int ch, int h, int w, unsigned *out);

#ifdef __cplusplus
}
#endif
#endif
