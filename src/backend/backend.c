/* Backend lookup by name. */
#include <string.h>

#include "lipgan/backend.h"

lg_status lg_backend_get(const char *name, const lg_backend **out) {
    LG_ASSERT(out);
    *out = NULL;
    if (!name)
        return lg_error_set(LG_ERR_INVALID_ARG, "backend name is NULL; use \"cpu\" or \"cuda\"");
    if (strcmp(name, "cpu") == 0) {
        *out = lg_backend_cpu();
        return LG_OK;
    }
    if (strcmp(name, "cuda") == 0) {
        const lg_backend *be = lg_backend_cuda(); /* sets the message on failure */
        if (!be) return LG_ERR_UNSUPPORTED;
        *out = be;
        return LG_OK;
    }
    return lg_error_set(LG_ERR_INVALID_ARG, "unknown backend '%s'; use \"cpu\" or \"cuda\"", name);
}
