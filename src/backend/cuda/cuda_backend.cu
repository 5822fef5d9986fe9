/* CUDA backend: initialization, the sticky error status, the device memory
 * pool, host<->device transfers, and the lg_backend table. Kernels live in
 * cuda_elementwise.cu, cuda_reduce.cu, cuda_bn.cu, cuda_linalg.cu and
 * cuda_cudnn.cu; the opt-in profiling wrappers in cuda_profile.cu. */
#include "cuda_internal.h"

#include <map>
#include <mutex>
#include <stdio.h>
#include <string.h>
#include <unordered_map>

cudaStream_t lgc_stream = nullptr;
cublasHandle_t lgc_blas = nullptr;
double *lgc_red_partial = nullptr;
float *lgc_red_scalar = nullptr;
double *lgc_chan_partial = nullptr;
float4 *lgc_chan_coef = nullptr;

/* ---- sticky error status ---- */

static std::mutex g_err_mu;
static lg_status g_err = LG_OK;
static char g_err_msg[512];

static void record_error(lg_status s, const char *msg) {
    std::lock_guard<std::mutex> lk(g_err_mu);
    if (g_err == LG_OK) {
        g_err = s;
        snprintf(g_err_msg, sizeof g_err_msg, "%s", msg);
    }
    lg_error_set(s, "%s", msg);
}

bool lgc_cuda_ok(cudaError_t e, const char *expr, const char *file, int line) {
    if (e == cudaSuccess) return true;
    char msg[512];
    snprintf(msg, sizeof msg,
             "cuda: %s failed at %s:%d: %s (%s); a kernel fault poisons the "
             "device context, restart the process (run under compute-sanitizer "
             "to locate it)",
             expr, file, line, cudaGetErrorString(e), cudaGetErrorName(e));
    record_error(e == cudaErrorMemoryAllocation ? LG_ERR_NOMEM : LG_ERR_BACKEND, msg);
    return false;
}

bool lgc_blas_ok(cublasStatus_t s, const char *expr, const char *file, int line) {
    if (s == CUBLAS_STATUS_SUCCESS) return true;
    char msg[512];
    snprintf(msg, sizeof msg, "cublas: %s failed at %s:%d: %s; check the gemm shapes",
             expr, file, line, cublasGetStatusString(s));
    record_error(s == CUBLAS_STATUS_ALLOC_FAILED ? LG_ERR_NOMEM : LG_ERR_BACKEND, msg);
    return false;
}

extern "C" lg_status lg_cuda_last_status(void) {
    std::lock_guard<std::mutex> lk(g_err_mu);
    if (g_err != LG_OK) lg_error_set(g_err, "%s", g_err_msg);
    return g_err;
}

extern "C" void lg_cuda_clear_status(void) {
    std::lock_guard<std::mutex> lk(g_err_mu);
    g_err = LG_OK;
    g_err_msg[0] = '\0';
}

/* ---- memory pool ----
 * A caching allocator over cudaMalloc: freed blocks are kept (keyed by size)
 * and reused for requests they fit within 2x, so a training loop that frees
 * and re-allocates the same sizes never calls cudaMalloc/cudaFree (which
 * synchronize the device) after its first step. Reuse is safe without
 * events because all work runs on the one stream, in order. */

static std::mutex g_pool_mu;
static std::unordered_map<void *, size_t> g_used;  /* live block -> size */
static std::multimap<size_t, void *> g_cached;     /* size -> free block */
static size_t g_reserved, g_in_use;

static size_t round_bytes(size_t bytes) {
    const size_t q = 512; /* cudaMalloc aligns to 256; keep sizes coarse */
    if (bytes == 0) bytes = 1;
    return (bytes + q - 1) / q * q;
}

static void trim_locked(void) {
    for (auto &kv : g_cached) {
        cudaFree(kv.second);
        g_reserved -= kv.first;
    }
    g_cached.clear();
}

static void *pool_alloc(size_t bytes) {
    size_t sz = round_bytes(bytes);
    std::lock_guard<std::mutex> lk(g_pool_mu);
    auto it = g_cached.lower_bound(sz);
    if (it != g_cached.end() && it->first <= 2 * sz) {
        void *p = it->second;
        size_t have = it->first;
        g_cached.erase(it);
        g_used[p] = have;
        g_in_use += have;
        return p;
    }
    void *p = nullptr;
    cudaError_t e = cudaMalloc(&p, sz);
    if (e == cudaErrorMemoryAllocation && !g_cached.empty()) {
        (void)cudaGetLastError(); /* clear it so later launch checks don't see it */
        trim_locked();
        e = cudaMalloc(&p, sz);
    }
    if (e != cudaSuccess) {
        (void)cudaGetLastError();
        lg_error_set(LG_ERR_NOMEM,
                     "cuda: cudaMalloc of %zu bytes failed: %s (pool holds %zu bytes); "
                     "reduce the batch size or model width",
                     sz, cudaGetErrorString(e), g_reserved);
        return nullptr;
    }
    g_reserved += sz;
    g_used[p] = sz;
    g_in_use += sz;
    return p;
}

static void pool_free(void *p) {
    if (!p) return;
    std::lock_guard<std::mutex> lk(g_pool_mu);
    auto it = g_used.find(p);
    LG_ASSERT(it != g_used.end()); /* not from this pool, or freed twice */
    /* insert at the front of its size's range: the block freed last is the
     * one reused first (LIFO), which keeps a step's addresses stable */
    g_cached.emplace_hint(g_cached.lower_bound(it->second), it->second, p);
    g_in_use -= it->second;
    g_used.erase(it);
}

extern "C" void lg_cuda_pool_stats(size_t *reserved, size_t *in_use) {
    std::lock_guard<std::mutex> lk(g_pool_mu);
    if (reserved) *reserved = g_reserved;
    if (in_use) *in_use = g_in_use;
}

extern "C" void lg_cuda_pool_trim(void) {
    std::lock_guard<std::mutex> lk(g_pool_mu);
    trim_locked();
}

/* ---- transfers ---- */

static void be_upload(float *dst, const float *src, size_t n) {
    if (n == 0) return;
    /* From pageable memory the copy is staged before returning, so the
     * caller may reuse src at once. */
    LGC_CK(cudaMemcpyAsync(dst, src, n * sizeof(float), cudaMemcpyHostToDevice, lgc_stream));
}

static void be_download(float *dst, const float *src, size_t n) {
    if (n == 0) return;
    LGC_CK(cudaMemcpyAsync(dst, src, n * sizeof(float), cudaMemcpyDeviceToHost, lgc_stream));
    LGC_CK(cudaStreamSynchronize(lgc_stream));
}

static void be_copy(float *dst, const float *src, size_t n) {
    if (n == 0 || dst == src) return;
    LGC_CK(cudaMemcpyAsync(dst, src, n * sizeof(float), cudaMemcpyDeviceToDevice, lgc_stream));
}

static void be_sync(void) { LGC_CK(cudaStreamSynchronize(lgc_stream)); }

/* ---- precision switch (fp32 / TF32 / bf16 matrix math) ---- */

int lgc_precision = LG_CUDA_FP32;

static cublasMath_t blas_math(void) {
    /* DEFAULT_MATH is plain fp32 (no tensor-core down-conversion); bf16
     * goes through cublasGemmEx with its own compute type (lgc_gemm). */
    return lgc_precision == LG_CUDA_TF32 ? CUBLAS_TF32_TENSOR_OP_MATH : CUBLAS_DEFAULT_MATH;
}

static void apply_math_mode(void) {
    if (!lgc_blas) return;
    LGC_BLAS(cublasSetMathMode(lgc_blas, blas_math()));
}

extern "C" lg_status lg_cuda_set_precision(int p) {
    if (p != LG_CUDA_FP32 && p != LG_CUDA_TF32 && p != LG_CUDA_BF16)
        return lg_error_set(LG_ERR_INVALID_ARG, "cuda: precision %d is not fp32 (0), tf32 (1) or bf16 (2)", p);
    lgc_precision = p;
    apply_math_mode();
    return LG_OK;
}

extern "C" int lg_cuda_precision(void) { return lgc_precision; }

extern "C" void lg_cuda_set_tf32(int on) {
    (void)lg_cuda_set_precision(on ? LG_CUDA_TF32 : LG_CUDA_FP32);
}

extern "C" int lg_cuda_tf32(void) { return lgc_precision == LG_CUDA_TF32; }

void *lgc_pool_alloc(size_t bytes) { return pool_alloc(bytes); }
void lgc_pool_free(void *p) { pool_free(p); }

/* ---- graphs ---- */

bool lgc_capturing(void) {
    cudaStreamCaptureStatus cs = cudaStreamCaptureStatusNone;
    if (cudaStreamIsCapturing(lgc_stream, &cs) != cudaSuccess) {
        (void)cudaGetLastError();
        return true; /* unknown: take the safe road (no syncs, no allocation) */
    }
    return cs != cudaStreamCaptureStatusNone;
}

struct lg_cuda_graph {
    cudaGraph_t g;
    cudaGraphExec_t ex;
    size_t nodes;
};

extern "C" lg_status lg_cuda_capture_begin(void) {
    if (!lgc_stream) return lg_error_set(LG_ERR_BACKEND, "cuda: capture before init");
    cudaError_t e = cudaStreamBeginCapture(lgc_stream, cudaStreamCaptureModeGlobal);
    if (e != cudaSuccess) {
        (void)cudaGetLastError();
        return lg_error_set(LG_ERR_BACKEND, "cuda: cannot begin a graph capture: %s",
                            cudaGetErrorString(e));
    }
    return LG_OK;
}

extern "C" lg_status lg_cuda_capture_end(lg_cuda_graph **out) {
    *out = nullptr;
    cudaGraph_t g = nullptr;
    cudaError_t e = cudaStreamEndCapture(lgc_stream, &g);
    lg_status inner = lg_cuda_last_status(); /* a call that failed while recording */
    char why[300];
    snprintf(why, sizeof why, "%s", inner != LG_OK ? lg_error_msg() : "");
    if (e == cudaSuccess && inner == LG_OK) {
        cudaGraphExec_t ex = nullptr;
        e = cudaGraphInstantiate(&ex, g, 0);
        if (e == cudaSuccess) {
            lg_cuda_graph *r = (lg_cuda_graph *)calloc(1, sizeof *r);
            if (!r) {
                cudaGraphExecDestroy(ex);
                cudaGraphDestroy(g);
                return lg_error_set(LG_ERR_NOMEM, "cuda: out of memory");
            }
            r->g = g;
            r->ex = ex;
            cudaGraphGetNodes(g, nullptr, &r->nodes);
            *out = r;
            return LG_OK;
        }
    }
    (void)cudaGetLastError();
    if (g) cudaGraphDestroy(g);
    lg_cuda_clear_status();
    return lg_error_set(LG_ERR_BACKEND, "cuda: graph capture failed: %s%s%s",
                        cudaGetErrorString(e), why[0] ? "; " : "", why);
}

extern "C" lg_status lg_cuda_graph_launch(lg_cuda_graph *g) {
    cudaError_t e = cudaGraphLaunch(g->ex, lgc_stream);
    if (e != cudaSuccess) {
        lgc_cuda_ok(e, "cudaGraphLaunch", __FILE__, __LINE__);
        return lg_cuda_last_status();
    }
    return LG_OK;
}

extern "C" void lg_cuda_graph_free(lg_cuda_graph *g) {
    if (!g) return;
    cudaGraphExecDestroy(g->ex);
    cudaGraphDestroy(g->g);
    free(g);
}

extern "C" size_t lg_cuda_graph_nodes(const lg_cuda_graph *g) { return g ? g->nodes : 0; }

extern "C" void *lg_cuda_stream(void) { return (void *)lgc_stream; }

/* ---- init and the table ---- */

static const lg_backend g_cuda_backend = {
    "cuda",
    1,
    pool_alloc,
    pool_free,
    be_upload,
    be_download,
    be_copy,
    lgc_fill,
    be_sync,
    lgc_gemm,
    lgc_conv_workspace,
    lgc_conv2d,
    lgc_conv2d_bwd_data,
    lgc_conv2d_bwd_weight,
    lgc_unary,
    lgc_binary,
    lgc_sum_to,
    lgc_sum_all,
    lgc_upsample2x,
    lgc_sumpool2x2,
    lgc_bn_train,
    lgc_bn_eval,
    lgc_bn_bwd,
    lgc_dot,
    lgc_normalize,
    lgc_adam,
    lgc_all_finite,
    lgc_adam_prep,
    lgc_adam_flagged,
    lgc_cond_copy,
    lgc_flag_track,
    lgc_svd,
    /* synchronized batch norm's parts (cuda_bn.cu) */
    lgc_bn_stats,
    lgc_bn_bwd_sums,
    lgc_bn_bwd_apply,
};

/* cuBLAS needs a user workspace so that it never allocates while a CUDA
 * graph is being captured; 32 MiB is NVIDIA's advice for Hopper. */
enum { LGC_BLAS_WS = 32 << 20 };

static std::once_flag g_init_once;
static int g_want_dev = -1; /* lg_cuda_set_device's index, before init; -1: not called */
static int g_dev = -1;      /* the device init chose; -1 before init */
static int g_dev_count;     /* devices visible at init */
static lg_status g_init_status = LG_ERR_BACKEND;
static char g_init_msg[512] = "cuda: not initialized";

static bool init_fail(lg_status s, const char *fmt, const char *detail) {
    snprintf(g_init_msg, sizeof g_init_msg, fmt, detail);
    g_init_status = s;
    (void)cudaGetLastError();
    return false;
}

static bool init_cuda(void) {
    int count = 0;
    cudaError_t e = cudaGetDeviceCount(&count);
    if (e != cudaSuccess || count == 0)
        return init_fail(LG_ERR_UNSUPPORTED,
                         "cuda: no usable CUDA device (%s); use the cpu backend",
                         e != cudaSuccess ? cudaGetErrorString(e) : "device count is 0");
    /* lg_cuda_set_device's choice, modulo the visible devices (processes
     * may outnumber GPUs; they then share), else the calling thread's
     * current device (0 unless the program chose one) */
    int dev = 0;
    if (g_want_dev >= 0) {
        dev = g_want_dev % count;
        e = cudaSetDevice(dev);
    } else {
        e = cudaGetDevice(&dev);
    }
    cudaDeviceProp prop;
    if (e != cudaSuccess || (e = cudaGetDeviceProperties(&prop, dev)) != cudaSuccess)
        return init_fail(LG_ERR_BACKEND, "cuda: cannot query the device: %s",
                         cudaGetErrorString(e));
    if (prop.major < 9) {
        char d[320];
        snprintf(d, sizeof d, "%s has compute capability %d.%d", prop.name, prop.major,
                 prop.minor);
        return init_fail(LG_ERR_UNSUPPORTED,
                         "cuda: %s but lipgan's kernels are built for sm_90; add a "
                         "-gencode for it to NVFLAGS in the Makefile or use the cpu backend",
                         d);
    }
    if ((e = cudaStreamCreateWithFlags(&lgc_stream, cudaStreamNonBlocking)) != cudaSuccess)
        return init_fail(LG_ERR_BACKEND, "cuda: cannot create a stream: %s",
                         cudaGetErrorString(e));
    cublasStatus_t bs = cublasCreate(&lgc_blas);
    if (bs != CUBLAS_STATUS_SUCCESS)
        return init_fail(LG_ERR_BACKEND, "cuda: cublasCreate failed: %s",
                         cublasGetStatusString(bs));
    void *blas_ws = nullptr;
    if ((e = cudaMalloc(&blas_ws, LGC_BLAS_WS)) != cudaSuccess ||
        (e = cudaMalloc((void **)&lgc_red_partial, LGC_RED_BLOCKS * sizeof(double))) !=
            cudaSuccess ||
        (e = cudaMalloc((void **)&lgc_red_scalar, sizeof(float))) != cudaSuccess ||
        (e = cudaMalloc((void **)&lgc_chan_partial, LGC_CHAN_PARTIALS * sizeof(double))) !=
            cudaSuccess ||
        (e = cudaMalloc((void **)&lgc_chan_coef, LGC_CHAN_MAXC * sizeof(float4))) !=
            cudaSuccess)
        return init_fail(LG_ERR_NOMEM, "cuda: cannot allocate backend scratch: %s",
                         cudaGetErrorString(e));
    if ((bs = cublasSetStream(lgc_blas, lgc_stream)) != CUBLAS_STATUS_SUCCESS ||
        (bs = cublasSetWorkspace(lgc_blas, blas_ws, LGC_BLAS_WS)) != CUBLAS_STATUS_SUCCESS ||
        (bs = cublasSetPointerMode(lgc_blas, CUBLAS_POINTER_MODE_HOST)) !=
            CUBLAS_STATUS_SUCCESS ||
        (bs = cublasSetMathMode(lgc_blas, blas_math())) !=
            CUBLAS_STATUS_SUCCESS)
        return init_fail(LG_ERR_BACKEND, "cuda: cuBLAS setup failed: %s",
                         cublasGetStatusString(bs));
    /* Run one kernel now: a driver or architecture mismatch ("no kernel
     * image is available") shows here rather than at the first real op. */
    lgc_fill(lgc_red_scalar, 0.0f, 1);
    if ((e = cudaGetLastError()) != cudaSuccess ||
        (e = cudaStreamSynchronize(lgc_stream)) != cudaSuccess)
        return init_fail(LG_ERR_UNSUPPORTED,
                         "cuda: a test kernel failed: %s; check the driver version and "
                         "the -gencode targets in the Makefile",
                         cudaGetErrorString(e));
    lg_cuda_clear_status();
    g_dev = dev;
    g_dev_count = count;
    g_init_status = LG_OK;
    return true;
}

extern "C" lg_status lg_cuda_set_device(int index) {
    if (index < 0)
        return lg_error_set(LG_ERR_INVALID_ARG, "cuda: device index %d is negative", index);
    if (g_dev < 0) { /* before init (a failed init leaves g_dev at -1 too) */
        g_want_dev = index;
        return LG_OK;
    }
    if (index % g_dev_count == g_dev) return LG_OK;
    return lg_error_set(LG_ERR_INVALID_ARG,
                        "cuda: the backend already runs on device %d; lg_cuda_set_device(%d) "
                        "must come before the first use of the cuda backend",
                        g_dev, index);
}

extern "C" int lg_cuda_device(void) { return g_dev; }

/* The table handed out: the plain one, or (LG_CUDA_PROFILE=1 at init) the
 * profiling wrappers around it, chosen once. */
static const lg_backend *g_table = &g_cuda_backend;

extern "C" const lg_backend *lg_backend_cuda(void) {
    std::call_once(g_init_once, [] {
        if (init_cuda() && lgc_profile_env()) g_table = lgc_profiled_table(&g_cuda_backend);
    });
    if (g_init_status != LG_OK) {
        lg_error_set(g_init_status, "%s", g_init_msg);
        return nullptr;
    }
    return g_table;
}
