/* Data-parallel training over MPI (dist: mpi, lipgan/dist.h), through the
 * CLI under `mpirun -np 2`: the run matches a single process on the same
 * config (first step to rounding, ten steps closely), only rank 0 writes,
 * a resumed two-process run is bitwise the uninterrupted one, and bad
 * setups fail with a message naming the key. Without MPI in the build, the
 * message that says so is checked instead. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "lg_test.h"
#include "lipgan/backend.h"
#include "lipgan/dist.h"
#include "lipgan/safetensors.h"
#include "train_fixtures.h"

static char g_bin[1024], g_dir[] = "/tmp/lg_dist_XXXXXX";
/* OpenMPI refuses root without the flag; CI runs as root on 2 cores. Its
 * own allocations at exit are not lipgan's leaks (sanitizer builds). The
 * copy-in/copy-out shared-memory path works in containers that forbid
 * cross-process memory access (ptrace). */
static const char *MPIRUN = "mpirun --allow-run-as-root --oversubscribe "
                            "--mca btl_vader_single_copy_mechanism none "
                            "-x ASAN_OPTIONS=detect_leaks=0 -np 2";
static const char *TOY = "configs/toy_ring8.yaml --set threads=1 --set log.every=1 --set "
                         "log.spectra_every=0 --set eval.every=0 --set log.checkpoint_every=0 "
                         "--set log.tensorboard=false --quiet";

/* lipgan train on the toy (under mpirun -np 2 if mpi), stdout+stderr into log. */
static int train(int mpi, const char *sets, const char *out_name, char *log, size_t cap) {
    char cmd[3072];
    snprintf(cmd, sizeof cmd, "%s '%s' train %s %s --out %s/%s 2>&1", mpi ? MPIRUN : "", g_bin,
             TOY, sets, g_dir, out_name);
    return lg_test_sh(cmd, log, cap);
}

/* The value of "key" in the metrics.jsonl row of `step`, NAN if absent. */
static double metric(const char *run, int step, const char *key) {
    char p[256], line[2048], want[32], k[64];
    snprintf(p, sizeof p, "%s/%s/metrics.jsonl", g_dir, run);
    snprintf(want, sizeof want, "{\"step\":%d,", step);
    snprintf(k, sizeof k, "\"%s\":", key);
    FILE *f = fopen(p, "r");
    double v = NAN;
    while (f && fgets(line, sizeof line, f))
        if (!strncmp(line, want, strlen(want))) {
            const char *q = strstr(line, k);
            if (q) v = strtod(q + strlen(k), NULL);
        }
    if (f) fclose(f);
    return v;
}

static int rows(const char *run) {
    char p[256], line[2048];
    snprintf(p, sizeof p, "%s/%s/metrics.jsonl", g_dir, run);
    FILE *f = fopen(p, "r");
    int n = 0;
    while (f && fgets(line, sizeof line, f)) n++;
    if (f) fclose(f);
    return n;
}

/* Largest relative L2 difference over the F32 tensors whose names start
 * with prefix ("" = all), or -1 if a file or tensor is missing. */
static double ckpt_diff(const char *a, const char *b, int step, const char *prefix) {
    char pa[256], pb[256];
    snprintf(pa, sizeof pa, "%s/%s/ckpt_%09d.safetensors", g_dir, a, step);
    snprintf(pb, sizeof pb, "%s/%s/ckpt_%09d.safetensors", g_dir, b, step);
    lg_st_file *fa = NULL, *fb = NULL;
    double worst = -1;
    if (lg_st_open(&fa, pa) == LG_OK && lg_st_open(&fb, pb) == LG_OK) {
        worst = 0;
        for (size_t i = 0; i < lg_st_count(fa); i++) {
            const lg_st_tensor *t = lg_st_at(fa, i), *u = lg_st_find(fb, t->name);
            if (strncmp(t->name, prefix, strlen(prefix)) || t->dtype != LG_ST_F32) continue;
            if (!u || u->nbytes != t->nbytes) {
                worst = -1;
                break;
            }
            double num = 0, den = 0;
            for (int64_t k = 0; k < t->numel; k++) {
                float x, y;
                memcpy(&x, (const char *)t->data + 4 * k, 4);
                memcpy(&y, (const char *)u->data + 4 * k, 4);
                num += ((double)x - y) * ((double)x - y);
                den += (double)y * y;
            }
            double r = den > 0 ? sqrt(num / den) : sqrt(num);
            if (r > worst) worst = r;
        }
    }
    lg_st_close(fa);
    lg_st_close(fb);
    return worst;
}

static void test_api_alone(void) {
    /* before (and without) lg_dist_init: one process, nothing to reduce */
    CHECK(lg_dist_world() == 1 && lg_dist_rank() == 0 && !lg_dist_active(), "not distributed");
    float v[2] = {1.5f, -2.0f};
    CHECK_OK(lg_dist_mean(v, 2));
    CHECK(v[0] == 1.5f && v[1] == -2.0f, "mean over one process changes nothing");
    CHECK(lg_dist_any(0) == 0 && lg_dist_any(3) == 1, "any over one process is the flag");
}

static void test_config_errors(void) {
    static char log[8192];
    int rc;
    if (!lg_dist_available()) {
        rc = train(0, "--set dist=mpi --set train.steps=1", "no_mpi", log, sizeof log);
        CHECK(rc != 0 && strstr(log, "built without MPI"), "exit %d:\n%s", rc, log);
        return;
    }
    /* device: cuda is a valid pairing (each process takes a GPU); where no
     * GPU is usable, as in CI, or the build has no CUDA (the sanitizer
     * build), the backend's own message says so */
    const lg_backend *cuda = NULL;
    int have_cuda = lg_backend_get("cuda", &cuda) == LG_OK;
    lg_error_clear();
    rc = train(0, "--set dist=mpi --set device=cuda --set train.steps=1", "dev_cuda", log,
               sizeof log);
    if (have_cuda)
        CHECK(rc == 0, "dist: mpi on cuda, one process: exit %d\n%s", rc, log);
    else
        CHECK(rc != 0 && (strstr(log, "cuda: ") || strstr(log, "built without CUDA")) &&
                  !strstr(log, "dist:"),
              "dist: mpi with device cuda and no GPU: exit %d, want the backend's message:\n%s",
              rc, log);
    /* data loaded by one process per machine: the failure reaches both
     * (neither waits for the other), and rank 0 alone prints it */
    rc = train(1, "--set dist=mpi --set data.format=cifar10 --set data.path=/nonexistent/cifar",
               "nodata", log, sizeof log);
    const char *p = strstr(log, "data.format cifar10, data.path /nonexistent/cifar");
    CHECK(rc == 3 && p && !strstr(p + 1, "data.format cifar10, data.path /nonexistent/cifar"),
          "missing data under 2 processes: exit %d, want 3 and the message once:\n%s", rc, log);
    rc = train(1, "--set dist=mpi --set train.batch_d=255", "odd", log, sizeof log);
    CHECK(rc != 0 && strstr(log, "multiples of the 2 processes"),
          "batch 255 over 2 processes: exit %d, want an error naming the keys:\n%s", rc, log);
}

static void test_matches_single_process(void) {
    if (!lg_dist_available()) return;
    static char log[16384];
    /* with the watchers on: they run on rank 0 only and must not touch training state */
    const char *sets = "--set train.steps=10 --set eval.every=5 --set eval.n=500 --set "
                       "log.spectra_every=5";
    int rc = train(0, sets, "single", log, sizeof log);
    CHECK(rc == 0, "single process: exit %d\n%s", rc, log);
    char sets2[256];
    snprintf(sets2, sizeof sets2, "%s --set dist=mpi", sets);
    rc = train(1, sets2, "two", log, sizeof log);
    CHECK(rc == 0, "two processes: exit %d\n%s", rc, log);
    /* step 1 starts from the same weights: the global batch's losses agree
     * up to the order of the sums */
    const char *keys[] = {"loss_d", "loss_g", "d_real", "d_fake"};
    for (int i = 0; i < 4; i++) {
        double a = metric("single", 1, keys[i]), b = metric("two", 1, keys[i]);
        CHECK(fabs(a - b) <= 1e-5 + 1e-4 * fabs(a), "step 1 %s: one process %.9g, two %.9g",
              keys[i], a, b);
    }
    /* ten steps: Adam amplifies the rounding of near-zero gradients a
     * little (measured rel-L2 up to 2e-3 at 30 steps); a wrong slice or a
     * missing average moves whole layers */
    for (int k = 0; k < 2; k++) {
        double d = ckpt_diff("single", "two", 10, k ? "D." : "G.");
        CHECK(d >= 0 && d < 1e-2, "%s parameters after 10 steps: rel-L2 %.3g", k ? "D" : "G", d);
    }
    /* Adam's first moments alone, held to a tighter bar: they follow the
     * averaged gradients (measured rel-L2 1e-6; 0.2-0.4 when the averaged
     * gradients do not reach the backend's buffer) */
    for (int k = 0; k < 2; k++) {
        double d = ckpt_diff("single", "two", 10, k ? "D.adam.m" : "G.adam.m");
        if (getenv("LG_TEST_VERBOSE"))
            printf("  %s.adam.m after 10 steps: rel-L2 %.3g\n", k ? "D" : "G", d);
        CHECK(d >= 0 && d < 1e-4, "%s's Adam moments after 10 steps: rel-L2 %.3g", k ? "D" : "G", d);
    }
    CHECK(rows("two") == 10, "rank 0 alone writes metrics.jsonl: %d rows, want 10", rows("two"));
}

/* Batch norm in both nets: synchronized (the default) the two processes
 * compute the single-process gradients; each process by its own slice
 * (dist_sync_bn: false) they do not, which shows the check can fail. One
 * step is compared: with batch norm in both nets this toy is chaotic under
 * rounding (one process on 1 thread against 2 threads: Adam's first
 * moments differ by rel-L2 0.013 after 3 steps and 0.29 after 10), so
 * later steps measure the chaos, not the synchronization. Adam's first
 * moment after one step is (1 - beta1) times the averaged gradient. */
static void test_sync_bn(void) {
    if (!lg_dist_available()) return;
    static char log[16384];
    const char *bn = "--set train.steps=1 --set model.g.bn=true --set model.d.bn=true";
    char s[256];
    int rc = train(0, bn, "bn_single", log, sizeof log);
    CHECK(rc == 0, "single process: exit %d\n%s", rc, log);
    snprintf(s, sizeof s, "%s --set dist=mpi", bn);
    rc = train(1, s, "bn_sync", log, sizeof log);
    CHECK(rc == 0, "two processes, synchronized: exit %d\n%s", rc, log);
    snprintf(s, sizeof s, "%s --set dist=mpi --set dist_sync_bn=false", bn);
    rc = train(1, s, "bn_own", log, sizeof log);
    CHECK(rc == 0, "two processes, own slices: exit %d\n%s", rc, log);
    const char *keys[] = {"loss_d", "loss_g", "d_real", "d_fake"};
    double own_worst = 0;
    for (int i = 0; i < 4; i++) {
        double a = metric("bn_single", 1, keys[i]), b = metric("bn_sync", 1, keys[i]);
        double o = metric("bn_own", 1, keys[i]);
        CHECK(fabs(a - b) <= 1e-5 + 1e-4 * fabs(a),
              "step 1 %s: one process %.9g, two synchronized %.9g", keys[i], a, b);
        own_worst = fmax(own_worst, fabs(a - o) / (1e-5 + fabs(a)));
    }
    CHECK(own_worst > 1e-2, "each process by its own slice should move the step-1 losses "
                            "(largest relative change %.3g)", own_worst);
    /* G's running statistics: G is not updated before its step, so they
     * depend on its initial weights alone (D's move with D's first update,
     * whose biases before batch norm have no gradient but rounding) */
    const char *what[] = {"G.adam.m", "D.adam.m", "G.bn0.running_var", "G.bn2.running_mean"};
    const double tol[] = {1e-4, 1e-4, 1e-6, 1e-6}, far[] = {1e-2, 1e-2, 1e-3, 1e-3};
    for (int k = 0; k < 4; k++) {
        double d = ckpt_diff("bn_single", "bn_sync", 1, what[k]);
        double o = ckpt_diff("bn_single", "bn_own", 1, what[k]);
        CHECK(d >= 0 && d < tol[k], "%s after one step, synchronized: rel-L2 %.3g", what[k], d);
        CHECK(o > far[k], "%s after one step, own slices: rel-L2 %.3g, want far above the "
                          "synchronized %.3g", what[k], o, d);
        if (getenv("LG_TEST_VERBOSE"))
            printf("  sync bn: %s rel-L2 %.3g synchronized, %.3g own slices\n", what[k], d, o);
    }
}

/* One sample per process: with synchronized batch norm the whole batch
 * (2 values per channel) counts, so it trains (the op used to check each
 * process's own count and fail mid-run, exit 3); by each process's own
 * slice it is refused at the start naming the batch key. */
static void test_sync_bn_one_sample_each(void) {
    if (!lg_dist_available()) return;
    static char log[16384];
    const char *one = "--set train.steps=2 --set model.g.bn=true --set model.d.bn=true --set train.batch_d=2 "
                      "--set train.batch_g=2 --set dist=mpi";
    int rc = train(1, one, "bn_one_sync", log, sizeof log);
    CHECK(rc == 0 && rows("bn_one_sync") == 2, "synchronized, 1 sample per process: exit %d\n%s", rc, log);
    char s[512];
    snprintf(s, sizeof s, "%s --set dist_sync_bn=false", one);
    rc = train(1, s, "bn_one_own", log, sizeof log);
    CHECK(rc == 4 && strstr(log, "train.batch_d") && strstr(log, "per process"),
          "own slices, 1 sample per process: exit %d (want 4 naming train.batch_d)\n%s", rc, log);
}

/* A run directory locked by another program: rank 0 alone locks, and the
 * refusal must reach rank 1 before any collective step (it used to wait
 * there forever). Every process exits 2, one message says why. */
static void test_locked_dir(void) {
    if (!lg_dist_available()) return;
    static char log[16384];
    char cmd[3072];
    snprintf(cmd, sizeof cmd,
             "mkdir -p %s/locked && (flock %s/locked/.lock sleep 30 & echo $! > %s/holder; sleep 1) "
             ">/dev/null 2>&1; for resume in '' '--resume'; do timeout 60 %s '%s' train %s "
             "--set dist=mpi $resume --out %s/locked 2>&1; echo \"rc=$?\"; done; "
             "kill $(cat %s/holder) 2>/dev/null; true",
             g_dir, g_dir, g_dir, MPIRUN, g_bin, TOY, g_dir, g_dir);
    lg_test_sh(cmd, log, sizeof log);
    int n_rc2 = 0, n_err = 0;
    for (const char *p = log; (p = strstr(p, "rc=2\n")); p++) n_rc2++;
    for (const char *p = log; (p = strstr(p, "error: ")); p++) n_err++;
    CHECK(n_rc2 == 2 && !strstr(log, "rc=124"),
          "locked run directory under 2 processes, fresh and --resume: want exit 2 twice, no "
          "timeout:\n%s", log);
    CHECK(n_err == 2 && strstr(log, "is in use by process"),
          "want one message per run, naming the lock:\n%s", log);
}

/* threads 0: the processes on one machine divide its cores (or OMP_NUM_THREADS) */
static void test_threads_shared(void) {
    if (!lg_dist_available()) return;
    static char log[8192];
    char cmd[2048];
    snprintf(cmd, sizeof cmd,
             "%s '%s' train configs/toy_ring8.yaml --set dist=mpi --set threads=0 --set "
             "train.steps=1 --set eval.every=0 --set log.spectra_every=0 --out %s/threads 2>&1",
             MPIRUN, g_bin, g_dir);
    int rc = lg_test_sh(cmd, log, sizeof log);
    const char *omp = getenv("OMP_NUM_THREADS");
    long cores = omp && atoi(omp) > 0 ? atol(omp) : sysconf(_SC_NPROCESSORS_ONLN);
    char want[96];
    snprintf(want, sizeof want, "(2 on this machine, %ld CPU threads each)", cores / 2 > 0 ? cores / 2 : 1);
    CHECK(rc == 0 && strstr(log, want), "exit %d, want '%s' in:\n%s", rc, want, log);
    /* the toy's 100000 points, 2 floats and a label each: one copy for the machine */
    CHECK(strstr(log, "data set (1.2 MB) is loaded once per machine and shared by its 2 processes"),
          "want the shared data set line in:\n%s", log);
}

static void test_resume_bitwise(void) {
    if (!lg_dist_available()) return;
    static char log[16384];
    const char *c = "--set dist=mpi --set train.lr_decay=none";
    char s1[256], s2[256];
    snprintf(s1, sizeof s1, "%s --set train.steps=8", c);
    int rc = train(1, s1, "straight", log, sizeof log);
    CHECK(rc == 0, "8 steps: exit %d\n%s", rc, log);
    snprintf(s2, sizeof s2, "%s --set train.steps=4", c);
    rc = train(1, s2, "resumed", log, sizeof log);
    CHECK(rc == 0, "4 steps: exit %d\n%s", rc, log);
    snprintf(s2, sizeof s2, "%s --set train.steps=8 --resume", c);
    rc = train(1, s2, "resumed", log, sizeof log);
    CHECK(rc == 0, "resumed to 8 steps: exit %d\n%s", rc, log);
    double d = ckpt_diff("straight", "resumed", 8, "");
    CHECK(d == 0, "resumed two-process run vs straight: rel-L2 %.3g, want bitwise equal", d);
    /* one process resuming what two wrote goes on, and says it is not bit for bit */
    char cmd[3072];
    /* MPI started by one process alone (a singleton) leaves OpenMPI's own
     * allocations at exit, as under mpirun (see MPIRUN) */
    snprintf(cmd, sizeof cmd,
             "ASAN_OPTIONS=detect_leaks=0 '%s' train configs/toy_ring8.yaml --set threads=1 --set "
             "log.every=1 --set "
             "log.spectra_every=0 --set eval.every=0 --set log.tensorboard=false %s --set "
             "train.steps=9 --resume --out %s/resumed 2>&1",
             g_bin, c, g_dir);
    rc = lg_test_sh(cmd, log, sizeof log);
    CHECK(rc == 0 && strstr(log, "was written by 2 processes and is resumed by 1"),
          "resume under another process count: exit %d, want the warning:\n%s", rc, log);
}

int main(void) {
    if (lg_test_cli_path(g_bin, sizeof g_bin) != 0) return 1;
    if (!mkdtemp(g_dir)) {
        perror("mkdtemp");
        return 1;
    }
    if (lg_dist_available() && system("command -v mpirun >/dev/null 2>&1") != 0) {
        CHECK(0, "lipgan was built with MPI but mpirun is not on PATH (tools/setup.sh installs "
                 "openmpi-bin)");
        return lg_test_summary("test_dist");
    }
    LG_TEST_RUN(test_api_alone);
    LG_TEST_RUN(test_config_errors);
    LG_TEST_RUN(test_matches_single_process);
    LG_TEST_RUN(test_resume_bitwise);
    LG_TEST_RUN(test_sync_bn);
    LG_TEST_RUN(test_sync_bn_one_sample_each);
    LG_TEST_RUN(test_locked_dir);
    LG_TEST_RUN(test_threads_shared);
    tf_rm_rf(g_dir);
    return lg_test_summary("test_dist");
}
