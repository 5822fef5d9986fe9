/* The configuration cross product, sampled: a seeded all-pairs (pairwise)
 * covering design over 36 training settings (data set and its shape, both
 * architectures, widths, depths, batch norm on/off, loss, every Lipschitz
 * method on D and G, optimizers, learning rate, EMA, critic schedule,
 * batches, instance noise, spectral monitor, TensorBoard, sample grids,
 * evaluation metrics and sizes, step path), on tiny models.
 *
 * Each combination is first checked by lg_config_validate against an
 * independent statement of the documented rules (rules_broken below, from
 * config.h, the keys' help and lg_config_validate's comments): a refusal
 * must be expected and name an expected key, an acceptance must not be
 * expected to refuse. That check runs on every candidate the design draws
 * (thousands; it is cheap), not only on those it trains. An accepted
 * combination then trains 2 steps (threads 1) with a checkpoint every step:
 * it succeeds (or, for what only the data files tell, is refused naming the
 * expected key), with finite losses and no skipped update (lr 10: skips
 * allowed), finite weights, 2 metrics.jsonl rows with the evaluation's
 * fields and no eval_warning. Then the final checkpoint is deleted, as if
 * the process died after step 2 wrote its rows and spectra records but
 * before its checkpoint was durable, and a fresh trainer resumes from the
 * step-1 checkpoint: step 2 must give bitwise the same stats, the same
 * checkpoint bytes and the same spectra.bin (wall times and CRCs masked).
 * For half the combinations the resuming trainer takes the sync-free step
 * (step_dev.c, what device backends run) instead of the classic one, which
 * must also be bitwise equal.
 *
 * The design, greedy (AETG-like): each new combination is the best of
 * MX_CANDIDATES seeded random candidates (a refused draw is checked, then
 * repaired by re-drawing a factor of a broken rule) by the number of factor
 * level pairs it covers that no earlier accepted combination covered.
 *
 * Defects this test found: D1 batch norm with one value per channel (now
 * refused at create naming train.batch_*), D2 MLPs on 28x28 images (now
 * trained), D3 a conv model on 28x28 idx files (now refused naming
 * data.image_size), D4 SN layers reloaded unprimed (fixed: resumes are
 * bitwise), D5 inf optimizer moments in a checkpoint (fixed: such gradients
 * are skipped), D6 SN power iteration collapsing to NaN for good on clipped
 * weights (fixed: with clipping, SN keeps a power-iteration vector that
 * comes out exactly 0, lipschitz.h keep_zero, and the stored sigma where
 * a pass without iteration meets u^T W v = 0, which used to skip that one
 * update). Combinations that hit a known defect
 * stay out of the sample unless LG_MATRIX_KNOWN=1.
 *
 * Environment (manual runs): LG_MATRIX_N = combinations trained (default
 * MX_DEFAULT_N, the CI sample); LG_MATRIX_SEED = design seed;
 * LG_MATRIX_VERBOSE=1 prints each combination as `lipgan train --set`
 * arguments, its steps and the refusals by key, and keeps the data sets;
 * LG_MATRIX_ONLY = i trains only the i-th (0-based) of the design;
 * LG_MATRIX_KNOWN=1 also runs into the known defects; LG_MATRIX_MINIMIZE=1
 * reduces each failing combination factor by factor and prints the result.
 * E.g. LG_MATRIX_N=2000 build/tests/test_config_matrix (about a minute). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "lg_test.h"
#include "lipgan/config.h"
#include "lipgan/fileio.h"
#include "lipgan/image.h"
#include "lipgan/model.h"
#include "lipgan/safetensors.h"
#include "lipgan/train.h"
#include "train/train_internal.h"
#include "train_fixtures.h"

#define MX_DEFAULT_N 150      /* the CI sample: ~4 s plain, ~12 s under ASan+UBSan (2 cores) */
#define MX_DEFAULT_SEED 20240611u
#define MX_CANDIDATES 48      /* random candidates per design row */
#define MX_MAXSETS 96         /* settings of one combination */
#define MX_SETLEN 128         /* "key=value" */
#define MX_MAXREF 32          /* refusal keys tallied */

/* ---- factors and their levels ---- */

enum {
    F_DATA, F_GARCH, F_DARCH, F_GWIDTH, F_DWIDTH, F_GDEPTH, F_DDEPTH, F_GBN, F_DBN, F_LOSS,
    F_DNORM, F_DSR, F_DPEN, F_DCLIP, F_DCLAMP, F_GNORM, F_GSR, F_GRW, F_GCLAMP, F_GCLIP,
    F_GOPT, F_DOPT, F_LR, F_EMA, F_NDIS, F_BOOST, F_BATCH, F_LRDECAY, F_NOISE, F_ZDIM,
    F_SPECTRA, F_TB, F_SAMPLES, F_EVAL, F_EVALN, F_MODE, NF
};

enum { D_RING8, D_GRID25, D_CIFAR, D_IDX28, D_IDX28P32, D_IDX8, D_IDX8P16, D_PNG1, D_PNG3, D_PNG1_32,
       D_PNG3_DIRS, D_FMNIST32, D_PNG3_AS1, D_PNG1_AS3, D_PNG1_SZ8, D_PNG1_SZ16, D_MNIST28, ND_DATA };
enum { A_MLP, A_CNN, A_RESNET };
enum { E_OFF, E_AUTO, E_TOY, E_CFID, E_CLASSES, E_BOTH, E_FID, E_NONE, NE_EVAL };

typedef struct factor {
    const char *name;
    int n;
    const char *const *lv; /* level names (for printing) */
} factor;

#define L(...) (const char *const[]){__VA_ARGS__}
static const factor k_f[NF] = {
    [F_DATA] = {"data", ND_DATA, L("ring8", "grid25", "cifar10", "idx28", "idx28pad32", "idx8", "idx8pad16",
                                   "png1_8", "png3_8", "png1_32", "png3_16dirs", "fmnist32", "png3_as1",
                                   "png1_as3", "png1_size8", "png1_size16", "mnist28")},
    [F_GARCH] = {"garch", 3, L("mlp", "cnn", "resnet")},
    [F_DARCH] = {"darch", 3, L("mlp", "cnn", "resnet")},
    [F_GWIDTH] = {"gwidth", 2, L("small", "big")},
    [F_DWIDTH] = {"dwidth", 2, L("small", "big")},
    [F_GDEPTH] = {"gdepth", 2, L("1", "2")},
    [F_DDEPTH] = {"ddepth", 2, L("1", "2")},
    [F_GBN] = {"gbn", 2, L("off", "on")},
    [F_DBN] = {"dbn", 2, L("off", "on")},
    [F_LOSS] = {"loss", 4, L("minimax", "nonsat", "hinge", "wasserstein")},
    [F_DNORM] = {"dnorm", 5, L("none", "sn", "sn_it2", "toep2", "toep0.5")},
    [F_DSR] = {"dsr", 5, L("off", "upd", "steps", "dyn_upd", "dyn_steps")},
    [F_DPEN] = {"dpen", 4, L("none", "gp2", "gp1", "gp0")},
    [F_DCLIP] = {"dclip", 3, L("off", "0.01", "1")},
    [F_DCLAMP] = {"dclamp", 3, L("off", "r1i1", "r2i3")},
    [F_GNORM] = {"gnorm", 3, L("none", "sn", "toep1")},
    [F_GSR] = {"gsr", 3, L("off", "upd", "dyn_steps")},
    [F_GRW] = {"grw", 3, L("off", "0.1", "10")},
    [F_GCLAMP] = {"gclamp", 2, L("off", "1.5")},
    [F_GCLIP] = {"gclip", 2, L("off", "0.5")},
    [F_GOPT] = {"gopt", 5, L("adam", "adam_b", "rmsprop", "rmsprop_a", "rmsprop_beta")},
    [F_DOPT] = {"dopt", 5, L("adam", "adam_b", "rmsprop", "rmsprop_a", "rmsprop_beta")},
    [F_LR] = {"lr", 4, L("2e-4", "1e-2", "0", "10")},
    [F_EMA] = {"ema", 4, L("off", "0.9@0", "0.99@1", "0.5@2")},
    [F_NDIS] = {"ndis", 3, L("1", "2", "3")},
    [F_BOOST] = {"boost", 4, L("off", "2/1/0", "3/0/2", "1/5/1")},
    [F_BATCH] = {"batch", 4, L("4/4", "1/1", "3/2", "2/5")},
    [F_LRDECAY] = {"lrdecay", 2, L("linear", "none")},
    [F_NOISE] = {"noise", 3, L("0", "1/128", "1")},
    [F_ZDIM] = {"zdim", 2, L("4", "1")},
    [F_SPECTRA] = {"spectra", 2, L("off", "on")},
    [F_TB] = {"tb", 2, L("off", "on")},
    [F_SAMPLES] = {"samples", 3, L("end/4", "1/1", "1/7")},
    [F_EVAL] = {"eval", NE_EVAL, L("off", "auto", "toy", "cfid", "classes", "cfid,classes", "fid", "none")},
    [F_EVALN] = {"evaln", 3, L("16/16", "2/2", "5/dflt")},
    [F_MODE] = {"mode", 2, L("classic", "syncfree")},
};
#undef L

typedef struct combo {
    unsigned char v[NF];
    uint64_t seed;
} combo;

/* ---- the data sets (made once) ---- */

static char g_tmp[64];
static int g_verbose, g_quiet, g_known;
static char g_cifar[96], g_idx28[96], g_idx8[96], g_png1[96], g_png3[96], g_png1_32[96],
    g_png3_dirs[96]; /* under g_tmp */

static int write_pngs(const char *dir, int n, int side, int c, uint32_t seed) {
    if (mkdir(dir, 0700) != 0) return -1;
    uint8_t *pix = malloc((size_t)side * side * c); /* (side, side, c) */
    if (!pix) return -1;
    uint32_t s = seed;
    for (int i = 0; i < n; i++) {
        for (int j = 0; j < side * side * c; j++) pix[j] = (uint8_t)(tf_lcg(&s) & 0xff);
        char p[256];
        snprintf(p, sizeof p, "%s/img%02d.png", dir, i);
        if (lg_image_write_png(p, pix, side, side, c) != LG_OK) {
            free(pix);
            return -1;
        }
    }
    free(pix);
    return 0;
}

static int make_data(void) {
    if (tf_mkdtemp(g_tmp, sizeof g_tmp) != 0) return -1;
    if (tf_write_cifar(g_tmp, 24, g_cifar, sizeof g_cifar) != 0) return -1;
    snprintf(g_idx28, sizeof g_idx28, "%s/idx28", g_tmp);
    snprintf(g_idx8, sizeof g_idx8, "%s/idx8", g_tmp);
    if (mkdir(g_idx28, 0700) || tf_write_idx_dir_sized(g_idx28, 24, 28)) return -1;
    if (mkdir(g_idx8, 0700) || tf_write_idx_dir_sized(g_idx8, 24, 8)) return -1;
    snprintf(g_png1, sizeof g_png1, "%s/png1", g_tmp);
    snprintf(g_png3, sizeof g_png3, "%s/png3", g_tmp);
    snprintf(g_png1_32, sizeof g_png1_32, "%s/png1_32", g_tmp);
    snprintf(g_png3_dirs, sizeof g_png3_dirs, "%s/png3_dirs", g_tmp);
    if (write_pngs(g_png1, 12, 8, 1, 1) || write_pngs(g_png3, 12, 8, 3, 2) ||
        write_pngs(g_png1_32, 12, 32, 1, 3))
        return -1;
    char p[128];
    if (mkdir(g_png3_dirs, 0700)) return -1;
    snprintf(p, sizeof p, "%s/cat", g_png3_dirs);
    if (write_pngs(p, 5, 16, 3, 4)) return -1;
    snprintf(p, sizeof p, "%s/dog", g_png3_dirs);
    if (write_pngs(p, 6, 16, 3, 5)) return -1;
    return 0;
}

/* ---- a combination as config settings ---- */

/* The settings of combination c, as "key=value" strings into out (n at most
 * cap); returns their number. */
static int combo_sets(const combo *c, char out[][MX_SETLEN], int cap) {
    int n = 0;
#define SET(...) do { if (n < cap) snprintf(out[n++], MX_SETLEN, __VA_ARGS__); } while (0)
    const unsigned char *v = c->v;
    /* the fixed part: tiny, 2 steps, every log/checkpoint each step */
    SET("train.steps=2");
    SET("threads=1");
    SET("seed=%llu", (unsigned long long)c->seed);
    SET("log.every=1");
    SET("log.checkpoint_every=1");
    SET("log.keep=2");
    switch (v[F_DATA]) {
    case D_RING8: SET("data.format=ring8"); SET("data.toy_n=64"); break;
    case D_GRID25: SET("data.format=grid25"); SET("data.toy_n=3"); break; /* fewer than a batch */
    case D_CIFAR: SET("data.format=cifar10"); SET("data.path=%s", g_cifar); break;
    case D_IDX28: SET("data.format=idx"); SET("data.path=%s", g_idx28); break;
    case D_IDX28P32: SET("data.format=mnist"); SET("data.path=%s", g_idx28); SET("data.image_size=32"); break;
    case D_IDX8: SET("data.format=idx"); SET("data.path=%s", g_idx8); break;
    case D_IDX8P16: SET("data.format=idx"); SET("data.path=%s", g_idx8); SET("data.image_size=16"); break;
    case D_PNG1: SET("data.format=png"); SET("data.path=%s", g_png1); SET("data.channels=1"); break;
    case D_PNG3: SET("data.format=png"); SET("data.path=%s", g_png3); SET("data.channels=3"); break;
    case D_PNG1_32: SET("data.format=png"); SET("data.path=%s", g_png1_32); SET("data.channels=1"); break;
    case D_PNG3_DIRS: SET("data.format=png"); SET("data.path=%s", g_png3_dirs); SET("data.channels=3"); break;
    case D_FMNIST32: SET("data.format=fashion-mnist"); SET("data.path=%s", g_idx28); SET("data.image_size=32"); break;
    case D_PNG3_AS1: SET("data.format=png"); SET("data.path=%s", g_png3); SET("data.channels=1"); break;
    case D_PNG1_AS3: SET("data.format=png"); SET("data.path=%s", g_png1); SET("data.channels=3"); break;
    case D_PNG1_SZ8: SET("data.format=png"); SET("data.path=%s", g_png1); SET("data.channels=1"); SET("data.image_size=8"); break;
    case D_MNIST28: SET("data.format=mnist"); SET("data.path=%s", g_idx28); break;
    case D_PNG1_SZ16: SET("data.format=png"); SET("data.path=%s", g_png1); SET("data.channels=1"); SET("data.image_size=16"); break;
    }
    static const char *const arch[3] = {"mlp", "cnn", "resnet"};
    static const int width[3][2] = {{8, 16}, {4, 8}, {4, 8}}; /* [arch][small/big] */
    SET("model.g.arch=%s", arch[v[F_GARCH]]);
    SET("model.d.arch=%s", arch[v[F_DARCH]]);
    SET("model.g.width=%d", width[v[F_GARCH]][v[F_GWIDTH]]);
    SET("model.d.width=%d", width[v[F_DARCH]][v[F_DWIDTH]]);
    SET("model.g.depth=%d", 1 + v[F_GDEPTH]);
    SET("model.d.depth=%d", 1 + v[F_DDEPTH]);
    SET("model.g.bn=%s", v[F_GBN] ? "true" : "false");
    SET("model.d.bn=%s", v[F_DBN] ? "true" : "false");
    SET("model.z_dim=%d", v[F_ZDIM] ? 1 : 4);
    static const char *const loss[4] = {"minimax", "nonsat", "hinge", "wasserstein"};
    SET("loss=%s", loss[v[F_LOSS]]);
    /* D's Lipschitz methods */
    SET("lipschitz.d.sn=%s", v[F_DNORM] == 1 || v[F_DNORM] == 2 ? "true" : "false");
    if (v[F_DNORM] == 2) SET("lipschitz.d.sn_iters=2");
    if (v[F_DNORM] == 3) SET("lipschitz.d.toeplitz_k=2");
    if (v[F_DNORM] == 4) SET("lipschitz.d.toeplitz_k=0.5");
    switch (v[F_DSR]) {
    case 1: SET("lipschitz.d.sr_gamma=0.5"); SET("lipschitz.d.sr_every=1"); break;
    case 2: SET("lipschitz.d.sr_gamma=1"); SET("lipschitz.d.sr_every=1"); SET("lipschitz.d.sr_schedule=steps"); break;
    case 3: SET("lipschitz.d.sr_gamma=0.5"); SET("lipschitz.d.sr_every=2"); SET("lipschitz.d.sr_dynamic=true"); break;
    case 4: SET("lipschitz.d.sr_gamma=0.25"); SET("lipschitz.d.sr_every=2"); SET("lipschitz.d.sr_dynamic=true");
            SET("lipschitz.d.sr_schedule=steps"); break;
    }
    switch (v[F_DPEN]) {
    case 1: SET("lipschitz.d.gp_lambda=10"); break;
    case 2: SET("lipschitz.d.gp_lambda=10"); SET("lipschitz.d.gp_kind=one-sided"); break;
    case 3: SET("lipschitz.d.gp_lambda=1"); SET("lipschitz.d.gp_kind=zero-centered"); break;
    }
    if (v[F_DCLIP]) SET("lipschitz.d.clip=%s", v[F_DCLIP] == 1 ? "0.01" : "1");
    if (v[F_DCLAMP] == 1) { SET("lipschitz.d.clamp_ratio=1"); SET("lipschitz.d.clamp_iters=1"); }
    if (v[F_DCLAMP] == 2) SET("lipschitz.d.clamp_ratio=2");
    /* G's */
    if (v[F_GNORM] == 1) SET("lipschitz.g.sn=true");
    if (v[F_GNORM] == 2) SET("lipschitz.g.toeplitz_k=1");
    if (v[F_GSR] == 1) { SET("lipschitz.g.sr_gamma=0.5"); SET("lipschitz.g.sr_every=1"); }
    if (v[F_GSR] == 2) { SET("lipschitz.g.sr_gamma=1"); SET("lipschitz.g.sr_every=1");
                         SET("lipschitz.g.sr_dynamic=true"); SET("lipschitz.g.sr_schedule=steps"); }
    if (v[F_GRW]) SET("lipschitz.g.rw_lambda=%s", v[F_GRW] == 1 ? "0.1" : "10");
    if (v[F_GCLAMP]) SET("lipschitz.g.clamp_ratio=1.5");
    if (v[F_GCLIP]) SET("lipschitz.g.clip=0.5");
    /* optimizers */
    for (int k = 0; k < 2; k++) {
        const char *nn = k ? "d" : "g";
        switch (v[k ? F_DOPT : F_GOPT]) {
        case 0: break;
        case 1: SET("optim.%s.beta1=0.5", nn); SET("optim.%s.beta2=0.999", nn); break;
        case 2: SET("optim.%s.kind=rmsprop", nn); break;
        case 3: SET("optim.%s.kind=rmsprop", nn); SET("optim.%s.alpha=0.9", nn); break;
        case 4: SET("optim.%s.kind=rmsprop", nn); SET("optim.%s.beta1=0.5", nn); break;
        }
        static const char *const lr[4] = {"2e-4", "1e-2", "0", "10"};
        SET("optim.%s.lr=%s", nn, lr[v[F_LR]]);
    }
    switch (v[F_EMA]) {
    case 1: SET("ema.decay=0.9"); break;
    case 2: SET("ema.decay=0.99"); SET("ema.start=1"); break;
    case 3: SET("ema.decay=0.5"); SET("ema.start=2"); break;
    }
    SET("train.n_dis=%d", 1 + v[F_NDIS]);
    switch (v[F_BOOST]) {
    case 1: SET("train.n_dis_boost=2"); SET("train.n_dis_boost_first=1"); SET("train.n_dis_boost_every=0"); break;
    case 2: SET("train.n_dis_boost=3"); SET("train.n_dis_boost_first=0"); SET("train.n_dis_boost_every=2"); break;
    case 3: SET("train.n_dis_boost=1"); SET("train.n_dis_boost_first=5"); SET("train.n_dis_boost_every=1"); break;
    }
    static const int bd[4] = {4, 1, 3, 2}, bg[4] = {4, 1, 2, 5};
    SET("train.batch_d=%d", bd[v[F_BATCH]]);
    SET("train.batch_g=%d", bg[v[F_BATCH]]);
    SET("train.lr_decay=%s", v[F_LRDECAY] ? "none" : "linear");
    if (v[F_NOISE]) SET("data.instance_noise=%s", v[F_NOISE] == 1 ? "1/128" : "1");
    SET("log.spectra_every=%d", v[F_SPECTRA]);
    SET("log.tensorboard=%s", v[F_TB] ? "true" : "false");
    switch (v[F_SAMPLES]) {
    case 0: SET("log.samples_every=0"); SET("log.sample_n=4"); break;
    case 1: SET("log.samples_every=1"); SET("log.sample_n=1"); break;
    case 2: SET("log.samples_every=1"); SET("log.sample_n=7"); break;
    }
    static const char *const ev[NE_EVAL] = {"", "auto", "toy", "cfid", "classes", "cfid,classes", "fid", "none"};
    if (v[F_EVAL] != E_OFF) {
        SET("eval.every=1");
        SET("eval.metrics=%s", ev[v[F_EVAL]]);
        switch (v[F_EVALN]) {
        case 0: SET("eval.n=16"); SET("eval.ref_n=16"); break;
        case 1: SET("eval.n=2"); SET("eval.ref_n=2"); break;
        case 2: SET("eval.n=5"); break;
        }
    }
#undef SET
    return n;
}


static lg_status combo_config(const combo *c, lg_config *cfg) {
    char sets[MX_MAXSETS][MX_SETLEN];
    int n = combo_sets(c, sets, MX_MAXSETS);
    lg_config_default(cfg);
    for (int i = 0; i < n; i++) LG_TRY(lg_config_set(cfg, sets[i]));
    return LG_OK;
}

static void combo_print(FILE *f, const combo *c, const char *prefix) {
    char sets[MX_MAXSETS][MX_SETLEN];
    int n = combo_sets(c, sets, MX_MAXSETS);
    fprintf(f, "%s", prefix);
    for (int i = 0; i < NF; i++) fprintf(f, "%s%s=%s", i ? " " : "", k_f[i].name, k_f[i].lv[c->v[i]]);
    fprintf(f, "\n%s  lipgan train", prefix);
    for (int i = 0; i < n; i++) fprintf(f, " --set %s", sets[i]);
    fprintf(f, "\n");
}

/* ---- the documented rules, stated independently of lg_config_validate ---- */

static int is_toy_data(int d) { return d == D_RING8 || d == D_GRID25; }

/* A documented rule that c breaks: the key a refusal names and the factors
 * whose levels break it (fb = -1: one factor). */
typedef struct violation {
    const char *key;
    int fa, fb;
} violation;

#define MX_MAXVIOL 16

/* The side of the images the model sees (0: 2-D toys). */
static int img_side(int d) {
    switch (d) {
    case D_CIFAR: case D_IDX28P32: case D_PNG1_32: case D_FMNIST32: return 32;
    case D_IDX28: case D_MNIST28: return 28;
    case D_IDX8P16: case D_PNG3_DIRS: case D_PNG1_SZ16: return 16;
    case D_RING8: case D_GRID25: return 0;
    default: return 8;
    }
}

/* The rules c breaks (at most MX_MAXVIOL) into v; returns their number.
 * stage 0: what lg_config_validate must refuse; stage 1: what only the data
 * files tell, refused by lg_trainer_create or the start of lg_trainer_run. */
static int rules_broken(const combo *c, int stage, violation *out) {
    const unsigned char *v = c->v;
    int n = 0;
#define BROKEN(k, a, b) do { if (n < MX_MAXVIOL) out[n++] = (violation){k, a, b}; } while (0)
    int d = v[F_DATA], toy = is_toy_data(d), e = v[F_EVAL];
    if (stage == 0) {
        /* config.h: "a convolutional model for 2-D toy data" */
        if (toy && v[F_GARCH] != A_MLP) BROKEN("model.g.arch", F_DATA, F_GARCH);
        if (toy && v[F_DARCH] != A_MLP) BROKEN("model.d.arch", F_DATA, F_DARCH);
        /* data.image_size help: conv models need a multiple of 8 (pad 28x28 to 32) */
        if (d == D_MNIST28 && v[F_GARCH] != A_MLP) BROKEN("data.image_size", F_DATA, F_GARCH);
        if (d == D_MNIST28 && v[F_DARCH] != A_MLP) BROKEN("data.image_size", F_DATA, F_DARCH);
        /* model.d.bn: no batch norm in a resnet D; not with the gradient penalty */
        if (v[F_DBN] && v[F_DARCH] == A_RESNET) BROKEN("model.d.bn", F_DBN, F_DARCH);
        if (v[F_DBN] && v[F_DPEN]) BROKEN("model.d.bn", F_DBN, F_DPEN);
        /* SR without SN/Toeplitz on that network */
        if (v[F_DSR] && v[F_DNORM] == 0) BROKEN("lipschitz.d.sr_gamma", F_DSR, F_DNORM);
        if (v[F_GSR] && v[F_GNORM] == 0) BROKEN("lipschitz.g.sr_gamma", F_GSR, F_GNORM);
        /* Adam's betas with rmsprop */
        if (v[F_GOPT] == 4) BROKEN("optim.g.beta1", F_GOPT, -1);
        if (v[F_DOPT] == 4) BROKEN("optim.d.beta1", F_DOPT, -1);
        /* an EMA that never averages */
        if (v[F_EMA] == 3) BROKEN("ema.start", F_EMA, -1);
        /* evaluation metrics for the data's shape, where the config tells it
         * (toys, cifar10, mnist/fashion-mnist, idx with image_size; png:
         * only the channels) */
        int ch = toy ? 2 : d == D_CIFAR || d == D_PNG3 || d == D_PNG3_DIRS || d == D_PNG1_AS3 ? 3 : 1;
        int h = toy ? 1 : d == D_CIFAR || d == D_IDX28P32 || d == D_FMNIST32 ? 32 : d == D_IDX8P16 ? 16
                : d == D_MNIST28 ? 28 : 0;
        int cls_ok = ch == 1 && (h == 0 || h == 28 || h == 32);
        if (e == E_AUTO && !toy && !cls_ok) BROKEN("eval.every", F_EVAL, F_DATA);
        if (e == E_TOY && !toy) BROKEN("eval.metrics", F_EVAL, F_DATA);
        if ((e == E_CFID || e == E_CLASSES || e == E_BOTH) && !cls_ok) BROKEN("eval.metrics", F_EVAL, F_DATA);
        if (e == E_FID) BROKEN(toy ? "eval.metrics" : "eval.inception", F_EVAL, -1);
    } else {
        /* data.format idx: the 28x28 size is known once loaded; conv models
         * need a multiple of 8 */
        if (d == D_IDX28 && v[F_GARCH] != A_MLP) BROKEN("data.image_size", F_DATA, F_GARCH);
        if (d == D_IDX28 && v[F_DARCH] != A_MLP) BROKEN("data.image_size", F_DATA, F_DARCH);
        /* batch norm needs 2+ values per channel in a training forward
         * (trainer.c bn_batch_check): G on batch_d and batch_g samples, D with
         * BN on real and fake separately (batch_d each) and on batch_g; an
         * MLP's BN sees the batch,
         * a CNN/ResNet's smallest a (side/8)^2 map */
        {
            static const int bd[4] = {4, 1, 3, 2}, bg[4] = {4, 1, 2, 5};
            int side = img_side(d), b = v[F_BATCH];
            int gmin = bd[b] < bg[b] ? bd[b] : bg[b], dmin = gmin;
            int gvals = v[F_GARCH] == A_MLP || toy ? gmin : gmin * (side / 8) * (side / 8);
            int dvals = v[F_DARCH] == A_MLP || toy ? dmin : dmin * (side / 8) * (side / 8);
            int dbn = v[F_DBN] && v[F_DARCH] != A_RESNET;
            if ((v[F_GBN] && gvals < 2) || (dbn && dvals < 2)) {
                BROKEN("train.batch_d", F_BATCH, v[F_GBN] && gvals < 2 ? F_GBN : F_DBN);
                BROKEN("train.batch_g", F_BATCH, -1);
            }
        }
        /* png files are 8x8: image_size 16 cannot be produced */
        if (d == D_PNG1_SZ16) BROKEN("data.image_size", F_DATA, -1);
        /* cfid/classes need 1x28x28 or 1x32x32; these 8x8 sizes are known only now */
        int small1 = d == D_IDX8 || d == D_PNG1 || d == D_PNG3_AS1 || d == D_PNG1_SZ8;
        if (small1 && (e == E_CFID || e == E_CLASSES || e == E_BOTH)) BROKEN("eval.metrics", F_EVAL, F_DATA);
    }
#undef BROKEN
    return n;
}

/* The keys a refusal of c may name ("k1 k2 "), "" if c must be accepted. */
static void expect_refusal(const combo *c, int stage, char *keys, size_t cap) {
    violation vs[MX_MAXVIOL];
    int n = rules_broken(c, stage, vs);
    keys[0] = '\0';
    for (int i = 0; i < n; i++) {
        strncat(keys, vs[i].key, cap - strlen(keys) - 1);
        strncat(keys, " ", cap - strlen(keys) - 1);
    }
}

/* Does msg start with one of the keys in the list? (a message names its key first) */
static int names_key(const char *msg, const char *keys) {
    char k[128];
    for (const char *p = keys; *p;) {
        while (*p == ' ') p++;
        size_t l = strcspn(p, " ");
        if (!l) break;
        snprintf(k, sizeof k, "%.*s", (int)l, p);
        if (strstr(msg, k)) return 1;
        p += l;
    }
    return 0;
}

/* Known defects not yet fixed (see the report); such combinations stay out of
 * the sample unless LG_MATRIX_KNOWN=1. Returns the defect's name or NULL. */

static const char *known_defect(const combo *c) {
    /* none left. What was D6: SN with clipping at 0.01 after a large first
     * step (lr 1e-2: RMSProp's first step is lr/sqrt(1-alpha) per weight)
     * leaves layers of exact +-0.01 entries, where W^T u, and in a pass
     * without iteration (G's update through D) u^T W v, can be exactly 0.
     * keep_zero now keeps the previous vector and the stored sigma there
     * (spectral_norm.c), so neither collapses nor skips */
    (void)c;
    return NULL;
}

/* What was D5 (fixed): a finite gradient above ~1.8e19 (lr 10) overflowed
 * g*g into Adam's v or RMSProp's square average; the update was applied,
 * the checkpoint written, and loading it failed ("holds a non-finite value").
 * The trainer now skips gradients with |g| >= LG_FINITE_MAX (backend.h), so
 * no moment in a checkpoint may be inf. (D4, a stored SN sigma <= 0 reloaded
 * as "not primed", is fixed in model.c: the resume check covers it.) */
enum { K_D4 = 1, K_D5 = 2 };

static unsigned ckpt_known(const char *path) {
    lg_st_file *f;
    if (lg_st_open(&f, path) != LG_OK) {
        lg_error_clear();
        return 0;
    }
    unsigned k = 0;
    for (size_t i = 0; i < lg_st_count(f); i++) {
        const lg_st_tensor *t = lg_st_at(f, i);
        size_t l = strlen(t->name);
        if (t->dtype != LG_ST_F32) continue;
        int sig = l > 9 && !strcmp(t->name + l - 9, ".sn_sigma");
        int mom = strstr(t->name, ".adam.") != NULL;
        for (int64_t j = 0; (sig || mom) && j < t->numel; j++) {
            float x;
            memcpy(&x, (const unsigned char *)t->data + 4 * j, 4);
            if (sig && !(x > 0.0f)) k |= K_D4; /* counted, no longer exempt */
            if (mom && !isfinite(x)) k |= K_D5;
        }
    }
    lg_st_close(f);
    return k;
}

/* ---- the covering design ---- */

typedef struct design {
    int off[NF][NF];        /* pair (i<j) -> offset of its level table in cov */
    unsigned char *cov;     /* 1 = covered by an accepted, trained combination */
    int npairs, ncovered;
    uint64_t rs;            /* candidate stream */
    long cand, cand_refused, cand_mismatch, cand_known;
    struct { char key[64]; char msg[400]; long n; } ref[MX_MAXREF];
    int nref;
} design;

static uint64_t mx_next(uint64_t *s) {
    uint64_t z = (*s += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

static void design_init(design *g, uint64_t seed) {
    memset(g, 0, sizeof *g);
    int o = 0;
    for (int i = 0; i < NF; i++)
        for (int j = i + 1; j < NF; j++) g->off[i][j] = o, o += k_f[i].n * k_f[j].n;
    g->npairs = o;
    g->cov = calloc((size_t)o, 1);
    g->rs = seed;
}

static int new_pairs(const design *g, const combo *c) {
    int n = 0;
    for (int i = 0; i < NF; i++)
        for (int j = i + 1; j < NF; j++) n += !g->cov[g->off[i][j] + c->v[i] * k_f[j].n + c->v[j]];
    return n;
}

static void mark_pairs(design *g, const combo *c) {
    for (int i = 0; i < NF; i++)
        for (int j = i + 1; j < NF; j++) {
            unsigned char *p = &g->cov[g->off[i][j] + c->v[i] * k_f[j].n + c->v[j]];
            g->ncovered += !*p;
            *p = 1;
        }
}


/* Validates c against expect_refusal. Returns 1 if accepted. */
static int check_validate(design *g, const combo *c, int report) {
    lg_config cfg;
    lg_status s = combo_config(c, &cfg);
    CHECK(s == LG_OK, "a setting of the matrix is refused by lg_config_set: %s", lg_error_msg());
    if (s != LG_OK) return 0;
    s = lg_config_validate(&cfg);
    char keys[512];
    expect_refusal(c, 0, keys, sizeof keys);
    int ok = 1;
    if (s == LG_OK && keys[0]) {
        ok = 0;
        if (report) {
            CHECK(0, "validate accepted a combination the docs refuse (expected a refusal naming %s)", keys);
            combo_print(stderr, c, "  ");
        }
    } else if (s != LG_OK && !keys[0]) {
        ok = 0;
        if (report) {
            CHECK(0, "validate refused a combination the docs accept: %s: %s", lg_status_str(s), lg_error_msg());
            combo_print(stderr, c, "  ");
        }
    } else if (s != LG_OK && (s != LG_ERR_INVALID_ARG || !names_key(lg_error_msg(), keys))) {
        ok = 0;
        if (report) {
            CHECK(0, "validate refused for another reason than expected (%s): %s: %s", keys, lg_status_str(s),
                  lg_error_msg());
            combo_print(stderr, c, "  ");
        }
    }
    if (!ok) g->cand_mismatch++;
    if (s != LG_OK) {
        g->cand_refused++;
        /* the refusals by key, with one message each (LG_MATRIX_VERBOSE) */
        const char *m = lg_error_msg();
        size_t kl = strcspn(m, ":");
        int i = 0;
        while (i < g->nref && (strlen(g->ref[i].key) != kl || strncmp(g->ref[i].key, m, kl))) i++;
        if (i == g->nref && i < MX_MAXREF) {
            snprintf(g->ref[i].key, sizeof g->ref[i].key, "%.*s", (int)kl, m);
            snprintf(g->ref[i].msg, sizeof g->ref[i].msg, "%s", m);
            g->nref++;
        }
        if (i < g->nref) g->ref[i].n++;
    }
    return s == LG_OK;
}

static combo random_combo(design *g) {
    combo c;
    for (int i = 0; i < NF; i++) {
        /* the extras are off in half the draws, so plain paths (and the
         * sync-free step, which SR excludes) stay common */
        int p0 = i == F_DSR || i == F_GSR || i == F_DCLAMP || i == F_GRW || i == F_DCLIP || i == F_BOOST ||
                 i == F_EVAL;
        if (p0 && mx_next(&g->rs) % 2) c.v[i] = 0;
        else c.v[i] = (unsigned char)(mx_next(&g->rs) % (uint64_t)k_f[i].n);
    }
    c.seed = mx_next(&g->rs) % 1000;
    return c;
}

/* c changed until it breaks no documented rule (stage 0 and, with
 * probability 3/4, stage 1): a random factor of a broken rule gets a random
 * level, repeatedly. Returns 0 if that did not converge. */
static int repair(design *g, combo *c) {
    int late_ok = mx_next(&g->rs) % 4 == 0;
    for (int it = 0; it < 200; it++) {
        violation vs[MX_MAXVIOL];
        int n = rules_broken(c, 0, vs);
        if (!n && !late_ok) n = rules_broken(c, 1, vs);
        if (!n) return 1;
        const violation *w = &vs[mx_next(&g->rs) % (uint64_t)n];
        int f = w->fb >= 0 && mx_next(&g->rs) % 2 ? w->fb : w->fa;
        c->v[f] = (unsigned char)(mx_next(&g->rs) % (uint64_t)k_f[f].n);
    }
    return 0;
}

/* The next design row: the best of MX_CANDIDATES accepted candidates. Every
 * candidate's validation is checked. Returns 0 if no candidate was accepted. */
static int design_next(design *g, combo *out, int known_ok) {
    int best = -1;
    for (int k = 0; k < MX_CANDIDATES; k++) {
        combo c = random_combo(g);
        g->cand++;
        /* the raw draw checks the refusals; its repair is the candidate */
        if (!check_validate(g, &c, 1)) {
            if (!repair(g, &c)) continue;
            g->cand++;
            if (!check_validate(g, &c, 1)) continue;
        }
        if (!known_ok && known_defect(&c)) {
            g->cand_known++;
            continue;
        }
        int np = new_pairs(g, &c);
        if (np > best) best = np, *out = c;
    }
    if (best < 0) return 0;
    mark_pairs(g, out);
    return 1;
}

/* ---- training one combination ---- */

typedef struct rec {
    int n;
    lg_train_stats s[4];
} rec;

static void rec_hook(lg_trainer *t, const lg_train_stats *s, void *user) {
    (void)t;
    rec *r = user;
    if (g_verbose)
        fprintf(stderr, "    step %lld: loss_d %.9g loss_g %.9g d_real %.9g d_fake %.9g gp %.9g sigma %.9g..%.9g "
                "skipped %d run %d\n", (long long)s->step, s->loss_d, s->loss_g, s->d_real, s->d_fake, s->gp,
                s->sigma_min, s->sigma_max, s->skipped, s->nonfinite_run);
    if (r->n < 4) r->s[r->n] = *s;
    r->n++;
}

static int same_bits(float a, float b) { return memcmp(&a, &b, sizeof a) == 0; }

static int same_stats(const lg_train_stats *a, const lg_train_stats *b) {
    return a->step == b->step && same_bits(a->loss_d, b->loss_d) && same_bits(a->loss_g, b->loss_g) &&
           same_bits(a->d_real, b->d_real) && same_bits(a->d_fake, b->d_fake) && same_bits(a->gp, b->gp) &&
           same_bits(a->lr_g, b->lr_g) && same_bits(a->lr_d, b->lr_d) && same_bits(a->sigma_min, b->sigma_min) &&
           same_bits(a->sigma_mean, b->sigma_mean) && same_bits(a->sigma_max, b->sigma_max) &&
           a->skipped == b->skipped && a->nonfinite_run == b->nonfinite_run;
}

static int model_finite(lg_model *m) {
    if (!m) return 1;
    const float *p = lg_model_params(m);
    for (size_t i = 0; i < lg_model_num_params(m); i++)
        if (!isfinite(p[i])) return 0;
    const float *s = lg_model_state(m);
    for (size_t i = 0; i < lg_model_num_state(m); i++)
        if (!isfinite(s[i])) return 0;
    return 1;
}

/* file contents (malloc'ed) or NULL */
static unsigned char *slurp(const char *path, size_t *len) {
    unsigned char *b = NULL;
    *len = 0;
    if (lg_file_read_all(path, &b, len) != LG_OK) {
        lg_error_clear();
        return NULL;
    }
    return b;
}

/* spectra.bin with each record's wall_time and CRC zeroed (they differ
 * between runs by design; monitor.h gives the layout); 0 if the layout does
 * not parse */
static int spectra_mask(unsigned char *b, size_t len) {
    if (len < 16 || memcmp(b, "LGSPECTR", 8) != 0) return 0;
    size_t o = 16;
    while (o + 8 <= len) {
        uint32_t body;
        memcpy(&body, b + o + 4, 4);
        if (body < 16 || o + 8 + body + 4 > len) return 0;
        memset(b + o + 8 + 8, 0, 8);        /* f64 wall_time after i64 step */
        memset(b + o + 8 + body, 0, 4);     /* crc32 of the body */
        o += 8 + (size_t)body + 4;
    }
    return o == len;
}

static int count_rows(const char *path, int *eval_warnings, int *nulls) {
    size_t len;
    unsigned char *b = slurp(path, &len);
    if (!b) return -1;
    int n = 0;
    for (size_t i = 0; i < len; i++) n += b[i] == '\n';
    char *s = malloc(len + 1);
    memcpy(s, b, len);
    s[len] = '\0';
    *eval_warnings = 0;
    for (char *p = s; (p = strstr(p, "eval_warning")); p++) (*eval_warnings)++;
    *nulls = 0;
    for (char *p = s; (p = strstr(p, "null")); p++) {
        (*nulls)++;
        if (g_verbose) { /* the key before it */
            char *q = p - 2;
            while (q > s && *q != '"') q--;
            char *k = q - 1;
            while (k > s && *k != '"') k--;
            fprintf(stderr, "    null: %.*s\n", (int)(q - k - 1), k + 1);
        }
    }
    free(s);
    free(b);
    return n;
}

/* occurrences of str in the file at path (-1: unreadable) */
static int count_str(const char *path, const char *str) {
    size_t len;
    unsigned char *b = slurp(path, &len);
    if (!b) return -1;
    int n = 0;
    for (size_t i = 0; i + strlen(str) <= len; i++) n += memcmp(b + i, str, strlen(str)) == 0;
    free(b);
    return n;
}

/* A metrics.jsonl field the evaluation of c must write every step, NULL if none */
static const char *eval_field(const combo *c) {
    int d = c->v[F_DATA], e = c->v[F_EVAL];
    int cls = d == D_IDX28P32 || d == D_FMNIST32 || d == D_PNG1_32 || d == D_IDX28 || d == D_MNIST28;
    if (e == E_TOY || (e == E_AUTO && is_toy_data(d))) return "\"eval_toy_modes_covered\"";
    if (e == E_CFID || e == E_BOTH || (e == E_AUTO && cls)) return "\"eval_cfid\"";
    if (e == E_CLASSES) return "\"eval_classes_covered\"";
    return NULL;
}

typedef struct counts {
    long trained, late_refused, resumed, syncfree, failed, known_hits;
} counts;

/* the first lines of a progress log that say warning (for the verbose mode) */
static void print_warnings(const char *log, const char *prefix) {
    for (const char *p = log; p && *p;) {
        const char *e = strchr(p, '\n');
        size_t l = e ? (size_t)(e - p) : strlen(p);
        if (memmem(p, l, "warning", 7) || memmem(p, l, "WARNING", 7)) fprintf(stderr, "%s%.*s\n", prefix, (int)l, p);
        p = e ? e + 1 : NULL;
    }
}

/* What went wrong with a combination (train_combo's result; the minimizer
 * keeps a change while the same bits fail). */
enum {
    X_LATE = 1,        /* a data-dependent refusal was wrong or named no expected key */
    X_TRAIN = 2,       /* training failed */
    X_NONFINITE = 4,   /* a non-finite loss, skipped update or weight */
    X_ROWS = 8,        /* metrics.jsonl rows or an eval_warning */
    X_CKPT = 16,       /* a checkpoint missing, or the resume refused */
    X_RESUME = 32,     /* step 2 after resume differs */
    X_RESUME_CK = 64,  /* the step-2 checkpoint after resume differs */
    X_SPECTRA = 128,   /* spectra.bin after resume differs */
    X_SYNCFREE = 256,  /* the sync-free step refused */
};

#define XCHECK(cond, bit, ...)          \
    do {                                \
        int ok_ = !!(cond);             \
        CHECK(ok_, __VA_ARGS__);        \
        if (!ok_) fail |= (bit);        \
    } while (0)

static unsigned train_combo(const combo *c, int idx, counts *cnt) {
    lg_config cfg;
    if (combo_config(c, &cfg) != LG_OK) return X_TRAIN;
    unsigned fail = 0;
    char late[256];
    expect_refusal(c, 1, late, sizeof late);
    char dir[128];
    snprintf(dir, sizeof dir, "%s/run%d", g_tmp, idx);
    tf_rm_rf(dir);
    char *logbuf = NULL;
    size_t loglen = 0;
    FILE *log = open_memstream(&logbuf, &loglen);
    int syncfree = c->v[F_MODE] == 1;
    int has_sr = c->v[F_DSR] || c->v[F_GSR];
    /* lr 10 may blow up: then updates are skipped (a non-finite loss or
     * gradient), but nothing non-finite may reach the weights */
    int huge = c->v[F_LR] == 3;
    unsigned char *ck = NULL, *sp = NULL;

    lg_trainer *t = NULL;
    lg_status s = lg_trainer_create(&t, &cfg);
    lg_train_opts o = {.out_dir = dir, .progress = log};
    rec ra = {0};
    if (s == LG_OK) {
        o.after_step = rec_hook, o.user = &ra;
        s = lg_trainer_run(t, &o);
    }
    if (late[0]) {
        XCHECK(s == LG_ERR_INVALID_ARG || s == LG_ERR_FORMAT, X_LATE,
               "combo %d: expected a refusal naming %s, got %s (%s)", idx, late, lg_status_str(s), lg_error_msg());
        if (s != LG_OK)
            XCHECK(names_key(lg_error_msg(), late), X_LATE, "combo %d: the refusal does not name %s: %s", idx, late,
                   lg_error_msg());
        cnt->late_refused++;
        goto done;
    }
    XCHECK(s == LG_OK, X_TRAIN, "combo %d: training failed: %s: %s", idx, lg_status_str(s), lg_error_msg());
    if (s != LG_OK) goto done;
    cnt->trained++;
    XCHECK(ra.n == 2, X_TRAIN, "combo %d: %d steps recorded, want 2", idx, ra.n);
    for (int i = 0; i < ra.n && i < 2; i++)
        XCHECK((huge && ra.s[i].skipped > 0) ||
                   (isfinite(ra.s[i].loss_d) && isfinite(ra.s[i].loss_g) && ra.s[i].skipped == 0 &&
                    isfinite(ra.s[i].d_real) && isfinite(ra.s[i].d_fake) && isfinite(ra.s[i].gp) &&
                    isfinite(ra.s[i].sigma_min) && isfinite(ra.s[i].sigma_max)),
               X_NONFINITE, "combo %d step %d: loss_d %g loss_g %g d_real %g d_fake %g gp %g sigma %g..%g, %d skipped",
               idx, i + 1, ra.s[i].loss_d, ra.s[i].loss_g, ra.s[i].d_real, ra.s[i].d_fake, ra.s[i].gp,
               ra.s[i].sigma_min, ra.s[i].sigma_max, ra.s[i].skipped);
    XCHECK(model_finite(lg_trainer_generator(t)) && model_finite(lg_trainer_discriminator(t)) &&
               model_finite(lg_trainer_ema(t)),
           X_NONFINITE, "combo %d: non-finite weights or state after 2 steps", idx);
    char p[256], p2[256], p3[256], pm[256];
    snprintf(pm, sizeof pm, "%s/metrics.jsonl", dir);
    int ew = 0, nulls = 0;
    int rows = count_rows(pm, &ew, &nulls);
    XCHECK(rows == 2 && ew == 0, X_ROWS, "combo %d: metrics.jsonl: %d rows (want 2), %d eval_warning", idx, rows, ew);
    const char *want = eval_field(c);
    if (want) XCHECK(count_str(pm, want) == 2, X_ROWS, "combo %d: metrics.jsonl has %d rows with %s, want 2", idx,
                     count_str(pm, want), want);
    if (g_verbose && nulls) fprintf(stderr, "  combo %d: %d null fields in metrics.jsonl\n", idx, nulls);
    lg_trainer_free(t);
    t = NULL;

    /* Checkpoints: none while a streak of skipped updates runs (run.c);
     * with ra.s[i].nonfinite_run == 0 step i+1 must have one. */
    int ck1 = ra.n >= 1 && ra.s[0].nonfinite_run == 0, ck2 = ra.n >= 2 && ra.s[1].nonfinite_run == 0;
    lg_checkpoint_path(p, sizeof p, dir, 2);
    size_t lck = 0, lsp = 0;
    ck = slurp(p, &lck);
    XCHECK(!ck == !ck2, X_CKPT, "combo %d: step-2 checkpoint %s, with %d skipped updates in a row", idx,
           ck ? "written" : "missing", ra.n >= 2 ? ra.s[1].nonfinite_run : -1);
    lg_checkpoint_path(p2, sizeof p2, dir, 1);
    XCHECK(!ck1 == (access(p2, R_OK) != 0), X_CKPT, "combo %d: step-1 checkpoint %s, with %d skipped updates in a row",
           idx, ck1 ? "missing" : "written", ra.n >= 1 ? ra.s[0].nonfinite_run : -1);
    snprintf(p2, sizeof p2, "%s/spectra.bin", dir);
    sp = slurp(p2, &lsp);
    XCHECK(!c->v[F_SPECTRA] == !sp, X_ROWS, "combo %d: spectra.bin %s with log.spectra_every %d", idx,
           sp ? "written" : "missing", c->v[F_SPECTRA]);
    /* a death after step 2's rows and spectra records but before its
     * checkpoint was durable: resume from step 1 */
    if (!ck1) goto done;
    lg_checkpoint_path(p3, sizeof p3, dir, 1);
    unsigned kd = ckpt_known(p3);
    XCHECK(!(kd & K_D5), X_TRAIN, "combo %d: an optimizer moment in the step-1 checkpoint is not finite", idx);
    if (kd & K_D4) cnt->known_hits++; /* a stored sigma <= 0: the resume below must still be bitwise */
    if (ck && unlink(p) != 0) goto done;
    s = lg_trainer_create(&t, &cfg);
    XCHECK(s == LG_OK, X_TRAIN, "combo %d: second create: %s", idx, lg_error_msg());
    if (s != LG_OK) goto done;
    if (syncfree) {
        lg_status ms = lg__trainer_set_step_mode(t, 1);
        if (has_sr) XCHECK(ms == LG_ERR_UNSUPPORTED, X_SYNCFREE, "combo %d: sync-free step with SR: %s", idx,
                           lg_status_str(ms));
        else XCHECK(ms == LG_OK, X_SYNCFREE, "combo %d: sync-free step refused: %s", idx, lg_error_msg());
        if (ms == LG_OK) cnt->syncfree++;
        lg_error_clear();
    }
    rec rb = {0};
    o = (lg_train_opts){.out_dir = dir, .progress = log, .resume = 1, .after_step = rec_hook, .user = &rb};
    s = lg_trainer_run(t, &o);
    XCHECK(s == LG_OK, X_CKPT, "combo %d: resume failed: %s: %s", idx, lg_status_str(s), lg_error_msg());
    if (s != LG_OK) goto done;
    cnt->resumed++;
    XCHECK(rb.n == 1 && ra.n == 2 && same_stats(&rb.s[0], &ra.s[1]), X_RESUME,
           "combo %d: step 2 after resume%s differs: loss_d %.9g vs %.9g, loss_g %.9g vs %.9g, "
           "sigma_max %.9g vs %.9g, lr_g %.9g vs %.9g", idx, syncfree && !has_sr ? " (sync-free)" : "",
           rb.s[0].loss_d, ra.s[1].loss_d, rb.s[0].loss_g, ra.s[1].loss_g, rb.s[0].sigma_max,
           ra.s[1].sigma_max, rb.s[0].lr_g, ra.s[1].lr_g);
    if (ck) {
        size_t l2 = 0;
        unsigned char *ckb = slurp(p, &l2);
        int same = ckb && l2 == lck && memcmp(ck, ckb, lck) == 0;
        XCHECK(same, X_RESUME_CK, "combo %d: the step-2 checkpoint after resume differs (%zu vs %zu bytes)", idx, l2,
               lck);
        if (g_verbose && ckb && !same) {
            char keep[300];
            snprintf(keep, sizeof keep, "/tmp/dbg%d_uninterrupted.safetensors", idx);
            lg_file_write_atomic(keep, ck, lck);
            snprintf(keep, sizeof keep, "/tmp/dbg%d_resumed.safetensors", idx);
            lg_file_write_atomic(keep, ckb, l2);
        }
        free(ckb);
    }
    if (sp) {
        size_t l2 = 0;
        unsigned char *sp2 = slurp(p2, &l2);
        XCHECK(sp2 && l2 == lsp && spectra_mask(sp, lsp) && spectra_mask(sp2, l2) && memcmp(sp, sp2, lsp) == 0,
               X_SPECTRA, "combo %d: spectra.bin after resume differs (%zu vs %zu bytes)", idx, l2, lsp);
        free(sp2);
    }
    rows = count_rows(pm, &ew, &nulls);
    XCHECK(rows == 2 && ew == 0, X_ROWS, "combo %d: metrics.jsonl after resume: %d rows (want 2), %d eval_warning",
           idx, rows, ew);
done:
    free(ck);
    free(sp);
    lg_trainer_free(t);
    fclose(log);
    if (fail) cnt->failed++;
    if (fail && !g_quiet) combo_print(stderr, c, "  ");
    if ((fail && !g_quiet) || g_verbose) print_warnings(logbuf, "    log: ");
    free(logbuf);
    tf_rm_rf(dir);
    return fail;
}

/* LG_MATRIX_MINIMIZE: c made simpler one factor at a time (level 0, or for
 * the data set any level) while it stays accepted and keeps failing the
 * same way; prints the result. */
static void minimize(design *g, combo c, int idx, unsigned target) {
    counts cnt = {0};
    g_quiet = 1;
    int changed = 1;
    while (changed) {
        changed = 0;
        for (int f = 0; f < NF; f++) {
            for (int l = 0; l < k_f[f].n; l++) {
                if (l == c.v[f] || (f != F_DATA && l != 0)) continue;
                if (f == F_DATA && c.v[f] < l) break; /* data: earlier levels are simpler */
                combo t = c;
                t.v[f] = (unsigned char)l;
                if (!check_validate(g, &t, 0)) continue;
                int fd = dup(2);
                FILE *nul = freopen("/dev/null", "w", stderr);
                (void)nul;
                unsigned x = train_combo(&t, idx, &cnt);
                fflush(stderr);
                dup2(fd, 2);
                close(fd);
                if (x & target) {
                    c = t;
                    changed = 1;
                    break;
                }
            }
        }
    }
    g_quiet = 0;
    fprintf(stderr, "minimized combo %d (failure bits %#x):\n", idx, target);
    combo_print(stderr, &c, "  ");
    train_combo(&c, idx, &cnt);
}

static void test_matrix(void) {
    const char *e = getenv("LG_MATRIX_N");
    long n = e && *e ? strtol(e, NULL, 10) : MX_DEFAULT_N;
    e = getenv("LG_MATRIX_SEED");
    uint64_t seed = e && *e ? strtoull(e, NULL, 10) : MX_DEFAULT_SEED;
    e = getenv("LG_MATRIX_ONLY");
    long only = e && *e ? strtol(e, NULL, 10) : -1;
    e = getenv("LG_MATRIX_VERBOSE");
    g_verbose = e && *e == '1';
    e = getenv("LG_MATRIX_KNOWN");
    int known_ok = e && *e == '1';
    g_known = known_ok;
    e = getenv("LG_MATRIX_MINIMIZE");
    int minimize_on = e && *e == '1';
    CHECK(make_data() == 0, "cannot write the tiny data sets under %s", g_tmp);
    static design g;
    design_init(&g, seed);
    counts cnt = {0};
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    long rows = 0;
    for (long i = 0; i < n; i++) {
        combo c;
        if (!design_next(&g, &c, known_ok)) continue;
        rows++;
        if (only >= 0 && i != only) continue;
        if (g_verbose) {
            fprintf(stderr, "combo %ld:\n", i);
            combo_print(stderr, &c, "  ");
        }
        unsigned x = train_combo(&c, (int)i, &cnt);
        if (x && minimize_on) minimize(&g, c, (int)i, x);
    }
    clock_gettime(CLOCK_MONOTONIC, &t1);
    double secs = (double)(t1.tv_sec - t0.tv_sec) + 1e-9 * (double)(t1.tv_nsec - t0.tv_nsec);
    fprintf(stderr,
            "matrix: seed %llu: %ld design rows; %ld candidates validated (%ld refused, %ld disagreeing with the "
            "docs, %ld known defects left out); %ld trained, %ld refused at create/run start, %ld resumed (%ld "
            "sync-free; %ld of them with a stored SN sigma <= 0, D4); %ld failed; pairs covered %d of %d; %.1f s\n",
            (unsigned long long)seed, rows, g.cand, g.cand_refused, g.cand_mismatch, g.cand_known, cnt.trained,
            cnt.late_refused, cnt.resumed, cnt.syncfree, cnt.known_hits, cnt.failed, g.ncovered, g.npairs, secs);
    CHECK(rows == n, "the design found only %ld accepted rows of %ld", rows, n);
    for (int i = 0; g_verbose && i < g.nref; i++)
        fprintf(stderr, "refused %6ld x %s\n    e.g. %s\n", g.ref[i].n, g.ref[i].key, g.ref[i].msg);
    free(g.cov);
    if (g_verbose) fprintf(stderr, "matrix: data sets kept in %s\n", g_tmp);
    else tf_rm_rf(g_tmp);
}

int main(void) {
    LG_TEST_RUN(test_matrix);
    return lg_test_summary("test_config_matrix");
}
