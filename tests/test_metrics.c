/* Known-answer tests of the metric math (include/lipgan/metrics.h): FID,
 * feature statistics and their files, Inception Score, KID, toy mode
 * metrics, class histograms, the spectral-collapse statistic and detector;
 * and the parts of eval.h that need no downloaded network: 8-bit
 * quantization of samples (with a fresh classifier), the text lines, a
 * reference that is not a covariance, statistics files' source, NaN and
 * .npz inputs. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "lg_test.h"
#include "lipgan/classifier.h"
#include "lipgan/eval.h"
#include "lipgan/fileio.h"
#include "lipgan/metrics.h"
#include "lipgan/safetensors.h"

static char g_dir[64]; /* temp directory for files */

static double normal(lg_test_rng *r) {
    double u1 = (lg_test_rng_u64(r) >> 11) * 0x1.0p-53, u2 = (lg_test_rng_u64(r) >> 11) * 0x1.0p-53;
    return sqrt(-2 * log(1 - u1)) * cos(2 * M_PI * u2);
}

/* Statistics built by hand (owned arrays). */
static lg_fid_stats stats_make(int d, int64_t n) {
    lg_fid_stats s = {.dim = d, .n = n, .mu = calloc((size_t)d, sizeof(double)),
                      .sigma = calloc((size_t)d * d, sizeof(double))};
    LG_ASSERT(s.mu && s.sigma);
    return s;
}

/* A random orthogonal d x d matrix (Gram-Schmidt of a Gaussian matrix). */
static void random_orthogonal(lg_test_rng *r, int d, double *q) {
    for (int i = 0; i < d * d; i++) q[i] = normal(r);
    for (int i = 0; i < d; i++) { /* rows */
        for (int j = 0; j < i; j++) {
            double dot = 0;
            for (int k = 0; k < d; k++) dot += q[i * d + k] * q[j * d + k];
            for (int k = 0; k < d; k++) q[i * d + k] -= dot * q[j * d + k];
        }
        double nrm = 0;
        for (int k = 0; k < d; k++) nrm += q[i * d + k] * q[i * d + k];
        nrm = sqrt(nrm);
        for (int k = 0; k < d; k++) q[i * d + k] /= nrm;
    }
}

/* sigma = Q^T diag(l) Q */
static void rotate_diag(const double *q, const double *l, int d, double *sigma) {
    for (int i = 0; i < d; i++)
        for (int j = 0; j < d; j++) {
            double s = 0;
            for (int k = 0; k < d; k++) s += q[k * d + i] * l[k] * q[k * d + j];
            sigma[i * d + j] = s;
        }
}

static void test_fid_stats_match_two_pass(void) {
    /* features with a large common offset: the shifted sums must keep the
     * covariance accurate (a naive E[xx] - E[x]^2 in float would not) */
    enum { N = 300, D = 7 };
    lg_test_rng r = lg_test_rng_make(1);
    float *f = malloc(sizeof(float) * N * D);
    for (int i = 0; i < N * D; i++) f[i] = (float)(1000.0 + normal(&r) * (1 + i % D));
    lg_fid_stats s;
    CHECK_OK(lg_fid_stats_compute(&s, f, N, D));
    CHECK(s.n == N && s.dim == D, "n %lld dim %d", (long long)s.n, s.dim);
    double mu[D] = {0};
    for (int i = 0; i < N; i++)
        for (int j = 0; j < D; j++) mu[j] += f[i * D + j] / (double)N;
    double worst = 0;
    for (int a = 0; a < D; a++) {
        worst = fmax(worst, fabs(mu[a] - s.mu[a]));
        for (int b = 0; b < D; b++) {
            double c = 0;
            for (int i = 0; i < N; i++) c += (f[i * D + a] - mu[a]) * (f[i * D + b] - mu[b]);
            c /= N - 1;
            worst = fmax(worst, fabs(c - s.sigma[a * D + b]));
        }
    }
    CHECK(worst < 1e-9, "stats differ from the two-pass reference by %g", worst);
    /* streaming in uneven batches gives the same statistics */
    lg_fid_accum acc;
    CHECK_OK(lg_fid_accum_init(&acc, D));
    int cuts[] = {0, 1, 2, 50, 299, 300};
    for (int c = 0; c + 1 < 6; c++) CHECK_OK(lg_fid_accum_add(&acc, f + cuts[c] * D, cuts[c + 1] - cuts[c]));
    lg_fid_stats s2;
    CHECK_OK(lg_fid_accum_finish(&acc, &s2));
    lg_fid_accum_free(&acc);
    worst = 0;
    for (int i = 0; i < D * D; i++) worst = fmax(worst, fabs(s.sigma[i] - s2.sigma[i]));
    for (int i = 0; i < D; i++) worst = fmax(worst, fabs(s.mu[i] - s2.mu[i]));
    CHECK(s2.n == N && worst < 1e-9, "streaming stats differ by %g (n %lld)", worst, (long long)s2.n);
    lg_fid_stats_free(&s);
    lg_fid_stats_free(&s2);
    /* errors */
    CHECK_STATUS(lg_fid_stats_compute(&s, f, 1, D), LG_ERR_INVALID_ARG);
    f[5] = NAN;
    CHECK_STATUS(lg_fid_stats_compute(&s, f, N, D), LG_ERR_NONFINITE);
    free(f);
}

static void test_fid_self_zero(void) {
    enum { N = 400, D = 24 };
    lg_test_rng r = lg_test_rng_make(2);
    float *f = malloc(sizeof(float) * N * D);
    for (int i = 0; i < N * D; i++) f[i] = (float)(normal(&r) + (i % D) * 0.1);
    lg_fid_result res;
    CHECK_OK(lg_fid_from_features(f, N, f, N, D, &res));
    CHECK(res.fid >= 0 && res.fid < 1e-8, "FID of a set with itself is %g", res.fid);
    CHECK(res.n1 == N && res.n2 == N && res.dim == D && res.eps == 0, "n1 %lld n2 %lld dim %d eps %g",
          (long long)res.n1, (long long)res.n2, res.dim, res.eps);
    free(f);
}

/* Diagonal (and commonly rotated) covariances: sum (sqrt a - sqrt b)^2 +
 * ||mu1 - mu2||^2 exactly. */
static void test_fid_closed_form_commuting(void) {
    enum { D = 12 };
    lg_test_rng r = lg_test_rng_make(3);
    lg_fid_stats a = stats_make(D, 100), b = stats_make(D, 200);
    double la[D], lb[D], q[D * D], want = 0;
    for (int i = 0; i < D; i++) {
        la[i] = 0.1 + 3 * lg_test_uniform(&r, 0, 1);
        lb[i] = 0.1 + 3 * lg_test_uniform(&r, 0, 1);
        a.mu[i] = normal(&r);
        b.mu[i] = normal(&r);
        want += (a.mu[i] - b.mu[i]) * (a.mu[i] - b.mu[i]) + (sqrt(la[i]) - sqrt(lb[i])) * (sqrt(la[i]) - sqrt(lb[i]));
    }
    for (int pass = 0; pass < 2; pass++) {
        if (pass == 0) {
            for (int i = 0; i < D; i++) a.sigma[i * D + i] = la[i], b.sigma[i * D + i] = lb[i];
        } else { /* the same spectra in a shared random basis */
            random_orthogonal(&r, D, q);
            rotate_diag(q, la, D, a.sigma);
            rotate_diag(q, lb, D, b.sigma);
        }
        lg_fid_result res;
        CHECK_OK(lg_fid_compute(&a, &b, &res));
        CHECK(fabs(res.fid - want) < 1e-9 * (1 + want), "pass %d: FID %.12g, closed form %.12g", pass, res.fid,
              want);
        CHECK(res.n1 == 100 && res.n2 == 200, "sample counts %lld %lld", (long long)res.n1, (long long)res.n2);
        lg_fid_result rev;
        CHECK_OK(lg_fid_compute(&b, &a, &rev));
        CHECK(fabs(rev.fid - res.fid) < 1e-9 * (1 + want), "FID not symmetric: %.12g vs %.12g", rev.fid, res.fid);
    }
    lg_fid_stats_free(&a);
    lg_fid_stats_free(&b);
}

/* Non-commuting 2x2 covariances: Tr sqrt(A) = sqrt(tr A + 2 sqrt(det A))
 * for A = S1 S2 (real positive eigenvalues). */
static void test_fid_closed_form_2x2(void) {
    lg_test_rng r = lg_test_rng_make(4);
    for (int t = 0; t < 20; t++) {
        lg_fid_stats a = stats_make(2, 10), b = stats_make(2, 10);
        for (int s = 0; s < 2; s++) {
            lg_fid_stats *st = s ? &b : &a;
            double m[4];
            for (int i = 0; i < 4; i++) m[i] = normal(&r);
            /* sigma = M M^T + 0.01 I */
            st->sigma[0] = m[0] * m[0] + m[1] * m[1] + 0.01;
            st->sigma[3] = m[2] * m[2] + m[3] * m[3] + 0.01;
            st->sigma[1] = st->sigma[2] = m[0] * m[2] + m[1] * m[3];
            st->mu[0] = normal(&r), st->mu[1] = normal(&r);
        }
        const double *p = a.sigma, *q = b.sigma;
        double prod[4] = {p[0] * q[0] + p[1] * q[2], p[0] * q[1] + p[1] * q[3], p[2] * q[0] + p[3] * q[2],
                          p[2] * q[1] + p[3] * q[3]};
        double det = prod[0] * prod[3] - prod[1] * prod[2];
        double trsqrt = sqrt(prod[0] + prod[3] + 2 * sqrt(det));
        double dm = (a.mu[0] - b.mu[0]) * (a.mu[0] - b.mu[0]) + (a.mu[1] - b.mu[1]) * (a.mu[1] - b.mu[1]);
        double want = dm + p[0] + p[3] + q[0] + q[3] - 2 * trsqrt;
        lg_fid_result res;
        CHECK_OK(lg_fid_compute(&a, &b, &res));
        CHECK(fabs(res.tr_covmean - trsqrt) < 1e-9 * (1 + trsqrt), "case %d: Tr sqrt %.12g want %.12g", t,
              res.tr_covmean, trsqrt);
        CHECK(fabs(res.fid - want) < 1e-8 * (1 + want), "case %d: FID %.12g want %.12g", t, res.fid, want);
        lg_fid_stats_free(&a);
        lg_fid_stats_free(&b);
    }
}

/* Two sampled Gaussian sets: the FID of the samples approaches the closed
 * form of the true parameters (bias ~ D/N). */
static void test_fid_sampled_gaussians(void) {
    enum { N = 20000, D = 4 };
    lg_test_rng r = lg_test_rng_make(5);
    const double va[D] = {1, 2, 0.5, 1}, vb[D] = {1.5, 1, 0.5, 3}, ma[D] = {0, 0, 0, 0}, mb[D] = {1, 0, -1, 0};
    float *fa = malloc(sizeof(float) * N * D), *fb = malloc(sizeof(float) * N * D);
    double want = 0;
    for (int j = 0; j < D; j++)
        want += (ma[j] - mb[j]) * (ma[j] - mb[j]) + (sqrt(va[j]) - sqrt(vb[j])) * (sqrt(va[j]) - sqrt(vb[j]));
    for (int i = 0; i < N; i++)
        for (int j = 0; j < D; j++) {
            fa[i * D + j] = (float)(ma[j] + sqrt(va[j]) * normal(&r));
            fb[i * D + j] = (float)(mb[j] + sqrt(vb[j]) * normal(&r));
        }
    lg_fid_result res;
    CHECK_OK(lg_fid_from_features(fa, N, fb, N, D, &res));
    CHECK(fabs(res.fid - want) < 0.05 * want, "sampled FID %g, population closed form %g", res.fid, want);
    CHECK(res.n1 == N && res.n2 == N, "sample counts %lld %lld", (long long)res.n1, (long long)res.n2);
    free(fa);
    free(fb);
}

/* Fewer samples than dimensions: singular covariances stay finite and real. */
static void test_fid_singular(void) {
    enum { N = 10, D = 32 };
    lg_test_rng r = lg_test_rng_make(6);
    float *fa = malloc(sizeof(float) * N * D), *fb = malloc(sizeof(float) * N * D);
    for (int i = 0; i < N * D; i++) fa[i] = (float)normal(&r), fb[i] = (float)(normal(&r) * 1.5 + 0.2);
    lg_fid_result res;
    CHECK_OK(lg_fid_from_features(fa, N, fb, N, D, &res));
    CHECK(isfinite(res.fid) && res.fid > 0, "singular FID %g", res.fid);
    CHECK(isfinite(res.tr_covmean) && res.tr_covmean >= 0, "Tr sqrt %g", res.tr_covmean);
    CHECK(res.neg_eig > -1e-6, "clamped eigenvalue %g is more than rounding", res.neg_eig);
    CHECK_OK(lg_fid_from_features(fa, N, fa, N, D, &res));
    CHECK(res.fid < 1e-7, "singular self-FID %g", res.fid);
    free(fa);
    free(fb);
    /* rank-one covariances on orthogonal axes: sqrt(S1 S2) = 0, FID = 2 */
    lg_fid_stats a = stats_make(D, 2), b = stats_make(D, 2);
    a.sigma[0] = 1;
    b.sigma[1 * D + 1] = 1;
    CHECK_OK(lg_fid_compute(&a, &b, &res));
    CHECK(fabs(res.fid - 2) < 1e-9 && fabs(res.tr_covmean) < 1e-7, "orthogonal rank one: FID %.12g Tr %g", res.fid,
          res.tr_covmean);
    /* the same rank-one covariance: FID 0 */
    b.sigma[1 * D + 1] = 0;
    b.sigma[0] = 1;
    CHECK_OK(lg_fid_compute(&a, &b, &res));
    CHECK(fabs(res.fid) < 1e-9, "identical rank one: FID %g", res.fid);
    /* all-zero covariances, different means: the mean term only */
    memset(a.sigma, 0, sizeof(double) * D * D);
    memset(b.sigma, 0, sizeof(double) * D * D);
    a.mu[3] = 2;
    CHECK_OK(lg_fid_compute(&a, &b, &res));
    CHECK(fabs(res.fid - 4) < 1e-12, "zero covariances: FID %g, want 4", res.fid);
    lg_fid_stats_free(&a);
    lg_fid_stats_free(&b);
}

static void test_fid_errors(void) {
    lg_fid_stats a = stats_make(3, 5), b = stats_make(4, 5), c = stats_make(3, 5);
    lg_fid_result res;
    CHECK_STATUS(lg_fid_compute(&a, &b, &res), LG_ERR_SHAPE);
    /* an indefinite "covariance" */
    a.sigma[0] = 1, a.sigma[4] = 1, a.sigma[8] = -1;
    c.sigma[0] = c.sigma[4] = c.sigma[8] = 1;
    CHECK_STATUS(lg_fid_compute(&a, &c, &res), LG_ERR_INVALID_ARG);
    CHECK_STATUS(lg_fid_compute(&c, &a, &res), LG_ERR_INVALID_ARG);
    a.sigma[8] = NAN;
    CHECK_STATUS(lg_fid_compute(&a, &c, &res), LG_ERR_NONFINITE);
    lg_fid_stats_free(&a);
    lg_fid_stats_free(&b);
    lg_fid_stats_free(&c);
}

static void test_fid_stats_files(void) {
    enum { D = 5 };
    char path[128], p32[128], bad[128];
    snprintf(path, sizeof path, "%s/stats.safetensors", g_dir);
    snprintf(p32, sizeof p32, "%s/stats32.safetensors", g_dir);
    snprintf(bad, sizeof bad, "%s/bad.safetensors", g_dir);
    lg_test_rng r = lg_test_rng_make(7);
    lg_fid_stats s = stats_make(D, 12345);
    for (int i = 0; i < D; i++) s.mu[i] = normal(&r) / 3.0;
    for (int i = 0; i < D; i++)
        for (int j = 0; j <= i; j++) s.sigma[i * D + j] = s.sigma[j * D + i] = (i == j ? 2.0 : 0.1) / 7.0;
    CHECK_OK(lg_fid_stats_save(&s, path, "test \"features\"\n"));
    lg_fid_stats t;
    CHECK_OK(lg_fid_stats_load(&t, path));
    CHECK(t.dim == D && t.n == 12345, "loaded dim %d n %lld", t.dim, (long long)t.n);
    if (t.dim == D) {
        CHECK(memcmp(t.mu, s.mu, sizeof(double) * D) == 0, "mu not bit-exact after F64 round trip");
        CHECK(memcmp(t.sigma, s.sigma, sizeof(double) * D * D) == 0, "sigma not bit-exact");
    }
    lg_fid_stats_free(&t);
    /* the file is a valid safetensors file with the documented layout */
    lg_st_file *f;
    CHECK_OK(lg_st_open(&f, path));
    if (f) {
        const lg_st_tensor *ts = lg_st_find(f, "sigma");
        CHECK(ts && ts->dtype == LG_ST_F64 && ts->ndim == 2 && ts->shape[0] == D, "sigma tensor");
        const char *src = lg_st_meta(f, "source"), *fmt = lg_st_meta(f, "format");
        CHECK(src && strcmp(src, "test \"features\"\n") == 0, "source metadata %s", src ? src : "(none)");
        CHECK(fmt && strcmp(fmt, "lipgan-fid-stats-v1") == 0, "format metadata");
        CHECK(lg_st_meta(f, LG_ST_CRC32_KEY) != NULL, "no %s in the statistics file", LG_ST_CRC32_KEY);
        lg_st_close(f);
    }
    /* the CRC covers mu and sigma: one flipped bit of sigma is refused */
    {
        unsigned char *raw;
        size_t len;
        CHECK_OK(lg_file_read_all(path, &raw, &len));
        if (raw) {
            raw[len - 3] ^= 0x10;
            CHECK_OK(lg_file_write_atomic(bad, raw, len));
            free(raw);
            lg_fid_stats u;
            lg_status ls = lg_fid_stats_load(&u, bad);
            CHECK(ls == LG_ERR_FORMAT && strstr(lg_error_msg(), "data damaged"), "damaged sigma: %s (%s)",
                  lg_status_str(ls), lg_error_msg());
            if (ls == LG_OK) lg_fid_stats_free(&u);
        }
    }
    /* an F32 file without "n" (as converted from elsewhere) */
    float mu32[D], sig32[D * D];
    for (int i = 0; i < D; i++) mu32[i] = (float)s.mu[i];
    for (int i = 0; i < D * D; i++) sig32[i] = (float)s.sigma[i];
    lg_st_writer *w;
    CHECK_OK(lg_st_writer_create(&w));
    CHECK_OK(lg_st_writer_add_f32(w, "mu", 1, (int64_t[]){D}, mu32));
    CHECK_OK(lg_st_writer_add_f32(w, "sigma", 2, (int64_t[]){D, D}, sig32));
    CHECK_OK(lg_st_writer_write(w, p32, 0));
    CHECK_OK(lg_st_writer_add_meta(w, "n", "lots"));
    CHECK_OK(lg_st_writer_write(w, bad, 0));
    lg_st_writer_free(w);
    CHECK_OK(lg_fid_stats_load(&t, p32));
    CHECK(t.n == 0 && t.dim == D, "F32 file: n %lld (want 0 = unknown), dim %d", (long long)t.n, t.dim);
    if (t.dim == D) CHECK(fabs(t.sigma[6] - sig32[6]) == 0, "F32 widening");
    lg_fid_stats_free(&t);
    CHECK_STATUS(lg_fid_stats_load(&t, bad), LG_ERR_FORMAT);
    CHECK(t.mu == NULL && t.sigma == NULL, "failed load leaves empty stats");
    /* a wrong sigma shape */
    CHECK_OK(lg_st_writer_create(&w));
    CHECK_OK(lg_st_writer_add_f32(w, "mu", 1, (int64_t[]){D}, mu32));
    CHECK_OK(lg_st_writer_add_f32(w, "sigma", 2, (int64_t[]){D - 1, D}, sig32));
    CHECK_OK(lg_st_writer_write(w, bad, 0));
    lg_st_writer_free(w);
    CHECK_STATUS(lg_fid_stats_load(&t, bad), LG_ERR_SHAPE);
    snprintf(bad, sizeof bad, "%s/missing.safetensors", g_dir);
    CHECK_STATUS(lg_fid_stats_load(&t, bad), LG_ERR_NOT_FOUND);
    /* garbage */
    snprintf(bad, sizeof bad, "%s/garbage.safetensors", g_dir);
    FILE *fp = fopen(bad, "wb");
    fputs("this is not a safetensors file at all", fp);
    fclose(fp);
    CHECK_STATUS(lg_fid_stats_load(&t, bad), LG_ERR_FORMAT);
    lg_fid_stats_free(&s);
}

static void test_inception_score(void) {
    enum { N = 1000, K = 10 };
    float *p = malloc(sizeof(float) * N * K);
    lg_is_result res;
    /* uniform predictions: IS = 1 */
    for (int i = 0; i < N * K; i++) p[i] = 1.0f / K;
    CHECK_OK(lg_inception_score(p, N, K, 0, 0, &res));
    CHECK(fabs(res.mean - 1) < 1e-6 && res.std < 1e-6, "uniform IS %g +- %g", res.mean, res.std);
    CHECK(res.splits == 10 && res.n == N && res.k == K, "splits %d n %lld k %d", res.splits, (long long)res.n,
          res.k);
    /* confident, balanced one-hot predictions: IS = K */
    for (int i = 0; i < N; i++)
        for (int c = 0; c < K; c++) p[i * K + c] = c == i % K ? 1.0f : 0.0f;
    CHECK_OK(lg_inception_score(p, N, K, 0, 0, &res));
    CHECK(fabs(res.mean - K) < 1e-9 && res.std < 1e-9, "one-hot balanced IS %g +- %g", res.mean, res.std);
    /* soft but balanced: IS = exp(log K - H(p)) */
    const double hi = 0.91, lo = 0.01;
    double h = -(hi * log(hi) + (K - 1) * lo * log(lo));
    for (int i = 0; i < N; i++)
        for (int c = 0; c < K; c++) p[i * K + c] = (float)(c == i % K ? hi : lo);
    CHECK_OK(lg_inception_score(p, N, K, 5, 0, &res));
    double want = exp(log(K) - h);
    CHECK(fabs(res.mean - want) < 1e-5 * want && res.splits == 5, "soft IS %.9g want %.9g", res.mean, want);
    /* sorted by class, each split sees one class: IS = 1 unshuffled,
     * near K with a shuffle (the bias PITFALLS.md warns about) */
    for (int i = 0; i < N; i++)
        for (int c = 0; c < K; c++) p[i * K + c] = c == i / (N / K) ? 1.0f : 0.0f;
    CHECK_OK(lg_inception_score(p, N, K, 10, 0, &res));
    CHECK(fabs(res.mean - 1) < 1e-9, "class-sorted unshuffled IS %g (expected the biased 1)", res.mean);
    CHECK_OK(lg_inception_score(p, N, K, 10, 42, &res));
    CHECK(res.mean > 8.5 && res.mean <= K + 1e-9, "class-sorted shuffled IS %g (expected near %d)", res.mean, K);
    /* logits -> softmax -> IS; invalid inputs */
    float z[3 * 2] = {0, 0, 100, -100, -3, 5};
    lg_softmax_rows(z, 3, 2, z);
    CHECK(fabs(z[0] - 0.5f) < 1e-7 && z[2] == 1.0f && z[3] < 1e-30 && fabs(z[5] - 1 / (1 + exp(-8.0))) < 1e-7,
          "softmax %g %g %g %g", z[0], z[2], z[3], z[5]);
    for (int c = 0; c < K; c++) p[c] = 0.5f; /* row 0 sums to 5 */
    CHECK_STATUS(lg_inception_score(p, N, K, 10, 0, &res), LG_ERR_INVALID_ARG);
    p[0] = -0.5f;
    CHECK_STATUS(lg_inception_score(p, N, K, 10, 0, &res), LG_ERR_INVALID_ARG);
    p[0] = NAN;
    CHECK_STATUS(lg_inception_score(p, N, K, 10, 0, &res), LG_ERR_NONFINITE);
    CHECK_STATUS(lg_inception_score(p, 5, K, 10, 0, &res), LG_ERR_INVALID_ARG);
    free(p);
}

/* Direct unbiased MMD^2 over all rows (the subset is everything). */
static double mmd_direct(const float *x, const float *y, int m, int d) {
    double sxx = 0, syy = 0, sxy = 0;
    for (int i = 0; i < m; i++)
        for (int j = 0; j < m; j++) {
            double a = 0, b = 0, c = 0;
            for (int k = 0; k < d; k++) {
                a += (double)x[i * d + k] * x[j * d + k];
                b += (double)y[i * d + k] * y[j * d + k];
                c += (double)x[i * d + k] * y[j * d + k];
            }
            if (i != j) sxx += pow(a / d + 1, 3), syy += pow(b / d + 1, 3);
            sxy += pow(c / d + 1, 3);
        }
    return (sxx + syy) / ((double)m * (m - 1)) - 2 * sxy / ((double)m * m);
}

static void test_kid(void) {
    enum { N = 400, D = 8 };
    lg_test_rng r = lg_test_rng_make(8);
    float *a = malloc(sizeof(float) * N * D), *b = malloc(sizeof(float) * N * D), *c = malloc(sizeof(float) * N * D);
    for (int i = 0; i < N * D; i++) {
        a[i] = (float)normal(&r);
        b[i] = (float)normal(&r);
        c[i] = (float)(normal(&r) + 0.5);
    }
    lg_kid_result res;
    /* known answer: one subset that is the whole (small) set */
    CHECK_OK(lg_kid(a, 30, c, 30, D, 1, 30, 1, &res));
    double want = mmd_direct(a, c, 30, D);
    CHECK(fabs(res.mean - want) < 1e-10 * (1 + fabs(want)) && res.std == 0, "KID %.12g, direct MMD^2 %.12g",
          res.mean, want);
    /* unbiased: over independent draws of two sets from the same
     * distribution, the mean of the estimates is 0 within 4 standard errors
     * (the biased estimator would sit near +0.1 here) */
    enum { T = 60, M2 = 60 };
    double tsum = 0, tsq = 0;
    int negative = 0;
    float *x = malloc(sizeof(float) * M2 * D), *y = malloc(sizeof(float) * M2 * D);
    for (int t = 0; t < T; t++) {
        for (int i = 0; i < M2 * D; i++) x[i] = (float)normal(&r), y[i] = (float)normal(&r);
        CHECK_OK(lg_kid(x, M2, y, M2, D, 1, M2, 1, &res));
        tsum += res.mean;
        tsq += res.mean * res.mean;
        negative += res.mean < 0;
    }
    free(x);
    free(y);
    double tmean = tsum / T, tsd = sqrt(tsq / T - tmean * tmean), se = tsd / sqrt((double)T);
    CHECK(fabs(tmean) < 4 * se, "same distribution: mean KID %g over %d draws, standard error %g", tmean, T, se);
    CHECK(negative > 0 && negative < T, "%d of %d estimates negative; an unbiased estimator gives some", negative, T);
    CHECK_OK(lg_kid(a, N, b, N, D, 200, 100, 3, &res));
    CHECK(res.subsets == 200 && res.subset_size == 100 && res.n1 == N && res.n2 == N, "KID bookkeeping");
    double same = res.mean;
    /* shifted: clearly positive */
    CHECK_OK(lg_kid(a, N, c, N, D, 50, 100, 3, &res));
    CHECK(res.mean > 20 * res.std / sqrt(50.0) && res.mean > 10 * fabs(same), "shifted KID %g +- %g (same %g)",
          res.mean, res.std, same);
    /* defaults shrink the subset to the sample count; seeds reproduce */
    lg_kid_result r1, r2, r3;
    CHECK_OK(lg_kid(a, 50, b, 60, D, 5, 0, 9, &r1));
    CHECK_OK(lg_kid(a, 50, b, 60, D, 5, 0, 9, &r2));
    CHECK_OK(lg_kid(a, 50, b, 60, D, 5, 0, 10, &r3));
    CHECK(r1.subset_size == 50 && r1.subsets == 5, "subset size %d", r1.subset_size);
    CHECK(r1.mean == r2.mean && r1.mean != r3.mean, "seeded: %g %g %g", r1.mean, r2.mean, r3.mean);
    CHECK_OK(lg_kid(a, 200, b, 200, D, 0, 0, 1, &r1));
    CHECK(r1.subsets == LG_KID_SUBSETS && r1.subset_size == 200, "defaults %d x %d", r1.subsets, r1.subset_size);
    CHECK_STATUS(lg_kid(a, 1, b, N, D, 1, 10, 1, &res), LG_ERR_INVALID_ARG);
    a[3] = INFINITY;
    CHECK_STATUS(lg_kid(a, N, b, N, D, 1, 10, 1, &res), LG_ERR_NONFINITE);
    free(a);
    free(b);
    free(c);
}

/* 8 modes on a ring of radius 2, std 0.02 (VEEGAN/PacGAN). */
static void ring_modes(float *modes) {
    for (int j = 0; j < 8; j++) {
        modes[2 * j] = (float)(2 * cos(2 * M_PI * j / 8));
        modes[2 * j + 1] = (float)(2 * sin(2 * M_PI * j / 8));
    }
}

static void test_toy_metrics(void) {
    enum { N = 2400, M = 8 };
    const float sd = 0.02f;
    float modes[2 * M], *pts = malloc(sizeof(float) * 2 * N);
    ring_modes(modes);
    lg_test_rng r = lg_test_rng_make(11);
    lg_toy_result res;
    int64_t counts[M];
    /* all 8 modes, balanced, within 2 std */
    for (int i = 0; i < N; i++) {
        double ang = lg_test_uniform(&r, 0, 2 * (float)M_PI), rad = lg_test_uniform(&r, 0, 2 * sd);
        pts[2 * i] = modes[2 * (i % M)] + (float)(rad * cos(ang));
        pts[2 * i + 1] = modes[2 * (i % M) + 1] + (float)(rad * sin(ang));
    }
    CHECK_OK(lg_toy_metrics(pts, N, modes, M, sd, counts, &res));
    CHECK(res.modes_covered == 8 && res.n_high_quality == N && fabs(res.frac_high_quality - 1) < 1e-12,
          "8 modes: covered %d, hq %lld", res.modes_covered, (long long)res.n_high_quality);
    CHECK(fabs(res.reverse_kl) < 1e-12 && counts[3] == N / M, "balanced reverse KL %g, count %lld", res.reverse_kl,
          (long long)counts[3]);
    /* 7 modes (mode 5 missing), balanced over those */
    for (int i = 0; i < N; i++) {
        int j = i % 7, mj = j < 5 ? j : j + 1;
        pts[2 * i] = modes[2 * mj] + sd;
        pts[2 * i + 1] = modes[2 * mj + 1];
    }
    CHECK_OK(lg_toy_metrics(pts, N / 7 * 7, modes, M, sd, counts, &res)); /* 342 per mode */
    CHECK(res.modes_covered == 7 && counts[5] == 0, "7 modes: covered %d", res.modes_covered);
    CHECK(fabs(res.reverse_kl - log(8.0 / 7.0)) < 1e-12, "7 modes: reverse KL %g want %g", res.reverse_kl,
          log(8.0 / 7.0));
    /* a quarter of the samples off-mode (at the origin and halfway between
     * modes), the rest on mode 0 only */
    for (int i = 0; i < N; i++) {
        if (i % 4 == 0) {
            pts[2 * i] = i % 8 ? 0.0f : (modes[0] + modes[2]) / 2;
            pts[2 * i + 1] = i % 8 ? 0.0f : (modes[1] + modes[3]) / 2;
        } else {
            pts[2 * i] = modes[0];
            pts[2 * i + 1] = modes[1] - 2 * sd;
        }
    }
    CHECK_OK(lg_toy_metrics(pts, N, modes, M, sd, NULL, &res));
    CHECK(res.n_high_quality == N * 3 / 4 && fabs(res.frac_high_quality - 0.75) < 1e-12 && res.modes_covered == 1,
          "off-mode: hq %lld covered %d", (long long)res.n_high_quality, res.modes_covered);
    CHECK(fabs(res.reverse_kl - log(8.0)) < 1e-12, "collapsed reverse KL %g want log 8", res.reverse_kl);
    /* the 3-std boundary */
    float edge[4] = {modes[0] + 2.99f * sd, modes[1], modes[2], modes[3] + 3.01f * sd};
    CHECK_OK(lg_toy_metrics(edge, 2, modes, M, sd, counts, &res));
    CHECK(res.n_high_quality == 1 && counts[0] == 1 && counts[1] == 0, "3-std boundary: hq %lld",
          (long long)res.n_high_quality);
    /* nothing high-quality; NaN samples count but never qualify */
    float far[4] = {10, 10, NAN, 0};
    CHECK_OK(lg_toy_metrics(far, 2, modes, M, sd, NULL, &res));
    CHECK(res.n == 2 && res.n_high_quality == 0 && res.modes_covered == 0 && fabs(res.reverse_kl - log(8.0)) < 1e-12,
          "no hq: n %lld covered %d rkl %g", (long long)res.n, res.modes_covered, res.reverse_kl);
    /* linspace(0, 2 pi, 8): the last mode repeats the first */
    float lin[2 * M];
    for (int j = 0; j < M; j++) {
        lin[2 * j] = (float)(2 * cos(2 * M_PI * j / (M - 1)));
        lin[2 * j + 1] = (float)(2 * sin(2 * M_PI * j / (M - 1)));
    }
    CHECK_STATUS(lg_toy_metrics(pts, N, lin, M, sd, NULL, &res), LG_ERR_INVALID_ARG);
    CHECK_STATUS(lg_toy_metrics(pts, N, modes, M, 0.0f, NULL, &res), LG_ERR_INVALID_ARG);
    /* a 5x5 grid (PacGAN), std 0.05: every sample on its mode */
    float grid[50], gp[250];
    for (int j = 0; j < 25; j++) grid[2 * j] = (float)(j % 5 * 2 - 4), grid[2 * j + 1] = (float)(j / 5 * 2 - 4);
    for (int i = 0; i < 125; i++) gp[2 * i] = grid[2 * (i % 25)] + 0.1f, gp[2 * i + 1] = grid[2 * (i % 25) + 1];
    CHECK_OK(lg_toy_metrics(gp, 125, grid, 25, 0.05f, NULL, &res));
    CHECK(res.modes_covered == 25 && res.n_high_quality == 125 && res.reverse_kl < 1e-12, "grid: covered %d",
          res.modes_covered);
    free(pts);
}

static void test_class_hist(void) {
    enum { N = 100, K = 10 };
    int pred[N];
    int64_t counts[K];
    lg_class_hist_result res;
    for (int i = 0; i < N; i++) pred[i] = i % K;
    CHECK_OK(lg_class_hist_metrics(pred, N, K, 0, counts, &res));
    CHECK(res.classes_covered == K && fabs(res.kl_uniform) < 1e-12 && counts[7] == 10 && res.n == N,
          "balanced: covered %d KL %g", res.classes_covered, res.kl_uniform);
    for (int i = 0; i < N; i++) pred[i] = i < 50 ? 2 : i < 80 ? 4 : i < 99 ? 7 : 9;
    CHECK_OK(lg_class_hist_metrics(pred, N, K, 0, NULL, &res));
    double want = 0.5 * log(K * 0.5) + 0.3 * log(K * 0.3) + 0.19 * log(K * 0.19) + 0.01 * log(K * 0.01);
    CHECK(res.classes_covered == 4 && fabs(res.kl_uniform - want) < 1e-12, "4 classes: covered %d KL %g want %g",
          res.classes_covered, res.kl_uniform, want);
    CHECK_OK(lg_class_hist_metrics(pred, N, K, 2, NULL, &res));
    CHECK(res.classes_covered == 3, "min_count 2: covered %d", res.classes_covered);
    for (int i = 0; i < N; i++) pred[i] = 3;
    CHECK_OK(lg_class_hist_metrics(pred, N, K, 0, NULL, &res));
    CHECK(res.classes_covered == 1 && fabs(res.kl_uniform - log(K)) < 1e-12, "one class: KL %g", res.kl_uniform);
    pred[9] = K;
    CHECK_STATUS(lg_class_hist_metrics(pred, N, K, 0, NULL, &res), LG_ERR_INVALID_ARG);
    float probs[4 * 3] = {0.1f, 0.7f, 0.2f, 0.5f, 0.5f, 0, NAN, 0.2f, 0.3f, 0, 0, 1};
    int am[4];
    lg_argmax_rows(probs, 4, 3, am);
    CHECK(am[0] == 1 && am[1] == 0 && am[2] == 2 && am[3] == 2, "argmax %d %d %d %d", am[0], am[1], am[2], am[3]);
}

static void test_collapse_stat(void) {
    enum { K = 50 };
    double s[K];
    lg_spectrum_stat st;
    for (int i = 0; i < K; i++) s[i] = 3.0;
    CHECK_OK(lg_spectrum_collapse_stat(s, K, 0, &st));
    CHECK(fabs(st.auc - 1) < 1e-15 && st.frac_above == 1 && st.s1 == 3 && st.k == K, "flat: auc %g frac %g", st.auc,
          st.frac_above);
    for (int i = 1; i < K; i++) s[i] = 0;
    CHECK_OK(lg_spectrum_collapse_stat(s, K, 0, &st));
    CHECK(fabs(st.auc - 1.0 / K) < 1e-15 && fabs(st.frac_above - 1.0 / K) < 1e-15, "rank one: auc %g frac %g",
          st.auc, st.frac_above);
    /* geometric s_i = r^(i-1): auc = (1 - r^K) / (K (1 - r)); above 0.1
     * while r^(i-1) > 0.1 */
    const double rr = 0.9;
    for (int i = 0; i < K; i++) s[K - 1 - i] = 5 * pow(rr, i); /* ascending order: order must not matter */
    CHECK_OK(lg_spectrum_collapse_stat(s, K, 0.1, &st));
    int above = 0;
    while (pow(rr, above) > 0.1) above++;
    double auc = (1 - pow(rr, K)) / (K * (1 - rr));
    CHECK(fabs(st.auc - auc) < 1e-12 && fabs(st.frac_above - (double)above / K) < 1e-15,
          "geometric: auc %.12g want %.12g, frac %g want %g", st.auc, auc, st.frac_above, (double)above / K);
    CHECK_OK(lg_spectrum_collapse_stat(s, K, 0.5, &st));
    above = 0;
    while (pow(rr, above) > 0.5) above++;
    CHECK(fabs(st.frac_above - (double)above / K) < 1e-15, "threshold 0.5: frac %g", st.frac_above);
    memset(s, 0, sizeof s);
    CHECK_OK(lg_spectrum_collapse_stat(s, K, 0, &st));
    CHECK(st.auc == 0 && st.frac_above == 0 && st.s1 == 0, "zero spectrum");
    s[3] = -1;
    CHECK_STATUS(lg_spectrum_collapse_stat(s, K, 0, &st), LG_ERR_INVALID_ARG);
    s[3] = NAN;
    CHECK_STATUS(lg_spectrum_collapse_stat(s, K, 0, &st), LG_ERR_NONFINITE);
}

static void test_collapse_detector(void) {
    lg_collapse_detector d;
    lg_collapse_detector_init(&d, 0, -1);
    CHECK(d.drop == LG_COLLAPSE_DROP && d.warmup == LG_COLLAPSE_WARMUP && d.onset_step == -1, "defaults");
    const double v[] = {0.80, 0.82, 0.79, 0.81, 0.30, 0.25, NAN, 0.70, 0.20, 0.90, 0.44};
    const lg_collapse_event want[] = {LG_COLLAPSE_NONE,    LG_COLLAPSE_NONE, LG_COLLAPSE_NONE,  LG_COLLAPSE_NONE,
                                      LG_COLLAPSE_ONSET,   LG_COLLAPSE_ONGOING, LG_COLLAPSE_NONE, LG_COLLAPSE_NONE,
                                      LG_COLLAPSE_ONSET,   LG_COLLAPSE_NONE, LG_COLLAPSE_ONSET};
    for (int i = 0; i < 11; i++) {
        lg_collapse_event e = lg_collapse_detector_update(&d, 1000 * i, v[i]);
        CHECK(e == want[i], "observation %d (%g): event %d, want %d", i, v[i], e, want[i]);
    }
    CHECK(d.onsets == 3 && d.onset_step == 10000 && d.count == 10 && d.running_max == 0.90,
          "onsets %lld at %lld, count %lld, max %g", (long long)d.onsets, (long long)d.onset_step, (long long)d.count,
          d.running_max);
    /* warm-up: an early drop is not flagged */
    lg_collapse_detector_init(&d, 0.5, 2);
    CHECK(lg_collapse_detector_update(&d, 0, 1.0) == LG_COLLAPSE_NONE, "first");
    CHECK(lg_collapse_detector_update(&d, 1, 0.1) == LG_COLLAPSE_NONE, "second is inside the warm-up");
    CHECK(lg_collapse_detector_update(&d, 2, 0.1) == LG_COLLAPSE_ONSET, "third flags");
    /* end to end: a layer whose spectrum decays faster and faster (SR-GAN
     * Figure 4), tracked by its auc; the onset is where auc halves */
    enum { K = 64 };
    double s[K];
    lg_collapse_detector_init(&d, 0.5, 2);
    int64_t onset = -1;
    double first_auc = 0;
    for (int step = 0; step <= 20; step++) {
        double rate = step < 10 ? 0.01 : 0.01 + 0.05 * (step - 9); /* sharp change at step 10 */
        for (int i = 0; i < K; i++) s[i] = exp(-rate * i);
        lg_spectrum_stat st;
        CHECK_OK(lg_spectrum_collapse_stat(s, K, 0, &st));
        if (step == 0) first_auc = st.auc;
        if (lg_collapse_detector_update(&d, step * 500, st.auc) == LG_COLLAPSE_ONSET && onset < 0) onset = step;
    }
    /* auc(rate) = (1 - e^{-64 rate}) / (64 (1 - e^{-rate})): 0.742 at rate
     * 0.01, 0.262 (below half of that) at rate 0.06 -> step 10 */
    CHECK(onset == 10, "collapse onset at step %lld (first auc %g)", (long long)onset, first_auc);
}

/* ---- evaluation plumbing (eval.h) that needs no downloaded network ---- */

/* lg_eval_quantize8: the 256 grid values come back bit for bit (they are what
 * the loaders make of 8-bit pixels), an off-grid value moves to the nearest
 * one, out-of-range values clamp, NaN stays. */
static void test_eval_quantize8(void) {
    float g[256], q[256];
    for (int v = 0; v < 256; v++) g[v] = (float)v / 127.5f - 1.0f; /* the loaders' u8 -> float */
    lg_eval_quantize8(g, 256, q);
    int same = 1;
    for (int v = 0; v < 256; v++) same &= memcmp(&g[v], &q[v], sizeof(float)) == 0;
    CHECK(same, "8-bit grid values must be unchanged");
    float x[6] = {0.1f, -0.3337f, 1.5f, -7.0f, NAN, 0.0f}, y[6];
    lg_eval_quantize8(x, 6, y);
    CHECK(y[0] != x[0] && fabsf(y[0] - x[0]) <= 1.0f / 127.5f / 2 + 1e-6f, "off-grid 0.1 -> %.9g", y[0]);
    CHECK(y[0] == (float)rint((0.1 + 1) * 127.5) / 127.5f - 1.0f, "0.1 -> the nearest level, %.9g", y[0]);
    CHECK(y[2] == 1.0f && y[3] == -1.0f, "clamped: %g %g", y[2], y[3]);
    CHECK(isnan(y[4]), "NaN stays NaN for the networks' check");
    CHECK(fabsf(y[5] - 0.0f) < 0.004f && y[5] != 0.0f, "0 is between two levels: %.9g", y[5]);
    lg_eval_quantize8(x, 6, x); /* in place */
    CHECK(memcmp(x, y, sizeof x - sizeof(float) * 2) == 0, "in place = out of place");
}

/* Generated images are quantized before the network: a batch and its
 * quantized copy give identical metrics (the classifier's cFID and class
 * counts; the same code path feeds Inception), while a copy moved by half a
 * level, across the rounding boundary, gives other ones. */
static void test_eval_quantizes_samples(void) {
    enum { N = 24, S = 32 * 32 };
    lg_classifier *c = NULL;
    CHECK_OK(lg_classifier_create(&c, NULL, 11));
    if (!c) return;
    lg_test_rng r = lg_test_rng_make(9);
    float *x = malloc(sizeof(float) * N * S), *xq = malloc(sizeof(float) * N * S), *ref = malloc(sizeof(float) * N * S);
    LG_ASSERT(x && xq && ref);
    lg_test_fill_uniform(&r, x, (size_t)N * S, -1.0f, 1.0f); /* off the grid almost everywhere */
    lg_test_fill_uniform(&r, ref, (size_t)N * S, -1.0f, 1.0f);
    lg_eval_quantize8(x, (size_t)N * S, xq);
    lg_fid_stats rs;
    CHECK_OK(lg_eval_stats(NULL, c, ref, N, 1, 32, 32, NULL, &rs));
    lg_eval_inputs in;
    lg_eval_inputs_default(&in);
    in.metrics = LG_EVAL_CFID | LG_EVAL_CLASSES;
    in.classifier = c;
    in.cfid_ref = &rs;
    lg_eval_result a, b, d;
    CHECK_OK(lg_eval_samples(&in, x, N, 1, 32, 32, &a));
    CHECK_OK(lg_eval_samples(&in, xq, N, 1, 32, 32, &b));
    CHECK(a.cfid.fid == b.cfid.fid && !memcmp(a.class_counts, b.class_counts, sizeof a.class_counts),
          "samples and their 8-bit version: cFID %.17g vs %.17g", a.cfid.fid, b.cfid.fid);
    /* the samples' own values are not touched */
    float x0 = x[0];
    CHECK(x0 != xq[0] || x[1] != xq[1], "the input must not be quantized in place");
    for (int i = 0; i < N * S; i++) xq[i] += (xq[i] < 0 ? 0.5f : -0.5f) / 127.5f + (xq[i] < 0 ? 1e-4f : -1e-4f);
    CHECK_OK(lg_eval_samples(&in, xq, N, 1, 32, 32, &d));
    CHECK(d.cfid.fid != a.cfid.fid, "values moved past half a level must change the result (%.17g)", d.cfid.fid);

    /* a reference that is not a covariance is bad input, named as the reference */
    for (int i = 0; i < rs.dim * rs.dim; i++) rs.sigma[i] = -rs.sigma[i];
    lg_status s = lg_eval_samples(&in, x, N, 1, 32, 32, &a);
    CHECK(s == LG_ERR_FORMAT && !strncmp(lg_error_msg(), "cfid reference statistics", 25),
          "negated reference: %s: %s", lg_status_str(s), lg_error_msg());
    lg_fid_stats_free(&rs);
    lg_classifier_free(c);
    free(x);
    free(xq);
    free(ref);
}

/* The text lines: a reference without a recorded size says so (not "vs 0
 * reference"); a KID whose subsets are all the whole of both sets says its
 * std means nothing instead of printing "+- 0". */
static void test_eval_print(void) {
    lg_eval_result r;
    memset(&r, 0, sizeof r);
    r.done = LG_EVAL_CFID | LG_EVAL_KID;
    r.cfid.fid = 1.5;
    r.cfid.n1 = 100;
    r.cfid.n2 = 0;
    r.kid.mean = 0.01;
    r.kid.subsets = 100;
    r.kid.subset_size = 50;
    r.kid.n1 = 50;
    r.kid.n2 = 50;
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    LG_ASSERT(f);
    lg_eval_result_print(&r, f);
    r.kid.n2 = 80; /* the reference's subsets differ now: a real std */
    r.kid.std = 0.002;
    lg_eval_result_print(&r, f);
    fclose(f);
    CHECK(!strstr(buf, "vs 0 reference") && strstr(buf, "a reference of unrecorded size"), "n_ref 0: %s", buf);
    CHECK(strstr(buf, "no std") && !strstr(buf, "+- 0.000000"), "identical KID subsets: %s", buf);
    CHECK(strstr(buf, "+- 0.002000   (50 samples vs 80 reference"), "KID with a spread: %s", buf);
    free(buf);
}

/* lg_fid_stats_load keeps "source"; a NaN is a bad file (FORMAT, not the
 * NONFINITE of a diverged run); a zip (.npz) gets a conversion command. */
static void test_fid_stats_load_inputs(void) {
    enum { D = 3 };
    char p[128];
    lg_fid_stats s = stats_make(D, 10), t;
    for (int i = 0; i < D; i++) s.sigma[i * D + i] = 1;
    snprintf(p, sizeof p, "%s/src.safetensors", g_dir);
    const char *src = "features X; data /d (cifar10, train, 3x32x32), first 10 of 10 images";
    CHECK_OK(lg_fid_stats_save(&s, p, src));
    CHECK_OK(lg_fid_stats_load(&t, p));
    CHECK(!strcmp(t.source, src), "source kept: '%s'", t.source);
    lg_fid_stats_free(&t);
    CHECK(t.source[0] == '\0', "free clears source");
    s.sigma[4] = NAN;
    CHECK_OK(lg_fid_stats_save(&s, p, NULL));
    lg_status st = lg_fid_stats_load(&t, p);
    CHECK(st == LG_ERR_FORMAT && strstr(lg_error_msg(), "src.safetensors") && strstr(lg_error_msg(), "non-finite"),
          "NaN in a file: %s: %s", lg_status_str(st), lg_error_msg());
    snprintf(p, sizeof p, "%s/stats.npz", g_dir);
    FILE *f = fopen(p, "wb");
    LG_ASSERT(f);
    static const char zip[] = "PK\x03\x04\x14\x00\x00\x00 and more";
    fwrite(zip, 1, sizeof zip - 1, f);
    fclose(f);
    st = lg_fid_stats_load(&t, p);
    CHECK(st == LG_ERR_FORMAT && strstr(lg_error_msg(), "zip archive") && strstr(lg_error_msg(), "python3 -c") &&
              strstr(lg_error_msg(), "stats.npz"),
          "npz: %s: %s", lg_status_str(st), lg_error_msg());
    lg_fid_stats_free(&s);
}

int main(void) {
    snprintf(g_dir, sizeof g_dir, "/tmp/lg_test_metrics_XXXXXX");
    if (!mkdtemp(g_dir)) {
        perror("mkdtemp");
        return 1;
    }
    LG_TEST_RUN(test_fid_stats_match_two_pass);
    LG_TEST_RUN(test_fid_self_zero);
    LG_TEST_RUN(test_fid_closed_form_commuting);
    LG_TEST_RUN(test_fid_closed_form_2x2);
    LG_TEST_RUN(test_fid_sampled_gaussians);
    LG_TEST_RUN(test_fid_singular);
    LG_TEST_RUN(test_fid_errors);
    LG_TEST_RUN(test_fid_stats_files);
    LG_TEST_RUN(test_inception_score);
    LG_TEST_RUN(test_kid);
    LG_TEST_RUN(test_toy_metrics);
    LG_TEST_RUN(test_class_hist);
    LG_TEST_RUN(test_collapse_stat);
    LG_TEST_RUN(test_collapse_detector);
    LG_TEST_RUN(test_eval_quantize8);
    LG_TEST_RUN(test_eval_quantizes_samples);
    LG_TEST_RUN(test_eval_print);
    LG_TEST_RUN(test_fid_stats_load_inputs);
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", g_dir);
    if (system(cmd) != 0) fprintf(stderr, "could not remove %s\n", g_dir);
    return lg_test_summary("test_metrics");
}
