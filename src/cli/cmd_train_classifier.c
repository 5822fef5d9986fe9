/* lipgan train-classifier: trains the Fashion-MNIST classifier used by
 * `lipgan eval` for download-free metrics (lipgan/classifier.h). */
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "lipgan/backend_cpu.h"
#include "lipgan/classifier.h"
#include "lipgan/data.h"

static void usage(FILE *f) {
    fprintf(f,
            "usage: lipgan train-classifier --data DIR --out FILE.safetensors [--epochs N] [--seed S]\n"
            "                              [--batch B] [--lr LR] [--device cpu|cuda[:N]] [--threads T]\n"
            "                              [--quiet]\n"
            "\n"
            "Trains the small CNN of `lipgan eval --metrics cfid,classes` on Fashion-MNIST\n"
            "(DIR holds train-images-idx3-ubyte[.gz] etc., padded 28 -> 32), with Adam and\n"
            "a learning rate decayed linearly to 0, then measures its accuracy on the whole\n"
            "test set and writes it (and this command) into FILE's metadata.\n"
            "  --data DIR        the Fashion-MNIST directory (required)\n"
            "  --out FILE        the weights file to write (required), ending in .safetensors; it may\n"
            "                    replace an earlier classifier, never another lipgan file (exit 2)\n"
            "  --epochs N        1..1000 (default 10)\n"
            "  --seed S          initialization and shuffling seed, 0..9223372036854775807 (default 1)\n"
            "  --batch B         1..65536 (default 128)\n"
            "  --lr LR           Adam's initial learning rate, in (0, 1) (default 0.001)\n"
            "  --device D        cpu, cuda, or cuda:N for GPU N (default cpu)\n"
            "  --threads T       CPU threads, 0..1024 (default 0 = all cores)\n"
            "  -q, --quiet       no progress lines on stderr (default: one per epoch, with the test\n"
            "                    accuracy)\n"
            "  -h, --help        this help\n"
            "The result is bitwise reproducible for the same thread count (on cpu). The shipped\n"
            "models/fmnist_classifier.safetensors was made with\n"
            "  lipgan train-classifier --data /usr/share/datasets/fashion-mnist \\\n"
            "      --out models/fmnist_classifier.safetensors --threads 1\n"
            "Exit codes: 0 written, 2 usage (a bad flag value, an --out above), 3 missing or bad data,\n"
            "1 runtime error.\n");
}

int lg_cmd_train_classifier(int argc, char **argv) {
    const char *data = NULL, *out = NULL;
    lg_classifier_train_opts o;
    lg_classifier_train_opts_default(&o);
    int threads = 0, quiet = 0;
    const char *device = "cpu";
    char command[512];
    size_t used = (size_t)snprintf(command, sizeof command, "lipgan train-classifier");
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            usage(stdout);
            return LG_EXIT_OK;
        }
        if (used < sizeof command) used += (size_t)snprintf(command + used, sizeof command - used, " %s", a);
        int takes = !strcmp(a, "--data") || !strcmp(a, "--out") || !strcmp(a, "--epochs") || !strcmp(a, "--seed") ||
                    !strcmp(a, "--batch") || !strcmp(a, "--lr") || !strcmp(a, "--threads") ||
                    !strcmp(a, "--device");
        if (takes && i + 1 >= argc) return lg_cli_usage_error("train-classifier", "%s needs a value", a);
        if (!strcmp(a, "--quiet") || !strcmp(a, "-q")) {
            quiet = 1;
            continue;
        }
        if (!takes) {
            if (a[0] == '-') return lg_cli_usage_error("train-classifier", "unknown option '%s'", a);
            return lg_cli_usage_error("train-classifier", "unexpected argument '%s'", a);
        }
        const char *v = argv[++i];
        if (used < sizeof command) used += (size_t)snprintf(command + used, sizeof command - used, " %s", v);
        lg_status fs = LG_OK;
        long long seed;
        double lr;
        if (!strcmp(a, "--data")) {
            data = v;
        } else if (!strcmp(a, "--out")) {
            out = v;
        } else if (!strcmp(a, "--epochs")) {
            fs = lg_cli_flag_int(a, v, 1, 1000, &o.epochs);
        } else if (!strcmp(a, "--seed")) {
            if ((fs = lg_cli_flag_ll(a, v, 0, LLONG_MAX, &seed)) == LG_OK) o.seed = (uint64_t)seed;
        } else if (!strcmp(a, "--batch")) {
            fs = lg_cli_flag_int(a, v, 1, 65536, &o.batch);
        } else if (!strcmp(a, "--lr")) {
            if ((fs = lg_cli_flag_real(a, v, 0.0, 1.0, &lr)) == LG_OK) o.lr = (float)lr;
        } else if (!strcmp(a, "--device")) {
            device = v;
        } else {
            fs = lg_cli_flag_int(a, v, 0, 1024, &threads);
        }
        if (fs != LG_OK) return lg_cli_fail("train-classifier", fs);
    }
    if (!data) return lg_cli_usage_error("train-classifier", "missing --data DIR");
    if (!out) return lg_cli_usage_error("train-classifier", "missing --out FILE.safetensors");
    /* before the data and the epochs of training, not after */
    lg_status ws = lg_cli_check_ext("--out", out, ".safetensors",
                                    "safetensors format (what eval.classifier and eval --classifier read)");
    if (ws == LG_OK) ws = lg_cli_check_output("--out", out, ".safetensors", NULL, 0, LG_CLS_FORMAT);
    if (ws != LG_OK) return lg_cli_fail("train-classifier", ws);
    const lg_backend *be;
    ws = lg_cli_device("--device", device, &be);
    if (ws != LG_OK) return lg_cli_fail("train-classifier", ws);
    lg_cpu_set_threads(threads);

    lg_dataset train, test;
    memset(&test, 0, sizeof test);
    lg_status s = lg_data_load_mnist_dir(&train, data, LG_SPLIT_TRAIN, LG_CLS_SIZE);
    if (s != LG_OK) return lg_cli_fail("train-classifier", s);
    s = lg_data_load_mnist_dir(&test, data, LG_SPLIT_TEST, LG_CLS_SIZE);
    lg_classifier *c = NULL;
    if (s == LG_OK) s = lg_classifier_create(&c, be, o.seed);
    if (s == LG_OK) {
        if (!quiet)
            fprintf(stderr, "lipgan train-classifier: %lld training images, %lld parameters, %d epochs, on %s (%d CPU "
                            "threads)\n",
                    (long long)train.n, (long long)lg_classifier_num_params(c), o.epochs, device, lg_cpu_threads());
        o.progress = quiet ? NULL : stderr;
        if (!quiet) o.test = &test; /* accuracy after each epoch, for the progress lines */
        s = lg_classifier_train(c, &train, &o);
    }
    double acc = 0.0;
    if (s == LG_OK) s = lg_classifier_accuracy(c, &test, 0, &acc);
    if (s == LG_OK) {
        lg_classifier_info info = *lg_classifier_get_info(c);
        info.test_accuracy = acc;
        info.test_n = test.n;
        snprintf(info.command, sizeof info.command, "%s", command);
        lg_classifier_set_info(c, &info);
        s = lg_classifier_save(c, out);
    }
    if (s == LG_OK)
        printf("test accuracy %.4f on %lld images; weights -> %s\n", acc, (long long)test.n, out);
    lg_classifier_free(c);
    lg_data_free(&train);
    lg_data_free(&test);
    return s == LG_OK ? LG_EXIT_OK : lg_cli_fail("train-classifier", s);
}
