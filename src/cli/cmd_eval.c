/* lipgan eval: metrics of a checkpoint's generator (lipgan/eval.h), and the
 * helpers it shares with `lipgan fid-stats` (cli/eval_common.h). */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli/cli.h"
#include "cli/eval_common.h"
#include "lipgan/backend_cpu.h"
#include "lipgan/data.h"
#include "lipgan/fileio.h"
#include "lipgan/eval.h"
#include "lipgan/safetensors.h"
#include "lipgan/train.h"

/* ---- shared with fid-stats ---- */

const char *lg_cli_weights_path(int classifier, const char *path, char *buf, size_t cap) {
    if (path) return path;
    const char *env = classifier ? NULL : getenv("LG_INCEPTION_WEIGHTS");
    if (env && *env) return env;
    lg_file_find_shipped(classifier ? LG_CLS_DEFAULT_PATH : LG_CLI_INCEPTION_DEFAULT, buf, cap);
    return buf;
}

lg_status lg_cli_load_inception(const char *path, const lg_backend *be, lg_inception **out) {
    char def[PATH_MAX + 16];
    *out = NULL;
    path = lg_cli_weights_path(0, path, def, sizeof def);
    if (access(path, F_OK) != 0)
        return lg_error_set(LG_ERR_NOT_FOUND,
                            "Inception weights %s: no such file; lipgan downloads nothing: on a machine that has "
                            "pytorch-fid's pt_inception-2015-12-05-6726825d.pth run python3 "
                            "tools/convert_inception_weights.py pt_inception-2015-12-05-6726825d.pth %s, copy it here "
                            "and pass --inception FILE (or set LG_INCEPTION_WEIGHTS); --metrics cfid,classes need no "
                            "download",
                            path, LG_CLI_INCEPTION_DEFAULT);
    LG_TRY(lg_cli_check_input("Inception weights", path, "the weights file (--inception FILE)"));
    LG_TRY(lg_inception_load(out, path));
    /* on a GPU when asked; if that cannot be, the CPU gives the same
     * numbers, only slower: say so and go on */
    if (be && be->is_device && lg_inception_use_cuda(*out) != LG_OK)
        fprintf(stderr, "lipgan: warning: %s\n", lg_error_msg());
    return LG_OK;
}

lg_status lg_cli_load_classifier(const char *path, const lg_backend *be, lg_classifier **out) {
    char def[PATH_MAX + 16];
    path = lg_cli_weights_path(1, path, def, sizeof def);
    LG_TRY(lg_cli_check_input("classifier weights", path, "the weights file (--classifier FILE)"));
    return lg_classifier_load(out, path, be);
}

lg_status lg_cli_load_images(lg_dataset *d, const char *format, const char *path, const char *split, int size,
                             int channels) {
    lg_data_spec ds;
    memset(&ds, 0, sizeof ds);
    ds.format = format;
    ds.path = path;
    ds.split = !strcmp(split, "test") ? LG_SPLIT_TEST : !strcmp(split, "unlabeled") ? LG_SPLIT_UNLABELED : LG_SPLIT_TRAIN;
    ds.size = size;
    ds.channels = channels;
    return lg_data_load(d, &ds);
}

void lg_cli_features_desc(const lg_inception *inc, lg_classifier *cls, char *buf, size_t cap) {
    if (inc) snprintf(buf, cap, "%s", lg_inception_describe(inc));
    else
        snprintf(buf, cap, "lipgan Fashion-MNIST classifier fc1 features (%d; test accuracy %.4f)", LG_CLS_FEAT_DIM,
                 lg_classifier_get_info(cls)->test_accuracy);
}

/* ---- eval ---- */

static void usage(FILE *f) {
    fprintf(f,
            "usage: lipgan eval CKPT [--metrics LIST] [--n N] [--ref STATS]... [--ref-n N] [--data PATH]\n"
            "                  [--inception FILE] [--classifier FILE] [--json] [--log] [--seed S]\n"
            "                  [--no-ema] [--device cpu|cuda[:N]] [--threads T] [--quiet]\n"
            "\n"
            "Samples N images (or points) from the generator of CKPT (a checkpoint file, or a run\n"
            "directory: its newest checkpoint; the EMA generator unless --no-ema) and prints the\n"
            "metrics in LIST (comma-separated), each with the number of samples it used:\n"
            "  is       Inception Score, 10 splits            (needs Inception weights)\n"
            "  fid      FID on Inception pool3 features      (needs Inception weights)\n"
            "  kid      KID on Inception pool3 features      (needs Inception weights)\n"
            "  cfid     FID on the features of lipgan's own Fashion-MNIST classifier\n"
            "  classes  classes covered by the classifier's predictions, KL(histogram || uniform)\n"
            "  toy      2-D ring/grid: modes covered, %% high-quality samples, reverse KL\n"
            "Default LIST: toy for 2-D toys, cfid,classes for 1x32x32 images, else is,fid.\n"
            "Default N: 2500 for toys, 10000 for images.\n"
            "\n"
            "Generated images are quantized to 8 bits before the Inception net or the classifier\n"
            "(round((x+1)*127.5) clamped to 0..255, then back to [-1, 1]), as pytorch-fid (PNGs\n"
            "saved by torchvision, which rounds) and torch-fidelity (uint8) see them; real data is\n"
            "8-bit. (The SN-GAN and thesis code truncate instead: half a level darker on average.)\n"
            "IS uses the Inception logits without the fc bias, as the original IS code and\n"
            "torch-fidelity. Without --ref, fid and kid share one pass over the real images.\n"
            "\n"
            "  --metrics LIST    comma-separated, from the list above (default: see above)\n"
            "  -n, --n N         samples to draw, 2..10000000 (default: see above)\n"
            "  --ref STATS       reference statistics from `lipgan fid-stats` (repeatable): used for\n"
            "                    fid if their dimension is 2048, for cfid if it is 128; a file that no\n"
            "                    requested metric uses is refused (exit 2). Its recorded source (data\n"
            "                    shape, feature network) is compared with this generator and network:\n"
            "                    a mismatch is a warning on stderr. A pytorch-fid .npz is refused with\n"
            "                    a command that converts it. Without one, the reference is computed\n"
            "                    from the checkpoint's training data (--data), first --ref-n images.\n"
            "  --ref-n N         real images for a reference computed from data, 2..100000000\n"
            "                    (default 10000); kid always uses --ref-n real images' features\n"
            "  --data PATH       the real data for those references (default: the checkpoint's\n"
            "                    data.path; its config gives the format, split and size)\n"
            "  --inception FILE  Inception-v3 weights (default $LG_INCEPTION_WEIGHTS or\n"
            "                    " LG_CLI_INCEPTION_DEFAULT "; make it with\n"
            "                    tools/convert_inception_weights.py from pytorch-fid's weights)\n"
            "  --classifier FILE classifier weights (default " LG_CLS_DEFAULT_PATH ",\n"
            "                    from `lipgan train-classifier`)\n"
            "  --json            print one JSON object instead of text\n"
            "  --log             append that JSON row to the run's metrics.jsonl (checked writable\n"
            "                    before any work); CKPT must be in a run directory of lipgan train\n"
            "                    (one holding its config.yaml or metrics.jsonl), else exit 2\n"
            "  --seed S          latent noise seed, 0..9223372036854775807 (default 0); also the KID\n"
            "                    subsets\n"
            "  --no-ema          use the trained generator itself (default: the EMA generator when\n"
            "                    the checkpoint has one)\n"
            "  --device D        cpu, cuda, or cuda:N for GPU N, for the generator and the feature\n"
            "                    networks (default cpu; Inception falls back to the cpu with a\n"
            "                    warning if its GPU self-check fails)\n"
            "  --threads T       CPU threads, 0..1024 (default 0 = all cores)\n"
            "  -q, --quiet       no progress lines on stderr (default: progress shown)\n"
            "  -h, --help        this help\n"
            "--n must be at least 10 for is (10 splits). Exit codes: 2 usage (a flag's bad value, also\n"
            "a --ref no metric uses, --n below the IS splits), 3 bad input file (checkpoint, --ref,\n"
            "weights, data; also NaN/Inf in them or in the samples), 4 bad config in the checkpoint,\n"
            "1 runtime error.\n");
}

typedef struct eval_args {
    const char *ckpt, *metrics, *inception, *classifier, *data, *device;
    const char *refs[4];
    int nrefs;
    unsigned m; /* --metrics parsed (0: not given) */
    long long n, ref_n, seed;
    int json, log, use_ema, threads, quiet;
} eval_args;

static int parse(int argc, char **argv, eval_args *a, int *code) {
    memset(a, 0, sizeof *a);
    a->n = -1;
    a->ref_n = 10000;
    a->use_ema = 1;
    a->device = "cpu";
    for (int i = 1; i < argc; i++) {
        const char *s = argv[i];
        if (!strcmp(s, "--help") || !strcmp(s, "-h")) {
            usage(stdout);
            *code = LG_EXIT_OK;
            return 0;
        }
        int takes = !strcmp(s, "--metrics") || !strcmp(s, "--n") || !strcmp(s, "-n") || !strcmp(s, "--ref") ||
                    !strcmp(s, "--ref-n") || !strcmp(s, "--inception") || !strcmp(s, "--classifier") ||
                    !strcmp(s, "--data") || !strcmp(s, "--seed") || !strcmp(s, "--device") || !strcmp(s, "--threads");
        if (takes && i + 1 >= argc) {
            *code = lg_cli_usage_error("eval", "%s needs a value", s);
            return 0;
        }
        lg_status fs = LG_OK;
        if (!strcmp(s, "--metrics")) {
            /* checked now: a bad name is this flag's usage error, before any work */
            a->metrics = argv[++i];
            fs = lg_cli_flag_status(s, a->metrics, lg_eval_parse_metrics(a->metrics, &a->m));
        } else if (!strcmp(s, "--n") || !strcmp(s, "-n")) {
            fs = lg_cli_flag_ll(s, argv[++i], 2, 10000000, &a->n);
        } else if (!strcmp(s, "--ref")) {
            if (a->nrefs == 4) {
                *code = lg_cli_usage_error("eval", "at most 4 --ref files");
                return 0;
            }
            a->refs[a->nrefs++] = argv[++i];
        } else if (!strcmp(s, "--ref-n")) {
            fs = lg_cli_flag_ll(s, argv[++i], 2, 100000000, &a->ref_n);
        } else if (!strcmp(s, "--inception")) a->inception = argv[++i];
        else if (!strcmp(s, "--classifier")) a->classifier = argv[++i];
        else if (!strcmp(s, "--data")) a->data = argv[++i];
        else if (!strcmp(s, "--device")) a->device = argv[++i];
        else if (!strcmp(s, "--seed")) {
            fs = lg_cli_flag_ll(s, argv[++i], 0, LLONG_MAX, &a->seed);
        } else if (!strcmp(s, "--threads")) {
            fs = lg_cli_flag_int(s, argv[++i], 0, 1024, &a->threads);
        } else if (!strcmp(s, "--json")) a->json = 1;
        else if (!strcmp(s, "--log")) a->log = 1;
        else if (!strcmp(s, "--no-ema")) a->use_ema = 0;
        else if (!strcmp(s, "--quiet") || !strcmp(s, "-q")) a->quiet = 1;
        else if (s[0] == '-' && s[1]) {
            *code = lg_cli_usage_error("eval", "unknown option '%s'", s);
            return 0;
        } else if (!a->ckpt) a->ckpt = s;
        else {
            *code = lg_cli_usage_error("eval", "one checkpoint expected, got '%s' and '%s'", a->ckpt, s);
            return 0;
        }
        if (fs != LG_OK) {
            *code = lg_cli_fail("eval", fs);
            return 0;
        }
    }
    if (!a->ckpt) {
        *code = lg_cli_usage_error("eval", "missing CKPT");
        return 0;
    }
    return 1;
}

/* Everything eval holds, freed in one place. */
typedef struct eval_state {
    lg_model *g;
    lg_inception *inc;
    lg_classifier *cls;
    lg_fid_stats fid_ref, cfid_ref;
    int have_fid_ref, have_cfid_ref;
    lg_dataset real;
    int have_real;
    float *kid_ref;   /* (kid_n, 2048) */
    float *x;         /* (n, sample size) */
    const char *fid_from, *cfid_from; /* the --ref that gave each reference, or NULL */
} eval_state;

static void state_free(eval_state *st) {
    lg_model_free(st->g);
    lg_inception_free(st->inc);
    lg_classifier_free(st->cls);
    if (st->have_fid_ref) lg_fid_stats_free(&st->fid_ref);
    if (st->have_cfid_ref) lg_fid_stats_free(&st->cfid_ref);
    if (st->have_real) lg_data_free(&st->real);
    free(st->kid_ref);
    free(st->x);
}

/* The real data of the checkpoint's config (or --data), loaded once. */
static lg_status real_data(eval_state *st, const lg_config *cfg, const eval_args *a) {
    if (st->have_real) return LG_OK;
    const char *path = a->data ? a->data : cfg->data.path;
    lg_status s = lg_cli_load_images(&st->real, cfg->data.format, path, cfg->data.split, cfg->data.image_size,
                                     cfg->data.channels);
    if (s != LG_OK) {
        char msg[768];
        snprintf(msg, sizeof msg, "%s", lg_error_msg());
        return lg_error_set(s, "reference data of the checkpoint: %s; pass --ref STATS (lipgan fid-stats) or "
                               "--data PATH", msg);
    }
    st->have_real = 1;
    return LG_OK;
}

static lg_status resolve_ckpt(const char *path, char *file, size_t cap, int64_t *step) {
    struct stat sb;
    if (stat(path, &sb) == 0 && S_ISDIR(sb.st_mode)) LG_TRY(lg_checkpoint_latest(path, file, cap, NULL));
    else snprintf(file, cap, "%s", path);
    lg_st_file *f;
    lg_status s = lg_st_open(&f, file);
    if (s == LG_ERR_NOT_FOUND)
        return lg_error_set(s, "checkpoint %s: no such file; give a ckpt_*.safetensors written by lipgan train or "
                               "its run directory", file);
    LG_TRY(s);
    const char *v = lg_st_meta(f, "step");
    *step = v ? strtoll(v, NULL, 10) : 0;
    lg_st_close(f);
    return LG_OK;
}

/* The directory of checkpoint file, into dir; the run's metrics.jsonl there
 * into path. */
static void log_path(const char *file, char *dir, size_t dcap, char *path, size_t cap) {
    snprintf(dir, dcap, "%s", file);
    char *slash = strrchr(dir, '/');
    if (slash) *slash = '\0';
    else snprintf(dir, dcap, ".");
    snprintf(path, cap, "%s/metrics.jsonl", dir);
}

/* --log appends to a run's own log: dir must be a run directory, one that
 * holds what `lipgan train` writes first (config.yaml, metrics.jsonl), so
 * that a checkpoint copied elsewhere does not start a metrics.jsonl there
 * (which would make that directory refuse a fresh run). */
static lg_status check_log_run_dir(const char *file, const char *dir) {
    char p[PATH_MAX + 16];
    struct stat sb;
    snprintf(p, sizeof p, "%s/config.yaml", dir);
    if (stat(p, &sb) == 0) return LG_OK;
    snprintf(p, sizeof p, "%s/metrics.jsonl", dir);
    if (stat(p, &sb) == 0) return LG_OK;
    return lg_error_set(LG_CLI_USAGE,
                        "--log appends to the run directory's metrics.jsonl, and checkpoint %s is not in a run "
                        "directory (%s holds no config.yaml or metrics.jsonl of lipgan train); give the run "
                        "directory (or a checkpoint inside it), or drop --log",
                        file, dir);
}

/* --log: can the row be appended? Asked before any work, as it will be done
 * (an existing file opened for appending; else its directory writable). */
static lg_status check_log(const char *path) {
    struct stat sb;
    if (stat(path, &sb) == 0) {
        int fd = open(path, O_WRONLY | O_APPEND);
        if (fd < 0)
            return lg_error_set(LG_ERR_IO, "--log: cannot append to %s: %s; drop --log or make it writable", path,
                                strerror(errno));
        close(fd);
        return LG_OK;
    }
    char dir[PATH_MAX + 16];
    snprintf(dir, sizeof dir, "%s", path);
    char *slash = strrchr(dir, '/');
    if (slash) *slash = '\0';
    if (access(dir, W_OK | X_OK) != 0)
        return lg_error_set(LG_ERR_IO, "--log: cannot create %s: %s; drop --log or make the directory writable",
                            path, strerror(errno));
    return LG_OK;
}

/* One stderr line per mismatch between a --ref file's recorded source and
 * what this eval uses: the data shape, the feature network. Files without
 * lipgan's source (converted ones) are not checked. */
static void check_ref_source(const char *file, const lg_fid_stats *ref, const char *features, int c, int h,
                             int w) {
    const char *src = ref->source, *d = strstr(src, "; data ");
    if (!d) return;
    int rc, rh, rw;
    if (lg_fid_stats_source_shape(src, &rc, &rh, &rw) && (rc != c || rh != h || rw != w))
        fprintf(stderr,
                "lipgan eval: warning: --ref %s holds statistics of %dx%dx%d images (%.*s) but the generator makes "
                "%dx%dx%d; a distance to another data set's statistics means little: make them with lipgan "
                "fid-stats on the training data\n",
                file, rc, rh, rw, (int)strcspn(d + 2, ")") + 1, d + 2, c, h, w);
    if (strlen(features) != (size_t)(d - src) || strncmp(src, features, (size_t)(d - src)) != 0)
        fprintf(stderr,
                "lipgan eval: warning: --ref %s was made with other features (%.*s) than this eval uses (%s); the "
                "values are not comparable: remake it with lipgan fid-stats and these weights\n",
                file, (int)(d - src), src, features);
}

static lg_status run_eval(const eval_args *a, eval_state *st, int *usage_code) {
    char file[PATH_MAX];
    int64_t step = 0;
    LG_TRY(resolve_ckpt(a->ckpt, file, sizeof file, &step));
    const lg_backend *be;
    LG_TRY(lg_cli_device("--device", a->device, &be));
    if (!be->is_device) lg_cpu_set_threads(a->threads);
    lg_config cfg;
    LG_TRY(lg_checkpoint_load_generator(file, be, a->use_ema, &st->g, &cfg));
    const lg_model_spec *spec = lg_model_get_spec(st->g);
    int toy = spec->data_dim == 2;
    int c = toy ? 2 : spec->img_c, h = toy ? 1 : spec->img_size, w = h;
    if (spec->data_dim > 0 && !toy)
        return lg_error_set(LG_ERR_UNSUPPORTED, "checkpoint %s: a %d-D generator has no metrics", file,
                            spec->data_dim);

    unsigned m;
    if (a->metrics) m = a->m;
    else m = toy ? LG_EVAL_TOY : (c == 1 && h == LG_CLS_SIZE) ? (LG_EVAL_CFID | LG_EVAL_CLASSES) : (LG_EVAL_IS | LG_EVAL_FID);
    if (toy && (m & ~(unsigned)LG_EVAL_TOY)) {
        *usage_code = lg_cli_usage_error("eval", "%s is a 2-D toy generator: only --metrics toy applies", file);
        return LG_OK;
    }
    if (!toy && (m & LG_EVAL_TOY)) {
        *usage_code = lg_cli_usage_error("eval", "--metrics toy is for 2-D toy generators; %s makes %dx%dx%d images",
                                         file, c, h, w);
        return LG_OK;
    }
    int64_t n = a->n > 0 ? a->n : toy ? 2500 : 10000;
    /* before any sample goes through a network */
    if ((m & LG_EVAL_IS) && n < LG_IS_SPLITS) {
        *usage_code = lg_cli_usage_error("eval", "--n %lld: is needs at least %d samples (one per split; 50000 is "
                                                 "the convention)",
                                         (long long)n, LG_IS_SPLITS);
        return LG_OK;
    }
    FILE *prog = a->quiet ? NULL : stderr;
    char logdir[PATH_MAX], logp[PATH_MAX + 16];
    log_path(file, logdir, sizeof logdir, logp, sizeof logp);
    if (a->log) LG_TRY(check_log_run_dir(file, logdir));
    if (a->log) LG_TRY(check_log(logp));

    /* the --ref files: each must serve a requested metric, one per metric */
    for (int i = 0; i < a->nrefs; i++) {
        lg_fid_stats s;
        LG_TRY(lg_cli_check_input("--ref", a->refs[i], "a statistics file made by lipgan fid-stats"));
        LG_TRY(lg_fid_stats_load(&s, a->refs[i]));
        const int d = s.dim;
        const unsigned want = lg_eval_ref_metric(d);
        const int is_fid = want == LG_EVAL_FID;
        const char *first = is_fid ? st->fid_from : want ? st->cfid_from : NULL;
        if (want && !first && (m & want)) { /* serves a requested metric, the first for it: kept */
            if (is_fid) st->fid_ref = s, st->have_fid_ref = 1, st->fid_from = a->refs[i];
            else st->cfid_ref = s, st->have_cfid_ref = 1, st->cfid_from = a->refs[i];
            continue;
        }
        lg_fid_stats_free(&s);
        if (!want)
            return lg_error_set(LG_ERR_FORMAT,
                                "--ref %s: features of dimension %d are used by no metric (fid needs Inception's "
                                "%d, cfid the classifier's %d); make the file with lipgan fid-stats",
                                a->refs[i], d, LG_INCEPTION_POOL3_DIM, LG_CLS_FEAT_DIM);
        if (!(m & want)) {
            *usage_code = lg_cli_usage_error(
                "eval", "--ref %s: %s statistics (dimension %d) are for %s, which is not among the metrics computed "
                        "(%s); add %s to --metrics or leave this --ref out",
                a->refs[i], is_fid ? "Inception pool3" : "classifier", d, is_fid ? "fid" : "cfid",
                a->metrics ? a->metrics : "the default ones", is_fid ? "fid" : "cfid");
            return LG_OK;
        }
        if (first) {
            *usage_code = lg_cli_usage_error("eval", "--ref %s: a second %s reference (dimension %d); %s was already "
                                                     "given for it; pass one --ref per metric",
                                             a->refs[i], is_fid ? "fid" : "cfid", d, first);
            return LG_OK;
        }
    }

    lg_eval_inputs in;
    lg_eval_inputs_default(&in);
    in.metrics = m;
    in.seed = (uint64_t)a->seed;
    in.progress = prog;
    /* networks next: a missing weights file should fail before any long work */
    char desc[512];
    if (m & LG_EVAL_NEEDS_INCEPTION) {
        LG_TRY(lg_cli_load_inception(a->inception, be, &st->inc));
        in.inception = st->inc;
        lg_cli_features_desc(st->inc, NULL, desc, sizeof desc);
        if (st->have_fid_ref) check_ref_source(st->fid_from, &st->fid_ref, desc, c, h, w);
    }
    if (m & LG_EVAL_NEEDS_CLASSIFIER) {
        LG_TRY(lg_cli_load_classifier(a->classifier, be, &st->cls));
        in.classifier = st->cls;
        if (c != 1 || (h != 28 && h != 32)) /* (the default metrics pick cfid only where it fits) */
            return lg_error_set(LG_CLI_USAGE,
                                "--metrics %s: cfid and classes use the Fashion-MNIST classifier (1x32x32 images); "
                                "%s makes %dx%dx%d images: use is,fid,kid",
                                a->metrics ? a->metrics : "cfid,classes", file, c, h, w);
        lg_cli_features_desc(NULL, st->cls, desc, sizeof desc);
        if (st->have_cfid_ref) check_ref_source(st->cfid_from, &st->cfid_ref, desc, c, h, w);
    }
    /* kid's real features first: fid's reference, when computed, comes from
     * the same features instead of a second pass through Inception */
    if (m & LG_EVAL_KID) {
        LG_TRY(real_data(st, &cfg, a));
        int64_t rn = a->ref_n < st->real.n ? a->ref_n : st->real.n;
        st->kid_ref = malloc((size_t)rn * LG_INCEPTION_POOL3_DIM * sizeof(float));
        if (!st->kid_ref) return lg_error_set(LG_ERR_NOMEM, "eval: out of memory for KID features");
        if (prog) fprintf(prog, "lipgan eval: kid reference features of %lld real images\n", (long long)rn);
        LG_TRY(lg_eval_features(st->inc, NULL, st->real.x, rn, st->real.c, st->real.h, st->real.w, st->kid_ref, NULL,
                                prog));
        in.kid_ref = st->kid_ref;
        in.kid_ref_n = rn;
    }
    if ((m & LG_EVAL_FID) && !st->have_fid_ref) {
        if (st->kid_ref) {
            if (prog)
                fprintf(prog, "lipgan eval: fid reference from the same %lld real images' features (no --ref given)\n",
                        (long long)in.kid_ref_n);
            LG_TRY(lg_fid_stats_compute(&st->fid_ref, st->kid_ref, in.kid_ref_n, LG_INCEPTION_POOL3_DIM));
        } else {
            LG_TRY(real_data(st, &cfg, a));
            int64_t rn = a->ref_n < st->real.n ? a->ref_n : st->real.n;
            if (prog)
                fprintf(prog, "lipgan eval: fid reference from %lld real images (no --ref given)\n", (long long)rn);
            LG_TRY(lg_eval_stats(st->inc, NULL, st->real.x, rn, st->real.c, st->real.h, st->real.w, prog,
                                 &st->fid_ref));
        }
        st->have_fid_ref = 1;
    }
    if ((m & LG_EVAL_CFID) && !st->have_cfid_ref) {
        LG_TRY(real_data(st, &cfg, a));
        int64_t rn = a->ref_n < st->real.n ? a->ref_n : st->real.n;
        if (prog) fprintf(prog, "lipgan eval: cfid reference from %lld real images (no --ref given)\n", (long long)rn);
        LG_TRY(lg_eval_stats(NULL, st->cls, st->real.x, rn, st->real.c, st->real.h, st->real.w, prog, &st->cfid_ref));
        st->have_cfid_ref = 1;
    }
    if (st->have_fid_ref) in.fid_ref = &st->fid_ref;
    if (st->have_cfid_ref) in.cfid_ref = &st->cfid_ref;
    if (m & LG_EVAL_TOY) {
        lg_toy_kind kind;
        if (!strcmp(cfg.data.format, "ring8")) kind = LG_TOY_RING8;
        else if (!strcmp(cfg.data.format, "grid25")) kind = LG_TOY_GRID25;
        else return lg_error_set(LG_ERR_FORMAT, "checkpoint %s: data format %s is not a known toy", file, cfg.data.format);
        in.n_modes = lg_data_toy_modes(kind, &in.modes, &in.mode_std);
    }

    int64_t ss = lg_generator_sample_size(st->g);
    st->x = malloc((size_t)n * (size_t)ss * sizeof(float)); /* (n, C, H, W) or (n, 2) */
    if (!st->x) return lg_error_set(LG_ERR_NOMEM, "eval: out of memory for %lld samples", (long long)n);
    if (prog) fprintf(prog, "lipgan eval: %s (step %lld): %lld samples, seed %lld\n", file, (long long)step,
                      (long long)n, a->seed);
    LG_TRY(lg_generate(st->g, be, n, (uint64_t)a->seed, st->x));
    lg_eval_result r;
    lg_status es = lg_eval_samples(&in, st->x, n, c, h, w, &r);
    if (es == LG_ERR_FORMAT) {
        /* a reference that is not a covariance: name its file */
        const char *msg = lg_error_msg(), *from = NULL;
        if (!strncmp(msg, "fid reference statistics", 24)) from = st->fid_from;
        if (!strncmp(msg, "cfid reference statistics", 25)) from = st->cfid_from;
        if (from) {
            char m2[900];
            snprintf(m2, sizeof m2, "%s", msg);
            return lg_error_set(es, "--ref %s: %s; remake it with lipgan fid-stats", from, m2);
        }
    }
    LG_TRY(es);

    char *row = (a->json || a->log) ? lg_eval_result_json(&r, step, file) : NULL;
    if ((a->json || a->log) && !row) return lg_error_set(LG_ERR_NOMEM, "eval: out of memory");
    if (a->json) printf("%s\n", row);
    else lg_eval_result_print(&r, stdout);
    lg_status s = LG_OK;
    if (a->log) {
        FILE *f = fopen(logp, "a");
        int bad = !f, err = errno;
        if (f) {
            bad |= fprintf(f, "%s\n", row) < 0;
            if (bad) err = errno;
            if (fclose(f) != 0 && !bad) bad = 1, err = errno;
        }
        if (bad) s = lg_error_set(LG_ERR_IO, "cannot append to %s: %s", logp, strerror(err));
        if (s == LG_OK && prog) fprintf(prog, "lipgan eval: appended to %s\n", logp);
    }
    free(row);
    return s;
}

int lg_cmd_eval(int argc, char **argv) {
    eval_args a;
    int code = LG_EXIT_OK;
    if (!parse(argc, argv, &a, &code)) return code;
    eval_state st;
    memset(&st, 0, sizeof st);
    int usage_code = -1;
    lg_status s = run_eval(&a, &st, &usage_code);
    state_free(&st);
    if (usage_code >= 0) return usage_code;
    return s == LG_OK ? LG_EXIT_OK : lg_cli_fail_input("eval", s);
}
