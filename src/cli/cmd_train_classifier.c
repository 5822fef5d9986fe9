/* lipgan train-classifier: trains the Fashion-MNIST classifier used by
 * `lipgan eval` for download-free metrics (lipgan/classifier.h). */
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
            "                              [--batch B] [--lr LR] [--threads T] [--quiet]\n"
            "\n"
            "Trains the small CNN of `lipgan eval --metrics cfid,classes` on Fashion-MNIST\n"
            "(DIR holds train-images-idx3-ubyte[.gz] etc., padded 28 -> 32), with Adam and\n"
            "a learning rate decayed linearly to 0, then measures its accuracy on the whole\n"
            "test set and writes it (and this command) into FILE's metadata.\n"
            "Defaults: --epochs 10 --seed 1 --batch 128 --lr 0.001; --threads 0 = all cores.\n"
            "The result is bitwise reproducible for the same thread count. The shipped\n"
            "models/fmnist_classifier.safetensors was made with\n"
            "  lipgan train-classifier --data /usr/share/datasets/fashion-mnist \\\n"
            "      --out models/fmnist_classifier.safetensors --threads 1\n");
}

int lg_cmd_train_classifier(int argc, char **argv) {
    const char *data = NULL, *out = NULL;
    lg_classifier_train_opts o;
    lg_classifier_train_opts_default(&o);
    int threads = 0, quiet = 0;
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
                    !strcmp(a, "--batch") || !strcmp(a, "--lr") || !strcmp(a, "--threads");
        if (takes && i + 1 >= argc) return lg_cli_usage_error("train-classifier", "%s needs a value", a);
        char *end = NULL;
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
        if (!strcmp(a, "--data")) {
            data = v;
        } else if (!strcmp(a, "--out")) {
            out = v;
        } else if (!strcmp(a, "--epochs")) {
            long e = strtol(v, &end, 10);
            if (*end || e < 1 || e > 1000) return lg_cli_usage_error("train-classifier", "--epochs must be 1..1000");
            o.epochs = (int)e;
        } else if (!strcmp(a, "--seed")) {
            long long sd = strtoll(v, &end, 10);
            if (*end || sd < 0) return lg_cli_usage_error("train-classifier", "--seed must be a non-negative integer");
            o.seed = (uint64_t)sd;
        } else if (!strcmp(a, "--batch")) {
            long b = strtol(v, &end, 10);
            if (*end || b < 1 || b > 65536) return lg_cli_usage_error("train-classifier", "--batch must be 1..65536");
            o.batch = (int)b;
        } else if (!strcmp(a, "--lr")) {
            double lr = strtod(v, &end);
            if (*end || !(lr > 0.0 && lr < 1.0)) return lg_cli_usage_error("train-classifier", "--lr must be in (0, 1)");
            o.lr = (float)lr;
        } else {
            long t = strtol(v, &end, 10);
            if (*end || t < 0 || t > 1024) return lg_cli_usage_error("train-classifier", "--threads must be 0..1024");
            threads = (int)t;
        }
    }
    if (!data) return lg_cli_usage_error("train-classifier", "missing --data DIR");
    if (!out) return lg_cli_usage_error("train-classifier", "missing --out FILE.safetensors");
    /* before the data and the epochs of training, not after */
    lg_status ws = lg_cli_check_output("--out", out, NULL, 0, LG_CLS_FORMAT);
    if (ws != LG_OK) return lg_cli_fail("train-classifier", ws);
    lg_cpu_set_threads(threads);

    lg_dataset train, test;
    memset(&test, 0, sizeof test);
    lg_status s = lg_data_load_mnist_dir(&train, data, LG_SPLIT_TRAIN, LG_CLS_SIZE);
    if (s != LG_OK) return lg_cli_fail("train-classifier", s);
    s = lg_data_load_mnist_dir(&test, data, LG_SPLIT_TEST, LG_CLS_SIZE);
    lg_classifier *c = NULL;
    if (s == LG_OK) s = lg_classifier_create(&c, NULL, o.seed);
    if (s == LG_OK) {
        if (!quiet)
            fprintf(stderr, "lipgan train-classifier: %lld training images, %lld parameters, %d epochs, %d threads\n",
                    (long long)train.n, (long long)lg_classifier_num_params(c), o.epochs, lg_cpu_threads());
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
