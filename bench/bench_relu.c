/* lipgan side of the ReLU-fusion benchmark: a layer's bias add + ReLU and
 * ReLU's backward, each as the two kernels lipgan used before and as the
 * one fused kernel it uses now, through the backend table, on the SN-GAN
 * ResNet's largest activation shapes. Prints `lipgan <case> <median ms>`;
 * bench/torch_relu.py times PyTorch's kernels for the same work and
 * bench/relu.sh prints both side by side.
 *
 *   build/bench/bench_relu [--reps N] [--device cpu|cuda]
 *
 * Cases per shape (n, c, h, w):
 *   bias_relu_2k   y = x + b (broadcast add), then y = relu(y)    (before)
 *   bias_relu      y = relu(x + b) in one pass (LG_B_ADD_RELU)    (now)
 *   relu_bwd_2k    m = step(x), then dx = g * m                   (before)
 *   relu_bwd       dx = g * (x > 0) in one pass (LG_B_RELU_MASK)  (now) */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench_util.h"
#include "lipgan/backend.h"

static const lg_backend *be;

static double time_case(int which, int reps, float *y, float *m, const float *x,
                        const float *g, const float *b, const int64_t ys[4],
                        const int64_t bs[4]) {
    size_t n = (size_t)(ys[0] * ys[1] * ys[2] * ys[3]);
    double *t = malloc(sizeof(double) * (size_t)reps);
    for (int r = -1; r < reps; r++) { /* r = -1: warm-up */
        be->sync();
        double t0 = bench_now_ms();
        switch (which) {
        case 0:
            be->binary(LG_B_ADD, y, ys, x, ys, b, bs);
            be->unary(LG_U_RELU, y, y, n, 0.0f);
            break;
        case 1: be->binary(LG_B_ADD_RELU, y, ys, x, ys, b, bs); break;
        case 2:
            be->unary(LG_U_STEP, m, x, n, 0.0f);
            be->binary(LG_B_MUL, y, ys, g, ys, m, ys);
            break;
        default: be->binary(LG_B_RELU_MASK, y, ys, g, ys, x, ys); break;
        }
        be->sync();
        if (r >= 0) t[r] = bench_now_ms() - t0;
    }
    double med = bench_median(t, reps);
    free(t);
    return med;
}

int main(int argc, char **argv) {
    int reps = 15;
    const char *dev = "cpu";
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--reps") && i + 1 < argc) reps = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--device") && i + 1 < argc) dev = argv[++i];
        else {
            fprintf(stderr, "usage: bench_relu [--reps N] [--device cpu|cuda]\n");
            return 2;
        }
    }
    if (reps < 1) reps = 1;
    if (lg_backend_get(dev, &be) != LG_OK) {
        fprintf(stderr, "bench_relu: %s\n", lg_error_msg());
        return 1;
    }
    /* D block1 at batch 128 ([real; fake]), G's last block at batch 128 */
    static const int64_t shapes[2][4] = {{128, 128, 32, 32}, {128, 256, 32, 32}};
    static const char *names[4] = {"bias_relu_2k", "bias_relu", "relu_bwd_2k", "relu_bwd"};
    for (int s = 0; s < 2; s++) {
        const int64_t *ys = shapes[s];
        int64_t bs[4] = {1, ys[1], 1, 1};
        size_t n = (size_t)(ys[0] * ys[1] * ys[2] * ys[3]);
        float *h = malloc(n * sizeof(float)), *hb = malloc((size_t)ys[1] * sizeof(float));
        unsigned long long q = 88172645463325252ull; /* xorshift: signs half and half */
        for (size_t i = 0; i < n; i++) {
            q ^= q << 13, q ^= q >> 7, q ^= q << 17;
            h[i] = (float)((double)(q >> 11) / 9007199254740992.0) - 0.5f;
        }
        for (int64_t c = 0; c < ys[1]; c++) hb[c] = 0.001f * (float)c - 0.05f;
        float *x = be->alloc(n * 4), *g = be->alloc(n * 4), *y = be->alloc(n * 4);
        float *m = be->alloc(n * 4), *b = be->alloc((size_t)ys[1] * 4);
        if (!x || !g || !y || !m || !b) {
            fprintf(stderr, "bench_relu: out of %s memory\n", dev);
            return 1;
        }
        be->upload(x, h, n);
        for (size_t i = 0; i < n; i++) h[i] *= 0.3f;
        be->upload(g, h, n);
        be->upload(b, hb, (size_t)ys[1]);
        for (int k = 0; k < 4; k++)
            printf("lipgan %s_%lldx%lldx%lldx%lld %.3f\n", names[k], (long long)ys[0],
                   (long long)ys[1], (long long)ys[2], (long long)ys[3],
                   time_case(k, reps, y, m, x, g, b, ys, bs));
        be->free(x), be->free(g), be->free(y), be->free(m), be->free(b);
        free(h);
        free(hb);
    }
    return 0;
}
