/* LG_CPU_WINO=0: the CPU backend's dispatch takes no Winograd kernel, so
 * every convolution runs as im2col + SGEMM (what bench/conv.sh compares
 * the dispatch with), and those still give the right answer. */
#include <stdlib.h>

#include "backend/cpu/cpu_internal.h" /* lg_cpu_conv_algo_of */
#include "lg_test.h"
#include "lipgan/backend.h"
#include "lipgan/backend_cpu.h"

/* Geometries the dispatch gives Winograd without the variable
 * (test_backend_cpu's test_conv_dispatch): n, c, h, oc, k, stride. */
static const int geoms[][6] = {
    {128, 64, 32, 64, 4, 2},  /* F(4x4,2x2) s2 */
    {128, 64, 16, 128, 3, 1}, /* F(4x4,3x3) */
    {64, 64, 32, 3, 3, 1},    /* F(2x2,3x3) */
    {4, 16, 8, 16, 3, 1},     /* F(4x4,3x3), small enough to check below */
    {6, 16, 32, 8, 4, 2},     /* F(4x4,2x2) s2, likewise */
};

static lg_conv_geom geom(const int *q) {
    lg_conv_geom g = {.n = q[0],
                      .c = q[1],
                      .h = q[2],
                      .w = q[2],
                      .oc = q[3],
                      .kh = q[4],
                      .kw = q[4],
                      .stride = q[5],
                      .pad = 1};
    g.oh = g.ow = lg_conv_out_size(g.h, g.kh, g.stride, g.pad);
    return g;
}

static void test_all_im2col(void) {
    for (int t = 1; t <= 3; t++) {
        lg_cpu_set_threads(t);
        for (size_t i = 0; i < sizeof geoms / sizeof geoms[0]; i++) {
            lg_conv_geom g = geom(geoms[i]);
            lg_cpu_conv_algo a = lg_cpu_conv_algo_of(&g);
            CHECK(a == LG_CPU_CONV_IM2COL, "geometry %zu at %d threads: %s under LG_CPU_WINO=0", i,
                  t, lg_cpu_conv_algo_name(a));
        }
    }
    lg_cpu_set_threads(0);
}

/* The forward of the last two through the table, against a double sum. */
static void test_results(void) {
    const lg_backend *be = lg_backend_cpu();
    lg_test_rng r = lg_test_rng_make(21);
    for (size_t i = 3; i < sizeof geoms / sizeof geoms[0]; i++) {
        lg_conv_geom g = geom(geoms[i]);
        size_t nx = (size_t)g.n * g.c * g.h * g.w, nw = (size_t)g.oc * g.c * g.kh * g.kw;
        size_t ny = (size_t)g.n * g.oc * g.oh * g.ow;
        float *x = malloc(nx * sizeof(float)), *w = malloc(nw * sizeof(float));
        float *y = malloc(ny * sizeof(float)), *ref = malloc(ny * sizeof(float));
        float *ws = malloc(be->conv_workspace(&g) * sizeof(float));
        lg_test_fill_uniform(&r, x, nx, -1, 1);
        lg_test_fill_uniform(&r, w, nw, -1, 1);
        be->conv2d(y, x, w, &g, ws);
        for (int n = 0; n < g.n; n++)
            for (int o = 0; o < g.oc; o++)
                for (int oy = 0; oy < g.oh; oy++)
                    for (int ox = 0; ox < g.ow; ox++) {
                        double s = 0;
                        for (int c = 0; c < g.c; c++)
                            for (int ki = 0; ki < g.kh; ki++)
                                for (int kj = 0; kj < g.kw; kj++) {
                                    int iy = oy * g.stride - g.pad + ki;
                                    int ix = ox * g.stride - g.pad + kj;
                                    if (iy < 0 || iy >= g.h || ix < 0 || ix >= g.w) continue;
                                    s += (double)x[((n * g.c + c) * g.h + iy) * g.w + ix] *
                                         w[((o * g.c + c) * g.kh + ki) * g.kw + kj];
                                }
                        ref[((n * g.oc + o) * g.oh + oy) * g.ow + ox] = (float)s;
                    }
        /* im2col's bar in test_backend_cpu (terms per output) */
        lg_test_close(y, ref, ny, 2e-6 * (g.c * g.kh * g.kw + g.oc), 1e-5,
                      "conv2d under LG_CPU_WINO=0");
        free(x), free(w), free(y), free(ref), free(ws);
    }
}

int main(void) {
    /* before anything initializes the backend: it reads the variable once */
    setenv("LG_CPU_WINO", "0", 1);
    LG_TEST_RUN(test_all_im2col);
    LG_TEST_RUN(test_results);
    return lg_test_summary("test_cpu_wino_off");
}
