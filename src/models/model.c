/* Models: tables, buffers, initialization, layer application, EMA. */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "lipgan/lipschitz.h"
#include "lipgan/rng.h"
#include "core/graph.h"
#include "models/model_internal.h"

/* ---- names ---- */

static const char *const ARCH_NAMES[LG_ARCH_COUNT] = {"resnet", "cnn", "mlp"};
static const char *const LIP_NAMES[LG_LIP_COUNT] = {"none", "sn", "toeplitz"};

const char *lg_model_arch_name(lg_model_arch a) {
    return (unsigned)a < LG_ARCH_COUNT ? ARCH_NAMES[a] : "?";
}

lg_status lg_model_arch_parse(const char *s, lg_model_arch *out) {
    for (int i = 0; s && i < LG_ARCH_COUNT; i++)
        if (strcmp(s, ARCH_NAMES[i]) == 0) {
            *out = (lg_model_arch)i;
            return LG_OK;
        }
    return lg_error_set(LG_ERR_INVALID_ARG, "unknown architecture '%s'; use resnet, cnn or mlp",
                        s ? s : "(null)");
}

const char *lg_lip_kind_name(lg_lip_kind k) {
    return (unsigned)k < LG_LIP_COUNT ? LIP_NAMES[k] : "?";
}

lg_status lg_lip_kind_parse(const char *s, lg_lip_kind *out) {
    for (int i = 0; s && i < LG_LIP_COUNT; i++)
        if (strcmp(s, LIP_NAMES[i]) == 0) {
            *out = (lg_lip_kind)i;
            return LG_OK;
        }
    return lg_error_set(LG_ERR_INVALID_ARG,
                        "unknown Lipschitz method '%s'; use none, sn or toeplitz", s ? s : "(null)");
}

void lg_model_spec_default(lg_model_spec *s, lg_model_arch arch, lg_net_role role) {
    memset(s, 0, sizeof *s);
    s->arch = arch;
    s->role = role;
    s->img_c = 3;
    s->img_size = 32;
    s->data_dim = 0;
    s->z_dim = 128;
    switch (arch) {
    case LG_ARCH_RESNET: s->ch = role == LG_NET_G ? 256 : 128; break;
    case LG_ARCH_CNN: s->ch = 64; break;
    default: s->ch = 512; break;
    }
    s->depth = 4;
    s->batchnorm = role == LG_NET_G;
    s->lrelu = 0.1f;
    s->lip = LG_LIP_NONE;
    s->sn_iters = 1;
    s->toep_k = 1.0f;
}

/* ---- seeded initialization (lipgan/rng.h streams) ---- */

static void fill_uniform(lg_rng *r, float *x, size_t n, float a) { lg_rng_fill_uniform(r, x, n, -a, a); }

/* ---- table registration ---- */

static int add_tensor(lg_model *m, int is_param, const char *prefix, const char *suffix, int ndim,
                      const int64_t *shape) {
    lg_tdesc *tab = is_param ? m->pdesc : m->sdesc;
    int *n = is_param ? &m->n_p : &m->n_s;
    size_t *total = is_param ? &m->np : &m->ns;
    if (*n >= LG_MODEL_MAX_TENSORS) {
        m->build_err = 1;
        return -1;
    }
    lg_tdesc *d = &tab[*n];
    memset(d, 0, sizeof *d);
    snprintf(d->name, sizeof d->name, "%s.%s", prefix, suffix);
    d->ndim = ndim;
    d->numel = 1;
    for (int i = 0; i < ndim; i++) {
        d->shape[i] = shape[i];
        d->numel *= (size_t)shape[i];
    }
    /* keep every tensor 16-float (64-byte) aligned inside its buffer */
    d->offset = *total;
    *total += (d->numel + 15) & ~(size_t)15;
    return (*n)++;
}

static lg_wlayer *new_layer(lg_model *m, const char *name, lg_layer_kind kind) {
    if (m->n_layers >= LG_MODEL_MAX_LAYERS) {
        m->build_err = 1;
        return NULL;
    }
    lg_wlayer *l = &m->layers[m->n_layers];
    memset(l, 0, sizeof *l);
    l->info.kind = kind;
    snprintf(l->name, sizeof l->name, "%s", name);
    l->info.lip = m->spec.lip;
    l->bi = -1;
    for (int i = 0; i < 4; i++) l->lip_si[i] = -1;
    return l;
}

static void add_lip_state(lg_model *m, lg_wlayer *l, const char *name);

/* nbias 0: a layer without bias (bi stays -1, no tensor registered) */
static int finish_layer(lg_model *m, lg_wlayer *l, const char *name, int ndim, const int64_t *wshape,
                        int64_t nbias) {
    l->wi = add_tensor(m, 1, name, "weight", ndim, wshape);
    if (nbias > 0) l->bi = add_tensor(m, 1, name, "bias", 1, &nbias);
    add_lip_state(m, l, name);
    return m->n_layers++;
}

int lg__add_linear(lg_model *m, const char *name, int in, int out, int bias, lg_init_kind init,
                   float gain) {
    lg_wlayer *l = new_layer(m, name, LG_LAYER_LINEAR);
    if (!l) return -1;
    l->cin = in;
    l->cout = out;
    l->k = 1;
    l->info.stride = 1;
    l->info.in_h = l->info.in_w = l->out_h = l->out_w = 1;
    l->info.out_dim = 0;
    l->init = init;
    l->gain = gain;
    int64_t s[2] = {out, in};
    return finish_layer(m, l, name, 2, s, bias ? out : 0);
}

/* A conv (transposed = 0, weight (cout, cin, k, k)) or transposed conv
 * (transposed = 1, weight (cin, cout, k, k): output channels are dim 1). */
static int add_conv_layer(lg_model *m, const char *name, int transposed, int cin, int cout, int k,
                          int stride, int pad, int in_h, int in_w, lg_init_kind init, float gain,
                          int bias) {
    lg_wlayer *l = new_layer(m, name, transposed ? LG_LAYER_CONVT : LG_LAYER_CONV);
    if (!l) return -1;
    l->cin = cin;
    l->cout = cout;
    l->k = k;
    l->info.stride = stride;
    l->info.pad = pad;
    l->info.in_h = in_h;
    l->info.in_w = in_w;
    if (transposed) {
        l->out_h = (in_h - 1) * stride - 2 * pad + k;
        l->out_w = (in_w - 1) * stride - 2 * pad + k;
    } else {
        l->out_h = lg_conv_out_size(in_h, k, stride, pad);
        l->out_w = lg_conv_out_size(in_w, k, stride, pad);
    }
    l->info.out_dim = transposed;
    l->init = init;
    l->gain = gain;
    int64_t s[4] = {transposed ? cin : cout, transposed ? cout : cin, k, k};
    return finish_layer(m, l, name, 4, s, bias ? cout : 0);
}

int lg__add_conv(lg_model *m, const char *name, int cin, int cout, int k, int stride, int pad,
                 int in_h, int in_w, lg_init_kind init, float gain) {
    return add_conv_layer(m, name, 0, cin, cout, k, stride, pad, in_h, in_w, init, gain, LG_BIAS);
}

int lg__add_conv_nobias(lg_model *m, const char *name, int cin, int cout, int k, int stride,
                        int pad, int in_h, int in_w, lg_init_kind init, float gain) {
    return add_conv_layer(m, name, 0, cin, cout, k, stride, pad, in_h, in_w, init, gain, LG_NOBIAS);
}

int lg__add_convt(lg_model *m, const char *name, int cin, int cout, int k, int stride, int pad,
                  int in_h, int in_w, lg_init_kind init, float gain) {
    return add_conv_layer(m, name, 1, cin, cout, k, stride, pad, in_h, in_w, init, gain, LG_BIAS);
}

int lg__add_bn(lg_model *m, const char *name, int c) {
    if (m->n_bn >= LG_MODEL_MAX_BN) {
        m->build_err = 1;
        return -1;
    }
    lg_bnlayer *b = &m->bns[m->n_bn];
    memset(b, 0, sizeof *b);
    int64_t s = c;
    b->gi = add_tensor(m, 1, name, "weight", 1, &s);
    b->bi = add_tensor(m, 1, name, "bias", 1, &s);
    b->mi = add_tensor(m, 0, name, "running_mean", 1, &s);
    b->vi = add_tensor(m, 0, name, "running_var", 1, &s);
    b->st.momentum = 0.1f;
    b->st.eps = 1e-5f;
    return m->n_bn++;
}

/* ---- Lipschitz methods attached to weight layers (lipgan/lipschitz.h) ----
 * Per layer: SN keeps u (out), v (in) and sigma (1) in the state buffer;
 * Toeplitz keeps u over the input space of the convolution (c, h, w) and
 * sigma. A transposed conv is the adjoint of the conv whose weight is its
 * own (cin, cout, k, k) tensor read as (oc, c, k, k), taking cout x out_h x
 * out_w to cin x in_h x in_w; an operator and its adjoint have the same
 * norm, so its Toeplitz state lives on (cout, out_h, out_w). Linear layers
 * of a Toeplitz network (where the Toeplitz matrix IS the weight) use plain
 * SN, unscaled: the thesis adds k "to each spectrally normalized
 * convolutional layer" and counts D's constant as k^(number of convs)
 * (5.5.1); its code's dense layer is an SNLinear without k. */

static int layer_lip_kind(const lg_model *m, const lg_wlayer *l) {
    if (m->spec.lip == LG_LIP_TOEPLITZ && l->info.kind == LG_LAYER_LINEAR) return LG_LIP_SN;
    return m->spec.lip;
}

static void add_lip_state(lg_model *m, lg_wlayer *l, const char *name) {
    l->info.lip = (lg_lip_kind)layer_lip_kind(m, l);
    l->info.lip_scale =
        m->spec.lip == LG_LIP_TOEPLITZ && l->info.kind != LG_LAYER_LINEAR ? m->spec.toep_k : 1.0f;
    int64_t one = 1;
    if (l->info.lip == LG_LIP_SN) {
        int64_t rows = l->cout, cols = (int64_t)l->cin * l->k * l->k;
        l->lip_si[0] = add_tensor(m, 0, name, "sn_u", 1, &rows);
        l->lip_si[1] = add_tensor(m, 0, name, "sn_v", 1, &cols);
        l->lip_si[2] = add_tensor(m, 0, name, "sn_sigma", 1, &one);
    } else if (l->info.lip == LG_LIP_TOEPLITZ) {
        int64_t sh[3] = {l->cin, l->info.in_h, l->info.in_w};
        if (l->info.kind == LG_LAYER_CONVT) sh[0] = l->cout, sh[1] = l->out_h, sh[2] = l->out_w;
        l->lip_si[0] = add_tensor(m, 0, name, "toep_u", 3, sh);
        l->lip_si[2] = add_tensor(m, 0, name, "toep_sigma", 1, &one);
    }
}

/* A seed per layer, so the layers' start vectors are unrelated. */
static uint64_t layer_seed(const lg_model *m, int li) {
    uint64_t z = m->seed + 0x9E3779B97F4A7C15ull * (uint64_t)(2 * li + 1 + 1000 * m->spec.role);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

/* Allocates the state struct over the state buffer and draws the start
 * vectors (after the buffer's upload, which would overwrite them). */
static lg_status init_lip_state(lg_model *m, int li) {
    lg_wlayer *l = &m->layers[li];
    float *u = l->lip_si[0] >= 0 ? m->stens[l->lip_si[0]].data : NULL;
    float *v = l->lip_si[1] >= 0 ? m->stens[l->lip_si[1]].data : NULL;
    float *sg = l->lip_si[2] >= 0 ? m->stens[l->lip_si[2]].data : NULL;
    if (l->info.lip == LG_LIP_SN) {
        lg_sn_state *st = calloc(1, sizeof *st);
        if (!st) return lg_error_set(LG_ERR_NOMEM, "model: out of memory");
        l->lip = st;
        LG_TRY(lg_sn_init_buffers(st, m->be, l->cout, (int64_t)l->cin * l->k * l->k,
                                  layer_seed(m, li), u, v, sg));
        st->n_iter = m->spec.sn_iters;
    } else if (l->info.lip == LG_LIP_TOEPLITZ) {
        lg_toep_state *st = calloc(1, sizeof *st);
        if (!st) return lg_error_set(LG_ERR_NOMEM, "model: out of memory");
        l->lip = st;
        const int64_t *sh = m->sdesc[l->lip_si[0]].shape;
        LG_TRY(lg_toep_init_buffers(st, m->be, (int)sh[0], (int)sh[1], (int)sh[2],
                                    layer_seed(m, li), u, sg));
        st->n_iter = m->spec.sn_iters;
    }
    l->info.lip_state = l->lip;
    return LG_OK;
}

static void free_lip_state(lg_wlayer *l) {
    if (!l->lip) return;
    if (l->info.lip == LG_LIP_SN) lg_sn_free(l->lip);
    else lg_toep_free(l->lip);
    free(l->lip);
    l->lip = NULL;
}

int lg_model_sigmas(lg_model *m, float *out, int n) {
    for (int i = 0; i < m->n_layers && i < n; i++) {
        const lg_wlayer *l = &m->layers[i];
        out[i] = !l->lip                        ? 0.0f
                 : l->info.lip == LG_LIP_SN     ? lg_sn_sigma(l->lip)
                                                : lg_toep_sigma(l->lip);
    }
    return m->n_layers;
}

lg_status lg_model_state_loaded(lg_model *m) {
    for (int i = 0; i < m->n_layers; i++) {
        lg_wlayer *l = &m->layers[i];
        if (!l->lip) continue;
        float s = l->info.lip == LG_LIP_SN ? lg_sn_sigma(l->lip) : lg_toep_sigma(l->lip);
        if (!isfinite(s))
            return lg_error_set(LG_ERR_NONFINITE, "model: loaded %s sigma is %g; the checkpoint is corrupt",
                                l->info.name, s);
        /* a state is primed by its first forward, which also stores sigma
         * = u^T W v; a later forward without iteration may store a value
         * <= 0 from stale vectors, so only the initial exact 0 means unprimed */
        int primed = s != 0.0f;
        if (l->info.lip == LG_LIP_SN) ((lg_sn_state *)l->lip)->primed = primed;
        else ((lg_toep_state *)l->lip)->primed = primed;
    }
    return LG_OK;
}

/* ---- layer application ---- */

/* Weight layer li applied to x; relu: relu(layer(x)) with the bias add and
 * the ReLU fused (lg_add_relu) where the layer runs its bias separately. */
static lg_tensor *wl_apply(lg_ctx *ctx, lg_model *m, int li, lg_tensor *x, int train, int relu) {
    if (!x) return NULL;
    lg_wlayer *l = &m->layers[li];
    int update = train && m->lip_update;
    lg_tensor *w = l->info.w;
    if (l->info.lip == LG_LIP_SN) {
        w = lg_sn_weight(ctx, l->lip, w, l->info.out_dim, update);
        if (l->info.lip_scale != 1.0f) w = lg_scale(ctx, w, l->info.lip_scale);
    } else if (l->info.lip == LG_LIP_TOEPLITZ) {
        if (l->info.kind == LG_LAYER_CONV) {
            lg_tensor *y = lg_toep_conv2d(ctx, l->lip, x, w, l->info.b, l->info.stride,
                                          l->info.pad, l->info.lip_scale, update);
            return relu ? lg_relu(ctx, y) : y;
        }
        /* transposed conv: normalize by its adjoint conv's operator norm */
        w = lg_toep_weight(ctx, l->lip, w, l->info.stride, l->info.pad, l->info.lip_scale, update);
    }
    lg_tensor *b = relu ? NULL : l->info.b, *y = NULL;
    switch (l->info.kind) {
    case LG_LAYER_LINEAR: y = lg_linear(ctx, x, w, b); break;
    case LG_LAYER_CONV: y = lg_conv2d(ctx, x, w, b, l->info.stride, l->info.pad); break;
    case LG_LAYER_CONVT:
        y = lg_conv_transpose2d(ctx, x, w, b, l->info.stride, l->info.pad, 0);
        break;
    }
    if (!relu || !y) return y;
    if (!l->info.b) return lg_relu(ctx, y);
    int64_t bs[4] = {1, y->shape[1], 1, 1}; /* the bias along dim 1: (1,C) or (1,C,1,1) */
    /* y is the layer's own fresh output (its op ran without bias): overwrite it */
    return lg__bias_into(ctx, y, lg_reshape(ctx, l->info.b, y->ndim, bs), 1);
}

lg_tensor *lg__wl(lg_ctx *ctx, lg_model *m, int li, lg_tensor *x, int train) {
    return wl_apply(ctx, m, li, x, train, 0);
}

lg_tensor *lg__wl_relu(lg_ctx *ctx, lg_model *m, int li, lg_tensor *x, int train) {
    return wl_apply(ctx, m, li, x, train, 1);
}

lg_tensor *lg__bn(lg_ctx *ctx, lg_model *m, int bi, lg_tensor *x, int train) {
    lg_bnlayer *b = &m->bns[bi];
    return lg_batchnorm(ctx, x, &m->ptens[b->gi], &m->ptens[b->bi], &b->st, train);
}

lg_tensor *lg__bn_relu(lg_ctx *ctx, lg_model *m, int bi, lg_tensor *x, int train) {
    /* the ReLU over batch norm's own output: one tensor instead of two */
    return lg__relu_into(ctx, lg__bn(ctx, m, bi, x, train));
}

/* ---- create / free ---- */

static void init_layer(lg_model *m, lg_wlayer *l, float *hp, lg_rng *r) {
    const lg_tdesc *wd = &m->pdesc[l->wi];
    float *w = hp + wd->offset;
    float *b = l->bi >= 0 ? hp + m->pdesc[l->bi].offset : NULL;
    int rf = l->k * l->k;
    if (l->init == LG_INIT_XAVIER) {
        /* fans as torch.nn.init computes them from the weight's dims 1 and 0 */
        double fan_in = (double)wd->shape[1] * rf, fan_out = (double)wd->shape[0] * rf;
        fill_uniform(r, w, wd->numel, (float)(l->gain * sqrt(6.0 / (fan_in + fan_out))));
        /* bias stays 0 */
    } else {
        /* kaiming_uniform(a=sqrt(5)) == U(+-1/sqrt(fan_in)); fan_in is
         * weight.size(1)*k*k, which for ConvTranspose2d is the OUTPUT
         * channel count (a PyTorch quirk we reproduce). */
        float a = (float)(1.0 / sqrt((double)wd->shape[1] * rf));
        fill_uniform(r, w, wd->numel, a);
        if (b) fill_uniform(r, b, (size_t)m->pdesc[l->bi].numel, a);
    }
}

static lg_status finalize(lg_model *m) {
    const lg_backend *be = m->be;
    size_t np = m->np ? m->np : 16, ns = m->ns ? m->ns : 16;
    m->params = lg_buffer_alloc(be, np);
    m->grads = lg_buffer_alloc(be, np);
    m->state = lg_buffer_alloc(be, ns);
    if (!m->params || !m->grads || !m->state)
        return lg_error_set(LG_ERR_NOMEM, "model: cannot allocate %zu parameters; use smaller widths",
                            m->np);
    for (int i = 0; i < m->n_p; i++) {
        lg_tdesc *d = &m->pdesc[i];
        lg_tensor_init(&m->ptens[i], m->params + d->offset, d->ndim, d->shape);
        m->ptens[i].requires_grad = 1;
        m->ptens[i].name = d->name;
        m->named[i] = (lg_named_tensor){d->name, &m->ptens[i], d->offset, 1};
    }
    for (int i = 0; i < m->n_s; i++) {
        lg_tdesc *d = &m->sdesc[i];
        lg_tensor_init(&m->stens[i], m->state + d->offset, d->ndim, d->shape);
        m->stens[i].name = d->name;
        m->named[m->n_p + i] = (lg_named_tensor){d->name, &m->stens[i], d->offset, 0};
    }
    for (int i = 0; i < m->n_layers; i++) {
        lg_wlayer *l = &m->layers[i];
        l->info.name = l->name;
        l->info.w = &m->ptens[l->wi];
        l->info.b = l->bi >= 0 ? &m->ptens[l->bi] : NULL;
        l->info.w_offset = m->pdesc[l->wi].offset;
    }
    for (int i = 0; i < m->n_bn; i++) {
        lg_bnlayer *b = &m->bns[i];
        b->st.run_mean = m->stens[b->mi].data;
        b->st.run_var = m->stens[b->vi].data;
    }

    /* initialize on the host in table order, then upload */
    float *hp = calloc(np, sizeof(float)), *hs = calloc(ns, sizeof(float));
    if (!hp || !hs) {
        free(hp);
        free(hs);
        return lg_error_set(LG_ERR_NOMEM, "model: out of host memory initializing weights");
    }
    /* G and D built from one seed still get independent streams */
    lg_rng base, r;
    lg_rng_init(&base, m->seed, LG_RNG_STREAM_INIT);
    lg_rng_split(&base, (uint64_t)m->spec.role, &r);
    for (int i = 0; i < m->n_layers; i++) init_layer(m, &m->layers[i], hp, &r);
    for (int i = 0; i < m->n_bn; i++) {
        lg_bnlayer *b = &m->bns[i];
        for (size_t j = 0; j < m->pdesc[b->gi].numel; j++) {
            hp[m->pdesc[b->gi].offset + j] = 1.0f;
            hs[m->sdesc[b->vi].offset + j] = 1.0f;
        }
    }
    be->upload(m->params, hp, np);
    be->upload(m->state, hs, ns);
    free(hp);
    free(hs);
    for (int i = 0; i < m->n_layers; i++) LG_TRY(init_lip_state(m, i));
    return LG_OK;
}

/* Validates the spec and lays the network out: the layer and tensor
 * tables, no buffers (finalize allocates them). */
static lg_status plan(lg_model **out, const lg_model_spec *spec, const lg_backend *be, uint64_t seed) {
    *out = NULL;
    const lg_model_spec *s = spec;
    if ((unsigned)s->arch >= LG_ARCH_COUNT)
        return lg_error_set(LG_ERR_INVALID_ARG, "model: arch %d is not one of resnet, cnn, mlp",
                            (int)s->arch);
    if (s->role != LG_NET_G && s->role != LG_NET_D)
        return lg_error_set(LG_ERR_INVALID_ARG, "model: role must be G or D");
    if ((unsigned)s->lip >= LG_LIP_COUNT)
        return lg_error_set(LG_ERR_INVALID_ARG, "model: lip %d is not none, sn or toeplitz",
                            (int)s->lip);
    if (s->ch < 1 || s->ch > 8192)
        return lg_error_set(LG_ERR_INVALID_ARG, "model: ch = %d out of range [1, 8192]", s->ch);
    if (s->role == LG_NET_G && (s->z_dim < 1 || s->z_dim > 65536))
        return lg_error_set(LG_ERR_INVALID_ARG, "model: z_dim = %d out of range [1, 65536]",
                            s->z_dim);
    if (s->lip == LG_LIP_SN && (s->sn_iters < 1 || s->sn_iters > 100))
        return lg_error_set(LG_ERR_INVALID_ARG, "model: sn_iters = %d out of range [1, 100]",
                            s->sn_iters);
    if (s->lip == LG_LIP_TOEPLITZ && !(s->toep_k > 0 && s->toep_k < 1e6f))
        return lg_error_set(LG_ERR_INVALID_ARG, "model: toep_k = %g must be > 0", s->toep_k);
    int flat = s->arch == LG_ARCH_MLP && s->data_dim > 0;
    if (s->data_dim < 0 || (s->data_dim > 0 && s->arch != LG_ARCH_MLP))
        return lg_error_set(LG_ERR_INVALID_ARG,
                            "model: data_dim = %d: flat data needs arch mlp (and data_dim > 0)",
                            s->data_dim);
    if (!flat) {
        if (s->img_c < 1 || s->img_c > 4)
            return lg_error_set(LG_ERR_INVALID_ARG, "model: img_c = %d must be 1..4", s->img_c);
        /* the conv stacks halve or double the side three times; an MLP
         * takes any side */
        if (s->arch == LG_ARCH_MLP ? s->img_size < 1 || s->img_size > 512
                                   : s->img_size < 8 || s->img_size > 512 || s->img_size % 8)
            return lg_error_set(LG_ERR_INVALID_ARG,
                                s->arch == LG_ARCH_MLP ? "model: img_size = %d must be in [1, 512]"
                                                       : "model: img_size = %d must be a multiple of 8 in [8, 512] "
                                                         "(pad 28x28 images to 32)",
                                s->img_size);
    }
    if (s->arch == LG_ARCH_MLP && (s->depth < 1 || s->depth > 32))
        return lg_error_set(LG_ERR_INVALID_ARG, "model: depth = %d out of range [1, 32]", s->depth);
    if (s->role == LG_NET_D && s->batchnorm && s->arch == LG_ARCH_RESNET)
        return lg_error_set(LG_ERR_INVALID_ARG,
                            "model: the resnet discriminator has no batch-norm layers (as in "
                            "SN-GAN: batch norm only in the generator; a cnn or mlp D may have "
                            "them); set batchnorm 0");

    lg_model *m = calloc(1, sizeof *m);
    if (!m) return lg_error_set(LG_ERR_NOMEM, "model: out of memory");
    m->spec = *s;
    m->be = be;
    m->seed = seed;
    m->lip_update = 1;
    m->bottom = flat ? 1 : s->img_size / 8;
    lg_status st;
    switch (s->arch) {
    case LG_ARCH_RESNET: st = lg__build_resnet(m); break;
    case LG_ARCH_CNN: st = lg__build_cnn(m); break;
    default: st = lg__build_mlp(m); break;
    }
    if (st == LG_OK && m->build_err)
        st = lg_error_set(LG_ERR_INVALID_ARG,
                          "model: too many layers or tensors (limits %d layers, %d tensors); "
                          "use fewer layers",
                          LG_MODEL_MAX_LAYERS, LG_MODEL_MAX_TENSORS);
    if (st != LG_OK) {
        lg_model_free(m);
        return st;
    }
    *out = m;
    return LG_OK;
}

lg_status lg_model_create(lg_model **out, const lg_model_spec *spec, const lg_backend *be,
                          uint64_t seed) {
    if (!be) be = lg_backend_cpu();
    LG_TRY(plan(out, spec, be, seed));
    lg_status st = finalize(*out);
    if (st != LG_OK) {
        lg_model_free(*out);
        *out = NULL;
    }
    return st;
}

lg_status lg_model_spec_count(const lg_model_spec *spec, size_t *n_params) {
    lg_model *m;
    *n_params = 0;
    LG_TRY(plan(&m, spec, NULL, 0));
    for (int i = 0; i < m->n_p; i++) *n_params += m->pdesc[i].numel;
    lg_model_free(m);
    return LG_OK;
}

void lg_model_free(lg_model *m) {
    if (!m) return;
    for (int i = 0; i < m->n_layers; i++) free_lip_state(&m->layers[i]);
    lg_buffer_free(m->be, m->params);
    lg_buffer_free(m->be, m->grads);
    lg_buffer_free(m->be, m->state);
    free(m);
}

const lg_model_spec *lg_model_get_spec(const lg_model *m) { return &m->spec; }

/* ---- forward ---- */

lg_tensor *lg_model_forward(lg_ctx *ctx, lg_model *m, lg_tensor *x, int train) {
    if (!x) return NULL;
    const lg_model_spec *s = &m->spec;
    char sx[64];
    if (s->role == LG_NET_G) {
        if (x->ndim != 2 || x->shape[1] != s->z_dim)
            return lg_ctx_fail(ctx, LG_ERR_SHAPE, "generator: z %s must be (N, %d)",
                               lg_shape_str(x, sx, sizeof sx), s->z_dim);
    } else if (s->arch == LG_ARCH_MLP && s->data_dim > 0) {
        if (x->ndim != 2 || x->shape[1] != s->data_dim)
            return lg_ctx_fail(ctx, LG_ERR_SHAPE, "discriminator: input %s must be (N, %d)",
                               lg_shape_str(x, sx, sizeof sx), s->data_dim);
    } else {
        int okimg = x->ndim == 4 && x->shape[1] == s->img_c && x->shape[2] == s->img_size &&
                    x->shape[3] == s->img_size;
        int okflat = s->arch == LG_ARCH_MLP && x->ndim == 2 &&
                     x->shape[1] == (int64_t)s->img_c * s->img_size * s->img_size;
        if (!okimg && !okflat)
            return lg_ctx_fail(ctx, LG_ERR_SHAPE, "discriminator: input %s must be (N, %d, %d, %d)",
                               lg_shape_str(x, sx, sizeof sx), s->img_c, s->img_size, s->img_size);
    }
    switch (s->arch) {
    case LG_ARCH_RESNET: return lg__forward_resnet(ctx, m, x, train);
    case LG_ARCH_CNN: return lg__forward_cnn(ctx, m, x, train);
    default: return lg__forward_mlp(ctx, m, x, train);
    }
}

int lg_model_set_lip_update(lg_model *m, int enabled) {
    int old = m->lip_update;
    m->lip_update = enabled != 0;
    return old;
}

void lg_model_set_sn_keep_zero(lg_model *m, int on) {
    for (int i = 0; i < m->n_layers; i++)
        if (m->layers[i].lip && m->layers[i].info.lip == LG_LIP_SN)
            ((lg_sn_state *)m->layers[i].lip)->keep_zero = on != 0;
}

/* ---- buffers and tables ---- */

float *lg_model_params(lg_model *m) { return m->params; }
float *lg_model_grads(lg_model *m) { return m->grads; }
size_t lg_model_num_params(const lg_model *m) { return m->np; }
size_t lg_model_count_params(const lg_model *m) {
    size_t n = 0;
    for (int i = 0; i < m->n_p; i++) n += m->pdesc[i].numel;
    return n;
}
float *lg_model_state(lg_model *m) { return m->state; }
size_t lg_model_num_state(const lg_model *m) { return m->ns; }

int lg_model_param_tensors(lg_model *m, lg_tensor **out) {
    for (int i = 0; i < m->n_p; i++) out[i] = &m->ptens[i];
    return m->n_p;
}

lg_status lg_model_store_grads(lg_ctx *ctx, lg_model *m, lg_tensor *const *grads, int accumulate) {
    const lg_backend *be = m->be;
    for (int i = 0; i < m->n_p; i++) {
        const lg_tdesc *d = &m->pdesc[i];
        float *dst = m->grads + d->offset;
        const lg_tensor *g = grads[i];
        if (!g) {
            if (!accumulate) be->fill(dst, 0.0f, d->numel);
            continue;
        }
        if ((size_t)g->numel != d->numel)
            return lg_error_set(LG_ERR_SHAPE, "model: gradient %d has %lld elements, %s has %zu", i,
                                (long long)g->numel, d->name, d->numel);
        if (accumulate) {
            int64_t sh[4] = {1, 1, 1, (int64_t)d->numel};
            be->binary(LG_B_ADD, dst, sh, dst, sh, g->data, sh);
        } else {
            be->copy(dst, g->data, d->numel);
        }
    }
    (void)ctx;
    return LG_OK;
}

void lg_model_zero_grads(lg_model *m) { m->be->fill(m->grads, 0.0f, m->np); }

int lg_model_num_named(const lg_model *m) { return m->n_p + m->n_s; }

const lg_named_tensor *lg_model_named(const lg_model *m, int i) {
    return i >= 0 && i < m->n_p + m->n_s ? &m->named[i] : NULL;
}

const lg_named_tensor *lg_model_find(const lg_model *m, const char *name) {
    for (int i = 0; i < m->n_p + m->n_s; i++)
        if (strcmp(m->named[i].name, name) == 0) return &m->named[i];
    return NULL;
}

int lg_model_num_layers(const lg_model *m) { return m->n_layers; }

const lg_layer_info *lg_model_layer(const lg_model *m, int i) {
    return i >= 0 && i < m->n_layers ? &m->layers[i].info : NULL;
}

/* ---- copies and EMA ---- */

static int same_spec(const lg_model *a, const lg_model *b) {
    return a->np == b->np && a->ns == b->ns && a->n_p == b->n_p && a->n_s == b->n_s &&
           a->be == b->be && memcmp(&a->spec, &b->spec, sizeof a->spec) == 0;
}

/* The vectors are copied with the state buffer; their "primed" flags too. */
static void copy_primed(lg_model *dst, const lg_model *src) {
    for (int i = 0; i < dst->n_layers; i++) {
        lg_wlayer *d = &dst->layers[i];
        const lg_wlayer *s = &src->layers[i];
        if (!d->lip || !s->lip) continue;
        if (d->info.lip == LG_LIP_SN) ((lg_sn_state *)d->lip)->primed = ((lg_sn_state *)s->lip)->primed;
        else ((lg_toep_state *)d->lip)->primed = ((lg_toep_state *)s->lip)->primed;
    }
}

lg_status lg_model_copy(lg_model *dst, const lg_model *src) {
    if (!same_spec(dst, src))
        return lg_error_set(LG_ERR_INVALID_ARG, "model copy: the two models have different specs");
    dst->be->copy(dst->params, src->params, src->np);
    dst->be->copy(dst->state, src->state, src->ns);
    copy_primed(dst, src);
    return LG_OK;
}

lg_status lg_model_clone(lg_model **out, const lg_model *src) {
    LG_TRY(lg_model_create(out, &src->spec, src->be, src->seed));
    return lg_model_copy(*out, src);
}

lg_status lg_model_ema_update(lg_model *ema, const lg_model *src, float decay) {
    if (!same_spec(ema, src))
        return lg_error_set(LG_ERR_INVALID_ARG, "ema update: the two models have different specs");
    if (!(decay >= 0.0f && decay <= 1.0f))
        return lg_error_set(LG_ERR_INVALID_ARG, "ema update: decay %g must be in [0, 1]", decay);
    const lg_backend *be = ema->be;
    int64_t sh[4] = {1, 1, 1, (int64_t)ema->np};
    /* ema += (1 - decay) * (src - ema), using ema's unused gradient buffer
     * as scratch */
    be->binary(LG_B_SUB, ema->grads, sh, src->params, sh, ema->params, sh);
    be->unary(LG_U_SCALE, ema->grads, ema->grads, ema->np, 1.0f - decay);
    be->binary(LG_B_ADD, ema->params, sh, ema->params, sh, ema->grads, sh);
    /* state (BN statistics, u/v vectors) is copied, never averaged */
    be->copy(ema->state, src->state, src->ns);
    copy_primed(ema, src);
    return LG_OK;
}
