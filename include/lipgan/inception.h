/* lipgan/inception.h - the Inception-v3 network of pytorch-fid, inference
 * only, for FID / KID features (pool3) and the Inception Score (logits).
 *
 * Architecture: torchvision's Inception3 with pytorch-fid's patches (the
 * TF-ported "pt_inception-2015-12-05" graph): FIDInceptionA/C/E_1 average
 * pools that do not count padded zeros (count_include_pad=False), and a
 * 3x3 stride-1 MAX pool in the pool branch of Mixed_7c (FIDInceptionE_2).
 * Every conv is followed by BatchNorm (eps 1e-3, running statistics) and
 * ReLU; BN is folded into the conv weights and bias at load. No aux head,
 * no dropout (eval mode).
 *
 * Input: images (N, C, H, W) with values in [-1, 1] (pytorch-fid maps
 * [0, 1] to [-1, 1] by 2x - 1 after resizing; bilinear resizing is linear,
 * so resizing [-1, 1] data directly gives the same numbers up to rounding).
 * C = 1 (grayscale, repeated to 3 channels) or 3 (RGB). Any H, W >= 1 is
 * resized to 299x299 by bilinear interpolation with align_corners=False
 * and no antialiasing, as F.interpolate(x, size=(299, 299),
 * mode="bilinear") in pytorch-fid; a 299x299 input is used as is.
 *
 * Outputs: pool3 (N, 2048), the global average pool after Mixed_7c (what
 * FID and KID use), and logits (N, K) of the final fc layer, K = 1008 for
 * pytorch-fid's weights (1000 for torchvision's). The Inception Score is
 * computed from softmax of the logits WITHOUT the fc bias
 * (lg_inception_is_logits), as the original IS code and torch-fidelity.
 *
 * Weights: a safetensors file with torchvision/pytorch-fid state-dict names
 * ("Conv2d_1a_3x3.conv.weight", "Conv2d_1a_3x3.bn.running_var", ...,
 * "Mixed_7c.branch_pool.conv.weight", "fc.weight", "fc.bias"), F32 (F16,
 * BF16, F64 are converted). tools/convert_inception_weights.py writes it
 * from pytorch-fid's pt_inception-2015-12-05-6726825d.pth or torchvision's
 * inception_v3_google-*.pth. Metadata "lipgan_inception_variant" = "fid"
 * (default when absent) or "torchvision": the torchvision variant has
 * the unpatched blocks (average pools counting padding, an average pool in
 * Mixed_7c); its input is also [-1, 1] (torchvision's transform_input only
 * maps ImageNet-normalized input to that range).
 *
 * Usage:
 *   lg_inception *net;
 *   LG_TRY(lg_inception_load(&net, "pt_inception-2015-12-05.safetensors"));
 *   float pool3[64 * 2048], logits[64 * 1008];   // (N, 2048), (N, K)
 *   LG_TRY(lg_inception_run(net, x, 64, 3, 32, 32, pool3, logits)); // x (64, 3, 32, 32)
 *   lg_inception_free(net);
 *
 * Cost: about 5.7 G multiply-adds per image. On the CPU lg_inception_run spreads the
 * batch over OpenMP threads (OpenBLAS then runs single-threaded in each);
 * a batch of one uses OpenBLAS's threads instead. Each call allocates
 * about 40 MB of scratch per thread and frees it before returning; a
 * loaded network is read-only, so concurrent calls on one net are safe.
 * lg_inception_use_cuda moves the work to a GPU (see there). */
#ifndef LIPGAN_INCEPTION_H
#define LIPGAN_INCEPTION_H

#include <stdint.h>

#include "lipgan/status.h"

#ifdef __cplusplus
extern "C" {
#endif

#define LG_INCEPTION_SIZE 299       /* network input side */
#define LG_INCEPTION_POOL3_DIM 2048 /* pool3 feature size */
#define LG_INCEPTION_BN_EPS 1e-3    /* BatchNorm eps of every layer */

typedef enum lg_inception_variant {
    LG_INCEPTION_FID = 0,         /* pytorch-fid / TF 2015-12-05 (default) */
    LG_INCEPTION_TORCHVISION = 1, /* torchvision's unpatched Inception3 */
} lg_inception_variant;

typedef struct lg_inception lg_inception;

/* Loads and BN-folds the weights. Errors: LG_ERR_NOT_FOUND / LG_ERR_IO
 * (file), LG_ERR_FORMAT (not safetensors, unknown variant), and for a
 * missing or misshaped tensor LG_ERR_NOT_FOUND / LG_ERR_SHAPE with a
 * message naming the tensor; LG_ERR_NONFINITE for a NaN/Inf weight or a
 * negative running_var; LG_ERR_NOMEM. *out is NULL on error. */
lg_status lg_inception_load(lg_inception **out, const char *path);
void lg_inception_free(lg_inception *net);

/* Number of logits K (the rows of fc.weight: 1008 or 1000). */
int lg_inception_num_classes(const lg_inception *net);
lg_inception_variant lg_inception_get_variant(const lg_inception *net);
/* One line naming the weights and preprocessing, for reports and the
 * "source" of FID statistics, e.g. "pytorch-fid inception-v3
 * (pt_inception-2015-12-05) pool3, bilinear resize to 299x299". */
const char *lg_inception_describe(const lg_inception *net);

/* Runs the network on x (N, C, H, W), C = 1 or 3, values in [-1, 1].
 * Writes pool3 (N, 2048) and/or logits (N, K); either may be NULL.
 * Errors: LG_ERR_INVALID_ARG (n < 1, c not 1 or 3, h or w < 1 or > 4096,
 * both outputs NULL), LG_ERR_NONFINITE (a NaN/Inf pixel), LG_ERR_NOMEM. */
lg_status lg_inception_run(const lg_inception *net, const float *x, int n, int c, int h, int w,
                           float *pool3, float *logits);

/* Runs the network on the GPU from now on: uploads the folded weights
 * (about 95 MB) to the CUDA backend's device (lg_cuda_set_device picks it)
 * and checks itself on three probe images against the CPU (relative L2
 * error of pool3 and the logits at most 1e-4). Later lg_inception_run
 * calls run the resize (on the host for images larger than 299x299), the
 * convolutions and the pools on the device in plain fp32 (whatever
 * lg_cuda_set_precision says), in passes of up to 32 images (about 1.3 GB
 * of device scratch from the backend's pool, taken per call and kept
 * cached by the pool), and the fc layer on the host. On the GPU, calls on one net must not run concurrently. Errors:
 * LG_ERR_UNSUPPORTED (built without CUDA, no usable GPU), LG_ERR_NOMEM,
 * LG_ERR_BACKEND (a CUDA failure, or the self-check disagreed); on any
 * error the net stays on the CPU, usable as before. Calling it again is
 * a no-op. */
lg_status lg_inception_use_cuda(lg_inception *net);
/* 1 after a successful lg_inception_use_cuda, else 0. */
int lg_inception_on_cuda(const lg_inception *net);

/* The logits the Inception Score uses: logits (N, K) = pool3 (N, 2048)
 * times fc.weight^T, WITHOUT fc.bias. The original IS code (openai
 * improved-gan inception_score.py: logits = pool3 @ W, W the input of
 * softmax/logits/MatMul) and torch-fidelity / torchmetrics
 * ("logits_unbiased") leave the bias out; lg_inception_run's logits are the
 * classification output, with it. Errors: LG_ERR_INVALID_ARG (n < 1, a
 * NULL pointer). */
lg_status lg_inception_is_logits(const lg_inception *net, const float *pool3 /* (N,2048) */, int64_t n,
                                 float *logits /* (N,K) */);

/* Bilinear resize of c planes x (C, H, W) to y (C, OH, OW), as
 * F.interpolate(mode="bilinear", align_corners=False, antialias=False)
 * with an output size (source coordinate (dst + 0.5) * H / OH - 0.5,
 * clamped at 0; no antialiasing when shrinking). */
void lg_inception_resize(const float *x, int c, int h, int w, int oh, int ow, float *y);

/* ---- synthetic weights (tests; no download needed) ----
 *
 * Writes a weights file for the FID architecture with K = 1008 whose every
 * value is a function of (seed, tensor name, element index), reproduced
 * bit for bit by tools/gen_inception_reference.py:
 *   key  = fnv1a32(name) ^ (seed * 0x9E3779B9 mod 2^32)
 *   h_i  = fmix32(key + i * 0x9E3779B9 mod 2^32)     (murmur3 finalizer)
 *   u_i  = ((h_i >> 8) - 2^23) * 2^-23                (exact, in [-1, 1))
 *   v_i  = (float)(offset + scale * u_i)               (in double)
 * with (offset, scale) by tensor kind: conv weight (0, sqrt(6 / fan_in));
 * bn.weight (1, 0.25); bn.bias (0, 0.1); bn.running_mean (0, 0.1);
 * bn.running_var (1, 0.25); fc.weight (0, sqrt(3 / 2048)); fc.bias
 * (0, 0.1). Activations stay O(1) through the network (pool3 mean
 * about 0.6, logits std about 1 on uniform [-1, 1] noise images). About 95 MB. */
lg_status lg_inception_write_synthetic(const char *path, uint32_t seed);

#ifdef __cplusplus
}
#endif
#endif
