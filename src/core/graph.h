/* Internal: graph nodes, op definitions and helpers shared by the files in src/ops.
 *
 * An op implementation:
 *   1. validates shapes (lg_ctx_fail on mismatch), allocates its output with
 *      lg_new, runs the backend kernel;
 *   2. calls lg_graph_record() which, when recording is on and an input
 *      requires grad, appends a node holding the inputs and op parameters;
 *   3. has a backward rule that computes input gradients *with ops*, so the
 *      rule is itself recorded when lg_grad runs with create_graph. */
#ifndef LIPGAN_SRC_CORE_GRAPH_H
#define LIPGAN_SRC_CORE_GRAPH_H

#include "lipgan/autograd.h"
#include "lipgan/ops.h"

#define LG_NODE_MAX_SRC 4

/* Backward rule: given the node and the gradient of its output, set gin[i]
 * for each input i with need[i] != 0 (leave NULL for "no contribution",
 * which is only correct when the derivative is mathematically zero). */
typedef lg_status (*lg_backward_fn)(lg_ctx *ctx, lg_node *node, lg_tensor *gout,
                                    lg_tensor **gin, const int *need);

typedef struct lg_op_def {
    const char *name;
    lg_backward_fn backward;  /* NULL: no backward rule (lg_grad fails) */
} lg_op_def;

struct lg_node {
    const lg_op_def *op;
    int n_src;
    lg_tensor *src[LG_NODE_MAX_SRC];  /* inputs (may be NULL for unused slots) */
    lg_tensor *out;
    lg_tensor *aux[2];                /* extra tensors kept by the forward */
    int64_t ip[8];                    /* integer parameters (stride, pad, ...) */
    float fp[4];                      /* float parameters (alpha, scale, ...) */
    void *ptr;                        /* op-specific pointer (e.g. bn state) */
    lg_node *prev;                    /* tape order */
    int64_t id;
    int mark_;                        /* engine-private */
};

/* Appends a node for out = op(src...) if recording is on and any src
 * requires grad (then out->requires_grad = 1, out->node = node). Returns
 * the node or NULL when nothing was recorded (callers may still fill
 * node fields only when non-NULL). */
lg_node *lg_graph_record(lg_ctx *ctx, const lg_op_def *op, lg_tensor *out,
                         int n_src, lg_tensor *const *src);

/* Helpers for op implementations. */
#define LG_CHECK_IN(ctx, t)                                                    \
    do {                                                                       \
        if (!(t)) return NULL;                                                 \
    } while (0)

/* y + b, or relu(y + b), written over y's memory and recorded as lg_add /
 * lg_add_relu; b broadcasts to y's shape. For a layer's bias on the output
 * its op has just made: y's own value is gone afterwards, which is right
 * only while nothing reads it (the conv, transposed conv and matmul rules
 * read their inputs, not their output; add_relu's rule reads its output).
 * Saves one tensor of the layer's output size per layer. */
lg_tensor *lg__bias_into(lg_ctx *ctx, lg_tensor *y, lg_tensor *b, int relu);

/* relu(x) written over x's memory, recorded as lg_relu: its rule's mask
 * x > 0 reads the same from relu(x). For an output nothing else reads, as
 * batch norm's (its rule reads its input). */
lg_tensor *lg__relu_into(lg_ctx *ctx, lg_tensor *x);

/* Scratch floats on the backend, valid until the context is reset. */
float *lg_ctx_scratch(lg_ctx *ctx, size_t n);

/* Gives back n floats of lg_ctx_scratch once the kernels that use them
 * are issued: the backend runs kernels in order, so a later allocation may
 * reuse the memory (a convolution's workspace: up to hundreds of MB per
 * call on the CPU, which the step used to keep to its end). */
void lg_ctx_scratch_release(lg_ctx *ctx, float *p, size_t n);

/* Host memory valid until the context is reset. */
void *lg_ctx_host_alloc(lg_ctx *ctx, size_t bytes);

/* The batch-norm gatherer of lg_ctx_set_bn_sync, or NULL when unset. */
typedef struct lg_bn_sync {
    lg_gather_fn fn;
    int world;
    void *user;
} lg_bn_sync;
const lg_bn_sync *lg_ctx_bn_sync(const lg_ctx *ctx);

/* Release tracking, for lg_grad without create_graph (and for a forward
 * without a graph whose output alone is read again, as the trainer's fake
 * batch for D): between begin and
 * end every tensor lg_new makes is recorded; lg_ctx_track_ref counts the
 * gradient slots that hold a tensor (any view of a block counts for the
 * block), and lg_ctx_track_sweep gives the arena back every recorded block
 * no slot holds, so a rule's temporaries and the gradients already passed
 * on are reused by the rest of the step. begin returns 0 (and tracks
 * nothing new) when tracking is already on. Nothing else may keep such a
 * tensor: scratch (lg_ctx_scratch) and forward tensors are never tracked. */
int lg_ctx_track_begin(lg_ctx *ctx);
void lg_ctx_track_ref(lg_ctx *ctx, const lg_tensor *t, int delta);
void lg_ctx_track_sweep(lg_ctx *ctx);
void lg_ctx_track_end(lg_ctx *ctx);

/* The tape tail (most recent node), for the autograd walk. */
lg_node *lg_ctx_tape_tail(lg_ctx *ctx);

#endif
