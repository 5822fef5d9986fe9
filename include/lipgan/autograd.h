/* lipgan/autograd.h - reverse-mode differentiation over the recorded graph.
 *
 * Ops record nodes on the context's tape in creation order (which is a
 * topological order). lg_grad walks the tape backwards from y, calling each
 * node's backward rule; rules are built from differentiable ops, so with
 * create_graph the gradients are graph nodes themselves and can be
 * differentiated again:
 *
 *   lg_tensor *d = D(ctx, xhat);                        // (N,1)
 *   lg_tensor *g;                                       // dD/dxhat
 *   lg_grad(ctx, lg_sum(ctx, d), NULL, 1, &xhat, &g, 1);
 *   lg_tensor *gp = penalty(ctx, g);                    // uses g
 *   lg_grad(ctx, gp, NULL, nparams, params, grads, 0);  // second order
 *
 * An op without a backward rule makes lg_grad fail with LG_ERR_UNSUPPORTED
 * naming the op; it never contributes a silent zero. */
#ifndef LIPGAN_AUTOGRAD_H
#define LIPGAN_AUTOGRAD_H

#include "lipgan/tensor.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Gradients of y with respect to wrt[0..n): grads[i] gets a step tensor of
 * wrt[i]'s shape (zeros if y does not depend on it). dy is the seed with
 * y's shape, or NULL for a 1-element y (seed 1). With create_graph the
 * gradient computation is recorded so the gradients can be differentiated.
 * Without it, the intermediate gradients (which the caller never sees) go
 * back to the step arena as soon as they are passed on, so a backward pass
 * needs little memory beyond the forward's; grads, the forward's tensors
 * and dy stay valid until lg_ctx_reset. */
lg_status lg_grad(lg_ctx *ctx, lg_tensor *y, lg_tensor *dy, int n,
                  lg_tensor *const *wrt, lg_tensor **grads, int create_graph);

#ifdef __cplusplus
}
#endif
#endif
