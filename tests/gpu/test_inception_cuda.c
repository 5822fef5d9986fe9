/* The feature networks of the metrics on the GPU against the CPU:
 * Inception-v3 (lg_inception_use_cuda: its own kernels, inception_cuda.cu)
 * and the Fashion-MNIST classifier (the op dispatch on the CUDA backend).
 *
 * Inception runs on synthetic weights (lg_inception_write_synthetic, ~95 MB
 * in a temp dir) over
 *   37 RGB 32x32 images   (resized; one pass of 32 images, then one of 5),
 *    5 gray 28x28 images  (repeated to 3 channels),
 *    2 RGB 299x299 images (no resize),
 * and pool3 and the logits must be within normalized MSE 1e-8 of the CPU
 * (both are fp32 im2col + gemm; only the gemm's summation order differs:
 * ~1e-13 expected). A run with the backend set to TF32 must give the fp32
 * run's values bit for bit (Inception forces plain fp32), and a repeat too
 * (deterministic), and lg_eval_stats' FID statistics of 40 images agree
 * (nMSE 1e-8). The classifier's features and logits: nMSE 1e-7; after
 * 20 training steps on each backend from the same start, 1e-4.
 * Skips (exit 0) without a device unless LG_REQUIRE_CUDA=1. */
#include <unistd.h>

#include "gpu_test.h"
#include "lipgan/classifier.h"
#include "lipgan/data.h"
#include "lipgan/eval.h"
#include "lipgan/metrics.h"
#include "lipgan/inception.h"
#include "lipgan/rng.h"

static double g_worst;

static void fill(float *x, size_t n, uint64_t seed) {
    lg_rng r;
    lg_rng_init(&r, seed, 7);
    lg_rng_fill_uniform(&r, x, n, -1.0f, 1.0f);
}

/* pool3 and logits of n images on both nets; returns the GPU run's
 * buffers in *gp (n*2048 pool3, then n*k logits) for further checks. */
static float *compare(lg_inception *cpu, lg_inception *gpu, const char *tag, int n, int c, int h, int w,
                      uint64_t seed) {
    int k = lg_inception_num_classes(cpu);
    size_t np = (size_t)n * c * h * w, fp = (size_t)n * 2048, lp = (size_t)n * k;
    float *x = malloc(np * sizeof(float)), *o = malloc(2 * (fp + lp) * sizeof(float));
    LG_ASSERT(x && o);
    fill(x, np, seed);
    float *hp = o, *hl = hp + fp, *dp = hl + lp, *dl = dp + fp;
    CHECK_OK(lg_inception_run(cpu, x, n, c, h, w, hp, hl));
    CHECK_OK(lg_inception_run(gpu, x, n, c, h, w, dp, dl));
    double ep = gpu_test_nmse(dp, hp, fp), el = gpu_test_nmse(dl, hl, lp);
    printf("  %-26s pool3 nMSE %.3g, logits nMSE %.3g\n", tag, ep, el);
    CHECK(ep <= 1e-8, "%s: pool3 nMSE %.3g > 1e-8", tag, ep);
    CHECK(el <= 1e-8, "%s: logits nMSE %.3g > 1e-8", tag, el);
    g_worst = fmax(g_worst, fmax(ep, el));
    float *g = malloc((fp + lp) * sizeof(float));
    LG_ASSERT(g);
    memcpy(g, dp, (fp + lp) * sizeof(float));
    free(x);
    free(o);
    return g;
}

static const lg_backend *g_be;

static void test_inception(void) {
    char dir[] = "/tmp/lg_inc_cuda_XXXXXX", path[64];
    if (!mkdtemp(dir)) {
        CHECK(0, "mkdtemp");
        return;
    }
    snprintf(path, sizeof path, "%s/w.safetensors", dir);
    CHECK_OK(lg_inception_write_synthetic(path, 3));
    lg_inception *cpu = NULL, *gpu = NULL;
    CHECK_OK(lg_inception_load(&cpu, path));
    CHECK_OK(lg_inception_load(&gpu, path));
    unlink(path);
    rmdir(dir);
    if (!cpu || !gpu) goto done;
    lg_status s = lg_inception_use_cuda(gpu); /* includes its self-check */
    CHECK(s == LG_OK, "lg_inception_use_cuda: %s", lg_error_msg());
    CHECK(lg_inception_on_cuda(gpu) && !lg_inception_on_cuda(cpu), "on_cuda");
    CHECK_OK(lg_inception_use_cuda(gpu)); /* again: a no-op */
    if (s != LG_OK) goto done;
    int k = lg_inception_num_classes(cpu);

    free(compare(cpu, gpu, "37 x 3x32x32 (two passes)", 37, 3, 32, 32, 11));
    free(compare(cpu, gpu, "2 x 3x299x299", 2, 3, 299, 299, 13));
    float *a = compare(cpu, gpu, "5 x 1x28x28", 5, 1, 28, 28, 12);

    /* TF32 on the backend: Inception still computes in plain fp32 */
    float x[5 * 28 * 28], *b = malloc((size_t)5 * (2048 + k) * sizeof(float));
    LG_ASSERT(b);
    fill(x, sizeof x / sizeof x[0], 12);
#ifdef LG_HAVE_CUDA
    int prec = lg_cuda_precision();
    CHECK_OK(lg_cuda_set_precision(LG_CUDA_TF32));
    CHECK_OK(lg_inception_run(gpu, x, 5, 1, 28, 28, b, b + 5 * 2048));
    CHECK_OK(lg_cuda_set_precision(prec));
    CHECK(memcmp(a, b, (size_t)5 * (2048 + k) * sizeof(float)) == 0,
          "with the backend in TF32 the features changed: Inception must stay fp32");
#endif
    CHECK_OK(lg_inception_run(gpu, x, 5, 1, 28, 28, b, b + 5 * 2048));
    CHECK(memcmp(a, b, (size_t)5 * (2048 + k) * sizeof(float)) == 0, "a repeat differs: not deterministic");
    /* only logits, only pool3 */
    CHECK_OK(lg_inception_run(gpu, x, 5, 1, 28, 28, NULL, b + 5 * 2048));
    CHECK(memcmp(a + 5 * 2048, b + 5 * 2048, (size_t)5 * k * sizeof(float)) == 0, "logits alone differ");
    CHECK_OK(lg_inception_run(gpu, x, 5, 1, 28, 28, b, NULL));
    CHECK(memcmp(a, b, (size_t)5 * 2048 * sizeof(float)) == 0, "pool3 alone differs");
    /* the metrics' path (lg_eval_stats: quantization, features, float64
     * mean and covariance) on both nets: the FID statistics agree */
    {
        enum { NS = 40 };
        float *xs = malloc(sizeof(float) * NS * 3 * 32 * 32);
        LG_ASSERT(xs);
        fill(xs, (size_t)NS * 3 * 32 * 32, 14);
        lg_fid_stats sc, sg;
        memset(&sc, 0, sizeof sc);
        memset(&sg, 0, sizeof sg);
        CHECK_OK(lg_eval_stats(cpu, NULL, xs, NS, 3, 32, 32, NULL, &sc));
        CHECK_OK(lg_eval_stats(gpu, NULL, xs, NS, 3, 32, 32, NULL, &sg));
        if (sc.mu && sg.mu) {
            double em = 0, dm = 0, es = 0, ds = 0;
            for (int i = 0; i < 2048; i++) em += (sg.mu[i] - sc.mu[i]) * (sg.mu[i] - sc.mu[i]), dm += sc.mu[i] * sc.mu[i];
            for (size_t i = 0; i < (size_t)2048 * 2048; i++)
                es += (sg.sigma[i] - sc.sigma[i]) * (sg.sigma[i] - sc.sigma[i]), ds += sc.sigma[i] * sc.sigma[i];
            printf("  FID statistics of %d images: mean nMSE %.3g, covariance nMSE %.3g\n", NS, em / dm, es / ds);
            CHECK(em <= 1e-8 * dm && es <= 1e-8 * ds, "FID statistics on cuda vs cpu: nMSE %.3g / %.3g > 1e-8",
                  em / dm, es / ds);
        }
        lg_fid_stats_free(&sc);
        lg_fid_stats_free(&sg);
        free(xs);
    }
    /* bad input is refused before the GPU sees it */
    x[3] = NAN;
    CHECK_STATUS(lg_inception_run(gpu, x, 1, 1, 28, 28, b, NULL), LG_ERR_NONFINITE);
    free(a);
    free(b);
    printf("  worst nMSE %.3g; pool: ", g_worst);
#ifdef LG_HAVE_CUDA
    size_t res = 0, used = 0;
    lg_cuda_pool_stats(&res, &used);
    printf("%zu MB reserved, %zu MB in use\n", res >> 20, used >> 20);
    CHECK_OK(lg_cuda_last_status());
#endif
done:
    lg_inception_free(cpu);
    lg_inception_free(gpu);
}

static void test_classifier(void) {
    const lg_backend *be = g_be;
    enum { N = 300 }; /* two batches of 256 */
    lg_classifier *cpu = NULL, *gpu = NULL;
    CHECK_OK(lg_classifier_create(&cpu, NULL, 5));
    CHECK_OK(lg_classifier_create(&gpu, be, 5));
    if (!cpu || !gpu) goto done;
    float *x = malloc((size_t)N * 32 * 32 * sizeof(float)), *o = malloc((size_t)N * 2 * (128 + 10) * sizeof(float));
    LG_ASSERT(x && o);
    fill(x, (size_t)N * 32 * 32, 21);
    float *hf = o, *hl = hf + N * 128, *df = hl + N * 10, *dl = df + N * 128;
    CHECK_OK(lg_classifier_run(cpu, x, N, 1, 32, 32, hf, hl));
    CHECK_OK(lg_classifier_run(gpu, x, N, 1, 32, 32, df, dl));
    double ef = gpu_test_nmse(df, hf, (size_t)N * 128), el = gpu_test_nmse(dl, hl, (size_t)N * 10);
    printf("  classifier, %d x 1x32x32: features nMSE %.3g, logits nMSE %.3g\n", N, ef, el);
    CHECK(ef <= 1e-7 && el <= 1e-7, "classifier on cuda: nMSE %.3g / %.3g > 1e-7", ef, el);
    free(x);
    free(o);
done:
    lg_classifier_free(cpu);
    lg_classifier_free(gpu);
}

/* 20 Adam steps of lg_classifier_train (lipgan train-classifier --device
 * cuda) on both backends from the same weights and batches: the trained
 * nets' logits on the training images within nMSE 1e-4 (room for Adam
 * steps on gradients near 0, whose sign rounding decides; a wrong gradient
 * on either side moves them by O(1)). */
static void test_classifier_train(void) {
    enum { N = 256 };
    lg_dataset d;
    memset(&d, 0, sizeof d);
    d.n = N;
    d.c = 1;
    d.h = d.w = 32;
    d.num_classes = 10;
    d.x = malloc((size_t)N * 32 * 32 * sizeof(float));
    d.y = malloc((size_t)N * sizeof(int32_t));
    LG_ASSERT(d.x && d.y);
    fill(d.x, (size_t)N * 32 * 32, 31);
    for (int i = 0; i < N; i++) d.y[i] = i % 10;
    lg_classifier *cpu = NULL, *gpu = NULL;
    CHECK_OK(lg_classifier_create(&cpu, NULL, 9));
    CHECK_OK(lg_classifier_create(&gpu, g_be, 9));
    lg_classifier_train_opts o;
    lg_classifier_train_opts_default(&o);
    o.batch = 32;
    o.max_steps = 20;
    if (cpu && gpu) {
        CHECK_OK(lg_classifier_train(cpu, &d, &o));
        CHECK_OK(lg_classifier_train(gpu, &d, &o));
        float *o2 = malloc((size_t)N * 20 * sizeof(float));
        LG_ASSERT(o2);
        CHECK_OK(lg_classifier_run(cpu, d.x, N, 1, 32, 32, NULL, o2));
        CHECK_OK(lg_classifier_run(gpu, d.x, N, 1, 32, 32, NULL, o2 + N * 10));
        double e = gpu_test_nmse(o2 + N * 10, o2, (size_t)N * 10);
        printf("  classifier after 20 training steps: logits nMSE %.3g\n", e);
        CHECK(e <= 1e-4, "classifier trained on cuda vs cpu: logits nMSE %.3g > 1e-4", e);
        free(o2);
    }
    lg_classifier_free(cpu);
    lg_classifier_free(gpu);
    lg_data_free(&d);
}

int main(void) {
    int rc = 0;
    g_be = gpu_test_backend("test_inception_cuda", &rc);
    if (!g_be) return rc;
    LG_TEST_RUN(test_inception);
    LG_TEST_RUN(test_classifier);
    LG_TEST_RUN(test_classifier_train);
    return lg_test_summary("test_inception_cuda");
}
