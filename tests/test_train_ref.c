/* The trainer against a PyTorch GAN training loop, step by step.
 *
 * The op tests (test_reference.c, test_lipschitz_ref.c) check every op and
 * Adam on its own; this checks that lg_trainer_step COMPOSES them as a
 * PyTorch loop does: the losses and their inputs, the SN power-iteration
 * schedule (one iteration per update of a network, in D's forward over
 * [real; fake]; the other passes use the stored vectors), the gradient
 * penalties, Adam and RMSProp, the linear learning-rate decay, n_dis and
 * the WGAN critic boost, batch_d != batch_g, batch norm's running
 * statistics, the EMA of G, and every other Lipschitz method of the
 * trainer: weight clipping, the Toeplitz-normalized critic, spectral
 * gradient clamping, the r(W) penalty and SR-GAN's spectral regularization
 * (static and dynamic, both schedules). The script writes each from its
 * source document's definition as lipgan documents it (see its docstring).
 *
 * Each case is a tiny config trained for train.steps (3) steps. The test
 * reproduces the trainer's random draws with the public API (the data set
 * and sampler, lg_rng streams NOISE / GP / DATA; seeds derived as trainer.c
 * does), and checks after the run, against the checkpoint's rng and
 * data-cursor states, that the trainer drew exactly that much from each
 * stream. tests/data/ref/train_<case>.safetensors (tools/gen_reference_train.py)
 * holds those inputs, the initial weights, and PyTorch's results:
 *   stats (steps, 10)   per step: loss_d, d_real, d_fake, gp (of the step's
 *                       last D update), loss_g (r(W) penalty included),
 *                       lr_d, lr_g, sigma_min, sigma_mean, sigma_max (D's SN
 *                       and Toeplitz sigmas; 0 without either)
 *   step<s>.{G,D,EMA}.<name>  every parameter and state tensor after step s
 *   {init,step<s>}.X.<net>.<kind>.<layer>.<v>  the trainer's state outside
 *                       the models, read from its checkpoint (see extras):
 *                       gradient clamping's warm-started vectors, r(W)'s own
 *                       power iteration, dynamic SR's recorded spectrum
 * all compared with |lipgan - torch| <= ATOL + RTOL |torch| (observed: <= 6.5e-7,
 * under 6% of the bound), except the biases that a batch norm right after
 * their layer cancels, and that batch norm's running mean: their true
 * gradient is 0, Adam turns both sides' rounding noise into steps of up to
 * ~lr, so they are only bounded by 4 x the sum of G's learning rates (see
 * bn_cancelled). The inputs and initial weights must match to 1e-6 (they
 * are lipgan's own, copied). The largest errors are printed ("max err").
 *
 * The cases avoid other parameters whose true gradient is exactly 0, for
 * the same reason (Adam's and RMSProp's first steps are ~lr sign(g), so
 * rounding noise of either side becomes a full step): under the hinge and
 * wasserstein losses D's output bias gets (#fake - #real)/b in margin, so
 * those cases use batch_d 4 or 8, where these sums are exact (0 on both
 * sides); the CNN critics without batch norm use the nonsat / minimax
 * losses (under hinge or wasserstein, a last conv at 1x1 whose LeakyReLU
 * pattern is the same for every sample gets a bias gradient of exactly 0);
 * wgan_clip takes RMSProp eps 1e-3 (a batch-norm shift with as many
 * positive outputs in the real as in the fake batch has a true gradient of
 * 0 under the wasserstein loss). And the SR cases keep s_gamma / s_gamma+1
 * >= 1.02 at every SR call (the script prints the smallest): W_SR's
 * compensated subspace amplifies rounding by ~1 / (that ratio - 1).
 *
 * Cases: sngan (hinge, SN on D, Adam (0, 0.9), linear decay, n_dis 2, ring8,
 * MLPs, BN in G), wgangp (wasserstein + GP, Adam (0.5, 0.9), no decay, 8x8
 * PNG images with instance noise, CNN G, MLP D), nonsat_ema (SN on G and
 * D with 2 iterations, EMA of G, grid25), minimax (no Lipschitz method),
 * wgan_clip, toeplitz_gp, sn_gp, clamp_rw, clamp_g, srgan, srgan_dyn (see
 * CASES).
 *
 * Regenerate (after a deliberate change of the trainer's maths or draws):
 *   LG_TRAIN_REF_DUMP=/tmp/trd build/tests/test_train_ref
 *   python3 tools/gen_reference_train.py /tmp/trd
 * Data directory: $LG_TEST_DATA or tests/data (run from the repo root). */
#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "lg_test.h"
#include "lipgan/config.h"
#include "lipgan/data.h"
#include "lipgan/image.h"
#include "lipgan/model.h"
#include "lipgan/optim.h"
#include "lipgan/rng.h"
#include "lipgan/safetensors.h"
#include "lipgan/train.h"

#define ATOL 1e-5
#define RTOL 1e-4
#define IN_TOL 1e-6 /* inputs and initial weights: lipgan's own numbers */
#define NSTAT 10
#define MAX_UPD 64  /* D updates + G updates of a case */
#define NPNG 10     /* images of the PNG cases */
#define MAX_META 96 /* config metadata entries */

static const char *const STAT_NAMES[NSTAT] = {"loss_d", "d_real", "d_fake",    "gp",        "loss_g",
                                              "lr_d",   "lr_g",   "sigma_min", "sigma_mean", "sigma_max"};

typedef struct tcase {
    const char *name;
    int png_data;            /* 1: data.path = a temp folder of 8x8 gray PNG images */
    const char *sets[40];    /* --set overrides over lg_config_default, NULL-terminated */
} tcase;

/* Shared by every case: tiny, single-threaded, 3 steps. */
static const char *const COMMON[] = {"train.steps=3", "threads=1", "model.z_dim=4", NULL};

static const tcase CASES[] = {
    /* (a) SN-GAN: hinge, SN on D (1 power iteration per D update), Adam
     * (0, 0.9), linear decay, n_dis 2, batch_d != batch_g, MLP with BN in G */
    {"sngan", 0,
     {"data.format=ring8", "data.toy_n=64", "seed=11", "loss=hinge",
      "model.g.arch=mlp", "model.g.width=16", "model.g.depth=2", "model.g.bn=true",
      "model.d.arch=mlp", "model.d.width=16", "model.d.depth=2",
      "lipschitz.d.sn=true", "lipschitz.d.sn_iters=1",
      "optim.g.lr=0.01", "optim.g.beta1=0", "optim.g.beta2=0.9",
      "optim.d.lr=0.02", "optim.d.beta1=0", "optim.d.beta2=0.9",
      "train.n_dis=2", "train.batch_d=8", "train.batch_g=12", "train.lr_decay=linear", NULL}},
    /* (b) WGAN-GP: wasserstein + two-sided GP (lambda 10, eps from the GP
     * stream), no SN, Adam (0.5, 0.9), no decay, on 8x8 images with
     * instance noise: the CNNs (convs, transposed convs, BN in G) */
    {"wgangp", 1,
     {"data.format=png", "data.channels=1", "data.instance_noise=0.05", "seed=23", "loss=wasserstein",
      "model.g.arch=cnn", "model.g.width=2", "model.d.arch=mlp", "model.d.width=16", "model.d.depth=3",
      "lipschitz.d.sn=false", "lipschitz.d.gp_lambda=10", "lipschitz.d.gp_kind=two-sided",
      "optim.g.lr=0.005", "optim.g.beta1=0.5", "optim.g.beta2=0.9",
      "optim.d.lr=0.005", "optim.d.beta1=0.5", "optim.d.beta2=0.9",
      "train.n_dis=3", "train.batch_d=4", "train.batch_g=6", "train.lr_decay=none", NULL}},
    /* (c) nonsat loss, SN on G and D with 2 power iterations, EMA of G
     * (copied at step 0, averaged from step 1), Adam (0.5, 0.999) */
    {"nonsat_ema", 0,
     {"data.format=grid25", "data.toy_n=50", "seed=37", "loss=nonsat",
      "model.g.arch=mlp", "model.g.width=12", "model.g.depth=2", "model.g.bn=false",
      "model.d.arch=mlp", "model.d.width=12", "model.d.depth=3",
      "lipschitz.g.sn=true", "lipschitz.g.sn_iters=2",
      "lipschitz.d.sn=true", "lipschitz.d.sn_iters=2",
      "optim.g.lr=0.01", "optim.g.beta1=0.5", "optim.g.beta2=0.999",
      "optim.d.lr=0.01", "optim.d.beta1=0.5", "optim.d.beta2=0.999",
      "train.n_dis=2", "train.batch_d=6", "train.batch_g=10", "train.lr_decay=linear",
      "ema.decay=0.8", "ema.start=1", NULL}},
    /* (d) minimax (saturating G loss), no Lipschitz method, n_dis 1 */
    {"minimax", 0,
     {"data.format=ring8", "data.toy_n=40", "seed=41", "loss=minimax",
      "model.g.arch=mlp", "model.g.width=8", "model.g.depth=1",
      "model.d.arch=mlp", "model.d.width=8", "model.d.depth=2",
      "lipschitz.d.sn=false",
      "optim.g.lr=0.02", "optim.g.beta1=0.5", "optim.g.beta2=0.999",
      "optim.d.lr=0.02", "optim.d.beta1=0.5", "optim.d.beta2=0.999",
      "train.n_dis=1", "train.batch_d=5", "train.batch_g=7", "train.lr_decay=linear", NULL}},
    /* (e) WGAN: wasserstein, weight clipping of D (every parameter: weights,
     * biases, batch norm's scale and shift), RMSProp on both (alpha not the
     * default), the boosted critic schedule (3, 1, 3 D updates: first 1,
     * every 2), the DCGAN critic (CNN with BN, bias-less convs before BN);
     * eps 1e-3 and batch_d 8 against exact-zero gradients (see the top) */
    {"wgan_clip", 1,
     {"data.format=png", "data.channels=1", "seed=53", "loss=wasserstein",
      "model.g.arch=mlp", "model.g.width=8", "model.g.depth=1", "model.g.bn=false",
      "model.d.arch=cnn", "model.d.width=2", "model.d.bn=true", "model.d.lrelu=0.2",
      "lipschitz.d.sn=false", "lipschitz.d.clip=0.05",
      "optim.g.kind=rmsprop", "optim.g.lr=0.005", "optim.g.alpha=0.9", "optim.g.eps=1e-3",
      "optim.d.kind=rmsprop", "optim.d.lr=0.004", "optim.d.alpha=0.95", "optim.d.eps=1e-3",
      "train.n_dis=1", "train.n_dis_boost=3", "train.n_dis_boost_first=1", "train.n_dis_boost_every=2",
      "train.batch_d=8", "train.batch_g=5", "train.lr_decay=linear", NULL}},
    /* (f) Toeplitz-normalized CNN critic (true conv operator norm by power
     * iteration through conv2d / its adjoint, 2 iterations, scale k = 2; its
     * linear layer plain SN) with a one-sided gradient penalty through it
     * (nonsat loss: see the top) */
    {"toeplitz_gp", 1,
     {"data.format=png", "data.channels=1", "data.instance_noise=0.02", "seed=59", "loss=nonsat",
      "model.g.arch=mlp", "model.g.width=8", "model.g.depth=1", "model.g.bn=false",
      "model.d.arch=cnn", "model.d.width=2", "model.d.lrelu=0.1",
      "lipschitz.d.sn=false", "lipschitz.d.toeplitz_k=2", "lipschitz.d.sn_iters=2",
      "lipschitz.d.gp_lambda=5", "lipschitz.d.gp_kind=one-sided",
      "optim.g.lr=0.005", "optim.g.beta1=0.5", "optim.g.beta2=0.9",
      "optim.d.lr=0.005", "optim.d.beta1=0.5", "optim.d.beta2=0.9",
      "train.n_dis=2", "train.batch_d=4", "train.batch_g=5", "train.lr_decay=none", NULL}},
    /* (g) SN and a gradient penalty together: the penalty's pass uses the
     * stored u, v; zero-centered (R1: |grad|^2 at the real samples) */
    {"sn_gp", 0,
     {"data.format=grid25", "data.toy_n=40", "seed=61", "loss=hinge",
      "model.g.arch=mlp", "model.g.width=8", "model.g.depth=2", "model.g.bn=true",
      "model.d.arch=mlp", "model.d.width=10", "model.d.depth=2",
      "lipschitz.d.sn=true", "lipschitz.d.sn_iters=1",
      "lipschitz.d.gp_lambda=2", "lipschitz.d.gp_kind=zero-centered",
      "optim.g.lr=0.01", "optim.g.beta1=0", "optim.g.beta2=0.9",
      "optim.d.lr=0.01", "optim.d.beta1=0", "optim.d.beta2=0.9",
      "train.n_dis=2", "train.batch_d=8", "train.batch_g=8", "train.lr_decay=linear", NULL}},
    /* (h) spectral gradient clamping on D (with SN; its (1, width) output
     * layer has one singular value and is never clamped) and the r(W)
     * penalty on a G without SN (its own power-iteration states) */
    {"clamp_rw", 0,
     {"data.format=ring8", "data.toy_n=48", "seed=67", "loss=hinge",
      "model.g.arch=mlp", "model.g.width=8", "model.g.depth=2", "model.g.bn=false",
      "model.d.arch=mlp", "model.d.width=8", "model.d.depth=2",
      "lipschitz.d.sn=true", "lipschitz.d.clamp_ratio=1.5", "lipschitz.d.clamp_iters=3",
      "lipschitz.g.rw_lambda=2",
      "optim.g.lr=0.01", "optim.g.beta1=0", "optim.g.beta2=0.9",
      "optim.d.lr=0.01", "optim.d.beta1=0", "optim.d.beta2=0.9",
      "train.n_dis=2", "train.batch_d=8", "train.batch_g=8", "train.lr_decay=linear", NULL}},
    /* (i) clamping on an SN generator (2 iterations) and r(W) through the
     * layers' own SN vectors; nonsat loss, D without a constraint */
    {"clamp_g", 0,
     {"data.format=grid25", "data.toy_n=40", "seed=71", "loss=nonsat",
      "model.g.arch=mlp", "model.g.width=6", "model.g.depth=2", "model.g.bn=false",
      "model.d.arch=mlp", "model.d.width=8", "model.d.depth=2",
      "lipschitz.d.sn=false", "lipschitz.g.sn=true", "lipschitz.g.sn_iters=1",
      "lipschitz.g.clamp_ratio=1.2", "lipschitz.g.clamp_iters=2", "lipschitz.g.rw_lambda=1",
      "optim.g.lr=0.01", "optim.g.beta1=0.5", "optim.g.beta2=0.999",
      "optim.d.lr=0.01", "optim.d.beta1=0.5", "optim.d.beta2=0.999",
      "train.n_dis=1", "train.batch_d=6", "train.batch_g=8", "train.lr_decay=none", NULL}},
    /* (j) SR-GAN: SN + spectral regularization (gamma = n/2) of the CNN
     * critic's convolutions (not its linear layer) after every 2nd D update
     * (n_dis 2: the last D update of each step); minimax loss (see the
     * top); seed 74: every SR call has s_gamma / s_gamma+1 >= 1.03 */
    {"srgan", 1,
     {"data.format=png", "data.channels=1", "seed=74", "loss=minimax",
      "model.g.arch=mlp", "model.g.width=8", "model.g.depth=1", "model.g.bn=false",
      "model.d.arch=cnn", "model.d.width=2", "model.d.lrelu=0.1",
      "lipschitz.d.sn=true", "lipschitz.d.sr_gamma=0.5", "lipschitz.d.sr_every=2",
      "optim.g.lr=0.005", "optim.g.beta1=0", "optim.g.beta2=0.9",
      "optim.d.lr=0.005", "optim.d.beta1=0", "optim.d.beta2=0.9",
      "train.n_dis=2", "train.batch_d=4", "train.batch_g=5", "train.lr_decay=linear", NULL}},
    /* (k) SR's dynamic variant (running maximum of the normalized spectrum),
     * sr_schedule steps (every update of steps 0 and 2) on an MLP D (every
     * layer; width 6: gamma = 0.25 * 6 rounds down to 1), and SR on an SN
     * generator after each of its updates */
    {"srgan_dyn", 0,
     {"data.format=grid25", "data.toy_n=40", "seed=79", "loss=hinge",
      "model.g.arch=mlp", "model.g.width=8", "model.g.depth=2", "model.g.bn=false",
      "model.d.arch=mlp", "model.d.width=6", "model.d.depth=2",
      "lipschitz.d.sn=true", "lipschitz.d.sr_gamma=0.25", "lipschitz.d.sr_every=2",
      "lipschitz.d.sr_schedule=steps", "lipschitz.d.sr_dynamic=true",
      "lipschitz.g.sn=true", "lipschitz.g.sr_gamma=0.5", "lipschitz.g.sr_every=1",
      "optim.g.lr=0.01", "optim.g.beta1=0", "optim.g.beta2=0.9",
      "optim.d.lr=0.01", "optim.d.beta1=0", "optim.d.beta2=0.9",
      "train.n_dis=2", "train.batch_d=8", "train.batch_g=8", "train.lr_decay=linear", NULL}},
};

/* trainer.c's seed mixer (private there): the data seeds are derived from
 * cfg.seed with it, and the checkpoint check below catches any drift. */
static uint64_t mix64(uint64_t x) {
    x += 0x9E3779B97F4A7C15ull;
    x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
    x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
    return x ^ (x >> 31);
}

/* n 8x8 gray PNG images of LCG bytes as dir/img<i>.png */
static int write_png8(const char *dir, int n) {
    uint32_t s = 2024;
    for (int i = 0; i < n; i++) {
        uint8_t pix[64]; /* (8, 8, 1) */
        for (int j = 0; j < 64; j++) {
            s = s * 1664525u + 1013904223u;
            pix[j] = (uint8_t)(s >> 24);
        }
        char p[512];
        snprintf(p, sizeof p, "%s/img%02d.png", dir, i);
        if (lg_image_write_png(p, pix, 8, 8, 1) != LG_OK) return -1;
    }
    return 0;
}

/* ---- the config as metadata: what the PyTorch script needs ---- */

typedef struct kv {
    char key[48];
    char val[64];
} kv;

typedef struct meta {
    kv e[MAX_META];
    int n;
} meta;

static void meta_add(meta *m, const char *key, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void meta_add(meta *m, const char *key, const char *fmt, ...) {
    LG_ASSERT(m->n < MAX_META);
    kv *e = &m->e[m->n++];
    snprintf(e->key, sizeof e->key, "%s", key);
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(e->val, sizeof e->val, fmt, ap);
    va_end(ap);
}

static void config_meta(const lg_config *c, const lg_dataset *d, int n_upd_d, meta *m) {
    m->n = 0;
    meta_add(m, "cfg.sample_shape", "%d,%d,%d", d->c, d->h, d->w);
    meta_add(m, "cfg.toy", "%d", lg_config_is_toy(c));
    meta_add(m, "cfg.z_dim", "%d", c->model.z_dim);
    const lg_cfg_net *nets[2] = {&c->model.g, &c->model.d};
    const lg_cfg_lip *lips[2] = {&c->lipschitz.g, &c->lipschitz.d};
    const lg_cfg_adam *opts[2] = {&c->optim.g, &c->optim.d};
    for (int i = 0; i < 2; i++) {
        char k[48];
        const char *r = i ? "d" : "g";
#define ADD(field, fmt, val)                           \
    do {                                               \
        snprintf(k, sizeof k, "cfg.%s.%s", r, field);  \
        meta_add(m, k, fmt, val);                      \
    } while (0)
        ADD("arch", "%s", nets[i]->arch);
        ADD("width", "%d", nets[i]->width);
        ADD("depth", "%d", nets[i]->depth);
        ADD("bn", "%d", nets[i]->bn);
        ADD("lrelu", "%.9g", (double)nets[i]->lrelu);
        ADD("sn", "%d", lips[i]->sn);
        ADD("sn_iters", "%d", lips[i]->sn_iters);
        ADD("optim", "%s", opts[i]->kind);
        ADD("lr", "%.9g", (double)opts[i]->lr);
        ADD("beta1", "%.9g", (double)opts[i]->beta1);
        ADD("beta2", "%.9g", (double)opts[i]->beta2);
        ADD("eps", "%.9g", (double)opts[i]->eps);
        /* the later cases' settings, only where on: the first four cases'
         * references stay as they were */
        const lg_cfg_lip *l = lips[i];
        if (!strcmp(opts[i]->kind, "rmsprop")) ADD("alpha", "%.9g", (double)opts[i]->alpha);
        if (l->clip > 0) ADD("clip", "%.9g", (double)l->clip);
        if (l->toeplitz_k > 0) ADD("toeplitz_k", "%.9g", (double)l->toeplitz_k);
        if (l->clamp_ratio > 0) {
            ADD("clamp_ratio", "%.9g", (double)l->clamp_ratio);
            ADD("clamp_iters", "%d", l->clamp_iters);
        }
        if (l->rw_lambda > 0) ADD("rw_lambda", "%.9g", (double)l->rw_lambda);
        if (l->sr_gamma > 0) {
            ADD("sr_gamma", "%.9g", (double)l->sr_gamma);
            ADD("sr_every", "%d", l->sr_every);
            ADD("sr_schedule", "%s", l->sr_schedule);
            ADD("sr_dynamic", "%d", l->sr_dynamic);
        }
#undef ADD
    }
    meta_add(m, "cfg.loss", "%s", c->loss);
    meta_add(m, "cfg.gp_lambda", "%.9g", (double)c->lipschitz.d.gp_lambda);
    meta_add(m, "cfg.gp_kind", "%s", c->lipschitz.d.gp_kind);
    meta_add(m, "cfg.steps", "%lld", (long long)c->train.steps);
    meta_add(m, "cfg.n_dis", "%d", c->train.n_dis);
    if (c->train.n_dis_boost > 0) {
        meta_add(m, "cfg.n_dis_boost", "%d", c->train.n_dis_boost);
        meta_add(m, "cfg.n_dis_boost_first", "%lld", (long long)c->train.n_dis_boost_first);
        meta_add(m, "cfg.n_dis_boost_every", "%lld", (long long)c->train.n_dis_boost_every);
    }
    meta_add(m, "cfg.batch_d", "%d", c->train.batch_d);
    meta_add(m, "cfg.batch_g", "%d", c->train.batch_g);
    meta_add(m, "cfg.lr_decay", "%s", c->train.lr_decay);
    meta_add(m, "cfg.ema_decay", "%.9g", (double)c->ema.decay);
    meta_add(m, "cfg.ema_start", "%lld", (long long)c->ema.start);
    meta_add(m, "cfg.d_updates", "%d", n_upd_d);
}

/* ---- a case's inputs: the trainer's draws, reproduced ---- */

typedef struct inputs {
    int nd, ng;              /* D updates, G updates (= steps) */
    int64_t xs;              /* floats per sample */
    float *x[MAX_UPD];       /* (batch_d, C, H, W) real batch of D update k (noise added) */
    float *z[MAX_UPD];       /* (batch_d, z_dim) */
    float *e[MAX_UPD];       /* (batch_d) GP epsilon, or NULL */
    float *zg[MAX_UPD];      /* (batch_g, z_dim) noise of G update s */
    lg_rng noise, gp, data;  /* the streams after all draws */
    int64_t cursor[LG_DATA_CURSOR_LEN];
    lg_dataset ds;
} inputs;

static void inputs_free(inputs *in) {
    for (int k = 0; k < MAX_UPD; k++) {
        free(in->x[k]);
        free(in->z[k]);
        free(in->e[k]);
        free(in->zg[k]);
    }
    lg_data_free(&in->ds);
    memset(in, 0, sizeof *in);
}

/* What lg__train_d_prepare / lg__train_g_prepare (trainer.c) draw, in order. */
static lg_status draw_inputs(const lg_config *c, inputs *in) {
    memset(in, 0, sizeof *in);
    lg_data_spec sp;
    memset(&sp, 0, sizeof sp);
    sp.format = c->data.format;
    sp.path = c->data.path;
    sp.split = LG_SPLIT_TRAIN;
    sp.size = c->data.image_size;
    sp.channels = c->data.channels;
    sp.n = c->data.toy_n;
    sp.seed = mix64((uint64_t)c->seed + 4);
    LG_TRY(lg_data_load(&in->ds, &sp));
    lg_data_sampler smp;
    LG_TRY(lg_data_sampler_init(&smp, &in->ds, mix64((uint64_t)c->seed + 3)));
    lg_rng_init(&in->noise, (uint64_t)c->seed, LG_RNG_STREAM_NOISE);
    lg_rng_init(&in->gp, (uint64_t)c->seed, LG_RNG_STREAM_GP);
    lg_rng_init(&in->data, (uint64_t)c->seed, LG_RNG_STREAM_DATA);
    in->xs = lg_data_sample_size(&in->ds);
    const int bd = c->train.batch_d, bg = c->train.batch_g, zd = c->model.z_dim;
    const size_t nx = (size_t)bd * (size_t)in->xs;
    const int toy = lg_config_is_toy(c);
    lg_dis_schedule sch = {c->train.n_dis, c->train.n_dis_boost, c->train.n_dis_boost_first,
                           c->train.n_dis_boost_every};
    lg_status s = LG_OK;
    for (int64_t step = 0; step < c->train.steps && s == LG_OK; step++) {
        for (int i = 0, n = lg_dis_at(&sch, step); i < n && s == LG_OK; i++) {
            int k = in->nd++;
            LG_ASSERT(k < MAX_UPD);
            in->x[k] = malloc(nx * sizeof(float));
            in->z[k] = malloc((size_t)bd * (size_t)zd * sizeof(float));
            float *noise = malloc(nx * sizeof(float));
            LG_ASSERT(in->x[k] && in->z[k] && noise);
            s = lg_data_next_batch(&smp, bd, in->x[k], NULL);
            if (c->data.instance_noise > 0 && !toy) {
                lg_rng_fill_uniform(&in->data, noise, nx, 0.0f, c->data.instance_noise);
                for (size_t j = 0; j < nx; j++) in->x[k][j] += noise[j];
            }
            free(noise);
            lg_rng_fill_normal(&in->noise, in->z[k], (size_t)bd * (size_t)zd, 0.0f, 1.0f);
            if (c->lipschitz.d.gp_lambda > 0) {
                in->e[k] = malloc((size_t)bd * sizeof(float));
                LG_ASSERT(in->e[k]);
                lg_rng_fill_uniform(&in->gp, in->e[k], (size_t)bd, 0.0f, 1.0f);
            }
        }
        int g = in->ng++;
        in->zg[g] = malloc((size_t)bg * (size_t)zd * sizeof(float));
        LG_ASSERT(in->zg[g]);
        lg_rng_fill_normal(&in->noise, in->zg[g], (size_t)bg * (size_t)zd, 0.0f, 1.0f);
    }
    lg_data_sampler_get_cursor(&smp, in->cursor);
    lg_data_sampler_free(&smp);
    return s;
}

/* ---- comparisons ---- */

typedef struct errs {
    double abs_max;   /* largest |got - ref| */
    double ratio;     /* largest |got - ref| / (ATOL + RTOL |ref|): <= 1 passes */
    char where[160];  /* ... of that one */
} errs;

static void close_track(const float *got, const float *ref, size_t n, const char *what, errs *e) {
    for (size_t i = 0; i < n; i++) {
        double d = fabs((double)got[i] - (double)ref[i]);
        double r = d / (ATOL + RTOL * fabs((double)ref[i]));
        if (d > e->abs_max) e->abs_max = d;
        if (r > e->ratio || isnan(r)) {
            e->ratio = isnan(r) ? INFINITY : r;
            snprintf(e->where, sizeof e->where, "%s[%zu]", what, i);
        }
    }
    lg_test_close(got, ref, n, ATOL, RTOL, what);
}

/* ref tensor key as floats (numel must be n); NULL (a failed check) if absent */
static float *ref_get(lg_st_file *f, const char *key, size_t n) {
    const lg_st_tensor *t = lg_st_find(f, key);
    CHECK(t != NULL, "%s: no tensor '%s' (regenerate: see the comment at the top of %s)",
          lg_st_path(f), key, __FILE__);
    if (!t) return NULL;
    CHECK(t->numel == (int64_t)n, "%s: %s has %lld elements, the test %zu", lg_st_path(f), key,
          (long long)t->numel, n);
    if (t->numel != (int64_t)n) return NULL;
    float *d = malloc((n ? n : 1) * sizeof(float));
    LG_ASSERT(d);
    CHECK_OK(lg_st_get_f32(f, key, -1, NULL, d));
    return d;
}

static void ref_close(lg_st_file *f, const char *key, const float *got, size_t n, double tol_exact,
                      errs *e) {
    float *r = ref_get(f, key, n);
    if (!r) return;
    if (e) close_track(got, r, n, key, e);
    else lg_test_close(got, r, n, tol_exact, tol_exact, key);
    free(r);
}

/* Copies of the tensors handed to the dump's writer, which keeps pointers
 * until it writes (after the run has changed the model's buffers). */
typedef struct copies {
    float **p;
    int n, cap;
} copies;

/* a new buffer of n floats, freed with the others by copies_free */
static float *copies_new(copies *cp, size_t n) {
    if (cp->n == cp->cap) {
        cp->cap = cp->cap ? 2 * cp->cap : 256;
        cp->p = realloc(cp->p, (size_t)cp->cap * sizeof *cp->p);
        LG_ASSERT(cp->p);
    }
    float *c = cp->p[cp->n++] = malloc(n * sizeof(float) + 1);
    LG_ASSERT(c);
    return c;
}

static void copies_free(copies *cp) {
    for (int i = 0; i < cp->n; i++) free(cp->p[i]);
    free(cp->p);
    memset(cp, 0, sizeof *cp);
}

/* prefix.<name> for every tensor of m, copied into the writer */
static void dump_tensors(lg_model *m, const char *prefix, lg_st_writer *w, copies *cp) {
    for (int i = 0; i < lg_model_num_named(m); i++) {
        const lg_named_tensor *nt = lg_model_named(m, i);
        char key[128];
        snprintf(key, sizeof key, "%s.%s", prefix, nt->name);
        float *c = copies_new(cp, (size_t)nt->t->numel);
        memcpy(c, nt->t->data, (size_t)nt->t->numel * sizeof(float)); /* CPU backend: host memory */
        CHECK_OK(lg_st_writer_add_f32(w, key, nt->t->ndim, nt->t->shape, c));
    }
}

/* "fc0" -> "0", "dc1" -> "1", "c0_1" -> "0_1": the index batch norm layers share */
static const char *layer_index(const char *layer) {
    while (*layer >= 'a' && *layer <= 'z') layer++;
    return layer;
}

/* 1 if tensor `name` of m is cancelled by the batch norm right after its
 * layer: the bias of a layer feeding bn<i> (fc<i> of an MLP with BN, l0 and
 * dc<i> of the CNN G), and that bn<i>'s running mean, which tracks it. The
 * batch mean removes such a bias, so its true gradient is 0 and both sides
 * compute rounding noise (~1e-9); Adam divides by sqrt(v) + eps and turns
 * that noise into steps of up to ~lr, of either sign. Nothing else depends
 * on it beyond rounding (the other tensors and the losses stay within the
 * fp32 bound), so these are only bounded by the learning rate. */
static int bn_cancelled(lg_model *m, const char *name) {
    char layer[LG_MODEL_NAME_MAX], key[LG_MODEL_NAME_MAX + 16];
    const char *dot = strrchr(name, '.');
    if (!dot || (size_t)(dot - name) >= sizeof layer) return 0;
    memcpy(layer, name, (size_t)(dot - name));
    layer[dot - name] = 0;
    if (!strcmp(dot, ".bias") && strncmp(layer, "bn", 2) != 0) {
        snprintf(key, sizeof key, "bn%s.weight", layer_index(layer));
        return *layer_index(layer) && lg_model_find(m, key) != NULL;
    }
    if (!strcmp(dot, ".running_mean")) { /* some biased layer with the same index */
        for (int i = 0; i < lg_model_num_named(m); i++) {
            const char *n = lg_model_named(m, i)->name, *d = strrchr(n, '.');
            if (!d || strcmp(d, ".bias") || !strncmp(n, "bn", 2)) continue;
            snprintf(key, sizeof key, "%.*s", (int)(d - n), n);
            if (!strcmp(layer_index(key), layer_index(layer))) return 1;
        }
    }
    return 0;
}

/* prefix.<name> for every tensor of m against the file f: to tol_exact
 * (inputs), or (tol_exact < 0) to the trajectory bound into e, the tensors
 * bn_cancelled() names to bn_atol into eb */
static void cmp_tensors(lg_model *m, const char *prefix, lg_st_file *f, double tol_exact, errs *e,
                        errs *eb, double bn_atol) {
    for (int i = 0; i < lg_model_num_named(m); i++) {
        const lg_named_tensor *nt = lg_model_named(m, i);
        char key[128];
        snprintf(key, sizeof key, "%s.%s", prefix, nt->name);
        const size_t n = (size_t)nt->t->numel;
        if (tol_exact >= 0 || !bn_cancelled(m, nt->name)) {
            ref_close(f, key, nt->t->data, n, tol_exact, tol_exact >= 0 ? NULL : e);
            continue;
        }
        LG_ASSERT(eb); /* tol_exact < 0 comes with eb (callers pass NULL only with tol_exact >= 0) */
        float *r = ref_get(f, key, n);
        if (!r) continue;
        for (size_t j = 0; j < n; j++) {
            double d = fabs((double)nt->t->data[j] - (double)r[j]);
            if (d > eb->abs_max || isnan(d)) {
                eb->abs_max = isnan(d) ? INFINITY : d;
                eb->ratio = eb->abs_max / bn_atol;
                snprintf(eb->where, sizeof eb->where, "%s[%zu]", key, j);
            }
        }
        lg_test_close(nt->t->data, r, n, bn_atol, 0.0, key);
        free(r);
    }
}

/* The checkpoint's rng and data-cursor states equal the reproduced ones:
 * the trainer drew what draw_inputs drew (same streams, same counts). */
static void check_draws(lg_trainer *t, const inputs *in, const char *name) {
    char dir[] = "/tmp/lgtrref_XXXXXX", path[128];
    if (!mkdtemp(dir)) {
        CHECK(0, "mkdtemp failed");
        return;
    }
    snprintf(path, sizeof path, "%s/ck.safetensors", dir);
    CHECK_OK(lg_trainer_save(t, path));
    lg_st_file *f = NULL;
    CHECK_OK(lg_st_open(&f, path));
    if (f) {
        const char *keys[3] = {"rng.noise", "rng.gp", "rng.data"};
        const lg_rng *mine[3] = {&in->noise, &in->gp, &in->data};
        for (int i = 0; i < 3; i++) {
            int64_t got[LG_RNG_STATE_WORDS], want[LG_RNG_STATE_WORDS];
            lg_rng_state_save(mine[i], want);
            CHECK_OK(lg_st_get_i64(f, keys[i], 1, (int64_t[]){LG_RNG_STATE_WORDS}, got));
            CHECK(memcmp(got, want, sizeof got) == 0,
                  "%s: the trainer's %s stream is not where the test's reproduction of its draws "
                  "is: trainer.c changed what it draws; update draw_inputs and regenerate",
                  name, keys[i]);
        }
        int64_t cur[LG_DATA_CURSOR_LEN];
        CHECK_OK(lg_st_get_i64(f, "data.cursor", 1, (int64_t[]){LG_DATA_CURSOR_LEN}, cur));
        CHECK(memcmp(cur, in->cursor, sizeof cur) == 0,
              "%s: data cursor {%lld,%lld,%lld,%lld}, the test's {%lld,%lld,%lld,%lld}", name,
              (long long)cur[0], (long long)cur[1], (long long)cur[2], (long long)cur[3],
              (long long)in->cursor[0], (long long)in->cursor[1], (long long)in->cursor[2],
              (long long)in->cursor[3]);
        lg_st_close(f);
    }
    remove(path);
    rmdir(dir);
}

/* The trainer's per-layer state outside the models, as its checkpoint holds
 * it: spectral gradient clamping's warm-started vectors
 * (<net>.gclamp.<layer>.{u0,u1,v0,v1}), the r(W) penalty's own power
 * iteration (<net>.rw.<layer>.{u,v,sigma}, a G without SN) and dynamic SR's
 * recorded spectrum (<net>.sr.<layer>.ref, once recorded). */
static int is_extra(const char *name) {
    if ((name[0] != 'G' && name[0] != 'D') || name[1] != '.') return 0;
    return !strncmp(name + 2, "gclamp.", 7) || !strncmp(name + 2, "rw.", 3) || !strncmp(name + 2, "sr.", 3);
}

/* <prefix>.X.<name> for every extra (is_extra) of t's checkpoint: added to
 * the dump's writer w, or compared with the reference f (tol_exact >= 0: to
 * it, else to the trajectory bound into e), which must hold no other
 * <prefix>.X.* tensor. */
static void extras(lg_trainer *t, const char *prefix, lg_st_writer *w, copies *cp, lg_st_file *f,
                   double tol_exact, errs *e) {
    char dir[] = "/tmp/lgtrref_XXXXXX", path[128], key[192], pre[64];
    if (!mkdtemp(dir)) {
        CHECK(0, "mkdtemp failed");
        return;
    }
    snprintf(path, sizeof path, "%s/ck.safetensors", dir);
    snprintf(pre, sizeof pre, "%s.X.", prefix);
    CHECK_OK(lg_trainer_save(t, path));
    lg_st_file *ck = NULL;
    CHECK_OK(lg_st_open(&ck, path));
    size_t n = 0;
    for (size_t i = 0; ck && i < lg_st_count(ck); i++) {
        const lg_st_tensor *x = lg_st_at(ck, i);
        if (!is_extra(x->name)) continue;
        n++;
        float *v = w ? copies_new(cp, (size_t)x->numel) : malloc((size_t)x->numel * sizeof(float) + 1);
        LG_ASSERT(v);
        CHECK_OK(lg_st_get_f32(ck, x->name, -1, NULL, v));
        snprintf(key, sizeof key, "%s%s", pre, x->name);
        if (w) {
            CHECK_OK(lg_st_writer_add_f32(w, key, x->ndim, x->shape, v));
        } else {
            ref_close(f, key, v, (size_t)x->numel, tol_exact, tol_exact >= 0 ? NULL : e);
            free(v);
        }
    }
    if (f) { /* the reference has no extra that lipgan lacks (e.g. an SR spectrum recorded early) */
        size_t nr = 0;
        for (size_t i = 0; i < lg_st_count(f); i++) nr += !strncmp(lg_st_at(f, i)->name, pre, strlen(pre));
        CHECK(nr == n, "%s: %zu %s* tensors, lipgan's checkpoint %zu", lg_st_path(f), nr, pre, n);
    }
    lg_st_close(ck);
    remove(path);
    rmdir(dir);
}

static void stats_row(const lg_train_stats *s, float *row) {
    const float v[NSTAT] = {s->loss_d, s->d_real,    s->d_fake,     s->gp,       s->loss_g,
                            s->lr_d,   s->lr_g,      s->sigma_min, s->sigma_mean, s->sigma_max};
    memcpy(row, v, sizeof v);
}

static void run_case(const tcase *tc, const char *dump_dir) {
    char tmp[] = "/tmp/lgtrref_XXXXXX";
    int have_tmp = 0;
    lg_config c;
    lg_config_default(&c);
    for (int i = 0; COMMON[i]; i++) CHECK_OK(lg_config_set(&c, COMMON[i]));
    for (int i = 0; tc->sets[i]; i++) CHECK_OK(lg_config_set(&c, tc->sets[i]));
    if (tc->png_data) {
        have_tmp = mkdtemp(tmp) != NULL;
        CHECK(have_tmp && write_png8(tmp, NPNG) == 0, "%s: cannot write the PNG images", tc->name);
        char a[256];
        snprintf(a, sizeof a, "data.path=%s", tmp);
        CHECK_OK(lg_config_set(&c, a));
    }
    lg_trainer *t = NULL;
    CHECK_OK(lg_trainer_create(&t, &c));
    inputs in;
    lg_status ds = draw_inputs(&c, &in);
    CHECK_OK(ds);
    if (!t || ds != LG_OK) goto out;

    lg_model *g = lg_trainer_generator(t), *d = lg_trainer_discriminator(t);
    const int bd = c.train.batch_d, bg = c.train.batch_g, zd = c.model.z_dim;
    const int64_t xsh[4] = {bd, in.ds.c, in.ds.h, in.ds.w};
    const int xnd = lg_config_is_toy(&c) ? 2 : 4;
    const int64_t xsh_toy[2] = {bd, in.xs};
    meta md;
    config_meta(&c, &in.ds, in.nd, &md);

    lg_st_writer *w = NULL;
    lg_st_file *f = NULL;
    copies cp = {NULL, 0, 0};
    char path[512];
    if (dump_dir) {
        CHECK_OK(lg_st_writer_create(&w));
        if (!w) goto out;
        for (int i = 0; i < md.n; i++) CHECK_OK(lg_st_writer_add_meta(w, md.e[i].key, md.e[i].val));
        CHECK_OK(lg_st_writer_add_meta(w, "case", tc->name));
        dump_tensors(g, "init.G", w, &cp);
        dump_tensors(d, "init.D", w, &cp);
    } else {
        const char *dir = getenv("LG_TEST_DATA");
        snprintf(path, sizeof path, "%s/ref/train_%s.safetensors", dir ? dir : "tests/data", tc->name);
        CHECK_OK(lg_st_open(&f, path));
        if (!f) goto out;
        for (int i = 0; i < md.n; i++) {
            const char *v = lg_st_meta(f, md.e[i].key);
            CHECK(v && !strcmp(v, md.e[i].val),
                  "%s: %s is '%s' in the test, '%s' in the reference: regenerate it (see the top "
                  "of this file)",
                  path, md.e[i].key, md.e[i].val, v ? v : "(absent)");
        }
        cmp_tensors(g, "init.G", f, IN_TOL, NULL, NULL, 0);
        cmp_tensors(d, "init.D", f, IN_TOL, NULL, NULL, 0);
    }
    extras(t, "init", w, &cp, f, IN_TOL, NULL);
    /* the inputs: written, or checked against the reference's copy */
    for (int k = 0; k < in.nd + in.ng; k++) {
        char key[64];
        const int isg = k >= in.nd, j = isg ? k - in.nd : k;
        for (int part = 0; part < 3; part++) {
            const float *v = isg ? (part == 1 ? in.zg[j] : NULL)
                                 : (part == 0 ? in.x[j] : part == 1 ? in.z[j] : in.e[j]);
            if (!v) continue;
            snprintf(key, sizeof key, "in.%s.%d", isg ? "zg" : part == 0 ? "x" : part == 1 ? "z" : "eps", j);
            int nd = part == 0 ? xnd : part == 1 ? 2 : 1;
            const int64_t *sh = part == 0 ? (xnd == 2 ? xsh_toy : xsh)
                                : part == 1 ? (int64_t[]){isg ? bg : bd, zd} : (int64_t[]){bd};
            int64_t n = 1;
            for (int q = 0; q < nd; q++) n *= sh[q];
            if (w) CHECK_OK(lg_st_writer_add_f32(w, key, nd, sh, v));
            else ref_close(f, key, v, (size_t)n, IN_TOL, NULL);
        }
    }

    /* the run, compared after every step */
    errs ep = {0, 0, ""}, es = {0, 0, ""}, eb = {0, 0, ""};
    double bn_atol = 0; /* 4 x the G learning rates so far: two Adam walks of up to ~2 lr a step */
    float *stats = calloc((size_t)c.train.steps * NSTAT, sizeof(float)); /* (steps, NSTAT) */
    float *ref_stats = f ? ref_get(f, "stats", (size_t)c.train.steps * NSTAT) : NULL;
    LG_ASSERT(stats);
    for (int64_t s = 0; s < c.train.steps; s++) {
        lg_train_stats st;
        lg_status rs = lg_trainer_step(t, &st);
        CHECK_OK(rs);
        if (rs != LG_OK) break;
        CHECK(st.skipped == 0, "%s step %lld: %d updates skipped", tc->name, (long long)s + 1, st.skipped);
        float *row = stats + s * NSTAT;
        stats_row(&st, row);
        bn_atol += 4.0 * st.lr_g;
        char pre[48]; /* "lipgan.step<s>.G" */
        if (!f) { /* lipgan's states too, for the script's report only */
            snprintf(pre, sizeof pre, "lipgan.step%lld", (long long)s + 1);
            extras(t, pre, w, &cp, NULL, 0, NULL);
            snprintf(pre, sizeof pre, "lipgan.step%lld.G", (long long)s + 1);
            dump_tensors(g, pre, w, &cp);
            snprintf(pre, sizeof pre, "lipgan.step%lld.D", (long long)s + 1);
            dump_tensors(d, pre, w, &cp);
            continue;
        }
        if (ref_stats) {
            for (int q = 0; q < NSTAT; q++) {
                char what[64];
                snprintf(what, sizeof what, "step%lld.%s", (long long)s + 1, STAT_NAMES[q]);
                close_track(&row[q], &ref_stats[s * NSTAT + q], 1, what, &es);
            }
        }
        snprintf(pre, sizeof pre, "step%lld.G", (long long)s + 1);
        cmp_tensors(g, pre, f, -1, &ep, &eb, bn_atol);
        snprintf(pre, sizeof pre, "step%lld.D", (long long)s + 1);
        cmp_tensors(d, pre, f, -1, &ep, &eb, bn_atol);
        if (lg_trainer_ema(t)) {
            snprintf(pre, sizeof pre, "step%lld.EMA", (long long)s + 1);
            cmp_tensors(lg_trainer_ema(t), pre, f, -1, &ep, &eb, bn_atol);
        }
        snprintf(pre, sizeof pre, "step%lld", (long long)s + 1);
        extras(t, pre, NULL, NULL, f, -1, &ep);
    }
    check_draws(t, &in, tc->name);
    if (w) {
        CHECK_OK(lg_st_writer_add_f32(w, "lipgan.stats", 2, (int64_t[]){c.train.steps, NSTAT}, stats));
        snprintf(path, sizeof path, "%s/train_%s.safetensors", dump_dir, tc->name);
        CHECK_OK(lg_st_writer_write(w, path, 1));
        printf("%s: wrote %s\n", tc->name, path);
        lg_st_writer_free(w);
        copies_free(&cp);
    } else {
        printf("%s: max err stats %.3g (%.3g of the bound, %s), tensors %.3g (%.3g of the bound, "
               "%s); BN-cancelled %.3g (%.3g of 4 sum lr_g, %s)\n",
               tc->name, es.abs_max, es.ratio, es.where, ep.abs_max, ep.ratio, ep.where, eb.abs_max,
               eb.ratio, eb.where[0] ? eb.where : "none");
        lg_st_close(f);
    }
    free(stats);
    free(ref_stats);
out:
    inputs_free(&in);
    lg_trainer_free(t);
    if (have_tmp) {
        for (int i = 0; i < NPNG; i++) {
            char p[512];
            snprintf(p, sizeof p, "%s/img%02d.png", tmp, i);
            remove(p);
        }
        rmdir(tmp);
    }
}

static void test_trajectories(void) {
    const char *dump = getenv("LG_TRAIN_REF_DUMP");
    for (size_t i = 0; i < sizeof CASES / sizeof CASES[0]; i++) run_case(&CASES[i], dump);
}

int main(void) {
    LG_TEST_RUN(test_trajectories);
    return lg_test_summary("test_train_ref");
}
