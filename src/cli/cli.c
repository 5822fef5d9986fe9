/* Exit codes and error printing shared by the subcommands. */
#include "cli/cli.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "lipgan/fileio.h"

int lg_cli_exit_code(lg_status s) {
    switch (s) {
    case LG_OK: return LG_EXIT_OK;
    case LG_ERR_FORMAT:
    case LG_ERR_NOT_FOUND:
    case LG_ERR_SHAPE: return LG_EXIT_DATA;
    case LG_ERR_INVALID_ARG: return LG_EXIT_CONFIG;
    case LG_ERR_NONFINITE: return LG_EXIT_DIVERGED;
    case LG_ERR_INTERRUPTED: return LG_EXIT_INTERRUPTED;
    default: return LG_EXIT_RUNTIME;
    }
}

int lg_cli_fail(const char *cmd, lg_status s) {
    fprintf(stderr, "lipgan%s%s: error: %s\n", cmd ? " " : "", cmd ? cmd : "",
            *lg_error_msg() ? lg_error_msg() : lg_status_str(s));
    return lg_cli_exit_code(s);
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

lg_status lg_cli_check_writable(const char *opt, const char *path) {
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
