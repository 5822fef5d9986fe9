/* conv2d, its transpose, and its weight gradient: a set of three ops closed
 * under differentiation (each one's adjoints are the other two). */
#include "core/graph.h"

static lg_status bw_conv2d(lg_ctx *, lg_node *, lg_tensor *, lg_tensor **, const int *);
static lg_status bw_convt(lg_ctx *, lg_node *, lg_tensor *, lg_tensor **, const int *);
static lg_status bw_wgrad(lg_ctx *, lg_node *, lg_tensor *, lg_tensor **, const int *);
static const lg_op_def OP_CONV2D = {"conv2d", bw_conv2d};
static const lg_op_def OP_CONVT = {"conv_transpose2d", bw_convt};
static const lg_op_def OP_WGRAD = {"conv2d_wgrad", bw_wgrad};

static lg_tensor *add_channel_bias(lg_ctx *ctx, lg_tensor *y, lg_tensor *b) {
    if (!b || !y) return y;
    if (b->numel != y->shape[1])
        return lg_ctx_fail(ctx, LG_ERR_SHAPE, "conv: bias has %lld elements for %lld channels",
                           (long long)b->numel, (long long)y->shape[1]);
    int64_t s[4] = {1, y->shape[1], 1, 1};
    return lg__bias_into(ctx, y, lg_reshape(ctx, b, 4, s), 0); /* y is the conv's own */
}

/* A convolution's workspace (*n floats), given back with
 * lg_ctx_scratch_release(ctx, ws, *n) right after its kernel is issued. */
static float *workspace(lg_ctx *ctx, const lg_conv_geom *g, size_t *n) {
    *n = lg_ctx_backend(ctx)->conv_workspace(g);
    if (*n == 0) *n = 1;
    return lg_ctx_scratch(ctx, *n);
}

/* conv2d without bias */
static lg_tensor *conv_raw(lg_ctx *ctx, lg_tensor *x, lg_tensor *w, int stride, int pad) {
    LG_CHECK_IN(ctx, x);
    LG_CHECK_IN(ctx, w);
    char sx[64], sw[64];
    if (x->ndim != 4 || w->ndim != 4 || x->shape[1] != w->shape[1] || stride < 1 || pad < 0)
        return lg_ctx_fail(ctx, LG_ERR_SHAPE, "conv2d: input %s and weight %s (stride %d, pad %d) do not fit",
                           lg_shape_str(x, sx, sizeof sx), lg_shape_str(w, sw, sizeof sw), stride, pad);
    lg_conv_geom g = {(int)x->shape[0], (int)x->shape[1], (int)x->shape[2], (int)x->shape[3],
                      (int)w->shape[0], (int)w->shape[2], (int)w->shape[3], stride, pad, 0, 0};
    g.oh = lg_conv_out_size(g.h, g.kh, stride, pad);
    g.ow = lg_conv_out_size(g.w, g.kw, stride, pad);
    if (g.oh < 1 || g.ow < 1)
        return lg_ctx_fail(ctx, LG_ERR_SHAPE, "conv2d: input %s too small for kernel %s",
                           lg_shape_str(x, sx, sizeof sx), lg_shape_str(w, sw, sizeof sw));
    lg_tensor *y = lg_new4(ctx, g.n, g.oc, g.oh, g.ow);
    size_t nws = 0;
    float *ws = y ? workspace(ctx, &g, &nws) : NULL;
    if (!ws) return NULL;
    lg_ctx_backend(ctx)->conv2d(y->data, x->data, w->data, &g, ws);
    lg_ctx_scratch_release(ctx, ws, nws);
    lg_tensor *src[2] = {x, w};
    lg_node *n = lg_graph_record(ctx, &OP_CONV2D, y, 2, src);
    if (n) {
        n->ip[0] = stride;
        n->ip[1] = pad;
    }
    return y;
}

/* transposed conv without bias: x (N,C,H,W), w (C,OC,KH,KW) */
static lg_tensor *convt_raw(lg_ctx *ctx, lg_tensor *x, lg_tensor *w, int stride, int pad, int oph,
                            int opw) {
    LG_CHECK_IN(ctx, x);
    LG_CHECK_IN(ctx, w);
    char sx[64], sw[64];
    if (x->ndim != 4 || w->ndim != 4 || x->shape[1] != w->shape[0] || stride < 1 || pad < 0 ||
        oph < 0 || oph >= stride || opw < 0 || opw >= stride)
        return lg_ctx_fail(ctx, LG_ERR_SHAPE,
                           "conv_transpose2d: input %s and weight %s (stride %d, pad %d, out_pad %d) do not fit",
                           lg_shape_str(x, sx, sizeof sx), lg_shape_str(w, sw, sizeof sw), stride, pad, oph);
    /* the conv whose backward-data pass this is: input = our output */
    lg_conv_geom g;
    g.n = (int)x->shape[0];
    g.c = (int)w->shape[1];
    g.kh = (int)w->shape[2];
    g.kw = (int)w->shape[3];
    g.h = ((int)x->shape[2] - 1) * stride - 2 * pad + g.kh + oph;
    g.w = ((int)x->shape[3] - 1) * stride - 2 * pad + g.kw + opw;
    g.oc = (int)w->shape[0];
    g.stride = stride;
    g.pad = pad;
    g.oh = (int)x->shape[2];
    g.ow = (int)x->shape[3];
    if (g.h < 1 || g.w < 1 || lg_conv_out_size(g.h, g.kh, stride, pad) != g.oh ||
        lg_conv_out_size(g.w, g.kw, stride, pad) != g.ow)
        return lg_ctx_fail(ctx, LG_ERR_SHAPE, "conv_transpose2d: invalid output size for input %s",
                           lg_shape_str(x, sx, sizeof sx));
    lg_tensor *y = lg_new4(ctx, g.n, g.c, g.h, g.w);
    size_t nws = 0;
    float *ws = y ? workspace(ctx, &g, &nws) : NULL;
    if (!ws) return NULL;
    lg_ctx_backend(ctx)->conv2d_bwd_data(y->data, x->data, w->data, &g, ws);
    lg_ctx_scratch_release(ctx, ws, nws);
    lg_tensor *src[2] = {x, w};
    lg_node *n = lg_graph_record(ctx, &OP_CONVT, y, 2, src);
    if (n) {
        n->ip[0] = stride;
        n->ip[1] = pad;
        n->ip[2] = oph;
        n->ip[3] = opw;
    }
    return y;
}

lg_tensor *lg_conv2d_wgrad(lg_ctx *ctx, lg_tensor *x, lg_tensor *dy, int kh, int kw, int stride, int pad) {
    LG_CHECK_IN(ctx, x);
    LG_CHECK_IN(ctx, dy);
    char sx[64], sd[64];
    lg_conv_geom g = {(int)x->shape[0], (int)x->shape[1], (int)x->shape[2], (int)x->shape[3],
                      (int)dy->shape[1], kh, kw, stride, pad, 0, 0};
    if (x->ndim == 4 && stride >= 1 && pad >= 0) {
        g.oh = lg_conv_out_size(g.h, kh, stride, pad);
        g.ow = lg_conv_out_size(g.w, kw, stride, pad);
    }
    if (x->ndim != 4 || dy->ndim != 4 || dy->shape[0] != x->shape[0] || g.oh != dy->shape[2] ||
        g.ow != dy->shape[3] || g.oh < 1 || g.ow < 1)
        return lg_ctx_fail(ctx, LG_ERR_SHAPE, "conv2d_wgrad: input %s and output gradient %s do not fit",
                           lg_shape_str(x, sx, sizeof sx), lg_shape_str(dy, sd, sizeof sd));
    lg_tensor *dw = lg_new4(ctx, g.oc, g.c, kh, kw);
    size_t nws = 0;
    float *ws = dw ? workspace(ctx, &g, &nws) : NULL;
    if (!ws) return NULL;
    lg_ctx_backend(ctx)->conv2d_bwd_weight(dw->data, x->data, dy->data, &g, ws);
    lg_ctx_scratch_release(ctx, ws, nws);
    lg_tensor *src[2] = {x, dy};
    lg_node *n = lg_graph_record(ctx, &OP_WGRAD, dw, 2, src);
    if (n) {
        n->ip[0] = stride;
        n->ip[1] = pad;
    }
    return dw;
}

/* out_pad that makes conv_transpose2d of a (oh) input come back to h */
static int back_out_pad(int64_t h, int64_t oh, int64_t k, int stride, int pad) {
    return (int)(h - ((oh - 1) * stride - 2 * pad + k));
}

static lg_status bw_conv2d(lg_ctx *ctx, lg_node *n, lg_tensor *g, lg_tensor **gin, const int *need) {
    lg_tensor *x = n->src[0], *w = n->src[1];
    int stride = (int)n->ip[0], pad = (int)n->ip[1];
    if (need[0]) {
        int oph = back_out_pad(x->shape[2], g->shape[2], w->shape[2], stride, pad);
        int opw = back_out_pad(x->shape[3], g->shape[3], w->shape[3], stride, pad);
        gin[0] = convt_raw(ctx, g, w, stride, pad, oph, opw);
    }
    if (need[1]) gin[1] = lg_conv2d_wgrad(ctx, x, g, (int)w->shape[2], (int)w->shape[3], stride, pad);
    return LG_OK;
}

static lg_status bw_convt(lg_ctx *ctx, lg_node *n, lg_tensor *g, lg_tensor **gin, const int *need) {
    lg_tensor *x = n->src[0], *w = n->src[1];
    int stride = (int)n->ip[0], pad = (int)n->ip[1];
    if (need[0]) gin[0] = conv_raw(ctx, g, w, stride, pad);
    /* y = conv^T(x): as a conv, g is the input and x the output gradient */
    if (need[1]) gin[1] = lg_conv2d_wgrad(ctx, g, x, (int)w->shape[2], (int)w->shape[3], stride, pad);
    return LG_OK;
}

static lg_status bw_wgrad(lg_ctx *ctx, lg_node *n, lg_tensor *g, lg_tensor **gin, const int *need) {
    lg_tensor *x = n->src[0], *dy = n->src[1];
    int stride = (int)n->ip[0], pad = (int)n->ip[1];
    /* dw = wgrad(x, dy) is bilinear: d/dx = conv^T(dy, g), d/ddy = conv(x, g) */
    if (need[0]) {
        int oph = back_out_pad(x->shape[2], dy->shape[2], g->shape[2], stride, pad);
        int opw = back_out_pad(x->shape[3], dy->shape[3], g->shape[3], stride, pad);
        gin[0] = convt_raw(ctx, dy, g, stride, pad, oph, opw);
    }
    if (need[1]) gin[1] = conv_raw(ctx, x, g, stride, pad);
    return LG_OK;
}

lg_tensor *lg_conv2d(lg_ctx *ctx, lg_tensor *x, lg_tensor *w, lg_tensor *b, int stride, int pad) {
    return add_channel_bias(ctx, conv_raw(ctx, x, w, stride, pad), b);
}

lg_tensor *lg_conv_transpose2d(lg_ctx *ctx, lg_tensor *x, lg_tensor *w, lg_tensor *b, int stride,
                               int pad, int out_pad) {
    return add_channel_bias(ctx, convt_raw(ctx, x, w, stride, pad, out_pad, out_pad), b);
}
