#!/bin/sh
# Inception-v3 feature extraction (FID / IS: resize to 299x299, the network,
# pool3 and the logits), lipgan vs PyTorch in one invocation, on the same
# network, synthetic weights and images (bench/bench_inception.c,
# bench/torch_inception.py), with the same thread count.
#   bench/inception.sh [--device cpu|cuda] [--n N] [--iters N]
# Defaults: cpu, 16 images of 3x32x32 per call, 3 timed calls (after one
# warm-up call). Prints each side's median ms per image and PyTorch/lipgan
# (above 1: lipgan is faster). It also checks that both sides computed the
# same thing: lipgan dumps its last timed call's pool3 and PyTorch prints the
# largest absolute difference from its own over the whole batch (a WARNING
# line above 1e-3).
# OPENBLAS_CORETYPE is left as the environment sets it.
set -e
cd "$(dirname "$0")/.."
BUILD=${BUILD:-build}
threads=${OMP_NUM_THREADS:-$(nproc)}
export OMP_NUM_THREADS="$threads"
device=cpu; n=16; iters=3
while [ $# -gt 0 ]; do
    case "$1" in
        --device) device=$2; shift ;;
        --n) n=$2; shift ;;
        --iters) iters=$2; shift ;;
        *) echo "usage: bench/inception.sh [--device cpu|cuda] [--n N] [--iters N]" >&2; exit 2 ;;
    esac
    shift
done
args="--device $device --n $n --iters $iters"
make -s BUILD="$BUILD" "$BUILD/bench/bench_inception" >/dev/null
out=$(mktemp)
dump=$(mktemp)
trap 'rm -f "$out" "$dump"' EXIT
# shellcheck disable=SC2086
"$BUILD/bench/bench_inception" $args --dump "$dump" > "$out"
if python3 -c "import torch" 2>/dev/null; then
    # shellcheck disable=SC2086
    python3 bench/torch_inception.py $args --threads "$threads" --check "$dump" >> "$out" ||
        echo "# bench/torch_inception.py failed: lipgan side only"
else
    echo "# torch not installed: lipgan side only"
fi
grep '^#' "$out"
echo "# threads $threads (OMP_NUM_THREADS for lipgan, torch.set_num_threads for PyTorch), nproc $(nproc), OPENBLAS_CORETYPE=${OPENBLAS_CORETYPE:-(unset)}"
awk '
$1 == "lipgan" { l[$2] = $3; order[++k] = $2 }
$1 == "torch"  { t[$2] = $3 }
$1 == "check"  { chk = $3 }
END {
    printf "%-24s %16s %16s %14s\n", "case", "lipgan ms/img", "PyTorch ms/img", "PyTorch/lipgan"
    for (i = 1; i <= k; i++) {
        c = order[i]
        if (c in t) printf "%-24s %16.2f %16.2f %13.2fx\n", c, l[c], t[c], t[c] / l[c]
        else        printf "%-24s %16.2f %16s %14s\n", c, l[c], "-", "-"
    }
    if (chk != "") printf "pool3 max |lipgan - PyTorch| over the batch: %s\n", chk
    # float32 rounding differences stay near 1e-5 on pool3 values of O(1)
    if (chk + 0 > 1e-3) print "WARNING: the two sides disagree: the ratio compares different computations"
}' "$out"
