/* `make install` and building a program against the installed lipgan, as
 * an embedding project would: into a temporary prefix, every public header
 * compiles on its own in C11 and C++ with -Wall -Wextra -Werror, the two
 * examples build with nothing but pkg-config's flags (no repository paths),
 * one against the shared library and one statically, and run, and the installed CLI, started from another
 * directory, finds the shipped classifier under share/lipgan. Runs the
 * install of the build under test ($BUILD; SAN=1 when sanitized, so the
 * pkg-config file carries the sanitizer flags). */
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "lg_test.h"
#include "train_fixtures.h"

#if defined(__SANITIZE_ADDRESS__)
#define SAN_ARG " SAN=1"
#else
#define SAN_ARG ""
#endif

static char g_dir[] = "/tmp/lg_install_XXXXXX";
static char g_pfx[256];
static char g_log[1 << 16];

/* cmd through the shell (stdout+stderr into g_log); the exit code */
static int sh(const char *fmt, const char *a, const char *b) {
    char cmd[4096];
    char body[3072];
    snprintf(body, sizeof body, fmt, a, b);
    snprintf(cmd, sizeof cmd, "(%s) 2>&1", body);
    return lg_test_sh(cmd, g_log, sizeof g_log);
}

static int exists(const char *rel) {
    char p[512];
    snprintf(p, sizeof p, "%s/%s", g_pfx, rel);
    return access(p, R_OK) == 0;
}

static int test_make_install(void) {
    const char *build = getenv("BUILD");
    char cmd[1024];
    /* a make inside `make test`: its jobserver is not ours */
    snprintf(cmd, sizeof cmd,
             "env -u MAKEFLAGS -u MFLAGS -u MAKELEVEL make -s install BUILD=%s%s PREFIX=%%s "
             ">/dev/null",
             build && *build ? build : "build", SAN_ARG);
    int rc = sh(cmd, g_pfx, "");
    CHECK(rc == 0, "make install: exit %d\n%s", rc, g_log);
    const char *want[] = {"include/lipgan/tensor.h", "include/lipgan/train.h", "lib/liblipgan.a",
                          "lib/pkgconfig/lipgan.pc", "bin/lipgan",
                          "share/lipgan/models/fmnist_classifier.safetensors",
                          "share/lipgan/configs/toy_ring8.yaml"};
    for (size_t i = 0; i < sizeof want / sizeof want[0]; i++)
        CHECK(exists(want[i]), "installed %s/%s is missing", g_pfx, want[i]);
    return rc == 0;
}

/* Each installed header alone, as C11 and as C++ (extern "C" blocks). */
static void test_headers_alone(void) {
    char inc[300];
    snprintf(inc, sizeof inc, "%s/include/lipgan", g_pfx);
    DIR *d = opendir(inc);
    CHECK(d != NULL, "no %s", inc);
    if (!d) return;
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d))) {
        size_t l = strlen(e->d_name);
        if (l < 3 || strcmp(e->d_name + l - 2, ".h")) continue;
        n++;
        char fmt[1024];
        snprintf(fmt, sizeof fmt,
                 "printf '#include <lipgan/%s>\\nint lg_header_user;\\n' > %%s/h.c && "
                 "cc -std=c11 -Wall -Wextra -Werror -pedantic -fsyntax-only -I%%s/include %s/h.c && "
                 "cp %s/h.c %s/h.cpp && "
                 "g++ -std=c++17 -Wall -Wextra -Werror -fsyntax-only -I%s/include %s/h.cpp",
                 e->d_name, g_dir, g_dir, g_dir, g_pfx, g_dir);
        int rc = sh(fmt, g_dir, g_pfx);
        CHECK(rc == 0, "<lipgan/%s> alone: exit %d\n%s", e->d_name, rc, g_log);
    }
    closedir(d);
    CHECK(n >= 20, "only %d installed headers", n);
}

/* An example compiled from the repository's examples/ with the installed
 * headers and library only, then run. link_static: against liblipgan.a
 * with `pkg-config --static` (always so in sanitizer builds, which install
 * no shared library); else against liblipgan.so, checked to be the one
 * the program loads. */
static void test_example(const char *name, const char *args, int link_static) {
    char fmt[2048];
    snprintf(fmt, sizeof fmt,
             "PKG_CONFIG_PATH=%%s/lib/pkgconfig; export PKG_CONFIG_PATH; "
             "cc -std=c11 -Wall -Wextra -Werror examples/%s.c $(pkg-config --cflags lipgan) %s "
             "-o %s/%s",
             name,
             link_static ? "$(pkg-config --static --libs lipgan | sed 's|-llipgan|%s/lib/liblipgan.a|')"
                         : "$(pkg-config --libs lipgan)",
             g_dir, name);
    int rc = sh(fmt, g_pfx, g_pfx);
    CHECK(rc == 0, "building examples/%s.c (%s) against the installed lipgan: exit %d\n%s", name,
          link_static ? "static" : "shared", rc, g_log);
    if (rc) return;
    if (!link_static) {
        snprintf(fmt, sizeof fmt, "ldd %s/%s", g_dir, name);
        rc = sh(fmt, "", "");
        char want[400];
        snprintf(want, sizeof want, "%s/lib/liblipgan.so.0", g_pfx);
        CHECK(rc == 0 && strstr(g_log, want), "%s should load %s:\n%s", name, want, g_log);
    }
    snprintf(fmt, sizeof fmt, "cd / && %s/%s %s", g_dir, name, args);
    rc = sh(fmt, "", "");
    CHECK(rc == 0 && strstr(g_log, "modes covered"), "%s %s: exit %d\n%s", name, args, rc, g_log);
}

/* The installed CLI from a directory without models/: one training step of
 * the shipped Fashion-MNIST config, evaluated with the shipped classifier. */
static void test_cli_finds_classifier(void) {
    if (access("/usr/share/datasets/fashion-mnist", R_OK) != 0) {
        CHECK(0, "Fashion-MNIST is not installed (tools/setup.sh installs dataset-fashion-mnist)");
        return;
    }
    char fmt[2048];
    snprintf(fmt, sizeof fmt,
             "cd %s && %%s/bin/lipgan train %%s/share/lipgan/configs/fmnist_sn_hinge.yaml --set "
             "train.steps=1 --set model.g.width=8 --set model.d.width=8 --set threads=1 --set "
             "eval.every=1 --set log.every=1 --set eval.n=64 --set eval.metrics=classes --set "
             "log.spectra_every=0 --set log.tensorboard=false --quiet --out run",
             g_dir);
    int rc = sh(fmt, g_pfx, g_pfx);
    char m[300], row[2048] = "";
    snprintf(m, sizeof m, "%s/run/metrics.jsonl", g_dir);
    FILE *f = fopen(m, "r");
    if (f) {
        if (!fgets(row, sizeof row, f)) row[0] = '\0';
        fclose(f);
    }
    CHECK(rc == 0 && strstr(row, "\"eval_classes_covered\":"),
          "installed CLI with the shipped classifier: exit %d\n%s\nrow: %s", rc, g_log, row);
}

int main(void) {
    if (!mkdtemp(g_dir)) {
        perror("mkdtemp");
        return 1;
    }
    snprintf(g_pfx, sizeof g_pfx, "%s/prefix", g_dir);
    if (test_make_install()) {
        LG_TEST_RUN(test_headers_alone);
#if defined(__SANITIZE_ADDRESS__)
        CHECK(!exists("lib/liblipgan.so"), "a sanitizer build installs no shared library");
        test_example("embed_trainer", "20", 1);
        test_example("custom_wgan_gp", "3", 1);
#else
        CHECK(exists("lib/liblipgan.so") && exists("lib/liblipgan.so.0"), "no shared library");
        /* the public headers' functions are exported, the internals are not */
        char cmd[600];
        snprintf(cmd, sizeof cmd, "nm -D --defined-only %s/lib/liblipgan.so.0", g_pfx);
        int rc = sh(cmd, "", "");
        CHECK(rc == 0 && strstr(g_log, " lg_trainer_create\n") && strstr(g_log, " lg_conv2d\n") &&
                  !strstr(g_log, " lg__train_step_dev\n") && !strstr(g_log, " lg_cpu_wino_conv2d\n"),
              "exported symbols: exit %d, want lg_trainer_create and lg_conv2d but not "
              "lg__train_step_dev or lg_cpu_wino_conv2d", rc);
        test_example("embed_trainer", "20", 0);
        test_example("custom_wgan_gp", "3", 1);
#endif
        LG_TEST_RUN(test_cli_finds_classifier);
    }
    tf_rm_rf(g_dir);
    return lg_test_summary("test_install");
}
