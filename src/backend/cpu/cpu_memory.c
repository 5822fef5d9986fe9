/* Memory kernels of the CPU backend: host memory, so upload/download are
 * copies and sync has nothing to wait for. */
#include <omp.h>
#include <stdlib.h>
#include <string.h>

#include "backend/cpu/cpu_internal.h"

void *lg_cpu_alloc(size_t bytes) {
    /* aligned_alloc wants a multiple of the alignment; never 0 so that a
     * zero-size tensor still gets a distinct, freeable pointer */
    size_t sz = bytes ? (bytes + 63) / 64 * 64 : 64;
    if (sz < bytes) return NULL; /* overflow */
    return aligned_alloc(64, sz);
}

void lg_cpu_free(void *p) { free(p); }

/* Large copies are split over threads: one core does not saturate memory
 * bandwidth. The chunks are disjoint, so the result is the same. */
#define COPY_PAR_MIN ((size_t)1 << 20)

void lg_cpu_copy(float *dst, const float *src, size_t n) {
    if (dst == src || n == 0) return;
    int nt = lg_cpu_nthreads();
    int overlap = dst < src + n && src < dst + n;
    if (n < COPY_PAR_MIN || nt == 1 || overlap) {
        memmove(dst, src, n * sizeof(float));
        return;
    }
#pragma omp parallel num_threads(nt)
    {
        size_t t = (size_t)omp_get_thread_num(), T = (size_t)omp_get_num_threads();
        size_t lo = n * t / T, hi = n * (t + 1) / T;
        memcpy(dst + lo, src + lo, (hi - lo) * sizeof(float));
    }
}

void lg_cpu_upload(float *dst, const float *src, size_t n) { lg_cpu_copy(dst, src, n); }

void lg_cpu_download(float *dst, const float *src, size_t n) { lg_cpu_copy(dst, src, n); }

void lg_cpu_fill(float *dst, float value, size_t n) {
    if (n == 0) return;
    int nt = lg_cpu_nthreads();
#pragma omp parallel for num_threads(nt) if (n >= COPY_PAR_MIN) schedule(static)
    for (size_t i = 0; i < n; i++) dst[i] = value;
}

void lg_cpu_sync(void) {}
