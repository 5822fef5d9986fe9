/* Training configuration: key table, YAML parser, overrides, printer
 * (see lipgan/config.h). */
#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <yaml.h>

#include "lipgan/config.h"
#include "lipgan/eval.h"

#define OFF(field) offsetof(lg_config, field)

/* The net / lipschitz / optimizer rows are the same for G and D. */
/* bn_help, lrelu_help: what the key does for this network */
#define NET_ROWS(N, n, bn_help, lrelu_help)                                                 \
    {"model." n ".arch", LG_CFG_ENUM, OFF(model.N.arch), 0, 0, "resnet|cnn|mlp",             \
     "architecture: SN-GAN ResNet, standard CNN (DCGAN-style) or MLP"},                      \
    {"model." n ".width", LG_CFG_INT, OFF(model.N.width), 0, 4096, NULL,                     \
     "channels (resnet, cnn base) or hidden units (mlp); 0 = the architecture's default"},    \
    {"model." n ".depth", LG_CFG_INT, OFF(model.N.depth), 0, 64, NULL,                       \
     "MLP hidden layers; 0 = default (4)"},                                                  \
    {"model." n ".bn", LG_CFG_BOOL, OFF(model.N.bn), 0, 1, NULL, bn_help},                   \
    {"model." n ".lrelu", LG_CFG_FLOAT, OFF(model.N.lrelu), 0, 1, NULL, lrelu_help}

/* gp_help, kind_help, rw_help: what these keys do for this network (the
 * gradient penalty is the discriminator's, the r(W) penalty the generator's;
 * lg_config_validate rejects them on the other network) */
#define LIP_ROWS(N, n, gp_help, kind_help, rw_help)                                         \
    {"lipschitz." n ".sn", LG_CFG_BOOL, OFF(lipschitz.N.sn), 0, 1, NULL,                     \
     "spectral normalization of every weight layer"},                                        \
    {"lipschitz." n ".sn_iters", LG_CFG_INT, OFF(lipschitz.N.sn_iters), 1, 100, NULL,        \
     "power iterations per update of this network (SN and Toeplitz), run once in its "       \
     "update's forward (D: over real and fake together); the other network's update reuses " \
     "the vectors (the SN-GAN and thesis codes also iterate there)"},                        \
    {"lipschitz." n ".toeplitz_k", LG_CFG_FLOAT, OFF(lipschitz.N.toeplitz_k), 0, 1000, NULL, \
     "> 0: Toeplitz normalization (true conv operator norm) scaled to k, instead of SN"},    \
    {"lipschitz." n ".sr_gamma", LG_CFG_FLOAT, OFF(lipschitz.N.sr_gamma), 0, 1, NULL,        \
     "> 0: SR-GAN, compensate this fraction of the singular values (paper 0.5)"},            \
    {"lipschitz." n ".sr_every", LG_CFG_INT, OFF(lipschitz.N.sr_every), 1, 1000000, NULL,    \
     "apply SR after every N-th update of this network (skipped updates count); with "       \
     "sr_schedule steps, in every N-th step"},                                                \
    {"lipschitz." n ".sr_schedule", LG_CFG_ENUM, OFF(lipschitz.N.sr_schedule), 0, 0,         \
     "updates|steps",                                                                         \
     "updates: SR after every sr_every-th update (paper sec. 4: the last D update of a step, " \
     "sr_every = n_dis); steps: after every update of every sr_every-th step, from the first " \
     "(the public SR-GAN code)"},                                                             \
    {"lipschitz." n ".sr_dynamic", LG_CFG_BOOL, OFF(lipschitz.N.sr_dynamic), 0, 1, NULL,     \
     "SR's dynamic variant: keep the running maximum of the normalized spectrum"},           \
    {"lipschitz." n ".clip", LG_CFG_FLOAT, OFF(lipschitz.N.clip), 0, 1000, NULL,             \
     "> 0: clip every parameter (weights, biases, batch-norm scale/shift) to [-c, c] after "  \
     "each update (WGAN)"},                                                                  \
    {"lipschitz." n ".gp_lambda", LG_CFG_FLOAT, OFF(lipschitz.N.gp_lambda), 0, 1e6, NULL,    \
     gp_help},                                                                               \
    {"lipschitz." n ".gp_kind", LG_CFG_ENUM, OFF(lipschitz.N.gp_kind), 0, 0,                 \
     "two-sided|one-sided|zero-centered", kind_help},                                        \
    {"lipschitz." n ".rw_lambda", LG_CFG_FLOAT, OFF(lipschitz.N.rw_lambda), 0, 1e6, NULL,    \
     rw_help},                                                                               \
    {"lipschitz." n ".clamp_ratio", LG_CFG_FLOAT, OFF(lipschitz.N.clamp_ratio), 0, 1e6,      \
     NULL, "> 0: spectral gradient clamping, sigma0(grad) <= r sigma1(grad)"},             \
    {"lipschitz." n ".clamp_iters", LG_CFG_INT, OFF(lipschitz.N.clamp_iters), 1, 100, NULL,  \
     "power iterations per update estimating the gradient's sigma0 and sigma1 for clamping "  \
     "(warm-started from the last update; the thesis code used 3)"}

#define ADAM_ROWS(N, n)                                                                     \
    {"optim." n ".kind", LG_CFG_ENUM, OFF(optim.N.kind), 0, 0, "adam|rmsprop",               \
     "optimizer: Adam (bias-corrected) or RMSProp as torch.optim.RMSprop (WGAN with "         \
     "clipping; no momentum, not centered)"},                                                \
    {"optim." n ".lr", LG_CFG_FLOAT, OFF(optim.N.lr), 0, 10, NULL, "learning rate"},         \
    {"optim." n ".beta1", LG_CFG_FLOAT, OFF(optim.N.beta1), 0, 0.999999, NULL,               \
     "Adam beta1 (kind adam only)"},                                                         \
    {"optim." n ".beta2", LG_CFG_FLOAT, OFF(optim.N.beta2), 0, 0.999999, NULL,               \
     "Adam beta2 (kind adam only)"},                                                         \
    {"optim." n ".alpha", LG_CFG_FLOAT, OFF(optim.N.alpha), 0, 0.999999, NULL,               \
     "RMSProp's square-average decay (kind rmsprop only; PyTorch's default 0.99)"},          \
    {"optim." n ".eps", LG_CFG_FLOAT, OFF(optim.N.eps), 1e-30, 1, NULL,                      \
     "epsilon added to the denominator (Adam and RMSProp)"}

static const lg_cfg_key k_keys[] = {
    {"data.format", LG_CFG_ENUM, OFF(data.format), 0, 0,
     "fashion-mnist|mnist|idx|cifar10|stl10|png|ring8|grid25",
     "dataset format (idx/mnist/fashion-mnist: a directory of IDX files; png: a folder of "
     ".png files, or of class folders of them as torchvision's ImageFolder)"},
    {"data.path", LG_CFG_PATH, OFF(data.path), 0, 0, NULL, "dataset file or directory"},
    {"data.split", LG_CFG_ENUM, OFF(data.split), 0, 0, "train|test|unlabeled",
     "which part of a standard dataset to train on"},
    {"data.image_size", LG_CFG_INT, OFF(data.image_size), 0, 4096, NULL,
     "idx/mnist/fashion-mnist: pad images to this size (0 = native, 28 for mnist/fashion-mnist); stl10: 96, 48 or 32 (0 = 96); cifar10: 0 or "
     "32; png: 0 or the files' own size (images are not resized)"},
    {"data.channels", LG_CFG_INT, OFF(data.channels), 1, 3, NULL,
     "png: 1 (gray) or 3 (RGB); cifar10/stl10: 3 only; idx images are always 1 channel"},
    {"data.toy_n", LG_CFG_I64, OFF(data.toy_n), 1, 100000000, NULL,
     "2-D toys: number of points drawn"},
    {"data.instance_noise", LG_CFG_FLOAT, OFF(data.instance_noise), 0, 1, NULL,
     "add U[0, a] noise to real images (thesis 5.1: 1/128)"},
    {"model.z_dim", LG_CFG_INT, OFF(model.z_dim), 1, 65536, NULL, "generator noise dimension"},
    NET_ROWS(g, "g", "batch norm layers (default on; every architecture)",
             "unused: the generator uses ReLU (the CNN discriminator's slope is model.d.lrelu)"),
    NET_ROWS(d, "d",
             "batch norm layers: cnn and mlp (cnn: DCGAN's, after every conv but the first, as "
             "the WGAN paper's critic; resnet has none, as SN-GAN); not with lipschitz.d.gp_lambda",
             "LeakyReLU slope of the CNN discriminator (resnet and mlp use ReLU)"),
    {"loss", LG_CFG_ENUM, OFF(loss), 0, 0, "minimax|nonsat|hinge|wasserstein", "GAN objective"},
    LIP_ROWS(g, "g", "discriminator only: must stay 0 here; set lipschitz.d.gp_lambda",
             "discriminator only: see lipschitz.d.gp_kind",
             "> 0: r(W) = |W|_F / (m sigma(W)) penalty weight: -lambda sum r(W) added to G's loss "
             "(thesis 4.2.2)"),
    LIP_ROWS(d, "d", "> 0: gradient penalty weight at interpolates of real and fake samples",
             "(|g|-1)^2 (WGAN-GP) or max(0,|g|-1)^2 at the interpolates, or zero-centered: |g|^2 at "
             "the real samples (R1, Mescheder et al. 2018: lambda = gamma/2); with gp_lambda",
             "generator only (thesis 4.2.2): must stay 0 here; set lipschitz.g.rw_lambda"),
    ADAM_ROWS(g, "g"),
    ADAM_ROWS(d, "d"),
    {"train.steps", LG_CFG_I64, OFF(train.steps), 1, 1e12, NULL, "generator updates"},
    {"train.n_dis", LG_CFG_INT, OFF(train.n_dis), 1, 1000, NULL,
     "discriminator updates per generator update"},
    {"train.n_dis_boost", LG_CFG_INT, OFF(train.n_dis_boost), 0, 1000, NULL,
     "> 0: discriminator updates before the boosted generator updates, the first "
     "n_dis_boost_first and every n_dis_boost_every-th (WGAN reference code: 100); 0 = off"},
    {"train.n_dis_boost_first", LG_CFG_I64, OFF(train.n_dis_boost_first), 0, 1e12, NULL,
     "the first N generator updates are boosted (WGAN: 25)"},
    {"train.n_dis_boost_every", LG_CFG_I64, OFF(train.n_dis_boost_every), 0, 1e12, NULL,
     "every N-th generator update (G updates done % N == 0) is boosted (WGAN: 500; 0 = none)"},
    {"train.batch_d", LG_CFG_INT, OFF(train.batch_d), 1, 65536, NULL,
     "discriminator batch (real and fake each)"},
    {"train.batch_g", LG_CFG_INT, OFF(train.batch_g), 1, 65536, NULL, "generator batch"},
    {"train.lr_decay", LG_CFG_ENUM, OFF(train.lr_decay), 0, 0, "linear|none",
     "learning-rate schedule over train.steps"},
    {"train.max_nonfinite", LG_CFG_INT, OFF(train.max_nonfinite), 1, 1000000, NULL,
     "stop (diverged) after this many non-finite updates in a row"},
    {"ema.decay", LG_CFG_FLOAT, OFF(ema.decay), 0, 0.999999, NULL,
     "EMA of the generator's weights (0 = off)"},
    {"ema.start", LG_CFG_I64, OFF(ema.start), 0, 1e12, NULL,
     "generator step from which the EMA averages (it copies before)"},
    {"seed", LG_CFG_I64, OFF(seed), 0, 9.2e18, NULL, "seed of every random stream"},
    {"threads", LG_CFG_INT, OFF(threads), 0, 1024, NULL,
     "CPU threads (0 = OMP_NUM_THREADS or all cores, divided among dist: mpi processes on "
     "one machine); results are reproducible per count"},
    {"device", LG_CFG_ENUM, OFF(device), 0, 0, "cpu|cuda", "compute backend"},
    {"dist", LG_CFG_ENUM, OFF(dist), 0, 0, "none|mpi",
     "mpi: data-parallel over the processes of mpirun -np P (batches split P ways; on cuda, "
     "process i of a machine on GPU cuda.device + i)"},
    {"dist_sync_bn", LG_CFG_BOOL, OFF(dist_sync_bn), 0, 1, NULL,
     "dist: mpi: batch norm normalizes by the whole batch's statistics, gathered from every "
     "process (as one process would); false: by each process's own slice"},
    {"cuda.device", LG_CFG_INT, OFF(cuda.device), 0, 1023, NULL,
     "cuda: the GPU, modulo the visible ones (CUDA_VISIBLE_DEVICES); under dist: mpi "
     "process i of a machine takes cuda.device + i"},
    {"cuda.precision", LG_CFG_ENUM, OFF(cuda.precision), 0, 0, "fp32|tf32|bf16",
     "matrix math of gemm and convolutions on cuda (tf32/bf16: tensor cores, fp32 weights)"},
    {"cuda.deterministic", LG_CFG_BOOL, OFF(cuda.deterministic), 0, 1, NULL,
     "cuda: only convolution algorithms with run-to-run identical results"},
    {"cuda.benchmark", LG_CFG_BOOL, OFF(cuda.benchmark), 0, 1, NULL,
     "cuda: choose convolution algorithms by timing them (fastest; with it, runs are bitwise "
     "reproducible only within a process); false: cuDNN's heuristics, the same in every run"},
    {"cuda.graph", LG_CFG_BOOL, OFF(cuda.graph), 0, 1, NULL,
     "cuda: capture each D and G update once as a CUDA graph and replay it (no launch "
     "overhead, one host sync per step)"},
    {"log.every", LG_CFG_I64, OFF(log.every), 1, 1e12, NULL,
     "progress line and metrics.jsonl row every N generator steps"},
    {"log.samples_every", LG_CFG_I64, OFF(log.samples_every), 0, 1e12, NULL,
     "sample grid every N generator steps (0 = only at the end)"},
    {"log.checkpoint_every", LG_CFG_I64, OFF(log.checkpoint_every), 0, 1e12, NULL,
     "checkpoint every N generator steps (0 = only at the end)"},
    {"log.keep", LG_CFG_INT, OFF(log.keep), 1, 1000000, NULL, "checkpoints kept"},
    {"log.sample_n", LG_CFG_INT, OFF(log.sample_n), 1, 10000, NULL,
     "samples per grid (fixed noise)"},
    {"log.spectra_every", LG_CFG_I64, OFF(log.spectra_every), 0, 1e12, NULL,
     "spectral monitor (DIR/spectra.bin, collapse warning) every N generator steps; a multiple "
     "of log.every (0 = off)"},
    {"log.tensorboard", LG_CFG_BOOL, OFF(log.tensorboard), 0, 1, NULL,
     "write a TensorBoard event file (scalars, sample grids) into the run directory"},
    {"eval.every", LG_CFG_I64, OFF(eval.every), 0, 1e12, NULL,
     "evaluate generated samples every N generator steps; a multiple of log.every (0 = off)"},
    {"eval.metrics", LG_CFG_PATH, OFF(eval.metrics), 0, 0, NULL,
     "auto, none, or a list of is,fid,kid,cfid,classes,toy (auto: toy for 2-D toys, "
     "cfid,classes for 1x32x32 images, is,fid with eval.inception)"},
    {"eval.n", LG_CFG_I64, OFF(eval.n), 0, 10000000, NULL,
     "samples per evaluation, from the EMA generator if any (0 = 2500 for toys, 10000 for images; "
     "at least 10 with is, one per split)"},
    {"eval.ref_n", LG_CFG_I64, OFF(eval.ref_n), 2, 100000000, NULL,
     "training images for the reference statistics computed at the start of a run"},
    {"eval.ref", LG_CFG_PATH, OFF(eval.ref), 0, 0, NULL,
     "reference statistics from `lipgan fid-stats` (2048-D: fid, 128-D: cfid); empty = computed "
     "from the training data"},
    {"eval.classifier", LG_CFG_PATH, OFF(eval.classifier), 0, 0, NULL,
     "Fashion-MNIST classifier weights for cfid/classes (empty = models/fmnist_classifier.safetensors)"},
    {"eval.inception", LG_CFG_PATH, OFF(eval.inception), 0, 0, NULL,
     "Inception-v3 weights for is/fid/kid (tools/convert_inception_weights.py); empty = none"},
};

#define NKEYS ((int)(sizeof k_keys / sizeof k_keys[0]))

const lg_cfg_key *lg_config_keys(int *n) {
    if (n) *n = NKEYS;
    return k_keys;
}

const lg_cfg_key *lg_config_find_key(const char *name) {
    for (int i = 0; i < NKEYS; i++)
        if (strcmp(k_keys[i].name, name) == 0) return &k_keys[i];
    return NULL;
}

static void default_lip(lg_cfg_lip *l, int sn) {
    memset(l, 0, sizeof *l);
    l->sn = sn;
    l->sn_iters = 1;
    l->sr_every = 5;  /* the SR-GAN code's period */
    strcpy(l->sr_schedule, "updates");
    /* The gradient is new at every update, so one warm-started iteration
     * (the estimates' first version) tracks sigma0/sigma1 poorly; the
     * thesis code (sn_gan_pytorch, SNConv2d.Ip_grad) used 3. */
    l->clamp_iters = 3;
    strcpy(l->gp_kind, "two-sided");
}

static void default_net(lg_cfg_net *n, int bn) {
    memset(n, 0, sizeof *n);
    strcpy(n->arch, "resnet");
    n->bn = bn;
    n->lrelu = 0.1f;
}

void lg_config_default(lg_config *c) {
    memset(c, 0, sizeof *c);
    strcpy(c->data.format, "cifar10");
    strcpy(c->data.path, "data/cifar-10-batches-bin");
    strcpy(c->data.split, "train");
    c->data.channels = 3;
    c->data.toy_n = 100000;
    c->model.z_dim = 128;
    default_net(&c->model.g, 1);
    default_net(&c->model.d, 0);
    strcpy(c->loss, "hinge");
    default_lip(&c->lipschitz.g, 0);
    default_lip(&c->lipschitz.d, 1);
    c->optim.g = (lg_cfg_adam){2e-4f, 0.0f, 0.9f, 1e-8f, 0.99f, "adam"};
    c->optim.d = c->optim.g;
    c->train.steps = 50000;
    c->train.n_dis = 5;
    c->train.n_dis_boost = 0;
    c->train.n_dis_boost_first = 25;  /* the WGAN reference's values, used once boost > 0 */
    c->train.n_dis_boost_every = 500;
    c->train.batch_d = 64;
    c->train.batch_g = 128;
    strcpy(c->train.lr_decay, "linear");
    c->train.max_nonfinite = 20;
    c->ema.decay = 0.0f;
    c->seed = 0;
    c->threads = 0;
    strcpy(c->device, "cpu");
    strcpy(c->dist, "none");
    c->dist_sync_bn = 1;
    strcpy(c->cuda.precision, "fp32");
    c->cuda.deterministic = 1;
    c->cuda.benchmark = 1;
    c->cuda.graph = 1;
    c->log.every = 100;
    c->log.samples_every = 1000;
    c->log.checkpoint_every = 1000;
    c->log.keep = 3;
    c->log.sample_n = 64;
    c->log.spectra_every = 500;
    c->log.tensorboard = 1;
    c->eval.every = 0;
    strcpy(c->eval.metrics, "auto");
    c->eval.n = 0;
    c->eval.ref_n = 10000;
}

/* ---- values ---- */

static int parse_bool(const char *v, int *out) {
    static const char *const t[] = {"true", "yes", "on", "1"};
    static const char *const f[] = {"false", "no", "off", "0"};
    for (int i = 0; i < 4; i++) {
        if (strcasecmp(v, t[i]) == 0) return *out = 1, 1;
        if (strcasecmp(v, f[i]) == 0) return *out = 0, 1;
    }
    return 0;
}

static int in_choices(const char *choices, const char *v) {
    size_t n = strlen(v);
    for (const char *p = choices; *p;) {
        const char *e = strchr(p, '|');
        size_t len = e ? (size_t)(e - p) : strlen(p);
        if (len == n && strncmp(p, v, n) == 0) return 1;
        if (!e) break;
        p = e + 1;
    }
    return 0;
}

/* Length of the decimal number at v ([+-] digits [. digits] [e [+-] digits],
 * at least one mantissa digit), 0 if there is none. strtod alone would also
 * take hex ("0x10" = 16), "inf" and "nan". */
static size_t decimal_len(const char *v) {
    size_t i = 0, nd = 0;
    if (v[i] == '+' || v[i] == '-') i++;
    while (isdigit((unsigned char)v[i])) i++, nd++;
    if (v[i] == '.') {
        i++;
        while (isdigit((unsigned char)v[i])) i++, nd++;
    }
    if (nd == 0) return 0;
    if (v[i] == 'e' || v[i] == 'E') {
        size_t j = i + 1;
        if (v[j] == '+' || v[j] == '-') j++;
        if (!isdigit((unsigned char)v[j])) return i;
        while (isdigit((unsigned char)v[j])) j++;
        i = j;
    }
    return i;
}

/* A number: decimal, or a fraction a/b of decimals (e.g. 1/128).
 * 0: not a decimal number; -1: decimal but not finite (1e999, 1/0). */
static int parse_double(const char *v, double *out) {
    size_t n = decimal_len(v);
    if (!n) return 0;
    errno = 0;
    double a = strtod(v, NULL);
    if (errno == ERANGE) return -1;  /* beyond double's range */
    const char *end = v + n;
    while (isspace((unsigned char)*end)) end++;
    if (*end == '/') {
        const char *q = end + 1;
        while (isspace((unsigned char)*q)) q++;
        size_t m = decimal_len(q);
        if (!m) return 0;
        double b = strtod(q, NULL);
        if (b == 0.0) return -1;
        a /= b;
        end = q + m;
    }
    while (isspace((unsigned char)*end)) end++;
    if (*end) return 0;
    if (!isfinite(a)) return -1;
    *out = a;
    return 1;
}

/* Valid UTF-8: no overlong forms, surrogates or code points above U+10FFFF. */
static int utf8_valid(const char *str) {
    const unsigned char *s = (const unsigned char *)str;
    while (*s) {
        unsigned c = *s, n, lo = 0x80, hi = 0xBF;  /* allowed range of the 2nd byte */
        if (c < 0x80) { s++; continue; }
        if (c >= 0xC2 && c <= 0xDF) n = 2;
        else if (c >= 0xE0 && c <= 0xEF) n = 3, lo = c == 0xE0 ? 0xA0 : lo, hi = c == 0xED ? 0x9F : hi;
        else if (c >= 0xF0 && c <= 0xF4) n = 4, lo = c == 0xF0 ? 0x90 : lo, hi = c == 0xF4 ? 0x8F : hi;
        else return 0;
        if (s[1] < lo || s[1] > hi) return 0;  /* also stops at the NUL */
        for (unsigned k = 2; k < n; k++)
            if ((s[k] & 0xC0) != 0x80) return 0;
        s += n;
    }
    return 1;
}

static const char *type_name(lg_cfg_type t) {
    switch (t) {
    case LG_CFG_INT: case LG_CFG_I64: return "an integer";
    case LG_CFG_FLOAT: return "a number";
    case LG_CFG_BOOL: return "true or false";
    case LG_CFG_ENUM: return "one of its choices";
    case LG_CFG_PATH: return "a path";
    }
    return "?";
}

static lg_status set_key(lg_config *c, const lg_cfg_key *k, const char *v, const char *where) {
    char *field = (char *)c + k->offset;
    while (isspace((unsigned char)*v)) v++;
    if (k->type != LG_CFG_PATH && !*v)
        return lg_error_set(LG_ERR_INVALID_ARG, "%s: %s: missing value; give %s",
                            where, k->name, type_name(k->type));
    switch (k->type) {
    case LG_CFG_INT:
    case LG_CFG_I64: {
        char *end;
        errno = 0;
        long long x = strtoll(v, &end, 10);
        while (isspace((unsigned char)*end)) end++;
        if (end == v || *end || errno == ERANGE)
            return lg_error_set(LG_ERR_INVALID_ARG, "%s: %s: '%s' is not an integer",
                                where, k->name, v);
        if ((double)x < k->min || (double)x > k->max)
            return lg_error_set(LG_ERR_INVALID_ARG, "%s: %s: %lld is out of range [%.15g, %.15g]",
                                where, k->name, x, k->min, k->max);
        if (k->type == LG_CFG_INT) *(int *)field = (int)x;
        else *(int64_t *)field = (int64_t)x;
        return LG_OK;
    }
    case LG_CFG_FLOAT: {
        double x;
        int ok = parse_double(v, &x);
        if (ok < 0 || (ok == 0 && (strcasestr(v, "inf") || strcasestr(v, "nan"))))
            return lg_error_set(LG_ERR_INVALID_ARG, "%s: %s: '%s' is not a finite number",
                                where, k->name, v);
        if (ok == 0)
            return lg_error_set(LG_ERR_INVALID_ARG,
                                "%s: %s: '%s' is not a number; give a decimal number (e.g. 0.0002, "
                                "2e-4 or 1/128; no hex)",
                                where, k->name, v);
        if (x < k->min || x > k->max)
            return lg_error_set(LG_ERR_INVALID_ARG, "%s: %s: %s is out of range [%.15g, %.15g]",
                                where, k->name, v, k->min, k->max);
        *(float *)field = (float)x;
        return LG_OK;
    }
    case LG_CFG_BOOL: {
        int b;
        if (!parse_bool(v, &b))
            return lg_error_set(LG_ERR_INVALID_ARG, "%s: %s: '%s' is not a boolean; use true or false",
                                where, k->name, v);
        *(int *)field = b;
        return LG_OK;
    }
    case LG_CFG_ENUM:
        if (!in_choices(k->choices, v) || strlen(v) >= LG_CFG_STR_MAX)
            return lg_error_set(LG_ERR_INVALID_ARG, "%s: %s: '%s' is not one of %s",
                                where, k->name, v, k->choices);
        strcpy(field, v);
        return LG_OK;
    case LG_CFG_PATH:
        if (strlen(v) >= LG_CFG_PATH_MAX)
            return lg_error_set(LG_ERR_INVALID_ARG, "%s: %s: path longer than %d bytes",
                                where, k->name, LG_CFG_PATH_MAX - 1);
        /* the config is stored as YAML text (config.yaml, checkpoint
         * metadata), which cannot hold other bytes */
        if (!utf8_valid(v))
            return lg_error_set(LG_ERR_INVALID_ARG, "%s: %s: the path is not valid UTF-8; rename the file "
                                "or folder, or link it under a UTF-8 name", where, k->name);
        strcpy(field, v);
        return LG_OK;
    }
    return lg_error_set(LG_ERR_INVALID_ARG, "%s: %s: bad key type", where, k->name);
}

/* Is `prefix` a group of keys (some key starts with "prefix.")? */
static int is_group(const char *prefix) {
    size_t n = strlen(prefix);
    if (n == 0) return 1;
    for (int i = 0; i < NKEYS; i++)
        if (strncmp(k_keys[i].name, prefix, n) == 0 && k_keys[i].name[n] == '.') return 1;
    return 0;
}

/* "a, b, c": the names directly under group prefix ("" = top level). */
static void list_children(const char *prefix, char *buf, size_t cap) {
    size_t n = strlen(prefix), used = 0;
    buf[0] = '\0';
    for (int i = 0; i < NKEYS; i++) {
        const char *name = k_keys[i].name;
        if (n && (strncmp(name, prefix, n) != 0 || name[n] != '.')) continue;
        const char *child = n ? name + n + 1 : name;
        size_t len = strcspn(child, ".");
        /* skip if already listed */
        int dup = 0;
        for (const char *p = buf; *p;) {
            size_t l2 = strcspn(p, ",");
            if (l2 == len && strncmp(p, child, len) == 0) { dup = 1; break; }
            p += l2;
            if (*p) p += 2;
        }
        if (dup || used + len + 3 >= cap) continue;
        if (used) { memcpy(buf + used, ", ", 2); used += 2; }
        memcpy(buf + used, child, len);
        used += len;
        buf[used] = '\0';
    }
}

static lg_status unknown_key(const char *key, const char *where) {
    /* name the keys of the deepest known group above key */
    char parent[256];
    snprintf(parent, sizeof parent, "%s", key);
    for (;;) {
        char *dot = strrchr(parent, '.');
        if (!dot) { parent[0] = '\0'; break; }
        *dot = '\0';
        if (is_group(parent)) break;
    }
    char kids[1024];
    list_children(parent, kids, sizeof kids);
    return lg_error_set(LG_ERR_INVALID_ARG, "%s: %s: unknown key; keys of %s: %s", where, key,
                        parent[0] ? parent : "the top level", kids);
}

lg_status lg_config_set_value(lg_config *c, const char *key, const char *value,
                              const char *where) {
    const lg_cfg_key *k = lg_config_find_key(key);
    if (k) return set_key(c, k, value, where);
    if (is_group(key)) {
        char kids[1024];
        list_children(key, kids, sizeof kids);
        return lg_error_set(LG_ERR_INVALID_ARG, "%s: %s: is a group of keys (%s), not a value",
                            where, key, kids);
    }
    return unknown_key(key, where);
}

lg_status lg_config_set(lg_config *c, const char *assignment) {
    const char *eq = strchr(assignment, '=');
    if (!eq || eq == assignment)
        return lg_error_set(LG_ERR_INVALID_ARG, "--set %s: expected key=value (e.g. train.steps=100)",
                            assignment);
    char key[256];
    size_t n = (size_t)(eq - assignment);
    if (n >= sizeof key) return unknown_key(assignment, "--set");
    memcpy(key, assignment, n);
    key[n] = '\0';
    while (n && isspace((unsigned char)key[n - 1])) key[--n] = '\0';
    return lg_config_set_value(c, key, eq + 1, "--set");
}

/* ---- YAML ---- */

typedef struct ystate {
    yaml_parser_t p;
    const char *label;
    lg_config *c;
    unsigned char seen[NKEYS];
} ystate;

static lg_status ynext(ystate *s, yaml_event_t *ev) {
    if (yaml_parser_parse(&s->p, ev)) return LG_OK;
    return lg_error_set(LG_ERR_INVALID_ARG, "%s:%zu:%zu: invalid YAML: %s%s%s", s->label,
                        s->p.problem_mark.line + 1, s->p.problem_mark.column + 1,
                        s->p.problem ? s->p.problem : "syntax error",
                        s->p.context ? " " : "", s->p.context ? s->p.context : "");
}

/* A list of scalars for a key that takes a comma-separated list
 * (eval.metrics: [fid, kid] is eval.metrics: fid,kid); the sequence's
 * start event has been read. */
static lg_status yparse_list(ystate *s, const lg_cfg_key *k, const char *where) {
    char joined[LG_CFG_PATH_MAX];
    size_t n = 0;
    joined[0] = '\0';
    for (;;) {
        yaml_event_t ev;
        LG_TRY(ynext(s, &ev));
        if (ev.type == YAML_SEQUENCE_END_EVENT) {
            yaml_event_delete(&ev);
            if (!n)
                return lg_error_set(LG_ERR_INVALID_ARG,
                                    "%s: %s: an empty list; write auto (the default) or none (no metrics)", where,
                                    k->name);
            return set_key(s->c, k, joined, where);
        }
        lg_status st = LG_OK;
        if (ev.type != YAML_SCALAR_EVENT) {
            st = lg_error_set(LG_ERR_INVALID_ARG, "%s: %s: a list of names is expected (e.g. [fid, kid])", where,
                              k->name);
        } else {
            const char *v = (const char *)ev.data.scalar.value;
            size_t len = strlen(v);
            if (strchr(v, ',') || n + len + 2 > sizeof joined)
                st = lg_error_set(LG_ERR_INVALID_ARG, "%s: %s: list item '%.64s' %s", where, k->name, v,
                                  strchr(v, ',') ? "holds a comma; give one name per item" : "makes the list too long");
            else {
                if (n) joined[n++] = ',';
                memcpy(joined + n, v, len + 1);
                n += len;
            }
        }
        yaml_event_delete(&ev);
        if (st != LG_OK) return st;
    }
}

static lg_status yparse_mapping(ystate *s, const char *prefix, int level) {
    for (;;) {
        yaml_event_t kev, vev;
        LG_TRY(ynext(s, &kev));
        if (kev.type == YAML_MAPPING_END_EVENT) {
            yaml_event_delete(&kev);
            return LG_OK;
        }
        size_t line = kev.start_mark.line + 1;
        char where[LG_CFG_PATH_MAX + 32];
        snprintf(where, sizeof where, "%s:%zu", s->label, line);
        if (kev.type != YAML_SCALAR_EVENT) {
            yaml_event_delete(&kev);
            return lg_error_set(LG_ERR_INVALID_ARG, "%s: %s: keys must be plain names", where,
                                prefix[0] ? prefix : "top level");
        }
        char key[256];
        int kn = snprintf(key, sizeof key, "%s%s%s", prefix, prefix[0] ? "." : "",
                          (const char *)kev.data.scalar.value);
        yaml_event_delete(&kev);
        if (kn >= (int)sizeof key) return unknown_key(key, where);

        lg_status st = ynext(s, &vev);
        if (st != LG_OK) return st;
        const lg_cfg_key *k = lg_config_find_key(key);
        if (vev.type == YAML_SCALAR_EVENT) {
            if (k) {
                int idx = (int)(k - k_keys);
                if (s->seen[idx]) st = lg_error_set(LG_ERR_INVALID_ARG, "%s: %s: duplicate key", where, key);
                else st = set_key(s->c, k, (const char *)vev.data.scalar.value, where);
                s->seen[idx] = 1;
            } else {
                st = lg_config_set_value(s->c, key, "", where);  /* group or unknown: error */
            }
        } else if (vev.type == YAML_MAPPING_START_EVENT) {
            if (k)
                st = lg_error_set(LG_ERR_INVALID_ARG, "%s: %s: takes %s, not a mapping", where, key,
                                  type_name(k->type));
            else if (is_group(key) && level < 8)
                st = yparse_mapping(s, key, level + 1);
            else
                st = unknown_key(key, where);
        } else if (vev.type == YAML_SEQUENCE_START_EVENT) {
            if (k && !strcmp(k->name, "eval.metrics")) {
                if (s->seen[k - k_keys]) st = lg_error_set(LG_ERR_INVALID_ARG, "%s: %s: duplicate key", where, key);
                else st = yparse_list(s, k, where);
                s->seen[k - k_keys] = 1;
            } else if (k) {
                st = lg_error_set(LG_ERR_INVALID_ARG, "%s: %s: takes %s, not a list", where, key, type_name(k->type));
            } else {
                st = unknown_key(key, where);
            }
        } else if (vev.type == YAML_ALIAS_EVENT) {
            st = lg_error_set(LG_ERR_INVALID_ARG, "%s: %s: YAML aliases are not supported", where, key);
        } else {
            st = lg_error_set(LG_ERR_INVALID_ARG, "%s: %s: unexpected YAML value", where, key);
        }
        yaml_event_delete(&vev);
        if (st != LG_OK) return st;
    }
}

/* Parses the whole stream: at most one document, whose root is a mapping
 * (or empty). */
static lg_status yparse_stream(ystate *s) {
    int docs = 0;
    for (;;) {
        yaml_event_t ev;
        LG_TRY(ynext(s, &ev));
        yaml_event_type_t t = ev.type;
        size_t line = ev.start_mark.line + 1;
        lg_status st = LG_OK;
        if (t == YAML_STREAM_END_EVENT) {
            yaml_event_delete(&ev);
            return LG_OK;
        } else if (t == YAML_DOCUMENT_START_EVENT) {
            if (++docs > 1)
                st = lg_error_set(LG_ERR_INVALID_ARG,
                                  "%s:%zu: a second YAML document; a config is one document",
                                  s->label, line);
        } else if (t == YAML_MAPPING_START_EVENT) {
            st = yparse_mapping(s, "", 0);
        } else if (t == YAML_SCALAR_EVENT) {
            if (ev.data.scalar.length != 0)  /* an empty document is fine */
                st = lg_error_set(LG_ERR_INVALID_ARG,
                                  "%s:%zu: the top level must be a mapping of keys (e.g. 'loss: hinge')",
                                  s->label, line);
        } else if (t == YAML_SEQUENCE_START_EVENT || t == YAML_ALIAS_EVENT) {
            st = lg_error_set(LG_ERR_INVALID_ARG,
                              "%s:%zu: the top level must be a mapping of keys, not a list",
                              s->label, line);
        }
        yaml_event_delete(&ev);
        if (st != LG_OK) return st;
    }
}

static lg_status load_string(lg_config *c, const char *yaml, size_t len, const char *label,
                             int *nkeys) {
    ystate *s = calloc(1, sizeof *s);
    if (!s) return lg_error_set(LG_ERR_NOMEM, "config: out of memory");
    if (!yaml_parser_initialize(&s->p)) {
        free(s);
        return lg_error_set(LG_ERR_NOMEM, "config: cannot initialize the YAML parser");
    }
    s->label = label ? label : "config";
    s->c = c;
    yaml_parser_set_input_string(&s->p, (const unsigned char *)yaml, len);
    lg_config tmp = *c;  /* apply all or nothing */
    s->c = &tmp;
    lg_status st = yparse_stream(s);
    if (st == LG_OK) *c = tmp;
    if (nkeys) {
        *nkeys = 0;
        for (int i = 0; i < NKEYS; i++) *nkeys += s->seen[i];
    }
    yaml_parser_delete(&s->p);
    free(s);
    return st;
}

lg_status lg_config_load_string(lg_config *c, const char *yaml, size_t len, const char *label) {
    return load_string(c, yaml, len, label, NULL);
}

lg_status lg_config_load_file(lg_config *c, const char *path) {
    FILE *f = fopen(path, "rb");
    if (!f)
        return lg_error_set(errno == ENOENT ? LG_ERR_NOT_FOUND : LG_ERR_IO,
                            "config %s: cannot open: %s", path, strerror(errno));
    char *buf = NULL;
    size_t len = 0, cap = 0;
    for (;;) {
        if (len + 4096 > cap) {
            cap = cap ? cap * 2 : 8192;
            if (cap > (64u << 20)) {
                free(buf);
                fclose(f);
                return lg_error_set(LG_ERR_INVALID_ARG, "config %s: larger than 64 MiB", path);
            }
            char *nb = realloc(buf, cap);
            if (!nb) {
                free(buf);
                fclose(f);
                return lg_error_set(LG_ERR_NOMEM, "config %s: out of memory", path);
            }
            buf = nb;
        }
        size_t r = fread(buf + len, 1, cap - len, f);
        len += r;
        if (r == 0) break;
    }
    int err = ferror(f);
    fclose(f);
    if (err) {
        free(buf);
        return lg_error_set(LG_ERR_IO, "config %s: read error", path);
    }
    int nkeys = 0;
    lg_config tmp = *c;
    lg_status st = load_string(&tmp, buf ? buf : "", len, path, &nkeys);
    free(buf);
    if (st == LG_OK && nkeys == 0)
        return lg_error_set(LG_ERR_INVALID_ARG,
                            "config %s: sets no keys, so data.format would be the built-in default "
                            "%s read from %s; start from a file in configs/ or write at least data.format "
                            "and data.path into it (lipgan train --help-config lists the keys)",
                            path, c->data.format, c->data.path[0] ? c->data.path : "(no data.path)");
    if (st == LG_OK) *c = tmp;
    return st;
}

/* ---- validation ---- */

int lg_config_is_toy(const lg_config *c) {
    return strcmp(c->data.format, "ring8") == 0 || strcmp(c->data.format, "grid25") == 0;
}

/* The native side of the format's IDX images where the config alone tells
 * it: 28 for mnist/fashion-mnist; 0 (not known until loaded) for idx */
static int idx_native(const lg_config *c) {
    return !strcmp(c->data.format, "mnist") || !strcmp(c->data.format, "fashion-mnist") ? 28 : 0;
}

static int is_idx(const lg_config *c) {
    return !strcmp(c->data.format, "idx") || !strcmp(c->data.format, "mnist") ||
           !strcmp(c->data.format, "fashion-mnist");
}

/* "3x32x32", or "3-channel" when the size is not known yet */
static void shape_str(char *buf, size_t cap, int ch, int h, int w) {
    if (h > 0) snprintf(buf, cap, "%dx%dx%d", ch, h, w);
    else snprintf(buf, cap, "%d-channel", ch);
}

/* Each field against its key's row: the setters check these, but a C
 * caller may write the struct directly (c.optim.d.lr = -1). */
static lg_status check_fields(const lg_config *c) {
    for (int i = 0; i < NKEYS; i++) {
        const lg_cfg_key *k = &k_keys[i];
        const char *field = (const char *)c + k->offset;
        double x = 0;
        switch (k->type) {
        case LG_CFG_INT: x = *(const int *)field; break;
        case LG_CFG_I64: x = (double)*(const int64_t *)field; break;
        case LG_CFG_FLOAT: x = *(const float *)field; break;
        case LG_CFG_BOOL: {
            int b = *(const int *)field;
            if (b != 0 && b != 1)
                return lg_error_set(LG_ERR_INVALID_ARG, "%s: %d is not a boolean; set 0 or 1", k->name, b);
            continue;
        }
        case LG_CFG_ENUM:
            if (!memchr(field, 0, LG_CFG_STR_MAX) || !in_choices(k->choices, field))
                return lg_error_set(LG_ERR_INVALID_ARG, "%s: '%.*s' is not one of %s", k->name,
                                    LG_CFG_STR_MAX - 1, field, k->choices);
            continue;
        case LG_CFG_PATH:
            if (!memchr(field, 0, LG_CFG_PATH_MAX))
                return lg_error_set(LG_ERR_INVALID_ARG, "%s: not NUL-terminated within %d bytes",
                                    k->name, LG_CFG_PATH_MAX);
            if (!utf8_valid(field))
                return lg_error_set(LG_ERR_INVALID_ARG, "%s: the path is not valid UTF-8", k->name);
            continue;
        }
        /* a float field holds (float)value, which may round past a bound
         * the setter checked in double */
        double lo = k->type == LG_CFG_FLOAT ? (float)k->min : k->min;
        double hi = k->type == LG_CFG_FLOAT ? (float)k->max : k->max;
        if (!isfinite(x) || x < lo || x > hi)
            return lg_error_set(LG_ERR_INVALID_ARG, "%s: %.9g is out of range [%.15g, %.15g]", k->name, x,
                                k->min, k->max);
    }
    return LG_OK;
}

lg_status lg_config_validate(const lg_config *c) {
    LG_TRY(check_fields(c));
    const lg_cfg_net *nets[2] = {&c->model.g, &c->model.d};
    const char *nn[2] = {"g", "d"};
    if (lg_config_is_toy(c)) {
        for (int i = 0; i < 2; i++)
            if (strcmp(nets[i]->arch, "mlp") != 0)
                return lg_error_set(LG_ERR_INVALID_ARG,
                                    "model.%s.arch: %s cannot model 2-D points (data.format %s); use mlp",
                                    nn[i], nets[i]->arch, c->data.format);
    } else if (!c->data.path[0]) {
        return lg_error_set(LG_ERR_INVALID_ARG, "data.path: required for data.format %s",
                            c->data.format);
    }
    if (strcmp(c->device, "cuda") != 0 && c->cuda.device != 0)
        return lg_error_set(LG_ERR_INVALID_ARG,
                            "cuda.device: %d needs device: cuda; set cuda.device: 0 or device: cuda",
                            c->cuda.device);
    if (strcmp(c->device, "cuda") != 0 && strcmp(c->cuda.precision, "fp32") != 0)
        return lg_error_set(LG_ERR_INVALID_ARG,
                            "cuda.precision: %s needs device: cuda (the cpu backend computes in "
                            "fp32); set cuda.precision: fp32 or device: cuda",
                            c->cuda.precision);
    if (idx_native(c) && c->data.image_size != 0 && c->data.image_size < 28)
        return lg_error_set(LG_ERR_INVALID_ARG,
                            "data.image_size: %d is smaller than the 28x28 IDX images; use 0 or >= 28",
                            c->data.image_size);
    if (!strcmp(c->data.format, "stl10") && c->data.image_size != 0 && c->data.image_size != 96 &&
        c->data.image_size != 48 && c->data.image_size != 32)
        return lg_error_set(LG_ERR_INVALID_ARG, "data.image_size: stl10 supports 96, 48 or 32, not %d",
                            c->data.image_size);
    /* what a format cannot produce is an error, not a silent change of the
     * sample shape (idx pads, stl10 averages; cifar10 and png are as stored) */
    if (!strcmp(c->data.format, "cifar10") && c->data.image_size != 0 && c->data.image_size != 32)
        return lg_error_set(LG_ERR_INVALID_ARG,
                            "data.image_size: cifar10 images are 32x32 and are not resized, so %d cannot be "
                            "produced; use 0 or 32 (stl10 offers 96, 48 and 32)",
                            c->data.image_size);
    if (c->data.channels == 2)
        return lg_error_set(LG_ERR_INVALID_ARG, "data.channels: 2; use 1 (gray) or 3 (RGB)");
    if ((!strcmp(c->data.format, "cifar10") || !strcmp(c->data.format, "stl10")) && c->data.channels != 3)
        return lg_error_set(LG_ERR_INVALID_ARG,
                            "data.channels: %s images are RGB and are not converted, so %d cannot be "
                            "produced; data.channels applies to png only: remove it (or set 3)",
                            c->data.format, c->data.channels);
    if (!lg_config_is_toy(c)) {
        int size = c->data.image_size;
        if (is_idx(c) && size == 0) size = idx_native(c);
        for (int i = 0; i < 2; i++)
            if (strcmp(nets[i]->arch, "mlp") != 0 && size != 0 && size % 8 != 0)
                return lg_error_set(LG_ERR_INVALID_ARG,
                                    "data.image_size: model.%s.arch %s needs a multiple of 8, not %d; "
                                    "for 28x28 IDX images set data.image_size: 32 to pad them",
                                    nn[i], nets[i]->arch, size);
    }
    /* keys of one network that the trainer uses only on the other */
    if (c->lipschitz.g.gp_lambda > 0)
        return lg_error_set(LG_ERR_INVALID_ARG,
                            "lipschitz.g.gp_lambda: the gradient penalty applies to the "
                            "discriminator only; set lipschitz.d.gp_lambda");
    if (strcmp(c->lipschitz.g.gp_kind, "two-sided") != 0)
        return lg_error_set(LG_ERR_INVALID_ARG,
                            "lipschitz.g.gp_kind: the gradient penalty applies to the "
                            "discriminator only; set lipschitz.d.gp_kind (and remove lipschitz.g.gp_kind)");
    if (c->lipschitz.d.rw_lambda > 0)
        return lg_error_set(LG_ERR_INVALID_ARG,
                            "lipschitz.d.rw_lambda: the r(W) penalty is a generator penalty (thesis "
                            "4.2.2, -lambda sum r(W) added to the generator's loss); set "
                            "lipschitz.g.rw_lambda, or 0 here");
    /* the resnet discriminator is built without batch norm (the model
     * would refuse the spec); the cnn one has DCGAN's (model_cnn.c) */
    if (c->model.d.bn && strcmp(c->model.d.arch, "resnet") == 0)
        return lg_error_set(LG_ERR_INVALID_ARG,
                            "model.d.bn: the %s discriminator has no batch-norm layers (as in "
                            "SN-GAN and the thesis, sec. 5.2: batch norm only in the generator); "
                            "model.d.arch cnn (DCGAN's placement) and mlp take model.d.bn; set "
                            "model.d.bn: false",
                            c->model.d.arch);
    if (c->lipschitz.d.gp_lambda > 0 && c->model.d.bn)
        return lg_error_set(LG_ERR_INVALID_ARG,
                            "model.d.bn: batch norm mixes the samples of a batch, so the gradient "
                            "penalty's per-sample gradient is wrong; set model.d.bn: false or "
                            "lipschitz.d.gp_lambda: 0");
    const lg_cfg_lip *lips[2] = {&c->lipschitz.g, &c->lipschitz.d};
    for (int i = 0; i < 2; i++) {
        const lg_cfg_lip *l = lips[i];
        if (l->clamp_ratio > 0 && l->clamp_ratio < 1)
            return lg_error_set(LG_ERR_INVALID_ARG,
                                "lipschitz.%s.clamp_ratio: %g clamps sigma0 below sigma1; use 0 (off) or >= 1",
                                nn[i], l->clamp_ratio);
        if (l->sr_dynamic && !(l->sr_gamma > 0))
            return lg_error_set(LG_ERR_INVALID_ARG,
                                "lipschitz.%s.sr_dynamic: the dynamic variant of SR needs SR on "
                                "(lipschitz.%s.sr_gamma > 0, paper 0.5); set sr_gamma or sr_dynamic: false",
                                nn[i], nn[i]);
        /* SR-GAN is SN with the spectrum compensated every sr_every updates
         * (seed 004: "we apply spectral normalization to guarantee Lipschitz
         * continuity"; SN is its gamma = 1 case); without a normalization at
         * every forward the weights would be normalized only at SR steps */
        if (l->sr_gamma > 0 && !l->sn && !(l->toeplitz_k > 0))
            return lg_error_set(LG_ERR_INVALID_ARG,
                                "lipschitz.%s.sr_gamma: SR-GAN is spectral normalization plus "
                                "compensation of the spectrum every sr_every updates; without "
                                "lipschitz.%s.sn the layers are not normalized between SR steps; set "
                                "lipschitz.%s.sn: true (or sr_gamma: 0)",
                                nn[i], nn[i], nn[i]);
    }
    /* one optimizer's keys with the other optimizer (set = not the default) */
    lg_config def;
    lg_config_default(&def);
    const lg_cfg_adam *opts[2] = {&c->optim.g, &c->optim.d};
    for (int i = 0; i < 2; i++) {
        const lg_cfg_adam *o = opts[i], *d = &def.optim.g;
        if (!strcmp(o->kind, "rmsprop")) {
            int b1 = o->beta1 != d->beta1;
            const char *key = b1 ? "beta1" : o->beta2 != d->beta2 ? "beta2" : NULL;
            /* a key from a config file cannot be removed by --set: name its default too */
            if (key)
                return lg_error_set(LG_ERR_INVALID_ARG,
                                    "optim.%s.%s: %g is an Adam setting, not used by optim.%s.kind rmsprop; "
                                    "remove it, or set it to its default (--set optim.%s.%s=%g) "
                                    "(RMSProp's decay is optim.%s.alpha)",
                                    nn[i], key, b1 ? o->beta1 : o->beta2, nn[i], nn[i], key,
                                    b1 ? d->beta1 : d->beta2, nn[i]);
        } else if (o->alpha != d->alpha) {
            return lg_error_set(LG_ERR_INVALID_ARG,
                                "optim.%s.alpha: an RMSProp setting, not used by optim.%s.kind %s; "
                                "remove it or set optim.%s.kind: rmsprop",
                                nn[i], nn[i], o->kind, nn[i]);
        }
    }
    if (c->ema.decay > 0 && c->ema.start >= c->train.steps)
        return lg_error_set(LG_ERR_INVALID_ARG,
                            "ema.start: %lld is not before train.steps %lld, so the EMA would never average",
                            (long long)c->ema.start, (long long)c->train.steps);
    /* the monitor's and the evaluation's numbers go into the metrics.jsonl
     * row of their step, so they must fall on rows */
    const struct { const char *key; int64_t v; } per[2] = {{"log.spectra_every", c->log.spectra_every},
                                                            {"eval.every", c->eval.every}};
    for (int i = 0; i < 2; i++)
        if (per[i].v > 0 && per[i].v % c->log.every != 0) {
            int64_t up = (per[i].v / c->log.every + 1) * c->log.every;
            return lg_error_set(LG_ERR_INVALID_ARG,
                                "%s: %lld is not a multiple of log.every (%lld); its numbers go into the "
                                "metrics.jsonl rows, so use a multiple (e.g. %lld) or 0 (off)",
                                per[i].key, (long long)per[i].v, (long long)c->log.every, (long long)up);
        }
    if (c->eval.n == 1)
        return lg_error_set(LG_ERR_INVALID_ARG, "eval.n: 1 sample is too few; use 0 (default) or >= 2");
    /* the sample shape where the config alone tells it (h = 0: not known) */
    int ch = 1, h = 0;
    if (lg_config_is_toy(c)) ch = 2, h = 1;
    else if (is_idx(c)) h = c->data.image_size ? c->data.image_size : idx_native(c);
    else if (!strcmp(c->data.format, "cifar10")) ch = 3, h = 32;
    else if (!strcmp(c->data.format, "stl10")) ch = 3, h = c->data.image_size ? c->data.image_size : 96;
    else ch = c->data.channels;
    unsigned m;
    if (c->eval.every <= 0) {
        /* off: only the spelling is checked */
        if (strcmp(c->eval.metrics, "auto") != 0 && strcmp(c->eval.metrics, "none") != 0 &&
            c->eval.metrics[0] && lg_eval_parse_metrics(c->eval.metrics, &m) != LG_OK) {
            char msg[512];
            snprintf(msg, sizeof msg, "%s", lg_error_msg());
            return lg_error_set(LG_ERR_INVALID_ARG, "eval.metrics: %s (or auto, none)", msg);
        }
        return LG_OK;
    }
    LG_TRY(lg_config_eval_metrics(c, ch, h, lg_config_is_toy(c) ? 1 : h, &m));
    /* refused here, not as a warning at the first evaluation hours later */
    if ((m & LG_EVAL_IS) && c->eval.n > 0 && c->eval.n < LG_IS_SPLITS)
        return lg_error_set(LG_ERR_INVALID_ARG,
                            "eval.n: %lld samples are fewer than the Inception Score's %d splits; use at least %d "
                            "or 0 (default)",
                            (long long)c->eval.n, LG_IS_SPLITS, LG_IS_SPLITS);
    if (m == 0 && strcmp(c->eval.metrics, "none") != 0) {
        char shp[64];
        shape_str(shp, sizeof shp, ch, h, h);
        return lg_error_set(LG_ERR_INVALID_ARG,
                            "eval.every: no metric applies to %s images (data.format %s) without "
                            "Inception weights; set eval.inception (tools/convert_inception_weights.py), "
                            "eval.metrics, or eval.every: 0",
                            shp, c->data.format);
    }
    return LG_OK;
}

lg_status lg_config_eval_metrics(const lg_config *c, int ch, int h, int w, unsigned *out) {
    *out = 0;
    const char *txt = c->eval.metrics;
    int toy = lg_config_is_toy(c);
    int cls_ok = ch == 1 && (h <= 0 || ((h == 28 || h == 32) && w == h));
    unsigned m;
    if (!strcmp(txt, "none")) return LG_OK;
    if (!strcmp(txt, "auto") || !txt[0]) {
        if (toy) *out = LG_EVAL_TOY;
        else if (cls_ok) *out = LG_EVAL_CFID | LG_EVAL_CLASSES;
        else if (c->eval.inception[0]) *out = LG_EVAL_IS | LG_EVAL_FID;
        return LG_OK;
    }
    if (lg_eval_parse_metrics(txt, &m) != LG_OK) {
        char msg[512];
        snprintf(msg, sizeof msg, "%s", lg_error_msg());
        return lg_error_set(LG_ERR_INVALID_ARG, "eval.metrics: %s (or auto, none)", msg);
    }
    if (toy && (m & ~(unsigned)LG_EVAL_TOY))
        return lg_error_set(LG_ERR_INVALID_ARG, "eval.metrics: %s: 2-D toy data (data.format %s) takes only toy",
                            txt, c->data.format);
    if (!toy && (m & LG_EVAL_TOY))
        return lg_error_set(LG_ERR_INVALID_ARG, "eval.metrics: toy is for the 2-D toys (ring8, grid25), not "
                            "data.format %s", c->data.format);
    if ((m & LG_EVAL_NEEDS_CLASSIFIER) && !cls_ok) {
        char shp[64];
        shape_str(shp, sizeof shp, ch, h, w);
        return lg_error_set(LG_ERR_INVALID_ARG,
                            "eval.metrics: cfid and classes use the Fashion-MNIST classifier (1x32x32 or 1x28x28 "
                            "images), not %s images; use is,fid,kid with eval.inception",
                            shp);
    }
    if ((m & LG_EVAL_NEEDS_INCEPTION) && !c->eval.inception[0])
        return lg_error_set(LG_ERR_INVALID_ARG,
                            "eval.inception: metrics is, fid and kid need Inception-v3 weights; lipgan downloads "
                            "nothing: make them with tools/convert_inception_weights.py and set eval.inception, "
                            "or use eval.metrics cfid,classes (Fashion-MNIST)");
    *out = m;
    return LG_OK;
}

/* ---- printing ---- */

/* Shortest %g form that reads back as the same float. */
static void fmt_float(char *buf, size_t cap, float x) {
    for (int p = 1; p <= 9; p++) {
        snprintf(buf, cap, "%.*g", p, (double)x);
        if (strtof(buf, NULL) == x) return;
    }
}

/* A YAML double-quoted string. Escapes what a YAML reader rejects raw
 * (libyaml: "control characters are not allowed"): C0 controls, DEL, the
 * C1 controls U+0080..U+009F (UTF-8 C2 80..C2 9F) and U+FFFE, U+FFFF; paths
 * are valid UTF-8 (set_key), so a sequence is never cut. */
static void print_quoted(FILE *f, const char *s) {
    fputc('"', f);
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        unsigned char ch = *p;
        if (ch == '"' || ch == '\\') {
            fprintf(f, "\\%c", ch);
        } else if (ch < 0x20 || ch == 0x7F) {
            fprintf(f, "\\x%02x", ch);
        } else if (ch == 0xC2 && p[1] >= 0x80 && p[1] <= 0x9F) {
            fprintf(f, "\\x%02x", *++p);
        } else if (ch == 0xEF && p[1] == 0xBF && (p[2] == 0xBE || p[2] == 0xBF)) {
            fprintf(f, "\\uFFF%c", p[2] == 0xBE ? 'E' : 'F');
            p += 2;
        } else {
            fputc(ch, f);
        }
    }
    fputc('"', f);
}

static void write_yaml(const lg_config *c, FILE *f, int help) {
    const char *prev = "";  /* previous key */
    for (int i = 0; i < NKEYS; i++) {
        const lg_cfg_key *k = &k_keys[i];
        /* number of leading group components shared with the previous key */
        const char *a = prev, *b = k->name;
        int shared = 0;
        for (;;) {
            size_t la = strcspn(a, "."), lb = strcspn(b, ".");
            if (!a[la] || !b[lb] || la != lb || strncmp(a, b, la) != 0) break;
            shared++;
            a += la + 1;
            b += lb + 1;
        }
        /* open the groups not shared */
        int depth = shared;
        const char *p = b;
        for (;;) {
            size_t l = strcspn(p, ".");
            if (!p[l]) break;
            fprintf(f, "%*s%.*s:\n", 2 * depth, "", (int)l, p);
            depth++;
            p += l + 1;
        }
        fprintf(f, "%*s%s: ", 2 * depth, "", p);
        const char *field = (const char *)c + k->offset;
        char num[64];
        switch (k->type) {
        case LG_CFG_INT: fprintf(f, "%d", *(const int *)field); break;
        case LG_CFG_I64: fprintf(f, "%lld", (long long)*(const int64_t *)field); break;
        case LG_CFG_FLOAT:
            fmt_float(num, sizeof num, *(const float *)field);
            fputs(num, f);
            break;
        case LG_CFG_BOOL: fputs(*(const int *)field ? "true" : "false", f); break;
        case LG_CFG_ENUM: fputs(field, f); break;
        case LG_CFG_PATH: print_quoted(f, field); break;
        }
        if (help) {
            fprintf(f, "  # %s", k->help);
            if (k->type == LG_CFG_ENUM) fprintf(f, " (%s)", k->choices);
            else if (k->type != LG_CFG_BOOL && k->type != LG_CFG_PATH)
                fprintf(f, " [%.15g, %.15g]", k->min, k->max);
        }
        fputc('\n', f);
        prev = k->name;
    }
}

char *lg_config_to_yaml(const lg_config *c) {
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    if (!f) return NULL;
    write_yaml(c, f, 0);
    if (fclose(f) != 0) {
        free(buf);
        return NULL;
    }
    return buf;
}

lg_status lg_config_print(const lg_config *c, FILE *f, int help) {
    write_yaml(c, f, help);
    if (ferror(f)) return lg_error_set(LG_ERR_IO, "config: write error");
    return LG_OK;
}

/* ---- comparing, warnings ---- */

/* s as print_quoted writes it, cut to fit buf (cap >= 1) */
static void quote_into(char *buf, size_t cap, const char *s) {
    FILE *f = fmemopen(buf, cap, "w");
    buf[0] = '\0';
    if (!f) return;
    setvbuf(f, NULL, _IONBF, 0);
    print_quoted(f, s);
    fclose(f);
    buf[cap - 1] = '\0';
}

void lg_config_value_str(const lg_config *c, const lg_cfg_key *k, char *buf, size_t cap) {
    const char *field = (const char *)c + k->offset;
    if (!cap) return;
    switch (k->type) {
    case LG_CFG_INT: snprintf(buf, cap, "%d", *(const int *)field); break;
    case LG_CFG_I64: snprintf(buf, cap, "%lld", (long long)*(const int64_t *)field); break;
    case LG_CFG_FLOAT: fmt_float(buf, cap, *(const float *)field); break;
    case LG_CFG_BOOL: snprintf(buf, cap, "%s", *(const int *)field ? "true" : "false"); break;
    case LG_CFG_ENUM: snprintf(buf, cap, "%s", field); break;
    case LG_CFG_PATH: quote_into(buf, cap, field); break;
    }
}

int lg_config_diff(const lg_config *a, const lg_config *b, char *buf, size_t cap) {
    int n = 0;
    size_t used = 0;
    if (cap) buf[0] = '\0';
    for (int i = 0; i < NKEYS; i++) {
        char va[LG_CFG_PATH_MAX + 8], vb[LG_CFG_PATH_MAX + 8];
        lg_config_value_str(a, &k_keys[i], va, sizeof va);
        lg_config_value_str(b, &k_keys[i], vb, sizeof vb);
        if (!strcmp(va, vb)) continue;
        n++;
        if (used < cap) {
            int w = snprintf(buf + used, cap - used, "%s%s: %s -> %s", used ? ", " : "", k_keys[i].name, va, vb);
            if (w > 0) used += (size_t)w;
            if (used >= cap && cap > 4) memcpy(buf + cap - 4, "...", 4);  /* cut, marked */
        }
    }
    return n;
}

int lg_config_warnings(const lg_config *c, FILE *f, const char *prefix) {
    char w[20][400]; /* at most 5 data rows + 10 lipschitz rows + 2 schedule rows */
    int n = 0;
    /* the next free row; should the count above go stale, the last row is
     * overwritten rather than the stack */
#define ROW() (n < (int)(sizeof w / sizeof w[0]) ? w[n++] : w[sizeof w / sizeof w[0] - 1])
    lg_config def;
    lg_config_default(&def);
    int toy = lg_config_is_toy(c);
    char qpath[200]; /* data.path quoted, cut */
    quote_into(qpath, sizeof qpath, c->data.path);
    if (toy && c->data.path[0] && strcmp(c->data.path, def.data.path) != 0)
        snprintf(ROW(), sizeof w[0],
                 "data.path %s is not used: data.format %s draws its points from the seed; "
                 "remove data.path",
                 qpath, c->data.format);
    if (toy && c->data.image_size != def.data.image_size)
        snprintf(ROW(), sizeof w[0],
                 "data.image_size %d is not used: data.format %s draws 2-D points, not images; remove "
                 "data.image_size",
                 c->data.image_size, c->data.format);
    if (toy && c->data.channels != def.data.channels)
        snprintf(ROW(), sizeof w[0],
                 "data.channels %d is not used: data.format %s draws 2-D points, not images; remove "
                 "data.channels",
                 c->data.channels, c->data.format);
    if (toy && c->data.instance_noise != def.data.instance_noise)
        snprintf(ROW(), sizeof w[0],
                 "data.instance_noise %g is not used: it is added to real images only, not to data.format "
                 "%s's 2-D points; remove data.instance_noise",
                 c->data.instance_noise, c->data.format);
    if (!toy && c->data.toy_n != def.data.toy_n)
        snprintf(ROW(), sizeof w[0],
                 "data.toy_n %lld is not used: only data.format ring8 and grid25 draw points; remove "
                 "data.toy_n",
                 (long long)c->data.toy_n);
    if (strcmp(c->data.split, def.data.split) != 0) {
        struct stat sb;
        if (toy)
            snprintf(ROW(), sizeof w[0],
                     "data.split %s is not used: data.format %s draws its points from the seed; remove "
                     "data.split",
                     c->data.split, c->data.format);
        else if (!strcmp(c->data.format, "png"))
            snprintf(ROW(), sizeof w[0],
                     "data.split %s is not used: png reads every .png file of data.path, it has no splits; "
                     "point data.path at the split's folder and remove data.split",
                     c->data.split);
        else if (stat(c->data.path, &sb) == 0 && !S_ISDIR(sb.st_mode))
            snprintf(ROW(), sizeof w[0],
                     "data.split %.32s is not used: data.path %s is a file, and a split picks the "
                     "files of a data set folder; remove data.split (or give the folder)",
                     c->data.split, qpath);
    }
    const lg_cfg_lip *lips[2] = {&c->lipschitz.g, &c->lipschitz.d};
    const char *nn[2] = {"g", "d"};
    for (int i = 0; i < 2; i++) {
        const lg_cfg_lip *l = lips[i], *d = i ? &def.lipschitz.d : &def.lipschitz.g;
        if (l->sr_every != d->sr_every && !(l->sr_gamma > 0))
            snprintf(ROW(), sizeof w[0],
                     "lipschitz.%s.sr_every %d is not used: SR is off (lipschitz.%s.sr_gamma 0)",
                     nn[i], l->sr_every, nn[i]);
        if (strcmp(l->sr_schedule, d->sr_schedule) != 0 && !(l->sr_gamma > 0))
            snprintf(ROW(), sizeof w[0],
                     "lipschitz.%s.sr_schedule %s is not used: SR is off (lipschitz.%s.sr_gamma 0)",
                     nn[i], l->sr_schedule, nn[i]);
        if (l->sn_iters != d->sn_iters && !l->sn && !(l->toeplitz_k > 0))
            snprintf(ROW(), sizeof w[0],
                     "lipschitz.%s.sn_iters %d is not used: neither lipschitz.%s.sn nor toeplitz_k is on",
                     nn[i], l->sn_iters, nn[i]);
        if (l->clamp_iters != d->clamp_iters && !(l->clamp_ratio > 0))
            snprintf(ROW(), sizeof w[0],
                     "lipschitz.%s.clamp_iters %d is not used: gradient clamping is off "
                     "(lipschitz.%s.clamp_ratio 0)",
                     nn[i], l->clamp_iters, nn[i]);
        const lg_cfg_net *net = i ? &c->model.d : &c->model.g;
        if (l->toeplitz_k > 0 && !strcmp(net->arch, "mlp"))
            snprintf(ROW(), sizeof w[0],
                     "lipschitz.%s.toeplitz_k %g does nothing here: k scales convolutions only, and "
                     "model.%s.arch mlp has none (its linear layers get plain SN); use a cnn or resnet, "
                     "or lipschitz.%s.sn: true",
                     nn[i], l->toeplitz_k, nn[i], nn[i]);
    }
    /* SR-GAN applies SR at the last D update of each iteration (paper sec.
     * 4): sr_every D updates line up with that only if the step's D count
     * is fixed and a multiple or divisor of sr_every */
    const int nd = c->train.n_dis, se = c->lipschitz.d.sr_every;
    if (c->lipschitz.d.sr_gamma > 0 && !strcmp(c->lipschitz.d.sr_schedule, "updates") &&
        (c->train.n_dis_boost > 0 || (nd % se != 0 && se % nd != 0)))
        snprintf(ROW(), sizeof w[0],
                 "lipschitz.d.sr_every %d: SR runs every %d D updates, which %s, so it does not land on "
                 "the last D update of each step as in SR-GAN; set sr_every to train.n_dis (%d) for the "
                 "paper's timing",
                 se, se, c->train.n_dis_boost > 0 ? "the critic schedule (train.n_dis_boost) shifts"
                                                  : "is neither a multiple nor a divisor of train.n_dis",
                 nd);
    /* the critic schedule's boost */
    if (c->train.n_dis_boost == 0 && c->train.n_dis_boost_first != def.train.n_dis_boost_first)
        snprintf(ROW(), sizeof w[0],
                 "train.n_dis_boost_first %lld is not used: the boost is off (train.n_dis_boost 0)",
                 (long long)c->train.n_dis_boost_first);
    if (c->train.n_dis_boost == 0 && c->train.n_dis_boost_every != def.train.n_dis_boost_every)
        snprintf(ROW(), sizeof w[0],
                 "train.n_dis_boost_every %lld is not used: the boost is off (train.n_dis_boost 0)",
                 (long long)c->train.n_dis_boost_every);
    if (c->train.n_dis_boost > 0 && c->train.n_dis_boost_first == 0 && c->train.n_dis_boost_every == 0)
        snprintf(ROW(), sizeof w[0],
                 "train.n_dis_boost %d is not used: no step is boosted (train.n_dis_boost_first and "
                 "n_dis_boost_every are 0)",
                 c->train.n_dis_boost);
    else if (c->train.n_dis_boost > 0 && c->train.n_dis_boost == c->train.n_dis)
        snprintf(ROW(), sizeof w[0],
                 "train.n_dis_boost %d does nothing: it equals train.n_dis; remove it (or set another "
                 "count)",
                 c->train.n_dis_boost);
    if (strcmp(c->lipschitz.d.gp_kind, def.lipschitz.d.gp_kind) != 0 && !(c->lipschitz.d.gp_lambda > 0))
        snprintf(ROW(), sizeof w[0],
                 "lipschitz.d.gp_kind %s is not used: the gradient penalty is off (lipschitz.d.gp_lambda 0)",
                 c->lipschitz.d.gp_kind);
    for (int i = 0; f && i < n; i++) fprintf(f, "%swarning: %s\n", prefix ? prefix : "", w[i]);
    return n;
#undef ROW
}
