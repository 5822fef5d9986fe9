/* The trainer: construction and one training step (see lipgan/train.h). */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "lipgan/autograd.h"
#include "lipgan/backend_cpu.h"
#include "lipgan/dist.h"
#ifdef LG_HAVE_CUDA
#include "lipgan/cuda.h"
#endif
#include "lipgan/ops.h"
#include "core/graph.h"
#include "train/train_internal.h"

/* ---- construction ---- */

static uint64_t mix64(uint64_t x) {
    x += 0x9E3779B97F4A7C15ull;
    x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
    x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
    return x ^ (x >> 31);
}

lg_status lg__train_model_spec(const lg_config *c, lg_net_role role, int sc, int sh, int sw,
                               int is_toy, lg_model_spec *out) {
    const lg_cfg_net *n = role == LG_NET_G ? &c->model.g : &c->model.d;
    const lg_cfg_lip *l = role == LG_NET_G ? &c->lipschitz.g : &c->lipschitz.d;
    const char *rn = role == LG_NET_G ? "g" : "d";
    lg_model_arch arch;
    if (lg_model_arch_parse(n->arch, &arch) != LG_OK)
        return lg_error_set(LG_ERR_INVALID_ARG, "model.%s.arch: unknown architecture '%s'", rn, n->arch);
    lg_model_spec_default(out, arch, role);
    if (!is_toy && sh != sw)
        return lg_error_set(LG_ERR_INVALID_ARG, "data: images are %dx%d; the models need square images",
                            sh, sw);
    if (!is_toy && arch != LG_ARCH_MLP && (sh < 8 || sh > 512 || sh % 8))
        return lg_error_set(LG_ERR_INVALID_ARG,
                            "data.image_size: the images are %dx%d; model.%s.arch %s needs a side that is a "
                            "multiple of 8 in [8, 512]: pad them with data.image_size (e.g. 32 for 28x28; idx "
                            "and mnist formats), or use arch mlp",
                            sh, sw, rn, n->arch);
    out->img_c = is_toy ? 1 : sc;
    out->img_size = is_toy ? 8 : sh;
    out->data_dim = is_toy ? sc * sh * sw : 0;
    out->z_dim = c->model.z_dim;
    if (n->width > 0) out->ch = n->width;
    if (n->depth > 0) out->depth = n->depth;
    out->batchnorm = n->bn;
    out->lrelu = n->lrelu;
    out->sn_iters = l->sn_iters;
    if (l->toeplitz_k > 0) {
        out->lip = LG_LIP_TOEPLITZ;
        out->toep_k = l->toeplitz_k;
    } else {
        out->lip = l->sn ? LG_LIP_SN : LG_LIP_NONE;
    }
    return LG_OK;
}

static lg_status extra_init(lg_trainer *t, lg_net_extra *x, lg_model *m, const lg_cfg_lip *lip,
                            uint64_t seed) {
    memset(x, 0, sizeof *x);
    x->lip = lip;
    x->nl = lg_model_num_layers(m);
    int nl = x->nl;
    if (lip->clamp_ratio > 0) {
        x->gc = calloc((size_t)nl, sizeof *x->gc);
        if (!x->gc) return lg_error_set(LG_ERR_NOMEM, "trainer: out of memory");
        for (int i = 0; i < nl; i++) {
            const lg_layer_info *L = lg_model_layer(m, i);
            LG_TRY(lg_gclamp_init(&x->gc[i], t->be, L->w->ndim, L->w->shape, L->out_dim,
                                  lip->clamp_ratio, mix64(seed + 101 * (uint64_t)i)));
            x->gc[i].n_iter = lip->clamp_iters;
        }
    }
    if (lip->rw_lambda > 0) {
        x->rw_layer_sn = 1;
        for (int i = 0; i < nl; i++)
            if (lg_model_layer(m, i)->lip != LG_LIP_SN) x->rw_layer_sn = 0;
        if (!x->rw_layer_sn) {
            x->rw = calloc((size_t)nl, sizeof *x->rw);
            if (!x->rw) return lg_error_set(LG_ERR_NOMEM, "trainer: out of memory");
            for (int i = 0; i < nl; i++) {
                const lg_layer_info *L = lg_model_layer(m, i);
                int64_t rows, cols;
                LG_TRY(lg_weight_mat_dims(L->w->ndim, L->w->shape, L->out_dim, &rows, &cols));
                LG_TRY(lg_sn_init(&x->rw[i], t->be, rows, cols, mix64(seed + 211 * (uint64_t)i)));
                x->rw[i].keep_zero = lip->clip > 0; /* as the layers' SN (lg_model_set_sn_keep_zero) */
            }
        }
    }
    if (lip->sr_gamma > 0) {
        x->sr = calloc((size_t)nl, sizeof *x->sr);
        x->sr_on = calloc((size_t)nl, 1);
        if (!x->sr || !x->sr_on) return lg_error_set(LG_ERR_NOMEM, "trainer: out of memory");
        /* the SR-GAN code regularizes the convolutions; an MLP has none, so
         * then every layer */
        int any_conv = 0;
        for (int i = 0; i < nl; i++)
            if (lg_model_layer(m, i)->kind != LG_LAYER_LINEAR) any_conv = 1;
        for (int i = 0; i < nl; i++)
            x->sr_on[i] = !any_conv || lg_model_layer(m, i)->kind != LG_LAYER_LINEAR;
        x->sr_by_step = !strcmp(lip->sr_schedule, "steps");
    }
    return LG_OK;
}

static void extra_free(lg_net_extra *x) {
    for (int i = 0; x->gc && i < x->nl; i++) lg_gclamp_free(&x->gc[i]);
    for (int i = 0; x->rw && i < x->nl; i++) lg_sn_free(&x->rw[i]);
    for (int i = 0; x->sr && i < x->nl; i++) lg_sr_free(&x->sr[i]);
    free(x->gc);
    free(x->rw);
    free(x->sr);
    free(x->sr_on);
    memset(x, 0, sizeof *x);
}

/* The configured data set into d, with an error that names the keys. */
static lg_status load_data_cb(lg_dataset *d, void *user) {
    const lg_config *c = &((lg_trainer *)user)->cfg;
    lg_data_spec ds;
    memset(&ds, 0, sizeof ds);
    ds.format = c->data.format;
    ds.path = c->data.path;
    ds.split = !strcmp(c->data.split, "test") ? LG_SPLIT_TEST
               : !strcmp(c->data.split, "unlabeled") ? LG_SPLIT_UNLABELED
                                                      : LG_SPLIT_TRAIN;
    ds.size = c->data.image_size;
    ds.channels = c->data.channels;
    ds.n = c->data.toy_n;
    ds.seed = mix64((uint64_t)c->seed + 4);
    lg_status s = lg_data_load(d, &ds);
    if (s != LG_OK) {
        /* name the config keys; lg_data_load hints at data.split or where to
         * get the data when files are missing (and only then) */
        char msg[1024];
        snprintf(msg, sizeof msg, "%s", lg_error_msg());
        return lg_error_set(s, "data.format %s, data.path %s: %s", ds.format, ds.path, msg);
    }
    return LG_OK;
}

/* dist: the processes of one machine share one copy (lg_dist_data_load) */
static lg_status load_data(lg_trainer *t) {
    const lg_config *c = &t->cfg;
    LG_TRY(lg_dist_data_load(&t->data, load_data_cb, t));
    if (t->data.n < 1) return lg_error_set(LG_ERR_FORMAT, "data %s: no samples", c->data.path);
    t->c = t->data.c;
    t->h = t->data.h;
    t->w = t->data.w;
    t->sample_size = lg_data_sample_size(&t->data);
    return lg_data_sampler_init(&t->smp, &t->data, mix64((uint64_t)c->seed + 3));
}

/* optim.<net>: Adam or RMSProp (lipgan/optim.h) */
static lg_status optim_init(lg_adam *a, const lg_backend *be, size_t n, const lg_cfg_adam *o) {
    if (!strcmp(o->kind, "rmsprop")) return lg_rmsprop_init(a, be, n, o->alpha, o->eps);
    return lg_adam_init(a, be, n, o->beta1, o->beta2, o->eps);
}

size_t lg_trainer_arena_bytes(const lg_trainer *t) { return t->ctx ? lg_ctx_arena_bytes(t->ctx) : 0; }

/* ---- threads: the trainer's own count, applied per call (train.h) ---- */

int lg_trainer_threads(const lg_trainer *t) {
    if (!t->be || t->be->is_device) return 0;
    int nt = t->cfg.threads;
    if (nt > 0) return nt;
    /* dist: unless the config says, the processes on one machine share its cores */
    nt = lg_cpu_default_threads();
    if (lg_dist_local_size() > 1) nt /= lg_dist_local_size();
    return nt > 0 ? nt : 1;
}

/* Applies t's count until lg_cpu_threads_pop(&saved) puts the caller's back;
 * nothing for a device backend (the pop is then a no-op). */
lg_cpu_threads_saved lg__trainer_threads_enter(const lg_trainer *t) {
    int n = lg_trainer_threads(t);
    if (n > 0) return lg_cpu_threads_push(n);
    lg_cpu_threads_saved none = {.changed = 0};
    return none;
}

/* Batch norm in a training forward needs 2+ values per channel (as
 * PyTorch). The smallest map a BN layer sees per sample is 1 (mlp) or
 * (side/8)^2 (cnn/resnet: G's first map, the CNN D's last), and the batches
 * are G on batch_d fakes and on batch_g, D (with BN: real and fake in
 * separate passes, d_forward) on batch_d and on batch_g, each split over
 * the processes unless dist_sync_bn. */
static lg_status bn_batch_check(const lg_trainer *t, const lg_model_spec *sg, const lg_model_spec *sd) {
    const lg_config *c = &t->cfg;
    const lg_model_spec *sp[2] = {sg, sd};
    const char *nn[2] = {"g", "d"};
    int split = t->world > 1 && !c->dist_sync_bn ? t->world : 1;
    for (int i = 0; i < 2; i++) {
        if (!sp[i]->batchnorm || (i == 1 && sp[i]->arch == LG_ARCH_RESNET)) continue;
        int side = sp[i]->arch == LG_ARCH_MLP ? 1 : sp[i]->img_size / 8;
        int small_d = c->train.batch_d <= c->train.batch_g;
        int batch = (small_d ? c->train.batch_d : c->train.batch_g) / split;
        if ((int64_t)batch * side * side < 2)
            return lg_error_set(LG_ERR_INVALID_ARG,
                                "train.%s: %d: model.%s.bn normalizes over %d value(s) per channel (batch %d%s x "
                                "a %dx%d map); batch norm needs at least 2: use a larger batch or model.%s.bn: "
                                "false",
                                small_d ? "batch_d" : "batch_g", small_d ? c->train.batch_d : c->train.batch_g,
                                nn[i], batch * side * side, batch, split > 1 ? " per process" : "", side, side,
                                nn[i]);
    }
    return LG_OK;
}

lg_status lg_trainer_create(lg_trainer **out, const lg_config *cfg) {
    *out = NULL;
    LG_TRY(lg_config_validate(cfg));
    lg_trainer *t = calloc(1, sizeof *t);
    if (!t) return lg_error_set(LG_ERR_NOMEM, "trainer: out of memory");
    t->cfg = *cfg;
    t->run_start = -1;
    const lg_config *c = &t->cfg;
    lg_status s = LG_OK;
    lg_cpu_threads_saved threads = {.changed = 0}; /* the caller's count, put back at the end */
#define TRY(expr)                         \
    do {                                  \
        if ((s = (expr)) != LG_OK) goto fail; \
    } while (0)
    t->is_toy = lg_config_is_toy(c);
    t->world = 1;
    if (!strcmp(c->dist, "mpi")) {
        TRY(lg_dist_init(&t->rank, &t->world));
        if (c->train.batch_d % t->world || c->train.batch_g % t->world)
            TRY(lg_error_set(LG_ERR_INVALID_ARG,
                             "dist: mpi: train.batch_d %d and train.batch_g %d must both be "
                             "multiples of the %d processes",
                             c->train.batch_d, c->train.batch_g, t->world));
    }
    t->bd = c->train.batch_d / t->world;
    t->bg = c->train.batch_g / t->world;
    TRY(lg_loss_parse(c->loss, &t->loss));
#ifdef LG_HAVE_CUDA
    /* cuda.device, and under dist process i of a machine on the i-th GPU
     * from there (modulo the GPUs it sees); before the backend's first use,
     * which makes the device current */
    if (!strcmp(c->device, "cuda")) TRY(lg_cuda_set_device(c->cuda.device + lg_dist_local_rank()));
#endif
    TRY(lg_backend_get(c->device, &t->be));
#ifdef LG_HAVE_CUDA
    if (!strcmp(c->device, "cuda")) {
        /* process-wide switches of the CUDA backend: the last trainer created sets them */
        TRY(lg_cuda_set_precision(!strcmp(c->cuda.precision, "tf32")   ? LG_CUDA_TF32
                                  : !strcmp(c->cuda.precision, "bf16") ? LG_CUDA_BF16
                                                                       : LG_CUDA_FP32));
        lg_cuda_set_deterministic(c->cuda.deterministic);
        lg_cuda_set_benchmark(c->cuda.benchmark);
    }
#endif
    /* the config's count (threads) for this call only, as in every call
     * that computes; the process-wide setting is the host's */
    threads = lg__trainer_threads_enter(t);
    t->cfg_yaml = lg_config_to_yaml(c);
    if (!t->cfg_yaml) TRY(lg_error_set(LG_ERR_NOMEM, "trainer: out of memory"));
    TRY(lg_ctx_create(&t->ctx, t->be));
    if (t->world > 1 && c->dist_sync_bn) /* batch norm by the whole batch (dist.h) */
        lg_ctx_set_bn_sync(t->ctx, lg_dist_allgather, t->world, NULL);
    TRY(load_data(t));

    lg_model_spec sg, sd;
    TRY(lg__train_model_spec(c, LG_NET_G, t->c, t->h, t->w, t->is_toy, &sg));
    TRY(lg__train_model_spec(c, LG_NET_D, t->c, t->h, t->w, t->is_toy, &sd));
    TRY(bn_batch_check(t, &sg, &sd));
    /* G and D draw from separate streams of the one seed (model.h) */
    TRY(lg_model_create(&t->g, &sg, t->be, (uint64_t)c->seed));
    TRY(lg_model_create(&t->d, &sd, t->be, (uint64_t)c->seed));
    /* clipped weights (+-c exactly) can make W^T u exactly 0 */
    if (c->lipschitz.g.clip > 0) lg_model_set_sn_keep_zero(t->g, 1);
    if (c->lipschitz.d.clip > 0) lg_model_set_sn_keep_zero(t->d, 1);
    if (c->ema.decay > 0) TRY(lg_model_clone(&t->ema, t->g));
    if (t->ema && c->lipschitz.g.clip > 0) lg_model_set_sn_keep_zero(t->ema, 1);
    t->npg = lg_model_param_tensors(t->g, t->pg);
    t->npd = lg_model_param_tensors(t->d, t->pd);
    TRY(optim_init(&t->opt_g, t->be, lg_model_num_params(t->g), &c->optim.g));
    TRY(optim_init(&t->opt_d, t->be, lg_model_num_params(t->d), &c->optim.d));
    TRY(extra_init(t, &t->xg, t->g, &c->lipschitz.g, mix64((uint64_t)c->seed + 11)));
    TRY(extra_init(t, &t->xd, t->d, &c->lipschitz.d, mix64((uint64_t)c->seed + 12)));
    lg_rng_init(&t->rng_noise, (uint64_t)c->seed, LG_RNG_STREAM_NOISE);
    lg_rng_init(&t->rng_gp, (uint64_t)c->seed, LG_RNG_STREAM_GP);
    lg_rng_init(&t->rng_data, (uint64_t)c->seed, LG_RNG_STREAM_DATA);

    size_t bd = (size_t)c->train.batch_d, bmax = bd > (size_t)c->train.batch_g ? bd : (size_t)c->train.batch_g;
    t->xb = malloc(bd * (size_t)t->sample_size * sizeof(float));
    t->nb = malloc(bd * (size_t)t->sample_size * sizeof(float));
    t->zb = malloc(bmax * (size_t)c->model.z_dim * sizeof(float));
    t->eb = malloc(bd * sizeof(float));
    t->flag = lg_buffer_alloc(t->be, 1);
    t->state_bak = lg_buffer_alloc(t->be, lg_model_num_state(t->g) + lg_model_num_state(t->d));
    if (!t->xb || !t->nb || !t->zb || !t->eb || !t->flag || !t->state_bak)
        TRY(lg_error_set(LG_ERR_NOMEM, "trainer: out of memory for the batch buffers"));
    if (t->world > 1) {
        size_t pg = lg_model_num_params(t->g), pd = lg_model_num_params(t->d);
        t->dist_grads = malloc((pg > pd ? pg : pd) * sizeof(float));
        if (!t->dist_grads)
            TRY(lg_error_set(LG_ERR_NOMEM, "trainer: out of memory for the gradient buffer of dist: mpi"));
    }
    TRY(lg__train_dev_init(t));
#undef TRY
    lg_cpu_threads_pop(&threads);
    *out = t;
    return LG_OK;
fail:
    lg_trainer_free(t);
    lg_cpu_threads_pop(&threads);
    return s;
}

void lg_trainer_free(lg_trainer *t) {
    if (!t) return;
    lg__train_dev_free(t);
    extra_free(&t->xg);
    extra_free(&t->xd);
    lg_adam_free(&t->opt_g);
    lg_adam_free(&t->opt_d);
    lg_model_free(t->ema);
    lg_model_free(t->g);
    lg_model_free(t->d);
    lg_data_sampler_free(&t->smp);
    lg_dist_data_free(&t->data);
    if (t->flag) lg_buffer_free(t->be, t->flag);
    if (t->state_bak) lg_buffer_free(t->be, t->state_bak);
    if (t->ctx) lg_ctx_free(t->ctx);
    free(t->xb);
    free(t->nb);
    free(t->zb);
    free(t->eb);
    free(t->dist_grads);
    free(t->cfg_yaml);
    free(t->mon_ckpt_words);
    free(t->mon_ckpt_tv);
    free(t);
}

int64_t lg_trainer_steps_done(const lg_trainer *t) { return t->step; }
const lg_config *lg_trainer_config(const lg_trainer *t) { return &t->cfg; }
lg_model *lg_trainer_generator(lg_trainer *t) { return t->g; }
lg_model *lg_trainer_discriminator(lg_trainer *t) { return t->d; }
lg_model *lg_trainer_ema(lg_trainer *t) { return t->ema; }
const char *lg_trainer_device_info(const lg_trainer *t) { return t->dev.info; }

/* ---- one step ---- */

static lg_tensor *critic_fn(lg_ctx *ctx, lg_tensor *x, void *user) {
    return lg_model_forward(ctx, (lg_model *)user, x, 1);
}

static float host_mean(lg_ctx *ctx, lg_tensor *x) {
    int old = lg_ctx_set_grad_enabled(ctx, 0);
    float v = lg_item(ctx, lg_mean(ctx, x));
    lg_ctx_set_grad_enabled(ctx, old);
    return v;
}

/* Both networks' persistent state (SN u/v/sigma, BN running stats) is
 * written by forwards, including the other network's forward inside a
 * step; a skipped update restores it so a non-finite step leaves no NaN
 * behind. */
void lg__train_states_backup(lg_trainer *t) {
    size_t ng = lg_model_num_state(t->g);
    t->be->copy(t->state_bak, lg_model_state(t->g), ng);
    t->be->copy(t->state_bak + ng, lg_model_state(t->d), lg_model_num_state(t->d));
}

static void states_restore(lg_trainer *t) {
    size_t ng = lg_model_num_state(t->g);
    t->be->copy(lg_model_state(t->g), t->state_bak, ng);
    t->be->copy(lg_model_state(t->d), t->state_bak + ng, lg_model_num_state(t->d));
}

/* Applies the update of one network from the gradients in its buffer, or
 * skips it if loss or gradients are not finite. attempt: this update's
 * number among the network's updates, skipped ones included (1-based). SR
 * keys on it rather than on the applied count, so that a skipped update does
 * not move SR off its place in the step (sr_every = n_dis: the last D update).
 * With sr_schedule steps it keys on the step instead: t->step is the number of
 * steps done before this one, as the SR-GAN code's iteration counter. */
static lg_status apply_update(lg_trainer *t, lg_model *m, lg_adam *opt, lg_net_extra *x,
                              float loss, float lr, int64_t attempt, lg_train_stats *st) {
    const lg_backend *be = t->be;
    float *p = lg_model_params(m), *g = lg_model_grads(m);
    size_t n = lg_model_num_params(m);
    float ok = 0.0f;
    if (isfinite(loss)) {
        be->all_finite(t->flag, g, n);
        be->download(&ok, t->flag, 1);
    }
    if (ok != 1.0f) {
        states_restore(t);
        t->nonfinite_run++;
        st->skipped++;
        return LG_OK;
    }
    t->nonfinite_run = 0;
    for (int i = 0; x->gc && i < x->nl; i++)
        LG_TRY(lg_gclamp_apply(&x->gc[i], g + lg_model_layer(m, i)->w_offset));
    lg_adam_step(opt, p, g, lr);
    if (x->lip->clip > 0) lg_clip_weights(be, p, n, x->lip->clip);
    x->updates++;
    if (x->sr && (x->sr_by_step ? t->step : attempt) % x->lip->sr_every == 0) {
        for (int i = 0; i < x->nl; i++) {
            if (!x->sr_on[i]) continue;
            const lg_layer_info *L = lg_model_layer(m, i);
            LG_TRY(lg_sr_apply(be, p + L->w_offset, L->w->ndim, L->w->shape, L->out_dim,
                               x->lip->sr_gamma, x->lip->sr_dynamic, &x->sr[i]));
        }
    }
    return LG_OK;
}

/* Host side of a D update: the real batch (with instance noise), the
 * latent noise and the GP interpolation weights, in t->xb, t->zb, t->eb.
 * Both step paths draw the same numbers in the same order. */
lg_status lg__train_d_prepare(lg_trainer *t) {
    const lg_config *c = &t->cfg;
    int b = c->train.batch_d, zd = c->model.z_dim;
    size_t nx = (size_t)b * (size_t)t->sample_size;
    LG_TRY(lg_data_next_batch(&t->smp, b, t->xb, NULL));
    if (c->data.instance_noise > 0 && !t->is_toy) {
        lg_rng_fill_uniform(&t->rng_data, t->nb, nx, 0.0f, c->data.instance_noise);
        for (size_t i = 0; i < nx; i++) t->xb[i] += t->nb[i];
    }
    lg_rng_fill_normal(&t->rng_noise, t->zb, (size_t)b * (size_t)zd, 0.0f, 1.0f);
    if (c->lipschitz.d.gp_lambda > 0) lg_rng_fill_uniform(&t->rng_gp, t->eb, (size_t)b, 0.0f, 1.0f);
    return LG_OK;
}

void lg__train_g_prepare(lg_trainer *t) {
    const lg_config *c = &t->cfg;
    lg_rng_fill_normal(&t->rng_noise, t->zb, (size_t)c->train.batch_g * (size_t)c->model.z_dim,
                       0.0f, 1.0f);
}

/* The D loss on x (b, ...), z (b, z_dim) and, with a penalty, eps (b, 1[, 1, 1]);
 * D's outputs and the penalty term (NULL if none) in *dr, *df, *gp. */
lg_tensor *lg__train_d_loss(lg_trainer *t, lg_tensor *x, lg_tensor *z, lg_tensor *eps,
                            lg_tensor **dr, lg_tensor **df, lg_tensor **gp) {
    lg_ctx *ctx = t->ctx;
    const lg_cfg_lip *l = &t->cfg.lipschitz.d;
    /* fake batch without a graph; G's power iterations advance only in its
     * own update */
    int old = lg_ctx_set_grad_enabled(ctx, 0);
    int glu = lg_model_set_lip_update(t->g, 0);
    /* nothing reads G's intermediates again: back to the arena (with equal
     * batch sizes the D update, holding them, set the arena's size) */
    int tracked = lg_ctx_track_begin(ctx);
    lg_tensor *fake = lg_model_forward(ctx, t->g, z, 1);
    if (tracked) {
        lg_ctx_track_ref(ctx, fake, 1);
        lg_ctx_track_sweep(ctx);
        lg_ctx_track_end(ctx);
    }
    lg_model_set_lip_update(t->g, glu);
    lg_ctx_set_grad_enabled(ctx, old);

    int dlu;
    if (!t->cfg.model.d.bn) {
        /* one pass over [real; fake]: per-sample layers give the same
         * outputs as two passes, and a batch of 2b keeps a GPU busier */
        int64_t b = x->shape[0];
        lg_tensor *o = lg_model_forward(ctx, t->d, lg_cat_rows(ctx, x, fake), 1); /* u/v once */
        dlu = lg_model_set_lip_update(t->d, 0);
        *dr = lg_rows(ctx, o, 0, b);
        *df = lg_rows(ctx, o, b, b);
    } else { /* batch statistics must stay per batch */
        *dr = lg_model_forward(ctx, t->d, x, 1);    /* advances D's u/v once */
        dlu = lg_model_set_lip_update(t->d, 0);
        *df = lg_model_forward(ctx, t->d, fake, 1);
    }
    lg_tensor *loss = lg_loss_d(ctx, t->loss, *dr, *df);
    *gp = NULL;
    if (l->gp_lambda > 0) {
        lg_gp_kind kind = !strcmp(l->gp_kind, "one-sided")       ? LG_GP_ONE_SIDED
                          : !strcmp(l->gp_kind, "zero-centered") ? LG_GP_R1
                                                                 : LG_GP_TWO_SIDED;
        *gp = lg_gradient_penalty(ctx, critic_fn, t->d, x, fake, eps, l->gp_lambda, kind);
        loss = lg_add(ctx, loss, *gp);
    }
    lg_model_set_lip_update(t->d, dlu);
    return loss;
}

/* The G loss on z (b, z_dim), r(W) penalty included. */
lg_tensor *lg__train_g_loss(lg_trainer *t, lg_tensor *z) {
    lg_ctx *ctx = t->ctx;
    lg_tensor *fake = lg_model_forward(ctx, t->g, z, 1);  /* advances G's u/v once */
    int dlu = lg_model_set_lip_update(t->d, 0);
    lg_tensor *df = lg_model_forward(ctx, t->d, fake, 1);
    lg_model_set_lip_update(t->d, dlu);
    lg_tensor *loss = lg_loss_g(ctx, t->loss, df);
    lg_net_extra *x = &t->xg;
    if (x->lip->rw_lambda > 0) {
        lg_sn_state *sts[LG_MODEL_MAX_LAYERS];
        lg_tensor *ws[LG_MODEL_MAX_LAYERS];
        int od[LG_MODEL_MAX_LAYERS];
        for (int i = 0; i < x->nl; i++) {
            const lg_layer_info *L = lg_model_layer(t->g, i);
            sts[i] = x->rw_layer_sn ? (lg_sn_state *)L->lip_state : &x->rw[i];
            ws[i] = L->w;
            od[i] = L->out_dim;
        }
        /* the layers' own SN vectors were advanced by the forward above */
        loss = lg_add(ctx, loss, lg_rank_penalty(ctx, x->nl, sts, ws, od, x->lip->rw_lambda,
                                                 !x->rw_layer_sn));
    }
    return loss;
}

/* A step tensor from the host buffer `host` (classic step) or from the
 * uploaded backend buffer `dev` (sync-free step, dev != NULL). */
static lg_tensor *stage(lg_trainer *t, const float *host, const float *dev, int ndim,
                        const int64_t *shape) {
    if (!dev) return lg_from_host(t->ctx, host, ndim, shape);
    lg_tensor *x = lg_new(t->ctx, ndim, shape);
    if (x) t->be->copy(x->data, dev, (size_t)x->numel);
    return x;
}

/* Every process draws the whole batch; this one computes on rows
 * [rank*b, (rank+1)*b) of it (b = its slice; all rows when not distributed). */
void lg__train_d_inputs(lg_trainer *t, int from_dev, lg_tensor **x, lg_tensor **z,
                        lg_tensor **eps) {
    const lg_config *c = &t->cfg;
    const lg_train_dev *dv = &t->dev;
    int64_t b = t->bd, r0 = (int64_t)t->rank * b, zd = c->model.z_dim;
    const float *xb = t->xb + r0 * t->sample_size, *zb = t->zb + r0 * zd, *eb = t->eb + r0;
    *x = t->is_toy ? stage(t, xb, from_dev ? dv->in_x : NULL, 2, (int64_t[]){b, t->sample_size})
                   : stage(t, xb, from_dev ? dv->in_x : NULL, 4, (int64_t[]){b, t->c, t->h, t->w});
    *z = stage(t, zb, from_dev ? dv->in_z : NULL, 2, (int64_t[]){b, zd});
    *eps = NULL;
    if (c->lipschitz.d.gp_lambda > 0)
        *eps = t->is_toy ? stage(t, eb, from_dev ? dv->in_e : NULL, 2, (int64_t[]){b, 1})
                         : stage(t, eb, from_dev ? dv->in_e : NULL, 4, (int64_t[]){b, 1, 1, 1});
}

lg_tensor *lg__train_g_input(lg_trainer *t, int from_dev) {
    const lg_config *c = &t->cfg;
    int64_t zd = c->model.z_dim;
    return stage(t, t->zb + (int64_t)t->rank * t->bg * zd, from_dev ? t->dev.in_z : NULL, 2,
                 (int64_t[]){t->bg, zd});
}

/* dist: a network's gradients = their mean over the processes' slices.
 * MPI reads host memory, so they travel through a host buffer on every
 * backend: one path, the one CI runs on the cpu backend, for the GPU too.
 * The copies cost two passes over the parameters per update (D of the
 * SN-GAN ResNet: 4 MB). */
static lg_status dist_mean_grads(lg_trainer *t, lg_model *m) {
    size_t n = lg_model_num_params(m);
    t->be->download(t->dist_grads, lg_model_grads(m), n);
    LG_TRY(lg_dist_mean(t->dist_grads, n));
    t->be->upload(lg_model_grads(m), t->dist_grads, n);
    return LG_OK;
}

lg_status lg__train_backprop(lg_trainer *t, lg_tensor *loss, int gen) {
    LG_TRY(lg_ctx_status(t->ctx));
    lg_tensor *grads[LG_MODEL_MAX_TENSORS];
    LG_TRY(lg_grad(t->ctx, loss, NULL, gen ? t->npg : t->npd, gen ? t->pg : t->pd, grads, 0));
    lg_model *m = gen ? t->g : t->d;
    LG_TRY(lg_model_store_grads(t->ctx, m, grads, 0));
    return t->world > 1 ? dist_mean_grads(t, m) : LG_OK;
}

/* update: this D update's index within the step (0-based) */
static lg_status d_update(lg_trainer *t, float lr, int update, lg_train_stats *st) {
    lg_ctx *ctx = t->ctx;
    lg_ctx_reset(ctx);
    lg__train_states_backup(t);
    LG_TRY(lg__train_d_prepare(t));
    lg_tensor *x, *z, *eps, *dr, *df, *gp;
    lg__train_d_inputs(t, 0, &x, &z, &eps);
    lg_tensor *loss = lg__train_d_loss(t, x, z, eps, &dr, &df, &gp);
    LG_TRY(lg__train_backprop(t, loss, 0));
    float v[4] = {lg_item(ctx, loss), host_mean(ctx, dr), host_mean(ctx, df),
                  gp ? lg_item(ctx, gp) : 0.0f};
    LG_TRY(lg_ctx_status(ctx));
    if (t->world > 1) LG_TRY(lg_dist_mean(v, 4)); /* the whole batch's values, on every process */
    st->loss_d = v[0];
    st->d_real = v[1];
    st->d_fake = v[2];
    st->gp = v[3];
    lg_dis_schedule ds = lg__train_dis_schedule(&t->cfg);
    int64_t before = lg_dis_updates(&ds, 0, t->step) - t->step; /* D updates of earlier steps */
    return apply_update(t, t->d, &t->opt_d, &t->xd, st->loss_d, lr, before + update + 1, st);
}

static lg_status g_update(lg_trainer *t, float lr, lg_train_stats *st) {
    const lg_config *c = &t->cfg;
    lg_ctx *ctx = t->ctx;
    lg_ctx_reset(ctx);
    lg__train_states_backup(t);
    lg__train_g_prepare(t);
    lg_tensor *loss = lg__train_g_loss(t, lg__train_g_input(t, 0));
    LG_TRY(lg__train_backprop(t, loss, 1));
    st->loss_g = lg_item(ctx, loss);
    LG_TRY(lg_ctx_status(ctx));
    if (t->world > 1) LG_TRY(lg_dist_mean(&st->loss_g, 1));
    int before = st->skipped;
    LG_TRY(apply_update(t, t->g, &t->opt_g, &t->xg, st->loss_g, lr, t->step + 1, st));
    if (t->ema && st->skipped == before) {
        if (t->step < c->ema.start) LG_TRY(lg_model_copy(t->ema, t->g));
        else LG_TRY(lg_model_ema_update(t->ema, t->g, c->ema.decay));
    }
    return LG_OK;
}

/* step: the step that was running (1-based: steps done before it + 1), as
 * the progress lines number it; also put in st->step. Both step paths end
 * at the update that reached the limit: the classic step stops there, the
 * sync-free one neither applies nor counts the rest of its step; neither
 * counts the step as done. */
static lg_status diverged(lg_trainer *t, lg_train_stats *st, int64_t step) {
    int lim = t->cfg.train.max_nonfinite;
    st->step = step;
    st->nonfinite_run = lim;
    return lg_error_set(LG_ERR_NONFINITE,
                        "training diverged at step %lld: %d updates in a row had a non-finite "
                        "loss or gradient (train.max_nonfinite); lower the learning rate or "
                        "add a Lipschitz constraint",
                        (long long)step, lim);
}

static lg_status trainer_step(lg_trainer *t, lg_train_stats *st) {
    const lg_config *c = &t->cfg;
    memset(st, 0, sizeof *st);
    int linear = strcmp(c->train.lr_decay, "linear") == 0;
    st->lr_d = linear ? lg_lr_linear(c->optim.d.lr, t->step, c->train.steps) : c->optim.d.lr;
    st->lr_g = linear ? lg_lr_linear(c->optim.g.lr, t->step, c->train.steps) : c->optim.g.lr;
    const int64_t cur = t->step + 1; /* this step's number */
    if (lg__train_dev_keep(t)) {
        int div = 0;
        LG_TRY(lg__train_step_dev(t, st, &div));
        if (div) return diverged(t, st, cur);
        t->step++;
        st->step = t->step;
        st->nonfinite_run = t->nonfinite_run;
    } else {
        for (int i = 0, nd = lg__train_n_dis(t); i < nd; i++) {
            LG_TRY(d_update(t, st->lr_d, i, st));
            if (t->nonfinite_run >= c->train.max_nonfinite) return diverged(t, st, cur);
        }
        LG_TRY(g_update(t, st->lr_g, st));
        if (t->nonfinite_run >= c->train.max_nonfinite) return diverged(t, st, cur);
        t->step++;
        st->step = t->step;
        st->nonfinite_run = t->nonfinite_run;
    }

    float sig[LG_MODEL_MAX_LAYERS];
    int nl = lg_model_sigmas(t->d, sig, LG_MODEL_MAX_LAYERS), k = 0;
    double sum = 0;
    for (int i = 0; i < nl && i < LG_MODEL_MAX_LAYERS; i++) {
        if (lg_model_layer(t->d, i)->lip == LG_LIP_NONE) continue;
        if (k == 0 || sig[i] < st->sigma_min) st->sigma_min = sig[i];
        if (k == 0 || sig[i] > st->sigma_max) st->sigma_max = sig[i];
        sum += sig[i];
        k++;
    }
    st->sigma_mean = k ? (float)(sum / k) : 0.0f;
    return LG_OK;
}

lg_status lg_trainer_step(lg_trainer *t, lg_train_stats *st) {
    lg_cpu_threads_saved threads = lg__trainer_threads_enter(t);
    lg_status s = trainer_step(t, st);
    lg_cpu_threads_pop(&threads);
    return s;
}
