/* The C Inception-v3 (pytorch-fid variant) against PyTorch.
 *
 * tests/data/inception/reference.safetensors, written by
 * tools/gen_inception_reference.py, holds the float64 PyTorch outputs
 * (pool3, logits) of the FID network on SYNTHETIC weights for two RGB
 * 32x32 images and one grayscale 28x28 image, bilinear resize references,
 * and a bit-pattern checksum of every weight tensor. This test writes the
 * same synthetic weights with lg_inception_write_synthetic (~95 MB, in a
 * temp dir), proves they equal the Python ones bit for bit (checksums),
 * loads them with the real loader and compares:
 *   pool3, logits: |c - ref| <= 2e-5 + 2e-4 * |ref|  (float32 vs float64;
 *                  values are O(1); the observed max error is 2e-6)
 *   resize:        |c - ref| <= 1e-6 + 1e-5 * |ref|
 * and the Inception Score's logits without the fc bias
 * (lg_inception_is_logits) with the same tolerance; in the full run also
 * the IS that lg_eval_samples reports for the RGB pair, which quantizes it
 * to 8 bits first, against PyTorch's bias-free logits of the quantized pair
 * (absolute 1e-8; the fc bias or skipping the quantization move it more
 * than 5x that, which the test checks too).
 *
 * Runtime: each image is ~11 GFLOP (resized to 299x299). By default the RGB
 * pair runs as one batch (the OpenMP path) and the grayscale image alone
 * (the serial, BLAS-threaded path). In a sanitizer build (compiled with
 * ASan) only the grayscale image runs, to stay fast; set
 * LG_TEST_INCEPTION_FULL=1 to force all three or =0 to run only the
 * grayscale one in any build.
 * Data directory: $LG_TEST_DATA or tests/data (run from the repo root). */
#include <cblas.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "lg_test.h"
#include "lipgan/eval.h"
#include "lipgan/inception.h"
#include "lipgan/backend.h"
#include "lipgan/backend_cpu.h"
#include "lipgan/safetensors.h"
#include "metrics/inception_kern.h"

#define ATOL 2e-5
#define RTOL 2e-4

#if defined(__SANITIZE_ADDRESS__)
#define FULL_DEFAULT 0
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define FULL_DEFAULT 0
#endif
#endif
#ifndef FULL_DEFAULT
#define FULL_DEFAULT 1
#endif

static lg_st_file *g_ref;
static char g_dir[512];
static char g_weights[600];
static int g_have_weights;

/* Reference tensor `key` as float32 (NULL, with a failed check, if absent). */
static float *ref_get(const char *key, int64_t *numel) {
    const lg_st_tensor *t = g_ref ? lg_st_find(g_ref, key) : NULL;
    CHECK(t != NULL, "reference has no tensor '%s'", key);
    if (!t) return NULL;
    float *d = malloc(sizeof(float) * (size_t)t->numel);
    LG_ASSERT(d);
    CHECK_OK(lg_st_get_f32(g_ref, key, -1, NULL, d));
    if (numel) *numel = t->numel;
    return d;
}

static int cmp_str(const void *a, const void *b) {
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* Writes the synthetic weights and checks them against Python's checksums. */
static void test_synthetic_weights(void) {
    if (!g_ref) return;
    const char *seed_txt = lg_st_meta(g_ref, "seed");
    CHECK(seed_txt != NULL, "reference has no seed metadata");
    if (!seed_txt) return;
    uint32_t seed = (uint32_t)strtoul(seed_txt, NULL, 10);
    CHECK_OK(lg_inception_write_synthetic(g_weights, seed));
    lg_st_file *f = NULL;
    CHECK_OK(lg_st_open(&f, g_weights));
    if (!f) return;
    g_have_weights = 1;

    size_t n = lg_st_count(f);
    const char **names = malloc(sizeof(char *) * n);
    LG_ASSERT(names);
    for (size_t i = 0; i < n; i++) names[i] = lg_st_at(f, i)->name;
    qsort(names, n, sizeof(char *), cmp_str);
    const lg_st_tensor *rs = lg_st_find(g_ref, "weight_bitsums");
    CHECK(rs && rs->ndim == 1 && (size_t)rs->numel == n,
          "weight_bitsums has %lld entries, the C file %zu tensors", rs ? (long long)rs->numel : -1LL,
          n);
    if (rs && (size_t)rs->numel == n) {
        int64_t *want = malloc(sizeof(int64_t) * n);
        LG_ASSERT(want);
        CHECK_OK(lg_st_get_i64(g_ref, "weight_bitsums", 1, (int64_t[]){(int64_t)n}, want));
        int bad = 0;
        for (size_t i = 0; i < n; i++) {
            const lg_st_tensor *t = lg_st_find(f, names[i]);
            int64_t sum = 0;
            for (int64_t j = 0; j < t->numel; j++) {
                uint32_t u;
                memcpy(&u, (const char *)t->data + 4 * j, 4);
                sum += u;
            }
            if (sum != want[i] && bad++ < 5)
                CHECK(0, "weight %s (sorted #%zu): bit checksum %lld, Python %lld", names[i], i,
                      (long long)sum, (long long)want[i]);
        }
        CHECK(bad == 0, "%d of %zu synthetic tensors differ from Python's", bad, n);
        free(want);
    }
    free(names);
    lg_st_close(f);
}

static void test_resize(void) {
    static const struct {
        const char *in, *out;
        int c, h, w, oh, ow;
    } cases[] = {{"resize.down.in", "resize.down.out", 2, 20, 17, 11, 13},
                 {"resize.up.in", "resize.up.out", 2, 5, 7, 9, 23}};
    for (int k = 0; k < 2; k++) {
        int64_t ni = 0, no = 0;
        float *x = ref_get(cases[k].in, &ni), *want = ref_get(cases[k].out, &no);
        if (x && want && ni == (int64_t)cases[k].c * cases[k].h * cases[k].w &&
            no == (int64_t)cases[k].c * cases[k].oh * cases[k].ow) {
            float *y = malloc(sizeof(float) * (size_t)no);
            LG_ASSERT(y);
            lg_inception_resize(x, cases[k].c, cases[k].h, cases[k].w, cases[k].oh, cases[k].ow, y);
            lg_test_close(y, want, (size_t)no, 1e-6, 1e-5, cases[k].out);
            free(y);
        } else {
            CHECK(0, "%s: bad reference sizes", cases[k].in);
        }
        free(x);
        free(want);
    }
}

/* Writes a small safetensors file with the given tensors (all zeros). */
static void write_small(const char *path, const char *variant, int nt, const char **names,
                        const int *ndims, const int64_t (*shapes)[4]) {
    static float zeros[2048 * 4];
    lg_st_writer *w = NULL;
    CHECK_OK(lg_st_writer_create(&w));
    if (variant) CHECK_OK(lg_st_writer_add_meta(w, "lipgan_inception_variant", variant));
    for (int i = 0; i < nt; i++) CHECK_OK(lg_st_writer_add_f32(w, names[i], ndims[i], shapes[i], zeros));
    CHECK_OK(lg_st_writer_write(w, path, 0));
    lg_st_writer_free(w);
}

static void test_load_errors(void) {
    char p[700];
    lg_inception *net = (lg_inception *)&net;
    snprintf(p, sizeof p, "%s/absent.safetensors", g_dir);
    lg_status s = lg_inception_load(&net, p);
    CHECK(s == LG_ERR_NOT_FOUND || s == LG_ERR_IO, "missing file: %s", lg_status_str(s));
    CHECK(net == NULL, "*out must be NULL on error");

    snprintf(p, sizeof p, "%s/small.safetensors", g_dir);
    /* fc only: the first conv is missing and must be named */
    const char *n1[] = {"fc.weight", "fc.bias"};
    const int d1[] = {2, 1};
    const int64_t s1[][4] = {{4, 2048}, {4}};
    write_small(p, "fid", 2, n1, d1, s1);
    s = lg_inception_load(&net, p);
    CHECK(s == LG_ERR_NOT_FOUND && strstr(lg_error_msg(), "Conv2d_1a_3x3.conv.weight"),
          "missing conv: %s: %s", lg_status_str(s), lg_error_msg());
    /* a misshaped conv weight */
    const char *n2[] = {"fc.weight", "fc.bias", "Conv2d_1a_3x3.conv.weight"};
    const int d2[] = {2, 1, 4};
    const int64_t s2[][4] = {{4, 2048}, {4}, {32, 3, 3, 2}};
    write_small(p, "fid", 3, n2, d2, s2);
    s = lg_inception_load(&net, p);
    CHECK(s == LG_ERR_SHAPE && strstr(lg_error_msg(), "Conv2d_1a_3x3.conv.weight"),
          "misshaped conv: %s: %s", lg_status_str(s), lg_error_msg());
    /* fc of the wrong width */
    const int64_t s3[][4] = {{4, 100}, {4}};
    write_small(p, "fid", 2, n1, d1, s3);
    s = lg_inception_load(&net, p);
    CHECK(s == LG_ERR_SHAPE && strstr(lg_error_msg(), "fc.weight"), "fc shape: %s: %s",
          lg_status_str(s), lg_error_msg());
    /* an unknown variant */
    write_small(p, "tf-slim", 2, n1, d1, s1);
    s = lg_inception_load(&net, p);
    CHECK(s == LG_ERR_FORMAT && strstr(lg_error_msg(), "tf-slim"), "variant: %s: %s",
          lg_status_str(s), lg_error_msg());
    unlink(p);
}

/* kB value of field ("VmSize:", "VmPeak:") in /proc/self/status, -1 if absent. */
static long vm_kb(const char *field) {
    FILE *f = fopen("/proc/self/status", "r");
    char line[256];
    long v = -1;
    while (f && fgets(line, sizeof line, f))
        if (!strncmp(line, field, strlen(field))) v = strtol(line + strlen(field), NULL, 10);
    if (f) fclose(f);
    return v;
}

/* What one lg_inception_load in a child process did: its status, message,
 * and how far the child's peak virtual size rose above its size at the
 * call (fork starts the child's peak afresh, so earlier tests' large
 * buffers do not hide a new one; -1 where /proc has no VmPeak). */
typedef struct {
    lg_status s;
    int got_net;
    long grow_kb;
    char msg[1024];
} load_result;

static load_result load_in_child(const char *path) {
    load_result r = {.s = LG_STATUS_COUNT, .grow_kb = -1};
    int fd[2];
    if (pipe(fd) != 0) {
        CHECK(0, "pipe failed");
        return r;
    }
    fflush(NULL);
    pid_t pid = fork();
    if (pid == 0) {
        close(fd[0]);
        long before = vm_kb("VmSize:");
        lg_inception *net = (lg_inception *)&r;
        r.s = lg_inception_load(&net, path);
        long peak = vm_kb("VmPeak:");
        r.got_net = net != NULL;
        r.grow_kb = before >= 0 && peak >= 0 ? peak - before : -1;
        snprintf(r.msg, sizeof r.msg, "%s", r.s != LG_OK ? lg_error_msg() : "");
        ssize_t w = write(fd[1], &r, sizeof r);
        _exit(w == (ssize_t)sizeof r ? 0 : 1);
    }
    close(fd[1]);
    CHECK(pid > 0, "fork failed");
    if (pid > 0) {
        ssize_t n = read(fd[0], &r, sizeof r);
        int st = 0;
        waitpid(pid, &st, 0);
        CHECK(n == (ssize_t)sizeof r && WIFEXITED(st) && WEXITSTATUS(st) == 0, "child for %s failed", path);
    }
    close(fd[0]);
    return r;
}

/* A wrong path or file is refused from the header alone: with a message of
 * one line naming the file and the fix, and without reading the file or
 * allocating the ~87 MB of folded weights (the loader used to allocate
 * them before it looked for the first conv, and to read a whole .pth
 * before finding it is not safetensors). The bound, 32 MB of peak virtual
 * size, is far below either. */
static void test_load_fails_fast(void) {
    const long limit_kb = 32 << 10;
    char p[700];
    struct {
        const char *file, *what;
        lg_status want;
        const char *need;
    } cases[] = {
        {"absent.safetensors", "missing file", LG_ERR_NOT_FOUND, "check the path"},
        {"garbage.safetensors", "text file", LG_ERR_FORMAT, "is not a safetensors file"},
        {"weights.pth", "256 MB zip (sparse)", LG_ERR_FORMAT, "zip archive"},
        {"truncated.safetensors", "truncated file", LG_ERR_FORMAT, "is truncated"},
        {"fc_only.safetensors", "no conv tensors", LG_ERR_NOT_FOUND, "\"Conv2d_1a_3x3.conv.weight\""},
    };
    const int nc = (int)(sizeof cases / sizeof cases[0]);
    /* the files (the first is left absent) */
    snprintf(p, sizeof p, "%s/%s", g_dir, cases[1].file);
    FILE *f = fopen(p, "w");
    CHECK(f && fputs("these are not Inception weights\n", f) >= 0 && fclose(f) == 0, "cannot write %s", p);
    snprintf(p, sizeof p, "%s/%s", g_dir, cases[2].file);
    f = fopen(p, "w");
    CHECK(f && fwrite("PK\3\4", 1, 4, f) == 4 && ftruncate(fileno(f), (off_t)256 << 20) == 0 && fclose(f) == 0,
          "cannot write %s", p);
    const char *n1[] = {"fc.weight", "fc.bias"};
    const int d1[] = {2, 1};
    const int64_t s1[][4] = {{4, 2048}, {4}};
    snprintf(p, sizeof p, "%s/%s", g_dir, cases[3].file);
    write_small(p, "fid", 2, n1, d1, s1);
    struct stat sb;
    CHECK(stat(p, &sb) == 0 && truncate(p, sb.st_size - 100) == 0, "cannot truncate %s", p);
    snprintf(p, sizeof p, "%s/%s", g_dir, cases[4].file);
    write_small(p, "fid", 2, n1, d1, s1);

    for (int i = 0; i < nc; i++) {
        snprintf(p, sizeof p, "%s/%s", g_dir, cases[i].file);
        load_result r = load_in_child(p);
        CHECK(r.s == cases[i].want && !r.got_net, "%s: %s, want %s (*out must stay NULL): %s", cases[i].what,
              lg_status_str(r.s), lg_status_str(cases[i].want), r.msg);
        CHECK(strstr(r.msg, p) && strstr(r.msg, cases[i].need) && !strchr(r.msg, '\n'),
              "%s: message must be one line naming %s and saying \"%s\": %s", cases[i].what, p, cases[i].need,
              r.msg);
        CHECK(strstr(r.msg, "tools/convert_inception_weights.py"),
              "%s: message must name the converter: %s", cases[i].what, r.msg);
        if (r.grow_kb >= 0)
            CHECK(r.grow_kb < limit_kb, "%s: peak virtual size rose by %ld kB (limit %ld kB) before the error",
                  cases[i].what, r.grow_kb, limit_kb);
        else if (i == 0)
            printf("  (no VmPeak in /proc/self/status: allocation size not checked)\n");
        unlink(p);
    }
}

static void compare(const lg_inception *net, const char *tag, const float *x, int n, int c, int h,
                    int w) {
    int k = lg_inception_num_classes(net);
    char key[64];
    int64_t np = 0, nl = 0;
    snprintf(key, sizeof key, "pool3.%s", tag);
    float *want_p = ref_get(key, &np);
    snprintf(key, sizeof key, "logits.%s", tag);
    float *want_l = ref_get(key, &nl);
    float *pool3 = malloc(sizeof(float) * (size_t)n * 2048);
    float *logits = malloc(sizeof(float) * (size_t)n * k);
    LG_ASSERT(pool3 && logits);
    CHECK_OK(lg_inception_run(net, x, n, c, h, w, pool3, logits));
    if (want_p && np == (int64_t)n * 2048) {
        snprintf(key, sizeof key, "pool3 (%s, %dx%dx%dx%d)", tag, n, c, h, w);
        lg_test_close(pool3, want_p, (size_t)np, ATOL, RTOL, key);
        double m = 0;
        for (int64_t i = 0; i < np; i++) m = fmax(m, fabs(pool3[i] - want_p[i]));
        printf("  %s: pool3 max |err| %.3g\n", tag, m);
    } else {
        CHECK(0, "pool3.%s: want %d x 2048 values", tag, n);
    }
    if (want_l && nl == (int64_t)n * k) {
        snprintf(key, sizeof key, "logits (%s)", tag);
        lg_test_close(logits, want_l, (size_t)nl, ATOL, RTOL, key);
        double m = 0;
        for (int64_t i = 0; i < nl; i++) m = fmax(m, fabs(logits[i] - want_l[i]));
        printf("  %s: logits max |err| %.3g\n", tag, m);
    } else {
        CHECK(0, "logits.%s: want %d x %d values", tag, n, k);
    }
    /* the Inception Score's logits: pool3 times fc.weight^T, no fc.bias */
    snprintf(key, sizeof key, "logits_unbiased.%s", tag);
    int64_t nu = 0;
    float *want_u = ref_get(key, &nu);
    if (want_u && nu == (int64_t)n * k) {
        CHECK_OK(lg_inception_is_logits(net, pool3, n, logits));
        snprintf(key, sizeof key, "IS logits without bias (%s)", tag);
        lg_test_close(logits, want_u, (size_t)nu, ATOL, RTOL, key);
    } else {
        CHECK(0, "logits_unbiased.%s: want %d x %d values", tag, n, k);
    }
    free(want_u);
    free(want_p);
    free(want_l);
    free(pool3);
    free(logits);
}

/* IS of 2 rows of logits (2, K), one split. */
static double is_of_logits(const float *logits, int k) {
    float *p = malloc(sizeof(float) * 2 * (size_t)k);
    LG_ASSERT(p);
    lg_softmax_rows(logits, 2, k, p);
    lg_is_result r;
    CHECK_OK(lg_inception_score(p, 2, k, 1, 0, &r));
    free(p);
    return r.mean;
}

/* lg_eval_samples' IS of the RGB pair, as it is given (off the 8-bit grid):
 * it must equal the IS of PyTorch's bias-free logits of the QUANTIZED pair.
 * IS with the biased logits, or of the unquantized pair, are printed and
 * must differ by more than the tolerance, so either mistake fails. */
static void check_eval_is(const lg_inception *net, const float *rgb) {
    int k = lg_inception_num_classes(net);
    int64_t nq = 0, nu = 0, nb = 0, nr = 0;
    float *q8 = ref_get("input.rgb_q8", &nq), *lq = ref_get("logits_unbiased.rgb_q8", &nu);
    float *lu = ref_get("logits_unbiased.rgb", &nr), *lb = ref_get("logits.rgb", &nb);
    if (!q8 || !lq || !lu || !lb || nq != 2 * 3 * 32 * 32 || nu != 2 * k || nr != 2 * k || nb != 2 * k) {
        CHECK(0, "reference lacks the rgb_q8 / unbiased tensors");
    } else {
        float y[2 * 3 * 32 * 32];
        lg_eval_quantize8(rgb, (size_t)nq, y);
        CHECK(!memcmp(y, q8, sizeof y), "lg_eval_quantize8 must give PyTorch's 8-bit levels bit for bit");
        double want = is_of_logits(lq, k), biased = is_of_logits(lb, k), unquant = is_of_logits(lu, k);
        lg_eval_inputs in;
        lg_eval_inputs_default(&in);
        in.metrics = LG_EVAL_IS;
        in.inception = net;
        in.is_splits = 1;
        lg_eval_result r;
        CHECK_OK(lg_eval_samples(&in, rgb, 2, 3, 32, 32, &r));
        /* noise images on synthetic weights give near-uniform predictions:
         * IS - 1 is ~8e-5, so the tolerance is absolute; the float32 error
         * observed is ~1e-9, the bias moves IS by ~2.5e-7, the
         * quantization by ~9e-8 */
        double tol = 1e-8;
        printf("  IS of the pair: %.11f (want %.11f; with the fc bias %.11f, unquantized %.11f)\n", r.is.mean, want,
               biased, unquant);
        CHECK(fabs(r.is.mean - want) <= tol, "eval IS %.9f, want %.9f", r.is.mean, want);
        CHECK(fabs(biased - want) > 5 * tol && fabs(unquant - want) > 5 * tol,
              "the test must tell the bias (%.9f) and the quantization (%.9f) apart from %.9f", biased, unquant, want);
    }
    free(q8);
    free(lq);
    free(lu);
    free(lb);
}

static void test_forward(void) {
    if (!g_have_weights) return;
    lg_inception *net = NULL;
    CHECK_OK(lg_inception_load(&net, g_weights));
    if (!net) return;
    CHECK(lg_inception_num_classes(net) == 1008, "K = %d", lg_inception_num_classes(net));
    CHECK(lg_inception_get_variant(net) == LG_INCEPTION_FID, "variant");
    CHECK(strstr(lg_inception_describe(net), "synthetic") != NULL, "describe: %s",
          lg_inception_describe(net));

    const char *e = getenv("LG_TEST_INCEPTION_FULL");
    int full = e ? atoi(e) != 0 : FULL_DEFAULT;
    int64_t n = 0;
    float *gray = ref_get("input.gray", &n);
    if (gray && n == 28 * 28) compare(net, "gray", gray, 1, 1, 28, 28);
    if (full) {
        float *rgb = ref_get("input.rgb", &n);
        if (rgb && n == 2 * 3 * 32 * 32) compare(net, "rgb", rgb, 2, 3, 32, 32);
        if (rgb && n == 2 * 3 * 32 * 32) check_eval_is(net, rgb);
        free(rgb);
    } else {
        printf("  (RGB batch skipped: sanitizer build or LG_TEST_INCEPTION_FULL=0)\n");
    }

    /* argument errors */
    float px[4] = {0, 0, 0, 0}, out[2048];
    CHECK_STATUS(lg_inception_run(net, px, 1, 2, 2, 2, out, NULL), LG_ERR_INVALID_ARG);
    CHECK_STATUS(lg_inception_run(net, px, 0, 1, 2, 2, out, NULL), LG_ERR_INVALID_ARG);
    CHECK_STATUS(lg_inception_run(net, px, 1, 1, 2, 2, NULL, NULL), LG_ERR_INVALID_ARG);
    px[3] = NAN;
    CHECK_STATUS(lg_inception_run(net, px, 1, 1, 2, 2, out, NULL), LG_ERR_NONFINITE);
    free(gray);
    lg_inception_free(net);
}

/* ---- the GPU exec's element bodies (inception_kern.h) as a host exec:
 * the loops stand in for the grid, column-major cblas_sgemm for cuBLAS;
 * st is the driver's lg_inc_dev, as on the GPU ---- */
static int g_emu_skew; /* nonzero: every conv output is 1% off (a broken kernel) */

static void e_conv(void *st, const lg_inc_conv *cv, int nb, const float *x, int h, int w, float *y, size_t ys) {
    const lg_inc_dev *d = st;
    lg_inc_geo g = lg_inc_geo_of(cv, h, w);
    lg_inc_gemm q = lg_inc_gemm_of(cv, h, w, ys);
    const float *a = x;
    if (!q.direct) {
        LG_ASSERT((size_t)q.sa <= LG_INC_COL_CAP);
        for (int64_t i = 0; i < nb * q.sa; i++) lg_inc_im2col_at(d->col, x, g, i);
        a = d->col;
    }
    for (int b = 0; b < nb; b++)
        cblas_sgemm(CblasColMajor, CblasNoTrans, CblasNoTrans, q.m, q.n, q.k, g_emu_skew ? 1.01f : 1.0f, a + b * q.sa,
                    q.lda, lg_inc_dev_w(d, cv->w), q.ldb, 0.0f, y + b * q.sc, q.ldc);
    for (int64_t i = 0; i < (int64_t)nb * q.n * q.m; i++) lg_inc_bias_relu_at(y, lg_inc_dev_w(d, cv->b), q.n, q.m, q.sc, i);
}
static void e_maxpool3s2(void *st, int nb, const float *x, int c, int h, int w, float *y, size_t ys) {
    int oh = lg_inc_out_dim(h, 3, 2, 0), ow = lg_inc_out_dim(w, 3, 2, 0);
    for (int64_t i = 0; i < (int64_t)nb * c * oh * ow; i++) lg_inc_maxpool3s2_at(y, x, c, h, w, oh, ow, (int64_t)ys, i);
}
static void e_pool3s1(void *st, int nb, const float *x, int c, int h, int w, lg_inc_pool mode, float *y) {
    for (int64_t i = 0; i < (int64_t)nb * c * h * w; i++) lg_inc_pool3s1_at(y, x, h, w, (int)mode, i);
}
static void e_global_avg(void *st, int nb, const float *x, int c, int hw, float *y) {
    for (int64_t i = 0; i < (int64_t)nb * c; i++) lg_inc_global_avg_at(y, x, hw, i);
}
static void e_prep(void *st, int nb, const float *x, int c, int h, int w, float *y) {
    for (int64_t i = 0; i < (int64_t)nb * 3 * LG_INCEPTION_SIZE * LG_INCEPTION_SIZE; i++) lg_inc_prep_at(y, x, c, h, w, i);
}

/* The GPU's resize body gives lg_inception_resize's bits: shrinking,
 * enlarging, non-square, a 299x299 copy, grayscale repeated. */
static void test_prep_body(void) {
    static const int cases[][3] = {{3, 32, 32}, {1, 28, 28}, {3, 400, 350}, {1, 7, 300}, {3, 299, 299}};
    const int S = LG_INCEPTION_SIZE;
    for (int k = 0; k < 5; k++) {
        int c = cases[k][0], h = cases[k][1], w = cases[k][2];
        size_t ni = (size_t)2 * c * h * w, no = (size_t)2 * 3 * S * S;
        float *x = malloc(ni * sizeof(float)), *a = malloc(no * sizeof(float)), *b = malloc(no * sizeof(float));
        LG_ASSERT(x && a && b);
        for (size_t i = 0; i < ni; i++) x[i] = sinf(0.3f * (float)i) * 0.9f;
        for (int img = 0; img < 2; img++) { /* the host path: resize, then repeat a gray plane */
            float *o = a + (size_t)img * 3 * S * S;
            lg_inception_resize(x + (size_t)img * c * h * w, c, h, w, S, S, o);
            for (int ch = c; ch < 3; ch++) memcpy(o + (size_t)ch * S * S, o, sizeof(float) * S * S);
        }
        e_prep(NULL, 2, x, c, h, w, b);
        CHECK(memcmp(a, b, no * sizeof(float)) == 0, "the GPU resize body differs from lg_inception_resize for %dx%dx%d",
              c, h, w);
        free(x);
        free(a);
        free(b);
    }
}

/* A device whose allocations above g_alloc_cap bytes fail. */
static size_t g_alloc_cap;
static int g_alloc_refused;
static void *alloc_small(size_t bytes) {
    if (bytes > g_alloc_cap) {
        g_alloc_refused++;
        return NULL;
    }
    return lg_backend_cpu()->alloc(bytes);
}
static lg_status failing_status(void) { return lg_error_set(LG_ERR_BACKEND, "a device error (test)"); }

/* The trunk over nb images at a time (the layout the CUDA path uses) must
 * give what one image at a time gives, bit for bit: a wrong image stride in
 * a concat, a pool or a temp would mix images. */
static void test_batched(void) {
    if (!g_have_weights) return;
    lg_inception *net = NULL;
    CHECK_OK(lg_inception_load(&net, g_weights));
    if (!net) return;
    enum { N = 3, C = 1, H = 11, W = 13 };
    int k = lg_inception_num_classes(net);
    float x[N * C * H * W];
    for (int i = 0; i < N * C * H * W; i++) x[i] = sinf(0.7f * (float)i) * (i % 3 == 0 ? 1.0f : 0.5f);
    size_t fp = (size_t)N * 2048, lp = (size_t)N * k;
    float *out = malloc(sizeof(float) * 3 * (fp + lp));
    LG_ASSERT(out);
    float *p1 = out, *l1 = p1 + fp, *p2 = l1 + lp, *l2 = p2 + fp, *p3 = l2 + lp, *l3 = p3 + fp;
    CHECK_OK(lg_inc_run_host(net, x, N, C, H, W, 1, p1, l1));
    CHECK_OK(lg_inc_run_host(net, x, N, C, H, W, 2, p2, l2)); /* a pass of 2, then of 1 */
    CHECK(memcmp(p1, p2, fp * sizeof(float)) == 0, "pool3 in passes of 2 differs from one image at a time");
    CHECK(memcmp(l1, l2, lp * sizeof(float)) == 0, "logits in passes of 2 differ from one image at a time");
    CHECK(memcmp(p1, p1 + 2048, 2048 * sizeof(float)) != 0, "the probe images must differ");
    /* the GPU path's driver, kernel bodies and gemm arguments, run here:
     * the CPU backend's memory stands in for the device's */
    const float *params = lg_inc_params(net);
    lg_inc_exec emu = {NULL, e_prep, e_conv, e_maxpool3s2, e_pool3s1, e_global_avg};
    CHECK_OK(lg_inc_run_device(net, lg_backend_cpu(), &emu, params, NULL, 2, x, N, C, H, W, p2, l2));
    double dp = 0, dl = 0;
    for (size_t i = 0; i < fp; i++) dp = fmax(dp, fabs(p2[i] - p1[i]));
    for (size_t i = 0; i < lp; i++) dl = fmax(dl, fabs(l2[i] - l1[i]));
    printf("  GPU driver and kernel bodies on the host, passes of 2: max |diff| pool3 %.3g, logits %.3g\n", dp, dl);
    lg_test_close(p2, p1, fp, 1e-6, 1e-5, "pool3, GPU kernel bodies vs host kernels");
    lg_test_close(l2, l1, lp, 1e-6, 1e-5, "logits, GPU kernel bodies vs host kernels");
    /* an image larger than the network's input is resized on the host and
     * goes up resized (the device resizes only smaller ones) */
    {
        enum { BH = 300, BW = 301 };
        float *big = malloc(sizeof(float) * 3 * BH * BW);
        LG_ASSERT(big);
        for (int i = 0; i < 3 * BH * BW; i++) big[i] = cosf(0.01f * (float)i);
        CHECK_OK(lg_inc_run_host(net, big, 1, 3, BH, BW, 1, p1 + 2048, NULL));
        CHECK_OK(lg_inc_run_device(net, lg_backend_cpu(), &emu, params, NULL, 2, big, 1, 3, BH, BW, p2 + 2048, NULL));
        lg_test_close(p2 + 2048, p1 + 2048, 2048, 1e-6, 1e-5, "pool3 of a 3x300x301 image, device path vs host");
        free(big);
        CHECK_OK(lg_inc_run_host(net, x, N, C, H, W, 1, p1, l1)); /* restore the small images' reference */
    }
    /* a device that cannot hold 2 images' scratch: passes of 1, same values */
    lg_backend small = *lg_backend_cpu();
    small.alloc = alloc_small;
    g_alloc_cap = (size_t)3 * LG_INC_COL_CAP * sizeof(float) / 2;
    memset(p2, 0, fp * sizeof(float));
    CHECK_OK(lg_inc_run_device(net, &small, &emu, params, NULL, 2, x, N, C, H, W, p2, NULL));
    CHECK(g_alloc_refused > 0, "the small device refused nothing");
    lg_test_close(p2, p1, fp, 1e-6, 1e-5, "pool3, passes of 1 after the device refused 2");
    g_alloc_cap = (size_t)LG_INC_COL_CAP * sizeof(float) / 2; /* not even one image */
    CHECK_STATUS(lg_inc_run_device(net, &small, &emu, params, NULL, 2, x, N, C, H, W, p2, NULL), LG_ERR_NOMEM);
    CHECK(strstr(lg_error_msg(), "one image's scratch") != NULL, "message: %s", lg_error_msg());
    /* a device error after a pass is returned */
    CHECK_STATUS(lg_inc_run_device(net, lg_backend_cpu(), &emu, params, failing_status, 2, x, N, C, H, W, p2, NULL),
                 LG_ERR_BACKEND);
    /* the self-check lg_inception_use_cuda runs: passes with the right
     * kernels, refuses kernels 1% off */
    CHECK_OK(lg_inc_self_check(net, lg_backend_cpu(), &emu, params, NULL));
    g_emu_skew = 1;
    CHECK_STATUS(lg_inc_self_check(net, lg_backend_cpu(), &emu, params, NULL), LG_ERR_BACKEND);
    CHECK(strstr(lg_error_msg(), "disagrees with the CPU") != NULL, "message: %s", lg_error_msg());
    g_emu_skew = 0;
    /* and what lg_inception_run gives (images over threads) */
    CHECK_OK(lg_inception_run(net, x, N, C, H, W, p3, l3));
    lg_test_close(p3, p1, fp, 1e-6, 1e-5, "pool3, lg_inception_run vs passes");
    lg_test_close(l3, l1, lp, 1e-6, 1e-5, "logits, lg_inception_run vs passes");

    /* without a GPU (CI) the move fails cleanly and the net stays usable */
    CHECK(!lg_inception_on_cuda(net), "a loaded net starts on the cpu");
    if (!lg_backend_cuda()) {
        CHECK_STATUS(lg_inception_use_cuda(net), LG_ERR_UNSUPPORTED);
        CHECK(strstr(lg_error_msg(), "stays on the cpu") != NULL,
              "message: %s", lg_error_msg());
        CHECK(!lg_inception_on_cuda(net), "still on the cpu");
        CHECK_OK(lg_inception_run(net, x, 1, C, H, W, p3, NULL));
        CHECK(memcmp(p3, p1, 2048 * sizeof(float)) == 0, "the net still computes the same");
    }
    CHECK_STATUS(lg_inception_use_cuda(NULL), LG_ERR_INVALID_ARG);
    free(out);
    lg_inception_free(net);
}

int main(void) {
    const char *dir = getenv("LG_TEST_DATA");
    char path[512];
    snprintf(path, sizeof path, "%s/inception/reference.safetensors", dir ? dir : "tests/data");
    lg_status s = lg_st_open(&g_ref, path);
    CHECK(s == LG_OK, "cannot open %s: %s (regenerate: python3 tools/gen_inception_reference.py)",
          path, lg_error_msg());
    const char *tmp = getenv("TMPDIR");
    snprintf(g_dir, sizeof g_dir, "%s/lg_inception_XXXXXX", tmp && *tmp ? tmp : "/tmp");
    if (!mkdtemp(g_dir)) {
        perror("mkdtemp");
        return 1;
    }
    snprintf(g_weights, sizeof g_weights, "%s/synthetic.safetensors", g_dir);

    LG_TEST_RUN(test_resize);
    LG_TEST_RUN(test_prep_body);
    LG_TEST_RUN(test_load_errors);
    LG_TEST_RUN(test_load_fails_fast);
    LG_TEST_RUN(test_synthetic_weights);
    LG_TEST_RUN(test_forward);
    LG_TEST_RUN(test_batched);

    unlink(g_weights);
    rmdir(g_dir);
    lg_st_close(g_ref);
    return lg_test_summary("test_inception");
}
