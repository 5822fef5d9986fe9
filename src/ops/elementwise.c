/* Elementwise ops, broadcasting, reductions and reshapes. */
#include <string.h>

#include "core/graph.h"

#define BE(ctx) lg_ctx_backend(ctx)

/* ---- shape helpers ---- */

static void shape4_of(int ndim, const int64_t *shape, int64_t out[4]) {
    int pad = 4 - ndim;
    for (int i = 0; i < 4; i++) out[i] = i < pad ? 1 : shape[i - pad];
}

/* Broadcast shape of a and b (right-aligned); 0 if incompatible. */
static int broadcast_shape(const lg_tensor *a, const lg_tensor *b, int *ndim, int64_t shape[4]) {
    int64_t a4[4], b4[4];
    lg_shape4(a, a4);
    lg_shape4(b, b4);
    *ndim = a->ndim > b->ndim ? a->ndim : b->ndim;
    int64_t y4[4];
    for (int i = 0; i < 4; i++) {
        if (a4[i] != b4[i] && a4[i] != 1 && b4[i] != 1) return 0;
        y4[i] = a4[i] > b4[i] ? a4[i] : b4[i];
    }
    for (int i = 0; i < *ndim; i++) shape[i] = y4[4 - *ndim + i];
    return 1;
}

/* ---- unary ops: one kernel, one backward rule each ---- */

/* over: y is written over x's memory (a view of it), see lg__relu_into */
static lg_tensor *unary_op(lg_ctx *ctx, const lg_op_def *def, lg_unary op, lg_tensor *x,
                           float alpha, int over) {
    LG_CHECK_IN(ctx, x);
    lg_tensor *y = over ? lg_alias(ctx, x, x->ndim, x->shape) : lg_new(ctx, x->ndim, x->shape);
    if (!y) return NULL;
    BE(ctx)->unary(op, y->data, x->data, (size_t)x->numel, alpha);
    lg_node *n = lg_graph_record(ctx, def, y, 1, &x);
    if (n) n->fp[0] = alpha;
    return y;
}

static lg_tensor *unary(lg_ctx *ctx, const lg_op_def *def, lg_unary op, lg_tensor *x,
                        float alpha) {
    return unary_op(ctx, def, op, x, alpha, 0);
}

/* A non-recorded tensor computed from x: used for derivative factors whose
 * own derivative is zero (step masks). */
static lg_tensor *constant_unary(lg_ctx *ctx, lg_unary op, lg_tensor *x, float alpha) {
    lg_tensor *y = lg_new(ctx, x->ndim, x->shape);
    if (!y) return NULL;
    BE(ctx)->unary(op, y->data, x->data, (size_t)x->numel, alpha);
    return y;
}

static lg_status bw_scale(lg_ctx *ctx, lg_node *n, lg_tensor *g, lg_tensor **gin, const int *need) {
    gin[0] = lg_scale(ctx, g, n->fp[0]);
    return LG_OK;
}
static lg_status bw_identity(lg_ctx *ctx, lg_node *n, lg_tensor *g, lg_tensor **gin, const int *need) {
    gin[0] = g;
    return LG_OK;
}
static lg_status bw_neg(lg_ctx *ctx, lg_node *n, lg_tensor *g, lg_tensor **gin, const int *need) {
    gin[0] = lg_neg(ctx, g);
    return LG_OK;
}
static lg_status bw_square(lg_ctx *ctx, lg_node *n, lg_tensor *g, lg_tensor **gin, const int *need) {
    gin[0] = lg_mul(ctx, g, lg_scale(ctx, n->src[0], 2.0f));
    return LG_OK;
}
static lg_status bw_sqrt(lg_ctx *ctx, lg_node *n, lg_tensor *g, lg_tensor **gin, const int *need) {
    gin[0] = lg_div(ctx, g, lg_scale(ctx, n->out, 2.0f));  /* d sqrt(x) = 1/(2 sqrt(x)) */
    return LG_OK;
}
static lg_tensor *relu_mask(lg_ctx *ctx, lg_tensor *g, lg_tensor *ref);
static lg_status bw_relu(lg_ctx *ctx, lg_node *n, lg_tensor *g, lg_tensor **gin, const int *need) {
    if (n->fp[0] == 0.0f) { /* ReLU: one fused pass, g * (x > 0) */
        gin[0] = relu_mask(ctx, g, n->src[0]);
        return LG_OK;
    }
    /* slope mask (1 or alpha); its derivative is zero almost everywhere */
    gin[0] = lg_mul(ctx, g, constant_unary(ctx, LG_U_STEP, n->src[0], n->fp[0]));
    return LG_OK;
}
static lg_status bw_tanh(lg_ctx *ctx, lg_node *n, lg_tensor *g, lg_tensor **gin, const int *need) {
    lg_tensor *y = n->out;  /* 1 - y^2 */
    gin[0] = lg_mul(ctx, g, lg_add_scalar(ctx, lg_neg(ctx, lg_square(ctx, y)), 1.0f));
    return LG_OK;
}
static lg_status bw_sigmoid(lg_ctx *ctx, lg_node *n, lg_tensor *g, lg_tensor **gin, const int *need) {
    lg_tensor *y = n->out;  /* y (1 - y) */
    gin[0] = lg_mul(ctx, g, lg_sub(ctx, y, lg_square(ctx, y)));
    return LG_OK;
}
static lg_status bw_softplus(lg_ctx *ctx, lg_node *n, lg_tensor *g, lg_tensor **gin, const int *need) {
    gin[0] = lg_mul(ctx, g, lg_sigmoid(ctx, n->src[0]));
    return LG_OK;
}

static const lg_op_def OP_SCALE = {"scale", bw_scale};
static const lg_op_def OP_ADD_SCALAR = {"add_scalar", bw_identity};
static const lg_op_def OP_NEG = {"neg", bw_neg};
static const lg_op_def OP_SQUARE = {"square", bw_square};
static const lg_op_def OP_SQRT = {"sqrt", bw_sqrt};
static const lg_op_def OP_RELU = {"relu", bw_relu};
static const lg_op_def OP_LRELU = {"leaky_relu", bw_relu};
static const lg_op_def OP_TANH = {"tanh", bw_tanh};
static const lg_op_def OP_SIGMOID = {"sigmoid", bw_sigmoid};
static const lg_op_def OP_SOFTPLUS = {"softplus", bw_softplus};

lg_tensor *lg_scale(lg_ctx *ctx, lg_tensor *x, float c) {
    return unary(ctx, &OP_SCALE, LG_U_SCALE, x, c);
}
lg_tensor *lg_add_scalar(lg_ctx *ctx, lg_tensor *x, float c) {
    return unary(ctx, &OP_ADD_SCALAR, LG_U_ADD_SCALAR, x, c);
}
lg_tensor *lg_neg(lg_ctx *ctx, lg_tensor *x) { return unary(ctx, &OP_NEG, LG_U_NEG, x, 0.0f); }
lg_tensor *lg_square(lg_ctx *ctx, lg_tensor *x) {
    return unary(ctx, &OP_SQUARE, LG_U_SQUARE, x, 0.0f);
}
lg_tensor *lg_sqrt(lg_ctx *ctx, lg_tensor *x) { return unary(ctx, &OP_SQRT, LG_U_SQRT, x, 0.0f); }
lg_tensor *lg_relu(lg_ctx *ctx, lg_tensor *x) { return unary(ctx, &OP_RELU, LG_U_RELU, x, 0.0f); }
lg_tensor *lg__relu_into(lg_ctx *ctx, lg_tensor *x) {
    return unary_op(ctx, &OP_RELU, LG_U_RELU, x, 0.0f, 1);
}
lg_tensor *lg_leaky_relu(lg_ctx *ctx, lg_tensor *x, float alpha) {
    return unary(ctx, &OP_LRELU, LG_U_LRELU, x, alpha);
}
lg_tensor *lg_tanh(lg_ctx *ctx, lg_tensor *x) { return unary(ctx, &OP_TANH, LG_U_TANH, x, 0.0f); }
lg_tensor *lg_sigmoid(lg_ctx *ctx, lg_tensor *x) {
    return unary(ctx, &OP_SIGMOID, LG_U_SIGMOID, x, 0.0f);
}
lg_tensor *lg_softplus(lg_ctx *ctx, lg_tensor *x) {
    return unary(ctx, &OP_SOFTPLUS, LG_U_SOFTPLUS, x, 0.0f);
}

/* ---- binary ops with broadcasting ---- */

/* over: y is written over a's memory (a view of it; b must broadcast to
 * a's shape), see lg__bias_into */
static lg_tensor *binary_op(lg_ctx *ctx, const lg_op_def *def, lg_binary op, lg_tensor *a,
                            lg_tensor *b, int over) {
    LG_CHECK_IN(ctx, a);
    LG_CHECK_IN(ctx, b);
    int ndim;
    int64_t shape[4];
    char sa[64], sb[64];
    if (!broadcast_shape(a, b, &ndim, shape))
        return lg_ctx_fail(ctx, LG_ERR_SHAPE, "%s: shapes %s and %s do not broadcast", def->name,
                           lg_shape_str(a, sa, sizeof sa), lg_shape_str(b, sb, sizeof sb));
    if (over && (ndim != a->ndim || memcmp(shape, a->shape, (size_t)ndim * sizeof shape[0])))
        return lg_ctx_fail(ctx, LG_ERR_SHAPE, "%s: bias %s does not broadcast to %s", def->name,
                           lg_shape_str(b, sb, sizeof sb), lg_shape_str(a, sa, sizeof sa));
    lg_tensor *y = over ? lg_alias(ctx, a, a->ndim, a->shape) : lg_new(ctx, ndim, shape);
    if (!y) return NULL;
    int64_t y4[4], a4[4], b4[4];
    lg_shape4(y, y4);
    lg_shape4(a, a4);
    lg_shape4(b, b4);
    BE(ctx)->binary(op, y->data, y4, a->data, a4, b->data, b4);
    lg_tensor *src[2] = {a, b};
    lg_graph_record(ctx, def, y, 2, src);
    return y;
}

static lg_tensor *binary(lg_ctx *ctx, const lg_op_def *def, lg_binary op, lg_tensor *a,
                         lg_tensor *b) {
    return binary_op(ctx, def, op, a, b, 0);
}

/* Reduces a gradient to the shape of the input it belongs to. */
static lg_tensor *to_shape_of(lg_ctx *ctx, lg_tensor *g, const lg_tensor *like) {
    if (!g) return NULL;
    if (lg_same_shape(g, like)) return g;
    return lg_sum_to(ctx, g, like->ndim, like->shape);
}

static lg_status bw_add(lg_ctx *ctx, lg_node *n, lg_tensor *g, lg_tensor **gin, const int *need) {
    if (need[0]) gin[0] = to_shape_of(ctx, g, n->src[0]);
    if (need[1]) gin[1] = to_shape_of(ctx, g, n->src[1]);
    return LG_OK;
}
static lg_status bw_sub(lg_ctx *ctx, lg_node *n, lg_tensor *g, lg_tensor **gin, const int *need) {
    if (need[0]) gin[0] = to_shape_of(ctx, g, n->src[0]);
    if (need[1]) gin[1] = to_shape_of(ctx, lg_neg(ctx, g), n->src[1]);
    return LG_OK;
}
static lg_status bw_mul(lg_ctx *ctx, lg_node *n, lg_tensor *g, lg_tensor **gin, const int *need) {
    if (need[0]) gin[0] = to_shape_of(ctx, lg_mul(ctx, g, n->src[1]), n->src[0]);
    if (need[1]) gin[1] = to_shape_of(ctx, lg_mul(ctx, g, n->src[0]), n->src[1]);
    return LG_OK;
}
static lg_status bw_div(lg_ctx *ctx, lg_node *n, lg_tensor *g, lg_tensor **gin, const int *need) {
    lg_tensor *b = n->src[1];
    if (need[0]) gin[0] = to_shape_of(ctx, lg_div(ctx, g, b), n->src[0]);
    /* d(a/b)/db = -(a/b)/b */
    if (need[1]) gin[1] = to_shape_of(ctx, lg_neg(ctx, lg_div(ctx, lg_mul(ctx, g, n->out), b)), b);
    return LG_OK;
}

/* relu(a + b) = relu_mask(g, y) pulled back through the add; y > 0 exactly
 * where a + b > 0. */
static lg_status bw_add_relu(lg_ctx *ctx, lg_node *n, lg_tensor *g, lg_tensor **gin,
                             const int *need) {
    lg_tensor *gp = relu_mask(ctx, g, n->out);
    if (need[0]) gin[0] = to_shape_of(ctx, gp, n->src[0]);
    if (need[1]) gin[1] = to_shape_of(ctx, gp, n->src[1]);
    return LG_OK;
}
/* g * (ref > 0): linear in g; its derivative in ref is zero almost
 * everywhere, so none is returned. */
static lg_status bw_relu_mask(lg_ctx *ctx, lg_node *n, lg_tensor *g, lg_tensor **gin,
                              const int *need) {
    if (need[0]) gin[0] = relu_mask(ctx, g, n->src[1]);
    return LG_OK;
}

static const lg_op_def OP_ADD = {"add", bw_add};
static const lg_op_def OP_ADD_RELU = {"add_relu", bw_add_relu};
static const lg_op_def OP_RELU_MASK = {"relu_mask", bw_relu_mask};
static const lg_op_def OP_SUB = {"sub", bw_sub};
static const lg_op_def OP_MUL = {"mul", bw_mul};
static const lg_op_def OP_DIV = {"div", bw_div};

lg_tensor *lg_add(lg_ctx *ctx, lg_tensor *a, lg_tensor *b) { return binary(ctx, &OP_ADD, LG_B_ADD, a, b); }
lg_tensor *lg_sub(lg_ctx *ctx, lg_tensor *a, lg_tensor *b) { return binary(ctx, &OP_SUB, LG_B_SUB, a, b); }
lg_tensor *lg_mul(lg_ctx *ctx, lg_tensor *a, lg_tensor *b) { return binary(ctx, &OP_MUL, LG_B_MUL, a, b); }
lg_tensor *lg_div(lg_ctx *ctx, lg_tensor *a, lg_tensor *b) { return binary(ctx, &OP_DIV, LG_B_DIV, a, b); }
lg_tensor *lg_add_relu(lg_ctx *ctx, lg_tensor *a, lg_tensor *b) {
    return binary(ctx, &OP_ADD_RELU, LG_B_ADD_RELU, a, b);
}
lg_tensor *lg__bias_into(lg_ctx *ctx, lg_tensor *y, lg_tensor *b, int relu) {
    return relu ? binary_op(ctx, &OP_ADD_RELU, LG_B_ADD_RELU, y, b, 1)
                : binary_op(ctx, &OP_ADD, LG_B_ADD, y, b, 1);
}

/* ReLU's backward as one recorded op (g and ref have one shape) */
static lg_tensor *relu_mask(lg_ctx *ctx, lg_tensor *g, lg_tensor *ref) {
    return binary(ctx, &OP_RELU_MASK, LG_B_RELU_MASK, g, ref);
}

/* ---- broadcast_to / sum_to: an adjoint pair ---- */

static lg_status bw_broadcast_to(lg_ctx *ctx, lg_node *n, lg_tensor *g, lg_tensor **gin,
                                 const int *need) {
    gin[0] = lg_sum_to(ctx, g, n->src[0]->ndim, n->src[0]->shape);
    return LG_OK;
}
static lg_status bw_sum_to(lg_ctx *ctx, lg_node *n, lg_tensor *g, lg_tensor **gin, const int *need) {
    gin[0] = lg_broadcast_to(ctx, g, n->src[0]->ndim, n->src[0]->shape);
    return LG_OK;
}
static const lg_op_def OP_BROADCAST_TO = {"broadcast_to", bw_broadcast_to};
static const lg_op_def OP_SUM_TO = {"sum_to", bw_sum_to};

/* 1 if `small` broadcasts to `big` (right-aligned). */
static int broadcastable(int sndim, const int64_t *sshape, int bndim, const int64_t *bshape) {
    if (sndim > bndim) return 0;
    int64_t s4[4], b4[4];
    shape4_of(sndim, sshape, s4);
    shape4_of(bndim, bshape, b4);
    for (int i = 0; i < 4; i++)
        if (s4[i] != b4[i] && s4[i] != 1) return 0;
    return 1;
}

lg_tensor *lg_broadcast_to(lg_ctx *ctx, lg_tensor *x, int ndim, const int64_t *shape) {
    LG_CHECK_IN(ctx, x);
    if (!broadcastable(x->ndim, x->shape, ndim, shape)) {
        char s[64];
        return lg_ctx_fail(ctx, LG_ERR_SHAPE, "broadcast_to: %s does not broadcast to the target",
                           lg_shape_str(x, s, sizeof s));
    }
    lg_tensor *y = lg_new(ctx, ndim, shape);
    if (!y) return NULL;
    /* y = 0 + x broadcast: reuse the binary kernel with a zero scalar */
    int64_t y4[4], x4[4], one4[4] = {1, 1, 1, 1};
    lg_shape4(y, y4);
    lg_shape4(x, x4);
    float *zero = lg_ctx_scratch(ctx, 1);
    if (!zero) return NULL;
    BE(ctx)->fill(zero, 0.0f, 1);
    BE(ctx)->binary(LG_B_ADD, y->data, y4, x->data, x4, zero, one4);
    lg_graph_record(ctx, &OP_BROADCAST_TO, y, 1, &x);
    return y;
}

lg_tensor *lg_sum_to(lg_ctx *ctx, lg_tensor *x, int ndim, const int64_t *shape) {
    LG_CHECK_IN(ctx, x);
    if (!broadcastable(ndim, shape, x->ndim, x->shape)) {
        char s[64];
        return lg_ctx_fail(ctx, LG_ERR_SHAPE, "sum_to: %s cannot be reduced to the target",
                           lg_shape_str(x, s, sizeof s));
    }
    lg_tensor *y = lg_new(ctx, ndim, shape);
    if (!y) return NULL;
    int64_t y4[4], x4[4];
    lg_shape4(y, y4);
    lg_shape4(x, x4);
    BE(ctx)->sum_to(y->data, y4, x->data, x4);
    lg_graph_record(ctx, &OP_SUM_TO, y, 1, &x);
    return y;
}

/* ---- reductions ---- */

lg_tensor *lg_sum(lg_ctx *ctx, lg_tensor *x) {
    LG_CHECK_IN(ctx, x);
    int64_t one = 1;
    lg_tensor *y = lg_sum_to(ctx, x, x->ndim, (int64_t[4]){1, 1, 1, 1});
    return lg_reshape(ctx, y, 1, &one);
}

lg_tensor *lg_mean(lg_ctx *ctx, lg_tensor *x) {
    LG_CHECK_IN(ctx, x);
    return lg_scale(ctx, lg_sum(ctx, x), 1.0f / (float)x->numel);
}

lg_tensor *lg_sum_axes(lg_ctx *ctx, lg_tensor *x, unsigned axes_mask) {
    LG_CHECK_IN(ctx, x);
    if (axes_mask >> x->ndim)
        return lg_ctx_fail(ctx, LG_ERR_SHAPE, "sum_axes: axis mask 0x%x has dims beyond %d",
                           axes_mask, x->ndim);
    int64_t s[4] = {1, 1, 1, 1};
    for (int i = 0; i < x->ndim; i++) s[i] = (axes_mask >> i) & 1u ? 1 : x->shape[i];
    return lg_sum_to(ctx, x, x->ndim, s);
}

lg_tensor *lg_mean_axes(lg_ctx *ctx, lg_tensor *x, unsigned axes_mask) {
    LG_CHECK_IN(ctx, x);
    int64_t count = 1;
    for (int i = 0; i < x->ndim; i++)
        if ((axes_mask >> i) & 1u) count *= x->shape[i];
    return lg_scale(ctx, lg_sum_axes(ctx, x, axes_mask), 1.0f / (float)count);
}

/* ---- reshape ---- */

static lg_status bw_reshape(lg_ctx *ctx, lg_node *n, lg_tensor *g, lg_tensor **gin, const int *need) {
    gin[0] = lg_reshape(ctx, g, n->src[0]->ndim, n->src[0]->shape);
    return LG_OK;
}
static const lg_op_def OP_RESHAPE = {"reshape", bw_reshape};

lg_tensor *lg_reshape(lg_ctx *ctx, lg_tensor *x, int ndim, const int64_t *shape) {
    LG_CHECK_IN(ctx, x);
    lg_tensor *y = lg_alias(ctx, x, ndim, shape);
    if (!y) return NULL;
    lg_graph_record(ctx, &OP_RESHAPE, y, 1, &x);
    return y;
}

lg_tensor *lg_flatten(lg_ctx *ctx, lg_tensor *x) {
    LG_CHECK_IN(ctx, x);
    int64_t s[2] = {x->shape[0], x->numel / x->shape[0]};
    return lg_reshape(ctx, x, 2, s);
}

/* ---- rows (a slice along dim 0), its adjoint rows_pad, and cat_rows ----
 * Rows of a contiguous tensor are contiguous, so all three are copies and
 * fills; each one's backward is another of them, so they are
 * differentiable to any order. */

static int64_t row_size(const lg_tensor *x) { return x->shape[0] ? x->numel / x->shape[0] : 0; }

static lg_status bw_rows(lg_ctx *ctx, lg_node *n, lg_tensor *g, lg_tensor **gin, const int *need) {
    (void)need;
    gin[0] = lg_rows_pad(ctx, g, n->ip[0], n->src[0]->shape[0]);
    return LG_OK;
}
static lg_status bw_rows_pad(lg_ctx *ctx, lg_node *n, lg_tensor *g, lg_tensor **gin,
                             const int *need) {
    (void)need;
    gin[0] = lg_rows(ctx, g, n->ip[0], n->src[0]->shape[0]);
    return LG_OK;
}
static lg_status bw_cat_rows(lg_ctx *ctx, lg_node *n, lg_tensor *g, lg_tensor **gin,
                             const int *need) {
    int64_t na = n->src[0]->shape[0];
    if (need[0]) gin[0] = lg_rows(ctx, g, 0, na);
    if (need[1]) gin[1] = lg_rows(ctx, g, na, n->src[1]->shape[0]);
    return LG_OK;
}
static const lg_op_def OP_ROWS = {"rows", bw_rows};
static const lg_op_def OP_ROWS_PAD = {"rows_pad", bw_rows_pad};
static const lg_op_def OP_CAT_ROWS = {"cat_rows", bw_cat_rows};

lg_tensor *lg_rows(lg_ctx *ctx, lg_tensor *x, int64_t start, int64_t len) {
    LG_CHECK_IN(ctx, x);
    if (start < 0 || len < 1 || start + len > x->shape[0])
        return lg_ctx_fail(ctx, LG_ERR_SHAPE, "rows: [%lld, %lld) is outside dim 0 of size %lld",
                           (long long)start, (long long)(start + len), (long long)x->shape[0]);
    int64_t s[LG_MAX_DIMS];
    memcpy(s, x->shape, sizeof s);
    s[0] = len;
    lg_tensor *y = lg_new(ctx, x->ndim, s);
    if (!y) return NULL;
    int64_t r = row_size(x);
    BE(ctx)->copy(y->data, x->data + start * r, (size_t)(len * r));
    lg_node *nd = lg_graph_record(ctx, &OP_ROWS, y, 1, &x);
    if (nd) nd->ip[0] = start;
    return y;
}

lg_tensor *lg_rows_pad(lg_ctx *ctx, lg_tensor *x, int64_t start, int64_t total) {
    LG_CHECK_IN(ctx, x);
    if (start < 0 || start + x->shape[0] > total)
        return lg_ctx_fail(ctx, LG_ERR_SHAPE, "rows_pad: %lld rows at %lld do not fit in %lld",
                           (long long)x->shape[0], (long long)start, (long long)total);
    int64_t s[LG_MAX_DIMS];
    memcpy(s, x->shape, sizeof s);
    s[0] = total;
    lg_tensor *y = lg_new(ctx, x->ndim, s);
    if (!y) return NULL;
    int64_t r = row_size(x), end = start + x->shape[0];
    if (start > 0) BE(ctx)->fill(y->data, 0.0f, (size_t)(start * r));
    BE(ctx)->copy(y->data + start * r, x->data, (size_t)x->numel);
    if (end < total) BE(ctx)->fill(y->data + end * r, 0.0f, (size_t)((total - end) * r));
    lg_node *nd = lg_graph_record(ctx, &OP_ROWS_PAD, y, 1, &x);
    if (nd) nd->ip[0] = start;
    return y;
}

lg_tensor *lg_cat_rows(lg_ctx *ctx, lg_tensor *a, lg_tensor *b) {
    LG_CHECK_IN(ctx, a);
    LG_CHECK_IN(ctx, b);
    int same_rest = a->ndim == b->ndim;
    for (int i = 1; same_rest && i < a->ndim; i++) same_rest = a->shape[i] == b->shape[i];
    if (!same_rest) {
        char sa[64], sb[64];
        return lg_ctx_fail(ctx, LG_ERR_SHAPE, "cat_rows: %s and %s differ beyond dim 0",
                           lg_shape_str(a, sa, sizeof sa), lg_shape_str(b, sb, sizeof sb));
    }
    int64_t s[LG_MAX_DIMS];
    memcpy(s, a->shape, sizeof s);
    s[0] = a->shape[0] + b->shape[0];
    lg_tensor *y = lg_new(ctx, a->ndim, s);
    if (!y) return NULL;
    BE(ctx)->copy(y->data, a->data, (size_t)a->numel);
    BE(ctx)->copy(y->data + a->numel, b->data, (size_t)b->numel);
    lg_tensor *src[2] = {a, b};
    lg_graph_record(ctx, &OP_CAT_ROWS, y, 2, src);
    return y;
}
