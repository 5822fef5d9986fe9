/* Where SR-GAN's SVD should run on a GPU (issue 7). lg_sr_apply has two
 * paths: the host one (download, full SVD in double with LAPACK dgesdd,
 * reconstruction with dgemm, upload) and, on a backend with an `svd` entry
 * and for weights of at least 65536 entries, the device one (cuSOLVER
 * float gesvd, scale, cuBLAS gemm). This times, for the weight matrices of
 * the SN-GAN CIFAR-10 networks (rows = output channels, cols = in*kh*kw):
 * the SR step on the CUDA backend (whichever path it takes), the host path
 * alone (the same step on the CPU backend), and cuSOLVER's gesvd alone in
 * double and float (the factorization without reconstruction).
 * Prints one row per shape: median ms of `--reps` runs each.
 *
 *   build/bench/bench_sr_svd [--reps N]     (needs a CUDA build and a GPU) */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "bench_util.h"
#include "lipgan/backend.h"
#include "lipgan/lipschitz.h"
#ifdef LG_HAVE_CUDA
#include <cuda_runtime.h>
#include <cusolverDn.h>

#include "lipgan/cuda.h"
#endif

#ifdef LG_HAVE_CUDA
/* cuSOLVER gesvd (U and V^T, "S" vectors) of an m x n column-major matrix
 * with m >= n (the cost of A and A^T is the same, so the taller side goes
 * first); median ms over reps, events around the call only. */
static double cusolver_ms(cusolverDnHandle_t h, int m, int n, int dbl, int reps) {
    size_t es = dbl ? sizeof(double) : sizeof(float);
    void *a, *a0, *s, *u, *vt, *work;
    int *info, lwork = 0;
    cudaMalloc(&a, (size_t)m * n * es);
    cudaMalloc(&a0, (size_t)m * n * es);
    cudaMalloc(&s, (size_t)n * es);
    cudaMalloc(&u, (size_t)m * n * es);
    cudaMalloc(&vt, (size_t)n * n * es);
    cudaMalloc((void **)&info, sizeof(int));
    /* random entries (a fixed LCG), uploaded once */
    size_t cnt = (size_t)m * n;
    void *hbuf = malloc(cnt * es);
    unsigned st = 7;
    for (size_t i = 0; i < cnt; i++) {
        st = st * 1664525u + 1013904223u;
        double v = (double)(st >> 8) / 16777216.0 - 0.5;
        if (dbl) ((double *)hbuf)[i] = v;
        else ((float *)hbuf)[i] = (float)v;
    }
    cudaMemcpy(a0, hbuf, cnt * es, cudaMemcpyHostToDevice);
    free(hbuf);
    if (dbl) cusolverDnDgesvd_bufferSize(h, m, n, &lwork);
    else cusolverDnSgesvd_bufferSize(h, m, n, &lwork);
    cudaMalloc(&work, (size_t)lwork * es);
    cudaEvent_t e0, e1;
    cudaEventCreate(&e0);
    cudaEventCreate(&e1);
    double *t = malloc((size_t)reps * sizeof *t);
    int ok = 1;
    for (int r = 0; r < reps + 1; r++) {
        cudaMemcpy(a, a0, cnt * es, cudaMemcpyDeviceToDevice); /* gesvd overwrites a */
        cudaEventRecord(e0, 0);
        cusolverStatus_t cs =
            dbl ? cusolverDnDgesvd(h, 'S', 'S', m, n, a, m, s, u, m, vt, n, work, lwork, NULL, info)
                : cusolverDnSgesvd(h, 'S', 'S', m, n, a, m, s, u, m, vt, n, work, lwork, NULL, info);
        cudaEventRecord(e1, 0);
        cudaEventSynchronize(e1);
        float ms = 0;
        cudaEventElapsedTime(&ms, e0, e1);
        if (cs != CUSOLVER_STATUS_SUCCESS) ok = 0;
        if (r > 0) t[r - 1] = ms; /* the first call loads kernels */
    }
    double med = ok ? bench_median(t, reps) : -1.0;
    free(t);
    cudaEventDestroy(e0);
    cudaEventDestroy(e1);
    cudaFree(a);
    cudaFree(a0);
    cudaFree(s);
    cudaFree(u);
    cudaFree(vt);
    cudaFree(work);
    cudaFree(info);
    return med;
}
#endif

int main(int argc, char **argv) {
    int reps = 20;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--reps") && i + 1 < argc) reps = atoi(argv[++i]);
        else {
            fprintf(stderr, "usage: bench_sr_svd [--reps N]\n");
            return 2;
        }
    }
    if (reps < 1) reps = 1;
#ifndef LG_HAVE_CUDA
    printf("# bench_sr_svd: this build has no CUDA; nothing to compare\n");
    return 0;
#else
    const lg_backend *be = lg_backend_cuda();
    if (!be) {
        fprintf(stderr, "bench_sr_svd: %s\n", lg_error_msg());
        return 1;
    }
    cusolverDnHandle_t h;
    if (cusolverDnCreate(&h) != CUSOLVER_STATUS_SUCCESS) {
        fprintf(stderr, "bench_sr_svd: cusolverDnCreate failed\n");
        return 1;
    }
    /* (out, in, kh, kw) of the SN-GAN CIFAR-10 D (width 128) and G (256) */
    static const int shapes[][4] = {{128, 3, 3, 3},   {128, 128, 3, 3}, {128, 3, 1, 1},
                                    {128, 128, 1, 1}, {256, 256, 3, 3}, {3, 256, 3, 3}};
    printf("# SR step on cuda (path it takes), on the cpu backend (host LAPACK), and cuSOLVER "
           "gesvd alone; median of %d, ms\n", reps);
    printf("%-16s %6s %12s %12s %14s %14s\n", "weight", "path", "SR on cuda", "SR host",
           "cusolver D", "cusolver S");
    for (size_t k = 0; k < sizeof shapes / sizeof shapes[0]; k++) {
        int64_t sh[4] = {shapes[k][0], shapes[k][1], shapes[k][2], shapes[k][3]};
        int rows = shapes[k][0], cols = shapes[k][1] * shapes[k][2] * shapes[k][3];
        size_t n = (size_t)rows * cols;
        float *hw = malloc(n * sizeof *hw);
        unsigned st = 3;
        for (size_t i = 0; i < n; i++) {
            st = st * 1664525u + 1013904223u;
            hw[i] = (float)((double)(st >> 8) / 16777216.0 - 0.5);
        }
        float *w = (float *)be->alloc(n * sizeof(float));
        double *t = malloc((size_t)reps * sizeof *t);
        int ok = 1;
        for (int r = 0; r < reps + 1; r++) {
            be->upload(w, hw, n);
            be->sync();
            double t0 = bench_now_ms();
            if (lg_sr_apply(be, w, 4, sh, 0, 0.5f, 0, NULL) != LG_OK) ok = 0;
            be->sync();
            if (r > 0) t[r - 1] = bench_now_ms() - t0;
        }
        double dev = ok ? bench_median(t, reps) : -1.0;
        float *hc = malloc(n * sizeof *hc);
        ok = 1;
        for (int r = 0; r < reps; r++) {
            memcpy(hc, hw, n * sizeof *hc);
            double t0 = bench_now_ms();
            if (lg_sr_apply(lg_backend_cpu(), hc, 4, sh, 0, 0.5f, 0, NULL) != LG_OK) ok = 0;
            t[r] = bench_now_ms() - t0;
        }
        double host = ok ? bench_median(t, reps) : -1.0;
        free(hc);
        int mm = rows > cols ? rows : cols, nn = rows > cols ? cols : rows;
        double cd = cusolver_ms(h, mm, nn, 1, reps), cf = cusolver_ms(h, mm, nn, 0, reps);
        char name[32];
        snprintf(name, sizeof name, "%dx%d", rows, cols);
        const char *path = rows <= cols && rows * cols >= 65536 ? "device" : "host";
        printf("%-16s %6s %12.3f %12.3f %14.3f %14.3f\n", name, path, dev, host, cd, cf);
        be->free(w);
        free(hw);
        free(t);
    }
    cusolverDnDestroy(h);
    return 0;
#endif
}
