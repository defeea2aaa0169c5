#!/usr/bin/env bash
# Configures and builds lth (Release) into ./build. Incremental: re-running rebuilds only
# what changed. Usage: scripts/build.sh [TARGET...]   (default: everything, tests included)
set -euo pipefail
cd "$(dirname "$0")/.."
build_dir="${LTH_BUILD_DIR:-build}"   # another folder keeps a second configuration apart
generator=()
command -v ninja >/dev/null && generator=(-G Ninja)
launcher=()   # ccache makes a fresh clone's or a second build folder's compile a cache hit
command -v ccache >/dev/null && launcher=(-DCMAKE_CXX_COMPILER_LAUNCHER=ccache)
if [ ! -f "$build_dir/CMakeCache.txt" ]; then
  cmake -S . -B "$build_dir" "${generator[@]}" "${launcher[@]}" -DCMAKE_BUILD_TYPE=Release
fi
targets=()
for t in "$@"; do targets+=(--target "$t"); done
cmake --build "$build_dir" -j"$(nproc)" "${targets[@]}"
