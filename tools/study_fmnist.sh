#!/bin/sh
# Fashion-MNIST study: the same base setup (configs/fmnist_sn_hinge.yaml: standard
# CNN, hinge loss) trained under each Lipschitz method of lipgan, with --set
# overrides only, one run after another, then every final checkpoint evaluated the
# same way (lipgan eval: cfid,classes against the whole training set's classifier
# statistics) and D's spectra taken (lipgan spectra). Results: docs/STUDY_FMNIST.md.
#
#   tools/study_fmnist.sh OUTDIR [STEPS]
#
# OUTDIR gets one run directory per method (OUTDIR/<method>/) holding the run,
# train.log, time.txt (wall seconds of `lipgan train`, its exit code), eval.json,
# spectra.txt / spectra.json; OUTDIR/fm_classifier_stats.safetensors (made once) and
# OUTDIR/summary.tsv (needs jq; skipped without it). A method whose eval.json exists
# is skipped, so a second call finishes an interrupted study (a half-written run
# directory must be removed first: lipgan refuses a fresh run into it).
#
# Environment (defaults in brackets):
#   LIPGAN     the CLI [build/lipgan]
#   STEPS      generator updates, also the 2nd argument [1000]
#   SEED       seed of every run [0]
#   NDIS_WGAN  D updates per G update for wgan_gp and clip; the base config's n_dis
#              is 1 (Miyato et al.'s CNN setting), the WGAN-GP and WGAN papers use 5 [1]
#   METHODS    space-separated subset of the methods below, in that order [all]
#   EVAL_N     samples per evaluation [10000]
#   NICE       prefix of every heavy command ["nice -n 19"]
set -eu

usage() { echo "usage: $0 OUTDIR [STEPS]" >&2; exit 2; }
if [ $# -lt 1 ] || [ $# -gt 2 ]; then usage; fi
OUT=$1
STEPS=${2:-${STEPS:-1000}}
LIPGAN=${LIPGAN:-build/lipgan}
SEED=${SEED:-0}
NDIS_WGAN=${NDIS_WGAN:-1}
EVAL_N=${EVAL_N:-10000}
NICE=${NICE:-nice -n 19}
CONFIG=configs/fmnist_sn_hinge.yaml
DATA=/usr/share/datasets/fashion-mnist
ALL="sn none wgan_gp sn_gp toeplitz1 srgan clip gclamp"
METHODS=${METHODS:-$ALL}

[ -x "$LIPGAN" ] || { echo "$0: $LIPGAN not found; run make or set LIPGAN" >&2; exit 2; }
[ -f "$CONFIG" ] || { echo "$0: run from the repository root ($CONFIG not found)" >&2; exit 2; }
mkdir -p "$OUT"
# One thread everywhere: BLAS and OpenMP too, so nothing competes with other work.
export OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1

# The --set overrides of each method, on top of CONFIG.
method_sets() {
    case $1 in
    sn)        echo "" ;;                                   # the config as is
    none)      echo "lipschitz.d.sn=false" ;;
    wgan_gp)   echo "loss=wasserstein lipschitz.d.sn=false lipschitz.d.gp_lambda=10 train.n_dis=$NDIS_WGAN" ;;
    sn_gp)     echo "loss=wasserstein lipschitz.d.gp_lambda=10" ;;   # the thesis' WGAN-GP: GP on top of SN
    toeplitz1) echo "lipschitz.d.toeplitz_k=1" ;;
    srgan)     echo "lipschitz.d.sr_gamma=0.5 lipschitz.d.sr_every=1" ;;  # sr_every = n_dis (1)
    # WGAN: RMSProp replaces Adam; the config's Adam betas are refused with RMSProp
    # unless at their defaults (0, 0.9), hence the resets.
    clip)      echo "loss=wasserstein lipschitz.d.sn=false lipschitz.d.clip=0.01 model.d.bn=true train.n_dis=$NDIS_WGAN
                     optim.d.kind=rmsprop optim.d.lr=5e-5 optim.d.beta1=0 optim.d.beta2=0.9
                     optim.g.kind=rmsprop optim.g.lr=5e-5 optim.g.beta1=0 optim.g.beta2=0.9" ;;
    gclamp)    echo "lipschitz.d.clamp_ratio=2" ;;          # on top of SN
    *) echo "$0: unknown method '$1' (one of: $ALL)" >&2; return 1 ;;
    esac
}

STATS=$OUT/fm_classifier_stats.safetensors
if [ ! -f "$STATS" ]; then
    echo "== reference statistics (classifier features, all 60000 training images)"
    $NICE "$LIPGAN" fid-stats "$DATA" --features classifier --threads 1 --quiet --out "$STATS"
fi

for m in $METHODS; do
    sets=$(method_sets "$m")
    dir=$OUT/$m
    if [ -f "$dir/eval.json" ]; then echo "== $m: done before, skipped"; continue; fi
    args="--set threads=1 --set seed=$SEED --set train.steps=$STEPS --set eval.every=0"
    for s in $sets; do args="$args --set $s"; done
    echo "== $m: $LIPGAN train $CONFIG $args --out $dir"
    # Validate the overrides before spending time (exit 4 names a bad key).
    # $args is split on purpose (no value holds a space).
    # shellcheck disable=SC2086
    "$LIPGAN" train "$CONFIG" $args --print-config > /dev/null
    t0=$(date +%s)
    rc=0
    # shellcheck disable=SC2086
    $NICE "$LIPGAN" train "$CONFIG" $args --out "$dir" > "$OUT/$m.train.log" 2>&1 || rc=$?
    t1=$(date +%s)
    mv "$OUT/$m.train.log" "$dir/train.log" 2>/dev/null || true
    echo "wall_s $((t1 - t0)) steps $STEPS rc $rc" > "$dir/time.txt"
    echo "   train: $((t1 - t0)) s, exit $rc (5 = diverged: the last good checkpoint is evaluated)"
    erc=0
    $NICE "$LIPGAN" eval "$dir" --metrics cfid,classes --n "$EVAL_N" --ref "$STATS" \
        --threads 1 --seed 0 --json --quiet > "$dir/eval.json" || erc=$?
    [ $erc -eq 0 ] || echo "{\"eval_exit\":$erc}" > "$dir/eval.json"
    echo "   eval: $(cat "$dir/eval.json")"
    $NICE "$LIPGAN" spectra "$dir" --filter D. --threads 1 > "$dir/spectra.txt" 2>&1 || true
    $NICE "$LIPGAN" spectra "$dir" --filter D. --threads 1 --json > "$dir/spectra.json" 2>/dev/null || true
done

command -v jq > /dev/null || { echo "jq not found: no summary.tsv"; exit 0; }
{
    printf 'method\tcfid\tclasses\tkl_uniform\ttrain_rc\ts_per_step\tfinal_loss_d\tfinal_loss_g\n'
    for m in $METHODS; do
        dir=$OUT/$m
        [ -f "$dir/eval.json" ] || continue
        # shellcheck disable=SC2046
        set -- $(cat "$dir/time.txt")   # wall_s W steps S rc R
        ev=$(jq -r '[(.cfid.value // "-"), (.classes.covered // "-"), (.classes.kl_uniform // "-")] | @tsv' "$dir/eval.json")
        last=$(grep '"loss_d"' "$dir/metrics.jsonl" | tail -n 1 | jq -r '[.loss_d, .loss_g] | @tsv')
        printf '%s\t%s\t%s\t%s\t%s\n' "$m" "$ev" "$6" \
            "$(awk -v w="$2" -v s="$4" 'BEGIN { printf "%.3f", w / s }')" "$last"
    done
} > "$OUT/summary.tsv"
cat "$OUT/summary.tsv"
