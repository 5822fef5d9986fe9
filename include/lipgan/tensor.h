/* lipgan/tensor.h - tensors and the execution context.
 *
 * A tensor is a float32, contiguous, row-major array of up to 4 dims
 * (N, C, H, W) living in a backend's memory. Two kinds of memory:
 *  - step tensors come from the context's arena (lg_new, every op result)
 *    and live until lg_ctx_reset(); after the first step of a fixed graph
 *    the arena has reached its high-water mark and further steps make no
 *    system allocation (lg_ctx_sys_allocs() stops growing);
 *  - persistent tensors (parameters, optimizer state, running statistics)
 *    wrap memory the caller owns: lg_tensor_init() over a buffer from
 *    lg_buffer_alloc(), usually one allocation per category.
 *
 * Usage:
 *   lg_ctx *ctx; lg_ctx_create(&ctx, NULL);                 // CPU
 *   lg_tensor *x = lg_new4(ctx, 8, 3, 32, 32);              // (8,3,32,32)
 *   ...ops...; lg_ctx_reset(ctx);                            // end of step
 *   lg_ctx_free(ctx);
 */
#ifndef LIPGAN_TENSOR_H
#define LIPGAN_TENSOR_H

#include <stddef.h>
#include <stdint.h>

#include "lipgan/backend.h"
#include "lipgan/status.h"

#ifdef __cplusplus
extern "C" {
#endif

#define LG_MAX_DIMS 4

typedef struct lg_node lg_node;
typedef struct lg_ctx lg_ctx;

typedef struct lg_tensor {
    int ndim;                     /* 1..4 */
    int64_t shape[LG_MAX_DIMS];   /* shape[i], i < ndim; entries past ndim are 1 */
    int64_t numel;                /* product of shape */
    float *data;                  /* (numel) in the owning backend's memory */
    lg_node *node;                /* op that produced it; NULL for leaves */
    int requires_grad;            /* leaf wanting a gradient, or result of an op on one */
    const char *name;             /* optional, for messages */
    /* engine-private, valid during lg_grad() only */
    struct lg_tensor *gacc_;      /* gradient accumulated so far */
    int mark_;
} lg_tensor;

/* ---- context ---- */

/* Creates a context on backend be (NULL = CPU). */
lg_status lg_ctx_create(lg_ctx **out, const lg_backend *be);
void lg_ctx_free(lg_ctx *ctx);
/* Ends a step: forgets every step tensor and the recorded graph, keeping
 * the memory for the next step (consolidated into one block of what the
 * step used plus 1/8). */
void lg_ctx_reset(lg_ctx *ctx);
const lg_backend *lg_ctx_backend(const lg_ctx *ctx);
/* Sticky status of the ops since the last reset: an op that fails (bad
 * shapes, out of memory, NULL input) records a message, returns NULL, and
 * every later op given NULL returns NULL, so a whole forward pass can be
 * checked once at the end. */
lg_status lg_ctx_status(const lg_ctx *ctx);
/* Records a failure on ctx (and the thread's message); returns NULL. */
lg_tensor *lg_ctx_fail(lg_ctx *ctx, lg_status s, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* Enables/disables graph recording (like torch.no_grad); returns the old value. */
int lg_ctx_set_grad_enabled(lg_ctx *ctx, int enabled);
int lg_ctx_grad_enabled(const lg_ctx *ctx);
/* Number of system allocations the context has made (tests use it to show
 * that a steady-state step allocates nothing). */
size_t lg_ctx_sys_allocs(const lg_ctx *ctx);
/* Bytes currently reserved by the step arena. */
size_t lg_ctx_arena_bytes(const lg_ctx *ctx);
/* Step scratch memory of n floats on the backend (valid until reset). */
float *lg_ctx_scratch(lg_ctx *ctx, size_t n);

/* Batch norm over the whole batch of several processes (synchronized batch
 * norm, as PyTorch's SyncBatchNorm): with a gatherer set, lg_batchnorm in
 * training mode combines every process's per-channel statistics (and its
 * backward every process's gradient sums), so each process normalizes by
 * the statistics of the whole batch. gather(mine (n), all (world, n), n,
 * user) must hand every process the same `all`, in rank order (e.g.
 * MPI_Allgather; lg_dist_allgather). Every process must then run the same
 * training-mode batch norms in the same order. world = 1 with a copying
 * gatherer runs the same arithmetic in one process. fn NULL turns it off.
 * Needs a backend with the bn_stats/bn_bwd_sums/bn_bwd_apply entries. */
typedef lg_status (*lg_gather_fn)(const double *mine, double *all, size_t n, void *user);
void lg_ctx_set_bn_sync(lg_ctx *ctx, lg_gather_fn fn, int world, void *user);

/* ---- step tensors (valid until lg_ctx_reset) ---- */

/* Uninitialized tensor of the given shape; NULL (and sticky error) on failure. */
lg_tensor *lg_new(lg_ctx *ctx, int ndim, const int64_t *shape);
lg_tensor *lg_new1(lg_ctx *ctx, int64_t a);
lg_tensor *lg_new2(lg_ctx *ctx, int64_t a, int64_t b);
lg_tensor *lg_new4(lg_ctx *ctx, int64_t n, int64_t c, int64_t h, int64_t w);
lg_tensor *lg_full(lg_ctx *ctx, int ndim, const int64_t *shape, float value);
lg_tensor *lg_zeros_like(lg_ctx *ctx, const lg_tensor *x);
/* A step tensor holding a copy of host data (n = product of shape floats). */
lg_tensor *lg_from_host(lg_ctx *ctx, const float *host, int ndim, const int64_t *shape);
/* A step tensor sharing x's data with another shape of equal numel; not
 * recorded in the graph (use lg_reshape for a differentiable reshape). */
lg_tensor *lg_alias(lg_ctx *ctx, const lg_tensor *x, int ndim, const int64_t *shape);
/* Rows [start, start+len) of dim 0 as a view (not differentiable). */
lg_tensor *lg_slice0(lg_ctx *ctx, const lg_tensor *x, int64_t start, int64_t len);
/* A copy of x that is a graph leaf (no history), optionally requiring grad. */
lg_tensor *lg_detach(lg_ctx *ctx, const lg_tensor *x, int requires_grad);

/* Copies a tensor's data to host memory (numel floats). */
lg_status lg_to_host(lg_ctx *ctx, const lg_tensor *x, float *host);
/* The single value of a 1-element tensor, copied to the host. */
float lg_item(lg_ctx *ctx, const lg_tensor *x);

/* ---- persistent tensors ---- */

/* Fills a tensor header over caller-owned memory (backend memory). The
 * tensor is a leaf; set t->requires_grad for parameters. */
void lg_tensor_init(lg_tensor *t, float *data, int ndim, const int64_t *shape);
/* nfloats of backend memory (64-byte aligned), zeroed; NULL on failure
 * with the message set. Free with lg_buffer_free. */
float *lg_buffer_alloc(const lg_backend *be, size_t nfloats);
void lg_buffer_free(const lg_backend *be, float *p);

/* ---- shape helpers ---- */
int lg_same_shape(const lg_tensor *a, const lg_tensor *b);
/* "(8,3,32,32)" into buf; returns buf */
const char *lg_shape_str(const lg_tensor *t, char *buf, size_t cap);
/* The shape right-aligned into 4 dims, left-padded with 1. */
void lg_shape4(const lg_tensor *t, int64_t out[4]);

#ifdef __cplusplus
}
#endif
#endif
