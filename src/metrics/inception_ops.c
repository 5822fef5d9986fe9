/* Inference kernels of the Inception-v3 network on the host: conv (im2col +
 * sgemm) with folded BN and ReLU, the 3x3 stride-1 pools, bilinear resize.
 * One image at a time; the caller parallelizes over the batch. (The max
 * pool and the global average are inception_kern.h's element bodies.) */
#include <cblas.h>
#include <float.h>
#include <string.h>

#include "metrics/inception_kern.h"

/* col (IC*KH*KW, OH*OW): row (c, ki, kj) holds x[c, oy*sh - ph + ki,
 * ox*sw - pw + kj], zero outside the image. Handles asymmetric kernels and
 * paddings (1x7 with pad (0, 3), ...) since each dim has its own k, s, p. */
static void im2col(const float *x, int ic, int h, int w, int kh, int kw, int sh, int sw, int ph,
                   int pw, int oh, int ow, float *col) {
    for (int c = 0; c < ic; c++) {
        const float *xc = x + (size_t)c * h * w;
        for (int ki = 0; ki < kh; ki++) {
            for (int kj = 0; kj < kw; kj++) {
                float *row = col + ((size_t)(c * kh + ki) * kw + kj) * oh * ow;
                /* ox range whose ix = ox*sw - pw + kj lies in [0, w) */
                int ox0 = 0, ox1 = ow;
                while (ox0 < ow && ox0 * sw - pw + kj < 0) ox0++;
                while (ox1 > ox0 && (ox1 - 1) * sw - pw + kj >= w) ox1--;
                for (int oy = 0; oy < oh; oy++) {
                    float *r = row + (size_t)oy * ow;
                    int iy = oy * sh - ph + ki;
                    if (iy < 0 || iy >= h) {
                        memset(r, 0, sizeof(float) * (size_t)ow);
                        continue;
                    }
                    const float *xr = xc + (size_t)iy * w;
                    for (int ox = 0; ox < ox0; ox++) r[ox] = 0.0f;
                    if (sw == 1) {
                        memcpy(r + ox0, xr + ox0 - pw + kj, sizeof(float) * (size_t)(ox1 - ox0));
                    } else {
                        for (int ox = ox0; ox < ox1; ox++) r[ox] = xr[ox * sw - pw + kj];
                    }
                    for (int ox = ox1; ox < ow; ox++) r[ox] = 0.0f;
                }
            }
        }
    }
}

void lg_inc_conv_forward(const lg_inc_conv *cv, const float *x, int h, int w, float *y,
                         float *col, size_t col_cap) {
    int oh = lg_inc_out_dim(h, cv->kh, cv->sh, cv->ph);
    int ow = lg_inc_out_dim(w, cv->kw, cv->sw, cv->pw);
    int ohw = oh * ow;
    int k = cv->ic * cv->kh * cv->kw;
    const float *b = x; /* (K, OH*OW) */
    if (!(cv->kh == 1 && cv->kw == 1 && cv->sh == 1 && cv->sw == 1 && cv->ph == 0 && cv->pw == 0)) {
        LG_ASSERT((size_t)k * (size_t)ohw <= col_cap);
        im2col(x, cv->ic, h, w, cv->kh, cv->kw, cv->sh, cv->sw, cv->ph, cv->pw, oh, ow, col);
        b = col;
    }
    /* y (OC, OH*OW) = W (OC, K) * B (K, OH*OW) */
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, cv->oc, ohw, k, 1.0f, cv->w, k, b, ohw,
                0.0f, y, ohw);
    for (int o = 0; o < cv->oc; o++) {
        float bias = cv->b[o];
        float *yo = y + (size_t)o * ohw;
        for (int i = 0; i < ohw; i++) {
            float v = yo[i] + bias;
            yo[i] = v > 0.0f ? v : 0.0f;
        }
    }
}

/* Separably: per output row, the column sums (or maxima) over the
 * window's in-image rows into t (W), then the sums over each window's
 * in-image columns of t. Both loops vectorize; summing each window
 * element by element instead took 12% of the network's time. */
#define POOL_MAXW 512
void lg_inc_pool3s1(const float *x, int c, int h, int w, lg_inc_pool mode, float *y) {
    LG_ASSERT(w <= POOL_MAXW);
    float t[POOL_MAXW + 2]; /* t[1 + ix]: the column reduction of input column ix */
    const int mx = mode == LG_INC_MAX;
    for (int ch = 0; ch < c; ch++) {
        const float *xc = x + (size_t)ch * h * w;
        float *yc = y + (size_t)ch * h * w;
        for (int oy = 0; oy < h; oy++) {
            int y0 = oy > 0 ? oy - 1 : 0, y1 = oy + 1 < h ? oy + 1 : h - 1;
            const float *r = xc + (size_t)y0 * w;
            for (int ix = 0; ix < w; ix++) t[1 + ix] = r[ix];
            for (int iy = y0 + 1; iy <= y1; iy++) {
                r = xc + (size_t)iy * w;
                if (mx)
                    for (int ix = 0; ix < w; ix++) t[1 + ix] = r[ix] > t[1 + ix] ? r[ix] : t[1 + ix];
                else
                    for (int ix = 0; ix < w; ix++) t[1 + ix] += r[ix];
            }
            /* out-of-image columns: the identity of the reduction */
            t[0] = t[w + 1] = mx ? -FLT_MAX : 0.0f;
            float *o = yc + (size_t)oy * w;
            if (mx) {
                for (int ox = 0; ox < w; ox++) {
                    float m = t[ox] > t[ox + 1] ? t[ox] : t[ox + 1];
                    o[ox] = t[ox + 2] > m ? t[ox + 2] : m;
                }
            } else {
                for (int ox = 0; ox < w; ox++) o[ox] = (t[ox] + t[ox + 1]) + t[ox + 2];
                if (mode == LG_INC_AVG_INCL_PAD) {
                    for (int ox = 0; ox < w; ox++) o[ox] /= 9.0f;
                } else { /* the window's in-image count */
                    float rows = (float)(y1 - y0 + 1);
                    for (int ox = 0; ox < w; ox++) {
                        int x0 = ox > 0 ? ox - 1 : 0, x1 = ox + 1 < w ? ox + 1 : w - 1;
                        o[ox] /= rows * (float)(x1 - x0 + 1);
                    }
                }
            }
        }
    }
}

void lg_inception_resize(const float *x, int c, int h, int w, int oh, int ow, float *y) {
    for (int ch = 0; ch < c; ch++) {
        const float *xc = x + (size_t)ch * h * w;
        float *yc = y + (size_t)ch * oh * ow;
        for (int oy = 0; oy < oh; oy++) {
            int y0, y1;
            float ly0, ly1;
            lg_inc_lin_coeffs(h, oh, oy, &y0, &y1, &ly0, &ly1);
            const float *r0 = xc + (size_t)y0 * w, *r1 = xc + (size_t)y1 * w;
            for (int ox = 0; ox < ow; ox++) {
                int x0, x1;
                float lx0, lx1;
                lg_inc_lin_coeffs(w, ow, ox, &x0, &x1, &lx0, &lx1);
                yc[(size_t)oy * ow + ox] =
                    ly0 * (lx0 * r0[x0] + lx1 * r0[x1]) + ly1 * (lx0 * r1[x0] + lx1 * r1[x1]);
            }
        }
    }
}
