#!/usr/bin/env bash
# Training-step benchmark of lth next to the PyTorch eager peer, in one invocation.
#
#   bench/train_step/run.sh [OUTDIR]        (default /tmp/lth_train_step/<UTC time>)
#
# 1. waits until the machine is quiet (1-min loadavg < 0.5, at most QUIET_WAIT=120 s);
# 2. runs ROUNDS (2) rounds of, in this order (reversed in every other round):
#      peer         /usr/bin/python3 <shared>/bench/peers/torch_train_step.py --threads 2 --eval
#      ours         bench_train_step --threads 2 --eval            (dense and 50% masks)
#      peer_keep    the peer under GLIBC_TUNABLES mmap_max=0 + trim_threshold=64 GiB
#      ours_keep    bench_train_step --malloc keep                 (mallopt, same effect)
#      peer_masked  the peer with --masked                         (train only)
#      peer_bf16    the peer with --bf16 (torch.autocast cpu bfloat16)
#      ours_bf16    bench_train_step --precision bf16               (lth's autocast)
#    and, if VARIANTS names it, peer_cl: the peer with every config as name:batch:cl
#    (channels_last; our networks run channels-last internally, see network_base.cpp);
#    each with --configs $CONFIGS; both programs also wait (up to 120 s) for other
#    processes to go idle and record the share of the CPUs others used (foreign_cpu_frac);
# 3. prints markdown tables (summarize.py): config | ours img/s | PyTorch img/s | ratio.
#
# Environment: BUILD (build folder, default <repo>/build-bench), PEERS (default
# <repo>/../shared/bench/peers), ROUNDS, CONFIGS, THREADS, VARIANTS (a subset of the list
# above), QUIET_WAIT, EXTRA_ARGS (flags both programs take: --min-time-large/-small,
# --warmup-large/-small, --min-steps, --wait-quiet). Build first:
#   cmake -S . -B build-bench -G Ninja && cmake --build build-bench -j2 --target bench_train_step
set -euo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=../common/machine.sh
source "$HERE/../common/machine.sh"
REPO=$(git -C "$HERE" rev-parse --show-toplevel)
PEERS=${PEERS:-$REPO/../shared/bench/peers}
BUILD=${BUILD:-$REPO/build-bench}
BIN=$BUILD/bench/train_step/bench_train_step
PY=/usr/bin/python3  # Debian's python3-torch; not the pyenv python3 on PATH
ROUNDS=${ROUNDS:-2}
THREADS=${THREADS:-2}
CONFIGS=${CONFIGS:-resnet50:16 resnet20:128 lenet300_100:128 conv4:128}
VARIANTS=${VARIANTS:-peer ours peer_keep ours_keep peer_masked}
QUIET_WAIT=${QUIET_WAIT:-120}
EXTRA_ARGS=${EXTRA_ARGS:-}  # passed to both programs, e.g. "--min-time-small 1 --wait-quiet 0"
KEEP_TUNABLES=glibc.malloc.mmap_max=0:glibc.malloc.trim_threshold=68719476736
OUT=${1:-/tmp/lth_train_step/$(date -u +%Y%m%dT%H%M%SZ)}

[ -x "$BIN" ] || { echo "run.sh: $BIN missing; build it first (see the header)" >&2; exit 1; }
[ -f "$PEERS/torch_train_step.py" ] || { echo "run.sh: no peer script under $PEERS" >&2; exit 1; }
mkdir -p "$OUT"
read -r -a CONFIG_LIST <<< "$CONFIGS"
read -r -a VARIANT_LIST <<< "$VARIANTS"
read -r -a EXTRA <<< "$EXTRA_ARGS"

{
  echo "date: $(date -u '+%Y-%m-%d %H:%M:%S UTC')"
  describe_machine
  echo "packages: $(dpkg-query -W -f '${Package} ${Version}; ' libtorch1.13 python3-torch python3-torchvision libc6 libopenblas0-openmp libdnnl2 2>/dev/null)"
  echo "blas alternative: $(update-alternatives --query libblas.so.3-x86_64-linux-gnu 2>/dev/null | sed -n 's/^Value: //p')"
  echo "lth commit: $(git -C "$REPO" rev-parse --short HEAD)$(git -C "$REPO" diff --quiet HEAD -- src bench 2>/dev/null || echo ' (+ local changes)')"
  echo "configs: $CONFIGS; threads: $THREADS; rounds: $ROUNDS; variants: $VARIANTS"
} | tee "$OUT/env.txt"

# 1. Quiet machine: 1-minute load average below 0.5, or give up after QUIET_WAIT s.
wait_for_quiet_machine "$QUIET_WAIT" "$OUT/env.txt"

PEER=("$PY" "$PEERS/torch_train_step.py" --threads "$THREADS" --configs "${CONFIG_LIST[@]}" ${EXTRA[@]+"${EXTRA[@]}"})
PEER_CL=("$PY" "$PEERS/torch_train_step.py" --threads "$THREADS" --configs "${CONFIG_LIST[@]/%/:cl}" ${EXTRA[@]+"${EXTRA[@]}"})
OURS=("$BIN" --threads "$THREADS" --configs "${CONFIG_LIST[@]}" ${EXTRA[@]+"${EXTRA[@]}"})

run_variant() {
  case $1 in
    peer) env -u GLIBC_TUNABLES "${PEER[@]}" --eval ;;
    peer_keep) env GLIBC_TUNABLES=$KEEP_TUNABLES "${PEER[@]}" --eval ;;
    peer_masked) env -u GLIBC_TUNABLES "${PEER[@]}" --masked ;;
    peer_cl) env -u GLIBC_TUNABLES "${PEER_CL[@]}" --eval ;;
    ours) env -u GLIBC_TUNABLES "${OURS[@]}" --eval ;;
    ours_keep) env -u GLIBC_TUNABLES "${OURS[@]}" --eval --malloc keep ;;
    peer_bf16) env -u GLIBC_TUNABLES "${PEER[@]}" --eval --bf16 ;;
    ours_bf16) env -u GLIBC_TUNABLES "${OURS[@]}" --eval --precision bf16 ;;
    *) echo "run.sh: unknown variant $1" >&2; return 2 ;;
  esac
}

# 2. Rounds, alternating peer and ours; every other round in reverse order.
run_rounds "$ROUNDS" "$OUT" "${VARIANT_LIST[@]}"

# 3. Tables.
"$PY" "$HERE/summarize.py" "$OUT" | tee "$OUT/table.md"
echo "raw results: $OUT"
