/* Internal pieces of the Inception-v3 network (src/metrics/inception*.c):
 * the layer table shared by the loader and the synthetic-weight writer,
 * and the inference kernels (conv via im2col + sgemm, pools, resize). */
#ifndef LIPGAN_METRICS_INCEPTION_INTERNAL_H
#define LIPGAN_METRICS_INCEPTION_INTERNAL_H

#include <stddef.h>

#include "lipgan/inception.h"

#ifdef __cplusplus
extern "C" {
#endif

/* One BasicConv2d (conv without bias + BN + ReLU), BN folded into w, b. */
typedef struct lg_inc_conv {
    char name[48]; /* state-dict prefix, e.g. "Mixed_6b.branch7x7_2" */
    int ic, oc;    /* input / output channels */
    int kh, kw;    /* kernel (asymmetric 1x7, 7x1, 1x3, 3x1 exist) */
    int sh, sw;    /* stride */
    int ph, pw;    /* zero padding, same on both sides of a dim */
    float *w;      /* (OC, IC*KH*KW) conv weight * gamma / sqrt(var + eps) */
    float *b;      /* (OC) beta - mean * gamma / sqrt(var + eps) */
} lg_inc_conv;

/* Block kinds, in torchvision's naming. */
typedef enum { LG_INC_A, LG_INC_B, LG_INC_C, LG_INC_D, LG_INC_E1, LG_INC_E2 } lg_inc_kind;

typedef struct lg_inc_block {
    const char *name; /* "Mixed_5b" */
    lg_inc_kind kind;
    int in_ch, out_ch;
    int first;        /* index of its first conv in the table */
} lg_inc_block;

#define LG_INC_NSTEM 5   /* Conv2d_1a_3x3 .. Conv2d_4a_3x3 */
#define LG_INC_NBLOCK 11 /* Mixed_5b .. Mixed_7c */
#define LG_INC_NCONV 94

/* Fills conv[LG_INC_NCONV] (names and shapes; w, b left NULL) and
 * blocks[LG_INC_NBLOCK] in forward order; the stem convs are 0..4. */
void lg_inc_build_table(lg_inc_conv *conv, lg_inc_block *blocks);

/* ---- kernels; x, y are one image (C, H, W) ---- */

/* Output size of a conv or pool along one dim. */
static inline int lg_inc_out_dim(int in, int k, int s, int p) { return (in + 2 * p - k) / s + 1; }

/* y (OC, OH, OW) = relu(conv(x (IC, H, W)) + b); col is scratch of at least
 * col_cap floats (IC*KH*KW * OH*OW needed unless the conv is 1x1 s1 p0). */
void lg_inc_conv_forward(const lg_inc_conv *cv, const float *x, int h, int w, float *y,
                         float *col, size_t col_cap);
/* 3x3 stride-1 pad-1 pools, y (C, H, W): average over the window's
 * in-image elements (count_include_pad=False), average over all 9
 * (count_include_pad=True), or max over in-image elements. */
typedef enum { LG_INC_AVG_EXCL_PAD, LG_INC_AVG_INCL_PAD, LG_INC_MAX } lg_inc_pool;
void lg_inc_pool3s1(const float *x, int c, int h, int w, lg_inc_pool mode, float *y);
/* (the 3x3 stride-2 max pool and the global average are the element
 * bodies of inception_kern.h, looped over by the host exec) */

/* ---- where the forward pass runs (inception.c drives either) ----
 * The host path runs one image per OpenMP thread; the CUDA path runs nb
 * images per pass. Both go through the same trunk code with batched
 * buffers, so CI checks the batch strides on the host (lg_inc_run_host). */

/* Scratch per image for a 299x299 input (every input is resized to it). */
#define LG_INC_ACT_CAP ((size_t)64 * 147 * 147)  /* largest activation: after Conv2d_2b */
#define LG_INC_TMP_CAP ((size_t)288 * 35 * 35)   /* largest block input / branch temp */
#define LG_INC_COL_CAP ((size_t)288 * 147 * 147) /* largest im2col: Conv2d_2a/2b */

/* Batched kernels: x is (nb, C, H, W), contiguous; an output y(i) that
 * goes into a concat starts at y + i*ys (ys = the concat's image size). */
typedef struct lg_inc_exec {
    void *st;
    /* y (nb, 3, 299, 299) = raw images x (nb, c, h, w) resized (grayscale
     * repeated), as lg_inception_resize; NULL: done on the host */
    void (*prep)(void *st, int nb, const float *x, int c, int h, int w, float *y);
    /* y(i) (OC, OH, OW) = relu(conv(x(i)) + b) */
    void (*conv)(void *st, const lg_inc_conv *cv, int nb, const float *x, int h, int w,
                 float *y, size_t ys);
    /* y(i) (C, OH, OW): 3x3 stride-2 max pool */
    void (*maxpool3s2)(void *st, int nb, const float *x, int c, int h, int w, float *y,
                       size_t ys);
    /* y (nb, C, H, W): 3x3 stride-1 pad-1 pools */
    void (*pool3s1)(void *st, int nb, const float *x, int c, int h, int w, lg_inc_pool mode,
                    float *y);
    /* y (nb, C) = mean over HW of x (nb, C, HW) */
    void (*global_avg)(void *st, int nb, const float *x, int c, int hw, float *y);
} lg_inc_exec;

/* Single-threaded host run that passes nb images at a time through the
 * batched trunk (the CUDA path's layout) with inception_ops.c's kernels;
 * lg_inception_run's host path is nb = 1 per thread. Results must not
 * depend on nb (tests check it). */
lg_status lg_inc_run_host(const lg_inception *net, const float *x, int n, int c, int h, int w, int nb,
                          float *pool3, float *logits);

/* ---- the device driver (lg_inception_run on a GPU) ----
 * An exec's state on a device: where the weights are there, and the
 * im2col scratch of the pass. */
typedef struct lg_inc_dev {
    const float *hparams; /* the net's weights on the host (lg_inc_params) */
    const float *dparams; /* their copy on the device, same layout */
    float *col;           /* device (nb, LG_INC_COL_CAP) */
} lg_inc_dev;

/* The device copy of a weight that lives at host in hparams. */
static inline const float *lg_inc_dev_w(const lg_inc_dev *d, const float *host) {
    return d->dparams + (host - d->hparams);
}

/* The net's host weights (folded, in table order). */
const float *lg_inc_params(const lg_inception *net);

struct lg_backend;
/* x (n, c, h, w) on the host -> pool3 / logits on the host: the resize
 * with kern->prep on the device (images no larger than 299x299 go up raw)
 * or else on the host, the trunk on be's memory with kern's kernels (their
 * st gets a lg_inc_dev), nbmax images per pass (halved while be->alloc
 * fails), the fc head on the host. status (may be NULL) is asked after each pass's
 * download. Errors: LG_ERR_NOMEM, or what status returns. */
lg_status lg_inc_run_device(const lg_inception *net, const struct lg_backend *be, const lg_inc_exec *kern,
                            const float *dparams, lg_status (*status)(void), int nbmax, const float *x,
                            int n, int c, int h, int w, float *pool3, float *logits);
/* Three probe images (3, 23, 37) through the host path and through
 * lg_inc_run_device in passes of 2: LG_ERR_BACKEND when pool3 or the
 * logits differ by more than 1e-4 relative L2. */
lg_status lg_inc_self_check(const lg_inception *net, const struct lg_backend *be, const lg_inc_exec *kern,
                            const float *dparams, lg_status (*status)(void));

#ifdef LG_HAVE_CUDA
/* src/metrics/inception_cuda.cu: the exec entries on the CUDA backend's
 * stream, on device buffers; st is the driver's lg_inc_dev (the conv reads
 * its weights and im2col scratch). Matrix products run in plain fp32
 * whatever lg_cuda_set_precision says. */
void lg_inc_cuda_prep(void *st, int nb, const float *x, int c, int h, int w, float *y);
void lg_inc_cuda_conv(void *st, const lg_inc_conv *cv, int nb, const float *x, int h, int w, float *y,
                      size_t ys);
void lg_inc_cuda_maxpool3s2(void *st, int nb, const float *x, int c, int h, int w, float *y, size_t ys);
void lg_inc_cuda_pool3s1(void *st, int nb, const float *x, int c, int h, int w, lg_inc_pool mode,
                         float *y);
void lg_inc_cuda_global_avg(void *st, int nb, const float *x, int c, int hw, float *y);
#endif

/* ---- synthetic weights (see inception.h) ---- */
uint32_t lg_inc_fnv1a32(const char *s);
/* Value i of the synthetic tensor with the given key, offset, scale. */
float lg_inc_synth_value(uint32_t key, uint32_t i, double offset, double scale);

#ifdef __cplusplus
}
#endif
#endif
