#!/usr/bin/env bash
# Pruning benchmark: lth's global magnitude pruning of ResNet-50's conv weights next to
# numpy.partition / torch.kthvalue / torch.topk on as many float32 values, in one invocation.
#
#   bench/prune/run.sh [OUTDIR]        (default /tmp/lth_prune/<UTC time>)
#
# 1. waits until the machine is quiet (1-min loadavg < 0.5, at most QUIET_WAIT=120 s);
# 2. runs ROUNDS (3) rounds of, in this order (reversed in every other round):
#      ours   bench_prune --threads $THREADS --reps $REPS --sort-reps $SORT_REPS
#             (prune("magnitude_global", keep 0.8) on dense and 20%-pruned masks, and the
#             replaced full-sort rule SORT_REPS times per state, masks compared)
#      peer   /usr/bin/python3 bench/prune/peer_prune.py --threads $THREADS --reps $REPS
#             (numpy.partition, torch.kthvalue, torch.topk on the candidates' |w|)
#    both programs also wait (up to WAIT_QUIET=60 s) for other processes to go idle and record
#    the share of the CPUs others used while each figure was taken (foreign_cpu_frac);
# 3. prints a markdown table (summarize.py): median seconds per call and ours / numpy.partition.
#
# Environment: BUILD (build folder, default <repo>/build-bench), ROUNDS, THREADS, REPS,
# SORT_REPS (0: skip the replaced rule), QUIET_WAIT, WAIT_QUIET. Build first:
#   cmake -S . -B build-bench -G Ninja && cmake --build build-bench -j2 --target bench_prune
set -euo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=../common/machine.sh
source "$HERE/../common/machine.sh"
REPO=$(git -C "$HERE" rev-parse --show-toplevel)
BUILD=${BUILD:-$REPO/build-bench}
BIN=$BUILD/bench/prune/bench_prune
PY=/usr/bin/python3  # Debian's python3-torch and python3-numpy; not the pyenv python3 on PATH
ROUNDS=${ROUNDS:-3}
THREADS=${THREADS:-2}
REPS=${REPS:-9}
SORT_REPS=${SORT_REPS:-1}
QUIET_WAIT=${QUIET_WAIT:-120}
WAIT_QUIET=${WAIT_QUIET:-60}
OUT=${1:-/tmp/lth_prune/$(date -u +%Y%m%dT%H%M%SZ)}

[ -x "$BIN" ] || { echo "run.sh: $BIN missing; build it first (see the header)" >&2; exit 1; }
mkdir -p "$OUT"

{
  echo "date: $(date -u '+%Y-%m-%d %H:%M:%S UTC')"
  describe_machine
  echo "packages: $(dpkg-query -W -f '${Package} ${Version}; ' libtorch1.13 python3-torch python3-numpy python3-torchvision 2>/dev/null)"
  echo "lth commit: $(git -C "$REPO" rev-parse --short HEAD)$(git -C "$REPO" diff --quiet HEAD -- src/pruning bench/prune 2>/dev/null || echo ' (+ local changes)')"
  echo "threads: $THREADS; rounds: $ROUNDS; reps: $REPS; sort reps: $SORT_REPS; quiet waits: $QUIET_WAIT s / $WAIT_QUIET s"
} | tee "$OUT/env.txt"

# 1. Quiet machine: 1-minute load average below 0.5, or give up after QUIET_WAIT s.
wait_for_quiet_machine "$QUIET_WAIT" "$OUT/env.txt"

run_variant() {
  case $1 in
    ours) "$BIN" --threads "$THREADS" --reps "$REPS" --sort-reps "$SORT_REPS" --wait-quiet "$WAIT_QUIET" ;;
    peer) "$PY" "$HERE/peer_prune.py" --threads "$THREADS" --reps "$REPS" --wait-quiet "$WAIT_QUIET" ;;
    *) echo "run.sh: unknown variant $1" >&2; return 2 ;;
  esac
}

# 2. Rounds, alternating ours and the peer; every other round in reverse order.
run_rounds "$ROUNDS" "$OUT" ours peer

# 3. Table.
"$PY" "$HERE/summarize.py" "$OUT" | tee "$OUT/table.md"
echo "raw results: $OUT"
