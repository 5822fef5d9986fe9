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
 * each kernel is from its bound. The entries wrapped, their geometry
 * strings and floors are in backend/profile_wrap.h, shared with the CPU
 * profile. Event times include launch gaps when the GPU waits for the
 * host; in a step whose GPU time exceeds its host time (the generator at
 * batch 128) they are the kernels' own times. */
#include "cuda_internal.h"
#include "backend/profile_wrap.h"

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

/* "cudnn algo N" / "winograd F(2)" / "winograd F(4)" / "im2col" for a
 * convolution pass (0 fwd, 1 data, 2 filter). */
static const char *conv_path(const lg_conv_geom *g, int pass, char *buf, size_t n) {
    int al[3];
    bool known = lg_cuda_cudnn() && lg_cuda_conv_algos(g, al);
    if (known && al[pass] >= 0)
        snprintf(buf, n, "cudnn algo %d", al[pass]);
    else if (known && (al[pass] == -3 || al[pass] == -4)) /* cuda_cudnn.cu ALGO_WINO, ALGO_WINO4 */
        snprintf(buf, n, "winograd F(%d)", al[pass] == -3 ? 2 : 4); /* was labelled im2col */
    else
        snprintf(buf, n, "im2col");
    return buf;
}

/* Ends a timing: the row is entry + the call's geometry (lg_prof_geometry). */
static void prof_end(const prof_tok &t, const char *entry, const lg_prof_call &c) {
    if (!t.on) return;
    bool rec = cudaEventRecord(t.e1, lgc_stream) == cudaSuccess;
    if (!rec) (void)cudaGetLastError();
    char geom[256], path[32] = "";
    if (c.kind == LG_PROF_CONV) conv_path(c.g, c.op, path, sizeof path);
    lg_prof_geometry(geom, sizeof geom, &c, path);
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
        r.bytes = c.bytes;
        r.flops = c.flops;
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

/* ---- the wrappers ---- */

/* Transfers and sync are timed here only (the host link has no HBM floor);
 * a download or sync waited for the stream, so the events are read then. */
static void p_upload(float *dst, const float *src, size_t n) {
    prof_tok t = prof_begin();
    g_raw->upload(dst, src, n);
    prof_end(t, "upload", lg_prof_n(n, 0.0));
}

static void p_download(float *dst, const float *src, size_t n) {
    prof_tok t = prof_begin();
    g_raw->download(dst, src, n);
    prof_end(t, "download", lg_prof_n(n, 0.0));
    prof_resolve_idle();
}

static void p_sync(void) {
    g_raw->sync();
    prof_resolve_idle();
}

/* The compute entries (profile_wrap.h). adam_flagged, the sync-free step's
 * update, shares adam's row so the two step paths' profiles compare. */
static const char *row_name(const char *entry) {
    return strcmp(entry, "adam_flagged") ? entry : "adam";
}

#define X(entry, params, args, describe)                     \
    static void p_##entry params {                           \
        prof_tok tok_ = prof_begin();                        \
        g_raw->entry args;                                   \
        if (tok_.on) prof_end(tok_, row_name(#entry), describe); \
    }
LG_PROF_ENTRIES(X)
#undef X

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
    g_prof.upload = p_upload;
    g_prof.download = p_download;
    g_prof.sync = p_sync;
    /* optional entries stay NULL where the plain table has none */
#define X(entry, params, args, describe) \
    if (raw->entry) g_prof.entry = p_##entry;
    LG_PROF_ENTRIES(X)
#undef X
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
