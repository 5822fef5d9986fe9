#!/bin/sh
# One batch on a GPU machine: the CUDA tests (cuDNN and im2col paths; the
# Lipschitz toolkit; 20 training steps cuda vs cpu), compute-sanitizer
# memcheck over the kernel tests, bench/gpu_compare.sh if present, and the
# model benchmark, lipgan and PyTorch side by side, from a folder
# packed by tests/gpu/pack.sh (or its tarball). Run it in a copy of the
# repository (test_train_cuda reads configs/). Logs go to $OUT (or
# ./device-out). Every step has a time limit, and all of them together stay
# within DEADLINE seconds (default 570: a step that would run past it gets
# the time left, or is skipped); a failing step does not stop the later
# ones; the exit status is nonzero if any step failed. Last it prints the
# generator's per-kernel profile (bench_models --only G with
# LG_CUDA_PROFILE=1; the full table is in $OUT/bench_profile_G.log).
#   tests/gpu/device_run.sh build-x/gpu-pack            # or: build-x/gpu-pack.tar.gz
#   ITERS=20 TORCH=0 TF32=0 PROFILE_TEST=0 tests/gpu/device_run.sh DIR
#   SANITIZER=0 BENCH=0 tests/gpu/device_run.sh DIR   # no memcheck / no benchmarks
#   TESTS=0 ...                                          # no test steps
# All steps' limits add up to well over one 10-minute device call, so a
# session runs it in parts, one call each (bench/CUDA_NOTES.md, "Device
# plan"): SANITIZER=0 BENCH=0 (the tests), then TESTS=0 SANITIZER=0 (the
# benchmarks), then TESTS=0 BENCH=0 (memcheck).
# SANITIZER=1 (default) runs test_backend_cuda, test_ops_cuda and
# test_lipschitz_cuda under compute-sanitizer memcheck (10-50x slower; 150 s
# each), found on PATH or in /usr/local/cuda*/bin (else "skipped: not found").
# BENCH=0 skips every benchmark step (the tests and memcheck only).
# PROFILE_TEST=1 (default) also runs test_backend_cuda through the
# profiling table (LG_CUDA_PROFILE=1), after the benchmarks.
# cuDNN: $LG_CUDNN_PATH if set, else the copy inside PyTorch's wheel
# (nvidia/cudnn/lib), else whatever the loader finds.
set -u
SRC=${1:?usage: device_run.sh PACKDIR|PACK.tar.gz}
OUT=${OUT:-$PWD/device-out}
ITERS=${ITERS:-20}
DEADLINE=${DEADLINE:-570}
T0=$(date +%s)
# the repository root (this script is tests/gpu/device_run.sh in it)
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
mkdir -p "$OUT"
if [ -f "$SRC" ]; then
    D=$(mktemp -d)
    tar xf "$SRC" -C "$D" || exit 1
else
    D=$(cd "$SRC" && pwd) || exit 1  # absolute: some steps run from $ROOT
fi
fail=0
summary=""
step() { # step NAME SECONDS CMD...: runs CMD, log in $OUT/NAME.log
    name=$1 secs=$2
    shift 2
    left=$(( DEADLINE - ($(date +%s) - T0) ))
    if [ "$left" -lt 15 ]; then
        echo "== $name: skipped (DEADLINE ${DEADLINE}s reached)"
        summary="$summary $name=skipped"
        fail=1
        return 1
    fi
    [ "$secs" -gt "$left" ] && secs=$left
    t0=$(date +%s)
    timeout "$secs" "$@" >"$OUT/$name.log" 2>&1
    rc=$?
    echo "== $name: rc=$rc ($(( $(date +%s) - t0 )) s)"
    summary="$summary $name=$rc"
    [ "$rc" = 0 ] || fail=1
    return $rc
}

echo "== $(date -u '+%Y-%m-%d %H:%M UTC'); $(nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader 2>/dev/null)"
. "$ROOT/tests/gpu/find_cudnn.sh"
echo "== LG_CUDNN_PATH=${LG_CUDNN_PATH:-<not found>}"
python3 -c "import torch; print('== torch', torch.__version__, 'cuda', torch.version.cuda, 'cudnn', torch.backends.cudnn.version())" 2>/dev/null

export LG_REQUIRE_CUDA=1 LG_REQUIRE_CUDNN=${LG_REQUIRE_CUDNN:-1}
export LG_TEST_SEED=${SEED:-$(od -An -N4 -tu4 /dev/urandom | tr -d ' ')}
echo "== seed $LG_TEST_SEED"
if [ "${TESTS:-1}" = 1 ]; then
step test_backend_cuda 150 "$D/test_backend_cuda"
tail -4 "$OUT/test_backend_cuda.log"
grep -E "FAIL|failed" "$OUT/test_backend_cuda.log" | head -20
step test_ops_cuda 150 "$D/test_ops_cuda"
tail -3 "$OUT/test_ops_cuda.log"
grep -E "FAIL|failed|nMSE [0-9.e+-]* >" "$OUT/test_ops_cuda.log" | head -20
# every convolution that fits them through lipgan's Winograd passes (not timed)
step test_backend_cuda_wino 150 env LG_CUDA_WINO=force "$D/test_backend_cuda"
tail -2 "$OUT/test_backend_cuda_wino.log"
grep -E "FAIL|failed" "$OUT/test_backend_cuda_wino.log" | head -20
step test_ops_cuda_wino 150 env LG_CUDA_WINO=force "$D/test_ops_cuda"
tail -2 "$OUT/test_ops_cuda_wino.log"
step test_backend_cuda_wino4 150 env LG_CUDA_WINO=force4 "$D/test_backend_cuda"
tail -2 "$OUT/test_backend_cuda_wino4.log"
grep -E "FAIL|failed" "$OUT/test_backend_cuda_wino4.log" | head -20
step test_lipschitz_cuda 120 "$D/test_lipschitz_cuda"
tail -2 "$OUT/test_lipschitz_cuda.log"
grep -E "FAIL|failed" "$OUT/test_lipschitz_cuda.log" | head -10
# the metrics' feature networks: Inception-v3 (own kernels) and the classifier
step test_inception_cuda 120 "$D/test_inception_cuda"
tail -8 "$OUT/test_inception_cuda.log"
# 20 training steps per case on cpu (16 cores) and cuda; reads configs/*.yaml
step test_train_cuda 300 sh -c 'cd "$1" && exec "$2"' sh "$ROOT" "$D/test_train_cuda"
grep -E "^== |synced cuda|cuda vs cpu|graph vs eager|graphs vs eager|repeated|tf32 vs|bf16 vs" "$OUT/test_train_cuda.log"
tail -1 "$OUT/test_train_cuda.log"
grep -E "FAIL|failed" "$OUT/test_train_cuda.log" | head -20
fi # TESTS

if [ "${SANITIZER:-1}" = 1 ]; then
    CS=$(command -v compute-sanitizer 2>/dev/null || ls /usr/local/cuda*/bin/compute-sanitizer 2>/dev/null | head -1)
    if [ -z "$CS" ]; then
        echo "== memcheck: skipped: compute-sanitizer not found (PATH, /usr/local/cuda*/bin)"
        summary="$summary memcheck=notfound"
    else
        echo "== memcheck with $CS"
        for t in test_backend_cuda test_ops_cuda test_lipschitz_cuda test_inception_cuda; do
            # heuristic algorithm choice: timing every algorithm per geometry
            # under memcheck would use up the step's time
            step "memcheck_$t" 150 env LG_CUDNN_BENCHMARK=0 "$CS" --tool memcheck --leak-check no --error-exitcode 1 "$D/$t"
            grep -E "ERROR SUMMARY|Invalid|FAIL|failed" "$OUT/memcheck_$t.log" | head -8
        done
    fi
fi

# another helper's CPU/GPU comparison script, if it is there (takes the pack dir)
GC=""
[ -f "$D/gpu_compare.sh" ] && GC="$D/gpu_compare.sh"
[ -z "$GC" ] && [ -f "$ROOT/bench/gpu_compare.sh" ] && GC="$ROOT/bench/gpu_compare.sh"
if [ -n "$GC" ] && [ "${BENCH:-1}" = 1 ]; then
    # the full-iteration table without torch.compile (COMPILE=1 sh bench/gpu_compare.sh
    # on its own for that: compiling needs minutes)
    step gpu_compare 150 env COMPILE="${COMPILE:-0}" DEADLINE=140 sh -c 'cd "$1" && exec sh "$2" "$3"' sh "$ROOT" "$GC" "$D"
    tail -15 "$OUT/gpu_compare.log"
fi

if [ "${BENCH:-1}" = 1 ]; then
# the Winograd candidates' effect on the iteration, and which passes they won
step gpu_wino 200 sh -c 'cd "$1" && OUT="$2/gpu-wino" exec sh bench/gpu_wino.sh "$3" "$4"' sh "$ROOT" "$OUT" "$D" "$ITERS"
tail -3 "$OUT/gpu_wino.log"
step bench_lipgan 120 "$D/bench_models" --device cuda --iters "$ITERS" --graph
# the generator's per-kernel profile (eager steps; the graph replay is
# timed as usual and must still match the eager gradients)
step bench_profile_G 120 env LG_CUDA_PROFILE=1 "$D/bench_models" --device cuda --iters "$ITERS" --graph --only G
# the same with cuDNN's nondeterministic (atomics) algorithms admitted: what
# determinism costs the convolutions
[ "${NONDET:-1}" = 1 ] && step bench_profile_G_nondet 120 env LG_CUDA_PROFILE=1 LG_CUDNN_NONDET=1 "$D/bench_models" --device cuda --iters "$ITERS" --graph --only G
step bench_lipgan_sn 120 "$D/bench_models" --device cuda --iters "$ITERS" --graph --sn
# one full SN-GAN iteration (5 D steps b64 + 1 G step b128) through the
# trainer, eager, both sides
step bench_train_iter 120 "$D/bench_train_iter" --device cuda --iters "$ITERS"
[ "${TORCH:-1}" = 1 ] && step bench_torch_train_iter 120 sh -c "cd bench && python3 torch_train_iter.py --device cuda --iters $ITERS"
# the ReLU fusion (bench/relu.sh's two sides): lipgan's former two kernels,
# its fused one, and PyTorch's kernels for the same work
step bench_relu 60 "$D/bench_relu" --device cuda --reps "$ITERS"
[ "${TORCH:-1}" = 1 ] && step bench_torch_relu 60 python3 bench/torch_relu.py --device cuda --reps "$ITERS"
if [ "${TORCH:-1}" = 1 ]; then
    step bench_torch 120 python3 bench/torch_models.py --device cuda --iters "$ITERS"
    step bench_torch_sn 120 python3 bench/torch_models.py --device cuda --iters "$ITERS" --sn
fi
if [ "${TF32:-1}" = 1 ]; then
    step bench_lipgan_tf32 120 "$D/bench_models" --device cuda --iters "$ITERS" --graph --tf32
    [ "${TORCH:-1}" = 1 ] && step bench_torch_tf32 120 python3 bench/torch_models.py --device cuda --iters "$ITERS" --tf32
fi
# the metrics' feature extractor (FID/IS): lipgan's GPU Inception vs PyTorch's,
# 64 RGB 32x32 images per call; the PyTorch side prints max |pool3 difference|
step bench_inception 120 "$D/bench_inception" --device cuda --n 64 --iters 5 --dump "$OUT/inception_pool3.bin"
[ "${TORCH:-1}" = 1 ] && step bench_torch_inception 120 python3 bench/torch_inception.py --device cuda --n 64 --iters 5 --check "$OUT/inception_pool3.bin"
[ "${IM2COL:-1}" = 1 ] && step bench_lipgan_im2col 120 "$D/bench_models" --device cuda --iters "$ITERS" --no-cudnn
if [ "${PROFILE_TEST:-1}" = 1 ]; then
    # every comparison again through the profiling table (and its report check)
    step test_backend_cuda_profiled 150 env LG_CUDA_PROFILE=1 "$D/test_backend_cuda"
    tail -3 "$OUT/test_backend_cuda_profiled.log"
    grep -E "FAIL|failed" "$OUT/test_backend_cuda_profiled.log" | head -10
fi
fi # BENCH
for f in "$OUT"/bench_*.log; do
    [ -f "$f" ] || continue  # none (BENCH=0)
    case "$f" in *bench_profile_*) continue ;; esac
    echo "-- $(basename "$f" .log)"
    cat "$f"
done
# last: the profiles (timings and checks, the table by entry, and for the
# deterministic run the 30 slowest geometries; full tables in the logs)
profile_summary() { # LOG ROWS
    awk -v rows="$2" '/^# / && /by entry and geometry/ { geo = 1; n = 0; if (rows > 0) print; next }
         geo && /^#   / { if (n++ < rows) print; next }
         { geo = 0; print }' "$1"
}
if [ -f "$OUT/bench_profile_G_nondet.log" ]; then
    echo "-- bench_profile_G_nondet (LG_CUDNN_NONDET=1; full table: bench_profile_G_nondet.log)"
    profile_summary "$OUT/bench_profile_G_nondet.log" 0
fi
if [ -f "$OUT/bench_profile_G.log" ]; then
    echo "-- bench_profile_G (full table: bench_profile_G.log)"
    profile_summary "$OUT/bench_profile_G.log" 25
fi
echo "== steps (rc):$summary"
echo "== done in $(( $(date +%s) - T0 )) s; exit status $fail"
exit $fail
