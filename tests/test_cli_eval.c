/* `lipgan eval`, `lipgan fid-stats` and `lipgan train-classifier` as a user
 * runs them ($BUILD/lipgan, from the repository root):
 *  - help and usage errors (exit 2), missing files (exit 3, with a message
 *    that says how to get them: Inception weights via
 *    tools/convert_inception_weights.py, the classifier via
 *    train-classifier);
 *  - fid-stats with classifier features on a small IDX directory: the file
 *    loads back with n, dim 128 and finite values;
 *  - eval of a toy checkpoint made by a 20-step `lipgan train` run: text,
 *    --json and --log (a row appended to the run's metrics.jsonl);
 *  - eval of a tiny Fashion-MNIST-shaped checkpoint: cfid,classes with the
 *    reference computed from the data and with --ref from fid-stats;
 *    fid without Inception weights fails with exit 3. */
#include "lg_test.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "lipgan/metrics.h"
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
    snprintf(a, sizeof a, "eval %s --metrics tyo", run);
    rc = run_cli(a, 1, g_out, sizeof g_out);
    CHECK(rc == 4 && strstr(g_out, "unknown metric 'tyo'"), "unknown metric: exit %d: %s", rc, g_out);
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
    snprintf(a, sizeof a, "eval %s --n 100 --metrics cfid --ref %s --json --quiet --threads 1", run, stats);
    rc = run_cli(a, 0, g_out, sizeof g_out);
    CHECK(rc == 0 && strstr(g_out, "\"cfid\":{") && strstr(g_out, "\"n_ref\":150") && !strstr(g_out, "\"classes\""),
          "eval --ref: exit %d: %s", rc, g_out);

    /* Inception metrics need weights: a clear error, exit 3 */
    snprintf(a, sizeof a, "eval %s --n 10 --metrics fid --inception %s/none.safetensors", run, g_dir);
    rc = run_cli(a, 1, g_out, sizeof g_out);
    CHECK(rc == 3 && strstr(g_out, "tools/convert_inception_weights.py"), "fid without weights: exit %d: %s", rc, g_out);
    snprintf(a, sizeof a, "eval %s --metrics toy", run);
    rc = run_cli(a, 1, g_out, sizeof g_out);
    CHECK(rc == 2, "toy metric on images: exit %d: %s", rc, g_out);
    snprintf(a, sizeof a, "eval %s --n 10 --metrics cfid --ref %s/none.safetensors", run, g_dir);
    rc = run_cli(a, 1, g_out, sizeof g_out);
    CHECK(rc == 3, "missing --ref file: exit %d: %s", rc, g_out);
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
    tf_rm_rf(g_dir);
    return lg_test_summary("test_cli_eval");
}
