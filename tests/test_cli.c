/* Tests of the lipgan command-line tool, run as a separate process:
 * $BUILD/lipgan (BUILD from the environment, default "build"; the Makefile's
 * test target sets it). Checks --help, --version, exit codes of usage
 * errors (a directory as train's config; no arguments: usage on stderr
 * only), help about help, that a failed write to stdout is reported, that
 * every flag each parser accepts has an option line in its command's
 * --help, and that numeric and other flag values are checked strictly
 * (exit 2 naming the flag). */
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

/* Every flag each command's parser accepts (kept in step with the parsers
 * in src/cli/cmd_*.c), value-taking ones with a valid value after "=".
 * All of a command's flags but its help go to one run: a flag listed here
 * that the parser does not know stops it as an unknown option. */
static const struct {
    const char *cmd;
    const char *flags[24];
} k_flags[] = {
    {"train", {"--set=seed=1", "--out=runs/x", "--resume", "--print-config", "--quiet", "-q", "--help-config", "--help",
               "-h"}},
    {"sample", {"-n=2", "--out=x.png", "-o=x.png", "--seed=1", "--device=cpu", "--threads=1", "--no-ema", "--help", "-h"}},
    {"spectra",
     {"--input-size=8", "--stride=1", "--pad=1", "--iters=2", "--filter=D", "--convt=G", "--threads=1", "--json",
      "--svals", "--help", "-h"}},
    {"eval",
     {"--metrics=toy", "--n=10", "-n=10", "--ref=r.safetensors", "--ref-n=10", "--inception=i", "--classifier=c",
      "--data=d", "--seed=1", "--device=cpu", "--threads=1", "--json", "--log", "--no-ema", "--quiet", "-q", "--help",
      "-h"}},
    {"fid-stats",
     {"--out=s.safetensors", "--features=classifier", "--n=10", "-n=10", "--format=png", "--split=test",
      "--image-size=0", "--inception=i", "--classifier=c", "--threads=1", "--quiet", "-q", "--help", "-h"}},
    {"train-classifier",
     {"--data=/nonexistent_lg_data", "--out=/tmp/lg_test_cli_c.safetensors", "--epochs=1", "--seed=1", "--batch=8", "--lr=0.01", "--threads=1", "--quiet",
      "-q", "--help", "-h"}},
    {"report", {"--out=r.html", "-o=r.html", "--title=t", "--samples=2", "--spectra-steps=2", "--help", "-h"}},
};

/* 1 if help documents flag: an option line, i.e. a line that starts (after
 * spaces) with a comma-separated list of flags, the flag among them, as
 * "  -q, --quiet   ..." or "  --out DIR   ...". A flag named only in the
 * usage synopsis or in running text does not count. */
static int documents(const char *help, const char *flag) {
    size_t fl = strlen(flag);
    for (const char *line = help; *line; line = strchr(line, '\n') ? strchr(line, '\n') + 1 : line + strlen(line)) {
        const char *p = line;
        if (*p != ' ') continue;
        while (*p == ' ') p++;
        while (*p == '-') { /* the flags at the start of the line */
            size_t n = strcspn(p, " ,=\n");
            if (n == fl && !strncmp(p, flag, fl)) return 1;
            p += n;
            if (strncmp(p, ", ", 2) != 0) break;
            p += 2;
        }
    }
    return 0;
}

static void test_help_documents_every_flag(void) {
    static char help[32768], out[8192];
    for (size_t c = 0; c < sizeof k_flags / sizeof k_flags[0]; c++) {
        char a[1024];
        snprintf(a, sizeof a, "%s --help", k_flags[c].cmd);
        int rc = run_cli(a, 0, help, sizeof help);
        CHECK(rc == 0, "%s: exit %d", a, rc);
        size_t used = (size_t)snprintf(a, sizeof a, "%s", k_flags[c].cmd);
        for (const char *const *f = k_flags[c].flags; *f; f++) {
            char flag[64];
            snprintf(flag, sizeof flag, "%s", *f);
            char *eq = strchr(flag, '=');
            if (eq) *eq = '\0';
            CHECK(documents(help, flag), "lipgan %s --help has no option line for %s", k_flags[c].cmd, flag);
            if (strcmp(flag, "--help") && strcmp(flag, "-h") && strcmp(flag, "--help-config") && used < sizeof a)
                used += (size_t)snprintf(a + used, sizeof a - used, " %s%s%s", flag, eq ? " " : "", eq ? eq + 1 : "");
        }
        /* the parser knows them all (no positional argument or no data: nothing runs) */
        rc = run_cli(a, 1, out, sizeof out);
        CHECK((rc == 2 || rc == 3) && !strstr(out, "unknown option"), "lipgan %s: exit %d: %s", a, rc, out);
        /* the check can fail: an unknown flag is refused and undocumented */
        snprintf(a, sizeof a, "%s --no-such-flag", k_flags[c].cmd);
        rc = run_cli(a, 1, out, sizeof out);
        CHECK(rc == 2 && strstr(out, "unknown option") && !documents(help, "--no-such-flag"), "%s: exit %d: %s", a, rc,
              out);
    }
}

/* A numeric flag's value is parsed strictly (no wrap, no clamp, no empty
 * value, no trailing text) by one parser in every command; a bad value,
 * like any flag's bad value, is a usage error (exit 2) naming the flag. */
static void test_flag_values_strict(void) {
    static char out[8192];
    const struct {
        const char *args, *flag;
    } bad[] = {
        {"sample x.safetensors -n 10 --out q.csv --threads 4294967297", "--threads 4294967297"},
        {"sample x.safetensors -n 10 --out q.csv --threads ''", "--threads ''"},
        {"sample x.safetensors -n 10 --out q.csv --seed 18446744073709551616", "--seed 18446744073709551616"},
        {"sample x.safetensors -n 10 --out q.csv --seed -1", "--seed -1"},
        {"sample x.safetensors -n ' 5' --out q.csv", "-n ' 5'"},
        {"eval x.safetensors --n 100x", "--n 100x"},
        {"eval x.safetensors --threads 99999999999999999999", "--threads 99999999999999999999"},
        {"eval x.safetensors --seed 1e3", "--seed 1e3"},
        {"eval x.safetensors --metrics bogus", "--metrics bogus"},
        {"eval x.safetensors --metrics ''", "--metrics ''"},
        {"fid-stats d --out s.safetensors --image-size 4294967328", "--image-size 4294967328"},
        {"fid-stats d --out s.safetensors --n 1", "--n 1"},
        {"fid-stats d --out s.safetensors --format mnsit", "--format mnsit"},
        {"train-classifier --data d --out c.safetensors --epochs 4294967297", "--epochs 4294967297"},
        {"train-classifier --data d --out c.safetensors --lr 0.1x", "--lr 0.1x"},
        {"train-classifier --data d --out c.safetensors --lr nan", "--lr nan"},
        {"report d --samples 4294967297", "--samples 4294967297"},
        {"spectra f --iters 4294967297", "--iters 4294967297"},
        {"spectra f --threads ' 1'", "--threads ' 1'"},
        /* a value a library call rejects: the flag's usage error too, not 4 (bad config) */
        {"sample /nonexistent/x.safetensors -n 10 --out /tmp/lg_cli_never.csv --device gpu", "--device gpu"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        int rc = run_cli(bad[i].args, 1, out, sizeof out);
        CHECK(rc == 2 && strstr(out, bad[i].flag) && strchr(out, '\n') == out + strlen(out) - 1,
              "lipgan %s: exit %d (want 2, one line naming '%s'): %s", bad[i].args, rc, bad[i].flag, out);
    }
    CHECK(access("/tmp/lg_cli_never.csv", F_OK) != 0, "sample wrote its output");
}

int main(void) {
    if (lg_test_cli_path(g_bin, sizeof g_bin) != 0) return 1;
    LG_TEST_RUN(test_help);
    LG_TEST_RUN(test_version);
    LG_TEST_RUN(test_usage_errors);
    LG_TEST_RUN(test_help_documents_every_flag);
    LG_TEST_RUN(test_flag_values_strict);
    return lg_test_summary("test_cli");
}
