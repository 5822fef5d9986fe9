/* Internal model structure shared by the files of src/models.
 *
 * Building a model is two-phase: the architecture's build function
 * registers layers (which registers named tensors with offsets but no
 * memory), then model.c allocates the parameter/gradient/state buffers in
 * one go, points every tensor into them and initializes the weights in
 * table order from one seeded stream. */
#ifndef LIPGAN_MODELS_INTERNAL_H
#define LIPGAN_MODELS_INTERNAL_H

#include "lipgan/model.h"
#include "lipgan/ops.h"

#define LG_MODEL_MAX_BN 32

typedef enum lg_init_kind {
    LG_INIT_XAVIER,  /* U(-a, a), a = gain * sqrt(6 / (fan_in + fan_out)); bias 0 */
    LG_INIT_TORCH,   /* PyTorch default: U(-1/sqrt(fan_in), +); bias likewise */
} lg_init_kind;

/* A linear / conv / transposed-conv layer. */
typedef struct lg_wlayer {
    lg_layer_info info;      /* public view (w, b, geometry, lip state) */
    char name[LG_MODEL_NAME_MAX];
    int cin, cout, k;        /* in/out features or channels, kernel size (1 for linear) */
    int out_h, out_w;        /* output spatial size */
    lg_init_kind init;
    float gain;              /* xavier gain */
    int wi, bi;              /* indices in the parameter table (bi -1: no bias, info.b NULL) */
    int lip_si[4];           /* indices of the Lipschitz state tensors (-1: none) */
    /* Lipschitz state (pointers into the state buffer set at finalize) */
    void *lip;               /* lg_sn_state or lg_toep_state, owned by the model */
} lg_wlayer;

typedef struct lg_bnlayer {
    lg_bn_state st;          /* run_mean, run_var point into the state buffer */
    int gi, bi;              /* gamma, beta in the parameter table */
    int mi, vi;              /* running mean/var in the state table */
} lg_bnlayer;

typedef struct lg_tdesc {
    char name[LG_MODEL_NAME_MAX];
    int ndim;
    int64_t shape[LG_MAX_DIMS];
    size_t offset;
    size_t numel;
} lg_tdesc;

struct lg_model {
    lg_model_spec spec;
    const lg_backend *be;
    uint64_t seed;

    float *params;   /* (P) */
    float *grads;    /* (P) */
    float *state;    /* (S) */
    size_t np, ns;

    /* parameter table then state table */
    lg_tdesc pdesc[LG_MODEL_MAX_TENSORS], sdesc[LG_MODEL_MAX_TENSORS];
    int n_p, n_s;
    lg_tensor ptens[LG_MODEL_MAX_TENSORS], stens[LG_MODEL_MAX_TENSORS];
    lg_named_tensor named[2 * LG_MODEL_MAX_TENSORS];

    lg_wlayer layers[LG_MODEL_MAX_LAYERS];
    int n_layers;
    lg_bnlayer bns[LG_MODEL_MAX_BN];
    int n_bn;

    int lip_update;  /* 1: training forwards advance the power iteration */
    int bottom;      /* spatial size at the narrow end (size/8) */
    int build_err;   /* a table overflowed while building */
};

/* ---- building (model.c) ---- */
/* Whether a linear layer has a bias tensor. Without one the layer has no
 * "<name>.bias" in the parameter table (nor in checkpoints), info.b is
 * NULL and bi is -1; the apply path then adds nothing (and its fused
 * bias + ReLU is a plain ReLU). */
enum { LG_NOBIAS = 0, LG_BIAS = 1 };
/* Registers a linear layer in -> out, with a bias if bias (LG_BIAS);
 * returns its index. */
int lg__add_linear(lg_model *m, const char *name, int in, int out, int bias, lg_init_kind init,
                   float gain);
/* conv k x k, stride, pad on an in_h x in_w input (with bias). */
int lg__add_conv(lg_model *m, const char *name, int cin, int cout, int k, int stride, int pad,
                 int in_h, int in_w, lg_init_kind init, float gain);
/* The same conv without a bias: for a conv followed by batch norm, whose
 * mean subtraction cancels a bias (its gradient is 0 in training mode), as
 * DCGAN's bias=False convs. */
int lg__add_conv_nobias(lg_model *m, const char *name, int cin, int cout, int k, int stride,
                        int pad, int in_h, int in_w, lg_init_kind init, float gain);
/* transposed conv (weight (cin, cout, k, k)), out = (in-1)*stride - 2 pad + k. */
int lg__add_convt(lg_model *m, const char *name, int cin, int cout, int k, int stride, int pad,
                  int in_h, int in_w, lg_init_kind init, float gain);
int lg__add_bn(lg_model *m, const char *name, int c);

/* ---- forward helpers (model.c) ---- */
/* Applies weight layer li (with its Lipschitz method) to x. */
lg_tensor *lg__wl(lg_ctx *ctx, lg_model *m, int li, lg_tensor *x, int train);
/* relu(lg__wl(...)), the bias add fused with the ReLU */
lg_tensor *lg__wl_relu(lg_ctx *ctx, lg_model *m, int li, lg_tensor *x, int train);
lg_tensor *lg__bn(lg_ctx *ctx, lg_model *m, int bi, lg_tensor *x, int train);
/* relu(batch norm bi of x), the ReLU written over the norm's output */
lg_tensor *lg__bn_relu(lg_ctx *ctx, lg_model *m, int bi, lg_tensor *x, int train);

/* ---- architectures (model_<arch>.c) ---- */
lg_status lg__build_resnet(lg_model *m);
lg_status lg__build_cnn(lg_model *m);
lg_status lg__build_mlp(lg_model *m);
lg_tensor *lg__forward_resnet(lg_ctx *ctx, lg_model *m, lg_tensor *x, int train);
lg_tensor *lg__forward_cnn(lg_ctx *ctx, lg_model *m, lg_tensor *x, int train);
lg_tensor *lg__forward_mlp(lg_ctx *ctx, lg_model *m, lg_tensor *x, int train);

#endif
