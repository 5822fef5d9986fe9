/* CPU backend: opt-in per-call timing (LG_CPU_PROFILE=1).
 *
 * When the variable is set as the backend initializes, lg_backend_cpu()
 * returns a copy of the table whose entries wrap the real ones: each call is
 * timed with the monotonic clock and added to a row keyed by the entry and
 * its detail (unary/binary op, convolution geometry). The CPU kernels are
 * synchronous, so a call's wall time is its cost. The call counts are also
 * the number of kernels the same step queues on the CUDA backend (one table,
 * one dispatch), which is how graph-level fusions are counted without a GPU.
 * Without the variable the plain table is used and none of this runs. */
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "backend/cpu/cpu_internal.h"
#include "lipgan/backend_cpu.h"

enum { MAX_ROWS = 512, KEY = 80, REPORT_CAP = 96 * 1024 };

typedef struct prof_row {
    char entry[24];  /* table entry */
    char detail[KEY]; /* op or geometry */
    long long calls;
    double ms;
} prof_row;

static lg_backend g_prof; /* the wrappers */
static const lg_backend *g_raw;
static int g_on;
static pthread_mutex_t g_mu = PTHREAD_MUTEX_INITIALIZER; /* guards the rows */
static prof_row g_rows[MAX_ROWS];
static int g_nrows;
static long long g_dropped; /* calls whose row did not fit */
static int g_dirty;         /* rows added since the last report */
static char g_report[REPORT_CAP];

static double now_ms(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec * 1e3 + t.tv_nsec * 1e-6;
}

static void add(const char *entry, const char *detail, double ms) {
    pthread_mutex_lock(&g_mu);
    int i = 0;
    while (i < g_nrows && (strcmp(g_rows[i].entry, entry) || strcmp(g_rows[i].detail, detail))) i++;
    if (i == g_nrows) {
        if (g_nrows == MAX_ROWS) {
            g_dropped++;
            pthread_mutex_unlock(&g_mu);
            return;
        }
        prof_row *r = &g_rows[g_nrows++];
        memset(r, 0, sizeof *r);
        snprintf(r->entry, sizeof r->entry, "%s", entry);
        snprintf(r->detail, sizeof r->detail, "%s", detail);
    }
    g_rows[i].calls++;
    g_rows[i].ms += ms;
    g_dirty = 1;
    pthread_mutex_unlock(&g_mu);
}

static void geom_str(char *b, size_t cap, const lg_conv_geom *g) {
    snprintf(b, cap, "n%d c%d %dx%d oc%d k%dx%d s%d p%d", g->n, g->c, g->h, g->w, g->oc, g->kh,
             g->kw, g->stride, g->pad);
}

/* A wrapper per entry: time the real call, add it to its row. */
#define TIMED(entry, detail, call)      \
    do {                                \
        double t0_ = now_ms();          \
        call;                           \
        add(entry, detail, now_ms() - t0_); \
    } while (0)

static void p_copy(float *d, const float *s, size_t n) { TIMED("copy", "", g_raw->copy(d, s, n)); }
static void p_fill(float *d, float v, size_t n) { TIMED("fill", "", g_raw->fill(d, v, n)); }
static void p_gemm(int ta, int tb, int m, int n, int k, float alpha, const float *a, int lda,
                   const float *b, int ldb, float beta, float *c, int ldc) {
    char d[KEY];
    snprintf(d, sizeof d, "%s%s m%d n%d k%d", ta ? "T" : "N", tb ? "T" : "N", m, n, k);
    TIMED("gemm", d, g_raw->gemm(ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc));
}
static void p_conv2d(float *y, const float *x, const float *w, const lg_conv_geom *g, float *ws) {
    char d[KEY];
    geom_str(d, sizeof d, g);
    TIMED("conv2d", d, g_raw->conv2d(y, x, w, g, ws));
}
static void p_conv2d_bwd_data(float *dx, const float *dy, const float *w, const lg_conv_geom *g,
                              float *ws) {
    char d[KEY];
    geom_str(d, sizeof d, g);
    TIMED("conv2d_bwd_data", d, g_raw->conv2d_bwd_data(dx, dy, w, g, ws));
}
static void p_conv2d_bwd_weight(float *dw, const float *x, const float *dy, const lg_conv_geom *g,
                                float *ws) {
    char d[KEY];
    geom_str(d, sizeof d, g);
    TIMED("conv2d_bwd_weight", d, g_raw->conv2d_bwd_weight(dw, x, dy, g, ws));
}
static void p_unary(lg_unary op, float *y, const float *x, size_t n, float alpha) {
    TIMED("unary", lg_unary_name(op), g_raw->unary(op, y, x, n, alpha));
}
static void p_binary(lg_binary op, float *y, const int64_t ys[4], const float *a,
                     const int64_t as[4], const float *b, const int64_t bs[4]) {
    TIMED("binary", lg_binary_name(op), g_raw->binary(op, y, ys, a, as, b, bs));
}
static void p_sum_to(float *y, const int64_t ys[4], const float *x, const int64_t xs[4]) {
    TIMED("sum_to", "", g_raw->sum_to(y, ys, x, xs));
}
static void p_sum_all(float *y, const float *x, size_t n) {
    TIMED("sum_all", "", g_raw->sum_all(y, x, n));
}
static void p_upsample2x(float *y, const float *x, int64_t nc, int64_t h, int64_t w) {
    TIMED("upsample2x", "", g_raw->upsample2x(y, x, nc, h, w));
}
static void p_sumpool2x2(float *y, const float *x, int64_t nc, int64_t h, int64_t w) {
    TIMED("sumpool2x2", "", g_raw->sumpool2x2(y, x, nc, h, w));
}
static void p_bn_train(float *y, float *mean, float *rstd, const float *x, const float *gamma,
                       const float *beta, float *rm, float *rv, int64_t n, int64_t c, int64_t hw,
                       float eps, float momentum) {
    TIMED("bn_train", "",
          g_raw->bn_train(y, mean, rstd, x, gamma, beta, rm, rv, n, c, hw, eps, momentum));
}
static void p_bn_eval(float *y, const float *x, const float *gamma, const float *beta,
                      const float *rm, const float *rv, int64_t n, int64_t c, int64_t hw,
                      float eps) {
    TIMED("bn_eval", "", g_raw->bn_eval(y, x, gamma, beta, rm, rv, n, c, hw, eps));
}
static void p_bn_bwd(float *dx, float *dg, float *db, const float *dy, const float *x,
                     const float *mean, const float *rstd, const float *gamma, int64_t n,
                     int64_t c, int64_t hw) {
    TIMED("bn_bwd", "", g_raw->bn_bwd(dx, dg, db, dy, x, mean, rstd, gamma, n, c, hw));
}
static void p_bn_stats(float *mean, float *m2, const float *x, int64_t n, int64_t c, int64_t hw) {
    TIMED("bn_stats", "", g_raw->bn_stats(mean, m2, x, n, c, hw));
}
static void p_bn_bwd_sums(float *sdy, float *sdyx, const float *dy, const float *x,
                          const float *mean, int64_t n, int64_t c, int64_t hw) {
    TIMED("bn_bwd_sums", "", g_raw->bn_bwd_sums(sdy, sdyx, dy, x, mean, n, c, hw));
}
static void p_bn_bwd_apply(float *dx, const float *dy, const float *x, const float *mean,
                           const float *rstd, const float *gamma, const float *sdy,
                           const float *sdyx, double cnt, int64_t n, int64_t c, int64_t hw) {
    TIMED("bn_bwd_apply", "",
          g_raw->bn_bwd_apply(dx, dy, x, mean, rstd, gamma, sdy, sdyx, cnt, n, c, hw));
}
static void p_dot(float *y, const float *a, const float *b, size_t n) {
    TIMED("dot", "", g_raw->dot(y, a, b, n));
}
static void p_normalize(float *x, size_t n, float eps) {
    TIMED("normalize", "", g_raw->normalize(x, n, eps));
}
static void p_adam(float *p, float *m, float *v, const float *g, size_t n, float lr, float b1,
                   float b2, float eps, int64_t t) {
    TIMED("adam", "", g_raw->adam(p, m, v, g, n, lr, b1, b2, eps, t));
}
static void p_all_finite(float *y, const float *x, size_t n) {
    TIMED("all_finite", "", g_raw->all_finite(y, x, n));
}
static void p_adam_prep(float *hp, float *tc, const float *flag, const float *lr, float b1,
                        float b2) {
    TIMED("adam_prep", "", g_raw->adam_prep(hp, tc, flag, lr, b1, b2));
}
static void p_adam_flagged(float *p, float *m, float *v, const float *g, size_t n,
                           const float *hp, float b1, float b2, float eps) {
    TIMED("adam_flagged", "", g_raw->adam_flagged(p, m, v, g, n, hp, b1, b2, eps));
}
static void p_cond_copy(float *d, const float *s, size_t n, const float *flag) {
    TIMED("cond_copy", "", g_raw->cond_copy(d, s, n, flag));
}
static void p_flag_track(float *c, const float *flag) {
    TIMED("flag_track", "", g_raw->flag_track(c, flag));
}

const lg_backend *lg__cpu_profile_wrap(const lg_backend *raw) {
    const char *e = getenv("LG_CPU_PROFILE");
    if (!e || !*e || !strcmp(e, "0")) return raw;
    g_raw = raw;
    g_prof = *raw; /* memory, sync and upload/download pass through */
    g_prof.copy = p_copy;
    g_prof.fill = p_fill;
    g_prof.gemm = p_gemm;
    g_prof.conv2d = p_conv2d;
    g_prof.conv2d_bwd_data = p_conv2d_bwd_data;
    g_prof.conv2d_bwd_weight = p_conv2d_bwd_weight;
    g_prof.unary = p_unary;
    g_prof.binary = p_binary;
    g_prof.sum_to = p_sum_to;
    g_prof.sum_all = p_sum_all;
    g_prof.upsample2x = p_upsample2x;
    g_prof.sumpool2x2 = p_sumpool2x2;
    g_prof.bn_train = p_bn_train;
    g_prof.bn_eval = p_bn_eval;
    g_prof.bn_bwd = p_bn_bwd;
    g_prof.dot = p_dot;
    g_prof.normalize = p_normalize;
    g_prof.adam = p_adam;
    g_prof.all_finite = p_all_finite;
    g_prof.adam_prep = p_adam_prep;
    g_prof.adam_flagged = p_adam_flagged;
    g_prof.cond_copy = p_cond_copy;
    g_prof.flag_track = p_flag_track;
    if (raw->bn_stats) g_prof.bn_stats = p_bn_stats; /* optional entries */
    if (raw->bn_bwd_sums) g_prof.bn_bwd_sums = p_bn_bwd_sums;
    if (raw->bn_bwd_apply) g_prof.bn_bwd_apply = p_bn_bwd_apply;
    g_on = 1;
    atexit(lg__cpu_profile_at_exit);
    return &g_prof;
}

int lg_cpu_profile_enabled(void) {
    (void)lg_backend_cpu(); /* decides at initialization */
    return g_on;
}

void lg_cpu_profile_reset(void) {
    pthread_mutex_lock(&g_mu);
    g_nrows = 0;
    g_dropped = 0;
    g_dirty = 0;
    pthread_mutex_unlock(&g_mu);
}

static int by_ms(const void *a, const void *b) {
    double x = ((const prof_row *)a)->ms, y = ((const prof_row *)b)->ms;
    return x < y ? 1 : x > y ? -1 : 0;
}

/* Appends to g_report, silently truncating at its capacity. */
static size_t put(size_t at, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static size_t put(size_t at, const char *fmt, ...) {
    if (at >= sizeof g_report - 1) return at;
    va_list ap;
    va_start(ap, fmt);
    int k = vsnprintf(g_report + at, sizeof g_report - at, fmt, ap);
    va_end(ap);
    size_t end = at + (k > 0 ? (size_t)k : 0);
    return end < sizeof g_report - 1 ? end : sizeof g_report - 1;
}

const char *lg_cpu_profile_report(int steps) {
    pthread_mutex_lock(&g_mu);
    double div = steps >= 1 ? steps : 1;
    /* rows summed by entry (detail ""), then the detailed rows; both slowest first */
    static prof_row byent[64], rows[MAX_ROWS]; /* under g_mu */
    int ne = 0, nr = g_nrows;
    double total = 0;
    long long calls = 0;
    memcpy(rows, g_rows, sizeof(prof_row) * (size_t)nr);
    for (int i = 0; i < nr; i++) {
        total += rows[i].ms;
        calls += rows[i].calls;
        int j = 0;
        while (j < ne && strcmp(byent[j].entry, rows[i].entry)) j++;
        if (j == ne) {
            if (ne == 64) continue;
            memset(&byent[ne], 0, sizeof byent[ne]);
            memcpy(byent[ne].entry, rows[i].entry, sizeof byent[ne].entry);
            ne++;
        }
        byent[j].calls += rows[i].calls;
        byent[j].ms += rows[i].ms;
    }
    qsort(byent, (size_t)ne, sizeof byent[0], by_ms);
    qsort(rows, (size_t)nr, sizeof rows[0], by_ms);
    size_t at = 0;
    at = put(at, "# cpu profile (LG_CPU_PROFILE): %.6g calls, %.3f ms%s\n", calls / div,
             total / div, steps >= 1 ? " per step" : "");
    at = put(at, "# %-20s %10s %12s %7s\n", "entry", "calls", "ms", "share");
    for (int i = 0; i < ne; i++)
        at = put(at, "# %-20s %10.6g %12.3f %6.1f%%\n", byent[i].entry, byent[i].calls / div,
                 byent[i].ms / div, total > 0 ? 100.0 * byent[i].ms / total : 0.0);
    at = put(at, "# %-20s %-44s %10s %12s %7s\n", "entry", "detail", "calls", "ms", "share");
    for (int i = 0; i < nr; i++)
        at = put(at, "# %-20s %-44s %10.6g %12.3f %6.1f%%\n", rows[i].entry, rows[i].detail,
                 rows[i].calls / div, rows[i].ms / div,
                 total > 0 ? 100.0 * rows[i].ms / total : 0.0);
    if (g_dropped) at = put(at, "# %lld calls not counted (more than %d rows)\n", g_dropped, MAX_ROWS);
    g_dirty = 0;
    pthread_mutex_unlock(&g_mu);
    return g_report;
}

void lg__cpu_profile_at_exit(void) {
    if (g_dirty) fputs(lg_cpu_profile_report(0), stderr);
}
