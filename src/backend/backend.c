/* Backend lookup by name, and the names of the elementwise ops. */
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

const char *lg_unary_name(lg_unary op) {
    static const char *const n[LG_U_COUNT] = {
        "relu",       "lrelu", "tanh",  "sigmoid", "softplus", "square", "sqrt", "neg", "scale",
        "add_scalar", "step",  "recip", "exp",     "log",      "abs",    "sign", "clamp"};
    return (int)op >= 0 && op < LG_U_COUNT ? n[op] : "?";
}

const char *lg_binary_name(lg_binary op) {
    static const char *const n[LG_B_COUNT] = {"add", "sub", "mul", "div", "max", "add_relu",
                                              "relu_mask"};
    return (int)op >= 0 && op < LG_B_COUNT ? n[op] : "?";
}
