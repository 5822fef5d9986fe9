/* The Fashion-MNIST classifier (lipgan/classifier.h) and the evaluation
 * glue (lipgan/eval.h):
 *  - a few training steps on a tiny subset lower the loss, and training is
 *    bitwise reproducible;
 *  - the shipped models/fmnist_classifier.safetensors classifies the first
 *    1000 test images with >= 85% accuracy (its metadata records the full
 *    test-set accuracy, >= 88%);
 *  - class metrics through lg_eval_samples on images the classifier gets
 *    right: all 10 classes balanced -> 10 covered, KL 0; two classes ->
 *    2 covered, KL log 5; cFID of a set against its own statistics ~ 0 and
 *    far below the cFID of noise;
 *  - save/load round trip, errors (missing file says how to make one, wrong
 *    format, wrong shapes, NaN pixels), metric-list parsing, JSON rows.
 * Needs /usr/share/datasets/fashion-mnist (apt package dataset-fashion-mnist,
 * installed by tools/setup.sh); checks that need it are skipped with a
 * message when it is absent. */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "lg_test.h"
#include "lipgan/backend_cpu.h"
#include "lipgan/classifier.h"
#include "lipgan/data.h"
#include "lipgan/eval.h"
#include "lipgan/safetensors.h"

#define FMNIST "/usr/share/datasets/fashion-mnist"

static lg_dataset g_test;  /* t10k, padded to 32; n == 0 if absent */
static char g_tmp[512];

static int have_data(const char *what) {
    if (g_test.n > 0) return 1;
    printf("  SKIP %s: %s not present (apt package dataset-fashion-mnist)\n", what, FMNIST);
    return 0;
}

/* The first n images of g_test as a labelled dataset view (not owned). */
static lg_dataset subset(int64_t n) {
    lg_dataset d = g_test;
    d.n = n;
    return d;
}

typedef struct losses {
    float v[64];
    int n;
} losses;

static void on_step(int64_t step, float loss, void *user) {
    losses *l = user;
    if (l->n < 64) l->v[l->n++] = loss;
    (void)step;
}

static void test_training_lowers_loss(void) {
    if (!have_data("training steps")) return;
    lg_dataset tiny = subset(256);
    float out[2][8 * LG_CLS_CLASSES];
    for (int run = 0; run < 2; run++) {
        lg_classifier *c;
        CHECK_OK(lg_classifier_create(&c, NULL, 7));
        lg_classifier_train_opts o;
        lg_classifier_train_opts_default(&o);
        o.batch = 32;
        o.max_steps = 25;
        o.lr = 2e-3f;
        o.seed = 3;
        losses l = {{0}, 0};
        o.on_step = on_step;
        o.user = &l;
        CHECK_OK(lg_classifier_train(c, &tiny, &o));
        CHECK(l.n == 25, "25 steps reported, got %d", l.n);
        double first = (l.v[0] + l.v[1] + l.v[2] + l.v[3]) / 4, last = 0;
        for (int i = 21; i < 25; i++) last += l.v[i] / 4;
        CHECK(first > 2.0 && first < 2.6, "initial loss %.3f should be near log 10 = 2.30", first);
        CHECK(last < 0.75 * first, "loss did not decrease: first steps %.4f, last steps %.4f", first, last);
        CHECK_OK(lg_classifier_run(c, g_test.x + 300 * 32 * 32, 8, 1, 32, 32, NULL, out[run]));
        lg_classifier_free(c);
    }
    CHECK(memcmp(out[0], out[1], sizeof out[0]) == 0, "two identical training runs gave different weights");
}

static void test_shipped_weights(void) {
    const char *path = getenv("LG_CLASSIFIER") ? getenv("LG_CLASSIFIER") : LG_CLS_DEFAULT_PATH;
    lg_classifier *c = NULL;
    lg_status s = lg_classifier_load(&c, path, NULL);
    CHECK(s == LG_OK, "cannot load the shipped classifier %s: %s (run from the repository root)", path,
          lg_error_msg());
    if (s != LG_OK) return;
    const lg_classifier_info *in = lg_classifier_get_info(c);
    CHECK(in->test_accuracy >= 0.88 && in->test_n == 10000, "metadata: test accuracy %.4f on %lld images",
          in->test_accuracy, (long long)in->test_n);
    CHECK(strstr(in->command, "train-classifier") != NULL, "metadata records the command: '%s'", in->command);
    CHECK(lg_classifier_num_params(c) == 188234, "parameters %lld", (long long)lg_classifier_num_params(c));
    if (have_data("shipped weights accuracy")) {
        double acc = 0;
        lg_dataset d = subset(1000);
        CHECK_OK(lg_classifier_accuracy(c, &d, 1000, &acc));
        printf("  shipped classifier: %.1f%% on the first 1000 test images (metadata: %.2f%% on %lld)\n", 100 * acc,
               100 * in->test_accuracy, (long long)in->test_n);
        CHECK(acc >= 0.85, "accuracy %.4f on the first 1000 test images, want >= 0.85", acc);

        /* 28x28 input is padded like the loader: same logits as the padded 32x32 image */
        lg_dataset d28;
        if (lg_data_load_idx(&d28, FMNIST "/t10k-images-idx3-ubyte.gz", NULL, 10, 0) == LG_OK) {
            float l28[4 * 10], l32[4 * 10];
            CHECK_OK(lg_classifier_run(c, d28.x, 4, 1, 28, 28, NULL, l28));
            CHECK_OK(lg_classifier_run(c, g_test.x, 4, 1, 32, 32, NULL, l32));
            CHECK(memcmp(l28, l32, sizeof l28) == 0, "28x28 and padded 32x32 input differ");
            lg_data_free(&d28);
        }
    }
    lg_classifier_free(c);
}

/* Images (from the first 1000 test images, whose predictions are pred)
 * that the classifier gets right: per_class of each class in
 * classes[0..nc), in class order, copied to x (N,1,32,32). */
static int64_t pick_correct(const int *pred, const int *classes, int nc, int per_class, float *x) {
    const int64_t S = 32 * 32, N = 1000;
    int64_t k = 0;
    for (int j = 0; j < nc; j++) {
        int got = 0;
        for (int64_t i = 0; i < N && got < per_class; i++)
            if (g_test.y[i] == classes[j] && pred[i] == classes[j]) {
                memcpy(x + k * S, g_test.x + i * S, S * sizeof(float));
                k++;
                got++;
            }
        CHECK(got == per_class, "class %d: only %d correctly classified images", classes[j], got);
    }
    return k;
}

static void test_class_metrics(void) {
    if (!have_data("class metrics")) return;
    lg_classifier *c = NULL;
    CHECK_OK(lg_classifier_load(&c, getenv("LG_CLASSIFIER") ? getenv("LG_CLASSIFIER") : LG_CLS_DEFAULT_PATH, NULL));
    if (!c) return;
    float *x = malloc((size_t)200 * 32 * 32 * sizeof(float));
    LG_ASSERT(x);
    const int all[10] = {0, 1, 2, 3, 4, 5, 6, 7, 8, 9}, two[2] = {3, 7};
    float *logits = malloc((size_t)1000 * 10 * sizeof(float)); /* (1000,10) */
    int *pred = malloc((size_t)1000 * sizeof(int));
    LG_ASSERT(logits && pred);
    CHECK_OK(lg_classifier_run(c, g_test.x, 1000, 1, 32, 32, NULL, logits));
    lg_argmax_rows(logits, 1000, 10, pred);

    lg_eval_inputs in;
    lg_eval_inputs_default(&in);
    in.metrics = LG_EVAL_CLASSES;
    in.classifier = c;
    lg_eval_result r;
    int64_t n = pick_correct(pred, all, 10, 20, x);
    CHECK_OK(lg_eval_samples(&in, x, n, 1, 32, 32, &r));
    CHECK(r.done == LG_EVAL_CLASSES && r.classes.n == 200 && r.classes.k == 10, "done %x n %lld k %d", r.done,
          (long long)r.classes.n, r.classes.k);
    CHECK(r.classes.classes_covered == 10 && fabs(r.classes.kl_uniform) < 1e-12, "balanced: covered %d, KL %g",
          r.classes.classes_covered, r.classes.kl_uniform);
    for (int k = 0; k < 10; k++) CHECK(r.class_counts[k] == 20, "class %d count %lld", k, (long long)r.class_counts[k]);

    n = pick_correct(pred, two, 2, 30, x);
    CHECK_OK(lg_eval_samples(&in, x, n, 1, 32, 32, &r));
    CHECK(r.classes.classes_covered == 2 && fabs(r.classes.kl_uniform - log(5.0)) < 1e-9,
          "two classes: covered %d, KL %.12f, want log 5 = %.12f", r.classes.classes_covered, r.classes.kl_uniform,
          log(5.0));
    CHECK(r.class_counts[3] == 30 && r.class_counts[7] == 30, "counts %lld %lld", (long long)r.class_counts[3],
          (long long)r.class_counts[7]);

    /* cFID: a set against its own statistics ~ 0; against noise large */
    lg_fid_stats ref;
    CHECK_OK(lg_eval_stats(NULL, c, g_test.x, 500, 1, 32, 32, NULL, &ref));
    CHECK(ref.n == 500 && ref.dim == LG_CLS_FEAT_DIM, "stats n %lld dim %d", (long long)ref.n, ref.dim);
    in.metrics = LG_EVAL_CFID | LG_EVAL_CLASSES;
    in.cfid_ref = &ref;
    CHECK_OK(lg_eval_samples(&in, g_test.x, 500, 1, 32, 32, &r));
    CHECK(r.done == (LG_EVAL_CFID | LG_EVAL_CLASSES), "done %x", r.done);
    CHECK(fabs(r.cfid.fid) < 1e-3 && r.cfid.n1 == 500 && r.cfid.n2 == 500, "cFID of a set with itself %g (n %lld/%lld)",
          r.cfid.fid, (long long)r.cfid.n1, (long long)r.cfid.n2);
    double self = r.cfid.fid;
    CHECK_OK(lg_eval_samples(&in, g_test.x + 500 * 32 * 32, 500, 1, 32, 32, &r));
    double other_half = r.cfid.fid;
    lg_test_rng rng = lg_test_rng_make(5);
    float *noise = malloc((size_t)500 * 32 * 32 * sizeof(float));
    LG_ASSERT(noise);
    lg_test_fill_uniform(&rng, noise, 500 * 32 * 32, -1.0f, 1.0f);
    CHECK_OK(lg_eval_samples(&in, noise, 500, 1, 32, 32, &r));
    printf("  cFID: self %.2g, two halves of the test set %.3f, uniform noise %.1f; noise covers %d classes\n", self,
           other_half, r.cfid.fid, r.classes.classes_covered);
    CHECK(other_half > self && r.cfid.fid > 20 * other_half, "cFID of noise %.3f should far exceed two real halves' %.3f",
          r.cfid.fid, other_half);
    free(noise);

    /* the JSON row */
    char *row = lg_eval_result_json(&r, 1234, "runs/x/ckpt.safetensors");
    CHECK(row && !strncmp(row, "{\"step\":1234,\"kind\":\"eval\"", 26), "row starts with step: %s", row ? row : "");
    CHECK(row && strstr(row, "\"cfid\":{\"value\":") && strstr(row, "\"n_ref\":500") && strstr(row, "\"counts\":["),
          "row fields: %s", row ? row : "");
    free(row);

    /* missing pieces are named */
    in.cfid_ref = NULL;
    CHECK_STATUS(lg_eval_samples(&in, g_test.x, 10, 1, 32, 32, &r), LG_ERR_INVALID_ARG);
    CHECK(strstr(lg_error_msg(), "cfid needs reference statistics") != NULL, "message: %s", lg_error_msg());
    in.metrics = LG_EVAL_FID;
    CHECK_STATUS(lg_eval_samples(&in, g_test.x, 10, 1, 32, 32, &r), LG_ERR_INVALID_ARG);
    CHECK(strstr(lg_error_msg(), "Inception") != NULL, "message: %s", lg_error_msg());
    in.metrics = LG_EVAL_TOY;
    CHECK_STATUS(lg_eval_samples(&in, g_test.x, 10, 1, 32, 32, &r), LG_ERR_INVALID_ARG);
    lg_fid_stats_free(&ref);
    free(logits);
    free(pred);
    free(x);
    lg_classifier_free(c);
}

static void test_toy_through_eval(void) {
    /* 8 points on the 8 ring modes, 2 far away: 8 covered, 80% high quality, KL 0 */
    const float *modes;
    float std;
    int m = lg_data_toy_modes(LG_TOY_RING8, &modes, &std);
    float pts[10 * 2];
    for (int i = 0; i < 8; i++) pts[2 * i] = modes[2 * i], pts[2 * i + 1] = modes[2 * i + 1] + 0.5f * std;
    pts[16] = pts[17] = pts[18] = 0.0f;
    pts[19] = 9.0f;
    lg_eval_inputs in;
    lg_eval_inputs_default(&in);
    in.metrics = LG_EVAL_TOY;
    in.modes = modes;
    in.n_modes = m;
    in.mode_std = std;
    lg_eval_result r;
    CHECK_OK(lg_eval_samples(&in, pts, 10, 2, 1, 1, &r));
    CHECK(r.toy.modes_covered == 8 && fabs(r.toy.frac_high_quality - 0.8) < 1e-12 && fabs(r.toy.reverse_kl) < 1e-12,
          "toy: %d covered, hq %g, KL %g", r.toy.modes_covered, r.toy.frac_high_quality, r.toy.reverse_kl);
    char *row = lg_eval_result_json(&r, 5, NULL);
    CHECK(row && strstr(row, "\"toy\":{\"modes_covered\":8,\"modes\":8,\"high_quality_pct\":80"), "row %s", row ? row : "");
    free(row);
    in.metrics = LG_EVAL_CLASSES;
    CHECK_STATUS(lg_eval_samples(&in, pts, 10, 2, 1, 1, &r), LG_ERR_INVALID_ARG);
}

static void test_files_and_errors(void) {
    lg_classifier *c = NULL, *d = NULL;
    CHECK_OK(lg_classifier_create(&c, NULL, 11));
    if (!c) return;
    lg_classifier_info info = {.test_accuracy = 0.5, .test_n = 3, .epochs = 2, .seed = 11, .threads = 1};
    snprintf(info.command, sizeof info.command, "unit test");
    lg_classifier_set_info(c, &info);
    char path[600];
    snprintf(path, sizeof path, "%s/lg_cls_%d.safetensors", g_tmp, (int)getpid());
    CHECK_OK(lg_classifier_save(c, path));
    CHECK_OK(lg_classifier_load(&d, path, NULL));
    float x[2 * 32 * 32], a[2 * 138], b[2 * 138];
    lg_test_rng rng = lg_test_rng_make(9);
    lg_test_fill_uniform(&rng, x, 2 * 32 * 32, -1, 1);
    if (d) {
        CHECK_OK(lg_classifier_run(c, x, 2, 1, 32, 32, a, a + 2 * 128));
        CHECK_OK(lg_classifier_run(d, x, 2, 1, 32, 32, b, b + 2 * 128));
        CHECK(memcmp(a, b, sizeof a) == 0, "saved and loaded classifiers differ");
        const lg_classifier_info *i2 = lg_classifier_get_info(d);
        CHECK(i2->test_accuracy == 0.5 && i2->test_n == 3 && i2->epochs == 2 && i2->seed == 11 &&
                  !strcmp(i2->command, "unit test"),
              "info round trip: %g %lld %d '%s'", i2->test_accuracy, (long long)i2->test_n, i2->epochs, i2->command);
        lg_classifier_free(d);
        d = NULL;
    }
    /* errors */
    CHECK_STATUS(lg_classifier_run(c, x, 1, 3, 32, 32, NULL, a), LG_ERR_INVALID_ARG);
    CHECK_STATUS(lg_classifier_run(c, x, 1, 1, 64, 64, NULL, a), LG_ERR_INVALID_ARG);
    x[77] = NAN;
    CHECK_STATUS(lg_classifier_run(c, x, 2, 1, 32, 32, NULL, a), LG_ERR_NONFINITE);
    snprintf(path, sizeof path, "%s/lg_cls_nonexistent_%d.safetensors", g_tmp, (int)getpid());
    CHECK_STATUS(lg_classifier_load(&d, path, NULL), LG_ERR_NOT_FOUND);
    CHECK(d == NULL && strstr(lg_error_msg(), "lipgan train-classifier") != NULL, "message says how: %s",
          lg_error_msg());
    lg_st_writer *w;
    CHECK_OK(lg_st_writer_create(&w));
    float one = 1;
    lg_st_writer_add_f32(w, "x", 1, (int64_t[]){1}, &one);
    snprintf(path, sizeof path, "%s/lg_cls_other_%d.safetensors", g_tmp, (int)getpid());
    CHECK_OK(lg_st_writer_write(w, path, 0));
    CHECK_STATUS(lg_classifier_load(&d, path, NULL), LG_ERR_FORMAT);
    lg_st_writer_free(w);
    /* another kind of lipgan file: the message quotes its format (read
     * before the file is closed) */
    CHECK_OK(lg_st_writer_create(&w));
    lg_st_writer_add_meta(w, "format", "lipgan-fid-stats-1");
    lg_st_writer_add_f32(w, "x", 1, (int64_t[]){1}, &one);
    CHECK_OK(lg_st_writer_write(w, path, 0));
    CHECK_STATUS(lg_classifier_load(&d, path, NULL), LG_ERR_FORMAT);
    CHECK(strstr(lg_error_msg(), "format is 'lipgan-fid-stats-1'") != NULL, "message: %s",
          lg_error_msg());
    lg_st_writer_free(w);
    CHECK_OK(lg_st_writer_create(&w));
    lg_st_writer_add_meta(w, "format", LG_CLS_FORMAT);
    lg_st_writer_add_meta(w, "arch", "resnet-999");
    lg_st_writer_add_f32(w, "x", 1, (int64_t[]){1}, &one);
    CHECK_OK(lg_st_writer_write(w, path, 0));
    CHECK_STATUS(lg_classifier_load(&d, path, NULL), LG_ERR_FORMAT);
    CHECK(strstr(lg_error_msg(), "'resnet-999'") != NULL, "message: %s", lg_error_msg());
    lg_st_writer_free(w);
    /* right format, a tensor of the wrong shape */
    CHECK_OK(lg_st_writer_create(&w));
    lg_st_writer_add_meta(w, "format", LG_CLS_FORMAT);
    lg_st_writer_add_meta(w, "arch", LG_CLS_ARCH);
    lg_st_writer_add_f32(w, "conv1.weight", 1, (int64_t[]){1}, &one);
    CHECK_OK(lg_st_writer_write(w, path, 0));
    lg_status s = lg_classifier_load(&d, path, NULL);
    CHECK(s == LG_ERR_SHAPE && strstr(lg_error_msg(), "conv1.weight"), "wrong shape: %s %s", lg_status_str(s),
          lg_error_msg());
    lg_st_writer_free(w);
    unlink(path);
    snprintf(path, sizeof path, "%s/lg_cls_%d.safetensors", g_tmp, (int)getpid());
    unlink(path);
    lg_classifier_free(c);
}

static void test_parse_metrics(void) {
    unsigned m;
    CHECK_OK(lg_eval_parse_metrics("is,fid,kid,cfid,classes,toy", &m));
    CHECK(m == (LG_EVAL_IS | LG_EVAL_FID | LG_EVAL_KID | LG_EVAL_CFID | LG_EVAL_CLASSES | LG_EVAL_TOY), "all: %x", m);
    CHECK_OK(lg_eval_parse_metrics("cfid", &m));
    CHECK(m == LG_EVAL_CFID, "cfid: %x", m);
    CHECK_STATUS(lg_eval_parse_metrics("is,fdi", &m), LG_ERR_INVALID_ARG);
    CHECK(strstr(lg_error_msg(), "'fdi'") && strstr(lg_error_msg(), "known:"), "message: %s", lg_error_msg());
    CHECK_STATUS(lg_eval_parse_metrics("is,", &m), LG_ERR_INVALID_ARG);
    CHECK_STATUS(lg_eval_parse_metrics("", &m), LG_ERR_INVALID_ARG);
    CHECK(!strcmp(lg_eval_metric_name(LG_EVAL_CLASSES), "classes"), "name");
}

int main(void) {
    /* one thread: the checks do not depend on it, and 2 OpenMP threads on a
     * loaded 2-core machine spin-wait several times slower */
    lg_cpu_set_threads(1);
    const char *t = getenv("TMPDIR");
    snprintf(g_tmp, sizeof g_tmp, "%s", t && *t ? t : "/tmp");
    if (access(FMNIST, R_OK) == 0 && lg_data_load_mnist_dir(&g_test, FMNIST, LG_SPLIT_TEST, 32) != LG_OK) {
        printf("cannot load %s: %s\n", FMNIST, lg_error_msg());
        return 1;
    }
    LG_TEST_RUN(test_parse_metrics);
    LG_TEST_RUN(test_files_and_errors);
    LG_TEST_RUN(test_toy_through_eval);
    LG_TEST_RUN(test_training_lowers_loss);
    LG_TEST_RUN(test_shipped_weights);
    LG_TEST_RUN(test_class_metrics);
    lg_data_free(&g_test);
    return lg_test_summary("test_classifier");
}
