/* CUDA backend: convolutions through cuDNN 9, loaded at run time.
 *
 * lipgan does not link cuDNN: the first convolution dlopen()s
 * libcudnn.so.9 (from $LG_CUDNN_PATH, a directory or the file itself, else
 * the loader's search path) and looks up the few legacy-API functions it
 * needs; the declarations below mirror cudnn.h of cuDNN 9 (an ABI that is
 * stable within the major version), so building needs no cuDNN headers.
 * Without the library, or with LG_CUDNN=0 / lg_cuda_set_cudnn(0), the
 * im2col + cuBLAS path of cuda_linalg.cu runs instead.
 *
 * A plan per geometry and math mode (fp32 / TF32) holds the descriptors and,
 * per pass (forward, backward data, backward filter), the algorithm chosen
 * by benchmarking the first time the pass runs (cudnnFind; during a CUDA
 * Graph capture, where nothing may synchronize, the heuristic query
 * instead). Only deterministic algorithms qualify, using at most the
 * caller's workspace, lgc_conv_workspace(g) floats (a function of the
 * geometry alone, so switching modes never overruns it). fp32 runs with
 * CUDNN_FMA_MATH, which excludes TF32; lg_cuda_set_tf32(1) allows it. A pass
 * with no qualifying algorithm, or whose call fails, uses im2col from then
 * on. LG_CUDNN_NONDET=1 in the environment (read once; for measuring what
 * determinism costs, never the default) also admits the algorithms that
 * add with atomics. */
#include "cuda_internal.h"

#include <dlfcn.h>
#include <mutex>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unordered_map>

/* ---- the slice of the cuDNN 9 ABI we use (values from cudnn_graph.h,
 * cudnn_ops.h, cudnn_cnn.h) ---- */
typedef int dnn_status; /* cudnnStatus_t; 0 = CUDNN_STATUS_SUCCESS */
typedef struct dnn_ctx_ *dnn_handle;
typedef struct dnn_tensor_ *dnn_tdesc;
typedef struct dnn_filter_ *dnn_fdesc;
typedef struct dnn_conv_ *dnn_cdesc;
enum {
    DNN_SUCCESS = 0,
    DNN_DATA_FLOAT = 0,
    DNN_TENSOR_NCHW = 0,
    DNN_CROSS_CORRELATION = 1,
    DNN_DEFAULT_MATH = 0,
    DNN_TENSOR_OP_MATH = 1,
    DNN_TENSOR_OP_MATH_ALLOW_CONVERSION = 2,
    DNN_FMA_MATH = 3,
    DNN_DETERMINISTIC = 1,
};
/* cudnnConvolution{Fwd,BwdData,BwdFilter}AlgoPerf_t share this layout */
struct dnn_perf {
    int algo;
    dnn_status status;
    float time;
    size_t memory;
    int determinism;
    int math_type;
    int reserved[3];
};

/* Function table, filled by dlsym. */
#define DNN_FUNCS(X)                                                                     \
    X(size_t, cudnnGetVersion, (void))                                                   \
    X(const char *, cudnnGetErrorString, (dnn_status))                                   \
    X(dnn_status, cudnnCreate, (dnn_handle *))                                           \
    X(dnn_status, cudnnSetStream, (dnn_handle, cudaStream_t))                            \
    X(dnn_status, cudnnCreateTensorDescriptor, (dnn_tdesc *))                            \
    X(dnn_status, cudnnSetTensor4dDescriptor, (dnn_tdesc, int, int, int, int, int, int)) \
    X(dnn_status, cudnnCreateFilterDescriptor, (dnn_fdesc *))                            \
    X(dnn_status, cudnnSetFilter4dDescriptor, (dnn_fdesc, int, int, int, int, int, int)) \
    X(dnn_status, cudnnCreateConvolutionDescriptor, (dnn_cdesc *))                       \
    X(dnn_status, cudnnSetConvolution2dDescriptor,                                       \
      (dnn_cdesc, int, int, int, int, int, int, int, int))                               \
    X(dnn_status, cudnnSetConvolutionMathType, (dnn_cdesc, int))                         \
    X(dnn_status, cudnnFindConvolutionForwardAlgorithm,                                  \
      (dnn_handle, dnn_tdesc, dnn_fdesc, dnn_cdesc, dnn_tdesc, int, int *, dnn_perf *))  \
    X(dnn_status, cudnnFindConvolutionBackwardDataAlgorithm,                             \
      (dnn_handle, dnn_fdesc, dnn_tdesc, dnn_cdesc, dnn_tdesc, int, int *, dnn_perf *))  \
    X(dnn_status, cudnnFindConvolutionBackwardFilterAlgorithm,                           \
      (dnn_handle, dnn_tdesc, dnn_tdesc, dnn_cdesc, dnn_fdesc, int, int *, dnn_perf *))  \
    X(dnn_status, cudnnGetConvolutionForwardAlgorithm_v7,                                \
      (dnn_handle, dnn_tdesc, dnn_fdesc, dnn_cdesc, dnn_tdesc, int, int *, dnn_perf *))  \
    X(dnn_status, cudnnGetConvolutionBackwardDataAlgorithm_v7,                           \
      (dnn_handle, dnn_fdesc, dnn_tdesc, dnn_cdesc, dnn_tdesc, int, int *, dnn_perf *))  \
    X(dnn_status, cudnnGetConvolutionBackwardFilterAlgorithm_v7,                         \
      (dnn_handle, dnn_tdesc, dnn_tdesc, dnn_cdesc, dnn_fdesc, int, int *, dnn_perf *))  \
    X(dnn_status, cudnnGetConvolutionForwardWorkspaceSize,                               \
      (dnn_handle, dnn_tdesc, dnn_fdesc, dnn_cdesc, dnn_tdesc, int, size_t *))           \
    X(dnn_status, cudnnGetConvolutionBackwardDataWorkspaceSize,                          \
      (dnn_handle, dnn_fdesc, dnn_tdesc, dnn_cdesc, dnn_tdesc, int, size_t *))           \
    X(dnn_status, cudnnGetConvolutionBackwardFilterWorkspaceSize,                        \
      (dnn_handle, dnn_tdesc, dnn_tdesc, dnn_cdesc, dnn_fdesc, int, size_t *))           \
    X(dnn_status, cudnnConvolutionForward,                                               \
      (dnn_handle, const void *, dnn_tdesc, const void *, dnn_fdesc, const void *,       \
       dnn_cdesc, int, void *, size_t, const void *, dnn_tdesc, void *))                 \
    X(dnn_status, cudnnConvolutionBackwardData,                                          \
      (dnn_handle, const void *, dnn_fdesc, const void *, dnn_tdesc, const void *,       \
       dnn_cdesc, int, void *, size_t, const void *, dnn_tdesc, void *))                 \
    X(dnn_status, cudnnConvolutionBackwardFilter,                                        \
      (dnn_handle, const void *, dnn_tdesc, const void *, dnn_tdesc, const void *,       \
       dnn_cdesc, int, void *, size_t, const void *, dnn_fdesc, void *))

static struct {
#define X(ret, name, args) ret(*name) args;
    DNN_FUNCS(X)
#undef X
} dnn;

/* ---- state ---- */

enum { DNN_UNTRIED, DNN_READY, DNN_FAILED };
static std::mutex g_mu;           /* guards everything below */
static int g_state = DNN_UNTRIED; /* library load + handle */
static int g_enabled = -1;        /* -1: not decided yet (LG_CUDNN env) */
static dnn_handle g_handle;
static char g_info[1024];    /* lg_cuda_cudnn_info() */
static char g_load_msg[600]; /* why loading failed, or what was loaded */
static int g_fallbacks;          /* cuDNN calls that failed (then im2col) */
static char g_fallback_msg[300]; /* the last of them */

static int g_nondet = -1; /* LG_CUDNN_NONDET=1: atomics-based algorithms allowed */

static bool nondet_locked(void) {
    if (g_nondet < 0) {
        const char *e = getenv("LG_CUDNN_NONDET");
        g_nondet = e && !strcmp(e, "1");
    }
    return g_nondet == 1;
}

static bool enabled_locked(void) {
    if (g_enabled < 0) {
        const char *e = getenv("LG_CUDNN");
        g_enabled = !(e && (!strcmp(e, "0") || !strcmp(e, "off")));
    }
    return g_enabled == 1;
}

static bool capturing(void) {
    cudaStreamCaptureStatus cs = cudaStreamCaptureStatusNone;
    if (cudaStreamIsCapturing(lgc_stream, &cs) != cudaSuccess) {
        (void)cudaGetLastError();
        return true; /* unknown: take the safe road (no syncs) */
    }
    return cs != cudaStreamCaptureStatusNone;
}

static void *open_lib(const char *path, char *why, size_t nwhy) {
    void *h = dlopen(path, RTLD_NOW | RTLD_LOCAL);
    if (!h) {
        const char *e = dlerror();
        snprintf(why, nwhy, "%s", e ? e : "dlopen failed");
    }
    return h;
}

/* Loads the library and creates the handle; g_load_msg says how it went. */
static void load_locked(void) {
    char tried[512] = "", why[300] = "";
    const char *env = getenv("LG_CUDNN_PATH");
    void *h = nullptr;
    if (env && *env) {
        char p[512];
        struct stat st;
        if (stat(env, &st) == 0 && S_ISDIR(st.st_mode))
            snprintf(p, sizeof p, "%s/libcudnn.so.9", env);
        else
            snprintf(p, sizeof p, "%s", env);
        h = open_lib(p, why, sizeof why);
        snprintf(tried, sizeof tried, "%s", p);
    }
    if (!h) {
        char why2[300];
        h = open_lib("libcudnn.so.9", why2, sizeof why2);
        if (!h) {
            snprintf(g_load_msg, sizeof g_load_msg,
                     "im2col + cuBLAS: cannot load cuDNN 9 (%s%s%s); set LG_CUDNN_PATH to the "
                     "directory holding libcudnn.so.9",
                     tried[0] ? why : "", tried[0] ? "; " : "", why2);
            g_state = DNN_FAILED;
            return;
        }
    }
    const char *missing = nullptr;
#define X(ret, name, args)                                                     \
    if (!(dnn.name = (ret(*) args)dlsym(h, #name)) && !missing) missing = #name;
    DNN_FUNCS(X)
#undef X
    if (missing) {
        snprintf(g_load_msg, sizeof g_load_msg, "im2col + cuBLAS: libcudnn.so.9 lacks %s", missing);
        dlclose(h);
        g_state = DNN_FAILED;
        return;
    }
    size_t ver = dnn.cudnnGetVersion();
    if (ver / 10000 != 9) {
        snprintf(g_load_msg, sizeof g_load_msg, "im2col + cuBLAS: cuDNN version %zu is not 9.x", ver);
        dlclose(h);
        g_state = DNN_FAILED;
        return;
    }
    dnn_status s = dnn.cudnnCreate(&g_handle);
    if (s == DNN_SUCCESS) s = dnn.cudnnSetStream(g_handle, lgc_stream);
    (void)cudaGetLastError(); /* cuDNN's own probing must not reach our status */
    if (s != DNN_SUCCESS) {
        snprintf(g_load_msg, sizeof g_load_msg, "im2col + cuBLAS: cudnnCreate failed: %s",
                 dnn.cudnnGetErrorString(s));
        g_handle = nullptr;
        dlclose(h);
        g_state = DNN_FAILED;
        return;
    }
    Dl_info di;
    const char *where = dladdr((void *)dnn.cudnnCreate, &di) && di.dli_fname ? di.dli_fname
                                                                             : "libcudnn.so.9";
    snprintf(g_load_msg, sizeof g_load_msg, "cuDNN %zu.%zu.%zu (%s)", ver / 10000,
             ver / 100 % 100, ver % 100, where);
    g_state = DNN_READY;
}

/* True when cuDNN may serve this call (loading it on first use, but never
 * while the stream is being captured). */
static bool ready_locked(void) {
    if (!enabled_locked()) return false;
    if (g_state == DNN_UNTRIED && !capturing()) load_locked();
    return g_state == DNN_READY;
}

/* ---- plans ---- */

enum { P_FWD, P_BWD_DATA, P_BWD_FILTER, P_COUNT };
enum { ALGO_UNKNOWN = -2, ALGO_IM2COL = -1 };

struct plan_key {
    int v[10]; /* n c h w oc kh kw stride pad tf32 */
    bool operator==(const plan_key &o) const { return !memcmp(v, o.v, sizeof v); }
};
struct plan_hash {
    size_t operator()(const plan_key &k) const {
        size_t h = 1469598103934665603ull;
        for (int i = 0; i < 10; i++) h = (h ^ (size_t)(unsigned)k.v[i]) * 1099511628211ull;
        return h;
    }
};
struct plan {
    dnn_tdesc x, y;
    dnn_fdesc w;
    dnn_cdesc conv;
    int tf32;
    int cur_math;        /* math type the descriptor holds now */
    int algo[P_COUNT];   /* ALGO_UNKNOWN until chosen; ALGO_IM2COL: not cuDNN */
    int math[P_COUNT];   /* math type to run each algorithm with */
    size_t ws[P_COUNT];  /* bytes */
};
static std::unordered_map<plan_key, plan *, plan_hash> g_plans;

static plan_key key_of(const lg_conv_geom *g, int tf32) {
    plan_key k = {{g->n, g->c, g->h, g->w, g->oc, g->kh, g->kw, g->stride, g->pad, tf32}};
    return k;
}

/* Geometries cuDNN cannot take (or that cannot come from lg_conv_out_size)
 * stay on im2col. */
static bool geom_ok(const lg_conv_geom *g) {
    if (g->n < 1 || g->c < 1 || g->h < 1 || g->w < 1 || g->oc < 1 || g->kh < 1 || g->kw < 1 ||
        g->stride < 1 || g->pad < 0)
        return false;
    if (g->oh != lg_conv_out_size(g->h, g->kh, g->stride, g->pad) ||
        g->ow != lg_conv_out_size(g->w, g->kw, g->stride, g->pad) || g->oh < 1 || g->ow < 1)
        return false;
    const double lim = 2147483647.0; /* cuDNN's int32 element counts */
    return (double)g->n * g->c * g->h * g->w < lim &&
           (double)g->n * g->oc * g->oh * g->ow < lim && (double)g->oc * g->c * g->kh * g->kw < lim;
}

static plan *plan_get_locked(const lg_conv_geom *g, int tf32) {
    plan_key k = key_of(g, tf32);
    auto it = g_plans.find(k);
    if (it != g_plans.end()) return it->second;
    plan *p = (plan *)calloc(1, sizeof *p);
    if (!p) return nullptr;
    p->tf32 = tf32;
    for (int i = 0; i < P_COUNT; i++) p->algo[i] = ALGO_UNKNOWN;
    int base_math = tf32 ? DNN_DEFAULT_MATH : DNN_FMA_MATH;
    bool ok = dnn.cudnnCreateTensorDescriptor(&p->x) == DNN_SUCCESS &&
              dnn.cudnnCreateTensorDescriptor(&p->y) == DNN_SUCCESS &&
              dnn.cudnnCreateFilterDescriptor(&p->w) == DNN_SUCCESS &&
              dnn.cudnnCreateConvolutionDescriptor(&p->conv) == DNN_SUCCESS &&
              dnn.cudnnSetTensor4dDescriptor(p->x, DNN_TENSOR_NCHW, DNN_DATA_FLOAT, g->n, g->c,
                                             g->h, g->w) == DNN_SUCCESS &&
              dnn.cudnnSetTensor4dDescriptor(p->y, DNN_TENSOR_NCHW, DNN_DATA_FLOAT, g->n, g->oc,
                                             g->oh, g->ow) == DNN_SUCCESS &&
              dnn.cudnnSetFilter4dDescriptor(p->w, DNN_DATA_FLOAT, DNN_TENSOR_NCHW, g->oc, g->c,
                                             g->kh, g->kw) == DNN_SUCCESS &&
              dnn.cudnnSetConvolution2dDescriptor(p->conv, g->pad, g->pad, g->stride, g->stride,
                                                  1, 1, DNN_CROSS_CORRELATION,
                                                  DNN_DATA_FLOAT) == DNN_SUCCESS &&
              dnn.cudnnSetConvolutionMathType(p->conv, base_math) == DNN_SUCCESS;
    p->cur_math = base_math;
    if (!ok) /* descriptors leak with the plan: geometry-many, tiny */
        for (int i = 0; i < P_COUNT; i++) p->algo[i] = ALGO_IM2COL;
    g_plans.emplace(k, p);
    return p;
}

/* Algorithms whose result depends on the order of atomic adds. */
static bool nondeterministic(int pass, int algo) {
    if (pass == P_BWD_DATA) return algo == 0;
    if (pass == P_BWD_FILTER) return algo == 0 || algo == 3;
    return false;
}

static size_t ws_of(plan *p, int pass, int algo) {
    size_t b = 0;
    dnn_status s;
    if (pass == P_FWD)
        s = dnn.cudnnGetConvolutionForwardWorkspaceSize(g_handle, p->x, p->w, p->conv, p->y,
                                                        algo, &b);
    else if (pass == P_BWD_DATA)
        s = dnn.cudnnGetConvolutionBackwardDataWorkspaceSize(g_handle, p->w, p->y, p->conv,
                                                             p->x, algo, &b);
    else
        s = dnn.cudnnGetConvolutionBackwardFilterWorkspaceSize(g_handle, p->x, p->y, p->conv,
                                                               p->w, algo, &b);
    return s == DNN_SUCCESS ? b : (size_t)-1;
}

/* Picks the fastest deterministic algorithm for one pass within `limit`
 * workspace bytes (benchmarked unless capturing, then heuristic). */
static void choose_locked(plan *p, int pass, size_t limit) {
    dnn_perf r[16];
    int got = 0;
    bool find = !capturing();
    dnn_status s;
    if (pass == P_FWD)
        s = find ? dnn.cudnnFindConvolutionForwardAlgorithm(g_handle, p->x, p->w, p->conv, p->y,
                                                            16, &got, r)
                 : dnn.cudnnGetConvolutionForwardAlgorithm_v7(g_handle, p->x, p->w, p->conv,
                                                              p->y, 16, &got, r);
    else if (pass == P_BWD_DATA)
        s = find ? dnn.cudnnFindConvolutionBackwardDataAlgorithm(g_handle, p->w, p->y, p->conv,
                                                                 p->x, 16, &got, r)
                 : dnn.cudnnGetConvolutionBackwardDataAlgorithm_v7(g_handle, p->w, p->y,
                                                                   p->conv, p->x, 16, &got, r);
    else
        s = find ? dnn.cudnnFindConvolutionBackwardFilterAlgorithm(g_handle, p->x, p->y,
                                                                   p->conv, p->w, 16, &got, r)
                 : dnn.cudnnGetConvolutionBackwardFilterAlgorithm_v7(g_handle, p->x, p->y,
                                                                     p->conv, p->w, 16, &got, r);
    (void)cudaGetLastError(); /* benchmarking may probe unsupported kernels */
    p->algo[pass] = ALGO_IM2COL;
    if (s != DNN_SUCCESS) return;
    for (int i = 0; i < got && i < 16; i++) { /* sorted fastest first */
        if (r[i].status != DNN_SUCCESS ||
            (!nondet_locked() &&
             (r[i].determinism != DNN_DETERMINISTIC || nondeterministic(pass, r[i].algo))))
            continue;
        int mt = r[i].math_type;
        if (!p->tf32) { /* never TF32 in fp32 mode: run FMA-only (as PyTorch does) */
            if (mt == DNN_TENSOR_OP_MATH || mt == DNN_TENSOR_OP_MATH_ALLOW_CONVERSION) continue;
            mt = DNN_FMA_MATH;
        }
        if (dnn.cudnnSetConvolutionMathType(p->conv, mt) != DNN_SUCCESS) continue;
        p->cur_math = mt;
        size_t need = ws_of(p, pass, r[i].algo);
        if (need > limit) continue;
        p->algo[pass] = r[i].algo;
        p->math[pass] = mt;
        p->ws[pass] = need;
        return;
    }
}

static const char *pass_name(int pass) {
    return pass == P_FWD ? "forward" : pass == P_BWD_DATA ? "backward data" : "backward filter";
}

/* Runs one pass through cuDNN if a plan allows; false: caller uses im2col. */
static bool run_pass(int pass, const lg_conv_geom *g, float *out, const float *a,
                     const float *b, float *ws) {
    std::lock_guard<std::mutex> lk(g_mu);
    if (!ready_locked() || !geom_ok(g)) return false;
    plan *p = plan_get_locked(g, lg_cuda_tf32());
    if (!p) return false;
    if (p->algo[pass] == ALGO_UNKNOWN) choose_locked(p, pass, lgc_conv_workspace(g) * sizeof(float));
    if (p->algo[pass] == ALGO_IM2COL) return false;
    if (p->cur_math != p->math[pass]) {
        if (dnn.cudnnSetConvolutionMathType(p->conv, p->math[pass]) != DNN_SUCCESS) return false;
        p->cur_math = p->math[pass];
    }
    const float one = 1.0f, zero = 0.0f;
    dnn_status s;
    if (pass == P_FWD) /* y = conv(x = a, w = b) */
        s = dnn.cudnnConvolutionForward(g_handle, &one, p->x, a, p->w, b, p->conv,
                                        p->algo[pass], ws, p->ws[pass], &zero, p->y, out);
    else if (pass == P_BWD_DATA) /* dx from dy = a, w = b */
        s = dnn.cudnnConvolutionBackwardData(g_handle, &one, p->w, b, p->y, a, p->conv,
                                             p->algo[pass], ws, p->ws[pass], &zero, p->x, out);
    else /* dw from x = a, dy = b */
        s = dnn.cudnnConvolutionBackwardFilter(g_handle, &one, p->x, a, p->y, b, p->conv,
                                               p->algo[pass], ws, p->ws[pass], &zero, p->w, out);
    if (s != DNN_SUCCESS) {
        /* remember it for lg_cuda_cudnn_info(), then stay on im2col for it */
        g_fallbacks++;
        snprintf(g_fallback_msg, sizeof g_fallback_msg,
                 "%s algorithm %d for n%d c%d %dx%d oc%d k%d s%d p%d: %s", pass_name(pass),
                 p->algo[pass], g->n, g->c, g->h, g->w, g->oc, g->kh, g->stride, g->pad,
                 dnn.cudnnGetErrorString(s));
        p->algo[pass] = ALGO_IM2COL;
        (void)cudaGetLastError();
        return false;
    }
    return true;
}

bool lgc_dnn_conv2d(float *y, const float *x, const float *w, const lg_conv_geom *g, float *ws) {
    return run_pass(P_FWD, g, y, x, w, ws);
}

bool lgc_dnn_conv2d_bwd_data(float *dx, const float *dy, const float *w,
                             const lg_conv_geom *g, float *ws) {
    return run_pass(P_BWD_DATA, g, dx, dy, w, ws);
}

bool lgc_dnn_conv2d_bwd_weight(float *dw, const float *x, const float *dy,
                               const lg_conv_geom *g, float *ws) {
    return run_pass(P_BWD_FILTER, g, dw, x, dy, ws);
}

/* ---- public switches ---- */

extern "C" void lg_cuda_set_cudnn(int on) {
    std::lock_guard<std::mutex> lk(g_mu);
    g_enabled = on ? 1 : 0;
}

extern "C" int lg_cuda_cudnn(void) {
    std::lock_guard<std::mutex> lk(g_mu);
    if (!lgc_stream) return 0; /* backend not initialized */
    return ready_locked() ? 1 : 0;
}

extern "C" const char *lg_cuda_cudnn_info(void) {
    std::lock_guard<std::mutex> lk(g_mu);
    if (!enabled_locked())
        snprintf(g_info, sizeof g_info, "im2col + cuBLAS (cuDNN switched off: LG_CUDNN=0 or "
                                        "lg_cuda_set_cudnn(0))");
    else if (lgc_stream && ready_locked() && g_fallbacks)
        snprintf(g_info, sizeof g_info, "%s; %d call(s) failed and fell back to im2col, last: %s",
                 g_load_msg, g_fallbacks, g_fallback_msg);
    else if (lgc_stream && ready_locked())
        snprintf(g_info, sizeof g_info, "%s%s", g_load_msg,
                 nondet_locked() ? "; nondeterministic algorithms allowed (LG_CUDNN_NONDET=1)"
                                 : "");
    else if (g_state == DNN_FAILED)
        snprintf(g_info, sizeof g_info, "%s", g_load_msg);
    else
        snprintf(g_info, sizeof g_info, "cuDNN not loaded yet (backend not initialized)");
    return g_info;
}

extern "C" int lg_cuda_conv_algos(const lg_conv_geom *g, int algos[3]) {
    std::lock_guard<std::mutex> lk(g_mu);
    for (int i = 0; i < P_COUNT; i++) algos[i] = ALGO_UNKNOWN;
    if (g_state != DNN_READY) return 0;
    auto it = g_plans.find(key_of(g, lg_cuda_tf32()));
    if (it == g_plans.end()) return 0;
    for (int i = 0; i < P_COUNT; i++) algos[i] = it->second->algo[i];
    return 1;
}
