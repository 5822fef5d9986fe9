/* `lipgan eval`, `lipgan fid-stats` and `lipgan train-classifier` as a user
 * runs them ($BUILD/lipgan, from the repository root):
 *  - help and usage errors (exit 2), missing files (exit 3, with a message
 *    that says how to get them: Inception weights via
 *    tools/convert_inception_weights.py, the classifier via
 *    train-classifier);
 *  - fid-stats with classifier features on a small IDX directory: the file
 *    loads back with n, dim 128 and finite values;
 *  - is,fid,kid with synthetic Inception weights: every metric finite, and
 *    eval's own FID reference agrees with fid-stats' of the same images;
 *  - evaluation during training with fid and kid: one Inception pass over
 *    the reference images, the same FID as fid alone;
 *  - train-classifier on a small IDX directory: the printed accuracy is the
 *    file's, which loads; a second run writes the same bytes;
 *  - eval of a toy checkpoint made by a 20-step `lipgan train` run: text,
 *    --json and --log (a row appended to the run's metrics.jsonl);
 *  - eval of a tiny Fashion-MNIST-shaped checkpoint: cfid,classes with the
 *    reference computed from the data and with --ref from fid-stats;
 *    fid without Inception weights fails with exit 3; --ref files of an
 *    unknown dimension (exit 3) or a second one of a kind (exit 2) have
 *    messages of their own;
 *  - sample --out x.csv of an image run names the image shape;
 *  - --ref checks: a file no requested metric uses is refused up front
 *    (exit 2); fid-stats' recorded source (data shape, feature network)
 *    is compared and a mismatch warned about; NaN, a non-covariance and a
 *    .npz are exit 3 naming the file; IS with --n below its splits exit 2;
 *  - --log is checked before any work, with the reason;
 *  - --out never replaces a checkpoint, a run's own file or the command's
 *    input (exit 2, file untouched), but may replace an earlier output;
 *  - report names sample images it could not read;
 *  - fid-stats on CIFAR-10's pickle folder (named as such), an ImageFolder
 *    tree (detected as png, for the loader's class folders), 1 image;
 *  - fid,kid without --ref share one Inception pass over the real images
 *    (synthetic weights);
 *  - train-classifier and fid-stats check that --out can be written before
 *    any work (no progress line), leaving no temp file; a directory or a
 *    missing directory as --out is exit 2;
 *  - flags' bad values are exit 2 naming the flag (--metrics, --device,
 *    fid-stats' --split / --image-size / an --out not named .safetensors);
 *  - --log of a checkpoint outside a run directory is exit 2, creating
 *    nothing; --ref a directory is exit 3. */
#include "lg_test.h"
#include "lipgan/backend.h"

#include <cJSON.h>
#include <dirent.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "lipgan/classifier.h"
#include "lipgan/inception.h"
#include "lipgan/metrics.h"
#include "lipgan/safetensors.h"
#include "train_fixtures.h"

static char g_bin[512];
static char g_dir[64];

static int run_cli(const char *args, int merge, char *out, size_t cap) {
    return lg_test_run_cli(g_bin, args, merge, out, cap);
}

static char g_out[65536];

static void test_help_and_usage(void) {
    const char *cmds[] = {"eval", "fid-stats", "train-classifier"};
    for (int i = 0; i < 3; i++) {
        char a[64];
        snprintf(a, sizeof a, "%s --help", cmds[i]);
        int rc = run_cli(a, 0, g_out, sizeof g_out);
        CHECK(rc == 0 && strstr(g_out, "usage: lipgan ") != NULL, "%s: exit %d: %s", a, rc, g_out);
    }
    int rc = run_cli("eval", 1, g_out, sizeof g_out);
    CHECK(rc == 2 && strstr(g_out, "missing CKPT"), "eval without CKPT: exit %d: %s", rc, g_out);
    rc = run_cli("eval x.safetensors --metrics", 1, g_out, sizeof g_out);
    CHECK(rc == 2 && strstr(g_out, "--metrics needs a value"), "exit %d: %s", rc, g_out);
    rc = run_cli("eval x.safetensors --n 1", 1, g_out, sizeof g_out);
    CHECK(rc == 2, "--n 1: exit %d: %s", rc, g_out);
    rc = run_cli("fid-stats /usr/share", 1, g_out, sizeof g_out);
    CHECK(rc == 2 && strstr(g_out, "missing --out"), "fid-stats without --out: exit %d: %s", rc, g_out);
    rc = run_cli("fid-stats /x --out /tmp/y --features pixels", 1, g_out, sizeof g_out);
    CHECK(rc == 2 && strstr(g_out, "--features must be"), "exit %d: %s", rc, g_out);
    rc = run_cli("train-classifier --out x.safetensors", 1, g_out, sizeof g_out);
    CHECK(rc == 2 && strstr(g_out, "missing --data"), "exit %d: %s", rc, g_out);
    rc = run_cli("train-classifier --data /nonexistent_dir --out /tmp/never.safetensors", 1, g_out, sizeof g_out);
    CHECK(rc == 3, "train-classifier on a missing directory: exit %d: %s", rc, g_out);
    /* the weights are safetensors: another name is refused before the data is read */
    rc = run_cli("train-classifier --data /nonexistent_dir --out /tmp/lg_never_cls.npz", 1, g_out, sizeof g_out);
    CHECK(rc == 2 && strstr(g_out, "/tmp/lg_never_cls.safetensors") && access("/tmp/lg_never_cls.npz", F_OK) != 0,
          "train-classifier --out x.npz: exit %d: %s", rc, g_out);
}

static void test_missing_files(void) {
    char a[1024];
    snprintf(a, sizeof a, "eval %s/nonexistent.safetensors", g_dir);
    int rc = run_cli(a, 1, g_out, sizeof g_out);
    CHECK(rc == 3 && strstr(g_out, "no such file"), "missing checkpoint: exit %d: %s", rc, g_out);
    snprintf(a, sizeof a, "fid-stats %s --out %s/s.safetensors --inception %s/none.safetensors", g_dir, g_dir, g_dir);
    rc = run_cli(a, 1, g_out, sizeof g_out);
    CHECK(rc == 3 && strstr(g_out, "tools/convert_inception_weights.py") && strstr(g_out, "none.safetensors"),
          "missing Inception weights: exit %d: %s", rc, g_out);
    snprintf(a, sizeof a, "fid-stats %s --out %s/s.safetensors --features classifier --classifier %s/none.safetensors",
             g_dir, g_dir, g_dir);
    rc = run_cli(a, 1, g_out, sizeof g_out);
    CHECK(rc == 3 && strstr(g_out, "lipgan train-classifier"), "missing classifier: exit %d: %s", rc, g_out);
    snprintf(a, sizeof a, "fid-stats %s/no_such_dir --out %s/s.safetensors --features classifier", g_dir, g_dir);
    rc = run_cli(a, 1, g_out, sizeof g_out);
    CHECK(rc == 3, "missing data: exit %d: %s", rc, g_out);
}

/* Writes text to dir/name; 0 on success. */
static int write_file(const char *dir, const char *name, const char *text) {
    char p[512];
    snprintf(p, sizeof p, "%s/%s", dir, name);
    FILE *f = fopen(p, "w");
    if (!f) return -1;
    fputs(text, f);
    return fclose(f);
}

static int count_lines(const char *path, const char *needle) {
    FILE *f = fopen(path, "r");
    if (!f) return -1;
    char line[8192];
    int n = 0;
    while (fgets(line, sizeof line, f))
        if (strstr(line, needle)) n++;
    fclose(f);
    return n;
}

static void test_toy_eval(void) {
    CHECK(write_file(g_dir, "toy.yaml",
                     "data: {format: ring8, toy_n: 2000}\n"
                     "model: {z_dim: 4, g: {arch: mlp, width: 16, depth: 2, bn: false},"
                     " d: {arch: mlp, width: 16, depth: 2, bn: false}}\n"
                     "loss: hinge\nlipschitz: {d: {sn: true}}\n"
                     "train: {steps: 20, n_dis: 1, batch_d: 32, batch_g: 32}\n"
                     "seed: 3\nthreads: 1\n"
                     "log: {every: 10, samples_every: 0, checkpoint_every: 0, keep: 1, sample_n: 16}\n") == 0,
          "cannot write the toy config");
    char a[1024], run[256];
    snprintf(run, sizeof run, "%s/toy_run", g_dir);
    snprintf(a, sizeof a, "train %s/toy.yaml --out %s --quiet", g_dir, run);
    int rc = run_cli(a, 1, g_out, sizeof g_out);
    CHECK(rc == 0, "toy training run: exit %d: %s", rc, g_out);
    if (rc != 0) return;
    snprintf(a, sizeof a, "eval %s --n 500 --quiet --threads 1", run);
    rc = run_cli(a, 0, g_out, sizeof g_out);
    CHECK(rc == 0 && strstr(g_out, "toy ") && strstr(g_out, "/8 modes covered") && strstr(g_out, "(500 samples)"),
          "toy eval text: exit %d: %s", rc, g_out);
    snprintf(a, sizeof a, "eval %s --n 400 --json --log --quiet --threads 1", run);
    rc = run_cli(a, 0, g_out, sizeof g_out);
    CHECK(rc == 0 && !strncmp(g_out, "{\"step\":20,\"kind\":\"eval\"", 24) && strstr(g_out, "\"toy\":{") &&
              strstr(g_out, "\"modes\":8") && strstr(g_out, "\"n\":400"),
          "toy eval json: exit %d: %s", rc, g_out);
    char mj[300];
    snprintf(mj, sizeof mj, "%s/metrics.jsonl", run);
    CHECK(count_lines(mj, "\"kind\":\"eval\"") == 1, "--log appended one eval row to %s", mj);
    CHECK(count_lines(mj, "{\"step\":") >= 3, "metrics.jsonl keeps the trainer's rows and each row starts with step");
    snprintf(a, sizeof a, "eval %s --metrics cfid", run);
    rc = run_cli(a, 1, g_out, sizeof g_out);
    CHECK(rc == 2 && strstr(g_out, "only --metrics toy"), "cfid on a toy: exit %d: %s", rc, g_out);
    /* the other toy: its 25 modes */
    char run25[300];
    snprintf(run25, sizeof run25, "%s/grid_run", g_dir);
    snprintf(a, sizeof a, "train %s/toy.yaml --out %s --set data.format=grid25 --quiet", g_dir, run25);
    rc = run_cli(a, 1, g_out, sizeof g_out);
    CHECK(rc == 0, "grid25 training run: exit %d: %s", rc, g_out);
    snprintf(a, sizeof a, "eval %s --n 500 --json --quiet --threads 1", run25);
    rc = run_cli(a, 0, g_out, sizeof g_out);
    CHECK(rc == 0 && strstr(g_out, "\"toy\":{") && strstr(g_out, "\"modes\":25") && strstr(g_out, "\"n\":500"),
          "grid25 eval: exit %d: %s", rc, g_out);
    /* a flag's bad value is a usage error naming the flag (exit 2), not a
     * bad config (4), also where a library call rejects it */
    snprintf(a, sizeof a, "eval %s --metrics tyo", run);
    rc = run_cli(a, 1, g_out, sizeof g_out);
    CHECK(rc == 2 && strstr(g_out, "--metrics tyo: unknown metric 'tyo'"), "unknown metric: exit %d: %s", rc, g_out);
    snprintf(a, sizeof a, "eval %s --device gpu", run);
    rc = run_cli(a, 1, g_out, sizeof g_out);
    CHECK(rc == 2 && strstr(g_out, "--device gpu: unknown backend 'gpu'") && strstr(g_out, "\"cpu\""),
          "eval --device gpu: exit %d: %s", rc, g_out);
    /* cuda:N picks GPU N; a bad index is a usage error, a good one fares as
     * plain cuda does on this machine (no GPU, no CUDA build, or a GPU) */
    const char *badidx[] = {"cuda:x", "cuda:-1", "cuda:1024", "cuda:"};
    for (int k = 0; k < 4; k++) {
        if (k % 2) snprintf(a, sizeof a, "sample %s -n 4 --out %s/d.csv --device %s", run, g_dir, badidx[k]);
        else snprintf(a, sizeof a, "eval %s --n 10 --device %s", run, badidx[k]);
        rc = run_cli(a, 1, g_out, sizeof g_out);
        CHECK(rc == 2 && strstr(g_out, "the GPU index after cuda: must be an integer"), "--device %s: exit %d: %s",
              badidx[k], rc, g_out);
    }
    static char plain[4096];
    snprintf(a, sizeof a, "sample %s -n 4 --out %s/d.csv --device cuda", run, g_dir);
    int rc_plain = run_cli(a, 1, plain, sizeof plain);
    snprintf(a, sizeof a, "sample %s -n 4 --out %s/d.csv --device cuda:1", run, g_dir);
    rc = run_cli(a, 1, g_out, sizeof g_out);
    CHECK(rc == rc_plain && (rc == 0 || !strcmp(g_out, plain)), "--device cuda:1: exit %d (cuda: %d): %s / %s", rc,
          rc_plain, g_out, plain);
}

static void test_image_eval(void) {
    char data[256];
    snprintf(data, sizeof data, "%s/idx", g_dir);
    CHECK(mkdir(data, 0700) == 0 && tf_write_idx_dir(data, 300) == 0, "cannot write the IDX fixture");
    char cfg[1024];
    snprintf(cfg, sizeof cfg,
             "data: {format: fashion-mnist, path: %s, image_size: 32}\n"
             "model: {z_dim: 8, g: {arch: cnn, width: 4, bn: true}, d: {arch: cnn, width: 4}}\n"
             "loss: hinge\nlipschitz: {d: {sn: true}}\n"
             "train: {steps: 2, n_dis: 1, batch_d: 8, batch_g: 8}\n"
             "seed: 1\nthreads: 1\n"
             "log: {every: 1, samples_every: 0, checkpoint_every: 0, keep: 1, sample_n: 4}\n",
             data);
    CHECK(write_file(g_dir, "img.yaml", cfg) == 0, "cannot write the image config");
    char a[2048], run[256], stats[256];
    snprintf(run, sizeof run, "%s/img_run", g_dir);
    snprintf(a, sizeof a, "train %s/img.yaml --out %s --quiet", g_dir, run);
    int rc = run_cli(a, 1, g_out, sizeof g_out);
    CHECK(rc == 0, "image training run: exit %d: %s", rc, g_out);
    if (rc != 0) return;

    /* default metrics for 1x32x32: cfid,classes; reference from the checkpoint's data */
    snprintf(a, sizeof a, "eval %s --n 100 --ref-n 200 --quiet --threads 1", run);
    rc = run_cli(a, 0, g_out, sizeof g_out);
    CHECK(rc == 0 && strstr(g_out, "cFID ") && strstr(g_out, "(100 samples vs 200 reference") &&
              strstr(g_out, "classes ") && strstr(g_out, "(100 samples; counts"),
          "image eval: exit %d: %s", rc, g_out);

    /* fid-stats with classifier features, then eval --ref */
    snprintf(stats, sizeof stats, "%s/cls_stats.safetensors", g_dir);
    snprintf(a, sizeof a, "fid-stats %s --out %s --features classifier --n 150 --quiet --threads 1", data, stats);
    rc = run_cli(a, 1, g_out, sizeof g_out);
    CHECK(rc == 0 && strstr(g_out, "150 images (dimension 128)"), "fid-stats: exit %d: %s", rc, g_out);
    lg_fid_stats s;
    memset(&s, 0, sizeof s);
    lg_status st = lg_fid_stats_load(&s, stats);
    CHECK(st == LG_OK && s.n == 150 && s.dim == 128, "stats file: %s n %lld dim %d", lg_error_msg(), (long long)s.n,
          s.dim);
    int finite = st == LG_OK;
    for (int i = 0; finite && i < s.dim * s.dim; i++) finite = isfinite(s.sigma[i]);
    CHECK(finite, "stats are finite");
    lg_fid_stats_free(&s);
    /* --device: a bad value is a usage error; cuda works where a GPU is,
     * and elsewhere fails before anything is written */
    char dev_stats[300];
    snprintf(dev_stats, sizeof dev_stats, "%s/dev_stats.safetensors", g_dir);
    snprintf(a, sizeof a, "fid-stats %s --out %s --features classifier --device gpu", data, dev_stats);
    rc = run_cli(a, 1, g_out, sizeof g_out);
    CHECK(rc == 2 && strstr(g_out, "--device gpu: unknown backend 'gpu'"), "fid-stats --device gpu: exit %d: %s", rc,
          g_out);
    snprintf(a, sizeof a, "fid-stats %s --out %s --features classifier --device cuda:x", data, dev_stats);
    rc = run_cli(a, 1, g_out, sizeof g_out);
    CHECK(rc == 2 && strstr(g_out, "the GPU index after cuda: must be an integer"), "--device cuda:x: exit %d: %s", rc,
          g_out);
    snprintf(a, sizeof a, "fid-stats %s --out %s --features classifier --n 150 --quiet --device cuda", data, dev_stats);
    rc = run_cli(a, 1, g_out, sizeof g_out);
    if (lg_backend_cuda()) {
        CHECK(rc == 0 && strstr(g_out, "150 images (dimension 128)"), "fid-stats --device cuda: exit %d: %s", rc, g_out);
    } else {
        CHECK(rc == 1 && strcasestr(g_out, "cuda") && access(dev_stats, F_OK) != 0,
              "fid-stats --device cuda without a GPU: exit %d: %s", rc, g_out);
    }
    snprintf(a, sizeof a, "eval %s --n 100 --metrics cfid --ref %s --json --quiet --threads 1", run, stats);
    rc = run_cli(a, 0, g_out, sizeof g_out);
    CHECK(rc == 0 && strstr(g_out, "\"cfid\":{") && strstr(g_out, "\"n_ref\":150") && !strstr(g_out, "\"classes\""),
          "eval --ref: exit %d: %s", rc, g_out);

    /* Inception metrics need weights: a clear error, exit 3 */
    snprintf(a, sizeof a, "eval %s --n 10 --metrics fid --inception %s/none.safetensors", run, g_dir);
    rc = run_cli(a, 1, g_out, sizeof g_out);
    CHECK(rc == 3 && strstr(g_out, "tools/convert_inception_weights.py"), "fid without weights: exit %d: %s", rc, g_out);
    /* LG_INCEPTION_WEIGHTS is where eval and fid-stats look without --inception */
    static char cmd[4096];
    snprintf(cmd, sizeof cmd, "LG_INCEPTION_WEIGHTS=%s/env_w.safetensors '%s' eval %s --n 10 --metrics is 2>&1", g_dir,
             g_bin, run);
    rc = lg_test_sh(cmd, g_out, sizeof g_out);
    CHECK(rc == 3 && strstr(g_out, "env_w.safetensors: no such file"), "LG_INCEPTION_WEIGHTS: exit %d: %s", rc, g_out);
    snprintf(cmd, sizeof cmd, "LG_INCEPTION_WEIGHTS=%s/env_w.safetensors '%s' fid-stats %s --out %s/env.safetensors 2>&1",
             g_dir, g_bin, data, g_dir);
    rc = lg_test_sh(cmd, g_out, sizeof g_out);
    CHECK(rc == 3 && strstr(g_out, "env_w.safetensors: no such file"), "fid-stats with LG_INCEPTION_WEIGHTS: exit %d: %s",
          rc, g_out);
    snprintf(a, sizeof a, "eval %s --metrics toy", run);
    rc = run_cli(a, 1, g_out, sizeof g_out);
    CHECK(rc == 2, "toy metric on images: exit %d: %s", rc, g_out);
    snprintf(a, sizeof a, "eval %s --n 10 --metrics cfid --ref %s/none.safetensors", run, g_dir);
    rc = run_cli(a, 1, g_out, sizeof g_out);
    CHECK(rc == 3, "missing --ref file: exit %d: %s", rc, g_out);

    /* two references of one kind, and one no metric uses: separate messages */
    char stats2[300], odd[300];
    snprintf(stats2, sizeof stats2, "%s/cls_stats2.safetensors", g_dir);
    snprintf(odd, sizeof odd, "%s/dim3.safetensors", g_dir);
    memset(&s, 0, sizeof s);
    CHECK(lg_fid_stats_load(&s, stats) == LG_OK && lg_fid_stats_save(&s, stats2, "copy") == LG_OK, "copy %s",
          stats);
    lg_fid_stats_free(&s);
    double mu3[3] = {0, 0, 0}, sig3[9] = {1, 0, 0, 0, 1, 0, 0, 0, 1};
    lg_fid_stats s3 = {.dim = 3, .n = 10, .mu = mu3, .sigma = sig3};
    CHECK(lg_fid_stats_save(&s3, odd, "3-D features") == LG_OK, "write %s: %s", odd, lg_error_msg());
    snprintf(a, sizeof a, "eval %s --n 10 --metrics cfid --ref %s --ref %s", run, stats, stats2);
    rc = run_cli(a, 1, g_out, sizeof g_out);
    CHECK(rc == 2 && strstr(g_out, "cls_stats2.safetensors: a second cfid reference") &&
              strstr(g_out, "cls_stats.safetensors was already given") && !strstr(g_out, "neither"),
          "two cfid references: exit %d: %s", rc, g_out);
    snprintf(a, sizeof a, "eval %s --n 10 --metrics cfid --ref %s --ref %s", run, stats, odd);
    rc = run_cli(a, 1, g_out, sizeof g_out);
    CHECK(rc == 3 && strstr(g_out, "dim3.safetensors: features of dimension 3 are used by no metric") &&
              !strstr(g_out, "second"),
          "a 3-D reference: exit %d: %s", rc, g_out);

    /* CSV is for 2-D data: the message names the generator's image shape */
    snprintf(a, sizeof a, "sample %s -n 4 --out %s/fm.csv", run, g_dir);
    rc = run_cli(a, 1, g_out, sizeof g_out);
    CHECK(rc == 2 && strstr(g_out, "this generator makes 1x32x32 images"), "sample to CSV: exit %d: %s", rc, g_out);
}

/* Statistics of dimension d (identity covariance, n 10) with a given
 * source, written to g_dir/name; the path in out. */
static void write_stats(const char *name, int d, const char *source, char *out, size_t cap) {
    snprintf(out, cap, "%s/%s", g_dir, name);
    lg_fid_stats s = {.dim = d, .n = 10, .mu = calloc((size_t)d, sizeof(double)),
                      .sigma = calloc((size_t)d * d, sizeof(double))};
    LG_ASSERT(s.mu && s.sigma);
    for (int i = 0; i < d; i++) s.sigma[(size_t)i * d + i] = 1;
    CHECK(lg_fid_stats_save(&s, out, source) == LG_OK, "write %s: %s", out, lg_error_msg());
    lg_fid_stats_free(&s);
}

/* --ref files: one no requested metric uses is refused before any work
 * (exit 2, naming file, dimension and metric); a recorded source that
 * disagrees with the generator's shape or the feature network is a warning;
 * NaN, a non-covariance and a pytorch-fid .npz are bad input (exit 3) with
 * the file named; IS with fewer samples than splits is refused up front;
 * fid-stats names IDX data "idx" unless its path says which. */
static void test_ref_checks(void) {
    char run[256], stats[256], a[2048], p[300];
    snprintf(run, sizeof run, "%s/img_run", g_dir);
    snprintf(stats, sizeof stats, "%s/cls_stats.safetensors", g_dir);
    if (access(stats, F_OK) != 0) {
        CHECK(0, "test_image_eval must run first");
        return;
    }
    /* a classifier file with --metrics fid: no Inception needed to refuse it */
    snprintf(a, sizeof a, "eval %s --n 10 --metrics fid --ref %s --inception %s/none.safetensors", run, stats, g_dir);
    int rc = run_cli(a, 1, g_out, sizeof g_out);
    CHECK(rc == 2 && strstr(g_out, "cls_stats.safetensors: classifier statistics (dimension 128) are for cfid") &&
              !strstr(g_out, "no --ref given") && strchr(g_out, '\n') == g_out + strlen(g_out) - 1,
          "128-D --ref with fid: exit %d: %s", rc, g_out);
    write_stats("pool3.safetensors", 2048, NULL, p, sizeof p);
    snprintf(a, sizeof a, "eval %s --n 10 --metrics cfid --ref %s", run, p);
    rc = run_cli(a, 1, g_out, sizeof g_out);
    CHECK(rc == 2 && strstr(g_out, "pool3.safetensors: Inception pool3 statistics (dimension 2048) are for fid"),
          "2048-D --ref with cfid: exit %d: %s", rc, g_out);
    unlink(p);

    /* the source fid-stats recorded: the data shape, named "idx" (not mnist) */
    lg_fid_stats t;
    memset(&t, 0, sizeof t);
    CHECK(lg_fid_stats_load(&t, stats) == LG_OK && strstr(t.source, "(idx, train, 1x32x32)") &&
              strstr(t.source, "lipgan Fashion-MNIST classifier fc1 features (128; test accuracy"),
          "source: %s", t.source);
    lg_fid_stats_free(&t);
    /* ... matches this generator and classifier: no warning */
    snprintf(a, sizeof a, "eval %s --n 20 --metrics cfid --ref %s --quiet --threads 1", run, stats);
    rc = run_cli(a, 1, g_out, sizeof g_out);
    CHECK(rc == 0 && !strstr(g_out, "warning"), "matching --ref: exit %d: %s", rc, g_out);
    /* ... CIFAR-shaped statistics from another network: two warnings, still computed */
    char src[512];
    snprintf(src, sizeof src, "lipgan Fashion-MNIST classifier fc1 features (128; test accuracy 0.1234); data "
                              "/d/cifar, x (cifar10, train, 3x32x32), first 10 of 50000 images");
    write_stats("cifar_src.safetensors", 128, src, p, sizeof p);
    snprintf(a, sizeof a, "eval %s --n 20 --metrics cfid --ref %s --quiet --threads 1", run, p);
    rc = run_cli(a, 1, g_out, sizeof g_out);
    CHECK(rc == 0 && strstr(g_out, "cFID ") &&
              strstr(g_out, "warning: --ref") && strstr(g_out, "3x32x32 images (data /d/cifar, x (cifar10, train, "
                                                                "3x32x32)) but the generator makes 1x32x32") &&
              strstr(g_out, "other features (lipgan Fashion-MNIST classifier fc1 features (128; test accuracy "
                            "0.1234))"),
          "mismatching --ref: exit %d: %s", rc, g_out);

    /* NaN, not a covariance, .npz: exit 3 naming the file */
    memset(&t, 0, sizeof t);
    CHECK(lg_fid_stats_load(&t, stats) == LG_OK, "reload %s", stats);
    t.sigma[5] = NAN;
    snprintf(p, sizeof p, "%s/nan.safetensors", g_dir);
    CHECK(lg_fid_stats_save(&t, p, t.source) == LG_OK, "write %s", p);
    snprintf(a, sizeof a, "eval %s --n 20 --metrics cfid --ref %s --quiet --threads 1", run, p);
    rc = run_cli(a, 1, g_out, sizeof g_out);
    CHECK(rc == 3 && strstr(g_out, "nan.safetensors") && strstr(g_out, "non-finite"), "NaN --ref: exit %d: %s", rc,
          g_out);
    for (int i = 0; i < t.dim * t.dim; i++) t.sigma[i] = i % (t.dim + 1) == 0 ? -1.0 : 0.0; /* -I */
    snprintf(p, sizeof p, "%s/negdef.safetensors", g_dir);
    CHECK(lg_fid_stats_save(&t, p, t.source) == LG_OK, "write %s", p);
    lg_fid_stats_free(&t);
    snprintf(a, sizeof a, "eval %s --n 20 --metrics cfid --ref %s --quiet --threads 1", run, p);
    rc = run_cli(a, 1, g_out, sizeof g_out);
    CHECK(rc == 3 && strstr(g_out, "--ref ") && strstr(g_out, "negdef.safetensors: cfid reference statistics") &&
              strstr(g_out, "not a covariance"),
          "non-covariance --ref: exit %d: %s", rc, g_out);
    snprintf(p, sizeof p, "%s/fid_stats.npz", g_dir);
    FILE *f = fopen(p, "wb");
    CHECK(f && fwrite("PK\003\004\024\000\000\000\000\000", 1, 10, f) == 10 && fclose(f) == 0, "write %s", p);
    snprintf(a, sizeof a, "eval %s --n 20 --metrics cfid --ref %s --quiet", run, p);
    rc = run_cli(a, 1, g_out, sizeof g_out);
    CHECK(rc == 3 && strstr(g_out, "fid_stats.npz: a zip archive") && strstr(g_out, "python3 -c") &&
              !strstr(g_out, "header length"),
          ".npz --ref: exit %d: %s", rc, g_out);

    /* IS needs n >= its 10 splits: refused before the weights are even looked for */
    snprintf(a, sizeof a, "eval %s --n 5 --metrics is --inception %s/none.safetensors", run, g_dir);
    rc = run_cli(a, 1, g_out, sizeof g_out);
    CHECK(rc == 2 && strstr(g_out, "--n 5: is needs at least 10 samples"), "IS with n 5: exit %d: %s", rc, g_out);
}

/* --log is checked before any work, with the reason (here metrics.jsonl is
 * a directory, which fails even for root). */
static void test_log_checked_first(void) {
    char run[256], a[1024], p[300];
    snprintf(run, sizeof run, "%s/toy_run", g_dir);
    char ck[300];
    snprintf(a, sizeof a, "ls %s/ckpt_*.safetensors | head -1", run);
    if (lg_test_sh(a, ck, sizeof ck) != 0 || !ck[0]) {
        CHECK(0, "test_toy_eval must run first");
        return;
    }
    ck[strcspn(ck, "\n")] = '\0';
    snprintf(p, sizeof p, "%s/ro_run", g_dir);
    CHECK(mkdir(p, 0700) == 0, "mkdir %s", p);
    snprintf(a, sizeof a, "cp %s %s/ && mkdir %s/metrics.jsonl", ck, p, p);
    CHECK(system(a) == 0, "%s", a);
    snprintf(a, sizeof a, "eval %s --n 100 --log --threads 1", p);
    int rc = run_cli(a, 1, g_out, sizeof g_out);
    CHECK(rc == 1 && strstr(g_out, "ro_run/metrics.jsonl: Is a directory") && !strstr(g_out, "samples, seed") &&
              !strstr(g_out, "modes covered"),
          "--log into an unwritable metrics.jsonl: exit %d: %s", rc, g_out);
}

/* --log appends to a run directory's metrics.jsonl: a checkpoint outside
 * one (no config.yaml or metrics.jsonl next to it) is refused (exit 2)
 * and no metrics.jsonl is made there; --ref a directory is bad input (3). */
static void test_log_needs_run_dir(void) {
    char run[256], a[5120], ck[300], loose[300], p[400];
    snprintf(run, sizeof run, "%s/toy_run", g_dir);
    snprintf(a, sizeof a, "ls %s/ckpt_*.safetensors | head -1", run);
    if (lg_test_sh(a, ck, sizeof ck) != 0 || !ck[0]) {
        CHECK(0, "test_toy_eval must run first");
        return;
    }
    ck[strcspn(ck, "\n")] = '\0';
    snprintf(loose, sizeof loose, "%s/loose", g_dir);
    CHECK(mkdir(loose, 0700) == 0, "mkdir %s", loose);
    snprintf(a, sizeof a, "cp %s %s/c.safetensors", ck, loose);
    CHECK(system(a) == 0, "%s", a);
    char bin[4096];
    CHECK(realpath(g_bin, bin) != NULL, "realpath %s", g_bin);
    snprintf(a, sizeof a, "cd %s && '%s' eval c.safetensors --n 100 --log --threads 1 2>&1", loose, bin);
    int rc = lg_test_sh(a, g_out, sizeof g_out);
    snprintf(p, sizeof p, "%s/metrics.jsonl", loose);
    CHECK(rc == 2 && strstr(g_out, "not in a run directory") && strstr(g_out, "drop --log") &&
              !strstr(g_out, "modes covered") && access(p, F_OK) != 0,
          "--log outside a run directory: exit %d, %s made %d: %s", rc, p, access(p, F_OK) == 0, g_out);
    /* the run directory's own checkpoint: fine (config.yaml is there) */
    snprintf(a, sizeof a, "eval %s --n 100 --log --quiet --threads 1", ck);
    rc = run_cli(a, 1, g_out, sizeof g_out);
    CHECK(rc == 0, "--log in the run directory: exit %d: %s", rc, g_out);
    /* --ref a directory: bad input, 3 */
    snprintf(a, sizeof a, "eval %s --n 100 --metrics toy --ref %s", run, loose);
    rc = run_cli(a, 1, g_out, sizeof g_out);
    CHECK(rc == 3 && strstr(g_out, "is a directory") && strstr(g_out, "lipgan fid-stats"), "--ref DIR: exit %d: %s", rc,
          g_out);
    /* sample's and report's --out a directory: usage (2), report's example is .html */
    snprintf(a, sizeof a, "sample %s -n 4 --out %s/", run, loose);
    rc = run_cli(a, 1, g_out, sizeof g_out);
    CHECK(rc == 2, "sample --out a directory: exit %d: %s", rc, g_out);
    snprintf(p, sizeof p, "%s/d.png", loose);
    CHECK(mkdir(p, 0700) == 0, "mkdir %s", p);
    snprintf(a, sizeof a, "sample %s -n 4 --out %s", run, p);
    rc = run_cli(a, 1, g_out, sizeof g_out);
    CHECK(rc == 2 && strstr(g_out, "is a directory") && strstr(g_out, "d.png/out.png"),
          "sample --out a directory: exit %d: %s", rc, g_out);
    snprintf(a, sizeof a, "report %s --out %s", run, loose);
    rc = run_cli(a, 1, g_out, sizeof g_out);
    CHECK(rc == 2 && strstr(g_out, "is a directory") && strstr(g_out, "loose/out.html") &&
              !strstr(g_out, ".safetensors"),
          "report --out a directory: exit %d: %s", rc, g_out);
}

/* fid-stats' flags: a value the data cannot take names the flag (exit 2),
 * and --out must be named .safetensors (what is written). */
static void test_fid_stats_flags(void) {
    char data[256], a[1024], p[300];
    snprintf(data, sizeof data, "%s/idx", g_dir); /* 28x28, from test_image_eval */
    snprintf(p, sizeof p, "%s/f.safetensors", g_dir);
    const struct {
        const char *flags, *want;
    } bad[] = {
        {"--split unlabeled", "--split unlabeled: only stl10 has an unlabeled split"},
        {"--image-size 17", "--image-size 17: "},
        {"--format cifar10 --image-size 64", "--image-size 64: cifar10 images are 32x32"},
    };
    for (int i = 0; i < 3; i++) {
        snprintf(a, sizeof a, "fid-stats %s --features classifier --out %s %s --quiet", data, p, bad[i].flags);
        int rc = run_cli(a, 1, g_out, sizeof g_out);
        CHECK(rc == 2 && strstr(g_out, bad[i].want) && strchr(g_out, '\n') == g_out + strlen(g_out) - 1 &&
                  access(p, F_OK) != 0,
              "fid-stats %s: exit %d: %s", bad[i].flags, rc, g_out);
    }
    CHECK(strstr(g_out, "use 0 or 32") != NULL, "the fix is named: %s", g_out);
    snprintf(a, sizeof a, "fid-stats %s --features classifier --out %s --image-size 17", data, p);
    run_cli(a, 1, g_out, sizeof g_out);
    CHECK(strstr(g_out, "28..4096") && !strstr(g_out, "pad_to"), "--image-size 17 names the fix: %s", g_out);
    snprintf(a, sizeof a, "fid-stats %s --features classifier --out %s/x.npz", data, g_dir);
    int rc = run_cli(a, 1, g_out, sizeof g_out);
    snprintf(p, sizeof p, "%s/x.npz", g_dir);
    CHECK(rc == 2 && strstr(g_out, ".safetensors") && access(p, F_OK) != 0, "fid-stats --out x.npz: exit %d: %s", rc,
          g_out);
}

/* --out of sample, report and fid-stats never replaces a checkpoint (by
 * content, any name), a run's own files or the command's input (exit 2,
 * file untouched); an earlier output of the same kind may be replaced. */
static void test_out_protected(void) {
    char run[256], a[2048], ck[300], p[300];
    snprintf(run, sizeof run, "%s/toy_run", g_dir);
    snprintf(a, sizeof a, "ls %s/ckpt_*.safetensors | tail -1", run);
    if (lg_test_sh(a, ck, sizeof ck) != 0 || !ck[0]) {
        CHECK(0, "test_toy_eval must run first");
        return;
    }
    ck[strcspn(ck, "\n")] = '\0';
    struct stat before, after;
    CHECK(stat(ck, &before) == 0, "stat %s", ck);
    snprintf(a, sizeof a, "cp %s %s/renamed.safetensors", ck, g_dir);
    CHECK(system(a) == 0, "%s", a);
    const char *targets[] = {ck, "renamed.safetensors"}; /* sample takes .png/.safetensors/.csv names only */
    for (int i = 0; i < 2; i++) {
        if (targets[i][0] == '/') snprintf(p, sizeof p, "%s", targets[i]);
        else snprintf(p, sizeof p, "%s/%s", g_dir, targets[i]);
        snprintf(a, sizeof a, "sample %s -n 4 --out %s", run, p);
        int rc = run_cli(a, 1, g_out, sizeof g_out);
        CHECK(rc == 2 && strstr(g_out, p) && strstr(g_out, "choose another path") &&
                  strchr(g_out, '\n') == g_out + strlen(g_out) - 1,
              "sample --out %s: exit %d: %s", p, rc, g_out);
    }
    CHECK(stat(ck, &after) == 0 && after.st_size == before.st_size && after.st_mtime == before.st_mtime &&
              after.st_ino == before.st_ino,
          "the checkpoint was replaced");
    /* CKPT itself as the output (a copy with a .safetensors name is a checkpoint too) */
    snprintf(a, sizeof a, "sample %s/renamed.safetensors -n 4 --out %s/renamed.safetensors", g_dir, g_dir);
    int rc = run_cli(a, 1, g_out, sizeof g_out);
    CHECK(rc == 2, "sample over its own CKPT: exit %d: %s", rc, g_out);
    /* an earlier grid, twice: allowed */
    for (int i = 0; i < 2; i++) {
        snprintf(a, sizeof a, "sample %s -n 4 --out %s/grid.png", run, g_dir);
        rc = run_cli(a, 1, g_out, sizeof g_out);
        CHECK(rc == 0, "sample --out grid.png (run %d): exit %d: %s", i, rc, g_out);
    }
    /* report: the run's own files refused (unchanged), an earlier report replaced */
    const char *own[] = {"metrics.jsonl", "config.yaml"};
    for (int i = 0; i < 2; i++) {
        snprintf(p, sizeof p, "%s/%s", run, own[i]);
        CHECK(stat(p, &before) == 0, "stat %s", p);
        snprintf(a, sizeof a, "report %s --out %s", run, p);
        rc = run_cli(a, 1, g_out, sizeof g_out);
        CHECK(rc == 2 && strstr(g_out, "run directory's own file") && strstr(g_out, own[i]) &&
                  stat(p, &after) == 0 && after.st_ino == before.st_ino && after.st_size == before.st_size,
              "report --out %s: exit %d: %s", own[i], rc, g_out);
    }
    for (int i = 0; i < 2; i++) {
        snprintf(a, sizeof a, "report %s --out %s/r.html", run, g_dir);
        rc = run_cli(a, 1, g_out, sizeof g_out);
        CHECK(rc == 0, "report --out r.html (run %d): exit %d: %s", i, rc, g_out);
    }
    /* fid-stats: its input (the weights file) refused, before anything is loaded */
    char data[256];
    snprintf(data, sizeof data, "%s/idx", g_dir);
    snprintf(p, sizeof p, "%s/weights.safetensors", g_dir);
    CHECK(write_file(g_dir, "weights.safetensors", "x") == 0, "write %s", p);
    snprintf(a, sizeof a, "fid-stats %s --out %s --features classifier --classifier %s", data, p, p);
    rc = run_cli(a, 1, g_out, sizeof g_out);
    CHECK(rc == 2 && strstr(g_out, "is this command's input"), "fid-stats over its input: exit %d: %s", rc, g_out);
    /* a run's file by name (ckpt_*.safetensors, whatever it holds), wherever
     * it lies (fid-stats takes .safetensors names only) */
    CHECK(write_file(g_dir, "ckpt_000000010.safetensors", "x") == 0, "write ckpt_000000010.safetensors");
    snprintf(a, sizeof a, "fid-stats %s --out %s/ckpt_000000010.safetensors --features classifier", data, g_dir);
    rc = run_cli(a, 1, g_out, sizeof g_out);
    CHECK(rc == 2 && strstr(g_out, "ckpt_000000010.safetensors: is a run directory's own file"),
          "fid-stats --out ckpt_000000010.safetensors: exit %d: %s", rc, g_out);
    /* another lipgan file kind (a classifier, by its format metadata) is
     * refused; FID statistics may be replaced by fid-stats, not by sample */
    const char *kinds[2] = {"lipgan-classifier-1", LG_FID_STATS_FORMAT};
    for (int i = 0; i < 2; i++) {
        float one = 1.0f; /* (1) */
        lg_st_writer *w = NULL;
        snprintf(p, sizeof p, "%s/kind%d.safetensors", g_dir, i);
        CHECK_OK(lg_st_writer_create(&w));
        CHECK_OK(lg_st_writer_add_meta(w, "format", kinds[i]));
        CHECK_OK(lg_st_writer_add_f32(w, "x", 1, (int64_t[]){1}, &one));
        CHECK_OK(lg_st_writer_write(w, p, 0));
        lg_st_writer_free(w);
        CHECK(stat(p, &before) == 0, "stat %s", p);
        snprintf(a, sizeof a, "sample %s -n 4 --out %s", run, p);
        rc = run_cli(a, 1, g_out, sizeof g_out);
        CHECK(rc == 2 && strstr(g_out, "a lipgan file of another kind") && strstr(g_out, kinds[i]) &&
                  stat(p, &after) == 0 && after.st_ino == before.st_ino,
              "sample --out over a %s file: exit %d: %s", kinds[i], rc, g_out);
    }
    snprintf(a, sizeof a, "fid-stats %s --out %s/kind1.safetensors --features classifier", data, g_dir);
    rc = run_cli(a, 1, g_out, sizeof g_out);
    CHECK(rc == 0, "fid-stats over an earlier stats file: exit %d: %s", rc, g_out);
}

/* The report counts sample images it could not read. */
static void test_report_bad_png(void) {
    char run[256], a[1024], d[300];
    snprintf(run, sizeof run, "%s/toy_run", g_dir);
    snprintf(d, sizeof d, "%s/samples", run);
    mkdir(d, 0700);
    snprintf(a, sizeof a, "sample %s -n 4 --out %s/step_000010.png", run, d);
    int rc = run_cli(a, 1, g_out, sizeof g_out);
    CHECK(rc == 0, "sample grid: exit %d: %s", rc, g_out);
    CHECK(write_file(d, "step_000020.png", "not a png") == 0, "write a corrupt png");
    snprintf(a, sizeof a, "report %s --out %s/rep.html", run, g_dir);
    rc = run_cli(a, 1, g_out, sizeof g_out);
    CHECK(rc == 0 && strstr(g_out, "lipgan report: warning: 1 of ") &&
              strstr(g_out, " sample images are not readable PNG files (e.g. ") && strstr(g_out, "step_000020.png"),
          "report with a corrupt sample image: exit %d: %s", rc, g_out);
}

/* fid-stats says what it found when the data is in a form it does not read. */
static void test_fid_stats_data_messages(void) {
    char d[300], a[1024];
    /* torchvision's CIFAR-10 download: pickles */
    snprintf(d, sizeof d, "%s/cifar-10-batches-py", g_dir);
    CHECK(mkdir(d, 0700) == 0 && write_file(d, "data_batch_1", "pickle") == 0 &&
              write_file(d, "batches.meta", "pickle") == 0,
          "pickle fixture");
    snprintf(a, sizeof a, "fid-stats %s --out %s/p.safetensors --features classifier", d, g_dir);
    int rc = run_cli(a, 1, g_out, sizeof g_out);
    CHECK(rc == 3 && strstr(g_out, "python (pickle) version") && strstr(g_out, "cifar-10-batches-bin") &&
              !strstr(g_out, "no .png"),
          "fid-stats on cifar-10-batches-py: exit %d: %s", rc, g_out);
    /* an ImageFolder tree is detected as png and goes to the png loader,
     * which reads class folders (here it meets the damaged image) */
    snprintf(d, sizeof d, "%s/imgfolder", g_dir);
    char sub[320];
    snprintf(sub, sizeof sub, "%s/cat", d);
    CHECK(mkdir(d, 0700) == 0 && mkdir(sub, 0700) == 0 && write_file(sub, "a.png", "x") == 0, "ImageFolder fixture");
    snprintf(a, sizeof a, "fid-stats %s --out %s/p.safetensors --features classifier", d, g_dir);
    rc = run_cli(a, 1, g_out, sizeof g_out);
    CHECK(rc == 3 && strstr(g_out, "cat/a.png") && !strstr(g_out, "no data set files recognized") &&
              !strstr(g_out, "no .png"),
          "fid-stats on an ImageFolder tree: exit %d: %s", rc, g_out);
    /* one image: bad data (3), not a config error */
    snprintf(d, sizeof d, "%s/one", g_dir);
    CHECK(mkdir(d, 0700) == 0 && tf_write_idx_dir(d, 1) == 0, "one-image fixture");
    snprintf(a, sizeof a, "fid-stats %s --out %s/p.safetensors --features classifier --quiet", d, g_dir);
    rc = run_cli(a, 1, g_out, sizeof g_out);
    CHECK(rc == 3 && strstr(g_out, "1 image(s); a covariance needs at least 2"), "fid-stats on 1 image: exit %d: %s",
          rc, g_out);
}

/* Without --ref, fid and kid take their real features from one Inception
 * pass (synthetic weights, 2 real images). The run is cut when the samples
 * are drawn (sed quits, the next progress line gets SIGPIPE), so the
 * costly 2048-D FID itself is never computed. */
/* run: test_image_eval's run directory; w: synthetic Inception weights of
 * seed written to g_dir/name. 0 when both are there. */
static int image_run_and_weights(char *run, size_t rcap, char *w, size_t wcap, const char *name, uint32_t seed) {
    snprintf(run, rcap, "%s/img_run", g_dir);
    snprintf(w, wcap, "%s/%s", g_dir, name);
    if (access(run, F_OK) != 0) {
        CHECK(0, "test_image_eval must run first");
        return -1;
    }
    lg_status s = lg_inception_write_synthetic(w, seed);
    CHECK(s == LG_OK, "synthetic weights: %s", lg_error_msg());
    return s == LG_OK ? 0 : -1;
}

static void test_fid_kid_share_features(void) {
    char run[256], w[300], a[2048];
    if (image_run_and_weights(run, sizeof run, w, sizeof w, "inception_synth.safetensors", 1) != 0) return;
    snprintf(a, sizeof a,
             "eval %s --metrics fid,kid --n 2 --ref-n 2 --inception %s --threads 2 2>&1 | sed '/samples, seed/q'",
             run, w);
    int rc = run_cli(a, 2, g_out, sizeof g_out);
    int passes = 0;
    for (const char *q = g_out; (q = strstr(q, "inception features: 2/2 images")); q++) passes++;
    CHECK(rc == 0 && passes == 1 && strstr(g_out, "fid reference from the same 2 real images' features") &&
              strstr(g_out, "samples, seed"),
          "fid,kid: %d passes over the real images (want 1): %s", passes, g_out);
    unlink(w);
}

/* is,fid,kid end to end (synthetic Inception weights, 10 generated and 10
 * real images): exit 0 and a JSON row with every metric, finite, on the
 * counts asked; and the FID from eval's own reference (the real features
 * KID also uses) equals the one against `fid-stats` of the same images. */
static void test_inception_metrics_end_to_end(void) {
    char run[256], w[300], ref[300], data[300], a[2048];
    if (image_run_and_weights(run, sizeof run, w, sizeof w, "inception_e2e.safetensors", 2) != 0) return;
    snprintf(data, sizeof data, "%s/idx", g_dir);
    snprintf(ref, sizeof ref, "%s/inception_ref.safetensors", g_dir);
    snprintf(a, sizeof a, "eval %s --metrics is,fid,kid --n 10 --ref-n 10 --inception %s --json --quiet --threads 2",
             run, w);
    int rc = run_cli(a, 0, g_out, sizeof g_out);
    cJSON *j = rc == 0 ? cJSON_Parse(g_out) : NULL;
    const cJSON *is = cJSON_GetObjectItem(j, "is"), *fid = cJSON_GetObjectItem(j, "fid"),
                *kid = cJSON_GetObjectItem(j, "kid");
    double ism = cJSON_GetNumberValue(cJSON_GetObjectItem(is, "mean")),
           f1 = cJSON_GetNumberValue(cJSON_GetObjectItem(fid, "value")),
           km = cJSON_GetNumberValue(cJSON_GetObjectItem(kid, "mean"));
    CHECK(j && isfinite(ism) && ism >= 1 - 1e-6 && cJSON_GetNumberValue(cJSON_GetObjectItem(is, "n")) == 10 &&
              isfinite(f1) && f1 >= 0 && cJSON_GetNumberValue(cJSON_GetObjectItem(fid, "n_ref")) == 10 &&
              isfinite(km) && cJSON_GetNumberValue(cJSON_GetObjectItem(kid, "n")) == 10 &&
              cJSON_GetNumberValue(cJSON_GetObjectItem(kid, "n_ref")) == 10,
          "is,fid,kid: exit %d: %s", rc, g_out);
    cJSON_Delete(j);
    snprintf(a, sizeof a, "fid-stats %s --out %s --n 10 --inception %s --quiet --threads 2", data, ref, w);
    rc = run_cli(a, 1, g_out, sizeof g_out);
    CHECK(rc == 0, "fid-stats: exit %d: %s", rc, g_out);
    snprintf(a, sizeof a, "eval %s --metrics fid --n 10 --ref %s --inception %s --json --quiet --threads 2", run, ref,
             w);
    rc = run_cli(a, 0, g_out, sizeof g_out);
    j = rc == 0 ? cJSON_Parse(g_out) : NULL;
    double f2 = cJSON_GetNumberValue(cJSON_GetObjectItem(cJSON_GetObjectItem(j, "fid"), "value"));
    CHECK(j && fabs(f2 - f1) <= 1e-9 * fabs(f1), "FID with --ref %.12g, with eval's own reference %.12g: %s", f2, f1,
          g_out);
    cJSON_Delete(j);
    unlink(w);
    unlink(ref);
}

/* The FID of the last metrics.jsonl row of run (NAN if none). */
static double last_eval_fid(const char *run) {
    char p[300];
    snprintf(p, sizeof p, "%s/metrics.jsonl", run);
    FILE *f = fopen(p, "r");
    if (!f) return NAN;
    static char line[1 << 16], last[1 << 16];
    last[0] = '\0';
    while (fgets(line, sizeof line, f)) memcpy(last, line, sizeof line);
    fclose(f);
    cJSON *j = cJSON_Parse(last);
    const cJSON *fid = cJSON_GetObjectItem(cJSON_GetObjectItem(cJSON_GetObjectItem(j, "eval"), "fid"), "value");
    double v = cJSON_IsNumber(fid) ? fid->valuedouble : NAN;
    cJSON_Delete(j);
    return v;
}

/* Evaluation during training with Inception metrics (synthetic weights):
 * with kid, fid's reference statistics come from kid's real features (one
 * Inception pass over them, as lipgan eval), and the FID equals the one of
 * a run that computes fid alone through the streaming statistics. */
static void test_train_eval_inception(void) {
    char w[300], a[2048], run1[300], run2[300];
    snprintf(w, sizeof w, "%s/inception_train.safetensors", g_dir);
    snprintf(run1, sizeof run1, "%s/ev_fid", g_dir);
    snprintf(run2, sizeof run2, "%s/ev_fid_kid", g_dir);
    CHECK(lg_inception_write_synthetic(w, 4) == LG_OK, "synthetic weights: %s", lg_error_msg());
    const char *common = "--set eval.every=2 --set eval.n=10 --set eval.ref_n=10 --set log.checkpoint_every=0";
    snprintf(a, sizeof a, "train %s/img.yaml --out %s %s --set eval.metrics=fid --set eval.inception=%s", g_dir, run1,
             common, w);
    int rc = run_cli(a, 1, g_out, sizeof g_out);
    CHECK(rc == 0 && strstr(g_out, "eval: fid reference statistics of 10 training images"), "fid: exit %d: %s", rc,
          g_out);
    snprintf(a, sizeof a, "train %s/img.yaml --out %s %s --set eval.metrics=fid,kid --set eval.inception=%s", g_dir,
             run2, common, w);
    rc = run_cli(a, 1, g_out, sizeof g_out);
    CHECK(rc == 0 && strstr(g_out, "eval: kid reference features of 10 training images") &&
              strstr(g_out, "eval: fid reference statistics from the same 10 images' features") &&
              !strstr(g_out, "fid reference statistics of") && strstr(g_out, "KID "),
          "fid,kid: exit %d: %s", rc, g_out);
    double f1 = last_eval_fid(run1), f2 = last_eval_fid(run2);
    CHECK(isfinite(f1) && fabs(f2 - f1) <= 1e-9 * fabs(f1), "FID alone %.12g, with kid's features %.12g", f1, f2);
    unlink(w);
}

/* 1 if dir holds a file whose name contains ".tmp." */
static int has_temp_file(const char *dir) {
    DIR *d = opendir(dir);
    if (!d) return 0;
    int found = 0;
    for (struct dirent *e; (e = readdir(d));) found |= strstr(e->d_name, ".tmp.") != NULL;
    closedir(d);
    return found;
}

/* An --out that cannot be written fails before the data is read or any
 * epoch/feature is computed (no progress line), naming the path. */
static void test_out_checked_first(void) {
    char data[256], a[1024];
    snprintf(data, sizeof data, "%s/idx", g_dir);
    struct stat sb;
    if (stat(data, &sb) != 0) CHECK(mkdir(data, 0700) == 0 && tf_write_idx_dir(data, 300) == 0, "IDX fixture");
    /* a test split too, so train-classifier could run (and did, before --out was checked first) */
    const char *split[2][2] = {{"train-images-idx3-ubyte", "t10k-images-idx3-ubyte"},
                               {"train-labels-idx1-ubyte", "t10k-labels-idx1-ubyte"}};
    for (int i = 0; i < 2; i++) {
        char from[300], to[300];
        snprintf(from, sizeof from, "%s/%s", data, split[i][0]);
        snprintf(to, sizeof to, "%s/%s", data, split[i][1]);
        if (access(to, F_OK) != 0) CHECK(symlink(from, to) == 0, "symlink %s", to);
    }
    /* a path that is wrong (no such directory, a directory) is a usage error,
     * 2; a write the system refuses (/proc, as root) a runtime error, 1 */
    char isdir[300];
    snprintf(isdir, sizeof isdir, "%s/is_a_dir.safetensors", g_dir);
    CHECK(mkdir(isdir, 0700) == 0, "mkdir %s", isdir);
    const char *bad[] = {"/proc/c.safetensors", "/nonexistent_dir/c.safetensors", g_dir, isdir};
    const int want[] = {-1, 2, 2, 2};
    for (int i = 0; i < 4; i++) {
        snprintf(a, sizeof a, "train-classifier --data %s --out %s --epochs 1 --threads 1", data, bad[i]);
        int rc = run_cli(a, 1, g_out, sizeof g_out);
        CHECK((want[i] < 0 ? rc == 1 || rc == 2 : rc == want[i]) && strstr(g_out, bad[i]) &&
                  !strstr(g_out, "training images") && strchr(g_out, '\n') == g_out + strlen(g_out) - 1,
              "train-classifier --out %s: exit %d: %s", bad[i], rc, g_out);
        snprintf(a, sizeof a, "fid-stats %s --out %s --features classifier --threads 1", data, bad[i]);
        rc = run_cli(a, 1, g_out, sizeof g_out);
        CHECK((want[i] < 0 ? rc == 1 || rc == 2 : rc == want[i]) && strstr(g_out, bad[i]) &&
                  !strstr(g_out, "images of") && strchr(g_out, '\n') == g_out + strlen(g_out) - 1,
              "fid-stats --out %s: exit %d: %s", bad[i], rc, g_out);
    }
    CHECK(strstr(g_out, "is_a_dir.safetensors: is a directory") &&
              strstr(g_out, "is_a_dir.safetensors/out.safetensors"),
          "--out a directory: %s", g_out);
    CHECK(!has_temp_file(g_dir), "a temp file was left in %s", g_dir);
}

/* Reads a whole file into a malloc'd buffer (NULL on failure). */
static unsigned char *slurp(const char *path, long *len) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    unsigned char *b = NULL;
    if (fseek(f, 0, SEEK_END) == 0 && (*len = ftell(f)) > 0 && fseek(f, 0, SEEK_SET) == 0 &&
        (b = malloc((size_t)*len)) && fread(b, 1, (size_t)*len, f) != (size_t)*len) {
        free(b);
        b = NULL;
    }
    fclose(f);
    return b;
}

/* train-classifier end to end on a tiny IDX set (run after
 * test_out_checked_first, which writes it with a test split): exit 0, the
 * printed accuracy is the one in the file's metadata with the command and
 * the test size, the file loads as a classifier, and a second run over the
 * first file (which --out may replace) writes the same bytes, as --help
 * promises for the same thread count. */
static void test_train_classifier_runs(void) {
    char data[256], out[300], a[1024];
    snprintf(data, sizeof data, "%s/idx", g_dir);
    snprintf(out, sizeof out, "%s/cls.safetensors", g_dir);
    snprintf(a, sizeof a, "train-classifier --data %s --out %s --epochs 2 --batch 64 --seed 5 --threads 1 -q",
             data, out);
    int rc = run_cli(a, 0, g_out, sizeof g_out);
    double acc = -1;
    long long n = -1;
    CHECK(rc == 0 && sscanf(g_out, "test accuracy %lf on %lld images", &acc, &n) == 2 && n == 300 &&
              acc >= 0 && acc <= 1 && strstr(g_out, out),
          "train-classifier: exit %d: %s", rc, g_out);
    long len1 = 0, len2 = 0;
    unsigned char *b1 = slurp(out, &len1);
    lg_classifier *c = NULL;
    CHECK_OK(lg_classifier_load(&c, out, NULL));
    if (c) {
        const lg_classifier_info *in = lg_classifier_get_info(c);
        CHECK(in->test_n == 300 && fabs(in->test_accuracy - acc) <= 5e-5 && in->epochs == 2 &&
                  in->seed == 5 && strstr(in->command, "train-classifier") && strstr(in->command, "--seed 5"),
              "metadata: n %lld accuracy %g (printed %g) epochs %d seed %llu command '%s'", (long long)in->test_n,
              in->test_accuracy, acc, in->epochs, (unsigned long long)in->seed, in->command);
        lg_classifier_free(c);
    }
    rc = run_cli(a, 0, g_out, sizeof g_out);
    unsigned char *b2 = slurp(out, &len2);
    CHECK(rc == 0 && b1 && b2 && len1 == len2 && !memcmp(b1, b2, (size_t)len1),
          "second run over the first file: exit %d, %ld and %ld bytes, %s", rc, len1, len2,
          b1 && b2 && len1 == len2 && !memcmp(b1, b2, (size_t)len1) ? "equal" : "different");
    free(b1);
    free(b2);
    CHECK(!has_temp_file(g_dir), "a temp file was left in %s", g_dir);
    /* --device: a bad value is a usage error; cuda trains where a GPU is,
     * elsewhere it fails before any epoch and leaves the file alone */
    snprintf(a, sizeof a, "train-classifier --data %s --out %s --epochs 1 --device tpu", data, out);
    rc = run_cli(a, 1, g_out, sizeof g_out);
    CHECK(rc == 2 && strstr(g_out, "--device tpu: unknown backend"), "--device tpu: exit %d: %s", rc, g_out);
    snprintf(a, sizeof a, "train-classifier --data %s --out %s --epochs 1 --batch 64 --device cuda -q", data, out);
    rc = run_cli(a, 1, g_out, sizeof g_out);
    if (lg_backend_cuda()) {
        CHECK(rc == 0 && strstr(g_out, "test accuracy"), "--device cuda: exit %d: %s", rc, g_out);
    } else {
        unsigned char *b3 = slurp(out, &len2);
        CHECK(rc == 1 && strcasestr(g_out, "cuda") && b3 && len2 == len1, "--device cuda without a GPU: exit %d: %s", rc,
              g_out);
        free(b3);
    }
}

int main(void) {
    if (lg_test_cli_path(g_bin, sizeof g_bin) != 0) return 1;
    if (tf_mkdtemp(g_dir, sizeof g_dir) != 0) {
        fprintf(stderr, "test_cli_eval: cannot create a temp directory\n");
        return 1;
    }
    LG_TEST_RUN(test_help_and_usage);
    LG_TEST_RUN(test_missing_files);
    LG_TEST_RUN(test_toy_eval);
    LG_TEST_RUN(test_image_eval);
    LG_TEST_RUN(test_ref_checks);
    LG_TEST_RUN(test_log_checked_first);
    LG_TEST_RUN(test_log_needs_run_dir);
    LG_TEST_RUN(test_fid_stats_flags);
    LG_TEST_RUN(test_out_protected);
    LG_TEST_RUN(test_report_bad_png);
    LG_TEST_RUN(test_fid_stats_data_messages);
    LG_TEST_RUN(test_fid_kid_share_features);
    LG_TEST_RUN(test_inception_metrics_end_to_end);
    LG_TEST_RUN(test_train_eval_inception);
    LG_TEST_RUN(test_out_checked_first);
    LG_TEST_RUN(test_train_classifier_runs);
    tf_rm_rf(g_dir);
    return lg_test_summary("test_cli_eval");
}
