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
 *    fid without Inception weights fails with exit 3; --ref files of an
 *    unused dimension or a second one of a kind have messages of their own;
 *  - sample --out x.csv of an image run names the image shape;
 *  - train-classifier and fid-stats check that --out can be written before
 *    any work (no progress line), leaving no temp file. */
#include "lg_test.h"

#include <dirent.h>
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

    /* two references of one kind, and one no metric uses: separate messages */
    char stats2[300], odd[300];
    snprintf(stats2, sizeof stats2, "%s/cls_stats2.safetensors", g_dir);
    snprintf(odd, sizeof odd, "%s/dim3.safetensors", g_dir);
    memset(&s, 0, sizeof s);
    CHECK(lg_fid_stats_load(&s, stats) == LG_OK && lg_fid_stats_save(&s, stats2, "copy") == LG_OK, "copy %s",
          stats);
    lg_fid_stats_free(&s);
    double mu3[3] = {0, 0, 0}, sig3[9] = {1, 0, 0, 0, 1, 0, 0, 0, 1};
    lg_fid_stats s3 = {3, 10, mu3, sig3};
    CHECK(lg_fid_stats_save(&s3, odd, "3-D features") == LG_OK, "write %s: %s", odd, lg_error_msg());
    snprintf(a, sizeof a, "eval %s --n 10 --metrics cfid --ref %s --ref %s", run, stats, stats2);
    rc = run_cli(a, 1, g_out, sizeof g_out);
    CHECK(rc == 4 && strstr(g_out, "cls_stats2.safetensors: a second cfid reference") &&
              strstr(g_out, "cls_stats.safetensors was already given") && !strstr(g_out, "neither"),
          "two cfid references: exit %d: %s", rc, g_out);
    snprintf(a, sizeof a, "eval %s --n 10 --metrics cfid --ref %s --ref %s", run, stats, odd);
    rc = run_cli(a, 1, g_out, sizeof g_out);
    CHECK(rc == 4 && strstr(g_out, "dim3.safetensors: features of dimension 3 are used by no metric") &&
              !strstr(g_out, "second"),
          "a 3-D reference: exit %d: %s", rc, g_out);

    /* CSV is for 2-D data: the message names the generator's image shape */
    snprintf(a, sizeof a, "sample %s -n 4 --out %s/fm.csv", run, g_dir);
    rc = run_cli(a, 1, g_out, sizeof g_out);
    CHECK(rc == 2 && strstr(g_out, "this generator makes 1x32x32 images"), "sample to CSV: exit %d: %s", rc, g_out);
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
    const char *bad[] = {"/proc/c.safetensors", "/nonexistent_dir/c.safetensors", g_dir};
    for (int i = 0; i < 3; i++) {
        snprintf(a, sizeof a, "train-classifier --data %s --out %s --epochs 1 --threads 1", data, bad[i]);
        int rc = run_cli(a, 1, g_out, sizeof g_out);
        CHECK((rc == 1 || rc == 3) && strstr(g_out, bad[i]) && !strstr(g_out, "training images") &&
                  strchr(g_out, '\n') == g_out + strlen(g_out) - 1,
              "train-classifier --out %s: exit %d: %s", bad[i], rc, g_out);
        snprintf(a, sizeof a, "fid-stats %s --out %s --features classifier --threads 1", data, bad[i]);
        rc = run_cli(a, 1, g_out, sizeof g_out);
        CHECK((rc == 1 || rc == 3) && strstr(g_out, bad[i]) && !strstr(g_out, "images of") &&
                  strchr(g_out, '\n') == g_out + strlen(g_out) - 1,
              "fid-stats --out %s: exit %d: %s", bad[i], rc, g_out);
    }
    snprintf(a, sizeof a, "%s/is_a_dir.safetensors", g_dir);
    CHECK(mkdir(a, 0700) == 0, "mkdir %s", a);
    snprintf(a, sizeof a, "fid-stats %s --out %s/is_a_dir.safetensors --features classifier", data, g_dir);
    int rc = run_cli(a, 1, g_out, sizeof g_out);
    CHECK(rc == 1 && strstr(g_out, "is_a_dir.safetensors: is a directory"), "--out a directory: exit %d: %s", rc,
          g_out);
    CHECK(!has_temp_file(g_dir), "a temp file was left in %s", g_dir);
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
    LG_TEST_RUN(test_out_checked_first);
    tf_rm_rf(g_dir);
    return lg_test_summary("test_cli_eval");
}
