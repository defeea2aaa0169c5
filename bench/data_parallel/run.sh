#!/usr/bin/env bash
# Data-parallel row of issue 11: one process against `lth launch --nproc 2` on the same
# short job (LeNet-300-100 on Fashion-MNIST, the embedded default's model and data),
# alternating, and the ratio of their throughputs.
#
#   bench/data_parallel/run.sh [OUTDIR]      (default /tmp/lth_data_parallel/<UTC time>)
#
# Each round runs, in this order (reversed in every other round):
#   one        lth train ... (threads: lth's default, every core of this process)
#   two        lth launch --nproc 2 -- lth train ...  (each rank: OMP_NUM_THREADS from the
#              launcher, max(1, cores / 2)); the ranks sum through shared memory
#   two_gloo   as two, with LTH_DIST_SHM=0: the sums go through Gloo's TCP loopback, as
#              between machines
#   one_t1     as one, on one thread (OMP_NUM_THREADS=1): a reference that does not
#              collapse when other processes compete for the cores; only if VARIANTS names it
#   two_all    as two, with OMP_NUM_THREADS=<cores> (each rank takes every core: what
#              `lth launch` did before it set OMP_NUM_THREADS); only if VARIANTS names it
# The job: ITERS iterations of global batch BATCH, one evaluation at the end. Throughput is
# the trainer's own images_per_sec from the run's metrics.jsonl (training images / seconds
# since the phase began, the final evaluation included), and wall-clock seconds of the
# whole command (start-up, data loading, rendezvous included).
#
# Then, if built, bench_allreduce on 2 ranks: the gradient all-reduce's own cost per step,
# through shared memory and through Gloo.
#
# Environment: LTH (binary, default <repo>/build/lth), ROUNDS (3), ITERS (600), BATCH
# (128), VARIANTS ("one two two_gloo"), DATA_ROOT (passed as --data_root when set),
# ALLREDUCE (default <LTH's folder>/bench/data_parallel/bench_allreduce).
set -euo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
REPO=$(cd "$HERE/../.." && pwd)
LTH=${LTH:-$REPO/build/lth}
ROUNDS=${ROUNDS:-3}
ITERS=${ITERS:-600}
BATCH=${BATCH:-128}
VARIANTS=${VARIANTS:-one two two_gloo}
OUT=${1:-/tmp/lth_data_parallel/$(date -u +%Y%m%dT%H%M%SZ)}

[ -x "$LTH" ] || { echo "run.sh: $LTH missing: build it (scripts/build.sh lth) or set LTH" >&2; exit 1; }
mkdir -p "$OUT"
read -r -a VARIANT_LIST <<< "$VARIANTS"
cores=$(nproc)   # the affinity mask's count, as lth's own
job=(train --model lenet300_100 --data_name fashion-mnist --batch_size "$BATCH" --optim_ni "$ITERS"
     --eval_every "$ITERS" --eval_batch_size 1000 --optim_lr 0.1 --num_workers 2 --seed 0
     --prunable conv+linear)
[ -n "${DATA_ROOT:-}" ] && job+=(--data_root "$DATA_ROOT")

{
  echo "date: $(date -u '+%Y-%m-%d %H:%M:%S UTC')"
  echo "cpu: $(lscpu | sed -n 's/^Model name: *//p'), $cores CPUs in this process's mask; load: $(cut -d' ' -f1-3 /proc/loadavg)"
  echo "lth: $LTH ($(git -C "$REPO" rev-parse --short HEAD)$(git -C "$REPO" diff --quiet HEAD -- src 2>/dev/null || echo ' + local changes'))"
  echo "job: lth ${job[*]}; rounds: $ROUNDS; variants: $VARIANTS"
} | tee "$OUT/env.txt"

# run VARIANT ROUND: runs one command, appends "variant round img/s wall_s" to results.txt.
run() {
  local variant=$1 round=$2 save="$OUT/$1.r$2" start end
  local -a cmd
  case $variant in
    one) cmd=(env "$LTH" "${job[@]}" --save "$save") ;;
    one_t1) cmd=(env OMP_NUM_THREADS=1 "$LTH" "${job[@]}" --save "$save") ;;
    two) cmd=(env "$LTH" launch --nproc 2 --master_port $((29600 + round)) -- "$LTH" "${job[@]}" --save "$save") ;;
    two_gloo) cmd=(env LTH_DIST_SHM=0 "$LTH" launch --nproc 2 --master_port $((29600 + round)) -- "$LTH" "${job[@]}"
                   --save "$save") ;;
    two_all) cmd=(env OMP_NUM_THREADS="$cores" "$LTH" launch --nproc 2 --master_port $((29600 + round)) --
                  "$LTH" "${job[@]}" --save "$save") ;;
    *) echo "run.sh: unknown variant $variant" >&2; exit 1 ;;
  esac
  start=$(date +%s.%N)
  "${cmd[@]}" > "$OUT/$variant.r$round.log" 2>&1 || { echo "run.sh: $variant failed, see $OUT/$variant.r$round.log" >&2; exit 1; }
  end=$(date +%s.%N)
  local ips
  ips=$(python3 -c 'import json,sys
rows=[json.loads(l) for l in open(sys.argv[1]) if l.strip()]
print([r for r in rows if "images_per_sec" in r][-1]["images_per_sec"])' "$save/metrics.jsonl")
  printf '%s %s %s %s\n' "$variant" "$round" "$ips" "$(awk -v a="$start" -v b="$end" 'BEGIN { printf "%.1f", b - a }')" | tee -a "$OUT/results.txt"
}

: > "$OUT/results.txt"
for ((round = 0; round < ROUNDS; ++round)); do
  order=("${VARIANT_LIST[@]}")
  if ((round % 2 == 1)); then
    order=()
    for ((i = ${#VARIANT_LIST[@]} - 1; i >= 0; --i)); do order+=("${VARIANT_LIST[i]}"); done
  fi
  for v in "${order[@]}"; do run "$v" "$round"; done
done

# The gradient all-reduce alone, on 2 ranks of one thread (bench_allreduce.cpp).
ALLREDUCE=${ALLREDUCE:-$(dirname "$LTH")/bench/data_parallel/bench_allreduce}
if [ -x "$ALLREDUCE" ]; then
  for shm in 1 0; do
    LTH_DIST_SHM=$shm "$LTH" launch --nproc 2 --master_port $((29650 + shm)) -- "$ALLREDUCE" --model lenet300_100 \
      --iters 1000 > "$OUT/allreduce.shm$shm.json" 2> "$OUT/allreduce.shm$shm.err" &&
      echo "allreduce (LTH_DIST_SHM=$shm): $(cat "$OUT/allreduce.shm$shm.json")"
  done
fi

# Table: median img/s and wall seconds per variant, and each against `one`.
python3 - "$OUT/results.txt" <<'PY'
import statistics, sys
rows = [l.split() for l in open(sys.argv[1]) if l.strip()]
by = {}
for v, r, ips, wall in rows:
    by.setdefault(v, []).append((float(ips), float(wall)))
med = {v: (statistics.median(x[0] for x in xs), statistics.median(x[1] for x in xs)) for v, xs in by.items()}
base = med.get("one")
print("| variant | rounds | img/s (median) | all rounds | wall s (median) | img/s vs one |")
print("| --- | --- | --- | --- | --- | --- |")
for v, xs in by.items():
    ratio = f"{med[v][0] / base[0]:.2f}x" if base else "-"
    runs = ", ".join(f"{x[0]:.0f}" for x in xs)
    print(f"| {v} | {len(xs)} | {med[v][0]:.0f} | {runs} | {med[v][1]:.1f} | {ratio} |")
PY
