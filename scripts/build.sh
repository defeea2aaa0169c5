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
# ccache may reuse results compiled against the shared precompiled header (CMakeLists.txt).
export CCACHE_SLOPPINESS="${CCACHE_SLOPPINESS:-pch_defines,time_macros,include_file_mtime,include_file_ctime}"
# clang with one precompiled LibTorch header builds lth in well under half gcc's time
# (docs/PERFORMANCE.md, "Build"); CXX=g++ picks gcc (no precompiled header) for a new folder.
compiler=(); compiler_name="${CXX:-c++}"
if [ -z "${CXX:-}" ] && command -v clang++ >/dev/null; then
  compiler=(-DCMAKE_CXX_COMPILER=clang++); compiler_name=clang++
fi
# LTH_UNITY=OFF configures a new folder to compile file by file (CMakeLists.txt, LTH_UNITY).
unity=(); [ -n "${LTH_UNITY:-}" ] && unity=(-DLTH_UNITY="$LTH_UNITY")
if [ ! -f "$build_dir/CMakeCache.txt" ]; then
  echo "== build: configuring $build_dir (Release, $compiler_name${launcher:+, ccache}${LTH_UNITY:+, unity $LTH_UNITY})"
  mkdir -p "$build_dir"
  cmake -S . -B "$build_dir" "${generator[@]}" "${launcher[@]}" "${compiler[@]}" "${unity[@]}" -DCMAKE_BUILD_TYPE=Release \
    >"$build_dir/configure.log" 2>&1 || { cat "$build_dir/configure.log"; exit 1; }
fi
targets=()
for t in "$@"; do targets+=(--target "$t"); done
echo "== build: ${*:-everything} on $(nproc) cores ([done/total] per step)"
start=$(date +%s)
cmake --build "$build_dir" -j"$(nproc)" "${targets[@]}"
echo "== build: done in $(( $(date +%s) - start )) s"
