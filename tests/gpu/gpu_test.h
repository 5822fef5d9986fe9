/* Start-up shared by the GPU test programs (header-only; tests/gpu/pack.sh
 * builds each program from one source). */
#ifndef LIPGAN_TESTS_GPU_TEST_H
#define LIPGAN_TESTS_GPU_TEST_H

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lg_test.h"
#include "lipgan/backend.h"
#ifdef LG_HAVE_CUDA
#include "lipgan/cuda.h"
#endif

/* The CUDA backend, or NULL after printing why: then the program exits
 * with *rc, 0 (skip) or, with LG_REQUIRE_CUDA set to a nonzero number, 1. */
static inline const lg_backend *gpu_test_backend(const char *prog, int *rc) {
    const lg_backend *be = lg_backend_cuda();
    if (be) return be;
    const char *req = getenv("LG_REQUIRE_CUDA");
    int required = req && atoi(req) != 0;
    printf("%s: SKIP (%s)%s\n", prog, lg_error_msg(),
           required ? ", but LG_REQUIRE_CUDA=1: failing" : "");
    *rc = required ? 1 : 0;
    return NULL;
}

/* Normalized squared error sum (a-b)^2 / sum b^2 (the plain sum when b is
 * all zero), in double; INFINITY if either side holds a non-finite value. */
static inline double gpu_test_nmse(const float *a, const float *b, size_t n) {
    double num = 0, den = 0;
    for (size_t i = 0; i < n; i++) {
        if (!isfinite(a[i]) || !isfinite(b[i])) return INFINITY;
        double d = (double)a[i] - b[i];
        num += d * d;
        den += (double)b[i] * b[i];
    }
    return den > 0 ? num / den : num;
}

/* LG_TEST_SEED (fresh inputs on demand), else `fallback`. */
static inline uint64_t gpu_test_seed(uint64_t fallback) {
    const char *s = getenv("LG_TEST_SEED");
    return s ? strtoull(s, NULL, 0) : fallback;
}

/* Prints how convolutions run; with LG_REQUIRE_CUDNN=1 not using cuDNN is
 * a failure. Returns whether cuDNN is in use. */
static inline int gpu_test_cudnn(const char *indent) {
#ifdef LG_HAVE_CUDA
    const char *req = getenv("LG_REQUIRE_CUDNN");
    int have = lg_cuda_cudnn();
    printf("%sconvolutions: %s\n", indent, lg_cuda_cudnn_info());
    CHECK(have || !(req && !strcmp(req, "1")), "LG_REQUIRE_CUDNN=1 but cuDNN is not in use: %s",
          lg_cuda_cudnn_info());
    return have;
#else
    (void)indent;
    return 0;
#endif
}

#endif
