/* lipgan/classifier.h - a small Fashion-MNIST classifier trained by lipgan
 * itself, for evaluation that needs no downloaded network (issue 6 item 4):
 * a "classifier FID" on its penultimate features, the number of classes a
 * generator covers and the KL divergence of its predicted-class histogram
 * from uniform (metrics.h does the math).
 *
 * Network (input (N, 1, 32, 32) in [-1, 1]: Fashion-MNIST padded 28 -> 32
 * with -1, as `lipgan train` loads it with data.image_size 32):
 *   conv1 3x3 1->32 stride 2 pad 1   -> (N, 32, 16, 16), ReLU
 *   conv2 3x3 32->64 stride 2 pad 1  -> (N, 64, 8, 8), ReLU
 *   conv3 3x3 64->64 stride 2 pad 1  -> (N, 64, 4, 4), ReLU, flatten (N, 1024)
 *   fc1 1024->128, ReLU              -> features (N, 128)
 *   fc2 128->10                      -> logits (N, 10)
 * 188,234 parameters, PyTorch names and layouts ("conv1.weight" (32, 1, 3,
 * 3), "fc1.weight" (128, 1024), ...), PyTorch's default initialization
 * (U(-1/sqrt(fan_in), 1/sqrt(fan_in)) for weights and biases) from
 * lg_rng(seed, LG_RNG_STREAM_INIT).
 *
 * Weights file (safetensors, F32): the ten tensors above and metadata
 * "format" = "lipgan-classifier-1", "arch" (LG_CLS_ARCH), "test_accuracy"
 * (on the whole test set), "test_n", "epochs", "seed", "threads",
 * "lipgan_version", "command". The repository ships
 * models/fmnist_classifier.safetensors, made by
 *   lipgan train-classifier --data /usr/share/datasets/fashion-mnist \
 *       --out models/fmnist_classifier.safetensors --threads 1
 * (defaults: 10 epochs, seed 1, batch 128, Adam 1e-3 decayed linearly to
 * 0; about 2 CPU-minutes).
 * Training is bitwise reproducible for a fixed thread count.
 *
 * Usage:
 *   lg_classifier *c;
 *   LG_TRY(lg_classifier_load(&c, "models/fmnist_classifier.safetensors", NULL));
 *   float feat[256 * LG_CLS_FEAT_DIM], logits[256 * LG_CLS_CLASSES];
 *   LG_TRY(lg_classifier_run(c, x, 256, 1, 32, 32, feat, logits));  // x (256, 1, 32, 32)
 *   lg_classifier_free(c);
 */
#ifndef LIPGAN_CLASSIFIER_H
#define LIPGAN_CLASSIFIER_H

#include <stdint.h>
#include <stdio.h>

#include "lipgan/backend.h"
#include "lipgan/data.h"
#include "lipgan/status.h"
#include "lipgan/tensor.h"

#ifdef __cplusplus
extern "C" {
#endif

#define LG_CLS_FORMAT "lipgan-classifier-1"
#define LG_CLS_ARCH "conv3x3s2(32)-conv3x3s2(64)-conv3x3s2(64)-fc(128)-fc(10), input 1x32x32 in [-1,1]"
#define LG_CLS_SIZE 32        /* input side (28x28 input is padded with -1) */
#define LG_CLS_CLASSES 10
#define LG_CLS_FEAT_DIM 128   /* penultimate features (FID) */
/* The shipped weights, relative to the repository root. */
#define LG_CLS_DEFAULT_PATH "models/fmnist_classifier.safetensors"

typedef struct lg_classifier lg_classifier;

/* What a weights file records about how it was made (0 / "" if unknown). */
typedef struct lg_classifier_info {
    double test_accuracy;  /* fraction in [0, 1] on test_n test images */
    int64_t test_n;
    int epochs;
    uint64_t seed;
    int threads;
    char command[512];     /* the command line that trained it */
} lg_classifier_info;

/* A classifier with fresh weights on backend be (NULL = CPU). */
lg_status lg_classifier_create(lg_classifier **out, const lg_backend *be, uint64_t seed);
/* Loads a weights file written by lg_classifier_save. Errors:
 * LG_ERR_NOT_FOUND (no file: the message says how to make one),
 * LG_ERR_IO, LG_ERR_FORMAT (not a classifier file, other arch),
 * LG_ERR_SHAPE / LG_ERR_NOT_FOUND (a tensor), LG_ERR_NONFINITE. */
lg_status lg_classifier_load(lg_classifier **out, const char *path, const lg_backend *be);
/* Writes the weights and c's info as metadata (atomically). */
lg_status lg_classifier_save(const lg_classifier *c, const char *path);
void lg_classifier_free(lg_classifier *c);

const lg_classifier_info *lg_classifier_get_info(const lg_classifier *c);
void lg_classifier_set_info(lg_classifier *c, const lg_classifier_info *info);
/* Number of learnable scalars (188,234). */
int64_t lg_classifier_num_params(const lg_classifier *c);

/* The network as a graph: x (N, 1, 32, 32) -> logits (N, 10); *feat (if
 * not NULL) gets the features (N, 128). Differentiable. */
lg_tensor *lg_classifier_forward(lg_ctx *ctx, lg_classifier *c, lg_tensor *x, lg_tensor **feat);

/* Inference on host images x (N, C, H, W), C = 1, H = W = 32, or 28 (padded
 * with -1 to 32, as the loader does), values in [-1, 1]; in batches of 256.
 * Writes feat (N, 128) and/or logits (N, 10); either may be NULL.
 * Errors: LG_ERR_INVALID_ARG (other shapes, n < 1), LG_ERR_NONFINITE (a
 * NaN/Inf pixel), LG_ERR_NOMEM. */
lg_status lg_classifier_run(lg_classifier *c, const float *x, int64_t n, int ch, int h, int w,
                            float *feat /* (N,128) */, float *logits /* (N,10) */);

/* Fraction of the first n (<= 0: all) samples of d whose argmax matches
 * the label; d must be labelled (10 classes, 1x28x28 or 1x32x32). */
lg_status lg_classifier_accuracy(lg_classifier *c, const lg_dataset *d, int64_t n, double *acc);

typedef struct lg_classifier_train_opts {
    int epochs;           /* passes over the training set (default 10) */
    int batch;            /* default 128 */
    float lr;             /* Adam (0.9, 0.999, 1e-8) learning rate, decayed linearly
                             to 0 over the run (default 1e-3) */
    uint64_t seed;        /* data order (the init seed is lg_classifier_create's) */
    int64_t max_steps;    /* > 0: stop after this many steps (tests) */
    FILE *progress;       /* a line per epoch (and every 100 steps); NULL: quiet */
    const lg_dataset *test; /* evaluated after each epoch if not NULL */
    /* Called after every step with its loss (tests); may be NULL. */
    void (*on_step)(int64_t step, float loss, void *user);
    void *user;
} lg_classifier_train_opts;

/* Fills o with the defaults above (seed 1, nothing else set). */
void lg_classifier_train_opts_default(lg_classifier_train_opts *o);

/* Trains c with cross-entropy on the labelled set train (1x32x32 or
 * 1x28x28, 10 classes). Errors: LG_ERR_INVALID_ARG (unlabelled or wrong
 * shape data, bad options), LG_ERR_NONFINITE (a loss that is not finite),
 * LG_ERR_NOMEM. */
lg_status lg_classifier_train(lg_classifier *c, const lg_dataset *train,
                              const lg_classifier_train_opts *o);

#ifdef __cplusplus
}
#endif
#endif
