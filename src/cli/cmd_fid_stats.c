/* lipgan fid-stats: reference statistics (mean and covariance of a data
 * set's features, float64) for FID, written by lg_fid_stats_save. */
#include <dirent.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli/cli.h"
#include "cli/eval_common.h"
#include "lipgan/backend_cpu.h"
#include "lipgan/eval.h"

static void usage(FILE *f) {
    fprintf(f,
            "usage: lipgan fid-stats DATA --out STATS.safetensors [--features inception|classifier] [--n N]\n"
            "                       [--format F] [--split train|test|unlabeled] [--image-size S]\n"
            "                       [--inception FILE] [--classifier FILE] [--device cpu|cuda[:N]]\n"
            "                       [--threads T] [--quiet]\n"
            "\n"
            "Computes the mean (D) and covariance (D, D) in float64 of the features of the first N\n"
            "images of DATA and writes them with N, D and a description of the features and data in\n"
            "the metadata; `lipgan eval --ref STATS` reads them.\n"
            "  --out FILE         the statistics file (required); its name must end in .safetensors\n"
            "  --features inception   Inception-v3 pool3, D = 2048 (default; needs --inception FILE\n"
            "                         or $LG_INCEPTION_WEIGHTS, see tools/convert_inception_weights.py)\n"
            "  --features classifier  lipgan's Fashion-MNIST classifier, D = 128 (1-channel data)\n"
            "  -n, --n N          images to use, >= 2 (default: all; thousands for FID)\n"
            "  --format F         mnist, fashion-mnist, idx (IDX files), cifar10 (binary version),\n"
            "                     stl10 or png (a folder of PNGs, or class folders of them);\n"
            "                     default: detected from DATA's files (train-images-idx3-ubyte* ->\n"
            "                     mnist, data_batch_1.bin / test_batch.bin -> cifar10, *_X.bin ->\n"
            "                     stl10, *.png or class folders of them -> png)\n"
            "  --split S          train, test, or (stl10 only) unlabeled (default train; png: unused)\n"
            "  --image-size S     0..4096: mnist/idx are padded to S (default 32, what `lipgan train`\n"
            "                     generates; 0 keeps 28); cifar10: 0 or 32; stl10: 0 or 96, 48, 32\n"
            "                     (default 0 = 96; use the size the GAN was trained at); png: 0 (the\n"
            "                     default) or the files' own size (PNGs are not resized)\n"
            "  --inception FILE   Inception-v3 weights (default $LG_INCEPTION_WEIGHTS or\n"
            "                     " LG_CLI_INCEPTION_DEFAULT ")\n"
            "  --classifier FILE  classifier weights (default " LG_CLS_DEFAULT_PATH ")\n"
            "  --device D         cpu, cuda, or cuda:N for GPU N: where the feature network runs\n"
            "                     (default cpu; Inception falls back to the cpu with a warning\n"
            "                     if its GPU self-check fails)\n"
            "  --threads T        CPU threads, 0..1024 (default 0 = all cores)\n"
            "  -q, --quiet        no progress lines on stderr (default: progress shown)\n"
            "  -h, --help         this help\n"
            "DATA is a directory (or a file, for cifar10/stl10). CIFAR-10's python (pickle) version is\n"
            "not read (use the binary one). At least 2 images (thousands for FID).\n"
            "--out may replace an earlier statistics file, but never another lipgan file (checkpoint,\n"
            "classifier), a run directory's own file (metrics.jsonl, config.yaml, spectra.bin, .lock,\n"
            "ckpt_*, events.*) or this command's input (exit 2: choose another path).\n"
            "Exit codes: 2 usage (a flag's bad value too, e.g. an --image-size the data cannot take),\n"
            "3 bad or missing data / weights, 1 runtime error.\n");
}

static int has(const char *dir, const char *name) {
    char p[PATH_MAX];
    snprintf(p, sizeof p, "%s/%s", dir, name);
    return access(p, R_OK) == 0;
}

static int is_dir(const char *path) {
    struct stat sb;
    return stat(path, &sb) == 0 && S_ISDIR(sb.st_mode);
}

static int is_png_name(const char *name) {
    size_t n = strlen(name);
    return n > 4 && name[0] != '.' && !strcasecmp(name + n - 4, ".png");
}

/* 1 if dir holds a .png file at its top level; else, if a subfolder holds
 * one, its path in sub (an ImageFolder layout: root/class/x.png). */
static int png_layout(const char *dir, char *sub, size_t cap) {
    sub[0] = '\0';
    DIR *d = opendir(dir);
    if (!d) return 0;
    int top = 0;
    for (struct dirent *e; !top && (e = readdir(d));) {
        if (is_png_name(e->d_name)) top = 1;
        else if (!sub[0] && e->d_name[0] != '.') {
            char p[PATH_MAX];
            snprintf(p, sizeof p, "%s/%s", dir, e->d_name);
            DIR *s = is_dir(p) ? opendir(p) : NULL;
            for (struct dirent *f; s && (f = readdir(s));)
                if (is_png_name(f->d_name)) {
                    snprintf(sub, cap, "%s", p);
                    break;
                }
            if (s) closedir(s);
        }
    }
    closedir(d);
    return top;
}

/* The --format of DATA, detected from its files, into *fmt; an error that
 * says what was found and what to do if none fits. */
static lg_status detect_format(const char *path, const char **fmt) {
    struct stat sb;
    *fmt = NULL;
    if (stat(path, &sb) != 0)
        return lg_error_set(LG_ERR_NOT_FOUND, "data %s: no such file or directory; give a data set directory", path);
    if (!S_ISDIR(sb.st_mode)) {
        size_t n = strlen(path);
        if (n >= 6 && !strcmp(path + n - 6, "_X.bin")) *fmt = "stl10";
        else if (n >= 4 && !strcasecmp(path + n - 4, ".bin")) *fmt = "cifar10";
        if (*fmt) return LG_OK;
        return lg_error_set(LG_ERR_NOT_FOUND,
                            "data %s: a file of unknown kind (a file is read as cifar10 if it ends in .bin, stl10 if "
                            "in _X.bin); give a data set directory or --format",
                            path);
    }
    /* Fashion-MNIST and MNIST have the same file names: name it only when the path does */
    if (has(path, "train-images-idx3-ubyte") || has(path, "train-images-idx3-ubyte.gz") ||
        has(path, "t10k-images-idx3-ubyte") || has(path, "t10k-images-idx3-ubyte.gz"))
        *fmt = strcasestr(path, "fashion") ? "fashion-mnist" : strcasestr(path, "mnist") ? "mnist" : "idx";
    else if (has(path, "data_batch_1.bin") || has(path, "test_batch.bin")) *fmt = "cifar10";
    else if (has(path, "train_X.bin") || has(path, "test_X.bin") || has(path, "unlabeled_X.bin")) *fmt = "stl10";
    if (*fmt) return LG_OK;
    static const char *const bin_hint =
        "lipgan reads the CIFAR-10 binary version: extract cifar-10-binary.tar.gz and give its cifar-10-batches-bin "
        "directory";
    if (has(path, "data_batch_1") || has(path, "batches.meta") || has(path, "cifar-10-batches-py/data_batch_1")) {
        if (has(path, "cifar-10-batches-bin/data_batch_1.bin"))
            return lg_error_set(LG_ERR_FORMAT,
                                "data %s: the CIFAR-10 python (pickle) version; the binary version is in "
                                "%s/cifar-10-batches-bin: give that directory",
                                path, path);
        return lg_error_set(LG_ERR_FORMAT, "data %s: the CIFAR-10 python (pickle) version, which lipgan does not "
                                           "read; %s",
                            path, bin_hint);
    }
    if (has(path, "cifar-10-batches-bin/data_batch_1.bin") || has(path, "cifar-10-batches-bin/test_batch.bin"))
        return lg_error_set(LG_ERR_NOT_FOUND, "data %s: the CIFAR-10 files are in %s/cifar-10-batches-bin: give that "
                                              "directory",
                            path, path);
    /* PNGs at the top, or an ImageFolder tree (root/class/x.png), which the
     * png loader reads as class folders (lipgan/data.h) */
    char sub[PATH_MAX];
    if (png_layout(path, sub, sizeof sub) || sub[0]) {
        *fmt = "png";
        return LG_OK;
    }
    return lg_error_set(LG_ERR_NOT_FOUND,
                        "data %s: no data set files recognized (train-images-idx3-ubyte[.gz] / t10k-*: mnist; "
                        "data_batch_1.bin / test_batch.bin: cifar10; *_X.bin: stl10; *.png or class folders of "
                        "them: png); give the data set's directory, or --format",
                        path);
}

static int known_format(const char *f) {
    static const char *const k[] = {"mnist", "fashion-mnist", "idx", "cifar10", "stl10", "png"};
    for (size_t i = 0; i < sizeof k / sizeof k[0]; i++)
        if (!strcmp(f, k[i])) return 1;
    return 0;
}

/* --split and --image-size against the format, where the format alone
 * decides (mnist/idx and png sizes depend on the files: load_data) */
static lg_status check_split_size(const char *format, const char *split, int size, const char *size_shown) {
    if (!strcmp(split, "unlabeled") && strcmp(format, "stl10") != 0 && strcmp(format, "png") != 0)
        return lg_error_set(LG_CLI_USAGE, "--split unlabeled: only stl10 has an unlabeled split; %s has train and "
                                          "test",
                            format);
    if (!strcmp(format, "cifar10") && size != 0 && size != 32)
        return lg_error_set(LG_CLI_USAGE, "--image-size %s: cifar10 images are 32x32 and are not resized; use 0 or 32",
                            size_shown);
    if (!strcmp(format, "stl10") && size != 0 && size != 96 && size != 48 && size != 32)
        return lg_error_set(LG_CLI_USAGE, "--image-size %s: stl10 images are 96x96 and are resized only to 48 or "
                                          "32; use 0 (96), 48 or 32",
                            size_shown);
    return LG_OK;
}

/* lg_cli_load_images, with a rejected size named as --image-size's usage
 * error. The flags were checked already; what is left of LG_ERR_INVALID_ARG
 * is a size these files cannot take (mnist pads to at least their side, png
 * keeps its own), or the files themselves: the same load at their own size
 * (0) tells which, on this error path only. */
static lg_status load_data(lg_dataset *d, const char *format, const char *data, const char *split, int size,
                           int channels, const char *size_shown) {
    lg_status s = lg_cli_load_images(d, format, data, split, size, channels);
    if (s != LG_ERR_INVALID_ARG) return s;
    char msg[1024]; /* lg_error_set must not read the buffer it writes */
    snprintf(msg, sizeof msg, "%s", lg_error_msg());
    lg_status s0 = LG_ERR_INVALID_ARG;
    if (size != 0) {
        lg_dataset probe;
        s0 = lg_cli_load_images(&probe, format, data, split, 0, channels);
        lg_data_free(&probe);
    }
    if (s0 == LG_OK) return lg_error_set(LG_CLI_USAGE, "--image-size %s: %s", size_shown, msg);
    return lg_error_set(LG_ERR_FORMAT, "%s", msg); /* the data's, not a flag's */
}

int lg_cmd_fid_stats(int argc, char **argv) {
    const char *data = NULL, *out = NULL, *features = "inception", *format = NULL, *split = "train";
    const char *inc_path = NULL, *cls_path = NULL, *device = "cpu";
    long long n = 0;
    const char *size_flag = NULL; /* --image-size as given */
    int size = -1, threads = 0, quiet = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            usage(stdout);
            return LG_EXIT_OK;
        }
        int takes = !strcmp(a, "--out") || !strcmp(a, "--features") || !strcmp(a, "--n") || !strcmp(a, "-n") ||
                    !strcmp(a, "--format") || !strcmp(a, "--split") || !strcmp(a, "--image-size") ||
                    !strcmp(a, "--inception") || !strcmp(a, "--classifier") || !strcmp(a, "--threads") ||
                    !strcmp(a, "--device");
        if (takes && i + 1 >= argc) return lg_cli_usage_error("fid-stats", "%s needs a value", a);
        lg_status fs = LG_OK;
        if (!strcmp(a, "--out")) out = argv[++i];
        else if (!strcmp(a, "--features")) {
            features = argv[++i];
            if (strcmp(features, "inception") && strcmp(features, "classifier"))
                return lg_cli_usage_error("fid-stats", "--features must be inception or classifier, not '%s'", features);
        } else if (!strcmp(a, "--n") || !strcmp(a, "-n")) {
            fs = lg_cli_flag_ll(a, argv[++i], 2, LLONG_MAX, &n);
        } else if (!strcmp(a, "--format")) {
            format = argv[++i];
            if (!known_format(format))
                return lg_cli_usage_error("fid-stats", "--format %s: unknown; use mnist, fashion-mnist, idx, cifar10, "
                                                       "stl10 or png",
                                          format);
        } else if (!strcmp(a, "--split")) {
            split = argv[++i];
            if (strcmp(split, "train") && strcmp(split, "test") && strcmp(split, "unlabeled"))
                return lg_cli_usage_error("fid-stats", "--split %s: use train, test or unlabeled", split);
        } else if (!strcmp(a, "--image-size")) {
            size_flag = argv[++i];
            fs = lg_cli_flag_int(a, size_flag, 0, 4096, &size);
        } else if (!strcmp(a, "--inception")) inc_path = argv[++i];
        else if (!strcmp(a, "--classifier")) cls_path = argv[++i];
        else if (!strcmp(a, "--device")) device = argv[++i];
        else if (!strcmp(a, "--threads")) {
            fs = lg_cli_flag_int(a, argv[++i], 0, 1024, &threads);
        } else if (!strcmp(a, "--quiet") || !strcmp(a, "-q")) quiet = 1;
        else if (a[0] == '-' && a[1]) return lg_cli_usage_error("fid-stats", "unknown option '%s'", a);
        else if (!data) data = a;
        else return lg_cli_usage_error("fid-stats", "one DATA path expected, got '%s' and '%s'", data, a);
        if (fs != LG_OK) return lg_cli_fail("fid-stats", fs);
    }
    if (!data) return lg_cli_usage_error("fid-stats", "missing DATA");
    if (!out) return lg_cli_usage_error("fid-stats", "missing --out STATS.safetensors");
    lg_status es = lg_cli_check_ext("--out", out, ".safetensors", "safetensors format (what lipgan eval --ref reads)");
    if (es != LG_OK) return lg_cli_fail("fid-stats", es);
    int use_cls = !strcmp(features, "classifier");
    /* before the network, the data and the features, not after; never over
     * an input (DATA as a file, the weights) or a run's files */
    char wbuf[PATH_MAX + 16];
    const char *inputs[2] = {data, lg_cli_weights_path(use_cls, use_cls ? cls_path : inc_path, wbuf, sizeof wbuf)};
    lg_status ws = lg_cli_check_output("--out", out, ".safetensors", inputs, 2, LG_FID_STATS_FORMAT);
    if (ws != LG_OK) return lg_cli_fail("fid-stats", ws);
    if (access(data, F_OK) != 0)
        return lg_cli_fail("fid-stats", lg_error_set(LG_ERR_NOT_FOUND, "data %s: no such file or directory; give "
                                                                       "a data set directory", data));
    const lg_backend *be;
    lg_status ds = lg_cli_device("--device", device, &be);
    if (ds != LG_OK) return lg_cli_fail("fid-stats", ds);
    lg_cpu_set_threads(threads);

    /* the network first, so a missing weights file fails before loading data */
    lg_inception *inc = NULL;
    lg_classifier *cls = NULL;
    lg_status s = use_cls ? lg_cli_load_classifier(cls_path, be, &cls) : lg_cli_load_inception(inc_path, be, &inc);
    if (s != LG_OK) return lg_cli_fail("fid-stats", s);
    if (!format) s = detect_format(data, &format);
    if (s != LG_OK) {
        lg_inception_free(inc);
        lg_classifier_free(cls);
        return lg_cli_fail("fid-stats", s);
    }
    int mnist = !strcmp(format, "mnist") || !strcmp(format, "fashion-mnist") || !strcmp(format, "idx");
    if (size < 0) size = mnist ? LG_CLS_SIZE : 0;
    char size_shown[64]; /* --image-size in messages, also when it is the default */
    if (size_flag) snprintf(size_shown, sizeof size_shown, "%s", size_flag);
    else snprintf(size_shown, sizeof size_shown, "%d (the default for %s)", size, format);
    s = check_split_size(format, split, size, size_shown);
    lg_dataset d;
    memset(&d, 0, sizeof d);
    if (s == LG_OK) s = load_data(&d, format, data, split, size, use_cls ? 1 : 3, size_shown);
    if (s == LG_OK && use_cls && (d.c != 1 || d.h != d.w || (d.h != 28 && d.h != 32)))
        s = lg_error_set(LG_CLI_USAGE,
                         "--features classifier: the classifier takes 1x28x28 or 1x32x32 images, data %s has "
                         "%dx%dx%d; use --features inception",
                         data, d.c, d.h, d.w);
    int64_t use = (n > 0 && n < d.n) ? n : d.n;
    if (s == LG_OK && use < 2)
        s = lg_error_set(LG_ERR_FORMAT,
                         "data %s: %lld image(s); a covariance needs at least 2 (and an FID reference thousands: "
                         "10000 or 50000 are usual)",
                         data, (long long)use);
    if (s == LG_OK && n > d.n && !quiet)
        fprintf(stderr, "lipgan fid-stats: --n %lld but %s has %lld images; using all\n", n, data, (long long)d.n);
    lg_fid_stats st;
    memset(&st, 0, sizeof st);
    if (s == LG_OK) {
        if (!quiet)
            fprintf(stderr, "lipgan fid-stats: %lld images of %s (%s, %s, %dx%dx%d), %s features\n", (long long)use,
                    data, format, split, d.c, d.h, d.w, features);
        s = lg_eval_stats(inc, cls, d.x, use, d.c, d.h, d.w, quiet ? NULL : stderr, &st);
    }
    if (s == LG_OK) {
        /* eval compares the features part and the shape with what it uses
         * (lg_cli_features_desc, lg_fid_stats_source_shape) */
        char source[1024], desc[512];
        lg_cli_features_desc(inc, cls, desc, sizeof desc);
        snprintf(source, sizeof source, "%s; data %s (%s, %s, %dx%dx%d), first %lld of %lld images", desc, data,
                 format, split, d.c, d.h, d.w, (long long)use, (long long)d.n);
        s = lg_fid_stats_save(&st, out, source);
    }
    if (s == LG_OK)
        printf("FID statistics of %lld images (dimension %d) -> %s\n", (long long)use, st.dim, out);
    lg_fid_stats_free(&st);
    lg_data_free(&d);
    lg_inception_free(inc);
    lg_classifier_free(cls);
    return s == LG_OK ? LG_EXIT_OK : lg_cli_fail_input("fid-stats", s);
}
