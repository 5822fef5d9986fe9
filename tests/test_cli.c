/* Tests of the lipgan command-line tool, run as a separate process:
 * $BUILD/lipgan (BUILD from the environment, default "build"; the Makefile's
 * test target sets it). Checks --help, --version, exit codes of usage
 * errors (a directory as train's config; no arguments: usage on stderr
 * only), help about help, and that a failed write to stdout is reported. */
#include "lg_test.h"

#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "lipgan/version.h"

static char g_bin[512];

static int run_cli(const char *args, int merge, char *out, size_t cap) {
    return lg_test_run_cli(g_bin, args, merge, out, cap);
}

static void test_help(void) {
    static char out[16384];
    const char *names[] = {"train", "sample", "spectra", "eval", "fid-stats", "report", "help"};
    const char *flags[] = {"--help", "-h", "help"};
    for (int f = 0; f < 3; f++) {
        int rc = run_cli(flags[f], 0, out, sizeof out);
        CHECK(rc == 0, "lipgan %s exits %d", flags[f], rc);
        CHECK(strstr(out, "usage: lipgan") != NULL, "lipgan %s prints usage: %s", flags[f], out);
        for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
            char line[64];
            snprintf(line, sizeof line, "\n  %s ", names[i]);
            CHECK(strstr(out, line) != NULL, "lipgan %s lists '%s'", flags[f], names[i]);
        }
        CHECK(strstr(out, "--version") && strstr(out, "128+signal interrupted (130 SIGINT, 143 SIGTERM)"),
              "help names --version and exit codes (SIGTERM's 143 too)");
    }
    /* help about help is the general help, not an unknown command */
    const char *selfhelp[] = {"help help", "help --help", "help -h"};
    for (int i = 0; i < 3; i++) {
        int rc = run_cli(selfhelp[i], 0, out, sizeof out);
        CHECK(rc == 0 && strstr(out, "usage: lipgan <command>") != NULL, "lipgan %s: exit %d: %.200s", selfhelp[i], rc,
              out);
    }
    /* a planned command that is not built yet says so, and running it is a usage error */
    run_cli("--help", 0, out, sizeof out);
    int nunbuilt = 0;
    for (size_t i = 0; i < 6; i++) {
        char line[64];
        snprintf(line, sizeof line, "\n  %s ", names[i]);
        const char *at = strstr(out, line);
        const char *eol = at ? strchr(at + 1, '\n') : NULL;
        if (!at || !eol) continue;
        int unbuilt = 0;
        for (const char *p = at; p + 15 <= eol; p++) unbuilt |= memcmp(p, "(not built yet)", 15) == 0;
        if (!unbuilt) continue;
        nunbuilt++;
        static char err[4096];
        int rc = run_cli(names[i], 1, err, sizeof err);
        CHECK(rc == 2, "unbuilt '%s' exits %d", names[i], rc);
        CHECK(strstr(err, "not built yet") != NULL, "unbuilt '%s' message: %s", names[i], err);
    }
    printf("  %d planned commands not built yet\n", nunbuilt);
}

static void test_version(void) {
    char out[256];
    char want[64];
    snprintf(want, sizeof want, "lipgan %s\n", LG_VERSION);
    CHECK(strcmp(LG_VERSION, "0.1.0") == 0 && strcmp(lg_version(), LG_VERSION) == 0, "version %s / %s", LG_VERSION,
          lg_version());
    int rc = run_cli("--version", 0, out, sizeof out);
    CHECK(rc == 0, "--version exits %d", rc);
    CHECK(strcmp(out, want) == 0, "--version prints '%s'", out);
    rc = run_cli("-V", 0, out, sizeof out);
    CHECK(rc == 0 && strcmp(out, want) == 0, "-V prints '%s' (exit %d)", out, rc);
}

static void test_usage_errors(void) {
    static char out[16384];
    int rc = run_cli("frobnicate", 0, out, sizeof out);
    CHECK(rc == 2, "unknown command exits %d, want 2", rc);
    CHECK(out[0] == '\0', "nothing on stdout for an unknown command: %s", out);
    rc = run_cli("frobnicate --x", 1, out, sizeof out);
    CHECK(rc == 2 && strstr(out, "unknown command 'frobnicate'") != NULL && strchr(out, '\n') == out + strlen(out) - 1,
          "one error line naming the command: %s", out);
    /* no arguments: a usage error, so the usage goes to stderr and stdout stays empty */
    rc = run_cli("", 0, out, sizeof out);
    CHECK(rc == 2 && out[0] == '\0', "no arguments: exit %d, stdout '%.100s' (want 2 and nothing)", rc, out);
    rc = run_cli(" 2>&1 >/dev/null", 2, out, sizeof out);
    CHECK(rc == 2 && strstr(out, "usage: lipgan") != NULL, "no arguments: exit %d, usage on stderr: %.100s", rc, out);
    /* a directory as the config: the file-level config error (3, as a missing
     * file), one line saying what to give */
    rc = run_cli("train /tmp", 1, out, sizeof out);
    CHECK(rc == 3 && strstr(out, "/tmp: is a directory; give a YAML file") && strchr(out, '\n') == out + strlen(out) - 1,
          "train /tmp: exit %d: %s", rc, out);
    rc = run_cli("--bogus", 1, out, sizeof out);
    CHECK(rc == 2 && strstr(out, "unknown option '--bogus'") != NULL, "unknown option: exit %d: %s", rc, out);
    rc = run_cli("help frobnicate", 1, out, sizeof out);
    CHECK(rc == 2, "help for an unknown command exits %d", rc);
    /* a write error on stdout is an error, not a silent success */
    if (access("/dev/full", W_OK) == 0) {
        rc = run_cli("--help 2>&1 >/dev/full", 2, out, sizeof out);
        CHECK(rc == 1 && strstr(out, "cannot write") != NULL, "--help to /dev/full exits %d: %s", rc, out);
    }
}

int main(void) {
    if (lg_test_cli_path(g_bin, sizeof g_bin) != 0) return 1;
    LG_TEST_RUN(test_help);
    LG_TEST_RUN(test_version);
    LG_TEST_RUN(test_usage_errors);
    return lg_test_summary("test_cli");
}
