/* lipgan sample: generate samples from a checkpoint (lipgan/train.h). */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "lipgan/backend_cpu.h"
#include "lipgan/data.h"
#include "lipgan/fileio.h"
#include "lipgan/image.h"
#include "lipgan/safetensors.h"
#include "lipgan/train.h"

static void usage(FILE *f) {
    fprintf(f,
            "usage: lipgan sample CKPT -n N --out FILE [--seed S] [--no-ema] [--device cpu|cuda[:N]]\n"
            "                    [--threads T]\n"
            "\n"
            "Draws N samples from the generator of CKPT (a checkpoint file, or a run directory:\n"
            "its newest checkpoint) in evaluation mode, z ~ N(0, I) from --seed.\n"
            "  -n N            samples to draw, 1..10000000 (required)\n"
            "  -o, --out FILE  output file (required); its extension picks the output:\n"
            "                    .png          an image grid (images) or a scatter plot over the\n"
            "                                  true modes (2-D toys)\n"
            "                    .safetensors  raw samples, tensor \"samples\" (N, C, H, W) or (N, D),\n"
            "                                  values as G gives them\n"
            "                    .csv          one sample per line, x,y (2-D data only)\n"
            "  --seed S        latent noise seed, 0..9223372036854775807 (default 0)\n"
            "  --no-ema        use the trained generator itself (default: the EMA generator when the\n"
            "                  checkpoint has one)\n"
            "  --device D      cpu, cuda, or cuda:N for GPU N (default cpu; cuda needs a CUDA build and\n"
            "                  a GPU)\n"
            "  --threads T     CPU threads, 0..1024 (default 0 = all cores; cpu device)\n"
            "  -h, --help      this help\n"
            "FILE may replace an earlier output, but never a lipgan file (checkpoint, classifier, FID\n"
            "statistics: by its metadata, whatever its name), a run directory's own file\n"
            "(metrics.jsonl, config.yaml, spectra.bin, .lock, ckpt_*, events.*) or CKPT itself: that\n"
            "is a usage error (exit 2), checked before any work, as is a FILE that is a directory or\n"
            "in a directory that does not exist or cannot be written.\n"
            "Exit codes: 0 ok, 2 usage (a flag's bad value too), 3 bad checkpoint, 1 runtime error.\n");
}

static lg_status write_csv(const char *path, const float *x, int64_t n, int64_t d) {
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    if (!f) return lg_error_set(LG_ERR_NOMEM, "out of memory");
    fprintf(f, "x,y\n");
    for (int64_t i = 0; i < n; i++)
        for (int64_t j = 0; j < d; j++) fprintf(f, "%.9g%c", x[i * d + j], j + 1 < d ? ',' : '\n');
    if (fclose(f) != 0) {
        free(buf);
        return lg_error_set(LG_ERR_NOMEM, "out of memory");
    }
    lg_status s = lg_file_write_atomic(path, buf, len);
    free(buf);
    return s;
}

int lg_cmd_sample(int argc, char **argv) {
    const char *ckpt = NULL, *out = NULL, *device = "cpu";
    long long n = -1, seed = 0;
    int use_ema = 1, threads = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            usage(stdout);
            return LG_EXIT_OK;
        }
        int takes = !strcmp(a, "-n") || !strcmp(a, "--out") || !strcmp(a, "-o") || !strcmp(a, "--seed") ||
                    !strcmp(a, "--device") || !strcmp(a, "--threads");
        if (takes && i + 1 >= argc) return lg_cli_usage_error("sample", "%s needs a value", a);
        lg_status fs = LG_OK;
        if (!strcmp(a, "-n")) {
            fs = lg_cli_flag_ll(a, argv[++i], 1, 10000000, &n);
        } else if (!strcmp(a, "--out") || !strcmp(a, "-o")) {
            out = argv[++i];
        } else if (!strcmp(a, "--seed")) {
            fs = lg_cli_flag_ll(a, argv[++i], 0, LLONG_MAX, &seed);
        } else if (!strcmp(a, "--device")) {
            device = argv[++i];
        } else if (!strcmp(a, "--threads")) {
            fs = lg_cli_flag_int(a, argv[++i], 0, 1024, &threads);
        } else if (!strcmp(a, "--no-ema")) {
            use_ema = 0;
        } else if (a[0] == '-' && a[1]) {
            return lg_cli_usage_error("sample", "unknown option '%s'", a);
        } else if (!ckpt) {
            ckpt = a;
        } else {
            return lg_cli_usage_error("sample", "one checkpoint expected, got '%s' and '%s'", ckpt, a);
        }
        if (fs != LG_OK) return lg_cli_fail("sample", fs);
    }
    if (!ckpt) return lg_cli_usage_error("sample", "missing CKPT");
    if (n < 0) return lg_cli_usage_error("sample", "missing -n N");
    if (!out) return lg_cli_usage_error("sample", "missing --out FILE");
    int png = lg_cli_ends_with(out, ".png"), st_out = lg_cli_ends_with(out, ".safetensors");
    int csv = lg_cli_ends_with(out, ".csv");
    if (!png && !st_out && !csv)
        return lg_cli_usage_error("sample", "--out %s: the extension must be .png, .safetensors or .csv", out);

    /* before the generator runs; never over CKPT, a checkpoint or a run's files */
    lg_status s = lg_cli_check_output("--out", out, strrchr(out, '.'), (const char *const[]){ckpt}, 1, NULL);
    if (s != LG_OK) return lg_cli_fail("sample", s);
    const lg_backend *be;
    s = lg_cli_device("--device", device, &be);
    if (s != LG_OK) return lg_cli_fail("sample", s);
    if (!be->is_device) lg_cpu_set_threads(threads);
    lg_model *g;
    lg_config cfg;
    s = lg_checkpoint_load_generator(ckpt, be, use_ema, &g, &cfg);
    if (s != LG_OK) return lg_cli_fail_input("sample", s);
    const lg_model_spec *spec = lg_model_get_spec(g);
    int64_t ss = lg_generator_sample_size(g);
    int two_d = spec->data_dim == 2;
    /* spec lives inside g: copy what the messages need before freeing g */
    const int data_dim = spec->data_dim, img_c = spec->img_c, img_size = spec->img_size;
    if (csv && data_dim <= 0) {
        lg_model_free(g);
        return lg_cli_usage_error("sample", "--out %s: CSV is for 2-D data; this generator makes %dx%dx%d images",
                                  out, img_c, img_size, img_size);
    }
    if (png && !two_d && data_dim > 0) {
        lg_model_free(g);
        return lg_cli_usage_error("sample", "--out %s: a %d-D generator has no PNG form; use .safetensors", out,
                                  data_dim);
    }
    float *x = malloc((size_t)n * (size_t)ss * sizeof(float));
    if (!x) {
        lg_model_free(g);
        return lg_cli_fail("sample", lg_error_set(LG_ERR_NOMEM, "out of memory for %lld samples", n));
    }
    s = lg_generate(g, be, n, (uint64_t)seed, x);
    if (s == LG_OK) {
        if (png && two_d) {
            const float *modes = NULL;
            int m = 0;
            float range = 0.0f;
            if (!strcmp(cfg.data.format, "ring8")) m = lg_data_toy_modes(LG_TOY_RING8, &modes, NULL), range = 3.0f;
            if (!strcmp(cfg.data.format, "grid25")) m = lg_data_toy_modes(LG_TOY_GRID25, &modes, NULL), range = 6.0f;
            s = lg_image_write_scatter(out, x, (int)n, modes, m, range, 512);
        } else if (png) {
            s = lg_image_write_grid(out, x, (int)n, spec->img_c, spec->img_size, spec->img_size, 0);
        } else if (csv) {
            s = write_csv(out, x, n, ss);
        } else {
            lg_st_writer *w;
            s = lg_st_writer_create(&w);
            if (s == LG_OK) {
                if (spec->data_dim > 0)
                    s = lg_st_writer_add_f32(w, "samples", 2, (int64_t[]){n, spec->data_dim}, x);
                else
                    s = lg_st_writer_add_f32(w, "samples", 4,
                                             (int64_t[]){n, spec->img_c, spec->img_size, spec->img_size}, x);
                char sd[32];
                snprintf(sd, sizeof sd, "%lld", seed);
                if (s == LG_OK) s = lg_st_writer_add_meta(w, "seed", sd);
                if (s == LG_OK) s = lg_st_writer_add_meta(w, "checkpoint", ckpt);
                if (s == LG_OK) s = lg_st_writer_write(w, out, 1);
                lg_st_writer_free(w);
            }
        }
    }
    free(x);
    lg_model_free(g);
    if (s != LG_OK) return lg_cli_fail_input("sample", s);
    fprintf(stderr, "lipgan sample: %lld samples -> %s\n", n, out);
    return LG_EXIT_OK;
}
