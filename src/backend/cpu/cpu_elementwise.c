/* Elementwise kernels and reductions of the CPU backend.
 *
 * Work is cut into fixed chunks (independent of the thread count) and the
 * chunks are spread over threads, so inner loops stay simple enough for
 * the compiler to vectorize and results never depend on scheduling.
 * Reductions accumulate in double. */
#include <math.h>
#include <omp.h>
#include <string.h>

#include "backend/cpu/cpu_internal.h"

#define CHUNK ((int64_t)16384) /* elements per parallel work item */

/* ---- unary ---- */

/* y[i] = op(x[i]) for one chunk; y may equal x. */
static void unary_run(lg_unary op, float *y, const float *x, int64_t n, float alpha) {
    int64_t i;
    switch (op) {
    case LG_U_RELU: /* x < 0 rather than x > 0 so that NaN propagates */
        for (i = 0; i < n; i++) y[i] = x[i] < 0.0f ? 0.0f : x[i];
        break;
    case LG_U_LRELU:
        for (i = 0; i < n; i++) y[i] = x[i] < 0.0f ? alpha * x[i] : x[i];
        break;
    case LG_U_TANH:
        for (i = 0; i < n; i++) y[i] = tanhf(x[i]);
        break;
    case LG_U_SIGMOID: /* exp of a non-positive number only: no overflow */
        for (i = 0; i < n; i++) {
            float v = x[i];
            if (v >= 0.0f) {
                y[i] = 1.0f / (1.0f + expf(-v));
            } else {
                float e = expf(v);
                y[i] = e / (1.0f + e);
            }
        }
        break;
    case LG_U_SOFTPLUS: /* log(1+e^x) = max(x,0) + log1p(e^-|x|) */
        for (i = 0; i < n; i++) {
            float v = x[i];
            y[i] = (v > 0.0f ? v : 0.0f) + log1pf(expf(-fabsf(v)));
        }
        break;
    case LG_U_SQUARE:
        for (i = 0; i < n; i++) y[i] = x[i] * x[i];
        break;
    case LG_U_SQRT:
        for (i = 0; i < n; i++) y[i] = sqrtf(x[i]);
        break;
    case LG_U_NEG:
        for (i = 0; i < n; i++) y[i] = -x[i];
        break;
    case LG_U_SCALE:
        for (i = 0; i < n; i++) y[i] = alpha * x[i];
        break;
    case LG_U_ADD_SCALAR:
        for (i = 0; i < n; i++) y[i] = x[i] + alpha;
        break;
    case LG_U_STEP:
        for (i = 0; i < n; i++) y[i] = x[i] > 0.0f ? 1.0f : alpha;
        break;
    case LG_U_RECIP:
        for (i = 0; i < n; i++) y[i] = 1.0f / x[i];
        break;
    case LG_U_EXP:
        for (i = 0; i < n; i++) y[i] = expf(x[i]);
        break;
    case LG_U_LOG:
        for (i = 0; i < n; i++) y[i] = logf(x[i]);
        break;
    case LG_U_ABS:
        for (i = 0; i < n; i++) y[i] = fabsf(x[i]);
        break;
    case LG_U_SIGN: /* NaN stays NaN */
        for (i = 0; i < n; i++) {
            float v = x[i];
            y[i] = v > 0.0f ? 1.0f : (v < 0.0f ? -1.0f : v * 0.0f);
        }
        break;
    case LG_U_CLAMP: /* comparisons written so that NaN propagates */
        for (i = 0; i < n; i++) {
            float v = x[i];
            y[i] = v < -alpha ? -alpha : (v > alpha ? alpha : v);
        }
        break;
    default:
        LG_ASSERT(!"unknown lg_unary op");
    }
}

void lg_cpu_unary(lg_unary op, float *y, const float *x, size_t n, float alpha) {
    int64_t nn = (int64_t)n, nchunk = (nn + CHUNK - 1) / CHUNK;
    int nt = lg_cpu_nthreads();
#pragma omp parallel for num_threads(nt) if (n >= LG_CPU_PAR_MIN) schedule(static)
    for (int64_t c = 0; c < nchunk; c++) {
        int64_t lo = c * CHUNK, len = nn - lo < CHUNK ? nn - lo : CHUNK;
        unary_run(op, y + lo, x + lo, len, alpha);
    }
}

/* ---- binary with broadcasting ---- */

static inline float bin_max(float a, float b) { return (a > b || a != a) ? a : b; }
/* as LG_U_RELU of the sum: v < 0 rather than v > 0 so that NaN propagates */
static inline float bin_add_relu(float a, float b) {
    float v = a + b;
    return v < 0.0f ? 0.0f : v;
}

/* One contiguous run of y; a and b advance by sa, sb (0 or 1). */
#define BIN_LOOPS(EXPR)                                                        \
    do {                                                                       \
        if (sa && sb)                                                          \
            for (int64_t i = 0; i < n; i++) { float A = a[i], B = b[i]; y[i] = (EXPR); } \
        else if (sa)                                                           \
            for (int64_t i = 0; i < n; i++) { float A = a[i], B = b[0]; y[i] = (EXPR); } \
        else if (sb)                                                           \
            for (int64_t i = 0; i < n; i++) { float A = a[0], B = b[i]; y[i] = (EXPR); } \
        else                                                                   \
            for (int64_t i = 0; i < n; i++) { float A = a[0], B = b[0]; y[i] = (EXPR); } \
    } while (0)

static void binary_run(lg_binary op, float *y, const float *a, int sa, const float *b, int sb,
                       int64_t n) {
    switch (op) {
    case LG_B_ADD: BIN_LOOPS(A + B); break;
    case LG_B_SUB: BIN_LOOPS(A - B); break;
    case LG_B_MUL: BIN_LOOPS(A * B); break;
    case LG_B_DIV: BIN_LOOPS(A / B); break;
    case LG_B_MAX: BIN_LOOPS(bin_max(A, B)); break;
    case LG_B_ADD_RELU: BIN_LOOPS(bin_add_relu(A, B)); break;
    case LG_B_RELU_MASK: BIN_LOOPS(A * (B > 0.0f ? 1.0f : 0.0f)); break; /* inf/NaN stay visible */
    default: LG_ASSERT(!"unknown lg_binary op");
    }
}

/* Shapes reduced to the fewest dims: size-1 dims of y dropped, and
 * neighbouring dims merged wherever both operands step through them as one
 * (same broadcast pattern). */
typedef struct bcast {
    int nd;
    int64_t size[4];
    int64_t sa[4], sb[4]; /* element strides of a and b (0 = broadcast) */
} bcast;

static void bcast_plan(bcast *p, const int64_t ys[4], const int64_t as[4], const int64_t bs[4]) {
    int64_t ra = 1, rb = 1, stra[4], strb[4];
    for (int i = 3; i >= 0; i--) {
        LG_ASSERT(as[i] == ys[i] || as[i] == 1);
        LG_ASSERT(bs[i] == ys[i] || bs[i] == 1);
        stra[i] = as[i] == 1 ? 0 : ra;
        strb[i] = bs[i] == 1 ? 0 : rb;
        ra *= as[i];
        rb *= bs[i];
    }
    p->nd = 0;
    for (int i = 0; i < 4; i++) {
        if (ys[i] == 1) continue;
        int d = p->nd;
        if (d > 0 && p->sa[d - 1] == stra[i] * ys[i] && p->sb[d - 1] == strb[i] * ys[i]) {
            p->size[d - 1] *= ys[i]; /* merge into the previous dim */
            p->sa[d - 1] = stra[i];
            p->sb[d - 1] = strb[i];
            continue;
        }
        p->size[d] = ys[i];
        p->sa[d] = stra[i];
        p->sb[d] = strb[i];
        p->nd++;
    }
}

void lg_cpu_binary(lg_binary op, float *y, const int64_t yshape[4], const float *a,
                   const int64_t ashape[4], const float *b, const int64_t bshape[4]) {
    bcast p;
    bcast_plan(&p, yshape, ashape, bshape);
    if (p.nd == 0) { /* a single element */
        binary_run(op, y, a, 1, b, 1, 1);
        return;
    }
    int in = p.nd - 1;
    int64_t len = p.size[in], rows = 1;
    for (int d = 0; d < in; d++) rows *= p.size[d];
    int64_t nchunk = (len + CHUNK - 1) / CHUNK, items = rows * nchunk;
    int sa = p.sa[in] != 0, sb = p.sb[in] != 0;
    int nt = lg_cpu_nthreads();
#pragma omp parallel for num_threads(nt) if (rows * len >= (int64_t)LG_CPU_PAR_MIN) schedule(static)
    for (int64_t it = 0; it < items; it++) {
        int64_t row = it / nchunk, lo = (it % nchunk) * CHUNK;
        int64_t n = len - lo < CHUNK ? len - lo : CHUNK;
        int64_t oa = 0, ob = 0, r = row;
        for (int d = in - 1; d >= 0; d--) { /* row -> offsets in a and b */
            int64_t idx = r % p.size[d];
            r /= p.size[d];
            oa += idx * p.sa[d];
            ob += idx * p.sb[d];
        }
        binary_run(op, y + row * len + lo, a + oa + lo * sa, sa, b + ob + lo * sb, sb, n);
    }
}

/* ---- reductions ---- */

/* Fixed partition of every sum into this many contiguous blocks, summed in
 * parallel and then in block order: same bits for any thread count. */
#define DSUM_BLOCKS 64

/* Eight independent double accumulators: a fixed order, but no single
 * long dependency chain (about 1.3x faster than four). */
static double dsum_range(const float *a, const float *b, size_t lo, size_t hi) {
    double s[8] = {0, 0, 0, 0, 0, 0, 0, 0};
    size_t i = lo;
    if (b) {
        for (; i + 8 <= hi; i += 8)
            for (int l = 0; l < 8; l++) s[l] += (double)a[i + l] * b[i + l];
        for (; i < hi; i++) s[0] += (double)a[i] * b[i];
    } else {
        for (; i + 8 <= hi; i += 8)
            for (int l = 0; l < 8; l++) s[l] += a[i + l];
        for (; i < hi; i++) s[0] += a[i];
    }
    return ((s[0] + s[1]) + (s[2] + s[3])) + ((s[4] + s[5]) + (s[6] + s[7]));
}

double lg_cpu_dsum(const float *a, const float *b, size_t n) {
    if (n < 4096) return dsum_range(a, b, 0, n);
    double part[DSUM_BLOCKS];
    int nt = lg_cpu_nthreads();
#pragma omp parallel for num_threads(nt) if (n >= LG_CPU_PAR_MIN) schedule(static)
    for (int k = 0; k < DSUM_BLOCKS; k++)
        part[k] = dsum_range(a, b, n * (size_t)k / DSUM_BLOCKS, n * (size_t)(k + 1) / DSUM_BLOCKS);
    double s = 0;
    for (int k = 0; k < DSUM_BLOCKS; k++) s += part[k];
    return s;
}

void lg_cpu_sum_all(float *y, const float *x, size_t n) { y[0] = (float)lg_cpu_dsum(x, NULL, n); }

/* sum_to: the dims of x are classified as kept (y has them) or reduced
 * (y has 1 there), size-1 dims dropped and neighbours of the same kind
 * merged, leaving an alternating list such as R K R for a bias gradient
 * (N,C,H,W) -> (1,C,1,1). Each y element is summed by one thread in a fixed
 * order, in double. */
typedef struct sumplan {
    int nd;
    int64_t size[4], xs[4]; /* sizes and x strides of the merged dims */
    int kept[4];
} sumplan;

/* x offset of the index-th combination of the dims in `which` (listed
 * outermost first), nw of them. */
static inline int64_t combo_offset(const sumplan *p, const int *which, int nw, int64_t index) {
    int64_t off = 0;
    for (int j = nw - 1; j >= 0; j--) {
        int d = which[j];
        off += (index % p->size[d]) * p->xs[d];
        index /= p->size[d];
    }
    return off;
}

#define SUM_TILE 256 /* y elements accumulated together when the inner dim is kept */

void lg_cpu_sum_to(float *y, const int64_t yshape[4], const float *x, const int64_t xshape[4]) {
    sumplan p = {0};
    int64_t total = 1;
    for (int i = 0; i < 4; i++) {
        LG_ASSERT(yshape[i] == xshape[i] || yshape[i] == 1);
        total *= xshape[i];
        if (xshape[i] == 1) continue;
        int kept = yshape[i] == xshape[i];
        if (p.nd > 0 && p.kept[p.nd - 1] == kept) {
            p.size[p.nd - 1] *= xshape[i];
        } else {
            p.size[p.nd] = xshape[i];
            p.kept[p.nd] = kept;
            p.nd++;
        }
    }
    if (p.nd == 0) {
        y[0] = x[0];
        return;
    }
    int64_t stride = 1;
    for (int d = p.nd - 1; d >= 0; d--) {
        p.xs[d] = stride;
        stride *= p.size[d];
    }
    if (p.nd == 1) {
        if (p.kept[0])
            lg_cpu_copy(y, x, (size_t)total);
        else
            lg_cpu_sum_all(y, x, (size_t)total);
        return;
    }
    int in = p.nd - 1;
    int64_t len = p.size[in];
    int kd[4], rd[4], nk = 0, nr = 0; /* outer kept / reduced dims */
    int64_t nkc = 1, nrc = 1;         /* their numbers of combinations */
    for (int d = 0; d < in; d++) {
        if (p.kept[d]) {
            kd[nk++] = d;
            nkc *= p.size[d];
        } else {
            rd[nr++] = d;
            nrc *= p.size[d];
        }
    }
    int nt = lg_cpu_nthreads();
    int par = total >= (int64_t)LG_CPU_PAR_MIN;
    if (p.kept[in]) {
        /* y rows of len elements: accumulate a tile of a row over every
         * reduced combination */
        int64_t ntile = (len + SUM_TILE - 1) / SUM_TILE, items = nkc * ntile;
#pragma omp parallel for num_threads(nt) if (par) schedule(static)
        for (int64_t it = 0; it < items; it++) {
            int64_t kc = it / ntile, lo = (it % ntile) * SUM_TILE;
            int64_t n = len - lo < SUM_TILE ? len - lo : SUM_TILE;
            double acc[SUM_TILE];
            for (int64_t j = 0; j < n; j++) acc[j] = 0;
            const float *xk = x + combo_offset(&p, kd, nk, kc) + lo;
            for (int64_t rc = 0; rc < nrc; rc++) {
                const float *xr = xk + combo_offset(&p, rd, nr, rc);
                for (int64_t j = 0; j < n; j++) acc[j] += xr[j];
            }
            float *yr = y + kc * len + lo;
            for (int64_t j = 0; j < n; j++) yr[j] = (float)acc[j];
        }
    } else {
        /* each y element sums contiguous runs of len elements */
#pragma omp parallel for num_threads(nt) if (par) schedule(static)
        for (int64_t kc = 0; kc < nkc; kc++) {
            const float *xk = x + combo_offset(&p, kd, nk, kc);
            double s = 0;
            for (int64_t rc = 0; rc < nrc; rc++)
                s += dsum_range(xk + combo_offset(&p, rd, nr, rc), NULL, 0, (size_t)len);
            y[kc] = (float)s;
        }
    }
}
