/* CUDA backend: opt-in per-call GPU timing (LG_CUDA_PROFILE=1).
 *
 * When the variable is set as the backend initializes, lg_backend_cuda()
 * returns a copy of the table whose entries wrap the real ones: each call
 * that queues GPU work is bracketed by two CUDA events on the backend's
 * stream, and its time is added to a row keyed by the entry name and the
 * call's geometry class (shapes, op, convolution algorithm). Events are read
 * back without stalling the queue: when the host syncs anyway (sync(),
 * download()), when a report is asked for, or every 8192 calls. While the
 * stream is being captured into a CUDA graph nothing is recorded (event
 * reads would break the capture); those calls are only counted. Without
 * the variable the plain table is used and none of this code runs.
 *
 * Each row also carries the call's byte floor (the bytes it must move at
 * least, at 3.0 TB/s, an H100's HBM3 bandwidth) or, for gemm and
 * convolutions, its floating-point operations, so the report says how far
 * each kernel is from its bound. Event times include launch gaps when the
 * GPU waits for the host; in a step whose GPU time exceeds its host time
 * (the generator at batch 128) they are the kernels' own times. */
#include "cuda_internal.h"

#include <algorithm>
#include <mutex>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <string>
#include <unordered_map>
#include <vector>

static const double FLOOR_BW = 3.0e12; /* bytes/s for the byte floor */

static const lg_backend *g_raw;  /* the plain table */
static lg_backend g_prof;        /* the wrappers */
static bool g_on;                /* set once, before any wrapper runs */

struct prof_row {
    std::string entry, geom;
    long long calls;
    double ms, min_ms, max_ms;
    double bytes, flops; /* per call */
};
struct prof_pending {
    int row;
    cudaEvent_t e0, e1;
};

static std::mutex g_mu; /* guards everything below */
static std::vector<prof_row> g_rows;
static std::unordered_map<std::string, int> g_index;
static std::vector<prof_pending> g_pending;
static std::vector<cudaEvent_t> g_free_ev;
static long long g_untimed;    /* calls queued during a graph capture */
static long long g_failed;     /* event errors (calls not counted) */
static bool g_dirty;           /* rows added since the last report */
static std::string g_report;

bool lgc_profile_env(void) {
    const char *e = getenv("LG_CUDA_PROFILE");
    return e && *e && strcmp(e, "0") != 0 && strcmp(e, "off") != 0;
}

static cudaEvent_t event_get_locked(void) {
    if (!g_free_ev.empty()) {
        cudaEvent_t e = g_free_ev.back();
        g_free_ev.pop_back();
        return e;
    }
    cudaEvent_t e = nullptr;
    if (cudaEventCreate(&e) != cudaSuccess) {
        (void)cudaGetLastError();
        return nullptr;
    }
    return e;
}

/* Reads the finished events into their rows (waits for the last ones).
 * Never while capturing. */
static void resolve_locked(void) {
    for (const prof_pending &p : g_pending) {
        float ms = 0.0f;
        cudaError_t e = cudaEventSynchronize(p.e1);
        if (e == cudaSuccess) e = cudaEventElapsedTime(&ms, p.e0, p.e1);
        if (e != cudaSuccess) {
            (void)cudaGetLastError(); /* a kernel fault also shows in the backend's status */
            g_failed++;
        } else {
            prof_row &r = g_rows[(size_t)p.row];
            if (r.calls == 0 || ms < r.min_ms) r.min_ms = ms;
            if (r.calls == 0 || ms > r.max_ms) r.max_ms = ms;
            r.calls++;
            r.ms += ms;
            g_dirty = true;
        }
        g_free_ev.push_back(p.e0);
        g_free_ev.push_back(p.e1);
    }
    g_pending.clear();
}

/* A timing in progress: on is false when nothing is being timed. */
struct prof_tok {
    bool on;
    cudaEvent_t e0, e1;
};

static bool g_sync; /* LG_CUDA_PROFILE=sync */

static prof_tok prof_begin(void) {
    prof_tok t = {false, nullptr, nullptr};
    if (!g_on) return t;
    if (lgc_capturing()) {
        std::lock_guard<std::mutex> lk(g_mu);
        g_untimed++;
        return t;
    }
    {
        std::lock_guard<std::mutex> lk(g_mu);
        t.e0 = event_get_locked();
        t.e1 = t.e0 ? event_get_locked() : nullptr;
        if (!t.e1) {
            if (t.e0) g_free_ev.push_back(t.e0);
            g_failed++;
            return t;
        }
    }
    /* sync mode: start each call on an idle GPU, so that time the GPU
     * spent waiting for the host is not charged to the call */
    if (g_sync && cudaStreamSynchronize(lgc_stream) != cudaSuccess) (void)cudaGetLastError();
    if (cudaEventRecord(t.e0, lgc_stream) != cudaSuccess) {
        (void)cudaGetLastError();
        std::lock_guard<std::mutex> lk(g_mu);
        g_free_ev.push_back(t.e0);
        g_free_ev.push_back(t.e1);
        g_failed++;
        return t;
    }
    t.on = true;
    return t;
}

/* Ends a timing: the row is entry + the printf-formatted geometry. */
static void prof_end(const prof_tok &t, const char *entry, double bytes, double flops,
                     const char *fmt, ...) __attribute__((format(printf, 5, 6)));
static void prof_end(const prof_tok &t, const char *entry, double bytes, double flops,
                     const char *fmt, ...) {
    if (!t.on) return;
    bool rec = cudaEventRecord(t.e1, lgc_stream) == cudaSuccess;
    if (!rec) (void)cudaGetLastError();
    char geom[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(geom, sizeof geom, fmt, ap);
    va_end(ap);
    std::string key = std::string(entry) + '|' + geom;
    std::lock_guard<std::mutex> lk(g_mu);
    if (!rec) {
        g_free_ev.push_back(t.e0);
        g_free_ev.push_back(t.e1);
        g_failed++;
        return;
    }
    auto it = g_index.find(key);
    int row;
    if (it == g_index.end()) {
        prof_row r;
        r.entry = entry;
        r.geom = geom;
        r.calls = 0;
        r.ms = r.min_ms = r.max_ms = 0.0;
        r.bytes = bytes;
        r.flops = flops;
        row = (int)g_rows.size();
        g_rows.push_back(r);
        g_index.emplace(key, row);
    } else {
        row = it->second;
    }
    g_pending.push_back({row, t.e0, t.e1});
    if (g_pending.size() >= 8192) resolve_locked(); /* bounded event count */
}

/* After the host waited for the stream: reading the events costs nothing. */
static void prof_resolve_idle(void) {
    if (!g_on || lgc_capturing()) return;
    std::lock_guard<std::mutex> lk(g_mu);
    resolve_locked();
}

/* ---- geometry strings ---- */

struct shape_str {
    char s[64];
};
static shape_str fmt_shape(const int64_t sh[4]) {
    shape_str r;
    snprintf(r.s, sizeof r.s, "(%lld,%lld,%lld,%lld)", (long long)sh[0], (long long)sh[1],
             (long long)sh[2], (long long)sh[3]);
    return r;
}
static double numel4(const int64_t sh[4]) {
    return (double)sh[0] * (double)sh[1] * (double)sh[2] * (double)sh[3];
}

/* "cudnn algo N" / "im2col" for a convolution pass (0 fwd, 1 data, 2 filter). */
static const char *conv_path(const lg_conv_geom *g, int pass, char *buf, size_t n) {
    int al[3];
    if (lg_cuda_cudnn() && lg_cuda_conv_algos(g, al) && al[pass] >= 0)
        snprintf(buf, n, "cudnn algo %d", al[pass]);
    else
        snprintf(buf, n, "im2col");
    return buf;
}

static double conv_flops(const lg_conv_geom *g) {
    return 2.0 * g->n * g->oc * g->oh * g->ow * (double)g->c * g->kh * g->kw;
}
static double conv_bytes(const lg_conv_geom *g) {
    return 4.0 * ((double)g->n * g->c * g->h * g->w + (double)g->oc * g->c * g->kh * g->kw +
                  (double)g->n * g->oc * g->oh * g->ow);
}

#define CONV_GEOM "n%d c%d %dx%d -> oc%d %dx%d k%dx%d s%d p%d, %s"
#define CONV_ARGS(g, pass)                                                                  \
    g->n, g->c, g->h, g->w, g->oc, g->oh, g->ow, g->kh, g->kw, g->stride, g->pad,           \
        conv_path(g, pass, path, sizeof path)

/* ---- the wrappers ---- */

static void *p_alloc(size_t bytes) { return g_raw->alloc(bytes); }
static void p_free(void *p) { g_raw->free(p); }

static void p_upload(float *dst, const float *src, size_t n) {
    prof_tok t = prof_begin();
    g_raw->upload(dst, src, n);
    prof_end(t, "upload", 0.0, 0.0, "n %zu", n); /* host link: no HBM floor */
}

static void p_download(float *dst, const float *src, size_t n) {
    prof_tok t = prof_begin();
    g_raw->download(dst, src, n);
    prof_end(t, "download", 0.0, 0.0, "n %zu", n);
    prof_resolve_idle();
}

static void p_copy(float *dst, const float *src, size_t n) {
    prof_tok t = prof_begin();
    g_raw->copy(dst, src, n);
    prof_end(t, "copy", 8.0 * n, 0.0, "n %zu", n);
}

static void p_fill(float *dst, float value, size_t n) {
    prof_tok t = prof_begin();
    g_raw->fill(dst, value, n);
    prof_end(t, "fill", 4.0 * n, 0.0, "n %zu", n);
}

static void p_sync(void) {
    g_raw->sync();
    prof_resolve_idle();
}

static void p_gemm(int ta, int tb, int m, int n, int k, float alpha, const float *a, int lda,
                   const float *b, int ldb, float beta, float *c, int ldc) {
    prof_tok t = prof_begin();
    g_raw->gemm(ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
    double bytes = 4.0 * ((double)m * k + (double)k * n + (double)m * n * (beta != 0.0f ? 2 : 1));
    prof_end(t, "gemm", bytes, 2.0 * m * n * (double)k, "ta%d tb%d m%d n%d k%d%s", ta, tb, m, n, k,
             beta != 0.0f ? " beta" : "");
}

static size_t p_conv_workspace(const lg_conv_geom *g) { return g_raw->conv_workspace(g); }

static void p_conv2d(float *y, const float *x, const float *w, const lg_conv_geom *g,
                     float *ws) {
    prof_tok t = prof_begin();
    g_raw->conv2d(y, x, w, g, ws);
    char path[32];
    prof_end(t, "conv2d", conv_bytes(g), conv_flops(g), CONV_GEOM, CONV_ARGS(g, 0));
}

static void p_conv2d_bwd_data(float *dx, const float *dy, const float *w, const lg_conv_geom *g,
                              float *ws) {
    prof_tok t = prof_begin();
    g_raw->conv2d_bwd_data(dx, dy, w, g, ws);
    char path[32];
    prof_end(t, "conv2d_bwd_data", conv_bytes(g), conv_flops(g), CONV_GEOM, CONV_ARGS(g, 1));
}

static void p_conv2d_bwd_weight(float *dw, const float *x, const float *dy, const lg_conv_geom *g,
                                float *ws) {
    prof_tok t = prof_begin();
    g_raw->conv2d_bwd_weight(dw, x, dy, g, ws);
    char path[32];
    prof_end(t, "conv2d_bwd_weight", conv_bytes(g), conv_flops(g), CONV_GEOM, CONV_ARGS(g, 2));
}

static void p_unary(lg_unary op, float *y, const float *x, size_t n, float alpha) {
    prof_tok t = prof_begin();
    g_raw->unary(op, y, x, n, alpha);
    prof_end(t, "unary", 8.0 * n, 0.0, "%s n %zu%s", lg_unary_name(op), n,
             y == x ? " in place" : "");
}

static void p_binary(lg_binary op, float *y, const int64_t ys[4], const float *a,
                     const int64_t as[4], const float *b, const int64_t bs[4]) {
    prof_tok t = prof_begin();
    g_raw->binary(op, y, ys, a, as, b, bs);
    prof_end(t, "binary", 4.0 * (numel4(ys) + numel4(as) + numel4(bs)), 0.0, "%s %s <- %s, %s",
             lg_binary_name(op), fmt_shape(ys).s, fmt_shape(as).s, fmt_shape(bs).s);
}

static void p_sum_to(float *y, const int64_t ys[4], const float *x, const int64_t xs[4]) {
    prof_tok t = prof_begin();
    g_raw->sum_to(y, ys, x, xs);
    prof_end(t, "sum_to", 4.0 * (numel4(ys) + numel4(xs)), 0.0, "%s -> %s", fmt_shape(xs).s,
             fmt_shape(ys).s);
}

static void p_sum_all(float *y, const float *x, size_t n) {
    prof_tok t = prof_begin();
    g_raw->sum_all(y, x, n);
    prof_end(t, "sum_all", 4.0 * n, 0.0, "n %zu", n);
}

static void p_upsample2x(float *y, const float *x, int64_t nc, int64_t h, int64_t w) {
    prof_tok t = prof_begin();
    g_raw->upsample2x(y, x, nc, h, w);
    prof_end(t, "upsample2x", 20.0 * nc * h * w, 0.0, "nc %lld %lldx%lld -> %lldx%lld",
             (long long)nc, (long long)h, (long long)w, (long long)(2 * h), (long long)(2 * w));
}

static void p_sumpool2x2(float *y, const float *x, int64_t nc, int64_t h, int64_t w) {
    prof_tok t = prof_begin();
    g_raw->sumpool2x2(y, x, nc, h, w);
    prof_end(t, "sumpool2x2", 5.0 * nc * h * w, 0.0, "nc %lld %lldx%lld -> %lldx%lld",
             (long long)nc, (long long)h, (long long)w, (long long)(h / 2), (long long)(w / 2));
}

/* Batch-norm floors: train reads x for the statistics, then reads x and
 * writes y (12 bytes per element); backward reads dy and x for its sums,
 * then both again and writes dx (20 bytes). */
static void p_bn_train(float *y, float *mean, float *rstd, const float *x, const float *gamma,
                       const float *beta, float *run_mean, float *run_var, int64_t n, int64_t c,
                       int64_t hw, float eps, float momentum) {
    prof_tok t = prof_begin();
    g_raw->bn_train(y, mean, rstd, x, gamma, beta, run_mean, run_var, n, c, hw, eps, momentum);
    prof_end(t, "bn_train", 12.0 * n * c * hw, 0.0, "n %lld c %lld hw %lld", (long long)n,
             (long long)c, (long long)hw);
}

static void p_bn_eval(float *y, const float *x, const float *gamma, const float *beta,
                      const float *run_mean, const float *run_var, int64_t n, int64_t c,
                      int64_t hw, float eps) {
    prof_tok t = prof_begin();
    g_raw->bn_eval(y, x, gamma, beta, run_mean, run_var, n, c, hw, eps);
    prof_end(t, "bn_eval", 8.0 * n * c * hw, 0.0, "n %lld c %lld hw %lld", (long long)n,
             (long long)c, (long long)hw);
}

static void p_bn_bwd(float *dx, float *dgamma, float *dbeta, const float *dy, const float *x,
                     const float *mean, const float *rstd, const float *gamma, int64_t n,
                     int64_t c, int64_t hw) {
    prof_tok t = prof_begin();
    g_raw->bn_bwd(dx, dgamma, dbeta, dy, x, mean, rstd, gamma, n, c, hw);
    prof_end(t, "bn_bwd", 20.0 * n * c * hw, 0.0, "n %lld c %lld hw %lld", (long long)n,
             (long long)c, (long long)hw);
}

static void p_dot(float *y, const float *a, const float *b, size_t n) {
    prof_tok t = prof_begin();
    g_raw->dot(y, a, b, n);
    prof_end(t, "dot", 8.0 * n, 0.0, "n %zu", n);
}

static void p_normalize(float *x, size_t n, float eps) {
    prof_tok t = prof_begin();
    g_raw->normalize(x, n, eps);
    prof_end(t, "normalize", 12.0 * n, 0.0, "n %zu", n);
}

static void p_adam(float *p, float *m, float *v, const float *g, size_t n, float lr, float b1,
                   float b2, float eps, int64_t step) {
    prof_tok t = prof_begin();
    g_raw->adam(p, m, v, g, n, lr, b1, b2, eps, step);
    prof_end(t, "adam", 28.0 * n, 0.0, "n %zu", n);
}

static void p_all_finite(float *y, const float *x, size_t n) {
    prof_tok t = prof_begin();
    g_raw->all_finite(y, x, n);
    prof_end(t, "all_finite", 4.0 * n, 0.0, "n %zu", n);
}

static void p_adam_flagged(float *p, float *m, float *v, const float *g, size_t n,
                           const float *hp, float b1, float b2, float eps) {
    prof_tok t = prof_begin();
    g_raw->adam_flagged(p, m, v, g, n, hp, b1, b2, eps);
    prof_end(t, "adam", 28.0 * n, 0.0, "n %zu", n);
}

static void at_exit_report(void) {
    bool dirty;
    {
        std::lock_guard<std::mutex> lk(g_mu);
        dirty = g_dirty || !g_pending.empty();
    }
    if (dirty) fprintf(stderr, "%s", lg_cuda_profile_report(0));
}

const lg_backend *lgc_profiled_table(const lg_backend *raw) {
    g_raw = raw;
    g_prof = *raw;
    const char *e = getenv("LG_CUDA_PROFILE");
    g_sync = e && !strcmp(e, "sync");
    g_prof.alloc = p_alloc;
    g_prof.free = p_free;
    g_prof.upload = p_upload;
    g_prof.download = p_download;
    g_prof.copy = p_copy;
    g_prof.fill = p_fill;
    g_prof.sync = p_sync;
    g_prof.gemm = p_gemm;
    g_prof.conv_workspace = p_conv_workspace;
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
    g_prof.adam_flagged = p_adam_flagged;
    g_on = true;
    atexit(at_exit_report);
    return &g_prof;
}

/* ---- public ---- */

extern "C" int lg_cuda_profile_enabled(void) { return g_on ? 1 : 0; }

extern "C" void lg_cuda_profile_reset(void) {
    if (!g_on) return;
    bool cap = lgc_capturing();
    if (!cap) {
        cudaError_t e = cudaStreamSynchronize(lgc_stream);
        if (e != cudaSuccess) (void)cudaGetLastError();
    }
    std::lock_guard<std::mutex> lk(g_mu);
    if (!cap) resolve_locked();
    /* while capturing, pending events stay queued for their rows: keep the
     * rows' storage, only zero them */
    for (prof_row &r : g_rows) {
        r.calls = 0;
        r.ms = r.min_ms = r.max_ms = 0.0;
    }
    g_untimed = 0;
    g_failed = 0;
    g_dirty = false;
}

static void append(std::string &s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void append(std::string &s, const char *fmt, ...) {
    char buf[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    s += buf;
}

/* "floor" column: the byte floor per call in us; "bound" column: the mean
 * time's share of it (100% = at 3.0 TB/s), or TFLOP/s for gemm and
 * convolutions. */
static void append_row(std::string &s, const char *entry, long long calls, double ms,
                       double total, double bytes, double flops, int steps, const char *geom) {
    double per = steps > 0 ? (double)steps : 1.0;
    double mean_us = calls ? ms * 1e3 / (double)calls : 0.0;
    char floor_s[16] = "-", bound_s[24] = "-";
    if (flops > 0.0 && mean_us > 0.0)
        snprintf(bound_s, sizeof bound_s, "%.1f TF/s", flops / (mean_us * 1e-6) / 1e12);
    else if (bytes > 0.0 && mean_us > 0.0)
        snprintf(bound_s, sizeof bound_s, "%.0f%%", 100.0 * (bytes / FLOOR_BW * 1e6) / mean_us);
    if (bytes > 0.0 && flops == 0.0)
        snprintf(floor_s, sizeof floor_s, "%.1f", bytes / FLOOR_BW * 1e6);
    append(s, "  %-18s %8.1f %9.3f %9.1f %6.1f%% %9s %11s%s%s\n", entry, (double)calls / per,
           ms / per, mean_us, total > 0.0 ? 100.0 * ms / total : 0.0, floor_s, bound_s,
           *geom ? "  " : "", geom);
}

extern "C" const char *lg_cuda_profile_report(int steps) {
    if (!g_on) {
        g_report = "lipgan CUDA profile: off (set LG_CUDA_PROFILE=1 before the CUDA backend "
                   "initializes)\n";
        return g_report.c_str();
    }
    bool cap = lgc_capturing();
    if (!cap) {
        cudaError_t e = cudaStreamSynchronize(lgc_stream);
        if (e != cudaSuccess) (void)cudaGetLastError();
    }
    std::lock_guard<std::mutex> lk(g_mu);
    if (!cap) resolve_locked();
    double total = 0.0;
    long long calls = 0;
    for (const prof_row &r : g_rows) {
        total += r.ms;
        calls += r.calls;
    }
    std::string &s = g_report;
    s.clear();
    append(s, "lipgan CUDA profile: %lld timed calls, %.3f ms of GPU time", calls, total);
    if (steps > 0) append(s, " over %d steps (%.3f ms per step; calls and ms below are per step)",
                          steps, total / steps);
    append(s, "\n");
    if (g_untimed)
        append(s, "  %lld calls queued during graph capture were not timed\n", g_untimed);
    if (g_failed) append(s, "  %lld calls not counted (event errors)\n", g_failed);
    if (cap)
        append(s, "  (the stream is being captured: %zu calls not read yet)\n", g_pending.size());

    /* by entry */
    struct agg {
        std::string entry;
        long long calls;
        double ms, bytes, flops; /* bytes, flops: sums over calls */
    };
    std::vector<agg> by;
    for (const prof_row &r : g_rows) {
        if (r.calls == 0) continue;
        auto it = std::find_if(by.begin(), by.end(),
                               [&](const agg &a) { return a.entry == r.entry; });
        if (it == by.end()) {
            by.push_back({r.entry, 0, 0.0, 0.0, 0.0});
            it = by.end() - 1;
        }
        it->calls += r.calls;
        it->ms += r.ms;
        it->bytes += r.bytes * r.calls;
        it->flops += r.flops * r.calls;
    }
    std::sort(by.begin(), by.end(), [](const agg &a, const agg &b) { return a.ms > b.ms; });
    append(s, "by entry (floor: us per call at %.1f TB/s; bound: floor/mean, or TFLOP/s):\n",
           FLOOR_BW / 1e12);
    append(s, "  %-18s %8s %9s %9s %7s %9s %11s\n", "entry", "calls", "ms", "mean us", "share",
           "floor us", "bound");
    for (const agg &a : by)
        append_row(s, a.entry.c_str(), a.calls, a.ms, total, a.calls ? a.bytes / a.calls : 0.0,
                   a.calls ? a.flops / a.calls : 0.0, steps, "");

    /* by entry and geometry */
    std::vector<const prof_row *> rows;
    for (const prof_row &r : g_rows)
        if (r.calls) rows.push_back(&r);
    std::sort(rows.begin(), rows.end(),
              [](const prof_row *a, const prof_row *b) { return a->ms > b->ms; });
    append(s, "by entry and geometry (slowest first):\n");
    append(s, "  %-18s %8s %9s %9s %7s %9s %11s  %s\n", "entry", "calls", "ms", "mean us", "share",
           "floor us", "bound", "geometry");
    const size_t max_rows = 80;
    double rest = 0.0;
    for (size_t i = 0; i < rows.size(); i++) {
        if (i >= max_rows) {
            rest += rows[i]->ms;
            continue;
        }
        append_row(s, rows[i]->entry.c_str(), rows[i]->calls, rows[i]->ms, total, rows[i]->bytes,
                   rows[i]->flops, steps, rows[i]->geom.c_str());
    }
    if (rows.size() > max_rows)
        append(s, "  ... %zu more rows, %.3f ms\n", rows.size() - max_rows,
               steps > 0 ? rest / steps : rest);
    g_dirty = false;
    return s.c_str();
}
