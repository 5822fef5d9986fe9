#!/bin/sh
# Valgrind memcheck over short CLI runs and the file-format tests (`make
# memcheck`, part of `make check`). It finds what the sanitizer build cannot:
# reads of uninitialized memory (ASan and UBSan do not track definedness, and
# MSan would need OpenBLAS rebuilt). Runs on $BUILD (CUDA=0 MPI=0, so no
# driver or MPI library is loaded under valgrind), one thread, small shapes.
# Prints one line a case and exits 1 if any case reports an error.
set -u
B=${BUILD:-build-memcheck}
W=$(mktemp -d /tmp/lg_memcheck.XXXXXX)
trap 'rm -rf "$W"' EXIT
export OMP_NUM_THREADS=1
VG="valgrind --error-exitcode=99 --track-origins=yes -q"

# a tiny MNIST-layout folder: 64 random 28x28 images, every label 0
mkdir -p "$W/idx"
{ printf '\000\000\010\003\000\000\000\100\000\000\000\034\000\000\000\034'; head -c 50176 /dev/urandom; } \
    > "$W/idx/train-images-idx3-ubyte"
{ printf '\000\000\010\001\000\000\000\100'; head -c 64 /dev/zero; } > "$W/idx/train-labels-idx1-ubyte"
cat > "$W/img.yaml" <<EOF
data: {format: fashion-mnist, path: $W/idx, image_size: 32}
model: {z_dim: 8, g: {arch: cnn, width: 4, bn: true}, d: {arch: cnn, width: 4}}
loss: hinge
lipschitz: {d: {sn: true}}
train: {steps: 2, n_dis: 1, batch_d: 8, batch_g: 8}
seed: 1
threads: 1
log: {every: 1, samples_every: 2, checkpoint_every: 2, keep: 1, sample_n: 4, spectra_every: 1}
EOF

fails=0
run() { # name, command...
    name=$1
    shift
    t0=$(date +%s)
    $VG "$@" > "$W/out" 2>&1
    rc=$?
    dt=$(($(date +%s) - t0))
    n=$(grep -c '^==[0-9]*==' "$W/out")
    if [ "$rc" = 99 ] || [ "$n" != 0 ] || [ "$rc" != 0 ]; then
        echo "FAIL memcheck $name (exit $rc, $n valgrind lines)"
        sed -n '1,60p' "$W/out" | sed 's/^/    /'
        fails=$((fails + 1))
    else
        echo "PASS memcheck $name (${dt}s)"
    fi
}

L=$B/lipgan
TOY="--set data.toy_n=2000 --set train.batch_d=32 --set train.batch_g=32 --set model.g.width=32 \
    --set model.d.width=32 --set threads=1"
run "train toy ring8 (SN, eval, spectra, samples)" $L train configs/toy_ring8.yaml --out "$W/ring" --quiet $TOY \
    --set train.steps=20 --set log.every=10 --set eval.every=20 --set eval.n=200 --set log.spectra_every=10 \
    --set log.samples_every=20
run "train toy ring8 (WGAN-GP)" $L train configs/toy_ring8.yaml --out "$W/gp" --quiet $TOY --set train.steps=10 \
    --set log.every=10 --set loss=wasserstein --set lipschitz.d.sn=false --set lipschitz.d.gp_lambda=10
run "train CNN (SN, spectra, checkpoint)" $L train "$W/img.yaml" --out "$W/img" --quiet
run "train CNN (Toeplitz, clamping, r(W), EMA)" $L train "$W/img.yaml" --out "$W/img2" --quiet \
    --set lipschitz.d.sn=false --set lipschitz.d.toeplitz_k=1 --set lipschitz.d.clamp_ratio=2 \
    --set lipschitz.g.rw_lambda=0.1 --set ema.decay=0.9 --set ema.start=1
run "train CNN resume" $L train "$W/img.yaml" --out "$W/img" --resume --quiet --set train.steps=3
run "train ResNet (SR-GAN, WGAN-GP)" $L train "$W/img.yaml" --out "$W/res" --quiet --set model.d.arch=resnet \
    --set model.g.arch=resnet --set model.d.width=8 --set model.g.width=8 --set lipschitz.d.sr_every=1 \
    --set lipschitz.d.gp_lambda=10 --set loss=wasserstein --set log.spectra_every=0
run "eval toy" $L eval "$W/ring" --n 300 --threads 1 --quiet
run "eval cfid,classes" $L eval "$W/img" --n 40 --ref-n 50 --threads 1 --quiet
run "fid-stats classifier" $L fid-stats "$W/idx" --out "$W/st.safetensors" --features classifier --n 40 \
    --threads 1 --quiet
run "sample" $L sample "$W/ring" -n 50 --out "$W/s.csv" --threads 1
run "spectra" $L spectra "$W/img2/ckpt_000000002.safetensors" --threads 1 --iters 3
run "report" $L report "$W/img"
export BUILD="$B" # the tests find the CLI there
for t in test_safetensors test_data test_config test_image test_tfevents; do
    run "$t" "$B/tests/$t"
done
echo "memcheck: $fails failed"
[ "$fails" = 0 ]
