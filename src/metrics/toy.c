/* Mode metrics of 2-D toy data and class histograms of classifier
 * predictions. See metrics.h. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "lipgan/metrics.h"

/* KL(q || uniform over k bins) of a histogram with total > 0:
 * sum_{c: q_c > 0} q_c log(k q_c). */
static double kl_from_uniform(const int64_t *counts, int k, int64_t total) {
    double kl = 0;
    for (int c = 0; c < k; c++)
        if (counts[c] > 0) {
            double q = (double)counts[c] / (double)total;
            kl += q * log(k * q);
        }
    return kl > 0 ? kl : 0; /* rounding can give -1e-16 for a uniform histogram */
}

lg_status lg_toy_metrics(const float *pts, int64_t n, const float *modes, int m, float std,
                         int64_t *counts_out, lg_toy_result *out) {
    memset(out, 0, sizeof *out);
    if (!pts || !modes || n < 1 || m < 1 || !(std > 0) || !isfinite(std))
        return lg_error_set(LG_ERR_INVALID_ARG,
                            "toy metrics: %lld samples, %d modes, std %g; need n >= 1, m >= 1, std > 0",
                            (long long)n, m, std);
    for (int j = 0; j < m; j++) {
        if (!isfinite(modes[2 * j]) || !isfinite(modes[2 * j + 1]))
            return lg_error_set(LG_ERR_NONFINITE, "toy metrics: mode %d is not finite", j);
        for (int i = 0; i < j; i++) {
            double dx = modes[2 * j] - modes[2 * i], dy = modes[2 * j + 1] - modes[2 * i + 1];
            if (dx * dx + dy * dy < (double)std * std)
                return lg_error_set(LG_ERR_INVALID_ARG,
                                    "toy metrics: modes %d and %d are the same point (%g, %g); a ring "
                                    "built with linspace(0, 2*pi, M) repeats its first mode, use "
                                    "angles 2*pi*j/M",
                                    i, j, modes[2 * j], modes[2 * j + 1]);
        }
    }
    int64_t *counts = calloc((size_t)m, sizeof(int64_t)); /* (M) */
    if (!counts) return lg_error_set(LG_ERR_NOMEM, "toy metrics: cannot allocate");
    const double r2 = 9.0 * (double)std * std; /* (3 std)^2 */
    int64_t hq = 0;
    for (int64_t i = 0; i < n; i++) {
        double x = pts[2 * i], y = pts[2 * i + 1];
        if (!isfinite(x) || !isfinite(y)) continue;
        int best = 0;
        double bd = INFINITY;
        for (int j = 0; j < m; j++) {
            double dx = x - modes[2 * j], dy = y - modes[2 * j + 1], dd = dx * dx + dy * dy;
            if (dd < bd) bd = dd, best = j; /* strict: ties go to the lower index */
        }
        if (bd <= r2) {
            counts[best]++;
            hq++;
        }
    }
    out->n = n;
    out->m = m;
    out->n_high_quality = hq;
    out->frac_high_quality = (double)hq / (double)n;
    for (int j = 0; j < m; j++) out->modes_covered += counts[j] > 0;
    out->reverse_kl = hq > 0 ? kl_from_uniform(counts, m, hq) : log((double)m);
    if (counts_out) memcpy(counts_out, counts, sizeof(int64_t) * m);
    free(counts);
    return LG_OK;
}

lg_status lg_class_hist_metrics(const int *pred, int64_t n, int k, int64_t min_count, int64_t *counts_out,
                                lg_class_hist_result *out) {
    memset(out, 0, sizeof *out);
    if (!pred || n < 1 || k < 1)
        return lg_error_set(LG_ERR_INVALID_ARG, "class histogram: %lld predictions, %d classes; need >= 1 of each",
                            (long long)n, k);
    if (min_count <= 0) min_count = 1;
    int64_t *counts = calloc((size_t)k, sizeof(int64_t)); /* (K) */
    if (!counts) return lg_error_set(LG_ERR_NOMEM, "class histogram: cannot allocate");
    for (int64_t i = 0; i < n; i++) {
        if (pred[i] < 0 || pred[i] >= k) {
            free(counts);
            return lg_error_set(LG_ERR_INVALID_ARG, "class histogram: prediction %lld is %d, outside [0, %d)",
                                (long long)i, pred[i], k);
        }
        counts[pred[i]]++;
    }
    out->n = n;
    out->k = k;
    for (int c = 0; c < k; c++) out->classes_covered += counts[c] >= min_count;
    out->kl_uniform = kl_from_uniform(counts, k, n);
    if (counts_out) memcpy(counts_out, counts, sizeof(int64_t) * k);
    free(counts);
    return LG_OK;
}

void lg_argmax_rows(const float *probs, int64_t n, int k, int *pred) {
    for (int64_t i = 0; i < n; i++) {
        const float *p = probs + (size_t)i * k;
        int best = 0;
        for (int c = 1; c < k; c++)
            if (p[c] > p[best] || (p[best] != p[best] && p[c] == p[c])) best = c; /* NaN never wins */
        pred[i] = best;
    }
}
