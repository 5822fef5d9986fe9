# Sourced by tests/gpu/device_run.sh and bench/gpu_compare.sh: exports
# LG_CUDNN_PATH, the directory holding libcudnn.so.9 (lipgan dlopen()s it),
# unless it is already set: the copy inside PyTorch's wheel
# (nvidia/cudnn/lib), else the first libcudnn.so.9 under site-packages,
# /usr or /opt; empty if none (lipgan then falls back to im2col + cuBLAS).
if [ -z "${LG_CUDNN_PATH:-}" ]; then
    LG_CUDNN_PATH=$(python3 -c "import nvidia.cudnn as m, os; print(os.path.join(list(m.__path__)[0], 'lib'))" 2>/dev/null)
    if [ ! -e "$LG_CUDNN_PATH/libcudnn.so.9" ]; then
        sp=$(python3 -c "import site; print(' '.join(site.getsitepackages()))" 2>/dev/null)
        f=$(timeout 20 find $sp /usr /opt -name libcudnn.so.9 2>/dev/null | head -1)
        LG_CUDNN_PATH=${f:+$(dirname "$f")}
    fi
fi
export LG_CUDNN_PATH
