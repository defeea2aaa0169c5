#!/usr/bin/env bash
# Builds the libFuzzer harnesses (fuzz/) with clang + ASan + UBSan and runs them.
#   scripts/fuzz.sh                 replay every regression input and seed, then fuzz each
#                                   harness for 10 s (what CI runs)
#   scripts/fuzz.sh --seconds 600 fuzz_npy     fuzz one harness for 10 minutes
#   scripts/fuzz.sh --replay-only   replay only
# New corpus entries go to build-fuzz/corpus/<harness>/ (the seed corpus in fuzz/corpus/ is
# not modified); a crash leaves its input in build-fuzz/artifacts/<harness>/ and fails the
# script. Keep every fixed finding in fuzz/regressions/<harness>/ so it replays forever.
# The harnesses link the static libraries of an ordinary build compiled file by file (not in
# unity batches: an archive member must hold one source file, so that the linker never pulls
# a second copy of a file the harness compiles itself): LTH_FUZZ_LIB_DIR (default
# build-fuzz-libs, configured with LTH_UNITY=OFF), built here if needed.
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=10
replay_only=0
harnesses=()
while [ $# -gt 0 ]; do
  case "$1" in
    --seconds) seconds="$2"; shift 2 ;;
    --replay-only) replay_only=1; shift ;;
    *) harnesses+=("$1"); shift ;;
  esac
done
[ ${#harnesses[@]} -gt 0 ] || harnesses=(fuzz_npy fuzz_safetensors fuzz_idx fuzz_image fuzz_config fuzz_rendezvous fuzz_shards fuzz_ilsvrc fuzz_msgpack)

lib_dir="${LTH_FUZZ_LIB_DIR:-build-fuzz-libs}"
case "$lib_dir" in /*) ;; *) lib_dir="$(pwd)/$lib_dir" ;; esac  # absolute or relative to the repo
fuzz_dir="${LTH_FUZZ_DIR:-build-fuzz}"
if [ -f "$lib_dir/CMakeCache.txt" ] && ! grep -q '^LTH_UNITY:BOOL=OFF' "$lib_dir/CMakeCache.txt"; then
  echo "fuzz.sh: $lib_dir compiles in unity batches; use a folder configured with LTH_UNITY=OFF" >&2
  exit 2
fi
# The libraries only (not the tests): every lth_* target the harnesses may need.
LTH_BUILD_DIR="$lib_dir" LTH_UNITY=OFF bash scripts/build.sh lth
generator=()
command -v ninja >/dev/null && generator=(-G Ninja)
launcher=()
command -v ccache >/dev/null && launcher=(-DCMAKE_CXX_COMPILER_LAUNCHER=ccache)
if ! grep -qxF "LTH_LIB_DIR:PATH=$lib_dir" "$fuzz_dir/CMakeCache.txt" 2>/dev/null; then
  cmake -S fuzz -B "$fuzz_dir" "${generator[@]}" "${launcher[@]}" -DCMAKE_BUILD_TYPE=RelWithDebInfo \
    -DCMAKE_CXX_COMPILER=clang++ -DLTH_LIB_DIR="$lib_dir"
fi
targets=()
for h in "${harnesses[@]}"; do targets+=(--target "$h"); done
cmake --build "$fuzz_dir" -j"$(nproc)" "${targets[@]}"

# LibTorch is not instrumented and keeps allocations alive until exit: leak reports there
# are not findings. Everything else ASan and UBSan report is.
export ASAN_OPTIONS="detect_leaks=0:abort_on_error=1"
export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1"
status=0
for h in "${harnesses[@]}"; do
  bin="$fuzz_dir/$h"
  inputs=()
  for d in "fuzz/regressions/$h" "fuzz/corpus/$h"; do
    [ -d "$d" ] && while IFS= read -r -d '' f; do inputs+=("$f"); done < <(find "$d" -type f -print0)
  done
  if [ ${#inputs[@]} -gt 0 ]; then
    echo "== $h: replaying ${#inputs[@]} inputs"
    "$bin" -rss_limit_mb=4096 -timeout=20 "${inputs[@]}" >"$fuzz_dir/$h.replay.log" 2>&1 ||
      { echo "FAILED: $h replay (see $fuzz_dir/$h.replay.log)"; tail -30 "$fuzz_dir/$h.replay.log"; status=1; continue; }
  fi
  [ "$replay_only" = 1 ] && continue
  corpus="$fuzz_dir/corpus/$h"
  artifacts="$fuzz_dir/artifacts/$h/"
  mkdir -p "$corpus" "$artifacts"
  seeds=()
  [ -d "fuzz/corpus/$h" ] && seeds+=("fuzz/corpus/$h")
  echo "== $h: fuzzing for ${seconds}s"
  if "$bin" -max_total_time="$seconds" -rss_limit_mb=4096 -timeout=20 -max_len=65536 \
      -artifact_prefix="$artifacts" -print_final_stats=1 "$corpus" "${seeds[@]}" \
      >"$fuzz_dir/$h.log" 2>&1; then
    grep -E "stat::number_of_executed_units|stat::peak_rss_mb" "$fuzz_dir/$h.log" | tr '\n' ' '; echo
  else
    echo "FAILED: $h found a problem (input in $artifacts; log $fuzz_dir/$h.log)"
    tail -40 "$fuzz_dir/$h.log"
    status=1
  fi
done
exit $status
