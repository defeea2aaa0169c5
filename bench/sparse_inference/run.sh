#!/usr/bin/env bash
# Sparse inference benchmark (issue 18): ResNet-50 at 224x224, lth's sparse engine next to
# lth's dense LibTorch forward and PyTorch eval() + no_grad (the peer), in one invocation.
#
#   bench/sparse_inference/run.sh [--quick] [OUTDIR]     (default /tmp/lth_sparse_inference/<UTC time>)
#
# 1. waits until the machine is quiet (1-min loadavg < 0.5, at most QUIET_WAIT=120 s);
# 2. ours: bench_sparse_inference over the masks of three families (uniform with a dense stem,
#    ERK, lth's global magnitude pruning of the initialised network) at densities 1.0, 0.2097,
#    0.1074, 0.018 (1.0 once), batch 1 and 32, 1 thread and all cores; each (mask, batch,
#    threads) times lth sparse and lth dense back to back;
#    peer: peer_inference.py (PyTorch, whose time does not depend on the mask) at the same
#    batches and thread counts;
# 3. prints the markdown table (summarize.py) with the ideal speedups, the issue's targets
#    checked and each mask's per-layer densities; writes it to OUTDIR/table.md.
# --quick (development): uniform and global masks at 1.0 and 0.1074, batch 1 and 8, all cores,
# one rep (about a minute on 2 cores).
#
# Environment: BUILD (build folder, default <repo>/build), THREADS ("1,<cores>"), REPS (3),
# MIN_SECONDS (1), QUIET_WAIT (120). Build first:
#   scripts/build.sh bench_sparse_inference
# The full run takes about 10 minutes on 2 cores.
set -euo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=../common/machine.sh
source "$HERE/../common/machine.sh"
REPO=$(git -C "$HERE" rev-parse --show-toplevel)
BUILD=${BUILD:-$REPO/build}
BIN=$BUILD/bench/sparse_inference/bench_sparse_inference
PY=/usr/bin/python3  # Debian's python3-torch; not the pyenv python3 on PATH
QUICK=0
if [ "${1:-}" = "--quick" ]; then QUICK=1; shift; fi
OUT=${1:-/tmp/lth_sparse_inference/$(date -u +%Y%m%dT%H%M%SZ)}
THREADS=${THREADS:-1,$(nproc)}
REPS=${REPS:-3}
MIN_SECONDS=${MIN_SECONDS:-1}
QUIET_WAIT=${QUIET_WAIT:-120}
FAMILIES=uniform,erk,global
DENSITIES=1,0.2097,0.1074,0.018
BATCHES=1,32
if [ $QUICK = 1 ]; then
  FAMILIES=uniform,global; DENSITIES=1,0.1074; BATCHES=1,8; THREADS=$(nproc); REPS=1; MIN_SECONDS=0.3; QUIET_WAIT=0
fi

[ -x "$BIN" ] || { echo "run.sh: $BIN missing; build it first (see the header)" >&2; exit 1; }
mkdir -p "$OUT"
{
  echo "date: $(date -u '+%Y-%m-%d %H:%M:%S UTC')"
  describe_machine
  echo "packages: $(dpkg-query -W -f '${Package} ${Version}; ' libtorch1.13 python3-torch python3-torchvision libdnnl2 2>/dev/null)"
  echo "lth commit: $(git -C "$REPO" rev-parse --short HEAD)$(git -C "$REPO" diff --quiet HEAD -- src/infer bench/sparse_inference 2>/dev/null || echo ' (+ local changes)')"
  echo "families: $FAMILIES; densities: $DENSITIES; batches: $BATCHES; threads: $THREADS; reps: $REPS; min seconds: $MIN_SECONDS"
} | tee "$OUT/env.txt"
[ "$QUIET_WAIT" = 0 ] || wait_for_quiet_machine "$QUIET_WAIT" "$OUT/env.txt"

start=$SECONDS
echo "== ours ($(date -u +%T))"
"$BIN" --families "$FAMILIES" --densities "$DENSITIES" --batches "$BATCHES" --threads "$THREADS" \
  --reps "$REPS" --min-seconds "$MIN_SECONDS" > "$OUT/ours.jsonl" 2> "$OUT/ours.err" ||
  { tail -n 5 "$OUT/ours.err" >&2; exit 1; }
echo "   $((SECONDS - start)) s"
start=$SECONDS
echo "== peer ($(date -u +%T))"
if "$PY" -c 'import torch' 2>/dev/null; then
  "$PY" "$HERE/peer_inference.py" --batches "$BATCHES" --threads "$THREADS" --reps "$REPS" \
    --min-seconds "$MIN_SECONDS" > "$OUT/peer.jsonl" 2> "$OUT/peer.err" || tail -n 5 "$OUT/peer.err" >&2
else
  echo "   python3-torch missing for $PY (apt-get install python3-torch): the peer column stays n/a" | tee -a "$OUT/env.txt"
fi
echo "   $((SECONDS - start)) s"
"$PY" "$HERE/summarize.py" "$OUT" | tee "$OUT/table.md"
echo "raw results: $OUT"
