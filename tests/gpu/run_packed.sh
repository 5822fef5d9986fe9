#!/bin/sh
# Runs a test packed by tests/gpu/pack.sh (from its folder) with a fresh
# seed; SANITIZE=1 adds a compute-sanitizer memcheck run.
set -e
D=$(dirname "$0")
SEED=${SEED:-$(od -An -N4 -tu4 /dev/urandom | tr -d ' ')}
export LG_REQUIRE_CUDA=1 LG_TEST_SEED="$SEED"
"$D/test_backend_cuda"
"$D/test_ops_cuda"
if [ "${SANITIZE:-0}" = 1 ]; then
    compute-sanitizer --tool memcheck --error-exitcode 3 "$D/test_backend_cuda" | tail -25
fi
