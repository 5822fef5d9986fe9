/* lipgan spectra: singular-value spectra and Lipschitz bounds of every 2-D
 * and 4-D tensor of a .safetensors file (lipgan/lipschitz.h). */
#include <cJSON.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "cli/cli.h"
#include "lipgan/backend_cpu.h"
#include "lipgan/config.h"
#include "lipgan/lipschitz.h"
#include "lipgan/model.h"
#include "lipgan/monitor.h"
#include "lipgan/safetensors.h"
#include "lipgan/train.h"

/* Default --iters. Why 1000 and not 200: a convolution's operator T has
 * many singular values just below its largest (the kernel's frequency
 * response is flat near its peak, and an H x H input samples that peak at
 * H^2 frequencies), so power iteration on T^T T converges slowly: the
 * estimate's error falls roughly like 1/k, its change per iteration like
 * 1/k^2. Measured on real weights (the shipped classifier's conv1-3 and a
 * CNN SN-GAN's D and G at 32x32, stride 1): an iteration first changes the
 * estimate by < 1e-6 (relative) after 150-600 iterations, when it is still
 * 2e-5..1e-4 below sigma(T); so 200 flagged most layers '*'. The tolerance
 * is not what is too strict: at 1e-5 the loop stops after 100-400
 * iterations up to 1e-3 low, i.e. a per-step change understates the
 * remaining error by ~100x here. 1000 covers every layer measured with
 * margin and stays cheap for the usual sizes (about 1 ms per iteration for
 * a 64x32x3x3 kernel at 32x32 on one core). */
#define SPECTRA_CONV_ITERS 1000
#define SPECTRA_CONV_TOL 1e-6

static void usage(FILE *f) {
    fprintf(f,
            "usage: lipgan spectra FILE.safetensors|RUN_DIR [--input-size H] [--json] [--stride S]\n"
            "                      [--pad P] [--iters N] [--filter TEXT] [--convt TEXT] [--svals]\n"
            "                      [--threads T]\n"
            "\n"
            "For every 2-D and 4-D float tensor of FILE (e.g. a checkpoint; a run directory means\n"
            "its newest checkpoint): its shape, the largest singular value sigma by power\n"
            "iteration (%d iterations) and exactly (LAPACK), sigma0/sigma1, the rank metric\n"
            "r(W) = ||W||_F / (m sigma) (m = columns, thesis 4.2.1), and for 4-D tensors the\n"
            "true operator norm of the convolution (power iteration with conv and its\n"
            "transpose; geometry below) next to the reshaped-matrix norm and the Tsuzuku\n"
            "bound sqrt(n) sigma(R_K). Last, the product of the per-layer norms\n"
            "(operator norm for 4-D): an upper bound on the Lipschitz constant of a plain\n"
            "feed-forward stack of these layers; for a checkpoint, one per network (G., D., EMA.).\n"
            "\n"
            "All of these are norms of the RAW weights as stored. A network trained with spectral\n"
            "normalization (SN) divides each weight by its layer's sn_sigma (a power-iteration\n"
            "estimate of the reshaped-matrix norm 'sigma'), a Toeplitz one by toep_sigma (the conv\n"
            "operator norm at the layer's own input size and stride) times toeplitz_k (convs only);\n"
            "so raw bounds can be in the thousands while training reports 'Lip upper est. 1.01'. When the\n"
            "file holds a layer's stored sigma (NAME.sn_sigma / NAME.toep_sigma next to\n"
            "NAME.weight), column 'normed' is that layer's norm as the network applies it,\n"
            "k * norm / stored sigma (k = 1 for SN and linear layers), and the per-network line\n"
            "adds the product of those.\n"
            "\n"
            "Geometry of conv_op (column 'geometry': input HxW, stride, pad, and 'cfg' or 'flag'):\n"
            "  - a checkpoint written by lipgan train, or its run directory: every G./D./EMA.\n"
            "    conv weight takes its layer's OWN input size, stride and padding, and whether it\n"
            "    is a transposed conv (G.dc*: shape marked T), from the networks the checkpoint's\n"
            "    config builds, as the training monitor (spectra.bin, lipgan report) does ('cfg').\n"
            "  - --input-size, --stride or --pad given: the flags' geometry (unset ones at their\n"
            "    defaults) for EVERY conv layer, overriding the config ('flag'); --convt given:\n"
            "    it alone says which layers are transposed, overriding the config.\n"
            "  - a G./D./EMA. tensor that the config's networks do not have, or have with another\n"
            "    shape, is an error (exit 3) naming it (the file does not match its config),\n"
            "    unless --convt and one of --input-size/--stride/--pad are given (then the\n"
            "    config is not read for geometry); or leave it out with --filter.\n"
            "  - a file without a config and data.shape (not written by lipgan train), or (with a\n"
            "    warning) with a config the networks cannot be built from: the flags or their\n"
            "    defaults.\n"
            "\n"
            "  --input-size H  conv input size for every layer, 1..4096 (default 32)\n"
            "  --stride S      conv stride for every layer, 1..64 (default 1)\n"
            "  --pad P         conv padding for every layer, 0..64 (default (kh-1)/2, i.e. 'same')\n"
            "  --iters N       max power iterations for the conv operator norm, 1..1000000\n"
            "                  (default %d); stops earlier once an iteration changes the\n"
            "                  estimate by < %g (relative), typically still ~1e-4 below the\n"
            "                  true norm (it approaches it from below); '*' / converged=false:\n"
            "                  N was reached first\n"
            "  --filter TEXT   only tensors whose name contains TEXT (default: all)\n"
            "  --convt TEXT    tensors whose name contains TEXT are transposed-conv weights\n"
            "                  (in, out, kh, kw): their matrix uses dim 1 as the output dim,\n"
            "                  and their operator norm (that of the adjoint conv) is taken at\n"
            "                  the transposed conv's OUTPUT size H (a checkpoint's config says\n"
            "                  which layers are transposed without it, see above); 'sigma' is\n"
            "                  then that of the (out, in*kh*kw) matrix SN normalizes, 'reshaped'\n"
            "                  that of the adjoint conv's (in, out*kh*kw) kernel matrix (the\n"
            "                  Tsuzuku bound's), so the two differ\n"
            "  --svals         also print every singular value (default: not in the table; always\n"
            "                  in --json)\n"
            "  --threads T     CPU threads, 0..1024 (default 0: all cores, or OMP_NUM_THREADS; a\n"
            "                  SN-GAN CIFAR checkpoint (G and D) took 10.4 s on 2 threads, 19.3 s on 1, on a\n"
            "                  2-core machine). The last digits of the norms depend on the count\n"
            "  --json          print one JSON document instead of the table (default: the table)\n"
            "  -h, --help      this help\n"
            "Exit codes: 0 ok, 2 usage, 3 unreadable file, no checkpoint in RUN_DIR, a tensor\n"
            "with NaN/Inf, or a tensor the checkpoint's config does not describe.\n",
            LG_SPECTRUM_POWER_ITERS, SPECTRA_CONV_ITERS, SPECTRA_CONV_TOL);
}

typedef struct opts {
    const char *path, *filter, *convt;
    int input_size, stride, pad, iters, json, svals, threads;
    int geom_flags;  /* any of --input-size/--stride/--pad given */
} opts;

static cJSON *json_num(double v) { return isfinite(v) ? cJSON_CreateNumber(v) : cJSON_CreateNull(); }

/* The networks of a checkpoint, by name prefix ("G.", "D.", "EMA."); index
 * NNET collects tensors of no network (any other file). */
enum { NNET = 3 };
static const char *const k_nets[NNET] = {"G", "D", "EMA"};

static int net_of(const char *name) {
    for (int i = 0; i < NNET; i++) {
        size_t n = strlen(k_nets[i]);
        if (!strncmp(name, k_nets[i], n) && name[n] == '.') return i;
    }
    return NNET;
}

typedef struct net_acc {
    int layers, normed;    /* layers seen; of those, with a stored sigma */
    double raw, eff;       /* products of raw norms / of normalized (else raw) norms */
} net_acc;

static void fmt_shape(char *buf, size_t cap, int ndim, const int64_t *shape) {
    size_t n = (size_t)snprintf(buf, cap, "(");
    for (int d = 0; d < ndim && n < cap; d++)
        n += (size_t)snprintf(buf + n, cap - n, "%s%lld", d ? "," : "", (long long)shape[d]);
    if (n < cap) snprintf(buf + n, cap - n, ")");
}

/* The convolution whose operator norm a 4-D tensor gets: input size,
 * stride and padding are the layer's own, from the networks the
 * checkpoint's config builds (GEOM_CONFIG), unless --input-size/--stride/
 * --pad say them for every layer (GEOM_FLAGS; also without a config, with
 * their defaults); whether it is a transposed conv: --convt if given, else
 * the config, else not. A transposed conv's is its adjoint conv's: the
 * stored weight (in, out, kh, kw) read as a conv weight on the transposed
 * conv's output (h, w). */
enum { GEOM_FLAGS = 0, GEOM_CONFIG };
typedef struct conv_geom {
    int src;               /* where h, w, stride, pad come from: GEOM_FLAGS or GEOM_CONFIG */
    int convt;             /* a transposed-conv weight ... */
    int convt_src;         /* ... says GEOM_FLAGS (--convt, or none) or GEOM_CONFIG */
    int h, w, stride, pad; /* the conv's input size, stride and padding */
} conv_geom;

static conv_geom flags_geom(const opts *o, const lg_st_tensor *ti) {
    conv_geom g = {GEOM_FLAGS, 0, GEOM_FLAGS, o->input_size, o->input_size, o->stride, o->pad};
    if (ti->ndim == 4) {
        g.convt = o->convt && strstr(ti->name, o->convt);
        if (o->pad < 0) g.pad = (int)(ti->shape[2] - 1) / 2;
    }
    return g;
}

/* Network tensor ti (G., D. or EMA.: net) checked against the networks the
 * checkpoint's config builds (nets[0] G, also for EMA; nets[1] D), and for
 * a 4-D weight its layer's geometry, taken as the training monitor takes it
 * (lg_monitor_layer_geom). LG_ERR_FORMAT naming the tensor and the fix if
 * they do not have it with this shape, or not as a conv layer's weight. */
static lg_status config_geom(const char *file, const opts *o, lg_model *const nets[2], int net,
                             const lg_st_tensor *ti, conv_geom *out) {
    lg_model *m = nets[net == 1];
    const char *local = ti->name + strlen(k_nets[net]) + 1;
    const lg_named_tensor *nt = lg_model_find(m, local);
    int same = nt && nt->t->ndim == ti->ndim;
    for (int d = 0; same && d < ti->ndim; d++) same = nt->t->shape[d] == ti->shape[d];
    const lg_layer_info *L = NULL;
    char wname[LG_MODEL_NAME_MAX + 16];
    for (int i = 0; same && ti->ndim == 4 && !L && i < lg_model_num_layers(m); i++) {
        const lg_layer_info *li = lg_model_layer(m, i);
        snprintf(wname, sizeof wname, "%s.weight", li->name);
        if (li->kind != LG_LAYER_LINEAR && !strcmp(wname, local)) L = li;
    }
    if (!same || (ti->ndim == 4 && !L)) {
        char got[96], have[96] = "";
        fmt_shape(got, sizeof got, ti->ndim, ti->shape);
        if (nt && !same) fmt_shape(have, sizeof have, nt->t->ndim, nt->t->shape);
        const lg_model_spec *sp = lg_model_get_spec(m);
        return lg_error_set(LG_ERR_FORMAT,
                            "%s: tensor %s %s: the %s network of the file's config (%s, width %d) %s%s; the file does "
                            "not match its config: give --input-size (with --stride, --pad) and --convt to take every "
                            "layer's geometry and kind from the flags, or --filter to leave it out",
                            file, ti->name, got, net == 1 ? "D" : "G", lg_model_arch_name(sp->arch), sp->ch,
                            !nt ? "has no such tensor" : !same ? "has it as " : "has it, but not as a conv weight",
                            have);
    }
    if (L && !o->geom_flags) {
        lg_conv_geom g;
        lg_monitor_layer_geom(L, &g);
        out->src = GEOM_CONFIG;
        out->h = g.h;
        out->w = g.w;
        out->stride = g.stride;
        out->pad = g.pad;
    }
    if (L && !o->convt) {
        out->convt = L->kind == LG_LAYER_CONVT;
        out->convt_src = GEOM_CONFIG;
    }
    return LG_OK;
}

/* A layer's stored normalization: NAME.sn_sigma or NAME.toep_sigma for
 * NAME.weight. Returns 0 if there is none (or it is not a usable number). */
static int stored_sigma(const lg_st_file *f, const char *name, const char **kind, double *sigma) {
    size_t n = strlen(name);
    if (n < 7 || strcmp(name + n - 7, ".weight")) return 0;
    static const char *const suf[2] = {".sn_sigma", ".toep_sigma"};
    for (int k = 0; k < 2; k++) {
        char key[512];
        if (snprintf(key, sizeof key, "%.*s%s", (int)(n - 7), name, suf[k]) >= (int)sizeof key) return 0;
        const lg_st_tensor *t = lg_st_find(f, key);
        float v;
        if (!t || t->numel != 1 || lg_st_get_f32(f, key, -1, NULL, &v) != LG_OK) continue;
        if (!(v > 0.0f) || !isfinite(v)) return 0; /* never updated, or corrupt: no normalized value */
        *kind = k ? "toeplitz" : "sn";
        *sigma = v;
        return 1;
    }
    lg_error_clear();
    return 0;
}

int lg_cmd_spectra(int argc, char **argv) {
    opts o = {NULL, NULL, NULL, 32, 1, -1, SPECTRA_CONV_ITERS, 0, 0, 0, 0}; /* threads 0: all */
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            usage(stdout);
            return LG_EXIT_OK;
        }
        int takes = !strcmp(a, "--input-size") || !strcmp(a, "--stride") || !strcmp(a, "--pad") ||
                    !strcmp(a, "--iters") || !strcmp(a, "--filter") || !strcmp(a, "--convt") ||
                    !strcmp(a, "--threads");
        if (takes && i + 1 >= argc) return lg_cli_usage_error("spectra", "%s needs a value", a);
        if (!strcmp(a, "--input-size") || !strcmp(a, "--stride") || !strcmp(a, "--pad")) o.geom_flags = 1;
        lg_status fs = LG_OK;
        if (!strcmp(a, "--input-size")) {
            fs = lg_cli_flag_int(a, argv[++i], 1, 4096, &o.input_size);
        } else if (!strcmp(a, "--stride")) {
            fs = lg_cli_flag_int(a, argv[++i], 1, 64, &o.stride);
        } else if (!strcmp(a, "--pad")) {
            fs = lg_cli_flag_int(a, argv[++i], 0, 64, &o.pad);
        } else if (!strcmp(a, "--iters")) {
            fs = lg_cli_flag_int(a, argv[++i], 1, 1000000, &o.iters);
        } else if (!strcmp(a, "--threads")) {
            fs = lg_cli_flag_int(a, argv[++i], 0, 1024, &o.threads);
        } else if (!strcmp(a, "--filter")) {
            o.filter = argv[++i];
        } else if (!strcmp(a, "--convt")) {
            o.convt = argv[++i];
        } else if (!strcmp(a, "--json")) {
            o.json = 1;
        } else if (!strcmp(a, "--svals")) {
            o.svals = 1;
        } else if (a[0] == '-' && a[1]) {
            return lg_cli_usage_error("spectra", "unknown option '%s'", a);
        } else if (!o.path) {
            o.path = a;
        } else {
            return lg_cli_usage_error("spectra", "more than one file given ('%s')", a);
        }
        if (fs != LG_OK) return lg_cli_fail("spectra", fs);
    }
    if (!o.path) return lg_cli_usage_error("spectra", "no file given");
    lg_cpu_set_threads(o.threads);

    /* a run directory (as sample and eval take): its newest checkpoint */
    char file[PATH_MAX];
    struct stat sb;
    lg_status s = LG_OK;
    if (stat(o.path, &sb) == 0 && S_ISDIR(sb.st_mode)) {
        if ((s = lg_checkpoint_latest(o.path, file, sizeof file, NULL)) != LG_OK) return lg_cli_fail("spectra", s);
        fprintf(stderr, "lipgan spectra: %s: newest checkpoint %s\n", o.path, file);
    } else {
        snprintf(file, sizeof file, "%s", o.path);
    }
    lg_st_file *f = NULL;
    if ((s = lg_st_open(&f, file)) != LG_OK) return lg_cli_fail("spectra", s);

    /* Toeplitz networks scale their convolutions (4-D weights) by toeplitz_k,
     * not their linear layers (lipgan/model.h, thesis 4.1.2); a checkpoint's
     * config says which networks */
    double scale[NNET + 1] = {1.0, 1.0, 1.0, 1.0};
    const char *cfg_text = lg_st_meta(f, "config");
    if (cfg_text) {
        lg_config cfg;
        lg_config_default(&cfg);
        if (lg_config_load_string(&cfg, cfg_text, strlen(cfg_text), "checkpoint config") == LG_OK) {
            if (cfg.lipschitz.g.toeplitz_k > 0) scale[0] = scale[2] = cfg.lipschitz.g.toeplitz_k;
            if (cfg.lipschitz.d.toeplitz_k > 0) scale[1] = cfg.lipschitz.d.toeplitz_k;
        }
        lg_error_clear();
    }

    /* each layer's own geometry and kind: the networks the checkpoint's
     * config builds, unless the flags say both for every layer */
    lg_model *nets[2] = {NULL, NULL};
    lg_status ms = cfg_text && !(o.geom_flags && o.convt) ? lg_checkpoint_models(file, &nets[0], &nets[1]) : LG_OK;
    if (ms == LG_ERR_NOT_FOUND) { /* no data.shape: not from lipgan train, a file like any other */
        lg_error_clear();
    } else if (ms != LG_OK) {
        fprintf(stderr,
                "lipgan spectra: warning: %s: its config does not build the networks (%s); every conv layer takes "
                "the geometry of --input-size/--stride/--pad (%dx%d, stride %d, pad %s) and is a transposed conv "
                "only by --convt\n",
                file, lg_error_msg(), o.input_size, o.input_size, o.stride, o.pad >= 0 ? "as given" : "(kh-1)/2");
        lg_error_clear();
    }
    conv_geom *geo = calloc(lg_st_count(f) + 1, sizeof *geo); /* (tensors) */
    if (!geo) s = lg_error_set(LG_ERR_NOMEM, "out of memory");

    /* which tensors are listed; whether any has a network prefix or a stored
     * sigma; where each one's geometry comes from (a tensor the config's
     * networks do not describe fails here, before any output) */
    int checkpoint = 0, any_norm = 0, n_cfg = 0, n_flag = 0, n_convt = 0;
    for (size_t t = 0; t < lg_st_count(f) && s == LG_OK; t++) {
        const lg_st_tensor *ti = lg_st_at(f, t);
        if ((ti->ndim != 2 && ti->ndim != 4) || ti->numel == 0 || (o.filter && !strstr(ti->name, o.filter)))
            continue;
        if (ti->dtype != LG_ST_F32 && ti->dtype != LG_ST_F64 && ti->dtype != LG_ST_F16 && ti->dtype != LG_ST_BF16)
            continue;
        const char *kind;
        double sg;
        const int net = net_of(ti->name);
        checkpoint |= net < NNET;
        any_norm |= stored_sigma(f, ti->name, &kind, &sg);
        geo[t] = flags_geom(&o, ti);
        if (nets[0] && net < NNET) s = config_geom(file, &o, nets, net, ti, &geo[t]);
        if (ti->ndim == 4) {
            n_cfg += geo[t].src == GEOM_CONFIG;
            n_flag += geo[t].src == GEOM_FLAGS;
            n_convt += geo[t].convt;
        }
    }
    lg_model_free(nets[0]);
    lg_model_free(nets[1]);
    if (s != LG_OK) {
        free(geo);
        lg_st_close(f);
        return lg_cli_fail("spectra", s);
    }

    cJSON *root = o.json ? cJSON_CreateObject() : NULL, *arr = NULL;
    if (root) {
        cJSON_AddStringToObject(root, "file", file);
        cJSON_AddStringToObject(root, "weights", "raw"); /* as stored, before SN/Toeplitz */
        /* the flags' input size where some conv layer used it */
        cJSON_AddItemToObject(root, "input_size", n_flag ? cJSON_CreateNumber(o.input_size) : cJSON_CreateNull());
        cJSON_AddStringToObject(root, "geometry", n_cfg && n_flag ? "mixed" : n_cfg ? "config" : "flags");
        arr = cJSON_AddArrayToObject(root, "tensors");
    }
    net_acc acc[NNET + 1];
    for (int i = 0; i <= NNET; i++) acc[i] = (net_acc){0, 0, 1.0, 1.0};
    int count = 0;
    for (size_t t = 0; t < lg_st_count(f) && s == LG_OK; t++) {
        const lg_st_tensor *ti = lg_st_at(f, t);
        if (ti->ndim != 2 && ti->ndim != 4) continue;
        if (ti->dtype != LG_ST_F32 && ti->dtype != LG_ST_F64 && ti->dtype != LG_ST_F16 &&
            ti->dtype != LG_ST_BF16)
            continue;
        if (ti->numel == 0) continue;
        if (o.filter && !strstr(ti->name, o.filter)) continue;
        const conv_geom *cg = &geo[t];
        const int convt = ti->ndim == 4 && cg->convt;
        float *w = malloc(sizeof(float) * (size_t)ti->numel);
        double *sv = NULL;
        if (!w) {
            s = lg_error_set(LG_ERR_NOMEM, "out of memory reading %s", ti->name);
            break;
        }
        if ((s = lg_st_get_f32(f, ti->name, -1, NULL, w)) != LG_OK) {
            free(w);
            break;
        }
        /* a NaN/Inf weight is bad data (a diverged or corrupt checkpoint),
         * not a failure of the analysis: say where, before LAPACK sees it */
        int64_t bad = -1;
        for (int64_t k = 0; k < ti->numel && bad < 0; k++)
            if (!isfinite(w[k])) bad = k;
        if (bad >= 0) {
            s = lg_error_set(LG_ERR_FORMAT,
                             "%s: tensor %s: element %lld is %s; the file is corrupt or training diverged (use an "
                             "earlier checkpoint)",
                             file, ti->name, (long long)bad, isnan(w[bad]) ? "NaN" : "infinite");
            free(w);
            break;
        }
        const int out_dim = convt ? 1 : 0;
        int64_t rows, cols;
        lg_weight_mat_dims(ti->ndim, ti->shape, out_dim, &rows, &cols);
        sv = malloc(sizeof(double) * (size_t)(rows < cols ? rows : cols));
        lg_spectrum_info info;
        if (!sv) s = lg_error_set(LG_ERR_NOMEM, "out of memory analysing %s", ti->name);
        else s = lg_spectrum_analyze(w, ti->ndim, ti->shape, out_dim, 0, 1, 0, &info, sv);
        if (s != LG_OK) {
            char why[1024]; /* lg_error_set must not read the buffer it writes */
            snprintf(why, sizeof why, "%s", lg_error_msg());
            s = lg_error_set(s, "%s: tensor %s: %s", file, ti->name, why);
            free(w);
            free(sv);
            break;
        }
        /* conv operator norm; a transposed conv's operator is the adjoint of
         * the conv whose weight (oc' = in, c' = out, kh, kw) it stores, so its
         * norm, reshaped kernel R_K and Tsuzuku bound are that conv's */
        int have_conv = 0;
        lg_conv_norms cn;
        memset(&cn, 0, sizeof cn);
        if (ti->ndim == 4) {
            lg_status cs = lg_conv_norms_compute(w, (int)ti->shape[0], (int)ti->shape[1],
                                                 (int)ti->shape[2], (int)ti->shape[3], cg->h, cg->w,
                                                 cg->stride, cg->pad, o.iters, SPECTRA_CONV_TOL, 0, &cn);
            if (cs == LG_OK) have_conv = 1;
            else if (cs != LG_ERR_SHAPE) {
                char why[1024];
                snprintf(why, sizeof why, "%s", lg_error_msg());
                s = lg_error_set(cs, "%s: tensor %s: %s", file, ti->name, why);
                free(w);
                free(sv);
                break;
            }
            lg_error_clear();
        }
        const double norm = have_conv ? cn.op_norm : info.sigma_exact;
        const int net = net_of(ti->name);
        const char *nkind = NULL;
        double nsigma = 0.0, normed = NAN;
        const double k = ti->ndim == 4 ? scale[net] : 1.0; /* k: convolutions only */
        if (stored_sigma(f, ti->name, &nkind, &nsigma)) normed = k * norm / nsigma;
        acc[net].layers++;
        acc[net].raw *= norm;
        acc[net].eff *= isfinite(normed) ? normed : norm;
        acc[net].normed += isfinite(normed);
        count++;
        char shp[64];
        if (ti->ndim == 2)
            snprintf(shp, sizeof shp, "(%lld,%lld)", (long long)ti->shape[0],
                     (long long)ti->shape[1]);
        else
            snprintf(shp, sizeof shp, "(%lld,%lld,%lld,%lld)%s", (long long)ti->shape[0],
                     (long long)ti->shape[1], (long long)ti->shape[2], (long long)ti->shape[3],
                     convt ? "T" : "");
        const int64_t nsv = rows < cols ? rows : cols;
        if (root) {
            cJSON *e = cJSON_CreateObject();
            cJSON_AddStringToObject(e, "name", ti->name);
            cJSON *sh = cJSON_AddArrayToObject(e, "shape");
            for (int d = 0; d < ti->ndim; d++)
                cJSON_AddItemToArray(sh, cJSON_CreateNumber((double)ti->shape[d]));
            cJSON_AddStringToObject(e, "kind", ti->ndim == 2 ? "linear" : convt ? "conv_transpose2d" : "conv2d");
            cJSON_AddNumberToObject(e, "rows", (double)rows);
            cJSON_AddNumberToObject(e, "cols", (double)cols);
            cJSON_AddItemToObject(e, "sigma_power", json_num(info.sigma_power));
            cJSON_AddItemToObject(e, "sigma_exact", json_num(info.sigma_exact));
            cJSON_AddItemToObject(e, "sigma1", json_num(info.sigma1));
            cJSON_AddItemToObject(e, "sigma0_over_sigma1", json_num(info.ratio01));
            cJSON_AddItemToObject(e, "r", json_num(info.r));
            cJSON *sva = cJSON_AddArrayToObject(e, "singular_values");
            for (int64_t k = 0; k < nsv; k++) cJSON_AddItemToArray(sva, json_num(sv[k]));
            if (ti->ndim == 4) { /* where conv's numbers come from, also when there are none */
                cJSON *gj = cJSON_AddObjectToObject(e, "geometry");
                cJSON_AddStringToObject(gj, "source", cg->src == GEOM_CONFIG ? "config" : "flags");
                cJSON_AddNumberToObject(gj, "input_h", cg->h);
                cJSON_AddNumberToObject(gj, "input_w", cg->w);
                cJSON_AddNumberToObject(gj, "stride", cg->stride);
                cJSON_AddNumberToObject(gj, "pad", cg->pad);
                cJSON_AddBoolToObject(gj, "transposed", cg->convt);
                cJSON_AddStringToObject(gj, "transposed_source", cg->convt_src == GEOM_CONFIG ? "config" : "flags");
            }
            if (ti->ndim == 4 && have_conv) {
                cJSON *c = cJSON_AddObjectToObject(e, "conv");
                cJSON_AddNumberToObject(c, "input_size", cg->h);
                cJSON_AddNumberToObject(c, "stride", cg->stride);
                cJSON_AddNumberToObject(c, "pad", cg->pad);
                cJSON_AddItemToObject(c, "op_norm", json_num(cn.op_norm));
                cJSON_AddItemToObject(c, "reshaped", json_num(cn.reshaped));
                cJSON_AddItemToObject(c, "tsuzuku", json_num(cn.tsuzuku));
                cJSON_AddNumberToObject(c, "n", cn.n);
                cJSON_AddNumberToObject(c, "iters", cn.iters);
                cJSON_AddBoolToObject(c, "converged", cn.converged);
            } else if (ti->ndim == 4) {
                cJSON_AddNullToObject(e, "conv"); /* kernel larger than the padded input */
            }
            if (nkind) {
                cJSON *nz = cJSON_AddObjectToObject(e, "normalization");
                cJSON_AddStringToObject(nz, "kind", nkind);
                cJSON_AddItemToObject(nz, "stored_sigma", json_num(nsigma));
                cJSON_AddItemToObject(nz, "scale", json_num(k));
                cJSON_AddItemToObject(nz, "norm", json_num(normed)); /* scale * norm / stored_sigma */
            }
            cJSON_AddItemToArray(arr, e);
        } else {
            if (count == 1) /* the header once there is a row to print */
                printf("%-36s %-18s %10s %10s %8s %9s %10s %10s %10s  %-18s%s\n", "tensor", "shape", "sigma_pi",
                       "sigma", "s0/s1", "r(W)", "conv_op", "reshaped", "tsuzuku", "geometry",
                       any_norm ? "     normed" : "");
            char conv[3][16] = {"", "", ""}, nz[24] = "", gs[48] = "";
            if (ti->ndim == 4)
                snprintf(gs, sizeof gs, "%dx%d s%d p%d %s", cg->h, cg->w, cg->stride, cg->pad,
                         cg->src == GEOM_CONFIG ? "cfg" : "flag");
            if (have_conv) {
                snprintf(conv[0], 16, "%.5g%s", cn.op_norm, cn.converged ? "" : "*");
                snprintf(conv[1], 16, "%.5g", cn.reshaped);
                snprintf(conv[2], 16, "%.5g", cn.tsuzuku);
            } else if (ti->ndim == 4) {
                snprintf(conv[0], 16, "n/a");
            }
            if (isfinite(normed)) snprintf(nz, sizeof nz, " %10.5g", normed);
            char r01[16] = "-"; /* a (1, n) or (n, 1) weight has one singular value: no sigma1 */
            if (nsv >= 2 && isfinite(info.ratio01)) snprintf(r01, sizeof r01, "%.4g", info.ratio01);
            printf("%-36s %-18s %10.5g %10.5g %8s %9.4g %10s %10s %10s  %-18s%s\n", ti->name, shp,
                   info.sigma_power, info.sigma_exact, r01, info.r, conv[0], conv[1], conv[2], gs, nz);
            if (o.svals) {
                printf("  singular values:");
                for (int64_t k = 0; k < nsv; k++) printf(" %.6g", sv[k]);
                printf("\n");
            }
        }
        free(w);
        free(sv);
    }
    if (s == LG_OK && count == 0)
        s = lg_error_set(LG_ERR_FORMAT, "%s: no 2-D or 4-D float tensors%s%s", file,
                         o.filter ? " matching " : "", o.filter ? o.filter : "");
    free(geo);
    if (s != LG_OK) {
        cJSON_Delete(root);
        lg_st_close(f);
        return lg_cli_fail("spectra", s);
    }
    if (root) {
        if (!checkpoint) {
            cJSON_AddItemToObject(root, "lipschitz_upper_product", json_num(acc[NNET].raw));
        } else { /* one bound per network: G and D are never composed */
            cJSON *nets = cJSON_AddObjectToObject(root, "networks");
            for (int i = 0; i <= NNET; i++) {
                if (!acc[i].layers) continue;
                cJSON *e = cJSON_AddObjectToObject(nets, i < NNET ? k_nets[i] : "other");
                cJSON_AddNumberToObject(e, "layers", acc[i].layers);
                cJSON_AddItemToObject(e, "lipschitz_upper_product", json_num(acc[i].raw));
                cJSON_AddNumberToObject(e, "normalized_layers", acc[i].normed);
                if (acc[i].normed)
                    cJSON_AddItemToObject(e, "lipschitz_upper_product_normalized", json_num(acc[i].eff));
            }
        }
        char *text = cJSON_Print(root);
        if (text) printf("%s\n", text);
        free(text);
        cJSON_Delete(root);
    } else {
        const char *nc = " (* = not converged in --iters)";
        if (n_cfg)
            printf("conv_op: operator norm at each layer's own input size, stride and pad ('cfg': from the\n"
                   "networks of the run's config, as the training monitor)%s\n",
                   n_flag ? "" : nc);
        if (n_flag)
            printf("conv_op%s: operator norm at %dx%d input, stride %d, pad %s ('flag': %s)%s\n",
                   n_cfg ? " of the other conv layers" : "", o.input_size, o.input_size, o.stride,
                   o.pad >= 0 ? "as given" : "(kh-1)/2",
                   o.geom_flags ? "the flags, for every layer" : "the defaults of --input-size/--stride/--pad", nc);
        if (n_convt)
            printf("T: a transposed conv (%s): the operator norm of its adjoint conv, on its output\n",
                   o.convt ? "by --convt" : "known from the run's config");
        printf("weights: the raw stored ones. SN divides a layer's weight by its sn_sigma (~ 'sigma'),\n"
               "Toeplitz by its toep_sigma (~ the conv operator norm at the layer's own size) times\n"
               "toeplitz_k (convs)%s\n",
               any_norm ? "; 'normed' = k * norm / the stored sigma, the layer as the network applies it"
                        : "; this file stores no sn_sigma/toep_sigma, so no normalized values");
        if (!checkpoint) {
            printf("product of per-layer norms (Lipschitz upper bound of a feed-forward stack): %.6g\n",
                   acc[NNET].raw);
        } else {
            printf("product of per-layer norms (Lipschitz upper bound of a feed-forward stack; not of a residual\n"
                   "network such as the resnet arch, whose skip connections the training monitor's lip_*_upper\n"
                   "accounts for), per network:\n");
            for (int i = 0; i <= NNET; i++) {
                if (!acc[i].layers) continue;
                printf("  %-5s raw %.6g (%d layers)", i < NNET ? k_nets[i] : "other", acc[i].raw, acc[i].layers);
                if (acc[i].normed)
                    printf("; normalized %.6g (%d of %d layers by their stored sigma%s)", acc[i].eff,
                           acc[i].normed, acc[i].layers, scale[i] != 1.0 ? ", times toeplitz_k" : "");
                printf("\n");
            }
        }
    }
    lg_st_close(f);
    return LG_EXIT_OK;
}
