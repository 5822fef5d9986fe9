#!/bin/sh
# Builds the GPU test programs and the model benchmark on THIS machine (which has nvcc but
# maybe no GPU) into a self-contained folder for a GPU machine that lacks
# lipgan's -dev packages (cJSON, libyaml, OpenBLAS headers): OpenBLAS,
# LAPACKE, libyaml, libpng and zlib are linked statically, libcjson.so.1 is
# copied beside the binary (rpath $ORIGIN); only the CUDA runtime/cuBLAS
# (/usr/local/cuda/lib64), libgfortran, libgomp and libstdc++ are taken from
# the target. cuDNN is not linked: it is dlopen()ed at run time (point
# LG_CUDNN_PATH at it). Needs a target glibc >= this machine's.
#   tests/gpu/pack.sh            # -> build-cuda/gpu-pack/{test_backend_cuda,test_ops_cuda,
#                                #    test_lipschitz_cuda,test_train_cuda,test_inception_cuda,
#                                #    bench_models,bench_train_iter,...}
#                                #    and build-cuda/gpu-pack.tar.gz (all of it)
#   BUILD=build-x tests/gpu/pack.sh
set -e
cd "$(dirname "$0")/../.."
BUILD=${BUILD:-build-cuda}
ARCH=$(uname -m)-linux-gnu
L=/usr/lib/$ARCH
CUDA_HOME=${CUDA_HOME:-/usr/local/cuda}
# MPI=0: the GPU machine has no OpenMPI (use a BUILD dir of its own: make does not
# notice changed flags)
make BUILD="$BUILD" MPI=0 -j"$(nproc)" "$BUILD/liblipgan.a"
OUT=$BUILD/gpu-pack
mkdir -p "$OUT"
# each program: a main source (tests link tests/lg_test.c too)
for src in tests/gpu/test_backend_cuda.c tests/gpu/test_ops_cuda.c tests/gpu/test_lipschitz_cuda.c \
           tests/gpu/test_train_cuda.c tests/gpu/test_inception_cuda.c bench/bench_models.c bench/bench_train_iter.c bench/bench_sr_svd.c \
           bench/bench_relu.c bench/bench_inception.c; do
    name=$(basename "$src" .c)
    extra=""; case "$src" in tests/*) extra="tests/lg_test.c" ;; esac
    cc -std=c11 -D_GNU_SOURCE -O2 -g -Wall -Wextra -Wno-unused-parameter -fopenmp \
       -DLG_HAVE_CUDA=1 -Iinclude -Isrc -Itests -I"$CUDA_HOME/include" \
       "$src" $extra "$BUILD/liblipgan.a" \
       $L/liblapacke.a $L/openblas-openmp/libopenblas.a $L/libyaml.a $L/libpng16.a $L/libz.a \
       $L/libcjson.so.1 -Wl,-rpath,'$ORIGIN' \
       -L"$CUDA_HOME/lib64" -Wl,-rpath,"$CUDA_HOME/lib64" -lcudart -lcublas -lcusolver \
       -lgfortran -lstdc++ -lm -lpthread -fopenmp \
       -o "$OUT/$name"
done
cp -L $L/libcjson.so.1 "$OUT/"
cp tests/gpu/run_packed.sh "$OUT/"
# small enough to carry to the device machine (debug info is most of it)
strip "$OUT/test_backend_cuda" "$OUT/test_ops_cuda" "$OUT/test_lipschitz_cuda" "$OUT/test_train_cuda" \
      "$OUT/test_inception_cuda" "$OUT/bench_inception" \
      "$OUT/bench_models" "$OUT/bench_train_iter" "$OUT/bench_sr_svd"
# one file to carry (about 20 MB): tests/gpu/device_run.sh takes it as is
tar czf "$BUILD/gpu-pack.tar.gz" -C "$OUT" .
ls -la "$OUT"
