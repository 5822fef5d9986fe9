/* lipgan: the command-line tool. Dispatches to the subcommands in the
 * table below; each lives in src/cli/cmd_<name>.c (see cli.h). */
#include <stdio.h>
#include <string.h>

#include "cli/cli.h"
#include "lipgan/version.h"

/* The built subcommands, one line each: X(identifier, "name", "help").
 * X(train, "train", "...") calls int lg_cmd_train(int argc, char **argv). */
#define LG_CLI_COMMANDS(X) \
    X(train, "train", "train a Lipschitz-constrained GAN from a config file") \
    X(sample, "sample", "generate samples from a checkpoint") \
    X(spectra, "spectra", "singular-value spectra and Lipschitz bounds of a file's weights") \
    X(eval, "eval", "IS, FID, KID, classifier metrics or toy-mode metrics of a checkpoint") \
    X(fid_stats, "fid-stats", "precompute FID reference statistics of a data set") \
    X(train_classifier, "train-classifier", "train the Fashion-MNIST classifier used by eval's cfid/classes") \
    X(report, "report", "one self-contained HTML report of a run directory: curves, spectra, samples")

#define LG_CLI_DECLARE(id, name, help) int lg_cmd_##id(int argc, char **argv);
#define LG_CLI_ENTRY(id, name, help) {name, lg_cmd_##id, help},
LG_CLI_COMMANDS(LG_CLI_DECLARE)

static const lg_cli_cmd g_cmds[] = {LG_CLI_COMMANDS(LG_CLI_ENTRY){NULL, NULL, NULL}};

/* The planned command set, so --help shows what is still missing. */
static const struct {
    const char *name, *help;
} g_planned[] = {
    {"train", "train a Lipschitz-constrained GAN from a config file"},
    {"sample", "generate samples from a checkpoint"},
    {"spectra", "singular-value spectra of a checkpoint's layers"},
    {"eval", "Inception Score, FID or toy-mode metrics of a checkpoint"},
    {"fid-stats", "precompute FID reference statistics of a data set"},
    {"report", "one self-contained HTML report of a run directory"},
};

static const lg_cli_cmd *find_cmd(const char *name) {
    for (const lg_cli_cmd *c = g_cmds; c->name; c++)
        if (strcmp(c->name, name) == 0) return c;
    return NULL;
}

static int is_planned(const char *name) {
    for (size_t i = 0; i < sizeof g_planned / sizeof g_planned[0]; i++)
        if (strcmp(g_planned[i].name, name) == 0) return 1;
    return 0;
}

static void print_help(FILE *out) {
    fprintf(out,
            "lipgan %s - train and evaluate Lipschitz-constrained GANs\n"
            "\n"
            "usage: lipgan <command> [options]     (lipgan <command> --help for its options)\n"
            "       lipgan --help | --version\n"
            "\n"
            "commands:\n",
            lg_version());
    for (const lg_cli_cmd *c = g_cmds; c->name; c++) fprintf(out, "  %-16s  %s\n", c->name, c->help);
    for (size_t i = 0; i < sizeof g_planned / sizeof g_planned[0]; i++)
        if (!find_cmd(g_planned[i].name))
            fprintf(out, "  %-16s  %s (not built yet)\n", g_planned[i].name, g_planned[i].help);
    fprintf(out,
            "  %-16s  show this help, or a command's help\n"
            "\n"
            "exit codes: 0 ok, 1 runtime error, 2 usage error, 3 bad input file or data,\n"
            "            4 bad config, 5 training diverged,\n"
            "            128+signal interrupted (130 SIGINT, 143 SIGTERM)\n",
            "help");
}

static int run(int argc, char **argv) {
    if (argc < 2) {
        print_help(stderr);
        return LG_EXIT_USAGE;
    }
    const char *a = argv[1];
    if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
        print_help(stdout);
        return LG_EXIT_OK;
    }
    if (strcmp(a, "--version") == 0 || strcmp(a, "-V") == 0) {
        printf("lipgan %s\n", lg_version());
        return LG_EXIT_OK;
    }
    if (strcmp(a, "help") == 0) {
        /* "help help" and "help --help" ask about help itself: the general help */
        if (argc < 3 || !strcmp(argv[2], "help") || !strcmp(argv[2], "--help") || !strcmp(argv[2], "-h")) {
            print_help(stdout);
            return LG_EXIT_OK;
        }
        const lg_cli_cmd *c = find_cmd(argv[2]);
        if (!c) {
            fprintf(stderr, "lipgan: unknown command '%s'; see 'lipgan --help'\n", argv[2]);
            return LG_EXIT_USAGE;
        }
        char *sub[] = {argv[2], "--help", NULL};
        return c->fn(2, sub);
    }
    if (a[0] == '-') {
        fprintf(stderr, "lipgan: unknown option '%s'; see 'lipgan --help'\n", a);
        return LG_EXIT_USAGE;
    }
    const lg_cli_cmd *c = find_cmd(a);
    if (c) return c->fn(argc - 1, argv + 1);
    if (is_planned(a))
        fprintf(stderr, "lipgan: command '%s' is not built yet in lipgan %s; see 'lipgan --help'\n", a, lg_version());
    else
        fprintf(stderr, "lipgan: unknown command '%s'; see 'lipgan --help'\n", a);
    return LG_EXIT_USAGE;
}

int main(int argc, char **argv) {
    int code = run(argc, argv);
    /* output that could not be written (a full disk, a closed pipe) is a failure */
    if (fflush(stdout) != 0 || ferror(stdout)) {
        fprintf(stderr, "lipgan: error: cannot write to standard output\n");
        if (code == LG_EXIT_OK) code = LG_EXIT_RUNTIME;
    }
    return code;
}
