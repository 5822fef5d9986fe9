/* Matrix product and the linear layer. */
#include "core/graph.h"

static lg_status bw_matmul(lg_ctx *ctx, lg_node *n, lg_tensor *g, lg_tensor **gin, const int *need) {
    lg_tensor *a = n->src[0], *b = n->src[1];
    int ta = (int)n->ip[0], tb = (int)n->ip[1];
    /* C = op(A) op(B); each case's adjoints written as products again */
    if (!ta && !tb) {
        if (need[0]) gin[0] = lg_matmul(ctx, g, b, 0, 1);
        if (need[1]) gin[1] = lg_matmul(ctx, a, g, 1, 0);
    } else if (!ta && tb) {
        if (need[0]) gin[0] = lg_matmul(ctx, g, b, 0, 0);
        if (need[1]) gin[1] = lg_matmul(ctx, g, a, 1, 0);
    } else if (ta && !tb) {
        if (need[0]) gin[0] = lg_matmul(ctx, b, g, 0, 1);
        if (need[1]) gin[1] = lg_matmul(ctx, a, g, 0, 0);
    } else {
        if (need[0]) gin[0] = lg_matmul(ctx, b, g, 1, 1);
        if (need[1]) gin[1] = lg_matmul(ctx, g, a, 1, 1);
    }
    return LG_OK;
}
static const lg_op_def OP_MATMUL = {"matmul", bw_matmul};

lg_tensor *lg_matmul(lg_ctx *ctx, lg_tensor *a, lg_tensor *b, int ta, int tb) {
    LG_CHECK_IN(ctx, a);
    LG_CHECK_IN(ctx, b);
    if (a->ndim != 2 || b->ndim != 2)
        return lg_ctx_fail(ctx, LG_ERR_SHAPE, "matmul: operands must be 2-D (got %d-D and %d-D)",
                           a->ndim, b->ndim);
    int64_t m = ta ? a->shape[1] : a->shape[0], k = ta ? a->shape[0] : a->shape[1];
    int64_t kb = tb ? b->shape[1] : b->shape[0], nn = tb ? b->shape[0] : b->shape[1];
    if (k != kb) {
        char sa[64], sb[64];
        return lg_ctx_fail(ctx, LG_ERR_SHAPE, "matmul: inner dims differ: %s%s x %s%s",
                           lg_shape_str(a, sa, sizeof sa), ta ? "^T" : "",
                           lg_shape_str(b, sb, sizeof sb), tb ? "^T" : "");
    }
    lg_tensor *y = lg_new2(ctx, m, nn);
    if (!y) return NULL;
    lg_ctx_backend(ctx)->gemm(ta, tb, (int)m, (int)nn, (int)k, 1.0f, a->data, (int)a->shape[1],
                              b->data, (int)b->shape[1], 0.0f, y->data, (int)nn);
    lg_tensor *src[2] = {a, b};
    lg_node *n = lg_graph_record(ctx, &OP_MATMUL, y, 2, src);
    if (n) {
        n->ip[0] = ta;
        n->ip[1] = tb;
    }
    return y;
}

lg_tensor *lg_linear(lg_ctx *ctx, lg_tensor *x, lg_tensor *w, lg_tensor *b) {
    LG_CHECK_IN(ctx, x);
    LG_CHECK_IN(ctx, w);
    lg_tensor *y = lg_matmul(ctx, x, w, 0, 1);  /* (N,out) */
    if (!b || !y) return y;
    if (b->numel != y->shape[1])
        return lg_ctx_fail(ctx, LG_ERR_SHAPE, "linear: bias has %lld elements, layer has %lld outputs",
                           (long long)b->numel, (long long)y->shape[1]);
    int64_t s[2] = {1, y->shape[1]};
    return lg__bias_into(ctx, y, lg_reshape(ctx, b, 2, s), 0); /* y is the matmul's own */
}
