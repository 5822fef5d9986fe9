/* Exit codes and error printing shared by the subcommands. */
#include "cli/cli.h"

#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "lipgan/backend.h"
#include "lipgan/fileio.h"
#include "lipgan/safetensors.h"
#include "lipgan/train.h"
#ifdef LG_HAVE_CUDA
#include "lipgan/cuda.h"
#endif

static lg_status writable_only(const char *opt, const char *path, const char *ext);

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

lg_status lg_cli_check_output(const char *opt, const char *path, const char *ext, const char *const *inputs,
                              int n, const char *own_format) {
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
    return writable_only(opt, path, ext);
}

int lg_cli_ends_with(const char *s, const char *suffix) {
    size_t a = strlen(s), b = strlen(suffix);
    return a >= b && strcasecmp(s + a - b, suffix) == 0;
}

lg_status lg_cli_check_ext(const char *opt, const char *path, const char *ext, const char *what) {
    if (lg_cli_ends_with(path, ext)) return LG_OK;
    size_t pl = strlen(path);
    const char *dot = strrchr(path, '.'), *slash = strrchr(path, '/');
    int stem = dot && (!slash || dot > slash + 1) ? (int)(dot - path) : (int)pl;
    return lg_error_set(LG_CLI_USAGE, "%s %s: the file is written in %s, so the name must end in %s, e.g. %.*s%s",
                        opt, path, what, ext, stem, path, ext);
}

lg_status lg_cli_check_writable(const char *opt, const char *path, const char *ext) {
    return lg_cli_check_output(opt, path, ext, NULL, 0, NULL);
}

/* The directory path's file would go into ("." for a bare name), into dir. */
static void parent_dir(const char *path, char *dir, size_t cap) {
    snprintf(dir, cap, "%s", path);
    char *slash = strrchr(dir, '/');
    if (!slash) snprintf(dir, cap, ".");
    else if (slash == dir) dir[1] = '\0';
    else *slash = '\0';
}

static lg_status writable_only(const char *opt, const char *path, const char *ext) {
    struct stat sb;
    size_t len = strlen(path);
    if (stat(path, &sb) == 0 && S_ISDIR(sb.st_mode))
        return lg_error_set(LG_CLI_USAGE, "%s %s: is a directory; give a file name (e.g. %s%sout%s)", opt, path, path,
                            len && path[len - 1] == '/' ? "" : "/", ext ? ext : "");
    /* the directory it goes into: missing or not writable is the path's fault */
    char dir[PATH_MAX];
    parent_dir(path, dir, sizeof dir);
    if (stat(dir, &sb) != 0) {
        int e = errno;
        if (e == ENOENT || e == ENOTDIR)
            return lg_error_set(LG_CLI_USAGE, "%s %s: directory %s does not exist; create it or choose another path",
                                opt, path, dir);
        return lg_error_set(LG_CLI_USAGE, "%s %s: cannot reach directory %s: %s; choose another path", opt, path,
                            dir, strerror(e));
    }
    if (!S_ISDIR(sb.st_mode))
        return lg_error_set(LG_CLI_USAGE, "%s %s: %s is not a directory; choose another path", opt, path, dir);
    if (access(dir, W_OK | X_OK) != 0)
        return lg_error_set(LG_CLI_USAGE, "%s %s: cannot write in directory %s: %s; choose a path you can write", opt,
                            path, dir, strerror(errno));
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

/* value as a message shows it: quoted when empty or holding a space */
static const char *shown(const char *value, char *buf, size_t cap) {
    if (*value && !strpbrk(value, " \t'")) return value;
    snprintf(buf, cap, "'%s'", value);
    return buf;
}

static lg_status bad_int(const char *opt, const char *value, long long lo, long long hi) {
    char q[256];
    if (hi == LLONG_MAX)
        return lg_error_set(LG_CLI_USAGE, "%s %s: must be an integer >= %lld", opt, shown(value, q, sizeof q), lo);
    return lg_error_set(LG_CLI_USAGE, "%s %s: must be an integer in %lld..%lld", opt, shown(value, q, sizeof q), lo,
                        hi);
}

lg_status lg_cli_flag_ll(const char *opt, const char *value, long long lo, long long hi, long long *out) {
    /* strtoll alone would skip leading spaces, take "" as 0 and clamp
     * overflow to LLONG_MAX: check the syntax, then errno */
    const char *p = value + (*value == '+' || *value == '-');
    int ok = *p != '\0';
    for (const char *q = p; ok && *q; q++) ok = *q >= '0' && *q <= '9';
    long long v = 0;
    if (ok) {
        char *end;
        errno = 0;
        v = strtoll(value, &end, 10);
        ok = errno == 0 && *end == '\0';
    }
    if (!ok || v < lo || v > hi) return bad_int(opt, value, lo, hi);
    *out = v;
    return LG_OK;
}

lg_status lg_cli_flag_int(const char *opt, const char *value, int lo, int hi, int *out) {
    long long v;
    LG_TRY(lg_cli_flag_ll(opt, value, lo, hi, &v));
    *out = (int)v;
    return LG_OK;
}

lg_status lg_cli_flag_real(const char *opt, const char *value, double lo, double hi, double *out) {
    char *end = NULL;
    errno = 0;
    double v = *value && !strchr(" \t\n", *value) ? strtod(value, &end) : NAN;
    if (!end || *end || errno || !isfinite(v) || !(v > lo && v < hi)) {
        char q[256];
        return lg_error_set(LG_CLI_USAGE, "%s %s: must be a number in (%g, %g)", opt, shown(value, q, sizeof q), lo,
                            hi);
    }
    *out = v;
    return LG_OK;
}

lg_status lg_cli_flag_status(const char *opt, const char *value, lg_status s) {
    if (s != LG_ERR_INVALID_ARG) return s;
    char msg[1024], q[256]; /* lg_error_set must not read the buffer it writes */
    snprintf(msg, sizeof msg, "%s", lg_error_msg());
    return lg_error_set(LG_CLI_USAGE, "%s %s: %s", opt, shown(value, q, sizeof q), msg);
}

lg_status lg_cli_device(const char *opt, const char *value, const lg_backend **be) {
    if (!strncmp(value, "cuda:", 5)) {
        char *end = NULL, q[256];
        errno = 0;
        long idx = value[5] >= '0' && value[5] <= '9' ? strtol(value + 5, &end, 10) : -1;
        if (idx < 0 || idx > 1023 || !end || *end || errno)
            return lg_error_set(LG_CLI_USAGE, "%s %s: the GPU index after cuda: must be an integer in [0, 1023]", opt,
                                shown(value, q, sizeof q));
#ifdef LG_HAVE_CUDA
        LG_TRY(lg_cli_flag_status(opt, value, lg_cuda_set_device((int)idx)));
#endif
        value = "cuda"; /* a build without CUDA: lg_backend_get says so */
    }
    return lg_cli_flag_status(opt, value, lg_backend_get(value, be));
}

int lg_cli_catch_signal(int sig, const struct sigaction *sa, struct sigaction *old) {
    if (sigaction(sig, NULL, old) != 0 || old->sa_handler == SIG_IGN) return 0;
    return sigaction(sig, sa, NULL) == 0;
}

lg_status lg_cli_check_input(const char *opt, const char *path, const char *what) {
    struct stat sb;
    if (stat(path, &sb) != 0 || S_ISREG(sb.st_mode)) return LG_OK; /* missing: the loader says how to get it */
    return lg_error_set(LG_ERR_FORMAT, "%s%s%s: is %s, not a file; give %s", opt, *opt ? " " : "", path,
                        S_ISDIR(sb.st_mode) ? "a directory" : "not a regular file", what);
}

lg_status lg_cli_check_run_dir(const char *opt, const char *dir) {
    char p[PATH_MAX];
    struct stat sb;
    if (!*dir) return lg_error_set(LG_CLI_USAGE, "%s '': an empty path; give a directory, e.g. runs/NAME", opt);
    snprintf(p, sizeof p, "%s", dir);
    /* up from dir to the first path that exists: dir itself, or where it is made */
    for (;;) {
        if (stat(p, &sb) == 0) break;
        int e = errno;
        if ((e != ENOENT && e != ENOTDIR) || !strcmp(p, ".") || !strcmp(p, "/"))
            return lg_error_set(LG_CLI_USAGE, "%s %s: cannot create it: %s: %s; give a directory for %s that can be "
                                              "created, e.g. runs/NAME",
                                opt, dir, p, strerror(e), opt);
        size_t n = strlen(p);
        while (n > 1 && p[n - 1] == '/') p[--n] = '\0'; /* "a/b/" is a/b */
        char up[PATH_MAX];
        parent_dir(p, up, sizeof up);
        memcpy(p, up, strlen(up) + 1);
    }
    int self = !strcmp(p, dir);
    if (!S_ISDIR(sb.st_mode)) {
        if (self)
            return lg_error_set(LG_CLI_USAGE, "%s %s: is a file, not a directory; give a directory for %s, e.g. "
                                              "runs/NAME",
                                opt, dir, opt);
        return lg_error_set(LG_CLI_USAGE, "%s %s: cannot create it: %s is a file, not a directory; give a "
                                          "directory for %s, e.g. runs/NAME",
                            opt, dir, p, opt);
    }
    if (access(p, W_OK | X_OK) != 0) {
        if (self)
            return lg_error_set(LG_CLI_USAGE, "%s %s: cannot write in it: %s; give a directory for %s that you can "
                                              "write, e.g. runs/NAME",
                                opt, dir, strerror(errno), opt);
        return lg_error_set(LG_CLI_USAGE, "%s %s: cannot create it in %s: %s; give a directory for %s that you "
                                          "can write, e.g. runs/NAME",
                            opt, dir, p, strerror(errno), opt);
    }
    return LG_OK;
}
