/* The spectral-collapse statistic of a singular-value spectrum and the
 * drop detector run on it over training. See metrics.h. */
#include <math.h>
#include <string.h>

#include "lipgan/metrics.h"

lg_status lg_spectrum_collapse_stat(const double *s, int k, double thresh, lg_spectrum_stat *out) {
    memset(out, 0, sizeof *out);
    if (!s || k < 1) return lg_error_set(LG_ERR_INVALID_ARG, "spectrum statistic: empty spectrum (k = %d)", k);
    if (!(thresh > 0)) thresh = LG_COLLAPSE_THRESHOLD;
    double mx = 0;
    for (int i = 0; i < k; i++) {
        if (!isfinite(s[i])) return lg_error_set(LG_ERR_NONFINITE, "spectrum statistic: value %d is %g", i, s[i]);
        if (s[i] < 0)
            return lg_error_set(LG_ERR_INVALID_ARG, "spectrum statistic: value %d is negative (%g); pass singular values",
                                i, s[i]);
        if (s[i] > mx) mx = s[i];
    }
    out->k = k;
    out->s1 = mx;
    if (mx == 0) return LG_OK; /* a zero matrix: no spectrum to speak of */
    double area = 0;
    int above = 0;
    for (int i = 0; i < k; i++) {
        area += s[i] / mx;
        above += s[i] / mx > thresh;
    }
    out->auc = area / k;
    out->frac_above = (double)above / k;
    return LG_OK;
}

void lg_collapse_detector_init(lg_collapse_detector *d, double drop, int warmup) {
    memset(d, 0, sizeof *d);
    d->drop = (drop > 0 && drop < 1) ? drop : LG_COLLAPSE_DROP;
    d->warmup = warmup >= 0 ? warmup : LG_COLLAPSE_WARMUP;
    d->running_max = -INFINITY;
    d->onset_step = -1;
}

lg_collapse_event lg_collapse_detector_update(lg_collapse_detector *d, int64_t step, double value) {
    if (!isfinite(value)) return LG_COLLAPSE_NONE;
    int flagged = d->count >= d->warmup && d->count > 0 && value < (1 - d->drop) * d->running_max;
    lg_collapse_event ev = LG_COLLAPSE_NONE;
    if (flagged) {
        ev = d->collapsed ? LG_COLLAPSE_ONGOING : LG_COLLAPSE_ONSET;
        if (ev == LG_COLLAPSE_ONSET) {
            d->onset_step = step;
            d->onsets++;
        }
    }
    d->collapsed = flagged;
    if (value > d->running_max) d->running_max = value;
    d->count++;
    return ev;
}
