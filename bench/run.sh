#!/bin/sh
# Side-by-side benchmark: lipgan vs PyTorch (same invocation, same machine).
#   bench/run.sh [--iters N] [--train-iters N] [--sn] [--device cpu|cuda] [--unset-coretype]
# Cases: ResNet D fwd+bwd (b64), G fwd+bwd (b128), and one full SN-GAN
# training iteration (5 D steps b64 + 1 G step b128; TRAIN_ITER=0 skips it).
# --unset-coretype unsets OPENBLAS_CORETYPE (and OPENBLAS_L2_SIZE) for BOTH
# sides, as the benchmark may; by default the environment is left as it is.
set -e
cd "$(dirname "$0")/.."
BUILD=${BUILD:-build}
args=""; iter_args=""; unset_ct=0
while [ $# -gt 0 ]; do
    case "$1" in
        --unset-coretype) unset_ct=1 ;;
        --iters) args="$args $1 $2"; shift ;;
        --train-iters) iter_args="$iter_args --iters $2"; shift ;;
        --device) args="$args $1 $2"; iter_args="$iter_args $1 $2"; shift ;;
        *) args="$args $1" ;;
    esac
    shift
done
if [ "$unset_ct" = 1 ]; then
    echo "# OPENBLAS_CORETYPE and OPENBLAS_L2_SIZE unset for both sides"
    unset OPENBLAS_CORETYPE OPENBLAS_L2_SIZE
else
    echo "# OPENBLAS_CORETYPE=${OPENBLAS_CORETYPE:-<unset>} for both sides"
fi
threads=${OMP_NUM_THREADS:-$(nproc)}
export OMP_NUM_THREADS=$threads
make -s BUILD=$BUILD $BUILD/bench/bench_models $BUILD/bench/bench_train_iter >/dev/null
out=$(mktemp)
$BUILD/bench/bench_models $args > "$out"
[ "${TRAIN_ITER:-1}" = 1 ] && $BUILD/bench/bench_train_iter $iter_args >> "$out"
if python3 -c "import torch" 2>/dev/null; then
    python3 bench/torch_models.py --threads "$threads" $args 2>/dev/null >> "$out"
    [ "${TRAIN_ITER:-1}" = 1 ] && (cd bench && python3 torch_train_iter.py --threads "$threads" $iter_args 2>/dev/null) >> "$out"
else
    echo "# torch not installed: lipgan side only"
fi
awk '
  $1=="lipgan" {l[$2]=$3} $1=="torch" {t[$2]=$3}
  END {
    printf "%-22s %12s %12s %10s\n", "case", "lipgan ms", "torch ms", "torch/lipgan";
    for (k in l) printf "%-22s %12.2f %12s %10s\n", k, l[k], (k in t) ? sprintf("%.2f", t[k]) : "-", (k in t) ? sprintf("%.2fx", t[k]/l[k]) : "-";
  }' "$out"
rm -f "$out"
