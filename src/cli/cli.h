/* src/cli/cli.h - shared pieces of the lipgan command-line tool.
 *
 * Adding a subcommand `foo`: write src/cli/cmd_foo.c defining
 *   int lg_cmd_foo(int argc, char **argv);   // argv[0] == "foo"
 * and add one line X(foo, "foo", "one-line help") to LG_CLI_COMMANDS in
 * src/cli/main.c. The function returns one of the exit codes below; it
 * handles its own --help (print to stdout, return LG_EXIT_OK). */
#ifndef LIPGAN_CLI_H
#define LIPGAN_CLI_H

#include <signal.h>

#include "lipgan/backend.h"
#include "lipgan/status.h"

/* Process exit codes (also listed in `lipgan --help`). */
enum {
    LG_EXIT_OK = 0,
    LG_EXIT_RUNTIME = 1,      /* I/O failure, out of memory, backend error, ... */
    LG_EXIT_USAGE = 2,        /* bad command line */
    LG_EXIT_DATA = 3,         /* bad or missing input file / data set / checkpoint */
    LG_EXIT_CONFIG = 4,       /* bad config file or value */
    LG_EXIT_DIVERGED = 5,     /* training diverged (non-finite losses K times) */
    LG_EXIT_INTERRUPTED = 130 /* stopped by a signal: 128 + its number, i.e. 130 for
                                 SIGINT, 143 for SIGTERM (train exits with the
                                 signal's own code; 130 where none is known) */
};

/* A status only the CLI uses: the message is a usage error (exit 2), e.g.
 * an --out that would overwrite a checkpoint. The library never returns it
 * (it lies past the library's statuses). */
#define LG_CLI_USAGE ((lg_status)LG_STATUS_COUNT)

typedef int (*lg_cli_fn)(int argc, char **argv);

typedef struct lg_cli_cmd {
    const char *name; /* as typed: "fid-stats" */
    lg_cli_fn fn;
    const char *help; /* one line */
} lg_cli_cmd;

/* Exit code for a library status: OK 0; FORMAT, NOT_FOUND, SHAPE 3 (bad
 * input); INVALID_ARG 4 (bad config value; a flag's bad value is made
 * LG_CLI_USAGE first, by the flag parsers or lg_cli_flag_status below);
 * NONFINITE 5; INTERRUPTED 130;
 * LG_CLI_USAGE 2; everything else (IO, NOMEM, UNSUPPORTED, BACKEND) 1. */
int lg_cli_exit_code(lg_status s);

/* Prints "lipgan <cmd>: error: <lg_error_msg()>" to stderr and returns
 * lg_cli_exit_code(s); for LG_CLI_USAGE it prints as lg_cli_usage_error.
 * cmd may be NULL. */
int lg_cli_fail(const char *cmd, lg_status s);

/* lg_cli_fail for commands that do not train (eval, fid-stats, sample): a
 * NaN/Inf there comes from a bad input file, not a diverged run, so
 * LG_ERR_NONFINITE exits 3, not 5. */
int lg_cli_fail_input(const char *cmd, lg_status s);

/* Prints "lipgan <cmd>: <message>; see 'lipgan <cmd> --help'" to stderr and
 * returns LG_EXIT_USAGE. */
int lg_cli_usage_error(const char *cmd, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* The one parser of numeric flag values, for every command. Strict: an
 * optional sign and decimal digits only (no empty value, no spaces, no
 * trailing text, no hex), and within lo..hi: a value out of range is
 * refused, never wrapped or clamped. LG_OK with *out set, else LG_CLI_USAGE
 * with "opt 'value': ..." naming the range (lg_cli_fail prints it, exit 2). */
lg_status lg_cli_flag_ll(const char *opt, const char *value, long long lo, long long hi, long long *out);
/* lg_cli_flag_ll for an int-valued flag (lo..hi within int). */
lg_status lg_cli_flag_int(const char *opt, const char *value, int lo, int hi, int *out);
/* A real-valued flag: a finite decimal number (strtod syntax, nothing
 * else) with lo < value < hi (open interval). LG_CLI_USAGE otherwise. */
lg_status lg_cli_flag_real(const char *opt, const char *value, double lo, double hi, double *out);

/* The status of a library call whose argument came from flag opt (its
 * value: value): a rejected argument (LG_ERR_INVALID_ARG) is a usage error
 * of that flag, LG_CLI_USAGE with "opt value: <the call's message>" (exit
 * 2); any other status (a missing file, a runtime failure) is returned as
 * is. LG_ERR_INVALID_ARG stays exit 4 (bad config) where the value came from
 * a config file. */
lg_status lg_cli_flag_status(const char *opt, const char *value, lg_status s);

/* The backend a --device flag names: cpu, cuda, or cuda:N for GPU N
 * (modulo the visible ones; lg_cuda_set_device), as the trainer's
 * cuda.device. A bad value is a usage error of opt (exit 2). */
lg_status lg_cli_device(const char *opt, const char *value, const lg_backend **be);

/* Sets sig's handler to sa (old disposition into *old) unless the process
 * inherited sig ignored (a background job of a non-interactive shell has
 * SIGINT ignored; POSIX says to keep it so): then nothing changes. 1 if
 * the handler was installed. Restore with sigaction(sig, old, NULL). */
int lg_cli_catch_signal(int sig, const struct sigaction *sa, struct sigaction *old);

/* An input file given by flag opt (e.g. "--ref"; "" for a positional
 * argument) must be a regular file: missing is LG_ERR_NOT_FOUND, a directory
 * or other non-file LG_ERR_FORMAT (bad input, exit 3), each naming what to
 * give (what: e.g. "a statistics file from lipgan fid-stats"). */
lg_status lg_cli_check_input(const char *opt, const char *path, const char *what);

/* A run directory for train's --out, checked before anything is printed or
 * loaded, creating nothing: it must be a directory or not exist yet, and
 * it (or the nearest existing directory above it, where it would be made)
 * must be writable. LG_CLI_USAGE (exit 2) naming the path, the reason and
 * the fix ("give a directory for --out, e.g. runs/NAME"). */
lg_status lg_cli_check_run_dir(const char *opt, const char *dir);

/* Fails early, before any long computation, if the output file path cannot
 * be written the way the atomic writer (lipgan/fileio.h) will write it: path
 * must not be a directory, and its temp file "<path>.tmp.<pid>" is created
 * and removed again in the target directory. Nothing is left behind and an
 * existing file at path is not touched. LG_ERR_IO with a message naming the
 * path, prefixed by opt (e.g. "--out").
 * It also refuses (LG_CLI_USAGE: exit 2, "choose another path") to replace
 * an existing file that is a lipgan safetensors file (metadata format
 * "lipgan-...": a checkpoint, the classifier, FID statistics; whatever its
 * name) or one of a
 * run directory's own files by name: metrics.jsonl, config.yaml,
 * spectra.bin, .lock, ckpt_*.safetensors, events.out.tfevents.*. An
 * earlier output of the command's own kind (a PNG grid, an HTML report,
 * FID statistics) may be replaced: re-running a command does that. */
lg_status lg_cli_check_writable(const char *opt, const char *path, const char *ext);

/* lg_cli_check_writable, and also refuses (LG_CLI_USAGE) a path that is
 * the same file (device and inode) as one of the command's n input paths
 * (NULL entries and paths that do not exist are skipped). Any lipgan
 * safetensors file (metadata format "lipgan-...": a checkpoint, the
 * classifier, FID statistics) is refused too, except one of own_format,
 * the kind the command writes (NULL: none), which it may replace. */
lg_status lg_cli_check_output(const char *opt, const char *path, const char *ext, const char *const *inputs,
                              int n, const char *own_format);

/* 1 if s ends in suffix, ignoring case (".PNG" is ".png"). */
int lg_cli_ends_with(const char *s, const char *suffix);

/* LG_CLI_USAGE unless path ends in ext (any case): the message says the
 * file is written as `what` (e.g. "safetensors format, what lipgan eval
 * --ref reads") and suggests the path with ext. */
lg_status lg_cli_check_ext(const char *opt, const char *path, const char *ext, const char *what);

#endif
