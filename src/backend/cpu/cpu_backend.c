/* The CPU backend's table, its thread count, and the one-time OpenBLAS
 * setup. Kernels live in the other files of this directory. */
#include <cblas.h>
#include <omp.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "backend/cpu/cpu_internal.h"

int lg_cpu_threads_ = 1;

static pthread_once_t g_once = PTHREAD_ONCE_INIT;
static int g_threads_set = 0; /* lg_cpu_set_threads() was called */

/* OpenBLAS's runtime kernel selection (DYNAMIC_ARCH builds only; weak so
 * that a build without it still links). */
extern void gotoblas_dynamic_init(void) __attribute__((weak));
extern void gotoblas_dynamic_quit(void) __attribute__((weak));
extern char gotoblas_SKYLAKEX[] __attribute__((weak));
extern char gotoblas_HASWELL[] __attribute__((weak));

/* 2: AVX-512 kernels, 1: AVX2, 0: older or unknown */
static int core_rank(const char *name) {
    static const char *avx512[] = {"skylakex", "cooperlake", "sapphirerapids"};
    static const char *avx2[] = {"haswell", "zen"};
    for (size_t i = 0; i < sizeof avx512 / sizeof *avx512; i++)
        if (name && strcasecmp(name, avx512[i]) == 0) return 2;
    for (size_t i = 0; i < sizeof avx2 / sizeof *avx2; i++)
        if (name && strcasecmp(name, avx2[i]) == 0) return 1;
    return 0;
}

static void blas_select(const char *core) {
    setenv("OPENBLAS_CORETYPE", core, 1);
    gotoblas_dynamic_quit();
    gotoblas_dynamic_init();
    unsetenv("OPENBLAS_CORETYPE"); /* not inherited by child processes */
}

/* OpenBLAS 0.3.21 picks its kernels by CPU model, not by features: it maps
 * AMD Zen 4/5 to its AVX2 kernels and CPUs it does not know (e.g. a
 * virtual "Intel Xeon Processor") to SSE3 ones, 2-6x slower. Re-run its
 * selection with the core type the CPU's features allow (what the user
 * could do with OPENBLAS_CORETYPE), unless the user set OPENBLAS_CORETYPE.
 * Done once, before any of our BLAS calls. */
static void blas_retune(void) {
#if defined(__x86_64__)
    if (!gotoblas_dynamic_init || !gotoblas_dynamic_quit) return;
    if (getenv("OPENBLAS_CORETYPE")) return;
    __builtin_cpu_init();
    int want = 0;
    if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
        __builtin_cpu_supports("avx512dq") && __builtin_cpu_supports("avx512vl") &&
        gotoblas_SKYLAKEX)
        want = 2;
    else if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") && gotoblas_HASWELL)
        want = 1;
    char cur[64];
    snprintf(cur, sizeof cur, "%s", openblas_get_corename() ? openblas_get_corename() : "");
    if (core_rank(cur) >= want) return;
    blas_select(want == 2 ? "SkylakeX" : "Haswell");
    if (core_rank(openblas_get_corename()) != want && cur[0]) blas_select(cur); /* undo */
#endif
}

static const lg_backend g_cpu;
static const lg_backend *g_table; /* g_cpu, or its timing wrappers (LG_CPU_PROFILE) */

int lg_cpu_wino_off_ = 0;

static void cpu_init(void) {
    blas_retune();
    const char *wino = getenv("LG_CPU_WINO");
    lg_cpu_wino_off_ = wino && !strcmp(wino, "0");
    g_table = lg__cpu_profile_wrap(&g_cpu);
    if (!g_threads_set) {
        int t = omp_get_max_threads(); /* OMP_NUM_THREADS, else all cores */
        lg_cpu_threads_ = t > 0 ? t : 1;
    }
}

int lg_cpu_default_threads(void) {
    const char *env = getenv("OMP_NUM_THREADS");
    if (env && atoi(env) > 0) return atoi(env);
    int n = omp_get_num_procs();
    return n > 0 ? n : 1;
}

void lg_cpu_set_threads(int n) {
    pthread_once(&g_once, cpu_init);
    if (n <= 0) {
        g_threads_set = 0;
        n = lg_cpu_default_threads();
    } else {
        g_threads_set = 1;
    }
    lg_cpu_threads_ = n;
    openblas_set_num_threads(n); /* also sets OpenMP's default team size */
}

int lg_cpu_threads(void) {
    pthread_once(&g_once, cpu_init);
    return lg_cpu_threads_;
}

/* OpenBLAS (openmp build) keeps its own count (blas_cpu_number) and sets the
 * calling thread's OpenMP nthreads with it; a BLAS call re-syncs its count
 * from omp_get_max_threads(). So all three are saved, and set and put back
 * only where they differ: a scope of the count already in place costs a few
 * reads. */
lg_cpu_threads_saved lg_cpu_threads_push(int n) {
    pthread_once(&g_once, cpu_init);
    lg_cpu_threads_saved s = {lg_cpu_threads_, g_threads_set, omp_get_max_threads(),
                              openblas_get_num_threads(), 0};
    if (n < 1) n = 1;
    if (s.kernels == n && s.omp == n && s.blas == n) return s;
    s.changed = 1;
    lg_cpu_threads_ = n;
    g_threads_set = 1;
    if (s.omp != n || s.blas != n) openblas_set_num_threads(n); /* both */
    return s;
}

void lg_cpu_threads_pop(const lg_cpu_threads_saved *s) {
    if (!s->changed) return;
    lg_cpu_threads_ = s->kernels;
    g_threads_set = s->kernels_set;
    /* OpenBLAS's first (it sets OpenMP's too), then OpenMP's, which may differ */
    if (openblas_get_num_threads() != s->blas) openblas_set_num_threads(s->blas);
    if (omp_get_max_threads() != s->omp) omp_set_num_threads(s->omp);
}

static const lg_backend g_cpu = {
    .name = "cpu",
    .is_device = 0,
    .alloc = lg_cpu_alloc,
    .free = lg_cpu_free,
    .upload = lg_cpu_upload,
    .download = lg_cpu_download,
    .copy = lg_cpu_copy,
    .fill = lg_cpu_fill,
    .sync = lg_cpu_sync,
    .gemm = lg_cpu_gemm,
    .conv_workspace = lg_cpu_conv_workspace,
    .conv2d = lg_cpu_conv2d,
    .conv2d_bwd_data = lg_cpu_conv2d_bwd_data,
    .conv2d_bwd_weight = lg_cpu_conv2d_bwd_weight,
    .unary = lg_cpu_unary,
    .binary = lg_cpu_binary,
    .sum_to = lg_cpu_sum_to,
    .sum_all = lg_cpu_sum_all,
    .upsample2x = lg_cpu_upsample2x,
    .sumpool2x2 = lg_cpu_sumpool2x2,
    .bn_train = lg_cpu_bn_train,
    .bn_eval = lg_cpu_bn_eval,
    .bn_bwd = lg_cpu_bn_bwd,
    .dot = lg_cpu_dot,
    .normalize = lg_cpu_normalize,
    .adam = lg_cpu_adam,
    .all_finite = lg_cpu_all_finite,
    .adam_prep = lg_cpu_adam_prep,
    .adam_flagged = lg_cpu_adam_flagged,
    .cond_copy = lg_cpu_cond_copy,
    .flag_track = lg_cpu_flag_track,
    .bn_stats = lg_cpu_bn_stats,
    .bn_bwd_sums = lg_cpu_bn_bwd_sums,
    .bn_bwd_apply = lg_cpu_bn_bwd_apply,
};

const lg_backend *lg_backend_cpu(void) {
    pthread_once(&g_once, cpu_init);
    return g_table;
}
