# Sourced by the benchmarks' run.sh scripts (bench/prune, bench/train_step): the machine
# description recorded beside every result, and the wait for a quiet machine.

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
