#!/bin/sh
# Issue 7: one full SN-GAN CIFAR-10 training iteration (5 D updates b64 +
# 1 G update b128) on the GPU, lipgan (bench_train_iter, through the
# trainer) and PyTorch (bench/torch_train_iter.py) in the same invocation,
# in several precision modes, then a table of times and ratios.
#
#   bench/gpu_compare.sh PACKDIR|PACK.tar.gz [ITERS]      # from the repo root
#
# PACKDIR holds bench_train_iter (tests/gpu/pack.sh builds it). ITERS timed
# iterations per run (default 10; each run also warms up untimed).
# Runs, in this order, each under `timeout` (log: $OUT/NAME.log):
#   lipgan fp32 det graph | fp32 det no-graph | fp32 nondet graph |
#          tf32 det graph | bf16 det graph  (NONDET_ALL=1: + tf32, bf16 nondet)
#   torch  fp32 (TF32 off) | cudnn-default (TF32 convs, PyTorch's default) |
#          tf32 | bf16 autocast          (all eager, cudnn.benchmark on)
#   METHODS (below) other than sn, per method:
#   lipgan fp32 det graph | tf32 det graph; torch fp32 | tf32   (eager)
#   torch  fp32 + torch.compile | tf32 + torch.compile       (last, slow; sn only)
# Knobs (environment):
#   DEADLINE=480        seconds for everything; runs that would start later
#                       are skipped with a line saying so
#   RUN_TIMEOUT=120     limit of each eager run (lipgan and torch)
#   COMPILE=1           0 skips the torch.compile runs
#   COMPILE_TIMEOUT=240 limit of each torch.compile run
#   COMPILE_MODE=default  torch.compile mode (e.g. reduce-overhead)
#   NONDET_ALL=0        1 adds lipgan tf32/bf16 nondeterministic runs
#   TORCH=1             0 runs the lipgan side only
#   OUT=./gpu-compare-out  where the logs go
#   METHODS=sn          D Lipschitz methods, e.g. "sn gp sn_gp toeplitz"
#                       (bench/torch_train_iter.py --method; lipgan's
#                       settings as in bench/run.sh). sn: the runs above;
#                       each other method adds the 4 runs above and a table
#                       of its own; with the default the output is as before
#   LG_CUDNN_PATH       cuDNN 9 for lipgan; if unset, the copy inside
#                       PyTorch's wheel (as tests/gpu/device_run.sh finds it)
# A failing, timed-out or skipped run shows as n/a, timeout or skipped in
# the table and the later runs go on. Exit status: 1 if a lipgan run
# failed (not skipped), else 0.
# shellcheck disable=SC2086,SC2046  # $L, $P, $sp, $(lipgan_sets): word splitting wanted
set -u
PACK=${1:?usage: bench/gpu_compare.sh PACKDIR|PACK.tar.gz [ITERS]}
ITERS=${2:-10}
DEADLINE=${DEADLINE:-480}
RUN_TIMEOUT=${RUN_TIMEOUT:-120}
COMPILE=${COMPILE:-1}
COMPILE_TIMEOUT=${COMPILE_TIMEOUT:-240}
COMPILE_MODE=${COMPILE_MODE:-default}
NONDET_ALL=${NONDET_ALL:-0}
TORCH=${TORCH:-1}
METHODS=${METHODS:-sn}
OUT=${OUT:-$PWD/gpu-compare-out}
case "$PACK" in /*) ;; *) PACK=$PWD/$PACK ;; esac
case "$OUT" in /*) ;; *) OUT=$PWD/$OUT ;; esac
T0=$(date +%s)
cd "$(dirname "$0")/.." || exit 1
mkdir -p "$OUT" || exit 1
if [ -f "$PACK" ]; then
    D=$(mktemp -d)
    tar xf "$PACK" -C "$D" || exit 1
else
    D=$PACK
fi
if [ -z "${FAKE_RUNS:-}" ] && [ ! -x "$D/bench_train_iter" ]; then
    echo "gpu_compare: no $D/bench_train_iter (build the pack with tests/gpu/pack.sh)" >&2
    exit 1
fi

echo "== $(date -u '+%Y-%m-%d %H:%M UTC'); $(nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader 2>/dev/null)"
. tests/gpu/find_cudnn.sh  # the cwd is the repository root (above)
echo "== LG_CUDNN_PATH=${LG_CUDNN_PATH:-<not found: lipgan falls back to im2col>}"
if [ "$TORCH" = 1 ] && ! python3 -c "import torch" 2>/dev/null; then
    echo "== python3 cannot import torch: lipgan side only"
    TORCH=0
fi
echo "== ITERS=$ITERS DEADLINE=${DEADLINE}s RUN_TIMEOUT=${RUN_TIMEOUT}s COMPILE=$COMPILE (${COMPILE_TIMEOUT}s, mode $COMPILE_MODE) NONDET_ALL=$NONDET_ALL"
[ "$METHODS" = sn ] || echo "== METHODS=$METHODS"
# lipgan's config overrides per method (as bench/run.sh, torch_train_iter.py's METHOD_SETS)
lipgan_sets() {
    case "$1" in
        gp) echo "--set loss=wasserstein --set lipschitz.d.sn=false --set lipschitz.d.gp_lambda=10" ;;
        sn_gp) echo "--set loss=wasserstein --set lipschitz.d.gp_lambda=10" ;;
        toeplitz) echo "--set lipschitz.d.sn=false --set lipschitz.d.toeplitz_k=1" ;;
        *) return 1 ;;
    esac
}
extra=""  # the methods other than sn
for m in $METHODS; do
    [ "$m" = sn ] && continue
    if lipgan_sets "$m" >/dev/null; then extra="$extra $m"
    else echo "== METHODS: unknown method '$m' (sn, gp, sn_gp, toeplitz): skipped"; fi
done

lipfail=0
run() { # run NAME SECONDS CMD...: log in $OUT/NAME.log, status in $OUT/NAME.rc
    name=$1 secs=$2
    shift 2
    left=$(( DEADLINE - ($(date +%s) - T0) ))
    if [ "$left" -lt 20 ]; then
        echo "== $name: skipped (DEADLINE ${DEADLINE}s reached, ${left}s left)"
        echo skipped >"$OUT/$name.rc"
        : >"$OUT/$name.log"
        return 0
    fi
    [ "$secs" -gt "$left" ] && secs=$left
    t0=$(date +%s)
    if [ -n "${FAKE_RUNS:-}" ]; then # testing the table: logs were put in $OUT
        rc=$(cat "$OUT/$name.rc" 2>/dev/null || echo 0)
    else
        timeout "$secs" "$@" >"$OUT/$name.log" 2>&1
        rc=$?
        echo "$rc" >"$OUT/$name.rc"
    fi
    echo "== $name: rc=$rc ($(( $(date +%s) - t0 )) s, limit ${secs}s)"
    case "$name" in lipgan_*) [ "$rc" = 0 ] || lipfail=1 ;; esac
    return 0
}

L="$D/bench_train_iter --device cuda --iters $ITERS"
run lipgan_fp32_det_graph "$RUN_TIMEOUT" $L --precision fp32
run lipgan_fp32_det_nograph "$RUN_TIMEOUT" $L --precision fp32 --no-graph
run lipgan_fp32_nondet_graph "$RUN_TIMEOUT" $L --precision fp32 --nondet
run lipgan_tf32_det_graph "$RUN_TIMEOUT" $L --precision tf32
run lipgan_bf16_det_graph "$RUN_TIMEOUT" $L --precision bf16
if [ "$NONDET_ALL" = 1 ]; then
    run lipgan_tf32_nondet_graph "$RUN_TIMEOUT" $L --precision tf32 --nondet
    run lipgan_bf16_nondet_graph "$RUN_TIMEOUT" $L --precision bf16 --nondet
fi
P="python3 bench/torch_train_iter.py --device cuda --iters $ITERS"
if [ "$TORCH" = 1 ]; then
    run torch_fp32 "$RUN_TIMEOUT" $P
    run torch_cudnn_default "$RUN_TIMEOUT" $P --cudnn-default
    run torch_tf32 "$RUN_TIMEOUT" $P --tf32
    run torch_bf16 "$RUN_TIMEOUT" $P --bf16
fi
for m in $extra; do
    run "lipgan_fp32_det_graph_$m" "$RUN_TIMEOUT" $L --precision fp32 $(lipgan_sets "$m")
    run "lipgan_tf32_det_graph_$m" "$RUN_TIMEOUT" $L --precision tf32 $(lipgan_sets "$m")
    if [ "$TORCH" = 1 ]; then
        run "torch_fp32_$m" "$RUN_TIMEOUT" $P --method "$m"
        run "torch_tf32_$m" "$RUN_TIMEOUT" $P --method "$m" --tf32
    fi
done
if [ "$TORCH" = 1 ]; then
    if [ "$COMPILE" = 1 ]; then
        run torch_fp32_compile "$COMPILE_TIMEOUT" $P --compile --compile-mode "$COMPILE_MODE"
        run torch_tf32_compile "$COMPILE_TIMEOUT" $P --tf32 --compile --compile-mode "$COMPILE_MODE"
    fi
fi

# ---- report ----
# val NAME: the run's median ms, or why there is none
val() {
    f=$OUT/$1.log
    rc=$(cat "$OUT/$1.rc" 2>/dev/null || echo none)
    v=$(awk '($1 == "lipgan" || $1 == "torch") && $2 ~ /^train_iter/ && $3 ~ /^[0-9.]+$/ { v = $3 }
             END { print v }' "$f" 2>/dev/null)
    if [ -n "$v" ]; then echo "$v"
    elif [ "$rc" = none ]; then echo "-"
    elif [ "$rc" = skipped ]; then echo skipped
    elif [ "$rc" = 124 ] || [ "$rc" = 137 ]; then echo timeout
    elif grep -q " FAILED: " "$f" 2>/dev/null; then echo failed
    else echo n/a
    fi
}
# ratio A B: A/B as "1.23x" when both are numbers, else "-"
ratio() {
    awk -v a="$1" -v b="$2" 'BEGIN {
        if (a ~ /^[0-9.]+$/ && b ~ /^[0-9.]+$/ && b + 0 > 0) printf "%.2fx", a / b; else printf "-" }'
}
row() { # row LABEL LIPGAN_RUN TORCH_RUN [COMPILE_RUN]
    l=$(val "$2") t=$(val "$3")
    if [ -n "${4:-}" ]; then c=$(val "$4"); else c="-"; fi
    printf "%-44s %10s %10s %8s %11s %9s\n" "$1" "$l" "$t" "$(ratio "$t" "$l")" "$c" "$(ratio "$c" "$l")"
}
echo
echo "-- settings (the '# ' lines of each log)"
for f in "$OUT"/lipgan_*.log "$OUT"/torch_*.log; do
    [ -f "$f" ] || continue
    n=$(basename "$f" .log)
    grep -E '^# (device|torch|WARNING)' "$f" | sed "s/^/$n: /" | head -3
    case "$(val "$n")" in
        n/a|failed|timeout) echo "$n: $(val "$n"); last lines:"; grep -v '^#' "$f" | tail -3 | sed 's/^/    /' ;;
    esac
done
echo
echo "-- one full SN-GAN iteration (5 D b64 + 1 G b128), median of $ITERS, ms; ratios = torch/lipgan (>1: lipgan faster)"
printf "%-44s %10s %10s %8s %11s %9s\n" "mode (lipgan | torch)" "lipgan" "torch" "ratio" "torch.comp" "ratio"
row "fp32 det graph | fp32 (TF32 off)" lipgan_fp32_det_graph torch_fp32 torch_fp32_compile
row "fp32 det no-graph | fp32 (TF32 off)" lipgan_fp32_det_nograph torch_fp32 torch_fp32_compile
row "fp32 nondet graph | fp32 (TF32 off)" lipgan_fp32_nondet_graph torch_fp32 torch_fp32_compile
row "tf32 det graph | tf32" lipgan_tf32_det_graph torch_tf32 torch_tf32_compile
[ "$NONDET_ALL" = 1 ] && row "tf32 nondet graph | tf32" lipgan_tf32_nondet_graph torch_tf32 torch_tf32_compile
row "bf16 det graph | bf16 autocast" lipgan_bf16_det_graph torch_bf16
[ "$NONDET_ALL" = 1 ] && row "bf16 nondet graph | bf16 autocast" lipgan_bf16_nondet_graph torch_bf16
row "defaults: fp32 det graph | cudnn-default" lipgan_fp32_det_graph torch_cudnn_default
row "tf32 det graph | cudnn-default (TF32 convs)" lipgan_tf32_det_graph torch_cudnn_default
for m in $extra; do
    echo
    echo "-- method $m: one full iteration (5 D b64 + 1 G b128), median of $ITERS, ms; ratios = torch/lipgan"
    printf "%-44s %10s %10s %8s %11s %9s\n" "mode (lipgan | torch), $m" "lipgan" "torch" "ratio" "torch.comp" "ratio"
    row "fp32 det graph | fp32 (TF32 off)" "lipgan_fp32_det_graph_$m" "torch_fp32_$m"
    row "tf32 det graph | tf32" "lipgan_tf32_det_graph_$m" "torch_tf32_$m"
done
echo "== logs in $OUT; done in $(( $(date +%s) - T0 )) s"
exit $lipfail
