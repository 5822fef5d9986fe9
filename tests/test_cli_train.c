/* `lipgan train` and `lipgan sample` run as separate processes ($BUILD/lipgan;
 * BUILD from the environment, default "build"), for the QA findings that are
 * about the command line: exit codes and one-line messages of config errors,
 * the run-directory lock between two processes, the run-directory guards,
 * damaged checkpoints, resume messages, and what `train --help` says; an
 * --out that is a file or cannot be written (exit 2, before any output);
 * an inherited ignored SIGINT stays ignored. */
#include <math.h>
#include <signal.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "lg_test.h"
#include "lipgan/fileio.h"
#include "lipgan/safetensors.h"
#include "train_fixtures.h"

static char g_bin[512];
static char g_tmp[64];
static const char *g_cfg; /* configs/ */
static char g_out[1 << 16];

/* a tiny toy run: every output that costs time is off */
#define TOY_SETS                                                                                  \
    "--set data.toy_n=500 --set model.g.width=16 --set model.d.width=16 --set log.every=10 "      \
    "--set log.samples_every=0 --set log.checkpoint_every=10 --set threads=1 --set eval.every=0 " \
    "--set log.spectra_every=0 --set log.tensorboard=false --set log.sample_n=16"

/* `lipgan args`, stderr merged into g_out; the exit code */
static int cli(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static int cli(const char *fmt, ...) {
    char args[4096];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(args, sizeof args, fmt, ap);
    va_end(ap);
    return lg_test_run_cli(g_bin, args, 1, g_out, sizeof g_out);
}

static int exists(const char *p) {
    struct stat sb;
    return stat(p, &sb) == 0;
}

/* lines of the output that start with "lipgan train: error" or "warning": one each */
static int count_str(const char *s, const char *what) {
    int n = 0;
    for (const char *p = s; (p = strstr(p, what)) != NULL; p++) n++;
    return n;
}

static void test_config_errors(void) {
    /* items 1-4: exit 4, one line naming the key and the fix */
    int rc = cli("train %s/toy_ring8.yaml --set lipschitz.d.rw_lambda=100 --print-config", g_cfg);
    CHECK(rc == 4 && strstr(g_out, "lipschitz.d.rw_lambda") && strstr(g_out, "lipschitz.g.rw_lambda") &&
              count_str(g_out, "\n") == 1,
          "d.rw_lambda: exit %d: %s", rc, g_out);
    rc = cli("train %s/cifar10_sngan_hinge.yaml --set model.d.bn=true --print-config", g_cfg);
    CHECK(rc == 4 && strstr(g_out, "model.d.bn: false") && strstr(g_out, "no batch-norm layers") &&
              !strstr(g_out, "penalty") && !strstr(g_out, "set batchnorm 0"),
          "resnet model.d.bn: exit %d: %s", rc, g_out);
    rc = cli("train --help-config");
    CHECK(rc == 0 && strstr(g_out, "bn: false  # batch norm layers: cnn and mlp"), "--help-config on model.d.bn");
    rc = cli("train %s/toy_ring8.yaml --set lipschitz.d.sr_dynamic=true --print-config", g_cfg);
    CHECK(rc == 4 && strstr(g_out, "lipschitz.d.sr_dynamic"), "sr_dynamic: exit %d: %s", rc, g_out);
    rc = cli("train %s/cifar10_srgan.yaml --set lipschitz.d.sn=false --print-config", g_cfg);
    CHECK(rc == 4 && strstr(g_out, "lipschitz.d.sr_gamma"), "SR without SN: exit %d: %s", rc, g_out);
    rc = cli("train %s/toy_ring8.yaml --set optim.d.lr=0x10 --print-config", g_cfg);
    CHECK(rc == 4 && strstr(g_out, "optim.d.lr") && strstr(g_out, "'0x10' is not a number") && !strstr(g_out, "range"),
          "hex: exit %d: %s", rc, g_out);
    rc = cli("train %s/toy_ring8.yaml --set optim.d.lr=nan --print-config", g_cfg);
    CHECK(rc == 4 && strstr(g_out, "optim.d.lr") && strstr(g_out, "not a finite number"), "nan: exit %d: %s", rc,
          g_out);
    char p[300];
    snprintf(p, sizeof p, "%s/empty.yaml", g_tmp);
    CHECK_OK(lg_file_write_atomic(p, "# nothing\n", 10));
    char dir[300];
    snprintf(dir, sizeof dir, "%s/from_empty", g_tmp);
    rc = cli("train %s --out %s", p, dir);
    CHECK(rc == 4 && strstr(g_out, p) && strstr(g_out, "data.format") && !exists(dir), "empty config: exit %d: %s",
          rc, g_out);
    /* harmless: a one-line warning, and the run goes on */
    rc = cli("train %s/toy_ring8.yaml --set data.path=/srv/data --print-config", g_cfg);
    CHECK(rc == 0 && strstr(g_out, "lipgan train: warning: data.path \"/srv/data\" is not used"),
          "data.path on a toy: exit %d: %.300s", rc, g_out);
}

static void test_help_explains_sigma(void) {
    /* item 11 */
    int rc = cli("train --help");
    CHECK(rc == 0 && strstr(g_out, "D raw sigma min/mean/max") && strstr(g_out, "D raw op-norm") &&
              strstr(g_out, "  SN ") && strstr(g_out, "  SR-GAN ") && strstr(g_out, "  Toeplitz "),
          "train --help: %s", g_out);
    CHECK(strstr(g_out, "over D's\nnormalized layers") || strstr(g_out, "over D's normalized layers"),
          "train --help does not say what the min/mean/max run over");
}

/* Starts `lipgan train` in the background (its pid), with stderr to errf;
 * ignore_int: with SIGINT ignored, as a shell starts a background job. */
static pid_t spawn_train_ex(const char *out, const char *errf, int ignore_int);
static pid_t spawn_train(const char *out, const char *errf) { return spawn_train_ex(out, errf, 0); }
static pid_t spawn_train_ex(const char *out, const char *errf, int ignore_int) {
    char cmd[2048];
    snprintf(cmd, sizeof cmd, "exec '%s' train %s/toy_ring8.yaml " TOY_SETS
             " --set log.checkpoint_every=0 --set train.steps=100000000 --out %s 2>%s",
             g_bin, g_cfg, out, errf);
    fflush(NULL);
    pid_t pid = fork();
    if (pid == 0) {
        /* inherited through exec; the default set explicitly, for a test run
         * that itself started with SIGINT ignored (a background job) */
        signal(SIGINT, ignore_int ? SIG_IGN : SIG_DFL);
        execl("/bin/sh", "sh", "-c", cmd, (char *)NULL);
        _exit(127);
    }
    return pid;
}

static void test_lock_two_processes(void) {
    /* item 6: a second process is refused (exit 2) while the first runs,
     * naming DIR and the first's PID; metrics.jsonl has each step once */
    char dir[300], errf[300], metrics[320];
    snprintf(dir, sizeof dir, "%s/dual", g_tmp);
    snprintf(errf, sizeof errf, "%s/dual_err.txt", g_tmp);
    snprintf(metrics, sizeof metrics, "%s/metrics.jsonl", dir);
    pid_t pid = spawn_train(dir, errf);
    struct stat sb = {0};
    for (int i = 0; i < 600; i++) { /* up to 60 s (sanitizer builds start slowly) */
        if (stat(metrics, &sb) == 0 && sb.st_size > 0) break;
        struct timespec ts = {0, 100000000};
        nanosleep(&ts, NULL);
    }
    CHECK(sb.st_size > 0, "the first run never logged a step");
    char pidtxt[32];
    snprintf(pidtxt, sizeof pidtxt, "process %ld ", (long)pid);
    /* (few steps: without the lock these would run, and must end) */
    int rc = cli("train %s/toy_ring8.yaml " TOY_SETS " --set train.steps=300 --out %s --resume", g_cfg, dir);
    CHECK(rc == 2 && strstr(g_out, dir) && strstr(g_out, pidtxt) && strstr(g_out, "in use"),
          "second process with --resume: exit %d, want 2 naming %s and %s: %s", rc, dir, pidtxt, g_out);
    rc = cli("train %s/toy_ring8.yaml " TOY_SETS " --set train.steps=300 --out %s", g_cfg, dir);
    CHECK(rc == 2 && strstr(g_out, pidtxt), "second fresh process: exit %d: %s", rc, g_out);
    kill(pid, SIGTERM);
    int status = 0;
    waitpid(pid, &status, 0);
    CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 128 + SIGTERM, "first run: status %d", status);
    /* each step once in the log */
    unsigned char *buf = NULL;
    size_t len = 0;
    CHECK_OK(lg_file_read_all(metrics, &buf, &len));
    long long prev = 0;
    int rows = 0, ordered = 1;
    for (const char *q = buf ? (const char *)buf : ""; (q = strstr(q, "{\"step\":")) != NULL; q++) {
        long long v = atoll(q + 8);
        ordered &= v > prev;
        prev = v;
        rows++;
    }
    CHECK(rows > 0 && ordered, "metrics.jsonl: %d rows, in increasing step order %d", rows, ordered);
    free(buf);
    /* released on exit: the resume goes now */
    rc = cli("train %s/toy_ring8.yaml " TOY_SETS " --set train.steps=100000000 --out %s --resume --print-config", g_cfg,
             dir);
    CHECK(rc == 0, "print-config after the first run ended: exit %d", rc);
}

static void test_run_directory_guards(void) {
    /* item 10 */
    char dir[300], p[400];
    snprintf(dir, sizeof dir, "%s/nowhere", g_tmp);
    int rc = cli("train %s/toy_ring8.yaml " TOY_SETS " --set train.steps=10 --out %s --resume", g_cfg, dir);
    CHECK(rc == 3 && strstr(g_out, dir) && !exists(dir), "--resume of a missing DIR: exit %d, exists %d: %s", rc,
          exists(dir), g_out);
    snprintf(dir, sizeof dir, "%s/killed", g_tmp);
    mkdir(dir, 0777);
    snprintf(p, sizeof p, "%s/metrics.jsonl", dir);
    CHECK_OK(lg_file_write_atomic(p, "{\"step\":10}\n", 12));
    rc = cli("train %s/toy_ring8.yaml " TOY_SETS " --set train.steps=10 --out %s", g_cfg, dir);
    CHECK(rc == 2 && strstr(g_out, p) && strstr(g_out, "--out") && strstr(g_out, "delete"),
          "leftover metrics.jsonl: exit %d: %s", rc, g_out);
    snprintf(dir, sizeof dir, "%s/done", g_tmp);
    rc = cli("train %s/toy_ring8.yaml " TOY_SETS " --set train.steps=20 --out %s", g_cfg, dir);
    CHECK(rc == 0, "a short run: exit %d: %s", rc, g_out);
    rc = cli("train %s/toy_ring8.yaml " TOY_SETS " --set train.steps=20 --out %s", g_cfg, dir);
    CHECK(rc == 2 && strstr(g_out, "already holds checkpoints"), "DIR with checkpoints: exit %d: %s", rc, g_out);
    /* item 9: at train.steps already: said, no "done" */
    rc = cli("train %s/toy_ring8.yaml " TOY_SETS " --set train.steps=15 --out %s --resume", g_cfg, dir);
    CHECK(rc == 0 && strstr(g_out, "already at step 20 >= train.steps 15; nothing to do") && !strstr(g_out, "done;"),
          "resume past train.steps: exit %d: %s", rc, g_out);
    /* and a resume with other keys names them, old -> new */
    rc = cli("train %s/toy_ring8.yaml " TOY_SETS " --set train.steps=30 --set log.every=5 --out %s --resume", g_cfg,
             dir);
    CHECK(rc == 0 && strstr(g_out, "train.steps: 20 -> 30") && strstr(g_out, "log.every: 10 -> 5") &&
              strstr(g_out, "learning-rate schedule"),
          "resume with other keys: exit %d: %s", rc, g_out);
}

/* Waits up to 60 s for path to have content; 1 if it does. */
static int wait_for_content(const char *path) {
    struct stat sb = {0};
    for (int i = 0; i < 600; i++) { /* sanitizer builds start slowly */
        if (stat(path, &sb) == 0 && sb.st_size > 0) return 1;
        struct timespec ts = {0, 100000000};
        nanosleep(&ts, NULL);
    }
    return 0;
}

/* A SIGINT the process started with ignored stays ignored (a background job
 * `lipgan train ... &` of a non-interactive shell): training goes on, and
 * SIGTERM still stops it (143). Without that inheritance SIGINT stops it (130). */
static void test_ignored_sigint(void) {
    char dir[300], errf[300], metrics[320];
    for (int ignored = 1; ignored >= 0; ignored--) {
        snprintf(dir, sizeof dir, "%s/sigint%d", g_tmp, ignored);
        snprintf(errf, sizeof errf, "%s/sigint%d_err.txt", g_tmp, ignored);
        snprintf(metrics, sizeof metrics, "%s/metrics.jsonl", dir);
        pid_t pid = spawn_train_ex(dir, errf, ignored);
        CHECK(wait_for_content(metrics), "the run never logged a step");
        kill(pid, SIGINT);
        int status = 0;
        if (ignored) {
            struct timespec ts = {1, 0}; /* a stop takes one step and a checkpoint: far less */
            nanosleep(&ts, NULL);
            CHECK(waitpid(pid, &status, WNOHANG) == 0, "an inherited ignored SIGINT stopped training (status %d)",
                  status);
            kill(pid, SIGTERM);
        }
        /* a stop takes a step and a checkpoint: after 60 s it is a failure, not a hang */
        pid_t w = 0;
        for (int i = 0; i < 600 && (w = waitpid(pid, &status, WNOHANG)) == 0; i++) {
            struct timespec ts = {0, 100000000};
            nanosleep(&ts, NULL);
        }
        if (w == 0) {
            kill(pid, SIGKILL);
            waitpid(pid, &status, 0);
            CHECK(0, "SIGINT %s: the run did not stop within 60 s", ignored ? "ignored" : "default");
        }
        int want = 128 + (ignored ? SIGTERM : SIGINT);
        CHECK(WIFEXITED(status) && WEXITSTATUS(status) == want, "SIGINT %s: status %d, want exit %d",
              ignored ? "ignored" : "default", status, want);
    }
}

/* An --out that is a file, or that cannot be created or written, is a usage
 * error (exit 2) naming the fix, before anything else is printed. */
static void test_out_not_a_run_dir(void) {
    char file[300], ro[300], dir[400];
    snprintf(file, sizeof file, "%s/ring.csv", g_tmp);
    CHECK_OK(lg_file_write_atomic(file, "x,y\n", 4));
    int rc = cli("train %s/toy_ring8.yaml --out %s", g_cfg, file);
    CHECK(rc == 2 && strstr(g_out, file) && strstr(g_out, "give a directory for --out, e.g. runs/NAME") &&
              count_str(g_out, "\n") == 1,
          "--out a file: exit %d: %s", rc, g_out);
    snprintf(dir, sizeof dir, "%s/sub/run", file);
    rc = cli("train %s/toy_ring8.yaml --out %s", g_cfg, dir);
    CHECK(rc == 2 && strstr(g_out, "is a file, not a directory") && count_str(g_out, "\n") == 1,
          "--out under a file: exit %d: %s", rc, g_out);
    /* a directory that cannot be written: as root, as user nobody */
    snprintf(ro, sizeof ro, "%s/ro", g_tmp);
    CHECK(mkdir(ro, 0555) == 0 && chmod(ro, 0555) == 0 && chmod(g_tmp, 0711) == 0, "mkdir %s", ro);
    const char *as = "";
    if (geteuid() == 0) {
        if (access("/usr/sbin/runuser", X_OK) != 0 && access("/sbin/runuser", X_OK) != 0) {
            printf("  (root without runuser: unwritable --out not tested)\n");
            return;
        }
        as = "nobody";
    }
    const char *targets[2] = {ro, dir};
    snprintf(dir, sizeof dir, "%s/new/run", ro);
    for (int i = 0; i < 2; i++) {
        char cmd[2048];
        snprintf(cmd, sizeof cmd, "%s%s%s'%s' train %s/toy_ring8.yaml --out %s 2>&1", *as ? "runuser -u " : "", as,
                 *as ? " -- " : "", g_bin, g_cfg, targets[i]);
        rc = lg_test_sh(cmd, g_out, sizeof g_out);
        CHECK(rc == 2 && strstr(g_out, "Permission denied") && strstr(g_out, "give a directory for --out") &&
                  count_str(g_out, "\n") == 1,
              "%s: exit %d: %s", cmd, rc, g_out);
    }
    chmod(g_tmp, 0700);
    chmod(ro, 0755);
}

/* data settings a format cannot honour, and data folders in the wrong layout:
 * exit 4 (config) or 3 (data), one line, naming the setting to change */
#define TINY_IMG_SETS                                                                                  \
    "--set model.g.arch=cnn --set model.d.arch=cnn --set model.g.width=8 --set model.d.width=8 "      \
    "--set train.steps=1 --set log.samples_every=0 --set log.checkpoint_every=0 --set threads=1 "     \
    "--set eval.every=0 --set log.spectra_every=0 --set log.tensorboard=false --set log.sample_n=4"

static void test_data_settings_and_layouts(void) {
    int rc = cli("train %s/cifar10_sngan_hinge.yaml --set data.image_size=64 --print-config", g_cfg);
    CHECK(rc == 4 && strstr(g_out, "data.image_size") && strstr(g_out, "32x32") && count_str(g_out, "\n") == 1,
          "cifar10 at 64: exit %d: %s", rc, g_out);
    rc = cli("train %s/cifar10_sngan_hinge.yaml --set data.channels=1 --print-config", g_cfg);
    CHECK(rc == 4 && strstr(g_out, "data.channels") && strstr(g_out, "RGB") && count_str(g_out, "\n") == 1,
          "cifar10 gray: exit %d: %s", rc, g_out);
    rc = cli("train %s/toy_ring8.yaml --set data.image_size=64 --print-config", g_cfg);
    CHECK(rc == 0 && strstr(g_out, "lipgan train: warning: data.image_size 64 is not used"),
          "image_size on a toy: exit %d: %.300s", rc, g_out);

    /* a CIFAR-10 folder with the test split only, default split train */
    char dir[300], p[400], out[300];
    snprintf(dir, sizeof dir, "%s/cifar_test_only", g_tmp);
    mkdir(dir, 0777);
    snprintf(p, sizeof p, "%s/test_batch.bin", dir);
    CHECK_OK(lg_file_write_atomic(p, "", 0)); /* only its presence matters */
    snprintf(out, sizeof out, "%s/run_split", g_tmp);
    rc = cli("train %s/cifar10_sngan_hinge.yaml " TINY_IMG_SETS " --set data.path=%s --out %s", g_cfg, dir, out);
    CHECK(rc == 3 && strstr(g_out, "data_batch_1.bin") && strstr(g_out, "data.split: test"),
          "test-only CIFAR-10 folder: exit %d: %s", rc, g_out);

    /* the where-to-get-it hint only for a missing data set, once */
    snprintf(p, sizeof p, "%s/bad_label.bin", g_tmp);
    {
        unsigned char rec[3073] = {10}; /* label 10 */
        CHECK_OK(lg_file_write_atomic(p, rec, sizeof rec));
    }
    rc = cli("train %s/cifar10_sngan_hinge.yaml " TINY_IMG_SETS " --set data.path=%s --out %s", g_cfg, p, out);
    CHECK(rc == 3 && strstr(g_out, "label 10") && !strstr(g_out, "cifar-10-binary"), "label error: exit %d: %s", rc,
          g_out);
    snprintf(p, sizeof p, "%s/no_such_cifar", g_tmp);
    rc = cli("train %s/cifar10_sngan_hinge.yaml " TINY_IMG_SETS " --set data.path=%s --out %s", g_cfg, p, out);
    CHECK(rc == 3 && count_str(g_out, "cifar-10-binary.tar.gz") == 1, "missing CIFAR-10: exit %d: %s", rc, g_out);
    snprintf(p, sizeof p, "%s/no_such_mnist", g_tmp);
    rc = cli("train %s/fmnist_sn_hinge.yaml " TINY_IMG_SETS " --set data.path=%s --out %s", g_cfg, p, out);
    CHECK(rc == 3 && count_str(g_out, "/usr/share/datasets/fashion-mnist") == 1, "missing MNIST: exit %d: %s", rc,
          g_out);

    /* png: data.path is a file; a broken link in the folder */
    snprintf(dir, sizeof dir, "%s/pngs", g_tmp);
    mkdir(dir, 0777);
    snprintf(p, sizeof p, "%s/a.png", dir);
    CHECK_OK(lg_file_write_atomic(p, "not really", 10));
    snprintf(out, sizeof out, "%s/run_pngfile", g_tmp);
    rc = cli("train %s/cifar10_sngan_hinge.yaml " TINY_IMG_SETS " --set data.format=png --set data.path=%s --out %s",
             g_cfg, p, out);
    CHECK(rc == 3 && strstr(g_out, "is a file, not a directory"), "png data.path a file: exit %d: %s", rc, g_out);
    char link[400];
    snprintf(link, sizeof link, "%s/b.png", dir);
    CHECK(symlink("no_such_target.png", link) == 0, "symlink %s", link);
    rc = cli("train %s/cifar10_sngan_hinge.yaml " TINY_IMG_SETS " --set data.format=png --set data.path=%s --out %s",
             g_cfg, dir, out);
    CHECK(rc == 3 && strstr(g_out, "b.png") && strstr(g_out, "broken symbolic link"), "broken link: exit %d: %s", rc,
          g_out);
}

static void test_sample_damaged(void) {
    /* items 5 and 7 through `lipgan sample` */
    char p[300], out[300];
    snprintf(p, sizeof p, "%s/stats.safetensors", g_tmp);
    snprintf(out, sizeof out, "%s/s.csv", g_tmp);
    lg_st_writer *w;
    CHECK_OK(lg_st_writer_create(&w));
    CHECK_OK(lg_st_writer_add_meta(w, "format", "lipgan-fid-stats-1"));
    float mu[2] = {0, 1};
    CHECK_OK(lg_st_writer_add_f32(w, "mu", 1, (int64_t[]){2}, mu));
    CHECK_OK(lg_st_writer_write(w, p, 0));
    lg_st_writer_free(w);
    int rc = cli("sample %s -n 4 --out %s", p, out);
    CHECK(rc == 3 && strstr(g_out, "(metadata format is \"lipgan-fid-stats-1\""), "fid stats: exit %d: %s", rc,
          g_out);
    /* a NaN in the newest checkpoint of the run made above */
    char ck[300], bad[300];
    snprintf(ck, sizeof ck, "%s/done/ckpt_000000030.safetensors", g_tmp);
    snprintf(bad, sizeof bad, "%s/nan.safetensors", g_tmp);
    lg_st_file *f;
    CHECK_OK(lg_st_open(&f, ck));
    if (!f) return;
    const lg_st_tensor *t = lg_st_find(f, "G.fc0.weight");
    CHECK(t != NULL, "no G.fc0.weight");
    uint64_t off = t ? t->offset : 0;
    lg_st_close(f);
    unsigned char *buf;
    size_t len;
    CHECK_OK(lg_file_read_all(ck, &buf, &len));
    uint64_t hl = 0;
    for (int i = 7; i >= 0; i--) hl = hl << 8 | buf[i];
    float nan = NAN;
    memcpy(buf + 8 + hl + off, &nan, 4);
    CHECK(lg_test_st_fix_crc(buf, len) == 0, "checkpoint without a CRC-32");
    CHECK_OK(lg_file_write_atomic(bad, buf, len));
    free(buf);
    remove(out);
    rc = cli("sample %s -n 4 --out %s --no-ema", bad, out);
    CHECK(rc == 3 && strstr(g_out, "G.fc0.weight") && strstr(g_out, "non-finite") && !exists(out),
          "NaN checkpoint: exit %d, output written %d: %s", rc, exists(out), g_out);
}

int main(void) {
    if (lg_test_cli_path(g_bin, sizeof g_bin) != 0) return 1;
    g_cfg = tf_configs_dir();
    if (!g_cfg || tf_mkdtemp(g_tmp, sizeof g_tmp) != 0) {
        fprintf(stderr, "configs/ not found or mkdtemp failed\n");
        return 1;
    }
    LG_TEST_RUN(test_config_errors);
    LG_TEST_RUN(test_help_explains_sigma);
    LG_TEST_RUN(test_lock_two_processes);
    LG_TEST_RUN(test_run_directory_guards);
    LG_TEST_RUN(test_sample_damaged);
    LG_TEST_RUN(test_data_settings_and_layouts);
    LG_TEST_RUN(test_out_not_a_run_dir);
    LG_TEST_RUN(test_ignored_sigint);
    tf_rm_rf(g_tmp);
    return lg_test_summary("test_cli_train");
}
