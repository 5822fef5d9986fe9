#!/bin/sh
# Convolutions, lipgan vs PyTorch in one invocation: each pass of each
# convolution of the standard CNN (bench/bench_conv.c, bench/torch_conv.py),
# lipgan with the algorithm its CPU dispatch picks and with LG_CPU_WINO=0
# (im2col + SGEMM only), PyTorch eager (oneDNN) on the same shapes and
# thread count.
#   bench/conv.sh [--reps N] [--only SUBSTRING] [--unset-coretype]
# OPENBLAS_CORETYPE is left as the environment sets it; --unset-coretype
# unsets it for all three runs (OpenBLAS then picks its kernels by CPU).
set -e
cd "$(dirname "$0")/.."
BUILD=${BUILD:-build}
threads=${OMP_NUM_THREADS:-$(nproc)}
export OMP_NUM_THREADS="$threads"
args=""
for a in "$@"; do
    if [ "$a" = "--unset-coretype" ]; then unset OPENBLAS_CORETYPE; else args="$args $a"; fi
done
make -s BUILD="$BUILD" "$BUILD/bench/bench_conv" >/dev/null
out=$(mktemp)
trap 'rm -f "$out"' EXIT
# shellcheck disable=SC2086
"$BUILD/bench/bench_conv" $args > "$out"
# shellcheck disable=SC2086
LG_CPU_WINO=0 "$BUILD/bench/bench_conv" $args | sed 's/^lipgan /im2col /' >> "$out"
if python3 -c "import torch" 2>/dev/null; then
    # shellcheck disable=SC2086
    python3 bench/torch_conv.py --threads "$threads" $args 2>/dev/null >> "$out" ||
        echo "# bench/torch_conv.py failed: lipgan side only"
else
    echo "# torch not installed: lipgan side only"
fi
echo "# threads $threads, OPENBLAS_CORETYPE=${OPENBLAS_CORETYPE:-(unset)}"
awk '
$1 == "lipgan" { l[$2] = $3; order[++k] = $2 }
$1 == "im2col" { m[$2] = $3 }
$1 == "torch"  { t[$2] = $3 }
function r(a, b) { return (a == "" || b == "") ? "-" : sprintf("%.2fx", a / b) }
END {
    printf "%-40s %10s %10s %10s %13s %14s\n", "case", "lipgan ms", "im2col ms", "PyTorch ms",
        "im2col/lipgan", "PyTorch/lipgan"
    for (i = 1; i <= k; i++) {
        c = order[i]
        printf "%-40s %10.3f %10s %10s %13s %14s\n", c, l[c], (c in m) ? m[c] : "-",
            (c in t) ? t[c] : "-", r(m[c], l[c]), r(t[c], l[c])
    }
}' "$out"
