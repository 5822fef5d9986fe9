/* The index maps of the CUDA backend's fast paths (src/backend/cuda/), emulated
 * on the host, so that CI checks them without a GPU: the multiply-shift
 * division (cuda_internal.h lgc_fastdiv), the broadcasting binary op's
 * bias path and merged-dims path (cuda_elementwise.cu launch_binary),
 * sum_to's plans (sum_to_plan, red2, the split block reduction, the
 * generic kernels), the per-channel (chunk, channel) walk and the apply
 * pass of batch norm and channel sums (cuda_bn.cu chan_plan_of,
 * k_chan_partial, k_chan_apply), the per-channel finish and coefficient
 * kernels of synchronized batch norm's parts (k_bn_stats_finish,
 * k_bn_sums_finish, k_bn_bwd_apply_coef, against the CPU backend's
 * bn_stats, bn_bwd_sums, bn_bwd_apply), and the vector upsample / sum pool
 * (k_upsample2x_v, k_sumpool2x2_v), and the im2col + cuBLAS convolutions
 * (cuda_linalg.cu; the cuBLAS calls through a column-major reference, as
 * test_wino_emul.c does). Host code and the kernels' index
 * arithmetic are copied here line for line (the .cu files cannot be
 * compiled as C); each "kernel" runs for every (block, thread) it would
 * have. Values are small integers, so every sum is exact in any order and
 * results compare bitwise with naive references and the CPU backend.
 * tests/test_wino_emul.c does the same for the Winograd transforms;
 * tests/gpu/test_backend_cuda.c runs the real kernels. */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "lg_test.h"
#include "lipgan/backend.h"

enum { THREADS = 256 }; /* LGC_THREADS and CH_THREADS */

static lg_test_rng rng;
static unsigned rnd(unsigned n) { return (unsigned)(lg_test_rng_u64(&rng) % n); }
static float rint_val(void) { return (float)((int)rnd(17) - 8); } /* exact sums */

/* ---- cuda_internal.h: lgc_fastdiv_make, lgc_div (host branch) ---- */
typedef struct fastdiv {
    unsigned d, m, s;
} fastdiv;
static fastdiv fdiv_make(unsigned d) {
    fastdiv f;
    f.d = d;
    for (f.s = 0; f.s < 31 && (1u << f.s) < d; f.s++) {
    }
    unsigned long long one = 1;
    f.m = (unsigned)(((one << 32) * ((one << f.s) - d)) / d + 1);
    return f;
}
static unsigned fdiv_div(unsigned n, fastdiv f) {
    unsigned t = (unsigned)(((unsigned long long)n * f.m) >> 32);
    return (t + n) >> f.s;
}

/* every divisor class against dividends up to INT32_MAX (the documented range) */
static void test_fastdiv(void) {
    long bad = 0;
    unsigned ds[4000];
    int nd = 0;
    for (unsigned d = 1; d <= 1100; d++) ds[nd++] = d;
    for (int k = 1; k < 31; k++) {
        ds[nd++] = (1u << k) - 1, ds[nd++] = 1u << k, ds[nd++] = (1u << k) + 1;
    }
    ds[nd++] = INT32_MAX, ds[nd++] = INT32_MAX - 1, ds[nd++] = 65535, ds[nd++] = 32768 * 3;
    while (nd < 4000) ds[nd++] = 1 + rnd(INT32_MAX);
    for (int i = 0; i < nd; i++) {
        unsigned d = ds[i];
        fastdiv f = fdiv_make(d);
        unsigned ns[16] = {0, 1, d - 1, d, d + 1, INT32_MAX, INT32_MAX - 1,
                           (INT32_MAX / d) * d, (INT32_MAX / d) * d - 1};
        for (int j = 9; j < 16; j++) ns[j] = rnd(INT32_MAX);
        for (int j = 0; j < 16; j++)
            if (ns[j] <= INT32_MAX && fdiv_div(ns[j], f) != ns[j] / d) {
                if (bad++ < 5) CHECK(0, "fastdiv %u / %u = %u, want %u", ns[j], d, fdiv_div(ns[j], f), ns[j] / d);
            }
    }
    CHECK(bad == 0, "%ld wrong quotients", bad);
}

/* ---- reference broadcasting: element offset in a tensor of shape sh of
 * y's element i (sh right-aligned 4 dims, each == ysh or 1) ---- */
static int64_t bcast_off(int64_t i, const int64_t ysh[4], const int64_t sh[4]) {
    int64_t off = 0, st = 1;
    for (int d = 3; d >= 0; d--) {
        int64_t c = i % ysh[d];
        i /= ysh[d];
        if (sh[d] != 1) off += c * st;
        st *= sh[d];
    }
    return off;
}

/* ---- cuda_elementwise.cu: the host planning of launch_binary ---- */
static int same_shape(const int64_t a[4], const int64_t b[4]) {
    return a[0] == b[0] && a[1] == b[1] && a[2] == b[2] && a[3] == b[3];
}
static int bias_pattern(const int64_t bsh[4], const int64_t ysh[4], int64_t *C, int64_t *I) {
    int d0 = -1, d1 = -1;
    for (int d = 0; d < 4; d++) {
        if (bsh[d] == 1) continue;
        if (bsh[d] != ysh[d]) return 0;
        if (d0 < 0) d0 = d;
        else if (d != d1 + 1) return 0;
        d1 = d;
    }
    int64_t c = 1, in = 1;
    for (int d = 0; d < 4; d++) {
        if (d0 >= 0 && d >= d0 && d <= d1) c *= ysh[d];
        if (d > d1) in *= ysh[d];
    }
    *C = c;
    *I = in;
    return 1;
}
static void bcast_strides(int64_t st[4], const int64_t sh[4], const int64_t ysh[4]) {
    int64_t s = 1;
    for (int d = 3; d >= 0; d--) {
        st[d] = (sh[d] == 1 && ysh[d] != 1) ? 0 : s;
        s *= sh[d];
    }
}
typedef struct bmerged {
    int nd;
    int64_t size[4], as[4], bs[4];
} bmerged;
static bmerged bmerge(const int64_t ysh[4], const int64_t ast[4], const int64_t bst[4]) {
    bmerged m;
    m.nd = 0;
    for (int d = 0; d < 4; d++) {
        if (ysh[d] == 1) continue;
        if (m.nd > 0) {
            int k = m.nd - 1;
            if (m.as[k] == ast[d] * ysh[d] && m.bs[k] == bst[d] * ysh[d]) {
                m.size[k] *= ysh[d];
                m.as[k] = ast[d];
                m.bs[k] = bst[d];
                continue;
            }
        }
        m.size[m.nd] = ysh[d];
        m.as[m.nd] = ast[d];
        m.bs[m.nd] = bst[d];
        m.nd++;
    }
    if (m.nd == 0) {
        m.nd = 1;
        m.size[0] = 1;
        m.as[0] = m.bs[0] = 1;
    }
    return m;
}
/* bin_index<ND, unsigned> over bshape_of(m) (unused dims: size 1, stride 0) */
static void bin_index(unsigned i, const bmerged *m, int ND, unsigned *ia, unsigned *ib) {
    unsigned size[4], as[4], bs[4];
    for (int d = 0; d < 4; d++) {
        size[d] = d < m->nd ? (unsigned)m->size[d] : 1;
        as[d] = d < m->nd ? (unsigned)m->as[d] : 0;
        bs[d] = d < m->nd ? (unsigned)m->bs[d] : 0;
    }
    unsigned t = i, pa = 0, pb = 0;
    for (int d = ND - 1; d > 0; d--) {
        unsigned q = t / size[d], c = t - q * size[d];
        pa += c * as[d];
        pb += c * bs[d];
        t = q;
    }
    *ia = pa + t * as[0];
    *ib = pb + t * bs[0];
}

/* One broadcast case: which path launch_binary takes and whether its index
 * map reads the operands' right elements for every element of y.
 * aligned: the buffers pass lgc_aligned(., 16). Returns the path (0 same,
 * 1 bias float4, 2 bias scalar, 3 merged). */
static int check_binary(const int64_t ysh[4], const int64_t ash[4], const int64_t bsh[4],
                        int aligned) {
    size_t n = (size_t)(ysh[0] * ysh[1] * ysh[2] * ysh[3]);
    long bad = 0;
    if (same_shape(ash, ysh) && same_shape(bsh, ysh)) return 0;
    int swap = !same_shape(ash, ysh);
    const int64_t *fsh = swap ? bsh : ash, *bias_sh = swap ? ash : bsh;
    int64_t C, I;
    if (same_shape(fsh, ysh) && bias_pattern(bias_sh, ysh, &C, &I)) {
        int v4 = I % 4 == 0 && aligned;
        unsigned nv = (unsigned)(v4 ? n / 4 : n);
        fastdiv idiv = fdiv_make((unsigned)(v4 ? I / 4 : I)), cdiv = fdiv_make((unsigned)C);
        for (unsigned i = 0; i < nv; i++) { /* k_binary_bias */
            unsigned p = fdiv_div(i, idiv);
            unsigned bi = p - fdiv_div(p, cdiv) * cdiv.d;
            for (int e = 0; e < (v4 ? 4 : 1); e++) {
                int64_t el = v4 ? 4 * (int64_t)i + e : i;
                if ((int64_t)bi != bcast_off(el, ysh, bias_sh)) bad++;
            }
        }
        CHECK(bad == 0, "bias path (%lld,%lld,%lld,%lld) bias (%lld,%lld,%lld,%lld) v4 %d: %ld wrong",
              (long long)ysh[0], (long long)ysh[1], (long long)ysh[2], (long long)ysh[3],
              (long long)bias_sh[0], (long long)bias_sh[1], (long long)bias_sh[2],
              (long long)bias_sh[3], v4, bad);
        return v4 ? 1 : 2;
    }
    int64_t ast[4], bst[4];
    bcast_strides(ast, ash, ysh);
    bcast_strides(bst, bsh, ysh);
    bmerged m = bmerge(ysh, ast, bst);
    int ND = m.nd < 4 ? m.nd : 4;
    for (unsigned i = 0; i < n; i++) {
        unsigned ia, ib;
        bin_index(i, &m, ND, &ia, &ib);
        if ((int64_t)ia != bcast_off(i, ysh, ash) || (int64_t)ib != bcast_off(i, ysh, bsh)) bad++;
    }
    CHECK(bad == 0, "merged path (%lld,%lld,%lld,%lld) <- a (%lld,%lld,%lld,%lld) b (%lld,%lld,%lld,%lld): %ld wrong",
          (long long)ysh[0], (long long)ysh[1], (long long)ysh[2], (long long)ysh[3],
          (long long)ash[0], (long long)ash[1], (long long)ash[2], (long long)ash[3],
          (long long)bsh[0], (long long)bsh[1], (long long)bsh[2], (long long)bsh[3], bad);
    return 3;
}

static void test_binary_maps(void) {
    int paths[4] = {0, 0, 0, 0};
    static const int dims[] = {1, 2, 3, 4, 5, 7, 8, 12};
    for (int it = 0; it < 3000; it++) {
        int64_t ysh[4], ash[4], bsh[4];
        for (int d = 0; d < 4; d++) ysh[d] = dims[rnd(8)];
        unsigned ma = rnd(16), mb = rnd(16);
        if (rnd(3) == 0) ma = 15; /* one full operand: the bias path's case */
        for (int d = 0; d < 4; d++) {
            ash[d] = (ma >> d & 1) ? ysh[d] : 1;
            bsh[d] = (mb >> d & 1) ? ysh[d] : 1;
        }
        if (rnd(2)) {
            int64_t t[4];
            memcpy(t, ash, sizeof t), memcpy(ash, bsh, sizeof t), memcpy(bsh, t, sizeof t);
        }
        paths[check_binary(ysh, ash, bsh, (int)rnd(2))]++;
    }
    /* the generator's bias add and test_backend_cuda's shapes */
    static const int64_t fixed[][3][4] = {
        {{16, 256, 32, 32}, {16, 256, 32, 32}, {1, 256, 1, 1}},
        {{4, 6, 5, 9}, {4, 6, 5, 9}, {1, 6, 5, 1}},
        {{1, 1, 128, 64}, {1, 1, 128, 64}, {1, 1, 1, 64}},
        {{2, 3, 4, 8}, {1, 3, 1, 1}, {2, 3, 4, 8}},
        {{2, 3, 5, 7}, {2, 1, 5, 1}, {1, 3, 1, 7}},
    };
    for (size_t i = 0; i < sizeof fixed / sizeof fixed[0]; i++)
        for (int al = 0; al < 2; al++) paths[check_binary(fixed[i][0], fixed[i][1], fixed[i][2], al)]++;
    CHECK(paths[1] > 0 && paths[2] > 0 && paths[3] > 0, "paths taken: bias4 %d bias1 %d merged %d",
          paths[1], paths[2], paths[3]);
}

/* ---- cuda_bn.cu: chan_plan_of, k_chan_partial's walk, k_chan_apply ---- */
typedef struct chan_plan {
    int ok, V;
    unsigned c, hwv, cntv, nv, K, chunkv, step_img, step_j;
} chan_plan;
enum { CHAN_PARTIALS = 1 << 18, CHAN_MAXC = 1 << 16 };
static chan_plan chan_plan_of(int64_t n, int64_t c, int64_t hw, int vec4) {
    chan_plan p;
    memset(&p, 0, sizeof p);
    int64_t total = n * c * hw;
    if (n < 1 || c < 1 || hw < 1 || c > 65535 || c > CHAN_MAXC || total >= (int64_t)INT32_MAX)
        return p;
    p.V = vec4 && hw % 4 == 0 ? 4 : 1;
    p.c = (unsigned)c;
    p.hwv = (unsigned)(hw / p.V);
    p.cntv = (unsigned)(n * p.hwv);
    p.nv = (unsigned)(total / p.V);
    unsigned k = (unsigned)((2048 + c - 1) / c);
    unsigned kmax = p.cntv / (4 * THREADS);
    if (k > kmax) k = kmax;
    if ((int64_t)k * c * 2 > CHAN_PARTIALS) k = (unsigned)(CHAN_PARTIALS / (2 * c));
    if (k < 1) k = 1;
    p.K = k;
    p.chunkv = (p.cntv + k - 1) / k;
    p.step_img = THREADS / p.hwv;
    p.step_j = THREADS % p.hwv;
    p.ok = 1;
    return p;
}
typedef struct chan_walk {
    unsigned img, j;
} chan_walk;
static chan_walk walk_start(unsigned v, unsigned hwv) {
    chan_walk w;
    w.img = v / hwv;
    w.j = v - w.img * hwv;
    return w;
}
static void walk_step(chan_walk *w, unsigned hwv, unsigned step_img, unsigned step_j) {
    w->img += step_img;
    w->j += step_j;
    if (w->j >= hwv) {
        w->j -= hwv;
        w->img++;
    }
}
static size_t chan_off(const chan_walk *w, unsigned c, unsigned ch, unsigned hwv) {
    return ((size_t)w->img * c + ch) * hwv + w->j;
}

/* Channel sums of x (n, c, hw) as k_chan_partial + k_chan_sum_finish
 * compute them (vectors of V floats), counting visits per element. */
static void emul_chan_sum(double *y, unsigned char *visits, const float *x, const chan_plan *p) {
    for (unsigned ch = 0; ch < p->c; ch++) {
        double tot = 0;
        for (unsigned k = 0; k < p->K; k++) { /* block (k, ch) */
            const unsigned v0 = k * p->chunkv;
            const unsigned v1 = p->cntv - v0 < p->chunkv ? p->cntv : v0 + p->chunkv;
            double part = 0;
            for (unsigned tid = 0; tid < THREADS; tid++) {
                const unsigned v = v0 + tid;
                if (!(v0 < p->cntv && v < v1)) continue;
                const unsigned nit = (v1 - v + THREADS - 1) / THREADS;
                chan_walk w = walk_start(v, p->hwv);
                unsigned it = 0;
                for (; it + 4 <= nit; it += 4) {
                    size_t off[4];
                    for (int u = 0; u < 4; u++) {
                        off[u] = chan_off(&w, p->c, ch, p->hwv);
                        walk_step(&w, p->hwv, p->step_img, p->step_j);
                    }
                    for (int u = 0; u < 4; u++)
                        for (int e = 0; e < p->V; e++) {
                            visits[off[u] * p->V + e]++;
                            part += x[off[u] * p->V + e];
                        }
                }
                for (; it < nit; it++) {
                    size_t off = chan_off(&w, p->c, ch, p->hwv);
                    for (int e = 0; e < p->V; e++) {
                        visits[off * p->V + e]++;
                        part += x[off * p->V + e];
                    }
                    walk_step(&w, p->hwv, p->step_img, p->step_j);
                }
            }
            tot += part;
        }
        y[ch] = tot;
    }
}

static void check_chan(int64_t n, int64_t c, int64_t hw, int vec4) {
    chan_plan p = chan_plan_of(n, c, hw, vec4);
    CHECK(p.ok, "chan plan n%lld c%lld hw%lld refused", (long long)n, (long long)c, (long long)hw);
    if (!p.ok) return;
    size_t total = (size_t)(n * c * hw);
    float *x = calloc(total, sizeof *x);
    unsigned char *visits = calloc(total, 1);
    double *y = malloc((size_t)c * sizeof *y), *ref = calloc((size_t)c, sizeof *ref);
    for (size_t i = 0; i < total; i++) {
        x[i] = rint_val();
        ref[(i / (size_t)hw) % (size_t)c] += x[i];
    }
    emul_chan_sum(y, visits, x, &p);
    long twice = 0, never = 0;
    for (size_t i = 0; i < total; i++) twice += visits[i] > 1, never += visits[i] == 0;
    long wrong = 0;
    for (int64_t k = 0; k < c; k++) wrong += y[k] != ref[k];
    CHECK(twice == 0 && never == 0 && wrong == 0,
          "chan partial n%lld c%lld hw%lld V%d K%u: %ld elements read twice, %ld never, %ld "
          "channel sums wrong",
          (long long)n, (long long)c, (long long)hw, p.V, p.K, twice, never, wrong);
    /* k_chan_apply: vector i of the tensor finds its channel by two divisions */
    fastdiv hd = fdiv_make(p.hwv), cd = fdiv_make(p.c);
    long bad = 0;
    for (unsigned i = 0; i < p.nv; i++) {
        unsigned pl = fdiv_div(i, hd), ch = pl - fdiv_div(pl, cd) * cd.d;
        if ((size_t)ch != ((size_t)i * p.V / (size_t)hw) % (size_t)c) bad++;
    }
    CHECK(bad == 0, "chan apply n%lld c%lld hw%lld V%d: %ld vectors in the wrong channel",
          (long long)n, (long long)c, (long long)hw, p.V, bad);
    free(x), free(visits), free(y), free(ref);
}

static void test_chan_walk(void) {
    /* test_backend_cuda's batch norm and bias-gradient shapes (the
     * generator's 32x32 one scaled down in n: the same hw and c), one
     * image, hw 1, and hw around the block size */
    static const int64_t cs[][3] = {{4, 3, 25},    {3, 5, 1},     {16, 64, 64}, {64, 128, 256},
                                    {2, 3, 100003}, {7, 300, 36},  {128, 256, 16}, {8, 256, 1024},
                                    {1, 7, 257},    {5, 2, 255},   {3, 1, 256},  {9, 4, 512},
                                    {1, 64, 6400},  {128, 3, 1024}, {1, 32768, 4}, {2, 70, 1000}};
    for (size_t i = 0; i < sizeof cs / sizeof cs[0]; i++)
        for (int v = 0; v < 2; v++) check_chan(cs[i][0], cs[i][1], cs[i][2], v);
    for (int it = 0; it < 40; it++)
        check_chan(1 + rnd(20), 1 + rnd(40), 1 + rnd(700), (int)rnd(2));
    chan_plan big = chan_plan_of(1, 65536, 4, 1);
    CHECK(!big.ok, "more than 65535 channels must take the fallback (gridDim.y)");
}

/* ---- cuda_bn.cu: synchronized batch norm's parts (lgc_bn_stats,
 * lgc_bn_bwd_sums, lgc_bn_bwd_apply) ---- */
enum { CM_SUM, CM_STATS, CM_BWD };

/* k_chan_partial: part (c, K, 2), block (k, ch)'s two sums (x and x^2, or
 * dy and dy*(x - mean)); the visiting order is check_chan's business, the
 * values are exact here */
static void emul_chan_partial(double *part, int mode, const float *a, const float *b,
                              const float *mean, const chan_plan *p) {
    for (unsigned ch = 0; ch < p->c; ch++) {
        const double mu = mode == CM_BWD ? (double)mean[ch] : 0.0;
        for (unsigned k = 0; k < p->K; k++) {
            const unsigned v0 = k * p->chunkv;
            const unsigned v1 = p->cntv - v0 < p->chunkv ? p->cntv : v0 + p->chunkv;
            double s0 = 0.0, s1 = 0.0;
            for (unsigned v = v0; v0 < p->cntv && v < v1; v++) {
                chan_walk w = walk_start(v, p->hwv);
                size_t off = chan_off(&w, p->c, ch, p->hwv);
                for (int e = 0; e < p->V; e++) {
                    double u = (double)a[off * p->V + e];
                    s0 += u;
                    if (mode == CM_STATS) s1 += u * u;
                    if (mode == CM_BWD) s1 += u * ((double)b[off * p->V + e] - mu);
                }
            }
            part[((size_t)ch * p->K + k) * 2] = s0;
            part[((size_t)ch * p->K + k) * 2 + 1] = s1;
        }
    }
}

/* chan_partials_sum: channel ch's K partial pairs in chunk order */
static void emul_partials_sum(const double *part, unsigned ch, unsigned K, double *s0,
                              double *s1) {
    const double *p = part + (size_t)ch * K * 2;
    *s0 = 0.0;
    *s1 = 0.0;
    for (unsigned k = 0; k < K; k++) {
        *s0 += p[2 * k];
        *s1 += p[2 * k + 1];
    }
}

/* k_bn_stats_finish */
static void emul_bn_stats_finish(float *mean, float *m2, const double *part, unsigned c,
                                 unsigned K, double cnt) {
    for (unsigned ch = 0; ch < c; ch++) {
        double s, q;
        emul_partials_sum(part, ch, K, &s, &q);
        double mu = s / cnt;
        double d2 = q - s * mu;
        if (d2 < 0.0) d2 = 0.0;
        mean[ch] = (float)mu;
        m2[ch] = (float)d2;
    }
}

/* k_bn_sums_finish */
static void emul_bn_sums_finish(float *sdy, float *sdyx, const double *part, unsigned c,
                                unsigned K) {
    for (unsigned ch = 0; ch < c; ch++) {
        double s0, s1;
        emul_partials_sum(part, ch, K, &s0, &s1);
        sdy[ch] = (float)s0;
        sdyx[ch] = (float)s1;
    }
}

/* k_bn_bwd_apply_coef (bn_bwd_consts) into coef (c, 4) = (a, b, d, mean) */
static void emul_bn_bwd_apply_coef(float *coef, const float *mean, const float *rstd,
                                   const float *gamma, const float *sdy, const float *sdyx,
                                   unsigned c, double cnt) {
    for (unsigned ch = 0; ch < c; ch++) {
        double rs = rstd[ch], g = gamma ? (double)gamma[ch] : 1.0;
        double a = g * rs;
        coef[4 * ch] = (float)a;
        coef[4 * ch + 1] = (float)(-a * rs * rs * (double)sdyx[ch] / cnt);
        coef[4 * ch + 2] = (float)(-a * (double)sdy[ch] / cnt);
        coef[4 * ch + 3] = mean[ch];
    }
}

/* k_chan_apply<AP_BWD>: y = c.x*a + c.y*(b - c.w) + c.z, the channel by
 * the two fast divisions (without contraction to fma, as the CPU build:
 * on the GPU an fma may round differently, test_backend_cuda's bar) */
static void emul_apply_bwd(float *y, const float *a, const float *b, const float *coef,
                           const chan_plan *p) {
    fastdiv hd = fdiv_make(p->hwv), cd = fdiv_make(p->c);
    for (unsigned i = 0; i < p->nv; i++) {
        unsigned pl = fdiv_div(i, hd), ch = pl - fdiv_div(pl, cd) * cd.d;
        const float *co = coef + 4 * ch;
        for (int e = 0; e < p->V; e++) {
            size_t j = (size_t)i * p->V + e;
            y[j] = co[0] * a[j] + co[1] * (b[j] - co[3]) + co[2];
        }
    }
}

/* The three entries as the CUDA backend's fast path computes them against
 * the CPU backend's: integer x and dy and a dyadic mean keep every sum
 * exact, so mean, sdy, sdyx and dx must match bit for bit; m2 (q - s*mean
 * against the CPU's two passes) to 2 float ulps. NaN in channel 0 of x
 * when nan_ch0 (the mean and m2 stay NaN: the clamp must not eat it). */
static void check_bn_parts(int64_t n, int64_t c, int64_t hw, int vec4, int nan_ch0) {
    const lg_backend *cpu = lg_backend_cpu();
    chan_plan p = chan_plan_of(n, c, hw, vec4);
    CHECK(p.ok, "bn parts plan n%lld c%lld hw%lld refused", (long long)n, (long long)c,
          (long long)hw);
    if (!p.ok) return;
    size_t total = (size_t)(n * c * hw), nc = (size_t)c;
    float *x = malloc(total * sizeof *x), *dy = malloc(total * sizeof *dy);
    float *dx = malloc(total * sizeof *dx), *dx_ref = malloc(total * sizeof *dx);
    float *f = malloc(13 * nc * sizeof *f), *coef = malloc(4 * nc * sizeof *coef);
    double *part = malloc((size_t)p.K * nc * 2 * sizeof *part);
    float *mean = f, *m2 = f + nc, *mean_ref = f + 2 * nc, *m2_ref = f + 3 * nc;
    float *sdy = f + 4 * nc, *sdyx = f + 5 * nc, *sdy_ref = f + 6 * nc, *sdyx_ref = f + 7 * nc;
    float *dmean = f + 8 * nc, *rstd = f + 9 * nc, *gamma = f + 10 * nc, *gs = f + 11 * nc;
    for (size_t i = 0; i < total; i++) x[i] = rint_val(), dy[i] = rint_val();
    if (nan_ch0) x[total / 2 - (total / 2) % (size_t)(c * hw)] = NAN; /* channel 0 of an image */
    for (int64_t k = 0; k < c; k++) {
        dmean[k] = (float)((int)rnd(33) - 16) / 4.0f;
        rstd[k] = 0.5f + (float)lg_test_rng_u64(&rng) / 18446744073709551616.0f;
        gamma[k] = 0.5f + (float)lg_test_rng_u64(&rng) / 18446744073709551616.0f;
    }
    const double cnt = (double)(n * hw);
    long bad = 0;

    /* bn_stats */
    emul_chan_partial(part, CM_STATS, x, NULL, NULL, &p);
    emul_bn_stats_finish(mean, m2, part, p.c, p.K, cnt);
    cpu->bn_stats(mean_ref, m2_ref, x, n, c, hw);
    for (size_t k = 0; k < nc; k++) {
        int nan_want = nan_ch0 && k == 0;
        if (nan_want) {
            bad += !(isnan(mean[k]) && isnan(m2[k]) && isnan(mean_ref[k]) && isnan(m2_ref[k]));
            continue;
        }
        bad += memcmp(&mean[k], &mean_ref[k], sizeof(float)) != 0;
        bad += !(fabsf(m2[k] - m2_ref[k]) <= 0x1p-22f * m2_ref[k]);
    }
    CHECK(bad == 0, "bn_stats n%lld c%lld hw%lld V%d K%u: %ld channels differ from the cpu's",
          (long long)n, (long long)c, (long long)hw, p.V, p.K, bad);
    if (nan_ch0) goto out; /* the rest wants finite values */

    /* bn_bwd_sums */
    emul_chan_partial(part, CM_BWD, dy, x, dmean, &p);
    emul_bn_sums_finish(sdy, sdyx, part, p.c, p.K);
    cpu->bn_bwd_sums(sdy_ref, sdyx_ref, dy, x, dmean, n, c, hw);
    CHECK(!memcmp(sdy, sdy_ref, nc * sizeof(float)) && !memcmp(sdyx, sdyx_ref, nc * sizeof(float)),
          "bn_bwd_sums n%lld c%lld hw%lld V%d K%u differs from the cpu's", (long long)n,
          (long long)c, (long long)hw, p.V, p.K);

    /* bn_bwd_apply with whole-batch sums of another size (as with more
     * processes), gamma given and NULL */
    for (size_t k = 0; k < 2 * nc; k++) gs[k] = (float)((int)rnd(2001) - 1000) * 0.37f;
    for (int g = 0; g < 2; g++) {
        const float *gm = g ? NULL : gamma;
        emul_bn_bwd_apply_coef(coef, mean_ref, rstd, gm, gs, gs + nc, p.c, 3.0 * cnt + 1.0);
        emul_apply_bwd(dx, dy, x, coef, &p);
        cpu->bn_bwd_apply(dx_ref, dy, x, mean_ref, rstd, gm, gs, gs + nc, 3.0 * cnt + 1.0, n, c,
                          hw);
        CHECK(!memcmp(dx, dx_ref, total * sizeof(float)),
              "bn_bwd_apply n%lld c%lld hw%lld V%d%s differs from the cpu's", (long long)n,
              (long long)c, (long long)hw, p.V, g ? " gamma NULL" : "");
    }
out:
    free(x), free(dy), free(dx), free(dx_ref), free(f), free(coef), free(part);
}

static void test_bn_parts(void) {
    /* test_backend_cuda's shapes (the generator's 32x32 scaled down in n) */
    static const int64_t cs[][3] = {{4, 3, 25},  {5, 7, 9},       {64, 32, 1},  {3, 5, 1},
                                    {16, 64, 64}, {2, 3, 100003}, {7, 300, 36}, {8, 256, 1024},
                                    {1, 1, 1},   {2, 1, 1}};
    for (size_t i = 0; i < sizeof cs / sizeof cs[0]; i++)
        for (int v = 0; v < 2; v++) check_bn_parts(cs[i][0], cs[i][1], cs[i][2], v, 0);
    check_bn_parts(4, 3, 25, 1, 1);
    check_bn_parts(16, 5, 64, 1, 1);
    for (int it = 0; it < 10; it++)
        check_bn_parts(1 + rnd(20), 1 + rnd(40), 1 + rnd(700), (int)rnd(2), 0);
}

/* ---- cuda_elementwise.cu: sum_to (lgc_sum_to, sum_to_plan, red2, k_red2_*) ---- */
enum { RP_GENERIC, RP_ALL, RP_THREAD, RP_BLOCK };
typedef struct red2 {
    int64_t m, len, ob, os1, os2, jb, js1, js2, splits, chunk;
} red2;
static int sum_to_plan(const int64_t ysh[4], const int64_t xsh[4], red2 *out, int64_t abc[3]) {
    abc[0] = 0;
    int64_t size[4];
    int red[4];
    int ns = 0;
    for (int d = 0; d < 4; d++) {
        if (xsh[d] == 1) continue;
        int r = ysh[d] != xsh[d];
        if (ns > 0 && red[ns - 1] == r) {
            size[ns - 1] *= xsh[d];
            continue;
        }
        size[ns] = xsh[d];
        red[ns] = r;
        ns++;
    }
    if (ns < 2) return ns == 1 && red[0] ? RP_ALL : RP_GENERIC;
    red2 s;
    int block;
    if (red[ns - 1] && ns <= 3 && (ns == 2 || red[0])) {
        int64_t A = ns == 3 ? size[0] : 1, C = size[ns - 2], B = size[ns - 1];
        s.m = C, s.len = A * B;
        s.ob = C, s.os1 = 0, s.os2 = B;
        s.jb = B, s.js1 = C * B, s.js2 = 1;
        block = s.len >= 256 || s.m < 4096;
        abc[0] = A, abc[1] = C, abc[2] = B;
    } else if (!red[ns - 1] && ns <= 3 && (ns == 2 || !red[0])) {
        int64_t A = ns == 3 ? size[0] : 1, R = size[ns - 2], B = size[ns - 1];
        s.m = A * B, s.len = R;
        s.ob = B, s.os1 = R * B, s.os2 = 1;
        s.jb = R, s.js1 = 0, s.js2 = B;
        block = s.m < 2048 && R > 64;
    } else {
        return RP_GENERIC;
    }
    s.splits = 1, s.chunk = s.len;
    *out = s;
    return block ? RP_BLOCK : RP_THREAD;
}
static int64_t red2_base(const red2 *s, int64_t o) {
    int64_t q = o / s->ob;
    return q * s->os1 + (o - q * s->ob) * s->os2;
}
static int64_t red2_off(const red2 *s, int64_t j) {
    int64_t q = j / s->jb;
    return q * s->js1 + (j - q * s->jb) * s->js2;
}
/* the generic kernels' sumto_base / sumto_roff */
static int64_t sumto_walk(const int64_t sh[4], const int64_t xst[4], int64_t o) {
    int64_t off = 0;
    for (int d = 3; d >= 0; d--) {
        off += (o % sh[d]) * xst[d];
        o /= sh[d];
    }
    return off;
}

/* y as the CUDA sum_to computes it (every path but lgc_sum_all, which is a
 * plain sum of everything); returns the path taken. */
static int emul_sum_to(double *y, const int64_t ysh[4], const float *x, const int64_t xsh[4]) {
    int64_t rsh[4], xst[4], m = 1, xn = 1, st = 1;
    for (int d = 3; d >= 0; d--) {
        rsh[d] = ysh[d] == xsh[d] ? 1 : xsh[d];
        xst[d] = st;
        st *= xsh[d];
        m *= ysh[d];
        xn *= xsh[d];
    }
    int64_t r = xn / m;
    if (r == 1) {
        for (int64_t o = 0; o < m; o++) y[o] = x[o];
        return -1;
    }
    red2 s;
    int64_t abc[3];
    int how = sum_to_plan(ysh, xsh, &s, abc);
    if (how == RP_ALL) {
        double t = 0;
        for (int64_t i = 0; i < xn; i++) t += x[i];
        y[0] = t;
        return how;
    }
    if (how == RP_BLOCK && abc[0] > 0) {
        chan_plan p = chan_plan_of(abc[0], abc[1], abc[2], 1);
        if (p.ok) {
            unsigned char *visits = calloc((size_t)xn, 1);
            emul_chan_sum(y, visits, x, &p);
            free(visits);
            return 10 + how;
        }
    }
    if (how == RP_THREAD) {
        for (int64_t o = 0; o < s.m; o++) {
            double acc = 0;
            for (int64_t j = 0; j < s.len; j++) acc += x[red2_base(&s, o) + red2_off(&s, j)];
            y[o] = acc;
        }
        return how;
    }
    if (how == RP_BLOCK) { /* launch_red2's split, k_red2_block, k_red2_finish */
        const int64_t target = 2 * 132;
        int64_t splits = 1;
        if (s.m < target && s.len >= 8192) {
            splits = (target + s.m - 1) / s.m;
            if (splits > s.len / 4096) splits = s.len / 4096;
            if (splits > 1024 / s.m) splits = 1024 / s.m;
            if (splits < 1) splits = 1;
        }
        s.splits = splits;
        s.chunk = (s.len + splits - 1) / splits;
        for (int64_t o = 0; o < s.m; o++) y[o] = 0;
        for (int64_t blk = 0; blk < s.m * splits; blk++) {
            int64_t o = blk / s.splits, k = blk - o * s.splits;
            int64_t j0 = k * s.chunk, j1 = j0 + s.chunk < s.len ? j0 + s.chunk : s.len;
            for (int64_t j = j0; j < j1; j++) y[o] += x[red2_base(&s, o) + red2_off(&s, j)];
        }
        return how;
    }
    /* generic: k_sumto_thread / k_sumto_block, the same per-output sums */
    for (int64_t o = 0; o < m; o++) {
        double acc = 0;
        for (int64_t j = 0; j < r; j++) acc += x[sumto_walk(ysh, xst, o) + sumto_walk(rsh, xst, j)];
        y[o] = acc;
    }
    return how;
}

static void check_sum_to(const int64_t xsh[4], const int64_t ysh[4], int *paths) {
    size_t xn = (size_t)(xsh[0] * xsh[1] * xsh[2] * xsh[3]);
    size_t yn = (size_t)(ysh[0] * ysh[1] * ysh[2] * ysh[3]);
    float *x = malloc(xn * sizeof *x), *yc = malloc(yn * sizeof *yc);
    double *y = malloc(yn * sizeof *y);
    for (size_t i = 0; i < xn; i++) x[i] = rint_val();
    lg_backend_cpu()->sum_to(yc, ysh, x, xsh);
    int how = emul_sum_to(y, ysh, x, xsh);
    paths[how < 0 ? 4 : how % 10]++;
    long wrong = 0;
    for (size_t i = 0; i < yn; i++) wrong += y[i] != (double)yc[i];
    CHECK(wrong == 0, "sum_to (%lld,%lld,%lld,%lld)->(%lld,%lld,%lld,%lld) path %d: %ld outputs differ from the CPU",
          (long long)xsh[0], (long long)xsh[1], (long long)xsh[2], (long long)xsh[3],
          (long long)ysh[0], (long long)ysh[1], (long long)ysh[2], (long long)ysh[3], how, wrong);
    free(x), free(yc), free(y);
}

static void test_sum_to_maps(void) {
    int paths[5] = {0, 0, 0, 0, 0};
    /* test_backend_cuda's cases (the largest with n scaled down) */
    static const int64_t cs[][2][4] = {
        {{4, 3, 5, 7}, {1, 3, 1, 1}},     {{4, 3, 5, 7}, {1, 3, 5, 7}},   {{4, 3, 5, 7}, {4, 1, 1, 1}},
        {{4, 3, 5, 7}, {1, 1, 1, 1}},     {{4, 3, 5, 7}, {4, 3, 1, 7}},   {{4, 3, 5, 7}, {1, 1, 5, 7}},
        {{64, 128, 8, 8}, {1, 128, 1, 1}}, {{64, 256, 4, 4}, {1, 256, 4, 4}}, {{1, 1, 300, 70}, {1, 1, 1, 70}},
        {{8, 256, 16, 16}, {1, 256, 1, 1}}, {{128, 3, 32, 32}, {1, 3, 1, 1}}, {{1, 64, 100, 64}, {1, 64, 1, 64}},
        {{1, 1, 5000, 3}, {1, 1, 1, 3}},   {{2, 3, 5, 7}, {2, 1, 5, 1}},   {{1, 3, 40000, 1}, {1, 3, 1, 1}},
        {{3, 1, 1, 70000}, {3, 1, 1, 1}},  {{64, 128, 4, 4}, {64, 128, 1, 1}}, {{7, 33, 5, 5}, {1, 33, 1, 1}},
        {{1, 70000, 2, 2}, {1, 70000, 1, 1}}, {{2, 1, 20000, 1}, {1, 1, 20000, 1}}, {{1, 2, 9000, 1}, {1, 2, 1, 1}},
    };
    for (size_t i = 0; i < sizeof cs / sizeof cs[0]; i++) check_sum_to(cs[i][0], cs[i][1], paths);
    static const int dims[] = {1, 2, 3, 5, 8, 17, 64, 300};
    for (int it = 0; it < 300; it++) {
        int64_t xsh[4], ysh[4];
        int64_t tot = 1;
        for (int d = 0; d < 4; d++) {
            xsh[d] = dims[rnd(8)];
            if (tot * xsh[d] > 200000) xsh[d] = 1;
            tot *= xsh[d];
            ysh[d] = rnd(2) ? xsh[d] : 1;
        }
        check_sum_to(xsh, ysh, paths);
    }
    CHECK(paths[RP_GENERIC] && paths[RP_ALL] && paths[RP_THREAD] && paths[RP_BLOCK],
          "sum_to paths: generic %d all %d thread %d block %d copy %d", paths[0], paths[1], paths[2],
          paths[3], paths[4]);
}

/* ---- cuda_elementwise.cu: k_upsample2x_v, k_sumpool2x2_v against the CPU ---- */
static void check_resample(int64_t nc, int64_t h, int64_t w) {
    const lg_backend *cpu = lg_backend_cpu();
    size_t n = (size_t)(nc * h * w);
    float *x = malloc(n * 4 * sizeof *x), *y = malloc(n * 4 * sizeof *y), *r = malloc(n * 4 * sizeof *r);
    for (size_t i = 0; i < 4 * n; i++) x[i] = rint_val();
    if (w % 2 == 0) { /* upsample: x (nc, h, w) -> (nc, 2h, 2w), pairs of x */
        unsigned npairs = (unsigned)(nc * h * w / 2);
        fastdiv wp = fdiv_make((unsigned)(w / 2));
        const unsigned ww = 2 * wp.d;
        for (size_t i = 0; i < 4 * n; i++) y[i] = NAN;
        for (unsigned q = 0; q < npairs; q++) {
            unsigned row = fdiv_div(q, wp), j = q - row * wp.d;
            float v0 = x[2 * q], v1 = x[2 * q + 1];
            float *y0 = y + (size_t)(2 * row) * (2 * ww);
            float o[4] = {v0, v0, v1, v1};
            memcpy(y0 + 4 * j, o, sizeof o);
            memcpy(y0 + 2 * ww + 4 * j, o, sizeof o);
        }
        cpu->upsample2x(r, x, nc, h, w);
        CHECK(memcmp(y, r, n * 4 * sizeof *y) == 0, "upsample2x_v nc%lld %lldx%lld differs",
              (long long)nc, (long long)h, (long long)w);
    }
    /* sumpool: x (nc, h, w) -> (nc, h/2, w/2), under lgc_sumpool2x2's
     * condition for the vector kernel (alignment aside) */
    size_t no = (size_t)(nc * (h / 2) * (w / 2));
    cpu->sumpool2x2(r, x, nc, h, w);
    if (w % 4 == 0 && h % 2 == 0) {
        unsigned npairs = (unsigned)(no / 2);
        fastdiv owp = fdiv_make((unsigned)(w / 4));
        const unsigned ww = 4 * owp.d;
        for (size_t i = 0; i < no; i++) y[i] = NAN;
        for (unsigned q = 0; q < npairs; q++) {
            unsigned row = fdiv_div(q, owp), j = q - row * owp.d;
            const float *a = x + (size_t)(2 * row) * ww + 4 * j, *b = a + ww;
            y[2 * q] = (a[0] + a[1]) + (b[0] + b[1]);
            y[2 * q + 1] = (a[2] + a[3]) + (b[2] + b[3]);
        }
        CHECK(memcmp(y, r, no * sizeof *y) == 0, "sumpool2x2_v nc%lld %lldx%lld differs",
              (long long)nc, (long long)h, (long long)w);
    }
    free(x), free(y), free(r);
}

static void test_resample_maps(void) {
    /* odd h with w % 4 == 0: the sum pool's vector path must not take it */
    static const int64_t cs[][3] = {{1, 1, 2}, {3, 5, 2},  {128, 16, 16}, {9, 4, 4}, {2, 2, 12},
                                    {5, 6, 8}, {7, 3, 10}, {64, 8, 8},    {4, 5, 8}, {3, 7, 12}};
    for (size_t i = 0; i < sizeof cs / sizeof cs[0]; i++) check_resample(cs[i][0], cs[i][1], cs[i][2]);
}

/* ---- cuda_linalg.cu: the im2col + cuBLAS convolution passes ----
 * lgc_im2col_conv2d, _bwd_data, _bwd_weight with their three layouts (1x1
 * direct, one gemm per image, one "wide" gemm per chunk of images for
 * ohw <= 256), the kernels k_im2col, k_col2im, k_swap01, and the cuBLAS
 * calls through a column-major reference. ws_target stands for WS_TARGET
 * (a small one forces chunks of images, and the weight gradient's beta = 1
 * accumulation). */
typedef struct cgeo {
    int64_t ckk, ohw, hw, bc;
    int direct;
} cgeo;
static cgeo geo_of(const lg_conv_geom *g, int64_t ws_target) {
    cgeo q;
    q.ckk = (int64_t)g->c * g->kh * g->kw;
    q.ohw = (int64_t)g->oh * g->ow;
    q.hw = (int64_t)g->h * g->w;
    int64_t per_img = (q.ckk + g->oc) * q.ohw;
    int64_t bc = per_img > 0 ? ws_target / per_img : g->n;
    if (bc < 1) bc = 1;
    if (bc > g->n) bc = g->n;
    q.bc = bc;
    q.direct = g->kh == 1 && g->kw == 1 && g->stride == 1 && g->pad == 0;
    return q;
}
/* cublasSgemmStridedBatched (column-major), alpha = 1 */
static void sgemm_cm(int ta, int tb, int m, int n, int k, const float *A, int lda, int64_t sa,
                     const float *B, int ldb, int64_t sb, float beta, float *C, int ldc, int64_t sc,
                     int batch) {
    CHECK(lda >= (ta ? k : m) && ldb >= (tb ? n : k) && ldc >= m, "gemm leading dims");
    for (int b = 0; b < batch; b++)
        for (int j = 0; j < n; j++)
            for (int i = 0; i < m; i++) {
                double acc = 0;
                for (int p = 0; p < k; p++) {
                    float av = ta ? A[b * sa + (int64_t)i * lda + p] : A[b * sa + (int64_t)p * lda + i];
                    float bv = tb ? B[b * sb + (int64_t)p * ldb + j] : B[b * sb + (int64_t)j * ldb + p];
                    acc += (double)av * bv;
                }
                float *c = C + b * sc + (int64_t)j * ldc + i;
                *c = (float)(acc + (beta != 0.0f ? (double)*c : 0.0));
            }
}
static void k_im2col(float *col, const float *x, lg_conv_geom g, int64_t nb, int64_t bs, int64_t rs) {
    int64_t ohw = (int64_t)g.oh * g.ow, kk = (int64_t)g.kh * g.kw;
    int64_t total = nb * g.c * kk * ohw;
    for (int64_t i = 0; i < total; i++) {
        int64_t p = i % ohw, t = i / ohw;
        int64_t r = t % (g.c * kk), b = t / (g.c * kk);
        int ci = (int)(r / kk), kij = (int)(r % kk);
        int ki = kij / g.kw, kj = kij % g.kw;
        int oy = (int)(p / g.ow), ox = (int)(p % g.ow);
        int iy = oy * g.stride - g.pad + ki, ix = ox * g.stride - g.pad + kj;
        float v = 0.0f;
        if (iy >= 0 && iy < g.h && ix >= 0 && ix < g.w)
            v = x[((b * g.c + ci) * g.h + iy) * (int64_t)g.w + ix];
        col[b * bs + r * rs + p] = v;
    }
}
static void k_col2im(float *dx, const float *dcol, lg_conv_geom g, int64_t nb, int64_t bs, int64_t rs) {
    int64_t total = nb * g.c * (int64_t)g.h * g.w;
    for (int64_t i = 0; i < total; i++) {
        int ix = (int)(i % g.w);
        int64_t t = i / g.w;
        int iy = (int)(t % g.h);
        t /= g.h;
        int ci = (int)(t % g.c);
        int64_t b = t / g.c;
        const float *dc = dcol + b * bs;
        float acc = 0.0f;
        for (int ki = 0; ki < g.kh; ki++) {
            int ty = iy + g.pad - ki;
            if (ty < 0 || ty % g.stride) continue;
            int oy = ty / g.stride;
            if (oy >= g.oh) continue;
            for (int kj = 0; kj < g.kw; kj++) {
                int tx = ix + g.pad - kj;
                if (tx < 0 || tx % g.stride) continue;
                int ox = tx / g.stride;
                if (ox >= g.ow) continue;
                int64_t r = ((int64_t)ci * g.kh + ki) * g.kw + kj;
                acc += dc[r * rs + (int64_t)oy * g.ow + ox];
            }
        }
        dx[i] = acc;
    }
}
static void k_swap01(float *out, const float *in, int64_t d0, int64_t d1, int64_t ohw) {
    int64_t total = d0 * d1 * ohw;
    for (int64_t i = 0; i < total; i++) {
        int64_t p = i % ohw, t = i / ohw;
        int64_t a = t % d0, b = t / d0;
        out[i] = in[(a * d1 + b) * ohw + p];
    }
}

static void emul_conv2d(float *y, const float *x, const float *w, const lg_conv_geom *g, float *ws,
                        int64_t wst, int wide) {
    cgeo q = geo_of(g, wst);
    int64_t xs = (int64_t)g->c * q.hw, ys = (int64_t)g->oc * q.ohw;
    if (q.direct) {
        sgemm_cm(0, 0, (int)q.ohw, g->oc, (int)q.ckk, x, (int)q.ohw, xs, w, (int)q.ckk, 0, 0.0f, y,
                 (int)q.ohw, ys, g->n);
        return;
    }
    if (wide) {
        float *col = ws, *yt = ws + q.bc * q.ckk * q.ohw;
        for (int64_t b0 = 0; b0 < g->n; b0 += q.bc) {
            int64_t nb = g->n - b0 < q.bc ? g->n - b0 : q.bc, kdim = nb * q.ohw;
            k_im2col(col, x + b0 * xs, *g, nb, q.ohw, kdim);
            sgemm_cm(0, 0, (int)kdim, g->oc, (int)q.ckk, col, (int)kdim, 0, w, (int)q.ckk, 0, 0.0f,
                     yt, (int)kdim, 0, 1);
            k_swap01(y + b0 * ys, yt, g->oc, nb, q.ohw);
        }
        return;
    }
    for (int64_t b0 = 0; b0 < g->n; b0 += q.bc) {
        int64_t nb = g->n - b0 < q.bc ? g->n - b0 : q.bc;
        k_im2col(ws, x + b0 * xs, *g, nb, q.ckk * q.ohw, q.ohw);
        sgemm_cm(0, 0, (int)q.ohw, g->oc, (int)q.ckk, ws, (int)q.ohw, q.ckk * q.ohw, w, (int)q.ckk,
                 0, 0.0f, y + b0 * ys, (int)q.ohw, ys, (int)nb);
    }
}

static void emul_bwd_data(float *dx, const float *dy, const float *w, const lg_conv_geom *g,
                          float *ws, int64_t wst, int wide) {
    cgeo q = geo_of(g, wst);
    int64_t xs = (int64_t)g->c * q.hw, ys = (int64_t)g->oc * q.ohw;
    if (q.direct) {
        sgemm_cm(0, 1, (int)q.ohw, (int)q.ckk, g->oc, dy, (int)q.ohw, ys, w, (int)q.ckk, 0, 0.0f, dx,
                 (int)q.ohw, xs, g->n);
        return;
    }
    if (wide && q.ohw > 0 && g->oc > 0) {
        float *dcol = ws, *dyt = ws + q.bc * q.ckk * q.ohw;
        for (int64_t b0 = 0; b0 < g->n; b0 += q.bc) {
            int64_t nb = g->n - b0 < q.bc ? g->n - b0 : q.bc, kdim = nb * q.ohw;
            k_swap01(dyt, dy + b0 * ys, nb, g->oc, q.ohw);
            sgemm_cm(0, 1, (int)kdim, (int)q.ckk, g->oc, dyt, (int)kdim, 0, w, (int)q.ckk, 0, 0.0f,
                     dcol, (int)kdim, 0, 1);
            k_col2im(dx + b0 * xs, dcol, *g, nb, q.ohw, kdim);
        }
        return;
    }
    for (int64_t b0 = 0; b0 < g->n; b0 += q.bc) {
        int64_t nb = g->n - b0 < q.bc ? g->n - b0 : q.bc;
        sgemm_cm(0, 1, (int)q.ohw, (int)q.ckk, g->oc, dy + b0 * ys, (int)q.ohw, ys, w, (int)q.ckk, 0,
                 0.0f, ws, (int)q.ohw, q.ckk * q.ohw, (int)nb);
        k_col2im(dx + b0 * xs, ws, *g, nb, q.ckk * q.ohw, q.ohw);
    }
}

static void emul_bwd_weight(float *dw, const float *x, const float *dy, const lg_conv_geom *g,
                            float *ws, int64_t wst) {
    cgeo q = geo_of(g, wst);
    int64_t xs = (int64_t)g->c * q.hw, ys = (int64_t)g->oc * q.ohw;
    float *col = ws, *dyt = ws + q.bc * q.ckk * q.ohw;
    for (int64_t b0 = 0; b0 < g->n; b0 += q.bc) {
        int64_t nb = g->n - b0 < q.bc ? g->n - b0 : q.bc;
        int64_t kdim = nb * q.ohw;
        const float *colp = col, *dyp = dy + b0 * ys;
        if (q.direct && nb == 1) colp = x + b0 * xs;
        else k_im2col(col, x + b0 * xs, *g, nb, q.ohw, kdim);
        if (nb > 1) {
            k_swap01(dyt, dyp, nb, g->oc, q.ohw);
            dyp = dyt;
        }
        sgemm_cm(1, 0, (int)q.ckk, g->oc, (int)kdim, colp, (int)kdim, 0, dyp, (int)kdim, 0,
                 b0 == 0 ? 0.0f : 1.0f, dw, (int)q.ckk, 0, 1);
    }
}

static void check_im2col(int n, int c, int h, int w, int oc, int k, int stride, int pad) {
    const lg_backend *cpu = lg_backend_cpu();
    lg_conv_geom g = {n, c, h, w, oc, k, k, stride, pad, lg_conv_out_size(h, k, stride, pad),
                      lg_conv_out_size(w, k, stride, pad)};
    size_t nx = (size_t)n * c * h * w, nw = (size_t)oc * c * k * k, ny = (size_t)n * oc * g.oh * g.ow;
    float *x = malloc(nx * 4), *wt = malloc(nw * 4), *dy = malloc(ny * 4);
    float *y = malloc(ny * 4), *dx = malloc(nx * 4), *dw = malloc(nw * 4);
    float *ry = malloc(ny * 4), *rdx = malloc(nx * 4), *rdw = malloc(nw * 4);
    float *cws = malloc((cpu->conv_workspace(&g) + 1) * 4);
    for (size_t i = 0; i < nx; i++) x[i] = rint_val();
    for (size_t i = 0; i < nw; i++) wt[i] = rint_val();
    for (size_t i = 0; i < ny; i++) dy[i] = rint_val();
    cpu->conv2d(ry, x, wt, &g, cws);
    cpu->conv2d_bwd_data(rdx, dy, wt, &g, cws);
    cpu->conv2d_bwd_weight(rdw, x, dy, &g, cws);
    /* the real target (whole batch per chunk) and a small one (chunks) */
    const int64_t targets[2] = {(int64_t)1 << 25, 5 * ((int64_t)c * k * k + oc) * g.oh * g.ow / 2};
    for (int ti = 0; ti < 2; ti++)
        for (int wide = 0; wide < 2; wide++) {
            cgeo q = geo_of(&g, targets[ti]);
            if (wide && q.ohw > 256) continue; /* lgc_im2col's wide() */
            size_t wsn = (size_t)(q.bc * (q.ckk + g.oc) * q.ohw); /* lgc_conv_workspace */
            float *ws = malloc((wsn + 1) * 4);
            for (size_t i = 0; i < wsn; i++) ws[i] = NAN;
            for (size_t i = 0; i < ny; i++) y[i] = NAN;
            for (size_t i = 0; i < nx; i++) dx[i] = NAN;
            for (size_t i = 0; i < nw; i++) dw[i] = NAN;
            emul_conv2d(y, x, wt, &g, ws, targets[ti], wide);
            emul_bwd_data(dx, dy, wt, &g, ws, targets[ti], wide);
            emul_bwd_weight(dw, x, dy, &g, ws, targets[ti]);
            char what[128];
            snprintf(what, sizeof what, "im2col n%d c%d %dx%d oc%d k%d s%d p%d, %lld per chunk%s", n,
                     c, h, w, oc, k, stride, pad, (long long)q.bc, wide ? ", wide" : "");
            char w1[160];
            snprintf(w1, sizeof w1, "%s: y", what);
            lg_test_close(y, ry, ny, 1e-4, 1e-5, w1);
            snprintf(w1, sizeof w1, "%s: dx", what);
            lg_test_close(dx, rdx, nx, 1e-4, 1e-5, w1);
            snprintf(w1, sizeof w1, "%s: dw", what);
            lg_test_close(dw, rdw, nw, 1e-4, 1e-5, w1);
            free(ws);
        }
    free(x), free(wt), free(dy), free(y), free(dx), free(dw), free(ry), free(rdx), free(rdw), free(cws);
}

static void test_im2col_maps(void) {
    /* test_backend_cuda's geometries, batch and channels scaled down */
    check_im2col(2, 3, 7, 9, 5, 3, 1, 1);
    check_im2col(3, 4, 8, 8, 6, 3, 2, 1);
    check_im2col(3, 6, 10, 11, 7, 3, 2, 0);
    check_im2col(1, 3, 5, 5, 2, 3, 1, 0);
    check_im2col(2, 5, 9, 7, 4, 1, 1, 0); /* 1x1 direct */
    check_im2col(1, 5, 9, 7, 4, 1, 1, 0);
    check_im2col(2, 3, 9, 9, 4, 1, 2, 0);
    check_im2col(3, 2, 6, 5, 3, 1, 1, 1);
    check_im2col(4, 3, 16, 16, 5, 4, 2, 1);
    check_im2col(5, 4, 13, 11, 3, 5, 3, 2);
    check_im2col(5, 6, 20, 18, 4, 3, 1, 1); /* ohw > 256: per-image gemms */
    check_im2col(7, 8, 4, 4, 8, 3, 1, 1);
}

int main(void) {
    rng = lg_test_rng_make(0xc0da);
    LG_TEST_RUN(test_fastdiv);
    LG_TEST_RUN(test_binary_maps);
    LG_TEST_RUN(test_chan_walk);
    LG_TEST_RUN(test_bn_parts);
    LG_TEST_RUN(test_sum_to_maps);
    LG_TEST_RUN(test_resample_maps);
    LG_TEST_RUN(test_im2col_maps);
    return lg_test_summary("test_cuda_emul");
}
