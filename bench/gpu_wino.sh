#!/bin/sh
# What lipgan's Winograd convolution candidates (src/backend/cuda/cuda_winograd.cu)
# do to one full SN-GAN CIFAR-10 iteration on the GPU, fp32, in one invocation:
# the iteration with them excluded (LG_CUDA_WINO=0), then with them racing cuDNN
# and im2col as by default, then which passes each variant won (from
# LG_CUDNN_VERBOSE=1's "chosen:" lines of the second run) and the ratio.
#
#   bench/gpu_wino.sh PACKDIR [ITERS]      # from the repo root; PACKDIR from tests/gpu/pack.sh
#
# Logs: $OUT (default ./gpu-wino-out). Both runs are deterministic fp32 with
# CUDA graphs (the defaults); each picks its algorithms by timing in its own
# process, so run it twice before trusting a few-percent difference.
set -u
cd "$(dirname "$0")/.."
D=${1:?usage: bench/gpu_wino.sh PACKDIR [ITERS]}
ITERS=${2:-10}
OUT=${OUT:-$PWD/gpu-wino-out}
mkdir -p "$OUT"
. tests/gpu/find_cudnn.sh
run() { # run NAME ENV...: median ms of bench_train_iter, or n/a
    name=$1
    shift
    env "$@" timeout 300 "$D/bench_train_iter" --device cuda --iters "$ITERS" \
        >"$OUT/$name.log" 2>"$OUT/$name.err"
    awk '$1 == "lipgan" && $2 == "train_iter" { print $3; f = 1 } END { if (!f) print "n/a" }' \
        "$OUT/$name.log"
}
off=$(run wino_off LG_CUDA_WINO=0)
on=$(run wino_on LG_CUDNN_VERBOSE=1)
f2=$(grep -c 'chosen: winograd F(2x2' "$OUT/wino_on.err")
f4=$(grep -c 'chosen: winograd F(4x4' "$OUT/wino_on.err")
other=$(grep -c 'chosen: ' "$OUT/wino_on.err")
bad=$(grep -c 'differed from im2col' "$OUT/wino_on.err" "$OUT/wino_on.log" | awk -F: '{ s += $2 } END { print s + 0 }')
echo "SN-GAN iteration, fp32 (ms, median of $ITERS): Winograd excluded $off, Winograd racing $on"
awk -v a="$off" -v b="$on" 'BEGIN { if (a + 0 > 0 && b + 0 > 0) printf "speedup from the Winograd candidates: %.3fx\n", a / b }'
echo "passes chosen: F(2x2,3x3) $f2, F(4x4,3x3) $f4, of $other chosen passes; mismatch reports: $bad"
