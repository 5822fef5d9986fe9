/* Exit codes and error printing shared by the subcommands. */
#include "cli/cli.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "lipgan/fileio.h"
#include "lipgan/safetensors.h"
#include "lipgan/train.h"

static lg_status writable_only(const char *opt, const char *path);

int lg_cli_exit_code(lg_status s) {
    switch (s) {
    case LG_OK: return LG_EXIT_OK;
    case LG_ERR_FORMAT:
    case LG_ERR_NOT_FOUND:
    case LG_ERR_SHAPE: return LG_EXIT_DATA;
    case LG_ERR_INVALID_ARG: return LG_EXIT_CONFIG;
    case LG_ERR_NONFINITE: return LG_EXIT_DIVERGED;
    case LG_ERR_INTERRUPTED: return LG_EXIT_INTERRUPTED;
    default: return s == LG_CLI_USAGE ? LG_EXIT_USAGE : LG_EXIT_RUNTIME;
    }
}

int lg_cli_fail(const char *cmd, lg_status s) {
    if (s == LG_CLI_USAGE && cmd) return lg_cli_usage_error(cmd, "%s", lg_error_msg());
    fprintf(stderr, "lipgan%s%s: error: %s\n", cmd ? " " : "", cmd ? cmd : "",
            *lg_error_msg() ? lg_error_msg() : lg_status_str(s));
    return lg_cli_exit_code(s);
}

int lg_cli_fail_input(const char *cmd, lg_status s) {
    int code = lg_cli_fail(cmd, s);
    return s == LG_ERR_NONFINITE ? LG_EXIT_DATA : code;
}

int lg_cli_usage_error(const char *cmd, const char *fmt, ...) {
    va_list ap;
    fprintf(stderr, "lipgan %s: ", cmd);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fprintf(stderr, "; see 'lipgan %s --help'\n", cmd);
    return LG_EXIT_USAGE;
}

/* Why an existing regular file at path must not be replaced, or NULL (why
 * has room for the reason). own_format: the lipgan file format the command
 * writes itself (replacing an earlier one of those is fine), or NULL. */
static const char *protected_file(const char *path, const char *own_format, char *why, size_t cap) {
    const char *slash = strrchr(path, '/');
    const char *base = slash ? slash + 1 : path;
    static const char *run_files[] = {"metrics.jsonl", "config.yaml", "spectra.bin", ".lock"};
    for (size_t i = 0; i < sizeof run_files / sizeof run_files[0]; i++)
        if (!strcmp(base, run_files[i])) return "is a run directory's own file";
    size_t bl = strlen(base);
    if ((!strncmp(base, "ckpt_", 5) && bl > 17 && !strcmp(base + bl - 12, ".safetensors")) ||
        !strncmp(base, "events.out.tfevents.", 20))
        return "is a run directory's own file";
    char fmt[64];
    if (!lg_st_peek_meta(path, "format", fmt, sizeof fmt) || strncmp(fmt, "lipgan-", 7) != 0 ||
        (own_format && !strcmp(fmt, own_format)))
        return NULL;
    if (!strcmp(fmt, LG_CHECKPOINT_FORMAT)) return "is a lipgan training checkpoint";
    snprintf(why, cap, "is a lipgan file of another kind (format %s)", fmt);
    return why;
}

lg_status lg_cli_check_output(const char *opt, const char *path, const char *const *inputs, int n,
                              const char *own_format) {
    struct stat sb, si;
    if (stat(path, &sb) == 0 && S_ISREG(sb.st_mode)) {
        for (int i = 0; i < n; i++)
            if (inputs[i] && stat(inputs[i], &si) == 0 && si.st_dev == sb.st_dev && si.st_ino == sb.st_ino)
                return lg_error_set(LG_CLI_USAGE, "%s %s: is this command's input %s; it would be overwritten: "
                                                  "choose another path",
                                    opt, path, inputs[i]);
        char buf[128];
        const char *why = protected_file(path, own_format, buf, sizeof buf);
        if (why)
            return lg_error_set(LG_CLI_USAGE, "%s %s: %s; it would be overwritten: choose another path", opt, path,
                                why);
    }
    return writable_only(opt, path);
}

lg_status lg_cli_check_writable(const char *opt, const char *path) {
    return lg_cli_check_output(opt, path, NULL, 0, NULL);
}

static lg_status writable_only(const char *opt, const char *path) {
    struct stat sb;
    if (stat(path, &sb) == 0 && S_ISDIR(sb.st_mode))
        return lg_error_set(LG_ERR_IO, "%s %s: is a directory; give a file name (e.g. %s/out.safetensors)", opt,
                            path, path);
    /* the same open the real write does, so the same failures show up now */
    lg_wfile f;
    if (lg_wfile_open(&f, path, 1) != LG_OK) {
        char why[1024]; /* lg_error_set must not read the buffer it writes */
        snprintf(why, sizeof why, "%s", lg_error_msg());
        return lg_error_set(LG_ERR_IO, "%s: %s", opt, why);
    }
    lg_wfile_abort(&f); /* removes the temp file */
    return LG_OK;
}
