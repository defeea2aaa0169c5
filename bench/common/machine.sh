# Sourced by the benchmarks' run.sh scripts (bench/prune, bench/train_step): the machine
# description recorded beside every result, the wait for a quiet machine, and the rounds
# that alternate lth and its peer.

# describe_machine: the CPU, kernel and transparent-huge-page lines of env.txt.
describe_machine() {
  echo "cpu: $(lscpu | sed -n 's/^Model name: *//p') (family $(lscpu | sed -n 's/^CPU family: *//p'), model $(lscpu | sed -n 's/^Model: *//p')), $(nproc) CPUs"
  echo "kernel: $(uname -r); THP: $(cat /sys/kernel/mm/transparent_hugepage/enabled 2>/dev/null)"
}

# wait_for_quiet_machine MAX_WAIT ENV_FILE: waits until the 1-minute load average is below
# 0.5, or gives up after MAX_WAIT seconds (said on stderr); appends the load it started at
# to ENV_FILE.
wait_for_quiet_machine() {
  local max_wait=$1 env_file=$2 t0=$SECONDS load
  while :; do
    read -r load _ < /proc/loadavg
    if awk -v l="$load" 'BEGIN { exit !(l < 0.5) }'; then break; fi
    if (( SECONDS - t0 >= max_wait )); then
      echo "# loadavg still $load after ${max_wait} s; going on (recorded)" >&2
      break
    fi
    echo "# loadavg $load; waiting for a quiet machine" >&2
    sleep 10
  done
  echo "start loadavg: $(cut -d' ' -f1-3 /proc/loadavg) after $((SECONDS - t0)) s wait" | tee -a "$env_file"
}

# run_rounds ROUNDS OUT VARIANT...: ROUNDS rounds of the variants, in the given order and
# reversed in every other round, each through the caller's `run_variant VARIANT`. Writes
# OUT/<variant>_r<round>.{out,err,json} (the json: the last line of stdout starting with
# '{') and a line per run in OUT/runs.txt (exit status, seconds, load before and after).
run_rounds() {
  local rounds=$1 out=$2 r i v name before start rc
  shift 2
  local -a variants=("$@") order
  for ((r = 1; r <= rounds; r++)); do
    order=("${variants[@]}")
    if (( r % 2 == 0 )); then
      order=()
      for ((i = ${#variants[@]} - 1; i >= 0; i--)); do order+=("${variants[i]}"); done
    fi
    for v in "${order[@]}"; do
      name=${v}_r$r
      before=$(cut -d' ' -f1-3 /proc/loadavg)
      echo "== round $r: $v ($(date -u +%T), loadavg $before)"
      start=$SECONDS
      if run_variant "$v" > "$out/$name.out" 2> "$out/$name.err"; then rc=0; else rc=$?; fi
      grep '^{' "$out/$name.out" | tail -n 1 > "$out/$name.json" || true
      echo "   rc=$rc, $((SECONDS - start)) s, loadavg after $(cut -d' ' -f1-3 /proc/loadavg)"
      echo "$name rc=$rc seconds=$((SECONDS - start)) loadavg_before=[$before] loadavg_after=[$(cut -d' ' -f1-3 /proc/loadavg)]" >> "$out/runs.txt"
      (( rc == 0 )) || tail -n 5 "$out/$name.err" >&2
    done
  done
}
