/* lipgan side of the training-iteration benchmark (issues 5 and 7): one
 * full SN-GAN CIFAR-10 iteration = 5 D updates at batch 64 + 1 G update at
 * batch 128, SN on D, hinge loss, Adam, the SN-GAN ResNet of
 * configs/cifar10_sngan_hinge.yaml, on CIFAR-10-shaped data (a synthetic
 * file in the published binary format, written to a temp dir). Prints
 * `lipgan train_iter <median ms> <method>` and '#' detail lines, each ending
 * with the method; the PyTorch side is bench/torch_train_iter.py (its
 * --method), bench/run.sh runs both on the CPU, bench/gpu_compare.sh on a GPU.
 * The method is named from D's config (see method_name): the default is
 * `sn`; e.g. --set loss=wasserstein --set lipschitz.d.sn=false
 * --set lipschitz.d.gp_lambda=10 gives `gp` (WGAN-GP).
 *
 *   build/bench/bench_train_iter [--iters N] [--warmup N] [--device cpu|cuda]
 *        [--precision fp32|tf32|bf16] [--nondet] [--no-graph] [--set k=v ...]
 *
 * --precision, --nondet and --no-graph set the config keys cuda.precision,
 * cuda.deterministic=false and cuda.graph=false (cuda only). The first
 * --warmup steps (default 3) are not timed: they size the arena, benchmark
 * cuDNN's algorithms and capture the CUDA graphs. Run from the repository
 * root (it reads configs/cifar10_sngan_hinge.yaml).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "bench_util.h"
#include "../tests/train_fixtures.h"
#include "lipgan/backend_cpu.h"
#include "lipgan/config.h"
#include "lipgan/train.h"

#ifdef LG_HAVE_CUDA
#include <cuda_runtime.h>

#include "lipgan/cuda.h"
#endif

/* The synthetic data file and its temp dir, removed at exit (also on errors). */
static char g_dir[] = "/tmp/lg_bench_XXXXXX", g_path[64];

static void cleanup(void) {
    if (g_path[0]) unlink(g_path);
    rmdir(g_dir);
}

static const char *usage =
    "usage: bench_train_iter [--iters N] [--warmup N] [--device cpu|cuda]\n"
    "         [--precision fp32|tf32|bf16] [--nondet] [--no-graph] [--set k=v ...]\n";

/* Sets one config key, exiting with its message on failure. */
static void set_or_die(lg_config *c, const char *kv) {
    if (lg_config_set(c, kv) != LG_OK) {
        fprintf(stderr, "bench_train_iter: %s\n", lg_error_msg());
        exit(4);
    }
}

/* D's Lipschitz method, named as torch_train_iter.py's --method: toeplitz,
 * sn or none, with _gp when a gradient penalty is on, + the other D
 * constraints (rarely benchmarked: no PyTorch counterpart there). */
static const char *method_name(const lg_config *c, char *buf, size_t n) {
    const lg_cfg_lip *l = &c->lipschitz.d, *lg = &c->lipschitz.g;
    const char *base = l->toeplitz_k > 0 ? "toeplitz" : l->sn ? "sn" : "none";
    if (l->gp_lambda > 0) base = l->toeplitz_k > 0 ? "toeplitz_gp" : l->sn ? "sn_gp" : "gp";
    snprintf(buf, n, "%s%s%s%s%s%s", base, l->sr_gamma > 0 ? "+sr" : "", l->clip > 0 ? "+clip" : "",
             l->clamp_ratio > 0 ? "+clamp" : "", lg->rw_lambda > 0 ? "+rw" : "",
             lg->sn || lg->toeplitz_k > 0 ? "+g_lip" : "");
    return buf;
}

/* Waits for all queued GPU work, so a step's time is its whole time even
 * if the trainer's step returned before its last kernels finished. */
static void device_sync(int cuda) {
#ifdef LG_HAVE_CUDA
    if (cuda) cudaDeviceSynchronize();
#else
    (void)cuda;
#endif
}

int main(int argc, char **argv) {
    int iters = 5, warmup = 3;
    const char *device = "cpu";
    lg_config c;
    lg_config_default(&c);
    if (lg_config_load_file(&c, "configs/cifar10_sngan_hinge.yaml") != LG_OK) {
        fprintf(stderr, "bench_train_iter: %s (run from the repository root)\n", lg_error_msg());
        return 1;
    }
    char set[160];
    if (!mkdtemp(g_dir)) {
        fprintf(stderr, "bench_train_iter: cannot create a temp dir in /tmp\n");
        return 1;
    }
    atexit(cleanup);
    snprintf(g_path, sizeof g_path, "%s/data_batch_1.bin", g_dir);
    if (tf_write_cifar_noise(g_path)) {
        fprintf(stderr, "bench_train_iter: cannot write %s\n", g_path);
        return 1;
    }
    snprintf(set, sizeof set, "data.path=%s", g_path);
    set_or_die(&c, set);
    set_or_die(&c, "data.instance_noise=0");
    set_or_die(&c, "train.steps=1000");
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--iters") && i + 1 < argc) iters = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--warmup") && i + 1 < argc) warmup = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--device") && i + 1 < argc) device = argv[++i];
        else if (!strcmp(argv[i], "--precision") && i + 1 < argc) {
            snprintf(set, sizeof set, "cuda.precision=%s", argv[++i]);
            set_or_die(&c, set);
        } else if (!strcmp(argv[i], "--nondet")) set_or_die(&c, "cuda.deterministic=false");
        else if (!strcmp(argv[i], "--no-graph")) set_or_die(&c, "cuda.graph=false");
        else if (!strcmp(argv[i], "--set") && i + 1 < argc) set_or_die(&c, argv[++i]);
        else {
            fputs(usage, stderr);
            return 2;
        }
    }
    snprintf(set, sizeof set, "device=%s", device);
    set_or_die(&c, set);
    if (iters < 1) iters = 1;
    if (warmup < 1) warmup = 1; /* at least the arena's first step */
    /* bounded so that iters + warmup cannot overflow */
    if (iters > 1000000) iters = 1000000;
    if (warmup > 1000000) warmup = 1000000;
    int cuda = !strcmp(c.device, "cuda");
    if (lg_config_validate(&c) != LG_OK) {
        fprintf(stderr, "bench_train_iter: %s\n", lg_error_msg());
        return 1;
    }
#ifdef LG_HAVE_CUDA
    /* The trainer applies cuda.precision and cuda.deterministic itself; set
     * them here too (process-wide, same values) so the benchmark measures
     * what it says even with a trainer that predates those keys. */
    if (cuda) {
        int p = !strcmp(c.cuda.precision, "tf32")   ? LG_CUDA_TF32
                : !strcmp(c.cuda.precision, "bf16") ? LG_CUDA_BF16
                                                    : LG_CUDA_FP32;
        if (lg_cuda_set_precision(p) != LG_OK) {
            fprintf(stderr, "bench_train_iter: %s\n", lg_error_msg());
            return 1;
        }
        lg_cuda_set_deterministic(c.cuda.deterministic);
    }
#endif
    lg_trainer *t;
    if (lg_trainer_create(&t, &c) != LG_OK) {
        fprintf(stderr, "bench_train_iter: %s\n", lg_error_msg());
        return 1;
    }
    char mn[96];
    method_name(&c, mn, sizeof mn);
    /* the same line as torch_train_iter.py's, for bench/run.sh to compare */
    printf("# parameters D %zu G %zu (lipgan); method %s\n",
           lg_model_count_params(lg_trainer_discriminator(t)),
           lg_model_count_params(lg_trainer_generator(t)), mn);
    lg_train_stats st = {0}; /* set by every step; the loop below runs at least twice */
    double *ms = calloc((size_t)(iters + warmup), sizeof *ms);
    if (!ms) {
        fprintf(stderr, "bench_train_iter: out of memory\n");
        lg_trainer_free(t);
        return 1;
    }
    for (int i = 0; i < iters + warmup; i++) {
        double t0 = bench_now_ms();
        if (lg_trainer_step(t, &st) != LG_OK) {
            fprintf(stderr, "bench_train_iter: step %d: %s\n", i, lg_error_msg());
            free(ms);
            lg_trainer_free(t);
            return 1;
        }
        device_sync(cuda);
        ms[i] = bench_now_ms() - t0;
#ifdef LG_HAVE_CUDA
        /* LG_CUDA_PROFILE: the timed steps only (the warm-up benchmarks cuDNN) */
        if (cuda && i == warmup - 1 && lg_cuda_profile_enabled()) lg_cuda_profile_reset();
#endif
        /* LG_CPU_PROFILE: likewise */
        if (!cuda && i == warmup - 1 && lg_cpu_profile_enabled()) lg_cpu_profile_reset();
    }
    if (!cuda && lg_cpu_profile_enabled()) printf("%s", lg_cpu_profile_report(iters));
#ifdef LG_HAVE_CUDA
    if (cuda && lg_cuda_profile_enabled()) printf("%s", lg_cuda_profile_report(iters));
#endif
    if (cuda) {
#ifdef LG_HAVE_CUDA
        static const char *pn[] = {"fp32", "tf32", "bf16"};
        int p = lg_cuda_precision();
        const char *pname = p >= 0 && p <= 2 ? pn[p] : "?";
        printf("# device cuda; precision %s; deterministic %d; graph %d (cuda.graph); "
               "convolutions %s; method %s\n",
               pname, lg_cuda_deterministic(), c.cuda.graph, lg_cuda_cudnn_info(), mn);
        if (strcmp(pname, c.cuda.precision) || lg_cuda_deterministic() != c.cuda.deterministic)
            printf("# WARNING: the backend runs precision %s deterministic %d, the config asked "
                   "for %s %d; method %s\n",
                   pname, lg_cuda_deterministic(), c.cuda.precision, c.cuda.deterministic, mn);
#else
        printf("# device cuda requested, but this build has no CUDA; method %s\n", mn);
#endif
    } else {
        printf("# device cpu; precision fp32; threads %d (0 = default); method %s\n", c.threads, mn);
    }
    printf("# step arena after the run: %.1f MB\n", (double)lg_trainer_arena_bytes(t) / 1e6);
#ifdef LG_HAVE_CUDA
    if (cuda) { /* what the device holds: the arena, parameters, cuDNN workspace, the pool's cache */
        size_t reserved = 0, in_use = 0;
        lg_cuda_pool_stats(&reserved, &in_use);
        printf("# cuda pool: %.1f MB reserved, %.1f MB in use\n", (double)reserved / 1e6,
               (double)in_use / 1e6);
    }
#endif
    printf("# warm-up steps (ms, not timed):");
    for (int i = 0; i < warmup; i++) printf(" %.1f", ms[i]);
    printf("; method %s\n", mn);
    double *tm = ms + warmup;
    double sum = 0;
    for (int i = 0; i < iters; i++) sum += tm[i];
    double med = bench_median(tm, iters); /* sorts tm */
    printf("lipgan train_iter %.2f %s\n", med, mn);
    printf("# %d timed steps: median %.2f, min %.2f, max %.2f, mean %.2f ms; method %s\n",
           iters, med, tm[0], tm[iters - 1], sum / iters, mn);
    printf("# loss D %.4f G %.4f after %d steps (loss %s, lipschitz.d: sn %d, toeplitz_k %g, "
           "gp_lambda %g %s); method %s\n",
           st.loss_d, st.loss_g, iters + warmup, c.loss, c.lipschitz.d.sn,
           c.lipschitz.d.toeplitz_k, c.lipschitz.d.gp_lambda, c.lipschitz.d.gp_kind, mn);
    free(ms);
    lg_trainer_free(t);
    return 0;
}
