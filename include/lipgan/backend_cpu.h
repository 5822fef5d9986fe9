/* lipgan/backend_cpu.h - extras of the CPU backend (src/backend/cpu).
 *
 * The table itself comes from lg_backend_cpu() (backend.h). The CPU backend
 * uses one thread pool, OpenMP's, shared with OpenBLAS (its OpenMP build).
 * By default it uses omp_get_max_threads() threads, i.e. OMP_NUM_THREADS
 * when set, else every core.
 *
 * BLAS kernels: OpenBLAS 0.3.21 picks its kernels by CPU model and misses
 * AVX-512 on AMD Zen 4/5 (AVX2 kernels) and on CPUs it does not know, such
 * as a virtual "Intel Xeon Processor" (SSE3 kernels). The first
 * lg_backend_cpu() call re-selects them by CPU features (SkylakeX with
 * AVX-512, Haswell with AVX2+FMA), 1.6-6x faster, unless OPENBLAS_CORETYPE
 * is set in the environment (then OpenBLAS's choice stands). That call
 * briefly sets the variable (setenv), so make it before starting threads. */
#ifndef LIPGAN_BACKEND_CPU_H
#define LIPGAN_BACKEND_CPU_H

#ifdef __cplusplus
extern "C" {
#endif

/* Sets the number of threads of the CPU kernels and of OpenBLAS, for the
 * whole process: OpenBLAS's openmp build also sets the calling thread's
 * OpenMP default team size (omp_get_max_threads) with it. n <= 0 restores
 * the default (lg_cpu_default_threads). Call it before sizing convolution
 * workspaces (conv_workspace depends on the thread count), i.e. at startup.
 * Results are bitwise reproducible for a fixed thread count. A library
 * embedded in a host program should prefer lg_cpu_threads_push/pop below;
 * the trainer (train.h) uses them. */
void lg_cpu_set_threads(int n);
/* The current thread count (>= 1). */
int lg_cpu_threads(void);
/* OMP_NUM_THREADS when set (> 0), else the number of processors. */
int lg_cpu_default_threads(void);

/* A thread count for the length of one call, the host's put back after it:
 *   lg_cpu_threads_saved sv = lg_cpu_threads_push(n);
 *   ...compute...
 *   lg_cpu_threads_pop(&sv);
 * push applies n (< 1 counts as 1) to the CPU kernels, to OpenBLAS and to
 * the calling thread's OpenMP default team size, saving the three previous
 * values (which may differ from each other); pop restores exactly those.
 * Scopes nest. When all three already equal n nothing is set (a few reads,
 * well under a microsecond); otherwise two openblas_set_num_threads calls,
 * about 0.1 us together. The kernel and OpenBLAS counts are process-wide:
 * scopes with different counts must not run at the same time on several
 * host threads. */
typedef struct lg_cpu_threads_saved {
    int kernels, kernels_set; /* lg_cpu_threads() and whether it was set explicitly */
    int omp, blas;            /* omp_get_max_threads(), openblas_get_num_threads() */
    int changed;              /* push set anything (pop has work to do) */
} lg_cpu_threads_saved;
lg_cpu_threads_saved lg_cpu_threads_push(int n);
void lg_cpu_threads_pop(const lg_cpu_threads_saved *s);

/* Per-call timing, opt-in: with LG_CPU_PROFILE=1 in the environment when
 * the backend initializes, every kernel call is timed (wall clock; the
 * kernels are synchronous) and counted per entry and per op or convolution
 * geometry. The counts equal the kernel launches the CUDA backend makes for
 * the same work. Without the variable the plain table runs: no cost. A
 * report goes to stderr at exit when rows were added since the last one.
 *   lg_cpu_profile_enabled(): 1 when profiling is on.
 *   lg_cpu_profile_reset():   zeroes all rows.
 *   lg_cpu_profile_report(steps): a table by entry, then by entry and
 *     detail, slowest first; steps >= 1 divides calls and times by it. The
 *     string is owned by the library, valid until the next call. */
int lg_cpu_profile_enabled(void);
void lg_cpu_profile_reset(void);
const char *lg_cpu_profile_report(int steps);

#ifdef __cplusplus
}
#endif
#endif
