/* Timing helpers shared by the bench programs (header-only: each bench is
 * one program). */
#ifndef LIPGAN_BENCH_UTIL_H
#define LIPGAN_BENCH_UTIL_H

#include <stdlib.h>
#include <time.h>

/* Monotonic wall clock in milliseconds. */
static inline double bench_now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e3 + ts.tv_nsec * 1e-6;
}

static inline int bench_cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* Sorts t (n) in place and returns its median (the upper one for even n). */
static inline double bench_median(double *t, int n) {
    qsort(t, (size_t)n, sizeof *t, bench_cmp_double);
    return t[n / 2];
}

#endif
