#!/bin/sh
# Side-by-side benchmark: lipgan vs PyTorch (same invocation, same machine).
#   bench/run.sh [--iters N] [--train-iters N] [--sn] [--device cpu|cuda] [--unset-coretype]
#                [--method M ...] [--arch resnet|cnn] [--d-width N] [--g-width N]
# Cases: ResNet D fwd+bwd (b64), G fwd+bwd (b128) (MODELS=0 skips them), and
# one full training iteration (5 D steps b64 + 1 G step b128; TRAIN_ITER=0
# skips it) per D Lipschitz method: --method sn|gp|sn_gp|toeplitz (repeat
# it, or METHODS="sn gp sn_gp toeplitz"; default sn, the SN-GAN iteration;
# see bench/torch_train_iter.py for what each runs on both sides).
# --arch sets both networks of the iteration on BOTH sides: resnet (the
# default, the SN-GAN ResNets) or cnn, the "standard CNN" of Miyato et al.
# 2018 (lipgan: --set model.d.arch=cnn --set model.g.arch=cnn
# --set model.d.width=64 --set model.g.width=64, its cnn default base width,
# as bench_train_iter's config file sets the ResNets' 128 / 256; PyTorch:
# torch_train_iter.py --arch cnn, DCNN / GCNN of torch_models.py). The model
# cases (bench_models, torch_models.py) are always the ResNets.
# --d-width / --g-width set D's / G's channels of the iteration on BOTH
# sides (lipgan: model.d.width / model.g.width; default 128 / 256; with
# --arch cnn the base width ch, default 64 / 64).
# Both sides' parameter counts are printed ('# parameters D N G M'); a
# method whose two sides differ gets a WARNING line.
# On the CPU it also prints each side's peak resident memory for the
# iteration (GNU time's maximum RSS of the process; skipped without
# /usr/bin/time).
# --unset-coretype unsets OPENBLAS_CORETYPE (and OPENBLAS_L2_SIZE) for BOTH
# sides, as the benchmark may; by default the environment is left as it is.
# shellcheck disable=SC2086,SC2046  # word splitting of the argument lists wanted
set -e
cd "$(dirname "$0")/.."
BUILD=${BUILD:-build}
args=""; iter_args=""; unset_ct=0; methods=""; arch=resnet; dw=""; gw=""
while [ $# -gt 0 ]; do
    case "$1" in
        --unset-coretype) unset_ct=1 ;;
        --iters) args="$args $1 $2"; shift ;;
        --train-iters) iter_args="$iter_args --iters $2"; shift ;;
        --device) args="$args $1 $2"; iter_args="$iter_args $1 $2"; shift ;;
        --method) methods="$methods $2"; shift ;;
        --arch) arch=$2; shift ;;
        --d-width) dw=$2; shift ;;
        --g-width) gw=$2; shift ;;
        *) args="$args $1" ;;
    esac
    shift
done
methods=${methods:-${METHODS:-sn}}
# the iteration's networks: lipgan's --set list (lw) and torch's flags (tw)
lw=""; tw=""
case "$arch" in
    resnet) ;;
    cnn) lw="--set model.d.arch=cnn --set model.g.arch=cnn"; tw="--arch cnn"
         dw=${dw:-64}; gw=${gw:-64} ;;
    *) echo "bench/run.sh: unknown arch '$arch' (resnet, cnn)" >&2; exit 2 ;;
esac
[ -n "$dw" ] && lw="$lw --set model.d.width=$dw" && tw="$tw --d-width $dw"
[ -n "$gw" ] && lw="$lw --set model.g.width=$gw" && tw="$tw --g-width $gw"
# lipgan's config overrides per method (the same as METHOD_SETS in torch_train_iter.py)
lipgan_sets() {
    case "$1" in
        sn) echo "" ;;
        gp) echo "--set loss=wasserstein --set lipschitz.d.sn=false --set lipschitz.d.gp_lambda=10" ;;
        sn_gp) echo "--set loss=wasserstein --set lipschitz.d.gp_lambda=10" ;;
        toeplitz) echo "--set lipschitz.d.sn=false --set lipschitz.d.toeplitz_k=1" ;;
        *) echo "bench/run.sh: unknown method '$1' (sn, gp, sn_gp, toeplitz)" >&2; return 1 ;;
    esac
}
for m in $methods; do lipgan_sets "$m" >/dev/null || exit 2; done
if [ "$unset_ct" = 1 ]; then
    echo "# OPENBLAS_CORETYPE and OPENBLAS_L2_SIZE unset for both sides"
    unset OPENBLAS_CORETYPE OPENBLAS_L2_SIZE
else
    echo "# OPENBLAS_CORETYPE=${OPENBLAS_CORETYPE:-<unset>} for both sides"
fi
threads=${OMP_NUM_THREADS:-$(nproc)}
export OMP_NUM_THREADS=$threads
make -s BUILD=$BUILD $BUILD/bench/bench_models $BUILD/bench/bench_train_iter >/dev/null
have_torch=0
if python3 -c "import torch" 2>/dev/null; then have_torch=1; else echo "# torch not installed: lipgan side only"; fi
[ -n "$lw" ] && echo "# training iteration networks: $lw (lipgan) / $tw (torch)"
out=$(mktemp)
if [ "${MODELS:-1}" = 1 ]; then
    $BUILD/bench/bench_models $args > "$out"
    [ "$have_torch" = 1 ] && python3 bench/torch_models.py --threads "$threads" $args 2>/dev/null >> "$out"
fi
# peak resident memory of each side's iteration process (GNU time; on cuda
# it is host memory only, so it is measured on the CPU alone)
mem=$(mktemp)
memcmd=""
case "$iter_args" in *cuda*) ;; *) [ -x /usr/bin/time ] && memcmd="/usr/bin/time -q -f %M -o $mem" ;; esac
if [ "${TRAIN_ITER:-1}" = 1 ]; then
    for m in $methods; do # both sides of one method back to back
        echo "# method $m: lipgan $(lipgan_sets "$m") $lw" >&2
        $memcmd $BUILD/bench/bench_train_iter $iter_args $(lipgan_sets "$m") $lw >> "$out"
        [ -n "$memcmd" ] && echo "mem lipgan $m $(tail -n 1 "$mem")" >> "$out"
        if [ "$have_torch" = 1 ]; then
            (cd bench && $memcmd python3 torch_train_iter.py --threads "$threads" --method "$m" $tw $iter_args 2>/dev/null) >> "$out"
            [ -n "$memcmd" ] && echo "mem torch $m $(tail -n 1 "$mem")" >> "$out"
        fi
    done
fi
rm -f "$mem"
grep '^# parameters' "$out" || true # both sides' counts, one line per side and method
# the two sides must build the same networks: the counts of a method agree
awk '/^# parameters D / { k = $NF; v = $4 " " $6; if (k in seen && seen[k] != v)
         printf "# WARNING: method %s: parameter counts differ (D G: %s against %s)\n", k, seen[k], v;
       seen[k] = v }' "$out"
[ -n "${KEEP_LOG:-}" ] && cp "$out" "$KEEP_LOG"
# rows: the model cases by name, the iteration as "train_iter <method>" ($4)
awk '
  $1=="mem" && $2=="lipgan" { ml[$3] = $4; next }
  $1=="mem" && $2=="torch" { mt[$3] = $4; next }
  $1=="lipgan" || $1=="torch" { k = $2; if (NF >= 4) k = k " " $4 }
  $1=="lipgan" {l[k]=$3} $1=="torch" {t[k]=$3}
  END {
    printf "%-22s %12s %12s %10s\n", "case", "lipgan ms", "torch ms", "torch/lipgan";
    for (k in l) printf "%-22s %12.2f %12s %10s\n", k, l[k], (k in t) ? sprintf("%.2f", t[k]) : "-", (k in t) ? sprintf("%.2fx", t[k]/l[k]) : "-";
    nm = 0; for (k in ml) nm++;
    if (nm) printf "%-22s %12s %12s %10s\n", "peak RSS, iteration", "lipgan MiB", "torch MiB", "torch/lipgan";
    for (k in ml) printf "%-22s %12.0f %12s %10s\n", "train_iter " k, ml[k] / 1024, (k in mt) ? sprintf("%.0f", mt[k] / 1024) : "-", (k in mt) ? sprintf("%.2fx", mt[k]/ml[k]) : "-";
  }' "$out"
rm -f "$out"
