/* lipgan/model.h - generator and discriminator networks.
 *
 * A model is a fixed list of layers whose learnable weights live in ONE
 * contiguous parameter buffer (params, P floats) with ONE gradient buffer of
 * the same layout (grads), plus one buffer of persistent non-parameter state
 * (BN running statistics, spectral-norm u/v vectors, Toeplitz vectors). Both
 * are described by tables of named tensors (name, shape, offset), so a
 * checkpoint saves and loads them by name and an optimizer steps the whole
 * buffer in one call.
 *
 * Architectures (lg_model_arch), all with configurable widths, image
 * channels (1 or 3) and image size (32, or 48 for STL-10):
 *  - LG_ARCH_RESNET: the SN-GAN ResNet (Miyato et al. 2018; thesis figs.
 *    5.2-5.4; block structure of the authors' code, see model_resnet.c).
 *    D: OptimizedBlock(c->ch, down), ResBlock(ch->ch, down), ResBlock(ch),
 *    ResBlock(ch), ReLU, global sum pool, linear(ch->1) without a bias
 *    (as the SN-GAN and thesis code: no "l5.bias" tensor at all).
 *    G: linear(z->bottom^2*ch), 3 up-ResBlocks(ch) (BN, ReLU, upsample,
 *    conv3x3, BN, ReLU, conv3x3; shortcut upsample + conv1x1), BN, ReLU,
 *    conv3x3(ch->c), tanh. bottom = size/8. At size 48 this is the 32x32
 *    network with a 6x6 bottom, not SN-GAN's deeper STL-10 variant.
 *  Every architecture's training-mode forward matches the same network in
 *  PyTorch to ~1e-6 (tests/test_models.c, tools/model_reference.py).
 *  - LG_ARCH_CNN: the "standard CNN" of Miyato et al. (DCGAN-style).
 *    D: conv3x3 ch s1, conv4x4 ch s2, conv3x3 2ch, conv4x4 2ch s2, conv3x3
 *    4ch, conv4x4 4ch s2, conv3x3 8ch, linear(bottom^2*8ch -> 1), LeakyReLU
 *    0.1 after every conv; with batchnorm (default off), BN between every
 *    conv but the first and its LeakyReLU, those convs without bias (the
 *    DCGAN discriminator's placement, the WGAN paper's critic; see
 *    model_cnn.c). G: linear(z -> bottom^2*8ch), BN, ReLU, convT4x4 s2 to
 *    4ch, 2ch, ch (each BN, ReLU), conv3x3 to c, tanh.
 *  - LG_ARCH_MLP: depth hidden linear layers of width ch with ReLU (as the
 *    WGAN paper's MLP: depth 4, width 512), optional BN after each hidden
 *    linear; G ends with tanh for images and with no activation for flat
 *    data (data_dim > 0, e.g. 2-D toys); D ends with linear(ch -> 1).
 *
 * Initialization (documented choice, seeded, identical on every backend):
 *  - RESNET: Xavier-uniform as the SN-GAN code (Chainer/PyTorch ports):
 *    gain sqrt(2) for the 3x3 convs inside residual branches, gain 1 for
 *    1x1 shortcut convs, the first linear of G, the last conv of G and the
 *    final linear of D; biases 0 (D's l5 has none).
 *  - CNN and MLP: PyTorch's default (kaiming_uniform(a=sqrt(5)), i.e.
 *    U(-1/sqrt(fan_in), 1/sqrt(fan_in)) for weights and biases).
 *  - BN: gamma 1, beta 0, running mean 0, running var 1.
 *
 * Lipschitz option (lg_model_spec.lip), applied to EVERY linear, conv and
 * transposed-conv layer of the network:
 *  - LG_LIP_NONE
 *  - LG_LIP_SN: spectral normalization of the reshaped weight matrix
 *    (out x in*kh*kw; for a transposed conv the "out" dim is dim 1), u/v
 *    persistent, sn_iters power iterations per updating forward.
 *  - LG_LIP_TOEPLITZ: convolutions (and transposed convolutions) are
 *    scaled to operator norm toep_k by power iteration on the true
 *    convolution (thesis 4.1.2, 5.5.1); linear layers (where the Toeplitz
 *    matrix is the weight) get plain SN, unscaled (norm 1), as the thesis
 *    code's SNLinear: k multiplies each convolution only.
 * Weight clipping, SR, clamping and the r(W) penalty are applied by the
 * trainer on the raw weights (lg_model_layer()); clipping covers the whole
 * parameter buffer, batch norm's gamma and beta included (as the WGAN code
 * clamps all of the critic's parameters).
 *
 * Usage:
 *   lg_model_spec s; lg_model_spec_default(&s, LG_ARCH_RESNET, LG_NET_D);
 *   s.lip = LG_LIP_SN;
 *   lg_model *d; LG_TRY(lg_model_create(&d, &s, be, seed));
 *   lg_tensor *p[LG_MODEL_MAX_TENSORS]; int np = lg_model_param_tensors(d, p);
 *   lg_tensor *y = lg_model_forward(ctx, d, x, 1);        // (N,1)
 *   lg_tensor *g[LG_MODEL_MAX_TENSORS];
 *   lg_grad(ctx, lg_mean(ctx, y), NULL, np, p, g, 0);
 *   lg_model_store_grads(ctx, d, g, 0);                   // into d's grads
 *   lg_ctx_reset(ctx);
 *   be->adam(lg_model_params(d), m, v, lg_model_grads(d), lg_model_num_params(d), ...);
 *   lg_model_free(d);
 * A steady-state step (same shapes) makes no system allocation: the model
 * allocates only in lg_model_create, ops use the context's arena.
 */
#ifndef LIPGAN_MODEL_H
#define LIPGAN_MODEL_H

#include <stddef.h>
#include <stdint.h>

#include "lipgan/backend.h"
#include "lipgan/status.h"
#include "lipgan/tensor.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Upper bounds on the tables (a ResNet G has ~30 tensors). */
#define LG_MODEL_MAX_TENSORS 128
#define LG_MODEL_MAX_LAYERS 64
#define LG_MODEL_NAME_MAX 48

typedef enum lg_model_arch {
    LG_ARCH_RESNET = 0,  /* SN-GAN ResNet */
    LG_ARCH_CNN,         /* Miyato et al.'s standard (DCGAN-style) CNN */
    LG_ARCH_MLP,         /* fully connected */
    LG_ARCH_COUNT
} lg_model_arch;

typedef enum lg_net_role {
    LG_NET_G = 0,  /* generator: z (N, z_dim) -> sample */
    LG_NET_D,      /* discriminator/critic: sample -> (N, 1) */
} lg_net_role;

typedef enum lg_lip_kind {
    LG_LIP_NONE = 0,
    LG_LIP_SN,        /* spectral normalization (reshaped kernel matrix) */
    LG_LIP_TOEPLITZ,  /* Toeplitz (true conv operator norm) scaled to toep_k */
    LG_LIP_COUNT
} lg_lip_kind;

typedef struct lg_model_spec {
    lg_model_arch arch;
    lg_net_role role;
    int img_c;        /* image channels, 1 or 3 (ignored if data_dim > 0) */
    int img_size;     /* image height = width: a multiple of 8 for cnn/resnet (32, 48), any for mlp */
    int data_dim;     /* MLP only: flat sample dimension (2 for toys); 0 = images */
    int z_dim;        /* G input dimension (default 128) */
    int ch;           /* width: RESNET D 128 / G 256; CNN D 64 (base) / G 64
                       * (base; top is 8*ch = 512); MLP hidden 512 */
    int depth;        /* MLP hidden layers (default 4) */
    int batchnorm;    /* BN layers: default 1 for G, 0 for D (a RESNET D
                       * has none; CNN and MLP D have them if asked) */
    float lrelu;      /* CNN D LeakyReLU slope (default 0.1) */
    lg_lip_kind lip;  /* Lipschitz reparametrization of every weight layer */
    int sn_iters;     /* power iterations per updating forward (default 1) */
    float toep_k;     /* Toeplitz target operator norm (default 1) */
} lg_model_spec;

/* Fills s with the defaults above for an architecture and role. */
void lg_model_spec_default(lg_model_spec *s, lg_model_arch arch, lg_net_role role);
/* Names used in configs: "resnet", "cnn", "mlp"; "none", "sn", "toeplitz". */
const char *lg_model_arch_name(lg_model_arch a);
lg_status lg_model_arch_parse(const char *s, lg_model_arch *out);
const char *lg_lip_kind_name(lg_lip_kind k);
lg_status lg_lip_kind_parse(const char *s, lg_lip_kind *out);

typedef struct lg_model lg_model;

/* Builds the network on backend be (NULL = CPU) with weights initialized
 * from seed (lg_rng streams LG_RNG_STREAM_INIT and _SN, split by role, so a
 * G and a D built from the same seed draw independent numbers). Errors (LG_ERR_INVALID_ARG naming the field) for impossible
 * specs, e.g. an image size not a multiple of 8. */
lg_status lg_model_create(lg_model **out, const lg_model_spec *spec,
                          const lg_backend *be, uint64_t seed);
void lg_model_free(lg_model *m);
const lg_model_spec *lg_model_get_spec(const lg_model *m);
/* The learnable scalars lg_model_create would build for spec (as
 * lg_model_count_params), without allocating the network's buffers: to
 * check a file against the config it carries before building from it.
 * The same errors as lg_model_create for impossible specs. */
lg_status lg_model_spec_count(const lg_model_spec *spec, size_t *n_params);

/* Forward pass. G: x = z (N, z_dim) -> (N, c, size, size), or (N, data_dim)
 * for 2-D data. D: x (N, c, size, size) (or (N, data_dim); an MLP D also
 * accepts images and flattens them) -> (N, 1).
 * train = 1: BN uses batch statistics and updates its running statistics;
 * SN/Toeplitz run their power iterations and update u/v, unless frozen by
 * lg_model_set_lip_update(m, 0). train = 0: BN uses running statistics,
 * u/v are used as stored (no update). Returns NULL with the context's
 * sticky error on failure (bad input shape). */
lg_tensor *lg_model_forward(lg_ctx *ctx, lg_model *m, lg_tensor *x, int train);

/* Freezes (0) or re-enables (1, default) the u/v updates in training
 * forwards, e.g. for the gradient-penalty pass so that each D step advances
 * the power iteration exactly once. Returns the old value. */
int lg_model_set_lip_update(lg_model *m, int enabled);

/* Sets keep_zero (lipschitz.h) on every SN state of m: a power-iteration
 * vector that comes out exactly 0 keeps its previous value instead of
 * making sigma 0 and the weight NaN. The trainer sets it on a network with
 * weight clipping, whose weights of exactly +-c can cancel. */
void lg_model_set_sn_keep_zero(lg_model *m, int on);

/* ---- parameters and state ---- */

/* The whole parameter / gradient buffer (backend memory). */
float *lg_model_params(lg_model *m);       /* (P) */
float *lg_model_grads(lg_model *m);        /* (P), same layout */
size_t lg_model_num_params(const lg_model *m);   /* P: buffer length, see below */
/* The number of learnable scalars (what PyTorch's sum(p.numel()) gives).
 * P is larger: each tensor starts 64-byte aligned, the gaps are zeros whose
 * gradient is always 0, so an optimizer may step the whole buffer. */
size_t lg_model_count_params(const lg_model *m);
/* Persistent state: BN running stats, SN/Toeplitz vectors (backend memory). */
float *lg_model_state(lg_model *m);        /* (S) */
size_t lg_model_num_state(const lg_model *m);

/* Leaf tensors over the parameter buffer (requires_grad = 1), in table
 * order; writes up to LG_MODEL_MAX_TENSORS pointers and returns the count.
 * Pass them as lg_grad's wrt. The tensors stay valid for the model's life. */
int lg_model_param_tensors(lg_model *m, lg_tensor **out);
/* Copies (accumulate = 0) or adds (accumulate = 1) the step tensors
 * grads[i] (shaped like param tensor i, as lg_grad returns them) into the
 * model's gradient buffer. A NULL entry counts as zero. */
lg_status lg_model_store_grads(lg_ctx *ctx, lg_model *m, lg_tensor *const *grads,
                               int accumulate);
/* Zeroes the gradient buffer. */
void lg_model_zero_grads(lg_model *m);

/* A named tensor of the parameter or state table. Names are PyTorch-like
 * ("block1.c1.weight", "b5.running_mean", "block1.c1.sn_u"); checkpoint
 * code prefixes the network ("G.", "D."). */
typedef struct lg_named_tensor {
    const char *name;
    lg_tensor *t;      /* over the params (is_param) or state buffer */
    size_t offset;     /* floats from the start of that buffer */
    int is_param;      /* 1: parameter table, 0: state table */
} lg_named_tensor;
/* Parameter table then state table, i.e. everything a checkpoint needs. */
int lg_model_num_named(const lg_model *m);
const lg_named_tensor *lg_model_named(const lg_model *m, int i);
/* Looks a tensor up by name; NULL if absent. */
const lg_named_tensor *lg_model_find(const lg_model *m, const char *name);

/* ---- weight layers (for SR, clipping, clamping, r(W), sigma logging) ---- */

typedef enum lg_layer_kind {
    LG_LAYER_LINEAR = 0,  /* w (out, in) */
    LG_LAYER_CONV,        /* w (oc, c, kh, kw) */
    LG_LAYER_CONVT,       /* w (c, oc, kh, kw), PyTorch ConvTranspose2d layout */
} lg_layer_kind;

typedef struct lg_layer_info {
    lg_layer_kind kind;
    const char *name;     /* "block1.c1" */
    lg_tensor *w;         /* raw weight, a parameter tensor (before SN) */
    lg_tensor *b;         /* bias, or NULL for a layer without one (ResNet D's l5) */
    size_t w_offset;      /* offset of w in the parameter buffer */
    int out_dim;          /* dim of w that is "output" for SN: 0, or 1 for CONVT */
    int stride, pad;      /* conv geometry (1, 0 for linear) */
    int in_h, in_w;       /* input spatial size this layer sees (1, 1 for linear) */
    lg_lip_kind lip;      /* method attached to this layer (a linear layer of a
                           * Toeplitz network says LG_LIP_SN) */
    float lip_scale;      /* target norm: toep_k for a conv/convT layer of a
                           * Toeplitz network, else 1 (linear layers too) */
    void *lip_state;      /* lg_sn_state* (lip SN) or lg_toep_state* (TOEPLITZ),
                           * lipschitz.h; NULL for LG_LIP_NONE */
} lg_layer_info;

int lg_model_num_layers(const lg_model *m);
const lg_layer_info *lg_model_layer(const lg_model *m, int i);
/* The last sigma estimate of every weight layer with SN/Toeplitz attached
 * (host floats, layer order; 0 for layers without a method); writes up to
 * n values and returns the number of layers. Valid after one forward. */
int lg_model_sigmas(lg_model *m, float *out, int n);

/* Call after overwriting the state buffer from a checkpoint. A layer whose
 * stored sigma is > 0 had its vectors trained (marked primed, so an eval
 * forward uses them as they are); a stored sigma of 0 means the checkpoint
 * was taken before any forward, and an eval forward first runs
 * LG_SN_PRIME_ITERS iterations (lipschitz.h). LG_ERR_NONFINITE if a stored
 * sigma is not finite. */
lg_status lg_model_state_loaded(lg_model *m);

/* ---- EMA of a generator ---- */

/* A new model with the same spec, parameters and state as src. */
lg_status lg_model_clone(lg_model **out, const lg_model *src);
/* ema.params = decay * ema.params + (1 - decay) * src.params; the state
 * (BN running stats, SN/Toeplitz vectors) is COPIED from src, never
 * averaged: averaging unit vectors shrinks them and underestimates sigma
 * (PITFALLS). ema and src must have equal specs. ema's gradient buffer is
 * used as scratch (an EMA model is never trained). */
lg_status lg_model_ema_update(lg_model *ema, const lg_model *src, float decay);

/* Copies parameters and state from src into dst (equal specs). */
lg_status lg_model_copy(lg_model *dst, const lg_model *src);

#ifdef __cplusplus
}
#endif
#endif
