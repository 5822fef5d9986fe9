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
#include "backend/profile_wrap.h"
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

/* The row's detail: lg_prof_detail's, and for a convolution the algorithm
 * the dispatch ran it with. */
static void detail_of(char *b, size_t cap, const lg_prof_call *c) {
    lg_prof_detail(b, cap, c);
    if (c->kind == LG_PROF_CONV) {
        size_t len = strlen(b);
        snprintf(b + len, cap - len, " %s", lg_cpu_conv_algo_name(lg_cpu_conv_algo_of(c->g)));
    }
}

/* A wrapper per entry of LG_PROF_ENTRIES: time the real call, add it to
 * the row of its entry and detail. */
#define X(entry, params, args, describe)            \
    static void p_##entry params {                  \
        double t0_ = now_ms();                      \
        g_raw->entry args;                          \
        double ms_ = now_ms() - t0_;                \
        lg_prof_call c_ = describe;                 \
        char d_[KEY];                               \
        detail_of(d_, sizeof d_, &c_);              \
        add(#entry, d_, ms_);                       \
    }
LG_PROF_ENTRIES(X)
#undef X

const lg_backend *lg__cpu_profile_wrap(const lg_backend *raw) {
    const char *e = getenv("LG_CPU_PROFILE");
    if (!e || !*e || !strcmp(e, "0")) return raw;
    g_raw = raw;
    g_prof = *raw; /* memory, sync and upload/download pass through */
    /* optional entries stay NULL where the plain table has none */
#define X(entry, params, args, describe) \
    if (raw->entry) g_prof.entry = p_##entry;
    LG_PROF_ENTRIES(X)
#undef X
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
