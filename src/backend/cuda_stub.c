/* lg_backend_cuda() of builds without CUDA (the Makefile defines
 * LG_HAVE_CUDA and compiles the .cu files of src/backend/cuda when it finds nvcc). */
#ifndef LG_HAVE_CUDA
#include "lipgan/backend.h"

const lg_backend *lg_backend_cuda(void) {
    lg_error_set(LG_ERR_UNSUPPORTED, "lipgan was built without CUDA; rebuild on a machine with nvcc");
    return NULL;
}
#else
/* ISO C forbids an empty translation unit */
typedef int lg_cuda_stub_unused_;
#endif
