/* Tests of the training config: YAML parsing, --set overrides, errors that
 * name the key (and file:line), printing round trip, validation, and that
 * every example config in configs/ parses and validates. */
#include <dirent.h>
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
    EXPECT_ERR("train: {steps: [1, 2]}\n", "train.steps", "lists");
    EXPECT_ERR("- 1\n- 2\n", "t.yaml:1", "mapping");
    /* malformed YAML: the parser's message with file:line */
    EXPECT_ERR("seed: \"abc\n", "t.yaml:", "invalid YAML");
    EXPECT_ERR("{seed: 1\n", "t.yaml:", "invalid YAML");
    EXPECT_ERR("model:\n  z_dim: 1\n bad: 2\n", "t.yaml:3", "invalid YAML");
    EXPECT_ERR("seed: 1\n---\nseed: 2\n", "second YAML document");
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
              c.cuda.graph == 1,
          "cuda defaults: precision %s deterministic %d benchmark %d graph %d", c.cuda.precision,
          c.cuda.deterministic, c.cuda.benchmark, c.cuda.graph);
    CHECK_OK(lg_config_set(&c, "device=cuda"));
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
    /* an empty file is the defaults */
    f = fopen(p, "w");
    fclose(f);
    CHECK_OK(lg_config_load_file(&c, p));
    tf_rm_rf(dir);
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

int main(void) {
    LG_TEST_RUN(test_defaults_are_thesis_baseline);
    LG_TEST_RUN(test_nested_yaml_and_types);
    LG_TEST_RUN(test_errors_name_key_and_line);
    LG_TEST_RUN(test_failed_load_changes_nothing);
    LG_TEST_RUN(test_set_overrides);
    LG_TEST_RUN(test_print_round_trip);
    LG_TEST_RUN(test_key_table);
    LG_TEST_RUN(test_validate);
    LG_TEST_RUN(test_load_file_errors);
    LG_TEST_RUN(test_example_configs_parse);
    return lg_test_summary("test_config");
}
