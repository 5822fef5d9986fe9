#!/bin/sh
# ReLU fusion, lipgan vs PyTorch in one invocation: a layer's bias add + ReLU
# and ReLU's backward, as lipgan's former two kernels, its fused kernel, and
# PyTorch eager's kernels for the same work (bench/bench_relu.c,
# bench/torch_relu.py).
#   bench/relu.sh [--reps N] [--device cpu|cuda]
# OPENBLAS_CORETYPE is left as the environment sets it (no BLAS runs here).
set -e
cd "$(dirname "$0")/.."
BUILD=${BUILD:-build}
threads=${OMP_NUM_THREADS:-$(nproc)}
export OMP_NUM_THREADS=$threads
make -s BUILD=$BUILD $BUILD/bench/bench_relu >/dev/null
out=$(mktemp)
$BUILD/bench/bench_relu "$@" > "$out"
if python3 -c "import torch" 2>/dev/null; then
    python3 bench/torch_relu.py --threads "$threads" "$@" 2>/dev/null >> "$out"
else
    echo "# torch not installed: lipgan side only"
fi
# rows: case, lipgan ms, torch ms (same work), torch/lipgan
awk '
$1 == "lipgan" { l[$2] = $3; order[++k] = $2 }
$1 == "torch"  { t[$2] = $3 }
END {
    printf "%-32s %12s %12s %14s\n", "case", "lipgan ms", "PyTorch ms", "PyTorch/lipgan"
    for (i = 1; i <= k; i++) {
        c = order[i]; tc = c
        # PyTorch does each piece of work one way: both lipgan variants race it
        sub(/^bias_relu_(2k_)?/, "bias_relu_2k_", tc); sub(/^relu_bwd_(2k_)?/, "relu_bwd_", tc)
        if (tc in t) printf "%-32s %12.3f %12.3f %13.2fx\n", c, l[c], t[tc], t[tc] / l[c]
        else         printf "%-32s %12.3f %12s %14s\n", c, l[c], "-", "-"
    }
}' "$out"
rm -f "$out"
