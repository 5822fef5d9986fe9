/* Inception Score and KID from network outputs. See metrics.h. */
#include <cblas.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "lipgan/metrics.h"
#include "metrics/metrics_internal.h"

void lg_softmax_rows(const float *logits, int64_t n, int k, float *probs) {
    for (int64_t i = 0; i < n; i++) {
        const float *z = logits + (size_t)i * k;
        float *p = probs + (size_t)i * k;
        double mx = -INFINITY, sum = 0;
        for (int c = 0; c < k; c++) mx = fmax(mx, z[c]);
        for (int c = 0; c < k; c++) sum += exp((double)z[c] - mx);
        for (int c = 0; c < k; c++) p[c] = (float)(exp((double)z[c] - mx) / sum);
    }
}

lg_status lg_inception_score(const float *probs, int64_t n, int k, int splits, uint64_t shuffle_seed,
                             lg_is_result *out) {
    memset(out, 0, sizeof *out);
    if (splits <= 0) splits = LG_IS_SPLITS;
    if (!probs || k < 1 || n < 1 || n < splits)
        return lg_error_set(LG_ERR_INVALID_ARG,
                            "Inception Score: %lld samples, %d classes, %d splits; need k >= 1 and at "
                            "least one sample per split",
                            (long long)n, k, splits);
    for (int64_t i = 0; i < n; i++) {
        double sum = 0;
        for (int c = 0; c < k; c++) {
            float p = probs[(size_t)i * k + c];
            if (!isfinite(p))
                return lg_error_set(LG_ERR_NONFINITE, "Inception Score: row %lld holds %g", (long long)i, p);
            if (p < 0)
                return lg_error_set(LG_ERR_INVALID_ARG,
                                    "Inception Score: row %lld has a negative probability %g; pass softmax "
                                    "outputs (lg_softmax_rows), not logits",
                                    (long long)i, p);
            sum += p;
        }
        if (fabs(sum - 1) > 1e-3)
            return lg_error_set(LG_ERR_INVALID_ARG,
                                "Inception Score: row %lld sums to %g, not 1; pass softmax outputs "
                                "(lg_softmax_rows), not logits",
                                (long long)i, sum);
    }
    int64_t *order = calloc((size_t)n, sizeof(int64_t)); /* (N) row order */
    double *py = malloc(sizeof(double) * k);       /* (K) split marginal */
    if (!order || !py) {
        free(order), free(py);
        return lg_error_set(LG_ERR_NOMEM, "Inception Score: cannot allocate");
    }
    for (int64_t i = 0; i < n; i++) order[i] = i;
    if (shuffle_seed) {
        uint64_t st = shuffle_seed;
        lg_met_partial_shuffle(&st, order, n, n);
    }
    double sum = 0, sumsq = 0;
    for (int s = 0; s < splits; s++) {
        int64_t b = s * n / splits, e = (s + 1) * n / splits; /* as the original code */
        for (int c = 0; c < k; c++) py[c] = 0;
        for (int64_t i = b; i < e; i++)
            for (int c = 0; c < k; c++) py[c] += probs[(size_t)order[i] * k + c];
        for (int c = 0; c < k; c++) py[c] /= (double)(e - b);
        double kl = 0;
        for (int64_t i = b; i < e; i++)
            for (int c = 0; c < k; c++) {
                double p = probs[(size_t)order[i] * k + c];
                if (p > 0) kl += p * (log(p) - log(py[c])); /* p > 0 implies py > 0 */
            }
        double score = exp(kl / (double)(e - b));
        sum += score;
        sumsq += score * score;
    }
    free(order);
    free(py);
    out->mean = sum / splits;
    double var = sumsq / splits - out->mean * out->mean;
    out->std = var > 0 ? sqrt(var) : 0;
    out->splits = splits;
    out->n = n;
    out->k = k;
    return LG_OK;
}

/* Sum of the off-diagonal entries of k(X, X) for X (m, d) rows: the Gram
 * matrix, then (g / d + 1)^3 over the upper triangle. dgemm rather than
 * dsyrk: OpenBLAS threads small dsyrk calls and they ran 1000x slower on a
 * loaded 2-core machine. */
static double kxx_offdiag(const double *x, int m, int d, double *g /* (m, m) */) {
    cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasTrans, m, m, d, 1.0, x, d, x, d, 0.0, g, m);
    double s = 0;
    for (int i = 0; i < m; i++)
        for (int j = i + 1; j < m; j++) {
            double v = g[(size_t)i * m + j] / d + 1;
            s += v * v * v;
        }
    return 2 * s;
}

lg_status lg_kid(const float *f1, int64_t n1, const float *f2, int64_t n2, int d, int subsets,
                 int subset_size, uint64_t seed, lg_kid_result *out) {
    memset(out, 0, sizeof *out);
    if (subsets <= 0) subsets = LG_KID_SUBSETS;
    if (subset_size <= 0) subset_size = LG_KID_SUBSET_SIZE;
    int64_t m64 = subset_size;
    if (n1 < m64) m64 = n1;
    if (n2 < m64) m64 = n2;
    if (!f1 || !f2 || d < 1 || m64 < 2)
        return lg_error_set(LG_ERR_INVALID_ARG,
                            "KID: %lld and %lld samples of dimension %d; need at least 2 of each", (long long)n1,
                            (long long)n2, d);
    for (int64_t i = 0; i < n1 * d; i++)
        if (!isfinite(f1[i])) return lg_error_set(LG_ERR_NONFINITE, "KID: set 1 holds %g", f1[i]);
    for (int64_t i = 0; i < n2 * d; i++)
        if (!isfinite(f2[i])) return lg_error_set(LG_ERR_NONFINITE, "KID: set 2 holds %g", f2[i]);
    const int m = (int)m64;
    int64_t *i1 = calloc((size_t)n1, sizeof(int64_t)), *i2 = calloc((size_t)n2, sizeof(int64_t)); /* (N1), (N2) */
    double *x = malloc(sizeof(double) * (size_t)m * d), *y = malloc(sizeof(double) * (size_t)m * d);
    double *g = malloc(sizeof(double) * (size_t)m * m);
    if (!i1 || !i2 || !x || !y || !g) {
        free(i1), free(i2), free(x), free(y), free(g);
        return lg_error_set(LG_ERR_NOMEM, "KID: cannot allocate subsets of %d x %d", m, d);
    }
    for (int64_t i = 0; i < n1; i++) i1[i] = i;
    for (int64_t i = 0; i < n2; i++) i2[i] = i;
    uint64_t st = seed;
    double sum = 0, sumsq = 0;
    for (int s = 0; s < subsets; s++) {
        lg_met_partial_shuffle(&st, i1, n1, m);
        lg_met_partial_shuffle(&st, i2, n2, m);
        for (int r = 0; r < m; r++)
            for (int j = 0; j < d; j++) {
                x[(size_t)r * d + j] = f1[(size_t)i1[r] * d + j];
                y[(size_t)r * d + j] = f2[(size_t)i2[r] * d + j];
            }
        double kxx = kxx_offdiag(x, m, d, g);
        double kyy = kxx_offdiag(y, m, d, g);
        cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasTrans, m, m, d, 1.0, x, d, y, d, 0.0, g, m);
        double kxy = 0;
        for (size_t i = 0; i < (size_t)m * m; i++) {
            double v = g[i] / d + 1;
            kxy += v * v * v;
        }
        double mmd = (kxx + kyy) / ((double)m * (m - 1)) - 2 * kxy / ((double)m * m);
        sum += mmd;
        sumsq += mmd * mmd;
    }
    free(i1), free(i2), free(x), free(y), free(g);
    out->mean = sum / subsets;
    double var = sumsq / subsets - out->mean * out->mean;
    out->std = var > 0 ? sqrt(var) : 0;
    out->subsets = subsets;
    out->subset_size = m;
    out->n1 = n1;
    out->n2 = n2;
    return LG_OK;
}
