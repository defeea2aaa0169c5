#!/usr/bin/env bash
# Builds the unit tests of the parsers, the data pipeline, the checkpoint and report code, the
# shared-memory collectives and the sparse inference engine with AddressSanitizer +
# UndefinedBehaviorSanitizer (gcc) in their own folder and runs them.
#   scripts/sanitize.sh            (folder: LTH_SANITIZE_DIR, default build-asan)
# LibTorch is not instrumented (Debian's build); that is fine for ASan, which checks the
# memory lth's own code touches. LibTorch keeps some allocations until exit, so leak
# detection is off: the checks that matter here are out-of-bounds, use-after-free and UB.
set -euo pipefail
cd "$(dirname "$0")/.."
dir="${LTH_SANITIZE_DIR:-build-asan}"
# test_infer: the sparse engine's kernels index activations, padded planes and phase buffers
# by hand (about 90 s under the sanitizers, most of it the whole-network tests).
tests=(test_robustness_files test_io test_report test_data_imagenet test_shared_memory test_infer)
# -Wno-maybe-uninitialized: gcc 12 reports false positives inside libstdc++'s std::regex and
# std::function when instrumented (the normal build has no warnings).
flags="-fsanitize=address,undefined -fno-sanitize-recover=undefined -fno-omit-frame-pointer -Wno-maybe-uninitialized"
if [ ! -f "$dir/CMakeCache.txt" ]; then
  generator=()
  command -v ninja >/dev/null && generator=(-G Ninja)
  launcher=()
  command -v ccache >/dev/null && launcher=(-DCMAKE_CXX_COMPILER_LAUNCHER=ccache)
  cmake -S . -B "$dir" "${generator[@]}" "${launcher[@]}" -DCMAKE_BUILD_TYPE=RelWithDebInfo \
    -DCMAKE_CXX_COMPILER=g++ -DCMAKE_CXX_FLAGS="$flags" -DCMAKE_EXE_LINKER_FLAGS="-fsanitize=address,undefined" \
    -DLTH_BUILD_BENCH=OFF
fi
start=$(date +%s)
targets=()
for t in "${tests[@]}"; do targets+=(--target "$t"); done
cmake --build "$dir" -j"$(nproc)" "${targets[@]}"
echo "sanitizer build: $(( $(date +%s) - start )) s"
export ASAN_OPTIONS="detect_leaks=0:abort_on_error=1:strict_string_checks=1"
export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1"
start=$(date +%s)
status=0
for t in "${tests[@]}"; do
  bin=$(find "$dir/tests" -name "$t" -type f -perm -u+x | head -1)
  echo "== $t (ASan+UBSan)"
  (cd "$(dirname "$bin")" && "./$t" --gtest_brief=1) || status=1
done
echo "sanitizer tests: $(( $(date +%s) - start )) s"
exit $status
