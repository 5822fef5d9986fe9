/* Tests of checkpoints: bitwise resume equivalence (N steps + resume N
 * equals 2N uninterrupted: losses and every buffer; also with RMSProp and
 * the critic schedule's boost), a process killed while
 * writing a checkpoint (and a full disk) leaves the previous one loadable,
 * load validation errors, damaged data caught by the CRC-32, pruning to
 * log.keep, run-directory guards, sampling from a checkpoint, and the CLI
 * (train, sample, SIGTERM). */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <signal.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>

#include "lg_test.h"
#include "lipgan/config.h"
#include "lipgan/fileio.h"
#include "lipgan/safetensors.h"
#include "lipgan/train.h"
#include "train/train_internal.h" /* the optimizers' state */
#include "train_fixtures.h"

static char g_tmp[64];

static void set_all(lg_config *c, const char *const *sets) {
    for (int i = 0; sets[i]; i++) CHECK_OK(lg_config_set(c, sets[i]));
}

/* Toy MLP with every piece of resumable state: SN + GP in D, dynamic SR in
 * D, gradient clamping and the r(W) penalty in G, an EMA of G. */
static void toy_full(lg_config *c) {
    lg_config_default(c);
    static const char *const s[] = {
        "data.format=ring8", "data.toy_n=500", "model.z_dim=4", "model.g.arch=mlp", "model.g.width=16",
        "model.g.depth=2", "model.g.bn=true", "model.d.arch=mlp", "model.d.width=16", "model.d.depth=2",
        "lipschitz.d.sn=true", "lipschitz.d.gp_lambda=1", "lipschitz.d.sr_gamma=0.5",
        "lipschitz.d.sr_every=3", "lipschitz.d.sr_dynamic=true", "lipschitz.g.clamp_ratio=2",
        "lipschitz.g.rw_lambda=0.1", "ema.decay=0.9", "ema.start=2", "train.steps=8", "train.n_dis=2",
        "train.batch_d=16", "train.batch_g=8", "optim.d.lr=1e-3", "optim.g.lr=1e-3", "seed=11",
        "log.every=1", "log.samples_every=2", "log.checkpoint_every=0", "log.keep=3", "log.sample_n=16", "threads=1",
        NULL};
    set_all(c, s);
}

/* Tiny CNN on generated CIFAR records: Toeplitz D, BN in G, instance noise,
 * the data sampler crossing epochs. */
static void cnn_small(lg_config *c, const char *cifar) {
    lg_config_default(c);
    char p[600];
    snprintf(p, sizeof p, "data.path=%s", cifar);
    CHECK_OK(lg_config_set(c, p));
    static const char *const s[] = {
        "data.format=cifar10", "data.instance_noise=1/128", "model.z_dim=8", "model.g.arch=cnn",
        "model.g.width=4", "model.d.arch=cnn", "model.d.width=4", "lipschitz.d.toeplitz_k=2",
        "train.steps=6", "train.n_dis=2", "train.batch_d=5", "train.batch_g=3", "seed=5",
        "log.every=1", "log.samples_every=3", "log.checkpoint_every=0", "log.sample_n=4", "threads=1", NULL};
    set_all(c, s);
}

/* The WGAN reference setup on the toy: RMSProp on both networks, weight
 * clipping, and the critic schedule's boost (3 D updates at steps 0, 3 and
 * 6 (the first and every 3rd), 1 otherwise), so that a resume at step 4
 * must restore the square averages and find step 6 boosted again. */
static void toy_wgan(lg_config *c) {
    lg_config_default(c);
    static const char *const s[] = {
        "data.format=ring8", "data.toy_n=500", "model.z_dim=4", "model.g.arch=mlp", "model.g.width=16",
        "model.g.depth=2", "model.d.arch=mlp", "model.d.width=16", "model.d.depth=2", "loss=wasserstein",
        "lipschitz.d.sn=false", "lipschitz.d.clip=0.05", "optim.d.kind=rmsprop", "optim.g.kind=rmsprop",
        "optim.d.alpha=0.95", "optim.d.lr=1e-3", "optim.g.lr=1e-3", "train.n_dis=1", "train.n_dis_boost=3",
        "train.n_dis_boost_first=1", "train.n_dis_boost_every=3", "train.steps=8", "train.batch_d=16",
        "train.batch_g=8", "train.lr_decay=none", "seed=13", "log.every=1", "log.samples_every=0",
        "log.checkpoint_every=0", "log.sample_n=16", "threads=1", NULL};
    set_all(c, s);
}

typedef struct rec {
    lg_train_stats s[64];
    int n;
} rec;

static void rec_hook(lg_trainer *t, const lg_train_stats *s, void *user) {
    (void)t;
    rec *r = user;
    if (r->n < 64) r->s[r->n++] = *s;
}

static int same_model(lg_model *a, lg_model *b) {
    return lg_model_num_params(a) == lg_model_num_params(b) &&
           memcmp(lg_model_params(a), lg_model_params(b), lg_model_num_params(a) * sizeof(float)) == 0 &&
           memcmp(lg_model_state(a), lg_model_state(b), lg_model_num_state(a) * sizeof(float)) == 0;
}

/* 2N steps in one go vs N steps, a checkpoint, a new process state (a new
 * trainer) and N more: every loss and every buffer bit for bit. */
static void resume_case(const char *name, const lg_config *c, int64_t n) {
    char d1[256], d2[256];
    snprintf(d1, sizeof d1, "%s/%s_full", g_tmp, name);
    snprintf(d2, sizeof d2, "%s/%s_split", g_tmp, name);
    lg_trainer *a, *b, *b2;
    rec ra = {.n = 0}, rb = {.n = 0};
    CHECK_OK(lg_trainer_create(&a, c));
    CHECK_OK(lg_trainer_create(&b, c));
    if (!a || !b) return;
    lg_train_opts o = {.out_dir = d1, .after_step = rec_hook, .user = &ra};
    CHECK_OK(lg_trainer_run(a, &o));
    o = (lg_train_opts){.out_dir = d2, .after_step = rec_hook, .user = &rb, .stop_at = n};
    CHECK_OK(lg_trainer_run(b, &o));
    CHECK(lg_trainer_steps_done(b) == n, "%s: stopped at %lld", name, (long long)lg_trainer_steps_done(b));
    lg_trainer_free(b);
    CHECK_OK(lg_trainer_create(&b2, c));
    if (!b2) return;
    o = (lg_train_opts){.out_dir = d2, .resume = 1, .after_step = rec_hook, .user = &rb};
    CHECK_OK(lg_trainer_run(b2, &o));
    CHECK(ra.n == 2 * n && rb.n == 2 * n, "%s: %d and %d steps recorded", name, ra.n, rb.n);
    for (int i = 0; i < ra.n && i < rb.n; i++)
        CHECK(memcmp(&ra.s[i], &rb.s[i], sizeof ra.s[i]) == 0,
              "%s: step %d differs after resume: loss_d %.9g vs %.9g, loss_g %.9g vs %.9g", name, i + 1,
              ra.s[i].loss_d, rb.s[i].loss_d, ra.s[i].loss_g, rb.s[i].loss_g);
    CHECK(same_model(lg_trainer_generator(a), lg_trainer_generator(b2)), "%s: G differs", name);
    CHECK(same_model(lg_trainer_discriminator(a), lg_trainer_discriminator(b2)), "%s: D differs", name);
    if (lg_trainer_ema(a))
        CHECK(same_model(lg_trainer_ema(a), lg_trainer_ema(b2)), "%s: EMA differs", name);
    /* the final checkpoints are the same bytes except nothing: compare files */
    char f1[300], f2[300];
    lg_checkpoint_path(f1, sizeof f1, d1, 2 * n);
    lg_checkpoint_path(f2, sizeof f2, d2, 2 * n);
    unsigned char *x1 = NULL, *x2 = NULL;
    size_t l1 = 0, l2 = 0;
    CHECK_OK(lg_file_read_all(f1, &x1, &l1));
    CHECK_OK(lg_file_read_all(f2, &x2, &l2));
    CHECK(x1 && x2 && l1 == l2 && memcmp(x1, x2, l1) == 0,
          "%s: final checkpoints differ (Adam moments, RNG streams or cursor)", name);
    free(x1);
    free(x2);
    /* metrics.jsonl of the split run has each step once */
    snprintf(f2, sizeof f2, "%s/metrics.jsonl", d2);
    FILE *f = fopen(f2, "r");
    int rows = 0, ch;
    while (f && (ch = fgetc(f)) != EOF) rows += ch == '\n';
    if (f) fclose(f);
    CHECK(rows == 2 * n, "%s: metrics.jsonl has %d rows, want %lld", name, rows, (long long)(2 * n));
    lg_trainer_free(a);
    lg_trainer_free(b2);
}

static void test_resume_bitwise(void) {
    lg_config c;
    toy_full(&c);
    resume_case("toy", &c, 4);
    char cifar[256];
    CHECK(tf_write_cifar(g_tmp, 7, cifar, sizeof cifar) == 0, "tiny cifar");
    cnn_small(&c, cifar);
    resume_case("cnn", &c, 3);
    toy_wgan(&c);
    resume_case("wgan", &c, 4);
}

static float *copy_params(lg_model *m) {
    size_t n = lg_model_num_params(m);
    float *p = malloc(n * sizeof(float));
    memcpy(p, lg_model_params(m), n * sizeof(float));
    return p;
}

static int count_tmp_files(const char *dir) {
    DIR *d = opendir(dir);
    struct dirent *e;
    int n = 0;
    while (d && (e = readdir(d))) n += strstr(e->d_name, ".tmp.") != NULL;
    if (d) closedir(d);
    return n;
}

/* A child killed (SIGKILL) in the middle of overwriting a checkpoint, and a
 * write failing as on a full disk, both leave the previous checkpoint
 * intact and loadable. */
static void test_kill_during_checkpoint_write(void) {
    lg_config c;
    toy_full(&c);
    char dir[256], path[300];
    snprintf(dir, sizeof dir, "%s/kill", g_tmp);
    mkdir(dir, 0777);
    lg_checkpoint_path(path, sizeof path, dir, 2);
    lg_trainer *t;
    CHECK_OK(lg_trainer_create(&t, &c));
    if (!t) return;
    lg_train_stats s;
    for (int i = 0; i < 2; i++) CHECK_OK(lg_trainer_step(t, &s));
    CHECK_OK(lg_trainer_save(t, path));
    float *good = copy_params(lg_trainer_generator(t));
    struct stat sb;
    CHECK(stat(path, &sb) == 0, "checkpoint written");
    for (int i = 0; i < 2; i++) CHECK_OK(lg_trainer_step(t, &s));  /* newer state */

    long long cuts[3] = {0, 200, (long long)sb.st_size / 2};
    for (int k = 0; k < 3; k++) {
        fflush(NULL);
        pid_t pid = fork();
        if (pid == 0) {
            char v[32];
            snprintf(v, sizeof v, "%lld", cuts[k]);
            setenv("LG_FAULT_CHECKPOINT_ABORT_AFTER_BYTES", v, 1);
            lg_trainer_save(t, path);
            _exit(0);  /* not reached: the hook kills the process */
        }
        int status = 0;
        waitpid(pid, &status, 0);
        CHECK(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL, "child at cut %lld: status %d", cuts[k],
              status);
        lg_trainer *t2;
        CHECK_OK(lg_trainer_create(&t2, &c));
        if (!t2) continue;
        CHECK_OK(lg_trainer_load(t2, path));
        lg_model *g2 = lg_trainer_generator(t2);
        CHECK(memcmp(good, lg_model_params(g2), lg_model_num_params(g2) * sizeof(float)) == 0,
              "cut %lld: the old checkpoint no longer holds the old weights", cuts[k]);
        CHECK(lg_trainer_steps_done(t2) == 2, "cut %lld: step %lld", cuts[k], (long long)lg_trainer_steps_done(t2));
        lg_trainer_free(t2);
    }
    /* the killed children leave their temp files (a real crash would too);
     * they are never mistaken for checkpoints */
    char latest[300];
    int64_t lstep = -1;
    CHECK(count_tmp_files(dir) == 3, "%d temp files of killed writers", count_tmp_files(dir));
    CHECK_OK(lg_checkpoint_latest(dir, latest, sizeof latest, &lstep));
    CHECK(lstep == 2 && !strcmp(latest, path), "latest checkpoint %s (step %lld)", latest, (long long)lstep);

    /* full disk: the save fails with an I/O error, no temp file stays */
    int before = count_tmp_files(dir);
    lg_file_fault_fail_after(300);
    lg_status st = lg_trainer_save(t, path);
    lg_file_fault_fail_after(-1);
    CHECK(st == LG_ERR_IO, "full disk gave %s (%s)", lg_status_str(st), lg_error_msg());
    CHECK(count_tmp_files(dir) == before, "a failed save left a temp file");
    lg_trainer *t3;
    CHECK_OK(lg_trainer_create(&t3, &c));
    if (t3) {
        CHECK_OK(lg_trainer_load(t3, path));
        CHECK(memcmp(good, lg_model_params(lg_trainer_generator(t3)), lg_model_num_params(lg_trainer_generator(t3)) * sizeof(float)) == 0,
              "full disk: old checkpoint changed");
        lg_trainer_free(t3);
    }
    free(good);
    lg_trainer_free(t);
}

static void expect_load_error(lg_trainer *t, const char *path, lg_status want, const char *w1, const char *w2) {
    lg_model *g = lg_trainer_generator(t);
    float *before = copy_params(g);
    int64_t step = lg_trainer_steps_done(t);
    lg_error_clear();
    lg_status s = lg_trainer_load(t, path);
    CHECK(s == want, "load %s: %s (%s), want %s", path, lg_status_str(s), lg_error_msg(), lg_status_str(want));
    CHECK(strstr(lg_error_msg(), w1) && (!w2 || strstr(lg_error_msg(), w2)), "message '%s' lacks '%s' / '%s'",
          lg_error_msg(), w1, w2 ? w2 : "");
    CHECK(strstr(lg_error_msg(), path) != NULL, "message '%s' does not name the file", lg_error_msg());
    CHECK(memcmp(before, lg_model_params(g), lg_model_num_params(g) * sizeof(float)) == 0 &&
              lg_trainer_steps_done(t) == step, "a failed load changed the trainer");
    free(before);
}

static void test_load_validation(void) {
    lg_config c, c2;
    toy_full(&c);
    char path[300], other[300];
    snprintf(path, sizeof path, "%s/valid.safetensors", g_tmp);
    lg_trainer *t, *u;
    CHECK_OK(lg_trainer_create(&t, &c));
    if (!t) return;
    lg_train_stats s;
    CHECK_OK(lg_trainer_step(t, &s));
    CHECK_OK(lg_trainer_save(t, path));

    c2 = c;
    CHECK_OK(lg_config_set(&c2, "model.g.width=24"));
    CHECK_OK(lg_trainer_create(&u, &c2));
    if (u) {
        expect_load_error(u, path, LG_ERR_SHAPE, "G.", "another model config");
        lg_trainer_free(u);
    }
    c2 = c;
    CHECK_OK(lg_config_set(&c2, "ema.decay=0"));
    CHECK_OK(lg_trainer_create(&u, &c2));
    if (u) {
        expect_load_error(u, path, LG_ERR_FORMAT, "EMA.", "not part of this model");
        lg_trainer_free(u);
    }
    c2 = c;
    CHECK_OK(lg_config_set(&c2, "lipschitz.g.clamp_ratio=0"));
    CHECK_OK(lg_config_set(&c2, "ema.decay=0"));
    CHECK_OK(lg_trainer_create(&u, &c2));
    if (u) {
        lg_train_stats s2;
        CHECK_OK(lg_trainer_step(u, &s2));
        snprintf(other, sizeof other, "%s/noema.safetensors", g_tmp);
        CHECK_OK(lg_trainer_save(u, other));
        lg_trainer_free(u);
        expect_load_error(t, other, LG_ERR_NOT_FOUND, "EMA.", "missing");
    }
    /* a safetensors file that is not a lipgan checkpoint, and garbage */
    snprintf(other, sizeof other, "%s/plain.safetensors", g_tmp);
    lg_st_writer *w;
    CHECK_OK(lg_st_writer_create(&w));
    float one = 1.0f;
    CHECK_OK(lg_st_writer_add_f32(w, "x", 1, (int64_t[]){1}, &one));
    CHECK_OK(lg_st_writer_write(w, other, 0));
    lg_st_writer_free(w);
    expect_load_error(t, other, LG_ERR_FORMAT, "not a lipgan checkpoint", NULL);
    snprintf(other, sizeof other, "%s/garbage.safetensors", g_tmp);
    CHECK_OK(lg_file_write_atomic(other, "\x10\0\0\0\0\0\0\0{not json", 18));
    expect_load_error(t, other, LG_ERR_FORMAT, "", NULL);
    /* truncated checkpoint */
    unsigned char *buf;
    size_t len;
    CHECK_OK(lg_file_read_all(path, &buf, &len));
    snprintf(other, sizeof other, "%s/trunc.safetensors", g_tmp);
    CHECK_OK(lg_file_write_atomic(other, buf, len - 5));
    free(buf);
    expect_load_error(t, other, LG_ERR_FORMAT, "", NULL);
    lg_trainer_free(t);
}

static void test_run_directory(void) {
    lg_config c;
    toy_full(&c);
    CHECK_OK(lg_config_set(&c, "log.checkpoint_every=1"));
    CHECK_OK(lg_config_set(&c, "log.keep=2"));
    CHECK_OK(lg_config_set(&c, "train.steps=5"));
    char dir[256], p[300];
    snprintf(dir, sizeof dir, "%s/rundir", g_tmp);
    lg_trainer *t;
    CHECK_OK(lg_trainer_create(&t, &c));
    if (!t) return;
    lg_train_opts o = {.out_dir = dir};
    CHECK_OK(lg_trainer_run(t, &o));
    for (int64_t s = 1; s <= 5; s++) {
        lg_checkpoint_path(p, sizeof p, dir, s);
        struct stat sb;
        CHECK((stat(p, &sb) == 0) == (s >= 4), "keep 2: checkpoint of step %lld %s", (long long)s,
              s >= 4 ? "missing" : "not pruned");
    }
    int64_t step;
    CHECK_OK(lg_checkpoint_latest(dir, p, sizeof p, &step));
    CHECK(step == 5, "latest %lld", (long long)step);
    /* generating from the checkpoint equals generating from the live EMA G */
    lg_model *g;
    lg_config cc;
    CHECK_OK(lg_checkpoint_load_generator(dir, lg_backend_cpu(), 1, &g, &cc));
    if (g) {
        float a[20 * 2], b[20 * 2];
        CHECK_OK(lg_generate(g, lg_backend_cpu(), 20, 7, a));
        CHECK_OK(lg_generate(lg_trainer_ema(t), lg_backend_cpu(), 20, 7, b));
        CHECK(memcmp(a, b, sizeof a) == 0, "samples from the checkpoint differ from the live EMA G");
        CHECK(cc.model.g.width == 16 && !strcmp(cc.data.format, "ring8"), "config from metadata");
        lg_model_free(g);
    }
    lg_trainer_free(t);
    /* a run directory with checkpoints is not silently reused */
    CHECK_OK(lg_trainer_create(&t, &c));
    if (!t) return;
    lg_error_clear();
    lg_status s = lg_trainer_run(t, &o);
    CHECK(s == LG_ERR_INVALID_ARG && strstr(lg_error_msg(), "--resume"), "reuse: %s %s", lg_status_str(s),
          lg_error_msg());
    snprintf(p, sizeof p, "%s/empty", g_tmp);
    mkdir(p, 0777); /* exists, holds no checkpoint (a missing one: test_run_directory_guards) */
    o = (lg_train_opts){.out_dir = p, .resume = 1};
    s = lg_trainer_run(t, &o);
    CHECK(s == LG_ERR_NOT_FOUND && strstr(lg_error_msg(), "no checkpoint"), "resume of nothing: %s %s",
          lg_status_str(s), lg_error_msg());
    /* resuming a finished run does nothing and succeeds */
    o = (lg_train_opts){.out_dir = dir, .resume = 1};
    CHECK_OK(lg_trainer_run(t, &o));
    CHECK(lg_trainer_steps_done(t) == 5, "finished run resumed at %lld", (long long)lg_trainer_steps_done(t));
    lg_trainer_free(t);
}


/* ---- QA items 5, 7-10: damaged files, resume, run-directory guards ---- */

/* The byte offset in file `path` of tensor `name`'s data; -1 if absent. */
static long tensor_file_offset(const char *path, const char *name) {
    lg_st_file *f;
    if (lg_st_open(&f, path) != LG_OK) return -1;
    const lg_st_tensor *t = lg_st_find(f, name);
    long off = -1;
    if (t) {
        FILE *fp = fopen(path, "rb");
        unsigned char h[8];
        if (fp && fread(h, 1, 8, fp) == 8) {
            uint64_t n = 0;
            for (int i = 7; i >= 0; i--) n = n << 8 | h[i];
            off = (long)(8 + n + t->offset);
        }
        if (fp) fclose(fp);
    }
    lg_st_close(f);
    return off;
}

/* Sets the CRC-32 in the header of the whole file buf to that of its
 * data, as if it had been written with these values (a file can hold a
 * NaN behind a correct checksum: made by hand, or by a bug). 0 if done. */

/* Writes a copy of src to dst with one float of tensor `name` (element i)
 * replaced by v, its CRC-32 updated (so the loader's own checks are what
 * refuse it). */
static int poke_float(const char *src, const char *dst, const char *name, int i, float v) {
    long off = tensor_file_offset(src, name);
    unsigned char *buf;
    size_t len;
    if (off < 0 || lg_file_read_all(src, &buf, &len) != LG_OK) return -1;
    memcpy(buf + off + 4 * i, &v, 4);
    if (lg_test_st_fix_crc(buf, len) != 0) {
        free(buf);
        return -1;
    }
    lg_status st = lg_file_write_atomic(dst, buf, len);
    free(buf);
    return st == LG_OK ? 0 : -1;
}

/* A file whose config metadata claims networks far larger than the values
 * it holds (an 8 KB toy checkpoint whose config says a 4096-wide, 20-deep
 * MLP G; found by tools/fuzz) is refused before that model is allocated
 * (it used to build 6.4 GB for 40 s). Its tensors are the toy's, so a
 * trainer built from the run's own config loads it (hence "ok-"). */
static void test_config_larger_than_file(void) {
    const char *p = "tests/data/fuzz/checkpoint/ok-config_claims_huge_g.safetensors";
    lg_model *g = NULL, *d = NULL;
    lg_status s = lg_checkpoint_load_generator(p, NULL, 0, &g, NULL);
    CHECK(s == LG_ERR_FORMAT && strstr(lg_error_msg(), "config describes a generator of") && !g,
          "load_generator: %s: %s", lg_status_str(s), lg_error_msg());
    s = lg_checkpoint_models(p, &g, &d);
    CHECK(s == LG_ERR_FORMAT && strstr(lg_error_msg(), "config describes a generator of") && !g && !d,
          "checkpoint_models: %s: %s", lg_status_str(s), lg_error_msg());
    /* the spec count is the built model's */
    lg_model_spec sp;
    lg_model_spec_default(&sp, LG_ARCH_RESNET, LG_NET_D);
    size_t n = 0;
    CHECK_OK(lg_model_spec_count(&sp, &n));
    CHECK_OK(lg_model_create(&d, &sp, NULL, 1));
    CHECK(d && n == lg_model_count_params(d), "spec count %zu, built %zu", n, d ? lg_model_count_params(d) : 0);
    lg_model_free(d);
}

static void test_not_a_checkpoint_message(void) {
    /* item 5: the format named in the message is the file's (it was read
     * after the file was closed) */
    char other[300];
    snprintf(other, sizeof other, "%s/fidlike.safetensors", g_tmp);
    lg_st_writer *w;
    CHECK_OK(lg_st_writer_create(&w));
    CHECK_OK(lg_st_writer_add_meta(w, "format", "lipgan-fid-stats-1"));
    CHECK_OK(lg_st_writer_add_meta(w, "padding", "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"));
    float mu[4] = {1, 2, 3, 4};
    CHECK_OK(lg_st_writer_add_f32(w, "mu", 1, (int64_t[]){4}, mu));
    CHECK_OK(lg_st_writer_write(w, other, 0));
    lg_st_writer_free(w);
    lg_model *g = NULL;
    lg_error_clear();
    lg_status s = lg_checkpoint_load_generator(other, lg_backend_cpu(), 1, &g, NULL);
    CHECK(s == LG_ERR_FORMAT && strstr(lg_error_msg(), "not a lipgan checkpoint") &&
              strstr(lg_error_msg(), "\"lipgan-fid-stats-1\"") && strstr(lg_error_msg(), other),
          "%s: %s", lg_status_str(s), lg_error_msg());
    lg_config c;
    toy_full(&c);
    lg_trainer *t;
    CHECK_OK(lg_trainer_create(&t, &c));
    if (!t) return;
    lg_error_clear();
    s = lg_trainer_load(t, other);
    CHECK(s == LG_ERR_FORMAT && strstr(lg_error_msg(), "\"lipgan-fid-stats-1\""), "%s: %s", lg_status_str(s),
          lg_error_msg());
    lg_trainer_free(t);
}

static void test_nonfinite_checkpoint_rejected(void) {
    /* item 7: NaN/Inf in a parameter, a state buffer or an Adam moment is
     * a damaged file: FORMAT naming file and tensor, nothing applied */
    lg_config c;
    toy_full(&c);
    char good[300], bad[300];
    snprintf(good, sizeof good, "%s/finite.safetensors", g_tmp);
    snprintf(bad, sizeof bad, "%s/nonfinite.safetensors", g_tmp);
    lg_trainer *t;
    CHECK_OK(lg_trainer_create(&t, &c));
    if (!t) return;
    lg_train_stats st;
    for (int i = 0; i < 2; i++) CHECK_OK(lg_trainer_step(t, &st));
    CHECK_OK(lg_trainer_save(t, good));
    lg_trainer_free(t);
    struct { const char *name; float v; } cases[] = {
        {"G.fc0.weight", NAN}, {"D.fc1.weight", INFINITY}, {"D.fc0.sn_u", NAN},
        {"D.adam.v", -INFINITY}, {"G.adam.m", NAN}, {"EMA.fc2.bias", NAN}, {"G.bn0.running_var", NAN},
    };
    lg_trainer *u;
    CHECK_OK(lg_trainer_create(&u, &c));
    if (!u) return;
    for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
        if (tensor_file_offset(good, cases[k].name) < 0) {
            CHECK(0, "no tensor %s in the checkpoint", cases[k].name);
            continue;
        }
        CHECK(poke_float(good, bad, cases[k].name, 1, cases[k].v) == 0, "poke %s", cases[k].name);
        expect_load_error(u, bad, LG_ERR_FORMAT, cases[k].name, "non-finite");
    }
    /* sampling: the generator loader checks too */
    CHECK(poke_float(good, bad, "EMA.fc0.weight", 0, NAN) == 0, "poke");
    lg_model *g = NULL;
    lg_error_clear();
    lg_status s = lg_checkpoint_load_generator(bad, lg_backend_cpu(), 1, &g, NULL);
    CHECK(s == LG_ERR_FORMAT && g == NULL && strstr(lg_error_msg(), "EMA.fc0.weight") && strstr(lg_error_msg(), bad),
          "load_generator: %s (%s)", lg_status_str(s), lg_error_msg());
    CHECK_OK(lg_checkpoint_load_generator(bad, lg_backend_cpu(), 0, &g, NULL)); /* G's weights are fine */
    lg_model_free(g);
    CHECK_OK(lg_trainer_load(u, good));
    lg_trainer_free(u);
}

static void quiet_run_cfg(lg_config *c) {
    toy_full(c);
    CHECK_OK(lg_config_set(c, "log.checkpoint_every=2"));
    CHECK_OK(lg_config_set(c, "log.keep=5"));
    CHECK_OK(lg_config_set(c, "log.samples_every=0"));
    CHECK_OK(lg_config_set(c, "train.steps=4"));
}

/* runs t over dir; the progress text (malloc'ed) into *log */
static lg_status run_logged(lg_trainer *t, const char *dir, int resume, char **log) {
    size_t len = 0;
    *log = NULL;
    FILE *f = open_memstream(log, &len);
    lg_train_opts o = {.out_dir = dir, .resume = resume, .progress = f};
    lg_status s = lg_trainer_run(t, &o);
    char msg[2048];
    snprintf(msg, sizeof msg, "%s", lg_error_msg());
    fclose(f);
    lg_error_set(s, "%s", msg);
    return s;
}

static void test_resume_damaged_newest(void) {
    /* item 8: a truncated newest checkpoint: the error names the newest
     * older one that opens, and how to go on; nothing falls back */
    lg_config c;
    quiet_run_cfg(&c);
    char dir[256], p4[300], p2[300];
    snprintf(dir, sizeof dir, "%s/damaged", g_tmp);
    lg_trainer *t;
    CHECK_OK(lg_trainer_create(&t, &c));
    if (!t) return;
    lg_train_opts o = {.out_dir = dir};
    CHECK_OK(lg_trainer_run(t, &o));
    lg_trainer_free(t);
    lg_checkpoint_path(p4, sizeof p4, dir, 4);
    lg_checkpoint_path(p2, sizeof p2, dir, 2);
    unsigned char *buf;
    size_t len;
    CHECK_OK(lg_file_read_all(p4, &buf, &len));
    CHECK_OK(lg_file_write_atomic(p4, buf, len - 64));
    CHECK_OK(lg_config_set(&c, "train.steps=6"));
    CHECK_OK(lg_trainer_create(&t, &c));
    if (!t) return;
    char *log;
    lg_status s = run_logged(t, dir, 1, &log);
    CHECK(s == LG_ERR_FORMAT && strstr(lg_error_msg(), p4) && strstr(lg_error_msg(), p2) &&
              strstr(lg_error_msg(), "move the damaged file aside") && strstr(lg_error_msg(), "--resume"),
          "truncated newest: %s (%s)", lg_status_str(s), lg_error_msg());
    CHECK(lg_trainer_steps_done(t) == 0, "it fell back silently to step %lld", (long long)lg_trainer_steps_done(t));
    free(log);
    /* a NaN in the newest: the same hint */
    CHECK(poke_float(p2, p4, "D.fc0.weight", 0, NAN) == 0, "poke");
    free(buf);
    s = run_logged(t, dir, 1, &log);
    CHECK(s == LG_ERR_FORMAT && strstr(lg_error_msg(), "non-finite") && strstr(lg_error_msg(), p2),
          "NaN newest: %s (%s)", lg_status_str(s), lg_error_msg());
    free(log);
    lg_trainer_free(t);
    /* not damaged, another config: no hint about older files */
    CHECK_OK(lg_file_read_all(p2, &buf, &len));
    CHECK_OK(lg_file_write_atomic(p4, buf, len));
    free(buf);
    lg_config c2 = c;
    CHECK_OK(lg_config_set(&c2, "model.g.width=24"));
    CHECK_OK(lg_trainer_create(&t, &c2));
    if (!t) return;
    s = run_logged(t, dir, 1, &log);
    CHECK(s == LG_ERR_SHAPE && !strstr(lg_error_msg(), "older"), "other config: %s (%s)", lg_status_str(s),
          lg_error_msg());
    free(log);
    lg_trainer_free(t);
}

/* in run.c, which names it in its resume error */
lg_status lg__checkpoint_older_intact(const char *dir, int64_t below, char *buf, size_t cap, int64_t *step);

/* XORs byte 0 (the lowest mantissa bits) of float i of tensor name in the
 * file at path with x: a value still finite and near the old one, which
 * only the CRC-32 can catch. */
static int flip_low_byte(const char *path, const char *name, int i, unsigned char x) {
    long off = tensor_file_offset(path, name);
    unsigned char *buf;
    size_t len;
    if (off < 0 || lg_file_read_all(path, &buf, &len) != LG_OK) return -1;
    buf[off + 4 * i] ^= x;
    lg_status st = lg_file_write_atomic(path, buf, len);
    free(buf);
    return st == LG_OK ? 0 : -1;
}

static void test_crc_damaged_checkpoint(void) {
    /* the user audit: bytes of the weights flipped on disk were used as
     * they were; now the loader, the generator loader and resume refuse
     * them, and the resume error names the newest older checkpoint whose
     * data is intact, skipping a damaged one */
    lg_config c;
    quiet_run_cfg(&c);
    CHECK_OK(lg_config_set(&c, "train.steps=6"));
    char dir[256], p2[300], p4[300], p6[300];
    snprintf(dir, sizeof dir, "%s/crc", g_tmp);
    lg_trainer *t;
    CHECK_OK(lg_trainer_create(&t, &c));
    if (!t) return;
    lg_train_opts o = {.out_dir = dir};
    CHECK_OK(lg_trainer_run(t, &o));
    lg_trainer_free(t);
    lg_checkpoint_path(p2, sizeof p2, dir, 2);
    lg_checkpoint_path(p4, sizeof p4, dir, 4);
    lg_checkpoint_path(p6, sizeof p6, dir, 6);
    char v[16];
    CHECK(lg_st_peek_meta(p6, LG_ST_CRC32_KEY, v, sizeof v) == 1 && strlen(v) == 8, "checkpoint CRC key: %s", v);
    /* G's first weight of the newest, D's of the one before */
    CHECK(flip_low_byte(p6, "G.fc0.weight", 3, 0x5a) == 0, "flip %s", p6);
    CHECK(flip_low_byte(p4, "D.fc1.weight", 0, 0x01) == 0, "flip %s", p4);
    CHECK_OK(lg_trainer_create(&t, &c));
    if (!t) return;
    lg_error_clear();
    lg_status s = lg_trainer_load(t, p6);
    CHECK(s == LG_ERR_FORMAT && strstr(lg_error_msg(), p6) && strstr(lg_error_msg(), "data damaged (CRC-32"),
          "load: %s (%s)", lg_status_str(s), lg_error_msg());
    CHECK(lg_trainer_steps_done(t) == 0, "state applied from a damaged file");
    lg_model *g = NULL;
    s = lg_checkpoint_load_generator(p6, lg_backend_cpu(), 0, &g, NULL);
    CHECK(s == LG_ERR_FORMAT && !g && strstr(lg_error_msg(), "data damaged"), "load_generator: %s (%s)",
          lg_status_str(s), lg_error_msg());
    lg_model_free(g);
    /* the newest older one whose data is intact */
    char older[300];
    int64_t ostep = -1;
    CHECK_OK(lg__checkpoint_older_intact(dir, 6, older, sizeof older, &ostep));
    CHECK(ostep == 2 && !strcmp(older, p2), "older intact: step %lld (%s)", (long long)ostep, older);
    /* resume: refused, naming the damage and the way on; nothing loaded */
    CHECK_OK(lg_config_set(&c, "train.steps=8"));
    char *log;
    s = run_logged(t, dir, 1, &log);
    CHECK(s == LG_ERR_FORMAT && strstr(lg_error_msg(), "data damaged") && strstr(lg_error_msg(), p6) &&
              strstr(lg_error_msg(), p2) && !strstr(lg_error_msg(), p4) &&
              strstr(lg_error_msg(), "move the damaged file aside"),
          "resume: %s (%s)", lg_status_str(s), lg_error_msg());
    CHECK(lg_trainer_steps_done(t) == 0, "it fell back silently to step %lld", (long long)lg_trainer_steps_done(t));
    free(log);
    lg_trainer_free(t);
    /* the intact one still loads */
    CHECK_OK(lg_trainer_create(&t, &c));
    if (!t) return;
    CHECK_OK(lg_trainer_load(t, p2));
    CHECK(lg_trainer_steps_done(t) == 2, "step %lld", (long long)lg_trainer_steps_done(t));
    lg_trainer_free(t);
}

static void test_resume_config_changes(void) {
    /* item 9: every differing key named, old -> new, and the learning-rate
     * change; a checkpoint at train.steps is "nothing to do" */
    lg_config c;
    quiet_run_cfg(&c);
    char dir[256], p[300];
    snprintf(dir, sizeof dir, "%s/cfgdiff", g_tmp);
    lg_trainer *t;
    CHECK_OK(lg_trainer_create(&t, &c));
    if (!t) return;
    lg_train_opts o = {.out_dir = dir, .stop_at = 2};
    CHECK_OK(lg_trainer_run(t, &o));
    lg_trainer_free(t);
    lg_config c2 = c;
    CHECK_OK(lg_config_set(&c2, "train.steps=8"));
    CHECK_OK(lg_config_set(&c2, "log.every=2"));
    CHECK_OK(lg_trainer_create(&t, &c2));
    if (!t) return;
    char *log;
    CHECK_OK(run_logged(t, dir, 1, &log));
    CHECK(log && strstr(log, "train.steps: 4 -> 8") && strstr(log, "log.every: 1 -> 2") && strstr(log, "2 keys"),
          "keys not named:\n%s", log ? log : "");
    /* at step 2: 1e-3 * (1 - 2/4) = 5e-4 before, 1e-3 * (1 - 2/8) = 7.5e-4 now */
    CHECK(log && strstr(log, "learning-rate schedule") && strstr(log, "at step 2 lr G 0.0005 -> 0.00075"),
          "no learning-rate line:\n%s", log ? log : "");
    CHECK(lg_trainer_steps_done(t) == 8 && lg_trainer_run_start(t) == 2, "steps %lld from %lld",
          (long long)lg_trainer_steps_done(t), (long long)lg_trainer_run_start(t));
    free(log);
    lg_trainer_free(t);
    /* the same config: no warning */
    CHECK_OK(lg_config_set(&c2, "train.steps=10"));
    CHECK_OK(lg_trainer_create(&t, &c2));
    if (!t) return;
    lg_train_opts o2 = {.out_dir = dir, .resume = 1, .stop_at = 9};
    CHECK_OK(lg_trainer_run(t, &o2));
    lg_trainer_free(t);
    CHECK_OK(lg_trainer_create(&t, &c2));
    if (!t) return;
    lg_train_opts o3 = {.out_dir = dir, .resume = 1, .stop_at = 9};
    char *l2 = NULL;
    size_t len2 = 0;
    o3.progress = open_memstream(&l2, &len2);
    CHECK_OK(lg_trainer_run(t, &o3));
    fclose(o3.progress);
    CHECK(l2 && !strstr(l2, "warning"), "a warning for the same config:\n%s", l2 ? l2 : "");
    free(l2);
    lg_trainer_free(t);
    /* at or past train.steps: said, nothing written */
    snprintf(p, sizeof p, "%s/config.yaml", dir);
    struct stat before, after;
    CHECK(stat(p, &before) == 0, "config.yaml");
    CHECK_OK(lg_trainer_create(&t, &c)); /* train.steps 4 < 9 */
    if (!t) return;
    CHECK_OK(run_logged(t, dir, 1, &log));
    CHECK(log && strstr(log, "already at step 9 >= train.steps 4; nothing to do"), "no 'nothing to do':\n%s",
          log ? log : "");
    CHECK(log && !strstr(log, "learning-rate"), "a learning-rate line with nothing to do:\n%s", log ? log : "");
    CHECK(lg_trainer_run_start(t) == 9 && lg_trainer_steps_done(t) == 9, "start %lld done %lld",
          (long long)lg_trainer_run_start(t), (long long)lg_trainer_steps_done(t));
    CHECK(stat(p, &after) == 0 && after.st_mtim.tv_sec == before.st_mtim.tv_sec &&
              after.st_mtim.tv_nsec == before.st_mtim.tv_nsec,
          "config.yaml rewritten with nothing to do");
    free(log);
    lg_trainer_free(t);

    /* only logging keys differ: a note that training is unaffected, no
     * "will not match" warning */
    snprintf(dir, sizeof dir, "%s/cfgdiff_log", g_tmp);
    CHECK_OK(lg_trainer_create(&t, &c));
    if (!t) return;
    lg_train_opts o4 = {.out_dir = dir, .stop_at = 2};
    CHECK_OK(lg_trainer_run(t, &o4));
    lg_trainer_free(t);
    lg_config c3 = c;
    CHECK_OK(lg_config_set(&c3, "log.every=2"));
    CHECK_OK(lg_trainer_create(&t, &c3));
    if (!t) return;
    CHECK_OK(run_logged(t, dir, 1, &log));
    CHECK(log && strstr(log, "note: the config") && strstr(log, "log.every: 1 -> 2") &&
              strstr(log, "only logging and evaluation") && !strstr(log, "will not match"),
          "a logging-only change:\n%s", log ? log : "");
    free(log);
    lg_trainer_free(t);
    /* a key that adds state the checkpoint lacks: the error names the key */
    CHECK_OK(lg_config_set(&c3, "lipschitz.d.clamp_ratio=2"));
    CHECK_OK(lg_trainer_create(&t, &c3));
    if (!t) return;
    lg_status s = run_logged(t, dir, 1, &log);
    CHECK(s != LG_OK && strstr(lg_error_msg(), "gclamp") &&
              strstr(lg_error_msg(), "the config differs from the checkpoint's in: ") &&
              strstr(lg_error_msg(), "lipschitz.d.clamp_ratio: 0 -> 2"),
          "added clamping: %s: %s", lg_status_str(s), lg_error_msg());
    free(log);
    lg_trainer_free(t);

    /* D's optimizer switched from Adam to RMSProp: it starts afresh (zero
     * moments, step 0) instead of reading Adam's v as RMSProp's square
     * average; G's, unchanged, keeps its state; the run says so */
    lg_config c4 = c;
    CHECK_OK(lg_config_set(&c4, "optim.d.kind=rmsprop"));
    CHECK_OK(lg_config_set(&c4, "optim.d.beta1=0"));
    snprintf(p, sizeof p, "%s/cfgdiff_log/ckpt_000000002.safetensors", g_tmp);
    CHECK_OK(lg_trainer_create(&t, &c4));
    if (!t) return;
    CHECK_OK(lg_trainer_load(t, p));
    size_t nd = t->opt_d.n, zero = 0, gnz = 0;
    float *mv = malloc(2 * nd * sizeof *mv); /* (2 nd) D's m then v */
    if (mv) {
        t->be->download(mv, t->opt_d.m, 2 * nd);
        for (size_t i = 0; i < 2 * nd; i++) zero += mv[i] == 0.0f;
    }
    for (size_t i = 0; i < t->opt_g.n; i++) gnz += t->opt_g.v[i] != 0.0f;
    CHECK(mv && zero == 2 * nd && t->opt_d.t == 0, "switched D optimizer: %zu of %zu moments zero, t %lld",
          zero, 2 * nd, (long long)t->opt_d.t);
    CHECK(t->opt_g.t == 2 && gnz > 0, "G's optimizer lost its state: t %lld, %zu nonzero v",
          (long long)t->opt_g.t, gnz);
    free(mv);
    lg_trainer_free(t);
    CHECK_OK(lg_trainer_create(&t, &c4));
    if (!t) return;
    CHECK_OK(run_logged(t, dir, 1, &log));
    CHECK(log && strstr(log, "note: optim.d.kind is rmsprop") && strstr(log, "was adam: D's optimizer starts afresh") &&
              !strstr(log, "optim.g.kind is"),
          "no note on the switched optimizer:\n%s", log ? log : "");
    free(log);
    lg_trainer_free(t);
}

static int count_entries(const char *dir) {
    DIR *d = opendir(dir);
    int n = 0;
    struct dirent *e;
    while (d && (e = readdir(d))) n += e->d_name[0] != '.';
    if (d) closedir(d);
    return d ? n : -1;
}

static void test_run_directory_guards(void) {
    /* item 10 */
    lg_config c;
    quiet_run_cfg(&c);
    char dir[256], p[300];
    lg_trainer *t;
    CHECK_OK(lg_trainer_create(&t, &c));
    if (!t) return;
    /* --resume of a missing directory creates nothing */
    snprintf(dir, sizeof dir, "%s/guard_missing/deeper", g_tmp);
    lg_train_opts o = {.out_dir = dir, .resume = 1};
    lg_error_clear();
    lg_status s = lg_trainer_run(t, &o);
    struct stat sb;
    snprintf(p, sizeof p, "%s/guard_missing", g_tmp);
    CHECK(s == LG_ERR_NOT_FOUND && strstr(lg_error_msg(), dir) && !lg_trainer_run_dir_conflict(t) &&
              strstr(lg_error_msg(), "--resume"),
          "resume of nothing: %s (%s)", lg_status_str(s), lg_error_msg());
    CHECK(stat(p, &sb) != 0, "--resume of a missing directory created %s", p);
    /* resume without a directory: not a conflict; the message names the flag */
    o = (lg_train_opts){.out_dir = NULL, .resume = 1};
    lg_error_clear();
    s = lg_trainer_run(t, &o);
    CHECK(s == LG_ERR_INVALID_ARG && !lg_trainer_run_dir_conflict(t) && strstr(lg_error_msg(), "--out"),
          "resume without out_dir: %s (%s)", lg_status_str(s), lg_error_msg());
    /* an out_dir that is a file (or under one): LG_ERR_IO, a conflict (train.h) */
    snprintf(p, sizeof p, "%s/guard_file", g_tmp);
    CHECK_OK(lg_file_write_atomic(p, "x", 1));
    for (int k = 0; k < 2; k++) {
        snprintf(dir, sizeof dir, k ? "%s/guard_file/sub" : "%s/guard_file", g_tmp);
        o = (lg_train_opts){.out_dir = dir};
        lg_error_clear();
        s = lg_trainer_run(t, &o);
        CHECK(s == LG_ERR_IO && lg_trainer_run_dir_conflict(t) && strstr(lg_error_msg(), dir) &&
                  strstr(lg_error_msg(), "--out"),
              "out_dir %s: %s (%s)", dir, lg_status_str(s), lg_error_msg());
    }
    /* a metrics.jsonl without a checkpoint: refused, the file kept */
    snprintf(dir, sizeof dir, "%s/guard_killed", g_tmp);
    mkdir(dir, 0777);
    snprintf(p, sizeof p, "%s/metrics.jsonl", dir);
    const char *row = "{\"step\":1,\"loss_d\":1}\n";
    CHECK_OK(lg_file_write_atomic(p, row, strlen(row)));
    o = (lg_train_opts){.out_dir = dir};
    lg_error_clear();
    s = lg_trainer_run(t, &o);
    CHECK(s == LG_ERR_INVALID_ARG && lg_trainer_run_dir_conflict(t) && strstr(lg_error_msg(), p) &&
              strstr(lg_error_msg(), "--out") && strstr(lg_error_msg(), "delete"),
          "leftover metrics.jsonl: %s (%s)", lg_status_str(s), lg_error_msg());
    unsigned char *buf = NULL;
    size_t len = 0;
    CHECK_OK(lg_file_read_all(p, &buf, &len));
    CHECK(buf && len == strlen(row) && !memcmp(buf, row, len), "metrics.jsonl was overwritten");
    free(buf);
    CHECK(count_entries(dir) == 1, "%d entries in %s besides the log", count_entries(dir) - 1, dir);
    /* an empty one (killed before its first row) is no run: overwritten */
    CHECK_OK(lg_file_write_atomic(p, "", 0));
    CHECK_OK(lg_trainer_run(t, &o));
    lg_trainer_free(t);
    /* checkpoints without --resume: a conflict */
    CHECK_OK(lg_trainer_create(&t, &c));
    if (!t) return;
    lg_error_clear();
    s = lg_trainer_run(t, &o);
    CHECK(s == LG_ERR_INVALID_ARG && lg_trainer_run_dir_conflict(t) && strstr(lg_error_msg(), "--resume"),
          "reuse: %s (%s)", lg_status_str(s), lg_error_msg());
    lg_trainer_free(t);
}

static void test_run_directory_lock(void) {
    /* item 6 (the two-process case is in test_cli_train): a held lock on
     * DIR/.lock refuses the run, naming DIR and the PID in the file */
    lg_config c;
    quiet_run_cfg(&c);
    char dir[256], p[300];
    snprintf(dir, sizeof dir, "%s/locked", g_tmp);
    mkdir(dir, 0777);
    snprintf(p, sizeof p, "%s/.lock", dir);
    int fd = open(p, O_RDWR | O_CREAT, 0666);
    CHECK(fd >= 0 && flock(fd, LOCK_EX | LOCK_NB) == 0, "take the lock");
    CHECK(write(fd, "424242\n", 7) == 7, "write pid");
    lg_trainer *t;
    CHECK_OK(lg_trainer_create(&t, &c));
    if (!t) return;
    lg_train_opts o = {.out_dir = dir};
    lg_error_clear();
    lg_status s = lg_trainer_run(t, &o);
    CHECK(s == LG_ERR_INVALID_ARG && lg_trainer_run_dir_conflict(t) && strstr(lg_error_msg(), dir) &&
              strstr(lg_error_msg(), "process 424242"),
          "locked: %s (%s)", lg_status_str(s), lg_error_msg());
    CHECK(count_entries(dir) == 0, "a refused run wrote into %s", dir);
    close(fd); /* released: the run goes, and its own lock is released at its end */
    CHECK_OK(lg_trainer_run(t, &o));
    fd = open(p, O_RDWR);
    CHECK(fd >= 0 && flock(fd, LOCK_EX | LOCK_NB) == 0, "the run did not release its lock");
    char pid[32] = "";
    CHECK(fd >= 0 && read(fd, pid, sizeof pid - 1) > 0 && atol(pid) == (long)getpid(), "the lock holds pid '%s'", pid);
    if (fd >= 0) close(fd);
    lg_trainer_free(t);
}

/* ---- the CLI (needs $BUILD/lipgan, as `make test` provides) ---- */

static int run_cmd(const char *cmd) {
    int s = system(cmd);
    return WIFEXITED(s) ? WEXITSTATUS(s) : -1;
}

static void test_cli(void) {
    const char *build = getenv("BUILD");
    const char *cdir = tf_configs_dir();
    char exe[256];
    snprintf(exe, sizeof exe, "%s/lipgan", build ? build : "build");
    if (access(exe, X_OK) != 0 || !cdir) {
        printf("  (skipped: %s not built or configs/ not found; run through `make test`)\n", exe);
        return;
    }
    char cmd[2048], out[256], f[300];
    snprintf(out, sizeof out, "%s/cli", g_tmp);
    snprintf(cmd, sizeof cmd,
             "%s train %s/toy_ring8.yaml --set train.steps=20 --set data.toy_n=500 --set model.g.width=16 "
             "--set model.d.width=16 --set log.every=10 --set log.samples_every=0 --set log.checkpoint_every=10 "
             "--set threads=1 --out %s --quiet 2>%s/cli_err.txt",
             exe, cdir, out, g_tmp);
    CHECK(run_cmd(cmd) == 0, "lipgan train failed: %s", cmd);
    snprintf(cmd, sizeof cmd, "%s sample %s -n 50 --out %s/s.csv 2>/dev/null", exe, out, g_tmp);
    CHECK(run_cmd(cmd) == 0, "lipgan sample csv");
    snprintf(f, sizeof f, "%s/s.csv", g_tmp);
    FILE *fp = fopen(f, "r");
    int lines = 0, ch;
    while (fp && (ch = fgetc(fp)) != EOF) lines += ch == '\n';
    if (fp) fclose(fp);
    CHECK(lines == 51, "csv has %d lines", lines);
    snprintf(cmd, sizeof cmd, "%s sample %s/ckpt_000000020.safetensors -n 100 --out %s/s.png 2>/dev/null &&"
             " %s sample %s -n 8 --out %s/s.safetensors --no-ema 2>/dev/null", exe, out, g_tmp, exe, out, g_tmp);
    CHECK(run_cmd(cmd) == 0, "lipgan sample png/safetensors");
    snprintf(f, sizeof f, "%s/s.safetensors", g_tmp);
    lg_st_file *sf;
    CHECK_OK(lg_st_open(&sf, f));
    if (sf) {
        const lg_st_tensor *x = lg_st_find(sf, "samples");
        CHECK(x && x->ndim == 2 && x->shape[0] == 8 && x->shape[1] == 2, "samples tensor shape");
        lg_st_close(sf);
    }
    snprintf(cmd, sizeof cmd, "%s sample %s -n 8 --out %s/s.txt 2>/dev/null", exe, out, g_tmp);
    CHECK(run_cmd(cmd) == 2, "bad extension is a usage error");
    /* config errors: exit 4 and a message naming the key */
    snprintf(cmd, sizeof cmd, "%s train %s/toy_ring8.yaml --set model.g.widht=3 --out %s/x 2>%s/err.txt", exe,
             cdir, g_tmp, g_tmp);
    CHECK(run_cmd(cmd) == 4, "unknown --set key: exit code");
    snprintf(f, sizeof f, "%s/err.txt", g_tmp);
    unsigned char *msg = NULL;
    size_t len = 0;
    CHECK_OK(lg_file_read_all(f, &msg, &len));
    CHECK(msg && strstr((char *)msg, "model.g.widht"), "stderr: %s", msg ? (char *)msg : "");
    free(msg);

    /* SIGTERM: a checkpoint is written and the exit code is 128 + 15 */
    snprintf(out, sizeof out, "%s/cli_term", g_tmp);
    fflush(NULL);
    pid_t pid = fork();
    if (pid == 0) {
        char a[4][64];
        snprintf(a[0], 64, "train.steps=1000000");
        snprintf(a[1], 64, "log.every=5");
        char cfg[300];
        snprintf(cfg, sizeof cfg, "%s/toy_ring8.yaml", cdir);
        freopen("/dev/null", "w", stderr);
        execl(exe, exe, "train", cfg, "--set", a[0], "--set", a[1], "--set", "log.samples_every=0",
              "--set", "log.checkpoint_every=0", "--set", "data.toy_n=500", "--set", "threads=1", "--out", out, (char *)NULL);
        _exit(127);
    }
    char metrics[300];
    snprintf(metrics, sizeof metrics, "%s/metrics.jsonl", out);
    struct stat sb;
    for (int i = 0; i < 600; i++) {  /* up to 60 s (sanitizer builds start slowly) */
        if (stat(metrics, &sb) == 0 && sb.st_size > 0) break;
        struct timespec ts = {0, 100000000};
        nanosleep(&ts, NULL);
    }
    CHECK(sb.st_size > 0, "training never logged a step");
    kill(pid, SIGTERM);
    int status = 0;
    waitpid(pid, &status, 0);
    CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 128 + SIGTERM, "SIGTERM exit status %d (exited %d, code %d)",
          status, WIFEXITED(status), WIFEXITED(status) ? WEXITSTATUS(status) : -1);
    char ck[300];
    int64_t step = 0;
    CHECK_OK(lg_checkpoint_latest(out, ck, sizeof ck, &step));
    CHECK(step >= 5 && step < 1000000, "checkpoint at step %lld", (long long)step);
    snprintf(cmd, sizeof cmd, "%s train %s/toy_ring8.yaml --set train.steps=1000000 --set log.every=5 "
             "--set log.samples_every=0 --set log.checkpoint_every=0 --set data.toy_n=500 --out %s "
             "--resume --print-config >/dev/null 2>&1", exe, cdir, out);
    CHECK(run_cmd(cmd) == 0, "--print-config");
}

int main(void) {
    if (tf_mkdtemp(g_tmp, sizeof g_tmp) != 0) {
        fprintf(stderr, "mkdtemp failed\n");
        return 1;
    }
    LG_TEST_RUN(test_resume_bitwise);
    LG_TEST_RUN(test_kill_during_checkpoint_write);
    LG_TEST_RUN(test_load_validation);
    LG_TEST_RUN(test_run_directory);
    LG_TEST_RUN(test_cli);
    LG_TEST_RUN(test_not_a_checkpoint_message);
    LG_TEST_RUN(test_config_larger_than_file);
    LG_TEST_RUN(test_nonfinite_checkpoint_rejected);
    LG_TEST_RUN(test_resume_damaged_newest);
    LG_TEST_RUN(test_crc_damaged_checkpoint);
    LG_TEST_RUN(test_resume_config_changes);
    LG_TEST_RUN(test_run_directory_guards);
    LG_TEST_RUN(test_run_directory_lock);
    tf_rm_rf(g_tmp);
    return lg_test_summary("test_checkpoint");
}
