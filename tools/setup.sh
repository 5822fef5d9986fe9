#!/bin/sh
# Installs the Debian packages lipgan needs (as root; skipped when present).
# clang, clang-tools (scan-build) and libomp-dev (clang's omp.h) are for
# `make analyze`, valgrind for `make memcheck` (both part of `make check`);
# chromium and fonts-dejavu-core are for the tests only: tests/test_report.c
# renders `lipgan report` pages in headless Chromium (tests/report_chromium.sh);
# python3 (tools/read_tfevents.py, the independent TensorBoard reader) is part
# of a standard Debian system.
set -e
PKGS="build-essential clang clang-tools libomp-dev valgrind pkg-config libopenblas-openmp-dev liblapacke-dev libcjson-dev libyaml-dev libpng-dev zlib1g-dev libopenmpi-dev openmpi-bin dataset-fashion-mnist chromium fonts-dejavu-core"
missing=""
for p in $PKGS; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing="$missing $p"
done
if [ -n "$missing" ]; then
    echo "tools/setup.sh: installing:$missing"
    SUDO=""; [ "$(id -u)" = 0 ] || SUDO=sudo
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq $missing >/dev/null
fi
echo "tools/setup.sh: Debian packages present"
