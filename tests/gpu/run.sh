#!/bin/sh
# Builds the CUDA-vs-CPU backend comparison (tests/gpu/test_backend_cuda.c)
# against the library and runs it on a machine with an NVIDIA GPU.
#   tests/gpu/run.sh                 # build in build-gpu, run with a fresh seed
#   BUILD=build-x SEED=123 tests/gpu/run.sh
#   SANITIZE=1 tests/gpu/run.sh      # also under compute-sanitizer memcheck
# Needs nvcc (the Makefile then builds src/**/*.cu and defines LG_HAVE_CUDA).
# Exits nonzero when the build fails, no device is usable, or any kernel
# is off the CPU reference.
set -e
cd "$(dirname "$0")/../.."
BUILD=${BUILD:-build-gpu}
JOBS=${JOBS:-$(nproc 2>/dev/null || echo 2)}
BIN=$BUILD/tests/gpu/test_backend_cuda
make BUILD="$BUILD" -j"$JOBS" features "$BIN"
SEED=${SEED:-$(od -An -N4 -tu4 /dev/urandom | tr -d ' ')}
export LG_REQUIRE_CUDA=1 LG_TEST_SEED="$SEED"
"$BIN"
if [ "${SANITIZE:-0}" = 1 ]; then
    compute-sanitizer --tool memcheck --error-exitcode 3 "$BIN"
fi
