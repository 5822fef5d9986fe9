/* lipgan side of the convolution benchmark: each pass of each convolution
 * of the standard CNN (Miyato et al. 2018, lipgan's `cnn` at width 64)
 * through the backend table, so with the algorithm its dispatch picks
 * (im2col + SGEMM, Winograd F(4x4,3x3)/F(2x2,3x3), or F(4x4,2x2) on the
 * polyphase form of the 4x4 stride-2 ones; LG_CPU_WINO=0 forces im2col).
 * Prints `lipgan <case> <median ms>`; bench/torch_conv.py times PyTorch on
 * the same cases and bench/conv.sh prints them side by side.
 *
 *   build/bench/bench_conv [--reps N] [--only SUBSTRING]
 *
 * Case names: <layer>_n<batch>_<pass>, pass fwd, bwd_data or bwd_weight.
 * G's transposed convs are listed as the conv whose bwd_data is their
 * forward (dc1: a conv 256 -> 512 at 8x8, stride 2). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench_util.h"
#include "lipgan/backend.h"
#include "lipgan/backend_cpu.h"

/* name, n, c, h, oc, k, stride, pad (square images) */
typedef struct conv_case {
    const char *name;
    int n, c, h, oc, k, s, p;
} conv_case;

static const conv_case cases[] = {
    /* D at batch 128 (real and fake), its 4x4 stride-2 layers and three of its 3x3 ones */
    {"d_c0_1_64x32_k4s2", 128, 64, 32, 64, 4, 2, 1},
    {"d_c1_1_128x16_k4s2", 128, 128, 16, 128, 4, 2, 1},
    {"d_c2_1_256x8_k4s2", 128, 256, 8, 256, 4, 2, 1},
    {"d_c1_0_64x16_k3", 128, 64, 16, 128, 3, 1, 1},
    {"d_c2_0_128x8_k3", 128, 128, 8, 256, 3, 1, 1},
    {"d_c3_0_256x4_k3", 128, 256, 4, 512, 3, 1, 1},
    /* G's transposed convs at batch 64 (the D updates' fakes), its last conv */
    {"g_dc1_256x8_k4s2", 64, 256, 8, 512, 4, 2, 1},
    {"g_dc2_128x16_k4s2", 64, 128, 16, 256, 4, 2, 1},
    {"g_dc3_64x32_k4s2", 64, 64, 32, 128, 4, 2, 1},
    {"g_c4_64x32_k3_oc3", 64, 64, 32, 3, 3, 1, 1},
    /* one image: the Toeplitz power iteration on D's first stride-2 layer */
    {"toeplitz_c0_1_64x32_k4s2", 1, 64, 32, 64, 4, 2, 1},
};

static float *filled(size_t n, unsigned long long seed) {
    float *h = malloc(n * sizeof(float));
    if (!h) return NULL;
    unsigned long long q = seed;
    for (size_t i = 0; i < n; i++) {
        q ^= q << 13, q ^= q >> 7, q ^= q << 17;
        h[i] = (float)((double)(q >> 11) / 9007199254740992.0) - 0.5f;
    }
    return h;
}

int main(int argc, char **argv) {
    int reps = 7;
    const char *only = NULL;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--reps") && i + 1 < argc) reps = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--only") && i + 1 < argc) only = argv[++i];
        else {
            fprintf(stderr, "usage: bench_conv [--reps N] [--only SUBSTRING]\n");
            return 2;
        }
    }
    if (reps < 1) reps = 1;
    const lg_backend *be = lg_backend_cpu();
    for (size_t ci = 0; ci < sizeof cases / sizeof cases[0]; ci++) {
        const conv_case *cc = &cases[ci];
        if (only && !strstr(cc->name, only)) continue;
        lg_conv_geom g = {cc->n, cc->c, cc->h, cc->h, cc->oc, cc->k, cc->k, cc->s, cc->p, 0, 0};
        g.oh = g.ow = (cc->h + 2 * cc->p - cc->k) / cc->s + 1;
        size_t nx = (size_t)g.n * g.c * g.h * g.w, ny = (size_t)g.n * g.oc * g.oh * g.ow;
        size_t nw = (size_t)g.oc * g.c * g.kh * g.kw, nws = be->conv_workspace(&g);
        float *x = filled(nx, 88172645463325252ull), *dy = filled(ny, 1234567ull);
        float *w = filled(nw, 987654321ull), *y = malloc(ny * sizeof(float));
        float *dx = malloc(nx * sizeof(float)), *dw = malloc(nw * sizeof(float));
        float *ws = malloc(nws * sizeof(float));
        double *t = malloc(sizeof(double) * (size_t)reps);
        if (!x || !dy || !w || !y || !dx || !dw || !ws || !t) {
            fprintf(stderr, "bench_conv: out of memory for %s\n", cc->name);
            free(x), free(dy), free(w), free(y), free(dx), free(dw), free(ws), free(t);
            return 1;
        }
        static const char *pass[3] = {"fwd", "bwd_data", "bwd_weight"};
        for (int ps = 0; ps < 3; ps++) {
            for (int r = -1; r < reps; r++) { /* r = -1: warm-up */
                double t0 = bench_now_ms();
                if (ps == 0) be->conv2d(y, x, w, &g, ws);
                else if (ps == 1) be->conv2d_bwd_data(dx, dy, w, &g, ws);
                else be->conv2d_bwd_weight(dw, x, dy, &g, ws);
                if (r >= 0) t[r] = bench_now_ms() - t0;
            }
            printf("lipgan %s_n%d_%s %.3f\n", cc->name, cc->n, pass[ps], bench_median(t, reps));
            fflush(stdout);
        }
        free(x), free(dy), free(w), free(y), free(dx), free(dw), free(ws), free(t);
    }
    return 0;
}
