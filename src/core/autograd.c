/* Reverse-mode differentiation over the tape (see lipgan/autograd.h). */
#include "lipgan/autograd.h"

#include <string.h>

#include "core/graph.h"

/* Node marks during one lg_grad call (bits of node->mark_). */
enum { MARK_DEPENDS = 1, MARK_REACHED = 2 };
/* Tensor marks: the tensor is one of the wrt tensors. */
enum { TMARK_WRT = 1 };

/* Adds g into t's gradient slot. Slots hold references for the release
 * tracking (graph.h): g gains one, a replaced sum loses one. */
static lg_status accumulate(lg_ctx *ctx, lg_tensor *t, lg_tensor *g) {
    if (!g) return LG_OK;
    if (!lg_same_shape(t, g)) {
        char a[64], b[64];
        return lg_error_set(LG_ERR_SHAPE, "autograd: gradient %s does not match tensor %s%s%s",
                            lg_shape_str(g, a, sizeof a), lg_shape_str(t, b, sizeof b),
                            t->node ? " produced by " : "", t->node ? t->node->op->name : "");
    }
    if (!t->gacc_) {
        t->gacc_ = g;
        lg_ctx_track_ref(ctx, g, 1);
    } else {
        lg_tensor *old = t->gacc_;
        t->gacc_ = lg_add(ctx, old, g);
        if (!t->gacc_) return lg_ctx_status(ctx);
        lg_ctx_track_ref(ctx, t->gacc_, 1);
        lg_ctx_track_ref(ctx, old, -1);
    }
    return LG_OK;
}

lg_status lg_grad(lg_ctx *ctx, lg_tensor *y, lg_tensor *dy, int n,
                  lg_tensor *const *wrt, lg_tensor **grads, int create_graph) {
    if (!y) return lg_error_set(LG_ERR_INVALID_ARG, "lg_grad: y is NULL (an earlier op failed: %s)",
                                lg_error_msg());
    if (lg_ctx_status(ctx) != LG_OK) return lg_ctx_status(ctx);
    for (int i = 0; i < n; i++) {
        grads[i] = NULL;
        if (!wrt[i]) return lg_error_set(LG_ERR_INVALID_ARG, "lg_grad: wrt[%d] is NULL", i);
    }
    if (!dy && y->numel != 1)
        return lg_error_set(LG_ERR_SHAPE, "lg_grad: y has %lld elements; pass a seed dy",
                            (long long)y->numel);
    if (dy && !lg_same_shape(dy, y))
        return lg_error_set(LG_ERR_SHAPE, "lg_grad: seed shape differs from y");

    lg_node *tail = lg_ctx_tape_tail(ctx);
    for (int i = 0; i < n; i++) wrt[i]->mark_ |= TMARK_WRT;

    /* Forward sweep (oldest first) marking nodes that depend on a wrt
     * tensor. The tape is a backward-linked list, so collect it first. */
    int64_t count = tail ? tail->id + 1 : 0;
    lg_node **order = NULL;
    if (count > 0) {
        order = lg_ctx_host_alloc(ctx, (size_t)count * sizeof(lg_node *));
        if (!order) return lg_ctx_status(ctx);
        for (lg_node *nd = tail; nd; nd = nd->prev) {
            order[nd->id] = nd;
            nd->mark_ = 0;
        }
    }
    for (int64_t k = 0; k < count; k++) {
        lg_node *nd = order[k];
        for (int i = 0; i < nd->n_src; i++) {
            lg_tensor *s = nd->src[i];
            if (!s) continue;
            if ((s->mark_ & TMARK_WRT) || (s->node && (s->node->mark_ & MARK_DEPENDS)))
                nd->mark_ |= MARK_DEPENDS;
        }
    }

    int old = lg_ctx_set_grad_enabled(ctx, create_graph);
    /* Without create_graph nothing outside this call can see a gradient
     * before it returns, so each one goes back to the arena once passed on
     * (the SN-GAN G update: 2.8 GB of backward tensors, most dead early).
     * With create_graph the new nodes keep them. */
    int track = !create_graph && lg_ctx_track_begin(ctx);
    lg_status st = LG_OK;
    lg_tensor *seed = dy;
    if (!seed) {
        seed = lg_full(ctx, y->ndim, y->shape, 1.0f);
        if (!seed) { st = lg_ctx_status(ctx); goto done; }
    }
    y->gacc_ = seed;
    lg_ctx_track_ref(ctx, seed, 1);
    if (y->node) y->node->mark_ |= MARK_REACHED;

    /* Backward sweep, newest first; nodes appended by the rules themselves
     * (create_graph) are newer than `tail` and are not visited. */
    for (int64_t k = count; k > 0; k--) {
        lg_node *nd = order[k - 1];
        if (!(nd->mark_ & MARK_REACHED) || !(nd->mark_ & MARK_DEPENDS)) continue;
        lg_tensor *gout = nd->out->gacc_;
        if (!gout) continue;
        int need[LG_NODE_MAX_SRC] = {0};
        int any = 0;
        for (int i = 0; i < nd->n_src; i++) {
            lg_tensor *s = nd->src[i];
            if (s && ((s->mark_ & TMARK_WRT) || (s->node && (s->node->mark_ & MARK_DEPENDS)))) {
                need[i] = 1;
                any = 1;
            }
        }
        if (!any) continue;
        if (!nd->op->backward) {
            st = lg_error_set(LG_ERR_UNSUPPORTED,
                              "autograd: op '%s' has no backward rule (is it being differentiated "
                              "twice? only first derivatives exist for it)", nd->op->name);
            goto done;
        }
        lg_tensor *gin[LG_NODE_MAX_SRC] = {0};
        st = nd->op->backward(ctx, nd, gout, gin, need);
        if (st == LG_OK && lg_ctx_status(ctx) != LG_OK) st = lg_ctx_status(ctx);
        if (st != LG_OK) goto done;
        for (int i = 0; i < nd->n_src; i++) {
            if (!need[i] || !gin[i]) continue;
            lg_tensor *s = nd->src[i];
            st = accumulate(ctx, s, gin[i]);
            if (st != LG_OK) goto done;
            if (s->node) s->node->mark_ |= MARK_REACHED;
        }
        if (track) {
            /* every consumer of nd->out is newer, so its gradient is complete
             * and now passed on (unless the caller asked for it) */
            if (!(nd->out->mark_ & TMARK_WRT)) {
                nd->out->gacc_ = NULL;
                lg_ctx_track_ref(ctx, gout, -1);
            }
            lg_ctx_track_sweep(ctx);
        }
    }

    for (int i = 0; i < n; i++) {
        lg_tensor *g = wrt[i]->gacc_;
        if (!g) g = lg_zeros_like(ctx, wrt[i]);
        grads[i] = g;
        if (!g) { st = lg_ctx_status(ctx); goto done; }
    }

done:
    if (track) lg_ctx_track_end(ctx);
    lg_ctx_set_grad_enabled(ctx, old);
    /* clear per-call state */
    y->gacc_ = NULL;
    for (int64_t k = 0; k < count; k++) {
        lg_node *nd = order[k];
        nd->out->gacc_ = NULL;
        for (int i = 0; i < nd->n_src; i++)
            if (nd->src[i]) nd->src[i]->gacc_ = NULL;
        nd->mark_ = 0;
    }
    for (int i = 0; i < n; i++) {
        wrt[i]->mark_ &= ~TMARK_WRT;
        wrt[i]->gacc_ = NULL;
    }
    if (st != LG_OK && lg_ctx_status(ctx) == LG_OK) lg_ctx_fail(ctx, st, "%s", lg_error_msg());
    return st;
}
