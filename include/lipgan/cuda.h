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

/* TF32 tensor-core math in cuBLAS gemm/convolutions: off (default, exact
 * fp32) or on (faster, ~1e-3 relative error). May be called before init. */
void lg_cuda_set_tf32(int on);
int lg_cuda_tf32(void);

/* Convolutions run through cuDNN 9 when it can be loaded at run time
 * (dlopen of libcudnn.so.9 from $LG_CUDNN_PATH, a directory or the file,
 * else the loader's search path; lipgan never links it), otherwise as
 * im2col + cuBLAS. Only deterministic algorithms are used, benchmarked once
 * per geometry on first use; FP32 math unless lg_cuda_set_tf32(1).
 * (LG_CUDNN_NONDET=1 in the environment admits nondeterministic ones too:
 * a measurement aid, never the default.)
 * lg_cuda_set_cudnn(0) (or LG_CUDNN=0 in the environment) forces im2col;
 * switch between steps, not between conv_workspace() and the call (the
 * workspace size does not depend on it, so either path fits it).
 * lg_cuda_cudnn() says whether convolutions now use cuDNN (loading it if
 * needed); lg_cuda_cudnn_info() describes the choice in one line, e.g.
 * "cuDNN 9.1.0 (/path/libcudnn.so.9)" or why it fell back to im2col. */
void lg_cuda_set_cudnn(int on);
int lg_cuda_cudnn(void);
const char *lg_cuda_cudnn_info(void);
/* The cuDNN algorithm numbers chosen for a geometry (in the current math
 * mode) for forward, backward data and backward filter: -1 means im2col,
 * -2 not chosen yet. Returns 0 (all -2) when no cuDNN plan exists. */
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
 * Without the variable the plain table is used: no cost. Calls queued while
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

/* Device memory pool: bytes reserved from cudaMalloc and bytes handed out. */
void lg_cuda_pool_stats(size_t *reserved, size_t *in_use);
/* Returns the pool's cached (freed) blocks to the driver. */
void lg_cuda_pool_trim(void);

#ifdef __cplusplus
}
#endif
#endif
