/* Status strings and the per-thread error message. */
#include "lipgan/status.h"

#include <stdarg.h>
#include <string.h>

static _Thread_local char g_msg[1024];

const char *lg_status_str(lg_status s) {
    static const char *names[LG_STATUS_COUNT] = {
        "ok", "invalid argument", "shape mismatch", "I/O error",
        "format error", "out of memory", "unsupported", "not found",
        "non-finite value", "backend error", "interrupted"};
    if ((int)s < 0 || s >= LG_STATUS_COUNT) return "unknown status";
    return names[s];
}

/* the name in parentheses: status.h makes it a macro for the static analyzer */
lg_status (lg_error_set)(lg_status s, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(g_msg, sizeof g_msg, fmt, ap);
    va_end(ap);
    /* keep messages one line */
    for (char *p = g_msg; *p; p++)
        if (*p == '\n' || *p == '\r') *p = ' ';
    return s;
}

const char *lg_error_msg(void) { return g_msg; }

void lg_error_clear(void) { g_msg[0] = '\0'; }
