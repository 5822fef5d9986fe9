/* lipgan/status.h - status codes, error messages and the invariant assert.
 *
 * Two tiers of errors (see README "Errors"):
 *  - anything the input or the system can cause is reported by returning an
 *    lg_status (LG_OK == 0) and recording a one-line message with
 *    lg_error_set(); callers read it with lg_error_msg();
 *  - broken invariants (programming errors) abort through LG_ASSERT, which
 *    prints file and line.
 * The library never calls exit(). */
#ifndef LIPGAN_STATUS_H
#define LIPGAN_STATUS_H

#include <stdio.h>
#include <stdlib.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef enum lg_status {
    LG_OK = 0,
    LG_ERR_INVALID_ARG,  /* a bad argument or value (config, CLI, API) */
    LG_ERR_SHAPE,        /* tensor shapes do not fit together */
    LG_ERR_IO,           /* open/read/write/fsync/rename failed */
    LG_ERR_FORMAT,       /* a file is corrupt or not in the expected format */
    LG_ERR_NOMEM,        /* an allocation failed */
    LG_ERR_UNSUPPORTED,  /* e.g. an op without a backward rule, a missing backend */
    LG_ERR_NOT_FOUND,    /* a key/tensor/file that should exist does not */
    LG_ERR_NONFINITE,    /* NaN or Inf where a finite value is required */
    LG_ERR_BACKEND,      /* a device (CUDA) call failed */
    LG_ERR_INTERRUPTED,  /* stopped by a signal */
    LG_STATUS_COUNT
} lg_status;

/* Short constant name of a status ("invalid argument", ...). */
const char *lg_status_str(lg_status s);

/* Records a printf-style message for the calling thread and returns s, so
 * errors are raised as `return lg_error_set(LG_ERR_IO, "%s: %s", path, why);`.
 * Messages are one line; put the fix after "; " (e.g. "...; re-download it"). */
lg_status lg_error_set(lg_status s, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
#ifdef __clang_analyzer__
/* clang's static analyzer (`make analyze`) does not see into status.c, so it
 * would take `return lg_error_set(LG_ERR_IO, ...)` for a possible LG_OK and
 * follow the caller past its error check; tell it the value is s. */
#define lg_error_set(s, ...) (lg_error_set((s), __VA_ARGS__), (s))
#endif

/* The last message recorded on this thread ("" if none). A later call
 * that succeeds does not clear it: read it only right after a call
 * returned an error (lg_error_clear() empties it). */
const char *lg_error_msg(void);

/* Clears the calling thread's message. */
void lg_error_clear(void);

/* Invariant check: aborts with file:line and the failed expression. Only for
 * programming errors, never for bad input. */
#define LG_ASSERT(cond)                                                        \
    do {                                                                       \
        if (!(cond)) {                                                         \
            fprintf(stderr, "lipgan: assertion failed at %s:%d: %s\n",         \
                    __FILE__, __LINE__, #cond);                                \
            abort();                                                           \
        }                                                                      \
    } while (0)

/* Propagates a non-OK status to the caller. */
#define LG_TRY(expr)                                                           \
    do {                                                                       \
        lg_status lg_try_s_ = (expr);                                          \
        if (lg_try_s_ != LG_OK) return lg_try_s_;                              \
    } while (0)

#ifdef __cplusplus
}
#endif
#endif
