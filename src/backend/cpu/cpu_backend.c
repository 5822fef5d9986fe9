/* The CPU backend's table, its thread count, and the one-time OpenBLAS
 * setup. Kernels live in the other files of this directory. */
#include <cblas.h>
#include <omp.h>
#include <pthread.h>
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

/* OpenBLAS 0.3.21 maps AMD Zen 4/5 to its AVX2 kernels although the CPU has
 * AVX-512; newer OpenBLAS picks SkylakeX there. Re-run its selection with
 * OPENBLAS_CORETYPE=SkylakeX (what the user could set by hand), unless the
 * user chose a core type. Done once, before any of our BLAS calls. */
static void blas_retune(void) {
#if defined(__x86_64__)
    if (!gotoblas_dynamic_init || !gotoblas_dynamic_quit) return;
    if (getenv("OPENBLAS_CORETYPE")) return;
    __builtin_cpu_init();
    if (!(__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
          __builtin_cpu_supports("avx512dq") && __builtin_cpu_supports("avx512vl")))
        return;
    const char *core = openblas_get_corename();
    if (!core || (strcasecmp(core, "haswell") != 0 && strcasecmp(core, "zen") != 0)) return;
    setenv("OPENBLAS_CORETYPE", "SkylakeX", 1);
    gotoblas_dynamic_quit();
    gotoblas_dynamic_init();
    unsetenv("OPENBLAS_CORETYPE"); /* not inherited by child processes */
#endif
}

static void cpu_init(void) {
    blas_retune();
    if (!g_threads_set) {
        int t = omp_get_max_threads(); /* OMP_NUM_THREADS, else all cores */
        lg_cpu_threads_ = t > 0 ? t : 1;
    }
}

void lg_cpu_set_threads(int n) {
    pthread_once(&g_once, cpu_init);
    if (n <= 0) {
        g_threads_set = 0;
        n = omp_get_num_procs();
        const char *env = getenv("OMP_NUM_THREADS");
        if (env && atoi(env) > 0) n = atoi(env);
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
};

const lg_backend *lg_backend_cpu(void) {
    pthread_once(&g_once, cpu_init);
    return &g_cpu;
}
