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
 * A plan per geometry, precision (lg_cuda_set_precision) and determinism
 * setting holds the descriptors and, per pass (forward, backward data,
 * backward filter), the algorithm chosen by benchmarking the first time the
 * pass runs (cudnnFind...Ex on the call's operands, in lipgan's own
 * workspace so cuDNN allocates nothing; during a CUDA Graph capture, where
 * nothing may synchronize or allocate, the heuristic query instead). fp32 runs with
 * CUDNN_FMA_MATH (no TF32, as PyTorch with allow_tf32 off); TF32 admits
 * tensor-core math on fp32 data; bf16 runs cuDNN on bf16 copies of the
 * operands (fp32 accumulation) and casts the result back. Deterministic
 * mode (the default) admits only algorithms that do not add with atomics.
 * An algorithm may use more workspace than the caller's buffer, up to
 * lg_cuda_set_conv_workspace_limit(): it then runs in one backend-owned
 * buffer that grows to the largest need and never moves back (old buffers
 * are kept), so addresses captured in graphs stay valid. A pass with no
 * qualifying algorithm, or whose call fails, uses im2col from then on; so
 * does one where im2col measured faster, and one where lipgan's Winograd
 * pass (cuda_winograd.cu) measured faster and agreed with im2col (see
 * choose_locked, wino_consider_locked). */
#include "cuda_internal.h"

#include <cuda_bf16.h>
#include <cmath>
#include <dlfcn.h>
#include <mutex>
#include <vector>
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
    DNN_DATA_BFLOAT16 = 9,
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

/* Looked up too, but optional: without them the choice uses cuDNN's
 * heuristics instead of benchmarking. */
#define DNN_OPT_FUNCS(X)                                                                   \
    X(dnn_status, cudnnFindConvolutionForwardAlgorithmEx,                                \
      (dnn_handle, dnn_tdesc, const void *, dnn_fdesc, const void *, dnn_cdesc, dnn_tdesc, \
       void *, int, int *, dnn_perf *, void *, size_t))                                  \
    X(dnn_status, cudnnFindConvolutionBackwardDataAlgorithmEx,                           \
      (dnn_handle, dnn_fdesc, const void *, dnn_tdesc, const void *, dnn_cdesc, dnn_tdesc, \
       void *, int, int *, dnn_perf *, void *, size_t))                                  \
    X(dnn_status, cudnnFindConvolutionBackwardFilterAlgorithmEx,                         \
      (dnn_handle, dnn_tdesc, const void *, dnn_tdesc, const void *, dnn_cdesc, dnn_fdesc, \
       void *, int, int *, dnn_perf *, void *, size_t))

static struct {
#define X(ret, name, args) ret(*name) args;
    DNN_FUNCS(X)
    DNN_OPT_FUNCS(X)
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
static int g_fallbacks;          /* cuDNN calls or benchmarks that failed, Winograd mismatches */
static char g_fallback_msg[300]; /* the last of them */

static int g_nondet = -1; /* 1: atomics-based algorithms allowed (LG_CUDNN_NONDET=1) */
static int g_verbose = -1; /* LG_CUDNN_VERBOSE=1: print every benchmark table */
static int g_benchmark = -1; /* 0: heuristic choice only (reproducible across processes);
                              * -1: not decided yet (LG_CUDNN_BENCHMARK=0, else 1) */
static size_t g_ws_limit;  /* 0: not decided yet (LG_CUDNN_WS_MB or 1 GiB) */

static bool nondet_locked(void) {
    if (g_nondet < 0) {
        const char *e = getenv("LG_CUDNN_NONDET");
        g_nondet = e && !strcmp(e, "1");
    }
    return g_nondet == 1;
}

static bool verbose_locked(void) {
    if (g_verbose < 0) {
        const char *e = getenv("LG_CUDNN_VERBOSE");
        g_verbose = e && !strcmp(e, "1");
    }
    return g_verbose == 1;
}

/* lg_cuda_set_benchmark's setting, else LG_CUDNN_BENCHMARK (0: heuristics,
 * e.g. under compute-sanitizer, where timing every algorithm is slow) */
static int benchmark_locked(void) {
    if (g_benchmark < 0) {
        const char *e = getenv("LG_CUDNN_BENCHMARK");
        g_benchmark = !(e && !strcmp(e, "0"));
    }
    return g_benchmark;
}

static size_t ws_limit_locked(void) {
    if (!g_ws_limit) {
        const char *e = getenv("LG_CUDNN_WS_MB");
        long mb = e ? atol(e) : 0;
        g_ws_limit = mb > 0 ? (size_t)mb << 20 : (size_t)1 << 30;
    }
    return g_ws_limit;
}

/* The backend-owned workspace (see the top): grown, never moved back. */
static void *g_big;
static size_t g_big_bytes;
static std::vector<void *> g_big_old;

static bool enabled_locked(void) {
    if (g_enabled < 0) {
        const char *e = getenv("LG_CUDNN");
        g_enabled = !(e && (!strcmp(e, "0") || !strcmp(e, "off")));
    }
    return g_enabled == 1;
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
#define X(ret, name, args) dnn.name = (ret(*) args)dlsym(h, #name);
    DNN_OPT_FUNCS(X)
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
    bool find_ex = dnn.cudnnFindConvolutionForwardAlgorithmEx &&
                   dnn.cudnnFindConvolutionBackwardDataAlgorithmEx &&
                   dnn.cudnnFindConvolutionBackwardFilterAlgorithmEx;
    snprintf(g_load_msg, sizeof g_load_msg, "cuDNN %zu.%zu.%zu (%s)%s", ver / 10000,
             ver / 100 % 100, ver % 100, where,
             find_ex ? "" : "; it lacks cudnnFind*AlgorithmEx: heuristic algorithm choice");
    g_state = DNN_READY;
}

/* True when cuDNN may serve this call (loading it on first use, but never
 * while the stream is being captured). */
static bool ready_locked(void) {
    if (!enabled_locked()) return false;
    if (g_state == DNN_UNTRIED && !lgc_capturing()) load_locked();
    return g_state == DNN_READY;
}

/* ---- plans ---- */

enum { P_FWD, P_BWD_DATA, P_BWD_FILTER, P_COUNT };
/* lipgan's own passes: im2col, Winograd F(2x2,3x3) (-3), F(4x4,3x3) (-4) */
enum { ALGO_UNKNOWN = -2, ALGO_IM2COL = -1, ALGO_WINO = -3, ALGO_WINO4 = -4 };

struct plan_key {
    int v[12]; /* n c h w oc kh kw stride pad precision deterministic benchmark */
    bool operator==(const plan_key &o) const { return !memcmp(v, o.v, sizeof v); }
};
struct plan_hash {
    size_t operator()(const plan_key &k) const {
        size_t h = 1469598103934665603ull;
        for (int i = 0; i < 12; i++) h = (h ^ (size_t)(unsigned)k.v[i]) * 1099511628211ull;
        return h;
    }
};
struct plan {
    dnn_tdesc x, y;
    dnn_fdesc w;
    dnn_cdesc conv;
    int prec;            /* LG_CUDA_FP32 / TF32 / BF16 */
    int det;             /* deterministic algorithms only */
    int cur_math;        /* math type the descriptor holds now */
    int algo[P_COUNT];   /* ALGO_UNKNOWN until chosen; ALGO_IM2COL: not cuDNN */
    int math[P_COUNT];   /* math type to run each algorithm with */
    size_t ws[P_COUNT];  /* bytes the algorithm needs */
    int big[P_COUNT];    /* runs in the backend-owned workspace */
};
static std::unordered_map<plan_key, plan *, plan_hash> g_plans;

static int det_locked(void) { return nondet_locked() ? 0 : 1; }

static plan_key key_of(const lg_conv_geom *g, int prec, int det) {
    plan_key k = {{g->n, g->c, g->h, g->w, g->oc, g->kh, g->kw, g->stride, g->pad, prec, det,
                   benchmark_locked()}};
    return k;
}

/* Elements of x (n,c,h,w), w (oc,c,kh,kw), y (n,oc,oh,ow). */
static size_t nx_of(const lg_conv_geom *g) { return (size_t)g->n * g->c * g->h * g->w; }
static size_t nw_of(const lg_conv_geom *g) { return (size_t)g->oc * g->c * g->kh * g->kw; }
static size_t ny_of(const lg_conv_geom *g) { return (size_t)g->n * g->oc * g->oh * g->ow; }
static size_t align256(size_t b) { return (b + 255) & ~(size_t)255; }
/* bf16 copies of x, w, y after the algorithm's workspace in the big buffer */
static size_t cast_bytes(const lg_conv_geom *g) {
    return align256(nx_of(g) * 2) + align256(nw_of(g) * 2) + align256(ny_of(g) * 2);
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

static plan *plan_get_locked(const lg_conv_geom *g, int prec, int det) {
    plan_key k = key_of(g, prec, det);
    auto it = g_plans.find(k);
    if (it != g_plans.end()) return it->second;
    plan *p = (plan *)calloc(1, sizeof *p);
    if (!p) return nullptr;
    p->prec = prec;
    p->det = det;
    for (int i = 0; i < P_COUNT; i++) p->algo[i] = ALGO_UNKNOWN;
    int base_math = prec == LG_CUDA_FP32   ? DNN_FMA_MATH
                    : prec == LG_CUDA_BF16 ? DNN_TENSOR_OP_MATH
                                           : DNN_DEFAULT_MATH;
    int dt = prec == LG_CUDA_BF16 ? DNN_DATA_BFLOAT16 : DNN_DATA_FLOAT;
    bool ok = dnn.cudnnCreateTensorDescriptor(&p->x) == DNN_SUCCESS &&
              dnn.cudnnCreateTensorDescriptor(&p->y) == DNN_SUCCESS &&
              dnn.cudnnCreateFilterDescriptor(&p->w) == DNN_SUCCESS &&
              dnn.cudnnCreateConvolutionDescriptor(&p->conv) == DNN_SUCCESS &&
              dnn.cudnnSetTensor4dDescriptor(p->x, DNN_TENSOR_NCHW, dt, g->n, g->c, g->h,
                                             g->w) == DNN_SUCCESS &&
              dnn.cudnnSetTensor4dDescriptor(p->y, DNN_TENSOR_NCHW, dt, g->n, g->oc, g->oh,
                                             g->ow) == DNN_SUCCESS &&
              dnn.cudnnSetFilter4dDescriptor(p->w, dt, DNN_TENSOR_NCHW, g->oc, g->c, g->kh,
                                             g->kw) == DNN_SUCCESS &&
              /* fp32 accumulation in every mode (bf16: PSEUDO_BFLOAT16_CONFIG) */
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

/* Makes the backend-owned workspace at least `bytes` (never while
 * capturing: allocation would break the capture). */
static bool big_reserve_locked(size_t bytes) {
    if (bytes <= g_big_bytes) return true;
    if (lgc_capturing()) return false;
    void *q = lgc_pool_alloc(bytes);
    if (!q) {
        lg_error_clear();
        return false;
    }
    if (g_big) g_big_old.push_back(g_big); /* graphs may still point at it */
    g_big = q;
    g_big_bytes = bytes;
    return true;
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

static const char *pass_name(int pass) {
    return pass == P_FWD ? "forward" : pass == P_BWD_DATA ? "backward data" : "backward filter";
}

static const char *prec_name(int prec) {
    return prec == LG_CUDA_TF32 ? "tf32" : prec == LG_CUDA_BF16 ? "bf16" : "fp32";
}

/* lipgan's own passes: im2col + cuBLAS, or Winograd F(m x m, 3x3)
 * (cuda_winograd.cu) in ws; kind is an ALGO_ value. */
static int wino_m(int kind) { return kind == ALGO_WINO4 ? 4 : 2; }
static void own_pass(int kind, int pass, const lg_conv_geom *g, float *out, const float *a,
                     const float *b, float *ws) {
    if (kind == ALGO_WINO || kind == ALGO_WINO4) {
        int m = wino_m(kind);
        if (pass == P_FWD) lgc_wino_conv2d(out, a, b, g, m, ws);
        else if (pass == P_BWD_DATA) lgc_wino_bwd_data(out, a, b, g, m, ws);
        else lgc_wino_bwd_weight(out, a, b, g, m, ws);
    } else {
        if (pass == P_FWD) lgc_im2col_conv2d(out, a, b, g, ws);
        else if (pass == P_BWD_DATA) lgc_im2col_conv2d_bwd_data(out, a, b, g, ws);
        else lgc_im2col_conv2d_bwd_weight(out, a, b, g, ws);
    }
}

/* GPU time of one of lipgan's own passes (an ALGO_ kind) on the call's operands (the
 * second of two runs; out is overwritten by the real call afterwards), or
 * a huge value if timing failed. */
static float own_ms(int kind, int pass, const lg_conv_geom *g, float *out, const float *a,
                    const float *b, float *ws) {
    cudaEvent_t e0 = nullptr, e1 = nullptr;
    float ms = 3.0e38f;
    if (cudaEventCreate(&e0) != cudaSuccess || cudaEventCreate(&e1) != cudaSuccess) {
        (void)cudaGetLastError();
        if (e0) cudaEventDestroy(e0);
        return ms;
    }
    for (int r = 0; r < 2; r++) {
        if (r) cudaEventRecord(e0, lgc_stream);
        own_pass(kind, pass, g, out, a, b, ws);
    }
    if (cudaEventRecord(e1, lgc_stream) != cudaSuccess || cudaEventSynchronize(e1) != cudaSuccess ||
        cudaEventElapsedTime(&ms, e0, e1) != cudaSuccess) {
        (void)cudaGetLastError();
        ms = 3.0e38f;
    }
    cudaEventDestroy(e0);
    cudaEventDestroy(e1);
    return ms;
}

/* LG_CUDA_WINO: 0/off never; force (F(2x2,3x3)) or force4 (F(4x4,3x3))
 * whenever it applies, untimed (tests); else both are timed. */
enum { WINO_OFF, WINO_TIMED, WINO_FORCE2, WINO_FORCE4 };
static int g_wino = -1;
static int wino_mode_locked(void) {
    if (g_wino < 0) {
        const char *e = getenv("LG_CUDA_WINO");
        g_wino = !e ? WINO_TIMED
                 : (!strcmp(e, "0") || !strcmp(e, "off")) ? WINO_OFF
                 : !strcmp(e, "force")                     ? WINO_FORCE2
                 : !strcmp(e, "force4")                    ? WINO_FORCE4
                                                           : WINO_TIMED;
    }
    return g_wino;
}

/* Elements of a pass's output: y, dx or dw. */
static size_t nout_of(int pass, const lg_conv_geom *g) {
    return pass == P_FWD ? ny_of(g) : pass == P_BWD_DATA ? nx_of(g) : nw_of(g);
}

/* nMSE of got against ref (both device, n floats), read back to the host
 * (once per geometry and pass, when choosing); +inf if either is not finite
 * or the copies fail. */
static double nmse_dev(const float *got, const float *ref, size_t n) {
    std::vector<float> h1(n), h2(n);
    if (cudaMemcpyAsync(h1.data(), got, n * 4, cudaMemcpyDeviceToHost, lgc_stream) != cudaSuccess ||
        cudaMemcpyAsync(h2.data(), ref, n * 4, cudaMemcpyDeviceToHost, lgc_stream) != cudaSuccess ||
        cudaStreamSynchronize(lgc_stream) != cudaSuccess) {
        (void)cudaGetLastError();
        return INFINITY;
    }
    double num = 0, den = 0;
    for (size_t i = 0; i < n; i++) {
        if (!std::isfinite(h1[i]) || !std::isfinite(h2[i])) return INFINITY;
        double d = (double)h1[i] - h2[i];
        num += d * d;
        den += (double)h2[i] * h2[i];
    }
    return den > 0 ? num / den : num;
}

__global__ void k_to_bf16(__nv_bfloat16 *y, const float *x, size_t n) {
    for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < n;
         i += (size_t)gridDim.x * blockDim.x)
        y[i] = __float2bfloat16_rn(x[i]);
}

__global__ void k_from_bf16(float *y, const __nv_bfloat16 *x, size_t n) {
    for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < n;
         i += (size_t)gridDim.x * blockDim.x)
        y[i] = __bfloat162float(x[i]);
}

static bool launched_ok(void) { return lgc_cuda_ok(cudaGetLastError(), "cast", __FILE__, __LINE__); }

/* bf16 copies of the pass's operands in the role buffers at base (x, w, y
 * in bf16, see cast_bytes); (ca, cb, cout) are set to the bf16 operands and
 * output. (a, b) -> out per pass: (x, w) -> y, (dy, w) -> dx, (x, dy) -> dw.
 * False if a launch failed (the status is recorded). */
static bool cast_roles(int pass, const lg_conv_geom *g, char *base, const float *a,
                       const float *b, const void **ca, const void **cb, void **cout) {
    __nv_bfloat16 *xb = (__nv_bfloat16 *)base;
    __nv_bfloat16 *wb = (__nv_bfloat16 *)(base + align256(nx_of(g) * 2));
    __nv_bfloat16 *yb = (__nv_bfloat16 *)(base + align256(nx_of(g) * 2) + align256(nw_of(g) * 2));
    __nv_bfloat16 *ra = pass == P_BWD_DATA ? yb : xb;
    __nv_bfloat16 *rb = pass == P_BWD_FILTER ? yb : wb;
    __nv_bfloat16 *ro = pass == P_FWD ? yb : pass == P_BWD_DATA ? xb : wb;
    size_t na = pass == P_BWD_DATA ? ny_of(g) : nx_of(g);
    size_t nb = pass == P_BWD_FILTER ? ny_of(g) : nw_of(g);
    k_to_bf16<<<lgc_grid(na), LGC_THREADS, 0, lgc_stream>>>(ra, a, na);
    k_to_bf16<<<lgc_grid(nb), LGC_THREADS, 0, lgc_stream>>>(rb, b, nb);
    *ca = ra;
    *cb = rb;
    *cout = ro;
    return launched_ok();
}

/* Benchmarks every algorithm of one pass on the call's operands with
 * cudnnFind...AlgorithmEx, in the backend-owned workspace grown to the
 * largest need within the limit: cuDNN then allocates nothing itself, so all
 * device memory comes from lipgan's pool. `out` is overwritten (the real
 * call writes it afterwards). False when there is no such workspace or the
 * bf16 casts failed: the caller falls back to the heuristic query. */
static bool find_locked(plan *p, int pass, const lg_conv_geom *g, float *out, const float *a,
                        const float *b, size_t limit, dnn_perf *r, int *got, dnn_status *s) {
    if (!dnn.cudnnFindConvolutionForwardAlgorithmEx ||
        !dnn.cudnnFindConvolutionBackwardDataAlgorithmEx ||
        !dnn.cudnnFindConvolutionBackwardFilterAlgorithmEx)
        return false;
    static const int nalgo[P_COUNT] = {8, 6, 7}; /* cuDNN 9's *_ALGO_COUNT per pass */
    size_t fws = 0;
    for (int al = 0; al < nalgo[pass]; al++) {
        size_t need = ws_of(p, pass, al);
        if (need != (size_t)-1 && need <= limit && need > fws) fws = need;
    }
    bool bf16 = p->prec == LG_CUDA_BF16;
    if (!big_reserve_locked(align256(fws) + (bf16 ? cast_bytes(g) : 0))) return false;
    void *fw = fws ? g_big : nullptr; /* no algorithm needs any: none allocated yet, maybe */
    const void *ca = a, *cb = b;
    void *co = out;
    if (bf16 && !cast_roles(pass, g, (char *)g_big + align256(fws), a, b, &ca, &cb, &co))
        return false;
    if (pass == P_FWD)
        *s = dnn.cudnnFindConvolutionForwardAlgorithmEx(g_handle, p->x, ca, p->w, cb, p->conv,
                                                        p->y, co, 16, got, r, fw, fws);
    else if (pass == P_BWD_DATA)
        *s = dnn.cudnnFindConvolutionBackwardDataAlgorithmEx(g_handle, p->w, cb, p->y, ca,
                                                             p->conv, p->x, co, 16, got, r,
                                                             fw, fws);
    else
        *s = dnn.cudnnFindConvolutionBackwardFilterAlgorithmEx(g_handle, p->x, ca, p->y, cb,
                                                               p->conv, p->w, co, 16, got, r,
                                                               fw, fws);
    return true;
}

/* Whether one of lipgan's Winograd passes (cuda_winograd.cu; kind
 * ALGO_WINO = F(2x2,3x3) or ALGO_WINO4 = F(4x4,3x3)) takes this pass: in
 * fp32 or TF32 (not bf16), for 3x3 stride-1 pad-1 convolutions whose
 * workspace fits the limit. Timed (on the call's operands, out holding the
 * im2col result): it must agree with im2col (nMSE at most 1e-9 in fp32,
 * 1e-4 in TF32; a disagreement is reported by lg_cuda_cudnn_info and that
 * variant stays off the pass) and be faster than *best. LG_CUDA_WINO=force
 * / force4 takes that variant whenever it applies, untimed (tests); =0 never. */
static void wino_consider_locked(plan *p, int pass, const lg_conv_geom *g, int kind,
                                 const float *out, const float *a, const float *b, size_t limit,
                                 float *best, bool timed) {
    int mode = wino_mode_locked(), m = wino_m(kind);
    bool forced = (mode == WINO_FORCE2 && kind == ALGO_WINO) || (mode == WINO_FORCE4 && kind == ALGO_WINO4);
    if (mode == WINO_OFF || p->prec == LG_CUDA_BF16 || !lgc_wino_ok(g)) return;
    if (!forced && (mode != WINO_TIMED || !timed)) return;
    size_t wb = align256(lgc_wino_bytes(g, m)), nout = nout_of(pass, g);
    if (wb > limit || !big_reserve_locked(wb + (forced ? 0 : nout * sizeof(float)))) return;
    if (forced) {
        p->algo[pass] = kind;
        p->ws[pass] = wb;
        p->big[pass] = 1;
        return;
    }
    float *wout = (float *)((char *)g_big + wb); /* beside the workspace, not `out` */
    float t = own_ms(kind, pass, g, wout, a, b, (float *)g_big);
    double e = nmse_dev(wout, out, nout), bar = p->prec == LG_CUDA_FP32 ? 1e-9 : 1e-4;
    if (verbose_locked())
        fprintf(stderr, "  winograd F(%dx%d,3x3): %.3f ms, nMSE %.3g vs im2col\n", m, m, (double)t, e);
    if (!(e <= bar)) {
        g_fallbacks++;
        snprintf(g_fallback_msg, sizeof g_fallback_msg,
                 "winograd F(%dx%d,3x3) %s for n%d c%d %dx%d oc%d differed from im2col (nMSE "
                 "%.3g > %.0e); not used",
                 m, m, pass_name(pass), g->n, g->c, g->h, g->w, g->oc, e, bar);
        return;
    }
    if (t < *best) {
        p->algo[pass] = kind;
        p->ws[pass] = wb;
        p->big[pass] = 1;
        *best = t;
    }
}

/* Picks the fastest qualifying algorithm for one pass (benchmarked unless
 * capturing, then heuristic). `caller` is the caller's workspace in bytes;
 * more (up to the limit) comes from the backend-owned buffer. When
 * benchmarking, lipgan's own im2col + cuBLAS pass is timed on the call's
 * operands too and wins if faster (cuDNN is slow on some skinny shapes,
 * e.g. the weight gradient of a 3-channel input layer). */
static void choose_locked(plan *p, int pass, const lg_conv_geom *g, size_t caller, float *out,
                          const float *a, const float *b, float *ws) {
    dnn_perf r[16];
    int got = 0;
    size_t limit = ws_limit_locked();
    bool find = benchmark_locked() && !lgc_capturing();
    dnn_status s = !DNN_SUCCESS;
    if (find && !find_locked(p, pass, g, out, a, b, limit, r, &got, &s)) find = false;
    if (find && s != DNN_SUCCESS) { /* say so, and still use cuDNN, by its heuristics */
        g_fallbacks++;
        snprintf(g_fallback_msg, sizeof g_fallback_msg,
                 "benchmarking %s for n%d c%d %dx%d oc%d k%d s%d p%d failed (%s); cuDNN's "
                 "heuristic choice used",
                 pass_name(pass), g->n, g->c, g->h, g->w, g->oc, g->kh, g->stride, g->pad,
                 dnn.cudnnGetErrorString(s));
        (void)cudaGetLastError();
        find = false;
    }
    if (!find && pass == P_FWD)
        s = dnn.cudnnGetConvolutionForwardAlgorithm_v7(g_handle, p->x, p->w, p->conv, p->y, 16,
                                                       &got, r);
    else if (!find && pass == P_BWD_DATA)
        s = dnn.cudnnGetConvolutionBackwardDataAlgorithm_v7(g_handle, p->w, p->y, p->conv, p->x,
                                                            16, &got, r);
    else if (!find)
        s = dnn.cudnnGetConvolutionBackwardFilterAlgorithm_v7(g_handle, p->x, p->y, p->conv,
                                                              p->w, 16, &got, r);
    (void)cudaGetLastError(); /* benchmarking may probe unsupported kernels */
    p->algo[pass] = ALGO_IM2COL;
    bool bf16 = p->prec == LG_CUDA_BF16;
    float best = 3.0e38f; /* measured time of the current choice */
    if (s == DNN_SUCCESS && verbose_locked())
        fprintf(stderr, "cudnn %s %s n%d c%d %dx%d oc%d k%dx%d s%d p%d (%s%s):\n",
                find ? "find" : "heuristic", pass_name(pass), g->n, g->c, g->h, g->w, g->oc,
                g->kh, g->kw, g->stride, g->pad, prec_name(p->prec),
                p->det ? ", deterministic" : "");
    for (int i = 0; s == DNN_SUCCESS && i < got && i < 16; i++) { /* sorted fastest first */
        bool ok = r[i].status == DNN_SUCCESS;
        if (verbose_locked())
            fprintf(stderr, "  algo %d: %s %.3f ms, %zu MB, %s, math %d\n", r[i].algo,
                    ok ? "ok" : "unsupported", (double)r[i].time, r[i].memory >> 20,
                    r[i].determinism == DNN_DETERMINISTIC ? "det" : "nondet", r[i].math_type);
        if (!ok) continue;
        if (p->det && (r[i].determinism != DNN_DETERMINISTIC || nondeterministic(pass, r[i].algo)))
            continue;
        int mt = r[i].math_type;
        if (p->prec == LG_CUDA_FP32) { /* never TF32 in fp32 mode: FMA only (as PyTorch) */
            if (mt == DNN_TENSOR_OP_MATH || mt == DNN_TENSOR_OP_MATH_ALLOW_CONVERSION) continue;
            mt = DNN_FMA_MATH;
        }
        if (dnn.cudnnSetConvolutionMathType(p->conv, mt) != DNN_SUCCESS) continue;
        p->cur_math = mt;
        size_t need = ws_of(p, pass, r[i].algo);
        if (need == (size_t)-1 || need > limit) continue;
        bool big = bf16 || need > caller;
        if (big && !big_reserve_locked(bf16 ? align256(need) + cast_bytes(g) : need)) continue;
        p->algo[pass] = r[i].algo;
        p->math[pass] = mt;
        p->ws[pass] = need;
        p->big[pass] = big;
        best = find ? r[i].time : 0.0f;
        if (verbose_locked())
            fprintf(stderr, "  cuDNN's pick: algo %d (%s workspace)\n", r[i].algo,
                    big ? "backend" : "caller's");
        break;
    }
    /* lipgan's own passes race it on the same operands (im2col also gives
     * the reference the Winograd result is checked against) */
    float im = find ? own_ms(ALGO_IM2COL, pass, g, out, a, b, ws) : 3.0e38f;
    if (im < best) {
        p->algo[pass] = ALGO_IM2COL;
        best = im;
    }
    if (verbose_locked() && find) fprintf(stderr, "  im2col: %.3f ms\n", (double)im);
    for (int kind = ALGO_WINO; kind >= ALGO_WINO4; kind--)
        wino_consider_locked(p, pass, g, kind, out, a, b, limit, &best, find && im < 3.0e38f);
    if (verbose_locked())
        fprintf(stderr, "  chosen: %s\n", p->algo[pass] == ALGO_IM2COL  ? "im2col"
                                         : p->algo[pass] == ALGO_WINO  ? "winograd F(2x2,3x3)"
                                         : p->algo[pass] == ALGO_WINO4 ? "winograd F(4x4,3x3)"
                                                                       : "cuDNN");
}

/* Runs one pass through cuDNN if a plan allows; false: caller uses im2col. */
static bool run_pass(int pass, const lg_conv_geom *g, float *out, const float *a,
                     const float *b, float *ws) {
    std::lock_guard<std::mutex> lk(g_mu);
    if (!ready_locked() || !geom_ok(g)) return false;
    plan *p = plan_get_locked(g, lgc_precision, det_locked());
    if (!p) return false;
    if (p->algo[pass] == ALGO_UNKNOWN)
        choose_locked(p, pass, g, lgc_conv_workspace(g) * sizeof(float), out, a, b, ws);
    if (p->algo[pass] == ALGO_IM2COL) return false;
    if (p->algo[pass] == ALGO_WINO || p->algo[pass] == ALGO_WINO4) {
        own_pass(p->algo[pass], pass, g, out, a, b, (float *)g_big);
        return true;
    }
    if (p->cur_math != p->math[pass]) {
        if (dnn.cudnnSetConvolutionMathType(p->conv, p->math[pass]) != DNN_SUCCESS) return false;
        p->cur_math = p->math[pass];
    }
    void *w_s = p->big[pass] ? g_big : (void *)ws;
    const void *ca = a, *cb = b;
    void *cout = out;
    if (p->prec == LG_CUDA_BF16 &&
        !cast_roles(pass, g, (char *)g_big + align256(p->ws[pass]), a, b, &ca, &cb, &cout))
        return true; /* recorded; the step fails on the status */
    const float one = 1.0f, zero = 0.0f;
    dnn_status s;
    if (pass == P_FWD) /* y = conv(x = a, w = b) */
        s = dnn.cudnnConvolutionForward(g_handle, &one, p->x, ca, p->w, cb, p->conv,
                                        p->algo[pass], w_s, p->ws[pass], &zero, p->y, cout);
    else if (pass == P_BWD_DATA) /* dx from dy = a, w = b */
        s = dnn.cudnnConvolutionBackwardData(g_handle, &one, p->w, cb, p->y, ca, p->conv,
                                             p->algo[pass], w_s, p->ws[pass], &zero, p->x, cout);
    else /* dw from x = a, dy = b */
        s = dnn.cudnnConvolutionBackwardFilter(g_handle, &one, p->x, ca, p->y, cb, p->conv,
                                               p->algo[pass], w_s, p->ws[pass], &zero, p->w, cout);
    if (s != DNN_SUCCESS) {
        /* remember it for lg_cuda_cudnn_info(), then stay on im2col for it */
        g_fallbacks++;
        snprintf(g_fallback_msg, sizeof g_fallback_msg,
                 "%s algorithm %d (%s) for n%d c%d %dx%d oc%d k%d s%d p%d: %s", pass_name(pass),
                 p->algo[pass], prec_name(p->prec), g->n, g->c, g->h, g->w, g->oc, g->kh,
                 g->stride, g->pad, dnn.cudnnGetErrorString(s));
        p->algo[pass] = ALGO_IM2COL;
        (void)cudaGetLastError();
        return false;
    }
    if (p->prec == LG_CUDA_BF16) {
        size_t no = nout_of(pass, g);
        k_from_bf16<<<lgc_grid(no), LGC_THREADS, 0, lgc_stream>>>(
            out, (const __nv_bfloat16 *)cout, no);
        (void)launched_ok();
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
        snprintf(g_info, sizeof g_info, "%s; %d fallback(s), the last: %s", g_load_msg,
                 g_fallbacks, g_fallback_msg);
    else if (lgc_stream && ready_locked())
        snprintf(g_info, sizeof g_info, "%s%s", g_load_msg,
                 nondet_locked() ? "; nondeterministic algorithms allowed" : "");
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
    auto it = g_plans.find(key_of(g, lgc_precision, det_locked()));
    if (it == g_plans.end()) return 0;
    for (int i = 0; i < P_COUNT; i++) algos[i] = it->second->algo[i];
    return 1;
}

extern "C" void lg_cuda_set_deterministic(int on) {
    std::lock_guard<std::mutex> lk(g_mu);
    g_nondet = on ? 0 : 1;
}

extern "C" int lg_cuda_deterministic(void) {
    std::lock_guard<std::mutex> lk(g_mu);
    return nondet_locked() ? 0 : 1;
}

extern "C" void lg_cuda_set_conv_workspace_limit(size_t bytes) {
    std::lock_guard<std::mutex> lk(g_mu);
    g_ws_limit = bytes ? bytes : 1;
}

extern "C" void lg_cuda_set_benchmark(int on) {
    std::lock_guard<std::mutex> lk(g_mu);
    g_benchmark = on ? 1 : 0;
}
