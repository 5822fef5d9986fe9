/* lipgan/cuda.h - extras of the CUDA backend (src/backend/cuda).
 *
 * These functions exist only in builds with CUDA (the Makefile defines
 * LG_HAVE_CUDA when it finds nvcc); guard calls with #ifdef LG_HAVE_CUDA.
 * The backend table itself comes from lg_backend_cuda() (backend.h).
 *
 * Execution model: every kernel, copy and cuBLAS call of the backend is
 * queued on one CUDA stream (lg_cuda_stream()), so they run in call order;
 * only sync() and download() wait for the host. The table's functions
 * return void, so a failing CUDA call is recorded in a sticky status: check
 * lg_cuda_last_status() after sync() (e.g. once per training step).
 *
 * Usage:
 *   const lg_backend *be = lg_backend_cuda();
 *   if (!be) { fprintf(stderr, "%s\n", lg_error_msg()); ... }
 *   ...kernels...; be->sync();
 *   if (lg_cuda_last_status() != LG_OK) { fprintf(stderr, "%s\n", lg_error_msg()); ... }
 */
#ifndef LIPGAN_CUDA_H
#define LIPGAN_CUDA_H

#include <stddef.h>

#include "lipgan/status.h"

#ifdef __cplusplus
extern "C" {
#endif

/* The cudaStream_t (as void *) all backend work is queued on, for CUDA-Graph
 * capture (cudaStreamBeginCapture on it). NULL until lg_backend_cuda()
 * succeeded. The stream is non-blocking: it does not wait for the legacy
 * default stream. */
void *lg_cuda_stream(void);

/* Which GPU the backend runs on: device index modulo the number of visible
 * ones (CUDA_VISIBLE_DEVICES decides which are visible). Without it, the
 * device current in the thread at the first use (0 unless the program
 * called cudaSetDevice). Call it
 * before the backend's first use (lg_backend_cuda, lg_backend_get("cuda"));
 * afterwards it is LG_ERR_INVALID_ARG unless it names the device already in
 * use. The device is made current in the thread that first uses the
 * backend: another thread that calls lipgan on cuda with a device other
 * than 0 calls cudaSetDevice(lg_cuda_device()) first. lg_cuda_device():
 * the device in use, -1 before a successful init. The trainer sets the
 * config's cuda.device, plus i for process i of a machine under dist: mpi. */
lg_status lg_cuda_set_device(int index);
int lg_cuda_device(void);

/* Matrix-math precision of gemm and convolutions; storage, master weights,
 * reductions and everything else stay fp32:
 *   LG_CUDA_FP32 (default, the reference): exact fp32 FMA math, no tensor
 *     cores (cuDNN runs with CUDNN_FMA_MATH, cuBLAS with its default math).
 *   LG_CUDA_TF32: tensor cores on fp32 data (~1e-3 relative error).
 *   LG_CUDA_BF16: operands rounded to bf16, products summed in fp32
 *     (cuBLAS CUBLAS_COMPUTE_32F_FAST_16BF; cuDNN on bf16 copies of the
 *     operands, cast back to fp32), ~1e-2 relative error.
 * May be called before init; switch between steps. LG_ERR_INVALID_ARG for
 * any other value. lg_cuda_set_tf32(on) is set_precision(on ? TF32 : FP32). */
enum { LG_CUDA_FP32 = 0, LG_CUDA_TF32 = 1, LG_CUDA_BF16 = 2 };
lg_status lg_cuda_set_precision(int precision);
int lg_cuda_precision(void);
void lg_cuda_set_tf32(int on);
int lg_cuda_tf32(void);

/* Deterministic convolutions (default 1): only cuDNN algorithms whose
 * result does not depend on the order of atomic adds, so two runs give
 * bitwise-equal results. 0 also admits the others (what PyTorch allows by
 * default with torch.backends.cudnn.deterministic = False); the initial
 * value is 0 when LG_CUDNN_NONDET=1 is in the environment. Switch between
 * steps; plans are kept per setting. */
void lg_cuda_set_deterministic(int on);
int lg_cuda_deterministic(void);
/* How algorithms are chosen: 1 (default) by timing every candidate once
 * per geometry (cudnnFind, like torch.backends.cudnn.benchmark): fastest,
 * but two processes can time differently and choose differently, so even
 * deterministic results are bitwise reproducible only within a process;
 * 0: cuDNN's heuristic ranking alone, the same choice in every process.
 * Until it is called, LG_CUDNN_BENCHMARK=0 in the environment means 0. */
void lg_cuda_set_benchmark(int on);

/* Largest workspace a convolution algorithm may use (default 1 GiB, or
 * LG_CUDNN_WS_MB megabytes from the environment). An algorithm needing
 * more than the caller's workspace (conv_workspace()) runs in one
 * backend-owned buffer grown to the largest need; it never shrinks while
 * the backend lives, so captured CUDA graphs stay valid. */
void lg_cuda_set_conv_workspace_limit(size_t bytes);

/* Convolutions run through cuDNN 9 when it can be loaded at run time
 * (dlopen of libcudnn.so.9 from $LG_CUDNN_PATH, a directory or the file,
 * else the loader's search path; lipgan never links it), otherwise as
 * im2col + cuBLAS. Algorithms are benchmarked once per geometry, precision
 * and determinism setting on first use (LG_CUDNN_VERBOSE=1 prints each
 * benchmark table to stderr).
 * lg_cuda_set_cudnn(0) (or LG_CUDNN=0 in the environment) forces im2col;
 * switch between steps, not between conv_workspace() and the call (the
 * workspace size does not depend on it, so either path fits it).
 * lg_cuda_cudnn() says whether convolutions now use cuDNN (loading it if
 * needed); lg_cuda_cudnn_info() describes the choice in one line, e.g.
 * "cuDNN 9.1.0 (/path/libcudnn.so.9)" or why it fell back to im2col; with
 * "N fallback(s), the last: ..." when a cuDNN call or benchmark failed or a
 * Winograd pass disagreed with im2col (those passes then avoid it). */
void lg_cuda_set_cudnn(int on);
int lg_cuda_cudnn(void);
const char *lg_cuda_cudnn_info(void);
/* The cuDNN algorithm numbers chosen for a geometry (in the current math
 * mode) for forward, backward data and backward filter: -1 means im2col,
 * -3 / -4 lipgan's Winograd F(2x2,3x3) / F(4x4,3x3) (3x3 stride-1 pad-1
 * only; taken when timed faster and equal to im2col within 1e-9 nMSE in
 * fp32, 1e-4 in TF32; LG_CUDA_WINO=0 never, =force / force4 that variant
 * wherever it applies), -2 not chosen yet. Returns 0 (all -2) when no cuDNN
 * plan exists. */
struct lg_conv_geom;
int lg_cuda_conv_algos(const struct lg_conv_geom *g, int algos[3]);

/* First CUDA/cuBLAS failure since the last clear (LG_OK if none). When not
 * LG_OK it also re-records the failure's message for lg_error_msg(). An
 * asynchronous kernel fault is only seen after sync()/download(). */
lg_status lg_cuda_last_status(void);
void lg_cuda_clear_status(void);

/* Per-call GPU timing, opt-in: with LG_CUDA_PROFILE=1 in the environment
 * when the backend initializes, every table entry that queues GPU work is
 * timed with a pair of CUDA events and accumulated per entry ("bn_train")
 * and per geometry class (its shapes, op, convolution algorithm), with the
 * call's byte floor at 3.0 TB/s (or TFLOP/s for gemm and convolutions).
 * Without the variable the plain table is used: no cost. LG_CUDA_PROFILE=sync
 * waits for the stream before each timed call, so that gaps where the GPU
 * waits for the host are not charged to calls (slower; per-call times). Calls queued while
 * lg_cuda_stream() is being captured into a CUDA graph are not timed
 * (reading events would break the capture), only counted; graph replays
 * are not timed. Event times include gaps where the GPU waits for the host,
 * so profile steps that are GPU-bound (or read them as upper bounds).
 * A report is printed to stderr at exit when rows were added since the
 * last report.
 *   lg_cuda_profile_enabled(): 1 when profiling is on.
 *   lg_cuda_profile_reset():   waits for the stream, zeroes all rows.
 *   lg_cuda_profile_report(steps): waits for the stream and returns the
 *     report (a table by entry, then by entry and geometry, slowest first);
 *     steps >= 1 divides calls and times by it (per training step). The
 *     string is owned by the library, valid until the next call. */
int lg_cuda_profile_enabled(void);
void lg_cuda_profile_reset(void);
const char *lg_cuda_profile_report(int steps);

/* CUDA graphs of backend work: everything queued between capture_begin and
 * capture_end is recorded (not run) and replayed by graph_launch with the
 * same buffers and kernel arguments. The caller keeps every buffer the
 * recorded work touches alive and in place, and queues nothing that
 * synchronizes or allocates while capturing. capture_end returns
 * LG_ERR_BACKEND (graph NULL, the capture's failure cleared from the
 * sticky status, message set) when the capture broke. */
typedef struct lg_cuda_graph lg_cuda_graph;
lg_status lg_cuda_capture_begin(void);
lg_status lg_cuda_capture_end(lg_cuda_graph **out);
lg_status lg_cuda_graph_launch(lg_cuda_graph *g);
void lg_cuda_graph_free(lg_cuda_graph *g);
/* Nodes in the graph (kernels, copies, ...). */
size_t lg_cuda_graph_nodes(const lg_cuda_graph *g);

/* Device memory pool: bytes reserved from cudaMalloc and bytes handed out. */
void lg_cuda_pool_stats(size_t *reserved, size_t *in_use);
/* Returns the pool's cached (freed) blocks to the driver. */
void lg_cuda_pool_trim(void);

#ifdef __cplusplus
}
#endif
#endif
