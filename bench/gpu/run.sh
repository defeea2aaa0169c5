#!/usr/bin/env bash
# GPU check of issue 11 (item 8), in one go on a machine with a CUDA PyTorch: builds lth
# against that PyTorch's LibTorch, runs the tests that touch devices and precision, a
# short `lth train` on the GPU, and lth's ResNet-50 training step next to torchvision's
# resnet50 (channels-last, bf16 autocast, the same batch) in the same run; prints one table.
#
#   bench/gpu/run.sh [--dry-run] [--batch N] [--steps N] [--out DIR]
#
# Prerequisites on that machine: python3 with CUDA torch and torchvision, cmake, ninja, a
# C++17 compiler; the other C++ dependencies from bench/gpu/bundle_deps.sh (run it where
# they are installed, carry <repo>/.gpu_deps). With the `device` tool:
#   here:   bash bench/gpu/bundle_deps.sh
#   run:    command "bash bench/gpu/run.sh --out \$OUT", carry [".gpu_deps"], timeout_s 600
# --dry-run: the same steps on this CPU-only machine, as a check of the script: Debian's
# LibTorch (python3's torch here), device cpu, batch 2, 1 step, tests filtered the same way;
# reuses BUILD (default <repo>/build-gpu; e.g. BUILD=build-cluster to build incrementally).
#
# Budget (the device tool's 10-minute command limit): build ~5 min on 16 cores (not
# measured), tests 90 s, smoke 60 s, benchmark ~1 min; each stage has a `timeout`.
set -uo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
REPO=$(cd "$HERE/../.." && pwd)
DRY=0
BATCH=256
STEPS=30
OUTDIR=""
while [ $# -gt 0 ]; do
  case $1 in
    --dry-run) DRY=1 ;;
    --batch) BATCH=$2; shift ;;
    --steps) STEPS=$2; shift ;;
    --out) OUTDIR=$2; shift ;;
    *) echo "run.sh: unknown argument $1" >&2; exit 2 ;;
  esac
  shift
done
PY=${PY:-python3}
BUILD=${BUILD:-$REPO/build-gpu}
DEPS=${DEPS:-$REPO/.gpu_deps/root}
DEVICE=cuda
WARMUP=5
JOBS=$(nproc)
if [ "$DRY" = 1 ]; then
  PY=${PY_DRY:-/usr/bin/python3}  # Debian's python3-torch: the LibTorch the CPU build uses
  DEVICE=cpu BATCH=2 STEPS=1 WARMUP=1 JOBS=2
fi
OUT=${OUTDIR:-/tmp/lth_gpu/$(date -u +%Y%m%dT%H%M%SZ)}
mkdir -p "$OUT"
LOG=$OUT/run.log
say() { echo "== $*" | tee -a "$LOG"; }
stage() {  # stage NAME SECONDS CMD...: runs CMD under a time limit, logs to NAME.log
  local name=$1 limit=$2 rc
  shift 2
  say "$name (limit ${limit}s): $*"
  timeout "$limit" "$@" > "$OUT/$name.log" 2>&1
  rc=$?
  tail -n 15 "$OUT/$name.log" | tee -a "$LOG"
  say "$name: exit $rc"
  return $rc
}

# 1. The machine and its PyTorch.
say "date $(date -u '+%F %T UTC'); $(nproc) CPUs; dry-run=$DRY"
command -v nvidia-smi > /dev/null && nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader | tee -a "$LOG"
TORCH_PREFIX=$("$PY" -c 'import torch; print(torch.utils.cmake_prefix_path)') || { say "no torch in $PY"; exit 1; }
"$PY" -c 'import torch, torchvision; print("torch", torch.__version__, "cuda", torch.version.cuda, "available", torch.cuda.is_available(), "torchvision", torchvision.__version__)' | tee -a "$LOG"
if [ "$DRY" = 0 ] && ! "$PY" -c 'import torch, sys; sys.exit(0 if torch.cuda.is_available() else 1)'; then
  say "CUDA is not available to $PY: nothing to measure"; exit 1
fi

# 2. Where CMake finds things: the CUDA LibTorch first, then the carried dependencies.
prefix="$TORCH_PREFIX"
if [ -d "$DEPS/usr" ]; then
  prefix="$prefix;$DEPS/usr"
  multiarch=$DEPS/usr/lib/x86_64-linux-gnu
  export PKG_CONFIG_SYSROOT_DIR=$DEPS   # the .pc files say prefix=/usr
  export PKG_CONFIG_LIBDIR=$multiarch/pkgconfig:$DEPS/usr/share/pkgconfig
  export LD_LIBRARY_PATH=$multiarch:$DEPS/lib/x86_64-linux-gnu${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}
  export LIBRARY_PATH=$multiarch${LIBRARY_PATH:+:$LIBRARY_PATH}
  # plplot finds its drivers and fonts through these (Debian's paths, relocated).
  PLPLOT_DRV_DIR=$(find "$multiarch" -maxdepth 3 -type d -path '*plplot*/drivers' | head -n 1)
  export PLPLOT_DRV_DIR
  export PLPLOT_LIB=$DEPS/usr/share/plplot5.15.0
  # Gloo's headers: the CUDA LibTorch's own if it ships them, else Debian's (same API era
  # as LibTorch 1.13; a newer c10d may need newer ones: reported by the configure/build).
  torch_include=$("$PY" -c 'import torch.utils.cpp_extension as c; print(c.include_paths()[0])')
  if [ ! -d "$torch_include/gloo" ]; then
    export CPLUS_INCLUDE_PATH=$DEPS/usr/include${CPLUS_INCLUDE_PATH:+:$CPLUS_INCLUDE_PATH}
    say "gloo headers: carried ($DEPS/usr/include/gloo)"
  fi
elif [ "$DRY" = 0 ]; then
  say "no carried dependencies at $DEPS (run bench/gpu/bundle_deps.sh here, carry .gpu_deps); trying the system's"
fi
# nccl.h of the pip wheel nvidia-nccl (src/dist/CMakeLists.txt looks under $NCCL_ROOT/include).
if [ -z "${NCCL_ROOT:-}" ]; then
  NCCL_ROOT=$("$PY" -c 'import nvidia.nccl as n; print(list(n.__path__)[0])' 2> /dev/null) && export NCCL_ROOT
fi
say "CMAKE_PREFIX_PATH=$prefix NCCL_ROOT=${NCCL_ROOT:-}"

# 3. Build (tests and benchmarks included).
generator=()
command -v ninja > /dev/null && generator=(-G Ninja)
TARGETS=(lth lth_dist_worker test_dist test_train test_models bench_gpu_step)
configure() {  # configure NAME FOLDER PREFIX
  stage "$1" 180 cmake -S "$REPO" -B "$2" "${generator[@]}" -DCMAKE_BUILD_TYPE=Release \
    "-DCMAKE_PREFIX_PATH=$3" -DTORCH_CUDA_ARCH_LIST=9.0 -DLTH_BUILD_GPU_BENCH=ON
}
if [ "$DRY" = 1 ]; then
  # Here the dependencies are installed in /usr too: check that a fresh configure takes
  # them from the bundle (the paths CMake recorded), then build BUILD as configured.
  if [ -d "$DEPS/usr" ]; then
    configure configure_bundle "$OUT/cmake-check" "$prefix" || exit 1
    grep -E '^(fmt|spdlog|CLI11|nlohmann_json|tomlplusplus|GTest)_DIR|^pkgcfg_lib_(TURBOJPEG|PNG|PLPLOT)_' \
      "$OUT/cmake-check/CMakeCache.txt" | tee -a "$LOG"
  fi
  prefix=$TORCH_PREFIX
fi
configure configure "$BUILD" "$prefix" || exit 1
build_args=()
for t in "${TARGETS[@]}"; do build_args+=(--target "$t"); done
stage build 420 cmake --build "$BUILD" -j"$JOBS" "${build_args[@]}" || exit 1
grep -E 'ProcessGroupNCCL enabled|CUDA LibTorch without nccl' "$OUT/configure.log" | tee -a "$LOG"

# 4. Tests: the device-placement, precision, loss-scaling and data-parallel suites (the
# rest of the suite is CPU-only and runs in CI).
stage tests 150 ctest --test-dir "$BUILD" --output-on-failure -j4 --timeout 120 \
  -R 'ProcessGroupEnv|Slurm|Threads|Launch|LossScal|DataParallel|Precision|Autocast|MaskedSgd|Trainer'
tests_rc=$?

# 5. `lth train` on the device: synthetic data, bf16, a few steps and one evaluation.
stage smoke 90 "$BUILD/lth" train --data_name synthetic --model resnet20 --batch_size 64 --optim_ni 20 \
  --eval_every 20 --eval_batch_size 64 --num_workers 2 --device "$DEVICE" --precision bf16 --seed 0 \
  --save "$OUT/smoke_run"
smoke_rc=$?

# 6. ResNet-50 training step, lth and torchvision alternating, fp32 then bf16.
: > "$OUT/step.jsonl"
for precision in fp32 bf16; do
  stage "lth_$precision" 120 "$BUILD/bench/gpu/bench_gpu_step" --device "$DEVICE" --precision "$precision" \
    --configs "resnet50:$BATCH" --warmup "$WARMUP" --steps "$STEPS" && tail -n 1 "$OUT/lth_$precision.log" >> "$OUT/step.jsonl"
  stage "torch_$precision" 120 "$PY" "$HERE/torch_peer.py" --device "$DEVICE" --precision "$precision" \
    --batch "$BATCH" --warmup "$WARMUP" --steps "$STEPS" && tail -n 1 "$OUT/torch_$precision.log" >> "$OUT/step.jsonl"
done

# 7. One table.
"$PY" - "$OUT/step.jsonl" "$tests_rc" "$smoke_rc" <<'PY' | tee -a "$LOG"
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
by = {(r["impl"], r["precision"]): r for r in rows}
print(f"tests exit {sys.argv[2]}, lth train smoke exit {sys.argv[3]}")
print("| ResNet-50 train step | batch | device | lth img/s | torchvision img/s (channels_last) | lth / torchvision |")
print("| --- | --- | --- | --- | --- | --- |")
for p in ("fp32", "bf16"):
    ours, peer = by.get(("lth", p)), by.get(("torchvision", p))
    if not ours and not peer:
        continue
    ref = ours or peer
    o = f"{ours['img_per_s']:.1f}" if ours else "failed"
    t = f"{peer['img_per_s']:.1f}" if peer else "failed"
    ratio = f"{ours['img_per_s'] / peer['img_per_s']:.2f}x" if ours and peer else "-"
    print(f"| {p} | {ref['batch']} | {ref['device']} | {o} | {t} | {ratio} |")
PY
say "logs in $OUT"
