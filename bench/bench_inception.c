/* lipgan side of the Inception-v3 benchmark: the FID / IS feature
 * extractor (lg_inception_run: bilinear resize to 299x299, the network,
 * pool3 and the logits) on a batch of images, as an evaluation computes
 * FID. bench/torch_inception.py times PyTorch on the same network, weights
 * and images, and bench/inception.sh prints the two side by side.
 *
 *   build/bench/bench_inception [--device cpu|cuda] [--n N] [--iters N]
 *                               [--warmup N] [--size S] [--weights FILE]
 *                               [--dump FILE]
 *
 * --n images per call (default 64), each 3 x S x S (--size, default 32);
 * --iters timed calls (default 5) after --warmup untimed ones (default 1).
 * Weights: --weights FILE (a safetensors file lg_inception_load reads), or
 * by default synthetic ones (lg_inception_write_synthetic with seed
 * 20240607, the seed of tools/gen_inception_reference.py, which
 * torch_inception.py rebuilds bit for bit) written to a temporary file that
 * is deleted once loaded. The images are a fixed integer hash of the
 * element index, x[i] = ((i * 2654435761) mod 2001) / 1000 - 1 in float32,
 * which torch_inception.py reproduces bit for bit.
 * --device cuda moves the network to the GPU (lg_inception_use_cuda) and
 * fails if that fails. A timed call starts and ends with the images and
 * the features in host memory (what lg_inception_run's API gives), so on
 * cuda it includes the copies both ways; torch_inception.py times the same.
 * --dump FILE writes the last timed call's pool3 (N, 2048) as raw float32,
 * for torch_inception.py --check.
 *
 * Prints `lipgan inception_n<N>_<S>px <median ms per image>`; lines
 * starting with '#' are details (threads, ms per call). */
#include <omp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "bench_util.h"
#include "lipgan/inception.h"

#define SYNTH_SEED 20240607u /* tools/gen_inception_reference.py's SEED */

static void usage(void) {
    fprintf(stderr, "usage: bench_inception [--device cpu|cuda] [--n N] [--iters N] [--warmup N] "
                    "[--size S] [--weights FILE] [--dump FILE]\n");
    exit(2);
}

/* Writes f (n) to path as raw float32; returns 0 on success. */
static int dump_floats(const char *path, const float *f, size_t n) {
    FILE *fp = fopen(path, "wb");
    if (!fp) return -1;
    size_t w = fwrite(f, sizeof *f, n, fp);
    return (fclose(fp) != 0 || w != n) ? -1 : 0;
}

int main(int argc, char **argv) {
    int n = 64, iters = 5, warmup = 1, size = 32;
    const char *device = "cpu", *weights = NULL, *dump = NULL;
    for (int i = 1; i < argc; i++) {
        if (i + 1 >= argc) usage();
        if (!strcmp(argv[i], "--device")) device = argv[++i];
        else if (!strcmp(argv[i], "--n")) n = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--iters")) iters = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--warmup")) warmup = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--size")) size = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--weights")) weights = argv[++i];
        else if (!strcmp(argv[i], "--dump")) dump = argv[++i];
        else usage();
    }
    int cuda = !strcmp(device, "cuda");
    if ((!cuda && strcmp(device, "cpu")) || n < 1 || iters < 1 || warmup < 0 || size < 1 ||
        size > 4096)
        usage();

    /* the default weights: synthetic, in a temporary file deleted right
     * after loading (the loaded net keeps its own folded copy) */
    char tmp_path[4096] = "";
    if (!weights) {
        const char *td = getenv("TMPDIR");
        snprintf(tmp_path, sizeof tmp_path, "%s/lg_bench_inception_XXXXXX.safetensors",
                 td && *td ? td : "/tmp");
        int fd = mkstemps(tmp_path, (int)strlen(".safetensors"));
        if (fd < 0) {
            perror("bench_inception: temporary weights file");
            return 1;
        }
        close(fd);
        if (lg_inception_write_synthetic(tmp_path, SYNTH_SEED) != LG_OK) {
            fprintf(stderr, "bench_inception: writing synthetic weights to %s: %s\n", tmp_path,
                    lg_error_msg());
            unlink(tmp_path);
            return 1;
        }
        weights = tmp_path;
    }
    lg_inception *net = NULL;
    lg_status s = lg_inception_load(&net, weights);
    if (tmp_path[0]) unlink(tmp_path);
    if (s != LG_OK) {
        fprintf(stderr, "bench_inception: loading %s: %s\n", tmp_path[0] ? "synthetic weights" : weights,
                lg_error_msg());
        return 1;
    }
    if (cuda && lg_inception_use_cuda(net) != LG_OK) {
        fprintf(stderr, "bench_inception: --device cuda: %s\n"
                        "HINT: build with nvcc on a machine with an NVIDIA GPU, or use --device cpu\n",
                lg_error_msg());
        lg_inception_free(net);
        return 1;
    }

    int k = lg_inception_num_classes(net);
    size_t img = (size_t)3 * size * size;
    float *x = malloc((size_t)n * img * sizeof *x);                                /* (N, 3, S, S) */
    float *pool3 = malloc((size_t)n * LG_INCEPTION_POOL3_DIM * sizeof *pool3);     /* (N, 2048) */
    float *logits = malloc((size_t)n * (size_t)k * sizeof *logits);                /* (N, K) */
    double *t = malloc((size_t)iters * sizeof *t);                                 /* (iters) ms */
    int rc = 1;
    if (!x || !pool3 || !logits || !t) {
        fprintf(stderr, "bench_inception: out of memory for a batch of %d\n", n);
        goto done;
    }
    /* in [-1, 1], noise-like, and exactly reproducible in PyTorch: the
     * product is exact in 64 bits and both float ops are correctly rounded */
    for (size_t i = 0; i < (size_t)n * img; i++)
        x[i] = (float)((i * 2654435761u) % 2001) / 1000.0f - 1.0f;

    for (int i = 0; i < warmup; i++)
        if (lg_inception_run(net, x, n, 3, size, size, pool3, logits) != LG_OK) goto fail;
    for (int i = 0; i < iters; i++) {
        double t0 = bench_now_ms();
        if (lg_inception_run(net, x, n, 3, size, size, pool3, logits) != LG_OK) goto fail;
        t[i] = bench_now_ms() - t0;
    }
    double med = bench_median(t, iters);
    printf("# lipgan: %s, %d OpenMP threads, %s; %d x 3x%dx%d images per call, %d timed calls after "
           "%d warm-up; median %.1f ms per call (min %.1f, max %.1f)\n",
           lg_inception_on_cuda(net) ? "cuda" : "cpu", omp_get_max_threads(),
           lg_inception_describe(net), n, size, size, iters, warmup, med, t[0], t[iters - 1]);
    printf("lipgan inception_n%d_%dpx %.3f\n", n, size, med / n);
    if (dump && dump_floats(dump, pool3, (size_t)n * LG_INCEPTION_POOL3_DIM)) {
        perror("bench_inception: --dump");
        goto done;
    }
    rc = 0;
    goto done;
fail:
    fprintf(stderr, "bench_inception: lg_inception_run: %s\n", lg_error_msg());
done:
    free(x);
    free(pool3);
    free(logits);
    free(t);
    lg_inception_free(net);
    return rc;
}
