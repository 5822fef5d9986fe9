/* Tests of the training config: YAML parsing, --set overrides, errors that
 * name the key (and file:line), printing round trip, validation, and that
 * every example config in configs/ parses and validates. */
#include <dirent.h>
#include <math.h>
#include <string.h>

#include "lg_test.h"
#include "lipgan/config.h"
#include "train_fixtures.h"

/* Loads yaml text over the defaults; returns the status, message in msg. */
static lg_status load(lg_config *c, const char *yaml, char *msg, size_t cap) {
    lg_config_default(c);
    lg_error_clear();
    lg_status s = lg_config_load_string(c, yaml, strlen(yaml), "t.yaml");
    snprintf(msg, cap, "%s", lg_error_msg());
    return s;
}

#define EXPECT_ERR(yaml, ...)                                                             \
    do {                                                                                  \
        lg_config c_;                                                                     \
        char m_[512];                                                                     \
        lg_status s_ = load(&c_, yaml, m_, sizeof m_);                                    \
        CHECK(s_ == LG_ERR_INVALID_ARG, "yaml <<%s>> gave %s (%s)", yaml, lg_status_str(s_), m_); \
        const char *want_[] = {__VA_ARGS__, NULL};                                        \
        for (int i_ = 0; want_[i_]; i_++)                                                 \
            CHECK(strstr(m_, want_[i_]) != NULL, "message '%s' lacks '%s'", m_, want_[i_]); \
    } while (0)

static void test_defaults_are_thesis_baseline(void) {
    lg_config c;
    lg_config_default(&c);
    CHECK(!strcmp(c.loss, "hinge"), "loss %s", c.loss);
    CHECK(!strcmp(c.model.g.arch, "resnet") && !strcmp(c.model.d.arch, "resnet"), "arch");
    CHECK(c.lipschitz.d.sn == 1 && c.lipschitz.g.sn == 0, "SN in D only");
    CHECK(c.optim.d.lr == 2e-4f && c.optim.d.beta1 == 0.0f && c.optim.d.beta2 == 0.9f, "adam");
    CHECK(c.train.n_dis == 5 && c.train.batch_d == 64 && c.train.batch_g == 128, "schedule");
    CHECK(c.train.steps == 50000 && !strcmp(c.train.lr_decay, "linear"), "steps/decay");
    CHECK_OK(lg_config_validate(&c));
}

static void test_nested_yaml_and_types(void) {
    lg_config c;
    char m[512];
    const char *y =
        "# comment\n"
        "data: {format: ring8, toy_n: 500, instance_noise: 1/128}\n"
        "model:\n"
        "  z_dim: 7\n"
        "  g: {arch: mlp, width: 32, depth: 2, bn: no}\n"
        "  d:\n"
        "    arch: mlp\n"
        "    width: 16\n"
        "loss: wasserstein\n"
        "lipschitz:\n"
        "  d: {sn: off, clip: 0.01, gp_lambda: 10, gp_kind: one-sided}\n"
        "optim: {g: {lr: 1e-3, beta1: .5}}\n"
        "train: {steps: 123, n_dis: 3}\n"
        "seed: 42\n"
        "device: cpu\n";
    CHECK_OK(load(&c, y, m, sizeof m));
    CHECK(!strcmp(c.data.format, "ring8") && c.data.toy_n == 500, "data");
    CHECK(c.data.instance_noise == 1.0f / 128, "fraction 1/128 -> %g", c.data.instance_noise);
    CHECK(c.model.z_dim == 7 && c.model.g.width == 32 && c.model.g.depth == 2 && c.model.g.bn == 0,
          "model.g");
    CHECK(c.model.d.width == 16 && !strcmp(c.model.d.arch, "mlp"), "model.d");
    CHECK(!strcmp(c.loss, "wasserstein"), "loss");
    CHECK(c.lipschitz.d.sn == 0 && c.lipschitz.d.clip == 0.01f && c.lipschitz.d.gp_lambda == 10.0f &&
              !strcmp(c.lipschitz.d.gp_kind, "one-sided"), "lipschitz.d");
    CHECK(c.optim.g.lr == 1e-3f && c.optim.g.beta1 == 0.5f && c.optim.g.beta2 == 0.9f, "optim.g");
    CHECK(c.train.steps == 123 && c.train.n_dis == 3 && c.seed == 42, "train/seed");
    CHECK_OK(lg_config_validate(&c));
}

static void test_errors_name_key_and_line(void) {
    EXPECT_ERR("model:\n  g:\n    widht: 3\n", "t.yaml:3", "model.g.widht", "unknown key", "width");
    EXPECT_ERR("modle: {z_dim: 3}\n", "t.yaml:1", "modle", "unknown key");
    EXPECT_ERR("seed: 1\nbogus: 2\n", "t.yaml:2", "bogus");
    EXPECT_ERR("model:\n  g: {width: abc}\n", "t.yaml:2", "model.g.width", "not an integer");
    EXPECT_ERR("model:\n  g: {width: 1.5}\n", "model.g.width", "not an integer");
    EXPECT_ERR("optim:\n  d:\n    beta2: 1.5\n", "t.yaml:3", "optim.d.beta2", "out of range");
    EXPECT_ERR("optim: {d: {lr: -1}}\n", "optim.d.lr", "out of range");
    EXPECT_ERR("optim: {d: {lr: nan}}\n", "optim.d.lr", "not a finite number");
    EXPECT_ERR("train: {steps: 0}\n", "train.steps", "out of range");
    EXPECT_ERR("loss: hinj\n", "t.yaml:1", "loss", "'hinj'", "hinge");
    EXPECT_ERR("lipschitz: {d: {sn: maybe}}\n", "lipschitz.d.sn", "boolean");
    EXPECT_ERR("seed:\n", "seed", "missing value");
    EXPECT_ERR("seed: 1\nseed: 2\n", "t.yaml:2", "seed", "duplicate");
    EXPECT_ERR("model: 3\n", "model", "group");
    EXPECT_ERR("seed: {a: 1}\n", "seed", "not a mapping");
    EXPECT_ERR("train: {steps: [1, 2]}\n", "train.steps", "not a list");
    EXPECT_ERR("- 1\n- 2\n", "t.yaml:1", "mapping");
    /* malformed YAML: the parser's message with file:line */
    EXPECT_ERR("seed: \"abc\n", "t.yaml:", "invalid YAML");
    EXPECT_ERR("{seed: 1\n", "t.yaml:", "invalid YAML");
    EXPECT_ERR("model:\n  z_dim: 1\n bad: 2\n", "t.yaml:3", "invalid YAML");
    EXPECT_ERR("seed: 1\n---\nseed: 2\n", "second YAML document");
    /* YAML features a config has no use for: named, not misread */
    EXPECT_ERR("seed: &s 3\ntrain: {steps: *s}\n", "train.steps", "aliases are not supported");
    EXPECT_ERR("? [a, b]\n: 1\n", "keys must be plain names");
    char longp[LG_CFG_PATH_MAX + 64] = "data: {path: ";
    size_t l = strlen(longp);
    memset(longp + l, 'p', LG_CFG_PATH_MAX + 8);
    snprintf(longp + l + LG_CFG_PATH_MAX + 8, sizeof longp - l - LG_CFG_PATH_MAX - 8, "}\n");
    EXPECT_ERR(longp, "data.path", "path longer than");
}

static void test_failed_load_changes_nothing(void) {
    lg_config c, ref;
    lg_config_default(&c);
    lg_config_default(&ref);
    const char *y = "seed: 99\nmodel: {z_dim: 5}\nloss: nope\n";
    CHECK(lg_config_load_string(&c, y, strlen(y), "x") == LG_ERR_INVALID_ARG, "must fail");
    CHECK(c.seed == ref.seed && c.model.z_dim == ref.model.z_dim, "config changed by a failed load");
}

static void test_set_overrides(void) {
    lg_config c;
    lg_config_default(&c);
    CHECK_OK(lg_config_set(&c, "train.steps=77"));
    CHECK_OK(lg_config_set(&c, "model.g.arch=cnn"));
    CHECK_OK(lg_config_set(&c, "lipschitz.d.toeplitz_k=2"));
    CHECK_OK(lg_config_set(&c, "data.path=/a b/c=d"));  /* first '=' splits */
    CHECK(c.train.steps == 77 && !strcmp(c.model.g.arch, "cnn") && c.lipschitz.d.toeplitz_k == 2.0f,
          "values");
    CHECK(!strcmp(c.data.path, "/a b/c=d"), "path %s", c.data.path);
    const char *bad[][3] = {
        {"train.stpes=3", "train.stpes", "unknown key"},
        {"train.steps", "train.steps", "key=value"},
        {"train.steps=x", "train.steps", "not an integer"},
        {"optim.g.beta1=2", "optim.g.beta1", "out of range"},
        {"model=3", "model", "group"},
        {"=3", "key=value", "--set"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        lg_error_clear();
        lg_status s = lg_config_set(&c, bad[i][0]);
        CHECK(s == LG_ERR_INVALID_ARG, "--set %s gave %s", bad[i][0], lg_status_str(s));
        CHECK(strstr(lg_error_msg(), bad[i][1]) && strstr(lg_error_msg(), bad[i][2]),
              "--set %s: message '%s'", bad[i][0], lg_error_msg());
        CHECK(strstr(lg_error_msg(), "--set") != NULL, "message names --set: %s", lg_error_msg());
    }
}

static void test_print_round_trip(void) {
    lg_config c, d;
    lg_config_default(&c);
    /* awkward values: floats without a short form, a path with quotes */
    c.optim.g.lr = 1.0f / 3.0f;
    c.data.instance_noise = 1.0f / 128;
    c.ema.decay = 0.999f;
    c.seed = 9000000000000000000LL;
    snprintf(c.data.path, sizeof c.data.path, "/tmp/we\"ird\\dir: #1");
    strcpy(c.model.d.arch, "cnn");
    char *y = lg_config_to_yaml(&c);
    CHECK(y != NULL, "to_yaml");
    if (!y) return;
    lg_config_default(&d);
    CHECK_OK(lg_config_load_string(&d, y, strlen(y), "printed"));
    char *y2 = lg_config_to_yaml(&d);
    CHECK(y2 && strcmp(y, y2) == 0, "printing is not a fixed point:\n%s\n---\n%s", y, y2 ? y2 : "");
    CHECK(d.optim.g.lr == c.optim.g.lr && d.ema.decay == c.ema.decay && d.seed == c.seed,
          "values did not round-trip");
    CHECK(!strcmp(d.data.path, c.data.path), "path '%s' vs '%s'", d.data.path, c.data.path);
    CHECK(strstr(y, "model:\n  z_dim: 128\n  g:\n    arch: resnet\n") != NULL, "nesting:\n%s", y);
    free(y);
    free(y2);
    /* the help form is also valid YAML that reads back */
    FILE *f = tmpfile();
    CHECK(f != NULL, "tmpfile");
    if (!f) return;
    CHECK_OK(lg_config_print(&c, f, 1));
    long n = ftell(f);
    rewind(f);
    char *buf = calloc((size_t)n + 1, 1);
    CHECK(fread(buf, 1, (size_t)n, f) == (size_t)n, "read back");
    fclose(f);
    CHECK(strstr(buf, "# ") != NULL, "help comments");
    lg_config_default(&d);
    CHECK_OK(lg_config_load_string(&d, buf, (size_t)n, "help"));
    CHECK(d.optim.g.lr == c.optim.g.lr, "help form round trip");
    free(buf);
}

static void test_key_table(void) {
    int n;
    const lg_cfg_key *k = lg_config_keys(&n);
    CHECK(n > 50, "only %d keys", n);
    for (int i = 0; i < n; i++) {
        CHECK(k[i].help && k[i].help[0], "key %s has no help", k[i].name);
        CHECK(lg_config_find_key(k[i].name) == &k[i], "find %s", k[i].name);
        CHECK(k[i].type != LG_CFG_ENUM || k[i].choices, "enum %s without choices", k[i].name);
        for (int j = 0; j < i; j++) CHECK(strcmp(k[i].name, k[j].name) != 0, "duplicate %s", k[i].name);
    }
    /* the keys the brief asks for exist */
    const char *need[] = {"data.format", "data.path", "data.image_size", "data.channels",
                          "model.g.arch", "model.d.width", "model.z_dim", "loss",
                          "lipschitz.d.sn", "lipschitz.d.sn_iters", "lipschitz.d.toeplitz_k",
                          "lipschitz.d.sr_gamma", "lipschitz.d.sr_every", "lipschitz.d.clip",
                          "lipschitz.d.gp_lambda", "lipschitz.d.gp_kind", "lipschitz.g.rw_lambda",
                          "lipschitz.g.clamp_ratio", "optim.g.lr", "optim.d.beta2", "optim.d.eps",
                          "train.n_dis", "train.batch_d", "train.batch_g", "train.steps",
                          "train.lr_decay", "ema.decay", "seed", "threads", "device", "log.every",
                          "log.samples_every", "log.checkpoint_every", "log.keep", "log.spectra_every",
                          "log.tensorboard", "eval.every", "eval.metrics", "eval.n", "eval.classifier",
                          "eval.inception"};
    for (size_t i = 0; i < sizeof need / sizeof need[0]; i++)
        CHECK(lg_config_find_key(need[i]) != NULL, "missing key %s", need[i]);
}

static void test_validate(void) {
    struct { const char *set[3]; const char *want; } cases[] = {
        {{"data.format=ring8", NULL}, "model.g.arch"},
        {{"data.format=ring8", "model.g.arch=mlp", NULL}, "model.d.arch"},
        {{"lipschitz.g.gp_lambda=1", NULL}, "lipschitz.g.gp_lambda"},
        {{"data.format=fashion-mnist", NULL}, "data.image_size"},
        {{"data.format=stl10", "data.image_size=40", NULL}, "data.image_size"},
        {{"data.path=", NULL}, "data.path"},
        {{"lipschitz.d.clamp_ratio=0.5", NULL}, "lipschitz.d.clamp_ratio"},
        {{"lipschitz.d.gp_lambda=10", "model.d.bn=true", NULL}, "model.d.bn"},
        {{"ema.decay=0.9", "ema.start=50000", NULL}, "ema.start"},
        {{"cuda.precision=tf32", NULL}, "cuda.precision"},  /* device cpu */
        {{"cuda.precision=bf16", NULL}, "cuda.precision"},
        {{"cuda.device=1", NULL}, "cuda.device"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        lg_config c;
        lg_config_default(&c);
        for (int j = 0; cases[i].set[j]; j++) CHECK_OK(lg_config_set(&c, cases[i].set[j]));
        lg_error_clear();
        lg_status s = lg_config_validate(&c);
        CHECK(s == LG_ERR_INVALID_ARG && strstr(lg_error_msg(), cases[i].want),
              "case %zu: %s (%s), want a message naming %s", i, lg_status_str(s), lg_error_msg(),
              cases[i].want);
    }
    lg_config c;
    lg_config_default(&c);
    CHECK_OK(lg_config_set(&c, "data.format=fashion-mnist"));
    CHECK_OK(lg_config_set(&c, "data.image_size=32"));
    CHECK_OK(lg_config_validate(&c));
    /* the cuda keys: defaults, accepted values, rejected ones */
    CHECK(!strcmp(c.cuda.precision, "fp32") && c.cuda.deterministic == 1 && c.cuda.benchmark == 1 &&
              c.cuda.graph == 1 && c.cuda.device == 0,
          "cuda defaults: precision %s deterministic %d benchmark %d graph %d device %d",
          c.cuda.precision, c.cuda.deterministic, c.cuda.benchmark, c.cuda.graph, c.cuda.device);
    CHECK_OK(lg_config_set(&c, "device=cuda"));
    CHECK_OK(lg_config_set(&c, "cuda.device=3"));
    CHECK(c.cuda.device == 3, "cuda.device did not stick: %d", c.cuda.device);
    CHECK(lg_config_set(&c, "cuda.device=-1") == LG_ERR_INVALID_ARG &&
              strstr(lg_error_msg(), "cuda.device"),
          "cuda.device -1 accepted or unclear message: %s", lg_error_msg());
    CHECK_OK(lg_config_set(&c, "cuda.precision=bf16"));
    CHECK_OK(lg_config_set(&c, "cuda.graph=false"));
    CHECK_OK(lg_config_validate(&c));
    CHECK(!strcmp(c.cuda.precision, "bf16") && c.cuda.graph == 0, "cuda keys did not stick");
    CHECK(lg_config_set(&c, "cuda.precision=fp16") == LG_ERR_INVALID_ARG &&
              strstr(lg_error_msg(), "fp32|tf32|bf16"),
          "fp16 accepted or unclear message: %s", lg_error_msg());
}

static void test_load_file_errors(void) {
    lg_config c;
    lg_config_default(&c);
    lg_status s = lg_config_load_file(&c, "/nonexistent/dir/x.yaml");
    CHECK(s == LG_ERR_NOT_FOUND && strstr(lg_error_msg(), "/nonexistent/dir/x.yaml"),
          "missing file: %s %s", lg_status_str(s), lg_error_msg());
    char dir[64], p[128];
    CHECK(tf_mkdtemp(dir, sizeof dir) == 0, "mkdtemp");
    snprintf(p, sizeof p, "%s/bad.yaml", dir);
    FILE *f = fopen(p, "w");
    fputs("seed: 1\n\nmodel:\n  g:\n    width: -4\n", f);
    fclose(f);
    s = lg_config_load_file(&c, p);
    char want[160];
    snprintf(want, sizeof want, "%s:5: model.g.width", p);
    CHECK(s == LG_ERR_INVALID_ARG && strstr(lg_error_msg(), want), "file:line: %s", lg_error_msg());
    tf_rm_rf(dir);  /* an empty file: test_empty_config_file */
}

static void test_example_configs_parse(void) {
    const char *dir = tf_configs_dir();
    CHECK(dir != NULL, "configs/ not found from the working directory");
    if (!dir) return;
    DIR *d = opendir(dir);
    int n = 0;
    struct dirent *e;
    while (d && (e = readdir(d))) {
        size_t l = strlen(e->d_name);
        if (l < 6 || strcmp(e->d_name + l - 5, ".yaml")) continue;
        char p[512];
        snprintf(p, sizeof p, "%s/%s", dir, e->d_name);
        lg_config c;
        lg_config_default(&c);
        lg_status s = lg_config_load_file(&c, p);
        CHECK(s == LG_OK, "%s: %s", p, lg_error_msg());
        if (s == LG_OK) {
            s = lg_config_validate(&c);
            CHECK(s == LG_OK, "%s: %s", p, lg_error_msg());
        }
        n++;
    }
    if (d) closedir(d);
    CHECK(n >= 7, "only %d example configs in %s", n, dir);
}


/* QA items 1-4: keys that do nothing are errors (or warnings where
 * harmless), with messages naming the key and the fix. */

/* Applies sets over the defaults and validates; returns the status, the
 * message in msg. */
static lg_status validate_sets(const char *const *sets, char *msg, size_t cap) {
    lg_config c;
    lg_config_default(&c);
    for (int i = 0; sets[i]; i++) CHECK_OK(lg_config_set(&c, sets[i]));
    lg_error_clear();
    lg_status s = lg_config_validate(&c);
    snprintf(msg, cap, "%s", lg_error_msg());
    return s;
}

/* the help text of a key (as --help-config prints it) */
static const char *help_of(const char *key) {
    const lg_cfg_key *k = lg_config_find_key(key);
    return k ? k->help : "";
}

static void test_keys_of_the_other_network(void) {
    char m[1024];
    /* item 1: r(W) is the generator's penalty (thesis 4.2.2) */
    const char *rw_d[] = {"lipschitz.d.rw_lambda=100", NULL};
    lg_status s = validate_sets(rw_d, m, sizeof m);
    CHECK(s == LG_ERR_INVALID_ARG && strstr(m, "lipschitz.d.rw_lambda") && strstr(m, "lipschitz.g.rw_lambda"),
          "d.rw_lambda: %s (%s)", lg_status_str(s), m);
    const char *rw_g[] = {"lipschitz.g.rw_lambda=0.1", NULL};
    CHECK(validate_sets(rw_g, m, sizeof m) == LG_OK, "g.rw_lambda rejected: %s", m);
    const char *gp_g[] = {"lipschitz.g.gp_lambda=1", NULL};
    s = validate_sets(gp_g, m, sizeof m);
    CHECK(s == LG_ERR_INVALID_ARG && strstr(m, "lipschitz.d.gp_lambda"), "g.gp_lambda: %s", m);
    const char *kind_g[] = {"lipschitz.g.gp_kind=one-sided", NULL};
    s = validate_sets(kind_g, m, sizeof m);
    CHECK(s == LG_ERR_INVALID_ARG && strstr(m, "lipschitz.g.gp_kind") && strstr(m, "lipschitz.d.gp_kind"),
          "g.gp_kind: %s (%s)", lg_status_str(s), m);
    /* every lipschitz key that does nothing for its network says so in --help-config */
    CHECK(strstr(help_of("lipschitz.d.rw_lambda"), "generator only") != NULL, "help: %s",
          help_of("lipschitz.d.rw_lambda"));
    CHECK(strstr(help_of("lipschitz.g.gp_lambda"), "discriminator only") != NULL, "help: %s",
          help_of("lipschitz.g.gp_lambda"));
    CHECK(strstr(help_of("lipschitz.g.gp_kind"), "discriminator only") != NULL, "help: %s",
          help_of("lipschitz.g.gp_kind"));
    CHECK(strstr(help_of("lipschitz.g.rw_lambda"), "G's loss") != NULL, "help: %s", help_of("lipschitz.g.rw_lambda"));
    CHECK(strstr(help_of("model.g.lrelu"), "unused") != NULL, "help: %s", help_of("model.g.lrelu"));
    /* the others act on both networks: each validates on G and on D */
    const char *both[] = {"sn=true", "sn_iters=2", "toeplitz_k=2", "clip=0.1", "clamp_ratio=2", NULL};
    for (int i = 0; both[i]; i++)
        for (int n = 0; n < 2; n++) {
            char a[96];
            snprintf(a, sizeof a, "lipschitz.%s.%s", n ? "d" : "g", both[i]);
            const char *sets[] = {a, NULL};
            CHECK(validate_sets(sets, m, sizeof m) == LG_OK, "%s rejected: %s", a, m);
        }
}

static void test_d_batchnorm(void) {
    char m[1024];
    /* item 2: the resnet D has no batch norm; the message says so and
     * names the setting, not a gradient penalty that is not configured */
    const char *rn[] = {"model.d.arch=resnet", "model.d.bn=true", NULL};
    lg_status s = validate_sets(rn, m, sizeof m);
    CHECK(s == LG_ERR_INVALID_ARG && strstr(m, "model.d.bn: false") && strstr(m, "resnet") &&
              strstr(m, "no batch-norm layers") && !strstr(m, "penalty"),
          "resnet D with bn: %s (%s)", lg_status_str(s), m);
    /* the cnn D takes DCGAN's batch norm (the WGAN critic), with weight
     * clipping, SN or Toeplitz, but not with the gradient penalty */
    const char *cnn_ok[][3] = {{"lipschitz.d.sn=false", "lipschitz.d.clip=0.01"},
                               {"lipschitz.d.sn=true", NULL},
                               {"lipschitz.d.sn=false", "lipschitz.d.toeplitz_k=2"}};
    for (int i = 0; i < 3; i++) {
        const char *sets[] = {"model.d.arch=cnn", "model.d.bn=true", cnn_ok[i][0], cnn_ok[i][1], NULL};
        CHECK(validate_sets(sets, m, sizeof m) == LG_OK, "cnn D with bn and %s: %s", cnn_ok[i][0], m);
    }
    const char *cnn_gp[] = {"model.d.arch=cnn", "model.d.bn=true", "lipschitz.d.sn=false",
                            "lipschitz.d.gp_lambda=10", NULL};
    s = validate_sets(cnn_gp, m, sizeof m);
    CHECK(s == LG_ERR_INVALID_ARG && strstr(m, "model.d.bn") && strstr(m, "penalty"), "cnn bn + gp: %s", m);
    const char *mlp[] = {"data.format=ring8", "model.g.arch=mlp", "model.d.arch=mlp", "model.d.bn=true", NULL};
    CHECK(validate_sets(mlp, m, sizeof m) == LG_OK, "mlp D with bn rejected: %s", m);
    const char *mlp_gp[] = {"data.format=ring8", "model.g.arch=mlp", "model.d.arch=mlp", "model.d.bn=true",
                            "lipschitz.d.gp_lambda=10", NULL};
    s = validate_sets(mlp_gp, m, sizeof m);
    CHECK(s == LG_ERR_INVALID_ARG && strstr(m, "model.d.bn") && strstr(m, "penalty"), "mlp bn + gp: %s", m);
    CHECK(strstr(help_of("model.d.bn"), "cnn and mlp") != NULL && strstr(help_of("model.d.bn"), "resnet has none"),
          "help of model.d.bn: %s", help_of("model.d.bn"));
}

static void test_settings_that_do_nothing(void) {
    char m[1024];
    /* item 3 */
    const char *dyn[] = {"lipschitz.d.sr_dynamic=true", NULL};
    lg_status s = validate_sets(dyn, m, sizeof m);
    CHECK(s == LG_ERR_INVALID_ARG && strstr(m, "lipschitz.d.sr_dynamic") && strstr(m, "sr_gamma"),
          "sr_dynamic without SR: %s (%s)", lg_status_str(s), m);
    const char *sr_nosn[] = {"lipschitz.d.sn=false", "lipschitz.d.sr_gamma=0.5", NULL};
    s = validate_sets(sr_nosn, m, sizeof m);
    CHECK(s == LG_ERR_INVALID_ARG && strstr(m, "lipschitz.d.sr_gamma") && strstr(m, "lipschitz.d.sn: true"),
          "SR without SN: %s (%s)", lg_status_str(s), m);
    const char *sr_g[] = {"lipschitz.g.sr_gamma=0.5", NULL}; /* g.sn is off by default */
    s = validate_sets(sr_g, m, sizeof m);
    CHECK(s == LG_ERR_INVALID_ARG && strstr(m, "lipschitz.g.sr_gamma"), "SR on G without SN: %s", m);
    const char *sr_ok[] = {"lipschitz.d.sr_gamma=0.5", "lipschitz.d.sr_dynamic=true", NULL};
    CHECK(validate_sets(sr_ok, m, sizeof m) == LG_OK, "SR-GAN (SN + SR) rejected: %s", m);
    const char *sr_toep[] = {"lipschitz.d.sn=false", "lipschitz.d.toeplitz_k=1", "lipschitz.d.sr_gamma=0.5", NULL};
    CHECK(validate_sets(sr_toep, m, sizeof m) == LG_OK, "SR with Toeplitz rejected: %s", m);

    /* harmless ones are warnings: one line each, naming the key */
    lg_config c;
    lg_config_default(&c);
    const char *toy[] = {"data.format=ring8", "model.g.arch=mlp", "model.d.arch=mlp", NULL};
    for (int i = 0; toy[i]; i++) CHECK_OK(lg_config_set(&c, toy[i]));
    CHECK(lg_config_warnings(&c, NULL, "") == 0, "a plain toy config warns");
    CHECK_OK(lg_config_set(&c, "data.path=/data/somewhere"));
    CHECK_OK(lg_config_validate(&c));
    char *txt = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&txt, &len);
    int n = lg_config_warnings(&c, f, "lipgan train: ");
    fclose(f);
    CHECK(n == 1 && txt && strstr(txt, "lipgan train: warning: data.path") && strstr(txt, "ring8") &&
              strchr(txt, '\n') == txt + len - 1,
          "data.path on a toy: %d warnings: %s", n, txt ? txt : "");
    free(txt);
    lg_config_default(&c);
    CHECK_OK(lg_config_set(&c, "lipschitz.d.sr_every=3"));
    CHECK_OK(lg_config_set(&c, "lipschitz.d.gp_kind=one-sided"));
    CHECK_OK(lg_config_validate(&c));
    CHECK(lg_config_warnings(&c, NULL, "") == 2, "sr_every without SR and gp_kind without GP: %d warnings",
          lg_config_warnings(&c, NULL, ""));

    /* Toeplitz k on an MLP (no convolutions) and SR timing off the last D
     * update of a step: one warning each, naming the key */
    const struct { const char *set[4]; const char *want; } cases[] = {
        {{"model.d.arch=mlp", "lipschitz.d.sn=false", "lipschitz.d.toeplitz_k=2", NULL}, "lipschitz.d.toeplitz_k 2"},
        {{"lipschitz.d.sr_gamma=0.5", "train.n_dis=3", NULL}, "lipschitz.d.sr_every 5"},
        {{"lipschitz.d.sr_gamma=0.5", "train.n_dis_boost=20", NULL}, "critic schedule"},
    };
    for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
        lg_config_default(&c);
        for (int i = 0; cases[k].set[i]; i++) CHECK_OK(lg_config_set(&c, cases[k].set[i]));
        CHECK_OK(lg_config_validate(&c));
        txt = NULL, len = 0;
        f = open_memstream(&txt, &len);
        n = lg_config_warnings(&c, f, "");
        fclose(f);
        CHECK(n == 1 && txt && strstr(txt, cases[k].want), "case %zu: %d warnings: %s", k, n, txt ? txt : "");
        free(txt);
    }
    /* the paper's timing (sr_every = n_dis = 5) and a divisor do not warn */
    lg_config_default(&c);
    CHECK_OK(lg_config_set(&c, "lipschitz.d.sr_gamma=0.5"));
    CHECK(lg_config_warnings(&c, NULL, "") == 0, "SR every 5 with n_dis 5 warns");
    CHECK_OK(lg_config_set(&c, "train.n_dis=10"));
    CHECK(lg_config_warnings(&c, NULL, "") == 0, "SR every 5 with n_dis 10 warns");
    /* sr_schedule steps (the public code's timing) does not warn about
     * n_dis; without SR it is named as unused; a bad value is refused */
    CHECK_OK(lg_config_set(&c, "train.n_dis=3"));
    CHECK(lg_config_warnings(&c, NULL, "") == 1, "SR every 5 with n_dis 3 does not warn");
    CHECK_OK(lg_config_set(&c, "lipschitz.d.sr_schedule=steps"));
    CHECK(lg_config_warnings(&c, NULL, "") == 0, "sr_schedule steps with n_dis 3 warns");
    CHECK_OK(lg_config_set(&c, "lipschitz.d.sr_gamma=0"));
    txt = NULL, len = 0;
    f = open_memstream(&txt, &len);
    n = lg_config_warnings(&c, f, "");
    fclose(f);
    CHECK(n == 1 && txt && strstr(txt, "lipschitz.d.sr_schedule steps is not used"), "sr_schedule without SR: %s",
          txt ? txt : "");
    free(txt);
    CHECK_STATUS(lg_config_set(&c, "lipschitz.d.sr_schedule=iterations"), LG_ERR_INVALID_ARG);
    CHECK(strstr(lg_error_msg(), "updates|steps") != NULL, "bad sr_schedule: %s", lg_error_msg());
}

/* optim.<net>.kind rmsprop (the WGAN reference's optimizer) and the
 * critic schedule's keys: defaults, parsing, the other optimizer's keys
 * rejected, boost keys that do nothing warned about, and the WGAN config
 * as the reference code. */
static void test_optim_kind_and_boost(void) {
    lg_config c;
    char m[1024];
    lg_config_default(&c);
    CHECK(!strcmp(c.optim.g.kind, "adam") && !strcmp(c.optim.d.kind, "adam") && c.optim.d.alpha == 0.99f,
          "optim defaults: %s %s alpha %g", c.optim.g.kind, c.optim.d.kind, c.optim.d.alpha);
    CHECK(c.train.n_dis_boost == 0 && c.train.n_dis_boost_first == 25 && c.train.n_dis_boost_every == 500,
          "boost defaults %d %lld %lld", c.train.n_dis_boost, (long long)c.train.n_dis_boost_first,
          (long long)c.train.n_dis_boost_every);
    lg_status s = load(&c, "optim: {d: {kind: rmsprop, alpha: 0.9, lr: 5e-5}}\n"
                           "train: {n_dis_boost: 100, n_dis_boost_first: 3, n_dis_boost_every: 7}\n",
                       m, sizeof m);
    CHECK(s == LG_OK && !strcmp(c.optim.d.kind, "rmsprop") && c.optim.d.alpha == 0.9f &&
              !strcmp(c.optim.g.kind, "adam") && c.train.n_dis_boost == 100 && c.train.n_dis_boost_first == 3 &&
              c.train.n_dis_boost_every == 7,
          "rmsprop yaml: %s (%s)", lg_status_str(s), m);
    CHECK_OK(lg_config_validate(&c));
    CHECK(lg_config_warnings(&c, NULL, "") == 0, "rmsprop + boost warns");
    char *y = lg_config_to_yaml(&c);
    lg_config d;
    lg_config_default(&d);
    CHECK(y && lg_config_load_string(&d, y, strlen(y), "round trip") == LG_OK && !strcmp(d.optim.d.kind, "rmsprop") &&
              d.optim.d.alpha == 0.9f && d.train.n_dis_boost_every == 7,
          "round trip of kind/alpha/boost");
    free(y);
    EXPECT_ERR("optim: {g: {kind: sgd}}\n", "optim.g.kind", "adam|rmsprop");
    EXPECT_ERR("train: {n_dis_boost: -1}\n", "train.n_dis_boost", "out of range");

    /* one optimizer's keys with the other: errors naming the key and the fix */
    const char *b1[] = {"optim.d.kind=rmsprop", "optim.d.beta1=0.5", NULL};
    s = validate_sets(b1, m, sizeof m);
    /* the key may come from a config file, which --set cannot remove: the default is named */
    CHECK(s == LG_ERR_INVALID_ARG && strstr(m, "optim.d.beta1") && strstr(m, "rmsprop") &&
              strstr(m, "optim.d.alpha") && strstr(m, "--set optim.d.beta1=0)") && !strchr(m, '\n'),
          "rmsprop + beta1: %s (%s)", lg_status_str(s), m);
    const char *b2[] = {"optim.g.kind=rmsprop", "optim.g.beta2=0.999", NULL};
    s = validate_sets(b2, m, sizeof m);
    CHECK(s == LG_ERR_INVALID_ARG && strstr(m, "optim.g.beta2") && strstr(m, "remove it"),
          "rmsprop + beta2: %s (%s)", lg_status_str(s), m);
    const char *al[] = {"optim.g.alpha=0.9", NULL};
    s = validate_sets(al, m, sizeof m);
    CHECK(s == LG_ERR_INVALID_ARG && strstr(m, "optim.g.alpha") && strstr(m, "optim.g.kind: rmsprop"),
          "adam + alpha: %s (%s)", lg_status_str(s), m);
    const char *ok[] = {"optim.g.kind=rmsprop", "optim.g.alpha=0.9", "optim.d.kind=rmsprop",
                        "optim.d.eps=1e-6", "optim.d.lr=1e-4", NULL};
    CHECK(validate_sets(ok, m, sizeof m) == LG_OK, "rmsprop with alpha, eps, lr rejected: %s", m);

    /* boost keys that do nothing warn, one line each naming the key */
    struct { const char *set[3]; int n; const char *want; } w[] = {
        {{"train.n_dis_boost_first=10", NULL}, 1, "train.n_dis_boost_first 10 is not used"},
        {{"train.n_dis_boost_every=10", "train.n_dis_boost_first=3", NULL}, 2, "train.n_dis_boost_every 10"},
        {{"train.n_dis_boost=9", "train.n_dis_boost_first=0", "train.n_dis_boost_every=0"}, 1,
         "no step is boosted"},
        {{"train.n_dis_boost=5", NULL}, 1, "equals train.n_dis"},
        {{"train.n_dis_boost=9", "train.n_dis_boost_first=0", NULL}, 0, NULL},
    };
    for (size_t i = 0; i < sizeof w / sizeof w[0]; i++) {
        lg_config_default(&c);
        for (int j = 0; j < 3 && w[i].set[j]; j++) CHECK_OK(lg_config_set(&c, w[i].set[j]));
        CHECK_OK(lg_config_validate(&c));
        char *txt = NULL;
        size_t len = 0;
        FILE *f = open_memstream(&txt, &len);
        int n = lg_config_warnings(&c, f, "");
        fclose(f);
        CHECK(n == w[i].n && (!w[i].want || (txt && strstr(txt, w[i].want))),
              "boost warning case %zu: %d warnings: %s", i, n, txt ? txt : "");
        free(txt);
    }

    /* the WGAN config is the reference code's setup */
    const char *dir = tf_configs_dir();
    char p[512];
    snprintf(p, sizeof p, "%s/cifar10_wgan_clip.yaml", dir ? dir : "configs");
    lg_config_default(&c);
    CHECK_OK(lg_config_load_file(&c, p));
    CHECK(!strcmp(c.optim.g.kind, "rmsprop") && !strcmp(c.optim.d.kind, "rmsprop") && c.optim.g.lr == 5e-5f &&
              c.optim.d.lr == 5e-5f && c.optim.d.alpha == 0.99f && c.optim.d.eps == 1e-8f &&
              c.lipschitz.d.clip == 0.01f && !c.lipschitz.d.sn && !strcmp(c.loss, "wasserstein") &&
              c.train.n_dis == 5 && c.train.n_dis_boost == 100 && c.train.n_dis_boost_first == 25 &&
              c.train.n_dis_boost_every == 500 && c.train.batch_d == 64 && c.train.batch_g == 64 &&
              !strcmp(c.train.lr_decay, "none"),
          "%s is not the WGAN reference setup", p);
    CHECK(lg_config_warnings(&c, NULL, "") == 0, "%s warns", p);
}

/* Settings a data format cannot honour are errors; ones it ignores warn. */
static void test_data_settings(void) {
    char m[512];
    struct { const char *set[4]; const char *want; } bad[] = {
        {{"data.image_size=64", NULL}, "cifar10 images are 32x32"},      /* default format cifar10 */
        {{"data.image_size=16", NULL}, "use 0 or 32"},
        {{"data.channels=1", NULL}, "cifar10 images are RGB"},
        {{"data.format=stl10", "data.channels=1", NULL}, "stl10 images are RGB"},
        {{"data.format=png", "data.channels=2", NULL}, "1 (gray) or 3 (RGB)"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        lg_status s = validate_sets(bad[i].set, m, sizeof m);
        CHECK(s == LG_ERR_INVALID_ARG && strstr(m, bad[i].want) &&
                  strstr(m, strstr(bad[i].set[0], "channels") || (bad[i].set[1] && strstr(bad[i].set[1], "channels"))
                                ? "data.channels" : "data.image_size"),
              "case %zu: %s (%s), want '%s'", i, lg_status_str(s), m, bad[i].want);
    }
    const char *ok[][4] = {
        {"data.image_size=32", NULL},
        {"data.format=png", "data.channels=1", "data.image_size=16", NULL},
        {"data.format=fashion-mnist", "data.channels=1", "data.image_size=32", NULL},
        {"data.format=stl10", "data.image_size=48", NULL},
    };
    for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++)
        CHECK(validate_sets(ok[i], m, sizeof m) == LG_OK, "ok case %zu rejected: %s", i, m);

    /* ignored settings: one warning each, naming the key */
    struct { const char *set[5]; const char *want; } warn[] = {
        {{"data.format=ring8", "model.g.arch=mlp", "model.d.arch=mlp", "data.image_size=64", NULL},
         "warning: data.image_size 64 is not used"},
        {{"data.format=ring8", "model.g.arch=mlp", "model.d.arch=mlp", "data.channels=1", NULL},
         "warning: data.channels 1 is not used"},
        {{"data.format=grid25", "model.g.arch=mlp", "model.d.arch=mlp", "data.split=test", NULL},
         "warning: data.split test is not used"},
        {{"data.format=ring8", "model.g.arch=mlp", "model.d.arch=mlp", "data.instance_noise=0.01", NULL},
         "warning: data.instance_noise 0.01 is not used"},
        {{"data.toy_n=500", NULL}, "warning: data.toy_n 500 is not used"},
        {{"data.format=png", "data.split=test", NULL}, "png reads every .png file"},
        {{"data.path=FILE", "data.split=test", NULL}, "is a file"},
    };
    char dir[64], file[128], set_file[160], set_dir[96];
    CHECK(tf_mkdtemp(dir, sizeof dir) == 0, "mkdtemp");
    snprintf(file, sizeof file, "%s/one.bin", dir);
    FILE *ff = fopen(file, "w");
    CHECK(ff && fclose(ff) == 0, "create %s", file);
    snprintf(set_file, sizeof set_file, "data.path=%s", file);
    snprintf(set_dir, sizeof set_dir, "data.path=%s", dir);
    for (size_t i = 0; i < sizeof warn / sizeof warn[0]; i++) {
        lg_config c;
        lg_config_default(&c);
        for (int j = 0; warn[i].set[j]; j++)
            CHECK_OK(lg_config_set(&c, strcmp(warn[i].set[j], "data.path=FILE") ? warn[i].set[j] : set_file));
        CHECK_OK(lg_config_validate(&c));
        char *txt = NULL;
        size_t len = 0;
        FILE *f = open_memstream(&txt, &len);
        int n = lg_config_warnings(&c, f, "");
        fclose(f);
        CHECK(n == 1 && txt && strstr(txt, warn[i].want) && strchr(txt, '\n') == txt + len - 1,
              "warn case %zu: %d warnings: %s", i, n, txt ? txt : "");
        free(txt);
    }
    /* a folder path with a split: no warning */
    lg_config c;
    lg_config_default(&c);
    CHECK_OK(lg_config_set(&c, set_dir));
    CHECK_OK(lg_config_set(&c, "data.split=test"));
    CHECK(lg_config_warnings(&c, NULL, "") == 0, "split on a folder warns");
    tf_rm_rf(dir);
    /* every data row and every lipschitz row at once fit in the buffer */
    const char *all[] = {"data.format=ring8", "model.g.arch=mlp", "model.d.arch=mlp", "data.path=/x",
                         "data.image_size=64", "data.channels=1", "data.split=test", "data.instance_noise=0.1",
                         "lipschitz.g.sr_every=3", "lipschitz.d.sr_every=3", "lipschitz.g.sn_iters=3",
                         "lipschitz.d.sn=false", "lipschitz.d.sn_iters=3", "lipschitz.g.clamp_iters=7",
                         "lipschitz.d.clamp_iters=7", "lipschitz.d.gp_kind=one-sided", NULL};
    lg_config_default(&c);
    for (int j = 0; all[j]; j++) CHECK_OK(lg_config_set(&c, all[j]));
    CHECK(lg_config_warnings(&c, NULL, "") == 12, "all warnings: %d", lg_config_warnings(&c, NULL, ""));
}

static void test_empty_config_file(void) {
    char dir[64], p[128];
    CHECK(tf_mkdtemp(dir, sizeof dir) == 0, "mkdtemp");
    snprintf(p, sizeof p, "%s/empty.yaml", dir);
    const char *bodies[] = {"", "# only a comment\n", "{}\n", "---\n"};
    for (int i = 0; i < 4; i++) {
        FILE *f = fopen(p, "w");
        fputs(bodies[i], f);
        fclose(f);
        lg_config c;
        lg_config_default(&c);
        lg_error_clear();
        lg_status s = lg_config_load_file(&c, p);
        CHECK(s == LG_ERR_INVALID_ARG && strstr(lg_error_msg(), p) && strstr(lg_error_msg(), "data.format") &&
                  strstr(lg_error_msg(), "no keys"),
              "empty config <<%s>>: %s (%s)", bodies[i], lg_status_str(s), lg_error_msg());
    }
    FILE *f = fopen(p, "w");
    fputs("seed: 3\n", f);
    fclose(f);
    lg_config c;
    lg_config_default(&c);
    CHECK_OK(lg_config_load_file(&c, p));
    CHECK(c.seed == 3, "seed %lld", (long long)c.seed);
    tf_rm_rf(dir);
}

static void test_decimal_numbers_only(void) {
    /* item 4: hex, inf and nan are not numbers here */
    const char *bad[] = {"0x10", "0X1p3", "inf", "-infinity", "nan", "1e999", "1/0", "0x10/2", "1/0x2", "e5",
                         ".", "1e", "1.5.2", "2 e3"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        lg_config c;
        lg_config_default(&c);
        char a[64];
        snprintf(a, sizeof a, "optim.d.lr=%s", bad[i]);
        lg_error_clear();
        lg_status s = lg_config_set(&c, a);
        CHECK(s == LG_ERR_INVALID_ARG && strstr(lg_error_msg(), "optim.d.lr") &&
                  strstr(lg_error_msg(), "number") && !strstr(lg_error_msg(), "range"),
              "--set %s: %s (%s)", a, lg_status_str(s), lg_error_msg());
        CHECK(c.optim.d.lr == 2e-4f, "--set %s changed the value to %g", a, c.optim.d.lr);
    }
    lg_config c;
    lg_config_default(&c);
    CHECK(lg_config_set(&c, "optim.d.lr=0x10") == LG_ERR_INVALID_ARG && strstr(lg_error_msg(), "not a number"),
          "hex: %s", lg_error_msg());
    struct { const char *v; float want; } good[] = {{"1e-3", 1e-3f}, {"2.0e-4", 2e-4f}, {".5", 0.5f},
                                                   {"5.", 5.0f}, {"+3", 3.0f}, {"1/128", 1.0f / 128},
                                                   {" 0.25 ", 0.25f}, {"1 / 4", 0.25f}, {"0", 0.0f},
                                                   {"1E-2", 1e-2f}};
    for (size_t i = 0; i < sizeof good / sizeof good[0]; i++) {
        char a[64];
        snprintf(a, sizeof a, "optim.d.lr=%s", good[i].v);
        CHECK_OK(lg_config_set(&c, a));
        CHECK(c.optim.d.lr == good[i].want, "%s read as %g", a, c.optim.d.lr);
    }
    /* the same through YAML */
    lg_config y;
    char m[512];
    CHECK(load(&y, "optim: {d: {lr: 0x10}}\n", m, sizeof m) == LG_ERR_INVALID_ARG && strstr(m, "t.yaml:1") &&
              strstr(m, "optim.d.lr") && strstr(m, "not a number"),
          "yaml hex: %s", m);
    CHECK(load(&y, "train: {steps: 0x10}\n", m, sizeof m) == LG_ERR_INVALID_ARG && strstr(m, "train.steps"),
          "yaml hex integer: %s", m);
}

static void test_diff(void) {
    lg_config a, b;
    lg_config_default(&a);
    b = a;
    char buf[512];
    CHECK(lg_config_diff(&a, &b, buf, sizeof buf) == 0 && buf[0] == '\0', "equal configs differ: %s", buf);
    CHECK_OK(lg_config_set(&b, "train.steps=3000"));
    CHECK_OK(lg_config_set(&b, "optim.g.lr=1e-3"));
    int n = lg_config_diff(&a, &b, buf, sizeof buf);
    CHECK(n == 2 && strstr(buf, "optim.g.lr: 0.0002 -> 0.001") && strstr(buf, "train.steps: 50000 -> 3000"),
          "diff %d: %s", n, buf);
    char small[24];
    CHECK(lg_config_diff(&a, &b, small, sizeof small) == 2 && strlen(small) == sizeof small - 1 &&
              strstr(small, "..."),
          "cut diff: '%s'", small);
}

/* eval.metrics also takes a YAML list (the items are joined with commas);
 * a list for any other key names the type the key takes. */
static void test_yaml_lists(void) {
    lg_config c;
    char m[1024];
    lg_config_default(&c);
    const char *y = "eval:\n  metrics: [toy, cfid]\n";
    CHECK_OK(lg_config_load_string(&c, y, strlen(y), "l.yaml"));
    CHECK(!strcmp(c.eval.metrics, "toy,cfid"), "eval.metrics from a list: '%s'", c.eval.metrics);
    lg_config_default(&c);
    y = "eval:\n  metrics:\n    - fid\n";
    CHECK_OK(lg_config_load_string(&c, y, strlen(y), "l.yaml"));
    CHECK(!strcmp(c.eval.metrics, "fid"), "eval.metrics from a block list: '%s'", c.eval.metrics);
    const struct { const char *yaml, *want; } bad[] = {
        {"eval:\n  metrics: [toy, [cfid]]\n", "a list of names"},
        {"eval:\n  metrics: [\"toy,cfid\"]\n", "one name per item"},
        {"eval:\n  metrics: [toy]\n  metrics: [fid]\n", "duplicate key"},
        {"model:\n  g:\n    width: [1, 2]\n", "model.g.width: takes an integer, not a list"},
        {"modle: [1]\n", "modle"},
        {"eval:\n  metrics: []\n", "write auto"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        lg_config_default(&c);
        CHECK_STATUS(lg_config_load_string(&c, bad[i].yaml, strlen(bad[i].yaml), "l.yaml"), LG_ERR_INVALID_ARG);
        snprintf(m, sizeof m, "%s", lg_error_msg());
        CHECK(strstr(m, bad[i].want) && strstr(m, "l.yaml:"), "list case %zu: %s", i, m);
    }
}

/* A value printed in a warning or a diff is quoted as YAML would: a quote
 * or backslash in data.path is escaped, not printed raw. */
static void test_quoted_values(void) {
    lg_config c;
    lg_config_default(&c);
    CHECK_OK(lg_config_set(&c, "data.format=ring8"));
    CHECK_OK(lg_config_set(&c, "data.path=\"x\\y"));
    char *txt = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&txt, &len);
    int n = lg_config_warnings(&c, f, "");
    fclose(f);
    CHECK(n >= 1 && txt && strstr(txt, "data.path \"\\\"x\\\\y\" is not used"), "quoted warning: %s", txt ? txt : "");
    free(txt);
    lg_config d;
    lg_config_default(&d);
    char buf[512];
    CHECK(lg_config_diff(&d, &c, buf, sizeof buf) >= 1 && strstr(buf, "\"\\\"x\\\\y\""), "quoted diff: %s", buf);
}

/* A C caller may fill the struct without the setters: validate checks every
 * field against its key's range and choices, and every value the setters
 * accept (the bounds themselves) passes. */
static void test_validate_struct_fields(void) {
    lg_config c;
    struct { const char *key; } bad[] = {
        {"optim.d.lr"}, {"train.n_dis"}, {"model.z_dim"}, {"train.steps"},
        {"lipschitz.d.sn"}, {"loss"}, {"ema.decay"}, {"data.format"},
        {"optim.g.eps"}, {"eval.inception"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        lg_config_default(&c);
        switch (i) {
        case 0: c.optim.d.lr = -1.0f; break;
        case 1: c.train.n_dis = 0; break;
        case 2: c.model.z_dim = -3; break;
        case 3: c.train.steps = 0; break;
        case 4: c.lipschitz.d.sn = 2; break;
        case 5: strcpy(c.loss, "wgan"); break;
        case 6: c.ema.decay = NAN; break;
        case 7: memset(c.data.format, 'x', sizeof c.data.format); break; /* no NUL */
        case 8: c.optim.g.eps = 0.0f; break;
        case 9: strcpy(c.eval.inception, "\xff\xfe.safetensors"); break;
        }
        lg_error_clear();
        lg_status s = lg_config_validate(&c);
        CHECK(s == LG_ERR_INVALID_ARG && strncmp(lg_error_msg(), bad[i].key, strlen(bad[i].key)) == 0,
              "%s: %s (%s), want INVALID_ARG naming the key first", bad[i].key, lg_status_str(s),
              lg_error_msg());
    }
    /* every numeric key at both ends of its range, set through the setter,
     * still validates as far as the field check goes */
    int n;
    const lg_cfg_key *k = lg_config_keys(&n);
    for (int i = 0; i < n; i++) {
        if (k[i].type != LG_CFG_INT && k[i].type != LG_CFG_I64 && k[i].type != LG_CFG_FLOAT) continue;
        for (int end = 0; end < 2; end++) {
            char a[160];
            snprintf(a, sizeof a, "%s=%.17g", k[i].name, end ? k[i].max : k[i].min);
            if (k[i].type != LG_CFG_FLOAT) snprintf(a, sizeof a, "%s=%.0f", k[i].name, end ? k[i].max : k[i].min);
            lg_config_default(&c);
            CHECK_OK(lg_config_set(&c, a));
            lg_error_clear();
            lg_status s = lg_config_validate(&c);
            CHECK(s == LG_OK || !strstr(lg_error_msg(), "out of range"), "%s: %s", a, lg_error_msg());
        }
    }
}

int main(void) {
    LG_TEST_RUN(test_defaults_are_thesis_baseline);
    LG_TEST_RUN(test_nested_yaml_and_types);
    LG_TEST_RUN(test_errors_name_key_and_line);
    LG_TEST_RUN(test_failed_load_changes_nothing);
    LG_TEST_RUN(test_set_overrides);
    LG_TEST_RUN(test_yaml_lists);
    LG_TEST_RUN(test_quoted_values);
    LG_TEST_RUN(test_print_round_trip);
    LG_TEST_RUN(test_key_table);
    LG_TEST_RUN(test_validate);
    LG_TEST_RUN(test_validate_struct_fields);
    LG_TEST_RUN(test_load_file_errors);
    LG_TEST_RUN(test_example_configs_parse);
    LG_TEST_RUN(test_keys_of_the_other_network);
    LG_TEST_RUN(test_d_batchnorm);
    LG_TEST_RUN(test_settings_that_do_nothing);
    LG_TEST_RUN(test_optim_kind_and_boost);
    LG_TEST_RUN(test_data_settings);
    LG_TEST_RUN(test_empty_config_file);
    LG_TEST_RUN(test_decimal_numbers_only);
    LG_TEST_RUN(test_diff);
    return lg_test_summary("test_config");
}
