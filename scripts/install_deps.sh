#!/usr/bin/env bash
# Installs every Debian 12 package lth needs to build, test and run (as root, or through sudo).
# Nothing is downloaded at build time; this is the only place dependencies come from.
set -euo pipefail
packages=(
  build-essential cmake ninja-build pkg-config ccache
  libtorch-dev libgloo-dev          # LibTorch (+ c10d/Gloo headers)
  libopenblas0-openmp               # optimised libblas.so.3 (Debian's LibTorch calls the system BLAS)
  libturbojpeg0-dev libjpeg62-turbo-dev libjpeg-turbo-progs libpng-dev libstb-dev
  zlib1g-dev                        # gzip: the ILSVRC2012 devkit .tar.gz, MATLAB miCOMPRESSED
  libcli11-dev libtomlplusplus-dev nlohmann-json3-dev libspdlog-dev libfmt-dev
  libplplot-dev plplot-driver-cairo
  libgtest-dev libgmock-dev libbenchmark-dev
  clang libclang-rt-dev             # libFuzzer + sanitizer runtimes (scripts/fuzz.sh)
  python3 python3-numpy             # the independent checkpoint reader used by tests
  python3-msgpack                   # the independent reference-checkpoint (Flax) writer used by tests
  python3-protobuf                  # the independent TFRecord/Example/Event writer and reader used by tests
  dataset-fashion-mnist             # the embedded default's data
)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  echo "== install: ${#missing[@]} of ${#packages[@]} Debian packages missing; apt-get update + install (1-2 min)"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" |
    awk '/^(Unpacking|Setting up) / {n++; printf "\r   %d unpack/setup steps done", n; fflush()} END {print ""}'
  echo "== install: done"
else
  echo "== install: all ${#packages[@]} Debian packages present"
fi
